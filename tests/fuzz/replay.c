/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay.c - runs a libFuzzer target on saved inputs without libFuzzer.
 *
 *   fuzz_replay PATH...   every regular file of each directory (not
 *                         recursive, in name order) and every file named
 *
 * Built by the normal (gcc) build so that the seed corpus and any crash
 * reproducer dropped into it are a plain CTest test, with or without ASan.
 * Each input is read into a buffer of exactly its size, as libFuzzer does,
 * so a read past the end is an ASan report, not a silent read of slack.
 * An invariant the target checks ends the run with abort().
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/buf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bigger inputs are not fuzz inputs; refuse rather than swap. */
#define REPLAY_MAX ((size_t)256 << 20)

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct mr_buf b;
    mr_buf_init(&b, REPLAY_MAX);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        mr_buf_append(&b, chunk, n);
    int bad = ferror(f) || b.limited;
    fclose(f);
    if (bad) {
        fprintf(stderr, "fuzz_replay: %s: read error or over %zu bytes\n",
                path, REPLAY_MAX);
        mr_buf_release(&b);
        return -1;
    }
    /* Exactly len bytes (one for an empty input, which is passed as 0). */
    uint8_t *data = mr_xmalloc(b.len ? b.len : 1);
    if (b.len)
        memcpy(data, b.p, b.len);
    fprintf(stderr, "fuzz_replay: %s (%zu bytes)\n", path, b.len);
    LLVMFuzzerTestOneInput(data, b.len);
    free(data);
    mr_buf_release(&b);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "fuzz_replay: %s: %s\n", dir, strerror(errno));
        return -1;
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
    if (n)
        qsort(names, n, sizeof(*names), by_name);
    int rc = 0;
    struct mr_buf path;
    mr_buf_init(&path, 0);
    for (size_t i = 0; i < n; i++) {
        mr_buf_reset(&path);
        mr_buf_printf(&path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path.p, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path.p) != 0)
                rc = -1;
            else
                (*count)++;
        }
        free(names[i]);
    }
    mr_buf_release(&path);
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: fuzz_replay FILE|DIR...\n", stderr);
        return 64;
    }
    LLVMFuzzerInitialize(&argc, &argv);
    size_t count = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_replay: %s: %s\n", argv[i],
                    strerror(errno));
            rc = 1;
        } else if (S_ISDIR(st.st_mode)) {
            if (run_dir(argv[i], &count) != 0)
                rc = 1;
        } else if (run_file(argv[i]) != 0) {
            rc = 1;
        } else {
            count++;
        }
    }
    printf("fuzz_replay: %zu input(s) replayed, invariants held\n", count);
    /* LeakSanitizer runs at exit and ends with _exit: flush first. */
    fflush(stdout);
    if (count == 0) {
        fputs("fuzz_replay: no inputs found\n", stderr);
        return 1;
    }
    return rc;
}
