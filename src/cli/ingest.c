/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest.c - `mailroom ingest [--rcpt ADDR]... [--from ADDR] < message`,
 * the MTA pipe transport (Postfix pipe(8), procmail, fetchmail).
 *
 * The exit status is the whole protocol with the MTA, so it follows
 * sysexits.h as MTAs read it: 0 once the message is durable (the MTA may
 * forget it), 75 EX_TEMPFAIL when it may try again (storage failed), 67
 * EX_NOUSER when no recipient is served here (the MTA bounces), 65
 * EX_DATAERR for input that is not usable at all.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/instance.h"
#include "ticket/intake.h"
#include "util/buf.h"
#include "util/metrics.h"

#define MAX_RCPT 1000

static void usage(void)
{
    fputs("usage: mailroom ingest [--rcpt ADDR]... [--from ADDR] "
          "[--data DIR] [--config FILE] < message\n"
          "Without --rcpt the To and Cc addresses of the message are used.\n"
          "Exit: 0 stored, 65 unusable input, 67 unknown recipient, "
          "75 try again later.\n",
          stderr);
}

/* Reads all of stdin, at most max bytes; sets *too_big past that. */
static int read_stdin(struct mr_buf *b, size_t max, bool *too_big)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (b->len + (size_t)n > max) {
            *too_big = true;
            return 0;
        }
        mr_buf_append(b, chunk, (size_t)n);
    }
}

static int exit_for(int rc)
{
    switch (rc) {
    case MR_OK:
        return MR_EXIT_OK;
    case MR_ENOTFOUND:
        return MR_EXIT_NOUSER;
    case MR_EINVAL:
    case MR_ELIMIT:
        return MR_EXIT_DATAERR;
    default:
        return MR_EXIT_TEMPFAIL;
    }
}

int mr_cli_ingest(int argc, char **argv)
{
    struct mr_instance_args ia = {0};
    const char *from = NULL;
    const char **rcpt = mr_xcalloc(MAX_RCPT, sizeof *rcpt);
    size_t nrcpt = 0;
    int status = MR_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *one = NULL;
        const struct mr_cli_opt opts[] = {{"--from", &from}, {"--rcpt", &one}};
        int r = mr_instance_opt(argc, argv, &i, &ia, opts, 2);
        if (r < 0)
            goto out;
        if (r > 0 && one) {
            /* --rcpt repeats: each one is collected. */
            if (nrcpt == MAX_RCPT) {
                fprintf(stderr, "mailroom ingest: more than %d --rcpt\n",
                        MAX_RCPT);
                goto out;
            }
            rcpt[nrcpt++] = one;
        }
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0) {
            usage();
            status = MR_EXIT_OK;
            goto out;
        }
        fprintf(stderr, "mailroom ingest: unknown argument '%s'\n", argv[i]);
        usage();
        goto out;
    }

    /* A configuration or store that cannot be opened is a temporary
     * failure for the MTA: it keeps the message and retries, so an
     * operator's mistake never bounces mail. */
    struct mr_instance inst;
    int orc = mr_instance_open("ingest", &ia,
                               MR_INSTANCE_STORE | MR_INSTANCE_BLOB |
                                   MR_INSTANCE_MIGRATE | MR_INSTANCE_MKDIR,
                               &inst);
    if (orc != 0) {
        status = MR_EXIT_TEMPFAIL;
        goto out;
    }

    struct mr_buf msg;
    mr_buf_init(&msg, 0);
    bool too_big = false;
    size_t max = inst.cfg->limits.message_size ? inst.cfg->limits.message_size
                                               : (size_t)50 << 20;
    char **hdr = NULL;
    size_t nhdr = 0;
    struct mr_error err = {0};
    if (read_stdin(&msg, max, &too_big) != 0) {
        fprintf(stderr, "mailroom ingest: reading the message: %s\n",
                strerror(errno));
        status = MR_EXIT_TEMPFAIL;
        goto done;
    }
    if (too_big) {
        fprintf(stderr, "mailroom ingest: message larger than the limit of "
                        "%zu bytes\n", max);
        status = MR_EXIT_DATAERR;
        goto done;
    }
    if (msg.len == 0) {
        fprintf(stderr, "mailroom ingest: empty input: no message\n");
        status = MR_EXIT_DATAERR;
        goto done;
    }
    if (nrcpt == 0) {
        if (mr_intake_header_recipients(msg.p, msg.len, MAX_RCPT, &hdr, &nhdr,
                                        &err) !=
                MR_OK ||
            nhdr == 0) {
            fprintf(stderr, "mailroom ingest: no --rcpt given and the message "
                            "has no usable To or Cc address\n");
            status = MR_EXIT_DATAERR;
            goto done;
        }
    }

    struct mr_metrics metrics = {0};
    struct mr_intake *in = NULL;
    if (mr_intake_new(inst.cfg, inst.store, inst.blob, &metrics, &in, &err) !=
        MR_OK) {
        fprintf(stderr, "mailroom ingest: %s\n", err.msg);
        status = MR_EXIT_SOFTWARE;
        goto done;
    }
    struct mr_intake_env env = {
        .channel = MR_CH_PIPE,
        .mail_from = from,
        .rcpt = nrcpt ? rcpt : (const char *const *)hdr,
        .nrcpt = nrcpt ? nrcpt : nhdr,
    };
    struct mr_intake_result res;
    int rc = mr_intake_accept_raw(in, &env, msg.p, msg.len, &res, &err);
    mr_intake_free(in);
    status = exit_for(rc);
    if (rc == MR_OK)
        fprintf(stderr, "mailroom ingest: queued as job %lld (%s)\n",
                (long long)res.job_ids[0], res.raw_sha256);
    else
        fprintf(stderr, "mailroom ingest: %s\n", err.msg);
done:
    mr_intake_free_list(hdr, nhdr);
    mr_buf_release(&msg);
    mr_instance_close(&inst);
out:
    free(rcpt);
    return status;
}
