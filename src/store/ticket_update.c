/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ticket_update.c - agents' changes to a ticket (status, priority, queue,
 * assignee, tags) and the before/after record every change leaves in the
 * outbox as a ticket.updated event.
 *
 * One op on the writer reads the ticket, checks the caller's version,
 * computes the new values, and, only when one differs, writes them with
 * version + 1 and the event: the change and its event commit together or
 * not at all, and a patch that changes nothing leaves no trace (no event,
 * no new version, updated_at untouched), so clients may send the whole
 * form every time.
 *
 * Tags are a set kept in the order tags were first added. Comparing as
 * sets means a patch that only reorders them is no change; the stored
 * order then stays as it was.
 *
 * The patch's values are checked without a database (ticket_patch.c).
 * The diff itself (mr__ticket_changes_json) is shared with the delivering
 * transaction (tickets.c), which reads the same state before and after a
 * reply reopens a ticket or its rules change it.
 */
#include "store/store-private.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* Stored tags read back: more than any patch may leave is a damaged row;
 * the rest is ignored rather than looped over. */
#define STORED_TAGS_MAX 1000

static const char SQL_STATE[] =
    "SELECT number, version, status, priority, queue, assignee, tags"
    " FROM tickets WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)";
/* ?2.. the new values; solved_at follows the status (set when it becomes
 * solved, cleared when it leaves), as the reopen in tickets.c does. */
static const char SQL_UPDATE[] =
    "UPDATE tickets SET status = ?2, priority = ?3, queue = ?4,"
    " assignee = ?5, tags = ?6, version = version + 1,"
    " updated_at = max(updated_at, ?7),"
    " solved_at = CASE WHEN ?2 <> 'solved' THEN NULL"
    "   WHEN status = 'solved' THEN solved_at ELSE ?7 END"
    " WHERE id = ?1";

/* ---- state and diff ------------------------------------------------------ */

void mr__ticket_state_clear(struct mr__ticket_state *t)
{
    if (t == NULL)
        return;
    free(t->status);
    free(t->priority);
    free(t->queue);
    free(t->assignee);
    free(t->tags_json);
    memset(t, 0, sizeof *t);
}

int mr__ticket_state_read(struct mr__conn *c, const char *tenant, int64_t id,
                          struct mr__ticket_state *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_STATE, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    mr__bind_str(s, 2, tenant);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->number = sqlite3_column_int64(s, 0);
        out->version = sqlite3_column_int64(s, 1);
        out->status = mr__col_str(s, 2);
        out->priority = mr__col_str(s, 3);
        out->queue = mr__col_str(s, 4);
        out->assignee = mr__col_str(s, 5);
        out->tags_json = mr__col_str(s, 6);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = mr_error_set(err, MR_ENOTFOUND, "no such ticket");
    } else {
        rc = mr__sqlerr(c, rc, "cannot read the ticket", err);
    }
    mr__stmt_done(s);
    return rc;
}

/* A list of borrowed strings. */
struct tags {
    const char **v;
    size_t n, cap;
};

static bool tags_has(const struct tags *t, const char *s)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i], s) == 0)
            return true;
    return false;
}

/* Adds s unless it is there already (a set). */
static void tags_add(struct tags *t, const char *s)
{
    if (tags_has(t, s))
        return;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->v = mr_xrealloc(t->v, t->cap * sizeof *t->v);
    }
    t->v[t->n++] = s;
}

/* The strings of a stored tags array; *doc owns them (json_decref). */
static void tags_parse(const char *text, struct tags *t, json_t **doc)
{
    memset(t, 0, sizeof *t);
    *doc = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_array(*doc))
        return;
    size_t n = json_array_size(*doc);
    for (size_t i = 0; i < n && i < STORED_TAGS_MAX; i++) {
        const char *s = json_string_value(json_array_get(*doc, i));
        if (s)
            tags_add(t, s);
    }
}

static void tags_json(struct mr_json *j, const struct tags *t)
{
    mr_json_arr_begin(j);
    for (size_t i = 0; i < t->n; i++)
        mr_json_cstr(j, t->v[i]);
    mr_json_arr_end(j);
}

/* The members of a that b lacks. */
static void tags_minus_json(struct mr_json *j, const struct tags *a,
                            const struct tags *b)
{
    mr_json_arr_begin(j);
    for (size_t i = 0; i < a->n; i++)
        if (!tags_has(b, a->v[i]))
            mr_json_cstr(j, a->v[i]);
    mr_json_arr_end(j);
}

static bool same_set(const struct tags *a, const struct tags *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!tags_has(b, a->v[i]))
            return false;
    return true;
}

static bool same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Key name of "changes", which the first difference opens. */
static void change_key(struct mr_json *j, bool *any, const char *name)
{
    if (!*any) {
        mr_json_key(j, "changes");
        mr_json_obj_begin(j);
        *any = true;
    }
    mr_json_key(j, name);
}

static void change(struct mr_json *j, bool *any, const char *name,
                   const char *before, const char *after)
{
    if (same_str(before, after))
        return;
    change_key(j, any, name);
    mr_json_obj_begin(j);
    mr_json_key(j, "before");
    mr_json_cstr(j, before);
    mr_json_key(j, "after");
    mr_json_cstr(j, after);
    mr_json_obj_end(j);
}

bool mr__ticket_changes_json(struct mr_json *j,
                             const struct mr__ticket_state *before,
                             const struct mr__ticket_state *after)
{
    bool any = false;
    change(j, &any, "status", before->status, after->status);
    change(j, &any, "priority", before->priority, after->priority);
    change(j, &any, "queue", before->queue, after->queue);
    change(j, &any, "assignee", before->assignee, after->assignee);
    struct tags tb, ta;
    json_t *db, *da;
    tags_parse(before->tags_json, &tb, &db);
    tags_parse(after->tags_json, &ta, &da);
    if (!same_set(&tb, &ta)) {
        change_key(j, &any, "tags");
        mr_json_obj_begin(j);
        mr_json_key(j, "before");
        tags_json(j, &tb);
        mr_json_key(j, "after");
        tags_json(j, &ta);
        mr_json_key(j, "added");
        tags_minus_json(j, &ta, &tb);
        mr_json_key(j, "removed");
        tags_minus_json(j, &tb, &ta);
        mr_json_obj_end(j);
    }
    free(tb.v);
    free(ta.v);
    json_decref(db);
    json_decref(da);
    if (any)
        mr_json_obj_end(j);
    else {
        /* Always the key, so a consumer can read it without a check. */
        mr_json_key(j, "changes");
        mr_json_obj_begin(j);
        mr_json_obj_end(j);
    }
    return any;
}

/* ---- update -------------------------------------------------------------- */

struct update_arg {
    const char *tenant;
    int64_t id;
    const struct mr_ticket_patch *p;
    struct mr_ticket_update_result *res;
};

static char *dup_or_null(const char *s)
{
    return s ? mr_xstrndup(s, strlen(s)) : NULL;
}

/* The tags after the patch as a JSON array text (malloc'ed), or NULL
 * when the patch leaves them alone. MR_EINVAL past MR_TICKET_TAGS_MAX. */
static int new_tags(const struct mr_ticket_patch *p, const char *stored,
                    char **out, struct mr_error *err)
{
    *out = NULL;
    if (!p->set_tags && p->ntags_add == 0 && p->ntags_remove == 0)
        return 0;
    struct tags now = {0}, next = {0};
    json_t *doc = NULL;
    if (p->set_tags) {
        for (size_t i = 0; i < p->ntags; i++)
            tags_add(&next, p->tags[i]);
    } else {
        tags_parse(stored, &now, &doc);
        for (size_t i = 0; i < now.n; i++) {
            bool drop = false;
            for (size_t k = 0; k < p->ntags_remove && !drop; k++)
                drop = strcmp(now.v[i], p->tags_remove[k]) == 0;
            if (!drop)
                tags_add(&next, now.v[i]);
        }
        for (size_t i = 0; i < p->ntags_add; i++)
            tags_add(&next, p->tags_add[i]);
    }
    int rc = 0;
    if (next.n > MR_TICKET_TAGS_MAX) {
        rc = mr_error_set(err, MR_EINVAL,
                          "tags_add: a ticket has at most 100 tags");
    } else {
        struct mr_buf b;
        mr_buf_init(&b, 0);
        struct mr_json j;
        mr_json_init(&j, &b, false);
        tags_json(&j, &next);
        *out = mr_buf_detach(&b, NULL);
    }
    free(now.v);
    free(next.v);
    json_decref(doc);
    return rc;
}

static int write_update(struct mr__conn *c, int64_t id,
                        const struct mr__ticket_state *t, int64_t now,
                        struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_UPDATE, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    mr__bind_str(s, 2, t->status);
    mr__bind_str(s, 3, t->priority);
    mr__bind_str(s, 4, t->queue);
    mr__bind_str(s, 5, t->assignee);
    mr__bind_str(s, 6, t->tags_json);
    sqlite3_bind_int64(s, 7, now);
    return mr__stmt_exec(c, s, "cannot update the ticket", err);
}

static int op_update(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct update_arg *a = arg;
    const struct mr_ticket_patch *p = a->p;
    struct mr__ticket_state before, after;
    memset(&after, 0, sizeof after);
    int rc = mr__ticket_state_read(c, a->tenant, a->id, &before, err);
    if (rc < 0)
        return rc;
    a->res->version = before.version;
    if (p->if_version > 0 && p->if_version != before.version) {
        rc = mr_error_set(err, MR_ECONFLICT,
                          "the ticket changed since version %lld: it is at "
                          "version %lld now",
                          (long long)p->if_version, (long long)before.version);
        goto out;
    }
    after.number = before.number;
    after.version = before.version + 1;
    after.status = dup_or_null(p->status ? p->status : before.status);
    after.priority = dup_or_null(p->priority ? p->priority : before.priority);
    after.queue = dup_or_null(p->set_queue ? p->queue : before.queue);
    after.assignee =
        dup_or_null(p->set_assignee ? p->assignee : before.assignee);
    rc = new_tags(p, before.tags_json, &after.tags_json, err);
    if (rc < 0)
        goto out;
    if (after.tags_json == NULL)
        after.tags_json = dup_or_null(before.tags_json);

    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "ticket_id");
    mr_json_int(&j, a->id);
    mr_json_key(&j, "ticket_number");
    mr_json_int(&j, before.number);
    mr_json_key(&j, "actor");
    mr_json_cstr(&j, p->actor ? p->actor : "api");
    mr_json_key(&j, "version");
    mr_json_int(&j, after.version);
    bool changed = mr__ticket_changes_json(&j, &before, &after);
    mr_json_obj_end(&j);
    if (changed) {
        int64_t now = mr__store_now_ms();
        rc = write_update(c, a->id, &after, now, err);
        if (rc == 0)
            rc = mr__event_insert(c, a->tenant, "ticket.updated", a->id, 0, b.p,
                                  now, err);
        if (rc == 0) {
            a->res->changed = true;
            a->res->version = after.version;
            a->res->seq = sqlite3_last_insert_rowid(c->db);
        }
    }
    mr_buf_release(&b);
out:
    mr__ticket_state_clear(&before);
    mr__ticket_state_clear(&after);
    return rc;
}

int mr_store_update_ticket(struct mr_store *st, const char *tenant, int64_t id,
                           const struct mr_ticket_patch *p,
                           struct mr_ticket_update_result *res,
                           struct mr_error *err)
{
    memset(res, 0, sizeof *res);
    if (tenant == NULL || *tenant == '\0' || id <= 0)
        return mr_error_set(err, MR_EINVAL, "update: a tenant and a ticket id");
    int rc = mr_store_ticket_patch_check(p, NULL, err);
    if (rc < 0)
        return rc;
    struct update_arg a = {tenant, id, p, res};
    rc = mr__store_write(st, op_update, &a, err);
    if (rc < 0)
        memset(res, 0, sizeof *res);
    return rc;
}
