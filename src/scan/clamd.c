/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clamd.c - the clamd conversation (clamd.h): connect, INSTREAM or PING,
 * one reply.
 *
 * The socket is non-blocking from the start and every wait is a poll()
 * bounded by the earlier of the step's timeout and the conversation's
 * deadline, so connect, write and read are all bounded, and so is their
 * sum: a clamd that trickles one byte per step cannot stretch a scan past
 * total_ms. With a stop flag the polls are cut into slices of
 * STOP_SLICE_MS and the flag is read between them, so the thread that
 * stops the scanner waits for no clamd. While the bytes go out the socket
 * is also watched for input: clamd answers a stream over its
 * StreamMaxLength at once and closes, and that answer is read rather than
 * lost in an EPIPE.
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
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "util/clock.h"

#define STOP_SLICE_MS 100

/* One conversation: its options, socket and deadline. */
struct conv {
    const struct mr_clamd_options *o;
    int fd;
    int64_t deadline; /* CLOCK_MONOTONIC ms: the whole conversation */
};

/* How a wait ended. */
enum wait_end { WAIT_READY, WAIT_STEP, WAIT_TOTAL, WAIT_STOPPED, WAIT_ERROR };

static int timeout_of(const struct mr_clamd_options *o)
{
    return o->timeout_ms > 0 ? o->timeout_ms : MR_CLAMD_TIMEOUT_DEFAULT_MS;
}

static int total_of(const struct mr_clamd_options *o)
{
    return o->total_ms > 0 ? o->total_ms : MR_CLAMD_TOTAL_DEFAULT_MS;
}

static bool stopped(const struct mr_clamd_options *o)
{
    return o->stop != NULL && atomic_load(o->stop);
}

static const char *where(const struct mr_clamd_options *o)
{
    return o->socket ? o->socket : o->address ? o->address : "?";
}

/* Waits for events on c->fd for one step; *revents gets what came. On
 * WAIT_ERROR errno says why. */
static enum wait_end wait_fd(const struct conv *c, short events, short *revents)
{
    int64_t step_end = mr_clock_mono_ms() + timeout_of(c->o);
    for (;;) {
        if (stopped(c->o))
            return WAIT_STOPPED;
        int64_t now = mr_clock_mono_ms();
        if (now >= c->deadline)
            return WAIT_TOTAL;
        if (now >= step_end)
            return WAIT_STEP;
        int64_t left = (step_end < c->deadline ? step_end : c->deadline) - now;
        if (c->o->stop && left > STOP_SLICE_MS)
            left = STOP_SLICE_MS;
        struct pollfd pf = {.fd = c->fd, .events = events};
        int r = poll(&pf, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return WAIT_ERROR;
        if (r > 0) {
            *revents = pf.revents;
            return WAIT_READY;
        }
    }
}

/* The error for a wait that did not end READY; step says what timed out
 * ("writing timed out after", "no reply within"). */
static int wait_error(const struct conv *c, enum wait_end w, const char *step,
                      struct mr_error *err)
{
    const struct mr_clamd_options *o = c->o;
    switch (w) {
    case WAIT_STOPPED:
        return mr_error_set(err, MR_EAGAIN,
                            "clamd at %s: stopped (shutting down)", where(o));
    case WAIT_TOTAL:
        return mr_error_set(err, MR_EIO,
                            "clamd at %s: no verdict within %d ms "
                            "(clamd.scan_timeout)",
                            where(o), total_of(o));
    case WAIT_STEP:
        return mr_error_set(err, MR_EIO, "clamd at %s: %s %d ms", where(o),
                            step, timeout_of(o));
    default:
        return mr_error_set(err, MR_EIO, "clamd: poll: %s", strerror(errno));
    }
}

/* Waits for a connecting socket. 0 when connected, else an errno value
 * (ECANCELED when stopped). */
static int finish_connect(const struct conv *c)
{
    short rev = 0;
    enum wait_end w = wait_fd(c, POLLOUT, &rev);
    if (w == WAIT_STOPPED)
        return ECANCELED;
    if (w == WAIT_STEP || w == WAIT_TOTAL)
        return ETIMEDOUT;
    if (w == WAIT_ERROR)
        return errno;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return errno;
    return soerr;
}

static int cannot_connect(const struct conv *c, int e, struct mr_error *err)
{
    if (e == ECANCELED)
        return mr_error_set(err, MR_EAGAIN,
                            "clamd at %s: stopped (shutting down)",
                            where(c->o));
    return mr_error_set(err, MR_EAGAIN, "clamd at %s: cannot connect: %s",
                        where(c->o), strerror(e));
}

static int connect_unix(struct conv *c, struct mr_error *err)
{
    const struct mr_clamd_options *o = c->o;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(o->socket);
    if (n == 0 || n >= sizeof sa.sun_path)
        return mr_error_set(err, MR_EINVAL,
                            "clamd socket path '%s' is empty or too long",
                            o->socket);
    memcpy(sa.sun_path, o->socket, n + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return mr_error_set(err, MR_EIO, "clamd: socket: %s", strerror(errno));
    int e = 0;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        e = errno;
        if (e == EINPROGRESS || e == EAGAIN)
            e = finish_connect(c);
    }
    if (e != 0) {
        close(c->fd);
        c->fd = -1;
        return cannot_connect(c, e, err);
    }
    return 0;
}

static int connect_tcp(struct conv *c, struct mr_error *err)
{
    const struct mr_clamd_options *o = c->o;
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
    c->fd = -1;
    for (struct addrinfo *ai = res; ai && c->fd < 0 && e != ECANCELED;
         ai = ai->ai_next) {
        c->fd = socket(ai->ai_family,
                       ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       ai->ai_protocol);
        if (c->fd < 0) {
            e = errno;
            continue;
        }
        e = 0;
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            e = errno;
            if (e == EINPROGRESS)
                e = finish_connect(c);
        }
        if (e != 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        return cannot_connect(c, e, err);
    return 0;
}

/* Starts a conversation: its deadline, then the connection. */
static int open_conn(struct conv *c, const struct mr_clamd_options *o,
                     struct mr_error *err)
{
    c->o = o;
    c->fd = -1;
    if (o == NULL || (o->socket == NULL && o->address == NULL))
        return mr_error_set(err, MR_EINVAL,
                            "clamd: neither a socket nor an address");
    c->deadline = mr_clock_mono_ms() + total_of(o);
    if (stopped(o))
        return mr_error_set(err, MR_EAGAIN,
                            "clamd at %s: stopped (shutting down)", where(o));
    return o->socket ? connect_unix(c, err) : connect_tcp(c, err);
}

/* Outcome of sending: all sent, or clamd has something to say (or hung up)
 * before we finished. */
enum send_state { SENT_ALL, PEER_SPOKE };

/* Sends n bytes; stops early (PEER_SPOKE) when the socket becomes readable
 * or the peer closed, so that an early reply can still be read. */
static int send_all(const struct conv *c, const void *p, size_t n,
                    enum send_state *state, struct mr_error *err)
{
    const char *b = p;
    while (n > 0) {
        short rev = 0;
        enum wait_end w = wait_fd(c, POLLOUT | POLLIN, &rev);
        if (w != WAIT_READY)
            return wait_error(c, w, "writing timed out after", err);
        if (rev & (POLLIN | POLLHUP | POLLERR)) {
            *state = PEER_SPOKE;
            return 0;
        }
        ssize_t sent = send(c->fd, b, n, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET) {
                *state = PEER_SPOKE;
                return 0;
            }
            return mr_error_set(err, MR_EIO, "clamd at %s: write: %s",
                                where(c->o), strerror(errno));
        }
        b += sent;
        n -= (size_t)sent;
    }
    *state = SENT_ALL;
    return 0;
}

/* Reads one reply up to its NUL (or the peer's close) into buf; *n gets
 * its length without the NUL. */
static int read_reply(const struct conv *c, char *buf, size_t cap, size_t *n,
                      struct mr_error *err)
{
    size_t len = 0;
    for (;;) {
        short rev = 0;
        enum wait_end w = wait_fd(c, POLLIN, &rev);
        if (w != WAIT_READY)
            return wait_error(c, w, "no reply within", err);
        ssize_t got = recv(c->fd, buf + len, cap - len, 0);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            /* A peer that closes with our bytes unread resets the
             * connection: after a reply that is its end, before one it is
             * the same as a close without a reply. */
            if (errno == ECONNRESET)
                break;
            return mr_error_set(err, MR_EIO, "clamd at %s: read: %s",
                                where(c->o), strerror(errno));
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
                                where(c->o), cap);
    }
    if (len == 0)
        return mr_error_set(err, MR_EIO,
                            "clamd at %s closed the connection without a "
                            "reply",
                            where(c->o));
    *n = len;
    return 0;
}

/* The end of a conversation: the reply, when sending went well (rc 0),
 * then the socket closed either way. */
static int finish(struct conv *c, int rc, char reply[MR_CLAMD_REPLY_MAX + 1],
                  size_t *rn, struct mr_error *err)
{
    *rn = 0;
    if (rc == 0)
        rc = read_reply(c, reply, MR_CLAMD_REPLY_MAX, rn, err);
    close(c->fd);
    c->fd = -1;
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
    struct conv c;
    int rc = open_conn(&c, o, err);
    if (rc < 0)
        return rc;
    size_t chunk = o->chunk_size ? o->chunk_size : MR_CLAMD_CHUNK_DEFAULT;
    if (chunk > UINT32_MAX)
        chunk = UINT32_MAX;
    enum send_state state = SENT_ALL;
    rc = send_all(&c, "zINSTREAM", 10, &state, err);
    const char *b = p;
    size_t left = n;
    /* The closing zero-length chunk is the last round (len 0). */
    for (bool last = false; rc == 0 && state == SENT_ALL && !last;) {
        size_t len = left < chunk ? left : chunk;
        last = len == 0;
        unsigned char hdr[4] = {(unsigned char)(len >> 24),
                                (unsigned char)(len >> 16),
                                (unsigned char)(len >> 8), (unsigned char)len};
        rc = send_all(&c, hdr, 4, &state, err);
        if (rc == 0 && state == SENT_ALL && len > 0)
            rc = send_all(&c, b, len, &state, err);
        b += len;
        left -= len;
    }
    char reply[MR_CLAMD_REPLY_MAX + 1];
    size_t rn;
    rc = finish(&c, rc, reply, &rn, err);
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
    struct conv c;
    int rc = open_conn(&c, o, err);
    if (rc < 0)
        return rc;
    enum send_state state = SENT_ALL;
    rc = send_all(&c, "zPING", 6, &state, err);
    char reply[MR_CLAMD_REPLY_MAX + 1];
    size_t rn;
    rc = finish(&c, rc, reply, &rn, err);
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
