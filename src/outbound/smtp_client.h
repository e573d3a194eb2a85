/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp_client.h - sending one message to a relay over plain SMTP
 * (RFC 5321): EHLO (HELO when the relay refuses it), MAIL FROM, RCPT TO,
 * DATA with dot-stuffing, QUIT.
 *
 * The relay is the operator's (outbound.smtp in the configuration), so
 * there is no MX lookup, no TLS and no authentication: the relay on the
 * same host or network does all of that. Every connect, read and write
 * has a deadline, and the whole transaction one too, so a relay that
 * stalls costs at most that long. Replies are read whole (multiline
 * "250-" continuations, at most MR_SMTP_CLIENT_MAX_LINES lines of at
 * most MR_SMTP_CLIENT_MAX_LINE bytes each), so a relay that talks
 * without end is refused, not followed.
 *
 * The verdict follows the relay's reply class: 2xx after the message is
 * MR_OK; 4xx, a connection that fails or breaks, a timeout or a reply
 * that does not parse is MR_EAGAIN (try again later); 5xx is MR_EINVAL
 * (permanent: the reply says why). The last reply is kept for the
 * record. Thread-safe: no state outside the call.
 */
#ifndef MR_SMTP_CLIENT_H
#define MR_SMTP_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>

#include "util/error.h"

#define MR_SMTP_CLIENT_MAX_LINE 2048
#define MR_SMTP_CLIENT_MAX_LINES 100

struct mr_smtp_client_opts {
    const char *relay;   /* "host:port", "[v6]:port" */
    const char *helo;    /* our name in EHLO; NULL: "localhost" */
    int timeout_ms;      /* each step; 0: 30 s */
    int total_ms;        /* the whole transaction; 0: 5 x timeout */
    /* When not NULL and set (by another thread), the transaction ends
     * within about 100 ms with MR_EAGAIN ("stopped"): a shutdown does
     * not wait for a silent relay. */
    const atomic_bool *stop;
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
