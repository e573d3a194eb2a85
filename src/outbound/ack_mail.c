/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ack_mail.c - rendering the automatic acknowledgement (ack_mail.h).
 *
 * Every header value that comes from outside (the sender's subject and
 * name) is either plain printable ASCII or becomes encoded words, so a
 * CR or LF in it can never start a header of its own.
 */
#include "outbound/ack_mail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/utf8.h"

#define PH_MAX 32         /* longest placeholder name */
#define SUBJECT_MAX 2000  /* bytes of subject put in the header */
#define WORD_BYTES 45     /* input bytes per encoded word: 60 base64 chars */
#define QP_LINE 76

static const char *const placeholders[] = {
    "ticket.number", "ticket.id", "subject", "from.name", "from.email",
    "tenant",        NULL,
};

static int ph_index(const char *p, size_t n)
{
    for (int i = 0; placeholders[i]; i++)
        if (strlen(placeholders[i]) == n && memcmp(placeholders[i], p, n) == 0)
            return i;
    return -1;
}

/* The name between "{{" at p and "}}" (spaces inside allowed), its length
 * in *len, and the bytes the whole placeholder takes in *used; NULL when
 * there is no closing "}}" within reach. */
static const char *ph_name(const char *p, size_t *len, size_t *used)
{
    const char *s = p + 2;
    const char *close = NULL;
    for (size_t i = 0; s[i] && i < PH_MAX + 8; i++)
        if (s[i] == '}' && s[i + 1] == '}') {
            close = s + i;
            break;
        }
    if (!close)
        return NULL;
    const char *b = s, *e = close;
    while (b < e && *b == ' ')
        b++;
    while (e > b && e[-1] == ' ')
        e--;
    *len = (size_t)(e - b);
    *used = (size_t)(close + 2 - p);
    return b;
}

bool mr_ack_template_check(const char *tpl, char *bad, size_t bad_size)
{
    if (tpl == NULL)
        return true;
    for (const char *p = strstr(tpl, "{{"); p; p = strstr(p, "{{")) {
        size_t len, used;
        const char *name = ph_name(p, &len, &used);
        if (name == NULL) {
            snprintf(bad, bad_size, "'{{' without a closing '}}' (or a "
                                    "placeholder name over %d characters)",
                     PH_MAX);
            return false;
        }
        if (ph_index(name, len) < 0) {
            snprintf(bad, bad_size,
                     "unknown placeholder {{%.*s}} (known: ticket.number, "
                     "ticket.id, subject, from.name, from.email, tenant)",
                     (int)(len < PH_MAX ? len : PH_MAX), name);
            return false;
        }
        p += used;
    }
    return true;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

void mr_ack_expand(const char *tpl, const struct mr_ack_vars *v,
                   struct mr_buf *out)
{
    const char *p = tpl ? tpl : "";
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            mr_buf_puts(out, p);
            return;
        }
        mr_buf_append(out, p, (size_t)(open - p));
        size_t len, used;
        const char *name = ph_name(open, &len, &used);
        int i = name ? ph_index(name, len) : -1;
        if (i < 0) {
            /* Checked at load time; kept literally if it ever gets here. */
            mr_buf_append(out, "{{", 2);
            p = open + 2;
            continue;
        }
        switch (i) {
        case 0: mr_buf_printf(out, "%lld", (long long)v->ticket_number); break;
        case 1: mr_buf_printf(out, "%lld", (long long)v->ticket_id); break;
        case 2: mr_buf_puts(out, or_empty(v->subject)); break;
        case 3: mr_buf_puts(out, or_empty(v->from_name)); break;
        case 4: mr_buf_puts(out, or_empty(v->from_email)); break;
        default: mr_buf_puts(out, or_empty(v->tenant)); break;
        }
        p = open + used;
    }
}

bool mr_ack_address_ok(const char *addr)
{
    if (addr == NULL)
        return false;
    size_t n = strnlen(addr, 255);
    if (n == 0 || n > 254)
        return false;
    const char *at = strrchr(addr, '@');
    if (at == NULL || at == addr || at[1] == '\0')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c <= ' ' || c >= 0x7f || strchr("\"<>(),;:\\[]", c))
            return false;
    }
    return true;
}

/* ---- header encoding -------------------------------------------------- */

static bool plain_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < ' ' || c >= 0x7f)
            return false;
    }
    /* "=?" would read as the start of an encoded word. */
    return memmem(s, n, "=?", 2) == NULL;
}

static void base64(struct mr_buf *out, const unsigned char *p, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63],
                     i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        mr_buf_append(out, q, 4);
    }
}

/* s as RFC 2047 B words, each on its own folded line after the first
 * (col: where the first starts). Control characters become spaces and
 * invalid UTF-8 is repaired first, so every word decodes. */
static void encoded_words(struct mr_buf *out, const char *s, size_t n)
{
    struct mr_buf clean;
    mr_buf_init(&clean, 0);
    mr_utf8_repair(&clean, s, n, true);
    for (size_t i = 0; i < clean.len; i++)
        if ((unsigned char)clean.p[i] < ' ' || clean.p[i] == 0x7f)
            clean.p[i] = ' ';
    size_t i = 0;
    bool first = true;
    while (i < clean.len) {
        size_t take = 0;
        while (i + take < clean.len) {
            size_t cl = mr_utf8_char_len(clean.p + i + take,
                                         clean.len - i - take);
            if (cl == 0)
                cl = 1;
            if (take + cl > WORD_BYTES)
                break;
            take += cl;
        }
        if (take == 0)
            take = 1;
        if (!first)
            mr_buf_append(out, "\r\n ", 3);
        mr_buf_puts(out, "=?utf-8?B?");
        base64(out, (const unsigned char *)clean.p + i, take);
        mr_buf_puts(out, "?=");
        first = false;
        i += take;
    }
    mr_buf_release(&clean);
}

/* An unstructured header (Subject): plain when it is short printable
 * ASCII, else encoded words. */
static void header_text(struct mr_buf *out, const char *name, const char *s,
                        size_t n)
{
    mr_buf_printf(out, "%s: ", name);
    if (plain_ascii(s, n) && n + strlen(name) + 2 <= 78)
        mr_buf_append(out, s, n);
    else
        encoded_words(out, s, n);
    mr_buf_append(out, "\r\n", 2);
}

/* name <addr>: the name quoted when plain ASCII, else encoded. */
static void header_addr(struct mr_buf *out, const char *field,
                        const char *name, const char *addr)
{
    mr_buf_printf(out, "%s: ", field);
    size_t n = name ? strlen(name) : 0;
    if (n > 0 && n < 200) {
        if (plain_ascii(name, n)) {
            mr_buf_putc(out, '"');
            for (size_t i = 0; i < n; i++) {
                if (name[i] == '"' || name[i] == '\\')
                    mr_buf_putc(out, '\\');
                mr_buf_putc(out, name[i]);
            }
            mr_buf_putc(out, '"');
        } else {
            encoded_words(out, name, n);
        }
        mr_buf_putc(out, ' ');
    }
    mr_buf_printf(out, "<%s>\r\n", addr);
}

/* ---- body ------------------------------------------------------------- */

/* RFC 2045 6.7: text lines end in CRLF (a bare CR or LF counts as one),
 * bytes outside printable ASCII and '=' are =XX, space and tab before a
 * line end are encoded, lines are cut with soft breaks at 76. */
static void quoted_printable(struct mr_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
                i++;
            mr_buf_append(out, "\r\n", 2);
            col = 0;
            continue;
        }
        bool at_end = i + 1 == n || s[i + 1] == '\r' || s[i + 1] == '\n';
        bool literal = (c >= 33 && c <= 126 && c != '=') ||
                       ((c == ' ' || c == '\t') && !at_end);
        /* A line of one "." stays readable to a relay that does not
         * unstuff; encoding a leading dot avoids the question. */
        if (c == '.' && col == 0)
            literal = false;
        size_t w = literal ? 1 : 3;
        if (col + w > QP_LINE - 1) {
            mr_buf_append(out, "=\r\n", 3);
            col = 0;
        }
        if (literal) {
            mr_buf_putc(out, (char)c);
        } else {
            char e[3] = {'=', hex[c >> 4], hex[c & 15]};
            mr_buf_append(out, e, 3);
        }
        col += w;
    }
    if (col > 0)
        mr_buf_append(out, "\r\n", 2);
}

/* ---- the message ------------------------------------------------------ */

static void rfc5322_date(int64_t t, char out[40])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, 40, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

static bool has_re(const char *s)
{
    while (*s == ' ')
        s++;
    return strncasecmp(s, "re:", 3) == 0;
}

/* A Message-ID that came from the parser (no <>): safe only when it is
 * printable ASCII without spaces or brackets. */
static bool msgid_ok(const char *id)
{
    if (id == NULL || id[0] == '\0' || strnlen(id, 999) > 998)
        return false;
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
            *p == '<' || *p == '>')
            return false;
    return true;
}

int mr_ack_render(const struct mr_ack_mail *m, const struct mr_ack_vars *v,
                  struct mr_buf *out, char *msgid, size_t msgid_size,
                  struct mr_error *err)
{
    if (!mr_ack_address_ok(m->from_email))
        return mr_error_set(err, MR_EINVAL,
                            "the acknowledgement's From address '%s' is not "
                            "usable",
                            m->from_email ? m->from_email : "");
    if (!mr_ack_address_ok(v->from_email))
        return mr_error_set(err, MR_EINVAL,
                            "the sender's address is not one mailroom "
                            "answers");
    const char *domain = strrchr(m->from_email, '@') + 1;
    unsigned char rnd[12];
    arc4random_buf(rnd, sizeof rnd);
    char hex[2 * sizeof rnd + 1];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    snprintf(msgid, msgid_size, "ack.%lld.%s@%s", (long long)v->ticket_id, hex,
             domain[0] ? domain : m->hostname ? m->hostname : "localhost");

    header_addr(out, "From", m->from_name, m->from_email);
    mr_buf_printf(out, "To: <%s>\r\n", v->from_email);

    struct mr_buf subj;
    mr_buf_init(&subj, 0);
    if (m->subject_tpl) {
        mr_ack_expand(m->subject_tpl, v, &subj);
    } else {
        const char *orig = v->subject && v->subject[0] ? v->subject : NULL;
        if (!orig || !has_re(orig))
            mr_buf_puts(&subj, "Re: ");
        mr_buf_puts(&subj, orig ? orig : "your message");
    }
    header_text(out, "Subject",
                subj.p ? subj.p : "",
                subj.len > SUBJECT_MAX ? SUBJECT_MAX : subj.len);
    mr_buf_release(&subj);

    char date[40];
    rfc5322_date(m->date, date);
    mr_buf_printf(out, "Date: %s\r\n", date);
    mr_buf_printf(out, "Message-ID: <%s>\r\n", msgid);
    if (msgid_ok(m->in_reply_to)) {
        mr_buf_printf(out, "In-Reply-To: <%s>\r\n", m->in_reply_to);
        mr_buf_printf(out, "References: <%s>\r\n", m->in_reply_to);
    }
    /* RFC 3834 5.1; the rest is what other responders look for. */
    mr_buf_puts(out, "Auto-Submitted: auto-replied\r\n"
                     "X-Auto-Response-Suppress: All\r\n"
                     "Precedence: auto_reply\r\n");
    mr_buf_printf(out, "X-Loop: %s\r\n", m->from_email);
    mr_buf_puts(out, "MIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n"
                     "\r\n");
    struct mr_buf body, clean;
    mr_buf_init(&body, 0);
    mr_buf_init(&clean, 0);
    mr_ack_expand(m->text_tpl ? m->text_tpl
                              : "We have received your message and will "
                                "answer it soon.\n\nTicket #{{ticket.number}}",
                  v, &body);
    mr_utf8_repair(&clean, body.p ? body.p : "", body.len, true);
    quoted_printable(out, clean.p ? clean.p : "", clean.len);
    mr_buf_release(&clean);
    mr_buf_release(&body);
    return 0;
}

int mr_ack_parse_from(const char *s, char **name, char **addr,
                      struct mr_error *err)
{
    *name = *addr = NULL;
    if (s == NULL)
        return mr_error_set(err, MR_EINVAL, "no address");
    const char *lt = strrchr(s, '<');
    const char *a = s, *ae = s + strlen(s);
    if (lt) {
        const char *gt = strchr(lt, '>');
        if (!gt)
            return mr_error_set(err, MR_EINVAL, "'%s': '<' without '>'", s);
        for (const char *p = gt + 1; *p; p++)
            if (*p != ' ')
                return mr_error_set(err, MR_EINVAL,
                                    "'%s': text after the address", s);
        a = lt + 1;
        ae = gt;
        const char *nb = s, *ne = lt;
        while (nb < ne && (*nb == ' ' || *nb == '"'))
            nb++;
        while (ne > nb && (ne[-1] == ' ' || ne[-1] == '"'))
            ne--;
        if (ne > nb)
            *name = mr_xstrndup(nb, (size_t)(ne - nb));
    } else {
        while (a < ae && *a == ' ')
            a++;
        while (ae > a && ae[-1] == ' ')
            ae--;
    }
    *addr = mr_xstrndup(a, (size_t)(ae - a));
    if (!mr_ack_address_ok(*addr)) {
        int rc = mr_error_set(err, MR_EINVAL,
                              "'%s' is not an address such as "
                              "support@example.com or \"Support "
                              "<support@example.com>\"",
                              s);
        free(*name);
        free(*addr);
        *name = *addr = NULL;
        return rc;
    }
    return 0;
}
