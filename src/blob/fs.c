/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs.c - the blob store in a local directory.
 *
 *   DIR/tmp/w-<random>     a streamed blob being written
 *   DIR/ab/abcd...         a finished blob, named by its SHA-256
 *
 * A write goes to a temporary file in DIR/tmp (same file system, so the
 * final rename is atomic), is fsync'ed, renamed into place and the folder
 * that gained the entry is fsync'ed: only then does commit return, and
 * only then may intake acknowledge (the Postfix queue discipline). When the
 * name exists already the content is the same, so the temporary file is
 * dropped instead.
 *
 * A blob given whole (mr_blob_put: a raw message at intake) is hashed
 * first, so its name is known before a byte is written: it is written to
 * an anonymous O_TMPFILE in its final folder and linked in under its name.
 * That skips the shared DIR/tmp folder, whose lock every intake thread
 * would otherwise contend for (measured: 10% of a loaded server's time in
 * rwsem spinning), leaves nothing behind after a crash, and costs nothing
 * at all when the same bytes are stored already.
 *
 * One level of 256 fan-out folders (git's layout): a second level made
 * nearly every early write pay a mkdir and a parent fsync, for folders
 * that stay small anyway (a million blobs is 4,000 per folder, which
 * ext4's hashed directories handle without effort).
 *
 * The fan-out folders are made on first use. A folder entry
 * is durable only once its parent is fsync'ed; another thread or process
 * may have made the folder and not synced its parent yet, so each process
 * syncs a folder's parent once the first time it relies on the folder,
 * created or found, and remembers that in a bitmap.
 *
 * Temporary files are flock'ed by their writer for their whole life, so the
 * stale-file sweep at open (which removes what a crash left) can tell them
 * from the live ones of another process sharing DIR (serve and ingest): it
 * removes only files it can lock. A writer checks, once it holds its lock,
 * that its name still points at its file, so the sweep cannot take a file
 * between its creation and its lock.
 *
 * Every call works relative to one directory descriptor held open, so the
 * store is immune to the working directory and safe to share between
 * threads; the bitmap has its own mutex.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "util/buf.h"
#include "util/hash.h"

#define WBUF_SIZE (64 * 1024) /* SMTP hands over lines; write in chunks */
#define DIR_MODE 0750
#define FILE_MODE 0640
#define NAME_TRIES 8

struct mr_blob {
    char *dir; /* as given, for messages */
    int dirfd;
    int tmpfd;            /* DIR/tmp */
    pthread_mutex_t lock; /* guards synced */
    /* Fan-out folders whose entry this process has made durable. */
    uint64_t synced[256 / 64];
};

struct mr_blob_writer {
    struct mr_blob *b;
    int fd;
    char name[32]; /* in DIR/tmp */
    struct mr_sha256 hash;
    uint64_t size, max;
    int failed; /* sticky error code, 0 while fine */
    size_t nbuf;
    char buf[WBUF_SIZE];
};

static int sys_error(struct mr_error *err, int e, const char *what,
                     const struct mr_blob *b, const char *name)
{
    return mr_error_set(err, MR_EIO, "blob store %s: %s %s: %s", b->dir, what,
                        name, strerror(e));
}

static int fsync_at(int dirfd, const char *path)
{
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* mkdir -p for the store's own folder; fsyncs each parent that changed. */
static int make_path(const char *dir, struct mr_error *err)
{
    char p[4096];
    size_t n = strnlen(dir, sizeof(p));
    if (n == 0 || n >= sizeof(p))
        return mr_error_set(err, MR_EINVAL, "blob store: bad folder name");
    memcpy(p, dir, n + 1);
    /* Bounded by the path's length: one mkdir per '/'. */
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, DIR_MODE) == 0) {
            char *slash = strrchr(p, '/');
            const char *parent = slash == NULL ? "." : slash == p ? "/" : p;
            if (slash != NULL && slash != p)
                *slash = '\0';
            int rc = fsync_at(AT_FDCWD, parent);
            if (slash != NULL && slash != p)
                *slash = '/';
            if (rc != 0)
                return mr_error_set(err, MR_EIO, "blob store %s: fsync: %s",
                                    dir, strerror(errno));
        } else if (errno != EEXIST) {
            return mr_error_set(err, MR_EIO, "blob store %s: mkdir %s: %s", dir,
                                p, strerror(errno));
        }
        p[i] = saved;
    }
    return 0;
}

/* Creates DIR/tmp/<prefix><random>, locked, for writing. */
static int create_tmp(struct mr_blob *b, const char *prefix, char *name,
                      size_t size, int *fd_r, struct mr_error *err)
{
    for (int tries = 0; tries < NAME_TRIES; tries++) {
        uint64_t r;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            return mr_error_set(err, MR_EIO, "blob store: getrandom: %s",
                                strerror(errno));
        snprintf(name, size, "%s%016llx", prefix, (unsigned long long)r);
        int fd = openat(b->tmpfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                        FILE_MODE);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return sys_error(err, errno, "create", b, "tmp");
        struct stat mine, named;
        if (flock(fd, LOCK_EX) != 0) {
            int e = errno;
            close(fd);
            unlinkat(b->tmpfd, name, 0);
            return sys_error(err, e, "lock", b, name);
        }
        /* The sweep of another process may have removed the name before
         * our lock: then start over with a new one. */
        if (fstat(fd, &mine) == 0 &&
            fstatat(b->tmpfd, name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
            mine.st_ino == named.st_ino && mine.st_dev == named.st_dev) {
            *fd_r = fd;
            return 0;
        }
        close(fd);
    }
    return mr_error_set(err, MR_EIO, "blob store %s: no free temporary name",
                        b->dir);
}

/* Removes temporary files that no live writer holds (see the top). */
static void sweep_tmp(struct mr_blob *b)
{
    /* A descriptor of its own: readdir moves the directory offset. */
    int fd = openat(b->tmpfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int f = openat(b->tmpfd, e->d_name,
                       O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (f < 0)
            continue;
        struct stat st, named;
        if (flock(f, LOCK_EX | LOCK_NB) == 0 && fstat(f, &st) == 0 &&
            S_ISREG(st.st_mode) &&
            fstatat(b->tmpfd, e->d_name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
            named.st_ino == st.st_ino && named.st_dev == st.st_dev)
            unlinkat(b->tmpfd, e->d_name, 0);
        close(f);
    }
    closedir(d);
}

int mr_blob_open_fs(const char *dir, struct mr_blob **out, struct mr_error *err)
{
    *out = NULL;
    int rc = make_path(dir, err);
    if (rc < 0)
        return rc;
    struct mr_blob *b = mr_xcalloc(1, sizeof(*b));
    b->dir = mr_xstrndup(dir, strlen(dir));
    b->tmpfd = -1;
    b->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->dirfd < 0) {
        rc = mr_error_set(err, MR_EIO, "blob store %s: %s", dir,
                          strerror(errno));
        goto fail;
    }
    if (mkdirat(b->dirfd, "tmp", DIR_MODE) == 0) {
        if (fsync(b->dirfd) != 0) {
            rc = sys_error(err, errno, "fsync", b, ".");
            goto fail;
        }
    } else if (errno != EEXIST) {
        rc = sys_error(err, errno, "mkdir", b, "tmp");
        goto fail;
    }
    b->tmpfd = openat(b->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->tmpfd < 0) {
        rc = sys_error(err, errno, "open", b, "tmp");
        goto fail;
    }
    pthread_mutex_init(&b->lock, NULL);
    sweep_tmp(b);
    *out = b;
    return 0;
fail:
    if (b->dirfd >= 0)
        close(b->dirfd);
    free(b->dir);
    free(b);
    return rc;
}

void mr_blob_close(struct mr_blob *b)
{
    if (b == NULL)
        return;
    close(b->tmpfd);
    close(b->dirfd);
    pthread_mutex_destroy(&b->lock);
    free(b->dir);
    free(b);
}

static bool valid_key(const char *key)
{
    if (key == NULL)
        return false;
    for (int i = 0; i < MR_BLOB_KEY_LEN; i++) {
        char c = key[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return key[MR_BLOB_KEY_LEN] == '\0';
}

/* "ab/abcd..." for a key; path has room for 3 + 64 + 1 bytes. */
static void key_path(const char *key, char path[72])
{
    snprintf(path, 72, "%.2s/%s", key, key);
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

static bool test_bit(struct mr_blob *b, size_t bit)
{
    pthread_mutex_lock(&b->lock);
    bool on = (b->synced[bit / 64] >> (bit % 64)) & 1;
    pthread_mutex_unlock(&b->lock);
    return on;
}

static void set_bit(struct mr_blob *b, size_t bit)
{
    pthread_mutex_lock(&b->lock);
    b->synced[bit / 64] |= (uint64_t)1 << (bit % 64);
    pthread_mutex_unlock(&b->lock);
}

/* Makes sure the folder `path` exists and its entry is durable. */
static int ensure_dir(struct mr_blob *b, const char *path, const char *parent,
                      size_t bit, struct mr_error *err)
{
    if (test_bit(b, bit))
        return 0;
    if (mkdirat(b->dirfd, path, DIR_MODE) != 0 && errno != EEXIST)
        return sys_error(err, errno, "mkdir", b, path);
    if (fsync_at(b->dirfd, parent) != 0)
        return sys_error(err, errno, "fsync", b, parent);
    set_bit(b, bit);
    return 0;
}

int mr_blob_writer_begin(struct mr_blob *b, uint64_t max_size,
                         struct mr_blob_writer **out, struct mr_error *err)
{
    struct mr_blob_writer *w = mr_xmalloc(sizeof(*w));
    w->b = b;
    w->size = 0;
    w->max = max_size;
    w->failed = 0;
    w->nbuf = 0;
    int rc = create_tmp(b, "w-", w->name, sizeof(w->name), &w->fd, err);
    if (rc < 0) {
        free(w);
        *out = NULL;
        return rc;
    }
    mr_sha256_init(&w->hash);
    *out = w;
    return 0;
}

static int write_fd(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int write_all(struct mr_blob_writer *w, const char *p, size_t n,
                     struct mr_error *err)
{
    if (write_fd(w->fd, p, n) != 0)
        return sys_error(err, errno, "write", w->b, w->name);
    return 0;
}

static int flush(struct mr_blob_writer *w, struct mr_error *err)
{
    int rc = write_all(w, w->buf, w->nbuf, err);
    w->nbuf = 0;
    return rc;
}

int mr_blob_writer_write(struct mr_blob_writer *w, const void *p, size_t n,
                         struct mr_error *err)
{
    if (w->failed < 0)
        return mr_error_set(err, w->failed,
                            "blob store %s: the write failed already",
                            w->b->dir);
    if (w->max > 0 && (n > w->max || w->size > w->max - n)) {
        w->failed = MR_ELIMIT;
        return mr_error_set(err, MR_ELIMIT, "blob larger than %llu bytes",
                            (unsigned long long)w->max);
    }
    if (n == 0)
        return 0;
    mr_sha256_update(&w->hash, p, n);
    w->size += n;
    const char *s = p;
    int rc = 0;
    if (w->nbuf + n > WBUF_SIZE) {
        rc = flush(w, err);
        /* Big pieces go straight to the file, not through the buffer. */
        if (rc == 0 && n >= WBUF_SIZE) {
            rc = write_all(w, s, n, err);
            n = 0;
        }
    }
    if (rc < 0) {
        w->failed = rc;
        return rc;
    }
    memcpy(w->buf + w->nbuf, s, n);
    w->nbuf += n;
    return 0;
}

static void drop(struct mr_blob_writer *w, bool hash_open)
{
    unlinkat(w->b->tmpfd, w->name, 0);
    close(w->fd);
    if (hash_open) {
        char unused[MR_SHA256_HEX_LEN + 1];
        mr_sha256_final_hex(&w->hash, unused);
    }
    free(w);
}

void mr_blob_writer_abort(struct mr_blob_writer *w)
{
    if (w != NULL)
        drop(w, true);
}

static int place(struct mr_blob *b, int fd, const char *hex,
                 const char *tmpname, struct mr_error *err);

int mr_blob_writer_commit(struct mr_blob_writer *w,
                          char key[MR_BLOB_KEY_LEN + 1], struct mr_error *err)
{
    struct mr_blob *b = w->b;
    key[0] = '\0';
    if (w->failed < 0) {
        int code = w->failed;
        drop(w, true);
        return mr_error_set(
            err, code, "blob store %s: commit after a failed write", b->dir);
    }
    int rc = flush(w, err);
    char hex[MR_BLOB_KEY_LEN + 1];
    mr_sha256_final_hex(&w->hash, hex);
    if (rc < 0) {
        drop(w, false);
        return rc;
    }
    /* The bytes must be on disk before the name that promises them. */
    if (fsync(w->fd) != 0) {
        rc = sys_error(err, errno, "fsync", b, w->name);
        drop(w, false);
        return rc;
    }
    rc = place(b, w->fd, hex, w->name, err);
    if (rc == 1) {
        drop(w, false); /* stored already: the temporary file goes */
        memcpy(key, hex, sizeof(hex));
        return 0;
    }
    if (rc < 0 && rc != MR_EAGAIN) {
        drop(w, false);
        return rc;
    }
    /* MR_EAGAIN from place: renamed, but the folder sync failed. The name
     * may or may not survive a crash, so it is not promised; the blob
     * stays and a retry writes the same name again. */
    close(w->fd);
    free(w);
    if (rc < 0) {
        if (err)
            err->code = MR_EIO;
        return MR_EIO;
    }
    memcpy(key, hex, sizeof(hex));
    return 0;
}

/* The folder and path of key hex, the folder made durable; 1 when the
 * blob exists already, 0 when not, or an error. */
static int locate(struct mr_blob *b, const char *hex, char d1[3],
                  char path[72], struct mr_error *err)
{
    snprintf(d1, 3, "%.2s", hex);
    key_path(hex, path);
    size_t i1 = (size_t)(hexval(hex[0]) * 16 + hexval(hex[1]));
    int rc = ensure_dir(b, d1, ".", i1, err);
    if (rc < 0)
        return rc;
    struct stat st;
    if (fstatat(b->dirfd, path, &st, 0) != 0)
        return 0;
    /* The name exists, but another writer (or our own earlier attempt
     * whose folder sync failed) may not have made it durable yet: sync it
     * before anyone acknowledges on the strength of it. */
    if (fsync_at(b->dirfd, d1) != 0)
        return sys_error(err, errno, "fsync", b, d1);
    return 1;
}

/* Gives the synced file fd (a temporary named tmpname in DIR/tmp, or an
 * anonymous O_TMPFILE when tmpname is NULL) its final name and makes the
 * name durable. 1 when the blob existed already (fd is then unused), 0
 * when placed, MR_EAGAIN when placed but the folder sync failed, else an
 * error with nothing placed. */
static int place(struct mr_blob *b, int fd, const char *hex,
                 const char *tmpname, struct mr_error *err)
{
    char d1[3], path[72];
    int rc = locate(b, hex, d1, path, err);
    if (rc != 0)
        return rc; /* 1: same name, same bytes: stored already */
    if (tmpname) {
        if (renameat(b->tmpfd, tmpname, b->dirfd, path) != 0)
            return sys_error(err, errno, "rename to", b, path);
    } else {
        /* linkat through /proc: AT_EMPTY_PATH would need a capability. */
        char proc[48];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, b->dirfd, path, AT_SYMLINK_FOLLOW) != 0) {
            if (errno == EEXIST) {
                /* A concurrent writer of the same bytes won: its name must
                 * be durable before we answer for it. */
                if (fsync_at(b->dirfd, d1) != 0)
                    return sys_error(err, errno, "fsync", b, d1);
                return 1;
            }
            /* No /proc (a chroot, a sandbox): the caller goes the way of
             * named temporary files instead. */
            if (errno == ENOENT)
                return mr_error_set(err, MR_ENOTFOUND, "no /proc/self/fd");
            return sys_error(err, errno, "link", b, path);
        }
    }
    if (fsync_at(b->dirfd, d1) != 0) {
        sys_error(err, errno, "fsync", b, d1);
        return MR_EAGAIN;
    }
    return 0;
}

/* The slow path of mr_blob_put, through DIR/tmp. */
static int put_streamed(struct mr_blob *b, const void *p, size_t n,
                        char key[MR_BLOB_KEY_LEN + 1], struct mr_error *err)
{
    struct mr_blob_writer *w;
    int rc = mr_blob_writer_begin(b, 0, &w, err);
    if (rc < 0)
        return rc;
    rc = mr_blob_writer_write(w, p, n, err);
    if (rc < 0) {
        mr_blob_writer_abort(w);
        return rc;
    }
    return mr_blob_writer_commit(w, key, err);
}

int mr_blob_put(struct mr_blob *b, const void *p, size_t n,
                char key[MR_BLOB_KEY_LEN + 1], struct mr_error *err)
{
    char hex[MR_BLOB_KEY_LEN + 1], d1[3], path[72];
    key[0] = '\0';
    mr_sha256_hex(p, n, hex);
    int rc = locate(b, hex, d1, path, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        memcpy(key, hex, sizeof(hex));
        return 0;
    }
    int fd = openat(b->dirfd, d1, O_TMPFILE | O_RDWR | O_CLOEXEC, FILE_MODE);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
        return put_streamed(b, p, n, key, err); /* no O_TMPFILE here */
    if (fd < 0)
        return sys_error(err, errno, "create in", b, d1);
    /* The bytes must be on disk before the name that promises them. */
    if (write_fd(fd, p, n) != 0) {
        rc = sys_error(err, errno, "write", b, path);
    } else if (fsync(fd) != 0) {
        rc = sys_error(err, errno, "fsync", b, path);
    } else {
        rc = place(b, fd, hex, NULL, err);
        if (rc == MR_EAGAIN)
            rc = MR_EIO;
        else if (rc == 1)
            rc = 0;
    }
    close(fd);
    if (rc == MR_ENOTFOUND)
        return put_streamed(b, p, n, key, err);
    if (rc == 0)
        memcpy(key, hex, sizeof(hex));
    return rc;
}

static int open_key(struct mr_blob *b, const char *key, struct stat *st,
                    struct mr_error *err)
{
    if (!valid_key(key))
        return mr_error_set(err, MR_EINVAL, "not a blob key");
    char path[72];
    key_path(key, path);
    int fd = openat(b->dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
        return mr_error_set(err, MR_ENOTFOUND, "no blob %s", key);
    if (fd < 0)
        return sys_error(err, errno, "open", b, path);
    if (fstat(fd, st) != 0) {
        int rc = sys_error(err, errno, "stat", b, path);
        close(fd);
        return rc;
    }
    return fd;
}

int mr_blob_map(struct mr_blob *b, const char *key, struct mr_blob_map *out,
                struct mr_error *err)
{
    out->p = NULL;
    out->len = 0;
    struct stat st;
    int fd = open_key(b, key, &st, err);
    if (fd < 0)
        return fd;
    if (st.st_size == 0) {
        close(fd);
        return 0;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED)
        return sys_error(err, e, "mmap", b, key);
    out->p = m;
    out->len = (size_t)st.st_size;
    return 0;
}

void mr_blob_unmap(struct mr_blob_map *m)
{
    if (m == NULL)
        return;
    if (m->p != NULL)
        munmap((void *)m->p, m->len);
    m->p = NULL;
    m->len = 0;
}

int mr_blob_stat(struct mr_blob *b, const char *key, uint64_t *size,
                 struct mr_error *err)
{
    if (!valid_key(key))
        return mr_error_set(err, MR_EINVAL, "not a blob key");
    char path[72];
    key_path(key, path);
    struct stat st;
    if (fstatat(b->dirfd, path, &st, 0) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return mr_error_set(err, MR_ENOTFOUND, "no blob %s", key);
        return sys_error(err, errno, "stat", b, path);
    }
    if (size != NULL)
        *size = (uint64_t)st.st_size;
    return 0;
}

int mr_blob_check_writable(struct mr_blob *b, struct mr_error *err)
{
    char name[32];
    int fd;
    int rc = create_tmp(b, "probe-", name, sizeof(name), &fd, err);
    if (rc < 0)
        return rc;
    if (write(fd, "ok\n", 3) != 3)
        rc = sys_error(err, errno == 0 ? ENOSPC : errno, "write", b, name);
    else if (fsync(fd) != 0)
        rc = sys_error(err, errno, "fsync", b, name);
    if (unlinkat(b->tmpfd, name, 0) != 0 && rc == 0)
        rc = sys_error(err, errno, "unlink", b, name);
    close(fd);
    return rc;
}
