/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash.h - SHA-256 over OpenSSL, incremental, for attachment digests and
 * content-derived keys. The state lives in the caller's struct (no
 * allocation); mr_sha256_final_hex ends it.
 */
#ifndef MR_HASH_H
#define MR_HASH_H

#include <stdalign.h>
#include <stddef.h>

#define MR_SHA256_HEX_LEN 64

struct mr_sha256 {
    /* OpenSSL's SHA256_CTX, opaque here so that no caller includes
     * OpenSSL; hash.c checks that it fits. */
    alignas(8) unsigned char state[128];
};

void mr_sha256_init(struct mr_sha256 *h);
void mr_sha256_update(struct mr_sha256 *h, const void *p, size_t n);
/* Writes 64 lower-case hex digits and a NUL into hex. */
void mr_sha256_final_hex(struct mr_sha256 *h, char hex[MR_SHA256_HEX_LEN + 1]);
/* One-shot convenience. */
void mr_sha256_hex(const void *p, size_t n, char hex[MR_SHA256_HEX_LEN + 1]);

#endif
