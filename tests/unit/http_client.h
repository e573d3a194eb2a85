/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_client.h - a tiny blocking HTTP/1.1 client over loopback for the
 * HTTP unit tests (test_http.c, test_http_api.c). Raw sockets, so tests
 * can also send what no library would: chunked bodies past a cap, bytes
 * one at a time, bad methods. Every wait is bounded (TEST_IO_TIMEOUT_MS);
 * answers are read until the server closes (requests say
 * "Connection: close").
 */
#ifndef MR_TEST_HTTP_CLIENT_H
#define MR_TEST_HTTP_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define TEST_IO_TIMEOUT_MS 10000
#define TEST_REPLY_MAX (16u << 20)

struct http_reply {
    int status;
    char *raw; /* the whole answer, NUL-terminated */
    size_t raw_len;
    const char *body; /* into raw */
    size_t body_len;
};

static inline void http_reply_free(struct http_reply *r)
{
    free(r->raw);
    memset(r, 0, sizeof *r);
}

static inline int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Sends everything; false when the peer stopped reading (it answered
 * early and closed), which callers may expect. */
static inline bool http_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (poll(&pfd, 1, TEST_IO_TIMEOUT_MS) <= 0)
            return false;
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Is an answer waiting (or the connection closed)? Does not block. */
static inline bool http_readable(int fd)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    return poll(&pfd, 1, 0) > 0;
}

/* Reads until EOF (or reset, keeping what came) and parses the status
 * line and where the body starts (no chunked decoding: our server sends
 * Content-Length). Returns 0 or -1. */
static inline int http_read_reply(int fd, struct http_reply *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, TEST_IO_TIMEOUT_MS);
        if (pr <= 0)
            break;
        if (len + 1 == cap) {
            if (cap >= TEST_REPLY_MAX)
                break;
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL)
                break;
            buf = nb;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    out->raw = buf;
    out->raw_len = len;
    int st = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &st) != 1)
        return -1;
    out->status = st;
    const char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL)
        return -1;
    out->body = end + 4;
    out->body_len = len - (size_t)(out->body - buf);
    return 0;
}

/* One request: method, target (path and query), extra header lines (each
 * ending in CRLF, may be NULL), body (may be NULL: no Content-Length). */
static inline int http_do(int port, const char *method, const char *target,
                          const char *headers, const char *body, size_t blen,
                          struct http_reply *out)
{
    memset(out, 0, sizeof *out);
    int fd = http_connect(port);
    if (fd < 0)
        return -1;
    char head[4096];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: localhost\r\n"
                     "Connection: close\r\n%s",
                     method, target, headers ? headers : "");
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n,
                      "Content-Length: %zu\r\n", blen);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    http_send_all(fd, head, (size_t)n);
    if (body && blen)
        http_send_all(fd, body, blen);
    int rc = http_read_reply(fd, out);
    close(fd);
    return rc;
}

/* The value of the first header `name` in the answer, copied into buf;
 * NULL when absent. */
static inline const char *http_header(const struct http_reply *r,
                                      const char *name, char *buf, size_t size)
{
    if (r->raw == NULL)
        return NULL;
    size_t nl = strlen(name);
    const char *p = strstr(r->raw, "\r\n");
    const char *end = r->body ? r->body : r->raw + r->raw_len;
    while (p && p + 2 < end) {
        p += 2;
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL || eol >= end)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' &&
            strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl >= size)
                vl = size - 1;
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            return buf;
        }
        p = eol;
    }
    return NULL;
}

#endif
