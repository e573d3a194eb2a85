/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_slot.c - the swappable, reference-counted rule set. A mutex, not
 * an atomic pointer: acquire happens once per worker batch, so the lock
 * is never hot, and a plain lock makes "read the pointer, bump its count"
 * one step without hazard pointers.
 */
#include "ticket/rules_slot.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

struct mr_rules_ref {
    struct mr_rules *rules;
    size_t refs; /* under the slot's mutex; the slot holds one */
};

struct mr_rules_slot {
    pthread_mutex_t mu;
    char *path;
    struct mr_rules_ref *cur; /* under mu; NULL: no rules */
    uint64_t generation;      /* under mu */
};

struct mr_rules_slot *mr_rules_slot_new(const char *path)
{
    struct mr_rules_slot *s = mr_xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    if (path)
        s->path = mr_xstrndup(path, strlen(path));
    return s;
}

/* Under mu. */
static void unref_locked(struct mr_rules_ref *r, struct mr_rules **dead)
{
    if (r && --r->refs == 0) {
        *dead = r->rules;
        free(r);
    }
}

void mr_rules_slot_free(struct mr_rules_slot **slot)
{
    struct mr_rules_slot *s = *slot;
    if (!s)
        return;
    struct mr_rules *dead = NULL;
    pthread_mutex_lock(&s->mu);
    unref_locked(s->cur, &dead);
    s->cur = NULL;
    pthread_mutex_unlock(&s->mu);
    mr_rules_free(&dead);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
    *slot = NULL;
}

const char *mr_rules_slot_path(const struct mr_rules_slot *slot)
{
    return slot ? slot->path : NULL;
}

int mr_rules_slot_reload(struct mr_rules_slot *slot,
                         struct mr_config_diags *diags, size_t *ntenants,
                         size_t *nrules, struct mr_error *err)
{
    if (!slot || !slot->path)
        return 0;
    struct mr_rules *rs = NULL;
    /* Loading (regex compilation, zone files) happens outside the lock:
     * workers keep evaluating the old set meanwhile. */
    int rc = mr_rules_load_file(slot->path, NULL, &rs, diags, err);
    if (rc != MR_OK)
        return rc;
    if (ntenants || nrules) {
        size_t nt = mr_rules_tenant_count(rs), nr = 0;
        for (size_t i = 0; i < nt; i++)
            nr += mr_rules_count(rs, mr_rules_tenant_name(rs, i));
        if (ntenants)
            *ntenants = nt;
        if (nrules)
            *nrules = nr;
    }
    struct mr_rules_ref *r = mr_xcalloc(1, sizeof *r);
    r->rules = rs;
    r->refs = 1;
    struct mr_rules *dead = NULL;
    pthread_mutex_lock(&slot->mu);
    unref_locked(slot->cur, &dead);
    slot->cur = r;
    slot->generation++;
    pthread_mutex_unlock(&slot->mu);
    mr_rules_free(&dead);
    return 0;
}

struct mr_rules_ref *mr_rules_slot_acquire(struct mr_rules_slot *slot)
{
    if (!slot)
        return NULL;
    pthread_mutex_lock(&slot->mu);
    struct mr_rules_ref *r = slot->cur;
    if (r)
        r->refs++;
    pthread_mutex_unlock(&slot->mu);
    return r;
}

const struct mr_rules *mr_rules_ref_get(const struct mr_rules_ref *ref)
{
    return ref ? ref->rules : NULL;
}

void mr_rules_slot_release(struct mr_rules_slot *slot,
                           struct mr_rules_ref *ref)
{
    if (!slot || !ref)
        return;
    struct mr_rules *dead = NULL;
    pthread_mutex_lock(&slot->mu);
    unref_locked(ref, &dead);
    pthread_mutex_unlock(&slot->mu);
    mr_rules_free(&dead);
}

uint64_t mr_rules_slot_generation(struct mr_rules_slot *slot)
{
    pthread_mutex_lock(&slot->mu);
    uint64_t g = slot->generation;
    pthread_mutex_unlock(&slot->mu);
    return g;
}
