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

/* Matches arg against name as "--name" (value in the next argument) or
 * "--name=value". */
static int take(int argc, char **argv, int *i, const char *name,
                const char **slot)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *slot = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "mailroom: %s needs a value\n", name);
        return -1;
    }
    *slot = argv[++*i];
    return 1;
}

int mr_instance_opt(int argc, char **argv, int *i, struct mr_instance_args *a,
                    const struct mr_cli_opt *extra, size_t nextra)
{
    int r = take(argc, argv, i, "--config", &a->config);
    if (r == 0)
        r = take(argc, argv, i, "--data", &a->data);
    for (size_t k = 0; r == 0 && k < nextra; k++)
        r = take(argc, argv, i, extra[k].name, extra[k].value);
    return r;
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
