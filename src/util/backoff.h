/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backoff.h - the one computation of exponential retry delays, for every
 * queue that tries again after a failure: intake jobs (ticket/worker.c),
 * outbound mail (outbound/mail_sender.c) and antivirus scans
 * (scan/scanner.c). Webhooks and integrations retry on a fixed schedule
 * instead (mr_dispatch_retry_delay_ms).
 *
 * Pure functions of their arguments: no clock, no randomness of their
 * own (the caller passes a random value), so tests can pin every result.
 */
#ifndef MR_BACKOFF_H
#define MR_BACKOFF_H

#include <stdint.h>

/* The delay before try `attempt` + 1: base_ms * 2^(attempt-1), at most
 * max_ms. attempt < 1 counts as 1, base_ms < 1 as 1; max_ms <= 0 means
 * no cap. Never overflows, however large attempt is. */
int64_t mr_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms);

/* ms spread into [ms/2, ms) by rnd, a random value in [0, 1): retries of
 * a burst that failed together do not all come back at once. */
int64_t mr_backoff_jitter(int64_t ms, double rnd);

/* A random value in [0, 1) for the rnd arguments here and in
 * mr_dispatch_retry_delay_ms (arc4random: no seed, no shared state). */
double mr_backoff_rnd(void);

#endif
