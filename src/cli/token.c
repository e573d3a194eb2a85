/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token.c - `mailroom token create|list|revoke`: API tokens.
 *
 * A token is shown once, at creation; the store keeps only its SHA-256
 * (src/http/auth.h makes and hashes them), so a leaked database does not
 * leak working tokens.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/instance.h"
#include "http/auth.h"
#include "mime/date.h"

static void usage(void)
{
    fputs("usage: mailroom token create --tenant T --role "
          "admin|agent|ingest|read [--label TEXT]\n"
          "       mailroom token list [--tenant T]\n"
          "       mailroom token revoke ID\n"
          "(each also takes --data DIR and --config FILE)\n",
          stderr);
}

static void when(int64_t ms, char out[32])
{
    if (ms <= 0)
        snprintf(out, 32, "-");
    else
        mr_date_rfc3339(ms / 1000, out);
}

static int create(struct mr_instance *inst, const char *tenant,
                  const char *role, const char *label)
{
    if (!tenant || !role) {
        fputs("mailroom token create: --tenant and --role are required\n",
              stderr);
        return MR_EXIT_USAGE;
    }
    if (mr_auth_role_parse(role) == 0) {
        fprintf(stderr, "mailroom token create: unknown role '%s' (admin, "
                        "agent, ingest or read)\n", role);
        return MR_EXIT_USAGE;
    }
    if (!mr_config_tenant(inst->cfg, tenant)) {
        fprintf(stderr, "mailroom token create: no tenant '%s' in %s\n",
                tenant, inst->cfg->source);
        return MR_EXIT_DATAERR;
    }
    char token[MR_AUTH_TOKEN_LEN + 1];
    char hash[MR_AUTH_HASH_LEN + 1];
    struct mr_error err = {0};
    if (mr_auth_token_new(token, &err) != MR_OK) {
        fprintf(stderr, "mailroom token create: %s\n", err.msg);
        return MR_EXIT_SOFTWARE;
    }
    mr_auth_token_hash(token, hash);
    char prefix[MR_AUTH_PREFIX_LEN + 1];
    mr_auth_token_prefix(token, prefix);
    int64_t id = 0;
    if (mr_store_token_add(inst->store, tenant, role, hash, prefix, label, &id,
                           &err) != MR_OK) {
        fprintf(stderr, "mailroom token create: %s\n", err.msg);
        return MR_EXIT_IOERR;
    }
    /* The token alone on stdout, so scripts can capture it. */
    printf("%s\n", token);
    fprintf(stderr, "token %" PRId64 " for tenant %s, role %s: shown once, "
                    "store it now\n", id, tenant, role);
    return MR_EXIT_OK;
}

static int list(struct mr_instance *inst, const char *tenant)
{
    struct mr_token_rec *t = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    if (mr_store_token_list(inst->store, tenant, &t, &n, &err) != MR_OK) {
        fprintf(stderr, "mailroom token list: %s\n", err.msg);
        return MR_EXIT_IOERR;
    }
    printf("%-6s %-16s %-7s %-14s %-20s %-20s %s\n", "ID", "TENANT", "ROLE",
           "PREFIX", "CREATED", "LAST USED", "LABEL");
    for (size_t i = 0; i < n; i++) {
        char c[32], u[32];
        when(t[i].created_at, c);
        when(t[i].last_used_at, u);
        /* Short-lived tokens (POST /api/v1/tokens/exchange) say where
         * they came from and when they end. */
        char x[32], life[96] = "";
        if (t[i].expires_at > 0) {
            when(t[i].expires_at, x);
            snprintf(life, sizeof life, " (from token %" PRId64 ", expires %s)",
                     t[i].parent_id, x);
        }
        printf("%-6" PRId64 " %-16s %-7s %-14s %-20s %-20s %s%s%s\n", t[i].id,
               t[i].tenant, t[i].role, t[i].prefix ? t[i].prefix : "", c, u,
               t[i].label ? t[i].label : "",
               t[i].revoked ? " (revoked)" : "", life);
    }
    mr_token_list_free(t, n);
    return MR_EXIT_OK;
}

static int revoke(struct mr_instance *inst, const char *arg)
{
    char *end = NULL;
    long long id = arg ? strtoll(arg, &end, 10) : 0;
    if (!arg || *end || id <= 0) {
        fputs("mailroom token revoke: give the token's numeric ID (see "
              "`mailroom token list`)\n", stderr);
        return MR_EXIT_USAGE;
    }
    struct mr_error err = {0};
    int rc = mr_store_token_revoke(inst->store, id, &err);
    if (rc == MR_ENOTFOUND) {
        fprintf(stderr, "mailroom token revoke: no token %lld\n", id);
        return MR_EXIT_DATAERR;
    }
    if (rc != MR_OK) {
        fprintf(stderr, "mailroom token revoke: %s\n", err.msg);
        return MR_EXIT_IOERR;
    }
    fprintf(stderr, "token %lld revoked\n", id);
    return MR_EXIT_OK;
}

int mr_cli_token(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return MR_EXIT_USAGE;
    }
    const char *sub = argv[1];
    struct mr_instance_args ia = {0};
    const char *tenant = NULL, *role = NULL, *label = NULL, *id = NULL;
    const struct mr_cli_opt opts[] = {
        {"--tenant", &tenant}, {"--role", &role}, {"--label", &label}};
    for (int i = 2; i < argc; i++) {
        int r = mr_instance_opt(argc, argv, &i, &ia, opts, 3);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r > 0)
            continue;
        if (argv[i][0] != '-' && !id) {
            id = argv[i];
        } else {
            fprintf(stderr, "mailroom token: unexpected '%s'\n", argv[i]);
            usage();
            return MR_EXIT_USAGE;
        }
    }
    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 &&
        strcmp(sub, "revoke") != 0) {
        usage();
        return MR_EXIT_USAGE;
    }
    struct mr_instance inst;
    int rc = mr_instance_open("token", &ia,
                              MR_INSTANCE_STORE | MR_INSTANCE_MIGRATE |
                                  MR_INSTANCE_MKDIR,
                              &inst);
    if (rc != 0)
        return rc;
    if (strcmp(sub, "create") == 0)
        rc = create(&inst, tenant, role, label);
    else if (strcmp(sub, "list") == 0)
        rc = list(&inst, tenant);
    else
        rc = revoke(&inst, id);
    mr_instance_close(&inst);
    return rc;
}
