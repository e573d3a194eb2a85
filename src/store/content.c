/* SPDX-License-Identifier: Apache-2.0 */
/*
 * content.c - sanitizing stored HTML again when the sanitizer's rules
 * change (docs/content.md, `mailroom content resanitize`).
 *
 * Every message with HTML keeps the original body, the sanitized one and
 * the MR_SANITIZER_VERSION that made it (migration 6). The stale ones are
 * listed in row order a page at a time, so a long run can stop and start
 * again where it was, and each is rewritten alone: the column and the
 * event JSON the API reads, in one transaction.
 */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_STALE[] =
    "SELECT id, tenant, event_json FROM messages"
    " WHERE id > ?1 AND body_html IS NOT NULL"
    " AND (sanitizer_version IS NULL OR sanitizer_version < ?2)"
    " ORDER BY id LIMIT ?3";
static const char SQL_SET[] =
    "UPDATE messages SET html_sanitized = ?2, sanitizer_version = ?3,"
    " event_json = ?4 WHERE id = ?1";

void mr_stale_html_clear(struct mr_stale_html *s)
{
    free(s->tenant);
    free(s->event_json);
    memset(s, 0, sizeof *s);
}

int mr_store_stale_html(struct mr_store *st, int version, int64_t after,
                        size_t max, struct mr_stale_html *out, size_t *n,
                        struct mr_error *err)
{
    *n = 0;
    memset(out, 0, max * sizeof *out);
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_STALE, &s, err);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, after);
        sqlite3_bind_int(s, 2, version);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)max);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < max) {
            struct mr_stale_html *m = &out[(*n)++];
            m->row = sqlite3_column_int64(s, 0);
            m->tenant = mr__col_str(s, 1);
            m->event_json = mr__col_str(s, 2);
        }
        rc = rc == SQLITE_DONE || rc == SQLITE_ROW
                 ? 0
                 : mr__sqlerr(c, rc, "cannot list stale sanitized bodies", err);
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++)
            mr_stale_html_clear(&out[i]);
        *n = 0;
    }
    return rc;
}

struct set_arg {
    int64_t row;
    const char *html_sanitized;
    int version;
    const char *event_json;
};

static int op_set(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct set_arg *a = arg;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_SET, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->row);
    if (a->html_sanitized)
        sqlite3_bind_text(s, 2, a->html_sanitized, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, a->version);
    sqlite3_bind_text(s, 4, a->event_json, -1, SQLITE_STATIC);
    rc = mr__stmt_exec(c, s, "cannot store the sanitized body", err);
    if (rc == 0 && sqlite3_changes(c->db) == 0)
        rc = mr_error_set(err, MR_ENOTFOUND, "no message row %lld",
                          (long long)a->row);
    return rc;
}

int mr_store_set_html_sanitized(struct mr_store *st, int64_t row,
                                const char *html_sanitized, int version,
                                const char *event_json, struct mr_error *err)
{
    if (event_json == NULL)
        return mr_error_set(err, MR_EINVAL, "no event JSON");
    struct set_arg a = {row, html_sanitized, version, event_json};
    return mr__store_write(st, op_set, &a, err);
}
