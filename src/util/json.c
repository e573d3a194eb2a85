/* SPDX-License-Identifier: Apache-2.0 */
#include "json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "scan.h"
#include "utf8.h"

void mr_json_init(struct mr_json *j, struct mr_buf *out, bool pretty)
{
    j->out = out;
    j->depth = 0;
    j->pretty = pretty;
    j->need_comma[0] = false;
    j->after_key = false;
}

static void newline(struct mr_json *j)
{
    if (!j->pretty)
        return;
    mr_buf_putc(j->out, '\n');
    for (int i = 0; i < j->depth; i++)
        mr_buf_append(j->out, "  ", 2);
}

/* Comma and indentation before a value or key. */
static void before_value(struct mr_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0) {
        if (j->need_comma[j->depth])
            mr_buf_putc(j->out, ',');
        newline(j);
    }
    j->need_comma[j->depth] = true;
}

static void open(struct mr_json *j, char c)
{
    before_value(j);
    mr_buf_putc(j->out, c);
    if (j->depth + 1 < MR_JSON_MAX_DEPTH) {
        j->depth++;
        j->need_comma[j->depth] = false;
    }
}

static void close(struct mr_json *j, char c)
{
    bool had = j->need_comma[j->depth];
    if (j->depth > 0)
        j->depth--;
    if (had)
        newline(j);
    mr_buf_putc(j->out, c);
}

void mr_json_obj_begin(struct mr_json *j) { open(j, '{'); }
void mr_json_obj_end(struct mr_json *j) { close(j, '}'); }
void mr_json_arr_begin(struct mr_json *j) { open(j, '['); }
void mr_json_arr_end(struct mr_json *j) { close(j, ']'); }

void mr_json_key_span(struct mr_json *j, mr_span key)
{
    before_value(j);
    mr_json_quote(j->out, key);
    mr_buf_append(j->out, j->pretty ? ": " : ":", j->pretty ? 2 : 1);
    j->after_key = true;
}

/* Bytes that a JSON string cannot hold as they are (controls, '"', '\\')
 * or that must be checked as UTF-8 (0x80 and up). */
static inline unsigned needs_look(mr_blk b)
{
    return mr_blk_lt_or_high(b, 0x20) | mr_blk_eq(b, '"') | mr_blk_eq(b, '\\');
}

/*
 * A header field's control character at p[*i] (any but TAB) in unfold mode:
 * CR LF or a lone CR or LF followed by WSP is folding, dropped (the WSP
 * stays); a line break that is not folding and every other control becomes
 * one space, so no value can hold a line; NUL is dropped.
 */
static inline void unfold_control(const char *p, size_t n, size_t *i, char **d)
{
    size_t k = *i;
    char c = p[k];
    if (c == '\r' && k + 1 < n && p[k + 1] == '\n')
        k++;
    if (c == '\r' || c == '\n') {
        if (!(k + 1 < n && (p[k + 1] == ' ' || p[k + 1] == '\t')))
            *(*d)++ = ' ';
    } else if (c != '\0') {
        *(*d)++ = ' ';
    }
    *i = k + 1;
}

/* Input bytes quoted per reservation: the room reserved is six times that
 * (every byte could become \u00XX), so it stays small. */
#define PIECE 4096

/*
 * Writes p[0..n) escaped (without the quotes) straight into out, which has
 * room for it (the caller checked the cap). Sixteen bytes at a time are copied
 * and then looked at; only the bytes before the first one that needs a look
 * count, and that one is then escaped, or checked as UTF-8 with the characters
 * after it. Before, runs were found a byte at a time and each non-ASCII
 * byte validated the whole rest of the string (quadratic in lines of
 * non-ASCII text): writing the events of the messages without
 * attachments took 33 ms of a 94 ms run, now 7 ms.
 */
enum quote_mode {
    QUOTE_CHECK,  /* anything: invalid UTF-8 becomes U+FFFD */
    QUOTE_UNFOLD, /* a header value: also unfolded, see unfold_control */
    QUOTE_VALID,  /* known valid UTF-8: bytes from 0x80 up pass unlooked */
};

/* The bytes of b that quote_into must stop at in mode. */
static inline unsigned look_mask(mr_blk b, enum quote_mode mode)
{
    if (mode == QUOTE_VALID)
        return mr_blk_lt(b, 0x20) | mr_blk_eq(b, '"') | mr_blk_eq(b, '\\');
    unsigned m = needs_look(b);
    if (mode == QUOTE_UNFOLD)
        m |= mr_blk_eq(b, 0x7f);
    return m;
}

static inline void quote_into(struct mr_buf *out, const char *p, size_t n,
                              enum quote_mode mode)
{
    static const char hex[] = "0123456789abcdef";
    /* The controls with a one-letter escape (RFC 8259 7). */
    static const char short_escape[0x20] = {
        ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
    };
    size_t i = 0;
    while (i < n) {
        /* Characters may run up to 3 bytes past the piece: room for 8. */
        size_t end = n - i > PIECE ? i + PIECE : n;
        char *d0 = mr_buf_reserve(out, 6 * (end - i + 8)), *d = d0;
        while (i < end) {
            if (n - i >= 16) {
                mr_blk b = mr_blk_load(p + i);
                mr_blk_store(d, b);
                unsigned m = look_mask(b, mode);
                if (m == 0) {
                    i += 16;
                    d += 16;
                    continue;
                }
                size_t k = mr_blk_first(m);
                i += k;
                d += k;
            } else {
                /* The tail, through a padded copy: no byte at a time. */
                char t[16];
                memset(t, 'a', sizeof(t));
                mr_copy_short(t, p + i, n - i);
                mr_blk b = mr_blk_load(t);
                mr_blk_store(d, b);
                unsigned m = look_mask(b, mode) & ((1u << (n - i)) - 1);
                size_t k = m ? mr_blk_first(m) : n - i;
                i += k;
                d += k;
                if (m == 0)
                    break;
            }
            unsigned char c = (unsigned char)p[i];
            if (c >= 0x80) {
                size_t l = mr_utf8_char_len(p + i, n - i);
                if (l == 0) {
                    uint32_t cp;
                    memcpy(d, "\xEF\xBF\xBD", 3);
                    d += 3;
                    i += mr_utf8_next(p + i, n - i, &cp);
                    continue;
                }
                /* Characters one by one while they are not ASCII (within
                 * the piece), so text in Cyrillic or CJK does not pay for
                 * a block test per letter; an invalid one is left for the
                 * next turn. */
                do {
                    for (size_t q = 0; q < l; q++)
                        d[q] = p[i + q];
                    d += l;
                    i += l;
                } while (i < end && (unsigned char)p[i] >= 0x80 &&
                         (l = mr_utf8_char_len(p + i, n - i)) > 0);
                continue;
            }
            if (mode == QUOTE_UNFOLD && c != '"' && c != '\\' && c != '\t') {
                unfold_control(p, n, &i, &d);
                continue;
            }
            *d++ = '\\';
            if (c == '"' || c == '\\') {
                *d++ = (char)c;
            } else if (short_escape[c] != 0) {
                *d++ = short_escape[c];
            } else {
                memcpy(d, "u00", 3);
                d[3] = hex[c >> 4];
                d[4] = hex[c & 15];
                d += 5;
            }
            i++;
        }
        mr_buf_commit(out, (size_t)(d - d0));
    }
}

/* Bytes that go into a JSON string as they are: printable ASCII but '"'
 * and '\\'. */
#define PLAIN(c) ((c) >= 0x20 && (c) < 0x80 && (c) != '"' && (c) != '\\')
#define PLAIN4(c) PLAIN(c), PLAIN((c) + 1), PLAIN((c) + 2), PLAIN((c) + 3)
#define PLAIN16(c) PLAIN4(c), PLAIN4((c) + 4), PLAIN4((c) + 8), PLAIN4((c) + 12)
#define PLAIN64(c)                                                             \
    PLAIN16(c), PLAIN16((c) + 16), PLAIN16((c) + 32), PLAIN16((c) + 48)
static const bool plain_byte[256] = {PLAIN64(0), PLAIN64(64), PLAIN64(128),
                                     PLAIN64(192)};

/* Whether p[0..n), n < 32, goes into a JSON string as it is. */
static inline bool plain_ascii(const char *p, size_t n)
{
    if (n >= 16)
        return needs_look(mr_blk_load(p)) == 0 &&
               needs_look(mr_blk_load(p + n - 16)) == 0;
    for (size_t i = 0; i < n; i++)
        if (!plain_byte[(unsigned char)p[i]])
            return false;
    return true;
}

/* quote_into, under out's cap: what does not fit is cut, as appending it
 * piece by piece would cut it. */
static void quote_capped(struct mr_buf *out, const char *p, size_t n,
                         enum quote_mode mode)
{
    size_t room = out->max - out->len;
    if (out->limited || n > room / 6 || room - 6 * n < 64) {
        struct mr_buf tmp;
        mr_buf_init(&tmp, 0);
        quote_into(&tmp, p, n, mode);
        mr_buf_append(out, tmp.p, tmp.len);
        mr_buf_release(&tmp);
        return;
    }
    quote_into(out, p, n, mode);
}

void mr_json_quote(struct mr_buf *out, mr_span s)
{
    /* Keys and most short values (addresses, dates, types) need no
     * escape: one copy, without the block machinery of quote_into. */
    if (s.n < 32 && !out->limited && out->max - out->len >= s.n + 2 &&
        plain_ascii(s.p, s.n)) {
        char *d = mr_buf_reserve(out, s.n + 2);
        d[0] = '"';
        if (s.n)
            memcpy(d + 1, s.p, s.n);
        d[s.n + 1] = '"';
        mr_buf_commit(out, s.n + 2);
        return;
    }
    mr_buf_putc(out, '"');
    quote_capped(out, s.p, s.n, QUOTE_CHECK);
    mr_buf_putc(out, '"');
}

void mr_json_str_begin(struct mr_json *j)
{
    before_value(j);
    mr_buf_putc(j->out, '"');
}

void mr_json_str_piece(struct mr_json *j, mr_span s)
{
    struct mr_buf *out = j->out;
    if (s.n < 32 && !out->limited && out->max - out->len >= s.n &&
        plain_ascii(s.p, s.n)) {
        mr_buf_append(out, s.p, s.n);
        return;
    }
    quote_capped(out, s.p, s.n, QUOTE_CHECK);
}

void mr_json_str_valid(struct mr_json *j, mr_span s)
{
    if (s.p == NULL) {
        mr_json_null(j);
        return;
    }
    before_value(j);
    mr_buf_putc(j->out, '"');
    quote_capped(j->out, s.p, s.n, QUOTE_VALID);
    mr_buf_putc(j->out, '"');
}

void mr_json_str_unfolded(struct mr_json *j, mr_span s)
{
    before_value(j);
    mr_buf_putc(j->out, '"');
    quote_capped(j->out, s.p, s.n, QUOTE_UNFOLD);
    mr_buf_putc(j->out, '"');
}

void mr_json_str_end(struct mr_json *j)
{
    mr_buf_putc(j->out, '"');
}

void mr_json_str(struct mr_json *j, mr_span s)
{
    if (s.p == NULL) {
        mr_json_null(j);
        return;
    }
    before_value(j);
    mr_json_quote(j->out, s);
}

void mr_json_int(struct mr_json *j, int64_t v)
{
    before_value(j);
    mr_buf_printf(j->out, "%" PRId64, v);
}

void mr_json_uint(struct mr_json *j, uint64_t v)
{
    before_value(j);
    mr_buf_printf(j->out, "%" PRIu64, v);
}

void mr_json_bool(struct mr_json *j, bool v)
{
    before_value(j);
    mr_buf_puts(j->out, v ? "true" : "false");
}

void mr_json_null(struct mr_json *j)
{
    before_value(j);
    mr_buf_puts(j->out, "null");
}

void mr_json_raw(struct mr_json *j, mr_span text)
{
    if (text.p == NULL || text.n == 0) {
        mr_json_null(j);
        return;
    }
    before_value(j);
    mr_buf_append(j->out, text.p, text.n);
}
