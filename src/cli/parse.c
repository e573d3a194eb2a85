/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parse.c - `mailroom parse`: one message to its event JSON, or many to
 * JSON lines.
 *
 * The parser reads one contiguous buffer and keeps spans into it. A file
 * under MAP_MIN is read into one buffer that is reused from message to
 * message: measured on the parse benchmark, mapping, faulting in and
 * unmapping every small file cost more than the copy (1,035 messages of
 * 13 KB: 8,300 system calls down to 4,200, ~10% of the run). A larger
 * file is mapped, and the parser tells us which stretches it has read
 * through (options.pages) so that their pages can go at once: the
 * message is then in memory a window at a time, and peak RSS does not
 * grow with the size of the largest message (4.4 MB on the benchmark:
 * 8.7 MB peak when it was read whole, 5.2 MB now over the whole corpus,
 * 3.8 MB for that message alone). A file over max_message_bytes is
 * refused by its size, without being read.
 *
 * The content stage (src/content/content.h) fills html_sanitized and
 * stripped_text as the server does; --mime-only leaves them null, for
 * measuring the MIME parser alone against other MIME parsers (make
 * bench-parse), none of which sanitizes.
 *
 * With --jsonl every input gets one line, in input order, directories
 * expanded in name order; a message that fails prints {"file", "error"}
 * on its line and the others go on. The exit status is the worst one
 * seen. Output is collected and written in large blocks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../content/content.h"
#include "../mime/mime.h"
#include "../util/buf.h"
#include "../util/json.h"
#include "cli.h"

/* Output is written when this much is waiting (and at the end). */
#define OUT_FLUSH (64 * 1024)
/* Files from this size on are mapped rather than read. */
#define MAP_MIN (256u << 10)

struct run {
    struct mr_mime_options opt;
    struct mr_input_hint pages; /* drop_pages, for mapped messages */
    size_t page_size;
    struct mr_buf in; /* a message read from a small file or stdin; reused */
    void *map;        /* or the mapping of a large file (munmap it) */
    size_t map_len;
    struct mr_buf out; /* JSON not yet written */
    bool pretty, jsonl;
    bool content; /* run the content stage (default; --mime-only skips) */
    int worst;
};

/* options.pages for a mapped message: the whole pages of a stretch the
 * parser has read through are let go, to be read back from the page cache
 * should the parser need them again. */
static void drop_pages(void *ctx, const char *p, size_t n)
{
    const struct run *r = ctx;
    uintptr_t a = (uintptr_t)p, e = a + n, mask = r->page_size - 1;
    a = (a + mask) & ~mask;
    e &= ~mask;
    if (e > a)
        madvise((void *)a, e - a, MADV_DONTNEED);
}

/* Reads n bytes (fewer if the file shrank) from fd into r->in. */
static int read_all(int fd, struct run *r, size_t n, const char *path,
                    struct mr_error *err)
{
    char *p = mr_buf_reserve(&r->in, n);
    size_t got = 0;
    while (p != NULL && got < n) {
        ssize_t k = read(fd, p + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            mr_error_set(err, MR_EIO, "%s: %s", path, strerror(errno));
            return MR_EXIT_IOERR;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    if (got)
        mr_buf_commit(&r->in, got);
    return 0;
}

/* Reads "-" or the file `name` in directory dirfd (path names it for
 * messages) into r->in. Returns 0 or an exit status with the message in
 * err. */
static int load(struct run *r, int dirfd, const char *name, const char *path,
                struct mr_error *err)
{
    size_t max = r->opt.limits.max_message_bytes;
    mr_buf_reset(&r->in);
    if (dirfd == AT_FDCWD && strcmp(name, "-") == 0) {
        /* Up to one byte over the limit, so that the parser can say
         * "over the limit" without the rest being read. */
        for (;;) {
            size_t room = max + 1 - r->in.len;
            if (room == 0)
                break;
            char *p = mr_buf_reserve(&r->in, room < 65536 ? room : 65536);
            if (p == NULL)
                break;
            ssize_t n = read(STDIN_FILENO, p, room < 65536 ? room : 65536);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                mr_error_set(err, MR_EIO, "reading standard input: %s",
                             strerror(errno));
                return MR_EXIT_IOERR;
            }
            if (n == 0)
                break;
            mr_buf_commit(&r->in, (size_t)n);
        }
        return 0;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
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
    size_t size = (size_t)st.st_size;
    int rc = 0;
    if (size > max) {
        /* The parser's own words for it (mr_mime_parse), without reading
         * the file. */
        mr_error_set(err, MR_ELIMIT,
                     "message of %zu bytes is over the "
                     "limit of %zu",
                     size, max);
        rc = MR_EXIT_DATAERR;
    } else if (size >= MAP_MIN) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            mr_error_set(err, MR_EIO, "%s: mmap: %s", path, strerror(errno));
            rc = MR_EXIT_IOERR;
        } else {
            r->map = m;
            r->map_len = size;
        }
    } else if (size > 0) {
        rc = read_all(fd, r, size, path, err);
    }
    close(fd);
    return rc;
}

static void flush(struct run *r)
{
    if (r->out.len)
        fwrite(r->out.p, 1, r->out.len, stdout);
    mr_buf_reset(&r->out);
}

static int exit_for(int code)
{
    return code == MR_EIO ? MR_EXIT_IOERR : MR_EXIT_DATAERR;
}

/* Parses one input and writes its JSON (or error) to r->out. */
static void one(struct run *r, int dirfd, const char *name, const char *path)
{
    struct mr_error err = {0};
    int st = load(r, dirfd, name, path, &err);
    struct mr_json j;
    size_t start = r->out.len;
    mr_json_init(&j, &r->out, r->pretty);
    if (st == 0) {
        struct mr_arena *a = mr_arena_new();
        struct mr_event *ev;
        const char *p = r->map ? r->map : r->in.p ? r->in.p : "";
        size_t n = r->map ? r->map_len : r->in.len;
        r->opt.pages = r->map ? &r->pages : NULL;
        int rc = mr_mime_parse(p, n, &r->opt, a, &ev, &err);
        if (rc == 0) {
            if (r->content)
                mr_content_apply(ev, a);
            mr_event_write_json(ev, r->jsonl ? path : NULL, &j);
        } else {
            st = exit_for(rc);
        }
        mr_arena_free(&a);
    }
    if (r->map) {
        munmap(r->map, r->map_len);
        r->map = NULL;
    }
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
    if (r->out.len > start)
        mr_buf_putc(&r->out, '\n');
    if (r->out.len >= OUT_FLUSH)
        flush(r);
}

struct entry {
    char *name;
    unsigned char type; /* d_type; DT_UNKNOWN: the file system did not say */
};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name,
                  ((const struct entry *)b)->name);
}

/* Every regular file under dir, sorted by name, depth-first. Files are
 * opened relative to the directory, which saves the kernel a walk down the
 * whole path for each one. */
static void walk(struct run *r, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "mailroom: %s: %s\n", dir, strerror(errno));
        r->worst = MR_EXIT_IOERR;
        return;
    }
    struct entry *names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = mr_xrealloc(names, cap * sizeof(*names));
        }
        names[n].name = mr_xstrndup(e->d_name, strlen(e->d_name));
        names[n++].type = e->d_type;
    }
    qsort(names, n, sizeof(*names), by_name);
    struct mr_buf path;
    mr_buf_init(&path, 0);
    for (size_t i = 0; i < n; i++) {
        mr_buf_reset(&path);
        mr_buf_puts(&path, dir);
        mr_buf_putc(&path, '/');
        mr_buf_puts(&path, names[i].name);
        /* d_type saves a stat() per file; links and file systems that do
         * not fill it in are asked. */
        bool is_dir = names[i].type == DT_DIR;
        if (names[i].type == DT_UNKNOWN || names[i].type == DT_LNK) {
            struct stat st;
            is_dir = fstatat(dirfd(d), names[i].name, &st, 0) == 0 &&
                     S_ISDIR(st.st_mode);
        }
        if (is_dir) {
            if (depth < 32)
                walk(r, path.p, depth + 1);
        } else {
            one(r, dirfd(d), names[i].name, path.p);
        }
        free(names[i].name);
    }
    closedir(d);
    mr_buf_release(&path);
    free(names);
}

int mr_cli_parse(int argc, char **argv)
{
    struct run r = {.content = true};
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    mr_mime_options_default(&r.opt, cs);
    r.pages = (struct mr_input_hint){&r, drop_pages};
    long ps = sysconf(_SC_PAGESIZE);
    r.page_size = ps > 0 ? (size_t)ps : 4096;
    mr_buf_init(&r.in, r.opt.limits.max_message_bytes + 1);
    mr_buf_init(&r.out, 0);
    const char **paths = mr_xcalloc((size_t)argc, sizeof(char *));
    size_t npaths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pretty") == 0)
            r.pretty = true;
        else if (strcmp(argv[i], "--jsonl") == 0)
            r.jsonl = true;
        else if (strcmp(argv[i], "--mime-only") == 0)
            r.content = false;
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
            one(&r, AT_FDCWD, paths[i], paths[i]);
    }
    flush(&r);
    fflush(stdout);
    if (ferror(stdout)) {
        fputs("mailroom: error writing standard output\n", stderr);
        r.worst = MR_EXIT_IOERR;
    }
    mr_buf_release(&r.in);
    mr_buf_release(&r.out);
    free(paths);
    mr_charset_ctx_free(&cs);
    /* With --jsonl a bad message is reported on its line and the others
     * go on; the exit status is still the worst seen, so scripts notice. */
    return r.worst;
}
