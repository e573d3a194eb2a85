/* SPDX-License-Identifier: Apache-2.0 */
#include "span.h"

mr_span mr_span_trim(mr_span s)
{
    while (s.n > 0 && mr_is_wsp((unsigned char)s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && mr_is_wsp((unsigned char)s.p[s.n - 1]))
        s.n--;
    return s;
}

bool mr_span_istarts(mr_span s, const char *lit)
{
    size_t n = strlen(lit);
    if (n > s.n)
        return false;
    return mr_span_ieq(mr_span_make(s.p, n), lit);
}

size_t mr_span_find(mr_span s, size_t from, char c)
{
    if (from >= s.n)
        return s.n;
    const char *hit = memchr(s.p + from, c, s.n - from);
    return hit ? (size_t)(hit - s.p) : s.n;
}
