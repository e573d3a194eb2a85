/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sniff.c - libmagic through dlopen (see sniff.h for why).
 *
 * The handle is opened with MAGIC_MIME_TYPE only: no decompression
 * (MAGIC_COMPRESS would run decoders on hostile input to name what is
 * inside, and a zip bomb's type is "application/zip" either way) and no
 * following of anything outside the buffer. MAGIC_PARAM_BYTES_MAX is set
 * to MR_SNIFF_BYTES so libmagic's work is bounded by what it is given.
 */
#include "content/sniff.h"

#include <dlfcn.h>
#include <magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define MAGIC_SONAME "libmagic.so.1"

struct mr_sniff {
    char *soname;
    bool tried; /* loading was attempted */
    void *lib;
    magic_t m; /* NULL: no libmagic; every answer is "unknown" */
    char why[160];
    __typeof__(&magic_open) open_;
    __typeof__(&magic_close) close_;
    __typeof__(&magic_load) load;
    __typeof__(&magic_buffer) buffer;
    __typeof__(&magic_setparam) setparam;
    __typeof__(&magic_error) error;
};

struct mr_sniff *mr_sniff_new_from(const char *soname)
{
    struct mr_sniff *s = mr_xcalloc(1, sizeof *s);
    s->soname = mr_xstrndup(soname, strlen(soname));
    return s;
}

struct mr_sniff *mr_sniff_new(void)
{
    return mr_sniff_new_from(MAGIC_SONAME);
}

void mr_sniff_free(struct mr_sniff **sp)
{
    struct mr_sniff *s = sp ? *sp : NULL;
    if (s == NULL)
        return;
    if (s->m)
        s->close_(s->m);
    if (s->lib)
        dlclose(s->lib);
    free(s->soname);
    free(s);
    *sp = NULL;
}

/* Stores symbol `name` of lib into the function pointer at fp (POSIX
 * guarantees that a void * from dlsym converts to one). */
static bool load_sym(void *lib, const char *name, void *fp)
{
    void *p = dlsym(lib, name);
    if (p == NULL)
        return false;
    memcpy(fp, &p, sizeof p);
    return true;
}

static void fail(struct mr_sniff *s, const char *what, const char *detail)
{
    snprintf(s->why, sizeof s->why, "%s: %s", what,
             detail ? detail : "unknown error");
    if (s->m)
        s->close_(s->m);
    s->m = NULL;
    if (s->lib)
        dlclose(s->lib);
    s->lib = NULL;
}

static magic_t handle(struct mr_sniff *s)
{
    if (s->tried)
        return s->m;
    s->tried = true;
    s->lib = dlopen(s->soname, RTLD_NOW | RTLD_LOCAL);
    if (s->lib == NULL) {
        fail(s, "cannot load libmagic", dlerror());
        return NULL;
    }
    if (!load_sym(s->lib, "magic_open", &s->open_) ||
        !load_sym(s->lib, "magic_close", &s->close_) ||
        !load_sym(s->lib, "magic_load", &s->load) ||
        !load_sym(s->lib, "magic_buffer", &s->buffer) ||
        !load_sym(s->lib, "magic_setparam", &s->setparam) ||
        !load_sym(s->lib, "magic_error", &s->error)) {
        fail(s, "libmagic lacks a function", s->soname);
        return NULL;
    }
    s->m = s->open_(MAGIC_MIME_TYPE | MAGIC_ERROR);
    if (s->m == NULL) {
        fail(s, "magic_open failed", s->soname);
        return NULL;
    }
    /* NULL: the database the library was built with (the package's). */
    if (s->load(s->m, NULL) != 0) {
        fail(s, "cannot load the magic database", s->error(s->m));
        return NULL;
    }
    size_t max = MR_SNIFF_BYTES;
    s->setparam(s->m, MAGIC_PARAM_BYTES_MAX, &max);
    return s->m;
}

bool mr_sniff_available(const struct mr_sniff *s, const char **why)
{
    if (why)
        *why = s->why[0] ? s->why : "";
    return !s->tried || s->m != NULL;
}

bool mr_sniff_type(struct mr_sniff *s, const void *p, size_t n,
                   char out[MR_SNIFF_TYPE_MAX + 1])
{
    out[0] = '\0';
    magic_t m = handle(s);
    if (m == NULL)
        return false;
    if (n > MR_SNIFF_BYTES)
        n = MR_SNIFF_BYTES;
    /* libmagic reads nothing at a NULL pointer of length 0, but say it. */
    static const char empty[1] = {0};
    const char *t = s->buffer(m, n ? p : empty, n);
    if (t == NULL)
        return false;
    /* Only "type/subtype" in token characters, lower-cased: whatever the
     * database says goes into headers and JSON. */
    size_t len = 0;
    bool slash = false;
    for (const char *c = t; *c && *c != ';' && *c != ' '; c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '+' || ch == '-' || ch == '_' ||
                  (ch == '/' && !slash);
        if (!ok || len == MR_SNIFF_TYPE_MAX) {
            out[0] = '\0';
            return false;
        }
        slash |= ch == '/';
        out[len++] = ch;
    }
    out[len] = '\0';
    if (!slash || out[0] == '/' || out[len - 1] == '/') {
        out[0] = '\0';
        return false;
    }
    return true;
}
