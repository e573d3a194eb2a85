/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_outbound.c - the outbound mail queue in the store: the
 * delivering transaction queues an acknowledgement only for a message
 * that opens a ticket, re-checks the sender's window itself (so a
 * worker's stale last_ack_at cannot yield a second one), threads a reply
 * to the acknowledgement into its ticket; claims lease rows, results
 * move them; operators list the queue by state and put failed mail back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "store_fixture.h"
#include "util/buf.h"

static int renders;

static int test_render(const void *ctx, int64_t ticket_id, int64_t number,
                       struct mr_buf *out, char *msgid, size_t cap)
{
    (void)ctx;
    renders++;
    snprintf(msgid, cap, "ack.%lld@help.test", (long long)ticket_id);
    mr_buf_printf(out, "Subject: ticket %lld\r\n\r\nhello\r\n",
                  (long long)number);
    return 0;
}

static const struct mr_ack_spec ack = {
    .to = "alice@example.org",
    .mail_from = "",
    .window_ms = 3600 * 1000,
    .render = test_render,
};
static const struct mr_rules_outcome with_ack = {.applied_json = "[]",
                                                 .ack = &ack};

static struct mr_deliver_result deliver(struct mr_store *st, const char *id,
                                        const char *subject,
                                        const char *in_reply_to)
{
    struct mr_message_rec m = {
        .tenant = "acme",
        .channel = "smtp",
        .message_id = id,
        .in_reply_to = in_reply_to,
        .subject = subject,
        .from_email = "alice@example.org",
        .event_json = "{\"type\":\"email.received\"}",
        .raw_sha256 = "ff00",
        .received_at = 5000,
        .rules_new = &with_ack,
        .rules_reply = &with_ack,
    };
    struct mr_deliver_result res;
    struct mr_error err = {0};
    int rc = mr_store_deliver_message(st, 0, NULL, &m, &res, &err);
    if (rc != 0)
        print_error("deliver: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return res;
}

static size_t count_rows(struct mr_store *st)
{
    struct mr_outbound_mail *v = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    struct mr_outbound_filter all = {.tenant = "acme", .limit = 100};
    assert_int_equal(mr_store_outbound_list(st, &all, &v, &n, &err), 0);
    mr_outbound_mail_list_free(v, n);
    return n;
}

static void one_ack_per_sender_per_window(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t last = -1;
    assert_int_equal(mr_store_last_ack(f->st, "acme", "alice@example.org",
                                       &last, &err),
                     0);
    assert_int_equal(last, 0);

    struct mr_deliver_result r1 = deliver(f->st, "m1@x", "Printer", NULL);
    assert_true(r1.new_ticket);
    assert_true(r1.ack_queued);
    assert_int_equal(renders, 1);
    assert_int_equal(mr_store_last_ack(f->st, "acme", "alice@example.org",
                                       &last, &err),
                     0);
    assert_true(last > 0);

    struct mr_outbound_mail *v = NULL;
    size_t n = 0;
    struct mr_outbound_filter all = {.tenant = "acme", .limit = 10};
    assert_int_equal(mr_store_outbound_list(f->st, &all, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].rcpt_to, "alice@example.org");
    assert_string_equal(v[0].mail_from, "");
    assert_string_equal(v[0].state, "pending");
    assert_int_equal(v[0].ticket_id, r1.ticket_id);
    assert_non_null(strstr(v[0].message, "Subject: ticket 1\r\n"));
    mr_outbound_mail_list_free(v, n);

    /* A second new ticket from her inside the window: the transaction
     * refuses it although the caller asked (as a worker that read
     * last_ack_at before the first commit would). */
    struct mr_deliver_result r2 = deliver(f->st, "m2@x", "Scanner", NULL);
    assert_true(r2.new_ticket);
    assert_false(r2.ack_queued);
    assert_true(r2.ack_window);
    assert_int_equal(renders, 1);

    /* A reply never gets one. */
    struct mr_deliver_result r3 = deliver(f->st, "m3@x", "Re: Printer",
                                          "m1@x");
    assert_false(r3.new_ticket);
    assert_false(r3.ack_queued);
    assert_false(r3.ack_window);

    /* A reply to the acknowledgement itself joins its ticket. */
    char ack_id[64];
    snprintf(ack_id, sizeof ack_id, "ack.%lld@help.test",
             (long long)r1.ticket_id);
    struct mr_deliver_result r4 = deliver(f->st, "m4@x", "Re: ticket 1",
                                          ack_id);
    assert_false(r4.new_ticket);
    assert_int_equal(r4.ticket_id, r1.ticket_id);
    assert_int_equal(count_rows(f->st), 1);

    /* Once the window has passed, the next new ticket is acknowledged. */
    store_fx_exec(f->path, "UPDATE auto_ack_senders SET last_ack_at = 1");
    struct mr_deliver_result r5 = deliver(f->st, "m5@x", "Toner", NULL);
    assert_true(r5.ack_queued);
    assert_int_equal(count_rows(f->st), 2);
}

static void claims_lease_and_results_move(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    deliver(f->st, "c1@x", "One", NULL);
    struct mr_outbound_mail *v = NULL;
    size_t n = 0;
    int64_t now = 1LL << 50; /* far after the row was made */
    assert_int_equal(mr_store_outbound_claim(f->st, now, 60000, 8, &v, &n,
                                             &err),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].attempts, 1);
    int64_t id = v[0].id;
    mr_outbound_mail_list_free(v, n);
    /* Leased: nobody else gets it until the lease ends. */
    assert_int_equal(mr_store_outbound_claim(f->st, now + 1000, 60000, 8, &v,
                                             &n, &err),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(mr_store_outbound_claim(f->st, now + 61000, 60000, 8, &v,
                                             &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].attempts, 2);
    mr_outbound_mail_list_free(v, n);
    /* A retry at a time, then sent: never claimed again. */
    assert_int_equal(mr_store_outbound_result(f->st, id, "pending", now + 5,
                                              "451 later", &err),
                     0);
    assert_int_equal(mr_store_outbound_claim(f->st, now + 5, 60000, 8, &v, &n,
                                             &err),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].last_error, "451 later");
    mr_outbound_mail_list_free(v, n);
    assert_int_equal(mr_store_outbound_result(f->st, id, "sent", now, NULL,
                                              &err),
                     0);
    assert_int_equal(mr_store_outbound_claim(f->st, now + (1LL << 40), 60000,
                                             8, &v, &n, &err),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(mr_store_outbound_result(f->st, id, "bogus", now, NULL,
                                              &err),
                     MR_EINVAL);
    assert_int_equal(mr_store_outbound_result(f->st, 999999, "sent", now,
                                              NULL, &err),
                     MR_ENOTFOUND);
}

/* Ids of a listing, as "2,5," (n 0: ""). */
static const char *ids_of(struct mr_store *st, const char *tenant,
                          const char *state, int64_t after, int limit)
{
    static char out[128];
    struct mr_outbound_filter flt = {tenant, state, after, limit};
    struct mr_outbound_mail *v = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_outbound_list(st, &flt, &v, &n, &err), 0);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "%lld,",
                                 (long long)v[i].id);
    mr_outbound_mail_list_free(v, n);
    return out;
}

static void operators_list_and_retry(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    store_fx_exec(f->path,
                  "INSERT INTO outbound_mail (tenant, ticket_id, rcpt_to,"
                  " message, state, attempts, next_attempt_at, last_error,"
                  " created_at, updated_at) VALUES"
                  " ('acme', 1, 'a@x', 'm', 'sent', 1, 0, NULL, 1, 1),"
                  " ('acme', 2, 'b@x', 'm', 'failed', 5, 0, '550 no', 2, 2),"
                  " ('other', 3, 'c@x', 'm', 'failed', 5, 0, '550 no', 3, 3),"
                  " ('acme', 4, 'd@x', 'm', 'pending', 0, 0, NULL, 4, 4),"
                  " ('acme', 5, 'e@x', 'm', 'failed', 1, 0, '550 no', 5, 5)");

    /* Pages of one state, oldest first, for one tenant or all. */
    assert_string_equal(ids_of(f->st, "acme", "failed", 0, 1), "2,");
    assert_string_equal(ids_of(f->st, "acme", "failed", 2, 1), "5,");
    assert_string_equal(ids_of(f->st, "acme", "failed", 5, 1), "");
    assert_string_equal(ids_of(f->st, NULL, "failed", 0, 10), "2,3,5,");
    assert_string_equal(ids_of(f->st, "acme", NULL, 0, 10), "1,2,4,5,");
    assert_string_equal(ids_of(f->st, "acme", NULL, 2, 2), "4,5,");
    struct mr_outbound_filter bad = {"acme", "dead", 0, 10};
    struct mr_outbound_mail *v = NULL;
    size_t n = 0;
    assert_int_equal(mr_store_outbound_list(f->st, &bad, &v, &n, &err),
                     MR_EINVAL);
    bad = (struct mr_outbound_filter){"acme", NULL, 0, 0};
    assert_int_equal(mr_store_outbound_list(f->st, &bad, &v, &n, &err),
                     MR_EINVAL);

    struct mr_store_stats stats;
    assert_int_equal(mr_store_stats(f->st, &stats, &err), 0);
    assert_int_equal(stats.mail_pending, 1);
    assert_int_equal(stats.mail_failed, 3);

    /* Another tenant's row is not there; only a failed row goes back. */
    assert_int_equal(mr_store_outbound_retry(f->st, "acme", 3, NULL, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_outbound_retry(f->st, "acme", 99, NULL, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_outbound_retry(f->st, "acme", 1, NULL, &err),
                     MR_ECONFLICT);
    assert_non_null(strstr(err.msg, "is sent"));
    assert_int_equal(mr_store_outbound_retry(f->st, "acme", 4, NULL, &err),
                     MR_ECONFLICT);
    /* The retry hands back the row as it left it, the same as a read. */
    struct mr_outbound_mail m;
    assert_int_equal(mr_store_outbound_retry(f->st, "acme", 2, &m, &err), 0);
    assert_int_equal(m.id, 2);
    assert_string_equal(m.state, "pending");
    assert_int_equal(m.attempts, 0);
    mr_outbound_mail_clear(&m);
    assert_int_equal(mr_store_outbound_get(f->st, "acme", 2, &m, &err), 0);
    assert_string_equal(m.state, "pending");
    assert_int_equal(m.attempts, 0);
    assert_string_equal(m.last_error, "550 no");
    assert_true(m.next_attempt_at > 5 && m.updated_at == m.next_attempt_at);
    int64_t due = m.next_attempt_at;
    mr_outbound_mail_clear(&m);
    assert_int_equal(mr_store_outbound_get(f->st, "acme", 3, &m, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_outbound_retry(f->st, "acme", 2, NULL, &err),
                     MR_ECONFLICT);

    /* Due now: the sender's next claim takes it, with its whole schedule. */
    assert_int_equal(mr_store_outbound_claim(f->st, due, 60000, 8, &v, &n,
                                             &err),
                     0);
    bool claimed = false;
    for (size_t i = 0; i < n; i++)
        if (v[i].id == 2) {
            claimed = true;
            assert_int_equal(v[i].attempts, 1);
        }
    assert_true(claimed);
    mr_outbound_mail_list_free(v, n);

    /* The CLI's retry takes any tenant's row. */
    assert_int_equal(mr_store_outbound_retry(f->st, NULL, 3, NULL, &err), 0);
    assert_int_equal(mr_store_stats(f->st, &stats, &err), 0);
    assert_int_equal(stats.mail_pending, 3);
    assert_int_equal(stats.mail_failed, 1);
}

static int setup(void **state)
{
    renders = 0;
    return store_fx_setup(state, "outbound");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(one_ack_per_sender_per_window, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(claims_lease_and_results_move, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(operators_list_and_retry, setup,
                                        store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
