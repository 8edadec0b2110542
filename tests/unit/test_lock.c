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

#define KEY "0123abcd"

typedef struct {
    apr_pool_t *p;
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    apr_pool_create(&fx->p, NULL);
    strcpy(fx->dir, "/tmp/hgs3locktest.XXXXXX");
    if (!mkdtemp(fx->dir)) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0) {
        return -1;
    }
    apr_pool_destroy(fx->p);
    free(fx);
    return 0;
}

static int exists(const fixture *fx, const char *name)
{
    struct stat st;
    return stat(apr_pstrcat(fx->p, fx->dir, "/", name, NULL), &st) == 0;
}

/* A child process that takes the lock (and, with spool, flocks a spool
 * file), tells the parent, and either exits at once without releasing
 * anything (dies) or waits until the parent closes the pipe. */
static pid_t owner_child(fixture *fx, int die, int *hold_fd)
{
    int ready[2], hold[2];
    pid_t pid;
    char c;

    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        hgs3_lock *lock = NULL;
        apr_pool_t *p;
        int fd;
        close(ready[0]);
        close(hold[1]);
        apr_pool_create(&p, NULL);
        if (hgs3_lock_try(&lock, p, fx->dir, KEY) != APR_SUCCESS) {
            _exit(2);
        }
        fd = open(apr_pstrcat(p, fx->dir, "/hgs3spool.abc123", NULL), O_RDWR | O_CREAT, 0600);
        if (fd < 0 || hgs3_lock_fd(fd) != APR_SUCCESS) {
            _exit(3);
        }
        if (write(ready[1], "x", 1) != 1) {
            _exit(4);
        }
        if (!die && read(hold[0], &c, 1) < 0) {
            _exit(5);
        }
        _exit(0); /* killed, as far as the lock knows: nothing released */
    }
    close(ready[1]);
    close(hold[0]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    *hold_fd = hold[1];
    return pid;
}

static void reap(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
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
    int hold;
    pid_t pid = owner_child(fx, 0, &hold);

    /* however old the file: its owner lives */
    assert_int_equal(system(apr_psprintf(fx->p, "touch -d '2 days ago' %s/hgs3lock." KEY, fx->dir)),
                     0);
    assert_int_equal(hgs3_lock_try(&lock, fx->p, fx->dir, KEY), APR_EEXIST);
    assert_int_equal(hgs3_lock_sweep(fx->p, fx->dir, 0, 0, NULL), APR_SUCCESS);
    assert_true(exists(fx, "hgs3lock." KEY));
    assert_true(exists(fx, "hgs3spool.abc123"));
    close(hold);
    reap(pid);
    /* the owner is gone: free at once */
    assert_int_equal(hgs3_lock_try(&lock, fx->p, fx->dir, KEY), APR_SUCCESS);
    hgs3_lock_release(lock);
}

static void test_dead_owner_taken_over(void **state)
{
    fixture *fx = *state;
    hgs3_lock *lock = NULL;
    int hold;
    pid_t pid = owner_child(fx, 1, &hold);

    reap(pid);
    close(hold);
    assert_true(exists(fx, "hgs3lock." KEY));
    assert_int_equal(hgs3_lock_try(&lock, fx->p, fx->dir, KEY), APR_SUCCESS);
    hgs3_lock_release(lock);
    assert_false(exists(fx, "hgs3lock." KEY));
}

static void test_release_removes_only_its_own(void **state)
{
    fixture *fx = *state;
    hgs3_lock *a = NULL, *b = NULL;
    const char *path = apr_pstrcat(fx->p, fx->dir, "/hgs3lock." KEY, NULL);

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
    int removed = -1, hold, fd;
    pid_t pid = owner_child(fx, 1, &hold);

    reap(pid);
    close(hold);
    assert_int_equal(hgs3_lock_try(&mine, fx->p, fx->dir, "ff"), APR_SUCCESS);
    fd = open(apr_pstrcat(fx->p, fx->dir, "/other.txt", NULL), O_RDWR | O_CREAT, 0600);
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
        cmocka_unit_test_setup_teardown(test_one_holder_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_owner_keeps_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_owner_taken_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_removes_only_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_dead_leftovers, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
