/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_smtp_client.c - the outbound SMTP client against a fake relay: a
 * thread on a loopback port that plays a script of replies and records
 * every line it is sent. Covers the happy path, multiline replies,
 * dot-stuffing and bare LFs, HELO fallback, 4xx (retry) and 5xx
 * (permanent) at each step, a silent relay (timeout; a stop flag that
 * ends the wait at once), a refused
 * connection, and replies that are not SMTP.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "outbound/smtp_client.h"
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
};

static void say(int fd, const char *s)
{
    if (s)
        (void)!write(fd, s, strlen(s));
}

/* Reads one line (through LF) into line; false at EOF. */
static bool rd_line(int fd, struct mr_buf *got, char *line, size_t cap)
{
    size_t n = 0;
    char c;
    while (read(fd, &c, 1) == 1) {
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

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t k = 0;
    say(fd, f->script[k++]);
    if (f->silent_after_greeting) {
        char line[2048];
        while (rd_line(fd, &f->got, line, sizeof line)) {
        }
        close(fd);
        return NULL;
    }
    char line[2048];
    bool in_data = false;
    while (rd_line(fd, &f->got, line, sizeof line)) {
        if (in_data) {
            if (strcmp(line, ".\r\n") != 0)
                continue;
            in_data = false;
        }
        const char *r = k < f->nscript ? f->script[k++] : "250 ok\r\n";
        say(fd, r);
        if (strncmp(line, "DATA", 4) == 0 && r && r[0] == '3')
            in_data = true;
        if (strncmp(line, "QUIT", 4) == 0)
            break;
    }
    close(fd);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
