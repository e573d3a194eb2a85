/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgid.h - Message-ID, In-Reply-To and References (RFC 5322 3.6.4).
 *
 * Ids are returned normalized: without the angle brackets, surrounding
 * whitespace and comments removed, internal folding whitespace removed,
 * quoted local parts unquoted where the quotes are not needed. Case is
 * kept (ids are case-sensitive in practice). Ids longer than max_len are
 * rejected (flagged), so index keys stay bounded; max_len 0 means 998,
 * the RFC 5322 line limit.
 */
#ifndef MR_MSGID_H
#define MR_MSGID_H

#include <stddef.h>

#include "../util/arena.h"
#include "../util/span.h"

enum mr_msgid_flags {
    MR_MSGID_JUNK = 1 << 0,     /* text between/around ids was skipped */
    MR_MSGID_TOO_LONG = 1 << 1, /* an id over max_len was dropped */
    MR_MSGID_TOO_MANY = 1 << 2, /* more than max ids: the OLDEST dropped */
    MR_MSGID_NO_BRACKETS = 1 << 3, /* an id without <> was accepted */
};

/* The id of a Message-ID (or Content-ID) value: the first <...> token
 * holding a non-empty id; failing that, a single bare token that looks
 * like local@domain (flagged NO_BRACKETS). NULL when there is none.
 * Returned string lives in the arena. */
const char *mr_msgid_parse(struct mr_arena *a, mr_span raw, size_t max_len,
                           unsigned *flags_r);

/* Every id in an In-Reply-To or References value, in order, tolerant of
 * junk between ids (phrases, commas, missing brackets around a lone
 * local@domain). When there are more than max, the NEWEST max (the last
 * ones) are kept. *ids_r is an arena array. Returns the count. */
size_t mr_msgid_list(struct mr_arena *a, mr_span raw, size_t max,
                     size_t max_len, const char ***ids_r, unsigned *flags_r);

#endif
