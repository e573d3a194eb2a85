/* SPDX-License-Identifier: Apache-2.0 */
/*
 * filename.h - attachment names that are safe to store and to offer for
 * download.
 *
 * From a decoded name (UTF-8, any bytes a sender chose) make one that:
 * - is a base name: everything up to the last '/', '\\' or ':' dropped
 *   (paths, drive letters, UNC, file:// URLs), no "." / ".." components;
 * - has no C0/C1 control characters, no NUL, no bidi controls (U+200E,
 *   U+200F, U+202A-U+202E, U+2066-U+2069) and no other format characters
 *   that hide text (U+200B-U+200D, U+2060, U+FEFF): these are removed,
 *   while controls and characters Windows refuses (<>:"|?*) are each
 *   replaced by '_' (so "a.pdf\0.exe" becomes "a.pdf_.exe");
 * - has whitespace runs (TAB, CR, LF and Unicode spaces included) collapsed
 *   to one space and leading/trailing dots and spaces
 *   removed, so "document.pdf      .exe" shows as "document.pdf .exe" and
 *   "evil.exe. " as "evil.exe";
 * - is not a Windows reserved device name (CON, PRN, AUX, NUL, COM1-9,
 *   LPT1-9, with any extension): prefixed with '_';
 * - is at most max_bytes bytes of UTF-8 (default MR_FILENAME_MAX), cut on
 *   a character boundary while keeping the final extension;
 * - is never empty: "attachment" plus an extension guessed from the
 *   content type (".eml" for message/rfc822, ".txt" for text/plain, ...)
 *   when nothing usable is left.
 * The real final extension is always preserved, so type checks see ".exe"
 * in "invoice.pdf.exe".
 */
#ifndef MR_FILENAME_H
#define MR_FILENAME_H

#include <stddef.h>

#include "../util/buf.h"
#include "../util/span.h"

#define MR_FILENAME_MAX 255

/* Appends the safe name for `name` (may be empty or NULL-pointer) to out.
 * content_type is "type/subtype" in lower case (may be empty), used only
 * for the fallback extension. */
void mr_filename_safe(mr_span name, mr_span content_type, size_t max_bytes,
                      struct mr_buf *out);

/* The final extension of a name, lower-case ASCII without the dot, written
 * into ext (size bytes); empty when none. */
void mr_filename_ext(mr_span name, char *ext, size_t size);

#endif
