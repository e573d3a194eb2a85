/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_load.c - a rules file (docs/rules.md) to an immutable mr_rules.
 *
 * The YAML is read by the configuration's tree reader (config/yaml.h:
 * no aliases, bounded depth and size, every node with its place), then
 * walked once against the schema. The walk never stops at the first
 * problem: every unknown key, wrong type, bad regex or duplicate name is
 * reported with its line and column, up to the diagnostics cap, and the
 * rule set is built only when there were none.
 *
 * Settings (trusted_authserv_id, timezone, business_hours,
 * auto_ack_window, regex_match_limit) are read at the top level first,
 * whatever their place in the file, then a tenant's own settings map
 * overrides them for its rules.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/yaml.h"
#include "outbound/ack_mail.h"
#include "rules-private.h"
#include "util/span.h"

typedef struct mr__cfg_node node;

struct loader {
    struct mr__cfg_ctx *ctx;
    struct mr_rules *rs;
    const struct mr_rules_options *opt;
    pcre2_compile_context *cctx;
    size_t codes_alloc, zones_alloc, extract_alloc;
    size_t nrules; /* whole file, for the cap */
    /* the settings of the tenant being read (its templates) */
    const struct mr__settings *cur;
    /* the rule being read */
    int *extracts;
    size_t nextracts, extracts_alloc;
};

#define DIAG(l, n, ...) mr__config_diag((l)->ctx, (n)->line, (n)->col, __VA_ARGS__)

/* ---- nodes ---------------------------------------------------------- */

static bool key_is(const node *k, const char *lit)
{
    return k->kind == MR__CFG_SCALAR && k->len == strlen(lit) &&
           memcmp(k->str, lit, k->len) == 0;
}

static bool want_scalar(struct loader *l, const node *v, const char *what)
{
    if (v->kind == MR__CFG_SCALAR && v->len > 0)
        return true;
    DIAG(l, v, "%s must be a single value, not %s", what,
         v->kind == MR__CFG_SCALAR ? "empty"
         : v->kind == MR__CFG_MAP  ? "a mapping"
                                   : "a list");
    return false;
}

static bool want_map(struct loader *l, const node *v, const char *what)
{
    if (v->kind == MR__CFG_MAP)
        return true;
    DIAG(l, v, "%s must be a mapping (key: value)", what);
    return false;
}

/* Reports an unknown key: the nearest known one when it is close, else
 * the ones allowed (a NULL-terminated list). */
static void unknown_key(struct loader *l, const node *k, const char *where,
                        const char *const *known)
{
    char buf[64], list[160];
    const char *near = NULL;
    size_t best = 3, off = 0;
    for (size_t i = 0; known[i]; i++) {
        size_t dist = mr__cfg_distance(k->str, k->len, known[i], strlen(known[i]));
        if (dist < best) {
            best = dist;
            near = known[i];
        }
    }
    if (near) {
        DIAG(l, k, "unknown key '%s' in %s (did you mean '%s'?)",
             mr__cfg_show(k, buf, sizeof buf), where, near);
        return;
    }
    list[0] = '\0';
    for (size_t i = 0; known[i] && off + 2 < sizeof list; i++) {
        int w = snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "",
                         known[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (off >= sizeof list)
        memcpy(list + sizeof list - 4, "...", 4);
    DIAG(l, k, "unknown key '%s' in %s (expected one of: %s)",
         mr__cfg_show(k, buf, sizeof buf), where, list);
}

static int known_index(const node *k, const char *const *known)
{
    for (int i = 0; known[i]; i++)
        if (key_is(k, known[i]))
            return i;
    return -1;
}

static char *sdup(struct loader *l, const node *v)
{
    return mr_arena_strndup(l->rs->arena, v->str, v->len);
}

static char *sdup_lower(struct loader *l, const node *v)
{
    char *s = sdup(l, v);
    for (size_t i = 0; i < v->len; i++)
        s[i] = (char)mr_lower((unsigned char)s[i]);
    return s;
}

static char *sprintf_arena(struct loader *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *sprintf_arena(struct loader *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = mr_arena_alloc(l->rs->arena, (size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static bool read_bool(struct loader *l, const node *v, const char *what,
                      bool *out)
{
    char buf[64];
    if (!want_scalar(l, v, what))
        return false;
    mr_span s = mr_span_make(v->str, v->len);
    if (v->plain && (mr_span_ieq(s, "true") || mr_span_ieq(s, "yes"))) {
        *out = true;
        return true;
    }
    if (v->plain && (mr_span_ieq(s, "false") || mr_span_ieq(s, "no"))) {
        *out = false;
        return true;
    }
    DIAG(l, v, "%s must be true or false, not '%s'", what,
         mr__cfg_show(v, buf, sizeof buf));
    return false;
}

/* NUMBER [spaces] [UNIT], units and their reading as in the configuration
 * file (src/config/nodes.c). */
static bool read_unit(struct loader *l, const node *v, const char *what,
                      const struct mr__cfg_unit *units, const char *example,
                      int64_t *out)
{
    char buf[64];
    uint64_t x;
    bool bad_unit;
    if (!want_scalar(l, v, what))
        return false;
    if (mr__cfg_parse_unit(v, units, &x, &bad_unit) && x <= INT64_MAX) {
        *out = (int64_t)x;
        return true;
    }
    DIAG(l, v, "%s must be %s, not '%s'", what, example,
         mr__cfg_show(v, buf, sizeof buf));
    return false;
}

static const struct mr__cfg_unit count_units[] = {{"", 1}, {NULL, 0}};

/* {min: X, max: Y} (either may be left out) or one value (exactly X). */
static bool read_range(struct loader *l, const node *v, const char *what,
                       const struct mr__cfg_unit *units, const char *example,
                       int64_t *min, int64_t *max)
{
    *min = 0;
    *max = INT64_MAX;
    if (v->kind == MR__CFG_SCALAR) {
        if (!read_unit(l, v, what, units, example, min))
            return false;
        *max = *min;
        return true;
    }
    if (!want_map(l, v, what))
        return false;
    static const char *const keys[] = {"min", "max", NULL};
    bool ok = v->n > 0;
    if (!ok)
        DIAG(l, v, "%s needs min, max or both", what);
    for (size_t i = 0; i < v->n; i++) {
        const node *k = v->items[2 * i], *x = v->items[2 * i + 1];
        int ki = known_index(k, keys);
        if (ki < 0) {
            unknown_key(l, k, what, keys);
            ok = false;
        } else if (!read_unit(l, x, what, units, example, ki ? max : min)) {
            ok = false;
        }
    }
    if (ok && *min > *max) {
        DIAG(l, v, "%s: min is larger than max", what);
        ok = false;
    }
    return ok;
}

/* A scalar or a list of scalars, each through fn. */
static bool each_scalar(struct loader *l, const node *v, const char *what,
                        bool (*fn)(struct loader *, const node *, void *),
                        void *arg)
{
    if (v->kind == MR__CFG_SCALAR)
        return want_scalar(l, v, what) && fn(l, v, arg);
    if (v->kind != MR__CFG_SEQ || v->n == 0) {
        DIAG(l, v, "%s must be a value or a non-empty list of values", what);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < v->n; i++)
        ok = (want_scalar(l, v->items[i], what) &&
              fn(l, v->items[i], arg)) &&
             ok;
    return ok;
}

/* ---- settings ------------------------------------------------------- */

static const char *const day_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat", NULL};

static int day_index(const char *s, size_t n)
{
    for (int i = 0; day_names[i]; i++)
        if (n >= 3 && strncasecmp(s, day_names[i], 3) == 0 &&
            (n == 3 || (n > 3 && n <= 9)))
            return i;
    return -1;
}

/* "mon", "Monday", or a range "mon-fri" (wrapping: "sat-sun"). */
static bool add_days(struct loader *l, const node *v, void *arg)
{
    unsigned *mask = arg;
    char buf[64];
    const char *dash = memchr(v->str, '-', v->len);
    int a, b;
    if (dash) {
        a = day_index(v->str, (size_t)(dash - v->str));
        b = day_index(dash + 1, v->len - (size_t)(dash - v->str) - 1);
    } else {
        a = b = day_index(v->str, v->len);
    }
    if (a < 0 || b < 0) {
        DIAG(l, v, "'%s' is not a weekday (mon, tue, ... sun, or a range "
                   "such as mon-fri)",
             mr__cfg_show(v, buf, sizeof buf));
        return false;
    }
    for (int d = a;; d = (d + 1) % 7) {
        *mask |= 1u << d;
        if (d == b)
            break;
    }
    return true;
}

static bool hhmm(const char *s, size_t n, int *out)
{
    if (n != 5 || s[2] != ':')
        return false;
    for (size_t i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0))
        return false;
    *out = h * 60 + m;
    return true;
}

/* "09:00-17:00": [from, to); from > to wraps past midnight. */
static bool read_hours(struct loader *l, const node *v, const char *what,
                       int *from, int *to)
{
    char buf[64];
    if (!want_scalar(l, v, what))
        return false;
    mr_span s = mr_span_trim(mr_span_make(v->str, v->len));
    const char *dash = memchr(s.p, '-', s.n);
    if (dash == NULL || !hhmm(s.p, (size_t)(dash - s.p), from) ||
        !hhmm(dash + 1, s.n - (size_t)(dash - s.p) - 1, to) || *from == *to) {
        DIAG(l, v, "%s must be a time range such as 09:00-17:00, not '%s'",
             what, mr__cfg_show(v, buf, sizeof buf));
        return false;
    }
    return true;
}

static const struct mr_tz *load_zone(struct loader *l, const node *v)
{
    struct mr_error e = {0};
    struct mr_tz *tz = NULL;
    char *name = sdup(l, v);
    if (mr_tz_load(l->opt ? l->opt->zoneinfo_dir : NULL, name, &tz, &e) < 0) {
        DIAG(l, v, "timezone: %s", e.msg);
        return NULL;
    }
    struct mr_rules *rs = l->rs;
    if (rs->nzones == l->zones_alloc) {
        l->zones_alloc = l->zones_alloc ? 2 * l->zones_alloc : 4;
        rs->zones = mr_xrealloc(rs->zones, l->zones_alloc * sizeof(*rs->zones));
    }
    rs->zones[rs->nzones++] = tz;
    return tz;
}

static const char *const setting_keys[] = {
    "trusted_authserv_id", "timezone", "business_hours", "auto_ack_window",
    "regex_match_limit", NULL,
};

/* One settings key (k: v) into set; false when k is not a setting. */
static bool read_setting(struct loader *l, const node *k, const node *v,
                         struct mr__settings *set)
{
    int64_t x;
    switch (known_index(k, setting_keys)) {
    case 0:
        if (want_scalar(l, v, "trusted_authserv_id"))
            set->trusted_authserv_id = sdup_lower(l, v);
        return true;
    case 1:
        if (want_scalar(l, v, "timezone")) {
            const struct mr_tz *tz = load_zone(l, v);
            if (tz) {
                set->tz = tz;
                set->tz_name = sdup(l, v);
            }
        }
        return true;
    case 2: {
        static const char *const keys[] = {"days", "hours", NULL};
        if (!want_map(l, v, "business_hours"))
            return true;
        bool have_days = false, have_hours = false;
        set->bh_days = 0;
        for (size_t i = 0; i < v->n; i++) {
            const node *bk = v->items[2 * i], *bv = v->items[2 * i + 1];
            int ki = known_index(bk, keys);
            if (ki == 0)
                have_days = each_scalar(l, bv, "business_hours.days",
                                        add_days, &set->bh_days);
            else if (ki == 1)
                have_hours = read_hours(l, bv, "business_hours.hours",
                                        &set->bh_from, &set->bh_to);
            else
                unknown_key(l, bk, "business_hours", keys);
        }
        if (!have_days || !have_hours)
            DIAG(l, v, "business_hours needs days and hours");
        set->has_bh = have_days && have_hours;
        return true;
    }
    case 3:
        if (read_unit(l, v, "auto_ack_window", mr__cfg_duration_units,
                      "a duration such as 30m, 12h or 1d", &x))
            set->ack_window_ms = x;
        return true;
    case 4:
        if (read_unit(l, v, "regex_match_limit", count_units, "a whole number",
                      &x)) {
            if (x < 100 || x > 100000000)
                DIAG(l, v, "regex_match_limit must be between 100 and "
                           "100000000");
            else
                set->match_limit = (uint32_t)x;
        }
        return true;
    default: return false;
    }
}

/* ---- conditions ----------------------------------------------------- */

static struct mr__cond *new_cond(struct loader *l, enum mr__cond_kind kind,
                                 const node *at)
{
    struct mr__cond *c = mr_arena_zalloc(l->rs->arena, sizeof(*c));
    c->kind = kind;
    c->line = at->line;
    c->col = at->col;
    c->extract = -1;
    c->max = INT64_MAX;
    return c;
}

struct pats {
    struct mr__str *items;
    size_t n, alloc;
    bool fold; /* needles: Unicode case folding; else ASCII lower case */
    struct loader *l;
};

static bool add_pat(struct loader *l, const node *v, void *arg)
{
    struct pats *p = arg;
    if (p->n == p->alloc) {
        size_t na = p->alloc ? 2 * p->alloc : 4;
        p->items = mr_arena_realloc(l->rs->arena, p->items,
                                    p->alloc * sizeof(*p->items),
                                    na * sizeof(*p->items));
        p->alloc = na;
    }
    struct mr__str *s = &p->items[p->n++];
    if (p->fold) {
        struct mr_buf b;
        mr_buf_init(&b, 0);
        mr__rules_fold(v->str, v->len, &b);
        s->p = mr_arena_strndup(l->rs->arena, b.p ? b.p : "", b.len);
        s->n = b.len;
        mr_buf_release(&b);
    } else {
        s->p = sdup_lower(l, v);
        s->n = v->len;
        const char *star = memchr(v->str, '*', v->len);
        s->glob = star != NULL;
        if (star) {
            const char *last = memrchr(v->str, '*', v->len);
            s->head = (size_t)(star - v->str);
            s->tail = v->len - 1 - (size_t)(last - v->str);
        }
    }
    return true;
}

/* The id of a folded needle in field f's table (added when new). */
static int needle_id(struct loader *l, enum mr__field f, const node *at,
                     const struct mr__str *p)
{
    struct mr__needles *nd = &l->rs->needles[f];
    for (size_t i = 0; i < nd->n; i++)
        if (nd->items[i].n == p->n && memcmp(nd->items[i].p, p->p, p->n) == 0)
            return (int)i;
    if (nd->n == MR__MAX_NEEDLES) {
        DIAG(l, at, "more than %d different contains values for one field",
             MR__MAX_NEEDLES);
        return -1;
    }
    if (nd->n == nd->alloc) {
        nd->alloc = nd->alloc ? 2 * nd->alloc : 16;
        nd->items = mr_xrealloc(nd->items, nd->alloc * sizeof(*nd->items));
    }
    nd->items[nd->n] = *p;
    return (int)nd->n++;
}

/* A CONTAINS condition's needles registered with its field. */
static bool register_needles(struct loader *l, struct mr__cond *c,
                             const node *at)
{
    c->ids = mr_arena_alloc(l->rs->arena, c->npats * sizeof(*c->ids));
    for (size_t i = 0; i < c->npats; i++) {
        int id = needle_id(l, c->field, at, &c->pats[i]);
        if (id < 0)
            return false;
        c->ids[c->nids++] = (uint16_t)id;
    }
    return true;
}

/* A caseless regex's prefilter literals join the needles of its field,
 * so that they are looked for once per message with the `contains`
 * needles (rules_eval.c, start_needles), however many patterns share
 * them, instead of a memmem per literal and pattern: the three
 * `(?i)invoice (?:no\.?|number)` variants of the benchmark took 21,000
 * instructions per message that way. When the table is nearly full they
 * stay out (c->nids 0), and evaluation searches for them itself. */
static void register_literals(struct loader *l, struct mr__cond *c)
{
    if (!c->re.lit_fold || c->re.nlits == 0 ||
        l->rs->needles[c->field].n + c->re.nlits > MR__MAX_NEEDLES)
        return;
    c->ids = mr_arena_alloc(l->rs->arena, c->re.nlits * sizeof(*c->ids));
    for (size_t i = 0; i < c->re.nlits; i++)
        c->ids[c->nids++] =
            (uint16_t)needle_id(l, c->field, NULL, &c->re.lits[i]);
}

static int by_key(const void *a, const void *b)
{
    const struct mr__needle_key *x = a, *y = b;
    return x->key != y->key ? (x->key < y->key ? -1 : 1)
                            : (x->id < y->id ? -1 : x->id > y->id);
}

/* The scan tables of every field, once all needles are known. */
static void build_needles(struct mr_rules *rs)
{
    for (int f = 0; f < MR__F_COUNT; f++) {
        struct mr__needles *nd = &rs->needles[f];
        if (nd->n == 0)
            continue;
        nd->keys = mr_xcalloc(nd->n, sizeof(*nd->keys));
        nd->short_ids = mr_xcalloc(nd->n, sizeof(*nd->short_ids));
        for (size_t i = 0; i < nd->n; i++) {
            if (nd->items[i].n < 3) {
                nd->short_ids[nd->nshort++] = (uint16_t)i;
                continue;
            }
            unsigned k = mr__needle_hash((const unsigned char *)nd->items[i].p);
            nd->bitmap[k >> 3] |= (uint8_t)(1u << (k & 7));
            nd->keys[nd->nkeys].key = (uint16_t)k;
            nd->keys[nd->nkeys++].id = (uint16_t)i;
        }
        qsort(nd->keys, nd->nkeys, sizeof(*nd->keys), by_key);
    }
}

static int header_index(struct loader *l, const char *name)
{
    struct mr_rules *rs = l->rs;
    for (size_t i = 0; i < rs->nhnames; i++)
        if (strcmp(rs->hnames[i], name) == 0)
            return (int)i;
    rs->hnames = mr_xrealloc(rs->hnames, (rs->nhnames + 1) * sizeof(*rs->hnames));
    rs->hnames[rs->nhnames] = name;
    return (int)rs->nhnames++;
}

static struct mr__cond *pattern_cond(struct loader *l, enum mr__cond_kind kind,
                                     const node *k, const node *v, bool fold)
{
    char what[64];
    snprintf(what, sizeof what, "%.*s", (int)k->len, k->str);
    struct pats p = {.fold = fold, .l = l};
    if (!each_scalar(l, v, what, add_pat, &p))
        return NULL;
    struct mr__cond *c = new_cond(l, kind, k);
    c->pats = p.items;
    c->npats = p.n;
    return c;
}

/* The prefilter's literals (rules_prefilter.c), in the rule set's arena. */
static void set_prefix(struct loader *l, const node *v, struct mr__regex *re)
{
    struct mr__str lits[MR__LITS_MAX];
    char store[MR__LITS_MAX * MR__LIT_BYTES];
    re->nlits = mr__rules_required_literals(v->str, v->len, &re->lit_fold,
                                            lits, store);
    re->lits = NULL;
    if (re->nlits == 0)
        return;
    struct mr__str *x = mr_arena_alloc(l->rs->arena, re->nlits * sizeof(*x));
    for (size_t i = 0; i < re->nlits; i++) {
        x[i].p = mr_arena_strndup(l->rs->arena, lits[i].p, lits[i].n);
        x[i].n = lits[i].n;
        x[i].glob = false;
    }
    re->lits = x;
}

static bool compile_regex(struct loader *l, const node *v, const char *what,
                          struct mr__regex *re, uint32_t *ncaptures)
{
    char buf[64];
    if (!want_scalar(l, v, what))
        return false;
    if (v->len > 8192) {
        DIAG(l, v, "%s is longer than 8192 bytes", what);
        return false;
    }
    struct mr_rules *rs = l->rs;
    /* The same pattern in many rules is compiled once; an evaluation
     * runs it once per field and message (rules_eval.c caches). */
    for (size_t i = 0; i < rs->ncodes; i++) {
        if (strlen(rs->patterns[i]) == v->len &&
            memcmp(rs->patterns[i], v->str, v->len) == 0) {
            re->code = rs->codes[i];
            re->id = i;
            set_prefix(l, v, re);
            re->label = sprintf_arena(l, "note=%s at %d:%d hit the regex "
                                         "match limit, counted as no match",
                                      what, v->line, v->col);
            if (ncaptures)
                pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT,
                                   ncaptures);
            return true;
        }
    }
    int code;
    PCRE2_SIZE off;
    /* MATCH_INVALID_UTF: no UTF check of the subject on every match (the
     * texts are valid UTF-8 by the event's contract, and a stray byte
     * must simply not match). */
    pcre2_code *re_code =
        pcre2_compile((PCRE2_SPTR)v->str, v->len,
                      PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, l->cctx);
    if (re_code == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        DIAG(l, v, "%s '%s' is not a valid regular expression: %s (at byte %zu)",
             what, mr__cfg_show(v, buf, sizeof buf), (const char *)msg, (size_t)off);
        return false;
    }
    if (rs->ncodes == l->codes_alloc) {
        l->codes_alloc = l->codes_alloc ? 2 * l->codes_alloc : 16;
        rs->codes = mr_xrealloc(rs->codes, l->codes_alloc * sizeof(*rs->codes));
        rs->patterns = mr_xrealloc(rs->patterns,
                                   l->codes_alloc * sizeof(*rs->patterns));
    }
    re->id = rs->ncodes;
    set_prefix(l, v, re);
    rs->patterns[rs->ncodes] = sdup(l, v);
    rs->codes[rs->ncodes++] = re_code;
    if (pcre2_jit_compile(re_code, PCRE2_JIT_COMPLETE) == 0)
        rs->jit = true;
    re->code = re_code;
    re->label = sprintf_arena(
        l, "note=%s at %d:%d hit the regex match limit, counted as no match",
        what, v->line, v->col);
    if (ncaptures)
        pcre2_pattern_info(re_code, PCRE2_INFO_CAPTURECOUNT, ncaptures);
    return true;
}

static bool valid_ident(const node *v)
{
    if (v->len == 0 || v->len > 64)
        return false;
    for (size_t i = 0; i < v->len; i++) {
        char c = v->str[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

static int extractor_index(struct loader *l, const node *v, bool define)
{
    struct mr_rules *rs = l->rs;
    for (size_t i = 0; i < rs->nextract; i++)
        if (strlen(rs->extract_names[i]) == v->len &&
            memcmp(rs->extract_names[i], v->str, v->len) == 0)
            return (int)i;
    if (!define)
        return -1;
    if (rs->nextract == l->extract_alloc) {
        size_t na = l->extract_alloc ? 2 * l->extract_alloc : 8;
        rs->extract_names = mr_arena_realloc(
            rs->arena, rs->extract_names,
            l->extract_alloc * sizeof(*rs->extract_names),
            na * sizeof(*rs->extract_names));
        l->extract_alloc = na;
    }
    rs->extract_names[rs->nextract] = sdup(l, v);
    return (int)rs->nextract++;
}

/* subject / text / stripped_text: "word" (contains) or {contains, regex,
 * extract}. */
static struct mr__cond *text_cond(struct loader *l, enum mr__field f,
                                  const node *k, const node *v)
{
    char what[64];
    snprintf(what, sizeof what, "%.*s", (int)k->len, k->str);
    if (v->kind == MR__CFG_SCALAR) {
        struct mr__cond *c = pattern_cond(l, MR__C_CONTAINS, k, v, true);
        if (c)
            c->field = f;
        return c && register_needles(l, c, v) ? c : NULL;
    }
    if (!want_map(l, v, what))
        return NULL;
    static const char *const keys[] = {"contains", "regex", "extract", NULL};
    const node *contains = NULL, *regex = NULL, *extract = NULL;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        const node *tk = v->items[2 * i], *tv = v->items[2 * i + 1];
        switch (known_index(tk, keys)) {
        case 0: contains = tv; break;
        case 1: regex = tv; break;
        case 2: extract = tv; break;
        default: unknown_key(l, tk, what, keys); ok = false;
        }
    }
    if (!contains && !regex) {
        DIAG(l, v, "%s needs contains or regex", what);
        return NULL;
    }
    if (extract && !regex) {
        DIAG(l, extract, "%s: extract needs a regex with a capture group",
             what);
        return NULL;
    }
    struct mr__cond *cc = NULL, *rc = NULL;
    if (contains) {
        cc = pattern_cond(l, MR__C_CONTAINS, k, contains, true);
        if (cc)
            cc->field = f;
        ok = ok && cc && register_needles(l, cc, contains);
    }
    if (regex) {
        char rwhat[80];
        snprintf(rwhat, sizeof rwhat, "%s regex", what);
        rc = new_cond(l, MR__C_REGEX, regex);
        rc->field = f;
        uint32_t ncap = 0;
        if (!compile_regex(l, regex, rwhat, &rc->re, &ncap)) {
            ok = false;
        } else {
            register_literals(l, rc);
        }
        if (ok && extract) {
            if (!want_scalar(l, extract, "extract") || !valid_ident(extract)) {
                DIAG(l, extract, "extract must be a name of letters a-z, "
                                 "digits, '_', '-' or '.'");
                ok = false;
            } else if (ncap < 1) {
                DIAG(l, regex, "%s: an extractor's regex needs a capture "
                               "group, e.g. (INV-[0-9]+)",
                     what);
                ok = false;
            } else {
                rc->extract = extractor_index(l, extract, true);
                if (l->nextracts == l->extracts_alloc) {
                    l->extracts_alloc = l->extracts_alloc ? 2 * l->extracts_alloc : 4;
                    l->extracts = mr_xrealloc(l->extracts, l->extracts_alloc *
                                                               sizeof(int));
                }
                l->extracts[l->nextracts++] = rc->extract;
            }
        }
    }
    if (!ok)
        return NULL;
    if (cc && rc) {
        struct mr__cond *all = new_cond(l, MR__C_ALL, v);
        all->kids = mr_arena_alloc(l->rs->arena, 2 * sizeof(*all->kids));
        all->kids[0] = cc;
        all->kids[1] = rc;
        all->nkids = 2;
        return all;
    }
    return cc ? cc : rc;
}

static struct mr__cond *header_cond(struct loader *l, const node *k,
                                    const node *v)
{
    if (!want_map(l, v, "header"))
        return NULL;
    static const char *const keys[] = {"name", "present", "equals", "matches",
                                       NULL};
    struct mr__cond *c = new_cond(l, MR__C_HEADER, k);
    int ops = 0;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        const node *hk = v->items[2 * i], *hv = v->items[2 * i + 1];
        switch (known_index(hk, keys)) {
        case 0:
            if (want_scalar(l, hv, "header.name"))
                c->header = sdup_lower(l, hv);
            else
                ok = false;
            break;
        case 1: {
            bool present;
            ops++;
            if (read_bool(l, hv, "header.present", &present))
                c->header_op = present ? 0 : 1;
            else
                ok = false;
            break;
        }
        case 2: {
            ops++;
            c->header_op = 2;
            struct pats p = {.l = l};
            /* Compared ASCII case-insensitively, whitespace trimmed. */
            if (each_scalar(l, hv, "header.equals", add_pat, &p)) {
                c->pats = p.items;
                c->npats = p.n;
            } else {
                ok = false;
            }
            break;
        }
        case 3:
            ops++;
            c->header_op = 3;
            ok = compile_regex(l, hv, "header.matches", &c->re, NULL) && ok;
            break;
        default: unknown_key(l, hk, "header", keys); ok = false;
        }
    }
    if (c->header == NULL) {
        DIAG(l, v, "header needs a name");
        ok = false;
    } else {
        c->hidx = header_index(l, c->header);
    }
    if (ops != 1) {
        DIAG(l, v, "header needs exactly one of present, equals, matches");
        ok = false;
    }
    return ok ? c : NULL;
}

struct mask_arg {
    unsigned *mask;
    const char *const *names;
    const char *what;
};

static bool add_mask(struct loader *l, const node *v, void *arg)
{
    struct mask_arg *m = arg;
    char buf[64];
    for (int i = 0; m->names[i]; i++) {
        if (key_is(v, m->names[i])) {
            *m->mask |= 1u << i;
            return true;
        }
    }
    DIAG(l, v, "'%s' is not a %s", mr__cfg_show(v, buf, sizeof buf), m->what);
    return false;
}

static const char *const auto_names[] = {"none", "autoreply", "bounce", "list",
                                         NULL};
static const char *const ar_names[] = {
    "none", "pass", "fail", "softfail", "neutral", "temperror", "permerror",
    "policy", NULL,
};

static struct mr__cond *auth_cond(struct loader *l, const node *k,
                                  const node *v, const struct mr__settings *set)
{
    if (!want_map(l, v, "auth"))
        return NULL;
    if (set->trusted_authserv_id == NULL)
        DIAG(l, k, "auth conditions need trusted_authserv_id (the "
                   "authserv-id your own MX writes in Authentication-Results)");
    static const char *const keys[] = {"spf", "dkim", "dmarc", NULL};
    struct mr__cond *c = new_cond(l, MR__C_AUTH, k);
    bool ok = v->n > 0 && set->trusted_authserv_id != NULL;
    l->rs->auth_hidx = header_index(l, "authentication-results");
    for (size_t i = 0; i < v->n; i++) {
        const node *ak = v->items[2 * i], *av = v->items[2 * i + 1];
        int ki = known_index(ak, keys);
        if (ki < 0) {
            unknown_key(l, ak, "auth", keys);
            ok = false;
            continue;
        }
        struct mask_arg m = {&c->auth[ki], ar_names,
                             "result (pass, fail, softfail, neutral, none, "
                             "temperror, permerror, policy)"};
        ok = each_scalar(l, av, keys[ki], add_mask, &m) && ok;
    }
    return ok ? c : NULL;
}

static struct mr__cond *attachment_cond(struct loader *l, const node *k,
                                        const node *v)
{
    struct mr__cond *c = new_cond(l, MR__C_ATTACHMENT, k);
    c->want = true;
    if (v->kind == MR__CFG_SCALAR)
        return read_bool(l, v, "attachment", &c->want) ? c : NULL;
    if (!want_map(l, v, "attachment"))
        return NULL;
    static const char *const keys[] = {"type", "filename", "size", NULL};
    bool ok = v->n > 0;
    if (!ok)
        DIAG(l, v, "attachment needs type, filename or size");
    for (size_t i = 0; i < v->n; i++) {
        const node *ak = v->items[2 * i], *av = v->items[2 * i + 1];
        switch (known_index(ak, keys)) {
        case 0:
            if (want_scalar(l, av, "attachment.type"))
                c->att_type = sdup_lower(l, av);
            else
                ok = false;
            break;
        case 1:
            if (want_scalar(l, av, "attachment.filename"))
                c->att_name = sdup_lower(l, av);
            else
                ok = false;
            break;
        case 2:
            ok = read_range(l, av, "attachment.size", mr__cfg_size_units,
                            "a size such as 10MB or 512KiB", &c->min,
                            &c->max) &&
                 ok;
            break;
        default: unknown_key(l, ak, "attachment", keys); ok = false;
        }
    }
    return ok ? c : NULL;
}

static const char *const cond_keys[] = {
    "all",      "any",          "not",     "mailbox",          "mailbox_tag",
    "envelope_recipient", "from", "from_domain", "previous_tickets",
    "subject",  "text",         "stripped_text", "header",      "auth",
    "auto",     "attachment",   "size",    "new_ticket",       "weekday",
    "time",     "business_hours", NULL,
};

static struct mr__cond *read_cond(struct loader *l, const node *v,
                                  const struct mr__settings *set, int depth);
static void order_by_cost(struct mr__cond *c);

static struct mr__cond *list_cond(struct loader *l, enum mr__cond_kind kind,
                                  const node *k, const node *v,
                                  const struct mr__settings *set, int depth)
{
    if (v->kind != MR__CFG_SEQ || v->n == 0) {
        DIAG(l, v, "%.*s must be a non-empty list of conditions", (int)k->len,
             k->str);
        return NULL;
    }
    struct mr__cond *c = new_cond(l, kind, k);
    c->kids = mr_arena_alloc(l->rs->arena, v->n * sizeof(*c->kids));
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        c->kids[i] = read_cond(l, v->items[i], set, depth + 1);
        ok = ok && c->kids[i];
    }
    c->nkids = v->n;
    if (ok && kind == MR__C_ALL)
        order_by_cost(c);
    return ok ? c : NULL;
}

static struct mr__cond *one_cond(struct loader *l, const node *k, const node *v,
                                 const struct mr__settings *set, int depth)
{
    struct mr__cond *c;
    switch (known_index(k, cond_keys)) {
    case 0: return list_cond(l, MR__C_ALL, k, v, set, depth);
    case 1: return list_cond(l, MR__C_ANY, k, v, set, depth);
    case 2: {
        struct mr__cond *kid = read_cond(l, v, set, depth + 1);
        if (kid == NULL)
            return NULL;
        c = new_cond(l, MR__C_NOT, k);
        c->kids = mr_arena_alloc(l->rs->arena, sizeof(*c->kids));
        c->kids[0] = kid;
        c->nkids = 1;
        return c;
    }
    case 3: return pattern_cond(l, MR__C_MAILBOX, k, v, false);
    case 4: return pattern_cond(l, MR__C_MAILBOX_TAG, k, v, false);
    case 5: return pattern_cond(l, MR__C_RCPT, k, v, false);
    case 6: return pattern_cond(l, MR__C_FROM, k, v, false);
    case 7: return pattern_cond(l, MR__C_FROM_DOMAIN, k, v, false);
    case 8:
        c = new_cond(l, MR__C_PREV_TICKETS, k);
        l->rs->uses_previous_tickets = true;
        return read_range(l, v, "previous_tickets", count_units,
                          "a whole number", &c->min, &c->max)
                   ? c
                   : NULL;
    case 9: return text_cond(l, MR__F_SUBJECT, k, v);
    case 10: return text_cond(l, MR__F_TEXT, k, v);
    case 11: return text_cond(l, MR__F_STRIPPED, k, v);
    case 12: return header_cond(l, k, v);
    case 13: return auth_cond(l, k, v, set);
    case 14: {
        c = new_cond(l, MR__C_AUTO, k);
        struct mask_arg m = {&c->mask, auto_names,
                             "kind (none, autoreply, bounce, list)"};
        return each_scalar(l, v, "auto", add_mask, &m) ? c : NULL;
    }
    case 15: return attachment_cond(l, k, v);
    case 16:
        c = new_cond(l, MR__C_SIZE, k);
        return read_range(l, v, "size", mr__cfg_size_units,
                          "a size such as 10MB or 512KiB", &c->min, &c->max)
                   ? c
                   : NULL;
    case 17:
        c = new_cond(l, MR__C_NEW, k);
        return read_bool(l, v, "new_ticket", &c->want) ? c : NULL;
    case 18:
        c = new_cond(l, MR__C_WEEKDAY, k);
        return each_scalar(l, v, "weekday", add_days, &c->mask) ? c : NULL;
    case 19:
        c = new_cond(l, MR__C_TIME, k);
        return read_hours(l, v, "time", &c->from_min, &c->to_min) ? c : NULL;
    case 20:
        c = new_cond(l, MR__C_BUSINESS_HOURS, k);
        if (!read_bool(l, v, "business_hours", &c->want))
            return NULL;
        if (!set->has_bh) {
            DIAG(l, k, "the business_hours condition needs a business_hours "
                       "setting ({days, hours}) at the top or in the tenant");
            return NULL;
        }
        return c;
    default: unknown_key(l, k, "a condition", cond_keys); return NULL;
    }
}

/* Rough cost of a condition, for the order `all` tests its members in:
 * the result is the same in any order (conditions have no effect on one
 * another, and captures of a rule that fails are dropped), so the cheap
 * tests go first and the scans of a body run only when they still
 * matter. `any` keeps the file's order: its first matching extractor
 * wins. */
static int cost(const struct mr__cond *c)
{
    switch (c->kind) {
    case MR__C_CONTAINS: return 2;
    case MR__C_REGEX: return c->field == MR__F_SUBJECT ? 3 : 4;
    case MR__C_HEADER: return c->header_op == 3 ? 3 : 1;
    case MR__C_AUTH: return 3;
    case MR__C_ALL:
    case MR__C_ANY:
    case MR__C_NOT: {
        int m = 0;
        for (size_t i = 0; i < c->nkids; i++)
            if (cost(c->kids[i]) > m)
                m = cost(c->kids[i]);
        return m;
    }
    default: return 0;
    }
}

static void order_by_cost(struct mr__cond *c)
{
    /* Insertion sort, stable: few members. */
    for (size_t i = 1; i < c->nkids; i++) {
        struct mr__cond *x = c->kids[i];
        int cx = cost(x);
        size_t j = i;
        while (j > 0 && cost(c->kids[j - 1]) > cx) {
            c->kids[j] = c->kids[j - 1];
            j--;
        }
        c->kids[j] = x;
    }
}

/* A mapping of conditions, all of which must hold. */
static struct mr__cond *read_cond(struct loader *l, const node *v,
                                  const struct mr__settings *set, int depth)
{
    if (depth > 16) {
        DIAG(l, v, "conditions nested more than 16 levels deep");
        return NULL;
    }
    if (!want_map(l, v, "a condition") )
        return NULL;
    if (v->n == 0) {
        DIAG(l, v, "an empty condition");
        return NULL;
    }
    if (v->n == 1)
        return one_cond(l, v->items[0], v->items[1], set, depth);
    struct mr__cond *c = new_cond(l, MR__C_ALL, v);
    c->kids = mr_arena_alloc(l->rs->arena, v->n * sizeof(*c->kids));
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        c->kids[i] = one_cond(l, v->items[2 * i], v->items[2 * i + 1], set,
                              depth);
        ok = ok && c->kids[i];
    }
    c->nkids = v->n;
    if (ok)
        order_by_cost(c);
    return ok ? c : NULL;
}

/* ---- actions -------------------------------------------------------- */

struct actions {
    struct mr__action *items;
    size_t n, alloc;
};

static struct mr__action *new_action(struct loader *l, struct actions *a,
                                     enum mr__action_kind kind)
{
    if (a->n == a->alloc) {
        size_t na = a->alloc ? 2 * a->alloc : 4;
        a->items = mr_arena_realloc(l->rs->arena, a->items,
                                    a->alloc * sizeof(*a->items),
                                    na * sizeof(*a->items));
        a->alloc = na;
    }
    struct mr__action *x = &a->items[a->n++];
    memset(x, 0, sizeof *x);
    x->kind = kind;
    x->extract = -1;
    return x;
}

struct tag_arg {
    struct actions *a;
    bool add;
};

static bool add_tag(struct loader *l, const node *v, void *arg)
{
    struct tag_arg *t = arg;
    struct mr__action *x =
        new_action(l, t->a, t->add ? MR__A_TAG_ADD : MR__A_TAG_REMOVE);
    x->value = sdup(l, v);
    x->decision = sprintf_arena(l, "tag%s=%s", t->add ? "+" : "-", x->value);
    return true;
}

static bool add_notify(struct loader *l, const node *v, void *arg)
{
    struct mr__action *x = new_action(l, arg, MR__A_NOTIFY);
    x->value = sdup(l, v);
    x->decision = sprintf_arena(l, "notify=%s", x->value);
    return true;
}

static const char *const priorities[] = {"low", "normal", "high", "urgent",
                                         NULL};

static bool read_fields(struct loader *l, const node *v, struct actions *a)
{
    char buf[64];
    if (!want_map(l, v, "set_field"))
        return false;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        const node *fk = v->items[2 * i], *fv = v->items[2 * i + 1];
        if (!valid_ident(fk)) {
            DIAG(l, fk, "'%s' is not a field name (letters a-z, digits, "
                        "'_', '-', '.')",
                 mr__cfg_show(fk, buf, sizeof buf));
            ok = false;
            continue;
        }
        if (fv->kind == MR__CFG_SCALAR) {
            struct mr__action *x = new_action(l, a, MR__A_FIELD);
            x->name = sdup(l, fk);
            x->value = sdup(l, fv);
            x->decision = sprintf_arena(l, "field.%s=%s", x->name, x->value);
            continue;
        }
        if (!want_map(l, fv, "a field's value") || fv->n != 1 ||
            !key_is(fv->items[0], "from")) {
            DIAG(l, fv, "a field's value is text or {from: EXTRACTOR}");
            ok = false;
            continue;
        }
        const node *src = fv->items[1];
        int e = want_scalar(l, src, "from") ? extractor_index(l, src, false)
                                            : -2;
        if (e == -1)
            DIAG(l, src, "no extractor named '%s' in this or an earlier rule",
                 mr__cfg_show(src, buf, sizeof buf));
        if (e < 0) {
            ok = false;
            continue;
        }
        struct mr__action *x = new_action(l, a, MR__A_FIELD_EXT);
        x->name = sdup(l, fk);
        x->extract = e;
    }
    return ok;
}

/* ---- acknowledgement templates -------------------------------------- */

static const struct mr__template *find_template(const struct mr__settings *set,
                                                const char *name)
{
    for (size_t i = set ? set->ntemplates : 0; i > 0; i--)
        if (strcmp(set->templates[i - 1].name, name) == 0)
            return &set->templates[i - 1];
    return NULL;
}

static bool check_placeholders(struct loader *l, const node *at,
                               const char *text)
{
    char bad[200];
    if (mr_ack_template_check(text, bad, sizeof bad))
        return true;
    DIAG(l, at, "%s", bad);
    return false;
}

/* templates: {NAME: {subject, text}} onto set (after those it has). */
static void read_templates(struct loader *l, const node *v,
                           struct mr__settings *set)
{
    static const char *const keys[] = {"subject", "text", NULL};
    if (!want_map(l, v, "templates"))
        return;
    struct mr__template *t = mr_arena_zalloc(
        l->rs->arena, (set->ntemplates + v->n + 1) * sizeof(*t));
    if (set->ntemplates)
        memcpy(t, set->templates, set->ntemplates * sizeof(*t));
    size_t n = set->ntemplates;
    for (size_t i = 0; i < v->n; i++) {
        const node *k = v->items[2 * i], *x = v->items[2 * i + 1];
        if (!want_scalar(l, k, "a template name") ||
            !want_map(l, x, "a template"))
            continue;
        struct mr__template *tp = &t[n];
        tp->name = sdup(l, k);
        for (size_t j = 0; j < x->n; j++) {
            const node *tk = x->items[2 * j], *tv = x->items[2 * j + 1];
            int ki = known_index(tk, keys);
            if (ki < 0) {
                unknown_key(l, tk, "a template", keys);
            } else if (want_scalar(l, tv, keys[ki])) {
                const char *val = sdup(l, tv);
                /* Kept even when refused: one problem, one message. */
                (void)check_placeholders(l, tv, val);
                if (ki == 0 && memchr(tv->str, '\n', tv->len))
                    DIAG(l, tv, "a template's subject is one line");
                else if (ki == 0)
                    tp->subject = val;
                else
                    tp->text = val;
            }
        }
        if (tp->text == NULL)
            DIAG(l, x, "template '%s' needs a text", tp->name);
        n++;
    }
    set->templates = t;
    set->ntemplates = n;
}

static const char *const action_keys[] = {
    "queue",  "priority", "assignee", "add_tags", "remove_tags",
    "set_field", "ignore", "auto_acknowledge", "notify", NULL,
};

static bool read_actions(struct loader *l, const node *v, struct actions *a)
{
    char buf[64];
    if (!want_map(l, v, "then"))
        return false;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        const node *k = v->items[2 * i], *x = v->items[2 * i + 1];
        int ki = known_index(k, action_keys);
        struct mr__action *act;
        switch (ki) {
        case 0:
        case 2:
            if (!want_scalar(l, x, action_keys[ki])) {
                ok = false;
                break;
            }
            act = new_action(l, a, ki == 0 ? MR__A_QUEUE : MR__A_ASSIGNEE);
            act->value = sdup(l, x);
            act->decision =
                sprintf_arena(l, "%s=%s", action_keys[ki], act->value);
            break;
        case 1:
            if (!want_scalar(l, x, "priority")) {
                ok = false;
                break;
            }
            if (known_index(x, priorities) < 0) {
                DIAG(l, x, "priority must be low, normal, high or urgent, "
                           "not '%s'",
                     mr__cfg_show(x, buf, sizeof buf));
                ok = false;
                break;
            }
            act = new_action(l, a, MR__A_PRIORITY);
            act->value = sdup(l, x);
            act->decision = sprintf_arena(l, "priority=%s", act->value);
            break;
        case 3:
        case 4: {
            struct tag_arg t = {a, ki == 3};
            ok = each_scalar(l, x, action_keys[ki], add_tag, &t) && ok;
            break;
        }
        case 5: ok = read_fields(l, x, a) && ok; break;
        case 6: {
            bool yes;
            if (!read_bool(l, x, "ignore", &yes)) {
                ok = false;
            } else if (yes) {
                act = new_action(l, a, MR__A_IGNORE);
                act->decision = "ignore";
            }
            break;
        }
        case 7: {
            static const char *const keys[] = {"template", "text", NULL};
            if (!want_map(l, x, "auto_acknowledge")) {
                ok = false;
                break;
            }
            act = new_action(l, a, MR__A_ACK);
            l->rs->uses_auto_ack = true;
            for (size_t j = 0; j < x->n; j++) {
                const node *ak = x->items[2 * j], *av = x->items[2 * j + 1];
                int aki = known_index(ak, keys);
                if (aki < 0) {
                    unknown_key(l, ak, "auto_acknowledge", keys);
                    ok = false;
                } else if (want_scalar(l, av, keys[aki])) {
                    if (aki == 0)
                        act->value = sdup(l, av);
                    else
                        act->text = sdup(l, av);
                } else {
                    ok = false;
                }
            }
            if (act->value == NULL) {
                DIAG(l, x, "auto_acknowledge needs a template name");
                ok = false;
                break;
            }
            act->decision = sprintf_arena(l, "auto_ack=%s", act->value);
            const struct mr__template *tp = find_template(l->cur, act->value);
            if (tp) {
                act->subject = tp->subject;
                if (act->text == NULL)
                    act->text = tp->text;
            }
            if (act->text == NULL) {
                DIAG(l, x, "auto_acknowledge: no template '%s' with a text "
                           "(define it under templates:, or give text:)",
                     act->value);
                ok = false;
            } else if (!check_placeholders(l, x, act->text)) {
                ok = false;
            }
            break;
        }
        case 8: ok = each_scalar(l, x, "notify", add_notify, a) && ok; break;
        default: unknown_key(l, k, "then", action_keys); ok = false;
        }
    }
    return ok;
}

/* ---- rules and tenants ---------------------------------------------- */

static const char *const rule_keys[] = {"name", "description", "if", "then",
                                        "stop", NULL};

static bool read_rule(struct loader *l, const node *v,
                      const struct mr__settings *set, struct mr__rule *r)
{
    char buf[64];
    memset(r, 0, sizeof *r);
    if (!want_map(l, v, "a rule"))
        return false;
    const node *name = NULL, *cond = NULL, *then = NULL, *stop = NULL;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        const node *k = v->items[2 * i], *x = v->items[2 * i + 1];
        switch (known_index(k, rule_keys)) {
        case 0: name = x; break;
        case 1: break;
        case 2: cond = x; break;
        case 3: then = x; break;
        case 4: stop = x; break;
        default: unknown_key(l, k, "a rule", rule_keys); ok = false;
        }
    }
    if (name == NULL) {
        DIAG(l, v, "a rule needs a name");
        ok = false;
    } else if (!want_scalar(l, name, "name")) {
        ok = false;
    } else {
        r->name = sdup(l, name);
        for (size_t i = 0; i < name->len; i++)
            if ((unsigned char)name->str[i] < 0x20) {
                DIAG(l, name, "rule name '%s' has control characters",
                     mr__cfg_show(name, buf, sizeof buf));
                ok = false;
                break;
            }
    }
    l->nextracts = 0;
    if (cond) {
        r->cond = read_cond(l, cond, set, 0);
        ok = ok && r->cond;
    }
    if (l->nextracts) {
        r->extracts = mr_arena_alloc(l->rs->arena, l->nextracts * sizeof(int));
        memcpy(r->extracts, l->extracts, l->nextracts * sizeof(int));
        r->nextracts = l->nextracts;
    }
    struct actions a = {0};
    if (then)
        ok = read_actions(l, then, &a) && ok;
    r->actions = a.items;
    r->nactions = a.n;
    if (stop)
        ok = read_bool(l, stop, "stop", &r->stop) && ok;
    if (!then && !stop && name) {
        DIAG(l, v, "rule '%s' has no actions (then:) and no stop",
             r->name ? r->name : "?");
        ok = false;
    }
    return ok;
}

static void read_rules(struct loader *l, const node *v, struct mr__tenant *t)
{
    if (v->kind != MR__CFG_SEQ) {
        DIAG(l, v, "the rules of tenant '%s' must be a list", t->name);
        return;
    }
    t->rules = mr_arena_zalloc(l->rs->arena, (v->n ? v->n : 1) * sizeof(*t->rules));
    for (size_t i = 0; i < v->n; i++) {
        if (++l->nrules > MR_RULES_MAX_RULES) {
            DIAG(l, v->items[i], "more than %d rules", MR_RULES_MAX_RULES);
            return;
        }
        struct mr__rule *r = &t->rules[t->nrules];
        /* A rule with problems still claims its name: a duplicate is
         * reported either way (and the file is refused anyway). */
        (void)read_rule(l, v->items[i], &t->set, r);
        for (size_t j = 0; r->name && j < t->nrules; j++) {
            if (t->rules[j].name && strcmp(t->rules[j].name, r->name) == 0) {
                DIAG(l, v->items[i], "a second rule named '%s' in tenant '%s'",
                     r->name, t->name);
                break;
            }
        }
        t->nrules++;
    }
}

static void read_tenant(struct loader *l, const node *k, const node *v,
                        const struct mr__settings *global,
                        struct mr__tenant *t)
{
    t->name = sdup(l, k);
    t->set = *global;
    l->cur = &t->set;
    if (v->kind == MR__CFG_SEQ) {
        read_rules(l, v, t);
        return;
    }
    if (v->kind != MR__CFG_MAP) {
        DIAG(l, v, "tenant '%s' must be a list of rules or a mapping with "
                   "rules and settings",
             t->name);
        return;
    }
    const node *rules = NULL;
    for (size_t i = 0; i < v->n; i++) {
        const node *tk = v->items[2 * i], *tv = v->items[2 * i + 1];
        if (key_is(tk, "rules"))
            rules = tv;
        else if (key_is(tk, "templates"))
            read_templates(l, tv, &t->set);
        else if (!read_setting(l, tk, tv, &t->set)) {
            static const char *const keys[] = {
                "rules", "trusted_authserv_id", "timezone", "business_hours",
                "auto_ack_window", "regex_match_limit", "templates", NULL};
            unknown_key(l, tk, "a tenant", keys);
        }
    }
    if (rules == NULL)
        DIAG(l, v, "tenant '%s' has no rules: list", t->name);
    else
        read_rules(l, rules, t);
}

static void read_root(struct loader *l, const node *root)
{
    struct mr_rules *rs = l->rs;
    struct mr__settings global = {
        .ack_window_ms = MR_RULES_DEFAULT_ACK_WINDOW_MS,
        .match_limit = MR_RULES_DEFAULT_MATCH_LIMIT,
        .tz_name = "UTC",
    };
    struct mr_error e = {0};
    struct mr_tz *utc = NULL;
    mr_tz_load(NULL, "UTC", &utc, &e);
    rs->zones = mr_xcalloc(4, sizeof(*rs->zones));
    l->zones_alloc = 4;
    rs->zones[rs->nzones++] = utc;
    global.tz = utc;
    if (root == NULL) {
        mr__config_diag(l->ctx, 1, 1, "the rules file is empty");
        return;
    }
    if (root->kind != MR__CFG_MAP) {
        DIAG(l, root, "the rules file must be a mapping with tenants: and "
                      "settings");
        return;
    }
    const node *tenants = NULL;
    for (size_t i = 0; i < root->n; i++) {
        const node *k = root->items[2 * i], *v = root->items[2 * i + 1];
        if (key_is(k, "tenants"))
            tenants = v;
        else if (key_is(k, "templates"))
            read_templates(l, v, &global);
        else if (!read_setting(l, k, v, &global)) {
            static const char *const keys[] = {
                "tenants", "trusted_authserv_id", "timezone", "business_hours",
                "auto_ack_window", "regex_match_limit", "templates", NULL};
            unknown_key(l, k, "the rules file", keys);
        }
    }
    if (tenants == NULL) {
        DIAG(l, root, "the rules file has no tenants: mapping");
        return;
    }
    if (!want_map(l, tenants, "tenants"))
        return;
    rs->tenants = mr_arena_zalloc(rs->arena,
                                  (tenants->n ? tenants->n : 1) * sizeof(*rs->tenants));
    for (size_t i = 0; i < tenants->n; i++) {
        const node *k = tenants->items[2 * i], *v = tenants->items[2 * i + 1];
        if (!want_scalar(l, k, "a tenant name"))
            continue;
        for (size_t j = 0; j < rs->ntenants; j++)
            if (strlen(rs->tenants[j].name) == k->len &&
                memcmp(rs->tenants[j].name, k->str, k->len) == 0)
                DIAG(l, k, "tenant '%s' appears twice", rs->tenants[j].name);
        read_tenant(l, k, v, &global, &rs->tenants[rs->ntenants++]);
    }
}

/* ---- entry points --------------------------------------------------- */

void mr_rules_free(struct mr_rules **rsp)
{
    struct mr_rules *rs = *rsp;
    if (rs == NULL)
        return;
    for (size_t i = 0; i < rs->ncodes; i++)
        pcre2_code_free(rs->codes[i]);
    free(rs->codes);
    free(rs->patterns);
    for (size_t i = 0; i < rs->nzones; i++)
        mr_tz_free(&rs->zones[i]);
    free(rs->zones);
    for (int f = 0; f < MR__F_COUNT; f++) {
        free(rs->needles[f].items);
        free(rs->needles[f].keys);
        free(rs->needles[f].short_ids);
    }
    free(rs->hnames);
    mr_arena_free(&rs->arena);
    free(rs);
    *rsp = NULL;
}

int mr_rules_load(const char *text, size_t len, const char *source,
                  const struct mr_rules_options *opt, struct mr_rules **out,
                  struct mr_config_diags *diags, struct mr_error *err)
{
    *out = NULL;
    if (diags) {
        diags->items = NULL;
        diags->n = 0;
    }
    struct mr__cfg_ctx ctx = {.arena = mr_arena_new()};
    struct mr_rules *rs = mr_xcalloc(1, sizeof(*rs));
    rs->arena = mr_arena_new();
    rs->auth_hidx = -1;
    struct loader l = {.ctx = &ctx, .rs = rs, .opt = opt};
    l.cctx = pcre2_compile_context_create(NULL);
    pcre2_set_max_pattern_length(l.cctx, 8192);
    pcre2_set_parens_nest_limit(l.cctx, 64);
    node *root = NULL;
    if (len > MR__CFG_MAX_FILE)
        mr__config_diag(&ctx, 0, 0, "the rules file is larger than %u MiB",
                        MR__CFG_MAX_FILE >> 20);
    else if (mr__config_yaml_read(&ctx, text ? text : "", len, &root) == 0)
        read_root(&l, root);
    pcre2_compile_context_free(l.cctx);
    free(l.extracts);
    mr_arena_free(&ctx.arena);
    if (ctx.ndiags > 0) {
        const struct mr_config_diag *d = &ctx.diags[0];
        mr_error_set(err, MR_EINVAL, "%s:%d:%d: %s%s",
                     source ? source : "<rules>", d->line, d->column, d->msg,
                     ctx.ndiags > 1 ? " (and more)" : "");
        if (diags) {
            diags->items = ctx.diags;
            diags->n = ctx.ndiags;
        } else {
            free(ctx.diags);
        }
        mr_rules_free(&rs);
        return MR_EINVAL;
    }
    free(ctx.diags);
    build_needles(rs);
    *out = rs;
    return 0;
}

int mr_rules_load_file(const char *path, const struct mr_rules_options *opt,
                       struct mr_rules **out, struct mr_config_diags *diags,
                       struct mr_error *err)
{
    *out = NULL;
    if (diags) {
        diags->items = NULL;
        diags->n = 0;
    }
    struct mr_buf text;
    int rc = mr__cfg_read_file(path, &text, err);
    if (rc < 0)
        return rc;
    if (text.len > MR__CFG_MAX_FILE) {
        mr_buf_release(&text);
        return mr_error_set(err, MR_EINVAL, "%s: larger than %u MiB", path,
                            MR__CFG_MAX_FILE >> 20);
    }
    rc = mr_rules_load(text.p ? text.p : "", text.len, path, opt, out, diags,
                       err);
    mr_buf_release(&text);
    return rc;
}

size_t mr_rules_tenant_count(const struct mr_rules *rs)
{
    return rs->ntenants;
}

const char *mr_rules_tenant_name(const struct mr_rules *rs, size_t i)
{
    return i < rs->ntenants ? rs->tenants[i].name : NULL;
}

size_t mr_rules_count(const struct mr_rules *rs, const char *tenant)
{
    for (size_t i = 0; i < rs->ntenants; i++)
        if (strcmp(rs->tenants[i].name, tenant) == 0)
            return rs->tenants[i].nrules;
    return 0;
}

bool mr_rules_jit(const struct mr_rules *rs)
{
    return rs->jit;
}

bool mr_rules_uses_previous_tickets(const struct mr_rules *rs)
{
    return rs->uses_previous_tickets;
}

bool mr_rules_uses_auto_ack(const struct mr_rules *rs)
{
    return rs->uses_auto_ack;
}

void mr_rules_each_notify(const struct mr_rules *rs,
                          void (*fn)(void *ctx, const char *tenant,
                                     const char *rule, const char *name),
                          void *ctx)
{
    for (size_t t = 0; rs && t < rs->ntenants; t++) {
        const struct mr__tenant *tn = &rs->tenants[t];
        for (size_t r = 0; r < tn->nrules; r++)
            for (size_t a = 0; a < tn->rules[r].nactions; a++)
                if (tn->rules[r].actions[a].kind == MR__A_NOTIFY)
                    fn(ctx, tn->name, tn->rules[r].name,
                       tn->rules[r].actions[a].value);
    }
}
