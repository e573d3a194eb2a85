/* SPDX-License-Identifier: Apache-2.0 */
/*
 * integrations.c - what every integration's payload shares (see
 * integrations.h): the excerpt of a message, one-line texts, the ticket's
 * link and the sender's name.
 */
#include "outbound/integrations.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/utf8.h"

void mr_notify_http_init(struct mr_notify_http *h)
{
    memset(h, 0, sizeof *h);
    mr_buf_init(&h->body, 0);
}

void mr_notify_http_release(struct mr_notify_http *h)
{
    free(h->url);
    for (size_t i = 0; i < h->nheaders; i++)
        free(h->headers[i]);
    mr_buf_release(&h->body);
    memset(h, 0, sizeof *h);
}

void mr_notify_http_header(struct mr_notify_http *h, const char *name,
                           const char *prefix, const char *value)
{
    if (h->nheaders >= MR_NOTIFY_HEADERS_MAX)
        return;
    struct mr_buf b;
    mr_buf_init(&b, 0);
    mr_buf_printf(&b, "%s: %s%s", name, prefix, value);
    h->headers[h->nheaders++] = mr_buf_detach(&b, NULL);
}

/* Characters that must not reach a chat message or an issue: C0 and C1
 * controls (line breaks become spaces), and the bidirectional overrides
 * that make text read differently from what it is (Trojan Source). */
static bool is_space_like(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x85 || cp == ' ';
}

static bool is_dropped(uint32_t cp)
{
    return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
           cp == 0x200E || cp == 0x200F || cp == 0xFEFF;
}

void mr_notify_excerpt(const char *text, size_t max, struct mr_buf *out)
{
    if (text == NULL)
        return;
    size_t n = strlen(text), i = 0, chars = 0;
    bool space = false, any = false;
    while (i < n) {
        uint32_t cp;
        size_t l = mr_utf8_next(text + i, n - i, &cp);
        i += l;
        if (is_dropped(cp))
            continue;
        if (is_space_like(cp)) {
            space = any;
            continue;
        }
        if (chars + (space ? 1 : 0) >= max) {
            mr_buf_puts(out, "\xE2\x80\xA6"); /* … */
            return;
        }
        if (space) {
            mr_buf_putc(out, ' ');
            chars++;
            space = false;
        }
        mr_utf8_put(out, cp);
        chars++;
        any = true;
    }
}

void mr_notify_line(const char *text, size_t max, struct mr_buf *out)
{
    mr_notify_excerpt(text, max, out);
}

void mr_notify_ticket_link(const char *tmpl, int64_t id, int64_t number,
                           struct mr_buf *out)
{
    if (tmpl == NULL)
        return;
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "{id}", 4) == 0) {
            mr_buf_printf(out, "%lld", (long long)id);
            p += 4;
        } else if (strncmp(p, "{number}", 8) == 0) {
            mr_buf_printf(out, "%lld", (long long)number);
            p += 8;
        } else {
            mr_buf_putc(out, *p++);
        }
    }
}

void mr_notify_from(const struct mr_notification *n, struct mr_buf *out)
{
    struct mr_buf name;
    mr_buf_init(&name, 0);
    mr_notify_line(n->from_name, 100, &name);
    const char *email = n->from_email && n->from_email[0] ? n->from_email
                                                           : n->requester;
    if (name.len && email)
        mr_buf_printf(out, "%s <", name.p);
    if (email)
        mr_notify_line(email, 320, out);
    else if (name.len)
        mr_buf_append(out, name.p, name.len);
    else
        mr_buf_puts(out, "unknown sender");
    if (name.len && email)
        mr_buf_putc(out, '>');
    mr_buf_release(&name);
}

void mr_notify_mail_block(const struct mr_notification *n, struct mr_buf *out)
{
    mr_buf_puts(out, "From: ");
    mr_notify_from(n, out);
    mr_buf_puts(out, "\nSubject: ");
    mr_notify_line(n->subject, MR_NOTIFY_TITLE_MAX, out);
    /* Written as in mail headers, so a search of the mailbox finds it. */
    mr_buf_puts(out, "\nMessage-ID: <");
    mr_notify_line(n->message_id, 1000, out);
    mr_buf_putc(out, '>');
    struct mr_buf ex;
    mr_buf_init(&ex, 0);
    mr_notify_excerpt(n->text, MR_NOTIFY_EXCERPT_MAX, &ex);
    if (ex.len) {
        mr_buf_puts(out, "\n\n");
        mr_buf_append(out, ex.p, ex.len);
    }
    mr_buf_release(&ex);
}

void mr_notify_title(const struct mr_notification *n, struct mr_buf *out)
{
    mr_buf_printf(out, "[#%lld] ", (long long)n->ticket_number);
    size_t before = out->len;
    mr_notify_line(n->subject, MR_NOTIFY_TITLE_MAX, out);
    if (out->len == before)
        mr_buf_puts(out, "(no subject)");
}

void mr_notify_queue_priority(const struct mr_notification *n,
                              struct mr_buf *out)
{
    if (n->queue == NULL && n->priority == NULL)
        return;
    mr_buf_puts(out, " (");
    if (n->queue) {
        mr_buf_puts(out, "queue: ");
        mr_notify_line(n->queue, 100, out);
    }
    if (n->priority)
        mr_buf_printf(out, "%spriority: %s", n->queue ? ", " : "",
                      n->priority);
    mr_buf_puts(out, ")");
}

void mr_notify_json_labels(struct mr_json *j, const struct mr_integration *x)
{
    if (x->nlabels == 0)
        return;
    mr_json_key(j, "labels");
    mr_json_arr_begin(j);
    for (size_t i = 0; i < x->nlabels; i++)
        mr_json_cstr(j, x->labels[i]);
    mr_json_arr_end(j);
}
