/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sanitize.c - see sanitize.h. The tree walk and the serializer; CSS is in
 * sanitize_css.c.
 *
 * Three decisions carry the design:
 *
 * 1. We serialize ourselves, from an allowlist. The output holds only
 *    element names from our table, attribute names from our table with
 *    double-quoted values in which & " < > are escaped, text in which
 *    & < > are escaped, and one raw-text element, <style>, whose content
 *    we wrote and which never holds '<'. No comments, no foreign (svg,
 *    math) content, no <noscript>/<template>/<textarea>/<title>/<xmp>:
 *    nothing a parser reads in another mode. Whatever tree a browser
 *    builds from such bytes holds nothing but our elements, attributes
 *    and text.
 *
 * 2. The result is checked, not trusted: it is sanitized again, and only
 *    when that gives the same bytes is it returned (the check costs a
 *    second parse). When it does not settle within MAX_PASSES, the text
 *    alone is returned. So serialize(parse(out)) == out for every output,
 *    which is the property mutation XSS breaks.
 *
 * 3. Depth is bounded: gumbo builds a tree as deep as the input nests, so
 *    the walk uses an explicit stack, and elements below MAX_DEPTH are
 *    flattened (their content kept, the elements not written). The output
 *    then stays well under Chromium's parser limit of 512 levels, past
 *    which a browser would build a different tree than gumbo.
 *
 * Gumbo's own teardown recurses once per level, so it is never called:
 * every block gumbo allocates is on a list of ours, freed in one sweep.
 *
 * Element rules (docs/content.md has the tables): what mail clients write
 * is kept; elements that embed, script or submit are dropped with their
 * content; the rest are unwrapped (content kept). Unknown elements become
 * <span>: the parser treats both the same way, so the tree does not move
 * on the next parse, and no custom element survives.
 *
 * gumbo parses <noscript> as if scripting were off (its content becomes
 * elements), a browser with scripting on reads it as raw text: the classic
 * noscript mXSS. Both readings are moot here because noscript is dropped
 * with its content and never written.
 */
#include "sanitize.h"

#include <gumbo.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../util/span.h"
#include "../util/utf8.h"
#include "sanitize-private.h"

#define MAX_DEPTH 256
#define MAX_PASSES 4

/* ------------------------------------------------------------------ */
/* Gumbo's memory: every block on one list, freed at once                */

struct galloc_hdr {
    struct galloc_hdr *prev, *next;
    alignas(max_align_t) unsigned char data[];
};

/* The blocks of one parse and its budget: gumbo grows its tree with the
 * nesting of the input and copies every open formatting element again for
 * each new block (as the HTML spec says: a few KB of <b id=N><p>x can
 * become a tree of gigabytes). When the bytes it has asked for pass the
 * budget, the parse is abandoned with longjmp (gumbo holds nothing but
 * these blocks) and the message is shown as text. */
struct gheap {
    struct galloc_hdr head;
    size_t used, budget;
    jmp_buf over;
};

static void *galloc(void *ud, size_t n)
{
    struct gheap *g = ud;
    g->used += n + sizeof(struct galloc_hdr);
    if (g->used > g->budget)
        longjmp(g->over, 1);
    struct galloc_hdr *head = &g->head;
    struct galloc_hdr *h = mr_xmalloc(sizeof *h + (n ? n : 1));
    h->prev = head;
    h->next = head->next;
    if (head->next)
        head->next->prev = h;
    head->next = h;
    return h->data;
}

static void gfree(void *ud, void *p)
{
    (void)ud;
    if (p == NULL)
        return;
    struct galloc_hdr *h =
        (struct galloc_hdr *)((unsigned char *)p -
                              offsetof(struct galloc_hdr, data));
    h->prev->next = h->next;
    if (h->next)
        h->next->prev = h->prev;
    free(h);
}

static void gfree_all(struct galloc_hdr *head)
{
    struct galloc_hdr *h = head->next;
    while (h) {
        struct galloc_hdr *next = h->next;
        free(h);
        h = next;
    }
    head->next = NULL;
}

/* ------------------------------------------------------------------ */
/* Escaping                                                             */

static void put_escaped(struct mr_buf *out, const char *p, size_t n, bool attr)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (p[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = attr ? "&quot;" : NULL; break;
        default: rep = NULL; break;
        }
        if (rep == NULL)
            continue;
        mr_buf_append(out, p + run, i - run);
        mr_buf_puts(out, rep);
        run = i + 1;
    }
    mr_buf_append(out, p + run, n - run);
}

static void put_attr(struct mr_buf *out, const char *name, const char *v,
                     size_t n)
{
    mr_buf_putc(out, ' ');
    mr_buf_puts(out, name);
    mr_buf_puts(out, "=\"");
    put_escaped(out, v, n, true);
    mr_buf_putc(out, '"');
}

/* ------------------------------------------------------------------ */
/* URLs                                                                 */

static bool is_trusted(const struct mr_san *s, const char *p, size_t n)
{
    for (size_t i = 0; i < s->ntrusted; i++)
        if (s->trusted_n[i] == n && memcmp(s->trusted[i], p, n) == 0)
            return true;
    return false;
}

static void trust(struct mr_san *s, const char *p, size_t n)
{
    if (is_trusted(s, p, n) || s->ntrusted >= MR_SAN_MAX_TRUSTED)
        return;
    if (s->ntrusted == s->trusted_cap) {
        s->trusted_cap = s->trusted_cap ? s->trusted_cap * 2 : 16;
        s->trusted =
            mr_xrealloc(s->trusted, s->trusted_cap * sizeof *s->trusted);
        s->trusted_n =
            mr_xrealloc(s->trusted_n, s->trusted_cap * sizeof *s->trusted_n);
    }
    s->trusted[s->ntrusted] = mr_xstrndup(p, n);
    s->trusted_n[s->ntrusted++] = n;
}

enum mr_san_url mr_san_url(struct mr_san *s, const char *p, size_t n)
{
    /* As the URL parser does: C0 controls and space off both ends, tab and
     * line breaks removed everywhere. */
    while (n && (unsigned char)p[0] <= 0x20)
        p++, n--;
    while (n && (unsigned char)p[n - 1] <= 0x20)
        n--;
    struct mr_buf *u = &s->url;
    mr_buf_reset(u);
    for (size_t i = 0; i < n; i++)
        if (p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
            mr_buf_putc(u, p[i]);
    if (u->len == 0 || u->limited)
        return MR_URL_BAD;
    if (is_trusted(s, u->p, u->len))
        return MR_URL_LOCAL;
    size_t colon = 0;
    while (colon < u->len && u->p[colon] != ':') {
        unsigned char c = (unsigned char)u->p[colon];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (colon > 0 && ((c >= '0' && c <= '9') || c == '+' ||
                                 c == '-' || c == '.'));
        if (!ok)
            return MR_URL_BAD; /* relative, or not a scheme */
        colon++;
    }
    if (colon == u->len)
        return MR_URL_BAD;
    mr_span scheme = mr_span_make(u->p, colon);
    if (mr_span_ieq(scheme, "http") || mr_span_ieq(scheme, "https"))
        return MR_URL_WEB;
    if (mr_span_ieq(scheme, "mailto"))
        return MR_URL_MAILTO;
    if (!mr_span_ieq(scheme, "cid"))
        return MR_URL_BAD;
    if (s->opt->resolve_cid == NULL)
        return MR_URL_LOCAL;
    const char *id = u->p + colon + 1;
    size_t idn = u->len - colon - 1;
    if (idn >= 2 && id[0] == '<' && id[idn - 1] == '>')
        id++, idn -= 2;
    const char *r = s->opt->resolve_cid(s->opt->ctx, id, idn);
    if (r == NULL || r[0] == '\0')
        return MR_URL_BAD;
    size_t rn = strlen(r);
    trust(s, r, rn);
    mr_buf_reset(u);
    mr_buf_append(u, r, rn);
    return u->limited ? MR_URL_BAD : MR_URL_LOCAL;
}

/* ------------------------------------------------------------------ */
/* Elements and attributes                                              */

enum action {
    DROP,   /* the element and everything in it */
    UNWRAP, /* the element goes, its content stays */
    KEEP,
    STYLE, /* <style>: rewritten sheet */
};

/* The action for an HTML element and, for KEEP, the name written. */
static enum action classify(GumboTag tag, const char **name)
{
    *name = gumbo_normalized_tagname(tag);
    switch (tag) {
    case GUMBO_TAG_A:
    case GUMBO_TAG_ABBR:
    case GUMBO_TAG_ACRONYM:
    case GUMBO_TAG_ADDRESS:
    case GUMBO_TAG_ARTICLE:
    case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_B:
    case GUMBO_TAG_BDI:
    case GUMBO_TAG_BDO:
    case GUMBO_TAG_BIG:
    case GUMBO_TAG_BLOCKQUOTE:
    case GUMBO_TAG_BR:
    case GUMBO_TAG_CAPTION:
    case GUMBO_TAG_CENTER:
    case GUMBO_TAG_CITE:
    case GUMBO_TAG_CODE:
    case GUMBO_TAG_COL:
    case GUMBO_TAG_COLGROUP:
    case GUMBO_TAG_DATA:
    case GUMBO_TAG_DD:
    case GUMBO_TAG_DEL:
    case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_DFN:
    case GUMBO_TAG_DIR:
    case GUMBO_TAG_DIV:
    case GUMBO_TAG_DL:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_EM:
    case GUMBO_TAG_FIGCAPTION:
    case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_FONT:
    case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_H1:
    case GUMBO_TAG_H2:
    case GUMBO_TAG_H3:
    case GUMBO_TAG_H4:
    case GUMBO_TAG_H5:
    case GUMBO_TAG_H6:
    case GUMBO_TAG_HEADER:
    case GUMBO_TAG_HGROUP:
    case GUMBO_TAG_HR:
    case GUMBO_TAG_I:
    case GUMBO_TAG_IMG:
    case GUMBO_TAG_INS:
    case GUMBO_TAG_KBD:
    case GUMBO_TAG_LI:
    case GUMBO_TAG_MAIN:
    case GUMBO_TAG_MARK:
    case GUMBO_TAG_MENU:
    case GUMBO_TAG_NAV:
    case GUMBO_TAG_NOBR:
    case GUMBO_TAG_OL:
    case GUMBO_TAG_P:
    case GUMBO_TAG_PRE:
    case GUMBO_TAG_Q:
    case GUMBO_TAG_RB:
    case GUMBO_TAG_RP:
    case GUMBO_TAG_RT:
    case GUMBO_TAG_RTC:
    case GUMBO_TAG_RUBY:
    case GUMBO_TAG_S:
    case GUMBO_TAG_SAMP:
    case GUMBO_TAG_SECTION:
    case GUMBO_TAG_SMALL:
    case GUMBO_TAG_SPAN:
    case GUMBO_TAG_STRIKE:
    case GUMBO_TAG_STRONG:
    case GUMBO_TAG_SUB:
    case GUMBO_TAG_SUMMARY:
    case GUMBO_TAG_SUP:
    case GUMBO_TAG_TABLE:
    case GUMBO_TAG_TBODY:
    case GUMBO_TAG_TD:
    case GUMBO_TAG_TFOOT:
    case GUMBO_TAG_TH:
    case GUMBO_TAG_THEAD:
    case GUMBO_TAG_TIME:
    case GUMBO_TAG_TR:
    case GUMBO_TAG_TT:
    case GUMBO_TAG_U:
    case GUMBO_TAG_UL:
    case GUMBO_TAG_VAR:
    case GUMBO_TAG_WBR: return KEEP;
    /* Raw-text and plain-text elements: their text is kept, escaped, in
     * an element every parser reads the same way. */
    case GUMBO_TAG_LISTING:
    case GUMBO_TAG_XMP:
    case GUMBO_TAG_PLAINTEXT: *name = "pre"; return KEEP;
    case GUMBO_TAG_UNKNOWN: *name = "span"; return KEEP;
    case GUMBO_TAG_STYLE: return STYLE;
    case GUMBO_TAG_HTML:
    case GUMBO_TAG_HEAD:
    case GUMBO_TAG_BODY:
    case GUMBO_TAG_FORM:
    case GUMBO_TAG_LABEL:
    case GUMBO_TAG_FIELDSET:
    case GUMBO_TAG_LEGEND:
    case GUMBO_TAG_MAP:
    case GUMBO_TAG_BLINK:
    case GUMBO_TAG_MULTICOL:
    case GUMBO_TAG_SPACER:
    case GUMBO_TAG_METER:
    case GUMBO_TAG_PROGRESS: return UNWRAP;
    default:
        /* script, noscript, template, iframe, frame(set), noframes,
         * object, embed, applet, param, video, audio, source, track,
         * canvas, area, svg, math, form controls, marquee, button, title,
         * meta, base, link, noembed, bgsound, isindex, ... */
        return DROP;
    }
}

/* Presentational attributes kept on any element we keep. */
static const char *const plain_attrs[] = {
    "abbr",    "align",       "alt",         "axis",        "bgcolor",
    "border",  "bordercolor", "cellpadding", "cellspacing", "char",
    "charoff", "class",       "clear",       "color",       "cols",
    "colspan", "compact",     "datetime",    "dir",         "face",
    "frame",   "headers",     "height",      "hspace",      "lang",
    "noshade", "nowrap",      "reversed",    "rows",        "rowspan",
    "rules",   "scope",       "size",        "span",        "start",
    "summary", "title",       "type",        "valign",      "value",
    "vspace",  "width",
};

static bool plain_attr(const char *name)
{
    for (size_t i = 0; i < sizeof plain_attrs / sizeof plain_attrs[0]; i++)
        if (strcmp(plain_attrs[i], name) == 0)
            return true;
    return false;
}

#define REMOTE_SRC "data-mr-remote-src"
#define REMOTE_BG "data-mr-remote-background"

/* An image URL (img src, background): local is written as is, remote as is
 * or as a placeholder attribute, anything else not at all. */
static void put_image_url(struct mr_san *s, const char *attr,
                          const char *placeholder, const char *v,
                          bool *placeholder_done, struct mr_buf *out)
{
    enum mr_san_url k = mr_san_url(s, v, strlen(v));
    if (k == MR_URL_LOCAL || (k == MR_URL_WEB && s->opt->remote_images)) {
        put_attr(out, attr, s->url.p, s->url.len);
    } else if (k == MR_URL_WEB && !*placeholder_done) {
        put_attr(out, placeholder, s->url.p, s->url.len);
        *placeholder_done = true;
    }
}

/* Writes the allowed attributes of element e (written as `tag`). */
static void put_attrs(struct mr_san *s, const GumboElement *e, GumboTag tag,
                      struct mr_buf *out)
{
    bool link = false, ph_src = false, ph_bg = false;
    for (unsigned i = 0; i < e->attributes.length; i++) {
        const GumboAttribute *a = e->attributes.data[i];
        if (a->attr_namespace != GUMBO_ATTR_NAMESPACE_NONE)
            continue;
        const char *name = a->name, *v = a->value;
        if (strcmp(name, "style") == 0) {
            struct mr_buf css;
            mr_buf_init(&css, 0);
            if (mr_san_css_decls(s, v, strlen(v), &css) && !css.limited)
                put_attr(out, "style", css.p, css.len);
            mr_buf_release(&css);
        } else if (strcmp(name, "href") == 0) {
            if (tag != GUMBO_TAG_A || link)
                continue;
            enum mr_san_url k = mr_san_url(s, v, strlen(v));
            if (k == MR_URL_BAD)
                continue;
            put_attr(out, "href", s->url.p, s->url.len);
            link = true;
        } else if (strcmp(name, "src") == 0) {
            if (tag == GUMBO_TAG_IMG)
                put_image_url(s, "src", REMOTE_SRC, v, &ph_src, out);
        } else if (strcmp(name, "background") == 0) {
            put_image_url(s, "background", REMOTE_BG, v, &ph_bg, out);
        } else if (strcmp(name, REMOTE_SRC) == 0 ||
                   strcmp(name, REMOTE_BG) == 0) {
            /* Our own placeholder, met again on the check pass. */
            bool src = name[8] == 's';
            bool *done = src ? &ph_src : &ph_bg;
            if ((src && tag != GUMBO_TAG_IMG) || *done)
                continue;
            if (mr_san_url(s, v, strlen(v)) != MR_URL_WEB)
                continue;
            put_attr(out, name, s->url.p, s->url.len);
            *done = true;
        } else if (plain_attr(name)) {
            put_attr(out, name, v, strlen(v));
        }
    }
    if (link)
        mr_buf_puts(out, " target=\"_blank\" rel=\"noopener noreferrer "
                         "nofollow\"");
}

static bool is_void(GumboTag tag)
{
    return tag == GUMBO_TAG_BR || tag == GUMBO_TAG_HR || tag == GUMBO_TAG_IMG ||
           tag == GUMBO_TAG_COL || tag == GUMBO_TAG_WBR;
}

/* Elements whose direct text a parser moves elsewhere (foster parenting):
 * text met there (only possible after flattening) is not written. */
static bool is_table_context(const char *name)
{
    return name && (strcmp(name, "table") == 0 || strcmp(name, "tbody") == 0 ||
                    strcmp(name, "thead") == 0 || strcmp(name, "tfoot") == 0 ||
                    strcmp(name, "tr") == 0 || strcmp(name, "colgroup") == 0);
}

static bool all_space(const char *p)
{
    for (; *p; p++)
        if (!(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
              *p == '\f'))
            return false;
    return true;
}

/* ------------------------------------------------------------------ */
/* The walk                                                             */

struct frame {
    const GumboNode *node;
    unsigned next;      /* index of the next child to visit */
    const char *name;   /* written element name, NULL: not written */
    const char *parent; /* nearest written element around this frame */
    bool text;          /* text children are written (inside <body>) */
};

struct walk {
    struct mr_san *s;
    struct frame *st;
    size_t n, cap;
    int depth; /* written elements open */
    bool text_only;
};

static void push(struct walk *w, const GumboNode *node, const char *name,
                 const char *parent, bool text)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->st = mr_xrealloc(w->st, w->cap * sizeof *w->st);
    }
    w->st[w->n++] = (struct frame){node, 0, name, parent, text};
}

static const GumboVector *children(const GumboNode *node)
{
    if (node->type == GUMBO_NODE_DOCUMENT)
        return &node->v.document.children;
    return &node->v.element.children;
}

/* One element child of frame f. */
static void visit_element(struct walk *w, struct mr_buf *out,
                          const GumboNode *c, const struct frame *f)
{
    const GumboElement *e = &c->v.element;
    const char *parent = f->name ? f->name : f->parent;
    if (c->type == GUMBO_NODE_TEMPLATE ||
        e->tag_namespace != GUMBO_NAMESPACE_HTML)
        return;
    const char *name;
    enum action act = classify(e->tag, &name);
    /* Only <style> survives from <head>. */
    if (!f->text && f->node->type == GUMBO_NODE_ELEMENT &&
        f->node->v.element.tag == GUMBO_TAG_HEAD && act != STYLE)
        return;
    if (act == DROP)
        return;
    if (act == STYLE) {
        if (w->text_only || e->children.length != 1)
            return;
        const GumboNode *t = e->children.data[0];
        if (t->type != GUMBO_NODE_TEXT && t->type != GUMBO_NODE_WHITESPACE)
            return;
        struct mr_buf css;
        mr_buf_init(&css, 0);
        if (mr_san_css_sheet(w->s, t->v.text.text, strlen(t->v.text.text),
                             &css) &&
            !css.limited) {
            mr_buf_puts(out, "<style>\n");
            mr_buf_append(out, css.p, css.len);
            mr_buf_puts(out, "</style>");
        }
        mr_buf_release(&css);
        return;
    }
    bool in_body = f->text || e->tag == GUMBO_TAG_BODY;
    if (e->tag == GUMBO_TAG_BODY && !w->text_only) {
        /* The body's own look (Outlook puts its fonts there) goes on a
         * div; a bare body is just unwrapped. */
        size_t mark = out->len;
        mr_buf_puts(out, "<div");
        size_t attrs = out->len;
        put_attrs(w->s, e, GUMBO_TAG_BODY, out);
        if (out->len > attrs) {
            mr_buf_putc(out, '>');
            w->depth++;
            push(w, c, "div", parent, true);
            return;
        }
        mr_buf_truncate(out, mark);
    }
    if (act == UNWRAP || w->text_only || w->depth >= MAX_DEPTH) {
        push(w, c, NULL, parent, in_body);
        return;
    }
    mr_buf_putc(out, '<');
    mr_buf_puts(out, name);
    put_attrs(w->s, e, e->tag, out);
    mr_buf_putc(out, '>');
    if (is_void(e->tag))
        return;
    w->depth++;
    push(w, c, name, parent, true);
}

/* Serializes the allowed part of the tree under doc into out. */
static void walk_tree(struct walk *w, const GumboNode *doc, struct mr_buf *out)
{
    w->n = 0;
    w->depth = 0;
    if (w->text_only)
        mr_buf_puts(out, "<div style=\"white-space: pre-wrap\">");
    push(w, doc, NULL, NULL, false);
    while (w->n > 0 && !out->limited) {
        struct frame *f = &w->st[w->n - 1];
        const GumboVector *kids = children(f->node);
        if (f->next >= kids->length) {
            if (f->name) {
                mr_buf_puts(out, "</");
                mr_buf_puts(out, f->name);
                mr_buf_putc(out, '>');
                w->depth--;
            }
            w->n--;
            continue;
        }
        const GumboNode *c = kids->data[f->next++];
        switch (c->type) {
        case GUMBO_NODE_TEXT:
        case GUMBO_NODE_WHITESPACE: {
            if (!f->text)
                break;
            const char *t = c->v.text.text;
            const char *at = f->name ? f->name : f->parent;
            if (!w->text_only && is_table_context(at) && !all_space(t))
                break;
            /* The parser drops a line break right after <pre>: write one
             * more so the text's own survives the next parse. */
            if (f->name && strcmp(f->name, "pre") == 0 && f->next == 1 &&
                t[0] == '\n')
                mr_buf_putc(out, '\n');
            put_escaped(out, t, strlen(t), false);
            break;
        }
        case GUMBO_NODE_ELEMENT:
        case GUMBO_NODE_TEMPLATE: visit_element(w, out, c, f); break;
        default: /* comments, CDATA (foreign content only), document */ break;
        }
    }
    if (w->text_only)
        mr_buf_puts(out, "</div>");
}

/* ------------------------------------------------------------------ */
/* Before gumbo: bounding the nesting it sees                           */

/* Elements that never stay open, close themselves, or hold raw text: not
 * counted as nesting. */
static bool counted(const char *name)
{
    static const char *const flat[] = {
        "area",    "base",     "br",       "col",       "embed",   "hr",
        "img",     "input",    "link",     "meta",      "param",   "source",
        "track",   "wbr",      "keygen",   "basefont",  "bgsound", "frame",
        "image",   "isindex",  "menuitem", "p",         "li",      "dt",
        "dd",      "option",   "optgroup", "tr",        "td",      "th",
        "tbody",   "thead",    "tfoot",    "rb",        "rt",      "rtc",
        "rp",      "colgroup", "caption",  "html",      "head",    "body",
        "script",  "style",    "textarea", "title",     "xmp",     "iframe",
        "noembed", "noframes", "noscript", "plaintext",
    };
    for (size_t i = 0; i < sizeof flat / sizeof flat[0]; i++)
        if (strcmp(flat[i], name) == 0)
            return false;
    return true;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Where the tag whose name ends at p[i] ends (just past '>'), reading
 * attribute values in quotes as the tokenizer does; n when it never
 * does. */
static size_t tag_end(const char *p, size_t n, size_t i)
{
    while (i < n && p[i] != '>') {
        if (p[i] == '=') {
            i++;
            while (i < n && mr_is_wsp((unsigned char)p[i]))
                i++;
            if (i < n && (p[i] == '"' || p[i] == '\'')) {
                const char *q = memchr(p + i + 1, p[i], n - i - 1);
                if (q == NULL)
                    return n;
                i = (size_t)(q - p) + 1;
                continue;
            }
            continue;
        }
        i++;
    }
    return i < n ? i + 1 : n;
}

/* Start of the end tag </name at or after i, or n. */
static size_t raw_end(const char *p, size_t n, size_t i, const char *name)
{
    size_t len = strlen(name);
    while (i < n) {
        const char *lt = memchr(p + i, '<', n - i);
        if (lt == NULL)
            return n;
        i = (size_t)(lt - p);
        if (i + 2 + len <= n && p[i + 1] == '/' &&
            mr_span_ieq(mr_span_make(p + i + 2, len), name))
            return i;
        i++;
    }
    return n;
}

/* A linear, approximate tokenizer over the input, in one of two modes.
 * Nesting (strip false): start tags past PRE_DEPTH open elements are left
 * out, with as many end tags, so gumbo never holds a deep stack (its scope
 * checks walk the stack for every tag: 100,000 nested <div> took 18 s).
 * Text (strip true): every tag, comment and raw-text content left out,
 * for the fallback. Copies into buf only when something is left out;
 * returns the span to parse. Each step moves forward: linear time. */
#define PRE_DEPTH 512
static mr_span prepare(const char *p, size_t n, bool strip, struct mr_buf *buf)
{
    size_t i = 0, copied = 0, depth = 0, dropped = 0;
    bool changed = false;
    while (i < n) {
        const char *lt = memchr(p + i, '<', n - i);
        if (lt == NULL)
            break;
        size_t t = (size_t)(lt - p), end;
        bool drop = strip;
        if (t + 1 >= n)
            break;
        if (p[t + 1] == '!') {
            const char *e = NULL;
            if (n - t >= 4 && memcmp(p + t, "<!--", 4) == 0)
                e = memmem(p + t + 4, n - t - 4, "-->", 3);
            else
                e = memchr(p + t, '>', n - t);
            end = e ? (size_t)(e - p) + (e[0] == '-' ? 3 : 1) : n;
        } else if (is_alpha(p[t + 1]) ||
                   (p[t + 1] == '/' && t + 2 < n && is_alpha(p[t + 2]))) {
            bool close = p[t + 1] == '/';
            size_t a = t + (close ? 2 : 1), b = a;
            char name[16];
            while (b < n && (is_alpha(p[b]) || (p[b] >= '0' && p[b] <= '9') ||
                             p[b] == '-'))
                b++;
            size_t len = b - a < sizeof name - 1 ? b - a : sizeof name - 1;
            for (size_t k = 0; k < len; k++)
                name[k] = (char)mr_lower((unsigned char)p[a + k]);
            name[len] = '\0';
            end = tag_end(p, n, b);
            bool raw =
                !close && !counted(name) &&
                (strcmp(name, "script") == 0 || strcmp(name, "style") == 0 ||
                 strcmp(name, "textarea") == 0 || strcmp(name, "title") == 0 ||
                 strcmp(name, "xmp") == 0 || strcmp(name, "iframe") == 0 ||
                 strcmp(name, "noembed") == 0 ||
                 strcmp(name, "noframes") == 0 ||
                 strcmp(name, "noscript") == 0);
            /* No tags in there, and its content is not text either. */
            if (raw)
                end = raw_end(p, n, end, name);
            /* gumbo parses <noscript> as a browser without scripting would
             * (its content as markup); the agent's browser runs scripts and
             * reads it as raw text up to </noscript>. The element goes
             * here, with its end tag, so both read what follows alike. */
            if (raw && !strip && strcmp(name, "noscript") == 0) {
                end = tag_end(p, n, end < n ? end + 2 : n);
                drop = true;
            }
            if (!strip && counted(name)) {
                if (!close && depth >= PRE_DEPTH) {
                    dropped++;
                    drop = true;
                } else if (!close) {
                    depth++;
                } else if (dropped) {
                    dropped--;
                    drop = true;
                } else if (depth) {
                    depth--;
                }
            }
            if (raw && !strip && !drop) {
                i = end;
                continue;
            }
        } else {
            i = t + 1;
            continue;
        }
        if (drop) {
            mr_buf_append(buf, p + copied, t - copied);
            copied = end;
            changed = true;
        }
        i = end;
    }
    if (!changed)
        return mr_span_make(p, n);
    mr_buf_append(buf, p + copied, n - copied);
    return mr_buf_span(buf);
}

/* pass() when gumbo's budget ran out (not an MR_E* code: never returned
 * to a caller). */
#define OVER_BUDGET 1

/* One parse and serialization of html[0..n) (valid UTF-8, no NUL). */
static int pass(struct walk *w, const char *html, size_t n, struct mr_buf *out,
                struct mr_error *err)
{
    struct gheap *heap = mr_xcalloc(1, sizeof *heap);
    /* Measured on mail bodies: gumbo asks for 10-40 bytes per input
     * byte; 64 leaves room and still bounds a hostile message. */
    heap->budget = (size_t)64 << 20;
    if (n < (SIZE_MAX >> 8))
        heap->budget += n * 64;
    GumboOptions o = kGumboDefaultOptions;
    o.allocator = galloc;
    o.deallocator = gfree;
    o.userdata = heap;
    o.max_errors = 0;
    GumboOutput *g = NULL;
    if (setjmp(heap->over) == 0)
        g = gumbo_parse_with_options(&o, html, n);
    else
        g = NULL;
    int rc = 0;
    if (heap->used > heap->budget)
        rc = OVER_BUDGET;
    else if (g == NULL)
        rc = mr_error_set(err, MR_EINVAL, "the HTML parser gave up");
    else
        walk_tree(w, g->document, out);
    gfree_all(&heap->head);
    free(heap);
    if (rc == 0 && out->limited)
        rc = mr_error_set(err, MR_ELIMIT,
                          "sanitized HTML is over the limit of %zu bytes",
                          out->max);
    return rc;
}

/* Sanitizes html until the output maps to itself. *budget is set when
 * gumbo's memory budget ran out. */
static int settle(struct walk *w, const char *html, size_t n, struct mr_buf *a,
                  struct mr_buf *b, bool *budget, struct mr_error *err)
{
    *budget = false;
    int rc = pass(w, html, n, a, err);
    for (int i = 1; rc == 0 && i < MAX_PASSES; i++) {
        mr_buf_reset(b);
        rc = pass(w, a->p ? a->p : "", a->len, b, err);
        if (rc != 0)
            break;
        if (a->len == b->len &&
            (a->len == 0 || memcmp(a->p, b->p, a->len) == 0))
            return 0;
        struct mr_buf t = *a;
        *a = *b;
        *b = t;
    }
    if (rc == OVER_BUDGET) {
        *budget = true;
        return rc;
    }
    if (rc != 0)
        return rc;
    /* Never seen on the test vectors; text alone always settles. */
    w->text_only = true;
    mr_buf_reset(a);
    rc = pass(w, html, n, a, err);
    w->text_only = false;
    return rc;
}

int mr_html_sanitize(const char *html, size_t n,
                     const struct mr_sanitize_opts *opt, struct mr_buf *out,
                     struct mr_error *err)
{
    static const struct mr_sanitize_opts defaults = {0};
    struct mr_san s = {.opt = opt ? opt : &defaults};
    if (out->limited)
        return mr_error_set(err, MR_ELIMIT, "output buffer is full");
    mr_buf_init(&s.url, 64 * 1024);
    struct walk w = {.s = &s};
    /* The passes write into buffers one byte larger than the room left in
     * out (0: no cap), so that "exactly full" and "over" differ and out is
     * only ever appended to whole. */
    size_t room = out->max ? out->max - out->len : 0;
    size_t cap = out->max && room < SIZE_MAX ? room + 1 : room;
    /* gumbo wants UTF-8; NUL would end its strings. */
    struct mr_buf in, pre, a, b;
    mr_buf_init(&in, 0);
    mr_buf_init(&pre, 0);
    mr_buf_init(&a, cap);
    mr_buf_init(&b, cap);
    if (!mr_utf8_valid(html, n) || memchr(html, '\0', n) != NULL) {
        mr_utf8_repair(&in, html, n, true);
        html = in.p ? in.p : "";
        n = in.len;
    }
    mr_span src = prepare(html, n, false, &pre);
    bool budget;
    int rc = settle(&w, src.p, src.n, &a, &b, &budget, err);
    if (budget) {
        /* Too big a tree: the text, in one element. */
        mr_buf_reset(&pre);
        mr_buf_reset(&a);
        mr_buf_puts(&pre, "<div style=\"white-space: pre-wrap\">");
        struct mr_buf t;
        mr_buf_init(&t, 0);
        mr_span txt = prepare(html, n, true, &t);
        mr_buf_append(&pre, txt.p, txt.n);
        mr_buf_release(&t);
        rc = settle(&w, pre.p, pre.len, &a, &b, &budget, err);
        if (budget)
            rc = mr_error_set(err, MR_ELIMIT, "HTML too large to parse");
    }
    if (rc == 0 && out->max && a.len > room)
        rc = mr_error_set(err, MR_ELIMIT,
                          "sanitized HTML is over the limit of %zu bytes",
                          out->max);
    if (rc == 0)
        mr_buf_append(out, a.p ? a.p : "", a.len);
    mr_buf_release(&a);
    mr_buf_release(&b);
    mr_buf_release(&in);
    mr_buf_release(&pre);
    mr_buf_release(&s.url);
    for (size_t i = 0; i < s.ntrusted; i++)
        free(s.trusted[i]);
    free(s.trusted);
    free(s.trusted_n);
    free(w.st);
    return rc;
}
