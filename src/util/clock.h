/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock.h - the two clocks in milliseconds.
 *
 * Wall time (CLOCK_REALTIME) is what gets stored and compared with stored
 * times: received_at, next_attempt_at, expiry. Monotonic time
 * (CLOCK_MONOTONIC) measures intervals in one process: timeouts, idle
 * limits, heartbeats; a clock step (NTP, an operator) cannot stretch or
 * cut them. Which one a caller needs is the caller's decision; this is
 * only the one place that converts.
 */
#ifndef MR_UTIL_CLOCK_H
#define MR_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t mr__clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Unix time in ms. */
static inline int64_t mr_clock_wall_ms(void)
{
    return mr__clock_ms(CLOCK_REALTIME);
}

/* ms since an arbitrary start; only differences mean anything. */
static inline int64_t mr_clock_mono_ms(void)
{
    return mr__clock_ms(CLOCK_MONOTONIC);
}

/* The absolute time ms from now on clock id, for pthread_cond_timedwait
 * (whose condition variable must use the same clock). */
static inline struct timespec mr_clock_deadline(clockid_t id, int64_t ms)
{
    struct timespec t;
    clock_gettime(id, &t);
    if (ms < 0)
        ms = 0;
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

#endif
