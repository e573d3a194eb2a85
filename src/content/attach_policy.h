/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attach_policy.h - which attachments are dangerous to an agent, and how
 * any attachment is served (docs/attachments.md is the user's side).
 *
 * An attachment is judged from its original file name (as the sender
 * wrote it, decoded), its safe name (mr_filename_safe's, what a download
 * is called), the type it declares and the type libmagic found. The
 * verdict says:
 *
 *   blocked        it is stored, but never served inline and downloadable
 *                  by an admin only. First rule that applies, in order:
 *                  1. "bidi": the original name holds an explicit
 *                     directional formatting character (U+202A-U+202E,
 *                     U+2066-U+2069), the trick that shows "invoice.exe"
 *                     as "invoicexe.pdf";
 *                  2. "detected_type": the bytes are of a blocked type
 *                     (an executable is blocked whatever it is called);
 *                  3. "padded_extension": blanks run right before the
 *                     final extension after another one
 *                     ("invoice.pdf      .exe"), which hides it in a
 *                     narrow column, whatever that extension is;
 *                  4. "double_extension": a decoy extension before a
 *                     blocked final one ("invoice.pdf.exe");
 *                  5. "extension": the final extension is blocked;
 *                  6. "declared_type": the declared type is blocked.
 *   type_mismatch  the declared and detected types disagree in a way that
 *                  matters (mr_attach_types_compatible says which pairs
 *                  do not).
 *
 * The blocklists are the built-in defaults (mr_attach_default_* below)
 * plus the configuration's blocked_* entries minus its allowed_* entries.
 * Entries are lower case; extensions without the dot. The policy only
 * borrows the configuration's lists, so making one costs nothing.
 *
 * Serving: mr_attach_serve_type never answers a type a browser would run
 * or render as a document of our origin (HTML, SVG, XML, script): those,
 * blocked and mismatched files, and files of unknown type are
 * application/octet-stream. mr_attach_content_disposition writes an
 * RFC 6266 header value with an ASCII fallback and an RFC 5987 UTF-8 name.
 *
 * Thread use: pure functions of their arguments.
 */
#ifndef MR_ATTACH_POLICY_H
#define MR_ATTACH_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* Built-in lists, NULL-terminated. */
extern const char *const mr_attach_default_extensions[];
extern const char *const mr_attach_default_types[];

struct mr_attach_policy {
    /* Added to the defaults; may be NULL with a count of 0. */
    const char *const *blocked_extensions;
    size_t nblocked_extensions;
    const char *const *blocked_types;
    size_t nblocked_types;
    /* Taken out of defaults and additions. */
    const char *const *allowed_extensions;
    size_t nallowed_extensions;
    const char *const *allowed_types;
    size_t nallowed_types;
};

struct mr_config;
/* The policy of a loaded configuration (its attachments: section); p
 * borrows cfg's lists. */
void mr_attach_policy_from_config(const struct mr_config *cfg,
                                  struct mr_attach_policy *p);

#define MR_ATTACH_REASON_MAX 160

struct mr_attach_verdict {
    bool blocked;
    bool type_mismatch;
    /* Why blocked: "<rule>: <detail>", e.g. "double_extension: .pdf.exe";
     * "" when not blocked. Valid UTF-8, no control characters. */
    char reason[MR_ATTACH_REASON_MAX];
};

/* Judges one attachment. Every string may be NULL (unknown). policy NULL:
 * the defaults alone. */
void mr_attach_judge(const struct mr_attach_policy *policy,
                     const char *filename, const char *safe_filename,
                     const char *declared_type, const char *detected_type,
                     struct mr_attach_verdict *v);

/* Is extension ext (lower or upper case, no dot) / media type t on the
 * effective blocklist? */
bool mr_attach_extension_blocked(const struct mr_attach_policy *policy,
                                 const char *ext);
bool mr_attach_type_blocked(const struct mr_attach_policy *policy,
                            const char *type);

/* false when declared and detected types disagree in a way that matters;
 * true when either is unknown. */
bool mr_attach_types_compatible(const char *declared, const char *detected);

/* A raster image type a browser may show inline from our origin (png,
 * jpeg, gif, webp, bmp, x-icon / vnd.microsoft.icon). */
bool mr_attach_is_raster_image(const char *type);

/* The Content-Type to send for a download. blocked or mismatched:
 * application/octet-stream; otherwise the detected type unless it is one
 * a browser would render or run as our origin's document (HTML, XHTML,
 * SVG, XML, script), or unknown. A static string or detected itself. */
const char *mr_attach_serve_type(const char *detected, bool blocked,
                                 bool type_mismatch);

/* Appends `disposition; filename="<ascii>"; filename*=UTF-8''<pct>` to
 * out (disposition: "attachment" or "inline"). name is a safe file name
 * (UTF-8; NULL or empty: fallback). The ASCII form keeps ASCII letters,
 * digits and " !#$&'()+,-.=@[]^_`{}~" and the final extension, other
 * characters become '_'. The result is at most MR_ATTACH_DISPOSITION_MAX
 * bytes: longer names are cut on a character boundary, the extension
 * kept. */
#define MR_ATTACH_DISPOSITION_MAX 1100
void mr_attach_content_disposition(const char *disposition, const char *name,
                                   const char *fallback, struct mr_buf *out);

#endif
