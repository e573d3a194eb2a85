/* SPDX-License-Identifier: Apache-2.0 */
/*
 * html_text.h - readable plain text from HTML, the simple first version.
 *
 * Used when a message has no text/plain part. A single linear scan, no
 * tree: tags are dropped, block elements (p, div, br, li, tr, h1-h6,
 * blockquote, table rows) become line breaks, list items get "- ",
 * script/style/head/title content is skipped, character references are
 * decoded (named ones for the common entities, all numeric ones),
 * whitespace runs collapse as a browser would and blank-line runs are
 * capped at one. Input and output are UTF-8; output is valid UTF-8.
 * (The content issue replaces this with a gumbo-based converter.)
 */
#ifndef MR_HTML_TEXT_H
#define MR_HTML_TEXT_H

#include <stddef.h>

#include "../util/buf.h"

/* Appends the text of html[0..n) to out. */
void mr_html_to_text(const char *html, size_t n, struct mr_buf *out);

#endif
