/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ticket_json.c - tickets and messages as the read API shows them, the
 * listing filters and the reply address (ticket_json.h).
 *
 * Columns the store has come from the view (threaded_by, the auto
 * classification, attachments with their scan state); what only the
 * parser saw (To, Cc, Date, the intake envelope, the stripped and
 * sanitized bodies) comes from the normalized event stored with the
 * message. Where both exist the column wins: it is what threading and
 * the attachment pipeline decided, the event is what the parser read.
 */
#include "http/ticket_json.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "http/http-private.h"
#include "ticket/thread.h"

/* Stored JSON is our own output and shallow (applied rules are the
 * deepest: [{rule, actions: [{...}]}]); this only bounds the copy if one
 * is not. */
#define COPY_DEPTH 6
/* RFC 5321 4.5.3.1.1: a sender's MTA may refuse a longer local part. */
#define LOCAL_MAX 64

static const char *const statuses[] = {"new", "open", "pending", "solved",
                                       "closed"};
static const char *const priorities[] = {"low", "normal", "high", "urgent"};

static bool one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

bool mr_http_ticket_status_valid(const char *s)
{
    return one_of(s, statuses, sizeof statuses / sizeof statuses[0]);
}

bool mr_http_ticket_priority_valid(const char *s)
{
    return one_of(s, priorities, sizeof priorities / sizeof priorities[0]);
}

/* NULL for "any": absent or empty (a form that leaves a field blank). */
static const char *given(const char *v)
{
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int mr_http_ticket_filter(const char *status, const char *queue,
                          const char *priority, const char *requester,
                          struct mr_ticket_filter *f,
                          char req_buf[MR_HTTP_FILTER_MAX + 1],
                          struct mr_error *err)
{
    memset(f, 0, sizeof *f);
    req_buf[0] = '\0';
    status = given(status);
    queue = given(queue);
    priority = given(priority);
    requester = given(requester);
    if (status && !mr_http_ticket_status_valid(status))
        return mr_error_set(err, MR_EINVAL,
                            "status must be one of new, open, pending, "
                            "solved, closed");
    if (priority && !mr_http_ticket_priority_valid(priority))
        return mr_error_set(err, MR_EINVAL,
                            "priority must be one of low, normal, high, "
                            "urgent");
    if (queue && strnlen(queue, MR_HTTP_FILTER_MAX + 1) > MR_HTTP_FILTER_MAX)
        return mr_error_set(err, MR_EINVAL, "queue is longer than %d bytes",
                            MR_HTTP_FILTER_MAX);
    if (requester) {
        size_t n = strnlen(requester, MR_HTTP_FILTER_MAX + 1);
        if (n > MR_HTTP_FILTER_MAX)
            return mr_error_set(err, MR_EINVAL,
                                "requester is longer than %d bytes",
                                MR_HTTP_FILTER_MAX);
        /* Requesters are stored lower-cased; ASCII only, as addresses are
         * compared everywhere else (UTF-8 bytes pass unchanged). */
        for (size_t i = 0; i < n; i++)
            req_buf[i] = (char)mr_lower((unsigned char)requester[i]);
        req_buf[n] = '\0';
        f->requester = req_buf;
    }
    f->status = status;
    f->queue = queue;
    f->priority = priority;
    return 0;
}

/* ---- reply address ------------------------------------------------------ */

static const struct mr_inbox *inbox_named(const struct mr_tenant *tn,
                                          const char *name)
{
    for (size_t i = 0; i < tn->ninboxes; i++)
        if (tn->inboxes[i].name && strcmp(tn->inboxes[i].name, name) == 0)
            return &tn->inboxes[i];
    return NULL;
}

int mr_http_reply_address(const struct mr_config *cfg, struct mr_store *st,
                          const struct mr_ticket_view *t,
                          char out[MR_HTTP_REPLY_ADDRESS_LEN + 1],
                          struct mr_error *err)
{
    out[0] = '\0';
    const struct mr_tenant *tn = cfg ? mr_config_tenant(cfg, t->tenant) : NULL;
    if (tn == NULL || t->number <= 0)
        return 0;
    /* The inbox of the first message that came through one: a ticket
     * opened by a provider webhook may be answered by mail later. */
    const struct mr_inbox *ib = NULL;
    for (size_t i = 0; i < t->nmessages && ib == NULL; i++)
        if (t->messages[i].inbox != NULL)
            ib = inbox_named(tn, t->messages[i].inbox);
    /* A pattern inbox would lose its tag (help+sales@ would become
     * help+t12.x@), a catch-all has no address of its own, and an address
     * with a '+' of its own (support+eu@) is matched only whole: routing
     * splits at the first '+'. */
    if (ib == NULL || ib->kind != MR_INBOX_EXACT || ib->local == NULL ||
        ib->domain == NULL || strchr(ib->local, '+') != NULL)
        return 0;

    unsigned char secret[MR_STORE_SECRET_LEN];
    int rc = mr_store_thread_secret(st, secret, err);
    if (rc == MR_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    struct mr_thread_config tc = {
        .secret = secret,
        .secret_len = sizeof secret,
        .subject_window_ms = 0, /* tokens do not depend on it */
    };
    char token[128];
    token[0] = '\0';
    mr_thread_token(&tc, t->tenant, t->number, token, sizeof token);
    explicit_bzero(secret, sizeof secret);

    char addr[MR_HTTP_REPLY_ADDRESS_LEN + 1];
    int n =
        snprintf(addr, sizeof addr, "%s+%s@%s", ib->local, token, ib->domain);
    if (token[0] == '\0' || n < 0 || (size_t)n >= sizeof addr ||
        strlen(ib->local) + 1 + strlen(token) > LOCAL_MAX)
        return 0;
    /* Give out only what comes back here by token: a token with bytes a
     * tag may not hold, or longer than a tag may be, would route elsewhere
     * or without its tag. */
    struct mr_route r;
    if (mr_config_route(cfg, addr, &r, NULL) != 0 || r.tenant != tn ||
        r.inbox != ib || strcmp(r.tag, token) != 0)
        return 0;
    memcpy(out, addr, (size_t)n + 1);
    return 0;
}

/* ---- JSON --------------------------------------------------------------- */

static void put_time(struct mr_json *j, const char *key, int64_t ms)
{
    mr_json_key(j, key);
    if (ms <= 0) {
        mr_json_null(j);
        return;
    }
    char t[MR__HTTP_TIME_LEN];
    mr__http_time(ms, t);
    mr_json_cstr(j, t);
}

/* Writes a jansson value with our writer (strings may hold NUL; numbers
 * that are not integers do not occur in what we copy and become null). */
static void put_value(struct mr_json *j, const json_t *v, int depth)
{
    if (v == NULL || depth > COPY_DEPTH) {
        mr_json_null(j);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        mr_json_obj_begin(j);
        json_object_foreach((json_t *)v, k, x)
        {
            mr_json_key(j, k);
            put_value(j, x, depth + 1);
        }
        mr_json_obj_end(j);
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        mr_json_arr_begin(j);
        json_array_foreach(v, i, x) put_value(j, x, depth + 1);
        mr_json_arr_end(j);
        break;
    }
    case JSON_STRING:
        mr_json_str(j,
                    mr_span_make(json_string_value(v), json_string_length(v)));
        break;
    case JSON_INTEGER: mr_json_int(j, (int64_t)json_integer_value(v)); break;
    case JSON_TRUE: mr_json_bool(j, true); break;
    case JSON_FALSE: mr_json_bool(j, false); break;
    default: mr_json_null(j); break;
    }
}

static void put_array_or_empty(struct mr_json *j, const char *key,
                               const json_t *v)
{
    mr_json_key(j, key);
    if (json_is_array(v)) {
        put_value(j, v, 1);
    } else {
        mr_json_arr_begin(j);
        mr_json_arr_end(j);
    }
}

/* A stored JSON array text, or [] when it is missing or not an array. */
static void put_stored_array(struct mr_json *j, const char *key,
                             const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    put_array_or_empty(j, key, v);
    json_decref(v);
}

/* A stored JSON object text, or {} when it is missing or not an object. */
static void put_stored_object(struct mr_json *j, const char *key,
                              const char *text)
{
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    mr_json_key(j, key);
    if (json_is_object(v)) {
        put_value(j, v, 1);
    } else {
        mr_json_obj_begin(j);
        mr_json_obj_end(j);
    }
    json_decref(v);
}

/* A member of the event: a string, or null for anything else. */
static void put_event_string(struct mr_json *j, const char *key,
                             const json_t *ev)
{
    json_t *v = json_object_get(ev, key);
    mr_json_key(j, key);
    if (json_is_string(v))
        put_value(j, v, 1);
    else
        mr_json_null(j);
}

static void put_summary_fields(struct mr_json *j,
                               const struct mr_ticket_view *t)
{
    mr_json_key(j, "id");
    mr_json_int(j, t->id);
    mr_json_key(j, "number");
    mr_json_int(j, t->number);
    mr_json_key(j, "subject");
    mr_json_cstr(j, t->subject);
    mr_json_key(j, "status");
    mr_json_cstr(j, t->status);
    mr_json_key(j, "priority");
    mr_json_cstr(j, t->priority);
    mr_json_key(j, "queue");
    mr_json_cstr(j, t->queue);
    mr_json_key(j, "assignee");
    mr_json_cstr(j, t->assignee);
    put_stored_array(j, "tags", t->tags_json);
    mr_json_key(j, "requester");
    mr_json_cstr(j, t->requester);
    mr_json_key(j, "message_count");
    mr_json_int(j, t->message_count);
    put_time(j, "created_at", t->created_at);
    put_time(j, "updated_at", t->updated_at);
    mr_json_key(j, "version");
    mr_json_int(j, t->version);
}

void mr_http_ticket_summary_json(struct mr_json *j,
                                 const struct mr_ticket_view *t)
{
    mr_json_obj_begin(j);
    put_summary_fields(j, t);
    mr_json_obj_end(j);
}

static void put_from(struct mr_json *j, const struct mr_message_view *m,
                     const json_t *ev)
{
    mr_json_key(j, "from");
    json_t *from = json_object_get(ev, "from");
    if (json_is_object(from)) {
        put_value(j, from, 1);
    } else if (m->from_email) {
        mr_json_obj_begin(j);
        mr_json_key(j, "email");
        mr_json_cstr(j, m->from_email);
        mr_json_key(j, "name");
        mr_json_cstr(j, m->from_name);
        mr_json_obj_end(j);
    } else {
        mr_json_null(j);
    }
}

/* The classification: the stored column, else the event's, else none. */
static void put_auto(struct mr_json *j, const struct mr_message_view *m,
                     const json_t *ev)
{
    mr_json_key(j, "auto");
    json_t *col = m->auto_json ? json_loads(m->auto_json, 0, NULL) : NULL;
    const json_t *v = json_is_object(col) ? col : json_object_get(ev, "auto");
    if (json_is_object(v)) {
        put_value(j, v, 1);
    } else {
        mr_json_obj_begin(j);
        mr_json_key(j, "kind");
        mr_json_cstr(j, "none");
        mr_json_key(j, "reason");
        mr_json_null(j);
        mr_json_obj_end(j);
    }
    json_decref(col);
}

void mr_http_attachment_json(struct mr_json *j,
                             const struct mr_attachment_view *a)
{
    mr_json_obj_begin(j);
    mr_json_key(j, "id");
    mr_json_int(j, a->id);
    mr_json_key(j, "filename");
    mr_json_cstr(j, a->filename);
    mr_json_key(j, "safe_filename");
    mr_json_cstr(j, a->safe_filename);
    mr_json_key(j, "content_type");
    mr_json_cstr(j, a->content_type);
    mr_json_key(j, "detected_type");
    mr_json_cstr(j, a->detected_type);
    mr_json_key(j, "type_mismatch");
    mr_json_bool(j, a->type_mismatch);
    mr_json_key(j, "disposition");
    mr_json_cstr(j, a->disposition);
    mr_json_key(j, "content_id");
    mr_json_cstr(j, a->content_id);
    mr_json_key(j, "size");
    mr_json_int(j, a->size);
    mr_json_key(j, "sha256");
    mr_json_cstr(j, a->sha256);
    mr_json_key(j, "blocked");
    mr_json_bool(j, a->blocked);
    mr_json_key(j, "blocked_reason");
    mr_json_cstr(j, a->blocked ? a->blocked_reason : NULL);
    mr_json_key(j, "truncated");
    mr_json_bool(j, a->truncated);
    mr_json_key(j, "scan");
    mr_json_cstr(j, a->scan);
    mr_json_key(j, "scan_signature");
    mr_json_cstr(j, a->scan_signature);
    mr_json_key(j, "scan_previous");
    mr_json_cstr(j, a->scan_previous);
    /* Only where there are bytes to fetch (not truncated, not a
     * provider's attachment). */
    mr_json_key(j, "url");
    if (a->sha256 != NULL && !a->truncated) {
        char url[48];
        snprintf(url, sizeof url, "/api/v1/attachments/%lld",
                 (long long)a->id);
        mr_json_cstr(j, url);
    } else {
        mr_json_null(j);
    }
    mr_json_obj_end(j);
}

static void put_attachments(struct mr_json *j, const struct mr_message_view *m)
{
    mr_json_key(j, "attachments");
    mr_json_arr_begin(j);
    for (size_t i = 0; i < m->nattachments; i++)
        mr_http_attachment_json(j, &m->attachments[i]);
    mr_json_arr_end(j);
}

void mr_http_message_json(struct mr_json *j, const struct mr_message_view *m)
{
    json_t *ev = m->event_json ? json_loads(m->event_json, 0, NULL) : NULL;
    if (!json_is_object(ev)) {
        json_decref(ev);
        ev = NULL;
    }
    mr_json_obj_begin(j);
    mr_json_key(j, "id");
    mr_json_int(j, m->id);
    mr_json_key(j, "message_id");
    mr_json_cstr(j, m->message_id);
    mr_json_key(j, "direction");
    mr_json_cstr(j, m->direction ? m->direction : "inbound");
    mr_json_key(j, "kind");
    mr_json_cstr(j, m->kind ? m->kind : "message");

    put_from(j, m, ev);
    put_array_or_empty(j, "to", json_object_get(ev, "to"));
    put_array_or_empty(j, "cc", json_object_get(ev, "cc"));
    mr_json_key(j, "subject");
    mr_json_cstr(j, m->subject);
    put_event_string(j, "date", ev);
    put_time(j, "received_at", m->received_at);

    /* Where it came in: the channel, the inbox and plus-address tag it was
     * routed by, and the SMTP envelope (null for other channels). */
    put_event_string(j, "channel", ev);
    mr_json_key(j, "inbox");
    if (m->inbox)
        mr_json_cstr(j, m->inbox);
    else if (json_is_string(json_object_get(ev, "inbox")))
        put_value(j, json_object_get(ev, "inbox"), 1);
    else
        mr_json_null(j);
    put_event_string(j, "tag", ev);
    json_t *envelope = json_object_get(ev, "envelope");
    mr_json_key(j, "envelope");
    if (json_is_object(envelope))
        put_value(j, envelope, 1);
    else
        mr_json_null(j);

    mr_json_key(j, "text");
    mr_json_cstr(j, m->text);
    put_event_string(j, "stripped_text", ev);
    /* Only the sanitized HTML: the original is in GET .../raw, for those
     * who mean to handle it. */
    put_event_string(j, "html_sanitized", ev);
    put_auto(j, m, ev);
    mr_json_key(j, "threaded_by");
    mr_json_cstr(j, m->threaded_by);
    mr_json_key(j, "thread_detail");
    mr_json_cstr(j, m->thread_detail);
    mr_json_key(j, "unverified");
    mr_json_bool(j, m->unverified);
    /* The rules whose conditions held for this message (docs/rules.md). */
    put_stored_array(j, "matched_rules", m->matched_rules_json);
    put_attachments(j, m);
    /* What the parser repaired and what the attachment stage cut
     * ("attachment_truncated: ..."), as the event has them. */
    put_array_or_empty(j, "warnings", json_object_get(ev, "warnings"));
    mr_json_obj_end(j);
    json_decref(ev);
}

void mr_http_ticket_json(struct mr_json *j, const struct mr_ticket_view *t,
                         const char *reply_address)
{
    mr_json_obj_begin(j);
    put_summary_fields(j, t);
    put_stored_array(j, "applied_rules", t->applied_rules_json);
    put_stored_object(j, "fields", t->fields_json);
    put_stored_object(j, "links", t->links_json);
    mr_json_key(j, "linked_ticket_id");
    if (t->linked_ticket_id > 0)
        mr_json_int(j, t->linked_ticket_id);
    else
        mr_json_null(j);
    mr_json_key(j, "reply_address");
    mr_json_cstr(j, reply_address && reply_address[0] ? reply_address : NULL);
    mr_json_key(j, "messages");
    mr_json_arr_begin(j);
    for (size_t i = 0; i < t->nmessages; i++)
        mr_http_message_json(j, &t->messages[i]);
    mr_json_arr_end(j);
    mr_json_obj_end(j);
}

void mr_http_ignored_json(struct mr_json *j, const struct mr_ignored_view *v)
{
    mr_json_obj_begin(j);
    mr_json_key(j, "id");
    mr_json_int(j, v->id);
    mr_json_key(j, "message_id");
    mr_json_cstr(j, v->message_id);
    mr_json_key(j, "channel");
    mr_json_cstr(j, v->channel);
    mr_json_key(j, "inbox");
    mr_json_cstr(j, v->inbox);
    mr_json_key(j, "from");
    mr_json_cstr(j, v->from_email);
    mr_json_key(j, "subject");
    mr_json_cstr(j, v->subject);
    put_time(j, "received_at", v->received_at);
    mr_json_key(j, "raw_sha256");
    mr_json_cstr(j, v->raw_sha256);
    put_stored_array(j, "applied_rules", v->applied_rules_json);
    put_stored_array(j, "matched_rules", v->matched_rules_json);
    mr_json_key(j, "release");
    if (v->release_job_id <= 0 && v->released_at <= 0) {
        mr_json_null(j);
    } else {
        mr_json_obj_begin(j);
        mr_json_key(j, "state");
        mr_json_cstr(j, v->released_at > 0 ? "released" : "queued");
        mr_json_key(j, "job_id");
        mr_json_int(j, v->release_job_id);
        mr_json_key(j, "by");
        mr_json_cstr(j, v->release_by);
        put_time(j, "requested_at", v->release_requested_at);
        put_time(j, "released_at", v->released_at);
        mr_json_key(j, "ticket_id");
        if (v->released_ticket_id > 0)
            mr_json_int(j, v->released_ticket_id);
        else
            mr_json_null(j);
        mr_json_key(j, "message_row");
        if (v->released_message_row > 0)
            mr_json_int(j, v->released_message_row);
        else
            mr_json_null(j);
        mr_json_obj_end(j);
    }
    mr_json_obj_end(j);
}

void mr_http_event_json(struct mr_json *j, const struct mr_event_rec *e)
{
    char buf[32];
    mr_json_obj_begin(j);
    mr_json_key(j, "id");
    snprintf(buf, sizeof buf, "evt_%lld", (long long)e->seq);
    mr_json_cstr(j, buf);
    mr_json_key(j, "seq");
    mr_json_int(j, e->seq);
    mr_json_key(j, "type");
    mr_json_cstr(j, e->type);
    mr_json_key(j, "created_at");
    char t[MR__HTTP_TIME_LEN];
    mr__http_time(e->created_at, t);
    mr_json_cstr(j, t);
    mr_json_key(j, "ticket_id");
    if (e->ticket_id > 0)
        mr_json_int(j, e->ticket_id);
    else
        mr_json_null(j);
    /* As stored: the store holds only valid JSON there (the events table
     * checks json_valid; email.received's event is spliced in by SQLite's
     * json_set), all of it written by mr_json, so valid UTF-8. Parsing it
     * with jansson to write it again was a fifth of the webhook
     * dispatcher's CPU (docs/benchmarks.md). */
    mr_json_key(j, "payload");
    mr_json_raw(j, mr_span_cstr(e->payload));
    mr_json_obj_end(j);
}
