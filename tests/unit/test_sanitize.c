/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sanitize.c - mr_html_sanitize rule by rule, cid rewriting, the
 * remote-image placeholder, what mail layouts need kept, hostile nesting,
 * and idempotence (sanitize(sanitize(x)) == sanitize(x), the no-mXSS
 * property) on every payload of ../shared/vectors/xss.jsonl. The browser
 * proof is tests/xss/.
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

#include <jansson.h>

#include "content/sanitize.h"
#include "util/buf.h"
#include "util/utf8.h"

static const char *resolver(void *ctx, const char *cid, size_t n)
{
    (void)ctx;
    if (n == 8 && memcmp(cid, "logo@x.y", 8) == 0)
        return "/api/v1/attachments/7";
    if (n == 4 && memcmp(cid, "bg@x", 4) == 0)
        return "/api/v1/attachments/8";
    return NULL;
}

/* Sanitizes html with opt, checks that the result is valid UTF-8 and maps
 * to itself; returns it (caller frees). */
static char *san_opt(const char *html, size_t n,
                     const struct mr_sanitize_opts *opt)
{
    struct mr_buf out, again;
    struct mr_error err = {0};
    mr_buf_init(&out, 0);
    mr_buf_init(&again, 0);
    int rc = mr_html_sanitize(html, n, opt, &out, &err);
    if (rc != 0)
        fail_msg("sanitize failed: %s", err.msg);
    assert_true(mr_utf8_valid(out.p ? out.p : "", out.len));
    /* A resolved cid URL is relative: only the call that resolved it
     * accepts it again (its own check pass does), a later call drops it. */
    bool resolved = out.p && strstr(out.p, "/api/v1/attachments/");
    rc = mr_html_sanitize(out.p ? out.p : "", out.len, opt, &again, &err);
    assert_int_equal(rc, 0);
    if (resolved) {
        /* skip the byte comparison */
    } else if (out.len != again.len ||
               (out.len && memcmp(out.p, again.p, out.len) != 0))
        fail_msg("not idempotent:\n in: %s\n 1st: %s\n 2nd: %s", html,
                 out.p ? out.p : "", again.p ? again.p : "");
    mr_buf_release(&again);
    size_t len;
    return mr_buf_detach(&out, &len);
}

static char *san(const char *html)
{
    struct mr_sanitize_opts opt = {.resolve_cid = resolver};
    return san_opt(html, strlen(html), &opt);
}

#define EXPECT(in, want)                                                       \
    do {                                                                       \
        char *got_ = san(in);                                                  \
        assert_string_equal(got_, want);                                       \
        free(got_);                                                            \
    } while (0)

/* The output must not contain needle (case-insensitive). */
static void refute(const char *in, const char *needle)
{
    char *got = san(in);
    if (strcasestr(got, needle) != NULL)
        fail_msg("'%s' survived in %s (from %s)", needle, got, in);
    free(got);
}

static void test_text_and_escaping(void **state)
{
    (void)state;
    EXPECT("a &amp; b &lt; c", "a &amp; b &lt; c");
    EXPECT("<p title='x\"y&z'>1 > 0</p>",
           "<p title=\"x&quot;y&amp;z\">1 &gt; 0</p>");
    EXPECT("<!-- hidden --><b>x</b>", "<b>x</b>");
    EXPECT("<br/><hr><img alt=a>", "<br><hr><img alt=\"a\">");
    EXPECT("", "");
}

static void test_dangerous_elements_dropped(void **state)
{
    (void)state;
    EXPECT("<p>a<script>alert(1)</script>b</p>", "<p>ab</p>");
    EXPECT("x<iframe src=http://e></iframe><object data=x>y</object>"
           "<embed src=x><applet>z</applet>",
           "x");
    EXPECT("<form action=http://e><input name=p><button>Go</button>"
           "<select><option>1</select><textarea>t</textarea>text</form>",
           "text");
    EXPECT("<svg><script>alert(1)</script><text>t</text></svg>ok", "ok");
    EXPECT("<math><mi>x</mi></math>ok", "ok");
    EXPECT("<template><img src=x onerror=alert(1)></template>ok", "ok");
    /* As a browser with scripting reads it: raw text up to </noscript>. */
    EXPECT("<noscript><b>n</b></noscript>ok", "ok");
    EXPECT("<p><noscript><p title=\"</noscript><img src=x onerror=alert(1)>"
           "\">",
           "<p><img>\"&gt;</p>");
    refute("<meta http-equiv=refresh content='0;url=http://e'>", "meta");
    refute("<base href=http://e/><a href=x>y</a>", "base");
    refute("<link rel=stylesheet href=http://e/x.css>", "link");
    refute("<marquee onstart=alert(1)>m</marquee>", "marquee");
}

static void test_attributes(void **state)
{
    (void)state;
    EXPECT("<b onclick=alert(1) onmouseover='x' class=c id=i name=n>x</b>",
           "<b class=\"c\">x</b>");
    refute("<iframe srcdoc='<script>alert(1)</script>'></iframe>", "srcdoc");
    refute("<button formaction=javascript:alert(1)>x</button>", "formaction");
    EXPECT("<td>x", "x");
    EXPECT("<custom-el foo=bar title=t>c</custom-el>",
           "<span title=\"t\">c</span>");
}

static void test_urls(void **state)
{
    (void)state;
    const char *bad[] = {
        "<a href='javascript:alert(1)'>x</a>",
        "<a href=' JaVaScRiPt:alert(1)'>x</a>",
        "<a href='java&#x09;script:alert(1)'>x</a>",
        "<a href='java&NewLine;script:alert(1)'>x</a>",
        "<a href='&#106;avascript:alert(1)'>x</a>",
        "<a href='\x01javascript:alert(1)'>x</a>",
        "<a href='vbscript:msgbox(1)'>x</a>",
        "<a href='data:text/html,<script>alert(1)</script>'>x</a>",
        "<a href='/relative/path'>x</a>",
        "<a href='//evil.example/'>x</a>",
        "<a href='#frag'>x</a>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT(bad[i], "<a>x</a>");
    EXPECT("<a href='https://ex.com/?a=1&b=2' target=_self rel=opener>x</a>",
           "<a href=\"https://ex.com/?a=1&amp;b=2\" target=\"_blank\" "
           "rel=\"noopener noreferrer nofollow\">x</a>");
    EXPECT("<a href='mailto:a@b.c'>m</a>",
           "<a href=\"mailto:a@b.c\" target=\"_blank\" "
           "rel=\"noopener noreferrer nofollow\">m</a>");
    EXPECT("<a href=' http://e/\n'>x</a>",
           "<a href=\"http://e/\" target=\"_blank\" "
           "rel=\"noopener noreferrer nofollow\">x</a>");
}

static void test_cid_and_remote_images(void **state)
{
    (void)state;
    EXPECT("<img src='cid:logo@x.y' alt=Logo>",
           "<img src=\"/api/v1/attachments/7\" alt=\"Logo\">");
    EXPECT("<img src='cid:<logo@x.y>'>", "<img src=\"/api/v1/attachments/7\">");
    EXPECT("<img src='cid:unknown@x'>", "<img>");
    EXPECT("<img src='cid:../../etc/passwd'>", "<img>");
    EXPECT("<img src='data:image/png;base64,AAAA'>", "<img>");
    /* Remote images: the placeholder keeps the URL, loads nothing. */
    EXPECT("<img src='https://t.example/p.gif?u=1' width=1 alt=x>",
           "<img data-mr-remote-src=\"https://t.example/p.gif?u=1\" "
           "width=\"1\" alt=\"x\">");
    EXPECT("<table background='http://e/bg.png'><tr><td>x",
           "<table data-mr-remote-background=\"http://e/bg.png\"><tbody>"
           "<tr><td>x</td></tr></tbody></table>");
    EXPECT("<td background='cid:bg@x'>", "");
    /* A forged placeholder is only ever an http(s) URL. */
    EXPECT("<img data-mr-remote-src='javascript:alert(1)'>", "<img>");
    struct mr_sanitize_opts on = {.resolve_cid = resolver,
                                  .remote_images = true};
    const char *in = "<img src='https://t.example/p.gif'>";
    char *got = san_opt(in, strlen(in), &on);
    assert_string_equal(got, "<img src=\"https://t.example/p.gif\">");
    free(got);
    /* No resolver: cid: stays as it is. */
    struct mr_sanitize_opts none = {0};
    in = "<img src='cid:a@b'>";
    got = san_opt(in, strlen(in), &none);
    assert_string_equal(got, "<img src=\"cid:a@b\">");
    free(got);
}

static void test_style_attribute(void **state)
{
    (void)state;
    EXPECT("<p style='color:red;FONT-SIZE:12px ;  font-family: \"Segoe UI\""
           ", Arial'>x</p>",
           "<p style=\"color: red; font-size: 12px; font-family: "
           "&quot;Segoe UI&quot;, Arial\">x</p>");
    const char *bad[] = {
        "width: expression(alert(1))",
        "width: expr\\65ssion(alert(1))",
        "background: url(javascript:alert(1))",
        "background: url(http://e/track.gif)",
        "background: \\75rl(http://e/x)",
        "behavior: url(x.htc)",
        "-moz-binding: url(x.xml#xss)",
        "position: fixed",
        "position: absolute",
        "z-index: 99999",
        "margin-top: -500px",
        "color: red /* x */",
        "background-image: image-set(\"http://e/x\" 1x)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char html[256];
        snprintf(html, sizeof html, "<p style='%s'>x</p>", bad[i]);
        EXPECT(html, "<p>x</p>");
    }
    EXPECT("<p style='color: red; } body { x: y'>x</p>",
           "<p style=\"color: red\">x</p>");
    EXPECT("<td style='background:url(cid:bg@x) no-repeat;"
           "mso-line-height-rule:exactly'>",
           "");
    EXPECT("<table><tr><td style='background:url(cid:bg@x) no-repeat;"
           "mso-line-height-rule:exactly;position:relative'>x</table>",
           "<table><tbody><tr><td style=\"background: "
           "url(&quot;/api/v1/attachments/8&quot;) no-repeat; "
           "mso-line-height-rule: exactly; position: relative\">x</td></tr>"
           "</tbody></table>");
}

static void test_style_element(void **state)
{
    (void)state;
    EXPECT("<style><!--\n@import url(http://e/x.css);\n"
           "body { color: #333; position: fixed }\n"
           "p.MsoNormal, li { margin: 0in; font-size: 11pt }\n"
           "a:hover { behavior: url(x) }\n"
           "@font-face { font-family: x; src: url(http://e/f) }\n"
           "@media only screen and (max-width: 600px) { td { width: 100% "
           "!important } }\n"
           "body + div { color: red }\n"
           "--></style><p>x</p>",
           "<style>\n"
           ".mr-html { color: #333 }\n"
           ".mr-html p.MsoNormal, .mr-html li { margin: 0in; font-size: "
           "11pt }\n"
           "@media only screen and (max-width: 600px) {\n"
           ".mr-html td { width: 100% !important }\n"
           "}\n"
           ".mr-html body + div { color: red }\n"
           "</style><p>x</p>");
    /* Nothing that could end the element or hide a rule. */
    EXPECT("<style>p { color: red }</style><style>a{}</style>"
           "<style>p{color:\\72 ed}</style>",
           "<style>\n.mr-html p { color: red }\n</style>");
    refute("<style>p[title=\"</style><img src=x onerror=alert(1)>\"]"
           "{color:red}</style>",
           "onerror=");
}

static void test_layout_kept(void **state)
{
    (void)state;
    EXPECT("<table width=600 cellpadding=0 cellspacing=0 border=0 "
           "bgcolor=#fff align=center><tr><td colspan=2 valign=top "
           "style='padding:10px'><font face=Arial size=2 color=#333>Hi"
           "</font></td></tr></table>",
           "<table width=\"600\" cellpadding=\"0\" cellspacing=\"0\" "
           "border=\"0\" bgcolor=\"#fff\" align=\"center\"><tbody><tr>"
           "<td colspan=\"2\" valign=\"top\" style=\"padding: 10px\">"
           "<font face=\"Arial\" size=\"2\" color=\"#333\">Hi</font></td>"
           "</tr></tbody></table>");
    EXPECT("<blockquote type=cite><ul><li>a<li>b</ul><ol start=3><li>c"
           "</ol></blockquote><h2>T</h2><center>c</center>",
           "<blockquote type=\"cite\"><ul><li>a</li><li>b</li></ul>"
           "<ol start=\"3\"><li>c</li></ol></blockquote><h2>T</h2>"
           "<center>c</center>");
    /* Outlook's body attributes move to a div. */
    EXPECT("<html><head><title>t</title></head><body lang=EN-US "
           "style='word-wrap:break-word'><p>x</p></body></html>",
           "<div lang=\"EN-US\" style=\"word-wrap: break-word\"><p>x</p>"
           "</div>");
    EXPECT("<pre>\n\nx</pre>", "<pre>\n\nx</pre>");
}

static void test_hostile_input(void **state)
{
    (void)state;
    /* Invalid UTF-8 and NUL bytes. */
    const char raw[] = "<p>a\xff\xfe\0b\xc3</p>";
    struct mr_sanitize_opts opt = {0};
    char *got = san_opt(raw, sizeof raw - 1, &opt);
    assert_string_equal(got, "<p>a\xEF\xBF\xBD\xEF\xBF\xBD"
                             "b\xEF\xBF\xBD</p>");
    free(got);
    /* Nesting far past any limit: bounded depth, no crash. */
    size_t depth = 200000;
    struct mr_buf deep;
    mr_buf_init(&deep, 0);
    for (size_t i = 0; i < depth; i++)
        mr_buf_puts(&deep, "<div><b>");
    mr_buf_puts(&deep, "deep");
    got = san_opt(deep.p, deep.len, &opt);
    assert_non_null(strstr(got, "deep"));
    size_t opened = 0;
    for (const char *p = got; (p = strstr(p, "<div")) != NULL; p++)
        opened++;
    assert_true(opened <= 256);
    free(got);
    /* Formatting elements copied for every paragraph: the tree would be
     * huge, the result is bounded (text fallback if need be). */
    mr_buf_reset(&deep);
    for (size_t i = 0; i < 400; i++)
        mr_buf_printf(&deep, "<b id=%zu>", i);
    for (size_t i = 0; i < 20000; i++)
        mr_buf_puts(&deep, "<p>x");
    got = san_opt(deep.p, deep.len, &opt);
    assert_non_null(strstr(got, "x"));
    free(got);
    mr_buf_release(&deep);
}

static void test_output_cap(void **state)
{
    (void)state;
    struct mr_buf out;
    struct mr_error err = {0};
    mr_buf_init(&out, 10);
    const char *in = "<p>this is longer than ten bytes</p>";
    assert_int_equal(mr_html_sanitize(in, strlen(in), NULL, &out, &err),
                     MR_ELIMIT);
    assert_int_equal(err.code, MR_ELIMIT);
    assert_int_equal(out.len, 0); /* nothing half-written */
    /* Exactly full is fine; one byte less is not. */
    const char *p = "<p>0123</p>";
    for (size_t max = 10; max <= 12; max++) {
        mr_buf_release(&out);
        mr_buf_init(&out, max);
        int rc = mr_html_sanitize(p, strlen(p), NULL, &out, &err);
        assert_int_equal(rc, max >= strlen(p) ? 0 : MR_ELIMIT);
        assert_int_equal(out.len, max >= strlen(p) ? strlen(p) : 0);
    }
    mr_buf_release(&out);
}

/* Every payload of the shared XSS set: valid UTF-8, idempotent, and none
 * of the things the README says must never survive. */
static void test_xss_vectors(void **state)
{
    (void)state;
    const char *shared = getenv("MR_SHARED");
    char path[4096];
    snprintf(path, sizeof path, "%s/vectors/xss.jsonl",
             shared ? shared : "../shared");
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        print_message("skipped: %s not found (set MR_SHARED)\n", path);
        skip();
        return;
    }
    char *line = NULL;
    size_t cap = 0, count = 0;
    struct mr_sanitize_opts opt = {.resolve_cid = resolver};
    while (getline(&line, &cap, f) != -1) {
        json_error_t jerr;
        json_t *o = json_loads(line, JSON_ALLOW_NUL, &jerr);
        assert_non_null(o);
        const json_t *p = json_object_get(o, "payload");
        assert_true(json_is_string(p));
        char *got = san_opt(json_string_value(p), json_string_length(p), &opt);
        /* Outside text and attribute values nothing of these remains:
         * look at the markup only (text is escaped, so '<' starts
         * markup). */
        for (char *t = got; (t = strchr(t, '<')) != NULL; t++) {
            char *e = strchr(t, '>');
            size_t len = e ? (size_t)(e - t) : strlen(t);
            char tag[512];
            snprintf(tag, sizeof tag, "%.*s", (int)(len < 500 ? len : 500), t);
            /* Attribute values are quoted and escaped: cut them out. */
            char bare[512];
            size_t k = 0;
            bool inq = false;
            for (size_t i = 0; tag[i]; i++) {
                if (tag[i] == '"')
                    inq = !inq;
                else if (!inq)
                    bare[k++] = tag[i];
            }
            bare[k] = '\0';
            const char *never[] = {
                " on",       "<script",   "<iframe",   "<svg",      "<math",
                "<base",     "<meta",     "<form",     "<object",   "<embed",
                "<noscript", "<template", "<textarea", "<title",    "<link",
                "<input",    "<button",   "srcdoc",    "formaction"};
            for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
                if (strcasestr(bare, never[i]))
                    fail_msg("%s: '%s' in %s",
                             json_string_value(json_object_get(o, "id")),
                             never[i], tag);
            if (strcasestr(tag, "javascript:") &&
                (strcasestr(tag, "href=") || strcasestr(tag, "src=")))
                fail_msg("javascript URL in %s", tag);
        }
        /* CSS: the content of <style> and of style="..." values. */
        const char *css[] = {"expression(",     "@import",
                             "-moz-binding",    "behavior:",
                             "position: fixed", "position: absolute",
                             "javascript:",     "\\"};
        for (const char *t = got; *t; t++) {
            const char *end = NULL;
            if (strncmp(t, "<style>", 7) == 0)
                end = strstr(t, "</style>");
            else if (strncmp(t, " style=\"", 8) == 0)
                end = strchr(t + 8, '"');
            if (end == NULL)
                continue;
            char *v = strndup(t, (size_t)(end - t));
            for (size_t i = 0; i < sizeof css / sizeof css[0]; i++)
                if (strcasestr(v, css[i]))
                    fail_msg("%s survived in %s", css[i], v);
            free(v);
            t = end - 1;
        }
        free(got);
        json_decref(o);
        count++;
    }
    free(line);
    fclose(f);
    print_message("%zu payloads sanitized, all idempotent\n", count);
    assert_true(count > 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_and_escaping),
        cmocka_unit_test(test_dangerous_elements_dropped),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_cid_and_remote_images),
        cmocka_unit_test(test_style_attribute),
        cmocka_unit_test(test_style_element),
        cmocka_unit_test(test_layout_kept),
        cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_xss_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
