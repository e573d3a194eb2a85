/* SPDX-License-Identifier: Apache-2.0 */
/*
 * charset.c - labels to iconv names, iconv to UTF-8, uchardet for the rest.
 *
 * Labels are aliased the way browsers do (WHATWG Encoding, section 4.2),
 * because that is what the senders' software meant: "iso-8859-1" mail
 * written on Windows carries 0x93/0x94 quotes, "gb2312" carries GBK,
 * "ks_c_5601-1987" carries CP949, "shift_jis" carries CP932. A label not
 * in the table is upper-cased and tried on iconv directly, which knows
 * several hundred more; only after that is it unknown.
 *
 * iconv descriptors are cached per resolved name, failures included, in a
 * small LRU: opening one costs a gconv module lookup, and a hostile message
 * can name a thousand charsets. Every conversion resets the descriptor.
 *
 * Most charsets are then converted through tables that iconv itself fills
 * in, so that no table is written by hand: one of 256 entries for single
 * bytes, built on first use, and for the lead bytes of double-byte
 * charsets (Shift_JIS/CP932, GBK/GB18030, CP949) rows of 256 pairs, each
 * pair asked of iconv the first time it is met. Anything else - a
 * sequence of more than two bytes (GB18030's four-byte ones), a character
 * iconv holds back (glibc's composing CP1255, CP1258, Big5-HKSCS) - makes
 * the conversion go on with iconv from that character on; charsets with
 * shift states or wider units (ISO-2022, UTF-7, UTF-16/32) never use
 * tables. Measured on the parse benchmark: iconv, through its UCS-4 middle
 * step, decoded 300-400 MB/s and was 17% of the time on messages without
 * attachments (a quarter of the instructions for Japanese and Chinese
 * text); the tables copy ASCII runs sixteen bytes at a time.
 *
 * uchardet is loaded with dlopen when the first text needs detecting, not
 * linked: it is a C++ library, and linking it loads libstdc++, libm and
 * libgcc_s into every mailroom process and runs their initialisers (1.3 MB
 * of the peak RSS of `mailroom parse`, and 0.5 ms of start-up) for a step
 * that labelled mail, the rule, never takes. systemd loads its optional
 * libraries the same way. Without the library, detection has no guess and
 * decodes as windows-1252, as it does when uchardet has none.
 *
 * Errors never stop a conversion: an invalid byte becomes U+FFFD and the
 * decoder goes on one byte (or one UTF-16/32 unit) further; a truncated
 * final character becomes U+FFFD. iconv output is validated again and NUL
 * bytes dropped, because some decoders (UTF-7 notably) can produce NUL or
 * lone surrogates: whatever the label, what comes out is just text.
 */
#include "charset.h"

#include <dlfcn.h>
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <uchardet/uchardet.h>

#include "../util/error.h"
#include "../util/scan.h"
#include "../util/utf8.h"

#define CACHE_SIZE 16
#define NAME_MAX_LEN 40
/* uchardet settles within a few KiB; more only costs time. */
#define DETECT_MAX (64 * 1024)

/* Entries of the tables below: the length of the UTF-8 (1-4), or one of
 * these. */
enum {
    T_BAD = 0,      /* not a character: U+FFFD, and on one byte */
    T_LEAD = 0xFE,  /* (bytes) the first of a pair */
    T_ASK = 0,      /* (pairs) not asked of iconv yet */
    T_ICONV = 0xFD, /* (pairs) longer than two bytes, or held back */
    T_NOPAIR = 0xFF /* (pairs) not a character */
};

struct pair_row {
    unsigned char len[256]; /* by second byte: T_ASK, 1-4, T_ICONV, T_NOPAIR */
    unsigned char utf8[256][4];
};

/* What the bytes of a charset decode to, built on first use. */
struct byte_table {
    unsigned char len[256];     /* 1-4, T_BAD or T_LEAD */
    unsigned char utf8[256][4]; /* never NUL (byte 0 is dropped) */
    bool ascii;                 /* 0x01-0x7F decode to themselves */
    struct pair_row *rows[256]; /* by lead byte, allocated when first met */
};

struct entry {
    char name[NAME_MAX_LEN]; /* resolved iconv name; "" when free */
    iconv_t cd;              /* (iconv_t)-1: iconv does not know it */
    unsigned long stamp;     /* last use, for LRU eviction */
    bool probed;             /* table below tried (it may still be NULL) */
    struct byte_table *table; /* owned; NULL: not a single-byte charset */
};

#define UCHARDET_SONAME "libuchardet.so.0"

/* uchardet through dlopen: the functions of <uchardet/uchardet.h>, typed
 * from its prototypes. */
struct detector {
    bool tried;     /* dlopen was attempted (once per context) */
    void *lib;      /* dlclose when set */
    uchardet_t det; /* NULL: no detector; guesses are then empty */
    __typeof__(&uchardet_new) new_;
    __typeof__(&uchardet_delete) delete_;
    __typeof__(&uchardet_reset) reset;
    __typeof__(&uchardet_handle_data) handle_data;
    __typeof__(&uchardet_data_end) data_end;
    __typeof__(&uchardet_get_charset) get_charset;
};

#define MEMO_SIZE 8

/* A label and what it resolved to ("" for nothing). */
struct memo {
    char lab[NAME_MAX_LEN];
    char name[NAME_MAX_LEN];
};

struct mr_charset_ctx {
    struct entry cache[CACHE_SIZE];
    unsigned long tick;
    struct memo memo[MEMO_SIZE];
    unsigned memo_next;
    struct detector det; /* loaded on first detection */
};

struct alias {
    const char *label; /* lower case */
    const char *name;  /* iconv name */
};

/* WHATWG labels (and a few mail-only ones) whose iconv name differs from
 * the upper-cased label, or whose meaning is wider than the label says. */
static const struct alias aliases[] = {
    {"utf-8", "UTF-8"},
    {"utf8", "UTF-8"},
    {"unicode-1-1-utf-8", "UTF-8"},
    {"unicode11utf8", "UTF-8"},
    {"unicode20utf8", "UTF-8"},
    {"x-unicode20utf8", "UTF-8"},
    /* Latin-1 and ASCII as windows-1252 (WHATWG "windows-1252"). */
    {"us-ascii", "WINDOWS-1252"},
    {"ascii", "WINDOWS-1252"},
    {"ansi_x3.4-1968", "WINDOWS-1252"},
    {"iso-ir-6", "WINDOWS-1252"},
    {"iso646-us", "WINDOWS-1252"},
    {"us", "WINDOWS-1252"},
    {"iso-8859-1", "WINDOWS-1252"},
    {"iso8859-1", "WINDOWS-1252"},
    {"iso88591", "WINDOWS-1252"},
    {"iso_8859-1", "WINDOWS-1252"},
    {"iso_8859-1:1987", "WINDOWS-1252"},
    {"iso-ir-100", "WINDOWS-1252"},
    {"latin1", "WINDOWS-1252"},
    {"latin-1", "WINDOWS-1252"},
    {"l1", "WINDOWS-1252"},
    {"cp819", "WINDOWS-1252"},
    {"ibm819", "WINDOWS-1252"},
    {"csisolatin1", "WINDOWS-1252"},
    {"windows-1252", "WINDOWS-1252"},
    {"cp1252", "WINDOWS-1252"},
    {"x-cp1252", "WINDOWS-1252"},
    {"ansi", "WINDOWS-1252"},
    /* Turkish and Thai supersets, as WHATWG. */
    {"iso-8859-9", "WINDOWS-1254"},
    {"iso8859-9", "WINDOWS-1254"},
    {"iso_8859-9", "WINDOWS-1254"},
    {"latin5", "WINDOWS-1254"},
    {"l5", "WINDOWS-1254"},
    {"iso-8859-11", "WINDOWS-874"},
    {"tis-620", "WINDOWS-874"},
    {"dos-874", "WINDOWS-874"},
    {"iso-8859-8-i", "ISO-8859-8"},
    {"csiso88598i", "ISO-8859-8"},
    {"logical", "ISO-8859-8"},
    {"visual", "ISO-8859-8"},
    /* Chinese: gb2312 and gbk mail is GBK, and GB18030 contains it. */
    {"gb2312", "GB18030"},
    {"gb_2312", "GB18030"},
    {"gb_2312-80", "GB18030"},
    {"csgb2312", "GB18030"},
    {"x-gbk", "GB18030"},
    {"gbk", "GB18030"},
    {"cp936", "GB18030"},
    {"ms936", "GB18030"},
    {"windows-936", "GB18030"},
    {"chinese", "GB18030"},
    {"csiso58gb231280", "GB18030"},
    {"iso-ir-58", "GB18030"},
    {"euc-cn", "GB18030"},
    {"x-euc-cn", "GB18030"},
    {"gb18030", "GB18030"},
    {"big5", "BIG5-HKSCS"},
    {"big5-hkscs", "BIG5-HKSCS"},
    {"cn-big5", "BIG5-HKSCS"},
    {"csbig5", "BIG5-HKSCS"},
    {"x-x-big5", "BIG5-HKSCS"},
    {"cp950", "BIG5-HKSCS"},
    /* Korean: everything is the CP949 superset. */
    {"ks_c_5601-1987", "CP949"},
    {"ks_c_5601-1989", "CP949"},
    {"ks_c_5601", "CP949"},
    {"ksc5601", "CP949"},
    {"ksc_5601", "CP949"},
    {"csksc56011987", "CP949"},
    {"iso-ir-149", "CP949"},
    {"korean", "CP949"},
    {"euc-kr", "CP949"},
    {"cseuckr", "CP949"},
    {"windows-949", "CP949"},
    {"cp949", "CP949"},
    {"uhc", "CP949"},
    /* Japanese: Shift_JIS mail is Windows-31J (CP932). */
    {"shift_jis", "CP932"},
    {"shift-jis", "CP932"},
    {"x-sjis", "CP932"},
    {"sjis", "CP932"},
    {"ms_kanji", "CP932"},
    {"csshiftjis", "CP932"},
    {"windows-31j", "CP932"},
    {"cp932", "CP932"},
    {"ms932", "CP932"},
    {"x-ms-cp932", "CP932"},
    {"euc-jp", "EUC-JP-MS"},
    {"x-euc-jp", "EUC-JP-MS"},
    {"cseucpkdfmtjapanese", "EUC-JP-MS"},
    /* ISO-2022-JP-3 also knows the JIS X 0201 katakana (ESC ( I) that
     * Japanese mailers emit. */
    {"iso-2022-jp", "ISO-2022-JP-3"},
    {"csiso2022jp", "ISO-2022-JP-3"},
    /* Cyrillic. */
    {"koi8-r", "KOI8-R"},
    {"koi8r", "KOI8-R"},
    {"koi8", "KOI8-R"},
    {"koi", "KOI8-R"},
    {"cskoi8r", "KOI8-R"},
    {"koi8-u", "KOI8-U"},
    {"koi8-ru", "KOI8-U"},
    {"ibm866", "IBM866"},
    {"cp866", "IBM866"},
    {"866", "IBM866"},
    {"csibm866", "IBM866"},
    /* Unicode forms. */
    {"utf-7", "UTF-7"},
    {"utf7", "UTF-7"},
    {"unicode-1-1-utf-7", "UTF-7"},
    {"csunicode11utf7", "UTF-7"},
    {"x-utf-7", "UTF-7"},
    {"utf-16", "UTF-16"},
    {"utf16", "UTF-16"},
    {"unicode", "UTF-16"},
    {"ucs-2", "UTF-16"},
    {"csunicode", "UTF-16"},
    {"iso-10646-ucs-2", "UTF-16"},
    {"utf-16le", "UTF-16LE"},
    {"utf-16be", "UTF-16BE"},
    {"unicodefffe", "UTF-16BE"},
    {"unicodefeff", "UTF-16LE"},
    {"utf-32", "UTF-32"},
    {"utf-32le", "UTF-32LE"},
    {"utf-32be", "UTF-32BE"},
    /* Macintosh. */
    {"macintosh", "MACINTOSH"},
    {"mac", "MACINTOSH"},
    {"csmacintosh", "MACINTOSH"},
    {"x-mac-roman", "MACINTOSH"},
    {"x-mac-ce", "MAC-CENTRALEUROPE"},
    {"x-mac-centraleurroman", "MAC-CENTRALEUROPE"},
    {"x-mac-cyrillic", "MAC-CYRILLIC"},
    {"x-mac-ukrainian", "MAC-CYRILLIC"},
    {"x-mac-icelandic", "MAC-IS"},
    {"x-mac-turkish", "MACTURKISH"},
    {"x-mac-greek", "MACGREEK"},
    {"x-mac-croatian", "MACCROATIAN"},
    {"x-mac-romanian", "MACROMANIA"},
    {"x-mac-arabic", "MACARABIC"},
    {"x-mac-hebrew", "MACHEBREW"},
    {"x-mac-thai", "MACTHAI"},
};

enum label_kind {
    LABEL_NONE,    /* empty, or a label that means "not known to sender" */
    LABEL_UTF8ISH, /* utf-8 or us-ascii: trusted only when bytes agree */
    LABEL_NAMED,   /* resolved to an iconv name */
    LABEL_UNKNOWN, /* iconv does not know it */
};

/* Trimmed, unquoted, lower-cased label into buf; 0 when nothing is left,
 * SIZE_MAX when it cannot be a charset name (too long, odd bytes). */
static size_t normalize(mr_span label, char *buf, size_t size)
{
    mr_span s = mr_span_trim(label);
    /* charset="utf-8\"" and the like: strip quotes and backslashes that
     * sloppy quoting left on either side. */
    while (s.n > 0 && (s.p[0] == '"' || s.p[0] == '\'' || s.p[0] == '\\' ||
                       mr_is_wsp((unsigned char)s.p[0]))) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 &&
           (s.p[s.n - 1] == '"' || s.p[s.n - 1] == '\'' ||
            s.p[s.n - 1] == '\\' || mr_is_wsp((unsigned char)s.p[s.n - 1])))
        s.n--;
    if (s.n == 0)
        return 0;
    if (s.n >= size)
        return SIZE_MAX;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = mr_lower((unsigned char)s.p[i]);
        /* The characters of IANA charset names. Anything else, '/' in
         * particular ("UTF-8//IGNORE" means something to iconv), is not
         * passed on. */
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == ':' || c == '+'))
            return SIZE_MAX;
        buf[i] = (char)c;
    }
    buf[s.n] = '\0';
    return s.n;
}

static void upper(const char *in, char *out, size_t size)
{
    size_t i = 0;
    for (; in[i] != '\0' && i + 1 < size; i++)
        out[i] = (in[i] >= 'a' && in[i] <= 'z') ? (char)(in[i] - 32) : in[i];
    out[i] = '\0';
}

static void free_table(struct byte_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < 256; i++)
        free(t->rows[i]);
    free(t);
}

/* The iconv descriptor for name, from the cache or opened into it. */
static struct entry *lookup(struct mr_charset_ctx *ctx, const char *name)
{
    struct entry *victim = &ctx->cache[0];
    ctx->tick++;
    for (size_t i = 0; i < CACHE_SIZE; i++) {
        struct entry *e = &ctx->cache[i];
        if (e->name[0] != '\0' && strcmp(e->name, name) == 0) {
            e->stamp = ctx->tick;
            return e;
        }
        if (e->stamp < victim->stamp)
            victim = e;
    }
    if (victim->cd != (iconv_t)-1)
        iconv_close(victim->cd);
    free_table(victim->table);
    victim->table = NULL;
    victim->probed = false;
    snprintf(victim->name, sizeof(victim->name), "%s", name);
    victim->cd = iconv_open("UTF-8", name);
    victim->stamp = ctx->tick;
    return victim;
}

/* Resolves a normalized label: the table, then iconv itself (also without
 * an "x-" prefix). Returns the cache entry, or NULL when unknown. */
static struct entry *resolve_uncached(struct mr_charset_ctx *ctx,
                                      const char *lab)
{
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcmp(aliases[i].label, lab) == 0)
            return lookup(ctx, aliases[i].name);
    char name[NAME_MAX_LEN];
    upper(lab, name, sizeof(name));
    if (name[0] == '\0')
        return NULL;
    struct entry *e = lookup(ctx, name);
    if (e->cd != (iconv_t)-1)
        return e;
    /* "x-" alone must not become iconv's "" (the locale's charset). */
    if (strncmp(lab, "x-", 2) == 0 && lab[2] != '\0') {
        upper(lab + 2, name, sizeof(name));
        e = lookup(ctx, name);
        if (e->cd != (iconv_t)-1)
            return e;
    }
    return NULL;
}

/* resolve_uncached, remembered for the last few labels: the alias table
 * is searched in order, and every text part and encoded word asks (the
 * string compares were 1.5% of the no-attachment benchmark). */
static struct entry *resolve(struct mr_charset_ctx *ctx, const char *lab)
{
    for (size_t i = 0; i < MEMO_SIZE; i++) {
        const struct memo *m = &ctx->memo[i];
        if (m->lab[0] != '\0' && strcmp(m->lab, lab) == 0)
            return m->name[0] ? lookup(ctx, m->name) : NULL;
    }
    struct entry *e = resolve_uncached(ctx, lab);
    struct memo *m = &ctx->memo[ctx->memo_next++ % MEMO_SIZE];
    snprintf(m->lab, sizeof(m->lab), "%s", lab);
    snprintf(m->name, sizeof(m->name), "%s", e ? e->name : "");
    return e;
}

static enum label_kind classify(struct mr_charset_ctx *ctx, mr_span label,
                                struct entry **e_r)
{
    char lab[NAME_MAX_LEN];
    size_t n = normalize(label, lab, sizeof(lab));
    *e_r = NULL;
    if (n == 0)
        return LABEL_NONE;
    if (n == SIZE_MAX)
        return LABEL_UNKNOWN;
    /* RFC 1428 "unknown-8bit" and friends say "I do not know". */
    if (strcmp(lab, "unknown-8bit") == 0 || strcmp(lab, "x-unknown") == 0 ||
        strcmp(lab, "unknown") == 0 || strcmp(lab, "x-user-defined") == 0 ||
        strcmp(lab, "default") == 0)
        return LABEL_NONE;
    if (strcmp(lab, "us-ascii") == 0 || strcmp(lab, "ascii") == 0)
        return LABEL_UTF8ISH;
    struct entry *e = resolve(ctx, lab);
    if (e == NULL)
        return LABEL_UNKNOWN;
    if (strcmp(e->name, "UTF-8") == 0)
        return LABEL_UTF8ISH;
    *e_r = e;
    return LABEL_NAMED;
}

struct mr_charset_ctx *mr_charset_ctx_new(void)
{
    struct mr_charset_ctx *ctx = mr_xcalloc(1, sizeof(*ctx));
    for (size_t i = 0; i < CACHE_SIZE; i++)
        ctx->cache[i].cd = (iconv_t)-1;
    return ctx;
}

void mr_charset_ctx_free(struct mr_charset_ctx **ctxp)
{
    struct mr_charset_ctx *ctx = *ctxp;
    if (ctx == NULL)
        return;
    for (size_t i = 0; i < CACHE_SIZE; i++) {
        if (ctx->cache[i].cd != (iconv_t)-1)
            iconv_close(ctx->cache[i].cd);
        free_table(ctx->cache[i].table);
    }
    if (ctx->det.det)
        ctx->det.delete_(ctx->det.det);
    if (ctx->det.lib)
        dlclose(ctx->det.lib);
    free(ctx);
    *ctxp = NULL;
}

int mr_charset_resolve(struct mr_charset_ctx *ctx, mr_span label, char *name,
                       size_t size)
{
    char lab[NAME_MAX_LEN];
    size_t n = normalize(label, lab, sizeof(lab));
    if (n == 0 || n == SIZE_MAX)
        return MR_ENOTFOUND;
    struct entry *e = resolve(ctx, lab);
    if (e == NULL)
        return MR_ENOTFOUND;
    if (size > 0)
        snprintf(name, size, "%s", e->name);
    return 0;
}

/* Appends valid UTF-8 text p[0..n) (char-aligned) after a last check. */
static unsigned emit(struct mr_buf *out, const char *p, size_t n)
{
    if (mr_utf8_valid(p, n) && memchr(p, '\0', n) == NULL) {
        mr_buf_append(out, p, n);
        return 0;
    }
    size_t nuls = 0;
    for (const char *z = memchr(p, '\0', n); z != NULL;
         z = memchr(z + 1, '\0', n - (size_t)(z + 1 - p)))
        nuls++;
    size_t fixes = mr_utf8_repair(out, p, n, true);
    unsigned flags = nuls ? MR_CHARSET_NUL : 0;
    if (fixes > nuls)
        flags |= MR_CHARSET_INVALID;
    return flags;
}

/* glibc's ISO-2022 decoders pass an escape sequence they do not know
 * through as ESC and the bytes after it; a broken escape is an invalid
 * sequence like any other. */
static unsigned emit_iso2022(struct mr_buf *out, const char *p, size_t n)
{
    unsigned flags = 0;
    const char *esc;
    while ((esc = memchr(p, 0x1B, n)) != NULL) {
        size_t k = (size_t)(esc - p);
        flags |= emit(out, p, k) | MR_CHARSET_INVALID;
        mr_buf_append(out, "\xEF\xBF\xBD", 3);
        p += k + 1;
        n -= k + 1;
    }
    return flags | emit(out, p, n);
}

/* Unicode forms without a byte-order mark decode the way their bytes
 * look: ASCII text in UTF-16LE has its zero bytes at odd offsets. The BOM
 * is dropped, and the descriptor is then one of fixed byte order, so that
 * resetting it after an error cannot forget the order. */
static const char *byte_order(const char *name, const char **in, size_t *n)
{
    const unsigned char *p = (const unsigned char *)*in;
    if (strcmp(name, "UTF-16") == 0) {
        if (*n >= 2 && p[0] == 0xFF && p[1] == 0xFE) {
            *in += 2, *n -= 2;
            return "UTF-16LE";
        }
        if (*n >= 2 && p[0] == 0xFE && p[1] == 0xFF) {
            *in += 2, *n -= 2;
            return "UTF-16BE";
        }
        size_t even = 0, odd = 0, lim = *n < 1024 ? *n : 1024;
        for (size_t i = 0; i < lim; i++)
            if (p[i] == 0)
                (i & 1) ? odd++ : even++;
        /* RFC 2781 4.3 says big-endian without a BOM; real mail from
         * Windows is little-endian, and the zeros tell which. */
        return odd > even ? "UTF-16LE" : "UTF-16BE";
    }
    if (strcmp(name, "UTF-32") == 0) {
        if (*n >= 4 && memcmp(p, "\xFF\xFE\0\0", 4) == 0) {
            *in += 4, *n -= 4;
            return "UTF-32LE";
        }
        if (*n >= 4 && memcmp(p, "\0\0\xFE\xFF", 4) == 0) {
            *in += 4, *n -= 4;
            return "UTF-32BE";
        }
        return *n >= 1 && p[0] != 0 ? "UTF-32LE" : "UTF-32BE";
    }
    return NULL;
}

static size_t unit_size(const char *name)
{
    if (strncmp(name, "UTF-16", 6) == 0)
        return 2;
    if (strncmp(name, "UTF-32", 6) == 0)
        return 4;
    return 1;
}

/*
 * ISO-2022-JP (RFC 1468) as Japanese mailers really send it carries the NEC
 * and IBM extensions of CP50220/CP50221 (circled digits, row 13), which
 * glibc's ISO-2022-JP decoders refuse (zammad mail099). So we shift it to
 * EUC-JP ourselves - JIS X 0208 pairs get the high bit, JIS X 0201
 * katakana the SS2 prefix - and let EUC-JP-MS, which has the extensions,
 * finish. An unknown escape becomes 0xFF, which EUC-JP-MS rejects, so it
 * ends up as U+FFFD and a flag.
 */
static void iso2022jp_to_eucjp(const char *in, size_t n, struct mr_buf *out)
{
    enum { ASCII, JIS0208, KANA } mode = ASCII;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)in[i];
        if (c == 0x1B) {
            if (n - i >= 3 && in[i + 1] == '(' &&
                (in[i + 2] == 'B' || in[i + 2] == 'J' || in[i + 2] == 'H')) {
                mode = ASCII;
                i += 3;
            } else if (n - i >= 3 && in[i + 1] == '$' &&
                       (in[i + 2] == 'B' || in[i + 2] == '@')) {
                mode = JIS0208;
                i += 3;
            } else if (n - i >= 3 && in[i + 1] == '(' && in[i + 2] == 'I') {
                mode = KANA;
                i += 3;
            } else if (n - i >= 3 && in[i + 1] == '&' && in[i + 2] == '@') {
                i += 3; /* JIS X 0208-1990 announcer: ESC $ B follows */
            } else {
                mr_buf_putc(out, (char)0xFF);
                i++;
            }
            continue;
        }
        if (c == 0x0E || c == 0x0F) { /* SO/SI katakana shift (CP50222) */
            mode = c == 0x0E ? KANA : ASCII;
            i++;
            continue;
        }
        if (c == '\r' || c == '\n') {
            mr_buf_putc(out, (char)c);
            i++;
            continue;
        }
        if (mode == JIS0208 && c >= 0x21 && c <= 0x7E && i + 1 < n) {
            char pair[2] = {(char)(c | 0x80), (char)(in[i + 1] | 0x80)};
            mr_buf_append(out, pair, 2);
            i += 2;
            continue;
        }
        if (mode == JIS0208 && c >= 0x21 && c <= 0x7E) {
            mr_buf_putc(out, (char)0xFF); /* half a character at the end */
            i++;
            continue;
        }
        if (mode == KANA && c >= 0x21 && c <= 0x5F) {
            char pair[2] = {(char)0x8E, (char)(c | 0x80)};
            mr_buf_append(out, pair, 2);
            i++;
            continue;
        }
        mr_buf_putc(out, (char)c);
        i++;
    }
}

/* in[0..n) (one or two bytes) through iconv, alone: the length of the one
 * character it decodes to (its UTF-8 in out), T_BAD when iconv says it is
 * not one (EILSEQ at its first byte), T_LEAD when it is the start of a
 * longer one (EINVAL), or -1 for anything else (more than one character,
 * output held back, an error elsewhere). */
static int ask_iconv(iconv_t cd, const char *in, size_t n, unsigned char out[4])
{
    char buf[16];
    char *ip = (char *)in, *op = buf;
    size_t il = n, ol = sizeof(buf);
    iconv(cd, NULL, NULL, NULL, NULL);
    size_t r = iconv(cd, &ip, &il, &op, &ol);
    if (r == (size_t)-1) {
        int err = errno;
        iconv(cd, NULL, NULL, NULL, NULL);
        if (err == EILSEQ)
            return ip == in ? T_BAD : -1;
        if (err == EINVAL)
            return ip == in ? T_LEAD : -1;
        return -1;
    }
    size_t len = (size_t)(op - buf);
    /* Anything held back comes out now (and the state is back at the
     * start): a state, not simply a character. */
    char *fp = op;
    if (iconv(cd, NULL, NULL, &op, &ol) == (size_t)-1 || op != fp) {
        iconv(cd, NULL, NULL, NULL, NULL);
        return -1;
    }
    if (len == 0 || len > 4 || mr_utf8_char_len(buf, len) != len ||
        (len == 1 && buf[0] == 0 && !(n == 1 && in[0] == 0)))
        return -1;
    memcpy(out, buf, len);
    return (int)len;
}

/* The table of e, built on first use; NULL when its bytes cannot all be
 * told apart as characters, invalid bytes and lead bytes, or when it
 * has shift states or units wider than a byte. */
static struct byte_table *byte_table(struct entry *e)
{
    if (e->probed)
        return e->table;
    e->probed = true;
    if (unit_size(e->name) != 1 || strncmp(e->name, "ISO-2022-", 9) == 0)
        return NULL;
    struct byte_table *t = mr_xcalloc(1, sizeof(*t));
    t->ascii = true;
    for (unsigned b = 0; b < 256; b++) {
        char c = (char)b;
        int len = ask_iconv(e->cd, &c, 1, t->utf8[b]);
        if (len < 0) {
            free_table(t);
            return NULL;
        }
        t->len[b] = (unsigned char)len;
        if (b > 0 && b < 0x80 && (len != 1 || t->utf8[b][0] != b))
            t->ascii = false;
    }
    /* Byte 0 is dropped as NUL, like any NUL that iconv produces. */
    if (t->len[0] != 1 || t->utf8[0][0] != 0) {
        free_table(t);
        return NULL;
    }
    t->len[0] = T_BAD;
    /* WHATWG gb18030 and CP936 read a lone 0x80 as the euro sign; glibc's
     * GB18030 does not. */
    if (strcmp(e->name, "GB18030") == 0 && t->len[0x80] == T_BAD) {
        t->len[0x80] = 3;
        memcpy(t->utf8[0x80], "\xE2\x82\xAC", 3);
    }
    e->table = t;
    return t;
}

/* The entry of pair (lead, in[1]), asked of iconv the first time. */
static const unsigned char *pair(struct entry *e, struct byte_table *t,
                                 const char *in, unsigned char *len_r)
{
    unsigned char lead = (unsigned char)in[0], b = (unsigned char)in[1];
    struct pair_row *row = t->rows[lead];
    if (row == NULL)
        row = t->rows[lead] = mr_xcalloc(1, sizeof(*row));
    if (row->len[b] == T_ASK) {
        int len = ask_iconv(e->cd, in, 2, row->utf8[b]);
        row->len[b] = len == T_BAD          ? T_NOPAIR
                      : len > 0 && len <= 4 ? (unsigned char)len
                                            : T_ICONV;
    }
    *len_r = row->len[b];
    return row->utf8[b];
}

/* The bytes at in[0..n) that decode to themselves: ASCII except NUL. */
static size_t ascii_run(const char *in, size_t n)
{
    size_t i = 0;
    while (i + 16 <= n) {
        unsigned m = mr_blk_lt_or_high(mr_blk_load(in + i), 1);
        if (m)
            return i + mr_blk_first(m);
        i += 16;
    }
    while (i < n && in[i] != '\0' && (unsigned char)in[i] < 0x80)
        i++;
    return i;
}

static unsigned convert_iconv(struct entry *e, const char *in, size_t n,
                              struct mr_buf *out);

/* What convert_iconv does, through the table: an invalid byte becomes
 * U+FFFD, a NUL is dropped, a lead byte at the very end is U+FFFD (iconv's
 * EINVAL), and conversion stops at out's cap. */
static unsigned convert_table(struct entry *e, struct byte_table *t,
                              const char *in, size_t n, struct mr_buf *out)
{
    unsigned flags = 0;
    char tmp[4096];
    size_t o = 0, i = 0;
    while (i < n && !out->limited) {
        size_t run = t->ascii ? ascii_run(in + i, n - i) : 0;
        if (run > 0) {
            mr_buf_append(out, tmp, o);
            mr_buf_append(out, in + i, run);
            o = 0;
            i += run;
            continue;
        }
        if (o + 4 > sizeof(tmp)) {
            mr_buf_append(out, tmp, o);
            o = 0;
        }
        unsigned char c = (unsigned char)in[i];
        unsigned char len = t->len[c];
        const unsigned char *u = t->utf8[c];
        size_t used = 1;
        if (len == T_LEAD) {
            if (i + 1 >= n) {
                len = T_BAD; /* the input ends inside a character */
            } else {
                u = pair(e, t, in + i, &len);
                if (len == T_ICONV) {
                    /* Stateless so far: iconv takes over from this
                     * character as if it had done all of it. */
                    mr_buf_append(out, tmp, o);
                    return flags | convert_iconv(e, in + i, n - i, out);
                }
                if (len == T_NOPAIR)
                    len = T_BAD;
                else
                    used = 2;
            }
        }
        if (len != T_BAD) {
            memcpy(tmp + o, u, 4);
            o += len;
        } else if (c == 0) {
            flags |= MR_CHARSET_NUL;
        } else {
            memcpy(tmp + o, "\xEF\xBF\xBD", 3);
            o += 3;
            flags |= MR_CHARSET_INVALID;
        }
        i += used;
    }
    mr_buf_append(out, tmp, o);
    return flags;
}

static unsigned convert(struct mr_charset_ctx *ctx, struct entry *e,
                        const char *in, size_t n, struct mr_buf *out)
{
    if (strcmp(e->name, "ISO-2022-JP-3") == 0) {
        struct entry *euc = lookup(ctx, "EUC-JP-MS");
        if (euc->cd != (iconv_t)-1) {
            struct mr_buf tmp;
            mr_buf_init(&tmp, 0);
            iso2022jp_to_eucjp(in, n, &tmp);
            unsigned f = convert(ctx, euc, tmp.p ? tmp.p : "", tmp.len, out);
            mr_buf_release(&tmp);
            return f;
        }
    }
    const char *bo = byte_order(e->name, &in, &n);
    if (bo != NULL) {
        e = lookup(ctx, bo);
        if (e->cd == (iconv_t)-1) {
            mr_utf8_repair(out, in, n, true);
            return MR_CHARSET_INVALID;
        }
    }
    struct byte_table *t = byte_table(e);
    if (t != NULL)
        return convert_table(e, t, in, n, out);
    return convert_iconv(e, in, n, out);
}

static unsigned convert_iconv(struct entry *e, const char *in, size_t n,
                              struct mr_buf *out)
{
    size_t unit = unit_size(e->name);
    bool iso2022 = strncmp(e->name, "ISO-2022-", 9) == 0;
    unsigned flags = 0;
    char tmp[8192];
    char *ip = (char *)in;
    size_t il = n;
    iconv(e->cd, NULL, NULL, NULL, NULL);
    while (il > 0 && !out->limited) {
        char *op = tmp;
        size_t ol = sizeof(tmp);
        size_t r = iconv(e->cd, &ip, &il, &op, &ol);
        int err = r == (size_t)-1 ? errno : 0;
        flags |= iso2022 ? emit_iso2022(out, tmp, (size_t)(op - tmp))
                         : emit(out, tmp, (size_t)(op - tmp));
        if (err == 0 || err == E2BIG)
            continue;
        if (err == EILSEQ && unit == 1 && (unsigned char)*ip == 0x80 &&
            strcmp(e->name, "GB18030") == 0) {
            /* WHATWG gb18030 and CP936 read a lone 0x80 as the euro sign;
             * glibc's GB18030 does not. */
            mr_buf_append(out, "\xE2\x82\xAC", 3);
            ip++;
            il--;
            continue;
        }
        mr_buf_append(out, "\xEF\xBF\xBD", 3);
        flags |= MR_CHARSET_INVALID;
        if (err == EILSEQ) {
            size_t skip = unit < il ? unit : il;
            ip += skip;
            il -= skip;
            /* Back to the initial shift state: after a broken escape in
             * ISO-2022-JP the next bytes are more likely ASCII than not. */
            if (unit == 1)
                iconv(e->cd, NULL, NULL, NULL, NULL);
        } else {
            break; /* EINVAL: the input ends inside a character */
        }
    }
    /* Stateful decoders may hold back a character until the end. */
    char *op = tmp;
    size_t ol = sizeof(tmp);
    if (iconv(e->cd, NULL, NULL, &op, &ol) != (size_t)-1)
        flags |= emit(out, tmp, (size_t)(op - tmp));
    return flags;
}

/* Drops NULs from valid UTF-8. */
static unsigned copy_utf8(const char *in, size_t n, struct mr_buf *out)
{
    if (memchr(in, '\0', n) == NULL) {
        mr_buf_append(out, in, n);
        return 0;
    }
    mr_utf8_repair(out, in, n, true);
    return MR_CHARSET_NUL;
}

/* Stores symbol `name` of lib into the function pointer at fp (POSIX
 * guarantees that a void * from dlsym converts to one). */
static bool load_sym(void *lib, const char *name, void *fp)
{
    void *s = dlsym(lib, name);
    if (s == NULL)
        return false;
    memcpy(fp, &s, sizeof(s));
    return true;
}

/* The detector, loaded on first use; NULL when uchardet is not there. */
static uchardet_t detector(struct detector *d)
{
    if (d->tried)
        return d->det;
    d->tried = true;
    d->lib = dlopen(UCHARDET_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (d->lib == NULL)
        return NULL;
    if (!load_sym(d->lib, "uchardet_new", &d->new_) ||
        !load_sym(d->lib, "uchardet_delete", &d->delete_) ||
        !load_sym(d->lib, "uchardet_reset", &d->reset) ||
        !load_sym(d->lib, "uchardet_handle_data", &d->handle_data) ||
        !load_sym(d->lib, "uchardet_data_end", &d->data_end) ||
        !load_sym(d->lib, "uchardet_get_charset", &d->get_charset)) {
        dlclose(d->lib);
        d->lib = NULL;
        return NULL;
    }
    d->det = d->new_();
    return d->det;
}

static unsigned detect(struct mr_charset_ctx *ctx, const char *in, size_t n,
                       struct mr_buf *out)
{
    const char *guess = NULL;
    /* With only a few 8-bit bytes (a name in a raw header) uchardet's
     * guess is noise (it read "k.g\xfcnther" as Central European, zammad
     * mail105): windows-1252 is then the likeliest by far. */
    size_t high = 0;
    for (size_t i = 0; i < n && high < 8; i++)
        high += (unsigned char)in[i] >= 0x80;
    uchardet_t det = high >= 8 ? detector(&ctx->det) : NULL;
    if (det != NULL) {
        struct detector *d = &ctx->det;
        d->reset(det);
        d->handle_data(det, in, n < DETECT_MAX ? n : DETECT_MAX);
        d->data_end(det);
        guess = d->get_charset(det);
    }
    struct entry *e = NULL;
    if (guess != NULL && guess[0] != '\0' && strcmp(guess, "ASCII") != 0) {
        char lab[NAME_MAX_LEN];
        size_t ln = normalize(mr_span_cstr(guess), lab, sizeof(lab));
        if (ln != 0 && ln != SIZE_MAX)
            e = resolve(ctx, lab);
    }
    unsigned flags = MR_CHARSET_DETECTED;
    if (e != NULL && strcmp(e->name, "UTF-8") == 0)
        return flags | emit(out, in, n);
    /* A guess that does not decode cleanly was a bad guess: windows-1252
     * decodes any byte but five, and is what unlabeled 8-bit mail mostly
     * is (it is also what uchardet falls back to). */
    size_t start = out->len;
    if (e != NULL && strcmp(e->name, "WINDOWS-1252") != 0) {
        unsigned f = convert(ctx, e, in, n, out);
        if (!(f & MR_CHARSET_INVALID))
            return flags | f;
        mr_buf_truncate(out, start);
        out->limited = false;
    }
    e = lookup(ctx, "WINDOWS-1252");
    if (e->cd == (iconv_t)-1) {
        mr_utf8_repair(out, in, n, true);
        return flags | MR_CHARSET_INVALID;
    }
    return flags | convert(ctx, e, in, n, out);
}

/* Whether in holds at least one valid multi-byte UTF-8 sequence. */
static bool has_multibyte(const char *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)in[i] < 0xC2)
            continue;
        uint32_t cp;
        if (mr_utf8_next(in + i, n - i, &cp) > 1)
            return true;
    }
    return false;
}

unsigned mr_charset_to_utf8(struct mr_charset_ctx *ctx, mr_span label,
                            const char *in, size_t n, struct mr_buf *out)
{
    if (n == 0 || out->limited)
        return 0;
    struct entry *e;
    enum label_kind kind = classify(ctx, label, &e);
    if (kind == LABEL_NAMED)
        return convert(ctx, e, in, n, out);
    unsigned flags = kind == LABEL_UNKNOWN ? MR_CHARSET_UNKNOWN : 0;
    if (mr_utf8_valid(in, n))
        return flags | copy_utf8(in, n, out);
    /* A utf-8 (or us-ascii) label over text that does hold real UTF-8
     * sequences is mostly right: a few stray bytes become U+FFFD rather
     * than the whole text being re-read as another charset (hostile
     * vector invalid-quoted-printable). */
    if (kind == LABEL_UTF8ISH && has_multibyte(in, n)) {
        size_t fixes = mr_utf8_repair(out, in, n, true);
        return fixes ? MR_CHARSET_INVALID : 0;
    }
    return flags | detect(ctx, in, n, out);
}
