/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_address.c - mr_address_parse_list over a table of address lists
 * as real mail writes them: quoted and encoded names, comments, groups,
 * routes, missing brackets, IDN, junk, and very long lists.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mime/address.h"
#include "util/buf.h"
#include "util/utf8.h"

/* One expected entry: "name|email|group|valid" with "-" for NULL. */
struct addr_case {
    const char *in;
    unsigned flags;          /* flags that must be set */
    const char *entries[4];  /* expected entries, NULL-terminated */
};

/* The case table is at the bottom of the file. */
static const struct addr_case *table(size_t *n_r);

static bool valid_str(const char *s)
{
    return s == NULL || mr_utf8_valid(s, strlen(s));
}

static void describe(struct mr_buf *b, const struct mr_address *e)
{
    mr_buf_reset(b);
    mr_buf_printf(b, "%s|%s|%s|%d", e->name ? e->name : "-",
                  e->email ? e->email : "-", e->group ? e->group : "-",
                  e->valid);
}

static void test_table(void **state)
{
    (void)state;
    size_t n_cases;
    const struct addr_case *cases = table(&n_cases);
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    int failed = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const struct addr_case *c = &cases[i];
        struct mr_arena *a = mr_arena_new();
        struct mr_address *l;
        size_t n;
        unsigned flags = mr_address_parse_list(a, cs, mr_span_cstr(c->in), 10,
                                               &l, &n);
        size_t want = 0;
        while (want < 4 && c->entries[want])
            want++;
        bool ok = n == want && (flags & c->flags) == c->flags;
        if (c->flags == 0 && (flags & MR_ADDRESS_INVALID))
            ok = false;
        struct mr_buf d;
        mr_buf_init(&d, 0);
        for (size_t k = 0; k < n; k++) {
            assert_true(valid_str(l[k].name));
            assert_true(valid_str(l[k].email));
            assert_true(valid_str(l[k].group));
            assert_non_null(l[k].raw);
            assert_true(valid_str(l[k].raw));
            assert_true(l[k].valid == (l[k].email != NULL));
            describe(&d, &l[k]);
            if (k < want && strcmp(d.p, c->entries[k]) != 0) {
                print_error("case %zu '%s' entry %zu: got '%s' want '%s'\n",
                            i, c->in, k, d.p, c->entries[k]);
                ok = false;
            }
        }
        if (!ok) {
            print_error("case %zu '%s': n %zu (want %zu) flags %#x\n", i,
                        c->in, n, want, flags);
            failed++;
        }
        mr_buf_release(&d);
        mr_arena_free(&a);
    }
    mr_charset_ctx_free(&cs);
    assert_int_equal(failed, 0);
}

static void test_raw_kept(void **state)
{
    (void)state;
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_arena *a = mr_arena_new();
    struct mr_address *l;
    size_t n;
    unsigned f = mr_address_parse_list(
        a, cs, mr_span_cstr("not an address, Bob <bob@x.org>"), 10, &l, &n);
    assert_true(f & MR_ADDRESS_INVALID);
    assert_int_equal(n, 2);
    assert_false(l[0].valid);
    assert_null(l[0].email);
    assert_string_equal(l[0].raw, "not an address");
    assert_string_equal(l[1].raw, "Bob <bob@x.org>");
    assert_true(l[1].valid);

    f = mr_address_parse_list(a, cs, mr_span_cstr(""), 10, &l, &n);
    assert_int_equal(n, 0);
    assert_null(l);
    assert_int_equal(f, 0);
    mr_arena_free(&a);
    mr_charset_ctx_free(&cs);
}

static void test_many(void **state)
{
    (void)state;
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_arena *a = mr_arena_new();
    struct mr_buf in;
    mr_buf_init(&in, 0);
    for (int k = 0; k < 10000; k++)
        mr_buf_printf(&in, "\"User %d\" <u%d@x.org>,\r\n ", k, k);
    struct mr_address *l;
    size_t n;
    unsigned f = mr_address_parse_list(a, cs, mr_buf_span(&in), 1000, &l, &n);
    assert_int_equal(n, 1000);
    assert_true(f & MR_ADDRESS_TOO_MANY);
    assert_string_equal(l[999].email, "u999@x.org");
    assert_string_equal(l[999].name, "User 999");

    /* Pathological input: one huge entry, deep comments, many quotes;
     * must finish quickly and stay bounded. */
    mr_buf_reset(&in);
    for (int k = 0; k < 100000; k++)
        mr_buf_puts(&in, "((((");
    f = mr_address_parse_list(a, cs, mr_buf_span(&in), 1000, &l, &n);
    assert_int_equal(n, 0);
    mr_buf_reset(&in);
    for (int k = 0; k < 100000; k++)
        mr_buf_puts(&in, "<<@a,");
    f = mr_address_parse_list(a, cs, mr_buf_span(&in), 1000, &l, &n);
    assert_true(n <= 1000);
    mr_buf_reset(&in);
    for (int k = 0; k < 100000; k++)
        mr_buf_puts(&in, "a b ");
    mr_buf_puts(&in, "c@d");
    f = mr_address_parse_list(a, cs, mr_buf_span(&in), 1000, &l, &n);
    assert_int_equal(n, 1);
    assert_string_equal(l[0].email, "c@d");
    assert_true(f & MR_ADDRESS_REPAIRED);
    mr_buf_release(&in);
    mr_arena_free(&a);
    mr_charset_ctx_free(&cs);
}

static void test_not_nul_terminated(void **state)
{
    (void)state;
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_arena *a = mr_arena_new();
    const char buf[] = "a@b.org, \"unterminated";
    struct mr_address *l;
    size_t n;
    /* Every prefix, including ones that cut a quote or comment open. */
    for (size_t k = 0; k <= sizeof(buf) - 1; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, buf, k);
        mr_address_parse_list(a, cs, mr_span_make(copy, k), 10, &l, &n);
        free(copy);
    }
    mr_address_parse_list(a, cs, MR_SPAN_NULL, 10, &l, &n);
    assert_int_equal(n, 0);
    mr_arena_free(&a);
    mr_charset_ctx_free(&cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_raw_kept),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_not_nul_terminated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#define R MR_ADDRESS_REPAIRED
#define I MR_ADDRESS_INVALID

static const struct addr_case cases[] = {
    {"john@example.com", 0, {"-|john@example.com|-|1"}},
    {"<a@b>", 0, {"-|a@b|-|1"}},
    {"  <a@b>  ", 0, {"-|a@b|-|1"}},
    {"a@b, c@d", 0, {"-|a@b|-|1", "-|c@d|-|1"}},
    {"a@b;c@d", 0, {"-|a@b|-|1", "-|c@d|-|1"}},
    {"a@b,,c@d,", 0, {"-|a@b|-|1", "-|c@d|-|1"}},
    {"John Doe <john@x.org>", 0, {"John Doe|john@x.org|-|1"}},
    {"\"Doe, John\" <john@EXAMPLE.com>", 0,
     {"Doe, John|john@example.com|-|1"}},
    {"\"Doe, John\" <John.Doe@EXAMPLE.com>, x@y", 0,
     {"Doe, John|John.Doe@example.com|-|1", "-|x@y|-|1"}},
    {"\"quoted\\\"name\" <a@b>", 0, {"quoted\"name|a@b|-|1"}},
    {"John\r\n Doe\r\n <john@x.org>", 0, {"John Doe|john@x.org|-|1"}},
    /* RFC 2047 names, also inside quotes */
    {"=?utf-8?Q?Jos=C3=A9?= <jose@x.org>", 0,
     {"Jos\xc3\xa9|jose@x.org|-|1"}},
    {"\"=?utf-8?B?TcO8bGxlciwgSGFucw==?=\" <a@b>", 0,
     {"M\xc3\xbcller, Hans|a@b|-|1"}},
    {"=?iso-8859-1?Q?M=FCller?= <m@x.de>", 0, {"M\xc3\xbcller|m@x.de|-|1"}},
    {"=?utf-8?Q?a?= =?utf-8?Q?b?= <ab@x>", 0, {"ab|ab@x|-|1"}},
    /* comments */
    {"bob@x.org (Bob Smith)", 0, {"Bob Smith|bob@x.org|-|1"}},
    {"(Bob Smith) bob@x.org", 0, {"Bob Smith|bob@x.org|-|1"}},
    {"Bob <bob@x.org> (work)", 0, {"Bob|bob@x.org|-|1"}},
    {"<bob@x.org> (Bob (the builder))", 0,
     {"Bob (the builder)|bob@x.org|-|1"}},
    {"bob(c1)@(c2)x.org", 0, {"-|bob@x.org|-|1"}},
    /* groups */
    {"undisclosed-recipients:;", 0, {NULL}},
    {"undisclosed-recipients: ;", 0, {NULL}},
    {"team: a@x.org, b@y.org;", 0,
     {"-|a@x.org|team|1", "-|b@y.org|team|1"}},
    {"team: A <a@x.org>; c@z", 0, {"A|a@x.org|team|1", "-|c@z|-|1"}},
    {"My Team: a@x.org", R, {"-|a@x.org|My Team|1"}},
    {"\"The Team\": a@x.org;", 0, {"-|a@x.org|The Team|1"}},
    /* routes */
    {"<@route1,@route2:user@host>", 0, {"-|user@host|-|1"}},
    {"Name <@a.org:user@HOST.org>", 0, {"Name|user@host.org|-|1"}},
    /* repairs */
    {"John Doe john@x.org", R, {"John Doe|john@x.org|-|1"}},
    {"John <john@x.org", R, {"John|john@x.org|-|1"}},
    {"John <john@x.org, b@c", R, {"John|john@x.org|-|1", "-|b@c|-|1"}},
    {"\"John <john@x.org>", R | I, {"-|-|-|0"}},
    {"a@b.org.", 0, {"-|a@b.org|-|1"}},
    /* local parts */
    {"\"john\"@x.org", 0, {"-|john@x.org|-|1"}},
    {"\"john doe\"@x.org", 0, {"-|\"john doe\"@x.org|-|1"}},
    {"\"a\\\\b\"@x.org", 0, {"-|\"a\\\\b\"@x.org|-|1"}},
    {"User@[192.0.2.1]", 0, {"-|User@[192.0.2.1]|-|1"}},
    /* UTF-8 (RFC 6532) and IDN */
    {"j\xc3\xb6hn@b\xc3\xbc" "cher.de", 0,
     {"-|j\xc3\xb6hn@b\xc3\xbc" "cher.de|-|1"}},
    {"J\xc3\xb6hn <J\xc3\xb6hn@B\xc3\xbc" "CHER.de>", 0,
     {"J\xc3\xb6hn|J\xc3\xb6hn@b\xc3\xbc" "cher.de|-|1"}},
    {"user@XN--BCHER-KVA.de", 0, {"-|user@xn--bcher-kva.de|-|1"}},
    {"M\xfcller <m@x.de>", 0, {"M\xc3\xbcller|m@x.de|-|1"}},
    /* invalid entries are kept */
    {"not an address", I, {"-|-|-|0"}},
    {"<postmaster>", I, {"-|-|-|0"}},
    {"@x.org", I, {"-|-|-|0"}},
    {"a@", I, {"-|-|-|0"}},
    {"Bob <>", I, {"Bob|-|-|0"}},
    {"a\x01" "b@x.org", I, {"-|-|-|0"}},
    {"x, a@b", I, {"-|-|-|0", "-|a@b|-|1"}},
    {"(only a comment)", 0, {NULL}},
    {"", 0, {NULL}},
};

static const struct addr_case *table(size_t *n_r)
{
    *n_r = sizeof(cases) / sizeof(cases[0]);
    return cases;
}
