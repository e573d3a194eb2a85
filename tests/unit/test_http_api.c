/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the real routes of src/http (mr_http_start) over
 * loopback, with small fakes of the store, the blob store and intake
 * defined here. The fakes stand in for exactly the functions the HTTP
 * objects call, so the linker never pulls the real store/blob/intake
 * objects into this program; if src/http starts calling one more of
 * them, add its fake here. End-to-end tests against the real modules
 * live in tests/e2e.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "http/auth.h"
#include "http/http.h"
#include "http/webhook_sig.h"
#include "http_client.h"
#include "ticket/thread.h"
#include "util/hash.h"

/* ---- fakes --------------------------------------------------------------
 * One test runs at a time and each request completes before the next, so
 * plain variables are enough (the daemon's threads touch them only while
 * the test waits for an answer). */

static struct {
    int store_rc; /* returned by every store call when < 0 */
    int blob_rc;
    int intake_rc;
    bool duplicate;
    /* what intake was given last */
    int calls;
    enum mr_channel channel;
    char tenant[65];
    char rcpt[8][128];
    size_t nrcpt;
    char remote_ip[64];
    size_t len;
    char body_sha[65];
    /* the read API */
    int list_calls;
    bool had_filter;
    char f_status[32], f_queue[400], f_priority[32], f_requester[400];
    int secret_rc, secret_calls;
    char token[128]; /* what the fake mr_thread_token gives, when set */
    int map_rc;
    int maps; /* mappings not yet released */
    int message_clears;
} fk;

struct mr_store {
    int unused;
};
struct mr_blob {
    int unused;
};
struct mr_intake {
    int unused;
};

static const struct {
    const char *token, *tenant, *role;
} fake_tokens[] = {
    {"tok-admin-a", "a", "admin"}, {"tok-ingest-a", "a", "ingest"},
    {"tok-read-a", "a", "read"},   {"tok-agent-a", "a", "agent"},
    {"tok-read-b", "b", "read"},   {"tok-odd-role", "a", "superuser"},
    {"tok-agent-b", "b", "agent"},
};

int mr_store_token_find(struct mr_store *st, const char *hash_hex,
                        struct mr_token_rec *out, struct mr_error *err)
{
    (void)st;
    memset(out, 0, sizeof *out);
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "fake store is down");
    for (size_t i = 0; i < sizeof fake_tokens / sizeof fake_tokens[0]; i++) {
        char h[65];
        mr_auth_token_hash(fake_tokens[i].token, h);
        if (strcmp(h, hash_hex) == 0) {
            out->id = (int64_t)i + 1;
            out->tenant = strdup(fake_tokens[i].tenant);
            out->role = strdup(fake_tokens[i].role);
            return 0;
        }
    }
    return mr_error_set(err, MR_ENOTFOUND, "no such token");
}

void mr_token_rec_clear(struct mr_token_rec *t)
{
    free(t->tenant);
    free(t->role);
    free(t->label);
    free(t->prefix);
    memset(t, 0, sizeof *t);
}

/* PATCH /api/v1/tickets/{id} and the token exchange are proven against
 * the real store (e2e/test_ticket_updates, e2e/test_tokens); here they
 * only have to link. */
int mr_store_update_ticket(struct mr_store *st, const char *tenant,
                           int64_t id, const struct mr_ticket_patch *p,
                           struct mr_ticket_update_result *res,
                           struct mr_error *err)
{
    (void)st;
    (void)tenant;
    (void)id;
    (void)p;
    memset(res, 0, sizeof *res);
    return mr_error_set(err, MR_EIO, "not in this fake");
}

int mr_store_token_add_child(struct mr_store *st, int64_t parent_id,
                             const char *tenant, const char *role,
                             const char *hash_hex, const char *prefix,
                             int64_t expires_at, int64_t *id,
                             struct mr_error *err)
{
    (void)st;
    (void)parent_id;
    (void)tenant;
    (void)role;
    (void)hash_hex;
    (void)prefix;
    (void)expires_at;
    (void)id;
    return mr_error_set(err, MR_EIO, "not in this fake");
}

int mr_store_ping(struct mr_store *st, struct mr_error *err)
{
    (void)st;
    return fk.store_rc < 0 ? mr_error_set(err, fk.store_rc, "db at /x down")
                           : 0;
}

int mr_store_scan_pending_count(struct mr_store *st, int64_t *n,
                                struct mr_error *err)
{
    (void)st;
    (void)err;
    *n = 0;
    return 0;
}

/* Rescans: what the handlers asked for last. Attachment 902 has no
 * bytes; the fake says 7 matched a bulk rescan. */
static struct {
    int64_t id;
    char tenant[65];
    struct mr_scan_rescan_filter f;
    char f_tenant[65];
    int calls;
} rk;

int mr_store_scan_rescan(struct mr_store *st, const char *tenant, int64_t id,
                         int64_t now, struct mr_attachment_view *out,
                         struct mr_error *err)
{
    (void)now;
    if (out)
        memset(out, 0, sizeof *out);
    rk.calls++;
    rk.id = id;
    snprintf(rk.tenant, sizeof rk.tenant, "%s", tenant);
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "down");
    if (strcmp(tenant, "a") != 0 || id < 900 || id > 910)
        return mr_error_set(err, MR_ENOTFOUND, "no such attachment");
    if (id == 902)
        return mr_error_set(err, MR_ECONFLICT, "attachment 902 has no bytes");
    return out ? mr_store_get_attachment(st, tenant, id, out, err) : 0;
}

int mr_store_scan_rescan_many(struct mr_store *st,
                              const struct mr_scan_rescan_filter *f,
                              int64_t now, int64_t *count,
                              struct mr_error *err)
{
    (void)st;
    (void)now;
    rk.calls++;
    rk.f = *f;
    snprintf(rk.f_tenant, sizeof rk.f_tenant, "%s",
             f->tenant ? f->tenant : "(all)");
    rk.f.tenant = NULL;
    *count = 7;
    return fk.store_rc < 0 ? mr_error_set(err, fk.store_rc, "down") : 0;
}

int mr_store_stats(struct mr_store *st, struct mr_store_stats *out,
                   struct mr_error *err)
{
    (void)st;
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "down");
    out->jobs_ready = 4;
    out->jobs_leased = 1;
    out->jobs_dead = 2;
    out->messages = 9;
    out->tickets = 3;
    out->webhook_pending = 11;
    out->webhook_dead = 12;
    out->notify_pending = 13;
    out->notify_dead = 14;
    out->mail_pending = 15;
    out->mail_failed = 16;
    out->scan_pending = 17;
    out->scan_error = 18;
    return 0;
}

int mr_blob_check_writable(struct mr_blob *b, struct mr_error *err)
{
    (void)b;
    return fk.blob_rc < 0 ? mr_error_set(err, fk.blob_rc, "EROFS /blobs") : 0;
}

/* ---- tickets and messages ------------------------------------------------
 * Tenant "a" has tickets 1, 2, 3 and 5 (4 is missing); tenant "b" has
 * ticket 10. What each ticket's messages look like is chosen for the
 * reply address: the inbox of its first message with one decides. */

static const struct {
    int64_t id;
    const char *tenant;
    const char *inbox[2]; /* per message; NULL: came by webhook */
    size_t nmessages;
    int64_t linked;
    const char *rules;
} fake_tickets[] = {
    {1,
     "a",
     {"support", NULL},
     2,
     0,
     "[{\"rule\":\"vip\",\"actions\":[{\"tag\":\"vip\"}]}]"},
    {2, "a", {"help"}, 1, 0, "[]"},
    {3, "a", {"sales+eu"}, 1, 1, "not json"},
    {5, "a", {NULL, "support"}, 2, 0, NULL},
    {6, "a", {"long"}, 1, 0, "[]"},
    {7, "a", {"any"}, 1, 0, "[]"},
    {8, "a", {"gone"}, 1, 0, "[]"},
    {10, "b", {"support"}, 1, 0, "[]"},
};

static void fill_ticket(struct mr_ticket_view *t, int64_t id,
                        const char *tenant)
{
    memset(t, 0, sizeof *t);
    t->id = id;
    t->number = id;
    t->tenant = strdup(tenant);
    char s[64];
    snprintf(s, sizeof s, "Subject %lld", (long long)id);
    t->subject = strdup(s);
    t->status = strdup("new");
    t->priority = strdup("normal");
    t->queue = id == 1 ? strdup("billing") : NULL;
    t->tags_json = strdup(id == 1 ? "[\"vip\",\"eu\"]" : "[]");
    t->applied_rules_json = NULL;
    t->requester = strdup("alice@customer.example");
    t->message_count = id == 1 ? 2 : 1;
    t->created_at = 1736157600000LL + id;
    t->updated_at = 1736157600000LL + 1000 * id;
}

int mr_store_list_tickets(struct mr_store *st, const char *tenant,
                          const struct mr_ticket_filter *filter,
                          const char *cursor, int limit,
                          struct mr_ticket_view **tickets, size_t *n,
                          char **next_cursor, struct mr_error *err)
{
    (void)st;
    *tickets = NULL;
    *n = 0;
    *next_cursor = NULL;
    fk.list_calls++;
    fk.had_filter = filter != NULL;
    if (filter) {
        snprintf(fk.f_status, sizeof fk.f_status, "%s",
                 filter->status ? filter->status : "(any)");
        snprintf(fk.f_queue, sizeof fk.f_queue, "%s",
                 filter->queue ? filter->queue : "(any)");
        snprintf(fk.f_priority, sizeof fk.f_priority, "%s",
                 filter->priority ? filter->priority : "(any)");
        snprintf(fk.f_requester, sizeof fk.f_requester, "%s",
                 filter->requester ? filter->requester : "(any)");
    }
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "down");
    int64_t ids_a[] = {3, 2, 1}, ids_b[] = {10};
    int64_t *ids = strcmp(tenant, "a") == 0 ? ids_a : ids_b;
    size_t total = strcmp(tenant, "a") == 0 ? 3 : 1;
    size_t start = 0;
    if (cursor) {
        if (strncmp(cursor, "c", 1) != 0 || cursor[1] < '0' ||
            cursor[1] > '9' || cursor[2] != '\0')
            return mr_error_set(err, MR_EINVAL, "bad cursor");
        start = (size_t)(cursor[1] - '0');
    }
    struct mr_ticket_view *v = calloc(total, sizeof *v);
    size_t k = 0;
    for (size_t i = start; i < total && k < (size_t)limit; i++)
        fill_ticket(&v[k++], ids[i], tenant);
    if (start + k < total) {
        char c[8];
        snprintf(c, sizeof c, "c%zu", start + k);
        *next_cursor = strdup(c);
    }
    *tickets = v;
    *n = k;
    return 0;
}

static const char *const event1 =
    "{\"from\":{\"email\":\"alice@customer.example\",\"name\":\"Alice\"},"
    "\"to\":[{\"email\":\"support@a.example\",\"name\":null}],"
    "\"cc\":[{\"email\":\"bob@customer.example\",\"name\":\"Bob\"}],"
    "\"date\":\"2025-01-06T09:59:00Z\","
    "\"channel\":\"smtp\",\"inbox\":\"from-event\",\"tag\":\"billing\","
    "\"envelope\":{\"mail_from\":\"alice@customer.example\","
    "\"rcpt_to\":[\"support@a.example\"]},"
    "\"stripped_text\":\"Hello (stripped)\","
    "\"html\":\"<p onclick=x>Hello</p>\","
    "\"attachments\":[{\"filename\":\"event.pdf\",\"content_type\":"
    "\"application/pdf\",\"size\":1,\"sha256\":\"ee\"}],"
    "\"headers\":{\"x-secret\":\"not shown\"}}";

static void fill_message(struct mr_message_view *m, int64_t id,
                         int64_t ticket_id, size_t i, const char *inbox)
{
    memset(m, 0, sizeof *m);
    m->id = id;
    m->ticket_id = ticket_id;
    m->message_id =
        strdup(i == 0 ? "first@customer.example" : "second@customer.example");
    m->direction = strdup("inbound");
    m->from_email = strdup("carol@other.example");
    m->subject = strdup("Order 1234");
    m->text = strdup("Hello");
    m->html = i == 0 ? strdup("<p>Hello</p>") : NULL;
    m->inbox = inbox ? strdup(inbox) : NULL;
    m->received_at = 1736157600500LL + (int64_t)i;
    if (i == 0) {
        m->kind = strdup("message");
        m->threaded_by = strdup("new");
        m->event_json = strdup(event1);
        m->nattachments = 1;
        m->attachments = calloc(1, sizeof *m->attachments);
        m->attachments[0].id = 900;
        m->attachments[0].filename = strdup("a.pdf");
        m->attachments[0].content_type = strdup("application/pdf");
        m->attachments[0].size = 1234;
        m->attachments[0].sha256 = strdup("ab12");
        m->attachments[0].scan = strdup("clean");
    } else {
        /* A bounce that joined by header from a stranger, with a stored
         * event that does not parse: the API falls back to the columns. */
        m->kind = strdup("delivery_failure");
        m->threaded_by = strdup("in_reply_to");
        m->thread_detail = strdup("in-reply-to first@customer.example");
        m->unverified = true;
        m->auto_json = strdup("{\"kind\":\"bounce\",\"reason\":"
                              "\"multipart/report\",\"status\":\"5.1.1\"}");
        m->event_json = strdup("not json");
    }
}

/* Two ignored messages for tenant a, one page of one each. */
int mr_store_list_ignored(struct mr_store *st, const char *tenant,
                          const char *cursor, int limit,
                          struct mr_ignored_view **out, size_t *n,
                          char **next_cursor, struct mr_error *err)
{
    (void)st;
    (void)limit;
    *out = NULL;
    *n = 0;
    *next_cursor = NULL;
    if (cursor && strcmp(cursor, "2") != 0)
        return mr_error_set(err, MR_EINVAL, "bad cursor");
    if (strcmp(tenant, "a") != 0)
        return 0;
    struct mr_ignored_view *v = calloc(1, sizeof *v);
    v->id = cursor ? 1 : 2;
    v->message_id = strdup(cursor ? "one@list.example" : "two@list.example");
    v->from_email = strdup("news@list.example");
    v->subject = strdup("Weekly digest");
    v->applied_rules_json =
        strdup("[{\"name\":\"DropLists\",\"decision\":\"ignore\"}]");
    v->matched_rules_json = strdup("[\"DropLists\"]");
    v->received_at = 1736157600000LL;
    *out = v;
    *n = 1;
    if (!cursor)
        *next_cursor = strdup("2");
    return 0;
}

void mr_ignored_list_free(struct mr_ignored_view *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].message_id);
        free(v[i].channel);
        free(v[i].inbox);
        free(v[i].from_email);
        free(v[i].subject);
        free(v[i].raw_sha256);
        free(v[i].applied_rules_json);
        free(v[i].matched_rules_json);
    }
    free(v);
}

/* Releases (POST /api/v1/ignored/{id}/release): ignored message 2 of
 * tenant a is released once (job 77), then 409; anything else is 404. */
static int release_calls;
static char release_by[64];

void mr_ignored_view_clear(struct mr_ignored_view *v)
{
    if (!v)
        return;
    free(v->message_id);
    free(v->release_by);
    free(v->event_json);
    memset(v, 0, sizeof *v);
}

int mr_store_get_ignored(struct mr_store *st, const char *tenant, int64_t id,
                         struct mr_ignored_view *out, struct mr_error *err)
{
    (void)st;
    memset(out, 0, sizeof *out);
    if (strcmp(tenant, "a") != 0 || id != 2)
        return mr_error_set(err, MR_ENOTFOUND, "no ignored message");
    out->id = 2;
    out->message_id = strdup("two@list.example");
    if (release_calls > 0) {
        out->release_job_id = 77;
        out->release_by = strdup(release_by);
        out->release_requested_at = 1736157600000LL;
    }
    return 0;
}

int mr_store_release_ignored(struct mr_store *st, const char *tenant,
                             int64_t id, const char *by, int64_t *job_id,
                             struct mr_error *err)
{
    (void)st;
    *job_id = 0;
    if (strcmp(tenant, "a") != 0 || id != 2)
        return mr_error_set(err, MR_ENOTFOUND, "no ignored message");
    if (release_calls++ > 0)
        return mr_error_set(err, MR_ECONFLICT,
                            "ignored message 2 is being released already");
    snprintf(release_by, sizeof release_by, "%s", by);
    *job_id = 77;
    return 0;
}

static int intake_wakes;

void mr_intake_wake(struct mr_intake *in)
{
    (void)in;
    intake_wakes++;
}

int mr_store_get_ticket(struct mr_store *st, const char *tenant, int64_t id,
                        struct mr_ticket_view *out, struct mr_error *err)
{
    (void)st;
    memset(out, 0, sizeof *out);
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "down");
    for (size_t k = 0; k < sizeof fake_tickets / sizeof fake_tickets[0]; k++) {
        if (fake_tickets[k].id != id ||
            strcmp(fake_tickets[k].tenant, tenant) != 0)
            continue;
        fill_ticket(out, id, tenant);
        out->applied_rules_json =
            fake_tickets[k].rules ? strdup(fake_tickets[k].rules) : NULL;
        out->linked_ticket_id = fake_tickets[k].linked;
        if (id == 1)
            out->fields_json = strdup("{\"invoice\":\"INV-123456\"}");
        out->nmessages = fake_tickets[k].nmessages;
        out->message_count = (int64_t)out->nmessages;
        out->messages = calloc(out->nmessages, sizeof *out->messages);
        for (size_t i = 0; i < out->nmessages; i++)
            fill_message(&out->messages[i], 100 + (int64_t)i, id, i,
                         fake_tickets[k].inbox[i]);
        if (id == 1)
            out->messages[0].matched_rules_json = strdup("[\"vip\"]");
        return 0;
    }
    return mr_error_set(err, MR_ENOTFOUND, "no ticket");
}

/* Messages for GET .../raw: 100 has raw bytes, 101 came by webhook, 102's
 * blob is gone, 200 is tenant b's. */
#define RAW_KEY                                                                \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define GONE_KEY                                                               \
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
static const char raw_bytes[] = "From: a@b.example\r\nSubject: raw\r\n\r\n"
                                "bin\0ary\xff\r\n";

int mr_store_get_message(struct mr_store *st, const char *tenant, int64_t id,
                         struct mr_message_view *out, struct mr_error *err)
{
    (void)st;
    memset(out, 0, sizeof *out);
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "down");
    bool a = strcmp(tenant, "a") == 0;
    if (!((a && id >= 100 && id <= 102) || (!a && id == 200)))
        return mr_error_set(err, MR_ENOTFOUND, "no message");
    fill_message(out, id, 1, 0, "support");
    out->raw_sha256 = id == 101 ? NULL : strdup(id == 102 ? GONE_KEY : RAW_KEY);
    return 0;
}

static void message_view_clear(struct mr_message_view *m)
{
    free(m->message_id);
    free(m->direction);
    free(m->kind);
    free(m->threaded_by);
    free(m->thread_detail);
    free(m->auto_json);
    free(m->inbox);
    for (size_t i = 0; i < m->nattachments; i++) {
        free(m->attachments[i].filename);
        free(m->attachments[i].content_type);
        free(m->attachments[i].sha256);
        free(m->attachments[i].scan);
    }
    free(m->attachments);
    free(m->from_email);
    free(m->from_name);
    free(m->subject);
    free(m->text);
    free(m->html);
    free(m->event_json);
    free(m->raw_sha256);
    free(m->matched_rules_json);
    memset(m, 0, sizeof *m);
}

void mr_message_view_clear(struct mr_message_view *m)
{
    fk.message_clears++;
    message_view_clear(m);
}

void mr_ticket_view_clear(struct mr_ticket_view *t)
{
    free(t->tenant);
    free(t->subject);
    free(t->status);
    free(t->priority);
    free(t->queue);
    free(t->assignee);
    free(t->tags_json);
    free(t->applied_rules_json);
    free(t->fields_json);
    free(t->requester);
    for (size_t i = 0; i < t->nmessages; i++)
        message_view_clear(&t->messages[i]);
    free(t->messages);
    memset(t, 0, sizeof *t);
}

void mr_ticket_list_free(struct mr_ticket_view *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mr_ticket_view_clear(&t[i]);
    free(t);
}

int mr_store_thread_secret(struct mr_store *st,
                           unsigned char out[MR_STORE_SECRET_LEN],
                           struct mr_error *err)
{
    (void)st;
    fk.secret_calls++;
    if (fk.secret_rc < 0)
        return mr_error_set(err, fk.secret_rc, "secret unreadable at /db");
    for (size_t i = 0; i < MR_STORE_SECRET_LEN; i++)
        out[i] = (unsigned char)(0xa0 + i);
    return 0;
}

/* The real token is src/ticket/thread.c's; this one shows that tenant,
 * number and the store's secret went in, and can be made to produce what
 * must not be given out. */
void mr_thread_token(const struct mr_thread_config *cfg, const char *tenant,
                     int64_t number, char *out, size_t cap)
{
    if (fk.token[0]) {
        snprintf(out, cap, "%s", fk.token);
        return;
    }
    snprintf(out, cap, "t%lld.%s%02x%zu", (long long)number, tenant,
             cfg->secret[0], cfg->secret_len);
}

/* This fake's raw messages all live in the blob store (ticket/raw.c asks
 * the database first). */
int mr_store_get_raw(struct mr_store *st, const char *sha256, char **data,
                     size_t *len, struct mr_error *err)
{
    (void)st;
    *data = NULL;
    *len = 0;
    return mr_error_set(err, MR_ENOTFOUND, "no inline raw %s", sha256);
}

int mr_blob_map(struct mr_blob *b, const char *key, struct mr_blob_map *out,
                struct mr_error *err)
{
    (void)b;
    memset(out, 0, sizeof *out);
    if (fk.map_rc < 0)
        return mr_error_set(err, fk.map_rc, "EIO reading %s", key);
    if (strcmp(key, RAW_KEY) != 0)
        return mr_error_set(err, MR_ENOTFOUND, "no blob %s", key);
    fk.maps++;
    out->p = raw_bytes;
    out->len = sizeof raw_bytes - 1;
    return 0;
}

void mr_blob_unmap(struct mr_blob_map *m)
{
    if (m->p)
        fk.maps--;
    memset(m, 0, sizeof *m);
}

/* Attachments for GET /api/v1/attachments/{id} (bytes: raw_bytes under
 * RAW_KEY): 900 a PDF, 901 blocked, 902 truncated (and its first chunk
 * looked like an executable, so blocked too), 903 a PNG that is a
 * PDF (mismatch), 904 an .exe stored before it was judged, 905 a UTF-8
 * name, 906 a webhook's (no bytes), 907 tenant b's, 908 its blob gone;
 * rescans waiting: 909 was clean, 910 infected (still blocked for it),
 * 911 an error whose earlier infection still blocks it. */
int mr_store_get_attachment(struct mr_store *st, const char *tenant,
                            int64_t id, struct mr_attachment_view *out,
                            struct mr_error *err)
{
    (void)st;
    memset(out, 0, sizeof *out);
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "down");
    bool a = strcmp(tenant, "a") == 0;
    if (!((a && id >= 900 && id <= 906) || (a && id >= 908 && id <= 911) ||
          (!a && id == 907)))
        return mr_error_set(err, MR_ENOTFOUND, "no attachment");
    static const char *const names[] = {
        "a.pdf",  "invoice.pdf.exe", "big.pdf",   "fake.png", "old.exe",
        "Größe \"x\".pdf", "w.pdf", "b.pdf", "gone.pdf", "was-clean.pdf",
        "was-bad.pdf", "still-bad.pdf"};
    const char *name = names[id - 900];
    out->id = id;
    out->filename = strdup(name);
    out->safe_filename = strdup(name);
    out->content_type = strdup(id == 903 ? "image/png" : "application/pdf");
    bool exe = id == 901 || id == 902;
    out->detected_type =
        strdup(exe ? "application/x-dosexec" : "application/pdf");
    out->blocked = exe;
    out->blocked_reason =
        exe ? strdup("detected_type: application/x-dosexec") : NULL;
    out->type_mismatch = id == 901 || id == 903;
    out->truncated = id == 902;
    out->size = 1234;
    out->sha256 = id == 902 || id == 906 ? NULL
                                         : strdup(id == 908 ? GONE_KEY
                                                            : RAW_KEY);
    if (id >= 909) {
        out->scan = strdup(id == 911 ? "error" : "pending");
        out->scan_previous =
            id == 911 ? NULL : strdup(id == 909 ? "clean" : "infected");
        out->blocked = id != 909;
        out->blocked_reason = id != 909 ? strdup("infected: Test.X") : NULL;
    }
    return 0;
}

void mr_attachment_view_clear(struct mr_attachment_view *v)
{
    free(v->filename);
    free(v->safe_filename);
    free(v->content_type);
    free(v->disposition);
    free(v->content_id);
    free(v->sha256);
    free(v->scan);
    free(v->scan_previous);
    free(v->scan_signature);
    free(v->detected_type);
    free(v->blocked_reason);
    memset(v, 0, sizeof *v);
}

/* Inline: RAW_KEY is a PNG of tenant a; GONE_KEY an SVG (which the store
 * may well hold: the route must refuse it itself). */
int mr_store_find_inline(struct mr_store *st, const char *tenant,
                         const char *sha256, char **type,
                         struct mr_error *err)
{
    (void)st;
    *type = NULL;
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "down");
    if (strcmp(tenant, "a") != 0)
        return mr_error_set(err, MR_ENOTFOUND, "none");
    if (strcmp(sha256, RAW_KEY) == 0)
        *type = strdup("image/png");
    else if (strcmp(sha256, GONE_KEY) == 0)
        *type = strdup("image/svg+xml");
    else
        return mr_error_set(err, MR_ENOTFOUND, "none");
    return 0;
}

/* The outbox calls (h_events.c): only linked here, the e2e tests drive
 * them (tests/e2e/test_events.py). */
int mr_store_list_events(struct mr_store *st, const char *tenant,
                         int64_t after, int limit, const char *const *types,
                         size_t ntypes, struct mr_event_rec **out, size_t *n,
                         struct mr_error *err)
{
    (void)st, (void)tenant, (void)after, (void)limit, (void)types;
    (void)ntypes;
    *out = NULL;
    *n = 0;
    return fk.store_rc < 0 ? mr_error_set(err, fk.store_rc, "db down") : 0;
}

void mr_event_list_free(struct mr_event_rec *ev, size_t n)
{
    (void)n;
    free(ev);
}

bool mr_store_consumer_name_valid(const char *name)
{
    return name != NULL && name[0] != '\0';
}

int mr_store_claim_events(struct mr_store *st, const char *tenant,
                          const char *name, int limit, int64_t now,
                          int64_t lease_ms, struct mr_event_lease *out,
                          struct mr_error *err)
{
    (void)st, (void)tenant, (void)name, (void)limit, (void)now;
    (void)lease_ms;
    memset(out, 0, sizeof *out);
    return mr_error_set(err, MR_ENOTFOUND, "no events to claim");
}

void mr_event_lease_clear(struct mr_event_lease *l)
{
    memset(l, 0, sizeof *l);
}

int mr_store_ack_events(struct mr_store *st, const char *tenant,
                        const char *name, int64_t cursor, int64_t lease_id,
                        int64_t now, struct mr_error *err)
{
    (void)st, (void)tenant, (void)name, (void)cursor, (void)lease_id;
    (void)now;
    return mr_error_set(err, MR_ECONFLICT, "not leased");
}

/* The live stream's store calls (server.c, h_events.c); the stream is
 * driven by tests/e2e/test_stream.py. */
uint64_t mr_store_commit_gen(struct mr_store *st)
{
    (void)st;
    return 0;
}

uint64_t mr_store_commit_wait(struct mr_store *st, uint64_t seen,
                              int timeout_ms)
{
    (void)st;
    struct timespec d = {0, (long)timeout_ms * 1000000L};
    nanosleep(&d, NULL);
    return seen;
}

int mr_store_events_head(struct mr_store *st, const char *tenant,
                         int64_t *seq, struct mr_error *err)
{
    (void)st, (void)tenant;
    *seq = 0;
    return fk.store_rc < 0 ? mr_error_set(err, fk.store_rc, "db down") : 0;
}

/* Webhook management (h_webhooks.c): this fake store has none; the
 * routes are proved end to end (tests/e2e/test_webhooks_api.py) and the
 * store by test_store_webhooks. */
bool mr_store_event_type_known(const char *type)
{
    return type && strcmp(type, "ticket.created") == 0;
}
void mr_webhook_clear(struct mr_webhook *w) { memset(w, 0, sizeof *w); }
void mr_webhook_list_free(struct mr_webhook *w, size_t n)
{
    (void)n;
    free(w);
}
void mr_webhook_delivery_clear(struct mr_webhook_delivery *d)
{
    memset(d, 0, sizeof *d);
}
void mr_webhook_delivery_list_free(struct mr_webhook_delivery *d, size_t n)
{
    (void)n;
    free(d);
}
int mr_store_webhook_create(struct mr_store *st, const char *tenant,
                            const struct mr_webhook_spec *spec,
                            struct mr_webhook *out, struct mr_error *err)
{
    (void)st, (void)tenant, (void)spec, (void)out;
    return mr_error_set(err, MR_EIO, "no webhooks here");
}
int mr_store_webhook_get(struct mr_store *st, const char *tenant, int64_t id,
                         struct mr_webhook *out, struct mr_error *err)
{
    (void)st, (void)tenant, (void)id, (void)out;
    return mr_error_set(err, MR_ENOTFOUND, "no webhook");
}
int mr_store_webhook_list(struct mr_store *st, const char *tenant,
                          struct mr_webhook **out, size_t *n,
                          struct mr_error *err)
{
    (void)st, (void)tenant, (void)err;
    *out = NULL;
    *n = 0;
    return 0;
}
int mr_store_webhook_update(struct mr_store *st, const char *tenant,
                            int64_t id, const struct mr_webhook_spec *spec,
                            struct mr_webhook *out, struct mr_error *err)
{
    (void)st, (void)tenant, (void)id, (void)spec, (void)out;
    return mr_error_set(err, MR_ENOTFOUND, "no webhook");
}
int mr_store_webhook_delete(struct mr_store *st, const char *tenant,
                            int64_t id, int64_t *deliveries,
                            struct mr_error *err)
{
    (void)st, (void)tenant, (void)id, (void)deliveries;
    return mr_error_set(err, MR_ENOTFOUND, "no webhook");
}
int mr_store_delivery_list(struct mr_store *st,
                           const struct mr_delivery_filter *f,
                           struct mr_webhook_delivery **out, size_t *n,
                           struct mr_error *err)
{
    (void)st, (void)f, (void)err;
    *out = NULL;
    *n = 0;
    return 0;
}
int mr_store_delivery_get(struct mr_store *st, const char *tenant, int64_t id,
                          struct mr_webhook_delivery *out,
                          struct mr_error *err)
{
    (void)st, (void)tenant, (void)id, (void)out;
    return mr_error_set(err, MR_ENOTFOUND, "no delivery");
}
int mr_store_delivery_redrive(struct mr_store *st, const char *tenant,
                              int64_t id, struct mr_webhook_delivery *out,
                              struct mr_error *err)
{
    (void)st, (void)tenant, (void)id, (void)out;
    return mr_error_set(err, MR_ENOTFOUND, "no delivery");
}

/* The outbound mail and notification queues (h_outbound.c): empty. */
int mr_store_outbound_list(struct mr_store *st,
                           const struct mr_outbound_filter *f,
                           struct mr_outbound_mail **out, size_t *n,
                           struct mr_error *err)
{
    (void)st, (void)f, (void)err;
    *out = NULL;
    *n = 0;
    return 0;
}
int mr_store_outbound_get(struct mr_store *st, const char *tenant, int64_t id,
                          struct mr_outbound_mail *out, struct mr_error *err)
{
    (void)st, (void)tenant, (void)id, (void)out;
    return mr_error_set(err, MR_ENOTFOUND, "no outbound mail");
}
int mr_store_outbound_retry(struct mr_store *st, const char *tenant,
                            int64_t id, struct mr_outbound_mail *out,
                            struct mr_error *err)
{
    (void)st, (void)tenant, (void)id, (void)out;
    return mr_error_set(err, MR_ENOTFOUND, "no outbound mail");
}
void mr_outbound_mail_clear(struct mr_outbound_mail *m)
{
    (void)m;
}
void mr_outbound_mail_list_free(struct mr_outbound_mail *m, size_t n)
{
    (void)m, (void)n;
}
int mr_store_notify_list(struct mr_store *st, const struct mr_notify_filter *f,
                         struct mr_notification_state **out, size_t *n,
                         struct mr_error *err)
{
    (void)st, (void)f, (void)err;
    *out = NULL;
    *n = 0;
    return 0;
}
int mr_store_notify_get(struct mr_store *st, const char *tenant, int64_t id,
                        struct mr_notification_state *out,
                        struct mr_error *err)
{
    (void)st, (void)tenant, (void)id, (void)out;
    return mr_error_set(err, MR_ENOTFOUND, "no notification");
}
int mr_store_notify_redrive(struct mr_store *st, const char *tenant,
                            int64_t id, struct mr_notification_state *out,
                            struct mr_error *err)
{
    (void)st, (void)tenant, (void)id, (void)out;
    return mr_error_set(err, MR_ENOTFOUND, "no notification");
}
void mr_notification_state_clear(struct mr_notification_state *x)
{
    (void)x;
}
void mr_notification_states_free(struct mr_notification_state *v, size_t n)
{
    (void)v, (void)n;
}

int mr_intake_accept_raw(struct mr_intake *in, const struct mr_intake_env *env,
                         const char *raw, size_t len,
                         struct mr_intake_result *res, struct mr_error *err)
{
    (void)in;
    fk.calls++;
    fk.channel = env->channel;
    snprintf(fk.tenant, sizeof fk.tenant, "%s", env->tenant ? env->tenant : "");
    fk.nrcpt = env->nrcpt;
    for (size_t i = 0; i < env->nrcpt && i < 8; i++)
        snprintf(fk.rcpt[i], sizeof fk.rcpt[i], "%s", env->rcpt[i]);
    snprintf(fk.remote_ip, sizeof fk.remote_ip, "%s",
             env->remote_ip ? env->remote_ip : "");
    fk.len = len;
    mr_sha256_hex(raw, len, fk.body_sha);
    if (fk.intake_rc < 0)
        return mr_error_set(err, fk.intake_rc, "fake intake refuses");
    memset(res, 0, sizeof *res);
    memcpy(res->raw_sha256, fk.body_sha, sizeof res->raw_sha256);
    res->job_ids[0] = 7;
    res->job_ids[1] = 8;
    res->njobs = 2;
    return 0;
}

int mr_intake_accept_event(struct mr_intake *in, const char *json, size_t len,
                           struct mr_intake_result *res, struct mr_error *err)
{
    (void)in;
    fk.calls++;
    fk.len = len;
    mr_sha256_hex(json, len, fk.body_sha);
    if (fk.intake_rc < 0)
        return mr_error_set(err, fk.intake_rc, "event has no from");
    memset(res, 0, sizeof *res);
    res->duplicate = fk.duplicate;
    return 0;
}

/* ---- fixture ------------------------------------------------------------ */

#define NOW_MS 1736157600000LL
/* The health test ages cached readings by moving the clock on, past the
 * health routes' reuse (MR__HTTP_HEALTH_TTL_MS in http-private.h). */
#define HEALTH_TTL_MS 5000
static _Atomic int64_t clock_offset_ms;
static int64_t fixed_now(void)
{
    return NOW_MS + clock_offset_ms;
}

#define SECRET "whsec_mailroom_test"

/* Tenant a's inboxes, one of each kind the reply address must handle. */
static struct mr_inbox inboxes_a[] = {
    {.name = "support",
     .kind = MR_INBOX_EXACT,
     .address = "support@a.example",
     .local = "support",
     .domain = "a.example"},
    {.name = "help",
     .kind = MR_INBOX_PATTERN,
     .address = "help+{team}@a.example",
     .local = "help",
     .domain = "a.example",
     .tag_name = "team"},
    {.name = "sales+eu",
     .kind = MR_INBOX_EXACT,
     .address = "sales+eu@a.example",
     .local = "sales+eu",
     .domain = "a.example"},
    /* 56 bytes: with "+t6.a" and the rest of the token, over 64. */
    {.name = "long",
     .kind = MR_INBOX_EXACT,
     .address = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdef"
                "@a.example",
     .local = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdef",
     .domain = "a.example"},
    {.name = "any",
     .kind = MR_INBOX_CATCHALL,
     .address = "*@a2.example",
     .domain = "a2.example"},
};
static struct mr_tenant tenants[] = {
    {.name = "a",
     .inboxes = inboxes_a,
     .ninboxes = sizeof inboxes_a / sizeof inboxes_a[0]},
    {.name = "b", .accept_all = true},
};

struct api {
    struct mr_config cfg;
    struct mr_store store;
    struct mr_blob blob;
    struct mr_intake intake;
    struct mr_metrics metrics;
    struct mr_http_server *srv;
    int port;
    char logged[512];
};

static void api_log(void *ctx, const char *msg)
{
    struct api *a = ctx;
    snprintf(a->logged, sizeof a->logged, "%s", msg);
}

static int api_up(void **state)
{
    memset(&fk, 0, sizeof fk);
    struct api *a = calloc(1, sizeof *a);
    a->cfg.limits.max_recipients = 5;
    a->cfg.limits.http_body_size = 64 * 1024;
    a->cfg.limits.max_connections = 50;
    a->cfg.webhook.secret = SECRET;
    a->cfg.webhook.tolerance_s = 300;
    a->cfg.tenants = tenants;
    a->cfg.ntenants = sizeof tenants / sizeof tenants[0];
    struct mr_http_deps deps = {
        .cfg = &a->cfg,
        .store = &a->store,
        .blob = &a->blob,
        .intake = &a->intake,
        .metrics = &a->metrics,
        .now_ms = fixed_now,
        .threads = 2,
        .log = api_log,
        .log_ctx = a,
    };
    struct mr_error err = {0};
    if (mr_http_start("127.0.0.1:0", &deps, &a->srv, &err) != 0) {
        print_error("cannot start: %s\n", err.msg);
        free(a);
        return -1;
    }
    a->port = mr_http_port(a->srv);
    *state = a;
    return 0;
}

static int api_down(void **state)
{
    struct api *a = *state;
    mr_http_stop(a->srv);
    free(a);
    return 0;
}

static json_t *reply_json(const struct http_reply *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, 0, &e);
    if (j == NULL)
        print_error("not JSON: %s\n%s\n", e.text, r->raw);
    assert_non_null(j);
    return j;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void expect_problem(const struct http_reply *r, int status,
                           const char *detail_has)
{
    char ct[128];
    if (r->status != status)
        print_error("answer: %s\n", r->raw);
    assert_int_equal(r->status, status);
    assert_non_null(http_header(r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/problem+json");
    json_t *j = reply_json(r);
    assert_string_equal(jstr(j, "type"), "about:blank");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
    if (detail_has && strstr(jstr(j, "detail"), detail_has) == NULL) {
        print_error("detail '%s' lacks '%s'\n", jstr(j, "detail"), detail_has);
        fail();
    }
    json_decref(j);
}

/* ---- health, readiness, metrics ---------------------------------------- */

static void health_ready_metrics(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    char v[256];

    assert_int_equal(http_do(a->port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = reply_json(&r);
    assert_string_equal(jstr(j, "status"), "ok");
    json_decref(j);
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    http_reply_free(&r);

    /* The checks are made once per HEALTH_TTL_MS: a failure
     * shows once the reading has aged, and answers say how old it is. */
    fk.blob_rc = MR_EIO;
    clock_offset_ms += 1500;
    assert_int_equal(http_do(a->port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    j = reply_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "age_ms")), 1500);
    assert_string_equal(jstr(j, "checked_at"), "2025-01-06T10:00:00Z");
    json_decref(j);
    http_reply_free(&r);
    clock_offset_ms += HEALTH_TTL_MS;
    assert_int_equal(http_do(a->port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
    expect_problem(&r, 503, "blob store");
    http_reply_free(&r);
    assert_string_equal(a->logged, "EROFS /blobs");

    fk.store_rc = MR_EIO;
    clock_offset_ms += HEALTH_TTL_MS;
    assert_int_equal(http_do(a->port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
    expect_problem(&r, 503, "database");
    expect_problem(&r, 503, "blob store");
    http_reply_free(&r);
    fk.blob_rc = 0;
    clock_offset_ms += HEALTH_TTL_MS;
    assert_int_equal(http_do(a->port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
    expect_problem(&r, 503, "database");
    assert_non_null(http_header(&r, "Retry-After", v, sizeof v));
    http_reply_free(&r);

    /* With the store down the gauges are left out, the counters stay. */
    assert_int_equal(http_do(a->port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "mailroom_queue_ready"));
    assert_null(strstr(r.body, "mailroom_outbound_mail_failed"));
    assert_non_null(strstr(r.body, "mailroom_http_requests_total"));
    http_reply_free(&r);
    fk.store_rc = 0;

    assert_int_equal(http_do(a->port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(http_header(&r, "Content-Type", v, sizeof v));
    assert_non_null(strstr(v, "text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "\nmailroom_queue_ready 4\n"));
    assert_non_null(strstr(r.body, "\nmailroom_http_requests_total 8\n"));
    http_reply_free(&r);

    /* The outbound queues: counters by label, gauges from the store. */
    a->metrics.webhook_deliveries[MR_WEBHOOK_DISABLED] = 2;
    a->metrics.notifications[MR_NOTIFY_KIND_JIRA][MR_NOTIFY_DEAD] = 3;
    a->metrics.outbound_mail[MR_MAIL_RETRIED] = 4;
    a->metrics.scans[MR_SCAN_INFECTED] = 5;
    assert_int_equal(http_do(a->port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    static const char *const want[] = {
        "\n# TYPE mailroom_webhook_deliveries_total counter\n",
        "\nmailroom_webhook_deliveries_total{outcome=\"disabled\"} 2\n",
        "\nmailroom_webhook_deliveries_total{outcome=\"dead\"} 0\n",
        "\nmailroom_notifications_total{kind=\"jira\",outcome=\"dead\"} 3\n",
        "\nmailroom_notifications_total{kind=\"unknown\",outcome=\"sent\"} 0\n",
        "\nmailroom_outbound_mail_total{outcome=\"retried\"} 4\n",
        "\nmailroom_attachment_scans_total{outcome=\"infected\"} 5\n",
        "\n# TYPE mailroom_webhook_deliveries_pending gauge\n",
        "\nmailroom_webhook_deliveries_pending 11\n",
        "\nmailroom_webhook_deliveries_dead 12\n",
        "\nmailroom_notifications_pending 13\n",
        "\nmailroom_notifications_dead 14\n",
        "\nmailroom_outbound_mail_pending 15\n",
        "\nmailroom_outbound_mail_failed 16\n",
        "\nmailroom_attachment_scans_pending 17\n",
        "\nmailroom_attachment_scans_error 18\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(r.body, want[i]) == NULL)
            fail_msg("/metrics lacks %s", want[i]);
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "POST", "/healthz", NULL, "", 0, &r), 0);
    expect_problem(&r, 405, NULL);
    http_reply_free(&r);
    clock_offset_ms = 0;
}

/* ---- POST /api/v1/messages ---------------------------------------------- */

static const char *const msg =
    "From: Alice <alice@customer.example>\r\n"
    "To: Support <support@a.example>, sales@a.example\r\n"
    "Cc: =?utf-8?q?Bob?= <bob@customer.example>\r\n"
    "Subject: Order 1234\r\n"
    "Message-ID: <m1@customer.example>\r\n"
    "\r\n"
    "To: not-a-header@body.example\r\n";

static const char *const ingest = "Authorization: Bearer tok-ingest-a\r\n"
                                  "Content-Type: message/rfc822\r\n";

static void post_message_ok(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, msg,
                             strlen(msg), &r),
                     0);
    assert_int_equal(r.status, 202);
    json_t *j = reply_json(&r);
    char want[65];
    mr_sha256_hex(msg, strlen(msg), want);
    assert_string_equal(jstr(json_object_get(j, "message"), "raw_sha256"),
                        want);
    json_t *jobs = json_object_get(j, "jobs");
    assert_int_equal(json_array_size(jobs), 2);
    assert_int_equal(json_integer_value(json_array_get(jobs, 0)), 7);
    json_decref(j);
    http_reply_free(&r);

    /* What intake got: the token's tenant, To and Cc (not the body's
     * lookalike line), the client's address, the whole raw message. */
    assert_int_equal(fk.calls, 1);
    assert_int_equal(fk.channel, MR_CH_HTTP);
    assert_string_equal(fk.tenant, "a");
    assert_int_equal(fk.nrcpt, 3);
    assert_string_equal(fk.rcpt[0], "support@a.example");
    assert_string_equal(fk.rcpt[1], "sales@a.example");
    assert_string_equal(fk.rcpt[2], "bob@customer.example");
    assert_string_equal(fk.remote_ip, "127.0.0.1");
    assert_string_equal(fk.body_sha, want);
    assert_int_equal(a->metrics.acked[MR_CH_HTTP], 1);

    /* ?rcpt= wins over the header, admin may ingest too. */
    assert_int_equal(
        http_do(
            a->port, "POST",
            "/api/v1/messages?rcpt=help%2Bteam%40a.example&rcpt=x@y.example",
            "Authorization: Bearer tok-admin-a\r\n"
            "Content-Type: message/rfc822\r\n",
            msg, strlen(msg), &r),
        0);
    assert_int_equal(r.status, 202);
    http_reply_free(&r);
    assert_int_equal(fk.nrcpt, 2);
    assert_string_equal(fk.rcpt[0], "help+team@a.example");
    assert_string_equal(fk.rcpt[1], "x@y.example");

    /* More To/Cc addresses than max_recipients: the first ones are
     * recorded. */
    const char *many = "To: a1@x.example, a2@x.example, a3@x.example,"
                       " a4@x.example, a5@x.example, a6@x.example\r\n"
                       "Subject: many\r\n\r\nbody\r\n";
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, many,
                             strlen(many), &r),
                     0);
    assert_int_equal(r.status, 202);
    http_reply_free(&r);
    assert_int_equal(fk.nrcpt, 5);
    /* A message without recipients is still taken (the tenant is the
     * token's); a header with no body at all too. */
    const char *bare = "Subject: none\r\nFrom: z@z.example";
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, bare,
                             strlen(bare), &r),
                     0);
    assert_int_equal(r.status, 202);
    http_reply_free(&r);
    assert_int_equal(fk.nrcpt, 0);
}

static void post_message_refusals(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    char v[256];

    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages",
                             "Content-Type: message/rfc822\r\n", msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 401, NULL);
    assert_non_null(http_header(&r, "WWW-Authenticate", v, sizeof v));
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages",
                             "Authorization: Bearer tok-nope\r\n"
                             "Content-Type: message/rfc822\r\n",
                             msg, strlen(msg), &r),
                     0);
    expect_problem(&r, 401, NULL);
    http_reply_free(&r);

    /* A stored role this build does not know is no token. */
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages",
                             "Authorization: Bearer tok-odd-role\r\n"
                             "Content-Type: message/rfc822\r\n",
                             msg, strlen(msg), &r),
                     0);
    expect_problem(&r, 401, NULL);
    http_reply_free(&r);

    static const char *const not_ingest[] = {"tok-read-a", "tok-agent-a"};
    for (size_t i = 0; i < 2; i++) {
        char h[256];
        snprintf(h, sizeof h,
                 "Authorization: Bearer %s\r\n"
                 "Content-Type: message/rfc822\r\n",
                 not_ingest[i]);
        assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", h, msg,
                                 strlen(msg), &r),
                         0);
        expect_problem(&r, 403, NULL);
        http_reply_free(&r);
    }

    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages",
                             "Authorization: Bearer tok-ingest-a\r\n"
                             "Content-Type: text/plain\r\n",
                             msg, strlen(msg), &r),
                     0);
    expect_problem(&r, 415, "message/rfc822");
    http_reply_free(&r);

    assert_int_equal(
        http_do(a->port, "POST", "/api/v1/messages", ingest, "", 0, &r), 0);
    expect_problem(&r, 400, "empty");
    http_reply_free(&r);

    const char *garbage = "this is not a message at all";
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest,
                             garbage, strlen(garbage), &r),
                     0);
    expect_problem(&r, 400, "RFC 5322");
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "POST",
                             "/api/v1/messages?rcpt=a@x&rcpt=b@x&rcpt=c@x"
                             "&rcpt=d@x&rcpt=e@x&rcpt=f@x",
                             ingest, msg, strlen(msg), &r),
                     0);
    expect_problem(&r, 400, "at most 5");
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "POST",
                             "/api/v1/messages?rcpt=no-at-sign", ingest, msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 400, "rcpt");
    http_reply_free(&r);
    assert_int_equal(http_do(a->port, "POST",
                             "/api/v1/messages?rcpt=a%20b@x.example", ingest,
                             msg, strlen(msg), &r),
                     0);
    expect_problem(&r, 400, "rcpt");
    http_reply_free(&r);
    assert_int_equal(fk.calls, 0);

    size_t big = 64 * 1024 + 1;
    char *huge = malloc(big);
    memset(huge, 'x', big);
    memcpy(huge, "Subject: x\r\n\r\n", 14);
    assert_int_equal(
        http_do(a->port, "POST", "/api/v1/messages", ingest, huge, big, &r), 0);
    expect_problem(&r, 413, NULL);
    http_reply_free(&r);
    free(huge);

    /* Intake's answers. */
    fk.intake_rc = MR_EIO;
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 503, "retry");
    assert_non_null(http_header(&r, "Retry-After", v, sizeof v));
    http_reply_free(&r);
    assert_string_equal(a->logged, "fake intake refuses");
    fk.intake_rc = MR_EAGAIN;
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 503, NULL);
    http_reply_free(&r);
    fk.intake_rc = MR_ELIMIT;
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 413, NULL);
    http_reply_free(&r);
    fk.intake_rc = MR_ENOTFOUND;
    assert_int_equal(http_do(a->port, "POST", "/api/v1/messages", ingest, msg,
                             strlen(msg), &r),
                     0);
    expect_problem(&r, 422, NULL);
    http_reply_free(&r);

    /* The way-in counters: 2 tempfails, everything else a refusal. */
    assert_int_equal(a->metrics.tempfail[MR_CH_HTTP], 2);
    assert_int_equal(a->metrics.acked[MR_CH_HTTP], 0);
    assert_int_equal(a->metrics.rejected[MR_CH_HTTP], 14);
    assert_int_equal(a->metrics.received[MR_CH_HTTP], 16);
}

/* ---- POST /inbox/webhook ------------------------------------------------ */

static const char *const event = "{\"message_id\":\"<w1@x>\",\"from\":{"
                                 "\"email\":\"alice@customer.example\"},"
                                 "\"subject\":\"Hi\",\"text\":\"Hello\"}";

static int post_webhook(struct api *a, const char *sig, const char *ctype,
                        const char *body, struct http_reply *r)
{
    char h[512];
    int n = 0;
    if (sig)
        n += snprintf(h + n, sizeof h - (size_t)n, "X-Email-Signature: %s\r\n",
                      sig);
    if (ctype)
        n += snprintf(h + n, sizeof h - (size_t)n, "Content-Type: %s\r\n",
                      ctype);
    h[n] = '\0';
    return http_do(a->port, "POST", "/inbox/webhook", h, body, strlen(body), r);
}

static void webhook_accepts(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    char sig[128];
    mr_webhook_sign(SECRET, -1, event, strlen(event), sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    http_reply_free(&r);
    assert_int_equal(fk.calls, 1);
    char want[65];
    mr_sha256_hex(event, strlen(event), want);
    assert_string_equal(fk.body_sha, want);

    /* Timestamped, within the window; a duplicate is also 204. */
    fk.duplicate = true;
    mr_webhook_sign(SECRET, NOW_MS / 1000 - 60, event, strlen(event), sig,
                    sizeof sig, NULL);
    assert_int_equal(
        post_webhook(a, sig, "application/json; charset=utf-8", event, &r), 0);
    assert_int_equal(r.status, 204);
    http_reply_free(&r);
    assert_int_equal(fk.calls, 2);
    assert_int_equal(a->metrics.acked[MR_CH_WEBHOOK], 2);
}

static void webhook_refusals(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    char sig[128], v[256];

    assert_int_equal(post_webhook(a, NULL, "application/json", event, &r), 0);
    expect_problem(&r, 401, "missing");
    assert_non_null(http_header(&r, "WWW-Authenticate", v, sizeof v));
    http_reply_free(&r);

    mr_webhook_sign("wrong", -1, event, strlen(event), sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    expect_problem(&r, 401, "does not match");
    http_reply_free(&r);

    /* A replay: a good signature an hour old. */
    mr_webhook_sign(SECRET, NOW_MS / 1000 - 3600, event, strlen(event), sig,
                    sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    expect_problem(&r, 401, "window");
    http_reply_free(&r);

    /* Signed, but not JSON by type or by content. */
    mr_webhook_sign(SECRET, -1, event, strlen(event), sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "text/plain", event, &r), 0);
    expect_problem(&r, 415, "application/json");
    http_reply_free(&r);
    assert_int_equal(post_webhook(a, sig, NULL, event, &r), 0);
    expect_problem(&r, 415, NULL);
    http_reply_free(&r);
    const char *bad = "{\"from\": ";
    mr_webhook_sign(SECRET, -1, bad, strlen(bad), sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", bad, &r), 0);
    expect_problem(&r, 400, "not JSON");
    http_reply_free(&r);
    const char *arr = "[1,2]";
    mr_webhook_sign(SECRET, -1, arr, strlen(arr), sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", arr, &r), 0);
    expect_problem(&r, 400, "object");
    http_reply_free(&r);
    mr_webhook_sign(SECRET, -1, "", 0, sig, sizeof sig, NULL);
    assert_int_equal(post_webhook(a, sig, "application/json", "", &r), 0);
    expect_problem(&r, 400, "empty");
    http_reply_free(&r);
    assert_int_equal(fk.calls, 0);

    mr_webhook_sign(SECRET, -1, event, strlen(event), sig, sizeof sig, NULL);
    fk.intake_rc = MR_EINVAL;
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    expect_problem(&r, 422, "no from");
    http_reply_free(&r);
    fk.intake_rc = MR_EIO;
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    expect_problem(&r, 503, NULL);
    http_reply_free(&r);
    fk.intake_rc = 0;

    /* A bearer token is no substitute for the signature. */
    assert_int_equal(http_do(a->port, "POST", "/inbox/webhook",
                             "Authorization: Bearer tok-admin-a\r\n"
                             "Content-Type: application/json\r\n",
                             event, strlen(event), &r),
                     0);
    expect_problem(&r, 401, NULL);
    http_reply_free(&r);

    /* No secret configured: the route is not there. */
    a->cfg.webhook.secret = NULL;
    assert_int_equal(post_webhook(a, sig, "application/json", event, &r), 0);
    expect_problem(&r, 404, NULL);
    http_reply_free(&r);
    a->cfg.webhook.secret = SECRET;
    assert_int_equal(a->metrics.acked[MR_CH_WEBHOOK], 0);
    assert_int_equal(a->metrics.tempfail[MR_CH_WEBHOOK], 1);
    assert_int_equal(a->metrics.rejected[MR_CH_WEBHOOK], 10);
}

/* ---- GET /api/v1/tickets ------------------------------------------------ */

/* GET /api/v1/ignored: admins only, paged, the rules' trail shown. */
static void list_ignored(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    static const char *const not_admin[] = {"tok-read-a", "tok-agent-a",
                                            "tok-ingest-a"};
    for (size_t i = 0; i < 3; i++) {
        char h[128];
        snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", not_admin[i]);
        assert_int_equal(
            http_do(a->port, "GET", "/api/v1/ignored", h, NULL, 0, &r), 0);
        assert_int_equal(r.status, 403);
        http_reply_free(&r);
    }
    const char *ad = "Authorization: Bearer tok-admin-a\r\n";
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/ignored?limit=1", ad, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = reply_json(&r);
    json_t *v = json_array_get(json_object_get(j, "ignored"), 0);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "id")), 2);
    assert_string_equal(jstr(v, "message_id"), "two@list.example");
    assert_string_equal(jstr(v, "from"), "news@list.example");
    assert_string_equal(jstr(v, "received_at"), "2025-01-06T10:00:00.000Z");
    json_t *ar = json_array_get(json_object_get(v, "applied_rules"), 0);
    assert_string_equal(jstr(ar, "decision"), "ignore");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(v, "matched_rules"), 0)),
                        "DropLists");
    assert_string_equal(jstr(j, "next_cursor"), "2");
    json_decref(j);
    http_reply_free(&r);
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/ignored?cursor=2", ad, NULL, 0, &r),
        0);
    assert_int_equal(r.status, 200);
    j = reply_json(&r);
    v = json_array_get(json_object_get(j, "ignored"), 0);
    assert_int_equal(json_integer_value(json_object_get(v, "id")), 1);
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    http_reply_free(&r);
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/ignored?cursor=zz", ad, NULL, 0, &r),
        0);
    assert_int_equal(r.status, 400);
    http_reply_free(&r);
}

/* POST /api/v1/ignored/{id}/release: agents and admins; 202 with the
 * document and its release, then 409; 404 for another tenant's or none;
 * the workers are woken. */
static void release_ignored(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    release_calls = 0;
    intake_wakes = 0;
    static const char *const refused[] = {"tok-read-a", "tok-ingest-a"};
    for (size_t i = 0; i < 2; i++) {
        char h[128];
        snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", refused[i]);
        assert_int_equal(http_do(a->port, "POST", "/api/v1/ignored/2/release",
                                 h, NULL, 0, &r),
                         0);
        assert_int_equal(r.status, 403);
        http_reply_free(&r);
    }
    assert_int_equal(release_calls, 0);
    const char *ag = "Authorization: Bearer tok-agent-a\r\n";
    const char *other = "Authorization: Bearer tok-agent-b\r\n";
    assert_int_equal(http_do(a->port, "POST", "/api/v1/ignored/2/release",
                             other, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 404);
    http_reply_free(&r);
    assert_int_equal(http_do(a->port, "POST", "/api/v1/ignored/x2/release", ag,
                             NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 404);
    http_reply_free(&r);
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/ignored/2/release", ag, NULL, 0, &r),
        0);
    assert_int_equal(r.status, 405);
    http_reply_free(&r);

    assert_int_equal(http_do(a->port, "POST", "/api/v1/ignored/2/release", ag,
                             NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 202);
    json_t *j = reply_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 2);
    json_t *rel = json_object_get(j, "release");
    assert_string_equal(jstr(rel, "state"), "queued");
    assert_int_equal(json_integer_value(json_object_get(rel, "job_id")), 77);
    assert_string_equal(jstr(rel, "by"), release_by);
    assert_int_equal(strncmp(release_by, "api:", 4), 0);
    assert_string_equal(jstr(rel, "requested_at"), "2025-01-06T10:00:00.000Z");
    assert_true(json_is_null(json_object_get(rel, "released_at")));
    assert_true(json_is_null(json_object_get(rel, "ticket_id")));
    json_decref(j);
    http_reply_free(&r);
    assert_int_equal(intake_wakes, 1);

    assert_int_equal(http_do(a->port, "POST", "/api/v1/ignored/2/release",
                             "Authorization: Bearer tok-admin-a\r\n", NULL, 0,
                             &r),
                     0);
    assert_int_equal(r.status, 409);
    j = reply_json(&r);
    assert_non_null(strstr(jstr(j, "detail"), "released already"));
    json_decref(j);
    http_reply_free(&r);
    assert_int_equal(intake_wakes, 1);
}

static void list_tickets(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    const char *ra = "Authorization: Bearer tok-read-a\r\n";

    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/tickets?limit=2", ra, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = reply_json(&r);
    json_t *ts = json_object_get(j, "tickets");
    assert_int_equal(json_array_size(ts), 2);
    json_t *t = json_array_get(ts, 0);
    assert_int_equal(json_integer_value(json_object_get(t, "id")), 3);
    assert_int_equal(json_integer_value(json_object_get(t, "number")), 3);
    assert_string_equal(jstr(t, "subject"), "Subject 3");
    assert_string_equal(jstr(t, "status"), "new");
    assert_string_equal(jstr(t, "priority"), "normal");
    assert_true(json_is_null(json_object_get(t, "queue")));
    assert_true(json_is_null(json_object_get(t, "assignee")));
    assert_true(json_is_array(json_object_get(t, "tags")));
    assert_string_equal(jstr(t, "requester"), "alice@customer.example");
    assert_int_equal(json_integer_value(json_object_get(t, "message_count")),
                     1);
    assert_string_equal(jstr(t, "created_at"), "2025-01-06T10:00:00.003Z");
    assert_string_equal(jstr(t, "updated_at"), "2025-01-06T10:00:03.000Z");
    /* The listing is the summary: no messages, no detail fields. */
    assert_int_equal(json_object_size(t), 13);
    assert_true(json_is_integer(json_object_get(t, "version")));
    const char *next = jstr(j, "next_cursor");
    assert_non_null(next);
    char target[128];
    snprintf(target, sizeof target, "/api/v1/tickets?limit=2&cursor=%s", next);
    json_decref(j);
    http_reply_free(&r);
    /* No filter given: every field is "any". */
    assert_true(fk.had_filter);
    assert_string_equal(fk.f_status, "(any)");
    assert_string_equal(fk.f_requester, "(any)");

    assert_int_equal(http_do(a->port, "GET", target, ra, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    j = reply_json(&r);
    ts = json_object_get(j, "tickets");
    assert_int_equal(json_array_size(ts), 1);
    t = json_array_get(ts, 0);
    assert_int_equal(json_integer_value(json_object_get(t, "id")), 1);
    assert_string_equal(jstr(t, "queue"), "billing");
    assert_int_equal(json_array_size(json_object_get(t, "tags")), 2);
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    http_reply_free(&r);

    /* The other tenant sees only its own. */
    assert_int_equal(http_do(a->port, "GET", "/api/v1/tickets",
                             "Authorization: Bearer tok-read-b\r\n", NULL, 0,
                             &r),
                     0);
    j = reply_json(&r);
    ts = json_object_get(j, "tickets");
    assert_int_equal(json_array_size(ts), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(ts, 0), "id")), 10);
    json_decref(j);
    http_reply_free(&r);

    static const char *const bad[] = {
        "/api/v1/tickets?limit=0", "/api/v1/tickets?limit=201",
        "/api/v1/tickets?limit=x", "/api/v1/tickets?cursor=zz",
        "/api/v1/tickets?cursor=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(http_do(a->port, "GET", bad[i], ra, NULL, 0, &r), 0);
        expect_problem(&r, 400, NULL);
        http_reply_free(&r);
    }

    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/tickets", NULL, NULL, 0, &r), 0);
    expect_problem(&r, 401, NULL);
    http_reply_free(&r);
    assert_int_equal(http_do(a->port, "GET", "/api/v1/tickets",
                             "Authorization: Bearer tok-ingest-a\r\n", NULL, 0,
                             &r),
                     0);
    expect_problem(&r, 403, NULL);
    http_reply_free(&r);
    /* admin and agent read too. */
    assert_int_equal(http_do(a->port, "GET", "/api/v1/tickets",
                             "Authorization: Bearer tok-agent-a\r\n", NULL, 0,
                             &r),
                     0);
    assert_int_equal(r.status, 200);
    http_reply_free(&r);

    fk.store_rc = MR_EIO;
    assert_int_equal(http_do(a->port, "GET", "/api/v1/tickets",
                             "Authorization: Bearer tok-admin-a\r\n", NULL, 0,
                             &r),
                     0);
    expect_problem(&r, 503, NULL);
    http_reply_free(&r);
    fk.store_rc = 0;
}

static void list_filters(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    const char *ra = "Authorization: Bearer tok-read-a\r\n";

    /* Every filter reaches the store; the requester lower-cased. */
    assert_int_equal(http_do(a->port, "GET",
                             "/api/v1/tickets?status=pending&queue=Billing%20EU"
                             "&priority=urgent&requester=Alice%40Customer."
                             "Example",
                             ra, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 200);
    http_reply_free(&r);
    assert_string_equal(fk.f_status, "pending");
    assert_string_equal(fk.f_queue, "Billing EU");
    assert_string_equal(fk.f_priority, "urgent");
    assert_string_equal(fk.f_requester, "alice@customer.example");

    static const char *const statuses[] = {"new", "open", "pending", "solved",
                                           "closed"};
    for (size_t i = 0; i < 5; i++) {
        char target[64];
        snprintf(target, sizeof target, "/api/v1/tickets?status=%s",
                 statuses[i]);
        assert_int_equal(http_do(a->port, "GET", target, ra, NULL, 0, &r), 0);
        assert_int_equal(r.status, 200);
        http_reply_free(&r);
        assert_string_equal(fk.f_status, statuses[i]);
        assert_string_equal(fk.f_priority, "(any)");
    }

    /* An empty value is no filter (a form left blank). */
    assert_int_equal(http_do(a->port, "GET",
                             "/api/v1/tickets?status=&priority=&requester=", ra,
                             NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 200);
    http_reply_free(&r);
    assert_string_equal(fk.f_status, "(any)");
    assert_string_equal(fk.f_priority, "(any)");
    assert_string_equal(fk.f_requester, "(any)");

    /* Unknown values are refused before the store is asked. */
    int calls = fk.list_calls;
    static const struct {
        const char *target, *detail;
    } bad[] = {
        {"/api/v1/tickets?status=Open", "status must be one of"},
        {"/api/v1/tickets?status=deleted", "status must be one of"},
        {"/api/v1/tickets?priority=asap", "priority must be one of"},
        {"/api/v1/tickets?priority=low%20", "priority must be one of"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            http_do(a->port, "GET", bad[i].target, ra, NULL, 0, &r), 0);
        expect_problem(&r, 400, bad[i].detail);
        http_reply_free(&r);
    }
    char longq[400];
    int n = snprintf(longq, sizeof longq, "/api/v1/tickets?requester=");
    memset(longq + n, 'x', 321);
    longq[n + 321] = '\0';
    assert_int_equal(http_do(a->port, "GET", longq, ra, NULL, 0, &r), 0);
    expect_problem(&r, 400, "requester is longer than 320");
    http_reply_free(&r);
    n = snprintf(longq, sizeof longq, "/api/v1/tickets?queue=");
    memset(longq + n, 'q', 321);
    longq[n + 321] = '\0';
    assert_int_equal(http_do(a->port, "GET", longq, ra, NULL, 0, &r), 0);
    expect_problem(&r, 400, "queue");
    http_reply_free(&r);
    assert_int_equal(fk.list_calls, calls);
}

/* ---- GET /api/v1/tickets/{id} ------------------------------------------- */

static json_t *get_json(struct api *a, const char *target, const char *auth)
{
    struct http_reply r;
    assert_int_equal(http_do(a->port, "GET", target, auth, NULL, 0, &r), 0);
    if (r.status != 200)
        print_error("%s: %s\n", target, r.raw);
    assert_int_equal(r.status, 200);
    json_t *j = reply_json(&r);
    http_reply_free(&r);
    return j;
}

static void get_ticket(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    const char *ra = "Authorization: Bearer tok-admin-a\r\n";

    json_t *j = get_json(a, "/api/v1/tickets/1", ra);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 1);
    assert_string_equal(jstr(j, "queue"), "billing");
    assert_int_equal(json_array_size(json_object_get(j, "tags")), 2);
    json_t *rules = json_object_get(j, "applied_rules");
    assert_int_equal(json_array_size(rules), 1);
    assert_string_equal(jstr(json_array_get(rules, 0), "rule"), "vip");
    assert_string_equal(
        jstr(json_array_get(
                 json_object_get(json_array_get(rules, 0), "actions"), 0),
             "tag"),
        "vip");
    assert_true(json_is_null(json_object_get(j, "linked_ticket_id")));
    assert_string_equal(jstr(json_object_get(j, "fields"), "invoice"),
                        "INV-123456");
    json_t *ms = json_object_get(j, "messages");
    assert_int_equal(json_array_size(ms), 2);
    assert_string_equal(
        json_string_value(json_array_get(
            json_object_get(json_array_get(ms, 0), "matched_rules"), 0)),
        "vip");
    /* A message no rule matched: an empty list, not null. */
    assert_int_equal(json_array_size(json_object_get(json_array_get(ms, 1),
                                                     "matched_rules")),
                     0);

    json_t *m = json_array_get(ms, 0);
    assert_int_equal(json_integer_value(json_object_get(m, "id")), 100);
    assert_string_equal(jstr(m, "message_id"), "first@customer.example");
    assert_string_equal(jstr(m, "direction"), "inbound");
    assert_string_equal(jstr(m, "kind"), "message");
    assert_string_equal(jstr(json_object_get(m, "from"), "email"),
                        "alice@customer.example");
    assert_string_equal(jstr(json_object_get(m, "from"), "name"), "Alice");
    assert_string_equal(
        jstr(json_array_get(json_object_get(m, "to"), 0), "email"),
        "support@a.example");
    assert_string_equal(
        jstr(json_array_get(json_object_get(m, "cc"), 0), "name"), "Bob");
    assert_string_equal(jstr(m, "subject"), "Order 1234");
    assert_string_equal(jstr(m, "date"), "2025-01-06T09:59:00Z");
    assert_string_equal(jstr(m, "received_at"), "2025-01-06T10:00:00.500Z");
    assert_string_equal(jstr(m, "channel"), "smtp");
    /* The stored column wins over the event's copy. */
    assert_string_equal(jstr(m, "inbox"), "support");
    assert_string_equal(jstr(m, "tag"), "billing");
    assert_string_equal(jstr(json_object_get(m, "envelope"), "mail_from"),
                        "alice@customer.example");
    assert_string_equal(jstr(m, "text"), "Hello");
    assert_string_equal(jstr(m, "stripped_text"), "Hello (stripped)");
    assert_true(json_is_null(json_object_get(m, "html_sanitized")));
    /* The original HTML never leaves through this document. */
    assert_null(json_object_get(m, "html"));
    json_t *au = json_object_get(m, "auto");
    assert_string_equal(jstr(au, "kind"), "none");
    assert_true(json_is_null(json_object_get(au, "reason")));
    assert_string_equal(jstr(m, "threaded_by"), "new");
    assert_true(json_is_null(json_object_get(m, "thread_detail")));
    assert_true(json_is_false(json_object_get(m, "unverified")));
    /* Attachments are the stored rows, not the event's list. */
    json_t *atts = json_object_get(m, "attachments");
    assert_int_equal(json_array_size(atts), 1);
    json_t *att = json_array_get(atts, 0);
    assert_int_equal(json_integer_value(json_object_get(att, "id")), 900);
    assert_string_equal(jstr(att, "filename"), "a.pdf");
    assert_string_equal(jstr(att, "content_type"), "application/pdf");
    assert_int_equal(json_integer_value(json_object_get(att, "size")), 1234);
    assert_string_equal(jstr(att, "sha256"), "ab12");
    assert_string_equal(jstr(att, "scan"), "clean");
    assert_true(json_is_null(json_object_get(att, "detected_type")));
    assert_true(json_is_false(json_object_get(att, "blocked")));
    assert_true(json_is_false(json_object_get(att, "truncated")));
    assert_true(json_is_false(json_object_get(att, "type_mismatch")));
    assert_string_equal(jstr(att, "url"), "/api/v1/attachments/900");
    assert_true(json_is_null(json_object_get(att, "scan_signature")));
    assert_true(json_is_null(json_object_get(att, "scan_previous")));
    assert_int_equal(json_object_size(att), 17);
    /* Exactly the documented fields, and no raw headers. */
    assert_null(json_object_get(m, "headers"));
    assert_int_equal(json_object_size(m), 24);

    /* A bounce joined by header from a stranger, whose stored event does
     * not parse: columns still show, the rest is empty. */
    m = json_array_get(ms, 1);
    assert_string_equal(jstr(m, "kind"), "delivery_failure");
    assert_string_equal(jstr(json_object_get(m, "from"), "email"),
                        "carol@other.example");
    assert_true(
        json_is_null(json_object_get(json_object_get(m, "from"), "name")));
    assert_int_equal(json_array_size(json_object_get(m, "to")), 0);
    assert_true(json_is_null(json_object_get(m, "date")));
    assert_true(json_is_null(json_object_get(m, "channel")));
    assert_true(json_is_null(json_object_get(m, "inbox")));
    assert_true(json_is_null(json_object_get(m, "envelope")));
    assert_true(json_is_null(json_object_get(m, "stripped_text")));
    au = json_object_get(m, "auto");
    assert_string_equal(jstr(au, "kind"), "bounce");
    assert_string_equal(jstr(au, "reason"), "multipart/report");
    assert_string_equal(jstr(au, "status"), "5.1.1");
    assert_string_equal(jstr(m, "threaded_by"), "in_reply_to");
    assert_string_equal(jstr(m, "thread_detail"),
                        "in-reply-to first@customer.example");
    assert_true(json_is_true(json_object_get(m, "unverified")));
    assert_int_equal(json_array_size(json_object_get(m, "attachments")), 0);
    assert_int_equal(json_object_size(m), 24);
    json_decref(j);

    /* Stored rules that do not parse show as none; a link shows its id. */
    j = get_json(a, "/api/v1/tickets/3", ra);
    assert_true(json_is_array(json_object_get(j, "applied_rules")));
    assert_int_equal(json_array_size(json_object_get(j, "applied_rules")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "linked_ticket_id")),
                     1);
    json_decref(j);
    j = get_json(a, "/api/v1/tickets/5", ra);
    assert_int_equal(json_array_size(json_object_get(j, "applied_rules")), 0);
    json_decref(j);

    /* Another tenant's ticket, a missing one and non-ids are all 404. */
    static const char *const missing[] = {
        "/api/v1/tickets/10",
        "/api/v1/tickets/4",
        "/api/v1/tickets/abc",
        "/api/v1/tickets/01",
        "/api/v1/tickets/-1",
        "/api/v1/tickets/1.0",
        "/api/v1/tickets/99999999999999999999",
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        assert_int_equal(http_do(a->port, "GET", missing[i], ra, NULL, 0, &r),
                         0);
        expect_problem(&r, 404, "ticket");
        http_reply_free(&r);
    }
    j = get_json(a, "/api/v1/tickets/10",
                 "Authorization: Bearer tok-read-b\r\n");
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 10);
    json_decref(j);

    assert_int_equal(
        http_do(a->port, "DELETE", "/api/v1/tickets/1", ra, NULL, 0, &r), 0);
    expect_problem(&r, 405, NULL);
    http_reply_free(&r);
}

static const char *reply_address_of(struct api *a, const char *target,
                                    const char *auth, char *out, size_t cap)
{
    json_t *j = get_json(a, target, auth);
    json_t *v = json_object_get(j, "reply_address");
    assert_non_null(v); /* always present, null when there is none */
    if (json_is_null(v)) {
        json_decref(j);
        return NULL;
    }
    assert_true(json_is_string(v));
    snprintf(out, cap, "%s", json_string_value(v));
    json_decref(j);
    return out;
}

static void reply_address(void **state)
{
    struct api *a = *state;
    const char *ra = "Authorization: Bearer tok-read-a\r\n";
    char got[400];

    /* An exact inbox: its address with the ticket's token as the tag,
     * made from the tenant, the number and the store's secret. */
    assert_non_null(
        reply_address_of(a, "/api/v1/tickets/1", ra, got, sizeof got));
    assert_string_equal(got, "support+t1.aa032@a.example");
    assert_int_equal(fk.secret_calls, 1);
    /* The first message that came through an inbox decides (5's first
     * came by webhook). */
    assert_non_null(
        reply_address_of(a, "/api/v1/tickets/5", ra, got, sizeof got));
    assert_string_equal(got, "support+t5.aa032@a.example");

    /* None: a pattern inbox (its tag would be lost), an exact inbox whose
     * address has a '+' (the token would not route back), one whose local
     * part would pass 64 bytes, a catch-all, an inbox no longer in the
     * configuration, an accept-all tenant. No secret is read for them. */
    int calls = fk.secret_calls;
    static const char *const none[] = {"/api/v1/tickets/2", "/api/v1/tickets/3",
                                       "/api/v1/tickets/7",
                                       "/api/v1/tickets/8"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        assert_null(reply_address_of(a, none[i], ra, got, sizeof got));
    assert_null(reply_address_of(a, "/api/v1/tickets/10",
                                 "Authorization: Bearer tok-read-b\r\n", got,
                                 sizeof got));
    assert_int_equal(fk.secret_calls, calls);
    assert_null(reply_address_of(a, "/api/v1/tickets/6", ra, got, sizeof got));

    /* A token that does not route back as this inbox's tag is not given
     * out: bytes a tag may not hold, or too long for one. */
    snprintf(fk.token, sizeof fk.token, "t1.A/B");
    assert_null(reply_address_of(a, "/api/v1/tickets/1", ra, got, sizeof got));
    memset(fk.token, 'x', 70);
    fk.token[70] = '\0';
    assert_null(reply_address_of(a, "/api/v1/tickets/1", ra, got, sizeof got));
    fk.token[0] = '\0';

    /* No secret yet (a database made before tokens): no address. */
    fk.secret_rc = MR_ENOTFOUND;
    assert_null(reply_address_of(a, "/api/v1/tickets/1", ra, got, sizeof got));
    /* The store failing is the store failing. */
    fk.secret_rc = MR_EIO;
    struct http_reply r;
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/tickets/1", ra, NULL, 0, &r), 0);
    expect_problem(&r, 503, "retry later");
    http_reply_free(&r);
    assert_string_equal(a->logged, "secret unreadable at /db");
    fk.secret_rc = 0;
}

/* ---- GET /api/v1/messages/{id}/raw -------------------------------------- */

static void raw_message(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    char v[256];
    const char *ra = "Authorization: Bearer tok-read-a\r\n";

    static const char *const readers[] = {
        "Authorization: Bearer tok-read-a\r\n",
        "Authorization: Bearer tok-agent-a\r\n",
        "Authorization: Bearer tok-admin-a\r\n",
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(http_do(a->port, "GET", "/api/v1/messages/100/raw",
                                 readers[i], NULL, 0, &r),
                         0);
        assert_int_equal(r.status, 200);
        assert_non_null(http_header(&r, "Content-Type", v, sizeof v));
        assert_string_equal(v, "message/rfc822");
        assert_non_null(http_header(&r, "Content-Disposition", v, sizeof v));
        assert_string_equal(v, "attachment; filename=\"message-100.eml\"");
        /* Byte for byte, NUL and invalid UTF-8 included. */
        assert_int_equal(r.body_len, sizeof raw_bytes - 1);
        assert_memory_equal(r.body, raw_bytes, sizeof raw_bytes - 1);
        http_reply_free(&r);
    }
    assert_int_equal(fk.maps, 0); /* every mapping released */

    assert_int_equal(
        http_do(a->port, "HEAD", "/api/v1/messages/100/raw", ra, NULL, 0, &r),
        0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_non_null(http_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "message/rfc822");
    http_reply_free(&r);

    /* Missing, foreign and malformed ids: 404 alike. */
    static const char *const missing[] = {
        "/api/v1/messages/200/raw",
        "/api/v1/messages/99/raw",
        "/api/v1/messages/abc/raw",
        "/api/v1/messages/0100/raw",
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        assert_int_equal(http_do(a->port, "GET", missing[i], ra, NULL, 0, &r),
                         0);
        expect_problem(&r, 404, "no such message");
        http_reply_free(&r);
    }
    assert_int_equal(http_do(a->port, "GET", "/api/v1/messages/200/raw",
                             "Authorization: Bearer tok-read-b\r\n", NULL, 0,
                             &r),
                     0);
    assert_int_equal(r.status, 200);
    http_reply_free(&r);
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/messages/100/raw/x", ra, NULL, 0, &r),
        0);
    expect_problem(&r, 404, "no resource");
    http_reply_free(&r);

    /* A webhook event has no raw form; say so. */
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/messages/101/raw", ra, NULL, 0, &r),
        0);
    expect_problem(&r, 404, "message 101 has no raw form");
    http_reply_free(&r);

    /* The database names a blob the blob store does not have: damage. */
    a->logged[0] = '\0';
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/messages/102/raw", ra, NULL, 0, &r),
        0);
    expect_problem(&r, 503, "missing from storage");
    http_reply_free(&r);
    assert_non_null(strstr(a->logged, "message 102"));
    assert_non_null(strstr(a->logged, GONE_KEY));
    fk.map_rc = MR_EIO;
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/messages/100/raw", ra, NULL, 0, &r),
        0);
    expect_problem(&r, 503, "retry later");
    assert_non_null(http_header(&r, "Retry-After", v, sizeof v));
    http_reply_free(&r);
    assert_non_null(strstr(a->logged, "EIO reading " RAW_KEY));
    fk.map_rc = 0;
    fk.store_rc = MR_EIO;
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/messages/100/raw", ra, NULL, 0, &r),
        0);
    expect_problem(&r, 503, NULL);
    http_reply_free(&r);
    fk.store_rc = 0;
    /* Every message read was released. */
    /* 3 readers, HEAD, tenant b, 101, 102, the failed mapping. */
    assert_int_equal(fk.message_clears, 3 + 1 + 1 + 1 + 1 + 1);
    assert_int_equal(fk.maps, 0);

    /* Roles and methods. */
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/messages/100/raw", NULL, NULL, 0, &r),
        0);
    expect_problem(&r, 401, NULL);
    http_reply_free(&r);
    assert_int_equal(http_do(a->port, "GET", "/api/v1/messages/100/raw",
                             "Authorization: Bearer tok-ingest-a\r\n", NULL, 0,
                             &r),
                     0);
    expect_problem(&r, 403, NULL);
    http_reply_free(&r);
    assert_int_equal(
        http_do(a->port, "POST", "/api/v1/messages/100/raw", ra, "", 0, &r), 0);
    expect_problem(&r, 405, NULL);
    assert_non_null(http_header(&r, "Allow", v, sizeof v));
    assert_string_equal(v, "GET, HEAD");
    http_reply_free(&r);
}

/* ---- GET /api/v1/attachments/{id}, /api/v1/inline/{sha256} ------------- */

static void attachment_download(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    char v[1300];
    const char *ra = "Authorization: Bearer tok-read-a\r\n";
    const char *ad = "Authorization: Bearer tok-admin-a\r\n";

    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/attachments/900", ra, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, sizeof raw_bytes - 1);
    assert_memory_equal(r.body, raw_bytes, sizeof raw_bytes - 1);
    assert_non_null(http_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/pdf");
    assert_non_null(http_header(&r, "Content-Disposition", v, sizeof v));
    assert_string_equal(
        v, "attachment; filename=\"a.pdf\"; filename*=UTF-8''a.pdf");
    assert_non_null(http_header(&r, "X-Content-Type-Options", v, sizeof v));
    assert_string_equal(v, "nosniff");
    assert_non_null(http_header(&r, "Content-Security-Policy", v, sizeof v));
    assert_string_equal(v, "sandbox");
    assert_non_null(http_header(&r, "Cache-Control", v, sizeof v));
    assert_string_equal(v, "no-store");
    http_reply_free(&r);
    assert_int_equal(fk.maps, 0); /* the stream released its mapping */

    /* Blocked: 403 for a reader, the bytes as octet-stream for an admin;
     * an .exe stored before it was judged is judged now. */
    for (int64_t id = 901; id <= 904; id += 3) {
        char path[64];
        snprintf(path, sizeof path, "/api/v1/attachments/%lld",
                 (long long)id);
        assert_int_equal(http_do(a->port, "GET", path, ra, NULL, 0, &r), 0);
        expect_problem(&r, 403, "only an admin");
        http_reply_free(&r);
        assert_int_equal(http_do(a->port, "GET", path, ad, NULL, 0, &r), 0);
        assert_int_equal(r.status, 200);
        assert_non_null(http_header(&r, "Content-Type", v, sizeof v));
        assert_string_equal(v, "application/octet-stream");
        http_reply_free(&r);
    }
    /* A mismatch is served as bytes. */
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/attachments/903", ra, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(http_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/octet-stream");
    http_reply_free(&r);
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/attachments/905", ra, NULL, 0, &r), 0);
    assert_non_null(http_header(&r, "Content-Disposition", v, sizeof v));
    assert_string_equal(v, "attachment; filename=\"Gr__e _x_.pdf\"; "
                           "filename*=UTF-8''Gr%C3%B6%C3%9Fe%20%22x%22.pdf");
    http_reply_free(&r);
    assert_int_equal(
        http_do(a->port, "HEAD", "/api/v1/attachments/900", ra, NULL, 0, &r),
        0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    http_reply_free(&r);

    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/attachments/902", ra, NULL, 0, &r), 0);
    expect_problem(&r, 404, "over the size limit");
    http_reply_free(&r);
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/attachments/906", ra, NULL, 0, &r), 0);
    expect_problem(&r, 404, "provider webhook");
    http_reply_free(&r);
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/attachments/908", ra, NULL, 0, &r), 0);
    expect_problem(&r, 503, "missing from storage");
    http_reply_free(&r);
    static const char *const missing[] = {
        "/api/v1/attachments/907", "/api/v1/attachments/899",
        "/api/v1/attachments/x", "/api/v1/attachments/0900"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        assert_int_equal(http_do(a->port, "GET", missing[i], ra, NULL, 0, &r),
                         0);
        expect_problem(&r, 404, "no such attachment");
        http_reply_free(&r);
    }
    assert_int_equal(http_do(a->port, "GET", "/api/v1/attachments/900",
                             "Authorization: Bearer tok-ingest-a\r\n", NULL, 0,
                             &r),
                     0);
    expect_problem(&r, 403, NULL);
    http_reply_free(&r);

    /* Inline: the PNG with its own headers; nothing else. */
    assert_int_equal(http_do(a->port, "GET", "/api/v1/inline/" RAW_KEY, ra,
                             NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, sizeof raw_bytes - 1);
    assert_non_null(http_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "image/png");
    assert_non_null(http_header(&r, "Content-Disposition", v, sizeof v));
    assert_string_equal(v, "inline");
    assert_non_null(http_header(&r, "Cache-Control", v, sizeof v));
    assert_string_equal(v, "private, max-age=86400");
    assert_non_null(http_header(&r, "Content-Security-Policy", v, sizeof v));
    assert_string_equal(v, "sandbox");
    http_reply_free(&r);
    static const char *const refused[] = {
        "/api/v1/inline/" GONE_KEY, "/api/v1/inline/abc",
        "/api/v1/inline/"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/api/v1/inline/"
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(http_do(a->port, "GET", refused[i], ra, NULL, 0, &r),
                         0);
        expect_problem(&r, 404, "no inline image");
        http_reply_free(&r);
    }
    assert_int_equal(http_do(a->port, "GET", "/api/v1/inline/" RAW_KEY,
                             "Authorization: Bearer tok-read-b\r\n", NULL, 0,
                             &r),
                     0);
    expect_problem(&r, 404, NULL);
    http_reply_free(&r);
    assert_int_equal(fk.maps, 0);
}

static void start_errors(void **state)
{
    (void)state;
    struct mr_http_server *srv = NULL;
    struct mr_error err = {0};
    assert_int_equal(mr_http_start("127.0.0.1:0", NULL, &srv, &err), MR_EINVAL);
    struct mr_http_deps deps = {0};
    assert_int_equal(mr_http_start("127.0.0.1:0", &deps, &srv, &err),
                     MR_EINVAL);
    assert_null(srv);
    /* A config with no limits at all still gets a body cap. */
    struct mr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct mr_store st;
    struct mr_blob b;
    struct mr_intake in;
    deps.cfg = &cfg;
    deps.store = &st;
    deps.blob = &b;
    deps.intake = &in;
    assert_int_equal(mr_http_start("127.0.0.1:0", &deps, &srv, &err), 0);
    mr_http_stop(srv);
    assert_int_equal(mr_http_start("300.1.1.1:80", &deps, &srv, &err),
                     MR_EINVAL);
}

static void rescan_routes(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    const char *ad = "Authorization: Bearer tok-admin-a\r\n";
    const char *ag = "Authorization: Bearer tok-agent-a\r\n";
    const char *adj = "Authorization: Bearer tok-admin-a\r\n"
                      "Content-Type: application/json\r\n";
    memset(&rk, 0, sizeof rk);

    /* No clamd: nothing would scan it, and the store is not asked. */
    assert_int_equal(http_do(a->port, "POST", "/api/v1/attachments/900/rescan",
                             ad, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 409);
    assert_non_null(strstr(r.body, "clamd"));
    http_reply_free(&r);
    assert_int_equal(http_do(a->port, "POST", "/api/v1/attachments/rescan",
                             adj, "{}", 2, &r),
                     0);
    assert_int_equal(r.status, 409);
    http_reply_free(&r);
    assert_int_equal(rk.calls, 0);

    a->cfg.clamd.socket = "/nonexistent/clamd.sock";
    assert_int_equal(http_do(a->port, "POST", "/api/v1/attachments/909/rescan",
                             ag, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 403); /* admins only */
    http_reply_free(&r);
    assert_int_equal(http_do(a->port, "POST", "/api/v1/attachments/909/rescan",
                             ad, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 202);
    assert_int_equal(rk.id, 909);
    assert_string_equal(rk.tenant, "a");
    json_t *doc = json_loadb(r.body, r.body_len, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "id")), 909);
    assert_string_equal(jstr(doc, "scan"), "pending");
    assert_string_equal(jstr(doc, "scan_previous"), "clean");
    assert_string_equal(jstr(doc, "url"), "/api/v1/attachments/909");
    json_decref(doc);
    http_reply_free(&r);
    assert_non_null(strstr(a->logged, "attachment 909"));
    /* No bytes; another tenant's; no id. */
    static const struct {
        const char *path;
        int status;
    } bad[] = {{"/api/v1/attachments/902/rescan", 409},
               {"/api/v1/attachments/907/rescan", 404},
               {"/api/v1/attachments/x/rescan", 404}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            http_do(a->port, "POST", bad[i].path, ad, NULL, 0, &r), 0);
        assert_int_equal(r.status, bad[i].status);
        http_reply_free(&r);
    }

    /* Bulk: the body's filters reach the store for the token's tenant. */
    const char *body = "{\"state\": \"clean\", \"since\": \"2h\", "
                       "\"limit\": 50}";
    assert_int_equal(http_do(a->port, "POST", "/api/v1/attachments/rescan",
                             adj, body, strlen(body), &r),
                     0);
    assert_int_equal(r.status, 202);
    assert_string_equal(rk.f_tenant, "a");
    assert_int_equal(rk.f.state, MR_SCAN_RESCAN_CLEAN);
    assert_int_equal(rk.f.received_after, fixed_now() - 2 * 3600 * 1000);
    assert_int_equal(rk.f.limit, 50);
    assert_false(rk.f.dry_run);
    doc = json_loadb(r.body, r.body_len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(doc, "queued")), 7);
    assert_string_equal(jstr(doc, "state"), "clean");
    assert_true(json_is_false(json_object_get(doc, "dry_run")));
    json_decref(doc);
    http_reply_free(&r);
    body = "{\"dry_run\": true, \"received_after\": \"2025-01-01T00:00:00Z\"}";
    assert_int_equal(http_do(a->port, "POST", "/api/v1/attachments/rescan",
                             adj, body, strlen(body), &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rk.f.state, MR_SCAN_RESCAN_ERROR);
    assert_int_equal(rk.f.received_after, 1735689600000LL);
    assert_true(rk.f.dry_run);
    http_reply_free(&r);
    static const char *const refused[] = {
        "{\"stat\": \"clean\"}", "{\"state\": \"dirty\"}",
        "{\"since\": \"1h\", \"received_after\": \"2025-01-01T00:00:00Z\"}",
        "{\"since\": \"soon\"}", "{\"limit\": 0}", "{\"dry_run\": 1}",
        "[]", "{"};
    int calls = rk.calls;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(http_do(a->port, "POST",
                                 "/api/v1/attachments/rescan", adj,
                                 refused[i], strlen(refused[i]), &r),
                         0);
        assert_int_equal(r.status, 400);
        http_reply_free(&r);
    }
    assert_int_equal(rk.calls, calls);
    assert_int_equal(http_do(a->port, "POST", "/api/v1/attachments/rescan",
                             ad, "{}", 2, &r),
                     0);
    assert_int_equal(r.status, 415);
    http_reply_free(&r);
    a->cfg.clamd.socket = NULL;
}

/* While a rescan waits, downloads follow the verdict it had. */
static void rescan_downloads(void **state)
{
    struct api *a = *state;
    struct http_reply r;
    const char *ra = "Authorization: Bearer tok-read-a\r\n";
    const char *ad = "Authorization: Bearer tok-admin-a\r\n";
    a->cfg.clamd.socket = "/nonexistent/clamd.sock";
    a->cfg.clamd.on_error_block = true;
    /* Was clean: still served to agents, on_error: block or not. */
    assert_int_equal(
        http_do(a->port, "GET", "/api/v1/attachments/909", ra, NULL, 0, &r),
        0);
    assert_int_equal(r.status, 200);
    http_reply_free(&r);
    /* Was infected, or failed since: quarantined, admins included. */
    for (int id = 910; id <= 911; id++) {
        char path[64];
        snprintf(path, sizeof path, "/api/v1/attachments/%d", id);
        assert_int_equal(http_do(a->port, "GET", path, ad, NULL, 0, &r), 0);
        assert_int_equal(r.status, 403);
        assert_non_null(strstr(r.body, "infected: Test.X"));
        http_reply_free(&r);
    }
    a->cfg.clamd.on_error_block = false;
    a->cfg.clamd.socket = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(health_ready_metrics, api_up, api_down),
        cmocka_unit_test_setup_teardown(post_message_ok, api_up, api_down),
        cmocka_unit_test_setup_teardown(post_message_refusals, api_up,
                                        api_down),
        cmocka_unit_test_setup_teardown(webhook_accepts, api_up, api_down),
        cmocka_unit_test_setup_teardown(webhook_refusals, api_up, api_down),
        cmocka_unit_test_setup_teardown(list_tickets, api_up, api_down),
        cmocka_unit_test_setup_teardown(list_ignored, api_up, api_down),
        cmocka_unit_test_setup_teardown(release_ignored, api_up, api_down),
        cmocka_unit_test_setup_teardown(list_filters, api_up, api_down),
        cmocka_unit_test_setup_teardown(get_ticket, api_up, api_down),
        cmocka_unit_test_setup_teardown(reply_address, api_up, api_down),
        cmocka_unit_test_setup_teardown(raw_message, api_up, api_down),
        cmocka_unit_test_setup_teardown(attachment_download, api_up, api_down),
        cmocka_unit_test_setup_teardown(rescan_routes, api_up, api_down),
        cmocka_unit_test_setup_teardown(rescan_downloads, api_up, api_down),
        cmocka_unit_test(start_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
