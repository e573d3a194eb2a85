/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrate.c - `mailroom migrate`: bring the database schema up to this
 * binary's version (serve does it at start too; this is for operators who
 * upgrade deliberately, and for a database shared by several nodes).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/instance.h"

int mr_cli_migrate(int argc, char **argv)
{
    struct mr_instance_args ia = {0};
    bool status_only = false;
    for (int i = 1; i < argc; i++) {
        int r = mr_instance_opt(argc, argv, &i, &ia, NULL, 0);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--status") == 0) {
            status_only = true;
            continue;
        }
        fprintf(stderr, "usage: mailroom migrate [--status] [--data DIR] "
                        "[--config FILE]\n");
        return MR_EXIT_USAGE;
    }
    struct mr_instance inst;
    /* Opened as it is, so that the version before is known. */
    int rc = mr_instance_open("migrate", &ia,
                              MR_INSTANCE_STORE | MR_INSTANCE_MKDIR |
                                  MR_INSTANCE_OLD_SCHEMA,
                              &inst);
    if (rc != 0)
        return rc;
    struct mr_error err = {0};
    int cur = 0, latest = 0;
    if (status_only) {
        rc = mr_store_schema_version(inst.store, &cur, &latest, &err);
        if (rc == MR_OK)
            printf("schema version %d, this binary's latest %d\n", cur,
                   latest);
    } else {
        int from = 0, to = 0;
        rc = mr_store_migrate(inst.store, &from, &to, &err);
        if (rc == MR_OK)
            printf(from == to ? "schema up to date (version %d)\n"
                              : "schema migrated from version %d to %d\n",
                   from, to);
    }
    if (rc != MR_OK)
        fprintf(stderr, "mailroom migrate: %s\n", err.msg);
    mr_instance_close(&inst);
    return rc == MR_OK ? MR_EXIT_OK : MR_EXIT_IOERR;
}
