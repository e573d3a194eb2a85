/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - mailroom's configuration: one YAML file, or the embedded
 * defaults when there is none.
 *
 * The loaded configuration is plain immutable data, built once at start
 * and shared read-only by every thread. Loading checks everything it can
 * (types, ranges, unknown keys, duplicate tenants or addresses, patterns,
 * readable certificate paths are NOT checked: that is serve's job) and
 * reports every problem with its line and column, so `mailroom config
 * check` can list them all at once.
 *
 * Ownership: mr_config_load / mr_config_default return a config owned by
 * the caller, freed with mr_config_free. Every string in it belongs to it.
 */
#ifndef MR_CONFIG_H
#define MR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

enum mr_inbox_kind {
    MR_INBOX_EXACT,    /* support@example.com */
    MR_INBOX_PATTERN,  /* help+{team}@example.com: the tag is kept */
    MR_INBOX_CATCHALL, /* *@example.com: any local part of the domain */
};

struct mr_inbox {
    char *name;             /* inbox name (defaults to the address) */
    enum mr_inbox_kind kind;
    char *address;          /* as written in the config, lower-cased */
    char *local;            /* local part before '+{...}' (pattern) or the
                               whole local part (exact); NULL for catch-all */
    char *domain;           /* lower-cased (IDN as written) */
    char *tag_name;         /* "team" for help+{team}@; NULL otherwise */
};

/* An outbound webhook subscription (docs/webhooks.md). */
#define MR_WEBHOOK_SUB_MAX 32
#define MR_WEBHOOK_EVENTS_MAX 32
struct mr_webhook_sub {
    char *url;              /* http:// or https://, unique within a tenant:
                               it names the subscription in the store */
    char **events;          /* types wanted; nevents 0: every type */
    size_t nevents;
    char *secrets[2];       /* current and (during a rotation) previous */
    size_t nsecrets;        /* 1 or 2 */
    bool active;            /* default true */
};

/* An integration (docs/integrations.md): a subscriber with its own payload
 * that rules select by name with `notify: NAME`. */
#define MR_INTEGRATIONS_MAX 32
#define MR_INTEGRATION_LABELS_MAX 16
enum mr_integration_kind {
    MR_INTEGRATION_SLACK,  /* Slack-compatible incoming webhook */
    MR_INTEGRATION_GITHUB, /* GitHub Issues (REST) */
    MR_INTEGRATION_JIRA,   /* Jira REST API v2 */
};
struct mr_integration {
    char *name;        /* [A-Za-z0-9._-]{1,64}, unique within the tenant */
    enum mr_integration_kind kind;
    char *url;         /* slack: the incoming webhook URL */
    char *repo;        /* github: "owner/name" */
    char *api_url;     /* github: default https://api.github.com */
    char *base_url;    /* jira: https://x.atlassian.net */
    char *project;     /* jira: project key */
    char *issue_type;  /* jira: default "Task" */
    char *user;        /* jira: account (Basic auth user) */
    char *token;       /* github, jira: from `token` or `token_env` */
    char **labels;     /* github, jira */
    size_t nlabels;
};

struct mr_tenant {
    char *name;             /* [a-z0-9_-]{1,64} */
    struct mr_webhook_sub *webhooks;
    size_t nwebhooks;
    struct mr_integration *integrations;
    size_t nintegrations;
    struct mr_inbox *inboxes;
    size_t ninboxes;
    bool accept_all;        /* the zero-config tenant: every recipient */
    char *outbound_from;    /* outbound.from of the tenant ("Name <addr>"),
                               NULL: the global one (docs/outbound.md) */
};

struct mr_listen {
    char *addr;             /* "127.0.0.1:2525", "[::1]:2525"; NULL = off */
};

/* The keys the top level of the file may have (mr_config_top_key). */
#define MR_CONFIG_TOP_KEYS 18

/* The largest storage.inline_max accepted. */
#define MR_CONFIG_INLINE_MAX_CAP (16u * 1024 * 1024)

struct mr_config {
    char *source;           /* file path, or "<defaults>" */
    char *hostname;         /* greeting and Received: header */
    char *data_dir;         /* default "./mailroom-data" */
    char *database;         /* store URL; default "sqlite:<data_dir>/mailroom.db" */
    char *blob_dir;         /* default "<data_dir>/blobs" */
    uint64_t inline_max;    /* raw messages up to this size are kept in the
                               database, not the blob folder; default
                               64 KiB, 0 = never (docs/store.md) */

    struct mr_listen smtp;  /* default 127.0.0.1:2525 */
    struct mr_listen lmtp;  /* default off */
    struct mr_listen http;  /* default 127.0.0.1:8080 */
    char *tls_cert;         /* PEM paths; STARTTLS is offered when both set */
    char *tls_key;
    char *rules;            /* rules file (docs/rules.md); NULL: no rules.
                               serve loads it, SIGHUP reloads it */

    struct {
        uint64_t message_size;        /* bytes, default 50 MiB (SMTP SIZE) */
        int max_connections;          /* default 100 */
        int max_connections_per_ip;   /* default 20 */
        int max_recipients;           /* per message, default 100 */
        int smtp_idle_timeout_s;      /* default 300 */
        int smtp_total_timeout_s;     /* per connection, default 1800 */
        uint64_t http_body_size;      /* default = message_size */
    } limits;

    struct {
        int count;                    /* worker threads, default 2 */
        int max_attempts;             /* then dead-lettered, default 8 */
        int lease_s;                  /* default 300 */
        int backoff_base_ms;          /* default 1000, doubled each try */
        int backoff_max_ms;           /* default 3600000 */
    } workers;

    struct {
        char *secret;                 /* NULL: the webhook route is off */
        char *tenant;                 /* tenant its events go to; default
                                         the first tenant */
        int tolerance_s;              /* timestamped signatures, default 300 */
    } webhook;

    /* Attachment safety (docs/attachments.md). The lists are lower case,
     * extensions without the dot; they add to / take from the built-in
     * blocklists of src/content/attach_policy.h. */
    struct {
        uint64_t max_attachment_bytes;         /* decoded, default 25 MiB */
        uint64_t max_message_attachment_bytes; /* all of one message's,
                                                  default 50 MiB */
        char **blocked_extensions;
        size_t nblocked_extensions;
        char **blocked_types;
        size_t nblocked_types;
        char **allowed_extensions;
        size_t nallowed_extensions;
        char **allowed_types;
        size_t nallowed_types;
    } attachments;

    /* Antivirus (docs/attachments.md): clamd over its socket. Neither
     * socket nor address set (no `clamd:` section): no scanning, and
     * attachments keep `scan: null`. */
    struct {
        char *socket;         /* unix socket path, or NULL */
        char *address;        /* host:port, or NULL; never both */
        int timeout_ms;       /* connect, each write, each read; 30 s */
        int scan_timeout_ms;  /* one whole conversation (a scan); 3 min */
        bool on_error_block;  /* on_error: block (refuse pending and error
                                 attachments); default keep (serve them) */
        int retry_max_ms;     /* backoff cap while clamd is down; 60 s */
    } clamd;

    /* Outbound mail: automatic acknowledgements (docs/outbound.md). */
    struct {
        enum mr_outbound_tls {
            MR_OUTBOUND_TLS_NONE,     /* default: plain SMTP */
            MR_OUTBOUND_TLS_STARTTLS, /* when the relay offers it */
            MR_OUTBOUND_TLS_REQUIRED, /* STARTTLS or retry later */
            MR_OUTBOUND_TLS_IMPLICIT, /* TLS from the connect (465) */
        } tls;
        bool tls_verify;      /* chain and host name; default true */
        char *tls_ca;         /* PEM trusted instead of the system store */
        char *username;       /* AUTH; NULL: none. With password */
        char *password;       /* `password` or the `password_env` variable
                                 read at load; never logged */
        bool allow_plain_auth; /* AUTH without TLS; default false */
        char *smtp;           /* relay "host:port"; NULL: nothing is sent */
        char *helo;           /* EHLO name; NULL: hostname */
        char *from;           /* "Name <addr>" for tenants without their own */
        int timeout_ms;       /* per SMTP step, default 30 s */
        int max_attempts;     /* then failed, default 10 */
        int backoff_base_ms;  /* default 60 s, doubled each try */
        int backoff_max_ms;   /* default 1 h */
    } outbound;

    bool webhooks_allow_private; /* deliver to loopback/private addresses
                                    (webhooks and integrations) */
    char *ticket_url;            /* link to a ticket in integrations' messages:
                                    "{id}" and "{number}" replaced; NULL: no
                                    link */
    double webhook_retry_scale;  /* multiplies the retry schedule; 1 */
    int webhook_concurrency;     /* deliveries in flight at most; 16 */
    int webhook_timeout_ms;      /* one attempt, connect included; 10 s */

    struct mr_tenant *tenants;
    size_t ntenants;
    bool zero_config;       /* no file: loopback only, one accept-all tenant */

    /* A hash of each top-level key's value as the file wrote it, indexed
     * like mr_config_top_key (0: the key is absent), so that a reload can
     * tell which keys changed (mr_config_changed). `tenants` leaves out
     * each tenant's `integrations` and `webhooks`, which a reload applies.
     * Mappings hash the same in any key order. */
    uint64_t fingerprint[MR_CONFIG_TOP_KEYS];
};

/* One problem found while loading. */
struct mr_config_diag {
    int line;               /* 1-based; 0 when not tied to a place */
    int column;
    char msg[200];
};

struct mr_config_diags {
    struct mr_config_diag *items; /* owned; free with mr_config_diags_free */
    size_t n;
};
void mr_config_diags_free(struct mr_config_diags *d);

/* Loads a YAML file. On any problem returns MR_EINVAL, *out stays NULL and
 * diags (may be NULL) lists them all; err names the first. MR_EIO when the
 * file cannot be read. data_dir (may be NULL) overrides the file's. */
int mr_config_load(const char *path, const char *data_dir,
                   struct mr_config **out, struct mr_config_diags *diags,
                   struct mr_error *err);
/* The embedded defaults (zero_config): tenant "default" accepting every
 * recipient. data_dir NULL means "./mailroom-data". */
struct mr_config *mr_config_default(const char *data_dir);
void mr_config_free(struct mr_config *cfg);

/* The name of top-level key i (< MR_CONFIG_TOP_KEYS): "listen", ... */
const char *mr_config_top_key(size_t i);
/* The top-level keys whose value differs between the files a and b were
 * loaded from (their fingerprints), in file-schema order: up to cap names
 * (static strings) into names; returns how many differ. Values given on
 * the command line (serve --http ...) do not count: only the files. */
size_t mr_config_changed(const struct mr_config *a, const struct mr_config *b,
                         const char **names, size_t cap);

/* Where a recipient goes. Strings point into cfg (or into tag_buf). */
struct mr_route {
    const struct mr_tenant *tenant;
    const struct mr_inbox *inbox;  /* NULL for an accept_all tenant */
    char tag[65];                  /* plus-address tag, "" when none */
};
/* Resolves an RCPT address (any case; domain compared case-insensitively,
 * local part too, as helpdesks expect). Exact matches win over patterns,
 * patterns over catch-alls. MR_ENOTFOUND when no tenant takes it;
 * MR_EINVAL when addr is not an address. */
int mr_config_route(const struct mr_config *cfg, const char *addr,
                    struct mr_route *out, struct mr_error *err);

const struct mr_tenant *mr_config_tenant(const struct mr_config *cfg,
                                         const char *name);
/* The integration of tenant called name, or NULL. */
const struct mr_integration *mr_config_integration(const struct mr_config *cfg,
                                                   const char *tenant,
                                                   const char *name);
/* "slack", "github", "jira". */
const char *mr_integration_kind_name(enum mr_integration_kind k);

/* Splits a listen address as the loader accepts it ("127.0.0.1:2525",
 * "localhost:25", "[::1]:2525") into host (brackets removed, NUL-terminated,
 * at most host_size bytes) and port (1..65535), so listeners bind exactly
 * what `config check` approved. MR_EINVAL with the reason otherwise. */
int mr_config_listen_split(const char *addr, char *host, size_t host_size,
                           int *port, struct mr_error *err);

#endif
