/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rescan.c - a bulk rescan's filters from the operator's words (rescan.h).
 */
#include "scan/rescan.h"

#include <stdlib.h>
#include <string.h>

#include "mime/date.h"
#include "util/span.h"

bool mr_scan_configured(const struct mr_config *cfg)
{
    return cfg != NULL &&
           (cfg->clamd.socket != NULL || cfg->clamd.address != NULL);
}

int mr_scan_duration_ms(const char *s, int64_t *ms, struct mr_error *err)
{
    static const struct {
        const char *name;
        int64_t mult;
    } units[] = {{"", 1000},           {"ms", 1},      {"s", 1000},
                 {"m", 60000},         {"h", 3600000}, {"d", 86400000},
                 {"w", 7LL * 86400000}};
    *ms = 0;
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return mr_error_set(err, MR_EINVAL,
                            "a duration is a number and a unit (90s, 30m, "
                            "24h, 7d)");
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].name) != 0)
            continue;
        if (v == 0 ||
            v > (unsigned long long)(MR_SCAN_SINCE_MAX_MS / units[i].mult))
            break;
        *ms = (int64_t)v * units[i].mult;
        return 0;
    }
    return mr_error_set(err, MR_EINVAL,
                        "'%.40s' is not a duration of 1 ms to 10 years (90s, "
                        "30m, 24h, 7d)",
                        s);
}

int mr_scan_rescan_filter(const char *state, const char *since,
                          const char *received_after, int64_t now,
                          struct mr_scan_rescan_filter *f, struct mr_error *err)
{
    static const struct {
        const char *name;
        enum mr_scan_rescan_state state;
    } states[] = {{"error", MR_SCAN_RESCAN_ERROR},
                  {"clean", MR_SCAN_RESCAN_CLEAN},
                  {"infected", MR_SCAN_RESCAN_INFECTED},
                  {"all", MR_SCAN_RESCAN_ALL}};
    f->state = MR_SCAN_RESCAN_ERROR;
    f->received_after = 0;
    if (state != NULL) {
        size_t i = 0;
        while (i < sizeof states / sizeof states[0] &&
               strcmp(states[i].name, state) != 0)
            i++;
        if (i == sizeof states / sizeof states[0])
            return mr_error_set(err, MR_EINVAL,
                                "state '%.40s': error, clean, infected or "
                                "all",
                                state);
        f->state = states[i].state;
    }
    if (since != NULL && received_after != NULL)
        return mr_error_set(err, MR_EINVAL,
                            "since and received_after: one or the other");
    if (since != NULL) {
        int64_t ms;
        int rc = mr_scan_duration_ms(since, &ms, err);
        if (rc < 0)
            return rc;
        f->received_after = now - ms > 1 ? now - ms : 1;
    } else if (received_after != NULL) {
        int64_t t;
        if (mr_date_parse(mr_span_cstr(received_after), &t, NULL) < 0 || t < 0)
            return mr_error_set(err, MR_EINVAL,
                                "received_after '%.60s' is not an ISO 8601 "
                                "time (2026-11-27T09:00:00Z)",
                                received_after);
        f->received_after = t * 1000;
    }
    return 0;
}
