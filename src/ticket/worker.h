/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker.h - the pipeline after the acknowledgement: claim a job, parse,
 * store the message and its ticket in one transaction.
 *
 * A pool of threads claims jobs with a lease. A job whose worker died is
 * claimed again once its lease runs out; a failed attempt is retried with
 * exponential backoff and jitter; input that can never succeed (not a
 * message at all) and jobs past max_attempts are dead-lettered with their
 * last error for `mailroom dlq`. Every step is idempotent: attachments are
 * content-addressed and the store drops a message_id it has already, so
 * running a job twice stores it once.
 *
 * Ownership: the pool borrows everything in its deps, which must outlive
 * mr_workers_stop.
 */
#ifndef MR_WORKER_H
#define MR_WORKER_H

#include <stdint.h>

#include "blob/blob.h"
#include "config/config.h"
#include "store/store.h"
#include "ticket/rules_slot.h"
#include "util/error.h"
#include "util/log.h"
#include "util/metrics.h"

struct mr_worker_deps {
    const struct mr_config *cfg;
    struct mr_store *store;
    struct mr_blob *blob;
    struct mr_metrics *metrics;
    struct mr_log *log; /* may be NULL */
    /* The current rules (docs/rules.md); NULL: none. Each batch holds a
     * reference for its duration, so a reload never changes the rules
     * under a message being prepared. */
    struct mr_rules_slot *rules;
};

struct mr_workers;

/* Starts cfg->workers.count threads (at least 1). */
int mr_workers_start(const struct mr_worker_deps *deps,
                     struct mr_workers **out, struct mr_error *err);
/* Wakes idle workers: new jobs were queued. Takes the pool as void * so
 * it can be given to mr_intake_on_enqueue. */
void mr_workers_wake(void *pool);
/* Lets every worker finish the job in hand, then joins them. NULL fine. */
void mr_workers_stop(struct mr_workers *w);

/* Runs one claimed job to its end (stored, retried or dead) on the
 * calling thread: what each worker thread does per job, exposed for tests
 * and tools. Returns 0 when the job was stored (or was a duplicate). */
int mr_worker_run_job(const struct mr_worker_deps *deps,
                      const struct mr_job *job, const char *worker,
                      struct mr_error *err);

/* Backoff before attempt `attempts`+1: base * 2^(attempts-1), capped,
 * with jitter in [50%, 100%]. rnd: a random value in [0, 1). */
int64_t mr_worker_backoff_ms(int attempts, int base_ms, int max_ms,
                             double rnd);

#endif
