/* SPDX-License-Identifier: Apache-2.0 */
#include "json.h"

#include <inttypes.h>
#include <stdio.h>

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

void mr_json_key(struct mr_json *j, const char *key)
{
    before_value(j);
    mr_json_quote(j->out, mr_span_cstr(key));
    mr_buf_append(j->out, j->pretty ? ": " : ":", j->pretty ? 2 : 1);
    j->after_key = true;
}

void mr_json_quote(struct mr_buf *out, mr_span s)
{
    static const char hex[] = "0123456789abcdef";
    mr_buf_putc(out, '"');
    size_t i = 0;
    while (i < s.n) {
        /* Copy the longest run that needs no escaping in one append. */
        size_t start = i;
        while (i < s.n) {
            unsigned char c = (unsigned char)s.p[i];
            if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
                break;
            i++;
        }
        mr_buf_append(out, s.p + start, i - start);
        if (i >= s.n)
            break;
        unsigned char c = (unsigned char)s.p[i];
        if (c >= 0x80) {
            size_t ok = mr_utf8_valid_prefix(s.p + i, s.n - i);
            if (ok == 0) {
                uint32_t cp;
                i += mr_utf8_next(s.p + i, s.n - i, &cp);
                mr_buf_append(out, "\xEF\xBF\xBD", 3);
                continue;
            }
            /* Copy the valid run up to the next byte that needs escaping. */
            size_t end = i;
            while (end < i + ok) {
                unsigned char d = (unsigned char)s.p[end];
                if (d < 0x20 || d == '"' || d == '\\')
                    break;
                end++;
            }
            mr_buf_append(out, s.p + i, end - i);
            i = end;
            continue;
        }
        switch (c) {
        case '"': mr_buf_append(out, "\\\"", 2); break;
        case '\\': mr_buf_append(out, "\\\\", 2); break;
        case '\n': mr_buf_append(out, "\\n", 2); break;
        case '\r': mr_buf_append(out, "\\r", 2); break;
        case '\t': mr_buf_append(out, "\\t", 2); break;
        case '\b': mr_buf_append(out, "\\b", 2); break;
        case '\f': mr_buf_append(out, "\\f", 2); break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            mr_buf_append(out, e, 6);
        }
        }
        i++;
    }
    mr_buf_putc(out, '"');
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

void mr_json_cstr(struct mr_json *j, const char *s)
{
    if (s == NULL)
        mr_json_null(j);
    else
        mr_json_str(j, mr_span_cstr(s));
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
