/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/blob (the local directory backend): round trips,
 * streaming equals one-shot, deduplication, the size cap, missing keys,
 * the stale temporary file sweep (and that it spares a live writer's
 * file), I/O failures mapped to MR_EIO with the system's reason, and four
 * threads writing at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "blob/blob.h"
#include "util/hash.h"

/* ---- a fresh store per test ---- */

struct fixture {
    char dir[64];
    char store[96];
    struct mr_blob *b;
};

static int remove_tree(const char *path, int depth)
{
    struct stat st;
    if (depth > 8 || lstat(path, &st) != 0)
        return 0;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, 0700);
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[4096];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            remove_tree(sub, depth + 1);
        }
        if (d)
            closedir(d);
        return rmdir(path);
    }
    return unlink(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/mr-test-blob-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    /* A folder that does not exist yet: open must create it. */
    snprintf(f->store, sizeof(f->store), "%s/data/blobs", f->dir);
    struct mr_error err;
    if (mr_blob_open_fs(f->store, &f->b, &err) != 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mr_blob_close(f->b);
    remove_tree(f->dir, 0);
    free(f);
    return 0;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int tmp_files(const struct fixture *f)
{
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%s/tmp", f->store);
    return count_files(tmp);
}

static void fill(char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)(seed >> 16);
    }
}

/* ---- cases ---- */

static void put_map_roundtrip(void **state)
{
    struct fixture *f = *state;
    char key[MR_BLOB_KEY_LEN + 1];
    struct mr_error err = {0};
    assert_int_equal(mr_blob_put(f->b, "abc", 3, key, &err), 0);
    /* The key is the SHA-256 of the bytes. */
    assert_string_equal(key, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
    char path[256];
    snprintf(path, sizeof(path), "%s/ba/%s", f->store, key);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3);

    struct mr_blob_map m;
    assert_int_equal(mr_blob_map(f->b, key, &m, &err), 0);
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.p, "abc", 3);
    mr_blob_unmap(&m);
    assert_null(m.p);

    uint64_t size = 0;
    assert_int_equal(mr_blob_stat(f->b, key, &size, &err), 0);
    assert_int_equal(size, 3);
    assert_int_equal(mr_blob_stat(f->b, key, NULL, &err), 0);

    /* An empty blob maps to {NULL, 0}. */
    assert_int_equal(mr_blob_put(f->b, "", 0, key, &err), 0);
    assert_string_equal(key, "e3b0c44298fc1c149afbf4c8996fb924"
                             "27ae41e4649b934ca495991b7852b855");
    assert_int_equal(mr_blob_map(f->b, key, &m, &err), 0);
    assert_null(m.p);
    assert_int_equal(m.len, 0);
    mr_blob_unmap(&m);
    assert_int_equal(tmp_files(f), 0);
}

static void streaming_equals_one_shot(void **state)
{
    struct fixture *f = *state;
    /* Larger than the writer's internal buffer, to cross it many ways. */
    size_t n = 300000;
    char *data = malloc(n);
    fill(data, n, 7);
    char want[MR_BLOB_KEY_LEN + 1], got[MR_BLOB_KEY_LEN + 1];
    mr_sha256_hex(data, n, want);
    static const size_t chunks[] = {1, 7, 4096, 65535, 65536, 65537, 200000};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct mr_blob_writer *w;
        struct mr_error err = {0};
        assert_int_equal(mr_blob_writer_begin(f->b, 0, &w, &err), 0);
        /* Odd chunk sizes, and an empty write now and then. */
        for (size_t off = 0, i = 0; off < n; i++) {
            size_t k = chunks[c] + (i % 3);
            if (k > n - off)
                k = n - off;
            assert_int_equal(mr_blob_writer_write(w, data + off, k, &err), 0);
            assert_int_equal(mr_blob_writer_write(w, data, 0, &err), 0);
            off += k;
        }
        assert_int_equal(mr_blob_writer_commit(w, got, &err), 0);
        assert_string_equal(got, want);
    }
    struct mr_blob_map m;
    struct mr_error err;
    assert_int_equal(mr_blob_map(f->b, want, &m, &err), 0);
    assert_int_equal(m.len, n);
    assert_memory_equal(m.p, data, n);
    mr_blob_unmap(&m);
    assert_int_equal(tmp_files(f), 0);
    free(data);
}

static void same_content_stored_once(void **state)
{
    struct fixture *f = *state;
    char k1[MR_BLOB_KEY_LEN + 1], k2[MR_BLOB_KEY_LEN + 1];
    struct mr_error err;
    assert_int_equal(mr_blob_put(f->b, "hello", 5, k1, &err), 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/%.2s/%s", f->store, k1, k1);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(mr_blob_put(f->b, "hello", 5, k2, &err), 0);
    assert_string_equal(k1, k2);
    assert_int_equal(stat(path, &after), 0);
    /* The first file stays: the second write only dropped its copy. */
    assert_int_equal(before.st_ino, after.st_ino);
    snprintf(path, sizeof(path), "%s/%.2s", f->store, k1);
    assert_int_equal(count_files(path), 1);
    assert_int_equal(tmp_files(f), 0);
    assert_int_equal(mr_blob_put(f->b, "hellp", 5, k2, &err), 0);
    assert_string_not_equal(k1, k2);
}

static void size_cap(void **state)
{
    struct fixture *f = *state;
    struct mr_blob_writer *w;
    struct mr_error err = {0};
    char key[MR_BLOB_KEY_LEN + 1];
    /* Exactly at the cap is fine. */
    assert_int_equal(mr_blob_writer_begin(f->b, 10, &w, &err), 0);
    assert_int_equal(mr_blob_writer_write(w, "12345", 5, &err), 0);
    assert_int_equal(mr_blob_writer_write(w, "67890", 5, &err), 0);
    assert_int_equal(mr_blob_writer_commit(w, key, &err), 0);
    /* One byte past it is MR_ELIMIT, sticky, and commit refuses. */
    assert_int_equal(mr_blob_writer_begin(f->b, 10, &w, &err), 0);
    assert_int_equal(mr_blob_writer_write(w, "12345", 5, &err), 0);
    assert_int_equal(mr_blob_writer_write(w, "678901", 6, &err), MR_ELIMIT);
    assert_non_null(strstr(err.msg, "10 bytes"));
    assert_int_equal(mr_blob_writer_write(w, "1", 1, &err), MR_ELIMIT);
    assert_int_equal(mr_blob_writer_commit(w, key, &err), MR_ELIMIT);
    assert_string_equal(key, "");
    assert_int_equal(tmp_files(f), 0);
    /* A huge single write does not overflow the check. */
    assert_int_equal(mr_blob_writer_begin(f->b, 10, &w, &err), 0);
    assert_int_equal(mr_blob_writer_write(w, "x", 1, &err), 0);
    assert_int_equal(mr_blob_writer_write(w, "x", SIZE_MAX, &err), MR_ELIMIT);
    mr_blob_writer_abort(w);
    /* Abort drops the file; NULL is fine. */
    assert_int_equal(mr_blob_writer_begin(f->b, 0, &w, &err), 0);
    assert_int_equal(mr_blob_writer_write(w, "gone", 4, &err), 0);
    assert_int_equal(tmp_files(f), 1);
    mr_blob_writer_abort(w);
    mr_blob_writer_abort(NULL);
    assert_int_equal(tmp_files(f), 0);
}

static void missing_and_bad_keys(void **state)
{
    struct fixture *f = *state;
    struct mr_error err = {0};
    struct mr_blob_map m;
    const char *absent = "0000000000000000000000000000000000000000000000000000"
                         "000000000000";
    assert_int_equal(mr_blob_map(f->b, absent, &m, &err), MR_ENOTFOUND);
    assert_null(m.p);
    assert_int_equal(mr_blob_stat(f->b, absent, NULL, &err), MR_ENOTFOUND);
    static const char *const bad[] = {
        "",
        "abc",
        "../../../../etc/passwd",
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mr_blob_map(f->b, bad[i], &m, &err), MR_EINVAL);
        assert_int_equal(mr_blob_stat(f->b, bad[i], NULL, &err), MR_EINVAL);
    }
    assert_int_equal(mr_blob_stat(f->b, NULL, NULL, &err), MR_EINVAL);
}

static void stale_tmp_swept_at_open(void **state)
{
    struct fixture *f = *state;
    char stale[256], live[256];
    snprintf(stale, sizeof(stale), "%s/tmp/w-0123456789abcdef", f->store);
    snprintf(live, sizeof(live), "%s/tmp/w-fedcba9876543210", f->store);
    int fd = open(stale, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "half a mess", 11), 11);
    close(fd);
    /* A file someone holds locked is a live writer of another process. */
    int lfd = open(live, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(lfd >= 0);
    assert_int_equal(flock(lfd, LOCK_EX), 0);
    /* And a writer of this store, in flight across the reopen. */
    struct mr_blob_writer *w;
    struct mr_error err = {0};
    assert_int_equal(mr_blob_writer_begin(f->b, 0, &w, &err), 0);
    assert_int_equal(mr_blob_writer_write(w, "in flight", 9, &err), 0);
    assert_int_equal(tmp_files(f), 3);

    struct mr_blob *b2;
    assert_int_equal(mr_blob_open_fs(f->store, &b2, &err), 0);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    assert_int_equal(tmp_files(f), 2);
    char key[MR_BLOB_KEY_LEN + 1];
    assert_int_equal(mr_blob_writer_commit(w, key, &err), 0);
    struct mr_blob_map m;
    assert_int_equal(mr_blob_map(b2, key, &m, &err), 0);
    assert_memory_equal(m.p, "in flight", 9);
    mr_blob_unmap(&m);
    mr_blob_close(b2);
    close(lfd);
    unlink(live);
}

static void check_writable(void **state)
{
    struct fixture *f = *state;
    struct mr_error err = {0};
    assert_int_equal(mr_blob_check_writable(f->b, &err), 0);
    assert_int_equal(tmp_files(f), 0);
}

static void io_errors(void **state)
{
    struct fixture *f = *state;
    struct mr_error err = {0};
    struct mr_blob *b;
    /* A folder whose parent is a regular file cannot be made, root or not. */
    char path[256];
    snprintf(path, sizeof(path), "%s/file", f->dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/file/blobs", f->dir);
    assert_int_equal(mr_blob_open_fs(path, &b, &err), MR_EIO);
    assert_null(b);
    assert_non_null(strstr(err.msg, strerror(ENOTDIR)));

    /* The fan-out folder of a blob is taken by a regular file: commit
     * fails with MR_EIO, and nothing is left in tmp. */
    char key[MR_BLOB_KEY_LEN + 1];
    const char *data = "blocked";
    mr_sha256_hex(data, 7, key);
    snprintf(path, sizeof(path), "%s/%.2s", f->store, key);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mr_blob_put(f->b, data, 7, key, &err), MR_EIO);
    assert_string_equal(key, "");
    assert_non_null(strstr(err.msg, strerror(ENOTDIR)));
    assert_int_equal(tmp_files(f), 0);

    /* A write that the file system refuses (here: a file size limit, which
     * binds root too) is MR_EIO with the reason; the writer is then dead. */
    struct rlimit old, small = {.rlim_cur = 100000, .rlim_max = 0};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    struct mr_blob_writer *w;
    assert_int_equal(mr_blob_writer_begin(f->b, 0, &w, &err), 0);
    char *big = calloc(1, 300000);
    int rc = mr_blob_writer_write(w, big, 300000, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, MR_EIO);
    assert_non_null(strstr(err.msg, strerror(EFBIG)));
    assert_int_equal(mr_blob_writer_write(w, "x", 1, &err), MR_EIO);
    assert_int_equal(mr_blob_writer_commit(w, key, &err), MR_EIO);
    assert_int_equal(tmp_files(f), 0);
    free(big);

    /* Permission bits stop everybody but root. */
    if (geteuid() == 0) {
        print_message("io_errors: running as root, skipping the read-only "
                      "folder case (chmod does not stop root)\n");
        return;
    }
    snprintf(path, sizeof(path), "%s/tmp", f->store);
    assert_int_equal(chmod(path, 0500), 0);
    assert_int_equal(mr_blob_writer_begin(f->b, 0, &w, &err), MR_EIO);
    assert_non_null(strstr(err.msg, strerror(EACCES)));
    assert_int_equal(mr_blob_check_writable(f->b, &err), MR_EIO);
    assert_int_equal(mr_blob_put(f->b, "x", 1, key, &err), MR_EIO);
    chmod(path, 0700);
}

/* ---- four threads at once ---- */

#define THREADS 4
#define PER_THREAD 200

struct worker {
    struct mr_blob *b;
    int id;
    int failures;
    char keys[PER_THREAD][MR_BLOB_KEY_LEN + 1];
};

static void content(int thread, int i, char *buf, size_t *n)
{
    /* Every other blob is shared by all threads (a dedupe race); the rest
     * are the thread's own. */
    int owner = i % 2 == 0 ? -1 : thread;
    *n = (size_t)snprintf(buf, 128, "blob %d of %d ", i, owner);
    size_t extra = (size_t)(i * 37 % 5000);
    memset(buf + *n, 'a' + i % 26, extra);
    *n += extra;
}

static void *write_many(void *arg)
{
    struct worker *wk = arg;
    char *buf = malloc(8192);
    for (int i = 0; i < PER_THREAD; i++) {
        size_t n;
        content(wk->id, i, buf, &n);
        struct mr_blob_writer *w;
        struct mr_error err;
        if (mr_blob_writer_begin(wk->b, 0, &w, &err) != 0) {
            wk->failures++;
            continue;
        }
        /* Two pieces, so the writers interleave. */
        if (mr_blob_writer_write(w, buf, n / 2, &err) != 0 ||
            mr_blob_writer_write(w, buf + n / 2, n - n / 2, &err) != 0 ||
            mr_blob_writer_commit(w, wk->keys[i], &err) != 0)
            wk->failures++;
    }
    free(buf);
    return NULL;
}

static void concurrent_writers(void **state)
{
    struct fixture *f = *state;
    pthread_t t[THREADS];
    struct worker *wk = calloc(THREADS, sizeof(*wk));
    for (int i = 0; i < THREADS; i++) {
        wk[i].b = f->b;
        wk[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, write_many, &wk[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *buf = malloc(8192);
    for (int th = 0; th < THREADS; th++) {
        assert_int_equal(wk[th].failures, 0);
        for (int i = 0; i < PER_THREAD; i++) {
            size_t n;
            content(th, i, buf, &n);
            char want[MR_BLOB_KEY_LEN + 1];
            mr_sha256_hex(buf, n, want);
            assert_string_equal(wk[th].keys[i], want);
            struct mr_blob_map m;
            struct mr_error err;
            assert_int_equal(mr_blob_map(f->b, want, &m, &err), 0);
            assert_int_equal(m.len, n);
            assert_memory_equal(m.p, buf, n);
            mr_blob_unmap(&m);
        }
    }
    assert_int_equal(tmp_files(f), 0);
    free(buf);
    free(wk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(put_map_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(streaming_equals_one_shot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(same_content_stored_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_and_bad_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_tmp_swept_at_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(check_writable, setup, teardown),
        cmocka_unit_test_setup_teardown(io_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
