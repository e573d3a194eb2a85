/* SPDX-License-Identifier: Apache-2.0 */
/*
 * thread_lookup.c - the lookups threading asks for (src/ticket/thread.h),
 * answered on the writer's connection inside the delivering transaction,
 * so the decision and the rows it leads to are one atomic step: two
 * replies to one thread delivered in the same batch see each other.
 */
#include "store/store-private.h"

#include <string.h>

static const char SQL_REF_TICKET[] =
    "SELECT ticket_id FROM thread_refs WHERE tenant = ?1 AND message_id = ?2";
static const char SQL_MESSAGE_EXISTS[] =
    "SELECT 1 FROM messages WHERE tenant = ?1 AND message_id = ?2";
static const char SQL_TICKET_BY_ID[] =
    "SELECT id, number, status, updated_at FROM tickets"
    " WHERE tenant = ?1 AND id = ?2";
static const char SQL_TICKET_BY_NUMBER[] =
    "SELECT id, number, status, updated_at FROM tickets"
    " WHERE tenant = ?1 AND number = ?2";
static const char SQL_PARTICIPANT[] =
    "SELECT 1 FROM ticket_participants WHERE ticket_id = ?2 AND address = ?3"
    " AND tenant = ?1";
static const char SQL_SUBJECT_MATCH[] =
    "SELECT id FROM tickets WHERE tenant = ?1 AND requester = ?2"
    " AND subject_norm = ?3 AND status <> 'closed' AND updated_at >= ?4"
    " ORDER BY updated_at DESC, id DESC LIMIT 1";
static const char SQL_SECRET[] =
    "SELECT value FROM settings WHERE key = 'thread_secret'";

/* Runs a one-row query; calls row() on it. */
static int one_row(struct mr__conn *c, const char *sql, const char *tenant,
                   const char *text, int64_t num, const char *text2,
                   int64_t num2, void (*row)(sqlite3_stmt *s, void *out),
                   void *out, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, sql, &s, err);
    if (rc < 0)
        return rc;
    int i = 1;
    if (tenant)
        sqlite3_bind_text(s, i++, tenant, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(s, i++, text, -1, SQLITE_STATIC);
    if (num >= 0)
        sqlite3_bind_int64(s, i++, num);
    if (text2)
        sqlite3_bind_text(s, i++, text2, -1, SQLITE_STATIC);
    if (num2 >= 0)
        sqlite3_bind_int64(s, i++, num2);
    rc = sqlite3_step(s);
    int res;
    if (rc == SQLITE_ROW) {
        if (row)
            row(s, out);
        res = 0;
    } else if (rc == SQLITE_DONE) {
        res = MR_ENOTFOUND;
    } else {
        res = mr__sqlerr(c, rc, "threading lookup failed", err);
    }
    mr__stmt_done(s);
    return res;
}

static void col_id(sqlite3_stmt *s, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(s, 0);
}

static void col_ticket(sqlite3_stmt *s, void *out)
{
    struct mr_thread_ticket *t = out;
    t->id = sqlite3_column_int64(s, 0);
    t->number = sqlite3_column_int64(s, 1);
    const unsigned char *st = sqlite3_column_text(s, 2);
    snprintf(t->status, sizeof t->status, "%s", st ? (const char *)st : "");
    t->updated_at = sqlite3_column_int64(s, 3);
}

struct lk_ctx {
    struct mr__conn *c;
    struct mr_error *err;
};

static int ticket_of_message_id(void *ctx, const char *tenant,
                                const char *message_id, int64_t *ticket_id)
{
    struct lk_ctx *k = ctx;
    return one_row(k->c, SQL_REF_TICKET, tenant, message_id, -1, NULL, -1,
                   col_id, ticket_id, k->err);
}

static int message_exists(void *ctx, const char *tenant,
                          const char *message_id, bool *yes)
{
    struct lk_ctx *k = ctx;
    int rc = one_row(k->c, SQL_MESSAGE_EXISTS, tenant, message_id, -1, NULL,
                     -1, NULL, NULL, k->err);
    *yes = rc == 0;
    return rc == MR_ENOTFOUND ? 0 : rc;
}

static int ticket_by_id(void *ctx, const char *tenant, int64_t id,
                        struct mr_thread_ticket *out)
{
    struct lk_ctx *k = ctx;
    return one_row(k->c, SQL_TICKET_BY_ID, tenant, NULL, id, NULL, -1,
                   col_ticket, out, k->err);
}

static int ticket_by_number(void *ctx, const char *tenant, int64_t number,
                            struct mr_thread_ticket *out)
{
    struct lk_ctx *k = ctx;
    return one_row(k->c, SQL_TICKET_BY_NUMBER, tenant, NULL, number, NULL, -1,
                   col_ticket, out, k->err);
}

static int is_participant(void *ctx, const char *tenant, int64_t ticket_id,
                          const char *addr, bool *yes)
{
    struct lk_ctx *k = ctx;
    int rc = one_row(k->c, SQL_PARTICIPANT, tenant, NULL, ticket_id, addr, -1,
                     NULL, NULL, k->err);
    *yes = rc == 0;
    return rc == MR_ENOTFOUND ? 0 : rc;
}

static int subject_match(void *ctx, const char *tenant, const char *requester,
                         const char *norm, int64_t since, int64_t *ticket_id)
{
    struct lk_ctx *k = ctx;
    return one_row(k->c, SQL_SUBJECT_MATCH, tenant, requester, -1, norm,
                   since, col_id, ticket_id, k->err);
}

int mr__thread_secret(struct mr__conn *c, unsigned char *out, size_t cap,
                      size_t *len, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SECRET, &s, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(s);
    int res = 0;
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(s, 0);
        const void *p = sqlite3_column_blob(s, 0);
        if (n <= 0 || (size_t)n > cap || !p) {
            res = mr_error_set(err, MR_EIO, "the thread secret is damaged");
        } else {
            memcpy(out, p, (size_t)n);
            *len = (size_t)n;
        }
    } else {
        res = rc == SQLITE_DONE
                  ? mr_error_set(err, MR_EIO, "the thread secret is missing")
                  : mr__sqlerr(c, rc, "cannot read the thread secret", err);
    }
    mr__stmt_done(s);
    return res;
}

int mr__store_load_secret(struct mr_store *st, struct mr_error *err)
{
    int cur = 0;
    int rc = mr__schema_current(&st->wconn, &cur, err);
    if (rc < 0 || cur < 2) /* migration 2 makes the secret */
        return rc;
    return mr__thread_secret(&st->wconn, st->secret, sizeof st->secret,
                             &st->secret_len, err);
}

int mr__thread_decide_in_tx(struct mr__conn *c,
                            const struct mr_thread_msg *msg,
                            const unsigned char *secret, size_t len,
                            int64_t window_ms,
                            struct mr_thread_decision *out,
                            struct mr_error *err)
{
    struct lk_ctx k = {c, err};
    struct mr_thread_lookup lk = {
        .ctx = &k,
        .ticket_of_message_id = ticket_of_message_id,
        .message_exists = message_exists,
        .ticket_by_id = ticket_by_id,
        .ticket_by_number = ticket_by_number,
        .is_participant = is_participant,
        .subject_match = subject_match,
    };
    struct mr_thread_config cfg = {
        .secret = secret,
        .secret_len = len,
        .subject_window_ms = window_ms,
    };
    return mr_thread_decide(&cfg, &lk, msg, out, err);
}
