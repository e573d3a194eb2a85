/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash.c - SHA-256 through OpenSSL's SHA256_* functions rather than EVP.
 *
 * Both run the same assembly (SHA-NI where the CPU has it), but the first
 * EVP digest initialises OpenSSL's provider machinery and reads its
 * configuration: measured in a test program, 2.2 MB of RSS against 0.4 MB
 * for SHA256_Init, which the peak RSS target of the parse benchmark (twice
 * the largest message) could not afford; and EVP allocates and fetches
 * per digest. The SHA256_* functions are marked
 * deprecated in OpenSSL 3 but are supported through 3.x; should a later
 * major version drop them, this file is the one to change back to EVP.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "hash.h"

#include <assert.h>
#include <openssl/sha.h>
#include <stdalign.h>

static_assert(sizeof(SHA256_CTX) <= sizeof(((struct mr_sha256 *)0)->state),
              "struct mr_sha256 too small for SHA256_CTX");
static_assert(alignof(SHA256_CTX) <= 8, "SHA256_CTX alignment");

static SHA256_CTX *ctx(struct mr_sha256 *h)
{
    return (SHA256_CTX *)(void *)h->state;
}

void mr_sha256_init(struct mr_sha256 *h)
{
    SHA256_Init(ctx(h));
}

void mr_sha256_update(struct mr_sha256 *h, const void *p, size_t n)
{
    if (n)
        SHA256_Update(ctx(h), p, n);
}

void mr_sha256_final_hex(struct mr_sha256 *h, char hex[MR_SHA256_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_Final(md, ctx(h));
    for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

void mr_sha256_hex(const void *p, size_t n, char hex[MR_SHA256_HEX_LEN + 1])
{
    struct mr_sha256 h;
    mr_sha256_init(&h);
    mr_sha256_update(&h, p, n);
    mr_sha256_final_hex(&h, hex);
}
