/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_events.c - REST polling of the outbox (docs/events.md):
 * GET /api/v1/events (cursor polling), POST /api/v1/consumers/{name}/claim
 * and POST /api/v1/consumers/{name}/ack (consumer groups), and
 * GET /api/v1/stream (the same events live, as Server-Sent Events), for
 * the token's tenant only.
 *
 * Cursors are decimal seqs written as strings, so that clients treat them
 * as opaque and a later encoding can change without breaking them. An
 * event's id is "evt_<seq>": seqs are unique across tenants, so the id is
 * stable for redeliveries and never names two events.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http-private.h"
#include "http/ticket_json.h"
#include "util/clock.h"

#define LIMIT_DEFAULT 100
#define TYPES_MAX 16
#define TYPE_LEN_MAX 64
#define LEASE_DEFAULT_S 30
#define LEASE_MAX_S 3600

/* "0".."999999999999999999": a cursor this API gave out. */
static bool parse_cursor(const char *v, int64_t *out)
{
    size_t n = v ? strnlen(v, 20) : 0;
    if (n == 0 || n > 18 || (n > 1 && v[0] == '0'))
        return false;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return true;
}

static void events_array(struct mr_json *j, const struct mr_event_rec *ev,
                         size_t n)
{
    mr_json_key(j, "events");
    mr_json_arr_begin(j);
    for (size_t i = 0; i < n; i++)
        mr_http_event_json(j, &ev[i]);
    mr_json_arr_end(j);
}

static void cursor_value(struct mr_json *j, int64_t seq)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)seq);
    mr_json_cstr(j, buf);
}

/* Splits "a,b" into types (pointers into store, which holds a copy);
 * false with err on an empty or malformed name or too many. */
static bool parse_types(const char *v, char *store, size_t cap,
                        const char **types, size_t *n, struct mr_error *err)
{
    *n = 0;
    if (v == NULL)
        return true;
    size_t len = strnlen(v, cap);
    if (len >= cap) {
        mr_error_set(err, MR_EINVAL, "types is too long");
        return false;
    }
    memcpy(store, v, len + 1);
    char *p = store;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        size_t l = strlen(p);
        bool ok = l >= 1 && l <= TYPE_LEN_MAX;
        for (size_t i = 0; ok && i < l; i++)
            ok = (p[i] >= 'a' && p[i] <= 'z') || p[i] == '.' || p[i] == '_';
        if (!ok || *n == TYPES_MAX) {
            mr_error_set(err, MR_EINVAL,
                         "types is a comma-separated list of at most %d event "
                         "types such as email.received",
                         TYPES_MAX);
            return false;
        }
        types[(*n)++] = p;
        if (comma == NULL)
            return true;
        p = comma + 1;
    }
}

void mr__http_list_events(const struct mr__http_ctx *ctx,
                          struct mr__http_request *req,
                          struct mr__http_response *resp)
{
    struct mr_error err = {0};
    int limit;
    if (mr__http_parse_limit(mr__http_query(req, "limit"), LIMIT_DEFAULT,
                             MR_EVENTS_LIMIT_MAX, &limit, &err) < 0) {
        mr__http_problem(resp, 400, "%s", err.msg);
        return;
    }
    const char *after_s = mr__http_query(req, "after");
    int64_t after = 0;
    if (after_s != NULL && !parse_cursor(after_s, &after)) {
        mr__http_problem(resp, 400,
                         "after is a cursor this API gave out (0 for the "
                         "beginning)");
        return;
    }
    char store[TYPES_MAX * (TYPE_LEN_MAX + 1)];
    const char *types[TYPES_MAX];
    size_t ntypes = 0;
    if (!parse_types(mr__http_query(req, "types"), store, sizeof store, types,
                     &ntypes, &err)) {
        mr__http_problem(resp, 400, "%s", err.msg);
        return;
    }
    struct mr_event_rec *ev = NULL;
    size_t n = 0;
    int rc = mr_store_list_events(ctx->deps.store, req->principal.tenant, after,
                                  limit, types, ntypes, &ev, &n, &err);
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 200, &j);
    mr_json_obj_begin(&j);
    events_array(&j, ev, n);
    /* The high watermark: a filtered page still moves past what it
     * skipped only up to its last match, so nothing is lost. */
    mr_json_key(&j, "next_cursor");
    cursor_value(&j, n > 0 ? ev[n - 1].seq : after);
    mr_json_obj_end(&j);
    mr_event_list_free(ev, n);
}

/* The {name} segment as a string; false (answered 404) when it is not a
 * group name. */
static bool group_name(struct mr__http_request *req,
                       struct mr__http_response *resp,
                       char name[MR_CONSUMER_NAME_MAX + 1])
{
    if (req->id.n == 0 || req->id.n > MR_CONSUMER_NAME_MAX) {
        mr__http_problem(resp, 404, "no such consumer group name");
        return false;
    }
    memcpy(name, req->id.p, req->id.n);
    name[req->id.n] = '\0';
    if (!mr_store_consumer_name_valid(name)) {
        mr__http_problem(resp, 404,
                         "a consumer group name is [A-Za-z0-9._-]{1,%d}",
                         MR_CONSUMER_NAME_MAX);
        return false;
    }
    return true;
}

void mr__http_claim_events(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp)
{
    char name[MR_CONSUMER_NAME_MAX + 1];
    if (!group_name(req, resp, name))
        return;
    struct mr_error err = {0};
    int limit, lease_s;
    if (mr__http_parse_limit(mr__http_query(req, "limit"), LIMIT_DEFAULT,
                             MR_EVENTS_LIMIT_MAX, &limit, &err) < 0) {
        mr__http_problem(resp, 400, "%s", err.msg);
        return;
    }
    if (mr__http_parse_limit(mr__http_query(req, "lease"), LEASE_DEFAULT_S,
                             LEASE_MAX_S, &lease_s, &err) < 0) {
        mr__http_problem(resp, 400,
                         "lease is a whole number of seconds from 1 to %d",
                         LEASE_MAX_S);
        return;
    }
    struct mr_event_lease l;
    int rc = mr_store_claim_events(ctx->deps.store, req->principal.tenant, name,
                                   limit, mr__http_now_ms(ctx),
                                   (int64_t)lease_s * 1000, &l, &err);
    if (rc < 0 && rc != MR_ENOTFOUND) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_json j;
    mr__http_json(resp, 200, &j);
    mr_json_obj_begin(&j);
    events_array(&j, l.events, l.n);
    mr_json_key(&j, "cursor");
    if (rc == 0)
        cursor_value(&j, l.cursor);
    else
        mr_json_null(&j);
    mr_json_key(&j, "lease_id");
    if (rc == 0)
        cursor_value(&j, l.lease_id);
    else
        mr_json_null(&j);
    mr_json_key(&j, "lease_expires_at");
    if (rc == 0) {
        char t[MR__HTTP_TIME_LEN];
        mr__http_time(l.expires_at, t);
        mr_json_cstr(&j, t);
    } else {
        mr_json_null(&j);
    }
    mr_json_obj_end(&j);
    mr_event_lease_clear(&l);
}

/* A cursor or lease id in a JSON body: a decimal string, or a number. */
static bool body_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    return json_is_string(v) && parse_cursor(json_string_value(v), out);
}

void mr__http_ack_events(const struct mr__http_ctx *ctx,
                         struct mr__http_request *req,
                         struct mr__http_response *resp)
{
    char name[MR_CONSUMER_NAME_MAX + 1];
    if (!group_name(req, resp, name))
        return;
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    int64_t cursor = 0, lease_id = 0;
    bool ok = json_is_object(body) &&
              body_int(json_object_get(body, "cursor"), &cursor) && cursor > 0;
    json_t *lid = ok ? json_object_get(body, "lease_id") : NULL;
    if (ok && lid != NULL && !json_is_null(lid))
        ok = body_int(lid, &lease_id) && lease_id > 0;
    json_decref(body);
    if (!ok) {
        mr__http_problem(resp, 400,
                         "the body is {\"cursor\": \"<cursor of the claimed "
                         "batch>\"} with an optional \"lease_id\"");
        return;
    }
    struct mr_error err = {0};
    int rc = mr_store_ack_events(ctx->deps.store, req->principal.tenant, name,
                                 cursor, lease_id, mr__http_now_ms(ctx), &err);
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    resp->status = 204;
}

/* ---- GET /api/v1/stream: Server-Sent Events ----------------------------
 *
 * The answer is a live stream (server.c): pull runs on a pool thread each
 * time the connection is woken, reads the tenant's events after the last
 * one sent from a read connection, and formats them; nothing is read
 * unless the store committed since the last read. Events go out in seq
 * order from a cursor, so a replay after Last-Event-ID and the live tail
 * are one sequence with no gap and no repeat. */

#define STREAM_BATCH 100
#define HEARTBEAT_DEFAULT_S 15
#define HEARTBEAT_MAX_S 60
/* What one pull may format before it is sent: a batch of events. */
#define STREAM_OUT_CAP (64u << 20)

struct sse {
    struct mr_store *store;
    char tenant[sizeof((struct mr_auth_principal *)0)->tenant];
    char typestore[TYPES_MAX * (TYPE_LEN_MAX + 1)];
    const char *types[TYPES_MAX];
    size_t ntypes;
    int64_t last;    /* seq of the last event sent (the cursor) */
    uint64_t gen;    /* the commit generation of the last read */
    bool read_once;  /* a read was done at all */
    bool more;       /* the last read was a full batch: read again */
    int64_t beat_ms; /* heartbeat period */
    int64_t next_beat;
    struct mr_buf out; /* formatted, not yet sent from off */
    size_t off;
};

/* One event block. A raw CR or LF in valid JSON text can only be
 * whitespace between tokens, so it becomes a space and the data stays on
 * one line. */
static void sse_event(struct sse *s, const struct mr_event_rec *e)
{
    struct mr_buf jb;
    mr_buf_init(&jb, STREAM_OUT_CAP);
    struct mr_json j;
    mr_json_init(&j, &jb, false);
    mr_http_event_json(&j, e);
    for (size_t i = 0; i < jb.len; i++)
        if (jb.p[i] == '\n' || jb.p[i] == '\r')
            jb.p[i] = ' ';
    mr_buf_printf(&s->out, "id: %lld\nevent: %s\ndata: ", (long long)e->seq,
                  e->type);
    mr_buf_append(&s->out, jb.p ? jb.p : "", jb.len);
    mr_buf_puts(&s->out, "\n\n");
    mr_buf_release(&jb);
}

/* Reads the events after s->last into s->out. */
static void sse_read(struct sse *s, uint64_t gen)
{
    s->gen = gen;
    s->read_once = true;
    s->more = false;
    struct mr_event_rec *ev = NULL;
    size_t n = 0;
    int rc = mr_store_list_events(s->store, s->tenant, s->last, STREAM_BATCH,
                                  s->types, s->ntypes, &ev, &n, NULL);
    if (rc < 0) {
        /* Tried again at the next wake (a tick at the latest). */
        s->more = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        sse_event(s, &ev[i]);
    if (n > 0)
        s->last = ev[n - 1].seq;
    s->more = n == STREAM_BATCH;
    mr_event_list_free(ev, n);
}

static long sse_pull(void *cls, char *buf, size_t max, uint64_t gen,
                     bool stopping)
{
    struct sse *s = cls;
    if (s->off >= s->out.len) {
        if (stopping)
            return -1;
        mr_buf_reset(&s->out);
        s->off = 0;
        if (!s->read_once || s->more || gen != s->gen)
            sse_read(s, gen);
        int64_t now = mr_clock_mono_ms();
        if (s->out.len == 0 && now >= s->next_beat)
            mr_buf_puts(&s->out, ": keepalive\n\n");
        if (s->out.len == 0)
            return 0;
        s->next_beat = now + s->beat_ms;
    }
    size_t n = s->out.len - s->off;
    if (n > max)
        n = max;
    memcpy(buf, s->out.p + s->off, n);
    s->off += n;
    return (long)n;
}

static void sse_done(void *cls)
{
    struct sse *s = cls;
    mr_buf_release(&s->out);
    free(s);
}

void mr__http_stream_events(const struct mr__http_ctx *ctx,
                            struct mr__http_request *req,
                            struct mr__http_response *resp)
{
    struct mr_error err = {0};
    int beat;
    if (mr__http_parse_limit(mr__http_query(req, "heartbeat"),
                             HEARTBEAT_DEFAULT_S, HEARTBEAT_MAX_S, &beat,
                             &err) < 0) {
        mr__http_problem(resp, 400,
                         "heartbeat is a whole number of seconds from 1 to "
                         "%d",
                         HEARTBEAT_MAX_S);
        return;
    }
    /* Last-Event-ID wins over after=: a browser's EventSource reconnects
     * to the same URL and sends the header. */
    const char *from = mr__http_header(req, "Last-Event-ID");
    const char *what = "the Last-Event-ID header";
    if (from == NULL) {
        from = mr__http_query(req, "after");
        what = "after";
    }
    int64_t after = 0;
    if (from != NULL && !parse_cursor(from, &after)) {
        mr__http_problem(resp, 400,
                         "%s is the id of an event this stream sent (0 for "
                         "the beginning)",
                         what);
        return;
    }
    struct sse *s = mr_xcalloc(1, sizeof *s);
    if (!parse_types(mr__http_query(req, "types"), s->typestore,
                     sizeof s->typestore, s->types, &s->ntypes, &err)) {
        free(s);
        mr__http_problem(resp, 400, "%s", err.msg);
        return;
    }
    s->store = ctx->deps.store;
    snprintf(s->tenant, sizeof s->tenant, "%s", req->principal.tenant);
    /* No cursor: from now on. The generation is taken before the head so
     * that an event committed in between is read at the first pull. */
    s->gen = mr_store_commit_gen(s->store);
    if (from == NULL) {
        int rc = mr_store_events_head(s->store, s->tenant, &after, &err);
        if (rc < 0) {
            free(s);
            mr__http_problem_err(ctx, resp, &err);
            return;
        }
    }
    s->last = after;
    s->beat_ms = (int64_t)beat * 1000;
    s->next_beat = mr_clock_mono_ms() + s->beat_ms;
    mr_buf_init(&s->out, STREAM_OUT_CAP);
    /* The first bytes: the client knows the stream is open (and when to
     * reconnect) before any event. */
    mr_buf_puts(&s->out, "retry: 2000\n: stream open\n\n");
    resp->status = 200;
    resp->content_type = "text/event-stream";
    mr_buf_reset(&resp->body);
    mr__http_header_add(resp, "X-Accel-Buffering", "no");
    resp->stream =
        (struct mr__http_stream){.pull = sse_pull, .done = sse_done, .cls = s};
}
