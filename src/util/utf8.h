/* SPDX-License-Identifier: Apache-2.0 */
/*
 * utf8.h - UTF-8 validation and repair.
 *
 * Every string mailroom emits is valid UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). These are the checks and the one
 * repair: each maximal invalid subsequence becomes U+FFFD, as the WHATWG
 * Encoding standard decodes.
 */
#ifndef MR_UTF8_H
#define MR_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Length of the valid sequence at p[0..n) (n >= 1), 1 for ASCII, or 0 when
 * it is invalid: RFC 3629 table 3-7, so no overlongs, no surrogates,
 * nothing above U+10FFFF. Inline because the validators and the JSON
 * writer call it for every non-ASCII character. */
static inline size_t mr_utf8_char_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (p[2] & 0xC0) != 0x80)
            return 0;
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
        unsigned char hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c < 0xF5) {
        if (n < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* Length of the valid UTF-8 prefix of p[0..n). Equal to n when valid. */
size_t mr_utf8_valid_prefix(const char *p, size_t n);

static inline bool mr_utf8_valid(const char *p, size_t n)
{
    return mr_utf8_valid_prefix(p, n) == n;
}

/* Appends p[0..n) to out with invalid sequences replaced by U+FFFD and NUL
 * bytes dropped when drop_nul is set. Returns how many replacements (and
 * dropped NULs) were made. */
size_t mr_utf8_repair(struct mr_buf *out, const char *p, size_t n,
                      bool drop_nul);

/* Appends the UTF-8 encoding of code point cp (U+FFFD when invalid). */
void mr_utf8_put(struct mr_buf *out, uint32_t cp);

/* Decodes one code point at p[0..n); returns its length (>= 1) and stores
 * the code point, or U+FFFD and the length of the invalid sequence. */
size_t mr_utf8_next(const char *p, size_t n, uint32_t *cp_r);

#endif
