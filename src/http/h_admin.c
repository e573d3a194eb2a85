/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_admin.c - POST /api/v1/admin/reload (admin tokens only): loads the
 * configuration file again (its integrations and webhook subscriptions
 * are applied; other keys that changed are listed as needing a restart,
 * outbound/config_reload.h) and the rules file (docs/rules.md). Each file
 * replaces what is in force only when it has no error; otherwise what is
 * in force stays and the answer is a 422 problem listing every problem
 * with its file, line and column, as `mailroom config check` and
 * `mailroom rules check` would.
 */
#include "http/http-private.h"

#include <stdio.h>

#include "config/config_slot.h"
#include "outbound/config_reload.h"
#include "outbound/notify.h"
#include "ticket/rules_slot.h"

static void log_line(void *ctx, const char *msg)
{
    const struct mr__http_ctx *hc = ctx;
    hc->deps.log(hc->deps.log_ctx, msg);
}

static void say(const struct mr__http_ctx *ctx, const char *msg)
{
    if (ctx->deps.log)
        ctx->deps.log(ctx->deps.log_ctx, msg);
}

/* What happened to one file, for both answers. */
static const char *outcome(const char *path, int rc)
{
    return path == NULL ? "none" : rc == MR_OK ? "reloaded" : "kept";
}

static void diag_lines(struct mr_json *j, const char *path,
                       const struct mr_config_diags *d,
                       const struct mr_error *err)
{
    for (size_t i = 0; i < d->n; i++) {
        char line[1400];
        snprintf(line, sizeof line, "%s:%d:%d: %s", path, d->items[i].line,
                 d->items[i].column, d->items[i].msg);
        mr_json_cstr(j, line);
    }
    if (d->n == 0)
        mr_json_cstr(j, err->msg);
}

static void config_summary(struct mr_json *j, const char *path,
                           const struct mr_config_reload_result *res)
{
    mr_json_obj_begin(j);
    mr_json_key(j, "file");
    mr_json_cstr(j, path);
    mr_json_key(j, "integrations");
    mr_json_uint(j, res->nintegrations);
    mr_json_key(j, "webhooks");
    mr_json_uint(j, res->nwebhooks);
    mr_json_key(j, "restart_required");
    mr_json_arr_begin(j);
    for (size_t i = 0; i < res->nrestart && i < MR_CONFIG_TOP_KEYS; i++)
        mr_json_cstr(j, res->restart[i]);
    mr_json_arr_end(j);
    mr_json_obj_end(j);
}

void mr__http_admin_reload(const struct mr__http_ctx *ctx,
                           struct mr__http_request *req,
                           struct mr__http_response *resp)
{
    (void)req;
    struct mr_rules_slot *slot = ctx->deps.rules;
    struct mr_config_reloader *cr = ctx->deps.config_reload;
    const char *path = mr_rules_slot_path(slot);
    const char *cpath = mr_config_reloader_path(cr);
    if (!path && !cpath) {
        mr__http_problem(resp, 409, "no configuration file and no rules "
                         "file (the `rules` key): nothing to reload");
        return;
    }

    struct mr_config_diags cdiags = {0};
    struct mr_error cerr = {0};
    struct mr_config_reload_result cres;
    int crc = cpath ? mr_config_reload(cr, &cres, &cdiags, &cerr) : MR_OK;
    if (crc != MR_OK && crc != MR_EINVAL && crc != MR_EIO) {
        /* The file was fine; the store would not take its webhooks. */
        char line[400];
        snprintf(line, sizeof line, "configuration reload (API): %s",
                 cerr.msg);
        say(ctx, line);
        mr_config_diags_free(&cdiags);
        mr__http_problem(resp, 503, "the configuration was not reloaded: "
                         "the store is not available; try again");
        return;
    }

    struct mr_config_diags diags = {0};
    struct mr_error err = {0};
    size_t ntenants = 0, nrules = 0;
    int rc = path ? mr_rules_slot_reload(slot, &diags, &ntenants, &nrules,
                                         &err)
                  : MR_OK;
    char line[900];
    if (cpath && crc == MR_OK) {
        int o = snprintf(line, sizeof line,
                         "configuration reloaded from %s (API): %zu "
                         "integrations, %zu webhooks applied",
                         cpath, cres.nintegrations, cres.nwebhooks);
        for (size_t i = 0; i < cres.nrestart && o > 0 &&
                           (size_t)o < sizeof line;
             i++)
            o += snprintf(line + o, sizeof line - (size_t)o, "%s%s",
                          i ? ", " : "; changed, needs a restart: ",
                          cres.restart[i]);
        say(ctx, line);
    }
    if (path && rc == MR_OK) {
        snprintf(line, sizeof line, "rules reloaded from %s (API)", path);
        say(ctx, line);
    }
    /* Rules that notify a name the integrations in force lack. */
    if (ctx->deps.log && path && rc == MR_OK) {
        struct mr_config_ref *cref =
            mr_config_slot_acquire(mr_config_reloader_slot(cr));
        const struct mr_config *xcfg =
            cref ? mr_config_ref_get(cref) : ctx->deps.cfg;
        struct mr_rules_ref *ref = mr_rules_slot_acquire(slot);
        if (ref && xcfg)
            (void)mr_notify_check_rules(xcfg, mr_rules_ref_get(ref), log_line,
                                        (void *)ctx);
        mr_rules_slot_release(slot, ref);
        mr_config_slot_release(mr_config_reloader_slot(cr), cref);
    }

    struct mr_json j;
    if (crc == MR_OK && rc == MR_OK) {
        mr__http_json(resp, 200, &j);
        mr_json_obj_begin(&j);
        mr_json_key(&j, "rules");
        mr_json_cstr(&j, outcome(path, rc));
        if (path) {
            mr_json_key(&j, "file");
            mr_json_cstr(&j, path);
            mr_json_key(&j, "tenants");
            mr_json_uint(&j, ntenants);
            mr_json_key(&j, "rule_count");
            mr_json_uint(&j, nrules);
        }
        mr_json_key(&j, "config");
        if (cpath)
            config_summary(&j, cpath, &cres);
        else
            mr_json_null(&j);
        mr_json_obj_end(&j);
        mr_config_diags_free(&cdiags);
        mr_config_diags_free(&diags);
        return;
    }
    resp->status = 422;
    resp->content_type = "application/problem+json";
    mr_buf_reset(&resp->body);
    mr_json_init(&j, &resp->body, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "type");
    mr_json_cstr(&j, "about:blank");
    mr_json_key(&j, "title");
    mr_json_cstr(&j, "Unprocessable Content");
    mr_json_key(&j, "status");
    mr_json_int(&j, 422);
    mr_json_key(&j, "detail");
    char detail[900];
    if (crc != MR_OK && rc != MR_OK)
        snprintf(detail, sizeof detail, "neither file was reloaded, what is "
                 "in force stays: %s; %s", cerr.msg, err.msg);
    else if (crc != MR_OK)
        snprintf(detail, sizeof detail, "the configuration was not "
                 "reloaded, the integrations and webhooks in force stay: %s",
                 cerr.msg);
    else
        snprintf(detail, sizeof detail, "%s: the rules were not reloaded, "
                 "the previous rules stay: %s", path, err.msg);
    mr_json_cstr(&j, detail);
    mr_json_key(&j, "rules");
    mr_json_cstr(&j, outcome(path, rc));
    mr_json_key(&j, "config");
    mr_json_cstr(&j, outcome(cpath, crc));
    if (cpath && crc == MR_OK) {
        mr_json_key(&j, "config_result");
        config_summary(&j, cpath, &cres);
    }
    mr_json_key(&j, "errors");
    mr_json_arr_begin(&j);
    if (crc != MR_OK)
        diag_lines(&j, cpath, &cdiags, &cerr);
    if (rc != MR_OK)
        diag_lines(&j, path, &diags, &err);
    mr_json_arr_end(&j);
    mr_json_obj_end(&j);
    if (crc != MR_OK) {
        snprintf(line, sizeof line, "configuration reload (API): %s",
                 cerr.msg);
        say(ctx, line);
    }
    mr_config_diags_free(&cdiags);
    mr_config_diags_free(&diags);
}
