/* SPDX-License-Identifier: Apache-2.0 */
/*
 * subject.c - the subject as the subject fallback compares it.
 *
 * Mail clients prepend a reply or forward marker in the user's language
 * ("AW:", "SV:", "回复："), stack them ("AW: WG: Re[2]: RE :"), number them
 * ("Re[2]:", "Re(2):", "Re*2:"), put a space or an NBSP before the colon
 * (French typography, Outlook), and gateways add tags ("[EXTERNAL]",
 * "[list-name]"). Stripping them makes a reply's subject equal to its
 * ticket's (research/pitfalls.md 6b). What is stripped is a closed list of
 * markers followed by a colon: an arbitrary "Word:" ("Error:", "OT:") is
 * content and stays.
 *
 * The work is one pass over the leading markers (each step consumes at
 * least one byte, and a bracketed tag is looked for within TAG_MAX bytes)
 * and one copy of the rest that stops when the output is full, so a
 * hostile 64 KiB subject of "Re: " costs linear time and no memory.
 */
#include "ticket/thread.h"

#include <stdbool.h>
#include <string.h>

#include "util/span.h"

/* A bracketed tag longer than this is text, not a tag. */
#define TAG_MAX 64
/* Digits of a counter in "Re[2]:" or of a ticket number in "[#1042]". */
#define DIGITS_MAX 18
/* Characters of a mac in "[#1042-<mac>]". */
#define MAC_CHARS_MAX 32

/*
 * Reply and forward markers as clients write them, matched ASCII
 * case-insensitively (so "Re" covers RE, re and rE). A space in a marker
 * matches any run of white space. Non-ASCII letters are matched exactly,
 * hence both cases of "Réf". The marker must be followed by an optional
 * counter, optional white space and a colon (ASCII or fullwidth).
 */
/* clang-format off */
static const char *const markers[] = {
    /* English, and what most clients write in any language */
    "Re", "Fw", "Fwd",
    /* German */
    "Aw", "Wg", "Antwort",
    /* Nordic: Svar, Vs (Videresendt / Vastaus), Vb (Vidarebefordra), Vl */
    "Sv", "Vs", "Vb", "Vl",
    /* French, Italian, Spanish, Portuguese */
    "Tr", "Réf", "RÉF", "Ref", "Rif", "R", "Rv", "Enc", "Res",
    /* Dutch, Polish, Turkish, Baltic, Indonesian */
    "Antw", "Doorst", "Odp", "Pd", "Ynt", "İlt", "Ats", "Pers", "Atb",
    "Pārs", "Bls", "Trs",
    /* Greek, Hebrew */
    "ΑΠ", "Απ", "ΣΧΕΤ", "Σχετ", "ΠΡΘ", "Πρθ", "השב", "הועבר",
    /* Chinese (simplified and traditional), Japanese, Korean */
    "回复", "答复", "转发", "回覆", "轉寄", "轉發", "返信", "転送",
    "회신", "전달",
    /* Auto-reply subjects, so an out-of-office lines up with its ticket */
    "Automatic reply", "Auto reply", "Auto-reply", "Autoreply",
    "Out of Office", "Out of Office Reply", "Out of Office AutoReply",
    "Abwesenheitsnotiz", "Automatische Antwort", "Automatisch antwoord",
    "Réponse automatique", "Respuesta automática", "Risposta automatica",
    "Resposta automática", "自动回复", "自動回覆", "自動応答",
};
/* clang-format on */

/* White space as clients write it: ASCII, NBSP and the ideographic
 * space. Returns its length at p, or 0. */
static size_t ws_len(const char *p, size_t n)
{
    if (n >= 1 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\r' || p[0] == '\n'))
        return 1;
    if (n >= 2 && (unsigned char)p[0] == 0xC2 && (unsigned char)p[1] == 0xA0)
        return 2;
    if (n >= 3 && (unsigned char)p[0] == 0xE3 && (unsigned char)p[1] == 0x80 &&
        (unsigned char)p[2] == 0x80)
        return 3;
    return 0;
}

static size_t skip_ws(const char *p, size_t n)
{
    size_t i = 0, k;
    while (i < n && (k = ws_len(p + i, n - i)) > 0)
        i += k;
    return i;
}

static size_t colon_len(const char *p, size_t n)
{
    if (n >= 1 && p[0] == ':')
        return 1;
    /* U+FF1A FULLWIDTH COLON, as CJK clients write it */
    if (n >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBC &&
        (unsigned char)p[2] == 0x9A)
        return 3;
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    unsigned char l = (unsigned char)(c | 0x20);
    return is_digit(c) || (l >= 'a' && l <= 'z');
}

static size_t digits(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && i <= DIGITS_MAX && is_digit(p[i]))
        i++;
    return i > DIGITS_MAX ? 0 : i;
}

/* The marker word w at p: its length in the input, or 0. */
static size_t match_word(const char *p, size_t n, const char *w)
{
    size_t i = 0;
    for (; *w; w++) {
        if (*w == ' ') {
            size_t k = skip_ws(p + i, n - i);
            if (k == 0)
                return 0;
            i += k;
            continue;
        }
        if (i >= n)
            return 0;
        unsigned char a = (unsigned char)p[i], b = (unsigned char)*w;
        if (a != b && !(b < 0x80 && mr_lower(a) == mr_lower(b)))
            return 0;
        i++;
    }
    return i;
}

/* "[2]", "(2)", "*2" or "^2" after a marker: its length, or 0. */
static size_t counter_len(const char *p, size_t n)
{
    if (n < 2)
        return 0;
    size_t d = digits(p + 1, n - 1);
    if (d == 0)
        return 0;
    if (p[0] == '*' || p[0] == '^')
        return 1 + d;
    if ((p[0] == '[' && 1 + d < n && p[1 + d] == ']') ||
        (p[0] == '(' && 1 + d < n && p[1 + d] == ')'))
        return 2 + d;
    return 0;
}

/* A reply/forward marker with its counter and colon at p: its length, or
 * 0. The longest marker that is followed by a colon wins. */
static size_t marker_len(const char *p, size_t n)
{
    size_t best = 0;
    for (size_t m = 0; m < sizeof markers / sizeof markers[0]; m++) {
        size_t i = match_word(p, n, markers[m]);
        if (i == 0)
            continue;
        i += skip_ws(p + i, n - i);
        i += counter_len(p + i, n - i);
        i += skip_ws(p + i, n - i);
        size_t c = colon_len(p + i, n - i);
        if (c > 0 && i + c > best)
            best = i + c;
    }
    return best;
}

/* A tag opening at p ("[" or "【"): the length of the opener, or 0. */
static size_t open_len(const char *p, size_t n)
{
    if (n >= 1 && p[0] == '[')
        return 1;
    if (n >= 3 && (unsigned char)p[0] == 0xE3 && (unsigned char)p[1] == 0x80 &&
        (unsigned char)p[2] == 0x90)
        return 3;
    return 0;
}

static size_t close_len(const char *p, size_t n)
{
    if (n >= 1 && p[0] == ']')
        return 1;
    if (n >= 3 && (unsigned char)p[0] == 0xE3 && (unsigned char)p[1] == 0x80 &&
        (unsigned char)p[2] == 0x91)
        return 3;
    return 0;
}

/* A bracketed tag at p ("[EXTERNAL]", "[list-name]", "【外部】"): its
 * length, or 0. Non-empty, no nested bracket, within TAG_MAX bytes. */
static size_t tag_len(const char *p, size_t n)
{
    size_t o = open_len(p, n);
    if (o == 0)
        return 0;
    for (size_t i = o; i < n && i < TAG_MAX; i++) {
        size_t c = close_len(p + i, n - i);
        if (c > 0)
            return i > o ? i + c : 0;
        if (open_len(p + i, n - i) > 0 || p[i] == '\n')
            return 0;
    }
    return 0;
}

/* A ticket tag "[#1042]" or "[#1042-<mac>]" at p: its length, or 0. */
static size_t ticket_tag_len(const char *p, size_t n)
{
    if (n < 4 || p[0] != '[' || p[1] != '#')
        return 0;
    size_t i = 2, d = digits(p + i, n - i);
    if (d == 0)
        return 0;
    i += d;
    if (i < n && p[i] == '-') {
        size_t k = 0;
        i++;
        while (i < n && k < MAC_CHARS_MAX && is_alnum(p[i])) {
            i++;
            k++;
        }
        if (k == 0)
            return 0;
    }
    return i < n && p[i] == ']' ? i + 1 : 0;
}

/* The length without trailing ASCII white space. */
static size_t trim_end(const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' ||
                     p[n - 1] == '\n'))
        n--;
    return n;
}

/* Without the trailing "(fwd)" of old Pine-style forwards, trimmed. */
static size_t strip_fwd_suffix(const char *p, size_t n)
{
    n = trim_end(p, n);
    while (n >= 5 && p[n - 5] == '(' &&
           mr_lower((unsigned char)p[n - 4]) == 'f' &&
           mr_lower((unsigned char)p[n - 3]) == 'w' &&
           mr_lower((unsigned char)p[n - 2]) == 'd' && p[n - 1] == ')')
        n = trim_end(p, n - 5);
    return n;
}

/* An old-style forward "[Fwd: subject]" (p[0..n) trimmed at the end):
 * the whole subject in brackets, opening with a marker. */
static bool wrapped(const char *p, size_t n)
{
    if (n < 2 || p[0] != '[' || p[n - 1] != ']')
        return false;
    /* "[Fwd: a] b [c]" is a tag and text, not one wrapped subject. */
    size_t t = tag_len(p, n);
    if (t != 0 && t != n)
        return false;
    return marker_len(p + 1, n - 2) > 0;
}

/* Writes p[0..n) to out with ticket tags dropped, white space collapsed
 * and ASCII lower-cased; trims; never cuts a UTF-8 sequence. */
static void copy_folded(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    bool pending_space = false;
    while (i < n) {
        size_t k = ws_len(p + i, n - i);
        if (k > 0) {
            pending_space = o > 0;
            i += k;
            continue;
        }
        k = ticket_tag_len(p + i, n - i);
        if (k > 0) {
            pending_space = o > 0;
            i += k;
            continue;
        }
        /* One whole UTF-8 sequence (or one stray byte) at a time. */
        unsigned char c = (unsigned char)p[i];
        size_t len = c < 0x80    ? 1
                     : c >= 0xF0 ? 4
                     : c >= 0xE0 ? 3
                     : c >= 0xC0 ? 2
                                 : 1;
        if (len > n - i)
            len = n - i;
        for (size_t j = 1; j < len; j++)
            if (((unsigned char)p[i + j] & 0xC0) != 0x80) {
                len = j;
                break;
            }
        if (o + pending_space + len + 1 > cap)
            break;
        if (pending_space)
            out[o++] = ' ';
        pending_space = false;
        for (size_t j = 0; j < len; j++)
            out[o++] = (char)mr_lower((unsigned char)p[i + j]);
        i += len;
    }
    out[o] = '\0';
}

void mr_thread_normalize_subject(const char *subject, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return;
    out[0] = '\0';
    if (subject == NULL)
        return;
    const char *p = subject;
    size_t n = strlen(subject);

    n = strip_fwd_suffix(p, n);
    /* Each round removes white space, a marker, a tag or a wrapping
     * "[Fwd: ...]" pair, or stops: the loop ends within n rounds, and the
     * end is trimmed only when a pair is unwrapped, so the work is linear. */
    for (;;) {
        size_t k = skip_ws(p, n);
        k += marker_len(p + k, n - k);
        if (k > 0) {
            p += k;
            n -= k;
            continue;
        }
        if (wrapped(p, n)) {
            p++;
            n = strip_fwd_suffix(p, n - 2);
            continue;
        }
        k = tag_len(p, n);
        if (k == 0)
            break;
        p += k;
        n -= k;
    }
    copy_folded(p, n, out, cap);
}
