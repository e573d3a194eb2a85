/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - `mailroom config check FILE`: load a configuration file the
 * way serve would and say whether it is good.
 *
 * Success prints one line on standard output ("FILE: ok (...)" with what
 * the file sets up) and exits 0. Otherwise every problem goes to standard
 * error as FILE:LINE:COL: message, the form editors and CI logs link to,
 * and the exit status is 65 (EX_DATAERR); 74 when the file cannot be read.
 */
#include <stdio.h>
#include <string.h>

#include "../config/config.h"
#include "cli.h"

static void usage(FILE *out)
{
    fputs("usage: mailroom config check [--data DIR] FILE\n"
          "       mailroom config check [--data DIR] --config FILE\n"
          "\n"
          "Checks a configuration file and lists every problem as\n"
          "FILE:LINE:COL: message. Exit status: 0 ok, 64 usage, 65 the\n"
          "file has problems, 74 the file cannot be read.\n",
          out);
}

static void summary(const char *path, const struct mr_config *cfg)
{
    size_t ninboxes = 0;
    for (size_t i = 0; i < cfg->ntenants; i++)
        ninboxes += cfg->tenants[i].ninboxes;
    printf("%s: ok (%zu tenant%s, %zu inbox%s; smtp %s, lmtp %s, http %s; "
           "tls %s; webhook %s)\n",
           path, cfg->ntenants, cfg->ntenants == 1 ? "" : "s", ninboxes,
           ninboxes == 1 ? "" : "es", cfg->smtp.addr ? cfg->smtp.addr : "off",
           cfg->lmtp.addr ? cfg->lmtp.addr : "off",
           cfg->http.addr ? cfg->http.addr : "off",
           cfg->tls_cert ? "on" : "off", cfg->webhook.secret ? "on" : "off");
}

static int check(int argc, char **argv)
{
    const char *path = NULL;
    const char *data_dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return MR_EXIT_OK;
        }
        if (strcmp(a, "--data") == 0 && i + 1 < argc) {
            data_dir = argv[++i];
            continue;
        }
        if (strcmp(a, "--config") == 0 && i + 1 < argc && path == NULL) {
            path = argv[++i];
            continue;
        }
        if (a[0] == '-' || path != NULL)
            goto bad;
        path = a;
    }
    if (path == NULL)
        goto bad;

    struct mr_config *cfg = NULL;
    struct mr_config_diags diags;
    struct mr_error err = {0};
    int rc = mr_config_load(path, data_dir, &cfg, &diags, &err);
    if (rc == MR_EIO) {
        fprintf(stderr, "mailroom config: %s\n", err.msg);
        return MR_EXIT_IOERR;
    }
    if (rc < 0) {
        for (size_t i = 0; i < diags.n; i++) {
            const struct mr_config_diag *d = &diags.items[i];
            if (d->line > 0)
                fprintf(stderr, "%s:%d:%d: %s\n", path, d->line, d->column,
                        d->msg);
            else
                fprintf(stderr, "%s: %s\n", path, d->msg);
        }
        if (diags.n == 0)
            fprintf(stderr, "%s: %s\n", path, err.msg);
        mr_config_diags_free(&diags);
        return MR_EXIT_DATAERR;
    }
    summary(path, cfg);
    mr_config_free(cfg);
    return MR_EXIT_OK;
bad:
    usage(stderr);
    return MR_EXIT_USAGE;
}

int mr_cli_config(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return check(argc - 1, argv + 1);
    if (argc >= 2 &&
        (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return MR_EXIT_OK;
    }
    usage(stderr);
    return MR_EXIT_USAGE;
}
