/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webhook_sig.h - the provider webhook's X-Email-Signature (HMAC-SHA256).
 *
 * Two forms share the one header (../shared/vectors/README.md):
 *   hex          <64 hex digits>: HMAC-SHA256(secret, body). Either case.
 *                Authentic but replayable: kept for the seed's senders.
 *   timestamped  t=<unix seconds>,v1=<hex>[,v1=<hex>...]: each v1 is
 *                HMAC-SHA256(secret, "<t>." + body). Exactly one t of 1-10
 *                decimal digits, within tolerance of now in both
 *                directions; any v1 matching any active secret passes
 *                (key rotation); unknown elements (v0=...) are ignored;
 *                elements may be separated by "," plus spaces.
 * A value containing '=' is the timestamped form, any other the hex form.
 * The key is the secret's bytes as written; the body is hashed exactly as
 * received, never a re-serialisation.
 *
 * MACs are compared with CRYPTO_memcmp (constant time). Everything is
 * bounded: the header at MR_WEBHOOK_MAX_HEADER bytes and
 * MR_WEBHOOK_MAX_ELEMENTS elements. No state, thread-safe.
 */
#ifndef MR_WEBHOOK_SIG_H
#define MR_WEBHOOK_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define MR_WEBHOOK_SIG_HEADER "X-Email-Signature"
#define MR_WEBHOOK_MAX_HEADER 4096
#define MR_WEBHOOK_MAX_ELEMENTS 32
#define MR_WEBHOOK_MAX_SECRETS 4
#define MR_WEBHOOK_TOLERANCE_DEFAULT 300

/* 0 when header_value is a valid signature of body[0..len) under secret
 * at time now_s (Unix seconds); tolerance_s <= 0 means
 * MR_WEBHOOK_TOLERANCE_DEFAULT. MR_EINVAL otherwise, with a reason that
 * names no secret material: missing, malformed, mismatch, or a timestamp
 * outside the window (a replay). */
int mr_webhook_verify(const char *secret, const char *header_value,
                      const void *body, size_t len, int64_t now_s,
                      int tolerance_s, struct mr_error *err);

/* The same with up to MR_WEBHOOK_MAX_SECRETS active secrets (current and
 * previous during a rotation): a signature under any of them passes. */
int mr_webhook_verify_any(const char *const *secrets, size_t nsecrets,
                          const char *header_value, const void *body,
                          size_t len, int64_t now_s, int tolerance_s,
                          struct mr_error *err);

/* Writes a header value signing body: the hex form when t < 0, else
 * "t=<t>,v1=<hex>". out needs 96 bytes; returns 0 or MR_EINVAL (out too
 * small). For outbound webhooks and tests. */
int mr_webhook_sign(const char *secret, int64_t t, const void *body, size_t len,
                    char *out, size_t size, struct mr_error *err);

#define MR_WEBHOOK_MAC_LEN 32
/* HMAC-SHA256(key[0..klen), prefix || body): the one HMAC of inbound and
 * outbound webhooks. */
int mr_webhook_hmac(const void *key, size_t klen, const void *prefix,
                    size_t plen, const void *body, size_t len,
                    unsigned char mac[MR_WEBHOOK_MAC_LEN], struct mr_error *err);

/* Standard Webhooks v1: "v1,<base64 HMAC-SHA256(key, id.ts.body)>" into
 * out (at least MR_WEBHOOK_STD_SIG_LEN bytes). A "whsec_<base64>" secret
 * signs with the decoded bytes, any other with its bytes as written. */
#define MR_WEBHOOK_STD_SIG_LEN 48
int mr_webhook_sign_std(const char *secret, const char *msg_id, int64_t ts,
                        const void *body, size_t len, char *out, size_t size,
                        struct mr_error *err);

#endif
