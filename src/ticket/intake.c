/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intake.c - spool, then queue; the acknowledgement waits for both.
 *
 * The raw bytes go to the blob store first (content-addressed, so a
 * message retried by its sender after a lost 250 costs no new space), then
 * one store call commits a job per tenant. A crash between the two leaves
 * an unreferenced blob, never a job without its bytes.
 */
#include "ticket/intake.h"

#include <jansson.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/clock.h"

#define TRACE_SLACK 4096 /* room for our Received: header */

struct mr_intake {
    const struct mr_config *cfg;
    struct mr_store *store;
    struct mr_blob *blob;
    struct mr_metrics *metrics;
    void (*notify)(void *ctx);
    void *notify_ctx;
};

/* What one tenant's job records of the envelope. */
struct tenant_group {
    const struct mr_tenant *tenant;
    const struct mr_inbox *inbox; /* of the first recipient routed here */
    char tag[65];
    size_t first, count;          /* recipients, by index into order[] */
};

int mr_intake_new(const struct mr_config *cfg, struct mr_store *store,
                  struct mr_blob *blob, struct mr_metrics *metrics,
                  struct mr_intake **out, struct mr_error *err)
{
    if (!cfg || !store || !blob || !metrics)
        return mr_error_set(err, MR_EINVAL, "intake needs config, store, "
                                            "blob store and metrics");
    struct mr_intake *in = mr_xcalloc(1, sizeof *in);
    in->cfg = cfg;
    in->store = store;
    in->blob = blob;
    in->metrics = metrics;
    *out = in;
    return MR_OK;
}

void mr_intake_free(struct mr_intake *in)
{
    free(in);
}

void mr_intake_on_enqueue(struct mr_intake *in, void (*fn)(void *ctx),
                          void *ctx)
{
    in->notify = fn;
    in->notify_ctx = ctx;
}

static void notify(struct mr_intake *in)
{
    if (in->notify)
        in->notify(in->notify_ctx);
}

void mr_intake_wake(struct mr_intake *in)
{
    if (in)
        notify(in);
}

int mr_intake_route(struct mr_intake *in, const char *rcpt,
                    struct mr_route *out, struct mr_error *err)
{
    return mr_config_route(in->cfg, rcpt, out, err);
}

static void write_payload(struct mr_buf *out, const struct mr_intake_env *env,
                          const struct tenant_group *g, const size_t *order)
{
    struct mr_json j;
    mr_json_init(&j, out, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "mail_from");
    mr_json_cstr(&j, env->mail_from);
    mr_json_key(&j, "rcpt_to");
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < g->count; i++)
        mr_json_cstr(&j, env->rcpt[order[g->first + i]]);
    mr_json_arr_end(&j);
    mr_json_key(&j, "inbox");
    mr_json_cstr(&j, g->inbox ? g->inbox->name : NULL);
    mr_json_key(&j, "tag");
    mr_json_cstr(&j, g->tag[0] ? g->tag : NULL);
    mr_json_key(&j, "remote_ip");
    mr_json_cstr(&j, env->remote_ip);
    mr_json_key(&j, "helo");
    mr_json_cstr(&j, env->helo);
    mr_json_key(&j, "tls");
    mr_json_bool(&j, env->tls);
    mr_json_obj_end(&j);
}

/* Groups the recipients by tenant, in first-seen order. order[] receives
 * recipient indexes grouped, so each group's recipients are contiguous. */
static int group_recipients(struct mr_intake *in,
                            const struct mr_intake_env *env,
                            struct tenant_group *groups, size_t *ngroups,
                            size_t *order, struct mr_error *err)
{
    size_t n = 0, placed = 0;
    struct mr_route *routes = mr_xcalloc(env->nrcpt ? env->nrcpt : 1,
                                         sizeof *routes);
    bool *ok = mr_xcalloc(env->nrcpt ? env->nrcpt : 1, sizeof *ok);
    int rc = MR_OK;

    for (size_t i = 0; i < env->nrcpt; i++) {
        struct mr_error rerr = {0};
        ok[i] = mr_config_route(in->cfg, env->rcpt[i], &routes[i], &rerr) ==
                MR_OK;
    }
    for (size_t i = 0; i < env->nrcpt; i++) {
        if (!ok[i])
            continue;
        size_t g = 0;
        while (g < n && groups[g].tenant != routes[i].tenant)
            g++;
        if (g == n) {
            if (n == MR_INTAKE_MAX_JOBS) {
                rc = mr_error_set(err, MR_ELIMIT,
                                  "recipients span more than %d tenants",
                                  MR_INTAKE_MAX_JOBS);
                goto out;
            }
            groups[n] = (struct tenant_group){.tenant = routes[i].tenant,
                                              .inbox = routes[i].inbox};
            memcpy(groups[n].tag, routes[i].tag, sizeof groups[n].tag);
            n++;
        }
    }
    /* Lay the recipients out group by group. */
    for (size_t g = 0; g < n; g++) {
        groups[g].first = placed;
        for (size_t i = 0; i < env->nrcpt; i++)
            if (ok[i] && routes[i].tenant == groups[g].tenant)
                order[placed++] = i;
        groups[g].count = placed - groups[g].first;
    }
    if (n == 0)
        rc = mr_error_set(err, MR_ENOTFOUND,
                          "no recipient of this message is served here");
out:
    *ngroups = n;
    free(routes);
    free(ok);
    return rc;
}

int mr_intake_accept_raw(struct mr_intake *in, const struct mr_intake_env *env,
                         const char *raw, size_t len,
                         struct mr_intake_result *res, struct mr_error *err)
{
    memset(res, 0, sizeof *res);
    if (len == 0)
        return mr_error_set(err, MR_EINVAL, "the message is empty");
    /* SMTP and LMTP prepend their Received: header to a body the client
     * was allowed to send up to the limit (SIZE): that header must not
     * turn an accepted size into a 552. */
    uint64_t limit = in->cfg->limits.message_size;
    if (limit && (env->channel == MR_CH_SMTP || env->channel == MR_CH_LMTP))
        limit += TRACE_SLACK;
    if (limit && len > limit)
        return mr_error_set(err, MR_ELIMIT,
                            "message of %zu bytes exceeds the limit of %llu "
                            "bytes", len,
                            (unsigned long long)in->cfg->limits.message_size);

    struct tenant_group groups[MR_INTAKE_MAX_JOBS];
    size_t ngroups = 0;
    size_t *order = mr_xcalloc(env->nrcpt ? env->nrcpt : 1, sizeof *order);
    int rc;
    if (env->tenant) {
        const struct mr_tenant *t = mr_config_tenant(in->cfg, env->tenant);
        if (!t) {
            rc = mr_error_set(err, MR_ENOTFOUND, "no tenant '%s'",
                              env->tenant);
            goto out;
        }
        groups[0] = (struct tenant_group){.tenant = t, .count = env->nrcpt};
        for (size_t i = 0; i < env->nrcpt; i++)
            order[i] = i;
        /* The first recipient that routes into this tenant names the
         * inbox; the rest are only recorded. */
        for (size_t i = 0; i < env->nrcpt; i++) {
            struct mr_route r;
            if (mr_config_route(in->cfg, env->rcpt[i], &r, NULL) == MR_OK &&
                r.tenant == t) {
                groups[0].inbox = r.inbox;
                memcpy(groups[0].tag, r.tag, sizeof groups[0].tag);
                break;
            }
        }
        ngroups = 1;
    } else {
        rc = group_recipients(in, env, groups, &ngroups, order, err);
        if (rc != MR_OK)
            goto out;
    }

    /* A small message goes into the database with its jobs: one durable
     * write instead of a blob file, its fsync and its folder's fsync, and
     * no inode per message (docs/store.md, "Raw messages"). */
    bool inline_raw = len <= in->cfg->inline_max;
    if (inline_raw) {
        mr_sha256_hex(raw, len, res->raw_sha256);
    } else {
        rc = mr_blob_put(in->blob, raw, len, res->raw_sha256, err);
        if (rc != MR_OK)
            goto out;
    }

    struct mr_buf payloads[MR_INTAKE_MAX_JOBS];
    struct mr_job_spec specs[MR_INTAKE_MAX_JOBS];
    int64_t received = mr_clock_wall_ms();
    for (size_t g = 0; g < ngroups; g++) {
        mr_buf_init(&payloads[g], 0);
        write_payload(&payloads[g], env, &groups[g], order);
        specs[g] = (struct mr_job_spec){
            .tenant = groups[g].tenant->name,
            .channel = mr_channel_name(env->channel),
            .raw_sha256 = res->raw_sha256,
            .raw_size = (int64_t)len,
            .raw = inline_raw ? raw : NULL,
            .payload = payloads[g].p,
            .received_at = received,
        };
    }
    rc = mr_store_enqueue(in->store, specs, ngroups, res->job_ids, err);
    for (size_t g = 0; g < ngroups; g++)
        mr_buf_release(&payloads[g]);
    if (rc == MR_OK) {
        res->njobs = ngroups;
        notify(in);
    }
out:
    free(order);
    return rc;
}

/* The tenant provider webhook events belong to. */
static const struct mr_tenant *webhook_tenant(const struct mr_config *cfg)
{
    if (cfg->webhook.tenant)
        return mr_config_tenant(cfg, cfg->webhook.tenant);
    return cfg->ntenants ? &cfg->tenants[0] : NULL;
}

static bool nonempty_string(json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
}

/* The provider's event must at least say who wrote what. */
static int validate_event(json_t *ev, struct mr_error *err)
{
    if (!json_is_object(ev))
        return mr_error_set(err, MR_EINVAL, "the event is not a JSON object");
    json_t *from = json_object_get(ev, "from");
    bool from_ok = nonempty_string(from) ||
                   (json_is_object(from) &&
                    nonempty_string(json_object_get(from, "email")));
    if (!from_ok)
        return mr_error_set(err, MR_EINVAL,
                            "the event has no sender: 'from' must be an "
                            "address or an object with 'email'");
    static const char *const content[] = {"subject", "text", "html"};
    bool any = false;
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(ev, content[i]);
        if (v && !json_is_string(v) && !json_is_null(v))
            return mr_error_set(err, MR_EINVAL, "'%s' must be a string",
                                content[i]);
        any |= json_is_string(v);
    }
    if (!any)
        return mr_error_set(err, MR_EINVAL,
                            "the event has none of subject, text, html");
    json_t *mid = json_object_get(ev, "message_id");
    if (mid && !json_is_string(mid) && !json_is_null(mid))
        return mr_error_set(err, MR_EINVAL, "'message_id' must be a string");
    return MR_OK;
}

int mr_intake_accept_event(struct mr_intake *in, const char *json, size_t len,
                           struct mr_intake_result *res, struct mr_error *err)
{
    memset(res, 0, sizeof *res);
    if (in->cfg->limits.http_body_size && len > in->cfg->limits.http_body_size)
        return mr_error_set(err, MR_ELIMIT, "event too large");
    const struct mr_tenant *t = webhook_tenant(in->cfg);
    if (!t)
        return mr_error_set(err, MR_ENOTFOUND,
                            "no tenant takes webhook events");

    json_error_t jerr;
    json_t *ev = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!ev)
        return mr_error_set(err, MR_EINVAL,
                            "the body is not valid JSON: %s (line %d)",
                            jerr.text, jerr.line);
    int rc = validate_event(ev, err);
    if (rc != MR_OK) {
        json_decref(ev);
        return rc;
    }

    /* Dedupe on what the provider calls the message; without an id, on
     * the body itself so that a provider's retry still counts once. */
    struct mr_buf key;
    mr_buf_init(&key, 2048);
    json_t *mid = json_object_get(ev, "message_id");
    if (nonempty_string(mid)) {
        mr_buf_puts(&key, "webhook:");
        mr_buf_append(&key, json_string_value(mid), json_string_length(mid));
    } else {
        char hex[MR_SHA256_HEX_LEN + 1];
        mr_sha256_hex(json, len, hex);
        mr_buf_printf(&key, "webhook-body:%s", hex);
    }
    json_decref(ev);

    struct mr_job_spec spec = {
        .tenant = t->name,
        .channel = mr_channel_name(MR_CH_WEBHOOK),
        .raw_sha256 = NULL,
        .raw_size = (int64_t)len,
        .payload = NULL,
        .received_at = mr_clock_wall_ms(),
        .dedupe_key = key.p,
    };
    /* The payload column holds the event exactly as signed. */
    char *copy = mr_xstrndup(json, len);
    spec.payload = copy;
    rc = mr_store_enqueue(in->store, &spec, 1, res->job_ids, err);
    free(copy);
    mr_buf_release(&key);
    if (rc == MR_ECONFLICT) {
        mr_metrics_inc(&in->metrics->duplicates);
        res->duplicate = true;
        rc = MR_OK;
    } else if (rc == MR_OK) {
        res->njobs = 1;
        notify(in);
    }
    return rc;
}
