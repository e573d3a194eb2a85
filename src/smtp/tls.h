/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls.h - the OpenSSL contexts of both SMTP sides: the listener's STARTTLS
 * (smtp/server.c) and the relay client (outbound/smtp_client.c).
 *
 * One place sets what both sides must agree on: TLS 1.2 at least, no
 * renegotiation (a peer cannot restart the handshake mid-session), and
 * how OpenSSL's thread-local error queue becomes an mr_error text (read
 * once, then cleared, so a stale error never explains a later failure).
 *
 * A context is created once, used by any number of threads (SSL_new is
 * thread-safe on a shared SSL_CTX) and freed with SSL_CTX_free by its
 * owner, the caller of the _ctx function.
 */
#ifndef MR_TLS_H
#define MR_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

/* A server context with the PEM certificate chain in cert and its key in
 * key (NULL: the key is in cert). MR_EINVAL names the file that failed. */
int mr_tls_server_ctx(const char *cert, const char *key, SSL_CTX **out,
                      struct mr_error *err);

/* A client context. verify: the peer's chain must lead to a trusted root
 * (ca_file, a PEM bundle, when set: it replaces the system store; NULL:
 * the system store) and its name must match (mr_tls_client_expect). Not
 * verify: any certificate is taken, the channel is still encrypted.
 * MR_EINVAL when ca_file cannot be read. */
int mr_tls_client_ctx(const char *ca_file, bool verify, SSL_CTX **out,
                      struct mr_error *err);

/* Before the handshake: the name the peer's certificate must carry (an
 * IP literal is matched against its IP addresses, anything else against
 * its DNS names, no partial wildcards) and, for a name, SNI. */
int mr_tls_client_expect(SSL *ssl, const char *host, struct mr_error *err);

/* The first error on OpenSSL's queue as text into buf ("unknown" when
 * empty); the queue is cleared. */
void mr_tls_error_text(char *buf, size_t size);

#endif
