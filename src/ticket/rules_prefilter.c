/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_prefilter.c - the literals without which a regular expression
 * cannot match, found once at load time, so that evaluation skips PCRE2
 * on a field that holds none of them (rules_eval.c, field_regex).
 *
 * What it finds: a small set of strings such that every match of the
 * pattern begins with one of them. `(?i)\b(?:order|ticket) *#?([0-9]+)`
 * gives {"order", "ticket"}; `(?i)invoice (?:no\.?|number)` gives
 * {"invoice no", "invoice number"}; `\b(INV-[0-9]{6})\b` gives {"INV-"};
 * `abc|x+yz` gives {"abc", "x"}, too short to be worth a look, so none.
 * A field that contains none of the set cannot match, wherever PCRE2
 * would start: the skip is exact, never a guess. (It cannot hide a
 * match-limit note either: PCRE2 counts its limit per start position, and
 * a start position without one of the literals fails within the first
 * few steps, far below the smallest limit of 100.)
 *
 * The parser walks the pattern as PCRE2 reads it in UTF mode without
 * extended syntax (the options rules_load.c compiles with), keeping for
 * each path through the alternations seen so far the literal it has
 * consumed, and whether that literal can still grow ("open"): an ASCII
 * character appends to every open literal; a group multiplies them by
 * its own alternatives; a zero-width item (\b, ^, $, a lookaround) leaves
 * them as they are; anything else (a class, `.`, an escape such as \d, a
 * quantifier that allows zero, a non-ASCII character) closes them.
 * Anything it does not know well enough to be sure where the pattern's
 * alternatives begin and end (\Q..\E, comments, verbs, recursion,
 * conditionals, option settings other than a leading `(?i)`, which also
 * carry into later alternatives) gives no prefilter at all: the only
 * cost of an unknown construct is a PCRE2 call.
 *
 * Case: without `(?i)` the literals are compared with the field as it
 * is. After a leading `(?i)` they are ASCII, lower-cased, and compared
 * with the case-folded field: full case folding maps every character
 * that PCRE2's caseless matching equates with an ASCII character to that
 * character (the Kelvin sign to 'k', long s to 's'; tests/unit/test_rules.c
 * checks every code point against PCRE2), and it folds one code point at
 * a time, so a run that PCRE2 matches caselessly is, folded, the literal.
 */
#include <string.h>

#include "rules-private.h"

/* Shorter literals would pass nearly every field: not worth a look. */
#define LIT_MIN 3

struct lset {
    size_t n;
    size_t len[MR__LITS_MAX];
    bool open[MR__LITS_MAX];
    char s[MR__LITS_MAX][MR__LIT_BYTES];
};

struct parser {
    const char *p;
    size_t i, n;
    bool fold;
    bool fail; /* a construct not known well enough: no prefilter */
};

static void close_all(struct lset *set)
{
    for (size_t k = 0; k < set->n; k++)
        set->open[k] = false;
}

static void append_char(struct lset *set, char c)
{
    for (size_t k = 0; k < set->n; k++) {
        if (!set->open[k])
            continue;
        /* A prefix of a required prefix is required too. */
        if (set->len[k] == MR__LIT_BYTES) {
            set->open[k] = false;
            continue;
        }
        set->s[k][set->len[k]++] = c;
    }
}

/* Every open literal followed by every literal of g. */
static void append_group(struct lset *set, const struct lset *g)
{
    size_t nopen = 0;
    for (size_t k = 0; k < set->n; k++)
        nopen += set->open[k];
    if (set->n - nopen + nopen * g->n > MR__LITS_MAX) {
        close_all(set);
        return;
    }
    struct lset out = {0};
    for (size_t k = 0; k < set->n; k++) {
        if (!set->open[k]) {
            out.len[out.n] = set->len[k];
            memcpy(out.s[out.n], set->s[k], set->len[k]);
            out.open[out.n++] = false;
            continue;
        }
        for (size_t j = 0; j < g->n; j++) {
            size_t a = set->len[k], b = g->len[j];
            bool open = g->open[j];
            if (a + b > MR__LIT_BYTES) {
                b = MR__LIT_BYTES - a;
                open = false;
            }
            memcpy(out.s[out.n], set->s[k], a);
            memcpy(out.s[out.n] + a, g->s[j], b);
            out.len[out.n] = a + b;
            out.open[out.n++] = open;
        }
    }
    *set = out;
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

static bool is_option_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '^';
}

/* Skips a character class, ps->i at its '['. */
static void skip_class(struct parser *ps)
{
    const char *p = ps->p;
    size_t i = ps->i + 1, n = ps->n;
    if (i < n && p[i] == '^')
        i++;
    if (i < n && p[i] == ']') /* a ']' first is a member */
        i++;
    while (i < n && p[i] != ']') {
        if (p[i] == '\\') {
            if (i + 1 >= n || p[i + 1] == 'Q' || p[i + 1] == 'E') {
                ps->fail = true;
                return;
            }
            i += p[i + 1] == 'c' ? 3 : 2;
        } else if (p[i] == '[' && i + 1 < n &&
                   (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
            /* [:alpha:], [.x.], [=x=]: up to the same mark and ']' */
            char mark = p[i + 1];
            size_t j = i + 2;
            while (j + 1 < n && !(p[j] == mark && p[j + 1] == ']'))
                j++;
            if (j + 1 >= n) {
                ps->fail = true;
                return;
            }
            i = j + 2;
        } else {
            i++;
        }
    }
    if (i >= n) {
        ps->fail = true;
        return;
    }
    ps->i = i + 1;
}

/* `{n}`, `{n,}`, `{n,m}` (and `{,m}`, a quantifier from PCRE2 10.43 on)
 * at p[i]: its length, or 0 when the '{' is a literal. */
static size_t quantifier_len(const char *p, size_t i, size_t n)
{
    size_t j = i + 1;
    bool digits = false, comma = false;
    while (j < n && ((p[j] >= '0' && p[j] <= '9') || (p[j] == ',' && !comma))) {
        if (p[j] == ',')
            comma = true;
        else
            digits = true;
        j++;
    }
    return digits && j < n && p[j] == '}' ? j + 1 - i : 0;
}

static void parse_alternatives(struct parser *ps, struct lset *out);

enum atom { A_LIT, A_ZERO, A_GROUP, A_OTHER };

/* One alternative, up to '|', ')' or the end: every literal of set that
 * is still open grows by what the alternative consumes. */
static void parse_sequence(struct parser *ps, struct lset *set)
{
    const char *p = ps->p;
    size_t n = ps->n;
    while (!ps->fail && ps->i < n && p[ps->i] != '|' && p[ps->i] != ')') {
        unsigned char c = (unsigned char)p[ps->i];
        enum atom kind = A_OTHER;
        char lit = 0;
        struct lset g;
        bool closes_after = false; /* an option group: its case may differ */
        if (c == '\\') {
            if (ps->i + 1 >= n) {
                ps->fail = true;
                return;
            }
            unsigned char e = (unsigned char)p[ps->i + 1];
            ps->i += 2;
            if (e == 'Q' || e == 'E') {
                ps->fail = true; /* quoting: '|' and ')' in it are text */
                return;
            } else if (strchr("bBAGzZ", e) != NULL) {
                kind = A_ZERO;
            } else if (e == 'c') {
                ps->i++; /* \cX: X is any character, even '(' */
            } else if (e >= 0x21 && e < 0x7F && !is_alnum(e)) {
                kind = A_LIT;
                lit = (char)e;
            }
            /* \d, \x{..}, \p{..}, \1, \k<..>: no literal, and nothing in
             * their braces or brackets that opens a group or a branch. */
        } else if (c == '[') {
            skip_class(ps);
        } else if (c == '(') {
            size_t i = ps->i + 1;
            bool zero = false;
            if (i < n && p[i] == '*') {
                ps->fail = true; /* verbs, (*pla:...) */
                return;
            }
            if (i < n && p[i] == '?') {
                i++;
                char q = i < n ? p[i] : '\0';
                if (q == ':' || q == '|' || q == '>') {
                    i++;
                } else if (q == '=' || q == '!') {
                    zero = true;
                    i++;
                } else if (q == '<' && i + 1 < n &&
                           (p[i + 1] == '=' || p[i + 1] == '!')) {
                    zero = true;
                    i += 2;
                } else if (q == '<' || q == '\'' ||
                           (q == 'P' && i + 1 < n && p[i + 1] == '<')) {
                    char end = q == '\'' ? '\'' : '>';
                    const char *e = memchr(p + i + 1, end, n - i - 1);
                    if (e == NULL) {
                        ps->fail = true;
                        return;
                    }
                    i = (size_t)(e - p) + 1;
                } else {
                    size_t j = i;
                    bool x = false;
                    while (j < n && is_option_letter((unsigned char)p[j]))
                        x |= p[j++] == 'x';
                    /* (?i) and the like carry into later alternatives,
                     * (?x) changes what every byte means; (?#, (?R),
                     * (?(cond)...), (?C): rare, not worth knowing. */
                    if (j == i || j >= n || p[j] != ':' || x) {
                        ps->fail = true;
                        return;
                    }
                    closes_after = true;
                    i = j + 1;
                }
            }
            ps->i = i;
            parse_alternatives(ps, &g);
            if (ps->fail || ps->i >= n || p[ps->i] != ')') {
                ps->fail = true;
                return;
            }
            ps->i++;
            kind = zero ? A_ZERO : closes_after ? A_OTHER : A_GROUP;
        } else if (c == '^' || c == '$') {
            kind = A_ZERO;
            ps->i++;
        } else if (c >= 0x20 && c < 0x7F && !strchr(".?*+{", c)) {
            kind = A_LIT;
            lit = (char)c;
            ps->i++;
        } else {
            ps->i++; /* '.', a non-ASCII byte, a control character */
        }
        if (ps->fail)
            return;

        /* Its quantifier: one that allows zero times makes the atom
         * optional, so nothing from it on is certain; '+' keeps one. */
        bool optional = false, plus = false;
        if (ps->i < n) {
            char q = p[ps->i];
            size_t ql = q == '{' ? quantifier_len(p, ps->i, n) : 0;
            if (q == '?' || q == '*' || ql) {
                optional = true; /* {n,m} counts too: n may be 0 */
                ps->i += ql ? ql : 1;
            } else if (q == '+') {
                plus = true;
                ps->i++;
            }
            if ((optional || plus) && ps->i < n &&
                (p[ps->i] == '?' || p[ps->i] == '+'))
                ps->i++; /* lazy or possessive */
        }
        if (kind == A_ZERO)
            continue; /* even quantified, it consumes nothing */
        if (optional || kind == A_OTHER) {
            close_all(set);
            continue;
        }
        if (kind == A_LIT) {
            unsigned char u = (unsigned char)lit;
            append_char(set, ps->fold && u >= 'A' && u <= 'Z'
                                 ? (char)(u + 0x20) : lit);
        } else {
            append_group(set, &g);
        }
        if (plus)
            close_all(set);
    }
}

/* Alternatives up to ')' or the end: the union of their literals. */
static void parse_alternatives(struct parser *ps, struct lset *out)
{
    memset(out, 0, sizeof *out);
    bool overflow = false;
    for (;;) {
        struct lset alt = {.n = 1, .open = {true}};
        parse_sequence(ps, &alt);
        if (ps->fail)
            return;
        for (size_t k = 0; k < alt.n && !overflow; k++) {
            size_t j = 0, len = alt.len[k];
            while (j < out->n &&
                   !(out->len[j] == len && out->open[j] == alt.open[k] &&
                     memcmp(out->s[j], alt.s[k], len) == 0))
                j++;
            if (j < out->n)
                continue; /* a duplicate */
            if (out->n == MR__LITS_MAX) {
                overflow = true;
                break;
            }
            out->len[out->n] = alt.len[k];
            out->open[out->n] = alt.open[k];
            memcpy(out->s[out->n++], alt.s[k], alt.len[k]);
        }
        if (ps->i >= ps->n || ps->p[ps->i] != '|')
            break;
        ps->i++;
    }
    if (overflow) {
        /* Too many to keep: all that is certain is the empty prefix. */
        memset(out, 0, sizeof *out);
        out->n = 1;
    }
}

size_t mr__rules_required_literals(const char *p, size_t n, bool *fold,
                                   struct mr__str *out, char *store)
{
    struct parser ps = {.p = p, .n = n};
    if (n >= 4 && memcmp(p, "(?i)", 4) == 0) {
        ps.fold = true;
        ps.i = 4;
    }
    *fold = ps.fold;
    struct lset set;
    parse_alternatives(&ps, &set);
    if (ps.fail || ps.i != n)
        return 0;
    for (size_t k = 0; k < set.n; k++)
        if (set.len[k] < LIT_MIN)
            return 0;
    /* A literal that contains another adds nothing: a field with it has
     * the other one too. */
    size_t m = 0;
    for (size_t k = 0; k < set.n; k++) {
        bool redundant = false;
        for (size_t j = 0; j < set.n && !redundant; j++) {
            if (j == k || set.len[j] > set.len[k])
                continue;
            if (set.len[j] == set.len[k] && j > k)
                continue; /* of two equal ones, keep the first */
            redundant =
                memmem(set.s[k], set.len[k], set.s[j], set.len[j]) != NULL;
        }
        if (redundant)
            continue;
        memcpy(store + m * MR__LIT_BYTES, set.s[k], set.len[k]);
        out[m].p = store + m * MR__LIT_BYTES;
        out[m].n = set.len[k];
        out[m].glob = false;
        m++;
    }
    return m;
}
