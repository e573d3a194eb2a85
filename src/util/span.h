/* SPDX-License-Identifier: Apache-2.0 */
/*
 * span.h - a borrowed byte range (pointer + length).
 *
 * Spans point into a buffer someone else owns (usually the message being
 * parsed) and live exactly as long as it. They are never assumed to be
 * NUL-terminated or valid UTF-8.
 */
#ifndef MR_SPAN_H
#define MR_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct mr_span {
    const char *p;
    size_t n;
} mr_span;

#define MR_SPAN_NULL ((mr_span){NULL, 0})
#define MR_SPAN_LIT(s) ((mr_span){(s), sizeof(s) - 1})

static inline mr_span mr_span_make(const char *p, size_t n)
{
    return (mr_span){p, n};
}

static inline mr_span mr_span_cstr(const char *s)
{
    return (mr_span){s, s ? strlen(s) : 0};
}

static inline bool mr_is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static inline unsigned char mr_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Without leading and trailing spaces, tabs, CR and LF. */
mr_span mr_span_trim(mr_span s);

/* ASCII case-insensitive comparison with a NUL-terminated literal. Inline,
 * so that the length of a literal is known at compile time and most
 * comparisons end there (header lookups make hundreds of them per
 * message). */
static inline bool mr_span_ieq(mr_span s, const char *lit)
{
    size_t n = strlen(lit);
    if (n != s.n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (mr_lower((unsigned char)s.p[i]) != mr_lower((unsigned char)lit[i]))
            return false;
    return true;
}

bool mr_span_istarts(mr_span s, const char *lit);

/* Byte-exact equality. */
static inline bool mr_span_eq(mr_span a, mr_span b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* Index of the first c in s at or after from, or s.n when absent. */
size_t mr_span_find(mr_span s, size_t from, char c);

#endif
