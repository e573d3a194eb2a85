/* SPDX-License-Identifier: Apache-2.0 */
/*
 * html_text.c - HTML to readable text over gumbo's tree (html_text.h).
 *
 * The tree is walked with an explicit stack of frames, never recursion, so
 * hostile nesting costs heap, not call stack; each frame remembers what its
 * element changed (quote depth, list, link, preformatted, table row) and
 * undoes it on the way out. Output is produced lazily: a block asks for
 * one or two line breaks and a collapsed space is only remembered, and
 * both are written when the next visible character comes, so runs of
 * empty blocks, trailing whitespace and blank lines at the end never
 * reach the buffer and no pass over the output is needed to tidy it.
 *
 * Every output byte is appended once, except the text of a link, read
 * once more when the link closes to see whether it already is its URL, and
 * the trailing spaces of a line, cut once; so the walk is linear in the
 * tree, and gumbo's parse is what the time goes to.
 */
#include "html_text.h"

#include <gumbo.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/utf8.h"
#include "content-private.h"

#define HR_LINE "----------"
#define FIRST_TEXT_NODES 64 /* nodes looked at to find a container's text */

/* ---- output: lazy breaks, prefixes, collapsed spaces ------------------ */

struct conv {
    struct mr_buf *b;
    size_t start;       /* our output begins here in b */
    bool any;           /* a visible character has been written */
    int pending;        /* line breaks owed before the next character: 0-2 */
    bool space;         /* a collapsed space is owed */
    bool cell_sep;      /* " | " is owed: a table cell follows another */
    int depth;          /* quote depth of what comes next */
    int line_depth;     /* quote depth of the current line */
    size_t indent;      /* spaces after the quote prefix (lists) */
    char marker[16];    /* a list item's marker, written with its first text */
    size_t marker_len;
    int pre;            /* inside <pre>: whitespace is kept */
    bool stopped;       /* the rest of the document is an Outlook quote */
    const struct mr__html_text_opts *o;
};

static void put_prefix(struct conv *c, int depth, bool blank)
{
    for (int i = 0; i < depth; i++)
        mr_buf_append(c->b, blank && i == depth - 1 ? ">" : "> ",
                      blank && i == depth - 1 ? 1 : 2);
}

/* Ends the current line: trailing spaces go (a line of only spaces, from
 * &nbsp; paragraphs or <pre>, becomes empty). */
static void end_line(struct conv *c)
{
    struct mr_buf *b = c->b;
    while (b->len > c->start && (b->p[b->len - 1] == ' ' || b->p[b->len - 1] == '\t'))
        mr_buf_truncate(b, b->len - 1);
    mr_buf_putc(b, '\n');
}

/* Called before each visible run: settles the owed breaks and space. */
static void begin(struct conv *c)
{
    if (c->any && c->pending == 0) {
        if (c->cell_sep)
            mr_buf_append(c->b, " | ", 3);
        else if (c->space)
            mr_buf_putc(c->b, ' ');
    } else {
        if (c->any) {
            end_line(c);
            if (c->pending == 2) {
                int d = c->line_depth < c->depth ? c->line_depth : c->depth;
                put_prefix(c, d, true);
                mr_buf_putc(c->b, '\n');
            }
        }
        put_prefix(c, c->depth, false);
        for (size_t i = 0; i < c->indent; i++)
            mr_buf_putc(c->b, ' ');
        c->line_depth = c->depth;
    }
    if (c->marker_len) {
        /* An item's marker goes with its first text; the lines after it
         * line up under that text. */
        mr_buf_append(c->b, c->marker, c->marker_len);
        c->indent += c->marker_len;
        c->marker_len = 0;
    }
    c->any = true;
    c->pending = 0;
    c->space = false;
    c->cell_sep = false;
}

static void want_break(struct conv *c, int n)
{
    if (c->pending < n)
        c->pending = n;
    c->cell_sep = false;
}

/* <br> and the newlines of <pre>: each one counts, up to a blank line. */
static void hard_break(struct conv *c)
{
    c->pending = c->pending < 2 ? c->pending + 1 : 2;
    c->cell_sep = false;
    c->space = false;
}

static bool is_html_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

/* Text collapsed as a browser does: any run of whitespace (and no-break
 * spaces, which only matter for layout) is one space, none at a line's
 * start or end. */
static void put_text(struct conv *c, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char ch = (unsigned char)p[i];
        if (is_html_space(ch)) {
            c->space = true;
            i++;
            continue;
        }
        if (ch == 0xC2 && i + 1 < n && (unsigned char)p[i + 1] == 0xA0) {
            c->space = true;
            i += 2;
            continue;
        }
        size_t j = i;
        while (j < n && !is_html_space((unsigned char)p[j]) &&
               !((unsigned char)p[j] == 0xC2 && j + 1 < n &&
                 (unsigned char)p[j + 1] == 0xA0))
            j++;
        begin(c);
        mr_buf_append(c->b, p + i, j - i);
        i = j;
    }
}

/* Text inside <pre>: spaces kept, each newline a line break. */
static void put_pre(struct conv *c, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] == '\n') {
            hard_break(c);
            i++;
            continue;
        }
        if (p[i] == '\r') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r')
            j++;
        begin(c);
        /* No-break spaces are plain spaces in text. */
        for (size_t k = i; k < j;) {
            const char *nb = memmem(p + k, j - k, "\xC2\xA0", 2);
            size_t e = nb ? (size_t)(nb - p) : j;
            mr_buf_append(c->b, p + k, e - k);
            if (!nb)
                break;
            mr_buf_putc(c->b, ' ');
            k = e + 2;
        }
        i = j;
    }
}

/* ---- looking at elements ---------------------------------------------- */

static const char *attr(const GumboNode *n, const char *name)
{
    const GumboAttribute *a = gumbo_get_attribute(&n->v.element.attributes, name);
    return a ? a->value : NULL;
}

static bool has_class(const GumboNode *n, const char *cls)
{
    const char *v = attr(n, "class");
    if (!v)
        return false;
    size_t l = strlen(cls);
    for (const char *p = v; *p;) {
        while (*p && is_html_space((unsigned char)*p))
            p++;
        const char *s = p;
        while (*p && !is_html_space((unsigned char)*p))
            p++;
        if ((size_t)(p - s) == l && strncasecmp(s, cls, l) == 0)
            return true;
    }
    return false;
}

static bool id_is(const GumboNode *n, const char *id)
{
    const char *v = attr(n, "id");
    return v && strcasecmp(v, id) == 0;
}

/* A style declaration "prop: value" with the value starting with val
 * (both ASCII, case ignored, spaces around the colon allowed). */
static bool style_has(const char *style, const char *prop, const char *val)
{
    if (!style)
        return false;
    size_t pl = strlen(prop), vl = strlen(val);
    for (const char *p = style; (p = strcasestr(p, prop)) != NULL; p += pl) {
        if (p > style && (p[-1] == '-' || (p[-1] >= 'a' && p[-1] <= 'z')))
            continue;
        const char *q = p + pl;
        while (*q == ' ' || *q == '\t' || *q == '\n')
            q++;
        if (*q != ':')
            continue;
        q++;
        while (*q == ' ' || *q == '\t' || *q == '\n')
            q++;
        if (strncasecmp(q, val, vl) == 0)
            return true;
    }
    return false;
}

static bool hidden(const GumboNode *n)
{
    if (attr(n, "hidden"))
        return true;
    const char *st = attr(n, "style");
    return style_has(st, "display", "none") || style_has(st, "mso-hide", "all");
}

/* The first non-blank text inside n, looking at a bounded number of nodes
 * (a quote container's text starts near its top). */
static bool first_text(const GumboNode *n, const char **p, size_t *len)
{
    const GumboNode *stack[FIRST_TEXT_NODES];
    size_t sp = 0, seen = 0;
    stack[sp++] = n;
    while (sp && seen++ < FIRST_TEXT_NODES) {
        const GumboNode *x = stack[--sp];
        if (x->type == GUMBO_NODE_TEXT) {
            const char *t = x->v.text.text;
            while (*t && (is_html_space((unsigned char)*t) ||
                          ((unsigned char)t[0] == 0xC2 && (unsigned char)t[1] == 0xA0)))
                t += (unsigned char)*t == 0xC2 ? 2 : 1;
            if (*t) {
                *p = t;
                *len = strlen(t);
                return true;
            }
            continue;
        }
        if (x->type != GUMBO_NODE_ELEMENT)
            continue;
        const GumboVector *ch = &x->v.element.children;
        /* Children pushed last first, so the first is looked at first;
         * what does not fit is not looked at. */
        for (unsigned i = ch->length; i > 0; i--) {
            if (sp == FIRST_TEXT_NODES)
                break;
            stack[sp++] = ch->data[i - 1];
        }
    }
    return false;
}

/* The last line written, if it is a forward banner ("Begin forwarded
 * message:" before Apple Mail's blockquote). Only a short tail is read. */
static bool after_forward_banner(const struct conv *c)
{
    const struct mr_buf *b = c->b;
    size_t end = b->len, s = end;
    while (s > c->start && end - s < 200 && b->p[s - 1] != '\n')
        s--;
    const char *p = b->p + s;
    size_t n = end - s;
    while (n && *p == '>') {
        p++, n--;
        while (n && *p == ' ')
            p++, n--;
    }
    return n && mr__reply_forward_banner(p, n);
}

static bool starts_forward(const GumboNode *n)
{
    const char *p;
    size_t len;
    if (!first_text(n, &p, &len))
        return false;
    const char *nl = memchr(p, '\n', len);
    return mr__reply_forward_banner(p, nl ? (size_t)(nl - p) : len);
}

static bool starts_from_field(const GumboNode *n)
{
    const char *p;
    size_t len;
    return first_text(n, &p, &len) && mr__reply_from_field(p, len);
}

enum quote_kind {
    Q_NONE,
    Q_BLOCK,    /* a quoted subtree */
    Q_REST,     /* Outlook: this header and everything after it */
};

/* Which quote container an element is (docs/reply.md lists them). */
static enum quote_kind quote_kind(const GumboNode *n)
{
    GumboTag t = n->v.element.tag;
    if (t == GUMBO_TAG_BLOCKQUOTE)
        return Q_BLOCK;
    if (t == GUMBO_TAG_DIV || t == GUMBO_TAG_SPAN) {
        if (has_class(n, "gmail_quote") || has_class(n, "yahoo_quoted") ||
            has_class(n, "moz-cite-prefix") || id_is(n, "OLK_SRC_BODY_SECTION"))
            return Q_BLOCK;
        if (id_is(n, "divRplyFwdMsg") || id_is(n, "appendonsend"))
            return Q_REST;
        /* Outlook's reply header: a div with a top border whose text
         * starts with From: (or a translation). */
        const char *st = attr(n, "style");
        if (st && strcasestr(st, "border-top") && starts_from_field(n))
            return Q_REST;
    }
    if (t == GUMBO_TAG_HR && (id_is(n, "stopSpelling") || id_is(n, "zwchr")))
        return Q_REST;
    return Q_NONE;
}

static bool signature_container(const GumboNode *n)
{
    return has_class(n, "gmail_signature") || has_class(n, "moz-signature") ||
           id_is(n, "Signature") || attr(n, "data-smartmail") ||
           attr(n, "data-signatureblock");
}

/* Line breaks before and after a block element: 2 leaves a blank line. */
static int block_breaks(GumboTag t)
{
    switch (t) {
    case GUMBO_TAG_P:
    case GUMBO_TAG_H1:
    case GUMBO_TAG_H2:
    case GUMBO_TAG_H3:
    case GUMBO_TAG_H4:
    case GUMBO_TAG_H5:
    case GUMBO_TAG_H6:
    case GUMBO_TAG_PRE:
        return 2;
    case GUMBO_TAG_DIV:
    case GUMBO_TAG_BLOCKQUOTE:
    case GUMBO_TAG_TABLE:
    case GUMBO_TAG_TR:
    case GUMBO_TAG_CAPTION:
    case GUMBO_TAG_SECTION:
    case GUMBO_TAG_ARTICLE:
    case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_HEADER:
    case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_NAV:
    case GUMBO_TAG_MAIN:
    case GUMBO_TAG_ADDRESS:
    case GUMBO_TAG_CENTER:
    case GUMBO_TAG_DL:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_DD:
    case GUMBO_TAG_FORM:
    case GUMBO_TAG_FIELDSET:
    case GUMBO_TAG_LEGEND:
    case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_FIGCAPTION:
    case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_SUMMARY:
    case GUMBO_TAG_HGROUP:
    case GUMBO_TAG_LI:
    case GUMBO_TAG_BODY:
    case GUMBO_TAG_HTML:
    case GUMBO_TAG_TBODY:
    case GUMBO_TAG_THEAD:
    case GUMBO_TAG_TFOOT:
    case GUMBO_TAG_MENU:
    case GUMBO_TAG_DIR:
        return 1;
    default:
        return 0;
    }
}

static bool dropped_tag(GumboTag t)
{
    switch (t) {
    case GUMBO_TAG_SCRIPT:
    case GUMBO_TAG_STYLE:
    case GUMBO_TAG_HEAD:
    case GUMBO_TAG_TITLE:
    case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_IFRAME:
    case GUMBO_TAG_OBJECT:
    case GUMBO_TAG_EMBED:
    case GUMBO_TAG_SVG:
    case GUMBO_TAG_MATH:
    case GUMBO_TAG_SELECT:
    case GUMBO_TAG_DATALIST:
    case GUMBO_TAG_AUDIO:
    case GUMBO_TAG_VIDEO:
    case GUMBO_TAG_CANVAS:
        return true;
    default:
        return false;
    }
}

/* ---- links ------------------------------------------------------------ */

/* The URL worth showing for href, or NULL: absolute web and mail links
 * only (a relative or javascript: URL tells a reader nothing). mailto:
 * shows the address without its query. */
static const char *shown_url(const char *href, size_t *len)
{
    while (*href && is_html_space((unsigned char)*href))
        href++;
    size_t n = strlen(href);
    while (n && is_html_space((unsigned char)href[n - 1]))
        n--;
    if (n > 7 && strncasecmp(href, "mailto:", 7) == 0) {
        const char *q = memchr(href + 7, '?', n - 7);
        *len = (q ? (size_t)(q - href) : n) - 7;
        return *len ? href + 7 : NULL;
    }
    if ((n > 7 && strncasecmp(href, "http://", 7) == 0) ||
        (n > 8 && strncasecmp(href, "https://", 8) == 0) ||
        (n > 6 && strncasecmp(href, "ftp://", 6) == 0)) {
        *len = n;
        return href;
    }
    return NULL;
}

static void strip_scheme(const char **p, size_t *n)
{
    static const char *const schemes[] = {"https://", "http://", "ftp://", "mailto:"};
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++) {
        size_t l = strlen(schemes[i]);
        if (*n >= l && strncasecmp(*p, schemes[i], l) == 0) {
            *p += l;
            *n -= l;
            break;
        }
    }
    if (*n && (*p)[*n - 1] == '/')
        (*n)--;
}

/* Whether the link's text already says its URL (with or without the
 * scheme or a trailing slash). */
static bool text_is_url(const char *t, size_t tn, const char *u, size_t un)
{
    strip_scheme(&t, &tn);
    strip_scheme(&u, &un);
    return tn == un && strncasecmp(t, u, tn) == 0;
}

static void close_link(struct conv *c, size_t from, const char *href)
{
    size_t ul;
    const char *url = shown_url(href, &ul);
    if (!url)
        return;
    const struct mr_buf *b = c->b;
    size_t s = from < b->len ? from : b->len;
    while (s < b->len && (b->p[s] == ' ' || b->p[s] == '\n'))
        s++;
    const char *t = b->p + s;
    size_t tn = b->len - s;
    if (tn == 0 || c->b->limited) {
        if (tn == 0) {
            begin(c);
            mr_buf_append(c->b, url, ul);
        }
        return;
    }
    if (!memchr(t, '\n', tn) && text_is_url(t, tn, url, ul))
        return;
    c->space = true;
    begin(c);
    mr_buf_putc(c->b, '<');
    mr_buf_append(c->b, url, ul);
    mr_buf_putc(c->b, '>');
}

/* ---- the walk --------------------------------------------------------- */

enum {
    F_QUOTE = 1 << 0,  /* depth was raised */
    F_LIST = 1 << 1,   /* a ul/ol: list state saved */
    F_ITEM = 1 << 2,   /* an li: indent saved */
    F_LINK = 1 << 3,
    F_PRE = 1 << 4,
    F_ROW = 1 << 5,    /* a tr: row state saved */
    F_CELL = 1 << 6,   /* a td/th: did it write anything? */
};

struct frame {
    const GumboNode *node;
    unsigned next;      /* next child to visit */
    unsigned flags;
    int breaks;         /* line breaks asked for on the way out */
    size_t saved_indent;
    long counter;       /* ol: the next item number; saved list state */
    int saved_list;     /* index of the enclosing list's frame */
    bool ordered;
    bool saved_row;     /* tr: the enclosing row's "has content" */
    size_t mark;        /* link/cell: output length on the way in */
    const char *href;
};

struct walk {
    struct frame *f;
    size_t n, alloc;
    int list;           /* frame index of the innermost ul/ol, -1 none */
    int list_depth;
    bool row_content;   /* the current table row has written a cell */
};

static struct frame *push(struct walk *w, const GumboNode *node)
{
    if (w->n == w->alloc) {
        w->alloc = w->alloc ? w->alloc * 2 : 64;
        w->f = mr_xrealloc(w->f, w->alloc * sizeof *w->f);
    }
    struct frame *f = &w->f[w->n++];
    memset(f, 0, sizeof *f);
    f->node = node;
    return f;
}

/* What an element does on the way in; false: skip its subtree. */
static bool enter(struct conv *c, struct walk *w, struct frame *f)
{
    const GumboNode *n = f->node;
    GumboTag t = n->v.element.tag;
    if (dropped_tag(t) || n->type == GUMBO_NODE_TEMPLATE || hidden(n))
        return false;
    if (c->o->drop_signatures && signature_container(n))
        return false;

    enum quote_kind q = quote_kind(n);
    if (q != Q_NONE) {
        /* A forward is what the sender wrote: its container is kept. */
        bool forward = after_forward_banner(c) || starts_forward(n);
        if (forward) {
            q = Q_NONE;
        } else if (c->o->drop_quotes) {
            /* A plain blockquote stays marked: the text stage removes
             * its lines and keeps what the sender wrote between them. */
            bool plain_bq = t == GUMBO_TAG_BLOCKQUOTE && !attr(n, "type") &&
                            !has_class(n, "gmail_quote");
            if (!plain_bq) {
                if (q == Q_REST)
                    c->stopped = true;
                return false;
            }
        } else if (q == Q_REST) {
            /* Marked from here to the end: the frames never lower it. */
            want_break(c, 1);
            c->depth++;
            q = Q_NONE;
        } else if (has_class(n, "gmail_quote") && t != GUMBO_TAG_BLOCKQUOTE) {
            /* Gmail's own text part writes the "On ... wrote:" line of
             * its quote unquoted; the blockquote inside is the quote. */
            q = Q_NONE;
        }
    }

    int br = block_breaks(t);
    /* Outlook writes every line as <p class=MsoNormal> with no margin:
     * a line, not a paragraph. */
    if (t == GUMBO_TAG_P && has_class(n, "MsoNormal"))
        br = 1;
    if (q == Q_BLOCK) {
        br = br ? br : 1;
        f->flags |= F_QUOTE;
    }
    if (br)
        want_break(c, br);
    f->breaks = br;
    if (q == Q_BLOCK)
        c->depth++;

    switch (t) {
    case GUMBO_TAG_BR:
        hard_break(c);
        return false;
    case GUMBO_TAG_HR:
        want_break(c, 1);
        begin(c);
        mr_buf_append(c->b, HR_LINE, sizeof HR_LINE - 1);
        want_break(c, 1);
        return false;
    case GUMBO_TAG_IMG: {
        const char *alt = attr(n, "alt");
        if (alt)
            put_text(c, alt, strlen(alt));
        return false;
    }
    case GUMBO_TAG_UL:
    case GUMBO_TAG_OL: {
        f->flags |= F_LIST;
        f->saved_list = w->list;
        f->ordered = t == GUMBO_TAG_OL;
        const char *st = f->ordered ? attr(n, "start") : NULL;
        f->counter = st ? strtol(st, NULL, 10) : 1;
        if (f->counter < -999999 || f->counter > 999999)
            f->counter = 1;
        w->list = (int)(f - w->f);
        w->list_depth++;
        f->breaks = w->list_depth == 1 ? 2 : 1;
        want_break(c, f->breaks);
        return true;
    }
    case GUMBO_TAG_LI: {
        f->flags |= F_ITEM;
        f->saved_indent = c->indent;
        int depth = w->list_depth ? w->list_depth : 1;
        c->indent = (size_t)(depth - 1) * 2;
        struct frame *l = w->list >= 0 ? &w->f[w->list] : NULL;
        int m = l && l->ordered
                    ? snprintf(c->marker, sizeof c->marker, "%ld. ", l->counter++)
                    : snprintf(c->marker, sizeof c->marker, "- ");
        c->marker_len = m > 0 && (size_t)m < sizeof c->marker ? (size_t)m : 0;
        return true;
    }
    case GUMBO_TAG_A: {
        const char *href = attr(n, "href");
        if (href) {
            f->flags |= F_LINK;
            f->href = href;
            f->mark = c->b->len;
        }
        return true;
    }
    case GUMBO_TAG_PRE:
    case GUMBO_TAG_LISTING:
    case GUMBO_TAG_XMP:
    case GUMBO_TAG_PLAINTEXT:
    case GUMBO_TAG_TEXTAREA:
        f->flags |= F_PRE;
        c->pre++;
        return true;
    case GUMBO_TAG_TR:
        f->flags |= F_ROW;
        f->saved_row = w->row_content;
        w->row_content = false;
        return true;
    case GUMBO_TAG_TD:
    case GUMBO_TAG_TH:
        f->flags |= F_CELL;
        if (w->row_content && c->pending == 0 && c->any)
            c->cell_sep = true;
        f->mark = c->b->len;
        return true;
    default:
        return true;
    }
}

/* What an element undoes on the way out. */
static void leave(struct conv *c, struct walk *w, struct frame *f)
{
    if (f->flags & F_LINK)
        close_link(c, f->mark, f->href);
    if (f->flags & F_PRE)
        c->pre--;
    if (f->flags & F_ITEM) {
        c->indent = f->saved_indent;
        c->marker_len = 0;
    }
    if (f->flags & F_LIST) {
        w->list = f->saved_list;
        w->list_depth--;
    }
    if (f->flags & F_CELL) {
        if (c->b->len != f->mark)
            w->row_content = true;
    }
    if (f->flags & F_ROW)
        w->row_content = f->saved_row;
    if (f->breaks)
        want_break(c, f->breaks);
    if (f->flags & F_QUOTE)
        c->depth--;
}

static void walk(struct conv *c, const GumboNode *root)
{
    struct walk w = {.list = -1};
    struct frame *f = push(&w, root);
    if (root->type == GUMBO_NODE_ELEMENT && !enter(c, &w, f))
        w.n = 0;
    while (w.n && !c->stopped && !c->b->limited) {
        f = &w.f[w.n - 1];
        const GumboVector *ch = f->node->type == GUMBO_NODE_DOCUMENT
                                    ? &f->node->v.document.children
                                    : &f->node->v.element.children;
        if (f->next == ch->length) {
            if (f->node->type != GUMBO_NODE_DOCUMENT)
                leave(c, &w, f);
            w.n--;
            continue;
        }
        const GumboNode *n = ch->data[f->next++];
        switch (n->type) {
        case GUMBO_NODE_TEXT:
        case GUMBO_NODE_CDATA:
        case GUMBO_NODE_WHITESPACE:
            if (c->pre)
                put_pre(c, n->v.text.text, strlen(n->v.text.text));
            else
                put_text(c, n->v.text.text, strlen(n->v.text.text));
            break;
        case GUMBO_NODE_ELEMENT: {
            struct frame *k = push(&w, n);
            if (!enter(c, &w, k)) {
                /* Skipped: what enter changed is undone at once. */
                leave(c, &w, k);
                w.n--;
            }
            break;
        }
        default: /* comments, templates */
            break;
        }
    }
    free(w.f);
}

size_t mr__html_depth_estimate(const char *h, size_t n)
{
    /* Elements the tree builder closes by itself or never opens as
     * containers; counting them would only overstate the depth. */
    static const char *const flat[] = {
        "p", "li", "td", "th", "tr", "dt", "dd", "option", "br", "hr",
        "img", "input", "meta", "link", "area", "base", "col", "embed",
        "param", "source", "track", "wbr", "!", "?", NULL};
    size_t depth = 0, max = 0;
    const char *p = h, *end = h + n;
    while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        p++;
        bool closing = p < end && *p == '/';
        if (closing)
            p++;
        const char *s = p;
        while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                           (*p >= '0' && *p <= '9') || *p == '!' || *p == '?'))
            p++;
        size_t l = (size_t)(p - s);
        if (l == 0)
            continue;
        bool counted = true;
        for (size_t i = 0; flat[i]; i++)
            if (strlen(flat[i]) == l && strncasecmp(s, flat[i], l) == 0) {
                counted = false;
                break;
            }
        if (s[0] == '!' || s[0] == '?')
            counted = false;
        if (!counted)
            continue;
        if (closing) {
            if (depth)
                depth--;
        } else if (++depth > max) {
            max = depth;
        }
    }
    return max;
}

void mr__html_text(const char *html, size_t n,
                   const struct mr__html_text_opts *o, struct mr_buf *out)
{
    size_t start = out->len;
    if (n > (size_t)UINT32_MAX / 2 ||
        mr__html_depth_estimate(html, n) > MR__HTML_MAX_DEPTH) {
        mr__html_flat_to_text(html, n, out);
    } else {
        GumboOptions go = kGumboDefaultOptions;
        go.max_errors = 0; /* errors are not used: do not collect them */
        GumboOutput *g = gumbo_parse_with_options(&go, html, n);
        struct conv c = {.b = out, .start = start, .o = o};
        walk(&c, g->document);
        while (out->len > start &&
               (out->p[out->len - 1] == ' ' || out->p[out->len - 1] == '\t'))
            mr_buf_truncate(out, out->len - 1);
        gumbo_destroy_output(&go, g);
    }
    /* gumbo decodes to valid UTF-8, but the fallback copies bytes and a
     * NUL may survive either: the result is checked once and repaired
     * when needed. */
    size_t added = out->len - start;
    if (!mr_utf8_valid(out->p ? out->p + start : "", added) ||
        (added && memchr(out->p + start, '\0', added))) {
        char *copy = mr_xmalloc(added);
        memcpy(copy, out->p + start, added);
        mr_buf_truncate(out, start);
        mr_utf8_repair(out, copy, added, true);
        free(copy);
    }
}

void mr_html_to_text(const char *html, size_t n, struct mr_buf *out)
{
    static const struct mr__html_text_opts plain = {0};
    mr__html_text(html, n, &plain, out);
}
