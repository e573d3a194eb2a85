/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - the HTTP server: REST API, provider webhook, health and metrics.
 *
 * One libmicrohttpd daemon with a small pool of threads (epoll) serves
 * every route listed in docs/api.md. Handlers block on the store and the
 * intake (group commit), so the pool is sized for concurrent writes, not
 * for CPU. Every error answer is application/problem+json (RFC 9457);
 * nothing is printed (libmicrohttpd's own log is routed nowhere).
 *
 * Guarantees: a 202 (POST /api/v1/messages) or 204 (POST /inbox/webhook)
 * is sent only after mr_intake_* returned 0, i.e. after the message and
 * its job are durable. Request bodies are capped at
 * cfg->limits.http_body_size (413 beyond, refused from Content-Length
 * before any byte is read when the client declares it). API tokens see
 * only their own tenant.
 *
 * Threads: mr_http_start returns once the socket is bound and listening;
 * requests are served on the daemon's threads. mr_http_stop waits for
 * running handlers to finish.
 *
 * Ownership: the server copies deps (the struct) but borrows everything it
 * points to (config, store, blob, intake, metrics), which must outlive
 * mr_http_stop.
 */
#ifndef MR_HTTP_H
#define MR_HTTP_H

#include <stdint.h>

#include "blob/blob.h"
#include "config/config.h"
#include "store/store.h"
#include "ticket/intake.h"
#include "util/error.h"
#include "util/metrics.h"

struct mr_rules_slot; /* ticket/rules_slot.h */
struct mr_config_reloader; /* outbound/config_reload.h */
struct mr_scanner;    /* scan/scanner.h */

#define MR_HTTP_THREADS_DEFAULT 8

struct mr_http_server;

struct mr_http_deps {
    const struct mr_config *cfg; /* required */
    struct mr_store *store;      /* required */
    struct mr_blob *blob;        /* required */
    struct mr_intake *intake;    /* required */
    struct mr_metrics *metrics;  /* may be NULL: nothing counted */
    struct mr_rules_slot *rules; /* may be NULL: reload answers 409 */
    /* May be NULL: the admin reload does the rules only (no file). */
    struct mr_config_reloader *config_reload;
    struct mr_scanner *scanner;  /* may be NULL: no counters in health */
    int64_t (*now_ms)(void);     /* Unix ms; NULL = the real clock */
    int threads; /* daemon threads; 0 = MR_HTTP_THREADS_DEFAULT */
    /* Optional: told the internal reason of every 5xx answer (the client
     * only gets a generic detail). Called from the daemon's threads. */
    void (*log)(void *log_ctx, const char *msg);
    void *log_ctx;
};

/* Binds listen ("127.0.0.1:8080", "[::1]:0", "localhost:8080"; port 0
 * picks a free port, see mr_http_port) and starts serving. *out is owned
 * by the caller and released with mr_http_stop. MR_EINVAL for a bad
 * address or missing deps, MR_EIO when the socket cannot be bound (the
 * message names the system's reason) or the daemon does not start. */
int mr_http_start(const char *listen, const struct mr_http_deps *deps,
                  struct mr_http_server **out, struct mr_error *err);

/* The port actually bound (useful after port 0). */
int mr_http_port(const struct mr_http_server *srv);

/* Stops accepting, waits for handlers in flight, closes the socket and
 * frees srv. NULL is fine. */
void mr_http_stop(struct mr_http_server *srv);

#endif
