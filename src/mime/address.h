/* SPDX-License-Identifier: Apache-2.0 */
/*
 * address.h - RFC 5322 address lists (From, To, Cc, Reply-To, Sender, ...).
 *
 * Accepts what real mail carries: display names as atoms, quoted strings
 * (with backslash escapes) or RFC 2047 encoded words (also inside quotes),
 * comments anywhere (a comment after a bare address is its name when there
 * is no other: "bob@x.org (Bob)"), groups ("undisclosed-recipients:;",
 * "team: a@x, b@y;" - members are listed, each with its group name; an
 * empty group yields no entry), a
 * missing angle bracket, addresses with no display name, raw UTF-8 (RFC
 * 6532), obsolete routes (<@a,@b:user@c>), and separators ',' or ';'.
 *
 * Output: email is local@domain with the domain lower-cased (ASCII letters
 * only; a UTF-8 IDN domain keeps its Unicode, an "xn--" label stays ASCII);
 * the local part is kept as written (minus quotes when they are not
 * needed). An entry that holds no usable address (no '@', empty, garbage)
 * is kept with valid=false, email=NULL and its raw text in `raw`, and the
 * list is flagged. All strings are valid UTF-8 and live in the arena.
 */
#ifndef MR_ADDRESS_H
#define MR_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/arena.h"
#include "../util/span.h"
#include "charset.h"

struct mr_address {
    const char *name;  /* decoded display name, or NULL when none */
    const char *email; /* local@domain, or NULL when invalid */
    const char *group; /* group display name the entry belongs to, or NULL */
    const char *raw;   /* the entry's text as written (decoded to UTF-8) */
    bool valid;
};

enum mr_address_flags {
    MR_ADDRESS_INVALID = 1 << 0,  /* at least one entry is not an address */
    MR_ADDRESS_REPAIRED = 1 << 1, /* missing bracket/quote and the like */
    MR_ADDRESS_TOO_MANY = 1 << 2, /* more than max entries: rest dropped */
};

/* Parses raw (a header value, folded or not). At most max entries are
 * returned. *list_r is an arena array (NULL when *n_r is 0). Returns enum
 * mr_address_flags. */
unsigned mr_address_parse_list(struct mr_arena *a, struct mr_charset_ctx *cs,
                               mr_span raw, size_t max,
                               struct mr_address **list_r, size_t *n_r);

#endif
