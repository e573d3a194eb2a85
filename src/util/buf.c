/* SPDX-License-Identifier: Apache-2.0 */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

void *mr_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fputs("mailroom: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *mr_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        fputs("mailroom: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *mr_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fputs("mailroom: out of memory\n", stderr);
        abort();
    }
    return q;
}

char *mr_xstrndup(const char *s, size_t n)
{
    char *p = mr_xmalloc(n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void mr_buf_init(struct mr_buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->alloc = 0;
    b->max = max ? max : SIZE_MAX - 1;
    b->limited = false;
}

void mr_buf_release(struct mr_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->alloc = 0;
    b->limited = false;
}

void mr_buf_reset(struct mr_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
    b->limited = false;
}

char *mr_buf_detach(struct mr_buf *b, size_t *len_r)
{
    char *p = b->p ? b->p : mr_xstrndup("", 0);
    if (len_r)
        *len_r = b->len;
    b->p = NULL;
    b->len = b->alloc = 0;
    return p;
}

/* Room for n more bytes plus the NUL; returns how many of n fit. */
static size_t grow(struct mr_buf *b, size_t n)
{
    size_t room = b->max - b->len;
    if (n > room)
        n = room;
    if (b->len + n + 1 > b->alloc) {
        /* 256 to start: most buffers hold a header value or a name, and
         * growing 64, 128, 256 cost a realloc each (3% of the
         * no-attachment benchmark). */
        size_t want = b->alloc ? b->alloc : 256;
        while (want < b->len + n + 1)
            want = want > SIZE_MAX / 2 ? b->len + n + 1 : want * 2;
        b->p = mr_xrealloc(b->p, want);
        b->alloc = want;
    }
    return n;
}

/* mr_buf_append when the bytes do not fit the allocation as it is. */
int mr__buf_append_grow(struct mr_buf *b, const void *p, size_t n)
{
    if (b->limited)
        return MR_ELIMIT;
    size_t fit = grow(b, n);
    if (fit)
        memcpy(b->p + b->len, p, fit);
    b->len += fit;
    b->p[b->len] = '\0';
    if (fit < n) {
        b->limited = true;
        return MR_ELIMIT;
    }
    return 0;
}

int mr_buf_puts(struct mr_buf *b, const char *s)
{
    return mr_buf_append(b, s, strlen(s));
}

int mr_buf_printf(struct mr_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return MR_EINVAL;
    if ((size_t)n < sizeof(small))
        return mr_buf_append(b, small, (size_t)n);
    char *big = mr_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = mr_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

/* mr_buf_reserve when the allocation has to grow first. */
char *mr__buf_reserve_grow(struct mr_buf *b, size_t n)
{
    if (b->limited)
        return NULL;
    if (grow(b, n) < n) {
        b->limited = true;
        return NULL;
    }
    return b->p + b->len;
}

void mr_buf_truncate(struct mr_buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->p[len] = '\0';
    }
}

int mr_buf_read_file(struct mr_buf *b, const char *path, struct mr_error *err)
{
    mr_buf_reset(b);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return mr_error_set(err, MR_EIO, "%s: %s", path, strerror(errno));
    for (;;) {
        size_t room = b->max - b->len;
        size_t want = room < 65536 ? room : 65536;
        if (want == 0) {
            /* At the cap: limited only if the file goes on. */
            if (fgetc(f) != EOF)
                b->limited = true;
            break;
        }
        char *p = mr_buf_reserve(b, want);
        if (p == NULL)
            break;
        size_t got = fread(p, 1, want, f);
        mr_buf_commit(b, got);
        if (got < want)
            break;
    }
    int bad = ferror(f);
    int saved = errno;
    fclose(f);
    if (bad)
        return mr_error_set(err, MR_EIO, "%s: %s", path, strerror(saved));
    return 0;
}
