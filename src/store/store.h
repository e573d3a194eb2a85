/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h - the one storage interface: intake queue, tickets and messages,
 * outbox events, API tokens.
 *
 * Callers never see the backend. mr_store_open picks it from a URL:
 * "sqlite:PATH" (or a bare path) is the embedded default; "postgres://..."
 * comes later and must fit behind these same calls. Nothing here takes a
 * SQL fragment or hands out a backend handle.
 *
 * Durability: every call that changes state returns only after the change
 * is committed and synced (SQLite: WAL with synchronous=FULL). Writes go
 * through one writer thread that commits many callers' requests in one
 * transaction (group commit): callers block until their transaction
 * commits, so a 250/202/exit 0 sent after mr_store_enqueue returns 0 is
 * never a lie. A request that fails inside a batch fails alone (the batch
 * uses savepoints), its caller gets the error, the others commit.
 *
 * Threads: an mr_store is shared by all threads of the process; every call
 * is thread-safe. Reads use a small pool of read connections and never wait
 * for the writer.
 *
 * Time: all timestamps are Unix milliseconds (int64_t, UTC).
 *
 * Ownership: strings passed in are borrowed for the call. Structs filled by
 * the store own their strings; release them with the matching _clear/_free.
 *
 * Errors: MR_ENOTFOUND (no such row / nothing to claim), MR_ECONFLICT
 * (duplicate: the caller treats it as idempotent success), MR_EIO (the
 * database failed: disk full, read-only, corrupt; callers answer 451/503/75),
 * MR_EINVAL (caller's mistake, e.g. an unknown role).
 */
#ifndef MR_STORE_H
#define MR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct mr_store;

struct mr_store_options {
    const char *url;        /* "sqlite:/path/db" or "/path/db" */
    int read_connections;   /* read pool size; 0 means 4 */
    int group_commit_max;   /* requests per transaction at most; 0 means 256 */
    bool migrate;           /* apply pending migrations at open (serve does) */
    bool allow_old_schema;  /* open an older schema as it is, for
                               `mailroom migrate` to report and upgrade */
};

int mr_store_open(const struct mr_store_options *opt, struct mr_store **out,
                  struct mr_error *err);
/* Stops the writer after it has committed everything queued, closes every
 * connection (SQLite: a clean WAL checkpoint). NULL is fine. */
void mr_store_close(struct mr_store *st);

/* Applies pending versioned migrations; *from and *to (may be NULL) get the
 * schema versions before and after. Idempotent. */
int mr_store_migrate(struct mr_store *st, int *from, int *to,
                     struct mr_error *err);
/* The schema version of the open database and the newest this binary has. */
int mr_store_schema_version(struct mr_store *st, int *current, int *latest,
                            struct mr_error *err);
/* A write that touches nothing, through the writer (for /readyz). */
int mr_store_ping(struct mr_store *st, struct mr_error *err);

/* ---- intake queue ------------------------------------------------------ */

enum mr_job_state {
    MR_JOB_READY = 0, /* waiting for a worker (possibly until not_before) */
    MR_JOB_LEASED,    /* claimed by a worker until lease_until */
    MR_JOB_DONE,
    MR_JOB_DEAD,      /* gave up after max attempts; see last_error */
};

/* What intake records for one accepted message and one tenant. */
struct mr_job_spec {
    const char *tenant;
    const char *channel;     /* "smtp", "lmtp", "pipe", "http", "webhook" */
    const char *raw_sha256;  /* blob key of the raw message; NULL for a
                                provider webhook event (payload holds it) */
    int64_t raw_size;
    /* Optional: the raw message itself (raw_size bytes whose SHA-256 is
     * raw_sha256), stored in the database in the same transaction as the
     * job instead of in the blob folder. Borrowed for the call. */
    const void *raw;
    /* JSON object text owned by intake: the envelope (mail_from, rcpt_to,
     * inbox, tag, remote_ip, helo, tls) or, for "webhook", the provider's
     * event. Stored as is and handed back to the worker. */
    const char *payload;
    int64_t received_at;
    /* Optional idempotency key (tenant-scoped), e.g. "webhook:<message-id>".
     * A second job with the same key is refused with MR_ECONFLICT and
     * *job_id set to the first job. NULL: no check. */
    const char *dedupe_key;
};

/* Commits n jobs atomically (all or none; one message for several tenants
 * is one call) and returns when they are durable. job_ids[i] gets each id.
 * MR_ECONFLICT when a dedupe_key exists already (nothing is written). */
int mr_store_enqueue(struct mr_store *st, const struct mr_job_spec *specs,
                     size_t n, int64_t *job_ids, struct mr_error *err);

/* A raw message stored with mr_job_spec.raw: *data (malloc'd, the caller
 * frees it) and *len. MR_ENOTFOUND when the database does not hold it
 * (it is in the blob folder, or lost). */
int mr_store_get_raw(struct mr_store *st, const char *sha256, char **data,
                     size_t *len, struct mr_error *err);

struct mr_job {
    int64_t id;
    enum mr_job_state state;
    char *tenant;
    char *channel;
    char *raw_sha256;   /* NULL for webhook events */
    int64_t raw_size;
    char *payload;
    int64_t received_at;
    int attempts;       /* claims so far, this one included */
    int64_t not_before; /* READY: not claimable before this time */
    int64_t lease_until;
    char *worker;       /* who holds the lease, NULL when none */
    char *last_error;   /* NULL when none */
    int64_t created_at;
    int64_t updated_at;
};
void mr_job_clear(struct mr_job *job);

/* Claims the oldest job that is READY with not_before <= now, or LEASED with
 * lease_until < now (its worker died): sets LEASED, worker, lease_until =
 * now + lease_ms, attempts + 1. MR_ENOTFOUND when none. */
int mr_store_claim_job(struct mr_store *st, const char *worker, int64_t now,
                       int64_t lease_ms, struct mr_job *out,
                       struct mr_error *err);
/* The same for up to max jobs at once, in one transaction (a worker's
 * batch): out has max slots, *n gets how many were claimed (MR_ENOTFOUND
 * when none). */
int mr_store_claim_jobs(struct mr_store *st, const char *worker, int64_t now,
                        int64_t lease_ms, size_t max, struct mr_job *out,
                        size_t *n, struct mr_error *err);
/* A failed attempt: back to READY with not_before = retry_at and
 * last_error, or DEAD (retry_at < 0). MR_ENOTFOUND if the job is not leased
 * by this worker any more (its lease expired and another took it). */
int mr_store_fail_job(struct mr_store *st, int64_t job_id, const char *worker,
                      const char *error, int64_t retry_at,
                      struct mr_error *err);
/* Gives a claimed job back untouched (shutdown): READY, attempts - 1. */
int mr_store_release_job(struct mr_store *st, int64_t job_id,
                         const char *worker, struct mr_error *err);
/* Marks a job DONE without a message (e.g. nothing to store). */
int mr_store_finish_job(struct mr_store *st, int64_t job_id,
                        const char *worker, struct mr_error *err);

int mr_store_get_job(struct mr_store *st, int64_t job_id, struct mr_job *out,
                     struct mr_error *err);
/* Jobs in one state, oldest first, after id `after` (paging), at most
 * `limit`. *jobs is an array the caller frees with mr_job_list_free. */
int mr_store_list_jobs(struct mr_store *st, enum mr_job_state state,
                       int64_t after, int limit, struct mr_job **jobs,
                       size_t *n, struct mr_error *err);
void mr_job_list_free(struct mr_job *jobs, size_t n);
/* DEAD -> READY now, attempts 0 (dlq retry). MR_ENOTFOUND unless DEAD.
 * retry_all: *count gets how many. */
int mr_store_retry_job(struct mr_store *st, int64_t job_id,
                       struct mr_error *err);
int mr_store_retry_dead_jobs(struct mr_store *st, int64_t *count,
                             struct mr_error *err);

/* ---- messages and tickets --------------------------------------------- */

struct mr_attachment_rec {
    const char *filename;
    const char *safe_filename;
    const char *content_type;
    const char *disposition;
    const char *content_id;
    int64_t size;       /* decoded bytes (seen, when truncated) */
    const char *sha256; /* also the blob key; NULL when there is no blob
                           (truncated, or a provider's attachment) */
    const char *detected_type; /* libmagic's, or NULL */
    bool type_mismatch;
    bool blocked;
    const char *blocked_reason; /* NULL unless blocked */
    bool truncated;     /* over a size limit: not stored, sha256 NULL */
    /* "pending" when the antivirus will scan it (clamd configured and
     * bytes stored), else NULL: never scanned. */
    const char *scan;
};

/* One parsed inbound message, ready to store. */
/* What the rules (docs/rules.md) decided for one message under one
 * threading outcome. NULL strings: no rule set it. The JSON texts are
 * arrays: tags as strings, applied as {name, decision} objects, matched
 * as rule names. */
struct mr_buf;
/* An automatic acknowledgement the rules chose (docs/outbound.md). The
 * delivering transaction queues it in outbound_mail only when the message
 * starts a ticket, and only when `to` was not acknowledged less than
 * window_ms ago: it reads and moves the sender's last_ack_at itself, so
 * workers racing on two messages of one sender still queue one. */
struct mr_ack_spec {
    const char *to;        /* the sender's address, lower-cased */
    const char *mail_from; /* envelope sender; "" is the null sender <> */
    int64_t window_ms;
    /* Writes the whole message (RFC 5322, CRLF lines) into out and its
     * Message-ID (without <>) into msgid once the ticket's id and number
     * are known. It runs on the store's writer inside the transaction, so
     * it must be quick and touch nothing shared. < 0: no acknowledgement
     * (the delivery itself goes on). */
    int (*render)(const void *ctx, int64_t ticket_id, int64_t number,
                  struct mr_buf *out, char *msgid, size_t msgid_cap);
    const void *ctx;
};

struct mr_rules_outcome {
    const char *queue, *priority, *assignee;
    const char *tags_add_json, *tags_remove_json;
    const char *applied_json;
    const char *matched_json;
    const char *fields_json; /* {NAME: VALUE}, merged into the ticket's */
    /* Integration names (rules' notify): one notifications row each for
     * the ticket and message, in the same transaction. NULL: none. */
    const char *notify_json;
    bool ignore; /* no ticket: kept in ignored_messages for admins */
    const struct mr_ack_spec *ack; /* NULL: no acknowledgement */
};

struct mr_message_rec {
    const char *tenant;
    const char *inbox;          /* may be NULL */
    const char *channel;
    const char *message_id;     /* normalized, or the derived key */
    bool message_id_derived;
    const char *in_reply_to;    /* first id or NULL */
    const char *subject;        /* may be NULL */
    const char *from_email;     /* may be NULL */
    const char *from_name;
    const char *text;
    const char *html;
    const char *html_sanitized; /* may be NULL (no HTML, or it failed) */
    int sanitizer_version;      /* of html_sanitized; 0 when NULL */
    const char *stripped_text;  /* the visible reply, may be NULL */
    const char *event_json;     /* the whole normalized event */
    const char *raw_sha256;     /* NULL for webhook events */
    int64_t received_at;
    int64_t date;               /* the Date header, or 0 */
    const struct mr_attachment_rec *attachments;
    size_t nattachments;

    /* Threading (src/ticket/thread.h) reads these. */
    const char *const *references;  /* oldest first */
    size_t nreferences;
    const char *const *recipients;  /* envelope rcpt + To + Cc, lower-case */
    size_t nrecipients;
    const char *const *copied;      /* To + Cc: participants of a new or
                                       verified thread */
    size_t ncopied;
    int auto_kind;                  /* enum mr_auto_kind */
    const char *auto_json;          /* the event's `auto` object, or NULL */
    const char *bounce_original_id; /* bounces: the reported Message-ID */
    /* What makes two copies the same message whatever the transport did
     * to them (hex; the worker hashes Date and normalized subject), or
     * NULL. The same message_id with another content_key is another
     * message reusing an id (pitfalls.md 9): stored too, under the id
     * with "#<key prefix>" appended, never dropped as a duplicate. */
    const char *content_key;
    /* Rules evaluated both ways, since threading decides inside the
     * delivering transaction: rules_new applies when the message starts a
     * ticket, rules_reply when it joins one. NULL: no rules. */
    const struct mr_rules_outcome *rules_new, *rules_reply;
    /* A release (docs/rules.md, *Releasing*): the ignored_messages row
     * this delivery takes out of the ignored list, 0 for ordinary mail,
     * and who asked (for the trail). The store then takes no `ignore`
     * and queues no acknowledgement, and marks that row released in the
     * same transaction; a row released already makes the delivery a
     * duplicate, so a release job that runs twice stores the message
     * once. */
    int64_t release_of;
    const char *release_by;
};

struct mr_deliver_result {
    int64_t ticket_id;
    int64_t message_row;   /* the messages row id */
    bool duplicate;        /* message_id was stored already: nothing new */
    bool new_ticket;
    char threaded_by[16];  /* mr_thread_by_name() of the decision */
    bool unverified;
    bool reopened;
    bool id_reused;        /* stored under a suffixed id (content_key) */
    bool ignored;          /* the rules ignored it: no ticket (ticket_id 0),
                              message_row is the ignored_messages row */
    bool ack_queued;       /* an acknowledgement went into outbound_mail */
    bool ack_window;       /* one was chosen but the sender had one within
                              the window (a racing delivery sent it) */
};

/* In ONE transaction, on the writer (so racing replies cannot both open a
 * ticket): the threading decision (src/ticket/thread.h) with lookups on
 * that transaction; unless it is a duplicate (then nothing is written but
 * the job), a new or updated ticket (participants, reopen, link), the
 * message with threaded_by, its attachment rows, thread_refs for its own
 * id and every id it references, the outbox events (email.received,
 * ticket.created or ticket.updated, message.added) and the job DONE.
 * job_id may be 0 (no job). */
int mr_store_deliver_message(struct mr_store *st, int64_t job_id,
                             const char *worker,
                             const struct mr_message_rec *msg,
                             struct mr_deliver_result *res,
                             struct mr_error *err);

struct mr_attachment_view {
    int64_t id;
    int64_t message_row;
    char *filename;
    char *safe_filename;
    char *content_type;
    char *disposition;
    char *content_id;
    int64_t size;
    char *sha256;      /* the blob key; NULL when there is no blob */
    char *scan;        /* pending, clean, infected, error; NULL: not scanned */
    char *scan_signature; /* infected: clamd's signature name */
    int64_t scanned_at;   /* when the verdict was recorded; 0: none */
    /* Pending again after a rescan: the verdict it had (clean, infected,
     * error), which says what is served meanwhile; else NULL. */
    char *scan_previous;
    char *detected_type;
    bool type_mismatch;
    bool blocked;
    char *blocked_reason;
    bool truncated;
};
void mr_attachment_view_clear(struct mr_attachment_view *a);

/* One attachment of tenant by id. MR_ENOTFOUND when missing or in another
 * tenant. */
int mr_store_get_attachment(struct mr_store *st, const char *tenant,
                            int64_t id, struct mr_attachment_view *out,
                            struct mr_error *err);

/* For inline images: the detected type (caller frees *type) of an
 * attachment of tenant with this sha256 that is neither blocked nor
 * truncated and was detected as some image/ type; the caller decides
 * whether that type may be shown. MR_ENOTFOUND when there is none. */
int mr_store_find_inline(struct mr_store *st, const char *tenant,
                         const char *sha256, char **type,
                         struct mr_error *err);

/* Many deliveries submitted at once: they share the writer's batch (one
 * fsync) but each succeeds or fails on its own (its own savepoint); item
 * i's result and error are in res[i] and errs[i], its code in rcs[i].
 * Returns 0 when every item succeeded, else the first failing code. */
struct mr_deliver_item {
    int64_t job_id;
    const struct mr_message_rec *msg;
    struct mr_deliver_result res;
    int rc;
    struct mr_error err;
};
int mr_store_deliver_messages(struct mr_store *st, const char *worker,
                              struct mr_deliver_item *items, size_t n);

struct mr_message_view {
    int64_t id;
    int64_t ticket_id;
    char *message_id;
    char *direction;   /* "inbound" */
    char *kind;        /* "message", or "delivery_failure" for a bounce */
    char *threaded_by; /* new, duplicate, token, in_reply_to, ... */
    char *thread_detail;
    bool unverified;   /* joined by headers; sender not a participant */
    char *auto_json;   /* {kind, reason, ...} or NULL */
    char *inbox;       /* inbox name it arrived at, or NULL */
    struct mr_attachment_view *attachments;
    size_t nattachments;
    char *from_email;
    char *from_name;
    char *subject;
    char *text;
    char *html;
    char *event_json;  /* the stored event: to, cc, date, attachments... */
    char *raw_sha256;
    char *matched_rules_json; /* rule names (JSON array) or NULL */
    int64_t received_at;
};

struct mr_ticket_view {
    int64_t id;
    int64_t number;    /* per tenant, from 1 */
    char *tenant;
    char *subject;
    char *status;      /* new, open, pending, solved, closed */
    char *priority;    /* low, normal, high, urgent */
    char *queue;       /* NULL when none */
    char *assignee;    /* NULL when none */
    char *tags_json;   /* JSON array text, "[]" when none */
    char *applied_rules_json; /* JSON array text, "[]" when none */
    char *fields_json;        /* JSON object text, "{}" when none */
    char *links_json;         /* what integrations made, by integration
                                 name (docs/integrations.md); "{}" */
    char *requester;
    int64_t linked_ticket_id; /* a closed ticket this one follows, or 0 */
    int64_t version;   /* grows with every change (If-Match, ETag) */
    int64_t message_count;
    int64_t created_at;
    int64_t updated_at;
    struct mr_message_view *messages; /* filled by mr_store_get_ticket only */
    size_t nmessages;
};
void mr_ticket_view_clear(struct mr_ticket_view *t);
void mr_ticket_list_free(struct mr_ticket_view *t, size_t n);

/* Optional filters of a ticket listing; NULL fields match everything. */
struct mr_ticket_filter {
    const char *status;
    const char *queue;
    const char *priority;
    const char *requester;
};

/* Tickets of one tenant, newest updated first, matching filter (may be
 * NULL). cursor: NULL for the first page, else the opaque string a
 * previous call put in *next_cursor (owned by the caller, free()).
 * *next_cursor is NULL on the last page. A cursor that does not parse:
 * MR_EINVAL. */
int mr_store_list_tickets(struct mr_store *st, const char *tenant,
                          const struct mr_ticket_filter *filter,
                          const char *cursor, int limit,
                          struct mr_ticket_view **tickets, size_t *n,
                          char **next_cursor, struct mr_error *err);
/* One ticket with its messages, oldest first. MR_ENOTFOUND when missing or
 * in another tenant. */
int mr_store_get_ticket(struct mr_store *st, const char *tenant, int64_t id,
                        struct mr_ticket_view *out, struct mr_error *err);
/* The same by the per-tenant number (#1042). */
int mr_store_get_ticket_by_number(struct mr_store *st, const char *tenant,
                                  int64_t number, struct mr_ticket_view *out,
                                  struct mr_error *err);
/* One message (for its raw bytes: raw_sha256). MR_ENOTFOUND when missing
 * or in another tenant. */
int mr_store_get_message(struct mr_store *st, const char *tenant, int64_t id,
                         struct mr_message_view *out, struct mr_error *err);
void mr_message_view_clear(struct mr_message_view *m);

/* A message the rules ignored (docs/rules.md): kept, with no ticket. */
struct mr_ignored_view {
    int64_t id;
    char *message_id;
    char *channel;
    char *inbox;
    char *from_email;
    char *subject;
    char *raw_sha256;
    char *applied_rules_json; /* JSON array text */
    char *matched_rules_json; /* JSON array text */
    int64_t received_at;
    /* Its release (docs/rules.md, *Releasing*): requested (job, by whom,
     * when; 0/NULL when never), then done (released_at; the ticket and
     * messages row it went to, 0 when it opened none). */
    int64_t release_job_id;
    char *release_by;
    int64_t release_requested_at;
    int64_t released_at;
    int64_t released_ticket_id;
    int64_t released_message_row;
    char *event_json; /* mr_store_get_ignored only: the stored event */
};
void mr_ignored_view_clear(struct mr_ignored_view *v);
void mr_ignored_list_free(struct mr_ignored_view *v, size_t n);

/* One ignored message of tenant with its stored event. MR_ENOTFOUND when
 * missing or in another tenant. */
int mr_store_get_ignored(struct mr_store *st, const char *tenant, int64_t id,
                         struct mr_ignored_view *out, struct mr_error *err);

/* Asks for ignored message id of tenant to be released into a ticket: in
 * ONE transaction, checks that it was neither released nor asked for
 * before, queues a job (channel "release", the row's raw message, payload
 * {"release": {"ignored_id", "by"}}) and records the job, `by` and the
 * time on the row. A worker then delivers the stored event as new mail
 * would be (mr_message_rec.release_of). *job_id gets the job.
 * MR_ENOTFOUND; MR_ECONFLICT when it was released or asked for already
 * (err says which). by: who asks ("api:<prefix>", "cli"), required. */
int mr_store_release_ignored(struct mr_store *st, const char *tenant,
                             int64_t id, const char *by, int64_t *job_id,
                             struct mr_error *err);

/* The ignored messages of one tenant, newest first, paged like
 * mr_store_list_tickets (cursor: NULL or a previous *next_cursor; one
 * that does not parse: MR_EINVAL). */
int mr_store_list_ignored(struct mr_store *st, const char *tenant,
                          const char *cursor, int limit,
                          struct mr_ignored_view **out, size_t *n,
                          char **next_cursor, struct mr_error *err);

/* How many tickets of tenant have `email` as their requester (the rules'
 * previous_tickets), on a read connection. NULL or empty email: 0. */
int mr_store_count_requester_tickets(struct mr_store *st, const char *tenant,
                                     const char *email, int64_t *count,
                                     struct mr_error *err);

/* The installation's secret for ticket tokens (made at the first
 * migration, random, never leaves the database but through this). */
#define MR_STORE_SECRET_LEN 32
int mr_store_thread_secret(struct mr_store *st,
                           unsigned char out[MR_STORE_SECRET_LEN],
                           struct mr_error *err);

/* ---- agents' changes to tickets (src/store/ticket_update.c) ------------ */

#define MR_TICKET_TAGS_MAX 100   /* tags on a ticket, and per list given */
#define MR_TICKET_TAG_MAX 64     /* bytes of one tag */
#define MR_TICKET_VALUE_MAX 128  /* bytes of a queue or an assignee */

/* A change an agent asks for. NULL (or false) leaves a field as it is. */
struct mr_ticket_patch {
    const char *status;   /* open, pending, solved, closed ("new" is only a
                             ticket's first state) */
    const char *priority; /* low, normal, high, urgent */
    bool set_queue;       /* queue becomes `queue`; NULL clears it */
    const char *queue;
    bool set_assignee;    /* assignee becomes `assignee`; NULL clears it */
    const char *assignee;
    bool set_tags;        /* the tags become tags[0..ntags) (a set: order
                             of first appearance, repeats dropped) */
    const char *const *tags;
    size_t ntags;
    /* Or edits of the present tags: removed first, then added. Not
     * together with set_tags. */
    const char *const *tags_add;
    size_t ntags_add;
    const char *const *tags_remove;
    size_t ntags_remove;
    int64_t if_version; /* > 0: MR_ECONFLICT unless the ticket's version is
                           this one (optimistic concurrency) */
    const char *actor;  /* who: "api:<token prefix>", "cli"; in the event */
};

struct mr_ticket_update_result {
    bool changed;     /* false: the patch changed nothing, no event */
    int64_t version;  /* the ticket's version after the call */
    int64_t seq;      /* the ticket.updated event's seq, 0 when none */
};

/* Checks a patch without a database: known values, lengths, valid UTF-8
 * without control characters, list sizes, tags not with tags_add or
 * tags_remove, no tag both added and removed. MR_EINVAL with *field (may
 * be NULL) set to the offending field's API name ("status", "tags_add",
 * ...). */
int mr_store_ticket_patch_check(const struct mr_ticket_patch *p,
                                const char **field, struct mr_error *err);

/* Applies p to ticket id of tenant in ONE transaction on the writer: the
 * ticket's fields, version + 1, updated_at (and solved_at, set when it
 * becomes solved, cleared when it leaves solved) and one outbox event
 * ticket.updated whose payload holds only the fields that changed with
 * their before and after values (docs/events.md). A patch that changes
 * nothing writes nothing (res->changed false). MR_ENOTFOUND (no such
 * ticket in tenant), MR_ECONFLICT (if_version is not the ticket's),
 * MR_EINVAL (the patch does not check, or the tags would pass
 * MR_TICKET_TAGS_MAX). */
int mr_store_update_ticket(struct mr_store *st, const char *tenant,
                           int64_t id, const struct mr_ticket_patch *p,
                           struct mr_ticket_update_result *res,
                           struct mr_error *err);

/* ---- tokens ------------------------------------------------------------ */

struct mr_token_rec {
    int64_t id;
    char *tenant;
    char *role;        /* admin, agent, ingest, read */
    char *label;       /* may be NULL */
    char *prefix;      /* first characters of the token, to recognise it */
    int64_t created_at;
    int64_t last_used_at; /* 0 never */
    bool revoked;
    int64_t expires_at; /* 0: never (a long-lived token) */
    int64_t parent_id;  /* the token it was exchanged for, 0 when none */
};
void mr_token_rec_clear(struct mr_token_rec *t);

/* Stores a token by the hex SHA-256 of its secret (the secret itself is
 * never stored). */
int mr_store_token_add(struct mr_store *st, const char *tenant,
                       const char *role, const char *hash_hex,
                       const char *prefix, const char *label, int64_t *id,
                       struct mr_error *err);
/* A short-lived token exchanged for token parent_id (which must be live,
 * long-lived and of tenant: MR_ENOTFOUND otherwise): it expires at
 * expires_at (Unix ms) and dies with its parent's revocation. Tokens
 * that expired more than a day ago are purged on the way, a few per
 * call. */
int mr_store_token_add_child(struct mr_store *st, int64_t parent_id,
                             const char *tenant, const char *role,
                             const char *hash_hex, const char *prefix,
                             int64_t expires_at, int64_t *id,
                             struct mr_error *err);
/* Finds a live token by hash: not revoked, nor its parent. An expired
 * one is found too (expires_at says so: the caller decides, and can say
 * why). MR_ENOTFOUND otherwise. */
int mr_store_token_find(struct mr_store *st, const char *hash_hex,
                        struct mr_token_rec *out, struct mr_error *err);
/* All tokens (of tenant, or all when NULL), by id. */
int mr_store_token_list(struct mr_store *st, const char *tenant,
                        struct mr_token_rec **out, size_t *n,
                        struct mr_error *err);
void mr_token_list_free(struct mr_token_rec *t, size_t n);
int mr_store_token_revoke(struct mr_store *st, int64_t id,
                          struct mr_error *err);

/* ---- outbox events: polling and consumer groups (src/store/events.c) --- */

/* One outbox event as a consumer sees it. */
struct mr_event_rec {
    int64_t seq;         /* the tenant's cursor; unique across tenants */
    char *type;          /* email.received, ticket.created, ... */
    int64_t ticket_id;   /* 0 when none (bounce.unmatched) */
    int64_t message_row; /* 0 when none */
    char *payload;       /* JSON object text; for email.received the stored
                            payload with "event": the message's whole
                            normalized event */
    int64_t created_at;
};
void mr_event_list_free(struct mr_event_rec *ev, size_t n);

#define MR_EVENTS_LIMIT_MAX 1000
/* Names of consumer groups: [A-Za-z0-9._-]{1,64}. */
#define MR_CONSUMER_NAME_MAX 64
bool mr_store_consumer_name_valid(const char *name);

/* Up to limit (1..MR_EVENTS_LIMIT_MAX) events of tenant with seq > after,
 * in seq order, of one of types (ntypes 0: every type). *out is an array
 * the caller frees with mr_event_list_free (NULL when *n is 0). */
int mr_store_list_events(struct mr_store *st, const char *tenant,
                         int64_t after, int limit, const char *const *types,
                         size_t ntypes, struct mr_event_rec **out, size_t *n,
                         struct mr_error *err);
/* The events whose seq is one of seqs[0..nseqs) (1..MR_EVENTS_LIMIT_MAX;
 * seqs are unique across tenants), as mr_store_list_events gives them, in
 * seq order, read in one query: the webhook dispatcher's bodies for a batch
 * of deliveries. A seq without an event is left out. *out: caller frees
 * with mr_event_list_free. */
int mr_store_events_by_seq(struct mr_store *st, const int64_t *seqs,
                           size_t nseqs, struct mr_event_rec **out, size_t *n,
                           struct mr_error *err);

/* A batch leased to one claimer of a consumer group. */
struct mr_event_lease {
    int64_t lease_id;   /* new for every claim, re-offers included */
    int64_t after;      /* the batch is the events in (after, cursor] */
    int64_t cursor;     /* its last seq: what ack takes */
    int64_t expires_at; /* lease_until, Unix ms */
    struct mr_event_rec *events;
    size_t n;
};
void mr_event_lease_clear(struct mr_event_lease *l);

/* Leases the next batch of group `name` of tenant (created at the first
 * claim, starting before the tenant's first event) until now + lease_ms.
 * A batch whose lease expired unacknowledged is offered first, whole (its
 * events as before, whatever limit is); otherwise up to limit events after
 * both the group's watermark and every batch leased so far. Claims run on
 * the writer one at a time, so two claimers never get the same batch.
 * MR_ENOTFOUND when there is nothing to claim. */
int mr_store_claim_events(struct mr_store *st, const char *tenant,
                          const char *name, int limit, int64_t now,
                          int64_t lease_ms, struct mr_event_lease *out,
                          struct mr_error *err);
/* Acknowledges the batch whose cursor is `cursor` (and, when lease_id is
 * not 0, whose lease is that one). The group's watermark moves over every
 * acknowledged batch that follows it without a gap. Acknowledging an
 * acknowledged batch again is 0. MR_ECONFLICT when the cursor is not a
 * batch of this group leased now: unknown, past its lease (it will be
 * offered again), or leased again to another claimer (lease_id). */
int mr_store_ack_events(struct mr_store *st, const char *tenant,
                        const char *name, int64_t cursor, int64_t lease_id,
                        int64_t now, struct mr_error *err);

/* ---- outbound webhooks (src/store/webhooks.c) --------------------------
 *
 * A subscription (webhook) has an id, a tenant, a URL unique within the
 * tenant, an event filter, 1 or 2 secrets and a cursor over the outbox.
 * `config` subscriptions are rewritten from the configuration file at
 * every serve start (mr_store_webhook_sync_config) and are read-only
 * through the API but for re-enabling; `api` ones are created, changed
 * and deleted by mr_store_webhook_create/update/delete. */

#define MR_WEBHOOK_SECRETS_MAX 2
#define MR_WEBHOOK_TYPES_MAX 32
#define MR_WEBHOOK_URL_MAX 2048
#define MR_WEBHOOK_SECRET_MIN 16
#define MR_WEBHOOK_SECRET_MAX 1024
/* Subscriptions one tenant may have (config and API together). */
#define MR_WEBHOOKS_PER_TENANT_MAX 100

struct mr_webhook {
    int64_t id;
    char *tenant;
    char *url;
    char **events;          /* types delivered; nevents 0: every type */
    size_t nevents;
    char *secrets[MR_WEBHOOK_SECRETS_MAX]; /* current first */
    size_t nsecrets;
    bool active;            /* false: paused (its cursor waits) */
    char *source;           /* "config" or "api" */
    int64_t disabled_at;    /* 0, or when a 410 disabled it */
    char *disabled_reason;  /* NULL unless disabled */
    int64_t cursor;         /* the last event seq scanned into deliveries */
    int64_t created_at;
    int64_t updated_at;
};
void mr_webhook_clear(struct mr_webhook *w);
void mr_webhook_list_free(struct mr_webhook *w, size_t n);

/* What create, update and the config sync take. Strings are borrowed. */
struct mr_webhook_spec {
    const char *tenant;     /* sync only; create and update take it apart */
    const char *url;        /* create: required; update: NULL unchanged */
    bool set_events;        /* update: change the filter (create: always) */
    const char *const *events; /* nevents 0 (or NULL): every type */
    size_t nevents;
    const char *const *secrets; /* update: nsecrets 0 leaves them */
    size_t nsecrets;
    int active;             /* 1, 0; update: -1 unchanged. 1 also clears a
                               410's disabled_at */
};

/* Is type one the outbox writes (a subscription filter may name it)? */
bool mr_store_event_type_known(const char *type);

/* A new `api` subscription of tenant, starting at the tenant's newest
 * event (older events are not replayed); *out (may be NULL) gets it.
 * MR_ECONFLICT when the tenant has one with this URL, MR_ELIMIT past
 * MR_WEBHOOKS_PER_TENANT_MAX. Values are not checked here (the API does). */
int mr_store_webhook_create(struct mr_store *st, const char *tenant,
                            const struct mr_webhook_spec *spec,
                            struct mr_webhook *out, struct mr_error *err);
/* One subscription of tenant (NULL: of any tenant). MR_ENOTFOUND. */
int mr_store_webhook_get(struct mr_store *st, const char *tenant, int64_t id,
                         struct mr_webhook *out, struct mr_error *err);
/* Every subscription of tenant (NULL: all), by tenant then id. */
int mr_store_webhook_list(struct mr_store *st, const char *tenant,
                          struct mr_webhook **out, size_t *n,
                          struct mr_error *err);
/* Changes what spec sets. A `config` subscription takes only
 * {active: 1} while the file has it active (clears a 410); anything else
 * is MR_ECONFLICT, as is a URL another subscription has. MR_ENOTFOUND. */
int mr_store_webhook_update(struct mr_store *st, const char *tenant,
                            int64_t id, const struct mr_webhook_spec *spec,
                            struct mr_webhook *out, struct mr_error *err);
/* Deletes an `api` subscription and every delivery row of it (pending,
 * delivered, dead); *deliveries (may be NULL) gets how many.
 * MR_ECONFLICT for a `config` one, MR_ENOTFOUND. */
int mr_store_webhook_delete(struct mr_store *st, const char *tenant,
                            int64_t id, int64_t *deliveries,
                            struct mr_error *err);
/* The configuration's subscriptions (specs[i].tenant set), in one
 * transaction: each is created or rewritten as `config` (an `api` one with
 * the same URL becomes `config`); `config` rows the file no longer has are
 * made inactive (their deliveries wait, as when paused). */
int mr_store_webhook_sync_config(struct mr_store *st,
                                 const struct mr_webhook_spec *specs,
                                 size_t n, struct mr_error *err);
/* Grows after every change of a subscription made through this store
 * (create, update, delete, sync, disable), so the dispatcher reloads its
 * list only then (and now and then for other processes' changes). */
uint64_t mr_store_webhooks_gen(struct mr_store *st);

/* Creates the delivery rows of subscription webhook_id for up to limit
 * events after its cursor (of its filter's types) and moves the cursor
 * over every event scanned. Nothing when it is inactive or disabled.
 * *added gets the rows made, *cursor (may be NULL) the cursor after. */
int mr_store_webhook_scan(struct mr_store *st, int64_t webhook_id, int limit,
                          int64_t now, int *added, int64_t *cursor,
                          struct mr_error *err);

/* One delivery row (of the due list, a listing or a get). The due list
 * fills id, tenant, url, webhook_id, seq, ticket_id, event_type and
 * attempts; the others are 0/NULL there. */
struct mr_webhook_delivery {
    int64_t id;
    char *tenant;
    char *url;
    int64_t seq;
    int attempts;
    int64_t webhook_id;
    int64_t ticket_id;      /* 0: the event has no ticket */
    char *event_type;
    char *state;            /* pending, delivered, dead */
    int64_t next_attempt_at;
    char *last_error;
    int64_t created_at;
    int64_t updated_at;
};
void mr_webhook_delivery_clear(struct mr_webhook_delivery *d);
void mr_webhook_delivery_list_free(struct mr_webhook_delivery *d, size_t n);

/* Up to max pending deliveries due at now (next_attempt_at <= now) of
 * subscriptions active and not disabled, fair between subscriptions: each
 * one's oldest due rows taken rank by rank (every subscription's oldest,
 * then every one's second, ...; oldest due first within a rank), so one
 * subscription's backlog never fills the list while another has rows due
 * (a lone one gets all max). Cost bounded by max rows per active
 * subscription whatever the backlog. Leaves out the
 * nskip (at most MR_WEBHOOK_DUE_SKIP_MAX) delivery ids in skip (may be
 * NULL): the dispatcher's in flight, or sent and not yet recorded, which
 * are still pending. Per-ticket order: a delivery is returned only when no
 * earlier event (lower seq) of the same (subscription, ticket) is pending
 * (skipped or not), so one answer never holds two deliveries of a pair and
 * never a later one while an earlier one waits (for a retry, for its
 * subscription, or for its result to be recorded). Deliveries of events
 * without a ticket are not ordered. *out: caller frees. */
#define MR_WEBHOOK_DUE_SKIP_MAX 8192
int mr_store_webhook_due(struct mr_store *st, int64_t now, int max,
                         const int64_t *skip, size_t nskip,
                         struct mr_webhook_delivery **out, size_t *n,
                         struct mr_error *err);

/* Records an attempt: state "pending" (with next_at), "delivered" or
 * "dead"; last_error may be NULL. "dead" also writes a delivery.failed
 * outbox event in the same transaction, unless the dead delivery carried
 * a delivery.failed event itself (no chains). */
int mr_store_webhook_result(struct mr_store *st, int64_t id,
                            const char *state, int attempts, int64_t next_at,
                            const char *last_error, struct mr_error *err);

/* Several attempts recorded in one transaction (the dispatcher's
 * concurrent sends finish together; one commit, not one each). Synced
 * lazily: a power cut may forget a result, which costs a redelivery with
 * the same webhook-id (at least once), never a lost delivery. */
struct mr_webhook_result {
    int64_t id;
    const char *state;
    int attempts;
    int64_t next_at;
    const char *last_error; /* may be NULL */
};
int mr_store_webhook_results(struct mr_store *st,
                             const struct mr_webhook_result *r, size_t n,
                             struct mr_error *err);

/* Marks the subscription (tenant, url) disabled: its receiver answered
 * 410. Its deliveries wait until it is re-enabled (update, active 1). */
int mr_store_webhook_disable(struct mr_store *st, const char *tenant,
                             const char *url, int64_t now,
                             struct mr_error *err);

/* ---- outbound mail (src/store/outbound.c, docs/outbound.md) ---------- */

/* When tenant last acknowledged address automatically (Unix ms; 0: never),
 * on a read connection: what the rules' `window` compares with. The
 * delivering transaction checks again, so this read may be stale. */
int mr_store_last_ack(struct mr_store *st, const char *tenant,
                      const char *address, int64_t *at, struct mr_error *err);

struct mr_outbound_mail {
    int64_t id;
    char *tenant;
    char *kind;       /* "auto_ack" */
    int64_t ticket_id;
    char *message_id; /* its own, without <> */
    char *mail_from;  /* "" the null sender */
    char *rcpt_to;
    char *message;    /* the whole RFC 5322 text, CRLF lines */
    char *state;      /* pending, sent, failed */
    int attempts;     /* made so far (a claim counts one) */
    int64_t next_attempt_at;
    char *last_error;
    int64_t created_at;
    int64_t updated_at;
};
void mr_outbound_mail_clear(struct mr_outbound_mail *m);
void mr_outbound_mail_list_free(struct mr_outbound_mail *m, size_t n);

/* Claims up to max pending rows due at now (next_attempt_at <= now),
 * oldest first: attempts + 1 and next_attempt_at = now + lease_ms, so no
 * other sender takes them while this one tries (a sender that dies leaves
 * them due again after the lease). *out: the caller frees. */
int mr_store_outbound_claim(struct mr_store *st, int64_t now, int64_t lease_ms,
                            int max, struct mr_outbound_mail **out, size_t *n,
                            struct mr_error *err);
/* Records an attempt's end: state "sent", "pending" (again at next_at) or
 * "failed"; last_error may be NULL. */
int mr_store_outbound_result(struct mr_store *st, int64_t id,
                             const char *state, int64_t next_at,
                             const char *last_error, struct mr_error *err);
/* A listing of outbound mail, oldest first (by id), after id `after`
 * (the API's and the CLI's pages). MR_EINVAL for a bad limit or state. */
struct mr_outbound_filter {
    const char *tenant; /* NULL: every tenant */
    const char *state;  /* NULL: any; else pending, sent, failed */
    int64_t after;      /* ids above this */
    int limit;          /* 1..1000 */
};
int mr_store_outbound_list(struct mr_store *st,
                           const struct mr_outbound_filter *f,
                           struct mr_outbound_mail **out, size_t *n,
                           struct mr_error *err);
/* One row of tenant (NULL: any). MR_ENOTFOUND. *out: the caller clears. */
int mr_store_outbound_get(struct mr_store *st, const char *tenant, int64_t id,
                          struct mr_outbound_mail *out, struct mr_error *err);
/* A failed row back to pending, due now, attempts 0 (the same message and
 * Message-ID). MR_ECONFLICT when it is pending or sent, MR_ENOTFOUND.
 * out (may be NULL; the caller clears it) gets the row as the retry left
 * it, before the sender takes it. */
int mr_store_outbound_retry(struct mr_store *st, const char *tenant,
                            int64_t id, struct mr_outbound_mail *out,
                            struct mr_error *err);

/* ---- integrations' notifications (src/store/notifications.c) ---------- */

/* What a due notification is about: the row and what payloads are made
 * of (the ticket and the message that triggered it). */
struct mr_notification {
    int64_t id;
    char *tenant;
    char *integration;
    int attempts;
    int64_t ticket_id;
    int64_t ticket_number;
    char *subject;      /* the ticket's; may be NULL */
    char *status, *priority, *queue, *requester; /* queue, requester: NULL */
    int64_t message_row;
    char *message_id;
    char *from_email, *from_name; /* may be NULL */
    char *text;         /* the stripped reply, else the plain text, cut at
                           MR_NOTIFY_TEXT_MAX characters; may be NULL */
    char *links_json;   /* the ticket's links object */
};
#define MR_NOTIFY_TEXT_MAX 4000
void mr_notification_list_free(struct mr_notification *v, size_t n);

/* Up to max pending notifications due at now, oldest first. */
int mr_store_notify_due(struct mr_store *st, int64_t now, int max,
                        struct mr_notification **out, size_t *n,
                        struct mr_error *err);

/* Records an attempt of notification id: state "pending" (next_at),
 * "sent" or "dead"; kind, last_error and external_ref may be NULL. With
 * link_json (a JSON object text), in the same transaction, the ticket's
 * links get it under the integration's name. */
struct mr_notify_result {
    int64_t id;
    const char *kind;
    const char *state;
    int attempts;
    int64_t next_at;
    const char *last_error;
    const char *external_ref;
    const char *link_json;
};
int mr_store_notify_result(struct mr_store *st,
                           const struct mr_notify_result *r,
                           struct mr_error *err);

/* One notification row as it stands (the API, the CLI, tests). */
struct mr_notification_state {
    int64_t id;
    char *tenant, *integration, *kind, *state, *last_error, *external_ref;
    int attempts;
    int64_t ticket_id, message_row;
    int64_t next_attempt_at, created_at, updated_at;
};
void mr_notification_state_clear(struct mr_notification_state *x);
void mr_notification_states_free(struct mr_notification_state *v, size_t n);
/* A listing of notifications, oldest first (by id), after id `after`.
 * MR_EINVAL for a bad limit or state. */
struct mr_notify_filter {
    const char *tenant; /* NULL: every tenant */
    const char *state;  /* NULL: any; else pending, sent, dead */
    int64_t after;      /* ids above this */
    int limit;          /* 1..MR_EVENTS_LIMIT_MAX */
};
int mr_store_notify_list(struct mr_store *st, const struct mr_notify_filter *f,
                         struct mr_notification_state **out, size_t *n,
                         struct mr_error *err);
/* One notification of tenant (NULL: any). MR_ENOTFOUND. */
int mr_store_notify_get(struct mr_store *st, const char *tenant, int64_t id,
                        struct mr_notification_state *out,
                        struct mr_error *err);
/* A dead notification back to pending, due now, attempts 0.
 * MR_ECONFLICT when it is pending or sent, MR_ENOTFOUND. out (may be
 * NULL; the caller clears it) gets the row as the redrive left it. */
int mr_store_notify_redrive(struct mr_store *st, const char *tenant,
                            int64_t id, struct mr_notification_state *out,
                            struct mr_error *err);

/* ---- antivirus scanning (src/store/scan.c) ------------------------------ */

/* An attachment waiting for the scanner (scan = 'pending'). */
struct mr_scan_item {
    int64_t id;
    char *tenant;
    int64_t message_row;
    int64_t ticket_id;   /* 0 when the message has no ticket */
    char *message_id;
    char *filename;
    char *sha256;        /* the blob key */
    int attempts;        /* failed conversations so far */
    /* What the attachment policy judges (mr_attach_judge), for a clean
     * verdict that lifts an infected block. */
    char *safe_filename;
    char *content_type;
    char *detected_type;
    /* Queued by a rescan: when it was asked for (give it back in the
     * verdict), else 0; and the verdict it had then (NULL: none). */
    int64_t rescan_at;
    char *previous;
};
void mr_scan_item_list_free(struct mr_scan_item *items, size_t n);

/* Up to max pending attachments due at now (scan_next_at <= now), oldest
 * first. *out: caller frees with mr_scan_item_list_free. */
int mr_store_scan_due(struct mr_store *st, int64_t now, int max,
                      struct mr_scan_item **out, size_t *n,
                      struct mr_error *err);

/* The verdict for one pending attachment, in ONE transaction: scan state
 * ("clean", "infected" or "error"), signature (infected) or error text,
 * scanned_at; an infected attachment becomes blocked with reason
 * "infected: <signature>"; and the outbox event attachment.scanned (with
 * rescan and previous when a rescan queued it). A clean verdict lifts a
 * block only when its reason is an infection (MR_SCAN_INFECTED_PREFIX),
 * never the attachment policy's; and even then the block stays, with
 * policy_reason, when the policy blocks the file. An error verdict changes
 * no block: a file found infected stays blocked until a clean verdict.
 * MR_ENOTFOUND when the attachment is not pending any more (another
 * scanner recorded it), or was queued again by a rescan since rescan_at
 * (the scan that was in flight is not the one the rescan asked for):
 * nothing is written. */
#define MR_SCAN_INFECTED_PREFIX "infected: "
struct mr_scan_verdict {
    int64_t id;
    const char *scan;      /* clean, infected, error */
    const char *signature; /* infected only */
    const char *error;     /* error only, may be NULL */
    int64_t now;
    int64_t rescan_at;     /* the item's (0: not queued by a rescan) */
    /* The attachment policy's reason to block the file, judged by the
     * caller with the configuration in force (mr_attach_judge); NULL: the
     * policy lets it through. Read only when a clean verdict would lift an
     * infected block: the policy's reason was overwritten by the
     * infection's, so it is judged again rather than lost. */
    const char *policy_reason;
};
int mr_store_scan_result(struct mr_store *st, const struct mr_scan_verdict *v,
                         struct mr_error *err);

/* A failed attempt: the attachment stays pending, with attempts and the
 * time of its next try. */
int mr_store_scan_retry(struct mr_store *st, int64_t id, int attempts,
                        int64_t next_at, const char *error,
                        struct mr_error *err);

/* The verdict recorded since `since` for another attachment of tenant with
 * the same bytes (sha256): *scan "clean" or "infected" and *signature
 * (caller frees both). MR_ENOTFOUND when there is none. */
int mr_store_scan_known(struct mr_store *st, const char *tenant,
                        const char *sha256, int64_t since, char **scan,
                        char **signature, struct mr_error *err);

/* An operator's rescan of one attachment of tenant (docs/attachments.md):
 * back to pending, due at now, attempts 0, whatever its verdict; the
 * verdict it had is kept as scan_previous (a pending one keeps the one it
 * already kept), and the row is marked as queued by a rescan at now, so
 * the scanner asks clamd again. blocked is untouched: a clean file stays
 * served and an infected one blocked while it waits. MR_ENOTFOUND when
 * missing or in another tenant; MR_ECONFLICT when it has no bytes
 * (truncated, or a provider's attachment). out (may be NULL; the caller
 * clears it) gets the attachment as the rescan left it. */
int mr_store_scan_rescan(struct mr_store *st, const char *tenant, int64_t id,
                         int64_t now, struct mr_attachment_view *out,
                         struct mr_error *err);

/* Many rescans: the attachments with bytes that match, queued like
 * mr_store_scan_rescan in transactions of at most `batch` rows (a listing
 * on a reader picks each batch by id, the write skips any queued since), so
 * the writer is never held long whatever the number. Pending ones never
 * match (they are queued already). */
#define MR_SCAN_RESCAN_BATCH 500
enum mr_scan_rescan_state {
    MR_SCAN_RESCAN_ERROR,    /* scan = error */
    MR_SCAN_RESCAN_CLEAN,    /* scan = clean */
    MR_SCAN_RESCAN_INFECTED, /* scan = infected */
    MR_SCAN_RESCAN_ALL,      /* those three, and never scanned (NULL) */
};
struct mr_scan_rescan_filter {
    const char *tenant;      /* NULL: every tenant */
    enum mr_scan_rescan_state state;
    int64_t received_after;  /* Unix ms: messages received at or after; 0 */
    int64_t limit;           /* at most this many; 0: no limit */
    bool dry_run;            /* count what would be queued, change nothing */
    int batch;               /* rows per transaction; 0: the default */
};
/* *count: how many were queued (or, dry_run, would be). On a failure after
 * some batches, those stay queued and *count says how many. */
int mr_store_scan_rescan_many(struct mr_store *st,
                              const struct mr_scan_rescan_filter *f,
                              int64_t now, int64_t *count,
                              struct mr_error *err);

/* How many attachments are pending (for /api/v1/health). */
int mr_store_scan_pending_count(struct mr_store *st, int64_t *n,
                                struct mr_error *err);

/* A listing of deliveries, oldest first (by id), after id `after`. */
struct mr_delivery_filter {
    const char *tenant;     /* NULL: every tenant */
    const char *state;      /* NULL: any; else pending, delivered, dead */
    int64_t webhook_id;     /* 0: any */
    int64_t after;          /* ids above this */
    int limit;              /* 1..MR_EVENTS_LIMIT_MAX */
};
int mr_store_delivery_list(struct mr_store *st,
                           const struct mr_delivery_filter *f,
                           struct mr_webhook_delivery **out, size_t *n,
                           struct mr_error *err);
/* One delivery of tenant (NULL: any). MR_ENOTFOUND. */
int mr_store_delivery_get(struct mr_store *st, const char *tenant, int64_t id,
                          struct mr_webhook_delivery *out,
                          struct mr_error *err);
/* A dead or delivered delivery back to pending, due now, attempts 0
 * (the same event, so the same webhook-id). MR_ECONFLICT when it is
 * pending already, MR_ENOTFOUND. out (may be NULL; the caller clears it)
 * gets the row as the redrive left it, before any new attempt. */
int mr_store_delivery_redrive(struct mr_store *st, const char *tenant,
                              int64_t id, struct mr_webhook_delivery *out,
                              struct mr_error *err);

/* ---- numbers for /metrics --------------------------------------------- */

/* ---- sanitizing stored HTML again (src/store/content.c) ---------------- */

/* A message whose html_sanitized is missing or older than a version. */
struct mr_stale_html {
    int64_t row;
    char *tenant;
    char *event_json; /* the stored event: html, attachments, ... */
};
void mr_stale_html_clear(struct mr_stale_html *s);

/* Up to max messages with an HTML body whose sanitized body is missing or
 * was made by a sanitizer older than version, with row > after, in row
 * order; *n gets how many (0 at the end). out has max slots. */
int mr_store_stale_html(struct mr_store *st, int version, int64_t after,
                        size_t max, struct mr_stale_html *out, size_t *n,
                        struct mr_error *err);
/* Stores a message's new sanitized body (NULL: none could be made), the
 * version that made it and the event JSON that carries it. */
int mr_store_set_html_sanitized(struct mr_store *st, int64_t row,
                                const char *html_sanitized, int version,
                                const char *event_json, struct mr_error *err);

struct mr_store_stats {
    int64_t jobs_ready;
    int64_t jobs_leased;
    int64_t jobs_dead;
    int64_t messages;
    int64_t tickets;
    /* The outbound queues, every tenant: rows waiting, and rows at their
     * dead end (webhook and notification dead, mail failed, scan error). */
    int64_t webhook_pending, webhook_dead;
    int64_t notify_pending, notify_dead;
    int64_t mail_pending, mail_failed;
    int64_t scan_pending, scan_error;
};
int mr_store_stats(struct mr_store *st, struct mr_store_stats *out,
                   struct mr_error *err);

/* ---- live readers (sqlite.c, events.c) -------------------------------- */

/* A number that grows after every transaction the writer commits, once
 * the commit is visible to read connections. A live reader notes it,
 * reads, and sleeps in mr_store_commit_wait until it changes: whatever
 * committed after the note is then seen by its next read. */
uint64_t mr_store_commit_gen(struct mr_store *st);
/* Waits until the generation differs from seen, or timeout_ms passes;
 * returns the generation then. */
uint64_t mr_store_commit_wait(struct mr_store *st, uint64_t seen,
                              int timeout_ms);
/* The seq of tenant's newest event (0 when it has none): a cursor that
 * starts a reader at "from now on". */
int mr_store_events_head(struct mr_store *st, const char *tenant, int64_t *seq,
                         struct mr_error *err);

#endif
