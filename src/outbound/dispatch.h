/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch.h - outbound webhooks: one thread that turns outbox events into
 * deliveries (src/store/webhooks.c) and POSTs them to the store's
 * subscriptions (the configuration's, written there at start, and the
 * API's), signed (Standard Webhooks headers and X-Email-Signature).
 *
 * Delivery is at least once: a row is marked delivered only after a 2xx;
 * webhook-id ("evt_<seq>") is the same on every retry so receivers can
 * deduplicate. Every attempt's outcome is counted in
 * metrics->webhook_deliveries. The dispatcher borrows cfg, store, log and
 * metrics (may be NULL: nothing counted), which must outlive it; mr_dispatch_stop joins the thread (an attempt in flight is
 * aborted) and frees it.
 */
#ifndef MR_DISPATCH_H
#define MR_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "store/store.h"
#include "util/error.h"
#include "util/log.h"
#include "util/metrics.h"

struct mr_dispatch;

/* Writes the configuration's subscriptions into the store and starts the
 * thread. *out is NULL (and 0 returned) only when libcurl cannot be
 * loaded and the configuration has no active webhook (logged). */
int mr_dispatch_start(const struct mr_config *cfg, struct mr_store *st,
                      struct mr_log *log, struct mr_metrics *metrics,
                      struct mr_dispatch **out, struct mr_error *err);
/* Writes cfg's subscriptions into the store (source 'config'; those the
 * file no longer has become inactive); *any gets whether one of them is
 * active. Called by mr_dispatch_start and by a configuration reload: a
 * running dispatcher sees the store's webhook counter move and reads the
 * subscriptions again. */
int mr_dispatch_sync_config(const struct mr_config *cfg, struct mr_store *st,
                            bool *any, struct mr_error *err);

/* NULL is a no-op. */
void mr_dispatch_stop(struct mr_dispatch *d);

/* Milliseconds to wait after failed attempt number `attempts` (1-based)
 * before the next: the schedule's wait (docs/webhooks.md) plus up to a
 * fifth of it by rnd, a random value in [0, 1), so that deliveries that
 * failed together (a receiver's outage) do not all come back at once;
 * scaled. -1 when the delivery is dead. rnd: mr_backoff_rnd(). */
int64_t mr_dispatch_retry_delay_ms(int attempts, double scale, double rnd);


#endif
