/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_scan.c - the antivirus queue in the store (src/store/scan.c):
 * only attachments with bytes are pending, due ones come out oldest first
 * and respect their retry time, a verdict is recorded once with its
 * attachment.scanned event (infected also blocks), a second verdict for
 * the same attachment writes nothing, and a known verdict is found by
 * tenant and sha256 only.
 *
 * Rescans: any verdict goes back to pending with the one it had kept
 * (twice in a row keeps the first), a clean file stays unblocked and an
 * infected one blocked while it waits (an error verdict changes neither),
 * a clean verdict lifts an infection's block but never the policy's, a
 * verdict from before the latest rescan is refused, the events say
 * rescan and previous, and the bulk form matches by state, tenant and
 * time, honours dry runs and limits, and writes in batches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "store/store-private.h"
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

/* ---- rescans ------------------------------------------------------------ */

/* The pending attachment of msgid named filename. */
static int64_t pending_id(struct mr_store *st, const char *msgid,
                          const char *filename, int64_t *rescan_at,
                          char **previous)
{
    struct mr_scan_item *it = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_scan_due(st, INT64_MAX / 2, 1000, &it, &n, &err),
                     0);
    int64_t id = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(it[i].message_id, msgid) != 0 ||
            strcmp(it[i].filename, filename) != 0)
            continue;
        id = it[i].id;
        if (rescan_at)
            *rescan_at = it[i].rescan_at;
        if (previous)
            *previous = it[i].previous ? strdup(it[i].previous) : NULL;
    }
    mr_scan_item_list_free(it, n);
    assert_true(id > 0);
    return id;
}

static int verdict(struct mr_store *st, int64_t id, const char *scan,
                   const char *sig, int64_t now, int64_t rescan_at,
                   const char *policy)
{
    struct mr_scan_verdict v = {.id = id,
                                .scan = scan,
                                .signature = sig,
                                .error = "clamd: overloaded",
                                .now = now,
                                .rescan_at = rescan_at,
                                .policy_reason = policy};
    struct mr_error err = {0};
    return mr_store_scan_result(st, &v, &err);
}

/* scan, previous, blocked and reason of one attachment, as
 * "scan|previous|0or1|reason" with "-" for NULL. */
static void state_of(struct mr_store *st, const char *tenant, int64_t id,
                     char *out, size_t size)
{
    struct mr_attachment_view a;
    struct mr_error err = {0};
    assert_int_equal(mr_store_get_attachment(st, tenant, id, &a, &err), 0);
    snprintf(out, size, "%s|%s|%d|%s", a.scan ? a.scan : "-",
             a.scan_previous ? a.scan_previous : "-", a.blocked ? 1 : 0,
             a.blocked_reason ? a.blocked_reason : "-");
    mr_attachment_view_clear(&a);
}

#define assert_state(st, id, want)                                             \
    do {                                                                       \
        char got_[256];                                                        \
        state_of(st, "acme", id, got_, sizeof got_);                           \
        assert_string_equal(got_, want);                                       \
    } while (0)

static int rescan(struct mr_store *st, const char *tenant, int64_t id,
                  int64_t now)
{
    struct mr_error err = {0};
    return mr_store_scan_rescan(st, tenant, id, now, NULL, &err);
}

/* The attachment.scanned payloads of acme, oldest first (caller decrefs). */
static json_t *scanned_payloads(struct mr_store *st)
{
    const char *types[] = {"attachment.scanned"};
    struct mr_event_rec *ev = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(
        mr_store_list_events(st, "acme", 0, 100, types, 1, &ev, &n, &err), 0);
    json_t *all = json_array();
    for (size_t i = 0; i < n; i++) {
        json_error_t jerr;
        json_t *p = json_loads(ev[i].payload, 0, &jerr);
        assert_non_null(p);
        json_array_append_new(all, p);
    }
    mr_event_list_free(ev, n);
    return all;
}

static void assert_rescan_fields(json_t *p, bool rescan, const char *previous)
{
    json_t *r = json_object_get(p, "rescan");
    assert_true(json_is_boolean(r));
    assert_int_equal(json_is_true(r), rescan);
    json_t *prev = json_object_get(p, "previous");
    if (previous == NULL)
        assert_true(json_is_null(prev));
    else
        assert_string_equal(json_string_value(prev), previous);
}

static void rescan_keeps_what_is_served(void **state)
{
    struct fx *f = *state;
    deliver(f->st, "acme", "m1@x");
    int64_t bad = pending_id(f->st, "m1@x", "eicar.txt", NULL, NULL);
    int64_t good = pending_id(f->st, "m1@x", "notes.txt", NULL, NULL);
    assert_int_equal(verdict(f->st, bad, "infected", "Test.EICAR", 20000, 0,
                             NULL),
                     0);
    assert_int_equal(verdict(f->st, good, "clean", NULL, 20001, 0, NULL), 0);

    /* Back to pending: the clean one stays served, the infected one
     * blocked, each with the verdict it had. */
    assert_int_equal(rescan(f->st, "acme", good, 30000), 0);
    /* The rescan hands back the attachment as it left it. */
    struct mr_attachment_view av;
    struct mr_error aerr = {0};
    assert_int_equal(
        mr_store_scan_rescan(f->st, "acme", bad, 30000, &av, &aerr), 0);
    assert_int_equal(av.id, bad);
    assert_string_equal(av.scan, "pending");
    assert_string_equal(av.scan_previous, "infected");
    assert_true(av.blocked);
    mr_attachment_view_clear(&av);
    assert_state(f->st, good, "pending|clean|0|-");
    assert_state(f->st, bad, "pending|infected|1|infected: Test.EICAR");
    int64_t at = 0;
    char *prev = NULL;
    pending_id(f->st, "m1@x", "eicar.txt", &at, &prev);
    assert_int_equal(at, 30000);
    assert_string_equal(prev, "infected");
    free(prev);
    int64_t cnt = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_scan_pending_count(f->st, &cnt, &err), 0);
    assert_int_equal(cnt, 2);

    /* A verdict that is not the rescan's (no rescan_at) is refused. */
    assert_int_equal(verdict(f->st, good, "clean", NULL, 40000, 0, NULL),
                     MR_ENOTFOUND);
    assert_state(f->st, good, "pending|clean|0|-");

    /* Yesterday's malware is clean today: the infection's block goes. */
    assert_int_equal(verdict(f->st, bad, "clean", NULL, 40000, 30000, NULL),
                     0);
    assert_state(f->st, bad, "clean|-|0|-");
    /* Yesterday's clean file is malware today: blocked. */
    assert_int_equal(
        verdict(f->st, good, "infected", "Test.New", 40001, 30000, NULL), 0);
    assert_state(f->st, good, "infected|-|1|infected: Test.New");

    json_t *all = scanned_payloads(f->st);
    assert_int_equal(json_array_size(all), 4);
    assert_rescan_fields(json_array_get(all, 0), false, NULL);
    assert_rescan_fields(json_array_get(all, 1), false, NULL);
    json_t *p = json_array_get(all, 2);
    assert_int_equal(json_integer_value(json_object_get(p, "attachment_id")),
                     bad);
    assert_string_equal(json_string_value(json_object_get(p, "scan")),
                        "clean");
    assert_rescan_fields(p, true, "infected");
    p = json_array_get(all, 3);
    assert_int_equal(json_integer_value(json_object_get(p, "attachment_id")),
                     good);
    assert_string_equal(json_string_value(json_object_get(p, "signature")),
                        "Test.New");
    assert_rescan_fields(p, true, "clean");
    json_decref(all);
    assert_int_equal(mr_store_scan_pending_count(f->st, &cnt, &err), 0);
    assert_int_equal(cnt, 0);
}

static void rescan_again_and_errors(void **state)
{
    struct fx *f = *state;
    deliver(f->st, "acme", "m1@x");
    int64_t bad = pending_id(f->st, "m1@x", "eicar.txt", NULL, NULL);
    int64_t good = pending_id(f->st, "m1@x", "notes.txt", NULL, NULL);
    /* A rescan of a first scan still pending: nothing to keep. */
    assert_int_equal(rescan(f->st, "acme", good, 15000), 0);
    assert_state(f->st, good, "pending|-|0|-");
    assert_int_equal(verdict(f->st, good, "clean", NULL, 20000, 15000, NULL),
                     0);
    assert_int_equal(verdict(f->st, bad, "infected", "Test.EICAR", 20000, 0,
                             NULL),
                     0);

    /* Twice: the first verdict is kept, the latest request counts. */
    assert_int_equal(rescan(f->st, "acme", good, 30000), 0);
    assert_int_equal(rescan(f->st, "acme", good, 31000), 0);
    assert_state(f->st, good, "pending|clean|0|-");
    assert_int_equal(verdict(f->st, good, "clean", NULL, 40000, 30000, NULL),
                     MR_ENOTFOUND);
    assert_int_equal(verdict(f->st, good, "clean", NULL, 40000, 31000, NULL),
                     0);
    assert_state(f->st, good, "clean|-|0|-");

    /* An error verdict lifts no block: found infected stays blocked. */
    assert_int_equal(rescan(f->st, "acme", bad, 50000), 0);
    assert_int_equal(verdict(f->st, bad, "error", NULL, 51000, 50000, NULL),
                     0);
    assert_state(f->st, bad, "error|-|1|infected: Test.EICAR");
    assert_int_equal(rescan(f->st, "acme", bad, 52000), 0);
    assert_state(f->st, bad, "pending|error|1|infected: Test.EICAR");
    assert_int_equal(verdict(f->st, bad, "clean", NULL, 53000, 52000, NULL),
                     0);
    assert_state(f->st, bad, "clean|-|0|-");
    /* clean -> error: the block is untouched (none). */
    assert_int_equal(rescan(f->st, "acme", good, 60000), 0);
    assert_int_equal(verdict(f->st, good, "error", NULL, 61000, 60000, NULL),
                     0);
    assert_state(f->st, good, "error|-|0|-");

    /* Nothing to scan; not this tenant's; no such attachment. */
    struct mr_error err = {0};
    struct mr_attachment_view a;
    for (int64_t id = good + 1; id <= good + 2; id++) {
        assert_int_equal(mr_store_get_attachment(f->st, "acme", id, &a, &err),
                         0);
        assert_true(a.truncated || a.sha256 == NULL);
        mr_attachment_view_clear(&a);
        assert_int_equal(rescan(f->st, "acme", id, 70000), MR_ECONFLICT);
        assert_int_equal(mr_store_get_attachment(f->st, "acme", id, &a, &err),
                         0);
        assert_null(a.scan);
        mr_attachment_view_clear(&a);
    }
    assert_int_equal(rescan(f->st, "globex", good, 70000), MR_ENOTFOUND);
    assert_int_equal(rescan(f->st, "acme", good + 1000, 70000), MR_ENOTFOUND);
    assert_state(f->st, good, "error|-|0|-");
}

static void policy_block_is_never_lifted(void **state)
{
    struct fx *f = *state;
    const struct mr_attachment_rec atts[] = {
        {.filename = "invoice.pdf.exe",
         .size = 68,
         .sha256 = A,
         .blocked = true,
         .blocked_reason = "double_extension: .pdf.exe",
         .scan = "pending"},
    };
    struct mr_message_rec m = {
        .tenant = "acme",
        .channel = "smtp",
        .message_id = "p1@x",
        .subject = "invoice",
        .from_email = "alice@example.org",
        .event_json = "{\"type\":\"email.received\"}",
        .raw_sha256 = "ff00",
        .received_at = 5000,
        .attachments = atts,
        .nattachments = 1,
    };
    struct mr_deliver_result res;
    struct mr_error err = {0};
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &res, &err),
                     0);
    int64_t id = pending_id(f->st, "p1@x", "invoice.pdf.exe", NULL, NULL);
    const char *policy = "double_extension: .pdf.exe";
    /* Clean, even with a caller that says the policy would not block:
     * the block is the policy's, not an infection's. */
    assert_int_equal(verdict(f->st, id, "clean", NULL, 20000, 0, NULL), 0);
    assert_state(f->st, id, "clean|-|1|double_extension: .pdf.exe");
    assert_int_equal(rescan(f->st, "acme", id, 30000), 0);
    assert_state(f->st, id, "pending|clean|1|double_extension: .pdf.exe");
    assert_int_equal(verdict(f->st, id, "clean", NULL, 31000, 30000, NULL),
                     0);
    assert_state(f->st, id, "clean|-|1|double_extension: .pdf.exe");

    /* Infected: the infection's reason replaces the policy's... */
    assert_int_equal(rescan(f->st, "acme", id, 40000), 0);
    assert_int_equal(
        verdict(f->st, id, "infected", "Test.EICAR", 41000, 40000, policy), 0);
    assert_state(f->st, id, "infected|-|1|infected: Test.EICAR");
    /* ...and a later clean verdict gives the policy's back, blocked. */
    assert_int_equal(rescan(f->st, "acme", id, 50000), 0);
    assert_int_equal(verdict(f->st, id, "clean", NULL, 51000, 50000, policy),
                     0);
    assert_state(f->st, id, "clean|-|1|double_extension: .pdf.exe");
}

/* One message of tenant received at `at` with a clean, an infected, an
 * error and a never-scanned attachment, all with bytes. */
static void deliver_four(struct mr_store *st, const char *tenant,
                         const char *msgid, int64_t at)
{
    const struct mr_attachment_rec atts[] = {
        {.filename = "clean.txt", .size = 1, .sha256 = A, .scan = "pending"},
        {.filename = "bad.txt", .size = 1, .sha256 = B, .scan = "pending"},
        {.filename = "err.bin", .size = 1, .sha256 = A, .scan = "pending"},
        {.filename = "old.txt", .size = 1, .sha256 = B},
        {.filename = "cut.iso", .size = 9, .truncated = true},
    };
    struct mr_message_rec m = {
        .tenant = tenant,
        .channel = "smtp",
        .message_id = msgid,
        .subject = msgid,
        .from_email = "alice@example.org",
        .event_json = "{\"type\":\"email.received\"}",
        .raw_sha256 = "ff00",
        .received_at = at,
        .attachments = atts,
        .nattachments = 5,
    };
    struct mr_deliver_result res;
    struct mr_error err = {0};
    assert_int_equal(mr_store_deliver_message(st, 0, NULL, &m, &res, &err), 0);
    assert_int_equal(
        verdict(st, pending_id(st, msgid, "clean.txt", NULL, NULL), "clean",
                NULL, at + 1, 0, NULL),
        0);
    assert_int_equal(
        verdict(st, pending_id(st, msgid, "bad.txt", NULL, NULL), "infected",
                "Test.X", at + 1, 0, NULL),
        0);
    assert_int_equal(
        verdict(st, pending_id(st, msgid, "err.bin", NULL, NULL), "error",
                NULL, at + 1, 0, NULL),
        0);
}

static int64_t many(struct mr_store *st, const char *tenant,
                    enum mr_scan_rescan_state state, int64_t after,
                    int64_t limit, bool dry, int batch)
{
    struct mr_scan_rescan_filter f = {.tenant = tenant,
                                      .state = state,
                                      .received_after = after,
                                      .limit = limit,
                                      .dry_run = dry,
                                      .batch = batch};
    int64_t n = -1;
    struct mr_error err = {0};
    assert_int_equal(mr_store_scan_rescan_many(st, &f, 90000, &n, &err), 0);
    return n;
}

static int64_t pending_now(struct mr_store *st)
{
    int64_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_scan_pending_count(st, &n, &err), 0);
    return n;
}

static void bulk_rescan_filters_and_batches(void **state)
{
    struct fx *f = *state;
    deliver_four(f->st, "acme", "d1@x", 10000);
    deliver_four(f->st, "acme", "d2@x", 20000);
    deliver_four(f->st, "acme", "d3@x", 30000);
    deliver_four(f->st, "globex", "g1@x", 20000);
    assert_int_equal(pending_now(f->st), 0);

    /* A dry run counts and changes nothing. */
    assert_int_equal(many(f->st, NULL, MR_SCAN_RESCAN_CLEAN, 0, 0, true, 0), 4);
    assert_int_equal(many(f->st, "acme", MR_SCAN_RESCAN_ALL, 0, 0, true, 0), 12);
    assert_int_equal(pending_now(f->st), 0);

    /* By tenant and time: acme's clean ones received from 20000. */
    assert_int_equal(
        many(f->st, "acme", MR_SCAN_RESCAN_CLEAN, 20000, 0, false, 0), 2);
    assert_int_equal(pending_now(f->st), 2);
    int64_t at = 0;
    char *prev = NULL;
    pending_id(f->st, "d3@x", "clean.txt", &at, &prev);
    assert_int_equal(at, 90000);
    assert_string_equal(prev, "clean");
    free(prev);
    /* Queued ones match no more. */
    assert_int_equal(
        many(f->st, "acme", MR_SCAN_RESCAN_CLEAN, 20000, 0, false, 0), 0);

    /* Every tenant's errors, one row per transaction. */
    uint64_t commits = mr_store_debug_commits(f->st);
    assert_int_equal(many(f->st, NULL, MR_SCAN_RESCAN_ERROR, 0, 0, false, 1),
                     4);
    assert_int_equal(mr_store_debug_commits(f->st) - commits, 4);
    assert_int_equal(pending_now(f->st), 6);

    /* A limit, in batches of two: three rows, two transactions. */
    commits = mr_store_debug_commits(f->st);
    assert_int_equal(
        many(f->st, "acme", MR_SCAN_RESCAN_INFECTED, 0, 3, false, 2), 3);
    assert_int_equal(mr_store_debug_commits(f->st) - commits, 2);
    assert_int_equal(many(f->st, "acme", MR_SCAN_RESCAN_INFECTED, 0, 0, true,
                          0),
                     0);
    /* The infected stay blocked while they wait. */
    assert_int_equal(many(f->st, "globex", MR_SCAN_RESCAN_INFECTED, 0, 0,
                          false, 0),
                     1);
    /* all: what is left, never-scanned included, never truncated ones. */
    assert_int_equal(pending_now(f->st), 10);
    assert_int_equal(many(f->st, NULL, MR_SCAN_RESCAN_ALL, 0, 0, false, 0), 6);
    assert_int_equal(pending_now(f->st), 16);
    pending_id(f->st, "g1@x", "old.txt", &at, &prev);
    assert_null(prev);
    assert_int_equal(at, 90000);
    assert_int_equal(many(f->st, NULL, MR_SCAN_RESCAN_ALL, 0, 0, false, 0), 0);

    struct mr_scan_rescan_filter bad = {.state = 9};
    int64_t n;
    struct mr_error err = {0};
    assert_int_equal(mr_store_scan_rescan_many(f->st, &bad, 1, &n, &err),
                     MR_EINVAL);
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
        cmocka_unit_test_setup_teardown(rescan_keeps_what_is_served, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rescan_again_and_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(policy_block_is_never_lifted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(bulk_rescan_filters_and_batches, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
