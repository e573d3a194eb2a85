/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/config: loading (every file in tests/data/config:
 * ok-*.yaml and full.yaml must load, bad-*.yaml must fail with exactly the
 * diagnostics listed in their "# expect: LINE:COL: message" lines, so a
 * new case is a new file), defaults, units, limits on hostile input, and
 * recipient routing.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "util/buf.h"

/* ---- helpers ---- */

static const char *data_dir(void)
{
    const char *d = getenv("MR_TEST_DATA");
    return d ? d : "tests/data";
}

static char *read_all(const char *path, size_t *len)
{
    struct mr_buf b;
    mr_buf_init(&b, 16u << 20);
    if (mr_buf_read_file(&b, path, NULL) != 0) {
        mr_buf_release(&b);
        return NULL;
    }
    return mr_buf_detach(&b, len);
}

/* Writes text to a file in a fresh temporary folder and loads it. */
struct loaded {
    struct mr_config *cfg;
    struct mr_config_diags diags;
    struct mr_error err;
    int rc;
};

static void load_text(const char *text, size_t len, const char *override,
                      struct loaded *l)
{
    char dir[] = "/tmp/mr-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/c.yaml", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    memset(l, 0, sizeof(*l));
    l->rc = mr_config_load(path, override, &l->cfg, &l->diags, &l->err);
    unlink(path);
    rmdir(dir);
}

static void load_str(const char *text, struct loaded *l)
{
    load_text(text, strlen(text), NULL, l);
}

static void loaded_free(struct loaded *l)
{
    mr_config_free(l->cfg);
    mr_config_diags_free(&l->diags);
}

/* Loads "tenants: one inbox" plus extra lines and expects success. */
static struct mr_config *load_ok(const char *extra)
{
    struct mr_buf b;
    mr_buf_init(&b, 0);
    mr_buf_printf(&b,
                  "%s\ntenants:\n  - name: acme\n    inboxes: "
                  "[a@acme.example]\n",
                  extra);
    struct loaded l;
    load_str(b.p, &l);
    if (l.rc != 0)
        fail_msg("'%s' did not load: %s", extra, l.err.msg);
    mr_buf_release(&b);
    mr_config_diags_free(&l.diags);
    return l.cfg;
}

/* Loads the same and expects exactly one diagnostic containing want. */
static void load_bad(const char *extra, const char *want)
{
    struct mr_buf b;
    mr_buf_init(&b, 0);
    mr_buf_printf(&b,
                  "%s\ntenants:\n  - name: acme\n    inboxes: "
                  "[a@acme.example]\n",
                  extra);
    struct loaded l;
    load_str(b.p, &l);
    assert_int_equal(l.rc, MR_EINVAL);
    assert_null(l.cfg);
    if (l.diags.n != 1 || strstr(l.diags.items[0].msg, want) == NULL)
        fail_msg("'%s': want one problem with '%s', got %zu: %s", extra, want,
                 l.diags.n, l.diags.n ? l.diags.items[0].msg : "");
    mr_buf_release(&b);
    loaded_free(&l);
}

/* ---- the data files ---- */

static void check_bad_file(const char *path, const char *name)
{
    size_t len;
    char *text = read_all(path, &len);
    assert_non_null(text);
    struct mr_config *cfg = NULL;
    struct mr_config_diags d;
    struct mr_error err = {0};
    int rc = mr_config_load(path, NULL, &cfg, &d, &err);
    if (rc != MR_EINVAL)
        fail_msg("%s: loaded (rc %d) but has expectations of failure", name,
                 rc);
    assert_null(cfg);
    /* err names the first problem with its place. */
    assert_non_null(strstr(err.msg, path));

    size_t nexpect = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# expect: ", 10) != 0)
            continue;
        int l, c, used = 0;
        if (sscanf(line + 10, "%d:%d: %n", &l, &c, &used) != 2 || used == 0)
            fail_msg("%s: bad expect line '%s'", name, line);
        const char *msg = line + 10 + used;
        if (nexpect >= d.n)
            fail_msg("%s: expected '%s' at %d:%d, got only %zu problems", name,
                     msg, l, c, d.n);
        const struct mr_config_diag *g = &d.items[nexpect];
        if (g->line != l || g->column != c || strcmp(g->msg, msg) != 0)
            fail_msg("%s: problem %zu: expected %d:%d: %s\n got %d:%d: %s",
                     name, nexpect + 1, l, c, msg, g->line, g->column, g->msg);
        nexpect++;
    }
    if (nexpect == 0)
        fail_msg("%s: no '# expect:' lines", name);
    if (nexpect != d.n)
        fail_msg("%s: %zu problems expected, %zu found (next: %d:%d: %s)", name,
                 nexpect, d.n, d.items[nexpect].line, d.items[nexpect].column,
                 d.items[nexpect].msg);
    mr_config_diags_free(&d);
    free(text);
}

static void data_files(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/config", data_dir());
    DIR *d = opendir(dir);
    assert_non_null(d);
    int nbad = 0, nok = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 5, ".yaml") != 0)
            continue;
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (strncmp(e->d_name, "bad-", 4) == 0) {
            check_bad_file(path, e->d_name);
            nbad++;
            continue;
        }
        struct mr_config *cfg = NULL;
        struct mr_error err = {0};
        if (mr_config_load(path, NULL, &cfg, NULL, &err) != 0)
            fail_msg("%s should load: %s", e->d_name, err.msg);
        mr_config_free(cfg);
        nok++;
    }
    closedir(d);
    assert_true(nbad >= 15);
    assert_true(nok >= 3);
}

static void full_example_values(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof(path), "%s/config/full.yaml", data_dir());
    struct mr_config *c = NULL;
    struct mr_error err = {0};
    assert_int_equal(mr_config_load(path, NULL, &c, NULL, &err), 0);
    assert_string_equal(c->source, path);
    assert_false(c->zero_config);
    assert_string_equal(c->rules, "/etc/mailroom/rules.yaml");
    assert_string_equal(c->hostname, "mail.example.com");
    assert_string_equal(c->data_dir, "/var/lib/mailroom");
    assert_string_equal(c->database, "sqlite:/var/lib/mailroom/mailroom.db");
    assert_string_equal(c->blob_dir, "/var/lib/mailroom/blobs");
    assert_int_equal(c->inline_max, 64 * 1024);
    assert_string_equal(c->smtp.addr, "0.0.0.0:25");
    assert_string_equal(c->lmtp.addr, "127.0.0.1:24");
    assert_string_equal(c->http.addr, "[::1]:8080");
    assert_string_equal(c->tls_cert, "/etc/mailroom/cert.pem");
    assert_string_equal(c->tls_key, "/etc/mailroom/key.pem");
    assert_int_equal(c->limits.message_size, 50u << 20);
    assert_int_equal(c->limits.http_body_size, 50u << 20);
    assert_int_equal(c->limits.max_connections, 100);
    assert_int_equal(c->limits.max_connections_per_ip, 20);
    assert_int_equal(c->limits.max_recipients, 100);
    assert_int_equal(c->limits.smtp_idle_timeout_s, 300);
    assert_int_equal(c->limits.smtp_total_timeout_s, 1800);
    assert_int_equal(c->workers.count, 2);
    assert_int_equal(c->workers.max_attempts, 8);
    assert_int_equal(c->workers.lease_s, 300);
    assert_int_equal(c->workers.backoff_base_ms, 1000);
    assert_int_equal(c->workers.backoff_max_ms, 3600000);
    assert_string_equal(c->webhook.secret,
                        "whsec_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH");
    assert_string_equal(c->webhook.tenant, "acme");
    assert_int_equal(c->webhook.tolerance_s, 300);

    assert_int_equal(c->ntenants, 2);
    const struct mr_tenant *acme = &c->tenants[0];
    assert_string_equal(acme->name, "acme");
    assert_false(acme->accept_all);
    assert_int_equal(acme->ninboxes, 3);
    assert_int_equal(acme->inboxes[0].kind, MR_INBOX_EXACT);
    assert_string_equal(acme->inboxes[0].name, "support@acme.example");
    assert_string_equal(acme->inboxes[0].local, "support");
    assert_string_equal(acme->inboxes[0].domain, "acme.example");
    assert_null(acme->inboxes[0].tag_name);
    assert_int_equal(acme->inboxes[1].kind, MR_INBOX_PATTERN);
    assert_string_equal(acme->inboxes[1].name, "help");
    assert_string_equal(acme->inboxes[1].address, "help+{team}@acme.example");
    assert_string_equal(acme->inboxes[1].local, "help");
    assert_string_equal(acme->inboxes[1].tag_name, "team");
    assert_int_equal(acme->inboxes[2].kind, MR_INBOX_CATCHALL);
    assert_null(acme->inboxes[2].local);
    assert_string_equal(acme->inboxes[2].domain, "helpdesk.acme.example");
    const struct mr_tenant *globex = mr_config_tenant(c, "globex");
    assert_ptr_equal(globex, &c->tenants[1]);
    assert_true(globex->accept_all);
    assert_string_equal(globex->inboxes[0].name, "Billing");
    assert_string_equal(c->outbound.smtp, "127.0.0.1:25");
    assert_string_equal(c->outbound.helo, "helpdesk.acme.example");
    assert_string_equal(c->outbound.from,
                        "Acme Support <support@acme.example>");
    assert_int_equal(c->outbound.timeout_ms, 30000);
    assert_int_equal(c->outbound.max_attempts, 10);
    assert_string_equal(globex->outbound_from,
                        "Globex Billing <billing@globex.example>");
    assert_null(mr_config_tenant(c, "nobody"));
    assert_string_equal(c->clamd.socket, "/run/clamav/clamd.ctl");
    assert_int_equal(c->clamd.retry_max_ms, 60000);
    mr_config_free(c);
}

/* docs/configuration.md shows full.yaml verbatim after a marker line, so
 * the documented example is the tested one. */
static void docs_example_is_full_yaml(void **state)
{
    (void)state;
    char path[4096];
    size_t nfull, ndoc;
    snprintf(path, sizeof(path), "%s/config/full.yaml", data_dir());
    char *full = read_all(path, &nfull);
    snprintf(path, sizeof(path), "%s/../../docs/configuration.md", data_dir());
    char *doc = read_all(path, &ndoc);
    assert_non_null(full);
    assert_non_null(doc);
    const char *mark = "<!-- tests/data/config/full.yaml -->\n```yaml\n";
    const char *start = strstr(doc, mark);
    assert_non_null(start);
    start += strlen(mark);
    const char *end = strstr(start, "\n```\n");
    assert_non_null(end);
    assert_int_equal((size_t)(end + 1 - start), nfull);
    assert_memory_equal(start, full, nfull);
    free(full);
    free(doc);
}

/* ---- defaults ---- */

static void zero_config_defaults(void **state)
{
    (void)state;
    struct mr_config *c = mr_config_default(NULL);
    assert_true(c->zero_config);
    assert_string_equal(c->source, "<defaults>");
    assert_string_equal(c->data_dir, "./mailroom-data");
    assert_string_equal(c->database, "sqlite:./mailroom-data/mailroom.db");
    assert_string_equal(c->blob_dir, "./mailroom-data/blobs");
    assert_string_equal(c->smtp.addr, "127.0.0.1:2525");
    assert_null(c->lmtp.addr);
    assert_string_equal(c->http.addr, "127.0.0.1:8080");
    assert_null(c->tls_cert);
    assert_null(c->webhook.secret);
    assert_int_equal(c->limits.message_size, 50u << 20);
    assert_int_equal(c->limits.http_body_size, 50u << 20);
    assert_int_equal(c->limits.smtp_total_timeout_s, 1800);
    assert_int_equal(c->workers.backoff_max_ms, 3600000);
    assert_non_null(c->hostname);
    assert_true(strlen(c->hostname) > 0);
    assert_int_equal(c->ntenants, 1);
    assert_string_equal(c->tenants[0].name, "default");
    assert_true(c->tenants[0].accept_all);

    struct mr_route r;
    assert_int_equal(mr_config_route(c, "Anyone@Anywhere.example", &r, NULL),
                     0);
    assert_ptr_equal(r.tenant, &c->tenants[0]);
    assert_null(r.inbox);
    mr_config_free(c);

    c = mr_config_default("/srv/mr");
    assert_string_equal(c->database, "sqlite:/srv/mr/mailroom.db");
    assert_string_equal(c->blob_dir, "/srv/mr/blobs");
    mr_config_free(c);
}

static void file_defaults_and_data_dir(void **state)
{
    (void)state;
    /* Missing keys keep their defaults; storage follows data_dir. */
    struct mr_config *c = load_ok("data_dir: /d\nlisten: { lmtp: "
                                  "\"127.0.0.1:24\" }");
    assert_false(c->zero_config);
    assert_string_equal(c->smtp.addr, "127.0.0.1:2525");
    assert_string_equal(c->lmtp.addr, "127.0.0.1:24");
    assert_string_equal(c->http.addr, "127.0.0.1:8080");
    assert_string_equal(c->database, "sqlite:/d/mailroom.db");
    assert_string_equal(c->blob_dir, "/d/blobs");
    assert_string_equal(c->webhook.tenant, "acme");
    assert_null(c->webhook.secret);
    mr_config_free(c);

    /* The caller's data_dir wins over the file's; storage set on its own
     * stays. */
    const char *text = "data_dir: /d\nstorage: { blobs: /b }\n"
                       "tenants: [{name: a, inboxes: [a@a.example]}]\n";
    struct loaded l;
    load_text(text, strlen(text), "/override", &l);
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.cfg->data_dir, "/override");
    assert_string_equal(l.cfg->database, "sqlite:/override/mailroom.db");
    assert_string_equal(l.cfg->blob_dir, "/b");
    loaded_free(&l);

    /* Listeners off in each spelling; max_connections_per_ip follows a
     * smaller max_connections. */
    c = load_ok("listen: { smtp: off, lmtp: ~, http: }\n"
                "limits: { max_connections: 5 }");
    assert_null(c->smtp.addr);
    assert_null(c->lmtp.addr);
    assert_null(c->http.addr);
    assert_int_equal(c->limits.max_connections_per_ip, 5);
    mr_config_free(c);
}

/* ---- values ---- */

static void sizes(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        uint64_t want;
    } ok[] = {
        {"1024", 1024},       {"1KiB", 1024},       {"1 KiB", 1024},
        {"2KB", 2000},        {"2kb", 2000},        {"10 MB", 10000000},
        {"50MiB", 50u << 20}, {"50mib", 50u << 20}, {"1GB", 1000000000},
        {"2GiB", 2ull << 30}, {"4096B", 4096},      {"\"5MB\"", 5000000},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char line[80];
        snprintf(line, sizeof(line), "limits: { message_size: %s }", ok[i].v);
        struct mr_config *c = load_ok(line);
        if (c->limits.message_size != ok[i].want)
            fail_msg("%s: got %llu", ok[i].v,
                     (unsigned long long)c->limits.message_size);
        /* http_body_size follows message_size unless set. */
        assert_int_equal(c->limits.http_body_size, ok[i].want);
        mr_config_free(c);
    }
    static const struct {
        const char *v, *want;
    } bad[] = {
        {"1023", "between 1 KiB and 2 GiB"},
        {"3GiB", "between 1 KiB and 2 GiB"},
        {"-5MB", "must be a size"},
        {"1.5MB", "must be a size"},
        {"10 XB", "units: B, KB"},
        {"10 K", "units: B, KB"},
        {"99999999999999999999", "must be a size"},
        {"18446744074GB", "must be a size"},
        {"18446744073GB", "between 1 KiB and 2 GiB"},
        {"MB", "must be a size"},
        {"[1]", "must be a single value"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char line[80];
        snprintf(line, sizeof(line), "limits: { message_size: %s }", bad[i].v);
        load_bad(line, bad[i].want);
    }

    /* storage.inline_max: 64 KiB unless set, 0 allowed, 16 MiB at most. */
    struct mr_config *c = load_ok("data_dir: /d");
    assert_int_equal(c->inline_max, 64 * 1024);
    mr_config_free(c);
    c = load_ok("storage: { inline_max: 0 }");
    assert_int_equal(c->inline_max, 0);
    mr_config_free(c);
    c = load_ok("storage: { inline_max: 1MiB }");
    assert_int_equal(c->inline_max, 1 << 20);
    mr_config_free(c);
    load_bad("storage: { inline_max: 17MiB }", "at most 16MiB");
    load_bad("storage: { inline_max: lots }", "must be a size");
}

static void durations(void **state)
{
    (void)state;
    struct mr_config *c = load_ok("limits: { smtp_idle_timeout: 90, "
                                  "smtp_total_timeout: 2h }\n"
                                  "workers: { lease: 2m, backoff_base: 250ms, "
                                  "backoff_max: 1d }\n"
                                  "webhook: { secret: 0123456789abcdef, "
                                  "tolerance: 1 m }");
    assert_int_equal(c->limits.smtp_idle_timeout_s, 90);
    assert_int_equal(c->limits.smtp_total_timeout_s, 7200);
    assert_int_equal(c->workers.lease_s, 120);
    assert_int_equal(c->workers.backoff_base_ms, 250);
    assert_int_equal(c->workers.backoff_max_ms, 86400000);
    assert_int_equal(c->webhook.tolerance_s, 60);
    assert_string_equal(c->webhook.secret, "0123456789abcdef");
    mr_config_free(c);

    load_bad("limits: { smtp_idle_timeout: 1500ms }", "whole number of sec");
    load_bad("limits: { smtp_idle_timeout: 0 }", "between 1s and 1h");
    load_bad("limits: { smtp_idle_timeout: 5 minutes }", "units: ms, s");
    load_bad("workers: { lease: 25h }", "between 1s and 24h");
    load_bad("workers: { backoff_base: 1ms }", "between 10ms and 1h");
    load_bad("workers: { backoff_base: 10s, backoff_max: 9s }",
             "backoff_max is shorter");
}

static void clamd_section(void **state)
{
    (void)state;
    struct mr_config *c = load_ok("attachments: {}");
    assert_null(c->clamd.socket);
    assert_null(c->clamd.address);
    assert_int_equal(c->clamd.timeout_ms, 30000);
    assert_int_equal(c->clamd.retry_max_ms, 60000);
    assert_int_equal(c->clamd.scan_timeout_ms, 180000);
    assert_false(c->clamd.on_error_block);
    mr_config_free(c);
    c = load_ok("clamd: { socket: /run/clamav/clamd.ctl, timeout: 5s, "
                "on_error: block, retry_max: 500ms, scan_timeout: 2m }");
    assert_string_equal(c->clamd.socket, "/run/clamav/clamd.ctl");
    assert_null(c->clamd.address);
    assert_int_equal(c->clamd.timeout_ms, 5000);
    assert_int_equal(c->clamd.retry_max_ms, 500);
    assert_int_equal(c->clamd.scan_timeout_ms, 120000);
    assert_true(c->clamd.on_error_block);
    mr_config_free(c);
    c = load_ok("clamd: { address: \"[::1]:3310\", on_error: keep }");
    assert_string_equal(c->clamd.address, "[::1]:3310");
    assert_false(c->clamd.on_error_block);
    mr_config_free(c);

    load_bad("clamd: { timeout: 5s }", "socket (a unix socket path) or "
                                       "address");
    load_bad("clamd: { socket: /x.sock, address: 127.0.0.1:3310 }",
             "not both");
    load_bad("clamd: { socket: clamd.sock }", "absolute path");
    load_bad("clamd: { address: localhost }", "clamd.address");
    load_bad("clamd: { socket: /x.sock, on_error: ignore }", "keep or block");
    load_bad("clamd: { socket: /x.sock, timeout: 1h }", "between 100ms and");
    load_bad("clamd: { socket: /x.sock, scan_timeout: 500ms }",
             "clamd.scan_timeout");
    load_bad("clamd: { socket: /x.sock, scan: yes }", "scan");
    load_bad("clamd: /x.sock", "must be a mapping");
}

static void ints_and_bools(void **state)
{
    (void)state;
    struct mr_config *c = load_ok("workers: { count: 64, max_attempts: 1 }");
    assert_int_equal(c->workers.count, 64);
    assert_int_equal(c->workers.max_attempts, 1);
    mr_config_free(c);
    load_bad("workers: { count: 0 }", "between 1 and 64");
    load_bad("workers: { count: 2x }", "whole number");
    load_bad("workers: { count: 1e3 }", "whole number");
    load_bad("workers: { count: 99999999999999999999999 }", "whole number");
    load_bad("workers: { count: }", "whole number");

    /* Outbound webhooks: requests in flight, one attempt's time. */
    c = load_ok("");
    assert_int_equal(c->webhook_concurrency, 16);
    assert_int_equal(c->webhook_timeout_ms, 10000);
    mr_config_free(c);
    c = load_ok("webhook_concurrency: 256\nwebhook_timeout: 1500ms");
    assert_int_equal(c->webhook_concurrency, 256);
    assert_int_equal(c->webhook_timeout_ms, 1500);
    mr_config_free(c);
    load_bad("webhook_concurrency: 0", "between 1 and 256");
    load_bad("webhook_concurrency: 257", "between 1 and 256");
    load_bad("webhook_timeout: 50ms", "between 100ms and 1m");
    load_bad("webhook_timeout: 2m", "between 100ms and 1m");

    static const char *const on[] = {"true", "True", "yes", "on", "ON"};
    for (size_t i = 0; i < 5; i++) {
        char text[120];
        snprintf(text, sizeof(text),
                 "tenants: [{ name: all, accept_all: %s }]\n", on[i]);
        struct loaded l;
        load_str(text, &l);
        assert_int_equal(l.rc, 0);
        assert_true(l.cfg->tenants[0].accept_all);
        loaded_free(&l);
    }
    struct loaded l;
    load_str("tenants: [{ name: all, accept_all: false }]\n", &l);
    assert_int_equal(l.rc, MR_EINVAL);
    assert_int_equal(l.diags.n, 1);
    assert_non_null(strstr(l.diags.items[0].msg, "has no inboxes"));
    loaded_free(&l);
}

static void listen_split(void **state)
{
    (void)state;
    static const struct {
        const char *addr, *host;
        int port;
    } ok[] = {
        {"127.0.0.1:2525", "127.0.0.1", 2525},
        {"0.0.0.0:25", "0.0.0.0", 25},
        {"[::1]:24", "::1", 24},
        {"[::]:65535", "::", 65535},
        {"localhost:1", "localhost", 1},
        {"mail.example.com:587", "mail.example.com", 587},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char host[256];
        int port = 0;
        struct mr_error err = {0};
        if (mr_config_listen_split(ok[i].addr, host, sizeof(host), &port,
                                   &err) != 0)
            fail_msg("%s: %s", ok[i].addr, err.msg);
        assert_string_equal(host, ok[i].host);
        assert_int_equal(port, ok[i].port);
    }
    static const char *const bad[] = {
        "",
        "127.0.0.1",
        ":25",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:+25",
        "127.0.0.1:25x",
        "::1:25",
        "[::1]25",
        "[::1",
        "[127.0.0.1]:25",
        "[zz::1]:25",
        "bad_host:25",
        "-bad.example:25",
        "a..b:25",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char host[256];
        int port;
        struct mr_error err = {0};
        if (mr_config_listen_split(bad[i], host, sizeof(host), &port, &err) !=
            MR_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(err.msg) > 0);
    }
    /* A host that does not fit the caller's buffer is refused, not cut. */
    char small[4];
    int port;
    assert_int_equal(mr_config_listen_split("localhost:25", small,
                                            sizeof(small), &port, NULL),
                     MR_EINVAL);
}

/* ---- hostile and broken files ---- */

static void unreadable(void **state)
{
    (void)state;
    struct mr_config *c = (struct mr_config *)1;
    struct mr_error err = {0};
    assert_int_equal(
        mr_config_load("/nonexistent/mailroom.yaml", NULL, &c, NULL, &err),
        MR_EIO);
    assert_null(c);
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(mr_config_load("/tmp", NULL, &c, NULL, &err), MR_EIO);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

static void many_problems_are_capped(void **state)
{
    (void)state;
    struct mr_buf b;
    mr_buf_init(&b, 0);
    for (int i = 0; i < 150; i++)
        mr_buf_printf(&b, "unknown_%d: 1\n", i);
    mr_buf_puts(&b, "tenants: [{name: a, inboxes: [a@a.example]}]\n");
    struct loaded l;
    load_text(b.p, b.len, NULL, &l);
    assert_int_equal(l.rc, MR_EINVAL);
    assert_int_equal(l.diags.n, 101);
    assert_int_equal(l.diags.items[0].line, 1);
    assert_int_equal(l.diags.items[99].line, 100);
    assert_int_equal(l.diags.items[100].line, 0);
    assert_non_null(strstr(l.diags.items[100].msg, "too many problems"));
    /* err names the first, with its place. */
    assert_non_null(strstr(l.err.msg, ":1:1: top level: unknown key "
                                      "'unknown_0'"));
    assert_non_null(strstr(l.err.msg, "and more problems"));
    loaded_free(&l);

    /* The same key ninety thousand times: linear, and capped. */
    mr_buf_reset(&b);
    for (int i = 0; i < 90000; i++)
        mr_buf_puts(&b, "hostname: a\n");
    load_text(b.p, b.len, NULL, &l);
    assert_int_equal(l.rc, MR_EINVAL);
    assert_int_equal(l.diags.n, 101);
    loaded_free(&l);
    mr_buf_release(&b);
}

static void hostile_shapes(void **state)
{
    (void)state;
    struct mr_buf b;
    struct loaded l;
    mr_buf_init(&b, 0);
    /* Deep nesting stops at the depth cap, not in a stack overflow. */
    for (int i = 0; i < 100000; i++)
        mr_buf_putc(&b, '[');
    load_text(b.p, b.len, NULL, &l);
    assert_int_equal(l.rc, MR_EINVAL);
    assert_int_equal(l.diags.n, 1);
    assert_non_null(strstr(l.diags.items[0].msg, "nested more than"));
    loaded_free(&l);

    /* Too many values. */
    mr_buf_reset(&b);
    mr_buf_puts(&b, "x: [");
    for (int i = 0; i < 210000; i++)
        mr_buf_puts(&b, "1,");
    mr_buf_puts(&b, "1]\n");
    load_text(b.p, b.len, NULL, &l);
    assert_int_equal(l.rc, MR_EINVAL);
    assert_non_null(strstr(l.diags.items[0].msg, "more than 200000 values"));
    loaded_free(&l);

    /* Larger than the file cap. */
    mr_buf_reset(&b);
    for (int i = 0; i < (5 << 20) / 32; i++)
        mr_buf_puts(&b, "# a comment line of 32 bytes...\n");
    load_text(b.p, b.len, NULL, &l);
    assert_int_equal(l.rc, MR_EINVAL);
    assert_non_null(strstr(l.diags.items[0].msg, "larger than"));
    loaded_free(&l);

    /* NUL bytes inside a value, control characters, keys that are lists. */
    const char nul[] = "hostname: \"a\\0b\"\ntenants: [{name: a, inboxes: "
                       "[a@a.example]}]\n";
    load_str(nul, &l);
    assert_int_equal(l.rc, MR_EINVAL);
    assert_non_null(strstr(l.diags.items[0].msg, "control character"));
    loaded_free(&l);
    load_str("? [a, b]\n: c\ntenants: [{name: a, inboxes: [a@a.example]}]\n",
             &l);
    assert_int_equal(l.rc, MR_EINVAL);
    assert_non_null(strstr(l.diags.items[0].msg, "a key must be a plain"));
    loaded_free(&l);
    /* A raw NUL byte in the file. */
    const char raw[] = "hostname: a\0b\n";
    load_text(raw, sizeof(raw) - 1, NULL, &l);
    assert_int_equal(l.rc, MR_EINVAL);
    assert_true(l.diags.n >= 1);
    loaded_free(&l);
    mr_buf_release(&b);
}

/* ---- routing ---- */

static const char route_yaml[] =
    "tenants:\n"
    "  - name: acme\n"
    "    inboxes:\n"
    "      - support@acme.example\n"
    "      - address: \"help+{team}@acme.example\"\n"
    "        name: help\n"
    "      - \"*@helpdesk.acme.example\"\n"
    "      - vip+gold@acme.example\n"
    "  - name: globex\n"
    "    inboxes:\n"
    "      - \"help+{team}@globex.example\"\n"
    "      - \"*@globex.example\"\n"
    "      - caf\xc3\xa9@\xc3\xa9xample.example\n"
    "  - name: initech\n"
    "    inboxes: [help@globex.example, billing@globex.example]\n"
    "  - name: fallback\n"
    "    accept_all: true\n";

static void routing(void **state)
{
    (void)state;
    struct loaded l;
    load_str(route_yaml, &l);
    if (l.rc != 0)
        fail_msg("%s", l.err.msg);
    const struct mr_config *c = l.cfg;
    static const struct {
        const char *rcpt, *tenant, *inbox, *tag;
    } cases[] = {
        /* Exact, in any case. */
        {"support@acme.example", "acme", "support@acme.example", ""},
        {"SUPPORT@Acme.Example", "acme", "support@acme.example", ""},
        /* Exact inbox plus a tag: the tag is kept, lower-cased. */
        {"support+billing@acme.example", "acme", "support@acme.example",
         "billing"},
        {"Support+Billing.2_x-y@acme.example", "acme", "support@acme.example",
         "billing.2_x-y"},
        /* An exact address with a '+' of its own is matched whole. */
        {"vip+gold@acme.example", "acme", "vip+gold@acme.example", ""},
        {"vip+silver@acme.example", "fallback", NULL, "silver"},
        /* Patterns keep the tag; the bare base matches with none. */
        {"help+sales@acme.example", "acme", "help", "sales"},
        {"help@acme.example", "acme", "help", ""},
        /* An empty or unusable tag misses the pattern. */
        {"help+@acme.example", "fallback", NULL, ""},
        {"help+a+b@acme.example", "fallback", NULL, ""},
        {"help+a/b@acme.example", "fallback", NULL, ""},
        /* Catch-all: any local part, tag kept when valid. */
        {"anyone@helpdesk.acme.example", "acme", "*@helpdesk.acme.example", ""},
        {"x+y@HELPDESK.acme.example", "acme", "*@helpdesk.acme.example", "y"},
        /* Exact beats pattern beats exact-with-tag beats catch-all, across
         * tenants. */
        {"help@globex.example", "initech", "help@globex.example", ""},
        {"help+x@globex.example", "globex", "help+{team}@globex.example", "x"},
        {"billing@globex.example", "initech", "billing@globex.example", ""},
        {"billing+q1@globex.example", "initech", "billing@globex.example",
         "q1"},
        {"sales@globex.example", "globex", "*@globex.example", ""},
        /* UTF-8 addresses are compared byte for byte after ASCII folding. */
        {"caf\xc3\xa9@\xc3\xa9xample.example", "globex",
         "caf\xc3\xa9@\xc3\xa9xample.example", ""},
        /* Nobody else: the accept-all tenant, no inbox. */
        {"someone@elsewhere.example", "fallback", NULL, ""},
        {"support@acme.example.org", "fallback", NULL, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_route r;
        struct mr_error err = {0};
        if (mr_config_route(c, cases[i].rcpt, &r, &err) != 0)
            fail_msg("%s: %s", cases[i].rcpt, err.msg);
        if (strcmp(r.tenant->name, cases[i].tenant) != 0)
            fail_msg("%s: tenant %s, want %s", cases[i].rcpt, r.tenant->name,
                     cases[i].tenant);
        if (cases[i].inbox == NULL && r.inbox != NULL)
            fail_msg("%s: inbox %s, want none", cases[i].rcpt, r.inbox->name);
        if (cases[i].inbox != NULL &&
            (r.inbox == NULL || strcmp(r.inbox->name, cases[i].inbox) != 0))
            fail_msg("%s: inbox %s, want %s", cases[i].rcpt,
                     r.inbox ? r.inbox->name : "(none)", cases[i].inbox);
        if (strcmp(r.tag, cases[i].tag) != 0)
            fail_msg("%s: tag '%s', want '%s'", cases[i].rcpt, r.tag,
                     cases[i].tag);
    }

    /* A tag of exactly 64 bytes is kept; 65 misses. */
    char addr[300], tag[70];
    memset(tag, 'a', 64);
    tag[64] = '\0';
    snprintf(addr, sizeof(addr), "help+%s@acme.example", tag);
    struct mr_route r;
    assert_int_equal(mr_config_route(c, addr, &r, NULL), 0);
    assert_string_equal(r.tenant->name, "acme");
    assert_string_equal(r.tag, tag);
    snprintf(addr, sizeof(addr), "help+%sa@acme.example", tag);
    assert_int_equal(mr_config_route(c, addr, &r, NULL), 0);
    assert_string_equal(r.tenant->name, "fallback");
    assert_string_equal(r.tag, "");
    loaded_free(&l);
}

static void routing_refusals(void **state)
{
    (void)state;
    struct loaded l;
    load_str("tenants: [{name: acme, inboxes: [support@acme.example]}]\n", &l);
    assert_int_equal(l.rc, 0);
    struct mr_route r;
    struct mr_error err = {0};
    assert_int_equal(mr_config_route(l.cfg, "other@acme.example", &r, &err),
                     MR_ENOTFOUND);
    assert_null(r.tenant);
    assert_non_null(strstr(err.msg, "other@acme.example"));

    static const char *const bad[] = {
        "",
        "support",
        "@acme.example",
        "support@",
        "sup\rport@acme.example",
        "support@acme.example\n",
        "a\x7f@acme.example",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (mr_config_route(l.cfg, bad[i], &r, &err) != MR_EINVAL)
            fail_msg("'%s' was not refused", bad[i]);
    }
    assert_int_equal(mr_config_route(l.cfg, NULL, &r, &err), MR_EINVAL);

    /* 254 bytes is an address; 255 is not. */
    char addr[300];
    memset(addr, 'a', sizeof(addr));
    memcpy(addr + 254 - 13, "@acme.example", 14);
    assert_int_equal(strlen(addr), 254);
    assert_int_equal(mr_config_route(l.cfg, addr, &r, &err), MR_ENOTFOUND);
    memset(addr, 'a', sizeof(addr));
    memcpy(addr + 255 - 13, "@acme.example", 14);
    assert_int_equal(mr_config_route(l.cfg, addr, &r, &err), MR_EINVAL);
    assert_non_null(strstr(err.msg, "longer than 254"));
    loaded_free(&l);
}

/* TLS and AUTH towards the relay: defaults, every mode, the password from
 * the environment, and credentials that could only go in the clear. */
static void outbound_tls_and_auth(void **state)
{
    (void)state;
    struct mr_config *c = load_ok("outbound: {smtp: \"127.0.0.1:25\"}");
    assert_int_equal(c->outbound.tls, MR_OUTBOUND_TLS_NONE);
    assert_true(c->outbound.tls_verify);
    assert_null(c->outbound.tls_ca);
    assert_null(c->outbound.username);
    assert_null(c->outbound.password);
    assert_false(c->outbound.allow_plain_auth);
    mr_config_free(c);

    static const char *const modes[] = {"none", "starttls", "required",
                                        "implicit"};
    for (int i = 0; i < 4; i++) {
        char extra[200];
        snprintf(extra, sizeof extra,
                 "outbound: {smtp: \"relay.example:587\", tls: %s}",
                 modes[i]);
        c = load_ok(extra);
        assert_int_equal(c->outbound.tls, i);
        mr_config_free(c);
    }

    assert_int_equal(setenv("MR_TEST_RELAY_PASSWORD", "from env", 1), 0);
    c = load_ok("outbound:\n  smtp: \"smtp.example.com:587\"\n"
                "  tls: required\n  tls_verify: false\n"
                "  tls_ca: /etc/mailroom/relay-ca.pem\n"
                "  username: helpdesk@example.com\n"
                "  password_env: MR_TEST_RELAY_PASSWORD\n");
    assert_int_equal(c->outbound.tls, MR_OUTBOUND_TLS_REQUIRED);
    assert_false(c->outbound.tls_verify);
    assert_string_equal(c->outbound.tls_ca, "/etc/mailroom/relay-ca.pem");
    assert_string_equal(c->outbound.username, "helpdesk@example.com");
    assert_string_equal(c->outbound.password, "from env");
    mr_config_free(c);
    unsetenv("MR_TEST_RELAY_PASSWORD");

    c = load_ok("outbound: {smtp: \"127.0.0.1:25\", username: u, password: p,"
                " allow_plain_auth: true}");
    assert_string_equal(c->outbound.password, "p");
    assert_true(c->outbound.allow_plain_auth);
    mr_config_free(c);

    load_bad("outbound: {smtp: \"127.0.0.1:25\", username: u, password: p}",
             "credentials would go to the relay unencrypted");
    load_bad("outbound: {smtp: \"a.example:465\", tls: implicit, password: p}",
             "outbound.password without outbound.username");
    load_bad("outbound: {smtp: \"a.example:465\", tls: implicit, username: u}",
             "'password' (or 'password_env'");
    load_bad("outbound: {smtp: \"a.example:465\", tls: implicit, username: u,"
             " password: p, password_env: X}",
             "give 'password' or 'password_env', not both");
    load_bad("outbound: {smtp: \"a.example:465\", tls: [starttls]}",
             "outbound.tls must be a single value");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(data_files),
        cmocka_unit_test(full_example_values),
        cmocka_unit_test(docs_example_is_full_yaml),
        cmocka_unit_test(zero_config_defaults),
        cmocka_unit_test(file_defaults_and_data_dir),
        cmocka_unit_test(sizes),
        cmocka_unit_test(durations),
        cmocka_unit_test(ints_and_bools),
        cmocka_unit_test(clamd_section),
        cmocka_unit_test(listen_split),
        cmocka_unit_test(unreadable),
        cmocka_unit_test(many_problems_are_capped),
        cmocka_unit_test(hostile_shapes),
        cmocka_unit_test(routing),
        cmocka_unit_test(routing_refusals),
        cmocka_unit_test(outbound_tls_and_auth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
