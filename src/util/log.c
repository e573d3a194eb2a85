/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - JSON-lines logging; see log.h.
 */
#include "util/log.h"

#include <stdarg.h>
#include <time.h>

#include "util/buf.h"
#include "util/json.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void mr_log_init(struct mr_log *lg, FILE *out, enum mr_log_level min)
{
    lg->out = out;
    lg->min = min;
    pthread_mutex_init(&lg->mu, NULL);
}

void mr_log_destroy(struct mr_log *lg)
{
    if (lg)
        pthread_mutex_destroy(&lg->mu);
}

static void begin(struct mr_json *j, enum mr_log_level lv, const char *at,
                  const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char stamp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);
    mr_json_obj_begin(j);
    mr_json_key(j, "ts");
    mr_json_cstr(j, stamp);
    mr_json_key(j, "level");
    mr_json_cstr(j, level_names[lv]);
    mr_json_key(j, "at");
    mr_json_cstr(j, at);
    mr_json_key(j, "msg");
    mr_json_cstr(j, msg);
}

static void emit(struct mr_log *lg, struct mr_buf *b)
{
    mr_buf_putc(b, '\n');
    pthread_mutex_lock(&lg->mu);
    fwrite(b->p, 1, b->len, lg->out);
    fflush(lg->out);
    pthread_mutex_unlock(&lg->mu);
    mr_buf_release(b);
}

void mr_logf(struct mr_log *lg, enum mr_log_level lv, const char *at,
             const char *fmt, ...)
{
    if (!lg || lv < lg->min)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct mr_buf b;
    struct mr_json j;
    mr_buf_init(&b, 64 * 1024);
    mr_json_init(&j, &b, false);
    begin(&j, lv, at, msg);
    mr_json_obj_end(&j);
    emit(lg, &b);
}

void mr_log_kv(struct mr_log *lg, enum mr_log_level lv, const char *at,
               const char *msg, ...)
{
    if (!lg || lv < lg->min)
        return;
    struct mr_buf b;
    struct mr_json j;
    mr_buf_init(&b, 64 * 1024);
    mr_json_init(&j, &b, false);
    begin(&j, lv, at, msg);
    va_list ap;
    va_start(ap, msg);
    /* Bounded: a runaway argument list stops at 32 pairs. */
    for (int i = 0; i < 32; i++) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        mr_json_key(&j, k);
        mr_json_cstr(&j, v);
    }
    va_end(ap);
    mr_json_obj_end(&j);
    emit(lg, &b);
}
