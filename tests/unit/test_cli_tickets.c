/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for `mailroom tickets list|show` (src/cli/tickets.c).
 *
 * The command lives in the binary, not in mailroom_core, so its source is
 * compiled into this program (with src/cli/instance.c, which reads
 * --config/--data and loads a real configuration file) and the store is
 * faked here, as in test_http_api.c: the fakes stand in for exactly the
 * store functions the command and src/http/ticket_json.c call, so the
 * linker never pulls the real store into this program.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli/instance.c"
#include "cli/tickets.c"
#include "ticket/thread.h"

/* ---- fakes -------------------------------------------------------------- */

struct mr_store {
    int unused;
};
static struct mr_store the_store;

#define TOTAL_TICKETS 300

static struct {
    int open_rc, store_rc;
    int opens, closes;
    char url[512];
    int list_calls;
    int last_limit;
    char tenant[65];
    char f_status[32], f_requester[400], f_queue[64], f_priority[32];
    int64_t asked_number;
} fk;

int mr_store_open(const struct mr_store_options *opt, struct mr_store **out,
                  struct mr_error *err)
{
    snprintf(fk.url, sizeof fk.url, "%s", opt->url ? opt->url : "");
    if (fk.open_rc < 0) {
        *out = NULL;
        return mr_error_set(err, fk.open_rc, "cannot open");
    }
    fk.opens++; /* only what must be closed */
    *out = &the_store;
    return 0;
}

void mr_store_close(struct mr_store *st)
{
    if (st)
        fk.closes++;
}

static void fill_ticket(struct mr_ticket_view *t, int64_t number,
                        const char *tenant)
{
    memset(t, 0, sizeof *t);
    t->id = 1000 + number;
    t->number = number;
    t->tenant = strdup(tenant);
    char s[160];
    if (number == 7)
        /* A hostile subject: a screen clear, a bidi override, and long. */
        snprintf(s, sizeof s,
                 "Invoice \x1b[2J\xe2\x80\xae overdue and this subject goes "
                 "on and on past any column width that a terminal has");
    else
        snprintf(s, sizeof s, "Subject %lld", (long long)number);
    t->subject = strdup(s);
    t->status = strdup(number == 7 ? "pending" : "open");
    t->priority = strdup("high");
    t->queue = number == 7 ? strdup("billing") : NULL;
    t->tags_json = strdup(number == 7 ? "[\"vip\",\"eu\"]" : "[]");
    t->applied_rules_json = strdup("[{\"rule\":\"vip\"}]");
    t->requester = strdup("alice@customer.example");
    t->linked_ticket_id = number == 7 ? 1003 : 0;
    t->fields_json =
        strdup(number == 7 ? "{\"invoice\":\"INV-1\\u001b[2J\"}" : "{}");
    t->message_count = 2;
    t->created_at = 1736157600000LL;
    t->updated_at = 1736157600000LL + 60000 * number;
}

/* Numbers TOTAL_TICKETS down to 1; the cursor is the next index. */
int mr_store_list_tickets(struct mr_store *st, const char *tenant,
                          const struct mr_ticket_filter *filter,
                          const char *cursor, int limit,
                          struct mr_ticket_view **tickets, size_t *n,
                          char **next_cursor, struct mr_error *err)
{
    assert_ptr_equal(st, &the_store);
    *tickets = NULL;
    *n = 0;
    *next_cursor = NULL;
    fk.list_calls++;
    fk.last_limit = limit;
    snprintf(fk.tenant, sizeof fk.tenant, "%s", tenant);
    snprintf(fk.f_status, sizeof fk.f_status, "%s",
             filter && filter->status ? filter->status : "(any)");
    snprintf(fk.f_requester, sizeof fk.f_requester, "%s",
             filter && filter->requester ? filter->requester : "(any)");
    snprintf(fk.f_queue, sizeof fk.f_queue, "%s",
             filter && filter->queue ? filter->queue : "(any)");
    snprintf(fk.f_priority, sizeof fk.f_priority, "%s",
             filter && filter->priority ? filter->priority : "(any)");
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "disk on fire");
    assert_true(limit >= 1 && limit <= 200);
    size_t start = cursor ? (size_t)strtoul(cursor, NULL, 10) : 0;
    size_t k = 0;
    struct mr_ticket_view *v = calloc((size_t)limit, sizeof *v);
    for (size_t i = start; i < TOTAL_TICKETS && k < (size_t)limit; i++)
        fill_ticket(&v[k++], TOTAL_TICKETS - (int64_t)i, tenant);
    if (start + k < TOTAL_TICKETS) {
        char c[16];
        snprintf(c, sizeof c, "%zu", start + k);
        *next_cursor = strdup(c);
    }
    *tickets = v;
    *n = k;
    return 0;
}

static void fill_message(struct mr_message_view *m, size_t i)
{
    memset(m, 0, sizeof *m);
    m->id = 50 + (int64_t)i;
    m->message_id = strdup(i == 0 ? "m1@customer.example" : "m2@x.example");
    m->direction = strdup("inbound");
    m->inbox = strdup("support@acme.example");
    m->subject = strdup("Invoice overdue");
    m->received_at = 1736157600500LL;
    if (i == 0) {
        m->kind = strdup("message");
        m->threaded_by = strdup("new");
        m->event_json =
            strdup("{\"from\":{\"email\":\"alice@customer.example\",\"name\":"
                   "\"Alice\"},\"cc\":[{\"email\":\"bob@customer.example\","
                   "\"name\":null}],\"date\":\"2025-01-06T09:59:00Z\"}");
        m->text = strdup("line 1\r\nline 2 \x1b]0;owned\x07\n\nline 4\n"
                         "line 5\nline 6\nline 7\nline 8\n");
        m->nattachments = 1;
        m->attachments = calloc(1, sizeof *m->attachments);
        m->attachments[0].id = 9;
        m->attachments[0].filename = strdup("invoice.pdf");
        m->attachments[0].content_type = strdup("application/pdf");
        m->attachments[0].size = 48213;
        m->attachments[0].sha256 = strdup("9b1e");
    } else {
        m->kind = strdup("delivery_failure");
        m->threaded_by = strdup("in_reply_to");
        m->thread_detail = strdup("in-reply-to m1@customer.example");
        m->unverified = true;
        m->auto_json = strdup("{\"kind\":\"bounce\",\"reason\":\"dsn\"}");
        m->from_email = strdup("mailer-daemon@x.example");
        m->text = strdup("short");
    }
}

int mr_store_get_ticket_by_number(struct mr_store *st, const char *tenant,
                                  int64_t number, struct mr_ticket_view *out,
                                  struct mr_error *err)
{
    assert_ptr_equal(st, &the_store);
    memset(out, 0, sizeof *out);
    fk.asked_number = number;
    snprintf(fk.tenant, sizeof fk.tenant, "%s", tenant);
    if (fk.store_rc < 0)
        return mr_error_set(err, fk.store_rc, "disk on fire");
    if (number != 7)
        return mr_error_set(err, MR_ENOTFOUND, "no ticket");
    fill_ticket(out, number, tenant);
    out->nmessages = 2;
    out->messages = calloc(2, sizeof *out->messages);
    for (size_t i = 0; i < 2; i++)
        fill_message(&out->messages[i], i);
    return 0;
}

static void message_view_clear(struct mr_message_view *m)
{
    free(m->message_id);
    free(m->direction);
    free(m->kind);
    free(m->threaded_by);
    free(m->thread_detail);
    free(m->auto_json);
    free(m->inbox);
    for (size_t i = 0; i < m->nattachments; i++) {
        free(m->attachments[i].filename);
        free(m->attachments[i].content_type);
        free(m->attachments[i].sha256);
        free(m->attachments[i].scan);
    }
    free(m->attachments);
    free(m->from_email);
    free(m->from_name);
    free(m->subject);
    free(m->text);
    free(m->html);
    free(m->event_json);
    free(m->raw_sha256);
}

void mr_ticket_view_clear(struct mr_ticket_view *t)
{
    free(t->tenant);
    free(t->subject);
    free(t->status);
    free(t->priority);
    free(t->queue);
    free(t->assignee);
    free(t->tags_json);
    free(t->applied_rules_json);
    free(t->fields_json);
    free(t->requester);
    for (size_t i = 0; i < t->nmessages; i++)
        message_view_clear(&t->messages[i]);
    free(t->messages);
    memset(t, 0, sizeof *t);
}

void mr_ticket_list_free(struct mr_ticket_view *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mr_ticket_view_clear(&t[i]);
    free(t);
}

/* Three ignored messages, ids 3..1; the cursor is the last id shown. */
int mr_store_list_ignored(struct mr_store *st, const char *tenant,
                          const char *cursor, int limit,
                          struct mr_ignored_view **out, size_t *n,
                          char **next_cursor, struct mr_error *err)
{
    (void)st;
    (void)err;
    snprintf(fk.tenant, sizeof fk.tenant, "%s", tenant);
    fk.list_calls++;
    fk.last_limit = limit;
    int64_t top = cursor ? atoll(cursor) - 1 : 3;
    size_t k = 0;
    *out = calloc(3, sizeof **out);
    for (int64_t id = top; id >= 1 && k < (size_t)limit; id--, k++) {
        struct mr_ignored_view *v = &(*out)[k];
        v->id = id;
        char mid[48];
        snprintf(mid, sizeof mid, "ign%lld@list.example", (long long)id);
        v->message_id = strdup(mid);
        v->from_email = strdup("news@list.example");
        v->subject = strdup(id == 3 ? "Digest \x1b[2J" : "Digest");
        v->applied_rules_json =
            strdup("[{\"name\":\"DropLists\",\"decision\":\"ignore\"}]");
        v->matched_rules_json = strdup("[\"DropLists\"]");
        v->received_at = 1736157600000LL;
    }
    *n = k;
    *next_cursor = NULL;
    if (k > 0 && (*out)[k - 1].id > 1) {
        char c[24];
        snprintf(c, sizeof c, "%lld", (long long)(*out)[k - 1].id);
        *next_cursor = strdup(c);
    }
    return 0;
}

void mr_ignored_list_free(struct mr_ignored_view *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].message_id);
        free(v[i].from_email);
        free(v[i].subject);
        free(v[i].applied_rules_json);
        free(v[i].matched_rules_json);
    }
    free(v);
}

/* `tickets release` reaches the store through these; the command's own
 * tests are end to end (tests/e2e/test_ignored_release.py). */
void mr_ignored_view_clear(struct mr_ignored_view *v)
{
    if (v)
        memset(v, 0, sizeof *v);
}

int mr_store_get_ignored(struct mr_store *st, const char *tenant, int64_t id,
                         struct mr_ignored_view *out, struct mr_error *err)
{
    (void)st;
    (void)tenant;
    (void)id;
    memset(out, 0, sizeof *out);
    return mr_error_set(err, MR_ENOTFOUND, "no ignored message");
}

int mr_store_release_ignored(struct mr_store *st, const char *tenant,
                             int64_t id, const char *by, int64_t *job_id,
                             struct mr_error *err)
{
    (void)st;
    (void)tenant;
    (void)id;
    (void)by;
    *job_id = 0;
    return mr_error_set(err, MR_ENOTFOUND, "no ignored message");
}

int mr_store_thread_secret(struct mr_store *st,
                           unsigned char out[MR_STORE_SECRET_LEN],
                           struct mr_error *err)
{
    (void)st;
    (void)err;
    memset(out, 0x5c, MR_STORE_SECRET_LEN);
    return 0;
}

void mr_thread_token(const struct mr_thread_config *cfg, const char *tenant,
                     int64_t number, char *out, size_t cap)
{
    snprintf(out, cap, "t%lld.%s%02x", (long long)number, tenant,
             cfg->secret[0]);
}

/* `tickets update` is proven against the real store (test_store_ticket_update,
 * e2e/test_ticket_updates); here it only has to link. */
int mr_store_update_ticket(struct mr_store *st, const char *tenant,
                           int64_t id, const struct mr_ticket_patch *p,
                           struct mr_ticket_update_result *res,
                           struct mr_error *err)
{
    (void)st;
    (void)tenant;
    (void)id;
    (void)p;
    memset(res, 0, sizeof *res);
    return mr_error_set(err, MR_EIO, "not in this fake");
}

/* ---- fixture ------------------------------------------------------------ */

struct fx {
    char dir[64];
    char one[128], two[128]; /* config files: one tenant, two tenants */
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int fx_up(void **state)
{
    memset(&fk, 0, sizeof fk);
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mr-cli-tickets-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->one, sizeof f->one, "%s/one.yaml", f->dir);
    snprintf(f->two, sizeof f->two, "%s/two.yaml", f->dir);
    write_file(f->one, "tenants:\n"
                       "  - name: acme\n"
                       "    inboxes: [support@acme.example]\n");
    write_file(f->two, "tenants:\n"
                       "  - name: acme\n"
                       "    inboxes: [support@acme.example]\n"
                       "  - name: globex\n"
                       "    inboxes: [help@globex.example]\n");
    *state = f;
    return 0;
}

static int fx_down(void **state)
{
    struct fx *f = *state;
    unlink(f->one);
    unlink(f->two);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Runs the command on a memory stream; *out (free()) gets what it
 * printed. Every store opened is closed again. */
static int run(struct fx *f, const char *config, char **out, int argc,
               const char **args)
{
    char *argv[24];
    int n = 0;
    argv[n++] = "tickets";
    for (int i = 0; i < argc; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = "--config";
    argv[n++] = (char *)config;
    argv[n++] = "--data";
    argv[n++] = f->dir;
    argv[n] = NULL;
    size_t len = 0;
    *out = NULL;
    FILE *mem = open_memstream(out, &len);
    assert_non_null(mem);
    int rc = tickets_run(n, argv, mem);
    assert_int_equal(fclose(mem), 0);
    assert_int_equal(fk.opens, fk.closes);
    return rc;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- list --------------------------------------------------------------- */

static void list_table(void **state)
{
    struct fx *f = *state;
    char *out;
    const char *args[] = {"list", "--limit", "5"};
    assert_int_equal(run(f, f->one, &out, 3, args), MR_EXIT_OK);
    /* The only tenant is the default; the data folder names the store. */
    assert_string_equal(fk.tenant, "acme");
    assert_non_null(strstr(fk.url, f->dir));
    assert_int_equal(fk.last_limit, 5);
    assert_int_equal(count_lines(out), 1 + 5);
    assert_true(strncmp(out, "NUMBER  STATUS  PRIORITY REQUESTER", 34) == 0);
    assert_non_null(strstr(out, "\n#300    open    high     "
                                "alice@customer.example           "
                                "       2 2025-01-06 15:00 Subject 300\n"));
    free(out);

    /* Filters: lower-cased requester, every value reaches the store. */
    const char *fargs[] = {"list",        "--status",     "solved",
                           "--priority",  "urgent",       "--queue=EU",
                           "--requester", "Bob@X.Example"};
    assert_int_equal(run(f, f->one, &out, 8, fargs), MR_EXIT_OK);
    assert_string_equal(fk.f_status, "solved");
    assert_string_equal(fk.f_priority, "urgent");
    assert_string_equal(fk.f_queue, "EU");
    assert_string_equal(fk.f_requester, "bob@x.example");
    assert_int_equal(fk.last_limit, 50); /* the default */
    assert_int_equal(count_lines(out), 1 + 50);
    free(out);
}

static void list_pages_and_json(void **state)
{
    struct fx *f = *state;
    char *out;
    /* More than a page: the store is asked page by page up to the limit. */
    const char *args[] = {"list", "--limit", "250"};
    assert_int_equal(run(f, f->one, &out, 3, args), MR_EXIT_OK);
    assert_int_equal(fk.list_calls, 2);
    assert_int_equal(fk.last_limit, 50);
    assert_int_equal(count_lines(out), 1 + 250);
    assert_non_null(strstr(out, "\n#51 "));
    assert_null(strstr(out, "\n#50 "));
    free(out);

    /* All of them: the pages end when the store has no cursor. */
    fk.list_calls = 0;
    const char *all[] = {"list", "--limit", "100000"};
    assert_int_equal(run(f, f->one, &out, 3, all), MR_EXIT_OK);
    assert_int_equal(fk.list_calls, 2);
    assert_int_equal(count_lines(out), 1 + TOTAL_TICKETS);
    free(out);

    const char *jargs[] = {"list", "--json", "--limit", "3"};
    assert_int_equal(run(f, f->one, &out, 4, jargs), MR_EXIT_OK);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    json_t *ts = json_object_get(j, "tickets");
    assert_int_equal(json_array_size(ts), 3);
    json_t *t = json_array_get(ts, 0);
    assert_int_equal(json_integer_value(json_object_get(t, "number")), 300);
    assert_string_equal(json_string_value(json_object_get(t, "updated_at")),
                        "2025-01-06T15:00:00.000Z");
    /* The listing's summary, as the API gives it. */
    assert_int_equal(json_object_size(t), 13);
    assert_true(json_is_integer(json_object_get(t, "version")));
    assert_string_equal(json_string_value(json_object_get(j, "next_cursor")),
                        "3");
    json_decref(j);
    free(out);
}

static void list_refusals(void **state)
{
    struct fx *f = *state;
    char *out;
    static const char *const bad[][3] = {
        {"list", "--status", "resolved"}, {"list", "--priority", "p1"},
        {"list", "--limit", "0"},         {"list", "--limit", "12x"},
        {"list", "--limit", "100001"},    {"list", "extra", "word"},
        {"list", "--json", "--bogus"},    {"show", "7", "--status=open"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(run(f, f->one, &out, 3, (const char **)bad[i]),
                         MR_EXIT_USAGE);
        free(out);
    }
    /* None of them got as far as the store. */
    assert_int_equal(fk.opens, 0);
    assert_int_equal(fk.list_calls, 0);

    const char *sub[] = {"delete"};
    assert_int_equal(run(f, f->one, &out, 1, sub), MR_EXIT_USAGE);
    free(out);
    char *argv[] = {"tickets", NULL};
    assert_int_equal(tickets_run(1, argv, stdout), MR_EXIT_USAGE);

    /* The store failing. */
    fk.store_rc = MR_EIO;
    const char *args[] = {"list"};
    assert_int_equal(run(f, f->one, &out, 1, args), MR_EXIT_IOERR);
    free(out);
    fk.store_rc = 0;
    fk.open_rc = MR_EIO;
    assert_int_equal(run(f, f->one, &out, 1, args), MR_EXIT_IOERR);
    free(out);
    fk.open_rc = 0;
}

static void tenant_choice(void **state)
{
    struct fx *f = *state;
    char *out;
    /* Two tenants: --tenant is required, and must be one of them. */
    const char *args[] = {"list"};
    assert_int_equal(run(f, f->two, &out, 1, args), MR_EXIT_USAGE);
    free(out);
    const char *wrong[] = {"list", "--tenant", "initech"};
    assert_int_equal(run(f, f->two, &out, 3, wrong), MR_EXIT_DATAERR);
    free(out);
    assert_int_equal(fk.list_calls, 0);
    const char *right[] = {"list", "--tenant", "globex"};
    assert_int_equal(run(f, f->two, &out, 3, right), MR_EXIT_OK);
    assert_string_equal(fk.tenant, "globex");
    free(out);
    const char *show[] = {"show", "--tenant=acme", "#7"};
    assert_int_equal(run(f, f->two, &out, 3, show), MR_EXIT_OK);
    assert_string_equal(fk.tenant, "acme");
    assert_int_equal(fk.asked_number, 7);
    free(out);
}

/* ---- show --------------------------------------------------------------- */

static void show_as_text(void **state)
{
    struct fx *f = *state;
    char *out;
    const char *args[] = {"show", "7"};
    assert_int_equal(run(f, f->one, &out, 2, args), MR_EXIT_OK);
    assert_int_equal(fk.asked_number, 7);

    /* Nothing from mail reaches the terminal as a control sequence. */
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\x07'));
    assert_null(strchr(out, '\r'));
    assert_null(strstr(out, "\xe2\x80\xae"));
    assert_true(strncmp(out, "#7 Invoice ?[2J? overdue and this", 33) == 0);

    assert_non_null(strstr(out, "\n  status       pending\n"));
    assert_non_null(strstr(out, "\n  queue        billing\n"));
    assert_non_null(strstr(out, "\n  assignee     -\n"));
    assert_non_null(strstr(out, "\n  tags         vip, eu\n"));
    assert_non_null(strstr(out, "\n  follows      ticket id 1003 (closed)\n"));
    assert_non_null(strstr(out, "\n  reply to     "
                                "support+t7.acme5c@acme.example\n"));
    assert_non_null(strstr(out, "\n  rules        1 (--json lists them)\n"));
    assert_non_null(strstr(out, "\n  field        invoice: INV-1?[2J\n"));

    assert_non_null(strstr(out, "\n--- message 1 of 2 (id 50) "
                                "2025-01-06T09:59:00Z ---\n"));
    assert_non_null(strstr(out, "\n  from         Alice "
                                "<alice@customer.example>\n"));
    assert_non_null(strstr(out, "\n  cc           bob@customer.example\n"));
    assert_non_null(strstr(out, "\n  threaded by  new\n"));
    assert_non_null(strstr(out, "\n  auto         none\n"));
    assert_non_null(strstr(out, "\n  attachments  invoice.pdf "
                                "(application/pdf, 48213 bytes)\n"));
    /* The first six lines of the text, then how many more. */
    assert_non_null(strstr(out, "\n    line 1\n    line 2 ?]0;owned?\n"
                                "\n    line 4\n    line 5\n"
                                "    line 6\n    [2 more lines]\n"));
    assert_null(strstr(out, "line 7"));

    /* The bounce: no Date, so the receipt time; the join is flagged. */
    assert_non_null(strstr(out, "\n--- message 2 of 2 (id 51) "
                                "2025-01-06T10:00:00.500Z ---\n"));
    assert_non_null(strstr(out, "\n  from         mailer-daemon@x.example\n"));
    assert_non_null(strstr(out, "\n  kind         delivery_failure\n"));
    assert_non_null(strstr(out, "\n  threaded by  in_reply_to (in-reply-to "
                                "m1@customer.example) UNVERIFIED"));
    assert_non_null(strstr(out, "\n  auto         bounce (dsn)\n"));
    assert_non_null(strstr(out, "\n    short\n"));
    free(out);
}

static void ignored_list(void **state)
{
    struct fx *f = *state;
    char *out;
    const char *args[] = {"ignored", "--limit", "2"};
    assert_int_equal(run(f, f->one, &out, 3, args), MR_EXIT_OK);
    assert_string_equal(fk.tenant, "acme");
    assert_int_equal(count_lines(out), 1 + 2);
    assert_true(strncmp(out, "ID       RECEIVED (UTC)", 23) == 0);
    assert_non_null(strstr(out, "\n3        2025-01-06 10:00 "
                                "news@list.example"));
    assert_non_null(strstr(out, "Digest ?[2J\n"));
    assert_null(strchr(out, '\x1b'));
    free(out);

    fk.list_calls = 0;
    const char *jargs[] = {"ignored", "--json"};
    assert_int_equal(run(f, f->one, &out, 2, jargs), MR_EXIT_OK);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    json_t *list = json_object_get(j, "ignored");
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(list, 2), "message_id")),
                        "ign1@list.example");
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    free(out);

    const char *bad[] = {"ignored", "--status", "open"};
    assert_int_equal(run(f, f->one, &out, 3, bad), MR_EXIT_USAGE);
    free(out);
}

static void show_json_is_the_api_document(void **state)
{
    struct fx *f = *state;
    char *out;
    const char *args[] = {"show", "--json", "7"};
    assert_int_equal(run(f, f->one, &out, 3, args), MR_EXIT_OK);

    /* Byte for byte what GET /api/v1/tickets/{id} writes for the ticket. */
    struct mr_config *cfg = NULL;
    assert_int_equal(mr_config_load(f->one, f->dir, &cfg, NULL, NULL), 0);
    struct mr_ticket_view t;
    assert_int_equal(
        mr_store_get_ticket_by_number(&the_store, "acme", 7, &t, NULL), 0);
    char reply[MR_HTTP_REPLY_ADDRESS_LEN + 1];
    assert_int_equal(mr_http_reply_address(cfg, &the_store, &t, reply, NULL),
                     0);
    struct mr_buf b;
    struct mr_json j;
    mr_buf_init(&b, 0);
    mr_json_init(&j, &b, false);
    mr_http_ticket_json(&j, &t, reply);
    mr_buf_putc(&b, '\n');
    assert_string_equal(out, b.p);
    mr_buf_release(&b);
    mr_ticket_view_clear(&t);
    mr_config_free(cfg);

    json_t *doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(
        json_string_value(json_object_get(doc, "reply_address")),
        "support+t7.acme5c@acme.example");
    assert_int_equal(json_array_size(json_object_get(doc, "messages")), 2);
    json_decref(doc);
    free(out);
}

static void show_refusals(void **state)
{
    struct fx *f = *state;
    char *out;
    const char *missing[] = {"show", "8"};
    assert_int_equal(run(f, f->one, &out, 2, missing), MR_EXIT_DATAERR);
    assert_int_equal(fk.asked_number, 8);
    assert_string_equal(out, "");
    free(out);

    static const char *const bad[] = {"0",  "x7", "#",
                                      "-7", "07", "1234567890123456789"};
    fk.asked_number = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *args[] = {"show", bad[i]};
        assert_int_equal(run(f, f->one, &out, 2, args), MR_EXIT_USAGE);
        free(out);
    }
    const char *none[] = {"show"};
    assert_int_equal(run(f, f->one, &out, 1, none), MR_EXIT_USAGE);
    free(out);
    const char *two[] = {"show", "7", "8"};
    assert_int_equal(run(f, f->one, &out, 3, two), MR_EXIT_USAGE);
    free(out);
    assert_int_equal(fk.asked_number, 0);

    fk.store_rc = MR_EIO;
    const char *args[] = {"show", "7"};
    assert_int_equal(run(f, f->one, &out, 2, args), MR_EXIT_IOERR);
    free(out);
    fk.store_rc = 0;
}

/* ---- terminal safety ---------------------------------------------------- */

static void safe_printing(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    /* C0, DEL, C1 (U+0085, U+009B), bidi controls, invalid bytes, a tab. */
    size_t n = put_safe(mem,
                        "a\x01"
                        "b\x7f"
                        "c\xc2\x85\xc2\x9b"
                        "d\xe2\x81\xa6"
                        "e\xff"
                        "f\tg\xc3\xa9",
                        0);
    fputc('|', mem);
    /* Cut at a width, counted in characters, not bytes. */
    size_t m = put_safe(mem,
                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                        "\xc3\xa9",
                        5);
    fputc('|', mem);
    size_t k = put_safe(mem, NULL, 5);
    fclose(mem);
    assert_string_equal(out, "a?b?c??d?e\xef\xbf\xbd"
                             "f g\xc3\xa9|\xc3\xa9\xc3\xa9...|-");
    assert_int_equal(n, 15);
    assert_int_equal(m, 5);
    assert_int_equal(k, 1);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(list_table, fx_up, fx_down),
        cmocka_unit_test_setup_teardown(list_pages_and_json, fx_up, fx_down),
        cmocka_unit_test_setup_teardown(list_refusals, fx_up, fx_down),
        cmocka_unit_test_setup_teardown(tenant_choice, fx_up, fx_down),
        cmocka_unit_test_setup_teardown(show_as_text, fx_up, fx_down),
        cmocka_unit_test_setup_teardown(show_json_is_the_api_document, fx_up,
                                        fx_down),
        cmocka_unit_test_setup_teardown(show_refusals, fx_up, fx_down),
        cmocka_unit_test_setup_teardown(ignored_list, fx_up, fx_down),
        cmocka_unit_test(safe_printing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
