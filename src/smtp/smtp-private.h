/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp-private.h - the SMTP/LMTP protocol engine, shared by server.c and
 * the unit tests, not by other modules.
 *
 * The engine knows no sockets: the connection feeds it whatever bytes it
 * read and writes out whatever replies the engine appended to `out`. That
 * keeps PIPELINING natural (a batch of commands in one read gets its
 * replies in order in one write) and lets the tests drive every dialogue,
 * split at every byte, without a network.
 *
 * The engine tells the connection what to do next through the action the
 * feed returns: go on reading, start TLS (the reply 220 is already in
 * `out` and every byte after the STARTTLS line has been thrown away), or
 * close (after QUIT, too many errors, or a shutdown).
 *
 * Ownership: the session copies the handler struct and the remote address;
 * params->hostname and params->stopping are borrowed and must outlive it.
 * One session belongs to one thread.
 */
#ifndef MR_SMTP_PRIVATE_H
#define MR_SMTP_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp.h"
#include "util/buf.h"

/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with the CRLF;
 * command lines get that bound too (4.5.3.1.4's 512 is too tight once
 * SMTPUTF8 and SIZE parameters are on the line). */
#define MR_SMTP_LINE_MAX 1000
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets. */
#define MR_SMTP_PATH_MAX 254
/* RFC 1035: a domain name (the EHLO argument) is at most 255 octets. */
#define MR_SMTP_HELO_MAX 255
/* Bad commands (any 5xx reply to a command) before 421 and close, as
 * Postfix's smtpd_hard_error_limit: it also stops address harvesting. */
#define MR_SMTP_MAX_ERRORS 20
/* Bytes the connection reads at once. Replies to one read are bounded:
 * the shortest command (a bare LF) earns at most ~20 reply bytes per input
 * byte, so MR_SMTP_OUT_MAX is never reached by a client that follows the
 * error limit. */
#define MR_SMTP_READ_CHUNK 65536
#define MR_SMTP_OUT_MAX (4u << 20)

enum mr__smtp_action {
    MR__SMTP_CONTINUE = 0,
    MR__SMTP_STARTTLS, /* do the TLS handshake, then session_tls_started */
    MR__SMTP_CLOSE,    /* flush out, then close the connection */
};

struct mr__smtp_params {
    const char *hostname; /* greeting and Received:; borrowed */
    bool lmtp;
    bool tls_offered;          /* a certificate is loaded: offer STARTTLS */
    uint64_t max_message_size; /* bytes of unstuffed DATA, > 0 */
    int max_recipients;        /* > 0 */
    int max_errors;            /* > 0 */
    /* Set once the server shuts down: the next command gets 421 4.3.2.
     * May be NULL (never stopping). Borrowed. */
    const atomic_bool *stopping;
};

struct mr__smtp_session;

/* remote_ip is copied ("127.0.0.1", "::1"). Never NULL. */
struct mr__smtp_session *
mr__smtp_session_new(const struct mr__smtp_params *params,
                     const struct mr_smtp_handler *handler,
                     const char *remote_ip);
void mr__smtp_session_free(struct mr__smtp_session **s);

/* Appends the 220 greeting. */
void mr__smtp_session_greet(struct mr__smtp_session *s, struct mr_buf *out);

/* Processes n bytes from the client, appending replies to out, calling
 * handler->rcpt and handler->deliver as the dialogue requires. Partial
 * lines are kept for the next call. Once the action is not CONTINUE the
 * rest of the input is discarded (that is the STARTTLS injection defence)
 * and later feeds do nothing until session_tls_started. */
enum mr__smtp_action mr__smtp_session_feed(struct mr__smtp_session *s,
                                           const char *p, size_t n,
                                           struct mr_buf *out);

/* The TLS handshake succeeded: forget everything the client said in
 * plaintext (RFC 3207 4.2), a new EHLO is required. */
void mr__smtp_session_tls_started(struct mr__smtp_session *s);

/* Inside DATA: a shutdown waits for the end of the message. */
bool mr__smtp_session_in_data(const struct mr__smtp_session *s);

/* Appends the 421 for a connection the server closes on its own: an idle
 * or total timeout (timeout true, 4.4.2) or a shutdown (4.3.2). */
void mr__smtp_session_close_reply(struct mr__smtp_session *s, bool timeout,
                                  const char *why, struct mr_buf *out);

#endif
