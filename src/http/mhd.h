/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mhd.h - libmicrohttpd, loaded when an HTTP server starts.
 *
 * Why not linked: Debian's libmicrohttpd pulls in GnuTLS and, through it,
 * p11-kit, nettle, gmp, idn2 and more, whose loading and constructors cost
 * every run of the binary about 3 MB of resident memory and a millisecond
 * of start-up (measured: 3.9 MB for an empty program linked with it, 1.0 MB
 * without). `mailroom parse` and the other one-shot commands never serve
 * HTTP, and the parser's memory target is measured on them. So server.c
 * calls libmicrohttpd only through this table, filled by dlopen/dlsym when
 * a server starts; the types still come from <microhttpd.h>, so a
 * mismatch is a compile error, not a crash.
 *
 * Ownership: the table belongs to one server; mr__mhd_unload closes it.
 */
#ifndef MR_HTTP_MHD_H
#define MR_HTTP_MHD_H

#include <microhttpd.h>

#include "util/error.h"

/* The soname of the library the headers describe (libmicrohttpd12). */
#define MR__MHD_SONAME "libmicrohttpd.so.12"

struct mr__mhd {
    void *dl;
    __typeof__(&MHD_start_daemon) start_daemon;
    __typeof__(&MHD_stop_daemon) stop_daemon;
    __typeof__(&MHD_lookup_connection_value) lookup_connection_value;
    __typeof__(&MHD_get_connection_values) get_connection_values;
    __typeof__(&MHD_get_connection_info) get_connection_info;
    __typeof__(&MHD_create_response_from_buffer) create_response_from_buffer;
    __typeof__(&MHD_create_response_from_buffer_with_free_callback)
        create_response_from_buffer_with_free_callback;
    __typeof__(&MHD_create_response_from_callback) create_response_from_callback;
    __typeof__(&MHD_add_response_header) add_response_header;
    __typeof__(&MHD_queue_response) queue_response;
    __typeof__(&MHD_destroy_response) destroy_response;
    __typeof__(&MHD_suspend_connection) suspend_connection;
    __typeof__(&MHD_resume_connection) resume_connection;
};

/* MR_EIO with dlerror()'s reason when the library or a symbol is missing
 * (install libmicrohttpd12). */
int mr__mhd_load(struct mr__mhd *m, struct mr_error *err);
void mr__mhd_unload(struct mr__mhd *m);

#endif
