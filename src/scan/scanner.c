/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scanner.c - the scanner thread (scanner.h): rounds of up to
 * MR_SCANNER_BATCH pending attachments, each streamed from its blob
 * mapping to clamd and recorded in its own transaction.
 *
 * Between rounds the thread sleeps until the store commits something (a
 * delivery may have added pending attachments) or ROUND_MS passes. While
 * clamd cannot be reached it sleeps the backoff instead and touches no
 * row: the attachments were not at fault, so their attempts do not grow.
 * The same backoff follows a round in which the store would not record a
 * verdict (or read the queue, or the blob folder a blob): the attachment
 * is still pending and would otherwise be scanned again every ROUND_MS.
 *
 * An attachment an operator queued again (a rescan) is always sent to
 * clamd: the point of a rescan is a new answer (new signatures, a larger
 * StreamMaxLength), which a verdict reused for the same bytes would not
 * give.
 */
#include "scan/scanner-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "content/attach_policy.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/clock.h"

#define ROUND_MS 500
#define BACKOFF_BASE_MS 1000

/* Sleeps ms unless stopped first. */
static void nap(struct mr_scanner *sc, int64_t ms)
{
    struct timespec until = mr_clock_deadline(CLOCK_REALTIME, ms);
    pthread_mutex_lock(&sc->mu);
    if (!atomic_load(&sc->stopping))
        (void)pthread_cond_timedwait(&sc->cv, &sc->mu, &until);
    pthread_mutex_unlock(&sc->mu);
}

static int64_t backoff_ms(const struct mr_scanner *sc, int n)
{
    return mr_backoff_ms(n, BACKOFF_BASE_MS, sc->cfg->clamd.retry_max_ms);
}

static void note_error(struct mr_scanner *sc, const char *msg, bool down)
{
    pthread_mutex_lock(&sc->mu);
    sc->status.errors++;
    sc->status.down = down;
    if (down)
        sc->status.down_at = mr_clock_wall_ms();
    snprintf(sc->status.last_error, sizeof sc->status.last_error, "%s", msg);
    pthread_mutex_unlock(&sc->mu);
}

static void note_ok(struct mr_scanner *sc)
{
    pthread_mutex_lock(&sc->mu);
    sc->status.down = false;
    sc->status.last_ok_at = mr_clock_wall_ms();
    pthread_mutex_unlock(&sc->mu);
}

/* Records a verdict; true when the round may go on. */
static bool record(struct mr_scanner *sc, const struct mr_scan_item *it,
                   const char *scan, const char *signature, const char *error,
                   bool reused)
{
    struct mr_scan_verdict v = {.id = it->id,
                                .scan = scan,
                                .signature = signature,
                                .error = error,
                                .now = mr_clock_wall_ms(),
                                .rescan_at = it->rescan_at};
    /* Should a clean verdict lift an infected block, the policy must still
     * have its say: the infection's reason had replaced the policy's. */
    struct mr_attach_verdict pv = {0};
    if (strcmp(scan, "clean") == 0) {
        struct mr_attach_policy policy;
        mr_attach_policy_from_config(sc->cfg, &policy);
        mr_attach_judge(&policy, it->filename, it->safe_filename,
                        it->content_type, it->detected_type, &pv);
        v.policy_reason = pv.blocked ? pv.reason : NULL;
    }
    struct mr_error err = {0};
    int rc = mr_store_scan_result(sc->st, &v, &err);
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)it->id);
    if (rc < 0 && rc != MR_ENOTFOUND) {
        /* The verdict is lost, the attachment still pending: it is
         * scanned again in a later round. */
        mr_log_kv(sc->log, MR_LOG_ERROR, "scan", "cannot record a verdict",
                  "attachment", id, "error", err.msg, NULL);
        sc->store_failed = true;
        return false;
    }
    if (rc == 0 && sc->metrics)
        mr_metrics_inc(&sc->metrics->scans[mr_metrics_scan_outcome(scan)]);
    if (rc == 0) {
        pthread_mutex_lock(&sc->mu);
        sc->status.scanned++;
        if (strcmp(scan, "infected") == 0)
            sc->status.infected++;
        pthread_mutex_unlock(&sc->mu);
    }
    if (strcmp(scan, "infected") == 0)
        mr_log_kv(sc->log, MR_LOG_WARN, "scan", "infected attachment blocked",
                  "attachment", id, "tenant", it->tenant, "signature",
                  signature, "sha256", it->sha256, "reused",
                  reused ? "true" : "false", NULL);
    else if (strcmp(scan, "error") == 0)
        mr_log_kv(sc->log, MR_LOG_WARN, "scan",
                  "attachment could not be "
                  "scanned",
                  "attachment", id, "tenant", it->tenant, "error", error, NULL);
    return true;
}

/* One attachment. Returns false when the round should stop (clamd is
 * down, or the store failed). */
static bool scan_one(struct mr_scanner *sc, const struct mr_scan_item *it)
{
    struct mr_error err = {0};
    char *known = NULL, *sig = NULL;
    if (it->rescan_at == 0 &&
        mr_store_scan_known(sc->st, it->tenant, it->sha256,
                            mr_clock_wall_ms() - MR_SCANNER_REUSE_MS, &known, &sig,
                            &err) == 0) {
        bool ok = record(sc, it, known, sig, NULL, true);
        free(known);
        free(sig);
        return ok;
    }
    struct mr_blob_map map = {0};
    int rc = mr_blob_map(sc->blob, it->sha256, &map, &err);
    if (rc == MR_ENOTFOUND || rc == MR_EINVAL) {
        /* Bytes that are gone cannot be scanned later either. */
        return record(sc, it, "error", NULL, "the blob is missing", false);
    }
    if (rc < 0) {
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)it->id);
        mr_log_kv(sc->log, MR_LOG_ERROR, "scan", "cannot read an attachment",
                  "attachment", id, "error", err.msg, NULL);
        sc->store_failed = true;
        return false;
    }
    struct mr_clamd_result res;
    rc = mr_clamd_scan(&sc->copt, map.p, map.len, &res, &err);
    mr_blob_unmap(&map);
    if (rc == 0) {
        note_ok(sc);
        if (sc->down_rounds > 0)
            mr_log_kv(sc->log, MR_LOG_INFO, "scan", "clamd answers again",
                      NULL);
        sc->down_rounds = 0;
        switch (res.verdict) {
        case MR_CLAMD_CLEAN: return record(sc, it, "clean", NULL, NULL, false);
        case MR_CLAMD_INFECTED:
            return record(sc, it, "infected", res.detail, NULL, false);
        default: {
            char msg[300];
            snprintf(msg, sizeof msg, "clamd: %s", res.detail);
            return record(sc, it, "error", NULL, msg, false);
        }
        }
    }
    if (rc == MR_EAGAIN && atomic_load(&sc->stopping))
        /* Aborted by mr_scanner_stop: no verdict and no attempt; the
         * attachment stays pending for the next start. */
        return false;
    if (rc == MR_EAGAIN || rc == MR_EINVAL) {
        /* clamd is not there: no attachment's fault. */
        if (sc->down_rounds == 0)
            mr_log_kv(sc->log, MR_LOG_ERROR, "scan",
                      "clamd cannot be reached; attachments stay pending",
                      "error", err.msg, NULL);
        note_error(sc, err.msg, true);
        sc->down_rounds++;
        return false;
    }
    /* The conversation broke: the attachment's attempt. */
    note_error(sc, err.msg, false);
    int attempts = it->attempts + 1;
    if (attempts >= MR_SCANNER_MAX_ATTEMPTS)
        return record(sc, it, "error", NULL, err.msg, false);
    struct mr_error rerr = {0};
    int64_t next = mr_clock_wall_ms() + backoff_ms(sc, attempts);
    if (mr_store_scan_retry(sc->st, it->id, attempts, next, err.msg, &rerr) <
        0) {
        mr_log_kv(sc->log, MR_LOG_ERROR, "scan", "cannot record an attempt",
                  "error", rerr.msg, NULL);
        sc->store_failed = true;
        return false;
    }
    return true;
}

static void *run(void *arg)
{
    struct mr_scanner *sc = arg;
    uint64_t gen = mr_store_commit_gen(sc->st);
    while (!atomic_load(&sc->stopping)) {
        struct mr_scan_item *items = NULL;
        size_t n = 0;
        struct mr_error err = {0};
        gen = mr_store_commit_gen(sc->st);
        sc->store_failed = false;
        if (mr_store_scan_due(sc->st, mr_clock_wall_ms(), MR_SCANNER_BATCH, &items, &n,
                              &err) < 0) {
            mr_log_kv(sc->log, MR_LOG_ERROR, "scan",
                      "cannot read pending attachments", "error", err.msg,
                      NULL);
            sc->store_failed = true;
        }
        bool go = true;
        for (size_t i = 0; i < n && go && !atomic_load(&sc->stopping); i++)
            go = scan_one(sc, &items[i]);
        mr_scan_item_list_free(items, n);
        if (atomic_load(&sc->stopping))
            break;
        sc->store_rounds = sc->store_failed ? sc->store_rounds + 1 : 0;
        int64_t wait = 0;
        if (sc->down_rounds > 0)
            wait = backoff_ms(sc, sc->down_rounds);
        if (sc->store_rounds > 0 && backoff_ms(sc, sc->store_rounds) > wait)
            wait = backoff_ms(sc, sc->store_rounds);
        if (wait > 0)
            nap(sc, wait);
        else if (!go || n < MR_SCANNER_BATCH)
            /* Idle: wake when the store commits (a delivery may have
             * added pending attachments), or a retry falls due. */
            (void)mr_store_commit_wait(sc->st, gen, ROUND_MS);
    }
    return NULL;
}

int mr_scanner_start(const struct mr_config *cfg, struct mr_store *st,
                     struct mr_blob *blob, struct mr_log *log,
                     struct mr_metrics *metrics, struct mr_scanner **out,
                     struct mr_error *err)
{
    *out = NULL;
    if (cfg->clamd.socket == NULL && cfg->clamd.address == NULL)
        return 0;
    struct mr_scanner *sc = mr_xcalloc(1, sizeof *sc);
    sc->cfg = cfg;
    sc->st = st;
    sc->blob = blob;
    sc->log = log;
    sc->metrics = metrics;
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    atomic_init(&sc->stopping, false);
    mr_scanner_clamd_options(cfg, &sc->copt);
    sc->copt.stop = &sc->stopping;
    int rc = pthread_create(&sc->thread, NULL, run, sc);
    if (rc != 0) {
        pthread_cond_destroy(&sc->cv);
        pthread_mutex_destroy(&sc->mu);
        free(sc);
        return mr_error_set(err, MR_EIO, "scanner: cannot start a thread: %s",
                            strerror(rc));
    }
    *out = sc;
    return 0;
}

void mr_scanner_stop(struct mr_scanner *sc)
{
    if (sc == NULL)
        return;
    pthread_mutex_lock(&sc->mu);
    atomic_store(&sc->stopping, true);
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    pthread_join(sc->thread, NULL);
    pthread_cond_destroy(&sc->cv);
    pthread_mutex_destroy(&sc->mu);
    free(sc);
}
