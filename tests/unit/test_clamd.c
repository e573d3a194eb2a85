/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_clamd.c - the clamd client (src/scan/clamd.h) against a fake clamd:
 * a thread in this program that speaks the protocol on a unix socket (or
 * loopback TCP) and misbehaves on request: a malformed reply, a close
 * before any reply, a reply later than the timeout, a StreamMaxLength
 * refusal in the middle of the stream, a reply trickled a byte at a time
 * (each within the step timeout: only the conversation's deadline ends
 * it), and silence that only the stop flag ends. The real clamd is the
 * e2e test's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "scan/clamd.h"

enum fake_mode {
    FAKE_NORMAL,    /* FOUND when the stream holds "EICAR", else OK */
    FAKE_MALFORMED, /* "stream: MAYBE" */
    FAKE_CLOSE,     /* reads the command, closes without a reply */
    FAKE_SLOW,      /* reads everything, answers after 1.5 s */
    FAKE_LIMIT,     /* after limit bytes: the size-limit ERROR, close */
    FAKE_LONG,      /* a reply longer than MR_CLAMD_REPLY_MAX, no NUL */
    FAKE_BADCHUNK,  /* answers OK after the first chunk, before the end */
    FAKE_TRICKLE,   /* "stream: OK" one byte every TRICKLE_MS */
    FAKE_SILENT,    /* reads everything, never answers, waits for close */
};

#define TRICKLE_MS 100

struct fake {
    int lfd;
    char path[108];
    enum fake_mode mode;
    size_t limit;
    /* What the fake saw, for the test to check the framing. */
    char command[32];
    size_t total;
    size_t chunks;
    bool saw_end;
    pthread_t thread;
};

static bool read_n(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r <= 0)
            return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, const char *s)
{
    write_all(fd, s, strlen(s) + 1);
}

static void *fake_run(void *arg)
{
    struct fake *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* The command: up to its NUL. */
    size_t k = 0;
    char ch;
    while (k + 1 < sizeof f->command && read(fd, &ch, 1) == 1 && ch != '\0')
        f->command[k++] = ch;
    f->command[k] = '\0';
    if (f->mode == FAKE_CLOSE) {
        close(fd);
        return NULL;
    }
    if (strcmp(f->command, "zPING") == 0) {
        reply(fd, f->mode == FAKE_MALFORMED ? "PANG" : "PONG");
        close(fd);
        return NULL;
    }
    bool eicar = false;
    char tail[8] = {0};
    for (;;) {
        unsigned char hdr[4];
        if (!read_n(fd, hdr, 4))
            break;
        uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
                       (uint32_t)hdr[2] << 8 | hdr[3];
        if (len == 0) {
            f->saw_end = true;
            break;
        }
        f->chunks++;
        if (f->mode == FAKE_BADCHUNK) {
            reply(fd, "stream: OK");
            close(fd);
            return NULL;
        }
        if (f->mode == FAKE_LIMIT && f->total + len > f->limit) {
            reply(fd, "INSTREAM size limit exceeded. ERROR");
            close(fd);
            return NULL;
        }
        char *buf = malloc(len);
        if (!buf || !read_n(fd, buf, len)) {
            free(buf);
            break;
        }
        /* "EICAR" may straddle two chunks: keep the last bytes. */
        char joined[8 + 65536];
        size_t tl = strnlen(tail, sizeof tail);
        size_t take = len < 65536 ? len : 65536;
        memcpy(joined, tail, tl);
        memcpy(joined + tl, buf, take);
        if (memmem(joined, tl + take, "EICAR", 5))
            eicar = true;
        size_t keep = take < 4 ? take : 4;
        memset(tail, 0, sizeof tail);
        memcpy(tail, buf + len - keep, keep);
        f->total += len;
        free(buf);
    }
    switch (f->mode) {
    case FAKE_MALFORMED: reply(fd, "stream: MAYBE"); break;
    case FAKE_SLOW:
        usleep(1500 * 1000);
        reply(fd, "stream: OK");
        break;
    case FAKE_TRICKLE: {
        static const char ok[] = "stream: OK";
        for (size_t i = 0; i < sizeof ok; i++) {
            usleep(TRICKLE_MS * 1000);
            if (send(fd, ok + i, 1, MSG_NOSIGNAL) != 1)
                break;
        }
        break;
    }
    case FAKE_SILENT: {
        char sink[256];
        while (read(fd, sink, sizeof sink) > 0) {
        }
        break;
    }
    case FAKE_LONG: {
        char big[MR_CLAMD_REPLY_MAX + 100];
        memset(big, 'A', sizeof big);
        write_all(fd, big, sizeof big);
        break;
    }
    default: reply(fd, eicar ? "stream: Test.EICAR FOUND" : "stream: OK");
    }
    close(fd);
    return NULL;
}

static void fake_start(struct fake *f, enum fake_mode mode, size_t limit)
{
    memset(f, 0, sizeof *f);
    f->mode = mode;
    f->limit = limit ? limit : 100000;
    snprintf(f->path, sizeof f->path, "/tmp/mr-clamd-test-%d.sock", getpid());
    unlink(f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

static void fake_stop(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->lfd);
    unlink(f->path);
}

static struct mr_clamd_options opts_for(const struct fake *f, int timeout_ms)
{
    return (struct mr_clamd_options){
        .socket = f->path, .timeout_ms = timeout_ms, .chunk_size = 1000};
}

/* One scan of data against a fake in mode (chunks of 1000 bytes); the
 * fake has stopped when this returns, so f holds what it saw. */
static int scan_fake(struct fake *f, enum fake_mode mode, size_t limit,
                     int timeout_ms, const void *data, size_t n,
                     struct mr_clamd_result *r, struct mr_error *err)
{
    fake_start(f, mode, limit);
    struct mr_clamd_options o = opts_for(f, timeout_ms);
    int rc = mr_clamd_scan(&o, data, n, r, err);
    fake_stop(f);
    return rc;
}

/* scan_fake with n bytes of fill. */
static int scan_filled(struct fake *f, enum fake_mode mode, size_t limit,
                       int timeout_ms, size_t n, char fill,
                       struct mr_clamd_result *r, struct mr_error *err)
{
    char *data = malloc(n ? n : 1);
    assert_non_null(data);
    memset(data, fill, n);
    int rc = scan_fake(f, mode, limit, timeout_ms, data, n, r, err);
    free(data);
    return rc;
}

static void test_clean_and_framing(void **state)
{
    (void)state;
    struct fake f;
    struct mr_clamd_result r;
    struct mr_error err = {0};
    assert_int_equal(scan_filled(&f, FAKE_NORMAL, 0, 5000, 2500, 'x', &r, &err),
                     0);
    assert_int_equal(r.verdict, MR_CLAMD_CLEAN);
    assert_string_equal(r.detail, "");
    assert_string_equal(f.command, "zINSTREAM");
    assert_int_equal(f.total, 2500);
    assert_int_equal(f.chunks, 3); /* 1000 + 1000 + 500 */
    assert_true(f.saw_end);
}

static void test_found(void **state)
{
    (void)state;
    struct fake f;
    /* "EICAR" across the first chunk boundary (chunk_size 1000). */
    char data[1500];
    memset(data, 'y', sizeof data);
    memcpy(data + 997, "EICAR", 5);
    struct mr_clamd_result r;
    struct mr_error err = {0};
    assert_int_equal(
        scan_fake(&f, FAKE_NORMAL, 0, 5000, data, sizeof data, &r, &err), 0);
    assert_int_equal(r.verdict, MR_CLAMD_INFECTED);
    assert_string_equal(r.detail, "Test.EICAR");
}

static void test_empty_stream(void **state)
{
    (void)state;
    struct fake f;
    struct mr_clamd_result r;
    struct mr_error err = {0};
    assert_int_equal(scan_fake(&f, FAKE_NORMAL, 0, 5000, NULL, 0, &r, &err), 0);
    assert_int_equal(r.verdict, MR_CLAMD_CLEAN);
    assert_int_equal(f.chunks, 0);
    assert_true(f.saw_end);
}

/* A clamd that misbehaves: never a clean verdict by accident. */
static void test_misbehaving_clamd(void **state)
{
    (void)state;
    static const struct {
        enum fake_mode mode;
        size_t limit;
        int timeout_ms;
        size_t n;    /* bytes sent */
        int rc;      /* mr_clamd_scan's return */
        int verdict; /* when rc is 0 */
        const char *text; /* in err.msg, or r.detail when rc is 0 */
    } cases[] = {
        {FAKE_MALFORMED, 0, 5000, 3, MR_EIO, 0, "unexpected reply"},
        {FAKE_LONG, 0, 5000, 3, MR_EIO, 0, "longer than"},
        {FAKE_CLOSE, 0, 5000, 50000, MR_EIO, 0, "without a reply"},
        {FAKE_SLOW, 0, 300, 3, MR_EIO, 0, "no reply within 300 ms"},
        /* clamd refuses the stream mid-way (StreamMaxLength): its ERROR
         * is read, not lost in an EPIPE. */
        {FAKE_LIMIT, 5000, 5000, 4 << 20, 0, MR_CLAMD_ERROR,
         "INSTREAM size limit exceeded."},
        /* "OK" for bytes it never had in full is no verdict. */
        {FAKE_BADCHUNK, 0, 5000, 4 << 20, MR_EIO, 0,
         "before the stream ended"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake f;
        struct mr_clamd_result r;
        struct mr_error err = {0};
        int rc = scan_filled(&f, cases[i].mode, cases[i].limit,
                             cases[i].timeout_ms, cases[i].n, 'q', &r, &err);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(r.verdict, cases[i].verdict);
            assert_string_equal(r.detail, cases[i].text);
        } else {
            assert_non_null(strstr(err.msg, cases[i].text));
        }
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A reply of 11 bytes, one per TRICKLE_MS (1.1 s in all), every byte
 * well inside the 400 ms step timeout: with a deadline of 5 s it is read
 * whole; with one of 500 ms the scan ends at the deadline, not later. */
static void test_trickle_meets_the_deadline(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, FAKE_TRICKLE, 0);
    struct mr_clamd_options o = opts_for(&f, 400);
    o.total_ms = 5000;
    struct mr_clamd_result r;
    struct mr_error err = {0};
    assert_int_equal(mr_clamd_scan(&o, "abc", 3, &r, &err), 0);
    assert_int_equal(r.verdict, MR_CLAMD_CLEAN);
    fake_stop(&f);

    fake_start(&f, FAKE_TRICKLE, 0);
    o = opts_for(&f, 400);
    o.total_ms = 500;
    int64_t t0 = mono_ms();
    assert_int_equal(mr_clamd_scan(&o, "abc", 3, &r, &err), MR_EIO);
    int64_t took = mono_ms() - t0;
    fake_stop(&f);
    assert_non_null(strstr(err.msg, "no verdict within 500 ms"));
    assert_true(took >= 450 && took < 900);
}

struct stopper {
    atomic_bool flag;
    int after_ms;
};

static void *stop_later(void *arg)
{
    struct stopper *s = arg;
    usleep((useconds_t)s->after_ms * 1000);
    atomic_store(&s->flag, true);
    return NULL;
}

/* clamd takes the stream and says nothing; the step timeout is 30 s.
 * The stop flag, set 300 ms in, ends the scan at once: MR_EAGAIN (no
 * verdict, and not the attachment's fault). */
static void test_stop_ends_a_silent_scan(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, FAKE_SILENT, 0);
    struct stopper s = {.after_ms = 300};
    atomic_init(&s.flag, false);
    struct mr_clamd_options o = opts_for(&f, 30000);
    o.stop = &s.flag;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_later, &s), 0);
    struct mr_clamd_result r;
    struct mr_error err = {0};
    int64_t t0 = mono_ms();
    assert_int_equal(mr_clamd_scan(&o, "abc", 3, &r, &err), MR_EAGAIN);
    int64_t took = mono_ms() - t0;
    pthread_join(t, NULL);
    fake_stop(&f);
    assert_true(f.saw_end);
    assert_non_null(strstr(err.msg, "stopped"));
    assert_true(took >= 250 && took < 1000);
    /* Already stopped: no connection at all. */
    assert_int_equal(mr_clamd_ping(&o, &err), MR_EAGAIN);
    assert_non_null(strstr(err.msg, "stopped"));
}

static void test_unreachable(void **state)
{
    (void)state;
    struct mr_clamd_options o = {.socket = "/nonexistent/clamd.sock",
                                 .timeout_ms = 500};
    struct mr_clamd_result r;
    struct mr_error err = {0};
    assert_int_equal(mr_clamd_scan(&o, "a", 1, &r, &err), MR_EAGAIN);
    assert_int_equal(mr_clamd_ping(&o, &err), MR_EAGAIN);
    struct mr_clamd_options none = {0};
    assert_int_equal(mr_clamd_ping(&none, &err), MR_EINVAL);
}

static void test_ping(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, FAKE_NORMAL, 0);
    struct mr_clamd_options o = opts_for(&f, 5000);
    struct mr_error err = {0};
    assert_int_equal(mr_clamd_ping(&o, &err), 0);
    fake_stop(&f);
    assert_string_equal(f.command, "zPING");
    fake_start(&f, FAKE_MALFORMED, 0);
    o = opts_for(&f, 5000);
    assert_int_equal(mr_clamd_ping(&o, &err), MR_EIO);
    fake_stop(&f);
}

/* The same conversation over loopback TCP (clamd's TCPSocket). */
static void test_tcp(void **state)
{
    (void)state;
    struct fake f;
    memset(&f, 0, sizeof f);
    f.mode = FAKE_NORMAL;
    f.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(f.lfd, (struct sockaddr *)&sa, &sl), 0);
    assert_int_equal(listen(f.lfd, 4), 0);
    assert_int_equal(pthread_create(&f.thread, NULL, fake_run, &f), 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    struct mr_clamd_options o = {.address = addr, .timeout_ms = 5000};
    struct mr_clamd_result r;
    struct mr_error err = {0};
    assert_int_equal(mr_clamd_scan(&o, "hello EICAR", 11, &r, &err), 0);
    pthread_join(f.thread, NULL);
    close(f.lfd);
    assert_int_equal(r.verdict, MR_CLAMD_INFECTED);
    struct mr_clamd_options bad = {.address = "no-port", .timeout_ms = 100};
    assert_int_equal(mr_clamd_ping(&bad, &err), MR_EINVAL);
}

static void test_parse_reply(void **state)
{
    (void)state;
    struct mr_clamd_result r;
    struct mr_error err = {0};
#define P(s) mr_clamd_parse_reply(s, strlen(s), &r, &err)
    assert_int_equal(P("stream: OK"), 0);
    assert_int_equal(r.verdict, MR_CLAMD_CLEAN);
    assert_int_equal(P("stream: OK\n"), 0);
    assert_int_equal(P("stream: Win.Test.EICAR_HDB-1 FOUND"), 0);
    assert_int_equal(r.verdict, MR_CLAMD_INFECTED);
    assert_string_equal(r.detail, "Win.Test.EICAR_HDB-1");
    assert_int_equal(P("stream: Can't allocate memory ERROR"), 0);
    assert_int_equal(r.verdict, MR_CLAMD_ERROR);
    assert_string_equal(r.detail, "Can't allocate memory");
    assert_int_equal(P("INSTREAM size limit exceeded. ERROR"), 0);
    assert_int_equal(r.verdict, MR_CLAMD_ERROR);
    /* Never clean by accident. */
    assert_int_equal(P(""), MR_EIO);
    assert_int_equal(P("OK"), MR_EIO);
    assert_int_equal(P("stream: "), MR_EIO);
    assert_int_equal(P("stream: OKAY"), MR_EIO);
    assert_int_equal(P("stream:  FOUND"), MR_EIO);
    assert_int_equal(P("stream: two words FOUND"), MR_EIO);
    assert_int_equal(P("stream: OK trailing"), MR_EIO);
    assert_int_equal(P("PONG"), MR_EIO);
    assert_int_equal(mr_clamd_parse_reply("stream: \x01 FOUND", 15, &r, &err),
                     MR_EIO);
    assert_int_equal(mr_clamd_parse_reply("stream: OK\0x", 12, &r, &err),
                     MR_EIO);
#undef P
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reply),
        cmocka_unit_test(test_clean_and_framing),
        cmocka_unit_test(test_found),
        cmocka_unit_test(test_empty_stream),
        cmocka_unit_test(test_misbehaving_clamd),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_trickle_meets_the_deadline),
        cmocka_unit_test(test_stop_ends_a_silent_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
