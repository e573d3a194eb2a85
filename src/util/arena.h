/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arena.h - per-message memory: many small allocations, one free.
 *
 * Everything parsed from one message lives in its arena and dies with
 * mr_arena_free. Allocation aborts on real out-of-memory (inputs are capped
 * elsewhere). Not thread-safe: an arena belongs to one worker at a time.
 */
#ifndef MR_ARENA_H
#define MR_ARENA_H

#include <stddef.h>

struct mr_arena;

/* Caller frees with mr_arena_free. */
struct mr_arena *mr_arena_new(void);
/* Frees every allocation and the arena; sets *a to NULL. */
void mr_arena_free(struct mr_arena **a);

/* Memory aligned for any type, valid until the arena is freed. */
void *mr_arena_alloc(struct mr_arena *a, size_t n);
void *mr_arena_zalloc(struct mr_arena *a, size_t n);
/* A NUL-terminated copy of n bytes. */
char *mr_arena_strndup(struct mr_arena *a, const char *s, size_t n);
/* Grows an array allocated in the arena (old contents copied). */
void *mr_arena_realloc(struct mr_arena *a, void *old, size_t old_n, size_t n);
/* Takes p (from malloc, as mr_buf_detach gives it) into the arena: it is
 * freed with the arena. For large results built in an mr_buf, which would
 * otherwise be copied into the arena whole. */
void mr_arena_own(struct mr_arena *a, void *p);

/* Bytes handed out so far (for limits and tests). */
size_t mr_arena_used(const struct mr_arena *a);

#endif
