/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_out.h - outbound HTTP requests: webhooks and integrations.
 *
 * Every request mailroom makes to a URL it was given goes through here, so
 * the rules that keep it from being turned against its own network hold in
 * one place: http and https only, redirects never followed, the address
 * actually connected to checked (loopback, private, link-local, multicast
 * and unspecified addresses refused unless allowed: a name that resolves
 * to 127.0.0.1 cannot slip through), connect and total timeouts, and a
 * capped response body.
 *
 * Many at once: an mr_http_out_multi runs up to `max` requests together
 * on one libcurl multi handle (one thread, no thread per request), with
 * the same guards on every one. A request that hangs to its timeout holds
 * one slot and delays no other. Connections to the same host are kept and
 * reused between requests (the check ran when each was opened).
 *
 * Ownership: an mr_http_out owns the libcurl it loaded (curl.h); the
 * caller owns requests, and may free one as soon as the call that takes
 * it returns (what a transfer needs is copied); a response's body is owned
 * by the response and freed by mr_http_out_res_release. One mr_http_out
 * and its multis serve one thread; only mr_http_out_multi_wakeup may be
 * called from another.
 */
#ifndef MR_OUTBOUND_HTTP_OUT_H
#define MR_OUTBOUND_HTTP_OUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* Response bytes kept; the rest is read and dropped (a receiver that is
 * still writing must not see a reset). Enough for a GitHub issue. */
#define MR_HTTP_OUT_BODY_MAX (64 * 1024)
#define MR_HTTP_OUT_RETRY_AFTER_MAX_S 86400

struct mr_http_out;

struct mr_http_out_req {
    const char *method;              /* "POST", "PUT", "GET"...; NULL: POST */
    const char *url;
    const char *const *headers;      /* "Name: value" lines */
    size_t nheaders;
    const char *body;                /* may be NULL with body_len 0 */
    size_t body_len;
    long connect_timeout_ms;         /* 0: 5000 */
    long timeout_ms;                 /* 0: 10000 */
};

struct mr_http_out_res {
    long status;            /* HTTP status; 0 when no response came */
    int64_t retry_after_s;  /* Retry-After in seconds, capped; -1: none */
    bool refused;           /* the target is a private address */
    char *body;             /* NUL-terminated, at most MR_HTTP_OUT_BODY_MAX */
    size_t body_len;
    char error[300];        /* why, when status is 0 or not 2xx; else "" */
};

/* Loads libcurl; MR_EIO with the reason when it is missing. */
int mr_http_out_open(bool allow_private, struct mr_http_out **out,
                     struct mr_error *err);
/* NULL is a no-op. */
void mr_http_out_close(struct mr_http_out *h);

/* One request, blocking. Never fails as a call: every outcome is in *res
 * (which the caller releases). `stop`, when not NULL, aborts the request
 * once it becomes true. */
void mr_http_out_do(struct mr_http_out *h, const struct mr_http_out_req *req,
                    const atomic_bool *stop, struct mr_http_out_res *res);
void mr_http_out_res_release(struct mr_http_out_res *res);

/* n requests at once, blocking until all are done; res[i] gets request
 * i's outcome (each released by the caller). With `stop` true, the ones
 * in flight end with "stopped". */
void mr_http_out_many(struct mr_http_out *h, const struct mr_http_out_req *reqs,
                      size_t n, const atomic_bool *stop,
                      struct mr_http_out_res *res);

/* ---- add and poll: requests started while others are in flight ---- */

struct mr_http_out_multi;

/* A finished request: the tag given to mr_http_out_multi_add and its
 * outcome (released by the caller). */
struct mr_http_out_done {
    void *tag;
    struct mr_http_out_res res;
};

/* A multi for up to max (1..1024) requests in flight; `stop`, when not
 * NULL, aborts its transfers once true. h must outlive it. */
int mr_http_out_multi_new(struct mr_http_out *h, size_t max,
                          const atomic_bool *stop,
                          struct mr_http_out_multi **out, struct mr_error *err);
/* Aborts what is in flight (their outcomes are never reported). NULL is a
 * no-op. */
void mr_http_out_multi_free(struct mr_http_out_multi *m);
/* Requests added and not yet returned by mr_http_out_multi_poll. */
size_t mr_http_out_multi_running(const struct mr_http_out_multi *m);
/* Starts req; its outcome comes back from a poll with tag. MR_ELIMIT when
 * max are in flight, MR_EIO when libcurl cannot take it. */
int mr_http_out_multi_add(struct mr_http_out_multi *m,
                          const struct mr_http_out_req *req, void *tag,
                          struct mr_error *err);
/* Moves every transfer on; when none has finished, waits for the network
 * up to timeout_ms (or until mr_http_out_multi_wakeup). Puts up to ndone
 * finished requests in done and returns how many; the rest wait for the
 * next call. */
size_t mr_http_out_multi_poll(struct mr_http_out_multi *m, int timeout_ms,
                              struct mr_http_out_done *done, size_t ndone);
/* Ends a poll's wait now (or the next one's, when none is waiting). Safe
 * from any thread. */
void mr_http_out_multi_wakeup(struct mr_http_out_multi *m);

/* Whether an address is one a target may not have unless private targets
 * are allowed. */
struct sockaddr;
bool mr_http_out_addr_private(const struct sockaddr *sa);

#endif
