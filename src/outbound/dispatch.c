/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch.c - the outbound webhook dispatcher (see dispatch.h).
 *
 * One thread, one request at a time through http_out.h (which keeps
 * requests off private targets and caps what is read). Each round scans
 * every active subscription's new events into delivery rows, then
 * attempts the due ones.
 */
#include "outbound/dispatch.h"
#include "outbound/http_out.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/ticket_json.h"
#include "http/webhook_sig.h"
#include "util/buf.h"
#include "util/json.h"

#define ROUND_MS 200
#define SCAN_LIMIT 200
#define DUE_MAX 32

struct mr_dispatch {
    const struct mr_config *cfg;
    struct mr_store *st;
    struct mr_log *log;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stopping;
    struct mr_http_out *http; /* libcurl, loaded when the dispatcher starts */
    /* Per tenant, the newest event seq its subscriptions were all scanned
     * up to; -1 before the first scan. Scanning goes through the store's
     * writer, so an idle round must not scan: it reads the tenant's head
     * on a read connection first and skips a tenant that has not moved. */
    int64_t *scanned;
};

static const int64_t schedule_s[] = {0, 5, 300, 1800, 7200, 18000, 36000,
                                     86400};
#define NSCHEDULE ((int)(sizeof schedule_s / sizeof schedule_s[0]))

int64_t mr_dispatch_retry_delay_ms(int attempts, double scale)
{
    if (attempts < 1 || attempts >= NSCHEDULE)
        return -1;
    return (int64_t)((double)schedule_s[attempts] * 1000.0 * scale);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct mr_webhook_sub *find_sub(const struct mr_config *cfg,
                                             const char *tenant,
                                             const char *url)
{
    const struct mr_tenant *t = mr_config_tenant(cfg, tenant);
    for (size_t i = 0; t && i < t->nwebhooks; i++)
        if (strcmp(t->webhooks[i].url, url) == 0)
            return &t->webhooks[i];
    return NULL;
}

/* The same object GET /api/v1/events gives for the event. */
static void event_body(struct mr_buf *b, const struct mr_event_rec *e)
{
    struct mr_json j;
    mr_json_init(&j, b, false);
    mr_http_event_json(&j, e);
}

/* One signed POST; every outcome is in *res (released by the caller). */
static void post(struct mr_dispatch *d, const struct mr_webhook_sub *sub,
                 int64_t seq, const struct mr_buf *body,
                 struct mr_http_out_res *res)
{
    char id[32], ts[24], sigs[2 * (MR_WEBHOOK_STD_SIG_LEN + 1)] = "";
    char hex[128];
    int64_t now_s = now_ms() / 1000;
    snprintf(id, sizeof id, "evt_%lld", (long long)seq);
    snprintf(ts, sizeof ts, "%lld", (long long)now_s);
    struct mr_error err = {0};
    for (size_t i = 0; i < sub->nsecrets; i++) {
        char one[MR_WEBHOOK_STD_SIG_LEN];
        if (mr_webhook_sign_std(sub->secrets[i], id, now_s, body->p, body->len,
                                one, sizeof one, &err) < 0)
            goto unsigned_;
        size_t l = strlen(sigs);
        snprintf(sigs + l, sizeof sigs - l, "%s%s", l ? " " : "", one);
    }
    if (mr_webhook_sign(sub->secrets[0], -1, body->p, body->len, hex,
                        sizeof hex, &err) < 0)
        goto unsigned_;
    char h_id[64], h_ts[64], h_sig[160], h_hex[160];
    snprintf(h_id, sizeof h_id, "webhook-id: %s", id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %s", ts);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sigs);
    snprintf(h_hex, sizeof h_hex, "%s: %s", MR_WEBHOOK_SIG_HEADER, hex);
    const char *const hdrs[] = {"Content-Type: application/json",
                                "User-Agent: mailroom-webhooks", h_id, h_ts,
                                h_sig, h_hex};
    struct mr_http_out_req req = {
        .url = sub->url,
        .headers = hdrs,
        .nheaders = sizeof hdrs / sizeof hdrs[0],
        .body = body->p,
        .body_len = body->len,
    };
    mr_http_out_do(d->http, &req, &d->stopping, res);
    return;
unsigned_:
    memset(res, 0, sizeof *res);
    res->retry_after_s = -1;
    snprintf(res->error, sizeof res->error, "signing: %s", err.msg);
}

static void deliver(struct mr_dispatch *d, const struct mr_webhook_delivery *w)
{
    struct mr_error err = {0};
    const struct mr_webhook_sub *sub = find_sub(d->cfg, w->tenant, w->url);
    if (sub == NULL || !sub->active)
        return; /* no longer configured: kept pending until it comes back */
    struct mr_event_rec *ev = NULL;
    size_t n = 0;
    if (mr_store_list_events(d->st, w->tenant, w->seq - 1, 1, NULL, 0, &ev, &n,
                             &err) < 0 ||
        n != 1 || ev[0].seq != w->seq) {
        mr_event_list_free(ev, n);
        (void)mr_store_webhook_result(d->st, w->id, "dead", w->attempts, 0,
                                      "the event is gone", NULL);
        return;
    }
    struct mr_buf body;
    mr_buf_init(&body, 0);
    event_body(&body, &ev[0]);
    mr_event_list_free(ev, n);
    struct mr_http_out_res res;
    post(d, sub, w->seq, &body, &res);
    mr_buf_release(&body);
    long status = res.status;
    int64_t retry_after = res.retry_after_s;
    char why[300];
    snprintf(why, sizeof why, "%s", res.error);
    mr_http_out_res_release(&res);
    int attempts = w->attempts + 1;
    const char *state = "pending";
    int64_t next = 0;
    if (status >= 200 && status <= 299) {
        state = "delivered";
        why[0] = '\0';
    } else if (status == 410) {
        (void)mr_store_webhook_disable(d->st, w->tenant, w->url, now_ms(),
                                       NULL);
        mr_logf(d->log, MR_LOG_WARN, "webhooks",
                "%s answered 410: subscription of tenant %s disabled", w->url,
                w->tenant);
    } else {
        int64_t delay = mr_dispatch_retry_delay_ms(attempts,
                                                   d->cfg->webhook_retry_scale);
        if (delay < 0)
            state = "dead";
        else if ((status == 429 || status == 503) && retry_after > 0)
            delay = retry_after * 1000;
        next = now_ms() + (delay < 0 ? 0 : delay);
    }
    if (mr_store_webhook_result(d->st, w->id, state, attempts, next,
                                why[0] ? why : NULL, &err) < 0)
        mr_logf(d->log, MR_LOG_ERROR, "webhooks", "%s", err.msg);
    if (strcmp(state, "dead") == 0)
        mr_logf(d->log, MR_LOG_WARN, "webhooks",
                "evt_%lld to %s is dead after %d attempts: %s",
                (long long)w->seq, w->url, attempts, why);
}

static void round_once(struct mr_dispatch *d)
{
    struct mr_error err = {0};
    const struct mr_config *cfg = d->cfg;
    for (size_t t = 0; t < cfg->ntenants; t++) {
        const struct mr_tenant *tn = &cfg->tenants[t];
        if (tn->nwebhooks == 0)
            continue;
        int64_t head = 0;
        bool complete =
            mr_store_events_head(d->st, tn->name, &head, &err) == MR_OK;
        if (complete && head == d->scanned[t])
            continue;
        for (size_t i = 0; i < tn->nwebhooks; i++) {
            const struct mr_webhook_sub *w = &tn->webhooks[i];
            int added = 0;
            if (!w->active)
                continue;
            if (mr_store_webhook_scan(d->st, tn->name, w->url,
                                      (const char *const *)w->events,
                                      w->nevents, SCAN_LIMIT, now_ms(), &added,
                                      &err) < 0) {
                mr_logf(d->log, MR_LOG_ERROR, "webhooks", "%s", err.msg);
                complete = false;
            } else if (added >= SCAN_LIMIT) {
                complete = false; /* more than one page behind */
            }
        }
        /* Scans end at the head they saw or later, so head is safe to
         * remember: an event after it moves the head again. */
        if (complete)
            d->scanned[t] = head;
    }
    struct mr_webhook_delivery *due = NULL;
    size_t n = 0;
    if (mr_store_webhook_due(d->st, now_ms(), DUE_MAX, &due, &n, &err) < 0) {
        mr_logf(d->log, MR_LOG_ERROR, "webhooks", "%s", err.msg);
        return;
    }
    for (size_t i = 0; i < n && !atomic_load(&d->stopping); i++)
        deliver(d, &due[i]);
    mr_webhook_delivery_list_free(due, n);
}

static void *run(void *arg)
{
    struct mr_dispatch *d = arg;
    while (!atomic_load(&d->stopping)) {
        round_once(d);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += ROUND_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&d->mu);
        if (!atomic_load(&d->stopping))
            (void)pthread_cond_timedwait(&d->cv, &d->mu, &until);
        pthread_mutex_unlock(&d->mu);
    }
    return NULL;
}

int mr_dispatch_start(const struct mr_config *cfg, struct mr_store *st,
                      struct mr_log *log, struct mr_dispatch **out,
                      struct mr_error *err)
{
    *out = NULL;
    bool any = false;
    for (size_t t = 0; t < cfg->ntenants; t++)
        for (size_t i = 0; i < cfg->tenants[t].nwebhooks; i++)
            any = any || cfg->tenants[t].webhooks[i].active;
    if (!any)
        return 0;
    struct mr_dispatch *d = mr_xcalloc(1, sizeof *d);
    d->scanned = mr_xcalloc(cfg->ntenants ? cfg->ntenants : 1,
                            sizeof *d->scanned);
    for (size_t t = 0; t < cfg->ntenants; t++)
        d->scanned[t] = -1;
    if (mr_http_out_open(cfg->webhooks_allow_private, &d->http, err) !=
        MR_OK) {
        free(d->scanned);
        free(d);
        return MR_EIO;
    }
    d->cfg = cfg;
    d->st = st;
    d->log = log;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    atomic_init(&d->stopping, false);
    int rc = pthread_create(&d->thread, NULL, run, d);
    if (rc != 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        mr_http_out_close(d->http);
        free(d->scanned);
        free(d);
        return mr_error_set(err, MR_EIO, "webhooks: cannot start a thread: %s",
                            strerror(rc));
    }
    *out = d;
    return 0;
}

void mr_dispatch_stop(struct mr_dispatch *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    atomic_store(&d->stopping, true);
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    mr_http_out_close(d->http);
    free(d->scanned);
    free(d);
}
