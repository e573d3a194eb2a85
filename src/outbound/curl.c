/* SPDX-License-Identifier: Apache-2.0 */
/* curl.c - see curl.h. */
#include "outbound/curl.h"

#include <dlfcn.h>
#include <string.h>

int mr_curl_load(struct mr_curl *c, struct mr_error *err)
{
    memset(c, 0, sizeof *c);
    c->dl = dlopen(MR_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (c->dl == NULL)
        return mr_error_set(err, MR_EIO, "cannot load %s: %s", MR_CURL_SONAME,
                            dlerror());
    /* dlsym's void * stored through memcpy: the one conversion to a
     * function pointer C allows without a warning. */
    const struct {
        const char *name;
        void *slot;
    } syms[] = {
        {"curl_global_init", &c->global_init},
        {"curl_global_cleanup", &c->global_cleanup},
        {"curl_easy_init", &c->easy_init},
        {"curl_easy_setopt", &c->easy_setopt},
        {"curl_easy_perform", &c->easy_perform},
        {"curl_easy_getinfo", &c->easy_getinfo},
        {"curl_easy_cleanup", &c->easy_cleanup},
        {"curl_easy_strerror", &c->easy_strerror},
        {"curl_slist_append", &c->slist_append},
        {"curl_slist_free_all", &c->slist_free_all},
        {"curl_multi_init", &c->multi_init},
        {"curl_multi_setopt", &c->multi_setopt},
        {"curl_multi_add_handle", &c->multi_add_handle},
        {"curl_multi_remove_handle", &c->multi_remove_handle},
        {"curl_multi_perform", &c->multi_perform},
        {"curl_multi_poll", &c->multi_poll},
        {"curl_multi_wakeup", &c->multi_wakeup},
        {"curl_multi_info_read", &c->multi_info_read},
        {"curl_multi_cleanup", &c->multi_cleanup},
        {"curl_multi_strerror", &c->multi_strerror},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(c->dl, syms[i].name);
        if (p == NULL) {
            int rc = mr_error_set(err, MR_EIO, "%s has no %s", MR_CURL_SONAME,
                                  syms[i].name);
            mr_curl_unload(c);
            return rc;
        }
        memcpy(syms[i].slot, &p, sizeof p);
    }
    return MR_OK;
}

void mr_curl_unload(struct mr_curl *c)
{
    if (c->dl)
        dlclose(c->dl);
    memset(c, 0, sizeof *c);
}
