/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slack.c - a Slack-compatible incoming webhook (docs/integrations.md):
 * POST {"text": summary, "blocks": [...]} to the configured URL.
 *
 * Slack reads `text` and mrkdwn blocks as markup where '&', '<' and '>'
 * are control characters (links and mentions are written <...>), so every
 * text that came from mail is escaped as Slack documents (&amp; &lt;
 * &gt;): a subject such as "<!channel>" shows as typed and pings no one.
 * Mattermost and Rocket.Chat read the same `text`.
 */
#include "outbound/integrations.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/json.h"

void mr_slack_escape(const char *s, size_t n, struct mr_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': mr_buf_puts(out, "&amp;"); break;
        case '<': mr_buf_puts(out, "&lt;"); break;
        case '>': mr_buf_puts(out, "&gt;"); break;
        default: mr_buf_putc(out, s[i]);
        }
    }
}

/* A link Slack can carry in <url|label>: no space, control, '<', '>' or
 * '|' (those would end it early). */
static bool link_ok(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7F || *p == '<' || *p == '>' || *p == '|')
            return false;
    return true;
}

/* Appends raw, escaped for Slack. */
static void put_escaped(struct mr_buf *out, const struct mr_buf *raw)
{
    if (raw->len)
        mr_slack_escape(raw->p, raw->len, out);
}

/* A "section" block of mrkdwn text, or (context) a "context" block whose
 * one element is that text. */
static void mrkdwn_block(struct mr_json *j, bool context,
                         const struct mr_buf *text)
{
    mr_json_obj_begin(j);
    mr_json_key(j, "type");
    mr_json_cstr(j, context ? "context" : "section");
    mr_json_key(j, context ? "elements" : "text");
    if (context)
        mr_json_arr_begin(j);
    mr_json_obj_begin(j);
    mr_json_key(j, "type");
    mr_json_cstr(j, "mrkdwn");
    mr_json_key(j, "text");
    mr_json_str(j, mr_buf_span(text));
    mr_json_obj_end(j);
    if (context)
        mr_json_arr_end(j);
    mr_json_obj_end(j);
}

int mr_slack_build(const struct mr_integration *x,
                   const struct mr_notification *n, const char *link,
                   struct mr_notify_http *out, struct mr_error *err)
{
    if (x->kind != MR_INTEGRATION_SLACK || x->url == NULL)
        return mr_error_set(err, MR_EINVAL, "not a slack integration");
    struct mr_buf subject, from, excerpt, t;
    mr_buf_init(&subject, 0);
    mr_buf_init(&from, 0);
    mr_buf_init(&excerpt, 0);
    mr_buf_init(&t, 0);
    mr_notify_line(n->subject, MR_NOTIFY_TITLE_MAX, &subject);
    if (subject.len == 0)
        mr_buf_puts(&subject, "(no subject)");
    mr_notify_from(n, &from);
    mr_notify_excerpt(n->text, MR_NOTIFY_EXCERPT_MAX, &excerpt);

    struct mr_json j;
    mr_json_init(&j, &out->body, false);
    mr_json_obj_begin(&j);
    /* The notification's fallback text. */
    mr_json_key(&j, "text");
    mr_buf_printf(&t, "Ticket #%lld: ", (long long)n->ticket_number);
    put_escaped(&t, &subject);
    mr_buf_puts(&t, " (from ");
    put_escaped(&t, &from);
    mr_buf_puts(&t, ")");
    mr_json_str(&j, mr_buf_span(&t));
    mr_json_key(&j, "blocks");
    mr_json_arr_begin(&j);

    mr_buf_reset(&t);
    if (link_ok(link))
        mr_buf_printf(&t, "*<%s|Ticket #%lld>* ", link,
                      (long long)n->ticket_number);
    else
        mr_buf_printf(&t, "*Ticket #%lld* ", (long long)n->ticket_number);
    put_escaped(&t, &subject);
    mrkdwn_block(&j, false, &t);

    mr_buf_reset(&t);
    mr_buf_puts(&t, "From: ");
    put_escaped(&t, &from);
    if (n->queue) {
        mr_buf_puts(&t, " \xC2\xB7 Queue: ");
        struct mr_buf q;
        mr_buf_init(&q, 0);
        mr_notify_line(n->queue, 100, &q);
        put_escaped(&t, &q);
        mr_buf_release(&q);
    }
    if (n->priority)
        mr_buf_printf(&t, " \xC2\xB7 Priority: %s", n->priority);
    mrkdwn_block(&j, true, &t);

    if (excerpt.len) {
        mr_buf_reset(&t);
        put_escaped(&t, &excerpt);
        mrkdwn_block(&j, false, &t);
    }
    mr_json_arr_end(&j);
    mr_json_obj_end(&j);

    out->url = mr_xstrndup(x->url, strlen(x->url));
    mr_notify_http_header(out, "Content-Type", "", "application/json");
    mr_buf_release(&subject);
    mr_buf_release(&from);
    mr_buf_release(&excerpt);
    mr_buf_release(&t);
    return 0;
}
