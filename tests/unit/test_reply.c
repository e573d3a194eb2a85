/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_reply.c - the visible reply rule by rule (docs/reply.md), on small
 * messages written here; the corpus proof is test_reply_corpus.c.
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

#include "content/reply.h"
#include "util/buf.h"
#include "util/utf8.h"

static char *run(const char *in, unsigned what, bool html)
{
    struct mr_buf b;
    mr_buf_init(&b, 0);
    if (html)
        mr_reply_strip_html(in, strlen(in), what, &b);
    else
        mr_reply_strip_text(in, strlen(in), what, &b);
    assert_true(mr_utf8_valid(b.p ? b.p : "", b.len));
    /* Never longer than the input plus a line break. */
    if (!html)
        assert_true(b.len <= strlen(in) + 1);
    return mr_buf_detach(&b, NULL);
}

#define BOTH (MR_REPLY_QUOTES | MR_REPLY_SIGNATURE)
#define CHECK_W(in, what, want)                                                \
    do {                                                                       \
        char *got_ = run(in, what, false);                                     \
        assert_string_equal(got_, want);                                       \
        free(got_);                                                            \
    } while (0)
#define CHECK(in, want) CHECK_W(in, BOTH, want)
#define CHECK_HTML(in, want)                                                   \
    do {                                                                       \
        char *got_ = run(in, BOTH, true);                                      \
        assert_string_equal(got_, want);                                       \
        free(got_);                                                            \
    } while (0)

static void quoted_lines(void **state)
{
    (void)state;
    CHECK("Yes.\n\n> Can you?\n> Please.\n", "Yes.");
    CHECK("Yes.\r\n\r\n> Can you?\r\n", "Yes.");
    CHECK("  > indented quote\nanswer", "answer");
}

static void attributions(void **state)
{
    (void)state;
    const char *cases[] = {
        "On Tue, Mar 1, 2011 at 6:02 PM, Ann <a@x.org> wrote:",
        "On Tue, Mar 1, 2011 at 6:02 PM, Ann\n<a@x.org> wrote:",
        "On Dec 16, 2011, at 12:47 PM, Corey Donohoe\n<reply@x.com>\nwrote:",
        "Am 01.02.2020 um 10:00 schrieb Max Mustermann <max@x.de>:",
        "Le 1 févr. 2020 à 10:00, Jean <j@x.fr> a écrit :",
        "El 1 feb 2020, a las 10:00, Juan <j@x.es> escribió:",
        "Op 1 feb. 2020 om 10:00 heeft Jan <j@x.nl> het volgende geschreven:",
        "Op 1 feb. 2020 schreef Jan <j@x.nl>:",
        "Il giorno 1 feb 2020, alle ore 10:00, Gio <g@x.it> ha scritto:",
        "Em 1 de fev de 2020, às 10:00, João <j@x.br> escreveu:",
        "Den 1 feb. 2020 kl. 10:00 skrev Sven <s@x.se>:",
        "W dniu 1.02.2020 o 10:00, Jan <j@x.pl> pisze:",
        "01.02.2020 10:00, Иван <i@x.ru> написал:",
        "2020年2月1日 10:00 Taro <t@x.jp> のメッセージ:",
        "在 2020年2月1日 10:00，张三 <z@x.cn> 写道：",
        "--- On Wed, 4/4/12, x@example.com <x@example.com> wrote:",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char in[512];
        /* Marked quote after it. */
        snprintf(in, sizeof in, "Fine.\n\n%s\n\n> old\n", cases[i]);
        CHECK(in, "Fine.");
        /* Unmarked quote: everything from the attribution goes. */
        snprintf(in, sizeof in, "Fine.\n\n%s\n\nold text\n", cases[i]);
        CHECK(in, "Fine.");
    }
    /* Gmail's Japanese attribution has no verb: a dated line ending in a
     * colon counts only right above a marked quote. */
    CHECK("Fine.\n\n2020年2月1日(土) 10:00 Taro <t@x.jp>:\n\n> old", "Fine.");
    CHECK("Fine.\n\nMeeting 2020-02-01 10:00 at:\n\nroom 4",
          "Fine.\n\nMeeting 2020-02-01 10:00 at:\n\nroom 4");
}

static void not_attributions(void **state)
{
    (void)state;
    /* Prose ending in a colon is not a quote header. */
    CHECK("On your remote host you can run:\n\n  telnet 127.0.0.1 52698\n",
          "On your remote host you can run:\n\n  telnet 127.0.0.1 52698");
    CHECK("I wrote 2 tests:\n\nfoo\nbar", "I wrote 2 tests:\n\nfoo\nbar");
    CHECK("Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Ann wrote:\n> q\nanswer",
          "Hi,\nanswer");
}

static void interleaved(void **state)
{
    (void)state;
    CHECK("On Tue, Apr 29, 2014 at 4:22 PM, Dev <d@x.com> wrote:\n\n"
          "> first question?\n\nfirst answer\n\n> second question?\n\n"
          "second answer\n\n> bye\n\n--\nsig\n",
          "first answer\n\nsecond answer");
}

static void outlook_blocks(void **state)
{
    (void)state;
    CHECK("Reply\n\n________________________________\nFrom: A\nSent: Friday\n"
          "To: B\nSubject: S\n\nold",
          "Reply");
    CHECK("Reply\n\nFrom: A [mailto:a@x.org]\nSent: Friday\nTo: B\n"
          "Subject: S\n\nold",
          "Reply");
    CHECK("Reply\n\n -----------\n\n*From:* A\n*Sent:* Friday\n\nold", "Reply");
    CHECK("Antwort\n\nVon: A\nGesendet: Freitag\nAn: B\nBetreff: S\n\nalt",
          "Antwort");
    CHECK("Réponse\n\nDe : A\nEnvoyé : vendredi\nÀ : B\nObjet : S\n\nvieux",
          "Réponse");
    CHECK("Hello\n\n-----Original Message-----\nFrom: a\n\nold", "Hello");
    CHECK("Hallo\n\n----- Ursprüngliche Nachricht -----\nalt", "Hallo");
    CHECK("Hello\n\n______________\nlist footer", "Hello");
    /* Two fields alone, without a rule above, are not a header. */
    CHECK("From: the team\nTo: everyone\nWelcome!",
          "From: the team\nTo: everyone\nWelcome!");
}

static void forwards(void **state)
{
    (void)state;
    CHECK("FYI\n\n---------- Forwarded message ---------\nFrom: A <a@x.org>\n"
          "Date: Mon\nSubject: S\nTo: B\n\n> body\n",
          "FYI\n\n---------- Forwarded message ---------\nFrom: A <a@x.org>\n"
          "Date: Mon\nSubject: S\nTo: B\n\n> body");
    CHECK("See below\n-- \nBob\n\nBegin forwarded message:\n\nFrom: A\nold",
          "See below\nBegin forwarded message:\n\nFrom: A\nold");
    CHECK("-------- Weitergeleitete Nachricht --------\nBetreff: x\n",
          "-------- Weitergeleitete Nachricht --------\nBetreff: x");
}

static void signatures(void **state)
{
    (void)state;
    CHECK("Body\n\n-- \nrick", "Body");
    CHECK("Body\n--\nrick\nphone", "Body");
    CHECK("Fix -- not a signature.\nok", "Fix -- not a signature.\nok");
    CHECK("Here\n\nSent from my iPhone", "Here");
    CHECK("Here\n\nSent from my Verizon Wireless BlackBerry", "Here");
    CHECK("Here\n\nGet Outlook for iOS", "Here");
    CHECK("Hier\n\nVon meinem iPhone gesendet", "Hier");
    CHECK("Ici\n\nEnvoyé de mon iPhone", "Ici");
    CHECK("Here\n\nSent from my desk, is much easier then my mobile phone.",
          "Here\n\nSent from my desk, is much easier then my mobile phone.");
    CHECK("Here\n\nThanks,\nAlex", "Here");
    CHECK("Here\n\nBest regards,\n\nAlex Smith\nACME Corp", "Here");
    CHECK("Here\n\nCheers, Alex", "Here");
    CHECK("Hier\n\nMit freundlichen Grüßen\nMax Mustermann", "Hier");
    CHECK("Voilà\n\nCordialement,\nJean", "Voilà");
    CHECK("Вот\n\nС уважением,\nИван", "Вот");
    /* A sign-off word in a sentence, or with a long text after it, stays. */
    CHECK("Here\n\nThanks, that fixed it", "Here\n\nThanks, that fixed it");
    CHECK("Thanks,\nthis is a much longer line that explains the whole problem "
          "in detail\nend",
          "Thanks,\nthis is a much longer line that explains the whole problem "
          "in detail\nend");
    CHECK("Text\n\n-Abhishek Kona", "Text");
    CHECK("Items:\n- one\n- two", "Items:\n- one\n- two");
    CHECK("Long enough paragraph of text to count as prose and not a name.\n\n"
          "Gina X\ngina@example.com\n(555) 346-9947\nwww.example.com",
          "Long enough paragraph of text to count as prose and not a name.");
    CHECK("Thanks Sasha, I can't go any higher and is why I limited it to the\n"
          "homepage.\n\nStavros X\nvia mobile",
          "Thanks Sasha, I can't go any higher and is why I limited it to the\n"
          "homepage.");
}

static void stages_apart(void **state)
{
    (void)state;
    const char *in = "Hello\n\nSent from my iPhone\n\nOn Apr 3, 2012, at 4:19 PM, "
                     "bob <bob@example.com> wrote:\n\n> Hi";
    CHECK_W(in, MR_REPLY_QUOTES, "Hello\n\nSent from my iPhone");
    CHECK_W("Hello\n> q\n\n-- \nsig", MR_REPLY_SIGNATURE, "Hello\n> q");
    CHECK_W("Hello\n> q", 0, "Hello\n> q");
}

static void never_empty(void **state)
{
    (void)state;
    CHECK("> all quote\n> here", "> all quote\n> here");
    CHECK("Thanks,\nBob", "Thanks,\nBob");
    CHECK("-- \nonly a signature", "--\nonly a signature");
    CHECK("", "");
    CHECK("\n\n  \n", "");
}

static void html_containers(void **state)
{
    (void)state;
    CHECK_HTML("<div>New</div><div class=\"gmail_quote\"><div class=\"gmail_attr\">"
               "On Mon, Ann wrote:</div><blockquote class=\"gmail_quote\">old"
               "</blockquote></div>",
               "New");
    CHECK_HTML("New<br><div>On Mon, Ann wrote:</div><blockquote type=\"cite\">"
               "old</blockquote>",
               "New");
    CHECK_HTML("New<div class=\"moz-cite-prefix\">On 1.1.2020 Ann wrote:</div>"
               "<blockquote type=\"cite\">old</blockquote>",
               "New");
    CHECK_HTML("<p>New</p><hr><div id=\"divRplyFwdMsg\"><b>From:</b> A</div>"
               "<div>old</div>",
               "New");
    CHECK_HTML("<p>New</p><div style=\"border:none;border-top:solid #E1E1E1 1.0pt\">"
               "<p><b>From:</b> A<br><b>Sent:</b> x</p></div><p>old</p>",
               "New");
    CHECK_HTML("New<div class=\"gmail_signature\">Ann<br>CEO</div>", "New");
    /* Interleaved blockquotes: the answers between them stay. */
    CHECK_HTML("<blockquote>q1</blockquote>a1<blockquote>q2</blockquote>a2",
               "a1\na2");
    /* Forwards are kept. */
    CHECK_HTML("FYI<div class=\"gmail_quote\">---------- Forwarded message "
               "---------<br>From: A</div>",
               "FYI\n---------- Forwarded message ---------\nFrom: A");
    CHECK_HTML("FYI<div>Begin forwarded message:</div><blockquote type=\"cite\">"
               "fwd body</blockquote>",
               "FYI\nBegin forwarded message:\nfwd body");
    /* All quote: the quote is shown rather than nothing. */
    CHECK_HTML("<blockquote type=\"cite\">only old</blockquote>", "> only old");
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Long lines, many lines, lines of colons and '>'s: linear time. */
static void hostile_is_linear(void **state)
{
    (void)state;
    size_t n = 4u << 20;
    char *in = malloc(n + 1);
    const char *pats[] = {"On x wrote:\n", ">>>>>>>>>>", "From: a\n", ":::::::\n",
                          "a", "-- \n", "Thanks,\n"};
    for (size_t k = 0; k < sizeof pats / sizeof *pats; k++) {
        size_t pl = strlen(pats[k]);
        for (size_t i = 0; i < n; i++)
            in[i] = pats[k][i % pl];
        in[n] = '\0';
        struct mr_buf b;
        mr_buf_init(&b, 0);
        double t0 = now();
        mr_reply_visible_text(in, n, &b);
        assert_true(now() - t0 < 5.0);
        assert_true(b.len > 0);
        mr_buf_release(&b);
    }
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quoted_lines),
        cmocka_unit_test(attributions),
        cmocka_unit_test(not_attributions),
        cmocka_unit_test(interleaved),
        cmocka_unit_test(outlook_blocks),
        cmocka_unit_test(forwards),
        cmocka_unit_test(signatures),
        cmocka_unit_test(stages_apart),
        cmocka_unit_test(never_empty),
        cmocka_unit_test(html_containers),
        cmocka_unit_test(hostile_is_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
