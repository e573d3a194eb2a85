/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_raw.c - GET /api/v1/messages/{id}/raw: the message exactly as it was
 * received (message/rfc822), from the database or the blob store
 * (ticket/raw.h), for the token's tenant.
 *
 * The bytes are copied into the answer, which therefore holds one message
 * at a time per request; its size was capped at intake
 * (limits.message_size), so the answer's own cap is lifted to the
 * message's size rather than refusing a message we accepted.
 *
 * A message of another tenant is 404 like a missing one. A message that
 * never had raw bytes (a provider webhook delivers a parsed event) is 404
 * with a detail that says so. A raw message that the database names but
 * neither it nor the blob store has is damage, not a client error: 503,
 * and the operator's log gets the key.
 */
#include <stdio.h>
#include <string.h>

#include "http/http-private.h"
#include "ticket/raw.h"

void mr__http_get_raw_message(const struct mr__http_ctx *ctx,
                              struct mr__http_request *req,
                              struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_parse_id(req->id, &id)) {
        mr__http_problem(resp, 404, "no such message");
        return;
    }
    struct mr_message_view m;
    memset(&m, 0, sizeof m);
    struct mr_error err = {0};
    int rc = mr_store_get_message(ctx->deps.store, req->principal.tenant, id,
                                  &m, &err);
    if (rc == MR_ENOTFOUND) {
        mr__http_problem(resp, 404, "no such message");
        return;
    }
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    if (m.raw_sha256 == NULL || m.raw_sha256[0] == '\0') {
        mr__http_problem(resp, 404,
                         "message %lld has no raw form: it arrived as a "
                         "parsed provider webhook event",
                         (long long)id);
        mr_message_view_clear(&m);
        return;
    }

    struct mr_raw map;
    rc = mr_raw_open(ctx->deps.store, ctx->deps.blob, m.raw_sha256, &map,
                     &err);
    if (rc == MR_ENOTFOUND || rc == MR_EINVAL) {
        char line[256];
        snprintf(line, sizeof line,
                 "message %lld: raw message %.64s is %s storage",
                 (long long)id, m.raw_sha256,
                 rc == MR_ENOTFOUND ? "missing from" : "not a valid key of");
        if (ctx->deps.log)
            ctx->deps.log(ctx->deps.log_ctx, line);
        mr__http_problem(resp, 503, "the raw message is missing from storage");
    } else if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
    } else {
        resp->status = 200;
        resp->content_type = "message/rfc822";
        mr_buf_release(&resp->body);
        mr_buf_init(&resp->body, map.len > MR__HTTP_RESPONSE_CAP
                                     ? map.len
                                     : MR__HTTP_RESPONSE_CAP);
        if (map.len > 0)
            mr_buf_append(&resp->body, map.p, map.len);
        mr__http_header_add(resp, "Content-Disposition",
                            "attachment; filename=\"message-%lld.eml\"",
                            (long long)id);
    }
    mr_raw_close(&map);
    mr_message_view_clear(&m);
}
