/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tickets.c - storing a parsed message (ticket, message, attachments,
 * thread references, outbox events and the job's DONE in one transaction),
 * the ticket views of the read API, and the gauges for /metrics.
 *
 * Idempotency: (tenant, message_id) is unique, and deliver looks it up
 * first, so a job that runs twice (its worker died after the commit but
 * before it could tell anyone) stores nothing twice; it only finishes the
 * job. The outbox events are written in the same transaction as the rows
 * they announce, so an event never names a row that does not exist and a
 * stored message never lacks its event.
 *
 * Ignored mail (docs/rules.md) is kept in ignored_messages with its
 * message.ignored event. A release (mr_store_release_ignored, then a
 * delivery with release_of) is idempotent the same way: the job is
 * queued once per row, and the delivery that stores the message marks
 * the row released in its transaction, so its second run is a duplicate.
 *
 * Paging: tickets are listed newest updated first and paged by the key
 * (updated_at, id) of the last row, not by an offset, so a page costs the
 * same at any depth and rows updated meanwhile are neither skipped nor
 * repeated within one pass. The cursor is that key as "UPDATED.ID".
 */
#include "store/store-private.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"

#define LIST_DEFAULT 50
#define LIST_MAX 200
/* More attachment rows than any parser limit allows: a bad caller. */
#define MAX_ATTACHMENTS 10000
/* A ticket view carries at most this many messages (oldest first); the
 * view's message_count still says how many there are. */
#define MAX_VIEW_MESSAGES 10000
#define CURSOR_MAX 48

static const char SQL_FIND_MESSAGE[] =
    "SELECT id, ticket_id FROM messages WHERE tenant = ?1 AND message_id = ?2";
static const char SQL_NEXT_NUMBER[] =
    "SELECT coalesce(max(number), 0) + 1 FROM tickets WHERE tenant = ?1";
static const char SQL_INSERT_TICKET[] =
    "INSERT INTO tickets (tenant, number, external_id, requester, subject,"
    " subject_norm, linked_ticket_id, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)";
static const char SQL_TOUCH_TICKET[] =
    "UPDATE tickets SET updated_at = max(updated_at, ?2),"
    " version = version + 1,"
    " status = CASE WHEN ?3 AND status = 'solved' THEN 'open' ELSE status END,"
    " solved_at = CASE WHEN ?3 AND status = 'solved' THEN NULL"
    "   ELSE solved_at END"
    " WHERE id = ?1";
static const char SQL_ADD_PARTICIPANT[] =
    "INSERT OR IGNORE INTO ticket_participants (tenant, ticket_id, address,"
    " role) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_INSERT_MESSAGE[] =
    "INSERT INTO messages (tenant, ticket_id, message_id, message_id_derived,"
    " in_reply_to, direction, channel, inbox, from_email, from_name, subject,"
    " body_text, body_html, event_json, raw_blob, date, received_at, kind,"
    " threaded_by, thread_detail, unverified, auto_json, content_key,"
    " html_sanitized, sanitizer_version, stripped_text, matched_rules)"
    " VALUES (?1, ?2, ?3, ?4, ?5, 'inbound', ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
    " ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)";
/* The rules' outcome onto a ticket, new or joined: a value a rule set
 * replaces the ticket's (NULL keeps it), tags are removed then added
 * (each once, first-seen order), the decisions are appended to the
 * trail. */
static const char SQL_APPLY_RULES[] =
    "UPDATE tickets SET queue = coalesce(?2, queue),"
    " priority = coalesce(?3, priority),"
    " assignee = coalesce(?4, assignee),"
    " tags = (SELECT json_group_array(v) FROM (SELECT v, min(o) AS o FROM ("
    "   SELECT value AS v, key AS o FROM json_each(tickets.tags)"
    "     WHERE value NOT IN (SELECT value FROM json_each(?6))"
    "   UNION ALL SELECT value, 1000000 + key FROM json_each(?5))"
    "   GROUP BY v ORDER BY o)),"
    " applied_rules = (SELECT json_group_array(json(v)) FROM ("
    "   SELECT value AS v, 0 AS s, key AS k"
    "     FROM json_each(tickets.applied_rules)"
    "   UNION ALL SELECT value, 1, key FROM json_each(?7) ORDER BY s, k)),"
    " fields = json_patch(fields, ?8)"
    " WHERE id = ?1";
/* Ignored mail (docs/rules.md): kept without a ticket. */
static const char SQL_FIND_IGNORED[] =
    "SELECT id FROM ignored_messages WHERE tenant = ?1 AND message_id = ?2";
static const char SQL_INSERT_IGNORED[] =
    "INSERT INTO ignored_messages (tenant, message_id, channel, inbox,"
    " from_email, subject, event_json, raw_blob, content_key, applied_rules,"
    " matched_rules, received_at, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
#define IGNORED_COLS                                                           \
    "id, message_id, channel, inbox, from_email, subject, raw_blob,"           \
    " applied_rules, matched_rules, received_at,"                              \
    " coalesce(release_job_id, 0), release_by,"                                \
    " coalesce(release_requested_at, 0), coalesce(released_at, 0),"            \
    " coalesce(released_ticket_id, 0), coalesce(released_message_row, 0)"
static const char SQL_GET_IGNORED[] =
    "SELECT " IGNORED_COLS ", event_json FROM ignored_messages"
    " WHERE id = ?1 AND tenant = ?2";
/* Releasing (docs/rules.md): the request, then the delivery's mark. */
static const char SQL_RELEASE_STATE[] =
    "SELECT released_at IS NOT NULL, coalesce(released_ticket_id, 0),"
    " coalesce(release_job_id, 0), raw_blob, received_at"
    " FROM ignored_messages WHERE id = ?1 AND tenant = ?2";
static const char SQL_RELEASE_REQUEST[] =
    "UPDATE ignored_messages SET release_job_id = ?3, release_by = ?4,"
    " release_requested_at = ?5 WHERE id = ?1 AND tenant = ?2";
static const char SQL_RELEASED_AS[] =
    "SELECT coalesce(released_ticket_id, 0),"
    " coalesce(released_message_row, 0) FROM ignored_messages"
    " WHERE id = ?1 AND tenant = ?2 AND released_at IS NOT NULL";
static const char SQL_MARK_RELEASED[] =
    "UPDATE ignored_messages SET released_at = ?3, released_ticket_id = ?4,"
    " released_message_row = ?5"
    " WHERE id = ?1 AND tenant = ?2 AND released_at IS NULL";
/* One {name, decision} entry at the end of a ticket's trail. */
static const char SQL_TRAIL_APPEND[] =
    "UPDATE tickets SET applied_rules = json_insert(applied_rules, '$[#]',"
    " json_object('name', ?2, 'decision', ?3)) WHERE id = ?1";
static const char SQL_LIST_IGNORED_FIRST[] =
    "SELECT " IGNORED_COLS " FROM ignored_messages WHERE tenant = ?1"
    " ORDER BY id DESC LIMIT ?2";
static const char SQL_LIST_IGNORED_AFTER[] =
    "SELECT " IGNORED_COLS " FROM ignored_messages WHERE tenant = ?1"
    " AND id < ?3 ORDER BY id DESC LIMIT ?2";
/* tickets_subject (tenant, requester, ...) serves it. */
static const char SQL_COUNT_REQUESTER[] =
    "SELECT count(*) FROM tickets WHERE tenant = ?1 AND requester = ?2";
static const char SQL_CONTENT_KEY[] =
    "SELECT content_key FROM messages WHERE tenant = ?1 AND message_id = ?2";
static const char SQL_INSERT_ATTACHMENT[] =
    "INSERT INTO attachments (tenant, message_row, filename, safe_filename,"
    " content_type, disposition, content_id, size, sha256, detected_type,"
    " type_mismatch, blocked, blocked_reason, truncated, scan)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
    " ?15)";
/* A reference stored by an earlier message may name this id already; the
 * ticket it points to stays (threading decides, not the insert). */
static const char SQL_INSERT_REF[] =
    "INSERT OR IGNORE INTO thread_refs (tenant, message_id, ticket_id)"
    " VALUES (?1, ?2, ?3)";

#define TICKET_COLS                                                            \
    "t.id, t.number, t.tenant, t.subject, t.status, t.priority, t.queue,"      \
    " t.assignee, t.tags, t.requester, t.created_at, t.updated_at,"            \
    " (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id),"             \
    " t.applied_rules, t.linked_ticket_id, t.fields, t.version, t.links"

/* NULL filter values match everything. */
#define TICKET_FILTER                                                          \
    " AND (?5 IS NULL OR t.status = ?5) AND (?6 IS NULL OR t.queue = ?6)"      \
    " AND (?7 IS NULL OR t.priority = ?7)"                                     \
    " AND (?8 IS NULL OR t.requester = ?8)"

static const char SQL_LIST_FIRST[] =
    "SELECT " TICKET_COLS " FROM tickets t WHERE t.tenant = ?1" TICKET_FILTER
    " ORDER BY t.updated_at DESC, t.id DESC LIMIT ?2";
static const char SQL_LIST_AFTER[] =
    "SELECT " TICKET_COLS " FROM tickets t WHERE t.tenant = ?1" TICKET_FILTER
    " AND (t.updated_at, t.id) < (?3, ?4)"
    " ORDER BY t.updated_at DESC, t.id DESC LIMIT ?2";
static const char SQL_GET_TICKET[] =
    "SELECT " TICKET_COLS " FROM tickets t WHERE t.id = ?1 AND t.tenant = ?2";
static const char SQL_TICKET_ID_BY_NUMBER[] =
    "SELECT id FROM tickets WHERE number = ?1 AND tenant = ?2";

#define MESSAGE_COLS                                                           \
    "id, ticket_id, message_id, direction, from_email, from_name,"             \
    " subject, body_text, body_html, event_json, raw_blob, received_at,"       \
    " kind, threaded_by, thread_detail, unverified, auto_json, inbox,"         \
    " matched_rules"

static const char SQL_TICKET_MESSAGES[] =
    "SELECT " MESSAGE_COLS " FROM messages WHERE ticket_id = ?1 AND tenant = ?2"
    /* By the sender's Date, as mail clients show a thread, so a parent
     * that arrived after its replies still comes first (pitfalls.md 5). */
    " ORDER BY coalesce(date, received_at), received_at, id LIMIT ?3";
static const char SQL_GET_MESSAGE[] =
    "SELECT " MESSAGE_COLS " FROM messages WHERE id = ?1 AND tenant = ?2";
#define ATTACHMENT_COLS                                                        \
    "id, message_row, filename, safe_filename, content_type, disposition,"     \
    " content_id, size, sha256, scan, detected_type, type_mismatch, blocked,"  \
    " blocked_reason, truncated, scan_signature, coalesce(scanned_at, 0),"     \
    " scan_previous"
static const char SQL_MESSAGE_ATTACHMENTS[] =
    "SELECT " ATTACHMENT_COLS " FROM attachments"
    " WHERE message_row = ?1 ORDER BY id LIMIT 10000";
static const char SQL_GET_ATTACHMENT[] =
    "SELECT " ATTACHMENT_COLS " FROM attachments WHERE id = ?1 AND tenant = ?2";
/* attachments_sha256 (migration 4) serves this. */
static const char SQL_FIND_INLINE[] =
    "SELECT detected_type FROM attachments WHERE tenant = ?1 AND sha256 = ?2"
    " AND blocked = 0 AND truncated = 0 AND detected_type LIKE 'image/%'"
    " ORDER BY id LIMIT 1";
static const char SQL_READ_BEGIN[] = "BEGIN";
static const char SQL_READ_END[] = "COMMIT";
static const char SQL_STATS[] =
    "SELECT (SELECT count(*) FROM jobs WHERE state = 'ready'),"
    "       (SELECT count(*) FROM jobs WHERE state = 'leased'),"
    "       (SELECT count(*) FROM jobs WHERE state = 'dead'),"
    "       (SELECT count(*) FROM messages),"
    "       (SELECT count(*) FROM tickets),"
    /* The outbound queues: each count walks an index holding just that
     * state (the due indexes, migration 17's), so a scrape costs the rows
     * counted, not the sent rows that pile up. */
    "       (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'),"
    "       (SELECT count(*) FROM webhook_deliveries WHERE state = 'dead'),"
    "       (SELECT count(*) FROM notifications WHERE state = 'pending'),"
    "       (SELECT count(*) FROM notifications WHERE state = 'dead'),"
    "       (SELECT count(*) FROM outbound_mail WHERE state = 'pending'),"
    "       (SELECT count(*) FROM outbound_mail WHERE state = 'failed'),"
    "       (SELECT count(*) FROM attachments WHERE scan = 'pending'),"
    "       (SELECT count(*) FROM attachments WHERE scan = 'error')";

/* ---- deliver ------------------------------------------------------------- */

struct deliver_arg {
    int64_t job_id;
    const char *worker;
    const struct mr_message_rec *m;
    struct mr_deliver_result *res;
    const struct mr_store *st; /* for its thread secret */
};

static int find_message(struct mr__conn *c, const struct mr_message_rec *m,
                        struct mr_deliver_result *res, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_FIND_MESSAGE, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, m->tenant);
    mr__bind_str(s, 2, m->message_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        res->duplicate = true;
        res->message_row = sqlite3_column_int64(s, 0);
        res->ticket_id = sqlite3_column_int64(s, 1);
    }
    int r = rc == SQLITE_ROW || rc == SQLITE_DONE
                ? 0
                : mr__sqlerr(c, rc, "cannot look up the message", err);
    mr__stmt_done(s);
    return r;
}

static int new_ticket(struct mr__conn *c, const struct mr_message_rec *m,
                      int64_t now, int64_t linked, int64_t *ticket_id,
                      int64_t *number, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_NEXT_NUMBER, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, m->tenant);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *number = sqlite3_column_int64(s, 0);
    rc = rc == SQLITE_ROW ? 0 : mr__sqlerr(c, rc, "cannot number", err);
    mr__stmt_done(s);
    if (rc < 0)
        return rc;
    rc = mr__stmt(c, SQL_INSERT_TICKET, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, m->tenant);
    sqlite3_bind_int64(s, 2, *number);
    mr__bind_str(s, 3, m->message_id);
    mr__bind_str(s, 4, m->from_email);
    mr__bind_str(s, 5, m->subject);
    char norm[MR_THREAD_SUBJECT_MAX]; /* the cap thread.c compares with */
    mr_thread_normalize_subject(m->subject ? m->subject : "", norm,
                                sizeof norm);
    sqlite3_bind_text(s, 6, norm, -1, SQLITE_TRANSIENT);
    if (linked > 0)
        sqlite3_bind_int64(s, 7, linked);
    sqlite3_bind_int64(s, 8, now);
    rc = mr__stmt_exec(c, s, "cannot create the ticket", err);
    *ticket_id = sqlite3_last_insert_rowid(c->db);
    return rc;
}

static int insert_message(struct mr__conn *c, const struct mr_message_rec *m,
                          int64_t ticket_id,
                          const struct mr_thread_decision *d, int64_t *row,
                          struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_INSERT_MESSAGE, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, m->tenant);
    sqlite3_bind_int64(s, 2, ticket_id);
    mr__bind_str(s, 3, m->message_id);
    sqlite3_bind_int(s, 4, m->message_id_derived ? 1 : 0);
    mr__bind_str(s, 5, m->in_reply_to);
    mr__bind_str(s, 6, m->channel);
    mr__bind_str(s, 7, m->inbox);
    mr__bind_str(s, 8, m->from_email);
    mr__bind_str(s, 9, m->from_name);
    mr__bind_str(s, 10, m->subject);
    mr__bind_str(s, 11, m->text);
    mr__bind_str(s, 12, m->html);
    mr__bind_str(s, 13, m->event_json);
    mr__bind_str(s, 14, m->raw_sha256);
    if (m->date != 0)
        sqlite3_bind_int64(s, 15, m->date);
    sqlite3_bind_int64(s, 16, m->received_at);
    mr__bind_str(s, 17, d->delivery_failure ? "delivery_failure" : "message");
    mr__bind_str(s, 18, mr_thread_by_name(d->by));
    if (d->detail[0])
        mr__bind_str(s, 19, d->detail);
    sqlite3_bind_int(s, 20, d->unverified ? 1 : 0);
    mr__bind_str(s, 21, m->auto_json);
    mr__bind_str(s, 22, m->content_key);
    mr__bind_str(s, 23, m->html_sanitized);
    if (m->html_sanitized)
        sqlite3_bind_int(s, 24, m->sanitizer_version);
    mr__bind_str(s, 25, m->stripped_text);
    const struct mr_rules_outcome *ro =
        d->ticket_id == 0 ? m->rules_new : m->rules_reply;
    if (ro)
        mr__bind_str(s, 26, ro->matched_json);
    rc = mr__stmt_exec(c, s, "cannot store the message", err);
    *row = sqlite3_last_insert_rowid(c->db);
    return rc;
}

static int insert_attachments(struct mr__conn *c,
                              const struct mr_message_rec *m, int64_t row,
                              struct mr_error *err)
{
    for (size_t i = 0; i < m->nattachments; i++) {
        const struct mr_attachment_rec *a = &m->attachments[i];
        sqlite3_stmt *s;
        int rc = mr__stmt(c, SQL_INSERT_ATTACHMENT, &s, err);
        if (rc < 0)
            return rc;
        mr__bind_str(s, 1, m->tenant);
        sqlite3_bind_int64(s, 2, row);
        mr__bind_str(s, 3, a->filename);
        mr__bind_str(s, 4, a->safe_filename);
        mr__bind_str(s, 5, a->content_type);
        mr__bind_str(s, 6, a->disposition);
        mr__bind_str(s, 7, a->content_id);
        sqlite3_bind_int64(s, 8, a->size);
        /* A truncated attachment has no blob: no key, whatever the caller
         * passed, so every non-NULL sha256 names a stored blob. */
        mr__bind_str(s, 9, a->truncated ? NULL : a->sha256);
        mr__bind_str(s, 10, a->detected_type);
        sqlite3_bind_int(s, 11, a->type_mismatch ? 1 : 0);
        sqlite3_bind_int(s, 12, a->blocked ? 1 : 0);
        mr__bind_str(s, 13, a->blocked ? a->blocked_reason : NULL);
        sqlite3_bind_int(s, 14, a->truncated ? 1 : 0);
        /* Only bytes can be scanned: a row without a blob is never
         * pending, or the scanner would wait for it forever. */
        bool bytes = !a->truncated && a->sha256 && a->sha256[0];
        mr__bind_str(s, 15, bytes ? a->scan : NULL);
        rc = mr__stmt_exec(c, s, "cannot store an attachment", err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int insert_ref(struct mr__conn *c, const char *tenant, const char *id,
                      int64_t ticket_id, struct mr_error *err)
{
    if (id == NULL || *id == '\0')
        return 0;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_INSERT_REF, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, tenant);
    mr__bind_str(s, 2, id);
    sqlite3_bind_int64(s, 3, ticket_id);
    return mr__stmt_exec(c, s, "cannot store the thread reference", err);
}

/* Every id the message carries or references points at its ticket, so a
 * parent arriving after its reply still finds the thread (pitfalls.md 5).
 * An unverified sender's references are not recorded: a stranger must not
 * be able to claim ids for a ticket. */
static int insert_refs(struct mr__conn *c, const struct mr_message_rec *m,
                       int64_t ticket_id, bool unverified,
                       struct mr_error *err)
{
    int rc = insert_ref(c, m->tenant, m->message_id, ticket_id, err);
    if (unverified)
        return rc;
    if (rc == 0)
        rc = insert_ref(c, m->tenant, m->in_reply_to, ticket_id, err);
    for (size_t i = 0; rc == 0 && i < m->nreferences; i++)
        rc = insert_ref(c, m->tenant, m->references[i], ticket_id, err);
    return rc;
}

static int add_participant(struct mr__conn *c, const char *tenant,
                           int64_t ticket_id, const char *addr,
                           const char *role, struct mr_error *err)
{
    if (addr == NULL || *addr == '\0')
        return 0;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_ADD_PARTICIPANT, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, tenant);
    sqlite3_bind_int64(s, 2, ticket_id);
    mr__bind_str(s, 3, addr);
    mr__bind_str(s, 4, role);
    return mr__stmt_exec(c, s, "cannot add a participant", err);
}

/* The requester (new tickets) and the addresses copied on the message. */
static int add_participants(struct mr__conn *c, const struct mr_message_rec *m,
                            int64_t ticket_id, bool new_ticket,
                            bool add_sender, struct mr_error *err)
{
    int rc = 0;
    if (new_ticket)
        rc = add_participant(c, m->tenant, ticket_id, m->from_email,
                             "requester", err);
    else if (add_sender)
        rc = add_participant(c, m->tenant, ticket_id, m->from_email, "cc",
                             err);
    for (size_t i = 0; rc == 0 && i < m->ncopied; i++)
        rc = add_participant(c, m->tenant, ticket_id, m->copied[i], "cc", err);
    return rc;
}

static int apply_rules(struct mr__conn *c, int64_t ticket_id,
                       const struct mr_rules_outcome *ro,
                       struct mr_error *err)
{
    if (!ro)
        return 0;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_APPLY_RULES, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, ticket_id);
    mr__bind_str(s, 2, ro->queue);
    mr__bind_str(s, 3, ro->priority);
    mr__bind_str(s, 4, ro->assignee);
    mr__bind_str(s, 5, ro->tags_add_json ? ro->tags_add_json : "[]");
    mr__bind_str(s, 6, ro->tags_remove_json ? ro->tags_remove_json : "[]");
    mr__bind_str(s, 7, ro->applied_json ? ro->applied_json : "[]");
    mr__bind_str(s, 8, ro->fields_json ? ro->fields_json : "{}");
    return mr__stmt_exec(c, s, "cannot apply the rules to the ticket", err);
}

static int touch_ticket(struct mr__conn *c, int64_t ticket_id, int64_t now,
                        bool reopen, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_TOUCH_TICKET, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, ticket_id);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int(s, 3, reopen ? 1 : 0);
    return mr__stmt_exec(c, s, "cannot update the ticket", err);
}

/* The outbox payload: only ids. Consumers read the rows they name, so the
 * event stays small and never disagrees with the ticket. The reply's
 * ticket.updated (before non-NULL) adds who changed it ("reply"), the
 * new version, the fields that changed with their before and after
 * values, and the names of the reply's rules that matched (matched_json,
 * may be NULL), since those made every change but the reopen. */
static char *event_payload(const struct mr_message_rec *m, int64_t job_id,
                           int64_t ticket_id, int64_t number, int64_t row,
                           const char *threaded_by,
                           const struct mr__ticket_state *before,
                           const struct mr__ticket_state *after,
                           const char *matched_json)
{
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "ticket_id");
    mr_json_int(&j, ticket_id);
    mr_json_key(&j, "ticket_number");
    mr_json_int(&j, number);
    mr_json_key(&j, "message_row");
    mr_json_int(&j, row);
    mr_json_key(&j, "message_id");
    mr_json_cstr(&j, m->message_id);
    mr_json_key(&j, "threaded_by");
    mr_json_cstr(&j, threaded_by);
    if (job_id > 0) {
        mr_json_key(&j, "job_id");
        mr_json_int(&j, job_id);
    }
    if (m->release_of > 0) {
        mr_json_key(&j, "released_from");
        mr_json_int(&j, m->release_of);
    }
    if (before && after) {
        mr_json_key(&j, "actor");
        mr_json_cstr(&j, "reply");
        mr_json_key(&j, "version");
        mr_json_int(&j, after->version);
        mr__ticket_changes_json(&j, before, after);
        json_t *names = matched_json ? json_loads(matched_json, 0, NULL)
                                     : NULL;
        if (json_is_array(names) && json_array_size(names) > 0) {
            mr_json_key(&j, "rules");
            mr_json_arr_begin(&j);
            size_t i;
            json_t *v;
            json_array_foreach(names, i, v)
            {
                if (json_is_string(v))
                    mr_json_cstr(&j, json_string_value(v));
            }
            mr_json_arr_end(&j);
        }
        json_decref(names);
    }
    mr_json_obj_end(&j);
    return mr_buf_detach(&b, NULL);
}

#define SUBJECT_WINDOW_MS (14LL * 24 * 3600 * 1000)

static void thread_msg(const struct mr_message_rec *m, int64_t now,
                       struct mr_thread_msg *t)
{
    *t = (struct mr_thread_msg){
        .tenant = m->tenant,
        .message_id = m->message_id,
        .message_id_derived = m->message_id_derived,
        .in_reply_to = m->in_reply_to,
        .references = m->references,
        .nreferences = m->nreferences,
        .subject = m->subject,
        .from = m->from_email,
        .recipients = m->recipients,
        .nrecipients = m->nrecipients,
        .auto_kind = (enum mr_auto_kind)m->auto_kind,
        .bounce_original_id = m->bounce_original_id,
        .now = now,
    };
}

/* A bounce whose original message is not ours to find: no ticket may be
 * opened for it (pitfalls.md 11), yet it must not vanish, so it stays in
 * the outbox as its own event for whoever watches deliveries. */
static int unmatched_bounce(struct mr__conn *c, const struct mr_message_rec *m,
                            int64_t job_id, int64_t now, struct mr_error *err)
{
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "message_id");
    mr_json_cstr(&j, m->message_id);
    mr_json_key(&j, "original_message_id");
    mr_json_cstr(&j, m->bounce_original_id);
    mr_json_key(&j, "raw_sha256");
    mr_json_cstr(&j, m->raw_sha256);
    if (job_id > 0) {
        mr_json_key(&j, "job_id");
        mr_json_int(&j, job_id);
    }
    mr_json_obj_end(&j);
    int rc = mr__event_insert(c, m->tenant, "bounce.unmatched", 0, 0, b.p,
                              now, err);
    mr_buf_release(&b);
    return rc;
}

/* The content_key stored under (tenant, id): 1 and *key set (malloc'ed,
 * may be NULL for an old row) when a message has that id, 0 when none. */
static int stored_key(struct mr__conn *c, const char *tenant, const char *id,
                      char **key, struct mr_error *err)
{
    sqlite3_stmt *s;
    *key = NULL;
    int rc = mr__stmt(c, SQL_CONTENT_KEY, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, tenant);
    mr__bind_str(s, 2, id);
    rc = sqlite3_step(s);
    int res = 0;
    if (rc == SQLITE_ROW) {
        *key = mr__col_str(s, 0);
        res = 1;
    } else if (rc != SQLITE_DONE) {
        res = mr__sqlerr(c, rc, "cannot look up the message", err);
    }
    mr__stmt_done(s);
    return res;
}

/* pitfalls.md 9: scanners and scripts reuse one Message-ID for different
 * mail. When the id is taken by a message with another content_key, this
 * one goes under "<id>#<key prefix>" (a second copy of it is then a
 * duplicate of that), so a reused id never makes a new mail vanish. A
 * copy with the same key, or with no key to compare, is a duplicate. */
static int reused_id(struct mr__conn *c, const struct mr_message_rec *m,
                     char *out, size_t cap, struct mr_error *err)
{
    out[0] = '\0';
    if (m->content_key == NULL || m->message_id_derived)
        return 0;
    char *key = NULL;
    int rc = stored_key(c, m->tenant, m->message_id, &key, err);
    if (rc == 1 && key != NULL && strcmp(key, m->content_key) != 0)
        snprintf(out, cap, "%s#%.12s", m->message_id, m->content_key);
    free(key);
    return rc < 0 ? rc : 0;
}

/* 1 when (tenant, id) was ignored before (*row set), 0 when not. */
static int find_ignored(struct mr__conn *c, const char *tenant, const char *id,
                        int64_t *row, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_FIND_IGNORED, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, tenant);
    mr__bind_str(s, 2, id);
    rc = sqlite3_step(s);
    int res = 0;
    if (rc == SQLITE_ROW) {
        *row = sqlite3_column_int64(s, 0);
        res = 1;
    } else if (rc != SQLITE_DONE) {
        res = mr__sqlerr(c, rc, "cannot look up ignored mail", err);
    }
    mr__stmt_done(s);
    return res;
}

/* 1 and res filled as a duplicate when (tenant, id) was ignored before;
 * 0 when not. */
static int ignored_duplicate(struct mr__conn *c, const char *tenant,
                             const char *id, struct mr_deliver_result *res,
                             struct mr_error *err)
{
    int64_t row = 0;
    int rc = find_ignored(c, tenant, id, &row, err);
    if (rc == 1) {
        res->duplicate = true;
        res->ignored = true;
        res->message_row = row;
        snprintf(res->threaded_by, sizeof res->threaded_by, "%s",
                 mr_thread_by_name(MR_THREAD_DUPLICATE));
    }
    return rc;
}

static int insert_ignored(struct mr__conn *c, const struct mr_message_rec *m,
                          const struct mr_rules_outcome *ro, int64_t now,
                          int64_t *row, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_INSERT_IGNORED, &s, err);
    if (rc < 0)
        return rc;
    mr__bind_str(s, 1, m->tenant);
    mr__bind_str(s, 2, m->message_id);
    mr__bind_str(s, 3, m->channel);
    mr__bind_str(s, 4, m->inbox);
    mr__bind_str(s, 5, m->from_email);
    mr__bind_str(s, 6, m->subject);
    mr__bind_str(s, 7, m->event_json);
    mr__bind_str(s, 8, m->raw_sha256);
    mr__bind_str(s, 9, m->content_key);
    mr__bind_str(s, 10, ro->applied_json ? ro->applied_json : "[]");
    mr__bind_str(s, 11, ro->matched_json ? ro->matched_json : "[]");
    sqlite3_bind_int64(s, 12, m->received_at);
    sqlite3_bind_int64(s, 13, now);
    rc = mr__stmt_exec(c, s, "cannot store the ignored message", err);
    *row = sqlite3_last_insert_rowid(c->db);
    return rc;
}

/* message.ignored's payload: the row to release, what identifies the mail
 * to a person (sender, subject), and the rules whose decision was
 * `ignore`, read off the trail (each named once). */
static char *ignored_payload(const struct mr_message_rec *m,
                             const struct mr_rules_outcome *ro, int64_t job_id,
                             int64_t row)
{
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "ignored_id");
    mr_json_int(&j, row);
    mr_json_key(&j, "message_id");
    mr_json_cstr(&j, m->message_id);
    mr_json_key(&j, "from");
    mr_json_cstr(&j, m->from_email);
    mr_json_key(&j, "subject");
    mr_json_cstr(&j, m->subject);
    mr_json_key(&j, "rules");
    mr_json_arr_begin(&j);
    json_t *trail =
        ro->applied_json ? json_loads(ro->applied_json, 0, NULL) : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(trail, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *dec = json_string_value(json_object_get(v, "decision"));
        if (!name || !dec || strcmp(dec, "ignore") != 0)
            continue;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++) {
            json_t *w = json_array_get(trail, k);
            const char *n2 = json_string_value(json_object_get(w, "name"));
            const char *d2 = json_string_value(json_object_get(w, "decision"));
            seen = n2 && d2 && strcmp(d2, "ignore") == 0 &&
                   strcmp(n2, name) == 0;
        }
        if (!seen)
            mr_json_cstr(&j, name);
    }
    json_decref(trail);
    mr_json_arr_end(&j);
    if (job_id > 0) {
        mr_json_key(&j, "job_id");
        mr_json_int(&j, job_id);
    }
    mr_json_obj_end(&j);
    return mr_buf_detach(&b, NULL);
}

/* Ignored mail is kept, and announced in the same transaction: admins
 * may want to release it (message.ignored names the row to release). */
static int store_ignored(struct mr__conn *c, const struct mr_message_rec *m,
                         const struct mr_rules_outcome *ro, int64_t job_id,
                         int64_t now, int64_t *row, struct mr_error *err)
{
    int rc = insert_ignored(c, m, ro, now, row, err);
    if (rc < 0)
        return rc;
    char *payload = ignored_payload(m, ro, job_id, *row);
    rc = mr__event_insert(c, m->tenant, "message.ignored", 0, 0, payload, now,
                          err);
    free(payload);
    return rc;
}

/* A release delivery whose row was released already (its job ran twice:
 * the worker died after the commit): a duplicate, with where it went. 1
 * then, 0 when it is still to be released. */
static int released_already(struct mr__conn *c, const struct mr_message_rec *m,
                            struct mr_deliver_result *res,
                            struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_RELEASED_AS, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, m->release_of);
    mr__bind_str(s, 2, m->tenant);
    rc = sqlite3_step(s);
    int r = 0;
    if (rc == SQLITE_ROW) {
        res->duplicate = true;
        res->ticket_id = sqlite3_column_int64(s, 0);
        res->message_row = sqlite3_column_int64(s, 1);
        snprintf(res->threaded_by, sizeof res->threaded_by, "%s",
                 mr_thread_by_name(MR_THREAD_DUPLICATE));
        r = 1;
    } else if (rc != SQLITE_DONE) {
        r = mr__sqlerr(c, rc, "cannot read the ignored message", err);
    }
    mr__stmt_done(s);
    return r;
}

/* The release's end, in the delivering transaction: where the message
 * went (ticket_id 0: nowhere, an unmatched bounce). */
static int mark_released(struct mr__conn *c, const struct mr_message_rec *m,
                         int64_t ticket_id, int64_t row, int64_t now,
                         struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_MARK_RELEASED, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, m->release_of);
    mr__bind_str(s, 2, m->tenant);
    sqlite3_bind_int64(s, 3, now);
    if (ticket_id > 0)
        sqlite3_bind_int64(s, 4, ticket_id);
    if (row > 0)
        sqlite3_bind_int64(s, 5, row);
    rc = mr__stmt_exec(c, s, "cannot mark the ignored message released", err);
    if (rc == 0 && sqlite3_changes(c->db) != 1)
        rc = mr_error_set(err, MR_EINVAL, "no ignored message %lld to release",
                          (long long)m->release_of);
    return rc;
}

static int trail_append(struct mr__conn *c, int64_t ticket_id,
                        const char *name, const char *decision,
                        struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_TRAIL_APPEND, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, ticket_id);
    mr__bind_str(s, 2, name);
    mr__bind_str(s, 3, decision);
    return mr__stmt_exec(c, s, "cannot extend the ticket's trail", err);
}

/* The trail says who released the message and that no acknowledgement
 * went out for it: a release is an agent's act, not the sender's mail. */
static int release_trail(struct mr__conn *c, const struct mr_message_rec *m,
                         int64_t ticket_id, bool created, struct mr_error *err)
{
    char dec[200];
    snprintf(dec, sizeof dec, "released ignored=%lld by=%.120s",
             (long long)m->release_of,
             m->release_by && *m->release_by ? m->release_by : "unknown");
    int rc = trail_append(c, ticket_id, "(release)", dec, err);
    if (rc == 0 && created && m->rules_new && m->rules_new->ack)
        rc = trail_append(c, ticket_id, "(release)",
                          "auto_ack_suppressed=release", err);
    return rc;
}

static int op_deliver(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct deliver_arg *a = arg;
    const struct mr_message_rec *m = a->m;
    struct mr_deliver_result *res = a->res;
    int64_t now = mr__store_now_ms();
    memset(res, 0, sizeof *res);
    int rc = 0;
    if (a->job_id > 0)
        rc = mr__job_finish_in_tx(c, a->job_id, a->worker, err);
    if (rc < 0)
        return rc;

    /* A copy of mail the rules ignored stays a duplicate of it, whatever
     * the rules say now: delivery is idempotent. A release delivers that
     * very message: it is a duplicate only once its row is released. */
    bool release = m->release_of > 0;
    rc = release ? released_already(c, m, res, err)
                 : ignored_duplicate(c, m->tenant, m->message_id, res, err);
    if (rc != 0)
        return rc < 0 ? rc : 0;

    char alt_id[1100];
    rc = reused_id(c, m, alt_id, sizeof alt_id, err);
    if (rc < 0)
        return rc;
    struct mr_message_rec renamed;
    if (alt_id[0]) {
        renamed = *m;
        renamed.message_id = alt_id;
        m = &renamed;
        res->id_reused = true;
        /* The suffixed id may have been ignored before, too. */
        rc = release ? 0
                     : ignored_duplicate(c, m->tenant, m->message_id, res, err);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }

    struct mr_thread_msg tm;
    struct mr_thread_decision d;
    thread_msg(m, now, &tm);
    rc = mr__thread_decide_in_tx(c, &tm, a->st->secret, a->st->secret_len,
                                 SUBJECT_WINDOW_MS, &d, err);
    if (rc < 0)
        return rc;
    if (res->id_reused && d.by != MR_THREAD_DUPLICATE) {
        size_t used = strnlen(d.detail, sizeof d.detail);
        snprintf(d.detail + used, sizeof d.detail - used,
                 "%sMessage-ID reused by different mail: stored as %s",
                 used ? "; " : "", alt_id);
    }
    snprintf(res->threaded_by, sizeof res->threaded_by, "%s",
             mr_thread_by_name(d.by));
    if (d.by == MR_THREAD_DUPLICATE) {
        res->duplicate = true;
        rc = find_message(c, m, res, err);
        /* Stored meanwhile by another way in: released into its ticket. */
        if (rc == 0 && release)
            rc = mark_released(c, m, res->ticket_id, res->message_row, now,
                               err);
        return rc;
    }
    /* The outcome threading chose decides; ignored mail opens no ticket
     * and touches none. A release overrides `ignore`: that is its point. */
    const struct mr_rules_outcome *chosen =
        d.ticket_id == 0 ? m->rules_new : m->rules_reply;
    if (chosen && chosen->ignore && !release) {
        res->ignored = true;
        return store_ignored(c, m, chosen, a->job_id, now, &res->message_row,
                             err);
    }
    if (d.ticket_id == 0 && d.delivery_failure) {
        /* A bounce of nothing of ours never opens a ticket, released or
         * not (pitfalls.md 11): released into no ticket. */
        rc = unmatched_bounce(c, m, a->job_id, now, err);
        if (rc == 0 && release)
            rc = mark_released(c, m, 0, 0, now, err);
        return rc;
    }

    int64_t ticket_id = d.ticket_id, number = 0, row = 0;
    bool created = ticket_id == 0;
    /* A joined ticket's fields before the reopen and the rules, and after,
     * for its ticket.updated event. */
    struct mr__ticket_state before, after;
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    if (created) {
        rc = new_ticket(c, m, now, d.linked_ticket_id, &ticket_id, &number,
                        err);
    } else {
        rc = mr__ticket_state_read(c, NULL, ticket_id, &before, err);
        number = before.number;
        if (rc == 0)
            rc = touch_ticket(c, ticket_id, now, d.reopen, err);
    }
    if (rc == 0)
        rc = apply_rules(c, ticket_id, created ? m->rules_new : m->rules_reply,
                         err);
    if (rc == 0 && release)
        rc = release_trail(c, m, ticket_id, created, err);
    if (rc == 0 && !created)
        rc = mr__ticket_state_read(c, NULL, ticket_id, &after, err);
    /* Only a sender who may be in the thread adds people to it. */
    if (rc == 0 && !d.unverified)
        rc = add_participants(c, m, ticket_id, created, d.add_participant,
                              err);
    if (rc == 0)
        rc = insert_message(c, m, ticket_id, &d, &row, err);
    if (rc == 0)
        rc = insert_attachments(c, m, row, err);
    if (rc == 0)
        rc = insert_refs(c, m, ticket_id, d.unverified, err);
    if (rc == 0)
        rc = mr__notify_insert_in_tx(c, m->tenant,
                                     created ? m->rules_new : m->rules_reply,
                                     ticket_id, row, now, err);
    if (rc < 0) {
        mr__ticket_state_clear(&before);
        mr__ticket_state_clear(&after);
        return rc;
    }
    char *payload = event_payload(m, a->job_id, ticket_id, number, row,
                                  res->threaded_by, NULL, NULL, NULL);
    char *updated = NULL;
    if (!created)
        updated = event_payload(
            m, a->job_id, ticket_id, number, row, res->threaded_by, &before,
            &after, m->rules_reply ? m->rules_reply->matched_json : NULL);
    mr__ticket_state_clear(&before);
    mr__ticket_state_clear(&after);
    const char *types[] = {"email.received",
                           created ? "ticket.created" : "ticket.updated",
                           "message.added"};
    for (size_t i = 0; rc == 0 && i < 3; i++)
        rc = mr__event_insert(c, m->tenant, types[i], ticket_id, row,
                              i == 1 && updated ? updated : payload, now, err);
    free(payload);
    free(updated);
    /* The acknowledgement is part of the same commit as its ticket; its
     * Message-ID joins the thread, so a reply to it finds the ticket. */
    if (rc == 0 && created && m->rules_new && m->rules_new->ack && !release) {
        char ack_id[256];
        rc = mr__outbound_ack_in_tx(c, m->tenant, m->rules_new->ack,
                                    ticket_id, number, now, &res->ack_queued,
                                    &res->ack_window, ack_id, sizeof ack_id,
                                    err);
        if (rc == 0 && res->ack_queued && ack_id[0])
            rc = insert_ref(c, m->tenant, ack_id, ticket_id, err);
    }
    if (rc == 0 && release)
        rc = mark_released(c, m, ticket_id, row, now, err);
    if (rc < 0)
        return rc;
    res->ticket_id = ticket_id;
    res->message_row = row;
    res->new_ticket = created;
    res->unverified = d.unverified;
    res->reopened = d.reopen;
    return 0;
}

/* What a caller must get right before a delivery is queued. */
static int check_message(int64_t job_id, const char *worker,
                         const struct mr_message_rec *msg,
                         struct mr_error *err)
{
    if (msg == NULL || msg->tenant == NULL || *msg->tenant == '\0' ||
        msg->message_id == NULL || *msg->message_id == '\0')
        return mr_error_set(err, MR_EINVAL,
                            "a message needs a tenant and a message id");
    if (job_id > 0 && (worker == NULL || *worker == '\0'))
        return mr_error_set(err, MR_EINVAL, "job %lld: no worker given",
                            (long long)job_id);
    if (msg->nattachments > MAX_ATTACHMENTS ||
        (msg->nattachments > 0 && msg->attachments == NULL))
        return mr_error_set(err, MR_EINVAL, "bad attachment list (%zu)",
                            msg->nattachments);
    return 0;
}

int mr_store_deliver_message(struct mr_store *st, int64_t job_id,
                             const char *worker,
                             const struct mr_message_rec *msg,
                             struct mr_deliver_result *res,
                             struct mr_error *err)
{
    struct mr_deliver_item it = {.job_id = job_id, .msg = msg};
    int rc = mr_store_deliver_messages(st, worker, &it, 1);
    *res = it.res;
    if (rc < 0 && err)
        *err = it.err;
    return rc;
}

int mr_store_deliver_messages(struct mr_store *st, const char *worker,
                              struct mr_deliver_item *items, size_t n)
{
    struct deliver_arg *args = mr_xcalloc(n ? n : 1, sizeof *args);
    void **argp = mr_xcalloc(n ? n : 1, sizeof *argp);
    int *rcs = mr_xcalloc(n ? n : 1, sizeof *rcs);
    struct mr_error *errs = mr_xcalloc(n ? n : 1, sizeof *errs);
    size_t m = 0;
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        struct mr_deliver_item *it = &items[i];
        memset(&it->res, 0, sizeof it->res);
        it->rc = check_message(it->job_id, worker, it->msg, &it->err);
        if (it->rc < 0) {
            first = first ? first : it->rc;
            continue;
        }
        args[m] = (struct deliver_arg){it->job_id, worker, it->msg, &it->res,
                                       st};
        argp[m] = &args[m];
        m++;
    }
    mr__store_write_many(st, op_deliver, argp, m, rcs, errs);
    /* Map the submitted ones back onto their items. */
    for (size_t i = 0, k = 0; i < n && k < m; i++) {
        struct mr_deliver_item *it = &items[i];
        if (it->rc < 0)
            continue;
        it->rc = rcs[k];
        if (it->rc < 0) {
            it->err = errs[k];
            memset(&it->res, 0, sizeof it->res);
            first = first ? first : it->rc;
        }
        k++;
    }
    free(args);
    free(argp);
    free(rcs);
    free(errs);
    return first;
}

/* ---- ticket views -------------------------------------------------------- */

void mr_ticket_view_clear(struct mr_ticket_view *t)
{
    if (t == NULL)
        return;
    free(t->tenant);
    free(t->subject);
    free(t->status);
    free(t->priority);
    free(t->queue);
    free(t->assignee);
    free(t->tags_json);
    free(t->applied_rules_json);
    free(t->fields_json);
    free(t->links_json);
    free(t->requester);
    for (size_t i = 0; i < t->nmessages; i++)
        mr_message_view_clear(&t->messages[i]);
    free(t->messages);
    memset(t, 0, sizeof *t);
}

void mr_message_view_clear(struct mr_message_view *m)
{
    if (m == NULL)
        return;
    char **strs[] = {
        &m->message_id,  &m->direction,     &m->kind,
        &m->threaded_by, &m->thread_detail, &m->auto_json,
        &m->inbox,       &m->from_email,    &m->from_name,
        &m->subject,     &m->text,          &m->html,
        &m->event_json,  &m->raw_sha256,    &m->matched_rules_json};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    for (size_t i = 0; i < m->nattachments; i++)
        mr_attachment_view_clear(&m->attachments[i]);
    free(m->attachments);
    memset(m, 0, sizeof *m);
}

void mr_ticket_list_free(struct mr_ticket_view *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        mr_ticket_view_clear(&t[i]);
    free(t);
}

static void read_ticket(sqlite3_stmt *s, struct mr_ticket_view *t)
{
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(s, 0);
    t->number = sqlite3_column_int64(s, 1);
    t->tenant = mr__col_str(s, 2);
    t->subject = mr__col_str(s, 3);
    t->status = mr__col_str(s, 4);
    t->priority = mr__col_str(s, 5);
    t->queue = mr__col_str(s, 6);
    t->assignee = mr__col_str(s, 7);
    t->tags_json = mr__col_str(s, 8);
    t->requester = mr__col_str(s, 9);
    t->created_at = sqlite3_column_int64(s, 10);
    t->updated_at = sqlite3_column_int64(s, 11);
    t->message_count = sqlite3_column_int64(s, 12);
    t->applied_rules_json = mr__col_str(s, 13);
    t->linked_ticket_id = sqlite3_column_int64(s, 14);
    t->fields_json = mr__col_str(s, 15);
    t->version = sqlite3_column_int64(s, 16);
    t->links_json = mr__col_str(s, 17);
}

/* A non-negative decimal of 1 to 18 digits (no sign, no spaces), so that it
 * cannot overflow int64_t. Returns the characters used, 0 when none fit. */
static size_t parse_num(const char *p, size_t n, int64_t *v)
{
    size_t i = 0;
    int64_t x = 0;
    while (i < n && i < 18 && p[i] >= '0' && p[i] <= '9')
        x = x * 10 + (p[i++] - '0');
    *v = x;
    return i;
}

/* "UPDATED.ID", exactly: anything else is a cursor we did not make. */
static int parse_cursor(const char *cur, int64_t *updated, int64_t *id,
                        struct mr_error *err)
{
    size_t n = strnlen(cur, CURSOR_MAX + 1);
    if (n == 0 || n > CURSOR_MAX)
        return mr_error_set(err, MR_EINVAL, "bad cursor");
    size_t a = parse_num(cur, n, updated);
    if (a == 0 || a >= n || cur[a] != '.')
        return mr_error_set(err, MR_EINVAL, "bad cursor");
    size_t b = parse_num(cur + a + 1, n - a - 1, id);
    if (b == 0 || a + 1 + b != n || *id <= 0)
        return mr_error_set(err, MR_EINVAL, "bad cursor");
    return 0;
}

static char *make_cursor(const struct mr_ticket_view *t)
{
    char buf[CURSOR_MAX + 1];
    snprintf(buf, sizeof buf, "%lld.%lld", (long long)t->updated_at,
             (long long)t->id);
    return mr_xstrndup(buf, strlen(buf));
}

/*
 * One page of a listing: the statement (bound by bind, then ?1 = tenant
 * and ?2 = limit + 1), each row read into an array of row_size elements.
 * One row more than asked tells whether there is a next page: *more is set
 * and that row is dropped again. Both listings below page this way, so
 * the logic is here once.
 */
struct page_query {
    const char *sql;
    const char *what; /* for the error: "cannot list ..." */
    size_t row_size;
    void (*bind)(sqlite3_stmt *s, const void *ctx);
    const void *ctx;
    void (*read)(sqlite3_stmt *s, void *row);
    void (*clear)(void *row);
};

static int list_page(struct mr_store *st, const char *tenant,
                     const struct page_query *q, int limit, void **rows_r,
                     size_t *n, bool *more, struct mr_error *err)
{
    *rows_r = NULL;
    *n = 0;
    *more = false;
    if (limit <= 0)
        limit = LIST_DEFAULT;
    if (limit > LIST_MAX)
        limit = LIST_MAX;
    char *rows = mr_xcalloc((size_t)limit + 1, q->row_size);
    size_t count = 0;
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, q->sql, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, tenant);
        sqlite3_bind_int(s, 2, limit + 1);
        if (q->bind)
            q->bind(s, q->ctx);
        while (count <= (size_t)limit && (rc = sqlite3_step(s)) == SQLITE_ROW)
            q->read(s, rows + q->row_size * count++);
        rc = rc == SQLITE_DONE || rc == SQLITE_ROW
                 ? 0
                 : mr__sqlerr(c, rc, q->what, err);
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    if (count > (size_t)limit) {
        q->clear(rows + q->row_size * (size_t)limit);
        count = (size_t)limit;
        *more = true;
    }
    if (rc < 0) {
        for (size_t i = 0; i < count; i++)
            q->clear(rows + q->row_size * i);
        free(rows);
        return rc;
    }
    *rows_r = rows;
    *n = count;
    return 0;
}

struct ticket_page {
    const struct mr_ticket_filter *filter;
    bool after;
    int64_t updated, id;
};

static void bind_ticket_page(sqlite3_stmt *s, const void *ctx)
{
    const struct ticket_page *p = ctx;
    if (p->after) {
        sqlite3_bind_int64(s, 3, p->updated);
        sqlite3_bind_int64(s, 4, p->id);
    }
    if (p->filter) {
        mr__bind_str(s, 5, p->filter->status);
        mr__bind_str(s, 6, p->filter->queue);
        mr__bind_str(s, 7, p->filter->priority);
        mr__bind_str(s, 8, p->filter->requester);
    }
}

static void read_ticket_row(sqlite3_stmt *s, void *row)
{
    read_ticket(s, row);
}

static void clear_ticket_row(void *row)
{
    mr_ticket_view_clear(row);
}

int mr_store_list_tickets(struct mr_store *st, const char *tenant,
                          const struct mr_ticket_filter *filter,
                          const char *cursor, int limit,
                          struct mr_ticket_view **tickets, size_t *n,
                          char **next_cursor, struct mr_error *err)
{
    *tickets = NULL;
    *n = 0;
    *next_cursor = NULL;
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "no tenant");
    struct ticket_page p = {.filter = filter, .after = cursor != NULL};
    if (cursor != NULL) {
        int rc = parse_cursor(cursor, &p.updated, &p.id, err);
        if (rc < 0)
            return rc;
    }
    struct page_query q = {cursor ? SQL_LIST_AFTER : SQL_LIST_FIRST,
                           "cannot list tickets",
                           sizeof(struct mr_ticket_view),
                           bind_ticket_page,
                           &p,
                           read_ticket_row,
                           clear_ticket_row};
    void *rows;
    bool more;
    int rc = list_page(st, tenant, &q, limit, &rows, n, &more, err);
    if (rc < 0)
        return rc;
    *tickets = rows;
    if (more)
        *next_cursor = make_cursor(&(*tickets)[*n - 1]);
    return 0;
}

/* ---- ignored mail ------------------------------------------------------- */

void mr_ignored_view_clear(struct mr_ignored_view *v)
{
    if (v == NULL)
        return;
    char **strs[] = {
        &v->message_id,         &v->channel,            &v->inbox,
        &v->from_email,         &v->subject,            &v->raw_sha256,
        &v->applied_rules_json, &v->matched_rules_json, &v->release_by,
        &v->event_json};
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++)
        free(*strs[k]);
    memset(v, 0, sizeof *v);
}

void mr_ignored_list_free(struct mr_ignored_view *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        mr_ignored_view_clear(&v[i]);
    free(v);
}

static void read_ignored(sqlite3_stmt *s, struct mr_ignored_view *v)
{
    memset(v, 0, sizeof *v);
    v->id = sqlite3_column_int64(s, 0);
    v->message_id = mr__col_str(s, 1);
    v->channel = mr__col_str(s, 2);
    v->inbox = mr__col_str(s, 3);
    v->from_email = mr__col_str(s, 4);
    v->subject = mr__col_str(s, 5);
    v->raw_sha256 = mr__col_str(s, 6);
    v->applied_rules_json = mr__col_str(s, 7);
    v->matched_rules_json = mr__col_str(s, 8);
    v->received_at = sqlite3_column_int64(s, 9);
    v->release_job_id = sqlite3_column_int64(s, 10);
    v->release_by = mr__col_str(s, 11);
    v->release_requested_at = sqlite3_column_int64(s, 12);
    v->released_at = sqlite3_column_int64(s, 13);
    v->released_ticket_id = sqlite3_column_int64(s, 14);
    v->released_message_row = sqlite3_column_int64(s, 15);
}

static void read_ignored_full(sqlite3_stmt *s, void *row)
{
    struct mr_ignored_view *v = row;
    read_ignored(s, v);
    v->event_json = mr__col_str(s, 16);
}

static void bind_after_id(sqlite3_stmt *s, const void *ctx)
{
    const int64_t *after = ctx;
    if (*after > 0)
        sqlite3_bind_int64(s, 3, *after);
}

static void read_ignored_row(sqlite3_stmt *s, void *row)
{
    read_ignored(s, row);
}

static void clear_ignored_row(void *row)
{
    mr_ignored_view_clear(row);
}

int mr_store_list_ignored(struct mr_store *st, const char *tenant,
                          const char *cursor, int limit,
                          struct mr_ignored_view **list, size_t *n,
                          char **next_cursor, struct mr_error *err)
{
    *list = NULL;
    *n = 0;
    *next_cursor = NULL;
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "no tenant");
    /* The cursor is the last id seen: decimal, nothing else. */
    int64_t after = 0;
    if (cursor != NULL) {
        size_t len = strnlen(cursor, CURSOR_MAX + 1);
        if (len == 0 || len > CURSOR_MAX ||
            parse_num(cursor, len, &after) != len || after <= 0)
            return mr_error_set(err, MR_EINVAL, "bad cursor");
    }
    struct page_query q = {
        cursor ? SQL_LIST_IGNORED_AFTER : SQL_LIST_IGNORED_FIRST,
        "cannot list ignored mail",
        sizeof(struct mr_ignored_view),
        bind_after_id,
        &after,
        read_ignored_row,
        clear_ignored_row};
    void *rows;
    bool more;
    int rc = list_page(st, tenant, &q, limit, &rows, n, &more, err);
    if (rc < 0)
        return rc;
    *list = rows;
    if (more) {
        char buf[24];
        snprintf(buf, sizeof buf, "%lld", (long long)(*list)[*n - 1].id);
        *next_cursor = mr_xstrndup(buf, strlen(buf));
    }
    return 0;
}

/* get_by_id is defined further down, with the other single-row reads. */
static int get_by_id(struct mr__conn *c, const char *sql, int64_t id,
                     const char *tenant, void (*read)(sqlite3_stmt *, void *),
                     void *out, const char *what, struct mr_error *err);

int mr_store_get_ignored(struct mr_store *st, const char *tenant, int64_t id,
                         struct mr_ignored_view *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "no tenant");
    struct mr__conn *c = mr__store_read_acquire(st);
    int rc = get_by_id(c, SQL_GET_IGNORED, id, tenant, read_ignored_full, out,
                       "ignored message", err);
    mr__store_read_release(st, c);
    if (rc < 0)
        mr_ignored_view_clear(out);
    return rc;
}

struct release_arg {
    const char *tenant;
    int64_t id;
    const char *by;
    int64_t job_id;
};

/* The check and the job in one transaction, so two agents pressing
 * "release" at once queue one job: the second finds the first's. */
static int op_release(struct mr__conn *c, void *arg, struct mr_error *err)
{
    struct release_arg *a = arg;
    int64_t now = mr__store_now_ms();
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_RELEASE_STATE, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, a->id);
    mr__bind_str(s, 2, a->tenant);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        rc = rc == SQLITE_DONE
                 ? mr_error_set(err, MR_ENOTFOUND, "no ignored message %lld",
                                (long long)a->id)
                 : mr__sqlerr(c, rc, "cannot read the ignored message", err);
        mr__stmt_done(s);
        return rc;
    }
    bool released = sqlite3_column_int(s, 0) != 0;
    int64_t ticket = sqlite3_column_int64(s, 1);
    int64_t job = sqlite3_column_int64(s, 2);
    char *raw = mr__col_str(s, 3);
    int64_t received_at = sqlite3_column_int64(s, 4);
    mr__stmt_done(s);
    if (released || job > 0) {
        free(raw);
        if (released && ticket > 0)
            return mr_error_set(err, MR_ECONFLICT,
                                "ignored message %lld was released already, "
                                "into ticket %lld",
                                (long long)a->id, (long long)ticket);
        if (released)
            return mr_error_set(err, MR_ECONFLICT,
                                "ignored message %lld was released already",
                                (long long)a->id);
        return mr_error_set(err, MR_ECONFLICT,
                            "ignored message %lld is being released already "
                            "(job %lld)",
                            (long long)a->id, (long long)job);
    }
    /* The dedupe key is a second lock: the row's release_job_id is the
     * first. */
    char key[48];
    snprintf(key, sizeof key, "release:%lld", (long long)a->id);
    struct mr_buf b;
    mr_buf_init(&b, 0);
    struct mr_json j;
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "release");
    mr_json_obj_begin(&j);
    mr_json_key(&j, "ignored_id");
    mr_json_int(&j, a->id);
    mr_json_key(&j, "by");
    mr_json_cstr(&j, a->by);
    mr_json_obj_end(&j);
    mr_json_obj_end(&j);
    char *payload = mr_buf_detach(&b, NULL);
    struct mr_job_spec spec = {.tenant = a->tenant,
                               .channel = "release",
                               .raw_sha256 = raw,
                               .payload = payload,
                               .received_at = received_at,
                               .dedupe_key = key};
    rc = mr__job_insert_in_tx(c, &spec, now, &a->job_id, err);
    if (rc == 0)
        rc = mr__stmt(c, SQL_RELEASE_REQUEST, &s, err);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, a->id);
        mr__bind_str(s, 2, a->tenant);
        sqlite3_bind_int64(s, 3, a->job_id);
        mr__bind_str(s, 4, a->by);
        sqlite3_bind_int64(s, 5, now);
        rc = mr__stmt_exec(c, s, "cannot record the release", err);
    }
    free(payload);
    free(raw);
    return rc;
}

int mr_store_release_ignored(struct mr_store *st, const char *tenant,
                             int64_t id, const char *by, int64_t *job_id,
                             struct mr_error *err)
{
    *job_id = 0;
    if (tenant == NULL || by == NULL || *by == '\0' || id <= 0)
        return mr_error_set(err, MR_EINVAL,
                            "a release needs a tenant, an id and who asks");
    struct release_arg a = {tenant, id, by, 0};
    int rc = mr__store_write(st, op_release, &a, err);
    if (rc == 0)
        *job_id = a.job_id;
    return rc;
}

int mr_store_count_requester_tickets(struct mr_store *st, const char *tenant,
                                     const char *email, int64_t *count,
                                     struct mr_error *err)
{
    *count = 0;
    if (tenant == NULL || email == NULL || *email == '\0')
        return 0;
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_COUNT_REQUESTER, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, tenant);
        mr__bind_str(s, 2, email);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            *count = sqlite3_column_int64(s, 0);
        rc = rc == SQLITE_ROW
                 ? 0
                 : mr__sqlerr(c, rc, "cannot count the sender's tickets", err);
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    return rc;
}

static void read_message(sqlite3_stmt *s, struct mr_message_view *m)
{
    m->id = sqlite3_column_int64(s, 0);
    m->ticket_id = sqlite3_column_int64(s, 1);
    m->message_id = mr__col_str(s, 2);
    m->direction = mr__col_str(s, 3);
    m->from_email = mr__col_str(s, 4);
    m->from_name = mr__col_str(s, 5);
    m->subject = mr__col_str(s, 6);
    m->text = mr__col_str(s, 7);
    m->html = mr__col_str(s, 8);
    m->event_json = mr__col_str(s, 9);
    m->raw_sha256 = mr__col_str(s, 10);
    m->received_at = sqlite3_column_int64(s, 11);
    m->kind = mr__col_str(s, 12);
    m->threaded_by = mr__col_str(s, 13);
    m->thread_detail = mr__col_str(s, 14);
    m->unverified = sqlite3_column_int(s, 15) != 0;
    m->auto_json = mr__col_str(s, 16);
    m->inbox = mr__col_str(s, 17);
    m->matched_rules_json = mr__col_str(s, 18);
}

void mr_attachment_view_clear(struct mr_attachment_view *a)
{
    if (a == NULL)
        return;
    char **strs[] = {&a->filename,     &a->safe_filename, &a->content_type,
                     &a->disposition,  &a->content_id,    &a->sha256,
                     &a->scan,         &a->detected_type, &a->blocked_reason,
                     &a->scan_signature, &a->scan_previous};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    memset(a, 0, sizeof *a);
}

/* One row of ATTACHMENT_COLS. */
static void read_attachment(sqlite3_stmt *s, struct mr_attachment_view *a)
{
    memset(a, 0, sizeof *a);
    a->id = sqlite3_column_int64(s, 0);
    a->message_row = sqlite3_column_int64(s, 1);
    a->filename = mr__col_str(s, 2);
    a->safe_filename = mr__col_str(s, 3);
    a->content_type = mr__col_str(s, 4);
    a->disposition = mr__col_str(s, 5);
    a->content_id = mr__col_str(s, 6);
    a->size = sqlite3_column_int64(s, 7);
    a->sha256 = mr__col_str(s, 8);
    a->scan = mr__col_str(s, 9);
    a->detected_type = mr__col_str(s, 10);
    a->type_mismatch = sqlite3_column_int(s, 11) != 0;
    a->blocked = sqlite3_column_int(s, 12) != 0;
    a->blocked_reason = mr__col_str(s, 13);
    a->truncated = sqlite3_column_int(s, 14) != 0;
    a->scan_signature = mr__col_str(s, 15);
    a->scanned_at = sqlite3_column_int64(s, 16);
    a->scan_previous = mr__col_str(s, 17);
}

static int read_attachments(struct mr__conn *c, struct mr_message_view *m,
                            struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_MESSAGE_ATTACHMENTS, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, m->id);
    size_t cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (m->nattachments == cap) {
            cap = cap ? cap * 2 : 4;
            m->attachments =
                mr_xrealloc(m->attachments, cap * sizeof *m->attachments);
        }
        read_attachment(s, &m->attachments[m->nattachments++]);
    }
    rc = rc == SQLITE_DONE ? 0
                           : mr__sqlerr(c, rc, "cannot read attachments", err);
    mr__stmt_done(s);
    return rc;
}

static int read_messages(struct mr__conn *c, const char *tenant,
                         struct mr_ticket_view *t, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_TICKET_MESSAGES, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, t->id);
    mr__bind_str(s, 2, tenant);
    sqlite3_bind_int(s, 3, MAX_VIEW_MESSAGES);
    size_t cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW &&
           t->nmessages < MAX_VIEW_MESSAGES) {
        if (t->nmessages == cap) {
            cap = cap ? cap * 2 : 8;
            t->messages = mr_xrealloc(t->messages, cap * sizeof *t->messages);
        }
        struct mr_message_view *m = &t->messages[t->nmessages++];
        memset(m, 0, sizeof *m);
        read_message(s, m);
    }
    rc = rc == SQLITE_DONE || rc == SQLITE_ROW
             ? 0
             : mr__sqlerr(c, rc, "cannot read the messages", err);
    mr__stmt_done(s);
    for (size_t i = 0; rc == 0 && i < t->nmessages; i++)
        rc = read_attachments(c, &t->messages[i], err);
    return rc;
}

/*
 * The one row of sql (?1 = id, ?2 = tenant) read into out with read.
 * A row of another tenant is "not found" like a missing one, never
 * "forbidden": ids must not tell one tenant anything about another.
 * what names the thing in the messages ("ticket", "message", ...).
 */
static int get_by_id(struct mr__conn *c, const char *sql, int64_t id,
                     const char *tenant, void (*read)(sqlite3_stmt *, void *),
                     void *out, const char *what, struct mr_error *err)
{
    sqlite3_stmt *s;
    int rc = mr__stmt(c, sql, &s, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    mr__bind_str(s, 2, tenant);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        read(s, out);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = mr_error_set(err, MR_ENOTFOUND, "no %s %lld", what,
                          (long long)id);
    } else {
        rc = mr__sqlerr(c, rc, "cannot read a row", err);
    }
    mr__stmt_done(s);
    return rc;
}

static void read_message_row(sqlite3_stmt *s, void *row)
{
    read_message(s, row);
}

static void read_attachment_row(sqlite3_stmt *s, void *row)
{
    read_attachment(s, row);
}

static int get_ticket(struct mr__conn *c, const char *tenant, int64_t id,
                      struct mr_ticket_view *out, struct mr_error *err)
{
    int rc = get_by_id(c, SQL_GET_TICKET, id, tenant, read_ticket_row, out,
                       "ticket", err);
    if (rc == 0)
        rc = read_messages(c, tenant, out, err);
    return rc;
}

int mr_store_get_ticket(struct mr_store *st, const char *tenant, int64_t id,
                        struct mr_ticket_view *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "no tenant");
    struct mr__conn *c = mr__store_read_acquire(st);
    /* One read transaction: the ticket and its messages from one snapshot,
     * so message_count and the list agree. */
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_READ_BEGIN, &s, err);
    if (rc == 0)
        rc = mr__stmt_exec(c, s, "cannot begin a read", err);
    if (rc == 0) {
        rc = get_ticket(c, tenant, id, out, err);
        sqlite3_stmt *e;
        if (mr__stmt(c, SQL_READ_END, &e, NULL) == 0)
            mr__stmt_exec(c, e, "cannot end a read", NULL);
    }
    mr__store_read_release(st, c);
    if (rc < 0)
        mr_ticket_view_clear(out);
    return rc;
}

/* The id of ticket `number`, or MR_ENOTFOUND. */
static int id_by_number(struct mr_store *st, const char *tenant,
                        int64_t number, int64_t *id, struct mr_error *err)
{
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_TICKET_ID_BY_NUMBER, &s, err);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, number);
        mr__bind_str(s, 2, tenant);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *id = sqlite3_column_int64(s, 0);
            rc = 0;
        } else if (rc == SQLITE_DONE) {
            rc = mr_error_set(err, MR_ENOTFOUND, "no ticket #%lld",
                              (long long)number);
        } else {
            rc = mr__sqlerr(c, rc, "cannot find the ticket", err);
        }
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    return rc;
}

int mr_store_get_ticket_by_number(struct mr_store *st, const char *tenant,
                                  int64_t number, struct mr_ticket_view *out,
                                  struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "no tenant");
    int64_t id = 0;
    int rc = id_by_number(st, tenant, number, &id, err);
    return rc < 0 ? rc : mr_store_get_ticket(st, tenant, id, out, err);
}

int mr_store_get_message(struct mr_store *st, const char *tenant, int64_t id,
                         struct mr_message_view *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "no tenant");
    struct mr__conn *c = mr__store_read_acquire(st);
    int rc = get_by_id(c, SQL_GET_MESSAGE, id, tenant, read_message_row, out,
                       "message", err);
    if (rc == 0)
        rc = read_attachments(c, out, err);
    mr__store_read_release(st, c);
    if (rc < 0)
        mr_message_view_clear(out);
    return rc;
}

int mr__attachment_read(struct mr__conn *c, const char *tenant, int64_t id,
                        struct mr_attachment_view *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "no tenant");
    return get_by_id(c, SQL_GET_ATTACHMENT, id, tenant, read_attachment_row,
                     out, "attachment", err);
}

int mr_store_get_attachment(struct mr_store *st, const char *tenant,
                            int64_t id, struct mr_attachment_view *out,
                            struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    if (tenant == NULL)
        return mr_error_set(err, MR_EINVAL, "no tenant");
    struct mr__conn *c = mr__store_read_acquire(st);
    int rc = mr__attachment_read(c, tenant, id, out, err);
    mr__store_read_release(st, c);
    return rc;
}

int mr_store_find_inline(struct mr_store *st, const char *tenant,
                         const char *sha256, char **type,
                         struct mr_error *err)
{
    *type = NULL;
    if (tenant == NULL || sha256 == NULL)
        return mr_error_set(err, MR_EINVAL, "no tenant or sha256");
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_FIND_INLINE, &s, err);
    if (rc == 0) {
        mr__bind_str(s, 1, tenant);
        mr__bind_str(s, 2, sha256);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *type = mr__col_str(s, 0);
            rc = *type ? 0
                       : mr_error_set(err, MR_ENOTFOUND, "no inline image");
        } else if (rc == SQLITE_DONE) {
            rc = mr_error_set(err, MR_ENOTFOUND, "no inline image %.64s",
                              sha256);
        } else {
            rc = mr__sqlerr(c, rc, "cannot look up the image", err);
        }
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    return rc;
}

int mr_store_thread_secret(struct mr_store *st,
                           unsigned char out[MR_STORE_SECRET_LEN],
                           struct mr_error *err)
{
    if (st->secret_len == 0)
        return mr_error_set(err, MR_ENOTFOUND,
                            "no thread secret: run `mailroom migrate`");
    if (st->secret_len != MR_STORE_SECRET_LEN)
        return mr_error_set(err, MR_EIO, "the thread secret has %zu bytes",
                            st->secret_len);
    memcpy(out, st->secret, MR_STORE_SECRET_LEN);
    return 0;
}

/* ---- gauges -------------------------------------------------------------- */

int mr_store_stats(struct mr_store *st, struct mr_store_stats *out,
                   struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    struct mr__conn *c = mr__store_read_acquire(st);
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_STATS, &s, err);
    if (rc == 0) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            out->jobs_ready = sqlite3_column_int64(s, 0);
            out->jobs_leased = sqlite3_column_int64(s, 1);
            out->jobs_dead = sqlite3_column_int64(s, 2);
            out->messages = sqlite3_column_int64(s, 3);
            out->tickets = sqlite3_column_int64(s, 4);
            out->webhook_pending = sqlite3_column_int64(s, 5);
            out->webhook_dead = sqlite3_column_int64(s, 6);
            out->notify_pending = sqlite3_column_int64(s, 7);
            out->notify_dead = sqlite3_column_int64(s, 8);
            out->mail_pending = sqlite3_column_int64(s, 9);
            out->mail_failed = sqlite3_column_int64(s, 10);
            out->scan_pending = sqlite3_column_int64(s, 11);
            out->scan_error = sqlite3_column_int64(s, 12);
            rc = 0;
        } else {
            rc = mr__sqlerr(c, rc, "cannot count", err);
        }
        mr__stmt_done(s);
    }
    mr__store_read_release(st, c);
    return rc;
}
