/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clamd.h - a client for clamd (ClamAV's daemon) over its socket: INSTREAM
 * to scan bytes, PING to see that it answers.
 *
 * One call is one connection: connect (a unix socket or host:port),
 * "zINSTREAM\0", the bytes in chunks each preceded by its length as 4
 * bytes big-endian, a zero-length chunk to end, then one NUL-terminated
 * reply. clamd's replies are "stream: OK", "stream: <name> FOUND" and
 * "<reason> ERROR" (its StreamMaxLength answers "INSTREAM size limit
 * exceeded. ERROR" and closes the connection while we may still be
 * writing: the reply is read anyway, and it is an error, never clean).
 *
 * Every step has the same timeout (connect, each write, each read), and
 * the whole conversation a deadline (total_ms), so a clamd that hangs, or
 * trickles a byte per step, costs at most total_ms, never a stuck thread.
 * A stop flag, set by another thread, ends the conversation within about
 * 100 ms (MR_EAGAIN, "stopped"): a shutdown waits for no clamd. A
 * reply is at most MR_CLAMD_REPLY_MAX bytes; a longer one, one that does
 * not end in OK / FOUND / ERROR, or a connection closed before any reply
 * is malformed (MR_EIO), never read as clean.
 *
 * Errors: MR_EAGAIN when clamd cannot be reached (connect refused or timed
 * out, no such socket) or the stop flag was set: the caller retries later.
 * MR_EIO when the conversation broke after connecting (closed early, a
 * step timed out, the deadline passed, a malformed reply). MR_EINVAL for
 * bad options. A reply of clamd's own ("... ERROR") is not a failure of
 * the call: it returns 0 with MR_CLAMD_ERROR and clamd's reason.
 *
 * Threads: no state between calls; any thread may call at any time.
 * Nothing here prints.
 */
#ifndef MR_SCAN_CLAMD_H
#define MR_SCAN_CLAMD_H

#include <stdatomic.h>
#include <stddef.h>

#include "util/error.h"

#define MR_CLAMD_REPLY_MAX 1024
#define MR_CLAMD_CHUNK_DEFAULT (64u * 1024)
#define MR_CLAMD_TIMEOUT_DEFAULT_MS 30000
#define MR_CLAMD_TOTAL_DEFAULT_MS (3 * 60 * 1000)

struct mr_clamd_options {
    const char *socket;  /* a unix socket path, or NULL */
    const char *address; /* "host:port" ("[::1]:3310") when socket is NULL */
    int timeout_ms;      /* per step; 0 = MR_CLAMD_TIMEOUT_DEFAULT_MS */
    int total_ms;        /* the whole conversation, connect to reply;
                            0 = MR_CLAMD_TOTAL_DEFAULT_MS */
    size_t chunk_size;   /* INSTREAM chunk; 0 = MR_CLAMD_CHUNK_DEFAULT */
    const atomic_bool *stop; /* NULL, or set by another thread to abort */
};

enum mr_clamd_verdict {
    MR_CLAMD_CLEAN = 0,
    MR_CLAMD_INFECTED,
    MR_CLAMD_ERROR, /* clamd answered ERROR: it could not scan the bytes */
};

struct mr_clamd_result {
    enum mr_clamd_verdict verdict;
    /* INFECTED: the signature name; ERROR: clamd's reason; CLEAN: "". */
    char detail[256];
};

/* Scans n bytes at p. 0 with *out filled, or MR_EAGAIN / MR_EIO /
 * MR_EINVAL (see above). */
int mr_clamd_scan(const struct mr_clamd_options *o, const void *p, size_t n,
                  struct mr_clamd_result *out, struct mr_error *err);

/* 0 when clamd answers PONG; MR_EAGAIN / MR_EIO as for a scan. */
int mr_clamd_ping(const struct mr_clamd_options *o, struct mr_error *err);

/* Parses one reply (without its NUL): what mr_clamd_scan does with what it
 * read, exposed for tests. MR_EIO when it is none of clamd's forms. */
int mr_clamd_parse_reply(const char *reply, size_t n,
                         struct mr_clamd_result *out, struct mr_error *err);

#endif
