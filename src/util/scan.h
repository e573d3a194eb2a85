/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scan.h - looking at sixteen bytes at once, for the scanners whose inner
 * loop is "find the next byte that needs a look": JSON quoting,
 * quoted-printable, header unfolding, UTF-8 checks, line ends.
 *
 * A block (mr_blk) is sixteen bytes loaded from anywhere (no alignment
 * needed). Each test returns a mask with bit k set when byte k of the block
 * is flagged, so mr_blk_first(mask) is the offset of the first one and the
 * masks of several tests combine with '|'. On x86-64 this is SSE2, which
 * every x86-64 CPU has (three instructions per test and block); elsewhere
 * the same tests run on two 64-bit words ("SIMD within a register"), with
 * the sums done on the low seven bits of each byte so that no carry
 * crosses into the next byte and every flag is exact.
 *
 * What each scanner gained is said where it is used.
 */
#ifndef MR_SCAN_H
#define MR_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>

typedef __m128i mr_blk;

static inline mr_blk mr_blk_load(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

static inline void mr_blk_store(void *p, mr_blk b)
{
    _mm_storeu_si128((__m128i *)p, b);
}

/* Bytes equal to c. */
static inline unsigned mr_blk_eq(mr_blk b, unsigned char c)
{
    return (unsigned)_mm_movemask_epi8(
        _mm_cmpeq_epi8(b, _mm_set1_epi8((char)c)));
}

/* Bytes below c, unsigned, for 1 <= c <= 0x80: min(byte, c - 1) is the
 * byte itself exactly then. */
static inline unsigned mr_blk_lt(mr_blk b, unsigned char c)
{
    __m128i m = _mm_min_epu8(b, _mm_set1_epi8((char)(c - 1)));
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(m, b));
}

/* Bytes from 0x80 up: their top bit. */
static inline unsigned mr_blk_high(mr_blk b)
{
    return (unsigned)_mm_movemask_epi8(b);
}

/* Bytes below c or from 0x80 up, for c < 0x80: below c as signed bytes,
 * one compare. */
static inline unsigned mr_blk_lt_or_high(mr_blk b, unsigned char c)
{
    return (unsigned)_mm_movemask_epi8(
        _mm_cmplt_epi8(b, _mm_set1_epi8((char)c)));
}

#else

typedef struct {
    uint64_t w[2]; /* byte k of the block is byte k % 8 of w[k / 8] */
} mr_blk;

#define MR__ONES 0x0101010101010101ULL
#define MR__HIGH 0x8080808080808080ULL
#define MR__LOW7 0x7F7F7F7F7F7F7F7FULL

static inline uint64_t mr__word(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w); /* byte 0 in the low bits, as below */
#endif
    return w;
}

static inline mr_blk mr_blk_load(const void *p)
{
    mr_blk b = {{mr__word(p), mr__word((const unsigned char *)p + 8)}};
    return b;
}

static inline void mr_blk_store(void *p, mr_blk b)
{
    for (int k = 0; k < 2; k++) {
        uint64_t w = b.w[k];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        memcpy((unsigned char *)p + 8 * k, &w, 8);
    }
}

/* Top bits of the bytes (bit 8k+7 for byte k) to bits 0-7: the products
 * land in distinct bit positions, so no carry disturbs them. */
static inline unsigned mr__bits(uint64_t hi)
{
    return (unsigned)(((hi >> 7) * 0x0102040810204080ULL) >> 56);
}

static inline unsigned mr__mask(uint64_t lo, uint64_t hi)
{
    return mr__bits(lo) | mr__bits(hi) << 8;
}

/* x is 0 exactly where the byte equals c; 0x7F + (x & 0x7F) reaches the
 * top bit for any other x. */
static inline uint64_t mr__eq(uint64_t w, unsigned char c)
{
    uint64_t x = w ^ (MR__ONES * c);
    return ~(((x & MR__LOW7) + MR__LOW7) | x) & MR__HIGH;
}

/* b + (0x80 - c) stays under 0x80 exactly when b < c (bytes from 0x80 up
 * are excluded by their own top bit). */
static inline uint64_t mr__lt(uint64_t w, unsigned char c)
{
    uint64_t t = (w & MR__LOW7) + MR__ONES * (uint64_t)(0x80 - c);
    return ~(t | w) & MR__HIGH;
}

static inline unsigned mr_blk_eq(mr_blk b, unsigned char c)
{
    return mr__mask(mr__eq(b.w[0], c), mr__eq(b.w[1], c));
}

static inline unsigned mr_blk_lt(mr_blk b, unsigned char c)
{
    return mr__mask(mr__lt(b.w[0], c), mr__lt(b.w[1], c));
}

static inline unsigned mr_blk_high(mr_blk b)
{
    return mr__mask(b.w[0] & MR__HIGH, b.w[1] & MR__HIGH);
}

static inline unsigned mr_blk_lt_or_high(mr_blk b, unsigned char c)
{
    return mr__mask(mr__lt(b.w[0], c) | (b.w[0] & MR__HIGH),
                    mr__lt(b.w[1], c) | (b.w[1] & MR__HIGH));
}

#endif

/* Copies n < 16 bytes with a few loads and stores instead of a call to
 * memmove: everything is loaded before anything is stored, so the ranges
 * may overlap. */
static inline void mr_copy_short(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n > 0) {
        unsigned char a = s[0], b = s[n / 2], c = s[n - 1];
        d[0] = a;
        d[n / 2] = b;
        d[n - 1] = c;
    }
}

/* Offset of the first flagged byte; mask is not 0. */
static inline size_t mr_blk_first(unsigned mask)
{
    return (size_t)__builtin_ctz(mask);
}

#endif
