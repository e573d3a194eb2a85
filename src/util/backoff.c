/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backoff.c - exponential retry delays (backoff.h).
 */
#include "util/backoff.h"

#include <stdlib.h>

int64_t mr_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms)
{
    int64_t d = base_ms > 0 ? base_ms : 1;
    /* Doubling stops at the cap, or before int64 would overflow: the loop
     * runs at most 63 times whatever attempt says. */
    for (int i = 1; i < attempt && d <= INT64_MAX / 2; i++) {
        if (max_ms > 0 && d >= max_ms)
            break;
        d *= 2;
    }
    return max_ms > 0 && d > max_ms ? max_ms : d;
}

int64_t mr_backoff_jitter(int64_t ms, double rnd)
{
    if (rnd < 0.0)
        rnd = 0.0;
    if (rnd >= 1.0)
        rnd = 0.999999;
    return (int64_t)((double)ms * (0.5 + rnd * 0.5));
}

double mr_backoff_rnd(void)
{
    return (double)(arc4random() & 0xffffff) / 16777216.0;
}
