/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rfc2047.h - header text decoding: unfolding, encoded words, raw 8-bit.
 *
 * Turns a raw header value into the text a user expects, as valid UTF-8:
 * - unfolds (CRLF / LF / bare CR followed by whitespace), and turns any
 *   remaining CR, LF, NUL and other C0 controls into a space, so that a
 *   decoded value can never inject a header line;
 * - decodes RFC 2047 encoded words =?charset?B|Q?text?= (either case,
 *   RFC 2231 language suffix "charset*lang" ignored), dropping whitespace
 *   between adjacent encoded words; adjacent words in the same charset are
 *   joined before conversion, so a multibyte character split across two
 *   words survives;
 * - tolerates the malformed forms real clients send: no space around a
 *   word ("Re:=?utf-8?Q?x?=abc"), words inside quoted strings (when
 *   MR_RFC2047_IN_QUOTES), unknown charsets (decoded by detection, flagged);
 *   a word that is not valid (bad encoding letter, no terminator, bad
 *   base64) is kept literally and flagged;
 * - decodes exactly once: the output of a word is never decoded again;
 * - raw 8-bit bytes outside words: valid UTF-8 kept (RFC 6532), anything
 *   else through mr_charset_to_utf8 with an empty label (detection).
 * Unfolding removes only the line break (RFC 5322 2.2.3): the whitespace
 * after it stays (a tab as a space). Leading and trailing whitespace is
 * trimmed; inner runs of spaces are kept.
 *
 * Quotes have a meaning only in structured fields: pass
 * MR_RFC2047_IN_QUOTES for unstructured ones (Subject, where a '"' is just
 * text) and for display names, which Outlook and others encode inside
 * quotes. Without it a quoted string is copied as it is, quotes included.
 */
#ifndef MR_RFC2047_H
#define MR_RFC2047_H

#include "../util/buf.h"
#include "../util/span.h"
#include "charset.h"

enum mr_rfc2047_opts {
    MR_RFC2047_IN_QUOTES = 1 << 0, /* also decode words inside "..." */
};

enum mr_rfc2047_flags {
    MR_RFC2047_BAD_WORD = 1 << 0,  /* a malformed word was kept literally */
    MR_RFC2047_CHARSET = 1 << 1,   /* an unknown charset label was used */
    MR_RFC2047_INVALID = 1 << 2,   /* invalid bytes became U+FFFD */
    MR_RFC2047_CONTROL = 1 << 3,   /* CR/LF/NUL/controls became spaces */
    MR_RFC2047_RAW8BIT = 1 << 4,   /* raw non-UTF-8 8-bit text detected */
};

/* Appends the decoded value to out. Returns enum mr_rfc2047_flags. */
unsigned mr_rfc2047_decode(struct mr_charset_ctx *cs, mr_span raw,
                           unsigned opts, struct mr_buf *out);

#endif
