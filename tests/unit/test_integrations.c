/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_integrations.c - the integrations' payloads (src/outbound/slack.c,
 * github.c, jira.c, integrations.c) and their configuration: exact JSON
 * shapes, escaping, truncation, authentication headers, the answers read
 * back, and the loader's errors with line and column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "config/config.h"
#include "outbound/integrations.h"
#include "util/buf.h"

static struct mr_notification sample(void)
{
    struct mr_notification n = {
        .id = 7,
        .tenant = "acme",
        .integration = "x",
        .ticket_id = 12,
        .ticket_number = 3,
        .subject = "Disk <full> & slow",
        .status = "new",
        .priority = "urgent",
        .queue = "ops",
        .requester = "alice@customer.test",
        .message_id = "abc@customer.test",
        .from_email = "alice@customer.test",
        .from_name = "Alice",
        .text = "Hello,\r\n\tthe disk is <b>full</b>.",
    };
    return n;
}

static char *excerpt(const char *in, size_t max)
{
    struct mr_buf b;
    mr_buf_init(&b, 0);
    mr_notify_excerpt(in, max, &b);
    mr_buf_putc(&b, '\0');
    return mr_buf_detach(&b, NULL);
}

static void test_excerpt(void **state)
{
    (void)state;
    char *s = excerpt("  Hello,\r\n\t world \x07\x1b[31m! ", 300);
    assert_string_equal(s, "Hello, world [31m!");
    free(s);
    /* Cut at max characters (not bytes), then an ellipsis. */
    s = excerpt("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 3);
    assert_string_equal(s, "\xC3\xA9\xC3\xA9\xC3\xA9\xE2\x80\xA6");
    free(s);
    s = excerpt("abc", 3);
    assert_string_equal(s, "abc");
    free(s);
    /* Invalid UTF-8 replaced; bidi overrides and C1 controls dropped. */
    s = excerpt("a\xFF" "b\xE2\x80\xAE" "c\xC2\x85" "d", 300);
    assert_string_equal(s, "a\xEF\xBF\xBD" "bc d");
    free(s);
    s = excerpt(NULL, 300);
    assert_string_equal(s, "");
    free(s);
    /* 300 characters of a long body. */
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s = excerpt(big, MR_NOTIFY_EXCERPT_MAX);
    assert_int_equal(strlen(s), 300 + 3);
    free(s);
}

static void test_ticket_link(void **state)
{
    (void)state;
    struct mr_buf b;
    mr_buf_init(&b, 0);
    mr_notify_ticket_link("https://h.test/t/{id}?n={number}", 12, 3, &b);
    mr_buf_putc(&b, '\0');
    assert_string_equal(b.p, "https://h.test/t/12?n=3");
    mr_buf_reset(&b);
    mr_notify_ticket_link(NULL, 12, 3, &b);
    assert_int_equal(b.len, 0);
    mr_buf_release(&b);
}

static void test_slack_exact(void **state)
{
    (void)state;
    struct mr_integration x = {.name = "s", .kind = MR_INTEGRATION_SLACK,
                               .url = "https://hooks.slack.test/services/1"};
    struct mr_notification n = sample();
    struct mr_notify_http h;
    mr_notify_http_init(&h);
    assert_int_equal(mr_slack_build(&x, &n, "https://h.test/t/12", &h, NULL),
                     0);
    assert_string_equal(h.url, "https://hooks.slack.test/services/1");
    assert_int_equal(h.nheaders, 1);
    assert_string_equal(h.headers[0], "Content-Type: application/json");
    mr_buf_putc(&h.body, '\0');
    assert_string_equal(
        h.body.p,
        "{\"text\":\"Ticket #3: Disk &lt;full&gt; &amp; slow (from Alice "
        "&lt;alice@customer.test&gt;)\",\"blocks\":["
        "{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":"
        "\"*<https://h.test/t/12|Ticket #3>* Disk &lt;full&gt; &amp; slow\"}},"
        "{\"type\":\"context\",\"elements\":[{\"type\":\"mrkdwn\",\"text\":"
        "\"From: Alice &lt;alice@customer.test&gt; \xC2\xB7 Queue: ops "
        "\xC2\xB7 Priority: urgent\"}]},"
        "{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":"
        "\"Hello, the disk is &lt;b&gt;full&lt;/b&gt;.\"}}]}");
    mr_notify_http_release(&h);

    /* No link (none configured, or one that would break <url|label>), no
     * queue, no text: those parts are left out. */
    n.queue = NULL;
    n.text = NULL;
    n.from_name = NULL;
    mr_notify_http_init(&h);
    assert_int_equal(mr_slack_build(&x, &n, "https://h.test/a|b", &h, NULL),
                     0);
    json_t *o = json_loadb(h.body.p, h.body.len, 0, NULL);
    assert_non_null(o);
    json_t *blocks = json_object_get(o, "blocks");
    assert_int_equal(json_array_size(blocks), 2);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_array_get(blocks, 0), "text"), "text")),
        "*Ticket #3* Disk &lt;full&gt; &amp; slow");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_array_get(blocks, 1),
                                           "elements"), 0), "text")),
        "From: alice@customer.test \xC2\xB7 Priority: urgent");
    json_decref(o);
    mr_notify_http_release(&h);

    struct mr_integration gh = {.kind = MR_INTEGRATION_GITHUB};
    mr_notify_http_init(&h);
    assert_int_equal(mr_slack_build(&gh, &n, NULL, &h, NULL), MR_EINVAL);
    mr_notify_http_release(&h);
}

static void test_slack_escape(void **state)
{
    (void)state;
    struct mr_buf b;
    mr_buf_init(&b, 0);
    const char in[] = "<!here> a&b > c";
    mr_slack_escape(in, strlen(in), &b);
    mr_buf_putc(&b, '\0');
    assert_string_equal(b.p, "&lt;!here&gt; a&amp;b &gt; c");
    mr_buf_release(&b);
}

static void test_github(void **state)
{
    (void)state;
    char *labels[] = {"support", "mail"};
    struct mr_integration x = {.name = "gh", .kind = MR_INTEGRATION_GITHUB,
                               .api_url = "https://api.github.test",
                               .repo = "o/r", .token = "ghp_T",
                               .labels = labels, .nlabels = 2};
    struct mr_notification n = sample();
    n.text = "see ```` here @team";
    struct mr_notify_http h;
    mr_notify_http_init(&h);
    assert_int_equal(mr_github_build(&x, &n, NULL, &h, NULL), 0);
    assert_string_equal(h.url, "https://api.github.test/repos/o/r/issues");
    const char *want[] = {"Accept: application/vnd.github+json",
                          "Authorization: Bearer ghp_T",
                          "X-GitHub-Api-Version: 2022-11-28",
                          "User-Agent: " MR_NOTIFY_USER_AGENT,
                          "Content-Type: application/json"};
    assert_int_equal(h.nheaders, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(h.headers[i], want[i]);
    json_t *o = json_loadb(h.body.p, h.body.len, 0, NULL);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), 3);
    assert_string_equal(json_string_value(json_object_get(o, "title")),
                        "[#3] Disk <full> & slow");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(o, "labels"), 1)),
        "mail");
    /* The fence outgrows the text's longest run of backticks. */
    assert_string_equal(
        json_string_value(json_object_get(o, "body")),
        "Ticket #3 (queue: ops, priority: urgent)\n\n"
        "`````text\n"
        "From: Alice <alice@customer.test>\n"
        "Subject: Disk <full> & slow\n"
        "Message-ID: <abc@customer.test>\n\n"
        "see ```` here @team\n"
        "`````\n\n<sub>mailroom notification acme/7</sub>\n");
    json_decref(o);
    mr_notify_http_release(&h);

    /* With a link: a Markdown link to the ticket; no labels key without
     * labels. */
    x.nlabels = 0;
    mr_notify_http_init(&h);
    assert_int_equal(mr_github_build(&x, &n, "https://h.test/t/12", &h, NULL),
                     0);
    o = json_loadb(h.body.p, h.body.len, 0, NULL);
    assert_null(json_object_get(o, "labels"));
    assert_true(strncmp(json_string_value(json_object_get(o, "body")),
                        "[Ticket #3](https://h.test/t/12) (", 34) == 0);
    json_decref(o);
    mr_notify_http_release(&h);
}

static void test_github_answer(void **state)
{
    (void)state;
    char *link = NULL, *ref = NULL;
    const char ok[] = "{\"number\": 42, \"html_url\": "
                      "\"https://github.com/o/r/issues/42\"}";
    assert_int_equal(mr_github_parse_created(ok, strlen(ok), &link, &ref,
                                             NULL), 0);
    assert_string_equal(link, "{\"kind\":\"github\",\"url\":"
                              "\"https://github.com/o/r/issues/42\","
                              "\"number\":42}");
    assert_string_equal(ref, "https://github.com/o/r/issues/42");
    free(link);
    free(ref);
    const char *bad[] = {"", "{}", "{\"html_url\": 3}", "[",
                         "{\"html_url\": \"javascript:alert(1)\"}"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(mr_github_parse_created(bad[i], strlen(bad[i]), &link,
                                                 &ref, NULL), MR_EINVAL);
        assert_null(link);
        assert_null(ref);
    }
}

static void test_jira(void **state)
{
    (void)state;
    struct mr_integration x = {.name = "j", .kind = MR_INTEGRATION_JIRA,
                               .base_url = "https://x.atlassian.test",
                               .project = "SUP", .issue_type = "Task",
                               .user = "bot@acme.test", .token = "tok"};
    struct mr_notification n = sample();
    n.text = "break {noFormat} out";
    struct mr_notify_http h;
    mr_notify_http_init(&h);
    assert_int_equal(mr_jira_build(&x, &n, "https://h.test/t/12", &h, NULL),
                     0);
    assert_string_equal(h.url, "https://x.atlassian.test/rest/api/2/issue");
    /* base64("bot@acme.test:tok") */
    assert_string_equal(h.headers[0],
                        "Authorization: Basic Ym90QGFjbWUudGVzdDp0b2s=");
    assert_string_equal(h.headers[1], "Accept: application/json");
    assert_string_equal(h.headers[2], "Content-Type: application/json");
    json_t *o = json_loadb(h.body.p, h.body.len, 0, NULL);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), 1);
    json_t *f = json_object_get(o, "fields");
    assert_int_equal(json_object_size(f), 4);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(f, "project"),
                                          "key")), "SUP");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(f, "issuetype"),
                                          "name")), "Task");
    assert_string_equal(json_string_value(json_object_get(f, "summary")),
                        "[#3] Disk <full> & slow");
    assert_string_equal(
        json_string_value(json_object_get(f, "description")),
        "Ticket #3 (queue: ops, priority: urgent)\n"
        "[Open the ticket|https://h.test/t/12]\n"
        "{noformat}\n"
        "From: Alice <alice@customer.test>\n"
        "Subject: Disk <full> & slow\n"
        "Message-ID: <abc@customer.test>\n\n"
        "break (noFormat} out\n"
        "{noformat}\n"
        "mailroom notification acme/7");
    json_decref(o);
    mr_notify_http_release(&h);
}

static void test_jira_answer(void **state)
{
    (void)state;
    struct mr_integration x = {.kind = MR_INTEGRATION_JIRA,
                               .base_url = "https://x.atlassian.test"};
    char *link = NULL, *ref = NULL;
    const char ok[] = "{\"id\": \"10002\", \"key\": \"SUP-12\", \"self\": "
                      "\"https://x.atlassian.test/rest/api/2/issue/10002\"}";
    assert_int_equal(mr_jira_parse_created(&x, ok, strlen(ok), &link, &ref,
                                           NULL), 0);
    assert_string_equal(
        link, "{\"kind\":\"jira\",\"key\":\"SUP-12\",\"url\":"
              "\"https://x.atlassian.test/browse/SUP-12\",\"self\":"
              "\"https://x.atlassian.test/rest/api/2/issue/10002\"}");
    assert_string_equal(ref, "SUP-12");
    free(link);
    free(ref);
    const char *bad[] = {"{}", "{\"key\": \"SUP\"}", "{\"key\": \"-1\"}",
                         "{\"key\": \"SUP-1x\"}", "{\"key\": \"S P-1\"}"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(mr_jira_parse_created(&x, bad[i], strlen(bad[i]),
                                               &link, &ref, NULL), MR_EINVAL);
}

/* ---- configuration ---- */

static int load(const char *text, struct mr_config **cfg,
                struct mr_config_diags *d)
{
    char dir[] = "/tmp/mr-test-integ-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    memset(d, 0, sizeof *d);
    int rc = mr_config_load(path, dir, cfg, d, NULL);
    unlink(path);
    rmdir(dir);
    return rc;
}

#define HEAD                                                                   \
    "ticket_url: https://help.test/t/{id}\n"                                   \
    "tenants:\n"                                                               \
    "  - name: acme\n"                                                         \
    "    inboxes: [support@acme.test]\n"                                      \
    "    integrations:\n"

static void test_config_ok(void **state)
{
    (void)state;
    setenv("MR_TEST_JIRA_TOKEN", "from-env", 1);
    struct mr_config *cfg = NULL;
    struct mr_config_diags d;
    int rc = load(HEAD
                  "      - {name: s, kind: slack, url: 'https://h.test/x/'}\n"
                  "      - {name: gh, kind: github, repo: o/r, token: t1,"
                  " labels: [a, b]}\n"
                  "      - {name: j.1, kind: jira, base_url: 'https://j.test',"
                  " project: SUP, user: u, token_env: MR_TEST_JIRA_TOKEN}\n",
                  &cfg, &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%d:%d: %s\n", d.items[i].line, d.items[i].column,
                d.items[i].msg);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg->ticket_url, "https://help.test/t/{id}");
    const struct mr_integration *x = mr_config_integration(cfg, "acme", "s");
    assert_non_null(x);
    assert_int_equal(x->kind, MR_INTEGRATION_SLACK);
    assert_string_equal(x->url, "https://h.test/x");
    x = mr_config_integration(cfg, "acme", "gh");
    assert_string_equal(x->api_url, "https://api.github.com");
    assert_string_equal(x->token, "t1");
    assert_int_equal(x->nlabels, 2);
    x = mr_config_integration(cfg, "acme", "j.1");
    assert_string_equal(x->token, "from-env");
    assert_string_equal(x->issue_type, "Task");
    assert_string_equal(mr_integration_kind_name(x->kind), "jira");
    assert_null(mr_config_integration(cfg, "acme", "nope"));
    assert_null(mr_config_integration(cfg, "other", "s"));
    mr_config_free(cfg);
    mr_config_diags_free(&d);
}

static void want_diag(const char *items, int line, int col, const char *msg)
{
    char text[2048];
    snprintf(text, sizeof text, HEAD "%s", items);
    struct mr_config *cfg = NULL;
    struct mr_config_diags d;
    assert_int_equal(load(text, &cfg, &d), MR_EINVAL);
    assert_null(cfg);
    bool found = false;
    for (size_t i = 0; i < d.n; i++) {
        if (strstr(d.items[i].msg, msg) && d.items[i].line == line &&
            d.items[i].column == col)
            found = true;
        else
            fprintf(stderr, "%d:%d: %s\n", d.items[i].line,
                    d.items[i].column, d.items[i].msg);
    }
    assert_true(found);
    mr_config_diags_free(&d);
}

static void test_config_errors(void **state)
{
    (void)state;
    unsetenv("MR_TEST_UNSET_VAR");
    want_diag("      - {name: s, kind: slack, url: 'https://h.test', tokn: x}\n",
              6, 55, "unknown key 'tokn'");
    want_diag("      - {name: s, kind: webhook, url: 'https://h.test'}\n", 6,
              25, "is not one of slack, github, jira");
    want_diag("      - {name: s, kind: slack, url: 'ftp://h.test'}\n", 6, 37,
              "must start with http:// or https://");
    want_diag("      - {name: g, kind: github, repo: nope, token: t}\n", 6,
              39, "must be owner/name");
    want_diag("      - {name: g, kind: github, repo: o/r}\n", 6, 9,
              "'token' (or 'token_env'");
    want_diag("      - {name: j, kind: jira, base_url: 'https://j.test', "
              "project: P, user: u, token_env: MR_TEST_UNSET_VAR}\n",
              6, 91, "environment variable 'MR_TEST_UNSET_VAR' is not set");
    want_diag("      - {name: s, kind: slack, url: 'https://a.test'}\n"
              "      - {name: s, kind: slack, url: 'https://b.test'}\n", 7,
              16, "integration 's' is listed twice");
    want_diag("      - {name: 'a b', kind: slack, url: 'https://a.test'}\n", 6,
              16, "must be 1 to 64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_excerpt),
        cmocka_unit_test(test_ticket_link),
        cmocka_unit_test(test_slack_exact),
        cmocka_unit_test(test_slack_escape),
        cmocka_unit_test(test_github),
        cmocka_unit_test(test_github_answer),
        cmocka_unit_test(test_jira),
        cmocka_unit_test(test_jira_answer),
        cmocka_unit_test(test_config_ok),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
