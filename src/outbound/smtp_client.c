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
 *
 * TLS runs on the same non-blocking socket: every OpenSSL call that
 * wants the socket (SSL_ERROR_WANT_READ or _WRITE, the handshake's
 * included) goes back through the same bounded wait, so the deadlines
 * and the stop flag cover TLS exactly as they cover plain SMTP.
 */
#include "outbound/smtp_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h" /* mr_config_listen_split */
#include "smtp/tls.h"
#include "util/buf.h"
#include "util/clock.h"

#define STOP_SLICE_MS 100

/* What the relay's EHLO offers that we use. */
struct caps {
    bool starttls;
    bool auth; /* the AUTH keyword, with any mechanisms */
    bool auth_plain;
    bool auth_login;
};

struct conn {
    int fd;
    SSL *ssl;             /* NULL until TLS is up */
    bool broken;          /* a read, write or handshake failed: no QUIT */
    struct caps *caps;    /* not NULL: read_reply notes EHLO keywords */
    bool sigpipe_blocked; /* the guard below is in force */
    bool sigpipe_was_pending;
    sigset_t old_mask;
    char why[160]; /* the detail of the last I/O failure */
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

static int do_connect(struct conn *c, const char *relay, const char *host,
                      int port, struct mr_error *err)
{
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

/* io_send and io_recv: bytes moved (> 0), 0 at the end of the stream
 * (io_recv only), IO_WAIT when the socket must become ready for *want
 * first, IO_FAIL with the reason in c->why. */
#define IO_WAIT (-2)
#define IO_FAIL (-1)

static ssize_t tls_outcome(struct conn *c, int r, short *want)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return IO_WAIT;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SSL_ERROR_SYSCALL && errno != 0)
        snprintf(c->why, sizeof c->why, "%s", strerror(errno));
    else
        mr_tls_error_text(c->why, sizeof c->why);
    return IO_FAIL;
}

static ssize_t io_send(struct conn *c, const char *p, size_t n, short *want)
{
    if (c->ssl) {
        size_t w = 0;
        errno = 0;
        int r = SSL_write_ex(c->ssl, p, n, &w);
        if (r == 1)
            return (ssize_t)w;
        ssize_t o = tls_outcome(c, r, want);
        if (o == 0) {
            snprintf(c->why, sizeof c->why, "connection closed");
            return IO_FAIL;
        }
        return o;
    }
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w > 0)
        return w;
    if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
        *want = errno == EINTR ? 0 : POLLOUT;
        return IO_WAIT;
    }
    snprintf(c->why, sizeof c->why, "%s",
             w == 0 ? "nothing written" : strerror(errno));
    return IO_FAIL;
}

static ssize_t io_recv(struct conn *c, char *p, size_t n, short *want)
{
    if (c->ssl) {
        size_t got = 0;
        errno = 0;
        int r = SSL_read_ex(c->ssl, p, n, &got);
        if (r == 1)
            return (ssize_t)got;
        return tls_outcome(c, r, want);
    }
    ssize_t r = recv(c->fd, p, n, 0);
    if (r >= 0)
        return r;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
        *want = errno == EINTR ? 0 : POLLIN;
        return IO_WAIT;
    }
    snprintf(c->why, sizeof c->why, "%s", strerror(errno));
    return IO_FAIL;
}

/* Waits as an IO_WAIT asked (want 0: EINTR, go again at once). */
static int io_wait(struct conn *c, short want, const char *timed_out,
                   struct mr_error *err)
{
    if (want == 0)
        return 0;
    int w = wait_fd(c, want);
    if (w == 1)
        return 0;
    c->broken = true;
    return mr_error_set(err, MR_EAGAIN, "relay: %s",
                        wait_failed(c, w, timed_out));
}

static int send_all(struct conn *c, const char *p, size_t n,
                    struct mr_error *err)
{
    while (n > 0) {
        short want = 0;
        ssize_t w = io_send(c, p, n, &want);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w == IO_WAIT) {
            int rc = io_wait(c, want, "timed out writing", err);
            if (rc < 0)
                return rc;
            continue;
        }
        c->broken = true;
        return mr_error_set(err, MR_EAGAIN, "relay: write failed: %s",
                            c->why);
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
            if (keep >= cap) {
                c->broken = true;
                return mr_error_set(err, MR_EAGAIN,
                                    "relay: reply line over %zu bytes",
                                    cap - 1);
            }
            memcpy(line, c->in, keep);
            line[keep] = '\0';
            *len = keep;
            memmove(c->in, nl + 1, c->in_len - n - 1);
            c->in_len -= n + 1;
            return 0;
        }
        if (c->in_len >= sizeof c->in || c->in_len >= cap) {
            c->broken = true;
            return mr_error_set(err, MR_EAGAIN,
                                "relay: reply line over %zu bytes", cap - 1);
        }
        short want = 0;
        ssize_t r = io_recv(c, c->in + c->in_len, sizeof c->in - c->in_len,
                            &want);
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        if (r == IO_WAIT) {
            int rc = io_wait(c, want, "timed out waiting for a reply", err);
            if (rc < 0)
                return rc;
            continue;
        }
        c->broken = true;
        if (r == 0)
            return mr_error_set(err, MR_EAGAIN,
                                "relay closed the connection");
        return mr_error_set(err, MR_EAGAIN, "relay: read failed: %s", c->why);
    }
}

/* An EHLO keyword line (after "250-"): STARTTLS, and AUTH with its
 * mechanisms ("AUTH=" is what some servers said before RFC 4954). */
static void note_capability(struct caps *k, char *s)
{
    if (strcasecmp(s, "STARTTLS") == 0) {
        k->starttls = true;
        return;
    }
    if (strncasecmp(s, "AUTH", 4) != 0 || (s[4] != ' ' && s[4] != '='))
        return;
    k->auth = true;
    char *save = NULL;
    for (char *t = strtok_r(s + 5, " ", &save); t;
         t = strtok_r(NULL, " ", &save)) {
        if (strcasecmp(t, "PLAIN") == 0)
            k->auth_plain = true;
        else if (strcasecmp(t, "LOGIN") == 0)
            k->auth_login = true;
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
        if (!digits || (n > 3 && line[3] != ' ' && line[3] != '-')) {
            c->broken = true;
            return mr_error_set(err, MR_EAGAIN,
                                "relay: not an SMTP reply: '%.60s'", line);
        }
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
                   (line[2] - '0');
        if (i > 0 && code != rp->code) {
            c->broken = true;
            return mr_error_set(err, MR_EAGAIN,
                                "relay: reply changed its code mid-way");
        }
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
        if (c->caps && i > 0 && n > 4)
            note_capability(c->caps, line + 4);
        if (n == 3 || line[3] == ' ')
            return 0;
    }
    c->broken = true;
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

/* OpenSSL writes with write(2), not send(MSG_NOSIGNAL), so a relay that
 * closes mid-write would raise SIGPIPE, whose default kills the process.
 * A library must not change the process's dispositions: block it in this
 * thread while TLS is up, and swallow one that arrived meanwhile. */
static void sigpipe_block(struct conn *c)
{
    if (c->sigpipe_blocked)
        return;
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    c->sigpipe_was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &c->old_mask);
    c->sigpipe_blocked = true;
}

static void sigpipe_restore(struct conn *c)
{
    if (!c->sigpipe_blocked)
        return;
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    if (!c->sigpipe_was_pending && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &c->old_mask, NULL);
    c->sigpipe_blocked = false;
}

/* The TLS handshake on the connected socket; host is the name the
 * certificate must carry (when the context verifies). */
static int tls_start(struct conn *c, SSL_CTX *ctx, const char *host,
                     struct mr_error *err)
{
    sigpipe_block(c);
    ERR_clear_error();
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        c->broken = true;
        mr_tls_error_text(c->why, sizeof c->why);
        return mr_error_set(err, MR_EAGAIN, "TLS: %s", c->why);
    }
    int rc = mr_tls_client_expect(c->ssl, host, err);
    if (rc < 0) {
        c->broken = true;
        return rc;
    }
    for (;;) {
        errno = 0;
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        short want = 0;
        ssize_t o = tls_outcome(c, r, &want);
        if (o == IO_WAIT) {
            struct mr_error we = {0};
            if (io_wait(c, want, "timed out", &we) == 0)
                continue;
            return mr_error_set(err, MR_EAGAIN, "TLS handshake: %s", we.msg);
        }
        c->broken = true;
        long v = SSL_get_verify_result(c->ssl);
        if (v != X509_V_OK)
            return mr_error_set(err, MR_EAGAIN,
                                "TLS handshake: the relay's certificate is "
                                "not trusted for '%s': %s",
                                host, X509_verify_cert_error_string(v));
        return mr_error_set(err, MR_EAGAIN, "TLS handshake failed: %s",
                            o == 0 ? "connection closed" : c->why);
    }
}

/* EHLO, noting its keywords in *k; HELO (no keywords) when the relay
 * refuses EHLO, as RFC 5321 4.1.1.1 allows an old relay. */
static int ehlo(struct conn *c, const char *helo, struct caps *k,
                struct mr_error *err)
{
    char cmd[300];
    *k = (struct caps){0};
    snprintf(cmd, sizeof cmd, "EHLO %s\r\n", helo);
    c->caps = k;
    int rc = command(c, "EHLO", cmd, 2, err);
    c->caps = NULL;
    if (rc == MR_EINVAL) {
        *k = (struct caps){0};
        snprintf(cmd, sizeof cmd, "HELO %s\r\n", helo);
        rc = command(c, "HELO", cmd, 2, err);
    }
    return rc;
}

/* STARTTLS as o->tls asks, then EHLO again: what the relay said before
 * the handshake counted for nothing (RFC 3207 4.2). */
static int maybe_starttls(struct conn *c, const struct mr_smtp_client_opts *o,
                          const char *host, const char *helo, struct caps *k,
                          struct mr_error *err)
{
    if (c->ssl || (o->tls != MR_SMTP_TLS_STARTTLS &&
                   o->tls != MR_SMTP_TLS_REQUIRED))
        return 0;
    if (!k->starttls) {
        if (o->tls == MR_SMTP_TLS_STARTTLS)
            return 0;
        return mr_error_set(err, MR_EAGAIN,
                            "STARTTLS: the relay does not offer it and "
                            "TLS is required");
    }
    struct mr_error se = {0};
    int rc = command(c, "STARTTLS", "STARTTLS\r\n", 2, &se);
    if (rc < 0) {
        if (o->tls == MR_SMTP_TLS_STARTTLS && !c->broken)
            return 0; /* opportunistic: carry on in the clear */
        return mr_error_set(err, MR_EAGAIN, "%s%s", se.msg,
                            c->broken ? "" : " (and TLS is required)");
    }
    /* Bytes after the 220 came in the clear and would be read as if
     * they came over TLS (RFC 3207 5): a relay, or someone between, is
     * injecting. */
    if (c->in_len > 0) {
        c->broken = true;
        return mr_error_set(err, MR_EAGAIN,
                            "STARTTLS: the relay sent more after its 220");
    }
    rc = tls_start(c, o->tls_ctx, host, err);
    if (rc < 0)
        return rc;
    return ehlo(c, helo, k, err);
}

/* AUTH PLAIN (RFC 4616) when offered, else LOGIN; 235 is success, 535
 * and other 5xx are permanent (MR_EINVAL), 454 and other 4xx retried. */
static int authenticate(struct conn *c, const struct mr_smtp_client_opts *o,
                        const struct caps *k, struct mr_error *err)
{
    if (!c->ssl && !o->allow_plain_auth)
        return mr_error_set(err, MR_EAGAIN,
                            "AUTH: the relay did not offer STARTTLS and "
                            "credentials are not sent without TLS "
                            "(outbound.allow_plain_auth)");
    if (!k->auth)
        return mr_error_set(err, MR_EAGAIN,
                            "AUTH: the relay does not offer AUTH, and "
                            "credentials are configured");
    if (!k->auth_plain && !k->auth_login)
        return mr_error_set(err, MR_EAGAIN,
                            "AUTH: the relay offers neither PLAIN nor LOGIN");
    size_t ul = strlen(o->username), pl = strlen(o->password);
    /* Sized for PLAIN's "\0user\0password" in base64 and the command. */
    unsigned char raw[2 * MR_SMTP_CLIENT_CRED_MAX + 2];
    char cmd[4 * (sizeof raw + 2) / 3 + 32];
    int rc;
    if (k->auth_plain) {
        raw[0] = '\0';
        memcpy(raw + 1, o->username, ul);
        raw[1 + ul] = '\0';
        memcpy(raw + 2 + ul, o->password, pl);
        memcpy(cmd, "AUTH PLAIN ", 11);
        int b = EVP_EncodeBlock((unsigned char *)cmd + 11, raw,
                                (int)(2 + ul + pl));
        memcpy(cmd + 11 + b, "\r\n", 3);
        rc = command(c, "AUTH PLAIN", cmd, 2, err);
    } else {
        rc = command(c, "AUTH LOGIN", "AUTH LOGIN\r\n", 3, err);
        if (rc == 0) {
            int b = EVP_EncodeBlock((unsigned char *)cmd,
                                    (const unsigned char *)o->username,
                                    (int)ul);
            memcpy(cmd + b, "\r\n", 3);
            rc = command(c, "AUTH LOGIN (username)", cmd, 3, err);
        }
        if (rc == 0) {
            int b = EVP_EncodeBlock((unsigned char *)cmd,
                                    (const unsigned char *)o->password,
                                    (int)pl);
            memcpy(cmd + b, "\r\n", 3);
            rc = command(c, "AUTH LOGIN (password)", cmd, 2, err);
        }
    }
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(cmd, sizeof cmd);
    return rc;
}

static int check_opts(const struct mr_smtp_client_opts *o, const char *helo,
                      const char *mail_from, const char *rcpt,
                      struct mr_error *err)
{
    if (!o || !o->relay)
        return mr_error_set(err, MR_EINVAL, "no relay configured");
    if (!rcpt || !rcpt[0] || !line_safe(rcpt) || !line_safe(mail_from) ||
        !line_safe(helo) || strlen(rcpt) > 320 || strlen(mail_from) > 320 ||
        strlen(helo) > 255)
        return mr_error_set(err, MR_EINVAL,
                            "an address or name that cannot go into an SMTP "
                            "command");
    if (o->tls != MR_SMTP_TLS_NONE && o->tls_ctx == NULL)
        return mr_error_set(err, MR_EINVAL, "TLS asked for without a context");
    if ((o->username == NULL) != (o->password == NULL))
        return mr_error_set(err, MR_EINVAL,
                            "AUTH needs both a username and a password");
    if (o->username &&
        (o->username[0] == '\0' ||
         strlen(o->username) > MR_SMTP_CLIENT_CRED_MAX ||
         strlen(o->password) > MR_SMTP_CLIENT_CRED_MAX))
        return mr_error_set(err, MR_EINVAL,
                            "AUTH: username empty, or username or password "
                            "longer than %d bytes",
                            MR_SMTP_CLIENT_CRED_MAX);
    /* Decided before connecting, so nothing at all reaches the wire. */
    if (o->username && o->tls == MR_SMTP_TLS_NONE && !o->allow_plain_auth)
        return mr_error_set(err, MR_EINVAL,
                            "AUTH: credentials are not sent without TLS "
                            "(outbound.tls is none; outbound.allow_plain_auth "
                            "would allow it)");
    return 0;
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
    const char *helo = o && o->helo ? o->helo : "localhost";
    if (!mail_from)
        mail_from = "";
    int rc = check_opts(o, helo, mail_from, rcpt, err);
    if (rc < 0)
        return rc;
    char host[256];
    int port;
    struct mr_error se = {0};
    if (mr_config_listen_split(o->relay, host, sizeof host, &port, &se) < 0)
        return mr_error_set(err, MR_EINVAL, "relay: %s", se.msg);
    struct conn c = {.fd = -1, .stop = o->stop, .reply = reply};
    c.step_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    int total = o->total_ms > 0 ? o->total_ms : 5 * c.step_ms;
    c.deadline = mr_clock_mono_ms() + total;

    rc = do_connect(&c, o->relay, host, port, err);
    if (rc < 0)
        return rc;
    struct caps caps = {0};
    char cmd[800];
    if (o->tls == MR_SMTP_TLS_IMPLICIT)
        rc = tls_start(&c, o->tls_ctx, host, err);
    if (rc == 0)
        rc = command(&c, "greeting", NULL, 2, err);
    if (rc == 0)
        rc = ehlo(&c, helo, &caps, err);
    if (rc == 0)
        rc = maybe_starttls(&c, o, host, helo, &caps, err);
    if (rc == 0 && o->username)
        rc = authenticate(&c, o, &caps, err);
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
    if (!c.broken) {
        struct mr_smtp_reply keep = *reply;
        struct mr_error qe = {0};
        if (send_all(&c, "QUIT\r\n", 6, &qe) == 0)
            read_reply(&c, &qe);
        *reply = keep;
    }
    if (c.ssl) {
        /* One non-blocking close_notify; no wait for the relay's. */
        if (!c.broken)
            (void)SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
        ERR_clear_error();
    }
    close(c.fd);
    sigpipe_restore(&c);
    return rc;
}
