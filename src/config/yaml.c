/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yaml.c - the configuration file as a tree of positioned nodes.
 *
 * libyaml's document API would do most of this, but it follows aliases
 * (so a tiny file can describe an exponential tree: "billion laughs") and
 * keeps no limit on depth. Reading events ourselves lets us refuse aliases
 * outright (a config file has no use for them), cap depth and node count
 * as they arrive, and keep each node's line and column for diagnostics.
 * Everything lives in the caller's arena.
 */
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "config-private.h"

struct reader {
    struct mr__cfg_ctx *ctx;
    struct mr__cfg_node *stack[MR__CFG_MAX_DEPTH];
    int depth;
    size_t nodes;
    struct mr__cfg_node *root;
    int documents;
};

static struct mr__cfg_node *new_node(struct reader *r, enum mr__cfg_kind k,
                                     yaml_mark_t mark)
{
    struct mr__cfg_node *n = mr_arena_zalloc(r->ctx->arena, sizeof(*n));
    n->kind = k;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    return n;
}

/* While a collection is open, n counts items; a mapping's n becomes its
 * pair count when it closes (libyaml always delivers key and value). */
static void append(struct reader *r, struct mr__cfg_node *parent,
                   struct mr__cfg_node *child)
{
    if (parent->n == parent->alloc) {
        size_t na = parent->alloc ? parent->alloc * 2 : 8;
        parent->items = mr_arena_realloc(r->ctx->arena, parent->items,
                                         parent->alloc * sizeof(*parent->items),
                                         na * sizeof(*parent->items));
        parent->alloc = na;
    }
    parent->items[parent->n++] = child;
}

/* Hangs a new node under the open collection (or makes it the root) and,
 * for collections, opens it. Returns MR_EINVAL past a limit. */
static int place(struct reader *r, struct mr__cfg_node *n, yaml_mark_t mark)
{
    if (++r->nodes > MR__CFG_MAX_NODES) {
        mr__config_diag(r->ctx, n->line, n->col,
                        "the file has more than %d values", MR__CFG_MAX_NODES);
        return MR_EINVAL;
    }
    if (r->depth == 0)
        r->root = n;
    else
        append(r, r->stack[r->depth - 1], n);
    if (n->kind == MR__CFG_SCALAR)
        return 0;
    if (r->depth == MR__CFG_MAX_DEPTH) {
        mr__config_diag(r->ctx, (int)mark.line + 1, (int)mark.column + 1,
                        "nested more than %d levels deep", MR__CFG_MAX_DEPTH);
        return MR_EINVAL;
    }
    r->stack[r->depth++] = n;
    return 0;
}

static void syntax_error(struct reader *r, const yaml_parser_t *p,
                         const char *text, size_t len)
{
    const char *problem = p->problem ? p->problem : "unreadable YAML";
    int line = (int)p->problem_mark.line + 1;
    int col = (int)p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR) {
        /* Encoding errors carry only a byte offset: find its line. */
        size_t off = p->problem_offset < len ? p->problem_offset : len;
        line = 1;
        col = 1;
        for (size_t i = 0; i < off; i++, col++) {
            if (text[i] == '\n') {
                line++;
                col = 0;
            }
        }
        mr__config_diag(r->ctx, line, col, "%s (the file must be UTF-8)",
                        problem);
        return;
    }
    /* libyaml's words for a tab say nothing of tabs. */
    const char *hint = "";
    if (p->problem_mark.index < len && text[p->problem_mark.index] == '\t')
        hint = "; indent with spaces, not tabs";
    if (p->context != NULL)
        mr__config_diag(r->ctx, line, col, "syntax error: %s (%s at %d:%d)%s",
                        problem, p->context, (int)p->context_mark.line + 1,
                        (int)p->context_mark.column + 1, hint);
    else
        mr__config_diag(r->ctx, line, col, "syntax error: %s%s", problem, hint);
}

static int on_event(struct reader *r, const yaml_event_t *ev)
{
    struct mr__cfg_node *n;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++r->documents > 1) {
            mr__config_diag(r->ctx, (int)ev->start_mark.line + 1,
                            (int)ev->start_mark.column + 1,
                            "only one YAML document is allowed");
            return MR_EINVAL;
        }
        return 0;
    case YAML_ALIAS_EVENT:
        mr__config_diag(r->ctx, (int)ev->start_mark.line + 1,
                        (int)ev->start_mark.column + 1,
                        "YAML aliases (*%s) are not supported here",
                        (const char *)ev->data.alias.anchor);
        return MR_EINVAL;
    case YAML_SCALAR_EVENT:
        n = new_node(r, MR__CFG_SCALAR, ev->start_mark);
        n->len = ev->data.scalar.length;
        n->str = mr_arena_strndup(r->ctx->arena,
                                  (const char *)ev->data.scalar.value, n->len);
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return place(r, n, ev->start_mark);
    case YAML_SEQUENCE_START_EVENT:
        return place(r, new_node(r, MR__CFG_SEQ, ev->start_mark),
                     ev->start_mark);
    case YAML_MAPPING_START_EVENT:
        return place(r, new_node(r, MR__CFG_MAP, ev->start_mark),
                     ev->start_mark);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (r->depth == 0)
            return 0;
        n = r->stack[--r->depth];
        if (n->kind == MR__CFG_MAP)
            n->n /= 2;
        return 0;
    default: return 0;
    }
}

int mr__config_yaml_read(struct mr__cfg_ctx *ctx, const char *text, size_t len,
                         struct mr__cfg_node **root)
{
    struct reader r = {.ctx = ctx};
    yaml_parser_t p;
    *root = NULL;
    if (!yaml_parser_initialize(&p)) {
        mr__config_diag(ctx, 0, 0, "cannot start the YAML parser");
        return MR_EINVAL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = 0;
    /* Every event consumes input, and place() caps the nodes: bounded. */
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(&r, &p, text, len);
            rc = MR_EINVAL;
            break;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&r, &ev);
        yaml_event_delete(&ev);
        if (rc < 0 || end)
            break;
    }
    yaml_parser_delete(&p);
    if (rc == 0)
        *root = r.root;
    return rc;
}
