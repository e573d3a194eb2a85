/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_ticket_update.c - agents' changes to tickets and the
 * ticket.updated events every change writes (src/store/ticket_update.c,
 * the reply path of src/store/tickets.c), and short-lived tokens
 * (src/store/tokens.c, src/http/auth*.c): the patch check naming its
 * field, before/after of each field, no event for a no-op, the version
 * check, tenants, a reply reopening a solved ticket, a reply's rules, and
 * token expiry, parents and role narrowing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "http/auth.h"
#include "store/store.h"

#include "store_fixture.h"

static int setup(void **state) { return store_fx_setup(state, "tupd"); }
static int teardown(void **state) { return store_fx_teardown(state); }

/* Delivers one message from alice; in_reply_to joins it to a ticket.
 * Returns the ticket id. */
static int64_t deliver(struct mr_store *st, const char *tenant,
                       const char *msgid, const char *in_reply_to,
                       const struct mr_rules_outcome *reply_rules)
{
    struct mr_message_rec m = {
        .tenant = tenant,
        .channel = "smtp",
        .message_id = msgid,
        .in_reply_to = in_reply_to,
        .subject = "Printer on fire",
        .from_email = "alice@example.org",
        .text = "hi",
        .event_json = "{\"type\":\"email.received\"}",
        .received_at = 1000,
        .rules_reply = reply_rules,
    };
    struct mr_deliver_result res;
    struct mr_error err = {0};
    int rc = mr_store_deliver_message(st, 0, NULL, &m, &res, &err);
    if (rc != 0)
        print_error("deliver: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_false(res.duplicate);
    return res.ticket_id;
}

/* The payloads of tenant's ticket.updated events after seq `after`,
 * parsed; *last gets the newest seq seen. */
static json_t *updates(struct mr_store *st, const char *tenant, int64_t after,
                       int64_t *last)
{
    const char *types[] = {"ticket.updated"};
    struct mr_event_rec *ev = NULL;
    size_t n = 0;
    struct mr_error err = {0};
    assert_int_equal(
        mr_store_list_events(st, tenant, after, 100, types, 1, &ev, &n, &err),
        0);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_loads(ev[i].payload, 0, NULL);
        assert_non_null(p);
        json_array_append_new(arr, p);
    }
    if (last)
        *last = n ? ev[n - 1].seq : after;
    mr_event_list_free(ev, n);
    return arr;
}

static int64_t head(struct mr_store *st, const char *tenant)
{
    int64_t seq = 0;
    struct mr_error err = {0};
    assert_int_equal(mr_store_events_head(st, tenant, &seq, &err), 0);
    return seq;
}

static const char *change_str(json_t *p, const char *field, const char *which)
{
    json_t *c = json_object_get(json_object_get(p, "changes"), field);
    assert_non_null(c);
    json_t *v = json_object_get(c, which);
    assert_non_null(v);
    return json_string_value(v); /* NULL for null */
}

/* ---- the check ----------------------------------------------------------- */

static void patch_check_names_the_field(void **state)
{
    (void)state;
    const char *long_tag = "0123456789012345678901234567890123456789"
                           "0123456789012345678901234"; /* 65 */
    const char *one[] = {"a"};
    const char *bad_tag[] = {long_tag};
    const char *ctl_tag[] = {"a\tb"};
    const char *empty_tag[] = {""};
    struct {
        struct mr_ticket_patch p;
        const char *field;
    } cases[] = {
        {{.status = "bogus"}, "status"},
        {{.status = "new"}, "status"},
        {{.priority = "critical"}, "priority"},
        {{.set_queue = true, .queue = ""}, "queue"},
        {{.set_assignee = true, .assignee = "x\x7fy"}, "assignee"},
        {{.set_assignee = true, .assignee = "\xff\xfe"}, "assignee"},
        {{.set_tags = true, .tags = bad_tag, .ntags = 1}, "tags"},
        {{.set_tags = true, .tags = one, .ntags = 1, .tags_add = one,
          .ntags_add = 1},
         "tags"},
        {{.tags_add = ctl_tag, .ntags_add = 1}, "tags_add"},
        {{.tags_remove = empty_tag, .ntags_remove = 1}, "tags_remove"},
        {{.tags_add = one, .ntags_add = 1, .tags_remove = one,
          .ntags_remove = 1},
         "tags_remove"},
        {{.tags_add = one, .ntags_add = MR_TICKET_TAGS_MAX + 1}, "tags_add"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *field = NULL;
        struct mr_error err = {0};
        assert_int_equal(mr_store_ticket_patch_check(&cases[i].p, &field, &err),
                         MR_EINVAL);
        assert_non_null(field);
        assert_string_equal(field, cases[i].field);
        assert_non_null(strstr(err.msg, cases[i].field));
    }
    struct mr_ticket_patch ok = {.status = "closed",
                                 .priority = "urgent",
                                 .set_queue = true,
                                 .queue = NULL,
                                 .set_assignee = true,
                                 .assignee = "bob@example.org",
                                 .tags_add = one,
                                 .ntags_add = 1};
    assert_int_equal(mr_store_ticket_patch_check(&ok, NULL, NULL), 0);
}

/* ---- agents' updates ----------------------------------------------------- */

static void each_field_before_after(void **state)
{
    struct fx *f = *state;
    int64_t tid = deliver(f->st, "acme", "<t1@example.org>", NULL, NULL);
    int64_t mark = head(f->st, "acme");
    struct mr_error err = {0};
    struct mr_ticket_update_result res;

    struct mr_ticket_patch p = {.status = "pending",
                                .priority = "high",
                                .set_queue = true,
                                .queue = "billing",
                                .actor = "api:mrt_abcdefgh"};
    assert_int_equal(mr_store_update_ticket(f->st, "acme", tid, &p, &res, &err),
                     0);
    assert_true(res.changed);
    assert_int_equal(res.version, 2);
    assert_true(res.seq > mark);
    int64_t last;
    json_t *u = updates(f->st, "acme", mark, &last);
    assert_int_equal(json_array_size(u), 1);
    json_t *e = json_array_get(u, 0);
    assert_int_equal(json_integer_value(json_object_get(e, "ticket_id")), tid);
    assert_string_equal(json_string_value(json_object_get(e, "actor")),
                        "api:mrt_abcdefgh");
    assert_int_equal(json_object_size(json_object_get(e, "changes")), 3);
    assert_string_equal(change_str(e, "status", "before"), "new");
    assert_string_equal(change_str(e, "status", "after"), "pending");
    assert_string_equal(change_str(e, "priority", "before"), "normal");
    assert_string_equal(change_str(e, "priority", "after"), "high");
    assert_null(change_str(e, "queue", "before"));
    assert_string_equal(change_str(e, "queue", "after"), "billing");
    json_decref(u);

    /* Clearing the queue, setting the assignee and tags. */
    const char *tags[] = {"vip", "billing", "vip"};
    struct mr_ticket_patch q = {.set_queue = true,
                                .set_assignee = true,
                                .assignee = "bob@example.org",
                                .set_tags = true,
                                .tags = tags,
                                .ntags = 3};
    mark = last;
    assert_int_equal(mr_store_update_ticket(f->st, "acme", tid, &q, &res, &err),
                     0);
    assert_int_equal(res.version, 3);
    u = updates(f->st, "acme", mark, &last);
    e = json_array_get(u, 0);
    assert_string_equal(change_str(e, "queue", "before"), "billing");
    assert_null(change_str(e, "queue", "after"));
    assert_string_equal(change_str(e, "assignee", "after"), "bob@example.org");
    json_t *tc = json_object_get(json_object_get(e, "changes"), "tags");
    char *dump = json_dumps(tc, JSON_COMPACT);
    assert_string_equal(dump, "{\"before\":[],\"after\":[\"vip\",\"billing\"],"
                              "\"added\":[\"vip\",\"billing\"],"
                              "\"removed\":[]}");
    free(dump);
    json_decref(u);

    /* Edits: removed first, then added; the view shows the result. */
    const char *add[] = {"new-tag", "vip"};
    const char *rem[] = {"billing"};
    struct mr_ticket_patch r = {.tags_add = add,
                                .ntags_add = 2,
                                .tags_remove = rem,
                                .ntags_remove = 1,
                                .status = "solved"};
    assert_int_equal(mr_store_update_ticket(f->st, "acme", tid, &r, &res, &err),
                     0);
    struct mr_ticket_view t;
    assert_int_equal(mr_store_get_ticket(f->st, "acme", tid, &t, &err), 0);
    assert_string_equal(t.tags_json, "[\"vip\",\"new-tag\"]");
    assert_string_equal(t.status, "solved");
    assert_int_equal(t.version, 4);
    assert_null(t.queue);
    assert_string_equal(t.assignee, "bob@example.org");
    mr_ticket_view_clear(&t);
}

static void noop_writes_nothing(void **state)
{
    struct fx *f = *state;
    int64_t tid = deliver(f->st, "acme", "<t2@example.org>", NULL, NULL);
    struct mr_error err = {0};
    struct mr_ticket_update_result res;
    struct mr_ticket_view t;
    assert_int_equal(mr_store_get_ticket(f->st, "acme", tid, &t, &err), 0);
    int64_t updated = t.updated_at;
    mr_ticket_view_clear(&t);
    int64_t mark = head(f->st, "acme");
    const char *none[] = {"absent"};
    struct mr_ticket_patch same[] = {
        {0},
        {.status = "new"},  /* refused by the check: not a no-op */
        {.priority = "normal"},
        {.set_queue = true, .queue = NULL},
        {.tags_remove = none, .ntags_remove = 1},
        {.set_tags = true, .ntags = 0},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        int rc = mr_store_update_ticket(f->st, "acme", tid, &same[i], &res,
                                        &err);
        if (i == 1) {
            assert_int_equal(rc, MR_EINVAL);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_false(res.changed);
        assert_int_equal(res.version, 1);
        assert_int_equal(res.seq, 0);
    }
    assert_int_equal(head(f->st, "acme"), mark);
    assert_int_equal(mr_store_get_ticket(f->st, "acme", tid, &t, &err), 0);
    assert_int_equal(t.version, 1);
    assert_int_equal(t.updated_at, updated);
    mr_ticket_view_clear(&t);
}

static void version_and_tenant_checks(void **state)
{
    struct fx *f = *state;
    int64_t tid = deliver(f->st, "acme", "<t3@example.org>", NULL, NULL);
    struct mr_error err = {0};
    struct mr_ticket_update_result res;
    struct mr_ticket_patch p = {.status = "open", .if_version = 1};
    assert_int_equal(mr_store_update_ticket(f->st, "acme", tid, &p, &res, &err),
                     0);
    int64_t mark = head(f->st, "acme");
    p.status = "closed"; /* still if_version 1: stale now */
    assert_int_equal(mr_store_update_ticket(f->st, "acme", tid, &p, &res, &err),
                     MR_ECONFLICT);
    assert_non_null(strstr(err.msg, "version 2"));
    assert_int_equal(head(f->st, "acme"), mark);
    assert_int_equal(
        mr_store_update_ticket(f->st, "globex", tid, &p, &res, &err),
        MR_ENOTFOUND);
    assert_int_equal(
        mr_store_update_ticket(f->st, "acme", tid + 1000, &p, &res, &err),
        MR_ENOTFOUND);
    /* Too many tags once the ticket's own are counted. */
    const char *many[MR_TICKET_TAGS_MAX];
    char names[MR_TICKET_TAGS_MAX][8];
    for (int i = 0; i < MR_TICKET_TAGS_MAX; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        many[i] = names[i];
    }
    struct mr_ticket_patch a = {.tags_add = many, .ntags_add = 100};
    assert_int_equal(mr_store_update_ticket(f->st, "acme", tid, &a, &res, &err),
                     0);
    const char *one[] = {"one-more"};
    struct mr_ticket_patch b = {.tags_add = one, .ntags_add = 1};
    assert_int_equal(mr_store_update_ticket(f->st, "acme", tid, &b, &res, &err),
                     MR_EINVAL);
}

/* ---- replies ------------------------------------------------------------- */

static void reply_reopens_solved(void **state)
{
    struct fx *f = *state;
    int64_t tid = deliver(f->st, "acme", "<r1@example.org>", NULL, NULL);
    struct mr_error err = {0};
    struct mr_ticket_update_result res;
    struct mr_ticket_patch p = {.status = "solved"};
    assert_int_equal(mr_store_update_ticket(f->st, "acme", tid, &p, &res, &err),
                     0);
    int64_t mark = head(f->st, "acme");
    assert_int_equal(
        deliver(f->st, "acme", "<r2@example.org>", "<r1@example.org>", NULL),
        tid);
    json_t *u = updates(f->st, "acme", mark, NULL);
    assert_int_equal(json_array_size(u), 1);
    json_t *e = json_array_get(u, 0);
    assert_string_equal(json_string_value(json_object_get(e, "actor")),
                        "reply");
    assert_string_equal(json_string_value(json_object_get(e, "message_id")),
                        "<r2@example.org>");
    assert_int_equal(json_object_size(json_object_get(e, "changes")), 1);
    assert_string_equal(change_str(e, "status", "before"), "solved");
    assert_string_equal(change_str(e, "status", "after"), "open");
    assert_int_equal(json_integer_value(json_object_get(e, "version")), 3);
    assert_null(json_object_get(e, "rules"));
    json_decref(u);

    /* Another reply: the ticket is open, nothing but the message changes. */
    mark = head(f->st, "acme");
    deliver(f->st, "acme", "<r3@example.org>", "<r2@example.org>", NULL);
    u = updates(f->st, "acme", mark, NULL);
    assert_int_equal(json_array_size(u), 1);
    assert_int_equal(
        json_object_size(json_object_get(json_array_get(u, 0), "changes")), 0);
    json_decref(u);
}

static void reply_rules_changes(void **state)
{
    struct fx *f = *state;
    int64_t tid = deliver(f->st, "acme", "<q1@example.org>", NULL, NULL);
    struct mr_rules_outcome ro = {
        .priority = "urgent",
        .queue = "escalations",
        .tags_add_json = "[\"angry\"]",
        .applied_json = "[{\"name\":\"escalate\",\"decision\":\"x\"}]",
        .matched_json = "[\"escalate\"]",
    };
    int64_t mark = head(f->st, "acme");
    assert_int_equal(
        deliver(f->st, "acme", "<q2@example.org>", "<q1@example.org>", &ro),
        tid);
    json_t *u = updates(f->st, "acme", mark, NULL);
    assert_int_equal(json_array_size(u), 1);
    json_t *e = json_array_get(u, 0);
    assert_string_equal(change_str(e, "priority", "before"), "normal");
    assert_string_equal(change_str(e, "priority", "after"), "urgent");
    assert_string_equal(change_str(e, "queue", "after"), "escalations");
    json_t *tc = json_object_get(json_object_get(e, "changes"), "tags");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(tc, "added"), 0)),
        "angry");
    json_t *rules = json_object_get(e, "rules");
    assert_int_equal(json_array_size(rules), 1);
    assert_string_equal(json_string_value(json_array_get(rules, 0)),
                        "escalate");
    assert_null(json_object_get(json_object_get(e, "changes"), "status"));
    json_decref(u);
}

/* ---- short-lived tokens -------------------------------------------------- */

static const char HASH_A[] =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char HASH_B[] =
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
static const char HASH_C[] =
    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

static const char HASH_D[] =
    "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
#define FAR 4000000000000LL /* in 2096 */

static void token_children(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    int64_t parent = 0, child = 0, x = 0;
    assert_int_equal(mr_store_token_add(f->st, "acme", "agent", HASH_A,
                                        "mrt_aaaa", NULL, &parent, &err),
                     0);
    assert_int_equal(mr_store_token_add_child(f->st, parent, "acme", "read",
                                              HASH_B, "mrt_bbbb", FAR, &child,
                                              &err),
                     0);
    struct mr_token_rec rec;
    assert_int_equal(mr_store_token_find(f->st, HASH_B, &rec, &err), 0);
    assert_int_equal(rec.id, child);
    assert_int_equal(rec.expires_at, FAR);
    assert_int_equal(rec.parent_id, parent);
    assert_string_equal(rec.role, "read");
    mr_token_rec_clear(&rec);
    assert_int_equal(mr_store_token_find(f->st, HASH_A, &rec, &err), 0);
    assert_int_equal(rec.expires_at, 0);
    mr_token_rec_clear(&rec);
    /* Not from a short-lived token, nor across tenants. */
    assert_int_equal(mr_store_token_add_child(f->st, child, "acme", "read",
                                              HASH_C, "", FAR, &x, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_token_add_child(f->st, parent, "globex", "read",
                                              HASH_C, "", FAR, &x, &err),
                     MR_ENOTFOUND);
    /* A token long expired is found (to say "expired") until a later
     * exchange purges it. */
    assert_int_equal(mr_store_token_add_child(f->st, parent, "acme", "read",
                                              HASH_C, "", 5000, &x, &err),
                     0);
    assert_int_equal(mr_store_token_find(f->st, HASH_C, &rec, &err), 0);
    assert_int_equal(rec.expires_at, 5000);
    mr_token_rec_clear(&rec);
    assert_int_equal(mr_store_token_add_child(f->st, parent, "acme", "read",
                                              HASH_D, "", FAR, &x, &err),
                     0);
    assert_int_equal(mr_store_token_find(f->st, HASH_C, &rec, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_token_find(f->st, HASH_B, &rec, &err), 0);
    mr_token_rec_clear(&rec);
    /* The parent's revocation ends the child. */
    assert_int_equal(mr_store_token_revoke(f->st, parent, &err), 0);
    assert_int_equal(mr_store_token_find(f->st, HASH_B, &rec, &err),
                     MR_ENOTFOUND);
    assert_int_equal(mr_store_token_add_child(f->st, parent, "acme", "read",
                                              HASH_C, "", FAR, &x, &err),
                     MR_ENOTFOUND);
}

static void auth_check_expiry(void **state)
{
    struct fx *f = *state;
    struct mr_error err = {0};
    char tok[MR_AUTH_TOKEN_LEN + 1], hash[MR_AUTH_HASH_LEN + 1];
    char ctok[MR_AUTH_TOKEN_LEN + 1], chash[MR_AUTH_HASH_LEN + 1];
    assert_int_equal(mr_auth_token_new(tok, &err), 0);
    assert_int_equal(mr_auth_token_new(ctok, &err), 0);
    mr_auth_token_hash(tok, hash);
    mr_auth_token_hash(ctok, chash);
    int64_t parent = 0;
    assert_int_equal(mr_store_token_add(f->st, "acme", "admin", hash, "mrt_p",
                                        NULL, &parent, &err),
                     0);
    int64_t expires = 1800000000000LL;
    assert_int_equal(mr_store_token_add_child(f->st, parent, "acme", "agent",
                                              chash, "mrt_c", expires, NULL,
                                              &err),
                     0);
    char authz[128];
    snprintf(authz, sizeof authz, "Bearer %s", ctok);
    struct mr_auth_principal pr;
    assert_int_equal(mr_auth_check_at(f->st, authz, expires - 1, &pr, &err),
                     0);
    assert_int_equal(pr.role, MR_AUTH_AGENT);
    assert_int_equal(pr.expires_at, expires);
    assert_string_equal(pr.prefix, "mrt_c");
    assert_int_equal(mr_auth_check_at(f->st, authz, expires, &pr, &err),
                     MR_ENOTFOUND);
    assert_non_null(strstr(err.msg, "expired"));
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    assert_int_equal(mr_auth_check_at(f->st, authz, expires * 2, &pr, &err),
                     0);
    assert_int_equal(pr.expires_at, 0);
}

static void role_narrowing(void **state)
{
    (void)state;
    unsigned A = MR_AUTH_ADMIN, G = MR_AUTH_AGENT, R = MR_AUTH_READ,
             I = MR_AUTH_INGEST;
    assert_true(mr_auth_role_within(A, A));
    assert_true(mr_auth_role_within(G, A));
    assert_true(mr_auth_role_within(R, A));
    assert_true(mr_auth_role_within(I, A));
    assert_true(mr_auth_role_within(G, G));
    assert_true(mr_auth_role_within(R, G));
    assert_true(mr_auth_role_within(R, R));
    assert_true(mr_auth_role_within(I, I));
    assert_false(mr_auth_role_within(A, G));
    assert_false(mr_auth_role_within(I, G));
    assert_false(mr_auth_role_within(G, R));
    assert_false(mr_auth_role_within(R, I));
    assert_false(mr_auth_role_within(0, A));
    assert_false(mr_auth_role_within(A | G, A));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(patch_check_names_the_field),
        cmocka_unit_test_setup_teardown(each_field_before_after, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(noop_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(version_and_tenant_checks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reply_reopens_solved, setup, teardown),
        cmocka_unit_test_setup_teardown(reply_rules_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(token_children, setup, teardown),
        cmocka_unit_test_setup_teardown(auth_check_expiry, setup, teardown),
        cmocka_unit_test(role_narrowing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
