/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ack_mail.h - the automatic acknowledgement as a message (RFC 5322,
 * RFC 3834), and the placeholders of its templates (docs/outbound.md).
 *
 * Templates are plain UTF-8 text with placeholders {{ticket.number}},
 * {{ticket.id}}, {{subject}}, {{from.name}}, {{from.email}} and
 * {{tenant}}; anything else between {{ and }} is refused when the rules
 * file is loaded (mr_ack_template_check), so a typo never reaches a
 * customer as literal braces. Values are inserted as they are: the text
 * is text/plain, nothing in it is markup.
 *
 * The message: From the tenant's address, To the sender, Subject from
 * the template or "Re: <subject>", In-Reply-To and References the
 * original Message-ID, its own Message-ID and Date, Auto-Submitted:
 * auto-replied (RFC 3834 5), X-Auto-Response-Suppress: All (Exchange
 * and Outlook send no out-of-office to it), Precedence: auto_reply (what
 * older responders and filters read; RFC 3834 does not define it),
 * MIME-Version, text/plain; charset=utf-8 in quoted-printable (so every
 * line is 7-bit and short whatever the relay supports). Header text that
 * is not plain ASCII is RFC 2047-encoded (base64 words, never splitting a
 * UTF-8 sequence), folded below 78 columns.
 *
 * Nothing here allocates but into the caller's mr_buf; no I/O.
 */
#ifndef MR_ACK_MAIL_H
#define MR_ACK_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/error.h"

/* What placeholders read. Strings are borrowed; NULL reads as "". */
struct mr_ack_vars {
    const char *tenant;
    const char *subject;    /* the original message's, decoded UTF-8 */
    const char *from_email; /* the sender: the acknowledgement's To */
    const char *from_name;
    int64_t ticket_id;
    int64_t ticket_number;
};

struct mr_ack_mail {
    const char *from_name;   /* display name, UTF-8, may be NULL */
    const char *from_email;  /* the tenant's address */
    const char *subject_tpl; /* NULL: "Re: {{subject}}" */
    const char *text_tpl;    /* the body; NULL: a one-line default */
    const char *in_reply_to; /* the original Message-ID without <>, or NULL */
    const char *hostname;    /* Message-ID's right side when from_email has
                                no usable domain */
    int64_t date;            /* Unix seconds */
};

/* Whether tpl's placeholders are all known; on false, bad (bad_size
 * bytes) names the first unknown one or says what is wrong. */
bool mr_ack_template_check(const char *tpl, char *bad, size_t bad_size);

/* tpl with its placeholders replaced, appended to out. */
void mr_ack_expand(const char *tpl, const struct mr_ack_vars *v,
                   struct mr_buf *out);

/* An address that may go into a header and an SMTP command as it is:
 * local@domain, printable ASCII, no space, quote, bracket or comma, at
 * most 254 bytes. Anything else is not answered. */
bool mr_ack_address_ok(const char *addr);

/* Appends the whole message (CRLF lines) to out and writes its Message-ID
 * (without <>) into msgid. MR_EINVAL when an address is not usable. */
int mr_ack_render(const struct mr_ack_mail *m, const struct mr_ack_vars *v,
                  struct mr_buf *out, char *msgid, size_t msgid_size,
                  struct mr_error *err);

/* Splits a configured sender "Name <addr>" or "addr" into its display
 * name (NULL when none; malloc'ed) and address (malloc'ed). MR_EINVAL
 * when there is no usable address. */
int mr_ack_parse_from(const char *s, char **name, char **addr,
                      struct mr_error *err);

#endif
