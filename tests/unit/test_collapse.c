/* test_collapse.c: the record of a collapsed miss in the lock file: the
 * head and the published length reach a follower, in another thread (with
 * the spool's writer thread publishing) and in another process; a leader
 * that releases, dies or starts over is seen as gone at once; no progress
 * is a timeout; Set-Cookie is never shared. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_thread_proc.h>

#include "hgs3_collapse.h"
#include "hgs3_lock.h"
#include "hgs3_spool.h"
#include "hgs3_test_util.h"

#define KEY "00aa11bb"
#define SEC (APR_USEC_PER_SEC)

typedef hgs3_test_dir fixture;

static void test_no_record_no_follow(void **state)
{
    fixture *fx = *state;
    hgs3_follow *f = NULL;
    hgs3_lock *lock = NULL;

    assert_int_not_equal(hgs3_collapse_open(&f, fx->p, fx->dir, KEY), APR_SUCCESS);
    /* a lock without a record (a leader with collapsing off) */
    assert_int_equal(hgs3_lock_try(&lock, fx->p, fx->dir, KEY), APR_SUCCESS);
    assert_int_equal(hgs3_collapse_open(&f, fx->p, fx->dir, KEY), APR_ENOENT);
    assert_null(f);
    hgs3_lock_release(lock);
}

static void test_head_and_progress(void **state)
{
    fixture *fx = *state;
    hgs3_lock *lock = NULL;
    hgs3_collapse_rec *rec;
    hgs3_follow *f = NULL;
    hgs3_collapse_head head;
    hgs3_collapse_view v;
    apr_table_t *h = apr_table_make(fx->p, 4);

    apr_table_set(h, "Set-Cookie", "session=secret");
    apr_table_set(h, "X-Extra", "yes");
    apr_table_set(h, "Content-Length", "10");
    assert_int_equal(hgs3_lock_try(&lock, fx->p, fx->dir, KEY), APR_SUCCESS);
    assert_non_null(rec = hgs3_lock_collapse(lock));
    assert_int_equal(hgs3_collapse_open(&f, fx->p, fx->dir, KEY), APR_SUCCESS);
    /* STARTING: no head yet, the leader lives: a timeout */
    assert_int_equal(hgs3_collapse_wait_head(f, fx->p, 20000, &head), APR_TIMEUP);
    assert_int_equal(
        hgs3_collapse_set_head(rec, 200, "/x/hgs3spool.1", "application/mercurial-0.2", h),
        APR_SUCCESS);
    *hgs3_collapse_published(rec) = 5;
    assert_int_equal(hgs3_collapse_wait_head(f, fx->p, SEC, &head), APR_SUCCESS);
    assert_int_equal(hgs3_collapse_followers(rec), 1);
    assert_int_equal(head.status, 200);
    assert_string_equal(head.path, "/x/hgs3spool.1");
    assert_string_equal(head.content_type, "application/mercurial-0.2");
    assert_string_equal(apr_table_get(head.headers, "X-Extra"), "yes");
    assert_null(apr_table_get(head.headers, "Set-Cookie"));
    assert_null(apr_table_get(head.headers, "Content-Length"));
    assert_int_equal(hgs3_collapse_wait(f, 0, SEC, &v), APR_SUCCESS);
    assert_int_equal(v.published, 5);
    /* nothing new: a timeout, as the leader lives */
    assert_int_equal(hgs3_collapse_wait(f, 5, 30000, &v), APR_TIMEUP);
    hgs3_collapse_done(rec, 9);
    assert_int_equal(hgs3_collapse_wait(f, 5, 30000, &v), APR_TIMEUP); /* 9 not yet written */
    *hgs3_collapse_published(rec) = 9;
    assert_int_equal(hgs3_collapse_wait(f, 5, SEC, &v), APR_SUCCESS);
    assert_int_equal(v.state, HGS3_COLLAPSE_DONE);
    assert_int_equal(v.total, 9);
    /* complete, then released (the upload ended): still complete */
    hgs3_lock_release(lock);
    assert_int_equal(hgs3_collapse_wait(f, 9, SEC, &v), APR_SUCCESS);
    assert_int_equal(v.state, HGS3_COLLAPSE_DONE);
}

static void test_release_unfinished_fails(void **state)
{
    fixture *fx = *state;
    hgs3_lock *lock = NULL, *again = NULL;
    hgs3_follow *f = NULL;
    hgs3_collapse_head head;
    hgs3_collapse_view v;
    apr_time_t t0;

    assert_int_equal(hgs3_lock_try(&lock, fx->p, fx->dir, KEY), APR_SUCCESS);
    assert_int_equal(hgs3_collapse_set_head(hgs3_lock_collapse(lock), 200, "/p", "ct", NULL),
                     APR_SUCCESS);
    *hgs3_collapse_published(hgs3_lock_collapse(lock)) = 1;
    assert_int_equal(hgs3_collapse_open(&f, fx->p, fx->dir, KEY), APR_SUCCESS);
    assert_int_equal(hgs3_collapse_wait_head(f, fx->p, SEC, &head), APR_SUCCESS);
    hgs3_lock_release(lock);
    t0 = apr_time_now();
    assert_int_equal(hgs3_collapse_wait(f, 1, 10 * SEC, &v), APR_EGENERAL);
    assert_true(apr_time_now() - t0 < SEC);

    /* a new leader on a new file; and one on the same file starts a new epoch */
    assert_int_equal(hgs3_lock_try(&again, fx->p, fx->dir, KEY), APR_SUCCESS);
    assert_non_null(hgs3_lock_collapse(again));
    assert_int_equal(hgs3_collapse_open(&f, fx->p, fx->dir, KEY), APR_SUCCESS);
    hgs3_lock_collapse(again)->epoch++; /* as a leader re-using the file would */
    assert_int_equal(hgs3_collapse_wait(f, 0, 10 * SEC, &v), APR_EGENERAL);
    hgs3_lock_release(again);
}

/* In the leader child (hgs3_test_child_start): take the lock, publish a
 * head and 100 bytes. */
static int lead_100_bytes(void *baton)
{
    fixture *fx = baton;
    hgs3_lock *lock = NULL;
    hgs3_collapse_rec *rec;
    apr_pool_t *p;

    apr_pool_create(&p, NULL);
    if (hgs3_lock_try(&lock, p, fx->dir, KEY) != APR_SUCCESS || !(rec = hgs3_lock_collapse(lock)) ||
        hgs3_collapse_set_head(rec, 200, "/p", "ct", NULL) != APR_SUCCESS) {
        return 2;
    }
    *hgs3_collapse_published(rec) = 100;
    return 0;
}

/* A forked leader publishes a head and some bytes, then dies without
 * releasing anything: the follower sees it gone at once, not after a
 * timeout. */
static void test_dead_leader_in_other_process(void **state)
{
    fixture *fx = *state;
    hgs3_follow *f = NULL;
    hgs3_collapse_head head;
    hgs3_collapse_view v;
    hgs3_test_child leader;
    apr_time_t t0;

    hgs3_test_child_start(&leader, lead_100_bytes, fx, 0);
    assert_int_equal(hgs3_collapse_open(&f, fx->p, fx->dir, KEY), APR_SUCCESS);
    assert_int_equal(hgs3_collapse_wait_head(f, fx->p, SEC, &head), APR_SUCCESS);
    assert_int_equal(hgs3_collapse_wait(f, 0, SEC, &v), APR_SUCCESS);
    assert_int_equal(v.published, 100);
    /* alive: no progress is a timeout */
    assert_int_equal(hgs3_collapse_wait(f, 100, 50000, &v), APR_TIMEUP);
    hgs3_test_child_reap(&leader); /* dies holding the lock */
    t0 = apr_time_now();
    assert_int_equal(hgs3_collapse_wait(f, 100, 10 * SEC, &v), APR_EGENERAL);
    assert_true(apr_time_now() - t0 < SEC);
}

/* The leader's spool publishes through its writer thread while a follower
 * thread reads the growing file: it reads exactly the body. */
typedef struct {
    fixture *fx;
    hgs3_lock *lock;
    apr_size_t len;
} leader_args;

static void *APR_THREAD_FUNC leader_main(apr_thread_t *t, void *data)
{
    leader_args *a = data;
    hgs3_collapse_rec *rec = hgs3_lock_collapse(a->lock);
    hgs3_spool *spool = NULL;
    apr_pool_t *p;
    char buf[1000];
    apr_size_t i, j;

    apr_pool_create(&p, NULL);
    hgs3_spool_create(&spool, NULL, 0, a->fx->dir, 0);
    hgs3_spool_write_behind(spool, 256 * 1024);
    hgs3_spool_publish(spool, hgs3_collapse_published(rec));
    for (i = 0; i < a->len; i += sizeof(buf)) {
        for (j = 0; j < sizeof(buf); ++j) {
            buf[j] = (char)((i + j) % 251);
        }
        hgs3_spool_write(spool, buf, sizeof(buf));
        if (i == 0) {
            hgs3_collapse_set_head(rec, 200, hgs3_spool_path(spool), "ct", NULL);
        }
        if (i % 50000 == 0) {
            hgs3_spool_push(spool);
            apr_sleep(1000);
        }
    }
    hgs3_spool_push(spool);
    hgs3_collapse_done(rec, a->len);
    hgs3_spool_finish(spool);
    hgs3_spool_destroy(spool); /* removes the file: the follower has it open */
    hgs3_lock_release(a->lock);
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_follower_thread_reads_growing_file(void **state)
{
    fixture *fx = *state;
    leader_args a = {fx, NULL, 2000000};
    apr_thread_t *t = NULL;
    hgs3_follow *f = NULL;
    hgs3_collapse_head head;
    hgs3_collapse_view v;
    apr_status_t trv;
    apr_uint64_t have = 0;
    FILE *file = NULL;
    int waits = 0;

    assert_int_equal(hgs3_lock_try(&a.lock, fx->p, fx->dir, KEY), APR_SUCCESS);
    assert_non_null(hgs3_lock_collapse(a.lock));
    assert_int_equal(hgs3_collapse_open(&f, fx->p, fx->dir, KEY), APR_SUCCESS);
    assert_int_equal(apr_thread_create(&t, NULL, leader_main, &a, fx->p), APR_SUCCESS);
    assert_int_equal(hgs3_collapse_wait_head(f, fx->p, 5 * SEC, &head), APR_SUCCESS);
    assert_non_null(file = fopen(head.path, "rb"));
    for (;;) {
        assert_int_equal(hgs3_collapse_wait(f, have, 5 * SEC, &v), APR_SUCCESS);
        ++waits;
        while (have < v.published) {
            int c = fgetc(file);
            assert_int_equal(c, (int)(unsigned char)(char)(have % 251));
            ++have;
        }
        if (v.state == HGS3_COLLAPSE_DONE && have >= v.total) {
            break;
        }
    }
    assert_int_equal(have, a.len);
    assert_true(waits > 1); /* it was read while it grew */
    fclose(file);
    apr_thread_join(&trv, t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        HGS3_TEST_IN_DIR(test_no_record_no_follow),
        HGS3_TEST_IN_DIR(test_head_and_progress),
        HGS3_TEST_IN_DIR(test_release_unfinished_fails),
        HGS3_TEST_IN_DIR(test_dead_leader_in_other_process),
        HGS3_TEST_IN_DIR(test_follower_thread_reads_growing_file),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
