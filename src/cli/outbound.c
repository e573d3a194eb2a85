/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbound.c - `mailroom outbound list [--state S] [--tenant T] [--limit N]`
 * / `mailroom outbound retry ID` (the outbound mail queue; a failed mail
 * goes back to pending, due now) and `mailroom notifications list [...]` /
 * `mailroom notifications redrive ID` (the integrations' queue; a dead
 * notification goes back to pending). The same store calls as the API
 * (docs/api.md), in the shape of `mailroom deliveries` (webhooks.c).
 *
 * Exit status: 0 done; 64 usage; 65 no such row, or one that is not at
 * its dead end (nothing changed); 74 the store failed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/instance.h"
#include "mime/date.h"

#define PAGE 200

static void when(int64_t ms, char out[32])
{
    if (ms == 0)
        snprintf(out, 32, "-");
    else
        mr_date_rfc3339(ms / 1000, out);
}

/* What a queue's command needs to know of it. */
struct queue {
    const char *cmd;    /* "outbound" */
    const char *verb;   /* "retry" */
    const char *states; /* "pending|sent|failed" */
    const char *dead;   /* "failed": the one state the verb takes */
    const char *other;  /* "sent" */
};

static const struct queue mail_q = {"outbound", "retry", "pending|sent|failed",
                                    "failed", "sent"};
static const struct queue notify_q = {"notifications", "redrive",
                                      "pending|sent|dead", "dead", "sent"};

static void usage(const struct queue *q)
{
    fprintf(stderr,
            "usage: mailroom %s list [--state %s] [--tenant T] [--limit N]\n"
            "       mailroom %s %s ID\n"
            "(each also takes --data DIR and --config FILE)\n",
            q->cmd, q->states, q->cmd, q->verb);
}

/* Oldest first, page by page; limit bounds what is printed. */
static int list_mail(struct mr_store *st, const char *tenant, const char *state,
                     int limit)
{
    struct mr_error err = {0};
    struct mr_outbound_filter f = {.tenant = tenant, .state = state};
    size_t shown = 0;
    printf("%-8s %-12s %-8s %-8s %-8s %-30s %-20s %s\n", "ID", "TENANT",
           "TICKET", "STATE", "ATTEMPTS", "TO", "UPDATED", "LAST ERROR");
    while (shown < (size_t)limit) {
        struct mr_outbound_mail *m = NULL;
        size_t n = 0;
        f.limit = limit - (int)shown > PAGE ? PAGE : limit - (int)shown;
        if (mr_store_outbound_list(st, &f, &m, &n, &err) != MR_OK) {
            fprintf(stderr, "mailroom outbound list: %s\n", err.msg);
            return MR_EXIT_IOERR;
        }
        for (size_t i = 0; i < n; i++) {
            char u[32];
            when(m[i].updated_at, u);
            printf("%-8" PRId64 " %-12s %-8" PRId64 " %-8s %-8d %-30s %-20s "
                   "%s\n",
                   m[i].id, m[i].tenant, m[i].ticket_id, m[i].state,
                   m[i].attempts, m[i].rcpt_to, u,
                   m[i].last_error ? m[i].last_error : "");
            f.after = m[i].id;
        }
        shown += n;
        mr_outbound_mail_list_free(m, n);
        if (n < (size_t)f.limit)
            break;
    }
    if (shown == 0)
        fputs("no outbound mail\n", stderr);
    return MR_EXIT_OK;
}

static int list_notifications(struct mr_store *st, const char *tenant,
                              const char *state, int limit)
{
    struct mr_error err = {0};
    struct mr_notify_filter f = {.tenant = tenant, .state = state};
    size_t shown = 0;
    printf("%-8s %-12s %-16s %-7s %-8s %-8s %-8s %-20s %s\n", "ID", "TENANT",
           "INTEGRATION", "KIND", "TICKET", "STATE", "ATTEMPTS", "UPDATED",
           "LAST ERROR");
    while (shown < (size_t)limit) {
        struct mr_notification_state *v = NULL;
        size_t n = 0;
        f.limit = limit - (int)shown > PAGE ? PAGE : limit - (int)shown;
        if (mr_store_notify_list(st, &f, &v, &n, &err) != MR_OK) {
            fprintf(stderr, "mailroom notifications list: %s\n", err.msg);
            return MR_EXIT_IOERR;
        }
        for (size_t i = 0; i < n; i++) {
            char u[32];
            when(v[i].updated_at, u);
            printf("%-8" PRId64 " %-12s %-16s %-7s %-8" PRId64 " %-8s %-8d "
                   "%-20s %s\n",
                   v[i].id, v[i].tenant, v[i].integration,
                   v[i].kind ? v[i].kind : "-", v[i].ticket_id, v[i].state,
                   v[i].attempts, u, v[i].last_error ? v[i].last_error : "");
            f.after = v[i].id;
        }
        shown += n;
        mr_notification_states_free(v, n);
        if (n < (size_t)f.limit)
            break;
    }
    if (shown == 0)
        fputs("no notifications\n", stderr);
    return MR_EXIT_OK;
}

static int put_back(const struct queue *q, struct mr_store *st, int64_t id)
{
    struct mr_error err = {0};
    int rc = q == &mail_q ? mr_store_outbound_retry(st, NULL, id, NULL, &err)
                          : mr_store_notify_redrive(st, NULL, id, NULL, &err);
    if (rc == MR_ENOTFOUND || rc == MR_ECONFLICT) {
        fprintf(stderr, "mailroom %s %s: %s\n", q->cmd, q->verb, err.msg);
        return MR_EXIT_DATAERR;
    }
    if (rc != MR_OK) {
        fprintf(stderr, "mailroom %s %s: %s\n", q->cmd, q->verb, err.msg);
        return MR_EXIT_IOERR;
    }
    fprintf(stderr, "%s %" PRId64 " is pending again\n",
            q == &mail_q ? "outbound mail" : "notification", id);
    return MR_EXIT_OK;
}

static bool state_ok(const struct queue *q, const char *s)
{
    return strcmp(s, "pending") == 0 || strcmp(s, q->other) == 0 ||
           strcmp(s, q->dead) == 0;
}

static int run(const struct queue *q, int argc, char **argv)
{
    if (argc < 2) {
        usage(q);
        return MR_EXIT_USAGE;
    }
    const char *sub = argv[1];
    struct mr_instance_args ia = {0};
    const char *tenant = NULL, *state = NULL, *limit_arg = NULL, *arg = NULL;
    const struct mr_cli_opt opts[] = {
        {"--tenant", &tenant}, {"--state", &state}, {"--limit", &limit_arg}};
    for (int i = 2; i < argc; i++) {
        int r = mr_instance_opt(argc, argv, &i, &ia, opts, 3);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r > 0)
            continue;
        if (!arg && argv[i][0] != '-') {
            arg = argv[i];
        } else {
            fprintf(stderr, "mailroom %s: unexpected '%s'\n", q->cmd, argv[i]);
            usage(q);
            return MR_EXIT_USAGE;
        }
    }
    int limit = 100;
    if (limit_arg) {
        char *end = NULL;
        long v = strtol(limit_arg, &end, 10);
        if (*end || v < 1 || v > 100000) {
            fprintf(stderr, "mailroom %s: --limit takes 1..100000\n", q->cmd);
            return MR_EXIT_USAGE;
        }
        limit = (int)v;
    }
    if (state && !state_ok(q, state)) {
        fprintf(stderr, "mailroom %s: --state is pending, %s or %s\n", q->cmd,
                q->other, q->dead);
        return MR_EXIT_USAGE;
    }
    int64_t id = 0;
    char *end = NULL;
    long long v = arg ? strtoll(arg, &end, 10) : 0;
    bool listing = strcmp(sub, "list") == 0 && !arg;
    bool putting = strcmp(sub, q->verb) == 0 && arg && *end == '\0' && v > 0;
    if (!listing && !putting) {
        usage(q);
        return MR_EXIT_USAGE;
    }
    id = v;
    struct mr_instance inst;
    int rc = mr_instance_open(q->cmd, &ia, MR_INSTANCE_STORE, &inst);
    if (rc != 0)
        return rc;
    if (putting)
        rc = put_back(q, inst.store, id);
    else if (q == &mail_q)
        rc = list_mail(inst.store, tenant, state, limit);
    else
        rc = list_notifications(inst.store, tenant, state, limit);
    mr_instance_close(&inst);
    return rc;
}

int mr_cli_outbound(int argc, char **argv)
{
    return run(&mail_q, argc, argv);
}

int mr_cli_notifications(int argc, char **argv)
{
    return run(&notify_q, argc, argv);
}
