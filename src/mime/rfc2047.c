/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rfc2047.c - header value decoding: unfold, neutralize controls, decode
 * encoded words, convert raw 8-bit.
 *
 * Three passes, each linear:
 * 1. normalize: unfold (RFC 5322 2.2.3: only the line break goes) and turn
 *    every other C0 control and DEL into a space, tab included, so the
 *    later passes only ever see ' ' as whitespace;
 * 2. if the result is not valid UTF-8, convert all of it by detection
 *    (one guess over the whole value is better than one per fragment;
 *    encoded words are ASCII and survive any ASCII-compatible charset);
 * 3. tokenize into spaces, quoted strings, encoded words and other text.
 *    Decoded word bytes wait in a pending buffer while the next word has
 *    the same charset (RFC 2047 6.2 lets whitespace between words go), so
 *    a character split across two words is converted whole.
 *
 * Looking for the "?=" that ends a word could rescan the same bytes for
 * every "=?" in a hostile value; the next "?=" and the next space are
 * remembered instead, so each byte is looked at a bounded number of times
 * however long the words are.
 */
#include "rfc2047.h"

#include <stdint.h>
#include <string.h>

#include "../util/utf8.h"
#include "cte.h"

#define CHARSET_MAX 64

/* First position >= from of a pattern, remembered: valid for any query
 * t with from <= t <= at, since nothing matches in [from, at). */
struct next {
    size_t from, at;
    bool valid;
};

struct dec {
    struct mr_charset_ctx *cs;
    struct mr_buf *out;
    unsigned flags;
    struct mr_buf pend;    /* decoded bytes of adjacent same-charset words */
    char pcs[CHARSET_MAX]; /* their charset (without *language) */
    size_t pcs_n;
    bool have;         /* pend holds words not yet converted */
    mr_span ws;        /* spaces seen after the pending words */
    struct mr_buf wb;  /* one word's decoded bytes */
    struct mr_buf tmp; /* conversion output */
    struct next term, space;
};

/* Appends UTF-8 text with C0 controls, DEL and C1 controls as spaces:
 * a decoded value must never carry a line break into a header. */
static void put_text(struct dec *d, const char *p, size_t n)
{
    if (n == 0)
        return; /* p may be NULL then (an empty span) */
    size_t i = 0, run = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        size_t bad = 0;
        if (c < 0x20 || c == 0x7F)
            bad = 1;
        else if (c == 0xC2 && i + 1 < n && (unsigned char)p[i + 1] >= 0x80 &&
                 (unsigned char)p[i + 1] <= 0x9F)
            bad = 2;
        if (bad == 0) {
            i++;
            continue;
        }
        mr_buf_append(d->out, p + run, i - run);
        mr_buf_putc(d->out, ' ');
        if (c != '\t')
            d->flags |= MR_RFC2047_CONTROL;
        i += bad;
        run = i;
    }
    mr_buf_append(d->out, p + run, n - run);
}

static void flush(struct dec *d)
{
    if (!d->have)
        return;
    mr_buf_reset(&d->tmp);
    unsigned f =
        mr_charset_to_utf8(d->cs, mr_span_make(d->pcs, d->pcs_n),
                           d->pend.p ? d->pend.p : "", d->pend.len, &d->tmp);
    if (f & (MR_CHARSET_UNKNOWN | MR_CHARSET_DETECTED))
        d->flags |= MR_RFC2047_CHARSET;
    if (f & MR_CHARSET_INVALID)
        d->flags |= MR_RFC2047_INVALID;
    if (f & MR_CHARSET_NUL)
        d->flags |= MR_RFC2047_CONTROL;
    put_text(d, d->tmp.p ? d->tmp.p : "", d->tmp.len);
    mr_buf_reset(&d->pend);
    d->have = false;
    d->ws = MR_SPAN_NULL;
}

/* Ordinary text: ends a run of words; the spaces before it are kept. */
static void raw(struct dec *d, const char *p, size_t n)
{
    if (d->have) {
        mr_span ws = d->ws;
        flush(d);
        put_text(d, ws.p, ws.n);
    }
    put_text(d, p, n);
}

static size_t find_next(const char *s, size_t m, struct next *nx, size_t t,
                        bool term)
{
    if (nx->valid && nx->from <= t && t <= nx->at)
        return nx->at;
    size_t k = t;
    if (term) {
        for (;;) {
            const char *q = memchr(s + k, '?', m - k);
            if (q == NULL || (size_t)(q - s) + 1 >= m) {
                k = m;
                break;
            }
            k = (size_t)(q - s);
            if (s[k + 1] == '=')
                break;
            k++;
        }
    } else {
        const char *q = memchr(s + k, ' ', m - k);
        k = q ? (size_t)(q - s) : m;
    }
    nx->from = t;
    nx->at = k;
    nx->valid = true;
    return k;
}

/* RFC 2047 token characters (no especials), plus '.' and ':' that real
 * charset names such as "ISO_8859-1:1987" contain. */
static bool charset_char(unsigned char c)
{
    if (c <= ' ' || c >= 0x7F)
        return false;
    return strchr("()<>@,;\"/[]?=", c) == NULL;
}

struct word {
    mr_span charset; /* without the RFC 2231 "*language" */
    char enc;        /* 'b' or 'q' */
    mr_span text;
    size_t end; /* just past "?=" */
};

/* Parses an encoded word at s[i] ("=?" there). Returns 1 on success, 0
 * when it is no word at all, -1 when it looked like one but is broken. */
static int parse_word(struct dec *d, const char *s, size_t m, size_t i,
                      struct word *w)
{
    size_t k = i + 2, c0 = k;
    while (k < m && k - c0 < CHARSET_MAX && charset_char((unsigned char)s[k]))
        k++;
    if (k == c0 || k >= m || s[k] != '?')
        return 0;
    mr_span cs = mr_span_make(s + c0, k - c0);
    size_t star = mr_span_find(cs, 0, '*');
    cs.n = star;
    if (cs.n == 0)
        return -1;
    if (k + 2 >= m || s[k + 2] != '?')
        return -1;
    char enc = (char)mr_lower((unsigned char)s[k + 1]);
    if (enc != 'b' && enc != 'q')
        return -1;
    size_t t = k + 3;
    size_t e = find_next(s, m, &d->term, t, true);
    size_t sp = find_next(s, m, &d->space, t, false);
    if (e >= m || sp < e)
        return -1; /* unterminated, or a space inside */
    w->charset = cs;
    w->enc = enc;
    w->text = mr_span_make(s + t, e - t);
    w->end = e + 2;
    return 1;
}

/* Decodes the word's bytes into d->wb; false when they are not valid. */
static bool word_bytes(struct dec *d, const struct word *w)
{
    mr_buf_reset(&d->wb);
    size_t cap = w->enc == 'b' ? mr_base64_max(w->text.n) : w->text.n;
    char *o = mr_buf_reserve(&d->wb, cap + 1);
    if (o == NULL)
        return false;
    unsigned f = 0;
    size_t len;
    if (w->enc == 'b') {
        /* Padding is optional in practice and some mailers add too much
         * ("GyRCO3ZMMzZJGyhC==", zammad mail098): trailing '=' carry no
         * data, so they are dropped before decoding. */
        size_t tn = w->text.n;
        while (tn > 0 && w->text.p[tn - 1] == '=')
            tn--;
        len = mr_base64_decode(w->text.p, tn, o, &f);
        if (f & MR_CTE_BAD_CHAR)
            return false;
    } else {
        /* A bad escape in Q keeps its '=', as mail clients show it. */
        len = mr_qp_decode(w->text.p, w->text.n, o, true, &f);
    }
    mr_buf_commit(&d->wb, len);
    return true;
}

static void take_word(struct dec *d, const struct word *w)
{
    bool same = d->have && d->pcs_n == w->charset.n;
    for (size_t k = 0; same && k < w->charset.n; k++)
        same = mr_lower((unsigned char)d->pcs[k]) ==
               mr_lower((unsigned char)w->charset.p[k]);
    if (!same) {
        /* RFC 2047 6.2: the whitespace between two words is dropped
         * even when their charsets differ. */
        flush(d);
        memcpy(d->pcs, w->charset.p, w->charset.n);
        d->pcs_n = w->charset.n;
        d->have = true;
    }
    mr_buf_append(&d->pend, d->wb.p ? d->wb.p : "", d->wb.len);
    d->ws = MR_SPAN_NULL;
}

/* Pass 1: unfolding and controls. */
static void normalize(const char *p, size_t n, struct mr_buf *norm,
                      unsigned *flags)
{
    size_t last = n; /* last byte that is not whitespace, or n */
    for (size_t k = n; k > 0; k--)
        if (!mr_is_wsp((unsigned char)p[k - 1])) {
            last = k - 1;
            break;
        }
    char *o = mr_buf_reserve(norm, n);
    if (o == NULL)
        return;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r' || c == '\n') {
            size_t j = i + 1;
            if (c == '\r' && j < n && p[j] == '\n')
                j++;
            i = j;
            if (j < n && (p[j] == ' ' || p[j] == '\t'))
                continue; /* a fold */
            if (last == n || j > last)
                continue; /* the value's own line end */
            o[w++] = ' ';
            *flags |= MR_RFC2047_CONTROL;
            continue;
        }
        if (c < 0x20 || c == 0x7F) {
            o[w++] = ' ';
            if (c != '\t')
                *flags |= MR_RFC2047_CONTROL;
        } else {
            o[w++] = (char)c;
        }
        i++;
    }
    mr_buf_commit(norm, w);
}

/* Removes the spaces at both ends of out[start..). */
static void trim_appended(struct mr_buf *out, size_t start)
{
    size_t end = out->len;
    while (end > start && out->p[end - 1] == ' ')
        end--;
    mr_buf_truncate(out, end);
    size_t lead = start;
    while (lead < out->len && out->p[lead] == ' ')
        lead++;
    if (lead > start) {
        memmove(out->p + start, out->p + lead, out->len - lead);
        mr_buf_truncate(out, out->len - (lead - start));
    }
}

/* A value that none of the passes would change: no control bytes (so
 * nothing to unfold), valid UTF-8, no encoded word. */
static bool plain_value(mr_span v)
{
    for (size_t i = 0; i < v.n; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c < 0x20 || c == 0x7F)
            return false;
    }
    return mr_utf8_valid(v.p, v.n) &&
           (v.n < 2 || memmem(v.p, v.n, "=?", 2) == NULL);
}

unsigned mr_rfc2047_decode(struct mr_charset_ctx *cs, mr_span raw_value,
                           unsigned opts, struct mr_buf *out)
{
    struct dec d = {.cs = cs, .out = out};
    size_t start = out->len;
    /* Most display names and many subjects are plain text: the passes
     * below would copy them through up to five buffers, each allocated. */
    if (plain_value(raw_value)) {
        put_text(&d, raw_value.p, raw_value.n);
        trim_appended(out, start);
        return d.flags;
    }
    struct mr_buf norm, conv;
    size_t limit = raw_value.n * 3 + 64;
    mr_buf_init(&norm, raw_value.n + 1);
    mr_buf_init(&conv, limit);
    mr_buf_init(&d.pend, limit);
    mr_buf_init(&d.wb, raw_value.n + 8);
    mr_buf_init(&d.tmp, limit);

    normalize(raw_value.p, raw_value.n, &norm, &d.flags);
    const char *s = norm.p ? norm.p : "";
    size_t m = norm.len;
    if (!mr_utf8_valid(s, m)) {
        unsigned f = mr_charset_to_utf8(cs, MR_SPAN_NULL, s, m, &conv);
        d.flags |= MR_RFC2047_RAW8BIT;
        if (f & MR_CHARSET_INVALID)
            d.flags |= MR_RFC2047_INVALID;
        s = conv.p ? conv.p : "";
        m = conv.len;
    }

    bool quotes = !(opts & MR_RFC2047_IN_QUOTES);
    size_t i = 0;
    while (i < m && !out->limited) {
        char c = s[i];
        if (c == ' ') {
            size_t j = i;
            while (j < m && s[j] == ' ')
                j++;
            if (d.have)
                d.ws = mr_span_make(s + i, j - i);
            else
                put_text(&d, s + i, j - i);
            i = j;
            continue;
        }
        if (c == '"' && quotes) {
            /* A quoted string is text: words inside stay as they are
             * (RFC 2047 5 (3)). */
            size_t j = i + 1;
            while (j < m && s[j] != '"')
                j += (s[j] == '\\' && j + 1 < m) ? 2 : 1;
            if (j < m)
                j++;
            raw(&d, s + i, j - i);
            i = j;
            continue;
        }
        if (c == '=' && i + 1 < m && s[i + 1] == '?') {
            struct word w;
            int r = parse_word(&d, s, m, i, &w);
            if (r > 0 && word_bytes(&d, &w)) {
                take_word(&d, &w);
                i = w.end;
                continue;
            }
            if (r != 0)
                d.flags |= MR_RFC2047_BAD_WORD;
            raw(&d, s + i, 1);
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < m && s[j] != ' ' && !(quotes && s[j] == '"') &&
               !(s[j] == '=' && j + 1 < m && s[j + 1] == '?'))
            j++;
        raw(&d, s + i, j - i);
        i = j;
    }
    flush(&d);
    trim_appended(out, start);

    mr_buf_release(&norm);
    mr_buf_release(&conv);
    mr_buf_release(&d.pend);
    mr_buf_release(&d.wb);
    mr_buf_release(&d.tmp);
    return d.flags;
}
