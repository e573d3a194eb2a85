/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_thread.c - mr_thread_decide over a fake store of two tenants, the
 * ticket tokens, and mr_thread_normalize_subject over a table of real
 * client prefixes (the table is at the bottom).
 *
 * The fake answers like the store: by tenant, a thread_ref is not a stored
 * message, participants are the requester and the listed addresses. It
 * counts every lookup asked for another tenant than the message's; every
 * test checks that count is zero.
 */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ticket/thread.h"
#include "util/buf.h"
#include "util/utf8.h"

#define DAY (24LL * 3600 * 1000)
#define NOW 1780000000000LL

/* ---- the fake store ---------------------------------------------------- */

struct fk_msg {
    const char *tenant, *id;
    int64_t ticket;
    bool stored; /* false: only a thread_ref (a reply referenced it) */
};

struct fk_ticket {
    const char *tenant;
    int64_t id, number;
    const char *status;
    int64_t updated_at;
    const char *requester, *subject;
    const char *parts[4]; /* participants besides the requester */
};

enum fk_fail {
    FAIL_NONE,
    FAIL_EXISTS,
    FAIL_OF_ID,
    FAIL_BY_ID,
    FAIL_BY_NUMBER,
    FAIL_PARTICIPANT,
    FAIL_SUBJECT
};

struct fake {
    struct fk_msg msgs[64];
    size_t nmsgs;
    struct fk_ticket tickets[16];
    size_t ntickets;
    const char *tenant; /* the tenant every lookup must ask for */
    int wrong_tenant;
    int calls;
    enum fk_fail fail;
    bool subject_ignores_requester; /* a buggy store */
    struct mr_thread_lookup lk;
};

static bool asked(struct fake *f, const char *tenant)
{
    f->calls++;
    if (tenant == NULL || f->tenant == NULL || strcmp(tenant, f->tenant) != 0)
        f->wrong_tenant++;
    return tenant != NULL;
}

static const struct fk_msg *fk_find_msg(struct fake *f, const char *tenant,
                                        const char *id)
{
    for (size_t i = 0; i < f->nmsgs; i++)
        if (strcmp(f->msgs[i].tenant, tenant) == 0 &&
            strcmp(f->msgs[i].id, id) == 0)
            return &f->msgs[i];
    return NULL;
}

static const struct fk_ticket *
fk_find_ticket(struct fake *f, const char *tenant, int64_t id, int64_t number)
{
    for (size_t i = 0; i < f->ntickets; i++) {
        const struct fk_ticket *t = &f->tickets[i];
        if (strcmp(t->tenant, tenant) == 0 &&
            (id ? t->id == id : t->number == number))
            return t;
    }
    return NULL;
}

static void fk_copy(const struct fk_ticket *t, struct mr_thread_ticket *out)
{
    out->id = t->id;
    out->number = t->number;
    snprintf(out->status, sizeof out->status, "%s", t->status);
    out->updated_at = t->updated_at;
}

static int fk_message_exists(void *ctx, const char *tenant, const char *id,
                             bool *yes)
{
    struct fake *f = ctx;
    asked(f, tenant);
    if (f->fail == FAIL_EXISTS)
        return MR_EIO;
    const struct fk_msg *m = fk_find_msg(f, tenant, id);
    *yes = m != NULL && m->stored;
    return 0;
}

static int fk_ticket_of_message_id(void *ctx, const char *tenant,
                                   const char *id, int64_t *ticket_id)
{
    struct fake *f = ctx;
    asked(f, tenant);
    if (f->fail == FAIL_OF_ID)
        return MR_EIO;
    const struct fk_msg *m = fk_find_msg(f, tenant, id);
    if (m == NULL)
        return MR_ENOTFOUND;
    *ticket_id = m->ticket;
    return 0;
}

static int fk_ticket_by_id(void *ctx, const char *tenant, int64_t id,
                           struct mr_thread_ticket *out)
{
    struct fake *f = ctx;
    asked(f, tenant);
    if (f->fail == FAIL_BY_ID)
        return MR_EIO;
    const struct fk_ticket *t = fk_find_ticket(f, tenant, id, 0);
    if (t == NULL)
        return MR_ENOTFOUND;
    fk_copy(t, out);
    return 0;
}

static int fk_ticket_by_number(void *ctx, const char *tenant, int64_t number,
                               struct mr_thread_ticket *out)
{
    struct fake *f = ctx;
    asked(f, tenant);
    if (f->fail == FAIL_BY_NUMBER)
        return MR_EIO;
    const struct fk_ticket *t = fk_find_ticket(f, tenant, 0, number);
    if (t == NULL)
        return MR_ENOTFOUND;
    fk_copy(t, out);
    return 0;
}

static int fk_is_participant(void *ctx, const char *tenant, int64_t ticket_id,
                             const char *addr, bool *yes)
{
    struct fake *f = ctx;
    asked(f, tenant);
    if (f->fail == FAIL_PARTICIPANT)
        return MR_EIO;
    const struct fk_ticket *t = fk_find_ticket(f, tenant, ticket_id, 0);
    *yes = false;
    if (t == NULL)
        return MR_ENOTFOUND;
    *yes = strcmp(t->requester, addr) == 0;
    for (size_t i = 0; i < 4 && t->parts[i]; i++)
        *yes = *yes || strcmp(t->parts[i], addr) == 0;
    return 0;
}

static int fk_subject_match(void *ctx, const char *tenant,
                            const char *requester, const char *norm,
                            int64_t since, int64_t *ticket_id)
{
    struct fake *f = ctx;
    asked(f, tenant);
    if (f->fail == FAIL_SUBJECT)
        return MR_EIO;
    const struct fk_ticket *best = NULL;
    for (size_t i = 0; i < f->ntickets; i++) {
        const struct fk_ticket *t = &f->tickets[i];
        char tn[MR_THREAD_SUBJECT_MAX];
        mr_thread_normalize_subject(t->subject, tn, sizeof tn);
        if (strcmp(t->tenant, tenant) != 0 || strcmp(tn, norm) != 0 ||
            strcmp(t->status, "closed") == 0 || t->updated_at < since)
            continue;
        if (!f->subject_ignores_requester && strcmp(t->requester, requester))
            continue;
        if (best == NULL || t->updated_at > best->updated_at)
            best = t;
    }
    if (best == NULL)
        return MR_ENOTFOUND;
    *ticket_id = best->id;
    return 0;
}

static void add_msg(struct fake *f, const char *tenant, const char *id,
                    int64_t ticket, bool stored)
{
    assert_true(f->nmsgs < 64);
    f->msgs[f->nmsgs++] = (struct fk_msg){tenant, id, ticket, stored};
}

#define ALICE "alice@customer.example"
#define BOB "bob@customer.example"
#define CAROL "carol@shop.example"
#define DAVE "dave@d.example"
#define MALLORY "mallory@elsewhere.example"
#define ZED "zed@new.example"
#define AGENT "agent@help.example"
#define DAEMON "mailer-daemon@mx.customer.example"

/*
 * Tenant acme:
 *   10 #1042 open     alice "Printer offline"   (bob was Cc'd; agent)
 *   11 #1043 solved   carol "Invoice 2291"
 *   12 #1044 closed   dave  "Old issue"
 *   13 #1045 open     alice "VPN broken"        (updated 20 days ago)
 *   14 #1046 pending  alice "Drucker offline"
 * Tenant other:
 *   20 #1042 open     alice "Printer offline"   (the same ids as acme's)
 */
static int setup(void **state)
{
    struct fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    struct fk_ticket t[] = {
        {"acme",
         10,
         1042,
         "open",
         NOW - 1 * DAY,
         ALICE,
         "Printer offline",
         {BOB, AGENT}},
        {"acme",
         11,
         1043,
         "solved",
         NOW - 2 * DAY,
         CAROL,
         "Invoice 2291",
         {AGENT}},
        {"acme", 12, 1044, "closed", NOW - 30 * DAY, DAVE, "Old issue", {0}},
        {"acme", 13, 1045, "open", NOW - 20 * DAY, ALICE, "VPN broken", {0}},
        {"acme",
         14,
         1046,
         "pending",
         NOW - DAY / 24,
         ALICE,
         "Drucker offline",
         {0}},
        {"other", 20, 1042, "open", NOW - DAY, ALICE, "Printer offline", {0}},
    };
    memcpy(f->tickets, t, sizeof t);
    f->ntickets = sizeof t / sizeof t[0];
    add_msg(f, "acme", "orig-1@customer.example", 10, true);
    add_msg(f, "acme", "t1042.m9@help.example", 10, true);
    add_msg(f, "acme", "a-only-ref@x.example", 10, false);
    /* Keys that must never be asked: an empty id matches nothing. */
    add_msg(f, "acme", "", 10, true);
    add_msg(f, "acme", "<>", 10, true);
    add_msg(f, "acme", "  ", 10, true);
    add_msg(f, "acme", "inv-1@shop.example", 11, true);
    add_msg(f, "acme", "old-1@d.example", 12, true);
    add_msg(f, "acme", "vpn-1@customer.example", 13, true);
    add_msg(f, "acme", "derived:3f2a", 10, true);
    add_msg(f, "other", "orig-1@customer.example", 20, true);
    add_msg(f, "other", "secret-1@other.example", 20, true);
    f->tenant = "acme";
    f->lk = (struct mr_thread_lookup){
        f,
        fk_message_exists,
        fk_ticket_of_message_id,
        fk_ticket_by_id,
        fk_ticket_by_number,
        fk_is_participant,
        fk_subject_match,
    };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static const unsigned char SECRET[] = "0123456789abcdef0123456789abcdef";
static const struct mr_thread_config CFG = {SECRET, 32, 0};

static struct mr_thread_msg msg_from(const char *tenant, const char *id,
                                     const char *from)
{
    struct mr_thread_msg m;
    memset(&m, 0, sizeof m);
    m.tenant = tenant;
    m.message_id = id;
    m.from = from;
    m.now = NOW;
    return m;
}

static struct mr_thread_decision decide_cfg(struct fake *f,
                                            const struct mr_thread_config *cfg,
                                            const struct mr_thread_msg *m)
{
    struct mr_thread_decision d;
    struct mr_error err = {0, ""};
    f->tenant = m->tenant;
    int rc = mr_thread_decide(cfg, &f->lk, m, &d, &err);
    if (rc != 0)
        fail_msg("decide failed: %d %s", rc, err.msg);
    assert_true(mr_utf8_valid(d.detail, strlen(d.detail)));
    assert_true(strlen(d.detail) < sizeof d.detail);
    assert_int_equal(f->wrong_tenant, 0);
    return d;
}

static struct mr_thread_decision decide(struct fake *f,
                                        const struct mr_thread_msg *m)
{
    return decide_cfg(f, &CFG, m);
}

static void assert_detail(const struct mr_thread_decision *d, const char *s)
{
    if (strstr(d->detail, s) == NULL)
        fail_msg("detail \"%s\" lacks \"%s\"", d->detail, s);
}

/* A joined decision without flags: by, ticket and nothing else set. */
static void assert_plain(const struct mr_thread_decision *d,
                         enum mr_thread_by by, int64_t ticket)
{
    if (d->by != by || d->ticket_id != ticket)
        fail_msg("got %s #%lld, want %s #%lld (%s)", mr_thread_by_name(d->by),
                 (long long)d->ticket_id, mr_thread_by_name(by),
                 (long long)ticket, d->detail);
    assert_false(d->unverified);
    assert_false(d->add_participant);
    assert_false(d->reopen);
    assert_false(d->delivery_failure);
    assert_int_equal(d->linked_ticket_id, 0);
}

static void token_addr(const char *tenant, int64_t number, char *out,
                       size_t cap)
{
    char tok[MR_THREAD_TOKEN_MAX];
    mr_thread_token(&CFG, tenant, number, tok, sizeof tok);
    assert_true(tok[0] != '\0');
    snprintf(out, cap, "support+%s@help.example", tok);
}

/* ---- the order ----------------------------------------------------------- */

static void test_by_name(void **state)
{
    (void)state;
    assert_string_equal(mr_thread_by_name(MR_THREAD_NEW), "new");
    assert_string_equal(mr_thread_by_name(MR_THREAD_DUPLICATE), "duplicate");
    assert_string_equal(mr_thread_by_name(MR_THREAD_TOKEN), "token");
    assert_string_equal(mr_thread_by_name(MR_THREAD_IN_REPLY_TO),
                        "in_reply_to");
    assert_string_equal(mr_thread_by_name(MR_THREAD_REFERENCES), "references");
    assert_string_equal(mr_thread_by_name(MR_THREAD_SUBJECT), "subject");
}

static void test_new(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m = msg_from("acme", "new-1@new.example", ZED);
    m.subject = "Hello";
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
    assert_detail(&d, "new ticket");
    assert_true(f->calls > 0);
}

static void test_duplicate(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m = msg_from("acme", "orig-1@customer.example", ALICE);
    /* Even with a token and In-Reply-To for another ticket: duplicate
     * comes first. */
    char addr[128];
    token_addr("acme", 1043, addr, sizeof addr);
    const char *rcpt[] = {addr};
    m.recipients = rcpt;
    m.nrecipients = 1;
    m.in_reply_to = "inv-1@shop.example";
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_DUPLICATE, 10);
    assert_detail(&d, "stored already");

    /* A derived key is a duplicate key as well. */
    m = msg_from("acme", "derived:3f2a", ALICE);
    m.message_id_derived = true;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_DUPLICATE, 10);
    assert_detail(&d, "derived");
}

static void test_empty_id_never_matches(void **state)
{
    struct fake *f = *state;
    const char *ids[] = {"", "<>", "  ", NULL};
    for (size_t i = 0; i < 4; i++) {
        struct mr_thread_msg m = msg_from("acme", ids[i], ZED);
        m.in_reply_to = "";
        const char *refs[] = {"", "<>"};
        m.references = refs;
        m.nreferences = 2;
        struct mr_thread_decision d = decide(f, &m);
        assert_plain(&d, MR_THREAD_NEW, 0);
    }
}

static void test_parent_after_reply(void **state)
{
    struct fake *f = *state;
    /* B (stored in ticket 10) referenced <a-only-ref@x.example>; A arrives
     * now, from the requester: it joins B's ticket, not a new one. */
    struct mr_thread_msg m = msg_from("acme", "a-only-ref@x.example", ALICE);
    m.subject = "Printer offline";
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_REFERENCES, 10);
    assert_detail(&d, "parent arrived after its reply");

    /* A derived key is never a reference. */
    m = msg_from("acme", "a-only-ref@x.example", ZED);
    m.message_id_derived = true;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);

    /* From a stranger the late parent joins unverified. */
    m = msg_from("acme", "a-only-ref@x.example", MALLORY);
    d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_REFERENCES);
    assert_int_equal(d.ticket_id, 10);
    assert_true(d.unverified);
}

static void test_in_reply_to(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m = msg_from("acme", "r1@customer.example", ALICE);
    m.in_reply_to = "t1042.m9@help.example";
    m.subject = "Another question about invoice 2291";
    struct mr_thread_decision d = decide(f, &m);
    /* A header match beats the (changed) subject. */
    assert_plain(&d, MR_THREAD_IN_REPLY_TO, 10);
    assert_detail(&d, "in_reply_to <t1042.m9@help.example>");

    /* In-Reply-To beats References. */
    const char *refs[] = {"inv-1@shop.example"};
    m.references = refs;
    m.nreferences = 1;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_IN_REPLY_TO, 10);
}

static void test_reply_all_colleague(void **state)
{
    struct fake *f = *state;
    /* bob was Cc'd: he joins verified; he is a participant already, and
     * nothing in a decision can change the requester. */
    struct mr_thread_msg m = msg_from("acme", "bob-1@customer.example", BOB);
    m.in_reply_to = "orig-1@customer.example";
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_IN_REPLY_TO, 10);
}

static void test_forged_in_reply_to(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m = msg_from("acme", "m1@elsewhere.example", MALLORY);
    m.in_reply_to = "orig-1@customer.example";
    struct mr_thread_decision d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_IN_REPLY_TO);
    assert_int_equal(d.ticket_id, 10);
    assert_true(d.unverified);
    assert_false(d.add_participant);
    assert_false(d.reopen);
    assert_detail(&d, "unverified");

    /* On a solved ticket: no reopen for a stranger. */
    m.in_reply_to = "inv-1@shop.example";
    d = decide(f, &m);
    assert_int_equal(d.ticket_id, 11);
    assert_true(d.unverified);
    assert_false(d.reopen);

    /* No sender at all is no participant either. */
    m.from = NULL;
    d = decide(f, &m);
    assert_int_equal(d.ticket_id, 11);
    assert_true(d.unverified);
    assert_false(d.reopen);
}

static void test_references_newest_first(void **state)
{
    struct fake *f = *state;
    /* Pitfall 3: In-Reply-To names the agent's Outlook copy we never saw;
     * References still knows the first message. */
    struct mr_thread_msg m = msg_from("acme", "r2@customer.example", ALICE);
    m.in_reply_to = "DB9PR01MB1234@eurprd01.prod.outlook.com";
    const char *refs[] = {"orig-1@customer.example",
                          "DB9PR01MB1234@eurprd01.prod.outlook.com"};
    m.references = refs;
    m.nreferences = 2;
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_REFERENCES, 10);
    assert_detail(&d, "references <orig-1@customer.example>");

    /* Two known ids: the newest (last) wins. */
    const char *two[] = {"orig-1@customer.example", "inv-1@shop.example"};
    m = msg_from("acme", "r3@shop.example", CAROL);
    m.references = two;
    m.nreferences = 2;
    d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_REFERENCES);
    assert_int_equal(d.ticket_id, 11);
    assert_false(d.unverified);
}

static void test_references_bounded(void **state)
{
    struct fake *f = *state;
    enum { N = 3 * MR_THREAD_MAX_REFS / 2 };
    static char ids[N][32];
    const char *refs[N];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "unknown-%d@x.example", i);
        refs[i] = ids[i];
    }
    /* The only known id is older than the newest MR_THREAD_MAX_REFS. */
    refs[0] = "orig-1@customer.example";
    struct mr_thread_msg m = msg_from("acme", "r4@customer.example", ALICE);
    m.references = refs;
    m.nreferences = N;
    f->calls = 0;
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
    assert_true(f->calls <= MR_THREAD_MAX_REFS + 8);

    /* Within the newest MR_THREAD_MAX_REFS it is found. */
    refs[0] = ids[0];
    refs[N - MR_THREAD_MAX_REFS] = "orig-1@customer.example";
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_REFERENCES, 10);
}

/* ---- tokens in the decision ---------------------------------------------- */

static void test_token_recipient(void **state)
{
    struct fake *f = *state;
    char addr[128];
    token_addr("acme", 1042, addr, sizeof addr);
    const char *rcpt[] = {"billing@help.example", addr};
    struct mr_thread_msg m = msg_from("acme", "t-1@customer.example", ALICE);
    m.recipients = rcpt;
    m.nrecipients = 2;
    /* The token beats In-Reply-To. */
    m.in_reply_to = "inv-1@shop.example";
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_TOKEN, 10);
    assert_detail(&d, "token in support+t1042.");

    /* A new address with a valid token (a forward the customer asked a
     * colleague to answer) is verified by the MAC and becomes a
     * participant. */
    m.from = ZED;
    d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_TOKEN);
    assert_int_equal(d.ticket_id, 10);
    assert_false(d.unverified);
    assert_true(d.add_participant);
}

static void test_token_refused(void **state)
{
    struct fake *f = *state;
    char good[128], bad[128];
    token_addr("acme", 1042, good, sizeof good);
    /* Tamper with the last mac character. */
    memcpy(bad, good, sizeof bad);
    char *at = strchr(bad, '@');
    at[-1] = at[-1] == 'a' ? 'b' : 'a';
    const char *rcpt[] = {bad};
    struct mr_thread_msg m = msg_from("acme", "t-2@elsewhere.example", MALLORY);
    m.recipients = rcpt;
    m.nrecipients = 1;
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
    assert_detail(&d, "does not verify");

    /* The same bad token on every recipient is noted once. */
    const char *many[] = {bad, bad, bad};
    m.recipients = many;
    m.nrecipients = 3;
    d = decide(f, &m);
    const char *first = strstr(d.detail, "does not verify");
    assert_non_null(first);
    assert_null(strstr(first + 1, "does not verify"));
    m.recipients = rcpt;
    m.nrecipients = 1;

    /* Another tenant's token does not verify here. */
    char theirs[128];
    token_addr("other", 1042, theirs, sizeof theirs);
    rcpt[0] = theirs;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);

    /* A valid token for a ticket that does not exist. */
    char gone[128];
    token_addr("acme", 9999, gone, sizeof gone);
    rcpt[0] = gone;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
    assert_detail(&d, "unknown ticket #9999");

    /* Without a usable secret no token counts. */
    struct mr_thread_config weak = {SECRET, MR_THREAD_SECRET_MIN - 1, 0};
    rcpt[0] = good;
    d = decide_cfg(f, &weak, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
}

static void test_subject_tag(void **state)
{
    struct fake *f = *state;
    /* A bare [#1042] from the requester: verified by participation. */
    struct mr_thread_msg m = msg_from("acme", "s-1@customer.example", ALICE);
    m.subject = "RE: Printer offline [#1042]";
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_TOKEN, 10);
    assert_detail(&d, "subject tag [#1042]");

    /* A guessed [#1042] from a stranger is ignored and noted; threading
     * goes on (pitfall 7). */
    m = msg_from("acme", "s-2@elsewhere.example", MALLORY);
    m.subject = "Re: [#1042] Printer offline";
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
    assert_detail(&d, "ignored, sender not a participant of #1042");

    /* ... and with a forged In-Reply-To it joins only unverified. */
    m.in_reply_to = "t1042.m9@help.example";
    d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_IN_REPLY_TO);
    assert_true(d.unverified);
    assert_detail(&d, "ignored");

    /* [#1042-<mac>] verifies by the MAC alone, in either case. */
    char tag[MR_THREAD_TOKEN_MAX + 2], subj[128];
    mr_thread_subject_tag(&CFG, "acme", 1042, tag, sizeof tag);
    assert_true(strncmp(tag, "[#1042-", 7) == 0);
    snprintf(subj, sizeof subj, "Re: Printer offline %s", tag);
    m = msg_from("acme", "s-3@new.example", ZED);
    m.subject = subj;
    d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_TOKEN);
    assert_int_equal(d.ticket_id, 10);
    assert_false(d.unverified);
    assert_true(d.add_participant);
    for (char *p = subj; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_TOKEN);

    /* A tag whose mac does not verify is ignored. */
    snprintf(subj, sizeof subj, "Re: Printer offline [#1042-aaaaaaaaaa]");
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
    assert_detail(&d, "mac does not verify");
}

/* ---- subject fallback ------------------------------------------------------
 */

static void test_subject_fallback(void **state)
{
    struct fake *f = *state;
    /* Pitfall 6b: stacked localized prefixes, NBSP before the colon. */
    struct mr_thread_msg m = msg_from("acme", "d-1@customer.example", ALICE);
    m.subject = "AW: WG: [EXTERNAL] Re[2]: RE\xc2\xa0: Drucker offline";
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_SUBJECT, 14);
    assert_detail(&d, "subject \"drucker offline\"");

    /* Pitfall 1: Outlook, no reply headers, changed case. */
    m.subject = "RE: printer OFFLINE";
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_SUBJECT, 10);
}

static void test_subject_window(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m = msg_from("acme", "v-1@customer.example", ALICE);
    m.subject = "Re: VPN broken"; /* its ticket was updated 20 days ago */
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);

    struct mr_thread_config month = {SECRET, 32, 30 * DAY};
    d = decide_cfg(f, &month, &m);
    assert_plain(&d, MR_THREAD_SUBJECT, 13);

    struct mr_thread_config off = {SECRET, 32, -1};
    m.subject = "Re: Printer offline";
    d = decide_cfg(f, &off, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
}

static void test_subject_never_admits_strangers(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m = msg_from("acme", "x-1@elsewhere.example", MALLORY);
    m.subject = "Re: Printer offline";
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);

    /* Even a store whose subject_match forgets the requester. */
    f->subject_ignores_requester = true;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
    assert_detail(&d, "subject match refused");

    /* A forward by a colleague is a new ticket (pitfall 13). */
    f->subject_ignores_requester = false;
    m = msg_from("acme", "fwd-1@customer.example", "carl@customer.example");
    m.subject = "Fwd: Printer offline";
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);

    /* A closed ticket is no subject match. */
    m = msg_from("acme", "o-1@d.example", DAVE);
    m.subject = "Re: Old issue";
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
}

/* ---- status rules ----------------------------------------------------------
 */

static void test_reopen(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m = msg_from("acme", "c-1@shop.example", CAROL);
    m.in_reply_to = "inv-1@shop.example";
    struct mr_thread_decision d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_IN_REPLY_TO);
    assert_int_equal(d.ticket_id, 11);
    assert_true(d.reopen);
    assert_false(d.unverified);

    /* An out-of-office reply to a solved ticket leaves it solved. */
    m.auto_kind = MR_AUTO_AUTOREPLY;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_IN_REPLY_TO, 11);

    /* So does a list copy. */
    m.auto_kind = MR_AUTO_LIST;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_IN_REPLY_TO, 11);

    /* The subject fallback reopens as well (the requester wrote). */
    m = msg_from("acme", "c-2@shop.example", CAROL);
    m.subject = "Re: Invoice 2291";
    d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_SUBJECT);
    assert_true(d.reopen);

    /* A new address with a MAC'd token is verified: it reopens. */
    char addr[128];
    token_addr("acme", 1043, addr, sizeof addr);
    const char *rcpt[] = {addr};
    m = msg_from("acme", "c-3@new.example", ZED);
    m.recipients = rcpt;
    m.nrecipients = 1;
    d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_TOKEN);
    assert_true(d.reopen);
    assert_true(d.add_participant);

    /* An auto-reply through a token adds nobody. */
    m.auto_kind = MR_AUTO_AUTOREPLY;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_TOKEN, 11);
}

static void test_closed(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m = msg_from("acme", "o-2@d.example", DAVE);
    m.in_reply_to = "old-1@d.example";
    struct mr_thread_decision d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_NEW);
    assert_int_equal(d.ticket_id, 0);
    assert_int_equal(d.linked_ticket_id, 12);
    assert_false(d.reopen);
    assert_false(d.unverified);
    assert_detail(&d, "closed: new ticket linked");

    /* Through a token as well. */
    char addr[128];
    token_addr("acme", 1044, addr, sizeof addr);
    const char *rcpt[] = {addr};
    m = msg_from("acme", "o-3@d.example", DAVE);
    m.recipients = rcpt;
    m.nrecipients = 1;
    d = decide(f, &m);
    assert_int_equal(d.ticket_id, 0);
    assert_int_equal(d.linked_ticket_id, 12);

    /* A stranger's forged header to a closed ticket: a new ticket of
     * their own, not linked to dave's. */
    m = msg_from("acme", "o-5@elsewhere.example", MALLORY);
    m.in_reply_to = "old-1@d.example";
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
    assert_detail(&d, "closed ticket ignored");

    /* An auto-reply to a closed ticket is attached, nothing more. */
    m = msg_from("acme", "o-4@d.example", DAVE);
    m.in_reply_to = "old-1@d.example";
    m.auto_kind = MR_AUTO_AUTOREPLY;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_IN_REPLY_TO, 12);
    assert_detail(&d, "closed: attached");
}

static void test_bounce(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m =
        msg_from("acme", "dsn-1@mx.customer.example", DAEMON);
    m.auto_kind = MR_AUTO_BOUNCE;
    m.bounce_original_id = "t1042.m9@help.example";
    m.subject = "Undelivered Mail Returned to Sender";
    struct mr_thread_decision d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_IN_REPLY_TO);
    assert_int_equal(d.ticket_id, 10);
    assert_true(d.delivery_failure);
    assert_false(d.reopen);
    assert_false(d.add_participant);
    /* The daemon is no participant: the note is flagged, as any
     * unauthenticated claim about a ticket is. */
    assert_true(d.unverified);
    assert_detail(&d, "bounce reports <t1042.m9@help.example>");

    /* A bounce of a solved ticket's message does not reopen it. */
    m.bounce_original_id = "inv-1@shop.example";
    d = decide(f, &m);
    assert_int_equal(d.ticket_id, 11);
    assert_true(d.delivery_failure);
    assert_false(d.reopen);

    /* A bounce of a closed ticket's message is attached to it. */
    m.bounce_original_id = "old-1@d.example";
    d = decide(f, &m);
    assert_int_equal(d.ticket_id, 12);
    assert_int_equal(d.linked_ticket_id, 0);
    assert_true(d.delivery_failure);

    /* A bounce to a token return path is verified by the MAC. */
    char addr[128];
    token_addr("acme", 1042, addr, sizeof addr);
    const char *rcpt[] = {addr};
    m.bounce_original_id = NULL;
    m.recipients = rcpt;
    m.nrecipients = 1;
    d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_TOKEN);
    assert_int_equal(d.ticket_id, 10);
    assert_true(d.delivery_failure);
    assert_false(d.unverified);
    assert_false(d.add_participant);
}

static void test_bounce_orphan(void **state)
{
    struct fake *f = *state;
    /* The reported message is unknown: never a ticket, never by subject,
     * even when From and Subject would match one. */
    struct mr_thread_msg m =
        msg_from("acme", "dsn-2@mx.customer.example", ALICE);
    m.auto_kind = MR_AUTO_BOUNCE;
    m.bounce_original_id = "never-sent@help.example";
    m.subject = "Re: Printer offline";
    struct mr_thread_decision d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_NEW);
    assert_int_equal(d.ticket_id, 0);
    assert_true(d.delivery_failure);
    assert_detail(&d, "orphan");

    /* Without any original id, the bounce's own headers still count. */
    m.bounce_original_id = NULL;
    m.in_reply_to = "orig-1@customer.example";
    d = decide(f, &m);
    assert_int_equal(d.by, MR_THREAD_IN_REPLY_TO);
    assert_int_equal(d.ticket_id, 10);
    assert_true(d.delivery_failure);
}

static void test_list(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m = msg_from("acme", "l-1@customer.example", ALICE);
    m.auto_kind = MR_AUTO_LIST;
    m.in_reply_to = "orig-1@customer.example";
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_IN_REPLY_TO, 10);
    m.in_reply_to = NULL;
    m.subject = "Re: [support-list] Printer offline";
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_SUBJECT, 10);
}

/* ---- tenants and errors ----------------------------------------------------
 */

static void test_tenant_isolation(void **state)
{
    struct fake *f = *state;
    /* The same Message-ID in the other tenant is its own duplicate. */
    struct mr_thread_msg m =
        msg_from("other", "orig-1@customer.example", ALICE);
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_DUPLICATE, 20);

    /* Subject and number match only within the tenant. */
    m = msg_from("other", "o-5@customer.example", ALICE);
    m.subject = "Re: Printer offline [#1042]";
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_TOKEN, 20);
    m.subject = "Re: Invoice 2291";
    m.from = CAROL;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);

    /* A forged In-Reply-To naming another tenant's message: not joined. */
    m = msg_from("acme", "x-2@elsewhere.example", MALLORY);
    m.in_reply_to = "secret-1@other.example";
    const char *refs[] = {"secret-1@other.example"};
    m.references = refs;
    m.nreferences = 1;
    d = decide(f, &m);
    assert_plain(&d, MR_THREAD_NEW, 0);
}

static void test_lookup_errors(void **state)
{
    struct fake *f = *state;
    const enum fk_fail fails[] = {FAIL_EXISTS,  FAIL_OF_ID,
                                  FAIL_BY_ID,   FAIL_PARTICIPANT,
                                  FAIL_SUBJECT, FAIL_BY_NUMBER};
    const char *names[] = {"message_exists", "ticket_of_message_id",
                           "ticket_by_id",   "is_participant",
                           "subject_match",  "ticket_by_number"};
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        struct mr_thread_msg m =
            msg_from("acme", "e-1@customer.example", ALICE);
        if (fails[i] == FAIL_SUBJECT)
            m.subject = "Printer offline";
        else if (fails[i] == FAIL_BY_NUMBER)
            m.subject = "[#1042]";
        else
            m.in_reply_to = "orig-1@customer.example";
        f->fail = fails[i];
        struct mr_thread_decision d;
        struct mr_error err = {0, ""};
        int rc = mr_thread_decide(&CFG, &f->lk, &m, &d, &err);
        assert_int_equal(rc, MR_EIO);
        assert_int_equal(err.code, MR_EIO);
        if (strstr(err.msg, names[i]) == NULL)
            fail_msg("error \"%s\" lacks %s", err.msg, names[i]);
        /* Nothing half-decided is left. */
        assert_int_equal(d.ticket_id, 0);
        assert_int_equal(d.by, MR_THREAD_NEW);
        assert_false(d.unverified || d.reopen || d.add_participant);
    }
    f->fail = FAIL_NONE;
}

static void test_invalid_arguments(void **state)
{
    struct fake *f = *state;
    struct mr_thread_msg m = msg_from("acme", "i-1@x.example", ALICE);
    struct mr_thread_decision d;
    struct mr_error err = {0, ""};
    assert_int_equal(mr_thread_decide(&CFG, &f->lk, NULL, &d, &err), MR_EINVAL);
    assert_int_equal(mr_thread_decide(NULL, &f->lk, &m, &d, &err), MR_EINVAL);
    assert_int_equal(mr_thread_decide(&CFG, &f->lk, &m, NULL, NULL), MR_EINVAL);
    m.tenant = "";
    assert_int_equal(mr_thread_decide(&CFG, &f->lk, &m, &d, &err), MR_EINVAL);
    m.tenant = "acme";
    struct mr_thread_lookup lk = f->lk;
    lk.message_exists = NULL;
    assert_int_equal(mr_thread_decide(&CFG, &lk, &m, &d, &err), MR_EINVAL);
    assert_int_equal(err.code, MR_EINVAL);
}

/* ---- tokens ----------------------------------------------------------------
 */

static void test_token_roundtrip(void **state)
{
    (void)state;
    const int64_t numbers[] = {1, 42, 1042, 999999999999999999LL};
    for (size_t i = 0; i < 4; i++) {
        char tok[MR_THREAD_TOKEN_MAX], addr[128];
        int64_t got = 0;
        mr_thread_token(&CFG, "acme", numbers[i], tok, sizeof tok);
        assert_true(tok[0] == 't');
        const char *dot = strchr(tok, '.');
        assert_non_null(dot);
        assert_int_equal(strlen(dot + 1), 10);
        for (const char *p = dot + 1; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7'));
        snprintf(addr, sizeof addr, "support+%s@help.example", tok);
        assert_int_equal(mr_thread_token_parse(&CFG, "acme", addr, &got), 0);
        assert_true(got == numbers[i]);

        /* The same for another tenant or secret differs. */
        char other[MR_THREAD_TOKEN_MAX];
        mr_thread_token(&CFG, "other", numbers[i], other, sizeof other);
        assert_string_not_equal(tok, other);
        assert_int_equal(mr_thread_token_parse(&CFG, "other", addr, &got),
                         MR_ENOTFOUND);
        const unsigned char s2[] = "fedcba9876543210fedcba9876543210";
        struct mr_thread_config cfg2 = {s2, 32, 0};
        assert_int_equal(mr_thread_token_parse(&cfg2, "acme", addr, &got),
                         MR_ENOTFOUND);

        /* Upper case (an MTA that folds local parts) still verifies. */
        char upper[128];
        snprintf(upper, sizeof upper, "%s", addr);
        for (char *p = upper; *p && *p != '@'; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 32);
        assert_int_equal(mr_thread_token_parse(&CFG, "acme", upper, &got), 0);
        assert_true(got == numbers[i]);
    }
}

/* The token's MAC is HMAC-SHA256(secret, tenant "\0" number), the first
 * 50 bits in lower-case base32: vectors computed with Python's hmac and
 * base64 modules, so the outbound side and other tools can agree. */
static void test_token_known_answers(void **state)
{
    (void)state;
    const struct {
        const char *tenant;
        int64_t number;
        const char *token;
    } kat[] = {
        {"acme", 1042, "t1042.r3ykjk4xzf"},
        {"acme", 1, "t1.vzxsfxquvp"},
        {"other", 1042, "t1042.nqfxuuckur"},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        char tok[MR_THREAD_TOKEN_MAX];
        mr_thread_token(&CFG, kat[i].tenant, kat[i].number, tok, sizeof tok);
        assert_string_equal(tok, kat[i].token);
    }
}

static void test_token_tamper(void **state)
{
    (void)state;
    char tok[MR_THREAD_TOKEN_MAX], addr[128], t2[128];
    int64_t got;
    mr_thread_token(&CFG, "acme", 1042, tok, sizeof tok);
    snprintf(addr, sizeof addr, "support+%s@help.example", tok);
    char *mac = strchr(addr, '.') + 1;
    /* Every mac character, changed to every other base32 character. */
    for (size_t i = 0; i < 10; i++) {
        const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
        char keep = mac[i];
        for (const char *c = b32; *c; c++) {
            if (*c == keep)
                continue;
            mac[i] = *c;
            assert_int_equal(mr_thread_token_parse(&CFG, "acme", addr, &got),
                             MR_ENOTFOUND);
        }
        mac[i] = keep;
    }
    assert_int_equal(mr_thread_token_parse(&CFG, "acme", addr, &got), 0);

    const char *macs = strchr(tok, '.') + 1;
    /* Each case: what goes before the mac, and after it. */
    const char *bad[][2] = {
        {"support+t1043.", "@help.example"},  /* another number */
        {"support+t01042.", "@help.example"}, /* not the canonical spelling */
        {"support+t1042", "@help.example"},   /* no dot */
        {"support+x1042.", "@help.example"},  /* no t */
        {"support+t1042.", "a@help.example"}, /* mac too long */
        {"support@help+t1042.", ""},          /* after the @ */
        {"support-t1042.", "@help.example"},  /* no + */
        {"support+t.", "@help.example"},      /* no number */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(t2, sizeof t2, "%s%s%s", bad[i][0], macs, bad[i][1]);
        if (mr_thread_token_parse(&CFG, "acme", t2, &got) != MR_ENOTFOUND)
            fail_msg("accepted %s", t2);
    }
    snprintf(t2, sizeof t2, "support+t1042.%.9s@help.example", macs);
    assert_int_equal(mr_thread_token_parse(&CFG, "acme", t2, &got),
                     MR_ENOTFOUND);
    /* Stacked sub-addresses: the token may be any segment. */
    snprintf(t2, sizeof t2, "support+billing+%s+x@help.example", tok);
    assert_int_equal(mr_thread_token_parse(&CFG, "acme", t2, &got), 0);
    assert_true(got == 1042);
    /* Without an @ the whole string is the local part. */
    snprintf(t2, sizeof t2, "support+%s", tok);
    assert_int_equal(mr_thread_token_parse(&CFG, "acme", t2, &got), 0);

    /* Over-long addresses are not ours. */
    char huge[600];
    memset(huge, 'a', sizeof huge);
    snprintf(huge + 500, 100, "+%s@help.example", tok);
    assert_int_equal(mr_thread_token_parse(&CFG, "acme", huge, &got),
                     MR_ENOTFOUND);

    /* Bad arguments. */
    assert_int_equal(mr_thread_token_parse(&CFG, "acme", NULL, &got),
                     MR_ENOTFOUND);
    assert_int_equal(mr_thread_token_parse(NULL, "acme", addr, &got),
                     MR_ENOTFOUND);
}

static void test_token_limits(void **state)
{
    (void)state;
    char tok[MR_THREAD_TOKEN_MAX];
    int64_t got;
    /* A short secret makes no token and accepts none. */
    struct mr_thread_config weak = {SECRET, MR_THREAD_SECRET_MIN - 1, 0};
    struct mr_thread_config none = {NULL, 0, 0};
    mr_thread_token(&weak, "acme", 1042, tok, sizeof tok);
    assert_string_equal(tok, "");
    mr_thread_token(&none, "acme", 1042, tok, sizeof tok);
    assert_string_equal(tok, "");
    char addr[128];
    token_addr("acme", 1042, addr, sizeof addr);
    assert_int_equal(mr_thread_token_parse(&weak, "acme", addr, &got),
                     MR_ENOTFOUND);
    assert_int_equal(mr_thread_token_parse(&none, "acme", addr, &got),
                     MR_ENOTFOUND);
    /* Numbers out of range, a cap too small. */
    mr_thread_token(&CFG, "acme", 0, tok, sizeof tok);
    assert_string_equal(tok, "");
    mr_thread_token(&CFG, "acme", -5, tok, sizeof tok);
    assert_string_equal(tok, "");
    mr_thread_token(&CFG, "acme", 1042, tok, 10);
    assert_string_equal(tok, "");
    char tag[MR_THREAD_TOKEN_MAX + 2];
    mr_thread_subject_tag(&CFG, "acme", 1042, tag, sizeof tag);
    mr_thread_token(&CFG, "acme", 1042, tok, sizeof tok);
    /* The tag carries the token's mac. */
    char want[64];
    snprintf(want, sizeof want, "[#1042-%s]", strchr(tok, '.') + 1);
    assert_string_equal(tag, want);
}

/* ---- subject normalization -------------------------------------------------
 */

struct subj_case {
    const char *in, *want;
};

static const struct subj_case *subject_table(size_t *n_r);

static void test_normalize_table(void **state)
{
    (void)state;
    size_t n;
    const struct subj_case *c = subject_table(&n);
    int failed = 0;
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        char out[MR_THREAD_SUBJECT_MAX];
        memset(out, 'X', sizeof out);
        mr_thread_normalize_subject(c[i].in, out, sizeof out);
        if (strcmp(out, c[i].want) != 0) {
            print_error("case %zu \"%s\": got \"%s\" want \"%s\"\n", i, c[i].in,
                        out, c[i].want);
            failed++;
        }
        assert_true(mr_utf8_valid(out, strlen(out)));
    }
    assert_int_equal(failed, 0);
}

static void test_normalize_hostile(void **state)
{
    (void)state;
    enum { BIG = 64 * 1024 };
    char out[MR_THREAD_SUBJECT_MAX];
    struct mr_buf b;

    /* 64 KiB of "Re: ": nothing left, in linear time. */
    mr_buf_init(&b, 0);
    for (int i = 0; i < BIG / 4; i++)
        mr_buf_puts(&b, "Re: ");
    mr_thread_normalize_subject(b.p, out, sizeof out);
    assert_string_equal(out, "");
    mr_buf_puts(&b, "x");
    mr_thread_normalize_subject(b.p, out, sizeof out);
    assert_string_equal(out, "x");

    /* Tags, brackets, markers without colons: bounded output. */
    const char *units[] = {"[a]",    "[",        "Re ",
                           "[#1",    "\xc2\xa0", "(fwd)",
                           "[Fwd: ", "Re[2]",    "\xe5\x9b\x9e"};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        mr_buf_reset(&b);
        while (b.len < BIG)
            mr_buf_puts(&b, units[u]);
        mr_thread_normalize_subject(b.p, out, sizeof out);
        assert_true(strlen(out) < sizeof out);
        assert_true(mr_utf8_valid(out, strlen(out)));
    }
    mr_buf_release(&b);

    /* Small caps cut on a character boundary. */
    char small[6];
    mr_thread_normalize_subject("Re: Grüße", small, sizeof small);
    assert_string_equal(small, "grü");
    mr_thread_normalize_subject("Re: Grüße", small, 1);
    assert_string_equal(small, "");
    mr_thread_normalize_subject(NULL, small, sizeof small);
    assert_string_equal(small, "");
    /* cap 0 writes nothing. */
    small[0] = 'k';
    mr_thread_normalize_subject("x", small, 0);
    assert_int_equal(small[0], 'k');
}

/* A long subject's detail stays valid UTF-8 when it is cut. */
static void test_detail_utf8(void **state)
{
    struct fake *f = *state;
    static char subj[600];
    size_t o = 0;
    o += (size_t)snprintf(subj, sizeof subj, "Re: ");
    while (o + 3 < sizeof subj) {
        memcpy(subj + o, "\xe6\x89\x93", 3); /* 打 */
        o += 3;
    }
    subj[o] = '\0';
    f->tickets[0].subject = subj + 4;
    struct mr_thread_msg m = msg_from("acme", "u-1@customer.example", ALICE);
    m.subject = subj;
    struct mr_thread_decision d = decide(f, &m);
    assert_plain(&d, MR_THREAD_SUBJECT, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_name),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_new),
        T(test_duplicate),
        T(test_empty_id_never_matches),
        T(test_parent_after_reply),
        T(test_in_reply_to),
        T(test_reply_all_colleague),
        T(test_forged_in_reply_to),
        T(test_references_newest_first),
        T(test_references_bounded),
        T(test_token_recipient),
        T(test_token_refused),
        T(test_subject_tag),
        T(test_subject_fallback),
        T(test_subject_window),
        T(test_subject_never_admits_strangers),
        T(test_reopen),
        T(test_closed),
        T(test_bounce),
        T(test_bounce_orphan),
        T(test_list),
        T(test_tenant_isolation),
        T(test_lookup_errors),
        T(test_invalid_arguments),
        T(test_detail_utf8),
#undef T
        cmocka_unit_test(test_token_roundtrip),
        cmocka_unit_test(test_token_known_answers),
        cmocka_unit_test(test_token_tamper),
        cmocka_unit_test(test_token_limits),
        cmocka_unit_test(test_normalize_table),
        cmocka_unit_test(test_normalize_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* ---- the subject table -----------------------------------------------------
 */

static const struct subj_case subjects[] = {
    {"Printer offline", "printer offline"},
    {"Re: Printer offline", "printer offline"},
    {"RE: Printer offline", "printer offline"},
    {"re: printer offline", "printer offline"},
    {"Re: Re: Re: Printer offline", "printer offline"},
    {"Re:Re:Printer offline", "printer offline"},
    {"Re:x", "x"},
    {"Re[2]: Printer offline", "printer offline"},
    {"Re(3): Printer offline", "printer offline"},
    {"Re*2: Printer offline", "printer offline"},
    {"Re [2]: Printer offline", "printer offline"},
    {"RE : Printer offline", "printer offline"},
    {"RE\xc2\xa0: Printer offline", "printer offline"},
    {"Re\xef\xbc\x9aPrinter offline", "printer offline"},
    {"Fwd: Printer offline", "printer offline"},
    {"FW: Printer offline", "printer offline"},
    {"Fw: Printer offline", "printer offline"},
    {"FWD: Printer offline", "printer offline"},
    {"Fwd: Re: AW: x", "x"},
    /* German, Nordic, French, Italian, Polish, Dutch, Portuguese */
    {"AW: Drucker offline", "drucker offline"},
    {"WG: Drucker offline", "drucker offline"},
    /* research/pitfalls.md 6b, with an NBSP before the last colon */
    {"AW: WG: [EXTERNAL] Re[2]: RE\xc2\xa0: Drucker offline",
     "drucker offline"},
    {"AW: WG: [EXTERNAL] Re[2]: RE : Drucker offline", "drucker offline"},
    {"SV: Skrivaren", "skrivaren"},
    {"VS: Tulostin", "tulostin"},
    {"TR: Imprimante", "imprimante"},
    {"Réf : Imprimante", "imprimante"},
    {"RÉF: Imprimante", "imprimante"},
    {"RIF: Stampante", "stampante"},
    {"R: Stampante", "stampante"},
    {"ODP: Drukarka", "drukarka"},
    {"Antw: Printer", "printer"},
    {"ENC: Impressora", "impressora"},
    {"RES: Impressora", "impressora"},
    {"WG: RE: AW: SV: VS: TR: RIF: ODP: ANTW: FWD: x", "x"},
    /* CJK, with ASCII and fullwidth colons */
    {"回复：打印机离线", "打印机离线"},
    {"答复: 打印机离线", "打印机离线"},
    {"转发：打印机离线", "打印机离线"},
    {"回覆：印表機離線", "印表機離線"},
    {"轉寄: 印表機離線", "印表機離線"},
    {"RE：回复：转发：价格", "价格"},
    {"【外部】Re: 打印机", "打印机"},
    /* auto-replies */
    {"Automatic reply: Printer offline", "printer offline"},
    {"Out of Office: Printer offline", "printer offline"},
    {"Out of Office AutoReply: Printer offline", "printer offline"},
    {"Automatic reply: Re: Printer offline [#1042]", "printer offline"},
    {"Re: Out of Office", "out of office"},
    /* not markers */
    {"Error: disk full", "error: disk full"},
    {"OT: lunch", "ot: lunch"},
    {"Re: Error: disk full", "error: disk full"},
    {"Rep: something", "rep: something"},
    {"Regarding: x", "regarding: x"},
    {"ReRe: x", "rere: x"},
    {"Ticket #1042: update", "ticket #1042: update"},
    /* tags */
    {"[EXTERNAL] Printer offline", "printer offline"},
    {"[support-list] Re: Printer offline", "printer offline"},
    {"Re: [support-list] Printer offline", "printer offline"},
    {"Re: Fwd: [list][EXTERNAL] x", "x"},
    {"Printer offline [#1042]", "printer offline"},
    {"Re: Printer [#1042] offline", "printer offline"},
    {"RE: Printer offline [#1042-abcdefghij]", "printer offline"},
    {"[#1042] Re: Printer offline", "printer offline"},
    {"Re: Printer [HP] offline", "printer [hp] offline"},
    {"Re: [] x", "[] x"},
    {"Re: Printer (HP 4050) offline", "printer (hp 4050) offline"},
    /* old-style forwards */
    {"[Fwd: Printer offline]", "printer offline"},
    {"Printer offline (fwd)", "printer offline"},
    {"[Fwd: a] b [c]", "b [c]"},
    /* white space and case */
    {"   Printer    \t offline   ", "printer offline"},
    {"Printer\xc2\xa0\xc2\xa0offline", "printer offline"},
    {"Re: Grüße aus München", "grüße aus münchen"},
    {"Re:", ""},
    {"Re: Re: ", ""},
    {"Re:    ", ""},
    {"", ""},
};

static const struct subj_case *subject_table(size_t *n_r)
{
    *n_r = sizeof subjects / sizeof subjects[0];
    return subjects;
}
