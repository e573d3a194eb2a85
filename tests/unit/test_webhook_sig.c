/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/http/webhook_sig: every case of
 * ../shared/vectors/webhook_signatures.jsonl (found through MR_SHARED_DIR
 * or MR_SHARED, set by tests/CMakeLists.txt; skipped with a message when
 * the folder is absent), plus signing round trips and the bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "http/webhook_sig.h"
#include "util/buf.h"

static const char *shared_dir(void)
{
    const char *d = getenv("MR_SHARED_DIR");
    if (d == NULL || d[0] == '\0')
        d = getenv("MR_SHARED");
    return (d && d[0]) ? d : NULL;
}

static void all_vectors(void **state)
{
    (void)state;
    const char *dir = shared_dir();
    char path[4096];
    FILE *f = NULL;
    if (dir) {
        snprintf(path, sizeof path, "%s/vectors/webhook_signatures.jsonl", dir);
        f = fopen(path, "r");
    }
    if (f == NULL) {
        print_message("webhook_signatures.jsonl not found (MR_SHARED_DIR or "
                      "MR_SHARED unset, or no ../shared): skipped\n");
        skip();
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    int cases = 0, valid = 0, failures = 0;
    while (getline(&line, &cap, f) > 0 && cases < 10000) {
        json_error_t jerr;
        json_t *c = json_loads(line, 0, &jerr);
        assert_non_null(c);
        const char *id = json_string_value(json_object_get(c, "id"));
        const json_t *body = json_object_get(c, "body");
        const json_t *hv = json_object_get(c, "header_value");
        const char *expected =
            json_string_value(json_object_get(c, "expected"));
        json_int_t now = json_integer_value(json_object_get(c, "now"));
        json_int_t tol = json_integer_value(json_object_get(c, "tolerance_s"));
        assert_non_null(id);
        assert_non_null(expected);
        assert_true(json_is_string(body));

        const char *secrets[MR_WEBHOOK_MAX_SECRETS];
        size_t ns = 0;
        const json_t *list = json_object_get(c, "secrets");
        if (json_is_array(list)) {
            size_t i;
            json_t *s;
            json_array_foreach(list, i, s)
            {
                assert_true(ns < MR_WEBHOOK_MAX_SECRETS);
                secrets[ns++] = json_string_value(s);
            }
        } else {
            secrets[ns++] = json_string_value(json_object_get(c, "secret"));
        }

        struct mr_error err = {0};
        int rc = mr_webhook_verify_any(
            secrets, ns, json_is_null(hv) ? NULL : json_string_value(hv),
            json_string_value(body), json_string_length(body), (int64_t)now,
            (int)tol, &err);
        bool want = strcmp(expected, "valid") == 0;
        if ((rc == 0) != want) {
            print_error("%s: expected %s, got %d (%s)\n", id, expected, rc,
                        err.msg);
            failures++;
        }
        if (rc != 0)
            assert_int_equal(rc, MR_EINVAL);
        /* One secret through the plain entry point gives the same answer
         * when the case has only one. */
        if (ns == 1) {
            int rc1 = mr_webhook_verify(
                secrets[0], json_is_null(hv) ? NULL : json_string_value(hv),
                json_string_value(body), json_string_length(body), (int64_t)now,
                (int)tol, NULL);
            assert_int_equal(rc1, rc);
        }
        valid += want;
        cases++;
        json_decref(c);
    }
    free(line);
    fclose(f);
    print_message("%d signature vectors, %d valid\n", cases, valid);
    assert_int_equal(failures, 0);
    /* The file says 59 cases, 18 valid: a truncated copy must not pass. */
    assert_int_equal(cases, 59);
    assert_int_equal(valid, 18);
}

static void sign_and_verify_round_trip(void **state)
{
    (void)state;
    const char *body = "{\"from\":{\"email\":\"a@b.example\"}}";
    size_t len = strlen(body);
    char sig[128];
    assert_int_equal(
        mr_webhook_sign("k1", -1, body, len, sig, sizeof sig, NULL), 0);
    assert_int_equal(strlen(sig), 64);
    assert_int_equal(mr_webhook_verify("k1", sig, body, len, 0, 0, NULL), 0);
    assert_int_equal(mr_webhook_verify("k2", sig, body, len, 0, 0, NULL),
                     MR_EINVAL);
    /* One byte less is another message. */
    assert_int_equal(mr_webhook_verify("k1", sig, body, len - 1, 0, 0, NULL),
                     MR_EINVAL);

    int64_t now = 1736157600;
    assert_int_equal(
        mr_webhook_sign("k1", now - 10, body, len, sig, sizeof sig, NULL), 0);
    assert_int_equal(strncmp(sig, "t=1736157590,v1=", 16), 0);
    assert_int_equal(mr_webhook_verify("k1", sig, body, len, now, 300, NULL),
                     0);
    /* tolerance 0 means the default, 300 s. */
    assert_int_equal(mr_webhook_verify("k1", sig, body, len, now, 0, NULL), 0);
    /* A tighter window refuses it, with a reason that says why. */
    struct mr_error err = {0};
    assert_int_equal(mr_webhook_verify("k1", sig, body, len, now, 5, &err),
                     MR_EINVAL);
    assert_non_null(strstr(err.msg, "window"));
    /* Exactly at the edge, both directions. */
    assert_int_equal(
        mr_webhook_verify("k1", sig, body, len, now - 20, 10, NULL), 0);
    assert_int_equal(
        mr_webhook_verify("k1", sig, body, len, now - 21, 10, NULL), MR_EINVAL);
    /* The empty body is a body too. */
    assert_int_equal(mr_webhook_sign("k1", -1, "", 0, sig, sizeof sig, NULL),
                     0);
    assert_int_equal(mr_webhook_verify("k1", sig, "", 0, 0, 0, NULL), 0);
    assert_int_equal(mr_webhook_sign("k1", -1, body, len, sig, 10, NULL),
                     MR_EINVAL);
}

static void bounds_and_missing_pieces(void **state)
{
    (void)state;
    const char *body = "{}";
    char sig[128];
    assert_int_equal(mr_webhook_sign("s", 100, body, 2, sig, sizeof sig, NULL),
                     0);
    /* No secret configured: nothing verifies. */
    assert_int_equal(mr_webhook_verify(NULL, sig, body, 2, 100, 0, NULL),
                     MR_EINVAL);
    assert_int_equal(mr_webhook_verify("", sig, body, 2, 100, 0, NULL),
                     MR_EINVAL);
    assert_int_equal(mr_webhook_verify_any(NULL, 0, sig, body, 2, 100, 0, NULL),
                     MR_EINVAL);

    /* Too many elements: refused before any MAC is computed, even when a
     * good v1 is among them. */
    struct mr_buf b;
    mr_buf_init(&b, 0);
    mr_buf_puts(&b, sig);
    for (int i = 0; i < MR_WEBHOOK_MAX_ELEMENTS; i++)
        mr_buf_puts(&b, ",v0=x");
    struct mr_error err = {0};
    assert_int_equal(mr_webhook_verify("s", b.p, body, 2, 100, 0, &err),
                     MR_EINVAL);
    assert_non_null(strstr(err.msg, "too many"));
    /* Just within the bound passes. */
    mr_buf_reset(&b);
    mr_buf_puts(&b, sig);
    for (int i = 0; i < MR_WEBHOOK_MAX_ELEMENTS - 2; i++)
        mr_buf_puts(&b, ",v0=x");
    assert_int_equal(mr_webhook_verify("s", b.p, body, 2, 100, 0, NULL), 0);

    /* An over-long header is refused as such. */
    mr_buf_reset(&b);
    for (int i = 0; i < MR_WEBHOOK_MAX_HEADER + 1; i++)
        mr_buf_putc(&b, 'a');
    assert_int_equal(mr_webhook_verify("s", b.p, body, 2, 100, 0, &err),
                     MR_EINVAL);
    assert_non_null(strstr(err.msg, "too long"));
    mr_buf_release(&b);

    /* A trailing comma is an empty element: malformed. */
    char withcomma[140];
    snprintf(withcomma, sizeof withcomma, "%s,", sig);
    assert_int_equal(mr_webhook_verify("s", withcomma, body, 2, 100, 0, NULL),
                     MR_EINVAL);
    /* Only spaces: empty. */
    assert_int_equal(mr_webhook_verify("s", " \t ", body, 2, 100, 0, &err),
                     MR_EINVAL);
    assert_non_null(strstr(err.msg, "empty"));
}

static void rotation_with_two_secrets(void **state)
{
    (void)state;
    const char *body = "payload";
    char old_sig[128], new_sig[128], both[256];
    assert_int_equal(
        mr_webhook_sign("old", 50, body, 7, old_sig, sizeof old_sig, NULL), 0);
    assert_int_equal(
        mr_webhook_sign("new", 50, body, 7, new_sig, sizeof new_sig, NULL), 0);
    /* The sender signs with both while rolling: "t=50,v1=A,v1=B". */
    snprintf(both, sizeof both, "%s,%s", new_sig, strchr(old_sig, ',') + 1);
    const char *only_new[] = {"new"};
    const char *only_old[] = {"old"};
    const char *neither[] = {"other", "another"};
    assert_int_equal(
        mr_webhook_verify_any(only_new, 1, both, body, 7, 60, 0, NULL), 0);
    assert_int_equal(
        mr_webhook_verify_any(only_old, 1, both, body, 7, 60, 0, NULL), 0);
    assert_int_equal(
        mr_webhook_verify_any(neither, 2, both, body, 7, 60, 0, NULL),
        MR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(all_vectors),
        cmocka_unit_test(sign_and_verify_round_trip),
        cmocka_unit_test(bounds_and_missing_pieces),
        cmocka_unit_test(rotation_with_two_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
