/* SPDX-License-Identifier: Apache-2.0 */
/*
 * recipients.c - the To and Cc of a raw message, for the channels that have
 * no envelope (the pipe without --rcpt, POST /api/v1/messages without
 * rcpt=). Apart from intake.c so that a program linking only this (the HTTP
 * handlers' tests, with a fake intake) does not pull in the whole intake.
 */
#include "ticket/intake.h"

#include <jansson.h>
#include <string.h>

#include "mime/mime.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/json.h"

/* Where the header block ends: after the first empty line, or the whole
 * input when there is none. */
static size_t header_block_len(const char *raw, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (raw[i] != '\n')
            continue;
        if (raw[i + 1] == '\n')
            return i + 2;
        if (raw[i + 1] == '\r' && i + 2 < len && raw[i + 2] == '\n')
            return i + 3;
    }
    return len;
}

int mr_intake_header_recipients(const char *raw, size_t len, size_t max,
                                char ***list, size_t *n, struct mr_error *err)
{
    *list = NULL;
    *n = 0;
    struct mr_charset_ctx *cs = mr_charset_ctx_new();
    struct mr_arena *arena = mr_arena_new();
    struct mr_mime_options opt;
    mr_mime_options_default(&opt, cs);
    if (max > 0)
        opt.limits.max_addresses = max;
    struct mr_event *ev = NULL;
    struct mr_buf out;
    mr_buf_init(&out, 0);
    int rc = mr_mime_parse(raw, header_block_len(raw, len), &opt, arena, &ev,
                           err);
    if (rc == MR_OK && max > 0) {
        struct mr_json j;
        mr_json_init(&j, &out, false);
        mr_event_write_json(ev, NULL, &j);
        json_t *root = json_loadb(out.p, out.len, 0, NULL);
        static const char *const fields[] = {"to", "cc"};
        size_t cap = 0;
        for (size_t f = 0; f < 2 && root; f++) {
            json_t *arr = json_object_get(root, fields[f]);
            size_t i;
            json_t *a;
            json_array_foreach(arr, i, a)
            {
                const char *e = json_string_value(json_object_get(a, "email"));
                if (!e || *n == max)
                    continue;
                if (*n == cap) {
                    cap = cap ? cap * 2 : 8;
                    *list = mr_xrealloc(*list, cap * sizeof **list);
                }
                (*list)[(*n)++] = mr_xstrndup(e, strlen(e));
            }
        }
        json_decref(root);
    }
    mr_buf_release(&out);
    mr_arena_free(&arena);
    mr_charset_ctx_free(&cs);
    return rc;
}

void mr_intake_free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}
