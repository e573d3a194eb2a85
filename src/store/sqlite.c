/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlite.c - the SQLite backend's engine room: opening the database, the
 * one writer thread with group commit, and the pool of read connections.
 *
 * Why one writer: SQLite allows one writing transaction at a time and each
 * commit in WAL mode with synchronous=FULL costs an fsync of the WAL. Many
 * threads committing on their own would queue on the database lock and pay
 * one fsync each. Instead every write becomes a request on a queue; the
 * writer takes whatever has queued up (at most group_commit_max), runs it in
 * one BEGIN IMMEDIATE ... COMMIT, and wakes the callers. Under load a batch
 * grows to the number of waiting callers, so the fsync is shared; when idle
 * a request commits alone at once (no timer, no added latency).
 *
 * Isolation inside a batch: each request runs inside its own SAVEPOINT. A
 * request that fails (a dedupe conflict, a lost lease) rolls back to its
 * savepoint and fails alone. If SQLite abandons the whole transaction (some
 * I/O errors and SQLITE_FULL do) or COMMIT fails, nothing of the batch is
 * durable, so every request of it fails with MR_EIO and SQLite's message:
 * the caller answers 451 and the sender retries, nothing is acknowledged
 * that is not on disk.
 *
 * Reads go to their own connections; in WAL mode readers see the last
 * committed snapshot and neither wait for nor block the writer.
 */
#include "store/store-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/clock.h"

/* How long a connection waits for a lock held by another process (the
 * `mailroom token`/`dlq` commands next to a running server) before it gives
 * up with MR_EIO: long enough for their short transactions, short enough
 * that a caller never hangs. */
#define BUSY_TIMEOUT_MS 5000
#define MAX_READ_CONNECTIONS 64
#define MAX_GROUP_COMMIT 4096

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT req";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO req";
static const char SQL_RELEASE[] = "RELEASE req";

int64_t mr__store_now_ms(void)
{
    return mr_clock_wall_ms();
}

int mr__sqlerr(struct mr__conn *c, int rc, const char *what,
               struct mr_error *err)
{
    const char *msg = c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE ||
            rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return mr_error_set(err, MR_ECONFLICT, "%s: %s", what, msg);
        return mr_error_set(err, MR_EINVAL, "%s: %s", what, msg);
    case SQLITE_NOMEM: return mr_error_set(err, MR_ENOMEM, "%s: %s", what, msg);
    default: return mr_error_set(err, MR_EIO, "%s: %s", what, msg);
    }
}

void mr__bind_str(sqlite3_stmt *s, int i, const char *v)
{
    sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

char *mr__col_str(sqlite3_stmt *s, int col)
{
    const unsigned char *p = sqlite3_column_text(s, col);
    if (p == NULL)
        return NULL;
    return mr_xstrndup((const char *)p, (size_t)sqlite3_column_bytes(s, col));
}

/* ---- statements ---------------------------------------------------------- */

int mr__stmt(struct mr__conn *c, const char *sql, sqlite3_stmt **out,
             struct mr_error *err)
{
    *out = NULL;
    for (size_t i = 0; i < c->nstmt; i++) {
        if (c->stmt[i].sql == sql) {
            *out = c->stmt[i].stmt;
            return 0;
        }
    }
    if (c->nstmt == MR__STMT_CACHE)
        /* A programming error (more SQL texts than slots), not bad input. */
        return mr_error_set(err, MR_EIO, "statement cache full (%d)",
                            MR__STMT_CACHE);
    sqlite3_stmt *s = NULL;
    int rc =
        sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(s);
        return mr__sqlerr(c, rc, "cannot prepare a statement", err);
    }
    c->stmt[c->nstmt].sql = sql;
    c->stmt[c->nstmt].stmt = s;
    c->nstmt++;
    *out = s;
    return 0;
}

void mr__stmt_done(sqlite3_stmt *s)
{
    if (s == NULL)
        return;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

int mr__stmt_exec(struct mr__conn *c, sqlite3_stmt *s, const char *what,
                  struct mr_error *err)
{
    int rc;
    /* A statement without a LIMIT is run only where its rows are bounded
     * by what the caller passed in; this loop only drains them. */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    int res = rc == SQLITE_DONE ? 0 : mr__sqlerr(c, rc, what, err);
    mr__stmt_done(s);
    return res;
}

static int exec_cached(struct mr__conn *c, const char *sql, const char *what,
                       struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, sql, &s, err);
    if (rc < 0)
        return rc;
    return mr__stmt_exec(c, s, what, err);
}

/* Runs one PRAGMA and returns its first column as text in out. */
static int pragma(struct mr__conn *c, const char *sql, char *out, size_t n,
                  struct mr_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
            const unsigned char *v =
                rc == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
            if (out)
                snprintf(out, n, "%s", v ? (const char *)v : "");
            rc = SQLITE_OK;
        }
    }
    int res = rc == SQLITE_OK ? 0 : mr__sqlerr(c, rc, sql, err);
    sqlite3_finalize(s);
    return res;
}

/* ---- connections --------------------------------------------------------- */

static void conn_close(struct mr__conn *c)
{
    for (size_t i = 0; i < c->nstmt; i++)
        sqlite3_finalize(c->stmt[i].stmt);
    c->nstmt = 0;
    if (c->db)
        sqlite3_close_v2(c->db);
    c->db = NULL;
}

static int conn_open(struct mr__conn *c, const char *path, bool writer,
                     struct mr_error *err)
{
    memset(c, 0, sizeof *c);
    /* NOMUTEX: a connection is used by one thread at a time (the writer, or
     * whoever holds it from the read pool), so SQLite's own per-connection
     * mutex would only cost. CREATE for the writer only: it opens first. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        mr_error_set(err, MR_EIO, "cannot open %s: %s", path,
                     c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        conn_close(c);
        return MR_EIO;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    char mode[32] = "";
    rc = pragma(c, "PRAGMA foreign_keys = ON", NULL, 0, err);
    if (rc == 0 && writer) {
        /* WAL: readers never block the writer and a commit is one append
         * plus one fsync of the WAL. The mode is stored in the file, so the
         * readers opened after this inherit it. */
        rc = pragma(c, "PRAGMA journal_mode = WAL", mode, sizeof mode, err);
        if (rc == 0 && strcmp(mode, "wal") != 0)
            rc = mr_error_set(err, MR_EIO,
                              "cannot switch %s to WAL mode (journal mode "
                              "is '%s'; is the file or its folder "
                              "read-only?)",
                              path, mode);
    }
    /* FULL: a commit is synced before it returns, so an acknowledgement
     * sent after it survives a power cut, not only a crash. */
    if (rc == 0)
        rc = pragma(c, "PRAGMA synchronous = FULL", NULL, 0, err);
    /* A burst can grow the WAL far beyond its usual size; give the space
     * back after the next checkpoint instead of keeping it forever. */
    if (rc == 0 && writer)
        rc = pragma(c, "PRAGMA journal_size_limit = 67108864", NULL, 0, err);
    /* A read connection that tried to write would be a bug; make it one
     * SQLite reports instead of a second writer racing the first. */
    if (rc == 0 && !writer)
        rc = pragma(c, "PRAGMA query_only = ON", NULL, 0, err);
    if (rc < 0)
        conn_close(c);
    return rc;
}

/* ---- the writer ---------------------------------------------------------- */

/* The transaction is gone: every request of the batch that had succeeded so
 * far loses its work and fails with why. */
static void fail_batch(struct mr__wreq **b, size_t n, const char *why)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i]->rc < 0)
            continue;
        b[i]->rc = mr_error_set(&b[i]->err, MR_EIO,
                                "database transaction failed: %s", why);
    }
}

/* FULL syncs the WAL at every commit; NORMAL leaves it to the next FULL
 * commit (or checkpoint), which then makes the earlier frames durable too.
 * Changed only between transactions. */
static bool set_sync(struct mr__conn *c, bool lazy)
{
    if (c->lazy_sync == lazy)
        return true;
    if (sqlite3_exec(c->db, lazy ? "PRAGMA synchronous = NORMAL"
                                 : "PRAGMA synchronous = FULL",
                     NULL, NULL, NULL) != SQLITE_OK)
        return false;
    c->lazy_sync = lazy;
    return true;
}

/* Runs one request of an open transaction under its own savepoint. false
 * when the transaction is lost (the batch fails as a whole; terr says
 * why). */
static bool run_one(struct mr__conn *c, struct mr__wreq *r,
                    struct mr_error *terr)
{
    int rc = exec_cached(c, SQL_SAVEPOINT, "cannot set a savepoint", terr);
    if (rc == 0) {
        r->rc = r->op(c, r->arg, &r->err);
        if (r->rc < 0 && !sqlite3_get_autocommit(c->db))
            rc = exec_cached(c, SQL_ROLLBACK_TO, "cannot roll back a request",
                             terr);
        if (rc == 0 && !sqlite3_get_autocommit(c->db))
            rc = exec_cached(c, SQL_RELEASE, "cannot release a savepoint",
                             terr);
    }
    /* SQLite rolls back the whole transaction itself on some errors
     * (SQLITE_FULL, some SQLITE_IOERR): then autocommit is back on and the
     * work of the requests before this one is gone as well. */
    if (rc < 0 || sqlite3_get_autocommit(c->db)) {
        if (rc == 0)
            snprintf(terr->msg, sizeof terr->msg, "%s",
                     r->rc < 0 ? r->err.msg : "rolled back by SQLite");
        return false;
    }
    return true;
}

/*
 * Quick requests that were queued while the batch ran, moved into
 * b[n..cap) to share its commit. Measured under the ingest benchmark, a
 * batch of deliveries keeps the writer busy about a millisecond before
 * its fsync: an SMTP message whose enqueue arrived in that time waited
 * for the whole batch, then for a batch of its own and a second fsync.
 * Heavy requests stay for the next batch (MR__HEAVY_PER_BATCH), and a
 * durable request never joins a lazy batch (its synchronous mode is set).
 */
/* Moves queued requests into b[n..cap) in queue order, with wmu held, and
 * returns how many: at most heavy_max heavy ones (those past it stay
 * queued, in order, while the quick ones behind them go), and no durable
 * one into a lazy batch (lazy_only). */
static size_t take_locked(struct mr_store *st, struct mr__wreq **b, size_t n,
                          size_t cap, size_t heavy_max, bool lazy_only)
{
    size_t k = n, heavy = 0;
    struct mr__wreq **link = &st->head;
    while (*link != NULL && k < cap) {
        struct mr__wreq *r = *link;
        if ((r->heavy && heavy >= heavy_max) || (lazy_only && !r->lazy)) {
            link = &r->next;
            continue;
        }
        heavy += r->heavy;
        b[k++] = r;
        *link = r->next;
    }
    /* What stays queued is as long as the callers waiting on it. */
    st->tail = st->head;
    while (st->tail != NULL && st->tail->next != NULL)
        st->tail = st->tail->next;
    st->nqueued -= k - n;
    return k - n;
}

static size_t take_late(struct mr_store *st, struct mr__wreq **b, size_t n,
                        size_t cap, bool lazy)
{
    pthread_mutex_lock(&st->wmu);
    size_t k = st->paused ? 0 : take_locked(st, b, n, cap, 0, lazy);
    pthread_mutex_unlock(&st->wmu);
    return k;
}

/* Runs b[0..n) (and the late joiners it takes into b, up to cap) in one
 * transaction; returns how many requests it ran. */
static size_t run_batch(struct mr_store *st, struct mr__wreq **b, size_t n,
                        size_t cap)
{
    struct mr__conn *c = &st->wconn;
    struct mr_error terr = {0};
    bool lazy = true;
    for (size_t i = 0; i < n; i++) {
        b[i]->rc = 0;
        lazy &= b[i]->lazy;
    }
    /* Idle workers' claims alone never cost an fsync; one durable request
     * makes the whole batch durable, and a batch that cannot be made
     * durable is not committed at all. */
    if (!set_sync(c, lazy) && !lazy) {
        fail_batch(b, n, "cannot switch the database to synchronous commits");
        return n;
    }
    if (exec_cached(c, SQL_BEGIN, "cannot begin a transaction", &terr) < 0) {
        fail_batch(b, n, terr.msg);
        return n;
    }
    bool broken = false;
    size_t i = 0;
    while (!broken) {
        for (; i < n && !broken; i++)
            broken = !run_one(c, b[i], &terr);
        if (broken)
            fail_batch(b, n, terr.msg);
        else {
            size_t late = take_late(st, b, n, cap, lazy);
            if (late == 0)
                break;
            for (size_t k = n; k < n + late; k++)
                b[k]->rc = 0;
            n += late;
        }
    }
    if (!broken) {
        pthread_mutex_lock(&st->wmu);
        bool inject = st->fail_commits > 0;
        st->fail_commits -= inject ? 1 : 0;
        pthread_mutex_unlock(&st->wmu);
        int rc = inject ? mr_error_set(&terr, MR_EIO, "injected fault")
                        : exec_cached(c, SQL_COMMIT, "cannot commit", &terr);
        if (rc < 0) {
            broken = true;
            fail_batch(b, n, terr.msg);
        }
    }
    if (!sqlite3_get_autocommit(c->db))
        exec_cached(c, SQL_ROLLBACK, "cannot roll back", NULL);
    if (!broken) {
        pthread_mutex_lock(&st->cmu);
        st->cgen++;
        pthread_cond_broadcast(&st->ccond);
        pthread_mutex_unlock(&st->cmu);
    }
    pthread_mutex_lock(&st->wmu);
    if (!broken)
        st->commits++;
    st->requests += n;
    if (n > st->max_batch)
        st->max_batch = n;
    pthread_mutex_unlock(&st->wmu);
    return n;
}

static void *writer_main(void *arg)
{
    struct mr_store *st = arg;
    for (;;) {
        pthread_mutex_lock(&st->wmu);
        while ((st->head == NULL || st->paused) && !st->stopping)
            pthread_cond_wait(&st->wcond, &st->wmu);
        if (st->head == NULL) {
            /* Stopping, and everything queued before has committed. */
            pthread_mutex_unlock(&st->wmu);
            break;
        }
        /* FIFO, except that heavy requests past MR__HEAVY_PER_BATCH wait
         * for the next batch while the quick ones behind them go now. */
        size_t n = take_locked(st, st->batch, 0, (size_t)st->group_commit_max,
                               MR__HEAVY_PER_BATCH, false);
        pthread_mutex_unlock(&st->wmu);

        n = run_batch(st, st->batch, n, (size_t)st->group_commit_max);

        /* Detached requests move to the front of the batch as the others
         * are woken: a woken caller's request (on its stack) may be gone
         * the moment wmu is released, so nothing may read it after that. */
        size_t nd = 0;
        pthread_mutex_lock(&st->wmu);
        for (size_t i = 0; i < n; i++) {
            struct mr__wreq *r = st->batch[i];
            if (r->detached) {
                st->batch[nd++] = r;
                continue;
            }
            r->done = true;
            pthread_cond_signal(&r->cond);
        }
        pthread_mutex_unlock(&st->wmu);
        for (size_t i = 0; i < nd; i++) {
            struct mr__wreq *r = st->batch[i];
            if (r->free_arg)
                r->free_arg(r->arg);
            free(r);
        }
    }
    return NULL;
}

static void enqueue_locked(struct mr_store *st, struct mr__wreq *r)
{
    r->next = NULL;
    if (st->tail)
        st->tail->next = r;
    else
        st->head = r;
    st->tail = r;
    st->nqueued++;
    pthread_cond_signal(&st->wcond);
}

/* Queues n requests of op under one lock hold (so the writer takes them
 * into one batch, up to group_commit_max, and syncs once for all) and
 * waits for every one. reqs is the caller's (a stack slot for one). */
static int submit(struct mr_store *st, mr__write_op op, void **args,
                  struct mr__wreq *reqs, size_t n, bool lazy, bool heavy,
                  int *rcs, struct mr_error *errs)
{
    pthread_mutex_lock(&st->wmu);
    if (st->stopping || !st->writer_running) {
        pthread_mutex_unlock(&st->wmu);
        for (size_t i = 0; i < n; i++)
            rcs[i] = mr_error_set(&errs[i], MR_EAGAIN, "the store is closing");
        return n ? MR_EAGAIN : 0;
    }
    for (size_t i = 0; i < n; i++) {
        reqs[i] = (struct mr__wreq){
            .op = op, .arg = args[i], .lazy = lazy, .heavy = heavy};
        pthread_cond_init(&reqs[i].cond, NULL);
        enqueue_locked(st, &reqs[i]);
    }
    for (size_t i = 0; i < n; i++)
        while (!reqs[i].done)
            pthread_cond_wait(&reqs[i].cond, &st->wmu);
    pthread_mutex_unlock(&st->wmu);
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_cond_destroy(&reqs[i].cond);
        rcs[i] = reqs[i].rc;
        if (reqs[i].rc < 0) {
            errs[i] = reqs[i].err;
            if (first == 0)
                first = reqs[i].rc;
        }
    }
    return first;
}

static int write_one(struct mr_store *st, mr__write_op op, void *arg,
                     bool lazy, struct mr_error *err)
{
    struct mr__wreq r;
    struct mr_error e = {0};
    int rc = 0;
    submit(st, op, &arg, &r, 1, lazy, false, &rc, &e);
    if (rc < 0 && err)
        *err = e;
    return rc;
}

int mr__store_write(struct mr_store *st, mr__write_op op, void *arg,
                    struct mr_error *err)
{
    return write_one(st, op, arg, false, err);
}

int mr__store_write_lazy(struct mr_store *st, mr__write_op op, void *arg,
                         struct mr_error *err)
{
    return write_one(st, op, arg, true, err);
}

int mr__store_write_many(struct mr_store *st, mr__write_op op, void **args,
                         size_t n, int *rcs, struct mr_error *errs)
{
    struct mr__wreq *r = mr_xcalloc(n ? n : 1, sizeof *r);
    int rc = submit(st, op, args, r, n, false, true, rcs, errs);
    free(r);
    return rc;
}

void mr__store_post(struct mr_store *st, mr__write_op op, void *arg,
                    void (*free_arg)(void *arg))
{
    struct mr__wreq *r = mr_xcalloc(1, sizeof *r);
    r->op = op;
    r->arg = arg;
    r->detached = true;
    r->lazy = true; /* nobody waits for it; its loss costs nothing */
    r->free_arg = free_arg;
    pthread_mutex_lock(&st->wmu);
    if (st->stopping || !st->writer_running) {
        pthread_mutex_unlock(&st->wmu);
        if (free_arg)
            free_arg(arg);
        free(r);
        return;
    }
    enqueue_locked(st, r);
    pthread_mutex_unlock(&st->wmu);
}

/* ---- the read pool ------------------------------------------------------- */

struct mr__conn *mr__store_read_acquire(struct mr_store *st)
{
    pthread_mutex_lock(&st->rmu);
    while (st->nfree == 0)
        pthread_cond_wait(&st->rcond, &st->rmu);
    int i = st->rfree[--st->nfree];
    pthread_mutex_unlock(&st->rmu);
    return &st->rconn[i];
}

void mr__store_read_release(struct mr_store *st, struct mr__conn *c)
{
    pthread_mutex_lock(&st->rmu);
    st->rfree[st->nfree++] = (int)(c - st->rconn);
    pthread_cond_signal(&st->rcond);
    pthread_mutex_unlock(&st->rmu);
}

/* ---- open and close ------------------------------------------------------ */

static int parse_url(const char *url, char **path, struct mr_error *err)
{
    if (url == NULL || *url == '\0')
        return mr_error_set(err, MR_EINVAL, "no database given");
    const char *p = url;
    if (strncmp(url, "sqlite:", 7) == 0) {
        p = url + 7;
        /* sqlite:///abs/path, the URL form, as well as sqlite:/abs/path. */
        if (strncmp(p, "//", 2) == 0)
            p += 2;
    } else if (strncmp(url, "postgres://", 11) == 0 ||
               strncmp(url, "postgresql://", 13) == 0) {
        return mr_error_set(err, MR_EINVAL,
                            "PostgreSQL is not supported by this build yet; "
                            "use sqlite:PATH");
    } else if (strstr(url, "://") != NULL) {
        return mr_error_set(err, MR_EINVAL,
                            "unknown database URL '%.64s' (use sqlite:PATH)",
                            url);
    }
    if (*p == '\0')
        return mr_error_set(err, MR_EINVAL,
                            "database URL '%.64s' names no "
                            "file",
                            url);
    /* An in-memory or temporary database is private to one connection: the
     * writer and the readers would each see their own. */
    if (strcmp(p, ":memory:") == 0 || strncmp(p, "file:", 5) == 0)
        return mr_error_set(err, MR_EINVAL,
                            "database '%.64s' must be a plain file path", url);
    *path = mr_xstrndup(p, strlen(p));
    return 0;
}

static int tx_migrate(struct mr__conn *c, int *from, int *to,
                      struct mr_error *err)
{
    int rc = exec_cached(c, SQL_BEGIN, "cannot begin a transaction", err);
    if (rc < 0)
        return rc;
    rc = mr__migrate_in_tx(c, from, to, err);
    if (rc == 0)
        rc = exec_cached(c, SQL_COMMIT, "cannot commit the migration", err);
    if (!sqlite3_get_autocommit(c->db))
        exec_cached(c, SQL_ROLLBACK, "cannot roll back", NULL);
    return rc;
}

/* Refuses a schema this binary cannot use; brings an older one up to date
 * when asked to. */
static int check_schema(struct mr_store *st, bool migrate, bool allow_old,
                        struct mr_error *err)
{
    int cur = 0, latest = mr__migrations_latest();
    int rc = mr__schema_current(&st->wconn, &cur, err);
    if (rc < 0)
        return rc;
    if (cur > latest)
        return mr_error_set(err, MR_EINVAL,
                            "database schema version %d is newer than this "
                            "mailroom supports (%d): upgrade mailroom",
                            cur, latest);
    if (cur == latest || (allow_old && !migrate))
        return 0;
    if (!migrate)
        return mr_error_set(err, MR_EINVAL,
                            "database schema version %d is older than this "
                            "mailroom needs (%d): run `mailroom migrate`",
                            cur, latest);
    return tx_migrate(&st->wconn, NULL, NULL, err);
}

int mr_store_open(const struct mr_store_options *opt, struct mr_store **out,
                  struct mr_error *err)
{
    *out = NULL;
    char *path = NULL;
    int rc = parse_url(opt ? opt->url : NULL, &path, err);
    if (rc < 0)
        return rc;
    struct mr_store *st = mr_xcalloc(1, sizeof *st);
    st->path = path;
    st->group_commit_max =
        opt->group_commit_max > 0 ? opt->group_commit_max : 256;
    if (st->group_commit_max > MAX_GROUP_COMMIT)
        st->group_commit_max = MAX_GROUP_COMMIT;
    st->nread = opt->read_connections > 0 ? opt->read_connections : 4;
    if (st->nread > MAX_READ_CONNECTIONS)
        st->nread = MAX_READ_CONNECTIONS;
    pthread_mutex_init(&st->wmu, NULL);
    pthread_cond_init(&st->wcond, NULL);
    pthread_mutex_init(&st->rmu, NULL);
    pthread_cond_init(&st->rcond, NULL);
    pthread_mutex_init(&st->cmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->ccond, &ca);
    pthread_condattr_destroy(&ca);
    st->batch = mr_xcalloc((size_t)st->group_commit_max, sizeof *st->batch);
    st->rconn = mr_xcalloc((size_t)st->nread, sizeof *st->rconn);
    st->rfree = mr_xcalloc((size_t)st->nread, sizeof *st->rfree);

    rc = conn_open(&st->wconn, path, true, err);
    if (rc == 0)
        rc = check_schema(st, opt->migrate, opt->allow_old_schema, err);
    if (rc == 0)
        rc = mr__store_load_secret(st, err);
    for (int i = 0; rc == 0 && i < st->nread; i++) {
        rc = conn_open(&st->rconn[i], path, false, err);
        if (rc == 0)
            st->rfree[st->nfree++] = i;
    }
    if (rc == 0) {
        int e = pthread_create(&st->writer, NULL, writer_main, st);
        if (e != 0)
            rc = mr_error_set(err, MR_EIO, "cannot start the writer: %s",
                              strerror(e));
        else
            st->writer_running = true;
    }
    if (rc < 0) {
        mr_store_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void mr_store_close(struct mr_store *st)
{
    if (st == NULL)
        return;
    if (st->writer_running) {
        pthread_mutex_lock(&st->wmu);
        st->stopping = true;
        pthread_cond_signal(&st->wcond);
        pthread_mutex_unlock(&st->wmu);
        pthread_join(st->writer, NULL);
        st->writer_running = false;
    }
    for (int i = 0; i < st->nread; i++)
        conn_close(&st->rconn[i]);
    /* The writer closes last: the last connection to go checkpoints the WAL
     * into the database and removes it. */
    conn_close(&st->wconn);
    pthread_mutex_destroy(&st->wmu);
    pthread_cond_destroy(&st->wcond);
    pthread_mutex_destroy(&st->rmu);
    pthread_cond_destroy(&st->rcond);
    pthread_mutex_destroy(&st->cmu);
    pthread_cond_destroy(&st->ccond);
    free(st->batch);
    free(st->rconn);
    free(st->rfree);
    free(st->path);
    free(st);
}

/* ---- schema and health --------------------------------------------------- */

struct migrate_arg {
    int from, to;
};

static int op_migrate(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct migrate_arg *a = arg;
    return mr__migrate_in_tx(c, &a->from, &a->to, err);
}

int mr_store_migrate(struct mr_store *st, int *from, int *to,
                     struct mr_error *err)
{
    struct migrate_arg a = {0, 0};
    int rc = mr__store_write(st, op_migrate, &a, err);
    if (rc == 0 && st->secret_len == 0)
        rc = mr__store_load_secret(st, err);
    if (rc < 0)
        return rc;
    if (from)
        *from = a.from;
    if (to)
        *to = a.to;
    return 0;
}

int mr_store_schema_version(struct mr_store *st, int *current, int *latest,
                            struct mr_error *err)
{
    struct mr__conn *c = mr__store_read_acquire(st);
    int cur = 0;
    int rc = mr__schema_current(c, &cur, err);
    mr__store_read_release(st, c);
    if (rc < 0)
        return rc;
    if (current)
        *current = cur;
    if (latest)
        *latest = mr__migrations_latest();
    return 0;
}

static int op_ping(struct mr__conn *c, void *arg, struct mr_error *err)
{
    (void)arg;
    /* BEGIN IMMEDIATE has taken the write lock already; a file that was
     * opened read-only would still get that far. */
    if (sqlite3_db_readonly(c->db, "main") == 1)
        return mr_error_set(err, MR_EIO, "the database is read-only");
    return 0;
}

int mr_store_ping(struct mr_store *st, struct mr_error *err)
{
    return mr__store_write(st, op_ping, NULL, err);
}

/* ---- for tests and benchmarks -------------------------------------------- */

static uint64_t read_counter(struct mr_store *st, const uint64_t *v)
{
    pthread_mutex_lock(&st->wmu);
    uint64_t r = *v;
    pthread_mutex_unlock(&st->wmu);
    return r;
}

uint64_t mr_store_commit_gen(struct mr_store *st)
{
    pthread_mutex_lock(&st->cmu);
    uint64_t g = st->cgen;
    pthread_mutex_unlock(&st->cmu);
    return g;
}

uint64_t mr_store_commit_wait(struct mr_store *st, uint64_t seen,
                              int timeout_ms)
{
    struct timespec until = mr_clock_deadline(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&st->cmu);
    /* Bounded: every wake re-checks, and the deadline ends the loop. */
    while (st->cgen == seen &&
           pthread_cond_timedwait(&st->ccond, &st->cmu, &until) == 0)
        ;
    uint64_t g = st->cgen;
    pthread_mutex_unlock(&st->cmu);
    return g;
}

uint64_t mr_store_debug_commits(struct mr_store *st)
{
    return read_counter(st, &st->commits);
}

uint64_t mr_store_debug_requests(struct mr_store *st)
{
    return read_counter(st, &st->requests);
}

uint64_t mr_store_debug_max_batch(struct mr_store *st)
{
    return read_counter(st, &st->max_batch);
}

void mr_store_debug_pause(struct mr_store *st, bool paused)
{
    pthread_mutex_lock(&st->wmu);
    st->paused = paused;
    pthread_cond_signal(&st->wcond);
    pthread_mutex_unlock(&st->wmu);
}

size_t mr_store_debug_queued(struct mr_store *st)
{
    pthread_mutex_lock(&st->wmu);
    size_t n = st->nqueued;
    pthread_mutex_unlock(&st->wmu);
    return n;
}

void mr_store_debug_fail_commits(struct mr_store *st, int n)
{
    pthread_mutex_lock(&st->wmu);
    st->fail_commits = n;
    pthread_mutex_unlock(&st->wmu);
}

static int op_max_pages(struct mr__conn *c, void *arg, struct mr_error *err)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
             (long long)*(int64_t *)arg);
    return pragma(c, sql, NULL, 0, err);
}

int mr_store_debug_max_pages(struct mr_store *st, int64_t pages,
                             struct mr_error *err)
{
    /* SQLite's own default ceiling. */
    int64_t v = pages > 0 ? pages : 1073741823;
    return mr__store_write(st, op_max_pages, &v, err);
}
