/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http-private.h - what the files of src/http share: the request and
 * response as handlers see them, the route table, the router, the problem
 * and JSON helpers, and the small parsers of query values.
 *
 * Layering (each file links only what it needs, so tests can take the
 * pure parts alone):
 *   router.c, response.c, params.c, listen.c   pure, no MHD, no store
 *   server.c     libmicrohttpd wiring: sockets, body cap, dispatch; knows
 *                routes only as a table handed to mr__http_serve
 *   routes.c     the real route table and mr_http_start
 *   h_*.c        one handler file per resource (store, intake, blob)
 *   ticket_json.c  the ticket documents, shared with `mailroom tickets`
 *
 * A handler never talks to libmicrohttpd: it reads the request through
 * mr__http_header / mr__http_query and fills a mr__http_response, which
 * server.c turns into the answer. Every error answer goes through
 * mr__http_problem, so all of them are application/problem+json.
 */
#ifndef MR_HTTP_PRIVATE_H
#define MR_HTTP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http/auth.h"
#include "http/http.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/span.h"

/* ---- context, request, response --------------------------------------- */

/* Shared by every request of one server; read-only after start. */
struct mr__mhd;
struct mr__health_cache; /* h_health.c */

struct mr__http_ctx {
    struct mr_http_deps deps;
    uint64_t body_cap; /* bytes a request body may have */
    /* The health routes' shared readings (thread-safe); owned by the
     * server (mr_http_start makes it, mr_http_stop frees it). NULL: every
     * request checks anew. */
    struct mr__health_cache *health;
};

struct mr__http_request {
    const char *method; /* as sent ("GET", "POST", "HEAD", ...) */
    const char *path;   /* decoded path, no query string */
    mr_span id;         /* the {id} segment of the route, if any */
    const char *body;   /* NUL-terminated; "" when none */
    size_t body_len;
    struct mr_auth_principal principal; /* when the route needs a token */
    char remote_ip[64];                 /* "" when unknown */
    void *conn; /* struct MHD_Connection, for server.c only */
    const struct mr__mhd *mhd; /* its libmicrohttpd table, server.c only */
};

#define MR__HTTP_MAX_HEADERS 6
/* Room for a Content-Disposition with a 255-byte UTF-8 file name in both
 * its ASCII and its percent-encoded form (MR_ATTACH_DISPOSITION_MAX). */
#define MR__HTTP_HEADER_VALUE 1200

/* A body that libmicrohttpd pulls piece by piece as the socket takes it
 * (a download from the blob store), instead of one built in `body`.
 * read copies up to max bytes at pos (< size) into buf and returns how
 * many, 0 on failure (the connection is then cut). done releases cls
 * exactly once, whether the answer was sent or not. */
struct mr__http_stream {
    uint64_t size;
    size_t (*read)(void *cls, uint64_t pos, char *buf, size_t max);
    /* Or a live body of unknown length (sent chunked; read and size
     * unused), such as the event stream: pull copies up to max bytes into
     * buf and returns how many, 0 when it has nothing now, or -1 to end
     * the answer. After a 0 the connection sleeps (suspended, holding no
     * thread) until the store's commit generation differs from gen or
     * about MR__HTTP_LIVE_TICK_MS pass, and pull is asked again. gen is
     * mr_store_commit_gen read just before the call. stopping: the server
     * is shutting down; pull should return -1. At most MR__HTTP_LIVE_MAX
     * live answers run at once; beyond, the server answers 503 itself
     * (done is still called). */
    long (*pull)(void *cls, char *buf, size_t max, uint64_t gen,
                 bool stopping);
    void (*done)(void *cls);
    void *cls;
};

struct mr__http_response {
    int status;               /* 0 until a handler answers */
    const char *content_type; /* a static string, or one that lives as long
                                 as the response (stream.cls); NULL for no
                                 body */
    struct mr_buf body;
    struct mr__http_stream stream; /* read NULL: the body is `body` */
    size_t nheaders;
    struct {
        const char *name; /* a static string */
        char value[MR__HTTP_HEADER_VALUE];
    } headers[MR__HTTP_MAX_HEADERS];
};

/* Response bodies are built in memory: API pages are bounded by their
 * limit parameter; this cap is the backstop. */
#define MR__HTTP_RESPONSE_CAP (64u << 20)

void mr__http_response_init(struct mr__http_response *r);
void mr__http_response_release(struct mr__http_response *r);
/* Adds a header (a later one with the same name is sent too). Silently
 * dropped past MR__HTTP_MAX_HEADERS, values cut at MR__HTTP_HEADER_VALUE
 * - 1 bytes. Cache-Control and X-Content-Type-Options set here replace
 * the server's defaults (no-store, nosniff). */
void mr__http_header_add(struct mr__http_response *r, const char *name,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Starts a JSON answer: sets status and content type, empties the body
 * and initialises j on it. */
void mr__http_json(struct mr__http_response *r, int status, struct mr_json *j);
/* An RFC 9457 problem: {"type":"about:blank","title":<reason phrase>,
 * "status":status,"detail":<fmt...>}. Replaces anything written so far. */
void mr__http_problem(struct mr__http_response *r, int status, const char *fmt,
                      ...) __attribute__((format(printf, 3, 4)));
/* The same with an extension member "field": the request field (a JSON
 * key of the body) the problem is about, for clients to point at. */
void mr__http_problem_field(struct mr__http_response *r, int status,
                            const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The problem for an MR_E* error (problem.c's mapping table): EINVAL 400,
 * ELIMIT 413, ENOTFOUND 404, ECONFLICT 409, EAGAIN/EIO 503 (with
 * Retry-After), anything else 500. For 4xx the detail is err->msg; for
 * 5xx a generic text, and err->msg goes to ctx->deps.log (ctx may be
 * NULL). */
void mr__http_problem_err(const struct mr__http_ctx *ctx,
                          struct mr__http_response *r,
                          const struct mr_error *err);
int mr__http_status_for(int code);
/* "Not Found" for 404, ...; "Unknown" for codes we never send. */
const char *mr__http_reason(int status);

/* ---- accessors (server.c; valid while the handler runs) --------------- */

/* A request header (case-insensitive name), or NULL. */
const char *mr__http_header(const struct mr__http_request *req,
                            const char *name);
/* The first value of a query parameter, or NULL. */
const char *mr__http_query(const struct mr__http_request *req,
                           const char *name);
/* Up to max values of a repeated query parameter, in order; *more is set
 * when there were more. Returns how many were stored. */
size_t mr__http_query_all(const struct mr__http_request *req, const char *name,
                          const char **vals, size_t max, bool *more);

/* ---- routes ------------------------------------------------------------ */

typedef void (*mr__http_handler_fn)(const struct mr__http_ctx *ctx,
                                    struct mr__http_request *req,
                                    struct mr__http_response *resp);

struct mr__http_route {
    const char *method;         /* "GET" (also answers HEAD), "POST",
                                   "PATCH", "DELETE" */
    const char *pattern;        /* "/api/v1/tickets/{id}": literal segments
                                   and at most one "{id}" */
    unsigned roles;             /* enum mr_auth_role bits allowed; 0: no
                                   bearer token (public or self-checked) */
    const char *content_type;   /* media type required (415 otherwise),
                                   checked after auth, before the body;
                                   NULL: none */
    mr__http_handler_fn early;  /* optional, at header time, before the
                                   body: answers by setting resp->status */
    mr__http_handler_fn handle; /* with the whole body */
    /* A way in for messages: every answer of this route is counted in
     * deps.metrics as received and then acked (2xx), tempfail (503) or
     * rejected (any other error), for channel. */
    bool counted;
    enum mr_channel channel;
};

enum mr__http_match {
    MR__HTTP_MATCH = 0,
    MR__HTTP_NOT_FOUND,  /* no pattern matches the path */
    MR__HTTP_BAD_METHOD, /* a pattern matches, not for this method */
};

/* Finds the route for method and path. On MATCH, *route and *id (the
 * {id} segment, or an empty span) are set. On BAD_METHOD, allow gets the
 * methods the path accepts ("GET, HEAD, POST"), NUL-terminated. Paths are
 * compared byte for byte per segment; a trailing '/' or an empty segment
 * never matches; {id} matches one non-empty segment. At most
 * MR__HTTP_MAX_SEGMENTS segments are looked at. */
#define MR__HTTP_MAX_SEGMENTS 16
enum mr__http_match mr__http_route_find(const struct mr__http_route *routes,
                                        size_t n, const char *method,
                                        const char *path,
                                        const struct mr__http_route **route,
                                        mr_span *id, char *allow,
                                        size_t allow_size);

/* ---- the daemon (server.c) -------------------------------------------- */

/* How server.c asks who a request is; the real one is mr_auth_check on
 * deps.store. Returns 0, or MR_EINVAL/MR_ENOTFOUND (401), MR_EIO/MR_EAGAIN
 * (503). */
typedef int (*mr__http_auth_fn)(const struct mr__http_ctx *ctx,
                                const char *authorization,
                                struct mr_auth_principal *out,
                                struct mr_error *err);

struct mr__http_serve_options {
    const char *listen;
    const struct mr__http_route *routes; /* borrowed; must outlive srv */
    size_t nroutes;
    struct mr__http_ctx ctx;       /* copied */
    mr__http_auth_fn authenticate; /* required when a route has roles */
    int threads;                   /* 0: MR_HTTP_THREADS_DEFAULT */
    int connection_limit;          /* 0: 100 */
    int connection_timeout_s;      /* idle; 0: 60 */
};

int mr__http_serve(const struct mr__http_serve_options *o,
                   struct mr_http_server **out, struct mr_error *err);

/* ---- handlers (h_*.c) and the route table (routes.c) ------------------ */

/* How long a health reading (database write, blob probe, clamd PING) is
 * reused, and the cap on the PING's whole conversation. */
#define MR__HTTP_HEALTH_TTL_MS 5000
#define MR__HTTP_HEALTH_PING_MS 2000
struct mr__health_cache *mr__http_health_cache_new(void);
void mr__http_health_cache_free(struct mr__health_cache *hc);

void mr__http_healthz(const struct mr__http_ctx *ctx,
                      struct mr__http_request *req,
                      struct mr__http_response *resp);
void mr__http_health(const struct mr__http_ctx *ctx,
                     struct mr__http_request *req,
                     struct mr__http_response *resp);
void mr__http_readyz(const struct mr__http_ctx *ctx,
                     struct mr__http_request *req,
                     struct mr__http_response *resp);
void mr__http_metrics(const struct mr__http_ctx *ctx,
                      struct mr__http_request *req,
                      struct mr__http_response *resp);
void mr__http_post_message(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp);
void mr__http_webhook_early(const struct mr__http_ctx *ctx,
                            struct mr__http_request *req,
                            struct mr__http_response *resp);
void mr__http_webhook(const struct mr__http_ctx *ctx,
                      struct mr__http_request *req,
                      struct mr__http_response *resp);
void mr__http_list_tickets(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp);
void mr__http_list_ignored(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp);
/* h_ignored.c: POST /api/v1/ignored/{id}/release (agents, admins). */
void mr__http_release_ignored(const struct mr__http_ctx *ctx,
                              struct mr__http_request *req,
                              struct mr__http_response *resp);
void mr__http_get_ticket(const struct mr__http_ctx *ctx,
                         struct mr__http_request *req,
                         struct mr__http_response *resp);
void mr__http_get_raw_message(const struct mr__http_ctx *ctx,
                              struct mr__http_request *req,
                              struct mr__http_response *resp);
void mr__http_get_attachment(const struct mr__http_ctx *ctx,
                             struct mr__http_request *req,
                             struct mr__http_response *resp);
void mr__http_rescan_attachment(const struct mr__http_ctx *ctx,
                                struct mr__http_request *req,
                                struct mr__http_response *resp);
void mr__http_rescan_attachments(const struct mr__http_ctx *ctx,
                                 struct mr__http_request *req,
                                 struct mr__http_response *resp);
void mr__http_admin_reload(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp);
void mr__http_get_inline(const struct mr__http_ctx *ctx,
                         struct mr__http_request *req,
                         struct mr__http_response *resp);
void mr__http_list_events(const struct mr__http_ctx *ctx,
                          struct mr__http_request *req,
                          struct mr__http_response *resp);
void mr__http_claim_events(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp);
void mr__http_ack_events(const struct mr__http_ctx *ctx,
                         struct mr__http_request *req,
                         struct mr__http_response *resp);
/* h_webhooks.c: subscriptions and their deliveries (admin). */
void mr__http_create_webhook(const struct mr__http_ctx *ctx,
                             struct mr__http_request *req,
                             struct mr__http_response *resp);
void mr__http_list_webhooks(const struct mr__http_ctx *ctx,
                            struct mr__http_request *req,
                            struct mr__http_response *resp);
void mr__http_get_webhook(const struct mr__http_ctx *ctx,
                          struct mr__http_request *req,
                          struct mr__http_response *resp);
void mr__http_patch_webhook(const struct mr__http_ctx *ctx,
                            struct mr__http_request *req,
                            struct mr__http_response *resp);
void mr__http_delete_webhook(const struct mr__http_ctx *ctx,
                             struct mr__http_request *req,
                             struct mr__http_response *resp);
void mr__http_list_deliveries(const struct mr__http_ctx *ctx,
                              struct mr__http_request *req,
                              struct mr__http_response *resp);
void mr__http_get_delivery(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp);
void mr__http_redrive_delivery(const struct mr__http_ctx *ctx,
                               struct mr__http_request *req,
                               struct mr__http_response *resp);
void mr__http_list_outbound_mail(const struct mr__http_ctx *ctx,
                                 struct mr__http_request *req,
                                 struct mr__http_response *resp);
void mr__http_retry_outbound_mail(const struct mr__http_ctx *ctx,
                                  struct mr__http_request *req,
                                  struct mr__http_response *resp);
void mr__http_list_notifications(const struct mr__http_ctx *ctx,
                                 struct mr__http_request *req,
                                 struct mr__http_response *resp);
void mr__http_redrive_notification(const struct mr__http_ctx *ctx,
                                   struct mr__http_request *req,
                                   struct mr__http_response *resp);

void mr__http_patch_ticket(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp);
void mr__http_exchange_token(const struct mr__http_ctx *ctx,
                             struct mr__http_request *req,
                             struct mr__http_response *resp);

void mr__http_stream_events(const struct mr__http_ctx *ctx,
                            struct mr__http_request *req,
                            struct mr__http_response *resp);

#define MR__HTTP_LIVE_MAX 64
#define MR__HTTP_LIVE_TICK_MS 1000

/* ---- small parsers (params.c, listen.c) ------------------------------- */

/* deps.now_ms(), or the real clock when that is NULL. */
int64_t mr__http_now_ms(const struct mr__http_ctx *ctx);

/* "host:port", "[v6]:port". Host may be a name (resolved, first address
 * taken). MR_EINVAL with a reason otherwise. */
int mr__http_parse_listen(const char *listen, struct sockaddr_storage *sa,
                          socklen_t *salen, struct mr_error *err);

/* Does a Content-Type value name media type `want` (case-insensitive,
 * parameters after ';' ignored, spaces tolerated)? */
bool mr__http_media_type_is(const char *value, const char *want);

/* A decimal 1..INT64_MAX id with no sign, no leading zero, at most 18
 * digits. false for anything else (the caller answers 404). */
bool mr__http_parse_id(mr_span s, int64_t *id);

/* ?limit=: NULL -> def; else 1..max decimal, MR_EINVAL otherwise. */
int mr__http_parse_limit(const char *value, int def, int max, int *out,
                         struct mr_error *err);

/* Unix ms -> "2025-01-06T10:00:00.123Z" (RFC 3339, UTC, milliseconds). */
#define MR__HTTP_TIME_LEN 32
void mr__http_time(int64_t ms, char out[MR__HTTP_TIME_LEN]);
/* ---- queue listings (page.c) ----------------------------------------- */

/* The time ms as mr__http_time writes it, or null when ms is 0 (never). */
void mr__http_json_time(struct mr_json *j, int64_t ms);

/* The {id} of the path; false (after answering 404) when it is no id. */
bool mr__http_path_id(struct mr__http_request *req,
                      struct mr__http_response *resp, int64_t *id);

/* A queue listing's query (the deliveries, outbound mail and
 * notifications): ?limit= (def, 1..max), ?state= (one of states, a
 * NULL-terminated list; NULL when absent) and ?after= (an id of the
 * queue; 0 or absent: from the start). false after answering 400. */
struct mr__http_page {
    int limit;
    const char *state;
    int64_t after;
};
bool mr__http_page_query(struct mr__http_request *req,
                         struct mr__http_response *resp, int def, int max,
                         const char *const *states, struct mr__http_page *out);
/* A positive decimal id in a query value (NULL: 0). */
bool mr__http_query_id(const char *v, int64_t *out);

#endif
