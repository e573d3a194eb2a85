/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scan.c - the antivirus scanner's queue: attachments whose scan is
 * 'pending' (set in the delivering transaction when clamd is configured),
 * their verdicts and their retries.
 *
 * A verdict is recorded with its outbox event (attachment.scanned) in one
 * write transaction, guarded by `scan = 'pending'`: two scanners racing
 * for one attachment write one verdict and one event. A retry only moves
 * scan_next_at; the attachment stays pending, so nothing is lost while
 * clamd is down.
 */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"

/* attachments_scan_pending (migration 14) serves this. */
static const char SQL_SCAN_DUE[] =
    "SELECT a.id, a.tenant, a.message_row, coalesce(m.ticket_id, 0),"
    " m.message_id, a.filename, a.sha256, a.scan_attempts"
    " FROM attachments a LEFT JOIN messages m ON m.id = a.message_row"
    " WHERE a.scan = 'pending' AND a.scan_next_at <= ?1"
    " ORDER BY a.scan_next_at, a.id LIMIT ?2";
static const char SQL_SCAN_SET[] =
    "UPDATE attachments SET scan = ?2, scan_signature = ?3, scan_error = ?4,"
    " scanned_at = ?5,"
    " blocked = CASE WHEN ?2 = 'infected' THEN 1 ELSE blocked END,"
    " blocked_reason = CASE WHEN ?2 = 'infected' THEN 'infected: ' || ?3"
    "  ELSE blocked_reason END"
    " WHERE id = ?1 AND scan = 'pending'"
    " RETURNING tenant, message_row, filename, sha256";
static const char SQL_SCAN_MSG[] =
    "SELECT ticket_id, message_id FROM messages WHERE id = ?1";
static const char SQL_SCAN_RETRY[] =
    "UPDATE attachments SET scan_attempts = ?2, scan_next_at = ?3,"
    " scan_error = ?4 WHERE id = ?1 AND scan = 'pending'";
/* attachments_sha256 (tenant, sha256) serves this. */
static const char SQL_SCAN_KNOWN[] =
    "SELECT scan, scan_signature FROM attachments WHERE tenant = ?1"
    " AND sha256 = ?2 AND scan IN ('clean', 'infected') AND scanned_at >= ?3"
    " ORDER BY scanned_at DESC LIMIT 1";
static const char SQL_SCAN_COUNT[] =
    "SELECT count(*) FROM attachments WHERE scan = 'pending'";

void mr_scan_item_list_free(struct mr_scan_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].tenant);
        free(items[i].message_id);
        free(items[i].filename);
        free(items[i].sha256);
    }
    free(items);
}

int mr_store_scan_due(struct mr_store *st, int64_t now, int max,
                      struct mr_scan_item **out, size_t *n,
                      struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    if (max < 1 || max > 1000)
        return mr_error_set(err, MR_EINVAL, "scan due: a bad limit");
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SCAN_DUE, &s, err);
    if (rc < 0) {
        mr__store_read_release(st, c);
        return rc;
    }
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int(s, 2, max);
    struct mr_scan_item *items = NULL;
    size_t cnt = 0;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW && cnt < (size_t)max) {
        if (items == NULL)
            items = mr_xcalloc((size_t)max, sizeof *items);
        struct mr_scan_item *x = &items[cnt++];
        x->id = sqlite3_column_int64(s, 0);
        x->tenant = mr__col_str(s, 1);
        x->message_row = sqlite3_column_int64(s, 2);
        x->ticket_id = sqlite3_column_int64(s, 3);
        x->message_id = mr__col_str(s, 4);
        x->filename = mr__col_str(s, 5);
        x->sha256 = mr__col_str(s, 6);
        x->attempts = sqlite3_column_int(s, 7);
    }
    if (r != SQLITE_DONE && r != SQLITE_ROW)
        rc = mr__sqlerr(c, r, "cannot read pending scans", err);
    mr__stmt_done(s);
    mr__store_read_release(st, c);
    if (rc < 0) {
        mr_scan_item_list_free(items, cnt);
        return rc;
    }
    *out = items;
    *n = cnt;
    return 0;
}

/* The event's payload: what a consumer needs to act on the verdict
 * without another read. */
static char *scanned_payload(int64_t id, int64_t ticket_id, int64_t row,
                             const char *message_id, const char *filename,
                             const char *sha256,
                             const struct mr_scan_verdict *v)
{
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "attachment_id");
    mr_json_int(&j, id);
    mr_json_key(&j, "ticket_id");
    if (ticket_id > 0)
        mr_json_int(&j, ticket_id);
    else
        mr_json_null(&j);
    mr_json_key(&j, "message_row");
    mr_json_int(&j, row);
    mr_json_key(&j, "message_id");
    mr_json_cstr(&j, message_id);
    mr_json_key(&j, "filename");
    mr_json_cstr(&j, filename);
    mr_json_key(&j, "sha256");
    mr_json_cstr(&j, sha256);
    mr_json_key(&j, "scan");
    mr_json_cstr(&j, v->scan);
    mr_json_key(&j, "signature");
    mr_json_cstr(&j, strcmp(v->scan, "infected") == 0 ? v->signature : NULL);
    mr_json_key(&j, "error");
    mr_json_cstr(&j, strcmp(v->scan, "error") == 0 ? v->error : NULL);
    mr_json_obj_end(&j);
    return mr_buf_detach(&b, NULL);
}

static int op_scan_result(struct mr__conn *c, void *arg, struct mr_error *err)
{
    const struct mr_scan_verdict *v = arg;
    bool infected = strcmp(v->scan, "infected") == 0;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SCAN_SET, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, v->id);
    mr__bind_str(s, 2, v->scan);
    mr__bind_str(s, 3, infected ? v->signature : NULL);
    mr__bind_str(s, 4, strcmp(v->scan, "error") == 0 ? v->error : NULL);
    sqlite3_bind_int64(s, 5, v->now);
    int r = sqlite3_step(s);
    if (r != SQLITE_ROW) {
        mr__stmt_done(s);
        if (r == SQLITE_DONE)
            return mr_error_set(err, MR_ENOTFOUND,
                                "attachment %lld is not pending a scan",
                                (long long)v->id);
        return mr__sqlerr(c, r, "cannot record a scan", err);
    }
    char *tenant = mr__col_str(s, 0);
    int64_t row = sqlite3_column_int64(s, 1);
    char *filename = mr__col_str(s, 2);
    char *sha256 = mr__col_str(s, 3);
    /* RETURNING: the update is complete only once stepped to the end. */
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        ;
    mr__stmt_done(s);
    int64_t ticket_id = 0;
    char *message_id = NULL;
    if (r != SQLITE_DONE) {
        rc = mr__sqlerr(c, r, "cannot record a scan", err);
        goto out;
    }
    if ((rc = mr__stmt(c, SQL_SCAN_MSG, &s, err)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, row);
    r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        ticket_id = sqlite3_column_int64(s, 0);
        message_id = mr__col_str(s, 1);
    } else if (r != SQLITE_DONE) {
        /* An event without its ticket would reach no ticket's consumer. */
        rc = mr__sqlerr(c, r, "cannot read the scanned attachment's message",
                        err);
    }
    mr__stmt_done(s);
    if (rc < 0)
        goto out;
    char *payload =
        scanned_payload(v->id, ticket_id, row, message_id, filename, sha256, v);
    rc = mr__event_insert(c, tenant, "attachment.scanned", ticket_id, row,
                          payload, v->now, err);
    free(payload);
out:
    free(tenant);
    free(filename);
    free(sha256);
    free(message_id);
    return rc;
}

int mr_store_scan_result(struct mr_store *st, const struct mr_scan_verdict *v,
                         struct mr_error *err)
{
    if (v == NULL || v->scan == NULL ||
        (strcmp(v->scan, "clean") != 0 && strcmp(v->scan, "infected") != 0 &&
         strcmp(v->scan, "error") != 0))
        return mr_error_set(err, MR_EINVAL,
                            "scan result: clean, infected or error");
    if (strcmp(v->scan, "infected") == 0 &&
        (v->signature == NULL || v->signature[0] == '\0'))
        return mr_error_set(err, MR_EINVAL,
                            "scan result: infected needs a signature");
    struct mr_scan_verdict copy = *v;
    return mr__store_write(st, op_scan_result, &copy, err);
}

struct retry_arg {
    int64_t id;
    int attempts;
    int64_t next_at;
    const char *error;
};

static int op_scan_retry(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct retry_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SCAN_RETRY, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    sqlite3_bind_int(s, 2, a->attempts);
    sqlite3_bind_int64(s, 3, a->next_at);
    mr__bind_str(s, 4, a->error);
    return mr__stmt_exec(c, s, "cannot record a scan attempt", err);
}

int mr_store_scan_retry(struct mr_store *st, int64_t id, int attempts,
                        int64_t next_at, const char *error,
                        struct mr_error *err)
{
    struct retry_arg a = {id, attempts, next_at, error};
    /* Losing a retry time in a power cut only makes the try come sooner. */
    return mr__store_write_lazy(st, op_scan_retry, &a, err);
}

int mr_store_scan_known(struct mr_store *st, const char *tenant,
                        const char *sha256, int64_t since, char **scan,
                        char **signature, struct mr_error *err)
{
    *scan = NULL;
    *signature = NULL;
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SCAN_KNOWN, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, tenant);
        mr__bind_str(s, 2, sha256);
        sqlite3_bind_int64(s, 3, since);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            *scan = mr__col_str(s, 0);
            *signature = mr__col_str(s, 1);
        } else if (r == SQLITE_DONE) {
            rc = mr_error_set(err, MR_ENOTFOUND, "no verdict for these bytes");
        } else {
            rc = mr__sqlerr(c, r, "cannot read scan verdicts", err);
        }
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    return rc;
}

int mr_store_scan_pending_count(struct mr_store *st, int64_t *n,
                                struct mr_error *err)
{
    *n = 0;
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SCAN_COUNT, &s, err);
    if (rc == 0) {
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW)
            *n = sqlite3_column_int64(s, 0);
        else
            rc = mr__sqlerr(c, r, "cannot count pending scans", err);
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    return rc;
}
