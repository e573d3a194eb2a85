/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sanitize.h - untrusted HTML in, HTML safe to show an agent out.
 *
 * The input is parsed with gumbo (an HTML5-conformant tree builder, so the
 * tree we check is the tree a browser builds), walked against allowlists of
 * elements, attributes, URL schemes and CSS properties, and serialized so
 * that parsing the output again yields the same tree (no mutation XSS).
 * Anything not on a list is dropped; the text of dropped formatting
 * elements is kept, the content of dangerous ones (script, style with
 * forbidden rules, iframe, object, ...) is not.
 *
 * cid: URLs are rewritten by the caller's resolver (the server maps them to
 * the attachment's authenticated URL); remote images are not loaded unless
 * asked: they become a placeholder that keeps the URL for an explicit
 * opt-in (docs/content.md gives the markup).
 *
 * Every result maps to itself (sanitizing it again gives the same bytes,
 * checked on every call: the output of a call is sanitized once more
 * before it is returned). A resolved cid URL is accepted again only by
 * the call that resolved it, so re-sanitize from the original HTML.
 * Hostile depth and size are bounded: elements nested past 256 levels are
 * flattened (content kept), and a tree past gumbo's memory budget (64 MB
 * + 64 bytes per input byte) is given up for the text alone.
 *
 * The result depends only on the input, the options and
 * MR_SANITIZER_VERSION, which is stored beside every sanitized body so
 * messages can be sanitized again when the rules tighten. Bump it with any
 * change to the rules.
 *
 * Thread use: no shared state; any number of calls may run at once.
 */
#ifndef MR_SANITIZE_H
#define MR_SANITIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/buf.h"
#include "../util/error.h"

#define MR_SANITIZER_VERSION 1

struct mr_sanitize_opts {
    /* Maps the content id of a cid: URL (without "cid:" and without angle
     * brackets, cid[0..n)) to the URL to put in its place, or NULL to drop
     * the reference. The string is borrowed until the next call. NULL
     * resolver: cid: URLs are kept as they are. */
    const char *(*resolve_cid)(void *ctx, const char *cid, size_t n);
    void *ctx;
    /* false (default): http(s) images become placeholders. */
    bool remote_images;
};

/* Appends the sanitized form of html[0..n) (UTF-8; invalid bytes become
 * U+FFFD, NUL is dropped) to out; opt may be NULL (defaults). Fails only
 * when out's cap is reached or even the text alone is past the parse
 * budget (MR_ELIMIT), or the parser gives up (MR_EINVAL); out is then
 * left as it was and the caller stores no sanitized body. */
int mr_html_sanitize(const char *html, size_t n,
                     const struct mr_sanitize_opts *opt, struct mr_buf *out,
                     struct mr_error *err);

#endif
