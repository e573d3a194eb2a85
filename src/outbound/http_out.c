/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_out.c - outbound HTTP requests (see http_out.h).
 *
 * Targets are checked at connect time, on the address curl actually
 * connects to (CURLOPT_OPENSOCKETFUNCTION), not on the name: checking a
 * name and then letting curl resolve it again is the classic SSRF race.
 */
#include "outbound/http_out.h"
#include "outbound/curl.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/buf.h"

struct mr_http_out {
    struct mr_curl curl;
    bool allow_private;
};

bool mr_http_out_addr_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        uint8_t b0 = (uint8_t)(a >> 24), b1 = (uint8_t)(a >> 16);
        return b0 == 0 || b0 == 10 || b0 == 127 || (b0 == 169 && b1 == 254) ||
               (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168) ||
               (b0 == 100 && (b1 & 0xc0) == 64) || b0 >= 224;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, &a->s6_addr[12], 4);
            return mr_http_out_addr_private((const struct sockaddr *)&v4);
        }
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) ||
               IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MULTICAST(a) ||
               (a->s6_addr[0] & 0xfe) == 0xfc;
    }
    return true;
}

int mr_http_out_open(bool allow_private, struct mr_http_out **out,
                     struct mr_error *err)
{
    *out = NULL;
    struct mr_http_out *h = mr_xcalloc(1, sizeof *h);
    if (mr_curl_load(&h->curl, err) != MR_OK) {
        free(h);
        return MR_EIO;
    }
    if (h->curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        mr_curl_unload(&h->curl);
        free(h);
        return mr_error_set(err, MR_EIO, "libcurl will not start");
    }
    h->allow_private = allow_private;
    *out = h;
    return MR_OK;
}

void mr_http_out_close(struct mr_http_out *h)
{
    if (h == NULL)
        return;
    h->curl.global_cleanup();
    mr_curl_unload(&h->curl);
    free(h);
}

void mr_http_out_res_release(struct mr_http_out_res *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}

/* One request's transfer: the easy handle and what its callbacks fill. */
struct attempt {
    const struct mr_http_out *h;
    const atomic_bool *stop;
    CURL *c;
    struct curl_slist *hd;
    struct mr_buf resp;
    bool refused;
    char cerr[CURL_ERROR_SIZE];
    void *tag;
    size_t slot; /* in the multi's table */
};

static curl_socket_t open_socket(void *cls, curlsocktype purpose,
                                 struct curl_sockaddr *a)
{
    struct attempt *at = cls;
    (void)purpose;
    if (!at->h->allow_private &&
        mr_http_out_addr_private((const struct sockaddr *)&a->addr)) {
        at->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t on_body(char *p, size_t sz, size_t n, void *cls)
{
    struct attempt *at = cls;
    size_t len = sz * n;
    size_t room = MR_HTTP_OUT_BODY_MAX - at->resp.len;
    if (room > 0)
        (void)mr_buf_append(&at->resp, p, len < room ? len : room);
    return len;
}

static int on_progress(void *cls, curl_off_t a, curl_off_t b, curl_off_t c,
                       curl_off_t e)
{
    struct attempt *at = cls;
    (void)a, (void)b, (void)c, (void)e;
    return at->stop && atomic_load(at->stop) ? 1 : 0;
}

static void res_init(struct mr_http_out_res *res)
{
    memset(res, 0, sizeof *res);
    res->retry_after_s = -1;
}

/* Makes at's easy handle for req with every guard set; false (and
 * res->error) when libcurl cannot. The body and URL are copied into the
 * handle, so req may go once this returns. */
static bool attempt_setup(struct mr_http_out *h, struct attempt *at,
                          const struct mr_http_out_req *req,
                          const atomic_bool *stop, struct mr_http_out_res *res)
{
    at->h = h;
    at->stop = stop;
    mr_buf_init(&at->resp, 0);
    at->c = h->curl.easy_init();
    if (at->c == NULL) {
        snprintf(res->error, sizeof res->error, "libcurl: cannot make a handle");
        return false;
    }
    CURL *c = at->c;
    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *n = h->curl.slist_append(at->hd, req->headers[i]);
        if (n == NULL)
            break;
        at->hd = n;
    }
    /* libcurl sends "Expect: 100-continue" for larger bodies and waits a
     * second for an answer many receivers never give. */
    struct curl_slist *n = h->curl.slist_append(at->hd, "Expect:");
    if (n != NULL)
        at->hd = n;
    const char *method = req->method ? req->method : "POST";
    h->curl.easy_setopt(c, CURLOPT_URL, req->url);
    h->curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    h->curl.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    h->curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                        req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                                    : 5000L);
    h->curl.easy_setopt(c, CURLOPT_TIMEOUT_MS,
                        req->timeout_ms > 0 ? req->timeout_ms : 10000L);
    h->curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "GET") != 0) {
        h->curl.easy_setopt(c, CURLOPT_POST, 1L);
        /* The size first: COPYPOSTFIELDS copies that many bytes. */
        h->curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t)req->body_len);
        h->curl.easy_setopt(c, CURLOPT_COPYPOSTFIELDS,
                            req->body ? req->body : "");
        if (strcmp(method, "POST") != 0)
            h->curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    h->curl.easy_setopt(c, CURLOPT_HTTPHEADER, at->hd);
    h->curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    h->curl.easy_setopt(c, CURLOPT_WRITEDATA, at);
    h->curl.easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    h->curl.easy_setopt(c, CURLOPT_OPENSOCKETDATA, at);
    h->curl.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    h->curl.easy_setopt(c, CURLOPT_XFERINFODATA, at);
    h->curl.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    h->curl.easy_setopt(c, CURLOPT_ERRORBUFFER, at->cerr);
    h->curl.easy_setopt(c, CURLOPT_PRIVATE, at);
    return true;
}

/* Frees at's handle and buffers; NULL res: the outcome is dropped. */
static void attempt_finish(struct attempt *at, CURLcode rc,
                           struct mr_http_out_res *res)
{
    const struct mr_curl *cu = &at->h->curl;
    if (res != NULL) {
        res->refused = at->refused;
        if (rc == CURLE_OK) {
            cu->easy_getinfo(at->c, CURLINFO_RESPONSE_CODE, &res->status);
            curl_off_t ra = -1;
            if (cu->easy_getinfo(at->c, CURLINFO_RETRY_AFTER, &ra) ==
                    CURLE_OK &&
                ra > 0)
                res->retry_after_s = ra > MR_HTTP_OUT_RETRY_AFTER_MAX_S
                                         ? MR_HTTP_OUT_RETRY_AFTER_MAX_S
                                         : ra;
            if (res->status < 200 || res->status > 299)
                snprintf(res->error, sizeof res->error, "HTTP %ld: %.*s",
                         res->status,
                         (int)(at->resp.len > 200 ? 200 : at->resp.len),
                         at->resp.p ? at->resp.p : "");
        } else if (at->refused) {
            snprintf(res->error, sizeof res->error,
                     "refused: the target is a private or loopback address "
                     "(webhooks_allow_private)");
        } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
            snprintf(res->error, sizeof res->error, "stopped");
        } else {
            snprintf(res->error, sizeof res->error, "%s",
                     at->cerr[0] ? at->cerr : cu->easy_strerror(rc));
        }
        res->body_len = at->resp.len;
        res->body = mr_xstrndup(at->resp.p ? at->resp.p : "", at->resp.len);
    }
    cu->easy_cleanup(at->c);
    cu->slist_free_all(at->hd);
    at->c = NULL;
    at->hd = NULL;
    mr_buf_release(&at->resp);
}

void mr_http_out_do(struct mr_http_out *h, const struct mr_http_out_req *req,
                    const atomic_bool *stop, struct mr_http_out_res *res)
{
    res_init(res);
    struct attempt at = {0};
    if (!attempt_setup(h, &at, req, stop, res)) {
        mr_buf_release(&at.resp);
        return;
    }
    attempt_finish(&at, h->curl.easy_perform(at.c), res);
}

/* ---- the multi interface ------------------------------------------------ */

#define MULTI_MAX 1024

struct mr_http_out_multi {
    struct mr_http_out *h;
    CURLM *m;
    const atomic_bool *stop;
    size_t max;
    size_t running;
    struct attempt **slots; /* max entries; NULL: free */
};

int mr_http_out_multi_new(struct mr_http_out *h, size_t max,
                          const atomic_bool *stop,
                          struct mr_http_out_multi **out, struct mr_error *err)
{
    *out = NULL;
    if (max < 1 || max > MULTI_MAX)
        return mr_error_set(err, MR_EINVAL,
                            "outbound HTTP: between 1 and %d requests at once",
                            MULTI_MAX);
    CURLM *cm = h->curl.multi_init();
    if (cm == NULL)
        return mr_error_set(err, MR_EIO, "libcurl: cannot make a multi handle");
    struct mr_http_out_multi *m = mr_xcalloc(1, sizeof *m);
    m->h = h;
    m->m = cm;
    m->stop = stop;
    m->max = max;
    m->slots = mr_xcalloc(max, sizeof *m->slots);
    /* Idle connections kept for reuse: one per slot is enough for a
     * receiver that takes every slot. */
    h->curl.multi_setopt(cm, CURLMOPT_MAXCONNECTS, (long)max);
    *out = m;
    return MR_OK;
}

void mr_http_out_multi_free(struct mr_http_out_multi *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->max; i++) {
        struct attempt *at = m->slots[i];
        if (at == NULL)
            continue;
        m->h->curl.multi_remove_handle(m->m, at->c);
        attempt_finish(at, CURLE_ABORTED_BY_CALLBACK, NULL);
        free(at);
    }
    m->h->curl.multi_cleanup(m->m);
    free(m->slots);
    free(m);
}

size_t mr_http_out_multi_running(const struct mr_http_out_multi *m)
{
    return m->running;
}

int mr_http_out_multi_add(struct mr_http_out_multi *m,
                          const struct mr_http_out_req *req, void *tag,
                          struct mr_error *err)
{
    if (m->running >= m->max)
        return mr_error_set(err, MR_ELIMIT,
                            "outbound HTTP: %zu requests already in flight",
                            m->max);
    size_t slot = 0;
    while (slot < m->max && m->slots[slot] != NULL)
        slot++;
    struct attempt *at = mr_xcalloc(1, sizeof *at);
    struct mr_http_out_res res;
    res_init(&res);
    if (!attempt_setup(m->h, at, req, m->stop, &res)) {
        mr_buf_release(&at->resp);
        free(at);
        return mr_error_set(err, MR_EIO, "%s", res.error);
    }
    at->tag = tag;
    at->slot = slot;
    CURLMcode mc = m->h->curl.multi_add_handle(m->m, at->c);
    if (mc != CURLM_OK) {
        attempt_finish(at, CURLE_FAILED_INIT, NULL);
        free(at);
        return mr_error_set(err, MR_EIO, "libcurl: %s",
                            m->h->curl.multi_strerror(mc));
    }
    m->slots[slot] = at;
    m->running++;
    return MR_OK;
}

/* Finished transfers into done, at most ndone. */
static size_t collect(struct mr_http_out_multi *m,
                      struct mr_http_out_done *done, size_t ndone)
{
    size_t k = 0;
    int left = 0;
    CURLMsg *msg;
    /* Bounded: each message is a finished transfer, at most max of them. */
    while (k < ndone && (msg = m->h->curl.multi_info_read(m->m, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct attempt *at = NULL;
        m->h->curl.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &at);
        CURLcode rc = msg->data.result;
        m->h->curl.multi_remove_handle(m->m, msg->easy_handle);
        if (at == NULL)
            continue;
        res_init(&done[k].res);
        done[k].tag = at->tag;
        attempt_finish(at, rc, &done[k].res);
        m->slots[at->slot] = NULL;
        m->running--;
        free(at);
        k++;
    }
    return k;
}

size_t mr_http_out_multi_poll(struct mr_http_out_multi *m, int timeout_ms,
                              struct mr_http_out_done *done, size_t ndone)
{
    int still = 0;
    size_t k = collect(m, done, ndone);
    if (k > 0)
        return k;
    (void)m->h->curl.multi_perform(m->m, &still);
    if ((k = collect(m, done, ndone)) > 0)
        return k;
    /* libcurl shortens the wait to its own next timeout, so transfers
     * time out on time however long the caller waits. */
    (void)m->h->curl.multi_poll(m->m, NULL, 0, timeout_ms < 0 ? 0 : timeout_ms,
                                NULL);
    (void)m->h->curl.multi_perform(m->m, &still);
    return collect(m, done, ndone);
}

void mr_http_out_multi_wakeup(struct mr_http_out_multi *m)
{
    (void)m->h->curl.multi_wakeup(m->m);
}

void mr_http_out_many(struct mr_http_out *h, const struct mr_http_out_req *reqs,
                      size_t n, const atomic_bool *stop,
                      struct mr_http_out_res *res)
{
    for (size_t i = 0; i < n; i++) {
        res_init(&res[i]);
        res[i].body = mr_xstrndup("", 0);
    }
    if (n == 0)
        return;
    struct mr_error err = {0};
    struct mr_http_out_multi *m = NULL;
    size_t max = n < MULTI_MAX ? n : MULTI_MAX;
    if (mr_http_out_multi_new(h, max, stop, &m, &err) != MR_OK) {
        for (size_t i = 0; i < n; i++)
            snprintf(res[i].error, sizeof res[i].error, "%s", err.msg);
        return;
    }
    struct mr_http_out_done *done = mr_xcalloc(max, sizeof *done);
    bool *pending = mr_xcalloc(n, sizeof *pending);
    size_t next = 0, left = n;
    /* Bounded: each turn starts or finishes a request, or waits for one;
     * a transfer ends by its timeout at the latest. */
    while (left > 0) {
        while (next < n && mr_http_out_multi_running(m) < max) {
            if (mr_http_out_multi_add(m, &reqs[next], &res[next], &err) !=
                MR_OK) {
                snprintf(res[next].error, sizeof res[next].error, "%s",
                         err.msg);
                left--;
            } else {
                pending[next] = true;
            }
            next++;
        }
        if (stop != NULL && atomic_load(stop))
            break;
        size_t k = mr_http_out_multi_poll(m, 100, done, max);
        for (size_t i = 0; i < k; i++) {
            struct mr_http_out_res *r = done[i].tag;
            free(r->body);
            *r = done[i].res;
            pending[r - res] = false;
            left--;
        }
    }
    mr_http_out_multi_free(m);
    for (size_t i = 0; i < n; i++)
        if (pending[i])
            snprintf(res[i].error, sizeof res[i].error, "stopped");
    free(pending);
    free(done);
}
