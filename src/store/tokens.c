/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tokens.c - API tokens, stored by the SHA-256 of their secret.
 *
 * token_find runs on every API request, so it is one lookup on the unique
 * index over hash, on a read connection, never waiting for the writer.
 * last_used_at is kept coarse on purpose: a find whose token was last marked
 * more than LAST_USED_GRANULARITY_MS ago posts a fire-and-forget update to
 * the writer, so a busy token costs one small write a minute instead of one
 * per request, and the request never waits for it. The value is therefore
 * approximate (up to a minute old, and lost if the process dies before the
 * writer's next commit): good enough to tell a stale token from a live one.
 *
 * Short-lived tokens (POST /api/v1/tokens/exchange) are rows like the
 * others with an expires_at and the id of the long-lived token they were
 * exchanged for: find hands back an expired one with its expiry, so that
 * the caller can say "expired" rather than "unknown", and finds nothing
 * once the parent is revoked. Rows a day past their expiry are purged by
 * later exchanges, a hundred at a time.
 */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define LAST_USED_GRANULARITY_MS 60000
#define MAX_TOKENS_LISTED 100000

#define TOKEN_COLS                                                             \
    "t.id, t.tenant, t.role, t.label, t.prefix, t.created_at,"                 \
    " t.last_used_at, t.revoked, coalesce(t.expires_at, 0),"                   \
    " coalesce(t.parent_id, 0)"

static const char SQL_ADD[] =
    "INSERT INTO tokens (tenant, role, hash, prefix, label, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/* A short-lived token lives only as long as the token it came from. */
static const char SQL_FIND[] =
    "SELECT " TOKEN_COLS " FROM tokens t WHERE t.hash = ?1 AND t.revoked = 0"
    " AND (t.parent_id IS NULL OR EXISTS (SELECT 1 FROM tokens p"
    "  WHERE p.id = t.parent_id AND p.revoked = 0))";
static const char SQL_PARENT[] =
    "SELECT tenant, revoked, coalesce(expires_at, 0) FROM tokens WHERE id = ?1";
static const char SQL_ADD_CHILD[] =
    "INSERT INTO tokens (tenant, role, hash, prefix, label, created_at,"
    " expires_at, parent_id) VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7)";
/* Bounded, so that one exchange never pays for a long backlog. */
static const char SQL_PURGE[] =
    "DELETE FROM tokens WHERE id IN (SELECT id FROM tokens"
    " WHERE expires_at IS NOT NULL AND expires_at < ?1 LIMIT 100)";
static const char SQL_TOUCH[] =
    "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1 AND last_used_at < ?2";
static const char SQL_LIST_ALL[] =
    "SELECT " TOKEN_COLS " FROM tokens t ORDER BY t.id LIMIT ?1";
static const char SQL_LIST_TENANT[] =
    "SELECT " TOKEN_COLS " FROM tokens t WHERE t.tenant = ?2"
    " ORDER BY t.id LIMIT ?1";
static const char SQL_REVOKE[] =
    "UPDATE tokens SET revoked = 1 WHERE id = ?1 AND revoked = 0";

static const char *const roles[] = {"admin", "agent", "ingest", "read"};

void mr_token_rec_clear(struct mr_token_rec *t)
{
    if (t == NULL)
        return;
    free(t->tenant);
    free(t->role);
    free(t->label);
    free(t->prefix);
    memset(t, 0, sizeof *t);
}

void mr_token_list_free(struct mr_token_rec *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        mr_token_rec_clear(&t[i]);
    free(t);
}

static void read_token(sqlite3_stmt *s, struct mr_token_rec *t)
{
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(s, 0);
    t->tenant = mr__col_str(s, 1);
    t->role = mr__col_str(s, 2);
    t->label = mr__col_str(s, 3);
    t->prefix = mr__col_str(s, 4);
    t->created_at = sqlite3_column_int64(s, 5);
    t->last_used_at = sqlite3_column_int64(s, 6);
    t->revoked = sqlite3_column_int(s, 7) != 0;
    t->expires_at = sqlite3_column_int64(s, 8);
    t->parent_id = sqlite3_column_int64(s, 9);
}

/* ---- add ----------------------------------------------------------------- */

struct add_arg {
    const char *tenant, *role, *hash, *prefix, *label;
    int64_t id;
};

static int op_add(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct add_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_ADD, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->role);
    mr__bind_str(s, 3, a->hash);
    mr__bind_str(s, 4, a->prefix ? a->prefix : "");
    mr__bind_str(s, 5, a->label);
    sqlite3_bind_int64(s, 6, mr__store_now_ms());
    rc = mr__stmt_exec(c, s, "cannot add the token", err);
    if (rc < 0)
        return rc;
    a->id = sqlite3_last_insert_rowid(c->db);
    return 0;
}

/* Copies a hex SHA-256 into out in lower case, so that one secret has one
 * spelling and the unique index really makes it unique. */
static bool norm_hash(const char *h, char out[65])
{
    if (h == NULL)
        return false;
    size_t i = 0;
    for (; i < 64 && h[i]; i++) {
        char ch = h[i];
        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return false;
        out[i] = ch;
    }
    out[i] = '\0';
    return i == 64 && h[i] == '\0';
}

int mr_store_token_add(struct mr_store *st, const char *tenant,
                       const char *role, const char *hash_hex,
                       const char *prefix, const char *label, int64_t *id,
                       struct mr_error *err)
{
    if (tenant == NULL || *tenant == '\0')
        return mr_error_set(err, MR_EINVAL, "a token needs a tenant");
    bool known = false;
    for (size_t i = 0; role && i < sizeof roles / sizeof roles[0]; i++)
        known = known || strcmp(role, roles[i]) == 0;
    if (!known)
        return mr_error_set(err, MR_EINVAL,
                            "unknown role '%.32s' (admin, agent, ingest, "
                            "read)",
                            role ? role : "");
    char hash[65];
    if (!norm_hash(hash_hex, hash))
        return mr_error_set(err, MR_EINVAL,
                            "a token hash is 64 hex digits (SHA-256)");
    struct add_arg a = {tenant, role, hash, prefix, label, 0};
    int rc = mr__store_write(st, op_add, &a, err);
    if (rc == 0 && id)
        *id = a.id;
    return rc;
}

/* ---- add a short-lived child --------------------------------------------- */

#define PURGE_AFTER_MS (24LL * 3600 * 1000)

struct child_arg {
    int64_t parent_id;
    const char *tenant, *role, *hash, *prefix;
    int64_t expires_at;
    int64_t id;
};

static int op_add_child(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct child_arg *a = arg;
    int64_t now = mr__store_now_ms();
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_PARENT, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->parent_id);
    rc = sqlite3_step(s);
    bool ok = false;
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        ok = t && strcmp(t, a->tenant) == 0 && sqlite3_column_int(s, 1) == 0 &&
             sqlite3_column_int64(s, 2) == 0;
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = mr__sqlerr(c, rc, "cannot read the token", err);
    }
    mr__stmt_done(s);
    if (rc < 0)
        return rc;
    if (!ok)
        return mr_error_set(err, MR_ENOTFOUND,
                            "no live long-lived token %lld in tenant %s",
                            (long long)a->parent_id, a->tenant);
    rc = mr__stmt(c, SQL_PURGE, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, now - PURGE_AFTER_MS);
    rc = mr__stmt_exec(c, s, "cannot purge expired tokens", err);
    if (rc < 0)
        return rc;
    rc = mr__stmt(c, SQL_ADD_CHILD, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, a->tenant);
    mr__bind_str(s, 2, a->role);
    mr__bind_str(s, 3, a->hash);
    mr__bind_str(s, 4, a->prefix ? a->prefix : "");
    sqlite3_bind_int64(s, 5, now);
    sqlite3_bind_int64(s, 6, a->expires_at);
    sqlite3_bind_int64(s, 7, a->parent_id);
    rc = mr__stmt_exec(c, s, "cannot add the token", err);
    if (rc < 0)
        return rc;
    a->id = sqlite3_last_insert_rowid(c->db);
    return 0;
}

int mr_store_token_add_child(struct mr_store *st, int64_t parent_id,
                             const char *tenant, const char *role,
                             const char *hash_hex, const char *prefix,
                             int64_t expires_at, int64_t *id,
                             struct mr_error *err)
{
    if (tenant == NULL || *tenant == '\0' || parent_id <= 0 || expires_at <= 0)
        return mr_error_set(err, MR_EINVAL,
                            "a short-lived token needs a tenant, a parent "
                            "and an expiry");
    bool known = false;
    for (size_t i = 0; role && i < sizeof roles / sizeof roles[0]; i++)
        known = known || strcmp(role, roles[i]) == 0;
    if (!known)
        return mr_error_set(err, MR_EINVAL, "unknown role '%.32s'",
                            role ? role : "");
    char hash[65];
    if (!norm_hash(hash_hex, hash))
        return mr_error_set(err, MR_EINVAL,
                            "a token hash is 64 hex digits (SHA-256)");
    struct child_arg a = {parent_id, tenant, role, hash, prefix, expires_at, 0};
    int rc = mr__store_write(st, op_add_child, &a, err);
    if (rc == 0 && id)
        *id = a.id;
    return rc;
}

/* ---- find ---------------------------------------------------------------- */

struct touch_arg {
    int64_t id;
    int64_t now;
};

static int op_touch(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct touch_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_TOUCH, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    sqlite3_bind_int64(s, 2, a->now);
    return mr__stmt_exec(c, s, "cannot mark the token used", err);
}

int mr_store_token_find(struct mr_store *st, const char *hash_hex,
                        struct mr_token_rec *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    char hash[65];
    if (!norm_hash(hash_hex, hash))
        return mr_error_set(err, MR_ENOTFOUND, "no such token");
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_FIND, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, hash);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            read_token(s, out);
            rc = 0;
        } else if (rc == SQLITE_DONE) {
            rc = mr_error_set(err, MR_ENOTFOUND, "no such token");
        } else {
            rc = mr__sqlerr(c, rc, "cannot look up the token", err);
        }
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    if (rc < 0)
        return rc;
    int64_t now = mr__store_now_ms();
    if (now - out->last_used_at >= LAST_USED_GRANULARITY_MS) {
        struct touch_arg *a = mr_xmalloc(sizeof *a);
        a->id = out->id;
        a->now = now;
        mr__store_post(st, op_touch, a, free);
    }
    return 0;
}

/* ---- list and revoke ----------------------------------------------------- */

int mr_store_token_list(struct mr_store *st, const char *tenant,
                        struct mr_token_rec **out, size_t *n,
                        struct mr_error *err)
{
    *out = NULL;
    *n = 0;
    struct mr_token_rec *v = NULL;
    size_t count = 0, cap = 0;
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, tenant ? SQL_LIST_TENANT : SQL_LIST_ALL, &s, err);
    if (rc == 0) {
        sqlite3_bind_int(s, 1, MAX_TOKENS_LISTED);
        if (tenant)
            mr__bind_str(s, 2, tenant);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW &&
               count < MAX_TOKENS_LISTED) {
            if (count == cap) {
                cap = cap ? cap * 2 : 8;
                v = mr_xrealloc(v, cap * sizeof *v);
            }
            read_token(s, &v[count++]);
        }
        rc = rc == SQLITE_DONE || rc == SQLITE_ROW
                 ? 0
                 : mr__sqlerr(c, rc, "cannot list tokens", err);
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    if (rc < 0) {
        mr_token_list_free(v, count);
        return rc;
    }
    *out = v;
    *n = count;
    return 0;
}

static int op_revoke(struct mr__conn *c, void *arg, struct mr_error *err)
{
    int64_t id = *(int64_t *)arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_REVOKE, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    rc = mr__stmt_exec(c, s, "cannot revoke the token", err);
    if (rc == 0 && sqlite3_changes(c->db) == 0)
        rc = mr_error_set(err, MR_ENOTFOUND, "no live token %lld",
                          (long long)id);
    return rc;
}

int mr_store_token_revoke(struct mr_store *st, int64_t id, struct mr_error *err)
{
    return mr__store_write(st, op_revoke, &id, err);
}
