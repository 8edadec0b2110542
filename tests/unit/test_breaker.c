/* test_breaker.c: the breaker opens after N consecutive failures, stays open
 * for the cooldown, lets exactly one probe through, and closes on success.
 * A probe that never reports still ends: by its pool's cleanup, or when its
 * lease runs out. */
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

/* Open the breaker (threshold 1) at t. */
static void trip(hgs3_breaker *b, apr_pool_t *p, apr_time_t t)
{
    assert_int_equal(hgs3_breaker_init(b, p, 1, apr_time_from_sec(10)), APR_SUCCESS);
    assert_true(hgs3_breaker_failure(b, t));
    assert_false(hgs3_breaker_allow(b, t));
}

/* The probe's request ends without a word (a streamed hit that failed on
 * the client's side, a client abort): its pool's cleanup reports the probe
 * as failed, so the breaker opens for another cooldown and the next probe
 * goes after it, instead of lookups staying off for good. */
static void test_silent_probe_fails_with_its_pool(void **state)
{
    apr_pool_t *p, *req;
    hgs3_breaker b;
    apr_time_t t = apr_time_now();
    (void)state;

    apr_pool_create(&p, NULL);
    trip(&b, p, t - apr_time_from_sec(10));
    apr_pool_create(&req, p);
    assert_int_equal(hgs3_breaker_enter(&b, req, t), HGS3_BREAKER_PROBE);
    assert_false(hgs3_breaker_enter(&b, p, t)); /* one probe at a time */
    apr_pool_destroy(req);                      /* no success, no failure */
    /* open again from the cleanup's time on, for one cooldown */
    assert_false(hgs3_breaker_allow(&b, t + apr_time_from_sec(1)));
    assert_int_equal(hgs3_breaker_allow(&b, apr_time_now() + apr_time_from_sec(10)),
                     HGS3_BREAKER_PROBE);
    apr_pool_destroy(p);
}

/* A probe that reported keeps its result: its pool's cleanup changes
 * nothing, not even for a later probe. */
static void test_reported_probe_cleanup_is_a_no_op(void **state)
{
    apr_pool_t *p, *req1, *req2;
    hgs3_breaker b;
    apr_time_t t = apr_time_now();
    (void)state;

    apr_pool_create(&p, NULL);
    trip(&b, p, t - apr_time_from_sec(10));
    apr_pool_create(&req1, p);
    assert_int_equal(hgs3_breaker_enter(&b, req1, t), HGS3_BREAKER_PROBE);
    hgs3_breaker_success(&b);
    apr_pool_destroy(req1);
    assert_int_equal(hgs3_breaker_allow(&b, t), HGS3_BREAKER_CLOSED);

    /* a failed probe, then a new probe; the first one's pool goes last */
    trip(&b, p, t - apr_time_from_sec(10));
    apr_pool_create(&req1, p);
    apr_pool_create(&req2, p);
    assert_int_equal(hgs3_breaker_enter(&b, req1, t), HGS3_BREAKER_PROBE);
    assert_false(hgs3_breaker_failure(&b, t - apr_time_from_sec(10)));
    assert_int_equal(hgs3_breaker_enter(&b, req2, t), HGS3_BREAKER_PROBE);
    apr_pool_destroy(req1); /* not the probe that is out now */
    assert_false(hgs3_breaker_allow(&b, t));
    hgs3_breaker_success(&b);
    apr_pool_destroy(req2);
    assert_int_equal(hgs3_breaker_allow(&b, t), HGS3_BREAKER_CLOSED);
    apr_pool_destroy(p);
}

/* A probe whose request never ends: after a cooldown its lease is over and
 * the next caller is the probe. */
static void test_probe_lease_expires(void **state)
{
    apr_pool_t *p;
    hgs3_breaker b;
    apr_time_t t = apr_time_from_sec(1000);
    (void)state;

    apr_pool_create(&p, NULL);
    trip(&b, p, t);
    t += apr_time_from_sec(10);
    assert_int_equal(hgs3_breaker_allow(&b, t), HGS3_BREAKER_PROBE);
    assert_false(hgs3_breaker_allow(&b, t + apr_time_from_sec(9)));
    assert_int_equal(hgs3_breaker_allow(&b, t + apr_time_from_sec(10)), HGS3_BREAKER_PROBE);
    assert_false(hgs3_breaker_allow(&b, t + apr_time_from_sec(10)));
    hgs3_breaker_success(&b);
    assert_int_equal(hgs3_breaker_allow(&b, t + apr_time_from_sec(10)), HGS3_BREAKER_CLOSED);
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trip_cooldown_probe),
        cmocka_unit_test(test_silent_probe_fails_with_its_pool),
        cmocka_unit_test(test_reported_probe_cleanup_is_a_no_op),
        cmocka_unit_test(test_probe_lease_expires),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
