/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reply.h - the part of a message its sender just wrote.
 *
 * Removes quoted text (">" lines, "On ... wrote:" headers in the languages
 * clients use, Outlook's From:/Sent:/To:/Subject: blocks and its rule,
 * Gmail's and Apple Mail's quote containers in HTML) and signatures ("-- ",
 * "Sent from my ..." lines, sign-offs followed by a name block), for
 * top-posted and interleaved replies alike. Forwarded-message banners and
 * what follows them are kept: a forward is what the sender wrote.
 *
 * Input and output are UTF-8 text (invalid bytes come out as U+FFFD);
 * the output has no blank lines at either end and at most one in a row,
 * is never longer than the input plus a line break, and is never empty
 * when the input had visible text (a message that is all quote keeps its
 * text, so an agent sees something). Time is linear in the input.
 * docs/reply.md lists the rules, the languages and the measured score.
 *
 * Thread use: no state; any number of calls may run at once.
 */
#ifndef MR_REPLY_H
#define MR_REPLY_H

#include <stddef.h>

#include "../util/buf.h"

/* The two stages, for callers (and the corpus proof) that want one:
 * quotes and attributions, or signatures and sign-offs. */
#define MR_REPLY_QUOTES 1u
#define MR_REPLY_SIGNATURE 2u

/* Appends text[0..n) to out without what `what` names. */
void mr_reply_strip_text(const char *text, size_t n, unsigned what,
                         struct mr_buf *out);
/* Same for HTML: with MR_REPLY_QUOTES the quote containers are left out
 * of the conversion, with MR_REPLY_SIGNATURE the signature containers
 * (Gmail's, Thunderbird's, Outlook's); the text is then stripped as
 * above. */
void mr_reply_strip_html(const char *html, size_t n, unsigned what,
                         struct mr_buf *out);

/* Appends the visible reply of the plain text text[0..n) to out. */
void mr_reply_visible_text(const char *text, size_t n, struct mr_buf *out);

/* Same for an HTML body: quote containers are recognised in the tree, then
 * the rest is converted to text (mr_html_to_text) and stripped as above. */
void mr_reply_visible_html(const char *html, size_t n, struct mr_buf *out);

#endif
