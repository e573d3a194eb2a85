/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.c - `mailroom rules check FILE` and `mailroom rules test MSG
 * --rules FILE`: a rules file checked the way the server loads it, and
 * the decisions it makes for one message, stored nowhere.
 *
 * check prints "FILE: ok (...)" and exits 0, or lists every problem on
 * standard error as FILE:LINE:COL: message and exits 65.
 *
 * test parses the message with the server's parser and classifier and
 * prints the result as JSON (mr_rules_result_write_json). What only the
 * server knows comes from options: --tenant (default: the file's only
 * tenant, else "default"), --received-at (RFC 3339; default now),
 * --reply (the message joins an existing ticket), --previous-tickets N,
 * --last-ack RFC3339 (the last acknowledgement to this sender), --rcpt
 * (repeatable) and --mail-from for the envelope ("" is the null sender).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../content/classify.h"
#include "../mime/date.h"
#include "../ticket/rules.h"
#include "../util/buf.h"
#include "cli.h"
#include "util/clock.h"

#define MAX_MESSAGE (100u << 20)

static void usage(FILE *out)
{
    fputs("usage: mailroom rules check FILE\n"
          "       mailroom rules test MSG.eml --rules FILE [--tenant T]\n"
          "                 [--received-at RFC3339] [--reply]\n"
          "                 [--previous-tickets N] [--last-ack RFC3339]\n"
          "                 [--rcpt ADDR]... [--mail-from ADDR]\n"
          "\n"
          "check lists every problem of a rules file as FILE:LINE:COL:\n"
          "message (exit 65) or says it is ok. test prints, as JSON, the\n"
          "decisions the rules make for one message (docs/rules.md);\n"
          "nothing is stored. Exit status: 0 ok, 64 usage, 65 bad file or\n"
          "message, 74 unreadable.\n",
          out);
}

static int load_rules(const char *path, struct mr_rules **rs)
{
    struct mr_config_diags diags;
    struct mr_error err = {0};
    int rc = mr_rules_load_file(path, NULL, rs, &diags, &err);
    if (rc == MR_EIO) {
        fprintf(stderr, "mailroom rules: %s\n", err.msg);
        return MR_EXIT_IOERR;
    }
    if (rc < 0) {
        for (size_t i = 0; i < diags.n; i++) {
            const struct mr_config_diag *d = &diags.items[i];
            if (d->line > 0)
                fprintf(stderr, "%s:%d:%d: %s\n", path, d->line, d->column,
                        d->msg);
            else
                fprintf(stderr, "%s: %s\n", path, d->msg);
        }
        if (diags.n == 0)
            fprintf(stderr, "%s\n", err.msg);
        mr_config_diags_free(&diags);
        return MR_EXIT_DATAERR;
    }
    return MR_EXIT_OK;
}

static int check(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        usage(stderr);
        return MR_EXIT_USAGE;
    }
    struct mr_rules *rs = NULL;
    int st = load_rules(argv[1], &rs);
    if (st != MR_EXIT_OK)
        return st;
    size_t nrules = 0, nt = mr_rules_tenant_count(rs);
    for (size_t i = 0; i < nt; i++)
        nrules += mr_rules_count(rs, mr_rules_tenant_name(rs, i));
    printf("%s: ok (%zu tenant%s, %zu rule%s; regex JIT %s)\n", argv[1], nt,
           nt == 1 ? "" : "s", nrules, nrules == 1 ? "" : "s",
           mr_rules_jit(rs) ? "on" : "off or unused");
    mr_rules_free(&rs);
    return MR_EXIT_OK;
}

static int read_message(const char *path, struct mr_buf *b)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO
                                    : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "mailroom rules: %s: %s\n", path, strerror(errno));
        return MR_EXIT_IOERR;
    }
    for (;;) {
        char *p = mr_buf_reserve(b, 65536);
        if (p == NULL) {
            fprintf(stderr, "mailroom rules: %s: larger than %u MiB\n", path,
                    MAX_MESSAGE >> 20);
            if (fd != STDIN_FILENO)
                close(fd);
            return MR_EXIT_DATAERR;
        }
        ssize_t n = read(fd, p, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "mailroom rules: %s: %s\n", path, strerror(errno));
            if (fd != STDIN_FILENO)
                close(fd);
            return MR_EXIT_IOERR;
        }
        if (n == 0)
            break;
        mr_buf_commit(b, (size_t)n);
    }
    if (fd != STDIN_FILENO)
        close(fd);
    return MR_EXIT_OK;
}

static bool time_arg(const char *s, int64_t *ms)
{
    int64_t t;
    unsigned flags;
    json_t *tmp = json_object();
    json_object_set_new(tmp, "received_at", json_string(s));
    struct mr_rules_msg m;
    struct mr_arena *a = mr_arena_new();
    mr_rules_msg_from_event(&m, tmp, a);
    bool ok = m.received_at != 0;
    if (ok)
        *ms = m.received_at;
    mr_arena_free(&a);
    json_decref(tmp);
    if (ok)
        return true;
    /* Also RFC 5322 dates, as in a Date header. */
    if (mr_date_parse(mr_span_cstr(s), &t, &flags) == 0) {
        *ms = t * 1000;
        return true;
    }
    return false;
}

static int test(int argc, char **argv)
{
    const char *msg = NULL, *rules = NULL, *tenant = NULL;
    int64_t received = 0, last_ack = 0, prev = 0;
    bool reply = false;
    const char *mail_from = NULL;
    json_t *rcpts = json_array();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--rules") == 0 && has)
            rules = argv[++i];
        else if (strcmp(a, "--tenant") == 0 && has)
            tenant = argv[++i];
        else if (strcmp(a, "--rcpt") == 0 && has)
            json_array_append_new(rcpts, json_string(argv[++i]));
        else if (strcmp(a, "--mail-from") == 0 && has)
            mail_from = argv[++i];
        else if (strcmp(a, "--reply") == 0)
            reply = true;
        else if (strcmp(a, "--previous-tickets") == 0 && has) {
            char *end;
            prev = strtoll(argv[++i], &end, 10);
            if (*end || prev < 0)
                goto bad;
        } else if ((strcmp(a, "--received-at") == 0 ||
                    strcmp(a, "--last-ack") == 0) &&
                   has) {
            int64_t *dst = a[2] == 'r' ? &received : &last_ack;
            if (!time_arg(argv[++i], dst)) {
                fprintf(stderr, "mailroom rules: %s: not a date: %s\n", a,
                        argv[i]);
                return MR_EXIT_USAGE;
            }
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return MR_EXIT_OK;
        } else if ((a[0] != '-' || strcmp(a, "-") == 0) && msg == NULL)
            msg = a;
        else
            goto bad;
    }
    if (msg == NULL || rules == NULL)
        goto bad;

    struct mr_rules *rs = NULL;
    int st = load_rules(rules, &rs);
    if (st != MR_EXIT_OK) {
        json_decref(rcpts);
        return st;
    }
    struct mr_buf raw;
    mr_buf_init(&raw, MAX_MESSAGE);
    st = read_message(msg, &raw);
    json_t *ev = NULL;
    struct mr_error err = {0};
    if (st == MR_EXIT_OK &&
        mr_rules_event_from_raw(raw.p ? raw.p : "", raw.len, &ev, &err) < 0) {
        fprintf(stderr, "mailroom rules: %s: %s\n", msg, err.msg);
        st = MR_EXIT_DATAERR;
    }
    if (st == MR_EXIT_OK && (json_array_size(rcpts) || mail_from)) {
        json_t *env = json_object();
        json_object_set(env, "rcpt_to", rcpts);
        json_object_set_new(env, "mail_from",
                            mail_from ? json_string(mail_from) : json_null());
        json_object_set_new(ev, "envelope", env);
        /* As the worker does: the envelope sender informs the classifier
         * (a null sender is a bounce). */
        struct mr_classification c;
        if (mr_classify_event(ev, mail_from, &c, NULL) == 0)
            json_object_set_new(ev, "auto", mr_classify_to_json(&c));
    }
    if (st == MR_EXIT_OK) {
        if (tenant == NULL)
            tenant = mr_rules_tenant_count(rs) == 1
                         ? mr_rules_tenant_name(rs, 0)
                         : "default";
        struct mr_arena *arena = mr_arena_new();
        struct mr_rules_msg m;
        mr_rules_msg_from_event(&m, ev, arena);
        m.tenant = tenant;
        m.size = raw.len;
        m.is_new = !reply;
        m.previous_tickets = prev;
        m.last_ack_at = last_ack;
        if (received == 0)
            received = mr_clock_wall_ms();
        m.received_at = received;
        struct mr_rules_scratch *s = mr_rules_scratch_new();
        struct mr_rules_result r;
        mr_rules_result_init(&r);
        if (mr_rules_eval(rs, tenant, &m, s, &r, &err) < 0) {
            fprintf(stderr, "mailroom rules: %s\n", err.msg);
            st = MR_EXIT_SOFTWARE;
        } else {
            struct mr_buf out;
            mr_buf_init(&out, 0);
            struct mr_json j;
            mr_json_init(&j, &out, true);
            mr_rules_result_write_json(&r, &j);
            mr_buf_putc(&out, '\n');
            fwrite(out.p, 1, out.len, stdout);
            mr_buf_release(&out);
        }
        mr_rules_result_release(&r);
        mr_rules_scratch_free(&s);
        mr_arena_free(&arena);
    }
    json_decref(ev);
    json_decref(rcpts);
    mr_buf_release(&raw);
    mr_rules_free(&rs);
    return st;
bad:
    json_decref(rcpts);
    usage(stderr);
    return MR_EXIT_USAGE;
}

int mr_cli_rules(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return check(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "test") == 0)
        return test(argc - 1, argv + 1);
    if (argc >= 2 &&
        (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return MR_EXIT_OK;
    }
    usage(stderr);
    return MR_EXIT_USAGE;
}
