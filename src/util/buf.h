/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.h - the one growable byte buffer, with a cap.
 *
 * Every buffer is created with the most bytes it may ever hold, so that
 * hostile input runs into MR_ELIMIT, never into unbounded memory. An append
 * that would pass the cap stores as much as fits, sets the sticky `limited`
 * flag and returns MR_ELIMIT; later appends are refused the same way, so a
 * caller may append many pieces and check once at the end. The content is
 * always NUL-terminated (for convenience only: it may hold NUL bytes).
 * Real out-of-memory aborts the process (see mr_xmalloc).
 *
 * Ownership: the buffer owns p; mr_buf_release frees it, mr_buf_detach
 * hands it to the caller (who frees it with free()).
 */
#ifndef MR_BUF_H
#define MR_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "span.h"

struct mr_error;

struct mr_buf {
    char *p;      /* NULL until the first append */
    size_t len;   /* bytes stored, excluding the terminating NUL */
    size_t alloc; /* bytes allocated */
    size_t max;   /* cap on len; 0 means SIZE_MAX */
    bool limited; /* an append was cut at the cap */
};

void mr_buf_init(struct mr_buf *b, size_t max);
void mr_buf_release(struct mr_buf *b);
/* Empties the buffer but keeps its memory and cap; clears `limited`. */
void mr_buf_reset(struct mr_buf *b);
/* Caller frees the result with free(); the buffer is left empty. Never NULL. */
char *mr_buf_detach(struct mr_buf *b, size_t *len_r);

int mr__buf_append_grow(struct mr_buf *b, const void *p, size_t n);

/* Appends n bytes. Inline, because the decoders and the JSON writer append
 * small pieces by the million: when they fit, that is a copy and a store
 * (the call and the checks of the out-of-line version were 7% of the
 * parse benchmark without attachments). */
static inline int mr_buf_append(struct mr_buf *b, const void *p, size_t n)
{
    if (!b->limited && n < b->alloc - b->len && n <= b->max - b->len) {
        if (n)
            memcpy(b->p + b->len, p, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
    }
    return mr__buf_append_grow(b, p, n);
}

static inline int mr_buf_putc(struct mr_buf *b, char c)
{
    return mr_buf_append(b, &c, 1);
}
int mr_buf_puts(struct mr_buf *b, const char *s);
int mr_buf_printf(struct mr_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *mr__buf_reserve_grow(struct mr_buf *b, size_t n);

/* Makes room for n more bytes and returns where they go; the caller writes
 * at most n bytes there and then calls mr_buf_commit(b, written). Returns
 * NULL when the cap leaves no room (limited is then set). */
static inline char *mr_buf_reserve(struct mr_buf *b, size_t n)
{
    if (!b->limited && n < b->alloc - b->len && n <= b->max - b->len)
        return b->p + b->len;
    return mr__buf_reserve_grow(b, n);
}

/* Makes room for n more bytes ahead of time, as far as the cap allows: a
 * size hint that saves growing step by step, never an error. */
static inline void mr_buf_expect(struct mr_buf *b, size_t n)
{
    size_t room = b->max - b->len;
    if (!b->limited)
        (void)mr_buf_reserve(b, n < room ? n : room);
}

static inline void mr_buf_commit(struct mr_buf *b, size_t n)
{
    b->len += n;
    b->p[b->len] = '\0';
}
void mr_buf_truncate(struct mr_buf *b, size_t len);

static inline mr_span mr_buf_span(const struct mr_buf *b)
{
    return mr_span_make(b->p ? b->p : "", b->len);
}

/* Allocation that aborts on out-of-memory: the only sane reaction in a
 * server whose inputs are all capped. */
/* Replaces b's content with the whole file at path, under b's cap (a file
 * over it leaves b limited and cut). 0, or MR_EIO with errno's reason. */
int mr_buf_read_file(struct mr_buf *b, const char *path,
                     struct mr_error *err);

void *mr_xmalloc(size_t n);
void *mr_xcalloc(size_t n, size_t size);
void *mr_xrealloc(void *p, size_t n);
char *mr_xstrndup(const char *s, size_t n);

#endif
