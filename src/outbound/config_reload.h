/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_reload.h - `serve` reading its configuration file again (SIGHUP,
 * POST /api/v1/admin/reload; docs/configuration.md "Reloading").
 *
 * What a reload applies: each tenant's `integrations` (swapped into the
 * config slot the notify sender reads, config/config_slot.h) and
 * `webhooks` (written into the store again with
 * mr_dispatch_sync_config; the dispatcher sees the store's webhook
 * counter move). Nothing else: every other top-level key whose value in
 * the file differs from the file serve started with is reported as
 * needing a restart, and the running config stays as it is. A file with
 * any error changes nothing (the loader's diagnostics, with line and
 * column, are handed back).
 *
 * Reloads are serialised (a SIGHUP and an API call at once): the store
 * sync and the swap happen in one order.
 *
 * Ownership: the reloader borrows running, slot and store, which must
 * outlive it; it copies the path.
 *
 * The webhook sync is passed in (serve gives mr_dispatch_sync_config) so
 * that the HTTP server, which calls mr_config_reload, does not link the
 * dispatcher and its store calls (tests stub those).
 */
#ifndef MR_OUTBOUND_CONFIG_RELOAD_H
#define MR_OUTBOUND_CONFIG_RELOAD_H

#include <stdbool.h>

#include "config/config.h"
#include "config/config_slot.h"
#include "store/store.h"
#include "util/error.h"

struct mr_config_reloader;

struct mr_config_reload_result {
    /* Top-level keys that changed and need a restart (static strings). */
    const char *restart[MR_CONFIG_TOP_KEYS];
    size_t nrestart;
    size_t nintegrations; /* in force now, all tenants */
    size_t nwebhooks;     /* configuration subscriptions, all tenants */
};

/* running: the config serve started with; a zero-config one (no file)
 * makes a reloader without a path, which answers 0 and does nothing. */
typedef int (*mr_config_webhook_sync_fn)(const struct mr_config *cfg,
                                         struct mr_store *st, bool *any,
                                         struct mr_error *err);
/* sync may be NULL: webhooks are not written (tests). */
struct mr_config_reloader *
mr_config_reloader_new(const struct mr_config *running,
                       struct mr_config_slot *slot, struct mr_store *st,
                       mr_config_webhook_sync_fn sync);
void mr_config_reloader_free(struct mr_config_reloader **r);
/* The slot the reloader swaps into (for checks against the integrations
 * in force). NULL reloader: NULL. */
struct mr_config_slot *
mr_config_reloader_slot(const struct mr_config_reloader *r);
/* The file, or NULL (zero config). NULL reloader: NULL. */
const char *mr_config_reloader_path(const struct mr_config_reloader *r);

/* Loads the file; see above. MR_EINVAL (problems: diags lists them, err
 * names the first), MR_EIO (unreadable), a store error from the webhook
 * sync (the integrations then stay as they were), or 0 with *res filled. */
int mr_config_reload(struct mr_config_reloader *r,
                     struct mr_config_reload_result *res,
                     struct mr_config_diags *diags, struct mr_error *err);

#endif
