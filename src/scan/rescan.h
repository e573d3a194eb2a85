/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rescan.h - what `mailroom attachments rescan` and POST
 * /api/v1/attachments/rescan share: the filters of a bulk rescan, read
 * from the words an operator types (docs/attachments.md), so that the
 * command line and the API accept exactly the same things. The queueing
 * itself is the store's (mr_store_scan_rescan_many); the scanning, the
 * scanner thread's.
 *
 * Nothing here keeps state or prints; the functions only borrow their
 * arguments.
 */
#ifndef MR_SCAN_RESCAN_H
#define MR_SCAN_RESCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "store/store.h"
#include "util/error.h"

/* The longest window --since takes: ten years. */
#define MR_SCAN_SINCE_MAX_MS (3660LL * 86400 * 1000)

/* Is an antivirus configured (a clamd socket or address)? Without one a
 * rescan would leave attachments pending forever. */
bool mr_scan_configured(const struct mr_config *cfg);

/* "10m", "24h", "7d", "90s", "1500ms" (a bare number is seconds), 1 ms up
 * to MR_SCAN_SINCE_MAX_MS, into *ms. MR_EINVAL otherwise. */
int mr_scan_duration_ms(const char *s, int64_t *ms, struct mr_error *err);

/* Fills f->state and f->received_after from the operator's words, leaving
 * the other fields alone: state "error" (also when NULL), "clean",
 * "infected" or "all"; at most one of since (a duration before now, Unix
 * ms) and received_after (an ISO 8601 / RFC 3339 time; a date without a
 * zone is UTC). MR_EINVAL with a message naming the bad value. */
int mr_scan_rescan_filter(const char *state, const char *since,
                          const char *received_after, int64_t now,
                          struct mr_scan_rescan_filter *f,
                          struct mr_error *err);

#endif
