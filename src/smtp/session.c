/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.c - the SMTP (RFC 5321) and LMTP (RFC 2033) protocol engine.
 *
 * A session is fed bytes and appends replies; it never touches a socket
 * (server.c does). Commands are assembled line by line in a fixed buffer
 * of MR_SMTP_LINE_MAX bytes; a longer line is discarded up to its LF and
 * answered 500. Lines end at LF, with or without CR, because real clients
 * send bare LF and refusing them gains nothing.
 *
 * DATA is a byte-level state machine (beginning of line, middle, after a
 * leading dot, after ".\r") so that the end marker and dot-unstuffing
 * (RFC 5321 4.5.2) work however the input is split across reads, and long
 * text lines cost nothing: only the total size is limited. Past the size
 * limit the text is still scanned for the end marker but not kept, so a
 * too-big message is refused with 552 at its end (RFC 1870) instead of
 * desynchronising the dialogue; the connection's timeouts bound the wait.
 *
 * Replies carry RFC 3463 enhanced status codes on every reply except the
 * greeting, the HELO/EHLO/LHLO replies and 354 (RFC 2034 section 3), also
 * for HELO clients, as Postfix does: the codes are harmless text to them.
 *
 * The handler decides recipients (RCPT) and durability (end of DATA); the
 * engine never answers 250 to a message before handler->deliver returned
 * 0. The error code to reply mapping lives in rcpt_reply and data_reply.
 */
#include "smtp/smtp-private.h"

#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/span.h"
#include "util/utf8.h"

/* Where the DATA scanner is within the current text line. */
enum data_state {
    D_BOL,   /* at the beginning of a line */
    D_MID,   /* inside a line */
    D_DOT,   /* a line began with '.' */
    D_DOTCR, /* a line began with ".\r" */
};

/* Room for the Received: header on top of the message: the EHLO argument,
 * hostname, address, one recipient and a date, each bounded. */
#define RECEIVED_MAX 2048

struct mr__smtp_session {
    struct mr__smtp_params p;
    struct mr_smtp_handler h;
    char ip[64];
    enum mr__smtp_action action;
    int errors;

    char *helo; /* NULL until HELO/EHLO/LHLO */
    bool esmtp; /* EHLO or LHLO rather than HELO */
    bool tls;

    /* The transaction, from MAIL to the end of DATA or RSET. */
    bool have_mail;
    char *mail_from; /* "" for the null reverse path */
    bool smtputf8;
    bool body_8bit;
    char **rcpt; /* accepted recipients, at most p.max_recipients */
    size_t nrcpt;

    /* The command line being assembled, without its LF. */
    char line[MR_SMTP_LINE_MAX];
    size_t line_len;
    bool line_long; /* past MR_SMTP_LINE_MAX: skip to the LF */

    bool in_data;
    enum data_state dstate;
    struct mr_buf msg; /* Received: header + unstuffed text */
    uint64_t body_len; /* unstuffed bytes, still counted past the cap */
    char id[17];       /* queue id of the message in DATA */

    char last[1100]; /* the last reply line, without CRLF, for notes */
};

/* ------------------------------------------------------------------ */
/* Replies */

static void reply(struct mr__smtp_session *s, struct mr_buf *out, int code,
                  const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void reply(struct mr__smtp_session *s, struct mr_buf *out, int code,
                  const char *enh, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* Text may quote the handler or the client: a CR or LF in it would
     * forge a reply line. */
    for (char *c = text; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
    snprintf(s->last, sizeof(s->last), "%03d %s%s%s", code, enh ? enh : "",
             enh ? " " : "", text);
    mr_buf_puts(out, s->last);
    mr_buf_puts(out, "\r\n");
}

/* A 5xx answer to a bad command: counted towards max_errors. */
#define FAIL(s, out, code, enh, ...)                                           \
    do {                                                                       \
        reply((s), (out), (code), (enh), __VA_ARGS__);                         \
        (s)->errors++;                                                         \
    } while (0)

static void note(struct mr__smtp_session *s, const char *what,
                 const char *detail)
{
    if (s->h.note != NULL)
        s->h.note(s->h.ctx, what, detail);
}

static const char *or_default(const struct mr_error *err, const char *dflt)
{
    return err->msg[0] != '\0' ? err->msg : dflt;
}

/* ------------------------------------------------------------------ */
/* Lifecycle */

static void reset_transaction(struct mr__smtp_session *s)
{
    for (size_t i = 0; i < s->nrcpt; i++)
        free(s->rcpt[i]);
    s->nrcpt = 0;
    free(s->mail_from);
    s->mail_from = NULL;
    s->have_mail = false;
    s->smtputf8 = false;
    s->body_8bit = false;
    s->in_data = false;
    /* Release rather than reset: a session idle between messages should
     * not hold on to a 50 MiB buffer. */
    mr_buf_release(&s->msg);
    s->body_len = 0;
}

struct mr__smtp_session *
mr__smtp_session_new(const struct mr__smtp_params *params,
                     const struct mr_smtp_handler *handler,
                     const char *remote_ip)
{
    struct mr__smtp_session *s = mr_xcalloc(1, sizeof(*s));
    s->p = *params;
    s->h = *handler;
    snprintf(s->ip, sizeof(s->ip), "%s", remote_ip);
    s->rcpt = mr_xcalloc((size_t)params->max_recipients, sizeof(char *));
    mr_buf_init(&s->msg, 0);
    return s;
}

void mr__smtp_session_free(struct mr__smtp_session **sp)
{
    struct mr__smtp_session *s = *sp;
    if (s == NULL)
        return;
    reset_transaction(s);
    free(s->rcpt);
    free(s->helo);
    free(s);
    *sp = NULL;
}

void mr__smtp_session_greet(struct mr__smtp_session *s, struct mr_buf *out)
{
    reply(s, out, 220, NULL, "%s %s mailroom", s->p.hostname,
          s->p.lmtp ? "LMTP" : "ESMTP");
}

void mr__smtp_session_tls_started(struct mr__smtp_session *s)
{
    /* RFC 3207 4.2: discard all knowledge obtained from the client. */
    reset_transaction(s);
    free(s->helo);
    s->helo = NULL;
    s->esmtp = false;
    s->tls = true;
    s->line_len = 0;
    s->line_long = false;
    s->action = MR__SMTP_CONTINUE;
}

bool mr__smtp_session_in_data(const struct mr__smtp_session *s)
{
    return s->in_data;
}

void mr__smtp_session_close_reply(struct mr__smtp_session *s, bool timeout,
                                  const char *why, struct mr_buf *out)
{
    reply(s, out, 421, timeout ? "4.4.2" : "4.3.2", "%s %s, closing connection",
          s->p.hostname, why);
    s->action = MR__SMTP_CLOSE;
}

/* ------------------------------------------------------------------ */
/* Parsing helpers */

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* A path at a[*pos..]: "<addr>" (a quoted local part may hold '>' and
 * spaces), or leniently a bare address up to the next space, as sent by
 * some scripts. The address comes back without brackets and without the
 * obsolete source route (RFC 5321 4.1.2: accept and ignore it). UTF-8 is
 * accepted with or without SMTPUTF8: refusing it would only lose mail. */
static bool parse_path(mr_span a, size_t *pos, mr_span *addr_r)
{
    size_t i = *pos;
    while (i < a.n && a.p[i] == ' ')
        i++;
    size_t start, end;
    if (i < a.n && a.p[i] == '<') {
        start = ++i;
        bool quoted = false;
        for (; i < a.n; i++) {
            char c = a.p[i];
            if (quoted && c == '\\')
                i++;
            else if (c == '"')
                quoted = !quoted;
            else if (c == '>' && !quoted)
                break;
        }
        if (i >= a.n)
            return false;
        end = i++;
    } else {
        start = i;
        while (i < a.n && a.p[i] != ' ')
            i++;
        end = i;
        if (start == end)
            return false;
    }
    if (i < a.n && a.p[i] != ' ')
        return false;

    mr_span addr = mr_span_make(a.p + start, end - start);
    if (addr.n > 0 && addr.p[0] == '@') {
        size_t colon = mr_span_find(addr, 0, ':');
        if (colon == addr.n)
            return false;
        addr = mr_span_make(addr.p + colon + 1, addr.n - colon - 1);
    }
    if (addr.n > MR_SMTP_PATH_MAX)
        return false;
    bool quoted = false;
    for (size_t k = 0; k < addr.n; k++) {
        unsigned char c = (unsigned char)addr.p[k];
        if (is_ctl(c))
            return false;
        if (c == '"')
            quoted = !quoted;
        else if (c == ' ' && !quoted)
            return false;
    }
    if (!mr_utf8_valid(addr.p, addr.n))
        return false;
    *addr_r = addr;
    *pos = i;
    return true;
}

/* The next "KEY[=VALUE]" after a path; false at the end of the line. */
static bool next_param(mr_span a, size_t *pos, mr_span *key, mr_span *val)
{
    size_t i = *pos;
    while (i < a.n && a.p[i] == ' ')
        i++;
    if (i >= a.n)
        return false;
    size_t start = i;
    while (i < a.n && a.p[i] != ' ')
        i++;
    mr_span tok = mr_span_make(a.p + start, i - start);
    size_t eq = mr_span_find(tok, 0, '=');
    *key = mr_span_make(tok.p, eq);
    *val = eq < tok.n ? mr_span_make(tok.p + eq + 1, tok.n - eq - 1)
                      : MR_SPAN_NULL;
    *pos = i;
    return true;
}

/* RFC 1870: SIZE=1*20DIGIT. */
static bool parse_size(mr_span v, uint64_t *size_r)
{
    if (v.n == 0 || v.n > 20)
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        unsigned d = (unsigned)(v.p[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            n = UINT64_MAX; /* saturate: still over any limit */
        else
            n = n * 10 + d;
    }
    *size_r = n;
    return true;
}

/* ------------------------------------------------------------------ */
/* Commands */

static void cmd_hello(struct mr__smtp_session *s, mr_span arg,
                      struct mr_buf *out, const char *verb, bool esmtp)
{
    bool lhlo = strcmp(verb, "LHLO") == 0;
    if (s->p.lmtp && !lhlo) {
        /* RFC 2033 4.1: an LMTP server must not accept HELO or EHLO. */
        FAIL(s, out, 500, "5.5.1", "LMTP: use LHLO");
        return;
    }
    if (!s->p.lmtp && lhlo) {
        FAIL(s, out, 500, "5.5.2", "command not recognized");
        return;
    }
    size_t end = mr_span_find(arg, 0, ' ');
    mr_span dom = mr_span_make(arg.p, end);
    if (dom.n == 0) {
        FAIL(s, out, 501, "5.5.4", "%s requires a domain name", verb);
        return;
    }
    if (dom.n > MR_SMTP_HELO_MAX) {
        FAIL(s, out, 501, "5.5.4", "domain name too long");
        return;
    }
    for (size_t i = 0; i < dom.n; i++) {
        if (is_ctl((unsigned char)dom.p[i])) {
            FAIL(s, out, 501, "5.5.4", "bad domain name");
            return;
        }
    }
    if (!mr_utf8_valid(dom.p, dom.n)) {
        FAIL(s, out, 501, "5.5.4", "bad domain name");
        return;
    }
    /* RFC 5321 4.1.4: HELO/EHLO in a session resets the transaction. */
    reset_transaction(s);
    free(s->helo);
    s->helo = mr_xstrndup(dom.p, dom.n);
    s->esmtp = esmtp;
    if (!esmtp) {
        reply(s, out, 250, NULL, "%s", s->p.hostname);
        return;
    }
    char size[40];
    snprintf(size, sizeof(size), "SIZE %llu",
             (unsigned long long)s->p.max_message_size);
    const char *ext[] = {"PIPELINING",
                         size,
                         "8BITMIME",
                         "SMTPUTF8",
                         "ENHANCEDSTATUSCODES",
                         s->p.tls_offered && !s->tls ? "STARTTLS" : NULL};
    mr_buf_printf(out, "250-%s greets [%s]\r\n", s->p.hostname, s->ip);
    size_t n = sizeof(ext) / sizeof(ext[0]);
    while (ext[n - 1] == NULL)
        n--;
    for (size_t i = 0; i < n; i++)
        mr_buf_printf(out, "250%c%s\r\n", i + 1 < n ? '-' : ' ', ext[i]);
}

static void cmd_helo(struct mr__smtp_session *s, mr_span a, struct mr_buf *o)
{
    cmd_hello(s, a, o, "HELO", false);
}

static void cmd_ehlo(struct mr__smtp_session *s, mr_span a, struct mr_buf *o)
{
    cmd_hello(s, a, o, "EHLO", true);
}

static void cmd_lhlo(struct mr__smtp_session *s, mr_span a, struct mr_buf *o)
{
    cmd_hello(s, a, o, "LHLO", true);
}

static void cmd_mail(struct mr__smtp_session *s, mr_span arg,
                     struct mr_buf *out)
{
    if (s->helo == NULL) {
        FAIL(s, out, 503, "5.5.1", "send %s first",
             s->p.lmtp ? "LHLO" : "EHLO or HELO");
        return;
    }
    if (s->have_mail) {
        FAIL(s, out, 503, "5.5.1", "nested MAIL command");
        return;
    }
    if (!mr_span_istarts(arg, "FROM:")) {
        FAIL(s, out, 501, "5.5.4", "syntax: MAIL FROM:<address>");
        return;
    }
    mr_span rest = mr_span_make(arg.p + 5, arg.n - 5);
    size_t pos = 0;
    mr_span addr;
    if (!parse_path(rest, &pos, &addr)) {
        FAIL(s, out, 501, "5.1.7", "bad sender address syntax");
        return;
    }
    bool utf8 = false, body8 = false;
    mr_span key, val;
    while (next_param(rest, &pos, &key, &val)) {
        if (mr_span_ieq(key, "SIZE")) {
            uint64_t size;
            if (!parse_size(val, &size)) {
                FAIL(s, out, 501, "5.5.4", "bad SIZE parameter");
                return;
            }
            /* RFC 1870 6.2: refuse now rather than after the upload. */
            if (size > s->p.max_message_size) {
                reply(s, out, 552, "5.3.4",
                      "message size exceeds fixed maximum message size");
                note(s, "reject", s->last);
                return;
            }
        } else if (mr_span_ieq(key, "BODY")) {
            if (mr_span_ieq(val, "8BITMIME")) {
                body8 = true;
            } else if (mr_span_ieq(val, "BINARYMIME")) {
                /* RFC 3030 needs BDAT, which we do not offer. */
                FAIL(s, out, 555, "5.5.4", "BINARYMIME requires CHUNKING");
                return;
            } else if (!mr_span_ieq(val, "7BIT")) {
                FAIL(s, out, 501, "5.5.4", "bad BODY parameter");
                return;
            }
        } else if (mr_span_ieq(key, "SMTPUTF8") && val.p == NULL) {
            utf8 = true;
        } else {
            FAIL(s, out, 555, "5.5.4", "unsupported parameter %.*s",
                 (int)(key.n > 64 ? 64 : key.n), key.p);
            return;
        }
    }
    s->have_mail = true;
    s->mail_from = mr_xstrndup(addr.p, addr.n);
    s->smtputf8 = utf8;
    s->body_8bit = body8;
    reply(s, out, 250, "2.1.0", "sender <%s> OK", s->mail_from);
}

/* handler->rcpt's code to a reply (the header's mapping). */
static void rcpt_reply(struct mr__smtp_session *s, struct mr_buf *out, int rc,
                       const char *addr, const struct mr_error *err)
{
    switch (rc) {
    case 0: reply(s, out, 250, "2.1.5", "recipient <%s> OK", addr); return;
    case MR_ENOTFOUND:
        FAIL(s, out, 550, "5.1.1", "<%s>: recipient not found", addr);
        note(s, "reject", s->last);
        return;
    case MR_EINVAL:
        FAIL(s, out, 501, "5.1.3", "%s", or_default(err, "bad recipient"));
        note(s, "reject", s->last);
        return;
    default:
        reply(s, out, 451, "4.3.0", "%s",
              or_default(err, "temporary failure, try again later"));
        note(s, "tempfail", s->last);
        return;
    }
}

static void cmd_rcpt(struct mr__smtp_session *s, mr_span arg,
                     struct mr_buf *out)
{
    if (!s->have_mail) {
        FAIL(s, out, 503, "5.5.1", "need MAIL command");
        return;
    }
    if (!mr_span_istarts(arg, "TO:")) {
        FAIL(s, out, 501, "5.5.4", "syntax: RCPT TO:<address>");
        return;
    }
    mr_span rest = mr_span_make(arg.p + 3, arg.n - 3);
    size_t pos = 0;
    mr_span addr;
    if (!parse_path(rest, &pos, &addr) || addr.n == 0) {
        FAIL(s, out, 501, "5.1.3", "bad recipient address syntax");
        return;
    }
    mr_span key, val;
    /* DSN's NOTIFY and ORCPT are not offered, so any parameter is wrong. */
    if (next_param(rest, &pos, &key, &val)) {
        FAIL(s, out, 555, "5.5.4", "unsupported parameter %.*s",
             (int)(key.n > 64 ? 64 : key.n), key.p);
        return;
    }
    if (s->nrcpt >= (size_t)s->p.max_recipients) {
        /* RFC 5321 4.5.3.1.10: 452, and the client sends the rest in a
         * later transaction. */
        reply(s, out, 452, "4.5.3", "too many recipients");
        return;
    }
    char *a = mr_xstrndup(addr.p, addr.n);
    struct mr_error err = {0};
    int rc = s->h.rcpt != NULL ? s->h.rcpt(s->h.ctx, a, &err) : 0;
    rcpt_reply(s, out, rc, a, &err);
    if (rc == 0)
        s->rcpt[s->nrcpt++] = a;
    else
        free(a);
}

static void rfc5322_now(char *out, size_t n)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                    "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d +0000",
             days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void new_queue_id(char id[17])
{
    unsigned char r[8];
    static const char hex[] = "0123456789ABCDEF";
    if (RAND_bytes(r, sizeof(r)) != 1) {
        /* Unique enough for a log line; RAND_bytes does not fail on a
         * seeded Linux system. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        memcpy(r, &v, sizeof(r));
    }
    for (size_t i = 0; i < sizeof(r); i++) {
        id[2 * i] = hex[r[i] >> 4];
        id[2 * i + 1] = hex[r[i] & 15];
    }
    id[16] = '\0';
}

/* RFC 5321 4.4 trace header. rDNS is not looked up: the TCP-info is the
 * address literal. Protocol names from RFC 3848 and RFC 6531 3.7.3. */
static void put_received(struct mr__smtp_session *s)
{
    char proto[16];
    if (s->smtputf8)
        snprintf(proto, sizeof(proto), "UTF8%s%s", s->p.lmtp ? "LMTP" : "SMTP",
                 s->tls ? "S" : "");
    else
        snprintf(proto, sizeof(proto), "%s%s",
                 s->p.lmtp            ? "LMTP"
                 : s->esmtp || s->tls ? "ESMTP"
                                      : "SMTP",
                 s->tls ? "S" : "");
    char date[64];
    rfc5322_now(date, sizeof(date));
    mr_buf_printf(&s->msg,
                  "Received: from %s ([%s%s])\r\n"
                  "\tby %s (mailroom) with %s id %s",
                  s->helo, strchr(s->ip, ':') ? "IPv6:" : "", s->ip,
                  s->p.hostname, proto, s->id);
    if (s->nrcpt == 1)
        mr_buf_printf(&s->msg, "\r\n\tfor <%s>; %s\r\n", s->rcpt[0], date);
    else
        mr_buf_printf(&s->msg, ";\r\n\t%s\r\n", date);
}

static void cmd_data(struct mr__smtp_session *s, mr_span arg,
                     struct mr_buf *out)
{
    if (!s->have_mail) {
        FAIL(s, out, 503, "5.5.1", "need MAIL command");
        return;
    }
    if (s->nrcpt == 0) {
        /* RFC 2920 3.1: with every RCPT refused, a pipelined DATA fails. */
        FAIL(s, out, 554, "5.5.1", "no valid recipients");
        return;
    }
    if (arg.n > 0) {
        FAIL(s, out, 501, "5.5.4", "DATA takes no arguments");
        return;
    }
    new_queue_id(s->id);
    mr_buf_release(&s->msg);
    mr_buf_init(&s->msg, s->p.max_message_size + RECEIVED_MAX);
    put_received(s);
    s->body_len = 0;
    s->in_data = true;
    s->dstate = D_BOL;
    reply(s, out, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

/* A result of handler->deliver (or one recipient's status in LMTP). */
static void data_reply(struct mr__smtp_session *s, struct mr_buf *out, int rc,
                       const struct mr_error *err, const char *rcpt)
{
    char who[MR_SMTP_PATH_MAX + 8] = "";
    if (rcpt != NULL)
        snprintf(who, sizeof(who), "<%s> ", rcpt);
    switch (rc) {
    case 0:
        reply(s, out, 250, "2.0.0", "%sOK queued as %s", who, s->id);
        return;
    case MR_ELIMIT:
        reply(s, out, 552, "5.3.4", "%s%s", who,
              or_default(err, "message too big"));
        return;
    case MR_EINVAL:
        reply(s, out, 554, "5.6.0", "%s%s", who,
              or_default(err, "message refused"));
        return;
    case MR_ENOTFOUND:
        reply(s, out, 550, "5.1.1", "%srecipient not found", who);
        return;
    default:
        reply(s, out, 451, "4.3.0", "%s%s", who,
              or_default(err, "temporary failure, try again later"));
        return;
    }
}

static void finish_data(struct mr__smtp_session *s, struct mr_buf *out)
{
    s->in_data = false;
    bool lmtp = s->p.lmtp;
    if (s->body_len > s->p.max_message_size) {
        /* RFC 2033 4.2: LMTP answers every recipient, even alike. */
        for (size_t i = 0; i < (lmtp ? s->nrcpt : 1); i++)
            reply(s, out, 552, "5.3.4",
                  "message size exceeds fixed maximum message size");
        note(s, "reject", s->last);
        reset_transaction(s);
        return;
    }
    struct mr_smtp_envelope env = {
        .helo = s->helo,
        .mail_from = s->mail_from,
        .rcpt = (const char *const *)s->rcpt,
        .nrcpt = s->nrcpt,
        .remote_ip = s->ip,
        .tls = s->tls,
        .lmtp = lmtp,
        .smtputf8 = s->smtputf8,
        .body_8bit = s->body_8bit,
    };
    int *status = mr_xcalloc(s->nrcpt, sizeof(int));
    struct mr_error err = {0};
    mr_span m = mr_buf_span(&s->msg);
    int rc = s->h.deliver(s->h.ctx, &env, m.p, m.n, status, &err);
    if (lmtp) {
        for (size_t i = 0; i < s->nrcpt; i++)
            data_reply(s, out, rc != 0 ? rc : status[i], &err, s->rcpt[i]);
    } else {
        data_reply(s, out, rc, &err, NULL);
    }
    free(status);
    if (rc == 0)
        note(s, "accepted", s->id);
    else
        note(s, rc == MR_ELIMIT || rc == MR_EINVAL ? "reject" : "tempfail",
             s->last);
    reset_transaction(s);
}

static void cmd_rset(struct mr__smtp_session *s, mr_span a, struct mr_buf *o)
{
    (void)a;
    reset_transaction(s);
    reply(s, o, 250, "2.0.0", "OK");
}

static void cmd_noop(struct mr__smtp_session *s, mr_span a, struct mr_buf *o)
{
    (void)a;
    reply(s, o, 250, "2.0.0", "OK");
}

static void cmd_quit(struct mr__smtp_session *s, mr_span a, struct mr_buf *o)
{
    (void)a;
    reply(s, o, 221, "2.0.0", "%s closing connection", s->p.hostname);
    s->action = MR__SMTP_CLOSE;
}

static void cmd_vrfy(struct mr__smtp_session *s, mr_span a, struct mr_buf *o)
{
    if (a.n == 0) {
        FAIL(s, o, 501, "5.5.4", "syntax: VRFY address");
        return;
    }
    /* RFC 5321 3.5.3: 252 tells nothing to address harvesters. */
    reply(s, o, 252, "2.5.2",
          "cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct mr__smtp_session *s, mr_span a, struct mr_buf *o)
{
    (void)a;
    reply(s, o, 502, "5.5.1", "EXPN not available");
}

static void cmd_help(struct mr__smtp_session *s, mr_span a, struct mr_buf *o)
{
    (void)a;
    reply(s, o, 214, "2.0.0",
          "commands: %s MAIL RCPT DATA RSET NOOP QUIT VRFY HELP%s",
          s->p.lmtp ? "LHLO" : "HELO EHLO",
          s->p.tls_offered ? " STARTTLS" : "");
}

static void cmd_starttls(struct mr__smtp_session *s, mr_span a,
                         struct mr_buf *o)
{
    if (s->tls) {
        FAIL(s, o, 503, "5.5.1", "TLS already active");
    } else if (!s->p.tls_offered) {
        FAIL(s, o, 502, "5.5.1", "STARTTLS not available");
    } else if (a.n > 0) {
        FAIL(s, o, 501, "5.5.4", "STARTTLS takes no arguments");
    } else if (s->have_mail) {
        FAIL(s, o, 503, "5.5.1", "MAIL transaction in progress");
    } else {
        reply(s, o, 220, "2.0.0", "ready to start TLS");
        s->action = MR__SMTP_STARTTLS;
    }
}

static void cmd_unimpl(struct mr__smtp_session *s, mr_span a, struct mr_buf *o)
{
    (void)a;
    FAIL(s, o, 502, "5.5.1", "command not implemented");
}

static const struct {
    const char *verb;
    void (*fn)(struct mr__smtp_session *s, mr_span arg, struct mr_buf *out);
} commands[] = {
    {"EHLO", cmd_ehlo},         {"HELO", cmd_helo},   {"LHLO", cmd_lhlo},
    {"MAIL", cmd_mail},         {"RCPT", cmd_rcpt},   {"DATA", cmd_data},
    {"RSET", cmd_rset},         {"NOOP", cmd_noop},   {"QUIT", cmd_quit},
    {"VRFY", cmd_vrfy},         {"EXPN", cmd_expn},   {"HELP", cmd_help},
    {"STARTTLS", cmd_starttls}, {"BDAT", cmd_unimpl}, {"AUTH", cmd_unimpl},
    {"ETRN", cmd_unimpl},       {"TURN", cmd_unimpl}, {"ATRN", cmd_unimpl},
};

static void process_line(struct mr__smtp_session *s, struct mr_buf *out)
{
    if (s->p.stopping != NULL && atomic_load(s->p.stopping)) {
        mr__smtp_session_close_reply(s, false, "service shutting down", out);
        return;
    }
    mr_span line = mr_span_make(s->line, s->line_len);
    if (line.n > 0 && line.p[line.n - 1] == '\r')
        line.n--;
    if (s->line_long) {
        FAIL(s, out, 500, "5.5.2", "line too long");
    } else if (memchr(line.p, '\0', line.n) != NULL) {
        FAIL(s, out, 500, "5.5.2", "NUL byte in command");
    } else {
        size_t sp = mr_span_find(line, 0, ' ');
        mr_span verb = mr_span_make(line.p, sp);
        mr_span arg =
            sp < line.n
                ? mr_span_trim(mr_span_make(line.p + sp + 1, line.n - sp - 1))
                : mr_span_make(line.p, 0);
        size_t i = 0, n = sizeof(commands) / sizeof(commands[0]);
        while (i < n && !mr_span_ieq(verb, commands[i].verb))
            i++;
        if (i < n)
            commands[i].fn(s, arg, out);
        else
            FAIL(s, out, 500, "5.5.2", "command not recognized");
    }
    if (s->errors >= s->p.max_errors && s->action == MR__SMTP_CONTINUE) {
        reply(s, out, 421, "4.7.0", "%s too many errors, closing connection",
              s->p.hostname);
        s->action = MR__SMTP_CLOSE;
    }
}

/* ------------------------------------------------------------------ */
/* Input */

static void data_put(struct mr__smtp_session *s, const char *p, size_t n)
{
    s->body_len += n;
    if (s->body_len <= s->p.max_message_size)
        mr_buf_append(&s->msg, p, n);
}

/* Consumes message text up to and including the end marker; returns how
 * many bytes it took. */
static size_t data_feed(struct mr__smtp_session *s, const char *p, size_t n,
                        struct mr_buf *out)
{
    size_t i = 0;
    while (i < n) {
        switch (s->dstate) {
        case D_MID: {
            const char *lf = memchr(p + i, '\n', n - i);
            size_t take = lf != NULL ? (size_t)(lf - (p + i)) + 1 : n - i;
            data_put(s, p + i, take);
            i += take;
            if (lf != NULL)
                s->dstate = D_BOL;
            break;
        }
        case D_BOL:
            if (p[i] == '.') {
                s->dstate = D_DOT;
                i++;
            } else {
                s->dstate = D_MID;
            }
            break;
        case D_DOT:
            if (p[i] == '\n') {
                finish_data(s, out);
                return i + 1;
            }
            if (p[i] == '\r') {
                s->dstate = D_DOTCR;
                i++;
            } else {
                /* RFC 5321 4.5.2: drop the leading dot, keep the rest. */
                s->dstate = D_MID;
            }
            break;
        case D_DOTCR:
            if (p[i] == '\n') {
                finish_data(s, out);
                return i + 1;
            }
            /* ".\r" then something else: an odd stuffed line. */
            data_put(s, "\r", 1);
            s->dstate = D_MID;
            break;
        }
    }
    return i;
}

enum mr__smtp_action mr__smtp_session_feed(struct mr__smtp_session *s,
                                           const char *p, size_t n,
                                           struct mr_buf *out)
{
    size_t i = 0;
    while (i < n && s->action == MR__SMTP_CONTINUE) {
        if (s->in_data) {
            i += data_feed(s, p + i, n - i, out);
            continue;
        }
        const char *lf = memchr(p + i, '\n', n - i);
        size_t take = lf != NULL ? (size_t)(lf - (p + i)) : n - i;
        if (!s->line_long) {
            if (s->line_len + take > MR_SMTP_LINE_MAX - 1) {
                s->line_long = true;
            } else {
                memcpy(s->line + s->line_len, p + i, take);
                s->line_len += take;
            }
        }
        i += take;
        if (lf == NULL)
            break;
        i++;
        process_line(s, out);
        s->line_len = 0;
        s->line_long = false;
    }
    return s->action;
}
