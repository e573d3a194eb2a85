/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp.h - the SMTP (RFC 5321) and LMTP (RFC 2033) listener.
 *
 * The server speaks the protocol and nothing else: what a recipient is and
 * where a message goes is asked of the handler (intake, in serve). It never
 * answers 250 to DATA before handler->deliver has returned 0, so the
 * handler's durability is the server's promise.
 *
 * Extensions: PIPELINING, 8BITMIME, SMTPUTF8, SIZE, ENHANCEDSTATUSCODES,
 * STARTTLS (when a certificate is configured), plus RSET, NOOP, QUIT, HELP,
 * VRFY (252). Limits: message size (552), recipients per message (452),
 * connections in all and per client address (421), idle and total time per
 * connection (421), line length (500). DATA is dot-unstuffed; a Received:
 * header is prepended before the handler sees the message.
 *
 * Threads: one thread per connection, capped by max_connections; handler
 * callbacks are called from those threads concurrently.
 *
 * Ownership: the server copies what it needs from the options; the handler
 * context stays the caller's and must outlive mr_smtp_stop.
 */
#ifndef MR_SMTP_H
#define MR_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct mr_smtp_server;

/* What the client said about one message. Strings are NUL-terminated and
 * live until the callback returns. */
struct mr_smtp_envelope {
    const char *helo;          /* EHLO/HELO/LHLO argument */
    const char *mail_from;     /* reverse path without <>, "" for null */
    const char *const *rcpt;   /* forward paths without <> */
    size_t nrcpt;
    const char *remote_ip;     /* "127.0.0.1", "::1" */
    bool tls;                  /* the session is under STARTTLS */
    bool lmtp;
    bool smtputf8;             /* MAIL FROM had SMTPUTF8 */
    bool body_8bit;            /* BODY=8BITMIME */
};

struct mr_smtp_handler {
    void *ctx;
    /* Is addr (no angle brackets) a recipient we take? 0 yes;
     * MR_ENOTFOUND -> 550 5.1.1; MR_EINVAL -> 501 5.1.3; MR_EAGAIN/MR_EIO ->
     * 451 4.3.0. err->msg may be shown to the client. */
    int (*rcpt)(void *ctx, const char *addr, struct mr_error *err);
    /* The whole message (with the Received: header prepended), to be made
     * durable. Return 0 only once it is. status has env->nrcpt slots all
     * preset to 0: for LMTP the handler may set a per-recipient result
     * (0 ok, or an MR_E* code); SMTP uses the return value alone. Returns
     * MR_EAGAIN/MR_EIO -> 451 4.3.0, MR_ELIMIT -> 552, MR_EINVAL -> 554. */
    int (*deliver)(void *ctx, const struct mr_smtp_envelope *env,
                   const char *msg, size_t len, int *status,
                   struct mr_error *err);
    /* Optional: an event for metrics/logs ("connect", "reject", ...) */
    void (*note)(void *ctx, const char *what, const char *detail);
};

struct mr_smtp_options {
    const char *listen;        /* "127.0.0.1:2525", "[::1]:24" */
    bool lmtp;
    const char *hostname;      /* greeting and Received: */
    const char *tls_cert;      /* PEM; STARTTLS off when NULL */
    const char *tls_key;
    uint64_t max_message_size; /* SIZE; 0 means 50 MiB */
    int max_recipients;        /* 0 means 100 */
    int max_connections;       /* 0 means 100 */
    int max_connections_per_ip;/* 0 means 20 */
    int idle_timeout_s;        /* 0 means 300 */
    int total_timeout_s;       /* 0 means 1800 */
};

/* Binds and starts accepting in a background thread. The bound port is
 * readable with mr_smtp_port (listen ":0" picks a free one, for tests). */
int mr_smtp_start(const struct mr_smtp_options *opt,
                  const struct mr_smtp_handler *handler,
                  struct mr_smtp_server **out, struct mr_error *err);
int mr_smtp_port(const struct mr_smtp_server *srv);
/* Stops accepting, tells open sessions 421 at their next command, waits for
 * every session thread (a DATA in progress finishes), frees. NULL is fine. */
void mr_smtp_stop(struct mr_smtp_server *srv);

#endif
