/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config_slot.c - the swappable configuration behind the notify
 * sender (config/config_slot.h) and the fingerprints a reload compares
 * (mr_config_changed). Run under ASan, a swap that freed a config a
 * reference still held shows up as a use after free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_slot.h"

static struct mr_config *load(const char *text)
{
    char dir[] = "/tmp/mr-test-cfgslot-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
    struct mr_config *cfg = NULL;
    struct mr_config_diags d = {0};
    struct mr_error err = {0};
    int rc = mr_config_load(path, NULL, &cfg, &d, &err);
    if (rc != 0)
        fprintf(stderr, "load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    mr_config_diags_free(&d);
    unlink(path);
    rmdir(dir);
    return cfg;
}

/* A config whose Slack integration "chat" posts to url, with the given
 * listen line and the keys in a chosen order. */
static struct mr_config *with(const char *url, const char *http,
                              bool reorder, const char *webhook)
{
    char tenants[800], hooks[300] = "", head[200], text[1200];
    if (webhook)
        snprintf(hooks, sizeof hooks,
                 "    webhooks:\n"
                 "      - url: \"%s\"\n"
                 "        secrets: [\"0123456789abcdef0123\"]\n",
                 webhook);
    snprintf(tenants, sizeof tenants,
             "tenants:\n"
             "  - name: acme\n"
             "%s"
             "    inboxes: [support@acme.test]\n"
             "    integrations:\n"
             "      - {name: chat, kind: slack, url: \"%s\"}\n",
             hooks, url);
    snprintf(head, sizeof head,
             "hostname: mx.acme.test\nlisten:\n  http: \"%s\"\n", http);
    if (reorder)
        snprintf(text, sizeof text, "%s%s", tenants, head);
    else
        snprintf(text, sizeof text, "%s%s", head, tenants);
    return load(text);
}

static const char *slack_url(const struct mr_config *cfg)
{
    const struct mr_integration *x = mr_config_integration(cfg, "acme", "chat");
    return x ? x->url : NULL;
}

/* A reference taken before a swap keeps reading its own config, whole,
 * until released; the borrowed first config is never freed by the slot. */
static void test_swap_while_held(void **state)
{
    (void)state;
    struct mr_config *a = with("https://a.example/hook", "127.0.0.1:8080",
                               false, NULL);
    struct mr_config_slot *s = mr_config_slot_new(a);
    assert_int_equal(mr_config_slot_generation(s), 0);

    struct mr_config_ref *r1 = mr_config_slot_acquire(s);
    assert_ptr_equal(mr_config_ref_get(r1), a);

    mr_config_slot_swap(s, with("https://b.example/hook", "127.0.0.1:8080",
                                false, NULL));
    assert_int_equal(mr_config_slot_generation(s), 1);
    /* r1 still reads a's integration. */
    assert_string_equal(slack_url(mr_config_ref_get(r1)),
                        "https://a.example/hook");

    struct mr_config_ref *r2 = mr_config_slot_acquire(s);
    assert_string_equal(slack_url(mr_config_ref_get(r2)),
                        "https://b.example/hook");
    /* b is replaced while r2 holds it: b must stay readable. */
    mr_config_slot_swap(s, with("https://c.example/hook", "127.0.0.1:8080",
                                false, NULL));
    assert_string_equal(slack_url(mr_config_ref_get(r2)),
                        "https://b.example/hook");
    struct mr_config_ref *r3 = mr_config_slot_acquire(s);
    assert_string_equal(slack_url(mr_config_ref_get(r3)),
                        "https://c.example/hook");
    mr_config_slot_release(s, r2); /* frees b */
    mr_config_slot_release(s, r1); /* a is borrowed: not freed */
    mr_config_slot_release(s, r3);
    mr_config_slot_release(s, NULL);
    assert_int_equal(mr_config_slot_generation(s), 2);
    mr_config_slot_free(&s);
    assert_null(s);
    /* Still ours. */
    assert_string_equal(slack_url(a), "https://a.example/hook");
    mr_config_free(a);
}

static void test_empty_slot(void **state)
{
    (void)state;
    struct mr_config_slot *s = mr_config_slot_new(NULL);
    assert_null(mr_config_slot_acquire(s));
    assert_null(mr_config_slot_acquire(NULL));
    assert_null(mr_config_ref_get(NULL));
    mr_config_slot_swap(s, with("https://a.example/x", "127.0.0.1:8080",
                                false, NULL));
    struct mr_config_ref *r = mr_config_slot_acquire(s);
    assert_non_null(r);
    mr_config_slot_release(s, r);
    mr_config_slot_free(&s);
    mr_config_slot_free(&s); /* NULL: no-op */
}

struct reader {
    struct mr_config_slot *s;
    atomic_bool stop;
    size_t rounds, bad;
};

static void *read_loop(void *arg)
{
    struct reader *rd = arg;
    while (!atomic_load(&rd->stop)) {
        struct mr_config_ref *r = mr_config_slot_acquire(rd->s);
        const char *u = slack_url(mr_config_ref_get(r));
        /* Read every byte: a freed config would be caught by ASan. */
        if (u == NULL || strncmp(u, "https://", 8) != 0)
            rd->bad++;
        mr_config_slot_release(rd->s, r);
        rd->rounds++;
    }
    return NULL;
}

static void test_swap_under_readers(void **state)
{
    (void)state;
    struct mr_config *a = with("https://a.example/0", "127.0.0.1:8080", false,
                               NULL);
    struct reader rd = {.s = mr_config_slot_new(a)};
    atomic_init(&rd.stop, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_loop, &rd), 0);
    for (int i = 0; i < 60; i++) {
        char url[64];
        snprintf(url, sizeof url, "https://a.example/%d", i + 1);
        mr_config_slot_swap(rd.s, with(url, "127.0.0.1:8080", false, NULL));
    }
    atomic_store(&rd.stop, true);
    pthread_join(t, NULL);
    assert_int_equal(rd.bad, 0);
    assert_true(rd.rounds > 0);
    struct mr_config_ref *r = mr_config_slot_acquire(rd.s);
    assert_string_equal(slack_url(mr_config_ref_get(r)),
                        "https://a.example/60");
    mr_config_slot_release(rd.s, r);
    assert_int_equal(mr_config_slot_generation(rd.s), 60);
    mr_config_slot_free(&rd.s);
    mr_config_free(a);
}

/* Integrations, webhooks and key order are not changes that need a
 * restart; a listener is. */
static void test_changed_keys(void **state)
{
    (void)state;
    struct mr_config *a = with("https://a.example/1", "127.0.0.1:8080", false,
                               NULL);
    struct mr_config *b = with("https://b.example/2", "127.0.0.1:8080", true,
                               "https://hooks.example/in");
    const char *names[MR_CONFIG_TOP_KEYS];
    assert_int_equal(mr_config_changed(a, b, names, MR_CONFIG_TOP_KEYS), 0);

    struct mr_config *c = with("https://a.example/1", "127.0.0.1:9090", false,
                               NULL);
    assert_int_equal(mr_config_changed(a, c, names, MR_CONFIG_TOP_KEYS), 1);
    assert_string_equal(names[0], "listen");
    /* cap 0: counted, nothing written */
    assert_int_equal(mr_config_changed(a, c, names, 0), 1);

    struct mr_config *d = load("hostname: mx.acme.test\n"
                               "listen:\n  http: \"127.0.0.1:8080\"\n"
                               "limits:\n  max_recipients: 5\n"
                               "tenants:\n"
                               "  - name: acme\n"
                               "    inboxes: [support@acme.test, "
                               "help@acme.test]\n");
    assert_int_equal(mr_config_changed(a, d, names, MR_CONFIG_TOP_KEYS), 2);
    /* file-schema order */
    assert_string_equal(names[0], "limits");
    assert_string_equal(names[1], "tenants");
    assert_string_equal(mr_config_top_key(3), "listen");
    assert_null(mr_config_top_key(MR_CONFIG_TOP_KEYS));
    mr_config_free(a);
    mr_config_free(b);
    mr_config_free(c);
    mr_config_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swap_while_held),
        cmocka_unit_test(test_empty_slot),
        cmocka_unit_test(test_swap_under_readers),
        cmocka_unit_test(test_changed_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
