/* test_breaker.c: the breaker opens after N consecutive failures, stays open
 * for the cooldown, lets exactly one probe through, and closes on success. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "hgs3_breaker.h"

static void test_trip_cooldown_probe(void **state)
{
    apr_pool_t *p;
    hgs3_breaker b;
    apr_time_t t = apr_time_from_sec(1000);
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_breaker_init(&b, p, 3, apr_time_from_sec(10)), APR_SUCCESS);
    assert_true(hgs3_breaker_allow(&b, t));
    assert_false(hgs3_breaker_failure(&b, t));
    assert_false(hgs3_breaker_failure(&b, t));
    /* a success in between resets the count */
    hgs3_breaker_success(&b);
    assert_false(hgs3_breaker_failure(&b, t));
    assert_false(hgs3_breaker_failure(&b, t));
    assert_true(hgs3_breaker_failure(&b, t)); /* third in a row: trips */
    assert_false(hgs3_breaker_allow(&b, t));
    assert_false(hgs3_breaker_allow(&b, t + apr_time_from_sec(9)));
    /* after the cooldown exactly one probe goes */
    assert_true(hgs3_breaker_allow(&b, t + apr_time_from_sec(10)));
    assert_false(hgs3_breaker_allow(&b, t + apr_time_from_sec(10)));
    /* the probe fails: open again, not counted as a new trip */
    assert_false(hgs3_breaker_failure(&b, t + apr_time_from_sec(11)));
    assert_false(hgs3_breaker_allow(&b, t + apr_time_from_sec(20)));
    assert_true(hgs3_breaker_allow(&b, t + apr_time_from_sec(21)));
    /* the next probe succeeds: closed for everyone */
    hgs3_breaker_success(&b);
    assert_true(hgs3_breaker_allow(&b, t + apr_time_from_sec(21)));
    assert_true(hgs3_breaker_allow(&b, t + apr_time_from_sec(21)));
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trip_cooldown_probe),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
