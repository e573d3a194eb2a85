/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_scan.c - the antivirus queue in the store (src/store/scan.c):
 * only attachments with bytes are pending, due ones come out oldest first
 * and respect their retry time, a verdict is recorded once with its
 * attachment.scanned event (infected also blocks), a second verdict for
 * the same attachment writes nothing, and a known verdict is found by
 * tenant and sha256 only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "store/store.h"

#include "store_fixture.h"

static int setup(void **state)
{
    return store_fx_setup(state, "storescan");
}
static int teardown(void **state)
{
    return store_fx_teardown(state);
}

static const char A[] =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char B[] =
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static int64_t deliver(struct mr_store *st, const char *tenant,
                       const char *msgid)
{
    const struct mr_attachment_rec atts[] = {
        {.filename = "eicar.txt", .size = 68, .sha256 = A, .scan = "pending"},
        {.filename = "notes.txt", .size = 10, .sha256 = B, .scan = "pending"},
        /* No bytes: never pending, whatever the caller says. */
        {.filename = "huge.iso",
         .size = 1 << 30,
         .sha256 = A,
         .truncated = true,
         .scan = "pending"},
        {.filename = "provider.pdf", .size = 5, .scan = "pending"},
    };
    struct mr_message_rec m = {
        .tenant = tenant,
        .channel = "smtp",
        .message_id = msgid,
        .subject = msgid,
        .from_email = "alice@example.org",
        .event_json = "{\"type\":\"email.received\"}",
        .raw_sha256 = "ff00",
        .received_at = 5000,
        .attachments = atts,
        .nattachments = 4,
    };
    struct mr_deliver_result res;
    struct mr_error err = {0};
    assert_int_equal(mr_store_deliver_message(st, 0, NULL, &m, &res, &err), 0);
    return res.ticket_id;
}

static void only_bytes_are_pending(void **state)
{
    struct fx *f = *state;
    deliver(f->st, "acme", "m1@x");
    struct mr_scan_item *it = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_scan_due(f->st, 10000, 16, &it, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(it[0].filename, "eicar.txt");
    assert_string_equal(it[0].sha256, A);
    assert_string_equal(it[0].tenant, "acme");
    assert_string_equal(it[0].message_id, "m1@x");
    assert_true(it[0].ticket_id > 0);
    assert_string_equal(it[1].filename, "notes.txt");
    /* max is respected */
    mr_scan_item_list_free(it, n);
    assert_int_equal(mr_store_scan_due(f->st, 10000, 1, &it, &n, &err), 0);
    assert_int_equal(n, 1);
    mr_scan_item_list_free(it, n);
    int64_t cnt = 0;
    assert_int_equal(mr_store_scan_pending_count(f->st, &cnt, &err), 0);
    assert_int_equal(cnt, 2);
    assert_int_equal(mr_store_scan_due(f->st, 10000, 0, &it, &n, &err),
                     MR_EINVAL);
}

static void retry_waits_until_due(void **state)
{
    struct fx *f = *state;
    deliver(f->st, "acme", "m1@x");
    struct mr_scan_item *it = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_scan_due(f->st, 10000, 16, &it, &n, &err), 0);
    int64_t id = it[0].id;
    mr_scan_item_list_free(it, n);
    assert_int_equal(mr_store_scan_retry(f->st, id, 1, 50000, "timeout", &err),
                     0);
    assert_int_equal(mr_store_scan_due(f->st, 10000, 16, &it, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_not_equal(it[0].id, id);
    mr_scan_item_list_free(it, n);
    assert_int_equal(mr_store_scan_due(f->st, 50000, 16, &it, &n, &err), 0);
    assert_int_equal(n, 2);
    /* Ordered by due time: the retried one comes last. */
    assert_int_equal(it[1].id, id);
    assert_int_equal(it[1].attempts, 1);
    mr_scan_item_list_free(it, n);
}

static void verdict_once_with_event(void **state)
{
    struct fx *f = *state;
    int64_t ticket = deliver(f->st, "acme", "m1@x");
    struct mr_scan_item *it = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_scan_due(f->st, 10000, 16, &it, &n, &err), 0);
    int64_t bad = it[0].id, good = it[1].id;
    mr_scan_item_list_free(it, n);

    struct mr_scan_verdict v = {
        .id = bad, .scan = "infected", .signature = "Test.EICAR", .now = 20000};
    assert_int_equal(mr_store_scan_result(f->st, &v, &err), 0);
    /* Again: not pending any more, nothing written. */
    assert_int_equal(mr_store_scan_result(f->st, &v, &err), MR_ENOTFOUND);
    struct mr_scan_verdict c = {.id = good, .scan = "clean", .now = 20001};
    assert_int_equal(mr_store_scan_result(f->st, &c, &err), 0);
    struct mr_scan_verdict bogus = {.id = good, .scan = "maybe"};
    assert_int_equal(mr_store_scan_result(f->st, &bogus, &err), MR_EINVAL);
    struct mr_scan_verdict nosig = {.id = good, .scan = "infected"};
    assert_int_equal(mr_store_scan_result(f->st, &nosig, &err), MR_EINVAL);

    struct mr_attachment_view a;
    assert_int_equal(mr_store_get_attachment(f->st, "acme", bad, &a, &err), 0);
    assert_string_equal(a.scan, "infected");
    assert_string_equal(a.scan_signature, "Test.EICAR");
    assert_int_equal(a.scanned_at, 20000);
    assert_true(a.blocked);
    assert_string_equal(a.blocked_reason, "infected: Test.EICAR");
    mr_attachment_view_clear(&a);
    assert_int_equal(mr_store_get_attachment(f->st, "acme", good, &a, &err), 0);
    assert_string_equal(a.scan, "clean");
    assert_null(a.scan_signature);
    assert_false(a.blocked);
    mr_attachment_view_clear(&a);

    const char *types[] = {"attachment.scanned"};
    struct mr_event_rec *ev = NULL;
    assert_int_equal(
        mr_store_list_events(f->st, "acme", 0, 100, types, 1, &ev, &n, &err),
        0);
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].ticket_id, ticket);
    json_error_t jerr;
    json_t *p = json_loads(ev[0].payload, 0, &jerr);
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "attachment_id")),
                     bad);
    assert_int_equal(json_integer_value(json_object_get(p, "ticket_id")),
                     ticket);
    assert_string_equal(json_string_value(json_object_get(p, "scan")),
                        "infected");
    assert_string_equal(json_string_value(json_object_get(p, "signature")),
                        "Test.EICAR");
    assert_string_equal(json_string_value(json_object_get(p, "filename")),
                        "eicar.txt");
    assert_string_equal(json_string_value(json_object_get(p, "sha256")), A);
    assert_string_equal(json_string_value(json_object_get(p, "message_id")),
                        "m1@x");
    json_decref(p);
    p = json_loads(ev[1].payload, 0, &jerr);
    assert_true(json_is_null(json_object_get(p, "signature")));
    json_decref(p);
    mr_event_list_free(ev, n);

    int64_t cnt = 1;
    assert_int_equal(mr_store_scan_pending_count(f->st, &cnt, &err), 0);
    assert_int_equal(cnt, 0);
}

static void known_verdict_is_per_tenant(void **state)
{
    struct fx *f = *state;
    deliver(f->st, "acme", "m1@x");
    struct mr_scan_item *it = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_scan_due(f->st, 10000, 16, &it, &n, &err), 0);
    struct mr_scan_verdict v = {.id = it[0].id,
                                .scan = "infected",
                                .signature = "Test.EICAR",
                                .now = 20000};
    mr_scan_item_list_free(it, n);
    assert_int_equal(mr_store_scan_result(f->st, &v, &err), 0);
    char *scan = NULL, *sig = NULL;
    assert_int_equal(
        mr_store_scan_known(f->st, "acme", A, 15000, &scan, &sig, &err), 0);
    assert_string_equal(scan, "infected");
    assert_string_equal(sig, "Test.EICAR");
    free(scan);
    free(sig);
    /* Too old, another tenant, other bytes (still pending): none. */
    assert_int_equal(
        mr_store_scan_known(f->st, "acme", A, 25000, &scan, &sig, &err),
        MR_ENOTFOUND);
    assert_int_equal(
        mr_store_scan_known(f->st, "globex", A, 0, &scan, &sig, &err),
        MR_ENOTFOUND);
    assert_int_equal(
        mr_store_scan_known(f->st, "acme", B, 0, &scan, &sig, &err),
        MR_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(only_bytes_are_pending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(retry_waits_until_due, setup, teardown),
        cmocka_unit_test_setup_teardown(verdict_once_with_event, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(known_verdict_is_per_tenant, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
