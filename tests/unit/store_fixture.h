/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_fixture.h - a fresh SQLite store in its own temporary folder, for
 * the store's unit tests (test_store*.c): the fixture, its setup and
 * teardown for cmocka, and raw SQL on the file behind the store's back
 * (to build old schemas and odd states). Include it once per test program,
 * after <cmocka.h>.
 */
#ifndef MR_TEST_STORE_FIXTURE_H
#define MR_TEST_STORE_FIXTURE_H

#include <ftw.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

struct fx {
    char dir[64];   /* the temporary folder, removed at teardown */
    char path[128]; /* <dir>/mailroom.db */
    char url[160];  /* sqlite:<path> */
    struct mr_store *st;
};

static inline int store_fx_rm_entry(const char *p, const struct stat *sb,
                                    int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void store_fx_rm_tree(const char *dir)
{
    nftw(dir, store_fx_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static inline int store_fx_open(struct fx *f, bool migrate,
                                struct mr_error *err)
{
    struct mr_store_options o = {.url = f->url, .migrate = migrate};
    return mr_store_open(&o, &f->st, err);
}

/* A folder /tmp/mr-<name>-XXXXXX and a migrated store in it. */
static inline int store_fx_setup(void **state, const char *name)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mr-%.16s-XXXXXX", name);
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/mailroom.db", f->dir);
    snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
    struct mr_error err = {0};
    if (store_fx_open(f, true, &err) != 0) {
        print_error("open: %s\n", err.msg);
        store_fx_rm_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int store_fx_teardown(void **state)
{
    struct fx *f = *state;
    mr_store_close(f->st);
    store_fx_rm_tree(f->dir);
    free(f);
    return 0;
}

/* SQL run on the database file directly; must succeed. */
static inline void store_fx_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        print_error("raw_exec: %s\n", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
}

#endif
