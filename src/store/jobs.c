/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobs.c - the intake queue: enqueue, claim with a lease, fail/retry/dead,
 * release, finish, and the dead-letter views.
 *
 * A job is READY (claimable once not_before has passed), LEASED to one
 * worker until lease_until, DONE or DEAD. A worker that dies leaves its job
 * LEASED; once the lease has run out the job is claimable again, so a crash
 * costs a delay, never the message. Every change a worker makes is
 * conditional on still holding the lease (state = 'leased' AND worker = ?),
 * so a worker that was too slow cannot undo the work of the one that took
 * the job over.
 *
 * Claims are writes and go through the writer; an empty queue is detected on
 * a read connection first, so idle workers polling do not cost the writer a
 * transaction each.
 */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define JOB_COLS                                                               \
    "id, state, tenant, channel, raw_sha256, raw_size, payload, "              \
    "received_at, attempts, not_before, lease_until, worker, last_error, "     \
    "created_at, updated_at"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

static const char SQL_FIND_DEDUPE[] =
    "SELECT id FROM jobs WHERE tenant = ?1 AND dedupe_key = ?2";
static const char SQL_INSERT_RAW[] =
    "INSERT OR IGNORE INTO raw_messages (sha256, data) VALUES (?1, ?2)";
static const char SQL_GET_RAW[] =
    "SELECT data FROM raw_messages WHERE sha256 = ?1";
static const char SQL_INSERT_JOB[] =
    "INSERT INTO jobs (tenant, channel, raw_sha256, raw_size, payload,"
    " received_at, dedupe_key, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)";
/* Two probes, each walking jobs_state in id order from its state's first
 * row; the older of the two answers is the claim. */
static const char SQL_NEXT_READY[] =
    "SELECT id FROM jobs WHERE state = 'ready' AND not_before <= ?1"
    " ORDER BY id LIMIT 1";
static const char SQL_NEXT_EXPIRED[] =
    "SELECT id FROM jobs WHERE state = 'leased' AND lease_until < ?1"
    " ORDER BY id LIMIT 1";
static const char SQL_ATTEMPTS[] = "SELECT attempts FROM jobs WHERE id = ?1";
static const char SQL_CLAIM[] =
    "UPDATE jobs SET state = 'leased', worker = ?2, lease_until = ?3,"
    " attempts = attempts + 1, updated_at = ?4 WHERE id = ?1"
    " RETURNING " JOB_COLS;
static const char SQL_FAIL[] =
    "UPDATE jobs SET state = CASE WHEN ?4 < 0 THEN 'dead' ELSE 'ready' END,"
    " not_before = max(?4, 0), last_error = ?3, worker = NULL,"
    " lease_until = 0, updated_at = ?5"
    " WHERE id = ?1 AND state = 'leased' AND worker = ?2";
static const char SQL_RELEASE_JOB[] =
    "UPDATE jobs SET state = 'ready', attempts = max(attempts - 1, 0),"
    " worker = NULL, lease_until = 0, updated_at = ?3"
    " WHERE id = ?1 AND state = 'leased' AND worker = ?2";
static const char SQL_FINISH[] =
    "UPDATE jobs SET state = 'done', worker = NULL, lease_until = 0,"
    " updated_at = ?3 WHERE id = ?1 AND state = 'leased' AND worker = ?2";
static const char SQL_GET_JOB[] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1";
static const char SQL_LIST_JOBS[] =
    "SELECT " JOB_COLS " FROM jobs WHERE state = ?1 AND id > ?2"
    " ORDER BY id LIMIT ?3";
static const char SQL_RETRY[] =
    "UPDATE jobs SET state = 'ready', attempts = 0, not_before = ?2,"
    " updated_at = ?2 WHERE id = ?1 AND state = 'dead'";
static const char SQL_RETRY_ALL[] =
    "UPDATE jobs SET state = 'ready', attempts = 0, not_before = ?1,"
    " updated_at = ?1 WHERE state = 'dead'";

static const char *const state_names[] = {"ready", "leased", "done", "dead"};

static const char *state_name(enum mr_job_state s)
{
    return (unsigned)s < 4 ? state_names[s] : NULL;
}

static enum mr_job_state state_from(const unsigned char *p)
{
    for (int i = 0; p && i < 4; i++)
        if (strcmp((const char *)p, state_names[i]) == 0)
            return (enum mr_job_state)i;
    /* The CHECK constraint keeps anything else out of the table. */
    return MR_JOB_DEAD;
}

void mr_job_clear(struct mr_job *job)
{
    if (job == NULL)
        return;
    free(job->tenant);
    free(job->channel);
    free(job->raw_sha256);
    free(job->payload);
    free(job->worker);
    free(job->last_error);
    memset(job, 0, sizeof *job);
}

void mr_job_list_free(struct mr_job *jobs, size_t n)
{
    for (size_t i = 0; jobs && i < n; i++)
        mr_job_clear(&jobs[i]);
    free(jobs);
}

/* Fills out from a row selected with JOB_COLS. */
static void read_job(sqlite3_stmt *s, struct mr_job *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(s, 0);
    out->state = state_from(sqlite3_column_text(s, 1));
    out->tenant = mr__col_str(s, 2);
    out->channel = mr__col_str(s, 3);
    out->raw_sha256 = mr__col_str(s, 4);
    out->raw_size = sqlite3_column_int64(s, 5);
    out->payload = mr__col_str(s, 6);
    out->received_at = sqlite3_column_int64(s, 7);
    out->attempts = sqlite3_column_int(s, 8);
    out->not_before = sqlite3_column_int64(s, 9);
    out->lease_until = sqlite3_column_int64(s, 10);
    out->worker = mr__col_str(s, 11);
    out->last_error = mr__col_str(s, 12);
    out->created_at = sqlite3_column_int64(s, 13);
    out->updated_at = sqlite3_column_int64(s, 14);
}

/* ---- enqueue ------------------------------------------------------------- */

struct enqueue_arg {
    const struct mr_job_spec *specs;
    size_t n;
    int64_t *ids;
};

/* Looks the key up; *id is 0 when it is free. */
static int find_dedupe(struct mr__conn *c, const char *tenant, const char *key,
                       int64_t *id, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_FIND_DEDUPE, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, tenant);
    mr__bind_str(s, 2, key);
    *id = 0;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    int res = rc == SQLITE_ROW || rc == SQLITE_DONE
                  ? 0
                  : mr__sqlerr(c, rc, "cannot look up a dedupe key", err);
    mr__stmt_done(s);
    return res;
}

static int op_enqueue(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct enqueue_arg *a = arg;
    int64_t now = mr__store_now_ms();
    /* Every key first, so that the caller learns each existing job and
     * nothing is inserted when one of them exists. */
    bool conflict = false;
    for (size_t i = 0; i < a->n; i++) {
        const struct mr_job_spec *j = &a->specs[i];
        a->ids[i] = 0;
        if (j->dedupe_key == NULL)
            continue;
        int rc = find_dedupe(c, j->tenant, j->dedupe_key, &a->ids[i], err);
        if (rc < 0)
            return rc;
        if (a->ids[i] != 0 && !conflict) {
            conflict = true;
            mr_error_set(err, MR_ECONFLICT,
                         "job with dedupe key '%.100s' exists already (job "
                         "%lld)",
                         j->dedupe_key, (long long)a->ids[i]);
        }
    }
    if (conflict)
        return MR_ECONFLICT;
    for (size_t i = 0; i < a->n; i++) {
        const struct mr_job_spec *j = &a->specs[i];
        sqlite3_stmt *s;
        int rc;
        /* One message for several tenants is one row: the same key. */
        if (j->raw && (i == 0 || a->specs[i - 1].raw != j->raw)) {
            rc = mr__stmt(c, SQL_INSERT_RAW, &s, err);
            if (rc < 0)
                return rc;
            mr__bind_str(s, 1, j->raw_sha256);
            sqlite3_bind_blob64(s, 2, j->raw, (sqlite3_uint64)j->raw_size,
                                SQLITE_STATIC);
            rc = mr__stmt_exec(c, s, "cannot store the raw message", err);
            if (rc < 0)
                return rc;
        }
        rc = mr__stmt(c, SQL_INSERT_JOB, &s, err);
        if (rc < 0)
            return rc;
        mr__bind_str(s, 1, j->tenant);
        mr__bind_str(s, 2, j->channel);
        mr__bind_str(s, 3, j->raw_sha256);
        sqlite3_bind_int64(s, 4, j->raw_size);
        mr__bind_str(s, 5, j->payload ? j->payload : "{}");
        sqlite3_bind_int64(s, 6, j->received_at);
        mr__bind_str(s, 7, j->dedupe_key);
        sqlite3_bind_int64(s, 8, now);
        rc = mr__stmt_exec(c, s, "cannot enqueue a job", err);
        if (rc < 0) {
            /* The same key twice in one call: the first of them would be
             * "the existing job", but it is rolled back with the rest. */
            for (size_t k = 0; k < a->n; k++)
                a->ids[k] = 0;
            return rc;
        }
        a->ids[i] = sqlite3_last_insert_rowid(c->db);
    }
    return 0;
}

int mr_store_get_raw(struct mr_store *st, const char *sha256, char **data,
                     size_t *len, struct mr_error *err)
{
    *data = NULL;
    *len = 0;
    if (sha256 == NULL)
        return mr_error_set(err, MR_EINVAL, "no raw message key");
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_GET_RAW, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, sha256);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const void *p = sqlite3_column_blob(s, 0);
            size_t n = (size_t)sqlite3_column_bytes(s, 0);
            *data = mr_xmalloc(n + 1);
            if (n)
                memcpy(*data, p, n);
            (*data)[n] = '\0';
            *len = n;
            rc = 0;
        } else if (rc == SQLITE_DONE) {
            rc = mr_error_set(err, MR_ENOTFOUND,
                              "raw message %s is not in the database",
                              sha256);
        } else {
            rc = mr__sqlerr(c, rc, "cannot read a raw message", err);
        }
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    return rc;
}

int mr_store_enqueue(struct mr_store *st, const struct mr_job_spec *specs,
                     size_t n, int64_t *job_ids, struct mr_error *err)
{
    if (n == 0 || specs == NULL)
        return mr_error_set(err, MR_EINVAL, "no job to enqueue");
    for (size_t i = 0; i < n; i++) {
        const struct mr_job_spec *j = &specs[i];
        if (j->tenant == NULL || *j->tenant == '\0' || j->channel == NULL ||
            *j->channel == '\0')
            return mr_error_set(err, MR_EINVAL,
                                "job %zu has no tenant or channel", i);
        if (j->raw_size < 0)
            return mr_error_set(err, MR_EINVAL, "job %zu has a negative size",
                                i);
        if (j->raw && j->raw_sha256 == NULL)
            return mr_error_set(err, MR_EINVAL, "job %zu has bytes but no key",
                                i);
    }
    int64_t *ids = mr_xcalloc(n, sizeof *ids);
    struct enqueue_arg a = {specs, n, ids};
    int rc = mr__store_write(st, op_enqueue, &a, err);
    if (job_ids) {
        for (size_t i = 0; i < n; i++)
            job_ids[i] = rc == 0 || rc == MR_ECONFLICT ? ids[i] : 0;
    }
    free(ids);
    return rc;
}

/* ---- claim --------------------------------------------------------------- */

struct claim_arg {
    const char *worker;
    int64_t now;
    int64_t lease_ms;
    struct mr_job *out;
};

static int first_id(struct mr__conn *c, const char *sql, int64_t now,
                    int64_t *id, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, sql, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, now);
    *id = 0;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    int res = rc == SQLITE_ROW || rc == SQLITE_DONE
                  ? 0
                  : mr__sqlerr(c, rc, "cannot look for a job", err);
    mr__stmt_done(s);
    return res;
}

/* The id of the oldest claimable job, 0 when there is none. */
static int next_claimable(struct mr__conn *c, int64_t now, int64_t *id,
                          struct mr_error *err)
{
    int64_t ready = 0, expired = 0;
    int rc = first_id(c, SQL_NEXT_READY, now, &ready, err);
    if (rc == 0)
        rc = first_id(c, SQL_NEXT_EXPIRED, now, &expired, err);
    if (rc < 0)
        return rc;
    if (ready != 0 && (expired == 0 || ready < expired))
        *id = ready;
    else
        *id = expired;
    return 0;
}

static int claim_id(struct mr__conn *c, struct claim_arg *a, int64_t id,
                    struct mr_error *err);

static int attempts_of(struct mr__conn *c, int64_t id, int *attempts,
                       struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_ATTEMPTS, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    *attempts = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    int res = rc == SQLITE_ROW || rc == SQLITE_DONE
                  ? 0
                  : mr__sqlerr(c, rc, "cannot read a job", err);
    mr__stmt_done(s);
    return res;
}

/* Claims the next claimable job. alone: only if it has never been tried
 * (a batch must not take a job that failed or killed its worker before:
 * see op_claim_many); MR_ENOTFOUND when it has. */
static int claim_next(struct mr__conn *c, struct claim_arg *a, bool fresh_only,
                      bool *retried, struct mr_error *err)
{
    int64_t id = 0;
    int rc = next_claimable(c, a->now, &id, err);
    if (rc < 0)
        return rc;
    if (id == 0)
        return mr_error_set(err, MR_ENOTFOUND, "no job to claim");
    int attempts = 0;
    rc = attempts_of(c, id, &attempts, err);
    if (rc < 0)
        return rc;
    *retried = attempts > 0;
    if (fresh_only && *retried)
        return mr_error_set(err, MR_ENOTFOUND, "next job goes alone");
    return claim_id(c, a, id, err);
}

static int claim_id(struct mr__conn *c, struct claim_arg *a, int64_t id,
                    struct mr_error *err)
{
    int rc;
    sqlite3_stmt *s;
    rc = mr__stmt(c, SQL_CLAIM, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    mr__bind_str(s, 2, a->worker);
    sqlite3_bind_int64(s, 3, a->now + a->lease_ms);
    sqlite3_bind_int64(s, 4, mr__store_now_ms());
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        read_job(s, a->out);
        /* RETURNING rows come after the change; step to the end so that the
         * statement is complete before the savepoint is released. */
        rc = sqlite3_step(s);
    }
    int res = rc == SQLITE_DONE ? 0 : mr__sqlerr(c, rc, "cannot claim", err);
    mr__stmt_done(s);
    return res;
}

struct claim_many_arg {
    const char *worker;
    int64_t now;
    int64_t lease_ms;
    struct mr_job *out;
    size_t max;
    size_t n;
};

/* Up to max claims in one transaction: one writer round trip and one
 * commit for a worker's whole batch. A job tried before is claimed alone:
 * if it is the message that crashes or hangs workers, it must not take a
 * batch of good jobs down with it, attempt after attempt. */
static int op_claim_many(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct claim_many_arg *a = arg;
    a->n = 0;
    while (a->n < a->max) {
        struct claim_arg one = {a->worker, a->now, a->lease_ms,
                                &a->out[a->n]};
        bool retried = false;
        int rc = claim_next(c, &one, a->n > 0, &retried, err);
        if (rc == MR_ENOTFOUND)
            break;
        if (rc < 0)
            return rc;
        a->n++;
        if (retried)
            break;
    }
    return a->n ? 0 : mr_error_set(err, MR_ENOTFOUND, "no job to claim");
}

int mr_store_claim_jobs(struct mr_store *st, const char *worker, int64_t now,
                        int64_t lease_ms, size_t max, struct mr_job *out,
                        size_t *n, struct mr_error *err)
{
    *n = 0;
    memset(out, 0, max * sizeof *out);
    if (worker == NULL || *worker == '\0' || lease_ms <= 0 || max == 0)
        return mr_error_set(err, MR_EINVAL,
                            "a claim needs a worker name, a lease and room");
    /* An idle queue is seen on a read connection, without the writer. */
    struct mr__conn *rconn = mr__store_read_acquire(st);
    int64_t id = 0;
    int rc = next_claimable(rconn, now, &id, err);
    mr__store_read_release(st, rconn);
    if (rc < 0)
        return rc;
    if (id == 0)
        return mr_error_set(err, MR_ENOTFOUND, "no job to claim");
    struct claim_many_arg a = {worker, now, lease_ms, out, max, 0};
    rc = mr__store_write_lazy(st, op_claim_many, &a, err);
    if (rc < 0) {
        for (size_t i = 0; i < max; i++)
            mr_job_clear(&out[i]);
        return rc;
    }
    *n = a.n;
    return 0;
}

int mr_store_claim_job(struct mr_store *st, const char *worker, int64_t now,
                       int64_t lease_ms, struct mr_job *out,
                       struct mr_error *err)
{
    size_t n = 0;
    return mr_store_claim_jobs(st, worker, now, lease_ms, 1, out, &n, err);
}

/* ---- a worker's verdicts ------------------------------------------------- */

struct verdict_arg {
    const char *sql;
    int64_t id;
    const char *worker;
    const char *error;
    int64_t retry_at;
};

static int op_verdict(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct verdict_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, a->sql, &s, err);
    if (rc < 0)
        return rc;
    int64_t now = mr__store_now_ms();
    sqlite3_bind_int64(s, 1, a->id);
    mr__bind_str(s, 2, a->worker);
    if (a->sql == SQL_FAIL) {
        mr__bind_str(s, 3, a->error);
        sqlite3_bind_int64(s, 4, a->retry_at);
        sqlite3_bind_int64(s, 5, now);
    } else {
        sqlite3_bind_int64(s, 3, now);
    }
    rc = mr__stmt_exec(c, s, "cannot update the job", err);
    if (rc < 0)
        return rc;
    if (sqlite3_changes(c->db) == 0)
        return mr_error_set(err, MR_ENOTFOUND,
                            "job %lld is not leased by %.64s", (long long)a->id,
                            a->worker);
    return 0;
}

static int verdict(struct mr_store *st, struct verdict_arg *a,
                   struct mr_error *err)
{
    if (a->worker == NULL || a->id <= 0)
        return mr_error_set(err, MR_EINVAL, "a job id and a worker are needed");
    return mr__store_write(st, op_verdict, a, err);
}

int mr_store_fail_job(struct mr_store *st, int64_t job_id, const char *worker,
                      const char *error, int64_t retry_at, struct mr_error *err)
{
    struct verdict_arg a = {SQL_FAIL, job_id, worker, error, retry_at};
    return verdict(st, &a, err);
}

int mr_store_release_job(struct mr_store *st, int64_t job_id,
                         const char *worker, struct mr_error *err)
{
    struct verdict_arg a = {SQL_RELEASE_JOB, job_id, worker, NULL, 0};
    return verdict(st, &a, err);
}

int mr_store_finish_job(struct mr_store *st, int64_t job_id, const char *worker,
                        struct mr_error *err)
{
    struct verdict_arg a = {SQL_FINISH, job_id, worker, NULL, 0};
    return verdict(st, &a, err);
}

/* Used by deliver_message: the same conditional DONE inside its op. */
int mr__job_finish_in_tx(struct mr__conn *c, int64_t job_id, const char *worker,
                         struct mr_error *err)
{
    struct verdict_arg a = {SQL_FINISH, job_id, worker, NULL, 0};
    return op_verdict(c, &a, err);
}

int mr__job_insert_in_tx(struct mr__conn *c, const struct mr_job_spec *j,
                         int64_t now, int64_t *job_id, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_INSERT_JOB, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, j->tenant);
    mr__bind_str(s, 2, j->channel);
    mr__bind_str(s, 3, j->raw_sha256);
    sqlite3_bind_int64(s, 4, j->raw_size);
    mr__bind_str(s, 5, j->payload ? j->payload : "{}");
    sqlite3_bind_int64(s, 6, j->received_at);
    mr__bind_str(s, 7, j->dedupe_key);
    sqlite3_bind_int64(s, 8, now);
    rc = mr__stmt_exec(c, s, "cannot enqueue a job", err);
    *job_id = rc == 0 ? sqlite3_last_insert_rowid(c->db) : 0;
    return rc;
}

/* ---- views --------------------------------------------------------------- */

int mr_store_get_job(struct mr_store *st, int64_t job_id, struct mr_job *out,
                     struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_GET_JOB, &s, err);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, job_id);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            read_job(s, out);
            rc = 0;
        } else if (rc == SQLITE_DONE) {
            rc = mr_error_set(err, MR_ENOTFOUND, "no job %lld",
                              (long long)job_id);
        } else {
            rc = mr__sqlerr(c, rc, "cannot read the job", err);
        }
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    return rc;
}

int mr_store_list_jobs(struct mr_store *st, enum mr_job_state state,
                       int64_t after, int limit, struct mr_job **jobs,
                       size_t *n, struct mr_error *err)
{
    *jobs = NULL;
    *n = 0;
    const char *name = state_name(state);
    if (name == NULL)
        return mr_error_set(err, MR_EINVAL, "unknown job state %d", (int)state);
    if (limit <= 0)
        limit = LIST_DEFAULT;
    if (limit > LIST_MAX)
        limit = LIST_MAX;
    struct mr_job *out = mr_xcalloc((size_t)limit, sizeof *out);
    size_t count = 0;
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_LIST_JOBS, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, name);
        sqlite3_bind_int64(s, 2, after);
        sqlite3_bind_int(s, 3, limit);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && count < (size_t)limit)
            read_job(s, &out[count++]);
        rc = rc == SQLITE_DONE || rc == SQLITE_ROW
                 ? 0
                 : mr__sqlerr(c, rc, "cannot list jobs", err);
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    if (rc < 0) {
        mr_job_list_free(out, count);
        return rc;
    }
    *jobs = out;
    *n = count;
    return 0;
}

/* ---- dead letters -------------------------------------------------------- */

struct retry_arg {
    int64_t id; /* 0: all dead jobs */
    int64_t count;
};

static int op_retry(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct retry_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, a->id ? SQL_RETRY : SQL_RETRY_ALL, &s, err);
    if (rc < 0)
        return rc;
    int64_t now = mr__store_now_ms();
    if (a->id) {
        sqlite3_bind_int64(s, 1, a->id);
        sqlite3_bind_int64(s, 2, now);
    } else {
        sqlite3_bind_int64(s, 1, now);
    }
    rc = mr__stmt_exec(c, s, "cannot retry", err);
    if (rc < 0)
        return rc;
    a->count = sqlite3_changes64(c->db);
    if (a->id && a->count == 0)
        return mr_error_set(err, MR_ENOTFOUND, "job %lld is not dead",
                            (long long)a->id);
    return 0;
}

int mr_store_retry_job(struct mr_store *st, int64_t job_id,
                       struct mr_error *err)
{
    if (job_id <= 0)
        return mr_error_set(err, MR_ENOTFOUND, "no job %lld",
                            (long long)job_id);
    struct retry_arg a = {job_id, 0};
    return mr__store_write(st, op_retry, &a, err);
}

int mr_store_retry_dead_jobs(struct mr_store *st, int64_t *count,
                             struct mr_error *err)
{
    struct retry_arg a = {0, 0};
    int rc = mr__store_write(st, op_retry, &a, err);
    if (count)
        *count = rc == 0 ? a.count : 0;
    return rc;
}
