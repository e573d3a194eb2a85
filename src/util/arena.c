/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A chain of chunks; allocations bump a pointer in the newest chunk. A
 * request larger than a quarter chunk gets a chunk of its own, so big
 * decoded bodies do not waste the tail of a shared chunk. Blocks taken
 * over from malloc (mr_arena_own) are listed, in the arena, to be freed
 * with it.
 */
#include "arena.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define CHUNK_SIZE (64 * 1024)
#define ALIGN alignof(max_align_t)

struct chunk {
    struct chunk *next;
    size_t used, size;
    alignas(max_align_t) char data[];
};

struct owned {
    struct owned *next;
    void *p;
};

struct mr_arena {
    struct chunk *head;
    struct owned *owned;
    size_t total;
};

struct mr_arena *mr_arena_new(void)
{
    return mr_xcalloc(1, sizeof(struct mr_arena));
}

void mr_arena_free(struct mr_arena **ap)
{
    struct mr_arena *a = *ap;
    if (a == NULL)
        return;
    for (struct owned *o = a->owned; o != NULL; o = o->next)
        free(o->p);
    struct chunk *c = a->head;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
    *ap = NULL;
}

static struct chunk *new_chunk(size_t size)
{
    struct chunk *c = mr_xmalloc(sizeof(struct chunk) + size);
    c->next = NULL;
    c->used = 0;
    c->size = size;
    return c;
}

void *mr_arena_alloc(struct mr_arena *a, size_t n)
{
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (n == 0)
        n = ALIGN;
    a->total += n;
    struct chunk *c = a->head;
    if (c && c->size - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    if (n > CHUNK_SIZE / 4) {
        /* A dedicated chunk, linked behind the head so the head's free tail
         * stays usable. */
        struct chunk *big = new_chunk(n);
        big->used = n;
        if (c) {
            big->next = c->next;
            c->next = big;
        } else {
            a->head = big;
        }
        return big->data;
    }
    c = new_chunk(CHUNK_SIZE);
    c->next = a->head;
    a->head = c;
    c->used = n;
    return c->data;
}

void *mr_arena_zalloc(struct mr_arena *a, size_t n)
{
    void *p = mr_arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *mr_arena_strndup(struct mr_arena *a, const char *s, size_t n)
{
    char *p = mr_arena_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *mr_arena_realloc(struct mr_arena *a, void *old, size_t old_n, size_t n)
{
    if (n <= old_n)
        return old;
    void *p = mr_arena_alloc(a, n);
    if (old_n)
        memcpy(p, old, old_n);
    return p;
}

void mr_arena_own(struct mr_arena *a, void *p)
{
    struct owned *o = mr_arena_alloc(a, sizeof(*o));
    o->p = p;
    o->next = a->owned;
    a->owned = o;
}

size_t mr_arena_used(const struct mr_arena *a)
{
    return a->total;
}
