/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_bench.c - `make bench-rules`: rule evaluations per second, one
 * thread, 200 realistic rules over the benchmark corpus.
 *
 * The rules are generated deterministically (no clock, a fixed LCG) in
 * the proportions of a real support desk: mailbox routes, sender domain
 * routes, subject and body keywords, a few regexes and extractors, header
 * checks, business hours, auto kinds, attachments and one auth rule,
 * interleaved through the file as rules accumulate over time. Messages
 * (bench/gen_corpus.py's corpus) are parsed and turned into rule inputs
 * once, outside the timing; the timed loop is mr_rules_eval only, over
 * every message, repeated for at least --seconds, or exactly --passes
 * times (for callgrind, whose instruction counts do not depend on what
 * else the machine is doing).
 *
 * The first pass, outside the timing, also writes every result as JSON
 * (mr_rules_result_write_json: the trail, matched rules, queue, tags,
 * fields, ...) into a 64-bit FNV-1a checksum, printed at the end: an
 * optimization of the engine must leave it unchanged.
 *
 * --dump FILE writes those results, one line per message, to find the
 * message whose result changed when the checksum does.
 *
 * Usage: rules_bench [--seconds S | --passes N] [--write-rules FILE]
 *                    [--dump FILE] CORPUS_MSGS_DIR
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ticket/rules.h"
#include "util/buf.h"
#include "util/json.h"

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static const char *const real_mailboxes[] = {
    "support@helpdesk.example", "billing@helpdesk.example",
    "ana@helpdesk.example", "tech@helpdesk.example"};
static const char *const real_domains[] = {
    "customer.example", "acme-corp.example", "mail.example.org",
    "shop.example.net", "globex.example",   "initech.example",
    "example.co.uk",    "firma.example.de", "societe.example.fr"};
static const char *const words[] = {
    "invoice", "password", "crash", "refund", "cancel", "urgent",
    "contract", "delivery", "vat", "export", "login", "dringend",
    "rückerstattung", "facture", "счёт", "damaged", "subscription"};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void gen_rules(struct mr_buf *y)
{
    uint32_t s = 42;
    mr_buf_puts(y, "trusted_authserv_id: mx.helpdesk.example\n"
                   "timezone: Europe/Berlin\n"
                   "business_hours: {days: [mon-fri], hours: \"09:00-17:00\"}\n"
                   "tenants:\n  acme:\n");
    for (int i = 0; i < 200; i++) {
        uint32_t r = lcg(&s);
        mr_buf_printf(y, "    - name: rule-%03d\n      if:\n", i);
        switch (i % 20) {
        case 0: case 3: case 6: case 9: case 12: case 15:
            if (r % 10 == 0)
                mr_buf_printf(y, "        mailbox: %s\n",
                              real_mailboxes[r / 10 % N(real_mailboxes)]);
            else
                mr_buf_printf(y, "        mailbox: [team%u@helpdesk.example, "
                                 "\"team%u-*@helpdesk.example\"]\n",
                              r % 997, r % 991);
            mr_buf_printf(y, "      then: {queue: q%u}\n", r % 50);
            break;
        case 1: case 4: case 7: case 10: case 13:
            if (r % 8 == 0)
                mr_buf_printf(y, "        from_domain: %s\n",
                              real_domains[r / 8 % N(real_domains)]);
            else
                mr_buf_printf(y, "        from_domain: [client%u.example, "
                                 "\"*.client%u.example\"]\n",
                              r % 1000, r % 1000);
            mr_buf_printf(y, "      then: {assignee: agent%u, add_tags: "
                             "[key-account]}\n",
                          r % 30);
            break;
        case 2: case 5: case 8:
            mr_buf_printf(y, "        subject: {contains: [\"%s\", \"%s%u\"]}\n",
                          words[r % N(words)], words[r / 7 % N(words)], r % 100);
            mr_buf_printf(y, "      then: {priority: %s}\n",
                          r % 2 ? "high" : "normal");
            break;
        case 11:
            mr_buf_printf(y, "        text: {contains: \"%s\"}\n"
                             "        new_ticket: true\n",
                          words[r % N(words)]);
            mr_buf_printf(y, "      then: {add_tags: [kw-%u]}\n", r % 40);
            break;
        case 14:
            if (i % 40 == 14)
                mr_buf_printf(y, "        any:\n"
                               "          - subject: {regex: '\\b(INV-[0-9]{6})\\b', extract: invoice}\n"
                               "          - text: {regex: '(?i)invoice (?:no\\.?|number) *([0-9]{%u,})', extract: invoice}\n"
                               "      then: {add_tags: [invoice]}\n", 4 + r % 3);
            else
                mr_buf_printf(y, "        subject: {regex: '(?i)\\b(?:order|ticket) *#?([0-9]{%u,})', extract: order%d}\n"
                                 "      then: {set_field: {order_ref: {from: order%d}}}\n",
                              5 + r % 3, i, i);
            break;
        case 16:
            mr_buf_puts(y, r % 2 ? "        header: {name: X-Priority, equals: [\"1\", \"1 (Highest)\"]}\n"
                                 : "        header: {name: List-Id, present: true}\n");
            mr_buf_puts(y, "      then: {priority: urgent}\n");
            break;
        case 17:
            mr_buf_printf(y, "        header: {name: X-Mailer, matches: '(?i)outlook %u'}\n"
                             "      then: {add_tags: [outlook]}\n",
                          r % 20);
            break;
        case 18:
            mr_buf_puts(y, r % 2 ? "        business_hours: false\n"
                                   "        new_ticket: true\n"
                                 : "        weekday: [sat, sun]\n"
                                   "        time: \"22:00-06:00\"\n");
            mr_buf_puts(y, "      then: {add_tags: [after-hours]}\n");
            break;
        default:
            switch (r % 4) {
            case 0:
                mr_buf_puts(y, "        auto: [autoreply, bounce]\n"
                               "      then: {ignore: true}\n      stop: true\n");
                break;
            case 1:
                mr_buf_puts(y, "        attachment: {type: \"application/*\", size: {min: 1MB}}\n"
                               "      then: {add_tags: [large]}\n");
                break;
            case 2:
                mr_buf_puts(y, "        all:\n"
                               "          - mailbox: security@helpdesk.example\n"
                               "          - not: {auth: {dmarc: pass}}\n"
                               "      then: {queue: security-hold}\n");
                break;
            default:
                mr_buf_puts(y, "        new_ticket: true\n"
                               "        not: {auto: list}\n"
                               "      then:\n        auto_acknowledge: {template: ack}\n");
            }
        }
    }
}

struct item {
    json_t *ev;
    struct mr_rules_msg m;
};

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    double seconds = 3;
    long passes = 0;
    const char *dir = NULL, *write_rules = NULL, *dump = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc)
            passes = atol(argv[++i]);
        else if (strcmp(argv[i], "--write-rules") == 0 && i + 1 < argc)
            write_rules = argv[++i];
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            dump = argv[++i];
        else
            dir = argv[i];
    }
    if (dir == NULL) {
        fprintf(stderr, "usage: rules_bench [--seconds S | --passes N] "
                        "[--write-rules FILE] [--dump FILE] CORPUS_MSGS_DIR\n");
        return 64;
    }
    struct mr_buf y;
    mr_buf_init(&y, 0);
    gen_rules(&y);
    if (write_rules) {
        FILE *f = fopen(write_rules, "w");
        if (f) {
            fwrite(y.p, 1, y.len, f);
            fclose(f);
        }
    }
    struct mr_rules *rs = NULL;
    struct mr_config_diags diags;
    struct mr_error err = {0};
    if (mr_rules_load(y.p, y.len, "generated", NULL, &rs, &diags, &err) < 0) {
        fprintf(stderr, "rules: %s\n", err.msg);
        return 70;
    }

    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return 74;
    }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".eml") != 0)
            continue;
        if (nn == cap) {
            cap = cap ? 2 * cap : 256;
            names = mr_xrealloc(names, cap * sizeof(*names));
        }
        names[nn++] = mr_xstrndup(e->d_name, l);
    }
    closedir(d);
    qsort(names, nn, sizeof(*names), by_name);

    struct mr_arena *arena = mr_arena_new();
    struct item *items = mr_xcalloc(nn ? nn : 1, sizeof(*items));
    size_t n = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < nn; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        char *buf = mr_xmalloc((size_t)st.st_size + 1);
        ssize_t got = read(fd, buf, (size_t)st.st_size);
        close(fd);
        json_t *ev = NULL;
        if (got > 0 && mr_rules_event_from_raw(buf, (size_t)got, &ev, &err) == 0) {
            /* What the server adds: the envelope, the arrival time. */
            json_t *to = json_object_get(ev, "to");
            json_t *rcpt = json_array();
            json_t *first = json_object_get(json_array_get(to, 0), "email");
            if (first)
                json_array_append(rcpt, first);
            json_t *env = json_object();
            json_object_set_new(env, "rcpt_to", rcpt);
            json_object_set_new(ev, "envelope", env);
            json_object_set(ev, "received_at", json_object_get(ev, "date"));
            items[n].ev = ev;
            mr_rules_msg_from_event(&items[n].m, ev, arena);
            items[n].m.tenant = "acme";
            items[n].m.size = (uint64_t)got;
            items[n].m.is_new = json_is_null(json_object_get(ev, "in_reply_to"));
            items[n].m.previous_tickets = (int64_t)(i % 5);
            bytes += (uint64_t)got;
            n++;
        }
        free(buf);
        free(names[i]);
    }
    free(names);
    if (n == 0) {
        fprintf(stderr, "no messages in %s\n", dir);
        return 65;
    }

    struct mr_rules_scratch *s = mr_rules_scratch_new();
    struct mr_rules_result r;
    mr_rules_result_init(&r);
    /* Warm-up: grows the scratch and the result to their working size,
     * and checksums every result. */
    uint64_t matched = 0, decisions = 0, sum = 0xcbf29ce484222325ull;
    struct mr_buf jb;
    mr_buf_init(&jb, 0);
    FILE *df = dump ? fopen(dump, "w") : NULL;
    for (size_t i = 0; i < n; i++) {
        mr_rules_eval(rs, NULL, &items[i].m, s, &r, &err);
        matched += r.nmatched;
        decisions += r.ndecisions;
        struct mr_json j;
        mr_buf_reset(&jb);
        mr_json_init(&j, &jb, false);
        mr_rules_result_write_json(&r, &j);
        mr_buf_putc(&jb, '\n');
        sum = fnv1a(sum, jb.p, jb.len);
        if (df)
            fwrite(jb.p, 1, jb.len, df);
    }
    if (df)
        fclose(df);
    mr_buf_release(&jb);
    uint64_t evals = 0;
    /* Wall time is the measure; the thread's CPU time is printed beside
     * it, because on a shared machine the difference is time spent
     * waiting for a core. */
    int64_t t0 = now_ns(), limit = (int64_t)(seconds * 1e9), dt;
    int64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    long pass = 0;
    do {
        for (size_t i = 0; i < n; i++)
            mr_rules_eval(rs, NULL, &items[i].m, s, &r, &err);
        evals += n;
        dt = now_ns() - t0;
    } while (passes > 0 ? ++pass < passes : dt < limit);
    double cpu = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / 1e9;
    double rate = (double)evals / ((double)dt / 1e9);
    printf("rules: %zu in tenant acme (regex JIT %s)\n",
           mr_rules_count(rs, "acme"), mr_rules_jit(rs) ? "on" : "off");
    printf("corpus: %zu messages, %.1f MB (%s)\n", n, (double)bytes / 1e6, dir);
    printf("per message: %.2f rules matched, %.2f decisions\n",
           (double)matched / (double)n, (double)decisions / (double)n);
    printf("decisions checksum: %016llx\n", (unsigned long long)sum);
    printf("evaluated: %llu messages in %.2f s, one thread (%.2f s CPU: "
           "%.0f messages per CPU second)\n",
           (unsigned long long)evals, (double)dt / 1e9, cpu,
           (double)evals / cpu);
    printf("rate: %.0f messages/s (%.2f us per message; target >= 100000/s: %s)\n",
           rate, 1e6 / rate, rate >= 100000 ? "PASS" : "MISS");

    mr_rules_result_release(&r);
    mr_rules_scratch_free(&s);
    for (size_t i = 0; i < n; i++)
        json_decref(items[i].ev);
    free(items);
    mr_arena_free(&arena);
    mr_rules_free(&rs);
    mr_buf_release(&y);
    return rate >= 100000 ? 0 : 1;
}
