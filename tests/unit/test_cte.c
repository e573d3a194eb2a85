/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cte.c: names, base64, quoted-printable, streaming, uuencode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime/cte.h"
#include "util/buf.h"

#define S(lit) lit, sizeof(lit) - 1

/* ---- names ---- */

static void test_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        enum mr_cte want;
    } cases[] = {
        {"", MR_CTE_7BIT},
        {"  ", MR_CTE_7BIT},
        {"7bit", MR_CTE_7BIT},
        {"8BIT", MR_CTE_8BIT},
        {"binary", MR_CTE_BINARY},
        {" Quoted-Printable ", MR_CTE_QP},
        {"BASE64", MR_CTE_BASE64},
        {"base64 (the usual)", MR_CTE_BASE64},
        {"(comment) base64", MR_CTE_BASE64},
        {"\"base64\"", MR_CTE_BASE64},
        {"base64;", MR_CTE_BASE64},
        {"x-uuencode", MR_CTE_UUENCODE},
        {"X-UUE", MR_CTE_UUENCODE},
        {"uuencode", MR_CTE_UUENCODE},
        {"x-gzip64", MR_CTE_UNKNOWN},
        {"base6", MR_CTE_UNKNOWN},
        {"averyveryveryveryveryverylongencodingname", MR_CTE_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(mr_cte_parse(mr_span_cstr(cases[i].in)),
                         cases[i].want);
    assert_string_equal(mr_cte_name(MR_CTE_QP), "quoted-printable");
    assert_string_equal(mr_cte_name(MR_CTE_BASE64), "base64");
    assert_string_equal(mr_cte_name(MR_CTE_7BIT), "7bit");
}

/* ---- base64 ---- */

struct b64_case {
    const char *in;
    const char *want;
    size_t want_n;
    unsigned flags;
};

static void test_base64_table(void **state)
{
    (void)state;
    static const struct b64_case cases[] = {
        {"", "", 0, 0},
        {"YQ==", "a", 1, 0},
        {"YWI=", "ab", 2, 0},
        {"YWJj", "abc", 3, 0},
        {"aGVsbG8gd29ybGQ=", "hello world", 11, 0},
        /* whitespace anywhere */
        {"aGVs\r\nbG8g\n d29y\tbGQ=\r\n", "hello world", 11, 0},
        {"a G V s b G 8 =", "hello", 5, 0},
        /* garbage characters skipped and flagged */
        {"aGVs!bG8*=", "hello", 5, MR_CTE_BAD_CHAR},
        {"aGVs!bG8", "hello", 5, MR_CTE_BAD_CHAR | MR_CTE_TRUNCATED},
        {"aGV\x80sbG8=", "hello", 5, MR_CTE_BAD_CHAR},
        /* missing padding: decoded as far as it goes */
        {"YQ", "a", 1, MR_CTE_TRUNCATED},
        {"YWI", "ab", 2, MR_CTE_TRUNCATED},
        {"Y", "", 0, MR_CTE_TRUNCATED},
        /* '=' where no quantum ends is skipped */
        {"=YWJj", "abc", 3, MR_CTE_BAD_CHAR},
        {"Y=WJj", "abc", 3, MR_CTE_BAD_CHAR},
        /* '=' ending a quantum in the middle: data goes on */
        {"YQ==YWI=", "aab", 3, 0},
        {"YQ=YWJj", "aabc", 4, MR_CTE_BAD_CHAR},
        {"YWI=YWJj", "ababc", 5, 0},
        /* extra padding */
        {"YQ===", "a", 1, MR_CTE_BAD_CHAR},
        /* binary bytes */
        {"AP8A/w==", "\x00\xff\x00\xff", 4, 0},
        {"-_", "", 0, MR_CTE_BAD_CHAR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].in);
        char *out = malloc(mr_base64_max(n));
        unsigned flags = 0;
        size_t w = mr_base64_decode(cases[i].in, n, out, &flags);
        if (w != cases[i].want_n || flags != cases[i].flags)
            print_error("base64 case %zu: \"%s\"\n", i, cases[i].in);
        assert_int_equal(w, cases[i].want_n);
        assert_memory_equal(out, cases[i].want, w);
        assert_int_equal(flags, cases[i].flags);
        free(out);
    }
}

static void b64_encode(const unsigned char *in, size_t n, size_t line,
                       struct mr_buf *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t col = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        char q[4] = {a[v >> 18], a[(v >> 12) & 63],
                     i + 1 < n ? a[(v >> 6) & 63] : '=',
                     i + 2 < n ? a[v & 63] : '='};
        mr_buf_append(out, q, 4);
        col += 4;
        if (line && col >= line) {
            mr_buf_append(out, "\r\n", 2);
            col = 0;
        }
    }
}

/* Every length and line width round-trips, including 2000-char lines. */
static void test_base64_roundtrip(void **state)
{
    (void)state;
    unsigned char src[3001];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (unsigned char)(i * 131 + 7);
    static const size_t widths[] = {0, 4, 64, 76, 2000};
    for (size_t wi = 0; wi < sizeof(widths) / sizeof(widths[0]); wi++) {
        for (size_t n = 0; n <= sizeof(src); n += (n < 40 ? 1 : 997)) {
            struct mr_buf enc;
            mr_buf_init(&enc, 0);
            b64_encode(src, n, widths[wi], &enc);
            char *out = malloc(mr_base64_max(enc.len));
            unsigned flags = 0;
            size_t w =
                mr_base64_decode(enc.p ? enc.p : "", enc.len, out, &flags);
            assert_int_equal(w, n);
            assert_memory_equal(out, src, n);
            assert_int_equal(flags, 0);
            free(out);
            mr_buf_release(&enc);
        }
    }
}

/* ---- quoted-printable ---- */

struct qp_case {
    const char *in;
    const char *want;
    bool header_q;
    unsigned flags;
};

static void test_qp_table(void **state)
{
    (void)state;
    static const struct qp_case cases[] = {
        {"", "", false, 0},
        {"plain text", "plain text", false, 0},
        {"caf=C3=A9", "caf\xc3\xa9", false, 0},
        {"caf=c3=a9", "caf\xc3\xa9", false, 0}, /* lower-case hex */
        {"a=3Db", "a=b", false, 0},
        /* soft line breaks, also with whitespace after the '=' */
        {"long=\r\nline", "longline", false, 0},
        {"long=\nline", "longline", false, 0},
        {"long= \t\r\nline", "longline", false, 0},
        {"long=  \nline", "longline", false, 0},
        {"end=\r\n", "end", false, 0},
        /* trailing whitespace on a line is deleted (RFC 2045 6.7 (3)) */
        {"a  \r\nb \t\nc  ", "a\r\nb\nc", false, 0},
        {"a=20\r\n", "a \r\n", false, 0},
        {"in  side", "in  side", false, 0},
        /* invalid escapes kept literally */
        {"=ZZ", "=ZZ", false, MR_CTE_BAD_ESCAPE},
        {"x=A", "x=A", false, MR_CTE_BAD_ESCAPE},
        {"x=Ag", "x=Ag", false, MR_CTE_BAD_ESCAPE},
        {"x=", "x=", false, MR_CTE_BAD_ESCAPE},
        {"=", "=", false, MR_CTE_BAD_ESCAPE},
        {"a= b", "a= b", false, MR_CTE_BAD_ESCAPE},
        {"100% =G0 x", "100% =G0 x", false, MR_CTE_BAD_ESCAPE},
        {"==41", "=A", false, MR_CTE_BAD_ESCAPE},
        /* CRLF kept as it is */
        {"a\r\nb\nc", "a\r\nb\nc", false, 0},
        /* header Q: '_' is a space, whitespace kept */
        {"a_b=5Fc", "a b_c", true, 0},
        {"caf=C3=A9_", "caf\xc3\xa9 ", true, 0},
        {"under_score", "under_score", false, 0},
        {"x=", "x=", true, MR_CTE_BAD_ESCAPE},
        /* runs of escapes, one broken in the middle or at the end */
        {"=E6=97=A5=E6=9C=AC", "\xe6\x97\xa5\xe6\x9c\xac", false, 0},
        {"=E6=97=G5=41", "\xe6\x97=G5A", false, MR_CTE_BAD_ESCAPE},
        {"=E6=9", "\xe6=9", false, MR_CTE_BAD_ESCAPE},
        /* whitespace: only at a line end, before a CR LF, LF or the end */
        {"0123456789abcdef0123 \t \r\nx", "0123456789abcdef0123\r\nx", false,
         0},
        {"0123456789abcdef  =\r\nx  \t", "0123456789abcdef  x", false, 0},
        {"a \rb  \r\r\n", "a \rb  \r\r\n", false, 0},
        {"a\t=20\t\n", "a\t \n", false, 0},
        {"0123456789abcdef0123456789 \t", "0123456789abcdef0123456789", false,
         0},
        {"0123456789abcdef 0123456789_=5F x", "0123456789abcdef 0123456789 _ x",
         true, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].in);
        char out[128];
        unsigned flags = 0;
        size_t w = mr_qp_decode(cases[i].in, n, out, cases[i].header_q, &flags);
        out[w] = '\0';
        assert_string_equal(out, cases[i].want);
        assert_int_equal(flags, cases[i].flags);
    }
}

/* Whitespace that ends a line goes, whatever its place in the 16-byte
 * blocks the decoder copies; whitespace inside a line stays. */
static void test_qp_trailing_space_anywhere(void **state)
{
    (void)state;
    char in[256], want[256], out[256];
    for (size_t text = 0; text < 40; text++) {
        for (size_t ws = 0; ws < 20; ws++) {
            for (int eol = 0; eol < 3; eol++) {
                size_t n = 0, w = 0;
                for (size_t i = 0; i < text; i++) {
                    char c = i % 7 == 3 ? ' ' : (char)('a' + i % 26);
                    in[n++] = want[w++] = c;
                }
                if (text % 7 == 4 && w > 0)
                    w--, n--; /* the text must not end in its own space */
                for (size_t i = 0; i < ws; i++)
                    in[n++] = i % 3 ? ' ' : '\t';
                static const char *const ends[] = {"\r\n", "\n", ""};
                size_t el = strlen(ends[eol]);
                memcpy(in + n, ends[eol], el);
                memcpy(want + w, ends[eol], el);
                n += el, w += el;
                unsigned flags = 0;
                size_t got = mr_qp_decode(in, n, out, false, &flags);
                assert_int_equal(got, w);
                assert_memory_equal(out, want, w);
                assert_int_equal(flags, 0);
            }
        }
    }
}

/* Characters outside the alphabet are skipped wherever they fall in the
 * 16-character blocks that the vector decoder takes whole: the output is
 * that of the text without them, for lines of any width. */
static void test_base64_junk_anywhere(void **state)
{
    (void)state;
    unsigned char src[700];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (unsigned char)(i * 73 + 11);
    static const size_t widths[] = {60, 64, 72, 76, 100};
    uint64_t seed = 0xB7E151628AED2A6AULL;
    for (size_t wi = 0; wi < sizeof(widths) / sizeof(widths[0]); wi++) {
        struct mr_buf clean;
        mr_buf_init(&clean, 0);
        b64_encode(src, sizeof(src), widths[wi], &clean);
        for (int round = 0; round < 200; round++) {
            struct mr_buf dirty;
            mr_buf_init(&dirty, 0);
            bool bad = false;
            for (size_t i = 0; i < clean.len; i++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                if (seed % 97 == 0) {
                    char junk = "* \t.\r"[seed / 97 % 5];
                    bad |= junk == '*' || junk == '.';
                    mr_buf_putc(&dirty, junk);
                }
                mr_buf_putc(&dirty, clean.p[i]);
            }
            char *out = malloc(mr_base64_max(dirty.len));
            unsigned flags = 0;
            size_t w = mr_base64_decode(dirty.p, dirty.len, out, &flags);
            assert_int_equal(w, sizeof(src));
            assert_memory_equal(out, src, sizeof(src));
            assert_int_equal(flags, bad ? MR_CTE_BAD_CHAR : 0);
            free(out);
            mr_buf_release(&dirty);
        }
        mr_buf_release(&clean);
    }
}

/* ---- streaming ---- */

struct rec {
    struct mr_buf data;
    size_t calls;
    size_t max_chunk;
    int fail_after; /* return -7 on this call (1-based), 0 = never */
};

static int rec_sink(void *ctx, const char *p, size_t n)
{
    struct rec *r = ctx;
    r->calls++;
    if (r->fail_after && (int)r->calls == r->fail_after)
        return -7;
    if (n > r->max_chunk)
        r->max_chunk = n;
    mr_buf_append(&r->data, p, n);
    return 0;
}

static void test_stream_base64_large(void **state)
{
    (void)state;
    size_t n = 300 * 1024 + 17;
    unsigned char *src = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (unsigned char)(i ^ (i >> 8));
    struct mr_buf enc;
    mr_buf_init(&enc, 0);
    b64_encode(src, n, 76, &enc);
    struct rec r = {0};
    mr_buf_init(&r.data, 0);
    unsigned flags = 0;
    assert_int_equal(
        mr_cte_decode(MR_CTE_BASE64, enc.p, enc.len, rec_sink, &r, &flags), 0);
    assert_int_equal(r.data.len, n);
    assert_memory_equal(r.data.p, src, n);
    assert_true(r.max_chunk <= 64 * 1024);
    assert_true(r.calls >= 5);
    assert_int_equal(flags, 0);

    /* The sink's error stops decoding and comes back. */
    struct rec f = {.fail_after = 2};
    mr_buf_init(&f.data, 0);
    assert_int_equal(
        mr_cte_decode(MR_CTE_BASE64, enc.p, enc.len, rec_sink, &f, &flags), -7);
    assert_int_equal(f.calls, 2);
    mr_buf_release(&f.data);
    mr_buf_release(&r.data);
    mr_buf_release(&enc);
    free(src);
}

static void test_stream_qp_and_passthru(void **state)
{
    (void)state;
    /* QP: 200 KiB of lines with escapes, soft breaks and trailing space,
     * plus one 100 KiB line, so slices cut both at and inside lines. */
    struct mr_buf in, want;
    mr_buf_init(&in, 0);
    mr_buf_init(&want, 0);
    for (int i = 0; i < 4000; i++) {
        mr_buf_puts(&in, "caf=C3=A9 soft=\r\nbreak  \r\n");
        mr_buf_puts(&want, "caf\xc3\xa9 softbreak\r\n");
    }
    for (int i = 0; i < 100 * 1024 / 4; i++) {
        mr_buf_puts(&in, "ab=41");
        mr_buf_puts(&want, "abA");
    }
    mr_buf_puts(&in, "\r\n");
    mr_buf_puts(&want, "\r\n");
    struct rec r = {0};
    mr_buf_init(&r.data, 0);
    unsigned flags = 0;
    assert_int_equal(
        mr_cte_decode(MR_CTE_QP, in.p, in.len, rec_sink, &r, &flags), 0);
    assert_int_equal(r.data.len, want.len);
    assert_memory_equal(r.data.p, want.p, want.len);
    assert_true(r.max_chunk <= 64 * 1024);
    assert_int_equal(flags, 0);

    /* identity encodings pass through in chunks; unknown is flagged */
    static const enum mr_cte ids[] = {MR_CTE_7BIT, MR_CTE_8BIT, MR_CTE_BINARY,
                                      MR_CTE_UNKNOWN};
    for (size_t k = 0; k < 4; k++) {
        struct rec p = {0};
        mr_buf_init(&p.data, 0);
        flags = 0;
        assert_int_equal(
            mr_cte_decode(ids[k], in.p, in.len, rec_sink, &p, &flags), 0);
        assert_int_equal(p.data.len, in.len);
        assert_memory_equal(p.data.p, in.p, in.len);
        assert_true(p.max_chunk <= 64 * 1024);
        assert_int_equal(flags, ids[k] == MR_CTE_UNKNOWN ? MR_CTE_PASSTHRU : 0);
        mr_buf_release(&p.data);
    }
    mr_buf_release(&r.data);
    mr_buf_release(&in);
    mr_buf_release(&want);
}

struct seen {
    const char *next; /* where the next reported stretch must start */
    size_t total;
};

static void seen_passed(void *ctx, const char *p, size_t n)
{
    struct seen *s = ctx;
    assert_ptr_equal(p, s->next);
    assert_true(n > 0);
    s->next = p + n;
    s->total += n;
}

/* The decoders report the input they are done with, in order, all of it,
 * and decode the same as without the hint. */
static void test_decode_reports_input(void **state)
{
    (void)state;
    struct mr_buf src, enc;
    mr_buf_init(&src, 0);
    mr_buf_init(&enc, 0);
    for (int i = 0; i < 300000; i++)
        mr_buf_putc(&src, (char)(i * 7));
    b64_encode((const unsigned char *)src.p, src.len, 76, &enc);
    static const enum mr_cte ctes[] = {MR_CTE_BASE64, MR_CTE_QP, MR_CTE_8BIT};
    for (size_t k = 0; k < 3; k++) {
        struct rec r = {0};
        mr_buf_init(&r.data, 0);
        struct seen s = {enc.p, 0};
        struct mr_input_hint hint = {&s, seen_passed};
        unsigned flags = 0;
        assert_int_equal(mr_cte_decode_hinted(ctes[k], enc.p, enc.len, rec_sink,
                                              &r, &hint, &flags),
                         0);
        assert_int_equal(s.total, enc.len);
        if (ctes[k] == MR_CTE_BASE64) {
            assert_int_equal(r.data.len, src.len);
            assert_memory_equal(r.data.p, src.p, src.len);
        } else {
            assert_int_equal(r.data.len, enc.len);
        }
        mr_buf_release(&r.data);
    }
    mr_buf_release(&src);
    mr_buf_release(&enc);
}

/* ---- uuencode ---- */

/* Known answers ("Cat", "Hello World!") from Python's binascii.b2a_uu. */
static const char uu_text[] = "Hello, here is the file.\r\n"
                              "\r\n"
                              "begin 644 cat.txt\r\n"
                              "#0V%T\r\n"
                              "`\r\n"
                              "end\r\n"
                              "Bye.\n"
                              "begin 600 hello.txt\n"
                              ",2&5L;&\\@5V]R;&0A\n"
                              "`\n"
                              "end\n";

static void test_uu_find_decode(void **state)
{
    (void)state;
    struct mr_uu_block b;
    size_t n = sizeof(uu_text) - 1;
    assert_true(mr_uu_find(uu_text, n, 0, &b));
    assert_true(mr_span_ieq(b.mode, "644"));
    assert_true(mr_span_ieq(b.name, "cat.txt"));
    assert_int_equal(b.begin, 28);
    assert_memory_equal(uu_text + b.end, "Bye.", 4);
    struct rec r = {0};
    mr_buf_init(&r.data, 0);
    unsigned flags = 0;
    assert_int_equal(mr_uu_decode(b.data, rec_sink, &r, &flags), 0);
    assert_int_equal(r.data.len, 3);
    assert_memory_equal(r.data.p, "Cat", 3);
    assert_int_equal(flags, 0);

    struct mr_uu_block b2;
    assert_true(mr_uu_find(uu_text, n, b.end, &b2));
    assert_true(mr_span_ieq(b2.name, "hello.txt"));
    assert_true(mr_span_ieq(b2.mode, "600"));
    assert_int_equal(b2.end, n);
    mr_buf_reset(&r.data);
    assert_int_equal(mr_uu_decode(b2.data, rec_sink, &r, &flags), 0);
    assert_int_equal(r.data.len, 12);
    assert_memory_equal(r.data.p, "Hello World!", 12);
    assert_int_equal(flags, 0);
    assert_false(mr_uu_find(uu_text, n, b2.end, &b2));

    /* the whole text as an x-uuencode body decodes its first block */
    mr_buf_reset(&r.data);
    assert_int_equal(
        mr_cte_decode(MR_CTE_UUENCODE, uu_text, n, rec_sink, &r, &flags), 0);
    assert_int_equal(r.data.len, 3);
    mr_buf_release(&r.data);
}

/* Round trip of a small binary file with our own encoder. */
static void uu_encode(const unsigned char *p, size_t n, struct mr_buf *out)
{
    mr_buf_puts(out, "begin 644 data.bin\n");
    for (size_t i = 0; i < n; i += 45) {
        size_t l = n - i < 45 ? n - i : 45;
        mr_buf_putc(out, (char)(0x20 + l));
        for (size_t k = 0; k < l; k += 3) {
            unsigned char a = p[i + k];
            unsigned char b = k + 1 < l ? p[i + k + 1] : 0;
            unsigned char c = k + 2 < l ? p[i + k + 2] : 0;
            unsigned v[4] = {a >> 2u, ((a & 3u) << 4) | (b >> 4u),
                             ((b & 15u) << 2) | (c >> 6u), c & 63u};
            for (int x = 0; x < 4; x++)
                mr_buf_putc(out, v[x] ? (char)(0x20 + v[x]) : '`');
        }
        mr_buf_putc(out, '\n');
    }
    mr_buf_puts(out, "`\nend\n");
}

static void test_uu_roundtrip(void **state)
{
    (void)state;
    unsigned char src[1000];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (unsigned char)(i * 37 + 11);
    struct mr_buf enc;
    mr_buf_init(&enc, 0);
    uu_encode(src, sizeof(src), &enc);
    struct mr_uu_block b;
    assert_true(mr_uu_find(enc.p, enc.len, 0, &b));
    assert_true(mr_span_ieq(b.name, "data.bin"));
    struct rec r = {0};
    mr_buf_init(&r.data, 0);
    unsigned flags = 0;
    assert_int_equal(mr_uu_decode(b.data, rec_sink, &r, &flags), 0);
    assert_int_equal(r.data.len, sizeof(src));
    assert_memory_equal(r.data.p, src, sizeof(src));
    assert_int_equal(flags, 0);
    mr_buf_release(&r.data);
    mr_buf_release(&enc);
}

/* mr_uu_candidate says whether some line starts with "begin ", as a line
 * by line search does, wherever the line falls in the blocks. */
static void test_uu_candidate(void **state)
{
    (void)state;
    char text[200];
    uint64_t seed = 0x452821E638D01377ULL;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)round % sizeof(text);
        for (size_t i = 0; i < n; i++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            text[i] = "begin \nxb"[seed % 9];
        }
        if (round % 3 == 0 && n > 10) {
            size_t at = (size_t)(seed >> 20) % (n - 6);
            memcpy(text + at, "begin ", 6);
        }
        bool want = false;
        for (size_t i = 0; i + 6 <= n && !want; i++)
            want = (i == 0 || text[i - 1] == '\n') &&
                   memcmp(text + i, "begin ", 6) == 0;
        assert_int_equal(mr_uu_candidate(text, n), want);
    }
}

static void test_uu_damaged(void **state)
{
    (void)state;
    struct mr_uu_block b;
    struct rec r = {0};
    mr_buf_init(&r.data, 0);
    unsigned flags = 0;

    /* no "end": runs to the end of the text, flagged on decode */
    static const char noend[] = "begin 644 a\n#0V%T\n";
    assert_true(mr_uu_find(noend, sizeof(noend) - 1, 0, &b));
    assert_int_equal(b.end, sizeof(noend) - 1);
    assert_int_equal(mr_uu_decode(b.data, rec_sink, &r, &flags), 0);
    assert_memory_equal(r.data.p, "Cat", 3);
    assert_true(flags & MR_CTE_TRUNCATED);

    /* a short line: decoded as far as it goes */
    static const char shortl[] = "begin 644 a\n&0V%T\n`\nend\n";
    mr_buf_reset(&r.data);
    flags = 0;
    assert_true(mr_uu_find(shortl, sizeof(shortl) - 1, 0, &b));
    assert_int_equal(mr_uu_decode(b.data, rec_sink, &r, &flags), 0);
    assert_int_equal(r.data.len, 3);
    assert_true(flags & MR_CTE_TRUNCATED);

    /* not at line start, bad mode, prose after "begin": no block */
    static const char prose[] = "we begin 644 x\n"
                                "begin 9x9 y\n"
                                "begin 644 the project\nwith a normal line\n";
    assert_false(mr_uu_find(prose, sizeof(prose) - 1, 0, &b));
    mr_buf_release(&r.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_base64_table),
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_qp_table),
        cmocka_unit_test(test_qp_trailing_space_anywhere),
        cmocka_unit_test(test_base64_junk_anywhere),
        cmocka_unit_test(test_decode_reports_input),
        cmocka_unit_test(test_uu_candidate),
        cmocka_unit_test(test_stream_base64_large),
        cmocka_unit_test(test_stream_qp_and_passthru),
        cmocka_unit_test(test_uu_find_decode),
        cmocka_unit_test(test_uu_roundtrip),
        cmocka_unit_test(test_uu_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
