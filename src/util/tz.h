/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tz.h - UTC offsets of an IANA time zone, without touching the process's
 * TZ: localtime_r reads one global zone, so switching it per call (a rules
 * file per tenant, each with its own zone) is neither thread-safe nor fast.
 *
 * A zone is read once from its TZif file (RFC 8536, versions 1 to 4) into
 * an immutable mr_tz: the transition table (64-bit times of version 2+, or
 * the 32-bit table of a version 1 file) and the POSIX TZ string of the
 * footer, which gives the offset after the last transition (a "slim"
 * zoneinfo file has no transitions after the last rule change at all, and
 * a "fat" one stops in 2037). Leap-second records are ignored (zoneinfo's
 * "right/" zones are not supported: offsets are POSIX times). Before the
 * first transition the first local time type applies (RFC 8536 3.2).
 *
 * An mr_tz is immutable after loading: any number of threads may call
 * mr_tz_offset on it at once. Owned by the caller (mr_tz_free).
 */
#ifndef MR_TZ_H
#define MR_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define MR_TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define MR_TZ_MAX_FILE (256u << 10) /* the largest zone is under 4 KiB */

struct mr_tz;

/* Loads zone `name` ("Europe/Berlin") from dir (NULL: MR_TZ_DEFAULT_DIR).
 * "UTC" and "Etc/UTC" work without a file. A name with "..", a leading
 * '/' or bytes outside [A-Za-z0-9/_+-] is refused. Returns 0, MR_ENOTFOUND
 * (no such zone), MR_EINVAL (not a TZif file) with the reason in err. */
int mr_tz_load(const char *dir, const char *name, struct mr_tz **out,
               struct mr_error *err);

/* The same from a TZif file's bytes. */
int mr_tz_parse(const void *data, size_t len, struct mr_tz **out,
                struct mr_error *err);

/* Seconds east of UTC at Unix time t (seconds). */
int32_t mr_tz_offset(const struct mr_tz *tz, int64_t t);

void mr_tz_free(struct mr_tz **tz);

#endif
