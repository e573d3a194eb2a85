/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/store (SQLite backend): open and migrations, the job
 * queue and its leases, deliver and idempotency, ticket views and paging,
 * tokens, group commit under concurrency, and storage failures (disk full,
 * read-only file). Each test works in its own mkdtemp folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store-private.h"
#include "store/store.h"

#include "store_fixture.h"


static int setup(void **state) { return store_fx_setup(state, "store"); }
static int teardown(void **state) { return store_fx_teardown(state); }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t enqueue1(struct mr_store *st, const char *tenant,
                        const char *key)
{
    struct mr_job_spec s = {
        .tenant = tenant,
        .channel = "smtp",
        .raw_sha256 = "ab12",
        .raw_size = 42,
        .payload = "{\"rcpt_to\":[\"help@example.com\"]}",
        .received_at = 1000,
        .dedupe_key = key,
    };
    int64_t id = 0;
    struct mr_error err = {0};
    int rc = mr_store_enqueue(st, &s, 1, &id, &err);
    if (rc != 0)
        print_error("enqueue: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(id > 0);
    return id;
}

/* Raw SQL on the file, as another process would run it. */

static int64_t raw_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* ---- open and migrations ------------------------------------------------- */

static void migrations_idempotent_and_reopen(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int cur = -1, latest = -1, from = -1, to = -1;
    assert_int_equal(mr_store_schema_version(f->st, &cur, &latest, &err), 0);
    assert_true(latest >= 1);
    assert_int_equal(cur, latest);
    assert_int_equal(mr_store_migrate(f->st, &from, &to, &err), 0);
    assert_int_equal(from, latest);
    assert_int_equal(to, latest);
    int64_t id = enqueue1(f->st, "t", NULL);
    mr_store_close(f->st);
    f->st = NULL;
    /* A clean close checkpoints the WAL into the database and removes it. */
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(access(wal, F_OK), -1);

    /* A current schema opens without migrating, and keeps its rows. */
    assert_int_equal(store_fx_open(f, false, &err), 0);
    struct mr_job job;
    assert_int_equal(mr_store_get_job(f->st, id, &job, &err), 0);
    assert_string_equal(job.tenant, "t");
    mr_job_clear(&job);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM schema_version"),
                     latest);
    mr_store_close(f->st);
    f->st = NULL;

    /* Migrating a current database again changes nothing. */
    assert_int_equal(store_fx_open(f, true, &err), 0);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM schema_version"),
                     latest);
    mr_store_close(f->st);
    f->st = NULL;

    /* A schema from a newer mailroom: refused, with or without migrate. */
    store_fx_exec(f->path,
             "INSERT INTO schema_version (version, applied_at) VALUES (99, 0)");
    assert_int_equal(store_fx_open(f, false, &err), MR_EINVAL);
    assert_non_null(strstr(err.msg, "newer"));
    assert_null(f->st);
    assert_int_equal(store_fx_open(f, true, &err), MR_EINVAL);
    assert_null(f->st);
    store_fx_exec(f->path, "DELETE FROM schema_version WHERE version = 99");
    assert_int_equal(store_fx_open(f, false, &err), 0);
}

static void open_refuses_old_schema_and_bad_urls(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    char path[160], url[200];
    snprintf(path, sizeof path, "%s/fresh.db", f->dir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    struct mr_store *st = NULL;
    struct mr_store_options o = {.url = url};
    /* An empty database is older than this binary: it says what to run. */
    assert_int_equal(mr_store_open(&o, &st, &err), MR_EINVAL);
    assert_null(st);
    assert_non_null(strstr(err.msg, "mailroom migrate"));
    /* The bare path works as well as the URL. */
    o.url = path;
    o.migrate = true;
    assert_int_equal(mr_store_open(&o, &st, &err), 0);
    mr_store_close(st);
    st = NULL;

    /* Someone else's database is not migrated into. */
    snprintf(path, sizeof path, "%s/other.db", f->dir);
    store_fx_exec(path, "CREATE TABLE customers (id INTEGER)");
    o.url = path;
    assert_int_equal(mr_store_open(&o, &st, &err), MR_EINVAL);
    assert_non_null(strstr(err.msg, "not a mailroom database"));

    static const char *const bad[] = {
        "",         "sqlite:",         "postgres://db/mailroom", "mysql://x/y",
        ":memory:", "sqlite::memory:",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.url = bad[i];
        assert_int_equal(mr_store_open(&o, &st, &err), MR_EINVAL);
        assert_null(st);
    }
    o.url = NULL;
    assert_int_equal(mr_store_open(&o, &st, &err), MR_EINVAL);
    /* A missing folder is an I/O problem, not the caller's syntax. */
    snprintf(path, sizeof path, "%s/no/such/folder/x.db", f->dir);
    o.url = path;
    assert_int_equal(mr_store_open(&o, &st, &err), MR_EIO);
    assert_null(st);
    assert_int_equal(mr_store_ping(f->st, &err), 0);
}

/* ---- the queue ----------------------------------------------------------- */

static void enqueue_claim_finish(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t id = enqueue1(f->st, "acme", NULL);
    struct mr_job job;
    assert_int_equal(mr_store_get_job(f->st, id, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_READY);
    assert_string_equal(job.channel, "smtp");
    assert_string_equal(job.raw_sha256, "ab12");
    assert_int_equal(job.raw_size, 42);
    assert_string_equal(job.payload, "{\"rcpt_to\":[\"help@example.com\"]}");
    assert_int_equal(job.received_at, 1000);
    assert_null(job.worker);
    mr_job_clear(&job);

    int64_t now = now_ms();
    assert_int_equal(mr_store_claim_job(f->st, "w1", now, 30000, &job, &err),
                     0);
    assert_int_equal(job.id, id);
    assert_int_equal(job.state, MR_JOB_LEASED);
    assert_string_equal(job.worker, "w1");
    assert_int_equal(job.attempts, 1);
    assert_int_equal(job.lease_until, now + 30000);
    assert_string_equal(job.tenant, "acme");
    mr_job_clear(&job);
    assert_int_equal(mr_store_claim_job(f->st, "w2", now, 30000, &job, &err),
                     MR_ENOTFOUND);

    assert_int_equal(mr_store_finish_job(f->st, id, "w2", &err), MR_ENOTFOUND);
    assert_int_equal(mr_store_finish_job(f->st, id, "w1", &err), 0);
    assert_int_equal(mr_store_get_job(f->st, id, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_DONE);
    assert_null(job.worker);
    mr_job_clear(&job);
    assert_int_equal(mr_store_finish_job(f->st, id, "w1", &err), MR_ENOTFOUND);
    assert_int_equal(mr_store_get_job(f->st, id + 100, &job, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_claim_job(f->st, NULL, now, 1, &job, &err),
                     MR_EINVAL);
}

static void fail_retry_dead(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t id = enqueue1(f->st, "acme", NULL);
    int64_t now = now_ms();
    struct mr_job job;
    assert_int_equal(mr_store_claim_job(f->st, "w1", now, 1000, &job, &err), 0);
    mr_job_clear(&job);
    assert_int_equal(mr_store_fail_job(f->st, id, "w2", "x", now + 5000, &err),
                     MR_ENOTFOUND);
    assert_int_equal(
        mr_store_fail_job(f->st, id, "w1", "parse: boom", now + 5000, &err), 0);
    assert_int_equal(mr_store_get_job(f->st, id, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_READY);
    assert_int_equal(job.not_before, now + 5000);
    assert_string_equal(job.last_error, "parse: boom");
    assert_null(job.worker);
    mr_job_clear(&job);

    /* Not before its time; then claimable, with the attempt counted. */
    assert_int_equal(
        mr_store_claim_job(f->st, "w1", now + 4999, 1000, &job, &err),
        MR_ENOTFOUND);
    assert_int_equal(
        mr_store_claim_job(f->st, "w1", now + 5000, 1000, &job, &err), 0);
    assert_int_equal(job.attempts, 2);
    mr_job_clear(&job);
    assert_int_equal(mr_store_fail_job(f->st, id, "w1", "gave up", -1, &err),
                     0);
    assert_int_equal(mr_store_get_job(f->st, id, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_DEAD);
    assert_string_equal(job.last_error, "gave up");
    mr_job_clear(&job);
    assert_int_equal(
        mr_store_claim_job(f->st, "w1", now + 99999, 1000, &job, &err),
        MR_ENOTFOUND);

    struct mr_store_stats stats;
    assert_int_equal(mr_store_stats(f->st, &stats, &err), 0);
    assert_int_equal(stats.jobs_dead, 1);
    assert_int_equal(stats.jobs_ready, 0);
    struct mr_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(
        mr_store_list_jobs(f->st, MR_JOB_DEAD, 0, 10, &jobs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].id, id);
    mr_job_list_free(jobs, n);
    assert_int_equal(
        mr_store_list_jobs(f->st, MR_JOB_DEAD, id, 10, &jobs, &n, &err), 0);
    assert_int_equal(n, 0);
    mr_job_list_free(jobs, n);

    /* dlq retry: READY now, attempts reset; only a dead job qualifies. */
    assert_int_equal(mr_store_retry_job(f->st, id, &err), 0);
    assert_int_equal(mr_store_get_job(f->st, id, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_READY);
    assert_int_equal(job.attempts, 0);
    mr_job_clear(&job);
    assert_int_equal(mr_store_retry_job(f->st, id, &err), MR_ENOTFOUND);

    /* retry --all */
    int64_t id2 = enqueue1(f->st, "acme", NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            mr_store_claim_job(f->st, "w1", now_ms(), 1000, &job, &err), 0);
        assert_int_equal(mr_store_fail_job(f->st, job.id, "w1", "no", -1, &err),
                         0);
        mr_job_clear(&job);
    }
    int64_t count = 0;
    assert_int_equal(mr_store_retry_dead_jobs(f->st, &count, &err), 0);
    assert_int_equal(count, 2);
    assert_int_equal(mr_store_retry_dead_jobs(f->st, &count, &err), 0);
    assert_int_equal(count, 0);
    assert_int_equal(mr_store_get_job(f->st, id2, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_READY);
    mr_job_clear(&job);
}

static void release_gives_back(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t id = enqueue1(f->st, "acme", NULL);
    struct mr_job job;
    int64_t now = now_ms();
    assert_int_equal(mr_store_claim_job(f->st, "w1", now, 60000, &job, &err),
                     0);
    mr_job_clear(&job);
    assert_int_equal(mr_store_release_job(f->st, id, "w2", &err), MR_ENOTFOUND);
    assert_int_equal(mr_store_release_job(f->st, id, "w1", &err), 0);
    assert_int_equal(mr_store_get_job(f->st, id, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_READY);
    assert_int_equal(job.attempts, 0);
    assert_null(job.worker);
    mr_job_clear(&job);
    /* At once claimable again, by anyone. */
    assert_int_equal(mr_store_claim_job(f->st, "w2", now, 60000, &job, &err),
                     0);
    assert_int_equal(job.id, id);
    assert_int_equal(job.attempts, 1);
    mr_job_clear(&job);
}

static void lease_expiry_reclaims(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t id = enqueue1(f->st, "acme", NULL);
    struct mr_job job;
    int64_t now = now_ms();
    assert_int_equal(mr_store_claim_job(f->st, "w1", now, 1000, &job, &err), 0);
    mr_job_clear(&job);
    assert_int_equal(
        mr_store_claim_job(f->st, "w2", now + 999, 1000, &job, &err),
        MR_ENOTFOUND);
    /* w1 died: after its lease w2 takes the job over. */
    assert_int_equal(
        mr_store_claim_job(f->st, "w2", now + 1001, 1000, &job, &err), 0);
    assert_int_equal(job.id, id);
    assert_string_equal(job.worker, "w2");
    assert_int_equal(job.attempts, 2);
    mr_job_clear(&job);
    /* The slow w1 can no longer touch it. */
    assert_int_equal(mr_store_finish_job(f->st, id, "w1", &err), MR_ENOTFOUND);
    assert_int_equal(mr_store_fail_job(f->st, id, "w1", "late", 0, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_release_job(f->st, id, "w1", &err), MR_ENOTFOUND);
    assert_int_equal(mr_store_finish_job(f->st, id, "w2", &err), 0);
}

static void claim_order_is_oldest_first(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t a = enqueue1(f->st, "t", NULL);
    int64_t b = enqueue1(f->st, "t", NULL);
    int64_t c = enqueue1(f->st, "t", NULL);
    int64_t now = now_ms();
    struct mr_job job;
    assert_int_equal(mr_store_claim_job(f->st, "w", now, 1000, &job, &err), 0);
    assert_int_equal(job.id, a);
    mr_job_clear(&job);
    /* a waits for a retry: b is next, then c, then a expires... no: a is
     * READY again only at now + 10000. */
    assert_int_equal(mr_store_fail_job(f->st, a, "w", "e", now + 10000, &err),
                     0);
    assert_int_equal(mr_store_claim_job(f->st, "w", now, 100, &job, &err), 0);
    assert_int_equal(job.id, b);
    mr_job_clear(&job);
    /* b's lease expires before c is claimed: b (older) comes first. */
    assert_int_equal(mr_store_claim_job(f->st, "w", now + 200, 100, &job, &err),
                     0);
    assert_int_equal(job.id, b);
    mr_job_clear(&job);
    assert_int_equal(mr_store_claim_job(f->st, "w", now + 200, 100, &job, &err),
                     0);
    assert_int_equal(job.id, c);
    mr_job_clear(&job);
    assert_int_equal(
        mr_store_claim_job(f->st, "w", now + 10000, 100, &job, &err), 0);
    assert_int_equal(job.id, a);
    mr_job_clear(&job);
}

static void dedupe_conflict_and_atomic_enqueue(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t first = enqueue1(f->st, "acme", "webhook:<a@x>");
    struct mr_job_spec s = {.tenant = "acme",
                            .channel = "webhook",
                            .payload = "{}",
                            .dedupe_key = "webhook:<a@x>"};
    int64_t id = -1;
    assert_int_equal(mr_store_enqueue(f->st, &s, 1, &id, &err), MR_ECONFLICT);
    assert_int_equal(id, first);
    /* Keys are tenant-scoped. */
    s.tenant = "other";
    assert_int_equal(mr_store_enqueue(f->st, &s, 1, &id, &err), 0);
    assert_true(id > first);

    /* Several tenants in one call: all or nothing. */
    struct mr_job_spec many[3] = {
        {.tenant = "a",
         .channel = "smtp",
         .payload = "{}",
         .dedupe_key = "k-new"},
        {.tenant = "b", .channel = "smtp", .payload = "{}"},
        {.tenant = "acme",
         .channel = "smtp",
         .payload = "{}",
         .dedupe_key = "webhook:<a@x>"},
    };
    int64_t ids[3] = {-1, -1, -1};
    struct mr_store_stats before, after;
    assert_int_equal(mr_store_stats(f->st, &before, &err), 0);
    assert_int_equal(mr_store_enqueue(f->st, many, 3, ids, &err), MR_ECONFLICT);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[2], first);
    assert_int_equal(mr_store_stats(f->st, &after, &err), 0);
    assert_int_equal(after.jobs_ready, before.jobs_ready);

    /* The same key twice in one call conflicts and writes nothing. */
    many[2].tenant = "a";
    many[2].dedupe_key = "k-new";
    assert_int_equal(mr_store_enqueue(f->st, many, 3, ids, &err), MR_ECONFLICT);
    assert_int_equal(mr_store_stats(f->st, &after, &err), 0);
    assert_int_equal(after.jobs_ready, before.jobs_ready);

    many[2].dedupe_key = NULL;
    assert_int_equal(mr_store_enqueue(f->st, many, 3, ids, &err), 0);
    assert_true(ids[0] > 0 && ids[1] > ids[0] && ids[2] > ids[1]);
    assert_int_equal(mr_store_stats(f->st, &after, &err), 0);
    assert_int_equal(after.jobs_ready, before.jobs_ready + 3);

    /* A bad spec anywhere refuses the call before anything is written. */
    many[1].tenant = "";
    assert_int_equal(mr_store_enqueue(f->st, many, 3, ids, &err), MR_EINVAL);
    assert_int_equal(mr_store_enqueue(f->st, many, 0, ids, &err), MR_EINVAL);
    assert_int_equal(mr_store_stats(f->st, &before, &err), 0);
    assert_int_equal(after.jobs_ready, before.jobs_ready);
}

/* ---- messages and tickets ------------------------------------------------ */

static struct mr_message_rec message(const char *tenant, const char *msgid)
{
    static const struct mr_attachment_rec atts[2] = {
        {.filename = "report.pdf",
         .safe_filename = "report.pdf",
         .content_type = "application/pdf",
         .disposition = "attachment",
         .size = 1234,
         .sha256 = "aa11"},
        {.filename = "logo.png",
         .safe_filename = "logo.png",
         .content_type = "image/png",
         .disposition = "inline",
         .content_id = "logo@x",
         .size = 99,
         .sha256 = "bb22"},
    };
    return (struct mr_message_rec){
        .tenant = tenant,
        .inbox = "help@example.com",
        .channel = "smtp",
        .message_id = msgid,
        /* One subject per message: the subject fallback of threading
         * must not join these independent messages. */
        .subject = msgid,
        .from_email = "alice@example.org",
        .from_name = "Alice",
        .text = "It is on fire.",
        .html = "<p>It is on fire.</p>",
        .event_json = "{\"type\":\"email.received\"}",
        .raw_sha256 = "ff00",
        .received_at = 5000,
        .date = 4000,
        .attachments = atts,
        .nattachments = 2,
    };
}

static int64_t deliver(struct mr_store *st, const char *tenant,
                       const char *msgid, struct mr_deliver_result *res)
{
    struct mr_message_rec m = message(tenant, msgid);
    struct mr_error err = {0};
    int rc = mr_store_deliver_message(st, 0, NULL, &m, res, &err);
    if (rc != 0)
        print_error("deliver: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return res->ticket_id;
}

static void deliver_and_duplicate(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t jid = enqueue1(f->st, "acme", NULL);
    struct mr_job job;
    assert_int_equal(
        mr_store_claim_job(f->st, "w1", now_ms(), 60000, &job, &err), 0);
    mr_job_clear(&job);
    struct mr_message_rec m = message("acme", "<m1@example.org>");
    struct mr_deliver_result res;
    /* Not this worker's job: nothing is stored. */
    assert_int_equal(mr_store_deliver_message(f->st, jid, "w9", &m, &res, &err),
                     MR_ENOTFOUND);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM messages"), 0);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM tickets"), 0);

    assert_int_equal(mr_store_deliver_message(f->st, jid, "w1", &m, &res, &err),
                     0);
    assert_true(res.new_ticket);
    assert_false(res.duplicate);
    assert_true(res.ticket_id > 0 && res.message_row > 0);
    assert_int_equal(mr_store_get_job(f->st, jid, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_DONE);
    mr_job_clear(&job);

    struct mr_ticket_view t;
    assert_int_equal(
        mr_store_get_ticket(f->st, "acme", res.ticket_id, &t, &err), 0);
    assert_int_equal(t.number, 1);
    assert_string_equal(t.tenant, "acme");
    assert_string_equal(t.subject, "<m1@example.org>");
    assert_string_equal(t.requester, "alice@example.org");
    assert_string_equal(t.status, "new");
    assert_string_equal(t.priority, "normal");
    assert_string_equal(t.tags_json, "[]");
    assert_null(t.queue);
    assert_null(t.assignee);
    assert_int_equal(t.message_count, 1);
    assert_int_equal(t.nmessages, 1);
    assert_int_equal(t.messages[0].id, res.message_row);
    assert_int_equal(t.messages[0].ticket_id, res.ticket_id);
    assert_string_equal(t.messages[0].message_id, "<m1@example.org>");
    assert_string_equal(t.messages[0].direction, "inbound");
    assert_string_equal(t.messages[0].from_name, "Alice");
    assert_string_equal(t.messages[0].text, "It is on fire.");
    assert_string_equal(t.messages[0].html, "<p>It is on fire.</p>");
    assert_string_equal(t.messages[0].raw_sha256, "ff00");
    assert_string_equal(t.messages[0].event_json,
                        "{\"type\":\"email.received\"}");
    assert_int_equal(t.messages[0].received_at, 5000);
    mr_ticket_view_clear(&t);

    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM attachments "
                                        "WHERE content_id = 'logo@x'"),
                     1);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM attachments"), 2);
    assert_int_equal(raw_count(f->path, "SELECT ticket_id FROM thread_refs "
                                        "WHERE message_id = "
                                        "'<m1@example.org>'"),
                     res.ticket_id);

    /* The three outbox events, in order, each with a JSON payload naming
     * the rows. */
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT type, payload, ticket_id "
                                        "FROM events ORDER BY seq",
                                        -1, &s, NULL),
                     SQLITE_OK);
    static const char *const types[] = {"email.received", "ticket.created",
                                        "message.added"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(s, 0), types[i]);
        json_error_t je;
        json_t *p = json_loads((const char *)sqlite3_column_text(s, 1), 0, &je);
        assert_non_null(p);
        assert_int_equal(json_integer_value(json_object_get(p, "ticket_id")),
                         res.ticket_id);
        assert_int_equal(json_integer_value(json_object_get(p, "message_row")),
                         res.message_row);
        assert_int_equal(json_integer_value(json_object_get(p, "job_id")), jid);
        assert_string_equal(json_string_value(json_object_get(p, "message_id")),
                            "<m1@example.org>");
        json_decref(p);
        assert_int_equal(sqlite3_column_int64(s, 2), res.ticket_id);
    }
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);

    /* The same message again (a second job): a duplicate, the job is done,
     * nothing else is written. */
    int64_t jid2 = enqueue1(f->st, "acme", NULL);
    assert_int_equal(
        mr_store_claim_job(f->st, "w1", now_ms(), 60000, &job, &err), 0);
    assert_int_equal(job.id, jid2);
    mr_job_clear(&job);
    struct mr_deliver_result res2;
    assert_int_equal(
        mr_store_deliver_message(f->st, jid2, "w1", &m, &res2, &err), 0);
    assert_true(res2.duplicate);
    assert_false(res2.new_ticket);
    assert_int_equal(res2.ticket_id, res.ticket_id);
    assert_int_equal(res2.message_row, res.message_row);
    assert_int_equal(mr_store_get_job(f->st, jid2, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_DONE);
    mr_job_clear(&job);
    struct mr_store_stats stats;
    assert_int_equal(mr_store_stats(f->st, &stats, &err), 0);
    assert_int_equal(stats.messages, 1);
    assert_int_equal(stats.tickets, 1);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM events"), 3);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM attachments"), 2);

    /* Bad records are the caller's mistake. */
    m.message_id = NULL;
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &res, &err),
                     MR_EINVAL);
    m.message_id = "<x@y>";
    assert_int_equal(mr_store_deliver_message(f->st, 7, NULL, &m, &res, &err),
                     MR_EINVAL);
}

/* The store runs threading inside the delivering transaction: a reply
 * joins by In-Reply-To, a parent arriving after its reply joins through
 * the reply's references, a stranger's reply joins unverified, and the
 * subject fallback admits the requester only. */
static void deliver_threads_replies(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    struct mr_deliver_result r1, r2, r3, r4, r5;
    struct mr_message_rec m = message("t", "root@x");
    m.subject = "Invoice 2291";
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &r1, &err),
                     0);
    assert_true(r1.new_ticket);
    assert_string_equal(r1.threaded_by, "new");

    /* A reply that names its parent and a grandparent we never saw. */
    struct mr_message_rec reply = message("t", "reply@x");
    const char *refs[] = {"ancestor@x", "root@x"};
    reply.in_reply_to = "root@x";
    reply.references = refs;
    reply.nreferences = 2;
    reply.subject = "Re: Invoice 2291";
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &reply, &r2, &err), 0);
    assert_false(r2.new_ticket);
    assert_int_equal(r2.ticket_id, r1.ticket_id);
    assert_string_equal(r2.threaded_by, "in_reply_to");

    /* The ancestor arrives late: it joins through the reply's references. */
    struct mr_message_rec late = message("t", "ancestor@x");
    late.subject = "Something else entirely";
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &late, &r3, &err),
                     0);
    assert_int_equal(r3.ticket_id, r1.ticket_id);

    /* A stranger with a forged In-Reply-To joins unverified. */
    struct mr_message_rec forged = message("t", "forged@x");
    forged.from_email = "mallory@evil.example";
    forged.in_reply_to = "root@x";
    forged.subject = "Re: Invoice 2291";
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &forged, &r4, &err), 0);
    assert_int_equal(r4.ticket_id, r1.ticket_id);
    assert_true(r4.unverified);

    /* No headers, same requester, same subject after "AW:": joins. */
    struct mr_message_rec again = message("t", "again@x");
    again.subject = "AW: invoice 2291";
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &again, &r5, &err), 0);
    assert_int_equal(r5.ticket_id, r1.ticket_id);
    assert_string_equal(r5.threaded_by, "subject");

    struct mr_ticket_view t;
    assert_int_equal(mr_store_get_ticket(f->st, "t", r1.ticket_id, &t, &err),
                     0);
    assert_int_equal(t.nmessages, 5);
    assert_string_equal(t.requester, "alice@example.org");
    bool saw_unverified = false;
    for (size_t i = 0; i < t.nmessages; i++)
        if (strcmp(t.messages[i].message_id, "forged@x") == 0)
            saw_unverified = t.messages[i].unverified;
    assert_true(saw_unverified);
    mr_ticket_view_clear(&t);

    /* The stranger's copy never became a participant: the subject
     * fallback does not let them in. */
    struct mr_message_rec stranger = message("t", "stranger2@x");
    stranger.from_email = "mallory@evil.example";
    stranger.subject = "Invoice 2291";
    struct mr_deliver_result r6;
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &stranger, &r6, &err), 0);
    assert_true(r6.new_ticket);
}

/* Rules (docs/rules.md): the store applies the outcome threading chose,
 * new ticket or reply; replies append to the trail and change only what
 * a rule set. */
static void deliver_applies_rules(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    const struct mr_rules_outcome as_new = {
        .queue = "finance",
        .tags_add_json = "[\"billing\",\"vip\"]",
        .applied_json = "[{\"name\":\"R1\",\"decision\":\"queue=finance\"}]",
        .matched_json = "[\"R1\"]",
    };
    const struct mr_rules_outcome as_reply = {
        .priority = "high",
        .tags_add_json = "[\"followup\"]",
        .tags_remove_json = "[\"vip\"]",
        .applied_json = "[{\"name\":\"R2\",\"decision\":\"priority=high\"}]",
        .matched_json = "[\"R2\"]",
    };
    struct mr_deliver_result r1, r2;
    struct mr_message_rec m = message("t", "rules-root@x");
    m.rules_new = &as_new;
    m.rules_reply = &as_reply;
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &r1, &err),
                     0);
    assert_true(r1.new_ticket);
    struct mr_ticket_view t;
    assert_int_equal(mr_store_get_ticket(f->st, "t", r1.ticket_id, &t, &err),
                     0);
    assert_string_equal(t.queue, "finance");
    assert_string_equal(t.priority, "normal");
    assert_null(t.assignee);
    assert_string_equal(t.tags_json, "[\"billing\",\"vip\"]");
    assert_string_equal(t.applied_rules_json,
                        "[{\"name\":\"R1\",\"decision\":\"queue=finance\"}]");
    mr_ticket_view_clear(&t);

    struct mr_message_rec reply = message("t", "rules-reply@x");
    reply.in_reply_to = "rules-root@x";
    reply.rules_new = &as_new;
    reply.rules_reply = &as_reply;
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &reply, &r2, &err), 0);
    assert_false(r2.new_ticket);
    assert_int_equal(mr_store_get_ticket(f->st, "t", r1.ticket_id, &t, &err),
                     0);
    assert_string_equal(t.queue, "finance"); /* the reply set none */
    assert_string_equal(t.priority, "high");
    assert_string_equal(t.tags_json, "[\"billing\",\"followup\"]");
    assert_string_equal(t.applied_rules_json,
                        "[{\"name\":\"R1\",\"decision\":\"queue=finance\"},"
                        "{\"name\":\"R2\",\"decision\":\"priority=high\"}]");
    mr_ticket_view_clear(&t);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM messages WHERE"
                                        " matched_rules = '[\"R2\"]'"),
                     1);
}

/* Extracted fields merge into the ticket's, key by key; every message
 * shows the rules it matched. */
static void deliver_merges_fields(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    const struct mr_rules_outcome first = {
        .applied_json = "[]",
        .matched_json = "[\"Invoice\"]",
        .fields_json = "{\"invoice\":\"INV-000001\",\"source\":\"email\"}",
    };
    const struct mr_rules_outcome second = {
        .applied_json = "[]",
        .matched_json = "[]",
        .fields_json = "{\"invoice\":\"INV-000002\"}",
    };
    struct mr_deliver_result r1, r2;
    struct mr_message_rec m = message("t", "fields-root@x");
    m.rules_new = &first;
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &r1, &err),
                     0);
    struct mr_message_rec reply = message("t", "fields-reply@x");
    reply.in_reply_to = "fields-root@x";
    reply.rules_reply = &second;
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &reply, &r2, &err), 0);
    assert_int_equal(r2.ticket_id, r1.ticket_id);
    struct mr_ticket_view t;
    assert_int_equal(mr_store_get_ticket(f->st, "t", r1.ticket_id, &t, &err),
                     0);
    json_t *fields = json_loads(t.fields_json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(fields, "invoice")),
                        "INV-000002");
    assert_string_equal(json_string_value(json_object_get(fields, "source")),
                        "email");
    json_decref(fields);
    assert_int_equal(t.nmessages, 2);
    assert_string_equal(t.messages[0].matched_rules_json, "[\"Invoice\"]");
    assert_string_equal(t.messages[1].matched_rules_json, "[]");
    mr_ticket_view_clear(&t);

    /* A ticket no rule touched: an empty object. */
    struct mr_deliver_result r3;
    deliver(f->st, "t", "fields-none@x", &r3);
    assert_int_equal(mr_store_get_ticket(f->st, "t", r3.ticket_id, &t, &err),
                     0);
    assert_string_equal(t.fields_json, "{}");
    assert_null(t.messages[0].matched_rules_json);
    mr_ticket_view_clear(&t);
}

/* ignore (docs/rules.md): no ticket, the message kept for admins; the
 * outcome threading chose decides; a second copy is a duplicate. */
static void deliver_ignores(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    const struct mr_rules_outcome ignore = {
        .applied_json = "[{\"name\":\"Drop\",\"decision\":\"ignore\"}]",
        .matched_json = "[\"Drop\"]",
        .ignore = true,
    };
    const struct mr_rules_outcome keep = {
        .applied_json = "[{\"name\":\"Tag\",\"decision\":\"tag+=x\"}]",
        .matched_json = "[\"Tag\"]",
        .tags_add_json = "[\"x\"]",
    };
    int64_t tickets0 = raw_count(f->path, "SELECT count(*) FROM tickets");
    int64_t msgs0 = raw_count(f->path, "SELECT count(*) FROM messages");

    /* New: ignored. */
    struct mr_deliver_result r1, r2;
    struct mr_message_rec m = message("t", "ign-1@x");
    m.rules_new = &ignore;
    m.rules_reply = &keep;
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &r1, &err),
                     0);
    assert_true(r1.ignored);
    assert_false(r1.duplicate);
    assert_int_equal(r1.ticket_id, 0);
    assert_true(r1.message_row > 0);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM tickets"),
                     tickets0);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM messages"),
                     msgs0);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM thread_refs"
                                        " WHERE message_id = 'ign-1@x'"),
                     0);
    /* Again, even with rules that would keep it now: a duplicate. */
    m.rules_new = &keep;
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &r2, &err),
                     0);
    assert_true(r2.duplicate);
    assert_true(r2.ignored);
    assert_int_equal(r2.message_row, r1.message_row);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM tickets"),
                     tickets0);

    /* A reply: the reply outcome decides. Kept when it says keep ... */
    struct mr_deliver_result r3, r4, r5;
    deliver(f->st, "t", "ign-root@x", &r3);
    struct mr_message_rec reply = message("t", "ign-reply@x");
    reply.in_reply_to = "ign-root@x";
    reply.rules_new = &ignore;
    reply.rules_reply = &keep;
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &reply, &r4, &err), 0);
    assert_false(r4.ignored);
    assert_int_equal(r4.ticket_id, r3.ticket_id);
    /* ... ignored when it says ignore, leaving the ticket as it was. */
    struct mr_message_rec reply2 = message("t", "ign-reply2@x");
    reply2.in_reply_to = "ign-root@x";
    reply2.rules_new = &keep;
    reply2.rules_reply = &ignore;
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &reply2, &r5, &err), 0);
    assert_true(r5.ignored);
    assert_int_equal(r5.ticket_id, 0);
    struct mr_ticket_view t;
    assert_int_equal(mr_store_get_ticket(f->st, "t", r3.ticket_id, &t, &err),
                     0);
    assert_int_equal(t.nmessages, 2);
    assert_string_equal(t.tags_json, "[\"x\"]");
    mr_ticket_view_clear(&t);

    /* pitfalls.md 9: another mail reusing a kept message's id, ignored
     * under the suffixed id; its second copy is a duplicate of that. */
    struct mr_deliver_result r6, r7, r8;
    struct mr_message_rec kept = message("t", "ign-ck@x");
    kept.content_key =
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &kept, &r6, &err),
                     0);
    struct mr_message_rec other = kept;
    other.subject = "ign-ck other";
    other.content_key =
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    other.rules_new = &ignore;
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &other, &r7, &err), 0);
    assert_true(r7.ignored);
    assert_true(r7.id_reused);
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &other, &r8, &err), 0);
    assert_true(r8.duplicate);
    assert_true(r8.ignored);
    assert_int_equal(r8.message_row, r7.message_row);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM"
                                        " ignored_messages WHERE message_id"
                                        " = 'ign-ck@x#bbbbbbbbbbbb'"),
                     1);

    /* Admins see them, newest first, one page at a time; per tenant. */
    struct mr_ignored_view *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(
        mr_store_list_ignored(f->st, "t", NULL, 1, &v, &n, &next, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].message_id, "ign-ck@x#bbbbbbbbbbbb");
    assert_non_null(next);
    mr_ignored_list_free(v, n);
    char *cur0 = next;
    assert_int_equal(
        mr_store_list_ignored(f->st, "t", cur0, 1, &v, &n, &next, &err), 0);
    free(cur0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].message_id, "ign-reply2@x");
    assert_string_equal(v[0].matched_rules_json, "[\"Drop\"]");
    assert_string_equal(v[0].applied_rules_json,
                        "[{\"name\":\"Drop\",\"decision\":\"ignore\"}]");
    assert_string_equal(v[0].raw_sha256, "ff00");
    assert_string_equal(v[0].from_email, "alice@example.org");
    assert_int_equal(v[0].received_at, 5000);
    assert_non_null(next);
    mr_ignored_list_free(v, n);
    char *cur = next;
    assert_int_equal(
        mr_store_list_ignored(f->st, "t", cur, 10, &v, &n, &next, &err), 0);
    free(cur);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].message_id, "ign-1@x");
    assert_null(next);
    mr_ignored_list_free(v, n);
    assert_int_equal(
        mr_store_list_ignored(f->st, "other", NULL, 10, &v, &n, &next, &err),
        0);
    assert_int_equal(n, 0);
    mr_ignored_list_free(v, n);
    assert_int_equal(
        mr_store_list_ignored(f->st, "t", "1x", 10, &v, &n, &next, &err),
        MR_EINVAL);
}

/* previous_tickets: the sender's tickets in the tenant. */
static void count_requester_tickets(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t n = -1;
    assert_int_equal(mr_store_count_requester_tickets(
                         f->st, "cnt", "alice@example.org", &n, &err),
                     0);
    assert_int_equal(n, 0);
    struct mr_deliver_result r;
    deliver(f->st, "cnt", "cnt-1@x", &r);
    deliver(f->st, "cnt", "cnt-2@x", &r);
    deliver(f->st, "cnt-other", "cnt-3@x", &r);
    assert_int_equal(mr_store_count_requester_tickets(
                         f->st, "cnt", "alice@example.org", &n, &err),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(mr_store_count_requester_tickets(
                         f->st, "cnt", "bob@example.org", &n, &err),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(
        mr_store_count_requester_tickets(f->st, "cnt", NULL, &n, &err), 0);
    assert_int_equal(n, 0);
}

/* pitfalls.md 9: one Message-ID reused for different mail keeps both. */
static void reused_message_id_keeps_both(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    struct mr_deliver_result r1, r2, r3, r4;
    struct mr_message_rec m = message("s", "scan@mfp.example");
    m.content_key = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &r1, &err),
                     0);
    /* The same mail again (a retry, a list copy): a duplicate. */
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &r2, &err),
                     0);
    assert_true(r2.duplicate);
    /* Another scan with the same id: stored, under a suffixed id. */
    struct mr_message_rec other = m;
    other.content_key =
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    other.subject = "Scan from MFP-3 (2)";
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &other, &r3, &err), 0);
    assert_false(r3.duplicate);
    assert_true(r3.id_reused);
    struct mr_message_view v;
    assert_int_equal(mr_store_get_message(f->st, "s", r3.message_row, &v, &err),
                     0);
    assert_string_equal(v.message_id, "scan@mfp.example#bbbbbbbbbbbb");
    assert_non_null(strstr(v.thread_detail, "reused"));
    mr_message_view_clear(&v);
    /* And that second scan delivered again is its duplicate. */
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &other, &r4, &err), 0);
    assert_true(r4.duplicate);
    assert_int_equal(r4.message_row, r3.message_row);
}

/* A job tried before is claimed alone: if it is what kills workers, it
 * must not take a batch of good jobs down with it. */
static void retried_job_claimed_alone(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    for (int i = 0; i < 4; i++) {
        struct mr_job_spec sp = {.tenant = "t", .channel = "smtp",
                                 .raw_sha256 = "aa", .payload = "{}",
                                 .received_at = i};
        int64_t id;
        assert_int_equal(mr_store_enqueue(f->st, &sp, 1, &id, &err), 0);
    }
    struct mr_job one = {0};
    assert_int_equal(mr_store_claim_job(f->st, "w", 1000, 60000, &one, &err),
                     0);
    assert_int_equal(mr_store_fail_job(f->st, one.id, "w", "boom", 0, &err), 0);
    struct mr_job jobs[16];
    size_t n = 0;
    /* The retried job is the oldest: it comes alone. */
    assert_int_equal(mr_store_claim_jobs(f->st, "w", 2000, 60000, 16, jobs, &n,
                                         &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].id, one.id);
    assert_int_equal(jobs[0].attempts, 2);
    mr_job_clear(&jobs[0]);
    /* The fresh ones come together. */
    assert_int_equal(mr_store_claim_jobs(f->st, "w", 3000, 60000, 16, jobs, &n,
                                         &err), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(jobs[i].attempts, 1);
        mr_job_clear(&jobs[i]);
    }
    mr_job_clear(&one);
}

static void ticket_numbers_and_tenant_isolation(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    struct mr_deliver_result r;
    int64_t a1 = deliver(f->st, "a", "<1@x>", &r);
    int64_t b1 = deliver(f->st, "b", "<1@x>", &r); /* same id, other tenant */
    assert_false(r.duplicate);
    int64_t a2 = deliver(f->st, "a", "<2@x>", &r);
    int64_t a3 = deliver(f->st, "a", "<3@x>", &r);
    int64_t b2 = deliver(f->st, "b", "<2@x>", &r);
    const struct {
        const char *tenant;
        int64_t id, number;
    } want[] = {
        {"a", a1, 1}, {"a", a2, 2}, {"a", a3, 3}, {"b", b1, 1}, {"b", b2, 2}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct mr_ticket_view t;
        assert_int_equal(
            mr_store_get_ticket(f->st, want[i].tenant, want[i].id, &t, &err),
            0);
        assert_int_equal(t.number, want[i].number);
        mr_ticket_view_clear(&t);
        /* The other tenant cannot see it. */
        const char *other = want[i].tenant[0] == 'a' ? "b" : "a";
        assert_int_equal(
            mr_store_get_ticket(f->st, other, want[i].id, &t, &err),
            MR_ENOTFOUND);
        assert_int_equal(t.nmessages, 0);
    }
    struct mr_ticket_view *list = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(
        mr_store_list_tickets(f->st, "b", NULL, NULL, 0, &list, &n, &next, &err), 0);
    assert_int_equal(n, 2);
    assert_null(next);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].tenant, "b");
        assert_null(list[i].messages);
        assert_int_equal(list[i].message_count, 1);
    }
    mr_ticket_list_free(list, n);
    assert_int_equal(
        mr_store_list_tickets(f->st, "nobody", NULL, NULL, 0, &list, &n, &next, &err),
        0);
    assert_int_equal(n, 0);
    assert_null(next);
    mr_ticket_list_free(list, n);
}

static void cursor_paging(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    /* 7 tickets, two of them sharing updated_at so that the id breaks the
     * tie (with pages of 2 the tie falls on a page boundary), and one in
     * another tenant that must never show up. */
    store_fx_exec(f->path,
             "INSERT INTO tickets (tenant, number, subject, created_at,"
             " updated_at) VALUES"
             " ('p', 1, 's1', 1, 100), ('p', 2, 's2', 1, 300),"
             " ('p', 3, 's3', 1, 200), ('p', 4, 's4', 1, 300),"
             " ('p', 5, 's5', 1, 50),  ('q', 1, 'other', 1, 250),"
             " ('p', 6, 's6', 1, 400), ('p', 7, 's7', 1, 10)");
    /* Expected order: updated_at desc, id desc. */
    static const int64_t order[] = {6, 4, 2, 3, 1, 5, 7}; /* numbers */
    char *cursor = NULL;
    size_t seen = 0;
    int pages = 0;
    int64_t prev_u = INT64_MAX, prev_id = INT64_MAX;
    do {
        struct mr_ticket_view *t = NULL;
        size_t n = 0;
        char *next = NULL;
        assert_int_equal(
            mr_store_list_tickets(f->st, "p", NULL, cursor, 2, &t, &n, &next, &err),
            0);
        pages++;
        assert_true(n <= 2);
        for (size_t i = 0; i < n; i++) {
            assert_true(seen < 7);
            assert_int_equal(t[i].number, order[seen]);
            assert_string_equal(t[i].tenant, "p");
            assert_true(t[i].updated_at < prev_u ||
                        (t[i].updated_at == prev_u && t[i].id < prev_id));
            prev_u = t[i].updated_at;
            prev_id = t[i].id;
            seen++;
        }
        mr_ticket_list_free(t, n);
        free(cursor);
        cursor = next;
    } while (cursor != NULL && pages < 10);
    assert_int_equal(seen, 7);
    assert_int_equal(pages, 4);

    static const char *const bad[] = {
        "",
        "abc",
        "1.",
        ".1",
        "1.0",
        "1.2.3",
        "-1.2",
        "1 .2",
        "1.2 ",
        "+1.2",
        "1.-2",
        "0x1.2",
        "1.2x",
        "9999999999999999999.1",
        "1.99999999999999999999",
        "1111111111111111111111111111111111111111111111111.1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mr_ticket_view *t = (void *)1;
        size_t n = 9;
        char *next = (void *)1;
        assert_int_equal(
            mr_store_list_tickets(f->st, "p", NULL, bad[i], 3, &t, &n, &next, &err),
            MR_EINVAL);
        assert_null(t);
        assert_int_equal(n, 0);
        assert_null(next);
    }

    /* Limits: 0 is the default (50), more than 200 is 200. */
    store_fx_exec(f->path,
             "WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM k"
             " WHERE x < 250) INSERT INTO tickets (tenant, number, created_at,"
             " updated_at) SELECT 'many', x, 1, x FROM k");
    struct mr_ticket_view *t = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(
        mr_store_list_tickets(f->st, "many", NULL, NULL, 0, &t, &n, &next, &err), 0);
    assert_int_equal(n, 50);
    assert_non_null(next);
    assert_int_equal(t[0].number, 250);
    mr_ticket_list_free(t, n);
    free(next);
    assert_int_equal(
        mr_store_list_tickets(f->st, "many", NULL, NULL, 5000, &t, &n, &next, &err),
        0);
    assert_int_equal(n, 200);
    assert_int_equal(t[199].number, 51);
    mr_ticket_list_free(t, n);
    char *cursor2 = next;
    assert_int_equal(mr_store_list_tickets(f->st, "many", NULL, cursor2, 5000, &t, &n,
                                           &next, &err),
                     0);
    free(cursor2);
    assert_int_equal(n, 50);
    assert_null(next);
    assert_int_equal(t[49].number, 1);
    mr_ticket_list_free(t, n);
}

/* ---- tokens -------------------------------------------------------------- */

#define HASH_A                                                                 \
    "a3f5c0de00000000000000000000000000000000000000000000000000000001"
#define HASH_B                                                                 \
    "b3f5c0de00000000000000000000000000000000000000000000000000000002"

static void tokens_add_find_list_revoke(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t a = 0, b = 0;
    assert_int_equal(mr_store_token_add(f->st, "acme", "admin", HASH_A,
                                        "mr_abc", "ops", &a, &err),
                     0);
    assert_int_equal(mr_store_token_add(f->st, "other", "ingest", HASH_B,
                                        "mr_def", NULL, &b, &err),
                     0);
    assert_true(b > a && a > 0);
    assert_int_equal(mr_store_token_add(f->st, "acme", "agent", HASH_A, "p",
                                        NULL, NULL, &err),
                     MR_ECONFLICT);
    assert_int_equal(mr_store_token_add(f->st, "acme", "root", HASH_B "0", "p",
                                        NULL, NULL, &err),
                     MR_EINVAL);
    assert_int_equal(
        mr_store_token_add(f->st, "acme", "read", "abc", "p", NULL, NULL, &err),
        MR_EINVAL);
    assert_int_equal(
        mr_store_token_add(f->st, "", "read", HASH_B, "p", NULL, NULL, &err),
        MR_EINVAL);

    struct mr_token_rec t;
    assert_int_equal(mr_store_token_find(f->st, HASH_A, &t, &err), 0);
    assert_int_equal(t.id, a);
    assert_string_equal(t.tenant, "acme");
    assert_string_equal(t.role, "admin");
    assert_string_equal(t.prefix, "mr_abc");
    assert_string_equal(t.label, "ops");
    assert_false(t.revoked);
    assert_true(t.created_at > 0);
    mr_token_rec_clear(&t);
    assert_int_equal(
        mr_store_token_find(f->st,
                            "A3F5C0DE00000000000000000000000000000000"
                            "000000000000000000000001",
                            &t, &err),
        0);
    mr_token_rec_clear(&t);
    assert_int_equal(mr_store_token_find(f->st, HASH_B "x", &t, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_token_find(f->st, NULL, &t, &err), MR_ENOTFOUND);

    /* last_used_at is written behind the request; a ping queued after it
     * runs after it. */
    assert_int_equal(mr_store_ping(f->st, &err), 0);
    struct mr_token_rec *list = NULL;
    size_t n = 0;
    assert_int_equal(mr_store_token_list(f->st, NULL, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, a);
    assert_true(list[0].last_used_at > 0);
    assert_int_equal(list[1].id, b);
    assert_int_equal(list[1].last_used_at, 0);
    assert_null(list[1].label);
    mr_token_list_free(list, n);
    assert_int_equal(mr_store_token_list(f->st, "other", &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].role, "ingest");
    mr_token_list_free(list, n);

    assert_int_equal(mr_store_token_revoke(f->st, a, &err), 0);
    assert_int_equal(mr_store_token_revoke(f->st, a, &err), MR_ENOTFOUND);
    assert_int_equal(mr_store_token_revoke(f->st, 999, &err), MR_ENOTFOUND);
    assert_int_equal(mr_store_token_find(f->st, HASH_A, &t, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_token_list(f->st, "acme", &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_true(list[0].revoked);
    mr_token_list_free(list, n);
}

/* ---- group commit -------------------------------------------------------- */

#define THREADS 8
#define PER_THREAD 200

struct producer {
    struct mr_store *st;
    int index;
    int64_t ids[PER_THREAD];
    int failures;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char payload[64];
        snprintf(payload, sizeof payload, "{\"t\":%d,\"i\":%d}", p->index, i);
        struct mr_job_spec s = {.tenant = "load",
                                .channel = "smtp",
                                .raw_sha256 = "0123",
                                .raw_size = 100,
                                .payload = payload,
                                .received_at = i};
        struct mr_error err = {0};
        if (mr_store_enqueue(p->st, &s, 1, &p->ids[i], &err) != 0)
            p->failures++;
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void concurrent_enqueue_group_commit(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    static struct producer prod[THREADS];
    pthread_t tid[THREADS];
    uint64_t commits0 = mr_store_debug_commits(f->st);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < THREADS; i++) {
        prod[i] = (struct producer){.st = f->st, .index = i};
        assert_int_equal(pthread_create(&tid[i], NULL, produce, &prod[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    uint64_t commits = mr_store_debug_commits(f->st) - commits0;

    static int64_t all[THREADS * PER_THREAD];
    size_t k = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(prod[i].failures, 0);
        for (int j = 0; j < PER_THREAD; j++)
            all[k++] = prod[i].ids[j];
    }
    qsort(all, k, sizeof all[0], cmp_i64);
    for (size_t i = 0; i < k; i++) {
        assert_true(all[i] > 0);
        if (i > 0)
            assert_true(all[i] != all[i - 1]);
    }
    /* Batching happened: fewer transactions than requests. */
    assert_true(commits < (uint64_t)(THREADS * PER_THREAD));
    assert_true(mr_store_debug_max_batch(f->st) > 1);
    print_message("[ store ] enqueue: %d jobs from %d threads in %.3f s = "
                  "%.0f jobs/s, %llu commits (%.1f jobs per commit, largest "
                  "batch %llu)\n",
                  THREADS * PER_THREAD, THREADS, secs,
                  (double)(THREADS * PER_THREAD) / secs,
                  (unsigned long long)commits,
                  (double)(THREADS * PER_THREAD) / (double)commits,
                  (unsigned long long)mr_store_debug_max_batch(f->st));

    /* Durable: all of them are there after a close and reopen. */
    mr_store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_fx_open(f, false, &err), 0);
    struct mr_store_stats stats;
    assert_int_equal(mr_store_stats(f->st, &stats, &err), 0);
    assert_int_equal(stats.jobs_ready, THREADS * PER_THREAD);
    assert_int_equal(raw_count(f->path, "SELECT count(DISTINCT payload) FROM "
                                        "jobs"),
                     THREADS * PER_THREAD);
}

struct one_enqueue {
    struct mr_store *st;
    const char *key;
    const char *payload;
    int64_t id;
    int rc;
    struct mr_error err;
};

static void *enqueue_thread(void *arg)
{
    struct one_enqueue *e = arg;
    struct mr_job_spec s = {.tenant = "iso",
                            .channel = "http",
                            .payload = e->payload ? e->payload : "{}",
                            .dedupe_key = e->key};
    e->rc = mr_store_enqueue(e->st, &s, 1, &e->id, &e->err);
    return NULL;
}

/* Lines requests up behind a paused writer, so that they share one batch. */
static void run_one_batch(struct mr_store *st, struct one_enqueue *e, size_t n)
{
    pthread_t tid[8];
    mr_store_debug_pause(st, true);
    for (size_t i = 0; i < n; i++) {
        e[i].st = st;
        assert_int_equal(pthread_create(&tid[i], NULL, enqueue_thread, &e[i]),
                         0);
    }
    for (int wait = 0; wait < 5000 && mr_store_debug_queued(st) < n; wait++)
        usleep(1000);
    assert_int_equal(mr_store_debug_queued(st), n);
    mr_store_debug_pause(st, false);
    for (size_t i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
}

static void failing_request_fails_alone(void **state)
{
    struct fx *f = *state;
    int64_t first = 0;
    {
        struct one_enqueue e = {.st = f->st, .key = "dup"};
        enqueue_thread(&e);
        assert_int_equal(e.rc, 0);
        first = e.id;
    }
    uint64_t c0 = mr_store_debug_commits(f->st);
    struct one_enqueue e[3] = {{.key = "k1"}, {.key = "dup"}, {.key = "k2"}};
    run_one_batch(f->st, e, 3);
    assert_int_equal(mr_store_debug_commits(f->st), c0 + 1);
    assert_true(mr_store_debug_max_batch(f->st) >= 3);
    assert_int_equal(e[0].rc, 0);
    assert_int_equal(e[1].rc, MR_ECONFLICT);
    assert_int_equal(e[1].id, first);
    assert_int_equal(e[2].rc, 0);
    assert_true(e[0].id > first && e[2].id > first && e[0].id != e[2].id);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM jobs"), 3);
}

static void group_commit_max_bounds_a_batch(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    mr_store_close(f->st);
    struct mr_store_options o = {
        .url = f->url, .group_commit_max = 2, .read_connections = 1};
    assert_int_equal(mr_store_open(&o, &f->st, &err), 0);
    struct one_enqueue e[5] = {
        {.key = "a"}, {.key = "b"}, {.key = "c"}, {.key = "d"}, {.key = "e"}};
    run_one_batch(f->st, e, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(e[i].rc, 0);
    assert_int_equal(mr_store_debug_commits(f->st), 3);
    assert_int_equal(mr_store_debug_max_batch(f->st), 2);
    assert_int_equal(mr_store_debug_requests(f->st), 5);
}

static void failed_commit_fails_the_batch(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    uint64_t c0 = mr_store_debug_commits(f->st);
    mr_store_debug_fail_commits(f->st, 1);
    struct one_enqueue e[4] = {
        {.key = "a"}, {.key = "b"}, {.key = "c"}, {.key = "d"}};
    run_one_batch(f->st, e, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(e[i].rc, MR_EIO);
        assert_int_equal(e[i].id, 0);
        assert_non_null(strstr(e[i].err.msg, "injected"));
    }
    assert_int_equal(mr_store_debug_commits(f->st), c0);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM jobs"), 0);
    /* The next batch commits normally. */
    run_one_batch(f->st, e, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(e[i].rc, 0);
    assert_int_equal(mr_store_debug_commits(f->st), c0 + 1);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM jobs"), 4);
    assert_int_equal(mr_store_ping(f->st, &err), 0);
}

/* ---- storage failures ---------------------------------------------------- */

static void disk_full_is_eio(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    enqueue1(f->st, "t", NULL);
    /* The database may not grow by a page: as good as a full disk. */
    assert_int_equal(mr_store_debug_max_pages(f->st, 1, &err), 0);
    size_t big = 256 * 1024;
    char *payload = malloc(big + 1);
    memset(payload, 'x', big);
    payload[big] = '\0';
    struct mr_job_spec s = {
        .tenant = "t", .channel = "smtp", .payload = payload};
    int64_t id = -1;
    assert_int_equal(mr_store_enqueue(f->st, &s, 1, &id, &err), MR_EIO);
    assert_non_null(strstr(err.msg, "full"));
    assert_int_equal(id, 0);

    /* In one batch with two small requests: the big one fails with MR_EIO;
     * the others either commit or fail with it, and exactly those that
     * reported success are stored. */
    struct one_enqueue e[3] = {
        {.key = "a"}, {.key = "b", .payload = payload}, {.key = "c"}};
    run_one_batch(f->st, e, 3);
    assert_int_equal(e[1].rc, MR_EIO);
    for (int i = 0; i < 3; i += 2)
        assert_true(e[i].rc == 0 || e[i].rc == MR_EIO);
    if (getenv("MR_TEST_VERBOSE"))
        fprintf(stderr, "disk full batch: %d %d %d (%s)\n", e[0].rc, e[1].rc,
                e[2].rc, e[1].err.msg);

    struct mr_store_stats stats;
    assert_int_equal(mr_store_stats(f->st, &stats, &err), 0);
    int64_t ok = 0;
    for (int i = 0; i < 3; i++)
        ok += e[i].rc == 0;
    assert_int_equal(stats.jobs_ready, 1 + ok);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM jobs WHERE "
                                        "dedupe_key IS NOT NULL"),
                     ok);

    /* Space again: the store carries on. */
    assert_int_equal(mr_store_debug_max_pages(f->st, 0, &err), 0);
    assert_int_equal(mr_store_enqueue(f->st, &s, 1, &id, &err), 0);
    assert_true(id > 0);
    assert_int_equal(mr_store_ping(f->st, &err), 0);
    free(payload);
}

/* Runs in a child that has given up root (root ignores file modes). */
static int read_only_child(void)
{
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
        return 10;
    char dir[] = "/tmp/mr-store-ro-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 11;
    char path[128], url[160];
    snprintf(path, sizeof path, "%s/ro.db", dir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    struct mr_store_options o = {.url = url, .migrate = true};
    struct mr_store *st = NULL;
    struct mr_error err = {0};
    int result = 0;
    if (mr_store_open(&o, &st, &err) != 0)
        return 12;
    mr_store_close(st);
    st = NULL;
    /* The file read-only, its folder still writable. */
    chmod(path, 0444);
    int rc = mr_store_open(&o, &st, &err);
    if (getenv("MR_TEST_VERBOSE"))
        fprintf(stderr, "read-only file: open %d %s\n", rc, err.msg);
    if (rc == 0) {
        struct mr_job_spec s = {
            .tenant = "t", .channel = "smtp", .payload = "{}"};
        int64_t id;
        rc = mr_store_enqueue(st, &s, 1, &id, &err);
        if (getenv("MR_TEST_VERBOSE"))
            fprintf(stderr, "read-only file: enqueue %d %s\n", rc, err.msg);
        if (rc != MR_EIO)
            result = 20;
        else if (strstr(err.msg, "readonly") == NULL &&
                 strstr(err.msg, "read-only") == NULL)
            result = 21;
        if (mr_store_ping(st, &err) != MR_EIO)
            result = 22;
        mr_store_close(st);
        st = NULL;
    } else if (rc != MR_EIO) {
        result = 23;
    }
    /* And the folder read-only too, the file writable again. */
    chmod(path, 0644);
    chmod(dir, 0555);
    rc = mr_store_open(&o, &st, &err);
    if (getenv("MR_TEST_VERBOSE"))
        fprintf(stderr, "read-only folder: open %d %s\n", rc, err.msg);
    if (rc == 0) {
        struct mr_job_spec s = {
            .tenant = "t", .channel = "smtp", .payload = "{}"};
        int64_t id;
        rc = mr_store_enqueue(st, &s, 1, &id, &err);
        if (getenv("MR_TEST_VERBOSE"))
            fprintf(stderr, "read-only folder: enqueue %d %s\n", rc, err.msg);
        if (rc != MR_EIO)
            result = result ? result : 30;
        mr_store_close(st);
    } else if (rc != MR_EIO) {
        result = result ? result : 31;
    }
    chmod(dir, 0755);
    char p[160];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
    return result;
}

static void read_only_database_is_eio(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(read_only_child());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrations_idempotent_and_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(open_refuses_old_schema_and_bad_urls,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(enqueue_claim_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(fail_retry_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(release_gives_back, setup, teardown),
        cmocka_unit_test_setup_teardown(lease_expiry_reclaims, setup, teardown),
        cmocka_unit_test_setup_teardown(claim_order_is_oldest_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(dedupe_conflict_and_atomic_enqueue,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(deliver_and_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(deliver_threads_replies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(deliver_merges_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(deliver_ignores, setup, teardown),
        cmocka_unit_test_setup_teardown(count_requester_tickets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(deliver_applies_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(reused_message_id_keeps_both, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(retried_job_claimed_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ticket_numbers_and_tenant_isolation,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(cursor_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(tokens_add_find_list_revoke, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(concurrent_enqueue_group_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failing_request_fails_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(group_commit_max_bounds_a_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failed_commit_fails_the_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(disk_full_is_eio, setup, teardown),
        cmocka_unit_test(read_only_database_is_eio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
