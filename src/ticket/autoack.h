/* SPDX-License-Identifier: Apache-2.0 */
/*
 * autoack.h - the worker's half of automatic acknowledgements
 * (docs/outbound.md): from the rules' decision and the message, what the
 * delivering transaction needs to queue one (struct mr_ack_spec), with a
 * render callback that writes the message once the ticket's number is
 * known.
 *
 * Nothing is prepared when outbound mail is off (no outbound.smtp), when
 * the tenant has no sender address (its outbound.from, the global one, or
 * its first exact inbox), or when the sender's address is not one we
 * would write into a header.
 *
 * Ownership: an mr_autoack owns copies of every string it needs, so the
 * spec stays valid however long the delivery waits; mr_autoack_clear
 * frees them.
 */
#ifndef MR_AUTOACK_H
#define MR_AUTOACK_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "store/store.h"
#include "ticket/rules.h"

struct mr_autoack {
    struct mr_ack_spec spec; /* spec.ctx is this struct */
    char *tenant, *to, *from_name, *from_email, *subject_tpl, *text_tpl;
    char *in_reply_to, *subject, *sender_name, *hostname;
};

/* The sender's address as the per-sender window keys it: lower-cased
 * into out (cap bytes); false when there is none or it does not fit. */
bool mr_autoack_key(const char *from, char *out, size_t cap);

/* Fills a when r decided an acknowledgement and one can be sent; false
 * (a zeroed) otherwise. rec is the message as stored. */
bool mr_autoack_prepare(struct mr_autoack *a, const struct mr_config *cfg,
                        const struct mr_rules_result *r,
                        const struct mr_message_rec *rec);
void mr_autoack_clear(struct mr_autoack *a);

#endif
