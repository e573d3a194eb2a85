/* SPDX-License-Identifier: Apache-2.0 */
/*
 * classify_corpus.c - classification measured on the sisimai corpus
 * (issue 4, Proof).
 *
 * Every message of $MR_SHARED/corpus/sisimai-set-of-emails/maildir goes
 * the way the worker takes it: mr_mime_parse, the event JSON written with
 * mr_event_write_json, loaded back with jansson, mr_classify_event (no
 * envelope: the corpus has only the Return-Path the final MTA wrote).
 *
 * Labels come from the folders: bsd/ holds bounces and other delivery
 * reports (bounce), except rfc3834-* (autoreply); not/ holds messages
 * that are not bounces (none). Prints the share classified right, the
 * share of bounces whose original Message-ID, status and recipient were
 * recovered, and every miss with its file name and reason. Exit status:
 * 1 when the share is under 98% or a miss is not listed in the known-miss
 * file (file<TAB>got<TAB>explanation), 77 (skipped) without the corpus.
 *
 * usage: classify_corpus [-v] [--known FILE] [--corpus DIR]
 *        classify_corpus --each FILE...
 *   -v      one line per message (label, result, recovered fields, reason)
 *   --each  no measurement: one line per given file (other corpora)
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "content/classify.h"
#include "mime/charset.h"
#include "mime/mime.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/json.h"

#define MAX_FILES 20000
#define MAX_FILE_BYTES (64u << 20)
#define MAX_KNOWN 1000

struct known {
    char file[256];
    char got[32];
    bool seen;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted *.eml names of dir; caller frees each and the array. */
static size_t list_dir(const char *dir, char ***names_r)
{
    *names_r = NULL;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < MAX_FILES) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".eml") != 0)
            continue;
        names = mr_xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = mr_xstrndup(e->d_name, len);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    *names_r = names;
    return n;
}

static size_t load_known(const char *path, struct known *k, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "classify_corpus: %s: %s\n", path, strerror(errno));
        return 0;
    }
    char line[4096];
    size_t n = 0;
    while (fgets(line, sizeof(line), f) && n < cap) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *save = NULL;
        char *file = strtok_r(line, "\t\n", &save);
        char *got = strtok_r(NULL, "\t\n", &save);
        char *why = strtok_r(NULL, "\n", &save);
        if (file == NULL || got == NULL || why == NULL || why[0] == '\0') {
            fprintf(stderr,
                    "classify_corpus: %s: a line without an "
                    "explanation: %s\n",
                    path, file ? file : "");
            continue;
        }
        snprintf(k[n].file, sizeof(k[n].file), "%s", file);
        snprintf(k[n].got, sizeof(k[n].got), "%s", got);
        k[n].seen = false;
        n++;
    }
    fclose(f);
    return n;
}

struct tally {
    size_t total, right, unlisted;
    size_t bounces, with_id, with_rcpt; /* labelled and classified bounce */
    size_t dsns, with_status;           /* of those, delivery reports */
    struct mr_buf no_id, no_status;     /* their names, for the record */
};

/* Classifies one file the worker's way. NULL, or what failed. */
static const char *classify_file(const char *path, struct mr_charset_ctx *cs,
                                 struct mr_buf *raw, struct mr_buf *js,
                                 struct mr_classification *cl, char *failbuf,
                                 size_t failcap)
{
    memset(cl, 0, sizeof(*cl));
    if (mr_buf_read_file(raw, path, NULL) != 0)
        return "unreadable";
    const char *failure = NULL;
    struct mr_mime_options opt;
    mr_mime_options_default(&opt, cs);
    struct mr_arena *a = mr_arena_new();
    struct mr_event *ev = NULL;
    struct mr_error err = {0};
    if (mr_mime_parse(raw->p ? raw->p : "", raw->len, &opt, a, &ev, &err) !=
        0) {
        snprintf(failbuf, failcap, "parse: %s", err.msg);
        failure = failbuf;
    } else {
        mr_buf_reset(js);
        struct mr_json j;
        mr_json_init(&j, js, false);
        mr_event_write_json(ev, NULL, &j);
        json_error_t jerr;
        json_t *event = json_loadb(js->p, js->len, 0, &jerr);
        if (event == NULL) {
            snprintf(failbuf, failcap, "event JSON: %s", jerr.text);
            failure = failbuf;
        } else {
            if (mr_classify_event(event, NULL, cl, &err) != 0) {
                snprintf(failbuf, failcap, "classify: %s", err.msg);
                failure = failbuf;
            }
            json_decref(event);
        }
    }
    mr_arena_free(&a);
    return failure;
}

static void print_result(const char *prefix, const char *name,
                         const struct mr_classification *cl,
                         const char *failure)
{
    printf("%s%s %s id %s status %s rcpt %s | %s\n", prefix, name,
           failure ? "error" : mr_classify_kind_name(cl->kind),
           cl->original_message_id[0] ? cl->original_message_id : "-",
           cl->status[0] ? cl->status : "-",
           cl->recipient[0] ? cl->recipient : "-",
           failure ? failure : cl->reason);
}

static void run_one(const char *dir, const char *name, const char *label,
                    struct mr_charset_ctx *cs, struct known *known,
                    size_t nknown, bool verbose, struct tally *t,
                    struct mr_buf *raw, struct mr_buf *js)
{
    char path[8400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    const char *expect = label;
    if (strncmp(name, "rfc3834-", 8) == 0)
        expect = "autoreply";

    struct mr_classification cl;
    char failbuf[300];
    const char *failure =
        classify_file(path, cs, raw, js, &cl, failbuf, sizeof(failbuf));
    const char *got = failure ? "error" : mr_classify_kind_name(cl.kind);
    bool right = strcmp(got, expect) == 0;
    t->total++;
    t->right += right;
    if (strcmp(expect, "bounce") == 0 && cl.kind == MR_AUTO_BOUNCE) {
        t->bounces++;
        t->with_id += cl.original_message_id[0] != '\0';
        t->with_rcpt += cl.recipient[0] != '\0';
        if (!cl.original_message_id[0])
            mr_buf_printf(&t->no_id, " %s", name);
        /* Feedback reports (ARF) carry no delivery status. */
        if (!cl.feedback) {
            t->dsns++;
            t->with_status += cl.status[0] != '\0';
            if (!cl.status[0])
                mr_buf_printf(&t->no_status, " %s", name);
        }
    }
    if (verbose) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "%-5s want %-9s ",
                 right ? "ok" : "MISS", expect);
        print_result(prefix, name, &cl, failure);
    }
    if (right)
        return;
    struct known *k = NULL;
    for (size_t i = 0; i < nknown; i++)
        if (strcmp(known[i].file, name) == 0)
            k = &known[i];
    bool listed = k && strcmp(k->got, got) == 0;
    if (k)
        k->seen = true;
    if (!listed)
        t->unlisted++;
    printf("miss%s: %s: want %s, got %s (%s)\n", listed ? " (known)" : "", name,
           expect, got,
           failure        ? failure
           : cl.reason[0] ? cl.reason
                          : "no rule");
}

/* --each: one line per file, no labels (for a look at other corpora). */
static int each(int n, char **files)
{
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_buf raw, js;
    mr_buf_init(&raw, MAX_FILE_BYTES);
    mr_buf_init(&js, 0);
    for (int i = 0; i < n; i++) {
        struct mr_classification cl;
        char failbuf[300];
        const char *failure = classify_file(files[i], cs, &raw, &js, &cl,
                                            failbuf, sizeof(failbuf));
        print_result("", files[i], &cl, failure);
    }
    mr_buf_release(&raw);
    mr_buf_release(&js);
    mr_charset_ctx_free(&cs);
    return 0;
}

int main(int argc, char **argv)
{
    bool verbose = false;
    const char *known_path = NULL, *corpus = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = true;
        else if (strcmp(argv[i], "--known") == 0 && i + 1 < argc)
            known_path = argv[++i];
        else if (strcmp(argv[i], "--corpus") == 0 && i + 1 < argc)
            corpus = argv[++i];
        else if (strcmp(argv[i], "--each") == 0)
            return each(argc - i - 1, argv + i + 1);
        else {
            fprintf(stderr, "usage: classify_corpus [-v] [--known FILE] "
                            "[--corpus DIR] | --each FILE...\n");
            return 2;
        }
    }
    char dirbuf[4096];
    if (corpus == NULL) {
        const char *shared = getenv("MR_SHARED");
        if (shared == NULL || shared[0] == '\0') {
            printf("classify_corpus: MR_SHARED not set: skipped\n");
            return 77;
        }
        snprintf(dirbuf, sizeof(dirbuf),
                 "%s/corpus/sisimai-set-of-emails/maildir", shared);
        corpus = dirbuf;
    }
    struct stat st;
    if (stat(corpus, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("classify_corpus: %s not found: skipped\n", corpus);
        return 77;
    }

    static struct known known[MAX_KNOWN];
    size_t nknown = known_path ? load_known(known_path, known, MAX_KNOWN) : 0;

    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_buf raw, js;
    mr_buf_init(&raw, MAX_FILE_BYTES);
    mr_buf_init(&js, 0);
    struct tally t = {0};
    mr_buf_init(&t.no_id, 0);
    mr_buf_init(&t.no_status, 0);
    static const char *const sets[][2] = {{"bsd", "bounce"}, {"not", "none"}};
    for (size_t s = 0; s < 2; s++) {
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s/%s", corpus, sets[s][0]);
        char **names;
        size_t n = list_dir(dir, &names);
        for (size_t i = 0; i < n; i++) {
            run_one(dir, names[i], sets[s][1], cs, known, nknown, verbose, &t,
                    &raw, &js);
            free(names[i]);
        }
        free(names);
    }
    mr_buf_release(&raw);
    mr_buf_release(&js);
    mr_charset_ctx_free(&cs);

    for (size_t i = 0; i < nknown; i++)
        if (!known[i].seen)
            printf("note: %s is listed as a known miss but was classified "
                   "right (or not found): remove it from the list\n",
                   known[i].file);

    if (t.total == 0) {
        printf("classify_corpus: no messages under %s\n", corpus);
        return 1;
    }
    double share = 100.0 * (double)t.right / (double)t.total;
    printf("classified right: %zu of %zu (%.1f%%)\n", t.right, t.total, share);
    if (t.bounces) {
        printf("bounces with the original Message-ID: %zu of %zu (%.1f%%)\n",
               t.with_id, t.bounces,
               100.0 * (double)t.with_id / (double)t.bounces);
        printf("delivery reports with a status code: %zu of %zu (%.1f%%; "
               "the other %zu bounces are feedback reports, which have none)\n",
               t.with_status, t.dsns,
               t.dsns ? 100.0 * (double)t.with_status / (double)t.dsns : 0.0,
               t.bounces - t.dsns);
        printf("bounces with the failed recipient: %zu of %zu (%.1f%%)\n",
               t.with_rcpt, t.bounces,
               100.0 * (double)t.with_rcpt / (double)t.bounces);
        printf("no original Message-ID:%s\n", t.no_id.p ? t.no_id.p : " -");
        printf("no status code:%s\n", t.no_status.p ? t.no_status.p : " -");
    }
    mr_buf_release(&t.no_id);
    mr_buf_release(&t.no_status);
    int rc = 0;
    if (share < 98.0) {
        printf("FAIL: under 98%% classified right\n");
        rc = 1;
    }
    if (t.unlisted) {
        printf("FAIL: %zu miss(es) not in the known-miss list%s\n", t.unlisted,
               known_path ? "" : " (no --known file given)");
        rc = 1;
    }
    return rc;
}
