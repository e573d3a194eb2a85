/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_notifications.c - what operators do with the integrations'
 * queue in the store: list it by state page by page (one tenant or all),
 * read one row, redrive a dead row (and nothing else), and count the
 * pending and dead rows for /metrics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "store_fixture.h"

/* Ids of a listing, as "2,5," (none: ""). */
static const char *ids_of(struct mr_store *st, const char *tenant,
                          const char *state, int64_t after, int limit)
{
    static char out[128];
    struct mr_notify_filter flt = {tenant, state, after, limit};
    struct mr_notification_state *v = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_notify_list(st, &flt, &v, &n, &err), 0);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "%lld,",
                                 (long long)v[i].id);
    mr_notification_states_free(v, n);
    return out;
}

static void seed(struct fx *f)
{
    store_fx_exec(f->path,
                  "INSERT INTO notifications (id, tenant, integration, kind,"
                  " ticket_id, message_row, state, attempts, next_attempt_at,"
                  " last_error, external_ref, created_at, updated_at) VALUES"
                  " (1, 'acme', 'chat', 'slack', 7, 70, 'sent', 1, 0, NULL,"
                  "  NULL, 1, 1),"
                  " (2, 'acme', 'gh', 'github', 7, 70, 'dead', 1, 0,"
                  "  'HTTP 401: Bad credentials', NULL, 2, 2),"
                  " (3, 'other', 'gh', 'github', 8, 80, 'dead', 1, 0,"
                  "  'HTTP 401', NULL, 3, 3),"
                  " (4, 'acme', 'chat', NULL, 9, 90, 'pending', 0, 0, NULL,"
                  "  NULL, 4, 4),"
                  " (5, 'acme', 'jira', 'jira', 9, 90, 'dead', 8, 0,"
                  "  'HTTP 503', NULL, 5, 5)");
}

static void lists_by_state_and_tenant(void **state)
{
    struct fx *f = *state;
    seed(f);
    assert_string_equal(ids_of(f->st, "acme", "dead", 0, 1), "2,");
    assert_string_equal(ids_of(f->st, "acme", "dead", 2, 1), "5,");
    assert_string_equal(ids_of(f->st, "acme", "dead", 5, 10), "");
    assert_string_equal(ids_of(f->st, NULL, "dead", 0, 10), "2,3,5,");
    assert_string_equal(ids_of(f->st, "acme", NULL, 0, 10), "1,2,4,5,");
    assert_string_equal(ids_of(f->st, "acme", "pending", 0, 10), "4,");
    assert_string_equal(ids_of(f->st, "nobody", NULL, 0, 10), "");

    struct mr_notification_state *v = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    struct mr_notify_filter bad = {"acme", "failed", 0, 10};
    assert_int_equal(mr_store_notify_list(f->st, &bad, &v, &n, &err),
                     MR_EINVAL);
    bad = (struct mr_notify_filter){"acme", NULL, 0, 0};
    assert_int_equal(mr_store_notify_list(f->st, &bad, &v, &n, &err),
                     MR_EINVAL);

    struct mr_notification_state x;
    assert_int_equal(mr_store_notify_get(f->st, "acme", 2, &x, &err), 0);
    assert_string_equal(x.tenant, "acme");
    assert_string_equal(x.integration, "gh");
    assert_string_equal(x.kind, "github");
    assert_string_equal(x.state, "dead");
    assert_string_equal(x.last_error, "HTTP 401: Bad credentials");
    assert_int_equal(x.ticket_id, 7);
    assert_int_equal(x.message_row, 70);
    mr_notification_state_clear(&x);
    assert_int_equal(mr_store_notify_get(f->st, "acme", 3, &x, &err),
                     MR_ENOTFOUND);

    struct mr_store_stats stats;
    assert_int_equal(mr_store_stats(f->st, &stats, &err), 0);
    assert_int_equal(stats.notify_pending, 1);
    assert_int_equal(stats.notify_dead, 3);
}

static void redrives_only_a_dead_one(void **state)
{
    struct fx *f = *state;
    seed(f);
    struct mr_error err = {0};
    assert_int_equal(mr_store_notify_redrive(f->st, "acme", 3, NULL, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_notify_redrive(f->st, "acme", 1, NULL, &err),
                     MR_ECONFLICT);
    assert_non_null(strstr(err.msg, "is sent"));
    assert_int_equal(mr_store_notify_redrive(f->st, "acme", 4, NULL, &err),
                     MR_ECONFLICT);

    /* The redrive hands back the row as it left it, the same as a read. */
    struct mr_notification_state x;
    assert_int_equal(mr_store_notify_redrive(f->st, "acme", 2, &x, &err), 0);
    assert_int_equal(x.id, 2);
    assert_string_equal(x.state, "pending");
    assert_int_equal(x.attempts, 0);
    mr_notification_state_clear(&x);
    assert_int_equal(mr_store_notify_get(f->st, "acme", 2, &x, &err), 0);
    assert_string_equal(x.state, "pending");
    assert_int_equal(x.attempts, 0);
    assert_true(x.next_attempt_at > 5);
    assert_int_equal(x.updated_at, x.next_attempt_at);
    /* The reason stays until the next attempt says otherwise. */
    assert_string_equal(x.last_error, "HTTP 401: Bad credentials");
    mr_notification_state_clear(&x);
    assert_int_equal(mr_store_notify_redrive(f->st, "acme", 2, NULL, &err),
                     MR_ECONFLICT);
    assert_int_equal(mr_store_notify_redrive(f->st, NULL, 3, NULL, &err), 0);

    struct mr_store_stats stats;
    assert_int_equal(mr_store_stats(f->st, &stats, &err), 0);
    assert_int_equal(stats.notify_pending, 3);
    assert_int_equal(stats.notify_dead, 1);
}

static int setup(void **state)
{
    return store_fx_setup(state, "notifications");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(lists_by_state_and_tenant, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(redrives_only_a_dead_one, setup,
                                        store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
