/* SPDX-License-Identifier: Apache-2.0 */
#include "utf8.h"

#include <string.h>

#include "scan.h"

size_t mr_utf8_valid_prefix(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII runs dominate mail text: sixteen bytes a step, then the
         * exact position of the first byte that is not ASCII. */
        while (i + 16 <= n) {
            unsigned m = mr_blk_high(mr_blk_load(s + i));
            if (m) {
                i += mr_blk_first(m);
                break;
            }
            i += 16;
        }
        if (i >= n)
            break;
        /* Then characters one by one until the next ASCII byte, so text
         * in Cyrillic or CJK does not pay for a block test per letter. */
        while (i < n) {
            if ((unsigned char)s[i] < 0x80) {
                i++;
                break;
            }
            size_t l = mr_utf8_char_len(s + i, n - i);
            if (l == 0)
                return i;
            i += l;
        }
    }
    return n;
}

/* Length of the maximal invalid subpart starting at p (at least 1). */
static size_t invalid_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t want;
    if (c >= 0xC2 && c < 0xE0)
        want = 2;
    else if (c >= 0xE0 && c < 0xF0)
        want = 3;
    else if (c >= 0xF0 && c < 0xF5)
        want = 4;
    else
        return 1;
    size_t i = 1;
    while (i < want && i < n) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (i == 1) {
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
            else if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        }
        if (p[i] < lo || p[i] > hi)
            break;
        i++;
    }
    return i;
}

size_t mr_utf8_next(const char *s, size_t n, uint32_t *cp_r)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t l = mr_utf8_char_len(s, n);
    switch (l) {
    case 1: *cp_r = p[0]; return 1;
    case 2: *cp_r = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F); return 2;
    case 3:
        *cp_r = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) |
                (p[2] & 0x3F);
        return 3;
    case 4:
        *cp_r = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
                ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
        return 4;
    }
    *cp_r = 0xFFFD;
    return invalid_len(p, n);
}

size_t mr_utf8_repair(struct mr_buf *out, const char *s, size_t n, bool drop_nul)
{
    size_t fixes = 0;
    size_t i = 0;
    while (i < n) {
        size_t ok = mr_utf8_valid_prefix(s + i, n - i);
        if (drop_nul) {
            const char *z = memchr(s + i, '\0', ok);
            if (z)
                ok = (size_t)(z - (s + i));
        }
        mr_buf_append(out, s + i, ok);
        i += ok;
        if (i >= n)
            break;
        if (s[i] == '\0') {
            fixes++;
            i++;
            continue;
        }
        mr_buf_append(out, "\xEF\xBF\xBD", 3);
        fixes++;
        i += invalid_len((const unsigned char *)s + i, n - i);
    }
    return fixes;
}

void mr_utf8_put(struct mr_buf *out, uint32_t cp)
{
    char t[4];
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = 0xFFFD;
    if (cp < 0x80) {
        t[0] = (char)cp;
        mr_buf_append(out, t, 1);
    } else if (cp < 0x800) {
        t[0] = (char)(0xC0 | (cp >> 6));
        t[1] = (char)(0x80 | (cp & 0x3F));
        mr_buf_append(out, t, 2);
    } else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | (cp >> 12));
        t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[2] = (char)(0x80 | (cp & 0x3F));
        mr_buf_append(out, t, 3);
    } else if (cp <= 0x10FFFF) {
        t[0] = (char)(0xF0 | (cp >> 18));
        t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[3] = (char)(0x80 | (cp & 0x3F));
        mr_buf_append(out, t, 4);
    } else {
        mr_buf_append(out, "\xEF\xBF\xBD", 3);
    }
}
