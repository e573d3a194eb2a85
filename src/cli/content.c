/* SPDX-License-Identifier: Apache-2.0 */
/*
 * content.c - `mailroom content resanitize`: every stored message whose
 * sanitized HTML was made by an older sanitizer (or could not be made) is
 * sanitized again from its original HTML, after the rules tightened
 * (MR_SANITIZER_VERSION went up). Safe to run beside a live server: each
 * message is one small write, and a stopped run picks up where the stale
 * ones are.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/instance.h"
#include "content/content.h"
#include "content/sanitize.h"

#define PAGE 100

/* The event's attachments as cid -> sha256 pairs (borrowed from ev). */
static size_t event_cids(json_t *ev, struct mr_content_cid **out)
{
    json_t *atts = json_object_get(ev, "attachments");
    size_t n = json_array_size(atts), k = 0;
    *out = calloc(n ? n : 1, sizeof **out);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(atts, i);
        const char *cid = json_string_value(json_object_get(a, "content_id"));
        const char *sha = json_string_value(json_object_get(a, "sha256"));
        if (cid && sha)
            (*out)[k++] = (struct mr_content_cid){cid, sha};
    }
    return k;
}

/* One message: 1 rewritten, 0 when it failed (reason printed). */
static int one(struct mr_store *st, const struct mr_stale_html *m)
{
    json_error_t jerr;
    json_t *ev = json_loads(m->event_json ? m->event_json : "", 0, &jerr);
    json_t *html = json_object_get(ev, "html");
    if (!json_is_object(ev) || !json_is_string(html)) {
        fprintf(stderr, "mailroom content: message %lld: stored event has "
                        "no HTML body (%s)\n",
                (long long)m->row, ev ? "no html" : jerr.text);
        json_decref(ev);
        return 0;
    }
    struct mr_content_in in = {.html = json_string_value(html),
                               .html_len = json_string_length(html)};
    struct mr_content_cid *cids = NULL;
    in.ncids = event_cids(ev, &cids);
    in.cids = cids;
    struct mr_content_out out;
    mr_content_build(&in, &out);
    json_t *hs = out.have_html_sanitized
                     ? json_stringn(out.html_sanitized.p
                                        ? out.html_sanitized.p
                                        : "",
                                    out.html_sanitized.len)
                     : NULL;
    json_object_set_new(ev, "html_sanitized", hs ? hs : json_null());
    char *doc = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    struct mr_error err = {0};
    int rc = doc ? mr_store_set_html_sanitized(
                       st, m->row, hs ? json_string_value(hs) : NULL,
                       MR_SANITIZER_VERSION, doc, &err)
                 : mr_error_set(&err, MR_ENOMEM, "cannot write the event");
    if (rc != MR_OK)
        fprintf(stderr, "mailroom content: message %lld: %s\n",
                (long long)m->row, err.msg);
    else if (!hs)
        fprintf(stderr, "mailroom content: message %lld: the sanitizer gave "
                        "up; stored without a sanitized body\n",
                (long long)m->row);
    free(doc);
    free(cids);
    mr_content_out_release(&out);
    json_decref(ev);
    return rc == MR_OK && hs ? 1 : 0;
}

int mr_cli_content(int argc, char **argv)
{
    struct mr_instance_args ia = {0};
    bool resanitize = false;
    for (int i = 1; i < argc; i++) {
        int r = mr_instance_opt(argc, argv, &i, &ia, NULL, 0);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "resanitize") == 0 && !resanitize) {
            resanitize = true;
            continue;
        }
        resanitize = false;
        break;
    }
    if (!resanitize) {
        fprintf(stderr, "usage: mailroom content resanitize [--data DIR] "
                        "[--config FILE]\n");
        return MR_EXIT_USAGE;
    }
    struct mr_instance inst;
    int rc = mr_instance_open("content", &ia, MR_INSTANCE_STORE, &inst);
    if (rc != 0)
        return rc;
    struct mr_stale_html page[PAGE];
    size_t done = 0, failed = 0, n = 0;
    int64_t after = 0;
    struct mr_error err = {0};
    for (;;) {
        rc = mr_store_stale_html(inst.store, MR_SANITIZER_VERSION, after, PAGE,
                                 page, &n, &err);
        if (rc != MR_OK || n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (one(inst.store, &page[i]))
                done++;
            else
                failed++;
            after = page[i].row;
            mr_stale_html_clear(&page[i]);
        }
    }
    if (rc != MR_OK)
        fprintf(stderr, "mailroom content: %s\n", err.msg);
    else
        printf("%zu message(s) sanitized again with sanitizer version %d; "
               "%zu could not be\n",
               done, MR_SANITIZER_VERSION, failed);
    mr_instance_close(&inst);
    if (rc != MR_OK)
        return MR_EXIT_IOERR;
    return failed ? MR_EXIT_DATAERR : MR_EXIT_OK;
}
