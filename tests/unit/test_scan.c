/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for scan.h as it is built where there is no SSE2: the same block
 * tests on two 64-bit words. On x86-64 the SSE2 version is what every
 * other test runs (test_util checks it byte by byte); here __SSE2__ is
 * taken away before the header is read, so the portable one is checked
 * too, on the same machine.
 */
#undef __SSE2__

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/scan.h"

#ifdef __SSE2__
#error "the portable scan.h is not the one under test"
#endif

static uint64_t rnd_state = 0x13198A2E03707344ULL;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Every test flags exactly the bytes a byte loop does, whatever their
 * neighbours (no carry or borrow crosses a byte). */
static void portable_blocks_match_bytes(void **state)
{
    (void)state;
    unsigned char p[16];
    for (int round = 0; round < 50000; round++) {
        for (size_t i = 0; i < 16; i++) {
            unsigned r = (unsigned)rnd();
            /* Mostly values around the edges the tests care about. */
            static const unsigned char edge[] = {0x00, 0x01, 0x1f, 0x20,
                                                 0x22, 0x5c, 0x7f, 0x80,
                                                 0x81, 0xfe, 0xff, '='};
            p[i] = r % 3 ? edge[r % sizeof(edge)] : (unsigned char)(r >> 8);
        }
        unsigned char c = (unsigned char)(rnd() & 0xFF);
        unsigned char lim = (unsigned char)(1 + rnd() % 0x80);
        unsigned eq = 0, eq0 = 0, lt = 0, hi = 0;
        for (unsigned i = 0; i < 16; i++) {
            eq |= (unsigned)(p[i] == c) << i;
            eq0 |= (unsigned)(p[i] == 0) << i;
            lt |= (unsigned)(p[i] < lim) << i;
            hi |= (unsigned)(p[i] >= 0x80) << i;
        }
        mr_blk b = mr_blk_load(p);
        assert_int_equal(mr_blk_eq(b, c), eq);
        assert_int_equal(mr_blk_eq(b, 0), eq0);
        assert_int_equal(mr_blk_lt(b, lim), lt);
        assert_int_equal(mr_blk_lt(b, 0x80), (~hi) & 0xFFFF);
        assert_int_equal(mr_blk_high(b), hi);
        if (lim < 0x80)
            assert_int_equal(mr_blk_lt_or_high(b, lim), lt | hi);
        if (lt)
            assert_int_equal(mr_blk_first(lt), (size_t)__builtin_ctz(lt));
        unsigned char q[16];
        mr_blk_store(q, b);
        assert_memory_equal(q, p, 16);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(portable_blocks_match_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
