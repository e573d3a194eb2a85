/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attach_policy.c - the attachment blocklist, the type mismatch rule and
 * how downloads are labelled (attach_policy.h, docs/attachments.md).
 *
 * The lists are a few dozen short strings, scanned linearly: a message
 * has few attachments, and a hash would cost more to build than the
 * scans. Names are untrusted bytes: every walk is bounded by their
 * length, and nothing here assumes valid UTF-8 (mr_utf8_next repairs).
 */
#include "content/attach_policy.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "util/span.h"
#include "util/utf8.h"

#define EXT_MAX 32 /* longer "extensions" are not extensions */
#define NAME_MAX_BYTES 255

/* Programs, scripts, shortcuts, installers and disk images that Windows
 * (or a browser, for the HTML family) runs or mounts on a double click;
 * the usual mail-gateway list (Outlook's Level 1, Gmail's blocked types). */
const char *const mr_attach_default_extensions[] = {
    "ade",        "adp",  "app",    "application", "appx", "appxbundle",
    "bas",        "bat",  "chm",    "cmd",         "com",  "cpl",
    "crt",        "dll",  "exe",    "gadget",      "hlp",  "hta",
    "htm",        "html", "inf",    "ins",         "isp",  "iso",
    "img",        "jar",  "js",     "jse",         "lib",  "lnk",
    "mde",        "mht",  "mhtml",  "msc",         "msi",  "msix",
    "msixbundle", "msp",  "mst",    "nsh",         "pif",  "ps1",
    "ps1xml",     "ps2",  "ps2xml", "psc1",        "psc2", "psd1",
    "psm1",       "reg",  "scf",    "scr",         "sct",  "settingcontent-ms",
    "shb",        "shs",  "svg",    "svgz",        "sys",  "url",
    "vb",         "vbe",  "vbs",    "vhd",         "vhdx", "vxd",
    "ws",         "wsc",  "wsf",    "wsh",         "xht",  "xhtml",
    "xll",        "xnk",  NULL};

/* What libmagic (or a sender) calls the same things. HTML and SVG are on
 * it because a browser runs their scripts as the origin that serves them
 * or, saved, as a local file. */
const char *const mr_attach_default_types[] = {
    "application/x-dosexec",
    "application/x-msdownload",
    "application/x-msdos-program",
    "application/x-ms-dos-executable",
    "application/vnd.microsoft.portable-executable",
    "application/x-executable",
    "application/x-pie-executable",
    "application/x-sharedlib",
    "application/x-mach-binary",
    "application/x-msi",
    "application/x-ms-installer",
    "application/x-ms-shortcut",
    "application/x-iso9660-image",
    "application/java-archive",
    "application/x-java-archive",
    "application/javascript",
    "application/x-javascript",
    "text/javascript",
    "application/hta",
    "text/x-msdos-batch",
    "application/x-bat",
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    NULL};

/* Extensions a name uses to look harmless before the real one. */
static const char *const decoys[] = {
    "pdf", "doc", "docx", "xls", "xlsx", "ppt",  "pptx", "txt",
    "rtf", "odt", "ods",  "csv", "jpg",  "jpeg", "png",  "gif",
    "bmp", "tif", "tiff", "mp3", "mp4",  "wav",  "avi",  "mov",
    "zip", "rar", "eml",  "msg", "xml",  "htm",  "html", NULL};

void mr_attach_policy_from_config(const struct mr_config *cfg,
                                  struct mr_attach_policy *p)
{
    memset(p, 0, sizeof *p);
    if (cfg == NULL)
        return;
    /* char ** to const char *const *: C wants the cast spelled out. */
    p->blocked_extensions =
        (const char *const *)cfg->attachments.blocked_extensions;
    p->nblocked_extensions = cfg->attachments.nblocked_extensions;
    p->blocked_types = (const char *const *)cfg->attachments.blocked_types;
    p->nblocked_types = cfg->attachments.nblocked_types;
    p->allowed_extensions =
        (const char *const *)cfg->attachments.allowed_extensions;
    p->nallowed_extensions = cfg->attachments.nallowed_extensions;
    p->allowed_types = (const char *const *)cfg->attachments.allowed_types;
    p->nallowed_types = cfg->attachments.nallowed_types;
}

static bool in_list(const char *s, size_t n, const char *const *list,
                    size_t count)
{
    for (size_t i = 0; list && i < count && list[i]; i++) {
        size_t m = strlen(list[i]);
        if (m != n)
            continue;
        size_t k = 0;
        while (k < n && mr_lower((unsigned char)s[k]) ==
                            mr_lower((unsigned char)list[i][k]))
            k++;
        if (k == n)
            return true;
    }
    return false;
}

static bool in_default(const char *s, size_t n, const char *const *list)
{
    return in_list(s, n, list, SIZE_MAX);
}

static bool ext_blocked(const struct mr_attach_policy *p, const char *e,
                        size_t n)
{
    if (n == 0)
        return false;
    bool listed =
        in_default(e, n, mr_attach_default_extensions) ||
        (p && in_list(e, n, p->blocked_extensions, p->nblocked_extensions));
    return listed &&
           !(p && in_list(e, n, p->allowed_extensions, p->nallowed_extensions));
}

bool mr_attach_extension_blocked(const struct mr_attach_policy *p,
                                 const char *ext)
{
    return ext != NULL && ext_blocked(p, ext, strlen(ext));
}

bool mr_attach_type_blocked(const struct mr_attach_policy *p, const char *t)
{
    if (t == NULL || t[0] == '\0')
        return false;
    size_t n = strlen(t);
    bool listed = in_default(t, n, mr_attach_default_types) ||
                  (p && in_list(t, n, p->blocked_types, p->nblocked_types));
    return listed && !(p && in_list(t, n, p->allowed_types, p->nallowed_types));
}

/* ---- names --------------------------------------------------------------- */

/* Spaces a name can be padded with: ASCII blanks and the Unicode spaces
 * that render blank (no-break, the U+2000 block, ideographic, braille). */
static bool is_blank(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200B) || cp == 0x202F || cp == 0x205F ||
           cp == 0x2800 || cp == 0x3000 || cp == 0x3164 || cp == 0xFEFF;
}

/* Explicit directional formatting (UAX #9 2.1-2.2): embeddings,
 * overrides, isolates and their terminators. */
static bool is_bidi_control(uint32_t cp)
{
    return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

static bool ext_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* The last two dotted components of a name, trailing dots and blanks
 * ignored (Windows drops them: "evil.exe. " is an exe). fin: the final
 * extension; prev: the one before it, its trailing blanks excluded;
 * *pad: how many blank characters sat between prev and the final dot. */
struct name_parts {
    mr_span fin, prev;
    size_t pad;
};

static void split_name(const char *name, struct name_parts *np)
{
    memset(np, 0, sizeof *np);
    if (name == NULL)
        return;
    size_t n = strlen(name);
    while (n > 0 &&
           (name[n - 1] == '.' || name[n - 1] == ' ' || name[n - 1] == '\t'))
        n--;
    size_t dot = n;
    while (dot > 0 && name[dot - 1] != '.')
        dot--;
    if (dot == 0)
        return;
    size_t flen = n - dot;
    if (flen == 0 || flen > EXT_MAX)
        return;
    for (size_t i = dot; i < n; i++)
        if (!ext_char((unsigned char)name[i]))
            return;
    np->fin = mr_span_make(name + dot, flen);
    /* Walk back over blanks (ASCII and Unicode), counting them. */
    size_t end = dot - 1; /* the final dot */
    for (size_t guard = 0; end > 0 && guard < n; guard++) {
        size_t start = end - 1;
        while (start > 0 && ((unsigned char)name[start] & 0xC0) == 0x80)
            start--;
        uint32_t cp;
        mr_utf8_next(name + start, end - start, &cp);
        if (!is_blank(cp))
            break;
        np->pad++;
        end = start;
    }
    size_t pdot = end;
    while (pdot > 0 && name[pdot - 1] != '.')
        pdot--;
    if (pdot == 0 || end - pdot == 0 || end - pdot > EXT_MAX)
        return;
    for (size_t i = pdot; i < end; i++)
        if (!ext_char((unsigned char)name[i]))
            return;
    np->prev = mr_span_make(name + pdot, end - pdot);
}

/* The first explicit directional control in name, or 0. */
static uint32_t bidi_in(const char *name)
{
    if (name == NULL)
        return 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += mr_utf8_next(name + i, n - i, &cp);
        if (is_bidi_control(cp))
            return cp;
    }
    return 0;
}

static void lower_copy(mr_span s, char *out, size_t size)
{
    size_t k = 0;
    for (; k < s.n && k + 1 < size; k++)
        out[k] = (char)mr_lower((unsigned char)s.p[k]);
    out[k] = '\0';
}

static void block(struct mr_attach_verdict *v, const char *rule,
                  const char *detail)
{
    v->blocked = true;
    snprintf(v->reason, sizeof v->reason, "%.24s: %.120s", rule, detail);
}

/* The rules on one name; true when it blocked. */
static bool judge_name(const struct mr_attach_policy *p, const char *name,
                       struct mr_attach_verdict *v)
{
    struct name_parts np;
    split_name(name, &np);
    if (np.fin.n == 0)
        return false;
    char fin[EXT_MAX + 1], prev[EXT_MAX + 1], detail[2 * EXT_MAX + 8];
    lower_copy(np.fin, fin, sizeof fin);
    lower_copy(np.prev, prev, sizeof prev);
    if (np.prev.n > 0 && np.pad >= 2) {
        snprintf(detail, sizeof detail, ".%s%s.%s", prev, " ... ", fin);
        block(v, "padded_extension", detail);
        return true;
    }
    if (!ext_blocked(p, np.fin.p, np.fin.n))
        return false;
    if (np.prev.n > 0 && in_default(np.prev.p, np.prev.n, decoys)) {
        snprintf(detail, sizeof detail, ".%s.%s", prev, fin);
        block(v, "double_extension", detail);
    } else {
        snprintf(detail, sizeof detail, ".%s", fin);
        block(v, "extension", detail);
    }
    return true;
}

void mr_attach_judge(const struct mr_attach_policy *p, const char *filename,
                     const char *safe_filename, const char *declared,
                     const char *detected, struct mr_attach_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->type_mismatch = !mr_attach_types_compatible(declared, detected);
    char detail[MR_ATTACH_REASON_MAX];
    uint32_t cp = bidi_in(filename);
    if (cp != 0) {
        snprintf(detail, sizeof detail, "U+%04X in the file name",
                 (unsigned)cp);
        block(v, "bidi", detail);
        return;
    }
    if (mr_attach_type_blocked(p, detected)) {
        snprintf(detail, sizeof detail, "%.100s", detected);
        block(v, "detected_type", detail);
        return;
    }
    /* The original name first (it keeps the padding the safe name
     * collapses), then the name a download gets. */
    if (judge_name(p, filename, v) || judge_name(p, safe_filename, v))
        return;
    if (mr_attach_type_blocked(p, declared)) {
        snprintf(detail, sizeof detail, "%.100s", declared);
        block(v, "declared_type", detail);
    }
}

/* ---- types ------------------------------------------------------------- */

static const struct {
    const char *alias, *canon;
} aliases[] = {
    {"image/jpg", "image/jpeg"},
    {"image/pjpeg", "image/jpeg"},
    {"image/x-png", "image/png"},
    {"image/x-ms-bmp", "image/bmp"},
    {"image/x-bmp", "image/bmp"},
    {"image/vnd.microsoft.icon", "image/x-icon"},
    {"application/x-pdf", "application/pdf"},
    {"application/acrobat", "application/pdf"},
    {"application/x-zip-compressed", "application/zip"},
    {"application/x-zip", "application/zip"},
    {"application/x-gzip", "application/gzip"},
    {"application/x-rar", "application/vnd.rar"},
    {"application/x-rar-compressed", "application/vnd.rar"},
    {"text/xml", "application/xml"},
    {"text/rtf", "application/rtf"},
    {"application/csv", "text/csv"},
    {"audio/x-wav", "audio/wav"},
    {"audio/wave", "audio/wav"},
    {"audio/mp3", "audio/mpeg"},
    {"audio/x-mp3", "audio/mpeg"},
};

static const char *canon(const char *t)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(t, aliases[i].alias) == 0)
            return aliases[i].canon;
    return t;
}

static bool one_of(const char *t, const char *const *set)
{
    for (size_t i = 0; set[i]; i++)
        if (strcmp(t, set[i]) == 0)
            return true;
    return false;
}

static bool starts(const char *t, const char *prefix)
{
    return strncmp(t, prefix, strlen(prefix)) == 0;
}

static bool ends(const char *t, const char *suffix)
{
    size_t n = strlen(t), m = strlen(suffix);
    return n >= m && strcmp(t + n - m, suffix) == 0;
}

/* Declared types that only say "some bytes". */
static const char *const vague_declared[] = {
    "application/octet-stream",   "binary/octet-stream",
    "application/unknown",        "application/binary",
    "application/x-download",     "application/download",
    "application/force-download", NULL};
/* Detected types that say nothing about what the bytes are. */
static const char *const vague_detected[] = {
    "application/octet-stream", "application/x-empty", "inode/x-empty", NULL};

/* A browser runs or renders these as a document of the origin. */
static const char *const active[] = {"text/html",
                                     "application/xhtml+xml",
                                     "image/svg+xml",
                                     "application/javascript",
                                     "text/javascript",
                                     "application/x-javascript",
                                     "application/ecmascript",
                                     "text/ecmascript",
                                     "application/hta",
                                     NULL};

static bool is_active(const char *t)
{
    return one_of(t, active);
}

static bool is_textual(const char *t)
{
    static const char *const more[] = {
        "application/json",          "application/xml",
        "application/x-ndjson",      "application/rtf",
        "application/mbox",          "application/pgp-signature",
        "application/pgp-encrypted", "application/pgp-keys",
        "application/ics",           NULL};
    return starts(t, "text/") || starts(t, "message/") || one_of(t, more) ||
           ends(t, "+xml") || ends(t, "+json");
}

/* Office documents: ZIP containers (OOXML, ODF, EPUB), OLE compound files
 * (the older formats, Outlook items, and encrypted OOXML) and plain ZIP,
 * which libmagic often answers for any of them. */
static bool is_office_or_zip(const char *t)
{
    static const char *const set[] = {"application/zip",
                                      "application/epub+zip",
                                      "application/x-ole-storage",
                                      "application/cdfv2",
                                      "application/vnd.ms-office",
                                      "application/msword",
                                      "application/vnd.ms-excel",
                                      "application/vnd.ms-powerpoint",
                                      "application/vnd.ms-outlook",
                                      "application/vnd.visio",
                                      "application/vnd.ms-project",
                                      "application/encrypted",
                                      "application/vnd.ms-xpsdocument",
                                      "application/oxps",
                                      NULL};
    return one_of(t, set) ||
           starts(t, "application/vnd.openxmlformats-officedocument.") ||
           starts(t, "application/vnd.oasis.opendocument.") ||
           starts(t, "application/vnd.ms-word.") ||
           starts(t, "application/vnd.ms-excel.") ||
           starts(t, "application/vnd.ms-powerpoint.");
}

static bool is_archive(const char *t)
{
    static const char *const set[] = {
        "application/zip",        "application/gzip",
        "application/x-tar",      "application/x-gtar",
        "application/x-bzip2",    "application/x-xz",
        "application/zstd",       "application/x-7z-compressed",
        "application/vnd.rar",    "application/x-compressed",
        "application/x-compress", "application/x-lzip",
        "application/x-lzma",     NULL};
    return one_of(t, set);
}

static bool same_top(const char *a, const char *b, const char *top)
{
    return starts(a, top) && starts(b, top);
}

bool mr_attach_types_compatible(const char *declared, const char *detected)
{
    if (declared == NULL || detected == NULL || declared[0] == '\0' ||
        detected[0] == '\0')
        return true;
    if (one_of(declared, vague_declared) || one_of(detected, vague_detected))
        return true;
    const char *a = canon(declared), *b = canon(detected);
    if (strcmp(a, b) == 0)
        return true;
    /* Anything that turns out to be, or claims to be, a page or a script
     * when the other side says otherwise is the confusion that matters. */
    if (is_active(a) || is_active(b))
        return false;
    if (is_textual(a) && is_textual(b))
        return true;
    if (same_top(a, b, "image/") || same_top(a, b, "audio/") ||
        same_top(a, b, "video/") || same_top(a, b, "font/"))
        return true;
    if (is_office_or_zip(a) && is_office_or_zip(b))
        return true;
    if (is_archive(a) && is_archive(b))
        return true;
    return false;
}

bool mr_attach_is_raster_image(const char *t)
{
    static const char *const raster[] = {
        "image/png", "image/jpeg",   "image/gif", "image/webp",
        "image/bmp", "image/x-icon", NULL};
    return t != NULL && one_of(canon(t), raster);
}

const char *mr_attach_serve_type(const char *detected, bool blocked,
                                 bool type_mismatch)
{
    static const char octet[] = "application/octet-stream";
    if (blocked || type_mismatch || detected == NULL || detected[0] == '\0')
        return octet;
    /* XML can carry XSLT or XHTML namespaces a browser renders. */
    if (is_active(detected) || one_of(detected, vague_detected) ||
        strcmp(canon(detected), "application/xml") == 0 ||
        ends(detected, "+xml") || strcmp(detected, "text/xsl") == 0)
        return octet;
    return detected;
}

/* ---- Content-Disposition (RFC 6266, RFC 5987) ---------------------------- */

static bool fallback_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr(" !#$&'()+,-.=@[]^_`{}~", c);
}

/* RFC 5987 3.2.1 attr-char. */
static bool attr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c);
}

/* name cut to NAME_MAX_BYTES on a character boundary, the final extension
 * (when short) kept: head[0..*nh) + tail[0..*nt). */
static void bounded(const char *name, size_t n, size_t *nh, const char **tail,
                    size_t *nt)
{
    *tail = name + n;
    *nt = 0;
    if (n <= NAME_MAX_BYTES) {
        *nh = n;
        return;
    }
    const char *dot = NULL;
    for (size_t i = n; i > 0 && n - i <= 16; i--)
        if (name[i - 1] == '.') {
            dot = name + i - 1;
            break;
        }
    if (dot) {
        *tail = dot;
        *nt = (size_t)(name + n - dot);
    }
    size_t h = NAME_MAX_BYTES - *nt;
    while (h > 0 && ((unsigned char)name[h] & 0xC0) == 0x80)
        h--;
    *nh = h;
}

static void put_fallback(struct mr_buf *out, const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80) {
            mr_buf_putc(out, fallback_char(c) ? (char)c : '_');
            i++;
            continue;
        }
        uint32_t cp;
        i += mr_utf8_next(p + i, n - i, &cp);
        mr_buf_putc(out, '_');
    }
}

static void put_pct(struct mr_buf *out, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (attr_char(c)) {
            mr_buf_putc(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            mr_buf_append(out, e, 3);
        }
    }
}

void mr_attach_content_disposition(const char *disposition, const char *name,
                                   const char *fallback, struct mr_buf *out)
{
    if (name == NULL || name[0] == '\0')
        name = fallback && fallback[0] ? fallback : "attachment";
    size_t n = strlen(name);
    /* A name that is not valid UTF-8 (never from mr_filename_safe) is
     * sent by its ASCII form only. */
    bool utf8 = mr_utf8_valid(name, n);
    size_t nh, nt;
    const char *tail;
    bounded(name, n, &nh, &tail, &nt);
    mr_buf_printf(out, "%s; filename=\"",
                  strcmp(disposition, "inline") == 0 ? "inline" : "attachment");
    put_fallback(out, name, nh);
    put_fallback(out, tail, nt);
    mr_buf_puts(out, "\"");
    if (utf8) {
        mr_buf_puts(out, "; filename*=UTF-8''");
        put_pct(out, name, nh);
        put_pct(out, tail, nt);
    }
}
