/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_messages.c - POST /api/v1/messages: a raw RFC 5322 message as the
 * body (Content-Type: message/rfc822), for the token's tenant.
 *
 * Recipients come from repeated ?rcpt= parameters or, without any, from
 * the To and Cc fields of the message, read by the MIME parser itself (on
 * the header block only) so that the API sees addresses exactly as the
 * worker will. With a token the tenant is fixed, so the recipients are
 * recorded on the job, not routed.
 *
 * 202 is answered only after mr_intake_accept_raw returned 0: the raw
 * message is in the blob store and its job is committed.
 */
#include <jansson.h>
#include <string.h>

#include "http/http-private.h"
#include "mime/mime.h"

#define RCPT_MAX_LEN 320 /* RFC 5321 4.5.3.1: 64 + 1 + 255 */

struct rcpts {
    char **v; /* owned copies */
    size_t n, max;
};

static void rcpts_free(struct rcpts *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    free(r->v);
}

/* Something that can be an address: local@domain, printable ASCII or
 * UTF-8, no spaces, brackets or controls. Routing decides the rest. */
static bool plausible_address(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > RCPT_MAX_LEN)
        return false;
    const char *at = strrchr(s, '@');
    if (at == NULL || at == s || at[1] == '\0')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',')
            return false;
    }
    return true;
}

static int rcpts_from_query(const struct mr__http_request *req, struct rcpts *r,
                            struct mr_error *err)
{
    const char **vals = mr_xcalloc(r->max, sizeof *vals);
    bool more = false;
    size_t n = mr__http_query_all(req, "rcpt", vals, r->max, &more);
    int rc = 0;
    if (more) {
        rc = mr_error_set(err, MR_EINVAL,
                          "too many rcpt parameters (at most %zu)", r->max);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (!plausible_address(vals[i])) {
                rc =
                    mr_error_set(err, MR_EINVAL,
                                 "rcpt parameter %zu is not an address", i + 1);
                break;
            }
            r->v[r->n++] = mr_xstrndup(vals[i], strlen(vals[i]));
        }
    }
    free(vals);
    return rc;
}

/* The header block: up to the first empty line, or everything when the
 * message has no body. */
/* Parses the header block through intake's reader. MR_EINVAL when it is
 * not a message at all (then the body is refused whatever the recipients).
 * When want_rcpts, the plausible To and Cc addresses (at most r->max in
 * all) are appended to r. */
static int read_header(const char *raw, size_t len, bool want_rcpts,
                       struct rcpts *r, struct mr_error *err)
{
    char **list = NULL;
    size_t n = 0;
    int rc = mr_intake_header_recipients(raw, len, want_rcpts ? r->max : 0,
                                         &list, &n, err);
    for (size_t i = 0; i < n; i++) {
        if (r->n < r->max && plausible_address(list[i])) {
            r->v[r->n++] = list[i];
            list[i] = NULL;
        }
    }
    mr_intake_free_list(list, n);
    return rc;
}

void mr__http_post_message(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp)
{
    if (req->body_len == 0) {
        mr__http_problem(resp, 400, "the body is empty: send the raw message");
        return;
    }
    const struct mr_config *cfg = ctx->deps.cfg;
    struct rcpts r = {0};
    r.max = cfg->limits.max_recipients > 0 ? (size_t)cfg->limits.max_recipients
                                           : 100;
    r.v = mr_xcalloc(r.max, sizeof *r.v);
    struct mr_error err = {0};

    int rc = rcpts_from_query(req, &r, &err);
    if (rc < 0) {
        mr__http_problem(resp, 400, "%s", err.msg);
        goto out;
    }
    rc = read_header(req->body, req->body_len, r.n == 0, &r, &err);
    if (rc == MR_ELIMIT) {
        mr__http_problem(resp, 413, "%s", err.msg);
        goto out;
    }
    if (rc < 0) {
        mr__http_problem(resp, 400, "not an RFC 5322 message: %s", err.msg);
        goto out;
    }

    struct mr_intake_env env = {
        .channel = MR_CH_HTTP,
        .tenant = req->principal.tenant,
        .rcpt = (const char *const *)r.v,
        .nrcpt = r.n,
        .remote_ip = req->remote_ip[0] ? req->remote_ip : NULL,
    };
    struct mr_intake_result res;
    memset(&res, 0, sizeof res);
    rc = mr_intake_accept_raw(ctx->deps.intake, &env, req->body, req->body_len,
                              &res, &err);
    if (rc == MR_ENOTFOUND) {
        mr__http_problem(resp, 422, "%s",
                         err.msg[0] ? err.msg : "no recipient");
        goto out;
    }
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
        goto out;
    }

    struct mr_json j;
    mr__http_json(resp, 202, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "message");
    mr_json_obj_begin(&j);
    mr_json_key(&j, "raw_sha256");
    mr_json_cstr(&j, res.raw_sha256);
    mr_json_obj_end(&j);
    mr_json_key(&j, "jobs");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < res.njobs && i < MR_INTAKE_MAX_JOBS; i++)
        mr_json_int(&j, res.job_ids[i]);
    mr_json_arr_end(&j);
    mr_json_obj_end(&j);
out:
    rcpts_free(&r);
}
