/* SPDX-License-Identifier: Apache-2.0 */
/*
 * curl.h - libcurl, loaded when the webhook dispatcher starts.
 * curl_multi_poll and curl_multi_wakeup need libcurl 7.68 or later.
 *
 * Why not linked: Debian's libcurl brings some twenty shared libraries
 * (nghttp2, libssh2, rtmp, GSSAPI, LDAP, psl, brotli, zstd, ...) whose
 * loading every run of the binary would pay, `mailroom parse` included,
 * whose start-up is part of the parse benchmark; only `serve` with a
 * webhook configured needs curl. The same reasoning and pattern as
 * src/http/mhd.h: the types come from <curl/curl.h>, so a mismatch is a
 * compile error, and the table is filled by dlopen/dlsym.
 *
 * Ownership: the table belongs to an mr_http_out (http_out.h);
 * mr_curl_unload closes it.
 */
#ifndef MR_OUTBOUND_CURL_H
#define MR_OUTBOUND_CURL_H

#include <curl/curl.h>

#include "util/error.h"

/* The soname of the library the headers describe (libcurl4). */
#define MR_CURL_SONAME "libcurl.so.4"

struct mr_curl {
    void *dl;
    __typeof__(&curl_global_init) global_init;
    __typeof__(&curl_global_cleanup) global_cleanup;
    __typeof__(&curl_easy_init) easy_init;
    __typeof__(&curl_easy_setopt) easy_setopt;
    __typeof__(&curl_easy_perform) easy_perform;
    __typeof__(&curl_easy_getinfo) easy_getinfo;
    __typeof__(&curl_easy_cleanup) easy_cleanup;
    __typeof__(&curl_easy_strerror) easy_strerror;
    __typeof__(&curl_slist_append) slist_append;
    __typeof__(&curl_slist_free_all) slist_free_all;
    /* The multi interface: many transfers on one thread (http_out.h). */
    __typeof__(&curl_multi_init) multi_init;
    __typeof__(&curl_multi_setopt) multi_setopt;
    __typeof__(&curl_multi_add_handle) multi_add_handle;
    __typeof__(&curl_multi_remove_handle) multi_remove_handle;
    __typeof__(&curl_multi_perform) multi_perform;
    __typeof__(&curl_multi_poll) multi_poll;
    __typeof__(&curl_multi_wakeup) multi_wakeup;
    __typeof__(&curl_multi_info_read) multi_info_read;
    __typeof__(&curl_multi_cleanup) multi_cleanup;
    __typeof__(&curl_multi_strerror) multi_strerror;
};

/* MR_EIO with dlerror()'s reason when the library or a symbol is missing
 * (install libcurl4). */
int mr_curl_load(struct mr_curl *c, struct mr_error *err);
void mr_curl_unload(struct mr_curl *c);

#endif
