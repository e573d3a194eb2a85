/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/smtp: the protocol engine driven by scripted input
 * (C cases here, dialogues in tests/data/smtp/), then the socket
 * server on loopback: sessions from several threads, STARTTLS with
 * tests/certs, connection limits, timeouts and mr_smtp_stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smtp/smtp-private.h"
#include "smtp/smtp.h"
#include "util/buf.h"
#include "util/error.h"

/* ------------------------------------------------------------------ */
/* The test handler: thread-safe, records what it was given. */

struct fake {
    pthread_mutex_t lock;
    int delivered;
    char *msg; /* the last message, as delivered */
    size_t msg_len;
    char helo[300];
    char mail_from[300];
    char rcpt[8][300];
    size_t nrcpt;
    bool tls, lmtp, smtputf8, body_8bit;
    char remote_ip[64];
    int deliver_rc; /* what deliver returns */
    const char *deliver_msg;
    int notes_connect, notes_reject, notes_tempfail, notes_accepted;
    char last_accepted[64];
};

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
}

static void fake_release(struct fake *f)
{
    free(f->msg);
    pthread_mutex_destroy(&f->lock);
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int fake_rcpt(void *ctx, const char *addr, struct mr_error *err)
{
    (void)ctx;
    if (starts(addr, "unknown"))
        return mr_error_set(err, MR_ENOTFOUND, "no such inbox");
    if (starts(addr, "bad"))
        return mr_error_set(err, MR_EINVAL, "bad mailbox");
    if (starts(addr, "temp"))
        return mr_error_set(err, MR_EAGAIN, "db busy");
    return 0;
}

static int fake_deliver(void *ctx, const struct mr_smtp_envelope *env,
                        const char *msg, size_t len, int *status,
                        struct mr_error *err)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    free(f->msg);
    f->msg = malloc(len + 1);
    memcpy(f->msg, msg, len);
    f->msg[len] = '\0';
    f->msg_len = len;
    snprintf(f->helo, sizeof(f->helo), "%s", env->helo);
    snprintf(f->mail_from, sizeof(f->mail_from), "%s", env->mail_from);
    f->nrcpt = env->nrcpt;
    for (size_t i = 0; i < env->nrcpt && i < 8; i++) {
        snprintf(f->rcpt[i], sizeof(f->rcpt[i]), "%s", env->rcpt[i]);
        if (env->lmtp && starts(env->rcpt[i], "gone"))
            status[i] = MR_ENOTFOUND;
        if (env->lmtp && starts(env->rcpt[i], "full"))
            status[i] = MR_ELIMIT;
    }
    f->tls = env->tls;
    f->lmtp = env->lmtp;
    f->smtputf8 = env->smtputf8;
    f->body_8bit = env->body_8bit;
    snprintf(f->remote_ip, sizeof(f->remote_ip), "%s", env->remote_ip);
    int rc = f->deliver_rc;
    if (rc == 0)
        f->delivered++;
    pthread_mutex_unlock(&f->lock);
    if (rc != 0 && f->deliver_msg != NULL)
        return mr_error_set(err, rc, "%s", f->deliver_msg);
    return rc;
}

static void fake_note(void *ctx, const char *what, const char *detail)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    if (strcmp(what, "connect") == 0)
        f->notes_connect++;
    else if (strcmp(what, "reject") == 0)
        f->notes_reject++;
    else if (strcmp(what, "tempfail") == 0)
        f->notes_tempfail++;
    else if (strcmp(what, "accepted") == 0) {
        f->notes_accepted++;
        snprintf(f->last_accepted, sizeof(f->last_accepted), "%s", detail);
    }
    pthread_mutex_unlock(&f->lock);
}

static int fake_delivered(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    int n = f->delivered;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* A session without sockets. */

struct rig {
    struct fake f;
    struct mr_smtp_handler h;
    struct mr__smtp_params p;
    atomic_bool stopping;
    struct mr__smtp_session *s;
    struct mr_buf out;
    enum mr__smtp_action act;
};

static struct rig *rig_new_ip(bool lmtp, bool tls, const char *ip)
{
    struct rig *r = calloc(1, sizeof(*r));
    fake_init(&r->f);
    r->h = (struct mr_smtp_handler){.ctx = &r->f,
                                    .rcpt = fake_rcpt,
                                    .deliver = fake_deliver,
                                    .note = fake_note};
    atomic_init(&r->stopping, false);
    r->p = (struct mr__smtp_params){.hostname = "mx.test",
                                    .lmtp = lmtp,
                                    .tls_offered = tls,
                                    .max_message_size = 1000,
                                    .max_recipients = 3,
                                    .max_errors = MR_SMTP_MAX_ERRORS,
                                    .stopping = &r->stopping};
    r->s = mr__smtp_session_new(&r->p, &r->h, ip);
    mr_buf_init(&r->out, MR_SMTP_OUT_MAX);
    return r;
}

static struct rig *rig_new(bool lmtp, bool tls)
{
    return rig_new_ip(lmtp, tls, "192.0.2.1");
}

static void rig_free(struct rig *r)
{
    mr__smtp_session_free(&r->s);
    assert_null(r->s);
    mr_buf_release(&r->out);
    fake_release(&r->f);
    free(r);
}

/* Feeds n bytes; returns the replies they produced. */
static const char *feedn(struct rig *r, const char *in, size_t n)
{
    mr_buf_reset(&r->out);
    r->act = mr__smtp_session_feed(r->s, in, n, &r->out);
    return r->out.p != NULL ? r->out.p : "";
}

static const char *say(struct rig *r, const char *in)
{
    return feedn(r, in, strlen(in));
}

/* The codes of the complete replies in out: "250 2.1.0|550 5.1.1|354". */
static const char *codes(const char *out, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (const char *l = out; *l != '\0';) {
        const char *eol = strstr(l, "\r\n");
        if (eol == NULL)
            break;
        if (eol - l >= 4 && l[3] == ' ') {
            size_t len = 3;
            if (eol - l >= 9 && l[5] == '.' && l[7] == '.')
                len = 9;
            k += (size_t)snprintf(buf + k, n - k, "%s%.*s", k ? "|" : "",
                                  (int)len, l);
        }
        l = eol + 2;
    }
    return buf;
}

static void expect_codes(struct rig *r, const char *in, const char *want)
{
    char got[512];
    codes(say(r, in), got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("input %s\nreplies %s\nwant codes %s got %s", in, r->out.p,
                 want, got);
}

static void ehlo(struct rig *r)
{
    mr_buf_reset(&r->out);
    mr__smtp_session_greet(r->s, &r->out);
    const char *hello =
        r->p.lmtp ? "LHLO client.example\r\n" : "EHLO client.example\r\n";
    expect_codes(r, hello, "250");
}

/* Everything after the Received: header of the delivered message. */
static const char *body_of(struct fake *f)
{
    assert_non_null(f->msg);
    assert_true(starts(f->msg, "Received: from "));
    const char *p = strstr(f->msg, "+0000\r\n");
    assert_non_null(p);
    return p + 7;
}

/* ------------------------------------------------------------------ */
/* Engine: the greeting and EHLO */

static void greeting_and_ehlo(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, true);
    mr__smtp_session_greet(r->s, &r->out);
    assert_string_equal(r->out.p, "220 mx.test ESMTP mailroom\r\n");
    assert_string_equal(say(r, "ehlo client.example\r\n"),
                        "250-mx.test greets [192.0.2.1]\r\n"
                        "250-PIPELINING\r\n"
                        "250-SIZE 1000\r\n"
                        "250-8BITMIME\r\n"
                        "250-SMTPUTF8\r\n"
                        "250-ENHANCEDSTATUSCODES\r\n"
                        "250 STARTTLS\r\n");
    /* HELO: no extensions (RFC 5321 4.1.1.1). */
    assert_string_equal(say(r, "HELO client.example\r\n"), "250 mx.test\r\n");
    assert_int_equal(r->act, MR__SMTP_CONTINUE);
    rig_free(r);
}

/* ------------------------------------------------------------------ */
/* Engine: a pipelined transaction and the message handed over */

static void pipelined_transaction(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, false);
    mr__smtp_session_greet(r->s, &r->out);
    expect_codes(r,
                 "EHLO client.example\r\n"
                 "MAIL FROM:<alice@client.example> BODY=8BITMIME\r\n"
                 "RCPT TO:<a@mx.test>\r\n"
                 "RCPT TO:<b@mx.test>\r\n"
                 "DATA\r\n",
                 "250|250 2.1.0|250 2.1.5|250 2.1.5|354");
    assert_int_equal(fake_delivered(&r->f), 0);
    const char *out = say(r, "Subject: hi\r\n"
                             "\r\n"
                             "..dots\r\n"
                             "bare\n"
                             ".\n"
                             "QUIT\r\n");
    assert_true(starts(out, "250 2.0.0 OK queued as "));
    assert_non_null(
        strstr(out, "\r\n221 2.0.0 mx.test closing connection\r\n"));
    assert_int_equal(r->act, MR__SMTP_CLOSE);
    assert_int_equal(fake_delivered(&r->f), 1);

    /* The queue id in the reply is the one in Received: and the note. */
    char id[17];
    memcpy(id, out + strlen("250 2.0.0 OK queued as "), 16);
    id[16] = '\0';
    assert_string_equal(r->f.last_accepted, id);
    char want[200];
    snprintf(want, sizeof(want),
             "Received: from client.example ([192.0.2.1])\r\n"
             "\tby mx.test (mailroom) with ESMTP id %s;\r\n\t",
             id);
    assert_true(starts(r->f.msg, want));
    assert_string_equal(body_of(&r->f), "Subject: hi\r\n\r\n.dots\r\nbare\n");

    assert_string_equal(r->f.helo, "client.example");
    assert_string_equal(r->f.mail_from, "alice@client.example");
    assert_int_equal(r->f.nrcpt, 2);
    assert_string_equal(r->f.rcpt[0], "a@mx.test");
    assert_string_equal(r->f.rcpt[1], "b@mx.test");
    assert_string_equal(r->f.remote_ip, "192.0.2.1");
    assert_true(r->f.body_8bit);
    assert_false(r->f.tls);
    assert_false(r->f.lmtp);
    assert_false(r->f.smtputf8);

    /* After QUIT nothing more is read. */
    assert_string_equal(say(r, "NOOP\r\n"), "");
    assert_int_equal(r->act, MR__SMTP_CLOSE);
    rig_free(r);
}

/* ------------------------------------------------------------------ */
/* Engine: DATA split at every byte gives the same message */

static const char data_text[] = "a\r\n"
                                "..b\r\n"  /* -> ".b" */
                                "...\r\n"  /* -> ".." */
                                ".x\r\n"   /* a lone stuffed dot */
                                "c\n"      /* bare LF */
                                "\r\n"     /* empty line */
                                "d.\r\n"   /* a dot not at the start */
                                ".\rz\r\n" /* odd: ".\r" then text */
                                "long.\r\n.\r\n"
                                "NOOP\r\n";
static const char data_body[] = "a\r\n.b\r\n..\r\nx\r\nc\n\r\nd.\r\n\rz\r\n"
                                "long.\r\n";

static void data_split_at_every_byte(void **state)
{
    (void)state;
    size_t n = sizeof(data_text) - 1;
    for (size_t k = 0; k <= n + 1; k++) {
        struct rig *r = rig_new(false, false);
        ehlo(r);
        expect_codes(r, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                     "250 2.1.0|250 2.1.5|354");
        struct mr_buf all;
        mr_buf_init(&all, 0);
        if (k <= n) {
            mr_buf_puts(&all, feedn(r, data_text, k));
            mr_buf_puts(&all, feedn(r, data_text + k, n - k));
        } else {
            /* One byte per read: the slowest client. */
            for (size_t i = 0; i < n; i++)
                mr_buf_puts(&all, feedn(r, data_text + i, 1));
        }
        char got[256];
        codes(all.p, got, sizeof(got));
        if (strcmp(got, "250 2.0.0|250 2.0.0") != 0)
            fail_msg("split %zu: replies %s", k, all.p);
        assert_int_equal(fake_delivered(&r->f), 1);
        if (strcmp(body_of(&r->f), data_body) != 0)
            fail_msg("split %zu: body [%s]", k, body_of(&r->f));
        mr_buf_release(&all);
        rig_free(r);
    }
}

static void data_empty_and_end_forms(void **state)
{
    (void)state;
    /* ".\r\n" right after DATA is an empty message; ".\n" ends too. */
    const char *ends[] = {".\r\n", ".\n"};
    for (size_t i = 0; i < 2; i++) {
        struct rig *r = rig_new(false, false);
        ehlo(r);
        expect_codes(r, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                     "250 2.1.0|250 2.1.5|354");
        expect_codes(r, ends[i], "250 2.0.0");
        assert_string_equal(body_of(&r->f), "");
        rig_free(r);
    }
}

/* ------------------------------------------------------------------ */
/* Engine: syntax errors and parameters */

static void syntax_errors(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, false);
    mr__smtp_session_greet(r->s, &r->out);
    expect_codes(r, "FOO bar\r\n", "500 5.5.2");
    expect_codes(r, "\r\n", "500 5.5.2");
    expect_codes(r, "EHLO\r\n", "501 5.5.4");
    expect_codes(r, "EHLO bad\x01name\r\n", "501 5.5.4");
    expect_codes(r, "EHLO client.example\r\n", "250");
    expect_codes(r, "MAIL TO:<x@y>\r\n", "501 5.5.4");
    expect_codes(r, "MAIL FROM:<x@y\r\n", "501 5.1.7");
    expect_codes(r, "MAIL FROM:<x@y>junk\r\n", "501 5.1.7");
    expect_codes(r, "MAIL FROM:<x@y> FOO=1\r\n", "555 5.5.4");
    expect_codes(r, "MAIL FROM:<x@y> BODY=BINARYMIME\r\n", "555 5.5.4");
    expect_codes(r, "MAIL FROM:<x@y> BODY=9BIT\r\n", "501 5.5.4");
    expect_codes(r, "MAIL FROM:<x@y> SIZE=12a\r\n", "501 5.5.4");
    expect_codes(r, "MAIL FROM:<x@y> SIZE=\r\n", "501 5.5.4");
    expect_codes(r, "MAIL FROM:<x@y> SMTPUTF8=yes\r\n", "555 5.5.4");
    expect_codes(r, "MAIL FROM:<x@y> SIZE=1001\r\n", "552 5.3.4");
    expect_codes(r, "MAIL FROM:<x@y> SIZE=99999999999999999999\r\n",
                 "552 5.3.4");
    expect_codes(r, "MAIL FROM:<x@y> SIZE=1000 BODY=7BIT\r\n", "250 2.1.0");
    expect_codes(r, "RCPT TO:<a b@x>\r\n", "501 5.1.3");
    expect_codes(r, "RCPT TO:<>\r\n", "501 5.1.3");
    expect_codes(r, "RCPT TO:<a@x> NOTIFY=NEVER\r\n", "555 5.5.4");
    expect_codes(r, "RCPT TO:<\xff@x>\r\n", "501 5.1.3");
    /* 19 errors so far: a new session, under the limit of 20. */
    rig_free(r);
    r = rig_new(false, false);
    ehlo(r);
    expect_codes(r, "MAIL FROM:<x@y>\r\nRCPT TO:<unknown@x>\r\n",
                 "250 2.1.0|550 5.1.1");
    expect_codes(r, "DATA now\r\n", "554 5.5.1");
    expect_codes(r, "RCPT TO:<ok@mx.test>\r\nDATA now\r\n",
                 "250 2.1.5|501 5.5.4");
    expect_codes(r, "VRFY\r\n", "501 5.5.4");
    static const char nul[] = "NO\0OP\r\n";
    char got[64];
    assert_string_equal(codes(feedn(r, nul, sizeof(nul) - 1), got, sizeof(got)),
                        "500 5.5.2");
    assert_int_equal(r->act, MR__SMTP_CONTINUE);
    rig_free(r);
}

static void line_length_limit(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, false);
    ehlo(r);
    /* 998 characters + CRLF = 1000 octets: accepted (RFC 5321
     * 4.5.3.1.6); one more is too long, then the session is in step. */
    char line[1100];
    memcpy(line, "NOOP ", 5);
    memset(line + 5, 'x', sizeof(line) - 5);
    memcpy(line + 998, "\r\n", 3);
    expect_codes(r, line, "250 2.0.0");
    memset(line + 5, 'x', sizeof(line) - 5);
    memcpy(line + 999, "\r\n", 3);
    expect_codes(r, line, "500 5.5.2");
    /* A long line split over reads, then a good command in the same read
     * as its end. */
    memset(line, 'y', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    expect_codes(r, line, "");
    expect_codes(r, line, "");
    expect_codes(r, "zz\r\nNOOP\r\n", "500 5.5.2|250 2.0.0");
    rig_free(r);
}

static void addresses(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, false);
    ehlo(r);
    /* Null sender, UTF-8 without SMTPUTF8 (lenient), a source route, a
     * quoted local part holding '>' and a space. */
    expect_codes(r, "MAIL FROM:<>\r\n", "250 2.1.0");
    expect_codes(r, "RCPT TO:<jos\xc3\xa9@ex\xc3\xa4mple.org>\r\n",
                 "250 2.1.5");
    expect_codes(r, "RCPT TO:<@relay.example,@r2.example:user@mx.test>\r\n",
                 "250 2.1.5");
    expect_codes(r, "RCPT TO:<\"a> b\"@mx.test>\r\n", "250 2.1.5");
    expect_codes(r, "DATA\r\n", "354");
    expect_codes(r, "x\r\n.\r\n", "250 2.0.0");
    assert_string_equal(r->f.mail_from, "");
    assert_string_equal(r->f.rcpt[0], "jos\xc3\xa9@ex\xc3\xa4mple.org");
    assert_string_equal(r->f.rcpt[1], "user@mx.test");
    assert_string_equal(r->f.rcpt[2], "\"a> b\"@mx.test");
    assert_false(r->f.smtputf8);

    /* SMTPUTF8, a space after the colon and a bare address (scripts). */
    expect_codes(r, "MAIL FROM: <a@b> SMTPUTF8\r\n", "250 2.1.0");
    expect_codes(r, "RCPT TO:only@mx.test\r\n", "250 2.1.5");
    expect_codes(r, "DATA\r\n", "354");
    expect_codes(r, "x\r\n.\r\n", "250 2.0.0");
    assert_true(r->f.smtputf8);
    assert_string_equal(r->f.rcpt[0], "only@mx.test");
    /* One recipient: "for <...>"; RFC 6531 protocol name. */
    assert_non_null(strstr(r->f.msg, " with UTF8SMTP id "));
    assert_non_null(strstr(r->f.msg, "\r\n\tfor <only@mx.test>; "));
    rig_free(r);
}

static void helo_and_ipv6_trace(void **state)
{
    (void)state;
    struct rig *r = rig_new_ip(false, false, "2001:db8::1");
    mr__smtp_session_greet(r->s, &r->out);
    expect_codes(r, "HELO old.example\r\n", "250");
    expect_codes(r, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                 "250 2.1.0|250 2.1.5|354");
    expect_codes(r, "x\r\n.\r\n", "250 2.0.0");
    assert_true(starts(r->f.msg, "Received: from old.example "
                                 "([IPv6:2001:db8::1])\r\n\tby mx.test "
                                 "(mailroom) with SMTP id "));
    /* RFC 5322 date, in UTC. */
    const char *date = strstr(r->f.msg, "; ");
    assert_non_null(date);
    int d, y, h, m, s;
    char wd[4], mon[4];
    assert_int_equal(sscanf(date, "; %3s, %2d %3s %4d %2d:%2d:%2d +0000", wd,
                            &d, mon, &y, &h, &m, &s),
                     7);
    assert_true(y >= 2024);
    rig_free(r);
}

/* ------------------------------------------------------------------ */
/* Engine: the handler's answers */

static void rcpt_results(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, false);
    ehlo(r);
    expect_codes(r, "MAIL FROM:<a@b>\r\n", "250 2.1.0");
    assert_string_equal(say(r, "RCPT TO:<unknown@mx.test>\r\n"),
                        "550 5.1.1 <unknown@mx.test>: recipient not found\r\n");
    assert_string_equal(say(r, "RCPT TO:<bad@mx.test>\r\n"),
                        "501 5.1.3 bad mailbox\r\n");
    assert_string_equal(say(r, "RCPT TO:<temp@mx.test>\r\n"),
                        "451 4.3.0 db busy\r\n");
    expect_codes(r, "DATA\r\n", "554 5.5.1");
    assert_int_equal(r->f.notes_reject, 2);
    assert_int_equal(r->f.notes_tempfail, 1);
    rig_free(r);
}

static void recipient_limit(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, false);
    ehlo(r);
    expect_codes(r,
                 "MAIL FROM:<a@b>\r\n"
                 "RCPT TO:<r1@mx.test>\r\n"
                 "RCPT TO:<unknown@mx.test>\r\n"
                 "RCPT TO:<r2@mx.test>\r\n"
                 "RCPT TO:<r3@mx.test>\r\n"
                 "RCPT TO:<r4@mx.test>\r\n"
                 "DATA\r\n",
                 "250 2.1.0|250 2.1.5|550 5.1.1|250 2.1.5|250 2.1.5|"
                 "452 4.5.3|354");
    expect_codes(r, "x\r\n.\r\n", "250 2.0.0");
    assert_int_equal(r->f.nrcpt, 3);
    assert_string_equal(r->f.rcpt[2], "r3@mx.test");
    rig_free(r);
}

static void oversize_message(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, false);
    ehlo(r);
    /* Exactly the limit (1000 bytes of text) passes. */
    char body[1100];
    memset(body, 'a', sizeof(body));
    for (size_t i = 99; i < sizeof(body); i += 100)
        body[i] = '\n';
    expect_codes(r, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                 "250 2.1.0|250 2.1.5|354");
    assert_string_equal(feedn(r, body, 1000), "");
    expect_codes(r, ".\r\n", "250 2.0.0");
    assert_int_equal(strlen(body_of(&r->f)), 1000);

    /* One byte more: read to the end, refused, not delivered; then a
     * 200 KB message with a 100 KB line is read and discarded, and the
     * session stays in step. */
    expect_codes(r, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                 "250 2.1.0|250 2.1.5|354");
    assert_string_equal(feedn(r, body, 1001), "");
    assert_string_equal(say(r, "\r\n.\r\n"),
                        "552 5.3.4 message size exceeds fixed maximum "
                        "message size\r\n");
    assert_int_equal(fake_delivered(&r->f), 1);
    expect_codes(r, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                 "250 2.1.0|250 2.1.5|354");
    size_t big = 200000;
    char *huge = malloc(big);
    memset(huge, 'z', big);
    huge[100000] = '\n';
    for (size_t off = 0; off < big; off += 4096)
        assert_string_equal(
            feedn(r, huge + off, big - off < 4096 ? big - off : 4096), "");
    free(huge);
    expect_codes(r, "\r\n.\r\nNOOP\r\n", "552 5.3.4|250 2.0.0");
    assert_int_equal(fake_delivered(&r->f), 1);
    assert_int_equal(r->f.notes_reject, 2);
    rig_free(r);
}

static void deliver_failures(void **state)
{
    (void)state;
    struct {
        int rc;
        const char *msg;
        const char *want;
    } cases[] = {
        {MR_EAGAIN, "disk full", "451 4.3.0 disk full\r\n"},
        {MR_EIO, NULL, "451 4.3.0 temporary failure, try again later\r\n"},
        {MR_ELIMIT, "too big for inbox", "552 5.3.4 too big for inbox\r\n"},
        {MR_EINVAL, "not a message", "554 5.6.0 not a message\r\n"},
        /* A handler message cannot forge a second reply line. */
        {MR_EAGAIN, "x\r\n250 2.0.0 OK", "451 4.3.0 x  250 2.0.0 OK\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rig *r = rig_new(false, false);
        ehlo(r);
        r->f.deliver_rc = cases[i].rc;
        r->f.deliver_msg = cases[i].msg;
        expect_codes(r, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                     "250 2.1.0|250 2.1.5|354");
        assert_string_equal(say(r, "x\r\n.\r\n"), cases[i].want);
        assert_int_equal(r->f.notes_accepted, 0);
        assert_int_equal(r->f.notes_reject + r->f.notes_tempfail, 1);
        /* The transaction is over either way. */
        expect_codes(r, "RCPT TO:<c@d>\r\n", "503 5.5.1");
        rig_free(r);
    }
}

/* ------------------------------------------------------------------ */
/* Engine: LMTP */

static void lmtp_per_recipient(void **state)
{
    (void)state;
    struct rig *r = rig_new(true, false);
    mr__smtp_session_greet(r->s, &r->out);
    assert_string_equal(r->out.p, "220 mx.test LMTP mailroom\r\n");
    expect_codes(r, "EHLO x\r\nHELO x\r\nLHLO x\r\n",
                 "500 5.5.1|500 5.5.1|250");
    expect_codes(r,
                 "MAIL FROM:<a@b>\r\nRCPT TO:<r1@mx.test>\r\n"
                 "RCPT TO:<gone@mx.test>\r\nRCPT TO:<full@mx.test>\r\n"
                 "DATA\r\n",
                 "250 2.1.0|250 2.1.5|250 2.1.5|250 2.1.5|354");
    const char *out = say(r, "x\r\n.\r\n");
    char got[256];
    assert_string_equal(codes(out, got, sizeof(got)),
                        "250 2.0.0|550 5.1.1|552 5.3.4");
    assert_true(starts(out, "250 2.0.0 <r1@mx.test> OK queued as "));
    assert_non_null(strstr(out, "550 5.1.1 <gone@mx.test> recipient not"));
    assert_true(r->f.lmtp);
    assert_non_null(strstr(r->f.msg, " with LMTP id "));

    /* The whole delivery fails: every recipient hears it. */
    r->f.deliver_rc = MR_EAGAIN;
    r->f.deliver_msg = "queue down";
    expect_codes(r,
                 "MAIL FROM:<a@b>\r\nRCPT TO:<r1@mx.test>\r\n"
                 "RCPT TO:<r2@mx.test>\r\nDATA\r\n",
                 "250 2.1.0|250 2.1.5|250 2.1.5|354");
    assert_string_equal(say(r, "x\r\n.\r\n"),
                        "451 4.3.0 <r1@mx.test> queue down\r\n"
                        "451 4.3.0 <r2@mx.test> queue down\r\n");
    /* Too big: one 552 per recipient, no delivery. */
    r->f.deliver_rc = 0;
    int before = fake_delivered(&r->f);
    expect_codes(r,
                 "MAIL FROM:<a@b>\r\nRCPT TO:<r1@mx.test>\r\n"
                 "RCPT TO:<r2@mx.test>\r\nDATA\r\n",
                 "250 2.1.0|250 2.1.5|250 2.1.5|354");
    char body[1200];
    memset(body, 'q', sizeof(body));
    assert_string_equal(feedn(r, body, sizeof(body)), "");
    expect_codes(r, "\r\n.\r\n", "552 5.3.4|552 5.3.4");
    assert_int_equal(fake_delivered(&r->f), before);
    rig_free(r);
}

/* ------------------------------------------------------------------ */
/* Engine: STARTTLS, limits, shutdown */

static void starttls_discards_pipelined_input(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, true);
    ehlo(r);
    expect_codes(r, "MAIL FROM:<a@b>\r\nSTARTTLS\r\nRSET\r\n",
                 "250 2.1.0|503 5.5.1|250 2.0.0");
    expect_codes(r, "STARTTLS now\r\n", "501 5.5.4");
    /* CVE-2011-0411: the commands after STARTTLS in the same read, and a
     * partial line, must not survive into the TLS session. */
    assert_string_equal(say(r, "STARTTLS\r\nMAIL FROM:<evil@x>\r\n"
                               "RCPT TO:<victim@mx.test>\r\nDA"),
                        "220 2.0.0 ready to start TLS\r\n");
    assert_int_equal(r->act, MR__SMTP_STARTTLS);
    assert_string_equal(say(r, "TA\r\n"), "");
    assert_int_equal(r->act, MR__SMTP_STARTTLS);
    mr__smtp_session_tls_started(r->s);
    expect_codes(r, "RCPT TO:<c@d>\r\n", "503 5.5.1");
    expect_codes(r, "MAIL FROM:<a@b>\r\n", "503 5.5.1");
    const char *out = say(r, "EHLO client.example\r\n");
    assert_null(strstr(out, "STARTTLS"));
    expect_codes(r, "STARTTLS\r\n", "503 5.5.1");
    expect_codes(r, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                 "250 2.1.0|250 2.1.5|354");
    expect_codes(r, "x\r\n.\r\n", "250 2.0.0");
    assert_true(r->f.tls);
    assert_non_null(strstr(r->f.msg, " with ESMTPS id "));
    rig_free(r);
}

static void too_many_errors(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, false);
    ehlo(r);
    struct mr_buf in;
    mr_buf_init(&in, 0);
    for (int i = 0; i < MR_SMTP_MAX_ERRORS + 5; i++)
        mr_buf_puts(&in, "BOGUS\r\n");
    char got[1024];
    codes(feedn(r, in.p, in.len), got, sizeof(got));
    /* 20 errors, then 421 and nothing more. */
    struct mr_buf want;
    mr_buf_init(&want, 0);
    for (int i = 0; i < MR_SMTP_MAX_ERRORS; i++)
        mr_buf_puts(&want, "500 5.5.2|");
    mr_buf_puts(&want, "421 4.7.0");
    assert_string_equal(got, want.p);
    assert_int_equal(r->act, MR__SMTP_CLOSE);
    mr_buf_release(&in);
    mr_buf_release(&want);
    rig_free(r);
}

static void misc_commands(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, false);
    ehlo(r);
    assert_string_equal(say(r, "VRFY someone\r\n"),
                        "252 2.5.2 cannot VRFY user, but will accept message "
                        "and attempt delivery\r\n");
    expect_codes(r, "EXPN list\r\n", "502 5.5.1");
    expect_codes(r, "HELP\r\n", "214 2.0.0");
    expect_codes(r, "noop\r\n", "250 2.0.0");
    expect_codes(r, "AUTH PLAIN x\r\n", "502 5.5.1");
    expect_codes(r, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRSET\r\nDATA\r\n",
                 "250 2.1.0|250 2.1.5|250 2.0.0|503 5.5.1");
    /* EHLO resets a transaction too (RFC 5321 4.1.4). */
    expect_codes(r, "MAIL FROM:<a@b>\r\nEHLO x\r\nRCPT TO:<c@d>\r\n",
                 "250 2.1.0|250|503 5.5.1");
    expect_codes(r, "QUIT\r\nNOOP\r\n", "221 2.0.0");
    assert_int_equal(r->act, MR__SMTP_CLOSE);
    rig_free(r);
}

static void stopping_and_timeouts(void **state)
{
    (void)state;
    struct rig *r = rig_new(false, false);
    ehlo(r);
    expect_codes(r, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhalf\r\n",
                 "250 2.1.0|250 2.1.5|354");
    /* A shutdown lets DATA finish, then refuses the next command. */
    atomic_store(&r->stopping, true);
    assert_true(mr__smtp_session_in_data(r->s));
    expect_codes(r, "rest\r\n.\r\nNOOP\r\nNOOP\r\n", "250 2.0.0|421 4.3.2");
    assert_int_equal(r->act, MR__SMTP_CLOSE);
    assert_int_equal(fake_delivered(&r->f), 1);
    assert_string_equal(body_of(&r->f), "half\r\nrest\r\n");
    rig_free(r);

    r = rig_new(false, false);
    mr_buf_reset(&r->out);
    mr__smtp_session_close_reply(r->s, true, "idle timeout", &r->out);
    assert_string_equal(
        r->out.p, "421 4.4.2 mx.test idle timeout, closing connection\r\n");
    assert_string_equal(say(r, "NOOP\r\n"), "");
    rig_free(r);
}

/* ------------------------------------------------------------------ */
/* Engine: the dialogues in tests/data/smtp */

/* Sends the pending client lines as one write and checks that the replies
 * (with anything already in out, such as the greeting) are the wanted
 * lines; a '*' at the end of a wanted line matches the rest of it. */
static void dialogue_step(struct rig *r, struct mr_buf *batch,
                          struct mr_buf *want, const char *path, int lineno)
{
    if (batch->len > 0)
        r->act = mr__smtp_session_feed(r->s, batch->p, batch->len, &r->out);
    const char *g = r->out.p ? r->out.p : "";
    const char *w = want->p ? want->p : "";
    while (*w != '\0') {
        const char *wl = strchr(w, '\n');
        size_t wn = (size_t)(wl - w);
        const char *gl = strstr(g, "\r\n");
        if (gl == NULL)
            fail_msg("%s:%d: missing reply %.*s", path, lineno, (int)wn, w);
        size_t gn = (size_t)(gl - g);
        bool ok = wn > 0 && w[wn - 1] == '*'
                      ? gn >= wn - 1 && memcmp(g, w, wn - 1) == 0
                      : gn == wn && memcmp(g, w, wn) == 0;
        if (!ok)
            fail_msg("%s:%d: want [%.*s] got [%.*s]", path, lineno, (int)wn, w,
                     (int)gn, g);
        g = gl + 2;
        w = wl + 1;
    }
    if (*g != '\0')
        fail_msg("%s:%d: unexpected replies %s", path, lineno, g);
    mr_buf_reset(batch);
    mr_buf_reset(want);
    mr_buf_reset(&r->out);
}

static void run_dialogue(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        fail_msg("cannot open %s", path);
    char line[1200];
    struct rig *r = NULL;
    bool lmtp = false, tls = false;
    struct mr_buf batch, want;
    mr_buf_init(&batch, 0);
    mr_buf_init(&want, 0);
    int lineno = 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (r == NULL && strcmp(line, "@lmtp") == 0) {
            lmtp = true;
            continue;
        }
        if (r == NULL && strcmp(line, "@tls") == 0) {
            tls = true;
            continue;
        }
        if (r == NULL) {
            r = rig_new(lmtp, tls);
            mr__smtp_session_greet(r->s, &r->out);
        }
        const char *text = line[2] == ' ' ? line + 3 : line + 2;
        if (starts(line, "C:")) {
            if (want.len > 0)
                dialogue_step(r, &batch, &want, path, lineno);
            mr_buf_puts(&batch, text);
            mr_buf_puts(&batch, "\r\n");
            continue;
        }
        if (starts(line, "S:")) {
            if (batch.len > 0) {
                r->act =
                    mr__smtp_session_feed(r->s, batch.p, batch.len, &r->out);
                mr_buf_reset(&batch);
            }
            mr_buf_puts(&want, text);
            mr_buf_puts(&want, "\n");
            continue;
        }
        dialogue_step(r, &batch, &want, path, lineno);
        if (strcmp(line, "@starttls") == 0) {
            if (r->act != MR__SMTP_STARTTLS)
                fail_msg("%s:%d: no STARTTLS action", path, lineno);
            mr__smtp_session_tls_started(r->s);
        } else if (strcmp(line, "@closed") == 0) {
            if (r->act != MR__SMTP_CLOSE)
                fail_msg("%s:%d: connection not closed", path, lineno);
        } else {
            fail_msg("%s:%d: bad line %s", path, lineno, line);
        }
    }
    fclose(fp);
    if (r != NULL)
        dialogue_step(r, &batch, &want, path, lineno);
    mr_buf_release(&batch);
    mr_buf_release(&want);
    if (r != NULL)
        rig_free(r);
}

static const char *data_dir(void)
{
    const char *d = getenv("MR_TEST_DATA");
    if (d == NULL)
        fail_msg("MR_TEST_DATA is not set (run through ctest)");
    return d;
}

static void dialogues(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/smtp", data_dir());
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".txt") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        run_dialogue(path);
        n++;
    }
    closedir(d);
    assert_true(n >= 5);
}

/* ------------------------------------------------------------------ */
/* Loopback client */

struct client {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[16384];
    size_t len;
};

static bool client_connect(struct client *c, int family, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int rc;
    if (family == AF_INET6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                                 .sin6_port = htons((uint16_t)port),
                                 .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        rc = connect(c->fd, (struct sockaddr *)&a, sizeof(a));
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = connect(c->fd, (struct sockaddr *)&a, sizeof(a));
    }
    if (rc < 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

static void client_close(struct client *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->ssl = NULL;
    c->ctx = NULL;
}

static bool client_send(struct client *c, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w;
        if (c->ssl != NULL) {
            size_t got = 0;
            w = SSL_write_ex(c->ssl, s, n, &got) == 1 ? (ssize_t)got : -1;
        } else {
            w = send(c->fd, s, n, MSG_NOSIGNAL);
        }
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads one complete (possibly multi-line) reply into out. Returns false
 * at the end of the stream or after the 5 s receive timeout. */
static bool client_reply(struct client *c, char *out, size_t n)
{
    for (;;) {
        /* A reply ends with a line whose 4th character is a space. */
        size_t start = 0;
        while (start < c->len) {
            char *eol = memmem(c->buf + start, c->len - start, "\r\n", 2);
            if (eol == NULL)
                break;
            size_t end = (size_t)(eol - c->buf) + 2;
            if (end - start >= 6 && c->buf[start + 3] == ' ') {
                size_t k = end < n ? end : n - 1;
                memcpy(out, c->buf, k);
                out[k] = '\0';
                memmove(c->buf, c->buf + end, c->len - end);
                c->len -= end;
                return true;
            }
            start = end;
        }
        if (c->len == sizeof(c->buf))
            return false;
        ssize_t r;
        if (c->ssl != NULL) {
            size_t got = 0;
            r = SSL_read_ex(c->ssl, c->buf + c->len, sizeof(c->buf) - c->len,
                            &got) == 1
                    ? (ssize_t)got
                    : -1;
        } else {
            r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        }
        if (r <= 0)
            return false;
        c->len += (size_t)r;
    }
}

/* True when the server closed the connection (EOF within 5 s). */
static bool client_eof(struct client *c)
{
    char b[64];
    ssize_t r = c->ssl != NULL ? (SSL_read(c->ssl, b, sizeof(b)) > 0 ? 1 : 0)
                               : recv(c->fd, b, sizeof(b), 0);
    return r == 0;
}

static bool client_starttls(struct client *c, const char *cafile)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL ||
        SSL_CTX_load_verify_locations(c->ctx, cafile, NULL) != 1)
        return false;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set1_host(c->ssl, "localhost");
    /* Plaintext the server sent after its 220 would be a protocol error;
     * nothing may be buffered here. */
    if (c->len != 0)
        return false;
    return SSL_connect(c->ssl) == 1;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

struct srv_rig {
    struct fake f;
    struct mr_smtp_handler h;
    struct mr_smtp_options o;
    struct mr_smtp_server *srv;
    int port;
};

static void srv_rig_init(struct srv_rig *r, const char *listen)
{
    memset(r, 0, sizeof(*r));
    fake_init(&r->f);
    r->h = (struct mr_smtp_handler){.ctx = &r->f,
                                    .rcpt = fake_rcpt,
                                    .deliver = fake_deliver,
                                    .note = fake_note};
    r->o = (struct mr_smtp_options){
        .listen = listen, .hostname = "mx.test", .max_message_size = 100000};
}

static void srv_rig_start(struct srv_rig *r)
{
    struct mr_error err = {0};
    int rc = mr_smtp_start(&r->o, &r->h, &r->srv, &err);
    if (rc != 0)
        fail_msg("mr_smtp_start: %s", err.msg);
    r->port = mr_smtp_port(r->srv);
    assert_true(r->port > 0);
}

static void srv_rig_stop(struct srv_rig *r)
{
    mr_smtp_stop(r->srv);
    r->srv = NULL;
    fake_release(&r->f);
}

/* One whole session; false (with the reason in why) on any surprise. */
static bool client_session(int port, int nmsg, char *why, size_t whyn)
{
    struct client c;
    char rep[4096];
    if (!client_connect(&c, AF_INET, port)) {
        snprintf(why, whyn, "connect");
        return false;
    }
    bool ok = client_reply(&c, rep, sizeof(rep)) && starts(rep, "220 ");
    ok = ok && client_send(&c, "EHLO client.example\r\n") &&
         client_reply(&c, rep, sizeof(rep)) && strstr(rep, "PIPELINING");
    for (int i = 0; ok && i < nmsg; i++) {
        /* RFC 2920: the whole envelope in one write. */
        ok = client_send(&c, "MAIL FROM:<a@client.example>\r\n"
                             "RCPT TO:<help@mx.test>\r\n"
                             "DATA\r\n");
        ok = ok && client_reply(&c, rep, sizeof(rep)) &&
             starts(rep, "250 2.1.0") && client_reply(&c, rep, sizeof(rep)) &&
             starts(rep, "250 2.1.5") && client_reply(&c, rep, sizeof(rep)) &&
             starts(rep, "354");
        ok = ok && client_send(&c, "Subject: t\r\n\r\n..body\r\n.\r\n") &&
             client_reply(&c, rep, sizeof(rep)) &&
             starts(rep, "250 2.0.0 OK queued as ");
    }
    ok = ok && client_send(&c, "QUIT\r\n") &&
         client_reply(&c, rep, sizeof(rep)) && starts(rep, "221 ") &&
         client_eof(&c);
    if (!ok)
        snprintf(why, whyn, "last reply: %.200s", rep);
    client_close(&c);
    return ok;
}

struct client_job {
    int port;
    bool ok;
    char why[256];
};

static void *client_thread(void *arg)
{
    struct client_job *j = arg;
    j->ok = client_session(j->port, 3, j->why, sizeof(j->why));
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Server tests */

static void server_sessions(void **state)
{
    (void)state;
    struct srv_rig r;
    srv_rig_init(&r, "127.0.0.1:0");
    srv_rig_start(&r);
    enum { N = 4 };
    struct client_job jobs[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct client_job){.port = r.port};
        assert_int_equal(pthread_create(&t[i], NULL, client_thread, &jobs[i]),
                         0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (!jobs[i].ok)
            fail_msg("client %d: %s", i, jobs[i].why);
    }
    assert_int_equal(fake_delivered(&r.f), 3 * N);
    assert_int_equal(r.f.notes_connect, N);
    assert_int_equal(r.f.notes_accepted, 3 * N);
    assert_string_equal(r.f.remote_ip, "127.0.0.1");
    assert_string_equal(body_of(&r.f), "Subject: t\r\n\r\n.body\r\n");
    srv_rig_stop(&r);
}

static void server_starttls(void **state)
{
    (void)state;
    char cert[1024], key[1024];
    snprintf(cert, sizeof(cert), "%s/../certs/cert.pem", data_dir());
    snprintf(key, sizeof(key), "%s/../certs/key.pem", data_dir());
    struct srv_rig r;
    srv_rig_init(&r, "127.0.0.1:0");
    r.o.tls_cert = cert;
    r.o.tls_key = key;
    srv_rig_start(&r);

    struct client c;
    char rep[4096];
    assert_true(client_connect(&c, AF_INET, r.port));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(client_send(&c, "EHLO client.example\r\n"));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_non_null(strstr(rep, "250 STARTTLS\r\n"));
    /* The injection attempt: a command in the same packet as STARTTLS. */
    assert_true(client_send(&c, "STARTTLS\r\nRSET\r\n"));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_string_equal(rep, "220 2.0.0 ready to start TLS\r\n");
    if (!client_starttls(&c, cert))
        fail_msg("TLS handshake failed: %s",
                 ERR_error_string(ERR_get_error(), NULL));
    /* The first reply under TLS answers our EHLO, not the RSET. */
    assert_true(client_send(&c, "EHLO client.example\r\n"));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(starts(rep, "250-mx.test greets [127.0.0.1]\r\n"));
    assert_null(strstr(rep, "STARTTLS"));
    assert_true(client_send(&c, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
                                "DATA\r\n"));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(starts(rep, "354 "));
    assert_true(client_send(&c, "secret\r\n.\r\nQUIT\r\n"));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(starts(rep, "250 2.0.0 OK queued as "));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(starts(rep, "221 "));
    client_close(&c);
    assert_int_equal(fake_delivered(&r.f), 1);
    assert_true(r.f.tls);
    assert_non_null(strstr(r.f.msg, " with ESMTPS id "));
    srv_rig_stop(&r);
}

static void server_connection_limits(void **state)
{
    (void)state;
    struct srv_rig r;
    srv_rig_init(&r, "127.0.0.1:0");
    r.o.max_connections_per_ip = 2;
    srv_rig_start(&r);
    struct client a, b, c;
    char rep[512];
    assert_true(client_connect(&a, AF_INET, r.port));
    assert_true(client_reply(&a, rep, sizeof(rep)));
    assert_true(starts(rep, "220 "));
    assert_true(client_connect(&b, AF_INET, r.port));
    assert_true(client_reply(&b, rep, sizeof(rep)));
    assert_true(starts(rep, "220 "));
    assert_true(client_connect(&c, AF_INET, r.port));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(starts(rep, "421 4.7.0 mx.test too many connections from "));
    assert_true(client_eof(&c));
    client_close(&c);
    assert_int_equal(r.f.notes_reject, 1);
    /* A slot frees when a session ends (asynchronously: retry a while). */
    assert_true(client_send(&a, "QUIT\r\n"));
    assert_true(client_reply(&a, rep, sizeof(rep)));
    assert_true(client_eof(&a));
    client_close(&a);
    bool admitted = false;
    for (int i = 0; i < 40 && !admitted; i++) {
        assert_true(client_connect(&c, AF_INET, r.port));
        admitted = client_reply(&c, rep, sizeof(rep)) && starts(rep, "220 ");
        client_close(&c);
        if (!admitted)
            sleep_ms(50);
    }
    assert_true(admitted);
    client_close(&b);
    srv_rig_stop(&r);

    /* The total limit. */
    srv_rig_init(&r, "127.0.0.1:0");
    r.o.max_connections = 1;
    srv_rig_start(&r);
    assert_true(client_connect(&a, AF_INET, r.port));
    assert_true(client_reply(&a, rep, sizeof(rep)));
    assert_true(starts(rep, "220 "));
    assert_true(client_connect(&b, AF_INET, r.port));
    assert_true(client_reply(&b, rep, sizeof(rep)));
    assert_true(starts(rep, "421 4.7.0 mx.test too many connections,"));
    client_close(&b);
    client_close(&a);
    srv_rig_stop(&r);
}

static void server_timeouts(void **state)
{
    (void)state;
    struct srv_rig r;
    srv_rig_init(&r, "127.0.0.1:0");
    r.o.idle_timeout_s = 1;
    srv_rig_start(&r);
    struct client c;
    char rep[512];
    assert_true(client_connect(&c, AF_INET, r.port));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    int64_t t0 = mono_ms();
    assert_true(client_reply(&c, rep, sizeof(rep)));
    int64_t waited = mono_ms() - t0;
    assert_string_equal(rep, "421 4.4.2 mx.test idle timeout, closing "
                             "connection\r\n");
    assert_true(waited >= 900 && waited < 3000);
    assert_true(client_eof(&c));
    client_close(&c);
    srv_rig_stop(&r);

    /* A client that keeps talking still meets the total limit. */
    srv_rig_init(&r, "127.0.0.1:0");
    r.o.idle_timeout_s = 10;
    r.o.total_timeout_s = 1;
    srv_rig_start(&r);
    assert_true(client_connect(&c, AF_INET, r.port));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    t0 = mono_ms();
    bool limited = false;
    for (int i = 0; i < 20 && !limited; i++) {
        if (!client_send(&c, "NOOP\r\n") || !client_reply(&c, rep, sizeof(rep)))
            break;
        limited = starts(rep, "421 4.4.2 ");
        sleep_ms(200);
    }
    assert_true(limited);
    assert_true(mono_ms() - t0 < 3000);
    client_close(&c);
    srv_rig_stop(&r);
}

struct stopper {
    struct mr_smtp_server *srv;
    atomic_bool done;
};

static void *stop_thread(void *arg)
{
    struct stopper *s = arg;
    mr_smtp_stop(s->srv);
    atomic_store(&s->done, true);
    return NULL;
}

static void server_stop_with_open_sessions(void **state)
{
    (void)state;
    struct srv_rig r;
    srv_rig_init(&r, "127.0.0.1:0");
    srv_rig_start(&r);
    struct client idle, busy;
    char rep[512];
    assert_true(client_connect(&idle, AF_INET, r.port));
    assert_true(client_reply(&idle, rep, sizeof(rep)));
    assert_true(client_send(&idle, "EHLO a\r\n"));
    assert_true(client_reply(&idle, rep, sizeof(rep)));
    assert_true(client_connect(&busy, AF_INET, r.port));
    assert_true(client_reply(&busy, rep, sizeof(rep)));
    assert_true(client_send(&busy, "EHLO b\r\nMAIL FROM:<a@b>\r\n"
                                   "RCPT TO:<c@d>\r\nDATA\r\n"));
    for (int i = 0; i < 4; i++)
        assert_true(client_reply(&busy, rep, sizeof(rep)));
    assert_true(starts(rep, "354 "));
    assert_true(client_send(&busy, "first half\r\n"));

    struct stopper st = {.srv = r.srv};
    atomic_init(&st.done, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_thread, &st), 0);
    /* The idle session is told at once. */
    assert_true(client_reply(&idle, rep, sizeof(rep)));
    assert_string_equal(rep, "421 4.3.2 mx.test service shutting down, "
                             "closing connection\r\n");
    assert_true(client_eof(&idle));
    client_close(&idle);
    /* The message in progress is finished and delivered first. */
    sleep_ms(200);
    assert_false(atomic_load(&st.done));
    assert_int_equal(fake_delivered(&r.f), 0);
    assert_true(client_send(&busy, "second half\r\n.\r\nNOOP\r\n"));
    assert_true(client_reply(&busy, rep, sizeof(rep)));
    assert_true(starts(rep, "250 2.0.0 OK queued as "));
    assert_true(client_reply(&busy, rep, sizeof(rep)));
    assert_true(starts(rep, "421 4.3.2 "));
    assert_true(client_eof(&busy));
    client_close(&busy);
    pthread_join(t, NULL);
    assert_true(atomic_load(&st.done));
    assert_int_equal(fake_delivered(&r.f), 1);
    assert_string_equal(body_of(&r.f), "first half\r\nsecond half\r\n");
    /* Nobody listens any more. */
    struct client late;
    assert_false(client_connect(&late, AF_INET, r.port));
    r.srv = NULL;
    fake_release(&r.f);
}

static void server_ipv6(void **state)
{
    (void)state;
    struct srv_rig r;
    srv_rig_init(&r, "[::1]:0");
    struct mr_error err = {0};
    if (mr_smtp_start(&r.o, &r.h, &r.srv, &err) != 0) {
        fake_release(&r.f);
        skip(); /* no IPv6 loopback in this sandbox */
    }
    r.port = mr_smtp_port(r.srv);
    struct client c;
    char rep[1024];
    assert_true(client_connect(&c, AF_INET6, r.port));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(client_send(&c, "EHLO v6\r\nMAIL FROM:<a@b>\r\n"
                                "RCPT TO:<c@d>\r\nDATA\r\n"));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(starts(rep, "250-mx.test greets [::1]\r\n"));
    for (int i = 0; i < 3; i++)
        assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(client_send(&c, "x\r\n.\r\n"));
    assert_true(client_reply(&c, rep, sizeof(rep)));
    assert_true(starts(rep, "250 2.0.0 "));
    client_close(&c);
    assert_true(starts(r.f.msg, "Received: from v6 ([IPv6:::1])\r\n"));
    srv_rig_stop(&r);
}

static void server_bad_options(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    struct mr_smtp_handler h = {.ctx = &f, .deliver = fake_deliver};
    struct mr_smtp_server *srv = (void *)&f;
    struct mr_error err = {0};
    const char *bad[] = {"nonsense", "127.0.0.1:99999", "127.0.0.1:",
                         "::1:25",   "[::1]25",         "127.0.0.1:2x5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mr_smtp_options o = {.listen = bad[i]};
        assert_int_equal(mr_smtp_start(&o, &h, &srv, &err), MR_EINVAL);
        assert_null(srv);
        assert_non_null(strstr(err.msg, bad[i]));
    }
    struct mr_smtp_options o = {.listen = "127.0.0.1:0",
                                .tls_cert = "/nonexistent/cert.pem"};
    assert_int_equal(mr_smtp_start(&o, &h, &srv, &err), MR_EINVAL);
    assert_non_null(strstr(err.msg, "/nonexistent/cert.pem"));
    o = (struct mr_smtp_options){.listen = "127.0.0.1:0",
                                 .hostname = "bad host"};
    assert_int_equal(mr_smtp_start(&o, &h, &srv, &err), MR_EINVAL);
    struct mr_smtp_handler none = {0};
    o = (struct mr_smtp_options){.listen = "127.0.0.1:0"};
    assert_int_equal(mr_smtp_start(&o, &none, &srv, &err), MR_EINVAL);
    mr_smtp_stop(NULL);
    fake_release(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greeting_and_ehlo),
        cmocka_unit_test(pipelined_transaction),
        cmocka_unit_test(data_split_at_every_byte),
        cmocka_unit_test(data_empty_and_end_forms),
        cmocka_unit_test(syntax_errors),
        cmocka_unit_test(line_length_limit),
        cmocka_unit_test(addresses),
        cmocka_unit_test(helo_and_ipv6_trace),
        cmocka_unit_test(rcpt_results),
        cmocka_unit_test(recipient_limit),
        cmocka_unit_test(oversize_message),
        cmocka_unit_test(deliver_failures),
        cmocka_unit_test(lmtp_per_recipient),
        cmocka_unit_test(starttls_discards_pipelined_input),
        cmocka_unit_test(too_many_errors),
        cmocka_unit_test(misc_commands),
        cmocka_unit_test(stopping_and_timeouts),
        cmocka_unit_test(dialogues),
        cmocka_unit_test(server_sessions),
        cmocka_unit_test(server_starttls),
        cmocka_unit_test(server_connection_limits),
        cmocka_unit_test(server_timeouts),
        cmocka_unit_test(server_stop_with_open_sessions),
        cmocka_unit_test(server_ipv6),
        cmocka_unit_test(server_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
