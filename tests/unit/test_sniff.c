/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sniff.c - mr_sniff_type on real file headers (PNG, JPEG, GIF, PDF,
 * a PE "MZ" executable, an ELF binary, ZIP, HTML, plain text, empty), the
 * 64 KiB cut, and a missing libmagic: no answer, no crash, said once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content/sniff.h"

/* A 1x1 PNG as written by common tools. */
static const unsigned char png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
    0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00,
    0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49,
    0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static const unsigned char jpeg[] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00,
    0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xdb};

static const char gif[] = "GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff"
                          "\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,";

static const char pdf[] =
    "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\n"
    "endobj\n";

static const char html[] =
    "<!DOCTYPE html>\n<html><head><title>Invoice</title></head>\n"
    "<body><script>alert(1)</script></body></html>\n";

static const char text[] = "Hello,\nplease find the report attached.\n";

/* A minimal PE image: the DOS header ("MZ", e_lfanew = 0x80) and the
 * "PE\0\0" signature with an x86-64 COFF header. */
static size_t make_pe(unsigned char *b, size_t size)
{
    memset(b, 0, size);
    b[0] = 'M';
    b[1] = 'Z';
    b[0x3c] = 0x80;
    memcpy(b + 0x80, "PE\0\0", 4);
    b[0x84] = 0x64; /* machine: AMD64 */
    b[0x85] = 0x86;
    b[0x86] = 1;    /* one section */
    b[0x94] = 0xf0; /* optional header size */
    b[0x96] = 0x22; /* characteristics: executable, large address aware */
    b[0x98] = 0x0b; /* PE32+ magic */
    b[0x99] = 0x02;
    b[0x98 + 68] = 3; /* subsystem: console */
    return 0x200;
}

/* The local file header of a ZIP with one stored file "a.txt". */
static const char zip[] = "PK\x03\x04\x0a\x00\x00\x00\x00\x00\x00\x00!\x00"
                          "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                          "\x05\x00\x00\x00a.txtPK\x05\x06\x00\x00\x00\x00"
                          "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                          "\x00\x00";

static struct mr_sniff *sn;

static int setup(void **state)
{
    (void)state;
    sn = mr_sniff_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mr_sniff_free(&sn);
    assert_null(sn);
    return 0;
}

static const char *type_of(const void *p, size_t n)
{
    static char out[MR_SNIFF_TYPE_MAX + 1];
    if (!mr_sniff_type(sn, p, n, out))
        return "";
    return out;
}

static void images(void **state)
{
    (void)state;
    assert_true(mr_sniff_available(sn, NULL));
    assert_string_equal(type_of(png, sizeof png), "image/png");
    assert_string_equal(type_of(jpeg, sizeof jpeg), "image/jpeg");
    assert_string_equal(type_of(gif, sizeof gif - 1), "image/gif");
    const char *why = NULL;
    assert_true(mr_sniff_available(sn, &why));
    assert_string_equal(why, "");
}

static void documents(void **state)
{
    (void)state;
    assert_string_equal(type_of(pdf, sizeof pdf - 1), "application/pdf");
    assert_string_equal(type_of(zip, sizeof zip - 1), "application/zip");
    assert_string_equal(type_of(html, sizeof html - 1), "text/html");
    assert_string_equal(type_of(text, sizeof text - 1), "text/plain");
    assert_string_equal(type_of("", 0), "application/x-empty");
}

/* An executable is found by its bytes whatever it would be called. */
static void executables(void **state)
{
    (void)state;
    unsigned char pe[0x200];
    size_t n = make_pe(pe, sizeof pe);
    const char *t = type_of(pe, n);
    /* file 5.4x calls PE32+ images application/vnd.microsoft.portable-
     * executable, older ones application/x-dosexec. */
    assert_true(strcmp(t, "application/x-dosexec") == 0 ||
                strcmp(t, "application/vnd.microsoft.portable-executable") ==
                    0);
    /* "MZ" alone is still a DOS executable to libmagic. */
    unsigned char mz[64] = {'M', 'Z', 0x90, 0x00, 0x03};
    t = type_of(mz, sizeof mz);
    assert_string_equal(t, "application/x-dosexec");
    /* ELF, 64-bit little-endian, ET_EXEC. */
    unsigned char elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    elf[16] = 2;    /* ET_EXEC */
    elf[18] = 0x3e; /* x86-64 */
    elf[20] = 1;
    t = type_of(elf, sizeof elf);
    assert_true(strcmp(t, "application/x-executable") == 0 ||
                strcmp(t, "application/x-pie-executable") == 0 ||
                strcmp(t, "application/x-sharedlib") == 0);
}

/* Bytes past MR_SNIFF_BYTES are not looked at: a PNG header followed by
 * a megabyte of anything is still one call, and the answer is the same. */
static void long_input_is_cut(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    unsigned char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'A', n);
    memcpy(big, png, sizeof png);
    assert_string_equal(type_of(big, n), "image/png");
    free(big);
}

static void missing_library(void **state)
{
    (void)state;
    struct mr_sniff *none = mr_sniff_new_from("libmagic-not-there.so.0");
    /* Not tried yet: nothing to warn about. */
    assert_true(mr_sniff_available(none, NULL));
    char out[MR_SNIFF_TYPE_MAX + 1] = "x";
    assert_false(mr_sniff_type(none, png, sizeof png, out));
    assert_string_equal(out, "");
    const char *why = NULL;
    assert_false(mr_sniff_available(none, &why));
    assert_non_null(strstr(why, "libmagic"));
    /* Asked again: still no answer, no second load attempt. */
    assert_false(mr_sniff_type(none, pdf, sizeof pdf - 1, out));
    mr_sniff_free(&none);
    mr_sniff_free(&none); /* NULL is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(images),          cmocka_unit_test(documents),
        cmocka_unit_test(executables),     cmocka_unit_test(long_input_is_cut),
        cmocka_unit_test(missing_library),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
