/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gmime_fields: the GMime 3 reference side of the differential tests and of
 * the parse benchmark. For every input file (directories are walked, entries
 * sorted) it prints one JSON line of "comparable fields" (tests/diff/README
 * in differential.py's docstring): subject, from/to/cc, date (UTC), ids, the
 * first inline text/plain and text/html decoded to UTF-8, and every other
 * leaf part as an attachment with its decoded size and SHA-256.
 *
 * With --quiet it does the same work (every body and attachment is decoded
 * and hashed) but prints nothing, so a benchmark measures parsing, not I/O.
 *
 * This is test tooling, not product code: it uses GLib freely.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gmime/gmime.h>

static int quiet;

/* ---- JSON output ------------------------------------------------------ */

/* Invalid UTF-8 becomes U+FFFD so the line is always valid JSON. */
static void
json_str(GString *out, const char *s, gssize len)
{
    const char *p, *end;

    if (s == NULL) {
        g_string_append(out, "null");
        return;
    }
    if (len < 0)
        len = (gssize)strlen(s);
    p = s;
    end = s + len;
    g_string_append_c(out, '"');
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x80) {
            switch (c) {
            case '"': g_string_append(out, "\\\""); break;
            case '\\': g_string_append(out, "\\\\"); break;
            case '\n': g_string_append(out, "\\n"); break;
            case '\r': g_string_append(out, "\\r"); break;
            case '\t': g_string_append(out, "\\t"); break;
            default:
                if (c < 0x20 || c == 0x7f)
                    g_string_append_printf(out, "\\u%04x", c);
                else
                    g_string_append_c(out, (char)c);
            }
            p++;
            continue;
        }
        const gchar *next;
        gunichar u = g_utf8_get_char_validated(p, end - p);
        if (u == (gunichar)-1 || u == (gunichar)-2) {
            g_string_append(out, "\\ufffd");
            p++;
            continue;
        }
        next = g_utf8_next_char(p);
        g_string_append_len(out, p, next - p);
        p = next;
    }
    g_string_append_c(out, '"');
}

/* ---- addresses -------------------------------------------------------- */

static void
addr_list(GString *out, InternetAddressList *list, int *first)
{
    int i, n;

    if (list == NULL)
        return;
    n = internet_address_list_length(list);
    for (i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            addr_list(out, internet_address_group_get_members(
                               INTERNET_ADDRESS_GROUP(ia)), first);
            continue;
        }
        const char *name = internet_address_get_name(ia);
        const char *addr = internet_address_mailbox_get_addr(
            INTERNET_ADDRESS_MAILBOX(ia));
        if (name != NULL && *name == '\0')
            name = NULL;
        if (addr != NULL && *addr == '\0')
            addr = NULL;
        if (!*first)
            g_string_append_c(out, ',');
        *first = 0;
        g_string_append(out, "{\"name\":");
        json_str(out, name, -1);
        g_string_append(out, ",\"email\":");
        json_str(out, addr, -1);
        g_string_append_c(out, '}');
    }
}

static void
addr_field(GString *out, const char *key, InternetAddressList *list)
{
    int first = 1;

    g_string_append_printf(out, ",\"%s\":[", key);
    addr_list(out, list, &first);
    g_string_append_c(out, ']');
}

/* ---- parts ------------------------------------------------------------ */

struct walk {
    char *text;          /* UTF-8, owned */
    char *html;          /* UTF-8, owned */
    GString *atts;       /* JSON array body */
    int natts;
    int depth;
};

static GByteArray *
decoded_bytes(GMimeObject *obj)
{
    GMimeStream *mem = g_mime_stream_mem_new();
    GByteArray *arr;

    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(
            GMIME_MESSAGE_PART(obj));
        if (m != NULL)
            g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, mem);
    } else if (GMIME_IS_PART(obj)) {
        GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(obj));
        if (w != NULL)
            g_mime_data_wrapper_write_to_stream(w, mem);
    } else {
        g_mime_object_write_to_stream(obj, NULL, mem);
    }
    arr = g_byte_array_new();
    g_byte_array_append(arr,
                        g_mime_stream_mem_get_byte_array(
                            GMIME_STREAM_MEM(mem))->data,
                        g_mime_stream_mem_get_byte_array(
                            GMIME_STREAM_MEM(mem))->len);
    g_object_unref(mem);
    return arr;
}

/* CRLF -> LF, as mailroom's event promises "\n" line endings. */
static char *
lf_only(char *s)
{
    char *r, *w;

    if (s == NULL)
        return NULL;
    for (r = w = s; *r; r++) {
        if (r[0] == '\r' && r[1] == '\n')
            continue;
        *w++ = *r;
    }
    *w = '\0';
    return s;
}

static void
add_attachment(struct walk *wk, GMimeObject *obj)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    char *mt = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    const char *fn = GMIME_IS_PART(obj)
                         ? g_mime_part_get_filename(GMIME_PART(obj))
                         : NULL;
    GByteArray *b = decoded_bytes(obj);
    char *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, b->data,
                                            b->len);
    char *lower = mt ? g_ascii_strdown(mt, -1) : NULL;

    if (wk->natts++ > 0)
        g_string_append_c(wk->atts, ',');
    g_string_append(wk->atts, "{\"filename\":");
    json_str(wk->atts, fn, -1);
    g_string_append(wk->atts, ",\"content_type\":");
    json_str(wk->atts, lower ? lower : "application/octet-stream", -1);
    g_string_append_printf(wk->atts, ",\"size\":%u,\"sha256\":\"%s\"}",
                           b->len, sha);
    g_free(lower);
    g_free(sha);
    g_free(mt);
    g_byte_array_unref(b);
}

/* Depth-first over multiparts; message/rfc822 parts are leaves. */
static void
walk(struct walk *wk, GMimeObject *obj)
{
    if (obj == NULL)
        return;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int i, n = g_mime_multipart_get_count(mp);
        if (wk->depth++ > 100)
            return;
        for (i = 0; i < n; i++)
            walk(wk, g_mime_multipart_get_part(mp, i));
        wk->depth--;
        return;
    }
    if (GMIME_IS_TEXT_PART(obj) &&
        !g_mime_part_is_attachment(GMIME_PART(obj))) {
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        if (wk->text == NULL &&
            g_mime_content_type_is_type(ct, "text", "plain")) {
            wk->text = g_mime_text_part_get_text(GMIME_TEXT_PART(obj));
            if (wk->text == NULL)
                wk->text = g_strdup("");
            lf_only(wk->text);
            return;
        }
        if (wk->html == NULL &&
            g_mime_content_type_is_type(ct, "text", "html")) {
            wk->html = g_mime_text_part_get_text(GMIME_TEXT_PART(obj));
            if (wk->html == NULL)
                wk->html = g_strdup("");
            lf_only(wk->html);
            return;
        }
    }
    add_attachment(wk, obj);
}

/* ---- one message ------------------------------------------------------ */

static char *
first_ref(GMimeMessage *msg, const char *name, GString *all)
{
    const char *v = g_mime_object_get_header(GMIME_OBJECT(msg), name);
    GMimeReferences *refs;
    char *first = NULL;
    int i, n;

    if (v == NULL)
        return NULL;
    refs = g_mime_references_parse(NULL, v);
    if (refs == NULL)
        return NULL;
    n = g_mime_references_length(refs);
    for (i = 0; i < n; i++) {
        const char *id = g_mime_references_get_message_id(refs, i);
        if (i == 0)
            first = g_strdup(id);
        if (all != NULL) {
            if (all->len > 1)
                g_string_append_c(all, ',');
            json_str(all, id, -1);
        }
    }
    g_mime_references_free(refs);
    return first;
}

static void
dump(const char *path)
{
    GString *out = g_string_new("{\"file\":");
    GMimeStream *st;
    GMimeParser *parser;
    GMimeMessage *msg;
    FILE *fp;

    json_str(out, path, -1);
    fp = fopen(path, "rb");
    if (fp == NULL) {
        g_string_append(out, ",\"error\":\"cannot open\"}");
        goto done;
    }
    st = g_mime_stream_file_new(fp);
    parser = g_mime_parser_new_with_stream(st);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(st);
    if (msg == NULL) {
        g_string_append(out, ",\"error\":\"no message\"}");
        goto done;
    }

    g_string_append(out, ",\"subject\":");
    json_str(out, g_mime_message_get_subject(msg), -1);
    addr_field(out, "from", g_mime_message_get_from(msg));
    addr_field(out, "to", g_mime_message_get_to(msg));
    addr_field(out, "cc", g_mime_message_get_cc(msg));

    GDateTime *dt = g_mime_message_get_date(msg);
    g_string_append(out, ",\"date\":");
    if (dt != NULL) {
        GDateTime *utc = g_date_time_to_utc(dt);
        char *s = utc ? g_date_time_format(utc, "%Y-%m-%dT%H:%M:%SZ") : NULL;
        json_str(out, s, -1);
        g_free(s);
        if (utc)
            g_date_time_unref(utc);
    } else {
        g_string_append(out, "null");
    }

    g_string_append(out, ",\"message_id\":");
    json_str(out, g_mime_message_get_message_id(msg), -1);

    char *irt = first_ref(msg, "In-Reply-To", NULL);
    g_string_append(out, ",\"in_reply_to\":");
    json_str(out, irt, -1);
    g_free(irt);

    GString *refs = g_string_new("[");
    g_free(first_ref(msg, "References", refs));
    g_string_append_c(refs, ']');
    g_string_append(out, ",\"references\":");
    g_string_append_len(out, refs->str, refs->len);
    g_string_free(refs, TRUE);

    struct walk wk = {0};
    wk.atts = g_string_new("");
    walk(&wk, g_mime_message_get_mime_part(msg));
    g_string_append(out, ",\"text\":");
    json_str(out, wk.text, -1);
    g_string_append(out, ",\"html\":");
    json_str(out, wk.html, -1);
    g_string_append(out, ",\"attachments\":[");
    g_string_append_len(out, wk.atts->str, wk.atts->len);
    g_string_append(out, "]}");
    g_string_free(wk.atts, TRUE);
    g_free(wk.text);
    g_free(wk.html);
    g_object_unref(msg);
done:
    if (!quiet) {
        g_string_append_c(out, '\n');
        fwrite(out->str, 1, out->len, stdout);
    }
    g_string_free(out, TRUE);
}

/* ---- inputs ----------------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
visit(const char *path)
{
    struct stat sb;

    if (stat(path, &sb) != 0) {
        fprintf(stderr, "gmime_fields: cannot stat %s\n", path);
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        dump(path);
        return;
    }
    DIR *d = opendir(path);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    struct dirent *de;
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        g_ptr_array_add(names, g_build_filename(path, de->d_name, NULL));
    }
    closedir(d);
    qsort(names->pdata, names->len, sizeof(char *), cmp_str);
    for (guint i = 0; i < names->len; i++)
        visit(names->pdata[i]);
    g_ptr_array_free(names, TRUE);
}

int
main(int argc, char **argv)
{
    int i, any = 0;

    g_mime_init();
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            printf("usage: gmime_fields [--quiet] FILE|DIR...\n");
            return 0;
        }
    }
    for (i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] == '-')
            continue;
        visit(argv[i]);
        any = 1;
    }
    fflush(stdout);
    g_mime_shutdown();
    if (!any) {
        fprintf(stderr, "usage: gmime_fields [--quiet] FILE|DIR...\n");
        return 2;
    }
    return 0;
}
