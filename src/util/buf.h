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

#include "span.h"

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

int mr_buf_append(struct mr_buf *b, const void *p, size_t n);
int mr_buf_putc(struct mr_buf *b, char c);
int mr_buf_puts(struct mr_buf *b, const char *s);
int mr_buf_printf(struct mr_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes and returns where they go; the caller writes
 * at most n bytes there and then calls mr_buf_commit(b, written). Returns
 * NULL when the cap leaves no room (limited is then set). */
char *mr_buf_reserve(struct mr_buf *b, size_t n);
void mr_buf_commit(struct mr_buf *b, size_t n);
void mr_buf_truncate(struct mr_buf *b, size_t len);

static inline mr_span mr_buf_span(const struct mr_buf *b)
{
    return mr_span_make(b->p ? b->p : "", b->len);
}

/* Allocation that aborts on out-of-memory: the only sane reaction in a
 * server whose inputs are all capped. */
void *mr_xmalloc(size_t n);
void *mr_xcalloc(size_t n, size_t size);
void *mr_xrealloc(void *p, size_t n);
char *mr_xstrndup(const char *s, size_t n);

#endif
