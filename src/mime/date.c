/* SPDX-License-Identifier: Apache-2.0 */
/*
 * date.c - message dates to seconds since the epoch, UTC.
 *
 * A small cursor parser rather than strptime: strptime depends on the
 * locale, accepts too much in some places and too little in others, and
 * timegm depends on nothing we control. The calendar arithmetic is Howard
 * Hinnant's days_from_civil / civil_from_days, exact for every proleptic
 * Gregorian date.
 *
 * Forms, after an optional day name:
 *   RFC 5322     [Mon,] 6 Jan 2025 10:00[:00] +0000 [(comment)]
 *   with dashes  Monday, 06-Jan-2025 10:00:00 +0100 (CET)
 *   asctime      Mon Jan  6 10:00:00 [zone] 2025
 *   ISO 8601     2025-01-06[T10:00[:00[.fff]]][Z|+01:00]
 * Anything left over after the zone, other than comments and one extra
 * zone name ("+0100 CET"), makes the date invalid: a half-understood date
 * is worse than none, as the caller then falls back to the arrival time.
 */
#include "date.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include "../util/error.h"

/* Comments nest (RFC 5322 3.2.2); deeper nesting is not a date. */
#define MAX_COMMENT_DEPTH 16

struct cur {
    const char *p;
    size_t n, i;
    unsigned flags;
};

static bool at_end(const struct cur *c)
{
    return c->i >= c->n;
}

static unsigned char peek(const struct cur *c)
{
    return at_end(c) ? 0 : (unsigned char)c->p[c->i];
}

static bool is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Skips whitespace and comments; false on an unbalanced comment. */
static bool skip_cfws(struct cur *c)
{
    while (!at_end(c)) {
        unsigned char ch = peek(c);
        if (mr_is_wsp(ch)) {
            c->i++;
            continue;
        }
        if (ch != '(')
            break;
        int depth = 0;
        while (!at_end(c)) {
            ch = peek(c);
            c->i++;
            if (ch == '\\') {
                c->i++;
            } else if (ch == '(') {
                if (++depth > MAX_COMMENT_DEPTH)
                    return false;
            } else if (ch == ')') {
                if (--depth == 0)
                    break;
            }
        }
        if (depth != 0)
            return true; /* unterminated trailing comment: ignore it */
    }
    return true;
}

/* Reads 1..max digits; stores the value and the digit count. */
static bool number(struct cur *c, int max, int *v_r, int *len_r)
{
    int v = 0, len = 0;
    while (len < max && is_digit(peek(c))) {
        v = v * 10 + (peek(c) - '0');
        c->i++;
        len++;
    }
    if (len == 0 || is_digit(peek(c)))
        return false;
    *v_r = v;
    if (len_r)
        *len_r = len;
    return true;
}

static mr_span word(struct cur *c)
{
    size_t start = c->i;
    while (is_alpha(peek(c)))
        c->i++;
    return mr_span_make(c->p + start, c->i - start);
}

/* A word of at least three letters that begins one of the names
 * ("Mon", "Tues", "Thurs", "Monday"; "Sept", "June"). */
static int name_index(mr_span w, const char *const *names, int count)
{
    if (w.n < 3)
        return -1;
    for (int k = 0; k < count; k++) {
        if (w.n <= strlen(names[k])) {
            size_t j = 0;
            while (j < w.n && mr_lower((unsigned char)w.p[j]) ==
                                  (unsigned char)names[k][j])
                j++;
            if (j == w.n)
                return k;
        }
    }
    return -1;
}

static const char *const day_names[] = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
    "sunday",
};

static const char *const month_names[] = {
    "january", "february", "march",     "april",   "may",      "june",
    "july",    "august",   "september", "october", "november", "december",
};

static int month_of(mr_span w)
{
    return name_index(w, month_names, 12);
}

struct zone_name {
    const char *name;
    int minutes;
    bool obsolete; /* in RFC 5322 obs-zone; the others are not standard */
};

/* RFC 5322 4.3 first, then the abbreviations real servers write. Names
 * that mean different zones in different places (IST, CST in China) take
 * the reading mail software most often means. */
static const struct zone_name zones[] = {
    {"UT", 0, true},       {"GMT", 0, true},      {"Z", 0, true},
    {"EST", -300, true},   {"EDT", -240, true},   {"CST", -360, true},
    {"CDT", -300, true},   {"MST", -420, true},   {"MDT", -360, true},
    {"PST", -480, true},   {"PDT", -420, true},   {"UTC", 0, false},
    {"WET", 0, false},     {"WEST", 60, false},   {"BST", 60, false},
    {"IST", 330, false},   {"CET", 60, false},    {"CEST", 120, false},
    {"MET", 60, false},    {"MEST", 120, false},  {"MEZ", 60, false},
    {"MESZ", 120, false},  {"EET", 120, false},   {"EEST", 180, false},
    {"MSK", 180, false},   {"JST", 540, false},   {"KST", 540, false},
    {"HKT", 480, false},   {"SGT", 480, false},   {"AWST", 480, false},
    {"ACST", 570, false},  {"ACDT", 630, false},  {"AEST", 600, false},
    {"AEDT", 660, false},  {"NZST", 720, false},  {"NZDT", 780, false},
    {"AKST", -540, false}, {"AKDT", -480, false}, {"HST", -600, false},
    {"AST", -240, false},  {"ADT", -180, false},  {"NST", -210, false},
    {"NDT", -150, false},  {"SAST", 120, false},  {"EAT", 180, false},
    {"WAT", 60, false},    {"CAT", 120, false},
};

/* Numeric offset after the sign: hhmm, hh:mm, hh.mm, hh or hmm. */
static bool numeric_zone(struct cur *c, int *min_r)
{
    int sign = peek(c) == '-' ? -1 : 1;
    c->i++;
    int v, len;
    if (!number(c, 4, &v, &len))
        return false;
    int hh, mm = 0;
    if (len <= 2) {
        hh = v;
        unsigned char sep = peek(c);
        if ((sep == ':' || sep == '.') && c->i + 1 < c->n &&
            is_digit((unsigned char)c->p[c->i + 1])) {
            c->i++;
            int l2;
            if (!number(c, 2, &mm, &l2) || l2 != 2)
                return false;
        }
        c->flags |= MR_DATE_OBSOLETE;
    } else {
        hh = v / 100;
        mm = v % 100;
        if (len == 3)
            c->flags |= MR_DATE_OBSOLETE;
    }
    if (hh > 23 || mm > 59)
        return false;
    *min_r = sign * (hh * 60 + mm);
    return true;
}

/* A zone at the cursor. Returns false when there is none (cursor kept). */
static bool zone(struct cur *c, int *min_r, bool *bad_r)
{
    *bad_r = false;
    unsigned char ch = peek(c);
    if (ch == '+' || ch == '-') {
        if (!numeric_zone(c, min_r))
            *bad_r = true;
        return true;
    }
    if (!is_alpha(ch))
        return false;
    size_t save = c->i;
    mr_span w = word(c);
    c->flags |= MR_DATE_OBSOLETE;
    /* "GMT+0100", "UTC-5": the name only says the offset is numeric. */
    if ((mr_span_ieq(w, "GMT") || mr_span_ieq(w, "UTC") ||
         mr_span_ieq(w, "UT")) &&
        (peek(c) == '+' || peek(c) == '-')) {
        if (!numeric_zone(c, min_r))
            *bad_r = true;
        return true;
    }
    for (size_t k = 0; k < sizeof(zones) / sizeof(zones[0]); k++) {
        if (mr_span_ieq(w, zones[k].name)) {
            *min_r = zones[k].minutes;
            return true;
        }
    }
    /* RFC 5322 4.3: military zones were defined with the wrong sign, so
     * they carry no information; treat them as +0000. */
    if (w.n == 1 && mr_lower((unsigned char)w.p[0]) != 'j') {
        *min_r = 0;
        return true;
    }
    /* An unknown abbreviation: we cannot tell the offset. Taken as UTC and
     * flagged like a missing zone rather than losing the whole date. */
    if (w.n >= 2 && w.n <= 5) {
        *min_r = 0;
        c->flags |= MR_DATE_NO_ZONE;
        return true;
    }
    c->i = save;
    return false;
}

/* hh:mm[:ss[.frac]] with ':' or '.' between fields. */
static bool time_of_day(struct cur *c, int *h, int *m, int *s)
{
    int len;
    if (!number(c, 2, h, &len))
        return false;
    unsigned char sep = peek(c);
    if (sep != ':' && sep != '.')
        return false;
    if (sep == '.')
        c->flags |= MR_DATE_OBSOLETE;
    c->i++;
    if (!number(c, 2, m, &len) || len != 2)
        return false;
    *s = 0;
    sep = peek(c);
    if ((sep == ':' || sep == '.') && c->i + 1 < c->n &&
        is_digit((unsigned char)c->p[c->i + 1])) {
        c->i++;
        if (!number(c, 2, s, &len) || len != 2)
            return false;
        /* Fractions of a second (ISO 8601, some gateways) are dropped. */
        if (peek(c) == '.' && c->i + 1 < c->n &&
            is_digit((unsigned char)c->p[c->i + 1])) {
            c->i++;
            size_t k = 0;
            while (is_digit(peek(c)) && k++ < 12)
                c->i++;
            if (is_digit(peek(c)))
                return false;
        }
    }
    return *h <= 23 && *m <= 59 && *s <= 60;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* RFC 5322 4.3: two-digit years 00-49 are 20xx, 50-99 19xx; three-digit
 * years (from software that printed year - 1900) get 1900 added. */
static int full_year(int y, int len, unsigned *flags)
{
    if (len == 4)
        return y;
    *flags |= MR_DATE_OBSOLETE;
    if (len == 3)
        return y + 1900;
    return y < 50 ? 2000 + y : 1900 + y;
}

struct fields {
    int year, month, day, hour, min, sec, zone_min;
    bool have_zone;
};

static int finish(const struct fields *f, unsigned flags, int64_t *t_r,
                  unsigned *flags_r)
{
    if (f->year < 1900 || f->year > 9999 || f->month < 1 || f->month > 12 ||
        f->day < 1 || f->day > month_days(f->year, f->month))
        return MR_EINVAL;
    if (!f->have_zone)
        flags |= MR_DATE_NO_ZONE;
    int64_t t = days_from_civil(f->year, f->month, f->day) * 86400 +
                f->hour * 3600 + f->min * 60 + f->sec;
    *t_r = t - (int64_t)f->zone_min * 60;
    if (flags_r)
        *flags_r |= flags;
    return 0;
}

/* After the zone: comments, and at most one more zone name. */
static bool tail_ok(struct cur *c)
{
    if (!skip_cfws(c))
        return false;
    if (is_alpha(peek(c))) {
        word(c);
        c->flags |= MR_DATE_OBSOLETE;
        if (!skip_cfws(c))
            return false;
    }
    return at_end(c);
}

static bool optional_zone(struct cur *c, struct fields *f)
{
    bool bad;
    if (zone(c, &f->zone_min, &bad)) {
        if (bad)
            return false;
        f->have_zone = true;
    }
    return true;
}

static int parse_iso(struct cur *c, int64_t *t_r, unsigned *flags_r)
{
    struct fields f = {0};
    int len;
    c->flags |= MR_DATE_OBSOLETE;
    if (!number(c, 4, &f.year, &len) || len != 4 || peek(c) != '-')
        return MR_EINVAL;
    c->i++;
    if (!number(c, 2, &f.month, &len) || len != 2 || peek(c) != '-')
        return MR_EINVAL;
    c->i++;
    if (!number(c, 2, &f.day, &len) || len != 2)
        return MR_EINVAL;
    unsigned char ch = peek(c);
    if (ch == ' ') {
        while (peek(c) == ' ')
            c->i++;
        ch = at_end(c) || peek(c) == '(' ? 0 : 'T';
    } else if (ch == 'T' || ch == 't') {
        c->i++;
    }
    if (ch == 'T' || ch == 't') {
        if (!time_of_day(c, &f.hour, &f.min, &f.sec))
            return MR_EINVAL;
        while (peek(c) == ' ')
            c->i++;
        if (!optional_zone(c, &f))
            return MR_EINVAL;
    }
    if (!tail_ok(c))
        return MR_EINVAL;
    return finish(&f, c->flags, t_r, flags_r);
}

/* Separators between day, month and year: spaces, '-', '/' or '.'. */
static void date_sep(struct cur *c)
{
    skip_cfws(c);
    unsigned char ch = peek(c);
    if (ch == '-' || ch == '/' || ch == '.') {
        c->flags |= MR_DATE_OBSOLETE;
        c->i++;
        skip_cfws(c);
    }
}

int mr_date_parse(mr_span s, int64_t *t_r, unsigned *flags_r)
{
    struct cur c = {s.p, s.p ? s.n : 0, 0, 0};
    struct fields f = {0};
    int len;

    if (!skip_cfws(&c) || at_end(&c))
        return MR_EINVAL;
    if (c.n - c.i >= 5 && is_digit(peek(&c)) &&
        is_digit((unsigned char)c.p[c.i + 3]) && c.p[c.i + 4] == '-')
        return parse_iso(&c, t_r, flags_r);

    bool month_first = false;
    if (is_alpha(peek(&c))) {
        mr_span w = word(&c);
        if (name_index(w, day_names, 7) >= 0) {
            if (w.n != 3)
                c.flags |= MR_DATE_OBSOLETE;
            if (!skip_cfws(&c))
                return MR_EINVAL;
            if (peek(&c) == ',' || peek(&c) == '.') {
                c.i++;
            } else {
                c.flags |= MR_DATE_OBSOLETE;
            }
            if (!skip_cfws(&c))
                return MR_EINVAL;
            if (is_alpha(peek(&c))) {
                w = word(&c);
                month_first = true;
            }
        } else {
            month_first = true;
        }
        if (month_first) {
            f.month = month_of(w) + 1;
            if (f.month == 0)
                return MR_EINVAL;
            c.flags |= MR_DATE_OBSOLETE;
            if (!skip_cfws(&c))
                return MR_EINVAL;
            if (!number(&c, 2, &f.day, NULL))
                return MR_EINVAL;
        }
    }

    if (!month_first) {
        if (!number(&c, 2, &f.day, NULL))
            return MR_EINVAL;
        date_sep(&c);
        f.month = month_of(word(&c)) + 1;
        if (f.month == 0)
            return MR_EINVAL;
        date_sep(&c);
        if (!number(&c, 4, &f.year, &len) || len < 2)
            return MR_EINVAL;
        f.year = full_year(f.year, len, &c.flags);
        if (!skip_cfws(&c))
            return MR_EINVAL;
        /* A date without a time of day: midnight, as some gateways send. */
        if (at_end(&c)) {
            c.flags |= MR_DATE_OBSOLETE;
            return finish(&f, c.flags, t_r, flags_r);
        }
        if (!time_of_day(&c, &f.hour, &f.min, &f.sec))
            return MR_EINVAL;
        if (!skip_cfws(&c) || !optional_zone(&c, &f) || !tail_ok(&c))
            return MR_EINVAL;
        return finish(&f, c.flags, t_r, flags_r);
    }

    /* asctime() and date(1): "Jan  6 10:00:00 [zone] 2025"; some write
     * the year before the time ("Jan 6 2025 10:00:00"). */
    skip_cfws(&c);
    bool have_year = false;
    size_t save = c.i;
    if (number(&c, 4, &f.year, &len) && len == 4 && peek(&c) != ':' &&
        peek(&c) != '.') {
        have_year = true;
        skip_cfws(&c);
    } else {
        c.i = save;
    }
    if (!time_of_day(&c, &f.hour, &f.min, &f.sec))
        return MR_EINVAL;
    skip_cfws(&c);
    if (!optional_zone(&c, &f))
        return MR_EINVAL;
    skip_cfws(&c);
    if (!have_year) {
        if (!number(&c, 4, &f.year, &len) || len < 2)
            return MR_EINVAL;
        f.year = full_year(f.year, len, &c.flags);
        skip_cfws(&c);
        if (!f.have_zone && !optional_zone(&c, &f))
            return MR_EINVAL;
    }
    if (!tail_ok(&c))
        return MR_EINVAL;
    return finish(&f, c.flags, t_r, flags_r);
}

/* Inverse of days_from_civil (Hinnant). */
static void civil_from_days(int64_t z, int64_t *y_r, int *m_r, int *d_r)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y_r = yoe + era * 400 + (m <= 2);
    *m_r = m;
    *d_r = d;
}

void mr_date_rfc3339(int64_t t, char out[32])
{
    /* Clamped to years 0000-9999, the range RFC 3339 can write. */
    const int64_t lo = -62167219200LL, hi = 253402300799LL;
    if (t < lo)
        t = lo;
    if (t > hi)
        t = hi;
    int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int hh = (int)(secs / 3600), mm = (int)(secs / 60 % 60),
        ss = (int)(secs % 60);
    /* Digits by hand: snprintf cost 3,000 instructions a date, 1% of the
     * no-attachment benchmark. */
    int fields[6] = {(int)y % 10000, m % 100,  d % 100,
                     hh % 100,       mm % 100, ss % 100};
    static const char seps[] = "--T::Z";
    size_t o = 0;
    for (int f = 0; f < 6; f++) {
        int v = fields[f];
        if (f == 0) {
            out[o++] = (char)('0' + v / 1000);
            out[o++] = (char)('0' + v / 100 % 10);
        }
        out[o++] = (char)('0' + v / 10 % 10);
        out[o++] = (char)('0' + v % 10);
        out[o++] = seps[f];
    }
    out[o] = '\0';
}
