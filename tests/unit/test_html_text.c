/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_html_text.c - mr_html_to_text construct by construct (docs/reply.md
 * lists what each becomes), plus the properties every result has: valid
 * UTF-8, appended after what the buffer held, linear on hostile nesting.
 */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "content/html_text.h"
#include "util/buf.h"
#include "util/utf8.h"

static char *conv(const char *html, size_t n)
{
    struct mr_buf b;
    mr_buf_init(&b, 0);
    mr_html_to_text(html, n, &b);
    assert_true(mr_utf8_valid(b.p ? b.p : "", b.len));
    assert_null(memchr(b.p ? b.p : "", '\0', b.len));
    return mr_buf_detach(&b, NULL);
}

#define CHECK(html, want)                                                      \
    do {                                                                       \
        char *got_ = conv(html, strlen(html));                                 \
        assert_string_equal(got_, want);                                       \
        free(got_);                                                            \
    } while (0)

static void blocks_are_lines(void **state)
{
    (void)state;
    CHECK("<div>a</div><div>b</div>", "a\nb");
    CHECK("<p>a</p><p>b</p>", "a\n\nb");
    CHECK("<p>a</p><p></p><p></p><div></div><p>b</p>", "a\n\nb");
    CHECK("<h2>Head</h2>text", "Head\n\ntext");
    CHECK("<p class=MsoNormal>a</p><p class=MsoNormal>b</p>", "a\nb");
    CHECK("", "");
}

static void whitespace_collapses(void **state)
{
    (void)state;
    CHECK("  a \n\t b  <b> c </b>d ", "a b c d");
    CHECK("<p>  lead</p>", "lead");
    CHECK("a&nbsp;&nbsp;b", "a b");
    CHECK("<p>&nbsp;</p><p>x</p>", "x");
}

static void breaks_and_rules(void **state)
{
    (void)state;
    CHECK("a<br>b", "a\nb");
    CHECK("a<br><br>b", "a\n\nb");
    CHECK("a<br><br><br><br>b", "a\n\nb");
    CHECK("<div>a<br></div><div>b</div>", "a\nb");
    CHECK("a<hr>b", "a\n----------\nb");
}

static void dropped_elements(void **state)
{
    (void)state;
    CHECK("<html><head><title>T</title><style>p{}</style></head><body>"
          "<script>x()</script>a<template>t</template><noscript>n</noscript>"
          "</body></html>",
          "a");
    /* No box at all, as in a browser: a and b share a line. */
    CHECK("a<div style=\"display: none\">pre-header</div>b", "ab");
    CHECK("a<span hidden>x</span>b", "ab");
    CHECK("a<!-- comment -->b", "ab");
}

static void entities(void **state)
{
    (void)state;
    CHECK("&lt;tag&gt; &amp; &eacute;&#233;&#x20AC;&euro;", "<tag> & éé€€");
}

static void lists(void **state)
{
    (void)state;
    CHECK("<ul><li>one</li><li>two</li></ul>", "- one\n- two");
    CHECK("<ol><li>a</li><li>b</li></ol>", "1. a\n2. b");
    CHECK("<ol start=\"7\"><li>a</li></ol>", "7. a");
    CHECK("<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>", "- a\n  - b\n- c");
    CHECK("<ul><li>a<br>more</li></ul>", "- a\n  more");
    CHECK("<p>x</p><ul><li>y</li></ul>", "x\n\n- y");
    CHECK("<li>stray</li>", "- stray");
}

static void links(void **state)
{
    (void)state;
    CHECK("<a href=\"https://x.org/a\">site</a>", "site <https://x.org/a>");
    CHECK("<a href=\"https://x.org/\">https://x.org/</a>", "https://x.org/");
    CHECK("<a href=\"https://x.org/\">x.org</a>", "x.org");
    CHECK("<a href=\"mailto:a@b.org?subject=hi\">a@b.org</a>", "a@b.org");
    CHECK("<a href=\"mailto:a@b.org\">Ann</a>", "Ann <a@b.org>");
    CHECK("<a href=\"javascript:x()\">click</a>", "click");
    CHECK("<a href=\"/relative\">rel</a>", "rel");
    CHECK("<a href=\"https://x.org/i\"></a>", "https://x.org/i");
}

static void images(void **state)
{
    (void)state;
    CHECK("a <img src=x alt=\"[logo]\"> b", "a [logo] b");
    CHECK("a<img src=x>b", "ab");
}

static void tables(void **state)
{
    (void)state;
    CHECK("<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr>"
          "</table>",
          "A | B\n1 | 2");
    /* Empty layout cells add no separators. */
    CHECK("<table><tr><td></td><td>x</td><td> </td></tr></table>", "x");
    CHECK("<p>a</p><table><tr><td>b</td></tr></table>c", "a\n\nb\nc");
}

static void quotes(void **state)
{
    (void)state;
    CHECK("<p>mine</p><blockquote>old<blockquote>older</blockquote>back"
          "</blockquote>",
          "mine\n\n> old\n> > older\n> back");
    CHECK("<blockquote><p>a</p><p>b</p></blockquote>", "> a\n>\n> b");
    CHECK("new<blockquote type=\"cite\">old</blockquote>", "new\n> old");
    CHECK("new<div class=\"gmail_quote\">On Mon, X wrote:<blockquote "
          "class=\"gmail_quote\">old</blockquote></div>",
          "new\nOn Mon, X wrote:\n> old");
    CHECK("new<div id=\"divRplyFwdMsg\">From: X</div><div>old</div>",
          "new\n> From: X\n> old");
    CHECK("new<div style=\"border:none;border-top:solid #E1E1E1 1.0pt\"><p>"
          "<b>From:</b> X</p></div><p>old</p>",
          "new\n\n> From: X\n>\n> old");
    /* A bordered div that is not a reply header is just a div. */
    CHECK("a<div style=\"border-top:solid 1px\">Totals</div>b", "a\nTotals\nb");
}

static void preformatted(void **state)
{
    (void)state;
    CHECK("<pre>  a  b\n\n\n\n   c  </pre>", "  a  b\n\n   c");
    CHECK("x<pre>y</pre>z", "x\n\ny\n\nz");
}

static void appends_and_repairs(void **state)
{
    (void)state;
    struct mr_buf b;
    mr_buf_init(&b, 0);
    mr_buf_puts(&b, "kept:");
    const char bad[] = "<p>a\xff\xfe b\x00c</p>";
    mr_html_to_text(bad, sizeof bad - 1, &b);
    assert_true(strncmp(b.p, "kept:", 5) == 0);
    assert_true(mr_utf8_valid(b.p, b.len));
    assert_null(memchr(b.p, '\0', b.len));
    assert_non_null(strstr(b.p, "a"));
    mr_buf_release(&b);

    /* A capped buffer stops at its cap. */
    mr_buf_init(&b, 10);
    mr_html_to_text("<p>0123456789abcdef</p>", 23, &b);
    assert_true(b.len <= 10);
    assert_true(b.limited);
    mr_buf_release(&b);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* 200k nested elements: the tree builder would take minutes (it is
 * quadratic in depth) and free the tree recursively; the depth guard
 * sends such input to the linear converter. */
static void hostile_nesting_is_linear(void **state)
{
    (void)state;
    const char *pieces[] = {"<div>", "<blockquote>", "<ul><li>", "<span>",
                            "<table><tr><td>"};
    for (size_t k = 0; k < sizeof pieces / sizeof *pieces; k++) {
        size_t pl = strlen(pieces[k]), reps = 200000;
        char *h = malloc(pl * reps + 8);
        for (size_t i = 0; i < reps; i++)
            memcpy(h + i * pl, pieces[k], pl);
        memcpy(h + pl * reps, "deep", 4);
        double t0 = now();
        char *got = conv(h, pl * reps + 4);
        double took = now() - t0;
        assert_non_null(strstr(got, "deep"));
        assert_true(took < 5.0);
        free(got);
        free(h);
    }
    /* Just under the guard, gumbo builds the tree: still quick. */
    char h[1400 * 5 + 8];
    for (size_t i = 0; i < 1400; i++)
        memcpy(h + i * 5, "<div>", 5);
    memcpy(h + 7000, "deep", 4);
    double t0 = now();
    char *got = conv(h, 7004);
    assert_string_equal(got, "deep");
    assert_true(now() - t0 < 2.0);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blocks_are_lines),
        cmocka_unit_test(whitespace_collapses),
        cmocka_unit_test(breaks_and_rules),
        cmocka_unit_test(dropped_elements),
        cmocka_unit_test(entities),
        cmocka_unit_test(lists),
        cmocka_unit_test(links),
        cmocka_unit_test(images),
        cmocka_unit_test(tables),
        cmocka_unit_test(quotes),
        cmocka_unit_test(preformatted),
        cmocka_unit_test(appends_and_repairs),
        cmocka_unit_test(hostile_nesting_is_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
