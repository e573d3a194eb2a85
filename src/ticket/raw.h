/* SPDX-License-Identifier: Apache-2.0 */
/*
 * raw.h - reading a raw message back, wherever intake put it.
 *
 * Intake keeps a message up to storage.inline_max bytes in the database,
 * in the transaction that queues its jobs (one durable write), and a
 * larger one in the blob folder; both under the SHA-256 of its bytes.
 * Readers (the worker, GET /api/v1/messages/{id}/raw) go through here, so
 * none of them knows the rule, and a setting changed between intake and
 * reading does not matter: the database is asked first, then the blobs.
 */
#ifndef MR_RAW_H
#define MR_RAW_H

#include <stddef.h>

#include "blob/blob.h"
#include "store/store.h"
#include "util/error.h"

struct mr_raw {
    const char *p; /* the bytes, len of them; NULL when empty */
    size_t len;
    char *copy;              /* from the database (owned) */
    struct mr_blob_map map;  /* or a blob's mapping */
};

/* Opens the raw message named by sha256. MR_ENOTFOUND when neither the
 * database nor the blob folder has it; other errors as the store's and the
 * blob store's. *out is released with mr_raw_close (also after a
 * failure). */
int mr_raw_open(struct mr_store *st, struct mr_blob *blob, const char *sha256,
                struct mr_raw *out, struct mr_error *err);
void mr_raw_close(struct mr_raw *r);

#endif
