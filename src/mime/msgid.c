/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgid.c - Message-ID, Content-ID, In-Reply-To and References values.
 *
 * One linear scanner serves both entry points. It walks the value token by
 * token: comments are skipped, "<...>" is an id, a quoted string or a word
 * is junk, except that a word shaped like local@domain is remembered as a
 * bracketless id. Bracketless ids are used only when the value holds no
 * bracketed one: In-Reply-To values such as
 *   "john@x.org's message of Mon, 6 Jan 2025 <id@x.org>"
 * are common, and there the bare word is a phrase, not an id.
 *
 * Threading compares ids byte for byte, so normalization is what makes
 * "<a@b>" in one message equal "<a@\r\n b>" or "<\"a\"@b>" in another.
 */
#include "msgid.h"

#include <stdbool.h>
#include <stdint.h>

#include "../util/buf.h"
#include "../util/utf8.h"

/* Used when the caller passes max_len 0: the RFC 5322 line limit. */
#define DEFAULT_MAX_LEN 998

struct scan {
    struct mr_arena *a;
    size_t max_len;
    unsigned flags;
    struct mr_buf tmp, out;
};

/* The ids kept so far: grows up to max, then the oldest is overwritten. */
struct ring {
    const char **v;
    size_t cap, max, total;
};

static void ring_push(struct mr_arena *a, struct ring *r, const char *id)
{
    if (r->max == 0) {
        r->total++;
        return;
    }
    if (r->total < r->max && r->total == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        if (cap > r->max)
            cap = r->max;
        r->v = mr_arena_realloc(a, r->v, r->cap * sizeof(*r->v),
                                cap * sizeof(*r->v));
        r->cap = cap;
    }
    r->v[r->total % r->max] = id;
    r->total++;
}

/* The kept ids, oldest first, as a fresh arena array. */
static size_t ring_take(struct mr_arena *a, const struct ring *r,
                        const char ***ids_r)
{
    size_t n = r->total < r->max ? r->total : r->max;
    *ids_r = NULL;
    if (n == 0)
        return 0;
    const char **v = mr_arena_alloc(a, n * sizeof(*v));
    size_t first = r->total - n;
    for (size_t k = 0; k < n; k++)
        v[k] = r->v[(first + k) % r->max];
    *ids_r = v;
    return n;
}

static bool is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c >= 0x80)
        return true;
    return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Index just past the comment that starts at p[i] == '('. Comments nest;
 * the depth is a counter, not recursion. Unterminated: end of input. */
static size_t skip_comment(const char *p, size_t n, size_t i)
{
    size_t depth = 0;
    while (i < n) {
        char c = p[i++];
        if (c == '\\')
            i++;
        else if (c == '(')
            depth++;
        else if (c == ')' && --depth == 0)
            break;
    }
    return i < n ? i : n;
}

/* Index just past the quoted string starting at p[i] == '"'. */
static size_t skip_quoted(const char *p, size_t n, size_t i)
{
    i++;
    while (i < n) {
        char c = p[i++];
        if (c == '\\')
            i++;
        else if (c == '"')
            break;
    }
    return i < n ? i : n;
}

/* '"local"@domain' -> 'local@domain' when local is a valid dot-atom; the
 * quotes then carry no meaning (RFC 5322 3.4.1), and ids must compare
 * equal however the sender spelled them. */
static void unquote_local(struct mr_buf *b)
{
    if (b->len < 4 || b->p[0] != '"')
        return;
    size_t q = skip_quoted(b->p, b->len, 0);
    if (q < 3 || q >= b->len || b->p[q - 1] != '"' || b->p[q] != '@')
        return;
    const char *s = b->p + 1;
    size_t n = q - 2;
    bool dot_ok = false; /* a dot may not lead, trail or repeat */
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '.') {
            if (!dot_ok)
                return;
            dot_ok = false;
        } else if (is_atext(c)) {
            dot_ok = true;
        } else {
            return;
        }
    }
    if (!dot_ok)
        return;
    memmove(b->p, s, n);
    memmove(b->p + n, b->p + q, b->len - q);
    mr_buf_truncate(b, b->len - 2);
}

/* The normalized id of p[0..n) (the text inside the brackets), in the
 * arena; NULL when empty or too long. */
static const char *make_id(struct scan *s, const char *p, size_t n)
{
    mr_buf_reset(&s->tmp);
    mr_buf_reset(&s->out);
    /* The usual id has no space, control, quote or backslash: nothing to
     * drop or unquote, so it is copied whole (a byte at a time was 3% of
     * the no-attachment benchmark, ids being in every References). */
    size_t plain = 0;
    while (plain < n && (unsigned char)p[plain] > ' ' && p[plain] != 0x7F &&
           p[plain] != '"' && p[plain] != '\\')
        plain++;
    if (plain == n) {
        mr_buf_append(&s->tmp, p, n);
    } else {
        bool quoted = false;
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)p[k];
            if (c == '\r' || c == '\n')
                continue; /* folding (RFC 5322 3.2.2), also inside quotes */
            if (!quoted && (c == ' ' || c == '\t'))
                continue;
            if (c < 0x20 || c == 0x7F) {
                if (c != '\t') {
                    s->flags |= MR_MSGID_JUNK;
                    continue;
                }
            }
            if (c == '"')
                quoted = !quoted;
            else if (c == '\\' && quoted && k + 1 < n) {
                mr_buf_putc(&s->tmp, (char)c);
                c = (unsigned char)p[++k];
            }
            mr_buf_putc(&s->tmp, (char)c);
        }
    }
    if (s->tmp.len == 0)
        return NULL;
    unquote_local(&s->tmp);
    mr_utf8_repair(&s->out, s->tmp.p, s->tmp.len, true);
    if (s->tmp.limited || s->out.limited || s->out.len > s->max_len) {
        s->flags |= MR_MSGID_TOO_LONG;
        return NULL;
    }
    if (s->out.len == 0)
        return NULL;
    return mr_arena_strndup(s->a, s->out.p, s->out.len);
}

/* local@domain with both sides non-empty. */
static bool looks_like_id(const char *p, size_t n)
{
    size_t at = n;
    for (size_t k = 0; k < n; k++)
        if (p[k] == '@')
            at = k;
    return at > 0 && at + 1 < n;
}

static bool stops_word(char c)
{
    return mr_is_wsp((unsigned char)c) || c == '(' || c == '<' || c == '>' ||
           c == ',' || c == '"';
}

/* Walks raw. Bracketed ids go to `ids`, bracketless candidates to `bare`.
 * With first_only, stops at the first bracketed id. */
static void scan_value(struct scan *s, mr_span raw, bool first_only,
                       struct ring *ids, struct ring *bare)
{
    const char *p = raw.p;
    size_t n = raw.p ? raw.n : 0, i = 0;
    while (i < n) {
        char c = p[i];
        if (mr_is_wsp((unsigned char)c) || c == ',') {
            i++;
        } else if (c == '(') {
            i = skip_comment(p, n, i);
        } else if (c == '<') {
            /* Find the '>' outside quotes; a second '<' restarts the id
             * ("<<id@x>>", "<junk <id@x>"). */
            size_t start = i + 1, j = start;
            bool quoted = false, closed = false;
            while (j < n) {
                char d = p[j];
                if (d == '\\' && quoted) {
                    j += 2;
                    continue;
                }
                if (d == '"')
                    quoted = !quoted;
                else if (!quoted && d == '>') {
                    closed = true;
                    break;
                } else if (!quoted && d == '<') {
                    s->flags |= MR_MSGID_JUNK;
                    start = j + 1;
                }
                j++;
            }
            if (j > n)
                j = n;
            if (closed) {
                const char *id = make_id(s, p + start, j - start);
                i = j + 1;
                if (id) {
                    ring_push(s->a, ids, id);
                    if (first_only)
                        return;
                }
                continue;
            }
            /* No '>': the id runs to the next whitespace. */
            size_t e = start;
            while (e < n && !mr_is_wsp((unsigned char)p[e]))
                e++;
            const char *id = NULL;
            if (looks_like_id(p + start, e - start))
                id = make_id(s, p + start, e - start);
            if (id) {
                s->flags |= MR_MSGID_NO_BRACKETS;
                ring_push(s->a, ids, id);
                if (first_only)
                    return;
            } else {
                s->flags |= MR_MSGID_JUNK;
            }
            i = e;
        } else if (c == '"') {
            s->flags |= MR_MSGID_JUNK;
            i = skip_quoted(p, n, i);
        } else {
            size_t e = i;
            while (e < n && !stops_word(p[e]))
                e++;
            if (e == i)
                e++; /* a stray '>' */
            const char *id = NULL;
            if (looks_like_id(p + i, e - i))
                id = make_id(s, p + i, e - i);
            if (id)
                ring_push(s->a, bare, id);
            else
                s->flags |= MR_MSGID_JUNK;
            i = e;
        }
    }
}

static void scan_init(struct scan *s, struct mr_arena *a, size_t max_len)
{
    s->a = a;
    s->max_len = max_len ? max_len : DEFAULT_MAX_LEN;
    s->flags = 0;
    /* Generous caps: normalization only shrinks, repair at most triples. */
    size_t cap = s->max_len < SIZE_MAX / 4 ? s->max_len * 3 + 16 : 0;
    mr_buf_init(&s->tmp, cap);
    mr_buf_init(&s->out, cap);
}

static void scan_done(struct scan *s, unsigned *flags_r)
{
    mr_buf_release(&s->tmp);
    mr_buf_release(&s->out);
    if (flags_r)
        *flags_r |= s->flags;
}

const char *mr_msgid_parse(struct mr_arena *a, mr_span raw, size_t max_len,
                           unsigned *flags_r)
{
    struct scan s;
    struct ring ids = {.max = 1}, bare = {.max = 2};
    scan_init(&s, a, max_len);
    scan_value(&s, raw, true, &ids, &bare);
    const char *id = NULL;
    if (ids.total > 0) {
        id = ids.v[0];
    } else if (bare.total == 1) {
        id = bare.v[0];
        s.flags |= MR_MSGID_NO_BRACKETS;
    } else if (bare.total > 1) {
        s.flags |= MR_MSGID_JUNK;
    }
    scan_done(&s, flags_r);
    return id;
}

size_t mr_msgid_list(struct mr_arena *a, mr_span raw, size_t max,
                     size_t max_len, const char ***ids_r, unsigned *flags_r)
{
    struct scan s;
    struct ring ids = {.max = max}, bare = {.max = max};
    scan_init(&s, a, max_len);
    scan_value(&s, raw, false, &ids, &bare);
    struct ring *use = &ids;
    if (ids.total == 0 && bare.total > 0) {
        use = &bare;
        s.flags |= MR_MSGID_NO_BRACKETS;
    } else if (bare.total > 0) {
        s.flags |= MR_MSGID_JUNK;
    }
    if (use->total > max)
        s.flags |= MR_MSGID_TOO_MANY;
    size_t n = ring_take(a, use, ids_r);
    scan_done(&s, flags_r);
    return n;
}
