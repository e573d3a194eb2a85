/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_scanner.c - the scanner thread (src/scan/scanner.h) with a real
 * store and blob folder and a fake clamd on a unix socket that counts the
 * streams it is sent:
 *  - while the store cannot record a verdict (its commits fail), the
 *    attachment is scanned again only after a growing wait (1 s, 2 s, ...),
 *    not every round; once the store writes, the verdict is recorded;
 *  - mr_scanner_stop during a scan clamd never answers (30 s step timeout)
 *    returns within about a second, and the attachment stays pending with
 *    no attempt counted;
 *  - a verdict for the same bytes is reused (one stream for two
 *    attachments), but not for an attachment an operator queued again (a
 *    rescan): that one is sent to clamd, and its event says so.
 * The clamd conversation itself is test_clamd.c's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "blob/blob.h"
#include "config/config.h"
#include "scan/scanner.h"
#include "store/store-private.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

#include "store_fixture.h"

/* A clamd that answers every stream "stream: OK", or, silent, reads it
 * and waits for the client to hang up. */
struct fake_clamd {
    int lfd;
    char path[108];
    bool silent;
    atomic_int streams; /* whole streams received */
    pthread_t tid;
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

/* One connection: the command, the chunks up to the empty one, a reply. */
static void serve_one(struct fake_clamd *f, int fd)
{
    char ch;
    for (int i = 0; i < 32 && read(fd, &ch, 1) == 1 && ch != '\0'; i++) {
    }
    char buf[4096];
    for (;;) {
        unsigned char hdr[4];
        if (!read_n(fd, hdr, 4))
            return;
        uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
                       (uint32_t)hdr[2] << 8 | hdr[3];
        if (len == 0)
            break;
        while (len > 0) {
            size_t k = len < sizeof buf ? len : sizeof buf;
            if (!read_n(fd, buf, k))
                return;
            len -= (uint32_t)k;
        }
    }
    atomic_fetch_add(&f->streams, 1);
    if (f->silent) {
        while (read(fd, buf, sizeof buf) > 0) {
        }
        return;
    }
    (void)!write(fd, "stream: OK", 11);
}

static void *fake_main(void *arg)
{
    struct fake_clamd *f = arg;
    for (;;) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        serve_one(f, fd);
        close(fd);
    }
}

static void fake_start(struct fake_clamd *f, const char *dir, bool silent)
{
    memset(f, 0, sizeof *f);
    f->silent = silent;
    atomic_init(&f->streams, 0);
    snprintf(f->path, sizeof f->path, "%s/clamd.sock", dir);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(pthread_create(&f->tid, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake_clamd *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->tid, NULL);
    close(f->lfd);
    unlink(f->path);
}

static struct mr_config *config_for(const struct fake_clamd *c, const char *dir)
{
    char path[160], text[400];
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    snprintf(text, sizeof text,
             "clamd: {socket: %s, retry_max: 30s}\n"
             "tenants:\n"
             "  - name: acme\n"
             "    inboxes: [support@acme.test]\n",
             c->path);
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

/* A message with one pending attachment whose bytes are in the blob
 * folder. */
static void deliver_as(struct mr_store *st, struct mr_blob *blob,
                       const char *msgid)
{
    static const char bytes[] = "quarterly numbers, nothing to see\n";
    char key[MR_BLOB_KEY_LEN + 1];
    struct mr_error err = {0};
    assert_int_equal(mr_blob_put(blob, bytes, sizeof bytes - 1, key, &err), 0);
    const struct mr_attachment_rec atts[] = {
        {.filename = "notes.txt",
         .size = sizeof bytes - 1,
         .sha256 = key,
         .scan = "pending"},
    };
    struct mr_message_rec m = {
        .tenant = "acme",
        .channel = "smtp",
        .message_id = msgid,
        .subject = "numbers",
        .from_email = "alice@example.org",
        .event_json = "{\"type\":\"email.received\"}",
        .raw_sha256 = "ff00",
        .received_at = 5000,
        .attachments = atts,
        .nattachments = 1,
    };
    struct mr_deliver_result res;
    assert_int_equal(mr_store_deliver_message(st, 0, NULL, &m, &res, &err), 0);
}

static void deliver(struct mr_store *st, struct mr_blob *blob)
{
    deliver_as(st, blob, "scan-1@x");
}

/* The attachment's attempts while pending, or -1 once it has a verdict. */
static int pending_attempts(struct mr_store *st)
{
    struct mr_scan_item *it = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_scan_due(st, INT64_MAX / 2, 16, &it, &n, &err),
                     0);
    int a = n == 1 ? it[0].attempts : -1;
    mr_scan_item_list_free(it, n);
    return a;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct env {
    struct fx *f;
    struct mr_blob *blob;
    struct mr_log log;
    FILE *quiet;
};

static void env_open(struct env *e, struct fx *f)
{
    e->f = f;
    char dir[160];
    snprintf(dir, sizeof dir, "%s/blobs", f->dir);
    struct mr_error err = {0};
    assert_int_equal(mr_blob_open_fs(dir, &e->blob, &err), 0);
    e->quiet = fopen("/dev/null", "w");
    assert_non_null(e->quiet);
    mr_log_init(&e->log, e->quiet, MR_LOG_ERROR);
}

static void env_close(struct env *e)
{
    mr_log_destroy(&e->log);
    fclose(e->quiet);
    mr_blob_close(e->blob);
}

static void unrecorded_verdicts_back_off(void **state)
{
    struct env e;
    env_open(&e, *state);
    struct fake_clamd c;
    fake_start(&c, e.f->dir, false);
    struct mr_config *cfg = config_for(&c, e.f->dir);
    deliver(e.f->st, e.blob);

    /* Every verdict is lost for 2.5 s. */
    mr_store_debug_fail_commits(e.f->st, 1000000);
    struct mr_scanner *sc = NULL;
    struct mr_error err = {0};
    assert_int_equal(mr_scanner_start(cfg, e.f->st, e.blob, &e.log, NULL, &sc, &err),
                     0);
    assert_non_null(sc);
    usleep(2500 * 1000);
    int lost = atomic_load(&c.streams);
    int before = pending_attempts(e.f->st);

    /* The store writes again: the next scan's verdict is recorded. */
    mr_store_debug_fail_commits(e.f->st, 0);
    for (int i = 0; i < 150 && pending_attempts(e.f->st) >= 0; i++)
        usleep(50 * 1000);
    int after = pending_attempts(e.f->st);
    struct mr_scanner_status s;
    mr_scanner_status(sc, &s);
    mr_scanner_stop(sc);
    fake_stop(&c);
    /* Scanned at 0, 1 s and 3 s: not every 500 ms (5 or 6). */
    print_message("scans while the store failed: %d\n", lost);
    assert_true(lost >= 1);
    assert_true(lost <= 3);
    assert_int_equal(before, 0); /* still pending, no attempt counted */
    assert_int_equal(after, -1); /* recorded */
    assert_int_equal(s.scanned, 1);
    assert_int_equal(atomic_load(&c.streams), lost + 1);
    mr_config_free(cfg);
    env_close(&e);
}

static void stop_during_a_silent_scan(void **state)
{
    struct env e;
    env_open(&e, *state);
    struct fake_clamd c;
    fake_start(&c, e.f->dir, true);
    struct mr_config *cfg = config_for(&c, e.f->dir);
    assert_int_equal(cfg->clamd.timeout_ms, 30000);
    deliver(e.f->st, e.blob);
    struct mr_scanner *sc = NULL;
    struct mr_error err = {0};
    assert_int_equal(mr_scanner_start(cfg, e.f->st, e.blob, &e.log, NULL, &sc, &err),
                     0);
    for (int i = 0; i < 200 && atomic_load(&c.streams) == 0; i++)
        usleep(10 * 1000);
    assert_int_equal(atomic_load(&c.streams), 1);
    usleep(200 * 1000); /* the scanner now waits for a reply */
    int64_t t0 = mono_ms();
    mr_scanner_stop(sc);
    int64_t took = mono_ms() - t0;
    print_message("mr_scanner_stop took %lld ms\n", (long long)took);
    assert_true(took < 1000);
    struct mr_scanner_status s;
    memset(&s, 0xff, sizeof s);
    mr_scanner_status(NULL, &s);
    assert_int_equal(s.scanned, 0);
    /* Aborted: no verdict, no attempt against the attachment. */
    assert_int_equal(pending_attempts(e.f->st), 0);
    fake_stop(&c);
    mr_config_free(cfg);
    env_close(&e);
}

/* The attachment.scanned payloads so far (caller decrefs). */
static json_t *scanned(struct mr_store *st)
{
    const char *types[] = {"attachment.scanned"};
    struct mr_event_rec *ev = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(
        mr_store_list_events(st, "acme", 0, 100, types, 1, &ev, &n, &err), 0);
    json_t *all = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(all, json_loads(ev[i].payload, 0, NULL));
    mr_event_list_free(ev, n);
    return all;
}

static size_t wait_events(struct mr_store *st, size_t want)
{
    size_t n = 0;
    for (int i = 0; i < 200; i++) {
        json_t *all = scanned(st);
        n = json_array_size(all);
        json_decref(all);
        if (n >= want)
            break;
        usleep(25 * 1000);
    }
    return n;
}

static void rescan_asks_clamd_again(void **state)
{
    struct env e;
    env_open(&e, *state);
    struct fake_clamd c;
    fake_start(&c, e.f->dir, false);
    struct mr_config *cfg = config_for(&c, e.f->dir);
    deliver_as(e.f->st, e.blob, "scan-1@x");
    deliver_as(e.f->st, e.blob, "scan-2@x");
    struct mr_scanner *sc = NULL;
    struct mr_error err = {0};
    assert_int_equal(
        mr_scanner_start(cfg, e.f->st, e.blob, &e.log, NULL, &sc, &err), 0);
    assert_int_equal(wait_events(e.f->st, 2), 2);
    /* The same bytes twice: the second verdict was reused. */
    assert_int_equal(atomic_load(&c.streams), 1);

    /* The second again: a verdict for its bytes is minutes old, but a
     * rescan asks clamd. */
    json_t *all = scanned(e.f->st);
    int64_t id = json_integer_value(
        json_object_get(json_array_get(all, 1), "attachment_id"));
    json_decref(all);
    assert_int_equal(mr_store_scan_rescan(e.f->st, "acme", id,
                                          mr_clock_wall_ms(), NULL, &err),
                     0);
    assert_int_equal(wait_events(e.f->st, 3), 3);
    mr_scanner_stop(sc);
    assert_int_equal(atomic_load(&c.streams), 2);
    all = scanned(e.f->st);
    json_t *p = json_array_get(all, 2);
    assert_int_equal(json_integer_value(json_object_get(p, "attachment_id")),
                     id);
    assert_true(json_is_true(json_object_get(p, "rescan")));
    assert_string_equal(json_string_value(json_object_get(p, "previous")),
                        "clean");
    assert_string_equal(json_string_value(json_object_get(p, "scan")),
                        "clean");
    assert_true(json_is_false(
        json_object_get(json_array_get(all, 1), "rescan")));
    json_decref(all);
    fake_stop(&c);
    mr_config_free(cfg);
    env_close(&e);
}

static int setup(void **state)
{
    return store_fx_setup(state, "scanner");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unrecorded_verdicts_back_off, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(stop_during_a_silent_scan, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(rescan_asks_clamd_again, setup,
                                        store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
