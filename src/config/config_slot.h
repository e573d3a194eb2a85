/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_slot.h - the configuration whose integrations (and webhook
 * subscriptions) are in force: one reference-counted mr_config behind a
 * mutex, replaced whole when `serve` reloads its file (SIGHUP, POST
 * /api/v1/admin/reload; src/outbound/config_reload.h).
 *
 * Why a whole config and not a copy of the integrations: the loaded
 * config is immutable and already owns every string an integration
 * points at, so holding it is a copy with no new code to get wrong. Only
 * the integrations of the held config are used; everything else of a
 * reloaded file (listeners, storage, limits...) is NOT applied, and the
 * running config (the one serve started with) stays what every other
 * thread reads.
 *
 * The notify sender takes a reference per round (mr_config_slot_acquire)
 * and reads the held config without a lock; a swap never frees a config a
 * reference still holds: the config is freed by whoever drops its last
 * reference (the slot holds one on its current config).
 *
 * Ownership: the first config is borrowed (mr_config_slot_new: the
 * caller's, never freed here, and it must outlive the slot); every config
 * given to mr_config_slot_swap becomes the slot's, freed with
 * mr_config_free when its last reference goes. The slot must outlive
 * every reference.
 */
#ifndef MR_CONFIG_SLOT_H
#define MR_CONFIG_SLOT_H

#include <stdint.h>

#include "config/config.h"

struct mr_config_slot;
struct mr_config_ref; /* a held config, read with mr_config_ref_get */

/* initial: borrowed (may be NULL: acquire answers NULL until a swap). */
struct mr_config_slot *mr_config_slot_new(const struct mr_config *initial);
/* Drops the slot's reference; a config still referenced leaks, so call
 * only after every holder released (threads joined). NULL is fine. */
void mr_config_slot_free(struct mr_config_slot **slot);

/* cfg (owned by the slot from here) replaces the current config. */
void mr_config_slot_swap(struct mr_config_slot *slot, struct mr_config *cfg);

/* A reference to the current config, or NULL (NULL slot, or none). */
struct mr_config_ref *mr_config_slot_acquire(struct mr_config_slot *slot);
const struct mr_config *mr_config_ref_get(const struct mr_config_ref *ref);
/* NULL ref is fine. */
void mr_config_slot_release(struct mr_config_slot *slot,
                            struct mr_config_ref *ref);

/* How many swaps happened (tests, logs). */
uint64_t mr_config_slot_generation(struct mr_config_slot *slot);

#endif
