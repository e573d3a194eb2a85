/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/util: buf (caps), arena, utf8 repair, JSON writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/utf8.h"

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

static void sha256_known_value(void **state)
{
    (void)state;
    char hex[65];
    mr_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_cap_is_sticky),
        cmocka_unit_test(buf_grows_and_detaches),
        cmocka_unit_test(arena_alignment_and_big_blocks),
        cmocka_unit_test(utf8_repair_cases),
        cmocka_unit_test(json_writer_escapes),
        cmocka_unit_test(sha256_known_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
