/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sanitize-private.h - what sanitize.c (the tree walk and serializer) and
 * sanitize_css.c (style attributes and <style> sheets) share.
 *
 * One struct mr_san lives for one mr_html_sanitize call; it owns the
 * copies of the URLs the cid resolver returned (so that a second pass over
 * our own output, the idempotence check, accepts them again) and a scratch
 * buffer for URL cleaning.
 */
#ifndef MR_SANITIZE_PRIVATE_H
#define MR_SANITIZE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/buf.h"
#include "sanitize.h"

/* The class of the element the UI renders sanitized HTML in; every
 * selector of a kept <style> sheet is scoped under it. */
#define MR_SAN_SCOPE ".mr-html"

/* Resolved cid URLs remembered per call; beyond that they are not
 * recognized on the check pass, which then falls back to text. */
#define MR_SAN_MAX_TRUSTED 4096

struct mr_san {
    const struct mr_sanitize_opts *opt;
    char **trusted; /* copies of resolver results */
    size_t *trusted_n;
    size_t ntrusted, trusted_cap;
    struct mr_buf url; /* the cleaned URL of the last mr_san_url call */
};

enum mr_san_url {
    MR_URL_BAD,    /* drop it */
    MR_URL_WEB,    /* http or https */
    MR_URL_MAILTO, /* mailto: */
    MR_URL_LOCAL,  /* cid: rewritten by the resolver (or kept: no resolver) */
};

/* Classifies the attribute or CSS URL p[0..n) (entities already decoded)
 * the way a browser reads it: leading and trailing C0 controls and spaces
 * stripped, tabs and line breaks removed, scheme folded to lower case.
 * The URL to write is in s->url afterwards (the resolver's result for
 * cid:). Relative URLs are MR_URL_BAD: in the agent UI they would point at
 * the helpdesk itself. */
enum mr_san_url mr_san_url(struct mr_san *s, const char *p, size_t n);

/* Appends the allowed declarations of a style attribute's value p[0..n)
 * to out as "prop: value; prop: value". Returns how many were kept. */
size_t mr_san_css_decls(struct mr_san *s, const char *p, size_t n,
                        struct mr_buf *out);

/* Appends the rewritten text of a <style> element: only style rules with
 * allowed declarations and @media blocks of them, every selector scoped
 * under MR_SAN_SCOPE, no '<' and no backslash anywhere. Returns the number
 * of rules kept (0: the caller drops the element). */
size_t mr_san_css_sheet(struct mr_san *s, const char *p, size_t n,
                        struct mr_buf *out);

#endif
