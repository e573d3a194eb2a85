/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sanitize_css.c - CSS in style attributes and <style> elements, by
 * allowlist. See sanitize-private.h.
 *
 * Not a CSS parser: a conservative reader that keeps what it understands
 * and drops the rest, declaration by declaration. What it understands is
 * what mail clients write: plain declarations of presentational
 * properties, Outlook's mso-* properties (browsers ignore them; they are
 * kept so the markup survives a round trip), rgb()/hsl()/calc(), and
 * url() only for what the cid resolver returned (or remote images when
 * the caller allows them).
 *
 * Escapes are not decoded but refused: a backslash anywhere in a
 * declaration drops it, so "expr\65ssion(" or "\75rl(" never hides a
 * forbidden function. Comments are refused in declarations and stripped
 * between rules in sheets. Every function must be on the list, which is
 * how expression(), image-set(), element() and friends go; behavior,
 * -moz-binding, position:fixed/absolute, z-index, transforms and negative
 * margins (all ways to lay a message over the agent UI) are not on it.
 *
 * Output is canonical (one space after ':' and between tokens, "; "
 * between declarations) so that sanitizing it again gives the same bytes.
 * Every loop moves forward over its input: time is linear.
 */
#include <stdbool.h>
#include <string.h>

#include "../util/span.h"
#include "sanitize-private.h"

/* Longest property name and value considered; longer ones are dropped. */
#define MAX_NAME 64
#define MAX_VALUE 4096
/* Rules of one sheet; the rest are dropped (bounds the output). */
#define MAX_RULES 10000

static const char *const props[] = {
    "background",
    "background-color",
    "background-image",
    "background-position",
    "background-repeat",
    "background-size",
    "border",
    "border-bottom",
    "border-bottom-color",
    "border-bottom-style",
    "border-bottom-width",
    "border-collapse",
    "border-color",
    "border-left",
    "border-left-color",
    "border-left-style",
    "border-left-width",
    "border-radius",
    "border-right",
    "border-right-color",
    "border-right-style",
    "border-right-width",
    "border-spacing",
    "border-style",
    "border-top",
    "border-top-color",
    "border-top-style",
    "border-top-width",
    "border-width",
    "border-top-left-radius",
    "border-top-right-radius",
    "border-bottom-left-radius",
    "border-bottom-right-radius",
    "caption-side",
    "clear",
    "color",
    "direction",
    "display",
    "empty-cells",
    "float",
    "font",
    "font-family",
    "font-feature-settings",
    "font-size",
    "font-stretch",
    "font-style",
    "font-variant",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "list-style",
    "list-style-position",
    "list-style-type",
    "margin",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "margin-top",
    "max-height",
    "max-width",
    "min-height",
    "min-width",
    "opacity",
    "outline",
    "outline-color",
    "outline-style",
    "outline-width",
    "overflow",
    "overflow-wrap",
    "overflow-x",
    "overflow-y",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
    "page-break-after",
    "page-break-before",
    "position",
    "table-layout",
    "text-align",
    "text-decoration",
    "text-decoration-color",
    "text-decoration-line",
    "text-decoration-style",
    "text-indent",
    "text-overflow",
    "text-transform",
    "text-underline-position",
    "unicode-bidi",
    "vertical-align",
    "visibility",
    "white-space",
    "width",
    "word-break",
    "word-spacing",
    "word-wrap",
    "tab-size",
    "-webkit-text-size-adjust",
    "-ms-text-size-adjust",
    "text-size-adjust",
    "box-sizing",
    "border-image",
    "list-style-image",
    "orphans",
    "widows",
    "line-break",
    "-webkit-nbsp-mode",
    "-webkit-line-break",
    "-webkit-border-horizontal-spacing",
    "-webkit-border-vertical-spacing",
    "-webkit-text-decorations-in-effect",
    "-webkit-text-stroke-width",
};

static const char *const funcs[] = {"rgb",  "rgba", "hsl",
                                    "hsla", "calc", "url"};

static bool in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool is_ident(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Characters never allowed in a declaration value or a selector, even in a
 * string: they could end the style element or attribute, open a block,
 * or start an escape. */
static bool is_forbidden(unsigned char c)
{
    return c == '\\' || c == '<' || c == '>' || c == '{' || c == '}' ||
           c == '@' || c == '`' || c == ';' || (c < 0x20 && !is_space(c)) ||
           c == 0x7f;
}

/* Characters of a URL we write inside url("..."): '@' of content ids
 * yes; nothing that ends the string, the function or the element. */
static bool url_char(unsigned char c)
{
    return c == '@' || !(is_forbidden(c) || is_space(c) || c == '"' ||
                         c == '\'' || c == '(' || c == ')');
}

/* The url( argument at p[0..n) (after the parenthesis). On success returns
 * bytes consumed up to and including ')' and appends url("...") to out. */
static size_t css_url(struct mr_san *s, const char *p, size_t n,
                      struct mr_buf *out)
{
    size_t i = 0;
    while (i < n && is_space((unsigned char)p[i]))
        i++;
    size_t a, b;
    if (i < n && (p[i] == '"' || p[i] == '\'')) {
        char q = p[i++];
        a = i;
        while (i < n && p[i] != q)
            i++;
        if (i >= n)
            return 0;
        b = i++;
    } else {
        a = i;
        while (i < n && p[i] != ')' && !is_space((unsigned char)p[i]) &&
               p[i] != '"' && p[i] != '\'' && p[i] != '(')
            i++;
        b = i;
    }
    while (i < n && is_space((unsigned char)p[i]))
        i++;
    if (i >= n || p[i] != ')')
        return 0;
    i++;
    for (size_t k = a; k < b; k++)
        if (!url_char((unsigned char)p[k]))
            return 0;
    enum mr_san_url kind = mr_san_url(s, p + a, b - a);
    if (kind != MR_URL_LOCAL && !(kind == MR_URL_WEB && s->opt->remote_images))
        return 0;
    const struct mr_buf *u = &s->url;
    for (size_t k = 0; k < u->len; k++) {
        if (!url_char((unsigned char)u->p[k]))
            return 0;
    }
    mr_buf_puts(out, "url(\"");
    mr_buf_append(out, u->p, u->len);
    mr_buf_puts(out, "\")");
    return i;
}

/* Writes the canonical form of the value p[0..n) to out, or returns false
 * when the declaration must go. */
static bool css_value(struct mr_san *s, const char *p, size_t n,
                      struct mr_buf *out)
{
    int depth = 0;
    bool space = false;
    size_t i = 0;
    if (n > MAX_VALUE)
        return false;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (is_space(c)) {
            space = true;
            i++;
            continue;
        }
        if (is_forbidden(c))
            return false;
        if ((c == '/' && i + 1 < n && p[i + 1] == '*') ||
            (c == '*' && i + 1 < n && p[i + 1] == '/'))
            return false;
        if (space && out->len > 0 && c != ')' && c != ',')
            mr_buf_putc(out, ' ');
        space = false;
        if (c == '"' || c == '\'') {
            size_t j = i + 1;
            while (j < n && (unsigned char)p[j] != c) {
                unsigned char d = (unsigned char)p[j];
                if (is_forbidden(d) || d == '\n' || d == '\r' || d == '\f')
                    return false;
                j++;
            }
            if (j >= n)
                return false;
            mr_buf_append(out, p + i, j + 1 - i);
            i = j + 1;
            continue;
        }
        if (is_ident(c)) {
            size_t j = i;
            while (j < n && is_ident((unsigned char)p[j]))
                j++;
            if (j < n && p[j] == '(') {
                char name[16];
                size_t len = j - i;
                if (len >= sizeof name)
                    return false;
                for (size_t k = 0; k < len; k++)
                    name[k] = (char)mr_lower((unsigned char)p[i + k]);
                name[len] = '\0';
                if (!in_list(funcs, sizeof funcs / sizeof funcs[0], name))
                    return false;
                if (strcmp(name, "url") == 0) {
                    size_t used = css_url(s, p + j + 1, n - j - 1, out);
                    if (used == 0)
                        return false;
                    i = j + 1 + used;
                    continue;
                }
                mr_buf_append(out, name, len);
                mr_buf_putc(out, '(');
                depth++;
                i = j + 1;
                continue;
            }
            mr_buf_append(out, p + i, j - i);
            i = j;
            continue;
        }
        if (c == '(') /* a bare parenthesis: not in any value we keep */
            return false;
        if (c == ')') {
            if (depth == 0)
                return false;
            depth--;
        }
        mr_buf_putc(out, (char)c);
        i++;
    }
    return depth == 0 && out->len > 0;
}

static bool value_is(const struct mr_buf *v, const char *lit)
{
    return mr_span_ieq(mr_buf_span(v), lit);
}

/* Property-specific rules on the canonical value v. */
static bool value_allowed(const char *name, const struct mr_buf *v)
{
    if (strcmp(name, "position") == 0)
        return value_is(v, "static") || value_is(v, "relative");
    if (strncmp(name, "margin", 6) == 0) {
        /* Negative margins pull a message over what surrounds it. */
        for (size_t k = 0; k + 1 < v->len; k++)
            if (v->p[k] == '-' && ((v->p[k + 1] >= '0' && v->p[k + 1] <= '9') ||
                                   v->p[k + 1] == '.'))
                return false;
    }
    return true;
}

/* One declaration p[0..n) (no ';' at depth 0). Appends it to out in
 * canonical form, preceded by "; " when kept > 0. */
static bool css_decl(struct mr_san *s, const char *p, size_t n, size_t kept,
                     struct mr_buf *out)
{
    const char *colon = memchr(p, ':', n);
    if (colon == NULL)
        return false;
    mr_span name = mr_span_trim(mr_span_make(p, (size_t)(colon - p)));
    mr_span val =
        mr_span_trim(mr_span_make(colon + 1, n - (size_t)(colon + 1 - p)));
    if (name.n == 0 || name.n >= MAX_NAME || val.n == 0)
        return false;
    char lname[MAX_NAME];
    for (size_t k = 0; k < name.n; k++) {
        unsigned char c = mr_lower((unsigned char)name.p[k]);
        if (!((c >= 'a' && c <= 'z') || c == '-'))
            return false;
        lname[k] = (char)c;
    }
    lname[name.n] = '\0';
    bool mso = strncmp(lname, "mso-", 4) == 0;
    if (!mso && !in_list(props, sizeof props / sizeof props[0], lname))
        return false;
    struct mr_buf v;
    mr_buf_init(&v, MAX_VALUE * 2);
    bool ok = css_value(s, val.p, val.n, &v) && !v.limited &&
              value_allowed(lname, &v);
    if (ok) {
        if (kept)
            mr_buf_puts(out, "; ");
        mr_buf_puts(out, lname);
        mr_buf_puts(out, ": ");
        mr_buf_append(out, v.p, v.len);
    }
    mr_buf_release(&v);
    return ok;
}

size_t mr_san_css_decls(struct mr_san *s, const char *p, size_t n,
                        struct mr_buf *out)
{
    size_t kept = 0, i = 0;
    while (i < n) {
        size_t start = i;
        char quote = 0;
        int depth = 0;
        while (i < n) {
            char c = p[i];
            if (quote) {
                if (c == quote)
                    quote = 0;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == '(') {
                depth++;
            } else if (c == ')') {
                depth--;
            } else if (c == ';' && depth <= 0) {
                break;
            }
            i++;
        }
        if (css_decl(s, p + start, i - start, kept, out))
            kept++;
        i++; /* the ';' */
    }
    return kept;
}

/* ------------------------------------------------------------------ */
/* Sheets                                                               */

/* Index just past the '}' matching the '{' at p[i], or n when unclosed. */
static size_t block_end(const char *p, size_t n, size_t i)
{
    int depth = 0;
    char quote = 0;
    for (; i < n; i++) {
        char c = p[i];
        if (quote) {
            if (c == quote || c == '\n')
                quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '{') {
            depth++;
        } else if (c == '}') {
            if (--depth == 0)
                return i + 1;
        }
    }
    return n;
}

static bool selector_char(unsigned char c)
{
    if (c >= 0x80 || is_ident(c))
        return true;
    return strchr(" .#*>+~:()[]=^$|\"',", c) != NULL && c != '\0';
}

/* Appends one selector (trimmed, whitespace collapsed) scoped under
 * MR_SAN_SCOPE. html, body and :root stand for the message itself; a
 * selector that starts at the scope and goes to a sibling (+, ~) is put
 * under the scope once more so it cannot leave it. The form written is
 * one this function maps to itself. */
static void scope_selector(const char *p, size_t n, struct mr_buf *out)
{
    struct mr_buf sel;
    mr_buf_init(&sel, 0);
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        if (is_space((unsigned char)p[i])) {
            space = true;
            continue;
        }
        if (space && sel.len)
            mr_buf_putc(&sel, ' ');
        space = false;
        mr_buf_putc(&sel, p[i]);
    }
    size_t c0 = 0;
    int depth = 0;
    while (c0 < sel.len) {
        char c = sel.p[c0];
        if (c == '(' || c == '[')
            depth++;
        else if (c == ')' || c == ']')
            depth--;
        else if (depth == 0 && (c == ' ' || c == '>' || c == '+' || c == '~'))
            break;
        c0++;
    }
    mr_span first = mr_span_make(sel.p, c0);
    bool root = mr_span_ieq(first, "html") || mr_span_ieq(first, "body") ||
                mr_span_ieq(first, ":root") ||
                (first.n == strlen(MR_SAN_SCOPE) &&
                 memcmp(first.p, MR_SAN_SCOPE, first.n) == 0);
    size_t r = c0;
    while (r < sel.len && sel.p[r] == ' ')
        r++;
    bool sibling = r < sel.len && (sel.p[r] == '+' || sel.p[r] == '~');
    mr_buf_puts(out, MR_SAN_SCOPE);
    if (root && !sibling) {
        mr_buf_append(out, sel.p + c0, sel.len - c0);
    } else {
        mr_buf_putc(out, ' ');
        mr_buf_append(out, sel.p, sel.len);
    }
    mr_buf_release(&sel);
}

/* Appends the scoped selector list p[0..n), or returns false when any
 * selector in it has a character outside the allowed set. */
static bool css_selectors(const char *p, size_t n, struct mr_buf *out)
{
    for (size_t i = 0; i < n; i++)
        if (!selector_char((unsigned char)p[i]) &&
            !is_space((unsigned char)p[i]))
            return false;
    size_t start = 0, i = 0, kept = 0;
    int depth = 0;
    char quote = 0;
    for (;; i++) {
        char c = i < n ? p[i] : ',';
        if (quote) {
            if (c == quote)
                quote = 0;
            if (i < n)
                continue;
            return false;
        }
        if (c == '"' || c == '\'')
            quote = c;
        else if (c == '(' || c == '[')
            depth++;
        else if (c == ')' || c == ']')
            depth--;
        else if (c == ',' && depth <= 0) {
            mr_span one = mr_span_trim(mr_span_make(p + start, i - start));
            if (one.n == 0)
                return false;
            if (kept++)
                mr_buf_puts(out, ", ");
            scope_selector(one.p, one.n, out);
            start = i + 1;
        }
        if (i >= n)
            break;
    }
    return depth == 0 && kept > 0;
}

/* Style rules in p[0..n); @media blocks only when media is set (one level,
 * no nesting). Returns the number of rules written. */
static size_t css_rules(struct mr_san *s, const char *p, size_t n, bool media,
                        struct mr_buf *out)
{
    size_t i = 0, rules = 0;
    struct mr_buf tmp;
    mr_buf_init(&tmp, 0);
    while (i < n && rules < MAX_RULES) {
        unsigned char c = (unsigned char)p[i];
        if (is_space(c) || c == '}' || c == ';') {
            i++;
            continue;
        }
        /* A sheet wrapped in an HTML comment, as mail often has it: CSS
         * ignores these two tokens at the top level. */
        if (n - i >= 4 && memcmp(p + i, "<!--", 4) == 0) {
            i += 4;
            continue;
        }
        if (n - i >= 3 && memcmp(p + i, "-->", 3) == 0) {
            i += 3;
            continue;
        }
        size_t brace = i;
        while (brace < n && p[brace] != '{' && !(c == '@' && p[brace] == ';'))
            brace++;
        if (brace >= n)
            break;
        if (p[brace] == ';') { /* @import, @charset, @namespace: dropped */
            i = brace + 1;
            continue;
        }
        size_t end = block_end(p, n, brace);
        mr_span prelude = mr_span_trim(mr_span_make(p + i, brace - i));
        const char *body = p + brace + 1;
        size_t body_n = end - brace - 1;
        if (end <= n && end > brace + 1 && p[end - 1] == '}')
            body_n--;
        mr_buf_reset(&tmp);
        if (c == '@') {
            bool ok = media && prelude.n > 6 &&
                      mr_span_ieq(mr_span_make(prelude.p, 6), "@media") &&
                      is_space((unsigned char)prelude.p[6]);
            mr_span q =
                ok ? mr_span_trim(mr_span_make(prelude.p + 6, prelude.n - 6))
                   : MR_SPAN_NULL;
            for (size_t k = 0; ok && k < q.n; k++) {
                unsigned char d = (unsigned char)q.p[k];
                ok = is_ident(d) || is_space(d) || strchr("():,.", d);
            }
            if (ok && q.n > 0) {
                mr_buf_puts(&tmp, "@media ");
                bool space = false;
                for (size_t k = 0; k < q.n; k++) {
                    if (is_space((unsigned char)q.p[k])) {
                        space = true;
                        continue;
                    }
                    if (space)
                        mr_buf_putc(&tmp, ' ');
                    space = false;
                    mr_buf_putc(&tmp, q.p[k]);
                }
                mr_buf_puts(&tmp, " {\n");
                size_t inner = css_rules(s, body, body_n, false, &tmp);
                if (inner) {
                    mr_buf_puts(&tmp, "}\n");
                    mr_buf_append(out, tmp.p, tmp.len);
                    rules += inner;
                }
            }
        } else if (css_selectors(prelude.p, prelude.n, &tmp)) {
            mr_buf_puts(&tmp, " { ");
            if (mr_san_css_decls(s, body, body_n, &tmp)) {
                mr_buf_puts(&tmp, " }\n");
                mr_buf_append(out, tmp.p, tmp.len);
                rules++;
            }
        }
        i = end;
    }
    mr_buf_release(&tmp);
    return rules;
}

size_t mr_san_css_sheet(struct mr_san *s, const char *p, size_t n,
                        struct mr_buf *out)
{
    /* Comments out first (outside strings); an unclosed one ends the
     * sheet, as it does in CSS. */
    struct mr_buf clean;
    mr_buf_init(&clean, 0);
    mr_buf_expect(&clean, n);
    char quote = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (quote) {
            if (c == quote || c == '\n')
                quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '/' && i + 1 < n && p[i + 1] == '*') {
            const char *e = memmem(p + i + 2, n - i - 2, "*/", 2);
            if (e == NULL)
                break;
            i = (size_t)(e - p) + 1;
            mr_buf_putc(&clean, ' ');
            continue;
        }
        mr_buf_putc(&clean, c);
    }
    size_t rules = css_rules(s, clean.p ? clean.p : "", clean.len, true, out);
    mr_buf_release(&clean);
    return rules;
}
