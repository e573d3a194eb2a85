/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for rfc2047.c: header value decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mime/rfc2047.h"
#include "util/utf8.h"

#define Q MR_RFC2047_IN_QUOTES
#define BAD MR_RFC2047_BAD_WORD
#define CS MR_RFC2047_CHARSET
#define INV MR_RFC2047_INVALID
#define CTL MR_RFC2047_CONTROL
#define RAW MR_RFC2047_RAW8BIT

struct case_ {
    const char *in;
    size_t n; /* 0: strlen */
    unsigned opts;
    const char *want;
    unsigned flags;
};

static const struct case_ cases[] = {
    {"", 0, 0, "", 0},
    {"plain subject", 0, 0, "plain subject", 0},
    {"  trimmed \t ", 0, 0, "trimmed", 0},
    /* adjacent words: the space between them goes */
    {"=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", 0, 0, "ab", 0},
    {"=?utf-8?B?4oKs?=", 0, 0, "\xe2\x82\xac", 0},
    /* a character split across words, mid-sequence, B and Q */
    {"=?UTF-8?B?4g==?= =?UTF-8?B?gqw=?=", 0, 0, "\xe2\x82\xac", 0},
    {"=?utf-8?Q?=E2=82?=\r\n =?UTF-8?Q?=AC_!?=", 0, 0, "\xe2\x82\xac !", 0},
    {"=?utf-8?B?4g==?==?utf-8?B?gqw=?=", 0, 0, "\xe2\x82\xac", 0},
    /* different charsets: converted separately, space still dropped */
    {"=?iso-8859-1?Q?caf=E9?= =?utf-8?Q?_ok?=", 0, 0, "caf\xc3\xa9 ok", 0},
    /* Q details */
    {"=?utf-8?Q?hello_world?=", 0, 0, "hello world", 0},
    {"=?utf-8?q?caf=c3=a9?=", 0, 0, "caf\xc3\xa9", 0},
    {"=?UTF-8?b?Y2Fmw6k=?=", 0, 0, "caf\xc3\xa9", 0},
    {"=?utf-8?Q?a=3F?=", 0, 0, "a?", 0},
    {"=?utf-8?Q?what?\?=", 0, 0, "what?", 0},
    {"=?utf-8?Q?\?=", 0, 0, "", 0},
    /* no space around words */
    {"Re:=?utf-8?Q?caf=C3=A9?=", 0, 0, "Re:caf\xc3\xa9", 0},
    {"=?utf-8?Q?x?=abc", 0, 0, "xabc", 0},
    {"(=?utf-8?Q?x?=)", 0, 0, "(x)", 0},
    /* spaces between a word and plain text stay */
    {"=?utf-8?Q?a?=  plain  =?utf-8?Q?b?=", 0, 0, "a  plain  b", 0},
    {"Re: =?utf-8?Q?a?= x", 0, 0, "Re: a x", 0},
    /* decoded exactly once */
    {"=?utf-8?B?PT91dGYtOD9RP3g/PQ==?=", 0, 0, "=?utf-8?Q?x?=", 0},
    /* no header injection */
    {"=?utf-8?Q?a=0D=0ABcc:_x?=", 0, 0, "a  Bcc: x", CTL},
    {"=?utf-8?Q?a=00b?=", 0, 0, "ab", CTL},
    {"=?utf-8?Q?a=C2=85b?=", 0, 0, "a b", CTL},
    {"=?utf-8?Q?a=09b?=", 0, 0, "a b", 0},
    /* unfolding: only the line break goes */
    {"Hello\r\n world", 0, 0, "Hello world", 0},
    {"Hello\n\tworld", 0, 0, "Hello world", 0},
    {"Hello\r world", 0, 0, "Hello world", 0},
    {"abc\r\n", 0, 0, "abc", 0},
    {"a\nb", 0, 0, "a b", CTL},
    {"a\r\nBcc: x", 0, 0, "a Bcc: x", CTL},
    {"a\0b", 3, 0, "a b", CTL},
    {"a\x1b"
     "b\x7f",
     0, 0, "a b", CTL},
    /* charsets */
    {"=?utf-8*en?Q?hi?=", 0, 0, "hi", 0},
    {"=?ISO-2022-JP?B?GyRCRnxLXBsoQg==?=", 0, 0, "\xe6\x97\xa5\xe6\x9c\xac", 0},
    {"=?x-unknown-42?Q?abc?=", 0, 0, "abc", CS},
    {"=?x-unknown-42?Q?caf=E9?=", 0, 0, "caf\xc3\xa9", CS},
    {"=?utf-8?Q?caf=E9?=", 0, 0, "caf\xc3\xa9", CS}, /* lying label */
    {"=?windows-1252?Q?a=81b?=", 0, 0,
     "a\xef\xbf\xbd"
     "b",
     INV},
    /* broken words kept literally */
    {"=?utf-8?B?!!!!?=", 0, 0, "=?utf-8?B?!!!!?=", BAD},
    {"=?utf-8?Q?abc", 0, 0, "=?utf-8?Q?abc", BAD},
    {"=?utf-8?X?abc?=", 0, 0, "=?utf-8?X?abc?=", BAD},
    {"=?utf-8?Q?a b?=", 0, 0, "=?utf-8?Q?a b?=", BAD},
    {"=??Q?abc?=", 0, 0, "=??Q?abc?=", 0},
    {"=?*en?Q?abc?=", 0, 0, "=?*en?Q?abc?=", BAD},
    {"what =? no", 0, 0, "what =? no", 0},
    {"=?=?utf-8?Q?x?=", 0, 0, "=?x", 0},
    {"=?utf-8?Q?a?= =?bad", 0, 0, "a =?bad", 0},
    /* quoted strings */
    {"\"=?utf-8?Q?J=C3=B6rg?=\" <j@x>", 0, 0, "\"=?utf-8?Q?J=C3=B6rg?=\" <j@x>",
     0},
    {"\"=?utf-8?Q?J=C3=B6rg?=\" <j@x>", 0, Q, "\"J\xc3\xb6rg\" <j@x>", 0},
    {"\"a \\\" =?utf-8?Q?x?=\" =?utf-8?Q?y?=", 0, 0,
     "\"a \\\" =?utf-8?Q?x?=\" y", 0},
    /* raw 8-bit */
    {"Gr\xc3\xbc\xc3\x9f"
     "e",
     0, 0,
     "Gr\xc3\xbc\xc3\x9f"
     "e",
     0},
    {"Gr\xfc\xdf"
     "e aus M\xfc"
     "nchen",
     0, 0,
     "Gr\xc3\xbc\xc3\x9f"
     "e aus M\xc3\xbc"
     "nchen",
     RAW},
    {"caf\xe9 =?utf-8?Q?=E2=82=AC?=", 0, 0, "caf\xc3\xa9 \xe2\x82\xac", RAW},
};

static void test_table(void **state)
{
    (void)state;
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct case_ *c = &cases[i];
        size_t n = c->n ? c->n : strlen(c->in);
        struct mr_buf out;
        mr_buf_init(&out, 0);
        unsigned f =
            mr_rfc2047_decode(cs, mr_span_make(c->in, n), c->opts, &out);
        const char *got = out.p ? out.p : "";
        if (strcmp(got, c->want) != 0 || f != c->flags)
            print_error("case %zu \"%s\": got \"%s\" flags %#x\n", i, c->in,
                        got, f);
        assert_int_equal(out.len, strlen(c->want));
        assert_string_equal(got, c->want);
        assert_int_equal(f, c->flags);
        assert_true(mr_utf8_valid(got, out.len));
        mr_buf_release(&out);
    }
    mr_charset_ctx_free(&cs);
}

/* Appending keeps what the buffer held and trims only the new part. */
static void test_append(void **state)
{
    (void)state;
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_buf out;
    mr_buf_init(&out, 0);
    mr_buf_puts(&out, "x: ");
    mr_rfc2047_decode(cs, MR_SPAN_LIT("  =?utf-8?Q?_a_?=  "), 0, &out);
    assert_string_equal(out.p, "x: a");
    mr_buf_release(&out);
    mr_charset_ctx_free(&cs);
}

/* Long words (real mail has 300-character ones) decode whole. */
static void test_long_word(void **state)
{
    (void)state;
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_buf in, out;
    mr_buf_init(&in, 0);
    mr_buf_init(&out, 0);
    mr_buf_puts(&in, "=?utf-8?B?");
    for (int i = 0; i < 100; i++)
        mr_buf_puts(&in, "4oKs"); /* 100 euro signs, 400 characters */
    mr_buf_puts(&in, "?=");
    unsigned f = mr_rfc2047_decode(cs, mr_buf_span(&in), 0, &out);
    assert_int_equal(f, 0);
    assert_int_equal(out.len, 300);
    for (size_t i = 0; i < 300; i += 3)
        assert_memory_equal(out.p + i, "\xe2\x82\xac", 3);
    mr_buf_release(&in);
    mr_buf_release(&out);
    mr_charset_ctx_free(&cs);
}

/* Hostile values: many word starts without an end, many words. The work
 * must stay linear: a quadratic scan of 1 MB would take minutes. */
static void test_hostile_linear(void **state)
{
    (void)state;
    static const char *units[] = {
        "=?a?q?", "=?", "=?utf-8?Q?a?=", "=?utf-8?B?4g==?=", "?=?", "\"=?a?q?"};
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        struct mr_buf in, out;
        mr_buf_init(&in, 0);
        mr_buf_init(&out, 0);
        while (in.len < 1000000)
            mr_buf_puts(&in, units[u]);
        clock_t t0 = clock();
        mr_rfc2047_decode(cs, mr_buf_span(&in), u & 1 ? Q : 0, &out);
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        assert_true(secs < 5.0);
        assert_true(mr_utf8_valid(out.p ? out.p : "", out.len));
        mr_buf_release(&in);
        mr_buf_release(&out);
    }
    mr_charset_ctx_free(&cs);
}

/* Random bytes from an alphabet rich in syntax: always valid UTF-8 with
 * no control characters. */
static void test_random(void **state)
{
    (void)state;
    static const char alpha[] = "=?QqBb_ \r\n\t\"\\aZ09=+/\xe9\xc3\xa9\x00\x1b";
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    uint32_t seed = 99;
    char in[200];
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)round % sizeof(in);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
        }
        struct mr_buf out;
        mr_buf_init(&out, 0);
        mr_rfc2047_decode(cs, mr_span_make(in, n), (unsigned)round & 1, &out);
        const char *p = out.p ? out.p : "";
        assert_true(mr_utf8_valid(p, out.len));
        for (size_t i = 0; i < out.len; i++)
            assert_true((unsigned char)p[i] >= 0x20 && p[i] != 0x7F);
        mr_buf_release(&out);
    }
    mr_charset_ctx_free(&cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),     cmocka_unit_test(test_append),
        cmocka_unit_test(test_long_word), cmocka_unit_test(test_hostile_linear),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
