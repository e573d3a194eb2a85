/* SPDX-License-Identifier: Apache-2.0 */
/*
 * blob.h - content-addressed storage for raw messages and attachments.
 *
 * A blob's key is the lowercase hex SHA-256 of its bytes, so writing the
 * same bytes twice stores them once and a key always names exactly one
 * content. Backends: a local directory (default, fs.c); S3-compatible later,
 * behind the same calls.
 *
 * Durability: mr_blob_writer_commit returns 0 only once the blob is on disk
 * for good (fs: written to a temporary file in the same file system, fsync,
 * rename into place, fsync of the folder). A crash before that leaves at
 * most a temporary file, removed by the next mr_blob_open. Readers never
 * see a partial blob.
 *
 * Threads: an mr_blob is shared; every call is thread-safe. A writer is
 * used by one thread at a time.
 *
 * Errors: MR_EIO with the system's reason (ENOSPC, EROFS...) so intake can
 * answer 451 / 75; MR_ENOTFOUND for a missing key; MR_ELIMIT when a writer
 * passes its size cap.
 */
#ifndef MR_BLOB_H
#define MR_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define MR_BLOB_KEY_LEN 64 /* hex SHA-256; buffers are MR_BLOB_KEY_LEN+1 */

struct mr_blob;
struct mr_blob_writer;

/* Opens (creating when missing) a blob folder. Removes stale temporary
 * files left by a crash. */
int mr_blob_open_fs(const char *dir, struct mr_blob **out,
                    struct mr_error *err);
void mr_blob_close(struct mr_blob *b);

/* Streaming write, for bytes that arrive in pieces (SMTP DATA, a decoded
 * attachment). max_size caps the blob (0: no cap). */
int mr_blob_writer_begin(struct mr_blob *b, uint64_t max_size,
                         struct mr_blob_writer **out, struct mr_error *err);
int mr_blob_writer_write(struct mr_blob_writer *w, const void *p, size_t n,
                         struct mr_error *err);
/* Makes the blob durable and frees the writer (also on failure). key gets
 * the hex SHA-256, NUL-terminated. */
int mr_blob_writer_commit(struct mr_blob_writer *w,
                          char key[MR_BLOB_KEY_LEN + 1],
                          struct mr_error *err);
/* Drops what was written and frees the writer. NULL is fine. */
void mr_blob_writer_abort(struct mr_blob_writer *w);

/* One call for bytes already in memory. */
int mr_blob_put(struct mr_blob *b, const void *p, size_t n,
                char key[MR_BLOB_KEY_LEN + 1], struct mr_error *err);

/* Read access to a whole blob: a read-only mapping (an empty blob is
 * {NULL, 0}). The caller releases it with mr_blob_unmap. */
struct mr_blob_map {
    const char *p;
    size_t len;
};
int mr_blob_map(struct mr_blob *b, const char *key, struct mr_blob_map *out,
                struct mr_error *err);
void mr_blob_unmap(struct mr_blob_map *m);

/* 0 when present, MR_ENOTFOUND when not; *size (may be NULL) gets its size. */
int mr_blob_stat(struct mr_blob *b, const char *key, uint64_t *size,
                 struct mr_error *err);

/* Proves the store can take a write now (creates, syncs and removes a
 * probe file): /readyz. */
int mr_blob_check_writable(struct mr_blob *b, struct mr_error *err);

#endif
