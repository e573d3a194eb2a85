/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_notify.c - the integrations' sender thread (src/outbound/notify.h)
 * against a fake Slack on loopback and a store whose commits fail: the
 * outcome of a request cannot be recorded, so the row stays due and the
 * sender must wait longer each round instead of making the same chat
 * message four times a second. Once the store writes again, the row is
 * recorded sent. The payloads themselves are test_integrations.c's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "outbound/http_out.h"
#include "outbound/notify.h"
#include "store/store-private.h"
#include "store/store.h"
#include "util/log.h"

#include "store_fixture.h"

/* A Slack that answers every request 200 and counts them. */
struct fake_slack {
    int lfd;
    int port;
    atomic_int requests;
    atomic_bool stop;
    pthread_t tid;
};

/* Reads the request through its body (Content-Length), bounded. */
static void read_request(int fd)
{
    char buf[16384];
    size_t len = 0;
    for (int i = 0; i < 100 && len < sizeof buf - 1; i++) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        const char *cl = strcasestr(buf, "content-length:");
        size_t want = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
        if (len - (size_t)(end + 4 - buf) >= want)
            return;
    }
}

static void *slack_main(void *arg)
{
    struct fake_slack *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) != 1)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        read_request(fd);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 "Connection: close\r\n\r\nok";
        (void)!write(fd, ok, sizeof ok - 1);
        atomic_fetch_add(&s->requests, 1);
        close(fd);
    }
    return NULL;
}

static void slack_start(struct fake_slack *s)
{
    memset(s, 0, sizeof *s);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t sl = sizeof a;
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &sl), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(pthread_create(&s->tid, NULL, slack_main, s), 0);
}

static void slack_stop(struct fake_slack *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->tid, NULL);
    close(s->lfd);
}

static struct mr_config *config_for(const struct fake_slack *s, const char *dir)
{
    char path[160], text[600];
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    snprintf(text, sizeof text,
             "webhooks_allow_private: true\n"
             "tenants:\n"
             "  - name: acme\n"
             "    inboxes: [support@acme.test]\n"
             "    integrations:\n"
             "      - {name: chat, kind: slack,"
             " url: 'http://127.0.0.1:%d/hook'}\n",
             s->port);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    struct mr_config *cfg = NULL;
    struct mr_config_diags d;
    memset(&d, 0, sizeof d);
    int rc = mr_config_load(path, dir, &cfg, &d, NULL);
    for (size_t i = 0; i < d.n; i++)
        print_error("%d:%d: %s\n", d.items[i].line, d.items[i].column,
                    d.items[i].msg);
    mr_config_diags_free(&d);
    unlink(path);
    assert_int_equal(rc, 0);
    return cfg;
}

/* One message whose rules notify "chat". */
static void deliver(struct mr_store *st)
{
    struct mr_rules_outcome ro = {.notify_json = "[\"chat\"]"};
    struct mr_message_rec m = {
        .tenant = "acme",
        .channel = "smtp",
        .message_id = "n1@x",
        .subject = "printer on fire",
        .from_email = "alice@example.org",
        .event_json = "{\"type\":\"email.received\"}",
        .raw_sha256 = "ff00",
        .received_at = 5000,
        .rules_new = &ro,
    };
    struct mr_deliver_result res;
    struct mr_error err = {0};
    assert_int_equal(mr_store_deliver_message(st, 0, NULL, &m, &res, &err), 0);
}

static const char *state_of(struct mr_store *st)
{
    static char state[16];
    struct mr_notification_state *v = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    struct mr_notify_filter all = {.tenant = "acme", .limit = 10};
    assert_int_equal(mr_store_notify_list(st, &all, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    snprintf(state, sizeof state, "%s", v[0].state);
    mr_notification_states_free(v, n);
    return state;
}

static void unrecorded_outcomes_back_off(void **state)
{
    struct fx *f = *state;
    struct mr_http_out *probe = NULL;
    if (mr_http_out_open(false, &probe, NULL) != MR_OK)
        skip(); /* no libcurl on this machine */
    mr_http_out_close(probe);

    struct fake_slack s;
    slack_start(&s);
    struct mr_config *cfg = config_for(&s, f->dir);
    deliver(f->st);
    struct mr_log log;
    FILE *quiet = fopen("/dev/null", "w");
    assert_non_null(quiet);
    mr_log_init(&log, quiet, MR_LOG_ERROR);

    /* Every outcome is lost for two seconds. */
    mr_store_debug_fail_commits(f->st, 1000000);
    struct mr_notify *nt = NULL;
    struct mr_error err = {0};
    assert_int_equal(mr_notify_start(cfg, f->st, &log, NULL, &nt, &err), 0);
    usleep(2000 * 1000);
    int lost = atomic_load(&s.requests);
    char before[16];
    snprintf(before, sizeof before, "%s", state_of(f->st));

    /* The store writes again: the next attempt is recorded. */
    mr_store_debug_fail_commits(f->st, 0);
    for (int i = 0; i < 100 && strcmp(state_of(f->st), "sent") != 0; i++)
        usleep(50 * 1000);
    /* Stopped before any check, so a failed one leaves no thread behind. */
    mr_notify_stop(nt);
    slack_stop(&s);
    /* Sent again, but after 250, 500, 1000 ms: not every 250 ms (8). */
    print_message("requests while the store failed: %d\n", lost);
    assert_true(lost >= 1);
    assert_true(lost <= 4);
    assert_string_equal(before, "pending");
    assert_string_equal(state_of(f->st), "sent");
    assert_int_equal(atomic_load(&s.requests), lost + 1);
    mr_log_destroy(&log);
    fclose(quiet);
    mr_config_free(cfg);
}

static int setup(void **state)
{
    return store_fx_setup(state, "notify");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unrecorded_outcomes_back_off, setup,
                                        store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
