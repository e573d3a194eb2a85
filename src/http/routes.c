/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routes.c - the API's route table and mr_http_start, which hands it to
 * the daemon (server.c) with the store-backed token check. docs/api.md
 * describes every row.
 */
#include "http/http-private.h"

#define READERS (MR_AUTH_ADMIN | MR_AUTH_AGENT | MR_AUTH_READ)
#define INGESTERS (MR_AUTH_ADMIN | MR_AUTH_INGEST)

static const struct mr__http_route routes[] = {
    {.method = "GET", .pattern = "/healthz", .handle = mr__http_healthz},
    {.method = "GET", .pattern = "/readyz", .handle = mr__http_readyz},
    {.method = "GET", .pattern = "/metrics", .handle = mr__http_metrics},
    {.method = "GET", .pattern = "/api/v1/health", .handle = mr__http_health},
    {.method = "POST",
     .pattern = "/api/v1/messages",
     .roles = INGESTERS,
     .content_type = "message/rfc822",
     .handle = mr__http_post_message,
     .counted = true,
     .channel = MR_CH_HTTP},
    {.method = "POST",
     .pattern = "/inbox/webhook",
     .early = mr__http_webhook_early,
     .handle = mr__http_webhook,
     .counted = true,
     .channel = MR_CH_WEBHOOK},
    {.method = "GET",
     .pattern = "/api/v1/tickets",
     .roles = READERS,
     .handle = mr__http_list_tickets},
    {.method = "GET",
     .pattern = "/api/v1/tickets/{id}",
     .roles = READERS,
     .handle = mr__http_get_ticket},
    {.method = "PATCH",
     .pattern = "/api/v1/tickets/{id}",
     .roles = MR_AUTH_ADMIN | MR_AUTH_AGENT,
     .content_type = "application/json",
     .handle = mr__http_patch_ticket},
    {.method = "POST",
     .pattern = "/api/v1/tokens/exchange",
     .roles = READERS | MR_AUTH_INGEST,
     .handle = mr__http_exchange_token},
    {.method = "GET",
     .pattern = "/api/v1/messages/{id}/raw",
     .roles = READERS,
     .handle = mr__http_get_raw_message},
    {.method = "GET",
     .pattern = "/api/v1/attachments/{id}",
     .roles = READERS,
     .handle = mr__http_get_attachment},
    {.method = "POST",
     .pattern = "/api/v1/attachments/{id}/rescan",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_rescan_attachment},
    {.method = "POST",
     .pattern = "/api/v1/attachments/rescan",
     .roles = MR_AUTH_ADMIN,
     .content_type = "application/json",
     .handle = mr__http_rescan_attachments},
    {.method = "GET",
     .pattern = "/api/v1/inline/{id}",
     .roles = READERS,
     .handle = mr__http_get_inline},
    {.method = "GET",
     .pattern = "/api/v1/events",
     .roles = READERS,
     .handle = mr__http_list_events},
    {.method = "POST",
     .pattern = "/api/v1/consumers/{id}/claim",
     .roles = READERS,
     .handle = mr__http_claim_events},
    {.method = "POST",
     .pattern = "/api/v1/consumers/{id}/ack",
     .roles = READERS,
     .content_type = "application/json",
     .handle = mr__http_ack_events},
    {.method = "GET",
     .pattern = "/api/v1/ignored",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_list_ignored},
    {.method = "POST",
     .pattern = "/api/v1/ignored/{id}/release",
     .roles = MR_AUTH_ADMIN | MR_AUTH_AGENT,
     .handle = mr__http_release_ignored},
    {.method = "GET",
     .pattern = "/api/v1/stream",
     .roles = READERS,
     .handle = mr__http_stream_events},
    {.method = "POST",
     .pattern = "/api/v1/webhooks",
     .roles = MR_AUTH_ADMIN,
     .content_type = "application/json",
     .handle = mr__http_create_webhook},
    {.method = "GET",
     .pattern = "/api/v1/webhooks",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_list_webhooks},
    {.method = "GET",
     .pattern = "/api/v1/webhooks/{id}",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_get_webhook},
    {.method = "PATCH",
     .pattern = "/api/v1/webhooks/{id}",
     .roles = MR_AUTH_ADMIN,
     .content_type = "application/json",
     .handle = mr__http_patch_webhook},
    {.method = "DELETE",
     .pattern = "/api/v1/webhooks/{id}",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_delete_webhook},
    {.method = "GET",
     .pattern = "/api/v1/deliveries",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_list_deliveries},
    {.method = "GET",
     .pattern = "/api/v1/deliveries/{id}",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_get_delivery},
    {.method = "POST",
     .pattern = "/api/v1/deliveries/{id}/redrive",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_redrive_delivery},
    {.method = "GET",
     .pattern = "/api/v1/outbound-mail",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_list_outbound_mail},
    {.method = "POST",
     .pattern = "/api/v1/outbound-mail/{id}/retry",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_retry_outbound_mail},
    {.method = "GET",
     .pattern = "/api/v1/notifications",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_list_notifications},
    {.method = "POST",
     .pattern = "/api/v1/notifications/{id}/redrive",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_redrive_notification},
    {.method = "POST",
     .pattern = "/api/v1/admin/reload",
     .roles = MR_AUTH_ADMIN,
     .handle = mr__http_admin_reload},
};

static int authenticate(const struct mr__http_ctx *ctx,
                        const char *authorization,
                        struct mr_auth_principal *out, struct mr_error *err)
{
    return mr_auth_check_at(ctx->deps.store, authorization,
                            mr__http_now_ms(ctx), out, err);
}

int mr_http_start(const char *listen, const struct mr_http_deps *deps,
                  struct mr_http_server **out, struct mr_error *err)
{
    *out = NULL;
    if (deps == NULL || deps->cfg == NULL || deps->store == NULL ||
        deps->blob == NULL || deps->intake == NULL)
        return mr_error_set(err, MR_EINVAL,
                            "the HTTP server needs cfg, store, blob and "
                            "intake");
    const struct mr_config *cfg = deps->cfg;
    struct mr__http_serve_options o = {
        .listen = listen,
        .routes = routes,
        .nroutes = sizeof routes / sizeof routes[0],
        .authenticate = authenticate,
        .threads = deps->threads,
        .connection_limit = cfg->limits.max_connections,
    };
    o.ctx.deps = *deps;
    /* One cap for every body; the raw message route is the one that
     * needs it, and the config's default is the SMTP message size. */
    o.ctx.body_cap = cfg->limits.http_body_size ? cfg->limits.http_body_size
                     : cfg->limits.message_size ? cfg->limits.message_size
                                                : (uint64_t)50 << 20;
    o.ctx.health = mr__http_health_cache_new();
    int rc = mr__http_serve(&o, out, err);
    if (rc < 0)
        mr__http_health_cache_free(o.ctx.health);
    return rc;
}
