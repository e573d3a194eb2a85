/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tz.c - TZif files and POSIX TZ strings (see tz.h).
 *
 * The POSIX rule of the footer ("CET-1CEST,M3.5.0,M10.5.0/3") is
 * evaluated for the year of the instant: its start and end are local
 * times (start in standard time, end in daylight time), turned into UTC
 * for that year and compared. Rules of the forms Jn, n and Mm.w.d and
 * transition times from -167 to 167 hours (version 3) are understood; a
 * rule this code cannot read leaves the zone on its standard offset for
 * instants after the table, rather than failing the load.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "tz.h"

struct rule_date {
    char kind; /* 'J' (1..365, no Feb 29), 'D' (0..365), 'M' */
    int a, b, c; /* J/D: day in a; M: month a, week b, weekday c */
    int32_t secs; /* local time of day of the change */
};

struct mr_tz {
    size_t n;      /* transitions */
    int64_t *at;   /* ascending */
    int32_t *off;  /* offset from at[i] on */
    int32_t first; /* before at[0] (or always, without transitions) */
    bool has_rule; /* footer read */
    bool has_dst;
    int32_t std_off, dst_off; /* seconds east */
    struct rule_date start, end;
};

/* ---- calendar ------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t year_of_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp + (mp < 10 ? 3 : -9);
    return yoe + era * 400 + (m <= 2);
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Local seconds since the epoch, at 00:00 of the rule's day in year y. */
static int64_t rule_day(const struct rule_date *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    switch (r->kind) {
    case 'J': {
        int64_t d = r->a - 1;
        if (leap(y) && r->a >= 60)
            d++;
        return (jan1 + d) * 86400;
    }
    case 'D': return (jan1 + r->a) * 86400;
    default: {
        static const int mdays[] = {31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
        int len = mdays[r->a - 1] + (r->a == 2 && leap(y));
        int64_t first = days_from_civil(y, r->a, 1);
        int wd = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01: Thursday */
        int day = 1 + (r->c - wd + 7) % 7 + (r->b - 1) * 7;
        while (day > len)
            day -= 7;
        return (first + day - 1) * 86400;
    }
    }
}

/* ---- POSIX TZ strings ----------------------------------------------- */

static bool tz_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (e == NULL)
            return false;
        *p = e + 1;
        return true;
    }
    size_t n = 0;
    while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))
        n++;
    if (n < 3)
        return false;
    *p = s + n;
    return true;
}

static bool tz_num(const char **p, int max, int *out)
{
    const char *s = *p;
    int v = 0, n = 0;
    while (*s >= '0' && *s <= '9' && n < 4) {
        v = v * 10 + (*s++ - '0');
        n++;
    }
    if (n == 0 || v > max)
        return false;
    *p = s;
    *out = v;
    return true;
}

/* [+-]hh[:mm[:ss]] with hh up to max_h; seconds, sign as written. */
static bool tz_time(const char **p, int max_h, int32_t *out)
{
    const char *s = *p;
    int sign = 1, h, m = 0, sec = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (!tz_num(&s, max_h, &h))
        return false;
    if (*s == ':' && (s++, !tz_num(&s, 59, &m)))
        return false;
    if (*s == ':' && (s++, !tz_num(&s, 59, &sec)))
        return false;
    *p = s;
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
}

static bool tz_date(const char **p, struct rule_date *r)
{
    const char *s = *p;
    r->secs = 7200; /* 02:00 by default */
    if (*s == 'J') {
        s++;
        r->kind = 'J';
        if (!tz_num(&s, 365, &r->a) || r->a < 1)
            return false;
    } else if (*s == 'M') {
        s++;
        r->kind = 'M';
        if (!tz_num(&s, 12, &r->a) || r->a < 1 || *s++ != '.' ||
            !tz_num(&s, 5, &r->b) || r->b < 1 || *s++ != '.' ||
            !tz_num(&s, 6, &r->c))
            return false;
    } else {
        r->kind = 'D';
        if (!tz_num(&s, 365, &r->a))
            return false;
    }
    if (*s == '/' && (s++, !tz_time(&s, 167, &r->secs)))
        return false;
    *p = s;
    return true;
}

static bool parse_posix(struct mr_tz *tz, const char *s)
{
    int32_t off;
    if (!tz_name(&s) || !tz_time(&s, 24, &off))
        return false;
    tz->std_off = -off; /* POSIX counts west */
    if (*s == '\0') {
        tz->has_rule = true;
        return true;
    }
    if (!tz_name(&s))
        return false;
    tz->dst_off = tz->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!tz_time(&s, 24, &off))
            return false;
        tz->dst_off = -off;
    }
    if (*s++ != ',' || !tz_date(&s, &tz->start) || *s++ != ',' ||
        !tz_date(&s, &tz->end) || *s != '\0')
        return false;
    tz->has_rule = tz->has_dst = true;
    return true;
}

static int32_t rule_offset(const struct mr_tz *tz, int64_t t)
{
    if (!tz->has_dst)
        return tz->std_off;
    int64_t y = year_of_days(floor_div(t + tz->std_off, 86400));
    int64_t start = rule_day(&tz->start, y) + tz->start.secs - tz->std_off;
    int64_t end = rule_day(&tz->end, y) + tz->end.secs - tz->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? tz->dst_off : tz->std_off;
}

/* ---- TZif ----------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static bool read_counts(const unsigned char *p, size_t len, struct counts *c,
                        char *version)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return false;
    *version = (char)p[4];
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    /* RFC 8536 3.1: typecnt must not be zero; the caps keep the size
     * arithmetic below far from overflow. */
    return c->type >= 1 && c->type <= 256 && c->time <= 100000 &&
           c->leap <= 10000 && c->chars <= 100000 && c->isut <= 256 &&
           c->isstd <= 256;
}

static size_t block_len(const struct counts *c, size_t tsize)
{
    return c->time * tsize + c->time + c->type * 6 + c->chars +
           c->leap * (tsize + 4) + c->isstd + c->isut;
}

int mr_tz_parse(const void *data, size_t len, struct mr_tz **out,
                struct mr_error *err)
{
    const unsigned char *p = data;
    struct counts c;
    char version;
    *out = NULL;
    if (!read_counts(p, len, &c, &version))
        return mr_error_set(err, MR_EINVAL, "not a TZif file");
    size_t tsize = 4, hdr = 44;
    if (version >= '2') {
        /* Skip the version 1 block: the 64-bit one follows. */
        size_t skip = hdr + block_len(&c, 4);
        if (skip > len || !read_counts(p + skip, len - skip, &c, &version))
            return mr_error_set(err, MR_EINVAL, "truncated TZif file");
        p += skip;
        len -= skip;
        tsize = 8;
    }
    size_t blen = block_len(&c, tsize);
    if (hdr + blen > len)
        return mr_error_set(err, MR_EINVAL, "truncated TZif file");
    const unsigned char *times = p + hdr;
    const unsigned char *idx = times + c.time * tsize;
    const unsigned char *types = idx + c.time;

    struct mr_tz *tz = mr_xcalloc(1, sizeof(*tz));
    tz->n = c.time;
    tz->at = mr_xcalloc(c.time ? c.time : 1, sizeof(*tz->at));
    tz->off = mr_xcalloc(c.time ? c.time : 1, sizeof(*tz->off));
    tz->first = (int32_t)be32(types);
    for (uint32_t i = 0; i < c.time; i++) {
        tz->at[i] = tsize == 8 ? be64(times + 8 * i)
                               : (int64_t)(int32_t)be32(times + 4 * i);
        if (idx[i] >= c.type || (i > 0 && tz->at[i] <= tz->at[i - 1])) {
            mr_tz_free(&tz);
            return mr_error_set(err, MR_EINVAL, "inconsistent TZif file");
        }
        tz->off[i] = (int32_t)be32(types + 6 * idx[i]);
    }
    if (tsize == 8) {
        /* The footer: "\n" TZ string "\n". */
        const char *f = (const char *)p + hdr + blen;
        size_t flen = len - hdr - blen;
        if (flen >= 2 && f[0] == '\n' && f[flen - 1] == '\n' && flen < 128) {
            char rule[128];
            memcpy(rule, f + 1, flen - 2);
            rule[flen - 2] = '\0';
            if (rule[0] != '\0' && !parse_posix(tz, rule))
                tz->has_rule = tz->has_dst = false;
        }
    }
    *out = tz;
    return 0;
}

int32_t mr_tz_offset(const struct mr_tz *tz, int64_t t)
{
    if (tz->n == 0 || t < tz->at[0])
        return tz->n == 0 && tz->has_rule ? rule_offset(tz, t) : tz->first;
    if (t >= tz->at[tz->n - 1] && tz->has_rule)
        return rule_offset(tz, t);
    size_t lo = 0, hi = tz->n; /* last at[i] <= t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off[lo];
}

static bool valid_name(const char *s)
{
    if (s[0] == '\0' || s[0] == '/' || strstr(s, "..") != NULL ||
        strlen(s) > 200)
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '/' || ch == '_' ||
              ch == '+' || ch == '-'))
            return false;
    }
    return true;
}

int mr_tz_load(const char *dir, const char *name, struct mr_tz **out,
               struct mr_error *err)
{
    *out = NULL;
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
        struct mr_tz *tz = mr_xcalloc(1, sizeof(*tz));
        tz->at = mr_xcalloc(1, sizeof(*tz->at));
        tz->off = mr_xcalloc(1, sizeof(*tz->off));
        *out = tz;
        return 0;
    }
    if (!valid_name(name))
        return mr_error_set(err, MR_EINVAL, "'%s' is not a time zone name",
                            name);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : MR_TZ_DEFAULT_DIR, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mr_error_set(err, errno == ENOENT ? MR_ENOTFOUND : MR_EIO,
                            "time zone %s: %s (%s)", name, strerror(errno),
                            path);
    char *buf = mr_xmalloc(MR_TZ_MAX_FILE);
    size_t got = 0;
    for (;;) {
        ssize_t k = read(fd, buf + got, MR_TZ_MAX_FILE - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
        if (got == MR_TZ_MAX_FILE)
            break;
    }
    close(fd);
    struct mr_error e = {0};
    int rc = mr_tz_parse(buf, got, out, &e);
    free(buf);
    if (rc < 0)
        mr_error_set(err, rc, "time zone %s: %s", name, e.msg);
    return rc;
}

void mr_tz_free(struct mr_tz **tz)
{
    if (*tz == NULL)
        return;
    free((*tz)->at);
    free((*tz)->off);
    free(*tz);
    *tz = NULL;
}
