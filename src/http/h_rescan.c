/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_rescan.c - an operator's antivirus rescans (admin tokens, the token's
 * tenant only; docs/attachments.md, docs/api.md):
 *   POST /api/v1/attachments/{id}/rescan  one attachment, whatever its
 *        verdict: 202 with the attachment, now pending again
 *   POST /api/v1/attachments/rescan       those a filter matches (a JSON
 *        body: state, since or received_after, limit, dry_run): 202 with
 *        how many were queued
 *
 * Without clamd in the configuration both are 409: nothing would scan
 * what they queue, and the attachments would stay pending for good. It
 * is 409, not 503, because waiting does not help: the configuration must
 * change. An attachment without bytes (over the size limit, or a
 * provider's) is 409 too: there is nothing to scan. Another tenant's
 * attachment is 404 like one that does not exist.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "http/http-private.h"
#include "http/ticket_json.h"
#include "scan/rescan.h"

/* Bulk rescans of one request are bounded by the store's batches, not by
 * this; it only keeps a typo from queueing the whole history. */
#define RESCAN_LIMIT_MAX 10000000LL

static bool need_clamd(const struct mr__http_ctx *ctx,
                       struct mr__http_response *resp)
{
    if (mr_scan_configured(ctx->deps.cfg))
        return true;
    mr__http_problem(resp, 409,
                     "no antivirus is configured (the `clamd` section): "
                     "nothing would scan the attachment");
    return false;
}

static void log_line(const struct mr__http_ctx *ctx, const char *line)
{
    if (ctx->deps.log)
        ctx->deps.log(ctx->deps.log_ctx, line);
}

void mr__http_rescan_attachment(const struct mr__http_ctx *ctx,
                                struct mr__http_request *req,
                                struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_path_id(req, resp, &id) || !need_clamd(ctx, resp))
        return;
    struct mr_error err = {0};
    struct mr_attachment_view a;
    if (mr_store_scan_rescan(ctx->deps.store, req->principal.tenant, id,
                             mr__http_now_ms(ctx), &a, &err) < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    char line[200];
    snprintf(line, sizeof line,
             "attachment %lld of tenant %.64s queued for a rescan (API; it "
             "was %s)",
             (long long)id, req->principal.tenant,
             a.scan_previous ? a.scan_previous : "not scanned");
    log_line(ctx, line);
    struct mr_json j;
    mr__http_json(resp, 202, &j);
    mr_http_attachment_json(&j, &a);
    mr_attachment_view_clear(&a);
}

/* A string member of the body, or NULL; false (after answering 400) when
 * it is there but not a string. */
static bool body_str(json_t *doc, const char *key, const char **out,
                     struct mr__http_response *resp)
{
    json_t *v = json_object_get(doc, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        mr__http_problem_field(resp, 400, key, "%s is a string", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* The body's filters into f. false after answering 400. */
static bool read_filter(const struct mr__http_ctx *ctx,
                        struct mr__http_request *req,
                        struct mr__http_response *resp,
                        struct mr_scan_rescan_filter *f)
{
    static const char *const keys[] = {"state", "since", "received_after",
                                       "limit", "dry_run"};
    json_t *doc = NULL;
    if (req->body_len > 0) {
        json_error_t jerr;
        doc = json_loadb(req->body, req->body_len, 0, &jerr);
        if (doc == NULL) {
            mr__http_problem(resp, 400, "the body is not JSON: %s", jerr.text);
            return false;
        }
    } else {
        doc = json_object();
    }
    bool ok = false;
    const char *key;
    json_t *v;
    if (!json_is_object(doc)) {
        mr__http_problem(resp, 400, "the body is a JSON object");
        goto out;
    }
    /* A misspelt filter would widen the rescan silently. */
    json_object_foreach(doc, key, v)
    {
        size_t i = 0;
        while (i < sizeof keys / sizeof keys[0] && strcmp(keys[i], key) != 0)
            i++;
        if (i == sizeof keys / sizeof keys[0]) {
            mr__http_problem_field(resp, 400, key,
                                   "unknown member '%.40s' (state, since, "
                                   "received_after, limit, dry_run)",
                                   key);
            goto out;
        }
    }
    const char *state, *since, *after;
    if (!body_str(doc, "state", &state, resp) ||
        !body_str(doc, "since", &since, resp) ||
        !body_str(doc, "received_after", &after, resp))
        goto out;
    v = json_object_get(doc, "limit");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > RESCAN_LIMIT_MAX) {
            mr__http_problem_field(resp, 400, "limit",
                                   "limit is an integer from 1 to %lld",
                                   RESCAN_LIMIT_MAX);
            goto out;
        }
        f->limit = json_integer_value(v);
    }
    v = json_object_get(doc, "dry_run");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            mr__http_problem_field(resp, 400, "dry_run",
                                   "dry_run is true or false");
            goto out;
        }
        f->dry_run = json_is_true(v);
    }
    struct mr_error err = {0};
    if (mr_scan_rescan_filter(state, since, after, mr__http_now_ms(ctx), f,
                              &err) < 0) {
        mr__http_problem(resp, 400, "%s", err.msg);
        goto out;
    }
    ok = true;
out:
    json_decref(doc);
    return ok;
}

void mr__http_rescan_attachments(const struct mr__http_ctx *ctx,
                                 struct mr__http_request *req,
                                 struct mr__http_response *resp)
{
    static const char *const names[] = {"error", "clean", "infected", "all"};
    struct mr_scan_rescan_filter f = {.tenant = req->principal.tenant};
    if (!read_filter(ctx, req, resp, &f) || !need_clamd(ctx, resp))
        return;
    int64_t n = 0;
    struct mr_error err = {0};
    if (mr_store_scan_rescan_many(ctx->deps.store, &f, mr__http_now_ms(ctx), &n,
                                  &err) < 0) {
        if (n > 0) {
            char line[300];
            snprintf(line, sizeof line,
                     "a bulk rescan of tenant %.64s stopped after queueing "
                     "%lld attachments",
                     f.tenant, (long long)n);
            log_line(ctx, line);
        }
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    if (!f.dry_run) {
        char line[200];
        snprintf(line, sizeof line,
                 "%lld %s attachments of tenant %.64s queued for a rescan "
                 "(API)",
                 (long long)n, names[f.state], f.tenant);
        log_line(ctx, line);
    }
    struct mr_json j;
    mr__http_json(resp, f.dry_run ? 200 : 202, &j);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "queued");
    mr_json_int(&j, n);
    mr_json_key(&j, "dry_run");
    mr_json_bool(&j, f.dry_run);
    mr_json_key(&j, "state");
    mr_json_cstr(&j, names[f.state]);
    mr_json_key(&j, "received_after");
    mr__http_json_time(&j, f.received_after);
    mr_json_obj_end(&j);
}
