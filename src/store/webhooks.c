/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webhooks.c - webhook subscriptions and their delivery queue.
 *
 * A subscription (webhook_subs row: id, tenant, url unique per tenant,
 * filter, secrets, cursor over the outbox) comes from the configuration
 * (source 'config', rewritten at every serve start) or the API (source
 * 'api'). The dispatcher's scan turns the events after a cursor into
 * delivery rows and moves it, in one write transaction of its own: the
 * delivering transaction that wrote the events is never widened, and a
 * crash between two scans loses nothing (the cursor moves with the rows).
 * UNIQUE (webhook_id, seq) makes a row per (subscription, event) at most.
 *
 * Order: the due query hands out a delivery only when no earlier event of
 * the same (subscription, ticket) is pending, so a sender that runs a
 * batch concurrently can never reorder a ticket's events, and a later
 * event waits for an earlier one's retries. A dead delivery no longer
 * holds the ticket back (it is out of the queue until redriven).
 *
 * A delivery that dies writes a delivery.failed outbox event in the same
 * transaction, so a consumer learns of every dead delivery exactly as it
 * learns of tickets. A delivery of a delivery.failed event that dies
 * writes none: one dead receiver must not feed itself events forever.
 *
 * Secrets are stored as written (they sign every request); the API shows
 * only a hint of them.
 */
#include "store/store-private.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"

/* ---- SQL ------------------------------------------------------------------
 */

#define SUB_COLS                                                               \
    "id, tenant, url, events, secrets, active, source, disabled_at,"           \
    " disabled_reason, cursor, created_at, updated_at"

static const char SQL_SUB_GET[] =
    "SELECT " SUB_COLS " FROM webhook_subs WHERE id = ?1"
    " AND (?2 IS NULL OR tenant = ?2)";
static const char SQL_SUB_LIST[] =
    "SELECT " SUB_COLS " FROM webhook_subs WHERE (?1 IS NULL OR tenant = ?1)"
    " ORDER BY tenant, id LIMIT ?2";
static const char SQL_SUB_COUNT[] =
    "SELECT count(*) FROM webhook_subs WHERE tenant = ?1";
static const char SQL_SUB_ADD[] =
    "INSERT INTO webhook_subs (tenant, url, events, secrets, active, source,"
    " cursor, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'api',"
    " (SELECT coalesce(max(seq), 0) FROM events WHERE tenant = ?1), ?6, ?6)"
    " RETURNING id";
static const char SQL_SUB_UPDATE[] =
    "UPDATE webhook_subs SET url = coalesce(?3, url),"
    " events = CASE WHEN ?4 THEN ?5 ELSE events END,"
    " secrets = coalesce(?6, secrets), active = coalesce(?7, active),"
    " disabled_at = CASE WHEN ?7 = 1 THEN NULL ELSE disabled_at END,"
    " disabled_reason = CASE WHEN ?7 = 1 THEN NULL ELSE disabled_reason END,"
    " updated_at = ?8 WHERE id = ?1 AND tenant = ?2";
static const char SQL_SUB_SOURCE[] =
    "SELECT source, active FROM webhook_subs WHERE id = ?1 AND tenant = ?2";
static const char SQL_SUB_DEL_ROWS[] =
    "DELETE FROM webhook_deliveries WHERE webhook_id = ?1";
static const char SQL_SUB_DEL[] = "DELETE FROM webhook_subs WHERE id = ?1";
static const char SQL_SYNC_OFF[] =
    "UPDATE webhook_subs SET active = 0, updated_at = ?1"
    " WHERE source = 'config' AND active = 1";
static const char SQL_SYNC_UPSERT[] =
    "INSERT INTO webhook_subs (tenant, url, events, secrets, active, source,"
    " cursor, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'config',"
    " (SELECT coalesce(max(seq), 0) FROM events WHERE tenant = ?1), ?6, ?6)"
    " ON CONFLICT (tenant, url) DO UPDATE SET events = excluded.events,"
    " secrets = excluded.secrets, active = excluded.active, source = 'config',"
    " updated_at = excluded.updated_at";
static const char SQL_DISABLE[] =
    "UPDATE webhook_subs SET disabled_at = ?3, disabled_reason = ?4,"
    " updated_at = ?3 WHERE tenant = ?1 AND url = ?2";

static const char SQL_SCAN_SUB[] =
    "SELECT tenant, cursor, events, active = 1 AND disabled_at IS NULL"
    " FROM webhook_subs WHERE id = ?1";
static const char SQL_SCAN_END[] =
    "SELECT max(seq) FROM (SELECT seq FROM events WHERE tenant = ?1"
    " AND seq > ?2 ORDER BY seq LIMIT ?3)";
static const char SQL_ADD_ROWS[] =
    "INSERT OR IGNORE INTO webhook_deliveries (tenant, webhook_id, seq,"
    " event_type, ticket_id, next_attempt_at, created_at, updated_at)"
    " SELECT ?1, ?2, seq, type, nullif(ticket_id, 0), ?5, ?5, ?5 FROM events"
    " WHERE tenant = ?1 AND seq > ?3 AND seq <= ?4"
    " AND (?6 IS NULL OR type IN (SELECT value FROM json_each(?6)))";
static const char SQL_SUB_MOVE[] =
    "UPDATE webhook_subs SET cursor = ?2 WHERE id = ?1";

#define DELIVERY_COLS                                                          \
    "d.id, d.tenant, s.url, d.seq, d.attempts, d.webhook_id,"                  \
    " coalesce(d.ticket_id, 0), d.event_type, d.state, d.next_attempt_at,"     \
    " d.last_error, d.created_at, d.updated_at"

/* Fair between subscriptions (see mr_store_webhook_due): each active
 * subscription's own oldest due rows, at most ?2 of them, found by its
 * partial index (webhook_id, next_attempt_at) with the scan stopping at
 * the limit, so a backlog of any size costs ?2 rows; then ranked within
 * the subscription and the window taken rank by rank. CROSS JOIN keeps
 * the subscriptions the outer loop: the planner would otherwise scan
 * every delivery row and test each against the subquery. */
static const char SQL_DUE[] =
    "WITH cand AS (SELECT d.id AS id, ROW_NUMBER() OVER (PARTITION BY"
    "  d.webhook_id ORDER BY d.next_attempt_at, d.id) AS rn"
    "  FROM webhook_subs s CROSS JOIN webhook_deliveries d"
    "  WHERE s.active = 1 AND s.disabled_at IS NULL AND d.id IN ("
    "   SELECT p.id FROM webhook_deliveries p WHERE p.webhook_id = s.id"
    "   AND p.state = 'pending' AND p.next_attempt_at <= ?1"
    "   AND p.id NOT IN (SELECT value FROM json_each(?3))"
    "   AND (p.ticket_id IS NULL OR NOT EXISTS (SELECT 1"
    "    FROM webhook_deliveries q WHERE q.webhook_id = p.webhook_id"
    "    AND q.ticket_id = p.ticket_id AND q.state = 'pending'"
    "    AND q.seq < p.seq))"
    "   ORDER BY p.next_attempt_at, p.id LIMIT ?2))"
    " SELECT " DELIVERY_COLS " FROM cand c"
    " JOIN webhook_deliveries d ON d.id = c.id"
    " JOIN webhook_subs s ON s.id = d.webhook_id"
    " ORDER BY c.rn, d.next_attempt_at, d.id LIMIT ?2";
static const char SQL_DELIVERY_LIST[] =
    "SELECT " DELIVERY_COLS " FROM webhook_deliveries d"
    " JOIN webhook_subs s ON s.id = d.webhook_id"
    " WHERE (?1 IS NULL OR d.tenant = ?1) AND (?2 IS NULL OR d.state = ?2)"
    " AND (?3 = 0 OR d.webhook_id = ?3) AND d.id > ?4 ORDER BY d.id LIMIT ?5";
static const char SQL_DELIVERY_GET[] =
    "SELECT " DELIVERY_COLS " FROM webhook_deliveries d"
    " JOIN webhook_subs s ON s.id = d.webhook_id"
    " WHERE d.id = ?1 AND (?2 IS NULL OR d.tenant = ?2)";
static const char SQL_RESULT[] =
    "UPDATE webhook_deliveries SET state = ?2, attempts = ?3,"
    " next_attempt_at = ?4, last_error = ?5, updated_at = ?6 WHERE id = ?1";
static const char SQL_REDRIVE_STATE[] =
    "SELECT state FROM webhook_deliveries WHERE id = ?1"
    " AND (?2 IS NULL OR tenant = ?2)";
static const char SQL_REDRIVE[] =
    "UPDATE webhook_deliveries SET state = 'pending', attempts = 0,"
    " next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1";
/* The same statement text as the ticket writer's (tickets.c). */
/* ---- event types ------------------------------------------------------------
 */

/* Every type the outbox writes (docs/events.md). attachment.scanned is
 * listed ahead of its writer so that subscriptions can ask for it. */
static const char *const event_types[] = {
    "email.received",     "ticket.created",   "ticket.updated",
    "message.added",      "bounce.unmatched", "delivery.failed",
    "attachment.scanned", "message.ignored",
};

bool mr_store_event_type_known(const char *type)
{
    for (size_t i = 0; type && i < sizeof event_types / sizeof *event_types;
         i++)
        if (strcmp(type, event_types[i]) == 0)
            return true;
    return false;
}

/* ---- rows -------------------------------------------------------------------
 */

void mr_webhook_clear(struct mr_webhook *w)
{
    if (w == NULL)
        return;
    free(w->tenant);
    free(w->url);
    for (size_t i = 0; i < w->nevents; i++)
        free(w->events[i]);
    free(w->events);
    for (size_t i = 0; i < w->nsecrets; i++)
        free(w->secrets[i]);
    free(w->source);
    free(w->disabled_reason);
    memset(w, 0, sizeof *w);
}

void mr_webhook_list_free(struct mr_webhook *w, size_t n)
{
    for (size_t i = 0; w && i < n; i++)
        mr_webhook_clear(&w[i]);
    free(w);
}

/* The strings of a JSON array text, at most max of them (the writers
 * never store more). */
static size_t json_strings(const char *text, char **out, size_t max)
{
    if (text == NULL)
        return 0;
    json_t *a = json_loads(text, 0, NULL);
    size_t n = 0;
    for (size_t i = 0; json_is_array(a) && i < json_array_size(a) && n < max;
         i++) {
        const char *v = json_string_value(json_array_get(a, i));
        if (v)
            out[n++] = mr_xstrndup(v, strlen(v));
    }
    json_decref(a);
    return n;
}

static void read_sub(sqlite3_stmt *s, struct mr_webhook *w)
{
    memset(w, 0, sizeof *w);
    w->id = sqlite3_column_int64(s, 0);
    w->tenant = mr__col_str(s, 1);
    w->url = mr__col_str(s, 2);
    const char *ev = (const char *)sqlite3_column_text(s, 3);
    if (ev) {
        w->events = mr_xcalloc(MR_WEBHOOK_TYPES_MAX, sizeof *w->events);
        w->nevents = json_strings(ev, w->events, MR_WEBHOOK_TYPES_MAX);
    }
    w->nsecrets = json_strings((const char *)sqlite3_column_text(s, 4),
                               w->secrets, MR_WEBHOOK_SECRETS_MAX);
    w->active = sqlite3_column_int(s, 5) != 0;
    w->source = mr__col_str(s, 6);
    w->disabled_at = sqlite3_column_int64(s, 7);
    w->disabled_reason = mr__col_str(s, 8);
    w->cursor = sqlite3_column_int64(s, 9);
    w->created_at = sqlite3_column_int64(s, 10);
    w->updated_at = sqlite3_column_int64(s, 11);
}

void mr_webhook_delivery_clear(struct mr_webhook_delivery *d)
{
    if (d == NULL)
        return;
    free(d->tenant);
    free(d->url);
    free(d->event_type);
    free(d->state);
    free(d->last_error);
    memset(d, 0, sizeof *d);
}

void mr_webhook_delivery_list_free(struct mr_webhook_delivery *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++)
        mr_webhook_delivery_clear(&d[i]);
    free(d);
}

static void read_delivery(sqlite3_stmt *s, struct mr_webhook_delivery *x)
{
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(s, 0);
    x->tenant = mr__col_str(s, 1);
    x->url = mr__col_str(s, 2);
    x->seq = sqlite3_column_int64(s, 3);
    x->attempts = sqlite3_column_int(s, 4);
    x->webhook_id = sqlite3_column_int64(s, 5);
    x->ticket_id = sqlite3_column_int64(s, 6);
    x->event_type = mr__col_str(s, 7);
    x->state = mr__col_str(s, 8);
    x->next_attempt_at = sqlite3_column_int64(s, 9);
    x->last_error = mr__col_str(s, 10);
    x->created_at = sqlite3_column_int64(s, 11);
    x->updated_at = sqlite3_column_int64(s, 12);
}

/* A JSON array text of n strings (NULL when n is 0), in b. */
static const char *json_array_text(struct mr_buf *b, const char *const *v,
                                   size_t n)
{
    if (n == 0 || v == NULL)
        return NULL;
    struct mr_json j;
    mr_json_init(&j, b, false);
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++)
        mr_json_cstr(&j, v[i]);
    mr_json_arr_end(&j);
    return b->p;
}

static void gen_bump(struct mr_store *st)
{
    __atomic_add_fetch(&st->webhooks_gen, 1, __ATOMIC_RELEASE);
}

uint64_t mr_store_webhooks_gen(struct mr_store *st)
{
    return __atomic_load_n(&st->webhooks_gen, __ATOMIC_ACQUIRE);
}

/* ---- reading subscriptions
 * --------------------------------------------------- */

static int get_sub(struct mr__conn *c, const char *tenant, int64_t id,
                   struct mr_webhook *out, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SUB_GET, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    mr__bind_str(s, 2, tenant);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        read_sub(s, out);
    mr__stmt_done(s);
    if (r == SQLITE_DONE)
        return mr_error_set(err, MR_ENOTFOUND, "no webhook %lld",
                            (long long)id);
    if (r != SQLITE_ROW)
        return mr__sqlerr(c, r, "cannot read a webhook", err);
    return 0;
}

int mr_store_webhook_get(struct mr_store *st, const char *tenant, int64_t id,
                         struct mr_webhook *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    struct mr__conn *c = mr__store_read_acquire(st);
    int rc = get_sub(c, tenant, id, out, err);
    mr__store_read_release(st, c);
    return rc;
}

int mr_store_webhook_list(struct mr_store *st, const char *tenant,
                          struct mr_webhook **out, size_t *n,
                          struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    /* Bounded by the per-tenant cap when a tenant is given; across tenants
     * by this backstop. */
    const int max = 100000;
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SUB_LIST, &s, err);
    if (rc < 0) {
        mr__store_read_release(st, c);
        return rc;
    }
    mr__bind_str(s, 1, tenant);
    sqlite3_bind_int(s, 2, max);
    struct mr_webhook *w = NULL;
    size_t cnt = 0, cap = 0;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            w = mr_xrealloc(w, cap * sizeof *w);
        }
        read_sub(s, &w[cnt++]);
    }
    if (r != SQLITE_DONE)
        rc = mr__sqlerr(c, r, "cannot list webhooks", err);
    mr__stmt_done(s);
    mr__store_read_release(st, c);
    if (rc < 0) {
        mr_webhook_list_free(w, cnt);
        return rc;
    }
    *out = w;
    *n = cnt;
    return 0;
}

/* ---- create, update, delete, sync
 * -------------------------------------------- */

struct sub_arg {
    const char *tenant;
    int64_t id;
    const struct mr_webhook_spec *spec;
    const char *events_json;
    const char *secrets_json;
    int64_t now;
    int64_t removed;
};

static int op_create(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct sub_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SUB_COUNT, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    int r = sqlite3_step(s);
    int64_t count = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    mr__stmt_done(s);
    if (r != SQLITE_ROW)
        return mr__sqlerr(c, r, "cannot count webhooks", err);
    if (count >= MR_WEBHOOKS_PER_TENANT_MAX)
        return mr_error_set(err, MR_ELIMIT, "a tenant has at most %d webhooks",
                            MR_WEBHOOKS_PER_TENANT_MAX);
    if ((rc = mr__stmt(c, SQL_SUB_ADD, &s, err)) < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->spec->url);
    mr__bind_str(s, 3, a->events_json);
    mr__bind_str(s, 4, a->secrets_json);
    sqlite3_bind_int(s, 5, a->spec->active != 0);
    sqlite3_bind_int64(s, 6, a->now);
    r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        a->id = sqlite3_column_int64(s, 0);
    /* RETURNING: the insert is done only when the statement is. */
    if (r == SQLITE_ROW)
        r = sqlite3_step(s);
    mr__stmt_done(s);
    if (r != SQLITE_DONE) {
        rc = mr__sqlerr(c, r, "cannot add a webhook", err);
        if (rc == MR_ECONFLICT)
            mr_error_set(err, MR_ECONFLICT,
                         "this tenant has a webhook for this url already");
        return rc;
    }
    return 0;
}

int mr_store_webhook_create(struct mr_store *st, const char *tenant,
                            const struct mr_webhook_spec *spec,
                            struct mr_webhook *out, struct mr_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (tenant == NULL || spec == NULL || spec->url == NULL ||
        spec->nsecrets < 1 || spec->nsecrets > MR_WEBHOOK_SECRETS_MAX ||
        spec->nevents > MR_WEBHOOK_TYPES_MAX)
        return mr_error_set(err, MR_EINVAL,
                            "a webhook needs a tenant, a url and 1 or 2 "
                            "secrets");
    struct mr_buf eb, sb;
    mr_buf_init(&eb, 0);
    mr_buf_init(&sb, 0);
    struct sub_arg a = {
        .tenant = tenant,
        .spec = spec,
        .events_json = json_array_text(&eb, spec->events, spec->nevents),
        .secrets_json = json_array_text(&sb, spec->secrets, spec->nsecrets),
        .now = mr__store_now_ms(),
    };
    int rc = mr__store_write(st, op_create, &a, err);
    mr_buf_release(&eb);
    mr_buf_release(&sb);
    if (rc < 0)
        return rc;
    gen_bump(st);
    return out ? mr_store_webhook_get(st, tenant, a.id, out, err) : 0;
}

/* The source and active flag of tenant's subscription id. */
static int sub_source(struct mr__conn *c, const char *tenant, int64_t id,
                      bool *config, bool *active, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SUB_SOURCE, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    mr__bind_str(s, 2, tenant);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        const char *src = (const char *)sqlite3_column_text(s, 0);
        *config = src && strcmp(src, "config") == 0;
        *active = sqlite3_column_int(s, 1) != 0;
    }
    mr__stmt_done(s);
    if (r == SQLITE_DONE)
        return mr_error_set(err, MR_ENOTFOUND, "no webhook %lld",
                            (long long)id);
    return r == SQLITE_ROW ? 0 : mr__sqlerr(c, r, "cannot read a webhook", err);
}

static int op_update(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct sub_arg *a = arg;
    const struct mr_webhook_spec *sp = a->spec;
    bool config = false, active = false;
    int rc = sub_source(c, a->tenant, a->id, &config, &active, err);
    if (rc < 0)
        return rc;
    if (config) {
        /* The file owns it: only clearing a 410 (which the file cannot
         * express) is taken, and only while the file keeps it active. */
        bool only_enable = sp->url == NULL && !sp->set_events &&
                           sp->nsecrets == 0 && sp->active == 1;
        if (!only_enable || !active)
            return mr_error_set(err, MR_ECONFLICT,
                                "webhook %lld is defined in the configuration "
                                "file: change it there (the API may only "
                                "re-enable it with {\"active\": true})",
                                (long long)a->id);
    }
    sqlite3_stmt *s;
    if ((rc = mr__stmt(c, SQL_SUB_UPDATE, &s, err)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    mr__bind_str(s, 2, a->tenant);
    mr__bind_str(s, 3, sp->url);
    sqlite3_bind_int(s, 4, sp->set_events ? 1 : 0);
    mr__bind_str(s, 5, a->events_json);
    mr__bind_str(s, 6, a->secrets_json);
    if (sp->active < 0)
        sqlite3_bind_null(s, 7);
    else
        sqlite3_bind_int(s, 7, sp->active != 0);
    sqlite3_bind_int64(s, 8, a->now);
    rc = mr__stmt_exec(c, s, "cannot change a webhook", err);
    if (rc == MR_ECONFLICT)
        mr_error_set(err, MR_ECONFLICT,
                     "this tenant has a webhook for this url already");
    return rc;
}

int mr_store_webhook_update(struct mr_store *st, const char *tenant, int64_t id,
                            const struct mr_webhook_spec *spec,
                            struct mr_webhook *out, struct mr_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (tenant == NULL || spec == NULL ||
        spec->nsecrets > MR_WEBHOOK_SECRETS_MAX ||
        spec->nevents > MR_WEBHOOK_TYPES_MAX)
        return mr_error_set(err, MR_EINVAL, "webhook update: bad arguments");
    struct mr_buf eb, sb;
    mr_buf_init(&eb, 0);
    mr_buf_init(&sb, 0);
    struct sub_arg a = {
        .tenant = tenant,
        .id = id,
        .spec = spec,
        .events_json = json_array_text(&eb, spec->events, spec->nevents),
        .secrets_json = json_array_text(&sb, spec->secrets, spec->nsecrets),
        .now = mr__store_now_ms(),
    };
    int rc = mr__store_write(st, op_update, &a, err);
    mr_buf_release(&eb);
    mr_buf_release(&sb);
    if (rc < 0)
        return rc;
    gen_bump(st);
    return out ? mr_store_webhook_get(st, tenant, id, out, err) : 0;
}

static int op_delete(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct sub_arg *a = arg;
    bool config = false, active = false;
    int rc = sub_source(c, a->tenant, a->id, &config, &active, err);
    if (rc < 0)
        return rc;
    if (config)
        return mr_error_set(err, MR_ECONFLICT,
                            "webhook %lld is defined in the configuration "
                            "file: remove it there",
                            (long long)a->id);
    sqlite3_stmt *s;
    if ((rc = mr__stmt(c, SQL_SUB_DEL_ROWS, &s, err)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    if ((rc = mr__stmt_exec(c, s, "cannot delete deliveries", err)) < 0)
        return rc;
    a->removed = sqlite3_changes(c->db);
    if ((rc = mr__stmt(c, SQL_SUB_DEL, &s, err)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    return mr__stmt_exec(c, s, "cannot delete a webhook", err);
}

int mr_store_webhook_delete(struct mr_store *st, const char *tenant, int64_t id,
                            int64_t *deliveries, struct mr_error *err)
{
    if (deliveries)
        *deliveries = 0;
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "webhook delete: no tenant");
    struct sub_arg a = {.tenant = tenant, .id = id};
    int rc = mr__store_write(st, op_delete, &a, err);
    if (rc < 0)
        return rc;
    gen_bump(st);
    if (deliveries)
        *deliveries = a.removed;
    return 0;
}

struct sync_arg {
    const struct mr_webhook_spec *specs;
    size_t n;
    int64_t now;
};

static int op_sync(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct sync_arg *a = arg;
    sqlite3_stmt *s;
    /* Everything off, then the file's back on: what the file dropped
     * stays off. */
    int rc = mr__stmt(c, SQL_SYNC_OFF, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->now);
    if ((rc = mr__stmt_exec(c, s, "cannot sync webhooks", err)) < 0)
        return rc;
    for (size_t i = 0; i < a->n; i++) {
        const struct mr_webhook_spec *sp = &a->specs[i];
        struct mr_buf eb, sb;
        mr_buf_init(&eb, 0);
        mr_buf_init(&sb, 0);
        if ((rc = mr__stmt(c, SQL_SYNC_UPSERT, &s, err)) < 0) {
            mr_buf_release(&eb);
            mr_buf_release(&sb);
            return rc;
        }
        mr__bind_str(s, 1, sp->tenant);
        mr__bind_str(s, 2, sp->url);
        mr__bind_str(s, 3, json_array_text(&eb, sp->events, sp->nevents));
        const char *sj = json_array_text(&sb, sp->secrets, sp->nsecrets);
        mr__bind_str(s, 4, sj ? sj : "[]");
        sqlite3_bind_int(s, 5, sp->active != 0);
        sqlite3_bind_int64(s, 6, a->now);
        rc = mr__stmt_exec(c, s, "cannot store a webhook of the configuration",
                           err);
        mr_buf_release(&eb);
        mr_buf_release(&sb);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mr_store_webhook_sync_config(struct mr_store *st,
                                 const struct mr_webhook_spec *specs, size_t n,
                                 struct mr_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (specs[i].tenant == NULL || specs[i].url == NULL ||
            specs[i].nsecrets > MR_WEBHOOK_SECRETS_MAX ||
            specs[i].nevents > MR_WEBHOOK_TYPES_MAX)
            return mr_error_set(err, MR_EINVAL,
                                "webhook sync: a subscription without a "
                                "tenant or url");
    struct sync_arg a = {specs, n, mr__store_now_ms()};
    int rc = mr__store_write(st, op_sync, &a, err);
    if (rc == 0)
        gen_bump(st);
    return rc;
}

/* ---- scan
 * ----------------------------------------------------------------------- */

struct scan_arg {
    int64_t id;
    int limit;
    int64_t now;
    int added;
    int64_t cursor;
};

static int op_scan(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct scan_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SCAN_SUB, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    int r = sqlite3_step(s);
    char *tenant = NULL, *types = NULL;
    int64_t cursor = 0;
    bool live = false;
    if (r == SQLITE_ROW) {
        tenant = mr__col_str(s, 0);
        cursor = sqlite3_column_int64(s, 1);
        types = mr__col_str(s, 2);
        live = sqlite3_column_int(s, 3) != 0;
    }
    mr__stmt_done(s);
    a->cursor = cursor;
    if (r == SQLITE_DONE)
        return mr_error_set(err, MR_ENOTFOUND, "no webhook %lld",
                            (long long)a->id);
    if (r != SQLITE_ROW)
        return mr__sqlerr(c, r, "cannot read a webhook cursor", err);
    if (!live)
        goto out;
    if ((rc = mr__stmt(c, SQL_SCAN_END, &s, err)) < 0)
        goto out;
    mr__bind_str(s, 1, tenant);
    sqlite3_bind_int64(s, 2, cursor);
    sqlite3_bind_int(s, 3, a->limit);
    r = sqlite3_step(s);
    bool none = r != SQLITE_ROW || sqlite3_column_type(s, 0) == SQLITE_NULL;
    int64_t end = none ? cursor : sqlite3_column_int64(s, 0);
    mr__stmt_done(s);
    if (r != SQLITE_ROW) {
        rc = mr__sqlerr(c, r, "cannot scan the outbox", err);
        goto out;
    }
    if (end <= cursor)
        goto out;
    if ((rc = mr__stmt(c, SQL_ADD_ROWS, &s, err)) < 0)
        goto out;
    mr__bind_str(s, 1, tenant);
    sqlite3_bind_int64(s, 2, a->id);
    sqlite3_bind_int64(s, 3, cursor);
    sqlite3_bind_int64(s, 4, end);
    sqlite3_bind_int64(s, 5, a->now);
    mr__bind_str(s, 6, types);
    if ((rc = mr__stmt_exec(c, s, "cannot add webhook deliveries", err)) < 0)
        goto out;
    a->added = sqlite3_changes(c->db);
    if ((rc = mr__stmt(c, SQL_SUB_MOVE, &s, err)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, a->id);
    sqlite3_bind_int64(s, 2, end);
    rc = mr__stmt_exec(c, s, "cannot move a webhook cursor", err);
    if (rc == 0)
        a->cursor = end;
out:
    free(tenant);
    free(types);
    return rc;
}

int mr_store_webhook_scan(struct mr_store *st, int64_t webhook_id, int limit,
                          int64_t now, int *added, int64_t *cursor,
                          struct mr_error *err)
{
    *added = 0;
    if (limit < 1 || limit > MR_EVENTS_LIMIT_MAX)
        return mr_error_set(err, MR_EINVAL, "webhook scan: a bad limit");
    struct scan_arg a = {webhook_id, limit, now, 0, 0};
    int rc = mr__store_write_lazy(st, op_scan, &a, err);
    if (rc < 0)
        return rc;
    *added = a.added;
    if (cursor)
        *cursor = a.cursor;
    return 0;
}

/* ---- due, listing, get
 * ------------------------------------------------------------ */

/* Steps s (bound) into a new array of at most max deliveries. */
static int read_deliveries(struct mr__conn *c, sqlite3_stmt *s, int max,
                           struct mr_webhook_delivery **out, size_t *n,
                           struct mr_error *err)
{
    struct mr_webhook_delivery *d = NULL;
    size_t cnt = 0;
    int r = SQLITE_DONE, rc = 0;
    while (cnt < (size_t)max && (r = sqlite3_step(s)) == SQLITE_ROW) {
        if (d == NULL)
            d = mr_xcalloc((size_t)max, sizeof *d);
        read_delivery(s, &d[cnt++]);
    }
    if (cnt < (size_t)max && r != SQLITE_DONE)
        rc = mr__sqlerr(c, r, "cannot read webhook deliveries", err);
    mr__stmt_done(s);
    if (rc < 0) {
        mr_webhook_delivery_list_free(d, cnt);
        return rc;
    }
    *out = d;
    *n = cnt;
    return 0;
}

int mr_store_webhook_due(struct mr_store *st, int64_t now, int max,
                         const int64_t *skip, size_t nskip,
                         struct mr_webhook_delivery **out, size_t *n,
                         struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    if (max < 1 || max > MR_EVENTS_LIMIT_MAX || nskip > MR_WEBHOOK_DUE_SKIP_MAX)
        return mr_error_set(err, MR_EINVAL,
                            "webhook due: a bad limit or too many to skip");
    struct mr_buf sb;
    mr_buf_init(&sb, 0);
    const char *skip_json = mr__json_int_array(&sb, skip, nskip);
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_DUE, &s, err);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, now);
        sqlite3_bind_int(s, 2, max);
        mr__bind_str(s, 3, skip_json);
        rc = read_deliveries(c, s, max, out, n, err);
    }
    mr__store_read_release(st, c);
    mr_buf_release(&sb);
    return rc;
}

static bool state_valid(const char *s)
{
    return s && (strcmp(s, "pending") == 0 || strcmp(s, "delivered") == 0 ||
                 strcmp(s, "dead") == 0);
}

int mr_store_delivery_list(struct mr_store *st,
                           const struct mr_delivery_filter *f,
                           struct mr_webhook_delivery **out, size_t *n,
                           struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    if (f->limit < 1 || f->limit > MR_EVENTS_LIMIT_MAX ||
        (f->state && !state_valid(f->state)))
        return mr_error_set(err, MR_EINVAL, "deliveries: a bad limit or state");
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_DELIVERY_LIST, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, f->tenant);
        mr__bind_str(s, 2, f->state);
        sqlite3_bind_int64(s, 3, f->webhook_id);
        sqlite3_bind_int64(s, 4, f->after);
        sqlite3_bind_int(s, 5, f->limit);
        rc = read_deliveries(c, s, f->limit, out, n, err);
    }
    mr__store_read_release(st, c);
    return rc;
}

/* Delivery id (of tenant, unless NULL) on connection c into *out. */
static int delivery_read(struct mr__conn *c, const char *tenant, int64_t id,
                         struct mr_webhook_delivery *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_DELIVERY_GET, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    mr__bind_str(s, 2, tenant);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        read_delivery(s, out);
    else if (r == SQLITE_DONE)
        rc = mr_error_set(err, MR_ENOTFOUND, "no delivery %lld",
                          (long long)id);
    else
        rc = mr__sqlerr(c, r, "cannot read a delivery", err);
    mr__stmt_done(s);
    return rc;
}

int mr_store_delivery_get(struct mr_store *st, const char *tenant, int64_t id,
                          struct mr_webhook_delivery *out, struct mr_error *err)
{
    struct mr__conn *c = mr__store_read_acquire(st);
    int rc = delivery_read(c, tenant, id, out, err);
    mr__store_read_release(st, c);
    return rc;
}

/* ---- attempts
 * ---------------------------------------------------------------------- */

struct result_arg {
    int64_t id;
    const char *state;
    int attempts;
    int64_t next_at;
    const char *last_error;
};

/* The delivery.failed event of a delivery that just died (see the top). */
static int write_failed_event(struct mr__conn *c, int64_t id, int64_t now,
                              struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_DELIVERY_GET, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_null(s, 2);
    struct mr_webhook_delivery d;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        read_delivery(s, &d);
    mr__stmt_done(s);
    if (r == SQLITE_DONE)
        return 0; /* its subscription is gone with it */
    if (r != SQLITE_ROW)
        return mr__sqlerr(c, r, "cannot read a delivery", err);
    if (d.event_type && strcmp(d.event_type, "delivery.failed") == 0) {
        mr_webhook_delivery_clear(&d);
        return 0;
    }
    char evt[32];
    snprintf(evt, sizeof evt, "evt_%lld", (long long)d.seq);
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "delivery_id");
    mr_json_int(&j, d.id);
    mr_json_key(&j, "webhook_id");
    mr_json_int(&j, d.webhook_id);
    mr_json_key(&j, "url");
    mr_json_cstr(&j, d.url);
    mr_json_key(&j, "event_id");
    mr_json_cstr(&j, evt);
    mr_json_key(&j, "event_seq");
    mr_json_int(&j, d.seq);
    mr_json_key(&j, "event_type");
    mr_json_cstr(&j, d.event_type);
    mr_json_key(&j, "attempts");
    mr_json_int(&j, d.attempts);
    mr_json_key(&j, "last_error");
    mr_json_cstr(&j, d.last_error);
    mr_json_obj_end(&j);
    rc = mr__event_insert(c, d.tenant, "delivery.failed",
                          d.ticket_id, 0, b.p, now, err);
    mr_buf_release(&b);
    mr_webhook_delivery_clear(&d);
    return rc;
}

static int op_result(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct result_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_RESULT, &s, err);
    if (rc < 0)
        return rc;
    int64_t now = mr__store_now_ms();
    sqlite3_bind_int64(s, 1, a->id);
    mr__bind_str(s, 2, a->state);
    sqlite3_bind_int(s, 3, a->attempts);
    sqlite3_bind_int64(s, 4, a->next_at);
    mr__bind_str(s, 5, a->last_error);
    sqlite3_bind_int64(s, 6, now);
    if ((rc = mr__stmt_exec(c, s, "cannot record a webhook attempt", err)) < 0)
        return rc;
    if (strcmp(a->state, "dead") == 0 && sqlite3_changes(c->db) > 0)
        return write_failed_event(c, a->id, now, err);
    return 0;
}

int mr_store_webhook_result(struct mr_store *st, int64_t id, const char *state,
                            int attempts, int64_t next_at,
                            const char *last_error, struct mr_error *err)
{
    if (!state_valid(state))
        return mr_error_set(err, MR_EINVAL, "webhook result: a bad state");
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
    mr__bind_str(s, 4, "the receiver answered 410 Gone");
    return mr__stmt_exec(c, s, "cannot disable a webhook", err);
}

int mr_store_webhook_disable(struct mr_store *st, const char *tenant,
                             const char *url, int64_t now, struct mr_error *err)
{
    struct disable_arg a = {tenant, url, now};
    int rc = mr__store_write(st, op_disable, &a, err);
    if (rc == 0)
        gen_bump(st);
    return rc;
}

struct redrive_arg {
    const char *tenant;
    int64_t id;
    int64_t now;
    struct mr_webhook_delivery *out; /* may be NULL */
};

static int op_redrive(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct redrive_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_REDRIVE_STATE, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    mr__bind_str(s, 2, a->tenant);
    int r = sqlite3_step(s);
    bool pending =
        r == SQLITE_ROW &&
        strcmp((const char *)sqlite3_column_text(s, 0), "pending") == 0;
    mr__stmt_done(s);
    if (r == SQLITE_DONE)
        return mr_error_set(err, MR_ENOTFOUND, "no delivery %lld",
                            (long long)a->id);
    if (r != SQLITE_ROW)
        return mr__sqlerr(c, r, "cannot read a delivery", err);
    if (pending)
        return mr_error_set(err, MR_ECONFLICT,
                            "delivery %lld is pending already: only a dead "
                            "or delivered one can be redriven",
                            (long long)a->id);
    if ((rc = mr__stmt(c, SQL_REDRIVE, &s, err)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    sqlite3_bind_int64(s, 2, a->now);
    if ((rc = mr__stmt_exec(c, s, "cannot redrive a delivery", err)) < 0)
        return rc;
    /* The row as this transaction left it: the dispatcher, woken by the
     * commit, may have delivered it again before the caller could look. */
    return a->out ? delivery_read(c, NULL, a->id, a->out, err) : 0;
}

int mr_store_delivery_redrive(struct mr_store *st, const char *tenant,
                              int64_t id, struct mr_webhook_delivery *out,
                              struct mr_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    struct redrive_arg a = {tenant, id, mr__store_now_ms(), out};
    int rc = mr__store_write(st, op_redrive, &a, err);
    if (rc < 0 && out)
        mr_webhook_delivery_clear(out);
    return rc;
}
