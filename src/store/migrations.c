/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrations.c - the SQLite schema, as numbered migrations.
 *
 * Migration N is the SQL text at migrations[N - 1]; a database records the
 * versions applied in schema_version(version, applied_at). Released
 * migrations are never edited: a change to the schema is a new entry at the
 * end. They are C strings rather than .sql files so that the binary carries
 * its schema and needs nothing installed beside it.
 *
 * All migrations run inside one transaction (the caller's), so a crash or a
 * failure half way leaves the database at the version it had.
 *
 * Times are Unix milliseconds. Ids that leave the database (job, ticket,
 * message, attachment, event, token ids) are AUTOINCREMENT so that an id is
 * never handed out twice, even after old rows are purged; events.seq is the
 * outbox cursor and must only grow.
 */
#include "store/store-private.h"

#include <stdio.h>

static const char MIGRATION_1[] =
    /* The intake queue: one row per accepted message and tenant. */
    "CREATE TABLE jobs ("
    "  id          INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant      TEXT NOT NULL,"
    "  channel     TEXT NOT NULL,"
    "  raw_sha256  TEXT,"
    "  raw_size    INTEGER NOT NULL DEFAULT 0,"
    "  payload     TEXT NOT NULL DEFAULT '{}',"
    "  received_at INTEGER NOT NULL,"
    "  state       TEXT NOT NULL DEFAULT 'ready'"
    "              CHECK (state IN ('ready', 'leased', 'done', 'dead')),"
    "  attempts    INTEGER NOT NULL DEFAULT 0,"
    "  not_before  INTEGER NOT NULL DEFAULT 0,"
    "  lease_until INTEGER NOT NULL DEFAULT 0,"
    "  worker      TEXT,"
    "  last_error  TEXT,"
    "  dedupe_key  TEXT,"
    "  created_at  INTEGER NOT NULL,"
    "  updated_at  INTEGER NOT NULL"
    ");"
    /* Partial: jobs without a key (most of them) cost no index entry. */
    "CREATE UNIQUE INDEX jobs_dedupe ON jobs (tenant, dedupe_key)"
    "  WHERE dedupe_key IS NOT NULL;"
    /* Claim order (state, then id), dlq listing and the gauges. */
    "CREATE INDEX jobs_state ON jobs (state, id);"

    "CREATE TABLE tickets ("
    "  id            INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant        TEXT NOT NULL,"
    "  number        INTEGER NOT NULL,"
    "  external_id   TEXT,"
    "  requester     TEXT,"
    "  subject       TEXT,"
    "  status        TEXT NOT NULL DEFAULT 'new' CHECK (status IN"
    "                ('new', 'open', 'pending', 'solved', 'closed')),"
    "  priority      TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN"
    "                ('low', 'normal', 'high', 'urgent')),"
    "  queue         TEXT,"
    "  assignee      TEXT,"
    "  tags          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),"
    "  applied_rules TEXT NOT NULL DEFAULT '[]'"
    "                CHECK (json_valid(applied_rules)),"
    "  created_at    INTEGER NOT NULL,"
    "  updated_at    INTEGER NOT NULL,"
    "  first_response_at INTEGER,"
    "  solved_at     INTEGER,"
    "  UNIQUE (tenant, number)"
    ");"
    /* Listing: newest updated first, keyset paging on (updated_at, id). */
    "CREATE INDEX tickets_recent ON tickets (tenant, updated_at, id);"

    "CREATE TABLE messages ("
    "  id                 INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant             TEXT NOT NULL,"
    "  ticket_id          INTEGER NOT NULL REFERENCES tickets (id),"
    "  message_id         TEXT NOT NULL,"
    "  message_id_derived INTEGER NOT NULL DEFAULT 0,"
    "  in_reply_to        TEXT,"
    "  direction          TEXT NOT NULL DEFAULT 'inbound'"
    "                     CHECK (direction IN ('inbound', 'outbound')),"
    "  channel            TEXT,"
    "  inbox              TEXT,"
    "  from_email         TEXT,"
    "  from_name          TEXT,"
    "  subject            TEXT,"
    "  body_text          TEXT,"
    "  body_html          TEXT,"
    "  event_json         TEXT,"
    "  raw_blob           TEXT,"
    "  date               INTEGER,"
    "  received_at        INTEGER NOT NULL,"
    /* The idempotency key of the whole pipeline (DESIGN.md). */
    "  UNIQUE (tenant, message_id)"
    ");"
    "CREATE INDEX messages_ticket ON messages (ticket_id, received_at, id);"

    "CREATE TABLE attachments ("
    "  id            INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant        TEXT NOT NULL,"
    "  message_row   INTEGER NOT NULL REFERENCES messages (id),"
    "  filename      TEXT,"
    "  safe_filename TEXT,"
    "  content_type  TEXT,"
    "  disposition   TEXT,"
    "  content_id    TEXT,"
    "  size          INTEGER NOT NULL DEFAULT 0,"
    "  sha256        TEXT"
    ");"
    "CREATE INDEX attachments_message ON attachments (message_row);"

    /* Every message id a stored message carries or references -> its
     * ticket, so that threading finds a ticket by any of them. */
    "CREATE TABLE thread_refs ("
    "  tenant     TEXT NOT NULL,"
    "  message_id TEXT NOT NULL,"
    "  ticket_id  INTEGER NOT NULL REFERENCES tickets (id),"
    "  PRIMARY KEY (tenant, message_id)"
    ") WITHOUT ROWID;"

    /* The outbox: seq is the polling cursor, strictly increasing. */
    "CREATE TABLE events ("
    "  seq         INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant      TEXT NOT NULL,"
    "  type        TEXT NOT NULL,"
    "  ticket_id   INTEGER,"
    "  message_row INTEGER,"
    "  payload     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),"
    "  created_at  INTEGER NOT NULL"
    ");"
    "CREATE INDEX events_tenant ON events (tenant, seq);"

    /* API tokens by the SHA-256 of their secret; the secret is never
     * stored. */
    "CREATE TABLE tokens ("
    "  id           INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant       TEXT NOT NULL,"
    "  role         TEXT NOT NULL"
    "               CHECK (role IN ('admin', 'agent', 'ingest', 'read')),"
    "  hash         TEXT NOT NULL UNIQUE,"
    "  prefix       TEXT NOT NULL DEFAULT '',"
    "  label        TEXT,"
    "  created_at   INTEGER NOT NULL,"
    "  last_used_at INTEGER NOT NULL DEFAULT 0,"
    "  revoked      INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX tokens_tenant ON tokens (tenant, id);";

/* Threading (issue 4): participants, the normalized subject for the
 * subject fallback, what threading decided per message, the auto-reply /
 * bounce classification, links from a closed ticket's successor, and the
 * installation's random secret for ticket tokens. */
static const char MIGRATION_2[] =
    "ALTER TABLE tickets ADD COLUMN subject_norm TEXT;"
    "ALTER TABLE tickets ADD COLUMN linked_ticket_id INTEGER;"
    "UPDATE tickets SET subject_norm = lower(trim(coalesce(subject, '')));"
    "CREATE INDEX tickets_subject ON tickets"
    "  (tenant, requester, subject_norm, updated_at);"
    "CREATE INDEX tickets_number ON tickets (tenant, number);"
    "CREATE TABLE ticket_participants ("
    "  tenant    TEXT NOT NULL,"
    "  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
    "  address   TEXT NOT NULL,"
    "  role      TEXT NOT NULL CHECK (role IN ('requester', 'cc')),"
    "  PRIMARY KEY (ticket_id, address)"
    ");"
    "INSERT OR IGNORE INTO ticket_participants (tenant, ticket_id, address,"
    "  role) SELECT tenant, id, requester, 'requester' FROM tickets"
    "  WHERE requester IS NOT NULL;"
    "ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';"
    "ALTER TABLE messages ADD COLUMN threaded_by TEXT NOT NULL DEFAULT 'new';"
    "ALTER TABLE messages ADD COLUMN thread_detail TEXT;"
    "ALTER TABLE messages ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN auto_json TEXT;"
    "ALTER TABLE messages ADD COLUMN content_key TEXT;"
    "ALTER TABLE attachments ADD COLUMN scan TEXT;"
    "CREATE TABLE settings ("
    "  key   TEXT PRIMARY KEY,"
    "  value BLOB NOT NULL"
    ");"
    "INSERT INTO settings (key, value) VALUES ('thread_secret',"
    "  randomblob(32));";

/* Raw messages kept in the database (storage.inline_max): written in the
 * enqueue transaction, so a small message costs one durable write instead
 * of a blob file, its fsync and its folder's fsync (docs/store.md). */
static const char MIGRATION_3[] =
    "CREATE TABLE raw_messages ("
    "  sha256 TEXT PRIMARY KEY,"
    "  data   BLOB NOT NULL"
    ");";

/* Attachment safety (issue 5): what libmagic found, the policy's verdict
 * and whether the attachment was over a size limit (then no blob: sha256
 * is NULL, size is the decoded size). Rows stored before this were never
 * judged; the download route judges them again by name and type. The
 * index serves the inline image route (tenant + sha256). */
static const char MIGRATION_4[] =
    "ALTER TABLE attachments ADD COLUMN detected_type TEXT;"
    "ALTER TABLE attachments ADD COLUMN type_mismatch INTEGER NOT NULL"
    "  DEFAULT 0;"
    "ALTER TABLE attachments ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attachments ADD COLUMN blocked_reason TEXT;"
    "ALTER TABLE attachments ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX attachments_sha256 ON attachments (tenant, sha256);";

/* tickets_number (migration 2) repeats the index that UNIQUE (tenant,
 * number) already made: every new ticket paid for updating both. */
static const char MIGRATION_5[] = "DROP INDEX IF EXISTS tickets_number;";

/* Safe content (issue 5): the sanitized HTML and the visible reply beside
 * the original body, with the version of the sanitizer's rules that made
 * it, so bodies can be sanitized again when the rules tighten. */
static const char MIGRATION_6[] =
    "ALTER TABLE messages ADD COLUMN html_sanitized TEXT;"
    "ALTER TABLE messages ADD COLUMN sanitizer_version INTEGER;"
    "ALTER TABLE messages ADD COLUMN stripped_text TEXT;";

/* Consumer groups for REST polling (issue 7): a group's watermark (every
 * event up to acked_seq is processed) and its outstanding leases, each a
 * batch (after_seq, last_seq] of the tenant's events held by one claimer
 * until lease_until. Batches of one group are contiguous and never
 * overlap, so two claimers never hold the same event. */
static const char MIGRATION_7[] =
    "CREATE TABLE consumer_groups ("
    "  tenant     TEXT NOT NULL,"
    "  name       TEXT NOT NULL,"
    "  acked_seq  INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (tenant, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE consumer_leases ("
    "  id          INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant      TEXT NOT NULL,"
    "  name        TEXT NOT NULL,"
    "  after_seq   INTEGER NOT NULL,"
    "  last_seq    INTEGER NOT NULL,"
    "  lease_until INTEGER NOT NULL,"
    "  acked       INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (tenant, name, last_seq)"
    ");";

/* Rules in the server (issue 6): the names of the rules whose conditions
 * held for each message (the ticket keeps the decisions, applied_rules). */
static const char MIGRATION_8[] =
    "ALTER TABLE messages ADD COLUMN matched_rules TEXT"
    " CHECK (matched_rules IS NULL OR json_valid(matched_rules));";

/* Rules in the server, continued (issue 6). A message the rules ignore
 * makes no ticket, yet is kept for admins to see: messages.ticket_id is
 * NOT NULL (and every ticket read joins on it), so ignored mail gets a
 * table of its own instead of a rebuilt messages table. UNIQUE (tenant,
 * message_id) keeps a second copy a duplicate, as for messages. The
 * ticket's fields are what the rules extracted or set (set_field,
 * extract): one JSON object, merged key by key. */
static const char MIGRATION_9[] =
    "CREATE TABLE ignored_messages ("
    "  id            INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant        TEXT NOT NULL,"
    "  message_id    TEXT NOT NULL,"
    "  channel       TEXT,"
    "  inbox         TEXT,"
    "  from_email    TEXT,"
    "  subject       TEXT,"
    "  event_json    TEXT,"
    "  raw_blob      TEXT,"
    "  content_key   TEXT,"
    "  applied_rules TEXT NOT NULL DEFAULT '[]'"
    "                CHECK (json_valid(applied_rules)),"
    "  matched_rules TEXT NOT NULL DEFAULT '[]'"
    "                CHECK (json_valid(matched_rules)),"
    "  received_at   INTEGER NOT NULL,"
    "  created_at    INTEGER NOT NULL,"
    "  UNIQUE (tenant, message_id)"
    ");"
    "ALTER TABLE tickets ADD COLUMN fields TEXT NOT NULL DEFAULT '{}'"
    " CHECK (json_valid(fields));";

/* Outbound webhooks (src/store/webhooks.c): per subscription (tenant, url)
 * a cursor over the outbox and whether the receiver disabled it (410);
 * one delivery row per (subscription, event). */
#define MIGRATION_10                                                           \
    "CREATE TABLE webhook_subs ("                                              \
    "  tenant      TEXT NOT NULL,"                                             \
    "  url         TEXT NOT NULL,"                                             \
    "  cursor      INTEGER NOT NULL,"                                          \
    "  disabled_at INTEGER,"                                                   \
    "  PRIMARY KEY (tenant, url)"                                              \
    ");"                                                                       \
    "CREATE TABLE webhook_deliveries ("                                        \
    "  id              INTEGER PRIMARY KEY,"                                   \
    "  tenant          TEXT NOT NULL,"                                         \
    "  url             TEXT NOT NULL,"                                         \
    "  seq             INTEGER NOT NULL,"                                      \
    "  state           TEXT NOT NULL DEFAULT 'pending'"                        \
    "                  CHECK (state IN ('pending', 'delivered', 'dead')),"     \
    "  attempts        INTEGER NOT NULL DEFAULT 0,"                            \
    "  next_attempt_at INTEGER NOT NULL,"                                      \
    "  last_error      TEXT,"                                                  \
    "  created_at      INTEGER NOT NULL,"                                      \
    "  updated_at      INTEGER NOT NULL,"                                      \
    "  UNIQUE (tenant, url, seq)"                                              \
    ");"                                                                       \
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries"                \
    " (next_attempt_at) WHERE state = 'pending';"

/* Agents' changes and short-lived tokens (issue 7). tickets.version
 * grows with every change to a ticket (a reply, a rule, an agent's
 * PATCH), so that an agent's If-Match names exactly the state it saw.
 * tokens.expires_at (NULL: never) and parent_id (the long-lived token a
 * short-lived one was exchanged for; revoking it ends the child too). */
static const char MIGRATION_11[] =
    "ALTER TABLE tickets ADD COLUMN version INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE tokens ADD COLUMN expires_at INTEGER;"
    "ALTER TABLE tokens ADD COLUMN parent_id INTEGER;"
    "CREATE INDEX tokens_expires ON tokens (expires_at)"
    "  WHERE expires_at IS NOT NULL;";
/* Outbound mail (src/store/outbound.c, docs/outbound.md): the queue the
 * sender thread drains, written by the delivering transaction; and per
 * (tenant, sender address) the time of the last automatic
 * acknowledgement, which that same transaction reads and moves, so that
 * racing workers still send at most one per sender per window. */
#define MIGRATION_12                                                           \
    "CREATE TABLE outbound_mail ("                                             \
    "  id              INTEGER PRIMARY KEY AUTOINCREMENT,"                     \
    "  tenant          TEXT NOT NULL,"                                         \
    "  kind            TEXT NOT NULL DEFAULT 'auto_ack',"                      \
    "  ticket_id       INTEGER,"                                               \
    "  message_id      TEXT,"                                                  \
    "  mail_from       TEXT NOT NULL DEFAULT '',"                              \
    "  rcpt_to         TEXT NOT NULL,"                                         \
    "  message         TEXT NOT NULL,"                                         \
    "  state           TEXT NOT NULL DEFAULT 'pending'"                        \
    "                  CHECK (state IN ('pending', 'sent', 'failed')),"        \
    "  attempts        INTEGER NOT NULL DEFAULT 0,"                            \
    "  next_attempt_at INTEGER NOT NULL,"                                      \
    "  last_error      TEXT,"                                                  \
    "  created_at      INTEGER NOT NULL,"                                      \
    "  updated_at      INTEGER NOT NULL"                                       \
    ");"                                                                       \
    "CREATE INDEX outbound_mail_due ON outbound_mail"                          \
    " (next_attempt_at, id) WHERE state = 'pending';"                          \
    "CREATE TABLE auto_ack_senders ("                                          \
    "  tenant      TEXT NOT NULL,"                                             \
    "  address     TEXT NOT NULL,"                                             \
    "  last_ack_at INTEGER NOT NULL,"                                          \
    "  PRIMARY KEY (tenant, address)"                                          \
    ") WITHOUT ROWID;"
/* Integrations (src/store/notifications.c, docs/integrations.md): one row
 * per (integration, ticket, message) that a rule's notify action named,
 * written by the delivering transaction; and what the integrations made
 * on a ticket (an issue's URL, a Jira key), keyed by integration name. */
#define MIGRATION_13                                                           \
    "CREATE TABLE notifications ("                                             \
    "  id              INTEGER PRIMARY KEY,"                                   \
    "  tenant          TEXT NOT NULL,"                                         \
    "  integration     TEXT NOT NULL,"                                         \
    "  kind            TEXT,"                                                  \
    "  ticket_id       INTEGER NOT NULL,"                                      \
    "  message_row     INTEGER NOT NULL,"                                      \
    "  state           TEXT NOT NULL DEFAULT 'pending'"                        \
    "                  CHECK (state IN ('pending', 'sent', 'dead')),"          \
    "  attempts        INTEGER NOT NULL DEFAULT 0,"                            \
    "  next_attempt_at INTEGER NOT NULL,"                                      \
    "  last_error      TEXT,"                                                  \
    "  external_ref    TEXT,"                                                  \
    "  created_at      INTEGER NOT NULL,"                                      \
    "  updated_at      INTEGER NOT NULL,"                                      \
    "  UNIQUE (tenant, integration, ticket_id, message_row)"                   \
    ");"                                                                       \
    "CREATE INDEX notifications_due ON notifications"                          \
    " (next_attempt_at) WHERE state = 'pending';"                              \
    "ALTER TABLE tickets ADD COLUMN links TEXT NOT NULL DEFAULT '{}'"          \
    " CHECK (json_valid(links));"
/* Antivirus (clamd, src/scan/): the verdict's details beside
 * attachments.scan (migration 2), and the scanner's retry state. A row is
 * pending from its delivery until the scanner records a verdict; the
 * partial index keeps finding the due ones cheap however many attachments
 * were ever scanned. */
static const char MIGRATION_14[] =
    "ALTER TABLE attachments ADD COLUMN scan_signature TEXT;"
    "ALTER TABLE attachments ADD COLUMN scan_error TEXT;"
    "ALTER TABLE attachments ADD COLUMN scanned_at INTEGER;"
    "ALTER TABLE attachments ADD COLUMN scan_attempts INTEGER NOT NULL"
    "  DEFAULT 0;"
    "ALTER TABLE attachments ADD COLUMN scan_next_at INTEGER NOT NULL"
    "  DEFAULT 0;"
    "CREATE INDEX attachments_scan_pending ON attachments (scan_next_at, id)"
    "  WHERE scan = 'pending';";
/* Webhook subscriptions managed by the API (issue 7; docs/webhooks.md).
 * A subscription gets an id that deliveries point to, its filter and
 * secrets (JSON arrays), who owns it (`config`: rewritten from the file at
 * every serve start; `api`) and why it was disabled. The tables of
 * migration 10 are rebuilt under the same names: their rows are kept
 * (subscriptions as inactive `config` rows until serve fills in their
 * secrets from the file; deliveries with the type and ticket of their
 * event, which the due query orders by). */
#define MR__NOW_MS "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
static const char MIGRATION_15[] =
    "ALTER TABLE webhook_subs RENAME TO webhook_subs_v10;"
    "ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_v10;"
    "DROP INDEX webhook_deliveries_due;"
    "CREATE TABLE webhook_subs ("
    "  id              INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant          TEXT NOT NULL,"
    "  url             TEXT NOT NULL,"
    "  events          TEXT CHECK (events IS NULL OR json_valid(events)),"
    "  secrets         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(secrets)),"
    "  active          INTEGER NOT NULL DEFAULT 1,"
    "  source          TEXT NOT NULL DEFAULT 'api'"
    "                  CHECK (source IN ('config', 'api')),"
    "  cursor          INTEGER NOT NULL,"
    "  disabled_at     INTEGER,"
    "  disabled_reason TEXT,"
    "  created_at      INTEGER NOT NULL,"
    "  updated_at      INTEGER NOT NULL,"
    "  UNIQUE (tenant, url)"
    ");"
    "INSERT INTO webhook_subs (tenant, url, secrets, active, source, cursor,"
    "  disabled_at, disabled_reason, created_at, updated_at)"
    "  SELECT tenant, url, '[]', 0, 'config', cursor, disabled_at,"
    "  CASE WHEN disabled_at IS NULL THEN NULL"
    "  ELSE 'the receiver answered 410 Gone' END, " MR__NOW_MS ", " MR__NOW_MS
    "  FROM webhook_subs_v10 ORDER BY tenant, url;"
    "CREATE TABLE webhook_deliveries ("
    "  id              INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant          TEXT NOT NULL,"
    "  webhook_id      INTEGER NOT NULL REFERENCES webhook_subs(id),"
    "  seq             INTEGER NOT NULL,"
    "  event_type      TEXT NOT NULL,"
    "  ticket_id       INTEGER,"
    "  state           TEXT NOT NULL DEFAULT 'pending'"
    "                  CHECK (state IN ('pending', 'delivered', 'dead')),"
    "  attempts        INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL,"
    "  last_error      TEXT,"
    "  created_at      INTEGER NOT NULL,"
    "  updated_at      INTEGER NOT NULL,"
    "  UNIQUE (webhook_id, seq)"
    ");"
    "INSERT INTO webhook_deliveries (id, tenant, webhook_id, seq, event_type,"
    "  ticket_id, state, attempts, next_attempt_at, last_error, created_at,"
    "  updated_at)"
    "  SELECT d.id, d.tenant, s.id, d.seq, coalesce(e.type, 'unknown'),"
    "  nullif(e.ticket_id, 0), d.state, d.attempts, d.next_attempt_at,"
    "  d.last_error, d.created_at, d.updated_at"
    "  FROM webhook_deliveries_v10 d"
    "  JOIN webhook_subs s ON s.tenant = d.tenant AND s.url = d.url"
    "  LEFT JOIN events e ON e.seq = d.seq AND e.tenant = d.tenant;"
    "DROP TABLE webhook_deliveries_v10;"
    "DROP TABLE webhook_subs_v10;"
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries"
    " (next_attempt_at) WHERE state = 'pending';"
    /* Per-ticket order: the earliest pending delivery of a (subscription,
     * ticket) pair is found by this index. */
    "CREATE INDEX webhook_deliveries_order ON webhook_deliveries"
    " (webhook_id, ticket_id, seq) WHERE state = 'pending';"
    "CREATE INDEX webhook_deliveries_list ON webhook_deliveries"
    " (tenant, state, id);";

/* Releasing ignored mail (docs/rules.md, *Releasing*): who asked for a
 * release and the job that carries it (set together, once: a second
 * request is refused while either is set), and, written by the
 * delivering transaction that makes the message a ticket's, when it was
 * released and where it went (ticket and messages row; NULL ticket for an
 * unmatched bounce, which opens none). */
static const char MIGRATION_16[] =
    "ALTER TABLE ignored_messages ADD COLUMN release_job_id INTEGER;"
    "ALTER TABLE ignored_messages ADD COLUMN release_by TEXT;"
    "ALTER TABLE ignored_messages ADD COLUMN release_requested_at INTEGER;"
    "ALTER TABLE ignored_messages ADD COLUMN released_at INTEGER;"
    "ALTER TABLE ignored_messages ADD COLUMN released_ticket_id INTEGER;"
    "ALTER TABLE ignored_messages ADD COLUMN released_message_row INTEGER;";
/* Operators' views of the outbound queues (docs/api.md): listing one
 * state page by page walks (state, id), and /metrics counts the rows at
 * each queue's dead end on every scrape: partial indexes hold only those
 * rows, so neither reads the sent mail and notifications that pile up. */
#define MIGRATION_17                                                           \
    "CREATE INDEX outbound_mail_state ON outbound_mail (state, id);"           \
    "CREATE INDEX notifications_state ON notifications (state, id);"           \
    "CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (id)"          \
    " WHERE state = 'dead';"                                                   \
    "CREATE INDEX attachments_scan_error ON attachments (id)"                  \
    " WHERE scan = 'error';"
/* Rescans (docs/attachments.md): an operator may put an attachment back to
 * pending whatever its verdict. scan_previous keeps the verdict it had
 * (what is served meanwhile, and the `previous` of the next
 * attachment.scanned); scan_rescan_at says an operator queued it, so the
 * scanner asks clamd again instead of reusing a verdict for the same
 * bytes, and a verdict from a scan that was in flight when the rescan was
 * asked for is not taken for the rescan's. The next verdict clears both. */
#define MIGRATION_18                                                           \
    "ALTER TABLE attachments ADD COLUMN scan_previous TEXT;"                   \
    "ALTER TABLE attachments ADD COLUMN scan_rescan_at INTEGER;"

/* Fairness between subscriptions (docs/webhooks.md, *Concurrency,
 * ordering, waking*): the due query reads each subscription's oldest due
 * rows on their own, so that one subscription's backlog cannot fill the
 * sender's window; without this index that read sorts every pending row
 * of a subscription (tens of milliseconds per due query at 100,000). */
#define MIGRATION_19                                                           \
    "CREATE INDEX webhook_deliveries_sub_due ON webhook_deliveries"            \
    " (webhook_id, next_attempt_at) WHERE state = 'pending';"

static const char *const migrations[] = {
    MIGRATION_1,
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4,
    MIGRATION_5,
    MIGRATION_6,
    MIGRATION_7,
    MIGRATION_8,
    MIGRATION_9,
    MIGRATION_10,
    MIGRATION_11,
    MIGRATION_12,
    MIGRATION_13,
    MIGRATION_14,
    MIGRATION_15,
    MIGRATION_16,
    MIGRATION_17,
    MIGRATION_18,
    MIGRATION_19,
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static const char SQL_HAS_VERSION_TABLE[] =
    "SELECT count(*) FILTER (WHERE name = 'schema_version'),"
    "       count(*) FILTER (WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\')"
    "  FROM sqlite_schema WHERE type = 'table'";
static const char SQL_MAX_VERSION[] =
    "SELECT coalesce(max(version), 0) FROM schema_version";
static const char SQL_CREATE_VERSION_TABLE[] =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "  version    INTEGER PRIMARY KEY,"
    "  applied_at INTEGER NOT NULL)";
static const char SQL_RECORD_VERSION[] =
    "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)";

int mr__migrations_latest(void)
{
    return NMIGRATIONS;
}

int mr__schema_current(struct mr__conn *c, int *version, struct mr_error *err)
{
    *version = 0;
    sqlite3_stmt *s;
    int rc = mr__stmt(c, SQL_HAS_VERSION_TABLE, &s, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        int res = mr__sqlerr(c, rc, "cannot read the schema", err);
        mr__stmt_done(s);
        return res;
    }
    bool has_table = sqlite3_column_int(s, 0) > 0;
    bool has_others = sqlite3_column_int(s, 1) > 0;
    mr__stmt_done(s);
    if (!has_table) {
        /* Migrating a database that holds someone else's tables would mix
         * two schemas in one file. */
        if (has_others)
            return mr_error_set(err, MR_EINVAL,
                                "the database has tables but no "
                                "schema_version: not a mailroom database");
        return 0;
    }
    rc = mr__stmt(c, SQL_MAX_VERSION, &s, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(s, 0);
    int res = rc == SQLITE_ROW
                  ? 0
                  : mr__sqlerr(c, rc, "cannot read the schema version", err);
    mr__stmt_done(s);
    return res;
}

int mr__migrate_in_tx(struct mr__conn *c, int *from, int *to,
                      struct mr_error *err)
{
    /* Read again inside the transaction: another process may have migrated
     * since this one opened the database. */
    int cur = 0;
    int rc = mr__schema_current(c, &cur, err);
    if (rc < 0)
        return rc;
    if (from)
        *from = cur;
    if (to)
        *to = cur;
    if (cur > NMIGRATIONS)
        return mr_error_set(err, MR_EINVAL,
                            "database schema version %d is newer than this "
                            "mailroom supports (%d): upgrade mailroom",
                            cur, NMIGRATIONS);
    if (cur == NMIGRATIONS)
        return 0;
    char *msg = NULL;
    rc = sqlite3_exec(c->db, SQL_CREATE_VERSION_TABLE, NULL, NULL, &msg);
    for (int v = cur + 1; rc == SQLITE_OK && v <= NMIGRATIONS; v++) {
        rc = sqlite3_exec(c->db, migrations[v - 1], NULL, NULL, &msg);
        if (rc != SQLITE_OK)
            break;
        sqlite3_stmt *s;
        int res = mr__stmt(c, SQL_RECORD_VERSION, &s, err);
        if (res < 0)
            return res;
        sqlite3_bind_int(s, 1, v);
        sqlite3_bind_int64(s, 2, mr__store_now_ms());
        res = mr__stmt_exec(c, s, "cannot record the schema version", err);
        if (res < 0)
            return res;
        if (to)
            *to = v;
    }
    if (rc != SQLITE_OK) {
        int res = mr_error_set(err, rc == SQLITE_NOMEM ? MR_ENOMEM : MR_EIO,
                               "migration failed: %s",
                               msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return res;
    }
    return 0;
}
