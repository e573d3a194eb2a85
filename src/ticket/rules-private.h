/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules-private.h - the compiled form of a rules file, shared by
 * rules_load.c (which builds it), rules_eval.c (which reads it) and
 * rules_fold.c (Unicode case folding).
 *
 * A rule set lives in one arena (strings, conditions, actions) plus the
 * PCRE2 codes and time zones it lists for freeing. Conditions form a tree
 * whose leaves are the matchers of docs/rules.md; everything a leaf
 * compares with is prepared at load time: patterns lower-cased, needles
 * case-folded, regexes compiled, sizes and times in plain integers.
 */
#ifndef MR_RULES_PRIVATE_H
#define MR_RULES_PRIVATE_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "rules.h"
#include "util/buf.h"
#include "util/tz.h"

enum mr__field { MR__F_SUBJECT, MR__F_TEXT, MR__F_STRIPPED, MR__F_COUNT };

enum mr__cond_kind {
    MR__C_ALL,
    MR__C_ANY,
    MR__C_NOT,
    MR__C_MAILBOX,     /* recipients and rcpt_to, +tag removed; globs */
    MR__C_MAILBOX_TAG, /* the +tag of a recipient; globs */
    MR__C_RCPT,        /* envelope recipients, whole address; globs */
    MR__C_FROM,        /* from address; globs */
    MR__C_FROM_DOMAIN, /* from domain; globs */
    MR__C_PREV_TICKETS,
    MR__C_CONTAINS, /* folded needle in folded field */
    MR__C_REGEX,    /* also extractors (extract >= 0) */
    MR__C_HEADER,
    MR__C_AUTH,
    MR__C_AUTO,
    MR__C_ATTACHMENT,
    MR__C_SIZE,
    MR__C_NEW,
    MR__C_WEEKDAY,
    MR__C_TIME,
    MR__C_BUSINESS_HOURS,
};

enum { MR__AUTH_SPF, MR__AUTH_DKIM, MR__AUTH_DMARC, MR__AUTH_N };

/* Authentication results, as bits of a mask. */
enum mr__auth_result {
    MR__AR_NONE,
    MR__AR_PASS,
    MR__AR_FAIL,
    MR__AR_SOFTFAIL,
    MR__AR_NEUTRAL,
    MR__AR_TEMPERROR,
    MR__AR_PERMERROR,
    MR__AR_POLICY,
    MR__AR_COUNT,
};

struct mr__str {
    const char *p;
    size_t n;
    bool glob; /* has a '*' (address patterns) */
    /* A glob's bytes before its first '*' and after its last. */
    size_t head, tail;
};

/* Every distinct `contains` needle of one field, so that a message's
 * field is scanned once for all of them: needles of 3 bytes or more are
 * found through a 16-bit hash of their first 3 bytes (a bitmap for the
 * quick "no", then the sorted keys); shorter ones with memmem. */
struct mr__needle_key {
    uint16_t key;
    uint16_t id;
};

struct mr__needles {
    struct mr__str *items;
    size_t n, alloc;
    uint8_t bitmap[8192];
    struct mr__needle_key *keys;
    size_t nkeys;
    uint16_t *short_ids;
    size_t nshort;
};

#define MR__MAX_NEEDLES 65535 /* per field */

static inline unsigned mr__needle_hash(const unsigned char *p)
{
    return ((unsigned)p[0] * 0x9E3u ^ (unsigned)p[1] * 0x61u ^ p[2]) & 0xFFFFu;
}

#define MR__LITS_MAX 8   /* literals per pattern */
#define MR__LIT_BYTES 32 /* longer ones are cut: a prefix is as certain */

struct mr__regex {
    pcre2_code *code;
    size_t id; /* index in mr_rules.codes: one per distinct pattern */
    /* Literals one of which starts every match (rules_prefilter.c),
     * lower-case ASCII when lit_fold (then compared with the folded
     * field); nlits 0: none known. A field with none of them cannot
     * match, and PCRE2 is not called. */
    const struct mr__str *lits;
    size_t nlits;
    bool lit_fold;
    const char *label; /* "subject regex at 12:9", for notes */
};

struct mr__cond {
    enum mr__cond_kind kind;
    int line, col;
    /* ALL / ANY / NOT */
    struct mr__cond **kids;
    size_t nkids;
    /* address globs, tags, header values (any of them) */
    struct mr__str *pats;
    size_t npats;
    /* CONTAINS: needle ids in the field's mr__needles (any of them);
     * REGEX: its re.lits there, when they are compared folded */
    uint16_t *ids;
    size_t nids;
    enum mr__field field;
    struct mr__regex re;
    int extract; /* extractor index for an extracting regex, else -1 */
    /* header */
    const char *header; /* lower-case name */
    int hidx;           /* in mr_rules.hnames */
    int header_op;      /* 0 present, 1 absent, 2 equals, 3 matches */
    /* ranges: previous tickets, sizes */
    int64_t min, max;
    /* attachment: present (no constraints) or constraints */
    bool want; /* NEW, BUSINESS_HOURS, attachment present/absent */
    const char *att_type, *att_name; /* lower-case globs or NULL */
    /* AUTH: per method, a mask of acceptable results (0: any) */
    unsigned auth[MR__AUTH_N];
    unsigned mask; /* AUTO kinds, WEEKDAY days (bit 0 = Sunday) */
    int from_min, to_min; /* TIME: [from, to) minutes, wraps when from>to */
};

enum mr__action_kind {
    MR__A_QUEUE,
    MR__A_PRIORITY,
    MR__A_ASSIGNEE,
    MR__A_TAG_ADD,
    MR__A_TAG_REMOVE,
    MR__A_FIELD,     /* literal value */
    MR__A_FIELD_EXT, /* from an extractor */
    MR__A_IGNORE,
    MR__A_ACK,
    MR__A_NOTIFY,
};

struct mr__action {
    enum mr__action_kind kind;
    const char *value;    /* queue, priority, ..., field value, template */
    const char *name;     /* field name */
    const char *text;     /* ack text (the action's, else its template's) */
    const char *subject;  /* ack subject template; NULL: "Re: <subject>" */
    int extract;          /* FIELD_EXT */
    const char *decision; /* precomputed, when static */
};

struct mr__rule {
    const char *name;
    struct mr__cond *cond; /* NULL: always */
    struct mr__action *actions;
    size_t nactions;
    bool stop;
    /* Extractors the rule's conditions define: their values become
     * fields named after them when the rule's actions run. */
    int *extracts;
    size_t nextracts;
};

struct mr__settings {
    const char *trusted_authserv_id; /* NULL: auth conditions refused */
    const struct mr_tz *tz;          /* never NULL (UTC by default) */
    const char *tz_name;
    unsigned bh_days;      /* business hours weekdays */
    int bh_from, bh_to;    /* minutes */
    bool has_bh;
    int64_t ack_window_ms;
    uint32_t match_limit;
    /* Acknowledgement templates (docs/outbound.md): the file's, then the
     * tenant's; looked up from the end, so a tenant's own wins. */
    const struct mr__template *templates;
    size_t ntemplates;
};

struct mr__template {
    const char *name;
    const char *subject; /* NULL: "Re: <subject>" */
    const char *text;    /* NULL: only with the action's text */
};

struct mr__tenant {
    const char *name;
    struct mr__settings set;
    struct mr__rule *rules;
    size_t nrules;
};

struct mr_rules {
    struct mr_arena *arena;
    struct mr__tenant *tenants;
    size_t ntenants;
    const char **extract_names; /* extractor index -> name */
    size_t nextract;
    pcre2_code **codes; /* one per distinct pattern, owned */
    const char **patterns;
    size_t ncodes;
    struct mr_tz **zones; /* for freeing */
    size_t nzones;
    bool jit;
    struct mr__needles needles[MR__F_COUNT];
    /* Header names conditions ask about, so a message's header list is
     * walked once; authentication-results is one when auth is used. */
    const char **hnames;
    size_t nhnames;
    int auth_hidx; /* -1: no auth condition */
    /* Some condition reads previous_tickets: only then does the worker
     * count the sender's tickets (a store read per message). */
    bool uses_previous_tickets;
    /* Some rule auto-acknowledges: only then does the worker read the
     * sender's last acknowledgement. */
    bool uses_auto_ack;
    /* Tests only: run PCRE2 even where the prefilter says it cannot
     * match, to prove that it never changes a result. */
    bool no_prefilter;
};

/* Storage of an mr_rules_result. */
struct mr__rules_store {
    struct mr_buf strings; /* dynamic decision strings and values */
    size_t decisions_alloc, matched_alloc, tags_add_alloc, tags_remove_alloc,
        fields_alloc, notify_alloc;
    /* decisions whose string lives in `strings`: offsets to fix up */
    size_t *dyn_off;  /* per decision: offset + 1, 0 when static */
    size_t dyn_alloc;
    size_t *field_off; /* per field: value offset + 1, 0 when static */
    size_t field_off_alloc;
};

/* Full Unicode case folding of s[0..n) appended to out (invalid UTF-8
 * bytes are copied as they are). */
void mr__rules_fold(const char *s, size_t n, struct mr_buf *out);

/* Parses one Authentication-Results value; when its authserv-id is id
 * (ASCII case-insensitive), fills res[MR__AUTH_N] and returns true. */
bool mr__rules_auth_parse(const char *v, const char *id,
                          enum mr__auth_result res[MR__AUTH_N]);
/* "pass" -> MR__AR_PASS, ...; -1 when unknown. */
int mr__rules_auth_result(const char *s, size_t n);

/* The literals one of which starts every match of the regular
 * expression p[0..n) (compiled with PCRE2_UTF, no extended syntax):
 * writes up to MR__LITS_MAX of them to out, their bytes in store
 * (MR__LITS_MAX * MR__LIT_BYTES), and whether they are to be compared
 * with the case-folded field to *fold. Returns how many; 0 when none is
 * known (then any field may match). */
size_t mr__rules_required_literals(const char *p, size_t n, bool *fold,
                                   struct mr__str *out, char *store);

/* memmem, faster (rules_fold.c says how much). */
const char *mr__rules_find(const char *h, size_t n, const char *x, size_t m);

/* Glob match, '*' any run of bytes; both sides already lower-case. */
bool mr__rules_glob(const char *pat, size_t np, const char *s, size_t ns);

#endif
