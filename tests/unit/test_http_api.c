/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the real routes of src/http (mr_http_start) over
 * loopback, with small fakes of the store, the blob store and intake
 * defined here. The fakes stand in for exactly the functions the HTTP
 * objects call, so the linker never pulls the real store/blob/intake
 * objects into this program; if src/http starts calling one more of
 * them, add its fake here. End-to-end tests against the real modules
 * live in tests/e2e.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "http/auth.h"
#include "http/http.h"
#include "http/webhook_sig.h"
#include "http_client.h"
#include "util/hash.h"

/* ---- fakes --------------------------------------------------------------
 * One test runs at a time and each request completes before the next, so
 * plain variables are enough (the daemon's threads touch them only while
 * the test waits for an answer). */

static struct {
    int store_rc; /* returned by every store call when < 0 */
    int blob_rc;
    int intake_rc;
    bool duplicate;
    /* what intake was given last */
    int calls;
    enum mr_channel channel;
    char tenant[65];
    char rcpt[8][128];
    size_t nrcpt;
    char remote_ip[64];
    size_t len;
    char body_sha[65];
} fk;

struct mr_store {
    int unused;
};
struct mr_blob {
    int unused;
};
struct mr_intake {
    int unused;
};

static const struct {
    const char *token, *tenant, *role;
} fake_tokens[] = {
    {"tok-admin-a", "a", "admin"}, {"tok-ingest-a", "a", "ingest"},
    {"tok-read-a", "a", "read"},   {"tok-agent-a", "a", "agent"},
    {"tok-read-b", "b", "read"},   {"tok-odd-role", "a", "superuser"},
};

int mr_store_token_find(struct mr_store *st, const char *hash_hex,
                        struct mr_token_rec *out, struct mr_error *err)
{
    (void)st;
    memset(out, 0, sizeof *out);
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "fake store is down");
    for (size_t i = 0; i < sizeof fake_tokens / sizeof fake_tokens[0]; i++) {
        char h[65];
        mr_auth_token_hash(fake_tokens[i].token, h);
        if (strcmp(h, hash_hex) == 0) {
            out->id = (int64_t)i + 1;
            out->tenant = strdup(fake_tokens[i].tenant);
            out->role = strdup(fake_tokens[i].role);
            return 0;
        }
    }
    return mr_error_set(err, MR_ENOTFOUND, "no such token");
}

void mr_token_rec_clear(struct mr_token_rec *t)
{
    free(t->tenant);
    free(t->role);
    free(t->label);
    free(t->prefix);
    memset(t, 0, sizeof *t);
}

int mr_store_ping(struct mr_store *st, struct mr_error *err)
{
    (void)st;
    return fk.store_rc < 0 ? mr_error_set(err, fk.store_rc, "db at /x down")
                           : 0;
}

int mr_store_stats(struct mr_store *st, struct mr_store_stats *out,
                   struct mr_error *err)
{
    (void)st;
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "down");
    out->jobs_ready = 4;
    out->jobs_leased = 1;
    out->jobs_dead = 2;
    out->messages = 9;
    out->tickets = 3;
    return 0;
}

int mr_blob_check_writable(struct mr_blob *b, struct mr_error *err)
{
    (void)b;
    return fk.blob_rc < 0 ? mr_error_set(err, fk.blob_rc, "EROFS /blobs") : 0;
}

/* Tenant "a" has tickets 1, 2, 3; tenant "b" has ticket 10. */
static void fill_ticket(struct mr_ticket_view *t, int64_t id,
                        const char *tenant)
{
    memset(t, 0, sizeof *t);
    t->id = id;
    t->number = id;
    t->tenant = strdup(tenant);
    char s[64];
    snprintf(s, sizeof s, "Subject %lld", (long long)id);
    t->subject = strdup(s);
    t->status = strdup("new");
    t->priority = strdup("normal");
    t->queue = id == 1 ? strdup("billing") : NULL;
    t->tags_json = strdup(id == 1 ? "[\"vip\",\"eu\"]" : "[]");
    t->requester = strdup("alice@customer.example");
    t->message_count = id == 1 ? 2 : 1;
    t->created_at = 1736157600000LL + id;
    t->updated_at = 1736157600000LL + 1000 * id;
}

int mr_store_list_tickets(struct mr_store *st, const char *tenant,
                          const struct mr_ticket_filter *filter,
                          const char *cursor, int limit,
                          struct mr_ticket_view **tickets, size_t *n,
                          char **next_cursor, struct mr_error *err)
{
    (void)st;
    *tickets = NULL;
    *n = 0;
    *next_cursor = NULL;
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "down");
    int64_t ids_a[] = {3, 2, 1}, ids_b[] = {10};
    int64_t *ids = strcmp(tenant, "a") == 0 ? ids_a : ids_b;
    size_t total = strcmp(tenant, "a") == 0 ? 3 : 1;
    size_t start = 0;
    if (cursor) {
        if (strncmp(cursor, "c", 1) != 0 || cursor[1] < '0' ||
            cursor[1] > '9' || cursor[2] != '\0')
            return mr_error_set(err, MR_EINVAL, "bad cursor");
        start = (size_t)(cursor[1] - '0');
    }
    struct mr_ticket_view *v = calloc(total, sizeof *v);
    size_t k = 0;
    for (size_t i = start; i < total && k < (size_t)limit; i++)
        fill_ticket(&v[k++], ids[i], tenant);
    if (start + k < total) {
        char c[8];
        snprintf(c, sizeof c, "c%zu", start + k);
        *next_cursor = strdup(c);
    }
    *tickets = v;
    *n = k;
    return 0;
}

static const char *const event1 =
    "{\"from\":{\"email\":\"alice@customer.example\",\"name\":\"Alice\"},"
    "\"to\":[{\"email\":\"support@a.example\",\"name\":null}],"
    "\"cc\":[{\"email\":\"bob@customer.example\",\"name\":\"Bob\"}],"
    "\"date\":\"2025-01-06T09:59:00Z\","
    "\"attachments\":[{\"filename\":\"a.pdf\",\"content_type\":"
    "\"application/pdf\",\"size\":1234,\"sha256\":\"ab12\","
    "\"safe_filename\":\"a.pdf\",\"disposition\":\"attachment\"}],"
    "\"headers\":{\"x-secret\":\"not shown\"}}";

int mr_store_get_ticket(struct mr_store *st, const char *tenant, int64_t id,
                        struct mr_ticket_view *out, struct mr_error *err)
{
    (void)st;
    memset(out, 0, sizeof *out);
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "down");
    bool in_a = id >= 1 && id <= 3 && strcmp(tenant, "a") == 0;
    bool in_b = id == 10 && strcmp(tenant, "b") == 0;
    if (!in_a && !in_b)
        return mr_error_set(err, MR_ENOTFOUND, "no ticket");
    fill_ticket(out, id, tenant);
    out->nmessages = (size_t)out->message_count;
    out->messages = calloc(out->nmessages, sizeof *out->messages);
    for (size_t i = 0; i < out->nmessages; i++) {
        struct mr_message_view *m = &out->messages[i];
        m->id = 100 + (int64_t)i;
        m->ticket_id = id;
        m->message_id = strdup(i == 0 ? "first@customer.example"
                                      : "second@customer.example");
        m->direction = strdup("inbound");
        m->from_email = strdup("carol@other.example");
        m->from_name = NULL;
        m->subject = strdup("Order 1234");
        m->text = strdup("Hello");
        m->html = i == 0 ? strdup("<p>Hello</p>") : NULL;
        /* The second message has a broken event: the API falls back to
         * the columns. */
        m->event_json = strdup(i == 0 ? event1 : "not json");
        m->received_at = 1736157600500LL + (int64_t)i;
    }
    return 0;
}

static void message_view_clear(struct mr_message_view *m)
{
    free(m->message_id);
    free(m->direction);
    free(m->from_email);
    free(m->from_name);
    free(m->subject);
    free(m->text);
    free(m->html);
    free(m->event_json);
    free(m->raw_sha256);
}

void mr_ticket_view_clear(struct mr_ticket_view *t)
{
    free(t->tenant);
    free(t->subject);
    free(t->status);
    free(t->priority);
    free(t->queue);
    free(t->assignee);
    free(t->tags_json);
    free(t->requester);
    for (size_t i = 0; i < t->nmessages; i++)
        message_view_clear(&t->messages[i]);
    free(t->messages);
    memset(t, 0, sizeof *t);
}

void mr_ticket_list_free(struct mr_ticket_view *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mr_ticket_view_clear(&t[i]);
    free(t);
}

int mr_intake_accept_raw(struct mr_intake *in, const struct mr_intake_env *env,
                         const char *raw, size_t len,
                         struct mr_intake_result *res, struct mr_error *err)
{
    (void)in;
    fk.calls++;
    fk.channel = env->channel;
    snprintf(fk.tenant, sizeof fk.tenant, "%s", env->tenant ? env->tenant : "");
    fk.nrcpt = env->nrcpt;
    for (size_t i = 0; i < env->nrcpt && i < 8; i++)
        snprintf(fk.rcpt[i], sizeof fk.rcpt[i], "%s", env->rcpt[i]);
    snprintf(fk.remote_ip, sizeof fk.remote_ip, "%s",
             env->remote_ip ? env->remote_ip : "");
    fk.len = len;
    mr_sha256_hex(raw, len, fk.body_sha);
    if (fk.intake_rc < 0)
        return mr_error_set(err, fk.intake_rc, "fake intake refuses");
    memset(res, 0, sizeof *res);
    memcpy(res->raw_sha256, fk.body_sha, sizeof res->raw_sha256);
    res->job_ids[0] = 7;
    res->job_ids[1] = 8;
    res->njobs = 2;
    return 0;
}

int mr_intake_accept_event(struct mr_intake *in, const char *json, size_t len,
                           struct mr_intake_result *res, struct mr_error *err)
{
    (void)in;
    fk.calls++;
    fk.len = len;
    mr_sha256_hex(json, len, fk.body_sha);
    if (fk.intake_rc < 0)
        return mr_error_set(err, fk.intake_rc, "event has no from");
    memset(res, 0, sizeof *res);
    res->duplicate = fk.duplicate;
    return 0;
}

/* ---- fixture ------------------------------------------------------------ */

#define NOW_MS 1736157600000LL
static int64_t fixed_now(void)
{
    return NOW_MS;
}

#define SECRET "whsec_mailroom_test"

struct api {
    struct mr_config cfg;
    struct mr_store store;
    struct mr_blob blob;
    struct mr_intake intake;
    struct mr_metrics metrics;
    struct mr_http_server *srv;
    int port;
    char logged[512];
};

static void api_log(void *ctx, const char *msg)
{
    struct api *a = ctx;
    snprintf(a->logged, sizeof a->logged, "%s", msg);
}

static int api_up(void **state)
{
    memset(&fk, 0, sizeof fk);
    struct api *a = calloc(1, sizeof *a);
    a->cfg.limits.max_recipients = 5;
    a->cfg.limits.http_body_size = 64 * 1024;
    a->cfg.limits.max_connections = 50;
    a->cfg.webhook.secret = SECRET;
    a->cfg.webhook.tolerance_s = 300;
    struct mr_http_deps deps = {
        .cfg = &a->cfg,
        .store = &a->store,
        .blob = &a->blob,
        .intake = &a->intake,
        .metrics = &a->metrics,
        .now_ms = fixed_now,
        .threads = 2,
        .log = api_log,
        .log_ctx = a,
    };
    struct mr_error err = {0};
    if (mr_http_start("127.0.0.1:0", &deps, &a->srv, &err) != 0) {
        print_error("cannot start: %s\n", err.msg);
        free(a);
        return -1;
    }
    a->port = mr_http_port(a->srv);
    *state = a;
    return 0;
}

static int api_down(void **state)
{
    struct api *a = *state;
    mr_http_stop(a->srv);
    free(a);
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

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void expect_problem(const struct http_reply *r, int status,
                           const char *detail_has)
{
    char ct[128];
    if (r->status != status)
        print_error("answer: %s\n", r->raw);
    assert_int_equal(r->status, status);
    assert_non_null(http_header(r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/problem+json");
    json_t *j = reply_json(r);
    assert_string_equal(jstr(j, "type"), "about:blank");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
    if (detail_has && strstr(jstr(j, "detail"), detail_has) == NULL) {
        print_error("detail '%s' lacks '%s'\n", jstr(j, "detail"), detail_has);
        fail();
    }
    json_decref(j);
}

/* ---- health, readiness, metrics ---------------------------------------- */

static void health_ready_metrics(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    char v[256];

    assert_int_equal(http_do(a->port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = reply_json(&r);
    assert_string_equal(jstr(j, "status"), "ok");
    json_decref(j);
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    http_reply_free(&r);

    fk.blob_rc = MR_EIO;
    assert_int_equal(http_do(a->port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
    expect_problem(&r, 503, "blob store");
    http_reply_free(&r);
    assert_string_equal(a->logged, "EROFS /blobs");

    fk.store_rc = MR_EIO;
    assert_int_equal(http_do(a->port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
    expect_problem(&r, 503, "database");
    expect_problem(&r, 503, "blob store");
    http_reply_free(&r);
    fk.blob_rc = 0;
    assert_int_equal(http_do(a->port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
    expect_problem(&r, 503, "database");
    assert_non_null(http_header(&r, "Retry-After", v, sizeof v));
    http_reply_free(&r);

    /* With the store down the gauges are left out, the counters stay. */
    assert_int_equal(http_do(a->port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "mailroom_queue_ready"));
    assert_non_null(strstr(r.body, "mailroom_http_requests_total"));
    http_reply_free(&r);
    fk.store_rc = 0;

    assert_int_equal(http_do(a->port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(http_header(&r, "Content-Type", v, sizeof v));
    assert_non_null(strstr(v, "text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "\nmailroom_queue_ready 4\n"));
    assert_non_null(strstr(r.body, "\nmailroom_http_requests_total 7\n"));
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "POST", "/healthz", NULL, "", 0, &r), 0);
    expect_problem(&r, 405, NULL);
    http_reply_free(&r);
}

/* ---- POST /api/v1/messages ---------------------------------------------- */

static const char *const msg =
    "From: Alice <alice@customer.example>\r\n"
    "To: Support <support@a.example>, sales@a.example\r\n"
    "Cc: =?utf-8?q?Bob?= <bob@customer.example>\r\n"
    "Subject: Order 1234\r\n"
    "Message-ID: <m1@customer.example>\r\n"
    "\r\n"
    "To: not-a-header@body.example\r\n";

static const char *const ingest = "Authorization: Bearer tok-ingest-a\r\n"
                                  "Content-Type: message/rfc822\r\n";

static void post_message_ok(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, msg,
                             strlen(msg), &r),
                     0);
    assert_int_equal(r.status, 202);
    json_t *j = reply_json(&r);
    char want[65];
    mr_sha256_hex(msg, strlen(msg), want);
    assert_string_equal(jstr(json_object_get(j, "message"), "raw_sha256"),
                        want);
    json_t *jobs = json_object_get(j, "jobs");
    assert_int_equal(json_array_size(jobs), 2);
    assert_int_equal(json_integer_value(json_array_get(jobs, 0)), 7);
    json_decref(j);
    http_reply_free(&r);

    /* What intake got: the token's tenant, To and Cc (not the body's
     * lookalike line), the client's address, the whole raw message. */
    assert_int_equal(fk.calls, 1);
    assert_int_equal(fk.channel, MR_CH_HTTP);
    assert_string_equal(fk.tenant, "a");
    assert_int_equal(fk.nrcpt, 3);
    assert_string_equal(fk.rcpt[0], "support@a.example");
    assert_string_equal(fk.rcpt[1], "sales@a.example");
    assert_string_equal(fk.rcpt[2], "bob@customer.example");
    assert_string_equal(fk.remote_ip, "127.0.0.1");
    assert_string_equal(fk.body_sha, want);
    assert_int_equal(a->metrics.acked[MR_CH_HTTP], 1);

    /* ?rcpt= wins over the header, admin may ingest too. */
    assert_int_equal(
        http_do(
            a->port, "POST",
            "/api/v1/messages?rcpt=help%2Bteam%40a.example&rcpt=x@y.example",
            "Authorization: Bearer tok-admin-a\r\n"
            "Content-Type: message/rfc822\r\n",
            msg, strlen(msg), &r),
        0);
    assert_int_equal(r.status, 202);
    http_reply_free(&r);
    assert_int_equal(fk.nrcpt, 2);
    assert_string_equal(fk.rcpt[0], "help+team@a.example");
    assert_string_equal(fk.rcpt[1], "x@y.example");

    /* More To/Cc addresses than max_recipients: the first ones are
     * recorded. */
    const char *many = "To: a1@x.example, a2@x.example, a3@x.example,"
                       " a4@x.example, a5@x.example, a6@x.example\r\n"
                       "Subject: many\r\n\r\nbody\r\n";
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, many,
                             strlen(many), &r),
                     0);
    assert_int_equal(r.status, 202);
    http_reply_free(&r);
    assert_int_equal(fk.nrcpt, 5);
    /* A message without recipients is still taken (the tenant is the
     * token's); a header with no body at all too. */
    const char *bare = "Subject: none\r\nFrom: z@z.example";
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, bare,
                             strlen(bare), &r),
                     0);
    assert_int_equal(r.status, 202);
    http_reply_free(&r);
    assert_int_equal(fk.nrcpt, 0);
}

static void post_message_refusals(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    char v[256];

    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages",
                             "Content-Type: message/rfc822\r\n", msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 401, NULL);
    assert_non_null(http_header(&r, "WWW-Authenticate", v, sizeof v));
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages",
                             "Authorization: Bearer tok-nope\r\n"
                             "Content-Type: message/rfc822\r\n",
                             msg, strlen(msg), &r),
                     0);
    expect_problem(&r, 401, NULL);
    http_reply_free(&r);

    /* A stored role this build does not know is no token. */
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages",
                             "Authorization: Bearer tok-odd-role\r\n"
                             "Content-Type: message/rfc822\r\n",
                             msg, strlen(msg), &r),
                     0);
    expect_problem(&r, 401, NULL);
    http_reply_free(&r);

    static const char *const not_ingest[] = {"tok-read-a", "tok-agent-a"};
    for (size_t i = 0; i < 2; i++) {
        char h[256];
        snprintf(h, sizeof h,
                 "Authorization: Bearer %s\r\n"
                 "Content-Type: message/rfc822\r\n",
                 not_ingest[i]);
        assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", h, msg,
                                 strlen(msg), &r),
                         0);
        expect_problem(&r, 403, NULL);
        http_reply_free(&r);
    }

    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages",
                             "Authorization: Bearer tok-ingest-a\r\n"
                             "Content-Type: text/plain\r\n",
                             msg, strlen(msg), &r),
                     0);
    expect_problem(&r, 415, "message/rfc822");
    http_reply_free(&r);

    assert_int_equal(
        http_do(a->port, "POST", "/api/v1/messages", ingest, "", 0, &r), 0);
    expect_problem(&r, 400, "empty");
    http_reply_free(&r);

    const char *garbage = "this is not a message at all";
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest,
                             garbage, strlen(garbage), &r),
                     0);
    expect_problem(&r, 400, "RFC 5322");
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "POST",
                             "/api/v1/messages?rcpt=a@x&rcpt=b@x&rcpt=c@x"
                             "&rcpt=d@x&rcpt=e@x&rcpt=f@x",
                             ingest, msg, strlen(msg), &r),
                     0);
    expect_problem(&r, 400, "at most 5");
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "POST",
                             "/api/v1/messages?rcpt=no-at-sign", ingest, msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 400, "rcpt");
    http_reply_free(&r);
    assert_int_equal(http_do(a->port, "POST",
                             "/api/v1/messages?rcpt=a%20b@x.example", ingest,
                             msg, strlen(msg), &r),
                     0);
    expect_problem(&r, 400, "rcpt");
    http_reply_free(&r);
    assert_int_equal(fk.calls, 0);

    size_t big = 64 * 1024 + 1;
    char *huge = malloc(big);
    memset(huge, 'x', big);
    memcpy(huge, "Subject: x\r\n\r\n", 14);
    assert_int_equal(
        http_do(a->port, "POST", "/api/v1/messages", ingest, huge, big, &r), 0);
    expect_problem(&r, 413, NULL);
    http_reply_free(&r);
    free(huge);

    /* Intake's answers. */
    fk.intake_rc = MR_EIO;
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 503, "retry");
    assert_non_null(http_header(&r, "Retry-After", v, sizeof v));
    http_reply_free(&r);
    assert_string_equal(a->logged, "fake intake refuses");
    fk.intake_rc = MR_EAGAIN;
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 503, NULL);
    http_reply_free(&r);
    fk.intake_rc = MR_ELIMIT;
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 413, NULL);
    http_reply_free(&r);
    fk.intake_rc = MR_ENOTFOUND;
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 422, NULL);
    http_reply_free(&r);

    /* The way-in counters: 2 tempfails, everything else a refusal. */
    assert_int_equal(a->metrics.tempfail[MR_CH_HTTP], 2);
    assert_int_equal(a->metrics.acked[MR_CH_HTTP], 0);
    assert_int_equal(a->metrics.rejected[MR_CH_HTTP], 14);
    assert_int_equal(a->metrics.received[MR_CH_HTTP], 16);
}

/* ---- POST /inbox/webhook ------------------------------------------------ */

static const char *const event = "{\"message_id\":\"<w1@x>\",\"from\":{"
                                 "\"email\":\"alice@customer.example\"},"
                                 "\"subject\":\"Hi\",\"text\":\"Hello\"}";

static int post_webhook(struct api *a, const char *sig, const char *ctype,
                        const char *body, struct http_reply *r)
{
    char h[512];
    int n = 0;
    if (sig)
        n += snprintf(h + n, sizeof h - (size_t)n, "X-Email-Signature: %s\r\n",
                      sig);
    if (ctype)
        n += snprintf(h + n, sizeof h - (size_t)n, "Content-Type: %s\r\n",
                      ctype);
    h[n] = '\0';
    return http_do(a->port, "POST", "/inbox/webhook", h, body, strlen(body), r);
}

static void webhook_accepts(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    char sig[128];
    mr_webhook_sign(SECRET, -1, event, strlen(event), sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    http_reply_free(&r);
    assert_int_equal(fk.calls, 1);
    char want[65];
    mr_sha256_hex(event, strlen(event), want);
    assert_string_equal(fk.body_sha, want);

    /* Timestamped, within the window; a duplicate is also 204. */
    fk.duplicate = true;
    mr_webhook_sign(SECRET, NOW_MS / 1000 - 60, event, strlen(event), sig,
                    sizeof sig, NULL);
    assert_int_equal(
        post_webhook(a, sig, "application/json; charset=utf-8", event, &r), 0);
    assert_int_equal(r.status, 204);
    http_reply_free(&r);
    assert_int_equal(fk.calls, 2);
    assert_int_equal(a->metrics.acked[MR_CH_WEBHOOK], 2);
}

static void webhook_refusals(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    char sig[128], v[256];

    assert_int_equal(post_webhook(a, NULL, "application/json", event, &r), 0);
    expect_problem(&r, 401, "missing");
    assert_non_null(http_header(&r, "WWW-Authenticate", v, sizeof v));
    http_reply_free(&r);

    mr_webhook_sign("wrong", -1, event, strlen(event), sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    expect_problem(&r, 401, "does not match");
    http_reply_free(&r);

    /* A replay: a good signature an hour old. */
    mr_webhook_sign(SECRET, NOW_MS / 1000 - 3600, event, strlen(event), sig,
                    sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    expect_problem(&r, 401, "window");
    http_reply_free(&r);

    /* Signed, but not JSON by type or by content. */
    mr_webhook_sign(SECRET, -1, event, strlen(event), sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "text/plain", event, &r), 0);
    expect_problem(&r, 415, "application/json");
    http_reply_free(&r);
    assert_int_equal(post_webhook(a, sig, NULL, event, &r), 0);
    expect_problem(&r, 415, NULL);
    http_reply_free(&r);
    const char *bad = "{\"from\": ";
    mr_webhook_sign(SECRET, -1, bad, strlen(bad), sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", bad, &r), 0);
    expect_problem(&r, 400, "not JSON");
    http_reply_free(&r);
    const char *arr = "[1,2]";
    mr_webhook_sign(SECRET, -1, arr, strlen(arr), sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", arr, &r), 0);
    expect_problem(&r, 400, "object");
    http_reply_free(&r);
    mr_webhook_sign(SECRET, -1, "", 0, sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", "", &r), 0);
    expect_problem(&r, 400, "empty");
    http_reply_free(&r);
    assert_int_equal(fk.calls, 0);

    mr_webhook_sign(SECRET, -1, event, strlen(event), sig, sizeof sig, NULL);
    fk.intake_rc = MR_EINVAL;
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    expect_problem(&r, 422, "no from");
    http_reply_free(&r);
    fk.intake_rc = MR_EIO;
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    expect_problem(&r, 503, NULL);
    http_reply_free(&r);
    fk.intake_rc = 0;

    /* A bearer token is no substitute for the signature. */
    assert_int_equal(http_do(a->port, "POST", "/inbox/webhook",
                             "Authorization: Bearer tok-admin-a\r\n"
                             "Content-Type: application/json\r\n",
                             event, strlen(event), &r),
                     0);
    expect_problem(&r, 401, NULL);
    http_reply_free(&r);

    /* No secret configured: the route is not there. */
    a->cfg.webhook.secret = NULL;
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    expect_problem(&r, 404, NULL);
    http_reply_free(&r);
    a->cfg.webhook.secret = SECRET;
    assert_int_equal(a->metrics.acked[MR_CH_WEBHOOK], 0);
    assert_int_equal(a->metrics.tempfail[MR_CH_WEBHOOK], 1);
    assert_int_equal(a->metrics.rejected[MR_CH_WEBHOOK], 10);
}

/* ---- GET /api/v1/tickets ------------------------------------------------ */

static void list_tickets(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    const char *ra = "Authorization: Bearer tok-read-a\r\n";

    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/tickets?limit=2", ra, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = reply_json(&r);
    json_t *ts = json_object_get(j, "tickets");
    assert_int_equal(json_array_size(ts), 2);
    json_t *t = json_array_get(ts, 0);
    assert_int_equal(json_integer_value(json_object_get(t, "id")), 3);
    assert_int_equal(json_integer_value(json_object_get(t, "number")), 3);
    assert_string_equal(jstr(t, "subject"), "Subject 3");
    assert_string_equal(jstr(t, "status"), "new");
    assert_string_equal(jstr(t, "priority"), "normal");
    assert_true(json_is_null(json_object_get(t, "queue")));
    assert_true(json_is_null(json_object_get(t, "assignee")));
    assert_true(json_is_array(json_object_get(t, "tags")));
    assert_string_equal(jstr(t, "requester"), "alice@customer.example");
    assert_int_equal(json_integer_value(json_object_get(t, "message_count")),
                     1);
    assert_string_equal(jstr(t, "created_at"), "2025-01-06T10:00:00.003Z");
    assert_string_equal(jstr(t, "updated_at"), "2025-01-06T10:00:03.000Z");
    const char *next = jstr(j, "next_cursor");
    assert_non_null(next);
    char target[128];
    snprintf(target, sizeof target, "/api/v1/tickets?limit=2&cursor=%s", next);
    json_decref(j);
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "GET", target, ra, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    j = reply_json(&r);
    ts = json_object_get(j, "tickets");
    assert_int_equal(json_array_size(ts), 1);
    t = json_array_get(ts, 0);
    assert_int_equal(json_integer_value(json_object_get(t, "id")), 1);
    assert_string_equal(jstr(t, "queue"), "billing");
    assert_int_equal(json_array_size(json_object_get(t, "tags")), 2);
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    http_reply_free(&r);

    /* The other tenant sees only its own. */
    assert_int_equal(http_do(a->port, "GET", "/api/v1/tickets",
                             "Authorization: Bearer tok-read-b\r\n", NULL, 0,
                             &r),
                     0);
    j = reply_json(&r);
    ts = json_object_get(j, "tickets");
    assert_int_equal(json_array_size(ts), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(ts, 0), "id")), 10);
    json_decref(j);
    http_reply_free(&r);

    static const char *const bad[] = {
        "/api/v1/tickets?limit=0", "/api/v1/tickets?limit=201",
        "/api/v1/tickets?limit=x", "/api/v1/tickets?cursor=zz",
        "/api/v1/tickets?cursor=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(http_do(a->port, "GET", bad[i], ra, NULL, 0, &r), 0);
        expect_problem(&r, 400, NULL);
        http_reply_free(&r);
    }

    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/tickets", NULL, NULL, 0, &r), 0);
    expect_problem(&r, 401, NULL);
    http_reply_free(&r);
    assert_int_equal(http_do(a->port, "GET", "/api/v1/tickets",
                             "Authorization: Bearer tok-ingest-a\r\n", NULL, 0,
                             &r),
                     0);
    expect_problem(&r, 403, NULL);
    http_reply_free(&r);
    /* admin and agent read too. */
    assert_int_equal(http_do(a->port, "GET", "/api/v1/tickets",
                             "Authorization: Bearer tok-agent-a\r\n", NULL, 0,
                             &r),
                     0);
    assert_int_equal(r.status, 200);
    http_reply_free(&r);

    fk.store_rc = MR_EIO;
    assert_int_equal(http_do(a->port, "GET", "/api/v1/tickets",
                             "Authorization: Bearer tok-admin-a\r\n", NULL, 0,
                             &r),
                     0);
    expect_problem(&r, 503, NULL);
    http_reply_free(&r);
    fk.store_rc = 0;
}

static void get_ticket(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    const char *ra = "Authorization: Bearer tok-admin-a\r\n";

    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/tickets/1", ra, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = reply_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 1);
    assert_string_equal(jstr(j, "queue"), "billing");
    json_t *ms = json_object_get(j, "messages");
    assert_int_equal(json_array_size(ms), 2);

    json_t *m = json_array_get(ms, 0);
    assert_int_equal(json_integer_value(json_object_get(m, "id")), 100);
    assert_string_equal(jstr(m, "message_id"), "first@customer.example");
    assert_string_equal(jstr(m, "direction"), "inbound");
    assert_string_equal(jstr(json_object_get(m, "from"), "email"),
                        "alice@customer.example");
    assert_string_equal(jstr(json_object_get(m, "from"), "name"), "Alice");
    assert_string_equal(
        jstr(json_array_get(json_object_get(m, "to"), 0), "email"),
        "support@a.example");
    assert_string_equal(
        jstr(json_array_get(json_object_get(m, "cc"), 0), "name"), "Bob");
    assert_string_equal(jstr(m, "subject"), "Order 1234");
    assert_string_equal(jstr(m, "date"), "2025-01-06T09:59:00Z");
    assert_string_equal(jstr(m, "received_at"), "2025-01-06T10:00:00.500Z");
    assert_string_equal(jstr(m, "text"), "Hello");
    assert_string_equal(jstr(m, "html"), "<p>Hello</p>");
    json_t *att = json_array_get(json_object_get(m, "attachments"), 0);
    assert_string_equal(jstr(att, "filename"), "a.pdf");
    assert_string_equal(jstr(att, "content_type"), "application/pdf");
    assert_int_equal(json_integer_value(json_object_get(att, "size")), 1234);
    assert_string_equal(jstr(att, "sha256"), "ab12");
    /* Only the documented attachment fields, and no raw headers. */
    assert_int_equal(json_object_size(att), 4);
    assert_null(json_object_get(m, "headers"));

    /* A message whose stored event does not parse still shows its
     * columns. */
    m = json_array_get(ms, 1);
    assert_string_equal(jstr(json_object_get(m, "from"), "email"),
                        "carol@other.example");
    assert_true(
        json_is_null(json_object_get(json_object_get(m, "from"), "name")));
    assert_int_equal(json_array_size(json_object_get(m, "to")), 0);
    assert_true(json_is_null(json_object_get(m, "date")));
    assert_true(json_is_null(json_object_get(m, "html")));
    assert_int_equal(json_array_size(json_object_get(m, "attachments")), 0);
    json_decref(j);
    http_reply_free(&r);

    /* Another tenant's ticket, a missing one and non-ids are all 404. */
    static const char *const missing[] = {
        "/api/v1/tickets/10",
        "/api/v1/tickets/4",
        "/api/v1/tickets/abc",
        "/api/v1/tickets/01",
        "/api/v1/tickets/-1",
        "/api/v1/tickets/1.0",
        "/api/v1/tickets/99999999999999999999",
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        assert_int_equal(http_do(a->port, "GET", missing[i], ra, NULL, 0, &r),
                         0);
        expect_problem(&r, 404, "ticket");
        http_reply_free(&r);
    }
    assert_int_equal(http_do(a->port, "GET", "/api/v1/tickets/10",
                             "Authorization: Bearer tok-read-b\r\n", NULL, 0,
                             &r),
                     0);
    assert_int_equal(r.status, 200);
    http_reply_free(&r);

    assert_int_equal(
        http_do(a->port, "DELETE", "/api/v1/tickets/1", ra, NULL, 0, &r), 0);
    expect_problem(&r, 405, NULL);
    http_reply_free(&r);
}

static void start_errors(void **state)
{
    (void)state;
    struct mr_http_server *srv = NULL;
    struct mr_error err = {0};
    assert_int_equal(mr_http_start("127.0.0.1:0", NULL, &srv, &err), MR_EINVAL);
    struct mr_http_deps deps = {0};
    assert_int_equal(mr_http_start("127.0.0.1:0", &deps, &srv, &err),
                     MR_EINVAL);
    assert_null(srv);
    /* A config with no limits at all still gets a body cap. */
    struct mr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct mr_store st;
    struct mr_blob b;
    struct mr_intake in;
    deps.cfg = &cfg;
    deps.store = &st;
    deps.blob = &b;
    deps.intake = &in;
    assert_int_equal(mr_http_start("127.0.0.1:0", &deps, &srv, &err), 0);
    mr_http_stop(srv);
    assert_int_equal(mr_http_start("300.1.1.1:80", &deps, &srv, &err),
                     MR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(health_ready_metrics, api_up, api_down),
        cmocka_unit_test_setup_teardown(post_message_ok, api_up, api_down),
        cmocka_unit_test_setup_teardown(post_message_refusals, api_up,
                                        api_down),
        cmocka_unit_test_setup_teardown(webhook_accepts, api_up, api_down),
        cmocka_unit_test_setup_teardown(webhook_refusals, api_up, api_down),
        cmocka_unit_test_setup_teardown(list_tickets, api_up, api_down),
        cmocka_unit_test_setup_teardown(get_ticket, api_up, api_down),
        cmocka_unit_test(start_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
