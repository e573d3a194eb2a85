/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dlq.c - `mailroom dlq list|show ID|retry ID|retry --all`: the jobs that
 * gave up, with the reason, and putting them back in the queue once the
 * cause is fixed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/instance.h"
#include "mime/date.h"
#include "util/buf.h"
#include "util/json.h"

static void usage(void)
{
    fputs("usage: mailroom dlq list [--limit N]\n"
          "       mailroom dlq show ID\n"
          "       mailroom dlq retry ID | --all\n"
          "(each also takes --data DIR and --config FILE)\n",
          stderr);
}

static void when(int64_t ms, char out[32])
{
    mr_date_rfc3339(ms / 1000, out);
}

static int parse_id(const char *s, int64_t *id)
{
    char *end = NULL;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || *end || v <= 0)
        return -1;
    *id = v;
    return 0;
}

static int list(struct mr_store *st, int limit)
{
    struct mr_error err = {0};
    int64_t after = 0;
    size_t shown = 0;
    printf("%-8s %-12s %-8s %-8s %-20s %s\n", "ID", "TENANT", "CHANNEL",
           "ATTEMPTS", "UPDATED", "LAST ERROR");
    /* Page through; the limit bounds what is printed. */
    while (shown < (size_t)limit) {
        struct mr_job *jobs = NULL;
        size_t n = 0;
        int want = limit - (int)shown > 200 ? 200 : limit - (int)shown;
        if (mr_store_list_jobs(st, MR_JOB_DEAD, after, want, &jobs, &n,
                               &err) != MR_OK) {
            fprintf(stderr, "mailroom dlq list: %s\n", err.msg);
            return MR_EXIT_IOERR;
        }
        for (size_t i = 0; i < n; i++) {
            char u[32];
            when(jobs[i].updated_at, u);
            printf("%-8" PRId64 " %-12s %-8s %-8d %-20s %s\n", jobs[i].id,
                   jobs[i].tenant, jobs[i].channel, jobs[i].attempts, u,
                   jobs[i].last_error ? jobs[i].last_error : "");
            after = jobs[i].id;
        }
        shown += n;
        mr_job_list_free(jobs, n);
        if (n < (size_t)want)
            break;
    }
    if (shown == 0)
        fputs("the dead-letter queue is empty\n", stderr);
    return MR_EXIT_OK;
}

static const char *state_name(enum mr_job_state s)
{
    static const char *const names[] = {"ready", "leased", "done", "dead"};
    return (unsigned)s < 4 ? names[s] : "unknown";
}

static int show(struct mr_store *st, int64_t id)
{
    struct mr_job job = {0};
    struct mr_error err = {0};
    int rc = mr_store_get_job(st, id, &job, &err);
    if (rc == MR_ENOTFOUND) {
        fprintf(stderr, "mailroom dlq show: no job %" PRId64 "\n", id);
        return MR_EXIT_DATAERR;
    }
    if (rc != MR_OK) {
        fprintf(stderr, "mailroom dlq show: %s\n", err.msg);
        return MR_EXIT_IOERR;
    }
    struct mr_buf b;
    struct mr_json j;
    char c[32], u[32];
    when(job.created_at, c);
    when(job.updated_at, u);
    mr_buf_init(&b, 0);
    mr_json_init(&j, &b, true);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "id");
    mr_json_int(&j, job.id);
    mr_json_key(&j, "state");
    mr_json_cstr(&j, state_name(job.state));
    mr_json_key(&j, "tenant");
    mr_json_cstr(&j, job.tenant);
    mr_json_key(&j, "channel");
    mr_json_cstr(&j, job.channel);
    mr_json_key(&j, "attempts");
    mr_json_int(&j, job.attempts);
    mr_json_key(&j, "last_error");
    mr_json_cstr(&j, job.last_error);
    mr_json_key(&j, "raw_sha256");
    mr_json_cstr(&j, job.raw_sha256);
    mr_json_key(&j, "raw_size");
    mr_json_int(&j, job.raw_size);
    mr_json_key(&j, "created_at");
    mr_json_cstr(&j, c);
    mr_json_key(&j, "updated_at");
    mr_json_cstr(&j, u);
    mr_json_key(&j, "payload");
    mr_json_cstr(&j, job.payload);
    mr_json_obj_end(&j);
    printf("%s\n", b.p);
    mr_buf_release(&b);
    mr_job_clear(&job);
    return MR_EXIT_OK;
}

static int retry(struct mr_store *st, const char *arg, bool all)
{
    struct mr_error err = {0};
    if (all) {
        int64_t n = 0;
        if (mr_store_retry_dead_jobs(st, &n, &err) != MR_OK) {
            fprintf(stderr, "mailroom dlq retry: %s\n", err.msg);
            return MR_EXIT_IOERR;
        }
        fprintf(stderr, "%" PRId64 " job(s) back in the queue\n", n);
        return MR_EXIT_OK;
    }
    int64_t id;
    if (parse_id(arg, &id) != 0) {
        usage();
        return MR_EXIT_USAGE;
    }
    int rc = mr_store_retry_job(st, id, &err);
    if (rc == MR_ENOTFOUND) {
        fprintf(stderr, "mailroom dlq retry: job %" PRId64 " is not in the "
                        "dead-letter queue\n", id);
        return MR_EXIT_DATAERR;
    }
    if (rc != MR_OK) {
        fprintf(stderr, "mailroom dlq retry: %s\n", err.msg);
        return MR_EXIT_IOERR;
    }
    fprintf(stderr, "job %" PRId64 " back in the queue\n", id);
    return MR_EXIT_OK;
}

int mr_cli_dlq(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return MR_EXIT_USAGE;
    }
    const char *sub = argv[1];
    struct mr_instance_args ia = {0};
    const char *arg = NULL;
    bool all = false;
    int limit = 100;
    const char *limit_arg = NULL;
    const struct mr_cli_opt opts[] = {{"--limit", &limit_arg}};
    for (int i = 2; i < argc; i++) {
        int r = mr_instance_opt(argc, argv, &i, &ia, opts, 1);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--all") == 0) {
            all = true;
        } else if (!arg && argv[i][0] != '-') {
            arg = argv[i];
        } else {
            fprintf(stderr, "mailroom dlq: unexpected '%s'\n", argv[i]);
            usage();
            return MR_EXIT_USAGE;
        }
    }
    if (limit_arg) {
        char *end = NULL;
        long v = strtol(limit_arg, &end, 10);
        limit = (int)v;
        if (*end || v < 1 || v > 100000) {
            fputs("mailroom dlq: --limit takes 1..100000\n", stderr);
            return MR_EXIT_USAGE;
        }
    }
    int64_t id = 0;
    bool ok = (strcmp(sub, "list") == 0 && !arg) ||
              (strcmp(sub, "show") == 0 && parse_id(arg, &id) == 0) ||
              (strcmp(sub, "retry") == 0 && (all != (arg != NULL)));
    if (!ok) {
        usage();
        return MR_EXIT_USAGE;
    }
    struct mr_instance inst;
    int rc = mr_instance_open("dlq", &ia, MR_INSTANCE_STORE, &inst);
    if (rc != 0)
        return rc;
    if (strcmp(sub, "list") == 0)
        rc = list(inst.store, limit);
    else if (strcmp(sub, "show") == 0)
        rc = show(inst.store, id);
    else
        rc = retry(inst.store, arg, all);
    mr_instance_close(&inst);
    return rc;
}
