/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webhooks.c - the outbound webhook delivery queue.
 *
 * A subscription (tenant, url; defined in the configuration) has a cursor
 * over the outbox. The dispatcher's scan turns the events after it into
 * delivery rows and moves it, in one write transaction of its own: the
 * delivering transaction that wrote the events is never widened, and a
 * crash between two scans loses nothing (the cursor moves with the rows).
 * UNIQUE (tenant, url, seq) makes a row per (subscription, event) at most.
 */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"

static const char SQL_SUB_ADD[] =
    "INSERT OR IGNORE INTO webhook_subs (tenant, url, cursor)"
    " VALUES (?1, ?2, (SELECT coalesce(max(seq), 0) FROM events"
    " WHERE tenant = ?1))";
static const char SQL_SUB_GET[] =
    "SELECT cursor, disabled_at IS NOT NULL FROM webhook_subs"
    " WHERE tenant = ?1 AND url = ?2";
static const char SQL_SCAN_END[] =
    "SELECT max(seq) FROM (SELECT seq FROM events WHERE tenant = ?1"
    " AND seq > ?2 ORDER BY seq LIMIT ?3)";
static const char SQL_ADD_ROWS[] =
    "INSERT OR IGNORE INTO webhook_deliveries (tenant, url, seq,"
    " next_attempt_at, created_at, updated_at)"
    " SELECT ?1, ?2, seq, ?5, ?5, ?5 FROM events WHERE tenant = ?1"
    " AND seq > ?3 AND seq <= ?4"
    " AND (?6 IS NULL OR type IN (SELECT value FROM json_each(?6)))";
static const char SQL_SUB_MOVE[] =
    "UPDATE webhook_subs SET cursor = ?3 WHERE tenant = ?1 AND url = ?2";
static const char SQL_DUE[] =
    "SELECT d.id, d.tenant, d.url, d.seq, d.attempts FROM webhook_deliveries d"
    " JOIN webhook_subs s ON s.tenant = d.tenant AND s.url = d.url"
    " WHERE d.state = 'pending' AND d.next_attempt_at <= ?1"
    " AND s.disabled_at IS NULL ORDER BY d.next_attempt_at, d.id LIMIT ?2";
static const char SQL_RESULT[] =
    "UPDATE webhook_deliveries SET state = ?2, attempts = ?3,"
    " next_attempt_at = ?4, last_error = ?5, updated_at = ?6 WHERE id = ?1";
static const char SQL_DISABLE[] =
    "UPDATE webhook_subs SET disabled_at = ?3 WHERE tenant = ?1 AND url = ?2";

struct scan_arg {
    const char *tenant;
    const char *url;
    const char *types_json;
    int limit;
    int64_t now;
    int added;
};

static int op_scan(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct scan_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SUB_ADD, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->url);
    if ((rc = mr__stmt_exec(c, s, "cannot add a webhook subscription", err)) <
        0)
        return rc;
    if ((rc = mr__stmt(c, SQL_SUB_GET, &s, err)) < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->url);
    int r = sqlite3_step(s);
    int64_t cursor = 0;
    bool disabled = true;
    if (r == SQLITE_ROW) {
        cursor = sqlite3_column_int64(s, 0);
        disabled = sqlite3_column_int(s, 1) != 0;
    }
    mr__stmt_done(s);
    if (r != SQLITE_ROW)
        return mr__sqlerr(c, r, "cannot read a webhook cursor", err);
    if (disabled)
        return 0;
    if ((rc = mr__stmt(c, SQL_SCAN_END, &s, err)) < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    sqlite3_bind_int64(s, 2, cursor);
    sqlite3_bind_int(s, 3, a->limit);
    r = sqlite3_step(s);
    bool none = r != SQLITE_ROW || sqlite3_column_type(s, 0) == SQLITE_NULL;
    int64_t end = none ? cursor : sqlite3_column_int64(s, 0);
    mr__stmt_done(s);
    if (r != SQLITE_ROW)
        return mr__sqlerr(c, r, "cannot scan the outbox", err);
    if (end <= cursor)
        return 0;
    if ((rc = mr__stmt(c, SQL_ADD_ROWS, &s, err)) < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->url);
    sqlite3_bind_int64(s, 3, cursor);
    sqlite3_bind_int64(s, 4, end);
    sqlite3_bind_int64(s, 5, a->now);
    mr__bind_str(s, 6, a->types_json);
    if ((rc = mr__stmt_exec(c, s, "cannot add webhook deliveries", err)) < 0)
        return rc;
    a->added = sqlite3_changes(c->db);
    if ((rc = mr__stmt(c, SQL_SUB_MOVE, &s, err)) < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->url);
    sqlite3_bind_int64(s, 3, end);
    return mr__stmt_exec(c, s, "cannot move a webhook cursor", err);
}

int mr_store_webhook_scan(struct mr_store *st, const char *tenant,
                          const char *url, const char *const *types,
                          size_t ntypes, int limit, int64_t now, int *added,
                          struct mr_error *err)
{
    *added = 0;
    if (tenant == NULL || url == NULL || limit < 1 ||
        limit > MR_EVENTS_LIMIT_MAX)
        return mr_error_set(err, MR_EINVAL,
                            "webhook scan: a tenant, a url and a limit");
    struct mr_buf tb;
    mr_buf_init(&tb, 0);
    if (ntypes > 0) {
        struct mr_json j;
        mr_json_init(&j, &tb, false);
        mr_json_arr_begin(&j);
        for (size_t i = 0; i < ntypes; i++)
            mr_json_cstr(&j, types[i]);
        mr_json_arr_end(&j);
    }
    struct scan_arg a = {tenant, url, ntypes > 0 ? tb.p : NULL, limit, now, 0};
    int rc = mr__store_write_lazy(st, op_scan, &a, err);
    mr_buf_release(&tb);
    *added = a.added;
    return rc;
}

void mr_webhook_delivery_list_free(struct mr_webhook_delivery *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        free(d[i].tenant);
        free(d[i].url);
    }
    free(d);
}

int mr_store_webhook_due(struct mr_store *st, int64_t now, int max,
                         struct mr_webhook_delivery **out, size_t *n,
                         struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    if (max < 1 || max > MR_EVENTS_LIMIT_MAX)
        return mr_error_set(err, MR_EINVAL, "webhook due: a bad limit");
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_DUE, &s, err);
    if (rc < 0) {
        mr__store_read_release(st, c);
        return rc;
    }
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int(s, 2, max);
    struct mr_webhook_delivery *d = NULL;
    size_t cnt = 0;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW && cnt < (size_t)max) {
        if (d == NULL)
            d = mr_xcalloc((size_t)max, sizeof *d);
        struct mr_webhook_delivery *x = &d[cnt++];
        x->id = sqlite3_column_int64(s, 0);
        x->tenant = mr__col_str(s, 1);
        x->url = mr__col_str(s, 2);
        x->seq = sqlite3_column_int64(s, 3);
        x->attempts = sqlite3_column_int(s, 4);
    }
    if (r != SQLITE_DONE && r != SQLITE_ROW)
        rc = mr__sqlerr(c, r, "cannot read webhook deliveries", err);
    mr__stmt_done(s);
    mr__store_read_release(st, c);
    if (rc < 0) {
        mr_webhook_delivery_list_free(d, cnt);
        return rc;
    }
    *out = d;
    *n = cnt;
    return 0;
}

struct result_arg {
    int64_t id;
    const char *state;
    int attempts;
    int64_t next_at;
    const char *last_error;
};

static int op_result(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct result_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_RESULT, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    mr__bind_str(s, 2, a->state);
    sqlite3_bind_int(s, 3, a->attempts);
    sqlite3_bind_int64(s, 4, a->next_at);
    mr__bind_str(s, 5, a->last_error);
    sqlite3_bind_int64(s, 6, mr__store_now_ms());
    return mr__stmt_exec(c, s, "cannot record a webhook attempt", err);
}

int mr_store_webhook_result(struct mr_store *st, int64_t id,
                            const char *state, int attempts, int64_t next_at,
                            const char *last_error, struct mr_error *err)
{
    struct result_arg a = {id, state, attempts, next_at, last_error};
    return mr__store_write(st, op_result, &a, err);
}

struct results_arg {
    const struct mr_webhook_result *r;
    size_t n;
};

static int op_results(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct results_arg *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        const struct mr_webhook_result *x = &a->r[i];
        struct result_arg one = {x->id, x->state, x->attempts, x->next_at,
                                 x->last_error};
        int rc = op_result(c, &one, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mr_store_webhook_results(struct mr_store *st,
                             const struct mr_webhook_result *r, size_t n,
                             struct mr_error *err)
{
    if (n == 0)
        return 0;
    struct results_arg a = {r, n};
    return mr__store_write_lazy(st, op_results, &a, err);
}

struct disable_arg {
    const char *tenant;
    const char *url;
    int64_t now;
};

static int op_disable(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct disable_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_DISABLE, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->url);
    sqlite3_bind_int64(s, 3, a->now);
    return mr__stmt_exec(c, s, "cannot disable a webhook", err);
}

int mr_store_webhook_disable(struct mr_store *st, const char *tenant,
                             const char *url, int64_t now,
                             struct mr_error *err)
{
    struct disable_arg a = {tenant, url, now};
    return mr__store_write(st, op_disable, &a, err);
}
