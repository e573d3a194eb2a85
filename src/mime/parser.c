/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parser.c - the structure pass: one walk over the message that finds every
 * part, with an explicit stack of open containers instead of recursion.
 *
 * A container is a multipart (it has a boundary) or a message/rfc822 part
 * (its one child is the nested message). The walk jumps from one line
 * starting with "--" to the next (memchr, so base64 bodies cost almost
 * nothing) and compares the line with the boundaries on the stack,
 * innermost first. A delimiter of an outer boundary closes every container
 * inside it: that is how a missing close delimiter is repaired (warning
 * boundary_unclosed), the way mature parsers do it.
 *
 * RFC 2046 5.1.1: a delimiter is "--" boundary at the start of a line,
 * followed only by optional whitespace (or by "--" for the close
 * delimiter); the line break before it belongs to the delimiter, so a
 * part's body ends before that CR LF. "--frontier-not-really" is content.
 *
 * Limits: depth past max_depth keeps the container as an opaque leaf
 * (warning depth_limit), parts past max_parts are skipped (warning
 * part_limit); the stack is bounded by max_depth, so memory does not grow
 * with nesting and time stays linear.
 */
#include <stdio.h>
#include <string.h>

#include "mime-private.h"

struct open {
    int part;
    mr_span boundary; /* empty for message/rfc822 containers */
};

struct walk {
    struct mr_arena *a;
    struct mr_charset_ctx *cs;
    const struct mr_mime_limits *lim;
    const char *buf;
    size_t len;
    const struct mr_input_hint *pages; /* optional */
    size_t seen; /* buf[seen..) is not yet reported to pages */
    struct mr__tree *t;
    size_t cap;
    struct open *stack;
    size_t depth; /* entries used in stack */
    int leaf;     /* the open leaf, or -1 */
    bool part_limit_warned;
    struct mr__warnings *w;
};

/* Which stack level a "--" line closes, or -1. *close_r tells the close
 * delimiter apart. */
static int match_delim(const struct walk *k, mr_span line, bool *close_r)
{
    for (size_t i = k->depth; i-- > 0;) {
        const struct open *o = &k->stack[i];
        if (o->boundary.n == 0 || k->t->parts[o->part].closed)
            continue;
        size_t bn = o->boundary.n;
        if (line.n < 2 + bn || memcmp(line.p + 2, o->boundary.p, bn) != 0)
            continue;
        mr_span rest = mr_span_make(line.p + 2 + bn, line.n - 2 - bn);
        bool close = rest.n >= 2 && rest.p[0] == '-' && rest.p[1] == '-';
        if (!close) {
            size_t j = 0;
            while (j < rest.n && (rest.p[j] == ' ' || rest.p[j] == '\t'))
                j++;
            if (j != rest.n)
                continue;
        }
        *close_r = close;
        return (int)i;
    }
    return -1;
}

static bool delim_cb(void *ctx, mr_span line)
{
    bool close;
    return match_delim(ctx, line, &close) >= 0;
}

static int new_part(struct walk *k, int parent, unsigned depth)
{
    struct mr__tree *t = k->t;
    if (t->n >= k->lim->max_parts) {
        if (!k->part_limit_warned)
            mr__warn(k->a, k->w, "part_limit: parts past %zu ignored",
                     k->lim->max_parts);
        k->part_limit_warned = true;
        return -1;
    }
    if (t->n == k->cap) {
        size_t ncap = k->cap * 2;
        t->parts = mr_arena_realloc(k->a, t->parts, k->cap * sizeof(*t->parts),
                                    ncap * sizeof(*t->parts));
        k->cap = ncap;
    }
    int i = (int)t->n++;
    struct mr__part *p = &t->parts[i];
    memset(p, 0, sizeof(*p));
    p->parent = parent;
    p->first_child = p->next_sibling = -1;
    p->depth = depth;
    p->last_child = -1;
    p->nth = 1;
    if (parent >= 0) {
        struct mr__part *par = &t->parts[parent];
        if (par->first_child < 0) {
            par->first_child = i;
        } else {
            t->parts[par->last_child].next_sibling = i;
            p->nth = t->parts[par->last_child].nth + 1;
        }
        par->last_child = i;
    }
    return i;
}

/* The default Content-Type of a part depends on its parent (RFC 2046 5.1.5:
 * inside multipart/digest it is message/rfc822). */
static bool parent_is_digest(const struct walk *k, int parent)
{
    if (parent < 0)
        return false;
    const struct mr__part *p = &k->t->parts[parent];
    return p->kind == MR__MULTIPART && p->ctype.value &&
           strcmp(p->ctype.value, "multipart/digest") == 0;
}

/* type "/" subtype, both RFC 2045 tokens. Anything else is treated as
 * text/plain, as RFC 2045 5.2 says for an invalid Content-Type. */
static bool valid_type(const char *v)
{
    const char *slash = strchr(v, '/');
    if (slash == NULL || slash == v || slash[1] == '\0')
        return false;
    for (const char *c = v; *c; c++) {
        if (c == slash)
            continue;
        unsigned char u = (unsigned char)*c;
        if (u <= 32 || u >= 127 || strchr("()<>@,;:\\\"/[]?=", u))
            return false;
    }
    return true;
}

/* Reads the part's header at `pos` and decides what kind of part it is;
 * containers are pushed. Returns the offset where its body starts. */
static size_t begin_part(struct walk *k, int i, size_t pos)
{
    struct mr__part *p = &k->t->parts[i];
    enum mr__header_end end;
    size_t body = pos + mr__header_read(k->a, k->buf + pos, k->len - pos,
                                        k->lim->max_fields, delim_cb, k,
                                        &p->header, &end, k->w);
    p = &k->t->parts[i];
    p->raw = mr_span_make(k->buf + pos, k->len - pos);
    p->body = mr_span_make(k->buf + body, k->len - body);

    const struct mr__field *ct = mr__header_get(&p->header, "content-type");
    if (ct)
        mr_params_parse(k->a, k->cs, ct->value, 64, &p->ctype);
    if (!ct || !p->ctype.value || !valid_type(p->ctype.value)) {
        if (ct && p->ctype.value && p->ctype.value[0])
            mr__warn(k->a, k->w, "params_invalid: Content-Type '%.60s' is not "
                                 "type/subtype", p->ctype.value);
        p->ctype.value = parent_is_digest(k, p->parent) ? "message/rfc822"
                                                        : "text/plain";
        p->ctype_defaulted = true;
    }
    const struct mr__field *cte =
        mr__header_get(&p->header, "content-transfer-encoding");
    p->cte = cte ? mr_cte_parse(cte->value) : MR_CTE_7BIT;

    p->kind = MR__LEAF;
    if (end == MR__HDR_DELIM) {
        /* An empty part: the walk sees the delimiter next and ends it
         * there (stalwart malformed/000), whatever its type says. */
        k->leaf = i;
        return body;
    }

    bool deep = p->depth >= k->lim->max_depth;
    if (strncmp(p->ctype.value, "multipart/", 10) == 0) {
        const struct mr_param *b = mr_params_get(&p->ctype, "boundary");
        if (b == NULL || b->value_len == 0) {
            mr__warn(k->a, k->w, "boundary_missing: %s without a boundary "
                                 "kept as one opaque part", p->ctype.value);
            p->opaque_multipart = true;
            return body;
        }
        if (deep) {
            mr__warn(k->a, k->w, "depth_limit: nesting deeper than %zu "
                                 "not parsed", k->lim->max_depth);
            p->opaque_multipart = true;
            return body;
        }
        if (b->value_len > 70)
            mr__warn(k->a, k->w, "boundary_too_long: boundary of %zu bytes "
                                 "(RFC 2046 allows 70) accepted",
                     b->value_len);
        p->kind = MR__MULTIPART;
        k->stack[k->depth++] = (struct open){i, mr_span_make(b->value,
                                                             b->value_len)};
        return body;
    }
    if ((strcmp(p->ctype.value, "message/rfc822") == 0 ||
         strcmp(p->ctype.value, "message/global") == 0) &&
        p->cte != MR_CTE_BASE64 && p->cte != MR_CTE_QP && !deep) {
        p->kind = MR__MESSAGE;
        k->stack[k->depth++] = (struct open){i, MR_SPAN_NULL};
        return body;
    }
    if (deep && strncmp(p->ctype.value, "message/", 8) == 0)
        mr__warn(k->a, k->w, "depth_limit: message nested deeper than %zu "
                             "kept as an attachment", k->lim->max_depth);
    k->leaf = i;
    return body;
}

/* Sets the end of part i (and of its raw span) at offset end. */
static void end_part(struct walk *k, int i, size_t end)
{
    struct mr__part *p = &k->t->parts[i];
    const char *e = k->buf + end;
    if (e < p->body.p)
        e = p->body.p; /* header ran into the delimiter: empty body */
    p->body.n = (size_t)(e - p->body.p);
    p->raw.n = (size_t)(e - p->raw.p);
}

/* Starts a part at pos (a child of parent) and, while it is a message
 * container, its nested message too. Returns where scanning resumes. */
static size_t start_chain(struct walk *k, int parent, size_t pos)
{
    for (;;) {
        unsigned depth = parent >= 0 ? k->t->parts[parent].depth + 1 : 0;
        int i = new_part(k, parent, depth);
        if (i < 0) {
            k->leaf = -1;
            return pos;
        }
        size_t body = begin_part(k, i, pos);
        if (k->t->parts[i].kind != MR__MESSAGE)
            return body;
        parent = i;
        pos = body;
    }
}

/* With options.pages, the input read through is reported in stretches of
 * about this much. */
#define WINDOW (256u << 10)

/* Reports buf[seen..pos) once it is a window long. */
static void report_seen(struct walk *k, size_t pos)
{
    if (k->pages != NULL && pos > k->seen && pos - k->seen >= WINDOW) {
        k->pages->passed(k->pages->ctx, k->buf + k->seen, pos - k->seen);
        k->seen = pos;
    }
}

/*
 * Offset of the next line at or after pos that starts with "--".
 *
 * The search is for '-' alone, with memchr: base64 has no '-' in its
 * alphabet, so an attachment is crossed in one call at memory speed, where
 * memmem("\n--") ran at about 1 GB/s (it was 15% of the parse benchmark,
 * now under 2%). A '-' that does not start a "--" line moves the search
 * two bytes on: neither it nor the byte after it can be a line start.
 * With options.pages the search goes a window at a time, so that what it
 * has read through can be let go before the rest is read.
 */
static size_t next_dash_line(struct walk *k, size_t pos)
{
    const char *b = k->buf;
    while (pos + 1 < k->len) {
        size_t end = k->len - 1; /* a '-' before it has a byte after it */
        if (k->pages != NULL && end - pos > WINDOW)
            end = pos + WINDOW;
        const char *d = memchr(b + pos, '-', end - pos);
        if (d != NULL) {
            size_t i = (size_t)(d - b);
            if (b[i + 1] == '-' && (i == 0 || b[i - 1] == '\n'))
                return i;
            pos = i + 2;
        } else if (end < k->len - 1) {
            pos = end;
        } else {
            break;
        }
        report_seen(k, pos);
    }
    return k->len;
}

void mr__structure_parse(struct mr_arena *a, struct mr_charset_ctx *cs,
                         const struct mr_mime_limits *lim, const char *buf,
                         size_t len, const struct mr_input_hint *pages,
                         struct mr__tree *tree, struct mr__warnings *w)
{
    struct walk k = {
        .a = a,
        .cs = cs,
        .lim = lim,
        .buf = buf,
        .len = len,
        .pages = pages,
        .t = tree,
        .cap = 8,
        .leaf = -1,
        .w = w,
    };
    /* Every push is at a depth <= max_depth, so the stack fits. */
    k.stack = mr_arena_alloc(a, (lim->max_depth + 2) * sizeof(*k.stack));
    tree->parts = mr_arena_alloc(a, k.cap * sizeof(*tree->parts));
    tree->n = 0;

    size_t pos = start_chain(&k, -1, 0);
    while (k.depth > 0 && pos < len) {
        size_t l = next_dash_line(&k, pos);
        if (l >= len)
            break;
        size_t next;
        const char *lf = memchr(buf + l, '\n', len - l);
        next = lf ? (size_t)(lf - buf) + 1 : len;
        mr_span line = mr_span_make(buf + l, next - l);
        while (line.n > 0 && (line.p[line.n - 1] == '\n' ||
                              line.p[line.n - 1] == '\r'))
            line.n--;
        bool close;
        int lvl = match_delim(&k, line, &close);
        if (lvl < 0) {
            pos = next;
            continue;
        }
        /* The line break before the delimiter belongs to it. */
        size_t end = l;
        if (end > 0 && buf[end - 1] == '\n') {
            end--;
            if (end > 0 && buf[end - 1] == '\r')
                end--;
        }
        if (k.leaf >= 0) {
            end_part(&k, k.leaf, end);
            k.leaf = -1;
        }
        while (k.depth > (size_t)lvl + 1) {
            struct open *o = &k.stack[--k.depth];
            struct mr__part *p = &tree->parts[o->part];
            if (p->kind == MR__MULTIPART && !p->closed)
                mr__warn(a, w, "boundary_unclosed: part %d closed by an outer "
                               "boundary", o->part);
            end_part(&k, o->part, end);
        }
        int mp = k.stack[lvl].part;
        if (close) {
            tree->parts[mp].closed = true;
            pos = next; /* what follows is epilogue until an outer delimiter */
        } else {
            pos = start_chain(&k, mp, next);
        }
    }
    if (k.leaf >= 0)
        end_part(&k, k.leaf, len);
    while (k.depth > 0) {
        struct open *o = &k.stack[--k.depth];
        struct mr__part *p = &tree->parts[o->part];
        if (p->kind == MR__MULTIPART && !p->closed && p->first_child >= 0)
            mr__warn(a, w, "boundary_unclosed: part %d ends at the end of "
                           "the message", o->part);
        end_part(&k, o->part, len);
    }
    /* A multipart whose boundary never appears has no parts: its body is
     * read as plain text rather than dropped, which is what the sender's
     * reader sees too (zammad mail105, hostile
     * boundary-undeclared-in-body). */
    for (size_t i = 0; i < tree->n; i++) {
        struct mr__part *p = &tree->parts[i];
        if (p->kind == MR__MULTIPART && p->first_child < 0) {
            mr__warn(a, w, "boundary_missing: the boundary of part %zu never "
                           "appears; its body is read as text", i);
            p->kind = MR__LEAF;
            p->ctype.value = "text/plain";
            p->ctype_defaulted = true;
        }
    }
}

void mr__part_number(const struct mr__tree *t, int i, char *out, size_t size)
{
    /* Walk up collecting 1-based sibling indexes (bounded by max_depth). */
    unsigned idx[130];
    size_t n = 0;
    while (i > 0 && n < sizeof(idx) / sizeof(idx[0])) {
        int parent = t->parts[i].parent;
        /* IMAP numbers a nested message's parts under the message part
         * itself: the nested root is not a level of its own. */
        if (t->parts[parent].kind != MR__MESSAGE)
            idx[n++] = t->parts[i].nth;
        i = parent;
    }
    size_t o = 0;
    out[0] = '\0';
    if (n == 0) {
        snprintf(out, size, "1");
        return;
    }
    while (n-- > 0 && o < size) {
        int wr = snprintf(out + o, size - o, o ? ".%u" : "%u", idx[n]);
        if (wr < 0)
            break;
        o += (size_t)wr;
    }
}
