/* SPDX-License-Identifier: Apache-2.0 */
/*
 * problem.c - building answers: JSON bodies, RFC 9457 problem details, and
 * the one table that maps mailroom's error codes to HTTP statuses.
 *
 * Problems use type "about:blank", whose title is by definition the
 * status's reason phrase (RFC 9457 4.2.1); what went wrong is in
 * "detail", written for the person reading the client's log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http/http-private.h"

void mr__http_response_init(struct mr__http_response *r)
{
    memset(r, 0, sizeof *r);
    mr_buf_init(&r->body, MR__HTTP_RESPONSE_CAP);
}

void mr__http_response_release(struct mr__http_response *r)
{
    mr_buf_release(&r->body);
    if (r->stream.done)
        r->stream.done(r->stream.cls);
    memset(&r->stream, 0, sizeof r->stream);
}

void mr__http_header_add(struct mr__http_response *r, const char *name,
                         const char *fmt, ...)
{
    if (r->nheaders == MR__HTTP_MAX_HEADERS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->headers[r->nheaders].value,
              sizeof r->headers[r->nheaders].value, fmt, ap);
    va_end(ap);
    r->headers[r->nheaders].name = name;
    r->nheaders++;
}

void mr__http_json(struct mr__http_response *r, int status, struct mr_json *j)
{
    r->status = status;
    r->content_type = "application/json";
    mr_buf_reset(&r->body);
    mr_json_init(j, &r->body, false);
}

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Content"},
    {500, "Internal Server Error"},
    {503, "Service Unavailable"},
};

const char *mr__http_reason(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}

static void problem_v(struct mr__http_response *r, int status,
                      const char *field, const char *fmt, va_list ap)
{
    char detail[512];
    vsnprintf(detail, sizeof detail, fmt, ap);
    r->status = status;
    r->content_type = "application/problem+json";
    mr_buf_reset(&r->body);
    struct mr_json j;
    mr_json_init(&j, &r->body, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "type");
    mr_json_cstr(&j, "about:blank");
    mr_json_key(&j, "title");
    mr_json_cstr(&j, mr__http_reason(status));
    mr_json_key(&j, "status");
    mr_json_int(&j, status);
    mr_json_key(&j, "detail");
    mr_json_cstr(&j, detail);
    if (field) {
        mr_json_key(&j, "field");
        mr_json_cstr(&j, field);
    }
    mr_json_obj_end(&j);
}

void mr__http_problem(struct mr__http_response *r, int status, const char *fmt,
                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_v(r, status, NULL, fmt, ap);
    va_end(ap);
}

void mr__http_problem_field(struct mr__http_response *r, int status,
                            const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_v(r, status, field, fmt, ap);
    va_end(ap);
}

/* The protocol mapping of enum mr_errcode (error.h says what each means
 * for the caller; this is that, in HTTP). */
int mr__http_status_for(int code)
{
    switch (code) {
    case MR_EINVAL: return 400;
    case MR_ELIMIT: return 413;
    case MR_ENOTFOUND: return 404;
    case MR_ECONFLICT: return 409;
    case MR_EAGAIN:
    case MR_EIO: return 503;
    default: return 500;
    }
}

/* Seconds a client should wait before retrying a 503: long enough for a
 * full disk or a busy writer to clear, short enough not to stall mail. */
#define RETRY_AFTER_S 30

void mr__http_problem_err(const struct mr__http_ctx *ctx,
                          struct mr__http_response *r,
                          const struct mr_error *err)
{
    int code = err ? err->code : MR_EIO;
    int status = mr__http_status_for(code);
    const char *msg = (err && err->msg[0]) ? err->msg : mr_strerror(code);
    if (status < 500) {
        mr__http_problem(r, status, "%s", msg);
        return;
    }
    /* Internal reasons (paths, database errors) go to the operator's log,
     * not to the client. */
    if (ctx && ctx->deps.log)
        ctx->deps.log(ctx->deps.log_ctx, msg);
    if (status == 503) {
        mr__http_problem(r, status,
                         "storage is temporarily unavailable; retry later");
        mr__http_header_add(r, "Retry-After", "%d", RETRY_AFTER_S);
    } else {
        mr__http_problem(r, status, "internal error");
    }
}
