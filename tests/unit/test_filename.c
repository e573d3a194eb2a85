/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_filename.c - mr_filename_safe and mr_filename_ext against path
 * traversal, hidden extensions, device names, controls and long names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mime/filename.h"
#include "util/buf.h"
#include "util/utf8.h"

struct fn_case {
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    const char *ctype;
    const char *out;
    const char *ext; /* mr_filename_ext of the output */
};

/* The case table is at the bottom of the file. */
static const struct fn_case *table(size_t *n_r);

static void check_safe(const char *s, size_t n, size_t max)
{
    assert_true(n > 0);
    assert_true(n <= max);
    assert_true(mr_utf8_valid(s, n));
    assert_null(memchr(s, '\0', n));
    assert_true(s[0] != '.' && s[0] != ' ');
    assert_true(s[n - 1] != '.' && s[n - 1] != ' ');
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        assert_true(c >= 0x20 && c != 0x7F);
        assert_null(strchr("/\\:<>\"|?*", c));
    }
}

static void test_table(void **state)
{
    (void)state;
    size_t n_cases;
    const struct fn_case *cases = table(&n_cases);
    int failed = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const struct fn_case *c = &cases[i];
        struct mr_buf out;
        mr_buf_init(&out, 0);
        size_t len = c->in_len ? c->in_len : strlen(c->in);
        mr_filename_safe(mr_span_make(c->in, len), mr_span_cstr(c->ctype), 0,
                         &out);
        check_safe(out.p, out.len, MR_FILENAME_MAX);
        char ext[16];
        mr_filename_ext(mr_buf_span(&out), ext, sizeof(ext));
        if (strcmp(out.p, c->out) != 0 || strcmp(ext, c->ext) != 0) {
            print_error("case %zu: got '%s' ext '%s', want '%s' '%s'\n", i,
                        out.p, ext, c->out, c->ext);
            failed++;
        }
        mr_buf_release(&out);
    }
    assert_int_equal(failed, 0);
}

static void test_long_names(void **state)
{
    (void)state;
    /* 10,000 characters of which many are multibyte: bounded, cut on a
     * character boundary, extension kept. */
    struct mr_buf in, out;
    mr_buf_init(&in, 0);
    mr_buf_init(&out, 0);
    for (int k = 0; k < 3333; k++)
        mr_buf_puts(&in, "a\xc3\xa9\xe2\x82\xac");
    mr_buf_puts(&in, ".exe");
    mr_filename_safe(mr_buf_span(&in), MR_SPAN_NULL, 0, &out);
    check_safe(out.p, out.len, MR_FILENAME_MAX);
    assert_true(out.len >= MR_FILENAME_MAX - 3);
    assert_string_equal(out.p + out.len - 4, ".exe");

    for (size_t max = 1; max < 40; max++) {
        mr_buf_reset(&out);
        mr_filename_safe(mr_buf_span(&in), MR_SPAN_NULL, max, &out);
        assert_true(out.len <= (max < 10 ? 14 : max)); /* "attachment" */
        assert_true(mr_utf8_valid(out.p, out.len));
        if (max >= 8)
            assert_string_equal(out.p + out.len - 4, ".exe");
    }

    /* No extension at all. */
    mr_buf_reset(&in);
    for (int k = 0; k < 10000; k++)
        mr_buf_putc(&in, 'x');
    mr_buf_reset(&out);
    mr_filename_safe(mr_buf_span(&in), MR_SPAN_NULL, 0, &out);
    assert_int_equal(out.len, MR_FILENAME_MAX);

    /* A reserved name with a long tail stays bounded. */
    mr_buf_reset(&in);
    mr_buf_puts(&in, "con");
    for (int k = 0; k < 300; k++)
        mr_buf_puts(&in, " ");
    mr_buf_puts(&in, ".txt");
    mr_buf_reset(&out);
    mr_filename_safe(mr_buf_span(&in), MR_SPAN_NULL, 0, &out);
    assert_string_equal(out.p, "_con .txt");
    mr_buf_release(&in);
    mr_buf_release(&out);
}

static void test_ext(void **state)
{
    (void)state;
    char ext[8];
    mr_filename_ext(mr_span_cstr("a.TAR.GZ"), ext, sizeof(ext));
    assert_string_equal(ext, "gz");
    mr_filename_ext(mr_span_cstr("evil.exe. "), ext, sizeof(ext));
    assert_string_equal(ext, "exe");
    mr_filename_ext(mr_span_cstr("noext"), ext, sizeof(ext));
    assert_string_equal(ext, "");
    mr_filename_ext(mr_span_cstr("dir.d/noext"), ext, sizeof(ext));
    assert_string_equal(ext, "");
    mr_filename_ext(mr_span_cstr("a.verylongext"), ext, sizeof(ext));
    assert_string_equal(ext, "");
    mr_filename_ext(mr_span_cstr("a.p\xc3\xa9"), ext, sizeof(ext));
    assert_string_equal(ext, "");
    mr_filename_ext(MR_SPAN_NULL, ext, sizeof(ext));
    assert_string_equal(ext, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_ext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

static const struct fn_case cases[] = {
    {"report.pdf", 0, "", "report.pdf", "pdf"},
    {"Quarterly Report (final).PDF", 0, "", "Quarterly Report (final).PDF",
     "pdf"},
    {"r\xc3\xa9sum\xc3\xa9.docx", 0, "", "r\xc3\xa9sum\xc3\xa9.docx", "docx"},
    /* paths */
    {"../../etc/passwd", 0, "", "passwd", ""},
    {"..\\..\\windows\\win.ini", 0, "", "win.ini", "ini"},
    {"....//....//etc/shadow", 0, "", "shadow", ""},
    {"/etc/cron.d/evil", 0, "", "evil", ""},
    {"C:\\Windows\\System32\\evil.dll", 0, "", "evil.dll", "dll"},
    {"\\\\server\\share\\x.exe", 0, "", "x.exe", "exe"},
    {"file:///etc/passwd", 0, "", "passwd", ""},
    {"report.pdf:Zone.Identifier", 0, "", "Zone.Identifier", "identifier"},
    {"dir/", 0, "application/pdf", "attachment.pdf", "pdf"},
    /* hidden extensions */
    {"invoice.pdf\0.exe", 16, "", "invoice.pdf_.exe", "exe"},
    {"invoice\xe2\x80\xae" "fdp.exe", 0, "", "invoicefdp.exe", "exe"},
    {"a\xe2\x80\x8b" "b\xef\xbb\xbf" "c\xe2\x81\xa6.exe", 0, "", "abc.exe",
     "exe"},
    {"document.pdf      .exe", 0, "", "document.pdf .exe", "exe"},
    {"document.pdf\xc2\xa0\xe3\x80\x80.exe", 0, "", "document.pdf .exe",
     "exe"},
    {"evil.exe. ", 0, "", "evil.exe", "exe"},
    {"evil.exe...", 0, "", "evil.exe", "exe"},
    {"  .hidden", 0, "", "hidden", ""},
    /* controls and forbidden characters */
    {"a\r\nb.txt", 0, "", "a b.txt", "txt"},
    {"line1\r\n\tline2.txt", 0, "", "line1 line2.txt", "txt"},
    {"a\x01" "b\x7f" "c\xc2\x85" "d.txt", 0, "", "a_b_c d.txt", "txt"},
    {"a\xc2\x9b" "b.txt", 0, "", "a_b.txt", "txt"},
    {"what?<>|*\".txt", 0, "", "what______.txt", "txt"},
    /* Windows device names */
    {"CON", 0, "", "_CON", ""},
    {"aux.txt", 0, "", "_aux.txt", "txt"},
    {"Com1.log", 0, "", "_Com1.log", "log"},
    {"lpt9", 0, "", "_lpt9", ""},
    {"nul .txt", 0, "", "_nul .txt", "txt"},
    {"console.txt", 0, "", "console.txt", "txt"},
    {"com10", 0, "", "com10", ""},
    /* nothing usable */
    {".", 0, "", "attachment", ""},
    {"..", 0, "text/plain", "attachment.txt", "txt"},
    {"", 0, "message/rfc822", "attachment.eml", "eml"},
    {"   ", 0, "image/png", "attachment.png", "png"},
    {"???", 0, "application/pdf", "attachment.pdf", "pdf"},
    {"\xe2\x80\xae", 0, "text/html; charset=utf-8", "attachment.html",
     "html"},
    {"../", 0, "application/x-unknown", "attachment", ""},
    {"", 0, "text/x-weird", "attachment.txt", "txt"},
    /* invalid UTF-8 is repaired first */
    {"caf\xe9.txt", 0, "", "caf\xef\xbf\xbd.txt", "txt"},
    {"\xff\xfe.exe", 0, "", "\xef\xbf\xbd\xef\xbf\xbd.exe", "exe"},
    {"\xc0\xaf\xc0\xae.txt", 0, "",
     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd.txt", "txt"},
};

static const struct fn_case *table(size_t *n_r)
{
    *n_r = sizeof(cases) / sizeof(cases[0]);
    return cases;
}
