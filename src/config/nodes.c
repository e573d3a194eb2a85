/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nodes.c - reading values out of the YAML tree, shared by every loader of
 * a YAML file (the configuration, config.c; the rules, rules_load.c), so
 * that a size, a duration or a misspelt key reads and is reported the
 * same way in both files. Declared in config-private.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-private.h"
#include "util/buf.h"
#include "util/span.h"

const char *mr__cfg_show(const struct mr__cfg_node *n, char *buf, size_t size)
{
    if (n->kind != MR__CFG_SCALAR)
        return n->kind == MR__CFG_MAP ? "a mapping" : "a list";
    size_t j = 0;
    for (size_t i = 0; i < n->len && j + 4 < size; i++) {
        unsigned char c = (unsigned char)n->str[i];
        buf[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (j + 4 >= size && n->len > j) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
    return buf;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

size_t mr__cfg_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t d[33][33];
    if (na > 32 || nb > 32)
        return SIZE_MAX;
    for (size_t i = 0; i <= na; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= na; i++) {
        for (size_t j = 1; j <= nb; j++) {
            unsigned char x = lower((unsigned char)a[i - 1]);
            unsigned char y = lower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (x != y);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && x == lower((unsigned char)b[j - 2]) &&
                lower((unsigned char)a[i - 2]) == y &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[na][nb];
}

bool mr__cfg_parse_int(const char *s, size_t n, int64_t *out, size_t *used)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    size_t start = i;
    uint64_t v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v > (UINT64_MAX - 9) / 10 || i - start >= 18)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i == start)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    *used = i;
    return true;
}

const struct mr__cfg_unit mr__cfg_size_units[] = {
    {"", 1},         {"B", 1},           {"KB", 1000},
    {"MB", 1000000}, {"GB", 1000000000}, {"KiB", 1024},
    {"MiB", 1u << 20}, {"GiB", 1u << 30}, {NULL, 0},
};

const struct mr__cfg_unit mr__cfg_duration_units[] = {
    {"", 1000}, {"ms", 1},       {"s", 1000},
    {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    {NULL, 0},
};

bool mr__cfg_parse_unit(const struct mr__cfg_node *v,
                        const struct mr__cfg_unit *units, uint64_t *out,
                        bool *bad_unit)
{
    int64_t x;
    size_t used;
    *bad_unit = false;
    if (v->kind != MR__CFG_SCALAR ||
        !mr__cfg_parse_int(v->str, v->len, &x, &used) || x < 0)
        return false;
    mr_span rest = mr_span_trim(mr_span_make(v->str + used, v->len - used));
    for (const struct mr__cfg_unit *u = units; u->name; u++) {
        if (mr_span_ieq(rest, u->name)) {
            if (u->mult != 0 && (uint64_t)x > UINT64_MAX / u->mult)
                return false;
            *out = (uint64_t)x * u->mult;
            return true;
        }
    }
    *bad_unit = true;
    return false;
}

int mr__cfg_read_file(const char *path, struct mr_buf *b, struct mr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mr_error_set(err, MR_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mr_error_set(err, MR_EIO, "%s: not a regular file", path);
    }
    /* One byte past the cap tells a file that is too large. */
    mr_buf_init(b, MR__CFG_MAX_FILE + 1);
    for (;;) {
        size_t room = MR__CFG_MAX_FILE + 1 - b->len;
        size_t want = room < 65536 ? room : 65536;
        char *p = want > 0 ? mr_buf_reserve(b, want) : NULL;
        if (p == NULL)
            break;
        ssize_t n = read(fd, p, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            mr_buf_release(b);
            return mr_error_set(err, MR_EIO, "%s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        mr_buf_commit(b, (size_t)n);
    }
    close(fd);
    return 0;
}
