/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_reload.c - the configuration file again (see config_reload.h).
 */
#include "outbound/config_reload.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

struct mr_config_reloader {
    pthread_mutex_t mu; /* one reload at a time */
    const struct mr_config *running;
    struct mr_config_slot *slot;
    struct mr_store *st;
    mr_config_webhook_sync_fn sync; /* may be NULL */
    char *path; /* NULL: zero config, nothing to read */
};

struct mr_config_reloader *
mr_config_reloader_new(const struct mr_config *running,
                       struct mr_config_slot *slot, struct mr_store *st,
                       mr_config_webhook_sync_fn sync)
{
    struct mr_config_reloader *r = mr_xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->running = running;
    r->slot = slot;
    r->st = st;
    r->sync = sync;
    if (!running->zero_config && running->source)
        r->path = mr_xstrndup(running->source, strlen(running->source));
    return r;
}

void mr_config_reloader_free(struct mr_config_reloader **r)
{
    if (!*r)
        return;
    pthread_mutex_destroy(&(*r)->mu);
    free((*r)->path);
    free(*r);
    *r = NULL;
}

struct mr_config_slot *
mr_config_reloader_slot(const struct mr_config_reloader *r)
{
    return r ? r->slot : NULL;
}

const char *mr_config_reloader_path(const struct mr_config_reloader *r)
{
    return r ? r->path : NULL;
}

int mr_config_reload(struct mr_config_reloader *r,
                     struct mr_config_reload_result *res,
                     struct mr_config_diags *diags, struct mr_error *err)
{
    memset(res, 0, sizeof *res);
    if (diags) {
        diags->items = NULL;
        diags->n = 0;
    }
    if (!r || !r->path)
        return 0;
    pthread_mutex_lock(&r->mu);
    struct mr_config *cfg = NULL;
    /* The running data_dir: a relative one in the file would otherwise
     * resolve differently from the one serve uses (it is not applied
     * anyway, but the loaded config should describe the same place). */
    int rc = mr_config_load(r->path, r->running->data_dir, &cfg, diags, err);
    if (rc != MR_OK)
        goto out;
    bool any = false;
    rc = r->sync ? r->sync(cfg, r->st, &any, err) : MR_OK;
    if (rc != MR_OK) {
        mr_config_free(cfg);
        goto out;
    }
    res->nrestart = mr_config_changed(r->running, cfg, res->restart,
                                      MR_CONFIG_TOP_KEYS);
    for (size_t t = 0; t < cfg->ntenants; t++) {
        res->nintegrations += cfg->tenants[t].nintegrations;
        res->nwebhooks += cfg->tenants[t].nwebhooks;
    }
    mr_config_slot_swap(r->slot, cfg);
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}
