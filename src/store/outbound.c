/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbound.c - the outbound mail queue (docs/outbound.md).
 *
 * Rows are written by the delivering transaction (tickets.c calls
 * mr__outbound_ack_in_tx), so an acknowledgement exists exactly when the
 * ticket it acknowledges does: a crash after the commit loses nothing, a
 * crash before it sends nothing. The sender thread (src/outbound/sender.c)
 * claims due rows with a lease and records each attempt's end.
 *
 * auto_ack_senders holds per (tenant, address) the time of the last
 * acknowledgement. The worker reads it before the rules run (their
 * `window` condition), but two workers may read it at the same moment;
 * the writer's transaction is serial, so reading and moving it there is
 * what makes "at most one per sender per window" hold strictly.
 */
#include "store/store-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define OUTBOUND_LIST_MAX 1000
#define MSGID_CAP 256

static const char SQL_LAST_ACK[] =
    "SELECT last_ack_at FROM auto_ack_senders WHERE tenant = ?1"
    " AND address = ?2";
static const char SQL_SET_ACK[] =
    "INSERT INTO auto_ack_senders (tenant, address, last_ack_at)"
    " VALUES (?1, ?2, ?3) ON CONFLICT (tenant, address)"
    " DO UPDATE SET last_ack_at = excluded.last_ack_at";
static const char SQL_INSERT_MAIL[] =
    "INSERT INTO outbound_mail (tenant, kind, ticket_id, message_id,"
    " mail_from, rcpt_to, message, next_attempt_at, created_at, updated_at)"
    " VALUES (?1, 'auto_ack', ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7)";
#define MAIL_COLS                                                              \
    "id, tenant, kind, ticket_id, message_id, mail_from, rcpt_to, message,"   \
    " state, attempts, next_attempt_at, last_error, created_at, updated_at"
static const char SQL_DUE[] =
    "SELECT " MAIL_COLS " FROM outbound_mail WHERE state = 'pending'"
    " AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2";
static const char SQL_LEASE[] =
    "UPDATE outbound_mail SET attempts = attempts + 1, next_attempt_at = ?2,"
    " updated_at = ?3 WHERE id = ?1";
static const char SQL_RESULT[] =
    "UPDATE outbound_mail SET state = ?2, next_attempt_at = ?3,"
    " last_error = ?4, updated_at = ?5 WHERE id = ?1";
/* With a state, the walk is along outbound_mail_state (state, id), so a
 * page of the few failed rows does not read the many sent ones; without,
 * along the rowid. */
static const char SQL_LIST_STATE[] =
    "SELECT " MAIL_COLS " FROM outbound_mail WHERE state = ?2 AND id > ?3"
    " AND (?1 IS NULL OR tenant = ?1) ORDER BY id LIMIT ?4";
static const char SQL_LIST_ALL[] =
    "SELECT " MAIL_COLS " FROM outbound_mail WHERE id > ?3"
    " AND (?1 IS NULL OR tenant = ?1) AND ?2 IS NULL ORDER BY id LIMIT ?4";
static const char SQL_GET[] =
    "SELECT " MAIL_COLS " FROM outbound_mail WHERE id = ?1"
    " AND (?2 IS NULL OR tenant = ?2)";
/* attempts 0: the retried mail gets the whole schedule again, as a
 * redriven webhook delivery does; last_error stays until the next try. */
static const char SQL_RETRY[] =
    "UPDATE outbound_mail SET state = 'pending', attempts = 0,"
    " next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1";

static int read_last_ack(struct mr__conn *c, const char *tenant,
                         const char *address, int64_t *at,
                         struct mr_error *err)
{
    sqlite3_stmt *s;
    *at = 0;
    int rc = mr__stmt(c, SQL_LAST_ACK, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, tenant);
    mr__bind_str(s, 2, address);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *at = sqlite3_column_int64(s, 0);
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE
             ? 0
             : mr__sqlerr(c, rc, "cannot read the last acknowledgement", err);
    mr__stmt_done(s);
    return rc;
}

int mr_store_last_ack(struct mr_store *st, const char *tenant,
                      const char *address, int64_t *at, struct mr_error *err)
{
    *at = 0;
    if (tenant == NULL || address == NULL || address[0] == '\0')
        return 0;
    struct mr__conn *c = mr__store_read_acquire(st);
    int rc = read_last_ack(c, tenant, address, at, err);
    mr__store_read_release(st, c);
    return rc;
}

int mr__outbound_ack_in_tx(struct mr__conn *c, const char *tenant,
                           const struct mr_ack_spec *ack, int64_t ticket_id,
                           int64_t number, int64_t now, bool *queued,
                           bool *in_window, char *msgid, size_t msgid_cap,
                           struct mr_error *err)
{
    *queued = *in_window = false;
    msgid[0] = '\0';
    if (ack == NULL || ack->to == NULL || ack->to[0] == '\0' || !ack->render)
        return 0;
    int64_t last = 0;
    int rc = read_last_ack(c, tenant, ack->to, &last, err);
    if (rc < 0)
        return rc;
    /* Another delivery for this sender committed first (the worker's
     * read was before it): this one stays quiet. */
    if (last > 0 && now - last < ack->window_ms) {
        *in_window = true;
        return 0;
    }
    struct mr_buf msg;
    mr_buf_init(&msg, 0);
    char id[MSGID_CAP];
    id[0] = '\0';
    if (ack->render(ack->ctx, ticket_id, number, &msg, id, sizeof id) < 0 ||
        msg.len == 0) {
        /* Nothing sendable (a sender address we refuse to write into a
         * header): the ticket is stored all the same. */
        mr_buf_release(&msg);
        return 0;
    }
    mr_buf_putc(&msg, '\0');
    sqlite3_stmt *s;
    rc = mr__stmt(c, SQL_INSERT_MAIL, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, tenant);
        sqlite3_bind_int64(s, 2, ticket_id);
        mr__bind_str(s, 3, id[0] ? id : NULL);
        mr__bind_str(s, 4, ack->mail_from ? ack->mail_from : "");
        mr__bind_str(s, 5, ack->to);
        mr__bind_str(s, 6, msg.p);
        sqlite3_bind_int64(s, 7, now);
        rc = mr__stmt_exec(c, s, "cannot queue the acknowledgement", err);
    }
    mr_buf_release(&msg);
    if (rc == 0)
        rc = mr__stmt(c, SQL_SET_ACK, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, tenant);
        mr__bind_str(s, 2, ack->to);
        sqlite3_bind_int64(s, 3, now);
        rc = mr__stmt_exec(c, s, "cannot record the acknowledgement", err);
    }
    if (rc == 0) {
        *queued = true;
        snprintf(msgid, msgid_cap, "%s", id);
    }
    return rc;
}

void mr_outbound_mail_clear(struct mr_outbound_mail *m)
{
    free(m->tenant);
    free(m->kind);
    free(m->message_id);
    free(m->mail_from);
    free(m->rcpt_to);
    free(m->message);
    free(m->state);
    free(m->last_error);
    memset(m, 0, sizeof *m);
}

void mr_outbound_mail_list_free(struct mr_outbound_mail *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        mr_outbound_mail_clear(&m[i]);
    free(m);
}

static void read_row(sqlite3_stmt *s, struct mr_outbound_mail *m)
{
    m->id = sqlite3_column_int64(s, 0);
    m->tenant = mr__col_str(s, 1);
    m->kind = mr__col_str(s, 2);
    m->ticket_id = sqlite3_column_int64(s, 3);
    m->message_id = mr__col_str(s, 4);
    m->mail_from = mr__col_str(s, 5);
    m->rcpt_to = mr__col_str(s, 6);
    m->message = mr__col_str(s, 7);
    m->state = mr__col_str(s, 8);
    m->attempts = sqlite3_column_int(s, 9);
    m->next_attempt_at = sqlite3_column_int64(s, 10);
    m->last_error = mr__col_str(s, 11);
    m->created_at = sqlite3_column_int64(s, 12);
    m->updated_at = sqlite3_column_int64(s, 13);
}

/* Steps s (bound, and handed over) into a new array of at most max. */
static int read_rows(struct mr__conn *c, sqlite3_stmt *s, int max,
                     struct mr_outbound_mail **out, size_t *n,
                     struct mr_error *err)
{
    struct mr_outbound_mail *v = mr_xcalloc((size_t)max, sizeof *v);
    size_t k = 0;
    int rc;
    while (k < (size_t)max && (rc = sqlite3_step(s)) == SQLITE_ROW)
        read_row(s, &v[k++]);
    int res = 0;
    if (k < (size_t)max && rc != SQLITE_DONE)
        res = mr__sqlerr(c, rc, "cannot read outbound mail", err);
    mr__stmt_done(s);
    if (res < 0 || k == 0) {
        mr_outbound_mail_list_free(v, k);
        return res;
    }
    *out = v;
    *n = k;
    return 0;
}

struct claim_arg {
    int64_t now, lease_ms;
    int max;
    struct mr_outbound_mail *out;
    size_t n;
};

static int op_claim(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct claim_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_DUE, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->now);
    sqlite3_bind_int(s, 2, a->max);
    rc = read_rows(c, s, a->max, &a->out, &a->n, err);
    for (size_t i = 0; rc == 0 && i < a->n; i++) {
        if ((rc = mr__stmt(c, SQL_LEASE, &s, err)) < 0)
            break;
        sqlite3_bind_int64(s, 1, a->out[i].id);
        sqlite3_bind_int64(s, 2, a->now + a->lease_ms);
        sqlite3_bind_int64(s, 3, a->now);
        rc = mr__stmt_exec(c, s, "cannot lease outbound mail", err);
        a->out[i].attempts++;
    }
    if (rc < 0) {
        mr_outbound_mail_list_free(a->out, a->n);
        a->out = NULL;
        a->n = 0;
    }
    return rc;
}

int mr_store_outbound_claim(struct mr_store *st, int64_t now, int64_t lease_ms,
                            int max, struct mr_outbound_mail **out, size_t *n,
                            struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    if (max < 1 || max > OUTBOUND_LIST_MAX)
        return mr_error_set(err, MR_EINVAL, "outbound claim: max 1 to %d",
                            OUTBOUND_LIST_MAX);
    struct claim_arg a = {now, lease_ms, max, NULL, 0};
    /* A claim lost in a power cut only means the row is due again. */
    int rc = mr__store_write_lazy(st, op_claim, &a, err);
    if (rc < 0) {
        mr_outbound_mail_list_free(a.out, a.n);
        return rc;
    }
    *out = a.out;
    *n = a.n;
    return 0;
}

static bool state_valid(const char *s)
{
    return s && (strcmp(s, "pending") == 0 || strcmp(s, "sent") == 0 ||
                 strcmp(s, "failed") == 0);
}

struct result_arg {
    int64_t id;
    const char *state;
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
    sqlite3_bind_int64(s, 3, a->next_at);
    mr__bind_str(s, 4, a->last_error);
    sqlite3_bind_int64(s, 5, mr__store_now_ms());
    rc = mr__stmt_exec(c, s, "cannot record an outbound attempt", err);
    if (rc == 0 && sqlite3_changes(c->db) == 0)
        rc = mr_error_set(err, MR_ENOTFOUND, "no outbound mail %lld",
                          (long long)a->id);
    return rc;
}

int mr_store_outbound_result(struct mr_store *st, int64_t id,
                             const char *state, int64_t next_at,
                             const char *last_error, struct mr_error *err)
{
    if (!state_valid(state))
        return mr_error_set(err, MR_EINVAL,
                            "outbound state must be sent, pending or failed");
    struct result_arg a = {id, state, next_at, last_error};
    /* Durable: a "sent" lost in a power cut would send the mail twice. */
    return mr__store_write(st, op_result, &a, err);
}

int mr_store_outbound_list(struct mr_store *st,
                           const struct mr_outbound_filter *f,
                           struct mr_outbound_mail **out, size_t *n,
                           struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    if (f->limit < 1 || f->limit > OUTBOUND_LIST_MAX ||
        (f->state && !state_valid(f->state)))
        return mr_error_set(err, MR_EINVAL,
                            "outbound mail: a limit of 1 to %d, a state of "
                            "pending, sent or failed",
                            OUTBOUND_LIST_MAX);
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, f->state ? SQL_LIST_STATE : SQL_LIST_ALL, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, f->tenant);
        mr__bind_str(s, 2, f->state);
        sqlite3_bind_int64(s, 3, f->after);
        sqlite3_bind_int(s, 4, f->limit);
        rc = read_rows(c, s, f->limit, out, n, err);
    }
    mr__store_read_release(st, c);
    return rc;
}

/* One row of tenant (NULL: any) into *out; MR_ENOTFOUND. */
static int get_row(struct mr__conn *c, const char *tenant, int64_t id,
                   struct mr_outbound_mail *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_GET, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    mr__bind_str(s, 2, tenant);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        read_row(s, out);
    else if (r == SQLITE_DONE)
        rc = mr_error_set(err, MR_ENOTFOUND, "no outbound mail %lld",
                          (long long)id);
    else
        rc = mr__sqlerr(c, r, "cannot read outbound mail", err);
    mr__stmt_done(s);
    return rc;
}

int mr_store_outbound_get(struct mr_store *st, const char *tenant, int64_t id,
                          struct mr_outbound_mail *out, struct mr_error *err)
{
    struct mr__conn *c = mr__store_read_acquire(st);
    int rc = get_row(c, tenant, id, out, err);
    mr__store_read_release(st, c);
    return rc;
}

struct retry_arg {
    const char *tenant;
    int64_t id;
    int64_t now;
    struct mr_outbound_mail *out; /* may be NULL */
};

static int op_retry(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct retry_arg *a = arg;
    struct mr_outbound_mail m;
    int rc = get_row(c, a->tenant, a->id, &m, err);
    if (rc < 0)
        return rc;
    bool failed = m.state && strcmp(m.state, "failed") == 0;
    if (!failed) {
        /* A pending row may be in a sender's hands right now, and a sent
         * one retried would reach its recipient twice. */
        rc = mr_error_set(err, MR_ECONFLICT,
                          "outbound mail %lld is %s: only a failed one can be "
                          "retried",
                          (long long)a->id, m.state ? m.state : "unknown");
        mr_outbound_mail_clear(&m);
        return rc;
    }
    mr_outbound_mail_clear(&m);
    sqlite3_stmt *s;
    if ((rc = mr__stmt(c, SQL_RETRY, &s, err)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    sqlite3_bind_int64(s, 2, a->now);
    if ((rc = mr__stmt_exec(c, s, "cannot retry outbound mail", err)) < 0)
        return rc;
    /* As this transaction left it: the sender may take it at once. */
    return a->out ? get_row(c, NULL, a->id, a->out, err) : 0;
}

int mr_store_outbound_retry(struct mr_store *st, const char *tenant,
                            int64_t id, struct mr_outbound_mail *out,
                            struct mr_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    struct retry_arg a = {tenant, id, mr__store_now_ms(), out};
    /* Durable, as every change an operator asked for and was told of. */
    int rc = mr__store_write(st, op_retry, &a, err);
    if (rc < 0 && out)
        mr_outbound_mail_clear(out);
    return rc;
}
