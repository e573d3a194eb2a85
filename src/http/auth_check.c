/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth_check.c - the request check: Authorization header -> token hash ->
 * store -> tenant and role. Kept apart from auth.c because it is the one
 * piece that needs a database.
 */
#include "http/auth.h"

#include <string.h>
#include <time.h>

#include "mime/date.h"
#include "util/clock.h"

int mr_auth_check(struct mr_store *st, const char *authorization,
                  struct mr_auth_principal *out, struct mr_error *err)
{
    return mr_auth_check_at(st, authorization, mr_clock_wall_ms(), out, err);
}

int mr_auth_check_at(struct mr_store *st, const char *authorization,
                     int64_t now_ms, struct mr_auth_principal *out,
                     struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    const char *tok;
    size_t len;
    int rc = mr_auth_parse_bearer(authorization, &tok, &len, err);
    if (rc < 0)
        return rc;

    /* The hash is the lookup key: the secret is never compared byte by
     * byte in our code, so its timing leaks nothing. */
    char token[MR_AUTH_MAX_PRESENTED + 1];
    memcpy(token, tok, len);
    token[len] = '\0';
    char hex[MR_AUTH_HASH_LEN + 1];
    mr_auth_token_hash(token, hex);
    memset(token, 0, sizeof token);

    struct mr_token_rec rec;
    memset(&rec, 0, sizeof rec);
    struct mr_error serr = {0};
    rc = mr_store_token_find(st, hex, &rec, &serr);
    if (rc == MR_ENOTFOUND)
        return mr_error_set(err, MR_ENOTFOUND, "unknown or revoked token");
    if (rc < 0) {
        int code = (rc == MR_EAGAIN) ? MR_EAGAIN : MR_EIO;
        return mr_error_set(err, code, "token lookup failed: %s", serr.msg);
    }

    unsigned role = mr_auth_role_parse(rec.role);
    size_t tlen = rec.tenant ? strlen(rec.tenant) : 0;
    if (role == 0 || rec.revoked || tlen == 0 || tlen >= sizeof out->tenant) {
        /* A row we cannot honour is treated as no token at all. */
        mr_token_rec_clear(&rec);
        return mr_error_set(err, MR_ENOTFOUND, "token is not usable");
    }
    if (rec.expires_at > 0 && rec.expires_at <= now_ms) {
        char when[32];
        mr_date_rfc3339(rec.expires_at / 1000, when);
        mr_token_rec_clear(&rec);
        return mr_error_set(err, MR_ENOTFOUND,
                            "token expired at %s; exchange the long-lived "
                            "token for a new one",
                            when);
    }
    out->token_id = rec.id;
    out->expires_at = rec.expires_at;
    mr_auth_token_prefix(rec.prefix ? rec.prefix : "", out->prefix);
    out->role = role;
    memcpy(out->tenant, rec.tenant, tlen + 1);
    mr_token_rec_clear(&rec);
    return 0;
}
