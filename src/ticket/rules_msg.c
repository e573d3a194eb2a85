/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_msg.c - the rules' view of a message, built from the event JSON
 * the worker holds (docs/event.md), and the result written as JSON.
 *
 * One builder for the worker and for `mailroom rules test`, so that the
 * command shows exactly what the server would decide. Strings are
 * borrowed from the jansson tree; only the arrays are allocated (in the
 * caller's arena).
 */
#include <string.h>

#include "content/classify.h"
#include "mime/mime.h"
#include "rules-private.h"

static const char *jstr(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* RFC 3339 ("2025-01-06T10:00:00Z", "...+01:00", fractions ignored) to
 * Unix ms; false when it is not one. */
static bool rfc3339_ms(const char *s, int64_t *out)
{
    if (s == NULL || strlen(s) < 20 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
        s[16] != ':')
        return false;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || se < 0 || se > 60)
        return false;
    const char *p = s + 19;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    int off = 0;
    if (*p == '+' || *p == '-') {
        int oh = digits(p + 1, 2), om = p[3] == ':' ? digits(p + 4, 2) : -1;
        if (oh < 0 || om < 0)
            return false;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z' && *p != 'z') {
        return false;
    }
    int64_t yy = y - (mo <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    *out = ((days * 86400 + h * 3600 + mi * 60 + se) - off) * 1000;
    return true;
}

/* Email addresses of an array of address objects, appended to *list. */
static size_t add_emails(struct mr_arena *a, const json_t *arr,
                         const char **list, size_t n, size_t cap)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *e = jstr(v, "email");
        if (e && n < cap)
            list[n++] = e;
    }
    (void)a;
    return n;
}

void mr_rules_msg_from_event(struct mr_rules_msg *m, const json_t *ev,
                             struct mr_arena *arena)
{
    memset(m, 0, sizeof *m);
    m->is_new = true;
    m->tenant = jstr(ev, "tenant");
    const json_t *to = json_object_get(ev, "to"), *cc = json_object_get(ev, "cc");
    size_t cap = json_array_size(to) + json_array_size(cc);
    const char **rc = mr_arena_alloc(arena, (cap ? cap : 1) * sizeof(*rc));
    size_t n = add_emails(arena, to, rc, 0, cap);
    m->recipients = rc;
    m->nrecipients = add_emails(arena, cc, rc, n, cap);

    const json_t *env = json_object_get(ev, "envelope");
    const json_t *rt = json_object_get(env, "rcpt_to");
    const char **rcpt = mr_arena_alloc(arena, (json_array_size(rt) + 1) *
                                                  sizeof(*rcpt));
    size_t i;
    json_t *v;
    json_array_foreach(rt, i, v) {
        if (json_is_string(v))
            rcpt[m->nrcpt_to++] = json_string_value(v);
    }
    m->rcpt_to = rcpt;
    m->mail_from = jstr(env, "mail_from");

    m->from = jstr(json_object_get(ev, "from"), "email");
    m->subject = jstr(ev, "subject");
    m->text = jstr(ev, "text");
    m->stripped_text = jstr(ev, "stripped_text");

    const json_t *hs = json_object_get(ev, "headers");
    size_t nh = 0;
    const char *key;
    json_object_foreach((json_t *)hs, key, v)
        nh += json_is_array(v) ? json_array_size(v) : 1;
    struct mr_rules_header *h = mr_arena_alloc(arena, (nh + 1) * sizeof(*h));
    json_object_foreach((json_t *)hs, key, v) {
        if (json_is_string(v)) {
            h[m->nheaders].name = key;
            h[m->nheaders++].value = json_string_value(v);
            continue;
        }
        size_t j;
        json_t *x;
        json_array_foreach(v, j, x) {
            if (json_is_string(x) && m->nheaders < nh) {
                h[m->nheaders].name = key;
                h[m->nheaders++].value = json_string_value(x);
            }
        }
    }
    m->headers = h;
    if (m->mail_from == NULL) {
        /* No envelope (a webhook event, `rules test`): Return-Path <> is
         * the null sender as the final MTA recorded it. */
        const char *rp = jstr(hs, "return-path");
        if (rp && strcmp(rp, "<>") == 0)
            m->mail_from = "";
    }

    const char *kind = jstr(json_object_get(ev, "auto"), "kind");
    m->auto_kind = MR_AUTO_NONE;
    if (kind && strcmp(kind, "autoreply") == 0)
        m->auto_kind = MR_AUTO_AUTOREPLY;
    else if (kind && strcmp(kind, "bounce") == 0)
        m->auto_kind = MR_AUTO_BOUNCE;
    else if (kind && strcmp(kind, "list") == 0)
        m->auto_kind = MR_AUTO_LIST;

    const json_t *atts = json_object_get(ev, "attachments");
    struct mr_rules_attachment *at =
        mr_arena_alloc(arena, (json_array_size(atts) + 1) * sizeof(*at));
    json_array_foreach(atts, i, v) {
        struct mr_rules_attachment *a = &at[m->nattachments++];
        a->content_type = jstr(v, "content_type");
        a->filename = jstr(v, "filename");
        json_t *sz = json_object_get(v, "size");
        a->size = json_is_integer(sz) && json_integer_value(sz) > 0
                      ? (uint64_t)json_integer_value(sz)
                      : 0;
    }
    m->attachments = at;

    int64_t ms;
    if (rfc3339_ms(jstr(ev, "received_at"), &ms))
        m->received_at = ms;
}

int mr_rules_event_from_raw(const char *buf, size_t len, json_t **out,
                            struct mr_error *err)
{
    *out = NULL;
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_arena *arena = mr_arena_new();
    struct mr_mime_options opt;
    mr_mime_options_default(&opt, cs);
    struct mr_event *ev = NULL;
    int rc = mr_mime_parse(buf, len, &opt, arena, &ev, err);
    if (rc == 0) {
        struct mr_buf b;
        mr_buf_init(&b, 0);
        struct mr_json j;
        mr_json_init(&j, &b, false);
        mr_event_write_json(ev, NULL, &j);
        json_error_t jerr;
        *out = json_loadb(b.p ? b.p : "", b.len, 0, &jerr);
        mr_buf_release(&b);
        if (*out == NULL) {
            rc = mr_error_set(err, MR_EINVAL, "event JSON did not load: %s",
                              jerr.text);
        } else {
            struct mr_classification c;
            if (mr_classify_event(*out, NULL, &c, NULL) == 0)
                json_object_set_new(*out, "auto", mr_classify_to_json(&c));
        }
    }
    mr_arena_free(&arena);
    mr_charset_ctx_free(&cs);
    return rc;
}

/* ---- output --------------------------------------------------------- */

void mr_rules_trail_write_json(const struct mr_rules_result *r,
                               struct mr_json *j)
{
    mr_json_arr_begin(j);
    for (size_t i = 0; i < r->ndecisions; i++) {
        mr_json_obj_begin(j);
        mr_json_key(j, "name");
        mr_json_cstr(j, r->decisions[i].rule);
        mr_json_key(j, "decision");
        mr_json_cstr(j, r->decisions[i].decision);
        mr_json_obj_end(j);
    }
    mr_json_arr_end(j);
}

static void str_array(struct mr_json *j, const char *key,
                      const char *const *v, size_t n)
{
    mr_json_key(j, key);
    mr_json_arr_begin(j);
    for (size_t i = 0; i < n; i++)
        mr_json_cstr(j, v[i]);
    mr_json_arr_end(j);
}

void mr_rules_result_write_json(const struct mr_rules_result *r,
                                struct mr_json *j)
{
    mr_json_obj_begin(j);
    mr_json_key(j, "tenant");
    mr_json_cstr(j, r->tenant);
    mr_json_key(j, "applied_rules");
    mr_rules_trail_write_json(r, j);
    str_array(j, "matched", r->matched, r->nmatched);
    mr_json_key(j, "queue");
    mr_json_cstr(j, r->queue);
    mr_json_key(j, "priority");
    mr_json_cstr(j, r->priority);
    mr_json_key(j, "assignee");
    mr_json_cstr(j, r->assignee);
    str_array(j, "tags_add", r->tags_add, r->ntags_add);
    str_array(j, "tags_remove", r->tags_remove, r->ntags_remove);
    mr_json_key(j, "fields");
    mr_json_obj_begin(j);
    for (size_t i = 0; i < r->nfields; i++) {
        mr_json_key(j, r->fields[i].name);
        mr_json_cstr(j, r->fields[i].value);
    }
    mr_json_obj_end(j);
    mr_json_key(j, "ignore");
    mr_json_bool(j, r->ignore);
    mr_json_key(j, "auto_acknowledge");
    if (r->ack_template) {
        mr_json_obj_begin(j);
        mr_json_key(j, "template");
        mr_json_cstr(j, r->ack_template);
        mr_json_key(j, "text");
        mr_json_cstr(j, r->ack_text);
        mr_json_obj_end(j);
    } else {
        mr_json_null(j);
    }
    str_array(j, "notify", r->notify, r->nnotify);
    mr_json_obj_end(j);
}
