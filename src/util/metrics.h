/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - the server's counters, for GET /metrics (Prometheus text).
 *
 * Plain atomic counters in one struct owned by serve and passed to every
 * module that counts (no globals). Increment with mr_metrics_inc; gauges
 * that live in the database (queue depth, dead jobs, the outbound queues'
 * pending and dead rows) are read from the store when the page is
 * rendered, so they are right across restarts and processes; the
 * counters are this process's since it started (Prometheus' rate()
 * handles the reset). docs/api.md (GET /metrics) lists every name.
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

/* What an attempt of the outbound queues came to (the label values). */
enum mr_webhook_outcome {
    MR_WEBHOOK_DELIVERED = 0,
    MR_WEBHOOK_RETRIED,
    MR_WEBHOOK_DEAD,
    MR_WEBHOOK_DISABLED, /* 410: the subscription was disabled */
    MR_WEBHOOK_OUTCOMES
};
enum mr_notify_outcome {
    MR_NOTIFY_SENT = 0,
    MR_NOTIFY_RETRIED,
    MR_NOTIFY_DEAD,
    MR_NOTIFY_OUTCOMES
};
/* Integration kinds; "unknown": a name no integration has. */
enum mr_notify_kind {
    MR_NOTIFY_KIND_SLACK = 0,
    MR_NOTIFY_KIND_GITHUB,
    MR_NOTIFY_KIND_JIRA,
    MR_NOTIFY_KIND_UNKNOWN,
    MR_NOTIFY_KINDS
};
enum mr_mail_outcome {
    MR_MAIL_SENT = 0,
    MR_MAIL_RETRIED,
    MR_MAIL_FAILED,
    MR_MAIL_OUTCOMES
};
enum mr_scan_outcome {
    MR_SCAN_CLEAN = 0,
    MR_SCAN_INFECTED,
    MR_SCAN_ERROR,
    MR_SCAN_OUTCOMES
};
/* The kind a name ("slack", "github", "jira") counts under; anything
 * else, NULL included, is MR_NOTIFY_KIND_UNKNOWN. */
enum mr_notify_kind mr_metrics_notify_kind(const char *name);
/* The outcome a recorded state ("clean", "infected", "error") counts
 * under; anything else is MR_SCAN_ERROR. */
enum mr_scan_outcome mr_metrics_scan_outcome(const char *scan);

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
    /* Attempts of the outbound queues, by what they came to. */
    atomic_uint_fast64_t webhook_deliveries[MR_WEBHOOK_OUTCOMES];
    atomic_uint_fast64_t notifications[MR_NOTIFY_KINDS][MR_NOTIFY_OUTCOMES];
    atomic_uint_fast64_t outbound_mail[MR_MAIL_OUTCOMES];
    atomic_uint_fast64_t scans[MR_SCAN_OUTCOMES]; /* verdicts recorded */
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
    int64_t webhook_pending;
    int64_t webhook_dead;
    int64_t notify_pending;
    int64_t notify_dead;
    int64_t mail_pending;
    int64_t mail_failed;
    int64_t scan_pending;
    int64_t scan_error;
};
/* Every gauge unknown (-1), before the store fills what it can. */
void mr_metrics_gauges_unknown(struct mr_metrics_gauges *g);

/* Appends the Prometheus text exposition (version 0.0.4) to out. */
void mr_metrics_render(const struct mr_metrics *m,
                       const struct mr_metrics_gauges *g, struct mr_buf *out);

#endif
