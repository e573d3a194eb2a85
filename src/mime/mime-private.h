/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mime-private.h - what the files of the parser share and nobody else sees:
 * the part tree built by the structure pass (parser.c) and read by the
 * event builder (event.c), the header block reader (header.c) and the
 * warning list.
 */
#ifndef MR_MIME_PRIVATE_H
#define MR_MIME_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/arena.h"
#include "../util/span.h"
#include "cte.h"
#include "mime.h"
#include "params.h"

/* One header field as written: name and raw value (still folded), both
 * borrowed from the message buffer. */
struct mr__field {
    mr_span name;
    mr_span value;
};

struct mr__header {
    struct mr__field *fields; /* arena array */
    size_t n;
};

/* Tells the header reader whether a line is a multipart delimiter of an
 * open boundary, so a part whose blank line is missing still ends there. */
typedef bool (*mr__delim_fn)(void *ctx, mr_span line);

/* Warnings collected while parsing; capped so hostile input cannot grow
 * them without bound (the last entry then says how many were dropped). */
#define MR__MAX_WARNINGS 64

struct mr__warnings {
    const char **items; /* arena array of MR__MAX_WARNINGS */
    size_t n;
    size_t dropped;
};

void mr__warn(struct mr_arena *a, struct mr__warnings *w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

enum mr__header_end {
    MR__HDR_BLANK,   /* ended at the blank line */
    MR__HDR_DELIM,   /* ended at a multipart delimiter (no body) */
    MR__HDR_NOBLANK, /* a body line came without the blank line */
    MR__HDR_EOF,     /* input ended inside the header */
};

/*
 * Reads the header block at buf[0..len) into *out (fields in the arena,
 * spans into buf). Returns the offset where the body starts and how the
 * block ended in *end_r. At most max_fields fields are kept; the rest are
 * skipped with a warning. Linear in the size of the block.
 */
size_t mr__header_read(struct mr_arena *a, const char *buf, size_t len,
                       size_t max_fields, mr__delim_fn is_delim,
                       void *delim_ctx, struct mr__header *out,
                       enum mr__header_end *end_r, struct mr__warnings *w);

/* The first field named `name` (case-insensitive), or NULL. */
const struct mr__field *mr__header_get(const struct mr__header *h,
                                       const char *name);

/* Appends the unfolded value (line breaks removed, other controls and
 * invalid UTF-8 repaired) to out, at most max bytes of input read. */
void mr__header_unfold(mr_span value, size_t max, struct mr_buf *out);

/* Writes the unfolded value as a JSON string in one pass over the message
 * (mr_json_str_unfolded), without copying it first. The same text as
 * mr__header_unfold makes, except around a NUL: dropped after the bytes
 * beside it are checked as UTF-8, so it never joins two halves of a
 * character. */
void mr__header_unfold_json(mr_span value, size_t max, struct mr_json *j);

enum mr__kind {
    MR__LEAF,      /* a body or attachment */
    MR__MULTIPART, /* children between boundaries */
    MR__MESSAGE,   /* message/rfc822: one child, the nested message */
};

struct mr__part {
    int parent;  /* index, -1 for the root */
    int first_child, last_child, next_sibling;
    unsigned nth;   /* 1-based position among its siblings */
    unsigned depth; /* 0 for the root */
    enum mr__kind kind;
    struct mr__header header;
    mr_span raw;  /* from the first header byte to the part's end */
    mr_span body; /* after the header block to the part's end */
    struct mr_params ctype; /* value "type/subtype" */
    bool ctype_defaulted;   /* no (usable) Content-Type */
    enum mr_cte cte;
    bool closed; /* multipart: its close delimiter was seen */
    bool opaque_multipart; /* multipart kept as a leaf (no boundary/depth) */
};

struct mr__tree {
    struct mr__part *parts; /* arena array */
    size_t n;
};

/* The structure pass: fills tree from buf. Never fails (input checks are
 * done by the caller); defects go to w. pages (optional) is told about
 * the stretches scanned through (struct mr_mime_options). */
void mr__structure_parse(struct mr_arena *a, struct mr_charset_ctx *cs,
                         const struct mr_mime_limits *lim, const char *buf,
                         size_t len, const struct mr_input_hint *pages,
                         struct mr__tree *tree, struct mr__warnings *w);

/* IMAP-style part number ("1.2") of part i, written into out. */
void mr__part_number(const struct mr__tree *t, int i, char *out, size_t size);

#endif
