/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_params.c - mr_params_parse over a table of Content-Type and
 * Content-Disposition values: RFC 2231 in every shape, RFC 2047 inside
 * quotes, raw 8-bit, broken quoting, duplicates, limits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mime/params.h"
#include "util/buf.h"
#include "util/utf8.h"

struct params_case {
    const char *in;
    size_t in_len;          /* 0: strlen(in) */
    const char *value;
    const char *params;     /* "name=value" pairs joined with '|' */
    unsigned flags;         /* flags that must be set */
};

/* The case table is at the bottom of the file. */
static const struct params_case *table(size_t *n_r);

static void join(const struct mr_params *p, struct mr_buf *b)
{
    mr_buf_reset(b);
    for (size_t k = 0; k < p->n; k++) {
        if (k)
            mr_buf_putc(b, '|');
        mr_buf_printf(b, "%s=", p->items[k].name);
        mr_buf_append(b, p->items[k].value, p->items[k].value_len);
    }
}

static void check_strings(const struct mr_params *p)
{
    assert_non_null(p->value);
    assert_true(mr_utf8_valid(p->value, strlen(p->value)));
    for (size_t k = 0; k < p->n; k++) {
        const struct mr_param *it = &p->items[k];
        assert_true(mr_utf8_valid(it->name, strlen(it->name)));
        assert_true(mr_utf8_valid(it->value, it->value_len));
        assert_int_equal(strlen(it->value), it->value_len); /* no NUL */
        assert_ptr_equal(mr_params_get(p, it->name), it);
    }
}

static void test_table(void **state)
{
    (void)state;
    size_t n_cases;
    const struct params_case *cases = table(&n_cases);
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_buf b;
    mr_buf_init(&b, 0);
    int failed = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const struct params_case *c = &cases[i];
        struct mr_arena *a = mr_arena_new();
        struct mr_params p;
        size_t len = c->in_len ? c->in_len : strlen(c->in);
        unsigned flags =
            mr_params_parse(a, cs, mr_span_make(c->in, len), 16, &p);
        check_strings(&p);
        join(&p, &b);
        const char *got = b.p ? b.p : "";
        if (strcmp(p.value, c->value) != 0 || strcmp(got, c->params) != 0 ||
            (flags & c->flags) != c->flags ||
            (c->flags == 0 && flags != 0)) {
            print_error("case %zu '%s':\n  value '%s' params '%s' flags %#x"
                        "\n  want  '%s' params '%s' flags %#x\n",
                        i, c->in, p.value, got, flags, c->value, c->params,
                        c->flags);
            failed++;
        }
        mr_arena_free(&a);
    }
    mr_buf_release(&b);
    mr_charset_ctx_free(&cs);
    assert_int_equal(failed, 0);
}

static void test_raw_latin1(void **state)
{
    (void)state;
    /* Unlabeled 8-bit: decoded by detection, which may pick any single
     * byte charset; what matters is valid UTF-8 and the flag. */
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_arena *a = mr_arena_new();
    struct mr_params p;
    unsigned f = mr_params_parse(
        a, cs, mr_span_cstr("attachment; filename=\"r\xe9sum\xe9 fran\xe7"
                            "ais d\xe9j\xe0 vu.pdf\""), 16, &p);
    check_strings(&p);
    assert_true(f & MR_PARAMS_CHARSET);
    const struct mr_param *fn = mr_params_get(&p, "filename");
    assert_non_null(fn);
    assert_true(fn->value_len >= strlen("rsum franais dj vu.pdf") + 6);
    assert_string_equal(fn->value + fn->value_len - 4, ".pdf");
    mr_arena_free(&a);
    mr_charset_ctx_free(&cs);
}

static void test_limits(void **state)
{
    (void)state;
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_arena *a = mr_arena_new();
    struct mr_buf in;
    mr_buf_init(&in, 0);
    mr_buf_puts(&in, "text/plain");
    for (int k = 0; k < 10000; k++)
        mr_buf_printf(&in, "; p%d=v%d", k, k);
    struct mr_params p;
    unsigned f = mr_params_parse(a, cs, mr_buf_span(&in), 64, &p);
    assert_int_equal(p.n, 64);
    assert_true(f & MR_PARAMS_TOO_MANY);
    assert_string_equal(mr_params_get(&p, "p63")->value, "v63");
    assert_null(mr_params_get(&p, "p64"));

    /* 1000 continuations in reverse order. */
    mr_buf_reset(&in);
    mr_buf_puts(&in, "attachment");
    for (int k = 999; k >= 0; k--)
        mr_buf_printf(&in, "; filename*%d=%c", k, 'a' + k % 26);
    f = mr_params_parse(a, cs, mr_buf_span(&in), 64, &p);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.items[0].value_len, 1000);
    assert_memory_equal(p.items[0].value, "abcdefghijklmnopqrstuvwxyzab", 28);

    /* Garbage: must not loop or crash. */
    mr_buf_reset(&in);
    for (int k = 0; k < 20000; k++)
        mr_buf_puts(&in, "\"=;(*0*=");
    f = mr_params_parse(a, cs, mr_buf_span(&in), 64, &p);
    check_strings(&p);
    mr_buf_release(&in);

    /* Every prefix of a complicated value. */
    const char *s = "attachment; filename*0*=utf-8'en'%E2%82; "
                    "filename*1*=%AC.txt; name=\"=?utf-8?Q?a?=\" (c)";
    for (size_t k = 0; k <= strlen(s); k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, s, k);
        mr_params_parse(a, cs, mr_span_make(copy, k), 64, &p);
        check_strings(&p);
        free(copy);
    }
    mr_params_parse(a, cs, MR_SPAN_NULL, 64, &p);
    assert_string_equal(p.value, "");
    assert_int_equal(p.n, 0);
    mr_arena_free(&a);
    mr_charset_ctx_free(&cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_raw_latin1),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#define DUP MR_PARAMS_DUPLICATE
#define SYN MR_PARAMS_BAD_SYNTAX
#define B2231 MR_PARAMS_BAD_2231

static const struct params_case cases[] = {
    {"text/plain", 0, "text/plain", "", 0},
    {"text/plain; charset=\"utf-8\"", 0, "text/plain", "charset=utf-8", 0},
    {"TEXT/PLAIN;CHARSET=UTF-8", 0, "text/plain", "charset=UTF-8", 0},
    {"  Text/HTML ; Charset = \"ISO-8859-1\" ", 0, "text/html",
     "charset=ISO-8859-1", 0},
    {"text / plain; charset=us-ascii (Plain text)", 0, "text/plain",
     "charset=us-ascii", 0},
    {"text/plain (comment); charset=utf-8", 0, "text/plain", "charset=utf-8",
     0},
    {"multipart/mixed;\r\n\tboundary=\"----=_Part_1_2.3\"", 0,
     "multipart/mixed", "boundary=----=_Part_1_2.3", 0},
    {"multipart/mixed; boundary=\"=?not-a-word?=\"", 0, "multipart/mixed",
     "boundary==?not-a-word?=", 0},
    {"attachment", 0, "attachment", "", 0},
    {"", 0, "", "", 0},
    /* RFC 2231 */
    {"attachment; filename*=UTF-8''%E2%82%AC%20rates.txt", 0, "attachment",
     "filename=\xe2\x82\xac rates.txt", 0},
    {"attachment; filename*0*=utf-8''%E2%82; filename*1*=%AC.txt", 0,
     "attachment", "filename=\xe2\x82\xac.txt", 0},
    {"attachment; filename*1*=%AC.txt; filename*0*=utf-8''%E2%82", 0,
     "attachment", "filename=\xe2\x82\xac.txt", 0},
    {"attachment; filename*2=c.txt; filename*0=a; filename*1=b", 0,
     "attachment", "filename=abc.txt", 0},
    {"attachment; name*0*=utf-8''%E2%82%AC; name*1=.txt", 0, "attachment",
     "name=\xe2\x82\xac.txt", 0},
    {"attachment; filename*0*=iso-8859-1'de'M%FCller; filename*1=.pdf", 0,
     "attachment", "filename=M\xc3\xbcller.pdf", 0},
    {"attachment; filename*=''%2e%2e%2fetc", 0, "attachment",
     "filename=../etc", 0},
    {"attachment; filename*=utf-8'en'invoice.pdf%00.exe", 0, "attachment",
     "filename=invoice.pdf.exe", 0},
    {"attachment; filename*0=a; filename*2=c", 0, "attachment", "filename=a",
     B2231},
    {"attachment; filename*1=b", 0, "attachment", "filename=", B2231},
    {"attachment; filename*=utf-8''100%", 0, "attachment", "filename=100%",
     B2231},
    {"attachment; filename*=utf-8''%zz.txt", 0, "attachment",
     "filename=%zz.txt", B2231},
    {"attachment; filename*=%E2%82%AC.txt", 0, "attachment",
     "filename=\xe2\x82\xac.txt", B2231},
    {"attachment; filename*=\"utf-8''a%20b.txt\"", 0, "attachment",
     "filename=a b.txt", 0},
    {"attachment; filename*=x-unknown-cs''abc", 0, "attachment",
     "filename=abc", MR_PARAMS_CHARSET},
    /* 2231 beats plain whatever the order; plain duplicates: first wins */
    {"attachment; filename=\"fallback.txt\"; "
     "filename*=utf-8''%E2%82%AC.txt",
     0, "attachment", "filename=\xe2\x82\xac.txt", 0},
    {"attachment; filename*=utf-8''%E2%82%AC.txt; filename=fallback.txt", 0,
     "attachment", "filename=\xe2\x82\xac.txt", 0},
    {"multipart/mixed; boundary=first; boundary=second", 0,
     "multipart/mixed", "boundary=first", DUP},
    {"a/b; x*=utf-8''1; x*=utf-8''2", 0, "a/b", "x=1", DUP},
    {"a/b; x*0=1; x*0=2; x*1=3", 0, "a/b", "x=13", DUP},
    /* RFC 2047 in quoted values (Outlook, Gmail) */
    {"attachment; filename=\"=?UTF-8?B?0YTQsNC50LsudHh0?=\"", 0, "attachment",
     "filename=\xd1\x84\xd0\xb0\xd0\xb9\xd0\xbb.txt", 0},
    {"application/pdf; name=\"=?iso-8859-1?Q?R=E9sum=E9.pdf?=\"", 0,
     "application/pdf", "name=R\xc3\xa9sum\xc3\xa9.pdf", 0},
    {"attachment; filename==?utf-8?Q?a_b.txt?=", 0, "attachment",
     "filename=a b.txt", 0},
    /* raw UTF-8 */
    {"attachment; filename=\"r\xc3\xa9sum\xc3\xa9.pdf\"", 0, "attachment",
     "filename=r\xc3\xa9sum\xc3\xa9.pdf", 0},
    /* quoting */
    {"a/b; name=\"a\\\"b\\\\c\"", 0, "a/b", "name=a\"b\\c", 0},
    {"a/b; name=\"a;b\"; x=1", 0, "a/b", "name=a;b|x=1", 0},
    {"a/b; name=\"unterminated", 0, "a/b", "name=unterminated", SYN},
    {"a/b; name=my file.txt; x=1", 0, "a/b", "name=my file.txt|x=1", 0},
    {"a/b; name=\"x\" junk; y=2", 0, "a/b", "name=x|y=2", SYN},
    {"a/b; name=\"a\r\n b\"", 0, "a/b", "name=a\r\n b", 0},
    {"a/b; name=\"a\0b\"", 15, "a/b", "name=ab", 0},
    /* stray ';' and empty or broken parameters */
    {"text/plain; ;charset=utf-8", 0, "text/plain", "charset=utf-8", SYN},
    {"text/plain;charset=utf-8;", 0, "text/plain", "charset=utf-8", 0},
    {"text/plain; charset", 0, "text/plain", "", SYN},
    {"text/plain; =x; charset=utf-8", 0, "text/plain", "charset=utf-8", SYN},
    {"text/plain; charset=", 0, "text/plain", "charset=", 0},
    {"text/plain; charset=\"\"", 0, "text/plain", "charset=", 0},
    {"multipart/mixed boundary=abc", 0, "multipart/mixed", "boundary=abc",
     SYN},
    {"text/plain; (comment only)", 0, "text/plain", "", 0},
    {"text/plain; ch\xe9rset=x; a=b", 0, "text/plain", "a=b", SYN},
};

static const struct params_case *table(size_t *n_r)
{
    *n_r = sizeof(cases) / sizeof(cases[0]);
    return cases;
}
