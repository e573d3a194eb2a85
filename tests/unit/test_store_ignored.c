/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for ignored mail in the store (docs/rules.md, *Releasing*):
 * the message.ignored event written with the ignored row, a release
 * request (one job, once), and the release delivery: a ticket (new or
 * joined) with the message, its attachments, its events naming the
 * release, the trail's entry, no acknowledgement, the row marked released
 * in the same transaction, and a second run of the same release storing
 * nothing twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"
#include "util/buf.h"

#include "store_fixture.h"

static int setup(void **state)
{
    return store_fx_setup(state, "ignored");
}
static int teardown(void **state)
{
    return store_fx_teardown(state);
}

static int64_t raw_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static struct mr_message_rec message(const char *tenant, const char *msgid)
{
    static const struct mr_attachment_rec atts[2] = {
        {.filename = "report.pdf",
         .safe_filename = "report.pdf",
         .content_type = "application/pdf",
         .disposition = "attachment",
         .size = 1234,
         .sha256 = "aa11"},
        {.filename = "logo.png",
         .safe_filename = "logo.png",
         .content_type = "image/png",
         .disposition = "inline",
         .content_id = "logo@x",
         .size = 99,
         .sha256 = "bb22"},
    };
    return (struct mr_message_rec){
        .tenant = tenant,
        .inbox = "help@example.com",
        .channel = "smtp",
        .message_id = msgid,
        .subject = msgid,
        .from_email = "alice@example.org",
        .from_name = "Alice",
        .text = "It is on fire.",
        .event_json = "{\"type\":\"email.received\"}",
        .raw_sha256 = "ff00",
        .received_at = 5000,
        .date = 4000,
        .attachments = atts,
        .nattachments = 2,
    };
}

static const struct mr_rules_outcome IGNORE = {
    .applied_json = "[{\"name\":\"Drop\",\"decision\":\"ignore\"},"
                    "{\"name\":\"Drop\",\"decision\":\"tag+=news\"},"
                    "{\"name\":\"Also\",\"decision\":\"ignore\"},"
                    "{\"name\":\"Drop\",\"decision\":\"ignore\"}]",
    .matched_json = "[\"Drop\",\"Also\"]",
    .tags_add_json = "[\"news\"]",
    .ignore = true,
};

/* An acknowledgement that must never be rendered (a release sends none). */
static int render_never(const void *ctx, int64_t ticket_id, int64_t number,
                        struct mr_buf *out, char *msgid, size_t msgid_cap)
{
    (void)ctx;
    (void)ticket_id;
    (void)number;
    (void)out;
    (void)msgid;
    (void)msgid_cap;
    fail_msg("a release rendered an acknowledgement");
    return -1;
}

static const struct mr_ack_spec ACK = {.to = "alice@example.org",
                                       .mail_from = "alice@example.org",
                                       .window_ms = 1000,
                                       .render = render_never};

/* Events of one type, in order. */
static size_t events_of(struct mr_store *st, const char *type,
                        struct mr_event_rec **out)
{
    struct mr_error err = {0};
    size_t n = 0;
    const char *types[] = {type};
    assert_int_equal(
        mr_store_list_events(st, "t", 0, 1000, types, 1, out, &n, &err), 0);
    return n;
}

static json_t *payload(const struct mr_event_rec *e)
{
    json_t *p = json_loads(e->payload, 0, NULL);
    assert_non_null(p);
    return p;
}

static int64_t ignore_one(struct fx *f, const char *msgid)
{
    struct mr_error err = {0};
    struct mr_message_rec m = message("t", msgid);
    m.rules_new = &IGNORE;
    m.rules_reply = &IGNORE;
    struct mr_deliver_result r;
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &r, &err), 0);
    assert_true(r.ignored);
    return r.message_row;
}

/* The ignored row is announced in its transaction: ids, sender, subject
 * and the rules whose decision was ignore, each once; no ticket. */
static void ignored_writes_event(void **state)
{
    struct fx *f = *state;
    int64_t row = ignore_one(f, "ev-1@x");
    struct mr_event_rec *ev = NULL;
    size_t n = events_of(f->st, "message.ignored", &ev);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0].ticket_id, 0);
    assert_int_equal(ev[0].message_row, 0);
    json_t *p = payload(&ev[0]);
    assert_int_equal(json_integer_value(json_object_get(p, "ignored_id")), row);
    assert_string_equal(json_string_value(json_object_get(p, "message_id")),
                        "ev-1@x");
    assert_string_equal(json_string_value(json_object_get(p, "from")),
                        "alice@example.org");
    assert_string_equal(json_string_value(json_object_get(p, "subject")),
                        "ev-1@x");
    char *rules = json_dumps(json_object_get(p, "rules"), JSON_COMPACT);
    assert_string_equal(rules, "[\"Drop\",\"Also\"]");
    free(rules);
    json_decref(p);
    mr_event_list_free(ev, n);
    /* A second copy is a duplicate: no second event. */
    struct mr_error err = {0};
    struct mr_message_rec m = message("t", "ev-1@x");
    m.rules_new = &IGNORE;
    struct mr_deliver_result r;
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &r, &err), 0);
    assert_true(r.duplicate);
    n = events_of(f->st, "message.ignored", &ev);
    assert_int_equal(n, 1);
    mr_event_list_free(ev, n);
    /* Every other type: none. */
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM events"), 1);
    assert_true(mr_store_event_type_known("message.ignored"));
}

/* A release request queues one job and records it; never twice. */
static void release_request(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t row = ignore_one(f, "req-1@x");
    int64_t job = 0, job2 = 0;
    assert_int_equal(mr_store_release_ignored(f->st, "t", row, "", &job, &err),
                     MR_EINVAL);
    assert_int_equal(
        mr_store_release_ignored(f->st, "other", row, "cli", &job, &err),
        MR_ENOTFOUND);
    assert_int_equal(
        mr_store_release_ignored(f->st, "t", row + 100, "cli", &job, &err),
        MR_ENOTFOUND);
    assert_int_equal(
        mr_store_release_ignored(f->st, "t", row, "api:mrt_abc", &job, &err),
        0);
    assert_true(job > 0);
    struct mr_job j;
    assert_int_equal(mr_store_get_job(f->st, job, &j, &err), 0);
    assert_string_equal(j.channel, "release");
    assert_string_equal(j.tenant, "t");
    assert_string_equal(j.raw_sha256, "ff00");
    assert_int_equal(j.received_at, 5000);
    json_t *p = json_loads(j.payload, 0, NULL);
    json_t *r = json_object_get(p, "release");
    assert_int_equal(json_integer_value(json_object_get(r, "ignored_id")), row);
    assert_string_equal(json_string_value(json_object_get(r, "by")),
                        "api:mrt_abc");
    json_decref(p);
    mr_job_clear(&j);
    /* Asked for already: a conflict that names the job. */
    assert_int_equal(
        mr_store_release_ignored(f->st, "t", row, "cli", &job2, &err),
        MR_ECONFLICT);
    assert_non_null(strstr(err.msg, "being released already"));
    assert_int_equal(job2, 0);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM jobs"), 1);
    struct mr_ignored_view v;
    assert_int_equal(mr_store_get_ignored(f->st, "t", row, &v, &err), 0);
    assert_int_equal(v.release_job_id, job);
    assert_string_equal(v.release_by, "api:mrt_abc");
    assert_true(v.release_requested_at > 0);
    assert_int_equal(v.released_at, 0);
    assert_string_equal(v.event_json, "{\"type\":\"email.received\"}");
    mr_ignored_view_clear(&v);
    assert_int_equal(mr_store_get_ignored(f->st, "other", row, &v, &err),
                     MR_ENOTFOUND);
}

/* The release delivery: a new ticket, everything a delivery writes, the
 * trail's entries, no acknowledgement, the row released with it; and the
 * same release again is a duplicate. */
static void release_into_new_ticket(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t row = ignore_one(f, "rel-1@x");
    int64_t job = 0;
    assert_int_equal(
        mr_store_release_ignored(f->st, "t", row, "api:mrt_abc", &job, &err),
        0);
    struct mr_job claimed;
    assert_int_equal(
        mr_store_claim_job(f->st, "w1", 1LL << 50, 60000, &claimed, &err), 0);
    assert_int_equal(claimed.id, job);
    mr_job_clear(&claimed);

    /* What the worker hands over: the rules again, ignore cleared; the
     * store refuses ignore for a release even if it were set. */
    struct mr_rules_outcome again = IGNORE;
    again.ack = &ACK;
    struct mr_message_rec m = message("t", "rel-1@x");
    m.rules_new = &again;
    m.rules_reply = &again;
    m.release_of = row;
    m.release_by = "api:mrt_abc";
    struct mr_deliver_result r;
    assert_int_equal(mr_store_deliver_message(f->st, job, "w1", &m, &r, &err),
                     0);
    assert_false(r.ignored);
    assert_false(r.duplicate);
    assert_true(r.new_ticket);
    assert_false(r.ack_queued);
    assert_true(r.ticket_id > 0);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM outbound_mail"),
                     0);
    assert_int_equal(raw_count(f->path,
                               "SELECT count(*) FROM jobs WHERE state = "
                               "'done'"),
                     1);

    struct mr_ticket_view t;
    assert_int_equal(mr_store_get_ticket(f->st, "t", r.ticket_id, &t, &err), 0);
    assert_int_equal(t.nmessages, 1);
    assert_int_equal(t.messages[0].id, r.message_row);
    assert_int_equal(t.messages[0].nattachments, 2);
    assert_string_equal(t.tags_json, "[\"news\"]");
    json_t *trail = json_loads(t.applied_rules_json, 0, NULL);
    size_t len = json_array_size(trail);
    assert_int_equal(len, 6);
    json_t *e1 = json_array_get(trail, 4), *e2 = json_array_get(trail, 5);
    assert_string_equal(json_string_value(json_object_get(e1, "name")),
                        "(release)");
    char want[96];
    snprintf(want, sizeof want, "released ignored=%lld by=api:mrt_abc",
             (long long)row);
    assert_string_equal(json_string_value(json_object_get(e1, "decision")),
                        want);
    assert_string_equal(json_string_value(json_object_get(e2, "decision")),
                        "auto_ack_suppressed=release");
    json_decref(trail);
    mr_ticket_view_clear(&t);

    const char *types[] = {"email.received", "ticket.created", "message.added"};
    for (size_t i = 0; i < 3; i++) {
        struct mr_event_rec *ev = NULL;
        size_t n = events_of(f->st, types[i], &ev);
        assert_int_equal(n, 1);
        assert_int_equal(ev[0].ticket_id, r.ticket_id);
        json_t *p = payload(&ev[0]);
        assert_int_equal(
            json_integer_value(json_object_get(p, "released_from")), row);
        json_decref(p);
        mr_event_list_free(ev, n);
    }

    struct mr_ignored_view v;
    assert_int_equal(mr_store_get_ignored(f->st, "t", row, &v, &err), 0);
    assert_true(v.released_at > 0);
    assert_int_equal(v.released_ticket_id, r.ticket_id);
    assert_int_equal(v.released_message_row, r.message_row);
    mr_ignored_view_clear(&v);

    /* A second run of the release (its worker died after the commit):
     * nothing new, the same ticket. */
    int64_t tickets = raw_count(f->path, "SELECT count(*) FROM tickets");
    int64_t events = raw_count(f->path, "SELECT count(*) FROM events");
    struct mr_deliver_result r2;
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &m, &r2, &err),
                     0);
    assert_true(r2.duplicate);
    assert_int_equal(r2.ticket_id, r.ticket_id);
    assert_int_equal(r2.message_row, r.message_row);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM tickets"),
                     tickets);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM events"), events);
    /* Released: asking again is a conflict that names the ticket. */
    int64_t job2 = 0;
    assert_int_equal(
        mr_store_release_ignored(f->st, "t", row, "cli", &job2, &err),
        MR_ECONFLICT);
    assert_non_null(strstr(err.msg, "released already, into ticket"));
    /* A later copy of the mail stays a duplicate of the ignored row. */
    struct mr_message_rec copy = message("t", "rel-1@x");
    struct mr_deliver_result r3;
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &copy, &r3, &err),
                     0);
    assert_true(r3.duplicate);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM messages"), 1);
}

/* A released reply joins the ticket it answers (ticket.updated names the
 * release); the trail gets no acknowledgement entry for a reply. */
static void release_reply_joins(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    struct mr_message_rec root = message("t", "root@x");
    struct mr_deliver_result r0;
    assert_int_equal(mr_store_deliver_message(f->st, 0, NULL, &root, &r0, &err),
                     0);
    struct mr_message_rec reply = message("t", "reply@x");
    reply.in_reply_to = "root@x";
    reply.rules_reply = &IGNORE;
    struct mr_deliver_result r1;
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &reply, &r1, &err), 0);
    assert_true(r1.ignored);
    reply.release_of = r1.message_row;
    reply.release_by = "cli";
    struct mr_deliver_result r2;
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &reply, &r2, &err), 0);
    assert_false(r2.new_ticket);
    assert_int_equal(r2.ticket_id, r0.ticket_id);
    struct mr_ticket_view t;
    assert_int_equal(mr_store_get_ticket(f->st, "t", r0.ticket_id, &t, &err),
                     0);
    assert_int_equal(t.nmessages, 2);
    assert_null(strstr(t.applied_rules_json, "auto_ack_suppressed"));
    assert_non_null(strstr(t.applied_rules_json, "by=cli"));
    mr_ticket_view_clear(&t);
    struct mr_event_rec *ev = NULL;
    size_t n = events_of(f->st, "ticket.updated", &ev);
    assert_int_equal(n, 1);
    json_t *p = payload(&ev[0]);
    assert_int_equal(json_integer_value(json_object_get(p, "released_from")),
                     r1.message_row);
    json_decref(p);
    mr_event_list_free(ev, n);
    /* A release of a row of another tenant finds nothing to mark. */
    struct mr_message_rec stray = message("u", "stray@x");
    stray.release_of = r1.message_row;
    struct mr_deliver_result r3;
    assert_int_equal(
        mr_store_deliver_message(f->st, 0, NULL, &stray, &r3, &err), MR_EINVAL);
    assert_int_equal(raw_count(f->path, "SELECT count(*) FROM messages WHERE "
                                        "tenant = 'u'"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ignored_writes_event, setup, teardown),
        cmocka_unit_test_setup_teardown(release_request, setup, teardown),
        cmocka_unit_test_setup_teardown(release_into_new_ticket, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(release_reply_joins, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
