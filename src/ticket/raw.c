/* SPDX-License-Identifier: Apache-2.0 */
/* raw.c - see raw.h. */
#include "ticket/raw.h"

#include <stdlib.h>
#include <string.h>

int mr_raw_open(struct mr_store *st, struct mr_blob *blob, const char *sha256,
                struct mr_raw *out, struct mr_error *err)
{
    memset(out, 0, sizeof *out);
    size_t len = 0;
    int rc = mr_store_get_raw(st, sha256, &out->copy, &len, err);
    if (rc == MR_OK) {
        out->p = out->copy;
        out->len = len;
        return MR_OK;
    }
    if (rc != MR_ENOTFOUND)
        return rc;
    rc = mr_blob_map(blob, sha256, &out->map, err);
    if (rc == MR_OK) {
        out->p = out->map.p;
        out->len = out->map.len;
    }
    return rc;
}

void mr_raw_close(struct mr_raw *r)
{
    free(r->copy);
    mr_blob_unmap(&r->map);
    memset(r, 0, sizeof *r);
}
