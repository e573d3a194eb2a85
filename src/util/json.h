/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.h - the one JSON writer.
 *
 * Writes into a caller-owned mr_buf. Strings are escaped per RFC 8259 and
 * repaired to valid UTF-8 on the way out (invalid bytes become U+FFFD), so
 * the output is always valid JSON whatever bytes it is given. The writer
 * tracks commas itself; nesting is bounded by MR_JSON_MAX_DEPTH (deeper
 * begin calls are ignored and the output stays well-formed up to there is
 * NOT guaranteed, so callers keep their own structures shallow).
 * Parsing JSON is jansson's job, never ours.
 */
#ifndef MR_JSON_H
#define MR_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "span.h"

#define MR_JSON_MAX_DEPTH 32

struct mr_json {
    struct mr_buf *out;
    int depth;
    bool pretty;
    bool need_comma[MR_JSON_MAX_DEPTH];
    bool after_key;
};

void mr_json_init(struct mr_json *j, struct mr_buf *out, bool pretty);

void mr_json_obj_begin(struct mr_json *j);
void mr_json_obj_end(struct mr_json *j);
void mr_json_arr_begin(struct mr_json *j);
void mr_json_arr_end(struct mr_json *j);
/* An object key; the next value call writes its value. */
void mr_json_key_span(struct mr_json *j, mr_span key);
/* Inline so that the length of a literal key is known at compile time. */
static inline void mr_json_key(struct mr_json *j, const char *key)
{
    mr_json_key_span(j, mr_span_cstr(key));
}

void mr_json_str(struct mr_json *j, mr_span s); /* NULL pointer -> null */
static inline void mr_json_cstr(struct mr_json *j, const char *s)
{
    mr_json_str(j, mr_span_cstr(s)); /* NULL -> null */
}
/* mr_json_str for a string the caller knows to be valid UTF-8 (a decoded
 * body): only what JSON must escape is looked for, so text in Cyrillic or
 * CJK is copied sixteen bytes at a time instead of checked a character at
 * a time. Invalid UTF-8 given here ends up in the output as it is. */
void mr_json_str_valid(struct mr_json *j, mr_span s);

/* A header field's value as one string, unfolded on the way: folding line
 * breaks are dropped, any other line break or control but TAB becomes a
 * space and NUL is dropped (one pass instead of unfolding, then quoting).
 * Bytes are checked as UTF-8 where they stand, so a NUL between the bytes
 * of a character does not join them. */
void mr_json_str_unfolded(struct mr_json *j, mr_span s);

/* A string written in pieces, each escaped as by mr_json_str: begin, any
 * number of pieces, end. Each piece is checked as UTF-8 on its own, so
 * none may end inside a character that the next one completes. */
void mr_json_str_begin(struct mr_json *j);
void mr_json_str_piece(struct mr_json *j, mr_span s);
void mr_json_str_end(struct mr_json *j);
void mr_json_int(struct mr_json *j, int64_t v);
void mr_json_uint(struct mr_json *j, uint64_t v);
void mr_json_bool(struct mr_json *j, bool v);
void mr_json_null(struct mr_json *j);

/* A value that is JSON text already, copied as it is: for text this
 * writer made and a store kept (an outbox event's payload), where parsing
 * it only to write it again costs more than the rest of the object. The
 * caller vouches for it: nothing is checked, so the output is valid only
 * if text is. A NULL pointer or empty text -> null. */
void mr_json_raw(struct mr_json *j, mr_span text);

/* Appends s as a quoted, escaped JSON string to out. */
void mr_json_quote(struct mr_buf *out, mr_span s);

#endif
