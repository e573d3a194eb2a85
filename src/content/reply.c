/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reply.c - the visible reply (reply.h; docs/reply.md lists every rule).
 *
 * The text is cut into lines once; every rule then looks at a line, or at
 * a window of at most a few lines next to it, so the work is linear in the
 * input whatever it holds (email_reply_parser's "pathological" fixture
 * exists because a regex over the whole body was not).
 *
 * Two stages, each switchable (the corpus proof needs them apart, since
 * talon's quotation tests keep signatures and its signature tests have no
 * quotes):
 *
 *   quotes      read top to bottom. ">" lines go. An attribution ("On ...
 *               wrote:" and its translations, over up to three lines as
 *               Gmail wraps it) goes; when the next line is not ">" the
 *               quote is not marked and everything from the attribution
 *               on goes. Outlook's header block (From:/Sent:/To:/Subject:
 *               and translations), an "Original Message" banner or an
 *               underscore rule also end the reply. Lines between ">"
 *               blocks stay: that is an interleaved answer. A forward
 *               banner stops the stage: the forward is kept as it is.
 *   signature   on what the sender wrote before any forward: a "-- " (or
 *               "--") line and everything after it; then, from the end,
 *               repeatedly: a device line ("Sent from my iPhone"), a
 *               sign-off ("Thanks,", "Mit freundlichen Grüßen") with at
 *               most four short name lines after it, a "-Name" line, and
 *               a block of short lines holding contact details (two or
 *               more e-mail addresses, URLs or phone numbers).
 *
 * Nothing ever comes out empty when the input had text: if the signature
 * stage leaves nothing, its removal is undone; if the quote stage leaves
 * nothing (a bare forward of a quote), the input is kept whole.
 */
#include "reply.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/utf8.h"
#include "content-private.h"
#include "html_text.h"

#define HEADER_MAX_LINES 3    /* an attribution wraps over at most this */
#define HEADER_MAX_BYTES 500  /* longer is prose, not an attribution */
#define FIELD_RUN_MAX 12      /* lines looked at for an Outlook block */
#define SIGNOFF_NAME_LINES 4  /* name lines a sign-off may carry */
#define SIG_BLOCK_LINES 12    /* non-blank lines of a contact block */
#define SHORT_LINE_BYTES 60   /* a name or contact line is no longer */
#define SHORT_LINE_WORDS 6
#define TAIL_PASSES 8         /* signature pieces removed from the end */

struct line {
    const char *p;
    size_t n;    /* without the line break and trailing spaces */
    bool drop;
};

/* ---- small helpers over one line --------------------------------------- */

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
           c == '\v';
}

/* The line without leading spaces (no-break ones too). */
static void ltrim(const char **p, size_t *n)
{
    while (*n) {
        if (is_space((unsigned char)**p)) {
            (*p)++, (*n)--;
        } else if (*n >= 2 && (unsigned char)(*p)[0] == 0xC2 &&
                   (unsigned char)(*p)[1] == 0xA0) {
            *p += 2, *n -= 2;
        } else {
            break;
        }
    }
}

static void rtrim(const char *p, size_t *n)
{
    while (*n && (is_space((unsigned char)p[*n - 1]) ||
                  (*n >= 2 && (unsigned char)p[*n - 2] == 0xC2 &&
                   (unsigned char)p[*n - 1] == 0xA0)))
        *n -= is_space((unsigned char)p[*n - 1]) ? 1 : 2;
}

static bool blank(const struct line *l)
{
    const char *p = l->p;
    size_t n = l->n;
    ltrim(&p, &n);
    return n == 0;
}

/* ASCII case-insensitive prefix test; non-ASCII bytes compare exactly, so
 * the lists below spell translations in lower case (and both cases where
 * the first letter is not ASCII). */
static bool iprefix(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && strncasecmp(p, lit, l) == 0;
}

static bool icontains(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    for (size_t i = 0; i + l <= n; i++)
        if (strncasecmp(p + i, lit, l) == 0)
            return true;
    return false;
}

static bool ieq(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

static bool in_list(const char *p, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (ieq(p, n, *list))
            return true;
    return false;
}

static size_t words(const char *p, size_t n)
{
    size_t w = 0;
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        bool s = is_space((unsigned char)p[i]);
        if (!s && !in)
            w++;
        in = !s;
    }
    return w;
}

static bool is_quoted(const struct line *l)
{
    const char *p = l->p;
    size_t n = l->n;
    ltrim(&p, &n);
    return n && p[0] == '>';
}

/* The line without decoration: spaces, dashes, asterisks, underscores and
 * equals signs on both ends (banners come as "---- X ----", "*X*"). */
static void undecorate(const char **p, size_t *n, size_t *dashes)
{
    size_t d = 0;
    while (*n && (is_space((unsigned char)**p) || **p == '-' || **p == '*' ||
                  **p == '_' || **p == '=')) {
        d += **p == '-';
        (*p)++, (*n)--;
    }
    while (*n && (is_space((unsigned char)(*p)[*n - 1]) || (*p)[*n - 1] == '-' ||
                  (*p)[*n - 1] == '*' || (*p)[*n - 1] == '_' ||
                  (*p)[*n - 1] == '=')) {
        d += (*p)[*n - 1] == '-';
        (*n)--;
    }
    if (dashes)
        *dashes = d;
}

static void strip_colon(const char *p, size_t *n)
{
    rtrim(p, n);
    if (*n && p[*n - 1] == ':')
        (*n)--;
    else if (*n >= 3 && memcmp(p + *n - 3, "\xEF\xBC\x9A", 3) == 0)
        *n -= 3; /* full-width colon */
    rtrim(p, n);
}

/* A line of only rule characters: Outlook's underscores, hr's dashes. */
static bool rule_line(const struct line *l, char only)
{
    const char *p = l->p;
    size_t n = l->n, k = 0;
    ltrim(&p, &n);
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == ' ')
            continue;
        if (only ? c != only : (c != '-' && c != '_' && c != '=' && c != '*'))
            return false;
        k++;
    }
    return k >= (only == '_' ? 2u : 3u);
}

/* ---- forwards, banners, Outlook fields --------------------------------- */

static const char *const forward_banners[] = {
    "forwarded message", "begin forwarded message", "forwarded message follows",
    "forwarded e-mail", "weitergeleitete nachricht",
    "anfang der weitergeleiteten nachricht", "message transféré",
    "début du message réexpédié", "message réexpédié", "mensaje reenviado",
    "inicio del mensaje reenviado", "messaggio inoltrato",
    "inizio messaggio inoltrato", "doorgestuurd bericht",
    "begin doorgestuurd bericht", "mensagem encaminhada",
    "início da mensagem reencaminhada", "mensagem reencaminhada",
    "vidarebefordrat meddelande", "videresendt melding",
    "videresendt meddelelse", "przekazana wiadomość",
    "wiadomość przekazana dalej", "пересылаемое сообщение",
    "Пересылаемое сообщение", "転送されたメッセージ", "转发的邮件",
    "轉寄的郵件", NULL};

bool mr__reply_forward_banner(const char *p, size_t n)
{
    if (n > 120)
        return false;
    undecorate(&p, &n, NULL);
    strip_colon(p, &n);
    return in_list(p, n, forward_banners);
}

static const char *const original_banners[] = {
    "original message", "ursprüngliche nachricht", "message d'origine",
    "mensaje original", "messaggio originale", "oorspronkelijk bericht",
    "mensagem original", "originalmeddelande", "opprinnelig melding",
    "oprindelig meddelelse", "wiadomość oryginalna", "исходное сообщение",
    "Исходное сообщение", "元のメッセージ", "原始邮件", "原始郵件", NULL};

/* "-----Original Message-----" and translations: always between dashes. */
static bool original_banner(const struct line *l)
{
    const char *p = l->p;
    size_t n = l->n, dashes;
    if (n > 120)
        return false;
    undecorate(&p, &n, &dashes);
    strip_colon(p, &n);
    return dashes >= 2 && in_list(p, n, original_banners);
}

enum field {
    F_NONE,
    F_FROM,
    F_SENT,
    F_DATE,
    F_TO,
    F_CC,
    F_SUBJECT,
    F_REPLYTO,
};

static const struct {
    const char *name;
    enum field f;
} field_names[] = {
    {"from", F_FROM}, {"von", F_FROM}, {"de", F_FROM}, {"da", F_FROM},
    {"van", F_FROM}, {"från", F_FROM}, {"fra", F_FROM}, {"od", F_FROM},
    {"от", F_FROM}, {"От", F_FROM}, {"差出人", F_FROM}, {"发件人", F_FROM},
    {"寄件者", F_FROM}, {"afzender", F_FROM}, {"remitente", F_FROM},
    {"sent", F_SENT}, {"gesendet", F_SENT}, {"envoyé", F_SENT},
    {"enviado", F_SENT}, {"inviato", F_SENT}, {"verzonden", F_SENT},
    {"skickat", F_SENT}, {"sendt", F_SENT}, {"wysłano", F_SENT},
    {"отправлено", F_SENT}, {"Отправлено", F_SENT}, {"送信日時", F_SENT},
    {"发送时间", F_SENT}, {"傳送時間", F_SENT}, {"enviada em", F_SENT},
    {"date", F_DATE}, {"datum", F_DATE}, {"fecha", F_DATE}, {"data", F_DATE},
    {"дата", F_DATE}, {"Дата", F_DATE}, {"日付", F_DATE}, {"日期", F_DATE},
    {"to", F_TO}, {"an", F_TO}, {"à", F_TO}, {"À", F_TO}, {"a", F_TO},
    {"para", F_TO}, {"aan", F_TO}, {"till", F_TO}, {"til", F_TO},
    {"do", F_TO}, {"кому", F_TO}, {"Кому", F_TO}, {"宛先", F_TO},
    {"收件人", F_TO}, {"cc", F_CC}, {"kopie", F_CC}, {"copie", F_CC},
    {"копия", F_CC}, {"Копия", F_CC}, {"subject", F_SUBJECT},
    {"betreff", F_SUBJECT}, {"objet", F_SUBJECT}, {"asunto", F_SUBJECT},
    {"oggetto", F_SUBJECT}, {"assunto", F_SUBJECT}, {"onderwerp", F_SUBJECT},
    {"ämne", F_SUBJECT}, {"emne", F_SUBJECT}, {"temat", F_SUBJECT},
    {"тема", F_SUBJECT}, {"Тема", F_SUBJECT}, {"件名", F_SUBJECT},
    {"主题", F_SUBJECT}, {"主旨", F_SUBJECT}, {"reply-to", F_REPLYTO},
};

/* "From: x", "*From:* x", "De : x" (French spacing), "件名：x". */
static enum field field_of(const char *p, size_t n)
{
    ltrim(&p, &n);
    while (n && *p == '*')
        p++, n--;
    size_t i = 0;
    while (i < n && i < 24 && p[i] != ':' &&
           !(n - i >= 3 && memcmp(p + i, "\xEF\xBC\x9A", 3) == 0))
        i++;
    if (i == n || i == 24)
        return F_NONE;
    size_t k = i;
    while (k && (p[k - 1] == ' ' || p[k - 1] == '*'))
        k--;
    for (size_t f = 0; f < sizeof field_names / sizeof *field_names; f++)
        if (ieq(p, k, field_names[f].name))
            return field_names[f].f;
    return F_NONE;
}

bool mr__reply_from_field(const char *p, size_t n)
{
    return field_of(p, n < 64 ? n : 64) == F_FROM;
}

/* ---- attributions ("On ... wrote:") ------------------------------------ */

/* Each language's opening word(s) and verb; the verb alone suffices when
 * the line also carries an address or a date (Russian and Asian clients
 * start with the date). */
static const struct {
    const char *prefix;
    const char *verb;
} attributions[] = {
    {"on ", "wrote"},          {"am ", "schrieb"},
    {"le ", "a écrit"},        {"el ", "escribió"},
    {"op ", "schreef"},        {"op ", "geschreven"},
    {"il ", "ha scritto"},     {"em ", "escreveu"},
    {"den ", "skrev"},         {"w dniu ", "pisze"},
    {"w dniu ", "napisał"},    {"dne ", "napsal"},
    {"el ", "va escriure"},    {"on ", "kirjoitti"},
};

static const char *const verbs[] = {
    "wrote",      "schrieb",   "a écrit",   "escribió",  "schreef",
    "ha scritto", "escreveu",  "skrev",     "pisze",     "napisał",
    "написал",    "пишет",     "書きました", "のメッセージ", "写道",
    "寫道",       "kirjoitti", "napsal",    NULL};

static bool has_date_or_address(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '@')
            return true;
        /* hh:mm */
        if (i + 3 < n && p[i] >= '0' && p[i] <= '9' && p[i + 1] == ':' &&
            p[i + 2] >= '0' && p[i + 2] <= '5' && p[i + 3] >= '0' &&
            p[i + 3] <= '9')
            return true;
        /* a year 19xx or 20xx standing alone */
        if (i + 3 < n && (memcmp(p + i, "19", 2) == 0 || memcmp(p + i, "20", 2) == 0) &&
            p[i + 2] >= '0' && p[i + 2] <= '9' && p[i + 3] >= '0' && p[i + 3] <= '9' &&
            (i == 0 || p[i - 1] < '0' || p[i - 1] > '9') &&
            (i + 4 == n || p[i + 4] < '0' || p[i + 4] > '9'))
            return true;
    }
    return false;
}

static bool ends_with_colon(const char *p, size_t n)
{
    rtrim(p, &n);
    return (n && p[n - 1] == ':') ||
           (n >= 3 && memcmp(p + n - 3, "\xEF\xBC\x9A", 3) == 0);
}

static size_t next_nonblank(const struct line *l, size_t nl, size_t i)
{
    while (i < nl && blank(&l[i]))
        i++;
    return i;
}

/* Whether lines i..*end (inclusive) are an attribution. */
static bool attribution(const struct line *l, size_t nl, size_t i, size_t *end)
{
    /* The first line opens the attribution or carries its date or
     * address ("Hi," above "On ... wrote:" is not part of it). */
    const char *p0 = l[i].p;
    size_t n0 = l[i].n;
    ltrim(&p0, &n0);
    while (n0 && (*p0 == '-' || *p0 == '*' || *p0 == ' '))
        p0++, n0--;
    bool opens = has_date_or_address(p0, n0 < HEADER_MAX_BYTES ? n0 : HEADER_MAX_BYTES);
    for (size_t a = 0; !opens && a < sizeof attributions / sizeof *attributions; a++)
        opens = iprefix(p0, n0, attributions[a].prefix);
    if (!opens)
        return false;
    char joined[HEADER_MAX_BYTES];
    size_t jn = 0;
    for (size_t j = i; j < nl && j < i + HEADER_MAX_LINES; j++) {
        const char *p = l[j].p;
        size_t n = l[j].n;
        ltrim(&p, &n);
        if (n == 0 || p[0] == '>' || jn + n + 1 > sizeof joined)
            return false;
        if (jn)
            joined[jn++] = ' ';
        memcpy(joined + jn, p, n);
        jn += n;
        if (!ends_with_colon(p, n))
            continue;
        const char *t = joined;
        size_t tn = jn;
        /* Yahoo: "--- On Wed, 4/4/12, x wrote:". */
        while (tn && (*t == '-' || *t == '*' || *t == ' '))
            t++, tn--;
        for (size_t a = 0; a < sizeof attributions / sizeof *attributions; a++)
            if (iprefix(t, tn, attributions[a].prefix) &&
                icontains(t, tn, attributions[a].verb)) {
                *end = j;
                return true;
            }
        bool dated = has_date_or_address(t, tn);
        for (size_t v = 0; verbs[v]; v++)
            if (dated && icontains(t, tn, verbs[v])) {
                *end = j;
                return true;
            }
        /* Any dated line ending in a colon right before a marked quote
         * (mail.ru: "Thu, 26 Jun 2014 14:00:51 +0400 от X <x@y>:"). */
        size_t k = next_nonblank(l, nl, j + 1);
        if (dated && k < nl && is_quoted(&l[k])) {
            *end = j;
            return true;
        }
        return false;
    }
    return false;
}

/* An Outlook header block starting at i: consecutive field lines (a
 * wrapped To: line may sit between two) naming From and at least two other
 * fields, or one other when a rule or banner stands right above. */
static bool field_block(const struct line *l, size_t nl, size_t i, bool after_rule)
{
    unsigned seen = 0;
    size_t fields = 0;
    for (size_t j = i; j < nl && j < i + FIELD_RUN_MAX; j++) {
        enum field f = field_of(l[j].p, l[j].n);
        if (f == F_NONE) {
            if (blank(&l[j]) || j + 1 >= nl || field_of(l[j + 1].p, l[j + 1].n) == F_NONE)
                break;
            continue;
        }
        if (!(seen & (1u << f)))
            fields++;
        seen |= 1u << f;
    }
    if (!(seen & (1u << F_FROM)))
        return false;
    return fields >= 3 || (fields >= 2 && after_rule);
}

/* ---- signatures ------------------------------------------------------- */

static const char *const device_prefixes[] = {
    "sent from ", "sent with ", "sent via ", "sent using ", "sent on the go",
    "get outlook for ", "download outlook for ", "envoyé de mon ",
    "envoyé depuis ", "envoyé à partir de ", "von meinem ", "gesendet von ",
    "gesendet mit ", "enviado desde ", "enviado do meu ", "enviado de meu ",
    "enviado a partir do ", "inviato da ", "verzonden met ", "verzonden vanaf ",
    "verstuurd vanaf ", "verstuurd met ", "skickat från ", "sendt fra ",
    "wysłane z ", "wysłano z ", "отправлено с ", "Отправлено с ", "via ", NULL};

static const char *const device_suffixes[] = {
    "から送信", "发送", "發送", NULL};

/* "Sent from my iPhone", "Von meinem iPad gesendet", "Get Outlook for
 * iOS": a short line with no sentence in it ("Sent from my desk, is much
 * easier ..." is prose). */
static bool device_line(const struct line *l)
{
    const char *p = l->p;
    size_t n = l->n;
    ltrim(&p, &n);
    if (n == 0 || n > SHORT_LINE_BYTES || memchr(p, ',', n) || memchr(p, '?', n))
        return false;
    size_t w = words(p, n);
    for (size_t i = 0; device_prefixes[i]; i++) {
        if (!iprefix(p, n, device_prefixes[i]))
            continue;
        /* "via" alone needs exactly one more word: "via mobile". */
        if (strcmp(device_prefixes[i], "via ") == 0)
            return w == 2;
        return w <= 8;
    }
    for (size_t i = 0; device_suffixes[i]; i++) {
        size_t sl = strlen(device_suffixes[i]);
        if (n >= sl && n < 48 && memcmp(p + n - sl, device_suffixes[i], sl) == 0)
            return true;
    }
    return false;
}

static const char *const signoffs[] = {
    /* English */
    "thanks", "thank you", "thanks so much", "thank you so much",
    "thanks again", "thanks a lot", "many thanks", "thanks in advance",
    "thanks and regards", "thanks & regards", "thanks and best regards",
    "with thanks", "thx", "ty", "cheers", "regards", "best regards",
    "kind regards", "warm regards", "warmest regards", "kindest regards",
    "best wishes", "all the best", "best", "sincerely", "yours sincerely",
    "sincerely yours", "yours truly", "yours", "respectfully", "cordially",
    "br", "kr", "rgds", "take care", "talk soon", "greetings",
    /* German */
    "mit freundlichen grüßen", "mit freundlichen grüssen",
    "mit freundlichem gruß", "freundliche grüße", "viele grüße",
    "beste grüße", "liebe grüße", "herzliche grüße", "schöne grüße",
    "grüße", "gruß", "lg", "vg", "mfg", "danke", "vielen dank",
    /* French */
    "cordialement", "bien cordialement", "bien à vous", "merci",
    "merci beaucoup", "salutations", "sincères salutations",
    "bonne journée", "amicalement", "à bientôt",
    /* Spanish */
    "saludos", "un saludo", "saludos cordiales", "atentamente", "gracias",
    "muchas gracias", "un abrazo", "cordialmente",
    /* Dutch */
    "met vriendelijke groet", "met vriendelijke groeten",
    "vriendelijke groet", "groeten", "groetjes", "mvg", "bedankt",
    /* Italian */
    "cordiali saluti", "distinti saluti", "saluti", "grazie",
    "grazie mille", "un saluto",
    /* Portuguese */
    "atenciosamente", "abraços", "abraço", "obrigado", "obrigada",
    "cumprimentos", "saudações",
    /* Swedish, Norwegian, Danish */
    "med vänlig hälsning", "vänliga hälsningar", "hälsningar", "mvh",
    "tack", "med vennlig hilsen", "vennlig hilsen", "med venlig hilsen",
    "venlig hilsen", "hilsen", "takk",
    /* Polish */
    "pozdrawiam", "z poważaniem", "dziękuję", "pozdrowienia",
    /* Russian */
    "с уважением", "С уважением", "спасибо", "Спасибо", "всего доброго",
    "Всего доброго", "всего наилучшего", "Всего наилучшего",
    /* Japanese, Chinese */
    "よろしくお願いします", "よろしくお願いいたします", "宜しくお願いします",
    "谢谢", "謝謝", "此致", "此致敬礼", "祝好", NULL};

/* A name: a few words, the first capitalised (ASCII) or not ASCII at
 * all, no sentence punctuation. */
static bool name_words(const char *p, size_t n)
{
    ltrim(&p, &n);
    rtrim(p, &n);
    if (n == 0 || n > 40 || words(p, n) > 3)
        return false;
    if ((unsigned char)p[0] < 0x80 && !(p[0] >= 'A' && p[0] <= 'Z'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] == ',' || p[i] == ';' || p[i] == ':' || p[i] == '!' ||
            p[i] == '?')
            return false;
    return true;
}

/* "Thanks,", "Best regards", "Cheers, Alex". */
static bool signoff_line(const struct line *l, bool *with_name)
{
    const char *p = l->p;
    size_t n = l->n;
    ltrim(&p, &n);
    if (n == 0 || n > SHORT_LINE_BYTES)
        return false;
    const char *comma = memchr(p, ',', n);
    size_t k = comma ? (size_t)(comma - p) : n;
    size_t m = k;
    while (m && (p[m - 1] == '!' || p[m - 1] == '.' || p[m - 1] == ' ' ||
                 p[m - 1] == '-'))
        m--;
    if (!in_list(p, m, signoffs))
        return false;
    *with_name = comma && name_words(comma + 1, n - k - 1);
    /* "Thanks, that fixed it" is a sentence, not a sign-off. */
    return !comma || k + 1 >= n || *with_name || words(comma + 1, n - k - 1) == 0;
}

static bool short_line(const struct line *l)
{
    const char *p = l->p;
    size_t n = l->n;
    ltrim(&p, &n);
    return n <= SHORT_LINE_BYTES && words(p, n) <= SHORT_LINE_WORDS &&
           !(n && p[n - 1] == '?');
}

/* An address, a URL or a phone number: what a signature block carries. */
static bool contact_line(const struct line *l)
{
    const char *p = l->p;
    size_t n = l->n;
    if (memchr(p, '@', n) || icontains(p, n, "http://") ||
        icontains(p, n, "https://") || icontains(p, n, "www."))
        return true;
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= '0' && c <= '9')
            digits++;
        else if (!(c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' ||
                   c == '+' || c == '/') && digits >= 7)
            break;
    }
    return digits >= 7;
}

/* "-Abhishek Kona": a dash glued to a name (a list item has a space). */
static bool dash_name(const struct line *l)
{
    const char *p = l->p;
    size_t n = l->n;
    ltrim(&p, &n);
    size_t d = 0;
    while (d < n && (p[d] == '-' || p[d] == '~'))
        d++;
    if (d == 0 || d > 2 || d == n || is_space((unsigned char)p[d]))
        return false;
    return name_words(p + d, n - d) || words(p + d, n - d) <= 3;
}

static bool delimiter(const struct line *l)
{
    /* "-- " is RFC 3676's; many clients drop its space. */
    return (l->n == 2 || (l->n == 3 && l->p[2] == ' ')) && l->p[0] == '-' &&
           l->p[1] == '-';
}

/* Index of the last kept, non-blank line before end, or SIZE_MAX. */
static size_t last_kept(const struct line *l, size_t end)
{
    while (end > 0) {
        end--;
        if (!l[end].drop && !blank(&l[end]))
            return end;
    }
    return SIZE_MAX;
}

static void drop_from(struct line *l, size_t from, size_t end)
{
    for (size_t i = from; i < end; i++)
        l[i].drop = true;
}

/* One piece of signature at the end of l[0..end); true when one went. */
static bool drop_tail_piece(struct line *l, size_t end)
{
    size_t last = last_kept(l, end);
    if (last == SIZE_MAX)
        return false;

    if (device_line(&l[last])) {
        size_t above = last ? last - 1 : SIZE_MAX;
        /* "Stavros X / via mobile": the name right above goes too. */
        if (above != SIZE_MAX && !l[above].drop && !blank(&l[above]) &&
            name_words(l[above].p, l[above].n))
            last = above;
        drop_from(l, last, end);
        return true;
    }
    if (dash_name(&l[last])) {
        drop_from(l, last, end);
        return true;
    }

    /* A sign-off with a few name lines under it. */
    size_t k = last, names = 0;
    for (;;) {
        bool with_name = false;
        if (signoff_line(&l[k], &with_name)) {
            if (names > 0 || with_name) {
                drop_from(l, k, end);
                return true;
            }
            break;
        }
        if (!short_line(&l[k]) || ++names > SIGNOFF_NAME_LINES)
            break;
        k = last_kept(l, k);
        if (k == SIZE_MAX)
            break;
    }

    /* Whole paragraphs of short lines with contact details, from the
     * end up to a paragraph with a longer line in it. */
    size_t first = SIZE_MAX, nonblank = 0, contacts = 0;
    size_t pfirst = SIZE_MAX, pnon = 0, pcon = 0;
    for (size_t i = last + 1; i-- > 0;) {
        bool top = l[i].drop || i == 0;
        if (!l[i].drop && !blank(&l[i])) {
            if (!short_line(&l[i]))
                break;
            pfirst = i;
            pnon++;
            pcon += contact_line(&l[i]);
            if (i > 0)
                continue;
        }
        if (pnon) {
            /* A paragraph ends: it belongs to the block. */
            first = pfirst;
            nonblank += pnon;
            contacts += pcon;
            pnon = pcon = 0;
            if (nonblank > SIG_BLOCK_LINES)
                return false;
        }
        if (top)
            break;
    }
    if (first != SIZE_MAX && contacts >= 2 && contacts * 5 >= nonblank * 2 &&
        last_kept(l, first) != SIZE_MAX) {
        const struct line *f = &l[first];
        const char *p = f->p;
        size_t n = f->n;
        ltrim(&p, &n);
        if (rule_line(f, 0) || (n && p[n - 1] != ':' && !contact_line(f))) {
            drop_from(l, first, end);
            return true;
        }
    }
    return false;
}

/* ---- the stages ------------------------------------------------------- */

/* Returns the index of the first forwarded line (nl when none). */
static size_t strip_quotes(struct line *l, size_t nl)
{
    for (size_t i = 0; i < nl; i++) {
        struct line *x = &l[i];
        if (is_quoted(x)) {
            x->drop = true;
            continue;
        }
        if (mr__reply_forward_banner(x->p, x->n))
            return i;
        size_t end;
        size_t cut = SIZE_MAX;
        if (attribution(l, nl, i, &end)) {
            size_t k = next_nonblank(l, nl, end + 1);
            if (k < nl && is_quoted(&l[k])) {
                /* Marked quote: only it goes; an interleaved answer
                 * after it stays. */
                drop_from(l, i, end + 1);
                i = end;
                continue;
            }
            cut = i;
        } else if (original_banner(x) || rule_line(x, '_')) {
            cut = i;
        } else if (field_of(x->p, x->n) != F_NONE &&
                   (i == 0 || field_of(l[i - 1].p, l[i - 1].n) == F_NONE)) {
            size_t above = i;
            while (above > 0 && blank(&l[above - 1]))
                above--;
            bool after_rule = above > 0 && (rule_line(&l[above - 1], 0) ||
                                            original_banner(&l[above - 1]));
            if (field_block(l, nl, i, after_rule))
                cut = i;
        }
        if (cut == SIZE_MAX)
            continue;
        /* The rule, banner and blank lines right above go with it. */
        while (cut > 0 && (blank(&l[cut - 1]) || rule_line(&l[cut - 1], 0) ||
                           original_banner(&l[cut - 1])))
            cut--;
        drop_from(l, cut, nl);
        return nl;
    }
    return nl;
}

static void strip_signature(struct line *l, size_t end)
{
    for (size_t i = 0; i < end; i++)
        if (!l[i].drop && delimiter(&l[i])) {
            drop_from(l, i, end);
            break;
        }
    for (int pass = 0; pass < TAIL_PASSES; pass++) {
        /* Rules left hanging at the end (an hr above a removed quote). */
        size_t last = last_kept(l, end);
        while (last != SIZE_MAX && rule_line(&l[last], 0)) {
            drop_from(l, last, end);
            last = last_kept(l, last);
        }
        if (!drop_tail_piece(l, end))
            break;
    }
}

static size_t split_lines(const char *t, size_t n, struct line **out)
{
    size_t cap = 64, nl = 0;
    struct line *l = mr_xmalloc(cap * sizeof *l);
    size_t i = 0;
    while (i <= n) {
        const char *s = t + i;
        const char *e = i < n ? memchr(s, '\n', n - i) : NULL;
        size_t len = e ? (size_t)(e - s) : n - i;
        if (nl == cap) {
            cap *= 2;
            l = mr_xrealloc(l, cap * sizeof *l);
        }
        size_t k = len;
        rtrim(s, &k);
        l[nl++] = (struct line){.p = s, .n = k};
        if (!e)
            break;
        i += len + 1;
    }
    *out = l;
    return nl;
}

/* Writes the kept lines: no blank lines at either end, at most one in a
 * row. Returns whether anything visible was written. */
static bool emit(const struct line *l, size_t nl, struct mr_buf *out)
{
    bool any = false, gap = false;
    for (size_t i = 0; i < nl; i++) {
        if (l[i].drop)
            continue;
        if (blank(&l[i])) {
            gap = any;
            continue;
        }
        if (any)
            mr_buf_append(out, gap ? "\n\n" : "\n", gap ? 2 : 1);
        mr_utf8_repair(out, l[i].p, l[i].n, true);
        any = true;
        gap = false;
    }
    return any;
}

void mr_reply_strip_text(const char *text, size_t n, unsigned what,
                         struct mr_buf *out)
{
    struct line *l;
    size_t nl = split_lines(text, n, &l);
    size_t start = out->len;
    size_t fwd = nl;
    if (what & MR_REPLY_QUOTES)
        fwd = strip_quotes(l, nl);
    bool any = false;
    if (what & MR_REPLY_SIGNATURE) {
        bool *was_dropped = mr_xmalloc(nl ? nl : 1);
        for (size_t i = 0; i < nl; i++)
            was_dropped[i] = l[i].drop;
        strip_signature(l, fwd);
        any = emit(l, nl, out);
        if (!any) {
            /* All signature: what the sender wrote is the signature. */
            for (size_t i = 0; i < nl; i++)
                l[i].drop = was_dropped[i];
            mr_buf_truncate(out, start);
            any = emit(l, nl, out);
        }
        free(was_dropped);
    } else {
        any = emit(l, nl, out);
    }
    if (!any) {
        /* All quote: keep it all rather than show nothing. */
        mr_buf_truncate(out, start);
        for (size_t i = 0; i < nl; i++)
            l[i].drop = false;
        emit(l, nl, out);
    }
    free(l);
}

void mr_reply_strip_html(const char *html, size_t n, unsigned what,
                         struct mr_buf *out)
{
    struct mr__html_text_opts o = {
        .drop_quotes = (what & MR_REPLY_QUOTES) != 0,
        .drop_signatures = (what & MR_REPLY_SIGNATURE) != 0,
    };
    struct mr_buf t;
    mr_buf_init(&t, out->max ? out->max : 0);
    mr__html_text(html, n, &o, &t);
    size_t start = out->len;
    mr_reply_strip_text(t.p ? t.p : "", t.len, what, out);
    if (out->len == start) {
        /* Everything was a quote container: the whole text, quoted. */
        mr_buf_reset(&t);
        mr_html_to_text(html, n, &t);
        mr_reply_strip_text(t.p ? t.p : "", t.len, 0, out);
    }
    mr_buf_release(&t);
}

void mr_reply_visible_text(const char *text, size_t n, struct mr_buf *out)
{
    mr_reply_strip_text(text, n, MR_REPLY_QUOTES | MR_REPLY_SIGNATURE, out);
}

void mr_reply_visible_html(const char *html, size_t n, struct mr_buf *out)
{
    mr_reply_strip_html(html, n, MR_REPLY_QUOTES | MR_REPLY_SIGNATURE, out);
}
