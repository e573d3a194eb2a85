/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - the one logger: JSON lines on stderr (or any FILE).
 *
 * One line per event: {"ts":"2026-11-27T03:04:05.123Z","level":"info",
 * "at":"smtp","msg":"..."} plus optional key/value fields. A line is
 * written with one fwrite under the logger's mutex, so lines from threads
 * never interleave. The logger is an explicit context owned by serve (or a
 * CLI command); library modules take it as a borrowed pointer and may be
 * given NULL, which logs nothing.
 */
#ifndef MR_LOG_H
#define MR_LOG_H

#include <pthread.h>
#include <stdio.h>

enum mr_log_level { MR_LOG_DEBUG, MR_LOG_INFO, MR_LOG_WARN, MR_LOG_ERROR };

struct mr_log {
    FILE *out;
    enum mr_log_level min;
    pthread_mutex_t mu;
};

void mr_log_init(struct mr_log *lg, FILE *out, enum mr_log_level min);
void mr_log_destroy(struct mr_log *lg);

/* at: the component ("smtp", "worker"). kv: NULL-terminated pairs of
 * const char * key, const char * value (a NULL value is written as null),
 * given after the formatted message's arguments through mr_log_kv. */
void mr_logf(struct mr_log *lg, enum mr_log_level lv, const char *at,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Same, with fields: mr_log_kv(lg, MR_LOG_INFO, "worker", "stored",
 * "job", "12", "ticket", "4", NULL). */
void mr_log_kv(struct mr_log *lg, enum mr_log_level lv, const char *at,
               const char *msg, ...) __attribute__((sentinel));

#endif
