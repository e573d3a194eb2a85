/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for charset.c: aliasing, conversion, errors, detection. */
#include <errno.h>
#include <iconv.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime/charset.h"
#include "util/error.h"
#include "util/utf8.h"

#define FFFD "\xef\xbf\xbd"

struct conv_case {
    const char *label; /* NULL: unlabeled */
    const char *in;
    size_t n;
    const char *want;
    unsigned flags;
};

#define C(label, in, want, flags)                                              \
    {                                                                          \
        label, in, sizeof(in) - 1, want, flags                                 \
    }

static const struct conv_case cases[] = {
    /* WHATWG: Latin-1 and ASCII labels mean windows-1252 */
    C("iso-8859-1", "\x93quoted\x94", "\xe2\x80\x9cquoted\xe2\x80\x9d", 0),
    C("ISO-8859-1", "caf\xe9", "caf\xc3\xa9", 0),
    C("latin1", "\x80 5", "\xe2\x82\xac 5", 0),
    C("cp819", "\xe9", "\xc3\xa9", 0),
    C("windows-1252",
      "a\x81"
      "b",
      "a" FFFD "b", MR_CHARSET_INVALID),
    /* CJK */
    C("gb2312", "\xd6\xd0\xce\xc4", "\xe4\xb8\xad\xe6\x96\x87", 0),
    C("GBK", "\x80", "\xe2\x82\xac", 0),
    C("big5", "\xa4\xa4", "\xe4\xb8\xad", 0),
    C("Shift_JIS", "\x93\xfa\x96\x7b\x8c\xea",
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 0),
    C("x-sjis", "\x87\x40", "\xe2\x91\xa0", 0), /* CP932 extension */
    C("ks_c_5601-1987", "\xc7\xd1", "\xed\x95\x9c", 0),
    C("euc-kr", "\xc7\xd1", "\xed\x95\x9c", 0),
    C("iso-2022-jp", "\x1b$BF|K\\\x1b(B!", "\xe6\x97\xa5\xe6\x9c\xac!", 0),
    /* a broken escape: U+FFFD, state reset, the rest as ASCII */
    C("iso-2022-jp", "a\x1b$Zb", "a" FFFD "$Zb", MR_CHARSET_INVALID),
    /* truncated in the middle of a double-byte character */
    C("iso-2022-jp", "\x1b$BF", FFFD, MR_CHARSET_INVALID),
    C("koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4",
      "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 0),
    /* UTF-16: BOM, byte order from the zeros, odd byte count */
    C("utf-16",
      "\xff\xfe"
      "a\0b\0",
      "ab", 0),
    C("utf-16", "\xfe\xff\0a\0b", "ab", 0),
    C("utf-16", "a\0b\0c\0", "abc", 0),
    C("utf-16", "\0a\0b\0c", "abc", 0),
    C("UTF-16LE", "a\0b\0c", "ab" FFFD, MR_CHARSET_INVALID),
    C("utf-16le", "a\0\0\0b\0", "ab", MR_CHARSET_NUL),
    C("utf-16le",
      "\x3d\xd8"
      "a\0",
      FFFD "a", MR_CHARSET_INVALID),
    /* UTF-7: decoded, and what it decodes to is just text */
    C("utf-7", "+AGEAYgBj-", "abc", 0),
    C("unicode-1-1-utf-7", "Hi Mom -+Jjo--!", "Hi Mom -\xe2\x98\xba-!", 0),
    C("utf-7", "+ADw-script+AD4-", "<script>", 0),
    C("utf-7", "a+AAA-b", "ab", MR_CHARSET_NUL),
    /* UTF-8 and ASCII labels: fast path, or detection when they lie */
    C("utf-8", "caf\xc3\xa9", "caf\xc3\xa9", 0),
    C("utf8", "\xe2\x82\xac", "\xe2\x82\xac", 0),
    C("us-ascii", "caf\xc3\xa9", "caf\xc3\xa9", 0),
    /* "caf\xe9" labeled utf-8: detection decodes it (uchardet says a
     * Latin charset; é is 0xE9 in all of them), no U+FFFD */
    C("utf-8", "caf\xe9", "caf\xc3\xa9", MR_CHARSET_DETECTED),
    C("us-ascii", "\x93hi\x94", "\xe2\x80\x9chi\xe2\x80\x9d",
      MR_CHARSET_DETECTED),
    C("utf-8", "a\0b", "ab", MR_CHARSET_NUL),
    /* label cleaning */
    C("\"utf-8\\\"", "caf\xc3\xa9", "caf\xc3\xa9", 0),
    C("  'UTF-8'  ", "x", "x", 0),
    C("\"", "x", "x", 0),
    /* unlabeled */
    C(NULL, "caf\xc3\xa9", "caf\xc3\xa9", 0),
    C("", "plain", "plain", 0),
    C("unknown-8bit", "caf\xc3\xa9", "caf\xc3\xa9", 0),
    C(NULL,
      "Gr\xfc\xdf"
      "e aus M\xfc"
      "nchen",
      "Gr\xc3\xbc\xc3\x9f"
      "e aus M\xc3\xbc"
      "nchen",
      MR_CHARSET_DETECTED),
    /* unknown labels */
    C("x-unknown-42", "plain", "plain", MR_CHARSET_UNKNOWN),
    C("x-unknown-42", "caf\xc3\xa9", "caf\xc3\xa9", MR_CHARSET_UNKNOWN),
    C("x-unknown-42", "caf\xe9", "caf\xc3\xa9",
      MR_CHARSET_UNKNOWN | MR_CHARSET_DETECTED),
    C("UTF-8//IGNORE", "x", "x", MR_CHARSET_UNKNOWN),
    C("a-label-that-is-far-too-long-to-be-any-charset-name", "x", "x",
      MR_CHARSET_UNKNOWN),
    /* iconv knows more than the table */
    C("iso-8859-15", "\xa4", "\xe2\x82\xac", 0),
    C("x-mac-roman", "\xa5", "\xe2\x80\xa2", 0),
    C("ibm850", "\x82", "\xc3\xa9", 0),
};

static void test_convert_table(void **state)
{
    (void)state;
    struct mr_charset_ctx *ctx = mr_charset_ctx_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct conv_case *c = &cases[i];
        struct mr_buf out;
        mr_buf_init(&out, 0);
        mr_span label = c->label ? mr_span_cstr(c->label) : MR_SPAN_NULL;
        unsigned flags = mr_charset_to_utf8(ctx, label, c->in, c->n, &out);
        const char *got = out.p ? out.p : "";
        if (strcmp(got, c->want) != 0 || flags != c->flags)
            print_error("case %zu (%s): got \"%s\" flags %u\n", i,
                        c->label ? c->label : "(none)", got, flags);
        assert_string_equal(got, c->want);
        assert_int_equal(flags, c->flags);
        assert_true(mr_utf8_valid(got, out.len));
        mr_buf_release(&out);
    }
    mr_charset_ctx_free(&ctx);
    assert_null(ctx);
}

static void test_resolve(void **state)
{
    (void)state;
    static const struct {
        const char *label;
        const char *want; /* NULL: not found */
    } r[] = {
        {"iso-8859-1", "WINDOWS-1252"},
        {"Latin1", "WINDOWS-1252"},
        {"US-ASCII", "WINDOWS-1252"},
        {"ascii", "WINDOWS-1252"},
        {"cp819", "WINDOWS-1252"},
        {"l1", "WINDOWS-1252"},
        {"gb2312", "GB18030"},
        {"csgb2312", "GB18030"},
        {"x-gbk", "GB18030"},
        {"GBK", "GB18030"},
        {"ks_c_5601-1987", "CP949"},
        {"x-sjis", "CP932"},
        {"shift-jis", "CP932"},
        {"utf8", "UTF-8"},
        {"unicode-1-1-utf-7", "UTF-7"},
        {"utf-7", "UTF-7"},
        {"x-mac-cyrillic", "MAC-CYRILLIC"},
        {"iso-8859-15", "ISO-8859-15"},
        {" \"KOI8-R\" ", "KOI8-R"},
        {"x-unknown-42", NULL},
        {"", NULL},
        {"utf-8//IGNORE", NULL},
        {"../../etc", NULL},
    };
    struct mr_charset_ctx *ctx = mr_charset_ctx_new();
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        char name[48];
        int rc = mr_charset_resolve(ctx, mr_span_cstr(r[i].label), name,
                                    sizeof(name));
        if (r[i].want == NULL) {
            assert_int_equal(rc, MR_ENOTFOUND);
        } else {
            assert_int_equal(rc, 0);
            assert_string_equal(name, r[i].want);
        }
    }
    mr_charset_ctx_free(&ctx);
}

/* More charsets than cache slots, twice over: eviction keeps working. */
static void test_cache_eviction(void **state)
{
    (void)state;
    static const char *labels[] = {
        "iso-8859-2",   "iso-8859-3",   "iso-8859-4",   "iso-8859-5",
        "iso-8859-6",   "iso-8859-7",   "iso-8859-8",   "iso-8859-10",
        "iso-8859-13",  "iso-8859-14",  "iso-8859-15",  "iso-8859-16",
        "windows-1250", "windows-1251", "windows-1253", "windows-1255",
        "windows-1256", "windows-1257", "koi8-u",       "x-bogus-1",
        "x-bogus-2",    "latin1"};
    struct mr_charset_ctx *ctx = mr_charset_ctx_new();
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
            struct mr_buf out;
            mr_buf_init(&out, 0);
            mr_charset_to_utf8(ctx, mr_span_cstr(labels[i]), "ab\xe9", 3, &out);
            assert_true(out.len >= 3);
            assert_memory_equal(out.p, "ab", 2);
            assert_true(mr_utf8_valid(out.p, out.len));
            mr_buf_release(&out);
        }
    }
    mr_charset_ctx_free(&ctx);
    mr_charset_ctx_free(&ctx); /* NULL after the first: harmless */
}

/* Random bytes under every kind of label always give valid UTF-8. */
static void test_garbage_is_valid(void **state)
{
    (void)state;
    static const char *labels[] = {
        "utf-8", "utf-7", "utf-16", "iso-2022-jp", "shift_jis", "gb18030",
        "big5",  "",      "x-nope", "euc-jp",      "utf-32"};
    struct mr_charset_ctx *ctx = mr_charset_ctx_new();
    uint32_t seed = 12345;
    char in[777];
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof(in); i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)(seed >> 16);
            if (round & 1)
                in[i] &= 0x7F; /* 7-bit: exercises UTF-7 and ISO-2022 */
        }
        for (size_t l = 0; l < sizeof(labels) / sizeof(labels[0]); l++) {
            struct mr_buf out;
            mr_buf_init(&out, 0);
            mr_charset_to_utf8(ctx, mr_span_cstr(labels[l]), in,
                               (size_t)round * 15 + 1, &out);
            assert_true(mr_utf8_valid(out.p ? out.p : "", out.len));
            assert_null(memchr(out.p ? out.p : "", '\0', out.len));
            mr_buf_release(&out);
        }
    }
    mr_charset_ctx_free(&ctx);
}

/* Conversion output longer than the internal chunk. */
static void test_long_input(void **state)
{
    (void)state;
    static char in[100000];
    memset(in, '\xe9', sizeof(in));
    struct mr_charset_ctx *ctx = mr_charset_ctx_new();
    struct mr_buf out;
    mr_buf_init(&out, 0);
    unsigned f =
        mr_charset_to_utf8(ctx, MR_SPAN_LIT("latin1"), in, sizeof(in), &out);
    assert_int_equal(f, 0);
    assert_int_equal(out.len, 2 * sizeof(in));
    assert_true(mr_utf8_valid(out.p, out.len));
    /* a capped output stops the conversion early */
    struct mr_buf small;
    mr_buf_init(&small, 1000);
    mr_charset_to_utf8(ctx, MR_SPAN_LIT("latin1"), in, sizeof(in), &small);
    assert_true(small.limited);
    assert_int_equal(small.len, 1000);
    mr_buf_release(&small);
    mr_buf_release(&out);
    mr_charset_ctx_free(&ctx);
}

/* Double-byte charsets through their tables, and the characters that
 * make conversion go on with iconv (sequences of more than two bytes, a
 * character iconv holds back). */
static const struct conv_case dbcs_cases[] = {
    C("shift_jis", "\x93\xfa\x96\x7b\x8c\xea abc",
      "\xe6\x97\xa5\xe6\x9c\xac"
      "\xe8\xaa\x9e abc",
      0),
    C("shift_jis", "\xb1\xb2", "\xef\xbd\xb1\xef\xbd\xb2", 0), /* half-width */
    C("shift_jis", "a\x81", "a" FFFD, MR_CHARSET_INVALID), /* lead at the end */
    C("shift_jis", "\x81\x20x", FFFD " x", MR_CHARSET_INVALID), /* bad pair */
    C("shift_jis", "\x93\x00\x96\x7b", FFFD "\xe6\x9c\xac",
      MR_CHARSET_INVALID | MR_CHARSET_NUL),
    C("gbk", "\xc4\xe3\xba\xc3", "\xe4\xbd\xa0\xe5\xa5\xbd", 0),
    C("gb18030", "\xc4\xe3\x81\x30\x81\x30\xc4\xe3",
      "\xe4\xbd\xa0\xc2\x80\xe4\xbd\xa0", 0), /* four bytes: iconv */
    C("gb2312", "\x80", "\xe2\x82\xac", 0),
    C("euc-kr", "\xc7\xd1\xb1\xdb", "\xed\x95\x9c\xea\xb8\x80", 0),
    C("euc-jp", "\xc6\xfc\x8f\xb0\xa1\xc6\xfc",
      "\xe6\x97\xa5\xe4\xb8\x82\xe6\x97\xa5", 0), /* 3 bytes: iconv */
    C("big5-hkscs", "\xa4\xa4\x88\x62\xa4\xa4",
      "\xe4\xb8\xad\xc3\x8a\xcc\x84\xe4\xb8\xad", 0), /* held back */
};

static void test_double_byte(void **state)
{
    (void)state;
    struct mr_charset_ctx *ctx = mr_charset_ctx_new();
    for (int round = 0; round < 2; round++) { /* tables built, then reused */
        for (size_t i = 0; i < sizeof(dbcs_cases) / sizeof(dbcs_cases[0]);
             i++) {
            const struct conv_case *c = &dbcs_cases[i];
            struct mr_buf out;
            mr_buf_init(&out, 0);
            unsigned flags = mr_charset_to_utf8(ctx, mr_span_cstr(c->label),
                                                c->in, c->n, &out);
            const char *got = out.p ? out.p : "";
            if (strcmp(got, c->want) != 0 || flags != c->flags)
                print_error("case %zu (%s): got \"%s\" flags %u\n", i, c->label,
                            got, flags);
            assert_string_equal(got, c->want);
            assert_int_equal(flags, c->flags);
            mr_buf_release(&out);
        }
    }
    mr_charset_ctx_free(&ctx);
}

/* What conversion did before the tables: iconv over the whole input, an
 * invalid sequence as U+FFFD and one byte skipped, a truncated one as
 * U+FFFD at the end, NULs dropped, lone 0x80 as the euro in GB18030. */
static unsigned reference(const char *name, const char *in, size_t n,
                          struct mr_buf *out)
{
    iconv_t cd = iconv_open("UTF-8", name);
    assert_true(cd != (iconv_t)-1);
    unsigned flags = 0;
    char *ip = (char *)in;
    size_t il = n;
    char tmp[4096];
    while (il > 0) {
        char *op = tmp;
        size_t ol = sizeof(tmp);
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        int err = r == (size_t)-1 ? errno : 0;
        for (char *q = tmp; q < op; q++) {
            if (*q == '\0')
                flags |= MR_CHARSET_NUL;
            else
                mr_buf_putc(out, *q);
        }
        if (err == 0 || err == E2BIG)
            continue;
        if (err == EILSEQ && (unsigned char)*ip == 0x80 &&
            strcmp(name, "GB18030") == 0) {
            mr_buf_append(out, "\xe2\x82\xac", 3);
            ip++, il--;
            continue;
        }
        mr_buf_append(out, FFFD, 3);
        flags |= MR_CHARSET_INVALID;
        if (err != EILSEQ)
            break;
        ip++, il--;
        iconv(cd, NULL, NULL, NULL, NULL);
    }
    iconv_close(cd);
    return flags;
}

/* The tables convert exactly as iconv does, on text made of valid
 * characters, invalid bytes, NULs and truncated sequences. */
static void test_tables_match_iconv(void **state)
{
    (void)state;
    static const struct {
        const char *label, *name;
    } sets[] = {
        {"windows-1252", "WINDOWS-1252"},
        {"koi8-r", "KOI8-R"},
        {"iso-8859-5", "ISO-8859-5"},
        {"iso-8859-7", "ISO-8859-7"},
        {"shift_jis", "CP932"},
        {"gbk", "GB18030"},
        {"euc-kr", "CP949"},
        {"euc-jp", "EUC-JP-MS"},
    };
    struct mr_charset_ctx *ctx = mr_charset_ctx_new();
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    char in[600];
    for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
        for (int round = 0; round < 300; round++) {
            size_t n = 0, len = (size_t)round % 300;
            while (n < len) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                unsigned r = (unsigned)(seed >> 32);
                in[n++] = r % 5 == 0    ? (char)('a' + r % 26)
                          : r % 97 == 1 ? '\0'
                                        : (char)(0x80 + (r >> 8) % 0x80);
            }
            struct mr_buf got, want;
            mr_buf_init(&got, 0);
            mr_buf_init(&want, 0);
            unsigned fg = mr_charset_to_utf8(ctx, mr_span_cstr(sets[s].label),
                                             in, n, &got);
            unsigned fw = reference(sets[s].name, in, n, &want);
            if (got.len != want.len ||
                (got.len && memcmp(got.p, want.p, got.len) != 0) || fg != fw)
                print_error("%s, %zu bytes: flags %u, want %u\n", sets[s].label,
                            n, fg, fw);
            assert_int_equal(got.len, want.len);
            if (got.len)
                assert_memory_equal(got.p, want.p, got.len);
            assert_int_equal(fg, fw);
            mr_buf_release(&got);
            mr_buf_release(&want);
        }
    }
    mr_charset_ctx_free(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convert_table),
        cmocka_unit_test(test_double_byte),
        cmocka_unit_test(test_tables_match_iconv),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_cache_eviction),
        cmocka_unit_test(test_garbage_is_valid),
        cmocka_unit_test(test_long_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
