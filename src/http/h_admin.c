/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_admin.c - POST /api/v1/admin/reload (admin tokens only): loads the
 * rules file again (docs/rules.md). The new rules replace the old only
 * when the file has no error; otherwise the old rules stay and the answer
 * is a 422 problem listing every problem, as `mailroom rules check` would.
 */
#include "http/http-private.h"

#include <stdio.h>

#include "outbound/notify.h"
#include "ticket/rules_slot.h"

static void log_line(void *ctx, const char *msg)
{
    const struct mr__http_ctx *hc = ctx;
    hc->deps.log(hc->deps.log_ctx, msg);
}

void mr__http_admin_reload(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp)
{
    (void)req;
    struct mr_rules_slot *slot = ctx->deps.rules;
    const char *path = mr_rules_slot_path(slot);
    if (!path) {
        mr__http_problem(resp, 409,
                         "no rules file is configured (the `rules` key)");
        return;
    }
    struct mr_config_diags diags = {0};
    struct mr_error err = {0};
    size_t ntenants = 0, nrules = 0;
    int rc = mr_rules_slot_reload(slot, &diags, &ntenants, &nrules, &err);
    if (rc == MR_OK) {
        struct mr_json j;
        mr__http_json(resp, 200, &j);
        mr_json_obj_begin(&j);
        mr_json_key(&j, "rules");
        mr_json_cstr(&j, "reloaded");
        mr_json_key(&j, "file");
        mr_json_cstr(&j, path);
        mr_json_key(&j, "tenants");
        mr_json_uint(&j, ntenants);
        mr_json_key(&j, "rule_count");
        mr_json_uint(&j, nrules);
        mr_json_obj_end(&j);
        if (ctx->deps.log) {
            char line[600];
            snprintf(line, sizeof line, "rules reloaded from %s (API)", path);
            ctx->deps.log(ctx->deps.log_ctx, line);
            struct mr_rules_ref *ref = mr_rules_slot_acquire(slot);
            if (ref && ctx->deps.cfg)
                (void)mr_notify_check_rules(ctx->deps.cfg,
                                            mr_rules_ref_get(ref), log_line,
                                            (void *)ctx);
            mr_rules_slot_release(slot, ref);
        }
        mr_config_diags_free(&diags);
        return;
    }
    resp->status = 422;
    resp->content_type = "application/problem+json";
    mr_buf_reset(&resp->body);
    struct mr_json j;
    mr_json_init(&j, &resp->body, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "type");
    mr_json_cstr(&j, "about:blank");
    mr_json_key(&j, "title");
    mr_json_cstr(&j, "Unprocessable Content");
    mr_json_key(&j, "status");
    mr_json_int(&j, 422);
    mr_json_key(&j, "detail");
    char detail[400];
    snprintf(detail, sizeof detail, "%s: the rules were not reloaded, the "
             "previous rules stay: %s", path, err.msg);
    mr_json_cstr(&j, detail);
    mr_json_key(&j, "errors");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < diags.n; i++) {
        char line[300];
        snprintf(line, sizeof line, "%d:%d: %s", diags.items[i].line,
                 diags.items[i].column, diags.items[i].msg);
        mr_json_cstr(&j, line);
    }
    if (diags.n == 0)
        mr_json_cstr(&j, err.msg);
    mr_json_arr_end(&j);
    mr_json_obj_end(&j);
    mr_config_diags_free(&diags);
}
