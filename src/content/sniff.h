/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sniff.h - the real type of an attachment's bytes (libmagic), whatever
 * its name and declared Content-Type say.
 *
 * Only the first MR_SNIFF_BYTES of an attachment are looked at: the
 * worker's blob sink keeps that much of the first chunks it streams, so a
 * large attachment is never held whole for this. libmagic's own read
 * limit is set to the same size, so a rule never looks past what it got.
 *
 * libmagic is loaded with dlopen when the first attachment is sniffed,
 * not linked (it brings zlib, bzip2, xz and zstd into every process, and
 * `mailroom parse` never needs it). Without the library (or its database)
 * every answer is "unknown" (NULL) and mr_sniff_available says so, so the
 * caller can warn once; nothing fails.
 *
 * Thread use: a libmagic handle is not safe to share, so a mr_sniff is
 * one per thread (one per worker, beside its charset context). The caller
 * owns it: mr_sniff_new / mr_sniff_free.
 */
#ifndef MR_SNIFF_H
#define MR_SNIFF_H

#include <stdbool.h>
#include <stddef.h>

/* Enough for every rule that matters here (PE and ELF headers, ZIP local
 * headers of OOXML, HTML near the top, OLE directory sectors). */
#define MR_SNIFF_BYTES (64u << 10)
/* Longest media type returned (libmagic's are far shorter). */
#define MR_SNIFF_TYPE_MAX 127

struct mr_sniff;

/* Never fails: the library is loaded on first use. */
struct mr_sniff *mr_sniff_new(void);
/* The same with another library name (tests prove the missing-library
 * path with one that does not exist). soname is copied. */
struct mr_sniff *mr_sniff_new_from(const char *soname);
void mr_sniff_free(struct mr_sniff **s);

/* The media type of p[0..n) (n is cut to MR_SNIFF_BYTES), lower-case
 * "type/subtype" without parameters, written NUL-terminated into out.
 * Returns false (out = "") when libmagic is missing or has no answer.
 * An empty buffer is "application/x-empty". */
bool mr_sniff_type(struct mr_sniff *s, const void *p, size_t n,
                   char out[MR_SNIFF_TYPE_MAX + 1]);

/* false once loading libmagic has been tried and failed; why (for a log
 * line) in the string *why points to (borrowed from s). true before the
 * first sniff. */
bool mr_sniff_available(const struct mr_sniff *s, const char **why);

#endif
