/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_tickets.c - GET /api/v1/tickets (cursor-paged) and
 * GET /api/v1/tickets/{id} with its messages, for the token's tenant only.
 *
 * Addresses, the Date and the attachment list of a message come from the
 * normalized event the worker stored (event_json, read with jansson), so
 * the API shows exactly what the parser produced. A ticket of another
 * tenant is answered 404, the same as a ticket that does not exist, so
 * that ids reveal nothing across tenants.
 */
#include <jansson.h>
#include <string.h>

#include "http/http-private.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 200
#define CURSOR_MAX 1024
/* Stored events are our own output and shallow; this only bounds the
 * copy if one is not. */
#define COPY_DEPTH 6

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
 * that are not integers cannot occur in what we copy and become null). */
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

static void put_ticket_fields(struct mr_json *j, const struct mr_ticket_view *t)
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
    /* tags_json is the store's own JSON array text; anything else shows
     * as no tags rather than as broken output. */
    json_t *tags =
        t->tags_json ? json_loads(t->tags_json, JSON_DECODE_ANY, NULL) : NULL;
    put_array_or_empty(j, "tags", tags);
    json_decref(tags);
    mr_json_key(j, "requester");
    mr_json_cstr(j, t->requester);
    mr_json_key(j, "message_count");
    mr_json_int(j, t->message_count);
    put_time(j, "created_at", t->created_at);
    put_time(j, "updated_at", t->updated_at);
}

static void put_message(struct mr_json *j, const struct mr_message_view *m)
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
    put_array_or_empty(j, "to", json_object_get(ev, "to"));
    put_array_or_empty(j, "cc", json_object_get(ev, "cc"));

    mr_json_key(j, "subject");
    mr_json_cstr(j, m->subject);
    mr_json_key(j, "date");
    json_t *date = json_object_get(ev, "date");
    if (json_is_string(date))
        put_value(j, date, 1);
    else
        mr_json_null(j);
    put_time(j, "received_at", m->received_at);
    /* Where it came in: the channel, the inbox and plus-address tag it was
     * routed by, and the SMTP envelope (null for other channels). */
    static const char *const intake[] = {"channel", "inbox", "tag",
                                         "envelope"};
    for (size_t k = 0; k < sizeof intake / sizeof intake[0]; k++) {
        json_t *v = json_object_get(ev, intake[k]);
        mr_json_key(j, intake[k]);
        if (v && !json_is_null(v))
            put_value(j, v, 1);
        else
            mr_json_null(j);
    }
    mr_json_key(j, "text");
    mr_json_cstr(j, m->text);
    mr_json_key(j, "html");
    mr_json_cstr(j, m->html);

    mr_json_key(j, "attachments");
    mr_json_arr_begin(j);
    json_t *atts = json_object_get(ev, "attachments");
    size_t i;
    json_t *a;
    static const char *const keep[] = {"filename", "content_type", "size",
                                       "sha256"};
    json_array_foreach(atts, i, a)
    {
        if (!json_is_object(a))
            continue;
        mr_json_obj_begin(j);
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
            mr_json_key(j, keep[k]);
            put_value(j, json_object_get(a, keep[k]), 2);
        }
        mr_json_obj_end(j);
    }
    mr_json_arr_end(j);
    mr_json_obj_end(j);
    json_decref(ev);
}

void mr__http_list_tickets(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp)
{
    struct mr_error err = {0};
    int limit;
    if (mr__http_parse_limit(mr__http_query(req, "limit"), LIMIT_DEFAULT,
                             LIMIT_MAX, &limit, &err) < 0) {
        mr__http_problem(resp, 400, "%s", err.msg);
        return;
    }
    const char *cursor = mr__http_query(req, "cursor");
    if (cursor != NULL && (cursor[0] == '\0' || strlen(cursor) > CURSOR_MAX)) {
        mr__http_problem(resp, 400, "cursor is not one this API gave out");
        return;
    }

    struct mr_ticket_view *tickets = NULL;
    size_t n = 0;
    char *next = NULL;
    int rc = mr_store_list_tickets(ctx->deps.store, req->principal.tenant,
                                   NULL, cursor, limit, &tickets, &n, &next,
                                   &err);
    if (rc == MR_EINVAL) {
        mr__http_problem(resp, 400, "cursor is not one this API gave out");
        return;
    }
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 200, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "tickets");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++) {
        mr_json_obj_begin(&j);
        put_ticket_fields(&j, &tickets[i]);
        mr_json_obj_end(&j);
    }
    mr_json_arr_end(&j);
    mr_json_key(&j, "next_cursor");
    mr_json_cstr(&j, next);
    mr_json_obj_end(&j);
    mr_ticket_list_free(tickets, n);
    free(next);
}

void mr__http_get_ticket(const struct mr__http_ctx *ctx,
                         struct mr__http_request *req,
                         struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_parse_id(req->id, &id)) {
        mr__http_problem(resp, 404, "no such ticket");
        return;
    }
    struct mr_ticket_view t;
    memset(&t, 0, sizeof t);
    struct mr_error err = {0};
    int rc = mr_store_get_ticket(ctx->deps.store, req->principal.tenant, id, &t,
                                 &err);
    if (rc == MR_ENOTFOUND) {
        mr__http_problem(resp, 404, "no such ticket");
        return;
    }
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 200, &j);
    mr_json_obj_begin(&j);
    put_ticket_fields(&j, &t);
    mr_json_key(&j, "messages");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < t.nmessages; i++)
        put_message(&j, &t.messages[i]);
    mr_json_arr_end(&j);
    mr_json_obj_end(&j);
    mr_ticket_view_clear(&t);
}
