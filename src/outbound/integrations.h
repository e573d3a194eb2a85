/* SPDX-License-Identifier: Apache-2.0 */
/*
 * integrations.h - the requests the integrations make (docs/integrations.md):
 * pure functions from a configured integration and a due notification
 * (the ticket and the message a rule's notify action named) to one HTTP
 * request, and from the service's answer to what is recorded on the
 * ticket. One file per kind: slack.c, github.c, jira.c; the shared pieces
 * (the excerpt, the ticket link) in integrations.c. No I/O here: the
 * sender (notify.c) makes the request through http_out.h.
 *
 * Only a sanitized excerpt of the message leaves the server: the stored
 * visible reply (or plain text), controls dropped, whitespace folded,
 * invalid UTF-8 replaced, cut at MR_NOTIFY_EXCERPT_MAX characters.
 *
 * Ownership: an mr_notify_http owns its URL, headers and body; release
 * it with mr_notify_http_release. Parsed answers are malloc'ed strings
 * the caller frees.
 */
#ifndef MR_OUTBOUND_INTEGRATIONS_H
#define MR_OUTBOUND_INTEGRATIONS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/error.h"

#define MR_NOTIFY_EXCERPT_MAX 300 /* characters */
#define MR_NOTIFY_TITLE_MAX 200   /* characters of an issue title */
#define MR_NOTIFY_HEADERS_MAX 8
#define MR_NOTIFY_USER_AGENT "mailroom-integrations"

/* One request to make. */
struct mr_notify_http {
    char *url;
    char *headers[MR_NOTIFY_HEADERS_MAX]; /* "Name: value" */
    size_t nheaders;
    struct mr_buf body;
};
void mr_notify_http_init(struct mr_notify_http *h);
void mr_notify_http_release(struct mr_notify_http *h);
/* Adds "name: prefix value" (at most MR_NOTIFY_HEADERS_MAX headers). */
void mr_notify_http_header(struct mr_notify_http *h, const char *name,
                           const char *prefix, const char *value);

/* The excerpt of text (may be NULL) appended to out: see above. At most
 * max characters, then "…". */
void mr_notify_excerpt(const char *text, size_t max, struct mr_buf *out);

/* Text for one line (a subject, a name): like the excerpt, cut at max. */
void mr_notify_line(const char *text, size_t max, struct mr_buf *out);

/* The ticket's link from the configuration's ticket_url template ("{id}",
 * "{number}" replaced), appended to out; nothing when tmpl is NULL. */
void mr_notify_ticket_link(const char *tmpl, int64_t id, int64_t number,
                           struct mr_buf *out);

/* "Alice <alice@example.com>", "alice@example.com" or "unknown sender". */
void mr_notify_from(const struct mr_notification *n, struct mr_buf *out);

/* The lines every issue carries, in a block the tracker shows verbatim
 * (the excerpt and mail headers are never read as markup: no mentions,
 * no images): "From: ...\nSubject: ...\nMessage-ID: ...\n\nexcerpt". */
void mr_notify_mail_block(const struct mr_notification *n,
                          struct mr_buf *out);

/* The issue title: "[#NUMBER] subject", at most MR_NOTIFY_TITLE_MAX
 * characters of subject. */
void mr_notify_title(const struct mr_notification *n, struct mr_buf *out);

/* " (queue: Q, priority: P)" with what the ticket has of the two;
 * nothing when it has neither. */
void mr_notify_queue_priority(const struct mr_notification *n,
                              struct mr_buf *out);

/* The integration's labels as key "labels" of the object j is in;
 * nothing when it has none. */
struct mr_json;
void mr_notify_json_labels(struct mr_json *j, const struct mr_integration *x);

/* ---- Slack-compatible incoming webhook (slack.c) ---------------------- */

/* Escapes Slack's control characters & < > in s[0..n) into out. */
void mr_slack_escape(const char *s, size_t n, struct mr_buf *out);

/* POST x->url {"text": summary, "blocks": [...]}; link may be NULL. */
int mr_slack_build(const struct mr_integration *x,
                   const struct mr_notification *n, const char *link,
                   struct mr_notify_http *out, struct mr_error *err);

/* ---- GitHub Issues (github.c) ----------------------------------------- */

/* POST {api_url}/repos/{repo}/issues with the token (Bearer) and GitHub's
 * media type and API version; {title, body, labels}. The body carries the
 * message_id and the notification's id for traceability. */
int mr_github_build(const struct mr_integration *x,
                    const struct mr_notification *n, const char *link,
                    struct mr_notify_http *out, struct mr_error *err);

/* From a 201 answer: *link_json, the object recorded on the ticket
 * ({"kind": "github", "url": html_url, "number": N}), and *ref
 * (html_url). MR_EINVAL when the answer has no html_url. */
int mr_github_parse_created(const char *body, size_t len, char **link_json,
                            char **ref, struct mr_error *err);

/* ---- Jira REST API v2 (jira.c) ---------------------------------------- */

/* POST {base_url}/rest/api/2/issue with Basic auth (user:token);
 * {"fields": {project: {key}, summary, description, issuetype: {name}
 * [, labels]}}. */
int mr_jira_build(const struct mr_integration *x,
                  const struct mr_notification *n, const char *link,
                  struct mr_notify_http *out, struct mr_error *err);

/* From a 201 answer ({"id", "key", "self"}): *link_json ({"kind": "jira",
 * "key", "url": base_url/browse/KEY, "self"}) and *ref (the key). */
int mr_jira_parse_created(const struct mr_integration *x, const char *body,
                          size_t len, char **link_json, char **ref,
                          struct mr_error *err);

#endif
