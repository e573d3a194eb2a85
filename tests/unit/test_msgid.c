/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_msgid.c - mr_msgid_parse and mr_msgid_list over a table of real
 * Message-ID / In-Reply-To / References values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mime/msgid.h"
#include "util/buf.h"
#include "util/utf8.h"

struct id_case {
    const char *in;
    size_t in_len;   /* 0: strlen(in) */
    const char *one; /* mr_msgid_parse result, NULL for none */
    const char *list; /* mr_msgid_list result joined with ' ' */
    unsigned flags;  /* flags the list parse must set */
};

/* The case table is at the bottom of the file. */
static const struct id_case *table(size_t *n_r);

#define MAX_LEN 200
#define MAX_IDS 5

static void test_table(void **state)
{
    (void)state;
    size_t n_cases;
    const struct id_case *cases = table(&n_cases);
    int failed = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const struct id_case *c = &cases[i];
        struct mr_arena *a = mr_arena_new();
        mr_span in = mr_span_make(c->in, c->in_len ? c->in_len : strlen(c->in));
        unsigned f1 = 0, f2 = 0;
        const char *one = mr_msgid_parse(a, in, MAX_LEN, &f1);
        const char **ids;
        size_t n = mr_msgid_list(a, in, MAX_IDS, MAX_LEN, &ids, &f2);
        struct mr_buf j;
        mr_buf_init(&j, 0);
        for (size_t k = 0; k < n; k++) {
            assert_true(mr_utf8_valid(ids[k], strlen(ids[k])));
            if (k)
                mr_buf_putc(&j, ' ');
            mr_buf_puts(&j, ids[k]);
        }
        const char *joined = j.p ? j.p : "";
        bool ok = (one == NULL) == (c->one == NULL) &&
                  (one == NULL || strcmp(one, c->one) == 0) &&
                  strcmp(joined, c->list) == 0 &&
                  (f2 & c->flags) == c->flags;
        if (one)
            assert_true(mr_utf8_valid(one, strlen(one)));
        if (!ok) {
            print_error("case %zu '%s': one '%s' list '%s' flags %#x\n", i,
                        c->in, one ? one : "(null)", joined, f2);
            failed++;
        }
        mr_buf_release(&j);
        mr_arena_free(&a);
    }
    assert_int_equal(failed, 0);
}

static void test_keeps_newest(void **state)
{
    (void)state;
    struct mr_arena *a = mr_arena_new();
    struct mr_buf in;
    mr_buf_init(&in, 0);
    for (int k = 0; k < 10000; k++)
        mr_buf_printf(&in, "<id%d@x>\r\n ", k);
    const char **ids;
    unsigned flags = 0;
    size_t n = mr_msgid_list(a, mr_buf_span(&in), 100, 0, &ids, &flags);
    assert_int_equal(n, 100);
    assert_true(flags & MR_MSGID_TOO_MANY);
    assert_string_equal(ids[0], "id9900@x");
    assert_string_equal(ids[99], "id9999@x");
    n = mr_msgid_list(a, mr_buf_span(&in), 0, 0, &ids, &flags);
    assert_int_equal(n, 0);
    assert_null(ids);
    mr_buf_release(&in);
    mr_arena_free(&a);
}

static void test_too_long(void **state)
{
    (void)state;
    struct mr_arena *a = mr_arena_new();
    char big[3000];
    big[0] = '<';
    memset(big + 1, 'a', sizeof(big) - 4);
    memcpy(big + sizeof(big) - 3, "@x>", 3);
    unsigned flags = 0;
    assert_null(mr_msgid_parse(a, mr_span_make(big, sizeof(big)), 0, &flags));
    assert_true(flags & MR_MSGID_TOO_LONG);
    flags = 0;
    const char *id = mr_msgid_parse(a, mr_span_make(big, sizeof(big)), 5000,
                                    &flags);
    assert_non_null(id);
    assert_int_equal(strlen(id), sizeof(big) - 2);
    mr_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_keeps_newest),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

static const char long_id[] =
    "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x> <b@y>";

static const struct id_case cases[] = {
    {"<abc@example.com>", 0, "abc@example.com", "abc@example.com", 0},
    {"  <abc@example.com>  ", 0, "abc@example.com", "abc@example.com", 0},
    {"<ABC.Def@Example.COM>", 0, "ABC.Def@Example.COM", "ABC.Def@Example.COM",
     0},
    {"(comment) <abc@x> (more)", 0, "abc@x", "abc@x", 0},
    {"<abc@\r\n x.org>", 0, "abc@x.org", "abc@x.org", 0},
    {"<very-long-id-\r\n\tcontinued@x.org>", 0, "very-long-id-continued@x.org",
     "very-long-id-continued@x.org", 0},
    {"<\"abc\"@x>", 0, "abc@x", "abc@x", 0},
    {"<\"a.b\"@x>", 0, "a.b@x", "a.b@x", 0},
    {"<\"a b\"@x>", 0, "\"a b\"@x", "\"a b\"@x", 0},
    {"<\"a..b\"@x>", 0, "\"a..b\"@x", "\"a..b\"@x", 0},
    {"<\"a>b\"@x>", 0, "\"a>b\"@x", "\"a>b\"@x", 0},
    {"<>", 0, NULL, "", 0},
    {"<> <abc@x>", 0, "abc@x", "abc@x", 0},
    {"", 0, NULL, "", 0},
    {"   ", 0, NULL, "", 0},
    {"abc@x.org", 0, "abc@x.org", "abc@x.org", MR_MSGID_NO_BRACKETS},
    {"abc@x.org (Comment)", 0, "abc@x.org", "abc@x.org",
     MR_MSGID_NO_BRACKETS},
    {"not an id", 0, NULL, "", MR_MSGID_JUNK},
    {"<<abc@x>>", 0, "abc@x", "abc@x", MR_MSGID_JUNK},
    {"<abc@x", 0, "abc@x", "abc@x", MR_MSGID_NO_BRACKETS},
    {"<a@x> <b@y> <c@z>", 0, "a@x", "a@x b@y c@z", 0},
    {"<a@x>,<b@y>,\r\n\t<c@z>", 0, "a@x", "a@x b@y c@z", 0},
    {"<a@x><b@y>", 0, "a@x", "a@x b@y", 0},
    {"<1@x> <2@x> <3@x> <4@x> <5@x> <6@x> <7@x>", 0, "1@x",
     "3@x 4@x 5@x 6@x 7@x", MR_MSGID_TOO_MANY},
    /* In-Reply-To with a phrase: the bare word with '@' is not an id */
    {"john@x.org's message of \"Mon, 6 Jan 2025\" <a@x>", 0, "a@x", "a@x",
     MR_MSGID_JUNK},
    {"Your message of Mon, 6 Jan 2025 10:00:00 +0000. <a@x>", 0, "a@x",
     "a@x", MR_MSGID_JUNK},
    {"<a@x> (from John Doe on Mon, 6 Jan 2025)", 0, "a@x", "a@x", 0},
    {"a@x b@y", 0, NULL, "a@x b@y", MR_MSGID_NO_BRACKETS},
    {"<a\x01"
     "b@x>",
     0, "ab@x", "ab@x", MR_MSGID_JUNK},
    {"<a\0b@x>", 7, "ab@x", "ab@x", MR_MSGID_JUNK},
    {"<caf\xe9@x>", 0, "caf\xef\xbf\xbd@x", "caf\xef\xbf\xbd@x", 0},
    {"<caf\xc3\xa9@x>", 0, "caf\xc3\xa9@x", "caf\xc3\xa9@x", 0},
    {long_id, 0, "b@y", "b@y", MR_MSGID_TOO_LONG},
    {"(unterminated <a@x>", 0, NULL, "", 0},
    {">>> <a@x>", 0, "a@x", "a@x", MR_MSGID_JUNK},
};

static const struct id_case *table(size_t *n_r)
{
    *n_r = sizeof(cases) / sizeof(cases[0]);
    return cases;
}
