/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_attachments.c - migration 4 and the attachment safety
 * columns: stored and read back through the ticket and attachment views,
 * a truncated attachment never names a blob, the inline image lookup
 * (tenant, sha256, not blocked, not truncated, an image), tenant
 * isolation, and a version 3 database with attachment rows upgraded in
 * place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

#include "store_fixture.h"

static int setup(void **state) { return store_fx_setup(state, "storeatt"); }
static int teardown(void **state) { return store_fx_teardown(state); }

/* The first column of the first row as text ("" for NULL). */
static void raw_text(const char *path, const char *sql, char *out, size_t size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    out[0] = '\0';
    /* EXPLAIN QUERY PLAN rows: the detail is the last column; join them. */
    size_t len = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        int col = sqlite3_column_count(s) - 1;
        const unsigned char *t = sqlite3_column_text(s, col);
        int n = snprintf(out + len, size - len, "%s%s", len ? "|" : "",
                         t ? (const char *)t : "");
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static const char PNG[] =
    "1111111111111111111111111111111111111111111111111111111111111111";
static const char EXE[] =
    "2222222222222222222222222222222222222222222222222222222222222222";
static const char HTML[] =
    "3333333333333333333333333333333333333333333333333333333333333333";
static const char BIG[] =
    "4444444444444444444444444444444444444444444444444444444444444444";

static int64_t deliver(struct mr_store *st, const char *tenant,
                       const char *msgid, const struct mr_attachment_rec *a,
                       size_t n)
{
    struct mr_message_rec m = {
        .tenant = tenant,
        .channel = "smtp",
        .message_id = msgid,
        .subject = msgid,
        .from_email = "alice@example.org",
        .event_json = "{\"type\":\"email.received\"}",
        .raw_sha256 = "ff00",
        .received_at = 5000,
        .attachments = a,
        .nattachments = n,
    };
    struct mr_deliver_result res;
    struct mr_error err = {0};
    int rc = mr_store_deliver_message(st, 0, NULL, &m, &res, &err);
    if (rc != 0)
        print_error("deliver: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return res.ticket_id;
}

static const struct mr_attachment_rec atts[] = {
    {.filename = "logo.png",
     .safe_filename = "logo.png",
     .content_type = "image/png",
     .disposition = "inline",
     .content_id = "logo@x",
     .size = 99,
     .sha256 = PNG,
     .detected_type = "image/png"},
    {.filename = "invoice.pdf.exe",
     .safe_filename = "invoice.pdf.exe",
     .content_type = "application/pdf",
     .disposition = "attachment",
     .size = 512,
     .sha256 = EXE,
     .detected_type = "application/x-dosexec",
     .type_mismatch = true,
     .blocked = true,
     .blocked_reason = "detected_type: application/x-dosexec"},
    {.filename = "page.png",
     .safe_filename = "page.png",
     .content_type = "image/png",
     .disposition = "inline",
     .size = 40,
     .sha256 = HTML,
     .detected_type = "text/html",
     .type_mismatch = true,
     .blocked = true,
     .blocked_reason = "detected_type: text/html"},
    /* The caller's sha256 is dropped: no blob was kept. */
    {.filename = "huge.png",
     .safe_filename = "huge.png",
     .content_type = "image/png",
     .disposition = "attachment",
     .size = 30000000,
     .sha256 = BIG,
     .detected_type = "image/png",
     .truncated = true},
    /* A reason without the block is not stored. */
    {.filename = "notes.txt",
     .safe_filename = "notes.txt",
     .content_type = "text/plain",
     .size = 3,
     .sha256 = PNG,
     .detected_type = "text/plain",
     .blocked_reason = "ignored"},
};

static void columns_round_trip(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t tid = deliver(f->st, "acme", "<a1@x>", atts, 5);
    struct mr_ticket_view t;
    assert_int_equal(mr_store_get_ticket(f->st, "acme", tid, &t, &err), 0);
    assert_int_equal(t.nmessages, 1);
    const struct mr_message_view *m = &t.messages[0];
    assert_int_equal(m->nattachments, 5);
    const struct mr_attachment_view *a = m->attachments;
    assert_string_equal(a[0].safe_filename, "logo.png");
    assert_string_equal(a[0].disposition, "inline");
    assert_string_equal(a[0].content_id, "logo@x");
    assert_string_equal(a[0].detected_type, "image/png");
    assert_false(a[0].blocked);
    assert_null(a[0].blocked_reason);
    assert_false(a[0].truncated);
    assert_int_equal(a[0].message_row, m->id);
    assert_true(a[1].blocked);
    assert_true(a[1].type_mismatch);
    assert_string_equal(a[1].blocked_reason,
                        "detected_type: application/x-dosexec");
    assert_string_equal(a[1].sha256, EXE);
    assert_true(a[3].truncated);
    assert_null(a[3].sha256);
    assert_int_equal(a[3].size, 30000000);
    assert_null(a[4].blocked_reason);

    /* One attachment by id, for its tenant only. */
    struct mr_attachment_view one;
    assert_int_equal(
        mr_store_get_attachment(f->st, "acme", a[1].id, &one, &err), 0);
    assert_string_equal(one.filename, "invoice.pdf.exe");
    assert_string_equal(one.content_type, "application/pdf");
    assert_true(one.blocked);
    mr_attachment_view_clear(&one);
    assert_null(one.filename);
    assert_int_equal(
        mr_store_get_attachment(f->st, "globex", a[1].id, &one, &err),
        MR_ENOTFOUND);
    assert_int_equal(mr_store_get_attachment(f->st, "acme", 999999, &one, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_get_attachment(f->st, NULL, 1, &one, &err),
                     MR_EINVAL);
    mr_ticket_view_clear(&t);

    char plan[512];
    raw_text(f->path,
             "EXPLAIN QUERY PLAN SELECT detected_type FROM attachments"
             " WHERE tenant = 'acme' AND sha256 = 'x'",
             plan, sizeof plan);
    assert_non_null(strstr(plan, "attachments_sha256"));
}

static void inline_lookup(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    deliver(f->st, "acme", "<a1@x>", atts, 4);
    char *type = NULL;
    assert_int_equal(mr_store_find_inline(f->st, "acme", PNG, &type, &err), 0);
    assert_string_equal(type, "image/png");
    free(type);
    /* Blocked, not an image, truncated, another tenant's: none. */
    assert_int_equal(mr_store_find_inline(f->st, "acme", EXE, &type, &err),
                     MR_ENOTFOUND);
    assert_null(type);
    assert_int_equal(mr_store_find_inline(f->st, "acme", HTML, &type, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_find_inline(f->st, "acme", BIG, &type, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_find_inline(f->st, "globex", PNG, &type, &err),
                     MR_ENOTFOUND);
    /* The same bytes under another, blocked name elsewhere do not hide
     * the good row. */
    struct mr_attachment_rec bad = atts[0];
    bad.filename = bad.safe_filename = "logo.png.exe";
    bad.blocked = true;
    bad.blocked_reason = "double_extension: .png.exe";
    deliver(f->st, "acme", "<a2@x>", &bad, 1);
    assert_int_equal(mr_store_find_inline(f->st, "acme", PNG, &type, &err), 0);
    free(type);
}

/* A database at version 3 (before attachment safety) with attachment
 * rows: opened as it is, then migrated; old rows get the defaults (not blocked, not truncated, no
 * detected type) and keep their blob keys. */
static void migrate_from_version_3(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    deliver(f->st, "acme", "<old@x>", atts, 1);
    mr_store_close(f->st);
    f->st = NULL;
    /* Back to version 3: what migration 4 adds is taken out again. */
    store_fx_exec(f->path, "DROP INDEX webhook_deliveries_sub_due;"
                      "ALTER TABLE attachments DROP COLUMN scan_previous;"
                      "ALTER TABLE attachments DROP COLUMN scan_rescan_at;"
                      "DROP INDEX attachments_scan_error;"
                      "DROP INDEX attachments_scan_pending;"
                      "ALTER TABLE attachments DROP COLUMN scan_signature;"
                      "ALTER TABLE attachments DROP COLUMN scan_error;"
                      "ALTER TABLE attachments DROP COLUMN scanned_at;"
                      "ALTER TABLE attachments DROP COLUMN scan_attempts;"
                      "ALTER TABLE attachments DROP COLUMN scan_next_at;"
                      "DROP INDEX attachments_sha256;"
                      "ALTER TABLE attachments DROP COLUMN detected_type;"
                      "ALTER TABLE attachments DROP COLUMN type_mismatch;"
                      "ALTER TABLE attachments DROP COLUMN blocked;"
                      "ALTER TABLE attachments DROP COLUMN blocked_reason;"
                      "ALTER TABLE attachments DROP COLUMN truncated;"
                      /* and what the migrations after 4 add */
                      "DROP INDEX IF EXISTS tickets_number;"
                      "CREATE INDEX tickets_number ON tickets (tenant, number);"
                      "ALTER TABLE messages DROP COLUMN html_sanitized;"
                      "ALTER TABLE messages DROP COLUMN sanitizer_version;"
                      "ALTER TABLE messages DROP COLUMN stripped_text;"
                      "DROP TABLE consumer_leases;"
                      "DROP TABLE consumer_groups;"
                      "ALTER TABLE messages DROP COLUMN matched_rules;"
                      "DROP TABLE ignored_messages;"
                      "ALTER TABLE tickets DROP COLUMN fields;"
                      "DROP TABLE webhook_deliveries;"
                      "DROP TABLE webhook_subs;"
                      "ALTER TABLE tickets DROP COLUMN version;"
                      "DROP INDEX tokens_expires;"
                      "ALTER TABLE tokens DROP COLUMN expires_at;"
                      "ALTER TABLE tokens DROP COLUMN parent_id;"
                      "DROP TABLE outbound_mail;"
                      "DROP TABLE auto_ack_senders;"
                      "DROP TABLE notifications;"
                      "ALTER TABLE tickets DROP COLUMN links;"
                      "DELETE FROM schema_version WHERE version >= 4;");
    struct mr_store_options o = {.url = f->url, .allow_old_schema = true};
    assert_int_equal(mr_store_open(&o, &f->st, &err), 0);
    int cur = 0, latest = 0, from = 0, to = 0;
    assert_int_equal(mr_store_schema_version(f->st, &cur, &latest, &err), 0);
    assert_int_equal(cur, 3);
    assert_true(latest >= 4);
    assert_int_equal(mr_store_migrate(f->st, &from, &to, &err), 0);
    assert_int_equal(from, 3);
    assert_int_equal(to, latest);

    char v[256];
    raw_text(f->path,
             "SELECT coalesce(detected_type, 'null') || ',' || type_mismatch"
             " || ',' || blocked || ',' || coalesce(blocked_reason, 'null')"
             " || ',' || truncated || ',' || sha256 FROM attachments",
             v, sizeof v);
    char want[128];
    snprintf(want, sizeof want, "null,0,0,null,0,%s", PNG);
    assert_string_equal(v, want);
    /* And new rows go in with the new columns. */
    deliver(f->st, "acme", "<new@x>", &atts[1], 1);
    raw_text(f->path,
             "SELECT blocked_reason FROM attachments WHERE blocked = 1", v,
             sizeof v);
    assert_string_equal(v, "detected_type: application/x-dosexec");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(columns_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(inline_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate_from_version_3, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
