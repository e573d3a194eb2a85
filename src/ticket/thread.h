/* SPDX-License-Identifier: Apache-2.0 */
/*
 * thread.h - which ticket a message belongs to, decided in one documented
 * order (docs/threading.md) and recorded on the message as `threaded_by`.
 *
 *   duplicate    its message_id is stored for the tenant already
 *   token        a ticket token in a recipient (support+t1042.<mac>@...)
 *                or a subject tag [#1042] that verifies
 *   in_reply_to  In-Reply-To names a message (or thread_ref) we know
 *   references   References, newest first, names one
 *   subject      same requester, same normalized subject, a ticket that is
 *                not closed and was updated within the window
 *   new          none of the above
 *
 * The decision is pure logic over a lookup interface: the store calls it
 * inside its write transaction with lookups on that transaction, so two
 * replies racing for one thread cannot both open a ticket. Nothing here
 * does I/O or keeps state; nothing ever looks outside msg->tenant.
 *
 * Safety (research/pitfalls.md 4, 7): a sender who is not a participant of
 * the ticket (its requester, an address on an earlier message's From/To/Cc,
 * or one of the tenant's own addresses) may join only through a verified
 * token; through headers the join is recorded `unverified` (no reopen, no
 * automatic actions), and the subject fallback never admits them. The
 * store must not count the addresses of a message that joined unverified
 * as participants, or one forged reply would verify the next.
 *
 * Status: a verified human reply (auto_kind NONE) reopens a solved ticket;
 * a reply to a closed ticket opens a new one, linked to it when the sender
 * is verified; auto-replies and bounces are attached to the closed ticket
 * unchanged. A
 * bounce joins the ticket of the message it reports on as a delivery
 * failure and never opens a ticket: when nothing matches, the decision is
 * `new` with ticket_id 0 and delivery_failure set, and the store files it
 * as an orphan bounce. docs/threading.md has the whole rule book.
 *
 * Limits: at most MR_THREAD_MAX_REFS References (the newest) and
 * MR_THREAD_MAX_RECIPIENTS recipients are looked at; subject work is
 * linear in the subject and capped by the output size.
 *
 * Ownership: strings in a decision are copied into its fixed buffers.
 */
#ifndef MR_THREAD_H
#define MR_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define MR_THREAD_MAX_REFS 100        /* References ids, newest first */
#define MR_THREAD_MAX_RECIPIENTS 256  /* recipients searched for a token */
#define MR_THREAD_TOKEN_MAX 32        /* "t" 18 digits "." 10 chars, NUL */
#define MR_THREAD_SECRET_MIN 16       /* shorter secrets disable tokens */
#define MR_THREAD_SUBJECT_MAX 256     /* normalized subject, with the NUL */
#define MR_THREAD_SUBJECT_WINDOW_MS (14LL * 24 * 3600 * 1000)

enum mr_thread_by {
    MR_THREAD_NEW = 0,
    MR_THREAD_DUPLICATE,
    MR_THREAD_TOKEN,
    MR_THREAD_IN_REPLY_TO,
    MR_THREAD_REFERENCES,
    MR_THREAD_SUBJECT,
};
/* "new", "duplicate", "token", "in_reply_to", "references", "subject" */
const char *mr_thread_by_name(enum mr_thread_by by);

enum mr_auto_kind {
    MR_AUTO_NONE = 0,
    MR_AUTO_AUTOREPLY,
    MR_AUTO_BOUNCE,
    MR_AUTO_LIST,
};

/* What threading reads of a message. Addresses are lower-cased. */
struct mr_thread_msg {
    const char *tenant;
    const char *message_id;
    bool message_id_derived;
    const char *in_reply_to;            /* may be NULL */
    const char *const *references;      /* oldest first */
    size_t nreferences;
    const char *subject;                /* may be NULL */
    const char *from;                   /* sender address; may be NULL */
    const char *const *recipients;      /* envelope rcpt, To, Cc: tokens */
    size_t nrecipients;
    enum mr_auto_kind auto_kind;
    const char *bounce_original_id;     /* bounces: the reported message */
    int64_t now;                        /* Unix ms */
};

/* A ticket as threading sees it. */
struct mr_thread_ticket {
    int64_t id;
    int64_t number;
    char status[16];                    /* new, open, pending, solved, closed */
    int64_t updated_at;
};

/* Lookups, all within one tenant. Each returns 0 (found), MR_ENOTFOUND, or
 * another MR_E* code that aborts the decision. */
struct mr_thread_lookup {
    void *ctx;
    /* 0 with *yes set: message_id is STORED as a message (a duplicate key).
     * An id that is only referenced (a thread_ref) is not. */
    int (*message_exists)(void *ctx, const char *tenant,
                          const char *message_id, bool *yes);
    /* A stored message's or a thread_ref's ticket. */
    int (*ticket_of_message_id)(void *ctx, const char *tenant,
                                const char *message_id, int64_t *ticket_id);
    int (*ticket_by_id)(void *ctx, const char *tenant, int64_t id,
                        struct mr_thread_ticket *out);
    int (*ticket_by_number)(void *ctx, const char *tenant, int64_t number,
                            struct mr_thread_ticket *out);
    /* 0 with *yes set; addr is lower-cased. */
    int (*is_participant)(void *ctx, const char *tenant, int64_t ticket_id,
                          const char *addr, bool *yes);
    /* The most recently updated ticket of this requester whose normalized
     * subject is norm, not closed, updated at or after `since`. The store
     * normalizes with mr_thread_normalize_subject and a cap of
     * MR_THREAD_SUBJECT_MAX, so both sides cut alike. */
    int (*subject_match)(void *ctx, const char *tenant, const char *requester,
                         const char *norm, int64_t since, int64_t *ticket_id);
};

struct mr_thread_config {
    const unsigned char *secret;        /* token MAC key (per installation);
                                           under MR_THREAD_SECRET_MIN bytes
                                           no token is made or accepted */
    size_t secret_len;
    int64_t subject_window_ms;          /* 0: 14 days; < 0: no fallback */
};

struct mr_thread_decision {
    enum mr_thread_by by;               /* NEW also for closed -> linked */
    int64_t ticket_id;                  /* 0: open a new ticket (or, with
                                           delivery_failure, an orphan
                                           bounce); duplicate: its ticket */
    bool unverified;                    /* joined, sender not a participant */
    bool add_participant;               /* sender becomes a participant */
    bool reopen;                        /* solved -> open (a human reply) */
    int64_t linked_ticket_id;           /* closed: new ticket, linked here */
    bool delivery_failure;              /* a bounce, as a system note */
    char detail[160];                   /* what matched, for the audit */
};

int mr_thread_decide(const struct mr_thread_config *cfg,
                     const struct mr_thread_lookup *lk,
                     const struct mr_thread_msg *msg,
                     struct mr_thread_decision *out, struct mr_error *err);

/* The subject without reply/forward prefixes (any language clients use,
 * stacked, with counters like Re[2] and NBSP before the colon), list tags
 * ([EXTERNAL], [list-name]) and ticket tags, case-folded and with runs of
 * white space collapsed. Always NUL-terminates out (cap > 0). */
void mr_thread_normalize_subject(const char *subject, char *out, size_t cap);

/* The token for a ticket: "t<number>.<mac>" (the mac binds tenant and
 * number), to put after '+' in the reply address. out is "" when the
 * secret is too short, number < 1, or cap < MR_THREAD_TOKEN_MAX. */
void mr_thread_token(const struct mr_thread_config *cfg, const char *tenant,
                     int64_t number, char *out, size_t cap);
/* The subject tag with the same mac, "[#<number>-<mac>]", which verifies
 * without the sender being a participant; "" as for mr_thread_token
 * (cap >= MR_THREAD_TOKEN_MAX + 2 suffices). */
void mr_thread_subject_tag(const struct mr_thread_config *cfg,
                           const char *tenant, int64_t number, char *out,
                           size_t cap);
/* The ticket number of a token found in an address's local part after a
 * '+', if its MAC verifies for tenant; MR_ENOTFOUND otherwise. */
int mr_thread_token_parse(const struct mr_thread_config *cfg,
                          const char *tenant, const char *addr,
                          int64_t *number);

#endif
