/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record.c - the store's message record, read off the final event.
 */
#include "ticket/record.h"

#include "content/sanitize.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ticket/thread.h"
#include "util/buf.h"
#include "util/hash.h"

static const char *jstr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int64_t mr_record_rfc3339_ms(const char *s)
{
    if (!s)
        return 0;
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || *end != 'Z')
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

void mr_record_free(struct mr_record *l)
{
    for (size_t i = 0; i < l->nowned; i++)
        free(l->owned[i]);
    free(l->owned);
    free(l->refs);
    free(l->recipients);
    free(l->copied);
    free(l->atts);
    free(l->event_json);
    free(l->auto_json);
    memset(l, 0, sizeof *l);
}

/* A lower-cased copy owned by l. Threading compares addresses exactly
 * (participants, requester), and helpdesks treat John.Doe@ and john.doe@
 * as one person even though RFC 5321 lets a local part differ by case. */
static const char *lower(struct mr_record *l, const char *addr)
{
    if (!addr)
        return NULL;
    if (l->nowned == l->capowned) {
        l->capowned = l->capowned ? l->capowned * 2 : 16;
        l->owned = mr_xrealloc(l->owned, l->capowned * sizeof *l->owned);
    }
    char *c = mr_xstrndup(addr, strlen(addr));
    for (char *p = c; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    l->owned[l->nowned++] = c;
    return c;
}

/* Appends the email of every address object in arr, lower-cased. */
static size_t add_emails(struct mr_record *l, json_t *arr, const char **out,
                         size_t n, size_t cap)
{
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        const char *e = jstr(a, "email");
        if (e && n < cap)
            out[n++] = lower(l, e);
    }
    return n;
}

static enum mr_auto_kind auto_kind(json_t *ev)
{
    const char *k = jstr(json_object_get(ev, "auto"), "kind");
    if (!k)
        return MR_AUTO_NONE;
    if (strcmp(k, "autoreply") == 0)
        return MR_AUTO_AUTOREPLY;
    if (strcmp(k, "bounce") == 0)
        return MR_AUTO_BOUNCE;
    if (strcmp(k, "list") == 0)
        return MR_AUTO_LIST;
    return MR_AUTO_NONE;
}

/* Date and normalized subject: what stays the same when a relay, a list,
 * a retry or a parsing provider resends a message (a provider's copy has
 * no attachment bytes to hash, a list adds a footer and a subject tag and
 * may rewrite From for DMARC), and differs when a scanner reuses one
 * Message-ID for new mail. Empty (no key: copies then count as
 * duplicates) without a Date to go by. */
static void content_key(json_t *ev, const struct mr_message_rec *rec,
                        char out[MR_SHA256_HEX_LEN + 1])
{
    out[0] = '\0';
    const char *date = jstr(ev, "date");
    if (!date)
        return;
    char norm[MR_THREAD_SUBJECT_MAX];
    mr_thread_normalize_subject(rec->subject ? rec->subject : "", norm,
                                sizeof norm);
    struct mr_sha256 h;
    mr_sha256_init(&h);
    const char *parts[] = {date, norm};
    for (size_t i = 0; i < 2; i++) {
        mr_sha256_update(&h, parts[i], strlen(parts[i]));
        mr_sha256_update(&h, "\n", 1);
    }
    mr_sha256_final_hex(&h, out);
}

int mr_record_from_event(struct mr_record *l, json_t *ev, const char *tenant,
                         const char *channel, const char *raw_sha256,
                         int64_t received_at, struct mr_error *err)
{
    memset(l, 0, sizeof *l);
    l->event_json = json_dumps(ev, JSON_COMPACT);
    if (!l->event_json)
        return mr_error_set(err, MR_ENOMEM, "cannot render the event");
    json_t *au = json_object_get(ev, "auto");
    l->auto_json = json_is_object(au) ? json_dumps(au, JSON_COMPACT) : NULL;
    struct mr_message_rec *rec = &l->rec;
    json_t *from = json_object_get(ev, "from");
    *rec = (struct mr_message_rec){
        .tenant = tenant,
        .inbox = jstr(ev, "inbox"),
        .channel = channel,
        .message_id = jstr(ev, "message_id"),
        .message_id_derived =
            json_is_true(json_object_get(ev, "message_id_derived")),
        .in_reply_to = jstr(ev, "in_reply_to"),
        .subject = jstr(ev, "subject"),
        .from_email = json_is_object(from) ? jstr(from, "email") : NULL,
        .from_name = json_is_object(from) ? jstr(from, "name") : NULL,
        .text = jstr(ev, "text"),
        .html = jstr(ev, "html"),
        .html_sanitized = jstr(ev, "html_sanitized"),
        .sanitizer_version =
            jstr(ev, "html_sanitized") ? MR_SANITIZER_VERSION : 0,
        .stripped_text = jstr(ev, "stripped_text"),
        .raw_sha256 = raw_sha256,
        .received_at = received_at,
        .date = mr_record_rfc3339_ms(jstr(ev, "date")),
        .event_json = l->event_json,
        .auto_json = l->auto_json,
        .auto_kind = auto_kind(ev),
    };
    rec->from_email = lower(l, rec->from_email);

    json_t *refs = json_object_get(ev, "references");
    size_t nrefs = json_is_array(refs) ? json_array_size(refs) : 0;
    l->refs = mr_xcalloc(nrefs + 1, sizeof *l->refs);
    for (size_t i = 0; i < nrefs; i++) {
        const char *r = json_string_value(json_array_get(refs, i));
        if (r)
            l->refs[rec->nreferences++] = r;
    }
    rec->references = l->refs;

    json_t *to = json_object_get(ev, "to"), *cc = json_object_get(ev, "cc");
    json_t *env = json_object_get(json_object_get(ev, "envelope"), "rcpt_to");
    size_t cap = json_array_size(to) + json_array_size(cc) +
                 json_array_size(env) + 1;
    l->copied = mr_xcalloc(cap, sizeof *l->copied);
    rec->ncopied = add_emails(l, cc, l->copied,
                              add_emails(l, to, l->copied, 0, cap), cap);
    rec->copied = l->copied;
    l->recipients = mr_xcalloc(cap, sizeof *l->recipients);
    size_t n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(env, i, r)
    {
        if (json_is_string(r) && n < cap)
            l->recipients[n++] = lower(l, json_string_value(r));
    }
    for (size_t k = 0; k < rec->ncopied && n < cap; k++)
        l->recipients[n++] = l->copied[k];
    rec->recipients = l->recipients;
    rec->nrecipients = n;

    au = json_object_get(ev, "auto");
    if (json_is_object(au)) {
        rec->bounce_original_id = jstr(au, "original_message_id");
    }
    /* A bounce's report names the original even when `auto` does not. */
    if (!rec->bounce_original_id)
        rec->bounce_original_id =
            jstr(json_object_get(ev, "report"), "original_message_id");

    json_t *list = json_object_get(ev, "attachments");
    size_t natt = json_is_array(list) ? json_array_size(list) : 0;
    l->atts = natt ? mr_xcalloc(natt, sizeof *l->atts) : NULL;
    for (size_t k = 0; k < natt; k++) {
        json_t *a = json_array_get(list, k);
        l->atts[k] = (struct mr_attachment_rec){
            .filename = jstr(a, "filename"),
            .safe_filename = jstr(a, "safe_filename"),
            .content_type = jstr(a, "content_type"),
            .disposition = jstr(a, "disposition"),
            .content_id = jstr(a, "content_id"),
            .size = json_integer_value(json_object_get(a, "size")),
            .sha256 = jstr(a, "sha256"),
            /* What the worker's attachment stage added (worker.c). */
            .detected_type = jstr(a, "detected_type"),
            .type_mismatch = json_is_true(json_object_get(a, "type_mismatch")),
            .blocked = json_is_true(json_object_get(a, "blocked")),
            .blocked_reason = jstr(a, "blocked_reason"),
            .truncated = json_is_true(json_object_get(a, "truncated")),
            .scan = jstr(a, "scan"),
        };
    }
    rec->attachments = l->atts;
    rec->nattachments = natt;
    content_key(ev, rec, l->content_key);
    rec->content_key = l->content_key[0] ? l->content_key : NULL;
    return MR_OK;
}

