/* SPDX-License-Identifier: Apache-2.0 */
/*
 * date.h - message dates (RFC 5322 3.3, obsolete 4.3) to UTC.
 *
 * Accepts: optional day name (any case, with or without comma), 1-2 digit
 * day, English month names and 3-letter abbreviations in any case, 2-, 3-
 * and 4-digit years (RFC 5322 4.3: 00-49 -> 20xx, 50-99 -> 19xx, 3 digits
 * + 1900), times with or without seconds, numeric zones (+hhmm, also
 * +hh:mm and +hh), obsolete zones (UT, GMT, Z, EST/EDT, CST/CDT, MST/MDT,
 * PST/PDT; military letters are treated as +0000 as RFC 5322 says), common
 * extra names (UTC, CET, CEST, BST, ...), trailing comments "(CEST)",
 * dots instead of colons, ISO 8601 / RFC 3339 dates, asctime() dates
 * ("Mon Jan  6 10:00:00 2025"), and missing zones (taken as UTC, flagged;
 * an unknown 2-5 letter zone name is treated the same way).
 * Fields are range-checked (leap years included); anything else fails.
 */
#ifndef MR_DATE_H
#define MR_DATE_H

#include <stdint.h>

#include "../util/span.h"

enum mr_date_flags {
    MR_DATE_NO_ZONE = 1 << 0,    /* no zone given: UTC assumed */
    MR_DATE_OBSOLETE = 1 << 1,   /* obsolete or non-standard form */
};

/* Parses s. Returns 0 and stores seconds since the Unix epoch (UTC) in
 * *t_r, or MR_EINVAL when s is not a date. ORs flags into *flags_r (may
 * be NULL). */
int mr_date_parse(mr_span s, int64_t *t_r, unsigned *flags_r);

/* Writes t as RFC 3339 UTC, "2025-01-06T10:00:00Z", NUL-terminated. */
void mr_date_rfc3339(int64_t t, char out[32]);

#endif
