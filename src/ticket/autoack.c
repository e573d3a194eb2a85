/* SPDX-License-Identifier: Apache-2.0 */
/*
 * autoack.c - preparing an acknowledgement for the delivering
 * transaction (autoack.h).
 */
#include "ticket/autoack.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbound/ack_mail.h"
#include "util/buf.h"

static char *dup_or_null(const char *s)
{
    return s ? mr_xstrndup(s, strlen(s)) : NULL;
}

bool mr_autoack_key(const char *from, char *out, size_t cap)
{
    size_t n = from ? strlen(from) : 0;
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)from[i]);
    out[n] = '\0';
    return true;
}

/* The tenant's sender: its own outbound.from, the global one, or its
 * first exact inbox address. */
static const char *sender_of(const struct mr_config *cfg, const char *tenant)
{
    const struct mr_tenant *t = mr_config_tenant(cfg, tenant);
    if (t && t->outbound_from)
        return t->outbound_from;
    if (cfg->outbound.from)
        return cfg->outbound.from;
    for (size_t i = 0; t && i < t->ninboxes; i++)
        if (t->inboxes[i].kind == MR_INBOX_EXACT)
            return t->inboxes[i].address;
    return NULL;
}

static int render(const void *ctx, int64_t ticket_id, int64_t number,
                  struct mr_buf *out, char *msgid, size_t msgid_cap)
{
    const struct mr_autoack *a = ctx;
    struct mr_ack_mail m = {
        .from_name = a->from_name,
        .from_email = a->from_email,
        .subject_tpl = a->subject_tpl,
        .text_tpl = a->text_tpl,
        .in_reply_to = a->in_reply_to,
        .hostname = a->hostname,
        .date = (int64_t)time(NULL),
    };
    struct mr_ack_vars v = {
        .tenant = a->tenant,
        .subject = a->subject,
        .from_email = a->to,
        .from_name = a->sender_name,
        .ticket_id = ticket_id,
        .ticket_number = number,
    };
    return mr_ack_render(&m, &v, out, msgid, msgid_cap, NULL);
}

bool mr_autoack_prepare(struct mr_autoack *a, const struct mr_config *cfg,
                        const struct mr_rules_result *r,
                        const struct mr_message_rec *rec)
{
    memset(a, 0, sizeof *a);
    if (!r->ack_template || !cfg->outbound.smtp)
        return false;
    char to[320];
    if (!mr_autoack_key(rec->from_email, to, sizeof to) ||
        !mr_ack_address_ok(to))
        return false;
    const char *from = sender_of(cfg, rec->tenant);
    char *from_name = NULL, *from_email = NULL;
    if (!from || mr_ack_parse_from(from, &from_name, &from_email, NULL) < 0)
        return false;
    a->tenant = dup_or_null(rec->tenant);
    a->to = dup_or_null(to);
    a->from_name = from_name;
    a->from_email = from_email;
    a->subject_tpl = dup_or_null(r->ack_subject);
    a->text_tpl = dup_or_null(r->ack_text);
    /* A derived key is ours, not the sender's: nothing to reply to. */
    a->in_reply_to =
        rec->message_id_derived ? NULL : dup_or_null(rec->message_id);
    a->subject = dup_or_null(rec->subject);
    a->sender_name = dup_or_null(rec->from_name);
    a->hostname = dup_or_null(cfg->outbound.helo ? cfg->outbound.helo
                                                 : cfg->hostname);
    a->spec = (struct mr_ack_spec){
        .to = a->to,
        .mail_from = "", /* RFC 3834 3.3: the null sender */
        .window_ms = r->ack_window_ms > 0 ? r->ack_window_ms
                                          : MR_RULES_DEFAULT_ACK_WINDOW_MS,
        .render = render,
        .ctx = a,
    };
    return true;
}

void mr_autoack_clear(struct mr_autoack *a)
{
    free(a->tenant);
    free(a->to);
    free(a->from_name);
    free(a->from_email);
    free(a->subject_tpl);
    free(a->text_tpl);
    free(a->in_reply_to);
    free(a->subject);
    free(a->sender_name);
    free(a->hostname);
    memset(a, 0, sizeof *a);
}
