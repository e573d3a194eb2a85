/* SPDX-License-Identifier: Apache-2.0 */
/*
 * instance.c - configuration, store and blob folder for a subcommand.
 */
#include "cli/instance.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

int mr_instance_opt(int argc, char **argv, int *i, struct mr_instance_args *a)
{
    static const struct {
        const char *name;
        size_t off;
    } opts[] = {
        {"--config", offsetof(struct mr_instance_args, config)},
        {"--data", offsetof(struct mr_instance_args, data)},
    };
    const char *arg = argv[*i];
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
        size_t n = strlen(opts[k].name);
        if (strncmp(arg, opts[k].name, n) != 0)
            continue;
        const char **slot = (const char **)((char *)a + opts[k].off);
        if (arg[n] == '=') {
            *slot = arg + n + 1;
            return 1;
        }
        if (arg[n] != '\0')
            continue;
        if (*i + 1 >= argc) {
            fprintf(stderr, "mailroom: %s needs a value\n", opts[k].name);
            return -1;
        }
        *slot = argv[++*i];
        return 1;
    }
    return 0;
}

/* mkdir -p for one level below an existing parent is all a data folder
 * needs; deeper paths are the operator's to create. */
static int make_dir(const char *dir)
{
    if (mkdir(dir, 0750) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

int mr_instance_open(const char *cmd, const struct mr_instance_args *a,
                     unsigned flags, struct mr_instance *out)
{
    memset(out, 0, sizeof *out);
    struct mr_error err = {0};
    if (a->config) {
        struct mr_config_diags diags = {0};
        int rc = mr_config_load(a->config, a->data, &out->cfg, &diags, &err);
        if (rc != MR_OK) {
            if (diags.n == 0)
                fprintf(stderr, "mailroom %s: %s: %s\n", cmd, a->config,
                        err.msg);
            for (size_t i = 0; i < diags.n; i++)
                fprintf(stderr, "%s:%d:%d: %s\n", a->config,
                        diags.items[i].line, diags.items[i].column,
                        diags.items[i].msg);
            mr_config_diags_free(&diags);
            return rc == MR_EIO ? MR_EXIT_IOERR : MR_EXIT_CONFIG;
        }
        mr_config_diags_free(&diags);
    } else {
        out->cfg = mr_config_default(a->data);
    }

    if ((flags & MR_INSTANCE_MKDIR) && make_dir(out->cfg->data_dir) != 0) {
        fprintf(stderr, "mailroom %s: cannot create data folder %s: %s\n",
                cmd, out->cfg->data_dir, strerror(errno));
        mr_instance_close(out);
        return MR_EXIT_IOERR;
    }
    if (flags & MR_INSTANCE_BLOB) {
        if (mr_blob_open_fs(out->cfg->blob_dir, &out->blob, &err) != MR_OK) {
            fprintf(stderr, "mailroom %s: blob folder %s: %s\n", cmd,
                    out->cfg->blob_dir, err.msg);
            mr_instance_close(out);
            return MR_EXIT_IOERR;
        }
    }
    if (flags & MR_INSTANCE_STORE) {
        struct mr_store_options so = {
            .url = out->cfg->database,
            .migrate = (flags & MR_INSTANCE_MIGRATE) != 0,
            .allow_old_schema = (flags & MR_INSTANCE_OLD_SCHEMA) != 0,
        };
        if (mr_store_open(&so, &out->store, &err) != MR_OK) {
            fprintf(stderr, "mailroom %s: database %s: %s\n", cmd,
                    out->cfg->database, err.msg);
            mr_instance_close(out);
            return err.code == MR_EINVAL ? MR_EXIT_CONFIG : MR_EXIT_IOERR;
        }
    }
    return 0;
}

void mr_instance_close(struct mr_instance *inst)
{
    mr_store_close(inst->store);
    mr_blob_close(inst->blob);
    mr_config_free(inst->cfg);
    memset(inst, 0, sizeof *inst);
}
