/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_ignored.c - POST /api/v1/ignored/{id}/release: an agent takes a
 * message the rules ignored out of the ignored list and into a ticket
 * (docs/rules.md, *Releasing*; docs/api.md).
 *
 * The answer is 202: the store queues a release job and records it on the
 * row in one transaction (so two clicks queue one job; the second is a
 * 409), and a worker delivers the message as new mail, ticket and events
 * and the row's "released" mark in its own one transaction. The document
 * answered is the ignored message as GET /api/v1/ignored lists it, its
 * `release` filled in.
 */
#include "http/http-private.h"

#include "http/ticket_json.h"

#include <stdio.h>

void mr__http_release_ignored(const struct mr__http_ctx *ctx,
                              struct mr__http_request *req,
                              struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_parse_id(req->id, &id)) {
        mr__http_problem(resp, 404, "no such ignored message");
        return;
    }
    /* The same actor form as the agents' PATCH (docs/events.md). */
    char by[8 + MR_AUTH_PREFIX_LEN];
    snprintf(by, sizeof by, "api:%s", req->principal.prefix);
    struct mr_error err = {0};
    int64_t job = 0;
    int rc = mr_store_release_ignored(ctx->deps.store, req->principal.tenant,
                                      id, by, &job, &err);
    if (rc == MR_ENOTFOUND) {
        mr__http_problem(resp, 404, "no such ignored message");
        return;
    }
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    mr_intake_wake(ctx->deps.intake);
    struct mr_ignored_view v;
    rc = mr_store_get_ignored(ctx->deps.store, req->principal.tenant, id, &v,
                              &err);
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 202, &j);
    mr_http_ignored_json(&j, &v);
    mr_ignored_view_clear(&v);
}
