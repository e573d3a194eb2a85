/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config-private.h - shared between the files of src/config only.
 *
 * Loading runs in two passes. yaml.c turns the file into a small tree of
 * nodes (scalars, mappings, sequences), each with its line and column, in
 * an arena that dies when loading ends; libyaml's events are consumed one
 * at a time, so nesting depth and node count are capped before memory is
 * spent. config.c then walks that tree against the schema and fills a
 * struct mr_config. Both passes report into one diagnostics list, capped
 * at MR__CFG_MAX_DIAGS, so a broken file yields every problem at once.
 * route.c holds address syntax, shared by the loader (inboxes) and by
 * mr_config_route (recipients).
 */
#ifndef MR_CONFIG_PRIVATE_H
#define MR_CONFIG_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "util/arena.h"

#define MR__CFG_MAX_DIAGS 100
#define MR__CFG_MAX_DEPTH 32        /* the schema needs 5 */
#define MR__CFG_MAX_NODES 200000    /* bounds every walk of the tree */
#define MR__CFG_MAX_FILE (4u << 20) /* bytes */

enum mr__cfg_kind {
    MR__CFG_SCALAR,
    MR__CFG_MAP,
    MR__CFG_SEQ,
};

struct mr__cfg_node {
    enum mr__cfg_kind kind;
    int line, col; /* 1-based, where the node starts */
    /* Scalars: the decoded value, NUL-terminated; it may hold NUL bytes
     * (YAML's "\0"), so len is the truth. */
    char *str;
    size_t len;
    bool plain; /* unquoted: only then is it null/bool */
    /* Sequences: n items. Mappings: n pairs stored key, value, key... in
     * items[0 .. 2n). */
    struct mr__cfg_node **items;
    size_t n;
    size_t alloc;
};

struct mr__cfg_ctx {
    struct mr_arena *arena; /* the tree and scratch strings */
    struct mr_config_diag *diags;
    size_t ndiags, alloc;
    bool truncated; /* more problems than MR__CFG_MAX_DIAGS */
};

/* Records one problem (silently dropped past the cap). line 0 means the
 * problem has no place in the file. */
void mr__config_diag(struct mr__cfg_ctx *ctx, int line, int col,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parses text (one YAML document). *root is NULL for an empty document.
 * Returns 0, or MR_EINVAL with the reason in ctx (syntax error, alias,
 * more than one document, too deep or too big). */
int mr__config_yaml_read(struct mr__cfg_ctx *ctx, const char *text, size_t len,
                         struct mr__cfg_node **root);

/* ---- reading values out of the tree (nodes.c) ---- */

/* The whole file at path into b (initialised here; the caller releases
 * it), which must be a regular file (a FIFO would block a loader). b holds
 * up to MR__CFG_MAX_FILE + 1 bytes: longer than MR__CFG_MAX_FILE means
 * too large. MR_EIO with the reason. */
struct mr_buf;
int mr__cfg_read_file(const char *path, struct mr_buf *b,
                      struct mr_error *err);

/* A printable excerpt of a scalar for messages (controls as '?', cut with
 * "..." to fit buf), or "a mapping" / "a list". */
const char *mr__cfg_show(const struct mr__cfg_node *n, char *buf, size_t size);

/* Edit distance, case-insensitive, a swap of two neighbours counting as one
 * edit (for "did you mean"); SIZE_MAX past 32 characters. */
size_t mr__cfg_distance(const char *a, size_t na, const char *b, size_t nb);

/* Digits with an optional sign at s[0..n); *used gets how many bytes were
 * read. false when there is no digit or the value overflows. */
bool mr__cfg_parse_int(const char *s, size_t n, int64_t *out, size_t *used);

/* NUMBER [spaces] [UNIT], the unit case-insensitive from a table ending
 * with {NULL, 0} whose first entry "" is the unit of a bare number.
 * Negative numbers and overflow are false; *bad_unit tells an unknown
 * unit apart. */
struct mr__cfg_unit {
    const char *name;
    uint64_t mult;
};
extern const struct mr__cfg_unit mr__cfg_size_units[];     /* bytes */
extern const struct mr__cfg_unit mr__cfg_duration_units[]; /* ms; bare = s */
bool mr__cfg_parse_unit(const struct mr__cfg_node *v,
                        const struct mr__cfg_unit *units, uint64_t *out,
                        bool *bad_unit);

/* An inbox address from the config, split and checked. Fills the inbox's
 * kind, address, local, domain and tag_name (malloc'ed, owned by the
 * inbox). On error returns MR_EINVAL with a message for the user. */
int mr__config_inbox_parse(const char *s, size_t len, struct mr_inbox *ib,
                           struct mr_error *err);

#endif
