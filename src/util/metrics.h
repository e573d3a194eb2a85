/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - the server's counters, for GET /metrics (Prometheus text).
 *
 * Plain atomic counters in one struct owned by serve and passed to every
 * module that counts (no globals). Increment with mr_metrics_inc; gauges
 * that live in the database (queue depth, dead jobs) are read from the
 * store when the page is rendered.
 */
#ifndef MR_METRICS_H
#define MR_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "util/buf.h"

enum mr_channel {
    MR_CH_SMTP = 0,
    MR_CH_LMTP,
    MR_CH_PIPE,
    MR_CH_HTTP,
    MR_CH_WEBHOOK,
    MR_CH_COUNT
};
/* "smtp", "lmtp", "pipe", "http", "webhook" */
const char *mr_channel_name(enum mr_channel ch);

struct mr_metrics {
    atomic_uint_fast64_t received[MR_CH_COUNT]; /* messages offered */
    atomic_uint_fast64_t acked[MR_CH_COUNT];    /* durable and acknowledged */
    atomic_uint_fast64_t rejected[MR_CH_COUNT]; /* refused (5xx, 4xx, 401) */
    atomic_uint_fast64_t tempfail[MR_CH_COUNT]; /* 451 / 503 / 75 */
    atomic_uint_fast64_t duplicates;            /* already stored */
    atomic_uint_fast64_t ignored;               /* kept, no ticket (rules) */
    atomic_uint_fast64_t parse_failures;        /* jobs failing to parse */
    atomic_uint_fast64_t jobs_done;
    atomic_uint_fast64_t jobs_retried;
    atomic_uint_fast64_t jobs_dead;
    atomic_uint_fast64_t http_requests;
    atomic_uint_fast64_t smtp_connections;
};

static inline void mr_metrics_inc(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Gauges read from the store at render time; -1 when unknown. */
struct mr_metrics_gauges {
    int64_t queue_ready;
    int64_t queue_leased;
    int64_t jobs_dead;
    int64_t messages;
    int64_t tickets;
};

/* Appends the Prometheus text exposition (version 0.0.4) to out. */
void mr_metrics_render(const struct mr_metrics *m,
                       const struct mr_metrics_gauges *g, struct mr_buf *out);

#endif
