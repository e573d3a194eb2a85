/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_health.c - GET /healthz (the process answers), GET /readyz (it can
 * take mail now: the database and the blob folder accept a write),
 * GET /api/v1/health (the same checks and the antivirus, for a dashboard)
 * and GET /metrics (Prometheus text, with gauges read from the store).
 * None needs a token: they are for the machine's own supervisor and
 * scraper, and say nothing about any tenant (reasons, which name paths,
 * go to the log).
 *
 * Because anyone who reaches the port may ask, the costly checks (a write
 * through the database's writer, a synced probe file, a connection to
 * clamd) are not made per request: a reading is kept for
 * MR__HTTP_HEALTH_TTL_MS and shared, and at most one reading of each kind
 * is in flight; requests that arrive meanwhile wait for it rather than
 * start their own. So a flood of health requests costs at most one
 * database write, one probe file and one clamd PING per TTL. Answers say
 * how old their reading is (age_ms, checked_at). clamd's status also
 * takes the scanner's own conversations into account: when the scanner
 * heard from clamd (or failed to reach it) more recently than the last
 * PING, that is the reading, and while it is fresh no PING is made.
 */
#include "http/http-private.h"

#include <pthread.h>

#include "mime/date.h"
#include "scan/scanner.h"

/* One kind of reading (the writable checks, or clamd's PING). */
struct health_slot {
    /* Unix ms when taken, by the server's clock (deps.now_ms), so that
     * tests can age a reading. */
    int64_t wall;
    int a, b;     /* writable: database, blob store; clamd: the PING */
    bool busy;    /* a reading is being taken */
    uint64_t gen; /* readings taken so far */
};

struct mr__health_cache {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a reading was taken */
    struct health_slot writable, clamd;
};

struct mr__health_cache *mr__http_health_cache_new(void)
{
    struct mr__health_cache *hc = mr_xcalloc(1, sizeof *hc);
    pthread_mutex_init(&hc->mu, NULL);
    pthread_cond_init(&hc->cv, NULL);
    return hc;
}

void mr__http_health_cache_free(struct mr__health_cache *hc)
{
    if (hc == NULL)
        return;
    pthread_cond_destroy(&hc->cv);
    pthread_mutex_destroy(&hc->mu);
    free(hc);
}

/* Takes one reading of a kind: fills a and b of *r. */
typedef void (*health_take_fn)(const struct mr__http_ctx *ctx,
                               struct health_slot *r);

/* *out gets a reading of slot's kind no older than the TTL: the cached
 * one, the one another request is taking (waited for), or a new one. */
static void health_read(const struct mr__http_ctx *ctx,
                        struct health_slot *slot, health_take_fn take,
                        struct health_slot *out)
{
    struct mr__health_cache *hc = ctx->health;
    if (hc == NULL) {
        take(ctx, out);
        out->wall = mr__http_now_ms(ctx);
        return;
    }
    pthread_mutex_lock(&hc->mu);
    uint64_t seen = slot->gen;
    /* A reading that finished while we waited is ours, however long it
     * took: waiting requests never chain readings of their own. */
    while (slot->busy)
        pthread_cond_wait(&hc->cv, &hc->mu);
    int64_t age = mr__http_now_ms(ctx) - slot->wall;
    /* A clock set back makes the reading stale, not fresh for ever. */
    if (slot->gen != seen ||
        (slot->gen > 0 && age >= 0 && age < MR__HTTP_HEALTH_TTL_MS)) {
        *out = *slot;
        pthread_mutex_unlock(&hc->mu);
        return;
    }
    slot->busy = true;
    pthread_mutex_unlock(&hc->mu);
    struct health_slot r = {0};
    take(ctx, &r);
    pthread_mutex_lock(&hc->mu);
    slot->a = r.a;
    slot->b = r.b;
    slot->wall = mr__http_now_ms(ctx);
    slot->gen++;
    slot->busy = false;
    *out = *slot;
    pthread_cond_broadcast(&hc->cv);
    pthread_mutex_unlock(&hc->mu);
}

void mr__http_healthz(const struct mr__http_ctx *ctx,
                      struct mr__http_request *req,
                      struct mr__http_response *resp)
{
    (void)ctx;
    (void)req;
    struct mr_json j;
    mr__http_json(resp, 200, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "status");
    mr_json_cstr(&j, "ok");
    mr_json_obj_end(&j);
}

/* Whether the database (a) and the blob folder (b) accept a write now:
 * 0 or < 0. The reasons (paths, errno text) go to the log; answers only
 * name the part that failed, which is what an operator of a load
 * balancer needs. */
static void take_writable(const struct mr__http_ctx *ctx, struct health_slot *r)
{
    struct mr_error serr = {0}, berr = {0};
    r->a = mr_store_ping(ctx->deps.store, &serr);
    r->b = mr_blob_check_writable(ctx->deps.blob, &berr);
    if (ctx->deps.log) {
        if (r->a < 0)
            ctx->deps.log(ctx->deps.log_ctx, serr.msg);
        if (r->b < 0)
            ctx->deps.log(ctx->deps.log_ctx, berr.msg);
    }
}

/* The writable checks (cached); *wall gets when they were made. */
static void check_writable(const struct mr__http_ctx *ctx, int *db, int *bl,
                           int64_t *wall)
{
    struct health_slot r;
    health_read(ctx, ctx->health ? &ctx->health->writable : NULL, take_writable,
                &r);
    *db = r.a;
    *bl = r.b;
    *wall = r.wall;
}

/* How old a reading taken at wall (Unix ms) is, never negative. */
static int64_t age_of(const struct mr__http_ctx *ctx, int64_t wall)
{
    int64_t age = mr__http_now_ms(ctx) - wall;
    return age > 0 ? age : 0;
}

static void json_when(struct mr_json *j, const struct mr__http_ctx *ctx,
                      int64_t wall)
{
    char when[32];
    mr_json_key(j, "checked_at");
    mr_date_rfc3339(wall / 1000, when);
    mr_json_cstr(j, when);
    mr_json_key(j, "age_ms");
    mr_json_int(j, age_of(ctx, wall));
}

void mr__http_readyz(const struct mr__http_ctx *ctx,
                     struct mr__http_request *req,
                     struct mr__http_response *resp)
{
    (void)req;
    int db, bl;
    int64_t wall;
    check_writable(ctx, &db, &bl, &wall);
    if (db == 0 && bl == 0) {
        struct mr_json j;
        mr__http_json(resp, 200, &j);
        mr_json_obj_begin(&j);
        mr_json_key(&j, "status");
        mr_json_cstr(&j, "ok");
        json_when(&j, ctx, wall);
        mr_json_key(&j, "checks");
        mr_json_obj_begin(&j);
        mr_json_key(&j, "database");
        mr_json_cstr(&j, "ok");
        mr_json_key(&j, "blob_store");
        mr_json_cstr(&j, "ok");
        mr_json_obj_end(&j);
        mr_json_obj_end(&j);
        return;
    }
    mr__http_problem(resp, 503, "not ready: %s%s%s",
                     db < 0 ? "the database does not accept writes" : "",
                     db < 0 && bl < 0 ? "; " : "",
                     bl < 0 ? "the blob store is not writable" : "");
    mr__http_header_add(resp, "Retry-After", "%d", 5);
}

void mr__http_metrics(const struct mr__http_ctx *ctx,
                      struct mr__http_request *req,
                      struct mr__http_response *resp)
{
    (void)req;
    struct mr_metrics_gauges g;
    mr_metrics_gauges_unknown(&g);
    struct mr_store_stats st;
    struct mr_error err = {0};
    if (mr_store_stats(ctx->deps.store, &st, &err) == 0) {
        g.queue_ready = st.jobs_ready;
        g.queue_leased = st.jobs_leased;
        g.jobs_dead = st.jobs_dead;
        g.messages = st.messages;
        g.tickets = st.tickets;
        g.webhook_pending = st.webhook_pending;
        g.webhook_dead = st.webhook_dead;
        g.notify_pending = st.notify_pending;
        g.notify_dead = st.notify_dead;
        g.mail_pending = st.mail_pending;
        g.mail_failed = st.mail_failed;
        g.scan_pending = st.scan_pending;
        g.scan_error = st.scan_error;
    } else if (ctx->deps.log) {
        /* Unknown gauges are left out of the page, never reported as 0. */
        ctx->deps.log(ctx->deps.log_ctx, err.msg);
    }
    static const struct mr_metrics zero; /* all counters 0 */
    const struct mr_metrics *m = ctx->deps.metrics ? ctx->deps.metrics : &zero;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    mr_buf_reset(&resp->body);
    mr_metrics_render(m, &g, &resp->body);
}

/* A PING (a), its whole conversation capped at MR__HTTP_HEALTH_PING_MS
 * so that a hung clamd cannot hold the answer. */
static void take_clamd(const struct mr__http_ctx *ctx, struct health_slot *r)
{
    struct mr_clamd_options o;
    mr_scanner_clamd_options(ctx->deps.cfg, &o);
    if (o.timeout_ms <= 0 || o.timeout_ms > MR__HTTP_HEALTH_PING_MS)
        o.timeout_ms = MR__HTTP_HEALTH_PING_MS;
    o.total_ms = MR__HTTP_HEALTH_PING_MS;
    struct mr_error perr = {0};
    r->a = mr_clamd_ping(&o, &perr);
    if (r->a < 0 && ctx->deps.log)
        ctx->deps.log(ctx->deps.log_ctx, perr.msg);
}

/* clamd's part of /api/v1/health: the freshest of the scanner's last
 * outcome and a PING (made only when the scanner's is stale), and what the
 * scanner has counted. *wall gets when that reading was made. */
static bool clamd_health(const struct mr__http_ctx *ctx, struct mr_json *j,
                         int64_t *wall)
{
    const struct mr_config *cfg = ctx->deps.cfg;
    struct mr_scanner_status s;
    mr_scanner_status(ctx->deps.scanner, &s);
    bool scanner_ok = s.last_ok_at >= s.down_at;
    int64_t scanner_at = scanner_ok ? s.last_ok_at : s.down_at;
    int ping;
    if (scanner_at > 0 && age_of(ctx, scanner_at) < MR__HTTP_HEALTH_TTL_MS) {
        ping = scanner_ok ? 0 : MR_EAGAIN;
        *wall = scanner_at;
    } else {
        struct health_slot r;
        health_read(ctx, ctx->health ? &ctx->health->clamd : NULL, take_clamd,
                    &r);
        ping = r.a;
        *wall = r.wall;
        /* The scanner may have heard since the PING (a cached one). */
        if (scanner_at > r.wall) {
            ping = scanner_ok ? 0 : MR_EAGAIN;
            *wall = scanner_at;
        }
    }
    int64_t pending = -1;
    struct mr_error err = {0};
    if (mr_store_scan_pending_count(ctx->deps.store, &pending, &err) < 0)
        pending = -1;
    mr_json_obj_begin(j);
    mr_json_key(j, "status");
    mr_json_cstr(j, ping == 0 ? "ok" : "down");
    mr_json_key(j, "on_error");
    mr_json_cstr(j, cfg->clamd.on_error_block ? "block" : "keep");
    mr_json_key(j, "pending");
    if (pending >= 0)
        mr_json_int(j, pending);
    else
        mr_json_null(j);
    mr_json_key(j, "scanned");
    mr_json_int(j, (int64_t)s.scanned);
    mr_json_key(j, "infected");
    mr_json_int(j, (int64_t)s.infected);
    mr_json_key(j, "errors");
    mr_json_int(j, (int64_t)s.errors);
    json_when(j, ctx, *wall);
    mr_json_key(j, "last_ok_at");
    if (s.last_ok_at > 0) {
        char when[32];
        mr_date_rfc3339(s.last_ok_at / 1000, when);
        mr_json_cstr(j, when);
    } else {
        mr_json_null(j);
    }
    mr_json_obj_end(j);
    return ping == 0;
}

void mr__http_health(const struct mr__http_ctx *ctx,
                     struct mr__http_request *req,
                     struct mr__http_response *resp)
{
    (void)req;
    int db, bl;
    int64_t wall, clamd_wall = 0;
    check_writable(ctx, &db, &bl, &wall);
    const struct mr_config *cfg = ctx->deps.cfg;
    bool av = cfg->clamd.socket || cfg->clamd.address;
    /* Mail cannot be taken without the database or the blob store (503);
     * without clamd it is taken and its attachments wait (degraded). */
    struct mr_json j;
    mr__http_json(resp, db == 0 && bl == 0 ? 200 : 503, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "checks");
    mr_json_obj_begin(&j);
    mr_json_key(&j, "database");
    mr_json_cstr(&j, db == 0 ? "ok" : "failed");
    mr_json_key(&j, "blob_store");
    mr_json_cstr(&j, bl == 0 ? "ok" : "failed");
    mr_json_key(&j, "clamd");
    bool clamd_ok = true;
    if (av)
        clamd_ok = clamd_health(ctx, &j, &clamd_wall);
    else
        mr_json_null(&j);
    mr_json_obj_end(&j);
    /* The oldest reading the answer rests on. */
    json_when(&j, ctx, av && clamd_wall < wall ? clamd_wall : wall);
    mr_json_key(&j, "status");
    mr_json_cstr(&j, db < 0 || bl < 0 ? "failed"
                     : clamd_ok      ? "ok"
                                     : "degraded");
    mr_json_obj_end(&j);
}
