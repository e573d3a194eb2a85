/* SPDX-License-Identifier: Apache-2.0 */
/*
 * address.c - RFC 5322 3.4 address lists, as real mail writes them.
 *
 * Two stages, both linear and without recursion:
 *   1. a tokenizer yields atoms (dots included, so "john.doe" and
 *      "x.org" are one token each), quoted strings, comments, domain
 *      literals and the specials < > : ; @ , - each with whether
 *      whitespace came before it;
 *   2. tokens are gathered into one entry at a time, split at ',' or ';'
 *      outside angle brackets, with ':' opening and ';' closing a group.
 * Each entry is then read as "phrase <addr-spec>" or a bare addr-spec
 * (words before it that are not part of the local part are taken as a
 * display name whose brackets were forgotten: "John Doe john@x.org").
 * Only one entry's tokens are held at a time, and parsing stops as soon
 * as max entries are out, so a 10 MB To: costs no more than it must.
 */
#include "address.h"

#include <stdint.h>

#include "../util/buf.h"
#include "../util/utf8.h"
#include "rfc2047.h"

enum tok_type {
    T_ATOM,
    T_QUOTED,
    T_COMMENT,
    T_LITERAL, /* [domain literal] */
    T_SPECIAL, /* one of < > : ; @ , */
};

struct tok {
    enum tok_type type;
    size_t start, end;   /* the token as written */
    size_t cstart, cend; /* content of quoted strings and comments */
    bool space;          /* whitespace (or a comment) came before it */
    char c;              /* the character of a T_SPECIAL */
};

struct lexer {
    const char *p;
    size_t n, i;
    unsigned flags;
};

static bool is_special(char c)
{
    return c == '<' || c == '>' || c == ':' || c == ';' || c == '@' ||
           c == ',';
}

static bool ends_atom(char c)
{
    return mr_is_wsp((unsigned char)c) || is_special(c) || c == '(' ||
           c == ')' || c == '"' || c == '[' || c == ']';
}

/* The next token; false at the end of the input. */
static bool next_tok(struct lexer *lx, struct tok *t)
{
    bool space = false;
    while (lx->i < lx->n && mr_is_wsp((unsigned char)lx->p[lx->i])) {
        lx->i++;
        space = true;
    }
    if (lx->i >= lx->n)
        return false;
    size_t i = lx->i;
    char c = lx->p[i];
    t->space = space;
    t->start = i;
    t->c = 0;
    if (c == '"' || c == '(' || c == '[') {
        char close = c == '"' ? '"' : c == '(' ? ')' : ']';
        t->type = c == '"' ? T_QUOTED : c == '(' ? T_COMMENT : T_LITERAL;
        t->cstart = i + 1;
        /* The opening character counts as depth 1 for comments. */
        size_t depth = 1, k = i + 1;
        for (;;) {
            if (k >= lx->n) {
                lx->flags |= MR_ADDRESS_REPAIRED;
                t->cend = lx->n;
                break;
            }
            char d = lx->p[k];
            if (d == '\\' && k + 1 < lx->n) {
                k += 2;
                continue;
            }
            if (d == close && --depth == 0) {
                t->cend = k++;
                break;
            }
            if (c == '(' && d == '(')
                depth++;
            k++;
        }
        t->end = k;
    } else if (is_special(c)) {
        t->type = T_SPECIAL;
        t->c = c;
        t->end = i + 1;
    } else {
        size_t k = i;
        /* A stray ')' or ']' is taken into the atom so it cannot stall. */
        do
            k++;
        while (k < lx->n && !ends_atom(lx->p[k]));
        t->type = T_ATOM;
        t->end = k;
    }
    lx->i = t->end;
    return true;
}

/* A growable array of tokens for the entry being read; malloc'd, reused
 * for every entry. */
struct toks {
    struct tok *v;
    size_t n, cap;
};

static void toks_push(struct toks *ts, const struct tok *t)
{
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 32;
        ts->v = mr_xrealloc(ts->v, ts->cap * sizeof(*ts->v));
    }
    ts->v[ts->n++] = *t;
}

struct ctx {
    struct mr_arena *a;
    struct mr_charset_ctx *cs;
    const char *p;
    struct mr_buf b1, b2;
    unsigned flags;
};

/* Appends the content of a quoted string or comment, quoted-pairs
 * resolved (RFC 5322 3.2.1). */
static void put_unescaped(struct mr_buf *b, const char *s, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '\\' && k + 1 < n)
            k++;
        mr_buf_putc(b, s[k]);
    }
}

/* Decodes text in b1 (RFC 2047, raw 8-bit) into an arena string, or NULL
 * when nothing but whitespace is left. */
static const char *decoded(struct ctx *c, unsigned opts)
{
    mr_buf_reset(&c->b2);
    mr_rfc2047_decode(c->cs, mr_buf_span(&c->b1), opts, &c->b2);
    mr_span s = mr_span_trim(mr_buf_span(&c->b2));
    if (s.n == 0)
        return NULL;
    return mr_arena_strndup(c->a, s.p, s.n);
}

/* The display name written by tokens [b, e): atoms and specials as they
 * are, quoted strings unquoted, comments dropped, whitespace as one
 * space. Encoded words are decoded after unquoting, also those that were
 * inside quotes, since Outlook and others write "=?utf-8?B?...?=". */
static const char *phrase(struct ctx *c, const struct tok *t, size_t b,
                          size_t e)
{
    mr_buf_reset(&c->b1);
    bool space = false;
    for (size_t k = b; k < e; k++) {
        if (t[k].type == T_COMMENT) {
            space = true;
            continue;
        }
        if ((t[k].space || space) && c->b1.len > 0)
            mr_buf_putc(&c->b1, ' ');
        space = false;
        if (t[k].type == T_QUOTED)
            put_unescaped(&c->b1, c->p + t[k].cstart,
                          t[k].cend - t[k].cstart);
        else
            mr_buf_append(&c->b1, c->p + t[k].start, t[k].end - t[k].start);
    }
    return decoded(c, MR_RFC2047_IN_QUOTES);
}

/* The first comment in [b, e) as a name ("bob@x.org (Bob Smith)"). */
static const char *comment_name(struct ctx *c, const struct tok *t, size_t b,
                                size_t e)
{
    for (size_t k = b; k < e; k++) {
        if (t[k].type != T_COMMENT)
            continue;
        mr_buf_reset(&c->b1);
        put_unescaped(&c->b1, c->p + t[k].cstart, t[k].cend - t[k].cstart);
        const char *name = decoded(c, 0);
        if (name)
            return name;
    }
    return NULL;
}

static bool is_atext(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9') || ch >= 0x80)
        return true;
    return ch != 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

/* A dot-atom (RFC 5322 3.2.3): atext runs joined by single dots. */
static bool dot_atom(const char *s, size_t n)
{
    bool prev_ok = false;
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '.') {
            if (!prev_ok)
                return false;
            prev_ok = false;
        } else if (is_atext((unsigned char)s[k])) {
            prev_ok = true;
        } else {
            return false;
        }
    }
    return prev_ok;
}

/* local@domain from the local tokens [lb, le) and domain tokens [db, de),
 * or NULL when one side is empty or holds what no address can. */
static const char *addr_spec(struct ctx *c, const struct tok *t, size_t lb,
                             size_t le, size_t db, size_t de)
{
    struct mr_buf *b = &c->b1;
    mr_buf_reset(b);
    for (size_t k = lb; k < le; k++) {
        if (t[k].type == T_COMMENT)
            continue;
        if (t[k].type == T_ATOM || t[k].type == T_LITERAL) {
            mr_buf_append(b, c->p + t[k].start, t[k].end - t[k].start);
            continue;
        }
        if (t[k].type != T_QUOTED)
            return NULL;
        /* Quotes stay only when the content needs them. */
        const char *s = c->p + t[k].cstart;
        size_t n = t[k].cend - t[k].cstart;
        size_t mark = b->len;
        put_unescaped(b, s, n);
        if (le - lb == 1 && dot_atom(b->p + mark, b->len - mark))
            continue;
        mr_buf_truncate(b, mark);
        mr_buf_putc(b, '"');
        for (size_t j = 0; j < n; j++) {
            if (s[j] == '\\' && j + 1 < n)
                j++;
            if (s[j] == '"' || s[j] == '\\')
                mr_buf_putc(b, '\\');
            mr_buf_putc(b, s[j]);
        }
        mr_buf_putc(b, '"');
    }
    size_t local_len = b->len;
    mr_buf_putc(b, '@');
    for (size_t k = db; k < de; k++) {
        if (t[k].type == T_COMMENT)
            continue;
        if (t[k].type != T_ATOM && t[k].type != T_LITERAL)
            return NULL;
        for (size_t j = t[k].start; j < t[k].end; j++)
            mr_buf_putc(b, (char)mr_lower((unsigned char)c->p[j]));
    }
    /* "x.org." - the root label's dot is legal in DNS, never in mail. */
    if (b->len > local_len + 1 && b->p[b->len - 1] == '.')
        mr_buf_truncate(b, b->len - 1);
    if (local_len == 0 || b->len == local_len + 1 || b->limited)
        return NULL;
    for (size_t k = 0; k < b->len; k++) {
        unsigned char ch = (unsigned char)b->p[k];
        if (ch < 0x20 || ch == 0x7F)
            return NULL;
    }
    /* RFC 6532 allows UTF-8; other 8-bit bytes are some legacy charset. */
    mr_buf_reset(&c->b2);
    mr_charset_to_utf8(c->cs, MR_SPAN_NULL, b->p, b->len, &c->b2);
    return mr_arena_strndup(c->a, c->b2.p, c->b2.len);
}

static bool is_word(const struct tok *t)
{
    return t->type == T_ATOM || t->type == T_QUOTED;
}

static bool is_char(const struct tok *t, char ch)
{
    return t->type == T_SPECIAL && t->c == ch;
}

/* Reads the entry in tokens t[0..n) into *out. */
static void read_entry(struct ctx *c, const struct tok *t, size_t n,
                       struct mr_address *out)
{
    size_t lt = n, gt = n;
    for (size_t k = 0; k < n && lt == n; k++)
        if (is_char(&t[k], '<'))
            lt = k;
    for (size_t k = lt; k < n && gt == n; k++)
        if (is_char(&t[k], '>'))
            gt = k;

    if (lt < n) {
        if (gt == n)
            c->flags |= MR_ADDRESS_REPAIRED;
        out->name = phrase(c, t, 0, lt);
        /* Obsolete route (RFC 5322 4.4): "<@a,@b:user@c>" - the address
         * is what follows the last ':'. */
        size_t b = lt + 1;
        for (size_t k = b; k < gt; k++)
            if (is_char(&t[k], ':'))
                b = k + 1;
        size_t at = gt;
        for (size_t k = b; k < gt; k++)
            if (is_char(&t[k], '@'))
                at = k;
        if (at < gt)
            out->email = addr_spec(c, t, b, at, at + 1, gt);
        if (!out->name && gt < n)
            out->name = comment_name(c, t, gt + 1, n);
        return;
    }

    size_t at = n;
    for (size_t k = 0; k < n && at == n; k++)
        if (is_char(&t[k], '@'))
            at = k;
    if (at == n || at == 0)
        return;
    /* The local part: the word before '@' and the words glued to it. */
    size_t lb = at;
    while (lb > 0 && (is_word(&t[lb - 1]) || t[lb - 1].type == T_COMMENT)) {
        lb--;
        if (t[lb].space)
            break;
    }
    if (lb == at)
        return;
    /* The domain: the first atom or literal after '@', and atoms glued to
     * it; anything after it is not part of the address. */
    size_t db = at + 1;
    while (db < n && t[db].type == T_COMMENT)
        db++;
    size_t de = db;
    while (de < n && (t[de].type == T_ATOM || t[de].type == T_LITERAL) &&
           (de == db || !t[de].space))
        de++;
    out->email = addr_spec(c, t, lb, at, db, de);
    size_t words = 0;
    for (size_t k = 0; k < lb; k++)
        words += t[k].type != T_COMMENT;
    if (words > 0) {
        /* "John Doe john@x.org": the brackets were forgotten. */
        c->flags |= MR_ADDRESS_REPAIRED;
        out->name = phrase(c, t, 0, lb);
    } else {
        /* A comment inside the address ("bob(x)@y") is not a name. */
        out->name = comment_name(c, t, de, n);
        if (!out->name)
            out->name = comment_name(c, t, 0, lb);
    }
    for (size_t k = de; k < n; k++)
        if (t[k].type != T_COMMENT)
            c->flags |= MR_ADDRESS_REPAIRED;
}

struct list {
    struct mr_address *v;
    size_t n, cap, max;
};

/* Emits the entry t[0..n) (skipped when it holds only comments). Returns
 * false once the list is full. */
static bool emit(struct ctx *c, struct list *l, const struct tok *t,
                 size_t n, const char *group)
{
    size_t real = 0;
    for (size_t k = 0; k < n; k++)
        real += t[k].type != T_COMMENT;
    if (real == 0)
        return true;
    if (l->n == l->max) {
        c->flags |= MR_ADDRESS_TOO_MANY;
        return false;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        if (cap > l->max)
            cap = l->max;
        l->v = mr_arena_realloc(c->a, l->v, l->cap * sizeof(*l->v),
                                cap * sizeof(*l->v));
        l->cap = cap;
    }
    struct mr_address *e = &l->v[l->n++];
    memset(e, 0, sizeof(*e));
    e->group = group;
    read_entry(c, t, n, e);
    e->valid = e->email != NULL;
    if (!e->valid) {
        e->email = NULL;
        c->flags |= MR_ADDRESS_INVALID;
    }
    mr_buf_reset(&c->b1);
    mr_buf_append(&c->b1, c->p + t[0].start, t[n - 1].end - t[0].start);
    e->raw = decoded(c, 0);
    if (!e->raw)
        e->raw = "";
    return true;
}

unsigned mr_address_parse_list(struct mr_arena *a, struct mr_charset_ctx *cs,
                               mr_span raw, size_t max,
                               struct mr_address **list_r, size_t *n_r)
{
    struct ctx c = {.a = a, .cs = cs, .p = raw.p};
    struct lexer lx = {.p = raw.p, .n = raw.p ? raw.n : 0};
    struct list l = {.max = max};
    struct toks ts = {0};
    const char *group = NULL;
    bool in_angle = false, more = true;
    bool specials = false; /* the entry so far holds a special */
    /* Names and addresses are short; the caps only stop pathological
     * input from building a huge string nobody can use. */
    mr_buf_init(&c.b1, 64 * 1024);
    mr_buf_init(&c.b2, 256 * 1024);

    struct tok t;
    while (more) {
        bool have = next_tok(&lx, &t);
        bool split = !have;
        if (have && t.type == T_SPECIAL) {
            char ch = t.c;
            if (ch == '<') {
                in_angle = true;
            } else if (ch == '>') {
                in_angle = false;
            } else if (ch == ',' && in_angle) {
                /* A ',' inside brackets belongs to a route ("<@a,@b:u@c>")
                 * when '@' follows; otherwise the '>' is missing. */
                size_t k = lx.i;
                while (k < lx.n && mr_is_wsp((unsigned char)lx.p[k]))
                    k++;
                if (k >= lx.n || lx.p[k] != '@') {
                    in_angle = false;
                    c.flags |= MR_ADDRESS_REPAIRED;
                    split = true;
                }
            } else if (ch == ',' && !in_angle) {
                split = true;
            } else if (ch == ';' && !in_angle) {
                split = true;
            } else if (ch == ':' && !in_angle && !group) {
                /* "name:" opens a group when nothing address-like came
                 * before it in this entry. */
                if (!specials && ts.n > 0) {
                    group = phrase(&c, ts.v, 0, ts.n);
                    if (!group)
                        group = "";
                    ts.n = 0;
                    continue;
                }
            }
        }
        if (!split) {
            toks_push(&ts, &t);
            specials = specials || t.type == T_SPECIAL;
            continue;
        }
        if (ts.n > 0)
            more = emit(&c, &l, ts.v, ts.n, group);
        ts.n = 0;
        in_angle = false;
        specials = false;
        if (have && t.c == ';' && group)
            group = NULL;
        more = more && have;
    }
    if (group && !(c.flags & MR_ADDRESS_TOO_MANY))
        c.flags |= MR_ADDRESS_REPAIRED; /* the group's ';' is missing */
    free(ts.v);
    mr_buf_release(&c.b1);
    mr_buf_release(&c.b2);
    *list_r = l.n ? l.v : NULL;
    *n_r = l.n;
    return c.flags | lx.flags;
}
