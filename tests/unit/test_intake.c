/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/ticket (intake and the worker pipeline) on the real
 * SQLite store and blob folder in a mkdtemp folder: routing recipients to
 * tenants, one job per tenant, the provider webhook's dedupe, a job run to
 * a stored ticket, retries with backoff and the dead-letter cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ticket/intake.h"
#include "ticket/worker.h"

static const char config_yaml[] =
    "data_dir: %s\n"
    "workers: {count: 1, max_attempts: 3, backoff_base: 1s}\n"
    "webhook: {secret: \"0123456789abcdef0123\", tenant: acme}\n"
    "tenants:\n"
    "  - name: acme\n"
    "    inboxes:\n"
    "      - support@acme.test\n"
    "      - address: \"help+{team}@acme.test\"\n"
    "        name: help\n"
    "  - name: globex\n"
    "    inboxes: [\"*@globex.test\"]\n";

struct fx {
    char dir[64];
    struct mr_config *cfg;
    struct mr_store *st;
    struct mr_blob *blob;
    struct mr_metrics metrics;
    struct mr_intake *in;
    struct mr_worker_deps deps;
};

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mr-intake-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[128];
    snprintf(path, sizeof path, "%s/mailroom.yaml", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, config_yaml, f->dir);
    fclose(fp);
    struct mr_error err = {0};
    struct mr_config_diags d = {0};
    int rc = mr_config_load(path, NULL, &f->cfg, &d, &err);
    if (rc != 0 && d.n)
        fprintf(stderr, "config: %d:%d %s\n", d.items[0].line,
                d.items[0].column, d.items[0].msg);
    mr_config_diags_free(&d);
    assert_int_equal(rc, 0);
    struct mr_store_options so = {.url = f->cfg->database, .migrate = true};
    assert_int_equal(mr_store_open(&so, &f->st, &err), 0);
    assert_int_equal(mr_blob_open_fs(f->cfg->blob_dir, &f->blob, &err), 0);
    assert_int_equal(mr_intake_new(f->cfg, f->st, f->blob, &f->metrics,
                                   &f->in, &err), 0);
    f->deps = (struct mr_worker_deps){f->cfg, f->st, f->blob, &f->metrics,
                                      NULL, NULL};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mr_intake_free(f->in);
    mr_store_close(f->st);
    mr_blob_close(f->blob);
    mr_config_free(f->cfg);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static const char msg1[] =
    "From: Alice <alice@customer.test>\r\n"
    "To: support@acme.test, sales@globex.test\r\n"
    "Subject: Invoice question\r\n"
    "Message-ID: <inv-1@customer.test>\r\n"
    "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\nWhere is my invoice?\r\n"
    "--b\r\nContent-Type: text/csv; name=a.csv\r\n"
    "Content-Disposition: attachment; filename=a.csv\r\n\r\n1,2,3\r\n"
    "--b--\r\n";

/* Claims the next job as "w" and runs it; -> run result. */
static int run_next(struct fx *f, struct mr_job *job)
{
    struct mr_error err = {0};
    int64_t now = (int64_t)time(NULL) * 1000 + 10 * 3600 * 1000LL;
    int rc = mr_store_claim_job(f->st, "w", now, 60000, job, &err);
    if (rc != 0)
        return rc;
    return mr_worker_run_job(&f->deps, job, "w", &err);
}

/* msg1 over SMTP from alice to rcpt[0..n): must be accepted. */
static void accept_msg1(struct fx *f, const char **rcpt, size_t n,
                        struct mr_intake_result *res)
{
    struct mr_intake_env env = {.channel = MR_CH_SMTP,
                                .mail_from = "alice@customer.test",
                                .rcpt = rcpt,
                                .nrcpt = n,
                                .remote_ip = "127.0.0.1"};
    struct mr_error err = {0};
    assert_int_equal(mr_intake_accept_raw(f->in, &env, msg1, sizeof msg1 - 1,
                                          res, &err),
                     0);
}

static void one_job_per_tenant_and_stored(void **state)
{
    struct fx *f = *state;
    const char *rcpt[] = {"Support@ACME.test", "sales@globex.test",
                          "nobody@else.test", "help+billing@acme.test"};
    struct mr_intake_result res;
    struct mr_error err = {0};
    accept_msg1(f, rcpt, 4, &res);
    assert_int_equal(res.njobs, 2);
    assert_int_equal(strlen(res.raw_sha256), 64);
    /* Small: kept in the database with the jobs, no blob file. */
    char *kept = NULL;
    size_t kept_len = 0;
    assert_int_equal(mr_store_get_raw(f->st, res.raw_sha256, &kept, &kept_len,
                                      &err),
                     0);
    assert_int_equal(kept_len, sizeof msg1 - 1);
    assert_memory_equal(kept, msg1, kept_len);
    free(kept);
    assert_int_equal(mr_blob_stat(f->blob, res.raw_sha256, NULL, &err),
                     MR_ENOTFOUND);

    struct mr_job j1 = {0}, j2 = {0};
    assert_int_equal(run_next(f, &j1), 0);
    assert_string_equal(j1.tenant, "acme");
    json_t *p = json_loads(j1.payload, 0, NULL);
    assert_non_null(p);
    /* acme got its two recipients, not globex's or the unknown one. */
    assert_int_equal(json_array_size(json_object_get(p, "rcpt_to")), 2);
    assert_string_equal(json_string_value(json_object_get(p, "inbox")),
                        "support@acme.test");
    json_decref(p);
    assert_int_equal(run_next(f, &j2), 0);
    assert_string_equal(j2.tenant, "globex");

    struct mr_ticket_view *t = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(mr_store_list_tickets(f->st, "acme", NULL, NULL, 10, &t, &n,
                                           &next, &err),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].subject, "Invoice question");
    struct mr_ticket_view full = {0};
    assert_int_equal(mr_store_get_ticket(f->st, "acme", t[0].id, &full, &err),
                     0);
    assert_int_equal(full.nmessages, 1);
    assert_string_equal(full.messages[0].message_id, "inv-1@customer.test");
    json_t *ev = json_loads(full.messages[0].event_json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(ev, "tenant")),
                        "acme");
    assert_string_equal(json_string_value(json_object_get(ev, "channel")),
                        "smtp");
    json_t *att = json_array_get(json_object_get(ev, "attachments"), 0);
    const char *sha = json_string_value(json_object_get(att, "sha256"));
    /* The attachment's bytes were streamed into the blob store. */
    uint64_t size = 0;
    assert_int_equal(mr_blob_stat(f->blob, sha, &size, &err), 0);
    assert_int_equal(size, 5);
    json_decref(ev);
    mr_ticket_view_clear(&full);
    mr_ticket_list_free(t, n);
    free(next);

    /* The sender sends it again (our 250 was lost): stored once. */
    accept_msg1(f, rcpt, 1, &res);
    struct mr_job j3 = {0};
    assert_int_equal(run_next(f, &j3), 0);
    assert_int_equal(f->metrics.duplicates, 1);
    assert_int_equal(mr_store_list_tickets(f->st, "acme", NULL, NULL, 10, &t, &n,
                                           &next, &err),
                     0);
    assert_int_equal(n, 1);
    mr_ticket_list_free(t, n);
    free(next);
    mr_job_clear(&j1);
    mr_job_clear(&j2);
    mr_job_clear(&j3);
}

/* Over storage.inline_max the raw message is a blob file, not a row, and
 * the worker reads it from there all the same. */
static void large_raw_goes_to_the_blob_folder(void **state)
{
    struct fx *f = *state;
    f->cfg->inline_max = 64;
    const char *rcpt[] = {"support@acme.test"};
    struct mr_intake_result res;
    struct mr_error err = {0};
    accept_msg1(f, rcpt, 1, &res);
    uint64_t size = 0;
    assert_int_equal(mr_blob_stat(f->blob, res.raw_sha256, &size, &err), 0);
    assert_int_equal(size, sizeof msg1 - 1);
    char *kept = NULL;
    size_t kept_len = 0;
    assert_int_equal(mr_store_get_raw(f->st, res.raw_sha256, &kept, &kept_len,
                                      &err),
                     MR_ENOTFOUND);
    assert_null(kept);
    struct mr_job j = {0};
    assert_int_equal(run_next(f, &j), 0);
    mr_job_clear(&j);
    struct mr_store_stats st;
    assert_int_equal(mr_store_stats(f->st, &st, &err), 0);
    assert_int_equal(st.messages, 1);
}

static void refusals(void **state)
{
    struct fx *f = *state;
    const char *unknown[] = {"nobody@else.test"};
    struct mr_intake_env env = {.channel = MR_CH_PIPE, .rcpt = unknown,
                                .nrcpt = 1};
    struct mr_intake_result res;
    struct mr_error err = {0};
    assert_int_equal(mr_intake_accept_raw(f->in, &env, msg1, sizeof msg1 - 1,
                                          &res, &err),
                     MR_ENOTFOUND);
    env.rcpt = (const char *[]){"support@acme.test"};
    assert_int_equal(mr_intake_accept_raw(f->in, &env, "", 0, &res, &err),
                     MR_EINVAL);
    env.tenant = "nosuch";
    assert_int_equal(mr_intake_accept_raw(f->in, &env, msg1, sizeof msg1 - 1,
                                          &res, &err),
                     MR_ENOTFOUND);
}

static void header_recipients(void **state)
{
    (void)state;
    char **list = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_intake_header_recipients(msg1, sizeof msg1 - 1, 10, &list,
                                                 &n, &err),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0], "support@acme.test");
    assert_string_equal(list[1], "sales@globex.test");
    mr_intake_free_list(list, n);
}

static void webhook_event_dedupe_and_store(void **state)
{
    struct fx *f = *state;
    const char ev[] =
        "{\"message_id\":\"<CAF=hook-1@mail.customer.test>\","
        "\"from\":{\"email\":\"dana@customer.test\",\"name\":\"Dana\"},"
        "\"to\":[{\"email\":\"support@acme.test\",\"name\":\"\"}],"
        "\"subject\":\"Order late\",\"text\":\"Hello\",\"attachments\":"
        "[{\"filename\":\"a.pdf\",\"content_type\":\"application/pdf\","
        "\"size\":12,\"url\":\"https://provider.test/a.pdf\"}]}";
    struct mr_intake_result res;
    struct mr_error err = {0};
    assert_int_equal(mr_intake_accept_event(f->in, ev, sizeof ev - 1, &res,
                                            &err),
                     0);
    assert_false(res.duplicate);
    assert_int_equal(mr_intake_accept_event(f->in, ev, sizeof ev - 1, &res,
                                            &err),
                     0);
    assert_true(res.duplicate);
    assert_int_equal(mr_intake_accept_event(f->in, "{\"subject\":1}", 13,
                                            &res, &err),
                     MR_EINVAL);
    assert_int_equal(mr_intake_accept_event(f->in, "[", 1, &res, &err),
                     MR_EINVAL);

    struct mr_job job = {0};
    assert_int_equal(run_next(f, &job), 0);
    assert_string_equal(job.channel, "webhook");
    struct mr_ticket_view *t = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(mr_store_list_tickets(f->st, "acme", NULL, NULL, 10, &t, &n,
                                           &next, &err),
                     0);
    assert_int_equal(n, 1);
    struct mr_ticket_view full = {0};
    assert_int_equal(mr_store_get_ticket(f->st, "acme", t[0].id, &full, &err),
                     0);
    /* Normalized as the MIME parser does: no brackets. */
    assert_string_equal(full.messages[0].message_id,
                        "CAF=hook-1@mail.customer.test");
    assert_string_equal(full.messages[0].from_email, "dana@customer.test");
    mr_ticket_view_clear(&full);
    mr_ticket_list_free(t, n);
    free(next);
    mr_job_clear(&job);
}

/* Helpdesks treat John.Doe@ and john.doe@ as one sender: a reply in
 * another case is the requester's, not a stranger's. And a provider's
 * "Name <addr>" sender is parsed, not taken as an address. */
static void addresses_compared_without_case(void **state)
{
    struct fx *f = *state;
    static const char first[] =
        "From: John Doe <John.Doe@Customer.test>\r\n"
        "To: support@acme.test\r\nSubject: Broken login\r\n"
        "Message-ID: <case-1@customer.test>\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nHelp.\r\n";
    static const char reply[] =
        "From: john.doe@customer.test\r\n"
        "To: support@acme.test\r\nSubject: Re: Broken login\r\n"
        "Message-ID: <case-2@customer.test>\r\n"
        "In-Reply-To: <case-1@customer.test>\r\n"
        "Date: Fri, 27 Nov 2026 11:00:00 +0000\r\n\r\nStill.\r\n";
    const char *rcpt[] = {"support@acme.test"};
    struct mr_intake_env env = {.channel = MR_CH_SMTP, .rcpt = rcpt,
                                .nrcpt = 1};
    struct mr_intake_result res;
    struct mr_error err = {0};
    struct mr_job job = {0};
    assert_int_equal(mr_intake_accept_raw(f->in, &env, first,
                                          sizeof first - 1, &res, &err), 0);
    assert_int_equal(run_next(f, &job), 0);
    mr_job_clear(&job);
    assert_int_equal(mr_intake_accept_raw(f->in, &env, reply,
                                          sizeof reply - 1, &res, &err), 0);
    assert_int_equal(run_next(f, &job), 0);
    mr_job_clear(&job);
    const char ev[] = "{\"message_id\":\"<hook-2@customer.test>\","
                      "\"from\":\"John Doe <JOHN.DOE@customer.test>\","
                      "\"in_reply_to\":\"<case-2@customer.test>\","
                      "\"subject\":\"Re: Broken login\",\"text\":\"x\"}";
    assert_int_equal(mr_intake_accept_event(f->in, ev, sizeof ev - 1, &res,
                                            &err), 0);
    assert_int_equal(run_next(f, &job), 0);
    mr_job_clear(&job);

    struct mr_ticket_view *t = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(mr_store_list_tickets(f->st, "acme", NULL, NULL, 10, &t,
                                           &n, &next, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].requester, "john.doe@customer.test");
    struct mr_ticket_view full = {0};
    assert_int_equal(mr_store_get_ticket(f->st, "acme", t[0].id, &full, &err),
                     0);
    assert_int_equal(full.nmessages, 3);
    for (size_t i = 0; i < full.nmessages; i++)
        assert_false(full.messages[i].unverified);
    assert_string_equal(full.messages[2].from_email, "john.doe@customer.test");
    mr_ticket_view_clear(&full);
    mr_ticket_list_free(t, n);
    free(next);
}

static void failures_retry_then_dead(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    /* A job whose raw blob does not exist can never succeed: dead at once. */
    struct mr_job_spec spec = {.tenant = "acme", .channel = "smtp",
                               .raw_sha256 = "00000000000000000000000000000000"
                                             "00000000000000000000000000000000",
                               .raw_size = 10, .payload = "{}",
                               .received_at = 1};
    int64_t id = 0;
    assert_int_equal(mr_store_enqueue(f->st, &spec, 1, &id, &err), 0);
    struct mr_job job = {0};
    assert_int_not_equal(run_next(f, &job), 0);
    mr_job_clear(&job);
    assert_int_equal(mr_store_get_job(f->st, id, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_DEAD);
    assert_non_null(strstr(job.last_error, "missing"));
    mr_job_clear(&job);

    /* Input that is not a message at all is dead-lettered, not retried. */
    char key[MR_BLOB_KEY_LEN + 1];
    assert_int_equal(mr_blob_put(f->blob, "\0\0\0", 3, key, &err), 0);
    spec.raw_sha256 = key;
    assert_int_equal(mr_store_enqueue(f->st, &spec, 1, &id, &err), 0);
    assert_int_not_equal(run_next(f, &job), 0);
    mr_job_clear(&job);
    assert_int_equal(mr_store_get_job(f->st, id, &job, &err), 0);
    assert_int_equal(job.state, MR_JOB_DEAD);
    mr_job_clear(&job);
    assert_int_equal(f->metrics.jobs_dead, 2);
}

static void backoff_grows_with_jitter(void **state)
{
    (void)state;
    assert_int_equal(mr_worker_backoff_ms(1, 1000, 3600000, 0.999999), 999);
    assert_int_equal(mr_worker_backoff_ms(1, 1000, 3600000, 0.0), 500);
    assert_int_equal(mr_worker_backoff_ms(4, 1000, 3600000, 0.0), 4000);
    /* Capped, however many attempts. */
    assert_int_equal(mr_worker_backoff_ms(60, 1000, 3600000, 0.0), 1800000);
    assert_true(mr_worker_backoff_ms(3, 1000, 3600000, 0.5) == 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(one_job_per_tenant_and_stored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(large_raw_goes_to_the_blob_folder,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(refusals, setup, teardown),
        cmocka_unit_test(header_recipients),
        cmocka_unit_test_setup_teardown(webhook_event_dedupe_and_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(addresses_compared_without_case,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(failures_retry_then_dead, setup,
                                        teardown),
        cmocka_unit_test(backoff_grows_with_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
