/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the structure pass and the event builder (parser.c,
 * header.c, event.c): each case is a small message and what its event must
 * say, read back with jansson.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mime/mime.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/utf8.h"

static struct mr_charset_ctx *cs;

/* Parses msg and returns its event as a jansson object (NULL and the code
 * in *rc_r when parsing fails). */
static json_t *parse_with(const char *msg, size_t len,
                          const struct mr_mime_limits *lim, int *rc_r)
{
    struct mr_mime_options opt;
    mr_mime_options_default(&opt, cs);
    if (lim)
        opt.limits = *lim;
    struct mr_arena *a = mr_arena_new();
    struct mr_event *ev;
    struct mr_error err = {0};
    int rc = mr_mime_parse(msg, len, &opt, a, &ev, &err);
    if (rc_r)
        *rc_r = rc;
    json_t *root = NULL;
    if (rc == 0) {
        struct mr_buf b;
        mr_buf_init(&b, 0);
        struct mr_json j;
        mr_json_init(&j, &b, false);
        mr_event_write_json(ev, NULL, &j);
        assert_true(mr_utf8_valid(b.p, b.len));
        json_error_t jerr;
        root = json_loadb(b.p, b.len, 0, &jerr);
        if (root == NULL)
            fail_msg("invalid JSON: %s\n%s", jerr.text, b.p);
        mr_buf_release(&b);
    }
    mr_arena_free(&a);
    return root;
}

static json_t *parse(const char *msg)
{
    int rc;
    json_t *ev = parse_with(msg, strlen(msg), NULL, &rc);
    assert_int_equal(rc, 0);
    return ev;
}

static const char *str(json_t *ev, const char *key)
{
    return json_string_value(json_object_get(ev, key));
}

static bool has_warning(json_t *ev, const char *code)
{
    json_t *w = json_object_get(ev, "warnings");
    size_t i;
    json_t *v;
    json_array_foreach(w, i, v)
    {
        if (strncmp(json_string_value(v), code, strlen(code)) == 0)
            return true;
    }
    return false;
}

static json_t *att(json_t *ev, size_t i)
{
    return json_array_get(json_object_get(ev, "attachments"), i);
}

static size_t natt(json_t *ev)
{
    return json_array_size(json_object_get(ev, "attachments"));
}

static void simple_plain(void **state)
{
    (void)state;
    json_t *ev = parse("From: A <a@x.org>\r\nSubject: hi\r\n"
                       "Message-ID: <1@x.org>\r\n\r\nbody\r\nline 2\r\n");
    assert_string_equal(str(ev, "subject"), "hi");
    assert_string_equal(str(ev, "message_id"), "1@x.org");
    assert_string_equal(str(ev, "text"), "body\nline 2\n");
    assert_null(str(ev, "html"));
    assert_false(json_is_true(json_object_get(ev, "message_id_derived")));
    json_decref(ev);
}

static void alternative_picks_both(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\nSubject: s\nContent-Type: multipart/"
                       "alternative; boundary=b\n\npreamble\n--b\nContent-Type:"
                       " text/plain\n\nplain\n--b\nContent-Type: text/html\n\n"
                       "<p>html</p>\n--b--\nepilogue\n");
    assert_string_equal(str(ev, "text"), "plain");
    assert_string_equal(str(ev, "html"), "<p>html</p>");
    assert_int_equal(natt(ev), 0);
    json_decref(ev);
}

static void html_only_derives_text(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\nContent-Type: text/html\n\n<html><head>"
                       "<style>p{}</style></head><body><p>Hi &amp; bye</p>"
                       "<ul><li>one</li><li>two</li></ul></body></html>\n");
    assert_string_equal(str(ev, "text"), "Hi & bye\n\n- one\n- two");
    json_decref(ev);
}

static void unclosed_boundary_keeps_parts(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\nContent-Type: multipart/mixed; "
                       "boundary=b\n\n--b\n\nfirst\n--b\nContent-Type: "
                       "application/pdf\nContent-Disposition: attachment; "
                       "filename=a.pdf\n\n%PDF-1.4 data");
    assert_string_equal(str(ev, "text"), "first");
    assert_int_equal(natt(ev), 1);
    assert_int_equal(json_integer_value(json_object_get(att(ev, 0), "size")), 13);
    assert_true(has_warning(ev, "boundary_unclosed"));
    json_decref(ev);
}

/* RFC 2046 5.1.1: a delimiter is the whole line, trailing whitespace
 * allowed; "--b-not" is content. */
static void delimiter_is_whole_line(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\nContent-Type: multipart/mixed; "
                       "boundary=frontier\n\n--frontier \t\n\ntext\n"
                       "--frontier-not-really\nmore\n--frontier\n"
                       "Content-Type: image/png\n\nPNG\n--frontier--\n");
    assert_string_equal(str(ev, "text"), "text\n--frontier-not-really\nmore");
    assert_int_equal(natt(ev), 1);
    assert_string_equal(str(att(ev, 0), "content_type"), "image/png");
    assert_string_equal(str(att(ev, 0), "part"), "2");
    json_decref(ev);
}

/* An inner multipart that never closes is closed by the outer boundary. */
static void outer_boundary_closes_inner(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\nContent-Type: multipart/mixed; "
                       "boundary=o\n\n--o\nContent-Type: multipart/alternative;"
                       " boundary=i\n\n--i\n\ninner text\n--o\nContent-Type: "
                       "application/zip\n\nZIP\n--o--\n");
    assert_string_equal(str(ev, "text"), "inner text");
    assert_int_equal(natt(ev), 1);
    assert_string_equal(str(att(ev, 0), "part"), "2");
    assert_true(has_warning(ev, "boundary_unclosed"));
    json_decref(ev);
}

static void depth_limit_is_bounded(void **state)
{
    (void)state;
    struct mr_buf m;
    mr_buf_init(&m, 0);
    mr_buf_puts(&m, "From: a@x.org\nSubject: deep\n");
    for (int i = 0; i < 500; i++)
        mr_buf_printf(&m, "Content-Type: multipart/mixed; boundary=b%d\n\n"
                          "--b%d\n", i, i);
    mr_buf_puts(&m, "Content-Type: text/plain\n\nbottom\n");
    for (int i = 499; i >= 0; i--)
        mr_buf_printf(&m, "--b%d--\n", i);
    struct mr_mime_limits lim;
    mr_mime_limits_default(&lim);
    lim.max_depth = 8;
    int rc;
    json_t *ev = parse_with(m.p, m.len, &lim, &rc);
    assert_int_equal(rc, 0);
    assert_true(has_warning(ev, "depth_limit"));
    assert_string_equal(str(ev, "subject"), "deep");
    json_decref(ev);
    mr_buf_release(&m);
}

static void forwarded_message_is_eml(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\nContent-Type: multipart/mixed; "
                       "boundary=b\n\n--b\n\nsee below\n--b\nContent-Type: "
                       "message/rfc822\n\nFrom: Bob <bob@y.org>\nSubject: "
                       "original\nMessage-ID: <orig@y.org>\nDate: Mon, 6 Jan "
                       "2025 10:00:00 +0000\n\nforwarded body\n--b--\n");
    assert_string_equal(str(ev, "text"), "see below");
    assert_int_equal(natt(ev), 1);
    json_t *a = att(ev, 0);
    assert_string_equal(str(a, "content_type"), "message/rfc822");
    json_t *m = json_object_get(a, "message");
    assert_string_equal(str(m, "subject"), "original");
    assert_string_equal(str(m, "message_id"), "orig@y.org");
    assert_string_equal(str(m, "date"), "2025-01-06T10:00:00Z");
    assert_string_equal(str(json_object_get(m, "from"), "email"), "bob@y.org");
    json_decref(ev);
}

static void bounce_report(void **state)
{
    (void)state;
    json_t *ev = parse(
        "From: MAILER-DAEMON@x.org\nSubject: Undelivered\nContent-Type: "
        "multipart/report; report-type=delivery-status; boundary=r\n\n--r\n\n"
        "Delivery failed.\n--r\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.x.org\n\nFinal-Recipient: rfc822; "
        "gone@y.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; "
        "550 no such user\n\n--r\nContent-Type: text/rfc822-headers\n\n"
        "Message-ID: <sent-1@x.org>\nSubject: hello\n\n--r--\n");
    json_t *r = json_object_get(ev, "report");
    assert_non_null(r);
    assert_string_equal(str(r, "original_message_id"), "sent-1@x.org");
    json_t *rc = json_array_get(json_object_get(r, "recipients"), 0);
    assert_string_equal(str(rc, "recipient"), "gone@y.org");
    assert_string_equal(str(rc, "status"), "5.1.1");
    assert_string_equal(str(rc, "action"), "failed");
    assert_string_equal(str(rc, "diagnostic"), "550 no such user");
    json_decref(ev);
}

/* A bare CR is never a line end: no Bcc field can be smuggled in. */
static void bare_cr_is_not_a_separator(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\r\nSubject: hello\rBcc: victim@x.org\r\n"
                       "\r\nbody\r\n");
    assert_null(json_object_get(json_object_get(ev, "headers"), "bcc"));
    assert_int_equal(json_array_size(json_object_get(ev, "bcc")), 0);
    assert_non_null(strstr(str(ev, "subject"), "hello"));
    assert_null(strchr(str(ev, "subject"), '\r'));
    json_decref(ev);
}

static void lf_and_crlf_agree(void **state)
{
    (void)state;
    const char *lf = "From: a@x.org\nContent-Type: multipart/mixed; "
                     "boundary=b\n\n--b\n\nline1\nline2\n--b\nContent-Type: "
                     "application/octet-stream\nContent-Transfer-Encoding: "
                     "base64\n\nAAECAw==\n--b--\n";
    struct mr_buf crlf;
    mr_buf_init(&crlf, 0);
    for (const char *p = lf; *p; p++) {
        if (*p == '\n')
            mr_buf_putc(&crlf, '\r');
        mr_buf_putc(&crlf, *p);
    }
    json_t *a = parse(lf);
    json_t *b = parse(crlf.p);
    assert_string_equal(str(a, "text"), str(b, "text"));
    assert_string_equal(str(att(a, 0), "sha256"), str(att(b, 0), "sha256"));
    assert_int_equal(json_integer_value(json_object_get(att(a, 0), "size")), 4);
    json_decref(a);
    json_decref(b);
    mr_buf_release(&crlf);
}

static void not_a_message(void **state)
{
    (void)state;
    int rc;
    assert_null(parse_with("", 0, NULL, &rc));
    assert_int_equal(rc, MR_EINVAL);
    assert_null(parse_with("\n\njust text\n", 12, NULL, &rc));
    assert_int_equal(rc, MR_EINVAL);
    struct mr_mime_limits lim;
    mr_mime_limits_default(&lim);
    lim.max_message_bytes = 10;
    assert_null(parse_with("From: a@x.org\n\nbody", 19, &lim, &rc));
    assert_int_equal(rc, MR_ELIMIT);
}

static void missing_blank_line(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\nSubject: s\nthis is the body\nand more\n");
    assert_string_equal(str(ev, "text"), "this is the body\nand more\n");
    assert_true(has_warning(ev, "header_no_blank_line"));
    json_decref(ev);
}

static void garbage_header_line_skipped(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\nthis line is garbage\nSubject: kept\n"
                       "\nbody\n");
    assert_string_equal(str(ev, "subject"), "kept");
    assert_true(has_warning(ev, "header_garbage"));
    json_decref(ev);
}

static void headers_only(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\nSubject: nothing else");
    assert_string_equal(str(ev, "subject"), "nothing else");
    json_decref(ev);
}

static void uuencode_in_text(void **state)
{
    (void)state;
    json_t *ev = parse("From: a@x.org\n\nsee file\nbegin 644 hi.txt\n"
                       "#:&D*\n`\nend\nbye\n");
    assert_int_equal(natt(ev), 1);
    assert_string_equal(str(att(ev, 0), "filename"), "hi.txt");
    assert_int_equal(json_integer_value(json_object_get(att(ev, 0), "size")), 3);
    assert_null(strstr(str(ev, "text"), "begin 644"));
    assert_non_null(strstr(str(ev, "text"), "bye"));
    json_decref(ev);
}

static void part_limit(void **state)
{
    (void)state;
    struct mr_buf m;
    mr_buf_init(&m, 0);
    mr_buf_puts(&m, "From: a@x.org\nContent-Type: multipart/mixed; boundary=b\n\n");
    for (int i = 0; i < 50; i++)
        mr_buf_puts(&m, "--b\nContent-Type: application/octet-stream\n\nx\n");
    mr_buf_puts(&m, "--b--\n");
    struct mr_mime_limits lim;
    mr_mime_limits_default(&lim);
    lim.max_parts = 10;
    int rc;
    json_t *ev = parse_with(m.p, m.len, &lim, &rc);
    assert_int_equal(natt(ev), 9);
    assert_true(has_warning(ev, "part_limit"));
    json_decref(ev);
    mr_buf_release(&m);
}

static void missing_message_id_is_derived_and_stable(void **state)
{
    (void)state;
    json_t *a = parse("From: a@x.org\r\nSubject: s\r\n\r\nbody\r\n");
    json_t *b = parse("From: a@x.org\nSubject: s\n\nbody\n");
    assert_true(json_is_true(json_object_get(a, "message_id_derived")));
    assert_string_equal(str(a, "message_id"), str(b, "message_id"));
    assert_true(has_warning(a, "message_id_missing"));
    json_decref(a);
    json_decref(b);
}

/* The event JSON of msg, parsed with options.pages set to hint (or not);
 * the caller frees it. */
static char *event_json(const char *msg, size_t len,
                        const struct mr_input_hint *hint)
{
    struct mr_mime_options opt;
    mr_mime_options_default(&opt, cs);
    opt.pages = hint;
    struct mr_arena *a = mr_arena_new();
    struct mr_event *ev;
    struct mr_error err = {0};
    assert_int_equal(mr_mime_parse(msg, len, &opt, a, &ev, &err), 0);
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_event_write_json(ev, NULL, &j);
    mr_arena_free(&a);
    return mr_buf_detach(&b, NULL);
}

struct dropper {
    const char *base;
    size_t len, calls;
};

/* As `mailroom parse` does with a mapped file: the pages are let go. */
static void drop(void *ctx, const char *p, size_t n)
{
    struct dropper *d = ctx;
    assert_true(p >= d->base && p + n <= d->base + d->len);
    d->calls++;
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + (uintptr_t)ps - 1) & ~(uintptr_t)(ps - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(ps - 1);
    if (e > a)
        assert_int_equal(madvise((void *)a, e - a, MADV_DONTNEED), 0);
}

/* A large message mapped from a file and let go of behind the parser, a
 * window at a time, parses to the same event as from memory: the parser
 * reads some stretches again after reporting them, and the file gives
 * them back. */
static void pages_let_go_same_event(void **state)
{
    (void)state;
    struct mr_buf m;
    mr_buf_init(&m, 0);
    mr_buf_puts(&m, "From: a@x.org\r\nSubject: big\r\nMessage-ID: <b@x>\r\n"
                    "Content-Type: multipart/mixed; boundary=\"bb\"\r\n\r\n"
                    "--bb\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    for (int i = 0; i < 20000; i++) /* dashes, but no delimiter */
        mr_buf_puts(&m, "-- caf=C3=A9 --bb-not-this-one\r\n");
    mr_buf_puts(&m, "--bb\r\nContent-Type: application/octet-stream\r\n"
                    "Content-Transfer-Encoding: base64\r\n\r\n");
    for (int i = 0; i < 30000; i++)
        mr_buf_puts(&m,
                    "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9w"
                    "cXJzdHV2d3h5ejAxMjM0\r\n");
    mr_buf_puts(&m, "--bb--\r\n");
    char path[] = "/tmp/mr-test-pages-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, m.p, m.len), (ssize_t)m.len);
    char *map = mmap(NULL, m.len, PROT_READ, MAP_PRIVATE, fd, 0);
    assert_true(map != MAP_FAILED);
    close(fd);
    unlink(path);

    struct dropper d = {map, m.len, 0};
    struct mr_input_hint hint = {&d, drop};
    char *want = event_json(m.p, m.len, NULL);
    char *got = event_json(map, m.len, &hint);
    assert_string_equal(got, want);
    assert_true(d.calls > 10); /* scanned and decoded a window at a time */
    free(want);
    free(got);
    munmap(map, m.len);
    mr_buf_release(&m);
}

/* Line breaks in text become LF wherever they fall (CR LF, bare CR, at
 * the end), also across the blocks the conversion copies. */
static void text_line_breaks_normalized(void **state)
{
    (void)state;
    for (size_t pad = 0; pad < 40; pad++) {
        struct mr_buf m, want;
        mr_buf_init(&m, 0);
        mr_buf_init(&want, 0);
        mr_buf_puts(&m, "From: a@x.org\r\nContent-Type: text/plain; "
                        "charset=utf-8\r\n\r\n");
        for (size_t i = 0; i < pad; i++) {
            mr_buf_putc(&m, (char)('a' + i % 26));
            mr_buf_putc(&want, (char)('a' + i % 26));
        }
        mr_buf_puts(&m, "\r\nx\ry\r\r\n\xc3\xa9\r\n\r");
        mr_buf_puts(&want, "\nx\ny\n\n\xc3\xa9\n\n");
        json_t *ev = parse(m.p);
        assert_string_equal(str(ev, "text"), want.p);
        json_decref(ev);
        mr_buf_release(&m);
        mr_buf_release(&want);
    }
}

/* Header values in the JSON: unfolded, controls as spaces, tabs kept,
 * NUL dropped (without joining its neighbours), invalid UTF-8 repaired;
 * the same for one-line values. */
static void header_values_unfolded(void **state)
{
    (void)state;
    static const char msg[] = "From: a@x.org\r\n"
                              "X-Fold: one\r\n two\r\n\tthree \"q\" \\ end\r\n"
                              "X-Ctl: a\x01"
                              "b\x7f\x1f c\r\n"
                              "X-Nul: caf\xc3\x00\xa9 ok\r\n"
                              "X-Bad: \xe2\x82\r\n \xac and \xff\r\n"
                              "X-Plain: just text\r\n"
                              "X-Empty:\r\n"
                              "\r\nbody\r\n";
    json_t *ev = parse_with(msg, sizeof(msg) - 1, NULL, NULL);
    assert_non_null(ev);
    json_t *h = json_object_get(ev, "headers");
    assert_string_equal(json_string_value(json_object_get(h, "x-fold")),
                        "one two\tthree \"q\" \\ end");
    assert_string_equal(json_string_value(json_object_get(h, "x-ctl")),
                        "a b   c");
    /* The NUL is dropped, and does not join the bytes around it: each
     * half of the broken character is replaced on its own. */
    assert_string_equal(json_string_value(json_object_get(h, "x-nul")),
                        "caf\xef\xbf\xbd\xef\xbf\xbd ok");
    assert_string_equal(json_string_value(json_object_get(h, "x-bad")),
                        "\xef\xbf\xbd \xef\xbf\xbd and \xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(h, "x-plain")),
                        "just text");
    assert_string_equal(json_string_value(json_object_get(h, "x-empty")), "");
    json_decref(ev);
}

static void repeated_headers_become_arrays(void **state)
{
    (void)state;
    json_t *ev = parse("Received: one\nFrom: a@x.org\nReceived: two\n"
                       "RECEIVED: three\nX-A: 1\nx-a: 2\nX-B: 3\n\nx\n");
    json_t *h = json_object_get(ev, "headers");
    json_t *r = json_object_get(h, "received");
    assert_int_equal(json_array_size(r), 3);
    assert_string_equal(json_string_value(json_array_get(r, 1)), "two");
    assert_string_equal(json_string_value(json_array_get(r, 2)), "three");
    assert_int_equal(json_array_size(json_object_get(h, "x-a")), 2);
    assert_string_equal(json_string_value(json_object_get(h, "x-b")), "3");
    /* names in the order they first appear */
    const char *key;
    json_t *v;
    const char *order[] = {"received", "from", "x-a", "x-b"};
    size_t k = 0;
    json_object_foreach(h, key, v)
    {
        (void)v;
        assert_true(k < 4);
        assert_string_equal(key, order[k++]);
    }
    json_decref(ev);
}

static int setup(void **state)
{
    (void)state;
    cs = mr_charset_ctx_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mr_charset_ctx_free(&cs);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_plain),
        cmocka_unit_test(alternative_picks_both),
        cmocka_unit_test(html_only_derives_text),
        cmocka_unit_test(unclosed_boundary_keeps_parts),
        cmocka_unit_test(delimiter_is_whole_line),
        cmocka_unit_test(outer_boundary_closes_inner),
        cmocka_unit_test(depth_limit_is_bounded),
        cmocka_unit_test(forwarded_message_is_eml),
        cmocka_unit_test(bounce_report),
        cmocka_unit_test(bare_cr_is_not_a_separator),
        cmocka_unit_test(lf_and_crlf_agree),
        cmocka_unit_test(not_a_message),
        cmocka_unit_test(missing_blank_line),
        cmocka_unit_test(garbage_header_line_skipped),
        cmocka_unit_test(headers_only),
        cmocka_unit_test(uuencode_in_text),
        cmocka_unit_test(part_limit),
        cmocka_unit_test(missing_message_id_is_derived_and_stable),
        cmocka_unit_test(repeated_headers_become_arrays),
        cmocka_unit_test(header_values_unfolded),
        cmocka_unit_test(text_line_breaks_normalized),
        cmocka_unit_test(pages_let_go_same_event),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
