/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_reply_corpus.c - the visible reply against the reply fixtures of
 * github/email_reply_parser and mailgun/talon in $MR_SHARED/corpus (issue
 * 5, Proof: "at least 95% exact match of the visible text after
 * whitespace normalization; print the score and list the misses").
 *
 * Each source's EXPECTED.derived.json transcribes what that project's own
 * tests assert, and the assertions are of different kinds; each is mapped
 * to what mailroom promises (docs/reply.md says the same):
 *
 * email_reply_parser (mr_reply_visible_text on the file):
 *   parse_reply         the visible text, compared exactly (whitespace
 *                       normalized: every run is one space).
 *   fragments == 1      and nothing else said: the whole file is one
 *                       visible fragment, so the visible text is the
 *                       file, compared exactly.
 *   fragment_equals,    per fragment, with its flags: a visible fragment
 *   fragment_matches    the sender wrote must be in (match) the result; a
 *                       hidden or quoted one must not (the Ruby library
 *                       shows quotes between interleaved answers, mailroom
 *                       removes every quote: the brief asks for the
 *                       sender's own lines). Without flags, fragment 0 is
 *                       taken as visible and later ones are not checked.
 *                       Patterns are Ruby's, run as POSIX extended
 *                       regexes with ^ and $ at line ends.
 *   max_seconds         the call must take less.
 *   every case          the result is not empty.
 * talon (its quotation tests keep signatures and its signature tests have
 * no quotes, so each runs the one stage it tests, mr_reply_strip_*):
 *   standard_replies    first text/plain part (mailroom's parser) through
 *                       the quote stage, compared exactly (normalized).
 *   html_replies        the HTML through the quote stage, compared with all
 *                       whitespace removed, as talon compares.
 *   html_fixtures       talon compares HTML; mailroom returns text, so the
 *                       expected HTML is converted with mr_html_to_text and
 *                       compared with all whitespace removed.
 *   plain_fixtures      the raw file through the quote stage: not empty,
 *                       without the given word.
 *   signature           the body through the signature stage must equal the
 *                       body without the expected signature (talon also
 *                       passes the sender's name; mailroom does not use it).
 *
 * Score = cases passing all their checks / cases. Fails under 95%. No
 * fixture is named anywhere but in the printed report.
 */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "content/html_text.h"
#include "content/reply.h"
#include "mime/charset.h"
#include "mime/mime.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/utf8.h"

#define MAX_FILE_BYTES (16u << 20)
#define SKIP_CODE 77 /* CTest's SKIP_RETURN_CODE for this program */

static char corpus[1024];

static bool read_file(const char *dir, const char *rel, struct mr_buf *b)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    mr_buf_init(b, MAX_FILE_BYTES);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        mr_buf_append(b, chunk, n);
    fclose(f);
    if (b->p == NULL)
        mr_buf_append(b, "", 0);
    return true;
}

/* Every run of whitespace one space, none at the ends; or, with squeeze,
 * no whitespace at all (talon's HTML comparison). */
static char *normalize(const char *s, size_t n, bool squeeze)
{
    struct mr_buf b;
    mr_buf_init(&b, 0);
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
                  c == '\f' || c == '\v';
        if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xA0) {
            ws = true;
            i++;
        }
        if (ws) {
            space = b.len > 0;
            continue;
        }
        if (space && !squeeze)
            mr_buf_putc(&b, ' ');
        space = false;
        mr_buf_putc(&b, (char)c);
    }
    if (b.p == NULL)
        mr_buf_append(&b, "", 0);
    return mr_buf_detach(&b, NULL);
}

static bool has_text(const char *s, size_t n)
{
    char *t = normalize(s, n, false);
    bool r = t[0] != '\0';
    free(t);
    return r;
}

/* ---- the score -------------------------------------------------------- */

struct source {
    const char *name;
    size_t cases, passed;
    struct mr_buf misses; /* one line per miss, printed at the end */
};

static void record(struct source *s, const char *file, bool ok,
                   const char *why, const char *got)
{
    s->cases++;
    if (ok) {
        s->passed++;
        return;
    }
    char *g = normalize(got, strlen(got), false);
    if (strlen(g) > 160)
        memcpy(g + 150, "[...]", 6);
    mr_buf_printf(&s->misses, "  MISS %s/%s: %s\n       got: \"%s\"\n", s->name,
                  file, why, g);
    free(g);
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- email_reply_parser ---------------------------------------------- */

static bool flag_at(json_t *c, const char *key, size_t i, bool *known)
{
    json_t *a = json_object_get(c, key);
    if (!json_is_array(a) || i >= json_array_size(a)) {
        *known = false;
        return false;
    }
    *known = true;
    return json_is_true(json_array_get(a, i));
}

/* What a fragment's flags ask of the result: +1 present, -1 absent, 0 no
 * check. */
static int fragment_wanted(json_t *c, size_t i)
{
    bool kh, kq;
    bool hidden = flag_at(c, "hidden", i, &kh);
    bool quoted = flag_at(c, "quoted", i, &kq);
    if (!kh && !kq)
        return i == 0 ? 1 : 0;
    return hidden || quoted ? -1 : 1;
}

static bool regex_found(const char *pattern, const char *text, bool *bad)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE | REG_NOSUB) != 0) {
        *bad = true;
        return false;
    }
    bool r = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return r;
}

static void run_github(struct source *s, json_t *cases)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/github-email_reply_parser/emails", corpus);
    const char *key;
    json_t *c;
    json_object_foreach(cases, key, c)
    {
        char rel[512];
        snprintf(rel, sizeof rel, "%s.txt", key);
        struct mr_buf in, out;
        if (!read_file(dir, rel, &in)) {
            record(s, rel, false, "fixture missing", "");
            continue;
        }
        mr_buf_init(&out, 0);
        double t0 = seconds();
        mr_reply_visible_text(in.p, in.len, &out);
        double took = seconds() - t0;
        const char *got = out.p ? out.p : "";
        char *ngot = normalize(got, out.len, false);
        char why[512] = "";
        bool ok = true;

        if (has_text(in.p, in.len) && !has_text(got, out.len)) {
            ok = false;
            snprintf(why, sizeof why, "empty result");
        }
        json_t *pr = json_object_get(c, "parse_reply");
        json_t *fr = json_object_get(c, "fragments");
        bool only_count = json_object_size(c) == 1 && json_is_integer(fr);
        if (ok && (json_is_string(pr) || (only_count && json_integer_value(fr) == 1))) {
            const char *want = json_is_string(pr) ? json_string_value(pr) : in.p;
            char *nw = normalize(want, strlen(want), false);
            if (strcmp(nw, ngot) != 0) {
                ok = false;
                snprintf(why, sizeof why, "expected \"%.200s\"", nw);
            }
            free(nw);
        }
        json_t *fe = json_object_get(c, "fragment_equals");
        for (size_t i = 0; ok && i < json_array_size(fe); i++) {
            json_t *pair = json_array_get(fe, i);
            size_t idx = (size_t)json_integer_value(json_array_get(pair, 0));
            const char *txt = json_string_value(json_array_get(pair, 1));
            char *nt = normalize(txt, strlen(txt), false);
            int w = fragment_wanted(c, idx);
            bool in_got = nt[0] && strstr(ngot, nt) != NULL;
            if (nt[0] && ((w > 0 && !in_got) || (w < 0 && in_got))) {
                ok = false;
                snprintf(why, sizeof why, "fragment %zu \"%.120s\" should %s",
                         idx, nt, w > 0 ? "be kept" : "be removed");
            }
            free(nt);
        }
        json_t *fm = json_object_get(c, "fragment_matches");
        for (size_t i = 0; ok && i < json_array_size(fm); i++) {
            json_t *pair = json_array_get(fm, i);
            size_t idx = (size_t)json_integer_value(json_array_get(pair, 0));
            const char *pat = json_string_value(json_array_get(pair, 1));
            int w = fragment_wanted(c, idx);
            if (w == 0)
                continue;
            bool bad = false;
            bool found = regex_found(pat, got, &bad);
            if (bad || (w > 0 && !found) || (w < 0 && found)) {
                ok = false;
                snprintf(why, sizeof why, "fragment %zu /%s/ should %s", idx,
                         pat, bad ? "compile" : w > 0 ? "match" : "not match");
            }
        }
        json_t *ms = json_object_get(c, "max_seconds");
        if (ok && json_is_number(ms) && took > json_number_value(ms)) {
            ok = false;
            snprintf(why, sizeof why, "took %.3f s", took);
        }
        record(s, rel, ok, why, got);
        free(ngot);
        mr_buf_release(&in);
        mr_buf_release(&out);
    }
}

/* ---- talon ------------------------------------------------------------ */

static void compare(struct source *s, const char *file, const char *got,
                    size_t got_n, const char *want, bool squeeze)
{
    char *ng = normalize(got, got_n, squeeze);
    char *nw = normalize(want, strlen(want), squeeze);
    char why[512];
    snprintf(why, sizeof why, "expected \"%.200s\"", nw);
    record(s, file, strcmp(ng, nw) == 0 && (nw[0] == '\0' || ng[0] != '\0'),
           why, got);
    free(ng);
    free(nw);
}

static void run_talon_standard(struct source *s, const char *dir, json_t *cases,
                               struct mr_charset_ctx *cs)
{
    const char *file;
    json_t *c;
    json_object_foreach(cases, file, c)
    {
        struct mr_buf raw, out, want;
        if (!read_file(dir, file, &raw)) {
            record(s, file, false, "fixture missing", "");
            continue;
        }
        struct mr_mime_options opt;
        mr_mime_options_default(&opt, cs);
        struct mr_arena *a = mr_arena_new();
        struct mr_event *ev = NULL;
        struct mr_error err = {0};
        const char *text = NULL;
        if (mr_mime_parse(raw.p, raw.len, &opt, a, &ev, &err) == 0)
            text = mr_event_text(ev);
        mr_buf_init(&out, 0);
        if (text)
            mr_reply_strip_text(text, strlen(text), MR_REPLY_QUOTES, &out);
        json_t *et = json_object_get(c, "expected_text");
        json_t *ef = json_object_get(c, "expected_file");
        mr_buf_init(&want, 0);
        if (json_is_string(et))
            mr_buf_puts(&want, json_string_value(et));
        else if (!json_is_string(ef) || !read_file(dir, json_string_value(ef), &want))
            mr_buf_puts(&want, "(expected file missing)");
        if (!text)
            record(s, file, false, "no text part parsed", "");
        else
            compare(s, file, out.p ? out.p : "", out.len, want.p ? want.p : "",
                    false);
        mr_arena_free(&a);
        mr_buf_release(&raw);
        mr_buf_release(&out);
        mr_buf_release(&want);
    }
}

static void run_talon_html(struct source *s, const char *dir, json_t *cases,
                           bool expected_is_html)
{
    const char *file;
    json_t *c;
    json_object_foreach(cases, file, c)
    {
        struct mr_buf raw, out, want;
        if (!read_file(dir, file, &raw)) {
            record(s, file, false, "fixture missing", "");
            continue;
        }
        mr_buf_init(&out, 0);
        mr_reply_strip_html(raw.p, raw.len, MR_REPLY_QUOTES, &out);
        mr_buf_init(&want, 0);
        const char *e = json_string_value(json_object_get(
            c, expected_is_html ? "expected_html_no_ws"
                                : "expected_text_ignoring_whitespace"));
        if (!e)
            e = "(no expectation)";
        if (expected_is_html)
            mr_html_to_text(e, strlen(e), &want);
        else
            mr_buf_puts(&want, e);
        compare(s, file, out.p ? out.p : "", out.len, want.p ? want.p : "", true);
        mr_buf_release(&raw);
        mr_buf_release(&out);
        mr_buf_release(&want);
    }
}

static void run_talon_plain(struct source *s, const char *dir, json_t *cases)
{
    const char *file;
    json_t *c;
    json_object_foreach(cases, file, c)
    {
        struct mr_buf raw, out;
        if (!read_file(dir, file, &raw)) {
            record(s, file, false, "fixture missing", "");
            continue;
        }
        mr_buf_init(&out, 0);
        mr_reply_strip_text(raw.p, raw.len, MR_REPLY_QUOTES, &out);
        const char *got = out.p ? out.p : "";
        const char *bad = json_string_value(json_object_get(c, "must_not_contain"));
        bool ok = has_text(got, out.len) || !json_is_true(json_object_get(c, "non_empty"));
        if (bad && strstr(got, bad))
            ok = false;
        char why[256];
        snprintf(why, sizeof why, "must be non-empty and not contain \"%s\"",
                 bad ? bad : "");
        record(s, file, ok, why, got);
        mr_buf_release(&raw);
        mr_buf_release(&out);
    }
}

static void trim(const char **p, size_t *n)
{
    while (*n && strchr(" \t\r\n", (*p)[0]))
        (*p)++, (*n)--;
    while (*n && strchr(" \t\r\n", (*p)[*n - 1]))
        (*n)--;
}

static void run_talon_signature(struct source *s, const char *dir, json_t *cases)
{
    const char *file;
    json_t *c;
    json_object_foreach(cases, file, c)
    {
        struct mr_buf body, sig, out;
        const char *sf = json_string_value(json_object_get(c, "expected_signature_file"));
        if (!read_file(dir, file, &body) || !sf || !read_file(dir, sf, &sig)) {
            record(s, file, false, "fixture missing", "");
            continue;
        }
        mr_buf_init(&out, 0);
        mr_reply_strip_text(body.p, body.len, MR_REPLY_SIGNATURE, &out);
        /* talon: the rest is the stripped body less the stripped
         * signature's length at its end. */
        const char *b = body.p, *g = sig.p;
        size_t bn = body.len, gn = sig.len;
        trim(&b, &bn);
        trim(&g, &gn);
        char *want;
        if (gn <= bn && memcmp(b + bn - gn, g, gn) == 0) {
            want = mr_xstrndup(b, bn - gn);
        } else {
            want = mr_xstrndup("(signature is not the end of the body)", 38);
        }
        compare(s, file, out.p ? out.p : "", out.len, want, false);
        free(want);
        mr_buf_release(&body);
        mr_buf_release(&sig);
        mr_buf_release(&out);
    }
}

/* ---- the test --------------------------------------------------------- */

static json_t *load_expected(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/EXPECTED.derived.json", corpus, dir);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("%s: %s", path, e.text);
    return j;
}

static void reply_corpus_score(void **state)
{
    (void)state;
    struct source gh = {.name = "github-email_reply_parser"};
    struct source ta = {.name = "mailgun-talon"};
    mr_buf_init(&gh.misses, 0);
    mr_buf_init(&ta.misses, 0);

    json_t *g = load_expected("github-email_reply_parser");
    run_github(&gh, json_object_get(g, "cases"));
    json_decref(g);

    json_t *t = load_expected("mailgun-talon");
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/mailgun-talon", corpus);
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    run_talon_standard(&ta, dir, json_object_get(t, "standard_replies"), cs);
    mr_charset_ctx_free(&cs);
    run_talon_html(&ta, dir, json_object_get(t, "html_replies"), false);
    run_talon_html(&ta, dir, json_object_get(t, "html_fixtures"), true);
    run_talon_plain(&ta, dir, json_object_get(t, "plain_fixtures"));
    run_talon_signature(&ta, dir, json_object_get(t, "signature"));
    json_decref(t);

    struct source *all[] = {&gh, &ta};
    size_t cases = 0, passed = 0;
    for (size_t i = 0; i < 2; i++) {
        print_message("[reply] %s: %zu/%zu (%.1f%%)\n", all[i]->name,
                      all[i]->passed, all[i]->cases,
                      all[i]->cases ? 100.0 * (double)all[i]->passed / (double)all[i]->cases : 0.0);
        if (all[i]->misses.len)
            print_message("%s", all[i]->misses.p);
        cases += all[i]->cases;
        passed += all[i]->passed;
        mr_buf_release(&all[i]->misses);
    }
    double score = cases ? 100.0 * (double)passed / (double)cases : 0.0;
    print_message("[reply] overall: %zu/%zu (%.1f%%), floor 95%%\n", passed,
                  cases, score);
    /* Both sources hold more than 40 cases between them: an empty run is a
     * broken test, not a perfect score. */
    assert_true(cases >= 40);
    assert_true(passed * 100 >= cases * 95);
}

int main(void)
{
    const char *shared = getenv("MR_SHARED");
    struct stat st;
    if (shared && shared[0])
        snprintf(corpus, sizeof corpus, "%s/corpus", shared);
    if (!shared || !shared[0] || stat(corpus, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("test_reply_corpus: %s not found (MR_SHARED unset or no "
               "../shared): skipped\n",
               corpus[0] ? corpus : "$MR_SHARED/corpus");
        return SKIP_CODE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reply_corpus_score),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
