/* SPDX-License-Identifier: Apache-2.0 */
/*
 * router.c - method and path to route: literal segments plus one {id}.
 *
 * The table is a dozen rows, so a linear scan beats any index. The path
 * is compared segment by segment without copying; "{id}" matches one
 * non-empty segment. A path that matches some pattern under another
 * method is a 405 with the methods it does accept (RFC 9110 15.5.6), not
 * a 404.
 */
#include <stdio.h>
#include <string.h>

#include "http/http-private.h"

/* Splits "/a/b/c" into spans "a","b","c". Returns the count, or -1 when
 * the path is not absolute, has an empty segment ("//", trailing '/') or
 * more than max segments. "/" alone has zero segments. */
static int split_path(const char *path, mr_span *seg, int max)
{
    if (path == NULL || path[0] != '/')
        return -1;
    const char *p = path + 1;
    if (*p == '\0')
        return 0;
    int n = 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || n == max)
            return -1;
        seg[n++] = mr_span_make(p, len);
        if (slash == NULL)
            return n;
        p = slash + 1;
    }
}

static bool pattern_matches(const char *pattern, const mr_span *seg, int nseg,
                            mr_span *id)
{
    mr_span pseg[MR__HTTP_MAX_SEGMENTS];
    int np = split_path(pattern, pseg, MR__HTTP_MAX_SEGMENTS);
    if (np != nseg)
        return false;
    mr_span found = MR_SPAN_NULL;
    for (int i = 0; i < np; i++) {
        if (mr_span_eq(pseg[i], MR_SPAN_LIT("{id}")))
            found = seg[i];
        else if (!mr_span_eq(pseg[i], seg[i]))
            return false;
    }
    *id = found;
    return true;
}

static bool method_is(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return true;
    /* RFC 9110 9.3.2: HEAD is GET without the body; the daemon drops the
     * body itself. */
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

static void allow_add(char *allow, size_t size, const char *m)
{
    size_t len = strlen(allow);
    /* Already listed? Compare whole items only. */
    const char *p = allow;
    size_t mlen = strlen(m);
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t ilen = comma ? (size_t)(comma - p) : strlen(p);
        if (ilen == mlen && memcmp(p, m, mlen) == 0)
            return;
        if (comma == NULL)
            break;
        p = comma + 2;
    }
    snprintf(allow + len, size - len, "%s%s", len ? ", " : "", m);
}

enum mr__http_match mr__http_route_find(const struct mr__http_route *routes,
                                        size_t n, const char *method,
                                        const char *path,
                                        const struct mr__http_route **route,
                                        mr_span *id, char *allow,
                                        size_t allow_size)
{
    *route = NULL;
    *id = MR_SPAN_NULL;
    if (allow_size)
        allow[0] = '\0';
    mr_span seg[MR__HTTP_MAX_SEGMENTS];
    int nseg = split_path(path, seg, MR__HTTP_MAX_SEGMENTS);
    if (nseg < 0)
        return MR__HTTP_NOT_FOUND;

    bool path_known = false;
    for (size_t i = 0; i < n; i++) {
        mr_span got;
        if (!pattern_matches(routes[i].pattern, seg, nseg, &got))
            continue;
        if (method_is(routes[i].method, method)) {
            *route = &routes[i];
            *id = got;
            return MR__HTTP_MATCH;
        }
        path_known = true;
        if (allow_size) {
            allow_add(allow, allow_size, routes[i].method);
            if (strcmp(routes[i].method, "GET") == 0)
                allow_add(allow, allow_size, "HEAD");
        }
    }
    return path_known ? MR__HTTP_BAD_METHOD : MR__HTTP_NOT_FOUND;
}
