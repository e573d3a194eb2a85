/* SPDX-License-Identifier: Apache-2.0 */
/*
 * content-private.h - what html_text.c, html_flat.c and reply.c share and
 * nobody outside src/content/ should call.
 *
 * The HTML-to-text walker takes options so that the visible reply can
 * reuse it: in the plain conversion quote containers are kept as "> "
 * quoted text; for the reply they are dropped from the walk (the subtree,
 * or for Outlook's reply header everything after it in document order),
 * and signature containers too when signatures are being removed.
 */
#ifndef MR_CONTENT_PRIVATE_H
#define MR_CONTENT_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/buf.h"

/* Above this estimated element depth gumbo is not used (html_flat.c says
 * why). Real mail nests a few dozen levels; Outlook's worst is ~100. */
#define MR__HTML_MAX_DEPTH 1500

struct mr__html_text_opts {
    bool drop_quotes;     /* quote containers removed, not "> "-marked */
    bool drop_signatures; /* gmail_signature, moz-signature, ... removed */
};

/* Appends the text of html[0..n) to out (html_text.h), with options. */
void mr__html_text(const char *html, size_t n,
                   const struct mr__html_text_opts *o, struct mr_buf *out);

/* The tree-less converter (html_flat.c). */
void mr__html_flat_to_text(const char *html, size_t n, struct mr_buf *out);

/* An upper estimate of the element nesting depth of html[0..n), in one
 * linear pass: opening minus closing tags of the elements the tree builder
 * nests (void and implicitly closed ones are not counted). */
size_t mr__html_depth_estimate(const char *html, size_t n);

/* reply.c's line classifiers, used by the walker to keep forwards:
 * p[0..n) is one line of text. */
bool mr__reply_forward_banner(const char *p, size_t n);
/* The line starts with "From:" or a client's translation of it. */
bool mr__reply_from_field(const char *p, size_t n);

#endif
