/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - Prometheus text rendering of struct mr_metrics.
 */
#include "util/metrics.h"

#include <inttypes.h>

static const char *const channel_names[MR_CH_COUNT] = {
    "smtp", "lmtp", "pipe", "http", "webhook",
};

const char *mr_channel_name(enum mr_channel ch)
{
    return (unsigned)ch < MR_CH_COUNT ? channel_names[ch] : "unknown";
}

static uint64_t get(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void per_channel(struct mr_buf *out, const char *name,
                        const char *help, const atomic_uint_fast64_t *c)
{
    mr_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int i = 0; i < MR_CH_COUNT; i++)
        mr_buf_printf(out, "%s{channel=\"%s\"} %" PRIu64 "\n", name,
                      channel_names[i], get(&c[i]));
}

static void counter(struct mr_buf *out, const char *name, const char *help,
                    const atomic_uint_fast64_t *c)
{
    mr_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n",
                  name, help, name, name, get(c));
}

static void gauge(struct mr_buf *out, const char *name, const char *help,
                  int64_t v)
{
    /* An unknown gauge is left out rather than reported as a false 0. */
    if (v < 0)
        return;
    mr_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRId64 "\n",
                  name, help, name, name, v);
}

void mr_metrics_render(const struct mr_metrics *m,
                       const struct mr_metrics_gauges *g, struct mr_buf *out)
{
    per_channel(out, "mailroom_messages_received_total",
                "Messages offered to mailroom, by channel.", m->received);
    per_channel(out, "mailroom_messages_acked_total",
                "Messages made durable and acknowledged, by channel.",
                m->acked);
    per_channel(out, "mailroom_messages_rejected_total",
                "Messages refused for good (5xx, 4xx problem, 401).",
                m->rejected);
    per_channel(out, "mailroom_messages_tempfail_total",
                "Messages answered with a temporary failure.", m->tempfail);
    counter(out, "mailroom_duplicates_total",
            "Messages already stored, not stored again.", &m->duplicates);
    counter(out, "mailroom_ignored_total",
            "Messages the rules ignored: kept, no ticket.", &m->ignored);
    counter(out, "mailroom_parse_failures_total",
            "Job attempts whose message failed to parse.",
            &m->parse_failures);
    counter(out, "mailroom_jobs_done_total", "Jobs completed.", &m->jobs_done);
    counter(out, "mailroom_jobs_retried_total",
            "Job attempts that failed and were rescheduled.",
            &m->jobs_retried);
    counter(out, "mailroom_jobs_dead_total",
            "Jobs dead-lettered by this process.", &m->jobs_dead);
    counter(out, "mailroom_http_requests_total", "HTTP requests served.",
            &m->http_requests);
    counter(out, "mailroom_smtp_connections_total",
            "SMTP and LMTP connections accepted.", &m->smtp_connections);
    if (g) {
        gauge(out, "mailroom_queue_ready", "Jobs waiting for a worker.",
              g->queue_ready);
        gauge(out, "mailroom_queue_leased", "Jobs held by a worker.",
              g->queue_leased);
        gauge(out, "mailroom_jobs_dead", "Jobs in the dead-letter queue.",
              g->jobs_dead);
        gauge(out, "mailroom_messages_stored", "Messages stored.",
              g->messages);
        gauge(out, "mailroom_tickets", "Tickets.", g->tickets);
    }
}
