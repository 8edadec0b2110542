/* test_upload.c: the bounded uploader refuses instead of waiting, runs every
 * accepted job exactly once, and drops (never leaks) queued jobs at
 * shutdown. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_atomic.h>
#include <apr_time.h>

#include "hgs3_upload.h"

static volatile apr_uint32_t gate; /* jobs block while 0 */
static volatile apr_uint32_t ran;
static volatile apr_uint32_t dropped;

static void run_job(void *job)
{
    (void)job;
    while (!apr_atomic_read32(&gate)) {
        apr_sleep(1000);
    }
    apr_atomic_inc32(&ran);
}

static void drop_job(void *job)
{
    (void)job;
    apr_atomic_inc32(&dropped);
}

static void wait_running(hgs3_uploader *u, apr_uint32_t n)
{
    hgs3_upload_stats st;
    int i;
    for (i = 0; i < 5000; ++i) {
        hgs3_uploader_stats(u, &st);
        if (st.running == n) {
            return;
        }
        apr_sleep(1000);
    }
    fail_msg("running never reached %u", n);
}

static void test_bounded_queue(void **state)
{
    apr_pool_t *p;
    hgs3_uploader *u;
    hgs3_upload_stats st;
    int i;
    (void)state;

    apr_atomic_set32(&gate, 0);
    apr_atomic_set32(&ran, 0);
    apr_atomic_set32(&dropped, 0);
    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_uploader_create(&u, p, 1, 2), APR_SUCCESS);
    /* one job occupies the single worker... */
    assert_int_equal(hgs3_uploader_submit(u, run_job, drop_job, NULL), APR_SUCCESS);
    wait_running(u, 1);
    /* ...two more wait in the queue, the fourth is refused at once */
    assert_int_equal(hgs3_uploader_submit(u, run_job, drop_job, NULL), APR_SUCCESS);
    assert_int_equal(hgs3_uploader_submit(u, run_job, drop_job, NULL), APR_SUCCESS);
    assert_int_equal(hgs3_uploader_submit(u, run_job, drop_job, NULL), APR_EAGAIN);
    hgs3_uploader_stats(u, &st);
    assert_int_equal(st.queued, 2);
    assert_int_equal(st.refused, 1);
    apr_atomic_set32(&gate, 1);
    for (i = 0; i < 5000 && apr_atomic_read32(&ran) < 3; ++i) {
        apr_sleep(1000);
    }
    assert_int_equal(apr_atomic_read32(&ran), 3);
    apr_pool_destroy(p);
    assert_int_equal(apr_atomic_read32(&dropped), 0);
}

static void test_shutdown_drops_queued(void **state)
{
    apr_pool_t *p;
    hgs3_uploader *u;
    (void)state;

    apr_atomic_set32(&gate, 0);
    apr_atomic_set32(&ran, 0);
    apr_atomic_set32(&dropped, 0);
    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_uploader_create(&u, p, 1, 8), APR_SUCCESS);
    assert_int_equal(hgs3_uploader_submit(u, run_job, drop_job, NULL), APR_SUCCESS);
    wait_running(u, 1);
    assert_int_equal(hgs3_uploader_submit(u, run_job, drop_job, NULL), APR_SUCCESS);
    assert_int_equal(hgs3_uploader_submit(u, run_job, drop_job, NULL), APR_SUCCESS);
    /* let the running job finish while shutdown waits for it */
    apr_atomic_set32(&gate, 1);
    apr_pool_destroy(p); /* shuts the uploader down */
    /* every job ended exactly once: ran or dropped */
    assert_int_equal(apr_atomic_read32(&ran) + apr_atomic_read32(&dropped), 3);
    assert_true(apr_atomic_read32(&ran) >= 1);
}

static void test_submit_after_shutdown(void **state)
{
    apr_pool_t *p;
    hgs3_uploader *u;
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_uploader_create(&u, p, 2, 4), APR_SUCCESS);
    hgs3_uploader_shutdown(u);
    hgs3_uploader_shutdown(u); /* idempotent */
    assert_int_equal(hgs3_uploader_submit(u, run_job, drop_job, NULL), APR_EOF);
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded_queue),
        cmocka_unit_test(test_shutdown_drops_queued),
        cmocka_unit_test(test_submit_after_shutdown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
