/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scanner.h - the antivirus scanner: one thread (started by `mailroom
 * serve` when the configuration has a `clamd:` section) that takes pending
 * attachments from the store, streams each blob to clamd (clamd.h) and
 * records the verdict with its attachment.scanned event.
 *
 * Scanning is off the delivering path: a message is stored, threaded and
 * announced without waiting for clamd; its attachments are 'pending' until
 * the scanner gets to them (docs/attachments.md says what is served
 * meanwhile). Nothing is lost while clamd is down: an attachment that
 * could not be scanned stays pending, and the scanner tries again with a
 * backoff (doubling from 1 s up to clamd.retry_max), and so it does while
 * the store cannot record a verdict (or the blob folder cannot be read):
 * the attachment is scanned again only after that wait, never in a tight
 * loop. A conversation that breaks after connecting (a step timeout, the
 * whole scan over clamd.scan_timeout, a malformed reply) counts against
 * the attachment: after MR_SCANNER_MAX_ATTEMPTS it is recorded as 'error'.
 * clamd's own ERROR answer (StreamMaxLength exceeded, say) is 'error' at
 * once. A verdict for the same bytes (tenant, sha256) recorded within the
 * last MR_SCANNER_REUSE_MS is reused without asking clamd again, except
 * for an attachment queued by a rescan (mr_store_scan_rescan), which is
 * always asked again.
 *
 * mr_scanner_stop aborts a scan in flight (the clamd client's stop flag,
 * read every 100 ms), so it returns promptly whatever clamd does; the
 * aborted attachment stays pending with no attempt counted.
 *
 * Ownership: the scanner borrows cfg, store, blob, log and metrics (may
 * be NULL; each recorded verdict is counted in metrics->scans), which must
 * outlive mr_scanner_stop. Threads: mr_scanner_status may be called from
 * any thread.
 */
#ifndef MR_SCAN_SCANNER_H
#define MR_SCAN_SCANNER_H

#include <stdbool.h>
#include <stdint.h>

#include "blob/blob.h"
#include "config/config.h"
#include "scan/clamd.h"
#include "store/store.h"
#include "util/error.h"
#include "util/log.h"
#include "util/metrics.h"

#define MR_SCANNER_BATCH 16
#define MR_SCANNER_MAX_ATTEMPTS 5
#define MR_SCANNER_REUSE_MS (3600LL * 1000)

struct mr_scanner;

/* What the scanner has seen since it started, for /api/v1/health. */
struct mr_scanner_status {
    uint64_t scanned; /* verdicts recorded (reused ones included) */
    uint64_t infected;
    uint64_t errors;      /* failed conversations with clamd */
    bool down;            /* the last attempt could not reach clamd */
    int64_t last_ok_at;   /* Unix ms of the last answer from clamd; 0 */
    int64_t down_at;      /* Unix ms it last could not be reached; 0 */
    char last_error[256]; /* "" when none */
};

/* clamd's client options from the configuration. */
void mr_scanner_clamd_options(const struct mr_config *cfg,
                              struct mr_clamd_options *o);

/* Starts the thread; *out is NULL (and 0 returned) when the configuration
 * has no clamd. */
int mr_scanner_start(const struct mr_config *cfg, struct mr_store *st,
                     struct mr_blob *blob, struct mr_log *log,
                     struct mr_metrics *metrics, struct mr_scanner **out,
                     struct mr_error *err);
/* Stops (a scan in flight is abandoned, its attachment left pending) and
 * frees; returns within about ROUND_MS. NULL is a no-op. */
void mr_scanner_stop(struct mr_scanner *sc);

void mr_scanner_status(struct mr_scanner *sc, struct mr_scanner_status *out);

#endif
