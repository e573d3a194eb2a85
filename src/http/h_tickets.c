/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_tickets.c - GET /api/v1/tickets (filtered, cursor-paged) and
 * GET /api/v1/tickets/{id} with its messages, for the token's tenant only,
 * and GET /api/v1/ignored (admins): the mail the rules kept off tickets.
 *
 * The documents themselves are ticket_json.c's, shared with `mailroom
 * tickets`. A ticket of another tenant is answered 404, the same as a
 * ticket that does not exist, so that ids reveal nothing across tenants.
 */
#include <string.h>

#include "http/http-private.h"
#include "http/ticket_json.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 200
#define CURSOR_MAX 1024

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
    struct mr_ticket_filter filter;
    char requester[MR_HTTP_FILTER_MAX + 1];
    if (mr_http_ticket_filter(
            mr__http_query(req, "status"), mr__http_query(req, "queue"),
            mr__http_query(req, "priority"), mr__http_query(req, "requester"),
            &filter, requester, &err) < 0) {
        mr__http_problem(resp, 400, "%s", err.msg);
        return;
    }

    struct mr_ticket_view *tickets = NULL;
    size_t n = 0;
    char *next = NULL;
    int rc =
        mr_store_list_tickets(ctx->deps.store, req->principal.tenant, &filter,
                              cursor, limit, &tickets, &n, &next, &err);
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
    for (size_t i = 0; i < n; i++)
        mr_http_ticket_summary_json(&j, &tickets[i]);
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
    char reply[MR_HTTP_REPLY_ADDRESS_LEN + 1];
    rc = mr_http_reply_address(ctx->deps.cfg, ctx->deps.store, &t, reply, &err);
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
    } else {
        struct mr_json j;
        mr__http_json(resp, 200, &j);
        mr_http_ticket_json(&j, &t, reply);
        /* What If-Match takes on PATCH (docs/api.md). */
        mr__http_header_add(resp, "ETag", "\"%lld\"", (long long)t.version);
    }
    mr_ticket_view_clear(&t);
}

/* GET /api/v1/ignored: what the rules ignored, newest first (admins). */
void mr__http_list_ignored(const struct mr__http_ctx *ctx,
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
    struct mr_ignored_view *list = NULL;
    size_t n = 0;
    char *next = NULL;
    int rc = mr_store_list_ignored(ctx->deps.store, req->principal.tenant,
                                   cursor, limit, &list, &n, &next, &err);
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
    mr_json_key(&j, "ignored");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++)
        mr_http_ignored_json(&j, &list[i]);
    mr_json_arr_end(&j);
    mr_json_key(&j, "next_cursor");
    mr_json_cstr(&j, next);
    mr_json_obj_end(&j);
    mr_ignored_list_free(list, n);
    free(next);
}
