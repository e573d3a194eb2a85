/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ticket_json.h - the read API's view of tickets and messages
 * (docs/api.md): the JSON documents, the listing filters and the reply
 * address, shared by GET /api/v1/tickets[/{id}] and `mailroom tickets`
 * so that the command line prints exactly what the API answers.
 *
 * JSON the store keeps as text (tags, applied rules, the auto
 * classification, the normalized event) is read with jansson and copied
 * value by value through the one JSON writer: a stored text that does not
 * parse shows as an empty value ([] or null), never as broken output, and
 * only the documented fields of the event leave the server (not its raw
 * headers).
 *
 * The reply address is "<local>+<token>@<domain>" for the exact inbox the
 * ticket's first message arrived at, the token being mr_thread_token's
 * for the ticket's number under the installation's secret. It is given
 * out only when mr_config_route sends that very address back to the same
 * tenant and inbox with the token as its tag, so that a customer's reply
 * to it is threaded by token; otherwise (pattern and catch-all inboxes,
 * webhook-only tickets, an inbox no longer configured) there is none.
 *
 * Nothing here keeps state or prints; the functions only borrow their
 * arguments.
 */
#ifndef MR_HTTP_TICKET_JSON_H
#define MR_HTTP_TICKET_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "store/store.h"
#include "util/error.h"
#include "util/json.h"

/* Longest value of the queue and requester filters (an address is at most
 * 320 bytes, RFC 5321 4.5.3.1). */
#define MR_HTTP_FILTER_MAX 320
/* Room for a reply address: 64 bytes of local part, '@', 255 of domain. */
#define MR_HTTP_REPLY_ADDRESS_LEN 320

/* "new", "open", "pending", "solved", "closed"? */
bool mr_http_ticket_status_valid(const char *s);
/* "low", "normal", "high", "urgent"? */
bool mr_http_ticket_priority_valid(const char *s);

/* Fills f from the raw filter values (each may be NULL; an empty string
 * also means "any"). status and priority must be known values, queue and
 * requester at most MR_HTTP_FILTER_MAX bytes; the requester is
 * lower-cased into req_buf (MR_HTTP_FILTER_MAX + 1 bytes), which f then
 * points into. MR_EINVAL with a message naming the parameter otherwise. */
int mr_http_ticket_filter(const char *status, const char *queue,
                          const char *priority, const char *requester,
                          struct mr_ticket_filter *f,
                          char req_buf[MR_HTTP_FILTER_MAX + 1],
                          struct mr_error *err);

/* The reply address of ticket t (its messages must be filled, as by
 * mr_store_get_ticket) into out, or "" when it has none. Fails only when
 * the store cannot give the token secret (MR_EIO, MR_EAGAIN...). */
int mr_http_reply_address(const struct mr_config *cfg, struct mr_store *st,
                          const struct mr_ticket_view *t,
                          char out[MR_HTTP_REPLY_ADDRESS_LEN + 1],
                          struct mr_error *err);

/* One ticket of a listing: {id, number, subject, status, priority, queue,
 * assignee, tags, requester, message_count, created_at, updated_at,
 * version}. */
void mr_http_ticket_summary_json(struct mr_json *j,
                                 const struct mr_ticket_view *t);

/* One ticket with applied_rules, fields, links (what integrations made:
 * docs/integrations.md), linked_ticket_id, reply_address (NULL or
 * "" is written as null) and its messages, oldest first. */
void mr_http_ticket_json(struct mr_json *j, const struct mr_ticket_view *t,
                         const char *reply_address);

/* One attachment as it appears in a message's "attachments" (and in the
 * answer to POST /api/v1/attachments/{id}/rescan). */
void mr_http_attachment_json(struct mr_json *j,
                             const struct mr_attachment_view *a);

/* One message as it appears in a ticket's "messages". */
void mr_http_message_json(struct mr_json *j, const struct mr_message_view *m);

/* One outbox event as the API, the live stream and webhooks all send it:
 * {id: "evt_<seq>", seq, type, created_at (RFC 3339), ticket_id, payload};
 * the payload is the stored JSON text as it is (see the .c). */
void mr_http_event_json(struct mr_json *j, const struct mr_event_rec *e);

/* One ignored message (GET /api/v1/ignored, `mailroom tickets ignored`):
 * {id, message_id, channel, inbox, from, subject, received_at,
 *  raw_sha256, applied_rules, matched_rules, release}; release is null
 * until one was asked for, then {state: queued|released, job_id, by,
 * requested_at, released_at, ticket_id, message_row}. */
void mr_http_ignored_json(struct mr_json *j, const struct mr_ignored_view *v);

#endif
