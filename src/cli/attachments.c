/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attachments.c - `mailroom attachments rescan [--tenant T] [--state
 * error|clean|infected|all] [--since DURATION | --received-after ISO8601]
 * [--limit N] [--dry-run]`: puts the attachments that match back in the
 * antivirus queue (docs/attachments.md, rescanning), in transactions of
 * MR_SCAN_RESCAN_BATCH rows, and says how many. The same filters and store
 * call as POST /api/v1/attachments/rescan; a running `mailroom serve`
 * scans them.
 *
 * Exit status: 0 done (also when nothing matched); 64 usage; 74 the store
 * failed (what was queued before stays queued, and is counted); 78 no
 * clamd is configured, so nothing would scan them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/instance.h"
#include "scan/rescan.h"
#include "util/clock.h"

static void usage(void)
{
    fputs("usage: mailroom attachments rescan [--tenant T]\n"
          "         [--state error|clean|infected|all] (default: error)\n"
          "         [--since DURATION | --received-after ISO8601]\n"
          "         [--limit N] [--dry-run]\n"
          "(also takes --data DIR and --config FILE)\n",
          stderr);
}

static int rescan(int argc, char **argv)
{
    struct mr_instance_args ia = {0};
    const char *tenant = NULL, *state = NULL, *since = NULL, *after = NULL,
               *limit_arg = NULL;
    bool dry_run = false;
    const struct mr_cli_opt opts[] = {{"--tenant", &tenant},
                                      {"--state", &state},
                                      {"--since", &since},
                                      {"--received-after", &after},
                                      {"--limit", &limit_arg}};
    for (int i = 2; i < argc; i++) {
        int r = mr_instance_opt(argc, argv, &i, &ia, opts,
                                sizeof opts / sizeof opts[0]);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = true;
        } else {
            fprintf(stderr, "mailroom attachments: unexpected '%s'\n", argv[i]);
            usage();
            return MR_EXIT_USAGE;
        }
    }
    struct mr_scan_rescan_filter f = {.tenant = tenant, .dry_run = dry_run};
    if (limit_arg) {
        char *end = NULL;
        long long v = strtoll(limit_arg, &end, 10);
        if (*end || v < 1 || v > 1000000000LL) {
            fputs("mailroom attachments: --limit takes 1..1000000000\n",
                  stderr);
            return MR_EXIT_USAGE;
        }
        f.limit = v;
    }
    struct mr_error err = {0};
    if (mr_scan_rescan_filter(state, since, after, mr_clock_wall_ms(), &f,
                              &err) < 0) {
        fprintf(stderr, "mailroom attachments: %s\n", err.msg);
        return MR_EXIT_USAGE;
    }
    struct mr_instance inst;
    int rc = mr_instance_open("attachments", &ia, MR_INSTANCE_STORE, &inst);
    if (rc != 0)
        return rc;
    if (!mr_scan_configured(inst.cfg)) {
        fputs("mailroom attachments: no antivirus is configured (the "
              "`clamd` section): nothing would scan them\n",
              stderr);
        mr_instance_close(&inst);
        return MR_EXIT_CONFIG;
    }
    int64_t n = 0;
    rc =
        mr_store_scan_rescan_many(inst.store, &f, mr_clock_wall_ms(), &n, &err);
    mr_instance_close(&inst);
    if (rc < 0) {
        fprintf(stderr,
                "mailroom attachments rescan: %s (%" PRId64
                " queued before the failure stay queued)\n",
                err.msg, n);
        return MR_EXIT_IOERR;
    }
    printf("%" PRId64 " attachment(s) %s\n", n,
           dry_run ? "would be queued for a rescan (dry run)"
                   : "queued for a rescan");
    return MR_EXIT_OK;
}

int mr_cli_attachments(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "rescan") == 0)
        return rescan(argc, argv);
    usage();
    return MR_EXIT_USAGE;
}
