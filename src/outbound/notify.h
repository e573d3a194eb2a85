/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.h - the integrations' sender (docs/integrations.md): one thread
 * that drains due notifications (src/store/notifications.c) and makes
 * each one's request (integrations.h) through http_out.h, with retries on
 * the webhooks' schedule and a dead end with the reason.
 *
 * At least once: a row is "sent" only after a 2xx. A GitHub or Jira
 * issue is made once per ticket and integration: a ticket whose links
 * already hold one is not sent again (the row is marked sent with a note).
 *
 * Every recorded attempt is counted in metrics->notifications (by the
 * integration's kind and what the attempt came to).
 *
 * Integrations are looked up in the config slot's config
 * (config/config_slot.h), one reference per round, so a reload swaps them
 * between rounds and never under a request in flight; everything else
 * (ticket_url, retry scale, allow-private) comes from cfg, the running
 * config. Without a slot, cfg's integrations are used.
 *
 * The sender borrows cfg, slot, store, log and metrics (may be NULL:
 * nothing counted), which must outlive it;
 * mr_notify_stop joins the thread (a request in flight is aborted and
 * counted as no attempt) and frees it.
 */
#ifndef MR_OUTBOUND_NOTIFY_H
#define MR_OUTBOUND_NOTIFY_H

#include "config/config.h"
#include "config/config_slot.h"
#include "store/store.h"
#include "ticket/rules.h"
#include "util/error.h"
#include "util/log.h"
#include "util/metrics.h"

struct mr_notify;

/* Starts the thread. libcurl is loaded only when a tenant has an
 * integration (MR_EIO when it is missing then; when integrations appear
 * only with a reload, it is loaded then, and a notification that finds it
 * missing is dead with the reason). */
int mr_notify_start(const struct mr_config *cfg, struct mr_store *st,
                    struct mr_log *log, struct mr_metrics *metrics,
                    struct mr_notify **out, struct mr_error *err);
/* The same, with integrations read from slot (may be NULL: cfg's). */
int mr_notify_start_slot(const struct mr_config *cfg,
                         struct mr_config_slot *slot, struct mr_store *st,
                         struct mr_log *log, struct mr_metrics *metrics,
                         struct mr_notify **out, struct mr_error *err);
/* NULL is a no-op. */
void mr_notify_stop(struct mr_notify *n);

/* Calls fn with a message for every notify action of rs whose name is
 * not an integration of its tenant; returns how many. */
size_t mr_notify_check_rules(const struct mr_config *cfg,
                             const struct mr_rules *rs,
                             void (*fn)(void *ctx, const char *msg),
                             void *ctx);

#endif
