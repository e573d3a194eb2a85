/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp_client.h - sending one message to a relay (RFC 5321): EHLO (HELO
 * when the relay refuses it), STARTTLS (RFC 3207) or TLS from the
 * connect, AUTH PLAIN or LOGIN (RFC 4954), MAIL FROM, RCPT TO, DATA with
 * dot-stuffing, QUIT.
 *
 * The relay is the operator's (outbound.smtp in the configuration), so
 * there is no MX lookup: the relay does that. Every connect, read, write
 * and TLS handshake has a deadline, and the whole transaction one too,
 * so a relay that stalls costs at most that long. Replies are read whole
 * (multiline "250-" continuations, at most MR_SMTP_CLIENT_MAX_LINES lines
 * of at most MR_SMTP_CLIENT_MAX_LINE bytes each), so a relay that talks
 * without end is refused, not followed.
 *
 * TLS: after STARTTLS every byte the relay sent before the handshake is
 * refused (RFC 3207 5's injection), EHLO is said again and only the new
 * capabilities count. Credentials go only over TLS unless
 * allow_plain_auth; PLAIN is preferred to LOGIN. The password is in no
 * error text and no reply kept.
 *
 * The verdict follows the relay's reply class: 2xx after the message is
 * MR_OK; 4xx, a connection that fails or breaks, a timeout, a reply that
 * does not parse, a TLS handshake that fails, and a relay that lacks what
 * the options require (STARTTLS, AUTH, a mechanism we speak) is MR_EAGAIN
 * (try again later); 5xx, 535 for bad credentials included, is MR_EINVAL
 * (permanent: the reply says why). The last reply is kept for the record.
 * Thread-safe: no state outside the call; SIGPIPE is blocked in the
 * calling thread while TLS is up (OpenSSL writes with write(2)) and a
 * SIGPIPE it raised is swallowed before the old mask returns.
 */
#ifndef MR_SMTP_CLIENT_H
#define MR_SMTP_CLIENT_H

#include <openssl/types.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

#define MR_SMTP_CLIENT_MAX_LINE 2048
#define MR_SMTP_CLIENT_MAX_LINES 100

/* The longest username and password AUTH sends. */
#define MR_SMTP_CLIENT_CRED_MAX 256

enum mr_smtp_tls {
    MR_SMTP_TLS_NONE,     /* plain SMTP */
    MR_SMTP_TLS_STARTTLS, /* STARTTLS when the relay offers it */
    MR_SMTP_TLS_REQUIRED, /* STARTTLS or MR_EAGAIN */
    MR_SMTP_TLS_IMPLICIT, /* TLS from the connect (port 465, RFC 8314) */
};

struct mr_smtp_client_opts {
    const char *relay;   /* "host:port", "[v6]:port" */
    const char *helo;    /* our name in EHLO; NULL: "localhost" */
    int timeout_ms;      /* each step; 0: 30 s */
    int total_ms;        /* the whole transaction; 0: 5 x timeout */
    /* When not NULL and set (by another thread), the transaction ends
     * within about 100 ms with MR_EAGAIN ("stopped"): a shutdown does
     * not wait for a silent relay. */
    const atomic_bool *stop;
    enum mr_smtp_tls tls;
    /* Borrowed; required unless tls is NONE: mr_tls_client_ctx
     * (smtp/tls.h) says what is trusted. The relay's host is the name
     * its certificate must carry. */
    SSL_CTX *tls_ctx;
    /* Both or neither; at most MR_SMTP_CLIENT_CRED_MAX bytes each. */
    const char *username;
    const char *password;
    bool allow_plain_auth; /* AUTH without TLS (tests, a local relay) */
};

/* The last reply the relay gave (code 0: none, e.g. no connection). */
struct mr_smtp_reply {
    int code;
    char text[512]; /* its lines joined by " / ", cut to fit */
};

/* Sends msg (len bytes, LF or CRLF lines) from mail_from ("" for the
 * null sender <>) to rcpt. err names the step that failed. */
int mr_smtp_client_send(const struct mr_smtp_client_opts *o,
                        const char *mail_from, const char *rcpt,
                        const char *msg, size_t len,
                        struct mr_smtp_reply *reply, struct mr_error *err);

#endif
