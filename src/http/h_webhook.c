/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_webhook.c - POST /inbox/webhook: an already-parsed email from a
 * provider, as JSON in the seed's shape, authenticated by
 * X-Email-Signature (webhook_sig.h) instead of a bearer token.
 *
 * The route exists only when a secret is configured (404 otherwise, the
 * same answer as for any unknown path). The signature is checked first,
 * over the body exactly as received, before anything else is said about
 * the request; then the media type and the JSON syntax; then intake
 * validates the event and queues it for the configured webhook tenant.
 * 204 means durable, and is also the answer to a duplicate, so that a
 * provider's retry after a lost answer stops.
 */
#include <jansson.h>

#include "http/http-private.h"
#include "http/webhook_sig.h"

static bool have_secret(const struct mr__http_ctx *ctx)
{
    const char *s = ctx->deps.cfg->webhook.secret;
    return s != NULL && s[0] != '\0';
}

void mr__http_webhook_early(const struct mr__http_ctx *ctx,
                            struct mr__http_request *req,
                            struct mr__http_response *resp)
{
    (void)req;
    if (!have_secret(ctx))
        mr__http_problem(resp, 404, "no resource at this path");
}

void mr__http_webhook(const struct mr__http_ctx *ctx,
                      struct mr__http_request *req,
                      struct mr__http_response *resp)
{
    if (!have_secret(ctx)) {
        mr__http_problem(resp, 404, "no resource at this path");
        return;
    }
    struct mr_error err = {0};
    int64_t now_s = mr__http_now_ms(ctx) / 1000;
    int rc = mr_webhook_verify(ctx->deps.cfg->webhook.secret,
                               mr__http_header(req, MR_WEBHOOK_SIG_HEADER),
                               req->body, req->body_len, now_s,
                               ctx->deps.cfg->webhook.tolerance_s, &err);
    if (rc == MR_EINVAL) {
        mr__http_problem(resp, 401, "%s", err.msg);
        /* RFC 9110 11.6.1: a 401 names the scheme the client should use. */
        mr__http_header_add(resp, "WWW-Authenticate",
                            "HMAC-SHA256 realm=\"webhook\", "
                            "header=\"" MR_WEBHOOK_SIG_HEADER "\"");
        return;
    }
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }

    if (!mr__http_media_type_is(mr__http_header(req, "Content-Type"),
                                "application/json")) {
        mr__http_problem(resp, 415, "Content-Type must be application/json");
        return;
    }
    if (req->body_len == 0) {
        mr__http_problem(resp, 400, "the body is empty");
        return;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(req->body, req->body_len, 0, &jerr);
    if (doc == NULL) {
        mr__http_problem(resp, 400, "the body is not JSON: %s (line %d)",
                         jerr.text, jerr.line);
        return;
    }
    bool object = json_is_object(doc);
    json_decref(doc);
    if (!object) {
        mr__http_problem(resp, 400, "the body must be a JSON object");
        return;
    }

    struct mr_intake_result res;
    rc = mr_intake_accept_event(ctx->deps.intake, req->body, req->body_len,
                                &res, &err);
    if (rc == MR_EINVAL) {
        mr__http_problem(resp, 422, "%s", err.msg);
        return;
    }
    if (rc < 0 && rc != MR_ECONFLICT) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    resp->status = 204;
    resp->content_type = NULL;
}
