/* SPDX-License-Identifier: Apache-2.0 */
/*
 * params.c - the small parsers of request values (media types, ids, page
 * limits) and the one timestamp format of the API.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/http-private.h"
#include "mime/date.h"
#include "util/clock.h"

bool mr__http_media_type_is(const char *value, const char *want)
{
    if (value == NULL)
        return false;
    /* RFC 9110 8.3.1: type/subtype is case-insensitive, parameters follow
     * ';' and may be preceded by optional whitespace. */
    size_t n = strcspn(value, ";");
    return mr_span_ieq(mr_span_trim(mr_span_make(value, n)), want);
}

bool mr__http_parse_id(mr_span s, int64_t *id)
{
    *id = 0;
    /* 18 digits always fit in int64_t; a leading zero would give two
     * spellings of one resource. */
    if (s.n == 0 || s.n > 18 || s.p[0] == '0')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        v = v * 10 + (s.p[i] - '0');
    }
    *id = v;
    return true;
}

int mr__http_parse_limit(const char *value, int def, int max, int *out,
                         struct mr_error *err)
{
    *out = def;
    if (value == NULL)
        return 0;
    size_t n = strlen(value);
    int v = 0;
    bool ok = n >= 1 && n <= 6;
    for (size_t i = 0; ok && i < n; i++) {
        if (value[i] < '0' || value[i] > '9')
            ok = false;
        else
            v = v * 10 + (value[i] - '0');
    }
    if (!ok || v < 1 || v > max)
        return mr_error_set(err, MR_EINVAL,
                            "limit must be a whole number from 1 to %d", max);
    *out = v;
    return 0;
}

void mr__http_time(int64_t ms, char out[MR__HTTP_TIME_LEN])
{
    /* Floor division, so that -1 ms is 23:59:59.999 of the day before. */
    int64_t s = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        s--;
    }
    char base[32];
    mr_date_rfc3339(s, base); /* "YYYY-MM-DDTHH:MM:SSZ" */
    size_t n = strlen(base);
    if (n > 0 && base[n - 1] == 'Z')
        n--;
    snprintf(out, MR__HTTP_TIME_LEN, "%.*s.%03dZ", (int)n, base, (int)frac);
}

int64_t mr__http_now_ms(const struct mr__http_ctx *ctx)
{
    if (ctx && ctx->deps.now_ms)
        return ctx->deps.now_ms();
    return mr_clock_wall_ms();
}
