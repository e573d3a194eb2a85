/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cte.h - Content-Transfer-Encoding decoders (RFC 2045) and uuencode.
 *
 * Decoders are tolerant, as real mail demands: base64 ignores characters
 * outside its alphabet (RFC 2045 6.8), stops at '=' padding only at the end
 * of a quantum and decodes a truncated final quantum as far as it goes;
 * quoted-printable keeps invalid escapes (a final lone '=' included)
 * literally, handles soft breaks with trailing whitespace and deletes the
 * whitespace that ends a line (RFC 2045 6.7 (3)); CRLF and LF line breaks
 * are kept as they come. Every irregularity raises a flag, never an
 * error. Decoding streams: mr_cte_decode hands the output to a sink in
 * chunks, so a 100 MB attachment is never held twice in memory.
 */
#ifndef MR_CTE_H
#define MR_CTE_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/span.h"

enum mr_cte {
    MR_CTE_7BIT = 0, /* also the default when the header is absent */
    MR_CTE_8BIT,
    MR_CTE_BINARY,
    MR_CTE_QP,
    MR_CTE_BASE64,
    MR_CTE_UUENCODE, /* x-uuencode, x-uue, uuencode */
    MR_CTE_UNKNOWN,  /* anything else: passed through undecoded */
};

enum mr_cte_flags {
    MR_CTE_BAD_CHAR = 1 << 0,   /* characters outside the alphabet skipped */
    MR_CTE_TRUNCATED = 1 << 1,  /* base64 ended mid-quantum / uu short */
    MR_CTE_BAD_ESCAPE = 1 << 2, /* QP '=' not followed by two hex digits */
    MR_CTE_PASSTHRU = 1 << 3,   /* unknown encoding, bytes kept as they are */
};

/* Receives decoded bytes; a negative return stops decoding and is passed
 * back to the caller of mr_cte_decode. */
typedef int (*mr_sink_fn)(void *ctx, const char *p, size_t n);

/* Parses a Content-Transfer-Encoding value (case-insensitive, trimmed,
 * comments ignored). Empty span -> MR_CTE_7BIT. */
enum mr_cte mr_cte_parse(mr_span value);
const char *mr_cte_name(enum mr_cte cte);

/* Told about input that has been read through: a caller whose buffer is
 * a file mapping may let those pages go (madvise MADV_DONTNEED), to be
 * read back from the page cache if they are needed again. See
 * struct mr_mime_options in mime.h. */
struct mr_input_hint {
    void *ctx;
    void (*passed)(void *ctx, const char *p, size_t n);
};

/* Decodes in[0..n) and calls sink with chunks of at most 64 KiB. Returns 0
 * or the sink's negative value; ORs enum mr_cte_flags into *flags_r. */
int mr_cte_decode(enum mr_cte cte, const char *in, size_t n, mr_sink_fn sink,
                  void *ctx, unsigned *flags_r);
/* The same, telling hint (when not NULL) about each slice of the input
 * (about 64 KiB) once it is decoded. */
int mr_cte_decode_hinted(enum mr_cte cte, const char *in, size_t n,
                         mr_sink_fn sink, void *ctx,
                         const struct mr_input_hint *hint, unsigned *flags_r);

/* One-shot decoders into caller memory. out must hold at least
 * mr_base64_max(n) / n bytes respectively (all of which may be written
 * to) and must not overlap in. Return the bytes of the result. */
static inline size_t mr_base64_max(size_t n) { return n / 4 * 3 + 3; }
size_t mr_base64_decode(const char *in, size_t n, char *out, unsigned *flags_r);
/* header_q: RFC 2047 "Q" form, where '_' means a space. */
size_t mr_qp_decode(const char *in, size_t n, char *out, bool header_q,
                    unsigned *flags_r);

/* A uuencoded block found inside a text body. Offsets are into the text. */
struct mr_uu_block {
    size_t begin; /* offset of the "begin" line */
    size_t end;   /* offset just past the "end" line (or of end of text) */
    mr_span mode; /* the octal mode, e.g. "644" */
    mr_span name; /* the file name after the mode, trimmed (borrowed) */
    mr_span data; /* the encoded lines between begin and end (borrowed) */
};

/* Whether a line of text[0..n) starts with "begin ": what mr_uu_find
 * looks for first, found sixteen bytes a step. */
bool mr_uu_candidate(const char *text, size_t n);

/* Finds the first "begin NNN name" ... "end" block at or after offset
 * `from` in text[0..n). Returns true and fills blk. A block without its
 * "end" line runs to the end of the text (MR_CTE_TRUNCATED on decode). */
bool mr_uu_find(const char *text, size_t n, size_t from,
                struct mr_uu_block *blk);

/* Decodes the data lines of a block into the sink. */
int mr_uu_decode(mr_span data, mr_sink_fn sink, void *ctx, unsigned *flags_r);

#endif
