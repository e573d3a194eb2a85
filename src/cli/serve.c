/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.c - `mailroom serve`: wires configuration, store, blob folder,
 * intake, workers and the SMTP/LMTP/HTTP listeners together, then waits
 * for SIGTERM/SIGINT.
 *
 * Shutdown order is the reverse of the data flow: stop the listeners
 * first (nothing new is accepted; a DATA in progress still completes and
 * is acknowledged only once durable), then the workers (each finishes its
 * job in hand), then the threads that talk to peers: webhook dispatcher,
 * mail sender, notify sender and antivirus scanner. None of those waits
 * for its peer: each passes its stop flag to the conversation in flight
 * (a webhook or chat POST, an SMTP transaction, a clamd scan), which ends
 * within about 100 ms with no outcome recorded or, for mail, as a
 * transient failure, so the row is due again later. Then close the store
 * (its writer commits what is queued and checkpoints). SIGTERM to exit
 * takes well under a second with every peer hung
 * (tests/e2e/test_shutdown.py). A signal during start-up is honoured the
 * same way.
 *
 * SIGHUP reloads the configuration file's integrations and webhook
 * subscriptions (outbound/config_reload.h; other changed keys are logged
 * as needing a restart) and the rules file (docs/rules.md): a file with an
 * error is logged and what is in force stays.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/instance.h"
#include "config/config_slot.h"
#include "http/http.h"
#include "smtp/smtp.h"
#include "ticket/intake.h"
#include "ticket/rules_slot.h"
#include "outbound/config_reload.h"
#include "outbound/dispatch.h"
#include "outbound/mail_sender.h"
#include "outbound/notify.h"
#include "scan/scanner.h"
#include "ticket/worker.h"
#include "util/log.h"
#include "util/metrics.h"

struct serve_ctx {
    struct mr_intake *intake;
    struct mr_metrics *metrics;
    struct mr_log *log;
};

static void usage(void)
{
    fputs("usage: mailroom serve [--data DIR] [--config FILE] "
          "[--smtp ADDR:PORT] [--lmtp ADDR:PORT] [--http ADDR:PORT]\n"
          "                     [--webhooks-allow-private]\n"
          "Without --config: data in ./mailroom-data, SMTP on "
          "127.0.0.1:2525, HTTP on 127.0.0.1:8080,\n"
          "one tenant 'default' taking every recipient, loopback only.\n"
          "Use 'off' as an address to disable a listener.\n"
          "--webhooks-allow-private: webhooks and integrations may connect "
          "to loopback\nand private addresses (as webhooks_allow_private: "
          "true in the configuration).\n",
          stderr);
}

/* ---- the SMTP handler: the protocol asks, intake answers -------------- */

static int smtp_rcpt(void *ctx, const char *addr, struct mr_error *err)
{
    struct serve_ctx *s = ctx;
    struct mr_route r;
    return mr_intake_route(s->intake, addr, &r, err);
}

static int smtp_deliver(void *ctx, const struct mr_smtp_envelope *env,
                        const char *msg, size_t len, int *status,
                        struct mr_error *err)
{
    struct serve_ctx *s = ctx;
    struct mr_intake_env ie = {
        .channel = env->lmtp ? MR_CH_LMTP : MR_CH_SMTP,
        .mail_from = env->mail_from,
        .rcpt = env->rcpt,
        .nrcpt = env->nrcpt,
        .remote_ip = env->remote_ip,
        .helo = env->helo,
        .tls = env->tls,
    };
    struct mr_intake_result res;
    mr_metrics_inc(&s->metrics->received[ie.channel]);
    int rc = mr_intake_accept_raw(s->intake, &ie, msg, len, &res, err);
    if (rc == MR_OK)
        mr_metrics_inc(&s->metrics->acked[ie.channel]);
    else if (rc == MR_EIO || rc == MR_EAGAIN || rc == MR_ENOMEM)
        mr_metrics_inc(&s->metrics->tempfail[ie.channel]);
    else
        mr_metrics_inc(&s->metrics->rejected[ie.channel]);
    /* One durable copy serves every recipient: they share its fate. */
    for (size_t i = 0; i < env->nrcpt; i++)
        status[i] = rc;
    if (rc == MR_OK) {
        char jobs[32];
        snprintf(jobs, sizeof jobs, "%lld", (long long)res.job_ids[0]);
        mr_log_kv(s->log, MR_LOG_DEBUG, env->lmtp ? "lmtp" : "smtp",
                  "message queued", "job", jobs, "sha256", res.raw_sha256,
                  "from", env->remote_ip, NULL);
    } else {
        mr_log_kv(s->log, rc == MR_EIO || rc == MR_EAGAIN ? MR_LOG_ERROR
                                                          : MR_LOG_INFO,
                  env->lmtp ? "lmtp" : "smtp", "message not accepted",
                  "error", err->msg, "from", env->remote_ip, NULL);
    }
    return rc;
}

static void smtp_note(void *ctx, const char *what, const char *detail)
{
    struct serve_ctx *s = ctx;
    if (strcmp(what, "connect") == 0)
        mr_metrics_inc(&s->metrics->smtp_connections);
    else if (strcmp(what, "reject") == 0 || strcmp(what, "tempfail") == 0)
        mr_log_kv(s->log, MR_LOG_INFO, "smtp", what, "detail", detail, NULL);
}

static void http_log(void *ctx, const char *msg)
{
    mr_logf(ctx, MR_LOG_ERROR, "http", "%s", msg);
}

static void warn_line(void *ctx, const char *msg)
{
    mr_logf(ctx, MR_LOG_WARN, "serve", "%s", msg);
}

/* Rules that notify a name no integration has (docs/integrations.md). */
static void check_notify(struct mr_config_slot *cs,
                         struct mr_rules_slot *rules, struct mr_log *log)
{
    struct mr_config_ref *cref = mr_config_slot_acquire(cs);
    struct mr_rules_ref *ref = mr_rules_slot_acquire(rules);
    if (ref && cref)
        (void)mr_notify_check_rules(mr_config_ref_get(cref),
                                    mr_rules_ref_get(ref), warn_line, log);
    mr_rules_slot_release(rules, ref);
    mr_config_slot_release(cs, cref);
}

/* SIGHUP: the configuration file again (its integrations and webhooks);
 * what is in force stays when it has an error. */
static void reload_config(struct mr_config_reloader *cr, struct mr_log *log)
{
    const char *path = mr_config_reloader_path(cr);
    if (!path)
        return;
    struct mr_config_diags diags = {0};
    struct mr_error err = {0};
    struct mr_config_reload_result res;
    if (mr_config_reload(cr, &res, &diags, &err) == MR_OK) {
        mr_logf(log, MR_LOG_INFO, "serve",
                "SIGHUP: configuration reloaded from %s: %zu integrations, "
                "%zu webhooks applied",
                path, res.nintegrations, res.nwebhooks);
        for (size_t i = 0; i < res.nrestart; i++)
            mr_logf(log, MR_LOG_WARN, "serve",
                    "SIGHUP: '%s' changed in %s; it needs a restart and "
                    "the running value stays",
                    res.restart[i], path);
    } else {
        mr_logf(log, MR_LOG_ERROR, "serve",
                "SIGHUP: configuration not reloaded, the integrations and "
                "webhooks in force stay: %s",
                err.msg);
        for (size_t i = 0; i < diags.n; i++)
            mr_logf(log, MR_LOG_ERROR, "serve", "%s:%d:%d: %s", path,
                    diags.items[i].line, diags.items[i].column,
                    diags.items[i].msg);
    }
    mr_config_diags_free(&diags);
}

/* SIGHUP: the rules file again; the rules in force stay when it has an
 * error. */
static void reload_rules(struct mr_config_slot *cs,
                         struct mr_rules_slot *rules, struct mr_log *log)
{
    const char *path = mr_rules_slot_path(rules);
    if (!path) {
        mr_logf(log, MR_LOG_INFO, "serve", "SIGHUP: no rules file configured");
        return;
    }
    struct mr_config_diags diags = {0};
    struct mr_error err = {0};
    size_t nt = 0, nr = 0;
    if (mr_rules_slot_reload(rules, &diags, &nt, &nr, &err) == MR_OK) {
        mr_logf(log, MR_LOG_INFO, "serve",
                "SIGHUP: rules reloaded from %s (%zu tenants, %zu rules)",
                path, nt, nr);
        check_notify(cs, rules, log);
    } else {
        mr_logf(log, MR_LOG_ERROR, "serve",
                "SIGHUP: %s has errors, the previous rules stay: %s", path,
                err.msg);
        for (size_t i = 0; i < diags.n; i++)
            mr_logf(log, MR_LOG_ERROR, "serve", "%s:%d:%d: %s", path,
                    diags.items[i].line, diags.items[i].column,
                    diags.items[i].msg);
    }
    mr_config_diags_free(&diags);
}

/* ---- flags ------------------------------------------------------------ */

static bool is_loopback(const char *addr)
{
    static const char *const ok[] = {"127.", "[::1]:", "localhost:"};
    for (size_t i = 0; i < 3; i++)
        if (strncmp(addr, ok[i], strlen(ok[i])) == 0)
            return true;
    return false;
}

/* Replaces a listener address with a flag's value ("off" disables). */
static void set_listen(struct mr_listen *l, const char *v)
{
    free(l->addr);
    l->addr = strcmp(v, "off") == 0 ? NULL : mr_xstrndup(v, strlen(v));
}

int mr_cli_serve(int argc, char **argv)
{
    struct mr_instance_args ia = {0};
    const char *smtp = NULL, *lmtp = NULL, *http = NULL;
    bool allow_private = false;
    const struct mr_cli_opt opts[] = {
        {"--smtp", &smtp}, {"--lmtp", &lmtp}, {"--http", &http}};
    for (int i = 1; i < argc; i++) {
        int r = mr_instance_opt(argc, argv, &i, &ia, opts, 3);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--webhooks-allow-private") == 0) {
            allow_private = true;
            continue;
        }
        bool help = strcmp(argv[i], "--help") == 0;
        if (!help)
            fprintf(stderr, "mailroom serve: unexpected '%s'\n", argv[i]);
        usage();
        return help ? MR_EXIT_OK : MR_EXIT_USAGE;
    }

    /* Signals are taken by sigwait below; every thread started from here
     * on inherits the mask, so none of them is interrupted by one. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct mr_log log;
    mr_log_init(&log, stderr, getenv("MAILROOM_DEBUG") ? MR_LOG_DEBUG
                                                       : MR_LOG_INFO);
    struct mr_instance inst;
    int status = mr_instance_open("serve", &ia,
                                  MR_INSTANCE_STORE | MR_INSTANCE_BLOB |
                                      MR_INSTANCE_MIGRATE | MR_INSTANCE_MKDIR,
                                  &inst);
    if (status != 0) {
        mr_log_destroy(&log);
        return status;
    }
    struct mr_config *cfg = inst.cfg;
    if (smtp)
        set_listen(&cfg->smtp, smtp);
    if (lmtp)
        set_listen(&cfg->lmtp, lmtp);
    if (http)
        set_listen(&cfg->http, http);
    if (allow_private)
        cfg->webhooks_allow_private = true;
    if (cfg->zero_config) {
        const struct mr_listen *ls[] = {&cfg->smtp, &cfg->lmtp, &cfg->http};
        for (size_t i = 0; i < 3; i++) {
            if (ls[i]->addr && !is_loopback(ls[i]->addr)) {
                fprintf(stderr,
                        "mailroom serve: without a configuration file every "
                        "recipient is accepted, so listeners bind to "
                        "loopback only; '%s' is not loopback (write a config "
                        "with your tenants and inboxes, see "
                        "docs/configuration.md)\n",
                        ls[i]->addr);
                mr_instance_close(&inst);
                mr_log_destroy(&log);
                return MR_EXIT_CONFIG;
            }
        }
        mr_logf(&log, MR_LOG_WARN, "serve",
                "no configuration file: tenant 'default' accepts every "
                "recipient; listening on loopback only");
    }

    /* A rules file with an error is a configuration error: refusing to
     * start beats routing mail by no rules at all. */
    struct mr_rules_slot *rules = mr_rules_slot_new(cfg->rules);
    if (cfg->rules) {
        struct mr_config_diags diags = {0};
        struct mr_error rerr = {0};
        int rc = mr_rules_slot_reload(rules, &diags, NULL, NULL, &rerr);
        if (rc != MR_OK) {
            if (diags.n == 0)
                fprintf(stderr, "mailroom serve: %s\n", rerr.msg);
            for (size_t i = 0; i < diags.n; i++)
                fprintf(stderr, "%s:%d:%d: %s\n", cfg->rules,
                        diags.items[i].line, diags.items[i].column,
                        diags.items[i].msg);
            mr_config_diags_free(&diags);
            mr_rules_slot_free(&rules);
            mr_instance_close(&inst);
            mr_log_destroy(&log);
            (void)rc; /* unreadable or wrong: either way the config's */
            return MR_EXIT_CONFIG;
        }
    }

    /* The integrations in force start as the running config's; a reload
     * swaps in the file's again (the running config is never changed). */
    struct mr_config_slot *cslot = mr_config_slot_new(cfg);
    struct mr_config_reloader *creload =
        mr_config_reloader_new(cfg, cslot, inst.store,
                               mr_dispatch_sync_config);

    struct mr_metrics metrics;
    memset(&metrics, 0, sizeof metrics);
    struct mr_error err = {0};
    struct mr_intake *intake = NULL;
    struct mr_workers *workers = NULL;
    struct mr_smtp_server *smtp_srv = NULL, *lmtp_srv = NULL;
    struct mr_http_server *http_srv = NULL;
    struct mr_dispatch *dispatch = NULL;
    struct mr_mail_sender *mail_sender = NULL;
    struct mr_notify *notify = NULL;
    struct mr_scanner *scanner = NULL;
    struct serve_ctx sctx = {.metrics = &metrics, .log = &log};
    status = MR_EXIT_IOERR;

    if (mr_intake_new(cfg, inst.store, inst.blob, &metrics, &intake, &err) !=
        MR_OK)
        goto fail;
    sctx.intake = intake;
    struct mr_worker_deps wd = {cfg, inst.store, inst.blob, &metrics, &log,
                                rules};
    if (mr_workers_start(&wd, &workers, &err) != MR_OK)
        goto fail;
    mr_intake_on_enqueue(intake, mr_workers_wake, workers);
    if (mr_dispatch_start(cfg, inst.store, &log, &metrics, &dispatch, &err) !=
        MR_OK)
        goto fail;
    if (mr_mail_sender_start(cfg, inst.store, &log, &metrics, &mail_sender,
                             &err) != MR_OK)
        goto fail;
    check_notify(cslot, rules, &log);
    if (mr_notify_start_slot(cfg, cslot, inst.store, &log, &metrics, &notify,
                             &err) != MR_OK)
        goto fail;
    if (mr_scanner_start(cfg, inst.store, inst.blob, &log, &metrics, &scanner,
                         &err) != MR_OK)
        goto fail;

    struct mr_smtp_handler handler = {
        .ctx = &sctx,
        .rcpt = smtp_rcpt,
        .deliver = smtp_deliver,
        .note = smtp_note,
    };
    struct mr_smtp_options so = {
        .hostname = cfg->hostname,
        .tls_cert = cfg->tls_cert,
        .tls_key = cfg->tls_key,
        .max_message_size = cfg->limits.message_size,
        .max_recipients = cfg->limits.max_recipients,
        .max_connections = cfg->limits.max_connections,
        .max_connections_per_ip = cfg->limits.max_connections_per_ip,
        .idle_timeout_s = cfg->limits.smtp_idle_timeout_s,
        .total_timeout_s = cfg->limits.smtp_total_timeout_s,
    };
    if (cfg->smtp.addr) {
        so.listen = cfg->smtp.addr;
        so.lmtp = false;
        if (mr_smtp_start(&so, &handler, &smtp_srv, &err) != MR_OK)
            goto fail;
    }
    if (cfg->lmtp.addr) {
        so.listen = cfg->lmtp.addr;
        so.lmtp = true;
        if (mr_smtp_start(&so, &handler, &lmtp_srv, &err) != MR_OK)
            goto fail;
    }
    if (cfg->http.addr) {
        struct mr_http_deps hd = {
            .cfg = cfg,
            .store = inst.store,
            .blob = inst.blob,
            .intake = intake,
            .metrics = &metrics,
            .rules = rules,
            .config_reload = creload,
            .scanner = scanner,
            .log = http_log,
            .log_ctx = &log,
        };
        if (mr_http_start(cfg->http.addr, &hd, &http_srv, &err) != MR_OK)
            goto fail;
    }

    char ports[160];
    snprintf(ports, sizeof ports, "smtp %s, lmtp %s, http %s",
             cfg->smtp.addr ? cfg->smtp.addr : "off",
             cfg->lmtp.addr ? cfg->lmtp.addr : "off",
             cfg->http.addr ? cfg->http.addr : "off");
    mr_log_kv(&log, MR_LOG_INFO, "serve", "mailroom " MR_VERSION " ready",
              "listen", ports, "data", cfg->data_dir, "config", cfg->source,
              NULL);

    int sig = 0;
    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            break;
        reload_config(creload, &log);
        reload_rules(cslot, rules, &log);
    }
    mr_logf(&log, MR_LOG_INFO, "serve", "signal %d: shutting down", sig);
    status = MR_EXIT_OK;
    goto stop;

fail:
    mr_logf(&log, MR_LOG_ERROR, "serve", "cannot start: %s", err.msg);
    fprintf(stderr, "mailroom serve: %s\n", err.msg);
stop:
    mr_smtp_stop(smtp_srv);
    mr_smtp_stop(lmtp_srv);
    mr_http_stop(http_srv);
    mr_workers_stop(workers);
    mr_dispatch_stop(dispatch);
    mr_mail_sender_stop(mail_sender);
    mr_notify_stop(notify);
    mr_scanner_stop(scanner);
    mr_rules_slot_free(&rules);
    /* After every thread that reads them (HTTP, notify) has stopped. */
    mr_config_reloader_free(&creload);
    mr_config_slot_free(&cslot);
    mr_intake_free(intake);
    mr_instance_close(&inst);
    mr_logf(&log, MR_LOG_INFO, "serve", "stopped");
    mr_log_destroy(&log);
    return status;
}
