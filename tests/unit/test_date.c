/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_date.c - mr_date_parse and mr_date_rfc3339 over a table of the
 * date forms real mail carries, and of strings that are not dates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mime/date.h"
#include "util/error.h"

#define ANY_FLAGS 0xFFu

struct date_case {
    const char *in;
    int rc;
    int64_t t;
    unsigned flags_set;   /* flags that must be set */
    unsigned flags_clear; /* flags that must not be set */
};

/* The case table is at the bottom of the file. */
static const struct date_case *table(size_t *n_r);

static void test_table(void **state)
{
    (void)state;
    size_t n_cases;
    const struct date_case *cases = table(&n_cases);
    for (size_t i = 0; i < n_cases; i++) {
        const struct date_case *c = &cases[i];
        int64_t t = -1;
        unsigned flags = 0;
        int rc = mr_date_parse(mr_span_cstr(c->in), &t, &flags);
        if (rc != c->rc || (rc == 0 && t != c->t) ||
            (flags & c->flags_set) != c->flags_set ||
            (flags & c->flags_clear) != 0) {
            print_error("case %zu '%s': rc %d t %lld flags %#x\n", i, c->in,
                        rc, (long long)t, flags);
            fail();
        }
    }
}

static void test_not_nul_terminated(void **state)
{
    (void)state;
    /* The span ends before "999": the parser must not read past it. */
    const char buf[] = "6 Jan 2025 10:00:00 +0000999";
    int64_t t = 0;
    assert_int_equal(mr_date_parse(mr_span_make(buf, sizeof(buf) - 4), &t,
                                   NULL), 0);
    assert_int_equal(t, 1736157600);
    assert_int_equal(mr_date_parse(MR_SPAN_NULL, &t, NULL), MR_EINVAL);
}

static void test_every_prefix(void **state)
{
    (void)state;
    /* Cutting a date anywhere must never crash or read out of bounds. */
    const char *s = "Monday, 06-Jan-2025 10:00:00 +0100 (CET)";
    size_t n = strlen(s);
    for (size_t k = 0; k <= n; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, s, k);
        int64_t t;
        (void)mr_date_parse(mr_span_make(copy, k), &t, NULL);
        free(copy);
    }
}

static void test_rfc3339(void **state)
{
    (void)state;
    char out[32];
    mr_date_rfc3339(1736157600, out);
    assert_string_equal(out, "2025-01-06T10:00:00Z");
    mr_date_rfc3339(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    mr_date_rfc3339(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59Z");
    mr_date_rfc3339(1709208000, out);
    assert_string_equal(out, "2024-02-29T12:00:00Z");
    mr_date_rfc3339(INT64_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59Z");
    mr_date_rfc3339(INT64_MIN, out);
    assert_string_equal(out, "0000-01-01T00:00:00Z");
}

static void test_roundtrip(void **state)
{
    (void)state;
    /* Every day from 1900 to 2100 through both directions. */
    for (int64_t t = -2208988800LL; t < 4102444800LL; t += 86400 + 3661) {
        char out[32];
        mr_date_rfc3339(t, out);
        int64_t back;
        assert_int_equal(mr_date_parse(mr_span_cstr(out), &back, NULL), 0);
        assert_int_equal(back, t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#define OK(s, t) {s, 0, t, 0, MR_DATE_NO_ZONE | MR_DATE_OBSOLETE}
#define OBS(s, t) {s, 0, t, MR_DATE_OBSOLETE, MR_DATE_NO_ZONE}
#define NOZONE(s, t) {s, 0, t, MR_DATE_NO_ZONE, 0}
#define BAD(s) {s, MR_EINVAL, 0, 0, 0}

/* 1736157600 is 2025-01-06T10:00:00Z. */
static const struct date_case cases[] = {
    /* RFC 5322 3.3 */
    OK("Mon, 6 Jan 2025 10:00:00 +0000", 1736157600),
    OK("Mon, 06 Jan 2025 10:00:00 +0000", 1736157600),
    OK("6 Jan 2025 10:00:00 +0000", 1736157600),
    OK("Mon, 6 Jan 2025 11:00:00 +0100", 1736157600),
    OK("Mon, 6 Jan 2025 05:00:00 -0500", 1736157600),
    OK("Mon, 6 Jan 2025 15:30:00 +0530", 1736157600),
    OK("Mon, 6 Jan 2025 10:00 +0000", 1736157600),
    OK("  Mon, 6 Jan 2025 10:00:00 +0000  ", 1736157600),
    OK("Mon, 6 Jan 2025 10:00:00 -0000", 1736157600),
    OK("Mon, 6 Jan 2025 10:00:00 +0000 (UTC)", 1736157600),
    OK("Mon, 6 Jan 2025 11:00:00 +0100 (CET (nested))", 1736157600),
    OK("Mon,\r\n 6 Jan 2025\r\n 10:00:00 +0000", 1736157600),
    OK("Thu, 29 Feb 2024 12:00:00 +0000", 1709208000),
    OK("Fri, 31 Dec 1999 23:59:59 +0000", 946684799),
    OK("Thu, 1 Jan 1970 00:00:00 +0000", 0),
    OK("Mon, 6 Jan 2025 10:00:60 +0000", 1736157660), /* leap second */
    /* no space after the comma, obsolete zone */
    OBS("Mon,6 Jan 2025 10:00:00 GMT", 1736157600),
    OBS("6 Jan 25 05:00 EST", 1736157600),
    OBS("6 Jan 25 10:00 EST", 1736175600),
    OBS("Mon, 6 Jan 2025 02:00:00 PST", 1736157600),
    OBS("Mon, 6 Jan 2025 03:00:00 PDT", 1736157600),
    OBS("Mon, 6 Jan 2025 10:00:00 UT", 1736157600),
    OBS("Mon, 6 Jan 2025 10:00:00 Z", 1736157600),
    OBS("Mon, 6 Jan 2025 10:00:00 A", 1736157600), /* military = +0000 */
    OBS("Mon, 6 Jan 2025 10:00:00 UTC", 1736157600),
    OBS("Mon, 6 Jan 2025 11:00:00 CET", 1736157600),
    OBS("Mon, 6 Jan 2025 11:00:00 GMT+0100", 1736157600),
    OBS("Mon, 6 Jan 2025 11:00:00 GMT+1", 1736157600),
    OBS("Mon, 6 Jan 2025 11:00:00 +01:00", 1736157600),
    OBS("Mon, 6 Jan 2025 11:00:00 +01", 1736157600),
    OBS("Mon, 6 Jan 2025 11:00:00 +0100 CET", 1736157600),
    /* two- and three-digit years (RFC 5322 4.3) */
    OBS("Fri, 31 Dec 99 23:59:59 +0000", 946684799),
    OBS("Mon, 1 Mar 49 00:00:00 +0000", 2498169600),
    OBS("Thu, 1 Jun 50 00:00:00 +0000", -618105600),
    OBS("Mon, 6 Jan 125 10:00:00 +0000", 1736157600),
    /* day and month names: full, any case */
    OBS("Monday, 06-Jan-2025 11:00:00 +0100 (CET)", 1736157600),
    OBS("MONDAY, 6 JANUARY 2025 10:00:00 +0000", 1736157600),
    OBS("mon 6 jan 2025 10:00:00 +0000", 1736157600),
    OK("Thu, 5 Sep 2024 00:00:00 +0000", 1725494400),
    OBS("Thurs, 5 Sept 2024 00:00:00 +0000", 1725494400),
    OBS("Mon, 6 Jan 2025 10.00.00 +0000", 1736157600),
    OBS("06/Jan/2025 10:00:00 +0000", 1736157600),
    /* asctime() and date(1) */
    {"Mon Jan  6 10:00:00 2025", 0, 1736157600,
     MR_DATE_OBSOLETE | MR_DATE_NO_ZONE, 0},
    OBS("Mon Jan  6 10:00:00 UTC 2025", 1736157600),
    OBS("Mon Jan 6 05:00:00 EST 2025", 1736157600),
    OBS("Jan 6 2025 10:00:00 +0000", 1736157600),
    /* ISO 8601 / RFC 3339 */
    OBS("2025-01-06T11:00:00+01:00", 1736157600),
    OBS("2025-01-06T10:00:00Z", 1736157600),
    OBS("2025-01-06t10:00:00z", 1736157600),
    OBS("2025-01-06 10:00:00.123Z", 1736157600),
    OBS("2025-01-06T11:00:00+0100", 1736157600),
    {"2025-01-06T10:00:00", 0, 1736157600, MR_DATE_NO_ZONE, 0},
    {"2025-01-06", 0, 1736121600, MR_DATE_NO_ZONE, 0},
    /* missing or unknown zone: UTC, flagged */
    NOZONE("Mon, 6 Jan 2025 10:00:00", 1736157600),
    NOZONE("Mon, 6 Jan 2025 10:00:00 XYZ", 1736157600),
    NOZONE("6 Jan 2025", 1736121600),
    /* invalid: range checks */
    BAD("Tue, 30 Feb 2025 10:00:00 +0000"),
    BAD("Sat, 29 Feb 2025 10:00:00 +0000"),
    BAD("Mon, 29 Feb 1900 10:00:00 +0000"),
    BAD("Mon, 31 Apr 2025 10:00:00 +0000"),
    BAD("Mon, 0 Jan 2025 10:00:00 +0000"),
    BAD("Mon, 32 Jan 2025 10:00:00 +0000"),
    BAD("Mon, 6 Jan 2025 24:00:00 +0000"),
    BAD("Mon, 6 Jan 2025 10:60:00 +0000"),
    BAD("Mon, 6 Jan 2025 10:00:61 +0000"),
    BAD("Mon, 6 Jan 2025 10:00:00 +2400"),
    BAD("Mon, 6 Jan 2025 10:00:00 +0160"),
    BAD("2025-13-01T00:00:00Z"),
    BAD("2025-02-30"),
    /* invalid: not dates */
    BAD(""),
    BAD("   "),
    BAD("(just a comment)"),
    BAD("garbage"),
    BAD("yesterday at noon"),
    BAD("Mon, 6 Foo 2025 10:00:00 +0000"),
    BAD("Mon, 6 Jan 2025 10:00:00 +0000 and then some"),
    BAD("Mon, 6 Jan 2025 10:00:00 +00000"),
    BAD("Mon, 123 Jan 2025 10:00:00 +0000"),
    BAD("Mon, 6 Jan 20255 10:00:00 +0000"),
    BAD("Mon, 6 Jan 2025 10"),
    BAD("Mon, 6 Jan 2025 10:0 +0000"),
    BAD("1736157600"),
    BAD("Mon, 6 Jan 2025 10:00:00 +0000 ((((((((((((((((((x"),
    BAD("6 Jan 1899 10:00:00 +0000"),
};

static const struct date_case *table(size_t *n_r)
{
    *n_r = sizeof(cases) / sizeof(cases[0]);
    return cases;
}
