/* SPDX-License-Identifier: Apache-2.0 */
/*
 * params.h - structured MIME header values with parameters:
 * Content-Type and Content-Disposition (RFC 2045, 2183, 2231).
 *
 * "text/plain; charset=\"utf-8\"; name*0*=utf-8''%E2%82%AC; name*1=.txt"
 * becomes value "text/plain" and params charset=utf-8, name=€.txt.
 * - The value before the first ';' is trimmed and lower-cased; comments
 *   are removed. A value without '/' where one is needed is the caller's
 *   concern (mr_params_parse only splits).
 * - Parameter names are lower-cased. RFC 2231 continuations (name*0,
 *   name*1*, ...) are joined in index order (they may arrive out of order;
 *   missing indexes end the value, flagged); charset'language'
 *   percent-encoding is decoded through mr_charset_to_utf8.
 * - Non-standard forms real clients send: RFC 2047 encoded words inside a
 *   quoted value (Outlook, Gmail: name="=?utf-8?B?...?="), raw UTF-8 or
 *   raw 8-bit (detected), unquoted values with spaces, missing closing
 *   quote, a stray ';' or empty parameter.
 * - Duplicate parameters: the FIRST one wins (flagged), both for plain and
 *   for RFC 2231 forms; a 2231 form beats a plain one of the same name.
 * - Values are valid UTF-8 with controls (CR, LF, NUL, ...) kept as they
 *   decoded, except that NUL is dropped; safety of file names is
 *   mr_filename_safe's job.
 * Everything returned lives in the arena.
 */
#ifndef MR_PARAMS_H
#define MR_PARAMS_H

#include <stddef.h>

#include "../util/arena.h"
#include "../util/span.h"
#include "charset.h"

struct mr_param {
    const char *name;  /* lower-case ASCII, NUL-terminated */
    const char *value; /* decoded UTF-8, NUL-terminated */
    size_t value_len;  /* bytes in value */
};

struct mr_params {
    const char *value; /* "text/plain", "attachment": trimmed, lower-case */
    struct mr_param *items;
    size_t n;
};

enum mr_params_flags {
    MR_PARAMS_DUPLICATE = 1 << 0,   /* a repeated parameter was ignored */
    MR_PARAMS_BAD_SYNTAX = 1 << 1,  /* unbalanced quotes, stray bytes, ... */
    MR_PARAMS_BAD_2231 = 1 << 2,    /* broken continuation or %-escape */
    MR_PARAMS_CHARSET = 1 << 3,     /* unknown or lying charset */
    MR_PARAMS_TOO_MANY = 1 << 4,    /* more than max_params: rest ignored */
};

/* Parses raw (the unfolded or folded header value). At most max_params
 * parameters are kept. Never fails: garbage yields fewer parameters and
 * flags. Returns enum mr_params_flags. */
unsigned mr_params_parse(struct mr_arena *a, struct mr_charset_ctx *cs,
                         mr_span raw, size_t max_params, struct mr_params *out);

/* The value of parameter `name` (lower-case), or NULL. Borrowed from p. */
const struct mr_param *mr_params_get(const struct mr_params *p,
                                     const char *name);

#endif
