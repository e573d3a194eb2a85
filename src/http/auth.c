/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.c - token generation, hashing and the Authorization header syntax.
 * Pure functions: the store lookup lives in auth_check.c so that tools and
 * tests can use these without linking a database.
 */
#include "http/auth.h"

#include <sodium.h>
#include <string.h>

#include "util/hash.h"
#include "util/span.h"

int mr_auth_token_new(char out[MR_AUTH_TOKEN_LEN + 1], struct mr_error *err)
{
    /* sodium_init is idempotent and thread-safe: calling it every time
     * keeps this a plain function with no "initialised" flag to share. */
    if (sodium_init() < 0) {
        out[0] = '\0';
        return mr_error_set(err, MR_EIO, "libsodium cannot be initialised");
    }
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    size_t plen = strlen(MR_AUTH_TOKEN_PREFIX);
    memcpy(out, MR_AUTH_TOKEN_PREFIX, plen);
    /* 32 bytes -> 43 characters without padding, + NUL = 44. */
    sodium_bin2base64(out + plen, MR_AUTH_TOKEN_LEN + 1 - plen, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

void mr_auth_token_hash(const char *token, char hex[MR_AUTH_HASH_LEN + 1])
{
    mr_sha256_hex(token, token ? strlen(token) : 0, hex);
}

void mr_auth_token_prefix(const char *token, char out[MR_AUTH_PREFIX_LEN + 1])
{
    size_t n = token ? strnlen(token, MR_AUTH_PREFIX_LEN) : 0;
    if (n)
        memcpy(out, token, n);
    out[n] = '\0';
}

static const struct {
    const char *name;
    unsigned bit;
} roles[] = {
    {"admin", MR_AUTH_ADMIN},
    {"agent", MR_AUTH_AGENT},
    {"read", MR_AUTH_READ},
    {"ingest", MR_AUTH_INGEST},
};

unsigned mr_auth_role_parse(const char *name)
{
    if (name == NULL)
        return 0;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(name, roles[i].name) == 0)
            return roles[i].bit;
    return 0;
}

const char *mr_auth_role_name(unsigned role)
{
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (role == roles[i].bit)
            return roles[i].name;
    return NULL;
}

bool mr_auth_role_within(unsigned want, unsigned have)
{
    if (mr_auth_role_name(want) == NULL || mr_auth_role_name(have) == NULL)
        return false;
    if (have == MR_AUTH_ADMIN || want == have)
        return true;
    return have == MR_AUTH_AGENT && want == MR_AUTH_READ;
}

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
 * "+" / "/" ) *"=" */
static bool b64token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~' || c == '+' || c == '/';
}

int mr_auth_parse_bearer(const char *value, const char **tok, size_t *len,
                         struct mr_error *err)
{
    *tok = NULL;
    *len = 0;
    if (value == NULL)
        return mr_error_set(err, MR_EINVAL, "no Authorization header");
    size_t n = strnlen(value, MR_AUTH_MAX_PRESENTED + 1);
    if (n > MR_AUTH_MAX_PRESENTED)
        return mr_error_set(err, MR_EINVAL, "Authorization header too long");
    mr_span v = mr_span_trim(mr_span_make(value, n));
    if (!mr_span_istarts(v, "bearer ") && !mr_span_istarts(v, "bearer\t"))
        return mr_error_set(err, MR_EINVAL,
                            "Authorization must use the Bearer scheme");
    size_t i = 6;
    while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t'))
        i++;
    size_t start = i;
    while (i < v.n && b64token_char((unsigned char)v.p[i]))
        i++;
    if (i == start)
        return mr_error_set(err, MR_EINVAL, "empty bearer token");
    while (i < v.n && v.p[i] == '=')
        i++;
    if (i != v.n)
        return mr_error_set(err, MR_EINVAL, "malformed bearer token");
    *tok = v.p + start;
    *len = i - start;
    return 0;
}
