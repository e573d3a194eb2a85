/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify_check.c - rules that notify a name no integration has
 * (notify.h). Apart from the sender so that the HTTP server's reload
 * route can warn without linking the sender and its store calls.
 */
#include "outbound/notify.h"

#include <stdio.h>

struct check_ctx {
    const struct mr_config *cfg;
    void (*fn)(void *ctx, const char *msg);
    void *ctx;
    size_t n;
};

static void check_one(void *arg, const char *tenant, const char *rule,
                      const char *name)
{
    struct check_ctx *c = arg;
    if (mr_config_integration(c->cfg, tenant, name) != NULL)
        return;
    char msg[400];
    snprintf(msg, sizeof msg, "rule '%s' of tenant '%s' notifies '%s', which "
             "is not an integration of that tenant (its notifications will "
             "be recorded dead with notify_unknown)", rule, tenant, name);
    c->fn(c->ctx, msg);
    c->n++;
}

size_t mr_notify_check_rules(const struct mr_config *cfg,
                             const struct mr_rules *rs,
                             void (*fn)(void *ctx, const char *msg),
                             void *ctx)
{
    struct check_ctx c = {cfg, fn, ctx, 0};
    mr_rules_each_notify(rs, check_one, &c);
    return c.n;
}
