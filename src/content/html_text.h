/* SPDX-License-Identifier: Apache-2.0 */
/*
 * html_text.h - readable plain text from HTML.
 *
 * Used when a message has no text/plain part, and (through reply.c) for
 * the visible reply of HTML-only mail. The HTML is parsed with gumbo and
 * its tree walked without recursion: block elements become lines, list
 * items get "- " or "1. " (nested lists indented), links keep their URL
 * once ("text <url>"; mailto: shows the address), images their alt text,
 * table rows become lines with cells separated by " | ", quoted blocks
 * (blockquote, Gmail's, Apple Mail's and Outlook's quote containers) get
 * "> " prefixes, pre keeps its whitespace, br breaks the line, hr is a
 * line of dashes; script, style, head, title, template and hidden
 * elements are dropped; whitespace collapses as in a browser; at most one
 * blank line in a row, none at either end, no final newline.
 * docs/reply.md has the full table.
 *
 * Input whose nesting is deeper than gumbo handles in linear time goes to
 * a tree-less linear converter instead (html_flat.c says why), so time is
 * linear in the input for any input. Input is UTF-8 (invalid bytes become
 * U+FFFD); output is valid UTF-8 without NUL bytes.
 *
 * Thread use: no state; any number of calls may run at once.
 */
#ifndef MR_HTML_TEXT_H
#define MR_HTML_TEXT_H

#include <stddef.h>

#include "../util/buf.h"

/* Appends the text of html[0..n) to out (whatever out held stays). An
 * out with a cap gets as much as fits and its `limited` flag. */
void mr_html_to_text(const char *html, size_t n, struct mr_buf *out);

#endif
