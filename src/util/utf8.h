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
