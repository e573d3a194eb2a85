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

struct attempt {
    const struct mr_http_out *h;
    const atomic_bool *stop;
    struct mr_buf resp;
    bool refused;
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

void mr_http_out_do(struct mr_http_out *h, const struct mr_http_out_req *req,
                    const atomic_bool *stop, struct mr_http_out_res *res)
{
    memset(res, 0, sizeof *res);
    res->retry_after_s = -1;
    struct attempt at = {.h = h, .stop = stop};
    mr_buf_init(&at.resp, 0);
    CURL *c = h->curl.easy_init();
    if (c == NULL) {
        snprintf(res->error, sizeof res->error, "libcurl: cannot make a handle");
        return;
    }
    struct curl_slist *hd = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *n = h->curl.slist_append(hd, req->headers[i]);
        if (n == NULL)
            break;
        hd = n;
    }
    /* libcurl sends "Expect: 100-continue" for larger bodies and waits a
     * second for an answer many receivers never give. */
    struct curl_slist *n = h->curl.slist_append(hd, "Expect:");
    if (n != NULL)
        hd = n;
    char cerr[CURL_ERROR_SIZE] = "";
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
        h->curl.easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        h->curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t)req->body_len);
        if (strcmp(method, "POST") != 0)
            h->curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    h->curl.easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    h->curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    h->curl.easy_setopt(c, CURLOPT_WRITEDATA, &at);
    h->curl.easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    h->curl.easy_setopt(c, CURLOPT_OPENSOCKETDATA, &at);
    h->curl.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    h->curl.easy_setopt(c, CURLOPT_XFERINFODATA, &at);
    h->curl.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    h->curl.easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = h->curl.easy_perform(c);
    res->refused = at.refused;
    if (rc == CURLE_OK) {
        h->curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
        curl_off_t ra = -1;
        if (h->curl.easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
            ra > 0)
            res->retry_after_s = ra > MR_HTTP_OUT_RETRY_AFTER_MAX_S
                                     ? MR_HTTP_OUT_RETRY_AFTER_MAX_S
                                     : ra;
        if (res->status < 200 || res->status > 299)
            snprintf(res->error, sizeof res->error, "HTTP %ld: %.*s",
                     res->status, (int)(at.resp.len > 200 ? 200 : at.resp.len),
                     at.resp.p ? at.resp.p : "");
    } else if (at.refused) {
        snprintf(res->error, sizeof res->error,
                 "refused: the target is a private or loopback address "
                 "(webhooks_allow_private)");
    } else {
        snprintf(res->error, sizeof res->error, "%s",
                 cerr[0] ? cerr : h->curl.easy_strerror(rc));
    }
    h->curl.easy_cleanup(c);
    h->curl.slist_free_all(hd);
    res->body_len = at.resp.len;
    res->body = mr_xstrndup(at.resp.p ? at.resp.p : "", at.resp.len);
    mr_buf_release(&at.resp);
}
