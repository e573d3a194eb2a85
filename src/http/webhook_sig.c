/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webhook_sig.c - verifying (and producing) X-Email-Signature values.
 *
 * The header is parsed completely before any MAC is computed, so a
 * malformed value costs nothing but the scan; then each candidate MAC is
 * decoded from hex (either case) to 32 bytes and compared to the expected
 * MAC with CRYPTO_memcmp. The expected MACs are computed once per secret,
 * not once per candidate.
 */
#include "http/webhook_sig.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAC_LEN 32

int mr_webhook_hmac(const void *key, size_t klen, const void *prefix,
                    size_t plen, const void *body, size_t len,
                    unsigned char mac[MR_WEBHOOK_MAC_LEN], struct mr_error *err)
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t out = 0;
    /* OpenSSL refuses a zero-length key pointer of NULL; "" is fine. */
    int ok =
        c != NULL &&
        EVP_MAC_init(c, klen ? key : (const void *)"", klen, params) == 1 &&
        (plen == 0 || EVP_MAC_update(c, prefix, plen) == 1) &&
        (len == 0 || EVP_MAC_update(c, body, len) == 1) &&
        EVP_MAC_final(c, mac, &out, MAC_LEN) == 1 && out == MAC_LEN;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    if (!ok)
        return mr_error_set(err, MR_EIO, "HMAC-SHA256 is not available");
    return 0;
}

/* HMAC-SHA256(key, prefix || body) with the key's bytes as written. */
static int hmac_sha256(const char *key, const void *prefix, size_t plen,
                       const void *body, size_t len, unsigned char mac[MAC_LEN],
                       struct mr_error *err)
{
    return mr_webhook_hmac(key, strlen(key), prefix, plen, body, len, mac, err);
}

int mr_webhook_sign_std(const char *secret, const char *msg_id, int64_t ts,
                        const void *body, size_t len, char *out, size_t size,
                        struct mr_error *err)
{
    /* whsec_<base64> is the Standard Webhooks form: the key is the decoded
     * bytes. Any other secret is used as written, like the inbound one. */
    unsigned char key[256];
    const void *k = secret;
    size_t klen = strlen(secret);
    if (strncmp(secret, "whsec_", 6) == 0) {
        size_t bl = klen - 6;
        if (bl == 0 || bl % 4 != 0 || bl / 4 * 3 > sizeof key)
            return mr_error_set(err, MR_EINVAL,
                                "a whsec_ secret must be base64 of at most "
                                "%zu bytes", sizeof key);
        int kl = EVP_DecodeBlock(key, (const unsigned char *)secret + 6,
                                 (int)bl);
        if (kl < 0)
            return mr_error_set(err, MR_EINVAL,
                                "a whsec_ secret is not valid base64");
        /* EVP_DecodeBlock counts the '=' padding as zero bytes. */
        kl -= (secret[klen - 1] == '=') + (secret[klen - 2] == '=');
        k = key;
        klen = (size_t)kl;
    }
    char prefix[160];
    int pl = snprintf(prefix, sizeof prefix, "%s.%lld.", msg_id,
                      (long long)ts);
    if (pl < 0 || (size_t)pl >= sizeof prefix)
        return mr_error_set(err, MR_EINVAL, "the webhook id is too long");
    unsigned char mac[MAC_LEN];
    int rc = mr_webhook_hmac(k, klen, prefix, (size_t)pl, body, len, mac, err);
    OPENSSL_cleanse(key, sizeof key);
    if (rc < 0)
        return rc;
    if (size < 3 + 45)
        return mr_error_set(err, MR_EINVAL, "signature buffer too small");
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, MAC_LEN);
    return 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Exactly 64 hex digits (either case) -> 32 bytes. */
static bool hex_mac(const char *p, size_t n, unsigned char mac[MAC_LEN])
{
    if (n != 2 * MAC_LEN)
        return false;
    for (size_t i = 0; i < MAC_LEN; i++) {
        int hi = hexval((unsigned char)p[2 * i]);
        int lo = hexval((unsigned char)p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        mac[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static bool is_sp(char c)
{
    return c == ' ' || c == '\t';
}

/* One parsed element "key=value" of the timestamped form. */
struct element {
    const char *k, *v;
    size_t kn, vn;
};

/* Splits on ',' and then on the first '='; trims spaces around each
 * element. Any element without '=' (an empty one included) makes the
 * whole value malformed, as the reference verifier says. */
static int split_elements(const char *p, size_t n, struct element *el,
                          size_t *nel, struct mr_error *err)
{
    size_t count = 0, i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && p[i] != ',')
            i++;
        size_t a = start, b = i;
        while (a < b && is_sp(p[a]))
            a++;
        while (b > a && is_sp(p[b - 1]))
            b--;
        const char *eq = memchr(p + a, '=', b - a);
        if (eq == NULL)
            return mr_error_set(err, MR_EINVAL,
                                "signature element without '='");
        if (count == MR_WEBHOOK_MAX_ELEMENTS)
            return mr_error_set(err, MR_EINVAL,
                                "signature has too many elements");
        el[count].k = p + a;
        el[count].kn = (size_t)(eq - (p + a));
        el[count].v = eq + 1;
        el[count].vn = b - (size_t)(eq + 1 - p);
        count++;
        if (i == n)
            break;
        i++; /* past ',' */
    }
    *nel = count;
    return 0;
}

static bool key_is(const struct element *e, const char *k)
{
    return e->kn == strlen(k) && memcmp(e->k, k, e->kn) == 0;
}

static int verify_hex(const char *const *secrets, size_t nsecrets,
                      const char *v, size_t vn, const void *body, size_t len,
                      struct mr_error *err)
{
    unsigned char got[MAC_LEN], want[MAC_LEN];
    if (!hex_mac(v, vn, got))
        return mr_error_set(err, MR_EINVAL,
                            "signature is not 64 hexadecimal digits");
    bool match = false;
    for (size_t s = 0; s < nsecrets; s++) {
        int rc = hmac_sha256(secrets[s], NULL, 0, body, len, want, err);
        if (rc < 0)
            return rc;
        /* No early exit: every secret costs the same. */
        match |= CRYPTO_memcmp(got, want, MAC_LEN) == 0;
    }
    if (!match)
        return mr_error_set(err, MR_EINVAL, "signature does not match");
    return 0;
}

static int verify_timestamped(const char *const *secrets, size_t nsecrets,
                              const char *v, size_t vn, const void *body,
                              size_t len, int64_t now_s, int tolerance_s,
                              struct mr_error *err)
{
    struct element el[MR_WEBHOOK_MAX_ELEMENTS];
    size_t nel = 0;
    int rc = split_elements(v, vn, el, &nel, err);
    if (rc < 0)
        return rc;

    const struct element *t = NULL;
    size_t nsig = 0;
    for (size_t i = 0; i < nel; i++) {
        if (key_is(&el[i], "t")) {
            if (t != NULL)
                return mr_error_set(err, MR_EINVAL,
                                    "signature has more than one t");
            t = &el[i];
        } else if (key_is(&el[i], "v1")) {
            nsig++;
        }
    }
    if (t == NULL)
        return mr_error_set(err, MR_EINVAL, "signature has no timestamp t");
    if (nsig == 0)
        return mr_error_set(err, MR_EINVAL, "signature has no v1");
    /* 1-10 digits: seconds until the year 2286; milliseconds (13 digits)
     * and signs are refused rather than guessed at. */
    if (t->vn < 1 || t->vn > 10)
        return mr_error_set(err, MR_EINVAL, "signature timestamp malformed");
    int64_t ts = 0;
    for (size_t i = 0; i < t->vn; i++) {
        if (t->v[i] < '0' || t->v[i] > '9')
            return mr_error_set(err, MR_EINVAL,
                                "signature timestamp malformed");
        ts = ts * 10 + (t->v[i] - '0');
    }
    int64_t tol = tolerance_s > 0 ? tolerance_s : MR_WEBHOOK_TOLERANCE_DEFAULT;
    int64_t skew = now_s > ts ? now_s - ts : ts - now_s;
    if (skew > tol)
        return mr_error_set(err, MR_EINVAL,
                            "signature timestamp outside the %d s window "
                            "(replayed or clock skew)",
                            (int)tol);

    /* The signed prefix is the timestamp as a number, as the reference
     * verifier formats it ("%d."), followed by the raw body. */
    char prefix[24];
    int plen = snprintf(prefix, sizeof prefix, "%lld.", (long long)ts);
    unsigned char want[MR_WEBHOOK_MAX_SECRETS][MAC_LEN];
    for (size_t s = 0; s < nsecrets; s++) {
        rc = hmac_sha256(secrets[s], prefix, (size_t)plen, body, len, want[s],
                         err);
        if (rc < 0)
            return rc;
    }
    bool match = false;
    for (size_t i = 0; i < nel; i++) {
        unsigned char got[MAC_LEN];
        /* A v1 that is not a MAC (rotation garbage) is skipped, not fatal:
         * another v1 may still be good. */
        if (!key_is(&el[i], "v1") || !hex_mac(el[i].v, el[i].vn, got))
            continue;
        for (size_t s = 0; s < nsecrets; s++)
            match |= CRYPTO_memcmp(got, want[s], MAC_LEN) == 0;
    }
    if (!match)
        return mr_error_set(err, MR_EINVAL, "signature does not match");
    return 0;
}

int mr_webhook_verify_any(const char *const *secrets, size_t nsecrets,
                          const char *header_value, const void *body,
                          size_t len, int64_t now_s, int tolerance_s,
                          struct mr_error *err)
{
    if (nsecrets == 0 || nsecrets > MR_WEBHOOK_MAX_SECRETS)
        return mr_error_set(err, MR_EINVAL, "no webhook secret configured");
    for (size_t s = 0; s < nsecrets; s++)
        if (secrets[s] == NULL || secrets[s][0] == '\0')
            return mr_error_set(err, MR_EINVAL, "no webhook secret configured");
    if (header_value == NULL)
        return mr_error_set(err, MR_EINVAL, "missing %s header",
                            MR_WEBHOOK_SIG_HEADER);
    size_t n = strnlen(header_value, MR_WEBHOOK_MAX_HEADER + 1);
    if (n > MR_WEBHOOK_MAX_HEADER)
        return mr_error_set(err, MR_EINVAL, "%s header too long",
                            MR_WEBHOOK_SIG_HEADER);
    /* HTTP strips optional whitespace around a field value; a proxy or a
     * test harness may not, so do it again. */
    const char *v = header_value;
    while (n > 0 && is_sp(*v)) {
        v++;
        n--;
    }
    while (n > 0 && is_sp(v[n - 1]))
        n--;
    if (n == 0)
        return mr_error_set(err, MR_EINVAL, "empty %s header",
                            MR_WEBHOOK_SIG_HEADER);
    if (body == NULL && len > 0)
        return mr_error_set(err, MR_EINVAL, "no body");
    if (memchr(v, '=', n) == NULL)
        return verify_hex(secrets, nsecrets, v, n, body, len, err);
    return verify_timestamped(secrets, nsecrets, v, n, body, len, now_s,
                              tolerance_s, err);
}

int mr_webhook_verify(const char *secret, const char *header_value,
                      const void *body, size_t len, int64_t now_s,
                      int tolerance_s, struct mr_error *err)
{
    const char *secrets[1] = {secret};
    return mr_webhook_verify_any(secrets, 1, header_value, body, len, now_s,
                                 tolerance_s, err);
}

int mr_webhook_sign(const char *secret, int64_t t, const void *body, size_t len,
                    char *out, size_t size, struct mr_error *err)
{
    static const char digits[] = "0123456789abcdef";
    if (size < 96)
        return mr_error_set(err, MR_EINVAL, "signature buffer too small");
    out[0] = '\0';
    char prefix[24] = "";
    int plen = 0;
    if (t >= 0)
        plen = snprintf(prefix, sizeof prefix, "%lld.", (long long)t);
    unsigned char mac[MAC_LEN];
    int rc = hmac_sha256(secret ? secret : "", prefix, (size_t)plen, body, len,
                         mac, err);
    if (rc < 0)
        return rc;
    char hex[2 * MAC_LEN + 1];
    for (size_t i = 0; i < MAC_LEN; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[2 * MAC_LEN] = '\0';
    if (t >= 0)
        snprintf(out, size, "t=%lld,v1=%s", (long long)t, hex);
    else
        snprintf(out, size, "%s", hex);
    return 0;
}
