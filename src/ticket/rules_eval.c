/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_eval.c - one message through a tenant's rules (see rules.h).
 *
 * Speed comes from doing each piece of work at most once per message and
 * only when a rule needs it: recipients are lower-cased and split (+tag)
 * once up front; a text field is case-folded the first time a `contains`
 * looks at it; Authentication-Results is parsed the first time an auth
 * condition asks; the local time the first time a time condition does.
 * All of it lives in the scratch, whose buffers keep their memory from
 * one message to the next, as does the result's storage: after the first
 * few messages an evaluation allocates nothing.
 *
 * Extractors: a regex with `extract: NAME` captures into a per-rule
 * pending slot; when the rule's conditions hold, its pending captures are
 * committed (visible to later rules' `set_field: {from: NAME}`) and set
 * as the field NAME. A rule that does not match leaves no captures
 * behind, even when a regex inside it matched.
 */
#include <string.h>
#include <strings.h>

#include "rules-private.h"
#include "util/span.h"

struct naddr {
    size_t off, len;           /* whole address, lower-case */
    size_t base_off, base_len; /* without +tag */
    size_t tag_off, tag_len;   /* tag_len 0: none */
    bool envelope;
};

struct hv {
    int hidx; /* in mr_rules.hnames */
    const char *value;
};

struct ext {
    size_t off, len;
    bool set;
};

struct mr_rules_scratch {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    uint32_t limit;
    /* per message */
    struct mr_buf addrs;
    struct naddr *rcpt;
    size_t nrcpt, rcpt_alloc;
    /* Bit (len % 64) for the length of each recipient's address
     * without its +tag and, when it has one, with it. */
    uint64_t rcpt_lens;
    uint64_t rcpt_heads; /* bit head_hash() of each of those addresses */
    size_t from_off, from_len, dom_off, dom_len;
    bool have_from;
    const char *field[MR__F_COUNT];
    size_t field_len[MR__F_COUNT];
    struct mr_buf folded[MR__F_COUNT];
    bool scanned[MR__F_COUNT], have_folded[MR__F_COUNT];
    bool one_by_one[MR__F_COUNT]; /* see start_needles */
    uint64_t *found[MR__F_COUNT]; /* needle id bits, once scanned */
    uint64_t *known[MR__F_COUNT]; /* one by one: searched for already */
    size_t found_words[MR__F_COUNT];
    /* Regex results per (pattern, field), this message: 0 not run yet,
     * 1 matched (group 1 at cap_off/cap_len, cap_len SIZE_MAX: unset),
     * 2 no match. */
    uint8_t *re_state;
    size_t *re_cap_off, *re_cap_len;
    size_t re_alloc;
    struct hv *hv; /* headers some condition asks about, message order */
    size_t nhv, hv_alloc;
    bool auth_done;
    enum mr__auth_result auth[MR__AUTH_N];
    bool time_done;
    int wday, minute;
    struct mr_buf ext_buf;
    struct ext *ext, *pending;
    size_t ext_alloc;
    /* current evaluation */
    const struct mr_rules *rs;
    const struct mr_rules_msg *m;
    const struct mr__settings *set;
    struct mr_rules_result *r;
    const struct mr__rule *rule;
};

struct mr_rules_scratch *mr_rules_scratch_new(void)
{
    struct mr_rules_scratch *s = mr_xcalloc(1, sizeof(*s));
    /* Extractors read group 1; more pairs than that are never looked at
     * (a match with more groups returns 0: "ovector too small"). */
    s->md = pcre2_match_data_create(4, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    if (s->md == NULL || s->mctx == NULL)
        abort();
    /* Without JIT, the interpreter's own limits: a depth of 1000 nested
     * backtracking frames and 4 MiB of heap for them. */
    pcre2_set_depth_limit(s->mctx, 1000);
    pcre2_set_heap_limit(s->mctx, 4096);
    mr_buf_init(&s->addrs, 0);
    mr_buf_init(&s->ext_buf, 0);
    for (int f = 0; f < MR__F_COUNT; f++)
        mr_buf_init(&s->folded[f], 0);
    return s;
}

void mr_rules_scratch_free(struct mr_rules_scratch **sp)
{
    struct mr_rules_scratch *s = *sp;
    if (s == NULL)
        return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    mr_buf_release(&s->addrs);
    mr_buf_release(&s->ext_buf);
    for (int f = 0; f < MR__F_COUNT; f++) {
        mr_buf_release(&s->folded[f]);
        free(s->found[f]);
        free(s->known[f]);
    }
    free(s->hv);
    free(s->re_state);
    free(s->re_cap_off);
    free(s->re_cap_len);
    free(s->rcpt);
    free(s->ext);
    free(s->pending);
    free(s);
    *sp = NULL;
}

/* ---- result storage ------------------------------------------------- */

void mr_rules_result_init(struct mr_rules_result *r)
{
    memset(r, 0, sizeof *r);
    r->store = mr_xcalloc(1, sizeof(*r->store));
    mr_buf_init(&r->store->strings, 0);
}

void mr_rules_result_release(struct mr_rules_result *r)
{
    if (r->store) {
        mr_buf_release(&r->store->strings);
        free(r->store->dyn_off);
        free(r->store->field_off);
        free(r->store);
    }
    free(r->decisions);
    free(r->matched);
    free(r->tags_add);
    free(r->tags_remove);
    free(r->fields);
    free(r->notify);
    memset(r, 0, sizeof *r);
}

static void reset_result(struct mr_rules_result *r)
{
    r->tenant = NULL;
    r->ndecisions = r->nmatched = r->ntags_add = r->ntags_remove = 0;
    r->nfields = r->nnotify = 0;
    r->queue = r->priority = r->assignee = NULL;
    r->ignore = false;
    r->ack_template = r->ack_text = r->ack_subject = NULL;
    r->ack_window_ms = 0;
    mr_buf_reset(&r->store->strings);
}

#define GROW(arr, n, alloc)                                                    \
    do {                                                                       \
        if ((n) == (alloc)) {                                                  \
            (alloc) = (alloc) ? 2 * (alloc) : 16;                              \
            (arr) = mr_xrealloc((arr), (alloc) * sizeof(*(arr)));              \
        }                                                                      \
    } while (0)

/* A decision; dyn: its string is at that offset of store->strings (the
 * buffer may still move, so pointers are made at the end). */
static void decide(struct mr_rules_result *r, const char *rule,
                   const char *decision, size_t dyn)
{
    struct mr__rules_store *st = r->store;
    GROW(r->decisions, r->ndecisions, st->decisions_alloc);
    GROW(st->dyn_off, r->ndecisions, st->dyn_alloc);
    r->decisions[r->ndecisions].rule = rule;
    r->decisions[r->ndecisions].decision = decision;
    st->dyn_off[r->ndecisions] = dyn;
    r->ndecisions++;
}

static bool in_list(const char **list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static void drop(const char **list, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(list[i], s) == 0) {
            memmove(list + i, list + i + 1, (*n - i - 1) * sizeof(*list));
            (*n)--;
            return;
        }
    }
}

/* value: a static string, or (value NULL) at offset dyn - 1 of strings. */
static void set_field(struct mr_rules_result *r, const char *name,
                      const char *value, size_t dyn)
{
    struct mr__rules_store *st = r->store;
    size_t i = 0;
    while (i < r->nfields && strcmp(r->fields[i].name, name) != 0)
        i++;
    if (i == r->nfields) {
        GROW(r->fields, r->nfields, st->fields_alloc);
        GROW(st->field_off, r->nfields, st->field_off_alloc);
        r->nfields++;
    }
    r->fields[i].name = name;
    r->fields[i].value = value;
    st->field_off[i] = dyn;
}

/* ---- per-message preparation ---------------------------------------- */

static void add_addr(struct mr_rules_scratch *s, const char *a, bool env)
{
    if (a == NULL || a[0] == '\0')
        return;
    size_t n = strnlen(a, 998);
    GROW(s->rcpt, s->nrcpt, s->rcpt_alloc);
    struct naddr *x = &s->rcpt[s->nrcpt++];
    x->envelope = env;
    x->off = s->addrs.len;
    x->len = n;
    char *o = mr_buf_reserve(&s->addrs, 2 * n + 2);
    if (o == NULL) {
        s->nrcpt--;
        return;
    }
    for (size_t i = 0; i < n; i++)
        o[i] = (char)mr_lower((unsigned char)a[i]);
    o[n] = '\0';
    const char *at = memrchr(o, '@', n);
    const char *plus = memchr(o, '+', at ? (size_t)(at - o) : n);
    x->tag_len = 0;
    if (plus && at) {
        x->tag_off = x->off + (size_t)(plus + 1 - o);
        x->tag_len = (size_t)(at - plus - 1);
        /* base: local part before '+', then "@domain" */
        size_t head = (size_t)(plus - o), tail = n - (size_t)(at - o);
        memcpy(o + n + 1, o, head);
        memcpy(o + n + 1 + head, at, tail);
        x->base_off = x->off + n + 1;
        x->base_len = head + tail;
        o[n + 1 + x->base_len] = '\0';
        mr_buf_commit(&s->addrs, n + 2 + x->base_len);
    } else {
        x->base_off = x->off;
        x->base_len = n;
        mr_buf_commit(&s->addrs, n + 1);
    }
    /* The same address twice (the envelope recipient is nearly always
     * a To address as well) is one entry, envelope if either is: every
     * recipient condition asks "any of them", so the answer is the
     * same, and each address is compared with the patterns once. */
    for (size_t i = 0; i + 1 < s->nrcpt; i++) {
        struct naddr *y = &s->rcpt[i];
        if (y->len == n &&
            memcmp(s->addrs.p + y->off, s->addrs.p + x->off, n) == 0) {
            y->envelope |= env;
            s->nrcpt--;
            mr_buf_truncate(&s->addrs, x->off);
            return;
        }
    }
}

static const char *addr_str(const struct mr_rules_scratch *s, size_t off)
{
    return s->addrs.p + off;
}

/* The first four bytes of an address (at least that long), to 0..63. */
static inline unsigned head_hash(const char *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return (unsigned)((w * 0x9E3779B1u) >> 26);
}

static void prepare(struct mr_rules_scratch *s, const struct mr_rules_msg *m)
{
    mr_buf_reset(&s->addrs);
    s->nrcpt = 0;
    for (size_t i = 0; i < m->nrecipients; i++)
        add_addr(s, m->recipients[i], false);
    for (size_t i = 0; i < m->nrcpt_to; i++)
        add_addr(s, m->rcpt_to[i], true);
    s->rcpt_lens = s->rcpt_heads = 0;
    for (size_t i = 0; i < s->nrcpt; i++) {
        const struct naddr *a = &s->rcpt[i];
        s->rcpt_lens |= 1ull << (a->base_len & 63);
        if (a->base_len >= 4)
            s->rcpt_heads |= 1ull << head_hash(addr_str(s, a->base_off));
        if (a->tag_len) { /* same head: the tag comes after it */
            s->rcpt_lens |= 1ull << (a->len & 63);
            if (a->len >= 4)
                s->rcpt_heads |= 1ull << head_hash(addr_str(s, a->off));
        }
    }
    s->have_from = m->from && m->from[0];
    if (s->have_from) {
        size_t n = strnlen(m->from, 998);
        s->from_off = s->addrs.len;
        s->from_len = n;
        char *o = mr_buf_reserve(&s->addrs, n + 1);
        if (o == NULL) {
            s->have_from = false;
        } else {
            for (size_t i = 0; i < n; i++)
                o[i] = (char)mr_lower((unsigned char)m->from[i]);
            const char *at = memrchr(o, '@', n);
            s->dom_off = at ? s->from_off + (size_t)(at + 1 - o) : s->from_off + n;
            s->dom_len = at ? n - (size_t)(at + 1 - o) : 0;
            mr_buf_commit(&s->addrs, n);
            mr_buf_putc(&s->addrs, '\0');
        }
    }
    const char *f[MR__F_COUNT] = {m->subject, m->text, m->stripped_text};
    for (int i = 0; i < MR__F_COUNT; i++) {
        s->field[i] = f[i];
        s->field_len[i] = f[i] ? strnlen(f[i], MR_RULES_SCAN_BYTES) : 0;
        s->scanned[i] = s->have_folded[i] = false;
        size_t words = (s->rs->needles[i].n + 63) / 64;
        if (words > s->found_words[i]) {
            s->found[i] = mr_xrealloc(s->found[i], words * sizeof(uint64_t));
            s->known[i] = mr_xrealloc(s->known[i], words * sizeof(uint64_t));
            s->found_words[i] = words;
        }
    }
    const struct mr_rules *rs = s->rs;
    size_t nre = rs->ncodes * MR__F_COUNT;
    if (nre > s->re_alloc) {
        s->re_state = mr_xrealloc(s->re_state, nre);
        s->re_cap_off = mr_xrealloc(s->re_cap_off, nre * sizeof(size_t));
        s->re_cap_len = mr_xrealloc(s->re_cap_len, nre * sizeof(size_t));
        s->re_alloc = nre;
    }
    if (nre)
        memset(s->re_state, 0, nre);
    s->nhv = 0;
    for (size_t i = 0; rs->nhnames && i < m->nheaders; i++) {
        const char *name = m->headers[i].name;
        if (name == NULL)
            continue;
        size_t n = strlen(name);
        for (size_t j = 0; j < rs->nhnames; j++) {
            if (rs->hnames[j][0] == name[0] && strlen(rs->hnames[j]) == n &&
                memcmp(rs->hnames[j], name, n) == 0) {
                GROW(s->hv, s->nhv, s->hv_alloc);
                s->hv[s->nhv].hidx = (int)j;
                s->hv[s->nhv++].value = m->headers[i].value;
                break;
            }
        }
    }
    s->auth_done = false;
    s->time_done = false;
    mr_buf_reset(&s->ext_buf);
    size_t ne = s->rs->nextract;
    if (ne > s->ext_alloc) {
        s->ext = mr_xrealloc(s->ext, ne * sizeof(*s->ext));
        s->pending = mr_xrealloc(s->pending, ne * sizeof(*s->pending));
        s->ext_alloc = ne;
    }
    for (size_t i = 0; i < ne; i++)
        s->ext[i].set = s->pending[i].set = false;
}

/* ---- matchers ------------------------------------------------------- */

/* A glob's literal head and tail are compared first: nearly every
 * address differs from nearly every pattern right there, and a leading
 * '*' ("*.client7.example") then costs one memcmp instead of the general
 * matcher's try at every offset. In the benchmark the general matcher
 * took 14,300 instructions per message; now it never runs. */
static inline bool glob_match(const struct mr__str *p, const char *v,
                              size_t n)
{
    if (!p->glob)
        return p->n == n && (n == 0 || (p->p[0] == v[0] &&
                                        memcmp(p->p, v, n) == 0));
    if (n < p->head + p->tail || (p->head && p->p[0] != v[0]) ||
        (p->tail && p->p[p->n - 1] != v[n - 1]) ||
        memcmp(p->p, v, p->head) != 0 ||
        memcmp(p->p + p->n - p->tail, v + n - p->tail, p->tail) != 0)
        return false;
    size_t mid = p->n - p->head - p->tail; /* '*' ... '*' */
    return mid == 1 || mr__rules_glob(p->p + p->head, mid, v + p->head,
                                      n - p->head - p->tail);
}

static inline bool any_glob(const struct mr__cond *c, const char *v,
                            size_t n)
{
    for (size_t i = 0; i < c->npats; i++)
        if (glob_match(&c->pats[i], v, n))
            return true;
    return false;
}

/* A recipient without its +tag, or whole when it has one, against the
 * patterns. One call per condition with both loops inside: calling
 * any_glob per recipient cost more in calls than in comparing. (All the
 * address conditions of the benchmark, with the checks above and below:
 * 26,000 -> 7,600 instructions per message.) */
static bool mailbox_match(const struct mr_rules_scratch *s,
                          const struct mr__cond *c)
{
    for (size_t j = 0; j < c->npats; j++) {
        const struct mr__str *p = &c->pats[j];
        /* An exact pattern needs an address of its length, and a
         * pattern that starts with four literal bytes an address that
         * starts with them: two bit tests instead of a look at every
         * recipient. 9,300 -> 5,000 instructions per message for the
         * benchmark's 60 mailbox routes. */
        if (!p->glob && !(s->rcpt_lens & (1ull << (p->n & 63))))
            continue;
        if ((p->glob ? p->head : p->n) >= 4 &&
            !(s->rcpt_heads & (1ull << head_hash(p->p))))
            continue;
        for (size_t i = 0; i < s->nrcpt; i++) {
            const struct naddr *a = &s->rcpt[i];
            if (glob_match(p, addr_str(s, a->base_off), a->base_len) ||
                (a->tag_len && glob_match(p, addr_str(s, a->off), a->len)))
                return true;
        }
    }
    return false;
}

static void fold_field(struct mr_rules_scratch *s, enum mr__field f)
{
    if (s->have_folded[f])
        return;
    mr_buf_reset(&s->folded[f]);
    mr__rules_fold(s->field[f], s->field_len[f], &s->folded[f]);
    s->have_folded[f] = true;
}

/* Every needle of field f at once, in one pass over the folded field:
 * the 3-byte hash of each position against the needles' bitmap. */
static void scan_all(struct mr_rules_scratch *s, enum mr__field f)
{
    const struct mr__needles *nd = &s->rs->needles[f];
    uint64_t *found = s->found[f];
    const unsigned char *h = (const unsigned char *)s->folded[f].p;
    size_t n = s->folded[f].len;
    if (h == NULL)
        return;
    for (size_t i = 0; i < nd->nshort; i++) {
        const struct mr__str *x = &nd->items[nd->short_ids[i]];
        if (mr__rules_find((const char *)h, n, x->p, x->n) != NULL)
            found[nd->short_ids[i] / 64] |= 1ull << (nd->short_ids[i] % 64);
    }
    if (nd->nkeys == 0)
        return;
    for (size_t i = 0; i + 3 <= n; i++) {
        unsigned k = mr__needle_hash(h + i);
        if (!(nd->bitmap[k >> 3] & (1u << (k & 7))))
            continue;
        size_t lo = 0, hi = nd->nkeys;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (nd->keys[mid].key < k)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < nd->nkeys && nd->keys[lo].key == k; lo++) {
            unsigned id = nd->keys[lo].id;
            const struct mr__str *x = &nd->items[id];
            if (x->n <= n - i && memcmp(h + i, x->p, x->n) == 0)
                found[id / 64] |= 1ull << (id % 64);
        }
    }
}

/* The first question about field f's needles in this message: folds the
 * field, and picks how to answer. The hash scan costs about 17
 * instructions per byte whatever the number of needles; a search per
 * needle (mr__rules_find) about 40 plus half an instruction per byte, and
 * only for the needles some condition asks about. So a body of 3 KB with
 * a handful of needles is searched needle by needle, a subject against
 * dozens with the scan. (The benchmark's bodies, whose needles are six
 * `contains` words and the literals of its `invoice` regexes: the scan of
 * every body would take 57,000 instructions per message, the searches
 * take 9,000.) Both find exactly the needles that occur. */
static void start_needles(struct mr_rules_scratch *s, enum mr__field f)
{
    const struct mr__needles *nd = &s->rs->needles[f];
    s->scanned[f] = true;
    size_t words = (nd->n + 63) / 64;
    if (words) {
        memset(s->found[f], 0, words * sizeof(uint64_t));
        memset(s->known[f], 0, words * sizeof(uint64_t));
    }
    fold_field(s, f);
    size_t n = s->folded[f].len;
    s->one_by_one[f] = nd->n * (40 + n / 2) < 17 * n;
    if (!s->one_by_one[f])
        scan_all(s, f);
}

/* Whether needle id occurs in folded field f. */
static bool has_needle(struct mr_rules_scratch *s, enum mr__field f,
                       unsigned id)
{
    if (!s->scanned[f])
        start_needles(s, f);
    uint64_t bit = 1ull << (id % 64);
    if (s->one_by_one[f] && !(s->known[f][id / 64] & bit)) {
        const struct mr__str *x = &s->rs->needles[f].items[id];
        s->known[f][id / 64] |= bit;
        if (mr__rules_find(s->folded[f].p ? s->folded[f].p : "",
                           s->folded[f].len, x->p, x->n) != NULL)
            s->found[f][id / 64] |= bit;
    }
    return (s->found[f][id / 64] & bit) != 0;
}

/* Whether one of c's needles occurs in its field. */
static bool found_any(struct mr_rules_scratch *s, const struct mr__cond *c)
{
    for (size_t i = 0; i < c->nids; i++)
        if (has_needle(s, c->field, c->ids[i]))
            return true;
    return false;
}

/* Runs a regex; a limit hit is a non-match with a note in the trail. */
static bool run_regex(struct mr_rules_scratch *s, const struct mr__regex *re,
                      const char *subj, size_t n)
{
    if (s->limit != s->set->match_limit) {
        s->limit = s->set->match_limit;
        pcre2_set_match_limit(s->mctx, s->limit);
    }
    int rc = pcre2_match(re->code, (PCRE2_SPTR)subj, n, 0, 0, s->md, s->mctx);
    if (rc >= 0)
        return true;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT ||
        rc == PCRE2_ERROR_NOMEMORY)
        decide(s->r, s->rule->name, re->label, 0);
    return false;
}

static void capture(struct mr_rules_scratch *s, int e, const char *subj,
                    size_t off, size_t len)
{
    if (len == SIZE_MAX)
        return;
    if (len > 998)
        len = 998; /* a field value, not a document */
    struct ext *x = &s->pending[e];
    x->off = s->ext_buf.len;
    x->len = len;
    x->set = true;
    mr_buf_append(&s->ext_buf, subj + off, len);
    mr_buf_putc(&s->ext_buf, '\0');
}

/* A text field's regex, run at most once per message and field. */
static bool field_regex(struct mr_rules_scratch *s, const struct mr__cond *c,
                        const char *subj)
{
    size_t k = c->re.id * MR__F_COUNT + c->field;
    if (s->re_state[k] == 0 && c->re.nlits && !s->rs->no_prefilter) {
        /* Without one of its literals the field cannot match
         * (rules_prefilter.c). */
        bool may;
        if (c->nids) {
            /* Needles of the field (rules_load.c, register_literals). */
            may = found_any(s, c);
        } else {
            const char *hay = subj;
            size_t n = s->field_len[c->field];
            if (c->re.lit_fold) {
                fold_field(s, c->field);
                hay = s->folded[c->field].p ? s->folded[c->field].p : "";
                n = s->folded[c->field].len;
            }
            size_t i = 0;
            while (i < c->re.nlits &&
                   mr__rules_find(hay, n, c->re.lits[i].p,
                                  c->re.lits[i].n) == NULL)
                i++;
            may = i < c->re.nlits;
        }
        if (!may)
            s->re_state[k] = 2;
    }
    if (s->re_state[k] == 0) {
        bool hit = run_regex(s, &c->re, subj, s->field_len[c->field]);
        s->re_state[k] = hit ? 1 : 2;
        s->re_cap_len[k] = SIZE_MAX;
        if (hit) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
            if (pcre2_get_ovector_count(s->md) > 1 && ov[2] != PCRE2_UNSET &&
                ov[3] >= ov[2]) {
                s->re_cap_off[k] = ov[2];
                s->re_cap_len[k] = ov[3] - ov[2];
            }
        }
    }
    if (s->re_state[k] != 1)
        return false;
    if (c->extract >= 0)
        capture(s, c->extract, subj, s->re_cap_off[k], s->re_cap_len[k]);
    return true;
}

static void load_auth(struct mr_rules_scratch *s)
{
    s->auth_done = true;
    for (int i = 0; i < MR__AUTH_N; i++)
        s->auth[i] = MR__AR_NONE;
    const char *id = s->set->trusted_authserv_id;
    if (id == NULL)
        return;
    /* The topmost field that our own MX wrote: anything below it (or
     * naming another authserv-id) came from whoever sent the message. */
    for (size_t i = 0; i < s->nhv; i++)
        if (s->hv[i].hidx == s->rs->auth_hidx && s->hv[i].value &&
            mr__rules_auth_parse(s->hv[i].value, id, s->auth))
            return;
}

static void load_time(struct mr_rules_scratch *s)
{
    s->time_done = true;
    int64_t ms = s->m->received_at;
    int64_t t = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t local = t + mr_tz_offset(s->set->tz, t);
    int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
    int64_t sec = local - days * 86400;
    s->wday = (int)(((days + 4) % 7 + 7) % 7);
    s->minute = (int)(sec / 60);
}

static bool in_hours(int minute, int from, int to)
{
    return from < to ? (minute >= from && minute < to)
                     : (minute >= from || minute < to);
}

static bool header_value_eq(const struct mr__cond *c, const char *v)
{
    mr_span t = mr_span_trim(mr_span_cstr(v));
    for (size_t i = 0; i < c->npats; i++)
        if (t.n == c->pats[i].n && strncasecmp(t.p, c->pats[i].p, t.n) == 0)
            return true;
    return false;
}

static bool eval(struct mr_rules_scratch *s, const struct mr__cond *c);

/* The prefilter for a header value: one of the literals, exact, or
 * ASCII case-insensitive for an all-ASCII value (a value with other
 * bytes goes to PCRE2, whose caseless matching knows more than ASCII). */
static bool header_may_match(const struct mr_rules_scratch *s,
                             const struct mr__regex *re, const char *v)
{
    if (re->nlits == 0 || s->rs->no_prefilter)
        return true;
    if (re->lit_fold)
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
            if (*p >= 0x80)
                return true;
    for (size_t i = 0; i < re->nlits; i++)
        if ((re->lit_fold ? strcasestr(v, re->lits[i].p)
                          : strstr(v, re->lits[i].p)) != NULL)
            return true;
    return false;
}

#define MR_OUT_OF_LINE __attribute__((noinline)) /* see eval */

MR_OUT_OF_LINE static bool eval_header(struct mr_rules_scratch *s,
                                       const struct mr__cond *c)
{
    bool present = false;
    for (size_t i = 0; i < s->nhv; i++) {
        if (s->hv[i].hidx != c->hidx)
            continue;
        present = true;
        const char *v = s->hv[i].value ? s->hv[i].value : "";
        if (c->header_op == 2 && header_value_eq(c, v))
            return true;
        if (c->header_op == 3 && header_may_match(s, &c->re, v) &&
            run_regex(s, &c->re, v, strnlen(v, MR_RULES_SCAN_BYTES)))
            return true;
        if (c->header_op == 0)
            return true;
    }
    return c->header_op == 1 && !present;
}

MR_OUT_OF_LINE static bool eval_attachment(struct mr_rules_scratch *s,
                                           const struct mr__cond *c)
{
    const struct mr_rules_msg *m = s->m;
    bool constrained = c->att_type || c->att_name || c->min > 0 ||
                       c->max != INT64_MAX;
    if (!constrained)
        return (m->nattachments > 0) == c->want;
    for (size_t i = 0; i < m->nattachments; i++) {
        const struct mr_rules_attachment *a = &m->attachments[i];
        if ((int64_t)a->size < c->min || (a->size > (uint64_t)c->max))
            continue;
        if (c->att_type) {
            const char *t = a->content_type ? a->content_type : "";
            char low[128];
            size_t n = strnlen(t, sizeof low - 1);
            for (size_t j = 0; j < n; j++)
                low[j] = (char)mr_lower((unsigned char)t[j]);
            if (!mr__rules_glob(c->att_type, strlen(c->att_type), low, n))
                continue;
        }
        if (c->att_name) {
            const char *fn = a->filename ? a->filename : "";
            char low[256];
            size_t n = strnlen(fn, sizeof low - 1);
            for (size_t j = 0; j < n; j++)
                low[j] = (char)mr_lower((unsigned char)fn[j]);
            if (!mr__rules_glob(c->att_name, strlen(c->att_name), low, n))
                continue;
        }
        return true;
    }
    return false;
}

/* `all`, `any`, `not` and every matcher that loops or calls out are
 * functions of their own (kept out of line) and eval is a dispatch of
 * tail calls and one-line tests: that way it needs no stack frame, which
 * matters because it runs for every rule of every message. Was one
 * function with all the cases inline: about 29 instructions per call in
 * saving and restoring registers, now 9 (the benchmark's 200 rules:
 * 5,800 -> 1,800 instructions per message). */

MR_OUT_OF_LINE static bool eval_all(struct mr_rules_scratch *s,
                                    const struct mr__cond *c)
{
    for (size_t i = 0; i < c->nkids; i++)
        if (!eval(s, c->kids[i]))
            return false;
    return true;
}

MR_OUT_OF_LINE static bool eval_any(struct mr_rules_scratch *s,
                                    const struct mr__cond *c)
{
    for (size_t i = 0; i < c->nkids; i++)
        if (eval(s, c->kids[i]))
            return true;
    return false;
}

MR_OUT_OF_LINE static bool eval_not(struct mr_rules_scratch *s,
                                    const struct mr__cond *c)
{
    return !eval(s, c->kids[0]);
}

MR_OUT_OF_LINE static bool eval_mailbox(struct mr_rules_scratch *s,
                                        const struct mr__cond *c)
{
    return mailbox_match(s, c);
}

MR_OUT_OF_LINE static bool eval_mailbox_tag(struct mr_rules_scratch *s,
                                            const struct mr__cond *c)
{
    for (size_t i = 0; i < s->nrcpt; i++) {
        const struct naddr *a = &s->rcpt[i];
        if (a->tag_len && any_glob(c, addr_str(s, a->tag_off), a->tag_len))
            return true;
    }
    return false;
}

MR_OUT_OF_LINE static bool eval_rcpt(struct mr_rules_scratch *s,
                                     const struct mr__cond *c)
{
    for (size_t i = 0; i < s->nrcpt; i++) {
        const struct naddr *a = &s->rcpt[i];
        if (a->envelope && any_glob(c, addr_str(s, a->off), a->len))
            return true;
    }
    return false;
}

MR_OUT_OF_LINE static bool eval_from(struct mr_rules_scratch *s,
                                     const struct mr__cond *c)
{
    return s->have_from &&
           any_glob(c, addr_str(s, s->from_off), s->from_len);
}

MR_OUT_OF_LINE static bool eval_from_domain(struct mr_rules_scratch *s,
                                            const struct mr__cond *c)
{
    return s->have_from && s->dom_len &&
           any_glob(c, addr_str(s, s->dom_off), s->dom_len);
}

MR_OUT_OF_LINE static bool eval_contains(struct mr_rules_scratch *s,
                                         const struct mr__cond *c)
{
    return s->field[c->field] != NULL && found_any(s, c);
}

MR_OUT_OF_LINE static bool eval_regex(struct mr_rules_scratch *s,
                                      const struct mr__cond *c)
{
    const char *subj = s->field[c->field];
    return subj != NULL && field_regex(s, c, subj);
}

MR_OUT_OF_LINE static bool eval_auth(struct mr_rules_scratch *s,
                                     const struct mr__cond *c)
{
    if (!s->auth_done)
        load_auth(s);
    for (int i = 0; i < MR__AUTH_N; i++)
        if (c->auth[i] && !(c->auth[i] & (1u << s->auth[i])))
            return false;
    return true;
}

MR_OUT_OF_LINE static bool eval_time(struct mr_rules_scratch *s,
                                     const struct mr__cond *c)
{
    if (!s->time_done)
        load_time(s);
    switch (c->kind) {
    case MR__C_WEEKDAY: return (c->mask & (1u << s->wday)) != 0;
    case MR__C_TIME: return in_hours(s->minute, c->from_min, c->to_min);
    default:
        return ((s->set->bh_days & (1u << s->wday)) != 0 &&
                in_hours(s->minute, s->set->bh_from, s->set->bh_to)) ==
               c->want;
    }
}

static bool eval(struct mr_rules_scratch *s, const struct mr__cond *c)
{
    const struct mr_rules_msg *m = s->m;
    switch (c->kind) {
    case MR__C_ALL: return eval_all(s, c);
    case MR__C_ANY: return eval_any(s, c);
    case MR__C_NOT: return eval_not(s, c);
    case MR__C_MAILBOX: return eval_mailbox(s, c);
    case MR__C_MAILBOX_TAG: return eval_mailbox_tag(s, c);
    case MR__C_RCPT: return eval_rcpt(s, c);
    case MR__C_FROM: return eval_from(s, c);
    case MR__C_FROM_DOMAIN: return eval_from_domain(s, c);
    case MR__C_PREV_TICKETS:
        return m->previous_tickets >= c->min && m->previous_tickets <= c->max;
    case MR__C_CONTAINS: return eval_contains(s, c);
    case MR__C_REGEX: return eval_regex(s, c);
    case MR__C_HEADER: return eval_header(s, c);
    case MR__C_AUTH: return eval_auth(s, c);
    case MR__C_AUTO: return (c->mask & (1u << m->auto_kind)) != 0;
    case MR__C_ATTACHMENT: return eval_attachment(s, c);
    case MR__C_SIZE:
        return (int64_t)m->size >= c->min &&
               (m->size <= (uint64_t)c->max);
    case MR__C_NEW: return m->is_new == c->want;
    case MR__C_WEEKDAY:
    case MR__C_TIME:
    case MR__C_BUSINESS_HOURS: return eval_time(s, c);
    }
    return false;
}

/* ---- actions -------------------------------------------------------- */

/* "field.NAME=VALUE" into strings; returns its offset + 1 and the
 * value's offset + 1 in *val. */
static size_t dyn_field(struct mr_rules_result *r, const char *name,
                        const struct mr_rules_scratch *s, const struct ext *x,
                        size_t *val)
{
    struct mr_buf *b = &r->store->strings;
    size_t off = b->len;
    mr_buf_printf(b, "field.%s=", name);
    *val = b->len + 1;
    mr_buf_append(b, s->ext_buf.p + x->off, x->len);
    mr_buf_putc(b, '\0');
    return off + 1;
}

static const char *ack_blocker(const struct mr_rules_scratch *s)
{
    const struct mr_rules_msg *m = s->m;
    /* RFC 3834 2: never answer automatic mail or a null return path. */
    switch (m->auto_kind) {
    case MR_AUTO_AUTOREPLY: return "auto_ack_suppressed=autoreply";
    case MR_AUTO_BOUNCE: return "auto_ack_suppressed=bounce";
    case MR_AUTO_LIST: return "auto_ack_suppressed=list";
    default: break;
    }
    if (m->mail_from && m->mail_from[0] == '\0')
        return "auto_ack_suppressed=null_sender";
    if (!s->have_from)
        return "auto_ack_suppressed=no_sender";
    if (!m->is_new)
        return "auto_ack_suppressed=reply";
    if (m->last_ack_at > 0 &&
        m->received_at - m->last_ack_at < s->set->ack_window_ms)
        return "auto_ack_suppressed=window";
    if (s->r->ack_template)
        return "auto_ack_suppressed=already";
    return NULL;
}

static void run_actions(struct mr_rules_scratch *s, const struct mr__rule *rule)
{
    struct mr_rules_result *r = s->r;
    struct mr__rules_store *st = r->store;
    /* The rule's captures first: they are what it decided about. */
    for (size_t i = 0; i < rule->nextracts; i++) {
        int e = rule->extracts[i];
        if (!s->pending[e].set)
            continue;
        s->ext[e] = s->pending[e];
        s->pending[e].set = false;
        size_t val;
        size_t d = dyn_field(r, s->rs->extract_names[e], s, &s->ext[e], &val);
        decide(r, rule->name, NULL, d);
        set_field(r, s->rs->extract_names[e], NULL, val);
    }
    for (size_t i = 0; i < rule->nactions; i++) {
        const struct mr__action *a = &rule->actions[i];
        switch (a->kind) {
        case MR__A_QUEUE: r->queue = a->value; break;
        case MR__A_PRIORITY: r->priority = a->value; break;
        case MR__A_ASSIGNEE: r->assignee = a->value; break;
        case MR__A_TAG_ADD:
            drop(r->tags_remove, &r->ntags_remove, a->value);
            if (!in_list(r->tags_add, r->ntags_add, a->value)) {
                GROW(r->tags_add, r->ntags_add, st->tags_add_alloc);
                r->tags_add[r->ntags_add++] = a->value;
            }
            break;
        case MR__A_TAG_REMOVE:
            drop(r->tags_add, &r->ntags_add, a->value);
            if (!in_list(r->tags_remove, r->ntags_remove, a->value)) {
                GROW(r->tags_remove, r->ntags_remove, st->tags_remove_alloc);
                r->tags_remove[r->ntags_remove++] = a->value;
            }
            break;
        case MR__A_FIELD: set_field(r, a->name, a->value, 0); break;
        case MR__A_FIELD_EXT: {
            const struct ext *x = &s->ext[a->extract];
            if (!x->set) {
                decide(r, rule->name, "note=set_field skipped: its extractor "
                                      "matched nothing",
                       0);
                continue;
            }
            size_t val;
            size_t d = dyn_field(r, a->name, s, x, &val);
            decide(r, rule->name, NULL, d);
            set_field(r, a->name, NULL, val);
            continue;
        }
        case MR__A_IGNORE: r->ignore = true; break;
        case MR__A_ACK: {
            const char *why = ack_blocker(s);
            if (why) {
                decide(r, rule->name, why, 0);
                continue;
            }
            r->ack_template = a->value;
            r->ack_text = a->text;
            r->ack_subject = a->subject;
            r->ack_window_ms = s->set->ack_window_ms;
            break;
        }
        case MR__A_NOTIFY:
            if (!in_list(r->notify, r->nnotify, a->value)) {
                GROW(r->notify, r->nnotify, st->notify_alloc);
                r->notify[r->nnotify++] = a->value;
            }
            break;
        }
        decide(r, rule->name, a->decision, 0);
    }
}

int mr_rules_eval(const struct mr_rules *rs, const char *tenant,
                  const struct mr_rules_msg *m, struct mr_rules_scratch *s,
                  struct mr_rules_result *r, struct mr_error *err)
{
    reset_result(r);
    if (tenant == NULL)
        tenant = m->tenant;
    if (m->nrecipients && m->recipients == NULL)
        return mr_error_set(err, MR_EINVAL, "recipients missing");
    if ((m->nrcpt_to && m->rcpt_to == NULL) ||
        (m->nheaders && m->headers == NULL) ||
        (m->nattachments && m->attachments == NULL))
        return mr_error_set(err, MR_EINVAL, "message arrays missing");
    const struct mr__tenant *t = NULL;
    for (size_t i = 0; tenant && i < rs->ntenants; i++)
        if (strcmp(rs->tenants[i].name, tenant) == 0)
            t = &rs->tenants[i];
    if (t == NULL)
        return 0;
    r->tenant = t->name;
    s->rs = rs;
    s->m = m;
    s->set = &t->set;
    s->r = r;
    prepare(s, m);
    for (size_t i = 0; i < t->nrules; i++) {
        const struct mr__rule *rule = &t->rules[i];
        s->rule = rule;
        for (size_t j = 0; j < rule->nextracts; j++)
            s->pending[rule->extracts[j]].set = false;
        if (rule->cond && !eval(s, rule->cond))
            continue;
        GROW(r->matched, r->nmatched, r->store->matched_alloc);
        r->matched[r->nmatched++] = rule->name;
        run_actions(s, rule);
        if (rule->stop) {
            decide(r, rule->name, "stop", 0);
            break;
        }
    }
    if (r->ignore && r->ack_template) {
        /* An ignored message makes no ticket, so nothing to acknowledge. */
        r->ack_template = r->ack_text = r->ack_subject = NULL;
        decide(r, "(ignore)", "auto_ack_suppressed=ignored", 0);
    }
    /* The strings are all written: now pointers into them hold. */
    const char *base = r->store->strings.p;
    for (size_t i = 0; i < r->ndecisions; i++)
        if (r->store->dyn_off[i])
            r->decisions[i].decision = base + r->store->dyn_off[i] - 1;
    for (size_t i = 0; i < r->nfields; i++)
        if (r->store->field_off[i])
            r->fields[i].value = base + r->store->field_off[i] - 1;
    s->m = NULL;
    s->r = NULL;
    return 0;
}
