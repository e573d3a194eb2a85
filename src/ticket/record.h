/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record.h - what the store is given for one message, read off the final
 * event (docs/event.md, as a jansson object with the server's fields and
 * `auto` added): the indexed columns, the threading inputs (references,
 * recipients and copied addresses lower-cased, the auto-reply kind, a
 * bounce's original id), the content key that tells a reused Message-ID
 * from a resent message, and the event itself rendered once.
 *
 * The worker builds one per job; tests build them the same way, so what
 * they deliver is what the server delivers.
 *
 * Ownership: rec's strings point into ev (which must outlive the record)
 * or into the record; mr_record_free releases what the record owns.
 */
#ifndef MR_RECORD_H
#define MR_RECORD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/error.h"
#include "util/hash.h"

struct mr_record {
    struct mr_message_rec rec;
    char *event_json; /* ev rendered compact */
    char *auto_json;  /* its `auto` object, or NULL */
    char content_key[MR_SHA256_HEX_LEN + 1];
    char **owned;     /* lower-cased address copies */
    size_t nowned, capowned;
    const char **refs;
    const char **recipients;
    const char **copied;
    struct mr_attachment_rec *atts;
};

int mr_record_from_event(struct mr_record *r, json_t *ev, const char *tenant,
                         const char *channel, const char *raw_sha256,
                         int64_t received_at, struct mr_error *err);
void mr_record_free(struct mr_record *r);

/* "2025-01-06T10:00:00Z" (the event's form) -> Unix ms; 0 otherwise. */
int64_t mr_record_rfc3339_ms(const char *s);

#endif
