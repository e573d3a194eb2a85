/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notifications.c - the integrations' queue (docs/integrations.md).
 *
 * The delivering transaction writes one pending row per integration a
 * rule's notify action named, for the ticket and the message it stored:
 * the notification is as durable as the message, and a crash after the
 * commit loses nothing. UNIQUE (tenant, integration, ticket, message)
 * keeps a redelivered message from notifying twice. The sender
 * (src/outbound/notify.c) reads due rows with what the payloads need and
 * records each attempt; the link an integration made (an issue URL, a
 * Jira key) lands on the ticket in the same transaction as the "sent".
 *
 * The integration's kind is written at the first attempt, from the
 * configuration then in force: the table holds names, as the rules do, so
 * a name that no integration has is recorded (dead, notify_unknown), not
 * refused at delivery.
 */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

static const char SQL_INSERT[] =
    "INSERT OR IGNORE INTO notifications (tenant, integration, ticket_id,"
    " message_row, next_attempt_at, created_at, updated_at)"
    " SELECT ?1, value, ?2, ?3, ?4, ?4, ?4 FROM json_each(?5)"
    " WHERE type = 'text'";
/* substr counts characters, so the cut never splits one. */
static const char SQL_DUE[] =
    "SELECT n.id, n.tenant, n.integration, n.attempts, t.id, t.number,"
    " t.subject, t.status, t.priority, t.queue, t.requester, m.id,"
    " m.message_id, m.from_email, m.from_name,"
    " substr(coalesce(nullif(m.stripped_text, ''), m.body_text), 1, ?3),"
    " t.links"
    " FROM notifications n JOIN tickets t ON t.id = n.ticket_id"
    " JOIN messages m ON m.id = n.message_row"
    " WHERE n.state = 'pending' AND n.next_attempt_at <= ?1"
    " ORDER BY n.next_attempt_at, n.id LIMIT ?2";
static const char SQL_RESULT[] =
    "UPDATE notifications SET kind = coalesce(?2, kind), state = ?3,"
    " attempts = ?4, next_attempt_at = ?5, last_error = ?6,"
    " external_ref = coalesce(?7, external_ref), updated_at = ?8"
    " WHERE id = ?1";
/* Names are [A-Za-z0-9._-] (config.c): quoted, a '.' is no path step. */
static const char SQL_LINK[] =
    "UPDATE tickets SET links = json_set(links, '$.\"' || n.integration"
    " || '\"', json(?2)) FROM notifications n"
    " WHERE n.id = ?1 AND tickets.id = n.ticket_id";
#define STATE_COLS                                                             \
    "id, tenant, integration, kind, state, last_error, external_ref,"         \
    " attempts, ticket_id, message_row, next_attempt_at, created_at,"         \
    " updated_at"
/* With a state, along notifications_state (state, id): a page of the few
 * dead rows does not read the many sent ones. */
static const char SQL_LIST_STATE[] =
    "SELECT " STATE_COLS " FROM notifications WHERE state = ?2 AND id > ?3"
    " AND (?1 IS NULL OR tenant = ?1) ORDER BY id LIMIT ?4";
static const char SQL_LIST_ALL[] =
    "SELECT " STATE_COLS " FROM notifications WHERE id > ?3"
    " AND (?1 IS NULL OR tenant = ?1) AND ?2 IS NULL ORDER BY id LIMIT ?4";
static const char SQL_GET[] =
    "SELECT " STATE_COLS " FROM notifications WHERE id = ?1"
    " AND (?2 IS NULL OR tenant = ?2)";
/* attempts 0: the whole schedule again, as a redriven webhook delivery;
 * the kind is written again at the next attempt from the configuration
 * then in force (an integration fixed by a reload is used). */
static const char SQL_REDRIVE[] =
    "UPDATE notifications SET state = 'pending', attempts = 0,"
    " next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1";

int mr__notify_insert_in_tx(struct mr__conn *c, const char *tenant,
                            const struct mr_rules_outcome *ro,
                            int64_t ticket_id, int64_t message_row,
                            int64_t now, struct mr_error *err)
{
    if (ro == NULL || ro->notify_json == NULL ||
        strcmp(ro->notify_json, "[]") == 0)
        return 0;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_INSERT, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, tenant);
    sqlite3_bind_int64(s, 2, ticket_id);
    sqlite3_bind_int64(s, 3, message_row);
    sqlite3_bind_int64(s, 4, now);
    mr__bind_str(s, 5, ro->notify_json);
    return mr__stmt_exec(c, s, "cannot queue the notifications", err);
}

void mr_notification_list_free(struct mr_notification *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        struct mr_notification *x = &v[i];
        free(x->tenant);
        free(x->integration);
        free(x->subject);
        free(x->status);
        free(x->priority);
        free(x->queue);
        free(x->requester);
        free(x->message_id);
        free(x->from_email);
        free(x->from_name);
        free(x->text);
        free(x->links_json);
    }
    free(v);
}

int mr_store_notify_due(struct mr_store *st, int64_t now, int max,
                        struct mr_notification **out, size_t *n,
                        struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    if (max < 1 || max > MR_EVENTS_LIMIT_MAX)
        return mr_error_set(err, MR_EINVAL, "notify due: a bad limit");
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_DUE, &s, err);
    if (rc < 0) {
        mr__store_read_release(st, c);
        return rc;
    }
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int(s, 2, max);
    sqlite3_bind_int(s, 3, MR_NOTIFY_TEXT_MAX);
    struct mr_notification *v = NULL;
    size_t cnt = 0;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW && cnt < (size_t)max) {
        if (v == NULL)
            v = mr_xcalloc((size_t)max, sizeof *v);
        struct mr_notification *x = &v[cnt++];
        x->id = sqlite3_column_int64(s, 0);
        x->tenant = mr__col_str(s, 1);
        x->integration = mr__col_str(s, 2);
        x->attempts = sqlite3_column_int(s, 3);
        x->ticket_id = sqlite3_column_int64(s, 4);
        x->ticket_number = sqlite3_column_int64(s, 5);
        x->subject = mr__col_str(s, 6);
        x->status = mr__col_str(s, 7);
        x->priority = mr__col_str(s, 8);
        x->queue = mr__col_str(s, 9);
        x->requester = mr__col_str(s, 10);
        x->message_row = sqlite3_column_int64(s, 11);
        x->message_id = mr__col_str(s, 12);
        x->from_email = mr__col_str(s, 13);
        x->from_name = mr__col_str(s, 14);
        x->text = mr__col_str(s, 15);
        x->links_json = mr__col_str(s, 16);
    }
    if (r != SQLITE_DONE && r != SQLITE_ROW)
        rc = mr__sqlerr(c, r, "cannot read notifications", err);
    mr__stmt_done(s);
    mr__store_read_release(st, c);
    if (rc < 0) {
        mr_notification_list_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int op_result(struct mr__conn *c, void *arg, struct mr_error *err)
{
    const struct mr_notify_result *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_RESULT, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    mr__bind_str(s, 2, a->kind);
    mr__bind_str(s, 3, a->state);
    sqlite3_bind_int(s, 4, a->attempts);
    sqlite3_bind_int64(s, 5, a->next_at);
    mr__bind_str(s, 6, a->last_error);
    mr__bind_str(s, 7, a->external_ref);
    sqlite3_bind_int64(s, 8, mr__store_now_ms());
    if ((rc = mr__stmt_exec(c, s, "cannot record a notification", err)) < 0)
        return rc;
    if (a->link_json == NULL)
        return 0;
    if ((rc = mr__stmt(c, SQL_LINK, &s, err)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    mr__bind_str(s, 2, a->link_json);
    return mr__stmt_exec(c, s, "cannot record a link on the ticket", err);
}

int mr_store_notify_result(struct mr_store *st,
                           const struct mr_notify_result *r,
                           struct mr_error *err)
{
    if (r->state == NULL)
        return mr_error_set(err, MR_EINVAL, "notify result: a state");
    return mr__store_write(st, op_result, (void *)r, err);
}

void mr_notification_state_clear(struct mr_notification_state *x)
{
    free(x->tenant);
    free(x->integration);
    free(x->kind);
    free(x->state);
    free(x->last_error);
    free(x->external_ref);
    memset(x, 0, sizeof *x);
}

void mr_notification_states_free(struct mr_notification_state *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        mr_notification_state_clear(&v[i]);
    free(v);
}

static void read_state(sqlite3_stmt *s, struct mr_notification_state *x)
{
    x->id = sqlite3_column_int64(s, 0);
    x->tenant = mr__col_str(s, 1);
    x->integration = mr__col_str(s, 2);
    x->kind = mr__col_str(s, 3);
    x->state = mr__col_str(s, 4);
    x->last_error = mr__col_str(s, 5);
    x->external_ref = mr__col_str(s, 6);
    x->attempts = sqlite3_column_int(s, 7);
    x->ticket_id = sqlite3_column_int64(s, 8);
    x->message_row = sqlite3_column_int64(s, 9);
    x->next_attempt_at = sqlite3_column_int64(s, 10);
    x->created_at = sqlite3_column_int64(s, 11);
    x->updated_at = sqlite3_column_int64(s, 12);
}

static bool state_valid(const char *s)
{
    return s && (strcmp(s, "pending") == 0 || strcmp(s, "sent") == 0 ||
                 strcmp(s, "dead") == 0);
}

int mr_store_notify_list(struct mr_store *st, const struct mr_notify_filter *f,
                         struct mr_notification_state **out, size_t *n,
                         struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    if (f->limit < 1 || f->limit > MR_EVENTS_LIMIT_MAX ||
        (f->state && !state_valid(f->state)))
        return mr_error_set(err, MR_EINVAL,
                            "notifications: a limit of 1 to %d, a state of "
                            "pending, sent or dead",
                            MR_EVENTS_LIMIT_MAX);
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, f->state ? SQL_LIST_STATE : SQL_LIST_ALL, &s, err);
    if (rc < 0) {
        mr__store_read_release(st, c);
        return rc;
    }
    mr__bind_str(s, 1, f->tenant);
    mr__bind_str(s, 2, f->state);
    sqlite3_bind_int64(s, 3, f->after);
    sqlite3_bind_int(s, 4, f->limit);
    struct mr_notification_state *v = NULL;
    size_t cnt = 0;
    int r = SQLITE_DONE;
    while (cnt < (size_t)f->limit && (r = sqlite3_step(s)) == SQLITE_ROW) {
        if (v == NULL)
            v = mr_xcalloc((size_t)f->limit, sizeof *v);
        read_state(s, &v[cnt++]);
    }
    if (r != SQLITE_DONE && r != SQLITE_ROW)
        rc = mr__sqlerr(c, r, "cannot read notifications", err);
    mr__stmt_done(s);
    mr__store_read_release(st, c);
    if (rc < 0) {
        mr_notification_states_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int get_state(struct mr__conn *c, const char *tenant, int64_t id,
                     struct mr_notification_state *out, struct mr_error *err)
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
        read_state(s, out);
    else if (r == SQLITE_DONE)
        rc = mr_error_set(err, MR_ENOTFOUND, "no notification %lld",
                          (long long)id);
    else
        rc = mr__sqlerr(c, r, "cannot read a notification", err);
    mr__stmt_done(s);
    return rc;
}

int mr_store_notify_get(struct mr_store *st, const char *tenant, int64_t id,
                        struct mr_notification_state *out,
                        struct mr_error *err)
{
    struct mr__conn *c = mr__store_read_acquire(st);
    int rc = get_state(c, tenant, id, out, err);
    mr__store_read_release(st, c);
    return rc;
}

struct redrive_arg {
    const char *tenant;
    int64_t id;
    int64_t now;
    struct mr_notification_state *out; /* may be NULL */
};

static int op_redrive(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct redrive_arg *a = arg;
    struct mr_notification_state x;
    int rc = get_state(c, a->tenant, a->id, &x, err);
    if (rc < 0)
        return rc;
    if (x.state == NULL || strcmp(x.state, "dead") != 0) {
        /* A pending row may be in the sender's hands; a sent one would
         * post the chat message, or open the issue, twice. */
        rc = mr_error_set(err, MR_ECONFLICT,
                          "notification %lld is %s: only a dead one can be "
                          "redriven",
                          (long long)a->id, x.state ? x.state : "unknown");
        mr_notification_state_clear(&x);
        return rc;
    }
    mr_notification_state_clear(&x);
    sqlite3_stmt *s;
    if ((rc = mr__stmt(c, SQL_REDRIVE, &s, err)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    sqlite3_bind_int64(s, 2, a->now);
    if ((rc = mr__stmt_exec(c, s, "cannot redrive a notification", err)) < 0)
        return rc;
    /* As this transaction left it: the sender may try it at once. */
    return a->out ? get_state(c, NULL, a->id, a->out, err) : 0;
}

int mr_store_notify_redrive(struct mr_store *st, const char *tenant,
                            int64_t id, struct mr_notification_state *out,
                            struct mr_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    struct redrive_arg a = {tenant, id, mr__store_now_ms(), out};
    int rc = mr__store_write(st, op_redrive, &a, err);
    if (rc < 0 && out)
        mr_notification_state_clear(out);
    return rc;
}
