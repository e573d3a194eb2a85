/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webhooks.c - `mailroom webhooks list [--tenant T]` (the subscriptions,
 * secrets never shown) and `mailroom deliveries list [--state S]
 * [--tenant T] [--limit N]` / `mailroom deliveries redrive ID` (the
 * webhook delivery queue; a dead or delivered delivery goes back to
 * pending, due now). The same store calls as the API (docs/webhooks.md).
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

static int parse_id(const char *s, int64_t *id)
{
    char *end = NULL;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || *end || v <= 0)
        return -1;
    *id = v;
    return 0;
}

/* ---- webhooks
 * ----------------------------------------------------------------- */

static void webhooks_usage(void)
{
    fputs("usage: mailroom webhooks list [--tenant T]\n"
          "(also takes --data DIR and --config FILE)\n",
          stderr);
}

int mr_cli_webhooks(int argc, char **argv)
{
    struct mr_instance_args ia = {0};
    const char *tenant = NULL;
    const struct mr_cli_opt opts[] = {{"--tenant", &tenant}};
    if (argc < 2 || strcmp(argv[1], "list") != 0) {
        webhooks_usage();
        return MR_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        int r = mr_instance_opt(argc, argv, &i, &ia, opts, 1);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r == 0) {
            fprintf(stderr, "mailroom webhooks: unexpected '%s'\n", argv[i]);
            webhooks_usage();
            return MR_EXIT_USAGE;
        }
    }
    struct mr_instance inst;
    int rc = mr_instance_open("webhooks", &ia, MR_INSTANCE_STORE, &inst);
    if (rc != 0)
        return rc;
    struct mr_webhook *w = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    if (mr_store_webhook_list(inst.store, tenant, &w, &n, &err) != MR_OK) {
        fprintf(stderr, "mailroom webhooks list: %s\n", err.msg);
        mr_instance_close(&inst);
        return MR_EXIT_IOERR;
    }
    printf("%-6s %-12s %-7s %-8s %-20s %-8s %s\n", "ID", "TENANT", "SOURCE",
           "STATE", "DISABLED", "EVENTS", "URL");
    for (size_t i = 0; i < n; i++) {
        char d[32];
        when(w[i].disabled_at, d);
        const char *state = w[i].disabled_at ? "disabled"
                            : w[i].active    ? "active"
                                             : "paused";
        char events[24];
        if (w[i].nevents == 0)
            snprintf(events, sizeof events, "all");
        else
            snprintf(events, sizeof events, "%zu", w[i].nevents);
        printf("%-6" PRId64 " %-12s %-7s %-8s %-20s %-8s %s\n", w[i].id,
               w[i].tenant, w[i].source, state, d, events, w[i].url);
    }
    if (n == 0)
        fputs("no webhooks\n", stderr);
    mr_webhook_list_free(w, n);
    mr_instance_close(&inst);
    return MR_EXIT_OK;
}

/* ---- deliveries
 * --------------------------------------------------------------- */

static void deliveries_usage(void)
{
    fputs("usage: mailroom deliveries list [--state pending|delivered|dead] "
          "[--tenant T] [--limit N]\n"
          "       mailroom deliveries redrive ID\n"
          "(each also takes --data DIR and --config FILE)\n",
          stderr);
}

static int list(struct mr_store *st, const char *tenant, const char *state,
                int limit)
{
    struct mr_error err = {0};
    struct mr_delivery_filter f = {.tenant = tenant, .state = state};
    size_t shown = 0;
    printf("%-8s %-12s %-7s %-9s %-8s %-18s %-8s %-20s %s\n", "ID", "TENANT",
           "WEBHOOK", "STATE", "ATTEMPTS", "EVENT", "SEQ", "UPDATED",
           "LAST ERROR");
    /* Oldest first, page by page; the limit bounds what is printed. */
    while (shown < (size_t)limit) {
        struct mr_webhook_delivery *d = NULL;
        size_t n = 0;
        f.limit = limit - (int)shown > PAGE ? PAGE : limit - (int)shown;
        if (mr_store_delivery_list(st, &f, &d, &n, &err) != MR_OK) {
            fprintf(stderr, "mailroom deliveries list: %s\n", err.msg);
            return MR_EXIT_IOERR;
        }
        for (size_t i = 0; i < n; i++) {
            char u[32];
            when(d[i].updated_at, u);
            printf("%-8" PRId64 " %-12s %-7" PRId64 " %-9s %-8d %-18s "
                   "%-8" PRId64 " %-20s %s\n",
                   d[i].id, d[i].tenant, d[i].webhook_id, d[i].state,
                   d[i].attempts, d[i].event_type, d[i].seq, u,
                   d[i].last_error ? d[i].last_error : "");
            f.after = d[i].id;
        }
        shown += n;
        mr_webhook_delivery_list_free(d, n);
        if (n < (size_t)f.limit)
            break;
    }
    if (shown == 0)
        fputs("no deliveries\n", stderr);
    return MR_EXIT_OK;
}

static int redrive(struct mr_store *st, int64_t id)
{
    struct mr_error err = {0};
    int rc = mr_store_delivery_redrive(st, NULL, id, NULL, &err);
    if (rc == MR_ENOTFOUND || rc == MR_ECONFLICT) {
        fprintf(stderr, "mailroom deliveries redrive: %s\n", err.msg);
        return MR_EXIT_DATAERR;
    }
    if (rc != MR_OK) {
        fprintf(stderr, "mailroom deliveries redrive: %s\n", err.msg);
        return MR_EXIT_IOERR;
    }
    fprintf(stderr, "delivery %" PRId64 " is pending again\n", id);
    return MR_EXIT_OK;
}

int mr_cli_deliveries(int argc, char **argv)
{
    if (argc < 2) {
        deliveries_usage();
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
            fprintf(stderr, "mailroom deliveries: unexpected '%s'\n", argv[i]);
            deliveries_usage();
            return MR_EXIT_USAGE;
        }
    }
    int limit = 100;
    if (limit_arg) {
        char *end = NULL;
        long v = strtol(limit_arg, &end, 10);
        if (*end || v < 1 || v > 100000) {
            fputs("mailroom deliveries: --limit takes 1..100000\n", stderr);
            return MR_EXIT_USAGE;
        }
        limit = (int)v;
    }
    if (state && strcmp(state, "pending") != 0 &&
        strcmp(state, "delivered") != 0 && strcmp(state, "dead") != 0) {
        fputs("mailroom deliveries: --state is pending, delivered or dead\n",
              stderr);
        return MR_EXIT_USAGE;
    }
    int64_t id = 0;
    bool ok = (strcmp(sub, "list") == 0 && !arg) ||
              (strcmp(sub, "redrive") == 0 && parse_id(arg, &id) == 0);
    if (!ok) {
        deliveries_usage();
        return MR_EXIT_USAGE;
    }
    struct mr_instance inst;
    int rc = mr_instance_open("deliveries", &ia, MR_INSTANCE_STORE, &inst);
    if (rc != 0)
        return rc;
    if (strcmp(sub, "list") == 0)
        rc = list(inst.store, tenant, state, limit);
    else
        rc = redrive(inst.store, id);
    mr_instance_close(&inst);
    return rc;
}
