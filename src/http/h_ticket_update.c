/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_ticket_update.c - PATCH /api/v1/tickets/{id}: agents change a ticket's
 * status, priority, queue, assignee and tags (docs/api.md).
 *
 * The body is a JSON object of just the fields to change; every key is
 * known or the request is refused, so a typo never passes as a no-op.
 * Errors name the field: 400 when the body or a value's JSON type is
 * wrong, 422 when a value of the right type is not allowed (an unknown
 * status, a tag too long). The store checks the values again and applies
 * the change with its ticket.updated event in one transaction
 * (mr_store_update_ticket); the answer is the ticket as GET gives it.
 *
 * Optimistic concurrency: the ticket's version is its ETag (GET and PATCH
 * send it). If-Match: "<version>" makes the change conditional (412 when
 * the ticket moved on); a "version" key in the body does the same for
 * clients that cannot set headers, answered 409.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http-private.h"

/* Either status and detail of the problem, with the field it is about. */
struct patch_problem {
    int status;
    const char *field;
    char detail[256];
};

static int fail(struct patch_problem *pp, int status, const char *field,
                const char *detail)
{
    pp->status = status;
    pp->field = field;
    snprintf(pp->detail, sizeof pp->detail, "%s: %s", field, detail);
    return -1;
}

/* A string, or (nullable) null -> *out NULL. */
static int get_text(json_t *v, const char *field, bool nullable,
                    const char **out, struct patch_problem *pp)
{
    if (json_is_string(v)) {
        *out = json_string_value(v);
        /* A NUL inside would cut the value short without anyone noticing. */
        if (strlen(*out) != json_string_length(v))
            return fail(pp, 422, field, "contains a NUL character");
        return 0;
    }
    if (nullable && json_is_null(v)) {
        *out = NULL;
        return 0;
    }
    return fail(pp, 400, field,
                nullable ? "must be a string or null" : "must be a string");
}

static int get_tags(json_t *v, const char *field, const char **out, size_t *n,
                    struct patch_problem *pp)
{
    if (!json_is_array(v))
        return fail(pp, 400, field, "must be an array of strings");
    size_t len = json_array_size(v);
    if (len > MR_TICKET_TAGS_MAX)
        return fail(pp, 422, field, "at most 100 tags");
    for (size_t i = 0; i < len; i++)
        if (get_text(json_array_get(v, i), field, false, &out[i], pp) < 0)
            return -1;
    *n = len;
    return 0;
}

struct patch_lists {
    const char *tags[MR_TICKET_TAGS_MAX];
    const char *add[MR_TICKET_TAGS_MAX];
    const char *remove[MR_TICKET_TAGS_MAX];
};

/* The body into p (strings borrowed from doc); *body_version gets a
 * "version" key (0 when none). */
static int parse_patch(json_t *doc, struct mr_ticket_patch *p,
                       struct patch_lists *l, int64_t *body_version,
                       struct patch_problem *pp)
{
    *body_version = 0;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        int rc = 0;
        if (strcmp(key, "status") == 0) {
            rc = get_text(v, "status", false, &p->status, pp);
        } else if (strcmp(key, "priority") == 0) {
            rc = get_text(v, "priority", false, &p->priority, pp);
        } else if (strcmp(key, "queue") == 0) {
            p->set_queue = true;
            rc = get_text(v, "queue", true, &p->queue, pp);
        } else if (strcmp(key, "assignee") == 0) {
            p->set_assignee = true;
            rc = get_text(v, "assignee", true, &p->assignee, pp);
        } else if (strcmp(key, "tags") == 0) {
            p->set_tags = true;
            p->tags = l->tags;
            rc = get_tags(v, "tags", l->tags, &p->ntags, pp);
        } else if (strcmp(key, "tags_add") == 0) {
            p->tags_add = l->add;
            rc = get_tags(v, "tags_add", l->add, &p->ntags_add, pp);
        } else if (strcmp(key, "tags_remove") == 0) {
            p->tags_remove = l->remove;
            rc = get_tags(v, "tags_remove", l->remove, &p->ntags_remove, pp);
        } else if (strcmp(key, "version") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1)
                rc = fail(pp, 400, "version",
                          "must be the ticket's version, an integer >= 1");
            else
                *body_version = json_integer_value(v);
        } else {
            pp->status = 400;
            pp->field = key;
            snprintf(pp->detail, sizeof pp->detail,
                     "unknown field '%.64s' (status, priority, queue, "
                     "assignee, tags, tags_add, tags_remove, version)",
                     key);
            rc = -1;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* If-Match: "*" (any version), or one entity tag "N" / W/"N". 0 and *v
 * set (0 for "*"); -1 when it names no version we give out (then it can
 * match nothing). */
static int parse_if_match(const char *h, int64_t *v)
{
    *v = 0;
    mr_span s = mr_span_trim(mr_span_cstr(h));
    if (s.n == 1 && s.p[0] == '*')
        return 0;
    if (s.n > 2 && s.p[0] == 'W' && s.p[1] == '/') {
        s.p += 2;
        s.n -= 2;
    }
    if (s.n < 3 || s.n > 20 || s.p[0] != '"' || s.p[s.n - 1] != '"')
        return -1;
    int64_t x = 0;
    for (size_t i = 1; i + 1 < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        x = x * 10 + (s.p[i] - '0');
    }
    if (x < 1)
        return -1;
    *v = x;
    return 0;
}

void mr__http_patch_ticket(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_parse_id(req->id, &id)) {
        mr__http_problem(resp, 404, "no such ticket");
        return;
    }
    json_error_t je;
    json_t *doc =
        json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(doc)) {
        if (doc)
            mr__http_problem(resp, 400, "the body must be a JSON object");
        else
            mr__http_problem(resp, 400, "the body is not JSON: %s", je.text);
        json_decref(doc);
        return;
    }
    struct mr_ticket_patch p;
    memset(&p, 0, sizeof p);
    struct patch_lists *lists = mr_xcalloc(1, sizeof *lists);
    struct patch_problem pp = {0};
    int64_t body_version = 0, match_version = 0;
    const char *im = mr__http_header(req, "If-Match");
    const char *field = NULL;
    struct mr_error err = {0};
    char actor[8 + MR_AUTH_PREFIX_LEN];
    snprintf(actor, sizeof actor, "api:%s", req->principal.prefix);
    p.actor = actor;

    if (parse_patch(doc, &p, lists, &body_version, &pp) < 0) {
        mr__http_problem_field(resp, pp.status, pp.field, "%s", pp.detail);
        goto out;
    }
    if (mr_store_ticket_patch_check(&p, &field, &err) < 0) {
        mr__http_problem_field(resp, 422, field, "%s", err.msg);
        goto out;
    }
    if (im &&
        (parse_if_match(im, &match_version) < 0 ||
         (match_version && body_version && match_version != body_version))) {
        mr__http_problem(resp, 412, "If-Match names no version of this ticket");
        goto out;
    }
    p.if_version = match_version ? match_version : body_version;
    struct mr_ticket_update_result res;
    int rc = mr_store_update_ticket(ctx->deps.store, req->principal.tenant, id,
                                    &p, &res, &err);
    if (rc == MR_ENOTFOUND) {
        mr__http_problem(resp, 404, "no such ticket");
    } else if (rc == MR_ECONFLICT) {
        mr__http_problem(resp, match_version ? 412 : 409, "%s", err.msg);
    } else if (rc == MR_EINVAL) {
        /* Past the check, only the tag count can be wrong: the sum of the
         * ticket's tags and tags_add. */
        mr__http_problem_field(resp, 422, "tags_add", "%s", err.msg);
    } else if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
    } else {
        mr__http_get_ticket(ctx, req, resp);
    }
out:
    free(lists);
    json_decref(doc);
}
