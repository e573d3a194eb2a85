/* SPDX-License-Identifier: Apache-2.0 */
/*
 * content.h - the content stage: what an agent is shown of a message.
 *
 * Runs after parsing and before storing (DESIGN.md's flow, step 2): the
 * HTML body sanitized (sanitize.h) with its cid: images pointed at the
 * attachment's inline URL, and the visible reply (reply.h) of the text
 * body, or of the HTML body when the text was only derived from it.
 * Both the parser's events (the worker, `mailroom parse`) and provider
 * webhook events (already JSON) go through here, so they get the same
 * treatment.
 *
 * No state: any number of calls may run at once.
 */
#ifndef MR_CONTENT_H
#define MR_CONTENT_H

#include <stdbool.h>
#include <stddef.h>

#include "mime/mime.h"
#include "util/arena.h"
#include "util/buf.h"

/* Where the sanitized HTML points a cid: image: this prefix and the
 * attachment's SHA-256 (served by GET /api/v1/inline/{sha256}, only for
 * raster images; docs/attachments.md). */
#define MR_CONTENT_INLINE_URL "/api/v1/inline/"

/* One attachment a cid: URL may name. */
struct mr_content_cid {
    const char *content_id; /* without angle brackets */
    const char *sha256;
};

struct mr_content_in {
    const char *text; /* the text body, or NULL */
    size_t text_len;
    bool text_from_html; /* text was derived from html: strip the html */
    const char *html; /* the original HTML body, or NULL */
    size_t html_len;
    const struct mr_content_cid *cids;
    size_t ncids;
};

struct mr_content_out {
    struct mr_buf html_sanitized; /* valid when have_html_sanitized */
    bool have_html_sanitized;
    struct mr_buf stripped_text;  /* valid when have_stripped_text */
    bool have_stripped_text;
};

/* Fills out (initialised here; release with mr_content_out_release). A
 * sanitizer failure (output cap, a parser that gives up) leaves
 * have_html_sanitized false: the message is stored without a sanitized
 * body rather than with an unsafe one. */
void mr_content_build(const struct mr_content_in *in,
                      struct mr_content_out *out);
void mr_content_out_release(struct mr_content_out *out);

/* The same for a parsed event: results go into the event (arena a). */
void mr_content_apply(struct mr_event *ev, struct mr_arena *a);

#endif
