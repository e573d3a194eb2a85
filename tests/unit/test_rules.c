/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the rules engine (src/ticket/rules*.c, src/util/tz.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ticket/casefold_table.h"
#include "ticket/rules-private.h"
#include "ticket/rules.h"
#include "ticket/rules_slot.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/tz.h"

static const char *data_dir(void)
{
    const char *d = getenv("MR_TEST_DATA");
    return d ? d : "tests/data";
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct mr_buf b;
    mr_buf_init(&b, 0);
    char tmp[4096];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
        mr_buf_append(&b, tmp, k);
    fclose(f);
    return mr_buf_detach(&b, n);
}

static struct mr_rules_options opts(void)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/rules/zoneinfo", data_dir());
    return (struct mr_rules_options){.zoneinfo_dir = dir};
}

static struct mr_rules *load(const char *yaml)
{
    struct mr_rules *rs = NULL;
    struct mr_config_diags d;
    struct mr_error err = {0};
    struct mr_rules_options o = opts();
    int rc = mr_rules_load(yaml, strlen(yaml), "t.yaml", &o, &rs, &d, &err);
    if (rc != 0) {
        for (size_t i = 0; i < d.n; i++)
            fprintf(stderr, "%d:%d: %s\n", d.items[i].line, d.items[i].column,
                    d.items[i].msg);
    }
    assert_int_equal(rc, 0);
    mr_config_diags_free(&d);
    return rs;
}

/* Loads a file that must fail; returns its diagnostics. */
static struct mr_config_diags load_bad(const char *yaml)
{
    struct mr_rules *rs = NULL;
    struct mr_config_diags d;
    struct mr_error err = {0};
    struct mr_rules_options o = opts();
    assert_int_equal(
        mr_rules_load(yaml, strlen(yaml), "t.yaml", &o, &rs, &d, &err),
        MR_EINVAL);
    assert_null(rs);
    assert_true(d.n > 0);
    assert_non_null(strstr(err.msg, "t.yaml:"));
    return d;
}

static bool has_diag(const struct mr_config_diags *d, int line, int col,
                     const char *sub)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->items[i].line == line && d->items[i].column == col &&
            strstr(d->items[i].msg, sub))
            return true;
    return false;
}

/* A message with every field at a neutral value. */
static struct mr_rules_msg msg(void)
{
    return (struct mr_rules_msg){
        .tenant = "t",
        .from = "someone@example.org",
        .subject = "Hello",
        .text = "Just a question.",
        .is_new = true,
        .received_at = 1743413400000LL, /* 2025-03-31T09:30:00Z, Monday */
        .size = 2000,
    };
}

struct run {
    struct mr_rules_scratch *s;
    struct mr_rules_result r;
};

static void run_init(struct run *x)
{
    x->s = mr_rules_scratch_new();
    mr_rules_result_init(&x->r);
}

static void run_free(struct run *x)
{
    mr_rules_scratch_free(&x->s);
    mr_rules_result_release(&x->r);
}

static const struct mr_rules_result *eval(struct run *x,
                                          const struct mr_rules *rs,
                                          const struct mr_rules_msg *m)
{
    struct mr_error err = {0};
    assert_int_equal(mr_rules_eval(rs, NULL, m, x->s, &x->r, &err), 0);
    return &x->r;
}

static bool matched(const struct mr_rules_result *r, const char *name)
{
    for (size_t i = 0; i < r->nmatched; i++)
        if (strcmp(r->matched[i], name) == 0)
            return true;
    return false;
}

static bool decided(const struct mr_rules_result *r, const char *rule,
                    const char *decision)
{
    for (size_t i = 0; i < r->ndecisions; i++)
        if (strcmp(r->decisions[i].rule, rule) == 0 &&
            strcmp(r->decisions[i].decision, decision) == 0)
            return true;
    return false;
}

/* Rules file with one tenant "t" and one rule "R" with condition cond. */
static struct mr_rules *one_rule(const char *settings, const char *cond)
{
    char y[4096];
    snprintf(y, sizeof y,
             "%s\ntenants:\n  t:\n    - name: R\n      if:\n%s\n"
             "      then: {add_tags: hit}\n",
             settings ? settings : "", cond);
    return load(y);
}

static bool hits(const struct mr_rules *rs, const struct mr_rules_msg *m)
{
    struct run x;
    run_init(&x);
    bool hit = matched(eval(&x, rs, m), "R");
    if (hit)
        assert_true(decided(&x.r, "R", "tag+=hit"));
    run_free(&x);
    return hit;
}

/* ---- the example and the docs ---- */

static void example_loads_and_docs_embed_it(void **state)
{
    (void)state;
    char path[4096];
    size_t n, nd;
    snprintf(path, sizeof path, "%s/rules/example.yaml", data_dir());
    char *ex = read_all(path, &n);
    assert_non_null(ex);
    struct mr_rules *rs = load(ex);
    assert_int_equal(mr_rules_tenant_count(rs), 2);
    assert_true(mr_rules_count(rs, "acme") > 10);
    mr_rules_free(&rs);

    snprintf(path, sizeof path, "%s/../../docs/rules.md", data_dir());
    char *doc = read_all(path, &nd);
    assert_non_null(doc);
    const char *mark = "<!-- tests/data/rules/example.yaml -->\n```yaml\n";
    const char *start = strstr(doc, mark);
    assert_non_null(start);
    start += strlen(mark);
    const char *end = strstr(start, "\n```\n");
    assert_non_null(end);
    assert_int_equal((size_t)(end + 1 - start), n);
    assert_memory_equal(start, ex, n);
    free(ex);
    free(doc);
}

/* ---- recipients and senders ---- */

static void mailbox_conditions(void **state)
{
    (void)state;
    const char *to[] = {"Help+Billing@Acme.Example", "other@x.example"};
    const char *env[] = {"sec@acme.example"};
    struct mr_rules_msg m = msg();
    m.recipients = to;
    m.nrecipients = 2;
    m.rcpt_to = env;
    m.nrcpt_to = 1;

    struct mr_rules *rs = one_rule(NULL, "        mailbox: help@acme.example");
    assert_true(hits(rs, &m)); /* +tag removed, case folded */
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        mailbox: help+billing@acme.example");
    assert_true(hits(rs, &m)); /* or the whole address */
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        mailbox: \"*@acme.example\"");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        mailbox: [nobody@acme.example, \"h*p@a*\"]");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        mailbox: billing@acme.example");
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        mailbox: sec@acme.example");
    assert_true(hits(rs, &m)); /* envelope recipients count as mailboxes */
    mr_rules_free(&rs);

    rs = one_rule(NULL, "        mailbox_tag: billing");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        mailbox_tag: \"bill*\"");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        mailbox_tag: sales");
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);

    rs = one_rule(NULL, "        envelope_recipient: sec@acme.example");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        envelope_recipient: other@x.example");
    assert_false(hits(rs, &m)); /* To: is not the envelope */
    mr_rules_free(&rs);
}

static void sender_conditions(void **state)
{
    (void)state;
    struct mr_rules_msg m = msg();
    m.from = "Jane.Doe@Mail.Enterprise.Example";
    struct mr_rules *rs = one_rule(NULL, "        from: jane.doe@mail.enterprise.example");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        from_domain: enterprise.example");
    assert_false(hits(rs, &m)); /* exact domain */
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        from_domain: [enterprise.example, \"*.enterprise.example\"]");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    m.from = NULL;
    rs = one_rule(NULL, "        from: \"*\"");
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);

    /* The worker counts a sender's tickets only for rules that ask. */
    rs = one_rule(NULL, "        from: \"*\"");
    assert_false(mr_rules_uses_previous_tickets(rs));
    mr_rules_free(&rs);
    m = msg();
    m.previous_tickets = 3;
    rs = one_rule(NULL, "        previous_tickets: {min: 3}");
    assert_true(mr_rules_uses_previous_tickets(rs));
    assert_true(hits(rs, &m));
    m.previous_tickets = 2;
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        previous_tickets: 0");
    assert_false(hits(rs, &m));
    m.previous_tickets = 0;
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
}

/* ---- text ---- */

static void contains_folds_unicode_case(void **state)
{
    (void)state;
    struct mr_rules_msg m = msg();
    struct mr_rules *rs = one_rule(NULL, "        subject: {contains: ürgent}");
    m.subject = "ÜRGENT: server down";
    assert_true(hits(rs, &m));
    m.subject = "URGENT: no umlaut";
    assert_false(hits(rs, &m)); /* folding is not accent stripping */
    mr_rules_free(&rs);

    /* Full folding: ß = ss, ẞ (capital sharp s) = ß. */
    rs = one_rule(NULL, "        text: {contains: straße}");
    m.text = "Adresse: HAUPTSTRASSE 1";
    assert_true(hits(rs, &m));
    m.text = "HAUPTSTRAẞE 1";
    assert_true(hits(rs, &m));
    m.text = "Hauptstrase";
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);

    /* Greek: final sigma folds to sigma. */
    rs = one_rule(NULL, "        text: {contains: λόγος}");
    m.text = "ΛΌΓΟΣ";
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);

    /* ASCII needles, any of a list, a missing field never matches. */
    rs = one_rule(NULL, "        stripped_text: {contains: [refund, \"MONEY BACK\"]}");
    m.stripped_text = "I want my Money Back now";
    assert_true(hits(rs, &m));
    m.stripped_text = NULL;
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);
    /* A plain value is `contains`. */
    rs = one_rule(NULL, "        subject: Dringend");
    m.subject = "DRINGEND bitte";
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
}

static void regex_and_extractors(void **state)
{
    (void)state;
    struct mr_rules *rs = load(
        "tenants:\n"
        "  t:\n"
        "    - name: Inv\n"
        "      if:\n"
        "        subject: {regex: '(INV-[0-9]{4})', extract: invoice}\n"
        "        text: {contains: pay}\n"
        "      then:\n"
        "        set_field: {copy: {from: invoice}, lit: x}\n"
        "    - name: Later\n"
        "      if: {subject: {regex: '(?i)^re:'}}\n"
        "      then:\n"
        "        set_field: {again: {from: invoice}}\n");
    struct run x;
    run_init(&x);
    struct mr_rules_msg m = msg();
    m.subject = "Re: INV-1234 and INV-9999";
    m.text = "please pay";
    const struct mr_rules_result *r = eval(&x, rs, &m);
    assert_true(decided(r, "Inv", "field.invoice=INV-1234"));
    assert_true(decided(r, "Inv", "field.copy=INV-1234"));
    assert_true(decided(r, "Inv", "field.lit=x"));
    assert_true(decided(r, "Later", "field.again=INV-1234"));
    assert_int_equal(r->nfields, 4);
    assert_string_equal(r->fields[0].name, "invoice");
    assert_string_equal(r->fields[0].value, "INV-1234");

    /* The regex matched but the rule did not: nothing is captured. */
    m.text = "no money word";
    r = eval(&x, rs, &m);
    assert_false(matched(r, "Inv"));
    assert_true(matched(r, "Later"));
    assert_true(decided(r, "Later",
                        "note=set_field skipped: its extractor matched "
                        "nothing"));
    assert_int_equal(r->nfields, 0);
    run_free(&x);
    mr_rules_free(&rs);
}

/* The leading-literal shortcut must never turn a match into a miss. */
static void regex_literal_prefilter(void **state)
{
    (void)state;
    struct mr_rules_msg m = msg();
    struct mr_rules *rs = one_rule(NULL, "        text: {regex: '(?i)\\binvoice no\\.? *([0-9]+)'}");
    m.text = "see INVOICE NO. 123";
    assert_true(hits(rs, &m));
    m.text = "see invoice 123";
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        subject: {regex: 'Foo-Bar'}");
    m.subject = "x Foo-Bar";
    assert_true(hits(rs, &m));
    m.subject = "x foo-bar"; /* case-sensitive without (?i) */
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        subject: {regex: '(?i)colou?r'}");
    m.subject = "COLOR"; /* the quantified 'u' is not required */
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        subject: {regex: 'abc|xyz'}");
    m.subject = "xyz"; /* top-level alternation: no shortcut */
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    /* PCRE2's caseless 'k' also matches the Kelvin sign (U+212A). */
    rs = one_rule(NULL, "        subject: {regex: '(?i)kelvin'}");
    m.subject = "\xe2\x84\xaa" "ELVIN";
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    struct mr_rules_header hs[] = {{"x-mailer", "Microsoft OUTLOOK 16.0"},
                                   {"x-agent", "\xe2\x84\xaa" "mail"}};
    m = msg();
    m.headers = hs;
    m.nheaders = 2;
    rs = one_rule(NULL, "        header: {name: X-Mailer, matches: '(?i)outlook 16'}");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        header: {name: X-Agent, matches: '(?i)kmail'}");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
}

static void catastrophic_regex_hits_the_limit(void **state)
{
    (void)state;
    struct mr_rules *rs = load("regex_match_limit: 10000\n"
                               "tenants:\n"
                               "  t:\n"
                               "    - name: Bad\n"
                               "      if: {text: {regex: '(a+)+$'}}\n"
                               "      then: {queue: never}\n");
    char text[64];
    memset(text, 'a', 40);
    text[40] = 'b';
    text[41] = '\0';
    struct mr_rules_msg m = msg();
    m.text = text;
    struct run x;
    run_init(&x);
    const struct mr_rules_result *r = eval(&x, rs, &m);
    assert_false(matched(r, "Bad"));
    assert_null(r->queue);
    assert_int_equal(r->ndecisions, 1);
    assert_non_null(strstr(r->decisions[0].decision, "hit the regex match "
                                                     "limit"));
    assert_non_null(strstr(r->decisions[0].decision, "5:26")); /* its place */
    /* And a subject that matches quickly still matches. */
    memset(text, 'a', 40);
    text[40] = '\0';
    r = eval(&x, rs, &m);
    assert_true(matched(r, "Bad"));
    run_free(&x);
    mr_rules_free(&rs);
}

/* ---- headers, auth, auto ---- */

static void header_conditions(void **state)
{
    (void)state;
    struct mr_rules_header hs[] = {{"x-priority", " 1 (Highest) "},
                                   {"received", "from a"},
                                   {"received", "from b"}};
    struct mr_rules_msg m = msg();
    m.headers = hs;
    m.nheaders = 3;
    struct mr_rules *rs =
        one_rule(NULL, "        header: {name: X-Priority, present: true}");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        header: {name: X-Spam, present: false}");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        header: {name: x-priority, equals: \"1 (highest)\"}");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        header: {name: x-priority, equals: \"1\"}");
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        header: {name: Received, matches: '^from b$'}");
    assert_true(hits(rs, &m)); /* any value of a repeated field */
    mr_rules_free(&rs);
}

static const char *const AUTH_SETTINGS = "trusted_authserv_id: mx.example.com";

static void auth_reads_the_topmost_trusted_header(void **state)
{
    (void)state;
    struct mr_rules *rs =
        one_rule(AUTH_SETTINGS, "        auth: {dmarc: pass, spf: pass}");
    struct mr_rules_msg m = msg();
    /* Our MX prepended the top one (fail); the sender forged a pass
     * further down with the same authserv-id: it is never read. */
    struct mr_rules_header forged[] = {
        {"authentication-results",
         "other.example; dmarc=pass; spf=pass"},
        {"authentication-results",
         "MX.example.com (comment; dmarc=pass); spf=fail "
         "smtp.mailfrom=x.example; dmarc=fail header.from=x.example"},
        {"authentication-results",
         "mx.example.com; spf=pass; dkim=pass; dmarc=pass"},
    };
    m.headers = forged;
    m.nheaders = 3;
    assert_false(hits(rs, &m));
    /* The genuine pass. */
    struct mr_rules_header good[] = {
        {"authentication-results",
         "mx.example.com 1; spf=pass smtp.mailfrom=x.example;\r\n"
         " dkim=fail header.d=x.example; dkim=pass header.d=x.example;"
         " dmarc=pass (p=reject) header.from=x.example"},
    };
    m.headers = good;
    m.nheaders = 1;
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(AUTH_SETTINGS, "        auth: {dkim: pass}");
    assert_true(hits(rs, &m)); /* one passing signature is enough */
    mr_rules_free(&rs);
    /* No trusted header at all: every method is "none". */
    rs = one_rule(AUTH_SETTINGS, "        auth: {dmarc: none}");
    m.nheaders = 0;
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);

    struct mr_config_diags d = load_bad(
        "tenants:\n  t:\n    - name: R\n      if: {auth: {dmarc: pass}}\n"
        "      then: {queue: q}\n");
    assert_true(has_diag(&d, 4, 12, "trusted_authserv_id"));
    mr_config_diags_free(&d);
}

static void auto_attachment_size_new(void **state)
{
    (void)state;
    struct mr_rules_msg m = msg();
    struct mr_rules *rs = one_rule(NULL, "        auto: [bounce, list]");
    assert_false(hits(rs, &m));
    m.auto_kind = MR_AUTO_LIST;
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        auto: none");
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);

    struct mr_rules_attachment at[] = {
        {"image/png", "Screen Shot.PNG", 300000},
        {"application/zip", "logs.zip", 12000000},
    };
    m = msg();
    rs = one_rule(NULL, "        attachment: true");
    assert_false(hits(rs, &m));
    m.attachments = at;
    m.nattachments = 2;
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        attachment: false");
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        attachment: {type: \"image/*\", filename: \"*.png\"}");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        attachment: {type: \"image/*\", size: {min: 1MB}}");
    assert_false(hits(rs, &m)); /* one attachment must satisfy all */
    mr_rules_free(&rs);
    rs = one_rule(NULL, "        attachment: {size: {min: 10MB, max: 12MB}}");
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);

    rs = one_rule(NULL, "        size: {max: 2KB}");
    assert_true(hits(rs, &m));
    m.size = 2001;
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);

    rs = one_rule(NULL, "        new_ticket: false");
    assert_false(hits(rs, &m));
    m.is_new = false;
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
}

/* ---- time ---- */

static int64_t utc_ms(int y, int mo, int d, int h, int mi)
{
    /* days from civil, as in tz.c, kept independent here */
    int64_t yy = y - (mo <= 2);
    int64_t era = yy / 400, yoe = yy - era * 400;
    int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return (days * 86400 + h * 3600 + mi * 60) * 1000;
}

static void business_hours_across_dst(void **state)
{
    (void)state;
    struct mr_rules *rs = one_rule("timezone: Europe/Berlin\n"
                                   "business_hours: {days: [mon-fri], "
                                   "hours: \"09:00-17:00\"}",
                                   "        business_hours: true");
    struct mr_rules_msg m = msg();
    /* 07:30 UTC on a Monday: 08:30 in winter (CET), 09:30 in summer. */
    m.received_at = utc_ms(2025, 3, 24, 7, 30); /* before the change */
    assert_false(hits(rs, &m));
    m.received_at = utc_ms(2025, 3, 31, 7, 30); /* after 2025-03-30 */
    assert_true(hits(rs, &m));
    m.received_at = utc_ms(2025, 10, 20, 7, 30); /* still CEST */
    assert_true(hits(rs, &m));
    m.received_at = utc_ms(2025, 10, 27, 7, 30); /* CET again */
    assert_false(hits(rs, &m));
    /* 2041 is past the zone file's table: the POSIX rule decides. */
    m.received_at = utc_ms(2041, 7, 1, 7, 30); /* a Monday, CEST */
    assert_true(hits(rs, &m));
    m.received_at = utc_ms(2041, 1, 7, 7, 30); /* a Monday, CET */
    assert_false(hits(rs, &m));
    /* Saturday at 10:00 is not business hours. */
    m.received_at = utc_ms(2025, 3, 29, 9, 0);
    assert_false(hits(rs, &m));
    mr_rules_free(&rs);

    /* weekday and a time range wrapping past midnight, in local time:
     * Sunday 2025-03-30 23:30 CEST is 21:30 UTC. */
    rs = one_rule("timezone: Europe/Berlin",
                  "        weekday: [sun]\n        time: \"22:00-06:00\"");
    m.received_at = utc_ms(2025, 3, 30, 21, 30);
    assert_true(hits(rs, &m));
    m.received_at = utc_ms(2025, 3, 30, 19, 30); /* 21:30 local */
    assert_false(hits(rs, &m));
    m.received_at = utc_ms(2025, 3, 29, 23, 30); /* Sun 00:30 CET */
    assert_true(hits(rs, &m));
    mr_rules_free(&rs);
}

static void tz_offsets(void **state)
{
    (void)state;
    char path[4096];
    size_t n;
    snprintf(path, sizeof path, "%s/rules/zoneinfo/Europe/Berlin", data_dir());
    char *data = read_all(path, &n);
    assert_non_null(data);
    struct mr_tz *tz = NULL;
    struct mr_error err = {0};
    assert_int_equal(mr_tz_parse(data, n, &tz, &err), 0);
    /* 2025-03-30 01:00 UTC: CET -> CEST. */
    int64_t change = utc_ms(2025, 3, 30, 1, 0) / 1000;
    assert_int_equal(mr_tz_offset(tz, change - 1), 3600);
    assert_int_equal(mr_tz_offset(tz, change), 7200);
    /* 2100 by the footer rule: last Sunday of March is 2100-03-28. */
    int64_t c2100 = utc_ms(2100, 3, 28, 1, 0) / 1000;
    assert_int_equal(mr_tz_offset(tz, c2100 - 1), 3600);
    assert_int_equal(mr_tz_offset(tz, c2100), 7200);
    assert_int_equal(mr_tz_offset(tz, utc_ms(2100, 10, 31, 0, 59) / 1000),
                     7200);
    assert_int_equal(mr_tz_offset(tz, utc_ms(2100, 10, 31, 1, 0) / 1000),
                     3600);
    mr_tz_free(&tz);
    assert_int_equal(mr_tz_parse("TZif2", 5, &tz, &err), MR_EINVAL);
    assert_int_equal(mr_tz_parse(data, n / 2, &tz, &err), MR_EINVAL);
    assert_null(tz);
    free(data);
    assert_int_equal(mr_tz_load(NULL, "../etc/passwd", &tz, &err), MR_EINVAL);
}

/* ---- actions ---- */

/* Named templates (docs/outbound.md): the file's, a tenant's own over
 * them, the action's text over the template's; an unknown template
 * without a text, or an unknown placeholder, is refused at load. */
static void auto_ack_templates(void **state)
{
    (void)state;
    struct mr_rules *rs = load(
        "auto_ack_window: 2h\n"
        "templates:\n"
        "  hello: {subject: \"[#{{ticket.number}}] {{subject}}\", text: Hi}\n"
        "  other: {text: \"Other {{ from.name }}\"}\n"
        "tenants:\n"
        "  t:\n"
        "    templates:\n"
        "      other: {text: Mine}\n"
        "    rules:\n"
        "      - name: A\n"
        "        if: {subject: one}\n"
        "        then: {auto_acknowledge: {template: hello}}\n"
        "      - name: B\n"
        "        if: {subject: two}\n"
        "        then: {auto_acknowledge: {template: other}}\n"
        "      - name: C\n"
        "        if: {subject: three}\n"
        "        then: {auto_acknowledge: {template: hello, text: Own}}\n"
        "  u:\n"
        "    - name: D\n"
        "      then: {auto_acknowledge: {template: other}}\n");
    struct run x;
    run_init(&x);
    struct mr_rules_msg m = msg();
    m.subject = "one";
    const struct mr_rules_result *r = eval(&x, rs, &m);
    assert_string_equal(r->ack_template, "hello");
    assert_string_equal(r->ack_subject, "[#{{ticket.number}}] {{subject}}");
    assert_string_equal(r->ack_text, "Hi");
    assert_int_equal(r->ack_window_ms, 2 * 3600 * 1000);
    m.subject = "two";
    r = eval(&x, rs, &m);
    assert_string_equal(r->ack_text, "Mine");
    assert_null(r->ack_subject);
    m.subject = "three";
    r = eval(&x, rs, &m);
    assert_string_equal(r->ack_text, "Own");
    assert_non_null(r->ack_subject);
    m.tenant = "u";
    r = eval(&x, rs, &m);
    assert_string_equal(r->ack_text, "Other {{ from.name }}");
    assert_true(mr_rules_uses_auto_ack(rs));
    run_free(&x);
    mr_rules_free(&rs);

    struct mr_config_diags d = load_bad(
        "tenants:\n"
        "  t:\n"
        "    - name: A\n"
        "      then: {auto_acknowledge: {template: nope}}\n");
    assert_true(has_diag(&d, 4, 32, "no template 'nope'"));
    mr_config_diags_free(&d);
    d = load_bad("templates:\n"
                 "  x: {text: \"Hi {{ticket.numbr}}\"}\n"
                 "tenants:\n"
                 "  t:\n"
                 "    - name: A\n"
                 "      then: {auto_acknowledge: {template: y, text: \"{{oops\"}}\n");
    assert_true(has_diag(&d, 2, 13, "unknown placeholder {{ticket.numbr}}"));
    assert_true(has_diag(&d, 6, 32, "without a closing"));
    assert_int_equal(d.n, 2);
    mr_config_diags_free(&d);
}

static void auto_ack_loop_protection(void **state)
{
    (void)state;
    struct mr_rules *rs = load("auto_ack_window: 1h\n"
                               "tenants:\n"
                               "  t:\n"
                               "    - name: Ack\n"
                               "      then:\n"
                               "        auto_acknowledge: {template: hello, "
                               "text: Thanks}\n");
    struct run x;
    run_init(&x);
    struct mr_rules_msg m = msg();
    const struct mr_rules_result *r = eval(&x, rs, &m);
    assert_string_equal(r->ack_template, "hello");
    assert_string_equal(r->ack_text, "Thanks");
    assert_true(decided(r, "Ack", "auto_ack=hello"));

    static const struct {
        enum mr_auto_kind kind;
        const char *mail_from, *from;
        bool is_new;
        int64_t last_ack_ago_ms; /* 0: never */
        const char *why;
    } cases[] = {
        {MR_AUTO_AUTOREPLY, NULL, "a@x", true, 0, "autoreply"},
        {MR_AUTO_BOUNCE, NULL, "a@x", true, 0, "bounce"},
        {MR_AUTO_LIST, NULL, "a@x", true, 0, "list"},
        {MR_AUTO_NONE, "", "a@x", true, 0, "null_sender"},
        {MR_AUTO_NONE, NULL, NULL, true, 0, "no_sender"},
        {MR_AUTO_NONE, NULL, "a@x", false, 0, "reply"},
        {MR_AUTO_NONE, "a@x", "a@x", true, 59 * 60 * 1000, "window"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        m = msg();
        m.auto_kind = cases[i].kind;
        m.mail_from = cases[i].mail_from;
        m.from = cases[i].from;
        m.is_new = cases[i].is_new;
        if (cases[i].last_ack_ago_ms)
            m.last_ack_at = m.received_at - cases[i].last_ack_ago_ms;
        r = eval(&x, rs, &m);
        char want[64];
        snprintf(want, sizeof want, "auto_ack_suppressed=%s", cases[i].why);
        assert_null(r->ack_template);
        assert_true(decided(r, "Ack", want));
    }
    /* The window has passed. */
    m = msg();
    m.last_ack_at = m.received_at - 61 * 60 * 1000;
    r = eval(&x, rs, &m);
    assert_string_equal(r->ack_template, "hello");
    run_free(&x);
    mr_rules_free(&rs);
}

static void actions_nesting_and_stop(void **state)
{
    (void)state;
    struct mr_rules *rs = load(
        "tenants:\n"
        "  t:\n"
        "    - name: A\n"
        "      if:\n"
        "        any:\n"
        "          - subject: nothing-here\n"
        "          - all:\n"
        "              - subject: hello\n"
        "              - not: {text: refund}\n"
        "      then:\n"
        "        queue: first\n"
        "        priority: low\n"
        "        add_tags: [a, b]\n"
        "        notify: [pager, pager]\n"
        "    - name: B\n"
        "      then:\n"
        "        queue: second\n"
        "        assignee: bob\n"
        "        remove_tags: [a, c]\n"
        "        priority: urgent\n"
        "        ignore: true\n"
        "        auto_acknowledge: {template: t1, text: hi}\n"
        "      stop: true\n"
        "    - name: C\n"
        "      then: {queue: never}\n");
    struct run x;
    run_init(&x);
    struct mr_rules_msg m = msg();
    const struct mr_rules_result *r = eval(&x, rs, &m);
    assert_string_equal(r->tenant, "t");
    assert_true(matched(r, "A"));
    assert_true(matched(r, "B"));
    assert_false(matched(r, "C"));
    assert_string_equal(r->queue, "second");
    assert_string_equal(r->priority, "urgent");
    assert_string_equal(r->assignee, "bob");
    assert_int_equal(r->ntags_add, 1);
    assert_string_equal(r->tags_add[0], "b");
    assert_int_equal(r->ntags_remove, 2);
    assert_int_equal(r->nnotify, 1);
    assert_true(r->ignore);
    assert_null(r->ack_template); /* ignored: nothing to acknowledge */
    /* The trail, in order. */
    static const char *const want[][2] = {
        {"A", "queue=first"},       {"A", "priority=low"},
        {"A", "tag+=a"},            {"A", "tag+=b"},
        {"A", "notify=pager"},      {"A", "notify=pager"},
        {"B", "queue=second"},      {"B", "assignee=bob"},
        {"B", "tag-=a"},            {"B", "tag-=c"},
        {"B", "priority=urgent"},   {"B", "ignore"},
        {"B", "auto_ack=t1"},       {"B", "stop"},
        {"(ignore)", "auto_ack_suppressed=ignored"},
    };
    assert_int_equal(r->ndecisions, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < r->ndecisions; i++) {
        assert_string_equal(r->decisions[i].rule, want[i][0]);
        assert_string_equal(r->decisions[i].decision, want[i][1]);
    }
    /* JSON of the trail: the seed's shape. */
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_rules_trail_write_json(r, &j);
    json_error_t jerr;
    json_t *arr = json_loadb(b.p, b.len, 0, &jerr);
    assert_non_null(arr);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(arr, 0), "decision")),
        "queue=first");
    json_decref(arr);
    mr_buf_release(&b);

    /* "refund" in the text: A's all fails, so A does not match. */
    m.text = "REFUND please";
    r = eval(&x, rs, &m);
    assert_false(matched(r, "A"));
    /* An unknown tenant has no rules. */
    m.tenant = "nobody";
    r = eval(&x, rs, &m);
    assert_int_equal(r->ndecisions, 0);
    assert_null(r->tenant);
    run_free(&x);
    mr_rules_free(&rs);
}

/* ---- the event builder ---- */

static void msg_from_event_json(void **state)
{
    (void)state;
    const char *js =
        "{\"tenant\": \"acme\", \"from\": {\"email\": \"a@x.example\"},"
        " \"to\": [{\"email\": \"help+vip@acme.example\", \"name\": null},"
        "          {\"email\": null, \"raw\": \"junk\", \"invalid\": true}],"
        " \"cc\": [{\"email\": \"cc@acme.example\"}],"
        " \"envelope\": {\"mail_from\": \"\", \"rcpt_to\": [\"help@acme.example\"]},"
        " \"subject\": \"S\", \"text\": \"T\", \"stripped_text\": null,"
        " \"headers\": {\"x-a\": \"1\", \"authentication-results\": [\"top\", \"low\"]},"
        " \"auto\": {\"kind\": \"bounce\"},"
        " \"attachments\": [{\"content_type\": \"image/png\", \"filename\": \"a.png\", \"size\": 12}],"
        " \"received_at\": \"2025-03-31T09:30:00+02:00\"}";
    json_error_t jerr;
    json_t *ev = json_loads(js, 0, &jerr);
    assert_non_null(ev);
    struct mr_arena *a = mr_arena_new();
    struct mr_rules_msg m;
    mr_rules_msg_from_event(&m, ev, a);
    assert_string_equal(m.tenant, "acme");
    assert_int_equal(m.nrecipients, 2);
    assert_string_equal(m.recipients[1], "cc@acme.example");
    assert_int_equal(m.nrcpt_to, 1);
    assert_string_equal(m.mail_from, "");
    assert_string_equal(m.from, "a@x.example");
    assert_null(m.stripped_text);
    assert_int_equal(m.nheaders, 3);
    assert_string_equal(m.headers[1].name, "authentication-results");
    assert_string_equal(m.headers[1].value, "top");
    assert_int_equal(m.auto_kind, MR_AUTO_BOUNCE);
    assert_int_equal(m.nattachments, 1);
    assert_int_equal(m.attachments[0].size, 12);
    assert_int_equal(m.received_at, utc_ms(2025, 3, 31, 7, 30));
    assert_true(m.is_new);
    mr_arena_free(&a);
    json_decref(ev);
}

/* ---- the file's problems ---- */

static void yaml_errors_have_places(void **state)
{
    (void)state;
    struct mr_config_diags d = load_bad(
        "tenants:\n"                                /* 1 */
        "  t:\n"                                    /* 2 */
        "    - name: A\n"                           /* 3 */
        "      iff: {subject: x}\n"                 /* 4 unknown rule key */
        "      then: {queue: q, colour: red}\n"     /* 5 unknown action */
        "    - name: A\n"                           /* 6 duplicate */
        "      if: {subjekt: x, size: {min: 2XB}}\n" /* 7 two problems */
        "      then: {priority: extreme}\n"         /* 8 */
        "    - name: C\n"                           /* 9 */
        "      if: {text: {regex: '(unclosed'}}\n"  /* 10 */
        "      then: {set_field: {f: {from: nope}}}\n" /* 11 */
        "unknown_top: 1\n");                        /* 12 */
    assert_true(has_diag(&d, 4, 7, "unknown key 'iff' in a rule"));
    assert_true(has_diag(&d, 5, 24, "unknown key 'colour' in then"));
    assert_true(has_diag(&d, 6, 7, "a second rule named 'A'"));
    assert_true(has_diag(&d, 7, 12, "unknown key 'subjekt' in a condition (did you mean 'subject'?)"));
    assert_true(has_diag(&d, 7, 36, "size must be a size"));
    assert_true(has_diag(&d, 8, 24, "priority must be low, normal, high or "
                                    "urgent"));
    assert_true(has_diag(&d, 10, 26, "not a valid regular expression"));
    assert_true(has_diag(&d, 11, 36, "no extractor named 'nope'"));
    assert_true(has_diag(&d, 12, 1, "unknown key 'unknown_top'"));
    mr_config_diags_free(&d);

    d = load_bad("tenants:\n  t:\n    - name: A\n\tthen: {}\n");
    assert_true(d.items[0].line == 4);
    mr_config_diags_free(&d);
    d = load_bad("timezone: Mars/Olympus\ntenants: {}\n");
    assert_true(has_diag(&d, 1, 11, "timezone"));
    mr_config_diags_free(&d);
    d = load_bad("tenants:\n  t:\n    - name: A\n      if: {business_hours: true}\n"
                 "      then: {queue: q}\n");
    assert_true(has_diag(&d, 4, 12, "business_hours setting"));
    mr_config_diags_free(&d);
    d = load_bad("tenants:\n  t:\n    - name: A\n"
                 "      if: {subject: {regex: 'INV-[0-9]+', extract: inv}}\n"
                 "      then: {queue: q}\n");
    assert_true(has_diag(&d, 4, 29, "needs a capture group"));
    mr_config_diags_free(&d);
}

/* ---- speed-ups that must never change a result ---- */

struct lits_case {
    const char *re;
    bool fold;
    const char *lits; /* '|'-separated, in order; "" for none */
};

/* The prefilter's literals (rules_prefilter.c) for patterns of every
 * construct it knows, and for those where it must give up. */
static void prefilter_literals(void **state)
{
    (void)state;
    static const struct lits_case cases[] = {
        {"(?i)\\b(?:order|ticket) *#?([0-9]{5,})", true, "order|ticket"},
        {"(?i)invoice (?:no\\.?|number) *([0-9]{4,})", true,
         "invoice no|invoice number"},
        {"\\b(INV-[0-9]{6})\\b", false, "INV-"},
        {"(?i)\\binvoice no\\.? *([0-9]+)", true, "invoice no"},
        {"Foo-Bar", false, "Foo-Bar"},
        {"(?i)colou?r", true, "colo"},
        {"(?i)OUTLOOK 16", true, "outlook 16"},
        {"abc|xyz", false, "abc|xyz"},
        {"abc|x", false, ""},            /* too short to be worth a look */
        {"abc|x+yz", false, ""},         /* "x" then anything */
        {"ab+cd", false, ""},            /* "ab" only */
        {"abc+d", false, "abc"},
        {"abc*d", false, ""},            /* "ab" */
        {"abcd{2}e", false, "abc"},      /* a counted quantifier may be 0 */
        {"abc{x", false, "abc"},         /* a '{' that is no quantifier */
        {"(?:ab|cd)(?:ef|gh)", false, "abef|abgh|cdef|cdgh"},
        {"(ab(?:c|d)e)", false, "abce|abde"},
        {"x(?:abc)?yz", false, ""},
        {"^\\s*abc", false, ""},         /* \s is no literal */
        {"^abc$", false, "abc"},
        {"abc(?=def)de", false, "abcde"}, /* lookarounds are zero-width */
        {"(?<=x)abc", false, "abc"},
        {"\\.com\\b", false, ".com"},
        {"a[bc]d|efg", false, ""},
        {"abc[|(]def", false, "abc"},    /* '|' and '(' in a class */
        {"abc[]|]def", false, "abc"},    /* ']' first in a class */
        {"abc[[:alpha:]|]d", false, "abc"},
        {"abc\\Q|\\Exyz", false, ""},    /* quoting: give up */
        {"abc(?#|)def", false, ""},      /* comment: give up */
        {"(?x) a b c", false, ""},       /* extended: give up */
        {"abc(?i)def|XYZ", false, ""},   /* (?i) carries into XYZ */
        {"abc(?i:def)", false, "abc"},
        {"(?i)abc(?-i:DEF)", true, "abc"},
        {"(*UTF)abc", false, ""},
        {"(?<name>abc)d", false, "abcd"},
        {"(?|abc|abd)e", false, "abce|abde"},
        {"\\x41bc", false, ""},
        {"abc\\cXdef", false, "abc"},
        {"(?i)stra\xc3\x9f" "e", true, "stra"}, /* non-ASCII ends it */
        {"(?i)(?:a|b|c|d|e|f|g|h|i)xyz", true, ""}, /* too many */
        {"(?i)(?:abc|abcd)", true, "abc"},  /* abcd contains abc */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mr__str out[MR__LITS_MAX];
        char store[MR__LITS_MAX * MR__LIT_BYTES];
        bool fold;
        size_t n = mr__rules_required_literals(cases[i].re, strlen(cases[i].re),
                                               &fold, out, store);
        char got[512] = "";
        size_t k = 0;
        for (size_t j = 0; j < n; j++)
            k += (size_t)snprintf(got + k, sizeof got - k, "%s%.*s",
                                  j ? "|" : "", (int)out[j].n, out[j].p);
        if (strcmp(got, cases[i].lits) != 0)
            fail_msg("%s: literals '%s', want '%s'", cases[i].re, got,
                     cases[i].lits);
        if (n)
            assert_int_equal(fold, cases[i].fold);
    }
}

static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Pieces of subjects and bodies: the literals of the patterns below in
 * every case, near misses, characters that PCRE2's caseless matching or
 * case folding treat specially (Kelvin sign, long s, ligatures, dotted
 * I, sharp s), and a stray byte that is not UTF-8. */
static const char *const pieces[] = {
    "order", "ORDER", "Order", "ord", "ticket", "TICKET", "tick", "\xe2\x84\xaa" "ey",
    "tic\xe2\x84\xaa" "et", "invoice", "INVOICE no.", "invoice number",
    "Invoice No", "inv", "INV-", "INV-123456", "inv-123456", " ", " ", "#",
    "12345", "1234567", "0", "re: ", "\xc5\xbf" "ubscription", "\xef\xac\x80",
    "stra\xc3\x9f" "e", "STRASSE", "\xc4\xb0" "nvoice", "colour", "COLOR",
    "abcde", "abc", "xyz", "foo-bar", "Foo-Bar", "\xff", "\xc3", "\n",
    "\xd1\x81\xd1\x87\xd1\x91\xd1\x82", "outlook 16", "Outlook 1", ".com",
    "urgent", "x", "ab", "ef", "cdgh", "noreply",
};

static const char *const patterns[] = {
    "(?i)\\b(?:order|ticket) *#?([0-9]{5,})",
    "(?i)invoice (?:no\\.?|number) *([0-9]{4,})",
    "\\b(INV-[0-9]{6})\\b",
    "(?i)colou?r",
    "Foo-Bar",
    "(?i)(ticket|order)",
    "(?i)\\bkey",
    "(?i)(subscription|stra)",
    "abc|xyz",
    "(?:ab|cd)(?:ef|gh)",
    "(?i)\\.com\\b",
    "(?i)outlook 1[0-9]",
};

/* Which of them have a capture group to extract. */
static const bool extracts[] = {true, true, true, false, false, true,
                                false, true, false, false, false, false};

static void random_text(uint32_t *seed, char *out, size_t cap, size_t npieces)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t j = 0; j < npieces; j++) {
        const char *p = pieces[rnd(seed) % (sizeof pieces / sizeof pieces[0])];
        size_t n = strlen(p);
        if (k + n + 1 >= cap)
            break;
        memcpy(out + k, p, n);
        k += n;
        out[k] = '\0';
    }
}

/* Every pattern against PCRE2 itself: whenever PCRE2 finds a match, one
 * of the prefilter's literals is in the field (as it is, or case-folded
 * after (?i)). So skipping PCRE2 when none is there never loses a match. */
static void prefilter_agrees_with_pcre2(void **state)
{
    (void)state;
    uint32_t seed = 7;
    size_t skipped = 0, matches = 0;
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)patterns[p],
                                         PCRE2_ZERO_TERMINATED,
                                         PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                                         &ec, &eo, NULL);
        assert_non_null(code);
        pcre2_match_data *md = pcre2_match_data_create(4, NULL);
        struct mr__str lits[MR__LITS_MAX];
        char store[MR__LITS_MAX * MR__LIT_BYTES];
        bool fold;
        size_t nl = mr__rules_required_literals(patterns[p], strlen(patterns[p]),
                                                &fold, lits, store);
        assert_true(nl > 0); /* each of them has some */
        for (int t = 0; t < 400; t++) {
            char text[256];
            random_text(&seed, text, sizeof text, 1 + rnd(&seed) % 6);
            struct mr_buf f;
            mr_buf_init(&f, 0);
            mr__rules_fold(text, strlen(text), &f);
            const char *hay = fold ? (f.p ? f.p : "") : text;
            size_t hn = fold ? f.len : strlen(text);
            bool any = false;
            for (size_t j = 0; j < nl; j++)
                any |= mr__rules_find(hay, hn, lits[j].p, lits[j].n) != NULL;
            int rc = pcre2_match(code, (PCRE2_SPTR)text, strlen(text), 0, 0,
                                 md, NULL);
            if (rc >= 0) {
                matches++;
                if (!any)
                    fail_msg("'%s' matches '%s', prefilter said no",
                             patterns[p], text);
            }
            skipped += !any;
            mr_buf_release(&f);
        }
        pcre2_match_data_free(md);
        pcre2_code_free(code);
    }
    /* Both outcomes happened plenty: the test looked at something. */
    assert_true(matches > 300);
    assert_true(skipped > 300);
}

/* Whole rule sets evaluated with and without the prefilter (and its
 * literals among the needles of the field scan): the same result JSON
 * for every message, extracted fields and limit notes included. */
static void prefilter_never_changes_a_result(void **state)
{
    (void)state;
    struct mr_buf y;
    mr_buf_init(&y, 0);
    mr_buf_puts(&y, "tenants:\n  t:\n");
    const char *fields[] = {"subject", "text", "stripped_text"};
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        for (size_t f = 0; f < 3; f++) {
            if (extracts[p])
                mr_buf_printf(&y, "    - name: r%zu-%s\n      if:\n"
                                  "        %s: {regex: '%s', extract: e%zu}\n"
                                  "      then: {add_tags: [t%zu]}\n",
                              p, fields[f], fields[f], patterns[p], p, p);
            else
                mr_buf_printf(&y, "    - name: r%zu-%s\n      if:\n"
                                  "        %s: {regex: '%s'}\n"
                                  "      then: {add_tags: [t%zu]}\n",
                              p, fields[f], fields[f], patterns[p], p);
        }
    }
    /* Needles of their own beside the literals, in the same fields. */
    mr_buf_puts(&y, "    - name: kw\n      if: {any: [{subject: {contains: "
                    "[order, ticke, \"stra\xc3\x9f" "e\"]}}, {text: {contains: "
                    "[number, \"\xd1\x81\xd1\x87\xd1\x91\xd1\x82\", ab]}}]}\n"
                    "      then: {add_tags: [kw]}\n"
                    "    - name: hdr\n      if: {header: {name: X-Mailer, "
                    "matches: '(?i)outlook 1[0-9]'}}\n"
                    "      then: {add_tags: [hdr]}\n");
    struct mr_rules *on = load(y.p), *off = load(y.p);
    off->no_prefilter = true;
    mr_buf_release(&y);

    struct run a, b;
    run_init(&a);
    run_init(&b);
    struct mr_buf ja, jb;
    mr_buf_init(&ja, 0);
    mr_buf_init(&jb, 0);
    uint32_t seed = 99;
    size_t tagged = 0, fields_set = 0;
    for (int i = 0; i < 500; i++) {
        char subj[160], text[1200], strip[300], mailer[80];
        random_text(&seed, subj, sizeof subj, 1 + rnd(&seed) % 5);
        random_text(&seed, text, sizeof text, rnd(&seed) % 60);
        random_text(&seed, strip, sizeof strip, rnd(&seed) % 8);
        random_text(&seed, mailer, sizeof mailer, 1 + rnd(&seed) % 3);
        struct mr_rules_header hs[] = {{"x-mailer", mailer}};
        struct mr_rules_msg m = msg();
        m.subject = subj;
        m.text = i % 7 ? text : NULL;
        m.stripped_text = strip;
        m.headers = hs;
        m.nheaders = 1;
        eval(&a, on, &m);
        eval(&b, off, &m);
        struct mr_json j;
        mr_buf_reset(&ja);
        mr_json_init(&j, &ja, false);
        mr_rules_result_write_json(&a.r, &j);
        mr_buf_reset(&jb);
        mr_json_init(&j, &jb, false);
        mr_rules_result_write_json(&b.r, &j);
        if (strcmp(ja.p, jb.p) != 0)
            fail_msg("subject '%s' text '%s':\n  with    %s\n  without %s", subj,
                     text, ja.p, jb.p);
        tagged += a.r.ntags_add;
        fields_set += a.r.nfields;
    }
    assert_true(tagged > 500);
    assert_true(fields_set > 100);
    mr_buf_release(&ja);
    mr_buf_release(&jb);
    run_free(&a);
    run_free(&b);
    mr_rules_free(&on);
    mr_rules_free(&off);
}

/* The literal check after (?i) compares ASCII with the folded field. It
 * is exact only if every character PCRE2's caseless matching takes for an
 * ASCII character folds to that character: checked for every code point
 * (the Kelvin sign and long s are the ones that exist). */
static void casefold_covers_pcre2_caseless_ascii(void **state)
{
    (void)state;
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *any = pcre2_compile((PCRE2_SPTR) "(?i)^[\\x20-\\x7e]$",
                                    PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec,
                                    &eo, NULL);
    assert_non_null(any);
    pcre2_jit_compile(any, PCRE2_JIT_COMPLETE);
    pcre2_match_data *md = pcre2_match_data_create(2, NULL);
    size_t found = 0;
    for (uint32_t cp = 0x80; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        unsigned char u[4];
        size_t n;
        if (cp < 0x800) {
            u[0] = (unsigned char)(0xC0 | cp >> 6);
            u[1] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            u[0] = (unsigned char)(0xE0 | cp >> 12);
            u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            u[0] = (unsigned char)(0xF0 | cp >> 18);
            u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            u[3] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        if (pcre2_match(any, u, n, 0, 0, md, NULL) < 0)
            continue;
        found++;
        struct mr_buf f;
        mr_buf_init(&f, 0);
        mr__rules_fold((const char *)u, n, &f);
        for (int a = 0x20; a < 0x7F; a++) {
            char pat[16];
            snprintf(pat, sizeof pat, "(?i)^\\x{%x}$", (unsigned)a);
            pcre2_code *one = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                            PCRE2_UTF, &ec, &eo, NULL);
            assert_non_null(one);
            if (pcre2_match(one, u, n, 0, PCRE2_NO_JIT, md, NULL) >= 0) {
                char want = (char)(a >= 'A' && a <= 'Z' ? a + 32 : a);
                if (f.len != 1 || f.p[0] != want)
                    fail_msg("U+%04X: PCRE2 (?i) takes it for '%c', it folds "
                             "to '%s'", (unsigned)cp, a, f.p);
            }
            pcre2_code_free(one);
        }
        mr_buf_release(&f);
    }
    assert_int_equal(found, 2); /* U+017F, U+212A */
    pcre2_match_data_free(md);
    pcre2_code_free(any);
}

/* The fast paths of folding (sixteen ASCII bytes at a time, the table of
 * two-byte characters, the block index) against a plain per-character
 * reference over the table: every code point, between ASCII runs of every
 * length mod 16, and stray bytes. */
static void casefold_fast_paths_agree(void **state)
{
    (void)state;
    struct mr_buf in, want, got;
    mr_buf_init(&in, 0);
    mr_buf_init(&want, 0);
    mr_buf_init(&got, 0);
    uint32_t seed = 3;
    size_t lo = 0;
    for (uint32_t cp = 0x80; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        size_t run = rnd(&seed) % 40;
        for (size_t i = 0; i < run; i++) {
            char c = (char)(0x20 + rnd(&seed) % 0x5F);
            mr_buf_putc(&in, c);
            mr_buf_putc(&want, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
        }
        if (cp % 1000 == 0) { /* not UTF-8: copied as it is */
            mr_buf_putc(&in, (char)0xC3);
            mr_buf_putc(&want, (char)0xC3);
        }
        char u[4];
        size_t n;
        if (cp < 0x800) {
            u[0] = (char)(0xC0 | cp >> 6);
            u[1] = (char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | cp >> 12);
            u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            u[0] = (char)(0xF0 | cp >> 18);
            u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
            u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        mr_buf_append(&in, u, n);
        while (lo < MR__CASEFOLD_N && mr__casefold[lo].cp < cp)
            lo++;
        if (lo < MR__CASEFOLD_N && mr__casefold[lo].cp == cp)
            mr_buf_append(&want, mr__casefold[lo].s, mr__casefold[lo].len);
        else
            mr_buf_append(&want, u, n);
    }
    mr__rules_fold(in.p, in.len, &got);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.p, want.p, want.len);
    mr_buf_release(&in);
    mr_buf_release(&want);
    mr_buf_release(&got);
}

/* mr__rules_find against memmem: every needle length up to 40 at every
 * offset of haystacks around the 16-byte blocks. */
static void find_agrees_with_memmem(void **state)
{
    (void)state;
    uint32_t seed = 11;
    char h[200], x[48];
    for (int t = 0; t < 20000; t++) {
        size_t n = rnd(&seed) % sizeof h, m = rnd(&seed) % 41;
        for (size_t i = 0; i < n; i++)
            h[i] = "aab"[rnd(&seed) % 3];
        if (m <= n && rnd(&seed) % 2) {
            memcpy(x, h + rnd(&seed) % (n - m + 1), m);
        } else {
            for (size_t i = 0; i < m; i++)
                x[i] = "aab"[rnd(&seed) % 3];
        }
        assert_ptr_equal(mr__rules_find(h, n, x, m), memmem(h, n, x, m));
    }
}

/* Address globs take their literal head and tail first: the same answers
 * as the general matcher. */
static void glob_head_and_tail(void **state)
{
    (void)state;
    static const char *const pats[] = {
        "a*", "*a", "*", "**", "a*a", "ab*ba", "*@x.example", "team-*@x.example",
        "a*b*c", "*b*", "a**b", "x*@*.example", "aa*aa", "team-7@x.example",
        "team+-7@x.example", "ab+x@x.example", "team*",
    };
    static const char *const addrs[] = {
        "a", "aa", "aba", "abba", "ab@x.example", "team-7@x.example",
        "team@x.example", "abc", "axbxc", "b", "x@y.example", "aaa", "aaaa", "",
        "ab+x@x.example", "team-7+t@x.example", "aa+aa", "team+-7@x.example",
    };
    for (size_t p = 0; p < sizeof pats / sizeof pats[0]; p++) {
        char cond[128];
        snprintf(cond, sizeof cond, "        from: \"%s\"", pats[p]);
        struct mr_rules *rs = one_rule(NULL, cond);
        for (size_t a = 0; a < sizeof addrs / sizeof addrs[0]; a++) {
            struct mr_rules_msg m = msg();
            m.from = addrs[a];
            bool want = addrs[a][0] &&
                        mr__rules_glob(pats[p], strlen(pats[p]), addrs[a],
                                       strlen(addrs[a]));
            if (hits(rs, &m) != want)
                fail_msg("'%s' against '%s': want %d", pats[p], addrs[a], want);
        }
        mr_rules_free(&rs);
        /* mailbox: the address without its +tag, or whole when tagged */
        snprintf(cond, sizeof cond, "        mailbox: \"%s\"", pats[p]);
        rs = one_rule(NULL, cond);
        for (size_t a = 0; a < sizeof addrs / sizeof addrs[0]; a++) {
            const char *v = addrs[a], *plus = strchr(v, '+');
            const char *at = strchr(v, '@');
            char base[64];
            size_t nb = strlen(v);
            memcpy(base, v, nb + 1);
            if (plus && at && plus < at) {
                nb = (size_t)(plus - v);
                memcpy(base + nb, at, strlen(at) + 1);
                nb += strlen(at);
            }
            struct mr_rules_msg m = msg();
            const char *to[] = {"somebody@else.example", v};
            m.recipients = to;
            m.nrecipients = 2;
            bool want = v[0] && (mr__rules_glob(pats[p], strlen(pats[p]), base, nb) ||
                                 (nb != strlen(v) &&
                                  mr__rules_glob(pats[p], strlen(pats[p]), v, strlen(v))));
            want |= mr__rules_glob(pats[p], strlen(pats[p]), to[0], strlen(to[0]));
            if (hits(rs, &m) != want)
                fail_msg("mailbox '%s' against '%s': want %d", pats[p], v, want);
        }
        mr_rules_free(&rs);
    }
}

/* The server's slot: a reload with an error keeps the rules in force; a
 * reference held across a good reload keeps its own set alive. */
static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void slot_reload_and_refcount(void **state)
{
    (void)state;
    struct mr_rules_slot *none = mr_rules_slot_new(NULL);
    assert_null(mr_rules_slot_acquire(none));
    assert_int_equal(mr_rules_slot_reload(none, NULL, NULL, NULL, NULL), 0);
    mr_rules_slot_free(&none);
    assert_null(mr_rules_slot_acquire(NULL));

    char path[] = "/tmp/mr-rules-slot-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_text(path, "tenants:\n  acme:\n    - name: A\n"
                     "      then: {queue: one}\n");
    struct mr_rules_slot *slot = mr_rules_slot_new(path);
    assert_null(mr_rules_slot_acquire(slot)); /* nothing loaded yet */
    size_t nt = 0, nr = 0;
    assert_int_equal(mr_rules_slot_reload(slot, NULL, &nt, &nr, NULL), 0);
    assert_int_equal(nt, 1);
    assert_int_equal(nr, 1);
    struct mr_rules_ref *r1 = mr_rules_slot_acquire(slot);
    assert_non_null(r1);
    const struct mr_rules *rs1 = mr_rules_ref_get(r1);

    write_text(path, "tenants:\n  acme:\n    - name: A\n"
                     "      then: {queue: [}\n");
    struct mr_config_diags diags = {0};
    struct mr_error err = {0};
    assert_int_equal(mr_rules_slot_reload(slot, &diags, NULL, NULL, &err),
                     MR_EINVAL);
    assert_true(diags.n > 0);
    mr_config_diags_free(&diags);
    struct mr_rules_ref *r2 = mr_rules_slot_acquire(slot);
    assert_ptr_equal(mr_rules_ref_get(r2), rs1); /* the old rules stay */
    mr_rules_slot_release(slot, r2);
    assert_int_equal(mr_rules_slot_generation(slot), 1);

    write_text(path, "tenants:\n  acme:\n    - name: A\n"
                     "      then: {queue: two}\n    - name: B\n"
                     "      then: {queue: three}\n");
    assert_int_equal(mr_rules_slot_reload(slot, NULL, NULL, &nr, NULL), 0);
    assert_int_equal(nr, 2);
    struct mr_rules_ref *r3 = mr_rules_slot_acquire(slot);
    assert_int_equal(mr_rules_count(mr_rules_ref_get(r3), "acme"), 2);
    /* r1 still holds the first set, valid until released. */
    assert_int_equal(mr_rules_count(rs1, "acme"), 1);
    mr_rules_slot_release(slot, r1);
    mr_rules_slot_release(slot, r3);
    mr_rules_slot_free(&slot);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(example_loads_and_docs_embed_it),
        cmocka_unit_test(slot_reload_and_refcount),
        cmocka_unit_test(mailbox_conditions),
        cmocka_unit_test(sender_conditions),
        cmocka_unit_test(contains_folds_unicode_case),
        cmocka_unit_test(regex_and_extractors),
        cmocka_unit_test(regex_literal_prefilter),
        cmocka_unit_test(catastrophic_regex_hits_the_limit),
        cmocka_unit_test(header_conditions),
        cmocka_unit_test(auth_reads_the_topmost_trusted_header),
        cmocka_unit_test(auto_attachment_size_new),
        cmocka_unit_test(business_hours_across_dst),
        cmocka_unit_test(tz_offsets),
        cmocka_unit_test(auto_ack_loop_protection),
        cmocka_unit_test(auto_ack_templates),
        cmocka_unit_test(actions_nesting_and_stop),
        cmocka_unit_test(msg_from_event_json),
        cmocka_unit_test(yaml_errors_have_places),
        cmocka_unit_test(prefilter_literals),
        cmocka_unit_test(prefilter_agrees_with_pcre2),
        cmocka_unit_test(prefilter_never_changes_a_result),
        cmocka_unit_test(casefold_covers_pcre2_caseless_ascii),
        cmocka_unit_test(casefold_fast_paths_agree),
        cmocka_unit_test(find_agrees_with_memmem),
        cmocka_unit_test(glob_head_and_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
