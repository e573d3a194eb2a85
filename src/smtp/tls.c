/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls.c - OpenSSL context setup shared by the SMTP server and the relay
 * client (tls.h).
 */
#include "smtp/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

void mr_tls_error_text(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, size, "unknown");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
}

static SSL_CTX *ctx_new(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

int mr_tls_server_ctx(const char *cert, const char *key, SSL_CTX **out,
                      struct mr_error *err)
{
    *out = NULL;
    if (key == NULL)
        key = cert;
    SSL_CTX *ctx = ctx_new(TLS_server_method());
    if (ctx == NULL)
        return mr_error_set(err, MR_EIO, "TLS: cannot create a context");
    const char *what = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        what = cert;
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        what = key;
    else if (SSL_CTX_check_private_key(ctx) != 1)
        what = "key does not match the certificate";
    if (what != NULL) {
        char detail[160];
        mr_tls_error_text(detail, sizeof detail);
        SSL_CTX_free(ctx);
        return mr_error_set(err, MR_EINVAL, "TLS: %s: %s", what, detail);
    }
    *out = ctx;
    return 0;
}

int mr_tls_client_ctx(const char *ca_file, bool verify, SSL_CTX **out,
                      struct mr_error *err)
{
    *out = NULL;
    SSL_CTX *ctx = ctx_new(TLS_client_method());
    if (ctx == NULL)
        return mr_error_set(err, MR_EIO, "TLS: cannot create a context");
    /* SMTP frames its own replies, so a peer that closes without
     * close_notify truncates nothing we would take as complete; treat it
     * as the plain end of the stream it is. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = ca_file != NULL
                     ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            char detail[160];
            mr_tls_error_text(detail, sizeof detail);
            SSL_CTX_free(ctx);
            return mr_error_set(err, MR_EINVAL, "TLS: %s: %s",
                                ca_file ? ca_file : "the system trust store",
                                detail);
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    *out = ctx;
    return 0;
}

int mr_tls_client_expect(SSL *ssl, const char *host, struct mr_error *err)
{
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 ||
                 inet_pton(AF_INET6, host, addr) == 1;
    X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
    int ok;
    if (is_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(p, host);
    } else {
        X509_VERIFY_PARAM_set_hostflags(p,
                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        /* RFC 6066 3: SNI carries host names only, never an address. */
        ok = SSL_set1_host(ssl, host) == 1 &&
             SSL_set_tlsext_host_name(ssl, host) == 1;
    }
    if (ok != 1) {
        char detail[160];
        mr_tls_error_text(detail, sizeof detail);
        return mr_error_set(err, MR_EINVAL, "TLS: cannot expect '%s': %s", host,
                            detail);
    }
    return 0;
}
