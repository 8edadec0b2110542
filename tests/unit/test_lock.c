/* test_lock.c: upload locks held by flock: one holder at a time, in one
 * process or across processes; a dead owner's lock is free at once and a
 * live one's never is; a release removes only its own file; the sweep
 * removes dead owners' lock and spool files and nothing else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_lock.h"
#include "hgs3_test_util.h"

#define KEY "0123abcd"

typedef hgs3_test_dir fixture;

static int exists(const fixture *fx, const char *name)
{
    struct stat st;
    return stat(hgs3_test_path(fx, name), &st) == 0;
}

/* In an owner child (hgs3_test_child_start): take the lock and flock a
 * spool file. */
static int take_lock_and_spool(void *baton)
{
    fixture *fx = baton;
    hgs3_lock *lock = NULL;
    apr_pool_t *p;
    int fd;

    apr_pool_create(&p, NULL);
    if (hgs3_lock_try(&lock, p, fx->dir, KEY) != APR_SUCCESS) {
        return 2;
    }
    fd = open(apr_pstrcat(p, fx->dir, "/hgs3spool.abc123", NULL), O_RDWR | O_CREAT, 0600);
    if (fd < 0 || hgs3_lock_fd(fd) != APR_SUCCESS) {
        return 3;
    }
    return 0;
}

static void test_one_holder_in_process(void **state)
{
    fixture *fx = *state;
    hgs3_lock *a = NULL, *b = NULL;

    assert_int_equal(hgs3_lock_try(&a, fx->p, fx->dir, KEY), APR_SUCCESS);
    assert_non_null(a);
    assert_true(exists(fx, "hgs3lock." KEY));
    /* another thread of the same process conflicts too */
    assert_int_equal(hgs3_lock_try(&b, fx->p, fx->dir, KEY), APR_EEXIST);
    assert_null(b);
    hgs3_lock_release(a);
    assert_false(exists(fx, "hgs3lock." KEY));
    assert_int_equal(hgs3_lock_try(&b, fx->p, fx->dir, KEY), APR_SUCCESS);
    hgs3_lock_release(b);
    hgs3_lock_release(NULL);
    assert_int_equal(hgs3_lock_try(&b, fx->p, fx->dir, "../x"), HGS3_EMALFORMED);
}

static void test_live_owner_keeps_it(void **state)
{
    fixture *fx = *state;
    hgs3_lock *lock = NULL;
    hgs3_test_child owner;

    hgs3_test_child_start(&owner, take_lock_and_spool, fx, 0);
    /* however old the file: its owner lives */
    hgs3_test_mtime_bump(hgs3_test_path(fx, "hgs3lock." KEY), -apr_time_from_sec(2 * 86400), fx->p);
    assert_int_equal(hgs3_lock_try(&lock, fx->p, fx->dir, KEY), APR_EEXIST);
    assert_int_equal(hgs3_lock_sweep(fx->p, fx->dir, 0, 0, NULL), APR_SUCCESS);
    assert_true(exists(fx, "hgs3lock." KEY));
    assert_true(exists(fx, "hgs3spool.abc123"));
    hgs3_test_child_reap(&owner);
    /* the owner is gone: free at once */
    assert_int_equal(hgs3_lock_try(&lock, fx->p, fx->dir, KEY), APR_SUCCESS);
    hgs3_lock_release(lock);
}

static void test_dead_owner_taken_over(void **state)
{
    fixture *fx = *state;
    hgs3_lock *lock = NULL;
    hgs3_test_child owner;

    hgs3_test_child_start(&owner, take_lock_and_spool, fx, 1);
    hgs3_test_child_reap(&owner);
    assert_true(exists(fx, "hgs3lock." KEY));
    assert_int_equal(hgs3_lock_try(&lock, fx->p, fx->dir, KEY), APR_SUCCESS);
    hgs3_lock_release(lock);
    assert_false(exists(fx, "hgs3lock." KEY));
}

static void test_release_removes_only_its_own(void **state)
{
    fixture *fx = *state;
    hgs3_lock *a = NULL, *b = NULL;
    const char *path = hgs3_test_path(fx, "hgs3lock." KEY);

    assert_int_equal(hgs3_lock_try(&a, fx->p, fx->dir, KEY), APR_SUCCESS);
    /* someone removed it behind our back and another owner took the key */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(hgs3_lock_try(&b, fx->p, fx->dir, KEY), APR_SUCCESS);
    hgs3_lock_release(a);
    assert_true(exists(fx, "hgs3lock." KEY)); /* b's is still there */
    hgs3_lock_release(b);
    assert_false(exists(fx, "hgs3lock." KEY));
}

static void test_sweep_dead_leftovers(void **state)
{
    fixture *fx = *state;
    hgs3_lock *mine = NULL;
    int removed = -1, fd;
    hgs3_test_child owner;

    hgs3_test_child_start(&owner, take_lock_and_spool, fx, 1);
    hgs3_test_child_reap(&owner);
    assert_int_equal(hgs3_lock_try(&mine, fx->p, fx->dir, "ff"), APR_SUCCESS);
    fd = open(hgs3_test_path(fx, "other.txt"), O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    /* within the grace period nothing goes */
    assert_int_equal(hgs3_lock_sweep(fx->p, fx->dir, 0, apr_time_from_sec(60), &removed),
                     APR_SUCCESS);
    assert_int_equal(removed, 0);
    assert_true(exists(fx, "hgs3spool.abc123"));
    assert_int_equal(hgs3_lock_sweep(fx->p, fx->dir, 0, 0, &removed), APR_SUCCESS);
    assert_int_equal(removed, 2);
    assert_false(exists(fx, "hgs3lock." KEY));
    assert_false(exists(fx, "hgs3spool.abc123"));
    assert_true(exists(fx, "hgs3lock.ff")); /* held */
    assert_true(exists(fx, "other.txt"));   /* not ours */
    hgs3_lock_release(mine);
    assert_int_equal(hgs3_lock_sweep(fx->p, "/nonexistent/hgs3", 0, 0, &removed) != APR_SUCCESS, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        HGS3_TEST_IN_DIR(test_one_holder_in_process),
        HGS3_TEST_IN_DIR(test_live_owner_keeps_it),
        HGS3_TEST_IN_DIR(test_dead_owner_taken_over),
        HGS3_TEST_IN_DIR(test_release_removes_only_its_own),
        HGS3_TEST_IN_DIR(test_sweep_dead_leftovers),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
