/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ack_mail.c - the acknowledgement as a message: RFC 3834 headers,
 * threading headers, RFC 2047 words for text that is not ASCII (never a
 * split UTF-8 sequence, lines under 78), quoted-printable bodies, no
 * header injection through the sender's subject or name, placeholders.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/ack_mail.h"

static const struct mr_ack_mail mail = {
    .from_name = "Acme Support",
    .from_email = "support@acme.test",
    .subject_tpl = NULL,
    .text_tpl = "Hello {{from.name}}, ticket #{{ticket.number}} "
                "({{ticket.id}}) for {{tenant}}: {{ subject }}\n.\nend ",
    .in_reply_to = "orig@customer.test",
    .hostname = "mr.test",
    .date = 1795773600, /* 2026-11-27 10:00:00 UTC */
};

static void renders_headers_and_body(void **state)
{
    (void)state;
    struct mr_ack_vars v = {.tenant = "acme",
                            .subject = "Printer\r\nBcc: evil@x.test",
                            .from_email = "alice@customer.test",
                            .from_name = "Alice \"A\" Smith",
                            .ticket_id = 7,
                            .ticket_number = 42};
    struct mr_buf out;
    mr_buf_init(&out, 0);
    char id[128];
    assert_int_equal(mr_ack_render(&mail, &v, &out, id, sizeof id, NULL), 0);
    mr_buf_putc(&out, '\0');
    const char *m = out.p;
    assert_non_null(strstr(m, "From: \"Acme Support\" <support@acme.test>\r\n"));
    assert_non_null(strstr(m, "To: <alice@customer.test>\r\n"));
    assert_non_null(strstr(m, "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"));
    assert_non_null(strstr(m, "In-Reply-To: <orig@customer.test>\r\n"));
    assert_non_null(strstr(m, "References: <orig@customer.test>\r\n"));
    assert_non_null(strstr(m, "Auto-Submitted: auto-replied\r\n"));
    assert_non_null(strstr(m, "X-Auto-Response-Suppress: All\r\n"));
    assert_non_null(strstr(m, "Content-Transfer-Encoding: quoted-printable"));
    char want[160];
    snprintf(want, sizeof want, "Message-ID: <%s>\r\n", id);
    assert_non_null(strstr(m, want));
    assert_true(strncmp(id, "ack.7.", 6) == 0);
    assert_non_null(strstr(id, "@acme.test"));
    /* The CR LF in the subject never starts a header of its own (in the
     * body it is only text). */
    const char *hend = strstr(m, "\r\n\r\n");
    const char *bcc = strstr(m, "\r\nBcc:");
    assert_true(bcc == NULL || bcc > hend);
    assert_non_null(strstr(m, "Subject: =?utf-8?B?"));
    /* Body: QP; the lone dot is encoded, the trailing space too. */
    assert_non_null(strstr(m, "\r\n\r\nHello Alice \"A\" Smith, ticket #42 (7)"
                              " for acme: Printer"));
    assert_non_null(strstr(m, "\r\n=2E\r\nend=20\r\n"));
    for (const char *l = m; *l;) {
        const char *e = strstr(l, "\r\n");
        assert_non_null(e);
        assert_true(e - l <= 78);
        l = e + 2;
    }
    mr_buf_release(&out);
}

static void encodes_utf8_in_words(void **state)
{
    (void)state;
    struct mr_ack_mail m2 = mail;
    m2.from_name = "Jörg's Hélpdesk";
    m2.subject_tpl = "[#{{ticket.number}}] {{subject}}";
    m2.in_reply_to = NULL;
    /* 40 three-byte characters: several words, none splitting one. */
    char subj[200];
    for (int i = 0; i < 40; i++)
        memcpy(subj + 3 * i, "\xe2\x82\xac", 3); /* € */
    subj[120] = '\0';
    struct mr_ack_vars v = {.subject = subj,
                            .from_email = "joerg@customer.test",
                            .ticket_number = 3};
    struct mr_buf out;
    mr_buf_init(&out, 0);
    char id[128];
    assert_int_equal(mr_ack_render(&m2, &v, &out, id, sizeof id, NULL), 0);
    mr_buf_putc(&out, '\0');
    assert_null(strstr(out.p, "In-Reply-To"));
    assert_non_null(strstr(out.p, "From: =?utf-8?B?"));
    const char *s = strstr(out.p, "Subject: ");
    assert_non_null(s);
    /* Folded: continuation lines start with a space and a word. */
    assert_non_null(strstr(s, "?=\r\n =?utf-8?B?"));
    /* Each word holds whole characters: 45 bytes = 15 euros = 60 chars. */
    assert_non_null(strstr(s, "=?utf-8?B?4oKs4oKs4oKs"));
    mr_buf_release(&out);
}

static void refuses_bad_addresses_and_placeholders(void **state)
{
    (void)state;
    struct mr_ack_vars v = {.from_email = "a@b.test\r\nBcc: x@y"};
    struct mr_buf out;
    mr_buf_init(&out, 0);
    char id[64];
    assert_int_equal(mr_ack_render(&mail, &v, &out, id, sizeof id, NULL),
                     MR_EINVAL);
    assert_false(mr_ack_address_ok("no-at-sign"));
    assert_false(mr_ack_address_ok("a b@c.d"));
    assert_false(mr_ack_address_ok("<a@b.c>"));
    assert_true(mr_ack_address_ok("a+tag@b.c"));
    char bad[200];
    assert_true(mr_ack_template_check("#{{ticket.number}} {{ subject }}", bad,
                                      sizeof bad));
    assert_false(mr_ack_template_check("{{ticket}}", bad, sizeof bad));
    assert_non_null(strstr(bad, "{{ticket}}"));
    assert_false(mr_ack_template_check("{{subject", bad, sizeof bad));
    char *name = NULL, *addr = NULL;
    assert_int_equal(mr_ack_parse_from("\"Support\" <s@acme.test>", &name,
                                       &addr, NULL),
                     0);
    assert_string_equal(name, "Support");
    assert_string_equal(addr, "s@acme.test");
    free(name);
    free(addr);
    assert_int_equal(mr_ack_parse_from("s@acme.test", &name, &addr, NULL), 0);
    assert_null(name);
    free(addr);
    assert_int_equal(mr_ack_parse_from("Support <nope>", &name, &addr, NULL),
                     MR_EINVAL);
    mr_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renders_headers_and_body),
        cmocka_unit_test(encodes_utf8_in_words),
        cmocka_unit_test(refuses_bad_addresses_and_placeholders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
