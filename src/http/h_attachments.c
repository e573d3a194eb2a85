/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h_attachments.c - GET /api/v1/attachments/{id} (a download) and
 * GET /api/v1/inline/{sha256} (an image the sanitized HTML shows), for the
 * token's tenant. docs/attachments.md says why each header is there.
 *
 * Both stream the blob: the handler maps it (mr_blob_map) and hands
 * libmicrohttpd a reader that copies 64 KiB at a time as the socket takes
 * them, so a download costs a mapping, not a copy of the file in memory.
 *
 * A download is always `Content-Disposition: attachment` with the safe
 * name (RFC 6266, with an RFC 5987 UTF-8 form), `X-Content-Type-Options:
 * nosniff` and `Content-Security-Policy: sandbox`, so that even a file a
 * browser would render (HTML, SVG, PDF) runs nothing as our origin. Its
 * Content-Type is mr_attach_serve_type's. The verdict is judged again with
 * the configuration in force, so attachments stored before a rule existed
 * (or before migration 4) get it too: blocked by either is blocked, and a
 * blocked attachment is 403 but for an admin token. An attachment clamd
 * found infected is 403 for every token (quarantine); with clamd.on_error
 * block, one not yet scanned or whose scan failed is 403 but for an admin.
 * A rescan (h_rescan.c) changes neither while it waits: a file that was
 * clean is still served, one that was infected is still quarantined (its
 * block says "infected: ", the scanner's prefix) until a clean verdict.
 *
 * An inline image is served only when the tenant has a stored attachment
 * with that sha256 that is not blocked, not truncated and detected
 * (libmagic, not the sender's word) as a raster image; anything else is
 * 404, so the route can never be made to serve a page or a script.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content/attach_policy.h"
#include "http/http-private.h"

/* The stream's state: the mapping and the type string the answer names. */
struct download {
    struct mr_blob_map map;
    char type[128];
};

static size_t download_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct download *dl = cls;
    if (pos >= dl->map.len)
        return 0;
    size_t n = dl->map.len - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, dl->map.p + pos, n);
    return n;
}

static void download_done(void *cls)
{
    struct download *dl = cls;
    mr_blob_unmap(&dl->map);
    free(dl);
}

/* Maps blob `key` and sets resp up to stream it as `type`. false (and a
 * problem in resp) when the blob cannot be read. */
static bool stream_blob(const struct mr__http_ctx *ctx, const char *what,
                        const char *key, const char *type,
                        struct mr__http_response *resp)
{
    struct download *dl = mr_xcalloc(1, sizeof *dl);
    struct mr_error err = {0};
    int rc = mr_blob_map(ctx->deps.blob, key, &dl->map, &err);
    if (rc < 0) {
        free(dl);
        if (rc == MR_ENOTFOUND || rc == MR_EINVAL) {
            /* The database names bytes the store lacks: damage for the
             * operator, not the client's mistake. */
            char line[256];
            snprintf(line, sizeof line,
                     "%s: blob %.64s is missing from the "
                     "blob store",
                     what, key);
            if (ctx->deps.log)
                ctx->deps.log(ctx->deps.log_ctx, line);
            mr__http_problem(resp, 503, "the file is missing from storage");
        } else {
            mr__http_problem_err(ctx, resp, &err);
        }
        return false;
    }
    snprintf(dl->type, sizeof dl->type, "%s", type);
    resp->status = 200;
    resp->content_type = dl->type;
    mr_buf_reset(&resp->body);
    if (dl->map.len == 0) {
        /* Nothing to stream, and no stream to keep `type` alive. */
        download_done(dl);
        resp->content_type = "application/octet-stream";
        return true;
    }
    resp->stream = (struct mr__http_stream){.size = dl->map.len,
                                            .read = download_read,
                                            .done = download_done,
                                            .cls = dl};
    return true;
}

void mr__http_get_attachment(const struct mr__http_ctx *ctx,
                             struct mr__http_request *req,
                             struct mr__http_response *resp)
{
    int64_t id;
    if (!mr__http_parse_id(req->id, &id)) {
        mr__http_problem(resp, 404, "no such attachment");
        return;
    }
    struct mr_attachment_view a;
    struct mr_error err = {0};
    int rc = mr_store_get_attachment(ctx->deps.store, req->principal.tenant, id,
                                     &a, &err);
    if (rc == MR_ENOTFOUND) {
        mr__http_problem(resp, 404, "no such attachment");
        return;
    }
    if (rc < 0) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_attach_policy policy;
    mr_attach_policy_from_config(ctx->deps.cfg, &policy);
    struct mr_attach_verdict v;
    mr_attach_judge(&policy, a.filename, a.safe_filename, a.content_type,
                    a.detected_type, &v);
    bool blocked = a.blocked || v.blocked;
    bool mismatch = a.type_mismatch || v.type_mismatch;
    const char *reason =
        a.blocked && a.blocked_reason ? a.blocked_reason : v.reason;
    /* clamd.on_error: block fails closed: what the antivirus has not
     * cleared (still pending, or it failed) is refused like a blocked
     * file. Judged with the configuration in force, like the policy. */
    const struct mr_config *cfg = ctx->deps.cfg;
    bool rescanning_clean = a.scan && strcmp(a.scan, "pending") == 0 &&
                            a.scan_previous &&
                            strcmp(a.scan_previous, "clean") == 0;
    bool unscanned = cfg->clamd.on_error_block &&
                     (cfg->clamd.socket || cfg->clamd.address) && a.scan &&
                     ((strcmp(a.scan, "pending") == 0 && !rescanning_clean) ||
                      strcmp(a.scan, "error") == 0);
    /* Found infected: so it stays while a rescan waits or fails, until a
     * clean verdict lifts the block. */
    bool quarantined =
        (a.scan && strcmp(a.scan, "infected") == 0) ||
        (a.blocked && a.blocked_reason &&
         strncmp(a.blocked_reason, MR_SCAN_INFECTED_PREFIX,
                 strlen(MR_SCAN_INFECTED_PREFIX)) == 0);
    /* No bytes first: a record over the size limit is 404 for everyone,
     * whatever libmagic made of its first chunk (random data sometimes
     * looks like an executable, which made the answer depend on luck). */
    if (a.truncated) {
        mr__http_problem(resp, 404,
                         "attachment %lld was over the size limit (%lld "
                         "bytes) and was not stored",
                         (long long)id, (long long)a.size);
    } else if (quarantined) {
        /* Quarantine: a file clamd named is served to no one, admins
         * included; the bytes stay in the blob store for the operator. */
        mr__http_problem(resp, 403,
                         "attachment %lld is blocked (%s): it is not served",
                         (long long)id,
                         a.blocked_reason && a.blocked_reason[0]
                             ? a.blocked_reason
                             : "infected");
    } else if (unscanned && (req->principal.role & MR_AUTH_ADMIN) == 0) {
        mr__http_problem(resp, 403,
                         "attachment %lld is blocked (%s): only an admin "
                         "token may download it",
                         (long long)id,
                         strcmp(a.scan, "pending") == 0
                             ? "scan pending: not scanned for viruses yet"
                             : "scan error: it could not be scanned for "
                               "viruses");
    } else if (blocked && (req->principal.role & MR_AUTH_ADMIN) == 0) {
        mr__http_problem(resp, 403,
                         "attachment %lld is blocked (%s): only an admin "
                         "token may download it",
                         (long long)id, reason[0] ? reason : "policy");
    } else if (a.sha256 == NULL || a.sha256[0] == '\0') {
        mr__http_problem(resp, 404,
                         "attachment %lld has no stored bytes: it came with "
                         "a provider webhook event",
                         (long long)id);
    } else {
        char what[48];
        snprintf(what, sizeof what, "attachment %lld", (long long)id);
        const char *type =
            mr_attach_serve_type(a.detected_type, blocked, mismatch);
        if (stream_blob(ctx, what, a.sha256, type, resp)) {
            char fallback[40];
            snprintf(fallback, sizeof fallback, "attachment-%lld",
                     (long long)id);
            struct mr_buf cd;
            mr_buf_init(&cd, MR_ATTACH_DISPOSITION_MAX + 1);
            mr_attach_content_disposition("attachment", a.safe_filename,
                                          fallback, &cd);
            mr__http_header_add(resp, "Content-Disposition", "%s",
                                cd.p ? cd.p : "attachment");
            mr_buf_release(&cd);
            mr__http_header_add(resp, "X-Content-Type-Options", "nosniff");
            /* Whatever a browser makes of the bytes, it runs nothing. */
            mr__http_header_add(resp, "Content-Security-Policy", "sandbox");
        }
    }
    mr_attachment_view_clear(&a);
}

static bool is_sha256_hex(mr_span s)
{
    if (s.n != 64)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

void mr__http_get_inline(const struct mr__http_ctx *ctx,
                         struct mr__http_request *req,
                         struct mr__http_response *resp)
{
    if (!is_sha256_hex(req->id)) {
        mr__http_problem(resp, 404, "no inline image here");
        return;
    }
    char key[65];
    memcpy(key, req->id.p, 64);
    key[64] = '\0';
    char *type = NULL;
    struct mr_error err = {0};
    int rc = mr_store_find_inline(ctx->deps.store, req->principal.tenant, key,
                                  &type, &err);
    if (rc < 0 && rc != MR_ENOTFOUND) {
        mr__http_problem_err(ctx, resp, &err);
        return;
    }
    struct mr_attach_policy policy;
    mr_attach_policy_from_config(ctx->deps.cfg, &policy);
    if (rc == MR_ENOTFOUND || !mr_attach_is_raster_image(type) ||
        mr_attach_type_blocked(&policy, type)) {
        /* Not an image of this tenant's that may be shown: the same answer
         * whether it exists elsewhere, is blocked, or is not an image. */
        mr__http_problem(resp, 404, "no inline image %s", key);
        free(type);
        return;
    }
    char what[96];
    snprintf(what, sizeof what, "inline image %s", key);
    if (stream_blob(ctx, what, key, type, resp)) {
        mr__http_header_add(resp, "Content-Disposition", "inline");
        mr__http_header_add(resp, "X-Content-Type-Options", "nosniff");
        mr__http_header_add(resp, "Content-Security-Policy", "sandbox");
        /* Content-addressed: the bytes behind this URL never change, but
         * they are the tenant's, so no shared cache may keep them. */
        mr__http_header_add(resp, "Cache-Control", "private, max-age=86400");
    }
    free(type);
}
