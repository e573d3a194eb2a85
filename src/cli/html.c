/* SPDX-License-Identifier: Apache-2.0 */
/*
 * html.c - `mailroom html sanitize|text`: the content filters on their
 * own, for operators (what would the agent see?) and for test harnesses.
 *
 *   mailroom html sanitize [FILE|-] [--remote-images]   sanitized HTML
 *   mailroom html text [FILE|-]                         mr_html_to_text
 *   ... --jsonl     stdin holds {"id": ..., "html": "..."} per line; each
 *                   gets {"id": ..., "html_sanitized"|"text": "..."} or
 *                   {"id": ..., "error": "..."} on its line, in order.
 *
 * cid: URLs are left as they are (no resolver: there is no message here).
 * Exit status: 0, 64 usage, 65 bad input (the worst line with --jsonl),
 * 74 I/O.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../content/html_text.h"
#include "../content/sanitize.h"
#include "../util/buf.h"
#include "../util/json.h"
#include "cli.h"

/* The largest HTML document or JSON line read, and the largest output:
 * far above any mail body the server accepts. */
#define MAX_INPUT (64u << 20)
#define MAX_OUTPUT (256u << 20)

struct run {
    bool text; /* html text, else html sanitize */
    struct mr_sanitize_opts opt;
};

/* Filters html[0..n) into out. */
static int filter(const struct run *r, const char *html, size_t n,
                  struct mr_buf *out, struct mr_error *err)
{
    if (r->text) {
        mr_html_to_text(html, n, out);
        if (out->limited)
            return mr_error_set(err, MR_ELIMIT, "text is over the limit");
        return 0;
    }
    return mr_html_sanitize(html, n, &r->opt, out, err);
}

/* Reads all of f into b (capped). */
static int slurp(FILE *f, struct mr_buf *b, const char *what,
                 struct mr_error *err)
{
    for (;;) {
        char *p = mr_buf_reserve(b, 65536);
        if (p == NULL)
            return mr_error_set(err, MR_ELIMIT, "%s: over %u bytes", what,
                                MAX_INPUT);
        size_t k = fread(p, 1, 65536, f);
        mr_buf_commit(b, k);
        if (k < 65536) {
            if (ferror(f))
                return mr_error_set(err, MR_EIO, "%s: %s", what,
                                    strerror(errno));
            return 0;
        }
    }
}

static int one_document(const struct run *r, const char *path)
{
    struct mr_error err = {0};
    struct mr_buf in, out;
    mr_buf_init(&in, MAX_INPUT);
    mr_buf_init(&out, MAX_OUTPUT);
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    int rc = 0;
    if (f == NULL) {
        mr_error_set(&err, MR_EIO, "%s: %s", path, strerror(errno));
        rc = MR_EXIT_IOERR;
    } else {
        int e = slurp(f, &in, path, &err);
        if (f != stdin)
            fclose(f);
        if (e == MR_EIO)
            rc = MR_EXIT_IOERR;
        else if (e != 0 || filter(r, in.p ? in.p : "", in.len, &out, &err) != 0)
            rc = MR_EXIT_DATAERR;
    }
    if (rc == 0) {
        fwrite(out.p ? out.p : "", 1, out.len, stdout);
        if (out.len && out.p[out.len - 1] != '\n')
            putchar('\n');
    } else {
        fprintf(stderr, "mailroom html: %s\n", err.msg);
    }
    mr_buf_release(&in);
    mr_buf_release(&out);
    return rc;
}

/* The id of a line as it came (string or integer; anything else null). */
static void put_id(struct mr_json *j, const json_t *id)
{
    mr_json_key(j, "id");
    if (json_is_string(id))
        mr_json_str(
            j, mr_span_make(json_string_value(id), json_string_length(id)));
    else if (json_is_integer(id))
        mr_json_int(j, json_integer_value(id));
    else
        mr_json_null(j);
}

static int jsonl(const struct run *r)
{
    int worst = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    struct mr_buf res, out;
    mr_buf_init(&res, MAX_OUTPUT);
    mr_buf_init(&out, 0);
    unsigned long lineno = 0;
    while ((len = getline(&line, &cap, stdin)) != -1) {
        lineno++;
        if (len == 0 || (len == 1 && line[0] == '\n'))
            continue;
        struct mr_error err = {0};
        json_error_t jerr;
        json_t *obj = NULL, *id = NULL;
        int rc = 0;
        if ((size_t)len > MAX_INPUT) {
            mr_error_set(&err, MR_ELIMIT, "line %lu: over %u bytes", lineno,
                         MAX_INPUT);
            rc = -1;
        } else if ((obj = json_loadb(line, (size_t)len, JSON_ALLOW_NUL,
                                     &jerr)) == NULL) {
            mr_error_set(&err, MR_EINVAL, "line %lu: %s", lineno, jerr.text);
            rc = -1;
        } else {
            id = json_object_get(obj, "id");
            const json_t *h = json_object_get(obj, "html");
            mr_buf_reset(&res);
            if (!json_is_string(h)) {
                mr_error_set(&err, MR_EINVAL, "line %lu: no \"html\" string",
                             lineno);
                rc = -1;
            } else {
                rc = filter(r, json_string_value(h), json_string_length(h),
                            &res, &err);
            }
        }
        struct mr_json j;
        mr_json_init(&j, &out, false);
        mr_json_obj_begin(&j);
        put_id(&j, id);
        if (rc == 0) {
            mr_json_key(&j, r->text ? "text" : "html_sanitized");
            mr_json_str(&j, mr_buf_span(&res));
        } else {
            mr_json_key(&j, "error");
            mr_json_cstr(&j, err.msg);
            fprintf(stderr, "mailroom html: %s\n", err.msg);
            worst = MR_EXIT_DATAERR;
        }
        mr_json_obj_end(&j);
        mr_buf_putc(&out, '\n');
        fwrite(out.p, 1, out.len, stdout);
        mr_buf_reset(&out);
        json_decref(obj);
    }
    if (ferror(stdin)) {
        fputs("mailroom html: error reading standard input\n", stderr);
        worst = MR_EXIT_IOERR;
    }
    free(line);
    mr_buf_release(&res);
    mr_buf_release(&out);
    return worst;
}

static int usage(void)
{
    fputs("usage: mailroom html sanitize [FILE|-] [--remote-images] "
          "[--jsonl]\n"
          "       mailroom html text [FILE|-] [--jsonl]\n",
          stderr);
    return MR_EXIT_USAGE;
}

int mr_cli_html(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    struct run r = {0};
    if (strcmp(argv[1], "text") == 0)
        r.text = true;
    else if (strcmp(argv[1], "sanitize") != 0)
        return usage();
    const char *path = NULL;
    bool lines = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--jsonl") == 0)
            lines = true;
        else if (strcmp(argv[i], "--remote-images") == 0 && !r.text)
            r.opt.remote_images = true;
        else if ((argv[i][0] != '-' || argv[i][1] == '\0') && path == NULL)
            path = argv[i];
        else
            return usage();
    }
    if (lines && path != NULL && strcmp(path, "-") != 0) {
        fputs("mailroom html: --jsonl reads standard input\n", stderr);
        return MR_EXIT_USAGE;
    }
    int rc = lines ? jsonl(&r) : one_document(&r, path ? path : "-");
    fflush(stdout);
    if (ferror(stdout)) {
        fputs("mailroom html: error writing standard output\n", stderr);
        return MR_EXIT_IOERR;
    }
    return rc;
}
