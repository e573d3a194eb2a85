/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.c - the integrations' sender (see notify.h).
 *
 * One thread, one request at a time. It sleeps on the store's commit
 * generation, so a notification committed by a worker is picked up at
 * once, and wakes at least every WAIT_MS for retries that came due.
 *
 * Outcomes: 2xx is sent (GitHub and Jira answers are read for the link
 * recorded on the ticket); 4xx other than 429 is dead with the status and
 * the start of the answer (a bad token or payload does not get better by
 * asking again); a refused (private) target is dead; anything else
 * (no answer, 5xx, 429) is retried on mr_dispatch_retry_delay_ms's
 * schedule, Retry-After honoured on 429 and 503, then dead.
 */
#include "outbound/notify.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbound/dispatch.h"
#include "outbound/http_out.h"
#include "outbound/integrations.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/clock.h"

#define WAIT_MS 250
#define IDLE_MS 1000
#define DUE_MAX 32
#define STUCK_MAX_MS 60000

struct mr_notify {
    const struct mr_config *cfg;
    struct mr_config_slot *slot; /* NULL: integrations from cfg */
    struct mr_store *st;
    struct mr_log *log;
    struct mr_metrics *metrics; /* may be NULL */
    pthread_t thread;
    atomic_bool stopping;
    struct mr_http_out *http; /* NULL when no tenant has an integration */
    /* Outcomes the store would not record (the sender thread's own). */
    uint64_t unrecorded;
};

/* The link an earlier notification of this integration recorded on the
 * ticket, or NULL (caller frees). */
static char *existing_link(const struct mr_notification *n)
{
    json_error_t je;
    json_t *o = json_loads(n->links_json ? n->links_json : "{}", 0, &je);
    json_t *l = json_object_get(o, n->integration);
    const char *ref = json_string_value(json_object_get(l, "key"));
    if (ref == NULL)
        ref = json_string_value(json_object_get(l, "url"));
    char *out = ref ? mr_xstrndup(ref, strlen(ref)) : NULL;
    json_decref(o);
    return out;
}

/* "HTTP 401: <start of the answer>", printable. */
static void describe(const struct mr_http_out_res *res, char *out, size_t cap)
{
    if (res->status == 0) {
        snprintf(out, cap, "%s", res->error[0] ? res->error : "no answer");
        return;
    }
    struct mr_buf b;
    mr_buf_init(&b, 0);
    mr_notify_line(res->body, 160, &b);
    snprintf(out, cap, "HTTP %ld%s%s", res->status, b.len ? ": " : "",
             b.len ? b.p : "");
    mr_buf_release(&b);
}

static void record(struct mr_notify *d, const struct mr_notify_result *r)
{
    if (d->metrics) {
        enum mr_notify_outcome o = strcmp(r->state, "sent") == 0 ? MR_NOTIFY_SENT
                                   : strcmp(r->state, "dead") == 0
                                       ? MR_NOTIFY_DEAD
                                       : MR_NOTIFY_RETRIED;
        mr_metrics_inc(
            &d->metrics->notifications[mr_metrics_notify_kind(r->kind)][o]);
    }
    struct mr_error err = {0};
    if (mr_store_notify_result(d->st, r, &err) < 0) {
        mr_logf(d->log, MR_LOG_ERROR, "notify", "%s", err.msg);
        d->unrecorded++;
    }
}

/* The store would not record outcomes: the rows are still due, and what
 * was sent would be sent again at the next read. Waits (unless stopped)
 * longer each round this happens again, so that a store that cannot write
 * does not make every chat message again four times a second. */
static void wait_for_store(struct mr_notify *d, int rounds)
{
    int64_t until = mr_clock_wall_ms() + mr_backoff_ms(rounds, WAIT_MS, STUCK_MAX_MS);
    while (!atomic_load(&d->stopping) && mr_clock_wall_ms() < until)
        (void)mr_store_commit_wait(d->st, mr_store_commit_gen(d->st), WAIT_MS);
}

/* Whether any tenant of cfg has an integration. */
static bool has_integrations(const struct mr_config *cfg)
{
    for (size_t t = 0; t < cfg->ntenants; t++)
        if (cfg->tenants[t].nintegrations > 0)
            return true;
    return false;
}

/* Sleeps ms, or less when stopped; commits do not wake it. */
static void nap(struct mr_notify *d, int64_t ms)
{
    int64_t until = mr_clock_mono_ms() + ms;
    while (!atomic_load(&d->stopping) && mr_clock_mono_ms() < until) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* *made gets the link recorded on the ticket, if any (caller frees). */
/* xcfg: the config whose integrations are in force this round. */
static void send_one(struct mr_notify *d, const struct mr_config *xcfg,
                     const struct mr_notification *n, char **made)
{
    struct mr_notify_result r = {.id = n->id, .attempts = n->attempts};
    const struct mr_integration *x =
        mr_config_integration(xcfg, n->tenant, n->integration);
    char why[400];
    if (x == NULL) {
        snprintf(why, sizeof why, "notify_unknown: tenant '%s' has no "
                 "integration named '%s'", n->tenant, n->integration);
        r.state = "dead";
        r.last_error = why;
        record(d, &r);
        mr_logf(d->log, MR_LOG_WARN, "notify", "%s (ticket %lld)", why,
                (long long)n->ticket_id);
        return;
    }
    r.kind = mr_integration_kind_name(x->kind);
    if (x->kind != MR_INTEGRATION_SLACK) {
        char *ref = existing_link(n);
        if (ref) {
            snprintf(why, sizeof why, "not sent: the ticket has %s already",
                     ref);
            r.state = "sent";
            r.last_error = why;
            r.external_ref = ref;
            record(d, &r);
            free(ref);
            return;
        }
    }
    if (d->http == NULL) {
        /* The integration came with a reload: no tenant had one at start,
         * so the HTTP client was not opened then. */
        struct mr_error oerr = {0};
        if (mr_http_out_open(d->cfg->webhooks_allow_private, &d->http,
                             &oerr) != MR_OK) {
            d->http = NULL;
            snprintf(why, sizeof why, "cannot send: %s", oerr.msg);
            r.state = "dead";
            r.last_error = why;
            record(d, &r);
            return;
        }
    }

    struct mr_buf link;
    mr_buf_init(&link, 0);
    mr_notify_ticket_link(d->cfg->ticket_url, n->ticket_id, n->ticket_number,
                          &link);
    struct mr_notify_http h;
    mr_notify_http_init(&h);
    struct mr_error err = {0};
    int rc;
    switch (x->kind) {
    case MR_INTEGRATION_SLACK:
        rc = mr_slack_build(x, n, link.len ? link.p : NULL, &h, &err);
        break;
    case MR_INTEGRATION_GITHUB:
        rc = mr_github_build(x, n, link.len ? link.p : NULL, &h, &err);
        break;
    default:
        rc = mr_jira_build(x, n, link.len ? link.p : NULL, &h, &err);
        break;
    }
    mr_buf_release(&link);
    if (rc < 0) {
        snprintf(why, sizeof why, "cannot build the request: %s", err.msg);
        r.state = "dead";
        r.last_error = why;
        record(d, &r);
        mr_notify_http_release(&h);
        return;
    }
    struct mr_http_out_req req = {
        .url = h.url,
        .headers = (const char *const *)h.headers,
        .nheaders = h.nheaders,
        .body = h.body.p,
        .body_len = h.body.len,
    };
    struct mr_http_out_res res;
    mr_http_out_do(d->http, &req, &d->stopping, &res);
    mr_notify_http_release(&h);
    if (res.status == 0 && atomic_load(&d->stopping)) {
        /* Aborted by shutdown: no attempt; the row stays due. */
        mr_http_out_res_release(&res);
        return;
    }
    r.attempts = n->attempts + 1;
    char *link_json = NULL, *ref = NULL;
    describe(&res, why, sizeof why);
    if (res.status >= 200 && res.status <= 299) {
        r.state = "sent";
        r.last_error = NULL;
        if (x->kind != MR_INTEGRATION_SLACK) {
            int prc = x->kind == MR_INTEGRATION_GITHUB
                          ? mr_github_parse_created(res.body, res.body_len,
                                                    &link_json, &ref, &err)
                          : mr_jira_parse_created(x, res.body, res.body_len,
                                                  &link_json, &ref, &err);
            /* The issue was most likely made: asking again would make a
             * second one, so the row is sent, with the reason noted. */
            if (prc < 0) {
                snprintf(why, sizeof why, "answered %ld, but %s", res.status,
                         err.msg);
                r.last_error = why;
            }
        }
        r.external_ref = ref;
        r.link_json = link_json;
    } else if (res.refused ||
               (res.status >= 400 && res.status <= 499 && res.status != 429)) {
        r.state = "dead";
        r.last_error = why;
    } else {
        int64_t delay = mr_dispatch_retry_delay_ms(
            r.attempts, d->cfg->webhook_retry_scale, mr_backoff_rnd());
        r.state = delay < 0 ? "dead" : "pending";
        if ((res.status == 429 || res.status == 503) &&
            res.retry_after_s > 0 && delay >= 0)
            delay = res.retry_after_s * 1000;
        r.next_at = mr_clock_wall_ms() + (delay < 0 ? 0 : delay);
        r.last_error = why;
    }
    mr_http_out_res_release(&res);
    record(d, &r);
    if (strcmp(r.state, "dead") == 0)
        mr_logf(d->log, MR_LOG_WARN, "notify",
                "notification %lld to %s (ticket %lld) is dead after %d "
                "attempts: %s", (long long)n->id, n->integration,
                (long long)n->ticket_id, r.attempts, why);
    else if (strcmp(r.state, "sent") == 0)
        mr_logf(d->log, MR_LOG_INFO, "notify",
                "notification %lld sent to %s (ticket %lld)%s%s",
                (long long)n->id, n->integration, (long long)n->ticket_id,
                ref ? ": " : "", ref ? ref : "");
    if (link_json && strcmp(r.state, "sent") == 0) {
        *made = link_json;
        link_json = NULL;
    }
    free(link_json);
    free(ref);
}

/* The rows after i in a batch were read before i made its issue: the
 * ones for the same ticket and integration must see it, or two messages
 * of one ticket due together would open two issues. */
static void note_link(struct mr_notification *due, size_t n, size_t i,
                      const char *link_json)
{
    for (size_t k = i + 1; k < n; k++) {
        if (due[k].ticket_id != due[i].ticket_id ||
            strcmp(due[k].integration, due[i].integration) != 0)
            continue;
        json_error_t je;
        json_t *links = json_loads(
            due[k].links_json ? due[k].links_json : "{}", 0, &je);
        json_t *l = json_loads(link_json, 0, &je);
        if (!json_is_object(links)) {
            json_decref(links);
            links = json_object();
        }
        if (l)
            json_object_set_new(links, due[k].integration, l);
        char *text = json_dumps(links, JSON_COMPACT);
        json_decref(links);
        if (text) {
            free(due[k].links_json);
            due[k].links_json = mr_xstrndup(text, strlen(text));
            free(text);
        }
    }
}

static void *run(void *arg)
{
    struct mr_notify *d = arg;
    uint64_t seen = mr_store_commit_gen(d->st);
    int stuck = 0; /* rounds in a row with outcomes not recorded */
    while (!atomic_load(&d->stopping)) {
        uint64_t unrecorded = d->unrecorded;
        struct mr_notification *due = NULL;
        size_t n = 0;
        struct mr_error err = {0};
        if (mr_store_notify_due(d->st, mr_clock_wall_ms(), DUE_MAX, &due, &n, &err) < 0)
            mr_logf(d->log, MR_LOG_ERROR, "notify", "%s", err.msg);
        /* One reference per round: a reload in the middle of it frees
         * nothing this round still reads. */
        struct mr_config_ref *ref = mr_config_slot_acquire(d->slot);
        const struct mr_config *xcfg = ref ? mr_config_ref_get(ref) : d->cfg;
        bool idle = !has_integrations(xcfg);
        for (size_t i = 0; i < n && !atomic_load(&d->stopping); i++) {
            char *made = NULL;
            send_one(d, xcfg, &due[i], &made);
            if (made)
                note_link(due, n, i, made);
            free(made);
        }
        mr_config_slot_release(d->slot, ref);
        mr_notification_list_free(due, n);
        if (d->unrecorded != unrecorded) {
            wait_for_store(d, ++stuck);
            seen = mr_store_commit_gen(d->st);
            continue;
        }
        stuck = 0;
        if (n == DUE_MAX)
            continue; /* more are waiting */
        if (idle) {
            /* Without integrations a notification can only name an
             * unknown one, to be recorded dead: no need to read the queue
             * after every commit of the ingest (measured: the reads and
             * wake-ups were part of 8% more server CPU per message). */
            nap(d, IDLE_MS);
            seen = mr_store_commit_gen(d->st);
            continue;
        }
        seen = mr_store_commit_wait(d->st, seen, WAIT_MS);
    }
    return NULL;
}

int mr_notify_start(const struct mr_config *cfg, struct mr_store *st,
                    struct mr_log *log, struct mr_metrics *metrics,
                    struct mr_notify **out, struct mr_error *err)
{
    return mr_notify_start_slot(cfg, NULL, st, log, metrics, out, err);
}

int mr_notify_start_slot(const struct mr_config *cfg,
                         struct mr_config_slot *slot, struct mr_store *st,
                         struct mr_log *log, struct mr_metrics *metrics,
                         struct mr_notify **out, struct mr_error *err)
{
    *out = NULL;
    bool any = false;
    for (size_t t = 0; t < cfg->ntenants; t++)
        any = any || cfg->tenants[t].nintegrations > 0;
    struct mr_notify *d = mr_xcalloc(1, sizeof *d);
    if (any &&
        mr_http_out_open(cfg->webhooks_allow_private, &d->http, err) != MR_OK) {
        free(d);
        return MR_EIO;
    }
    d->cfg = cfg;
    d->slot = slot;
    d->st = st;
    d->log = log;
    d->metrics = metrics;
    atomic_init(&d->stopping, false);
    int rc = pthread_create(&d->thread, NULL, run, d);
    if (rc != 0) {
        mr_http_out_close(d->http);
        free(d);
        return mr_error_set(err, MR_EIO,
                            "integrations: cannot start a thread: %s",
                            strerror(rc));
    }
    *out = d;
    return 0;
}

void mr_notify_stop(struct mr_notify *d)
{
    if (d == NULL)
        return;
    atomic_store(&d->stopping, true);
    pthread_join(d->thread, NULL);
    mr_http_out_close(d->http);
    free(d);
}
