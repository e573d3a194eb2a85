/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_attach_policy.c - the attachment blocklist rule by rule (bidi
 * controls, detected executables, padded and double extensions, blocked
 * extensions and types), the type-mismatch pairs, the served
 * Content-Type, the RFC 6266 Content-Disposition, and the configuration's
 * attachments: section (additions, removals, limits, errors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "content/attach_policy.h"
#include "util/buf.h"

struct judge_case {
    const char *filename, *safe, *declared, *detected;
    bool blocked;
    const char *reason; /* prefix of the reason, or NULL */
    bool mismatch;
};

static const struct judge_case cases[] = {
    /* harmless */
    {"invoice.pdf", "invoice.pdf", "application/pdf", "application/pdf", false,
     NULL, false},
    {"photo.JPG", "photo.JPG", "image/jpeg", "image/jpeg", false, NULL, false},
    {"notes.txt", "notes.txt", "text/plain", "text/plain", false, NULL, false},
    {NULL, NULL, NULL, NULL, false, NULL, false},
    {"v1.2.3.tar.gz", "v1.2.3.tar.gz", "application/gzip", "application/gzip",
     false, NULL, false},
    /* extension */
    {"setup.exe", "setup.exe", "application/octet-stream", NULL, true,
     "extension: .exe", false},
    {"RUN.BAT", "RUN.BAT", "text/plain", "text/plain", true, "extension: .bat",
     false},
    {"evil.exe. ", "evil.exe", "application/octet-stream", NULL, true,
     "extension: .exe", false},
    {"payload.ps1", "payload.ps1", "text/plain", "text/plain", true,
     "extension: .ps1", false},
    {"page.html", "page.html", "text/html", "text/html", true,
     "detected_type: text/html", false},
    {"drawing.svg", "drawing.svg", "image/svg+xml", NULL, true,
     "extension: .svg", false},
    {"disk.iso", "disk.iso", "application/octet-stream", NULL, true,
     "extension: .iso", false},
    {"shortcut.lnk", "shortcut.lnk", "application/octet-stream", NULL, true,
     "extension: .lnk", false},
    /* double extension (the decoy before a blocked one) */
    {"invoice.pdf.exe", "invoice.pdf.exe", "application/pdf", NULL, true,
     "double_extension: .pdf.exe", false},
    {"Report.DOCX.js", "Report.DOCX.js", "application/octet-stream", NULL, true,
     "double_extension: .docx.js", false},
    {"archive.tar.gz", "archive.tar.gz", "application/gzip", NULL, false, NULL,
     false},
    /* padding hides the final extension, whatever it is */
    {"invoice.pdf      .exe", "invoice.pdf .exe", "application/pdf", NULL, true,
     "padded_extension: .pdf", false},
    {"invoice.pdf\xc2\xa0\xc2\xa0\xc2\xa0.zip", "invoice.pdf .zip",
     "application/zip", "application/zip", true, "padded_extension", false},
    {"invoice.pdf .zip", "invoice.pdf .zip", "application/zip",
     "application/zip", false, NULL, false},
    /* bidi controls in the original name: "invoice\u202Efdp.exe" shows as
     * "invoiceexe.pdf" */
    {"invoice\xe2\x80\xae"
     "fdp.exe",
     "invoicefdp.exe", "application/pdf", NULL, true, "bidi: U+202E", false},
    {"report\xe2\x81\xa7txt.scr", "reporttxt.scr", NULL, NULL, true,
     "bidi: U+2067", false},
    {"\xe2\x80\xaa"
     "cv.docx",
     "cv.docx", NULL, NULL, true, "bidi: U+202A", false},
    /* an executable by its bytes, whatever it is called */
    {"holiday.jpg", "holiday.jpg", "image/jpeg", "application/x-dosexec", true,
     "detected_type: application/x-dosexec", true},
    {"data.bin", "data.bin", "application/octet-stream",
     "application/vnd.microsoft.portable-executable", true,
     "detected_type: application/vnd.microsoft.portable-executable", false},
    {"tool", "tool", "application/octet-stream", "application/x-executable",
     true, "detected_type", false},
    /* declared type alone */
    {"download", "download", "application/x-msdownload", NULL, true,
     "declared_type: application/x-msdownload", false},
    /* mismatches that matter, without a block */
    {"report.pdf", "report.pdf", "application/pdf", "application/zip", false,
     NULL, true},
    {"photo.png", "photo.png", "image/png", "application/pdf", false, NULL,
     true},
    /* and benign disagreements */
    {"photo.png", "photo.png", "image/png", "image/jpeg", false, NULL, false},
    {"a.docx", "a.docx",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     "application/zip", false, NULL, false},
    {"a.doc", "a.doc", "application/msword", "application/cdfv2", false, NULL,
     false},
    {"main.c", "main.c", "text/plain", "text/x-c", false, NULL, false},
    {"data.json", "data.json", "text/plain", "application/json", false, NULL,
     false},
    {"x.bin", "x.bin", "application/octet-stream", "application/pdf", false,
     NULL, false},
    {"fwd.eml", "fwd.eml", "message/rfc822", "text/plain", false, NULL, false},
    {"empty.pdf", "empty.pdf", "application/pdf", "application/x-empty", false,
     NULL, false},
    /* text that turns out to be a page: blocked and mismatched */
    {"readme.txt", "readme.txt", "text/plain", "text/html", true,
     "detected_type: text/html", true},
};

static void judge_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct judge_case *c = &cases[i];
        struct mr_attach_verdict v;
        mr_attach_judge(NULL, c->filename, c->safe, c->declared, c->detected,
                        &v);
        if (v.blocked != c->blocked || v.type_mismatch != c->mismatch ||
            (c->reason && strncmp(v.reason, c->reason, strlen(c->reason))) ||
            (!c->blocked && v.reason[0]))
            fail_msg("case %zu (%s): blocked %d mismatch %d reason '%s'", i,
                     c->filename ? c->filename : "(null)", v.blocked,
                     v.type_mismatch, v.reason);
    }
}

static void lists(void **state)
{
    (void)state;
    assert_true(mr_attach_extension_blocked(NULL, "exe"));
    assert_true(mr_attach_extension_blocked(NULL, "EXE"));
    assert_false(mr_attach_extension_blocked(NULL, "pdf"));
    assert_false(mr_attach_extension_blocked(NULL, ""));
    assert_false(mr_attach_extension_blocked(NULL, NULL));
    assert_true(mr_attach_type_blocked(NULL, "application/x-dosexec"));
    assert_true(mr_attach_type_blocked(NULL, "image/svg+xml"));
    assert_false(mr_attach_type_blocked(NULL, "image/png"));
    assert_false(mr_attach_type_blocked(NULL, NULL));
    /* Every default is in canonical form: lower case, no dot. */
    for (size_t i = 0; mr_attach_default_extensions[i]; i++) {
        const char *e = mr_attach_default_extensions[i];
        for (const char *p = e; *p; p++)
            assert_false((*p >= 'A' && *p <= 'Z') || *p == '.');
    }
    for (size_t i = 0; mr_attach_default_types[i]; i++)
        assert_non_null(strchr(mr_attach_default_types[i], '/'));
}

static void policy_additions_and_removals(void **state)
{
    (void)state;
    const char *bext[] = {"xlsm", "one"};
    const char *btypes[] = {"application/vnd.ms-excel.sheet.macroenabled.12"};
    const char *aext[] = {"iso", "html"};
    const char *atypes[] = {"text/html"};
    struct mr_attach_policy p = {
        .blocked_extensions = bext,
        .nblocked_extensions = 2,
        .blocked_types = btypes,
        .nblocked_types = 1,
        .allowed_extensions = aext,
        .nallowed_extensions = 2,
        .allowed_types = atypes,
        .nallowed_types = 1,
    };
    struct mr_attach_verdict v;
    mr_attach_judge(&p, "budget.XLSM", "budget.XLSM", "application/zip",
                    "application/zip", &v);
    assert_true(v.blocked);
    assert_string_equal(v.reason, "extension: .xlsm");
    mr_attach_judge(&p, "budget.xlsx", "budget.xlsx",
                    "application/vnd.ms-excel.sheet.macroenabled.12", NULL, &v);
    assert_true(v.blocked);
    assert_string_equal(v.reason,
                        "declared_type: "
                        "application/vnd.ms-excel.sheet.macroenabled.12");
    /* Removed from the defaults. */
    mr_attach_judge(&p, "ubuntu.iso", "ubuntu.iso", NULL, NULL, &v);
    assert_false(v.blocked);
    mr_attach_judge(&p, "page.html", "page.html", "text/html", "text/html", &v);
    assert_false(v.blocked);
    /* Untouched defaults still apply, and so do the structural rules. */
    mr_attach_judge(&p, "x.exe", "x.exe", NULL, NULL, &v);
    assert_true(v.blocked);
    mr_attach_judge(&p,
                    "a\xe2\x80\xae"
                    "exe.pdf",
                    "aexe.pdf", NULL, NULL, &v);
    assert_true(v.blocked);
    /* Without the policy, the defaults. */
    mr_attach_judge(NULL, "ubuntu.iso", "ubuntu.iso", NULL, NULL, &v);
    assert_true(v.blocked);
}

static void served_type(void **state)
{
    (void)state;
    assert_string_equal(mr_attach_serve_type("image/png", false, false),
                        "image/png");
    assert_string_equal(mr_attach_serve_type("application/pdf", false, false),
                        "application/pdf");
    assert_string_equal(mr_attach_serve_type("image/png", true, false),
                        "application/octet-stream");
    assert_string_equal(mr_attach_serve_type("image/png", false, true),
                        "application/octet-stream");
    assert_string_equal(mr_attach_serve_type(NULL, false, false),
                        "application/octet-stream");
    /* Never something a browser renders as our page. */
    static const char *const never[] = {
        "text/html",       "image/svg+xml",      "application/xhtml+xml",
        "text/xml",        "application/xml",    "application/rss+xml",
        "text/javascript", "application/x-empty"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        assert_string_equal(mr_attach_serve_type(never[i], false, false),
                            "application/octet-stream");
    assert_true(mr_attach_is_raster_image("image/png"));
    assert_true(mr_attach_is_raster_image("image/jpeg"));
    assert_true(mr_attach_is_raster_image("image/gif"));
    assert_true(mr_attach_is_raster_image("image/webp"));
    assert_true(mr_attach_is_raster_image("image/x-ms-bmp"));
    assert_true(mr_attach_is_raster_image("image/vnd.microsoft.icon"));
    assert_false(mr_attach_is_raster_image("image/svg+xml"));
    assert_false(mr_attach_is_raster_image("text/html"));
    assert_false(mr_attach_is_raster_image(NULL));
}

static char *disposition(const char *kind, const char *name)
{
    struct mr_buf b;
    mr_buf_init(&b, MR_ATTACH_DISPOSITION_MAX);
    mr_attach_content_disposition(kind, name, "attachment-7", &b);
    assert_false(b.limited);
    return mr_buf_detach(&b, NULL);
}

static void content_disposition(void **state)
{
    (void)state;
    char *s = disposition("attachment", "report.pdf");
    assert_string_equal(s, "attachment; filename=\"report.pdf\"; "
                           "filename*=UTF-8''report.pdf");
    free(s);
    s = disposition("attachment", "Größe \"final\"; 100%.pdf");
    assert_string_equal(s, "attachment; filename=\"Gr__e _final__ 100_.pdf\"; "
                           "filename*=UTF-8''Gr%C3%B6%C3%9Fe%20%22final%22%3B"
                           "%20100%25.pdf");
    free(s);
    s = disposition("inline", NULL);
    assert_string_equal(s, "inline; filename=\"attachment-7\"; "
                           "filename*=UTF-8''attachment-7");
    free(s);
    /* A name longer than any safe name keeps its extension and fits. */
    char longname[600];
    memset(longname, 'a', sizeof longname);
    memcpy(longname + sizeof longname - 5, ".txt", 5);
    s = disposition("attachment", longname);
    assert_true(strlen(s) <= MR_ATTACH_DISPOSITION_MAX);
    assert_non_null(strstr(s, "a.txt\"; filename*=UTF-8''"));
    assert_int_equal(strcmp(s + strlen(s) - 5, "a.txt"), 0);
    free(s);
    /* 255 bytes of three-byte characters: the longest percent form. */
    char cjk[256];
    for (size_t i = 0; i + 3 <= 255; i += 3)
        memcpy(cjk + i, "\xe6\x96\x87", 3);
    cjk[255] = '\0';
    s = disposition("attachment", cjk);
    assert_true(strlen(s) <= MR_ATTACH_DISPOSITION_MAX);
    for (const char *p = s; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    free(s);
}

/* ---- the attachments: section of the configuration ---------------------- */

static struct mr_config *load(const char *extra, struct mr_config_diags *d)
{
    char path[] = "/tmp/mr-attach-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "%stenants:\n  - name: acme\n    inboxes: [a@acme.example]\n",
            extra);
    fclose(f);
    struct mr_config *cfg = NULL;
    struct mr_error err = {0};
    mr_config_load(path, "/tmp/mr-attach-data", &cfg, d, &err);
    unlink(path);
    return cfg;
}

static void config_defaults(void **state)
{
    (void)state;
    struct mr_config_diags d;
    struct mr_config *cfg = load("", &d);
    assert_non_null(cfg);
    assert_int_equal(cfg->attachments.max_attachment_bytes, 25u << 20);
    assert_int_equal(cfg->attachments.max_message_attachment_bytes, 50u << 20);
    assert_int_equal(cfg->attachments.nblocked_extensions, 0);
    mr_config_free(cfg);
    cfg = mr_config_default(NULL);
    assert_int_equal(cfg->attachments.max_attachment_bytes, 25u << 20);
    mr_config_free(cfg);
}

static void config_overrides(void **state)
{
    (void)state;
    struct mr_config_diags d;
    struct mr_config *cfg = load("attachments:\n"
                                 "  max_attachment_bytes: 1MiB\n"
                                 "  max_message_attachment_bytes: 3MB\n"
                                 "  blocked_extensions: [.XLSM, one]\n"
                                 "  blocked_types: [Application/X-Foo]\n"
                                 "  allowed_extensions: [iso]\n"
                                 "  allowed_types: []\n",
                                 &d);
    if (cfg == NULL)
        fail_msg("did not load: %s", d.n ? d.items[0].msg : "?");
    assert_int_equal(cfg->attachments.max_attachment_bytes, 1u << 20);
    assert_int_equal(cfg->attachments.max_message_attachment_bytes, 3000000);
    assert_int_equal(cfg->attachments.nblocked_extensions, 2);
    assert_string_equal(cfg->attachments.blocked_extensions[0], "xlsm");
    assert_string_equal(cfg->attachments.blocked_types[0], "application/x-foo");
    struct mr_attach_policy p;
    mr_attach_policy_from_config(cfg, &p);
    struct mr_attach_verdict v;
    mr_attach_judge(&p, "a.xlsm", "a.xlsm", NULL, NULL, &v);
    assert_true(v.blocked);
    mr_attach_judge(&p, "a.bin", "a.bin", NULL, "application/x-foo", &v);
    assert_true(v.blocked);
    mr_attach_judge(&p, "a.iso", "a.iso", NULL, NULL, &v);
    assert_false(v.blocked);
    mr_config_free(cfg);
}

static void config_errors(void **state)
{
    (void)state;
    struct mr_config_diags d;
    struct mr_config *cfg = load("attachments:\n"
                                 "  blocked_extensions: [\"a b\"]\n"
                                 "  max_attachment_bytes: 3GiB\n",
                                 &d);
    assert_null(cfg);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.items[0].line, 2);
    assert_int_equal(d.items[0].column, 24);
    assert_non_null(strstr(d.items[0].msg, "attachments.blocked_extensions"));
    assert_int_equal(d.items[1].line, 3);
    assert_non_null(strstr(d.items[1].msg, "max_attachment_bytes"));
    mr_config_diags_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(judge_table),
        cmocka_unit_test(lists),
        cmocka_unit_test(policy_additions_and_removals),
        cmocka_unit_test(served_type),
        cmocka_unit_test(content_disposition),
        cmocka_unit_test(config_defaults),
        cmocka_unit_test(config_overrides),
        cmocka_unit_test(config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
