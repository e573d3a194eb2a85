/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - the schema: from the YAML tree (yaml.c) to struct mr_config.
 *
 * Every field starts at its documented default; the file only overrides.
 * Each reader checks one value's type and range and, on a problem, records
 * a diagnostic and leaves the default, so one pass finds every mistake in
 * the file. Cross-field checks (duplicate tenants or addresses, the
 * webhook's tenant, listeners on the same address) run once the whole file
 * is read. Only a file without a single problem yields a configuration.
 *
 * docs/configuration.md is the user's side of this file: a key added here
 * is documented there, and its complete example is
 * tests/data/config/full.yaml.
 */
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config-private.h"
#include "util/buf.h"
#include "util/span.h"
#include "outbound/ack_mail.h"

#define STR_MAX 4096 /* paths, URLs, secrets */
#define TENANT_NAME_MAX 64
#define INBOX_NAME_MAX 128
#define SECRET_MIN 16

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define MS_PER_S 1000ull
#define MS_PER_H (3600ull * MS_PER_S)

/* ---- diagnostics ---- */

void mr__config_diag(struct mr__cfg_ctx *ctx, int line, int col,
                     const char *fmt, ...)
{
    if (ctx->ndiags >= MR__CFG_MAX_DIAGS) {
        ctx->truncated = true;
        return;
    }
    if (ctx->ndiags == ctx->alloc) {
        ctx->alloc = ctx->alloc ? ctx->alloc * 2 : 8;
        ctx->diags = mr_xrealloc(ctx->diags, ctx->alloc * sizeof(*ctx->diags));
    }
    struct mr_config_diag *d = &ctx->diags[ctx->ndiags++];
    d->line = line;
    d->column = line > 0 ? col : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    va_end(ap);
}

#define DIAG(ctx, node, ...)                                                   \
    mr__config_diag((ctx), (node)->line, (node)->col, __VA_ARGS__)

void mr_config_diags_free(struct mr_config_diags *d)
{
    if (d == NULL)
        return;
    free(d->items);
    d->items = NULL;
    d->n = 0;
}

/* ---- looking at nodes ---- */

static const char *kind_name(const struct mr__cfg_node *n)
{
    switch (n->kind) {
    case MR__CFG_MAP: return "a mapping";
    case MR__CFG_SEQ: return "a list";
    case MR__CFG_SCALAR: break;
    }
    return "a single value";
}

static bool is_null(const struct mr__cfg_node *n)
{
    if (n->kind != MR__CFG_SCALAR || !n->plain)
        return false;
    mr_span s = mr_span_make(n->str, n->len);
    return n->len == 0 || mr_span_ieq(s, "~") || mr_span_ieq(s, "null");
}

static bool scalar_is(const struct mr__cfg_node *n, const char *lit)
{
    return n->kind == MR__CFG_SCALAR &&
           mr_span_ieq(mr_span_make(n->str, n->len), lit);
}

/* Checks a mapping's keys against the allowed ones: unknown keys (with a
 * suggestion when one is close), duplicates, keys that are not text.
 * Linear in the keys: a hostile file may repeat one key many times. */
static void check_keys(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *map,
                       const char *where, const char *const *allowed)
{
    char buf[64];
    int first_line[32] = {0};
    for (size_t i = 0; i < map->n && !ctx->truncated; i++) {
        const struct mr__cfg_node *k = map->items[2 * i];
        if (k->kind != MR__CFG_SCALAR) {
            DIAG(ctx, k, "%s: a key must be a plain word, not %s", where,
                 kind_name(k));
            continue;
        }
        size_t known = SIZE_MAX;
        const char *near = NULL;
        size_t near_d = 3;
        for (size_t a = 0; allowed[a] && a < 32; a++) {
            size_t na = strlen(allowed[a]);
            if (na == k->len && memcmp(allowed[a], k->str, na) == 0) {
                known = a;
                break;
            }
            size_t d = mr__cfg_distance(k->str, k->len, allowed[a], na);
            /* One edit for short words, two for longer ones. */
            if (d < near_d && d <= (na >= 6 ? 2u : 1u)) {
                near_d = d;
                near = allowed[a];
            }
        }
        if (known == SIZE_MAX && near)
            DIAG(ctx, k, "%s: unknown key '%s' (did you mean '%s'?)", where,
                 mr__cfg_show(k, buf, sizeof(buf)), near);
        else if (known == SIZE_MAX)
            DIAG(ctx, k, "%s: unknown key '%s'", where,
                 mr__cfg_show(k, buf, sizeof(buf)));
        else if (first_line[known] > 0)
            DIAG(ctx, k, "%s: duplicate key '%s' (first at line %d)", where,
                 allowed[known], first_line[known]);
        else
            first_line[known] = k->line;
    }
}

/* The value of key in map, or NULL. The first one wins; check_keys has
 * reported any duplicate. */
static const struct mr__cfg_node *get(const struct mr__cfg_node *map,
                                      const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; map && i < map->n; i++) {
        const struct mr__cfg_node *k = map->items[2 * i];
        if (k->kind == MR__CFG_SCALAR && k->len == n &&
            memcmp(k->str, key, n) == 0)
            return map->items[2 * i + 1];
    }
    return NULL;
}

/* A mapping, or NULL (after a diagnostic unless absent). */
static const struct mr__cfg_node *get_map(struct mr__cfg_ctx *ctx,
                                          const struct mr__cfg_node *parent,
                                          const char *key,
                                          const char *const *allowed)
{
    const struct mr__cfg_node *v = get(parent, key);
    if (v == NULL || is_null(v))
        return NULL;
    if (v->kind != MR__CFG_MAP) {
        DIAG(ctx, v, "%s must be a mapping (key: value lines), not %s", key,
             kind_name(v));
        return NULL;
    }
    check_keys(ctx, v, key, allowed);
    return v;
}

static bool want_scalar(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                        const char *what)
{
    if (v->kind == MR__CFG_SCALAR)
        return true;
    DIAG(ctx, v, "%s must be a single value, not %s", what, kind_name(v));
    return false;
}

/* ---- typed values ---- */

/* Text without NUL or control bytes, 1..max bytes. Replaces *dst. */
static bool read_text(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                      const char *what, size_t max, char **dst)
{
    if (!want_scalar(ctx, v, what))
        return false;
    if (v->len == 0) {
        DIAG(ctx, v, "%s must not be empty", what);
        return false;
    }
    if (v->len > max) {
        DIAG(ctx, v, "%s is longer than %zu bytes", what, max);
        return false;
    }
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)v->str[i];
        if (c < 0x20 || c == 0x7f) {
            DIAG(ctx, v, "%s holds a control character", what);
            return false;
        }
    }
    free(*dst);
    *dst = mr_xstrndup(v->str, v->len);
    return true;
}

static bool read_int(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                     const char *what, int64_t min, int64_t max, int *dst)
{
    char buf[64];
    int64_t x;
    size_t used;
    if (!want_scalar(ctx, v, what))
        return false;
    if (!mr__cfg_parse_int(v->str, v->len, &x, &used) || used != v->len) {
        DIAG(ctx, v, "%s must be a whole number, not '%s'", what,
             mr__cfg_show(v, buf, sizeof(buf)));
        return false;
    }
    if (x < min || x > max) {
        DIAG(ctx, v, "%s must be between %lld and %lld, not %lld", what,
             (long long)min, (long long)max, (long long)x);
        return false;
    }
    *dst = (int)x;
    return true;
}

static bool read_size(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                      const char *what, uint64_t min, uint64_t max,
                      uint64_t *dst)
{
    char buf[64];
    uint64_t x;
    bool bad_unit;
    if (!want_scalar(ctx, v, what))
        return false;
    if (!mr__cfg_parse_unit(v, mr__cfg_size_units, &x, &bad_unit)) {
        DIAG(ctx, v,
             "%s must be a size such as 50MB, 512KiB or 1048576, not '%s'%s",
             what, mr__cfg_show(v, buf, sizeof(buf)),
             bad_unit ? " (units: B, KB, MB, GB, KiB, MiB, GiB)" : "");
        return false;
    }
    if (x < min || x > max) {
        DIAG(ctx, v, "%s must be between %llu KiB and %llu GiB, not '%s'", what,
             (unsigned long long)(min / KIB), (unsigned long long)(max / GIB),
             mr__cfg_show(v, buf, sizeof(buf)));
        return false;
    }
    *dst = x;
    return true;
}

static void format_ms(uint64_t ms, char *buf, size_t size)
{
    if (ms % MS_PER_H == 0)
        snprintf(buf, size, "%lluh", (unsigned long long)(ms / MS_PER_H));
    else if (ms % (60 * MS_PER_S) == 0)
        snprintf(buf, size, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % MS_PER_S == 0)
        snprintf(buf, size, "%llus", (unsigned long long)(ms / MS_PER_S));
    else
        snprintf(buf, size, "%llums", (unsigned long long)ms);
}

/* A duration in milliseconds; with whole_s it must be whole seconds. */
static bool read_duration(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                          const char *what, uint64_t min_ms, uint64_t max_ms,
                          bool whole_s, uint64_t *dst_ms)
{
    char buf[64], lo[24], hi[24];
    uint64_t x;
    bool bad_unit;
    if (!want_scalar(ctx, v, what))
        return false;
    if (!mr__cfg_parse_unit(v, mr__cfg_duration_units, &x, &bad_unit)) {
        DIAG(ctx, v, "%s must be a duration such as 30s, 5m or 1h, not '%s'%s",
             what, mr__cfg_show(v, buf, sizeof(buf)),
             bad_unit ? " (units: ms, s, m, h, d; a bare number is seconds)"
                      : "");
        return false;
    }
    if (x < min_ms || x > max_ms) {
        format_ms(min_ms, lo, sizeof(lo));
        format_ms(max_ms, hi, sizeof(hi));
        DIAG(ctx, v, "%s must be between %s and %s, not '%s'", what, lo, hi,
             mr__cfg_show(v, buf, sizeof(buf)));
        return false;
    }
    if (whole_s && x % MS_PER_S != 0) {
        DIAG(ctx, v, "%s must be a whole number of seconds", what);
        return false;
    }
    *dst_ms = x;
    return true;
}

static bool read_seconds(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                         const char *what, uint64_t min_s, uint64_t max_s,
                         int *dst)
{
    uint64_t ms;
    if (!read_duration(ctx, v, what, min_s * MS_PER_S, max_s * MS_PER_S, true,
                       &ms))
        return false;
    *dst = (int)(ms / MS_PER_S);
    return true;
}

static bool read_bool(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                      const char *what, bool *dst)
{
    char buf[64];
    if (!want_scalar(ctx, v, what))
        return false;
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    for (size_t i = 0; yes[i]; i++) {
        if (scalar_is(v, yes[i]) || scalar_is(v, no[i])) {
            *dst = scalar_is(v, yes[i]);
            return true;
        }
    }
    DIAG(ctx, v, "%s must be true or false, not '%s'", what,
         mr__cfg_show(v, buf, sizeof(buf)));
    return false;
}

/* ---- listeners ---- */

static bool valid_hostname(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || (c == '-' && label > 0);
        if (!ok || ++label > 63)
            return false;
    }
    return label > 0 && h[n - 1] != '-';
}

int mr_config_listen_split(const char *addr, char *host, size_t host_size,
                           int *port, struct mr_error *err)
{
    size_t n = addr ? strnlen(addr, 300) : 0;
    const char *colon;
    const char *h;
    size_t nh;
    if (n == 0 || n >= 300)
        return mr_error_set(err, MR_EINVAL, "empty or overlong address");
    if (addr[0] == '[') {
        const char *close = memchr(addr, ']', n);
        if (close == NULL || close[1] != ':')
            return mr_error_set(err, MR_EINVAL,
                                "'%s': expected [IPv6]:port, as in [::1]:2525",
                                addr);
        h = addr + 1;
        nh = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = memrchr(addr, ':', n);
        if (colon == NULL)
            return mr_error_set(
                err, MR_EINVAL,
                "'%s': expected host:port, as in 127.0.0.1:2525", addr);
        if (memchr(addr, ':', (size_t)(colon - addr)) != NULL)
            return mr_error_set(
                err, MR_EINVAL,
                "'%s': an IPv6 address needs brackets, as in [::1]:2525", addr);
        h = addr;
        nh = (size_t)(colon - addr);
    }
    if (nh == 0)
        return mr_error_set(err, MR_EINVAL,
                            "'%s': the host is missing (0.0.0.0 or [::] listen "
                            "on every address)",
                            addr);
    if (nh >= host_size || nh > 253)
        return mr_error_set(err, MR_EINVAL, "'%s': host name too long", addr);
    char hbuf[256];
    memcpy(hbuf, h, nh);
    hbuf[nh] = '\0';
    unsigned char bin[16];
    if (addr[0] == '[') {
        if (inet_pton(AF_INET6, hbuf, bin) != 1)
            return mr_error_set(err, MR_EINVAL,
                                "'%s': '%s' is not an IPv6 address", addr,
                                hbuf);
    } else if (inet_pton(AF_INET, hbuf, bin) != 1 &&
               !valid_hostname(hbuf, nh)) {
        return mr_error_set(
            err, MR_EINVAL,
            "'%s': '%s' is neither an IPv4 address nor a host name", addr,
            hbuf);
    }
    const char *p = colon + 1;
    size_t np = n - (size_t)(p - addr);
    int64_t v;
    size_t used;
    if (np == 0 || p[0] < '0' || p[0] > '9' || !mr__cfg_parse_int(p, np, &v, &used) ||
        used != np || v < 1 || v > 65535)
        return mr_error_set(err, MR_EINVAL,
                            "'%s': the port must be a number from 1 to 65535",
                            addr);
    memcpy(host, hbuf, nh + 1);
    *port = (int)v;
    return 0;
}

static void read_listen(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *map,
                        const char *key, struct mr_listen *dst)
{
    const struct mr__cfg_node *v = get(map, key);
    char what[32];
    snprintf(what, sizeof(what), "listen.%s", key);
    if (v == NULL)
        return;
    if (is_null(v) ||
        (v->plain && (scalar_is(v, "off") || scalar_is(v, "false")))) {
        free(dst->addr);
        dst->addr = NULL;
        return;
    }
    char *addr = NULL;
    if (!read_text(ctx, v, what, 300, &addr))
        return;
    char host[256];
    int port;
    struct mr_error err;
    if (mr_config_listen_split(addr, host, sizeof(host), &port, &err) < 0) {
        DIAG(ctx, v, "%s: %s", what, err.msg);
        free(addr);
        return;
    }
    free(dst->addr);
    dst->addr = addr;
}

/* ---- sections ---- */

static void read_storage(struct mr__cfg_ctx *ctx,
                         const struct mr__cfg_node *root, struct mr_config *cfg)
{
    static const char *const keys[] = {"database", "blobs", "inline_max",
                                       NULL};
    const struct mr__cfg_node *m = get_map(ctx, root, "storage", keys);
    const struct mr__cfg_node *v;
    if ((v = get(m, "database")) != NULL &&
        read_text(ctx, v, "storage.database", STR_MAX, &cfg->database)) {
        mr_span s = mr_span_cstr(cfg->database);
        bool sqlite = mr_span_istarts(s, "sqlite:") && s.n > 7;
        bool pg = mr_span_istarts(s, "postgres://") ||
                  mr_span_istarts(s, "postgresql://");
        /* A file that `config check` passes must also start: PostgreSQL
         * is refused here, by name, until its store exists. */
        if (pg)
            DIAG(ctx, v,
                 "storage.database: the PostgreSQL store is not built yet; "
                 "use sqlite:PATH");
        else if (!sqlite)
            DIAG(ctx, v,
                 "storage.database must be sqlite:PATH, not '%s'",
                 cfg->database);
    }
    if ((v = get(m, "blobs")) != NULL)
        read_text(ctx, v, "storage.blobs", STR_MAX, &cfg->blob_dir);
    uint64_t im;
    if ((v = get(m, "inline_max")) != NULL &&
        read_size(ctx, v, "storage.inline_max", 0, GIB, &im)) {
        /* A row is read whole into memory, and SQLite stops at 1e9 bytes. */
        if (im > MR_CONFIG_INLINE_MAX_CAP)
            DIAG(ctx, v, "storage.inline_max must be at most 16MiB");
        else
            cfg->inline_max = im;
    }
}

static void read_listeners(struct mr__cfg_ctx *ctx,
                           const struct mr__cfg_node *root,
                           struct mr_config *cfg)
{
    static const char *const keys[] = {"smtp", "lmtp", "http", NULL};
    const struct mr__cfg_node *m = get_map(ctx, root, "listen", keys);
    if (m == NULL)
        return;
    read_listen(ctx, m, "smtp", &cfg->smtp);
    read_listen(ctx, m, "lmtp", &cfg->lmtp);
    read_listen(ctx, m, "http", &cfg->http);
    /* Two listeners on one address would fail at bind time; say it now. */
    struct {
        const char *key;
        const char *addr;
    } l[] = {{"smtp", cfg->smtp.addr},
             {"lmtp", cfg->lmtp.addr},
             {"http", cfg->http.addr}};
    for (size_t i = 1; i < 3; i++) {
        for (size_t j = 0; j < i; j++) {
            if (l[i].addr && l[j].addr && strcmp(l[i].addr, l[j].addr) == 0) {
                const struct mr__cfg_node *v = get(m, l[i].key);
                if (v == NULL)
                    v = m;
                DIAG(ctx, v, "listen.%s: same address as listen.%s (%s)",
                     l[i].key, l[j].key, l[i].addr);
            }
        }
    }
}

static void read_tls(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *root,
                     struct mr_config *cfg)
{
    static const char *const keys[] = {"cert", "key", NULL};
    const struct mr__cfg_node *m = get_map(ctx, root, "tls", keys);
    if (m == NULL)
        return;
    const struct mr__cfg_node *cert = get(m, "cert");
    const struct mr__cfg_node *key = get(m, "key");
    if (cert)
        read_text(ctx, cert, "tls.cert", STR_MAX, &cfg->tls_cert);
    if (key)
        read_text(ctx, key, "tls.key", STR_MAX, &cfg->tls_key);
    if ((cert == NULL) != (key == NULL))
        DIAG(
            ctx, m,
            "tls needs both cert and key (STARTTLS is offered only with both)");
}

static void read_limits(struct mr__cfg_ctx *ctx,
                        const struct mr__cfg_node *root, struct mr_config *cfg)
{
    static const char *const keys[] = {
        "message_size",       "http_body_size",
        "max_connections",    "max_connections_per_ip",
        "max_recipients",     "smtp_idle_timeout",
        "smtp_total_timeout", NULL};
    const struct mr__cfg_node *m = get_map(ctx, root, "limits", keys);
    const struct mr__cfg_node *v;
    bool http_set = false;
    if (m == NULL)
        return;
    if ((v = get(m, "message_size")) != NULL)
        read_size(ctx, v, "limits.message_size", KIB, 2 * GIB,
                  &cfg->limits.message_size);
    if ((v = get(m, "http_body_size")) != NULL)
        http_set = read_size(ctx, v, "limits.http_body_size", KIB, 2 * GIB,
                             &cfg->limits.http_body_size);
    if (!http_set)
        cfg->limits.http_body_size = cfg->limits.message_size;
    if ((v = get(m, "max_connections")) != NULL)
        read_int(ctx, v, "limits.max_connections", 1, 100000,
                 &cfg->limits.max_connections);
    if ((v = get(m, "max_connections_per_ip")) != NULL)
        read_int(ctx, v, "limits.max_connections_per_ip", 1,
                 cfg->limits.max_connections,
                 &cfg->limits.max_connections_per_ip);
    else if (cfg->limits.max_connections_per_ip > cfg->limits.max_connections)
        cfg->limits.max_connections_per_ip = cfg->limits.max_connections;
    if ((v = get(m, "max_recipients")) != NULL)
        read_int(ctx, v, "limits.max_recipients", 1, 10000,
                 &cfg->limits.max_recipients);
    if ((v = get(m, "smtp_idle_timeout")) != NULL)
        read_seconds(ctx, v, "limits.smtp_idle_timeout", 1, 3600,
                     &cfg->limits.smtp_idle_timeout_s);
    if ((v = get(m, "smtp_total_timeout")) != NULL)
        read_seconds(ctx, v, "limits.smtp_total_timeout", 1, 86400,
                     &cfg->limits.smtp_total_timeout_s);
    if ((v = get(m, "smtp_idle_timeout")) == NULL)
        v = m;
    if (cfg->limits.smtp_idle_timeout_s > cfg->limits.smtp_total_timeout_s)
        DIAG(ctx, v,
             "limits.smtp_idle_timeout (%ds) is longer than "
             "limits.smtp_total_timeout (%ds)",
             cfg->limits.smtp_idle_timeout_s, cfg->limits.smtp_total_timeout_s);
}

static void read_workers(struct mr__cfg_ctx *ctx,
                         const struct mr__cfg_node *root, struct mr_config *cfg)
{
    static const char *const keys[] = {"count",        "max_attempts", "lease",
                                       "backoff_base", "backoff_max",  NULL};
    const struct mr__cfg_node *m = get_map(ctx, root, "workers", keys);
    const struct mr__cfg_node *v;
    uint64_t ms;
    if (m == NULL)
        return;
    if ((v = get(m, "count")) != NULL)
        read_int(ctx, v, "workers.count", 1, 64, &cfg->workers.count);
    if ((v = get(m, "max_attempts")) != NULL)
        read_int(ctx, v, "workers.max_attempts", 1, 100,
                 &cfg->workers.max_attempts);
    if ((v = get(m, "lease")) != NULL)
        read_seconds(ctx, v, "workers.lease", 1, 86400, &cfg->workers.lease_s);
    if ((v = get(m, "backoff_base")) != NULL &&
        read_duration(ctx, v, "workers.backoff_base", 10, MS_PER_H, false, &ms))
        cfg->workers.backoff_base_ms = (int)ms;
    if ((v = get(m, "backoff_max")) != NULL &&
        read_duration(ctx, v, "workers.backoff_max", 10, 24 * MS_PER_H, false,
                      &ms))
        cfg->workers.backoff_max_ms = (int)ms;
    if ((v = get(m, "backoff_max")) == NULL)
        v = m;
    if (cfg->workers.backoff_max_ms < cfg->workers.backoff_base_ms)
        DIAG(ctx, v,
             "workers.backoff_max is shorter than workers.backoff_base");
}

static void read_webhook(struct mr__cfg_ctx *ctx,
                         const struct mr__cfg_node *root, struct mr_config *cfg,
                         const struct mr__cfg_node **tenant_node)
{
    static const char *const keys[] = {"secret", "tenant", "tolerance", NULL};
    const struct mr__cfg_node *m = get_map(ctx, root, "webhook", keys);
    const struct mr__cfg_node *v;
    if (m == NULL)
        return;
    if ((v = get(m, "secret")) == NULL)
        DIAG(ctx, m,
             "webhook.secret is missing (leave out the whole webhook section "
             "to turn the webhook off)");
    else if (read_text(ctx, v, "webhook.secret", 1024, &cfg->webhook.secret) &&
             strlen(cfg->webhook.secret) < SECRET_MIN)
        DIAG(ctx, v, "webhook.secret is shorter than %d characters",
             SECRET_MIN);
    if ((v = get(m, "tenant")) != NULL &&
        read_text(ctx, v, "webhook.tenant", TENANT_NAME_MAX,
                  &cfg->webhook.tenant))
        *tenant_node = v;
    if ((v = get(m, "tolerance")) != NULL)
        read_seconds(ctx, v, "webhook.tolerance", 1, 86400,
                     &cfg->webhook.tolerance_s);
}

/* ---- outbound mail ---- */

/* A sender "Name <addr>" or "addr", checked as the acknowledgement's
 * writer (src/outbound/ack_mail.c) will read it. */
static void read_from(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                      const char *what, char **dst)
{
    char *s = NULL;
    if (!read_text(ctx, v, what, 300, &s))
        return;
    char *name = NULL, *addr = NULL;
    struct mr_error e = {0};
    if (mr_ack_parse_from(s, &name, &addr, &e) < 0) {
        DIAG(ctx, v, "%s: %s", what, e.msg);
        free(s);
        return;
    }
    free(name);
    free(addr);
    free(*dst);
    *dst = s;
}

static void read_secret(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *m,
                        const char *key, const char *env_key, bool required,
                        const char *what, char **dst);

/* TLS and AUTH towards the relay. Credentials that could only go in the
 * clear are refused here, not at the first acknowledgement. */
static void read_outbound_tls(struct mr__cfg_ctx *ctx,
                              const struct mr__cfg_node *m,
                              struct mr_config *cfg)
{
    static const char *const modes[] = {"none", "starttls", "required",
                                        "implicit", NULL};
    const struct mr__cfg_node *v;
    bool tls_ok = true; /* no second complaint about a mode we could not read */
    if ((v = get(m, "tls")) != NULL) {
        size_t i = 0;
        tls_ok = want_scalar(ctx, v, "outbound.tls");
        while (tls_ok && modes[i] && !scalar_is(v, modes[i]))
            i++;
        char buf[64];
        if (tls_ok && modes[i])
            cfg->outbound.tls = (enum mr_outbound_tls)i;
        else if (tls_ok)
            DIAG(ctx, v, "outbound.tls must be none, starttls, required or "
                 "implicit, not '%s'", mr__cfg_show(v, buf, sizeof(buf)));
        tls_ok = tls_ok && modes[i];
    }
    if ((v = get(m, "tls_verify")) != NULL)
        read_bool(ctx, v, "outbound.tls_verify", &cfg->outbound.tls_verify);
    if ((v = get(m, "tls_ca")) != NULL)
        read_text(ctx, v, "outbound.tls_ca", STR_MAX, &cfg->outbound.tls_ca);
    if ((v = get(m, "allow_plain_auth")) != NULL)
        read_bool(ctx, v, "outbound.allow_plain_auth",
                  &cfg->outbound.allow_plain_auth);
    const struct mr__cfg_node *user = get(m, "username");
    if (user != NULL)
        read_text(ctx, user, "outbound.username", 256,
                  &cfg->outbound.username);
    read_secret(ctx, m, "password", "password_env", user != NULL,
                "outbound.password", &cfg->outbound.password);
    if (cfg->outbound.password && strlen(cfg->outbound.password) > 256) {
        DIAG(ctx, m, "outbound.password is longer than 256 bytes");
    } else if (user == NULL && cfg->outbound.password != NULL) {
        DIAG(ctx, m, "outbound.password without outbound.username");
    } else if (user != NULL && tls_ok &&
               cfg->outbound.tls == MR_OUTBOUND_TLS_NONE &&
               !cfg->outbound.allow_plain_auth) {
        DIAG(ctx, user, "outbound.username: credentials would go to the "
             "relay unencrypted; set outbound.tls (starttls, required or "
             "implicit), or outbound.allow_plain_auth: true");
    }
}

static void read_outbound(struct mr__cfg_ctx *ctx,
                          const struct mr__cfg_node *root,
                          struct mr_config *cfg)
{
    static const char *const keys[] = {
        "smtp",         "helo",         "from",
        "timeout",      "max_attempts", "backoff_base",
        "backoff_max",  "tls",          "tls_verify",
        "tls_ca",       "username",     "password",
        "password_env", "allow_plain_auth", NULL};
    const struct mr__cfg_node *m = get_map(ctx, root, "outbound", keys);
    const struct mr__cfg_node *v;
    uint64_t ms;
    if (m == NULL)
        return;
    if ((v = get(m, "smtp")) != NULL &&
        read_text(ctx, v, "outbound.smtp", 300, &cfg->outbound.smtp)) {
        char host[256];
        int port;
        struct mr_error e = {0};
        if (mr_config_listen_split(cfg->outbound.smtp, host, sizeof host,
                                   &port, &e) < 0)
            DIAG(ctx, v, "outbound.smtp: %s", e.msg);
    }
    if ((v = get(m, "helo")) != NULL &&
        read_text(ctx, v, "outbound.helo", 253, &cfg->outbound.helo) &&
        !valid_hostname(cfg->outbound.helo, strlen(cfg->outbound.helo)))
        DIAG(ctx, v, "outbound.helo '%s' is not a valid host name",
             cfg->outbound.helo);
    if ((v = get(m, "from")) != NULL)
        read_from(ctx, v, "outbound.from", &cfg->outbound.from);
    if ((v = get(m, "timeout")) != NULL &&
        read_duration(ctx, v, "outbound.timeout", 100, 600 * MS_PER_S, false,
                      &ms))
        cfg->outbound.timeout_ms = (int)ms;
    if ((v = get(m, "max_attempts")) != NULL)
        read_int(ctx, v, "outbound.max_attempts", 1, 100,
                 &cfg->outbound.max_attempts);
    if ((v = get(m, "backoff_base")) != NULL &&
        read_duration(ctx, v, "outbound.backoff_base", 10, MS_PER_H, false,
                      &ms))
        cfg->outbound.backoff_base_ms = (int)ms;
    if ((v = get(m, "backoff_max")) != NULL &&
        read_duration(ctx, v, "outbound.backoff_max", 10, 24 * MS_PER_H, false,
                      &ms))
        cfg->outbound.backoff_max_ms = (int)ms;
    if (cfg->outbound.backoff_max_ms < cfg->outbound.backoff_base_ms)
        DIAG(ctx, m, "outbound.backoff_max is shorter than "
                     "outbound.backoff_base");
    read_outbound_tls(ctx, m, cfg);
}

/* ---- attachments ---- */

#define ATT_LIST_MAX 1000
#define ATT_EXT_MAX 32
#define ATT_TYPE_MAX 127

/* One list entry: an extension ("exe" or ".exe") or a media type
 * ("type/subtype"), lower-cased into a new string; NULL after a
 * diagnostic. */
static char *att_entry(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                       const char *what, bool is_type)
{
    char buf[64];
    if (!want_scalar(ctx, v, what))
        return NULL;
    const char *p = v->str;
    size_t n = v->len;
    if (!is_type && n > 0 && p[0] == '.') {
        p++;
        n--;
    }
    size_t max = is_type ? ATT_TYPE_MAX : ATT_EXT_MAX;
    size_t slashes = 0, slash_at = 0;
    bool ok = n > 0 && n <= max;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = mr_lower((unsigned char)p[i]);
        if (is_type && c == '/') {
            slashes++;
            slash_at = i;
            continue;
        }
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
             c == '_' || (is_type && (c == '.' || c == '+'));
    }
    if (is_type)
        ok = ok && slashes == 1 && slash_at > 0 && slash_at + 1 < n;
    if (!ok) {
        DIAG(ctx, v,
             is_type ? "%s: '%s' is not a media type such as "
                       "application/x-msdownload"
                     : "%s: '%s' is not a file extension such as exe or .exe "
                       "(letters, digits, '-' and '_', at most 32)",
             what, mr__cfg_show(v, buf, sizeof(buf)));
        return NULL;
    }
    char *out = mr_xstrndup(p, n);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)mr_lower((unsigned char)out[i]);
    return out;
}

static void read_att_list(struct mr__cfg_ctx *ctx,
                          const struct mr__cfg_node *m, const char *key,
                          bool is_type, char ***dst, size_t *n)
{
    const struct mr__cfg_node *v = get(m, key);
    char what[64];
    snprintf(what, sizeof(what), "attachments.%s", key);
    if (v == NULL || is_null(v))
        return;
    if (v->kind != MR__CFG_SEQ) {
        DIAG(ctx, v, "%s must be a list, not %s", what, kind_name(v));
        return;
    }
    if (v->n > ATT_LIST_MAX) {
        DIAG(ctx, v, "%s has more than %d entries", what, ATT_LIST_MAX);
        return;
    }
    *dst = mr_xcalloc(v->n ? v->n : 1, sizeof(**dst));
    for (size_t i = 0; i < v->n; i++) {
        char *e = att_entry(ctx, v->items[i], what, is_type);
        if (e != NULL)
            (*dst)[(*n)++] = e;
    }
}

static void read_attachments(struct mr__cfg_ctx *ctx,
                             const struct mr__cfg_node *root,
                             struct mr_config *cfg)
{
    static const char *const keys[] = {
        "max_attachment_bytes", "max_message_attachment_bytes",
        "blocked_extensions",   "blocked_types",
        "allowed_extensions",   "allowed_types",
        NULL};
    const struct mr__cfg_node *m = get_map(ctx, root, "attachments", keys);
    const struct mr__cfg_node *v;
    if (m == NULL)
        return;
    if ((v = get(m, "max_attachment_bytes")) != NULL)
        read_size(ctx, v, "attachments.max_attachment_bytes", KIB, 2 * GIB,
                  &cfg->attachments.max_attachment_bytes);
    if ((v = get(m, "max_message_attachment_bytes")) != NULL)
        read_size(ctx, v, "attachments.max_message_attachment_bytes", KIB,
                  2 * GIB, &cfg->attachments.max_message_attachment_bytes);
    read_att_list(ctx, m, "blocked_extensions", false,
                  &cfg->attachments.blocked_extensions,
                  &cfg->attachments.nblocked_extensions);
    read_att_list(ctx, m, "blocked_types", true,
                  &cfg->attachments.blocked_types,
                  &cfg->attachments.nblocked_types);
    read_att_list(ctx, m, "allowed_extensions", false,
                  &cfg->attachments.allowed_extensions,
                  &cfg->attachments.nallowed_extensions);
    read_att_list(ctx, m, "allowed_types", true,
                  &cfg->attachments.allowed_types,
                  &cfg->attachments.nallowed_types);
}

/* ---- antivirus ---- */

static void read_clamd(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *root,
                       struct mr_config *cfg)
{
    static const char *const keys[] = {"socket",    "address",
                                       "timeout",   "scan_timeout",
                                       "on_error",  "retry_max",
                                       NULL};
    const struct mr__cfg_node *m = get_map(ctx, root, "clamd", keys);
    const struct mr__cfg_node *v, *sock, *addr;
    uint64_t ms;
    if (m == NULL)
        return;
    sock = get(m, "socket");
    addr = get(m, "address");
    if (sock && addr)
        DIAG(ctx, addr,
             "clamd: give either socket (a unix socket path) or address "
             "(host:port), not both");
    else if (!sock && !addr)
        DIAG(ctx, m,
             "clamd: socket (a unix socket path) or address (host:port) is "
             "missing (leave out the whole clamd section to scan nothing)");
    if (sock && !addr &&
        read_text(ctx, sock, "clamd.socket", 107, &cfg->clamd.socket) &&
        cfg->clamd.socket[0] != '/')
        DIAG(ctx, sock, "clamd.socket must be an absolute path");
    if (addr && !sock &&
        read_text(ctx, addr, "clamd.address", 300, &cfg->clamd.address)) {
        char host[256];
        int port;
        struct mr_error err = {0};
        if (mr_config_listen_split(cfg->clamd.address, host, sizeof(host),
                                   &port, &err) < 0)
            DIAG(ctx, addr, "clamd.address: %s", err.msg);
    }
    if ((v = get(m, "timeout")) != NULL &&
        read_duration(ctx, v, "clamd.timeout", 100, 10 * 60 * MS_PER_S, false,
                      &ms))
        cfg->clamd.timeout_ms = (int)ms;
    if ((v = get(m, "scan_timeout")) != NULL &&
        read_duration(ctx, v, "clamd.scan_timeout", MS_PER_S, MS_PER_H, false,
                      &ms))
        cfg->clamd.scan_timeout_ms = (int)ms;
    if ((v = get(m, "retry_max")) != NULL &&
        read_duration(ctx, v, "clamd.retry_max", 100, MS_PER_H, false, &ms))
        cfg->clamd.retry_max_ms = (int)ms;
    if ((v = get(m, "on_error")) != NULL && want_scalar(ctx, v, "on_error")) {
        char buf[64];
        if (scalar_is(v, "block"))
            cfg->clamd.on_error_block = true;
        else if (scalar_is(v, "keep"))
            cfg->clamd.on_error_block = false;
        else
            DIAG(ctx, v, "clamd.on_error must be keep or block, not '%s'",
                 mr__cfg_show(v, buf, sizeof(buf)));
    }
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Names that must be unique (tenants; inbox names within a tenant) and
 * routing keys (an address, a pattern's prefix, a catch-all's domain) that
 * must be unique across tenants, or routing would depend on the file's
 * order. All are collected, sorted and compared once: linear-logarithmic
 * even for a file with many thousands of inboxes. */
enum claim_kind {
    CLAIM_TENANT,
    CLAIM_INBOX_NAME,
    CLAIM_ROUTE,
};

struct claim {
    char *key;          /* sort key, unique per kind and scope */
    const char *shown;  /* what the message names (borrowed) */
    const char *tenant; /* borrowed from the config */
    enum claim_kind kind;
    int line, col;
};

struct claims {
    struct claim *v;
    size_t n, alloc;
};

static void claim(struct claims *cl, enum claim_kind kind, const char *tenant,
                  const char *shown, const struct mr__cfg_node *where,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void claim(struct claims *cl, enum claim_kind kind, const char *tenant,
                  const char *shown, const struct mr__cfg_node *where,
                  const char *fmt, ...)
{
    if (cl->n == cl->alloc) {
        cl->alloc = cl->alloc ? cl->alloc * 2 : 16;
        cl->v = mr_xrealloc(cl->v, cl->alloc * sizeof(*cl->v));
    }
    struct mr_buf k;
    va_list ap;
    mr_buf_init(&k, 0);
    mr_buf_printf(&k, "%d ", (int)kind);
    va_start(ap, fmt);
    char tmp[600];
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    mr_buf_puts(&k, tmp);
    cl->v[cl->n++] = (struct claim){
        .key = mr_buf_detach(&k, NULL),
        .shown = shown,
        .tenant = tenant,
        .kind = kind,
        .line = where->line,
        .col = where->col,
    };
}

static int claim_cmp(const void *a, const void *b)
{
    const struct claim *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c != 0)
        return c;
    /* Same key: the first in the file comes first, the later ones are
     * reported. */
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return (x->col > y->col) - (x->col < y->col);
}

static void check_claims(struct mr__cfg_ctx *ctx, struct claims *cl)
{
    if (cl->n > 1)
        qsort(cl->v, cl->n, sizeof(*cl->v), claim_cmp);
    size_t first = 0;
    for (size_t i = 1; i < cl->n; i++) {
        const struct claim *c = &cl->v[i], *f = &cl->v[first];
        if (strcmp(c->key, f->key) != 0) {
            first = i;
            continue;
        }
        switch (c->kind) {
        case CLAIM_TENANT:
            mr__config_diag(ctx, c->line, c->col,
                            "tenant '%s' is defined twice (first at line %d)",
                            c->shown, f->line);
            break;
        case CLAIM_INBOX_NAME:
            mr__config_diag(
                ctx, c->line, c->col,
                "tenant '%s': two inboxes are named '%s' (first at line %d)",
                c->tenant, c->shown, f->line);
            break;
        case CLAIM_ROUTE:
            if (strcmp(c->tenant, f->tenant) == 0 &&
                strcmp(c->shown, f->shown) == 0)
                mr__config_diag(
                    ctx, c->line, c->col,
                    "tenant '%s': '%s' is listed twice (first at line %d)",
                    c->tenant, c->shown, f->line);
            else if (strcmp(c->tenant, f->tenant) == 0)
                mr__config_diag(ctx, c->line, c->col,
                                "tenant '%s': '%s' overlaps '%s' (line %d)",
                                c->tenant, c->shown, f->shown, f->line);
            else if (strcmp(c->shown, f->shown) == 0)
                mr__config_diag(ctx, c->line, c->col,
                                "tenant '%s': '%s' already belongs to tenant "
                                "'%s' (line %d)",
                                c->tenant, c->shown, f->tenant, f->line);
            else
                mr__config_diag(
                    ctx, c->line, c->col,
                    "tenant '%s': '%s' overlaps '%s' of tenant '%s' (line %d)",
                    c->tenant, c->shown, f->shown, f->tenant, f->line);
            break;
        }
    }
    for (size_t i = 0; i < cl->n; i++)
        free(cl->v[i].key);
    free(cl->v);
}

static void read_inbox(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                       struct mr_tenant *t, struct claims *cl)
{
    static const char *const keys[] = {"address", "name", NULL};
    const struct mr__cfg_node *addr = v;
    const struct mr__cfg_node *name = NULL;
    char what[96];
    snprintf(what, sizeof(what), "tenant '%s': inbox", t->name);
    if (v->kind == MR__CFG_MAP) {
        check_keys(ctx, v, what, keys);
        addr = get(v, "address");
        name = get(v, "name");
        if (addr == NULL) {
            DIAG(ctx, v, "%s: 'address' is missing", what);
            return;
        }
    }
    if (!want_scalar(ctx, addr, what))
        return;
    struct mr_inbox *ib = &t->inboxes[t->ninboxes];
    struct mr_error err;
    memset(ib, 0, sizeof(*ib));
    if (mr__config_inbox_parse(addr->str, addr->len, ib, &err) < 0) {
        DIAG(ctx, addr, "%s: %s", what, err.msg);
        return;
    }
    t->ninboxes++;
    if (name != NULL) {
        char inbox_what[120];
        snprintf(inbox_what, sizeof(inbox_what), "%s '%s': name", what,
                 ib->address);
        if (read_text(ctx, name, inbox_what, INBOX_NAME_MAX, &ib->name))
            claim(cl, CLAIM_INBOX_NAME, t->name, ib->name, name, "%s %s",
                  t->name, ib->name);
    }
    if (ib->name == NULL)
        ib->name = mr_xstrndup(ib->address, strlen(ib->address));
    switch (ib->kind) {
    case MR_INBOX_EXACT:
        claim(cl, CLAIM_ROUTE, t->name, ib->address, addr, "%s@%s", ib->local,
              ib->domain);
        break;
    case MR_INBOX_PATTERN:
        claim(cl, CLAIM_ROUTE, t->name, ib->address, addr, "%s+{}@%s",
              ib->local, ib->domain);
        break;
    case MR_INBOX_CATCHALL:
        claim(cl, CLAIM_ROUTE, t->name, ib->address, addr, "*@%s", ib->domain);
        break;
    }
}

static bool valid_tenant_name(const char *s, size_t n)
{
    if (n == 0 || n > TENANT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static void read_webhook_sub(struct mr__cfg_ctx *ctx,
                             const struct mr__cfg_node *v, struct mr_tenant *t)
{
    static const char *const keys[] = {"url", "events", "secrets", "active",
                                       NULL};
    char what[128];
    if (v->kind != MR__CFG_MAP) {
        DIAG(ctx, v, "tenant '%s': each webhook must be a mapping with url "
             "and secrets, not %s", t->name, kind_name(v));
        return;
    }
    check_keys(ctx, v, "webhook", keys);
    const struct mr__cfg_node *u = get(v, "url");
    char *url = NULL;
    snprintf(what, sizeof what, "tenant '%s': webhook url", t->name);
    if (u == NULL) {
        DIAG(ctx, v, "tenant '%s': webhook 'url' is missing", t->name);
        return;
    }
    if (!read_text(ctx, u, what, 2048, &url))
        return;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        DIAG(ctx, u, "%s must start with http:// or https://", what);
        free(url);
        return;
    }
    for (size_t i = 0; i < t->nwebhooks; i++) {
        if (strcmp(t->webhooks[i].url, url) == 0) {
            DIAG(ctx, u, "%s '%s' is listed twice", what, url);
            free(url);
            return;
        }
    }
    struct mr_webhook_sub *w = &t->webhooks[t->nwebhooks++];
    memset(w, 0, sizeof *w);
    w->url = url;
    w->active = true;
    const struct mr__cfg_node *a = get(v, "active");
    snprintf(what, sizeof what, "tenant '%s': webhook active", t->name);
    if (a != NULL)
        read_bool(ctx, a, what, &w->active);
    const struct mr__cfg_node *sec = get(v, "secrets");
    if (sec == NULL || sec->kind != MR__CFG_SEQ || sec->n < 1 || sec->n > 2) {
        DIAG(ctx, sec ? sec : v,
             "tenant '%s': webhook %s needs 'secrets', a list of 1 or 2 "
             "secrets (current first)", t->name, url);
    } else {
        for (size_t i = 0; i < sec->n; i++) {
            snprintf(what, sizeof what, "tenant '%s': webhook secret",
                     t->name);
            if (read_text(ctx, sec->items[i], what, 1024,
                          &w->secrets[w->nsecrets])) {
                if (strlen(w->secrets[w->nsecrets]) < SECRET_MIN)
                    DIAG(ctx, sec->items[i], "%s is shorter than %d "
                         "characters", what, SECRET_MIN);
                w->nsecrets++;
            }
        }
    }
    const struct mr__cfg_node *ev = get(v, "events");
    if (ev == NULL || is_null(ev))
        return;
    if (ev->kind != MR__CFG_SEQ || ev->n > MR_WEBHOOK_EVENTS_MAX) {
        DIAG(ctx, ev, "tenant '%s': webhook events must be a list of at most "
             "%d event types", t->name, MR_WEBHOOK_EVENTS_MAX);
        return;
    }
    w->events = mr_xcalloc(ev->n ? ev->n : 1, sizeof *w->events);
    snprintf(what, sizeof what, "tenant '%s': webhook event type", t->name);
    for (size_t i = 0; i < ev->n; i++)
        if (read_text(ctx, ev->items[i], what, 64, &w->events[w->nevents]))
            w->nevents++;
}

static void read_webhooks(struct mr__cfg_ctx *ctx,
                          const struct mr__cfg_node *v, struct mr_tenant *t)
{
    if (v == NULL || is_null(v))
        return;
    if (v->kind != MR__CFG_SEQ || v->n > MR_WEBHOOK_SUB_MAX) {
        DIAG(ctx, v, "tenant '%s': webhooks must be a list of at most %d "
             "subscriptions", t->name, MR_WEBHOOK_SUB_MAX);
        return;
    }
    t->webhooks = mr_xcalloc(v->n ? v->n : 1, sizeof *t->webhooks);
    for (size_t i = 0; i < v->n; i++)
        read_webhook_sub(ctx, v->items[i], t);
}

/* ---- integrations (docs/integrations.md) ---- */

static bool valid_integration_name(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* An http(s) URL without a trailing slash (paths are appended to it). */
static bool read_url(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                     const char *what, char **dst)
{
    if (!read_text(ctx, v, what, 2048, dst))
        return false;
    char *u = *dst;
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
        DIAG(ctx, v, "%s must start with http:// or https://", what);
        return false;
    }
    for (size_t n = strlen(u); n > 8 && u[n - 1] == '/'; n--)
        u[n - 1] = '\0';
    return true;
}

/* A secret itself (key), or the name of an environment variable holding
 * it (env_key), read now, so that the file can be shared without the
 * secret. Neither given: a diagnostic when required. */
static void read_secret(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *m,
                        const char *key, const char *env_key, bool required,
                        const char *what, char **dst)
{
    const struct mr__cfg_node *t = get(m, key), *e = get(m, env_key);
    if (t != NULL && e != NULL) {
        DIAG(ctx, e, "%s: give '%s' or '%s', not both", what, key, env_key);
        return;
    }
    if (t != NULL) {
        read_text(ctx, t, what, 1024, dst);
        return;
    }
    char *name = NULL;
    if (e == NULL) {
        if (required)
            DIAG(ctx, m, "%s: '%s' (or '%s', an environment variable "
                 "holding it) is missing", what, key, env_key);
    } else if (read_text(ctx, e, what, 128, &name)) {
        const char *val = getenv(name);
        if (val == NULL || val[0] == '\0' || strlen(val) > 1024)
            DIAG(ctx, e, "%s: environment variable '%s' is not set (or is "
                 "empty or longer than 1024 bytes)", what, name);
        else
            *dst = mr_xstrndup(val, strlen(val));
    }
    free(name);
}

static void read_token(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *m,
                       const char *what, char **dst)
{
    read_secret(ctx, m, "token", "token_env", true, what, dst);
}

static void read_integration(struct mr__cfg_ctx *ctx,
                             const struct mr__cfg_node *v, struct mr_tenant *t)
{
    static const char *const slack_keys[] = {"name", "kind", "url", NULL};
    static const char *const github_keys[] = {
        "name", "kind", "repo", "token", "token_env", "api_url", "labels",
        NULL};
    static const char *const jira_keys[] = {
        "name",  "kind",      "base_url", "project", "issue_type",
        "user",  "token",     "token_env", "labels", NULL};
    char what[160], buf[80];
    if (v->kind != MR__CFG_MAP) {
        DIAG(ctx, v, "tenant '%s': each integration must be a mapping with "
             "name and kind, not %s", t->name, kind_name(v));
        return;
    }
    const struct mr__cfg_node *name = get(v, "name"), *kind = get(v, "kind");
    if (name == NULL || kind == NULL) {
        DIAG(ctx, v, "tenant '%s': an integration needs 'name' and 'kind' "
             "(slack, github or jira)", t->name);
        return;
    }
    if (!want_scalar(ctx, name, "integration name") ||
        !want_scalar(ctx, kind, "integration kind"))
        return;
    if (!valid_integration_name(name->str, name->len)) {
        DIAG(ctx, name, "tenant '%s': integration name '%s' must be 1 to 64 "
             "of A-Z, a-z, 0-9, '.', '_' and '-'", t->name,
             mr__cfg_show(name, buf, sizeof buf));
        return;
    }
    const char *const *keys;
    enum mr_integration_kind k;
    if (scalar_is(kind, "slack")) {
        k = MR_INTEGRATION_SLACK;
        keys = slack_keys;
    } else if (scalar_is(kind, "github")) {
        k = MR_INTEGRATION_GITHUB;
        keys = github_keys;
    } else if (scalar_is(kind, "jira")) {
        k = MR_INTEGRATION_JIRA;
        keys = jira_keys;
    } else {
        DIAG(ctx, kind, "tenant '%s': integration kind '%s' is not one of "
             "slack, github, jira (webhooks are the 'webhooks' list)",
             t->name, mr__cfg_show(kind, buf, sizeof buf));
        return;
    }
    for (size_t i = 0; i < t->nintegrations; i++) {
        if (strlen(t->integrations[i].name) == name->len &&
            memcmp(t->integrations[i].name, name->str, name->len) == 0) {
            DIAG(ctx, name, "tenant '%s': integration '%s' is listed twice",
                 t->name, mr__cfg_show(name, buf, sizeof buf));
            return;
        }
    }
    struct mr_integration *x = &t->integrations[t->nintegrations++];
    memset(x, 0, sizeof *x);
    x->name = mr_xstrndup(name->str, name->len);
    x->kind = k;
    snprintf(what, sizeof what, "tenant '%s': integration '%s'", t->name,
             x->name);
    check_keys(ctx, v, what, keys);
    const struct mr__cfg_node *f;
    char fw[200];
#define NEED(key, dst, reader)                                                 \
    do {                                                                       \
        snprintf(fw, sizeof fw, "%s: %s", what, key);                          \
        if ((f = get(v, key)) == NULL)                                         \
            DIAG(ctx, v, "%s: '%s' is missing", what, key);                    \
        else                                                                   \
            reader(ctx, f, fw, dst);                                           \
    } while (0)
#define TEXT(c, n, w, d) read_text(c, n, w, 256, d)
    switch (k) {
    case MR_INTEGRATION_SLACK:
        NEED("url", &x->url, read_url);
        return;
    case MR_INTEGRATION_GITHUB:
        NEED("repo", &x->repo, TEXT);
        if (x->repo) {
            const char *sl = strchr(x->repo, '/');
            bool ok = sl && sl != x->repo && sl[1] && !strchr(sl + 1, '/') &&
                      valid_integration_name(x->repo, (size_t)(sl - x->repo)) &&
                      valid_integration_name(sl + 1, strlen(sl + 1));
            if (!ok)
                DIAG(ctx, get(v, "repo"), "%s: repo '%s' must be owner/name",
                     what, x->repo);
        }
        if ((f = get(v, "api_url")) != NULL) {
            snprintf(fw, sizeof fw, "%s: api_url", what);
            read_url(ctx, f, fw, &x->api_url);
        } else {
            x->api_url = mr_xstrndup("https://api.github.com", 22);
        }
        break;
    case MR_INTEGRATION_JIRA:
        NEED("base_url", &x->base_url, read_url);
        NEED("project", &x->project, TEXT);
        NEED("user", &x->user, TEXT);
        if ((f = get(v, "issue_type")) != NULL) {
            snprintf(fw, sizeof fw, "%s: issue_type", what);
            read_text(ctx, f, fw, 256, &x->issue_type);
        } else {
            x->issue_type = mr_xstrndup("Task", 4);
        }
        break;
    }
#undef NEED
#undef TEXT
    read_token(ctx, v, what, &x->token);
    const struct mr__cfg_node *lb = get(v, "labels");
    if (lb == NULL || is_null(lb))
        return;
    if (lb->kind != MR__CFG_SEQ || lb->n > MR_INTEGRATION_LABELS_MAX) {
        DIAG(ctx, lb, "%s: labels must be a list of at most %d labels", what,
             MR_INTEGRATION_LABELS_MAX);
        return;
    }
    x->labels = mr_xcalloc(lb->n ? lb->n : 1, sizeof *x->labels);
    snprintf(fw, sizeof fw, "%s: label", what);
    for (size_t i = 0; i < lb->n; i++)
        if (read_text(ctx, lb->items[i], fw, 100, &x->labels[x->nlabels]))
            x->nlabels++;
}

static void read_integrations(struct mr__cfg_ctx *ctx,
                              const struct mr__cfg_node *v,
                              struct mr_tenant *t)
{
    if (v == NULL || is_null(v))
        return;
    if (v->kind != MR__CFG_SEQ || v->n > MR_INTEGRATIONS_MAX) {
        DIAG(ctx, v, "tenant '%s': integrations must be a list of at most %d "
             "integrations", t->name, MR_INTEGRATIONS_MAX);
        return;
    }
    t->integrations = mr_xcalloc(v->n ? v->n : 1, sizeof *t->integrations);
    for (size_t i = 0; i < v->n; i++)
        read_integration(ctx, v->items[i], t);
}

static void read_tenant(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *v,
                        struct mr_config *cfg, struct claims *cl,
                        const char **accept_all)
{
    static const char *const keys[] = {"name", "inboxes", "accept_all",
                                       "webhooks", "outbound", "integrations",
                                       NULL};
    char buf[80];
    if (v->kind != MR__CFG_MAP) {
        DIAG(ctx, v,
             "each tenant must be a mapping with name and inboxes, not %s",
             kind_name(v));
        return;
    }
    check_keys(ctx, v, "tenant", keys);
    const struct mr__cfg_node *name = get(v, "name");
    if (name == NULL) {
        DIAG(ctx, v, "tenant: 'name' is missing");
        return;
    }
    if (!want_scalar(ctx, name, "tenant name"))
        return;
    if (!valid_tenant_name(name->str, name->len)) {
        DIAG(ctx, name,
             "tenant name '%s' must be 1 to 64 of a-z, 0-9, '_' and '-'",
             mr__cfg_show(name, buf, sizeof(buf)));
        return;
    }
    struct mr_tenant *t = &cfg->tenants[cfg->ntenants++];
    memset(t, 0, sizeof(*t));
    t->name = mr_xstrndup(name->str, name->len);
    claim(cl, CLAIM_TENANT, t->name, t->name, name, "%s", t->name);

    read_webhooks(ctx, get(v, "webhooks"), t);
    {
        static const char *const okeys[] = {"from", NULL};
        const struct mr__cfg_node *ob = get_map(ctx, v, "outbound", okeys);
        const struct mr__cfg_node *f = ob ? get(ob, "from") : NULL;
        if (f != NULL)
            read_from(ctx, f, "tenant outbound.from", &t->outbound_from);
    }
    read_integrations(ctx, get(v, "integrations"), t);
    const struct mr__cfg_node *acc = get(v, "accept_all");
    if (acc != NULL) {
        char what[96];
        snprintf(what, sizeof(what), "tenant '%s': accept_all", t->name);
        /* Two of them would make the last routing rank ambiguous. */
        if (read_bool(ctx, acc, what, &t->accept_all) && t->accept_all &&
            *accept_all != NULL)
            DIAG(ctx, acc,
                 "tenant '%s': tenant '%s' already accepts every address (only "
                 "one may)",
                 t->name, *accept_all);
        else if (t->accept_all)
            *accept_all = t->name;
    }
    const struct mr__cfg_node *ibs = get(v, "inboxes");
    if (ibs != NULL && !is_null(ibs) && ibs->kind != MR__CFG_SEQ) {
        DIAG(ctx, ibs, "tenant '%s': inboxes must be a list, not %s", t->name,
             kind_name(ibs));
        return;
    }
    if (ibs == NULL || is_null(ibs) || ibs->n == 0) {
        if (!t->accept_all)
            DIAG(ctx, ibs ? ibs : v,
                 "tenant '%s' has no inboxes (list addresses, or set "
                 "accept_all: true)",
                 t->name);
        return;
    }
    t->inboxes = mr_xcalloc(ibs->n, sizeof(*t->inboxes));
    for (size_t i = 0; i < ibs->n; i++)
        read_inbox(ctx, ibs->items[i], t, cl);
}

static void read_tenants(struct mr__cfg_ctx *ctx,
                         const struct mr__cfg_node *root, struct mr_config *cfg)
{
    const struct mr__cfg_node *v = get(root, "tenants");
    if (v == NULL) {
        DIAG(ctx, root,
             "'tenants' is missing: list at least one tenant with its inboxes");
        return;
    }
    if (v->kind != MR__CFG_SEQ || v->n == 0) {
        DIAG(ctx, v, "tenants must be a list of at least one tenant%s",
             v->kind == MR__CFG_SEQ || is_null(v) ? ", not empty" : "");
        return;
    }
    struct claims cl = {0};
    const char *accept_all = NULL;
    cfg->tenants = mr_xcalloc(v->n, sizeof(*cfg->tenants));
    for (size_t i = 0; i < v->n; i++)
        read_tenant(ctx, v->items[i], cfg, &cl, &accept_all);
    check_claims(ctx, &cl);
}

/* ---- the whole file ---- */

static void set_defaults(struct mr_config *cfg, const char *source)
{
    cfg->source = mr_xstrndup(source, strlen(source));
    char host[256];
    if (gethostname(host, sizeof(host)) != 0 ||
        !valid_hostname(host, strnlen(host, sizeof(host))))
        snprintf(host, sizeof(host), "localhost");
    cfg->hostname = mr_xstrndup(host, strlen(host));
    cfg->smtp.addr = mr_xstrndup("127.0.0.1:2525", 14);
    cfg->http.addr = mr_xstrndup("127.0.0.1:8080", 14);
    cfg->limits.message_size = 50 * MIB;
    cfg->inline_max = 64 * KIB;
    cfg->limits.http_body_size = cfg->limits.message_size;
    cfg->limits.max_connections = 100;
    cfg->limits.max_connections_per_ip = 20;
    cfg->limits.max_recipients = 100;
    cfg->limits.smtp_idle_timeout_s = 300;
    cfg->limits.smtp_total_timeout_s = 1800;
    cfg->workers.count = 2;
    cfg->workers.max_attempts = 8;
    cfg->workers.lease_s = 300;
    cfg->workers.backoff_base_ms = 1000;
    cfg->workers.backoff_max_ms = 3600 * 1000;
    cfg->webhook.tolerance_s = 300;
    cfg->webhook_retry_scale = 1.0;
    cfg->outbound.timeout_ms = 30 * 1000;
    cfg->outbound.max_attempts = 10;
    cfg->outbound.backoff_base_ms = 60 * 1000;
    cfg->outbound.backoff_max_ms = 3600 * 1000;
    cfg->outbound.tls_verify = true;
    cfg->webhook_concurrency = 16;
    cfg->webhook_timeout_ms = 10000;
    cfg->attachments.max_attachment_bytes = 25 * MIB;
    cfg->attachments.max_message_attachment_bytes = 50 * MIB;
    cfg->clamd.timeout_ms = 30 * MS_PER_S;
    cfg->clamd.retry_max_ms = 60 * MS_PER_S;
    cfg->clamd.scan_timeout_ms = 3 * 60 * MS_PER_S;
}

/* Storage paths follow data_dir unless set on their own. */
static void derive_storage(struct mr_config *cfg)
{
    struct mr_buf b;
    if (cfg->database == NULL) {
        mr_buf_init(&b, 0);
        mr_buf_printf(&b, "sqlite:%s/mailroom.db", cfg->data_dir);
        cfg->database = mr_buf_detach(&b, NULL);
    }
    if (cfg->blob_dir == NULL) {
        mr_buf_init(&b, 0);
        mr_buf_printf(&b, "%s/blobs", cfg->data_dir);
        cfg->blob_dir = mr_buf_detach(&b, NULL);
    }
}

static void replace(char **dst, const char *s)
{
    free(*dst);
    *dst = mr_xstrndup(s, strlen(s));
}

struct mr_config *mr_config_default(const char *data_dir)
{
    struct mr_config *cfg = mr_xcalloc(1, sizeof(*cfg));
    set_defaults(cfg, "<defaults>");
    replace(&cfg->data_dir, data_dir ? data_dir : "./mailroom-data");
    derive_storage(cfg);
    cfg->tenants = mr_xcalloc(1, sizeof(*cfg->tenants));
    cfg->ntenants = 1;
    cfg->tenants[0].name = mr_xstrndup("default", 7);
    cfg->tenants[0].accept_all = true;
    replace(&cfg->webhook.tenant, "default");
    cfg->zero_config = true;
    return cfg;
}

static const char *const top_keys[MR_CONFIG_TOP_KEYS + 1] = {
    "hostname", "data_dir", "storage", "listen",  "tls",
    "limits",   "workers",  "webhook", "tenants", "attachments",
    "rules",    "webhooks_allow_private", "webhook_retry_scale",
    "outbound", "webhook_concurrency", "webhook_timeout", "ticket_url",
    "clamd",
    NULL};

const char *mr_config_top_key(size_t i)
{
    return i < MR_CONFIG_TOP_KEYS ? top_keys[i] : NULL;
}

/* ---- fingerprints (mr_config_changed) ---- */

static uint64_t fp_mix(uint64_t h, uint64_t v)
{
    /* splitmix64's finaliser over h ^ v: every input bit reaches every
     * output bit, which FNV alone does not give sums of hashes. */
    uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fp_bytes(uint64_t h, const char *p, size_t n)
{
    uint64_t f = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        f = (f ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return fp_mix(h, fp_mix(f, n));
}

static bool key_is(const struct mr__cfg_node *k, const char *name)
{
    return k->kind == MR__CFG_SCALAR && k->len == strlen(name) &&
           memcmp(k->str, name, k->len) == 0;
}

/* skip_reloaded: n is a tenant; its integrations and webhooks do not
 * count. The tree is bounded (MR__CFG_MAX_DEPTH, MR__CFG_MAX_NODES). */
static uint64_t fp_node(const struct mr__cfg_node *n, bool skip_reloaded)
{
    if (n == NULL)
        return 1;
    uint64_t h = fp_mix(0, (uint64_t)n->kind + 2);
    switch (n->kind) {
    case MR__CFG_SCALAR:
        return fp_bytes(fp_mix(h, n->plain), n->str ? n->str : "", n->len);
    case MR__CFG_SEQ:
        for (size_t i = 0; i < n->n; i++)
            h = fp_mix(h, fp_node(n->items[i], false));
        return h;
    case MR__CFG_MAP: {
        /* A sum, so that the order of the keys does not matter. */
        uint64_t sum = 0;
        for (size_t i = 0; i < n->n; i++) {
            const struct mr__cfg_node *k = n->items[2 * i];
            if (skip_reloaded &&
                (key_is(k, "integrations") || key_is(k, "webhooks")))
                continue;
            sum += fp_mix(fp_node(k, false), fp_node(n->items[2 * i + 1],
                                                     false));
        }
        return fp_mix(h, sum);
    }
    }
    return h;
}

static void fingerprint(const struct mr__cfg_node *root, struct mr_config *cfg)
{
    if (root == NULL || root->kind != MR__CFG_MAP)
        return;
    for (size_t k = 0; k < MR_CONFIG_TOP_KEYS; k++) {
        const struct mr__cfg_node *v = get(root, top_keys[k]);
        if (v == NULL)
            continue;
        uint64_t h;
        if (strcmp(top_keys[k], "tenants") == 0 && v->kind == MR__CFG_SEQ) {
            h = fp_mix(0, MR__CFG_SEQ + 2);
            for (size_t i = 0; i < v->n; i++)
                h = fp_mix(h, fp_node(v->items[i], true));
        } else {
            h = fp_node(v, false);
        }
        cfg->fingerprint[k] = h ? h : 1;
    }
}

size_t mr_config_changed(const struct mr_config *a, const struct mr_config *b,
                         const char **names, size_t cap)
{
    size_t n = 0;
    for (size_t k = 0; k < MR_CONFIG_TOP_KEYS; k++) {
        if (a->fingerprint[k] == b->fingerprint[k])
            continue;
        if (n < cap)
            names[n] = top_keys[k];
        n++;
    }
    return n;
}

static void read_root(struct mr__cfg_ctx *ctx, const struct mr__cfg_node *root,
                      struct mr_config *cfg)
{
    const char *const *keys = top_keys;
    const struct mr__cfg_node *v, *webhook_tenant = NULL;
    if (root == NULL) {
        mr__config_diag(
            ctx, 1, 1,
            "the file is empty: list at least one tenant with its inboxes");
        return;
    }
    if (root->kind != MR__CFG_MAP) {
        DIAG(ctx, root, "the file must be a mapping (key: value lines), not %s",
             kind_name(root));
        return;
    }
    check_keys(ctx, root, "top level", keys);
    if ((v = get(root, "hostname")) != NULL &&
        read_text(ctx, v, "hostname", 253, &cfg->hostname) &&
        !valid_hostname(cfg->hostname, strlen(cfg->hostname)))
        DIAG(ctx, v, "hostname '%s' is not a valid host name", cfg->hostname);
    if ((v = get(root, "data_dir")) != NULL)
        read_text(ctx, v, "data_dir", STR_MAX, &cfg->data_dir);
    if ((v = get(root, "rules")) != NULL)
        read_text(ctx, v, "rules", STR_MAX, &cfg->rules);
    read_storage(ctx, root, cfg);
    read_listeners(ctx, root, cfg);
    read_tls(ctx, root, cfg);
    read_limits(ctx, root, cfg);
    read_workers(ctx, root, cfg);
    read_webhook(ctx, root, cfg, &webhook_tenant);
    read_attachments(ctx, root, cfg);
    read_outbound(ctx, root, cfg);
    read_clamd(ctx, root, cfg);
    if ((v = get(root, "webhooks_allow_private")) != NULL)
        read_bool(ctx, v, "webhooks_allow_private",
                  &cfg->webhooks_allow_private);
    if ((v = get(root, "webhook_retry_scale")) != NULL &&
        want_scalar(ctx, v, "webhook_retry_scale")) {
        char num[32], *end = NULL;
        double x = -1;
        if (v->len > 0 && v->len < sizeof num) {
            memcpy(num, v->str, v->len);
            num[v->len] = '\0';
            x = strtod(num, &end);
        }
        if (end == NULL || *end != '\0' || !(x > 0 && x <= 1000))
            DIAG(ctx, v, "webhook_retry_scale must be a number above 0 and "
                 "at most 1000");
        else
            cfg->webhook_retry_scale = x;
    }
    if ((v = get(root, "webhook_concurrency")) != NULL)
        read_int(ctx, v, "webhook_concurrency", 1, 256,
                 &cfg->webhook_concurrency);
    uint64_t ms;
    if ((v = get(root, "webhook_timeout")) != NULL &&
        read_duration(ctx, v, "webhook_timeout", 100, 60000, false, &ms))
        cfg->webhook_timeout_ms = (int)ms;
    if ((v = get(root, "ticket_url")) != NULL &&
        read_url(ctx, v, "ticket_url", &cfg->ticket_url) &&
        strstr(cfg->ticket_url, "{id}") == NULL &&
        strstr(cfg->ticket_url, "{number}") == NULL)
        DIAG(ctx, v, "ticket_url must contain {id} or {number}");
    read_tenants(ctx, root, cfg);
    if (webhook_tenant != NULL && cfg->ntenants > 0 &&
        mr_config_tenant(cfg, cfg->webhook.tenant) == NULL)
        DIAG(ctx, webhook_tenant, "webhook.tenant '%s' is not a tenant",
             cfg->webhook.tenant);
    if (cfg->webhook.tenant == NULL && cfg->ntenants > 0)
        replace(&cfg->webhook.tenant, cfg->tenants[0].name);
}

static int diag_cmp(const void *a, const void *b)
{
    const struct mr_config_diag *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return (x->column > y->column) - (x->column < y->column);
}

int mr_config_load(const char *path, const char *data_dir,
                   struct mr_config **out, struct mr_config_diags *diags,
                   struct mr_error *err)
{
    *out = NULL;
    if (diags != NULL) {
        diags->items = NULL;
        diags->n = 0;
    }
    struct mr_buf text;
    int rc = mr__cfg_read_file(path, &text, err);
    if (rc < 0)
        return rc;

    struct mr__cfg_ctx ctx = {.arena = mr_arena_new()};
    struct mr_config *cfg = mr_xcalloc(1, sizeof(*cfg));
    set_defaults(cfg, path);
    struct mr__cfg_node *root = NULL;
    if (text.len > MR__CFG_MAX_FILE)
        mr__config_diag(&ctx, 0, 0, "the file is larger than %u MiB",
                        MR__CFG_MAX_FILE >> 20);
    else if (mr__config_yaml_read(&ctx, text.p ? text.p : "", text.len,
                                  &root) == 0) {
        read_root(&ctx, root, cfg);
        fingerprint(root, cfg);
    }
    mr_buf_release(&text);
    mr_arena_free(&ctx.arena);

    if (data_dir != NULL)
        replace(&cfg->data_dir, data_dir);
    else if (cfg->data_dir == NULL)
        replace(&cfg->data_dir, "./mailroom-data");
    derive_storage(cfg);

    if (ctx.ndiags == 0) {
        *out = cfg;
        return 0;
    }
    mr_config_free(cfg);
    /* Problems come from several passes; present them in file order.
     * Places tie rarely, and then either order reads fine. */
    qsort(ctx.diags, ctx.ndiags, sizeof(*ctx.diags), diag_cmp);
    if (ctx.truncated) {
        /* Past the cap on purpose: the reader must know the list is cut. */
        ctx.diags =
            mr_xrealloc(ctx.diags, (ctx.ndiags + 1) * sizeof(*ctx.diags));
        struct mr_config_diag *last = &ctx.diags[ctx.ndiags++];
        last->line = last->column = 0;
        snprintf(last->msg, sizeof(last->msg),
                 "too many problems: only the first %d are listed",
                 MR__CFG_MAX_DIAGS);
    }
    const struct mr_config_diag *d = &ctx.diags[0];
    if (d->line > 0)
        mr_error_set(err, MR_EINVAL, "%s:%d:%d: %s%s", path, d->line, d->column,
                     d->msg, ctx.ndiags > 1 ? " (and more problems)" : "");
    else
        mr_error_set(err, MR_EINVAL, "%s: %s%s", path, d->msg,
                     ctx.ndiags > 1 ? " (and more problems)" : "");
    if (diags != NULL) {
        diags->items = ctx.diags;
        diags->n = ctx.ndiags;
    } else {
        free(ctx.diags);
    }
    return MR_EINVAL;
}

static void free_inbox(struct mr_inbox *ib)
{
    free(ib->name);
    free(ib->address);
    free(ib->local);
    free(ib->domain);
    free(ib->tag_name);
}

void mr_config_free(struct mr_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t t = 0; t < cfg->ntenants; t++) {
        struct mr_tenant *tn = &cfg->tenants[t];
        for (size_t i = 0; i < tn->ninboxes; i++)
            free_inbox(&tn->inboxes[i]);
        free(tn->inboxes);
        for (size_t i = 0; i < tn->nwebhooks; i++) {
            struct mr_webhook_sub *w = &tn->webhooks[i];
            free(w->url);
            free_list(w->events, w->nevents);
            free(w->secrets[0]);
            free(w->secrets[1]);
        }
        free(tn->webhooks);
        free(tn->outbound_from);
        for (size_t i = 0; i < tn->nintegrations; i++) {
            struct mr_integration *x = &tn->integrations[i];
            free(x->name);
            free(x->url);
            free(x->repo);
            free(x->api_url);
            free(x->base_url);
            free(x->project);
            free(x->issue_type);
            free(x->user);
            free(x->token);
            free_list(x->labels, x->nlabels);
        }
        free(tn->integrations);
        free(tn->name);
    }
    free(cfg->tenants);
    free(cfg->source);
    free(cfg->hostname);
    free(cfg->data_dir);
    free(cfg->database);
    free(cfg->blob_dir);
    free(cfg->smtp.addr);
    free(cfg->lmtp.addr);
    free(cfg->http.addr);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->rules);
    free(cfg->webhook.secret);
    free(cfg->webhook.tenant);
    free(cfg->outbound.smtp);
    free(cfg->outbound.helo);
    free(cfg->outbound.from);
    free(cfg->outbound.tls_ca);
    free(cfg->outbound.username);
    if (cfg->outbound.password)
        OPENSSL_cleanse(cfg->outbound.password, strlen(cfg->outbound.password));
    free(cfg->outbound.password);
    free(cfg->ticket_url);
    free(cfg->clamd.socket);
    free(cfg->clamd.address);
    free_list(cfg->attachments.blocked_extensions,
              cfg->attachments.nblocked_extensions);
    free_list(cfg->attachments.blocked_types, cfg->attachments.nblocked_types);
    free_list(cfg->attachments.allowed_extensions,
              cfg->attachments.nallowed_extensions);
    free_list(cfg->attachments.allowed_types, cfg->attachments.nallowed_types);
    free(cfg);
}
