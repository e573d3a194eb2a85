/* SPDX-License-Identifier: Apache-2.0 */
/*
 * filename.c - safe attachment names.
 *
 * The steps run in a fixed order, each on the output of the one before:
 *   1. repair UTF-8 (invalid bytes become U+FFFD; NUL is kept for step 3,
 *      so "invoice.pdf\0.exe" cannot hide its real extension by cutting
 *      the string short in some C consumer);
 *   2. keep the base name: text after the last '/', '\\' or ':';
 *   3. map code points: controls and Windows-forbidden characters to '_',
 *      invisible format characters (bidi overrides that turn
 *      "invoice\u202Efdp.exe" into "invoiceexe.pdf" on screen, zero-width
 *      characters) removed, any whitespace to one space;
 *   4. trim dots and spaces at both ends (Windows drops trailing ones, so
 *      "evil.exe. " would be saved as an .exe);
 *   5. cut to max_bytes on a character boundary, keeping the extension;
 *   6. prefix reserved device names with '_';
 *   7. fall back to "attachment" + an extension from the content type.
 * All loops are linear in the input.
 */
#include "filename.h"

#include <stdbool.h>
#include <stdint.h>

#include "../util/utf8.h"

/* An extension longer than this is not one (and is cut like the rest). */
#define MAX_EXT 32

static bool is_sep(char c)
{
    return c == '/' || c == '\\' || c == ':';
}

/* Format characters that change how text displays without showing. */
static bool is_invisible(uint32_t cp)
{
    return cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069) || (cp >= 0x200B && cp <= 0x200D) ||
           cp == 0x2060 || cp == 0xFEFF || cp == 0x061C || cp == 0x00AD ||
           cp == 0x180E || (cp >= 0x2061 && cp <= 0x2064);
}

static bool is_space(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' ||
           cp == 0x0B || cp == 0x0C || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static bool is_forbidden(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == '<' ||
           cp == '>' || cp == ':' || cp == '"' || cp == '|' || cp == '?' ||
           cp == '*' || cp == '/' || cp == '\\';
}

/* Steps 3: appends the mapped form of s to out, whitespace collapsed. */
static void map_chars(mr_span s, struct mr_buf *out)
{
    bool space = false;
    size_t i = 0;
    while (i < s.n) {
        uint32_t cp;
        size_t l = mr_utf8_next(s.p + i, s.n - i, &cp);
        if (is_invisible(cp)) {
            i += l;
            continue;
        }
        if (is_space(cp)) {
            space = true;
            i += l;
            continue;
        }
        if (space) {
            mr_buf_putc(out, ' ');
            space = false;
        }
        if (is_forbidden(cp))
            mr_buf_putc(out, '_');
        else
            mr_buf_append(out, s.p + i, l);
        i += l;
    }
}

static mr_span trim_dots_spaces(mr_span s)
{
    while (s.n > 0 && (s.p[0] == '.' || s.p[0] == ' ')) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && (s.p[s.n - 1] == '.' || s.p[s.n - 1] == ' '))
        s.n--;
    return s;
}

/* Largest length <= n that does not split a UTF-8 sequence of valid s. */
static size_t char_boundary(const char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Offset of the final extension's dot in s, or s.n when none fits. */
static size_t ext_dot(mr_span s)
{
    for (size_t k = s.n; k > 0; k--) {
        if (s.p[k - 1] == '.')
            return s.n - (k - 1) <= MAX_EXT ? k - 1 : s.n;
    }
    return s.n;
}

/* Step 5: s cut to at most max bytes, keeping the extension. */
static void cut(mr_span s, size_t max, struct mr_buf *out)
{
    if (s.n <= max) {
        mr_buf_append(out, s.p, s.n);
        return;
    }
    size_t dot = ext_dot(s);
    size_t ext = s.n - dot;
    if (ext == 0 || ext * 2 > max) {
        mr_buf_append(out, s.p, char_boundary(s.p, max));
        return;
    }
    mr_span stem = mr_span_make(s.p, char_boundary(s.p, max - ext));
    while (stem.n > 0 && stem.p[stem.n - 1] == ' ')
        stem.n--;
    mr_buf_append(out, stem.p, stem.n);
    mr_buf_append(out, s.p + dot, ext);
}

/* CON, PRN, AUX, NUL, COM1-9, LPT1-9 with any extension, and with the
 * trailing spaces Windows ignores ("CON .txt"). */
static bool is_reserved(mr_span s)
{
    size_t n = 0;
    while (n < s.n && s.p[n] != '.')
        n++;
    while (n > 0 && s.p[n - 1] == ' ')
        n--;
    mr_span base = mr_span_make(s.p, n);
    static const char *const names[] = {"con", "prn", "aux", "nul",
                                        "conin$", "conout$", "clock$"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (mr_span_ieq(base, names[k]))
            return true;
    return n == 4 &&
           (mr_span_istarts(base, "com") || mr_span_istarts(base, "lpt")) &&
           base.p[3] >= '1' && base.p[3] <= '9';
}

/* Only '_', spaces and dots: what is left of a name made of forbidden
 * characters carries nothing a user could recognize. */
static bool usable(mr_span s)
{
    for (size_t k = 0; k < s.n; k++)
        if (s.p[k] != '_' && s.p[k] != ' ' && s.p[k] != '.')
            return true;
    return false;
}

static const char *guess_ext(mr_span ct)
{
    static const struct {
        const char *type, *ext;
    } map[] = {
        {"message/rfc822", ".eml"},
        {"message/global", ".eml"},
        {"message/partial", ".eml"},
        {"message/delivery-status", ".txt"},
        {"message/disposition-notification", ".txt"},
        {"text/rfc822-headers", ".txt"},
        {"text/plain", ".txt"},
        {"text/html", ".html"},
        {"text/calendar", ".ics"},
        {"application/ics", ".ics"},
        {"text/csv", ".csv"},
        {"text/xml", ".xml"},
        {"application/xml", ".xml"},
        {"application/json", ".json"},
        {"text/vcard", ".vcf"},
        {"text/x-vcard", ".vcf"},
        {"application/pdf", ".pdf"},
        {"application/zip", ".zip"},
        {"application/gzip", ".gz"},
        {"application/msword", ".doc"},
        {"application/vnd.ms-excel", ".xls"},
        {"application/vnd.ms-powerpoint", ".ppt"},
        {"application/vnd.openxmlformats-officedocument.wordprocessingml."
         "document",
         ".docx"},
        {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         ".xlsx"},
        {"application/vnd.openxmlformats-officedocument.presentationml."
         "presentation",
         ".pptx"},
        {"application/vnd.ms-outlook", ".msg"},
        {"application/pgp-signature", ".asc"},
        {"application/pgp-encrypted", ".asc"},
        {"application/pkcs7-signature", ".p7s"},
        {"application/x-pkcs7-signature", ".p7s"},
        {"application/pkcs7-mime", ".p7m"},
        {"application/x-pkcs7-mime", ".p7m"},
        {"application/octet-stream", ".bin"},
        {"image/jpeg", ".jpg"},
        {"image/png", ".png"},
        {"image/gif", ".gif"},
        {"image/webp", ".webp"},
        {"image/bmp", ".bmp"},
        {"image/tiff", ".tif"},
        {"image/svg+xml", ".svg"},
        {"audio/mpeg", ".mp3"},
        {"audio/wav", ".wav"},
        {"video/mp4", ".mp4"},
    };
    /* Parameters, if the caller left them on, are not part of the type. */
    size_t semi = mr_span_find(ct, 0, ';');
    ct = mr_span_trim(mr_span_make(ct.p, semi));
    for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++)
        if (mr_span_ieq(ct, map[k].type))
            return map[k].ext;
    if (mr_span_istarts(ct, "text/"))
        return ".txt";
    return "";
}

void mr_filename_safe(mr_span name, mr_span content_type, size_t max_bytes,
                      struct mr_buf *out)
{
    if (max_bytes == 0)
        max_bytes = MR_FILENAME_MAX;
    if (name.p == NULL)
        name.n = 0;
    if (content_type.p == NULL)
        content_type.n = 0;

    struct mr_buf fixed, mapped, cutb;
    mr_buf_init(&fixed, 0);
    mr_buf_init(&mapped, 0);
    mr_buf_init(&cutb, 0);

    mr_utf8_repair(&fixed, name.p, name.n, false);
    mr_span s = mr_buf_span(&fixed);
    size_t base = 0;
    for (size_t k = 0; k < s.n; k++)
        if (is_sep(s.p[k]))
            base = k + 1;
    map_chars(mr_span_make(s.p + base, s.n - base), &mapped);

    s = trim_dots_spaces(mr_buf_span(&mapped));
    if (s.n > 0 && usable(s)) {
        bool reserved = is_reserved(s);
        cut(s, reserved ? max_bytes - 1 : max_bytes, &cutb);
        s = trim_dots_spaces(mr_buf_span(&cutb));
        /* Cutting may have exposed a reserved name ("CON" + long stem). */
        if (!reserved && is_reserved(s)) {
            reserved = true;
            if (s.n + 1 > max_bytes)
                s.n = char_boundary(s.p, max_bytes - 1);
        }
        if (reserved)
            mr_buf_putc(out, '_');
        mr_buf_append(out, s.p, s.n);
    } else {
        const char *ext = guess_ext(content_type);
        mr_buf_puts(out, "attachment");
        mr_buf_puts(out, ext);
    }
    mr_buf_release(&fixed);
    mr_buf_release(&mapped);
    mr_buf_release(&cutb);
}

void mr_filename_ext(mr_span name, char *ext, size_t size)
{
    if (size == 0)
        return;
    ext[0] = '\0';
    if (name.p == NULL)
        return;
    /* Windows ignores trailing dots and spaces: "evil.exe. " is an exe. */
    size_t n = name.n;
    while (n > 0 && (name.p[n - 1] == '.' || mr_is_wsp((unsigned char)
                                                           name.p[n - 1])))
        n--;
    size_t dot = n;
    for (size_t k = n; k > 0; k--) {
        char c = name.p[k - 1];
        if (c == '.') {
            dot = k - 1;
            break;
        }
        if (is_sep(c))
            return;
    }
    if (dot == n)
        return;
    size_t len = n - dot - 1;
    if (len + 1 > size)
        return;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)name.p[dot + 1 + k];
        if (c <= 0x20 || c >= 0x7F) {
            ext[0] = '\0';
            return;
        }
        ext[k] = (char)mr_lower(c);
    }
    ext[len] = '\0';
}
