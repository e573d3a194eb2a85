/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_thread_corpus.c - threading on real mail (issue 4, Proof: "unit
 * tests on the messages in ../shared/corpus that carry such headers").
 *
 * Two sets of messages go the worker's way (mr_mime_parse, the event
 * rendered by mr_event_write_json and loaded back with jansson, the
 * server's fields, mr_classify_event, the message record built as
 * src/ticket/worker.c builds it) into a real SQLite store in a mkdtemp
 * folder, each set into its own tenant, in file-name order:
 *
 *   corpus    every `message` of $MR_SHARED/corpus/MANIFEST.tsv (skipped,
 *             with a message, when ../shared is absent)
 *   handmade  tests/data/thread (*.eml), small threads written for the
 *             cases the corpus lacks, with EXPECTED.tsv
 *
 * What is checked:
 *   1. reply headers: the ids of In-Reply-To and References are
 *      well-formed, References keep their order (against an independent
 *      bracket scanner), and In-Reply-To's first id is the newest
 *      reference or absent from References;
 *   2. properties any input must have, against a model the test keeps of
 *      what is stored (ids -> ticket, thread_refs, tickets' requester and
 *      subject): a duplicate is exactly an id stored before; a header
 *      that names a known id decides, in the documented order; a stranger
 *      joins unverified, the requester never does; the subject fallback
 *      joins exactly when an earlier ticket has the same requester and
 *      normalized subject; delivering everything again changes nothing;
 *      the thread_refs table equals the model;
 *   3. the real reply pairs (B's In-Reply-To is A's Message-ID) end in
 *      one ticket;
 *   4. every subject normalizes idempotently to valid UTF-8, and reply
 *      prefixes do not change it.
 * Exceptions are printed with their file names.
 */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "content/classify.h"
#include "mime/charset.h"
#include "mime/mime.h"
#include "mime/msgid.h"
#include "store/store.h"
#include "ticket/record.h"
#include "ticket/thread.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/utf8.h"

#define MAX_MESSAGES 5000             /* the corpus holds about 1200 */
#define MAX_FILE_BYTES (64u << 20)    /* the largest corpus file is 3 MB */
#define MAX_LINE 4096                 /* MANIFEST.tsv, EXPECTED.tsv */
#define MAX_IDS 1000                  /* ids in one header, for the oracle */
#define RECEIVED_BASE 1736157600000LL /* 2025-01-06T10:00:00Z */

/* ---- a string -> ticket map (open addressing, grows at half full) ----- */

struct map {
    char **key;
    int64_t *val;
    size_t cap, n;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static size_t map_slot(const struct map *m, const char *k)
{
    size_t i = fnv(k) & (m->cap - 1);
    while (m->key[i] && strcmp(m->key[i], k) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static bool map_get(const struct map *m, const char *k, int64_t *v)
{
    if (m->cap == 0 || k == NULL)
        return false;
    size_t i = map_slot(m, k);
    if (m->key[i] == NULL)
        return false;
    if (v)
        *v = m->val[i];
    return true;
}

/* INSERT OR IGNORE: the first value stays, as in thread_refs. */
static void map_put_new(struct map *m, const char *k, int64_t v)
{
    if (k == NULL || *k == '\0')
        return;
    if (2 * (m->n + 1) > m->cap) {
        struct map g = {.cap = m->cap ? m->cap * 2 : 1024};
        g.key = mr_xcalloc(g.cap, sizeof *g.key);
        g.val = mr_xcalloc(g.cap, sizeof *g.val);
        for (size_t i = 0; i < m->cap; i++) {
            if (m->key[i]) {
                size_t j = map_slot(&g, m->key[i]);
                g.key[j] = m->key[i];
                g.val[j] = m->val[i];
            }
        }
        g.n = m->n;
        free(m->key);
        free(m->val);
        *m = g;
    }
    size_t i = map_slot(m, k);
    if (m->key[i])
        return;
    m->key[i] = mr_xstrndup(k, strlen(k));
    m->val[i] = v;
    m->n++;
}

static void map_free(struct map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->key[i]);
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

/* ---- messages --------------------------------------------------------- */

/* What the model says about a message just before it is delivered. */
struct expect {
    bool duplicate; /* its id is stored already */
    int64_t dup_ticket;
    const char *step;       /* the header step that must decide, or NULL */
    const char *by;         /* its threaded_by */
    int64_t ticket;         /* the ticket that step finds */
    bool subject_candidate; /* an earlier ticket, same requester + subject */
    int64_t irt_stored;     /* ticket of the stored message In-Reply-To
                               names, or 0 */
};

struct msg {
    char *file; /* path inside the set's folder */
    json_t *ev; /* the event as the worker stores it */
    char sha[MR_SHA256_HEX_LEN + 1];
    struct mr_record record; /* the worker's own record of ev */
    char eff_id[1100]; /* the id it is stored under when its own is reused
                          by different mail (pitfalls.md 9), else "" */
    struct expect ex;
    struct mr_deliver_result res;   /* first delivery */
    struct mr_deliver_result again; /* the same record once more */
    char expect_by[16];             /* handmade: EXPECTED.tsv */
    char expect_group[32];
};

struct ticket_model {
    int64_t id;
    const char *requester; /* borrowed from the creating message */
    char norm[MR_THREAD_SUBJECT_MAX];
};

struct set {
    const char *name;
    const char *tenant;
    char dir[4096];
    bool present;
    struct msg *m;
    size_t n;
    size_t unparsed; /* files mr_mime_parse refused */
    /* the model, filled while delivering */
    struct map stored; /* message_id -> ticket of stored messages */
    struct map refs;   /* thread_refs: id -> ticket */
    struct map keyed;  /* message_id -> index + 1 of the message stored
                          under it, whose content_key decides reuse */
    struct ticket_model *tickets;
    size_t ntickets;
    bool delivered;
};

struct fx {
    char dir[64];
    char db[128];
    struct mr_store *st;
    struct set corpus, handmade;
};

static int cmp_msg(const void *a, const void *b)
{
    return strcmp(((const struct msg *)a)->file, ((const struct msg *)b)->file);
}

/* Parses one file the worker's way into m->ev. NULL, or why not. */
static const char *load_event(const char *path, struct mr_charset_ctx *cs,
                              struct mr_buf *raw, struct mr_buf *js,
                              struct msg *m, char *why, size_t whycap)
{
    if (mr_buf_read_file(raw, path, NULL) != 0 || raw->limited)
        return "unreadable or over the size cap";
    mr_sha256_hex(raw->p ? raw->p : "", raw->len, m->sha);
    struct mr_mime_options opt;
    mr_mime_options_default(&opt, cs);
    struct mr_arena *a = mr_arena_new();
    struct mr_event *ev = NULL;
    struct mr_error err = {0};
    const char *failure = NULL;
    if (mr_mime_parse(raw->p ? raw->p : "", raw->len, &opt, a, &ev, &err) !=
        0) {
        snprintf(why, whycap, "parse: %s", err.msg);
        failure = why;
    } else {
        mr_buf_reset(js);
        struct mr_json j;
        mr_json_init(&j, js, false);
        mr_event_write_json(ev, NULL, &j);
        json_error_t jerr;
        m->ev = json_loadb(js->p, js->len, 0, &jerr);
        if (m->ev == NULL) {
            snprintf(why, whycap, "event JSON: %s", jerr.text);
            failure = why;
        }
    }
    mr_arena_free(&a);
    return failure;
}

/* The server's fields and the content stage, as run_raw adds them. */
static void worker_fields(struct msg *m, const char *tenant, int64_t received)
{
    char when[32];
    time_t s = (time_t)(received / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(m->ev, "tenant", json_string(tenant));
    json_object_set_new(m->ev, "received_at", json_string(when));
    json_object_set_new(m->ev, "channel", json_string("smtp"));
    struct mr_classification c;
    struct mr_error err = {0};
    if (mr_classify_event(m->ev, NULL, &c, &err) == 0)
        json_object_set_new(m->ev, "auto", mr_classify_to_json(&c));
}

static void add_file(struct set *s, const char *file)
{
    if (s->n >= MAX_MESSAGES)
        return;
    if (s->n % 256 == 0)
        s->m = mr_xrealloc(s->m, (s->n + 256) * sizeof *s->m);
    memset(&s->m[s->n], 0, sizeof s->m[s->n]);
    s->m[s->n++].file = mr_xstrndup(file, strlen(file));
}

/* The `message` rows of MANIFEST.tsv (file is column 1, kind column 6). */
static bool list_manifest(struct set *s)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/MANIFEST.tsv", s->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[MAX_LINE];
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *col[6] = {0};
        char *t = strtok_r(line, "\t\r\n", &save);
        for (int i = 0; t && i < 6; i++, t = strtok_r(NULL, "\t\r\n", &save))
            col[i] = t;
        if (col[0] && col[5] && strcmp(col[5], "message") == 0)
            add_file(s, col[0]);
    }
    fclose(f);
    return true;
}

static bool list_eml(struct set *s)
{
    DIR *d = opendir(s->dir);
    if (d == NULL)
        return false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".eml") == 0)
            add_file(s, e->d_name);
    }
    closedir(d);
    return true;
}

/* EXPECTED.tsv of the handmade set: file, threaded_by, ticket group. */
static void load_expected(struct set *s)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/EXPECTED.tsv", s->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[MAX_LINE];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *save = NULL;
        char *file = strtok_r(line, "\t\n", &save);
        char *by = strtok_r(NULL, "\t\n", &save);
        char *group = strtok_r(NULL, "\t\n", &save);
        assert_non_null(group);
        bool found = false;
        for (size_t i = 0; i < s->n; i++) {
            if (strcmp(s->m[i].file, file) == 0) {
                snprintf(s->m[i].expect_by, sizeof s->m[i].expect_by, "%s", by);
                snprintf(s->m[i].expect_group, sizeof s->m[i].expect_group,
                         "%s", group);
                found = true;
            }
        }
        if (!found)
            print_error("EXPECTED.tsv names %s, which is not there\n", file);
        assert_true(found);
    }
    fclose(f);
}

/* Lists, parses and prepares every message of a set, in file order.
 * Files the parser refuses are dropped (the worker dead-letters them). */
static void load_set(struct set *s, bool manifest)
{
    if (!(manifest ? list_manifest(s) : list_eml(s)))
        return;
    s->present = true;
    qsort(s->m, s->n, sizeof *s->m, cmp_msg);
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_buf raw, js;
    mr_buf_init(&raw, MAX_FILE_BYTES);
    mr_buf_init(&js, 0);
    size_t kept = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct msg *m = &s->m[i];
        char path[8400], why[300];
        snprintf(path, sizeof path, "%s/%s", s->dir, m->file);
        const char *failure =
            load_event(path, cs, &raw, &js, m, why, sizeof why);
        if (failure) {
            print_message("[%s] not delivered, %s: %s\n", s->name, m->file,
                          failure);
            s->unparsed++;
            free(m->file);
            continue;
        }
        s->m[kept++] = *m;
    }
    s->n = kept;
    for (size_t i = 0; i < s->n; i++) {
        int64_t received = RECEIVED_BASE + (int64_t)i * 1000;
        worker_fields(&s->m[i], s->tenant, received);
        {
            struct mr_error rerr = {0};
            assert_int_equal(mr_record_from_event(&s->m[i].record, s->m[i].ev,
                                                  s->tenant, "smtp",
                                                  s->m[i].sha, received, &rerr),
                             0);
        }
    }
    mr_buf_release(&raw);
    mr_buf_release(&js);
    mr_charset_ctx_free(&cs);
}

static void free_set(struct set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct msg *m = &s->m[i];
        free(m->file);
        mr_record_free(&m->record);
        json_decref(m->ev);
    }
    free(s->m);
    free(s->tickets);
    map_free(&s->stored);
    map_free(&s->refs);
    map_free(&s->keyed);
}

/* ---- fixture ---------------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int group_setup(void **state)
{
    struct fx *f = mr_xcalloc(1, sizeof *f);
    f->corpus = (struct set){.name = "corpus", .tenant = "corpus"};
    f->handmade = (struct set){.name = "handmade", .tenant = "handmade"};
    const char *shared = getenv("MR_SHARED");
    if (shared && shared[0]) {
        snprintf(f->corpus.dir, sizeof f->corpus.dir, "%s/corpus", shared);
        load_set(&f->corpus, true);
    }
    const char *data = getenv("MR_TEST_DATA");
    snprintf(f->handmade.dir, sizeof f->handmade.dir, "%s/thread",
             data && data[0] ? data : "tests/data");
    load_set(&f->handmade, false);
    if (f->handmade.present && f->handmade.n > 0)
        load_expected(&f->handmade);

    snprintf(f->dir, sizeof f->dir, "/tmp/mr-thread-corpus-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/mailroom.db", f->dir);
    char url[160];
    snprintf(url, sizeof url, "sqlite:%s", f->db);
    struct mr_store_options o = {.url = url, .migrate = true};
    struct mr_error err = {0};
    if (mr_store_open(&o, &f->st, &err) != 0) {
        print_error("store: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fx *f = *state;
    mr_store_close(f->st);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free_set(&f->corpus);
    free_set(&f->handmade);
    free(f);
    return 0;
}

/* ---- delivery and the model ------------------------------------------ */

static bool usable(const char *id)
{
    return id != NULL && id[0] != '\0';
}

static void normalize(const char *subject, char out[MR_THREAD_SUBJECT_MAX])
{
    mr_thread_normalize_subject(subject ? subject : "", out,
                                MR_THREAD_SUBJECT_MAX);
}

static const struct ticket_model *ticket_of(const struct set *s, int64_t id)
{
    for (size_t i = 0; i < s->ntickets; i++)
        if (s->tickets[i].id == id)
            return &s->tickets[i];
    return NULL;
}

/* The documented order (docs/threading.md) over the model, for the
 * header steps: what must decide this message, before it is delivered.
 * Tokens cannot verify (the secret is random), so they are left out. */
static void predict(const struct set *s, struct msg *m)
{
    const struct mr_message_rec *r = &m->record.rec;
    struct expect *ex = &m->ex;
    memset(ex, 0, sizeof *ex);
    /* The same id with another content key is other mail reusing it: the
     * store keeps it under "<id>#<key prefix>" (tickets.c: reused_id). */
    int64_t first = 0;
    m->eff_id[0] = '\0';
    if (!r->message_id_derived && r->content_key &&
        map_get(&s->keyed, r->message_id, &first)) {
        const char *k = s->m[first - 1].record.rec.content_key;
        if (k && strcmp(k, r->content_key) != 0)
            snprintf(m->eff_id, sizeof m->eff_id, "%s#%.12s", r->message_id,
                     r->content_key);
    }
    const char *own = m->eff_id[0] ? m->eff_id : r->message_id;
    ex->duplicate = map_get(&s->stored, own, &ex->dup_ticket);
    if (usable(r->in_reply_to))
        map_get(&s->stored, r->in_reply_to, &ex->irt_stored);
    int64_t t = 0;
    if (r->auto_kind == MR_AUTO_BOUNCE && usable(r->bounce_original_id) &&
        map_get(&s->refs, r->bounce_original_id, &t)) {
        ex->step = "bounce report";
        ex->by = "in_reply_to";
    } else if (!r->message_id_derived && map_get(&s->refs, own, &t)) {
        ex->step = "own id referenced";
        ex->by = "references";
    } else if (usable(r->in_reply_to) &&
               map_get(&s->refs, r->in_reply_to, &t)) {
        ex->step = "in_reply_to";
        ex->by = "in_reply_to";
    } else {
        size_t stop = r->nreferences > MR_THREAD_MAX_REFS
                          ? r->nreferences - MR_THREAD_MAX_REFS
                          : 0;
        for (size_t i = r->nreferences; i > stop && !ex->step; i--) {
            const char *id = r->references[i - 1];
            if (r->in_reply_to && strcmp(id, r->in_reply_to) == 0)
                continue;
            if (map_get(&s->refs, id, &t)) {
                ex->step = "references";
                ex->by = "references";
            }
        }
    }
    if (ex->step)
        ex->ticket = t;

    if (r->auto_kind != MR_AUTO_BOUNCE && usable(r->from_email) && r->subject) {
        char norm[MR_THREAD_SUBJECT_MAX];
        normalize(r->subject, norm);
        for (size_t i = 0; norm[0] && i < s->ntickets; i++)
            if (s->tickets[i].requester &&
                strcmp(s->tickets[i].requester, r->from_email) == 0 &&
                strcmp(s->tickets[i].norm, norm) == 0)
                ex->subject_candidate = true;
    }
}

/* What the store wrote, into the model (tickets.c: insert_refs). */
static void learn(struct set *s, const struct msg *m)
{
    const struct mr_message_rec *r = &m->record.rec;
    const struct mr_deliver_result *res = &m->res;
    if (res->duplicate || res->ticket_id == 0)
        return;
    const char *id = m->eff_id[0] ? m->eff_id : r->message_id;
    if (!m->eff_id[0])
        map_put_new(&s->keyed, r->message_id, (int64_t)(m - s->m) + 1);
    map_put_new(&s->stored, id, res->ticket_id);
    map_put_new(&s->refs, id, res->ticket_id);
    if (!res->unverified) {
        map_put_new(&s->refs, r->in_reply_to, res->ticket_id);
        for (size_t i = 0; i < r->nreferences; i++)
            map_put_new(&s->refs, r->references[i], res->ticket_id);
    }
    if (res->new_ticket) {
        s->tickets =
            mr_xrealloc(s->tickets, (s->ntickets + 1) * sizeof *s->tickets);
        struct ticket_model *t = &s->tickets[s->ntickets++];
        t->id = res->ticket_id;
        t->requester = r->from_email;
        normalize(r->subject, t->norm);
    }
}

static void deliver_one(struct mr_store *st, struct msg *m,
                        struct mr_deliver_result *res)
{
    struct mr_error err = {0};
    int rc = mr_store_deliver_message(st, 0, NULL, &m->record.rec, res, &err);
    if (rc != 0)
        print_error("deliver %s: %s\n", m->file, err.msg);
    assert_int_equal(rc, 0);
}

/* Delivers the whole set, then all of it once more. Runs once per set,
 * for whichever test needs it first. */
static void deliver_set(struct fx *f, struct set *s)
{
    if (s->delivered)
        return;
    s->delivered = true;
    for (size_t i = 0; i < s->n; i++) {
        predict(s, &s->m[i]);
        deliver_one(f->st, &s->m[i], &s->m[i].res);
        learn(s, &s->m[i]);
    }
    for (size_t i = 0; i < s->n; i++)
        deliver_one(f->st, &s->m[i], &s->m[i].again);
}

/* The ticket a message ended in, stored or as a duplicate; 0 for a bounce
 * filed as an orphan. */
static int64_t final_ticket(const struct msg *m)
{
    return m->res.duplicate ? m->ex.dup_ticket : m->res.ticket_id;
}

static bool has_reply_headers(const struct msg *m)
{
    return m->record.rec.in_reply_to != NULL || m->record.rec.nreferences > 0;
}

/* ---- 1. reply headers -------------------------------------------------- */

/* The first value of a header in the event (a repeated field is an array;
 * the parser reads the first). */
static const char *header(const struct msg *m, const char *name)
{
    const json_t *v = json_object_get(json_object_get(m->ev, "headers"), name);
    if (json_is_array(v))
        v = json_array_get(v, 0);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An oracle that shares no code with the parser: the text of every
 * "<...>" in order, folding white space removed. 0 when the value has no
 * brackets (then it has nothing to say). */
static size_t bracket_ids(struct mr_arena *a, const char *v, const char ***out)
{
    const char **ids = mr_arena_alloc(a, MAX_IDS * sizeof *ids);
    size_t n = 0;
    for (const char *p = v; p && (p = strchr(p, '<')) != NULL && n < MAX_IDS;) {
        const char *e = strchr(p + 1, '>');
        if (e == NULL)
            break;
        char *id = mr_arena_alloc(a, (size_t)(e - p));
        size_t k = 0;
        for (const char *q = p + 1; q < e; q++)
            if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
                id[k++] = *q;
        id[k] = '\0';
        if (k > 0)
            ids[n++] = id;
        p = e + 1;
    }
    *out = ids;
    return n;
}

static bool ids_equal(const char *const *a, size_t na, const char *const *b,
                      size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* Well-formed: non-empty, no brackets, no white space, valid UTF-8. */
static const char *id_defect(const char *id)
{
    if (id == NULL || id[0] == '\0')
        return "empty";
    if (!mr_utf8_valid(id, strlen(id)))
        return "not UTF-8";
    for (const char *p = id; *p; p++) {
        if (*p == '<' || *p == '>')
            return "angle bracket";
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            return "white space";
    }
    return NULL;
}

struct header_tally {
    size_t messages, ids, defects, no_at, no_at_flagged;
    size_t oracle_cmp, oracle_diff, irt_ok, irt_middle, event_diff;
};

static void check_reply_headers(const struct set *s, struct header_tally *t)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct msg *m = &s->m[i];
        const char *refs_v = header(m, "references");
        const char *irt_v = header(m, "in-reply-to");
        if (refs_v == NULL && irt_v == NULL)
            continue;
        t->messages++;
        struct mr_arena *a = mr_arena_new();
        const char **refs = NULL, **irt = NULL;
        unsigned rfl = 0, ifl = 0;
        size_t nr = refs_v ? mr_msgid_list(a, mr_span_cstr(refs_v), 100, 998,
                                           &refs, &rfl)
                           : 0;
        size_t ni =
            irt_v ? mr_msgid_list(a, mr_span_cstr(irt_v), 16, 998, &irt, &ifl)
                  : 0;

        /* The event carries what the parser read: References in order,
         * then In-Reply-To's further ids that References lacks. */
        const char **want = mr_arena_alloc(a, (nr + ni + 1) * sizeof *want);
        size_t nw = nr;
        if (nr)
            memcpy(want, refs, nr * sizeof *want);
        for (size_t k = 1; k < ni; k++) {
            bool seen = false;
            for (size_t j = 0; j < nw && !seen; j++)
                seen = strcmp(want[j], irt[k]) == 0;
            if (!seen)
                want[nw++] = irt[k];
        }
        if (!ids_equal(m->record.rec.references, m->record.rec.nreferences, want, nw) ||
            (ni ? m->record.rec.in_reply_to == NULL ||
                      strcmp(m->record.rec.in_reply_to, irt[0]) != 0
                : m->record.rec.in_reply_to != NULL)) {
            t->event_diff++;
            print_message("[%s] event ids differ from the headers: %s\n",
                          s->name, m->file);
        }

        /* Every id the event holds. */
        for (size_t k = 0; k <= m->record.rec.nreferences; k++) {
            const char *id = k < m->record.rec.nreferences ? m->record.rec.references[k]
                                                    : m->record.rec.in_reply_to;
            if (id == NULL)
                continue;
            t->ids++;
            const char *d = id_defect(id);
            if (d) {
                t->defects++;
                print_message("[%s] malformed id (%s) in %s: %s\n", s->name, d,
                              m->file, id);
            } else if (strchr(id, '@') == NULL) {
                t->no_at++;
                bool flagged =
                    ((rfl | ifl) & (MR_MSGID_JUNK | MR_MSGID_NO_BRACKETS)) != 0;
                t->no_at_flagged += flagged;
                print_message("[%s] id without '@'%s in %s: %s\n", s->name,
                              flagged ? " (flagged)" : "", m->file, id);
            }
        }

        /* Order against the independent scanner. */
        const char **orc = NULL;
        size_t no = refs_v ? bracket_ids(a, refs_v, &orc) : 0;
        if (no > 0) {
            t->oracle_cmp++;
            size_t skip = no > 100 ? no - 100 : 0;
            if (!ids_equal(refs, nr, orc + skip, no - skip)) {
                t->oracle_diff++;
                print_message("[%s] References differ from a plain bracket "
                              "scan: %s (%zu ids, scan %zu)\n",
                              s->name, m->file, nr, no);
            }
        }

        /* In-Reply-To names the parent: the newest reference, or one the
         * References do not list (a client that trims them). */
        if (ni > 0 && nr > 0) {
            bool last = strcmp(irt[0], refs[nr - 1]) == 0, elsewhere = false;
            for (size_t k = 0; k + 1 < nr && !last; k++)
                elsewhere |= strcmp(irt[0], refs[k]) == 0;
            if (elsewhere) {
                t->irt_middle++;
                print_message("[%s] In-Reply-To names an older reference, "
                              "not the newest: %s\n",
                              s->name, m->file);
            } else {
                t->irt_ok++;
            }
        } else if (ni > 0) {
            t->irt_ok++;
        }
        mr_arena_free(&a);
    }
}

static bool skip_without(const struct set *s)
{
    if (s->present)
        return false;
    print_message("[%s] %s not found (MR_SHARED unset or no ../shared): "
                  "skipped\n",
                  s->name, s->dir[0] ? s->dir : "corpus");
    return true;
}

static void test_reply_headers(void **state)
{
    struct fx *f = *state;
    struct set *sets[] = {&f->corpus, &f->handmade};
    for (size_t k = 0; k < 2; k++) {
        if (skip_without(sets[k]))
            continue;
        struct header_tally t = {0};
        check_reply_headers(sets[k], &t);
        print_message("[%s] reply headers: %zu messages, %zu ids, %zu "
                      "malformed, %zu without '@' (%zu flagged); References "
                      "order checked on %zu, %zu differ; In-Reply-To = newest "
                      "or unlisted reference %zu, an older one %zu; event "
                      "differs %zu\n",
                      sets[k]->name, t.messages, t.ids, t.defects, t.no_at,
                      t.no_at_flagged, t.oracle_cmp, t.oracle_diff, t.irt_ok,
                      t.irt_middle, t.event_diff);
        /* The floor is what was measured on the corpus: every id
         * well-formed, an id without '@' only where the parser flagged the
         * header, every order kept, the event equal to the headers, and
         * no In-Reply-To naming an older reference (that would be the
         * sender's doing, but none does). */
        assert_int_equal(t.defects, 0);
        assert_int_equal(t.no_at, t.no_at_flagged);
        assert_int_equal(t.oracle_diff, 0);
        assert_int_equal(t.event_diff, 0);
        assert_int_equal(t.irt_middle, 0);
        if (sets[k] == &f->corpus)
            assert_true(t.messages >= 100);
    }
    /* Without ../shared only the handmade threads ran (said above). */
    if (!f->corpus.present && !f->handmade.present)
        skip();
}

/* ---- 2. properties of the whole delivery ------------------------------ */

struct tally {
    size_t messages, with_headers, by_header, by_subject, by_token, fresh,
        duplicates, orphans, unverified, irt_stored, irt_joined, irt_earlier,
        violations;
};

static void violation(const struct set *s, struct tally *t, const struct msg *m,
                      const char *what)
{
    t->violations++;
    print_error("[%s] %s: %s (threaded_by %s, ticket %lld, expected %s "
                "%lld)\n",
                s->name, m->file, what, m->res.threaded_by,
                (long long)m->res.ticket_id, m->ex.by ? m->ex.by : "-",
                (long long)m->ex.ticket);
}

static void check_message(const struct set *s, struct tally *t,
                          const struct msg *m)
{
    const struct mr_message_rec *r = &m->record.rec;
    const struct mr_deliver_result *res = &m->res;
    const struct expect *ex = &m->ex;
    const char *by = res->threaded_by;
    t->messages++;
    t->with_headers += has_reply_headers(m);

    /* A duplicate is exactly an id stored before, and keeps its ticket. */
    if (res->duplicate != ex->duplicate) {
        violation(s, t, m, "duplicate flag disagrees with the stored ids");
        return;
    }
    if (res->duplicate) {
        t->duplicates++;
        if (res->ticket_id != ex->dup_ticket || strcmp(by, "duplicate") != 0)
            violation(s, t, m, "duplicate not reported with its ticket");
        goto again;
    }
    if (res->ticket_id == 0) {
        /* Only a bounce that reports on nothing known is filed aside. */
        t->orphans++;
        if (r->auto_kind != MR_AUTO_BOUNCE || strcmp(by, "new") != 0 ||
            ex->step)
            violation(s, t, m,
                      "no ticket for a message that is not an "
                      "orphan bounce");
        goto again;
    }

    if (strcmp(by, "token") == 0) {
        /* Only a bare [#N] from a participant can match here. */
        t->by_token++;
        print_message("[%s] joined by a subject tag: %s\n", s->name, m->file);
    } else if (ex->step) {
        /* A known id in the headers decides, in the documented order. */
        if (strcmp(by, ex->by) != 0 || res->ticket_id != ex->ticket ||
            res->new_ticket)
            violation(s, t, m, ex->step);
        t->by_header++;
        print_message("[%s] joined by %s (%s%s): %s\n", s->name, ex->step, by,
                      res->unverified ? ", unverified" : "", m->file);
    } else if (ex->subject_candidate) {
        const struct ticket_model *tm = ticket_of(s, res->ticket_id);
        char norm[MR_THREAD_SUBJECT_MAX];
        normalize(r->subject, norm);
        if (strcmp(by, "subject") != 0 || tm == NULL ||
            strcmp(tm->requester, r->from_email) != 0 ||
            strcmp(tm->norm, norm) != 0)
            violation(s, t, m,
                      "same requester and subject as an open "
                      "ticket, not joined");
        t->by_subject++;
    } else {
        if (strcmp(by, "new") != 0 || !res->new_ticket)
            violation(s, t, m, "nothing matched, yet no new ticket");
        t->fresh++;
    }

    /* The requester is never unverified; a stranger joining by header
     * always is. */
    const struct ticket_model *tm = ticket_of(s, res->ticket_id);
    if (tm == NULL) {
        violation(s, t, m, "ticket unknown to the model");
        goto again;
    }
    bool requester = tm->requester && r->from_email &&
                     strcmp(tm->requester, r->from_email) == 0;
    if (res->unverified) {
        t->unverified++;
        if (requester ||
            (strcmp(by, "in_reply_to") != 0 && strcmp(by, "references") != 0))
            violation(s, t, m,
                      "unverified, yet the requester or not a "
                      "header join");
    }
    if (res->new_ticket && !requester && r->from_email)
        violation(s, t, m, "new ticket with another requester");

    /* The brief's property, stated directly: In-Reply-To naming a stored
     * message joins its ticket unless an earlier step decided. */
    if (ex->irt_stored) {
        t->irt_stored++;
        if (res->ticket_id == ex->irt_stored) {
            t->irt_joined++;
        } else if (ex->step && strcmp(ex->step, "in_reply_to") != 0) {
            t->irt_earlier++;
            print_message("[%s] In-Reply-To names a stored message, but %s "
                          "decided first: %s\n",
                          s->name, ex->step, m->file);
        } else {
            violation(s, t, m,
                      "In-Reply-To names a stored message of "
                      "another ticket");
        }
    }

again:
    /* Delivered again: nothing new, the same ticket. */
    if (final_ticket(m) != 0) {
        if (!m->again.duplicate || m->again.ticket_id != final_ticket(m) ||
            m->again.new_ticket)
            violation(s, t, m,
                      "second delivery is not a duplicate of the "
                      "same ticket");
    } else if (m->again.duplicate || m->again.ticket_id != 0) {
        violation(s, t, m, "orphan bounce stored on the second delivery");
    }
}

static int64_t sql_count(sqlite3 *db, const char *sql, const char *tenant)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The tables against the model: rows, unique ids, every thread_ref. */
static void check_tables(const struct fx *f, const struct set *s,
                         const struct tally *t)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    int64_t messages = sql_count(
        db, "SELECT count(*) FROM messages WHERE tenant = ?1", s->tenant);
    int64_t tickets = sql_count(
        db, "SELECT count(*) FROM tickets WHERE tenant = ?1", s->tenant);
    int64_t twice = sql_count(db,
                              "SELECT count(*) FROM (SELECT message_id FROM "
                              "messages WHERE tenant = ?1 GROUP BY message_id "
                              "HAVING count(*) > 1)",
                              s->tenant);
    int64_t nrefs = sql_count(
        db, "SELECT count(*) FROM thread_refs WHERE tenant = ?1", s->tenant);
    assert_int_equal(messages, (int64_t)s->stored.n);
    assert_int_equal(messages,
                     (int64_t)(t->messages - t->duplicates - t->orphans));
    assert_int_equal(tickets, (int64_t)s->ntickets);
    assert_true(tickets <= messages);
    assert_int_equal(twice, 0);
    assert_int_equal(nrefs, (int64_t)s->refs.n);

    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT message_id, ticket_id FROM "
                                        "thread_refs WHERE tenant = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, s->tenant, -1, SQLITE_STATIC);
    size_t rows = 0, wrong = 0;
    while (sqlite3_step(st) == SQLITE_ROW && rows <= s->refs.n) {
        rows++;
        const char *id = (const char *)sqlite3_column_text(st, 0);
        int64_t want = -1;
        if (!map_get(&s->refs, id, &want) ||
            want != sqlite3_column_int64(st, 1)) {
            wrong++;
            print_error("[%s] thread_ref %s -> %lld, model %lld\n", s->name, id,
                        (long long)sqlite3_column_int64(st, 1),
                        (long long)want);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(rows, s->refs.n);
    assert_int_equal(wrong, 0);
}

/* Handmade threads: the expected decision and which share a ticket. */
static void check_handmade(const struct set *s)
{
    size_t bad = 0, listed = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct msg *a = &s->m[i];
        if (!a->expect_by[0])
            continue;
        listed++;
        if (strcmp(a->res.threaded_by, a->expect_by) != 0) {
            print_error("[%s] %s: threaded_by %s, expected %s\n", s->name,
                        a->file, a->res.threaded_by, a->expect_by);
            bad++;
        }
        for (size_t j = 0; j < i; j++) {
            const struct msg *b = &s->m[j];
            if (!b->expect_by[0])
                continue;
            bool same = strcmp(a->expect_group, b->expect_group) == 0;
            if (same != (final_ticket(a) == final_ticket(b))) {
                print_error("[%s] %s and %s should %sshare a ticket\n", s->name,
                            a->file, b->file, same ? "" : "not ");
                bad++;
            }
        }
    }
    assert_int_equal(listed, s->n);
    assert_int_equal(bad, 0);
}

static void test_deliver_properties(void **state)
{
    struct fx *f = *state;
    struct set *sets[] = {&f->corpus, &f->handmade};
    for (size_t k = 0; k < 2; k++) {
        struct set *s = sets[k];
        if (skip_without(s))
            continue;
        deliver_set(f, s);
        struct tally t = {0};
        for (size_t i = 0; i < s->n; i++)
            check_message(s, &t, &s->m[i]);
        print_message(
            "[%s] %zu messages (%zu not parsed), %zu with reply headers: "
            "joined by header %zu, by subject %zu, by token %zu, new %zu, "
            "duplicates %zu, orphan bounces %zu, unverified %zu; "
            "In-Reply-To names a stored message %zu, joined it %zu, earlier "
            "step %zu; tickets %zu\n",
            s->name, t.messages, s->unparsed, t.with_headers, t.by_header,
            t.by_subject, t.by_token, t.fresh, t.duplicates, t.orphans,
            t.unverified, t.irt_stored, t.irt_joined, t.irt_earlier,
            s->ntickets);
        assert_int_equal(t.violations, 0);
        assert_int_equal(t.by_header + t.by_subject + t.by_token + t.fresh +
                             t.duplicates + t.orphans,
                         t.messages);
        check_tables(f, s, &t);
        if (s == &f->handmade)
            check_handmade(s);
        else
            assert_true(t.messages >= 1000 && t.by_header > 0);
    }
    /* Without ../shared only the handmade threads ran (said above). */
    if (!f->corpus.present && !f->handmade.present)
        skip();
}

/* ---- 3. real reply pairs ---------------------------------------------- */

static void test_reply_pairs(void **state)
{
    struct fx *f = *state;
    struct set *sets[] = {&f->corpus, &f->handmade};
    for (size_t k = 0; k < 2; k++) {
        struct set *s = sets[k];
        if (skip_without(s))
            continue;
        deliver_set(f, s);
        struct map ids = {0}; /* message_id -> first message index + 1 */
        for (size_t i = 0; i < s->n; i++)
            if (!s->m[i].record.rec.message_id_derived)
                map_put_new(&ids, s->m[i].record.rec.message_id, (int64_t)i + 1);
        size_t pairs = 0, same = 0, orphan = 0;
        for (size_t i = 0; i < s->n; i++) {
            const struct msg *b = &s->m[i];
            int64_t ai;
            if (!usable(b->record.rec.in_reply_to) ||
                !map_get(&ids, b->record.rec.in_reply_to, &ai))
                continue;
            /* Every file with that id is a parent (corpora copy messages);
             * all of them share the first one's ticket. */
            const struct msg *a = &s->m[ai - 1];
            if (a == b)
                continue;
            pairs++;
            int64_t ta = final_ticket(a), tb = final_ticket(b);
            print_message("[%s] pair %s -> %s: tickets %lld, %lld (%s)\n",
                          s->name, b->file, a->file, (long long)tb,
                          (long long)ta, b->res.threaded_by);
            if (ta == 0 || tb == 0) {
                orphan++; /* a bounce of nothing known has no ticket */
                continue;
            }
            same += ta == tb;
        }
        map_free(&ids);
        print_message("[%s] reply pairs: %zu, same ticket %zu, orphan "
                      "bounce %zu\n",
                      s->name, pairs, same, orphan);
        assert_int_equal(same + orphan, pairs);
        /* The corpus holds one real thread (RFC 2822 A.2, three messages
         * in ruby-mail): two pairs. */
        assert_true(pairs >= (s == &f->corpus ? 2u : 3u));
    }
    /* Without ../shared only the handmade threads ran (said above). */
    if (!f->corpus.present && !f->handmade.present)
        skip();
}

/* ---- 4. subjects ------------------------------------------------------- */

static void test_subjects(void **state)
{
    struct fx *f = *state;
    static const char *const prefixes[] = {
        "Re: ", "AW: ",     "RE[2]: ", "Fwd: ",
        "SV: ", "Re: Re: ", "回复：",  "[EXTERNAL] Re: "};
    struct set *sets[] = {&f->corpus, &f->handmade};
    for (size_t k = 0; k < 2; k++) {
        const struct set *s = sets[k];
        if (skip_without(s))
            continue;
        size_t subjects = 0, bad = 0, changed = 0;
        struct mr_buf b;
        mr_buf_init(&b, 0);
        for (size_t i = 0; i < s->n; i++) {
            const char *subj = s->m[i].record.rec.subject;
            if (subj == NULL)
                continue;
            subjects++;
            char n1[MR_THREAD_SUBJECT_MAX], n2[MR_THREAD_SUBJECT_MAX],
                np[MR_THREAD_SUBJECT_MAX];
            normalize(subj, n1);
            normalize(n1, n2);
            changed += strcmp(n1, subj) != 0;
            if (strcmp(n1, n2) != 0 || !mr_utf8_valid(n1, strlen(n1))) {
                bad++;
                print_error("[%s] %s: not idempotent or not UTF-8: \"%s\" -> "
                            "\"%s\" -> \"%s\"\n",
                            s->name, s->m[i].file, subj, n1, n2);
            }
            for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++) {
                mr_buf_reset(&b);
                mr_buf_puts(&b, prefixes[p]);
                mr_buf_puts(&b, subj);
                normalize(b.p, np);
                if (strcmp(np, n1) != 0) {
                    bad++;
                    print_error("[%s] %s: \"%s\" -> \"%s\", but \"%s\" -> "
                                "\"%s\"\n",
                                s->name, s->m[i].file, subj, n1, b.p, np);
                }
            }
        }
        mr_buf_release(&b);
        print_message("[%s] subjects: %zu, changed by normalizing %zu, "
                      "failures %zu\n",
                      s->name, subjects, changed, bad);
        assert_int_equal(bad, 0);
        assert_true(subjects > 0);
    }
    /* Without ../shared only the handmade threads ran (said above). */
    if (!f->corpus.present && !f->handmade.present)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_headers),
        cmocka_unit_test(test_deliver_properties),
        cmocka_unit_test(test_reply_pairs),
        cmocka_unit_test(test_subjects),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
