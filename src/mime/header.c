/* SPDX-License-Identifier: Apache-2.0 */
/*
 * header.c - the header block of a message or MIME part (RFC 5322 2.2).
 *
 * Lines end at LF with an optional CR before it. A bare CR is NOT a line
 * end: it stays inside the value (and becomes a space when the value is
 * decoded), so "Subject: x\rBcc: y" can never smuggle a Bcc field in
 * (tests/data/mime and the hostile vector nul-bytes-and-bare-cr-lf).
 * Repairs, each with a warning:
 * - a line without a colon (or with an empty or non-printable name) is
 *   skipped when the next line is a field again; otherwise it is taken as
 *   the first body line of a message that forgot its blank line;
 * - a continuation line before any field is skipped;
 * - "Name : value" (space before the colon, obsolete syntax) is accepted;
 * - an mbox "From " line at the very top is skipped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../util/buf.h"
#include "../util/scan.h"
#include "../util/utf8.h"
#include "mime-private.h"

void mr__warn(struct mr_arena *a, struct mr__warnings *w, const char *fmt, ...)
{
    if (w->items == NULL)
        w->items = mr_arena_alloc(a, MR__MAX_WARNINGS * sizeof(char *));
    if (w->n >= MR__MAX_WARNINGS) {
        w->dropped++;
        return;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof(msg))
        len = sizeof(msg) - 1;
    /* Warnings quote sender text: keep them valid UTF-8. */
    struct mr_buf b;
    mr_buf_init(&b, sizeof(msg) * 2);
    mr_utf8_repair(&b, msg, (size_t)len, true);
    w->items[w->n++] = mr_arena_strndup(a, b.p ? b.p : "", b.len);
    mr_buf_release(&b);
}

/* A field name: printable US-ASCII except ':' (RFC 5322 2.2). */
static bool valid_name(mr_span n)
{
    if (n.n == 0)
        return false;
    for (size_t i = 0; i < n.n; i++) {
        unsigned char c = (unsigned char)n.p[i];
        if (c < 33 || c > 126 || c == ':')
            return false;
    }
    return true;
}

/* Splits a line into name and value; false when it is not a field. */
static bool split_field(mr_span line, mr_span *name, mr_span *value)
{
    const char *colon = memchr(line.p, ':', line.n);
    if (colon == NULL)
        return false;
    mr_span nm = mr_span_make(line.p, (size_t)(colon - line.p));
    /* Obsolete syntax allows whitespace before the colon (RFC 5322 4.5). */
    while (nm.n > 0 && (nm.p[nm.n - 1] == ' ' || nm.p[nm.n - 1] == '\t'))
        nm.n--;
    if (!valid_name(nm))
        return false;
    *name = nm;
    *value = mr_span_make(colon + 1, (size_t)(line.p + line.n - colon - 1));
    return true;
}

/* The line at buf[pos..): its content without CR LF, and the next offset. */
static mr_span line_at(const char *buf, size_t len, size_t pos, size_t *next)
{
    const char *lf = memchr(buf + pos, '\n', len - pos);
    size_t end = lf ? (size_t)(lf - buf) : len;
    *next = lf ? end + 1 : len;
    size_t n = end - pos;
    if (n > 0 && buf[pos + n - 1] == '\r')
        n--;
    return mr_span_make(buf + pos, n);
}

static bool is_field_line(mr_span line)
{
    mr_span a, b;
    return line.n > 0 && line.p[0] != ' ' && line.p[0] != '\t' &&
           split_field(line, &a, &b);
}

/* Whether the header goes on after a line that is not a field: the field
 * before it ends in ';' (a parameter list), or a field line comes within
 * the next three lines before any blank line. */
static bool header_goes_on(const char *buf, size_t len, size_t next,
                           const struct mr__field *cur)
{
    if (cur != NULL) {
        mr_span v = mr_span_trim(cur->value);
        if (v.n > 0 && v.p[v.n - 1] == ';')
            return true;
    }
    for (int k = 0; k < 3 && next < len; k++) {
        size_t after;
        mr_span l = line_at(buf, len, next, &after);
        if (l.n == 0)
            return false;
        if (is_field_line(l))
            return true;
        next = after;
    }
    return false;
}

size_t mr__header_read(struct mr_arena *a, const char *buf, size_t len,
                       size_t max_fields, mr__delim_fn is_delim,
                       void *delim_ctx, struct mr__header *out,
                       enum mr__header_end *end_r, struct mr__warnings *w)
{
    size_t cap = 16, skipped = 0, garbage = 0;
    out->fields = mr_arena_alloc(a, cap * sizeof(*out->fields));
    out->n = 0;
    struct mr__field *cur = NULL;
    size_t pos = 0;

    while (pos < len) {
        /* LF CR line ends: the CR opens no line of its own (hostile vector
         * nul-bytes-and-bare-cr-lf), but CR LF is still the blank line. */
        if (pos > 0 && buf[pos] == '\r' && buf[pos - 1] == '\n' &&
            pos + 1 < len && buf[pos + 1] != '\n')
            pos++;
        size_t next;
        mr_span line = line_at(buf, len, pos, &next);
        if (line.n == 0) {
            *end_r = MR__HDR_BLANK;
            pos = next;
            goto done_at_pos;
        }
        if (is_delim && line.n >= 2 && line.p[0] == '-' && line.p[1] == '-' &&
            is_delim(delim_ctx, line)) {
            *end_r = MR__HDR_DELIM;
            goto done_at_pos;
        }
        if (line.p[0] == ' ' || line.p[0] == '\t') {
            if (cur != NULL)
                cur->value.n = (size_t)(line.p + line.n - cur->value.p);
            else
                garbage++;
            pos = next;
            continue;
        }
        mr_span name, value;
        if (!split_field(line, &name, &value)) {
            if (pos == 0 && line.n >= 5 && memcmp(line.p, "From ", 5) == 0) {
                mr__warn(a, w, "header_garbage: mbox From_ line skipped");
                pos = next;
                continue;
            }
            if (header_goes_on(buf, len, next, cur)) {
                /* Mailers that forget to indent a continuation (Office 365
                 * NDRs put "boundary=..." on its own line; zammad mail068
                 * has bare Received continuations): the line belongs to
                 * the field before it. */
                if (cur != NULL)
                    cur->value.n = (size_t)(line.p + line.n - cur->value.p);
                garbage++;
                pos = next;
                continue;
            }
            *end_r = MR__HDR_NOBLANK;
            if (out->n > 0)
                mr__warn(a, w, "header_no_blank_line: body started without "
                               "the blank line after the header");
            goto done_at_pos;
        }
        if (out->n >= max_fields) {
            skipped++;
            cur = NULL;
            pos = next;
            continue;
        }
        if (out->n == cap) {
            out->fields = mr_arena_realloc(a, out->fields,
                                           cap * sizeof(*out->fields),
                                           2 * cap * sizeof(*out->fields));
            cap *= 2;
        }
        cur = &out->fields[out->n++];
        cur->name = name;
        cur->value = value;
        pos = next;
    }
    *end_r = MR__HDR_EOF;
    pos = len;
    goto done_at_pos;

done_at_pos:
    if (garbage)
        mr__warn(a, w, "header_garbage: %zu malformed header line(s) "
                       "joined to the field before or skipped", garbage);
    if (skipped)
        mr__warn(a, w, "header_limit: %zu header field(s) past the limit of "
                       "%zu ignored", skipped, max_fields);
    return pos;
}

const struct mr__field *mr__header_get(const struct mr__header *h,
                                       const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < h->n; i++)
        if (h->fields[i].name.n == n && mr_span_ieq(h->fields[i].name, name))
            return &h->fields[i];
    return NULL;
}

/* How many bytes at p[0..n) are not controls (below 0x20, or DEL),
 * sixteen bytes a step: folded Received and DKIM fields make unfolding
 * the bulk of the header JSON. Sets *high when one of them is 0x80 or
 * above (else the result need not be checked as UTF-8). */
static size_t printable_run(const char *p, size_t n, bool *high)
{
    size_t i = 0;
    while (i + 16 <= n) {
        mr_blk b = mr_blk_load(p + i);
        unsigned m = mr_blk_lt(b, 0x20) | mr_blk_eq(b, 0x7f);
        size_t k = m ? mr_blk_first(m) : 16;
        if (mr_blk_high(b) & ((1u << k) - 1))
            *high = true;
        if (m)
            return i + k;
        i += 16;
    }
    for (; i < n && (unsigned char)p[i] >= 0x20 && p[i] != 0x7f; i++)
        if ((unsigned char)p[i] >= 0x80)
            *high = true;
    return i;
}

void mr__header_unfold(mr_span v, size_t max, struct mr_buf *out)
{
    if (v.n > max)
        v.n = max;
    v = mr_span_trim(v);
    size_t start = out->len;
    size_t i = 0;
    bool high = false;
    while (i < v.n) {
        size_t j = i + printable_run(v.p + i, v.n - i, &high);
        mr_buf_append(out, v.p + i, j - i);
        if (j >= v.n)
            break;
        /* CR LF + WSP is folding: drop the line break, keep the WSP. Any
         * other control becomes a space so no value can hold a line. */
        char c = v.p[j];
        if (c == '\r' && j + 1 < v.n && v.p[j + 1] == '\n')
            j++;
        if (c == '\r' || c == '\n') {
            if (!(j + 1 < v.n && (v.p[j + 1] == ' ' || v.p[j + 1] == '\t')))
                mr_buf_putc(out, ' ');
        } else if (c == '\t') {
            mr_buf_putc(out, '\t');
        } else if (c != '\0') {
            mr_buf_putc(out, ' ');
        }
        i = j + 1;
    }
    /* Raw 8-bit that is not UTF-8 is repaired here; decoding by charset
     * detection is the job of mr_rfc2047_decode for values shown to
     * users. */
    if (high && !mr_utf8_valid(out->p + start, out->len - start)) {
        struct mr_buf tmp;
        mr_buf_init(&tmp, 0);
        mr_utf8_repair(&tmp, out->p + start, out->len - start, true);
        mr_buf_truncate(out, start);
        mr_buf_append(out, tmp.p, tmp.len);
        mr_buf_release(&tmp);
    }
}

/*
 * mr__header_unfold followed by mr_json_str, in one pass of the JSON
 * quoter (mr_json_str_unfolded): finding the runs between controls and
 * then quoting each run looked at every byte twice and cost a call per
 * folded line, 20% of the instructions of the no-attachment benchmark.
 * One difference: a NUL is dropped after the bytes around it are checked
 * as UTF-8, so it cannot join the halves of a character into one (a
 * memchr for NUL in every value, to keep the old way, was 0.7% of the
 * instructions; a NUL inside a character is garbage either way).
 */
void mr__header_unfold_json(mr_span value, size_t max, struct mr_json *j)
{
    mr_span v = value;
    if (v.n > max)
        v.n = max;
    mr_json_str_unfolded(j, mr_span_trim(v));
}
