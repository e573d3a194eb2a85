/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_tokens.c - POST /api/v1/tokens/exchange: a long-lived token buys a
 * short-lived one (docs/api.md), for places where a token may leak or
 * linger: a browser, a CI job, a script handed to someone else.
 *
 * The new token has the tenant of the one presented and its role or a
 * narrower one (mr_auth_role_within), never a wider one. It expires after
 * ttl seconds (default 15 minutes, at most an hour) and dies at once when
 * its parent is revoked. A short-lived token cannot be exchanged again:
 * otherwise a leaked one could be renewed forever, and the parent's
 * revocation would be the only way to stop it.
 */
#include <jansson.h>
#include <string.h>

#include "http/http-private.h"

#define TTL_DEFAULT_S 900
#define TTL_MAX_S 3600

/* The optional body {"role": NAME, "ttl": SECONDS}. Returns 0, or the
 * status of the problem written into resp. */
static int parse_body(const struct mr__http_request *req,
                      struct mr__http_response *resp, unsigned *role,
                      int64_t *ttl)
{
    if (req->body_len == 0)
        return 0;
    if (!mr__http_media_type_is(mr__http_header(req, "Content-Type"),
                                "application/json")) {
        mr__http_problem(resp, 415,
                         "Content-Type must be application/json (or send no "
                         "body)");
        return 415;
    }
    json_error_t je;
    json_t *doc =
        json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    int status = 0;
    if (!json_is_object(doc)) {
        mr__http_problem(resp, 400, "the body must be a JSON object");
        status = 400;
    }
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (status != 0)
            break;
        if (strcmp(key, "role") == 0) {
            unsigned r = json_is_string(v)
                             ? mr_auth_role_parse(json_string_value(v))
                             : 0;
            if (!json_is_string(v)) {
                mr__http_problem_field(resp, 400, "role",
                                       "role: must be a string");
                status = 400;
            } else if (r == 0) {
                mr__http_problem_field(resp, 422, "role",
                                       "role: admin, agent, read or ingest");
                status = 422;
            } else {
                *role = r;
            }
        } else if (strcmp(key, "ttl") == 0) {
            if (!json_is_integer(v)) {
                mr__http_problem_field(resp, 400, "ttl",
                                       "ttl: must be an integer (seconds)");
                status = 400;
            } else if (json_integer_value(v) < 1 ||
                       json_integer_value(v) > TTL_MAX_S) {
                mr__http_problem_field(resp, 422, "ttl", "ttl: 1 to %d seconds",
                                       TTL_MAX_S);
                status = 422;
            } else {
                *ttl = json_integer_value(v);
            }
        } else {
            mr__http_problem_field(resp, 400, key,
                                   "unknown field '%.64s' (role, ttl)", key);
            status = 400;
        }
    }
    json_decref(doc);
    return status;
}

void mr__http_exchange_token(const struct mr__http_ctx *ctx,
                             struct mr__http_request *req,
                             struct mr__http_response *resp)
{
    const struct mr_auth_principal *pr = &req->principal;
    if (pr->expires_at > 0) {
        mr__http_problem(resp, 403,
                         "a short-lived token cannot be exchanged; exchange "
                         "the long-lived token it came from");
        return;
    }
    unsigned role = pr->role;
    int64_t ttl = TTL_DEFAULT_S;
    if (parse_body(req, resp, &role, &ttl) != 0)
        return;
    if (!mr_auth_role_within(role, pr->role)) {
        mr__http_problem_field(resp, 403, "role",
                               "role: a token with role '%s' cannot be "
                               "exchanged for role '%s'",
                               mr_auth_role_name(pr->role),
                               mr_auth_role_name(role));
        return;
    }
    struct mr_error err = {0};
    char token[MR_AUTH_TOKEN_LEN + 1];
    char hash[MR_AUTH_HASH_LEN + 1];
    char prefix[MR_AUTH_PREFIX_LEN + 1];
    if (mr_auth_token_new(token, &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    mr_auth_token_hash(token, hash);
    mr_auth_token_prefix(token, prefix);
    int64_t expires = mr__http_now_ms(ctx) + ttl * 1000;
    int rc = mr_store_token_add_child(ctx->deps.store, pr->token_id, pr->tenant,
                                      mr_auth_role_name(role), hash, prefix,
                                      expires, NULL, &err);
    if (rc == MR_ENOTFOUND) {
        /* Revoked between the check and now. */
        mr__http_problem(resp, 401, "unknown or revoked token");
    } else if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
    } else {
        char when[MR__HTTP_TIME_LEN];
        mr__http_time(expires, when);
        struct mr_json j;
        mr__http_json(resp, 201, &j);
        mr_json_obj_begin(&j);
        mr_json_key(&j, "token");
        mr_json_cstr(&j, token);
        mr_json_key(&j, "token_type");
        mr_json_cstr(&j, "Bearer");
        mr_json_key(&j, "role");
        mr_json_cstr(&j, mr_auth_role_name(role));
        mr_json_key(&j, "expires_at");
        mr_json_cstr(&j, when);
        mr_json_key(&j, "expires_in");
        mr_json_int(&j, ttl);
        mr_json_obj_end(&j);
    }
    /* memset of a dying buffer may be optimised away. */
    explicit_bzero(token, sizeof token);
}
