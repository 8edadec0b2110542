/* test_ratelimit.c: the per-message-kind log rate limiter (hgs3_ratelimit). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_time.h>

#include "hgs3_ratelimit.h"

#define SEC    APR_USEC_PER_SEC
#define T0     ((apr_time_t)1700000000 * SEC)
#define IVL    (10 * SEC)
#define NTHR   8
#define NCALLS 2000

static void test_interval(void **state)
{
    hgs3_ratelimit rl = HGS3_RATELIMIT_INIT(IVL);
    apr_uint32_t n = 99;
    (void)state;

    assert_true(hgs3_ratelimit_allow(&rl, T0, &n));
    assert_int_equal(n, 0);
    n = 99;
    assert_false(hgs3_ratelimit_allow(&rl, T0, &n));
    assert_false(hgs3_ratelimit_allow(&rl, T0 + SEC, &n));
    assert_false(hgs3_ratelimit_allow(&rl, T0 + IVL - 1, NULL));
    assert_int_equal(n, 99); /* untouched while held back */
    assert_true(hgs3_ratelimit_allow(&rl, T0 + IVL, &n));
    assert_int_equal(n, 3);
    /* the count starts again */
    assert_false(hgs3_ratelimit_allow(&rl, T0 + IVL + 1, &n));
    assert_true(hgs3_ratelimit_allow(&rl, T0 + 3 * IVL, &n));
    assert_int_equal(n, 1);
    /* a clock stepped back lets one through */
    assert_true(hgs3_ratelimit_allow(&rl, T0, &n));
    assert_int_equal(n, 0);
}

/* Two kinds never count or silence each other. */
static void test_kinds_apart(void **state)
{
    hgs3_ratelimit a = HGS3_RATELIMIT_INIT(IVL), b = HGS3_RATELIMIT_INIT(IVL);
    apr_uint32_t n = 0;
    int i;
    (void)state;

    assert_true(hgs3_ratelimit_allow(&a, T0, &n));
    for (i = 0; i < 5; ++i) {
        assert_false(hgs3_ratelimit_allow(&a, T0 + i, &n));
    }
    /* b's first message is not held back by a's flood */
    assert_true(hgs3_ratelimit_allow(&b, T0 + 5, &n));
    assert_int_equal(n, 0);
    assert_false(hgs3_ratelimit_allow(&b, T0 + 6, &n));
    assert_true(hgs3_ratelimit_allow(&a, T0 + IVL, &n));
    assert_int_equal(n, 5);
    assert_true(hgs3_ratelimit_allow(&b, T0 + 5 + IVL, &n));
    assert_int_equal(n, 1);
}

typedef struct th_arg {
    hgs3_ratelimit *rl;
    apr_time_t now;
    int allowed;
    apr_uint32_t reported;
} th_arg;

static void *th_run(void *data)
{
    th_arg *t = data;
    int i;
    for (i = 0; i < NCALLS; ++i) {
        apr_uint32_t n = 0;
        if (hgs3_ratelimit_allow(t->rl, t->now, &n)) {
            ++t->allowed;
            t->reported += n;
        }
    }
    return NULL;
}

static void run_threads(hgs3_ratelimit *rl, apr_time_t now, th_arg *args)
{
    pthread_t th[NTHR];
    int i;
    for (i = 0; i < NTHR; ++i) {
        args[i].rl = rl;
        args[i].now = now;
        args[i].allowed = 0;
        args[i].reported = 0;
        assert_int_equal(pthread_create(&th[i], NULL, th_run, &args[i]), 0);
    }
    for (i = 0; i < NTHR; ++i) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
}

/* Threads racing on one limiter: exactly one message per interval gets
 * through, and no held-back message is lost from the count. */
static void test_threads(void **state)
{
    hgs3_ratelimit rl = HGS3_RATELIMIT_INIT(IVL);
    th_arg args[NTHR];
    apr_uint32_t n = 0;
    int i, allowed = 0;
    (void)state;

    run_threads(&rl, T0, args);
    for (i = 0; i < NTHR; ++i) {
        allowed += args[i].allowed;
        assert_int_equal(args[i].reported, 0);
    }
    assert_int_equal(allowed, 1);
    assert_true(hgs3_ratelimit_allow(&rl, T0 + IVL, &n));
    assert_int_equal(n, NTHR * NCALLS - 1);

    /* and once more, one interval later, with the count carried */
    run_threads(&rl, T0 + 2 * IVL, args);
    for (i = 0, allowed = 0; i < NTHR; ++i) {
        allowed += args[i].allowed;
    }
    assert_int_equal(allowed, 1);
    assert_true(hgs3_ratelimit_allow(&rl, T0 + 3 * IVL, &n));
    assert_int_equal(n, NTHR * NCALLS - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interval),
        cmocka_unit_test(test_kinds_apart),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
