/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/util: buf (caps), arena, utf8 repair and checks,
 * JSON writer, the sixteen-byte scanners. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/arena.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/scan.h"
#include "util/utf8.h"

static uint64_t rnd_state = 0x243F6A8885A308D3ULL;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Text that the fast paths find hard: runs of ASCII, escapes, controls,
 * valid and broken UTF-8 of every length, at any offset. */
static size_t random_text(char *p, size_t cap)
{
    static const char *const pieces[] = {
        "\"",
        "\\",
        "\n",
        "\r\n",
        "\t",
        "\x01",
        "\x1f",
        "\x7f",
        "\0",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "\xc3",
        "\xe2\x82",
        "\xed\xa0\x80",
        "\xc0\xaf",
        "\xff",
        "\x80",
        "\xf4\x90\x80\x80",
        "\xd0\x9f\xd1\x80\xd0\xb8",
        "\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad",
    };
    size_t n = 0, len = (size_t)(rnd() % cap);
    while (n < len) {
        unsigned r = (unsigned)(rnd() % 10);
        if (r < 5) {
            size_t k = (size_t)(rnd() % 40);
            for (size_t i = 0; i < k && n < len; i++)
                p[n++] = (char)('a' + rnd() % 26);
        } else {
            const char *s =
                pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t k = s[0] ? strlen(s) : 1;
            for (size_t i = 0; i < k && n < len; i++)
                p[n++] = s[i];
        }
    }
    return n;
}

static void buf_cap_is_sticky(void **state)
{
    (void)state;
    struct mr_buf b;
    mr_buf_init(&b, 5);
    assert_int_equal(mr_buf_append(&b, "abc", 3), 0);
    assert_int_equal(mr_buf_append(&b, "defg", 4), MR_ELIMIT);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.p, "abcde");
    assert_true(b.limited);
    /* Once limited, even a byte that would fit is refused. */
    mr_buf_truncate(&b, 2);
    assert_int_equal(mr_buf_putc(&b, 'x'), MR_ELIMIT);
    mr_buf_reset(&b);
    assert_false(b.limited);
    assert_int_equal(mr_buf_printf(&b, "%d", 12), 0);
    assert_string_equal(b.p, "12");
    mr_buf_release(&b);
}

static void buf_grows_and_detaches(void **state)
{
    (void)state;
    struct mr_buf b;
    mr_buf_init(&b, 0);
    for (int i = 0; i < 10000; i++)
        mr_buf_putc(&b, (char)('a' + i % 26));
    assert_int_equal(b.len, 10000);
    char *p = mr_buf_reserve(&b, 3);
    memcpy(p, "XYZ", 3);
    mr_buf_commit(&b, 3);
    size_t len;
    char *s = mr_buf_detach(&b, &len);
    assert_int_equal(len, 10003);
    assert_memory_equal(s + 10000, "XYZ", 4);
    assert_null(b.p);
    free(s);
}

static void arena_alignment_and_big_blocks(void **state)
{
    (void)state;
    struct mr_arena *a = mr_arena_new();
    for (int i = 0; i < 1000; i++) {
        void *p = mr_arena_alloc(a, (size_t)(i % 37) + 1);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
    }
    char *big = mr_arena_alloc(a, 1u << 20);
    memset(big, 1, 1u << 20);
    char *s = mr_arena_strndup(a, "hello", 3);
    assert_string_equal(s, "hel");
    assert_true(mr_arena_used(a) > (1u << 20));
    mr_arena_free(&a);
    assert_null(a);
}

/* Blocks taken over from malloc are freed with the arena (the ASan build
 * reports a leak otherwise) and stay usable until then. */
static void arena_owns_malloc_blocks(void **state)
{
    (void)state;
    struct mr_arena *a = mr_arena_new();
    for (int i = 0; i < 10; i++) {
        struct mr_buf b;
        mr_buf_init(&b, 0);
        for (int k = 0; k < 5000; k++)
            mr_buf_putc(&b, (char)('a' + (i + k) % 26));
        char *p = mr_buf_detach(&b, NULL);
        mr_arena_own(a, p);
        assert_int_equal(p[4999], 'a' + (i + 4999) % 26);
        assert_int_equal(p[5000], '\0');
    }
    mr_arena_free(&a);
    assert_null(a);
}

struct repair_case {
    const char *in;
    size_t n;
    const char *out;
    size_t fixes;
};

static void utf8_repair_cases(void **state)
{
    (void)state;
    static const struct repair_case cases[] = {
        {"plain", 5, "plain", 0},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9", 0},
        {"caf\xe9", 4, "caf\xef\xbf\xbd", 1},
        /* Overlong '/' and a surrogate are invalid (RFC 3629). */
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", 2},
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3},
        /* A truncated sequence is one replacement (maximal subpart). */
        {"\xe2\x82", 2, "\xef\xbf\xbd", 1},
        {"a\0b", 3, "ab", 1},
        {"\xf4\x90\x80\x80", 4,
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_buf b;
        mr_buf_init(&b, 0);
        size_t fixes = mr_utf8_repair(&b, cases[i].in, cases[i].n, true);
        assert_int_equal(fixes, cases[i].fixes);
        assert_int_equal(b.len, strlen(cases[i].out));
        assert_memory_equal(b.p, cases[i].out, b.len);
        assert_true(mr_utf8_valid(b.p, b.len));
        mr_buf_release(&b);
    }
}

static void json_writer_escapes(void **state)
{
    (void)state;
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "s");
    mr_json_str(&j, mr_span_make("a\"b\\c\n\x01\xe9", 8));
    mr_json_key(&j, "n");
    mr_json_null(&j);
    mr_json_key(&j, "a");
    mr_json_arr_begin(&j);
    mr_json_int(&j, -3);
    mr_json_bool(&j, true);
    mr_json_cstr(&j, NULL);
    mr_json_arr_end(&j);
    mr_json_key(&j, "e");
    mr_json_arr_begin(&j);
    mr_json_arr_end(&j);
    mr_json_obj_end(&j);
    assert_string_equal(b.p, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\xef\xbf\xbd\","
                             "\"n\":null,\"a\":[-3,true,null],\"e\":[]}");
    mr_buf_release(&b);
}

/* Raw JSON text goes in as it is, with the writer's commas around it;
 * none -> null. */
static void json_writer_raw(void **state)
{
    (void)state;
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_arr_begin(&j);
    mr_json_raw(&j, mr_span_cstr("{\"a\":[1,\"\\u00e9\"]}"));
    mr_json_raw(&j, mr_span_cstr(NULL));
    mr_json_obj_begin(&j);
    mr_json_key(&j, "p");
    mr_json_raw(&j, mr_span_cstr("[]"));
    mr_json_key(&j, "q");
    mr_json_raw(&j, mr_span_make("", 0));
    mr_json_obj_end(&j);
    mr_json_arr_end(&j);
    assert_string_equal(b.p,
                        "[{\"a\":[1,\"\\u00e9\"]},null,{\"p\":[],\"q\":null}]");
    mr_buf_release(&b);
}

/* The JSON string of p[0..n) the simplest way: a byte at a time, with
 * mr_utf8_next deciding what is a character. */
static void quote_reference(struct mr_buf *out, const char *p, size_t n)
{
    mr_buf_putc(out, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80) {
            uint32_t cp;
            size_t l = mr_utf8_next(p + i, n - i, &cp);
            if (cp == 0xFFFD && mr_utf8_valid_prefix(p + i, l) != l)
                mr_buf_append(out, "\xef\xbf\xbd", 3);
            else
                mr_buf_append(out, p + i, l);
            i += l;
            continue;
        }
        if (c == '"' || c == '\\') {
            mr_buf_putc(out, '\\');
            mr_buf_putc(out, (char)c);
        } else if (c == '\n') {
            mr_buf_append(out, "\\n", 2);
        } else if (c == '\r') {
            mr_buf_append(out, "\\r", 2);
        } else if (c == '\t') {
            mr_buf_append(out, "\\t", 2);
        } else if (c == '\b') {
            mr_buf_append(out, "\\b", 2);
        } else if (c == '\f') {
            mr_buf_append(out, "\\f", 2);
        } else if (c < 0x20) {
            mr_buf_printf(out, "\\u%04x", c);
        } else {
            mr_buf_putc(out, (char)c);
        }
        i++;
    }
    mr_buf_putc(out, '"');
}

/* mr_json_quote against the reference: short strings (their own fast
 * path), long ones across its 4096-byte pieces, and under a cap, where
 * the output must be the reference's prefix. */
static void json_quote_matches_reference(void **state)
{
    (void)state;
    static char text[20000];
    for (int round = 0; round < 3000; round++) {
        size_t n = random_text(text, round % 10 == 0 ? sizeof(text) : 80);
        struct mr_buf got, want;
        mr_buf_init(&got, 0);
        mr_buf_init(&want, 0);
        mr_json_quote(&got, mr_span_make(text, n));
        quote_reference(&want, text, n);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.p, want.p, want.len);
        assert_true(mr_utf8_valid(got.p, got.len));
        size_t cap = (size_t)(rnd() % (want.len + 4)) + 1;
        struct mr_buf capped;
        mr_buf_init(&capped, cap);
        mr_buf_putc(&capped, '[');
        mr_json_quote(&capped, mr_span_make(text, n));
        size_t expect = want.len + 1 < cap ? want.len + 1 : cap;
        assert_int_equal(capped.len, expect);
        assert_int_equal(capped.limited, want.len + 1 > cap);
        assert_memory_equal(capped.p + 1, want.p, expect - 1);
        mr_buf_release(&capped);
        mr_buf_release(&got);
        mr_buf_release(&want);
    }
}

/* mr_buf_read_file: the whole file; under a cap, cut and limited only
 * when the file goes on past it; a missing file is MR_EIO. */
static void buf_read_file(void **state)
{
    (void)state;
    char path[] = "/tmp/mr-readfile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static char data[200000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(write(fd, data, sizeof data), (ssize_t)sizeof data);
    close(fd);
    struct mr_buf b;
    mr_buf_init(&b, 0);
    assert_int_equal(mr_buf_read_file(&b, path, NULL), 0);
    assert_int_equal(b.len, sizeof data);
    assert_memory_equal(b.p, data, sizeof data);
    mr_buf_release(&b);
    mr_buf_init(&b, sizeof data);
    assert_int_equal(mr_buf_read_file(&b, path, NULL), 0);
    assert_int_equal(b.len, sizeof data);
    assert_false(b.limited);
    mr_buf_release(&b);
    mr_buf_init(&b, 70000);
    assert_int_equal(mr_buf_read_file(&b, path, NULL), 0);
    assert_int_equal(b.len, 70000);
    assert_true(b.limited);
    assert_memory_equal(b.p, data, 70000);
    mr_buf_release(&b);
    unlink(path);
    struct mr_error err = {0};
    mr_buf_init(&b, 0);
    assert_int_equal(mr_buf_read_file(&b, path, &err), MR_EIO);
    assert_non_null(strstr(err.msg, "No such file"));
    mr_buf_release(&b);
}

/* mr_json_str_valid writes valid UTF-8 exactly as mr_json_str does. */
static void json_valid_utf8_same_as_checked(void **state)
{
    (void)state;
    static char text[20000];
    for (int round = 0; round < 1000; round++) {
        size_t n = random_text(text, round % 10 == 0 ? sizeof(text) : 80);
        struct mr_buf valid, a, b;
        mr_buf_init(&valid, 0);
        mr_buf_init(&a, 0);
        mr_buf_init(&b, 0);
        mr_utf8_repair(&valid, text, n, false);
        struct mr_json ja, jb;
        mr_json_init(&ja, &a, false);
        mr_json_init(&jb, &b, false);
        mr_json_str(&ja, mr_buf_span(&valid));
        mr_json_str_valid(&jb, mr_buf_span(&valid));
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
        mr_buf_release(&valid);
        mr_buf_release(&a);
        mr_buf_release(&b);
    }
}

/* The unfolding rule written plainly, byte by byte: folding line breaks
 * dropped, other controls (not TAB) and lone line breaks a space. */
static void unfold_reference(struct mr_buf *out, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r' && i + 1 < n && p[i + 1] == '\n')
            i++;
        if (c == '\r' || c == '\n') {
            if (!(i + 1 < n && (p[i + 1] == ' ' || p[i + 1] == '\t')))
                mr_buf_putc(out, ' ');
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            mr_buf_putc(out, ' ');
        } else {
            mr_buf_putc(out, (char)c);
        }
    }
}

/* mr_json_str_unfolded is unfolding and then quoting, for values without
 * NUL (the one byte it treats differently, see json.h). */
static void json_unfolded_same_as_two_steps(void **state)
{
    (void)state;
    static char text[20000];
    for (int round = 0; round < 1000; round++) {
        size_t n = random_text(text, round % 10 == 0 ? sizeof(text) : 80);
        for (size_t i = 0; i < n; i++)
            if (text[i] == '\0')
                text[i] = '\n';
        struct mr_buf unfolded, a, b;
        mr_buf_init(&unfolded, 0);
        mr_buf_init(&a, 0);
        mr_buf_init(&b, 0);
        unfold_reference(&unfolded, text, n);
        struct mr_json ja, jb;
        mr_json_init(&ja, &a, false);
        mr_json_init(&jb, &b, false);
        mr_json_str(&ja, mr_buf_span(&unfolded));
        mr_json_str_unfolded(&jb, mr_span_make(text, n));
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
        mr_buf_release(&unfolded);
        mr_buf_release(&a);
        mr_buf_release(&b);
    }
}

/* A string written in pieces is the string written whole, when the cuts
 * fall between characters. */
static void json_string_in_pieces(void **state)
{
    (void)state;
    static char text[5000];
    for (int round = 0; round < 500; round++) {
        size_t n = random_text(text, sizeof(text));
        struct mr_buf whole, parts;
        mr_buf_init(&whole, 0);
        mr_buf_init(&parts, 0);
        struct mr_json a, b;
        mr_json_init(&a, &whole, false);
        mr_json_init(&b, &parts, false);
        mr_json_arr_begin(&a);
        mr_json_arr_begin(&b);
        mr_json_str(&a, mr_span_make(text, n));
        mr_json_str_begin(&b);
        size_t i = 0;
        while (i < n) {
            size_t k = i + (size_t)(rnd() % 64);
            if (k > n)
                k = n;
            while (k < n && ((unsigned char)text[k] & 0xC0) == 0x80)
                k++; /* not inside a character */
            mr_json_str_piece(&b, mr_span_make(text + i, k - i));
            i = k;
        }
        mr_json_str_end(&b);
        mr_json_arr_end(&a);
        mr_json_arr_end(&b);
        assert_int_equal(whole.len, parts.len);
        assert_memory_equal(whole.p, parts.p, whole.len);
        mr_buf_release(&whole);
        mr_buf_release(&parts);
    }
}

/* mr_utf8_valid_prefix against a character-by-character reading. */
static void utf8_prefix_matches_reference(void **state)
{
    (void)state;
    static char text[3000];
    for (int round = 0; round < 3000; round++) {
        size_t n = random_text(text, sizeof(text));
        size_t want = 0;
        while (want < n) {
            uint32_t cp;
            size_t l = mr_utf8_next(text + want, n - want, &cp);
            if (cp == 0xFFFD &&
                !(l == 3 && memcmp(text + want, "\xef\xbf\xbd", 3) == 0))
                break;
            want += l;
        }
        assert_int_equal(mr_utf8_valid_prefix(text, n), want);
    }
}

/* The block tests flag exactly the bytes a byte loop does. */
static void scan_blocks_match_bytes(void **state)
{
    (void)state;
    unsigned char p[16];
    for (int round = 0; round < 20000; round++) {
        for (size_t i = 0; i < 16; i++)
            p[i] = (unsigned char)(round < 256 ? (round + (int)i * 17) & 0xFF
                                               : rnd() & 0xFF);
        unsigned char c = (unsigned char)(rnd() & 0xFF);
        unsigned char lim = (unsigned char)(1 + rnd() % 0x80);
        unsigned eq = 0, lt = 0, hi = 0;
        for (unsigned i = 0; i < 16; i++) {
            eq |= (unsigned)(p[i] == c) << i;
            lt |= (unsigned)(p[i] < lim) << i;
            hi |= (unsigned)(p[i] >= 0x80) << i;
        }
        mr_blk b = mr_blk_load(p);
        assert_int_equal(mr_blk_eq(b, c), eq);
        assert_int_equal(mr_blk_lt(b, lim), lt);
        assert_int_equal(mr_blk_high(b), hi);
        if (lim < 0x80)
            assert_int_equal(mr_blk_lt_or_high(b, lim), lt | hi);
        if (eq)
            assert_int_equal(mr_blk_first(eq), (size_t)__builtin_ctz(eq));
        unsigned char q[16];
        mr_blk_store(q, b);
        assert_memory_equal(q, p, 16);
    }
    /* mr_copy_short, overlapping either way */
    for (size_t n = 0; n < 16; n++) {
        for (size_t shift = 0; shift < 8; shift++) {
            unsigned char buf[40], want[40];
            for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = want[i] = (unsigned char)i;
            memmove(want + 8, want + 8 + shift, n);
            mr_copy_short(buf + 8, buf + 8 + shift, n);
            assert_memory_equal(buf, want, sizeof(buf));
            memmove(want + 8 + shift, want + 8, n);
            mr_copy_short(buf + 8 + shift, buf + 8, n);
            assert_memory_equal(buf, want, sizeof(buf));
        }
    }
}

/* mr_buf_expect is a hint: it never sets `limited`, even past the cap. */
static void buf_expect_is_a_hint(void **state)
{
    (void)state;
    struct mr_buf b;
    mr_buf_init(&b, 10);
    mr_buf_expect(&b, 1000);
    assert_false(b.limited);
    assert_int_equal(mr_buf_append(&b, "0123456789", 10), 0);
    mr_buf_expect(&b, 5);
    assert_false(b.limited);
    assert_int_equal(mr_buf_putc(&b, 'x'), MR_ELIMIT);
    mr_buf_release(&b);
    mr_buf_init(&b, 0);
    mr_buf_expect(&b, 5000);
    assert_true(b.alloc > 5000);
    mr_buf_release(&b);
}

static void sha256_known_value(void **state)
{
    (void)state;
    char hex[65];
    mr_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
    /* incremental, over several updates */
    struct mr_sha256 h;
    mr_sha256_init(&h);
    for (int i = 0; i < 1000; i++)
        mr_sha256_update(&h, "a", 1);
    mr_sha256_final_hex(&h, hex);
    assert_string_equal(hex, "41edece42d63e8d9bf515a9ba6932e1c"
                             "20cbc9f5a5d134645adb5db1b9737ea3");
}

/* One doubling for every queue that retries: capped, never overflowing,
 * the jitter inside [d/2, d). */
static void backoff_doubles_to_the_cap(void **state)
{
    (void)state;
    assert_int_equal(mr_backoff_ms(0, 1000, 60000), 1000);
    assert_int_equal(mr_backoff_ms(1, 1000, 60000), 1000);
    assert_int_equal(mr_backoff_ms(2, 1000, 60000), 2000);
    assert_int_equal(mr_backoff_ms(6, 1000, 60000), 32000);
    assert_int_equal(mr_backoff_ms(7, 1000, 60000), 60000);
    assert_int_equal(mr_backoff_ms(1000000, 1000, 60000), 60000);
    /* A cap below the base wins, as configuration could say. */
    assert_int_equal(mr_backoff_ms(1, 1000, 100), 100);
    /* No cap: it stops short of overflowing int64. */
    int64_t big = mr_backoff_ms(1000000, 1000, 0);
    assert_true(big > INT64_MAX / 4 && big <= INT64_MAX);
    assert_int_equal(mr_backoff_ms(3, 0, 0), 4);
    assert_int_equal(mr_backoff_jitter(4000, 0.0), 2000);
    assert_int_equal(mr_backoff_jitter(4000, 0.5), 3000);
    assert_true(mr_backoff_jitter(4000, 0.999999) < 4000);
    assert_true(mr_backoff_jitter(4000, 7.0) < 4000);
    assert_int_equal(mr_backoff_jitter(4000, -1.0), 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_cap_is_sticky),
        cmocka_unit_test(buf_grows_and_detaches),
        cmocka_unit_test(arena_alignment_and_big_blocks),
        cmocka_unit_test(arena_owns_malloc_blocks),
        cmocka_unit_test(utf8_repair_cases),
        cmocka_unit_test(json_writer_escapes),
        cmocka_unit_test(json_writer_raw),
        cmocka_unit_test(json_quote_matches_reference),
        cmocka_unit_test(json_string_in_pieces),
        cmocka_unit_test(buf_read_file),
        cmocka_unit_test(json_valid_utf8_same_as_checked),
        cmocka_unit_test(json_unfolded_same_as_two_steps),
        cmocka_unit_test(utf8_prefix_matches_reference),
        cmocka_unit_test(scan_blocks_match_bytes),
        cmocka_unit_test(buf_expect_is_a_hint),
        cmocka_unit_test(sha256_known_value),
        cmocka_unit_test(backoff_doubles_to_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
