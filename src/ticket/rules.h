/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.h - routing and priority rules (docs/rules.md): a YAML file of
 * per-tenant rules, compiled once, evaluated for every message.
 *
 * Loading (rules_load.c) checks the whole file against its schema and
 * reports every problem with its line and column (unknown keys are
 * errors); it compiles every regular expression with PCRE2 (JIT when the
 * platform allows it), folds every `contains` needle, loads the time
 * zones. The result, an mr_rules, is immutable: any number of threads may
 * evaluate against one at once, each with its own mr_rules_scratch (PCRE2
 * match data, folded copies of the text fields). A reload builds a new
 * mr_rules and swaps the pointer; the old one is freed when no evaluation
 * holds it any more (the caller's business, e.g. a reference count).
 *
 * Evaluation (rules_eval.c) is deterministic: the tenant's rules in file
 * order, each rule's actions in the order written, `stop: true` ends it.
 * A later action overrides an earlier one (queue, priority, assignee, a
 * field); tags accumulate. The trail of decisions ({rule, decision} in
 * the seed's style: "queue=finance", "priority=high", "tag+=vip") is what
 * the ticket stores as applied_rules. Evaluation does no I/O and, once
 * the scratch and result have grown to a message's size, no allocation.
 *
 * Regular expressions run with a match limit (and, when JIT is not
 * available, a depth and heap limit): a pattern that hits one counts as
 * no match and leaves a note in the trail, so a catastrophic pattern
 * costs a bounded amount of work, never a stalled worker.
 *
 * Ownership: mr_rules owns everything it holds. An mr_rules_msg only
 * borrows its strings. Strings in an mr_rules_result point into the
 * mr_rules evaluated or into the result itself, valid until the next
 * evaluation with that result or until either is freed.
 */
#ifndef MR_RULES_H
#define MR_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../config/config.h" /* struct mr_config_diags */
#include "../util/arena.h"
#include "../util/error.h"
#include "../util/json.h"
#include "thread.h" /* enum mr_auto_kind */

/* Bytes of subject, text or stripped_text that `contains` and regexes
 * look at: a rule about a 30 MB body is about its beginning. */
#define MR_RULES_SCAN_BYTES (1u << 20)
#define MR_RULES_MAX_RULES 10000       /* per file */
#define MR_RULES_DEFAULT_MATCH_LIMIT 100000
#define MR_RULES_DEFAULT_ACK_WINDOW_MS (24 * 3600 * 1000LL)

struct mr_rules;

struct mr_rules_options {
    const char *zoneinfo_dir; /* NULL: /usr/share/zoneinfo */
};

/* Compiles text (a whole rules file; source names it in messages, may be
 * NULL). On any problem returns MR_EINVAL with *out NULL and every
 * problem in diags (may be NULL; free with mr_config_diags_free); err
 * names the first one. opt may be NULL. */
int mr_rules_load(const char *text, size_t len, const char *source,
                  const struct mr_rules_options *opt, struct mr_rules **out,
                  struct mr_config_diags *diags, struct mr_error *err);

/* The same from a file; MR_EIO when it cannot be read. */
int mr_rules_load_file(const char *path, const struct mr_rules_options *opt,
                       struct mr_rules **out, struct mr_config_diags *diags,
                       struct mr_error *err);

void mr_rules_free(struct mr_rules **rs);

/* Tenants named in the file, in file order. */
size_t mr_rules_tenant_count(const struct mr_rules *rs);
const char *mr_rules_tenant_name(const struct mr_rules *rs, size_t i);
/* Rules of a tenant (0 when the file does not name it). */
size_t mr_rules_count(const struct mr_rules *rs, const char *tenant);
/* Whether any regex got the JIT (false under a platform that refuses
 * executable memory). */
bool mr_rules_jit(const struct mr_rules *rs);
/* Whether a condition reads previous_tickets (the caller may skip
 * counting the sender's tickets otherwise). */
bool mr_rules_uses_previous_tickets(const struct mr_rules *rs);
/* Whether any rule has auto_acknowledge (the caller may skip reading the
 * sender's last acknowledgement otherwise). */
bool mr_rules_uses_auto_ack(const struct mr_rules *rs);

/* Calls fn once per notify action (docs/rules.md) in the file: its
 * tenant, rule and subscriber name, in file order. For checking the names
 * against the configured integrations at load and reload. */
void mr_rules_each_notify(const struct mr_rules *rs,
                          void (*fn)(void *ctx, const char *tenant,
                                     const char *rule, const char *name),
                          void *ctx);

/* ---- the message as rules see it ------------------------------------ */

struct mr_rules_header {
    const char *name; /* lower-case */
    const char *value;
};

struct mr_rules_attachment {
    const char *content_type; /* lower-case type/subtype, or NULL */
    const char *filename;     /* may be NULL */
    uint64_t size;
};

struct mr_rules_msg {
    const char *tenant;
    /* To and Cc addresses (mailbox conditions also look at rcpt_to). */
    const char *const *recipients;
    size_t nrecipients;
    const char *const *rcpt_to; /* envelope recipients */
    size_t nrcpt_to;
    const char *from;      /* From address, NULL when none */
    const char *mail_from; /* envelope sender: "" null sender, NULL unknown */
    const char *subject, *text, *stripped_text; /* NULL when absent */
    /* In message order; a repeated field appears once per value, topmost
     * first (Authentication-Results depends on it). */
    const struct mr_rules_header *headers;
    size_t nheaders;
    enum mr_auto_kind auto_kind;
    const struct mr_rules_attachment *attachments;
    size_t nattachments;
    uint64_t size;     /* raw message bytes */
    bool is_new;       /* starts a ticket (threading's decision) */
    int64_t received_at;       /* Unix ms */
    int64_t previous_tickets;  /* the sender's earlier tickets */
    int64_t last_ack_at;       /* Unix ms of the last auto-acknowledgement
                                  to this sender in this tenant; 0: never */
};

/* Fills m from an event (docs/event.md) as the worker holds it: tenant,
 * recipients (to, cc), envelope (rcpt_to, mail_from), from, subject,
 * text, stripped_text, headers, auto.kind, attachments, received_at.
 * The caller sets size, is_new, previous_tickets and last_ack_at (the
 * event does not know them; they start as 0 / true). Strings are
 * borrowed from ev (which must outlive m); arrays go in arena. */
void mr_rules_msg_from_event(struct mr_rules_msg *m, const json_t *ev,
                             struct mr_arena *arena);

/* A raw message to the event the rules builder reads, as far as it can
 * be known without the server: parsed (mr_mime_parse), written and
 * loaded back as JSON, classified (auto.kind; the envelope sender is
 * unknown, Return-Path stands in). For `mailroom rules test` and the
 * benchmark; the worker has its own event. *out is a new reference.
 * Returns 0, or MR_EINVAL / MR_ELIMIT from the parser. */
int mr_rules_event_from_raw(const char *buf, size_t len, json_t **out,
                            struct mr_error *err);

/* ---- evaluating ----------------------------------------------------- */

struct mr_rules_scratch; /* per thread */
struct mr_rules_scratch *mr_rules_scratch_new(void);
void mr_rules_scratch_free(struct mr_rules_scratch **s);

struct mr_rules_decision {
    const char *rule;
    const char *decision; /* "queue=finance", "note=..." */
};

struct mr_rules_field {
    const char *name;
    const char *value;
};

struct mr_rules_result {
    const char *tenant;
    struct mr_rules_decision *decisions; /* the audit trail, in order */
    size_t ndecisions;
    const char **matched; /* names of the rules whose conditions held */
    size_t nmatched;
    /* Effective values; NULL / empty when no rule set them. */
    const char *queue, *priority, *assignee;
    const char **tags_add, **tags_remove; /* net: a tag is in one or none */
    size_t ntags_add, ntags_remove;
    struct mr_rules_field *fields; /* one per name, the last value */
    size_t nfields;
    bool ignore;
    const char *ack_template, *ack_text; /* NULL: no acknowledgement */
    const char *ack_subject;   /* the template's subject, or NULL */
    int64_t ack_window_ms;     /* the tenant's auto_ack_window */
    const char **notify;                 /* subscribers, deduplicated */
    size_t nnotify;
    /* Internal storage, reused from one evaluation to the next. */
    struct mr__rules_store *store;
};

void mr_rules_result_init(struct mr_rules_result *r);
void mr_rules_result_release(struct mr_rules_result *r);

/* Evaluates the rules of tenant (NULL: m->tenant) for m into r (reset
 * first). A tenant without rules gives an empty result. Returns 0;
 * MR_EINVAL only for a message that breaks the struct's contract. */
int mr_rules_eval(const struct mr_rules *rs, const char *tenant,
                  const struct mr_rules_msg *m, struct mr_rules_scratch *s,
                  struct mr_rules_result *r, struct mr_error *err);

/* {"tenant", "applied_rules": [{name, decision}], "matched": [..],
 *  "queue", "priority", "assignee", "tags_add", "tags_remove",
 *  "fields": {..}, "ignore", "auto_acknowledge": {template, text} | null,
 *  "notify": [..]} */
void mr_rules_result_write_json(const struct mr_rules_result *r,
                                struct mr_json *j);

/* Just the applied_rules array: what tickets.applied_rules stores. */
void mr_rules_trail_write_json(const struct mr_rules_result *r,
                               struct mr_json *j);

#endif
