/* SPDX-License-Identifier: Apache-2.0 */
/* Outbound webhooks: the Standard Webhooks signature (the spec's own
 * example vector; ../shared/vectors has inbound cases only) and the retry
 * schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/webhook_sig.h"
#include "outbound/dispatch.h"
#include "util/backoff.h"

static void std_vector(void **state)
{
    (void)state;
    const char body[] = "{\"test\": 2432232314}";
    char out[MR_WEBHOOK_STD_SIG_LEN];
    struct mr_error err = {0};
    assert_int_equal(mr_webhook_sign_std("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                         "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                         1614265330, body, strlen(body), out,
                                         sizeof out, &err),
                     0);
    assert_string_equal(out, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* Another timestamp signs differently. */
    assert_int_equal(mr_webhook_sign_std("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                         "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                         1614265331, body, strlen(body), out,
                                         sizeof out, &err),
                     0);
    assert_string_not_equal(out,
                            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void bad_secrets(void **state)
{
    (void)state;
    char out[MR_WEBHOOK_STD_SIG_LEN];
    assert_int_equal(mr_webhook_sign_std("whsec_", "a", 1, "x", 1, out,
                                         sizeof out, NULL),
                     MR_EINVAL);
    assert_int_equal(mr_webhook_sign_std("whsec_abc", "a", 1, "x", 1, out,
                                         sizeof out, NULL),
                     MR_EINVAL);
    assert_int_equal(mr_webhook_sign_std("plain-secret", "a", 1, "x", 1, out,
                                         4, NULL),
                     MR_EINVAL);
}

static void schedule(void **state)
{
    (void)state;
    assert_int_equal(mr_dispatch_retry_delay_ms(1, 1.0, 0.0), 5000);
    assert_int_equal(mr_dispatch_retry_delay_ms(2, 1.0, 0.0), 300000);
    assert_int_equal(mr_dispatch_retry_delay_ms(7, 1.0, 0.0), 86400000);
    assert_int_equal(mr_dispatch_retry_delay_ms(8, 1.0, 0.0), -1);
    assert_int_equal(mr_dispatch_retry_delay_ms(0, 1.0, 0.5), -1);
    assert_int_equal(mr_dispatch_retry_delay_ms(2, 0.001, 0.0), 300);
    /* Jitter adds up to a fifth of the wait, never takes from it. */
    assert_int_equal(mr_dispatch_retry_delay_ms(1, 1.0, 0.5), 5500);
    assert_true(mr_dispatch_retry_delay_ms(2, 1.0, 0.999999) < 360000);
    assert_true(mr_dispatch_retry_delay_ms(2, 1.0, 0.999999) > 359000);
    /* A value out of range counts as none. */
    assert_int_equal(mr_dispatch_retry_delay_ms(1, 1.0, 7.0), 5000);
    /* The random values are spread over [0, 1). */
    double lo = 1.0, hi = 0.0;
    for (int i = 0; i < 1000; i++) {
        double r = mr_backoff_rnd();
        assert_true(r >= 0.0 && r < 1.0);
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    assert_true(lo < 0.1 && hi > 0.9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(std_vector),
        cmocka_unit_test(bad_secrets),
        cmocka_unit_test(schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
