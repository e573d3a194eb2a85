/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.c - reading the outbox: cursor polling and consumer groups.
 *
 * The outbox (events, written by tickets.c in the delivering transaction)
 * is read by seq, which only grows, so "every event after cursor N" never
 * skips one that commits later with a smaller seq: the single writer hands
 * out seqs in commit order.
 *
 * Payloads stay small in the table (ids only); an email.received event is
 * handed out with the message's whole normalized event (messages.event_json)
 * under "event", joined at read time, so the outbox holds it once.
 *
 * Writing: mr__event_insert is the one INSERT into the outbox, called
 * inside the transaction that makes the change it announces (tickets.c
 * for delivered mail, ticket_update.c for agents' changes, scan.c for
 * antivirus verdicts).
 *
 * Consumer groups give exactly-once processing to several pollers sharing
 * one name. A group has a watermark (acked_seq: every event up to it is
 * done) and outstanding leases, each a batch (after_seq, last_seq] held by
 * one claimer until lease_until. A new batch starts after the watermark and
 * after every batch leased so far, so batches are contiguous and disjoint;
 * claims run on the writer one at a time, so two claimers can never be
 * given the same batch. A lease that runs out unacknowledged is offered
 * again, whole and before anything new, under a new lease id, so a late
 * ack from the claimer that lost it is refused (409) rather than mistaken
 * for the new holder's. Acks may arrive in any order; the watermark moves
 * only over a gap-free run of acknowledged batches.
 */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"

/* Ack folds acknowledged batches into the watermark one by one; a group
 * has at most as many leases as claims were made, this bounds one ack. */
#define FOLD_MAX 100000

#define EVENT_COLS                                                             \
    "e.seq, e.type, coalesce(e.ticket_id, 0), coalesce(e.message_row, 0),"     \
    " CASE WHEN e.type = 'email.received' AND json_valid(m.event_json)"        \
    " THEN json_set(e.payload, '$.event', json(m.event_json))"                 \
    " ELSE e.payload END, e.created_at"

/* ?1 tenant, ?2 after, ?3 limit, ?4 JSON array of types or NULL, ?5 the
 * last seq wanted. */
static const char SQL_EVENTS[] =
    "SELECT " EVENT_COLS " FROM events e"
    " LEFT JOIN messages m ON e.type = 'email.received'"
    "  AND m.id = e.message_row AND m.tenant = e.tenant"
    " WHERE e.tenant = ?1 AND e.seq > ?2 AND e.seq <= ?5"
    "  AND (?4 IS NULL OR e.type IN (SELECT value FROM json_each(?4)))"
    " ORDER BY e.seq LIMIT ?3";

/* ?1 JSON array of seqs, ?2 limit. */
static const char SQL_EVENTS_BY_SEQ[] =
    "SELECT " EVENT_COLS " FROM events e"
    " LEFT JOIN messages m ON e.type = 'email.received'"
    "  AND m.id = e.message_row AND m.tenant = e.tenant"
    " WHERE e.seq IN (SELECT value FROM json_each(?1))"
    " ORDER BY e.seq LIMIT ?2";

/* Where a group's next new batch starts: after its watermark and after
 * every batch leased so far. ?1 tenant, ?2 name. */
#define GROUP_START                                                            \
    "max(coalesce((SELECT acked_seq FROM consumer_groups"                      \
    "  WHERE tenant = ?1 AND name = ?2), 0),"                                  \
    " coalesce((SELECT max(last_seq) FROM consumer_leases"                     \
    "  WHERE tenant = ?1 AND name = ?2), 0))"

static const char SQL_HAS_WORK[] =
    "SELECT EXISTS (SELECT 1 FROM consumer_leases WHERE tenant = ?1"
    "  AND name = ?2 AND acked = 0 AND lease_until < ?3)"
    " OR EXISTS (SELECT 1 FROM events WHERE tenant = ?1 AND seq > " GROUP_START
    ")";
static const char SQL_GROUP_ADD[] =
    "INSERT OR IGNORE INTO consumer_groups (tenant, name, acked_seq,"
    " created_at, updated_at) VALUES (?1, ?2, 0, ?3, ?3)";
static const char SQL_EXPIRED[] =
    "SELECT id, after_seq, last_seq FROM consumer_leases WHERE tenant = ?1"
    " AND name = ?2 AND acked = 0 AND lease_until < ?3"
    " ORDER BY after_seq LIMIT 1";
static const char SQL_LEASE_DEL[] = "DELETE FROM consumer_leases WHERE id = ?1";
static const char SQL_LEASE_ADD[] =
    "INSERT INTO consumer_leases (tenant, name, after_seq, last_seq,"
    " lease_until) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id";
static const char SQL_START[] = "SELECT " GROUP_START;
static const char SQL_LEASE_FIND[] =
    "SELECT id, acked, lease_until FROM consumer_leases WHERE tenant = ?1"
    " AND name = ?2 AND last_seq = ?3";
static const char SQL_LEASE_ACK[] =
    "UPDATE consumer_leases SET acked = 1 WHERE id = ?1";
static const char SQL_ACKED_SEQ[] =
    "SELECT acked_seq FROM consumer_groups WHERE tenant = ?1 AND name = ?2";
static const char SQL_NEXT_ACKED[] =
    "SELECT id, last_seq FROM consumer_leases WHERE tenant = ?1"
    " AND name = ?2 AND after_seq = ?3 AND acked = 1";
static const char SQL_WATERMARK[] =
    "UPDATE consumer_groups SET acked_seq = ?3, updated_at = ?4"
    " WHERE tenant = ?1 AND name = ?2";

static const char SQL_INSERT_EVENT[] =
    "INSERT INTO events (tenant, type, ticket_id, message_row, payload,"
    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

int mr__event_insert(struct mr__conn *c, const char *tenant, const char *type,
                     int64_t ticket_id, int64_t row, const char *payload,
                     int64_t now, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_INSERT_EVENT, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, tenant);
    mr__bind_str(s, 2, type);
    /* None is NULL, as the schema says (readers coalesce to 0). */
    if (ticket_id > 0)
        sqlite3_bind_int64(s, 3, ticket_id);
    else
        sqlite3_bind_null(s, 3);
    if (row > 0)
        sqlite3_bind_int64(s, 4, row);
    else
        sqlite3_bind_null(s, 4);
    mr__bind_str(s, 5, payload);
    sqlite3_bind_int64(s, 6, now);
    return mr__stmt_exec(c, s, "cannot store an event", err);
}

void mr_event_list_free(struct mr_event_rec *ev, size_t n)
{
    for (size_t i = 0; ev && i < n; i++) {
        free(ev[i].type);
        free(ev[i].payload);
    }
    free(ev);
}

void mr_event_lease_clear(struct mr_event_lease *l)
{
    if (l == NULL)
        return;
    mr_event_list_free(l->events, l->n);
    memset(l, 0, sizeof *l);
}

bool mr_store_consumer_name_valid(const char *name)
{
    size_t n = name ? strnlen(name, MR_CONSUMER_NAME_MAX + 1) : 0;
    if (n == 0 || n > MR_CONSUMER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
                  ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

const char *mr__json_int_array(struct mr_buf *b, const int64_t *v, size_t n)
{
    if (n == 0 || v == NULL)
        return NULL;
    struct mr_json j;
    mr_json_init(&j, b, false);
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++)
        mr_json_int(&j, v[i]);
    mr_json_arr_end(&j);
    return b->p;
}

/* Steps s (bound, of EVENT_COLS) into a new array of at most limit
 * events. */
static int read_events(struct mr__conn *c, sqlite3_stmt *s, int limit,
                       struct mr_event_rec **out, size_t *n,
                       struct mr_error *err)
{
    int rc;
    struct mr_event_rec *ev = NULL;
    size_t cnt = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && cnt < (size_t)limit) {
        if (ev == NULL)
            ev = mr_xcalloc((size_t)limit, sizeof *ev);
        struct mr_event_rec *e = &ev[cnt++];
        e->seq = sqlite3_column_int64(s, 0);
        e->type = mr__col_str(s, 1);
        e->ticket_id = sqlite3_column_int64(s, 2);
        e->message_row = sqlite3_column_int64(s, 3);
        e->payload = mr__col_str(s, 4);
        e->created_at = sqlite3_column_int64(s, 5);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        rc = mr__sqlerr(c, rc, "cannot read events", err);
        mr__stmt_done(s);
        mr_event_list_free(ev, cnt);
        return rc;
    }
    mr__stmt_done(s);
    *out = ev;
    *n = cnt;
    return 0;
}

/* The events of tenant in (after, last], at most limit, of types_json's
 * types (NULL: all), into a new array. */
static int select_events(struct mr__conn *c, const char *tenant, int64_t after,
                         int64_t last, int limit, const char *types_json,
                         struct mr_event_rec **out, size_t *n,
                         struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_EVENTS, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, tenant);
    sqlite3_bind_int64(s, 2, after);
    sqlite3_bind_int(s, 3, limit);
    mr__bind_str(s, 4, types_json);
    sqlite3_bind_int64(s, 5, last);
    return read_events(c, s, limit, out, n, err);
}

int mr_store_events_by_seq(struct mr_store *st, const int64_t *seqs,
                           size_t nseqs, struct mr_event_rec **out, size_t *n,
                           struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    if (seqs == NULL || nseqs < 1 || nseqs > MR_EVENTS_LIMIT_MAX)
        return mr_error_set(err, MR_EINVAL, "events: from 1 to %d seqs",
                            MR_EVENTS_LIMIT_MAX);
    struct mr_buf b;
    mr_buf_init(&b, 0);
    const char *seqs_json = mr__json_int_array(&b, seqs, nseqs);
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_EVENTS_BY_SEQ, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, seqs_json);
        sqlite3_bind_int(s, 2, (int)nseqs);
        rc = read_events(c, s, (int)nseqs, out, n, err);
    }
    mr__store_read_release(st, c);
    mr_buf_release(&b);
    return rc;
}

int mr_store_list_events(struct mr_store *st, const char *tenant, int64_t after,
                         int limit, const char *const *types, size_t ntypes,
                         struct mr_event_rec **out, size_t *n,
                         struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    if (tenant == NULL || after < 0 || limit < 1 || limit > MR_EVENTS_LIMIT_MAX)
        return mr_error_set(err, MR_EINVAL,
                            "events: a tenant, a cursor >= 0 and a limit "
                            "from 1 to %d",
                            MR_EVENTS_LIMIT_MAX);
    /* The type list travels as one JSON array, so one SQL text serves
     * every number of types. */
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
    struct mr__conn *c = mr__store_read_acquire(st);
    int rc = select_events(c, tenant, after, INT64_MAX, limit,
                           ntypes > 0 ? tb.p : NULL, out, n, err);
    mr__store_read_release(st, c);
    mr_buf_release(&tb);
    return rc;
}

static const char SQL_EVENTS_HEAD[] =
    "SELECT COALESCE(MAX(seq), 0) FROM events WHERE tenant = ?1";

int mr_store_events_head(struct mr_store *st, const char *tenant, int64_t *seq,
                         struct mr_error *err)
{
    *seq = 0;
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "events: no tenant");
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_EVENTS_HEAD, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, tenant);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW)
            *seq = sqlite3_column_int64(s, 0);
        else
            rc = mr__sqlerr(c, r, "cannot read the newest event", err);
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    return rc;
}

/* ---- claim ----------------------------------------------------------------
 */

struct claim_arg {
    const char *tenant;
    const char *name;
    int limit;
    int64_t now;
    int64_t lease_until;
    struct mr_event_lease *out;
};

static int step_int64s(struct mr__conn *c, sqlite3_stmt *s, int64_t *v, int nv,
                       const char *what, bool *found, struct mr_error *err)
{
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        for (int i = 0; i < nv; i++)
            v[i] = sqlite3_column_int64(s, i);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = mr__sqlerr(c, rc, what, err);
    }
    mr__stmt_done(s);
    return rc;
}

static int add_lease(struct mr__conn *c, const struct claim_arg *a,
                     int64_t after, int64_t last, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_LEASE_ADD, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->name);
    sqlite3_bind_int64(s, 3, after);
    sqlite3_bind_int64(s, 4, last);
    sqlite3_bind_int64(s, 5, a->lease_until);
    int64_t id = 0;
    bool found;
    rc = step_int64s(c, s, &id, 1, "cannot lease events", &found, err);
    if (rc < 0)
        return rc;
    a->out->lease_id = id;
    a->out->after = after;
    a->out->cursor = last;
    a->out->expires_at = a->lease_until;
    return 0;
}

static int op_claim(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct claim_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_GROUP_ADD, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->name);
    sqlite3_bind_int64(s, 3, a->now);
    rc = mr__stmt_exec(c, s, "cannot create the consumer group", err);
    if (rc < 0)
        return rc;

    /* A batch whose claimer went away comes first: the watermark cannot
     * pass it until someone acknowledges it. */
    rc = mr__stmt(c, SQL_EXPIRED, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->name);
    sqlite3_bind_int64(s, 3, a->now);
    int64_t exp[3] = {0, 0, 0};
    bool found;
    rc = step_int64s(c, s, exp, 3, "cannot read leases", &found, err);
    if (rc < 0)
        return rc;
    if (found) {
        /* A new row, so a new lease id: the claimer that lost the lease
         * can no longer acknowledge it. */
        rc = mr__stmt(c, SQL_LEASE_DEL, &s, err);
        if (rc < 0)
            return rc;
        sqlite3_bind_int64(s, 1, exp[0]);
        rc = mr__stmt_exec(c, s, "cannot re-lease events", err);
        if (rc < 0)
            return rc;
        rc = add_lease(c, a, exp[1], exp[2], err);
        if (rc < 0)
            return rc;
        return select_events(c, a->tenant, exp[1], exp[2], MR_EVENTS_LIMIT_MAX,
                             NULL, &a->out->events, &a->out->n, err);
    }

    rc = mr__stmt(c, SQL_START, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->name);
    int64_t start = 0;
    rc = step_int64s(c, s, &start, 1, "cannot read the consumer group", &found,
                     err);
    if (rc < 0)
        return rc;
    rc = select_events(c, a->tenant, start, INT64_MAX, a->limit, NULL,
                       &a->out->events, &a->out->n, err);
    if (rc < 0)
        return rc;
    if (a->out->n == 0)
        return mr_error_set(err, MR_ENOTFOUND, "no events to claim");
    return add_lease(c, a, start, a->out->events[a->out->n - 1].seq, err);
}

int mr_store_claim_events(struct mr_store *st, const char *tenant,
                          const char *name, int limit, int64_t now,
                          int64_t lease_ms, struct mr_event_lease *out,
                          struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    if (tenant == NULL || !mr_store_consumer_name_valid(name) || limit < 1 ||
        limit > MR_EVENTS_LIMIT_MAX || lease_ms < 1)
        return mr_error_set(err, MR_EINVAL,
                            "claim: a tenant, a group name "
                            "[A-Za-z0-9._-]{1,%d}, a limit from 1 to %d and "
                            "a lease > 0",
                            MR_CONSUMER_NAME_MAX, MR_EVENTS_LIMIT_MAX);
    /* Idle pollers find out on a read connection, without costing the
     * writer a synced transaction each. */
    struct mr__conn *rc_conn = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(rc_conn, SQL_HAS_WORK, &s, err);
    int64_t work = 1;
    bool found = false;
    if (rc == 0) {
        mr__bind_str(s, 1, tenant);
        mr__bind_str(s, 2, name);
        sqlite3_bind_int64(s, 3, now);
        rc = step_int64s(rc_conn, s, &work, 1, "cannot read events", &found,
                         err);
    }
    mr__store_read_release(st, rc_conn);
    if (rc < 0)
        return rc;
    if (!work)
        return mr_error_set(err, MR_ENOTFOUND, "no events to claim");
    struct claim_arg a = {tenant, name, limit, now, now + lease_ms, out};
    rc = mr__store_write(st, op_claim, &a, err);
    if (rc < 0)
        mr_event_lease_clear(out);
    return rc;
}

/* ---- ack ------------------------------------------------------------------
 */

struct ack_arg {
    const char *tenant;
    const char *name;
    int64_t cursor;
    int64_t lease_id;
    int64_t now;
};

/* Moves the watermark over every acknowledged batch that starts at it. */
static int fold_acked(struct mr__conn *c, const struct ack_arg *a,
                      struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_ACKED_SEQ, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->name);
    int64_t mark = 0;
    bool found;
    rc = step_int64s(c, s, &mark, 1, "cannot read the consumer group", &found,
                     err);
    if (rc < 0)
        return rc;
    int64_t start = mark;
    for (int i = 0; i < FOLD_MAX; i++) {
        rc = mr__stmt(c, SQL_NEXT_ACKED, &s, err);
        if (rc < 0)
            return rc;
        mr__bind_str(s, 1, a->tenant);
        mr__bind_str(s, 2, a->name);
        sqlite3_bind_int64(s, 3, mark);
        int64_t row[2] = {0, 0};
        rc = step_int64s(c, s, row, 2, "cannot read leases", &found, err);
        if (rc < 0)
            return rc;
        if (!found)
            break;
        rc = mr__stmt(c, SQL_LEASE_DEL, &s, err);
        if (rc < 0)
            return rc;
        sqlite3_bind_int64(s, 1, row[0]);
        rc = mr__stmt_exec(c, s, "cannot drop a lease", err);
        if (rc < 0)
            return rc;
        mark = row[1];
    }
    if (mark == start)
        return 0;
    rc = mr__stmt(c, SQL_WATERMARK, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->name);
    sqlite3_bind_int64(s, 3, mark);
    sqlite3_bind_int64(s, 4, a->now);
    return mr__stmt_exec(c, s, "cannot move the watermark", err);
}

static int op_ack(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct ack_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_LEASE_FIND, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->name);
    sqlite3_bind_int64(s, 3, a->cursor);
    int64_t row[3] = {0, 0, 0}; /* id, acked, lease_until */
    bool found;
    rc = step_int64s(c, s, row, 3, "cannot read leases", &found, err);
    if (rc < 0)
        return rc;
    if (!found) {
        /* Folded into the watermark already: a repeated ack. */
        rc = mr__stmt(c, SQL_ACKED_SEQ, &s, err);
        if (rc < 0)
            return rc;
        mr__bind_str(s, 1, a->tenant);
        mr__bind_str(s, 2, a->name);
        int64_t mark = 0;
        rc = step_int64s(c, s, &mark, 1, "cannot read the consumer group",
                         &found, err);
        if (rc < 0)
            return rc;
        if (found && a->cursor <= mark)
            return 0;
        return mr_error_set(err, MR_ECONFLICT,
                            "cursor %lld is not a batch leased to consumer "
                            "group %s",
                            (long long)a->cursor, a->name);
    }
    if (row[1])
        return 0;
    if (a->lease_id != 0 && a->lease_id != row[0])
        return mr_error_set(err, MR_ECONFLICT,
                            "the batch ending at %lld was leased again to "
                            "another claimer",
                            (long long)a->cursor);
    if (row[2] < a->now)
        return mr_error_set(err, MR_ECONFLICT,
                            "the lease of the batch ending at %lld has "
                            "expired; it will be offered again",
                            (long long)a->cursor);
    rc = mr__stmt(c, SQL_LEASE_ACK, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, row[0]);
    rc = mr__stmt_exec(c, s, "cannot acknowledge a lease", err);
    if (rc < 0)
        return rc;
    return fold_acked(c, a, err);
}

int mr_store_ack_events(struct mr_store *st, const char *tenant,
                        const char *name, int64_t cursor, int64_t lease_id,
                        int64_t now, struct mr_error *err)
{
    if (tenant == NULL || !mr_store_consumer_name_valid(name) || cursor < 1 ||
        lease_id < 0)
        return mr_error_set(err, MR_EINVAL,
                            "ack: a tenant, a group name and a cursor > 0");
    struct ack_arg a = {tenant, name, cursor, lease_id, now};
    return mr__store_write(st, op_ack, &a, err);
}
