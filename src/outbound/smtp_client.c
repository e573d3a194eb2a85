/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp_client.c - one message to one relay (smtp_client.h).
 *
 * The socket is non-blocking and every wait is a poll() bounded by the
 * earlier of the step's deadline and the transaction's, so neither a
 * silent relay nor one that trickles a byte at a time holds a sender
 * thread for longer than configured. With a stop flag the wait is cut
 * into slices of STOP_SLICE_MS, so a shutdown is not held by a relay
 * either.
 */
#include "outbound/smtp_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h" /* mr_config_listen_split */
#include "util/buf.h"
#include "util/clock.h"

#define STOP_SLICE_MS 100

struct conn {
    int fd;
    const atomic_bool *stop; /* NULL: never stopped */
    bool stopped;            /* a wait ended because stop was set */
    int64_t deadline;        /* the whole transaction */
    int step_ms;
    char in[4096];
    size_t in_len;
    struct mr_smtp_reply *reply;
};

/* Waits for events on the socket until the step or the transaction runs
 * out: 1 ready, 0 timed out, < 0 error. */
static int wait_fd(struct conn *c, short events)
{
    int64_t until = mr_clock_mono_ms() + c->step_ms;
    if (until > c->deadline)
        until = c->deadline;
    for (;;) {
        if (c->stop && atomic_load(c->stop)) {
            c->stopped = true;
            return 0;
        }
        int64_t left = until - mr_clock_mono_ms();
        if (left <= 0)
            return 0;
        if (c->stop && left > STOP_SLICE_MS)
            left = STOP_SLICE_MS;
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r > 0)
            return 1;
    }
}

/* Why a wait_fd that was not 1 ended, for the error message. */
static const char *wait_failed(const struct conn *c, int w,
                               const char *timed_out)
{
    return c->stopped ? "stopped (shutting down)"
           : w == 0   ? timed_out
                      : "poll failed";
}

static int do_connect(struct conn *c, const char *relay, struct mr_error *err)
{
    char host[256];
    int port;
    struct mr_error se = {0};
    if (mr_config_listen_split(relay, host, sizeof host, &port, &se) < 0)
        return mr_error_set(err, MR_EINVAL, "relay: %s", se.msg);
    char ports[8];
    snprintf(ports, sizeof ports, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_family = AF_UNSPEC};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, ports, &hints, &res);
    if (g != 0)
        return mr_error_set(err, MR_EAGAIN, "relay %s: %s", relay,
                            gai_strerror(g));
    int rc = mr_error_set(err, MR_EAGAIN, "relay %s: no address", relay);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
                                           SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0)
            continue;
        c->fd = fd;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            rc = 0;
            break;
        }
        if (errno == EINPROGRESS) {
            int w = wait_fd(c, POLLOUT);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
                soerr == 0) {
                rc = 0;
                break;
            }
            rc = mr_error_set(err, MR_EAGAIN, "cannot connect to %s: %s", relay,
                              w == 1 ? strerror(soerr)
                                     : wait_failed(c, w, "timed out"));
        } else {
            rc = mr_error_set(err, MR_EAGAIN, "cannot connect to %s: %s", relay,
                              strerror(errno));
        }
        close(fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    return rc;
}

static int send_all(struct conn *c, const char *p, size_t n,
                    struct mr_error *err)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_fd(c, POLLOUT);
            if (r == 1)
                continue;
            return mr_error_set(err, MR_EAGAIN, "relay: %s",
                                wait_failed(c, r, "timed out writing"));
        }
        return mr_error_set(err, MR_EAGAIN, "relay: write failed: %s",
                            strerror(errno));
    }
    return 0;
}

/* One line (without CRLF) into line; 0, or MR_EAGAIN on a timeout, a
 * closed connection or an overlong line. */
static int read_line(struct conn *c, char *line, size_t cap, size_t *len,
                     struct mr_error *err)
{
    for (;;) {
        char *nl = memchr(c->in, '\n', c->in_len);
        if (nl) {
            size_t n = (size_t)(nl - c->in);
            size_t keep = n > 0 && c->in[n - 1] == '\r' ? n - 1 : n;
            if (keep >= cap)
                return mr_error_set(err, MR_EAGAIN,
                                    "relay: reply line over %zu bytes",
                                    cap - 1);
            memcpy(line, c->in, keep);
            line[keep] = '\0';
            *len = keep;
            memmove(c->in, nl + 1, c->in_len - n - 1);
            c->in_len -= n + 1;
            return 0;
        }
        if (c->in_len >= sizeof c->in || c->in_len >= cap)
            return mr_error_set(err, MR_EAGAIN,
                                "relay: reply line over %zu bytes", cap - 1);
        ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len,
                         0);
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        if (r == 0)
            return mr_error_set(err, MR_EAGAIN,
                                "relay closed the connection");
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(c, POLLIN);
            if (w == 1)
                continue;
            return mr_error_set(err, MR_EAGAIN, "relay: %s",
                                wait_failed(c, w,
                                            "timed out waiting for a reply"));
        }
        return mr_error_set(err, MR_EAGAIN, "relay: read failed: %s",
                            strerror(errno));
    }
}

/* A whole reply, continuation lines included, into c->reply. */
static int read_reply(struct conn *c, struct mr_error *err)
{
    struct mr_smtp_reply *rp = c->reply;
    rp->code = 0;
    rp->text[0] = '\0';
    size_t used = 0;
    char line[MR_SMTP_CLIENT_MAX_LINE];
    for (int i = 0; i < MR_SMTP_CLIENT_MAX_LINES; i++) {
        size_t n = 0;
        int rc = read_line(c, line, sizeof line, &n, err);
        if (rc < 0)
            return rc;
        bool digits = n >= 3 && line[0] >= '2' && line[0] <= '5' &&
                      line[1] >= '0' && line[1] <= '9' && line[2] >= '0' &&
                      line[2] <= '9';
        if (!digits || (n > 3 && line[3] != ' ' && line[3] != '-'))
            return mr_error_set(err, MR_EAGAIN,
                                "relay: not an SMTP reply: '%.60s'", line);
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
                   (line[2] - '0');
        if (i > 0 && code != rp->code)
            return mr_error_set(err, MR_EAGAIN,
                                "relay: reply changed its code mid-way");
        rp->code = code;
        /* Keep what fits: "550 5.1.1 no such user / more". A last line
         * of the bare code ("250") adds nothing. */
        if (used < sizeof rp->text - 1 && (i == 0 || n > 4)) {
            int w = snprintf(rp->text + used, sizeof rp->text - used, "%s%s",
                             i == 0 ? "" : " / ", i == 0 ? line : line + 4);
            if (w > 0)
                used += (size_t)w;
            if (used >= sizeof rp->text)
                used = sizeof rp->text - 1;
        }
        if (n == 3 || line[3] == ' ')
            return 0;
    }
    return mr_error_set(err, MR_EAGAIN, "relay: reply of more than %d lines",
                        MR_SMTP_CLIENT_MAX_LINES);
}

/* Sends a command and reads the reply; the verdict by its class, with
 * `want` the one good code class (2 or 3). */
static int command(struct conn *c, const char *step, const char *cmd,
                   int want, struct mr_error *err)
{
    int rc = 0;
    struct mr_error io = {0};
    if (cmd)
        rc = send_all(c, cmd, strlen(cmd), &io);
    if (rc == 0)
        rc = read_reply(c, &io);
    if (rc < 0)
        return mr_error_set(err, rc, "%s: %s", step, io.msg);
    int cls = c->reply->code / 100;
    if (cls == want)
        return 0;
    return mr_error_set(err, cls == 5 ? MR_EINVAL : MR_EAGAIN, "%s: %s", step,
                        c->reply->text);
}

/* The message with bare LF made CRLF, every line that starts with "."
 * given one more (RFC 5321 4.5.2), and the end marker. */
static void dot_stuff(struct mr_buf *out, const char *msg, size_t len)
{
    bool bol = true;
    for (size_t i = 0; i < len; i++) {
        char ch = msg[i];
        if (bol && ch == '.')
            mr_buf_putc(out, '.');
        bol = false;
        if (ch == '\r' && i + 1 < len && msg[i + 1] == '\n')
            continue; /* the LF writes the pair */
        if (ch == '\n' || ch == '\r') {
            mr_buf_append(out, "\r\n", 2);
            bol = true;
            continue;
        }
        mr_buf_putc(out, ch);
    }
    if (!bol)
        mr_buf_append(out, "\r\n", 2);
    mr_buf_append(out, ".\r\n", 3);
}

static bool line_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < ' ' || (unsigned char)*s == 0x7f ||
            *s == '<' || *s == '>')
            return false;
    return true;
}

int mr_smtp_client_send(const struct mr_smtp_client_opts *o,
                        const char *mail_from, const char *rcpt,
                        const char *msg, size_t len,
                        struct mr_smtp_reply *reply, struct mr_error *err)
{
    struct mr_smtp_reply local;
    if (!reply)
        reply = &local;
    reply->code = 0;
    reply->text[0] = '\0';
    struct mr_error e2 = {0};
    if (!err)
        err = &e2;
    if (!o || !o->relay)
        return mr_error_set(err, MR_EINVAL, "no relay configured");
    const char *helo = o->helo ? o->helo : "localhost";
    if (!mail_from)
        mail_from = "";
    if (!rcpt || !rcpt[0] || !line_safe(rcpt) || !line_safe(mail_from) ||
        !line_safe(helo) || strlen(rcpt) > 320 || strlen(mail_from) > 320)
        return mr_error_set(err, MR_EINVAL,
                            "an address or name that cannot go into an SMTP "
                            "command");
    struct conn c = {.fd = -1, .stop = o->stop, .reply = reply};
    c.step_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    int total = o->total_ms > 0 ? o->total_ms : 5 * c.step_ms;
    c.deadline = mr_clock_mono_ms() + total;

    int rc = do_connect(&c, o->relay, err);
    if (rc < 0)
        return rc;
    char cmd[800];
    rc = command(&c, "greeting", NULL, 2, err);
    if (rc == 0) {
        snprintf(cmd, sizeof cmd, "EHLO %s\r\n", helo);
        rc = command(&c, "EHLO", cmd, 2, err);
        /* RFC 5321 4.1.1.1: an old relay may know only HELO. */
        if (rc == MR_EINVAL) {
            snprintf(cmd, sizeof cmd, "HELO %s\r\n", helo);
            rc = command(&c, "HELO", cmd, 2, err);
        }
    }
    if (rc == 0) {
        snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>\r\n", mail_from);
        rc = command(&c, "MAIL FROM", cmd, 2, err);
    }
    if (rc == 0) {
        snprintf(cmd, sizeof cmd, "RCPT TO:<%s>\r\n", rcpt);
        rc = command(&c, "RCPT TO", cmd, 2, err);
    }
    if (rc == 0)
        rc = command(&c, "DATA", "DATA\r\n", 3, err);
    if (rc == 0) {
        struct mr_buf body;
        struct mr_error io = {0};
        mr_buf_init(&body, 0);
        dot_stuff(&body, msg ? msg : "", msg ? len : 0);
        rc = send_all(&c, body.p, body.len, &io);
        mr_buf_release(&body);
        if (rc == 0)
            rc = command(&c, "end of data", NULL, 2, err);
        else
            rc = mr_error_set(err, rc, "sending the message: %s", io.msg);
    }
    /* QUIT is a courtesy: its answer changes nothing. */
    if (rc != MR_EAGAIN || c.reply->code != 0) {
        struct mr_smtp_reply keep = *reply;
        struct mr_error qe = {0};
        if (send_all(&c, "QUIT\r\n", 6, &qe) == 0)
            read_reply(&c, &qe);
        *reply = keep;
    }
    close(c.fd);
    return rc;
}
