/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parse.c - `mailroom parse`: one message to its event JSON, or many to
 * JSON lines.
 *
 * Files are mmap'ed (the parser reads one contiguous buffer and keeps spans
 * into it); standard input is read into a capped buffer. With --jsonl every
 * input gets one line, in input order, directories expanded in name order;
 * a message that fails prints {"file", "error"} on its line and the others
 * go on. The exit status is the worst one seen.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../mime/mime.h"
#include "../util/buf.h"
#include "../util/json.h"
#include "cli.h"

struct input {
    const char *data;
    size_t len;
    void *map;    /* munmap when set */
    char *owned;  /* free when set */
};

/* Reads a file or "-" into in. Returns 0 or an exit status with the
 * message printed. */
static int load(const char *path, size_t max, struct input *in,
                struct mr_error *err)
{
    memset(in, 0, sizeof(*in));
    if (strcmp(path, "-") == 0) {
        struct mr_buf b;
        mr_buf_init(&b, max + 1);
        for (;;) {
            char *p = mr_buf_reserve(&b, 65536);
            if (p == NULL)
                break;
            ssize_t n = read(STDIN_FILENO, p, 65536);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                mr_buf_release(&b);
                mr_error_set(err, MR_EIO, "reading standard input: %s",
                             strerror(errno));
                return MR_EXIT_IOERR;
            }
            if (n == 0)
                break;
            mr_buf_commit(&b, (size_t)n);
        }
        in->owned = mr_buf_detach(&b, &in->len);
        in->data = in->owned;
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mr_error_set(err, MR_EIO, "%s: %s", path, strerror(errno));
        return MR_EXIT_IOERR;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mr_error_set(err, MR_EIO, "%s: not a regular file", path);
        close(fd);
        return MR_EXIT_IOERR;
    }
    in->len = (size_t)st.st_size;
    if (in->len > 0) {
        void *m = mmap(NULL, in->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            mr_error_set(err, MR_EIO, "%s: mmap: %s", path, strerror(errno));
            close(fd);
            return MR_EXIT_IOERR;
        }
        in->map = m;
        in->data = m;
    } else {
        in->data = "";
    }
    close(fd);
    return 0;
}

static void unload(struct input *in)
{
    if (in->map)
        munmap(in->map, in->len);
    free(in->owned);
}

struct run {
    struct mr_mime_options opt;
    struct mr_buf out;
    bool pretty, jsonl;
    int worst;
};

static void flush(struct run *r)
{
    fwrite(r->out.p, 1, r->out.len, stdout);
    mr_buf_reset(&r->out);
}

static int exit_for(int code)
{
    return code == MR_EIO ? MR_EXIT_IOERR : MR_EXIT_DATAERR;
}

static void one(struct run *r, const char *path)
{
    struct mr_error err = {0};
    struct input in;
    int st = load(path, r->opt.limits.max_message_bytes, &in, &err);
    struct mr_json j;
    mr_json_init(&j, &r->out, r->pretty);
    if (st == 0) {
        struct mr_arena *a = mr_arena_new();
        struct mr_event *ev;
        int rc = mr_mime_parse(in.data, in.len, &r->opt, a, &ev, &err);
        if (rc == 0) {
            mr_event_write_json(ev, r->jsonl ? path : NULL, &j);
        } else {
            st = exit_for(rc);
        }
        mr_arena_free(&a);
    }
    unload(&in);
    if (st != 0) {
        fprintf(stderr, "mailroom: %s%s%s\n", r->jsonl ? path : "",
                r->jsonl ? ": " : "", err.msg);
        if (r->jsonl) {
            mr_json_obj_begin(&j);
            mr_json_key(&j, "file");
            mr_json_cstr(&j, path);
            mr_json_key(&j, "error");
            mr_json_cstr(&j, err.msg);
            mr_json_obj_end(&j);
        }
        if (st > r->worst)
            r->worst = st;
    }
    if (r->out.len) {
        mr_buf_putc(&r->out, '\n');
        flush(r);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file under dir, sorted by name, depth-first. */
static void walk(struct run *r, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "mailroom: %s: %s\n", dir, strerror(errno));
        r->worst = MR_EXIT_IOERR;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = mr_xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = mr_xstrndup(e->d_name, strlen(e->d_name));
    }
    closedir(d);
    qsort(names, n, sizeof(*names), by_name);
    struct mr_buf path;
    mr_buf_init(&path, 0);
    for (size_t i = 0; i < n; i++) {
        mr_buf_reset(&path);
        mr_buf_printf(&path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path.p, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (depth < 32)
                walk(r, path.p, depth + 1);
        } else {
            one(r, path.p);
        }
        free(names[i]);
    }
    mr_buf_release(&path);
    free(names);
}

int mr_cli_parse(int argc, char **argv)
{
    struct run r = {0};
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    mr_mime_options_default(&r.opt, cs);
    mr_buf_init(&r.out, 0);
    const char **paths = mr_xcalloc((size_t)argc, sizeof(char *));
    size_t npaths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pretty") == 0)
            r.pretty = true;
        else if (strcmp(argv[i], "--jsonl") == 0)
            r.jsonl = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "mailroom parse: unknown option '%s'\n", argv[i]);
            free(paths);
            mr_charset_ctx_free(&cs);
            return MR_EXIT_USAGE;
        } else
            paths[npaths++] = argv[i];
    }
    if (r.jsonl)
        r.pretty = false;
    if (npaths == 0)
        paths[npaths++] = "-";
    if (npaths > 1 && !r.jsonl) {
        fputs("mailroom parse: several inputs need --jsonl\n", stderr);
        free(paths);
        mr_charset_ctx_free(&cs);
        return MR_EXIT_USAGE;
    }
    for (size_t i = 0; i < npaths; i++) {
        struct stat st;
        if (r.jsonl && strcmp(paths[i], "-") != 0 && stat(paths[i], &st) == 0 &&
            S_ISDIR(st.st_mode))
            walk(&r, paths[i], 0);
        else
            one(&r, paths[i]);
    }
    fflush(stdout);
    if (ferror(stdout)) {
        fputs("mailroom: error writing standard output\n", stderr);
        r.worst = MR_EXIT_IOERR;
    }
    mr_buf_release(&r.out);
    free(paths);
    mr_charset_ctx_free(&cs);
    /* With --jsonl a bad message is reported on its line and the others
     * go on; the exit status is still the worst seen, so scripts notice. */
    return r.worst;
}
