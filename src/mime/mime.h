/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mime.h - the parser's contract: one raw message in, one normalized event
 * out (docs/event.md).
 *
 * The message is one contiguous buffer (an mmap of the spool file or a read
 * buffer) that must outlive the event: headers and bodies are spans into it
 * and are decoded only when the event is built. Structure is found in one
 * pass with an explicit stack of open multiparts, never recursion, so
 * nesting costs memory bounded by max_depth and time linear in the input.
 * Attachments are decoded in 64 KiB chunks through a hash (and an optional
 * caller sink), so a 100 MB attachment is never held in memory.
 *
 * MIME defects are not errors: they are repaired and listed as warnings.
 * mr_mime_parse fails only for input that is not a message at all
 * (MR_EINVAL) or is over max_message_bytes (MR_ELIMIT).
 *
 * Thread use: any number of parses may run at once, each with its own
 * arena and charset context.
 */
#ifndef MR_MIME_H
#define MR_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/arena.h"
#include "../util/error.h"
#include "../util/json.h"
#include "charset.h"
#include "cte.h"

struct mr_mime_limits {
    size_t max_message_bytes; /* whole input; default 100 MiB */
    size_t max_field_bytes;   /* one unfolded header field; default 64 KiB,
                                 longer values are cut (warning) */
    size_t max_fields;        /* fields per header block; default 2000,
                                 later ones ignored (warning) */
    size_t max_parts;         /* MIME parts; default 10000 */
    size_t max_depth;         /* multipart / message nesting; default 64 */
    size_t max_addresses;     /* per address field; default 1000 */
    size_t max_references;    /* newest ids kept; default 100 */
    size_t max_id_bytes;      /* one message id; default 998 */
    size_t max_body_bytes;    /* decoded text or html body; default 32 MiB */
};

void mr_mime_limits_default(struct mr_mime_limits *lim);

/* Called for every attachment's decoded bytes, in order, when set. */
struct mr_mime_sink {
    void *ctx;
    /* index: position in the event's attachment list. A negative return
     * aborts the parse with that code. */
    int (*data)(void *ctx, size_t index, const char *p, size_t n);
};

struct mr_mime_options {
    struct mr_mime_limits limits;
    struct mr_charset_ctx *charsets; /* required; caller owns */
    const struct mr_mime_sink *sink; /* optional */
    /* Optional, for a message mapped from a file: told about stretches of
     * the input (a few hundred KiB at a time) as soon as the parser has
     * read through them (a body it has scanned for boundaries, a slice of an
     * attachment it has decoded). The caller may drop those pages
     * (madvise MADV_DONTNEED): the parser does read some of them again
     * (bodies are scanned, then decoded; header fields are read when the
     * event is written), and the kernel then brings them back from the
     * page cache. So a large message needs to be in memory a window at a
     * time, not whole. A buffer whose pages cannot be read back (malloc)
     * must not be given this. */
    const struct mr_input_hint *pages;
};

void mr_mime_options_default(struct mr_mime_options *opt,
                             struct mr_charset_ctx *charsets);

struct mr_event; /* opaque; lives in the arena given to mr_mime_parse */

/* Parses buf[0..len) into *ev_r, allocated in arena (freed with it). buf is
 * borrowed and must outlive *ev_r. Returns 0, MR_EINVAL (not a message:
 * empty, or no header field at all), MR_ELIMIT (over max_message_bytes)
 * or a sink's error, with detail in err. */
int mr_mime_parse(const char *buf, size_t len,
                  const struct mr_mime_options *opt, struct mr_arena *arena,
                  struct mr_event **ev_r, struct mr_error *err);

/* Writes the event object (docs/event.md). file, when not NULL, is written
 * first as the "file" member (parse --jsonl). */
void mr_event_write_json(const struct mr_event *ev, const char *file,
                         struct mr_json *j);

/* A few accessors for callers that do not want JSON (tests, benches,
 * threading). Strings are valid UTF-8 or NULL, borrowed from the event. */
const char *mr_event_subject(const struct mr_event *ev);
const char *mr_event_message_id(const struct mr_event *ev);
const char *mr_event_text(const struct mr_event *ev);
const char *mr_event_html(const struct mr_event *ev);
size_t mr_event_attachment_count(const struct mr_event *ev);
size_t mr_event_warning_count(const struct mr_event *ev);
size_t mr_event_text_len(const struct mr_event *ev);
size_t mr_event_html_len(const struct mr_event *ev);
/* Whether text was derived from html (the message had no text/plain). */
bool mr_event_text_from_html(const struct mr_event *ev);

/* What the content stage (src/content/content.h) needs of attachment i
 * (< mr_event_attachment_count); strings borrowed from the event. */
struct mr_event_attachment {
    const char *content_id;   /* without angle brackets; NULL when none */
    const char *sha256;       /* hex */
    const char *content_type; /* normalized, lower case */
};
void mr_event_attachment_get(const struct mr_event *ev, size_t i,
                             struct mr_event_attachment *out);

/* The content stage's results, written as html_sanitized and
 * stripped_text (null until set). The strings must live as long as the
 * event (put them in its arena); NULL leaves a field null. */
void mr_event_set_content(struct mr_event *ev, const char *html_sanitized,
                          size_t html_sanitized_len, const char *stripped_text,
                          size_t stripped_text_len);

#endif
