/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch.c - the outbound webhook dispatcher (see dispatch.h).
 *
 * Three threads, so that the one that sends never waits for the store's
 * writer (whose transactions, under an ingest load, wait for the fsync of
 * the batch they join):
 *
 *  - the sender (run): many requests at once, as http_out.h's multi
 *    interface keeps up to webhook_concurrency deliveries in flight (each
 *    kept off private targets, without redirects, with timeouts and a
 *    capped body). Each round it fills the free slots from a list of due
 *    deliveries (read again, leaving out the ids it holds, when it is used
 *    up) and reads the events of all it starts in one query. A finished
 *    request's outcome is judged and handed to the recorder, and its slot
 *    is free at once.
 *  - the recorder (keep): writes the outcomes handed to it, all that
 *    queued up meanwhile in one transaction. Until that commits, the
 *    sender keeps their ids out of its due queries (they are still
 *    pending in the store) and the store's per-ticket order holds the
 *    next delivery of their (subscription, ticket) back. The queue is
 *    bounded (BOOK_PER_SLOT per slot); a sender that fills it waits.
 *  - the scanner (scan_main): sleeps in mr_store_commit_wait; after a
 *    commit it turns every active subscription's new events into delivery
 *    rows (SCAN_LIMIT per transaction, again while the tenant's head is
 *    ahead) and wakes the sender's poll (curl_multi_wakeup), so an event
 *    is sent as soon as its transaction commits, not at the next 200 ms
 *    tick (which remains for retries coming due).
 *
 * At least once: a row is marked delivered only after a 2xx, and an
 * outcome the recorder could not write (or that a stop left unwritten)
 * leaves the row pending, to be sent again with the same webhook-id. A
 * receiver that hangs holds its slots until its timeout and no others:
 * one subscription takes at most three quarters of them when there are
 * several. Order within a (subscription, ticket) pair is the store's: its
 * due query offers the next delivery of a pair only when the one before
 * it is recorded as done.
 *
 * Subscriptions live in the store (the configuration's are written there
 * at start, the API adds its own); the sender and the scanner each keep a
 * copy of the list and read it again when the store's webhook counter
 * moves (a change made by this process) or every RELOAD_ROUNDS rounds
 * (another process's).
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
#include "util/backoff.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"

#define ROUND_MS 200
#define SCAN_LIMIT 500
#define RELOAD_ROUNDS 25
/* Outcomes waiting for the recorder, per slot: room for the sender to go
 * on for a few of the writer's commits before it waits. */
#define BOOK_PER_SLOT 4
#define WHY_MAX 300
/* The due list read at once, per slot. */
#define DUE_PER_SLOT 4

/* A delivery in flight; w.id 0: a free slot. */
struct flight {
    struct mr_webhook_delivery w; /* owns its strings */
};

/* A copy of the store's subscriptions (by tenant, then id), one per
 * thread that reads it. */
struct subs_view {
    struct mr_webhook *subs;
    size_t nsubs;
    size_t nactive;        /* active and not disabled */
    uint64_t gen;          /* the store's webhook counter when read */
    int rounds_since_load; /* -1: never loaded */
    /* Per subscription (parallel to subs; the scanner's), the newest event
     * seq of its tenant it was scanned up to; -1 before the first scan.
     * Scanning goes through the store's writer, so a wake-up must not scan
     * for nothing: it reads the tenant's head on a read connection first
     * and skips a subscription whose tenant has not moved. */
    int64_t *scanned;
};

/* An outcome handed to the recorder (r.last_error is set from why when it
 * is written). */
struct booked {
    struct mr_webhook_result r;
    char why[WHY_MAX];
};

struct mr_dispatch {
    const struct mr_config *cfg;
    struct mr_store *st;
    struct mr_log *log;
    struct mr_metrics *metrics; /* may be NULL */
    pthread_t thread;           /* the sender */
    pthread_t scanner; /* commits -> scans -> mr_http_out_multi_wakeup */
    pthread_t keeper;  /* the recorder */
    bool sender_up, scanner_up, keeper_up;
    atomic_bool stopping;
    struct mr_http_out *http; /* libcurl, loaded when the dispatcher starts */
    struct mr_http_out_multi *multi;
    struct flight *flights; /* cfg->webhook_concurrency slots */
    size_t nflights;        /* slots in use */
    size_t conc;            /* webhook_concurrency: slots */
    struct subs_view view;  /* the sender's */
    /* The sender's scratch: the slots a round starts and their seqs (conc
     * each); the ids it leaves out of the due query (conc + bookcap). */
    struct flight **picked;
    int64_t *seqs;
    int64_t *skip;
    /* The due list as last read (DUE_PER_SLOT * conc at most; started
     * ones zeroed), and how many of them are left. */
    struct mr_webhook_delivery *due;
    size_t ndue, nleft;
    /* Outcomes handed to the recorder and not yet committed:
     * book[0..nbook), bookcap at most. Under mu; cond signals both ways
     * (something to write; room again; the sender is gone). */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct booked *book;
    size_t nbook, bookcap;
    bool sender_done; /* the recorder ends once it is and book is empty */
};

static const int64_t schedule_s[] = {0,    5,     300,   1800,
                                     7200, 18000, 36000, 86400};
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


/* Reads the subscriptions again when they may have changed; what each was
 * scanned up to carries over by id. On failure the old list stays. */
static void load_subs(struct mr_dispatch *d, struct subs_view *v)
{
    uint64_t gen = mr_store_webhooks_gen(d->st);
    if (v->rounds_since_load >= 0 && gen == v->gen &&
        ++v->rounds_since_load < RELOAD_ROUNDS)
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
        for (size_t k = 0; k < v->nsubs; k++)
            if (v->subs[k].id == subs[i].id)
                scanned[i] = v->scanned[k];
    }
    mr_webhook_list_free(v->subs, v->nsubs);
    free(v->scanned);
    v->subs = subs;
    v->nsubs = n;
    v->scanned = scanned;
    v->gen = gen;
    v->rounds_since_load = 0;
    v->nactive = 0;
    for (size_t i = 0; i < n; i++)
        v->nactive += subs[i].active && subs[i].disabled_at == 0;
}

static void view_clear(struct subs_view *v)
{
    mr_webhook_list_free(v->subs, v->nsubs);
    free(v->scanned);
    memset(v, 0, sizeof *v);
}

static const struct mr_webhook *find_sub(const struct mr_dispatch *d,
                                         int64_t webhook_id)
{
    for (size_t i = 0; i < d->view.nsubs; i++)
        if (d->view.subs[i].id == webhook_id)
            return &d->view.subs[i];
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
    int64_t now_s = mr_clock_wall_ms() / 1000;
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
                                "User-Agent: mailroom-webhooks",
                                h_id,
                                h_ts,
                                h_sig,
                                h_hex};
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
        (void)mr_store_webhook_disable(d->st, w->tenant, w->url,
                                       mr_clock_wall_ms(), NULL);
        mr_logf(d->log, MR_LOG_WARN, "webhooks",
                "%s answered 410: subscription of tenant %s disabled", w->url,
                w->tenant);
    } else {
        int64_t delay = mr_dispatch_retry_delay_ms(
            attempts, d->cfg->webhook_retry_scale, mr_backoff_rnd());
        if (delay < 0)
            state = "dead";
        else if ((status == 429 || status == 503) && retry_after > 0)
            delay = retry_after * 1000;
        next = mr_clock_wall_ms() + (delay < 0 ? 0 : delay);
    }
    *r = (struct mr_webhook_result){w->id, state, attempts, next,
                                    why[0] ? why : NULL};
    if (d->metrics)
        mr_metrics_inc(
            &d->metrics->webhook_deliveries[status == 410 ? MR_WEBHOOK_DISABLED
                                            : strcmp(state, "delivered") == 0
                                                ? MR_WEBHOOK_DELIVERED
                                            : strcmp(state, "dead") == 0
                                                ? MR_WEBHOOK_DEAD
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

/* Hands outcome r to the recorder (a copy of it and of its last_error);
 * waits while the recorder's queue is full. */
static void book(struct mr_dispatch *d, const struct mr_webhook_result *r)
{
    pthread_mutex_lock(&d->mu);
    while (d->nbook == d->bookcap)
        pthread_cond_wait(&d->cond, &d->mu);
    struct booked *b = &d->book[d->nbook++];
    b->r = *r;
    snprintf(b->why, sizeof b->why, "%s", r->last_error ? r->last_error : "");
    b->r.last_error = NULL;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

/* The recorder (see the top): writes what the sender booked, all that is
 * queued in one transaction, until the sender is gone and nothing is
 * left. Only the sender appends, and past nbook, so book[0..k) is the
 * recorder's to read without the lock until it takes them off. */
static void *keep(void *arg)
{
    struct mr_dispatch *d = arg;
    struct mr_webhook_result *r = mr_xcalloc(d->bookcap, sizeof *r);
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (d->nbook == 0 && !d->sender_done)
            pthread_cond_wait(&d->cond, &d->mu);
        if (d->nbook == 0)
            break;
        size_t k = d->nbook;
        pthread_mutex_unlock(&d->mu);
        for (size_t i = 0; i < k; i++) {
            r[i] = d->book[i].r;
            r[i].last_error = d->book[i].why[0] ? d->book[i].why : NULL;
        }
        /* On failure the rows stay pending and are sent again (at least
         * once), with the same webhook-id. */
        record(d, r, k);
        pthread_mutex_lock(&d->mu);
        memmove(d->book, d->book + k, (d->nbook - k) * sizeof *d->book);
        d->nbook -= k;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->mu);
        /* The next deliveries of their (subscription, ticket) pairs may be
         * due now. */
        mr_http_out_multi_wakeup(d->multi);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    free(r);
    return NULL;
}

/* The event of seq in ev[0..n) (in seq order), or NULL. */
static const struct mr_event_rec *find_event(const struct mr_event_rec *ev,
                                             size_t n, int64_t seq)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ev[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ev[lo].seq == seq ? &ev[lo] : NULL;
}

/* Starts the request of slot f (its subscription checked when it was
 * filled) with event e's body; when it cannot start, the outcome is
 * recorded now and f is free again. */
static void deliver(struct mr_dispatch *d, struct flight *f,
                    const struct mr_event_rec *e)
{
    const struct mr_webhook *sub = find_sub(d, f->w.webhook_id);
    struct mr_buf body;
    mr_buf_init(&body, 0);
    event_body(&body, e);
    char why[WHY_MAX] = "";
    bool started = post(d, sub, f->w.seq, &body, f, why, sizeof why);
    mr_buf_release(&body);
    if (!started) {
        struct mr_webhook_result r;
        judge(d, &f->w, 0, -1, why, &r);
        record(d, &r, 1);
        flight_clear(d, f);
    }
}

/* Reads the events of the np slots just filled (picked, seqs) in one query
 * and starts their requests. */
static void send_picked(struct mr_dispatch *d, size_t np)
{
    struct mr_error err = {0};
    struct mr_event_rec *ev = NULL;
    size_t nev = 0;
    if (mr_store_events_by_seq(d->st, d->seqs, np, &ev, &nev, &err) < 0) {
        mr_logf(d->log, MR_LOG_ERROR, "webhooks", "%s", err.msg);
        /* Still pending: a later round tries again. */
        for (size_t i = 0; i < np; i++)
            flight_clear(d, d->picked[i]);
        return;
    }
    for (size_t i = 0; i < np; i++) {
        struct flight *f = d->picked[i];
        const struct mr_event_rec *e = find_event(ev, nev, f->w.seq);
        if (e != NULL) {
            deliver(d, f, e);
            continue;
        }
        (void)mr_store_webhook_result(d->st, f->w.id, "dead", f->w.attempts, 0,
                                      "the event is gone", NULL);
        flight_clear(d, f);
    }
    mr_event_list_free(ev, nev);
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
    if (d->view.nactive < 2)
        return false;
    size_t share = conc - conc / 4, n = 0;
    for (size_t i = 0; i < conc; i++) {
        const struct mr_webhook_delivery *x = &d->flights[i].w;
        n += x->id != 0 && x->webhook_id == w->webhook_id;
    }
    return n >= share;
}

/* Reads the due list again into d->due: up to DUE_PER_SLOT per slot, so
 * that one query serves the starts of several rounds. The store takes the
 * subscriptions in turns, so the slots sub_full leaves free find another
 * subscription's rows in the list even behind one's large backlog. It leaves out the
 * rows in flight and those whose outcome is not written yet (both still
 * pending in the store). What the list held and was not started is
 * dropped: the new one has it again if it is still due. */
static void load_due(struct mr_dispatch *d)
{
    struct mr_error err = {0};
    size_t conc = d->conc;
    mr_webhook_delivery_list_free(d->due, d->ndue);
    d->due = NULL;
    d->ndue = d->nleft = 0;
    size_t nskip = 0;
    for (size_t i = 0; i < conc; i++)
        if (d->flights[i].w.id != 0)
            d->skip[nskip++] = d->flights[i].w.id;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->nbook; i++)
        d->skip[nskip++] = d->book[i].r.id;
    pthread_mutex_unlock(&d->mu);
    size_t window = DUE_PER_SLOT * conc;
    if (window > MR_EVENTS_LIMIT_MAX)
        window = MR_EVENTS_LIMIT_MAX;
    if (mr_store_webhook_due(d->st, mr_clock_wall_ms(), (int)window, d->skip,
                             nskip, &d->due, &d->ndue, &err) < 0) {
        mr_logf(d->log, MR_LOG_ERROR, "webhooks", "%s", err.msg);
        return;
    }
    d->nleft = d->ndue;
}

/* Moves deliveries of the due list into free slots (picked[np..]) while
 * slots are free; returns np then. One of a subscription at its share, or
 * paused or disabled since the list was read, stays in the list. */
static size_t pick(struct mr_dispatch *d, size_t np)
{
    size_t slot = 0;
    for (size_t i = 0;
         i < d->ndue && d->nflights < d->conc && !atomic_load(&d->stopping);
         i++) {
        struct mr_webhook_delivery *w = &d->due[i];
        if (w->id == 0 || in_flight(d, w->id) || sub_full(d, w))
            continue;
        const struct mr_webhook *sub = find_sub(d, w->webhook_id);
        if (sub == NULL || !sub->active || sub->disabled_at != 0)
            continue;
        while (d->flights[slot].w.id != 0)
            slot++;
        struct flight *f = &d->flights[slot];
        f->w = *w;
        memset(w, 0, sizeof *w); /* its strings are the slot's */
        d->nleft--;
        d->nflights++;
        d->picked[np] = f;
        d->seqs[np++] = f->w.seq;
    }
    return np;
}

/* Fills the free slots from the due list, read again when it is used up
 * or nothing in it could start. Every delivery the list holds was the
 * first pending one of its (subscription, ticket) when it was read and
 * stays so until it is sent (only this thread sends), so starting them in
 * any order, together, keeps the store's per-ticket order. */
static void start_due(struct mr_dispatch *d)
{
    if (d->nflights >= d->conc)
        return;
    size_t np = pick(d, 0);
    if (d->nflights < d->conc && (np == 0 || d->nleft == 0)) {
        load_due(d);
        np = pick(d, np);
    }
    if (np > 0)
        send_picked(d, np);
}

/* Judges k finished requests and hands their outcomes to the recorder;
 * their slots are free at once. */
static void finish(struct mr_dispatch *d, struct mr_http_out_done *done,
                   size_t k)
{
    for (size_t i = 0; i < k; i++) {
        struct flight *f = done[i].tag;
        char why[WHY_MAX];
        snprintf(why, sizeof why, "%s", done[i].res.error);
        struct mr_webhook_result r;
        judge(d, &f->w, done[i].res.status, done[i].res.retry_after_s, why, &r);
        mr_http_out_res_release(&done[i].res);
        book(d, &r);
        flight_clear(d, f);
    }
}

/* Scans every active subscription whose tenant's head moved; whether rows
 * were added. */
static bool scan_subs(struct mr_dispatch *d, struct subs_view *v)
{
    struct mr_error err = {0};
    const char *tenant = NULL; /* whose head is in head/head_ok */
    int64_t head = 0;
    bool head_ok = false, any = false;
    for (size_t i = 0; i < v->nsubs && !atomic_load(&d->stopping); i++) {
        const struct mr_webhook *w = &v->subs[i];
        if (!w->active || w->disabled_at != 0)
            continue;
        /* The list is by tenant: one head read per tenant and round. */
        if (tenant == NULL || strcmp(tenant, w->tenant) != 0) {
            tenant = w->tenant;
            head_ok = mr_store_events_head(d->st, tenant, &head, &err) == MR_OK;
        }
        if (head_ok && head == v->scanned[i])
            continue;
        int added = 0;
        int64_t cursor = 0;
        if (mr_store_webhook_scan(d->st, w->id, SCAN_LIMIT, mr_clock_wall_ms(),
                                  &added, &cursor, &err) < 0) {
            mr_logf(d->log, MR_LOG_ERROR, "webhooks", "%s", err.msg);
            continue;
        }
        any = any || added > 0;
        /* Scans end at the head they saw or later, so head is safe to
         * remember once the cursor reached it: an event after it moves
         * the head again. Short of it, the scan's own commit wakes the
         * scanner, which scans on. */
        if (head_ok && cursor >= head)
            v->scanned[i] = head;
    }
    return any;
}

/* The scanner (see the top). Bounded: it checks stopping at least every
 * ROUND_MS. A commit that added no rows wakes the sender too: it may have
 * made a delivery due (a redrive, a subscription enabled). */
static void *scan_main(void *arg)
{
    struct mr_dispatch *d = arg;
    struct subs_view v = {.rounds_since_load = -1};
    uint64_t gen = mr_store_commit_gen(d->st);
    bool moved = true;
    while (!atomic_load(&d->stopping)) {
        load_subs(d, &v);
        /* Without an active subscription a commit cannot make anything
         * due: the sender's own tick is enough, and the ingest's commits
         * do not each cost it a due query. */
        if (scan_subs(d, &v) || (moved && v.nactive > 0))
            mr_http_out_multi_wakeup(d->multi);
        uint64_t now = mr_store_commit_wait(d->st, gen, ROUND_MS);
        moved = now != gen;
        gen = now;
    }
    view_clear(&v);
    return NULL;
}

static void sender_gone(struct mr_dispatch *d)
{
    pthread_mutex_lock(&d->mu);
    d->sender_done = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

/* The sender (see the top). */
static void *run(void *arg)
{
    struct mr_dispatch *d = arg;
    size_t conc = d->conc;
    struct mr_http_out_done *done = mr_xcalloc(conc, sizeof *done);
    while (!atomic_load(&d->stopping)) {
        load_subs(d, &d->view);
        start_due(d);
        /* Wakes when a request finishes, the scanner added rows or saw a
         * commit, the recorder wrote outcomes, or a retry may have come
         * due. */
        size_t k = mr_http_out_multi_poll(d->multi, ROUND_MS, done, conc);
        if (k > 0 && !atomic_load(&d->stopping))
            finish(d, done, k);
        else
            for (size_t i = 0; i < k; i++)
                mr_http_out_res_release(&done[i].res);
    }
    free(done);
    sender_gone(d);
    return NULL;
}

/* Stops the threads that run (the sender before the recorder, which
 * writes what the sender booked before it ends). */
static void stop_threads(struct mr_dispatch *d)
{
    atomic_store(&d->stopping, true);
    mr_http_out_multi_wakeup(d->multi);
    if (d->sender_up)
        pthread_join(d->thread, NULL);
    else
        sender_gone(d);
    if (d->scanner_up)
        pthread_join(d->scanner, NULL);
    if (d->keeper_up)
        pthread_join(d->keeper, NULL);
    d->sender_up = d->scanner_up = d->keeper_up = false;
}

static void dispatch_free(struct mr_dispatch *d)
{
    for (size_t i = 0; d->flights && i < d->conc; i++)
        mr_webhook_delivery_clear(&d->flights[i].w);
    mr_http_out_multi_free(d->multi);
    mr_http_out_close(d->http);
    free(d->flights);
    view_clear(&d->view);
    free(d->picked);
    free(d->seqs);
    free(d->skip);
    mr_webhook_delivery_list_free(d->due, d->ndue);
    free(d->book);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

int mr_dispatch_sync_config(const struct mr_config *cfg, struct mr_store *st,
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
    int rc = mr_dispatch_sync_config(cfg, st, &any, err);
    if (rc != MR_OK)
        return rc;
    struct mr_dispatch *d = mr_xcalloc(1, sizeof *d);
    d->cfg = cfg;
    d->st = st;
    d->log = log;
    d->metrics = metrics;
    atomic_init(&d->stopping, false);
    size_t conc =
        cfg->webhook_concurrency > 0 ? (size_t)cfg->webhook_concurrency : 1;
    d->conc = conc;
    d->flights = mr_xcalloc(conc, sizeof *d->flights);
    d->view.rounds_since_load = -1;
    d->picked = mr_xcalloc(conc, sizeof *d->picked);
    d->seqs = mr_xcalloc(conc, sizeof *d->seqs);
    d->bookcap = BOOK_PER_SLOT * conc;
    d->book = mr_xcalloc(d->bookcap, sizeof *d->book);
    d->skip = mr_xcalloc(conc + d->bookcap, sizeof *d->skip);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cond, NULL);
    if (mr_http_out_open(cfg->webhooks_allow_private, &d->http, err) != MR_OK ||
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
    rc = pthread_create(&d->keeper, NULL, keep, d);
    d->keeper_up = rc == 0;
    if (rc == 0) {
        rc = pthread_create(&d->thread, NULL, run, d);
        d->sender_up = rc == 0;
    }
    if (rc == 0) {
        rc = pthread_create(&d->scanner, NULL, scan_main, d);
        d->scanner_up = rc == 0;
    }
    if (rc != 0) {
        stop_threads(d);
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
    stop_threads(d);
    dispatch_free(d);
}
