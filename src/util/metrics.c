/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - Prometheus text rendering of struct mr_metrics.
 */
#include "util/metrics.h"

#include <inttypes.h>
#include <string.h>

static const char *const channel_names[MR_CH_COUNT] = {
    "smtp", "lmtp", "pipe", "http", "webhook",
};

const char *mr_channel_name(enum mr_channel ch)
{
    return (unsigned)ch < MR_CH_COUNT ? channel_names[ch] : "unknown";
}

static const char *const webhook_outcomes[MR_WEBHOOK_OUTCOMES] = {
    "delivered", "retried", "dead", "disabled",
};
static const char *const notify_outcomes[MR_NOTIFY_OUTCOMES] = {
    "sent", "retried", "dead",
};
static const char *const notify_kinds[MR_NOTIFY_KINDS] = {
    "slack", "github", "jira", "unknown",
};
static const char *const mail_outcomes[MR_MAIL_OUTCOMES] = {
    "sent", "retried", "failed",
};
static const char *const scan_outcomes[MR_SCAN_OUTCOMES] = {
    "clean", "infected", "error",
};

enum mr_notify_kind mr_metrics_notify_kind(const char *name)
{
    for (int i = 0; name && i < MR_NOTIFY_KIND_UNKNOWN; i++)
        if (strcmp(name, notify_kinds[i]) == 0)
            return (enum mr_notify_kind)i;
    return MR_NOTIFY_KIND_UNKNOWN;
}

enum mr_scan_outcome mr_metrics_scan_outcome(const char *scan)
{
    for (int i = 0; scan && i < MR_SCAN_OUTCOMES; i++)
        if (strcmp(scan, scan_outcomes[i]) == 0)
            return (enum mr_scan_outcome)i;
    return MR_SCAN_ERROR;
}

void mr_metrics_gauges_unknown(struct mr_metrics_gauges *g)
{
    *g = (struct mr_metrics_gauges){
        .queue_ready = -1,     .queue_leased = -1,   .jobs_dead = -1,
        .messages = -1,        .tickets = -1,        .webhook_pending = -1,
        .webhook_dead = -1,    .notify_pending = -1, .notify_dead = -1,
        .mail_pending = -1,    .mail_failed = -1,    .scan_pending = -1,
        .scan_error = -1,
    };
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

/* One counter family with a single label over n values. */
static void by_label(struct mr_buf *out, const char *name, const char *help,
                     const char *label, const char *const *values, int n,
                     const atomic_uint_fast64_t *c)
{
    mr_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int i = 0; i < n; i++)
        mr_buf_printf(out, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label,
                      values[i], get(&c[i]));
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
    by_label(out, "mailroom_webhook_deliveries_total",
             "Webhook delivery attempts, by outcome (disabled: the receiver "
             "answered 410 and its subscription was disabled).",
             "outcome", webhook_outcomes, MR_WEBHOOK_OUTCOMES,
             m->webhook_deliveries);
    mr_buf_printf(out,
                  "# HELP mailroom_notifications_total Integration "
                  "notification attempts, by integration kind and outcome.\n"
                  "# TYPE mailroom_notifications_total counter\n");
    for (int k = 0; k < MR_NOTIFY_KINDS; k++)
        for (int o = 0; o < MR_NOTIFY_OUTCOMES; o++)
            mr_buf_printf(out,
                          "mailroom_notifications_total{kind=\"%s\","
                          "outcome=\"%s\"} %" PRIu64 "\n",
                          notify_kinds[k], notify_outcomes[o],
                          get(&m->notifications[k][o]));
    by_label(out, "mailroom_outbound_mail_total",
             "Outbound mail attempts (automatic acknowledgements), by "
             "outcome.",
             "outcome", mail_outcomes, MR_MAIL_OUTCOMES, m->outbound_mail);
    by_label(out, "mailroom_attachment_scans_total",
             "Antivirus verdicts recorded, by outcome.", "outcome",
             scan_outcomes, MR_SCAN_OUTCOMES, m->scans);
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
        gauge(out, "mailroom_webhook_deliveries_pending",
              "Webhook deliveries waiting to be sent or retried.",
              g->webhook_pending);
        gauge(out, "mailroom_webhook_deliveries_dead",
              "Webhook deliveries dead-lettered (redrive to send again).",
              g->webhook_dead);
        gauge(out, "mailroom_notifications_pending",
              "Integration notifications waiting to be sent or retried.",
              g->notify_pending);
        gauge(out, "mailroom_notifications_dead",
              "Integration notifications dead (redrive to send again).",
              g->notify_dead);
        gauge(out, "mailroom_outbound_mail_pending",
              "Outbound mail waiting to be sent or retried.",
              g->mail_pending);
        gauge(out, "mailroom_outbound_mail_failed",
              "Outbound mail failed for good (retry to send again).",
              g->mail_failed);
        gauge(out, "mailroom_attachment_scans_pending",
              "Attachments waiting for the antivirus.", g->scan_pending);
        gauge(out, "mailroom_attachment_scans_error",
              "Attachments whose scan ended in an error.", g->scan_error);
    }
}
