/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker.c - job claiming, the per-job pipeline, retries.
 *
 * The parser's event JSON is the contract between stages (docs/event.md),
 * so a worker renders it once, adds what only the server knows (tenant,
 * inbox, envelope, received_at) and stores that very text; the columns the
 * store indexes are read back from it. Attachments stream from the parser
 * straight into blob writers through the parse sink, so a large attachment
 * is never held in memory.
 */
#include "ticket/worker.h"

#include "ticket/raw.h"
#include "ticket/record.h"

#include "content/attach_policy.h"
#include "content/classify.h"
#include "content/content.h"
#include "content/html_text.h"
#include "content/sniff.h"
#include "ticket/thread.h"
#include "ticket/rules.h"
#include "ticket/autoack.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mime/date.h"
#include "mime/mime.h"
#include "mime/msgid.h"
#include "util/arena.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/clock.h"

#define IDLE_POLL_MS 1000 /* a wake-up normally comes sooner */
/* Jobs a worker claims and stores at once: one claim transaction and one
 * delivering commit for all of them. Small enough that a batch of large
 * messages stays cheap in memory and other workers still get work. */
#define BATCH 16
#define BATCH_BYTES (8u << 20) /* prepared events held at once */
#define MAX_WORKERS 64

struct worker_thread {
    struct mr_workers *pool;
    pthread_t tid;
    char name[96];
};

struct mr_workers {
    struct mr_worker_deps deps;
    atomic_bool sniff_warned; /* "no libmagic" is logged once */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint64_t wakeups; /* bumped by mr_workers_wake, under mu */
    bool stopping;    /* under mu */
    struct worker_thread *threads;
    int nthreads;
};

int64_t mr_worker_backoff_ms(int attempts, int base_ms, int max_ms,
                             double rnd)
{
    return mr_backoff_jitter(
        mr_backoff_ms(attempts, base_ms > 0 ? base_ms : 1000, max_ms), rnd);
}

static const char *jstr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- attachments into the blob store --------------------------------- */

/* What one worker thread keeps from job to job: converters and the type
 * sniffer are costly to open, and neither may be shared between threads. */
struct job_ctx {
    struct mr_charset_ctx *cs;
    struct mr_sniff *sniff;
    atomic_bool *sniff_warned; /* the pool's, so one line per process */
    struct mr_rules_scratch *scratch; /* created on first use */
    struct mr_rules_result result;    /* reused from message to message */
    struct mr_rules_ref *rules;       /* held for one batch; NULL: none */
};

static void job_ctx_release(struct job_ctx *jc)
{
    mr_rules_scratch_free(&jc->scratch);
    mr_rules_result_release(&jc->result);
    mr_sniff_free(&jc->sniff);
    mr_charset_ctx_free(&jc->cs);
}

/* What the sink learned of one attachment. */
struct att_state {
    char key[MR_BLOB_KEY_LEN + 1]; /* blob key, "" until stored */
    uint64_t seen;                 /* decoded bytes the parser handed over */
    bool truncated;                /* over a limit: writer aborted */
    char detected[MR_SNIFF_TYPE_MAX + 1]; /* libmagic's type, "" unknown */
};

/* The parse sink: each attachment's decoded bytes go to a blob writer as
 * they come, its first MR_SNIFF_BYTES are kept for libmagic, and the size
 * limits are enforced on the way: past one, the writer is aborted and the
 * rest of that attachment is only counted (docs/attachments.md). Only one
 * attachment is open at a time: the parser hands them over in order. */
struct blob_sink {
    struct mr_blob *blob;
    struct mr_sniff *sniff;
    uint64_t max_bytes;         /* per attachment; 0: none */
    uint64_t max_message_bytes; /* stored per message; 0: none */
    uint64_t stored;            /* bytes of this message's stored blobs */
    bool open;                  /* an attachment is in progress */
    size_t index;               /* which one */
    struct mr_blob_writer *w;   /* NULL once truncated (or before data) */
    char *head;                 /* MR_SNIFF_BYTES, its first bytes */
    size_t head_len;
    struct att_state *atts;     /* by attachment index */
    size_t natts;
    struct mr_error err;
};

static struct att_state *att_at(struct blob_sink *s, size_t index)
{
    if (index >= s->natts) {
        size_t n = index + 16;
        s->atts = mr_xrealloc(s->atts, n * sizeof *s->atts);
        memset(s->atts + s->natts, 0, (n - s->natts) * sizeof *s->atts);
        s->natts = n;
    }
    return &s->atts[index];
}

/* Closes the open attachment: its type from the kept head, its blob
 * committed unless it was cut. */
static int sink_finish(struct blob_sink *s)
{
    if (!s->open)
        return MR_OK;
    s->open = false;
    struct att_state *a = att_at(s, s->index);
    if (s->sniff)
        mr_sniff_type(s->sniff, s->head, s->head_len, a->detected);
    if (!s->w)
        return MR_OK;
    int rc = mr_blob_writer_commit(s->w, a->key, &s->err);
    s->w = NULL;
    if (rc == MR_OK)
        s->stored += a->seen;
    return rc;
}

static bool over_limit(const struct blob_sink *s, uint64_t seen)
{
    return (s->max_bytes && seen > s->max_bytes) ||
           (s->max_message_bytes && s->stored + seen > s->max_message_bytes);
}

static int sink_data(void *ctx, size_t index, const char *p, size_t n)
{
    struct blob_sink *s = ctx;
    if (s->open && s->index != index) {
        int rc = sink_finish(s);
        if (rc != MR_OK)
            return rc;
    }
    if (!s->open) {
        s->open = true;
        s->index = index;
        s->head_len = 0;
    }
    struct att_state *a = att_at(s, index);
    if (s->head_len < MR_SNIFF_BYTES) {
        size_t k = MR_SNIFF_BYTES - s->head_len;
        if (k > n)
            k = n;
        memcpy(s->head + s->head_len, p, k);
        s->head_len += k;
    }
    a->seen += n;
    if (a->truncated)
        return MR_OK;
    if (over_limit(s, a->seen)) {
        /* The message still becomes a ticket; this attachment becomes a
         * record without bytes. */
        mr_blob_writer_abort(s->w);
        s->w = NULL;
        a->truncated = true;
        return MR_OK;
    }
    if (!s->w) {
        int rc = mr_blob_writer_begin(s->blob, 0, &s->w, &s->err);
        if (rc != MR_OK)
            return rc;
    }
    return mr_blob_writer_write(s->w, p, n, &s->err);
}

static void sink_init(struct blob_sink *s, const struct mr_worker_deps *d,
                      struct job_ctx *jc)
{
    memset(s, 0, sizeof *s);
    s->blob = d->blob;
    s->sniff = jc->sniff;
    s->max_bytes = d->cfg->attachments.max_attachment_bytes;
    s->max_message_bytes = d->cfg->attachments.max_message_attachment_bytes;
    s->head = mr_xmalloc(MR_SNIFF_BYTES);
}

static void sink_release(struct blob_sink *s)
{
    mr_blob_writer_abort(s->w);
    s->w = NULL;
    free(s->atts);
    free(s->head);
}

/* Empty attachments never reach the sink; store them too so every
 * attachment row that names a blob names one that exists. */
static int sink_store_empty(struct blob_sink *s, size_t natt,
                            struct mr_error *err)
{
    for (size_t i = 0; i < natt; i++) {
        struct att_state *a = att_at(s, i);
        if (a->key[0] || a->truncated)
            continue;
        int rc = mr_blob_put(s->blob, "", 0, a->key, err);
        if (rc != MR_OK)
            return rc;
        if (s->sniff)
            mr_sniff_type(s->sniff, "", 0, a->detected);
    }
    return MR_OK;
}

static void warn_no_magic(const struct mr_worker_deps *d, struct job_ctx *jc)
{
    const char *why = NULL;
    if (!jc->sniff || mr_sniff_available(jc->sniff, &why))
        return;
    if (jc->sniff_warned && atomic_exchange(jc->sniff_warned, true))
        return;
    mr_log_kv(d->log, MR_LOG_WARN, "worker",
              "libmagic is not available: attachment types are not "
              "detected (detected_type null); install libmagic1",
              "error", why, NULL);
}

static void put_truncated(const struct mr_worker_deps *d,
                          const struct blob_sink *s, json_t *ev, json_t *a,
                          size_t i, const struct mr_job *job)
{
    uint64_t lim = s->max_bytes;
    const char *which = "per-attachment";
    if (!lim || s->atts[i].seen <= lim) {
        lim = s->max_message_bytes;
        which = "per-message";
    }
    json_t *size = json_object_get(a, "size");
    long long n = json_is_integer(size) ? (long long)json_integer_value(size)
                                        : (long long)s->atts[i].seen;
    const char *name = jstr(a, "safe_filename");
    char w[400];
    snprintf(w, sizeof w,
             "attachment_truncated: attachment %zu (%.200s, %lld bytes) is "
             "over the %s limit of %llu bytes; it was not stored",
             i + 1, name ? name : "unnamed", n, which,
             (unsigned long long)lim);
    json_t *warnings = json_object_get(ev, "warnings");
    if (!json_is_array(warnings)) {
        warnings = json_array();
        json_object_set_new(ev, "warnings", warnings);
    }
    json_array_append_new(warnings, json_string(w));
    /* No blob: the row must not name one. */
    json_object_set_new(a, "sha256", json_null());
    char jid[24], idx[24], bytes[24];
    snprintf(jid, sizeof jid, "%lld", (long long)job->id);
    snprintf(idx, sizeof idx, "%zu", i + 1);
    snprintf(bytes, sizeof bytes, "%lld", n);
    mr_log_kv(d->log, MR_LOG_WARN, "worker",
              "attachment over the size limit, stored as a truncated record",
              "job", jid, "attachment", idx, "size", bytes, "limit", which,
              "tenant", job->tenant, NULL);
}

/* The attachment stage of the event: each attachment's detected type,
 * the policy's verdict (blocked, blocked_reason, type_mismatch) and
 * whether it was cut. s is NULL for a provider's event (no bytes seen). */
static void annotate_attachments(const struct mr_worker_deps *d,
                                 struct job_ctx *jc,
                                 const struct blob_sink *s, json_t *ev,
                                 const struct mr_job *job)
{
    struct mr_attach_policy policy;
    mr_attach_policy_from_config(d->cfg, &policy);
    if (s)
        warn_no_magic(d, jc);
    bool scanning = d->cfg->clamd.socket || d->cfg->clamd.address;
    json_t *list = json_object_get(ev, "attachments");
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        if (!json_is_object(a))
            continue;
        const struct att_state *st = s && i < s->natts ? &s->atts[i] : NULL;
        const char *detected = st && st->detected[0] ? st->detected : NULL;
        struct mr_attach_verdict v;
        mr_attach_judge(&policy, jstr(a, "filename"), jstr(a, "safe_filename"),
                        jstr(a, "content_type"), detected, &v);
        json_object_set_new(a, "detected_type",
                            detected ? json_string(detected) : json_null());
        json_object_set_new(a, "type_mismatch", json_boolean(v.type_mismatch));
        json_object_set_new(a, "blocked", json_boolean(v.blocked));
        json_object_set_new(a, "blocked_reason",
                            v.blocked ? json_string(v.reason) : json_null());
        bool cut = st && st->truncated;
        json_object_set_new(a, "truncated", json_boolean(cut));
        if (cut)
            put_truncated(d, s, ev, a, i, job);
        /* With clamd configured, stored bytes wait for the scanner
         * (src/scan/scanner.c), which runs off this path. */
        if (s && !cut && scanning && jstr(a, "sha256"))
            json_object_set_new(a, "scan", json_string("pending"));
    }
}

/* ---- turning a job into a stored message ----------------------------- */

/* Adds what only the server knows to the parser's event. */
static void add_server_fields(json_t *ev, const struct mr_job *job,
                              json_t *envelope)
{
    char when[32];
    mr_date_rfc3339(job->received_at / 1000, when);
    json_object_set_new(ev, "tenant", json_string(job->tenant));
    json_object_set_new(ev, "received_at", json_string(when));
    json_object_set_new(ev, "channel", json_string(job->channel));
    if (envelope) {
        json_object_set(ev, "inbox", json_object_get(envelope, "inbox"));
        json_t *tag = json_object_get(envelope, "tag");
        json_object_set(ev, "tag", tag ? tag : json_null());
        json_t *env = json_object();
        static const char *const keys[] = {"mail_from", "rcpt_to",
                                           "remote_ip", "helo"};
        for (size_t i = 0; i < 4; i++) {
            json_t *v = json_object_get(envelope, keys[i]);
            json_object_set(env, keys[i], v ? v : json_null());
        }
        json_object_set_new(ev, "envelope", env);
    }
}

/* The content stage so far: auto-reply / bounce / list classification,
 * into the event's `auto` (threading reads it: a bounce joins the ticket of
 * what it reports on, an auto-reply never reopens one). mail_from: the
 * envelope's, "" for a null return path, NULL when unknown. */
static void classify(json_t *ev, const char *mail_from)
{
    struct mr_classification c;
    struct mr_error err = {0};
    if (mr_classify_event(ev, mail_from, &c, &err) == MR_OK)
        json_object_set_new(ev, "auto", mr_classify_to_json(&c));
}

/* A job made ready to store: the final event and the record that points
 * into it. Batches of these are delivered together (one commit). */
struct rules_out {
    struct mr_rules_outcome o; /* points into the strings below */
    char *queue, *priority, *assignee;
    char *tags_add, *tags_remove, *applied, *matched, *fields;
    struct mr_autoack ack; /* o.ack points here when set */
    char *notify;
};

struct prepared {
    json_t *ev; /* a reference of our own; NULL when not prepared */
    struct mr_record record;
    struct rules_out rules[2]; /* [0] new ticket, [1] reply */
    /* A release: the ignored row (the record borrows its channel and raw
     * key) and who asked. */
    struct mr_ignored_view release;
    char *release_by;
};

static void rules_out_free(struct rules_out *r)
{
    free(r->queue);
    free(r->priority);
    free(r->assignee);
    free(r->tags_add);
    free(r->tags_remove);
    free(r->applied);
    free(r->matched);
    free(r->fields);
    mr_autoack_clear(&r->ack);
    free(r->notify);
    memset(r, 0, sizeof *r);
}

static void prepared_free(struct prepared *p)
{
    if (!p->ev)
        return;
    rules_out_free(&p->rules[0]);
    rules_out_free(&p->rules[1]);
    mr_record_free(&p->record);
    mr_ignored_view_clear(&p->release);
    free(p->release_by);
    json_decref(p->ev);
    memset(p, 0, sizeof *p);
}

static char *dup_or_null(const char *s)
{
    return s ? mr_xstrndup(s, strlen(s)) : NULL;
}

static char *str_array_json(const char *const *v, size_t n)
{
    struct mr_buf b;
    struct mr_json j;
    mr_buf_init(&b, 0);
    mr_json_init(&j, &b, false);
    mr_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++)
        mr_json_cstr(&j, v[i]);
    mr_json_arr_end(&j);
    return mr_buf_detach(&b, NULL);
}

/* Copies what the store needs out of r, which the next evaluation reuses. */
static void rules_out_fill(struct rules_out *o, const struct mr_rules_result *r)
{
    o->queue = dup_or_null(r->queue);
    o->priority = dup_or_null(r->priority);
    o->assignee = dup_or_null(r->assignee);
    o->tags_add = str_array_json(r->tags_add, r->ntags_add);
    o->tags_remove = str_array_json(r->tags_remove, r->ntags_remove);
    o->matched = str_array_json(r->matched, r->nmatched);
    o->notify = r->nnotify ? str_array_json(r->notify, r->nnotify) : NULL;
    struct mr_buf b;
    struct mr_json j;
    mr_buf_init(&b, 0);
    mr_json_init(&j, &b, false);
    mr_rules_trail_write_json(r, &j);
    o->applied = mr_buf_detach(&b, NULL);
    mr_buf_init(&b, 0);
    mr_json_init(&j, &b, false);
    mr_json_obj_begin(&j);
    for (size_t i = 0; i < r->nfields; i++) {
        mr_json_key(&j, r->fields[i].name);
        mr_json_cstr(&j, r->fields[i].value);
    }
    mr_json_obj_end(&j);
    o->fields = mr_buf_detach(&b, NULL);
    o->o = (struct mr_rules_outcome){
        .queue = o->queue,
        .priority = o->priority,
        .assignee = o->assignee,
        .tags_add_json = o->tags_add,
        .tags_remove_json = o->tags_remove,
        .applied_json = o->applied,
        .matched_json = o->matched,
        .fields_json = o->fields,
        .notify_json = o->notify,
        .ignore = r->ignore,
    };
}

/* The rules, both ways: threading decides inside the store's writer
 * transaction whether the message starts a ticket, and the store applies
 * the outcome it chose. The sender's earlier tickets are counted on a
 * read connection before delivery (a ticket another worker opens for the
 * same sender in between is not seen: the count is advisory). So is the
 * sender's last acknowledgement, read the same way. */
static void eval_rules(const struct mr_worker_deps *d, struct job_ctx *jc,
                       const struct mr_job *job, json_t *ev,
                       struct prepared *p)
{
    const struct mr_rules *rs = mr_rules_ref_get(jc->rules);
    if (!rs)
        return;
    if (!jc->scratch)
        jc->scratch = mr_rules_scratch_new();
    struct mr_arena *arena = mr_arena_new();
    struct mr_rules_msg m;
    mr_rules_msg_from_event(&m, ev, arena);
    m.size = job->raw_size > 0 ? (uint64_t)job->raw_size
             : job->payload    ? strlen(job->payload)
                               : 0;
    m.previous_tickets = 0;
    struct mr_error ce = {0};
    if (mr_rules_uses_previous_tickets(rs) &&
        mr_store_count_requester_tickets(d->store, job->tenant,
                                         p->record.rec.from_email,
                                         &m.previous_tickets, &ce) != MR_OK)
        /* Rules still run: a count that failed reads as none. */
        mr_log_kv(d->log, MR_LOG_WARN, "worker", "previous tickets not counted",
                  "error", ce.msg, NULL);
    /* The window's first check; the delivering transaction makes the
     * final one (src/store/outbound.c). */
    m.last_ack_at = 0;
    char ack_key[320];
    if (d->cfg->outbound.smtp && mr_rules_uses_auto_ack(rs) &&
        mr_autoack_key(p->record.rec.from_email, ack_key, sizeof ack_key) &&
        mr_store_last_ack(d->store, job->tenant, ack_key, &m.last_ack_at,
                          &ce) != MR_OK)
        mr_log_kv(d->log, MR_LOG_WARN, "worker",
                  "last acknowledgement not read", "error", ce.msg, NULL);
    for (int k = 0; k < 2; k++) {
        m.is_new = k == 0;
        struct mr_error e = {0};
        if (mr_rules_eval(rs, job->tenant, &m, jc->scratch, &jc->result,
                          &e) != MR_OK) {
            /* A message the engine cannot take is still stored. */
            mr_log_kv(d->log, MR_LOG_WARN, "worker",
                      "rules not evaluated", "error", e.msg, NULL);
            continue;
        }
        rules_out_fill(&p->rules[k], &jc->result);
        if (k == 0 && mr_autoack_prepare(&p->rules[0].ack, d->cfg,
                                         &jc->result, &p->record.rec))
            p->rules[0].o.ack = &p->rules[0].ack.spec;
    }
    if (p->rules[0].applied)
        p->record.rec.rules_new = &p->rules[0].o;
    if (p->rules[1].applied)
        p->record.rec.rules_reply = &p->rules[1].o;
    mr_arena_free(&arena);
}

static int prepare_event(const struct mr_worker_deps *d, struct job_ctx *jc,
                         const struct mr_job *job, json_t *ev,
                         struct prepared *p, struct mr_error *err)
{
    int rc = mr_record_from_event(&p->record, ev, job->tenant, job->channel,
                                  job->raw_sha256, job->received_at, err);
    if (rc == MR_OK) {
        p->ev = json_incref(ev);
        eval_rules(d, jc, job, ev, p);
    }
    return rc;
}

static void job_stored(const struct mr_worker_deps *d, const struct mr_job *job,
                       const struct prepared *p,
                       const struct mr_deliver_result *res)
{
    mr_metrics_inc(&d->metrics->jobs_done);
    if (res->duplicate)
        mr_metrics_inc(&d->metrics->duplicates);
    else if (res->ignored)
        mr_metrics_inc(&d->metrics->ignored);
    if (!d->log || d->log->min > MR_LOG_INFO)
        return;
    char jid[24], tid[24];
    snprintf(jid, sizeof jid, "%lld", (long long)job->id);
    snprintf(tid, sizeof tid, "%lld", (long long)res->ticket_id);
    mr_log_kv(d->log, MR_LOG_INFO, "worker",
              res->duplicate ? "duplicate message, not stored again"
              : res->ignored ? "message ignored by the rules, kept"
                             : "message stored",
              "job", jid, "ticket", tid, "message_id", p->record.rec.message_id,
              "threaded_by", res->threaded_by, "tenant", job->tenant, NULL);
}

/* The raw message: parse it, streaming attachments into the blob store. */
static int run_raw(const struct mr_worker_deps *d, const struct mr_job *job,
                   struct job_ctx *jc, struct prepared *p,
                   struct mr_error *err)
{
    struct mr_raw map;
    int rc = mr_raw_open(d->store, d->blob, job->raw_sha256, &map, err);
    if (rc == MR_ENOTFOUND) {
        /* The bytes the job names are gone: no retry brings them back. */
        mr_raw_close(&map);
        return mr_error_set(err, MR_EINVAL, "raw message blob %s is missing",
                            job->raw_sha256);
    }
    if (rc != MR_OK) {
        mr_raw_close(&map);
        return rc;
    }

    struct mr_arena *arena = mr_arena_new();
    struct blob_sink sink;
    sink_init(&sink, d, jc);
    struct mr_mime_sink msink = {.ctx = &sink, .data = sink_data};
    struct mr_mime_options opt;
    mr_mime_options_default(&opt, jc->cs);
    opt.sink = &msink;
    if (d->cfg->limits.message_size > opt.limits.max_message_bytes)
        opt.limits.max_message_bytes = d->cfg->limits.message_size;

    struct mr_event *ev = NULL;
    struct mr_buf out;
    mr_buf_init(&out, 0);
    json_t *root = NULL, *envelope = NULL;
    rc = mr_mime_parse(map.p, map.len, &opt, arena, &ev, err);
    if (rc != MR_OK) {
        if (sink.err.code)
            *err = sink.err;
        else
            mr_metrics_inc(&d->metrics->parse_failures);
        goto out;
    }
    rc = sink_finish(&sink);
    if (rc != MR_OK) {
        *err = sink.err;
        goto out;
    }
    rc = sink_store_empty(&sink, mr_event_attachment_count(ev), err);
    if (rc != MR_OK)
        goto out;

    mr_content_apply(ev, arena);
    struct mr_json j;
    mr_json_init(&j, &out, false);
    mr_event_write_json(ev, NULL, &j);
    json_error_t jerr;
    root = json_loadb(out.p, out.len, 0, &jerr);
    if (!root) {
        rc = mr_error_set(err, MR_EINVAL, "event JSON did not load: %s",
                          jerr.text);
        goto out;
    }
    envelope = json_loads(job->payload ? job->payload : "{}", 0, &jerr);
    add_server_fields(root, job, json_is_object(envelope) ? envelope : NULL);
    json_t *mf = json_object_get(envelope, "mail_from");
    classify(root, json_is_string(mf) ? json_string_value(mf) : NULL);
    annotate_attachments(d, jc, &sink, root, job);
    rc = prepare_event(d, jc, job, root, p, err);
out:
    json_decref(root);
    json_decref(envelope);
    mr_buf_release(&out);
    sink_release(&sink);
    mr_arena_free(&arena);
    mr_raw_close(&map);
    return rc;
}

/* An address from a provider: "a@b", "Name <a@b>" or {email, name}. */
static json_t *provider_address(json_t *v)
{
    if (json_is_object(v)) {
        const char *e = jstr(v, "email");
        const char *n = jstr(v, "name");
        if (!e)
            return NULL;
        return json_pack("{s:s, s:o}", "email", e, "name",
                         n && *n ? json_string(n) : json_null());
    }
    if (json_is_string(v)) {
        /* "Name <a@b>" as well as a bare "a@b". */
        const char *str = json_string_value(v);
        const char *lt = strrchr(str, '<'), *gt = lt ? strchr(lt, '>') : NULL;
        if (!lt || !gt || gt == lt + 1)
            return json_pack("{s:s, s:n}", "email", str, "name");
        const char *ne = lt;
        while (ne > str && (ne[-1] == ' ' || ne[-1] == '"'))
            ne--;
        const char *ns = str;
        while (ns < ne && (*ns == ' ' || *ns == '"'))
            ns++;
        json_t *email = json_stringn(lt + 1, (size_t)(gt - lt - 1));
        json_t *name = ne > ns ? json_stringn(ns, (size_t)(ne - ns)) : NULL;
        if (!email) {
            json_decref(name);
            return NULL;
        }
        return json_pack("{s:o, s:o}", "email", email, "name",
                         name ? name : json_null());
    }
    return NULL;
}

/* The provider's References (a list of ids, or one header-style string)
 * normalized as the parser does, so they match stored ids. */
static json_t *provider_references(struct mr_arena *arena, json_t *v)
{
    json_t *out = json_array();
    if (json_is_string(v)) {
        const char **ids = NULL;
        unsigned flags = 0;
        size_t n = mr_msgid_list(arena, mr_span_cstr(json_string_value(v)),
                                 100, 998, &ids, &flags);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(out, json_string(ids[i]));
        return out;
    }
    size_t i;
    json_t *r;
    json_array_foreach(v, i, r)
    {
        if (!json_is_string(r) || i >= 100)
            continue;
        unsigned flags = 0;
        const char *id = mr_msgid_parse(arena, mr_span_cstr(json_string_value(r)),
                                        998, &flags);
        if (id)
            json_array_append_new(out, json_string(id));
    }
    return out;
}

/* The provider's date in the parser's form (RFC 3339 UTC), so the same
 * message by SMTP and by webhook has the same content key. */
static json_t *provider_date(const char *s)
{
    if (!s)
        return json_null();
    int64_t t = 0;
    unsigned flags = 0;
    char out[32];
    if (mr_date_parse(mr_span_cstr(s), &t, &flags) == 0) {
        mr_date_rfc3339(t, out);
        return json_string(out);
    }
    int64_t ms = mr_record_rfc3339_ms(s);
    if (ms) {
        mr_date_rfc3339(ms / 1000, out);
        return json_string(out);
    }
    return json_null();
}

static json_t *provider_addresses(json_t *v)
{
    json_t *out = json_array();
    if (json_is_array(v)) {
        size_t i;
        json_t *a;
        json_array_foreach(v, i, a)
        {
            json_t *x = provider_address(a);
            if (x)
                json_array_append_new(out, x);
        }
    } else if (v) {
        json_t *x = provider_address(v);
        if (x)
            json_array_append_new(out, x);
    }
    return out;
}

/* A provider webhook event becomes our event shape (docs/event.md), its
 * message_id normalized the way the MIME parser does it, so the same
 * message arriving by SMTP and by webhook is stored once. */
/* b as a JSON string; null if it is not valid UTF-8 (never expected:
 * the content stage writes UTF-8). */
static json_t *buf_string(const struct mr_buf *b)
{
    json_t *v = json_stringn(b->p ? b->p : "", b->len);
    return v ? v : json_null();
}

/* A provider's event gets what the content stage gives parsed mail: a
 * text derived from its HTML when it sent none, the sanitized HTML (its
 * attachments are links at the provider, so no cid: is resolved) and the
 * visible reply. */
static void provider_content(json_t *ev)
{
    json_t *text = json_object_get(ev, "text");
    json_t *html = json_object_get(ev, "html");
    struct mr_content_in in = {0};
    struct mr_buf derived;
    mr_buf_init(&derived, 32u << 20);
    if (json_is_string(html)) {
        in.html = json_string_value(html);
        in.html_len = json_string_length(html);
    }
    if (json_is_string(text)) {
        in.text = json_string_value(text);
        in.text_len = json_string_length(text);
    } else if (in.html) {
        mr_html_to_text(in.html, in.html_len, &derived);
        json_object_set_new(ev, "text", buf_string(&derived));
        in.text_from_html = true;
    }
    struct mr_content_out out;
    mr_content_build(&in, &out);
    json_object_set_new(ev, "html_sanitized",
                        out.have_html_sanitized
                            ? buf_string(&out.html_sanitized)
                            : json_null());
    json_object_set_new(ev, "stripped_text",
                        out.have_stripped_text
                            ? buf_string(&out.stripped_text)
                            : json_null());
    mr_content_out_release(&out);
    mr_buf_release(&derived);
}

static int run_webhook(const struct mr_worker_deps *d,
                       const struct mr_job *job, struct job_ctx *jc,
                       struct prepared *p, struct mr_error *err)
{
    json_error_t jerr;
    json_t *in = json_loads(job->payload ? job->payload : "", 0, &jerr);
    if (!json_is_object(in)) {
        json_decref(in);
        return mr_error_set(err, MR_EINVAL, "stored webhook event is not a "
                                            "JSON object: %s", jerr.text);
    }
    struct mr_arena *arena = mr_arena_new();
    json_t *ev = json_object();
    const char *raw_id = jstr(in, "message_id");
    const char *id = NULL;
    if (raw_id) {
        unsigned flags = 0;
        id = mr_msgid_parse(arena, mr_span_cstr(raw_id), 998, &flags);
    }
    bool derived = id == NULL;
    char derived_id[96];
    if (derived) {
        char hex[MR_SHA256_HEX_LEN + 1];
        mr_sha256_hex(job->payload, strlen(job->payload), hex);
        snprintf(derived_id, sizeof derived_id,
                 "derived-%.32s@mailroom.invalid", hex);
        id = derived_id;
    }
    json_t *irt = json_object_get(in, "in_reply_to");
    const char *irt_id = NULL;
    if (json_is_string(irt)) {
        unsigned flags = 0;
        irt_id = mr_msgid_parse(arena, mr_span_cstr(json_string_value(irt)),
                                998, &flags);
    }
    json_object_set_new(ev, "id", json_null());
    json_object_set_new(ev, "type", json_string("email.received"));
    json_object_set_new(ev, "message_id", json_string(id));
    json_object_set_new(ev, "message_id_derived", json_boolean(derived));
    json_object_set_new(ev, "in_reply_to",
                        irt_id ? json_string(irt_id) : json_null());
    json_object_set_new(ev, "references",
                        provider_references(arena,
                                            json_object_get(in, "references")));
    json_t *from = provider_address(json_object_get(in, "from"));
    json_object_set_new(ev, "from", from ? from : json_null());
    static const char *const lists[] = {"to", "cc", "reply_to"};
    for (size_t i = 0; i < 3; i++)
        json_object_set_new(ev, lists[i],
                            provider_addresses(json_object_get(in, lists[i])));
    static const char *const strs[] = {"subject", "text", "html"};
    for (size_t i = 0; i < 3; i++) {
        const char *s = jstr(in, strs[i]);
        json_object_set_new(ev, strs[i], s ? json_string(s) : json_null());
    }
    provider_content(ev);
    json_object_set_new(ev, "date", provider_date(jstr(in, "date")));
    json_t *headers = json_object_get(in, "headers");
    json_object_set_new(ev, "headers", json_is_object(headers)
                                           ? json_deep_copy(headers)
                                           : json_object());
    json_t *atts = json_array();
    json_t *pa = json_object_get(in, "attachments");
    if (json_is_array(pa)) {
        size_t i;
        json_t *a;
        json_array_foreach(pa, i, a)
        {
            if (!json_is_object(a))
                continue;
            json_t *size = json_object_get(a, "size");
            json_array_append_new(
                atts,
                json_pack("{s:o, s:o, s:o, s:I, s:n, s:n}", "filename",
                          jstr(a, "filename") ? json_string(jstr(a, "filename"))
                                              : json_null(),
                          "content_type",
                          jstr(a, "content_type")
                              ? json_string(jstr(a, "content_type"))
                              : json_string("application/octet-stream"),
                          "url",
                          jstr(a, "url") ? json_string(jstr(a, "url"))
                                         : json_null(),
                          "size",
                          (json_int_t)(json_is_integer(size)
                                           ? json_integer_value(size)
                                           : 0),
                          "sha256", "scan"));
        }
    }
    json_object_set_new(ev, "attachments", atts);
    json_object_set_new(ev, "warnings", json_array());
    add_server_fields(ev, job, NULL);
    json_object_set_new(ev, "inbox", json_null());
    json_object_set_new(ev, "envelope", json_null());
    classify(ev, NULL);
    annotate_attachments(d, jc, NULL, ev, job);

    int rc = prepare_event(d, jc, job, ev, p, err);
    json_decref(ev);
    json_decref(in);
    mr_arena_free(&arena);
    return rc;
}

/* A release (docs/rules.md, *Releasing*): the ignored message's stored
 * event is delivered as it was prepared when it arrived (its attachments'
 * blobs were stored then), under its own channel, raw message and
 * arrival time, with the rules evaluated again; the store overrides
 * `ignore`, queues no acknowledgement and marks the row released in the
 * delivering transaction. Re-parsing the raw bytes instead would not
 * serve provider webhook mail, which has none. */
static int run_release(const struct mr_worker_deps *d, const struct mr_job *job,
                       struct job_ctx *jc, struct prepared *p,
                       struct mr_error *err)
{
    json_error_t jerr;
    json_t *pl = json_loads(job->payload ? job->payload : "{}", 0, &jerr);
    json_t *r = json_object_get(pl, "release");
    json_t *idv = json_object_get(r, "ignored_id");
    const char *by = jstr(r, "by");
    int rc;
    if (!json_is_integer(idv) || json_integer_value(idv) <= 0) {
        json_decref(pl);
        return mr_error_set(err, MR_EINVAL,
                            "release job %lld names no ignored message",
                            (long long)job->id);
    }
    int64_t id = (int64_t)json_integer_value(idv);
    struct mr_ignored_view *v = &p->release;
    rc = mr_store_get_ignored(d->store, job->tenant, id, v, err);
    if (rc == MR_ENOTFOUND)
        rc = mr_error_set(err, MR_EINVAL, "ignored message %lld is gone",
                          (long long)id);
    json_t *ev = NULL;
    if (rc == MR_OK) {
        ev = v->event_json ? json_loads(v->event_json, 0, &jerr) : NULL;
        if (!json_is_object(ev))
            rc = mr_error_set(err, MR_EINVAL,
                              "ignored message %lld has no stored event",
                              (long long)id);
    }
    if (rc == MR_OK) {
        struct mr_job as = *job;
        as.channel = v->channel ? v->channel : job->channel;
        as.raw_sha256 = v->raw_sha256;
        as.received_at = v->received_at;
        as.payload = NULL;
        as.raw_size = 0;
        /* The rules' `size` reads the raw message's. */
        if (v->raw_sha256) {
            struct mr_raw map;
            struct mr_error re = {0};
            if (mr_raw_open(d->store, d->blob, v->raw_sha256, &map, &re) ==
                MR_OK)
                as.raw_size = (int64_t)map.len;
            mr_raw_close(&map);
        }
        p->release_by = mr_xstrndup(by ? by : "unknown",
                                    strlen(by ? by : "unknown"));
        rc = prepare_event(d, jc, &as, ev, p, err);
    }
    json_decref(ev);
    json_decref(pl);
    if (rc != MR_OK) {
        mr_ignored_view_clear(&p->release);
        free(p->release_by);
        p->release_by = NULL;
        return rc;
    }
    p->record.rec.release_of = id;
    p->record.rec.release_by = p->release_by;
    p->rules[0].o.ignore = false;
    p->rules[1].o.ignore = false;
    return MR_OK;
}

static bool permanent(int rc)
{
    return rc == MR_EINVAL || rc == MR_ELIMIT;
}

/* The store or the disk failing for now (full, locked, read-only): the
 * message is fine and already acknowledged, so such attempts never use up
 * max_attempts; the job waits (capped backoff) until the cause is fixed. */
static bool temporary(int rc)
{
    return rc == MR_EIO || rc == MR_EAGAIN || rc == MR_ENOMEM;
}

static int max_attempts(const struct mr_worker_deps *d)
{
    return d->cfg->workers.max_attempts > 0 ? d->cfg->workers.max_attempts
                                            : 8;
}

/* Parse (or convert) one job into p, with the calling thread's charset
 * converters (opening iconv descriptors per job cost more than parsing a
 * small message). */
static int prepare_job(const struct mr_worker_deps *d, const struct mr_job *job,
                       struct job_ctx *jc, struct prepared *p,
                       struct mr_error *err)
{
    memset(p, 0, sizeof *p);
    if (job->channel && strcmp(job->channel, "release") == 0)
        return run_release(d, job, jc, p, err);
    if (job->raw_sha256)
        return run_raw(d, job, jc, p, err);
    if (job->channel && strcmp(job->channel, "webhook") == 0)
        return run_webhook(d, job, jc, p, err);
    return mr_error_set(err, MR_EINVAL,
                        "job %lld has neither a raw message nor an event",
                        (long long)job->id);
}

/* A failed attempt: dead at once when no retry can help, else later. */
static void job_failed(const struct mr_worker_deps *d, const struct mr_job *job,
                       const char *worker, int rc, const struct mr_error *err)
{
    bool dead = permanent(rc) ||
                (job->attempts >= max_attempts(d) && !temporary(rc));
    int64_t retry_at = -1;
    if (!dead) {
        double rnd = mr_backoff_rnd();
        retry_at = mr_clock_wall_ms() + mr_worker_backoff_ms(job->attempts,
                                                   d->cfg->workers.backoff_base_ms,
                                                   d->cfg->workers.backoff_max_ms,
                                                   rnd);
    }
    char msg[300];
    snprintf(msg, sizeof msg, "%s: %s", mr_strerror(rc),
             err && err->msg[0] ? err->msg : "failed");
    struct mr_error ferr = {0};
    if (mr_store_fail_job(d->store, job->id, worker, msg, retry_at, &ferr) !=
        MR_OK)
        mr_log_kv(d->log, MR_LOG_ERROR, "worker",
                  "could not record a failed attempt; the lease will expire "
                  "and the job run again",
                  "error", ferr.msg, NULL);
    mr_metrics_inc(dead ? &d->metrics->jobs_dead : &d->metrics->jobs_retried);
    char jid[24], att[16];
    snprintf(jid, sizeof jid, "%lld", (long long)job->id);
    snprintf(att, sizeof att, "%d", job->attempts);
    mr_log_kv(d->log, dead ? MR_LOG_ERROR : MR_LOG_WARN, "worker",
              dead ? "job dead-lettered" : "job failed, will retry", "job",
              jid, "attempt", att, "error", msg, NULL);
}

/* Delivers the prepared items together and finishes each job. */
static int deliver_pending(const struct mr_worker_deps *d,
                           const struct mr_job *jobs, struct prepared *p,
                           struct mr_deliver_item *items, const size_t *which,
                           size_t m, const char *worker,
                           struct mr_error *first_err, int first)
{
    if (m > 0)
        mr_store_deliver_messages(d->store, worker, items, m);
    for (size_t k = 0; k < m; k++) {
        const struct mr_job *job = &jobs[which[k]];
        if (items[k].rc == MR_OK) {
            job_stored(d, job, &p[which[k]], &items[k].res);
        } else {
            job_failed(d, job, worker, items[k].rc, &items[k].err);
            if (!first) {
                first = items[k].rc;
                if (first_err)
                    *first_err = items[k].err;
            }
        }
        prepared_free(&p[which[k]]);
    }
    return first;
}

/* Claimed jobs to their end: each is prepared on this thread, then the
 * ready ones are delivered together, so one commit (one fsync) stores the
 * batch while each still succeeds or fails on its own. Prepared events
 * hold decoded bodies, so a batch is delivered early once they pass
 * BATCH_BYTES. Returns the first failure, 0 when all were stored. */
static int run_batch(const struct mr_worker_deps *d, const struct mr_job *jobs,
                     size_t n, const char *worker, struct job_ctx *jc,
                     struct mr_error *first_err)
{
    struct prepared *p = mr_xcalloc(n, sizeof *p);
    struct mr_deliver_item *items = mr_xcalloc(n, sizeof *items);
    size_t *which = mr_xcalloc(n, sizeof *which);
    size_t m = 0, bytes = 0;
    int first = 0;
    jc->rules = mr_rules_slot_acquire(d->rules);
    for (size_t i = 0; i < n; i++) {
        struct mr_error err = {0};
        int rc;
        /* Claimed again past the limit: each earlier attempt ended with its
         * worker gone (a crash, a kill, a hang past the lease), so this
         * message is what kills workers. Not one more try. */
        if (jobs[i].attempts > max_attempts(d))
            rc = mr_error_set(&err, MR_ELIMIT,
                              "%d attempts, each ending without a verdict "
                              "(worker crashed or hung)",
                              jobs[i].attempts - 1);
        else
            rc = prepare_job(d, &jobs[i], jc, &p[i], &err);
        if (rc != MR_OK) {
            job_failed(d, &jobs[i], worker, rc, &err);
            if (!first) {
                first = rc;
                if (first_err)
                    *first_err = err;
            }
            continue;
        }
        items[m] = (struct mr_deliver_item){.job_id = jobs[i].id,
                                            .msg = &p[i].record.rec};
        which[m++] = i;
        bytes += strlen(p[i].record.event_json);
        if (bytes > BATCH_BYTES) {
            first = deliver_pending(d, jobs, p, items, which, m, worker,
                                    first_err, first);
            m = 0;
            bytes = 0;
        }
    }
    first = deliver_pending(d, jobs, p, items, which, m, worker, first_err,
                            first);
    mr_rules_slot_release(d->rules, jc->rules);
    jc->rules = NULL;
    free(which);
    free(items);
    free(p);
    return first;
}

int mr_worker_run_job(const struct mr_worker_deps *d, const struct mr_job *job,
                      const char *worker, struct mr_error *err)
{
    atomic_bool warned = false;
    struct job_ctx jc = {.cs = mr_charset_ctx_new(),
                         .sniff = mr_sniff_new(),
                         .sniff_warned = &warned};
    mr_rules_result_init(&jc.result);
    int rc = run_batch(d, job, 1, worker, &jc, err);
    job_ctx_release(&jc);
    return rc;
}

/* ---- the pool --------------------------------------------------------- */

/* Waits up to ms for a wake-up or stop; true when stopping. */
static bool idle_wait(struct mr_workers *p, uint64_t seen, int ms)
{
    struct timespec until = mr_clock_deadline(CLOCK_REALTIME, ms);
    pthread_mutex_lock(&p->mu);
    while (!p->stopping && p->wakeups == seen) {
        if (pthread_cond_timedwait(&p->cond, &p->mu, &until) != 0)
            break;
    }
    bool stop = p->stopping;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

static void *worker_main(void *arg)
{
    struct worker_thread *t = arg;
    struct mr_workers *p = t->pool;
    const struct mr_worker_deps *d = &p->deps;
    int64_t lease = (int64_t)(d->cfg->workers.lease_s > 0
                                  ? d->cfg->workers.lease_s
                                  : 300) * 1000;
    struct job_ctx jc = {.cs = mr_charset_ctx_new(),
                         .sniff = mr_sniff_new(),
                         .sniff_warned = &p->sniff_warned};
    mr_rules_result_init(&jc.result);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stop = p->stopping;
        uint64_t seen = p->wakeups;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        struct mr_job jobs[BATCH];
        size_t n = 0;
        struct mr_error err = {0};
        int rc = mr_store_claim_jobs(d->store, t->name, mr_clock_wall_ms(), lease, BATCH,
                                     jobs, &n, &err);
        if (rc == MR_ENOTFOUND) {
            if (idle_wait(p, seen, IDLE_POLL_MS))
                break;
            continue;
        }
        if (rc != MR_OK) {
            mr_log_kv(d->log, MR_LOG_ERROR, "worker", "cannot claim a job",
                      "error", err.msg, NULL);
            if (idle_wait(p, seen, IDLE_POLL_MS))
                break;
            continue;
        }
        run_batch(d, jobs, n, t->name, &jc, NULL);
        for (size_t i = 0; i < n; i++)
            mr_job_clear(&jobs[i]);
    }
    job_ctx_release(&jc);
    return NULL;
}

/* Jobs leased by a worker of this host whose process is gone (kill -9, a
 * crash, a power cut) go back to the queue now rather than when their
 * lease runs out, minutes later. The attempt counts: a message that
 * crashes the process is dead-lettered after max_attempts instead of
 * crashing it forever. A pid reused by another process only delays the
 * job until its lease expires. */
static void reclaim_orphans(const struct mr_worker_deps *d, const char *host)
{
    size_t hlen = strlen(host);
    int64_t after = 0;
    int reclaimed = 0;
    int max = max_attempts(d);
    for (int page = 0; page < 10000; page++) {
        struct mr_job *jobs = NULL;
        size_t n = 0;
        struct mr_error err = {0};
        if (mr_store_list_jobs(d->store, MR_JOB_LEASED, after, 200, &jobs, &n,
                               &err) != MR_OK) {
            mr_log_kv(d->log, MR_LOG_WARN, "worker",
                      "cannot list leased jobs; they return when their "
                      "lease expires", "error", err.msg, NULL);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            const struct mr_job *j = &jobs[i];
            after = j->id;
            const char *w = j->worker;
            if (!w || strncmp(w, host, hlen) != 0 || w[hlen] != ':')
                continue;
            char *end = NULL;
            long pid = strtol(w + hlen + 1, &end, 10);
            if (!end || *end != ':' || pid <= 0)
                continue;
            /* Only a pid that is gone: our own pid may be a live twin's
             * (two containers, each pid 1, one host name). */
            if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                continue;
            char why[160];
            snprintf(why, sizeof why, "the worker %s died holding the job",
                     w);
            int64_t retry_at = j->attempts >= max ? -1 : mr_clock_wall_ms();
            if (mr_store_fail_job(d->store, j->id, w, why, retry_at, &err) ==
                MR_OK)
                reclaimed++;
        }
        mr_job_list_free(jobs, n);
        if (n < 200)
            break;
    }
    if (reclaimed > 0) {
        char count[16];
        snprintf(count, sizeof count, "%d", reclaimed);
        mr_log_kv(d->log, MR_LOG_WARN, "worker",
                  "jobs of a dead process back in the queue", "jobs", count,
                  NULL);
    }
}

int mr_workers_start(const struct mr_worker_deps *deps,
                     struct mr_workers **out, struct mr_error *err)
{
    struct mr_workers *p = mr_xcalloc(1, sizeof *p);
    p->deps = *deps;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    int n = deps->cfg->workers.count;
    if (n < 1)
        n = 1;
    if (n > MAX_WORKERS)
        n = MAX_WORKERS;
    p->threads = mr_xcalloc((size_t)n, sizeof *p->threads);
    char host[64] = "local";
    gethostname(host, sizeof host - 1);
    /* Worker names are "host:pid:n", which is what lets a restarted
     * server recognise the jobs its dead predecessor held. The whole host
     * name: container hosts often share long prefixes. */
    reclaim_orphans(deps, host);
    for (int i = 0; i < n; i++) {
        struct worker_thread *t = &p->threads[i];
        t->pool = p;
        snprintf(t->name, sizeof t->name, "%.63s:%d:%d", host, (int)getpid(),
                 i);
        int e = pthread_create(&t->tid, NULL, worker_main, t);
        if (e != 0) {
            mr_workers_stop(p);
            return mr_error_set(err, MR_EIO, "cannot start worker %d: %s", i,
                                strerror(e));
        }
        p->nthreads++;
    }
    *out = p;
    return MR_OK;
}

void mr_workers_wake(void *pool)
{
    struct mr_workers *p = pool;
    pthread_mutex_lock(&p->mu);
    p->wakeups++;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

void mr_workers_stop(struct mr_workers *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i].tid, NULL);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
