/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ticket_patch.c - mr_store_ticket_patch_check: whether an agent's change
 * to a ticket may be applied at all, decided without a database, so that
 * the HTTP handler and the command line can name the offending field
 * before anything is queued for the writer (which checks again).
 *
 * Queue names, assignees and tags end up in listings, terminals and other
 * systems' payloads: they must be short UTF-8 without control characters.
 */
#include <stdbool.h>
#include <string.h>

#include "store/store.h"
#include "util/utf8.h"

static const char *const settable_status[] = {"open", "pending", "solved",
                                              "closed"};
static const char *const priorities[] = {"low", "normal", "high", "urgent"};

static bool one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

/* 1..max bytes of UTF-8 without control characters: what a queue name,
 * an assignee or a tag may be, so that none can break a listing. */
static bool text_ok(const char *s, size_t max)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max || !mr_utf8_valid(s, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

static int bad(const char **field, const char *name, struct mr_error *err,
               const char *msg)
{
    if (field)
        *field = name;
    return mr_error_set(err, MR_EINVAL, "%s: %s", name, msg);
}

static int check_tags(const char *const *v, size_t n, const char *name,
                      const char **field, struct mr_error *err)
{
    if (n > MR_TICKET_TAGS_MAX)
        return bad(field, name, err, "at most 100 tags");
    if (n > 0 && v == NULL)
        return bad(field, name, err, "no list given");
    for (size_t i = 0; i < n; i++)
        if (!text_ok(v[i], MR_TICKET_TAG_MAX))
            return bad(field, name, err,
                       "a tag is 1 to 64 bytes of UTF-8 without control "
                       "characters");
    return 0;
}

int mr_store_ticket_patch_check(const struct mr_ticket_patch *p,
                                const char **field, struct mr_error *err)
{
    if (field)
        *field = NULL;
    if (p == NULL)
        return mr_error_set(err, MR_EINVAL, "no patch");
    if (p->status && strcmp(p->status, "new") == 0)
        return bad(field, "status", err,
                   "'new' is only a ticket's first state; use open, "
                   "pending, solved or closed");
    if (p->status && !one_of(p->status, settable_status, 4))
        return bad(field, "status", err,
                   "must be open, pending, solved or closed");
    if (p->priority && !one_of(p->priority, priorities, 4))
        return bad(field, "priority", err,
                   "must be low, normal, high or urgent");
    if (p->set_queue && p->queue && !text_ok(p->queue, MR_TICKET_VALUE_MAX))
        return bad(field, "queue", err,
                   "1 to 128 bytes of UTF-8 without control characters, or "
                   "null");
    if (p->set_assignee && p->assignee &&
        !text_ok(p->assignee, MR_TICKET_VALUE_MAX))
        return bad(field, "assignee", err,
                   "1 to 128 bytes of UTF-8 without control characters, or "
                   "null");
    if (p->set_tags && (p->ntags_add > 0 || p->ntags_remove > 0))
        return bad(field, "tags", err,
                   "replaces the tags: not together with tags_add or "
                   "tags_remove");
    int rc = 0;
    if (p->set_tags)
        rc = check_tags(p->tags, p->ntags, "tags", field, err);
    if (rc == 0)
        rc = check_tags(p->tags_add, p->ntags_add, "tags_add", field, err);
    if (rc == 0)
        rc = check_tags(p->tags_remove, p->ntags_remove, "tags_remove", field,
                        err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < p->ntags_add; i++)
        for (size_t k = 0; k < p->ntags_remove; k++)
            if (strcmp(p->tags_add[i], p->tags_remove[k]) == 0)
                return bad(field, "tags_remove", err,
                           "a tag both added and removed");
    return 0;
}
