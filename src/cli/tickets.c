/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tickets.c - `mailroom tickets list|show N|ignored|update N|release ID`:
 * the ticket API from the command line, straight from the database (no
 * server needed; a release is queued here and delivered by a running
 * server's workers). `update` goes through the same store call as PATCH
 * /api/v1/tickets/{id}, so it writes the same ticket.updated event, with
 * actor "cli".
 *
 * `show --json` prints the very document GET /api/v1/tickets/{id}
 * answers (src/http/ticket_json.h writes both), and the text form is
 * rendered from that same document, so the two never disagree.
 *
 * Everything shown comes from mail, i.e. from strangers: subjects, names
 * and bodies are printed with control characters (C0, DEL, C1) and
 * bidirectional overrides replaced, so that a message cannot move the
 * cursor, rewrite the screen or reorder what an operator reads.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/instance.h"
#include "http/ticket_json.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/utf8.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 100000
#define PAGE_MAX 200   /* tickets per store call, as the API's */
#define BODY_LINES 6   /* lines of each message's text shown */
#define BODY_WIDTH 100 /* code points per shown line */

static void usage(void)
{
    fputs("usage: mailroom tickets list [--tenant T] [--status S] "
          "[--queue Q] [--priority P]\n"
          "                             [--requester ADDR] [--limit N] "
          "[--json]\n"
          "       mailroom tickets show N [--tenant T] [--json]\n"
          "       mailroom tickets ignored [--tenant T] [--limit N] [--json]\n"
          "       mailroom tickets release ID [--tenant T] [--json]\n"
          "       mailroom tickets update N [--tenant T] [--status S] "
          "[--priority P]\n"
          "                             [--queue Q] [--assignee A] "
          "[--tags a,b] [--add-tags a,b]\n"
          "                             [--remove-tags a,b] "
          "[--if-version V] [--json]\n"
          "       (--queue \"\" and --assignee \"\" clear them)\n"
          "(each also takes --data DIR and --config FILE; --tenant may be "
          "left out when\nthe configuration has exactly one tenant)\n",
          stderr);
}

/* ---- printing mail content on a terminal -------------------------------- */

static bool unsafe(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Prints s (NULL: "-") cut to width code points ("..." marks the cut; 0:
 * no limit), unsafe characters replaced (a tab by a space, the rest by
 * '?'). Returns the code points printed. */
static size_t put_safe(FILE *out, const char *s, size_t width)
{
    if (s == NULL)
        s = "-";
    size_t n = strlen(s), total = 0;
    uint32_t cp;
    for (size_t i = 0; i < n; total++)
        i += mr_utf8_next(s + i, n - i, &cp);
    size_t keep = total;
    bool cut = width > 0 && total > width;
    if (cut)
        keep = width > 3 ? width - 3 : width;
    size_t i = 0;
    for (size_t k = 0; k < keep; k++) {
        size_t len = mr_utf8_next(s + i, n - i, &cp);
        if (cp == '\t')
            fputc(' ', out);
        else if (unsafe(cp))
            fputc('?', out);
        else if (cp == 0xfffd)
            fputs("\xef\xbf\xbd", out); /* also for invalid bytes */
        else
            fwrite(s + i, 1, len, out);
        i += len;
    }
    if (cut && width > 3)
        fputs("...", out);
    return cut ? width : total;
}

/* A table cell: s cut or padded to width, then one space. */
static void cell(FILE *out, const char *s, size_t width)
{
    for (size_t k = put_safe(out, s, width); k < width; k++)
        fputc(' ', out);
    fputc(' ', out);
}

/* UTC; to the minute for tables, to the second (and said) otherwise. */
static void when(int64_t ms, bool seconds, char out[32])
{
    if (ms <= 0) {
        snprintf(out, 32, "-");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    if (seconds)
        strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm);
    else
        strftime(out, 32, "%Y-%m-%d %H:%M", &tm);
}

/* ---- list --------------------------------------------------------------- */

struct list_args {
    const char *tenant;
    struct mr_ticket_filter filter;
    int limit;
    bool json;
};

static void list_row(FILE *out, const struct mr_ticket_view *t)
{
    char num[24], msgs[24], upd[32];
    snprintf(num, sizeof num, "#%" PRId64, t->number);
    snprintf(msgs, sizeof msgs, "%" PRId64, t->message_count);
    when(t->updated_at, false, upd);
    cell(out, num, 7);
    cell(out, t->status, 7);
    cell(out, t->priority, 8);
    cell(out, t->requester, 32);
    fprintf(out, "%8s ", msgs);
    cell(out, upd, 16);
    put_safe(out, t->subject, 72);
    fputc('\n', out);
}

static int list(FILE *out, struct mr_store *st, const struct list_args *a)
{
    struct mr_error err = {0};
    struct mr_buf b;
    struct mr_json j;
    mr_buf_init(&b, 0);
    mr_json_init(&j, &b, false);
    if (a->json) {
        mr_json_obj_begin(&j);
        mr_json_key(&j, "tickets");
        mr_json_arr_begin(&j);
    } else {
        fprintf(out, "%-7s %-7s %-8s %-32s %8s %-16s %s\n", "NUMBER", "STATUS",
                "PRIORITY", "REQUESTER", "MESSAGES", "UPDATED (UTC)",
                "SUBJECT");
    }
    int rc = MR_EXIT_OK;
    size_t shown = 0;
    char *cursor = NULL;
    /* Page through; the limit bounds what is printed. */
    do {
        struct mr_ticket_view *t = NULL;
        size_t n = 0;
        char *next = NULL;
        size_t left = (size_t)a->limit - shown;
        int want = left > PAGE_MAX ? PAGE_MAX : (int)left;
        if (mr_store_list_tickets(st, a->tenant, &a->filter, cursor, want, &t,
                                  &n, &next, &err) != MR_OK) {
            fprintf(stderr, "mailroom tickets list: %s\n", err.msg);
            rc = MR_EXIT_IOERR;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (a->json)
                mr_http_ticket_summary_json(&j, &t[i]);
            else
                list_row(out, &t[i]);
        }
        shown += n;
        mr_ticket_list_free(t, n);
        free(cursor);
        cursor = next;
        /* A store that gives an empty page with a cursor must not spin. */
        if (n == 0)
            break;
    } while (cursor != NULL && shown < (size_t)a->limit);

    if (rc == MR_EXIT_OK && a->json) {
        mr_json_arr_end(&j);
        mr_json_key(&j, "next_cursor");
        mr_json_cstr(&j, cursor);
        mr_json_obj_end(&j);
        fprintf(out, "%s\n", b.p);
    } else if (rc == MR_EXIT_OK && shown == 0) {
        fputs("no tickets\n", stderr);
    }
    free(cursor);
    mr_buf_release(&b);
    return rc;
}

/* ---- ignored ------------------------------------------------------------ */

/* What the rules ignored (docs/rules.md), newest first; --json prints
 * the document GET /api/v1/ignored answers. */
static int list_ignored(FILE *out, struct mr_store *st,
                        const struct list_args *a)
{
    struct mr_error err = {0};
    struct mr_buf b;
    struct mr_json j;
    mr_buf_init(&b, 0);
    mr_json_init(&j, &b, false);
    if (a->json) {
        mr_json_obj_begin(&j);
        mr_json_key(&j, "ignored");
        mr_json_arr_begin(&j);
    } else {
        fprintf(out, "%-8s %-16s %-32s %-24s %s\n", "ID", "RECEIVED (UTC)",
                "FROM", "RULES", "SUBJECT");
    }
    int rc = MR_EXIT_OK;
    size_t shown = 0;
    char *cursor = NULL;
    do {
        struct mr_ignored_view *v = NULL;
        size_t n = 0;
        char *next = NULL;
        size_t left = (size_t)a->limit - shown;
        int want = left > PAGE_MAX ? PAGE_MAX : (int)left;
        if (mr_store_list_ignored(st, a->tenant, cursor, want, &v, &n, &next,
                                  &err) != MR_OK) {
            fprintf(stderr, "mailroom tickets ignored: %s\n", err.msg);
            rc = MR_EXIT_IOERR;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (a->json) {
                mr_http_ignored_json(&j, &v[i]);
                continue;
            }
            char id[24], rcv[32];
            snprintf(id, sizeof id, "%" PRId64, v[i].id);
            when(v[i].received_at, false, rcv);
            cell(out, id, 8);
            cell(out, rcv, 16);
            cell(out, v[i].from_email, 32);
            cell(out, v[i].matched_rules_json, 24);
            put_safe(out, v[i].subject, 72);
            fputc('\n', out);
        }
        shown += n;
        mr_ignored_list_free(v, n);
        free(cursor);
        cursor = next;
        if (n == 0)
            break;
    } while (cursor != NULL && shown < (size_t)a->limit);

    if (rc == MR_EXIT_OK && a->json) {
        mr_json_arr_end(&j);
        mr_json_key(&j, "next_cursor");
        mr_json_cstr(&j, cursor);
        mr_json_obj_end(&j);
        fprintf(out, "%s\n", b.p);
    } else if (rc == MR_EXIT_OK && shown == 0) {
        fputs("no ignored messages\n", stderr);
    }
    free(cursor);
    mr_buf_release(&b);
    return rc;
}

/* ---- show --------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void field(FILE *out, const char *label, const char *value)
{
    fprintf(out, "  %-12s ", label);
    put_safe(out, value, 0);
    fputc('\n', out);
}

/* "Name <addr>", or the address alone. */
static void put_address(FILE *out, const json_t *a)
{
    const char *name = jstr(a, "name"), *email = jstr(a, "email");
    if (name && name[0]) {
        put_safe(out, name, 60);
        fputs(" <", out);
        put_safe(out, email, 0);
        fputc('>', out);
    } else {
        put_safe(out, email, 0);
    }
}

static void put_addresses(FILE *out, const char *label, const json_t *list)
{
    if (json_array_size(list) == 0)
        return;
    fprintf(out, "  %-12s ", label);
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        if (i > 0)
            fputs(", ", out);
        put_address(out, a);
    }
    fputc('\n', out);
}

/* The first BODY_LINES lines of text, and how many more there are. */
static void put_body(FILE *out, const char *text)
{
    if (text == NULL || text[0] == '\0')
        return;
    fputc('\n', out);
    const char *p = text;
    size_t shown = 0, more = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (shown < BODY_LINES) {
            if (len > 0) {
                char *line = mr_xstrndup(p, len);
                fputs("    ", out);
                put_safe(out, line, BODY_WIDTH);
                free(line);
            }
            fputc('\n', out);
            shown++;
        } else {
            more++;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if (more > 0)
        fprintf(out, "    [%zu more line%s]\n", more, more == 1 ? "" : "s");
}

static void show_message(FILE *out, const json_t *m, size_t k, size_t n)
{
    const char *date = jstr(m, "date");
    fprintf(out, "\n--- message %zu of %zu (id %" JSON_INTEGER_FORMAT ") ", k,
            n, json_integer_value(json_object_get(m, "id")));
    put_safe(out, date ? date : jstr(m, "received_at"), 40);
    fputs(" ---\n", out);
    fprintf(out, "  %-12s ", "from");
    if (json_is_object(json_object_get(m, "from")))
        put_address(out, json_object_get(m, "from"));
    else
        fputc('-', out);
    fputc('\n', out);
    put_addresses(out, "to", json_object_get(m, "to"));
    put_addresses(out, "cc", json_object_get(m, "cc"));
    field(out, "subject", jstr(m, "subject"));
    if (jstr(m, "kind") && strcmp(jstr(m, "kind"), "message") != 0)
        field(out, "kind", jstr(m, "kind"));

    fprintf(out, "  %-12s ", "threaded by");
    put_safe(out, jstr(m, "threaded_by"), 0);
    if (jstr(m, "thread_detail")) {
        fputs(" (", out);
        put_safe(out, jstr(m, "thread_detail"), 120);
        fputc(')', out);
    }
    if (json_is_true(json_object_get(m, "unverified")))
        fputs(" UNVERIFIED: the sender is not a participant", out);
    fputc('\n', out);

    const json_t *au = json_object_get(m, "auto");
    fprintf(out, "  %-12s ", "auto");
    put_safe(out, jstr(au, "kind"), 0);
    if (jstr(au, "reason")) {
        fputs(" (", out);
        put_safe(out, jstr(au, "reason"), 120);
        fputc(')', out);
    }
    fputc('\n', out);

    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(m, "attachments"), i, a)
    {
        fprintf(out, "  %-12s ", i == 0 ? "attachments" : "");
        put_safe(out, jstr(a, "filename"), 80);
        fputs(" (", out);
        put_safe(out, jstr(a, "content_type"), 60);
        fprintf(out, ", %" JSON_INTEGER_FORMAT " bytes)\n",
                json_integer_value(json_object_get(a, "size")));
    }
    put_body(out, jstr(m, "text"));
}

static void show_text(FILE *out, const json_t *doc,
                      const struct mr_ticket_view *t)
{
    fprintf(out, "#%" PRId64 " ", t->number);
    put_safe(out, t->subject, 0);
    fputc('\n', out);
    field(out, "status", t->status);
    field(out, "priority", t->priority);
    field(out, "queue", t->queue);
    field(out, "assignee", t->assignee);
    field(out, "requester", t->requester);

    struct mr_buf tags;
    mr_buf_init(&tags, 0);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "tags"), i, v)
    {
        if (json_is_string(v))
            mr_buf_printf(&tags, "%s%s", tags.len ? ", " : "",
                          json_string_value(v));
    }
    field(out, "tags", tags.len ? tags.p : NULL);
    mr_buf_release(&tags);

    char c[32], u[32];
    when(t->created_at, true, c);
    when(t->updated_at, true, u);
    field(out, "created", c);
    field(out, "updated", u);
    if (t->linked_ticket_id > 0)
        fprintf(out, "  %-12s ticket id %" PRId64 " (closed)\n", "follows",
                t->linked_ticket_id);
    if (jstr(doc, "reply_address"))
        field(out, "reply to", jstr(doc, "reply_address"));
    const char *fk;
    json_t *fv;
    json_object_foreach(json_object_get(doc, "fields"), fk, fv)
    {
        if (json_is_string(fv)) {
            fprintf(out, "  %-12s ", "field");
            put_safe(out, fk, 32);
            fputs(": ", out);
            put_safe(out, json_string_value(fv), 100);
            fputc('\n', out);
        }
    }
    size_t nrules = json_array_size(json_object_get(doc, "applied_rules"));
    if (nrules > 0)
        fprintf(out, "  %-12s %zu (--json lists them)\n", "rules", nrules);

    const json_t *ms = json_object_get(doc, "messages");
    json_array_foreach(ms, i, v)
        show_message(out, v, i + 1, json_array_size(ms));
}

static int show(FILE *out, struct mr_instance *inst, const char *tenant,
                int64_t number, bool json)
{
    struct mr_ticket_view t;
    memset(&t, 0, sizeof t);
    struct mr_error err = {0};
    int rc =
        mr_store_get_ticket_by_number(inst->store, tenant, number, &t, &err);
    if (rc == MR_ENOTFOUND) {
        fprintf(stderr,
                "mailroom tickets show: no ticket #%" PRId64 " in tenant %s\n",
                number, tenant);
        return MR_EXIT_DATAERR;
    }
    if (rc != MR_OK) {
        fprintf(stderr, "mailroom tickets show: %s\n", err.msg);
        return MR_EXIT_IOERR;
    }
    char reply[MR_HTTP_REPLY_ADDRESS_LEN + 1];
    if (mr_http_reply_address(inst->cfg, inst->store, &t, reply, &err) !=
        MR_OK) {
        fprintf(stderr, "mailroom tickets show: %s\n", err.msg);
        mr_ticket_view_clear(&t);
        return MR_EXIT_IOERR;
    }
    struct mr_buf b;
    struct mr_json j;
    mr_buf_init(&b, 0);
    mr_json_init(&j, &b, false);
    mr_http_ticket_json(&j, &t, reply);
    rc = MR_EXIT_OK;
    if (json) {
        fprintf(out, "%s\n", b.p);
    } else {
        json_t *doc = json_loadb(b.p, b.len, 0, NULL);
        if (doc == NULL) {
            fputs("mailroom tickets show: internal error: the ticket's "
                  "document does not parse\n",
                  stderr);
            rc = MR_EXIT_SOFTWARE;
        } else {
            show_text(out, doc, &t);
        }
        json_decref(doc);
    }
    mr_buf_release(&b);
    mr_ticket_view_clear(&t);
    return rc;
}

/* ---- arguments ---------------------------------------------------------- */

/* "42" or "#42": 1 to 18 digits, no sign, no leading zero. */
static int parse_number(const char *s, int64_t *out)
{
    if (s && s[0] == '#')
        s++;
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 18 || s[0] == '0')
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* --tenant, or the only tenant; NULL (message printed) otherwise. */
static const char *pick_tenant(const struct mr_config *cfg, const char *given,
                               int *rc)
{
    if (given != NULL) {
        if (mr_config_tenant(cfg, given) != NULL)
            return given;
        fprintf(stderr, "mailroom tickets: no tenant '%s' in %s\n", given,
                cfg->source);
        *rc = MR_EXIT_DATAERR;
        return NULL;
    }
    if (cfg->ntenants == 1)
        return cfg->tenants[0].name;
    fprintf(stderr,
            "mailroom tickets: --tenant is required: %s has %zu "
            "tenants\n",
            cfg->source, cfg->ntenants);
    *rc = MR_EXIT_USAGE;
    return NULL;
}

/* ---- update ------------------------------------------------------------- */

/* "a,b,c" into up to MR_TICKET_TAGS_MAX pointers into buf (a copy the
 * caller frees); -1 when there are more. Empty items are dropped. */
static int split_tags(const char *arg, char **buf, const char **v, size_t *n)
{
    *n = 0;
    *buf = mr_xstrndup(arg, strlen(arg));
    char *save = NULL;
    for (char *t = strtok_r(*buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (*n == MR_TICKET_TAGS_MAX)
            return -1;
        v[(*n)++] = t;
    }
    return 0;
}

struct update_args {
    const char *status, *priority, *queue, *assignee;
    const char *tags, *add, *remove, *if_version;
    bool json;
};

static int update(FILE *out, struct mr_instance *inst, const char *tenant,
                  int64_t number, const struct update_args *u)
{
    struct mr_ticket_patch p = {
        .status = u->status, .priority = u->priority, .actor = "cli"};
    if (u->queue) {
        p.set_queue = true;
        p.queue = u->queue[0] ? u->queue : NULL;
    }
    if (u->assignee) {
        p.set_assignee = true;
        p.assignee = u->assignee[0] ? u->assignee : NULL;
    }
    const char *tags[MR_TICKET_TAGS_MAX], *add[MR_TICKET_TAGS_MAX],
        *rem[MR_TICKET_TAGS_MAX];
    char *b1 = NULL, *b2 = NULL, *b3 = NULL;
    int rc = MR_EXIT_OK;
    if ((u->tags && split_tags(u->tags, &b1, tags, &p.ntags) < 0) ||
        (u->add && split_tags(u->add, &b2, add, &p.ntags_add) < 0) ||
        (u->remove && split_tags(u->remove, &b3, rem, &p.ntags_remove) < 0)) {
        fputs("mailroom tickets update: at most 100 tags\n", stderr);
        rc = MR_EXIT_USAGE;
        goto out;
    }
    p.set_tags = u->tags != NULL;
    p.tags = tags;
    p.tags_add = add;
    p.tags_remove = rem;
    if (u->if_version && parse_number(u->if_version, &p.if_version) != 0) {
        fputs("mailroom tickets update: --if-version takes the ticket's "
              "version (a number)\n",
              stderr);
        rc = MR_EXIT_USAGE;
        goto out;
    }
    struct mr_error err = {0};
    const char *field = NULL;
    if (mr_store_ticket_patch_check(&p, &field, &err) != MR_OK) {
        fprintf(stderr, "mailroom tickets update: %s\n", err.msg);
        rc = MR_EXIT_USAGE;
        goto out;
    }
    struct mr_ticket_view t;
    memset(&t, 0, sizeof t);
    int r =
        mr_store_get_ticket_by_number(inst->store, tenant, number, &t, &err);
    int64_t id = t.id;
    mr_ticket_view_clear(&t);
    struct mr_ticket_update_result res = {0};
    if (r == MR_OK)
        r = mr_store_update_ticket(inst->store, tenant, id, &p, &res, &err);
    if (r == MR_ENOTFOUND) {
        fprintf(stderr,
                "mailroom tickets update: no ticket #%" PRId64
                " in tenant %s\n",
                number, tenant);
        rc = MR_EXIT_DATAERR;
    } else if (r == MR_ECONFLICT || r == MR_EINVAL) {
        fprintf(stderr, "mailroom tickets update: %s\n", err.msg);
        rc = MR_EXIT_DATAERR;
    } else if (r != MR_OK) {
        fprintf(stderr, "mailroom tickets update: %s\n", err.msg);
        rc = MR_EXIT_IOERR;
    } else if (u->json) {
        rc = show(out, inst, tenant, number, true);
    } else {
        fprintf(out, "ticket #%" PRId64 ": %s, version %" PRId64 "\n", number,
                res.changed ? "updated" : "unchanged", res.version);
    }
out:
    free(b1);
    free(b2);
    free(b3);
    return rc;
}

static int update_run(int argc, char **argv, FILE *out)
{
    struct mr_instance_args ia = {0};
    struct update_args u = {0};
    const char *tenant = NULL, *number_arg = NULL;
    const struct mr_cli_opt opts[] = {
        {"--tenant", &tenant},           {"--status", &u.status},
        {"--priority", &u.priority},     {"--queue", &u.queue},
        {"--assignee", &u.assignee},     {"--tags", &u.tags},
        {"--add-tags", &u.add},          {"--remove-tags", &u.remove},
        {"--if-version", &u.if_version},
    };
    for (int i = 2; i < argc; i++) {
        int r = mr_instance_opt(argc, argv, &i, &ia, opts,
                                sizeof opts / sizeof opts[0]);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--json") == 0) {
            u.json = true;
        } else if (number_arg == NULL && argv[i][0] != '-') {
            number_arg = argv[i];
        } else {
            fprintf(stderr, "mailroom tickets update: unexpected '%s'\n",
                    argv[i]);
            usage();
            return MR_EXIT_USAGE;
        }
    }
    int64_t number = 0;
    if (parse_number(number_arg, &number) != 0) {
        fputs("mailroom tickets update: give the ticket's number (as in "
              "`mailroom tickets list`)\n",
              stderr);
        usage();
        return MR_EXIT_USAGE;
    }
    struct mr_instance inst;
    int rc = mr_instance_open("tickets", &ia,
                              MR_INSTANCE_STORE | MR_INSTANCE_MIGRATE, &inst);
    if (rc != 0)
        return rc;
    const char *t = pick_tenant(inst.cfg, tenant, &rc);
    if (t != NULL)
        rc = update(out, &inst, t, number, &u);
    mr_instance_close(&inst);
    return rc;
}

/* ---- release ------------------------------------------------------------ */

/* Queues the release of ignored message ID (the ID `tickets ignored`
 * lists; docs/rules.md, *Releasing*): a running server's workers deliver
 * it. Exit 65 when there is no such message or it was released (or asked
 * for) already. */
static int release_run(int argc, char **argv, FILE *out)
{
    struct mr_instance_args ia = {0};
    const char *tenant = NULL, *id_arg = NULL;
    bool json = false;
    const struct mr_cli_opt opts[] = {{"--tenant", &tenant}};
    for (int i = 2; i < argc; i++) {
        int r = mr_instance_opt(argc, argv, &i, &ia, opts, 1);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (id_arg == NULL && argv[i][0] != '-') {
            id_arg = argv[i];
        } else {
            fprintf(stderr, "mailroom tickets release: unexpected '%s'\n",
                    argv[i]);
            usage();
            return MR_EXIT_USAGE;
        }
    }
    int64_t id = 0;
    if (parse_number(id_arg, &id) != 0) {
        fputs("mailroom tickets release: give the ignored message's ID (as "
              "in `mailroom tickets ignored`)\n",
              stderr);
        usage();
        return MR_EXIT_USAGE;
    }
    struct mr_instance inst;
    int rc = mr_instance_open("tickets", &ia,
                              MR_INSTANCE_STORE | MR_INSTANCE_MIGRATE, &inst);
    if (rc != 0)
        return rc;
    const char *t = pick_tenant(inst.cfg, tenant, &rc);
    if (t != NULL) {
        struct mr_error err = {0};
        int64_t job = 0;
        int r = mr_store_release_ignored(inst.store, t, id, "cli", &job, &err);
        struct mr_ignored_view v;
        memset(&v, 0, sizeof v);
        if (r == MR_OK && json)
            r = mr_store_get_ignored(inst.store, t, id, &v, &err);
        if (r == MR_ENOTFOUND) {
            fprintf(stderr,
                    "mailroom tickets release: no ignored message %" PRId64
                    " in tenant %s\n",
                    id, t);
            rc = MR_EXIT_DATAERR;
        } else if (r == MR_ECONFLICT || r == MR_EINVAL) {
            fprintf(stderr, "mailroom tickets release: %s\n", err.msg);
            rc = MR_EXIT_DATAERR;
        } else if (r != MR_OK) {
            fprintf(stderr, "mailroom tickets release: %s\n", err.msg);
            rc = MR_EXIT_IOERR;
        } else if (json) {
            struct mr_buf b;
            struct mr_json j;
            mr_buf_init(&b, 0);
            mr_json_init(&j, &b, false);
            mr_http_ignored_json(&j, &v);
            fprintf(out, "%s\n", b.p);
            mr_buf_release(&b);
        } else {
            fprintf(out,
                    "ignored message %" PRId64 ": release queued as job "
                    "%" PRId64 " (the server's workers deliver it)\n",
                    id, job);
        }
        mr_ignored_view_clear(&v);
    }
    mr_instance_close(&inst);
    return rc;
}

/* The command with its output stream (tests pass a memory stream). */
static int tickets_run(int argc, char **argv, FILE *out)
{
    if (argc < 2) {
        usage();
        return MR_EXIT_USAGE;
    }
    const char *sub = argv[1];
    bool is_list = strcmp(sub, "list") == 0, is_show = strcmp(sub, "show") == 0;
    bool is_ignored = strcmp(sub, "ignored") == 0;
    if (strcmp(sub, "update") == 0)
        return update_run(argc, argv, out);
    if (strcmp(sub, "release") == 0)
        return release_run(argc, argv, out);
    if (!is_list && !is_show && !is_ignored) {
        usage();
        return MR_EXIT_USAGE;
    }
    struct mr_instance_args ia = {0};
    const char *tenant = NULL, *status = NULL, *queue = NULL, *priority = NULL,
               *requester = NULL, *limit_arg = NULL, *number_arg = NULL;
    bool json = false;
    const struct mr_cli_opt opts[] = {
        {"--tenant", &tenant},       {"--status", &status},
        {"--queue", &queue},         {"--priority", &priority},
        {"--requester", &requester}, {"--limit", &limit_arg},
    };
    /* show takes only --tenant of the command's own options. */
    size_t nopts = is_list ? sizeof opts / sizeof opts[0] : 1;
    const struct mr_cli_opt ignored_opts[] = {{"--tenant", &tenant},
                                              {"--limit", &limit_arg}};
    for (int i = 2; i < argc; i++) {
        int r = is_ignored
                    ? mr_instance_opt(argc, argv, &i, &ia, ignored_opts, 2)
                    : mr_instance_opt(argc, argv, &i, &ia, opts, nopts);
        if (r < 0)
            return MR_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (is_show && number_arg == NULL && argv[i][0] != '-') {
            number_arg = argv[i];
        } else {
            fprintf(stderr, "mailroom tickets %s: unexpected '%s'\n", sub,
                    argv[i]);
            usage();
            return MR_EXIT_USAGE;
        }
    }

    struct list_args la = {.limit = LIMIT_DEFAULT, .json = json};
    char req_buf[MR_HTTP_FILTER_MAX + 1];
    int64_t number = 0;
    if (is_list || is_ignored) {
        struct mr_error err = {0};
        if (is_list &&
            mr_http_ticket_filter(status, queue, priority, requester,
                                  &la.filter, req_buf, &err) != MR_OK) {
            /* The API's wording names query parameters; same names. */
            fprintf(stderr, "mailroom tickets list: --%s\n", err.msg);
            return MR_EXIT_USAGE;
        }
        if (limit_arg) {
            char *end = NULL;
            long v = strtol(limit_arg, &end, 10);
            if (*end || end == limit_arg || v < 1 || v > LIMIT_MAX) {
                fprintf(stderr,
                        "mailroom tickets %s: --limit takes "
                        "1..%d\n",
                        sub, LIMIT_MAX);
                return MR_EXIT_USAGE;
            }
            la.limit = (int)v;
        }
    } else if (parse_number(number_arg, &number) != 0) {
        fputs("mailroom tickets show: give the ticket's number (as in "
              "`mailroom tickets list`)\n",
              stderr);
        usage();
        return MR_EXIT_USAGE;
    }

    struct mr_instance inst;
    int rc = mr_instance_open("tickets", &ia, MR_INSTANCE_STORE, &inst);
    if (rc != 0)
        return rc;
    const char *t = pick_tenant(inst.cfg, tenant, &rc);
    if (t != NULL) {
        la.tenant = t;
        rc = is_list      ? list(out, inst.store, &la)
             : is_ignored ? list_ignored(out, inst.store, &la)
                          : show(out, &inst, t, number, json);
    }
    mr_instance_close(&inst);
    return rc;
}

int mr_cli_tickets(int argc, char **argv)
{
    int rc = tickets_run(argc, argv, stdout);
    if (fflush(stdout) != 0 && rc == MR_EXIT_OK)
        rc = MR_EXIT_IOERR;
    return rc;
}
