/* SPDX-License-Identifier: Apache-2.0 */
/*
 * params.c - Content-Type / Content-Disposition values and parameters.
 *
 * Two passes. The first splits the text into raw records (name, optional
 * RFC 2231 index and '*', value with quotes and quoted-pairs resolved),
 * tolerating what clients get wrong: stray ';', missing '=', a missing
 * closing quote (the value then runs to the end), comments, unquoted
 * values with spaces. The second groups records by name in order of first
 * appearance and decodes each group once:
 *   - RFC 2231 segments are placed by index (they may arrive in any
 *     order), joined as bytes, and only then converted from the charset
 *     of segment 0, so a UTF-8 character split between name*0* and
 *     name*1* survives;
 *   - plain values are converted as unlabeled text (valid UTF-8 kept,
 *     other 8-bit detected) or, when they hold encoded words, through the
 *     RFC 2047 decoder (Outlook and Gmail write name="=?utf-8?B?...?=").
 * Counts are bounded: MAX_RECORDS raw records, MAX_SEGMENT continuation
 * index, max_params distinct names.
 */
#include "params.h"

#include <stdbool.h>
#include <stdint.h>

#include "../util/buf.h"
#include "../util/utf8.h"
#include "rfc2047.h"

#define MAX_RECORDS 2048
#define MAX_SEGMENT 999
/* A decoded value longer than this is cut (flagged BAD_SYNTAX). */
#define MAX_VALUE (256 * 1024)

struct rec {
    const char *name; /* lower-case, without the "*N*" suffix */
    size_t name_len;
    int index; /* RFC 2231 continuation index, -1 when none */
    bool star; /* value is charset'lang'%XX encoded */
    bool quoted;
    const char *val;
    size_t val_len;
    bool used;
};

struct parser {
    struct mr_arena *a;
    struct mr_charset_ctx *cs;
    const char *p;
    size_t n, i;
    unsigned flags;
    struct rec *recs;
    size_t nrecs, cap;
    struct mr_buf tmp, out;
};

static bool is_tspecial_end(char c)
{
    return c == ';' || c == '=' || c == '(' || c == '"' ||
           mr_is_wsp((unsigned char)c);
}

/* Skips whitespace and comments. Comments nest; the depth is a counter.
 * An unterminated comment runs to the end. */
static void skip_cfws(struct parser *ps)
{
    while (ps->i < ps->n) {
        char c = ps->p[ps->i];
        if (mr_is_wsp((unsigned char)c)) {
            ps->i++;
            continue;
        }
        if (c != '(')
            return;
        size_t depth = 0;
        while (ps->i < ps->n) {
            c = ps->p[ps->i++];
            if (c == '\\')
                ps->i++;
            else if (c == '(')
                depth++;
            else if (c == ')' && --depth == 0)
                break;
        }
        if (depth != 0 || ps->i > ps->n) {
            ps->flags |= MR_PARAMS_BAD_SYNTAX;
            ps->i = ps->n;
        }
    }
}

/* Skips to just past the next ';' (used after garbage). */
static void skip_to_semi(struct parser *ps)
{
    size_t k = mr_span_find(mr_span_make(ps->p, ps->n), ps->i, ';');
    ps->i = k < ps->n ? k + 1 : ps->n;
}

/* "type/subtype" or "attachment": lower-case, no whitespace, comments
 * removed, up to the first ';'. */
static void parse_value(struct parser *ps, struct mr_params *out)
{
    mr_buf_reset(&ps->tmp);
    while (ps->i < ps->n) {
        char c = ps->p[ps->i];
        if (c == ';')
            break;
        if (c == '(' || mr_is_wsp((unsigned char)c)) {
            size_t before = ps->tmp.len;
            skip_cfws(ps);
            /* "multipart/mixed boundary=x": the ';' was forgotten. Let the
             * parameter loop take the rest. */
            if (before > 0 && ps->i < ps->n && ps->p[ps->i] != ';' &&
                ps->p[ps->i] != '/' && ps->tmp.p[before - 1] != '/') {
                ps->flags |= MR_PARAMS_BAD_SYNTAX;
                break;
            }
            continue;
        }
        mr_buf_putc(&ps->tmp, (char)mr_lower((unsigned char)c));
        ps->i++;
    }
    mr_buf_reset(&ps->out);
    mr_utf8_repair(&ps->out, ps->tmp.p, ps->tmp.len, true);
    out->value = mr_arena_strndup(ps->a, ps->out.p ? ps->out.p : "",
                                  ps->out.len);
}

static void add_rec(struct parser *ps, const struct rec *r)
{
    if (ps->nrecs == MAX_RECORDS) {
        ps->flags |= MR_PARAMS_TOO_MANY;
        return;
    }
    if (ps->nrecs == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 16;
        ps->recs = mr_xrealloc(ps->recs, ps->cap * sizeof(*ps->recs));
    }
    ps->recs[ps->nrecs++] = *r;
}

/* Splits "name*12*" into base name, index and star. False when the name
 * is not a token. */
static bool parse_name(struct parser *ps, const char *s, size_t n,
                       struct rec *r)
{
    r->index = -1;
    r->star = false;
    if (n > 0 && s[n - 1] == '*') {
        r->star = true;
        n--;
    }
    size_t k = n;
    while (k > 0 && s[k - 1] >= '0' && s[k - 1] <= '9')
        k--;
    if (k < n && k > 0 && s[k - 1] == '*') {
        /* RFC 2231 3: no leading zeros except the index 0 itself. */
        if (n - k > 3 || (n - k > 1 && s[k] == '0')) {
            ps->flags |= MR_PARAMS_BAD_2231;
            return false;
        }
        int idx = 0;
        for (size_t j = k; j < n; j++)
            idx = idx * 10 + (s[j] - '0');
        r->index = idx;
        n = k - 1;
    } else if (r->star && n > 0 && s[n - 1] == '*') {
        return false;
    }
    if (n == 0)
        return false;
    char *name = mr_arena_alloc(ps->a, n + 1);
    for (size_t j = 0; j < n; j++) {
        unsigned char c = (unsigned char)s[j];
        if (c <= 0x20 || c >= 0x7F)
            return false;
        name[j] = (char)mr_lower(c);
    }
    name[n] = '\0';
    r->name = name;
    r->name_len = n;
    return true;
}

/* One "name=value" at the cursor. */
static void parse_param(struct parser *ps)
{
    size_t start = ps->i;
    while (ps->i < ps->n && !is_tspecial_end(ps->p[ps->i]))
        ps->i++;
    size_t name_end = ps->i;
    skip_cfws(ps);
    if (ps->i >= ps->n || ps->p[ps->i] != '=' || name_end == start) {
        ps->flags |= MR_PARAMS_BAD_SYNTAX;
        skip_to_semi(ps);
        return;
    }
    ps->i++;
    struct rec r = {0};
    bool name_ok = parse_name(ps, ps->p + start, name_end - start, &r);
    skip_cfws(ps);

    mr_buf_reset(&ps->tmp);
    if (ps->i < ps->n && ps->p[ps->i] == '"') {
        r.quoted = true;
        ps->i++;
        bool closed = false;
        while (ps->i < ps->n) {
            char c = ps->p[ps->i++];
            if (c == '"') {
                closed = true;
                break;
            }
            if (c == '\\' && ps->i < ps->n)
                c = ps->p[ps->i++];
            mr_buf_putc(&ps->tmp, c);
        }
        if (!closed)
            ps->flags |= MR_PARAMS_BAD_SYNTAX;
        skip_cfws(ps);
        if (ps->i < ps->n && ps->p[ps->i] != ';') {
            ps->flags |= MR_PARAMS_BAD_SYNTAX;
            skip_to_semi(ps);
        }
    } else {
        /* Unquoted: up to ';', spaces kept inside (clients write
         * filename=my file.txt), comments removed, ends trimmed. */
        while (ps->i < ps->n && ps->p[ps->i] != ';') {
            char c = ps->p[ps->i];
            if (c == '(') {
                skip_cfws(ps);
                continue;
            }
            mr_buf_putc(&ps->tmp, c);
            ps->i++;
        }
        mr_span t = mr_span_trim(mr_buf_span(&ps->tmp));
        if (t.n > 0)
            memmove(ps->tmp.p, t.p, t.n);
        mr_buf_truncate(&ps->tmp, t.n);
    }
    if (ps->tmp.limited)
        ps->flags |= MR_PARAMS_BAD_SYNTAX;
    if (!name_ok) {
        ps->flags |= MR_PARAMS_BAD_SYNTAX;
        return;
    }
    r.val = mr_arena_strndup(ps->a, ps->tmp.p ? ps->tmp.p : "", ps->tmp.len);
    r.val_len = ps->tmp.len;
    add_rec(ps, &r);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)mr_lower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* RFC 2231 4: %XX escapes. A '%' without two hex digits stays. */
static void percent_decode(struct parser *ps, const char *s, size_t n,
                           struct mr_buf *b)
{
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '%') {
            int hi = k + 2 < n ? hexval(s[k + 1]) : -1;
            int lo = k + 2 < n ? hexval(s[k + 2]) : -1;
            if (hi >= 0 && lo >= 0) {
                mr_buf_putc(b, (char)(hi * 16 + lo));
                k += 2;
                continue;
            }
            ps->flags |= MR_PARAMS_BAD_2231;
        }
        mr_buf_putc(b, s[k]);
    }
}

static void convert(struct parser *ps, mr_span label, const char *s, size_t n)
{
    unsigned f = mr_charset_to_utf8(ps->cs, label, s, n, &ps->out);
    if (f & (MR_CHARSET_UNKNOWN | MR_CHARSET_DETECTED | MR_CHARSET_INVALID))
        ps->flags |= MR_PARAMS_CHARSET;
}

/* Decodes the RFC 2231 segments of `name` into ps->out. `first` is the
 * index of the group's first 2231 record. */
static void decode_2231(struct parser *ps, size_t first)
{
    const struct rec *r0 = &ps->recs[first];
    const struct rec **slot = NULL;
    size_t nslots = 0;

    if (r0->index < 0) {
        nslots = 1;
        slot = mr_xcalloc(1, sizeof(*slot));
        slot[0] = r0;
    } else {
        int top = 0;
        for (size_t k = first; k < ps->nrecs; k++) {
            const struct rec *r = &ps->recs[k];
            if (r->name_len == r0->name_len &&
                memcmp(r->name, r0->name, r->name_len) == 0 &&
                r->index > top && r->index <= MAX_SEGMENT)
                top = r->index;
        }
        nslots = (size_t)top + 1;
        slot = mr_xcalloc(nslots, sizeof(*slot));
    }
    for (size_t k = first; k < ps->nrecs; k++) {
        struct rec *r = &ps->recs[k];
        if (r->name_len != r0->name_len ||
            memcmp(r->name, r0->name, r->name_len) != 0)
            continue;
        if (r->index < 0 && !r->star)
            continue; /* the plain form, which 2231 beats */
        r->used = true;
        if (r == r0 && r0->index < 0)
            continue;
        if (r->index < 0 || r0->index < 0) {
            ps->flags |= MR_PARAMS_DUPLICATE;
        } else if ((size_t)r->index >= nslots) {
            ps->flags |= MR_PARAMS_BAD_2231;
        } else if (slot[r->index] != NULL) {
            ps->flags |= MR_PARAMS_DUPLICATE;
        } else {
            slot[r->index] = r;
        }
    }

    mr_span label = MR_SPAN_NULL;
    mr_buf_reset(&ps->tmp);
    for (size_t k = 0; k < nslots; k++) {
        const struct rec *r = slot[k];
        if (r == NULL) {
            /* RFC 2231 3: a missing index ends the value. */
            ps->flags |= MR_PARAMS_BAD_2231;
            break;
        }
        const char *s = r->val;
        size_t n = r->val_len;
        if (k == 0 && r->star) {
            /* charset'language'text; the language is of no use here. */
            const char *q1 = memchr(s, '\'', n);
            const char *q2 = q1 ? memchr(q1 + 1, '\'', n - (size_t)(q1 + 1 - s))
                                : NULL;
            if (q2) {
                label = mr_span_trim(mr_span_make(s, (size_t)(q1 - s)));
                n -= (size_t)(q2 + 1 - s);
                s = q2 + 1;
            } else {
                ps->flags |= MR_PARAMS_BAD_2231;
            }
        }
        if (r->star)
            percent_decode(ps, s, n, &ps->tmp);
        else
            mr_buf_append(&ps->tmp, s, n);
    }
    free(slot);
    if (ps->tmp.limited)
        ps->flags |= MR_PARAMS_BAD_SYNTAX;
    mr_buf_reset(&ps->out);
    convert(ps, label, ps->tmp.p ? ps->tmp.p : "", ps->tmp.len);
}

static bool has_encoded_word(const char *s, size_t n)
{
    for (size_t k = 0; k + 1 < n; k++)
        if (s[k] == '=' && s[k + 1] == '?')
            return true;
    return false;
}

static void decode_plain(struct parser *ps, const struct rec *r)
{
    mr_buf_reset(&ps->out);
    /* A boundary is compared byte for byte with the body's delimiter
     * lines: never decode it. */
    bool is_boundary = r->name_len == 8 && memcmp(r->name, "boundary", 8) == 0;
    if (!is_boundary && has_encoded_word(r->val, r->val_len)) {
        unsigned f = mr_rfc2047_decode(ps->cs, mr_span_make(r->val, r->val_len),
                                       MR_RFC2047_IN_QUOTES, &ps->out);
        if (f & (MR_RFC2047_CHARSET | MR_RFC2047_INVALID | MR_RFC2047_RAW8BIT))
            ps->flags |= MR_PARAMS_CHARSET;
        return;
    }
    convert(ps, MR_SPAN_NULL, r->val, r->val_len);
}

unsigned mr_params_parse(struct mr_arena *a, struct mr_charset_ctx *cs,
                         mr_span raw, size_t max_params, struct mr_params *out)
{
    struct parser ps = {
        .a = a, .cs = cs, .p = raw.p, .n = raw.p ? raw.n : 0,
    };
    mr_buf_init(&ps.tmp, MAX_VALUE);
    mr_buf_init(&ps.out, MAX_VALUE * 3);
    out->items = NULL;
    out->n = 0;

    skip_cfws(&ps);
    parse_value(&ps, out);
    while (ps.i < ps.n) {
        skip_cfws(&ps);
        if (ps.i >= ps.n)
            break;
        if (ps.p[ps.i] == ';') {
            ps.i++;
            skip_cfws(&ps);
            /* "; ;" or a trailing ';' */
            if (ps.i < ps.n && ps.p[ps.i] == ';')
                ps.flags |= MR_PARAMS_BAD_SYNTAX;
            continue;
        }
        parse_param(&ps);
    }

    size_t cap = 0;
    for (size_t k = 0; k < ps.nrecs; k++) {
        struct rec *r = &ps.recs[k];
        if (r->used)
            continue;
        /* The group of r->name starts here: take its first 2231 record if
         * there is one (2231 beats plain), else this plain one. */
        size_t first2231 = ps.nrecs, plains = 0;
        for (size_t j = k; j < ps.nrecs; j++) {
            struct rec *q = &ps.recs[j];
            if (q->name_len != r->name_len ||
                memcmp(q->name, r->name, r->name_len) != 0)
                continue;
            if (q->index >= 0 || q->star) {
                if (first2231 == ps.nrecs)
                    first2231 = j;
            } else {
                plains++;
                q->used = true;
            }
        }
        r->used = true;
        if (out->n == max_params) {
            ps.flags |= MR_PARAMS_TOO_MANY;
            for (size_t j = k; j < ps.nrecs; j++)
                if (ps.recs[j].name_len == r->name_len &&
                    memcmp(ps.recs[j].name, r->name, r->name_len) == 0)
                    ps.recs[j].used = true;
            continue;
        }
        if (plains > 1)
            ps.flags |= MR_PARAMS_DUPLICATE;
        if (first2231 < ps.nrecs) {
            decode_2231(&ps, first2231);
        } else {
            decode_plain(&ps, r);
        }
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            out->items = mr_arena_realloc(a, out->items,
                                          cap * sizeof(*out->items),
                                          ncap * sizeof(*out->items));
            cap = ncap;
        }
        struct mr_param *it = &out->items[out->n++];
        it->name = r->name;
        it->value = mr_arena_strndup(a, ps.out.p ? ps.out.p : "", ps.out.len);
        it->value_len = ps.out.len;
    }
    free(ps.recs);
    mr_buf_release(&ps.tmp);
    mr_buf_release(&ps.out);
    return ps.flags;
}

const struct mr_param *mr_params_get(const struct mr_params *p,
                                     const char *name)
{
    for (size_t k = 0; k < p->n; k++)
        if (strcmp(p->items[k].name, name) == 0)
            return &p->items[k];
    return NULL;
}
