/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/http without a store: the router, problem JSON and
 * the error mapping, the small parsers (listen address, media type, id,
 * limit, RFC 3339), API tokens, and the daemon itself (server.c) over
 * loopback with a route table of test handlers: 404/405/401/403/415/413,
 * the body cap with and without Content-Length, bodies arriving a byte at
 * a time, HEAD, repeated query parameters and the metrics counters.
 * test_http_api.c drives the real routes against fakes of the store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "http/auth.h"
#include "http/http-private.h"
#include "http_client.h"
#include "util/hash.h"

/* ---- router ------------------------------------------------------------ */

static void h_none(const struct mr__http_ctx *c, struct mr__http_request *q,
                   struct mr__http_response *r)
{
    (void)c;
    (void)q;
    r->status = 204;
}

static const struct mr__http_route table[] = {
    {.method = "GET", .pattern = "/healthz", .handle = h_none},
    {.method = "GET", .pattern = "/api/v1/tickets", .handle = h_none},
    {.method = "GET", .pattern = "/api/v1/tickets/{id}", .handle = h_none},
    {.method = "POST", .pattern = "/api/v1/tickets/{id}", .handle = h_none},
    {.method = "POST", .pattern = "/api/v1/messages", .handle = h_none},
};
#define NTABLE (sizeof table / sizeof table[0])

static enum mr__http_match find(const char *method, const char *path,
                                const struct mr__http_route **rt, mr_span *id,
                                char *allow)
{
    return mr__http_route_find(table, NTABLE, method, path, rt, id, allow, 64);
}

static void router_matches(void **state)
{
    (void)state;
    const struct mr__http_route *rt;
    mr_span id;
    char allow[64];
    assert_int_equal(find("GET", "/healthz", &rt, &id, allow), MR__HTTP_MATCH);
    assert_ptr_equal(rt, &table[0]);
    assert_int_equal(id.n, 0);

    assert_int_equal(find("GET", "/api/v1/tickets/42", &rt, &id, allow),
                     MR__HTTP_MATCH);
    assert_ptr_equal(rt, &table[2]);
    assert_true(mr_span_eq(id, MR_SPAN_LIT("42")));
    assert_int_equal(find("POST", "/api/v1/tickets/abc", &rt, &id, allow),
                     MR__HTTP_MATCH);
    assert_ptr_equal(rt, &table[3]);
    assert_true(mr_span_eq(id, MR_SPAN_LIT("abc")));

    /* HEAD is served by the GET route. */
    assert_int_equal(find("HEAD", "/api/v1/tickets", &rt, &id, allow),
                     MR__HTTP_MATCH);
    assert_ptr_equal(rt, &table[1]);
}

static void router_refuses(void **state)
{
    (void)state;
    const struct mr__http_route *rt;
    mr_span id;
    char allow[64];
    static const char *const not_found[] = {
        "/",
        "",
        "healthz",
        "/healthz/",
        "//healthz",
        "/HEALTHZ",
        "/api/v1/tickets/",
        "/api/v1/tickets//",
        "/api/v1/tickets/1/2",
        "/api/v1",
        "/api/v1/ticketsx",
        "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s",
    };
    for (size_t i = 0; i < sizeof not_found / sizeof not_found[0]; i++) {
        assert_int_equal(find("GET", not_found[i], &rt, &id, allow),
                         MR__HTTP_NOT_FOUND);
        assert_null(rt);
    }
    assert_int_equal(mr__http_route_find(table, NTABLE, "GET", NULL, &rt, &id,
                                         allow, sizeof allow),
                     MR__HTTP_NOT_FOUND);

    assert_int_equal(find("DELETE", "/api/v1/tickets/7", &rt, &id, allow),
                     MR__HTTP_BAD_METHOD);
    assert_string_equal(allow, "GET, HEAD, POST");
    assert_int_equal(find("GET", "/api/v1/messages", &rt, &id, allow),
                     MR__HTTP_BAD_METHOD);
    assert_string_equal(allow, "POST");
    assert_int_equal(find("POST", "/healthz", &rt, &id, allow),
                     MR__HTTP_BAD_METHOD);
    assert_string_equal(allow, "GET, HEAD");
    /* Methods are case-sensitive (RFC 9110 9.1). */
    assert_int_equal(find("get", "/healthz", &rt, &id, allow),
                     MR__HTTP_BAD_METHOD);
}

/* ---- problems and the error mapping ------------------------------------ */

static json_t *parse_body(const struct mr__http_response *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, &e);
    assert_non_null(j);
    return j;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static char logged[256];
static void test_log(void *ctx, const char *msg)
{
    (void)ctx;
    snprintf(logged, sizeof logged, "%s", msg);
}

static void problem_json(void **state)
{
    (void)state;
    struct mr__http_response r;
    mr__http_response_init(&r);
    mr__http_problem(&r, 404, "no ticket %d \"here\"", 7);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.content_type, "application/problem+json");
    json_t *j = parse_body(&r);
    assert_string_equal(jstr(j, "type"), "about:blank");
    assert_string_equal(jstr(j, "title"), "Not Found");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
    assert_string_equal(jstr(j, "detail"), "no ticket 7 \"here\"");
    json_decref(j);

    /* A second problem replaces the first, it does not append. */
    mr__http_problem(&r, 413, "too big");
    j = parse_body(&r);
    assert_string_equal(jstr(j, "title"), "Content Too Large");
    json_decref(j);
    mr__http_response_release(&r);
}

static void error_mapping(void **state)
{
    (void)state;
    assert_int_equal(mr__http_status_for(MR_EINVAL), 400);
    assert_int_equal(mr__http_status_for(MR_ELIMIT), 413);
    assert_int_equal(mr__http_status_for(MR_ENOTFOUND), 404);
    assert_int_equal(mr__http_status_for(MR_ECONFLICT), 409);
    assert_int_equal(mr__http_status_for(MR_EAGAIN), 503);
    assert_int_equal(mr__http_status_for(MR_EIO), 503);
    assert_int_equal(mr__http_status_for(MR_ENOMEM), 500);
    assert_int_equal(mr__http_status_for(12345), 500);
    assert_string_equal(mr__http_reason(415), "Unsupported Media Type");
    assert_string_equal(mr__http_reason(299), "Unknown");

    struct mr__http_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.deps.log = test_log;
    struct mr__http_response r;
    mr__http_response_init(&r);

    /* 4xx: the reason is for the client. */
    struct mr_error err = {0};
    mr_error_set(&err, MR_EINVAL, "cursor is bad");
    logged[0] = '\0';
    mr__http_problem_err(&ctx, &r, &err);
    assert_int_equal(r.status, 400);
    json_t *j = parse_body(&r);
    assert_string_equal(jstr(j, "detail"), "cursor is bad");
    json_decref(j);
    assert_string_equal(logged, "");
    assert_int_equal(r.nheaders, 0);

    /* 5xx: the reason goes to the log, the client gets a generic detail
     * and, for 503, when to come back. */
    mr__http_response_release(&r);
    mr__http_response_init(&r);
    mr_error_set(&err, MR_EIO, "write /secret/path: No space left");
    mr__http_problem_err(&ctx, &r, &err);
    assert_int_equal(r.status, 503);
    j = parse_body(&r);
    assert_null(strstr(jstr(j, "detail"), "/secret/path"));
    json_decref(j);
    assert_string_equal(logged, "write /secret/path: No space left");
    assert_int_equal(r.nheaders, 1);
    assert_string_equal(r.headers[0].name, "Retry-After");
    assert_string_equal(r.headers[0].value, "30");

    mr__http_response_release(&r);
    mr__http_response_init(&r);
    mr_error_set(&err, MR_ENOMEM, "x");
    mr__http_problem_err(NULL, &r, &err);
    assert_int_equal(r.status, 500);
    mr__http_response_release(&r);

    /* Headers past the limit are dropped, long values cut. */
    mr__http_response_init(&r);
    for (int i = 0; i < MR__HTTP_MAX_HEADERS + 3; i++)
        mr__http_header_add(&r, "X-N", "%d", i);
    assert_int_equal(r.nheaders, MR__HTTP_MAX_HEADERS);
    char big[MR__HTTP_HEADER_VALUE + 240];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    mr__http_response_release(&r);
    mr__http_response_init(&r);
    mr__http_header_add(&r, "X-Big", "%s", big);
    assert_int_equal(strlen(r.headers[0].value), MR__HTTP_HEADER_VALUE - 1);
    mr__http_response_release(&r);
}

/* ---- small parsers ----------------------------------------------------- */

static void media_types(void **state)
{
    (void)state;
    assert_true(mr__http_media_type_is("message/rfc822", "message/rfc822"));
    assert_true(mr__http_media_type_is("Message/RFC822", "message/rfc822"));
    assert_true(mr__http_media_type_is(" message/rfc822 ; charset=utf-8",
                                       "message/rfc822"));
    assert_true(mr__http_media_type_is("application/json;charset=UTF-8",
                                       "application/json"));
    assert_false(mr__http_media_type_is(NULL, "application/json"));
    assert_false(mr__http_media_type_is("", "application/json"));
    assert_false(
        mr__http_media_type_is("application/jsonx", "application/json"));
    assert_false(mr__http_media_type_is("text/plain", "message/rfc822"));
    assert_false(mr__http_media_type_is("message/rfc822x", "message/rfc822"));
}

static void ids_and_limits(void **state)
{
    (void)state;
    int64_t id;
    assert_true(mr__http_parse_id(MR_SPAN_LIT("1"), &id));
    assert_int_equal(id, 1);
    assert_true(mr__http_parse_id(MR_SPAN_LIT("999999999999999999"), &id));
    assert_int_equal(id, 999999999999999999LL);
    static const char *const bad[] = {"",
                                      "0",
                                      "01",
                                      "-1",
                                      "+1",
                                      "1x",
                                      "x1",
                                      " 1",
                                      "1.0",
                                      "1e3",
                                      "1000000000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(mr__http_parse_id(mr_span_cstr(bad[i]), &id));

    int v;
    struct mr_error err = {0};
    assert_int_equal(mr__http_parse_limit(NULL, 50, 200, &v, &err), 0);
    assert_int_equal(v, 50);
    assert_int_equal(mr__http_parse_limit("1", 50, 200, &v, &err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(mr__http_parse_limit("200", 50, 200, &v, &err), 0);
    assert_int_equal(v, 200);
    static const char *const badl[] = {"0",  "201", "",        "-5",
                                       "1a", " 3",  "9999999", "2e1"};
    for (size_t i = 0; i < sizeof badl / sizeof badl[0]; i++) {
        assert_int_equal(mr__http_parse_limit(badl[i], 50, 200, &v, &err),
                         MR_EINVAL);
        assert_non_null(strstr(err.msg, "200"));
    }
}

static void rfc3339_times(void **state)
{
    (void)state;
    char t[MR__HTTP_TIME_LEN];
    mr__http_time(0, t);
    assert_string_equal(t, "1970-01-01T00:00:00.000Z");
    mr__http_time(1736157600123LL, t);
    assert_string_equal(t, "2025-01-06T10:00:00.123Z");
    mr__http_time(1709208000007LL, t); /* a leap day */
    assert_string_equal(t, "2024-02-29T12:00:00.007Z");
    mr__http_time(-1, t);
    assert_string_equal(t, "1969-12-31T23:59:59.999Z");
    mr__http_time(253402300799999LL, t);
    assert_string_equal(t, "9999-12-31T23:59:59.999Z");
    /* Parses back as RFC 3339 with our own date parser's rules. */
    assert_int_equal(strlen(t), 24);
}

static void listen_addresses(void **state)
{
    (void)state;
    struct sockaddr_storage sa;
    socklen_t len;
    struct mr_error err = {0};
    assert_int_equal(mr__http_parse_listen("127.0.0.1:8080", &sa, &len, &err),
                     0);
    assert_int_equal(sa.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&sa)->sin_port), 8080);
    assert_int_equal(mr__http_parse_listen("[::1]:0", &sa, &len, &err), 0);
    assert_int_equal(sa.ss_family, AF_INET6);
    assert_int_equal(mr__http_parse_listen("0.0.0.0:65535", &sa, &len, &err),
                     0);
    assert_int_equal(mr__http_parse_listen("localhost:80", &sa, &len, &err), 0);
    static const char *const bad[] = {
        "",           "8080",       ":80",      "::1:80",
        "[::1]80",    "[::1]",      "1.2.3.4:", "1.2.3.4:65536",
        "1.2.3.4:8a", "1.2.3.4:-1", "[::1:80",  "1.2.3.4:123456",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        assert_int_equal(mr__http_parse_listen(bad[i], &sa, &len, &err),
                         MR_EINVAL);
        assert_true(err.msg[0] != '\0');
    }
    assert_int_equal(mr__http_parse_listen(NULL, &sa, &len, &err), MR_EINVAL);
}

/* ---- tokens ------------------------------------------------------------ */

static void tokens(void **state)
{
    (void)state;
    char a[MR_AUTH_TOKEN_LEN + 1], b[MR_AUTH_TOKEN_LEN + 1];
    assert_int_equal(mr_auth_token_new(a, NULL), 0);
    assert_int_equal(mr_auth_token_new(b, NULL), 0);
    assert_int_equal(strlen(a), MR_AUTH_TOKEN_LEN);
    assert_int_equal(strncmp(a, "mrt_", 4), 0);
    for (size_t i = 4; i < MR_AUTH_TOKEN_LEN; i++) {
        char c = a[i];
        assert_true((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '_');
    }
    assert_string_not_equal(a, b);

    /* The hash is SHA-256 hex of the token's bytes. */
    char h[MR_AUTH_HASH_LEN + 1];
    mr_auth_token_hash("abc", h);
    assert_string_equal(
        h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char h2[MR_AUTH_HASH_LEN + 1];
    mr_auth_token_hash(a, h);
    mr_sha256_hex(a, strlen(a), h2);
    assert_string_equal(h, h2);

    char p[MR_AUTH_PREFIX_LEN + 1];
    mr_auth_token_prefix(a, p);
    assert_int_equal(strlen(p), MR_AUTH_PREFIX_LEN);
    assert_memory_equal(p, a, MR_AUTH_PREFIX_LEN);
    mr_auth_token_prefix("mrt_x", p);
    assert_string_equal(p, "mrt_x");

    assert_int_equal(mr_auth_role_parse("admin"), MR_AUTH_ADMIN);
    assert_int_equal(mr_auth_role_parse("agent"), MR_AUTH_AGENT);
    assert_int_equal(mr_auth_role_parse("read"), MR_AUTH_READ);
    assert_int_equal(mr_auth_role_parse("ingest"), MR_AUTH_INGEST);
    assert_int_equal(mr_auth_role_parse("Admin"), 0);
    assert_int_equal(mr_auth_role_parse(NULL), 0);
    assert_string_equal(mr_auth_role_name(MR_AUTH_INGEST), "ingest");
    assert_null(mr_auth_role_name(MR_AUTH_ADMIN | MR_AUTH_READ));
}

static void bearer_syntax(void **state)
{
    (void)state;
    const char *tok;
    size_t len;
    struct mr_error err = {0};
    assert_int_equal(mr_auth_parse_bearer("Bearer mrt_abc-_", &tok, &len, &err),
                     0);
    assert_int_equal(len, 9);
    assert_memory_equal(tok, "mrt_abc-_", 9);
    assert_int_equal(
        mr_auth_parse_bearer("bearer   a.b~c+/==", &tok, &len, &err), 0);
    assert_int_equal(len, 9);
    assert_memory_equal(tok, "a.b~c+/==", 9);
    assert_int_equal(mr_auth_parse_bearer("BEARER x ", &tok, &len, &err), 0);
    assert_int_equal(len, 1);

    static const char *const bad[] = {
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearerx abc",
        "Bearer a b",
        "Bearer =abc",
        "Bearer a=b",
        "Bearer a\"b",
        "Token a",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mr_auth_parse_bearer(bad[i], &tok, &len, &err),
                         MR_EINVAL);
        assert_null(tok);
    }
    assert_int_equal(mr_auth_parse_bearer(NULL, &tok, &len, &err), MR_EINVAL);
    char huge[MR_AUTH_MAX_PRESENTED + 20];
    memcpy(huge, "Bearer ", 7);
    memset(huge + 7, 'a', sizeof huge - 8);
    huge[sizeof huge - 1] = '\0';
    assert_int_equal(mr_auth_parse_bearer(huge, &tok, &len, &err), MR_EINVAL);
    assert_non_null(strstr(err.msg, "too long"));
}

/* ---- the daemon over loopback ------------------------------------------ */

#define CAP 1000

/* GET /echo/{id}: what the handler saw. */
static void h_echo(const struct mr__http_ctx *c, struct mr__http_request *q,
                   struct mr__http_response *r)
{
    (void)c;
    struct mr_json j;
    mr__http_json(r, 200, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "id");
    mr_json_str(&j, q->id);
    mr_json_key(&j, "method");
    mr_json_cstr(&j, q->method);
    mr_json_key(&j, "a");
    mr_json_cstr(&j, mr__http_query(q, "a"));
    const char *vals[3];
    bool more = false;
    size_t n = mr__http_query_all(q, "r", vals, 3, &more);
    mr_json_key(&j, "r");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++)
        mr_json_cstr(&j, vals[i]);
    mr_json_arr_end(&j);
    mr_json_key(&j, "more");
    mr_json_bool(&j, more);
    mr_json_key(&j, "ip");
    mr_json_cstr(&j, q->remote_ip);
    mr_json_key(&j, "x");
    mr_json_cstr(&j, mr__http_header(q, "x-test"));
    mr_json_obj_end(&j);
}

/* POST /body: the body's length and hash, and who sent it. */
static void h_body(const struct mr__http_ctx *c, struct mr__http_request *q,
                   struct mr__http_response *r)
{
    (void)c;
    char hex[65];
    mr_sha256_hex(q->body, q->body_len, hex);
    struct mr_json j;
    mr__http_json(r, 202, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "len");
    mr_json_uint(&j, q->body_len);
    mr_json_key(&j, "sha256");
    mr_json_cstr(&j, hex);
    mr_json_key(&j, "tenant");
    mr_json_cstr(&j, q->principal.tenant);
    mr_json_key(&j, "nul_terminated");
    mr_json_bool(&j, q->body[q->body_len] == '\0');
    mr_json_obj_end(&j);
}

static int early_calls;
static void h_early(const struct mr__http_ctx *c, struct mr__http_request *q,
                    struct mr__http_response *r)
{
    (void)c;
    early_calls++;
    if (mr__http_header(q, "x-refuse"))
        mr__http_problem(r, 404, "switched off");
}

static void h_silent(const struct mr__http_ctx *c, struct mr__http_request *q,
                     struct mr__http_response *r)
{
    (void)c;
    (void)q;
    (void)r;
}

static const struct mr__http_route test_routes[] = {
    {.method = "GET", .pattern = "/echo/{id}", .handle = h_echo},
    {.method = "POST",
     .pattern = "/body",
     .roles = MR_AUTH_ADMIN | MR_AUTH_INGEST,
     .content_type = "text/plain",
     .handle = h_body,
     .counted = true,
     .channel = MR_CH_HTTP},
    {.method = "GET",
     .pattern = "/private",
     .roles = MR_AUTH_READ,
     .handle = h_none},
    {.method = "POST",
     .pattern = "/open",
     .early = h_early,
     .handle = h_body,
     .counted = true,
     .channel = MR_CH_WEBHOOK},
    {.method = "GET", .pattern = "/silent", .handle = h_silent},
};

static int fake_auth(const struct mr__http_ctx *ctx, const char *authz,
                     struct mr_auth_principal *out, struct mr_error *err)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    const char *tok;
    size_t len;
    int rc = mr_auth_parse_bearer(authz, &tok, &len, err);
    if (rc < 0)
        return rc;
    if (len == 10 && memcmp(tok, "good-admin", 10) == 0) {
        out->role = MR_AUTH_ADMIN;
        snprintf(out->tenant, sizeof out->tenant, "t1");
        return 0;
    }
    if (len == 9 && memcmp(tok, "good-read", 9) == 0) {
        out->role = MR_AUTH_READ;
        snprintf(out->tenant, sizeof out->tenant, "t2");
        return 0;
    }
    if (len == 10 && memcmp(tok, "store-down", 10) == 0)
        return mr_error_set(err, MR_EIO, "database is locked at /x/db");
    return mr_error_set(err, MR_ENOTFOUND, "unknown or revoked token");
}

struct server_fixture {
    struct mr_http_server *srv;
    struct mr_metrics metrics;
    int port;
};

static int server_up(void **state)
{
    struct server_fixture *f = calloc(1, sizeof *f);
    struct mr__http_serve_options o = {
        .listen = "127.0.0.1:0",
        .routes = test_routes,
        .nroutes = sizeof test_routes / sizeof test_routes[0],
        .authenticate = fake_auth,
        .threads = 2,
    };
    o.ctx.body_cap = CAP;
    o.ctx.deps.metrics = &f->metrics;
    struct mr_error err = {0};
    if (mr__http_serve(&o, &f->srv, &err) != 0) {
        print_error("cannot start: %s\n", err.msg);
        free(f);
        return -1;
    }
    f->port = mr_http_port(f->srv);
    *state = f;
    return 0;
}

static int server_down(void **state)
{
    struct server_fixture *f = *state;
    mr_http_stop(f->srv);
    free(f);
    return 0;
}

static json_t *reply_json(const struct http_reply *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, 0, &e);
    if (j == NULL)
        print_error("not JSON: %s\n%s\n", e.text, r->raw);
    assert_non_null(j);
    return j;
}

/* Asserts an RFC 9457 problem with this status; returns its detail. */
static void assert_problem(const struct http_reply *r, int status, char *detail,
                           size_t size)
{
    char ct[128];
    assert_int_equal(r->status, status);
    assert_non_null(http_header(r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/problem+json");
    json_t *j = reply_json(r);
    assert_string_equal(jstr(j, "type"), "about:blank");
    assert_string_equal(jstr(j, "title"), mr__http_reason(status));
    assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
    assert_non_null(jstr(j, "detail"));
    if (detail)
        snprintf(detail, size, "%s", jstr(j, "detail"));
    json_decref(j);
}

static void daemon_routes_and_errors(void **state)
{
    struct server_fixture *f = *state;
    struct http_reply r;
    char v[256];
    assert_true(f->port > 0);

    assert_int_equal(http_do(f->port, "GET", "/echo/abc?a=x%20y&r=1&r=2",
                             "X-Test: hello\r\n", NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_non_null(http_header(&r, "Cache-Control", v, sizeof v));
    assert_string_equal(v, "no-store");
    assert_non_null(http_header(&r, "X-Content-Type-Options", v, sizeof v));
    json_t *j = reply_json(&r);
    assert_string_equal(jstr(j, "id"), "abc");
    assert_string_equal(jstr(j, "method"), "GET");
    assert_string_equal(jstr(j, "a"), "x y");
    assert_int_equal(json_array_size(json_object_get(j, "r")), 2);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "r"), 1)), "2");
    assert_false(json_is_true(json_object_get(j, "more")));
    assert_string_equal(jstr(j, "ip"), "127.0.0.1");
    assert_string_equal(jstr(j, "x"), "hello");
    json_decref(j);
    http_reply_free(&r);

    /* More repeated values than the handler takes: it is told. */
    assert_int_equal(
        http_do(f->port, "GET", "/echo/1?r=1&r=2&r=3&r=4", NULL, NULL, 0, &r),
        0);
    j = reply_json(&r);
    assert_true(json_is_true(json_object_get(j, "more")));
    json_decref(j);
    http_reply_free(&r);

    /* HEAD: the headers of GET, no body. */
    assert_int_equal(http_do(f->port, "HEAD", "/echo/1", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    http_reply_free(&r);

    assert_int_equal(http_do(f->port, "GET", "/nothing", NULL, NULL, 0, &r), 0);
    assert_problem(&r, 404, NULL, 0);
    http_reply_free(&r);

    assert_int_equal(http_do(f->port, "DELETE", "/echo/1", NULL, NULL, 0, &r),
                     0);
    assert_problem(&r, 405, NULL, 0);
    assert_non_null(http_header(&r, "Allow", v, sizeof v));
    assert_string_equal(v, "GET, HEAD");
    http_reply_free(&r);

    /* A handler that forgets to answer still gives a problem, not a hang. */
    assert_int_equal(http_do(f->port, "GET", "/silent", NULL, NULL, 0, &r), 0);
    assert_problem(&r, 500, NULL, 0);
    http_reply_free(&r);
}

static void daemon_auth(void **state)
{
    struct server_fixture *f = *state;
    struct http_reply r;
    char v[256], detail[256];

    /* No token: 401 naming the scheme. */
    assert_int_equal(http_do(f->port, "POST", "/body",
                             "Content-Type: text/plain\r\n", "hi", 2, &r),
                     0);
    assert_problem(&r, 401, detail, sizeof detail);
    assert_non_null(http_header(&r, "WWW-Authenticate", v, sizeof v));
    assert_string_equal(v, "Bearer realm=\"mailroom\"");
    http_reply_free(&r);

    /* A bad token: 401 with error="invalid_token". */
    assert_int_equal(http_do(f->port, "POST", "/body",
                             "Authorization: Bearer nope\r\n"
                             "Content-Type: text/plain\r\n",
                             "hi", 2, &r),
                     0);
    assert_problem(&r, 401, detail, sizeof detail);
    assert_non_null(http_header(&r, "WWW-Authenticate", v, sizeof v));
    assert_non_null(strstr(v, "invalid_token"));
    http_reply_free(&r);

    /* Another scheme is no token. */
    assert_int_equal(http_do(f->port, "GET", "/private",
                             "Authorization: Basic dTpw\r\n", NULL, 0, &r),
                     0);
    assert_problem(&r, 401, NULL, 0);
    http_reply_free(&r);

    /* A good token with the wrong role: 403. */
    assert_int_equal(http_do(f->port, "GET", "/private",
                             "Authorization: Bearer good-admin\r\n", NULL, 0,
                             &r),
                     0);
    assert_problem(&r, 403, detail, sizeof detail);
    assert_non_null(strstr(detail, "admin"));
    http_reply_free(&r);
    assert_int_equal(http_do(f->port, "GET", "/private",
                             "Authorization: Bearer good-read\r\n", NULL, 0,
                             &r),
                     0);
    assert_int_equal(r.status, 204);
    http_reply_free(&r);

    /* The token store failing is the server's problem: 503, no detail
     * about where. */
    assert_int_equal(http_do(f->port, "GET", "/private",
                             "Authorization: Bearer store-down\r\n", NULL, 0,
                             &r),
                     0);
    assert_problem(&r, 503, detail, sizeof detail);
    assert_null(strstr(detail, "/x/db"));
    assert_non_null(http_header(&r, "Retry-After", v, sizeof v));
    http_reply_free(&r);

    /* Authenticated, wrong media type: 415. */
    assert_int_equal(http_do(f->port, "POST", "/body",
                             "Authorization: Bearer good-admin\r\n"
                             "Content-Type: application/json\r\n",
                             "{}", 2, &r),
                     0);
    assert_problem(&r, 415, detail, sizeof detail);
    assert_non_null(strstr(detail, "text/plain"));
    http_reply_free(&r);

    /* And right: the handler sees the body and the tenant. */
    assert_int_equal(http_do(f->port, "POST", "/body",
                             "Authorization: bearer good-admin\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n",
                             "hello", 5, &r),
                     0);
    assert_int_equal(r.status, 202);
    json_t *j = reply_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "len")), 5);
    assert_string_equal(jstr(j, "tenant"), "t1");
    assert_true(json_is_true(json_object_get(j, "nul_terminated")));
    json_decref(j);
    http_reply_free(&r);
}

static const char *const admin_text =
    "Authorization: Bearer good-admin\r\nContent-Type: text/plain\r\n";

static void daemon_body_cap(void **state)
{
    struct server_fixture *f = *state;
    struct http_reply r;
    char detail[256], *body = malloc(CAP + 1);
    memset(body, 'b', CAP + 1);

    /* Exactly at the cap: accepted whole. */
    assert_int_equal(
        http_do(f->port, "POST", "/body", admin_text, body, CAP, &r), 0);
    assert_int_equal(r.status, 202);
    json_t *j = reply_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "len")), CAP);
    json_decref(j);
    http_reply_free(&r);

    /* One byte over, declared: refused from the header. */
    assert_int_equal(
        http_do(f->port, "POST", "/body", admin_text, body, CAP + 1, &r), 0);
    assert_problem(&r, 413, detail, sizeof detail);
    assert_non_null(strstr(detail, "1000"));
    http_reply_free(&r);

    /* A huge declared length: refused without sending any body. */
    int fd = http_connect(f->port);
    assert_true(fd >= 0);
    const char *req = "POST /body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Authorization: Bearer good-admin\r\n"
                      "Content-Type: text/plain\r\n"
                      "Content-Length: 99999999999999999999999\r\n\r\n";
    assert_true(http_send_all(fd, req, strlen(req)));
    assert_int_equal(http_read_reply(fd, &r), 0);
    close(fd);
    assert_true(r.status == 413 || r.status == 400);
    http_reply_free(&r);

    /* Chunked, no declared length: the rest is dropped and the answer,
     * once the body ends, is 413. */
    fd = http_connect(f->port);
    assert_true(fd >= 0);
    req = "POST /body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
          "Authorization: Bearer good-admin\r\n"
          "Content-Type: text/plain\r\n"
          "Transfer-Encoding: chunked\r\n\r\n";
    assert_true(http_send_all(fd, req, strlen(req)));
    const char *chunk = "64\r\n"
                        "0123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789"
                        "01234567890123456789\r\n";
    for (int i = 0; i < 30; i++)
        assert_true(http_send_all(fd, chunk, strlen(chunk)));
    assert_true(http_send_all(fd, "0\r\n\r\n", 5));
    assert_int_equal(http_read_reply(fd, &r), 0);
    close(fd);
    assert_problem(&r, 413, NULL, 0);
    http_reply_free(&r);

    /* A chunked body that goes on and on: the connection is closed. */
    fd = http_connect(f->port);
    assert_true(fd >= 0);
    assert_true(http_send_all(fd, req, strlen(req)));
    char big_chunk[16384 + 16];
    int hl = snprintf(big_chunk, sizeof big_chunk, "4000\r\n");
    memset(big_chunk + hl, 'z', 16384);
    memcpy(big_chunk + hl + 16384, "\r\n", 2);
    /* 3.2 MB, well past the cap and the 1 MiB the server drops; the
     * socket buffers may take it all before the server gives up, so the
     * proof is that no answer comes, not that a send fails. */
    bool sent_all = true;
    for (int i = 0; i < 200 && sent_all; i++)
        sent_all = http_send_all(fd, big_chunk, (size_t)hl + 16384 + 2);
    if (sent_all)
        http_send_all(fd, "0\r\n\r\n", 5);
    http_read_reply(fd, &r);
    close(fd);
    assert_int_equal(r.status, 0);
    http_reply_free(&r);

    /* Chunked within the cap: the handler gets the decoded bytes. */
    fd = http_connect(f->port);
    assert_true(fd >= 0);
    assert_true(http_send_all(fd, req, strlen(req)));
    for (int i = 0; i < 3; i++)
        assert_true(http_send_all(fd, chunk, strlen(chunk)));
    assert_true(http_send_all(fd, "0\r\n\r\n", 5));
    assert_int_equal(http_read_reply(fd, &r), 0);
    close(fd);
    assert_int_equal(r.status, 202);
    j = reply_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "len")), 300);
    json_decref(j);
    http_reply_free(&r);
    free(body);
}

/* The body arrives in pieces of every size from 1 byte up; the handler
 * must always see the same bytes. */
static void daemon_body_in_pieces(void **state)
{
    struct server_fixture *f = *state;
    char body[200];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    char want[65];
    mr_sha256_hex(body, sizeof body, want);
    static const size_t pieces[] = {1, 2, 3, 7, 64, 199};
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
        int fd = http_connect(f->port);
        assert_true(fd >= 0);
        char head[512];
        int n = snprintf(head, sizeof head,
                         "POST /body HTTP/1.1\r\nHost: x\r\n"
                         "Connection: close\r\n%sContent-Length: %zu\r\n\r\n",
                         admin_text, sizeof body);
        /* The header itself split too. */
        assert_true(http_send_all(fd, head, 10));
        usleep(1000);
        assert_true(http_send_all(fd, head + 10, (size_t)n - 10));
        for (size_t off = 0; off < sizeof body; off += pieces[p]) {
            size_t k =
                sizeof body - off < pieces[p] ? sizeof body - off : pieces[p];
            assert_true(http_send_all(fd, body + off, k));
            if (pieces[p] < 8 && off % 40 == 0)
                usleep(500);
        }
        struct http_reply r;
        assert_int_equal(http_read_reply(fd, &r), 0);
        close(fd);
        assert_int_equal(r.status, 202);
        json_t *j = reply_json(&r);
        assert_string_equal(jstr(j, "sha256"), want);
        json_decref(j);
        http_reply_free(&r);
    }
}

static void daemon_early_hook_and_metrics(void **state)
{
    struct server_fixture *f = *state;
    struct http_reply r;
    struct mr_metrics *m = &f->metrics;
    uint64_t req0 = atomic_load(&m->http_requests);
    uint64_t rej0 = atomic_load(&m->rejected[MR_CH_HTTP]);
    uint64_t ack0 = atomic_load(&m->acked[MR_CH_HTTP]);
    uint64_t rcv0 = atomic_load(&m->received[MR_CH_HTTP]);

    /* The early hook answers before the body; a 404 from it (a route
     * switched off) does not count as a message offered. */
    early_calls = 0;
    uint64_t wrcv0 = atomic_load(&m->received[MR_CH_WEBHOOK]);
    char big[CAP + 10];
    memset(big, 'x', sizeof big);
    assert_int_equal(http_do(f->port, "POST", "/open", "X-Refuse: 1\r\n", big,
                             sizeof big, &r),
                     0);
    assert_problem(&r, 404, NULL, 0);
    http_reply_free(&r);
    assert_int_equal(early_calls, 1);
    assert_int_equal(atomic_load(&m->received[MR_CH_WEBHOOK]), wrcv0);
    /* Without the refusal, the size check follows. */
    assert_int_equal(
        http_do(f->port, "POST", "/open", NULL, big, sizeof big, &r), 0);
    assert_problem(&r, 413, NULL, 0);
    http_reply_free(&r);
    assert_int_equal(atomic_load(&m->rejected[MR_CH_WEBHOOK]), 1);
    assert_int_equal(http_do(f->port, "POST", "/open", NULL, "ok", 2, &r), 0);
    assert_int_equal(r.status, 202);
    http_reply_free(&r);
    assert_int_equal(early_calls, 3);
    assert_int_equal(atomic_load(&m->acked[MR_CH_WEBHOOK]), 1);

    /* Counted route: one refusal, one success. */
    assert_int_equal(http_do(f->port, "POST", "/body", NULL, "x", 1, &r), 0);
    assert_int_equal(r.status, 401);
    http_reply_free(&r);
    assert_int_equal(http_do(f->port, "POST", "/body", admin_text, "x", 1, &r),
                     0);
    assert_int_equal(r.status, 202);
    http_reply_free(&r);
    assert_int_equal(atomic_load(&m->received[MR_CH_HTTP]) - rcv0, 2);
    assert_int_equal(atomic_load(&m->rejected[MR_CH_HTTP]) - rej0, 1);
    assert_int_equal(atomic_load(&m->acked[MR_CH_HTTP]) - ack0, 1);
    assert_int_equal(atomic_load(&m->http_requests) - req0, 5);
}

static void daemon_start_errors(void **state)
{
    struct server_fixture *f = *state;
    struct mr__http_serve_options o = {
        .routes = test_routes,
        .nroutes = sizeof test_routes / sizeof test_routes[0],
        .authenticate = fake_auth,
        .threads = 1,
    };
    o.ctx.body_cap = CAP;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->port);
    o.listen = addr;
    struct mr_http_server *srv = NULL;
    struct mr_error err = {0};
    /* The port is taken by the fixture's server. */
    assert_int_equal(mr__http_serve(&o, &srv, &err), MR_EIO);
    assert_null(srv);
    assert_non_null(strstr(err.msg, "in use"));
    o.listen = "nonsense";
    assert_int_equal(mr__http_serve(&o, &srv, &err), MR_EINVAL);
    o.listen = "127.0.0.1:0";
    o.ctx.body_cap = 0;
    assert_int_equal(mr__http_serve(&o, &srv, &err), MR_EINVAL);
    o.ctx.body_cap = CAP;
    o.nroutes = 0;
    assert_int_equal(mr__http_serve(&o, &srv, &err), MR_EINVAL);
    /* IPv6 loopback, when the machine has it. */
    o.nroutes = 1;
    o.listen = "[::1]:0";
    if (mr__http_serve(&o, &srv, &err) == 0) {
        assert_true(mr_http_port(srv) > 0);
        mr_http_stop(srv);
    }
    mr_http_stop(NULL);
    assert_int_equal(mr_http_port(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(router_matches),
        cmocka_unit_test(router_refuses),
        cmocka_unit_test(problem_json),
        cmocka_unit_test(error_mapping),
        cmocka_unit_test(media_types),
        cmocka_unit_test(ids_and_limits),
        cmocka_unit_test(rfc3339_times),
        cmocka_unit_test(listen_addresses),
        cmocka_unit_test(tokens),
        cmocka_unit_test(bearer_syntax),
        cmocka_unit_test_setup_teardown(daemon_routes_and_errors, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(daemon_auth, server_up, server_down),
        cmocka_unit_test_setup_teardown(daemon_body_cap, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(daemon_body_in_pieces, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(daemon_early_hook_and_metrics,
                                        server_up, server_down),
        cmocka_unit_test_setup_teardown(daemon_start_errors, server_up,
                                        server_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
