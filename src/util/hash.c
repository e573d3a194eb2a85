/* SPDX-License-Identifier: Apache-2.0 */
#include "hash.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

void mr_sha256_init(struct mr_sha256 *h)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        fputs("mailroom: cannot initialise SHA-256\n", stderr);
        abort();
    }
    h->ctx = c;
}

void mr_sha256_update(struct mr_sha256 *h, const void *p, size_t n)
{
    if (n)
        EVP_DigestUpdate((EVP_MD_CTX *)h->ctx, p, n);
}

void mr_sha256_final_hex(struct mr_sha256 *h, char hex[MR_SHA256_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex((EVP_MD_CTX *)h->ctx, md, &len);
    EVP_MD_CTX_free((EVP_MD_CTX *)h->ctx);
    h->ctx = NULL;
    for (unsigned i = 0; i < 32; i++) {
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
