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

/* An inbox address from the config, split and checked. Fills the inbox's
 * kind, address, local, domain and tag_name (malloc'ed, owned by the
 * inbox). On error returns MR_EINVAL with a message for the user. */
int mr__config_inbox_parse(const char *s, size_t len, struct mr_inbox *ib,
                           struct mr_error *err);

#endif
