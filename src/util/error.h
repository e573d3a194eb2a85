/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error.h - the one error convention of mailroom.
 *
 * A function that can fail returns int: 0 on success or a negative MR_E*
 * code chosen by what the caller must do next. Detail goes into a
 * caller-owned struct mr_error so that the error path never allocates.
 * Library code never prints; the caller maps the code to an SMTP reply, an
 * HTTP problem or an exit status. MIME defects are not errors: they become
 * warnings and parsing goes on.
 */
#ifndef MR_ERROR_H
#define MR_ERROR_H

#include <stddef.h>

enum mr_errcode {
    MR_OK = 0,
    MR_EAGAIN = -1,    /* transient: retry later (SMTP 451, HTTP 503) */
    MR_EINVAL = -2,    /* input rejected (SMTP 550, HTTP 400, EX_DATAERR) */
    MR_ELIMIT = -3,    /* a configured limit was hit (SMTP 552, HTTP 413) */
    MR_ENOTFOUND = -4, /* no such thing */
    MR_ECONFLICT = -5, /* duplicate: idempotent success */
    MR_EIO = -6,       /* a system call failed; errno text in the message */
    MR_ENOMEM = -7,    /* allocation failed */
};

struct mr_error {
    int code;
    char msg[256];
};

/* Fills err (which may be NULL) and returns code, so that callers can write
 * `return mr_error_set(err, MR_EINVAL, "bad %s", what);`. */
int mr_error_set(struct mr_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short constant name for a code ("invalid input", ...). */
const char *mr_strerror(int code);

#endif
