/* SPDX-License-Identifier: Apache-2.0 */
/*
 * instance.h - what every server-side subcommand opens: the configuration
 * (a file, or the embedded defaults) and, on request, the store and the
 * blob folder it names. `--data DIR` and `--config FILE` are read the same
 * way by every command through mr_instance_opt.
 *
 * Ownership: mr_instance_close frees everything mr_instance_open made.
 */
#ifndef MR_CLI_INSTANCE_H
#define MR_CLI_INSTANCE_H

#include <stdbool.h>

#include "blob/blob.h"
#include "config/config.h"
#include "store/store.h"

struct mr_instance_args {
    const char *config; /* --config FILE or NULL */
    const char *data;   /* --data DIR or NULL */
};

/* A command's own option that takes a value ("--tenant T"). */
struct mr_cli_opt {
    const char *name;
    const char **value;
};

/* If argv[*i] is --data, --config or one of extra[0..nextra) (as "--name
 * VALUE" or "--name=VALUE"), stores the value, advances *i past it and
 * returns 1; 0 when argv[*i] is something else; -1 (message printed) when
 * the value is missing. */
int mr_instance_opt(int argc, char **argv, int *i, struct mr_instance_args *a,
                    const struct mr_cli_opt *extra, size_t nextra);

enum {
    MR_INSTANCE_STORE = 1 << 0,
    MR_INSTANCE_BLOB = 1 << 1,
    MR_INSTANCE_MIGRATE = 1 << 2, /* apply pending migrations at open */
    MR_INSTANCE_MKDIR = 1 << 3,   /* create the data folder when missing */
    MR_INSTANCE_OLD_SCHEMA = 1 << 4, /* open an older schema unchanged */
};

struct mr_instance {
    struct mr_config *cfg;
    struct mr_store *store; /* when MR_INSTANCE_STORE */
    struct mr_blob *blob;   /* when MR_INSTANCE_BLOB */
};

/* Opens what flags ask for; on failure prints the reason (prefixed with
 * "mailroom <cmd>: ") and returns the exit status to use (78 for a bad
 * configuration, 74 for storage that cannot be opened). 0 on success. */
int mr_instance_open(const char *cmd, const struct mr_instance_args *a,
                     unsigned flags, struct mr_instance *out);
void mr_instance_close(struct mr_instance *inst);

#endif
