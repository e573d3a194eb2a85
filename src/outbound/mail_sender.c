/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mail_sender.c - the outbound mail thread (mail_sender.h).
 *
 * One thread, one message at a time: acknowledgements are few (at most
 * one per sender per window) and the relay queues them onwards, so a
 * pool would only add ways to send one twice. Idle, it looks for due
 * rows every ROUND_MS.
 */
#include "outbound/mail_sender.h"
#include "outbound/smtp_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtp/tls.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/clock.h"

#define ROUND_MS 250
#define DUE_MAX 16

struct mr_mail_sender {
    const struct mr_config *cfg;
    struct mr_store *st;
    struct mr_log *log;
    struct mr_metrics *metrics; /* may be NULL */
    SSL_CTX *tls;               /* owned; NULL when outbound.tls is none */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stopping;
};

int64_t mr_mail_sender_retry_ms(int attempts, int max_attempts, int base_ms,
                                int max_ms)
{
    if (attempts >= max_attempts)
        return -1;
    return mr_backoff_ms(attempts, base_ms > 0 ? base_ms : 60000, max_ms);
}

static void send_one(struct mr_mail_sender *s, const struct mr_outbound_mail *m)
{
    const struct mr_config *cfg = s->cfg;
    static const enum mr_smtp_tls modes[] = {
        [MR_OUTBOUND_TLS_NONE] = MR_SMTP_TLS_NONE,
        [MR_OUTBOUND_TLS_STARTTLS] = MR_SMTP_TLS_STARTTLS,
        [MR_OUTBOUND_TLS_REQUIRED] = MR_SMTP_TLS_REQUIRED,
        [MR_OUTBOUND_TLS_IMPLICIT] = MR_SMTP_TLS_IMPLICIT,
    };
    struct mr_smtp_client_opts o = {
        .relay = cfg->outbound.smtp,
        .helo = cfg->outbound.helo ? cfg->outbound.helo : cfg->hostname,
        .timeout_ms = cfg->outbound.timeout_ms,
        .stop = &s->stopping,
        .tls = modes[cfg->outbound.tls],
        .tls_ctx = s->tls,
        .username = cfg->outbound.username,
        .password = cfg->outbound.password,
        .allow_plain_auth = cfg->outbound.allow_plain_auth,
    };
    struct mr_smtp_reply reply;
    struct mr_error err = {0};
    int rc = mr_smtp_client_send(&o, m->mail_from, m->rcpt_to, m->message,
                                 strlen(m->message), &reply, &err);
    const char *state = "sent";
    int64_t next = mr_clock_wall_ms();
    if (rc == MR_EAGAIN) {
        int64_t d = mr_mail_sender_retry_ms(m->attempts,
                                            cfg->outbound.max_attempts,
                                            cfg->outbound.backoff_base_ms,
                                            cfg->outbound.backoff_max_ms);
        state = d < 0 ? "failed" : "pending";
        if (d >= 0)
            next += d;
    } else if (rc != MR_OK) {
        state = "failed";
    }
    if (s->metrics)
        mr_metrics_inc(&s->metrics->outbound_mail[
            rc == MR_OK                      ? MR_MAIL_SENT
            : strcmp(state, "pending") == 0 ? MR_MAIL_RETRIED
                                             : MR_MAIL_FAILED]);
    struct mr_error rerr = {0};
    if (mr_store_outbound_result(s->st, m->id, state, next,
                                 rc == MR_OK ? NULL : err.msg, &rerr) != MR_OK)
        mr_log_kv(s->log, MR_LOG_ERROR, "outbound",
                  "could not record an attempt; the mail is tried again "
                  "after its lease", "error", rerr.msg, NULL);
    char id[24], att[16];
    snprintf(id, sizeof id, "%lld", (long long)m->id);
    snprintf(att, sizeof att, "%d", m->attempts);
    if (rc == MR_OK)
        mr_log_kv(s->log, MR_LOG_INFO, "outbound", "mail sent", "id", id,
                  "tenant", m->tenant, "to", m->rcpt_to, "message_id",
                  m->message_id, NULL);
    else
        mr_log_kv(s->log, strcmp(state, "failed") == 0 ? MR_LOG_ERROR
                                                       : MR_LOG_WARN,
                  "outbound",
                  strcmp(state, "failed") == 0 ? "mail failed permanently"
                                               : "mail not sent, will retry",
                  "id", id, "tenant", m->tenant, "to", m->rcpt_to, "attempt",
                  att, "error", err.msg, NULL);
}

static void round_once(struct mr_mail_sender *s)
{
    /* Longer than an attempt can take (mr_smtp_client_send's total is
     * five steps' timeout), so no other claimer takes a row in flight. */
    int64_t lease = (int64_t)s->cfg->outbound.timeout_ms * 6 + 60000;
    for (int batch = 0; batch < 100 && !atomic_load(&s->stopping); batch++) {
        struct mr_outbound_mail *due = NULL;
        size_t n = 0;
        struct mr_error err = {0};
        if (mr_store_outbound_claim(s->st, mr_clock_wall_ms(), lease, DUE_MAX, &due, &n,
                                    &err) != MR_OK) {
            mr_log_kv(s->log, MR_LOG_WARN, "outbound",
                      "cannot claim outbound mail", "error", err.msg, NULL);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            /* Claimed but not tried: due again when the lease ends. */
            if (atomic_load(&s->stopping))
                break;
            send_one(s, &due[i]);
        }
        mr_outbound_mail_list_free(due, n);
        if (n < DUE_MAX)
            return;
    }
}

static void *run(void *arg)
{
    struct mr_mail_sender *s = arg;
    while (!atomic_load(&s->stopping)) {
        round_once(s);
        struct timespec until = mr_clock_deadline(CLOCK_REALTIME, ROUND_MS);
        pthread_mutex_lock(&s->mu);
        if (!atomic_load(&s->stopping))
            (void)pthread_cond_timedwait(&s->cv, &s->mu, &until);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

int mr_mail_sender_start(const struct mr_config *cfg, struct mr_store *st,
                         struct mr_log *log, struct mr_metrics *metrics,
                         struct mr_mail_sender **out, struct mr_error *err)
{
    *out = NULL;
    if (!cfg->outbound.smtp)
        return 0;
    /* Made once, so an unreadable outbound.tls_ca stops the start
     * instead of failing every acknowledgement. */
    SSL_CTX *tls = NULL;
    if (cfg->outbound.tls != MR_OUTBOUND_TLS_NONE) {
        struct mr_error te = {0};
        if (mr_tls_client_ctx(cfg->outbound.tls_ca, cfg->outbound.tls_verify,
                              &tls, &te) < 0)
            return mr_error_set(err, te.code, "outbound mail: %s", te.msg);
    }
    struct mr_mail_sender *s = mr_xcalloc(1, sizeof *s);
    s->tls = tls;
    s->cfg = cfg;
    s->st = st;
    s->log = log;
    s->metrics = metrics;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->stopping, false);
    int rc = pthread_create(&s->thread, NULL, run, s);
    if (rc != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        SSL_CTX_free(s->tls);
        free(s);
        return mr_error_set(err, MR_EIO,
                            "outbound mail: cannot start a thread: %s",
                            strerror(rc));
    }
    *out = s;
    return 0;
}

void mr_mail_sender_stop(struct mr_mail_sender *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stopping, true);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    SSL_CTX_free(s->tls);
    free(s);
}
