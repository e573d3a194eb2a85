/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_mime.c - libFuzzer target for the MIME parser and the content stage
 * (content.h): any bytes in, the event JSON out, and the promises of
 * mime.h and docs/event.md checked.
 *
 * Sanitizers catch memory errors and undefined behaviour; this file checks
 * what they cannot see, and abort()s when a promise is broken:
 *   - mr_mime_parse returns only 0, MR_EINVAL or MR_ELIMIT (no sink error
 *     is possible here), and MR_EINVAL for empty input;
 *   - the JSON is valid UTF-8 and well-formed (RFC 8259), its top level is
 *     one object holding every field of docs/event.md exactly once;
 *   - the accessors return NULL or valid UTF-8;
 *   - parsing is deterministic and a sink does not change the result: a
 *     second parse with a fresh arena and a counting sink writes the same
 *     JSON, and the sink sees attachment indexes in order and in range.
 *
 * The same file is linked into fuzz_replay (replay.c) by the normal build,
 * so the seed corpus and every saved crash run as a plain CTest test.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content/content.h"
#include "mime/charset.h"
#include "mime/mime.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/utf8.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Output cap: far above what the default limits let an event reach, so
 * hitting it means the writer ignores the limits. */
#define OUT_MAX ((size_t)1 << 30)

static struct mr_charset_ctx *charsets;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_mime: invariant broken: %s%s%s\n", what,
            detail ? ": " : "", detail ? detail : "");
    abort();
}

/* Fields docs/event.md says are always present at the top level. */
static const char *const required_keys[] = {
    "id",         "type",          "tenant",        "inbox",
    "message_id", "message_id_derived", "in_reply_to", "references",
    "from",       "sender",        "reply_to",      "to",
    "cc",         "bcc",           "envelope",      "subject",
    "date",       "received_at",   "text",          "html",
    "html_sanitized", "stripped_text", "headers",    "attachments",
    "report",     "auth",          "auto",          "warnings",
};
#define NKEYS (sizeof(required_keys) / sizeof(required_keys[0]))

struct scan {
    const char *p;
    size_t n, i;
    unsigned seen[NKEYS];
};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct scan *s)
{
    while (s->i < s->n && is_ws(s->p[s->i]))
        s->i++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned hex4(struct scan *s)
{
    if (s->n - s->i < 4)
        fail("json", "short \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s->p[s->i++]);
        if (h < 0)
            fail("json", "bad hex in \\u escape");
        v = v << 4 | (unsigned)h;
    }
    return v;
}

/* A string starting at the opening quote; its raw bytes between the quotes
 * go to *start / *len (escapes left as written). */
static void scan_string(struct scan *s, size_t *start, size_t *len)
{
    s->i++; /* opening quote */
    *start = s->i;
    for (;;) {
        if (s->i >= s->n)
            fail("json", "unterminated string");
        unsigned char c = (unsigned char)s->p[s->i];
        if (c == '"')
            break;
        if (c < 0x20)
            fail("json", "raw control character in a string");
        if (c != '\\') {
            s->i++;
            continue;
        }
        s->i++;
        if (s->i >= s->n)
            fail("json", "backslash at end");
        char e = s->p[s->i++];
        if (e == 'u') {
            unsigned u = hex4(s);
            if (u >= 0xDC00 && u <= 0xDFFF)
                fail("json", "lone low surrogate escape");
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (s->n - s->i < 6 || s->p[s->i] != '\\' ||
                    s->p[s->i + 1] != 'u')
                    fail("json", "lone high surrogate escape");
                s->i += 2;
                unsigned lo = hex4(s);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    fail("json", "bad surrogate pair");
            }
        } else if (strchr("\"\\/bfnrt", e) == NULL || e == '\0') {
            fail("json", "bad escape");
        }
    }
    *len = s->i - *start;
    s->i++; /* closing quote */
}

static void scan_number(struct scan *s)
{
    size_t i = s->i;
    if (i < s->n && s->p[i] == '-')
        i++;
    if (i >= s->n)
        fail("json", "bad number");
    if (s->p[i] == '0') {
        i++;
    } else if (s->p[i] >= '1' && s->p[i] <= '9') {
        while (i < s->n && s->p[i] >= '0' && s->p[i] <= '9')
            i++;
    } else {
        fail("json", "bad number");
    }
    if (i < s->n && s->p[i] == '.') {
        i++;
        size_t d = i;
        while (i < s->n && s->p[i] >= '0' && s->p[i] <= '9')
            i++;
        if (i == d)
            fail("json", "bad fraction");
    }
    if (i < s->n && (s->p[i] == 'e' || s->p[i] == 'E')) {
        i++;
        if (i < s->n && (s->p[i] == '+' || s->p[i] == '-'))
            i++;
        size_t d = i;
        while (i < s->n && s->p[i] >= '0' && s->p[i] <= '9')
            i++;
        if (i == d)
            fail("json", "bad exponent");
    }
    s->i = i;
}

static void scan_literal(struct scan *s, const char *lit)
{
    size_t l = strlen(lit);
    if (s->n - s->i < l || memcmp(s->p + s->i, lit, l) != 0)
        fail("json", "unexpected character");
    s->i += l;
}

static void note_key(struct scan *s, size_t start, size_t len)
{
    for (size_t k = 0; k < NKEYS; k++) {
        if (strlen(required_keys[k]) == len &&
            memcmp(s->p + start, required_keys[k], len) == 0) {
            if (s->seen[k]++)
                fail("event", "duplicate top-level key");
            return;
        }
    }
}

/*
 * RFC 8259 grammar with an explicit stack (the writer nests at most
 * MR_JSON_MAX_DEPTH levels; anything deeper is itself a bug). No recursion,
 * so a broken writer cannot make the checker overflow its stack.
 */
static void check_json(const char *p, size_t n)
{
    enum { OBJ, ARR };
    char stack[MR_JSON_MAX_DEPTH + 1];
    int depth = 0;
    struct scan s = {.p = p, .n = n, .i = 0};

    skip_ws(&s);
    if (s.i >= n || p[s.i] != '{')
        fail("event", "top level is not an object");
    for (;;) {
        /* Here a value is expected. */
        skip_ws(&s);
        if (s.i >= n)
            fail("json", "truncated");
        char c = p[s.i];
        size_t a, l;
        if (c == '{' || c == '[') {
            if (depth > MR_JSON_MAX_DEPTH)
                fail("json", "nested deeper than MR_JSON_MAX_DEPTH");
            stack[depth++] = c == '{' ? OBJ : ARR;
            s.i++;
            skip_ws(&s);
            if (s.i < n && p[s.i] == (c == '{' ? '}' : ']')) {
                s.i++;
                depth--;
                goto after_value;
            }
            if (c == '{')
                goto want_key;
            continue;
        } else if (c == '"') {
            scan_string(&s, &a, &l);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            scan_number(&s);
        } else if (c == 't') {
            scan_literal(&s, "true");
        } else if (c == 'f') {
            scan_literal(&s, "false");
        } else if (c == 'n') {
            scan_literal(&s, "null");
        } else {
            fail("json", "unexpected character where a value belongs");
        }
    after_value:
        for (;;) {
            skip_ws(&s);
            if (depth == 0) {
                if (s.i != n)
                    fail("json", "bytes after the top-level value");
                for (size_t k = 0; k < NKEYS; k++)
                    if (!s.seen[k])
                        fail("event: top-level key missing",
                             required_keys[k]);
                return;
            }
            if (s.i >= n)
                fail("json", "truncated");
            c = p[s.i++];
            if (c == ',') {
                if (stack[depth - 1] == OBJ)
                    goto want_key;
                break; /* next array element */
            }
            if (c == (stack[depth - 1] == OBJ ? '}' : ']')) {
                depth--;
                continue;
            }
            fail("json", "expected ',' or a closing bracket");
        }
        continue;
    want_key:
        skip_ws(&s);
        if (s.i >= n || p[s.i] != '"')
            fail("json", "expected a key");
        scan_string(&s, &a, &l);
        if (depth == 1)
            note_key(&s, a, l);
        skip_ws(&s);
        if (s.i >= n || p[s.i] != ':')
            fail("json", "expected ':'");
        s.i++;
    }
}

struct sink_state {
    size_t last;
    size_t calls;
    bool any;
};

static int sink_data(void *ctx, size_t index, const char *p, size_t n)
{
    struct sink_state *st = ctx;
    if (st->any && index < st->last)
        fail("sink", "attachment index went backwards");
    if (p == NULL && n != 0)
        fail("sink", "NULL data with a length");
    st->last = index;
    st->any = true;
    st->calls++;
    return 0;
}

static void check_str(const char *what, const char *s)
{
    if (s != NULL && !mr_utf8_valid(s, strlen(s)))
        fail("accessor returned invalid UTF-8", what);
}

/* One parse and its JSON into out. Returns the parse's result code. */
static int parse_once(const char *buf, size_t len,
                      const struct mr_mime_sink *sink, struct mr_buf *out,
                      struct sink_state *st)
{
    struct mr_mime_options opt;
    mr_mime_options_default(&opt, charsets);
    opt.sink = sink;
    struct mr_arena *a = mr_arena_new();
    struct mr_event *ev = NULL;
    struct mr_error err = {0};
    int rc = mr_mime_parse(buf, len, &opt, a, &ev, &err);
    if (rc == 0) {
        if (ev == NULL)
            fail("mr_mime_parse", "returned 0 without an event");
        /* The content stage (sanitizer, html->text, visible reply) takes
         * the same hostile bodies in the server: fuzzed with the parser. */
        mr_content_apply(ev, a);
        struct mr_json j;
        mr_json_init(&j, out, false);
        mr_event_write_json(ev, NULL, &j);
        check_str("subject", mr_event_subject(ev));
        check_str("message_id", mr_event_message_id(ev));
        check_str("text", mr_event_text(ev));
        check_str("html", mr_event_html(ev));
        if (mr_event_message_id(ev) == NULL)
            fail("event", "message_id is NULL (always a string)");
        if (st != NULL && st->any &&
            st->last >= mr_event_attachment_count(ev))
            fail("sink", "attachment index out of range");
        (void)mr_event_warning_count(ev);
    } else if (rc != MR_EINVAL && rc != MR_ELIMIT) {
        fail("mr_mime_parse", "unexpected error code");
    } else if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
        fail("mr_error", "message not NUL-terminated");
    }
    mr_arena_free(&a);
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (charsets == NULL)
        charsets = mr_charset_ctx_new();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (charsets == NULL)
        charsets = mr_charset_ctx_new();
    const char *buf = (const char *)data;
    struct mr_buf out1, out2;
    mr_buf_init(&out1, OUT_MAX);
    mr_buf_init(&out2, OUT_MAX);

    int rc = parse_once(buf, size, NULL, &out1, NULL);
    if (size == 0 && rc != MR_EINVAL)
        fail("mr_mime_parse", "empty input not MR_EINVAL");
    if (rc == 0) {
        if (out1.limited)
            fail("json", "event JSON over 1 GiB");
        if (!mr_utf8_valid(out1.p ? out1.p : "", out1.len))
            fail("json", "not valid UTF-8");
        check_json(out1.p ? out1.p : "", out1.len);
    }

    struct sink_state st = {0};
    struct mr_mime_sink sink = {.ctx = &st, .data = sink_data};
    int rc2 = parse_once(buf, size, &sink, &out2, &st);
    if (rc2 != rc)
        fail("determinism", "second parse returned another code");
    if (out1.len != out2.len ||
        (out1.len && memcmp(out1.p, out2.p, out1.len) != 0))
        fail("determinism", "second parse (with a sink) wrote other JSON");

    mr_buf_release(&out1);
    mr_buf_release(&out2);
    return 0;
}
