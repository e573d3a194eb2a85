/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mail_sender.h - the thread that drains outbound_mail (docs/outbound.md):
 * claims due rows (src/store/outbound.c), hands each to the relay
 * (smtp_client.h) and records the verdict.
 *
 * 2xx: sent. 4xx, a relay that cannot be reached, a timeout, a TLS
 * failure, STARTTLS or AUTH missing: tried again after
 * outbound.backoff_base doubled per attempt (at most backoff_max), failed
 * after outbound.max_attempts. 5xx (535 included): failed at once, the
 * relay's reply kept as last_error. A claim holds a row for a lease longer than
 * one attempt can take, so a sender that dies mid-attempt leaves the row
 * to be tried again (at least once: a relay that took the message but
 * whose 250 was lost gets it twice; the Message-ID is the same).
 *
 * The sender borrows cfg, store, log and metrics (may be NULL: nothing
 * counted), which must outlive it; every attempt's end is counted in
 * metrics->outbound_mail. It owns the TLS client context, made at start
 * from outbound.tls_ca and tls_verify (so a CA file that cannot be read
 * stops the start, not every attempt).
 */
#ifndef MR_MAIL_SENDER_H
#define MR_MAIL_SENDER_H

#include <stdint.h>

#include "config/config.h"
#include "store/store.h"
#include "util/error.h"
#include "util/log.h"
#include "util/metrics.h"

struct mr_mail_sender;

/* Starts the thread; *out is NULL (and 0 returned) when outbound.smtp is
 * not set. */
int mr_mail_sender_start(const struct mr_config *cfg, struct mr_store *st,
                         struct mr_log *log, struct mr_metrics *metrics,
                         struct mr_mail_sender **out, struct mr_error *err);
/* NULL is a no-op. An attempt in flight finishes (bounded by the SMTP
 * timeout) before the thread ends. */
void mr_mail_sender_stop(struct mr_mail_sender *s);

/* The delay before attempt `attempts` + 1, or -1 when attempts has
 * reached max_attempts (failed). */
int64_t mr_mail_sender_retry_ms(int attempts, int max_attempts, int base_ms,
                                int max_ms);

#endif
