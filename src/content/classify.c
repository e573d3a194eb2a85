/* SPDX-License-Identifier: Apache-2.0 */
/*
 * classify.c - auto-reply, bounce and list classification over the event.
 *
 * The rules are tables of header names and phrases, tried in the order
 * classify.h documents. Measured on the sisimai corpus (tests/classify/,
 * docs/classification.md): every phrase and vendor rule below is there
 * because a real MTA or client writes it.
 *
 * Text rules never fire on their own: a DSN-like body counts only when the
 * sender is a mail system (null return path, MAILER-DAEMON, postmaster),
 * because a person who forwards a bounce to the helpdesk ("my mail to X
 * bounced, help") wrote a human message that must open a ticket.
 *
 * Matching is ASCII case-insensitive (a folded copy of a bounded prefix of
 * the text, searched with memmem); non-ASCII phrases match byte for byte
 * and are written here in the case MTAs use.
 */
#include "classify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../mime/msgid.h"
#include "../util/arena.h"
#include "../util/buf.h"
#include "../util/span.h"
#include "../util/utf8.h"

const char *mr_classify_kind_name(enum mr_auto_kind kind)
{
    switch (kind) {
    case MR_AUTO_AUTOREPLY: return "autoreply";
    case MR_AUTO_BOUNCE: return "bounce";
    case MR_AUTO_LIST: return "list";
    case MR_AUTO_NONE: break;
    }
    return "none";
}

/* ------------------------------------------------------------------ */
/* What the rules read, borrowed from the event                         */

struct cls {
    const json_t *headers;     /* object or NULL */
    const json_t *report;      /* object or NULL */
    const json_t *attachments; /* array or NULL */
    const json_t *from;        /* object or NULL */
    const char *mail_from;     /* NULL: unknown */
    const char *text;          /* "" when absent */
    size_t text_n;             /* bounded by MR_CLASSIFY_SCAN_BYTES */
    char subject[512];         /* folded prefix of the decoded subject */
    size_t subject_n;
    char *ftext; /* folded text, made on first use */
    bool ftext_done;
    struct mr_arena *arena; /* for mr_msgid_parse, made on first use */
};

static const char *jstr(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The i-th value of a header (a string, or an array when it repeats). */
static const char *hdr(const struct cls *c, const char *name, size_t i)
{
    const json_t *v = json_object_get(c->headers, name);
    if (json_is_string(v))
        return i == 0 ? json_string_value(v) : NULL;
    if (json_is_array(v) && i < json_array_size(v) &&
        i < MR_CLASSIFY_MAX_VALUES) {
        const json_t *e = json_array_get(v, i);
        return json_is_string(e) ? json_string_value(e) : NULL;
    }
    return NULL;
}

static void fold(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)mr_lower((unsigned char)src[i]);
}

static mr_span ftext(struct cls *c)
{
    if (!c->ftext_done) {
        c->ftext_done = true;
        if (c->text_n > 0) {
            c->ftext = mr_xmalloc(c->text_n + 1);
            fold(c->ftext, c->text, c->text_n);
            c->ftext[c->text_n] = '\0';
        }
    }
    return mr_span_make(c->ftext ? c->ftext : "", c->ftext ? c->text_n : 0);
}

/* s (already folded) contains the folded literal lit. */
static bool has(mr_span s, const char *lit)
{
    size_t n = strlen(lit);
    return n > 0 && s.n >= n && memmem(s.p, s.n, lit, n) != NULL;
}

/* The first entry of a NULL-terminated phrase table found in s. */
static const char *find_any(mr_span s, const char *const *table)
{
    for (size_t i = 0; table[i]; i++)
        if (has(s, table[i]))
            return table[i];
    return NULL;
}

/* ASCII case-insensitive search in an unfolded, NUL-terminated value. */
static bool icontains(const char *s, const char *lit)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s), m = strlen(lit);
    for (size_t i = 0; i + m <= n; i++)
        if (mr_span_istarts(mr_span_make(s + i, m), lit))
            return true;
    return false;
}

static mr_span trimmed(const char *s)
{
    return mr_span_trim(mr_span_cstr(s));
}

/* Copies n bytes of src into dst[cap], cut back to a character boundary. */
static void put(char *dst, size_t cap, const char *src, size_t n)
{
    if (cap == 0)
        return;
    if (src == NULL)
        n = 0;
    if (n > cap - 1)
        n = cap - 1;
    if (n > 0)
        memcpy(dst, src, n);
    dst[mr_utf8_valid_prefix(dst, n)] = '\0';
}

static void reason(struct mr_classification *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reason(struct mr_classification *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
    if (n < 0)
        out->reason[0] = '\0';
    size_t len = strlen(out->reason);
    out->reason[mr_utf8_valid_prefix(out->reason, len)] = '\0';
}

/* "name: value" as the reason, the value trimmed and cut at 60 bytes. */
static void reason_field(struct mr_classification *out, const char *name,
                         const char *value)
{
    mr_span v = trimmed(value);
    reason(out, "%s: %.*s", name, (int)(v.n > 60 ? 60 : v.n), v.p);
}

/* ------------------------------------------------------------------ */
/* Phrase tables (folded)                                              */

/* Subjects of non-delivery, delay and delivery reports. */
static const char *const dsn_subjects[] = {
    "undeliver",
    "undelivered",
    "non-delivery",
    "nondelivery",
    "delivery status notification",
    "delivery notification",
    "delivery status",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "failed delivery",
    "failure delivery",
    "failure notice",
    "mail delivery",
    "returned mail",
    "return mail",
    "returned to sender",
    "returning to sender",
    "mail failed",
    "mail system error",
    "could not be delivered",
    "couldn't be delivered",
    "not delivered",
    "delivery problem",
    "delayed",
    "could not send",
    "mail failure",
    "message delivery",
    "bounce",
    "error sending your mail",
    "nicht zustellbar",
    "unzustellbar",
    "non remis",
    "non recapitabile",
    "no entregado",
    "не доставлено",
    "配信できません",
    "配信エラー",
    "送信エラー",
    "メールエラー",
    "エラー通知",
    "送達できません",
    "退信",
    "未送达",
    "投递失败",
    NULL,
};

/* What DSN bodies say; any one of them, from a mail system sender. */
static const char *const dsn_phrases[] = {
    "could not be delivered",
    "couldn't be delivered",
    "was not delivered",
    "wasn't delivered",
    "not be delivered",
    "undeliverable",
    "undelivered",
    "delivery has failed",
    "delivery to the following recipient",
    "permanent fatal error",
    "permanent error",
    "failed permanently",
    "delivery failed",
    "delivery failure",
    "unable to deliver",
    "could not deliver",
    "couldn't deliver",
    "able to deliver",
    "error delivering",
    "trouble delivering",
    "did not reach",
    "returning message to sender",
    "returned to sender",
    "user unknown",
    "unknown user",
    "no such user",
    "unknown recipient",
    "recipient unknown",
    "mailbox unavailable",
    "mailbox full",
    "mailbox is full",
    "quota exceeded",
    "over quota",
    "address rejected",
    "host unknown",
    "unknown host",
    "host not found",
    "no valid recipients",
    "failed addresses",
    "this is the mail system at host",
    "this is the postfix program",
    "qmail-send program",
    "transcript of session follows",
    "the original message was received",
    "delivery status notification",
    "has been delayed",
    "delivery is delayed",
    "will be retried",
    "still being retried",
    "could not send mail",
    "not yet been delivered",
    "does not exist",
    "not listed in",
    "mailbox not found",
    "invalid recipient",
    "relay access denied",
    "relaying denied",
    "message was rejected",
    "was rejected",
    "rejected your message",
    "delivery attempts",
    "unzustellbar",
    "nicht zugestellt",
    "nicht zustellbar",
    "zustellung fehlgeschlagen",
    "non remis",
    "n'a pas pu être",
    "не доставлено",
    "не может быть доставлено",
    "не удалось доставить",
    "配信できません",
    "配信できませんでした",
    "届きませんでした",
    "送信できません",
    "送達できません",
    "宛先不明",
    "あて先不明",
    "退信",
    "无法投递",
    "无法送达",
    "投递失败",
    "未能送达",
    "no se pudo entregar",
    "não foi possível entregar",
    "impossibile recapitare",
    "non recapitabile",
    NULL,
};

/* Subjects of out-of-office and other auto-replies, matched at the start
 * of the folded subject. */
static const char *const ooo_subjects[] = {
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autorespon",
    "automated reply",
    "automated response",
    "out of office",
    "out of the office",
    "ooo:",
    "on vacation",
    "vacation reply",
    "vacation notice",
    "away from the office",
    "away from my desk",
    "abwesenheitsnotiz",
    "automatische antwort",
    "abwesend",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "absent du bureau",
    "risposta automatica",
    "fuori ufficio",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "resposta automática",
    "resposta automatica",
    "automatisch antwoord",
    "niet aanwezig",
    "afwezig",
    "autosvar",
    "automatisk svar",
    "automaattinen vastaus",
    "automatyczna odpowiedź",
    "poza biurem",
    "автоматический ответ",
    "Автоматический ответ",
    "автоответ",
    "Автоответ",
    "自动回复",
    "自動回覆",
    "自动答复",
    "自動返信",
    "自動応答",
    "자동 응답",
    "자동응답",
    NULL,
};

/* Local parts of mail system senders. */
static const char *const daemon_locals[] = {
    "mailer-daemon",
    "mailer_daemon",
    "mailerdaemon",
    "mail-daemon",
    "maildaemon",
    "postmaster",
    "post_master",
    "mail.delivery.system",
    "mail-delivery-system",
    "mdaemon",
    NULL,
};

/* ------------------------------------------------------------------ */
/* Bounce details                                                      */

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alnum(char ch)
{
    return is_digit(ch) || (mr_lower((unsigned char)ch) >= 'a' &&
                            mr_lower((unsigned char)ch) <= 'z');
}

/* Length of an RFC 3463 code "c.sss.ddd" at p (class 2, 4 or 5), 0 when
 * there is none. A dotted version or address (1.5.1.1, 192.0.2.1) is not
 * one: the code may not be preceded or followed by a digit or ".digit". */
static size_t status_at(const char *p, size_t avail)
{
    if (avail < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
        return 0;
    size_t i = 2, d = 0;
    while (i < avail && is_digit(p[i]) && d < 4) {
        i++;
        d++;
    }
    if (d == 0 || d > 3 || i >= avail || p[i] != '.')
        return 0;
    i++;
    d = 0;
    while (i < avail && is_digit(p[i]) && d < 4) {
        i++;
        d++;
    }
    if (d == 0 || d > 3)
        return 0;
    if (i < avail && (is_alnum(p[i]) ||
                      (p[i] == '.' && i + 1 < avail && is_digit(p[i + 1]))))
        return 0;
    return i;
}

/* The first 4.x.x or 5.x.x code in s[0..n): offset and length, or false. */
static bool find_status(const char *s, size_t n, size_t *at, size_t *len)
{
    for (size_t i = 0; i + 5 <= n; i++) {
        if (s[i] != '4' && s[i] != '5')
            continue;
        if (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '.'))
            continue;
        size_t l = status_at(s + i, n - i);
        if (l) {
            *at = i;
            *len = l;
            return true;
        }
    }
    return false;
}

static void put_status(struct mr_classification *out, const char *s)
{
    if (s == NULL)
        return;
    size_t n = strlen(s), at, len;
    if (find_status(s, n, &at, &len))
        put(out->status, sizeof(out->status), s + at, len);
    else {
        /* A report may say 2.0.0 (delivered): keep it as it is. */
        mr_span t = trimmed(s);
        size_t l = status_at(t.p, t.n);
        if (l)
            put(out->status, sizeof(out->status), t.p, l);
    }
}

static bool addr_char(char ch)
{
    return is_alnum(ch) || (ch != '\0' && strchr(".-_+=%!#$&'*/?^`{|}~", ch)) ||
           (unsigned char)ch >= 0x80;
}

/* The first address (local@domain, brackets optional) in s[0..n): a
 * local part of at most 256 bytes, a dotted domain of at most 255. */
static bool find_address(const char *s, size_t n, mr_span *addr)
{
    for (size_t i = 1; i < n; i++) {
        if (s[i] != '@')
            continue;
        size_t b = i, e = i + 1;
        while (b > 0 && addr_char(s[b - 1]) && i - b <= 256)
            b--;
        while (e < n &&
               (is_alnum(s[e]) || s[e] == '.' || s[e] == '-' ||
                (unsigned char)s[e] >= 0x80) &&
               e - i <= 256)
            e++;
        while (e > i + 1 && s[e - 1] == '.')
            e--;
        if (b < i && i - b <= 256 && e > i + 1 && e - i - 1 <= 255 &&
            memchr(s + i + 1, '.', e - i - 1)) {
            *addr = mr_span_make(s + b, e - b);
            return true;
        }
    }
    return false;
}

/* An address for the result: brackets and "rfc822;" gone, domain lower. */
static void put_address(struct mr_classification *out, mr_span a)
{
    a = mr_span_trim(a);
    const char *semi = memchr(a.p, ';', a.n);
    if (semi)
        a = mr_span_trim(
            mr_span_make(semi + 1, (size_t)(a.p + a.n - semi - 1)));
    mr_span inner;
    if (!find_address(a.p, a.n, &inner))
        inner = a;
    put(out->recipient, sizeof(out->recipient), inner.p, inner.n);
    char *at = strrchr(out->recipient, '@');
    for (char *p = at; p && *p; p++)
        *p = (char)mr_lower((unsigned char)*p);
}

static void msgid_from(struct cls *c, struct mr_classification *out,
                       mr_span raw)
{
    if (c->arena == NULL)
        c->arena = mr_arena_new();
    unsigned flags = 0;
    const char *id = mr_msgid_parse(
        c->arena, raw, sizeof(out->original_message_id) - 1, &flags);
    if (id)
        put(out->original_message_id, sizeof(out->original_message_id), id,
            strlen(id));
}

/* The returned message's id quoted in the body: a "Message-ID:" field at
 * the start of a line (after indentation or "> "), its value on the same
 * or the next line. */
static void msgid_in_text(struct cls *c, struct mr_classification *out)
{
    mr_span f = ftext(c);
    size_t pos = 0;
    for (int hits = 0; hits < MR_CLASSIFY_MAX_VALUES && pos < f.n; hits++) {
        const char *m = memmem(f.p + pos, f.n - pos, "message-id:", 11);
        if (m == NULL)
            return;
        size_t at = (size_t)(m - f.p);
        pos = at + 11;
        size_t b = at;
        while (b > 0 &&
               (f.p[b - 1] == ' ' || f.p[b - 1] == '\t' || f.p[b - 1] == '>'))
            b--;
        /* "Original-Message-ID:" and "X-Message-ID:" name other things;
         * a quoted field starts its line. */
        if (b > 0 && f.p[b - 1] != '\n')
            continue;
        size_t e = pos;
        while (e < f.n && f.p[e] != '\n')
            e++;
        mr_span v = mr_span_trim(mr_span_make(c->text + pos, e - pos));
        if (v.n == 0 && e < f.n) {
            size_t e2 = e + 1;
            while (e2 < f.n && f.p[e2] != '\n')
                e2++;
            v = mr_span_trim(mr_span_make(c->text + e + 1, e2 - e - 1));
        }
        if (v.n == 0)
            continue;
        msgid_from(c, out, v);
        if (out->original_message_id[0])
            return;
    }
}

/* Amazon SES notifications carry the original header fields as JSON:
 * {"name":"Message-ID","value":"<...>"} or "messageId":"<...>". */
static void msgid_in_ses(struct cls *c, struct mr_classification *out)
{
    static const char *const keys[] = {
        "\"name\":\"message-id\",\"value\":\"",
        "\"messageid\":\"<",
        NULL,
    };
    mr_span f = ftext(c);
    for (size_t k = 0; keys[k] && !out->original_message_id[0]; k++) {
        const char *m = memmem(f.p, f.n, keys[k], strlen(keys[k]));
        if (m == NULL)
            continue;
        size_t at = (size_t)(m - f.p) + strlen(keys[k]);
        if (keys[k][strlen(keys[k]) - 1] == '<')
            at--;
        size_t e = at;
        while (e < f.n && f.p[e] != '"' && e - at < 1000)
            e++;
        msgid_from(c, out, mr_span_make(c->text + at, e - at));
    }
}

/* Where the returned message starts in the text: the first line that is
 * a Received: or Return-Path: field. Diagnostics come before it; numbers
 * after it are the original's (ids, dates, ports). */
static size_t diagnostic_len(struct cls *c)
{
    mr_span f = ftext(c);
    static const char *const starts[] = {"received:", "return-path:", NULL};
    size_t end = f.n;
    for (size_t k = 0; starts[k]; k++) {
        size_t n = strlen(starts[k]), pos = 0;
        for (int hits = 0; hits < MR_CLASSIFY_MAX_VALUES && pos < end; hits++) {
            const char *m = memmem(f.p + pos, end - pos, starts[k], n);
            if (m == NULL)
                break;
            size_t at = (size_t)(m - f.p);
            if (at == 0 || f.p[at - 1] == '\n') {
                end = at;
                break;
            }
            pos = at + n;
        }
    }
    return end;
}

/* A basic SMTP reply code (RFC 5321 4.2: 4yz or 5yz; servers do send
 * y > 5, "571 No PTR Record") standing as a word: at the start of a line
 * or after white space, '<' ("<<< 550"), ':', '(' or '['; followed by a
 * space, ':' or the end of the line, or by '-' and a non-digit (a
 * multi-line reply, "550-Your message"). Offset of the first one. */
static bool find_reply_code(const char *s, size_t n, size_t *at)
{
    for (size_t i = 0; i + 3 <= n; i++) {
        if ((s[i] != '4' && s[i] != '5') || !is_digit(s[i + 1]) ||
            !is_digit(s[i + 2]))
            continue;
        char before = i > 0 ? s[i - 1] : '\n';
        if (!(before == '\n' || before == ' ' || before == '\t' ||
              before == '<' || before == ':' || before == '(' || before == '['))
            continue;
        char after = i + 3 < n ? s[i + 3] : '\n';
        char next = i + 4 < n ? s[i + 4] : '\n';
        bool ok = after == ' ' || after == ':' || after == '\n' ||
                  after == '\r' ||
                  (after == '-' && !is_digit(next) && next != '\n');
        if (ok) {
            *at = i;
            return true;
        }
    }
    return false;
}

/* "550 User unknown": the class is known, the detail is not (RFC 3463
 * X.0.0, "other undefined status"). */
static void put_reply_class(struct mr_classification *out, char cls)
{
    char code[6] = {cls, '.', '0', '.', '0', '\0'};
    put(out->status, sizeof(out->status), code, 5);
}

/* Status and recipient from the body: the first 4.x.x/5.x.x code, and an
 * address on its line or in an X-Failed-Recipients / Final-Recipient. */
static void status_in_text(struct cls *c, struct mr_classification *out)
{
    size_t diag = diagnostic_len(c);
    size_t at = 0, len = 0;
    bool found = find_status(c->text, diag, &at, &len) ||
                 find_status(c->text, c->text_n, &at, &len);
    if (!found && find_reply_code(c->text, diag, &at)) {
        found = true;
        len = 3;
        if (!out->status[0])
            put_reply_class(out, c->text[at]);
    }
    if (found && !out->status[0])
        put(out->status, sizeof(out->status), c->text + at, len);
    if (out->recipient[0])
        return;
    const char *xf = hdr(c, "x-failed-recipients", 0);
    mr_span a;
    if (xf && find_address(xf, strlen(xf), &a)) {
        put_address(out, a);
        return;
    }
    mr_span f = ftext(c);
    const char *fr = memmem(f.p, f.n, "final-recipient:", 16);
    if (fr) {
        size_t b = (size_t)(fr - f.p) + 16, e = b;
        while (e < f.n && f.p[e] != '\n')
            e++;
        if (find_address(c->text + b, e - b, &a)) {
            put_address(out, a);
            return;
        }
    }
    if (!found)
        return;
    size_t b = at, e = at;
    while (b > 0 && c->text[b - 1] != '\n')
        b--;
    while (e < c->text_n && c->text[e] != '\n')
        e++;
    if (find_address(c->text + b, e - b, &a))
        put_address(out, a);
}

/* Per-recipient fields of the event's report: the first recipient that
 * failed, else the first one. */
static void from_report(struct cls *c, struct mr_classification *out)
{
    const char *id = jstr(c->report, "original_message_id");
    if (id && id[0])
        put(out->original_message_id, sizeof(out->original_message_id), id,
            strlen(id));
    const json_t *rcpts = json_object_get(c->report, "recipients");
    size_t n = json_array_size(rcpts), pick = n;
    for (size_t i = 0; i < n && i < MR_CLASSIFY_MAX_VALUES; i++) {
        const char *act = jstr(json_array_get(rcpts, i), "action");
        if (pick == n)
            pick = i;
        if (act && mr_span_istarts(trimmed(act), "failed")) {
            pick = i;
            break;
        }
    }
    if (pick == n)
        return;
    const json_t *r = json_array_get(rcpts, pick);
    const char *rcpt = jstr(r, "recipient");
    if (rcpt && rcpt[0])
        put_address(out, mr_span_cstr(rcpt));
    const char *act = jstr(r, "action");
    if (act) {
        mr_span t = trimmed(act);
        size_t k = 0;
        while (k < t.n && is_alnum(t.p[k]))
            k++;
        put(out->action, sizeof(out->action), t.p, k);
        for (char *p = out->action; *p; p++)
            *p = (char)mr_lower((unsigned char)*p);
    }
    put_status(out, jstr(r, "status"));
    /* "Status: 5.0.0" with "Diagnostic-Code: smtp; 550 5.1.1 ..." : the
     * diagnostic is the more precise one. */
    const char *diag = jstr(r, "diagnostic");
    size_t at, len;
    if (diag &&
        (!out->status[0] ||
         (strlen(out->status) >= 4 && strcmp(out->status + 1, ".0.0") == 0)) &&
        find_status(diag, strlen(diag), &at, &len))
        put(out->status, sizeof(out->status), diag + at, len);
    if (diag && !out->status[0] && find_reply_code(diag, strlen(diag), &at))
        put_reply_class(out, diag[at]);
}

static void bounce_details(struct cls *c, struct mr_classification *out)
{
    if (c->report)
        from_report(c, out);
    const json_t *atts = c->attachments;
    for (size_t i = 0;
         i < json_array_size(atts) && i < MR_CLASSIFY_MAX_VALUES &&
         !out->original_message_id[0];
         i++) {
        const json_t *m = json_object_get(json_array_get(atts, i), "message");
        const char *id = jstr(m, "message_id");
        if (id && id[0])
            put(out->original_message_id, sizeof(out->original_message_id), id,
                strlen(id));
    }
    if (!out->original_message_id[0])
        msgid_in_text(c, out);
    if (!out->original_message_id[0])
        msgid_in_ses(c, out);
    if (!out->status[0] || !out->recipient[0])
        status_in_text(c, out);

    if (!out->action[0]) {
        mr_span s = mr_span_make(c->subject, c->subject_n);
        bool delayed = out->status[0] == '4' || has(s, "delay") ||
                       has(s, "warning") || has(s, "still being retried");
        put(out->action, sizeof(out->action), delayed ? "delayed" : "failed",
            delayed ? 7 : 6);
    }
    if (out->feedback)
        out->permanent = false;
    else if (out->status[0])
        out->permanent = out->status[0] == '5';
    else
        out->permanent = strcmp(out->action, "failed") == 0;
}

/* ------------------------------------------------------------------ */
/* Rules                                                               */

/* The report-type parameter of a Content-Type value ("" when none). */
static void report_type(const char *ct, char *out, size_t cap)
{
    out[0] = '\0';
    if (ct == NULL)
        return;
    size_t n = strlen(ct);
    for (size_t i = 0; i + 11 <= n; i++) {
        if (!mr_span_istarts(mr_span_make(ct + i, n - i), "report-type"))
            continue;
        size_t j = i + 11;
        while (j < n && (ct[j] == ' ' || ct[j] == '\t'))
            j++;
        if (j >= n || ct[j] != '=')
            continue;
        j++;
        while (j < n && (ct[j] == ' ' || ct[j] == '\t' || ct[j] == '"'))
            j++;
        size_t k = 0;
        while (
            j < n && k + 1 < cap &&
            (is_alnum(ct[j]) || ct[j] == '-' || ct[j] == '_' || ct[j] == '.'))
            out[k++] = (char)mr_lower((unsigned char)ct[j++]);
        out[k] = '\0';
        return;
    }
}

static bool has_attachment_type(const struct cls *c, const char *type)
{
    for (size_t i = 0;
         i < json_array_size(c->attachments) && i < MR_CLASSIFY_MAX_VALUES;
         i++) {
        const char *ct =
            jstr(json_array_get(c->attachments, i), "content_type");
        if (ct && mr_span_ieq(mr_span_cstr(ct), type))
            return true;
    }
    return false;
}

enum sender {
    SENDER_PERSON = 0,
    SENDER_NULL_PATH, /* only the return path says so */
    SENDER_DAEMON,    /* the From address is a mail system's */
};

static bool null_path(mr_span t)
{
    return t.n >= 2 && t.p[0] == '<' && t.p[t.n - 1] == '>' &&
           mr_span_trim(mr_span_make(t.p + 1, t.n - 2)).n == 0;
}

/* Whether the sender is a mail system, and why (into why[cap]). */
static enum sender daemon_sender(const struct cls *c, char *why, size_t cap)
{
    const char *email = jstr(c->from, "email");
    if (email) {
        const char *at = strrchr(email, '@');
        mr_span local =
            mr_span_make(email, at ? (size_t)(at - email) : strlen(email));
        for (size_t i = 0; daemon_locals[i]; i++) {
            if (mr_span_ieq(local, daemon_locals[i])) {
                snprintf(why, cap, "sender %s", daemon_locals[i]);
                return SENDER_DAEMON;
            }
        }
    } else {
        /* "Mail Delivery Subsystem <MAILER-DAEMON>", "MAILER-DAEMON <>":
         * not addresses, but plain enough. */
        const char *raw = jstr(c->from, "raw");
        if (raw == NULL)
            raw = hdr(c, "from", 0);
        if (icontains(raw, "mailer-daemon")) {
            snprintf(why, cap, "sender mailer-daemon");
            return SENDER_DAEMON;
        }
    }
    const char *name = jstr(c->from, "name");
    if (name && (mr_span_istarts(trimmed(name), "mail delivery") ||
                 mr_span_istarts(trimmed(name), "mail.delivery"))) {
        snprintf(why, cap, "sender \"%.40s\"", name);
        why[mr_utf8_valid_prefix(why, strlen(why))] = '\0';
        return SENDER_DAEMON;
    }
    if (c->mail_from && c->mail_from[0] == '\0') {
        snprintf(why, cap, "null envelope sender");
        return SENDER_NULL_PATH;
    }
    /* Without the envelope, the Return-Path the delivering MTA wrote. */
    for (size_t i = 0; c->mail_from == NULL && i < MR_CLASSIFY_MAX_VALUES;
         i++) {
        const char *rp = hdr(c, "return-path", i);
        if (rp == NULL)
            break;
        if (null_path(trimmed(rp))) {
            snprintf(why, cap, "Return-Path <>");
            return SENDER_NULL_PATH;
        }
    }
    return SENDER_PERSON;
}

static bool autoreply_headers(struct cls *c, struct mr_classification *out);
static bool ooo_subject(const struct cls *c, const char **which);

/* A null-return-path or mail-system message whose subject or body reads
 * like a DSN. Out-of-office replies come with a null return path too
 * (Exchange sends them so): when only the return path speaks for a DSN
 * and the message says it is an auto-reply, a body phrase ("does not
 * exist", "was rejected") is not enough; a DSN subject or a status code
 * is. */
static bool dsn_by_text(struct cls *c, struct mr_classification *out)
{
    char who[64];
    enum sender sender = daemon_sender(c, who, sizeof(who));
    if (sender == SENDER_PERSON)
        return false;
    const char *p =
        find_any(mr_span_make(c->subject, c->subject_n), dsn_subjects);
    if (p) {
        reason(out, "%s, subject says \"%s\"", who, p);
        return true;
    }
    size_t at, len;
    if (find_status(c->text, c->text_n, &at, &len)) {
        reason(out, "%s, status %.*s in the body", who, (int)len, c->text + at);
        return true;
    }
    if (sender == SENDER_NULL_PATH) {
        struct mr_classification probe;
        memset(&probe, 0, sizeof(probe));
        const char *which;
        if (autoreply_headers(c, &probe) || ooo_subject(c, &which))
            return false;
    }
    p = find_any(ftext(c), dsn_phrases);
    if (p) {
        reason(out, "%s, body says \"%s\"", who, p);
        return true;
    }
    return false;
}

/* The notificationType of an Amazon SES notification (folded), whether
 * the body is the JSON itself or SNS's envelope with it as an escaped
 * string ("Message" : "{\"notificationType\":\"Bounce\",...}"). */
static void ses_type(struct cls *c, char *out, size_t cap)
{
    out[0] = '\0';
    mr_span f = ftext(c);
    const char *m = memmem(f.p, f.n, "notificationtype", 16);
    if (m == NULL)
        return;
    size_t i = (size_t)(m - f.p) + 16, skipped = 0;
    while (i < f.n && skipped < 8 && f.p[i] != '\0' &&
           strchr("\\\": ", f.p[i])) {
        i++;
        skipped++;
    }
    size_t k = 0;
    while (i < f.n && k + 1 < cap && f.p[i] >= 'a' && f.p[i] <= 'z')
        out[k++] = f.p[i++];
    out[k] = '\0';
}

static bool bounce_rules(struct cls *c, struct mr_classification *out)
{
    char rt[40];
    report_type(hdr(c, "content-type", 0), rt, sizeof(rt));
    if (c->report) {
        reason(out, "delivery-status report");
        return true;
    }
    if (strcmp(rt, "feedback-report") == 0 ||
        has_attachment_type(c, "message/feedback-report")) {
        out->feedback = true;
        put(out->action, sizeof(out->action), "feedback", 8);
        reason(out, "feedback report (ARF, RFC 5965)");
        return true;
    }
    /* The report part was missing or unreadable, the type says enough. */
    if (strcmp(rt, "delivery-status") == 0 ||
        strcmp(rt, "global-delivery-status") == 0 ||
        has_attachment_type(c, "message/delivery-status")) {
        reason(out, "multipart/report; report-type=%s",
               rt[0] ? rt : "delivery-status");
        return true;
    }
    /* Apple Mail answers List-Unsubscribe mailto: links with these. */
    const char *apple = hdr(c, "x-apple-unsubscribe", 0);
    if (apple && mr_span_ieq(trimmed(apple), "true")) {
        out->feedback = true;
        put(out->action, sizeof(out->action), "feedback", 8);
        reason(out, "unsubscribe request (X-Apple-Unsubscribe)");
        return true;
    }
    /* Microsoft's junk mail reporting program (JMRP): the complained-about
     * message attached, no report part. */
    mr_span subj = mr_span_make(c->subject, c->subject_n);
    if (mr_span_istarts(subj, "complaint about message from") &&
        has_attachment_type(c, "message/rfc822")) {
        out->feedback = true;
        put(out->action, sizeof(out->action), "feedback", 8);
        reason(out, "complaint report (Microsoft JMRP)");
        return true;
    }
    /* Amazon SES notifications through SNS: JSON in the body. */
    if (hdr(c, "x-amz-sns-message-id", 0) ||
        icontains(jstr(c->from, "email"), "amazonaws.com")) {
        char type[16];
        ses_type(c, type, sizeof(type));
        if (strcmp(type, "bounce") == 0 || strcmp(type, "delivery") == 0) {
            if (strcmp(type, "delivery") == 0)
                put(out->action, sizeof(out->action), "delivered", 9);
            reason(out, "Amazon SES %s notification", type);
            return true;
        }
        if (strcmp(type, "complaint") == 0) {
            out->feedback = true;
            put(out->action, sizeof(out->action), "feedback", 8);
            reason(out, "Amazon SES complaint notification");
            return true;
        }
    }
    return dsn_by_text(c, out);
}

static bool ooo_subject(const struct cls *c, const char **which)
{
    mr_span s = mr_span_make(c->subject, c->subject_n);
    /* "[Out of Office]", " Automatic reply:" */
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '[' ||
                       s.p[0] == '(')) {
        s.p++;
        s.n--;
    }
    for (size_t i = 0; ooo_subjects[i]; i++) {
        size_t n = strlen(ooo_subjects[i]);
        if (s.n >= n && memcmp(s.p, ooo_subjects[i], n) == 0) {
            *which = ooo_subjects[i];
            return true;
        }
    }
    return false;
}

static bool autoreply_headers(struct cls *c, struct mr_classification *out)
{
    for (size_t i = 0; i < MR_CLASSIFY_MAX_VALUES; i++) {
        const char *v = hdr(c, "auto-submitted", i);
        if (v == NULL)
            break;
        mr_span t = trimmed(v);
        size_t k = 0;
        while (k < t.n && t.p[k] != ';' && t.p[k] != ' ' && t.p[k] != '(')
            k++;
        if (k > 0 && !mr_span_ieq(mr_span_make(t.p, k), "no")) {
            reason_field(out, "Auto-Submitted", v);
            return true;
        }
    }
    /* Present at all means auto-generated (their values vary: yes, the
     * responder's address, ...). */
    static const char *const present[] = {
        "x-autoreply",      "x-autorespond",    "x-autoresponder",
        "x-autoreply-from", "x-mail-autoreply", NULL,
    };
    for (size_t i = 0; present[i]; i++) {
        const char *v = hdr(c, present[i], 0);
        if (v && !mr_span_ieq(trimmed(v), "no") &&
            !mr_span_ieq(trimmed(v), "false")) {
            reason_field(out, present[i], v);
            return true;
        }
    }
    /* Name, value substring. */
    static const char *const valued[][2] = {
        {"precedence", "auto_reply"},
        {"x-precedence", "auto_reply"},
        {"x-fc-machinegenerated", "true"},
        {"x-post-messageclass", "autoresponder"},
        {"delivered-to", "autoresponder"},
        {"x-autogenerated", "reply"},
        {"x-ms-exchange-generated-message-source", "mailbox rules agent"},
        {"x-ms-exchange-generated-message-source", "oof"},
        {"x-mailer", "autorespond"},
        {"x-mailer", "auto-respond"},
        {"x-mailer", "autoreply"},
        {"x-loop", "vacation"},
    };
    for (size_t i = 0; i < sizeof(valued) / sizeof(valued[0]); i++) {
        for (size_t k = 0; k < MR_CLASSIFY_MAX_VALUES; k++) {
            const char *v = hdr(c, valued[i][0], k);
            if (v == NULL)
                break;
            if (icontains(v, valued[i][1])) {
                reason_field(out, valued[i][0], v);
                return true;
            }
        }
    }
    const char *which;
    const char *xars = hdr(c, "x-auto-response-suppress", 0);
    if (xars && ooo_subject(c, &which)) {
        reason(out, "X-Auto-Response-Suppress and subject \"%s\"", which);
        return true;
    }
    return false;
}

static bool list_rules(struct cls *c, struct mr_classification *out)
{
    static const char *const present[] = {
        "list-id", "list-unsubscribe", "list-post", "mailing-list", NULL,
    };
    for (size_t i = 0; present[i]; i++) {
        const char *v = hdr(c, present[i], 0);
        if (v) {
            reason_field(out, present[i], v);
            return true;
        }
    }
    static const char *const prec[] = {"precedence", "x-precedence", NULL};
    for (size_t i = 0; prec[i]; i++) {
        const char *v = hdr(c, prec[i], 0);
        mr_span t = trimmed(v);
        if (v && (mr_span_istarts(t, "bulk") || mr_span_istarts(t, "list") ||
                  mr_span_istarts(t, "junk"))) {
            reason_field(out, prec[i], v);
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ */

int mr_classify_event(const json_t *event, const char *mail_from,
                      struct mr_classification *out, struct mr_error *err)
{
    memset(out, 0, sizeof(*out));
    out->kind = MR_AUTO_NONE;
    if (!json_is_object(event))
        return mr_error_set(err, MR_EINVAL, "event is not a JSON object");

    struct cls c = {.mail_from = mail_from, .text = ""};
    const json_t *v = json_object_get(event, "headers");
    c.headers = json_is_object(v) ? v : NULL;
    v = json_object_get(event, "report");
    c.report = json_is_object(v) ? v : NULL;
    v = json_object_get(event, "attachments");
    c.attachments = json_is_array(v) ? v : NULL;
    v = json_object_get(event, "from");
    c.from = json_is_object(v) ? v : NULL;
    v = json_object_get(event, "text");
    if (json_is_string(v)) {
        c.text = json_string_value(v);
        c.text_n = json_string_length(v);
        if (c.text_n > MR_CLASSIFY_SCAN_BYTES)
            c.text_n = MR_CLASSIFY_SCAN_BYTES;
    }
    const char *subject = jstr(event, "subject");
    if (subject) {
        size_t n = strlen(subject);
        if (n > sizeof(c.subject) - 1)
            n = sizeof(c.subject) - 1;
        fold(c.subject, subject, n);
        c.subject_n = n;
        c.subject[n] = '\0';
    }

    const char *which;
    if (bounce_rules(&c, out)) {
        out->kind = MR_AUTO_BOUNCE;
        bounce_details(&c, out);
    } else if (autoreply_headers(&c, out)) {
        out->kind = MR_AUTO_AUTOREPLY;
    } else if (list_rules(&c, out)) {
        out->kind = MR_AUTO_LIST;
    } else if (ooo_subject(&c, &which)) {
        out->kind = MR_AUTO_AUTOREPLY;
        reason(out, "subject starts with \"%s\"", which);
    }
    if (out->kind != MR_AUTO_BOUNCE) {
        out->action[0] = '\0';
        out->feedback = false;
    }
    free(c.ftext);
    if (c.arena)
        mr_arena_free(&c.arena);
    return 0;
}

static json_t *str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

json_t *mr_classify_to_json(const struct mr_classification *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string(mr_classify_kind_name(c->kind)));
    json_object_set_new(o, "reason", str_or_null(c->reason));
    json_object_set_new(o, "original_message_id",
                        str_or_null(c->original_message_id));
    json_object_set_new(o, "status", str_or_null(c->status));
    json_object_set_new(o, "recipient", str_or_null(c->recipient));
    json_object_set_new(o, "action", str_or_null(c->action));
    json_object_set_new(o, "permanent", json_boolean(c->permanent));
    json_object_set_new(o, "feedback", json_boolean(c->feedback));
    return o;
}
