/* SPDX-License-Identifier: Apache-2.0 */
/*
 * content_bench - throughput of mr_html_sanitize and mr_html_to_text, for
 * `make bench-content` (bench/content_bench.py drives it; see
 * docs/benchmarks.md).
 *
 *   content_bench [--op sanitize|text|all] [--passes N] [--min-seconds S]
 *                 BODIES.jsonl
 *
 * BODIES.jsonl holds one {"id": ..., "html": "..."} per line. Every body is
 * loaded before any clock starts, so the figures are the two functions and
 * nothing else: no file reading, no JSON decoding. Each operation gets one
 * untimed pass first (it warms the caches and the allocator, and its
 * outputs are hashed into the checksum), then whole timed passes over all
 * bodies until both N passes and S seconds are done. The timed passes only
 * add up output lengths, which must come to passes x the untimed pass's:
 * an output that changes from one pass to the next is an error, and the
 * sum is printed so the calls cannot be optimized away.
 *
 * Output, one JSON object on stdout (bench/content/dompurify_bench.mjs
 * prints the same shape):
 *   {"driver":"mailroom","bodies":..,"bytes":..,"ops":{"sanitize":{
 *     "passes":..,"ns":..,"bytes_per_s":..,"out_bytes":..,"errors":..,
 *     "checksum":"<sha256 of the untimed pass's outputs>"}, "text":{..}}}
 * Times are integers (nanoseconds, bytes per second) because the one JSON
 * writer has no floating-point values; MB/s goes to stderr for a reader.
 *
 * Single thread, CLOCK_MONOTONIC. Exit 0, or 1 on any error (unreadable
 * file, bad JSON line, an output that differs between passes).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "content/html_text.h"
#include "content/sanitize.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/json.h"

/* Bounds on the input file: a benchmark corpus, not a mailbox. */
#define BODIES_MAX 10000000u
#define BYTES_MAX ((size_t)4 << 30)
/* An output may be at most this big: far over any body of the corpus, so
 * hitting it means a broken implementation, reported as an error. */
#define OUT_MAX ((size_t)256 << 20)
#define PASSES_MAX 1000000u

struct body {
    char *html;
    size_t n;
};

struct corpus {
    struct body *v;
    size_t count;
    size_t alloc;
    uint64_t bytes;
};

enum op { OP_SANITIZE, OP_TEXT };

struct result {
    unsigned passes;
    uint64_t ns;
    uint64_t out_bytes; /* of one pass */
    unsigned errors;    /* bodies that failed, in one pass */
    char checksum[MR_SHA256_HEX_LEN + 1];
};

/* What the server's resolver does: map the content id to the attachment's
 * URL. The string is returned from ctx, valid until the next call, as
 * sanitize.h allows. */
struct cid_ctx {
    char url[512];
};

static const char *
resolve_cid(void *ctx, const char *cid, size_t n)
{
    struct cid_ctx *c = ctx;
    int len = n > 256 ? 256 : (int)n;
    snprintf(c->url, sizeof c->url,
             "/api/v1/attachments/by-cid/%.*s", len, cid);
    return c->url;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
load(const char *path, struct corpus *c)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned long lineno = 0;
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "content_bench: %s: %s\n", path, strerror(errno));
        return 1;
    }
    while ((got = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *rec, *html;

        lineno++;
        if (got == 1 && line[0] == '\n')
            continue;
        rec = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &jerr);
        if (rec == NULL) {
            fprintf(stderr, "content_bench: %s:%lu: %s\n", path, lineno,
                    jerr.text);
            rc = 1;
            break;
        }
        html = json_object_get(rec, "html");
        if (!json_is_string(html)) {
            fprintf(stderr, "content_bench: %s:%lu: no \"html\" string\n",
                    path, lineno);
            json_decref(rec);
            rc = 1;
            break;
        }
        if (c->count == BODIES_MAX ||
            json_string_length(html) > BYTES_MAX - c->bytes) {
            fprintf(stderr, "content_bench: %s: more than %u bodies or "
                    "%zu bytes\n", path, BODIES_MAX, BYTES_MAX);
            json_decref(rec);
            rc = 1;
            break;
        }
        if (c->count == c->alloc) {
            c->alloc = c->alloc ? c->alloc * 2 : 1024;
            c->v = mr_xrealloc(c->v, c->alloc * sizeof *c->v);
        }
        c->v[c->count].n = json_string_length(html);
        c->v[c->count].html = mr_xmalloc(c->v[c->count].n + 1);
        memcpy(c->v[c->count].html, json_string_value(html),
               c->v[c->count].n + 1);
        c->bytes += c->v[c->count].n;
        c->count++;
        json_decref(rec);
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "content_bench: %s: %s\n", path, strerror(errno));
        rc = 1;
    }
    free(line);
    fclose(f);
    if (rc == 0 && c->count == 0) {
        fprintf(stderr, "content_bench: %s: no bodies\n", path);
        rc = 1;
    }
    return rc;
}

/* One call; the output is left in out. -> 0, or the sanitizer's error. */
static int
one(enum op op, const struct body *b, struct cid_ctx *cid,
    struct mr_buf *out)
{
    mr_buf_reset(out);
    if (op == OP_SANITIZE) {
        struct mr_sanitize_opts opt = {
            .resolve_cid = resolve_cid,
            .ctx = cid,
            .remote_images = false,
        };
        return mr_html_sanitize(b->html, b->n, &opt, out, NULL);
    }
    mr_html_to_text(b->html, b->n, out);
    return out->limited ? MR_ELIMIT : 0;
}

static int
run(enum op op, const struct corpus *c, unsigned passes, uint64_t min_ns,
    struct result *r)
{
    struct cid_ctx cid;
    struct mr_buf out;
    struct mr_sha256 h;
    uint64_t sum = 0;
    uint64_t t0;
    size_t i;

    memset(r, 0, sizeof *r);
    mr_buf_init(&out, OUT_MAX);
    mr_sha256_init(&h);
    for (i = 0; i < c->count; i++) {
        uint64_t len;

        if (one(op, &c->v[i], &cid, &out) != 0) {
            r->errors++;
            mr_buf_reset(&out);
        }
        /* The length first, so that moving bytes from one body's output
         * to the next changes the checksum. */
        len = out.len;
        mr_sha256_update(&h, &len, sizeof len);
        mr_sha256_update(&h, out.p ? out.p : "", out.len);
        r->out_bytes += out.len;
    }
    mr_sha256_final_hex(&h, r->checksum);

    t0 = now_ns();
    do {
        for (i = 0; i < c->count; i++) {
            if (one(op, &c->v[i], &cid, &out) != 0)
                mr_buf_reset(&out);
            sum += out.len;
        }
        r->passes++;
        r->ns = now_ns() - t0;
    } while (r->passes < PASSES_MAX &&
             (r->passes < passes || r->ns < min_ns));
    mr_buf_release(&out);

    if (sum != r->out_bytes * r->passes) {
        fprintf(stderr, "content_bench: %s: %" PRIu64 " output bytes over "
                "%u passes, expected %" PRIu64 " each: the output changes "
                "between passes\n", op == OP_SANITIZE ? "sanitize" : "text",
                sum, r->passes, r->out_bytes);
        return 1;
    }
    return 0;
}

static void
put_result(struct mr_json *j, const char *name, const struct corpus *c,
           const struct result *r)
{
    uint64_t total = c->bytes * r->passes;
    /* ns is at least 1 second's worth in any real run; the guard is for a
     * clock that did not move. */
    uint64_t bps = r->ns ? (uint64_t)((double)total * 1e9 / (double)r->ns)
                         : 0;

    mr_json_key(j, name);
    mr_json_obj_begin(j);
    mr_json_key(j, "passes");
    mr_json_uint(j, r->passes);
    mr_json_key(j, "ns");
    mr_json_uint(j, r->ns);
    mr_json_key(j, "bytes_per_s");
    mr_json_uint(j, bps);
    mr_json_key(j, "out_bytes");
    mr_json_uint(j, r->out_bytes);
    mr_json_key(j, "errors");
    mr_json_uint(j, r->errors);
    mr_json_key(j, "checksum");
    mr_json_cstr(j, r->checksum);
    mr_json_obj_end(j);
    fprintf(stderr, "content_bench: %s: %u passes in %.3f s, %.1f MB/s, "
            "%u errors\n", name, r->passes, (double)r->ns / 1e9,
            (double)bps / 1e6, r->errors);
}

static int
usage(void)
{
    fputs("usage: content_bench [--op sanitize|text|all] [--passes N] "
          "[--min-seconds S] BODIES.jsonl\n", stderr);
    return 64;
}

int
main(int argc, char **argv)
{
    const char *path = NULL;
    bool want[2] = {true, true};
    static const char *const names[2] = {"sanitize", "text"};
    unsigned long passes = 1;
    double min_s = 2.0;
    struct corpus c = {0};
    struct result r[2];
    struct mr_buf out;
    struct mr_json j;
    int rc = 0;
    int a;

    for (a = 1; a < argc; a++) {
        char *end;

        if (strcmp(argv[a], "--op") == 0 && a + 1 < argc) {
            a++;
            want[OP_SANITIZE] = strcmp(argv[a], "sanitize") == 0 ||
                                strcmp(argv[a], "all") == 0;
            want[OP_TEXT] = strcmp(argv[a], "text") == 0 ||
                            strcmp(argv[a], "all") == 0;
            if (!want[OP_SANITIZE] && !want[OP_TEXT])
                return usage();
        } else if (strcmp(argv[a], "--passes") == 0 && a + 1 < argc) {
            passes = strtoul(argv[++a], &end, 10);
            if (*end != '\0' || passes < 1 || passes > PASSES_MAX)
                return usage();
        } else if (strcmp(argv[a], "--min-seconds") == 0 && a + 1 < argc) {
            min_s = strtod(argv[++a], &end);
            if (*end != '\0' || !(min_s >= 0 && min_s <= 3600))
                return usage();
        } else if (argv[a][0] == '-' || path != NULL) {
            return usage();
        } else {
            path = argv[a];
        }
    }
    if (path == NULL)
        return usage();
    if (load(path, &c) != 0)
        return 1;
    fprintf(stderr, "content_bench: %zu bodies, %" PRIu64 " bytes\n",
            c.count, c.bytes);

    for (a = 0; a < 2; a++)
        if (want[a] && run((enum op)a, &c, (unsigned)passes,
                           (uint64_t)(min_s * 1e9), &r[a]) != 0)
            rc = 1;

    mr_buf_init(&out, 0);
    mr_json_init(&j, &out, false);
    mr_json_obj_begin(&j);
    mr_json_key(&j, "driver");
    mr_json_cstr(&j, "mailroom");
    mr_json_key(&j, "bodies");
    mr_json_uint(&j, c.count);
    mr_json_key(&j, "bytes");
    mr_json_uint(&j, c.bytes);
    mr_json_key(&j, "ops");
    mr_json_obj_begin(&j);
    for (a = 0; a < 2; a++)
        if (want[a])
            put_result(&j, names[a], &c, &r[a]);
    mr_json_obj_end(&j);
    mr_json_obj_end(&j);
    mr_buf_putc(&out, '\n');
    if (fwrite(out.p, 1, out.len, stdout) != out.len || fflush(stdout) != 0)
        rc = 1;
    mr_buf_release(&out);

    for (size_t i = 0; i < c.count; i++)
        free(c.v[i].html);
    free(c.v);
    return rc;
}
