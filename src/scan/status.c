/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.c - what the health route reads of the scanner: its counters and
 * the clamd options the configuration gives (scanner.h).
 */
#include "scan/scanner-private.h"

#include <string.h>

void mr_scanner_clamd_options(const struct mr_config *cfg,
                              struct mr_clamd_options *o)
{
    *o = (struct mr_clamd_options){.socket = cfg->clamd.socket,
                                   .address = cfg->clamd.address,
                                   .timeout_ms = cfg->clamd.timeout_ms,
                                   .total_ms = cfg->clamd.scan_timeout_ms};
}

void mr_scanner_status(struct mr_scanner *sc, struct mr_scanner_status *out)
{
    memset(out, 0, sizeof *out);
    if (sc == NULL)
        return;
    pthread_mutex_lock(&sc->mu);
    *out = sc->status;
    pthread_mutex_unlock(&sc->mu);
}
