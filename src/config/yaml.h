/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yaml.h - the configuration's YAML tree reader, for other modules that
 * read YAML files of their own (the rules file, src/ticket/rules_load.c).
 *
 * One way to read YAML: the reader of yaml.c (no aliases, bounded depth
 * and node count, every node with its line and column) and the
 * diagnostics list of config.c (capped, each problem with its place).
 * This header only names that interface for use outside src/config; the
 * declarations stay in config-private.h, where config.c keeps them.
 *
 * Use: struct mr__cfg_ctx ctx = {.arena = mr_arena_new()};
 *      mr__config_yaml_read(&ctx, text, len, &root); walk root, calling
 *      mr__config_diag(&ctx, node->line, node->col, ...) for problems;
 *      then hand ctx.diags (ctx.ndiags of them, malloc'ed) to the caller
 *      as a struct mr_config_diags and free ctx.arena.
 */
#ifndef MR_CONFIG_YAML_H
#define MR_CONFIG_YAML_H

#include "config-private.h"

#endif
