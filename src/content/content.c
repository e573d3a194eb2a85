/* SPDX-License-Identifier: Apache-2.0 */
/* content.c - see content.h. */
#include "content/content.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "content/reply.h"
#include "content/sanitize.h"

/* Caps on what the stage writes: a sanitized body is at most a few times
 * its input (entities escaped), and the input is capped by the parser. */
#define SANITIZED_MAX (96u << 20)
#define STRIPPED_MAX (32u << 20)

struct cid_map {
    const struct mr_content_cid *cids;
    size_t n;
    char url[sizeof MR_CONTENT_INLINE_URL + 64];
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 2392: a cid URL is the Content-ID, %-encoded where needed, and the
 * angle brackets are not part of it. Some clients put them in anyway. */
static size_t cid_decode(const char *p, size_t n, char *out, size_t cap)
{
    if (n >= 2 && p[0] == '<' && p[n - 1] == '>') {
        p++;
        n -= 2;
    }
    size_t o = 0;
    for (size_t i = 0; i < n && o < cap; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < n && (hi = hexval(p[i + 1])) >= 0 &&
            (lo = hexval(p[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = p[i];
        }
    }
    return o;
}

static const char *resolve_cid(void *ctx, const char *cid, size_t n)
{
    struct cid_map *m = ctx;
    char want[1024];
    if (n >= sizeof want)
        return NULL;
    size_t wn = cid_decode(cid, n, want, sizeof want);
    for (size_t i = 0; i < m->n; i++) {
        const char *have = m->cids[i].content_id;
        /* Case is ignored: clients disagree on the id's case between the
         * part and the HTML often enough, and a tenant's own message is
         * the only place the id is looked up in. */
        if (have && strlen(have) == wn && strncasecmp(have, want, wn) == 0) {
            snprintf(m->url, sizeof m->url, "%s%s", MR_CONTENT_INLINE_URL,
                     m->cids[i].sha256);
            return m->url;
        }
    }
    return NULL;
}

void mr_content_build(const struct mr_content_in *in,
                      struct mr_content_out *out)
{
    memset(out, 0, sizeof *out);
    mr_buf_init(&out->html_sanitized, SANITIZED_MAX);
    mr_buf_init(&out->stripped_text, STRIPPED_MAX);
    if (in->html) {
        struct cid_map map = {.cids = in->cids, .n = in->ncids};
        struct mr_sanitize_opts opt = {.resolve_cid = resolve_cid,
                                       .ctx = &map};
        out->have_html_sanitized =
            mr_html_sanitize(in->html, in->html_len, &opt,
                             &out->html_sanitized, NULL) == MR_OK;
        if (!out->have_html_sanitized)
            mr_buf_reset(&out->html_sanitized);
    }
    if (in->text && !in->text_from_html) {
        mr_reply_visible_text(in->text, in->text_len, &out->stripped_text);
        out->have_stripped_text = true;
    } else if (in->html) {
        mr_reply_visible_html(in->html, in->html_len, &out->stripped_text);
        out->have_stripped_text = true;
    }
}

void mr_content_out_release(struct mr_content_out *out)
{
    mr_buf_release(&out->html_sanitized);
    mr_buf_release(&out->stripped_text);
}

static const char *to_arena(struct mr_arena *a, struct mr_buf *b,
                            size_t *len_r)
{
    *len_r = b->len;
    char *p = mr_buf_detach(b, NULL);
    if (p == NULL)
        return mr_arena_strndup(a, "", 0);
    mr_arena_own(a, p);
    return p;
}

void mr_content_apply(struct mr_event *ev, struct mr_arena *a)
{
    size_t natt = mr_event_attachment_count(ev);
    struct mr_content_cid *cids =
        mr_arena_alloc(a, (natt ? natt : 1) * sizeof *cids);
    size_t ncids = 0;
    for (size_t i = 0; i < natt; i++) {
        struct mr_event_attachment at;
        mr_event_attachment_get(ev, i, &at);
        if (at.content_id)
            cids[ncids++] = (struct mr_content_cid){at.content_id, at.sha256};
    }
    struct mr_content_in in = {
        .text = mr_event_text(ev),
        .text_len = mr_event_text_len(ev),
        .text_from_html = mr_event_text_from_html(ev),
        .html = mr_event_html(ev),
        .html_len = mr_event_html_len(ev),
        .cids = cids,
        .ncids = ncids,
    };
    struct mr_content_out out;
    mr_content_build(&in, &out);
    const char *hs = NULL, *st = NULL;
    size_t hs_len = 0, st_len = 0;
    if (out.have_html_sanitized)
        hs = to_arena(a, &out.html_sanitized, &hs_len);
    if (out.have_stripped_text)
        st = to_arena(a, &out.stripped_text, &st_len);
    mr_event_set_content(ev, hs, hs_len, st, st_len);
    mr_content_out_release(&out);
}
