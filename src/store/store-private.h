/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store-private.h - what the files of the SQLite store share: the store
 * itself, connections with their statement caches, the writer queue, and
 * the small helpers that turn SQLite results into mr_error codes.
 *
 * Threads: the writer connection belongs to the writer thread alone; a
 * write operation (struct mr__wreq.op) runs on it inside the batch's
 * transaction and its own savepoint, so an op must never BEGIN, COMMIT or
 * touch another connection. A read connection belongs to one caller between
 * mr__store_read_acquire and mr__store_read_release.
 *
 * Statements: mr__stmt hands out a cached prepared statement keyed by the
 * address of its SQL text, so SQL lives in `static const char NAME[]`
 * objects (one address each). Every statement obtained must be given back
 * with mr__stmt_done before the op returns, on every path: a statement left
 * half-stepped keeps a read transaction open and pins the WAL.
 *
 * Not for other modules: nothing here is part of the store's contract except
 * the mr_store_debug_* functions, which exist for tests and benchmarks.
 */
#ifndef MR_STORE_PRIVATE_H
#define MR_STORE_PRIVATE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "ticket/thread.h"
#include "util/json.h"

/* Distinct SQL texts one connection may cache; the store has about forty. */
#define MR__STMT_CACHE 96

struct mr__conn {
    sqlite3 *db;
    bool lazy_sync; /* writer: PRAGMA synchronous is NORMAL, not FULL */
    size_t nstmt;
    struct {
        const char *sql; /* the key: the address of a static SQL text */
        sqlite3_stmt *stmt;
    } stmt[MR__STMT_CACHE];
};

/* One write operation. It runs on the writer connection, inside the batch
 * transaction and its own savepoint: returning < 0 rolls back exactly what
 * it did. Outputs go into arg; the caller discards them unless the final
 * result is 0 (a failed COMMIT turns a 0 into MR_EIO after the fact). */
typedef int (*mr__write_op)(struct mr__conn *c, void *arg,
                            struct mr_error *err);

struct mr__wreq {
    mr__write_op op;
    void *arg;
    int rc;
    struct mr_error err;
    bool done;
    /* Fire and forget: nobody waits; the writer frees the request and, with
     * free_arg, its argument. */
    bool detached;
    /* Losing it in a power cut costs nothing (a claim: the job is simply
     * claimable again), so a batch of only such requests skips the fsync. */
    bool lazy;
    /* Long work (a delivery with threading): a batch takes at most
     * MR__HEAVY_PER_BATCH of these, so the quick requests queued behind
     * them (intake's enqueues, whose callers hold an SMTP client waiting
     * for its 250) are committed without waiting for a whole backlog. */
    bool heavy;
    void (*free_arg)(void *arg);
    pthread_cond_t cond; /* the waiting caller's; unused when detached */
    struct mr__wreq *next;
};

struct mr_store {
    char *path;
    int group_commit_max;

    /* Writer: queue, thread, connection. wmu guards the queue, stopping and
     * every request's done flag. */
    pthread_mutex_t wmu;
    pthread_cond_t wcond;
    struct mr__wreq *head, *tail;
    bool stopping;
    bool paused; /* tests: the writer takes nothing while set */
    size_t nqueued;
    bool writer_running;
    pthread_t writer;
    struct mr__conn wconn;
    struct mr__wreq **batch; /* group_commit_max slots, writer's own */

    /* Counters for tests and benchmarks, guarded by wmu. */
    uint64_t commits;  /* transactions committed by the writer */
    uint64_t requests; /* write requests executed */
    uint64_t max_batch;
    int fail_commits; /* tests: so many next COMMITs fail */

    /* Commit notification for live readers (mr_store_commit_wait): its own
     * lock, so that waiters never contend with the writer's queue. cgen
     * grows after each commit, once the commit is visible to readers. */
    pthread_mutex_t cmu;
    pthread_cond_t ccond; /* CLOCK_MONOTONIC */
    uint64_t cgen;

    /* The installation's thread-token secret, read once (at open, or
     * after a migration that created it); 0 bytes while the schema is too
     * old to have one. Immutable while the writer runs. */
    unsigned char secret[64];
    size_t secret_len;

    /* mr_store_webhooks_gen: bumped (atomically) after each committed
     * change of a webhook subscription. */
    uint64_t webhooks_gen;

    /* Read pool: nread connections, free ones stacked in rfree. */
    pthread_mutex_t rmu;
    pthread_cond_t rcond;
    int nread;
    struct mr__conn *rconn;
    int *rfree;
    int nfree;
};

/* ---- thread_lookup.c: threading inside the delivering transaction -------- */

int mr__thread_secret(struct mr__conn *c, unsigned char *out, size_t cap,
                      size_t *len, struct mr_error *err);
/* mr_thread_decide with lookups on c (the writer, inside its transaction). */
int mr__thread_decide_in_tx(struct mr__conn *c,
                            const struct mr_thread_msg *msg,
                            const unsigned char *secret, size_t secret_len,
                            int64_t window_ms,
                            struct mr_thread_decision *out,
                            struct mr_error *err);
/* Reads the secret into st (no-op, 0, while the schema has none). */
int mr__store_load_secret(struct mr_store *st, struct mr_error *err);

/* ---- sqlite.c: connections, writer, read pool ---------------------------- */

int64_t mr__store_now_ms(void);

/* Runs op through the writer and waits for its transaction to commit. */
int mr__store_write(struct mr_store *st, mr__write_op op, void *arg,
                    struct mr_error *err);
/* n requests of op (one per args[i]) submitted together so they share a
 * batch; waits for all. rcs[i] and errs[i] get each one's outcome; returns
 * the first failure or 0. */
int mr__store_write_many(struct mr_store *st, mr__write_op op, void **args,
                         size_t n, int *rcs, struct mr_error *errs);
#define MR__HEAVY_PER_BATCH 8
/* The same for a change whose loss in a power cut is harmless (see
 * mr__wreq.lazy): it commits, but is synced only with the next durable
 * commit. A crash of the process alone loses nothing (WAL). */
int mr__store_write_lazy(struct mr_store *st, mr__write_op op, void *arg,
                         struct mr_error *err);
/* Queues op without waiting (work whose loss costs nothing, such as a
 * token's last_used_at). The writer frees arg with free_arg (may be NULL).
 * Dropped, and arg freed, when the store is closing. */
void mr__store_post(struct mr_store *st, mr__write_op op, void *arg,
                    void (*free_arg)(void *arg));

struct mr__conn *mr__store_read_acquire(struct mr_store *st);
void mr__store_read_release(struct mr_store *st, struct mr__conn *c);

/* A cached statement for sql (a static text, see above), reset and without
 * bindings, in *out. */
int mr__stmt(struct mr__conn *c, const char *sql, sqlite3_stmt **out,
             struct mr_error *err);
void mr__stmt_done(sqlite3_stmt *s);
/* Steps a statement that returns no rows (or whose rows are not wanted) and
 * gives it back. */
int mr__stmt_exec(struct mr__conn *c, sqlite3_stmt *s, const char *what,
                  struct mr_error *err);

/* Maps a SQLite result to an MR_E* code and fills err with SQLite's own
 * message: a unique constraint is MR_ECONFLICT, another constraint
 * MR_EINVAL, everything else (full, read-only, I/O, corrupt, busy) MR_EIO. */
int mr__sqlerr(struct mr__conn *c, int rc, const char *what,
               struct mr_error *err);

/* Column helpers: a copy of a text column (NULL for SQL NULL), caller frees
 * with free(). */
char *mr__col_str(sqlite3_stmt *s, int col);
/* Binds v (NULL binds NULL) without a copy: strings are borrowed for the
 * call, and every statement runs within it. */
void mr__bind_str(sqlite3_stmt *s, int i, const char *v);

/* ---- jobs.c -------------------------------------------------------------- */

/* Marks a job DONE inside the caller's op, if worker still holds its lease
 * (MR_ENOTFOUND otherwise). */
int mr__job_finish_in_tx(struct mr__conn *c, int64_t job_id, const char *worker,
                         struct mr_error *err);
/* Queues one job inside the caller's op (no dedupe lookup: a duplicate
 * dedupe_key fails on the unique index, MR_ECONFLICT). */
int mr__job_insert_in_tx(struct mr__conn *c, const struct mr_job_spec *j,
                         int64_t now, int64_t *job_id, struct mr_error *err);

/* ---- events.c: the outbox writer ----------------------------------------- */

/* A JSON array text of the n integers v in b (NULL when n is 0), for
 * json_each: one SQL text serves every number of them. */
const char *mr__json_int_array(struct mr_buf *b, const int64_t *v, size_t n);

/* Appends one outbox event inside the caller's op (ticket_id and row 0:
 * none). payload is a JSON object text. */
int mr__event_insert(struct mr__conn *c, const char *tenant, const char *type,
                     int64_t ticket_id, int64_t row, const char *payload,
                     int64_t now, struct mr_error *err);

/* ---- ticket_update.c: a ticket's fields before and after a change ------- */

/* The fields a ticket.updated event reports, read inside a transaction. */
struct mr__ticket_state {
    int64_t number;
    int64_t version;
    char *status, *priority, *queue, *assignee; /* queue, assignee: NULL */
    char *tags_json;                            /* a JSON array text */
};
void mr__ticket_state_clear(struct mr__ticket_state *t);
/* Reads ticket id (of tenant, unless tenant is NULL). MR_ENOTFOUND. */
int mr__ticket_state_read(struct mr__conn *c, const char *tenant, int64_t id,
                          struct mr__ticket_state *out, struct mr_error *err);
/* Writes key "changes": {field: {before, after}} for the fields that
 * differ (tags compared as sets, with "added" and "removed" besides).
 * Returns whether any did. */
bool mr__ticket_changes_json(struct mr_json *j,
                             const struct mr__ticket_state *before,
                             const struct mr__ticket_state *after);
/* ---- outbound.c ---------------------------------------------------------- */

/* Inside the delivering transaction, for a message that opened ticket
 * ticket_id: queues ack (may be NULL: nothing) unless the sender was
 * acknowledged less than ack->window_ms before now (*in_window), and moves
 * the sender's last_ack_at. *queued tells whether a row was written, and
 * msgid (msgid_cap bytes) gets its Message-ID. */
int mr__outbound_ack_in_tx(struct mr__conn *c, const char *tenant,
                           const struct mr_ack_spec *ack, int64_t ticket_id,
                           int64_t number, int64_t now, bool *queued,
                           bool *in_window, char *msgid, size_t msgid_cap,
                           struct mr_error *err);
/* ---- notifications.c ----------------------------------------------------- */

/* Inside the delivering transaction: one pending notification per name of
 * ro->notify_json for (ticket, message row). ro may be NULL. */
int mr__notify_insert_in_tx(struct mr__conn *c, const char *tenant,
                            const struct mr_rules_outcome *ro,
                            int64_t ticket_id, int64_t message_row,
                            int64_t now, struct mr_error *err);

/* ---- tickets.c: one attachment, inside a transaction --------------------- */

/* What mr_store_get_attachment gives, on the caller's connection (so a
 * write op can answer with the row it just changed). MR_ENOTFOUND. */
int mr__attachment_read(struct mr__conn *c, const char *tenant, int64_t id,
                        struct mr_attachment_view *out, struct mr_error *err);

/* ---- migrations.c -------------------------------------------------------- */

/* The newest schema version this binary knows. */
int mr__migrations_latest(void);
/* The version recorded in schema_version, 0 for an empty database. */
int mr__schema_current(struct mr__conn *c, int *version, struct mr_error *err);
/* Applies every pending migration inside the caller's transaction (the
 * writer's batch, or open's own); *from and *to get the versions. */
int mr__migrate_in_tx(struct mr__conn *c, int *from, int *to,
                      struct mr_error *err);

/* ---- for tests and benchmarks only --------------------------------------- */

/* Transactions the writer has committed, requests it has run, and the
 * largest batch so far, since open. */
uint64_t mr_store_debug_commits(struct mr_store *st);
uint64_t mr_store_debug_requests(struct mr_store *st);
uint64_t mr_store_debug_max_batch(struct mr_store *st);
/* Holds the writer (it takes no new batch) or lets it go, so that a test
 * can line up requests and watch them commit as one batch; and how many
 * requests wait in the queue. */
void mr_store_debug_pause(struct mr_store *st, bool paused);
size_t mr_store_debug_queued(struct mr_store *st);
/* Makes the next n COMMITs fail as a real one would (the batch is rolled
 * back and every request of it gets MR_EIO). */
void mr_store_debug_fail_commits(struct mr_store *st, int n);
/* Caps the database at pages pages on the writer connection (SQLite's
 * max_page_count), so that tests can make the disk "full"; 0 lifts it. */
int mr_store_debug_max_pages(struct mr_store *st, int64_t pages,
                             struct mr_error *err);

#endif
