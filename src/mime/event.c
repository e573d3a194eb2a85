/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event.c - from the part tree to the normalized event (docs/event.md).
 *
 * The structure pass (parser.c) only finds parts; this file decides what
 * they mean for a helpdesk and decodes what the event needs:
 * - top-level fields: addresses, subject, date, message ids;
 * - the body: the first inline text/plain and text/html of the main body
 *   (not of a forwarded message), text derived from HTML when there is no
 *   text part, uuencoded blocks in text lifted out as attachments;
 * - attachments: every other leaf, decoded in chunks through SHA-256 and
 *   the caller's sink, never held in memory;
 * - a delivery report's original message id and per-recipient status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../content/html_text.h"
#include "../util/buf.h"
#include "../util/hash.h"
#include "../util/scan.h"
#include "../util/utf8.h"
#include "address.h"
#include "date.h"
#include "filename.h"
#include "mime-private.h"
#include "msgid.h"
#include "rfc2047.h"

struct addr_list {
    struct mr_address *items;
    size_t n;
};

struct attachment {
    char part[48];
    const char *filename, *safe_filename, *content_type, *disposition;
    const char *content_id;
    uint64_t size;
    char sha256[MR_SHA256_HEX_LEN + 1];
    bool is_message;
    const char *m_subject, *m_date, *m_message_id;
    struct addr_list m_from, m_to;
};

struct report_rcpt {
    const char *recipient, *action, *status, *diagnostic, *remote_mta;
};

struct mr_event {
    const char *message_id;
    bool message_id_derived;
    const char *in_reply_to;
    const char **refs;
    size_t nrefs;
    struct addr_list from, sender, reply_to, to, cc, bcc;
    const char *subject;
    const char *date;
    const char *text, *html;
    size_t text_len, html_len;
    bool text_from_html;
    const char *html_sanitized, *stripped; /* set by the content stage */
    size_t html_sanitized_len, stripped_len;
    const struct mr__header *header;
    struct attachment *atts;
    size_t natts, atts_cap;
    bool has_report;
    const char *report_type, *orig_message_id;
    struct report_rcpt *rcpts;
    size_t nrcpts;
    struct mr__warnings w;
    size_t max_field;
};

struct build {
    struct mr_arena *a;
    const struct mr_mime_options *opt;
    struct mr_charset_ctx *cs;
    struct mr__tree t;
    struct mr_event *ev;
    struct mr_buf text; /* text/plain pieces of the main body */
    bool have_text;
    int sink_error;
};

void mr_mime_limits_default(struct mr_mime_limits *l)
{
    l->max_message_bytes = 100u << 20;
    l->max_field_bytes = 64u << 10;
    l->max_fields = 2000;
    l->max_parts = 10000;
    l->max_depth = 64;
    l->max_addresses = 1000;
    l->max_references = 100;
    l->max_id_bytes = 998;
    l->max_body_bytes = 32u << 20;
}

void mr_mime_options_default(struct mr_mime_options *opt,
                             struct mr_charset_ctx *charsets)
{
    memset(opt, 0, sizeof(*opt));
    mr_mime_limits_default(&opt->limits);
    opt->charsets = charsets;
}

/* The content of m, NUL-terminated, in the arena: a long one (a body) is
 * taken over rather than copied, and m is then left empty. */
static const char *buf_to_arena(struct build *b, struct mr_buf *m,
                                size_t *len_r)
{
    if (len_r)
        *len_r = m->len;
    if (m->len >= 4096) {
        char *p = mr_buf_detach(m, NULL);
        mr_arena_own(b->a, p);
        return p;
    }
    return mr_arena_strndup(b->a, m->p ? m->p : "", m->len);
}

/* A decoded body into the arena. Bodies are valid UTF-8 (charset
 * conversion makes them so), which lets the JSON writer skip checking them
 * again; only a body cut at max_body_bytes may end inside a character,
 * so that one is cut back to whole characters. */
static const char *body_to_arena(struct build *b, struct mr_buf *m,
                                 size_t *len_r)
{
    if (m->limited)
        mr_buf_truncate(m, mr_utf8_valid_prefix(m->p, m->len));
    return buf_to_arena(b, m, len_r);
}

/* ------------------------------------------------------------------ */
/* Header fields                                                       */

/* A raw value cut to max_field_bytes, with a warning when cut. */
static mr_span capped(struct build *b, const struct mr__field *f)
{
    mr_span v = f->value;
    if (v.n > b->opt->limits.max_field_bytes) {
        mr__warn(b->a, &b->ev->w, "header_truncated: %.*s of %zu bytes cut "
                                  "to %zu", (int)(f->name.n > 40 ? 40 : f->name.n),
                 f->name.p, v.n, b->opt->limits.max_field_bytes);
        v.n = b->opt->limits.max_field_bytes;
        /* Do not cut inside a UTF-8 sequence. */
        while (v.n > 0 && ((unsigned char)v.p[v.n] & 0xC0) == 0x80)
            v.n--;
    }
    return v;
}

static void note_2047(struct build *b, unsigned fl, const char *what)
{
    if (fl & MR_RFC2047_BAD_WORD)
        mr__warn(b->a, &b->ev->w, "encoded_word_invalid: in %s", what);
    if (fl & MR_RFC2047_CHARSET)
        mr__warn(b->a, &b->ev->w, "charset_unknown: encoded word in %s", what);
    if (fl & MR_RFC2047_INVALID)
        mr__warn(b->a, &b->ev->w, "charset_invalid: in %s", what);
    if (fl & MR_RFC2047_RAW8BIT)
        mr__warn(b->a, &b->ev->w, "charset_detected: raw 8-bit text in %s",
                 what);
    if (fl & MR_RFC2047_CONTROL)
        mr__warn(b->a, &b->ev->w, "header_bare_cr: control characters in %s "
                                  "replaced by spaces", what);
}

static const char *decoded_field(struct build *b, const struct mr__header *h,
                                 const char *name)
{
    const struct mr__field *f = mr__header_get(h, name);
    if (f == NULL)
        return NULL;
    struct mr_buf out;
    mr_buf_init(&out, 0);
    unsigned fl = mr_rfc2047_decode(b->cs, capped(b, f), MR_RFC2047_IN_QUOTES,
                                   &out);
    note_2047(b, fl, name);
    const char *s = buf_to_arena(b, &out, NULL);
    mr_buf_release(&out);
    return s;
}

static struct addr_list addresses(struct build *b, const struct mr__header *h,
                                  const char *name)
{
    struct addr_list l = {NULL, 0};
    size_t name_len = strlen(name);
    /* Repeated fields (two To: lines) are merged, as recipients go. */
    for (size_t i = 0; i < h->n; i++) {
        if (h->fields[i].name.n != name_len ||
            !mr_span_ieq(h->fields[i].name, name))
            continue;
        struct mr_address *items;
        size_t n;
        unsigned fl = mr_address_parse_list(b->a, b->cs, capped(b, &h->fields[i]),
                                            b->opt->limits.max_addresses,
                                            &items, &n);
        if (fl & MR_ADDRESS_INVALID)
            mr__warn(b->a, &b->ev->w, "address_invalid: %s holds an entry "
                                      "that is not an address", name);
        if (fl & MR_ADDRESS_TOO_MANY)
            mr__warn(b->a, &b->ev->w, "header_limit: %s has more than %zu "
                                      "addresses", name,
                     b->opt->limits.max_addresses);
        if (n == 0)
            continue;
        if (l.n == 0) {
            l.items = items;
            l.n = n;
        } else if (l.n < b->opt->limits.max_addresses) {
            size_t take = n;
            if (l.n + take > b->opt->limits.max_addresses)
                take = b->opt->limits.max_addresses - l.n;
            struct mr_address *m = mr_arena_alloc(b->a, (l.n + take) * sizeof(*m));
            memcpy(m, l.items, l.n * sizeof(*m));
            memcpy(m + l.n, items, take * sizeof(*m));
            l.items = m;
            l.n += take;
        }
    }
    return l;
}

static const char *date_field(struct build *b, const struct mr__header *h,
                              bool warn)
{
    const struct mr__field *f = mr__header_get(h, "date");
    if (f == NULL)
        return NULL;
    int64_t t;
    unsigned fl = 0;
    if (mr_date_parse(capped(b, f), &t, &fl) != 0) {
        if (warn) {
            struct mr_buf v;
            mr_buf_init(&v, 200);
            mr__header_unfold(f->value, 120, &v);
            mr__warn(b->a, &b->ev->w, "date_invalid: '%s'", v.p ? v.p : "");
            mr_buf_release(&v);
        }
        return NULL;
    }
    if (warn && (fl & MR_DATE_NO_ZONE))
        mr__warn(b->a, &b->ev->w, "date_no_zone: no time zone, UTC assumed");
    char out[32];
    mr_date_rfc3339(t, out);
    return mr_arena_strndup(b->a, out, strlen(out));
}

static const char *first_msgid(struct build *b, const struct mr__header *h,
                               bool warn)
{
    size_t count = 0;
    const char *id = NULL;
    bool too_long = false;
    for (size_t i = 0; i < h->n; i++) {
        if (!mr_span_ieq(h->fields[i].name, "message-id"))
            continue;
        count++;
        unsigned fl = 0;
        const char *cand = mr_msgid_parse(b->a, h->fields[i].value,
                                          b->opt->limits.max_id_bytes, &fl);
        if (fl & MR_MSGID_TOO_LONG)
            too_long = true;
        if (id == NULL && cand != NULL)
            id = cand;
    }
    if (!warn)
        return id;
    if (count > 1)
        mr__warn(b->a, &b->ev->w, "message_id_duplicate: %zu Message-ID "
                                  "fields, the first valid one used", count);
    if (too_long)
        mr__warn(b->a, &b->ev->w, "message_id_invalid: an id longer than %zu "
                                  "bytes ignored", b->opt->limits.max_id_bytes);
    if (id == NULL && count > 0)
        mr__warn(b->a, &b->ev->w, "message_id_invalid: no usable id in "
                                  "Message-ID");
    return id;
}

/* sha256 of the fields that identify a message and of its body with CRs
 * removed, so the same message delivered twice (even once through a pipe
 * that turned CR LF into LF) gets the same key. */
static const char *derived_id(struct build *b)
{
    static const char *const names[] = {"from", "to", "cc", "date",
                                        "subject", NULL};
    const struct mr__part *root = &b->t.parts[0];
    struct mr_sha256 h;
    mr_sha256_init(&h);
    for (const char *const *n = names; *n; n++) {
        const struct mr__field *f = mr__header_get(&root->header, *n);
        if (f) {
            mr_span v = mr_span_trim(f->value);
            mr_sha256_update(&h, v.p, v.n);
        }
        mr_sha256_update(&h, "\0", 1);
    }
    mr_span body = root->body;
    size_t i = 0;
    while (i < body.n) {
        const char *cr = memchr(body.p + i, '\r', body.n - i);
        size_t end = cr ? (size_t)(cr - body.p) : body.n;
        mr_sha256_update(&h, body.p + i, end - i);
        i = end + 1;
    }
    char hex[MR_SHA256_HEX_LEN + 1];
    mr_sha256_final_hex(&h, hex);
    char id[80];
    snprintf(id, sizeof(id), "derived-%.32s@mailroom.invalid", hex);
    return mr_arena_strndup(b->a, id, strlen(id));
}

static void thread_ids(struct build *b, const struct mr__header *h)
{
    struct mr_event *ev = b->ev;
    const struct mr__field *refs = mr__header_get(h, "references");
    const struct mr__field *irt = mr__header_get(h, "in-reply-to");
    const char **r = NULL, **ir = NULL;
    size_t nr = 0, nir = 0;
    unsigned fl = 0;
    if (refs)
        nr = mr_msgid_list(b->a, refs->value, b->opt->limits.max_references,
                           b->opt->limits.max_id_bytes, &r, &fl);
    if (irt)
        nir = mr_msgid_list(b->a, irt->value, 16, b->opt->limits.max_id_bytes,
                            &ir, &fl);
    if (fl & MR_MSGID_TOO_MANY)
        mr__warn(b->a, &ev->w, "references_truncated: only the newest %zu "
                               "ids kept", b->opt->limits.max_references);
    if (fl & MR_MSGID_TOO_LONG)
        mr__warn(b->a, &ev->w, "message_id_invalid: an over-long id in "
                               "References/In-Reply-To ignored");
    ev->in_reply_to = nir ? ir[0] : NULL;
    ev->refs = mr_arena_alloc(b->a, (nr + nir + 1) * sizeof(char *));
    if (nr)
        memcpy(ev->refs, r, nr * sizeof(char *));
    ev->nrefs = nr;
    /* Ids of In-Reply-To beyond the first still thread: keep them. */
    for (size_t i = 1; i < nir; i++) {
        bool seen = false;
        for (size_t j = 0; j < ev->nrefs && !seen; j++)
            seen = strcmp(ev->refs[j], ir[i]) == 0;
        if (!seen)
            ev->refs[ev->nrefs++] = ir[i];
    }
}

/* ------------------------------------------------------------------ */
/* Decoding bodies                                                     */

static int sink_to_buf(void *ctx, const char *p, size_t n)
{
    mr_buf_append(ctx, p, n);
    return 0;
}

static void note_cte(struct build *b, unsigned fl, int part)
{
    if (fl == 0)
        return;
    char num[48];
    mr__part_number(&b->t, part, num, sizeof(num));
    if (fl & (MR_CTE_BAD_CHAR))
        mr__warn(b->a, &b->ev->w, "base64_invalid: part %s has characters "
                                  "outside the alphabet", num);
    if (fl & MR_CTE_TRUNCATED)
        mr__warn(b->a, &b->ev->w, "base64_truncated: part %s ends mid-quantum",
                 num);
    if (fl & MR_CTE_BAD_ESCAPE)
        mr__warn(b->a, &b->ev->w, "qp_invalid: part %s has invalid escapes "
                                  "kept literally", num);
    if (fl & MR_CTE_PASSTHRU)
        mr__warn(b->a, &b->ev->w, "cte_unknown: part %s kept undecoded", num);
}

static void note_charset(struct build *b, unsigned fl, int part,
                         const char *label)
{
    if (fl == 0)
        return;
    char num[48];
    mr__part_number(&b->t, part, num, sizeof(num));
    if (fl & MR_CHARSET_UNKNOWN)
        mr__warn(b->a, &b->ev->w, "charset_unknown: part %s charset '%.40s'",
                 num, label ? label : "");
    if (fl & MR_CHARSET_DETECTED)
        mr__warn(b->a, &b->ev->w, "charset_detected: part %s decoded by "
                                  "detection", num);
    if (fl & MR_CHARSET_INVALID)
        mr__warn(b->a, &b->ev->w, "charset_invalid: part %s had invalid "
                                  "sequences (U+FFFD)", num);
    if (fl & MR_CHARSET_NUL)
        mr__warn(b->a, &b->ev->w, "nul_byte: part %s had NUL bytes removed",
                 num);
}

/* CR LF and bare CR become LF, in place. Sixteen bytes a step between
 * CRs (a byte loop was 9% of the no-attachment benchmark, where every
 * line ends in CR LF). */
static void normalize_newlines(struct mr_buf *m)
{
    char *p = m->p;
    size_t n = m->len;
    const char *first = n ? memchr(p, '\r', n) : NULL;
    if (first == NULL)
        return;
    size_t i = (size_t)(first - p), o = i;
    while (i < n) {
        if (i + 16 <= n) {
            mr_blk b = mr_blk_load(p + i);
            unsigned cr = mr_blk_eq(b, '\r');
            if (cr == 0) {
                mr_blk_store(p + o, b); /* o <= i: b was loaded first */
                o += 16;
                i += 16;
                continue;
            }
            size_t k = mr_blk_first(cr);
            mr_copy_short(p + o, p + i, k);
            o += k;
            i += k;
        }
        char c = p[i++];
        if (c == '\r') {
            if (i < n && p[i] == '\n')
                continue;
            c = '\n';
        }
        p[o++] = c;
    }
    mr_buf_truncate(m, o);
}

static void add_attachment_bytes(struct build *b, int part, const char *name,
                                 size_t name_len, const char *ctype,
                                 mr_span data, bool uu);

/* Decoded bytes of a text part converted to UTF-8 into out. uuencoded
 * blocks in text/plain become attachments first. */
static void decode_text(struct build *b, int i, bool plain, struct mr_buf *out)
{
    const struct mr__part *p = &b->t.parts[i];
    size_t cap = b->opt->limits.max_body_bytes;
    struct mr_buf raw;
    mr_buf_init(&raw, cap);
    /* Decoded, a body is never longer than it is encoded. */
    mr_buf_expect(&raw, p->body.n);
    unsigned fl = 0;
    mr_cte_decode_hinted(p->cte, p->body.p, p->body.n, sink_to_buf, &raw,
                         b->opt->pages, &fl);
    note_cte(b, fl, i);
    if (raw.limited)
        mr__warn(b->a, &b->ev->w, "size_limit: body cut at %zu bytes", cap);

    mr_span text = mr_buf_span(&raw);
    struct mr_buf rest;
    mr_buf_init(&rest, cap);
    if (plain && mr_uu_candidate(text.p, text.n)) {
        struct mr_uu_block blk;
        size_t from = 0;
        bool any = false;
        while (mr_uu_find(text.p, text.n, from, &blk)) {
            mr_buf_append(&rest, text.p + from, blk.begin - from);
            add_attachment_bytes(b, i, blk.name.p, blk.name.n,
                                 "application/octet-stream", blk.data, true);
            from = blk.end;
            any = true;
            if (blk.end <= blk.begin)
                break;
        }
        if (any) {
            mr_buf_append(&rest, text.p + from, text.n - from);
            mr__warn(b->a, &b->ev->w, "uuencode: uuencoded file(s) in the "
                                      "text lifted out as attachments");
            text = mr_buf_span(&rest);
        }
    }
    const struct mr_param *cs = mr_params_get(&p->ctype, "charset");
    mr_span label = cs ? mr_span_make(cs->value, cs->value_len) : MR_SPAN_NULL;
    /* UTF-8 takes up to half as much again for most text (2 bytes for 1
     * in Latin and Cyrillic, 3 for 2 in CJK); more only grows again. */
    mr_buf_expect(out, text.n + text.n / 2);
    unsigned cfl = mr_charset_to_utf8(b->cs, label, text.p, text.n, out);
    note_charset(b, cfl, i, cs ? cs->value : NULL);
    normalize_newlines(out);
    mr_buf_release(&rest);
    mr_buf_release(&raw);
}

/* ------------------------------------------------------------------ */
/* Attachments                                                         */

struct hash_sink {
    struct build *b;
    struct mr_sha256 h;
    uint64_t size;
    size_t index;
};

static int hash_sink(void *ctx, const char *p, size_t n)
{
    struct hash_sink *s = ctx;
    mr_sha256_update(&s->h, p, n);
    s->size += n;
    const struct mr_mime_sink *user = s->b->opt->sink;
    if (user && user->data) {
        int rc = user->data(user->ctx, s->index, p, n);
        if (rc < 0) {
            s->b->sink_error = rc;
            return rc;
        }
    }
    return 0;
}

static struct attachment *new_attachment(struct build *b)
{
    struct mr_event *ev = b->ev;
    if (ev->natts == ev->atts_cap) {
        size_t ncap = ev->atts_cap ? ev->atts_cap * 2 : 8;
        ev->atts = mr_arena_realloc(b->a, ev->atts,
                                    ev->atts_cap * sizeof(*ev->atts),
                                    ncap * sizeof(*ev->atts));
        ev->atts_cap = ncap;
    }
    struct attachment *at = &ev->atts[ev->natts++];
    memset(at, 0, sizeof(*at));
    return at;
}

static void name_attachment(struct build *b, struct attachment *at,
                            const char *name, size_t name_len)
{
    at->filename = name ? mr_arena_strndup(b->a, name, name_len) : NULL;
    struct mr_buf safe;
    mr_buf_init(&safe, 0);
    mr_filename_safe(mr_span_make(name, name ? name_len : 0),
                     mr_span_cstr(at->content_type), MR_FILENAME_MAX, &safe);
    at->safe_filename = buf_to_arena(b, &safe, NULL);
    mr_buf_release(&safe);
}

/* A name from a uuencode "begin 644 name" line: raw bytes, made UTF-8. */
static void name_attachment_raw(struct build *b, struct attachment *at,
                                mr_span raw)
{
    struct mr_buf nm;
    mr_buf_init(&nm, 4096);
    mr_charset_to_utf8(b->cs, MR_SPAN_NULL, raw.p, raw.n, &nm);
    name_attachment(b, at, nm.p ? nm.p : "", nm.len);
    mr_buf_release(&nm);
}

static void add_attachment_bytes(struct build *b, int part, const char *name,
                                 size_t name_len, const char *ctype,
                                 mr_span data, bool uu)
{
    struct attachment *at = new_attachment(b);
    mr__part_number(&b->t, part, at->part, sizeof(at->part));
    at->content_type = ctype;
    at->disposition = "attachment";
    name_attachment_raw(b, at, mr_span_make(name, name_len));
    struct hash_sink s = {.b = b, .index = b->ev->natts - 1};
    mr_sha256_init(&s.h);
    unsigned fl = 0;
    if (uu)
        mr_uu_decode(data, hash_sink, &s, &fl);
    else
        mr_cte_decode(MR_CTE_BINARY, data.p, data.n, hash_sink, &s, &fl);
    mr_sha256_final_hex(&s.h, at->sha256);
    at->size = s.size;
}

/* The name the sender gave: Content-Disposition filename (RFC 2231 form
 * first, params.c merges them), then Content-Type name. */
static const struct mr_param *sender_filename(const struct mr_params *disp,
                                              const struct mr_params *ct)
{
    const struct mr_param *f = disp ? mr_params_get(disp, "filename") : NULL;
    if (f == NULL || f->value_len == 0)
        f = mr_params_get(ct, "name");
    if (f == NULL || f->value_len == 0)
        return NULL;
    return f;
}

static void message_summary(struct build *b, struct attachment *at, int i)
{
    int child = b->t.parts[i].first_child;
    if (child < 0)
        return;
    const struct mr__header *h = &b->t.parts[child].header;
    at->m_subject = decoded_field(b, h, "subject");
    at->m_date = date_field(b, h, false);
    at->m_message_id = first_msgid(b, h, false);
    at->m_from = addresses(b, h, "from");
    at->m_to = addresses(b, h, "to");
}

static void add_attachment(struct build *b, int i, const struct mr_params *disp)
{
    const struct mr__part *p = &b->t.parts[i];
    struct attachment *at = new_attachment(b);
    mr__part_number(&b->t, i, at->part, sizeof(at->part));
    at->content_type = p->ctype.value;
    at->is_message = p->kind == MR__MESSAGE;
    bool inline_disp = disp && disp->value && strcmp(disp->value, "inline") == 0;
    const struct mr__field *cid = mr__header_get(&p->header, "content-id");
    if (cid)
        at->content_id = mr_msgid_parse(b->a, cid->value,
                                        b->opt->limits.max_id_bytes, NULL);
    at->disposition = inline_disp ? "inline" : "attachment";
    const struct mr_param *fn = sender_filename(disp, &p->ctype);
    struct mr_uu_block blk;
    if (fn == NULL && p->cte == MR_CTE_UUENCODE &&
        mr_uu_find(p->body.p, p->body.n, 0, &blk)) {
        name_attachment_raw(b, at, blk.name);
    } else {
        name_attachment(b, at, fn ? fn->value : NULL, fn ? fn->value_len : 0);
    }
    if (at->is_message)
        message_summary(b, at, i);

    struct hash_sink s = {.b = b, .index = b->ev->natts - 1};
    mr_sha256_init(&s.h);
    unsigned fl = 0;
    mr_cte_decode_hinted(p->cte, p->body.p, p->body.n, hash_sink, &s,
                         b->opt->pages, &fl);
    note_cte(b, fl, i);
    mr_sha256_final_hex(&s.h, at->sha256);
    at->size = s.size;
}

/* ------------------------------------------------------------------ */
/* Delivery reports (RFC 3464)                                         */

static const char *field_text(struct build *b, const struct mr__header *h,
                              const char *name, bool strip_type)
{
    const struct mr__field *f = mr__header_get(h, name);
    if (f == NULL)
        return NULL;
    struct mr_buf v;
    mr_buf_init(&v, 0);
    mr__header_unfold(f->value, 4096, &v);
    mr_span s = mr_buf_span(&v);
    /* "rfc822; user@example.com": the address type is not the address. */
    if (strip_type) {
        const char *semi = memchr(s.p, ';', s.n);
        if (semi)
            s = mr_span_trim(mr_span_make(semi + 1, (size_t)(s.p + s.n - semi - 1)));
    }
    const char *r = mr_arena_strndup(b->a, s.p, s.n);
    mr_buf_release(&v);
    return r;
}

static void delivery_status(struct build *b, int i)
{
    const struct mr__part *p = &b->t.parts[i];
    struct mr_buf raw;
    mr_buf_init(&raw, 1u << 20);
    unsigned fl = 0;
    mr_cte_decode(p->cte, p->body.p, p->body.n, sink_to_buf, &raw, &fl);
    size_t n = raw.len;
    char *text = mr_arena_strndup(b->a, raw.p ? raw.p : "", n);
    mr_buf_release(&raw);

    struct mr_event *ev = b->ev;
    ev->has_report = true;
    size_t pos = 0, blocks = 0;
    /* The per-message block, then one block per recipient (bounded). */
    while (pos < n && blocks < 1000) {
        while (pos < n && (text[pos] == '\r' || text[pos] == '\n'))
            pos++;
        if (pos >= n)
            break;
        struct mr__header h;
        enum mr__header_end end;
        struct mr__warnings scratch = {0};
        size_t used = mr__header_read(b->a, text + pos, n - pos, 100, NULL,
                                      NULL, &h, &end, &scratch);
        if (used == 0)
            break;
        pos += used;
        blocks++;
        if (blocks == 1 || (!mr__header_get(&h, "final-recipient") &&
                            !mr__header_get(&h, "original-recipient")))
            continue;
        ev->rcpts = mr_arena_realloc(b->a, ev->rcpts,
                                     ev->nrcpts * sizeof(*ev->rcpts),
                                     (ev->nrcpts + 1) * sizeof(*ev->rcpts));
        struct report_rcpt *r = &ev->rcpts[ev->nrcpts++];
        r->recipient = field_text(b, &h, "final-recipient", true);
        if (r->recipient == NULL)
            r->recipient = field_text(b, &h, "original-recipient", true);
        r->action = field_text(b, &h, "action", false);
        r->status = field_text(b, &h, "status", false);
        r->diagnostic = field_text(b, &h, "diagnostic-code", true);
        r->remote_mta = field_text(b, &h, "remote-mta", true);
    }
}

/* The returned message's id: a message/rfc822 part or text/rfc822-headers
 * inside the report. */
static void report_original(struct build *b, int i)
{
    const struct mr__part *p = &b->t.parts[i];
    if (b->ev->orig_message_id)
        return;
    if (p->kind == MR__MESSAGE && p->first_child >= 0) {
        b->ev->orig_message_id =
            first_msgid(b, &b->t.parts[p->first_child].header, false);
        return;
    }
    struct mr_buf raw;
    mr_buf_init(&raw, 1u << 20);
    unsigned fl = 0;
    mr_cte_decode(p->cte, p->body.p, p->body.n, sink_to_buf, &raw, &fl);
    char *text = mr_arena_strndup(b->a, raw.p ? raw.p : "", raw.len);
    size_t n = raw.len;
    mr_buf_release(&raw);
    struct mr__header h;
    enum mr__header_end end;
    struct mr__warnings scratch = {0};
    mr__header_read(b->a, text, n, 500, NULL, NULL, &h, &end, &scratch);
    b->ev->orig_message_id = first_msgid(b, &h, false);
}

/* ------------------------------------------------------------------ */
/* Walking the tree                                                    */

static bool under(const struct build *b, int i, enum mr__kind kind,
                  const char *ctype)
{
    for (int p = b->t.parts[i].parent; p >= 0; p = b->t.parts[p].parent) {
        const struct mr__part *q = &b->t.parts[p];
        if (q->kind == kind &&
            (ctype == NULL || (q->ctype.value && strcmp(q->ctype.value, ctype) == 0)))
            return true;
    }
    return false;
}

static void classify(struct build *b)
{
    struct mr_event *ev = b->ev;
    for (size_t idx = 0; idx < b->t.n && b->sink_error == 0; idx++) {
        int i = (int)idx;
        const struct mr__part *p = &b->t.parts[i];
        if (p->kind == MR__MULTIPART)
            continue;
        /* Parts of a forwarded message belong to its .eml attachment. */
        if (under(b, i, MR__MESSAGE, NULL))
            continue;
        if (p->opaque_multipart && p->body.n == 0)
            continue;
        struct mr_params disp = {0};
        const struct mr__field *d =
            mr__header_get(&p->header, "content-disposition");
        if (d)
            mr_params_parse(b->a, b->cs, d->value, 64, &disp);
        const char *ct = p->ctype.value;
        bool is_attachment = disp.value && strcmp(disp.value, "attachment") == 0;
        bool named = sender_filename(&disp, &p->ctype) != NULL;
        bool plain = strcmp(ct, "text/plain") == 0;
        bool html = strcmp(ct, "text/html") == 0;

        if (strcmp(ct, "message/delivery-status") == 0 ||
            strcmp(ct, "message/global-delivery-status") == 0)
            delivery_status(b, i);
        if (ev->has_report && (p->kind == MR__MESSAGE ||
                               strcmp(ct, "text/rfc822-headers") == 0))
            report_original(b, i);

        /* A part sent as x-uuencode is a file, whatever its type says. */
        if (p->cte == MR_CTE_UUENCODE) {
            add_attachment(b, i, d ? &disp : NULL);
            continue;
        }
        if ((plain || html) && !is_attachment && !named &&
            p->kind == MR__LEAF && !p->opaque_multipart) {
            bool alternative = under(b, i, MR__MULTIPART, "multipart/alternative");
            if (plain && (!b->have_text || !alternative)) {
                if (b->have_text)
                    mr_buf_append(&b->text, "\n\n", 2);
                decode_text(b, i, true, &b->text);
                b->have_text = true;
                continue;
            }
            if (html && ev->html == NULL) {
                struct mr_buf h;
                mr_buf_init(&h, b->opt->limits.max_body_bytes);
                decode_text(b, i, false, &h);
                ev->html = body_to_arena(b, &h, &ev->html_len);
                mr_buf_release(&h);
                continue;
            }
        }
        add_attachment(b, i, d ? &disp : NULL);
    }
    if (b->have_text) {
        ev->text = body_to_arena(b, &b->text, &ev->text_len);
    } else if (ev->html) {
        struct mr_buf t;
        mr_buf_init(&t, b->opt->limits.max_body_bytes);
        mr_html_to_text(ev->html, ev->html_len, &t);
        ev->text = body_to_arena(b, &t, &ev->text_len);
        ev->text_from_html = true;
        mr_buf_release(&t);
    }
    if (ev->has_report) {
        const struct mr_param *rt = mr_params_get(&b->t.parts[0].ctype,
                                                  "report-type");
        ev->report_type = rt ? rt->value : "delivery-status";
    }
}

int mr_mime_parse(const char *buf, size_t len,
                  const struct mr_mime_options *opt, struct mr_arena *arena,
                  struct mr_event **ev_r, struct mr_error *err)
{
    *ev_r = NULL;
    if (len == 0)
        return mr_error_set(err, MR_EINVAL, "empty message");
    if (len > opt->limits.max_message_bytes)
        return mr_error_set(err, MR_ELIMIT, "message of %zu bytes is over the "
                            "limit of %zu", len, opt->limits.max_message_bytes);

    struct build b = {.a = arena, .opt = opt, .cs = opt->charsets};
    struct mr_event *ev = mr_arena_zalloc(arena, sizeof(*ev));
    b.ev = ev;
    ev->max_field = opt->limits.max_field_bytes;
    mr__structure_parse(arena, b.cs, &opt->limits, buf, len, opt->pages, &b.t,
                        &ev->w);
    const struct mr__part *root = &b.t.parts[0];
    if (root->header.n == 0)
        return mr_error_set(err, MR_EINVAL, "no header fields: not an email "
                            "message");
    const struct mr__header *h = &root->header;
    ev->header = h;
    ev->subject = decoded_field(&b, h, "subject");
    ev->from = addresses(&b, h, "from");
    ev->sender = addresses(&b, h, "sender");
    ev->reply_to = addresses(&b, h, "reply-to");
    ev->to = addresses(&b, h, "to");
    ev->cc = addresses(&b, h, "cc");
    ev->bcc = addresses(&b, h, "bcc");
    ev->date = date_field(&b, h, true);
    ev->message_id = first_msgid(&b, h, true);
    if (ev->message_id == NULL) {
        if (mr__header_get(h, "message-id") == NULL)
            mr__warn(arena, &ev->w, "message_id_missing: derived from the "
                                    "headers and a content hash");
        ev->message_id = derived_id(&b);
        ev->message_id_derived = true;
    }
    thread_ids(&b, h);

    mr_buf_init(&b.text, opt->limits.max_body_bytes);
    classify(&b);
    mr_buf_release(&b.text);
    if (b.sink_error < 0)
        return mr_error_set(err, b.sink_error, "attachment sink failed");
    *ev_r = ev;
    return 0;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */

static void write_address(struct mr_json *j, const struct mr_address *a)
{
    mr_json_obj_begin(j);
    mr_json_key(j, "email");
    mr_json_cstr(j, a->valid ? a->email : NULL);
    mr_json_key(j, "name");
    mr_json_cstr(j, a->name && a->name[0] ? a->name : NULL);
    if (a->group) {
        mr_json_key(j, "group");
        mr_json_cstr(j, a->group);
    }
    if (!a->valid) {
        mr_json_key(j, "raw");
        mr_json_cstr(j, a->raw);
        mr_json_key(j, "invalid");
        mr_json_bool(j, true);
    }
    mr_json_obj_end(j);
}

static void write_list(struct mr_json *j, const char *key,
                       const struct addr_list *l)
{
    mr_json_key(j, key);
    mr_json_arr_begin(j);
    for (size_t i = 0; i < l->n; i++)
        write_address(j, &l->items[i]);
    mr_json_arr_end(j);
}

static void write_first(struct mr_json *j, const char *key,
                        const struct addr_list *l)
{
    mr_json_key(j, key);
    /* From may name several authors (RFC 5322 3.6.2); the first valid one
     * is the requester. */
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].valid) {
            write_address(j, &l->items[i]);
            return;
        }
    if (l->n)
        write_address(j, &l->items[0]);
    else
        mr_json_null(j);
}

static bool same_name(const struct mr__field *a, const struct mr__field *b)
{
    return a->name.n == b->name.n &&
           strncasecmp(a->name.p, b->name.p, a->name.n) == 0;
}

/* A hash of a header name that ignores case: eight bytes a step (one
 * multiply each, not one a byte), with the 0x20 bit set in each byte: it
 * folds A-Z onto a-z, and what else it folds only makes a collision,
 * which same_name settles. */
static size_t name_hash(mr_span name)
{
    uint64_t h = name.n;
    for (size_t i = 0; i < name.n; i += 8) {
        uint64_t w = 0;
        memcpy(&w, name.p + i, name.n - i < 8 ? name.n - i : 8);
        h = (h ^ (w | 0x2020202020202020ULL)) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
    }
    return (size_t)h;
}

/*
 * Headers as one object, fields grouped by case-insensitive name in the
 * order their names first appear; a repeated name gets an array. The
 * groups are found with a hash table in one pass (comparing every field
 * with every other was quadratic: 2% of the no-attachment benchmark at
 * 40 fields a message, and 2 million comparisons for the 2,000 fields a
 * hostile header may keep).
 */
static void write_headers(struct mr_json *j, const struct mr__header *h,
                          size_t max)
{
    size_t n = h->n, cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    /* slot[]: 1 + the first field of a name, 0 when free; next[]: the
     * next field of the same name, n at the end; last[] and count[] are
     * kept for the first field of each name. */
    size_t *mem = mr_xcalloc(cap + 3 * (n ? n : 1), sizeof(size_t));
    size_t *slot = mem, *next = mem + cap, *last = next + n, *count = last + n;
    for (size_t i = 0; i < n; i++) {
        next[i] = n;
        size_t s = name_hash(h->fields[i].name) & (cap - 1);
        while (slot[s] != 0 &&
               !same_name(&h->fields[slot[s] - 1], &h->fields[i]))
            s = (s + 1) & (cap - 1);
        if (slot[s] == 0) {
            slot[s] = i + 1;
            last[i] = i;
            count[i] = 1;
        } else {
            size_t first = slot[s] - 1;
            next[last[first]] = i;
            last[first] = i;
            count[first]++;
            count[i] = 0; /* not the first of its name */
        }
    }
    struct mr_buf name;
    mr_buf_init(&name, 0);
    mr_json_obj_begin(j);
    for (size_t i = 0; i < n; i++) {
        if (count[i] == 0)
            continue;
        mr_span nm = h->fields[i].name;
        mr_buf_reset(&name);
        char *d = mr_buf_reserve(&name, nm.n);
        for (size_t c = 0; c < nm.n; c++)
            d[c] = (char)mr_lower((unsigned char)nm.p[c]);
        mr_buf_commit(&name, nm.n);
        mr_json_key_span(j, mr_buf_span(&name));
        if (count[i] > 1)
            mr_json_arr_begin(j);
        for (size_t k = i; k < n; k = next[k])
            mr__header_unfold_json(h->fields[k].value, max, j);
        if (count[i] > 1)
            mr_json_arr_end(j);
    }
    mr_json_obj_end(j);
    mr_buf_release(&name);
    free(mem);
}

static void write_attachment(struct mr_json *j, const struct attachment *at)
{
    mr_json_obj_begin(j);
    mr_json_key(j, "id");
    mr_json_null(j);
    mr_json_key(j, "part");
    mr_json_cstr(j, at->part);
    mr_json_key(j, "filename");
    mr_json_cstr(j, at->filename);
    mr_json_key(j, "safe_filename");
    mr_json_cstr(j, at->safe_filename);
    mr_json_key(j, "content_type");
    mr_json_cstr(j, at->content_type);
    mr_json_key(j, "detected_type");
    mr_json_null(j);
    mr_json_key(j, "size");
    mr_json_uint(j, at->size);
    mr_json_key(j, "sha256");
    mr_json_cstr(j, at->sha256);
    mr_json_key(j, "disposition");
    mr_json_cstr(j, at->disposition);
    mr_json_key(j, "content_id");
    mr_json_cstr(j, at->content_id);
    mr_json_key(j, "url");
    mr_json_null(j);
    mr_json_key(j, "scan");
    mr_json_null(j);
    if (at->is_message) {
        mr_json_key(j, "message");
        mr_json_obj_begin(j);
        mr_json_key(j, "subject");
        mr_json_cstr(j, at->m_subject);
        write_first(j, "from", &at->m_from);
        write_list(j, "to", &at->m_to);
        mr_json_key(j, "date");
        mr_json_cstr(j, at->m_date);
        mr_json_key(j, "message_id");
        mr_json_cstr(j, at->m_message_id);
        mr_json_obj_end(j);
    }
    mr_json_obj_end(j);
}

void mr_event_write_json(const struct mr_event *ev, const char *file,
                         struct mr_json *j)
{
    mr_json_obj_begin(j);
    if (file) {
        mr_json_key(j, "file");
        mr_json_cstr(j, file);
    }
    mr_json_key(j, "id");
    mr_json_null(j);
    mr_json_key(j, "type");
    mr_json_cstr(j, "email.received");
    mr_json_key(j, "tenant");
    mr_json_null(j);
    mr_json_key(j, "inbox");
    mr_json_null(j);
    mr_json_key(j, "message_id");
    mr_json_cstr(j, ev->message_id);
    mr_json_key(j, "message_id_derived");
    mr_json_bool(j, ev->message_id_derived);
    mr_json_key(j, "in_reply_to");
    mr_json_cstr(j, ev->in_reply_to);
    mr_json_key(j, "references");
    mr_json_arr_begin(j);
    for (size_t i = 0; i < ev->nrefs; i++)
        mr_json_cstr(j, ev->refs[i]);
    mr_json_arr_end(j);
    write_first(j, "from", &ev->from);
    write_first(j, "sender", &ev->sender);
    write_list(j, "reply_to", &ev->reply_to);
    write_list(j, "to", &ev->to);
    write_list(j, "cc", &ev->cc);
    write_list(j, "bcc", &ev->bcc);
    mr_json_key(j, "envelope");
    mr_json_null(j);
    mr_json_key(j, "subject");
    mr_json_cstr(j, ev->subject);
    mr_json_key(j, "date");
    mr_json_cstr(j, ev->date);
    mr_json_key(j, "received_at");
    mr_json_null(j);
    mr_json_key(j, "text");
    mr_json_str_valid(j, mr_span_make(ev->text, ev->text_len));
    mr_json_key(j, "html");
    mr_json_str_valid(j, mr_span_make(ev->html, ev->html_len));
    mr_json_key(j, "html_sanitized");
    /* Checked as UTF-8 again: these come from outside the parser. */
    mr_json_str(j, mr_span_make(ev->html_sanitized, ev->html_sanitized_len));
    mr_json_key(j, "stripped_text");
    mr_json_str(j, mr_span_make(ev->stripped, ev->stripped_len));
    mr_json_key(j, "headers");
    write_headers(j, ev->header, ev->max_field);
    mr_json_key(j, "attachments");
    mr_json_arr_begin(j);
    for (size_t i = 0; i < ev->natts; i++)
        write_attachment(j, &ev->atts[i]);
    mr_json_arr_end(j);
    mr_json_key(j, "report");
    if (ev->has_report) {
        mr_json_obj_begin(j);
        mr_json_key(j, "type");
        mr_json_cstr(j, ev->report_type);
        mr_json_key(j, "original_message_id");
        mr_json_cstr(j, ev->orig_message_id);
        mr_json_key(j, "recipients");
        mr_json_arr_begin(j);
        for (size_t i = 0; i < ev->nrcpts; i++) {
            const struct report_rcpt *r = &ev->rcpts[i];
            mr_json_obj_begin(j);
            mr_json_key(j, "recipient");
            mr_json_cstr(j, r->recipient);
            mr_json_key(j, "action");
            mr_json_cstr(j, r->action);
            mr_json_key(j, "status");
            mr_json_cstr(j, r->status);
            mr_json_key(j, "diagnostic");
            mr_json_cstr(j, r->diagnostic);
            mr_json_key(j, "remote_mta");
            mr_json_cstr(j, r->remote_mta);
            mr_json_obj_end(j);
        }
        mr_json_arr_end(j);
        mr_json_obj_end(j);
    } else {
        mr_json_null(j);
    }
    mr_json_key(j, "auth");
    mr_json_null(j);
    mr_json_key(j, "auto");
    mr_json_null(j);
    mr_json_key(j, "warnings");
    mr_json_arr_begin(j);
    for (size_t i = 0; i < ev->w.n; i++)
        mr_json_cstr(j, ev->w.items[i]);
    if (ev->w.dropped) {
        char m[80];
        snprintf(m, sizeof(m), "warnings_truncated: %zu more", ev->w.dropped);
        mr_json_cstr(j, m);
    }
    mr_json_arr_end(j);
    mr_json_obj_end(j);
}

const char *mr_event_subject(const struct mr_event *ev) { return ev->subject; }
const char *mr_event_message_id(const struct mr_event *ev) { return ev->message_id; }
const char *mr_event_text(const struct mr_event *ev) { return ev->text; }
const char *mr_event_html(const struct mr_event *ev) { return ev->html; }
size_t mr_event_attachment_count(const struct mr_event *ev) { return ev->natts; }
size_t mr_event_warning_count(const struct mr_event *ev) { return ev->w.n + ev->w.dropped; }
size_t mr_event_text_len(const struct mr_event *ev) { return ev->text_len; }
size_t mr_event_html_len(const struct mr_event *ev) { return ev->html_len; }
bool mr_event_text_from_html(const struct mr_event *ev) { return ev->text_from_html; }

void mr_event_attachment_get(const struct mr_event *ev, size_t i,
                             struct mr_event_attachment *out)
{
    const struct attachment *at = &ev->atts[i];
    out->content_id = at->content_id;
    out->sha256 = at->sha256;
    out->content_type = at->content_type;
}

void mr_event_set_content(struct mr_event *ev, const char *html_sanitized,
                          size_t html_sanitized_len, const char *stripped_text,
                          size_t stripped_text_len)
{
    ev->html_sanitized = html_sanitized;
    ev->html_sanitized_len = html_sanitized ? html_sanitized_len : 0;
    ev->stripped = stripped_text;
    ev->stripped_len = stripped_text ? stripped_text_len : 0;
}
