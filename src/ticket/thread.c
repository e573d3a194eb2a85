/* SPDX-License-Identifier: Apache-2.0 */
/*
 * thread.c - which ticket a message joins, and the tokens that prove it.
 *
 * mr_thread_decide walks the documented order (duplicate, token, the
 * reported message of a bounce, the message's own id referenced by a
 * stored reply, In-Reply-To, References newest first, subject, new) and
 * stops at the first ticket found. Whatever found the ticket, one function
 * (settle) then applies the rules that keep strangers out and status
 * honest: the participant check, reopen, closed -> linked new ticket, the
 * bounce note. So every path obeys the same rules, and the order can be
 * read top to bottom in decide.
 *
 * Tokens: "t<number>.<mac>" in a recipient's local part after a '+', and
 * "[#<number>-<mac>]" in the subject, where mac is the first 10 base32
 * characters (50 bits) of HMAC-SHA256(secret, tenant "\0" number). Base32
 * in lower case survives MTAs that fold the case of local parts; the
 * compare is constant time (CRYPTO_memcmp), so the MAC cannot be found a
 * character at a time. A plain "[#1042]" carries no MAC: it counts only
 * when the sender is already a participant of #1042.
 */
#include "ticket/thread.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/span.h"

#define MAC_CHARS 10
/* Subject tags looked at in one subject; a subject of tags is hostile. */
#define MAX_SUBJECT_TAGS 8
/* How much of an id or address goes into the audit detail. */
#define DETAIL_ID 60

const char *mr_thread_by_name(enum mr_thread_by by)
{
    switch (by) {
    case MR_THREAD_NEW: return "new";
    case MR_THREAD_DUPLICATE: return "duplicate";
    case MR_THREAD_TOKEN: return "token";
    case MR_THREAD_IN_REPLY_TO: return "in_reply_to";
    case MR_THREAD_REFERENCES: return "references";
    case MR_THREAD_SUBJECT: return "subject";
    }
    return "new";
}

/* ---- tokens ---------------------------------------------------------- */

static bool secret_ok(const struct mr_thread_config *cfg)
{
    return cfg != NULL && cfg->secret != NULL &&
           cfg->secret_len >= MR_THREAD_SECRET_MIN;
}

/* The mac of (tenant, number) as MAC_CHARS lower-case base32 characters
 * (RFC 4648 alphabet). False when HMAC is unavailable. */
static bool token_mac(const struct mr_thread_config *cfg, const char *tenant,
                      int64_t number, char mac[MAC_CHARS])
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char msg[512], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t tl = strlen(tenant);
    int nl;

    if (tl > sizeof msg - 32)
        return false;
    memcpy(msg, tenant, tl);
    msg[tl] = '\0';
    nl =
        snprintf((char *)msg + tl + 1, sizeof msg - tl - 1, "%" PRId64, number);
    if (nl <= 0)
        return false;
    if (HMAC(EVP_sha256(), cfg->secret, (int)cfg->secret_len, msg,
             tl + 1 + (size_t)nl, md, &mdlen) == NULL ||
        mdlen < 8)
        return false;
    /* 10 characters of 5 bits: the first 50 bits of the digest. */
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = bits << 8 | md[i];
    for (int i = 0; i < MAC_CHARS; i++)
        mac[i] = b32[(bits >> (59 - 5 * i)) & 31];
    return true;
}

/* Does cand[0..n) equal the mac of (tenant, number)? Case-insensitive,
 * constant time in the content. */
static bool mac_verifies(const struct mr_thread_config *cfg, const char *tenant,
                         int64_t number, const char *cand, size_t n)
{
    char want[MAC_CHARS], got[MAC_CHARS];
    if (n != MAC_CHARS || !secret_ok(cfg) ||
        !token_mac(cfg, tenant, number, want))
        return false;
    for (size_t i = 0; i < MAC_CHARS; i++)
        got[i] = (char)mr_lower((unsigned char)cand[i]);
    return CRYPTO_memcmp(got, want, MAC_CHARS) == 0;
}

/* A ticket number: 1 to 18 digits, no leading zero (one spelling per
 * ticket, so one MAC). Returns the digits consumed, or 0. */
static size_t parse_number(const char *p, size_t n, int64_t *number)
{
    size_t i = 0;
    int64_t v = 0;
    while (i < n && i < 18 && p[i] >= '0' && p[i] <= '9')
        v = v * 10 + (p[i++] - '0');
    if (i == 0 || p[0] == '0' || (i < n && p[i] >= '0' && p[i] <= '9'))
        return 0;
    *number = v;
    return i;
}

void mr_thread_token(const struct mr_thread_config *cfg, const char *tenant,
                     int64_t number, char *out, size_t cap)
{
    char mac[MAC_CHARS];
    if (out == NULL || cap == 0)
        return;
    out[0] = '\0';
    if (cap < MR_THREAD_TOKEN_MAX || tenant == NULL || number < 1 ||
        number > 999999999999999999LL || !secret_ok(cfg) ||
        !token_mac(cfg, tenant, number, mac))
        return;
    snprintf(out, cap, "t%" PRId64 ".%.*s", number, MAC_CHARS, mac);
}

void mr_thread_subject_tag(const struct mr_thread_config *cfg,
                           const char *tenant, int64_t number, char *out,
                           size_t cap)
{
    char mac[MAC_CHARS];
    if (out == NULL || cap == 0)
        return;
    out[0] = '\0';
    if (cap < MR_THREAD_TOKEN_MAX + 2 || tenant == NULL || number < 1 ||
        number > 999999999999999999LL || !secret_ok(cfg) ||
        !token_mac(cfg, tenant, number, mac))
        return;
    snprintf(out, cap, "[#%" PRId64 "-%.*s]", number, MAC_CHARS, mac);
}

/* "t<number>.<mac>" at p[0..n), ending the segment: the number if it
 * verifies. */
static bool segment_token(const struct mr_thread_config *cfg,
                          const char *tenant, const char *p, size_t n,
                          int64_t *number)
{
    int64_t v;
    if (n < 2 || (p[0] != 't' && p[0] != 'T'))
        return false;
    size_t d = parse_number(p + 1, n - 1, &v);
    if (d == 0 || 1 + d >= n || p[1 + d] != '.')
        return false;
    if (!mac_verifies(cfg, tenant, v, p + 2 + d, n - 2 - d))
        return false;
    *number = v;
    return true;
}

int mr_thread_token_parse(const struct mr_thread_config *cfg,
                          const char *tenant, const char *addr, int64_t *number)
{
    if (!secret_ok(cfg) || tenant == NULL || addr == NULL || number == NULL)
        return MR_ENOTFOUND;
    /* An address is at most 320 bytes (RFC 5321 4.5.3.1); longer is not
     * one we sent. */
    size_t n = strnlen(addr, 321);
    if (n > 320)
        return MR_ENOTFOUND;
    const char *at = memrchr(addr, '@', n);
    size_t local = at ? (size_t)(at - addr) : n;
    /* Sub-addresses may stack ("support+billing+t1042.<mac>"): try each
     * segment after a '+'. */
    for (size_t i = 0; i < local; i++) {
        if (addr[i] != '+')
            continue;
        size_t e = i + 1;
        while (e < local && addr[e] != '+')
            e++;
        if (segment_token(cfg, tenant, addr + i + 1, e - i - 1, number))
            return 0;
    }
    return MR_ENOTFOUND;
}

/* ---- the decision ---------------------------------------------------- */

/* What one decision carries between its steps. */
struct decide {
    const struct mr_thread_config *cfg;
    const struct mr_thread_lookup *lk;
    const struct mr_thread_msg *msg;
    struct mr_thread_decision *out;
    struct mr_error *err;
    char notes[96]; /* refusals on the way, appended to the detail */
};

/* How many bytes of s fit in max without cutting a UTF-8 sequence. */
static int clip(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return (int)n;
}

/* Appends to a fixed NUL-terminated buffer; a cut at the end drops a
 * UTF-8 sequence it would leave incomplete. */
static void append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strnlen(buf, cap);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w < cap - len)
        return;
    /* Cut at the end: drop a UTF-8 sequence left incomplete. */
    size_t end = cap - 1, k = end;
    while (k > len && ((unsigned char)buf[k - 1] & 0xC0) == 0x80)
        k--;
    if (k > len) {
        unsigned char lead = (unsigned char)buf[k - 1];
        size_t need = lead >= 0xF0   ? 4
                      : lead >= 0xE0 ? 3
                      : lead >= 0xC0 ? 2
                                     : 1;
        if (end - (k - 1) < need)
            buf[k - 1] = '\0';
    }
}

/* Records a refusal (once) for the audit detail. */
static void note(struct decide *d, const char *what, int64_t number)
{
    char one[80];
    if (number > 0)
        snprintf(one, sizeof one, "%s #%" PRId64, what, number);
    else
        snprintf(one, sizeof one, "%s", what);
    if (strstr(d->notes, one) == NULL)
        append(d->notes, sizeof d->notes, "%s%s", d->notes[0] ? "; " : "", one);
}

/* A lookup's answer: 0 found, 1 not found, or a negative error with err
 * filled. */
static int found(struct decide *d, int rc, const char *what)
{
    if (rc == 0)
        return 0;
    if (rc == MR_ENOTFOUND)
        return 1;
    return mr_error_set(d->err, rc < 0 ? rc : MR_EIO,
                        "threading: lookup %s failed (%s)", what,
                        mr_strerror(rc < 0 ? rc : MR_EIO));
}

/* Only a non-empty id is a key: "<>" and blank ids never match. */
static bool usable_id(const char *id)
{
    if (id == NULL)
        return false;
    for (size_t i = 0; id[i] && i < 1000; i++)
        if (!mr_is_wsp((unsigned char)id[i]) && id[i] != '<' && id[i] != '>')
            return true;
    return false;
}

static bool status_is(const struct mr_thread_ticket *t, const char *s)
{
    size_t n = strlen(s);
    return strnlen(t->status, sizeof t->status) == n &&
           memcmp(t->status, s, n) == 0;
}

/* Is the sender a participant of the ticket? No sender: no. A store that
 * answers MR_ENOTFOUND (no such ticket) means no as well. */
static int participant(struct decide *d, int64_t ticket_id, bool *yes)
{
    *yes = false;
    if (d->msg->from == NULL || d->msg->from[0] == '\0')
        return 0;
    int rc = d->lk->is_participant(d->lk->ctx, d->msg->tenant, ticket_id,
                                   d->msg->from, yes);
    if (rc == MR_ENOTFOUND)
        *yes = false;
    else if (rc != 0)
        return found(d, rc, "is_participant");
    return 0;
}

/* What admits the sender to a ticket that was found. */
enum admit {
    ADMIT_MAC,         /* a token's MAC verified: anyone */
    ADMIT_HEADERS,     /* anyone, but a non-participant is unverified */
    ADMIT_PARTICIPANT, /* participants only, else no match (bare [#N],
                          subject) */
};

/*
 * The ticket is found (by `by`, explained by `how`): apply the rules that
 * do not depend on how it was found. Returns 0 (decided), 1 (refused:
 * threading goes on) or an error.
 */
static int settle(struct decide *d, enum mr_thread_by by,
                  struct mr_thread_ticket *t, enum admit admit, const char *how)
{
    struct mr_thread_decision *out = d->out;
    const struct mr_thread_msg *msg = d->msg;
    bool is_part;
    t->status[sizeof t->status - 1] = '\0';
    int rc = participant(d, t->id, &is_part);
    if (rc < 0)
        return rc;
    if (admit == ADMIT_PARTICIPANT && !is_part) {
        /* A bare [#N] or a subject proves nothing: anyone can type them
         * (pitfall 7). The refusal goes into the audit. */
        note(d,
             by == MR_THREAD_SUBJECT ? "subject match refused, sender not "
                                       "a participant of"
                                     : "[#N] ignored, sender not a "
                                       "participant of",
             t->number);
        return 1;
    }
    bool verified = admit == ADMIT_MAC || is_part;
    bool bounce = msg->auto_kind == MR_AUTO_BOUNCE;
    bool human = msg->auto_kind == MR_AUTO_NONE;

    out->delivery_failure = bounce;
    if (status_is(t, "closed") && (human || msg->auto_kind == MR_AUTO_LIST)) {
        /* A closed ticket stays closed: the reply starts a new ticket
         * (its sender is the requester there), linked so the agent sees
         * the history. A stranger's is not linked: a forged header must
         * not tie their ticket to someone else's. */
        if (!verified) {
            note(d,
                 "header match to a closed ticket ignored, sender not a "
                 "participant of",
                 t->number);
            return 1;
        }
        append(out->detail, sizeof out->detail, "%s -> #%" PRId64, how,
               t->number);
        out->by = MR_THREAD_NEW;
        out->ticket_id = 0;
        out->linked_ticket_id = t->id;
        append(out->detail, sizeof out->detail, " (closed: new ticket linked)");
        return 0;
    }
    append(out->detail, sizeof out->detail, "%s -> #%" PRId64, how, t->number);
    out->by = by;
    out->ticket_id = t->id;
    out->unverified = !verified;
    /* Auto-replies, bounces and list copies change nothing about who is
     * on the ticket and never reopen it (pitfalls 10, 11). */
    out->add_participant = verified && !is_part && human;
    out->reopen = verified && human && status_is(t, "solved");
    if (!verified)
        append(out->detail, sizeof out->detail,
               ", sender not a participant: unverified");
    if (status_is(t, "closed"))
        append(out->detail, sizeof out->detail, " (closed: attached)");
    return 0;
}

/* Joins the ticket with this id if it exists: 0 joined, 1 no such
 * ticket (or refused), or an error. */
static int join_id(struct decide *d, enum mr_thread_by by, int64_t id,
                   enum admit admit, const char *how)
{
    struct mr_thread_ticket t;
    memset(&t, 0, sizeof t);
    int rc = found(d, d->lk->ticket_by_id(d->lk->ctx, d->msg->tenant, id, &t),
                   "ticket_by_id");
    if (rc != 0)
        return rc;
    return settle(d, by, &t, admit, how);
}

/* The ticket an id belongs to (stored or referenced): 0 joined, 1 no
 * match, or an error. */
static int join_message_id(struct decide *d, enum mr_thread_by by,
                           const char *id, const char *what)
{
    int64_t tid = 0;
    char how[DETAIL_ID + 40];
    if (!usable_id(id))
        return 1;
    int rc = found(
        d, d->lk->ticket_of_message_id(d->lk->ctx, d->msg->tenant, id, &tid),
        "ticket_of_message_id");
    if (rc != 0)
        return rc;
    snprintf(how, sizeof how, "%s <%.*s>", what, clip(id, DETAIL_ID), id);
    return join_id(d, by, tid, ADMIT_HEADERS, how);
}

static int step_duplicate(struct decide *d)
{
    const struct mr_thread_msg *msg = d->msg;
    bool yes = false;
    if (!usable_id(msg->message_id))
        return 1;
    int rc =
        d->lk->message_exists(d->lk->ctx, msg->tenant, msg->message_id, &yes);
    if (rc != 0 && rc != MR_ENOTFOUND)
        return found(d, rc, "message_exists");
    if (rc != 0 || !yes)
        return 1;
    int64_t tid = 0;
    rc = found(d,
               d->lk->ticket_of_message_id(d->lk->ctx, msg->tenant,
                                           msg->message_id, &tid),
               "ticket_of_message_id");
    if (rc < 0)
        return rc;
    d->out->by = MR_THREAD_DUPLICATE;
    d->out->ticket_id = rc == 0 ? tid : 0;
    snprintf(d->out->detail, sizeof d->out->detail,
             "message_id <%.*s> is stored already%s",
             clip(msg->message_id, DETAIL_ID), msg->message_id,
             msg->message_id_derived ? " (derived key)" : "");
    return 0;
}

/* A verified ticket number (from a token or a MAC'd tag): join it. */
static int join_number(struct decide *d, int64_t number, bool by_mac,
                       const char *how)
{
    struct mr_thread_ticket t;
    memset(&t, 0, sizeof t);
    int rc = found(
        d, d->lk->ticket_by_number(d->lk->ctx, d->msg->tenant, number, &t),
        "ticket_by_number");
    if (rc < 0)
        return rc;
    if (rc == 1) {
        note(d, "token for unknown ticket", number);
        return 1;
    }
    return settle(d, MR_THREAD_TOKEN, &t,
                  by_mac ? ADMIT_MAC : ADMIT_PARTICIPANT, how);
}

/* "+t<digit>" somewhere: meant as a token, so a failure is worth noting. */
static bool looks_like_token(const char *addr)
{
    for (const char *p = addr; (p = strchr(p, '+')) != NULL; p++)
        if ((p[1] == 't' || p[1] == 'T') && p[2] >= '0' && p[2] <= '9')
            return true;
    return false;
}

static int step_recipient_token(struct decide *d)
{
    const struct mr_thread_msg *msg = d->msg;
    size_t n = msg->nrecipients < MR_THREAD_MAX_RECIPIENTS
                   ? msg->nrecipients
                   : MR_THREAD_MAX_RECIPIENTS;
    for (size_t i = 0; msg->recipients != NULL && i < n; i++) {
        const char *addr = msg->recipients[i];
        int64_t number;
        if (addr == NULL || strchr(addr, '+') == NULL)
            continue;
        if (mr_thread_token_parse(d->cfg, msg->tenant, addr, &number) != 0) {
            if (looks_like_token(addr))
                note(d, "recipient token does not verify", 0);
            continue;
        }
        char how[DETAIL_ID + 40];
        snprintf(how, sizeof how, "token in %.*s", clip(addr, DETAIL_ID), addr);
        int rc = join_number(d, number, true, how);
        if (rc <= 0)
            return rc;
    }
    return 1;
}

static int step_subject_tag(struct decide *d)
{
    const char *s = d->msg->subject;
    if (s == NULL)
        return 1;
    size_t n = strlen(s), tags = 0;
    for (size_t i = 0; i + 3 < n && tags < MAX_SUBJECT_TAGS; i++) {
        if (s[i] != '[' || s[i + 1] != '#')
            continue;
        int64_t number;
        size_t k = parse_number(s + i + 2, n - i - 2, &number);
        if (k == 0)
            continue;
        size_t j = i + 2 + k, mac_at = 0, mac_n = 0;
        if (j < n && s[j] == '-') {
            mac_at = ++j;
            while (j < n && j - mac_at <= MAC_CHARS && s[j] != ']')
                j++;
            mac_n = j - mac_at;
        }
        if (j >= n || s[j] != ']')
            continue;
        tags++;
        char how[40];
        snprintf(how, sizeof how, "subject tag [#%" PRId64 "%s]", number,
                 mac_at ? "-mac" : "");
        if (mac_at &&
            !mac_verifies(d->cfg, d->msg->tenant, number, s + mac_at, mac_n)) {
            note(d, "subject tag mac does not verify for", number);
            continue;
        }
        int rc = join_number(d, number, mac_at != 0, how);
        if (rc <= 0)
            return rc;
        i = j;
    }
    return 1;
}

/* The reported message of a bounce (pitfall 11). */
static int step_bounce(struct decide *d)
{
    if (d->msg->auto_kind != MR_AUTO_BOUNCE)
        return 1;
    return join_message_id(d, MR_THREAD_IN_REPLY_TO, d->msg->bounce_original_id,
                           "bounce reports");
}

static int step_in_reply_to(struct decide *d)
{
    return join_message_id(d, MR_THREAD_IN_REPLY_TO, d->msg->in_reply_to,
                           "in_reply_to");
}

/* A parent arriving after its reply (pitfall 5): its own id is a thread
 * ref of the reply's ticket. Recorded as `references`, because a stored
 * message's References named it. Derived keys are never referenced. */
static int step_own_id(struct decide *d)
{
    if (d->msg->message_id_derived)
        return 1;
    return join_message_id(d, MR_THREAD_REFERENCES, d->msg->message_id,
                           "parent arrived after its reply: own id");
}

static int step_references(struct decide *d)
{
    const struct mr_thread_msg *msg = d->msg;
    size_t n = msg->references ? msg->nreferences : 0;
    size_t stop = n > MR_THREAD_MAX_REFS ? n - MR_THREAD_MAX_REFS : 0;
    /* Newest first: the last id is the parent, an agent's answer from
     * their own client may be unknown while an older id is not
     * (pitfall 3). */
    for (size_t i = n; i > stop; i--) {
        const char *id = msg->references[i - 1];
        if (id == NULL ||
            (msg->in_reply_to && strcmp(id, msg->in_reply_to) == 0))
            continue;
        int rc = join_message_id(d, MR_THREAD_REFERENCES, id, "references");
        if (rc <= 0)
            return rc;
    }
    return 1;
}

static int step_subject(struct decide *d)
{
    const struct mr_thread_msg *msg = d->msg;
    int64_t window = d->cfg->subject_window_ms;
    char norm[MR_THREAD_SUBJECT_MAX];
    char how[DETAIL_ID + 40];
    int64_t tid = 0;

    /* A bounce's subject is the MTA's; and without a sender there is no
     * requester to match. */
    if (msg->auto_kind == MR_AUTO_BOUNCE || window < 0 || msg->from == NULL ||
        msg->from[0] == '\0' || msg->subject == NULL)
        return 1;
    if (window == 0)
        window = MR_THREAD_SUBJECT_WINDOW_MS;
    mr_thread_normalize_subject(msg->subject, norm, sizeof norm);
    if (norm[0] == '\0')
        return 1;
    int rc = found(d,
                   d->lk->subject_match(d->lk->ctx, msg->tenant, msg->from,
                                        norm, msg->now - window, &tid),
                   "subject_match");
    if (rc != 0)
        return rc;
    snprintf(how, sizeof how, "subject \"%.*s\"", clip(norm, DETAIL_ID), norm);
    /* subject_match asked for this requester already; admitting
     * participants only on top keeps a store bug from ever letting a
     * stranger in by subject. */
    return join_id(d, MR_THREAD_SUBJECT, tid, ADMIT_PARTICIPANT, how);
}

int mr_thread_decide(const struct mr_thread_config *cfg,
                     const struct mr_thread_lookup *lk,
                     const struct mr_thread_msg *msg,
                     struct mr_thread_decision *out, struct mr_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (cfg == NULL || lk == NULL || msg == NULL || out == NULL ||
        lk->message_exists == NULL || lk->ticket_of_message_id == NULL ||
        lk->ticket_by_id == NULL || lk->ticket_by_number == NULL ||
        lk->is_participant == NULL || lk->subject_match == NULL)
        return mr_error_set(err, MR_EINVAL, "threading: missing argument");
    if (msg->tenant == NULL || msg->tenant[0] == '\0')
        return mr_error_set(err, MR_EINVAL, "threading: message has no tenant");

    struct decide d = {cfg, lk, msg, out, err, ""};
    /* The order of docs/threading.md. Each step answers 0 (decided), 1 (no
     * match: next step) or an error. */
    int (*const steps[])(struct decide *) = {
        step_duplicate, step_recipient_token, step_subject_tag, step_bounce,
        step_own_id,    step_in_reply_to,     step_references,  step_subject,
    };
    int rc = 1;
    for (size_t i = 0; rc == 1 && i < sizeof steps / sizeof steps[0]; i++)
        rc = steps[i](&d);
    if (rc < 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    if (rc == 1) {
        out->by = MR_THREAD_NEW;
        out->ticket_id = 0;
        if (msg->auto_kind == MR_AUTO_BOUNCE) {
            /* A bounce never opens a ticket: the store files it as an
             * orphan bounce. */
            out->delivery_failure = true;
            append(out->detail, sizeof out->detail,
                   "bounce of an unknown message: orphan");
        } else {
            append(out->detail, sizeof out->detail, "no match: new ticket");
        }
    }
    if (d.notes[0] != '\0')
        append(out->detail, sizeof out->detail, "; %s", d.notes);
    return 0;
}
