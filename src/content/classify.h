/* SPDX-License-Identifier: Apache-2.0 */
/*
 * classify.h - is a message an auto-reply, a bounce, a list copy, or none
 * of these (docs/classification.md); and for a bounce, which message it
 * reports on and what happened to it.
 *
 * Input is the normalized event (docs/event.md) as the worker holds it,
 * plus the envelope sender when known: "" is the null return path, NULL
 * means unknown (then a Return-Path header "<>" stands in for it). The
 * rules read headers, subject, text, the delivery report and attachment
 * summaries only; nothing here does I/O or keeps state.
 *
 * One kind is chosen, in this order, the first that applies:
 *   bounce     a delivery-status report (multipart/report, or a null
 *              return path / MAILER-DAEMON sender with a DSN-like subject
 *              or body), or a feedback report about a message sent
 *              earlier (ARF abuse/auth-failure reports, Hotmail JMRP,
 *              Amazon SES notifications, Apple Mail's automatic
 *              unsubscribe); `feedback` tells the second group apart
 *   autoreply  RFC 3834 Auto-Submitted other than "no", X-Autoreply,
 *              X-Autorespond, Precedence: auto_reply, vendor headers, or
 *              X-Auto-Response-Suppress with an out-of-office subject
 *   list       List-Id, List-Unsubscribe, Precedence bulk/list/junk
 *   autoreply  by subject alone ("Automatic reply:", "Out of Office",
 *              "Abwesenheitsnotiz", ...) when no header said anything
 *   none
 * A bounce wins over an auto-reply because DSNs carry Auto-Submitted too
 * (RFC 3464 2.1) and what matters is the message they report on.
 *
 * Untrusted input: every scan is bounded (MR_CLASSIFY_SCAN_BYTES of the
 * text, MR_CLASSIFY_MAX_VALUES values of a repeated header, the report's
 * first MR_CLASSIFY_MAX_VALUES recipients). A recovered original
 * Message-ID is a claim by whoever sent the bounce: threading must trust
 * it only when it names a message we sent (research/pitfalls.md 11).
 *
 * Ownership: the result is copied into the caller's struct; strings in it
 * are NUL-terminated valid UTF-8 (cut at a character boundary), "" when
 * unknown.
 */
#ifndef MR_CLASSIFY_H
#define MR_CLASSIFY_H

#include <stdbool.h>

#include <jansson.h>

#include "../ticket/thread.h"
#include "../util/error.h"

/* Bytes of the text body the rules look at: bounce bodies put the
 * diagnostic and the returned headers first, so the tail of a large
 * returned message never matters. */
#define MR_CLASSIFY_SCAN_BYTES (256u * 1024u)
/* Values of one repeated header, recipients of a report, attachments. */
#define MR_CLASSIFY_MAX_VALUES 100

struct mr_classification {
    enum mr_auto_kind kind;
    char reason[160]; /* the rule that decided, for humans */
    /* Bounces only (empty otherwise): */
    char original_message_id[1000]; /* without <>, as event message_id */
    char status[32];                /* RFC 3463 enhanced code, "5.1.1" */
    char recipient[256];            /* the address that failed */
    char action[32];                /* failed, delayed, delivered, relayed,
                                       expanded; "feedback" for reports */
    bool permanent;                 /* failed for good (5.x.x) */
    bool feedback;                  /* a feedback report, not a DSN */
};

/* "none", "autoreply", "bounce", "list". */
const char *mr_classify_kind_name(enum mr_auto_kind kind);

/* Classifies one event. mail_from is the envelope sender ("" = null
 * return path) or NULL when unknown. Returns 0, or MR_EINVAL when event
 * is not a JSON object (out is then kind none). */
int mr_classify_event(const json_t *event, const char *mail_from,
                      struct mr_classification *out, struct mr_error *err);

/* The event's `auto` object: {kind, reason, original_message_id, status,
 * recipient, action, permanent, feedback}, unknown strings as null. A new
 * reference: the caller json_decref()s it. */
json_t *mr_classify_to_json(const struct mr_classification *c);

#endif
