/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_slot.h - the server's current rule set (docs/rules.md): one
 * reference-counted mr_rules behind a mutex, replaced whole on reload.
 *
 * Workers take a reference per batch (mr_rules_slot_acquire) and evaluate
 * against it without any lock; a reload (SIGHUP, or a POST to the
 * admin reload route) loads the file into a new mr_rules and swaps it in
 * only when the file has no error, so a broken edit never takes routing
 * away. The replaced set is freed by whoever drops its last reference.
 *
 * Ownership: the slot owns the current set; a reference keeps its set
 * alive until mr_rules_slot_release. The slot must outlive every
 * reference.
 */
#ifndef MR_RULES_SLOT_H
#define MR_RULES_SLOT_H

#include "ticket/rules.h"

struct mr_rules_slot;
struct mr_rules_ref; /* a held rule set, read with mr_rules_ref_get */

/* path: the rules file (copied); NULL means no rules ever. */
struct mr_rules_slot *mr_rules_slot_new(const char *path);
void mr_rules_slot_free(struct mr_rules_slot **slot);
const char *mr_rules_slot_path(const struct mr_rules_slot *slot);

/* Loads the file; when it has no error the new set replaces the current
 * one, else the current one stays and diags lists every problem.
 * MR_EINVAL (problems), MR_EIO (unreadable), or 0. A slot without a path
 * answers 0 and changes nothing. On success, *ntenants and *nrules (may be
 * NULL) tell what was loaded. */
int mr_rules_slot_reload(struct mr_rules_slot *slot,
                         struct mr_config_diags *diags, size_t *ntenants,
                         size_t *nrules, struct mr_error *err);

/* A reference to the current set, or NULL when there is none (no path,
 * nothing loaded yet). NULL slot: NULL. */
struct mr_rules_ref *mr_rules_slot_acquire(struct mr_rules_slot *slot);
const struct mr_rules *mr_rules_ref_get(const struct mr_rules_ref *ref);
/* NULL is fine. */
void mr_rules_slot_release(struct mr_rules_slot *slot,
                           struct mr_rules_ref *ref);

/* How many times a set was swapped in (tests). */
uint64_t mr_rules_slot_generation(struct mr_rules_slot *slot);

#endif
