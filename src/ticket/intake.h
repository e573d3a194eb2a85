/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intake.h - the one way a message gets in: make it durable, queue it.
 *
 * Every channel (SMTP/LMTP, `mailroom ingest`, POST /api/v1/messages, the
 * provider webhook) ends here. mr_intake_accept_raw writes the raw bytes to
 * the blob store (fsync, rename, fsync of the folder) and commits one job
 * per tenant among the recipients, in one store call; only when both are
 * durable does it return 0, and only then may the caller acknowledge
 * (250, 202, 204, exit 0). On MR_EIO/MR_EAGAIN the caller answers with a
 * temporary failure (451, 503, exit 75): the sender keeps the message.
 *
 * Counting offers per channel (received, acked, refused) is the channel's
 * job, since only it sees refusals that never reach intake (401, 550 at
 * RCPT); intake counts the duplicates it drops.
 *
 * Threads: one mr_intake serves all threads; calls are thread-safe.
 * Ownership: the intake borrows cfg, store, blob and metrics, which must
 * outlive it.
 */
#ifndef MR_INTAKE_H
#define MR_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"
#include "config/config.h"
#include "store/store.h"
#include "util/error.h"
#include "util/metrics.h"

struct mr_intake;

int mr_intake_new(const struct mr_config *cfg, struct mr_store *store,
                  struct mr_blob *blob, struct mr_metrics *metrics,
                  struct mr_intake **out, struct mr_error *err);
void mr_intake_free(struct mr_intake *in);

/* Who sent what to whom, as the channel saw it. Strings are borrowed. */
struct mr_intake_env {
    enum mr_channel channel;
    const char *tenant;        /* non-NULL: everything goes to this tenant
                                  (an API token's); rcpt are then only
                                  recorded. NULL: route each recipient. */
    const char *mail_from;     /* may be NULL */
    const char *const *rcpt;
    size_t nrcpt;
    const char *remote_ip;     /* may be NULL */
    const char *helo;          /* may be NULL */
    bool tls;
};

/* Called (from the accepting thread) after jobs were committed, so that
 * idle workers start at once instead of at their next poll. */
void mr_intake_on_enqueue(struct mr_intake *in, void (*fn)(void *ctx),
                          void *ctx);

/* Tells the same listener that a job was queued by other means (a
 * release of ignored mail, src/store/tickets.c). NULL in: nothing. */
void mr_intake_wake(struct mr_intake *in);

/* Routes one recipient through the configuration (SMTP RCPT time). */
int mr_intake_route(struct mr_intake *in, const char *rcpt,
                    struct mr_route *out, struct mr_error *err);

#define MR_INTAKE_MAX_JOBS 16 /* tenants one message may reach */

struct mr_intake_result {
    char raw_sha256[MR_BLOB_KEY_LEN + 1]; /* "" for webhook events */
    int64_t job_ids[MR_INTAKE_MAX_JOBS];
    size_t njobs;
    bool duplicate;            /* webhook event seen before: nothing new */
};

/* Spools raw and queues it. Recipients that route nowhere are left out;
 * none at all: MR_ENOTFOUND. Empty input or input over the size limit:
 * MR_EINVAL / MR_ELIMIT. */
int mr_intake_accept_raw(struct mr_intake *in, const struct mr_intake_env *env,
                         const char *raw, size_t len,
                         struct mr_intake_result *res, struct mr_error *err);

/* The To and Cc addresses of a raw message, at most max (for channels
 * without an envelope: `mailroom ingest` without --rcpt, POST
 * /api/v1/messages without rcpt=). Only the header block is parsed; its
 * result is returned, so MR_EINVAL says the input is not a message at all.
 * max 0: only that check, no list. *list is a malloc'ed array of malloc'ed
 * strings, freed with mr_intake_free_list; *n may be 0. */
int mr_intake_header_recipients(const char *raw, size_t len, size_t max,
                                char ***list, size_t *n, struct mr_error *err);
void mr_intake_free_list(char **list, size_t n);

/* A provider webhook event (JSON, already authenticated): validated
 * (an object with at least from and one of subject/text/html), queued for
 * the configured webhook tenant, deduplicated on its message_id (a repeat
 * returns 0 with res->duplicate set). MR_EINVAL with a reason otherwise. */
int mr_intake_accept_event(struct mr_intake *in, const char *json,
                           size_t len, struct mr_intake_result *res,
                           struct mr_error *err);

#endif
