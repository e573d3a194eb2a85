/* SPDX-License-Identifier: Apache-2.0 */
/*
 * html_flat.c - the tree-less fallback of mr_html_to_text (html_text.h).
 *
 * gumbo's tree builder is quadratic in nesting depth (its scope checks walk
 * the stack of open elements: 20k nested divs take a second, 100k half a
 * minute) and frees the tree recursively. Input whose estimated depth is
 * over MR__HTML_MAX_DEPTH comes here instead: a single linear scan, no
 * tree: tags are dropped, block elements become line breaks, list items
 * get "- ", script/style/head/title content is skipped, the common
 * character references are decoded, whitespace collapses and blank-line
 * runs are capped at one. Every byte is looked at a bounded number of
 * times, so hostile HTML costs no more than its size.
 */
#include "content-private.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "../util/span.h"
#include "../util/utf8.h"

struct out {
    struct mr_buf *b;
    size_t start;
    bool space;    /* a collapsed space is pending */
    int newlines;  /* line breaks at the end of the output (max 2) */
};

static void put_text(struct out *o, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (o->space && o->newlines == 0 && o->b->len > o->start)
        mr_buf_putc(o->b, ' ');
    o->space = false;
    mr_buf_append(o->b, p, n);
    o->newlines = 0;
}

static void put_break(struct out *o, int want)
{
    o->space = false;
    if (o->b->len == o->start)
        return;
    while (o->newlines < want) {
        mr_buf_putc(o->b, '\n');
        o->newlines++;
    }
}

static const struct {
    const char *name;
    uint32_t cp;
} entities[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
    {"nbsp", 0xA0}, {"copy", 0xA9}, {"reg", 0xAE}, {"trade", 0x2122},
    {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
    {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"bull", 0x2022}, {"euro", 0x20AC}, {"pound", 0xA3},
    {"yen", 0xA5}, {"cent", 0xA2}, {"sect", 0xA7}, {"deg", 0xB0},
    {"laquo", 0xAB}, {"raquo", 0xBB}, {"middot", 0xB7}, {"times", 0xD7},
    {"auml", 0xE4}, {"ouml", 0xF6}, {"uuml", 0xFC}, {"Auml", 0xC4},
    {"Ouml", 0xD6}, {"Uuml", 0xDC}, {"szlig", 0xDF}, {"eacute", 0xE9},
    {"egrave", 0xE8}, {"agrave", 0xE0}, {"ccedil", 0xE7}, {"zwnj", 0x200C},
    {"shy", 0xAD},
};

/* Decodes a character reference at p (after '&'); returns bytes used
 * (0 when it is not one) and the code point. */
static size_t entity(const char *p, size_t n, uint32_t *cp)
{
    size_t i = 0;
    if (n > 1 && p[0] == '#') {
        uint32_t v = 0;
        bool hex = n > 2 && (p[1] == 'x' || p[1] == 'X');
        i = hex ? 2 : 1;
        size_t digits = 0;
        while (i < n && digits < 8) {
            char c = p[i];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                break;
            v = v * (hex ? 16 : 10) + (uint32_t)d;
            i++;
            digits++;
        }
        if (digits == 0)
            return 0;
        if (i < n && p[i] == ';')
            i++;
        *cp = (v == 0 || v > 0x10FFFF) ? 0xFFFD : v;
        return i;
    }
    while (i < n && i < 10 && ((p[i] >= 'a' && p[i] <= 'z') ||
                               (p[i] >= 'A' && p[i] <= 'Z')))
        i++;
    for (size_t e = 0; e < sizeof(entities) / sizeof(entities[0]); e++) {
        size_t l = strlen(entities[e].name);
        if (l == i && memcmp(p, entities[e].name, l) == 0) {
            *cp = entities[e].cp;
            return (i < n && p[i] == ';') ? i + 1 : i;
        }
    }
    return 0;
}

static bool tag_is(mr_span name, const char *const *list)
{
    for (; *list; list++)
        if (mr_span_ieq(name, *list))
            return true;
    return false;
}

static const char *const blocks[] = {
    "p", "div", "table", "tr", "ul", "ol", "h1", "h2", "h3", "h4", "h5",
    "h6", "blockquote", "pre", "hr", "section", "article", "header",
    "footer", "address", "center", "dl", "dt", "dd", "form", NULL};
static const char *const skipped[] = {"script", "style", "head", "title",
                                      "template", "noscript", NULL};

void mr__html_flat_to_text(const char *h, size_t n, struct mr_buf *b)
{
    struct out o = {.b = b, .start = b->len};
    size_t i = 0;
    while (i < n) {
        char c = h[i];
        if (c == '<') {
            /* Comments, doctype and processing instructions. */
            if (n - i >= 4 && memcmp(h + i, "<!--", 4) == 0) {
                const char *e = memmem(h + i + 4, n - i - 4, "-->", 3);
                i = e ? (size_t)(e - h) + 3 : n;
                continue;
            }
            size_t j = i + 1;
            bool closing = j < n && h[j] == '/';
            if (closing)
                j++;
            size_t ns = j;
            while (j < n && ((h[j] >= 'a' && h[j] <= 'z') ||
                             (h[j] >= 'A' && h[j] <= 'Z') ||
                             (h[j] >= '0' && h[j] <= '9')))
                j++;
            mr_span name = mr_span_make(h + ns, j - ns);
            if (name.n == 0 && !(j < n && (h[j] == '!' || h[j] == '?'))) {
                put_text(&o, "<", 1);
                i++;
                continue;
            }
            /* Find the tag end, skipping quoted attribute values. */
            char q = 0;
            while (j < n && (q || h[j] != '>')) {
                if (q && h[j] == q)
                    q = 0;
                else if (!q && (h[j] == '"' || h[j] == '\''))
                    q = h[j];
                j++;
            }
            i = j < n ? j + 1 : n;
            if (!closing && tag_is(name, skipped)) {
                /* Skip to the matching close tag. */
                char close[16] = "</";
                size_t cl = name.n < 12 ? name.n : 12;
                memcpy(close + 2, name.p, cl);
                size_t k = i;
                size_t found = n;
                while (k < n) {
                    const char *lt = memchr(h + k, '<', n - k);
                    if (!lt)
                        break;
                    k = (size_t)(lt - h);
                    if (n - k >= cl + 2 && strncasecmp(h + k, close, cl + 2) == 0) {
                        found = k;
                        break;
                    }
                    k++;
                }
                const char *gt = found < n ? memchr(h + found, '>', n - found) : NULL;
                i = gt ? (size_t)(gt - h) + 1 : n;
                continue;
            }
            if (mr_span_ieq(name, "br")) {
                mr_buf_putc(o.b, '\n');
                o.newlines = o.newlines < 2 ? o.newlines + 1 : 2;
                o.space = false;
            } else if (mr_span_ieq(name, "li") && !closing) {
                put_break(&o, 1);
                put_text(&o, "- ", 2);
                o.newlines = 0;
            } else if (mr_span_ieq(name, "td") || mr_span_ieq(name, "th")) {
                if (!closing)
                    o.space = true;
            } else if (tag_is(name, blocks)) {
                put_break(&o, mr_span_ieq(name, "p") ? 2 : 1);
            }
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            o.space = true;
            i++;
            continue;
        }
        if (c == '&') {
            uint32_t cp;
            size_t used = entity(h + i + 1, n - i - 1, &cp);
            if (used) {
                if (cp == 0xA0) {
                    put_text(&o, " ", 1);
                } else {
                    struct mr_buf t;
                    mr_buf_init(&t, 8);
                    mr_utf8_put(&t, cp);
                    put_text(&o, t.p, t.len);
                    mr_buf_release(&t);
                }
                i += used + 1;
                continue;
            }
        }
        size_t j = i;
        while (j < n && h[j] != '<' && h[j] != '&' && h[j] != ' ' &&
               h[j] != '\t' && h[j] != '\n' && h[j] != '\r' && h[j] != '\f')
            j++;
        if (j == i)
            j = i + 1;
        put_text(&o, h + i, j - i);
        i = j;
    }
    /* No trailing blank lines. */
    while (b->len > o.start && (b->p[b->len - 1] == '\n' || b->p[b->len - 1] == ' '))
        mr_buf_truncate(b, b->len - 1);
}
