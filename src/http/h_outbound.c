/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_outbound.c - what an operator sees and fixes of two outbound queues
 * (admin tokens, the token's tenant only; docs/api.md):
 *   GET /api/v1/outbound-mail, POST /api/v1/outbound-mail/{id}/retry
 *   GET /api/v1/notifications, POST /api/v1/notifications/{id}/redrive
 *
 * The same shape as the webhook deliveries' listing and redrive
 * (h_webhooks.c): pages oldest first with ?after= and next_after, a row of
 * another tenant is 404 like one that does not exist, and putting back a
 * row that is not at its dead end (failed mail, a dead notification) is
 * 409: a pending one may be in the sender's hands, a sent one would reach
 * its recipient twice. The message text of outbound mail is not listed:
 * it can be large, and its recipient, Message-ID and ticket say which
 * mail it is.
 */
#include <string.h>

#include "http/http-private.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 200

/* A full page may have a next one; the last page says so with null. */
static void next_after(struct mr_json *j, size_t n, int limit, int64_t last)
{
    mr_json_key(j, "next_after");
    if (n == (size_t)limit)
        mr_json_int(j, last);
    else
        mr_json_null(j);
}

/* next_attempt_at means something only while the row waits. */
static void next_attempt(struct mr_json *j, const char *state, int64_t at)
{
    mr_json_key(j, "next_attempt_at");
    if (state && strcmp(state, "pending") == 0)
        mr__http_json_time(j, at);
    else
        mr_json_null(j);
}

/* ---- /api/v1/outbound-mail ---------------------------------------------- */

static void mail_json(struct mr_json *j, const struct mr_outbound_mail *m)
{
    mr_json_obj_begin(j);
    mr_json_key(j, "id");
    mr_json_int(j, m->id);
    mr_json_key(j, "kind");
    mr_json_cstr(j, m->kind);
    mr_json_key(j, "ticket_id");
    if (m->ticket_id > 0)
        mr_json_int(j, m->ticket_id);
    else
        mr_json_null(j);
    mr_json_key(j, "message_id");
    mr_json_cstr(j, m->message_id);
    mr_json_key(j, "mail_from");
    mr_json_cstr(j, m->mail_from);
    mr_json_key(j, "rcpt_to");
    mr_json_cstr(j, m->rcpt_to);
    mr_json_key(j, "state");
    mr_json_cstr(j, m->state);
    mr_json_key(j, "attempts");
    mr_json_int(j, m->attempts);
    next_attempt(j, m->state, m->next_attempt_at);
    mr_json_key(j, "last_error");
    mr_json_cstr(j, m->last_error);
    mr_json_key(j, "created_at");
    mr__http_json_time(j, m->created_at);
    mr_json_key(j, "updated_at");
    mr__http_json_time(j, m->updated_at);
    mr_json_obj_end(j);
}

void mr__http_list_outbound_mail(const struct mr__http_ctx *ctx,
                                 struct mr__http_request *req,
                                 struct mr__http_response *resp)
{
    static const char *const states[] = {"pending", "sent", "failed", NULL};
    struct mr__http_page pg;
    if (!mr__http_page_query(req, resp, PAGE_DEFAULT, PAGE_MAX, states, &pg))
        return;
    struct mr_outbound_filter f = {.tenant = req->principal.tenant,
                                   .state = pg.state,
                                   .after = pg.after,
                                   .limit = pg.limit};
    struct mr_outbound_mail *m = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    if (mr_store_outbound_list(ctx->deps.store, &f, &m, &n, &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 200, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "outbound_mail");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++)
        mail_json(&j, &m[i]);
    mr_json_arr_end(&j);
    next_after(&j, n, f.limit, n ? m[n - 1].id : 0);
    mr_json_obj_end(&j);
    mr_outbound_mail_list_free(m, n);
}

void mr__http_retry_outbound_mail(const struct mr__http_ctx *ctx,
                                  struct mr__http_request *req,
                                  struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_path_id(req, resp, &id))
        return;
    struct mr_error err = {0};
    struct mr_outbound_mail m;
    if (mr_store_outbound_retry(ctx->deps.store, req->principal.tenant, id,
                                &m, &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 202, &j);
    mail_json(&j, &m);
    mr_outbound_mail_clear(&m);
}

/* ---- /api/v1/notifications ---------------------------------------------- */

static void notification_json(struct mr_json *j,
                              const struct mr_notification_state *x)
{
    mr_json_obj_begin(j);
    mr_json_key(j, "id");
    mr_json_int(j, x->id);
    mr_json_key(j, "integration");
    mr_json_cstr(j, x->integration);
    mr_json_key(j, "kind");
    mr_json_cstr(j, x->kind);
    mr_json_key(j, "ticket_id");
    mr_json_int(j, x->ticket_id);
    mr_json_key(j, "message");
    mr_json_int(j, x->message_row);
    mr_json_key(j, "state");
    mr_json_cstr(j, x->state);
    mr_json_key(j, "attempts");
    mr_json_int(j, x->attempts);
    next_attempt(j, x->state, x->next_attempt_at);
    mr_json_key(j, "last_error");
    mr_json_cstr(j, x->last_error);
    mr_json_key(j, "external_ref");
    mr_json_cstr(j, x->external_ref);
    mr_json_key(j, "created_at");
    mr__http_json_time(j, x->created_at);
    mr_json_key(j, "updated_at");
    mr__http_json_time(j, x->updated_at);
    mr_json_obj_end(j);
}

void mr__http_list_notifications(const struct mr__http_ctx *ctx,
                                 struct mr__http_request *req,
                                 struct mr__http_response *resp)
{
    static const char *const states[] = {"pending", "sent", "dead", NULL};
    struct mr__http_page pg;
    if (!mr__http_page_query(req, resp, PAGE_DEFAULT, PAGE_MAX, states, &pg))
        return;
    struct mr_notify_filter f = {.tenant = req->principal.tenant,
                                 .state = pg.state,
                                 .after = pg.after,
                                 .limit = pg.limit};
    struct mr_notification_state *v = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    if (mr_store_notify_list(ctx->deps.store, &f, &v, &n, &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 200, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "notifications");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++)
        notification_json(&j, &v[i]);
    mr_json_arr_end(&j);
    next_after(&j, n, f.limit, n ? v[n - 1].id : 0);
    mr_json_obj_end(&j);
    mr_notification_states_free(v, n);
}

void mr__http_redrive_notification(const struct mr__http_ctx *ctx,
                                   struct mr__http_request *req,
                                   struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_path_id(req, resp, &id))
        return;
    struct mr_error err = {0};
    struct mr_notification_state x;
    if (mr_store_notify_redrive(ctx->deps.store, req->principal.tenant, id,
                                &x, &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 202, &j);
    notification_json(&j, &x);
    mr_notification_state_clear(&x);
}
