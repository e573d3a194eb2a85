/* SPDX-License-Identifier: Apache-2.0 */
/*
 * route.c - which tenant and inbox a recipient address belongs to.
 *
 * Matching is case-insensitive on the whole address: RFC 5321 leaves the
 * local part's case to the receiving host, and helpdesk users expect
 * Support@ and support@ to be the same inbox. A recipient is split at its
 * first '+' into base and tag; the tag (1 to 64 bytes of [a-z0-9._-]
 * after lower-casing) is what plus-addressing carries. Ranks, best first:
 *
 *   0  exact inbox, whole local part        support@x         <- support@x
 *   1  pattern, base equals the prefix      help+{team}@x     <- help+sales@x
 *      (a bare base, help@x, matches too, with an empty tag)
 *   2  exact inbox, base equals it          support@x         <- support+x1@x
 *   3  catch-all for the domain             *@x               <- anyone@x
 *   4  the tenant that accepts everything
 *
 * The loader refuses two inboxes with the same key (address, pattern or
 * domain) and more than one accept-all tenant, so each rank has at most one
 * candidate and the answer never depends on the file's order. A tag that
 * is not valid (too long, odd bytes) makes ranks 1 and 2 miss; ranks 3 and
 * 4 still match, with an empty tag.
 *
 * The scan is linear in the number of inboxes: a few thousand cost
 * microseconds per RCPT, far below an SMTP round trip.
 */
#include <stdio.h>
#include <string.h>

#include "config-private.h"
#include "util/buf.h"
#include "util/span.h"

#define ADDR_MAX 254 /* RFC 5321 4.5.3.1.3: a path is at most 256 */
#define LOCAL_MAX 64 /* RFC 5321 4.5.3.1.1 */
#define TAG_MAX 64
#define TAG_NAME_MAX 32

static bool is_atext(unsigned char c)
{
    /* RFC 5322 3.2.3 atext, plus '.', plus UTF-8 (RFC 6531). '{', '}' and
     * '*' are kept for our patterns. */
    if (c >= 0x80)
        return true;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return true;
    return strchr("!#$%&'+-/=?^_`|~.", c) != NULL && c != '\0';
}

static bool is_tag_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static bool valid_domain(const char *d, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c >= 0x80 || (c == '-' && label > 0);
        if (!ok || ++label > 63)
            return false;
    }
    return label > 0 && d[n - 1] != '-';
}

static bool valid_local(const char *l, size_t n, const char **why)
{
    if (n == 0) {
        *why = "the part before '@' is empty";
        return false;
    }
    if (n > LOCAL_MAX) {
        *why = "the part before '@' is longer than 64 bytes";
        return false;
    }
    if (l[0] == '.' || l[n - 1] == '.' || memmem(l, n, "..", 2) != NULL) {
        *why = "dots must separate words in the part before '@'";
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_atext((unsigned char)l[i])) {
            *why = "the part before '@' has a character an address may not "
                   "hold (quoted local parts are not supported)";
            return false;
        }
    }
    return true;
}

int mr__config_inbox_parse(const char *s, size_t len, struct mr_inbox *ib,
                           struct mr_error *err)
{
    if (len == 0)
        return mr_error_set(err, MR_EINVAL, "empty address");
    if (len > ADDR_MAX)
        return mr_error_set(err, MR_EINVAL, "address longer than %d bytes",
                            ADDR_MAX);
    char a[ADDR_MAX + 1];
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f)
            return mr_error_set(err, MR_EINVAL,
                                "address holds a space or control character");
        a[i] = (char)mr_lower(c);
    }
    a[len] = '\0';
    /* Messages name the address, cut short: the diagnostic has its place
     * in the file already. */
    char shown[48];
    if (len < sizeof(shown))
        memcpy(shown, a, len + 1);
    else
        snprintf(shown, sizeof(shown), "%.*s...", (int)sizeof(shown) - 4, a);
    const char *at = memchr(a, '@', len);
    if (at == NULL)
        return mr_error_set(err, MR_EINVAL, "'%s' has no '@'", shown);
    if (memchr(at + 1, '@', len - (size_t)(at + 1 - a)) != NULL)
        return mr_error_set(err, MR_EINVAL, "'%s' has more than one '@'",
                            shown);
    size_t nlocal = (size_t)(at - a);
    const char *dom = at + 1;
    size_t ndom = len - nlocal - 1;
    if (!valid_domain(dom, ndom))
        return mr_error_set(err, MR_EINVAL,
                            "'%s': the domain is not a valid host name", shown);

    const char *why = NULL;
    const char *brace = memchr(a, '{', nlocal);
    if (nlocal == 1 && a[0] == '*') {
        ib->kind = MR_INBOX_CATCHALL;
    } else if (memchr(a, '*', nlocal) != NULL) {
        return mr_error_set(err, MR_EINVAL,
                            "'%s': '*' may only stand alone before '@' (a "
                            "catch-all such as *@%.40s)",
                            shown, dom);
    } else if (brace != NULL || memchr(a, '}', nlocal) != NULL) {
        /* The only pattern: PREFIX+{name}, the braces closing the local
         * part, so the tag is everything after the first '+'. */
        size_t open = brace ? (size_t)(brace - a) : 0;
        size_t nname = nlocal - open - 2;
        if (brace == NULL || open < 2 || a[open - 1] != '+' ||
            a[nlocal - 1] != '}' || nlocal - open < 3)
            return mr_error_set(err, MR_EINVAL,
                                "'%s': a pattern is written "
                                "prefix+{name}@domain, as in help+{team}@%.40s",
                                shown, dom);
        if (nname > TAG_NAME_MAX)
            return mr_error_set(err, MR_EINVAL,
                                "'%s': the name in braces is longer than %d",
                                shown, TAG_NAME_MAX);
        for (size_t i = open + 1; i < nlocal - 1; i++) {
            unsigned char c = (unsigned char)a[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                return mr_error_set(err, MR_EINVAL,
                                    "'%s': the name in braces may hold only "
                                    "letters, digits and '_'",
                                    shown);
        }
        size_t nprefix = open - 1;
        if (memchr(a, '+', nprefix) != NULL)
            return mr_error_set(err, MR_EINVAL,
                                "'%s': the prefix before '+{' may not hold '+' "
                                "(the tag starts at the first '+')",
                                shown);
        if (!valid_local(a, nprefix, &why))
            return mr_error_set(err, MR_EINVAL, "'%s': %s", shown, why);
        ib->kind = MR_INBOX_PATTERN;
        ib->local = mr_xstrndup(a, nprefix);
        ib->tag_name = mr_xstrndup(a + open + 1, nname);
    } else {
        if (!valid_local(a, nlocal, &why))
            return mr_error_set(err, MR_EINVAL, "'%s': %s", shown, why);
        ib->kind = MR_INBOX_EXACT;
        ib->local = mr_xstrndup(a, nlocal);
    }
    ib->address = mr_xstrndup(a, len);
    ib->domain = mr_xstrndup(dom, ndom);
    return 0;
}

/* A recipient, lower-cased and split. */
struct rcpt {
    char buf[ADDR_MAX + 1];
    mr_span local, domain, base, tag;
    bool has_plus, tag_ok;
};

static int split_rcpt(const char *addr, struct rcpt *r, struct mr_error *err)
{
    if (addr == NULL)
        return mr_error_set(err, MR_EINVAL, "no address");
    size_t len = strnlen(addr, ADDR_MAX + 1);
    if (len > ADDR_MAX)
        return mr_error_set(err, MR_EINVAL, "address longer than %d bytes",
                            ADDR_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c < 0x20 || c == 0x7f)
            return mr_error_set(err, MR_EINVAL,
                                "address holds a control character");
        r->buf[i] = (char)mr_lower(c);
    }
    r->buf[len] = '\0';
    /* The last '@': a quoted local part ("a@b"@x) may hold one. */
    const char *at = memrchr(r->buf, '@', len);
    if (at == NULL)
        return mr_error_set(err, MR_EINVAL, "'%s' is not an address (no '@')",
                            r->buf);
    size_t nlocal = (size_t)(at - r->buf);
    if (nlocal == 0 || nlocal + 1 == len)
        return mr_error_set(err, MR_EINVAL, "'%s' is not an address (empty %s)",
                            r->buf, nlocal == 0 ? "local part" : "domain");
    r->local = mr_span_make(r->buf, nlocal);
    r->domain = mr_span_make(at + 1, len - nlocal - 1);
    size_t plus = mr_span_find(r->local, 0, '+');
    r->has_plus = plus < nlocal;
    r->base = mr_span_make(r->buf, plus);
    r->tag = r->has_plus ? mr_span_make(r->buf + plus + 1, nlocal - plus - 1)
                         : MR_SPAN_NULL;
    r->tag_ok = r->has_plus && r->tag.n >= 1 && r->tag.n <= TAG_MAX;
    for (size_t i = 0; r->tag_ok && i < r->tag.n; i++)
        r->tag_ok = is_tag_char((unsigned char)r->tag.p[i]);
    return 0;
}

static bool span_is(mr_span s, const char *z)
{
    return z != NULL && mr_span_eq(s, mr_span_cstr(z));
}

int mr_config_route(const struct mr_config *cfg, const char *addr,
                    struct mr_route *out, struct mr_error *err)
{
    struct rcpt r;
    memset(out, 0, sizeof(*out));
    int rc = split_rcpt(addr, &r, err);
    if (rc < 0)
        return rc;

    enum { NONE = 5 };
    int best = NONE;
    const struct mr_tenant *bt = NULL;
    const struct mr_inbox *bi = NULL;
    for (size_t t = 0; t < cfg->ntenants && best > 0; t++) {
        const struct mr_tenant *tn = &cfg->tenants[t];
        if (tn->accept_all && best > 4) {
            best = 4;
            bt = tn;
            bi = NULL;
        }
        for (size_t i = 0; i < tn->ninboxes; i++) {
            const struct mr_inbox *ib = &tn->inboxes[i];
            if (!span_is(r.domain, ib->domain))
                continue;
            int rank = NONE;
            switch (ib->kind) {
            case MR_INBOX_EXACT:
                if (span_is(r.local, ib->local))
                    rank = 0;
                else if (r.tag_ok && span_is(r.base, ib->local))
                    rank = 2;
                break;
            case MR_INBOX_PATTERN:
                if (span_is(r.base, ib->local) && (r.tag_ok || !r.has_plus))
                    rank = 1;
                break;
            case MR_INBOX_CATCHALL: rank = 3; break;
            }
            if (rank < best) {
                best = rank;
                bt = tn;
                bi = ib;
                if (rank == 0)
                    break;
            }
        }
    }
    if (best == NONE)
        return mr_error_set(err, MR_ENOTFOUND, "no inbox for '%s'", r.buf);
    out->tenant = bt;
    out->inbox = bi;
    /* An exact match is the whole local part: no tag, even if the inbox's
     * own address has a '+'. */
    if (best != 0 && r.tag_ok) {
        memcpy(out->tag, r.tag.p, r.tag.n);
        out->tag[r.tag.n] = '\0';
    }
    return 0;
}

const struct mr_tenant *mr_config_tenant(const struct mr_config *cfg,
                                         const char *name)
{
    if (cfg == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->ntenants; i++)
        if (strcmp(cfg->tenants[i].name, name) == 0)
            return &cfg->tenants[i];
    return NULL;
}

const struct mr_integration *mr_config_integration(const struct mr_config *cfg,
                                                   const char *tenant,
                                                   const char *name)
{
    const struct mr_tenant *t = mr_config_tenant(cfg, tenant);
    for (size_t i = 0; t && name && i < t->nintegrations; i++)
        if (strcmp(t->integrations[i].name, name) == 0)
            return &t->integrations[i];
    return NULL;
}

const char *mr_integration_kind_name(enum mr_integration_kind k)
{
    switch (k) {
    case MR_INTEGRATION_SLACK: return "slack";
    case MR_INTEGRATION_GITHUB: return "github";
    case MR_INTEGRATION_JIRA: return "jira";
    }
    return "unknown";
}
