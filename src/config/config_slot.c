/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_slot.c - the swappable, reference-counted configuration (see
 * config_slot.h). A mutex, like rules_slot.c: acquire happens once per
 * sender round, so the lock is never hot, and "read the pointer, bump its
 * count" is one step.
 */
#include "config/config_slot.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/buf.h"

struct mr_config_ref {
    const struct mr_config *cfg;
    struct mr_config *owned; /* == cfg when the slot frees it; NULL when
                                borrowed (the first one) */
    size_t refs;             /* under the slot's mutex; the slot holds one */
};

struct mr_config_slot {
    pthread_mutex_t mu;
    struct mr_config_ref *cur; /* under mu */
    uint64_t generation;       /* under mu */
};

static struct mr_config_ref *ref_new(const struct mr_config *cfg,
                                     struct mr_config *owned)
{
    struct mr_config_ref *r = mr_xcalloc(1, sizeof *r);
    r->cfg = cfg;
    r->owned = owned;
    r->refs = 1;
    return r;
}

struct mr_config_slot *mr_config_slot_new(const struct mr_config *initial)
{
    struct mr_config_slot *s = mr_xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    if (initial)
        s->cur = ref_new(initial, NULL);
    return s;
}

/* Under mu. *dead gets the config to free outside the lock. */
static void unref_locked(struct mr_config_ref *r, struct mr_config **dead)
{
    if (r && --r->refs == 0) {
        *dead = r->owned;
        free(r);
    }
}

void mr_config_slot_free(struct mr_config_slot **slot)
{
    struct mr_config_slot *s = *slot;
    if (!s)
        return;
    struct mr_config *dead = NULL;
    pthread_mutex_lock(&s->mu);
    unref_locked(s->cur, &dead);
    s->cur = NULL;
    pthread_mutex_unlock(&s->mu);
    mr_config_free(dead);
    pthread_mutex_destroy(&s->mu);
    free(s);
    *slot = NULL;
}

void mr_config_slot_swap(struct mr_config_slot *slot, struct mr_config *cfg)
{
    struct mr_config_ref *r = ref_new(cfg, cfg);
    struct mr_config *dead = NULL;
    pthread_mutex_lock(&slot->mu);
    unref_locked(slot->cur, &dead);
    slot->cur = r;
    slot->generation++;
    pthread_mutex_unlock(&slot->mu);
    mr_config_free(dead);
}

struct mr_config_ref *mr_config_slot_acquire(struct mr_config_slot *slot)
{
    if (!slot)
        return NULL;
    pthread_mutex_lock(&slot->mu);
    struct mr_config_ref *r = slot->cur;
    if (r)
        r->refs++;
    pthread_mutex_unlock(&slot->mu);
    return r;
}

const struct mr_config *mr_config_ref_get(const struct mr_config_ref *ref)
{
    return ref ? ref->cfg : NULL;
}

void mr_config_slot_release(struct mr_config_slot *slot,
                            struct mr_config_ref *ref)
{
    if (!slot || !ref)
        return;
    struct mr_config *dead = NULL;
    pthread_mutex_lock(&slot->mu);
    unref_locked(ref, &dead);
    pthread_mutex_unlock(&slot->mu);
    mr_config_free(dead);
}

uint64_t mr_config_slot_generation(struct mr_config_slot *slot)
{
    pthread_mutex_lock(&slot->mu);
    uint64_t g = slot->generation;
    pthread_mutex_unlock(&slot->mu);
    return g;
}
