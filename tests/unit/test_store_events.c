/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_events.c - the outbox as consumers read it (src/store/events.c):
 * cursor listing with limits and type filters, tenant isolation, and
 * consumer groups: disjoint batches for concurrent claimers, expired leases
 * offered again, and the ack rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

#include "store_fixture.h"

static int setup(void **state) { return store_fx_setup(state, "events"); }
static int teardown(void **state) { return store_fx_teardown(state); }

/* One delivered message: three events (email.received, ticket.created,
 * message.added). */
static void deliver(struct mr_store *st, const char *tenant, int i)
{
    char id[64], ev[128];
    snprintf(id, sizeof id, "<m%d.%s@example.org>", i, tenant);
    snprintf(ev, sizeof ev,
             "{\"type\":\"email.received\",\"subject\":\"s%d\",\"n\":%d}", i,
             i);
    struct mr_message_rec m = {
        .tenant = tenant,
        .channel = "smtp",
        .message_id = id,
        .subject = id,
        .from_email = "alice@example.org",
        .text = "hi",
        .event_json = ev,
        .received_at = 1000,
    };
    struct mr_deliver_result res;
    struct mr_error err = {0};
    int rc = mr_store_deliver_message(st, 0, NULL, &m, &res, &err);
    if (rc != 0)
        print_error("deliver: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

static void list_filter_cursor(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 3; i++)
        deliver(f->st, "acme", i);
    deliver(f->st, "globex", 9);

    struct mr_event_rec *ev;
    size_t n;
    struct mr_error err = {0};
    assert_int_equal(
        mr_store_list_events(f->st, "acme", 0, 1000, NULL, 0, &ev, &n, &err),
        0);
    assert_int_equal(n, 9);
    int received = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(ev[i].seq > ev[i - 1].seq);
        assert_true(ev[i].ticket_id > 0);
        json_t *p = json_loads(ev[i].payload, 0, NULL);
        assert_non_null(p);
        json_t *inner = json_object_get(p, "event");
        if (strcmp(ev[i].type, "email.received") == 0) {
            /* The whole normalized event rides along. */
            assert_string_equal(
                json_string_value(json_object_get(inner, "type")),
                "email.received");
            assert_int_equal(json_integer_value(json_object_get(inner, "n")),
                             received);
            received++;
        } else {
            assert_null(inner);
        }
        assert_int_equal(json_integer_value(json_object_get(p, "ticket_id")),
                         ev[i].ticket_id);
        json_decref(p);
    }
    assert_int_equal(received, 3);
    int64_t seqs[9];
    for (size_t i = 0; i < 9; i++)
        seqs[i] = ev[i].seq;
    mr_event_list_free(ev, n);

    /* From a cursor, with a limit. */
    assert_int_equal(
        mr_store_list_events(f->st, "acme", seqs[4], 2, NULL, 0, &ev, &n, &err),
        0);
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].seq, seqs[5]);
    assert_int_equal(ev[1].seq, seqs[6]);
    mr_event_list_free(ev, n);
    assert_int_equal(mr_store_list_events(f->st, "acme", seqs[8], 10, NULL, 0,
                                          &ev, &n, &err),
                     0);
    assert_int_equal(n, 0);
    assert_null(ev);

    /* Type filter. */
    const char *types[] = {"ticket.created", "nope"};
    assert_int_equal(
        mr_store_list_events(f->st, "acme", 0, 100, types, 2, &ev, &n, &err),
        0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(ev[i].type, "ticket.created");
    mr_event_list_free(ev, n);

    /* Tenants never see each other's events. */
    assert_int_equal(
        mr_store_list_events(f->st, "globex", 0, 100, NULL, 0, &ev, &n, &err),
        0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < 9; k++)
            assert_true(ev[i].seq != seqs[k]);
    mr_event_list_free(ev, n);
    assert_int_equal(
        mr_store_list_events(f->st, "nobody", 0, 100, NULL, 0, &ev, &n, &err),
        0);
    assert_int_equal(n, 0);

    assert_int_equal(
        mr_store_list_events(f->st, "acme", 0, 0, NULL, 0, &ev, &n, &err),
        MR_EINVAL);
    assert_int_equal(
        mr_store_list_events(f->st, "acme", 0, 1001, NULL, 0, &ev, &n, &err),
        MR_EINVAL);
    assert_int_equal(
        mr_store_list_events(f->st, "acme", -1, 10, NULL, 0, &ev, &n, &err),
        MR_EINVAL);
}

/* ---- consumer groups ------------------------------------------------------
 */

#define NMSG 40

struct claimer {
    struct mr_store *st;
    int64_t seen[3 * NMSG + 8];
    size_t nseen;
    int failures;
};

static void *claim_loop(void *arg)
{
    struct claimer *c = arg;
    for (int idle = 0, round = 0; idle < 20 && round < 10000; round++) {
        struct mr_event_lease l;
        struct mr_error err = {0};
        int rc = mr_store_claim_events(c->st, "acme", "workers", 7,
                                       1000000 + round, 60000, &l, &err);
        if (rc == MR_ENOTFOUND) {
            idle++;
            usleep(1000);
            continue;
        }
        if (rc != 0) {
            c->failures++;
            break;
        }
        idle = 0;
        for (size_t i = 0; i < l.n && c->nseen < 3 * NMSG + 8; i++)
            c->seen[c->nseen++] = l.events[i].seq;
        if (l.cursor != l.events[l.n - 1].seq)
            c->failures++;
        if (mr_store_ack_events(c->st, "acme", "workers", l.cursor, l.lease_id,
                                1000000 + round, &err) != 0)
            c->failures++;
        mr_event_lease_clear(&l);
    }
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void two_claimers_disjoint(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NMSG; i++)
        deliver(f->st, "acme", i);
    struct claimer c[2];
    memset(c, 0, sizeof c);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        c[i].st = f->st;
        assert_int_equal(pthread_create(&t[i], NULL, claim_loop, &c[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(c[0].failures + c[1].failures, 0);
    int64_t all[2 * (3 * NMSG + 8)];
    size_t n = 0;
    for (int i = 0; i < 2; i++)
        for (size_t k = 0; k < c[i].nseen; k++)
            all[n++] = c[i].seen[k];
    assert_int_equal(n, 3 * NMSG);
    qsort(all, n, sizeof all[0], cmp64);
    for (size_t i = 1; i < n; i++)
        assert_true(all[i] > all[i - 1]); /* no event twice */

    /* Exactly the tenant's events. */
    struct mr_event_rec *ev;
    size_t m;
    struct mr_error err = {0};
    assert_int_equal(
        mr_store_list_events(f->st, "acme", 0, 1000, NULL, 0, &ev, &m, &err),
        0);
    assert_int_equal(m, n);
    for (size_t i = 0; i < m; i++)
        assert_int_equal(ev[i].seq, all[i]);
    mr_event_list_free(ev, m);
}

static void expired_lease_offered_again(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 3; i++)
        deliver(f->st, "acme", i); /* 9 events */
    struct mr_error err = {0};
    struct mr_event_lease a, b, a2, c;
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 4, 1000, 100, &a, &err), 0);
    assert_int_equal(a.n, 4);
    assert_int_equal(a.expires_at, 1100);
    /* A second claimer gets the next batch, not the same one. */
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 4, 1050, 1000, &b, &err), 0);
    assert_int_equal(b.n, 4);
    assert_true(b.events[0].seq > a.cursor);
    assert_int_equal(b.after, a.cursor);
    /* A's lease runs out: its batch comes back whole, under a new lease,
     * before the one event left. */
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 1, 1200, 1000, &a2, &err), 0);
    assert_int_equal(a2.n, 4);
    assert_int_equal(a2.cursor, a.cursor);
    assert_true(a2.lease_id != a.lease_id);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(a2.events[i].seq, a.events[i].seq);
    /* The one that lost it cannot acknowledge it. */
    assert_int_equal(mr_store_ack_events(f->st, "acme", "g", a.cursor,
                                         a.lease_id, 1300, &err),
                     MR_ECONFLICT);
    /* Then the last event. */
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 10, 1200, 1000, &c, &err), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.after, b.cursor);
    struct mr_event_lease none;
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 10, 1200, 1000, &none, &err),
        MR_ENOTFOUND);
    mr_event_lease_clear(&a);
    mr_event_lease_clear(&b);
    mr_event_lease_clear(&a2);
    mr_event_lease_clear(&c);
}

static void ack_rules(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 2; i++)
        deliver(f->st, "acme", i); /* 6 events */
    struct mr_error err = {0};
    struct mr_event_lease a, b, a2;
    assert_int_equal(mr_store_ack_events(f->st, "acme", "g", 5, 0, 1000, &err),
                     MR_ECONFLICT); /* nothing leased yet */
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 3, 1000, 100, &a, &err), 0);
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 3, 1000, 1000, &b, &err), 0);
    /* Not a batch's cursor, another group, another tenant. */
    assert_int_equal(
        mr_store_ack_events(f->st, "acme", "g", a.cursor - 1, 0, 1010, &err),
        MR_ECONFLICT);
    assert_int_equal(
        mr_store_ack_events(f->st, "acme", "h", a.cursor, 0, 1010, &err),
        MR_ECONFLICT);
    assert_int_equal(
        mr_store_ack_events(f->st, "globex", "g", a.cursor, 0, 1010, &err),
        MR_ECONFLICT);
    /* Out of order: B first; the watermark waits for A. */
    assert_int_equal(mr_store_ack_events(f->st, "acme", "g", b.cursor,
                                         b.lease_id, 1010, &err),
                     0);
    assert_int_equal(
        mr_store_ack_events(f->st, "acme", "g", b.cursor, 0, 1020, &err),
        0); /* repeated: idempotent */
    /* A past its lease: refused, offered again. */
    assert_int_equal(
        mr_store_ack_events(f->st, "acme", "g", a.cursor, 0, 1200, &err),
        MR_ECONFLICT);
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 3, 1200, 1000, &a2, &err), 0);
    assert_int_equal(a2.cursor, a.cursor);
    /* A wrong lease id is refused; the holder's ack folds A and B. */
    assert_int_equal(mr_store_ack_events(f->st, "acme", "g", a2.cursor,
                                         a2.lease_id + 1000, 1210, &err),
                     MR_ECONFLICT);
    assert_int_equal(mr_store_ack_events(f->st, "acme", "g", a2.cursor,
                                         a2.lease_id, 1210, &err),
                     0);
    /* Folded into the watermark: repeats are still fine. */
    assert_int_equal(
        mr_store_ack_events(f->st, "acme", "g", a2.cursor, 0, 1220, &err), 0);
    assert_int_equal(mr_store_ack_events(f->st, "acme", "g", b.cursor,
                                         b.lease_id, 1220, &err),
                     0);
    struct mr_event_lease none;
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 3, 5000, 1000, &none, &err),
        MR_ENOTFOUND);
    /* New events go to the group after its watermark. */
    deliver(f->st, "acme", 7);
    struct mr_event_lease d;
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 10, 5000, 1000, &d, &err), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.after, b.cursor);
    /* Bad input. */
    assert_int_equal(mr_store_claim_events(f->st, "acme", "bad name", 3, 5000,
                                           1, &none, &err),
                     MR_EINVAL);
    assert_int_equal(
        mr_store_claim_events(f->st, "acme", "g", 0, 5000, 1, &none, &err),
        MR_EINVAL);
    assert_int_equal(mr_store_ack_events(f->st, "acme", "g", 0, 0, 5000, &err),
                     MR_EINVAL);
    assert_false(mr_store_consumer_name_valid(""));
    assert_false(mr_store_consumer_name_valid("a/b"));
    assert_true(mr_store_consumer_name_valid("billing-sync_1.v2"));
    mr_event_lease_clear(&a);
    mr_event_lease_clear(&b);
    mr_event_lease_clear(&a2);
    mr_event_lease_clear(&d);
}

/* The live stream's primitives: the tenant's head, and the commit
 * generation that wakes a waiter only when a commit happened. */
struct waiter {
    struct mr_store *st;
    uint64_t seen, got;
};

static void *wait_main(void *arg)
{
    struct waiter *w = arg;
    w->got = mr_store_commit_wait(w->st, w->seen, 10000);
    return NULL;
}

static void head_and_commit_wait(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t head = -1;
    assert_int_equal(mr_store_events_head(f->st, "acme", &head, &err), 0);
    assert_int_equal(head, 0);

    uint64_t g0 = mr_store_commit_gen(f->st);
    /* Nothing committed: the wait times out with the same generation. */
    assert_true(mr_store_commit_wait(f->st, g0, 50) == g0);
    /* A waiter is woken by the commit, well before its 10 s timeout. */
    struct waiter w = {f->st, g0, g0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
    deliver(f->st, "acme", 1);
    pthread_join(t, NULL);
    assert_true(w.got > g0);
    assert_true(mr_store_commit_gen(f->st) >= w.got);
    /* A generation already past is returned at once. */
    assert_true(mr_store_commit_wait(f->st, g0, 10000) > g0);

    struct mr_event_rec *ev = NULL;
    size_t n = 0;
    assert_int_equal(
        mr_store_list_events(f->st, "acme", 0, 100, NULL, 0, &ev, &n, &err),
        0);
    assert_true(n == 3);
    assert_int_equal(mr_store_events_head(f->st, "acme", &head, &err), 0);
    assert_int_equal(head, ev[n - 1].seq);
    mr_event_list_free(ev, n);
    /* Another tenant's head is its own. */
    assert_int_equal(mr_store_events_head(f->st, "globex", &head, &err), 0);
    assert_int_equal(head, 0);
    assert_int_equal(mr_store_events_head(f->st, NULL, &head, &err),
                     MR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(list_filter_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(two_claimers_disjoint, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_lease_offered_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ack_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(head_and_commit_wait, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
