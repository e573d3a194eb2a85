/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch.c - the outbound webhook dispatcher (see dispatch.h).
 *
 * One thread, many requests at once: http_out.h's multi interface keeps
 * up to webhook_concurrency deliveries in flight (each kept off private
 * targets, without redirects, with timeouts and a capped body). Each
 * round scans every active subscription's new events into delivery rows,
 * then starts the due ones that are not in flight while slots are free;
 * results are recorded as they come back, those of one poll in one
 * transaction. A receiver that hangs holds its slots until its timeout
 * and no others: one subscription takes at most three quarters of them
 * when there are several. Order within a (subscription, ticket) pair is
 * the store's: its due query offers the next delivery of a pair only when
 * the one before it is done.
 *
 * Waking: a second thread sleeps in mr_store_commit_wait and wakes the
 * poll (curl_multi_wakeup) after every commit, so an event is sent as soon
 * as its transaction commits, not at the next 200 ms tick (which remains
 * for retries coming due).
 *
 * Subscriptions live in the store (the configuration's are written there
 * at start, the API adds its own); the thread keeps a copy of the list
 * and reads it again when the store's webhook counter moves (a change
 * made by this process) or every RELOAD_ROUNDS rounds (another
 * process's).
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
#define RELOAD_ROUNDS 25

/* A delivery in flight; w.id 0: a free slot. */
struct flight {
    struct mr_webhook_delivery w; /* owns its strings */
};

struct mr_dispatch {
    const struct mr_config *cfg;
    struct mr_store *st;
    struct mr_log *log;
    struct mr_metrics *metrics; /* may be NULL */
    pthread_t thread;
    pthread_t waker; /* commits -> mr_http_out_multi_wakeup */
    atomic_bool stopping;
    struct mr_http_out *http; /* libcurl, loaded when the dispatcher starts */
    struct mr_http_out_multi *multi;
    struct flight *flights; /* cfg->webhook_concurrency slots */
    size_t nflights;        /* slots in use */
    size_t nactive;         /* subscriptions active and not disabled */
    size_t conc;            /* webhook_concurrency: slots */
    /* The subscriptions as last read from the store (by tenant, then id),
     * and the store's webhook counter then. */
    struct mr_webhook *subs;
    size_t nsubs;
    uint64_t subs_gen;
    int rounds_since_load; /* -1: never loaded */
    /* Per subscription (parallel to subs), the newest event seq of its
     * tenant it was scanned up to; -1 before the first scan. Scanning goes
     * through the store's writer, so an idle round must not scan: it reads
     * the tenant's head on a read connection first and skips a
     * subscription whose tenant has not moved. */
    int64_t *scanned;
};

static const int64_t schedule_s[] = {0, 5, 300, 1800, 7200, 18000, 36000,
                                     86400};
#define NSCHEDULE ((int)(sizeof schedule_s / sizeof schedule_s[0]))

int64_t mr_dispatch_retry_delay_ms(int attempts, double scale, double rnd)
{
    if (attempts < 1 || attempts >= NSCHEDULE)
        return -1;
    if (!(rnd >= 0.0 && rnd < 1.0))
        rnd = 0.0;
    return (int64_t)((double)schedule_s[attempts] * 1000.0 * scale *
                     (1.0 + 0.2 * rnd));
}

double mr_dispatch_jitter(void)
{
    return (double)(arc4random() & 0xffffff) / 16777216.0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the subscriptions again when they may have changed; what each was
 * scanned up to carries over by id. On failure the old list stays. */
static void load_subs(struct mr_dispatch *d)
{
    uint64_t gen = mr_store_webhooks_gen(d->st);
    if (d->rounds_since_load >= 0 && gen == d->subs_gen &&
        ++d->rounds_since_load < RELOAD_ROUNDS)
        return;
    struct mr_webhook *subs = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    if (mr_store_webhook_list(d->st, NULL, &subs, &n, &err) < 0) {
        mr_logf(d->log, MR_LOG_ERROR, "webhooks", "%s", err.msg);
        return;
    }
    int64_t *scanned = mr_xcalloc(n ? n : 1, sizeof *scanned);
    for (size_t i = 0; i < n; i++) {
        scanned[i] = -1;
        for (size_t k = 0; k < d->nsubs; k++)
            if (d->subs[k].id == subs[i].id)
                scanned[i] = d->scanned[k];
    }
    mr_webhook_list_free(d->subs, d->nsubs);
    free(d->scanned);
    d->subs = subs;
    d->nsubs = n;
    d->scanned = scanned;
    d->subs_gen = gen;
    d->rounds_since_load = 0;
    d->nactive = 0;
    for (size_t i = 0; i < n; i++)
        d->nactive += subs[i].active && subs[i].disabled_at == 0;
}

static const struct mr_webhook *find_sub(const struct mr_dispatch *d,
                                         int64_t webhook_id)
{
    for (size_t i = 0; i < d->nsubs; i++)
        if (d->subs[i].id == webhook_id)
            return &d->subs[i];
    return NULL;
}

/* The same object GET /api/v1/events gives for the event. */
static void event_body(struct mr_buf *b, const struct mr_event_rec *e)
{
    struct mr_json j;
    mr_json_init(&j, b, false);
    mr_http_event_json(&j, e);
}

/* Starts one signed POST with tag f; false (and why) when it cannot be
 * made or signed. */
static bool post(struct mr_dispatch *d, const struct mr_webhook *sub,
                 int64_t seq, const struct mr_buf *body, struct flight *f,
                 char *why, size_t whysz)
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
    long timeout = d->cfg->webhook_timeout_ms;
    struct mr_http_out_req req = {
        .url = sub->url,
        .headers = hdrs,
        .nheaders = sizeof hdrs / sizeof hdrs[0],
        .body = body->p,
        .body_len = body->len,
        .connect_timeout_ms = timeout < 5000 ? timeout : 5000,
        .timeout_ms = timeout,
    };
    if (mr_http_out_multi_add(d->multi, &req, f, &err) < 0) {
        snprintf(why, whysz, "%s", err.msg);
        return false;
    }
    return true;
unsigned_:
    snprintf(why, whysz, "signing: %s", err.msg);
    return false;
}

/* What an attempt's outcome makes of the delivery: *r (its last_error
 * pointing into why, which the caller keeps until r is recorded). */
static void judge(struct mr_dispatch *d, const struct mr_webhook_delivery *w,
                  long status, int64_t retry_after, char *why,
                  struct mr_webhook_result *r)
{
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
        int64_t delay = mr_dispatch_retry_delay_ms(
            attempts, d->cfg->webhook_retry_scale, mr_dispatch_jitter());
        if (delay < 0)
            state = "dead";
        else if ((status == 429 || status == 503) && retry_after > 0)
            delay = retry_after * 1000;
        next = now_ms() + (delay < 0 ? 0 : delay);
    }
    *r = (struct mr_webhook_result){w->id, state, attempts, next,
                                    why[0] ? why : NULL};
    if (d->metrics)
        mr_metrics_inc(&d->metrics->webhook_deliveries[
            status == 410                        ? MR_WEBHOOK_DISABLED
            : strcmp(state, "delivered") == 0 ? MR_WEBHOOK_DELIVERED
            : strcmp(state, "dead") == 0      ? MR_WEBHOOK_DEAD
                                              : MR_WEBHOOK_RETRIED]);
    if (strcmp(state, "dead") == 0)
        mr_logf(d->log, MR_LOG_WARN, "webhooks",
                "evt_%lld to %s is dead after %d attempts: %s",
                (long long)w->seq, w->url, attempts, why);
}

static void record(struct mr_dispatch *d, const struct mr_webhook_result *r,
                   size_t n)
{
    struct mr_error err = {0};
    if (mr_store_webhook_results(d->st, r, n, &err) < 0)
        mr_logf(d->log, MR_LOG_ERROR, "webhooks", "%s", err.msg);
}

static void flight_clear(struct mr_dispatch *d, struct flight *f)
{
    mr_webhook_delivery_clear(&f->w);
    d->nflights--;
}

/* Starts delivery w (taking its strings) in slot f; when it cannot start,
 * the outcome is recorded now and f stays free. */
static void deliver(struct mr_dispatch *d, struct mr_webhook_delivery *w,
                    struct flight *f)
{
    struct mr_error err = {0};
    const struct mr_webhook *sub = find_sub(d, w->webhook_id);
    if (sub == NULL || !sub->active || sub->disabled_at != 0)
        return; /* paused or disabled since the due query: it waits */
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
    char why[300] = "";
    f->w = *w;
    memset(w, 0, sizeof *w); /* its strings are the flight's now */
    d->nflights++;
    bool started = post(d, sub, f->w.seq, &body, f, why, sizeof why);
    mr_buf_release(&body);
    if (!started) {
        struct mr_webhook_result r;
        judge(d, &f->w, 0, -1, why, &r);
        record(d, &r, 1);
        flight_clear(d, f);
    }
}

static bool in_flight(const struct mr_dispatch *d, int64_t id)
{
    for (size_t i = 0; i < d->conc; i++)
        if (d->flights[i].w.id == id)
            return true;
    return false;
}

/* Whether the subscription has its share of the slots: with more than one
 * active, three quarters, so that one that hangs leaves room. */
static bool sub_full(const struct mr_dispatch *d,
                     const struct mr_webhook_delivery *w)
{
    size_t conc = d->conc;
    if (d->nactive < 2)
        return false;
    size_t share = conc - conc / 4, n = 0;
    for (size_t i = 0; i < conc; i++) {
        const struct mr_webhook_delivery *x = &d->flights[i].w;
        n += x->id != 0 && x->webhook_id == w->webhook_id;
    }
    return n >= share;
}

/* Fills the free slots with due deliveries not already in flight. The
 * window read is wider than the free slots: the rows in flight come back
 * too (still pending), and a subscription at its share is passed over. */
static void start_due(struct mr_dispatch *d)
{
    struct mr_error err = {0};
    size_t conc = d->conc;
    if (d->nflights >= conc)
        return;
    size_t window = d->nflights + 4 * conc;
    if (window > MR_EVENTS_LIMIT_MAX)
        window = MR_EVENTS_LIMIT_MAX;
    struct mr_webhook_delivery *due = NULL;
    size_t n = 0;
    if (mr_store_webhook_due(d->st, now_ms(), (int)window, &due, &n, &err) <
        0) {
        mr_logf(d->log, MR_LOG_ERROR, "webhooks", "%s", err.msg);
        return;
    }
    size_t slot = 0;
    for (size_t i = 0; i < n && d->nflights < conc &&
                       !atomic_load(&d->stopping);
         i++) {
        if (in_flight(d, due[i].id) || sub_full(d, &due[i]))
            continue;
        while (d->flights[slot].w.id != 0)
            slot++;
        deliver(d, &due[i], &d->flights[slot]);
    }
    mr_webhook_delivery_list_free(due, n);
}

/* Records the outcomes of k finished requests in one transaction. */
static void finish(struct mr_dispatch *d, struct mr_http_out_done *done,
                   size_t k, struct mr_webhook_result *r, char (*why)[300])
{
    for (size_t i = 0; i < k; i++) {
        struct flight *f = done[i].tag;
        snprintf(why[i], sizeof why[i], "%s", done[i].res.error);
        judge(d, &f->w, done[i].res.status, done[i].res.retry_after_s, why[i],
              &r[i]);
        mr_http_out_res_release(&done[i].res);
    }
    record(d, r, k);
    for (size_t i = 0; i < k; i++)
        flight_clear(d, done[i].tag);
}

static void round_once(struct mr_dispatch *d)
{
    struct mr_error err = {0};
    load_subs(d);
    const char *tenant = NULL; /* whose head is in head/head_ok */
    int64_t head = 0;
    bool head_ok = false;
    for (size_t i = 0; i < d->nsubs && !atomic_load(&d->stopping); i++) {
        const struct mr_webhook *w = &d->subs[i];
        if (!w->active || w->disabled_at != 0)
            continue;
        /* The list is by tenant: one head read per tenant and round. */
        if (tenant == NULL || strcmp(tenant, w->tenant) != 0) {
            tenant = w->tenant;
            head_ok = mr_store_events_head(d->st, tenant, &head, &err) ==
                      MR_OK;
        }
        if (head_ok && head == d->scanned[i])
            continue;
        int added = 0;
        int64_t cursor = 0;
        if (mr_store_webhook_scan(d->st, w->id, SCAN_LIMIT, now_ms(), &added,
                                  &cursor, &err) < 0) {
            mr_logf(d->log, MR_LOG_ERROR, "webhooks", "%s", err.msg);
            continue;
        }
        /* Scans end at the head they saw or later, so head is safe to
         * remember once the cursor reached it: an event after it moves
         * the head again. Short of it, the next round scans on. */
        if (head_ok && cursor >= head)
            d->scanned[i] = head;
    }
    start_due(d);
}

/* Turns commits into wake-ups of the poll. Bounded: it checks stopping
 * at least every ROUND_MS. */
static void *wake(void *arg)
{
    struct mr_dispatch *d = arg;
    uint64_t gen = mr_store_commit_gen(d->st);
    while (!atomic_load(&d->stopping)) {
        uint64_t now = mr_store_commit_wait(d->st, gen, ROUND_MS);
        if (now != gen) {
            gen = now;
            mr_http_out_multi_wakeup(d->multi);
        }
    }
    return NULL;
}

static void *run(void *arg)
{
    struct mr_dispatch *d = arg;
    size_t conc = d->conc;
    struct mr_http_out_done *done = mr_xcalloc(conc, sizeof *done);
    struct mr_webhook_result *r = mr_xcalloc(conc, sizeof *r);
    char(*why)[300] = mr_xcalloc(conc, sizeof *why);
    while (!atomic_load(&d->stopping)) {
        round_once(d);
        /* Wakes when a request finishes, a commit lands (wake()), or a
         * retry may have come due. */
        size_t k = mr_http_out_multi_poll(d->multi, ROUND_MS, done, conc);
        if (k > 0 && !atomic_load(&d->stopping))
            finish(d, done, k, r, why);
        else
            for (size_t i = 0; i < k; i++)
                mr_http_out_res_release(&done[i].res);
    }
    free(why);
    free(r);
    free(done);
    return NULL;
}

static void dispatch_free(struct mr_dispatch *d)
{
    for (size_t i = 0; d->flights && i < d->conc; i++)
        mr_webhook_delivery_clear(&d->flights[i].w);
    mr_http_out_multi_free(d->multi);
    mr_http_out_close(d->http);
    free(d->flights);
    mr_webhook_list_free(d->subs, d->nsubs);
    free(d->scanned);
    free(d);
}

/* Writes the configuration's subscriptions into the store (source
 * 'config'); *any gets whether one of them is active. */
static int sync_config(const struct mr_config *cfg, struct mr_store *st,
                       bool *any, struct mr_error *err)
{
    size_t n = 0;
    for (size_t t = 0; t < cfg->ntenants; t++)
        n += cfg->tenants[t].nwebhooks;
    struct mr_webhook_spec *specs = mr_xcalloc(n ? n : 1, sizeof *specs);
    size_t k = 0;
    *any = false;
    for (size_t t = 0; t < cfg->ntenants; t++) {
        for (size_t i = 0; i < cfg->tenants[t].nwebhooks; i++) {
            const struct mr_webhook_sub *w = &cfg->tenants[t].webhooks[i];
            specs[k++] = (struct mr_webhook_spec){
                .tenant = cfg->tenants[t].name,
                .url = w->url,
                .set_events = true,
                .events = (const char *const *)w->events,
                .nevents = w->nevents,
                .secrets = (const char *const *)w->secrets,
                .nsecrets = w->nsecrets,
                .active = w->active ? 1 : 0,
            };
            *any = *any || w->active;
        }
    }
    int rc = mr_store_webhook_sync_config(st, specs, k, err);
    free(specs);
    return rc;
}

int mr_dispatch_start(const struct mr_config *cfg, struct mr_store *st,
                      struct mr_log *log, struct mr_metrics *metrics,
                      struct mr_dispatch **out, struct mr_error *err)
{
    *out = NULL;
    bool any = false;
    int rc = sync_config(cfg, st, &any, err);
    if (rc != MR_OK)
        return rc;
    struct mr_dispatch *d = mr_xcalloc(1, sizeof *d);
    d->cfg = cfg;
    d->st = st;
    d->log = log;
    d->metrics = metrics;
    d->rounds_since_load = -1;
    atomic_init(&d->stopping, false);
    size_t conc = cfg->webhook_concurrency > 0
                      ? (size_t)cfg->webhook_concurrency
                      : 1;
    d->conc = conc;
    d->flights = mr_xcalloc(conc, sizeof *d->flights);
    if (mr_http_out_open(cfg->webhooks_allow_private, &d->http, err) !=
            MR_OK ||
        mr_http_out_multi_new(d->http, conc, &d->stopping, &d->multi, err) !=
            MR_OK) {
        dispatch_free(d);
        /* Without libcurl, API subscriptions cannot be served either; a
         * server without configured webhooks still runs. */
        if (!any) {
            mr_logf(log, MR_LOG_WARN, "webhooks", "webhooks are off: %s",
                    err ? err->msg : "no libcurl");
            return 0;
        }
        return MR_EIO;
    }
    rc = pthread_create(&d->thread, NULL, run, d);
    if (rc == 0) {
        rc = pthread_create(&d->waker, NULL, wake, d);
        if (rc != 0) {
            atomic_store(&d->stopping, true);
            mr_http_out_multi_wakeup(d->multi);
            pthread_join(d->thread, NULL);
        }
    }
    if (rc != 0) {
        dispatch_free(d);
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
    atomic_store(&d->stopping, true);
    mr_http_out_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    pthread_join(d->waker, NULL);
    dispatch_free(d);
}
