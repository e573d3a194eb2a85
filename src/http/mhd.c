/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mhd.c - filling the libmicrohttpd table (see mhd.h for why).
 */
#include "http/mhd.h"

#include <dlfcn.h>
#include <string.h>

int mr__mhd_load(struct mr__mhd *m, struct mr_error *err)
{
    memset(m, 0, sizeof *m);
    m->dl = dlopen(MR__MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL)
        return mr_error_set(err, MR_EIO, "cannot load %s: %s", MR__MHD_SONAME,
                            dlerror());
    /* One entry per symbol; dlsym's void * is stored through memcpy, the
     * one conversion to a function pointer C allows without a warning. */
    const struct {
        const char *name;
        void *slot;
    } syms[] = {
        {"MHD_start_daemon", &m->start_daemon},
        {"MHD_stop_daemon", &m->stop_daemon},
        {"MHD_lookup_connection_value", &m->lookup_connection_value},
        {"MHD_get_connection_values", &m->get_connection_values},
        {"MHD_get_connection_info", &m->get_connection_info},
        {"MHD_create_response_from_buffer", &m->create_response_from_buffer},
        {"MHD_create_response_from_buffer_with_free_callback",
         &m->create_response_from_buffer_with_free_callback},
        {"MHD_create_response_from_callback",
         &m->create_response_from_callback},
        {"MHD_add_response_header", &m->add_response_header},
        {"MHD_queue_response", &m->queue_response},
        {"MHD_destroy_response", &m->destroy_response},
        {"MHD_suspend_connection", &m->suspend_connection},
        {"MHD_resume_connection", &m->resume_connection},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(m->dl, syms[i].name);
        if (p == NULL) {
            int rc = mr_error_set(err, MR_EIO, "%s has no %s", MR__MHD_SONAME,
                                  syms[i].name);
            mr__mhd_unload(m);
            return rc;
        }
        memcpy(syms[i].slot, &p, sizeof p);
    }
    return MR_OK;
}

void mr__mhd_unload(struct mr__mhd *m)
{
    if (m->dl)
        dlclose(m->dl);
    memset(m, 0, sizeof *m);
}
