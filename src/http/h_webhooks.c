/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_webhooks.c - managing outbound webhooks (admin tokens, the token's
 * tenant only; docs/webhooks.md):
 *   POST/GET /api/v1/webhooks, GET/PATCH/DELETE /api/v1/webhooks/{id}
 *   GET /api/v1/deliveries, GET /api/v1/deliveries/{id},
 *   POST /api/v1/deliveries/{id}/redrive
 *
 * A body that is not a JSON object is 400; a member with a wrong value is
 * 422 with the member's name in "field", so a client can point at it.
 * Secrets never leave the server again once written: answers carry a
 * hint of each (its last 4 characters). A subscription or delivery of
 * another tenant is 404, like one that does not exist.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http-private.h"
#include "http/webhook_sig.h"

#define DELIVERIES_DEFAULT 50
#define DELIVERIES_MAX 200
#define HINT_CHARS 4

/* ---- answers ----------------------------------------------------------------
 */

/* A 422 problem naming the body member that is wrong. */
static void problem_field(struct mr__http_response *r, const char *field,
                          const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem_field(struct mr__http_response *r, const char *field,
                          const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    r->status = 422;
    r->content_type = "application/problem+json";
    mr_buf_reset(&r->body);
    struct mr_json j;
    mr_json_init(&j, &r->body, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "type");
    mr_json_cstr(&j, "about:blank");
    mr_json_key(&j, "title");
    mr_json_cstr(&j, mr__http_reason(422));
    mr_json_key(&j, "status");
    mr_json_int(&j, 422);
    mr_json_key(&j, "detail");
    mr_json_cstr(&j, detail);
    mr_json_key(&j, "field");
    mr_json_cstr(&j, field);
    mr_json_obj_end(&j);
}

static void webhook_json(struct mr_json *j, const struct mr_webhook *w)
{
    mr_json_obj_begin(j);
    mr_json_key(j, "id");
    mr_json_int(j, w->id);
    mr_json_key(j, "url");
    mr_json_cstr(j, w->url);
    mr_json_key(j, "events");
    if (w->nevents == 0) {
        mr_json_null(j);
    } else {
        mr_json_arr_begin(j);
        for (size_t i = 0; i < w->nevents; i++)
            mr_json_cstr(j, w->events[i]);
        mr_json_arr_end(j);
    }
    mr_json_key(j, "secrets");
    mr_json_arr_begin(j);
    for (size_t i = 0; i < w->nsecrets; i++) {
        size_t len = strlen(w->secrets[i]);
        char hint[8 + HINT_CHARS];
        snprintf(hint, sizeof hint, "...%s",
                 w->secrets[i] + (len > HINT_CHARS ? len - HINT_CHARS : 0));
        mr_json_obj_begin(j);
        mr_json_key(j, "hint");
        mr_json_cstr(j, hint);
        mr_json_obj_end(j);
    }
    mr_json_arr_end(j);
    mr_json_key(j, "active");
    mr_json_bool(j, w->active);
    mr_json_key(j, "source");
    mr_json_cstr(j, w->source);
    mr_json_key(j, "disabled_at");
    mr__http_json_time(j, w->disabled_at);
    mr_json_key(j, "disabled_reason");
    mr_json_cstr(j, w->disabled_reason);
    mr_json_key(j, "cursor");
    mr_json_int(j, w->cursor);
    mr_json_key(j, "created_at");
    mr__http_json_time(j, w->created_at);
    mr_json_key(j, "updated_at");
    mr__http_json_time(j, w->updated_at);
    mr_json_obj_end(j);
}

static void delivery_json(struct mr_json *j,
                          const struct mr_webhook_delivery *d)
{
    char evt[32];
    snprintf(evt, sizeof evt, "evt_%lld", (long long)d->seq);
    mr_json_obj_begin(j);
    mr_json_key(j, "id");
    mr_json_int(j, d->id);
    mr_json_key(j, "webhook_id");
    mr_json_int(j, d->webhook_id);
    mr_json_key(j, "url");
    mr_json_cstr(j, d->url);
    mr_json_key(j, "event_id");
    mr_json_cstr(j, evt);
    mr_json_key(j, "event_seq");
    mr_json_int(j, d->seq);
    mr_json_key(j, "event_type");
    mr_json_cstr(j, d->event_type);
    mr_json_key(j, "ticket_id");
    if (d->ticket_id > 0)
        mr_json_int(j, d->ticket_id);
    else
        mr_json_null(j);
    mr_json_key(j, "state");
    mr_json_cstr(j, d->state);
    mr_json_key(j, "attempts");
    mr_json_int(j, d->attempts);
    mr_json_key(j, "next_attempt_at");
    if (d->state && strcmp(d->state, "pending") == 0)
        mr__http_json_time(j, d->next_attempt_at);
    else
        mr_json_null(j);
    mr_json_key(j, "last_error");
    mr_json_cstr(j, d->last_error);
    mr_json_key(j, "created_at");
    mr__http_json_time(j, d->created_at);
    mr_json_key(j, "updated_at");
    mr__http_json_time(j, d->updated_at);
    mr_json_obj_end(j);
}

/* ---- the body of POST and PATCH ---------------------------------------------
 */

/* An http(s) URL with a host and no user information (a password in a
 * URL would be stored and logged), of printable ASCII. */
static bool url_ok(const char *u, const char **why)
{
    size_t n = strlen(u);
    if (n > MR_WEBHOOK_URL_MAX) {
        *why = "is too long";
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c >= 0x7f) {
            *why = "may hold only printable ASCII without spaces "
                   "(percent-encode the rest)";
            return false;
        }
    }
    size_t skip = strncmp(u, "https://", 8) == 0  ? 8
                  : strncmp(u, "http://", 7) == 0 ? 7
                                                  : 0;
    if (skip == 0) {
        *why = "must start with http:// or https://";
        return false;
    }
    const char *host = u + skip;
    size_t alen = strcspn(host, "/?#");
    if (alen == 0 || host[0] == ':') {
        *why = "has no host";
        return false;
    }
    if (memchr(host, '@', alen) != NULL) {
        *why = "must not carry a user name or password";
        return false;
    }
    if (host[alen] == '#') {
        *why = "must not have a fragment";
        return false;
    }
    return true;
}

/* Parsed values point into the JSON document, which outlives their use. */
struct body {
    struct mr_webhook_spec spec;
    const char *events[MR_WEBHOOK_TYPES_MAX];
    const char *secrets[MR_WEBHOOK_SECRETS_MAX];
};

/* Reads body into b->spec; on a bad value answers resp and returns false.
 * create: url and secrets are required. */
static bool read_body(json_t *doc, bool create, struct body *b,
                      struct mr__http_response *resp)
{
    memset(b, 0, sizeof *b);
    b->spec.active = create ? 1 : -1;
    b->spec.set_events = create;
    if (!json_is_object(doc)) {
        mr__http_problem(resp, 400,
                         "the body is a JSON object: {\"url\": "
                         "\"https://...\", \"secrets\": [...]}");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "url") != 0 && strcmp(key, "events") != 0 &&
            strcmp(key, "secrets") != 0 && strcmp(key, "active") != 0) {
            problem_field(resp, key,
                          "unknown member '%.64s' (url, events, secrets, "
                          "active)",
                          key);
            return false;
        }
    }
    json_t *url = json_object_get(doc, "url");
    if (url != NULL) {
        const char *why = "must be a string";
        if (!json_is_string(url) || !url_ok(json_string_value(url), &why)) {
            problem_field(resp, "url", "url %s", why);
            return false;
        }
        b->spec.url = json_string_value(url);
    } else if (create) {
        problem_field(resp, "url", "url is required");
        return false;
    }
    json_t *ev = json_object_get(doc, "events");
    if (ev != NULL) {
        b->spec.set_events = true;
        if (!json_is_null(ev)) {
            if (!json_is_array(ev) || json_array_size(ev) == 0 ||
                json_array_size(ev) > MR_WEBHOOK_TYPES_MAX) {
                problem_field(resp, "events",
                              "events is a list of 1 to %d event types, or "
                              "null (or left out) for every type",
                              MR_WEBHOOK_TYPES_MAX);
                return false;
            }
            for (size_t i = 0; i < json_array_size(ev); i++) {
                const char *t = json_string_value(json_array_get(ev, i));
                if (!mr_store_event_type_known(t)) {
                    problem_field(resp, "events",
                                  "events[%zu] is not an event type "
                                  "(docs/events.md lists them)",
                                  i);
                    return false;
                }
                b->events[b->spec.nevents++] = t;
            }
            b->spec.events = b->events;
        }
    }
    json_t *sec = json_object_get(doc, "secrets");
    if (sec != NULL) {
        if (!json_is_array(sec) || json_array_size(sec) < 1 ||
            json_array_size(sec) > MR_WEBHOOK_SECRETS_MAX) {
            problem_field(resp, "secrets",
                          "secrets is a list of 1 or 2 secrets, the current "
                          "one first");
            return false;
        }
        for (size_t i = 0; i < json_array_size(sec); i++) {
            const char *s = json_string_value(json_array_get(sec, i));
            size_t len = s ? strlen(s) : 0;
            if (s == NULL || len < MR_WEBHOOK_SECRET_MIN ||
                len > MR_WEBHOOK_SECRET_MAX) {
                problem_field(resp, "secrets",
                              "secrets[%zu] must be a string of %d to %d "
                              "characters",
                              i, MR_WEBHOOK_SECRET_MIN, MR_WEBHOOK_SECRET_MAX);
                return false;
            }
            /* A whsec_ secret must decode, or no request could be signed. */
            char sig[MR_WEBHOOK_STD_SIG_LEN];
            if (mr_webhook_sign_std(s, "msg_check", 1, "{}", 2, sig, sizeof sig,
                                    NULL) < 0) {
                problem_field(resp, "secrets",
                              "secrets[%zu] starts with whsec_ but the rest "
                              "is not base64",
                              i);
                return false;
            }
            b->secrets[b->spec.nsecrets++] = s;
        }
        b->spec.secrets = b->secrets;
    } else if (create) {
        problem_field(resp, "secrets",
                      "secrets is required: a list of 1 or "
                      "2 secrets");
        return false;
    }
    json_t *act = json_object_get(doc, "active");
    if (act != NULL) {
        if (!json_is_boolean(act)) {
            problem_field(resp, "active", "active is true or false");
            return false;
        }
        b->spec.active = json_is_true(act) ? 1 : 0;
    }
    return true;
}

static json_t *load_body(struct mr__http_request *req,
                         struct mr__http_response *resp)
{
    json_error_t jerr;
    json_t *doc = json_loadb(req->body, req->body_len, 0, &jerr);
    if (doc == NULL)
        mr__http_problem(resp, 400, "the body is not JSON: %s", jerr.text);
    return doc;
}

/* ---- /api/v1/webhooks
 * -------------------------------------------------------- */

static void answer_webhook(struct mr__http_response *resp, int status,
                           const struct mr_webhook *w)
{
    struct mr_json j;
    mr__http_json(resp, status, &j);
    webhook_json(&j, w);
}

/* Store errors of create and update: a limit is the client's problem. */
static void store_problem(const struct mr__http_ctx *ctx,
                          struct mr__http_response *resp,
                          const struct mr_error *err)
{
    if (err->code == MR_ELIMIT)
        mr__http_problem(resp, 422, "%s", err->msg);
    else
        mr__http_problem_err(ctx, resp, err);
}

void mr__http_create_webhook(const struct mr__http_ctx *ctx,
                             struct mr__http_request *req,
                             struct mr__http_response *resp)
{
    json_t *doc = load_body(req, resp);
    if (doc == NULL)
        return;
    struct body b;
    if (!read_body(doc, true, &b, resp)) {
        json_decref(doc);
        return;
    }
    struct mr_webhook w;
    struct mr_error err = {0};
    int rc = mr_store_webhook_create(ctx->deps.store, req->principal.tenant,
                                     &b.spec, &w, &err);
    json_decref(doc);
    if (rc < 0) {
        store_problem(ctx, resp, &err);
        return;
    }
    answer_webhook(resp, 201, &w);
    mr__http_header_add(resp, "Location", "/api/v1/webhooks/%lld",
                        (long long)w.id);
    mr_webhook_clear(&w);
}

void mr__http_list_webhooks(const struct mr__http_ctx *ctx,
                            struct mr__http_request *req,
                            struct mr__http_response *resp)
{
    struct mr_webhook *w = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    if (mr_store_webhook_list(ctx->deps.store, req->principal.tenant, &w, &n,
                              &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 200, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "webhooks");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++)
        webhook_json(&j, &w[i]);
    mr_json_arr_end(&j);
    mr_json_obj_end(&j);
    mr_webhook_list_free(w, n);
}

void mr__http_get_webhook(const struct mr__http_ctx *ctx,
                          struct mr__http_request *req,
                          struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_path_id(req, resp, &id))
        return;
    struct mr_webhook w;
    struct mr_error err = {0};
    if (mr_store_webhook_get(ctx->deps.store, req->principal.tenant, id, &w,
                             &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    answer_webhook(resp, 200, &w);
    mr_webhook_clear(&w);
}

void mr__http_patch_webhook(const struct mr__http_ctx *ctx,
                            struct mr__http_request *req,
                            struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_path_id(req, resp, &id))
        return;
    json_t *doc = load_body(req, resp);
    if (doc == NULL)
        return;
    struct body b;
    if (!read_body(doc, false, &b, resp)) {
        json_decref(doc);
        return;
    }
    struct mr_webhook w;
    struct mr_error err = {0};
    int rc = mr_store_webhook_update(ctx->deps.store, req->principal.tenant, id,
                                     &b.spec, &w, &err);
    json_decref(doc);
    if (rc < 0) {
        store_problem(ctx, resp, &err);
        return;
    }
    answer_webhook(resp, 200, &w);
    mr_webhook_clear(&w);
}

void mr__http_delete_webhook(const struct mr__http_ctx *ctx,
                             struct mr__http_request *req,
                             struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_path_id(req, resp, &id))
        return;
    struct mr_error err = {0};
    if (mr_store_webhook_delete(ctx->deps.store, req->principal.tenant, id,
                                NULL, &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    resp->status = 204;
}

/* ---- /api/v1/deliveries
 * ------------------------------------------------------ */

void mr__http_list_deliveries(const struct mr__http_ctx *ctx,
                              struct mr__http_request *req,
                              struct mr__http_response *resp)
{
    static const char *const states[] = {"pending", "delivered", "dead",
                                         NULL};
    struct mr__http_page pg;
    if (!mr__http_page_query(req, resp, DELIVERIES_DEFAULT, DELIVERIES_MAX,
                             states, &pg))
        return;
    struct mr_delivery_filter f = {.tenant = req->principal.tenant,
                                   .state = pg.state,
                                   .after = pg.after,
                                   .limit = pg.limit};
    if (!mr__http_query_id(mr__http_query(req, "webhook_id"),
                           &f.webhook_id)) {
        mr__http_problem(resp, 400, "webhook_id is a webhook's id");
        return;
    }
    struct mr_error err = {0};
    struct mr_webhook_delivery *d = NULL;
    size_t n = 0;
    if (mr_store_delivery_list(ctx->deps.store, &f, &d, &n, &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 200, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "deliveries");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++)
        delivery_json(&j, &d[i]);
    mr_json_arr_end(&j);
    /* A full page may have a next one; the last page says so with null. */
    mr_json_key(&j, "next_after");
    if (n == (size_t)f.limit)
        mr_json_int(&j, d[n - 1].id);
    else
        mr_json_null(&j);
    mr_json_obj_end(&j);
    mr_webhook_delivery_list_free(d, n);
}

void mr__http_get_delivery(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_path_id(req, resp, &id))
        return;
    struct mr_webhook_delivery d;
    struct mr_error err = {0};
    if (mr_store_delivery_get(ctx->deps.store, req->principal.tenant, id, &d,
                              &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 200, &j);
    delivery_json(&j, &d);
    mr_webhook_delivery_clear(&d);
}

void mr__http_redrive_delivery(const struct mr__http_ctx *ctx,
                               struct mr__http_request *req,
                               struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_path_id(req, resp, &id))
        return;
    struct mr_error err = {0};
    struct mr_webhook_delivery d;
    if (mr_store_delivery_redrive(ctx->deps.store, req->principal.tenant, id,
                                  &d, &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 202, &j);
    delivery_json(&j, &d);
    mr_webhook_delivery_clear(&d);
}
