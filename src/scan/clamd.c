/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clamd.c - the clamd conversation (clamd.h): connect, INSTREAM or PING,
 * one reply.
 *
 * The socket is non-blocking from the start and every wait is a poll()
 * with the step's timeout, so connect, write and read are all bounded.
 * While the bytes go out the socket is also watched for input: clamd
 * answers a stream over its StreamMaxLength at once and closes, and that
 * answer is read rather than lost in an EPIPE.
 */
#include "scan/clamd.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/config.h"

static int timeout_of(const struct mr_clamd_options *o)
{
    return o->timeout_ms > 0 ? o->timeout_ms : MR_CLAMD_TIMEOUT_DEFAULT_MS;
}

static const char *where(const struct mr_clamd_options *o)
{
    return o->socket ? o->socket : o->address ? o->address : "?";
}

/* Waits for a connecting socket; 0 when connected. */
static int finish_connect(int fd, int timeout_ms)
{
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int r;
    do
        r = poll(&pf, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return ETIMEDOUT;
    if (r < 0)
        return errno;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return errno;
    return soerr;
}

static int connect_unix(const struct mr_clamd_options *o, int *fd_out,
                        struct mr_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(o->socket);
    if (n == 0 || n >= sizeof sa.sun_path)
        return mr_error_set(err, MR_EINVAL,
                            "clamd socket path '%s' is empty or too long",
                            o->socket);
    memcpy(sa.sun_path, o->socket, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mr_error_set(err, MR_EIO, "clamd: socket: %s", strerror(errno));
    int e = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        e = errno;
        if (e == EINPROGRESS || e == EAGAIN)
            e = finish_connect(fd, timeout_of(o));
    }
    if (e != 0) {
        close(fd);
        return mr_error_set(err, MR_EAGAIN, "clamd at %s: cannot connect: %s",
                            o->socket, strerror(e));
    }
    *fd_out = fd;
    return 0;
}

static int connect_tcp(const struct mr_clamd_options *o, int *fd_out,
                       struct mr_error *err)
{
    char host[256], port_s[8];
    int port;
    struct mr_error perr = {0};
    if (mr_config_listen_split(o->address, host, sizeof host, &port, &perr) < 0)
        return mr_error_set(err, MR_EINVAL, "clamd address: %s", perr.msg);
    snprintf(port_s, sizeof port_s, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_family = AF_UNSPEC};
    struct addrinfo *res = NULL;
    int gr = getaddrinfo(host, port_s, &hints, &res);
    if (gr != 0)
        return mr_error_set(err, MR_EAGAIN, "clamd at %s: %s", o->address,
                            gai_strerror(gr));
    int e = ECONNREFUSED;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        e = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            e = errno;
            if (e == EINPROGRESS)
                e = finish_connect(fd, timeout_of(o));
        }
        if (e != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return mr_error_set(err, MR_EAGAIN, "clamd at %s: cannot connect: %s",
                            o->address, strerror(e));
    *fd_out = fd;
    return 0;
}

static int open_conn(const struct mr_clamd_options *o, int *fd,
                     struct mr_error *err)
{
    if (o == NULL || (o->socket == NULL && o->address == NULL))
        return mr_error_set(err, MR_EINVAL,
                            "clamd: neither a socket nor an address");
    return o->socket ? connect_unix(o, fd, err) : connect_tcp(o, fd, err);
}

/* Outcome of sending: all sent, or clamd has something to say (or hung up)
 * before we finished. */
enum send_state { SENT_ALL, PEER_SPOKE };

/* Sends n bytes; stops early (PEER_SPOKE) when the socket becomes readable
 * or the peer closed, so that an early reply can still be read. */
static int send_all(const struct mr_clamd_options *o, int fd, const void *p,
                    size_t n, enum send_state *state, struct mr_error *err)
{
    const char *c = p;
    while (n > 0) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT | POLLIN};
        int r;
        do
            r = poll(&pf, 1, timeout_of(o));
        while (r < 0 && errno == EINTR);
        if (r == 0)
            return mr_error_set(err, MR_EIO,
                                "clamd at %s: writing timed out after %d ms",
                                where(o), timeout_of(o));
        if (r < 0)
            return mr_error_set(err, MR_EIO, "clamd: poll: %s",
                                strerror(errno));
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            *state = PEER_SPOKE;
            return 0;
        }
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET) {
                *state = PEER_SPOKE;
                return 0;
            }
            return mr_error_set(err, MR_EIO, "clamd at %s: write: %s", where(o),
                                strerror(errno));
        }
        c += w;
        n -= (size_t)w;
    }
    *state = SENT_ALL;
    return 0;
}

/* Reads one reply up to its NUL (or the peer's close) into buf; *n gets
 * its length without the NUL. */
static int read_reply(const struct mr_clamd_options *o, int fd, char *buf,
                      size_t cap, size_t *n, struct mr_error *err)
{
    size_t len = 0;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r;
        do
            r = poll(&pf, 1, timeout_of(o));
        while (r < 0 && errno == EINTR);
        if (r == 0)
            return mr_error_set(err, MR_EIO,
                                "clamd at %s: no reply within %d ms", where(o),
                                timeout_of(o));
        if (r < 0)
            return mr_error_set(err, MR_EIO, "clamd: poll: %s",
                                strerror(errno));
        ssize_t got = recv(fd, buf + len, cap - len, 0);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            /* A peer that closes with our bytes unread resets the
             * connection: after a reply that is its end, before one it is
             * the same as a close without a reply. */
            if (errno == ECONNRESET)
                break;
            return mr_error_set(err, MR_EIO, "clamd at %s: read: %s", where(o),
                                strerror(errno));
        }
        if (got == 0)
            break;
        char *nul = memchr(buf + len, '\0', (size_t)got);
        len += (size_t)got;
        if (nul) {
            len = (size_t)(nul - buf);
            break;
        }
        if (len == cap)
            return mr_error_set(err, MR_EIO,
                                "clamd at %s: a reply longer than %zu bytes",
                                where(o), cap);
    }
    if (len == 0)
        return mr_error_set(err, MR_EIO,
                            "clamd at %s closed the connection without a "
                            "reply",
                            where(o));
    *n = len;
    return 0;
}

/* The end of a conversation: the reply, when sending went well (rc 0),
 * then the socket closed either way. */
static int finish(const struct mr_clamd_options *o, int fd, int rc,
                  char reply[MR_CLAMD_REPLY_MAX + 1], size_t *rn,
                  struct mr_error *err)
{
    *rn = 0;
    if (rc == 0)
        rc = read_reply(o, fd, reply, MR_CLAMD_REPLY_MAX, rn, err);
    close(fd);
    return rc;
}

static bool ends_with(const char *s, size_t n, const char *suffix, size_t k)
{
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static void copy_detail(struct mr_clamd_result *out, const char *s, size_t n)
{
    if (n >= sizeof out->detail)
        n = sizeof out->detail - 1;
    memcpy(out->detail, s, n);
    out->detail[n] = '\0';
}

int mr_clamd_parse_reply(const char *reply, size_t n,
                         struct mr_clamd_result *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    /* clamd ends replies to non-z commands with a newline; be lenient
     * about that and about trailing blanks, strict about everything else. */
    while (n > 0 && (reply[n - 1] == '\n' || reply[n - 1] == ' ' ||
                     reply[n - 1] == '\r'))
        n--;
    if (n == 0 || n > MR_CLAMD_REPLY_MAX)
        return mr_error_set(err, MR_EIO, "clamd: an empty or overlong reply");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)reply[i];
        if (ch < 0x20 || ch > 0x7e)
            return mr_error_set(err, MR_EIO,
                                "clamd: a reply with a byte 0x%02x in it", ch);
    }
    static const char prefix[] = "stream: ";
    const size_t np = sizeof prefix - 1;
    if (ends_with(reply, n, " ERROR", 6)) {
        const char *s = reply;
        size_t k = n - 6;
        if (k >= np && memcmp(s, prefix, np) == 0) {
            s += np;
            k -= np;
        }
        out->verdict = MR_CLAMD_ERROR;
        copy_detail(out, s, k);
        return 0;
    }
    if (n < np || memcmp(reply, prefix, np) != 0)
        goto malformed;
    const char *rest = reply + np;
    size_t k = n - np;
    if (k == 2 && memcmp(rest, "OK", 2) == 0) {
        out->verdict = MR_CLAMD_CLEAN;
        return 0;
    }
    if (ends_with(rest, k, " FOUND", 6) && k > 6) {
        size_t nn = k - 6;
        if (nn >= sizeof out->detail || memchr(rest, ' ', nn) != NULL)
            goto malformed;
        out->verdict = MR_CLAMD_INFECTED;
        copy_detail(out, rest, nn);
        return 0;
    }
malformed:;
    char shown[80];
    size_t m = n < sizeof shown - 1 ? n : sizeof shown - 1;
    memcpy(shown, reply, m);
    shown[m] = '\0';
    return mr_error_set(err, MR_EIO, "clamd: an unexpected reply '%s'", shown);
}

int mr_clamd_scan(const struct mr_clamd_options *o, const void *p, size_t n,
                  struct mr_clamd_result *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    if (n > 0 && p == NULL)
        return mr_error_set(err, MR_EINVAL, "clamd: no bytes to scan");
    int fd;
    int rc = open_conn(o, &fd, err);
    if (rc < 0)
        return rc;
    size_t chunk = o->chunk_size ? o->chunk_size : MR_CLAMD_CHUNK_DEFAULT;
    if (chunk > UINT32_MAX)
        chunk = UINT32_MAX;
    enum send_state state = SENT_ALL;
    rc = send_all(o, fd, "zINSTREAM", 10, &state, err);
    const char *c = p;
    size_t left = n;
    /* The closing zero-length chunk is the last round (len 0). */
    for (bool last = false; rc == 0 && state == SENT_ALL && !last;) {
        size_t len = left < chunk ? left : chunk;
        last = len == 0;
        unsigned char hdr[4] = {(unsigned char)(len >> 24),
                                (unsigned char)(len >> 16),
                                (unsigned char)(len >> 8), (unsigned char)len};
        rc = send_all(o, fd, hdr, 4, &state, err);
        if (rc == 0 && state == SENT_ALL && len > 0)
            rc = send_all(o, fd, c, len, &state, err);
        c += len;
        left -= len;
    }
    char reply[MR_CLAMD_REPLY_MAX + 1];
    size_t rn;
    rc = finish(o, fd, rc, reply, &rn, err);
    if (rc < 0)
        return rc;
    rc = mr_clamd_parse_reply(reply, rn, out, err);
    if (rc == 0 && state == PEER_SPOKE && out->verdict == MR_CLAMD_CLEAN)
        /* "OK" for bytes clamd never received in full is no verdict. */
        return mr_error_set(err, MR_EIO,
                            "clamd at %s answered OK before the stream ended",
                            where(o));
    return rc;
}

int mr_clamd_ping(const struct mr_clamd_options *o, struct mr_error *err)
{
    int fd;
    int rc = open_conn(o, &fd, err);
    if (rc < 0)
        return rc;
    enum send_state state = SENT_ALL;
    rc = send_all(o, fd, "zPING", 6, &state, err);
    char reply[MR_CLAMD_REPLY_MAX + 1];
    size_t rn;
    rc = finish(o, fd, rc, reply, &rn, err);
    if (rc < 0)
        return rc;
    while (rn > 0 && reply[rn - 1] == '\n')
        rn--;
    if (rn != 4 || memcmp(reply, "PONG", 4) != 0)
        return mr_error_set(err, MR_EIO,
                            "clamd at %s: PING was not answered "
                            "PONG",
                            where(o));
    return 0;
}
