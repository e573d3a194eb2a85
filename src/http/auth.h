/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.h - API tokens: making them, hashing them, checking a request's.
 *
 * A token is "mrt_" followed by 43 base64url characters (32 random bytes
 * from libsodium's randombytes_buf). Only its SHA-256 (lowercase hex) is
 * stored; the secret is shown once by `mailroom token create` and never
 * again. A request presents it as "Authorization: Bearer <token>"; the
 * server hashes it and looks the hash up in the store, so the comparison
 * is an index lookup on a value the client cannot steer byte by byte (no
 * timing leak on the secret). The first MR_AUTH_PREFIX_LEN characters are
 * stored in clear so that an operator can recognise a token in a listing.
 *
 * Roles (a token has exactly one; docs/api.md lists what each may call):
 *   admin   everything
 *   agent   read and write tickets (writes come with the tickets issue)
 *   read    GET tickets
 *   ingest  POST /api/v1/messages only
 *
 * Short-lived tokens (POST /api/v1/tokens/exchange, docs/api.md) look
 * the same; the store keeps their expiry, and the check refuses them once
 * it has passed, with a message that says so. They cannot be exchanged
 * again: only a long-lived token mints them, so revoking it ends them all.
 *
 * Everything here is a plain function without global state except
 * mr_auth_check, which asks the store (auth_check.c).
 */
#ifndef MR_AUTH_H
#define MR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/error.h"

#define MR_AUTH_TOKEN_PREFIX "mrt_"
#define MR_AUTH_TOKEN_LEN 47      /* "mrt_" + 43; buffers are LEN + 1 */
#define MR_AUTH_PREFIX_LEN 12     /* characters kept in clear for listings */
#define MR_AUTH_HASH_LEN 64       /* hex SHA-256; buffers are LEN + 1 */
#define MR_AUTH_MAX_PRESENTED 256 /* longer Authorization values are refused   \
                                   */

enum mr_auth_role {
    MR_AUTH_ADMIN = 1 << 0,
    MR_AUTH_AGENT = 1 << 1,
    MR_AUTH_READ = 1 << 2,
    MR_AUTH_INGEST = 1 << 3,
};

/* Who a request is, once its token checked out. */
struct mr_auth_principal {
    int64_t token_id;
    unsigned role;                       /* exactly one enum mr_auth_role bit */
    char tenant[65];                     /* [a-z0-9_-]{1,64} */
    char prefix[MR_AUTH_PREFIX_LEN + 1]; /* for "who did it" in events */
    int64_t expires_at;                  /* 0: a long-lived token */
};

/* A new random token, NUL-terminated. MR_EIO when libsodium cannot be
 * initialised (no entropy source). Thread-safe. */
int mr_auth_token_new(char out[MR_AUTH_TOKEN_LEN + 1], struct mr_error *err);

/* hex = lowercase hex SHA-256 of the token's bytes (what the store keys). */
void mr_auth_token_hash(const char *token, char hex[MR_AUTH_HASH_LEN + 1]);

/* The first MR_AUTH_PREFIX_LEN characters (fewer if the token is shorter). */
void mr_auth_token_prefix(const char *token, char out[MR_AUTH_PREFIX_LEN + 1]);

/* "admin" -> MR_AUTH_ADMIN, ...; 0 for an unknown name. */
unsigned mr_auth_role_parse(const char *name);
/* The name of one role bit, or NULL. */
const char *mr_auth_role_name(unsigned role);

/* May a token of role `have` be exchanged for one of role `want`? Never
 * for a wider one: admin gives any role, agent gives agent or read, read
 * gives read, ingest gives ingest. */
bool mr_auth_role_within(unsigned want, unsigned have);

/* Extracts the token from an Authorization value: scheme "Bearer" (any
 * case), one or more spaces, then RFC 6750 b64token characters up to the
 * end. *tok points into value. MR_EINVAL (with a reason) when value is
 * NULL, another scheme, empty, over MR_AUTH_MAX_PRESENTED or malformed. */
int mr_auth_parse_bearer(const char *value, const char **tok, size_t *len,
                         struct mr_error *err);

/* The request check: parses authorization, hashes the token, finds it in
 * the store. 0 and *out filled; MR_EINVAL (no or malformed header) or
 * MR_ENOTFOUND (unknown or revoked token) -> 401; MR_EIO / MR_EAGAIN (the
 * store failed) -> 503. The role is not checked here: the route does. */
int mr_auth_check(struct mr_store *st, const char *authorization,
                  struct mr_auth_principal *out, struct mr_error *err);
/* The same at a given time (Unix ms): a token whose expiry is at or
 * before now is MR_ENOTFOUND with "token expired at <RFC 3339>".
 * mr_auth_check is this at the real clock. */
int mr_auth_check_at(struct mr_store *st, const char *authorization,
                     int64_t now_ms, struct mr_auth_principal *out,
                     struct mr_error *err);

#endif
