/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jira.c - Jira (docs/integrations.md): "Create issue" of the REST API
 * v2, POST {base_url}/rest/api/2/issue with Basic authentication (the
 * account and an API token, as Jira Cloud documents), answered 201 with
 * {"id", "key", "self"}.
 *
 * v2 descriptions are wiki markup ([~user] mentions, !image! embeds,
 * links); everything from the mail goes in a {noformat} block, which
 * Jira shows verbatim, and the one sequence that would end it is broken.
 */
#include "outbound/integrations.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

/* b's text with every "{noformat" (any case) made "(noformat". */
static void put_noformat_safe(struct mr_buf *out, const struct mr_buf *b)
{
    static const char tag[] = "{noformat";
    for (size_t i = 0; i < b->len; i++) {
        if (b->p[i] == '{' && b->len - i >= sizeof tag - 1 &&
            strncasecmp(b->p + i, tag, sizeof tag - 1) == 0)
            mr_buf_putc(out, '(');
        else
            mr_buf_putc(out, b->p[i]);
    }
}

int mr_jira_build(const struct mr_integration *x,
                  const struct mr_notification *n, const char *link,
                  struct mr_notify_http *out, struct mr_error *err)
{
    if (x->kind != MR_INTEGRATION_JIRA || !x->base_url || !x->project ||
        !x->user || !x->token || !x->issue_type)
        return mr_error_set(err, MR_EINVAL, "not a jira integration");
    struct mr_buf t, desc, block, cred;
    mr_buf_init(&t, 0);
    mr_buf_init(&desc, 0);
    mr_buf_init(&block, 0);
    mr_buf_init(&cred, 0);
    mr_notify_title(n, &t);
    mr_notify_mail_block(n, &block);

    mr_buf_printf(&desc, "Ticket #%lld", (long long)n->ticket_number);
    mr_notify_queue_priority(n, &desc);
    if (link && link[0] && !strpbrk(link, "|] \t\r\n"))
        mr_buf_printf(&desc, "\n[Open the ticket|%s]", link);
    mr_buf_puts(&desc, "\n{noformat}\n");
    put_noformat_safe(&desc, &block);
    mr_buf_puts(&desc, "\n{noformat}\n");
    mr_buf_printf(&desc, "mailroom notification %s/%lld",
                  n->tenant ? n->tenant : "", (long long)n->id);

    struct mr_json j;
    mr_json_init(&j, &out->body, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "fields");
    mr_json_obj_begin(&j);
    mr_json_key(&j, "project");
    mr_json_obj_begin(&j);
    mr_json_key(&j, "key");
    mr_json_cstr(&j, x->project);
    mr_json_obj_end(&j);
    mr_json_key(&j, "summary");
    mr_json_str(&j, mr_buf_span(&t));
    mr_json_key(&j, "description");
    mr_json_str(&j, mr_buf_span(&desc));
    mr_json_key(&j, "issuetype");
    mr_json_obj_begin(&j);
    mr_json_key(&j, "name");
    mr_json_cstr(&j, x->issue_type);
    mr_json_obj_end(&j);
    mr_notify_json_labels(&j, x);
    mr_json_obj_end(&j);
    mr_json_obj_end(&j);

    /* RFC 7617: base64 of "user:password". */
    mr_buf_printf(&cred, "%s:%s", x->user, x->token);
    size_t b64len = 4 * ((cred.len + 2) / 3) + 1;
    char *b64 = mr_xmalloc(b64len);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)cred.p,
                    (int)cred.len);
    mr_notify_http_header(out, "Authorization", "Basic ", b64);
    explicit_bzero(b64, b64len);
    free(b64);
    explicit_bzero(cred.p, cred.len);

    struct mr_buf u;
    mr_buf_init(&u, 0);
    mr_buf_printf(&u, "%s/rest/api/2/issue", x->base_url);
    out->url = mr_buf_detach(&u, NULL);
    mr_notify_http_header(out, "Accept", "", "application/json");
    mr_notify_http_header(out, "Content-Type", "", "application/json");
    mr_notify_http_header(out, "User-Agent", "", MR_NOTIFY_USER_AGENT);
    mr_buf_release(&t);
    mr_buf_release(&desc);
    mr_buf_release(&block);
    mr_buf_release(&cred);
    return 0;
}

/* A Jira issue key: PROJECT-123. */
static bool key_ok(const char *k)
{
    const char *dash = strrchr(k, '-');
    if (dash == NULL || dash == k || dash[1] == '\0' || strlen(k) > 255)
        return false;
    for (const char *p = k; p < dash; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    for (const char *p = dash + 1; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return true;
}

int mr_jira_parse_created(const struct mr_integration *x, const char *body,
                          size_t len, char **link_json, char **ref,
                          struct mr_error *err)
{
    *link_json = NULL;
    *ref = NULL;
    json_error_t je;
    json_t *o = json_loadb(body ? body : "", body ? len : 0, 0, &je);
    const char *key = json_string_value(json_object_get(o, "key"));
    const char *self = json_string_value(json_object_get(o, "self"));
    if (key == NULL || !key_ok(key)) {
        json_decref(o);
        return mr_error_set(err, MR_EINVAL,
                            "Jira's answer has no issue key");
    }
    struct mr_buf b, u;
    mr_buf_init(&b, 0);
    mr_buf_init(&u, 0);
    mr_buf_printf(&u, "%s/browse/%s", x->base_url, key);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "kind");
    mr_json_cstr(&j, "jira");
    mr_json_key(&j, "key");
    mr_json_cstr(&j, key);
    mr_json_key(&j, "url");
    mr_json_str(&j, mr_buf_span(&u));
    if (self && (strncmp(self, "https://", 8) == 0 ||
                 strncmp(self, "http://", 7) == 0)) {
        mr_json_key(&j, "self");
        mr_json_cstr(&j, self);
    }
    mr_json_obj_end(&j);
    *link_json = mr_buf_detach(&b, NULL);
    *ref = mr_xstrndup(key, strlen(key));
    mr_buf_release(&u);
    json_decref(o);
    return 0;
}
