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
 *
 * A rescan (an operator's, one attachment or many) puts a row back to
 * pending with the verdict it had kept in scan_previous and the time of
 * the request in scan_rescan_at. blocked is left alone, so while it waits
 * a clean file is still served and an infected one still blocked; the
 * verdict decides again. Reasons are told apart by prefix: the policy's
 * (src/content/attach_policy.c: "extension: ", "bidi: "...) are never
 * "infected: ", which is the scanner's.
 */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"

/* attachments_scan_pending (migration 14) serves this. */
static const char SQL_SCAN_DUE[] =
    "SELECT a.id, a.tenant, a.message_row, coalesce(m.ticket_id, 0),"
    " m.message_id, a.filename, a.sha256, a.scan_attempts, a.safe_filename,"
    " a.content_type, a.detected_type, coalesce(a.scan_rescan_at, 0),"
    " a.scan_previous"
    " FROM attachments a LEFT JOIN messages m ON m.id = a.message_row"
    " WHERE a.scan = 'pending' AND a.scan_next_at <= ?1"
    " ORDER BY a.scan_next_at, a.id LIMIT ?2";
/* What the verdict is for: the rescan it answers, if any. */
static const char SQL_SCAN_PRE[] =
    "SELECT coalesce(scan_rescan_at, 0), scan_previous FROM attachments"
    " WHERE id = ?1 AND scan = 'pending'";
/* SET reads the row as it was: a clean verdict lifts a block only when it
 * was for an infection (?7: the policy's reason, or NULL). */
#define INFECTION_BLOCK                                                        \
    "(blocked = 1 AND substr(blocked_reason, 1, length('"                      \
    MR_SCAN_INFECTED_PREFIX "')) = '" MR_SCAN_INFECTED_PREFIX "')"
static const char SQL_SCAN_SET[] =
    "UPDATE attachments SET scan = ?2, scan_signature = ?3, scan_error = ?4,"
    " scanned_at = ?5, scan_previous = NULL, scan_rescan_at = NULL,"
    " blocked = CASE WHEN ?2 = 'infected' THEN 1"
    "  WHEN ?2 = 'clean' AND " INFECTION_BLOCK " THEN ?7 IS NOT NULL"
    "  ELSE blocked END,"
    " blocked_reason = CASE WHEN ?2 = 'infected' THEN '"
    MR_SCAN_INFECTED_PREFIX "' || ?3"
    "  WHEN ?2 = 'clean' AND " INFECTION_BLOCK " THEN ?7"
    "  ELSE blocked_reason END"
    " WHERE id = ?1 AND scan = 'pending' AND coalesce(scan_rescan_at, 0) = ?6"
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
static const char SQL_RESCAN_GET[] =
    "SELECT sha256 IS NOT NULL AND truncated = 0 FROM attachments"
    " WHERE id = ?1 AND tenant = ?2";
/* ?1 now. A pending row keeps the verdict it kept already. */
#define RESCAN_SET                                                             \
    "UPDATE attachments SET scan_previous = CASE WHEN scan = 'pending'"        \
    "  THEN scan_previous ELSE scan END,"                                      \
    " scan = 'pending', scan_attempts = 0, scan_next_at = ?1,"                 \
    " scan_rescan_at = ?1, scan_error = NULL"
static const char SQL_RESCAN_ONE[] = RESCAN_SET " WHERE id = ?2";
/* A bulk rescan's states, unqualified: the pick joins messages, which has
 * no scan column. Spelled out (not bound) so that the partial index of
 * migration 17 serves 'error'. */
#define ST_ERROR "scan = 'error'"
#define ST_CLEAN "scan = 'clean'"
#define ST_INFECTED "scan = 'infected'"
#define ST_ALL "(scan IS NULL OR scan IN ('clean', 'infected', 'error'))"
/* ?1 after this id, ?2 tenant or NULL, ?3 received at or after, ?4 limit. */
#define RESCAN_PICK(state)                                                     \
    "SELECT a.id FROM attachments a JOIN messages m ON m.id = a.message_row"  \
    " WHERE " state " AND a.id > ?1 AND (?2 IS NULL OR a.tenant = ?2)"         \
    " AND a.sha256 IS NOT NULL AND a.truncated = 0 AND m.received_at >= ?3"    \
    " ORDER BY a.id LIMIT ?4"
static const char SQL_PICK_ERROR[] = RESCAN_PICK(ST_ERROR);
static const char SQL_PICK_CLEAN[] = RESCAN_PICK(ST_CLEAN);
static const char SQL_PICK_INFECTED[] = RESCAN_PICK(ST_INFECTED);
static const char SQL_PICK_ALL[] = RESCAN_PICK(ST_ALL);
/* ?2 the picked ids as a JSON array. A picked row can leave its state only
 * by being queued (a verdict needs 'pending'), so skipping pending ones is
 * the whole re-check; and one text serves every state, which keeps the
 * writer's statement cache small. */
static const char SQL_RESCAN_MANY[] =
    RESCAN_SET " WHERE id IN (SELECT value FROM json_each(?2))"
               " AND scan IS NOT 'pending'";
static const char SQL_SCAN_COUNT[] =
    "SELECT count(*) FROM attachments WHERE scan = 'pending'";

void mr_scan_item_list_free(struct mr_scan_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].tenant);
        free(items[i].message_id);
        free(items[i].filename);
        free(items[i].sha256);
        free(items[i].safe_filename);
        free(items[i].content_type);
        free(items[i].detected_type);
        free(items[i].previous);
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
        x->safe_filename = mr__col_str(s, 8);
        x->content_type = mr__col_str(s, 9);
        x->detected_type = mr__col_str(s, 10);
        x->rescan_at = sqlite3_column_int64(s, 11);
        x->previous = mr__col_str(s, 12);
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
                             const char *sha256, bool rescan,
                             const char *previous,
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
    mr_json_key(&j, "rescan");
    mr_json_bool(&j, rescan);
    mr_json_key(&j, "previous");
    mr_json_cstr(&j, previous);
    mr_json_obj_end(&j);
    return mr_buf_detach(&b, NULL);
}

static int op_scan_result(struct mr__conn *c, void *arg, struct mr_error *err)
{
    const struct mr_scan_verdict *v = arg;
    bool infected = strcmp(v->scan, "infected") == 0;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SCAN_PRE, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, v->id);
    int r = sqlite3_step(s);
    int64_t rescan_at = 0;
    char *previous = NULL;
    if (r == SQLITE_ROW) {
        rescan_at = sqlite3_column_int64(s, 0);
        previous = mr__col_str(s, 1);
    }
    mr__stmt_done(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return mr__sqlerr(c, r, "cannot record a scan", err);
    if ((rc = mr__stmt(c, SQL_SCAN_SET, &s, err)) < 0) {
        free(previous);
        return rc;
    }
    sqlite3_bind_int64(s, 1, v->id);
    mr__bind_str(s, 2, v->scan);
    mr__bind_str(s, 3, infected ? v->signature : NULL);
    mr__bind_str(s, 4, strcmp(v->scan, "error") == 0 ? v->error : NULL);
    sqlite3_bind_int64(s, 5, v->now);
    sqlite3_bind_int64(s, 6, v->rescan_at);
    mr__bind_str(s, 7, v->policy_reason);
    r = sqlite3_step(s);
    if (r != SQLITE_ROW) {
        mr__stmt_done(s);
        free(previous);
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
    char *payload = scanned_payload(v->id, ticket_id, row, message_id,
                                    filename, sha256, rescan_at != 0,
                                    previous, v);
    rc = mr__event_insert(c, tenant, "attachment.scanned", ticket_id, row,
                          payload, v->now, err);
    free(payload);
out:
    free(tenant);
    free(filename);
    free(sha256);
    free(message_id);
    free(previous);
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

struct rescan_arg {
    const char *tenant;
    int64_t id;
    int64_t now;
    struct mr_attachment_view *out; /* may be NULL */
};

static int op_rescan(struct mr__conn *c, void *arg, struct mr_error *err)
{
    const struct rescan_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_RESCAN_GET, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    mr__bind_str(s, 2, a->tenant);
    int r = sqlite3_step(s);
    bool bytes = r == SQLITE_ROW && sqlite3_column_int(s, 0) != 0;
    mr__stmt_done(s);
    if (r == SQLITE_DONE)
        return mr_error_set(err, MR_ENOTFOUND, "no such attachment");
    if (r != SQLITE_ROW)
        return mr__sqlerr(c, r, "cannot read the attachment", err);
    if (!bytes)
        return mr_error_set(err, MR_ECONFLICT,
                            "attachment %lld has no stored bytes (over the "
                            "size limit, or a provider's): nothing to scan",
                            (long long)a->id);
    if ((rc = mr__stmt(c, SQL_RESCAN_ONE, &s, err)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->now);
    sqlite3_bind_int64(s, 2, a->id);
    if ((rc = mr__stmt_exec(c, s, "cannot queue a rescan", err)) < 0)
        return rc;
    /* As this transaction left it: the scanner, woken by the commit, may
     * record a verdict before the caller could look. */
    return a->out ? mr__attachment_read(c, a->tenant, a->id, a->out, err) : 0;
}

int mr_store_scan_rescan(struct mr_store *st, const char *tenant, int64_t id,
                         int64_t now, struct mr_attachment_view *out,
                         struct mr_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "rescan: no tenant");
    struct rescan_arg a = {tenant, id, now, out};
    int rc = mr__store_write(st, op_rescan, &a, err);
    if (rc < 0 && out)
        mr_attachment_view_clear(out);
    return rc;
}

struct rescan_many_arg {
    const char *ids; /* a JSON array */
    int64_t now;
    int64_t count;
};

static int op_rescan_many(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct rescan_many_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_RESCAN_MANY, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->now);
    mr__bind_str(s, 2, a->ids);
    rc = mr__stmt_exec(c, s, "cannot queue rescans", err);
    if (rc == 0)
        a->count = sqlite3_changes64(c->db);
    return rc;
}

/* Up to max ids after `after` that match f, as a JSON array in ids;
 * *n: how many, *last: the greatest. */
static int rescan_pick(struct mr_store *st, const char *sql,
                       const struct mr_scan_rescan_filter *f, int64_t after,
                       int max, struct mr_buf *ids, int *n, int64_t *last,
                       struct mr_error *err)
{
    *n = 0;
    mr_buf_reset(ids);
    mr_buf_append(ids, "[", 1);
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, sql, &s, err);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, after);
        mr__bind_str(s, 2, f->tenant);
        sqlite3_bind_int64(s, 3, f->received_after);
        sqlite3_bind_int(s, 4, max);
        int r;
        while ((r = sqlite3_step(s)) == SQLITE_ROW && *n < max) {
            *last = sqlite3_column_int64(s, 0);
            mr_buf_printf(ids, "%s%lld", *n ? "," : "", (long long)*last);
            (*n)++;
        }
        if (r != SQLITE_DONE && r != SQLITE_ROW)
            rc = mr__sqlerr(c, r, "cannot list attachments to rescan", err);
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    mr_buf_append(ids, "]", 1);
    return rc;
}

int mr_store_scan_rescan_many(struct mr_store *st,
                              const struct mr_scan_rescan_filter *f,
                              int64_t now, int64_t *count,
                              struct mr_error *err)
{
    *count = 0;
    static const char *const picks[] = {SQL_PICK_ERROR, SQL_PICK_CLEAN,
                                        SQL_PICK_INFECTED, SQL_PICK_ALL};
    if (f == NULL || (unsigned)f->state > MR_SCAN_RESCAN_ALL ||
        f->limit < 0 || f->batch < 0 || f->batch > 10000)
        return mr_error_set(err, MR_EINVAL, "rescan: a bad filter");
    int batch = f->batch ? f->batch : MR_SCAN_RESCAN_BATCH;
    struct mr_buf ids;
    mr_buf_init(&ids, 0);
    int64_t after = 0;
    int rc = 0;
    /* Each round moves `after` past what it picked, so the walk ends. */
    for (;;) {
        int max = batch;
        if (f->limit > 0 && f->limit - *count < max)
            max = (int)(f->limit - *count);
        if (max <= 0)
            break;
        int n = 0;
        rc = rescan_pick(st, picks[f->state], f, after, max, &ids, &n, &after,
                         err);
        if (rc < 0 || n == 0)
            break;
        if (f->dry_run) {
            *count += n;
        } else {
            struct rescan_many_arg a = {ids.p, now, 0};
            if ((rc = mr__store_write(st, op_rescan_many, &a, err)) < 0)
                break;
            *count += a.count;
        }
        if (n < max)
            break;
    }
    mr_buf_release(&ids);
    return rc;
}
