/* SPDX-License-Identifier: Apache-2.0 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

int mr_error_set(struct mr_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *mr_strerror(int code)
{
    switch (code) {
    case MR_OK: return "ok";
    case MR_EAGAIN: return "temporary failure";
    case MR_EINVAL: return "invalid input";
    case MR_ELIMIT: return "limit exceeded";
    case MR_ENOTFOUND: return "not found";
    case MR_ECONFLICT: return "conflict";
    case MR_EIO: return "I/O error";
    case MR_ENOMEM: return "out of memory";
    }
    return "unknown error";
}
