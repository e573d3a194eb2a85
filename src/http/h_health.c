/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_health.c - GET /healthz (the process answers), GET /readyz (it can
 * take mail now: the database and the blob folder accept a write),
 * GET /api/v1/health (the same checks and the antivirus, for a dashboard)
 * and GET /metrics (Prometheus text, with gauges read from the store).
 * None needs a token: they are for the machine's own supervisor and
 * scraper, and say nothing about any tenant (reasons, which name paths,
 * go to the log).
 */
#include "http/http-private.h"

#include "mime/date.h"
#include "scan/scanner.h"

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

/* Whether the database (*db) and the blob folder (*bl) accept a write now:
 * 0 or < 0. The reasons (paths, errno text) go to the log; answers only
 * name the part that failed, which is what an operator of a load
 * balancer needs. */
static void check_writable(const struct mr__http_ctx *ctx, int *db, int *bl)
{
    struct mr_error serr = {0}, berr = {0};
    *db = mr_store_ping(ctx->deps.store, &serr);
    *bl = mr_blob_check_writable(ctx->deps.blob, &berr);
    if (ctx->deps.log) {
        if (*db < 0)
            ctx->deps.log(ctx->deps.log_ctx, serr.msg);
        if (*bl < 0)
            ctx->deps.log(ctx->deps.log_ctx, berr.msg);
    }
}

void mr__http_readyz(const struct mr__http_ctx *ctx,
                     struct mr__http_request *req,
                     struct mr__http_response *resp)
{
    (void)req;
    int db, bl;
    check_writable(ctx, &db, &bl);
    if (db == 0 && bl == 0) {
        struct mr_json j;
        mr__http_json(resp, 200, &j);
        mr_json_obj_begin(&j);
        mr_json_key(&j, "status");
        mr_json_cstr(&j, "ok");
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

/* clamd's part of /api/v1/health: a PING now (its timeout capped, so a
 * hung clamd cannot hold the answer), and what the scanner has counted. */
static bool clamd_health(const struct mr__http_ctx *ctx, struct mr_json *j)
{
    const struct mr_config *cfg = ctx->deps.cfg;
    struct mr_clamd_options o;
    mr_scanner_clamd_options(cfg, &o);
    if (o.timeout_ms > 2000)
        o.timeout_ms = 2000;
    struct mr_error perr = {0};
    int ping = mr_clamd_ping(&o, &perr);
    if (ping < 0 && ctx->deps.log)
        ctx->deps.log(ctx->deps.log_ctx, perr.msg);
    struct mr_scanner_status s;
    mr_scanner_status(ctx->deps.scanner, &s);
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
    check_writable(ctx, &db, &bl);
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
        clamd_ok = clamd_health(ctx, &j);
    else
        mr_json_null(&j);
    mr_json_obj_end(&j);
    mr_json_key(&j, "status");
    mr_json_cstr(&j, db < 0 || bl < 0 ? "failed"
                     : clamd_ok      ? "ok"
                                     : "degraded");
    mr_json_obj_end(&j);
}
