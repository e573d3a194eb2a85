/* SPDX-License-Identifier: Apache-2.0 */
/*
 * github.c - GitHub Issues (docs/integrations.md): "Create an issue",
 * POST {api_url}/repos/{owner}/{repo}/issues, answered 201 with the
 * issue (html_url, number).
 *
 * The issue body is Markdown, where mail text could mention people
 * (@team), embed images or fake links; everything from the mail goes in
 * a fenced code block, whose fence is longer than any run of backticks
 * in it (CommonMark: a fence closes only on one at least as long).
 */
#include "outbound/integrations.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

static size_t longest_backticks(const struct mr_buf *b)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < b->len; i++) {
        run = b->p[i] == '`' ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

int mr_github_build(const struct mr_integration *x,
                    const struct mr_notification *n, const char *link,
                    struct mr_notify_http *out, struct mr_error *err)
{
    if (x->kind != MR_INTEGRATION_GITHUB || !x->api_url || !x->repo ||
        !x->token)
        return mr_error_set(err, MR_EINVAL, "not a github integration");
    struct mr_buf t, body, block;
    mr_buf_init(&t, 0);
    mr_buf_init(&body, 0);
    mr_buf_init(&block, 0);
    mr_notify_title(n, &t);
    mr_notify_mail_block(n, &block);

    if (link && link[0])
        mr_buf_printf(&body, "[Ticket #%lld](%s)", (long long)n->ticket_number,
                      link);
    else
        mr_buf_printf(&body, "Ticket #%lld", (long long)n->ticket_number);
    mr_notify_queue_priority(n, &body);
    mr_buf_puts(&body, "\n\n");
    size_t fence = longest_backticks(&block) + 1;
    if (fence < 3)
        fence = 3;
    for (size_t i = 0; i < fence; i++)
        mr_buf_putc(&body, '`');
    mr_buf_puts(&body, "text\n");
    mr_buf_append(&body, block.p, block.len);
    mr_buf_putc(&body, '\n');
    for (size_t i = 0; i < fence; i++)
        mr_buf_putc(&body, '`');
    mr_buf_printf(&body, "\n\n<sub>mailroom notification %s/%lld</sub>\n",
                  n->tenant ? n->tenant : "", (long long)n->id);

    struct mr_json j;
    mr_json_init(&j, &out->body, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "title");
    mr_json_str(&j, mr_buf_span(&t));
    mr_json_key(&j, "body");
    mr_json_str(&j, mr_buf_span(&body));
    mr_notify_json_labels(&j, x);
    mr_json_obj_end(&j);

    struct mr_buf u;
    mr_buf_init(&u, 0);
    mr_buf_printf(&u, "%s/repos/%s/issues", x->api_url, x->repo);
    out->url = mr_buf_detach(&u, NULL);
    mr_notify_http_header(out, "Accept", "", "application/vnd.github+json");
    mr_notify_http_header(out, "Authorization", "Bearer ", x->token);
    mr_notify_http_header(out, "X-GitHub-Api-Version", "", "2022-11-28");
    mr_notify_http_header(out, "User-Agent", "", MR_NOTIFY_USER_AGENT);
    mr_notify_http_header(out, "Content-Type", "", "application/json");
    mr_buf_release(&t);
    mr_buf_release(&body);
    mr_buf_release(&block);
    return 0;
}

int mr_github_parse_created(const char *body, size_t len, char **link_json,
                            char **ref, struct mr_error *err)
{
    *link_json = NULL;
    *ref = NULL;
    json_error_t je;
    json_t *o = json_loadb(body ? body : "", body ? len : 0, 0, &je);
    const char *url = json_string_value(json_object_get(o, "html_url"));
    if (url == NULL || (strncmp(url, "https://", 8) != 0 &&
                        strncmp(url, "http://", 7) != 0)) {
        json_decref(o);
        return mr_error_set(err, MR_EINVAL,
                            "GitHub's answer has no html_url");
    }
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "kind");
    mr_json_cstr(&j, "github");
    mr_json_key(&j, "url");
    mr_json_cstr(&j, url);
    json_t *num = json_object_get(o, "number");
    if (json_is_integer(num)) {
        mr_json_key(&j, "number");
        mr_json_int(&j, json_integer_value(num));
    }
    mr_json_obj_end(&j);
    *link_json = mr_buf_detach(&b, NULL);
    *ref = mr_xstrndup(url, strlen(url));
    json_decref(o);
    return 0;
}
