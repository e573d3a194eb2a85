/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_smtp_client.c - the outbound SMTP client against a fake relay: a
 * thread on a loopback port that plays a script of replies and records
 * every line it is sent. Covers the happy path, multiline replies,
 * dot-stuffing and bare LFs, HELO fallback, 4xx (retry) and 5xx
 * (permanent) at each step, a silent relay (timeout; a stop flag that
 * ends the wait at once), a refused
 * connection, and replies that are not SMTP.
 *
 * The fake also speaks TLS (OpenSSL, tests/certs): STARTTLS or from the
 * connect, so the second EHLO, AUTH PLAIN and LOGIN (checked byte for
 * byte), 535 and 454, AUTH not offered, credentials refused without TLS,
 * certificate and host name verification, a handshake that never comes
 * (timeout, stop flag) and bytes injected after the 220 are covered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "outbound/smtp_client.h"
#include "smtp/tls.h"
#include "util/buf.h"

/* A reply per command the relay reads: greeting first, then one per
 * line (DATA's content counts as one "line" ending at "."). NULL
 * entries: say nothing and wait (timeout tests). */
struct fake {
    int lfd;
    int port;
    const char *const *script;
    size_t nscript;
    struct mr_buf got; /* everything the client sent */
    pthread_t tid;
    bool silent_after_greeting;
    const char *bind_ip;  /* NULL: 127.0.0.1 */
    SSL_CTX *tls;         /* server side, tests/certs; NULL: no TLS */
    bool implicit;        /* TLS from the connect */
    bool silent_at_tls;   /* after the 220 to STARTTLS: no handshake */
    SSL *ssl;             /* the session once TLS is up */
    bool tls_up;
    size_t tls_at;        /* got.len when TLS came up */
};

static void say(struct fake *f, int fd, const char *s)
{
    if (!s)
        return;
    if (f->ssl)
        (void)!SSL_write(f->ssl, s, (int)strlen(s));
    else
        (void)!write(fd, s, strlen(s));
}

static bool rd_byte(struct fake *f, int fd, char *c)
{
    if (f->ssl)
        return SSL_read(f->ssl, c, 1) == 1;
    return read(fd, c, 1) == 1;
}

/* The server's handshake on the (blocking) socket. */
static bool fake_tls(struct fake *f, int fd)
{
    f->ssl = SSL_new(f->tls);
    SSL_set_fd(f->ssl, fd);
    if (SSL_accept(f->ssl) != 1) {
        ERR_clear_error();
        return false;
    }
    f->tls_up = true;
    f->tls_at = f->got.len;
    return true;
}

/* Reads one line (through LF) into line; false at EOF. */
static bool rd_line(struct fake *f, int fd, char *line, size_t cap)
{
    struct mr_buf *got = &f->got;
    size_t n = 0;
    char c;
    while (rd_byte(f, fd, &c)) {
        mr_buf_putc(got, c);
        if (n + 1 < cap)
            line[n++] = c;
        if (c == '\n') {
            line[n] = '\0';
            return true;
        }
    }
    return false;
}

static void fake_end(struct fake *f, int fd)
{
    if (f->ssl) {
        SSL_free(f->ssl);
        f->ssl = NULL;
        ERR_clear_error();
    }
    close(fd);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    /* A client that hangs up mid-reply must not kill the test. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    if (f->implicit && !fake_tls(f, fd)) {
        fake_end(f, fd);
        return NULL;
    }
    size_t k = 0;
    say(f, fd, f->script[k++]);
    char line[2048];
    if (f->silent_after_greeting) {
        while (rd_line(f, fd, line, sizeof line)) {
        }
        fake_end(f, fd);
        return NULL;
    }
    bool in_data = false;
    while (rd_line(f, fd, line, sizeof line)) {
        if (in_data) {
            if (strcmp(line, ".\r\n") != 0)
                continue;
            in_data = false;
        }
        const char *r = k < f->nscript ? f->script[k++] : "250 ok\r\n";
        say(f, fd, r);
        if (strncmp(line, "DATA", 4) == 0 && r && r[0] == '3')
            in_data = true;
        if (strncmp(line, "QUIT", 4) == 0)
            break;
        if (strncmp(line, "STARTTLS", 8) == 0 && r && r[0] == '2' &&
            f->tls && !f->ssl) {
            if (f->silent_at_tls) {
                while (rd_line(f, fd, line, sizeof line)) {
                }
                break;
            }
            if (!fake_tls(f, fd))
                break;
        }
    }
    fake_end(f, fd);
    return NULL;
}

static void fake_start(struct fake *f, const char *const *script, size_t n)
{
    f->script = script;
    f->nscript = n;
    mr_buf_init(&f->got, 0);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (f->bind_ip)
        assert_int_equal(inet_pton(AF_INET, f->bind_ip, &a.sin_addr), 1);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t sl = sizeof a;
    getsockname(f->lfd, (struct sockaddr *)&a, &sl);
    f->port = ntohs(a.sin_port);
    assert_int_equal(listen(f->lfd, 4), 0);
    pthread_create(&f->tid, NULL, fake_main, f);
}

static void fake_stop(struct fake *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->tid, NULL);
    close(f->lfd);
    mr_buf_putc(&f->got, '\0');
}

static int send_to(struct fake *f, const char *msg, int timeout_ms,
                   struct mr_smtp_reply *reply, struct mr_error *err)
{
    char relay[32];
    snprintf(relay, sizeof relay, "127.0.0.1:%d", f->port);
    struct mr_smtp_client_opts o = {.relay = relay,
                                    .helo = "mr.test",
                                    .timeout_ms = timeout_ms};
    return mr_smtp_client_send(&o, "", "alice@example.com", msg, strlen(msg),
                               reply, err);
}

static void happy_path_with_multiline_and_dots(void **state)
{
    (void)state;
    static const char *const script[] = {
        "220-relay.test ESMTP\r\n220 welcome\r\n",
        "250-relay.test\r\n250-8BITMIME\r\n250-SIZE 1000000\r\n250 HELP\r\n",
        "250 2.1.0 ok\r\n",
        "250 2.1.5 ok\r\n",
        "354 go ahead\r\n",
        "250 2.0.0 queued as ABC\r\n",
        "221 bye\r\n",
    };
    struct fake f = {0};
    fake_start(&f, script, 7);
    struct mr_smtp_reply reply;
    struct mr_error err = {0};
    /* Bare LF, a line of one dot, a line starting with two dots, no final
     * newline. */
    const char *msg = "Subject: x\n\n.\n..two\nlast line";
    int rc = send_to(&f, msg, 2000, &reply, &err);
    fake_stop(&f);
    assert_int_equal(rc, MR_OK);
    assert_int_equal(reply.code, 250);
    assert_non_null(strstr(reply.text, "queued as ABC"));
    const char *g = f.got.p;
    assert_non_null(strstr(g, "EHLO mr.test\r\n"));
    assert_non_null(strstr(g, "MAIL FROM:<>\r\n"));
    assert_non_null(strstr(g, "RCPT TO:<alice@example.com>\r\n"));
    assert_non_null(strstr(g, "DATA\r\n"));
    assert_non_null(strstr(g, "Subject: x\r\n\r\n..\r\n...two\r\nlast line"
                              "\r\n.\r\nQUIT\r\n"));
    mr_buf_release(&f.got);
}

static void helo_when_ehlo_refused(void **state)
{
    (void)state;
    static const char *const script[] = {
        "220 old relay\r\n", "502 what is EHLO\r\n", "250 hello\r\n",
        "250 ok\r\n",        "250 ok\r\n",            "354 go\r\n",
        "250 done\r\n",
    };
    struct fake f = {0};
    fake_start(&f, script, 7);
    struct mr_error err = {0};
    int rc = send_to(&f, "Subject: y\r\n\r\nbody\r\n", 2000, NULL, &err);
    fake_stop(&f);
    assert_int_equal(rc, MR_OK);
    assert_non_null(strstr(f.got.p, "HELO mr.test\r\n"));
    mr_buf_release(&f.got);
}

/* The relay's verdict at each step: 4xx is "try again", 5xx is "never",
 * and the reply is what err and reply keep. */
static void verdicts_by_reply_class(void **state)
{
    (void)state;
    struct {
        const char *script[6];
        size_t n;
        int want;
        int code;
        const char *step;
    } cases[] = {
        {{"421 busy\r\n"}, 1, MR_EAGAIN, 421, "greeting"},
        {{"554 go away\r\n"}, 1, MR_EINVAL, 554, "greeting"},
        {{"220 hi\r\n", "250 hi\r\n", "451 4.3.0 try later\r\n"},
         3, MR_EAGAIN, 451, "MAIL FROM"},
        {{"220 hi\r\n", "250 hi\r\n", "250 ok\r\n",
          "550-5.1.1 no such user\r\n550 5.1.1 really\r\n"},
         4, MR_EINVAL, 550, "RCPT TO"},
        {{"220 hi\r\n", "250 hi\r\n", "250 ok\r\n", "250 ok\r\n",
          "354 go\r\n", "452 4.3.1 out of space\r\n"},
         6, MR_EAGAIN, 452, "end of data"},
        {{"220 hi\r\n", "250 hi\r\n", "250 ok\r\n", "250 ok\r\n",
          "554 5.7.1 spam\r\n"},
         5, MR_EINVAL, 554, "DATA"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake f = {0};
        fake_start(&f, cases[i].script, cases[i].n);
        struct mr_smtp_reply reply;
        struct mr_error err = {0};
        int rc = send_to(&f, "Subject: z\r\n\r\nb\r\n", 2000, &reply, &err);
        fake_stop(&f);
        assert_int_equal(rc, cases[i].want);
        assert_int_equal(reply.code, cases[i].code);
        assert_non_null(strstr(err.msg, cases[i].step));
        mr_buf_release(&f.got);
    }
    /* Both lines of a multiline refusal are kept. */
    static const char *const s550[] = {
        "220 hi\r\n", "250 hi\r\n", "250 ok\r\n",
        "550-5.1.1 no such user\r\n550 5.1.1 really\r\n"};
    struct fake f = {0};
    fake_start(&f, s550, 4);
    struct mr_smtp_reply reply;
    struct mr_error err = {0};
    send_to(&f, "x\r\n", 2000, &reply, &err);
    fake_stop(&f);
    assert_non_null(strstr(reply.text, "no such user"));
    assert_non_null(strstr(reply.text, "really"));
    mr_buf_release(&f.got);
}

/* A multiline reply whose last line is the bare code: nothing of an
 * earlier line is read again (the line buffer still holds it). */
static void bare_code_ends_a_multiline_reply(void **state)
{
    (void)state;
    static const char *const script[] = {
        "220 hi\r\n", "250 hi\r\n", "250 ok\r\n",
        "550-5.1.1 no such user\r\n550\r\n"};
    struct fake f = {0};
    fake_start(&f, script, 4);
    struct mr_smtp_reply reply;
    struct mr_error err = {0};
    assert_int_equal(send_to(&f, "x\r\n", 2000, &reply, &err), MR_EINVAL);
    fake_stop(&f);
    assert_int_equal(reply.code, 550);
    assert_string_equal(reply.text, "550-5.1.1 no such user");
    mr_buf_release(&f.got);
}

static void garbage_and_silence_are_retried(void **state)
{
    (void)state;
    static const char *const bad[] = {"HTTP/1.1 400 Bad Request\r\n"};
    struct fake f = {0};
    fake_start(&f, bad, 1);
    struct mr_error err = {0};
    assert_int_equal(send_to(&f, "x\r\n", 2000, NULL, &err), MR_EAGAIN);
    fake_stop(&f);
    assert_non_null(strstr(err.msg, "not an SMTP reply"));
    mr_buf_release(&f.got);

    static const char *const quiet[] = {"220 hi\r\n"};
    struct fake q = {0};
    q.silent_after_greeting = true;
    fake_start(&q, quiet, 1);
    assert_int_equal(send_to(&q, "x\r\n", 300, NULL, &err), MR_EAGAIN);
    assert_non_null(strstr(err.msg, "timed out"));
    fake_stop(&q);
    mr_buf_release(&q.got);
}

static void *stop_later(void *arg)
{
    usleep(200 * 1000);
    atomic_store((atomic_bool *)arg, true);
    return NULL;
}

/* A relay that goes silent after its greeting, a 30 s step timeout, and
 * a stop flag set 200 ms in: the call ends at once, not 30 s later. */
static void stop_ends_a_silent_transaction(void **state)
{
    (void)state;
    static const char *const quiet[] = {"220 hi\r\n"};
    struct fake q = {0};
    q.silent_after_greeting = true;
    fake_start(&q, quiet, 1);
    char relay[32];
    snprintf(relay, sizeof relay, "127.0.0.1:%d", q.port);
    atomic_bool stop;
    atomic_init(&stop, false);
    struct mr_smtp_client_opts o = {
        .relay = relay, .timeout_ms = 30000, .stop = &stop};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_later, &stop), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct mr_error err = {0};
    assert_int_equal(
        mr_smtp_client_send(&o, "", "a@b.c", "x\r\n", 3, NULL, &err),
        MR_EAGAIN);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(t, NULL);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 +
              (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 150 && ms < 1000);
    assert_non_null(strstr(err.msg, "stopped"));
    fake_stop(&q);
    mr_buf_release(&q.got);
}

static void refused_connection_and_bad_input(void **state)
{
    (void)state;
    /* A port nobody listens on: bind one, note it, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t sl = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &sl);
    char relay[32];
    snprintf(relay, sizeof relay, "127.0.0.1:%d", ntohs(a.sin_port));
    close(fd);
    struct mr_smtp_client_opts o = {.relay = relay, .timeout_ms = 1000};
    struct mr_smtp_reply reply;
    struct mr_error err = {0};
    assert_int_equal(mr_smtp_client_send(&o, "", "a@b.c", "x", 1, &reply,
                                         &err),
                     MR_EAGAIN);
    assert_int_equal(reply.code, 0);
    /* A recipient with a line break must never reach the wire. */
    assert_int_equal(mr_smtp_client_send(&o, "", "a@b.c>\r\nRCPT TO:<x@y",
                                         "x", 1, NULL, &err),
                     MR_EINVAL);
    o.relay = "no-port";
    assert_int_equal(mr_smtp_client_send(&o, "", "a@b.c", "x", 1, NULL, &err),
                     MR_EINVAL);
}

/* ---- TLS and AUTH ---- */

#define USER "alice@relay.test"
#define PASS "s3cret pass"
/* base64("\0" USER "\0" PASS), base64(USER), base64(PASS) */
#define PLAIN_B64 "AGFsaWNlQHJlbGF5LnRlc3QAczNjcmV0IHBhc3M="
#define USER_B64 "YWxpY2VAcmVsYXkudGVzdA=="
#define PASS_B64 "czNjcmV0IHBhc3M="

static const char *data_dir(void)
{
    const char *d = getenv("MR_TEST_DATA");
    return d ? d : "tests/data";
}

static SSL_CTX *server_ctx(void)
{
    char cert[4096], key[4096];
    snprintf(cert, sizeof cert, "%s/../certs/cert.pem", data_dir());
    snprintf(key, sizeof key, "%s/../certs/key.pem", data_dir());
    SSL_CTX *ctx = NULL;
    struct mr_error err = {0};
    if (mr_tls_server_ctx(cert, key, &ctx, &err) != 0)
        fail_msg("server context: %s", err.msg);
    return ctx;
}

/* ca: a file in tests/certs, or NULL for the system store. */
static SSL_CTX *client_ctx(const char *ca, bool verify)
{
    char path[4096];
    if (ca)
        snprintf(path, sizeof path, "%s/../certs/%s", data_dir(), ca);
    SSL_CTX *ctx = NULL;
    struct mr_error err = {0};
    if (mr_tls_client_ctx(ca ? path : NULL, verify, &ctx, &err) != 0)
        fail_msg("client context: %s", err.msg);
    return ctx;
}

/* Sends through f with o (relay, helo and a 2 s timeout filled in when
 * unset); host names the relay ("127.0.0.1", "localhost"). */
static int send_via(struct fake *f, struct mr_smtp_client_opts *o,
                    const char *host, struct mr_smtp_reply *reply,
                    struct mr_error *err)
{
    char relay[300];
    snprintf(relay, sizeof relay, "%s:%d", host, f->port);
    o->relay = relay;
    if (!o->helo)
        o->helo = "mr.test";
    if (!o->timeout_ms)
        o->timeout_ms = 2000;
    const char *msg = "Subject: t\r\n\r\nhi\r\n";
    int rc = mr_smtp_client_send(o, "", "bob@example.com", msg, strlen(msg),
                                 reply, err);
    o->relay = NULL;
    return rc;
}

static void fake_done(struct fake *f)
{
    fake_stop(f);
    mr_buf_release(&f->got);
    SSL_CTX_free(f->tls);
}

static const char *const starttls_plain_script[] = {
    "220 relay.test ESMTP\r\n",
    /* AUTH before TLS is offered too: the client must not use it. */
    "250-relay.test\r\n250-STARTTLS\r\n250 AUTH LOGIN\r\n",
    "220 2.0.0 go ahead\r\n",
    "250-relay.test\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN\r\n250 HELP\r\n",
    "235 2.7.0 accepted\r\n",
    "250 ok\r\n",
    "250 ok\r\n",
    "354 go\r\n",
    "250 queued\r\n",
    "221 bye\r\n",
};

/* STARTTLS, EHLO again, PLAIN preferred to LOGIN once TLS is up: every
 * byte the client sent, plain and decrypted, in order. */
static void starttls_then_auth_plain(void **state)
{
    (void)state;
    struct fake f = {.tls = server_ctx()};
    fake_start(&f, starttls_plain_script, 10);
    SSL_CTX *cctx = client_ctx("cert.pem", true);
    struct mr_smtp_client_opts o = {.tls = MR_SMTP_TLS_STARTTLS,
                                    .tls_ctx = cctx,
                                    .username = USER,
                                    .password = PASS};
    struct mr_smtp_reply reply;
    struct mr_error err = {0};
    int rc = send_via(&f, &o, "127.0.0.1", &reply, &err);
    fake_stop(&f);
    if (rc != MR_OK)
        fail_msg("send: %s", err.msg);
    assert_int_equal(reply.code, 250);
    assert_true(f.tls_up);
    assert_string_equal(f.got.p,
                        "EHLO mr.test\r\n"
                        "STARTTLS\r\n"
                        "EHLO mr.test\r\n"
                        "AUTH PLAIN " PLAIN_B64 "\r\n"
                        "MAIL FROM:<>\r\n"
                        "RCPT TO:<bob@example.com>\r\n"
                        "DATA\r\n"
                        "Subject: t\r\n\r\nhi\r\n.\r\n"
                        "QUIT\r\n");
    /* Everything from the second EHLO on went over TLS. */
    assert_int_equal(f.tls_at, strlen("EHLO mr.test\r\nSTARTTLS\r\n"));
    mr_buf_release(&f.got);
    SSL_CTX_free(f.tls);
    SSL_CTX_free(cctx);
}

/* TLS from the connect (port 465 style), a relay offering only LOGIN. */
static void implicit_tls_and_auth_login(void **state)
{
    (void)state;
    static const char *const script[] = {
        "220 relay.test ESMTP\r\n",
        "250-relay.test\r\n250 AUTH=LOGIN\r\n",
        "334 VXNlcm5hbWU6\r\n",
        "334 UGFzc3dvcmQ6\r\n",
        "235 2.7.0 ok\r\n",
        "250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 queued\r\n",
        "221 bye\r\n",
    };
    struct fake f = {.tls = server_ctx(), .implicit = true};
    fake_start(&f, script, 10);
    SSL_CTX *cctx = client_ctx("cert.pem", true);
    struct mr_smtp_client_opts o = {.tls = MR_SMTP_TLS_IMPLICIT,
                                    .tls_ctx = cctx,
                                    .username = USER,
                                    .password = PASS};
    struct mr_error err = {0};
    int rc = send_via(&f, &o, "localhost", NULL, &err);
    fake_stop(&f);
    if (rc != MR_OK)
        fail_msg("send: %s", err.msg);
    assert_true(f.tls_up);
    assert_int_equal(f.tls_at, 0);
    assert_non_null(strstr(f.got.p, "EHLO mr.test\r\n"
                                    "AUTH LOGIN\r\n" USER_B64 "\r\n" PASS_B64
                                    "\r\nMAIL FROM:<>\r\n"));
    mr_buf_release(&f.got);
    SSL_CTX_free(f.tls);
    SSL_CTX_free(cctx);
}

/* 535: bad credentials will not fix themselves (permanent, the reply
 * kept); 454: try again. The password is in no text we return. */
static void auth_refusals(void **state)
{
    (void)state;
    struct {
        const char *reply;
        int code;
        int want;
        const char *kept;
    } cases[] = {
        {"535 5.7.8 Authentication credentials invalid\r\n", 535,
         MR_EINVAL, "535 5.7.8 Authentication credentials invalid"},
        {"454 4.7.0 Temporary authentication failure\r\n", 454, MR_EAGAIN,
         "454 4.7.0 Temporary authentication failure"},
    };
    SSL_CTX *cctx = client_ctx("cert.pem", true);
    for (size_t i = 0; i < 2; i++) {
        const char *script[] = {
            "220 relay.test\r\n",
            "250-relay.test\r\n250 STARTTLS\r\n",
            "220 go\r\n",
            "250-relay.test\r\n250 AUTH PLAIN LOGIN\r\n",
            cases[i].reply,
            "221 bye\r\n",
        };
        struct fake f = {.tls = server_ctx()};
        fake_start(&f, script, 6);
        struct mr_smtp_client_opts o = {.tls = MR_SMTP_TLS_REQUIRED,
                                        .tls_ctx = cctx,
                                        .username = USER,
                                        .password = PASS};
        struct mr_smtp_reply reply;
        struct mr_error err = {0};
        int rc = send_via(&f, &o, "127.0.0.1", &reply, &err);
        fake_stop(&f);
        assert_int_equal(rc, cases[i].want);
        assert_int_equal(reply.code, cases[i].code);
        assert_non_null(strstr(err.msg, "AUTH"));
        assert_non_null(strstr(err.msg, cases[i].kept));
        assert_string_equal(reply.text, cases[i].kept);
        assert_null(strstr(err.msg, PASS));
        assert_null(strstr(err.msg, PLAIN_B64));
        assert_null(strstr(reply.text, PLAIN_B64));
        assert_null(strstr(f.got.p, "MAIL FROM"));
        assert_non_null(strstr(f.got.p, "QUIT\r\n"));
        mr_buf_release(&f.got);
        SSL_CTX_free(f.tls);
    }
    SSL_CTX_free(cctx);
}

/* Credentials configured, but after TLS the relay offers no AUTH, or no
 * mechanism we speak: retried, nothing sent. */
static void auth_not_offered(void **state)
{
    (void)state;
    const char *ehlos[] = {"250-relay.test\r\n250 8BITMIME\r\n",
                           "250-relay.test\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n"};
    const char *want[] = {"does not offer AUTH", "neither PLAIN nor LOGIN"};
    SSL_CTX *cctx = client_ctx("cert.pem", true);
    for (size_t i = 0; i < 2; i++) {
        const char *script[] = {"220 relay.test\r\n",
                                "250-relay.test\r\n250 STARTTLS\r\n",
                                "220 go\r\n", ehlos[i], "221 bye\r\n"};
        struct fake f = {.tls = server_ctx()};
        fake_start(&f, script, 5);
        struct mr_smtp_client_opts o = {.tls = MR_SMTP_TLS_STARTTLS,
                                        .tls_ctx = cctx,
                                        .username = USER,
                                        .password = PASS};
        struct mr_error err = {0};
        int rc = send_via(&f, &o, "127.0.0.1", NULL, &err);
        fake_stop(&f);
        assert_int_equal(rc, MR_EAGAIN);
        assert_non_null(strstr(err.msg, want[i]));
        assert_true(f.tls_up);
        assert_null(strstr(f.got.p, "AUTH"));
        assert_null(strstr(f.got.p, "MAIL FROM"));
        mr_buf_release(&f.got);
        SSL_CTX_free(f.tls);
    }
    SSL_CTX_free(cctx);
}

/* Credentials never go in the clear: refused before connecting when TLS
 * is off, refused after EHLO when the relay does not offer STARTTLS;
 * allow_plain_auth lets them through. */
static void plain_auth_refused_without_tls(void **state)
{
    (void)state;
    static const char *const script[] = {
        "220 relay.test\r\n",
        "250-relay.test\r\n250 AUTH PLAIN LOGIN\r\n",
        "235 ok\r\n", "250 ok\r\n", "250 ok\r\n", "354 go\r\n",
        "250 queued\r\n", "221 bye\r\n",
    };
    /* tls none: nothing reaches the wire at all. */
    struct fake f = {0};
    fake_start(&f, script, 8);
    struct mr_smtp_client_opts o = {.username = USER, .password = PASS};
    struct mr_error err = {0};
    assert_int_equal(send_via(&f, &o, "127.0.0.1", NULL, &err), MR_EINVAL);
    fake_stop(&f);
    assert_non_null(strstr(err.msg, "without TLS"));
    assert_string_equal(f.got.p, "");
    mr_buf_release(&f.got);

    /* Opportunistic STARTTLS that the relay does not offer. */
    SSL_CTX *cctx = client_ctx("cert.pem", true);
    struct fake g = {0};
    fake_start(&g, script, 8);
    o = (struct mr_smtp_client_opts){.tls = MR_SMTP_TLS_STARTTLS,
                                     .tls_ctx = cctx,
                                     .username = USER,
                                     .password = PASS};
    assert_int_equal(send_via(&g, &o, "127.0.0.1", NULL, &err), MR_EAGAIN);
    fake_stop(&g);
    assert_non_null(strstr(err.msg, "did not offer STARTTLS"));
    assert_null(strstr(g.got.p, "AUTH"));
    assert_null(strstr(g.got.p, PLAIN_B64));
    mr_buf_release(&g.got);

    /* Allowed by the operator: PLAIN in the clear. */
    struct fake h = {0};
    fake_start(&h, script, 8);
    o = (struct mr_smtp_client_opts){.username = USER,
                                     .password = PASS,
                                     .allow_plain_auth = true};
    int rc = send_via(&h, &o, "127.0.0.1", NULL, &err);
    fake_stop(&h);
    if (rc != MR_OK)
        fail_msg("send: %s", err.msg);
    assert_non_null(strstr(h.got.p, "EHLO mr.test\r\nAUTH PLAIN " PLAIN_B64
                                    "\r\nMAIL FROM:<>\r\n"));
    mr_buf_release(&h.got);
    SSL_CTX_free(cctx);
}

/* required: no STARTTLS offered, or refused, is "try again"; starttls
 * (opportunistic) goes on in the clear. */
static void required_and_opportunistic_starttls(void **state)
{
    (void)state;
    static const char *const no_tls[] = {
        "220 relay.test\r\n", "250 relay.test\r\n", "250 ok\r\n", "250 ok\r\n",
        "354 go\r\n", "250 queued\r\n", "221 bye\r\n"};
    static const char *const refused[] = {
        "220 relay.test\r\n", "250-relay.test\r\n250 STARTTLS\r\n",
        "454 4.7.0 TLS not available\r\n", "250 ok\r\n", "250 ok\r\n",
        "354 go\r\n", "250 queued\r\n", "221 bye\r\n"};
    SSL_CTX *cctx = client_ctx("cert.pem", true);
    struct {
        const char *const *script;
        size_t n;
        enum mr_smtp_tls tls;
        int want;
        const char *msg;
    } cases[] = {
        {no_tls, 7, MR_SMTP_TLS_REQUIRED, MR_EAGAIN, "does not offer it"},
        {no_tls, 7, MR_SMTP_TLS_STARTTLS, MR_OK, ""},
        {refused, 8, MR_SMTP_TLS_REQUIRED, MR_EAGAIN, "TLS not available"},
        {refused, 8, MR_SMTP_TLS_STARTTLS, MR_OK, ""},
    };
    for (size_t i = 0; i < 4; i++) {
        struct fake f = {0};
        fake_start(&f, cases[i].script, cases[i].n);
        struct mr_smtp_client_opts o = {.tls = cases[i].tls, .tls_ctx = cctx};
        struct mr_error err = {0};
        int rc = send_via(&f, &o, "127.0.0.1", NULL, &err);
        fake_stop(&f);
        if (rc != cases[i].want)
            fail_msg("case %zu: %d %s", i, rc, err.msg);
        if (rc != MR_OK) {
            assert_non_null(strstr(err.msg, cases[i].msg));
            assert_null(strstr(f.got.p, "MAIL FROM"));
        }
        mr_buf_release(&f.got);
    }
    SSL_CTX_free(cctx);
}

/* The chain must lead to what the client trusts, and the certificate
 * must name the relay. */
static void certificate_verification(void **state)
{
    (void)state;
    struct {
        const char *ca;
        bool verify;
        const char *bind_ip;
        const char *host;
        int want;
    } cases[] = {
        {"cert.pem", true, NULL, "127.0.0.1", MR_OK},
        {"cert.pem", true, NULL, "localhost", MR_OK},
        {"other-ca.pem", true, NULL, "127.0.0.1", MR_EAGAIN},
        {NULL, true, NULL, "127.0.0.1", MR_EAGAIN}, /* the system store */
        {"other-ca.pem", false, NULL, "127.0.0.1", MR_OK},
        /* Trusted chain, but the certificate names 127.0.0.1, not .2. */
        {"cert.pem", true, "127.0.0.2", "127.0.0.2", MR_EAGAIN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake f = {.tls = server_ctx(), .bind_ip = cases[i].bind_ip};
        fake_start(&f, starttls_plain_script, 10);
        SSL_CTX *cctx = client_ctx(cases[i].ca, cases[i].verify);
        struct mr_smtp_client_opts o = {.tls = MR_SMTP_TLS_STARTTLS,
                                        .tls_ctx = cctx,
                                        .username = USER,
                                        .password = PASS};
        struct mr_error err = {0};
        int rc = send_via(&f, &o, cases[i].host, NULL, &err);
        fake_stop(&f);
        if (rc != cases[i].want)
            fail_msg("case %zu: %d %s", i, rc, err.msg);
        if (rc != MR_OK) {
            assert_non_null(strstr(err.msg, "not trusted"));
            assert_false(f.tls_up);
            /* Not a byte after the failed handshake, AUTH least of all. */
            assert_null(strstr(f.got.p, "AUTH"));
        }
        mr_buf_release(&f.got);
        SSL_CTX_free(f.tls);
        SSL_CTX_free(cctx);
    }
}

/* A relay that answers STARTTLS and then never shakes hands: the step
 * timeout ends it, and so does the stop flag, long before. */
static void handshake_timeout_and_stop(void **state)
{
    (void)state;
    static const char *const script[] = {
        "220 relay.test\r\n", "250-relay.test\r\n250 STARTTLS\r\n",
        "220 go\r\n"};
    SSL_CTX *cctx = client_ctx("cert.pem", true);
    struct fake f = {.tls = server_ctx(), .silent_at_tls = true};
    fake_start(&f, script, 3);
    struct mr_smtp_client_opts o = {.tls = MR_SMTP_TLS_REQUIRED,
                                    .tls_ctx = cctx,
                                    .timeout_ms = 300};
    struct mr_error err = {0};
    assert_int_equal(send_via(&f, &o, "127.0.0.1", NULL, &err), MR_EAGAIN);
    fake_done(&f);
    assert_non_null(strstr(err.msg, "TLS handshake"));
    assert_non_null(strstr(err.msg, "timed out"));

    struct fake g = {.tls = server_ctx(), .silent_at_tls = true};
    fake_start(&g, script, 3);
    atomic_bool stop;
    atomic_init(&stop, false);
    o = (struct mr_smtp_client_opts){.tls = MR_SMTP_TLS_REQUIRED,
                                     .tls_ctx = cctx,
                                     .timeout_ms = 30000,
                                     .stop = &stop};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_later, &stop), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(send_via(&g, &o, "127.0.0.1", NULL, &err), MR_EAGAIN);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(t, NULL);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 +
              (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 150 && ms < 1000);
    assert_non_null(strstr(err.msg, "TLS handshake"));
    assert_non_null(strstr(err.msg, "stopped"));
    fake_done(&g);
    SSL_CTX_free(cctx);
}

/* A reply pipelined after the 220 to STARTTLS came in the clear; taking
 * it as the first reply under TLS is the RFC 3207 5 injection. */
static void bytes_after_starttls_reply_refused(void **state)
{
    (void)state;
    static const char *const script[] = {
        "220 relay.test\r\n", "250-relay.test\r\n250 STARTTLS\r\n",
        "220 go\r\n250-injected\r\n250 AUTH PLAIN\r\n"};
    SSL_CTX *cctx = client_ctx("cert.pem", true);
    struct fake f = {.tls = server_ctx(), .silent_at_tls = true};
    fake_start(&f, script, 3);
    struct mr_smtp_client_opts o = {.tls = MR_SMTP_TLS_STARTTLS,
                                    .tls_ctx = cctx};
    struct mr_error err = {0};
    assert_int_equal(send_via(&f, &o, "127.0.0.1", NULL, &err), MR_EAGAIN);
    fake_done(&f);
    assert_non_null(strstr(err.msg, "more after its 220"));
    SSL_CTX_free(cctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(happy_path_with_multiline_and_dots),
        cmocka_unit_test(helo_when_ehlo_refused),
        cmocka_unit_test(verdicts_by_reply_class),
        cmocka_unit_test(bare_code_ends_a_multiline_reply),
        cmocka_unit_test(garbage_and_silence_are_retried),
        cmocka_unit_test(refused_connection_and_bad_input),
        cmocka_unit_test(stop_ends_a_silent_transaction),
        cmocka_unit_test(starttls_then_auth_plain),
        cmocka_unit_test(implicit_tls_and_auth_login),
        cmocka_unit_test(auth_refusals),
        cmocka_unit_test(auth_not_offered),
        cmocka_unit_test(plain_auth_refused_without_tls),
        cmocka_unit_test(required_and_opportunistic_starttls),
        cmocka_unit_test(certificate_verification),
        cmocka_unit_test(handshake_timeout_and_stop),
        cmocka_unit_test(bytes_after_starttls_reply_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
