/* SPDX-License-Identifier: Apache-2.0 */
/*
 * charset.h - any declared (or undeclared) charset to valid UTF-8.
 *
 * Conversion is glibc iconv behind WHATWG-style label aliasing: a label is
 * trimmed, unquoted and lower-cased; iso-8859-1, latin1, us-ascii and
 * ascii decode as windows-1252 (what every browser does, and what the
 * 0x80-0x9F "smart quotes" in such mail mean); gb2312 and gbk decode as
 * gb18030 (superset); ks_c_5601-1987 and euc-kr as cp949; shift_jis as
 * cp932; iso-2022-jp as ISO-2022-JP-3; utf-7 via iconv. Other labels are
 * tried on iconv as they are. Unlabeled 8-bit text that is not valid UTF-8
 * is detected with uchardet (windows-1252 when it has no better guess).
 * Invalid sequences, broken ISO-2022 escapes and truncated characters
 * become U+FFFD; NUL characters are dropped from the output (whatever
 * encoded them, UTF-7 "+AAA-" included). The output is always valid UTF-8.
 *
 * A mr_charset_ctx caches open iconv descriptors by label, so a message with
 * a thousand windows-1252 parts opens iconv once. It is not thread-safe: one
 * per worker thread. Caller owns it (mr_charset_ctx_new / _free).
 */
#ifndef MR_CHARSET_H
#define MR_CHARSET_H

#include <stddef.h>

#include "../util/buf.h"
#include "../util/span.h"

enum mr_charset_flags {
    MR_CHARSET_UNKNOWN = 1 << 0,  /* label not known: decoded by detection */
    MR_CHARSET_INVALID = 1 << 1,  /* invalid sequences replaced by U+FFFD */
    MR_CHARSET_DETECTED = 1 << 2, /* unlabeled/lying 8-bit: uchardet chose */
    MR_CHARSET_NUL = 1 << 3,      /* NUL bytes were dropped */
};

struct mr_charset_ctx;

struct mr_charset_ctx *mr_charset_ctx_new(void);
void mr_charset_ctx_free(struct mr_charset_ctx **ctx);

/*
 * Appends in[0..n) converted from `label` to UTF-8 to out. An empty label
 * (p NULL or n 0) means unlabeled: valid UTF-8 is kept as it is, anything
 * else goes through detection. A label claiming us-ascii or utf-8 whose
 * bytes are not valid UTF-8 also goes through detection (the label lies).
 * NUL bytes are dropped. Returns a set of enum mr_charset_flags.
 */
unsigned mr_charset_to_utf8(struct mr_charset_ctx *ctx, mr_span label,
                            const char *in, size_t n, struct mr_buf *out);

/* The iconv name mailroom uses for a label after aliasing ("WINDOWS-1252",
 * "UTF-8", ...), written NUL-terminated into name (size bytes). Returns 0,
 * or MR_ENOTFOUND when iconv does not know the label. */
int mr_charset_resolve(struct mr_charset_ctx *ctx, mr_span label, char *name,
                       size_t size);

#endif
