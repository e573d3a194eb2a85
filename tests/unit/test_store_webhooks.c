/* SPDX-License-Identifier: Apache-2.0 */
/* Webhook subscriptions and deliveries in the store (src/store/webhooks.c):
 * create/update/delete and the config's rules, per-ticket ordering of the
 * due query, delivery.failed without chains, redrive, and the migration
 * of version 10's rows. Events are written straight into the outbox. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store_fixture.h"

static int setup(void **state)
{
    return store_fx_setup(state, "webhooks");
}
static int teardown(void **state)
{
    return store_fx_teardown(state);
}

static const char *const SECRETS[] = {"0123456789abcdef-one",
                                      "0123456789abcdef-two"};

/* One outbox event of tenant (ticket 0: none). */
static void event(struct fx *f, const char *tenant, const char *type,
                  int64_t ticket)
{
    char sql[300], tid[24] = "NULL";
    if (ticket)
        snprintf(tid, sizeof tid, "%lld", (long long)ticket);
    snprintf(sql, sizeof sql,
             "INSERT INTO events (tenant, type, ticket_id, payload,"
             " created_at) VALUES ('%s', '%s', %s, '{}', 1)",
             tenant, type, tid);
    store_fx_exec(f->path, sql);
}

/* An integer from one SQL query on the file. */
static int64_t sql_int(struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static int64_t create(struct fx *f, const char *tenant, const char *url,
                      const char *const *events, size_t nevents)
{
    struct mr_webhook_spec sp = {.url = url,
                                 .events = events,
                                 .nevents = nevents,
                                 .secrets = SECRETS,
                                 .nsecrets = 1,
                                 .active = 1};
    struct mr_webhook w;
    struct mr_error err = {0};
    assert_int_equal(mr_store_webhook_create(f->st, tenant, &sp, &w, &err), 0);
    int64_t id = w.id;
    assert_true(id > 0);
    mr_webhook_clear(&w);
    return id;
}

static int scan(struct fx *f, int64_t id)
{
    int added = 0;
    int64_t cursor = 0;
    struct mr_error err = {0};
    assert_int_equal(
        mr_store_webhook_scan(f->st, id, 100, 1000, &added, &cursor, &err), 0);
    return added;
}

/* The seqs of the due list at now, in *seq (max 32); how many. */
static size_t due(struct fx *f, int64_t now, int64_t *seq, int64_t *ids)
{
    struct mr_webhook_delivery *d = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(
        mr_store_webhook_due(f->st, now, 32, NULL, 0, &d, &n, &err), 0);
    assert_true(n <= 32);
    for (size_t i = 0; i < n; i++) {
        seq[i] = d[i].seq;
        if (ids)
            ids[i] = d[i].id;
        /* never two of one (subscription, ticket) in a batch */
        for (size_t k = 0; k < i; k++)
            assert_false(d[k].ticket_id != 0 &&
                         d[k].ticket_id == d[i].ticket_id &&
                         d[k].webhook_id == d[i].webhook_id);
    }
    mr_webhook_delivery_list_free(d, n);
    return n;
}

static bool has(const int64_t *v, size_t n, int64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

static int64_t delivery_of(struct fx *f, int64_t webhook, int64_t seq)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT id FROM webhook_deliveries WHERE webhook_id = %lld"
             " AND seq = %lld",
             (long long)webhook, (long long)seq);
    return sql_int(f, sql);
}

static void crud(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    event(f, "acme", "ticket.created", 1);
    const char *const types[] = {"ticket.created", "message.added"};
    int64_t id = create(f, "acme", "https://a.test/hook", types, 2);
    struct mr_webhook w;
    assert_int_equal(mr_store_webhook_get(f->st, "acme", id, &w, &err), 0);
    assert_string_equal(w.url, "https://a.test/hook");
    assert_string_equal(w.source, "api");
    assert_int_equal(w.nevents, 2);
    assert_string_equal(w.events[1], "message.added");
    assert_int_equal(w.nsecrets, 1);
    assert_string_equal(w.secrets[0], SECRETS[0]);
    assert_true(w.active);
    /* starts at the newest event: nothing older is replayed */
    assert_int_equal(w.cursor, sql_int(f, "SELECT max(seq) FROM events"));
    mr_webhook_clear(&w);
    assert_int_equal(scan(f, id), 0);

    /* another tenant sees nothing; the same url twice is a conflict */
    assert_int_equal(mr_store_webhook_get(f->st, "other", id, &w, &err),
                     MR_ENOTFOUND);
    struct mr_webhook_spec sp = {.url = "https://a.test/hook",
                                 .secrets = SECRETS,
                                 .nsecrets = 1,
                                 .active = 1};
    assert_int_equal(mr_store_webhook_create(f->st, "acme", &sp, NULL, &err),
                     MR_ECONFLICT);
    assert_int_equal(mr_store_webhook_create(f->st, "other", &sp, NULL, &err),
                     0);

    /* update: events to all, two secrets, paused */
    uint64_t gen = mr_store_webhooks_gen(f->st);
    struct mr_webhook_spec up = {
        .set_events = true, .secrets = SECRETS, .nsecrets = 2, .active = 0};
    assert_int_equal(mr_store_webhook_update(f->st, "acme", id, &up, &w, &err),
                     0);
    assert_true(mr_store_webhooks_gen(f->st) > gen);
    assert_int_equal(w.nevents, 0);
    assert_int_equal(w.nsecrets, 2);
    assert_false(w.active);
    assert_string_equal(w.url, "https://a.test/hook");
    mr_webhook_clear(&w);
    struct mr_webhook_spec other = {.url = "https://a.test/hook", .active = -1};
    assert_int_equal(
        mr_store_webhook_update(f->st, "other", id, &other, NULL, &err),
        MR_ENOTFOUND);

    /* paused: no scan, the cursor waits; resumed: the events come */
    event(f, "acme", "ticket.updated", 1);
    assert_int_equal(scan(f, id), 0);
    struct mr_webhook_spec on = {.active = 1};
    assert_int_equal(
        mr_store_webhook_update(f->st, "acme", id, &on, NULL, &err), 0);
    assert_int_equal(scan(f, id), 1);

    struct mr_webhook *list = NULL;
    size_t n = 0;
    assert_int_equal(mr_store_webhook_list(f->st, "acme", &list, &n, &err), 0);
    assert_int_equal(n, 1);
    mr_webhook_list_free(list, n);
    assert_int_equal(mr_store_webhook_list(f->st, NULL, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    mr_webhook_list_free(list, n);

    int64_t removed = 0;
    assert_int_equal(
        mr_store_webhook_delete(f->st, "other", id, &removed, &err),
        MR_ENOTFOUND);
    assert_int_equal(mr_store_webhook_delete(f->st, "acme", id, &removed, &err),
                     0);
    assert_int_equal(removed, 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM webhook_deliveries"), 0);
    assert_int_equal(mr_store_webhook_get(f->st, "acme", id, &w, &err),
                     MR_ENOTFOUND);
}

static void config_rules(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    const char *const one[] = {SECRETS[0]};
    struct mr_webhook_spec cfg[2] = {
        {.tenant = "acme",
         .url = "https://c.test/1",
         .set_events = true,
         .secrets = one,
         .nsecrets = 1,
         .active = 1},
        {.tenant = "acme",
         .url = "https://c.test/2",
         .set_events = true,
         .secrets = one,
         .nsecrets = 1,
         .active = 0},
    };
    assert_int_equal(mr_store_webhook_sync_config(f->st, cfg, 2, &err), 0);
    struct mr_webhook *list = NULL;
    size_t n = 0;
    assert_int_equal(mr_store_webhook_list(f->st, "acme", &list, &n, &err), 0);
    assert_int_equal(n, 2);
    int64_t id1 = list[0].id, id2 = list[1].id;
    assert_string_equal(list[0].source, "config");
    assert_true(list[0].active);
    assert_false(list[1].active);
    mr_webhook_list_free(list, n);

    /* read-only through the API but for re-enabling */
    struct mr_webhook_spec url = {.url = "https://c.test/x", .active = -1};
    assert_int_equal(
        mr_store_webhook_update(f->st, "acme", id1, &url, NULL, &err),
        MR_ECONFLICT);
    assert_non_null(strstr(err.msg, "configuration"));
    assert_int_equal(mr_store_webhook_delete(f->st, "acme", id1, NULL, &err),
                     MR_ECONFLICT);
    assert_int_equal(
        mr_store_webhook_disable(f->st, "acme", "https://c.test/1", 5000, &err),
        0);
    struct mr_webhook w;
    assert_int_equal(mr_store_webhook_get(f->st, "acme", id1, &w, &err), 0);
    assert_int_equal(w.disabled_at, 5000);
    assert_non_null(strstr(w.disabled_reason, "410"));
    mr_webhook_clear(&w);
    struct mr_webhook_spec on = {.active = 1};
    assert_int_equal(mr_store_webhook_update(f->st, "acme", id1, &on, &w, &err),
                     0);
    assert_int_equal(w.disabled_at, 0);
    assert_null(w.disabled_reason);
    mr_webhook_clear(&w);
    /* the file says inactive: the API cannot turn it on */
    assert_int_equal(
        mr_store_webhook_update(f->st, "acme", id2, &on, NULL, &err),
        MR_ECONFLICT);

    /* the file drops #1: kept, inactive; same ids on the next start */
    assert_int_equal(mr_store_webhook_sync_config(f->st, &cfg[1], 1, &err), 0);
    assert_int_equal(mr_store_webhook_get(f->st, "acme", id1, &w, &err), 0);
    assert_false(w.active);
    mr_webhook_clear(&w);
    assert_int_equal(mr_store_webhook_sync_config(f->st, cfg, 2, &err), 0);
    assert_int_equal(mr_store_webhook_get(f->st, "acme", id1, &w, &err), 0);
    assert_true(w.active);
    mr_webhook_clear(&w);
}

/* Ticket 1: seq a, b, f; ticket 2: c; no ticket: d, e. */
static void ticket_order(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t id = create(f, "acme", "https://o.test/", NULL, 0);
    int64_t base = sql_int(f, "SELECT coalesce(max(seq), 0) FROM events");
    event(f, "acme", "ticket.created", 1);   /* base+1 */
    event(f, "acme", "message.added", 1);    /* base+2 */
    event(f, "acme", "ticket.created", 2);   /* base+3 */
    event(f, "acme", "bounce.unmatched", 0); /* base+4 */
    event(f, "acme", "bounce.unmatched", 0); /* base+5 */
    event(f, "acme", "ticket.updated", 1);   /* base+6 */
    assert_int_equal(scan(f, id), 6);
    int64_t seq[32];
    size_t n = due(f, 1000, seq, NULL);
    assert_int_equal(n, 4);
    assert_true(has(seq, n, base + 1) && has(seq, n, base + 3) &&
                has(seq, n, base + 4) && has(seq, n, base + 5));

    /* the first of ticket 1 waits for a retry: the later ones wait too */
    int64_t d1 = delivery_of(f, id, base + 1);
    assert_int_equal(mr_store_webhook_result(f->st, d1, "pending", 1, 90000,
                                             "HTTP 500", &err),
                     0);
    n = due(f, 2000, seq, NULL);
    assert_false(has(seq, n, base + 1));
    assert_false(has(seq, n, base + 2));
    assert_false(has(seq, n, base + 6));
    assert_true(has(seq, n, base + 3));
    /* the others of ticket 2 and without a ticket go on */
    int64_t d3 = delivery_of(f, id, base + 3);
    assert_int_equal(
        mr_store_webhook_result(f->st, d3, "delivered", 1, 0, NULL, &err), 0);
    assert_int_equal(mr_store_webhook_result(f->st,
                                             delivery_of(f, id, base + 4),
                                             "delivered", 1, 0, NULL, &err),
                     0);
    assert_int_equal(mr_store_webhook_result(f->st,
                                             delivery_of(f, id, base + 5),
                                             "delivered", 1, 0, NULL, &err),
                     0);
    n = due(f, 2000, seq, NULL);
    assert_int_equal(n, 0);
    /* delivered: the next of ticket 1, and only it */
    assert_int_equal(
        mr_store_webhook_result(f->st, d1, "delivered", 2, 0, NULL, &err), 0);
    n = due(f, 2000, seq, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(seq[0], base + 2);
    /* a dead one holds nothing back */
    assert_int_equal(mr_store_webhook_result(f->st,
                                             delivery_of(f, id, base + 2),
                                             "dead", 8, 0, "HTTP 500", &err),
                     0);
    n = due(f, 2000, seq, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(seq[0], base + 6);

    /* a disabled subscription's deliveries are not due */
    assert_int_equal(
        mr_store_webhook_disable(f->st, "acme", "https://o.test/", 3000, &err),
        0);
    assert_int_equal(due(f, 4000, seq, NULL), 0);
}

/* The dispatcher's reads: a due list without the ids it holds (a skipped
 * delivery still holds its ticket's later ones back), and the bodies of a
 * batch in one query. */
static void due_skip_and_bodies(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t id = create(f, "acme", "https://o.test/", NULL, 0);
    int64_t base = sql_int(f, "SELECT coalesce(max(seq), 0) FROM events");
    event(f, "acme", "ticket.created", 1);   /* base+1 */
    event(f, "acme", "message.added", 1);    /* base+2 */
    event(f, "acme", "ticket.created", 2);   /* base+3 */
    event(f, "acme", "bounce.unmatched", 0); /* base+4 */
    assert_int_equal(scan(f, id), 4);
    int64_t skip[] = {delivery_of(f, id, base + 1),
                      delivery_of(f, id, base + 4)};
    struct mr_webhook_delivery *d = NULL;
    size_t n = 0;
    assert_int_equal(
        mr_store_webhook_due(f->st, 1000, 32, skip, 2, &d, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].seq, base + 3);
    mr_webhook_delivery_list_free(d, n);
    assert_int_equal(
        mr_store_webhook_due(f->st, 1000, 32, skip, 1, &d, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(d[0].seq, base + 3);
    assert_int_equal(d[1].seq, base + 4);
    mr_webhook_delivery_list_free(d, n);
    assert_int_equal(mr_store_webhook_due(f->st, 1000, 32, skip,
                                          MR_WEBHOOK_DUE_SKIP_MAX + 1, &d, &n,
                                          &err),
                     MR_EINVAL);

    /* in seq order whatever the order asked; a seq without an event is
     * left out */
    int64_t seqs[] = {base + 4, base + 1, base + 1000};
    struct mr_event_rec *ev = NULL;
    assert_int_equal(mr_store_events_by_seq(f->st, seqs, 3, &ev, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].seq, base + 1);
    assert_string_equal(ev[0].type, "ticket.created");
    assert_int_equal(ev[0].ticket_id, 1);
    assert_string_equal(ev[0].payload, "{}");
    assert_int_equal(ev[1].seq, base + 4);
    assert_string_equal(ev[1].type, "bounce.unmatched");
    assert_int_equal(ev[1].ticket_id, 0);
    mr_event_list_free(ev, n);
    assert_int_equal(mr_store_events_by_seq(f->st, seqs, 0, &ev, &n, &err),
                     MR_EINVAL);
    assert_null(ev);
}

static void failed_event_no_chain(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t id = create(f, "acme", "https://dead.test/", NULL, 0);
    event(f, "acme", "ticket.created", 9);
    int64_t seq1 = sql_int(f, "SELECT max(seq) FROM events");
    assert_int_equal(scan(f, id), 1);
    int64_t d1 = delivery_of(f, id, seq1);
    assert_int_equal(
        mr_store_webhook_result(f->st, d1, "dead", 8, 0, "HTTP 502", &err), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM events"
                                " WHERE type = 'delivery.failed'"),
                     1);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT json_extract(payload, '$.delivery_id') = %lld"
             " AND json_extract(payload, '$.webhook_id') = %lld"
             " AND json_extract(payload, '$.url') = 'https://dead.test/'"
             " AND json_extract(payload, '$.event_id') = 'evt_%lld'"
             " AND json_extract(payload, '$.event_seq') = %lld"
             " AND json_extract(payload, '$.event_type') = 'ticket.created'"
             " AND json_extract(payload, '$.attempts') = 8"
             " AND json_extract(payload, '$.last_error') = 'HTTP 502'"
             " AND ticket_id = 9 AND tenant = 'acme'"
             " FROM events WHERE type = 'delivery.failed'",
             (long long)d1, (long long)id, (long long)seq1, (long long)seq1);
    assert_int_equal(sql_int(f, sql), 1);

    /* the failure event is delivered too; when that dies, no new one */
    assert_int_equal(scan(f, id), 1);
    int64_t seq2 = sql_int(f, "SELECT max(seq) FROM events");
    int64_t d2 = delivery_of(f, id, seq2);
    assert_int_equal(
        mr_store_webhook_result(f->st, d2, "dead", 8, 0, "HTTP 502", &err), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM events"
                                " WHERE type = 'delivery.failed'"),
                     1);
    assert_int_equal(scan(f, id), 0);
    /* dead again after a redrive: another failure event (a new death) */
    assert_int_equal(mr_store_delivery_redrive(f->st, "acme", d1, NULL, &err), 0);
    assert_int_equal(
        mr_store_webhook_result(f->st, d1, "dead", 8, 0, "HTTP 502", &err), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM events"
                                " WHERE type = 'delivery.failed'"),
                     2);
}

static void redrive_and_list(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t id = create(f, "acme", "https://r.test/", NULL, 0);
    int64_t other = create(f, "other", "https://r.test/", NULL, 0);
    for (int i = 0; i < 5; i++)
        event(f, "acme", "ticket.created", 100 + i);
    event(f, "other", "ticket.created", 200);
    assert_int_equal(scan(f, id), 5);
    assert_int_equal(scan(f, other), 1);
    int64_t seq[32], ids[32];
    size_t n = due(f, 5000, seq, ids);
    assert_int_equal(n, 6);
    /* the list takes the subscriptions in turns: acme's, other's, acme's */
    int64_t dead = ids[0], pending = ids[2];
    assert_int_equal(dead, sql_int(f, "SELECT min(id) FROM webhook_deliveries"
                                      " WHERE tenant = 'acme'"));
    assert_int_equal(ids[1], sql_int(f, "SELECT id FROM webhook_deliveries"
                                        " WHERE tenant = 'other'"));
    assert_int_equal(
        mr_store_webhook_result(f->st, dead, "dead", 8, 0, "timeout", &err), 0);
    assert_int_equal(mr_store_delivery_redrive(f->st, "acme", pending, NULL, &err),
                     MR_ECONFLICT);
    assert_int_equal(mr_store_delivery_redrive(f->st, "other", dead, NULL, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_delivery_redrive(f->st, "acme", 999999, NULL, &err),
                     MR_ENOTFOUND);

    struct mr_delivery_filter flt = {
        .tenant = "acme", .state = "dead", .limit = 10};
    struct mr_webhook_delivery *d = NULL;
    assert_int_equal(mr_store_delivery_list(f->st, &flt, &d, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].id, dead);
    assert_string_equal(d[0].url, "https://r.test/");
    assert_string_equal(d[0].last_error, "timeout");
    mr_webhook_delivery_list_free(d, n);

    /* The redrive hands back the row as it left it. */
    struct mr_webhook_delivery one;
    assert_int_equal(
        mr_store_delivery_redrive(f->st, "acme", dead, &one, &err), 0);
    assert_int_equal(one.id, dead);
    assert_string_equal(one.state, "pending");
    assert_int_equal(one.attempts, 0);
    mr_webhook_delivery_clear(&one);
    assert_int_equal(mr_store_delivery_get(f->st, "acme", dead, &one, &err), 0);
    assert_string_equal(one.state, "pending");
    assert_int_equal(one.attempts, 0);
    mr_webhook_delivery_clear(&one);
    assert_int_equal(mr_store_delivery_get(f->st, "other", dead, &one, &err),
                     MR_ENOTFOUND);

    /* paging, oldest first, tenant-scoped */
    flt = (struct mr_delivery_filter){.tenant = "acme", .limit = 2};
    int64_t last = 0, total = 0;
    for (int page = 0; page < 10; page++) {
        assert_int_equal(mr_store_delivery_list(f->st, &flt, &d, &n, &err), 0);
        for (size_t i = 0; i < n; i++) {
            assert_true(d[i].id > last);
            assert_string_equal(d[i].tenant, "acme");
            last = d[i].id;
        }
        total += (int64_t)n;
        mr_webhook_delivery_list_free(d, n);
        if (n < 2)
            break;
        flt.after = last;
    }
    assert_int_equal(total, 5);
    flt = (struct mr_delivery_filter){.webhook_id = other, .limit = 10};
    assert_int_equal(mr_store_delivery_list(f->st, &flt, &d, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].tenant, "other");
    mr_webhook_delivery_list_free(d, n);
    flt.state = "lost";
    assert_int_equal(mr_store_delivery_list(f->st, &flt, &d, &n, &err),
                     MR_EINVAL);
}

/* Version 10's subscription and delivery rows survive migration 15 (the
 * webhook tables were untouched from 10 to 14). */
static void migrate_from_10(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    mr_store_close(f->st);
    f->st = NULL;
    store_fx_exec(
        f->path,
        "DROP TABLE webhook_deliveries; DROP TABLE webhook_subs;"
        "CREATE TABLE webhook_subs (tenant TEXT NOT NULL, url TEXT NOT NULL,"
        "  cursor INTEGER NOT NULL, disabled_at INTEGER,"
        "  PRIMARY KEY (tenant, url));"
        "CREATE TABLE webhook_deliveries (id INTEGER PRIMARY KEY,"
        "  tenant TEXT NOT NULL, url TEXT NOT NULL, seq INTEGER NOT NULL,"
        "  state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL"
        "  DEFAULT 0, next_attempt_at INTEGER NOT NULL, last_error TEXT,"
        "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
        "  UNIQUE (tenant, url, seq));"
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries"
        "  (next_attempt_at) WHERE state = 'pending';"
        "INSERT INTO events (seq, tenant, type, ticket_id, payload,"
        "  created_at) VALUES (41, 'acme', 'ticket.created', 5, '{}', 1);"
        "INSERT INTO webhook_subs VALUES ('acme', 'https://old.test/', 41,"
        "  NULL), ('acme', 'https://gone.test/', 41, 77);"
        "INSERT INTO webhook_deliveries VALUES (12, 'acme',"
        "  'https://old.test/', 41, 'dead', 8, 0, 'HTTP 500', 1, 2);"
        /* What later migrations added goes too: they run again. */
        "ALTER TABLE ignored_messages DROP COLUMN release_job_id;"
        "ALTER TABLE ignored_messages DROP COLUMN release_by;"
        "ALTER TABLE ignored_messages DROP COLUMN release_requested_at;"
        "ALTER TABLE ignored_messages DROP COLUMN released_at;"
        "ALTER TABLE ignored_messages DROP COLUMN released_ticket_id;"
        "ALTER TABLE ignored_messages DROP COLUMN released_message_row;"
        /* and what the migrations after 15 add */
        "DROP INDEX outbound_mail_state; DROP INDEX notifications_state;"
        "DROP INDEX attachments_scan_error;"
        "ALTER TABLE attachments DROP COLUMN scan_previous;"
        "ALTER TABLE attachments DROP COLUMN scan_rescan_at;"
        "DELETE FROM schema_version WHERE version >= 15;");
    assert_int_equal(store_fx_open(f, true, &err), 0);
    struct mr_webhook *list = NULL;
    size_t n = 0;
    assert_int_equal(mr_store_webhook_list(f->st, "acme", &list, &n, &err), 0);
    assert_int_equal(n, 2);
    int64_t old_id = 0;
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].source, "config");
        assert_false(list[i].active); /* until serve syncs the file */
        assert_int_equal(list[i].cursor, 41);
        if (strcmp(list[i].url, "https://gone.test/") == 0)
            assert_int_equal(list[i].disabled_at, 77);
        else
            old_id = list[i].id;
    }
    mr_webhook_list_free(list, n);
    struct mr_webhook_delivery d;
    assert_int_equal(mr_store_delivery_get(f->st, "acme", 12, &d, &err), 0);
    assert_int_equal(d.webhook_id, old_id);
    assert_int_equal(d.ticket_id, 5);
    assert_string_equal(d.event_type, "ticket.created");
    assert_string_equal(d.state, "dead");
    assert_string_equal(d.last_error, "HTTP 500");
    mr_webhook_delivery_clear(&d);
    /* the file's secrets come back at the sync; then it is live */
    const char *const one[] = {SECRETS[0]};
    struct mr_webhook_spec cfg = {.tenant = "acme",
                                  .url = "https://old.test/",
                                  .set_events = true,
                                  .secrets = one,
                                  .nsecrets = 1,
                                  .active = 1};
    assert_int_equal(mr_store_webhook_sync_config(f->st, &cfg, 1, &err), 0);
    struct mr_webhook w;
    assert_int_equal(mr_store_webhook_get(f->st, "acme", old_id, &w, &err), 0);
    assert_true(w.active);
    assert_int_equal(w.nsecrets, 1);
    mr_webhook_clear(&w);
}

/* The due list of a window of max at now=10,000 with skip (nskip ids):
 * how many of it are subscription b's; a's seqs in *aseq (max of them),
 * in list order. */
static size_t due_split(struct fx *f, int max, const int64_t *skip,
                        size_t nskip, int64_t b, int64_t *aseq, size_t *na)
{
    struct mr_webhook_delivery *d = NULL;
    size_t n = 0, nb = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_webhook_due(f->st, 10000, max, skip, nskip, &d,
                                          &n, &err),
                     0);
    assert_true(n <= (size_t)max);
    *na = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i].webhook_id == b)
            nb++;
        else
            aseq[(*na)++] = d[i].seq;
    }
    mr_webhook_delivery_list_free(d, n);
    return nb;
}

/* Fairness: subscription a has 5,000 due deliveries, older than b's 3;
 * a small window still holds b's, rank by rank (each subscription's
 * oldest first), while every other rule holds: the skip list, per-ticket
 * order, paused subscriptions left out, and a lone subscription gets the
 * whole window. */
static void due_fair_between_subs(void **state)
{
    struct fx *f = *state;
    int64_t a = create(f, "acme", "https://a.test/", NULL, 0);
    int64_t b = create(f, "acme", "https://b.test/", NULL, 0);
    char sql[700];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
             " WHERE i < 5000) INSERT INTO webhook_deliveries (tenant,"
             " webhook_id, seq, event_type, ticket_id, next_attempt_at,"
             " created_at, updated_at) SELECT 'acme', %lld, i,"
             " 'ticket.created', i, i, 1, 1 FROM n;"
             "INSERT INTO webhook_deliveries (tenant, webhook_id, seq,"
             " event_type, next_attempt_at, created_at, updated_at) VALUES"
             " ('acme', %lld, 1, 'bounce.unmatched', 9000, 1, 1),"
             " ('acme', %lld, 2, 'bounce.unmatched', 9001, 1, 1),"
             " ('acme', %lld, 3, 'bounce.unmatched', 9002, 1, 1);",
             (long long)a, (long long)b, (long long)b, (long long)b);
    store_fx_exec(f->path, sql);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM webhook_deliveries"
                                " WHERE state = 'pending'"),
                     5003);

    int64_t aseq[16];
    size_t na = 0;
    /* b's three are in a window of 8; a's five are its oldest, in order */
    assert_int_equal(due_split(f, 8, NULL, 0, b, aseq, &na), 3);
    assert_int_equal(na, 5);
    for (size_t i = 0; i < na; i++)
        assert_int_equal(aseq[i], (int64_t)i + 1);
    /* a window of 2: one each */
    assert_int_equal(due_split(f, 2, NULL, 0, b, aseq, &na), 1);
    assert_int_equal(na, 1);
    assert_int_equal(aseq[0], 1);

    /* a's two oldest in flight: a's next ones, b's still there */
    int64_t skip[] = {delivery_of(f, a, 1), delivery_of(f, a, 2)};
    assert_int_equal(due_split(f, 8, skip, 2, b, aseq, &na), 3);
    assert_int_equal(na, 5);
    assert_int_equal(aseq[0], 3);
    assert_int_equal(aseq[4], 7);

    /* b's three of one ticket: only the first is due */
    snprintf(sql, sizeof sql,
             "UPDATE webhook_deliveries SET ticket_id = 7 WHERE webhook_id"
             " = %lld",
             (long long)b);
    store_fx_exec(f->path, sql);
    assert_int_equal(due_split(f, 8, NULL, 0, b, aseq, &na), 1);
    assert_int_equal(na, 7);

    /* b paused: a alone fills the window */
    snprintf(sql, sizeof sql, "UPDATE webhook_subs SET active = 0 WHERE id"
             " = %lld", (long long)b);
    store_fx_exec(f->path, sql);
    assert_int_equal(due_split(f, 16, NULL, 0, b, aseq, &na), 0);
    assert_int_equal(na, 16);
    assert_int_equal(aseq[15], 16);

    /* b active again, a disabled: only b's (first of its ticket) */
    snprintf(sql, sizeof sql,
             "UPDATE webhook_subs SET active = 1 WHERE id = %lld;"
             "UPDATE webhook_subs SET disabled_at = 5 WHERE id = %lld;",
             (long long)b, (long long)a);
    store_fx_exec(f->path, sql);
    assert_int_equal(due_split(f, 8, NULL, 0, b, aseq, &na), 1);
    assert_int_equal(na, 0);
}

static void event_types(void **state)
{
    (void)state;
    assert_true(mr_store_event_type_known("ticket.created"));
    assert_true(mr_store_event_type_known("delivery.failed"));
    assert_false(mr_store_event_type_known("ticket.create"));
    assert_false(mr_store_event_type_known(""));
    assert_false(mr_store_event_type_known(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(crud, setup, teardown),
        cmocka_unit_test_setup_teardown(config_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(ticket_order, setup, teardown),
        cmocka_unit_test_setup_teardown(due_skip_and_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(due_fair_between_subs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failed_event_no_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(redrive_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate_from_10, setup, teardown),
        cmocka_unit_test(event_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
