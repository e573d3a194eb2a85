/* SPDX-License-Identifier: Apache-2.0 */
/* Outbound HTTP (src/outbound/http_out.h) against a loopback server made
 * here: many requests at once where one that hangs delays no other, and
 * the guards on the multi path as on the single one (private targets
 * refused, redirects not followed, http/https only, capped body, the
 * bound on requests in flight). Skipped when libcurl cannot be loaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "outbound/http_out.h"

#define MAX_CONN 32

struct srv {
    int fd;
    int port;
    atomic_bool stop;
    pthread_t thread;
    pthread_t conns[MAX_CONN];
    atomic_int nconns;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* One request per connection: the path picks the answer. */
static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[8192] = "";
    size_t len = 0;
    while (len < sizeof req - 1 && strstr(req, "\r\n\r\n") == NULL) {
        ssize_t r = recv(fd, req + len, sizeof req - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        req[len] = '\0';
    }
    req[len] = '\0';
    if (strstr(req, " /hang ") != NULL) {
        usleep(1500 * 1000);
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38);
    } else if (strstr(req, " /redirect ") != NULL) {
        const char r[] = "HTTP/1.1 302 Found\r\nLocation: /ok\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n";
        send_all(fd, r, sizeof r - 1);
    } else if (strstr(req, " /big ") != NULL) {
        size_t n = 3 * MR_HTTP_OUT_BODY_MAX;
        char head[128];
        int h = snprintf(head, sizeof head,
                         "HTTP/1.1 500 Oops\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n",
                         n);
        send_all(fd, head, (size_t)h);
        char *body = malloc(n);
        memset(body, 'x', n);
        send_all(fd, body, n);
        free(body);
    } else {
        const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                         "Connection: close\r\n\r\nok";
        send_all(fd, r, sizeof r - 1);
    }
    close(fd);
    return NULL;
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        int i = atomic_load(&s->nconns);
        if (i >= MAX_CONN) {
            close(c);
            continue;
        }
        pthread_create(&s->conns[i], NULL, conn_main, (void *)(intptr_t)c);
        atomic_store(&s->nconns, i + 1);
    }
    return NULL;
}

static int srv_start(void **state)
{
    struct srv *s = calloc(1, sizeof *s);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->fd, 64) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, srv_main, s);
    *state = s;
    return 0;
}

static int srv_stop(void **state)
{
    struct srv *s = *state;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < atomic_load(&s->nconns); i++)
        pthread_join(s->conns[i], NULL);
    close(s->fd);
    free(s);
    return 0;
}

static struct mr_http_out *open_or_skip(bool allow_private)
{
    struct mr_http_out *h = NULL;
    struct mr_error err = {0};
    if (mr_http_out_open(allow_private, &h, &err) != MR_OK)
        return NULL;
    return h;
}

static void url(char *buf, size_t n, const struct srv *s, const char *path)
{
    snprintf(buf, n, "http://127.0.0.1:%d%s", s->port, path);
}

static void hang_delays_no_other(void **state)
{
    struct srv *s = *state;
    struct mr_http_out *h = open_or_skip(true);
    if (h == NULL)
        skip();
    struct mr_http_out_multi *m = NULL;
    struct mr_error err = {0};
    assert_int_equal(mr_http_out_multi_new(h, 3, NULL, &m, &err), MR_OK);
    char u_hang[96], u_ok[96];
    url(u_hang, sizeof u_hang, s, "/hang");
    url(u_ok, sizeof u_ok, s, "/ok");
    struct mr_http_out_req hang = {.url = u_hang, .body = "{}", .body_len = 2,
                                   .timeout_ms = 600};
    struct mr_http_out_req ok = {.url = u_ok, .body = "{}", .body_len = 2};
    int tags[3] = {0, 1, 2};
    int64_t t0 = mono_ms();
    assert_int_equal(mr_http_out_multi_add(m, &hang, &tags[0], &err), MR_OK);
    assert_int_equal(mr_http_out_multi_add(m, &ok, &tags[1], &err), MR_OK);
    assert_int_equal(mr_http_out_multi_add(m, &ok, &tags[2], &err), MR_OK);
    /* A fourth is over the bound. */
    assert_int_equal(mr_http_out_multi_add(m, &ok, &tags[0], &err), MR_ELIMIT);
    assert_int_equal(mr_http_out_multi_running(m), 3);
    int64_t at[3] = {0, 0, 0};
    struct mr_http_out_res res[3];
    struct mr_http_out_done done[3];
    for (int turn = 0; turn < 100 && mr_http_out_multi_running(m) > 0;
         turn++) {
        size_t k = mr_http_out_multi_poll(m, 100, done, 3);
        for (size_t i = 0; i < k; i++) {
            int t = *(int *)done[i].tag;
            at[t] = mono_ms() - t0;
            res[t] = done[i].res;
        }
    }
    assert_int_equal(mr_http_out_multi_running(m), 0);
    /* The quick ones came back long before the hung one's timeout. */
    assert_int_equal(res[1].status, 200);
    assert_int_equal(res[2].status, 200);
    assert_string_equal(res[1].body, "ok");
    assert_true(at[1] < 400 && at[2] < 400);
    assert_int_equal(res[0].status, 0);
    assert_true(at[0] >= 550);
    assert_true(strstr(res[0].error, "imeout") != NULL ||
                strstr(res[0].error, "timed out") != NULL);
    for (int i = 0; i < 3; i++)
        mr_http_out_res_release(&res[i]);
    mr_http_out_multi_free(m);
    mr_http_out_close(h);
}

static void guards_hold_on_many(void **state)
{
    struct srv *s = *state;
    struct mr_http_out *h = open_or_skip(true);
    if (h == NULL)
        skip();
    char u_red[96], u_big[96];
    url(u_red, sizeof u_red, s, "/redirect");
    url(u_big, sizeof u_big, s, "/big");
    struct mr_http_out_req reqs[3] = {
        {.url = u_red},
        {.url = u_big},
        {.url = "ftp://127.0.0.1/x"},
    };
    struct mr_http_out_res res[3];
    mr_http_out_many(h, reqs, 3, NULL, res);
    /* Redirects are answers, never followed. */
    assert_int_equal(res[0].status, 302);
    assert_true(strncmp(res[0].error, "HTTP 302", 8) == 0);
    /* The body is read to its end but kept only up to the cap. */
    assert_int_equal(res[1].status, 500);
    assert_int_equal(res[1].body_len, MR_HTTP_OUT_BODY_MAX);
    /* Only http and https. */
    assert_int_equal(res[2].status, 0);
    assert_true(res[2].error[0] != '\0');
    for (int i = 0; i < 3; i++)
        mr_http_out_res_release(&res[i]);
    mr_http_out_close(h);
}

static void private_refused_on_many(void **state)
{
    struct srv *s = *state;
    struct mr_http_out *h = open_or_skip(false);
    if (h == NULL)
        skip();
    char u_ok[96];
    url(u_ok, sizeof u_ok, s, "/ok");
    struct mr_http_out_req reqs[2] = {{.url = u_ok}, {.url = u_ok}};
    struct mr_http_out_res res[2];
    mr_http_out_many(h, reqs, 2, NULL, res);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(res[i].status, 0);
        assert_true(res[i].refused);
        assert_non_null(strstr(res[i].error, "refused"));
        mr_http_out_res_release(&res[i]);
    }
    mr_http_out_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hang_delays_no_other, srv_start,
                                        srv_stop),
        cmocka_unit_test_setup_teardown(guards_hold_on_many, srv_start,
                                        srv_stop),
        cmocka_unit_test_setup_teardown(private_refused_on_many, srv_start,
                                        srv_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
