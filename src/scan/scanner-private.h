/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scanner-private.h - the scanner's state, shared by its thread
 * (scanner.c) and the readers of its status (status.c). status.c is apart
 * so that the HTTP server's health route needs neither the thread nor the
 * store's scan queue to link.
 */
#ifndef MR_SCAN_SCANNER_PRIVATE_H
#define MR_SCAN_SCANNER_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>

#include "scan/scanner.h"

struct mr_scanner {
    const struct mr_config *cfg;
    struct mr_store *st;
    struct mr_blob *blob;
    struct mr_log *log;
    struct mr_metrics *metrics; /* may be NULL */
    struct mr_clamd_options copt;
    pthread_t thread;
    pthread_mutex_t mu; /* guards status and the sleep */
    pthread_cond_t cv;
    atomic_bool stopping;
    struct mr_scanner_status status;
    /* The thread's own: */
    int down_rounds;   /* consecutive rounds clamd could not be reached */
    bool store_failed; /* this round: the store or blob folder failed */
    int store_rounds;  /* consecutive rounds that happened */
};

#endif
