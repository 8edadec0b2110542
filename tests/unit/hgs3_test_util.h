/* hgs3_test_util.h: fixtures shared by the unit tests that work on files:
 * a fresh temporary directory with a pool per test (cmocka setup and
 * teardown), and writing files and moving their mtime to make a change
 * visible, or invisible, to a stat. Include it after cmocka.h's
 * prerequisites. */
#ifndef HGS3_TEST_UTIL_H
#define HGS3_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/wait.h>
#include <unistd.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_pools.h>
#include <apr_strings.h>

/* One test's directory, /tmp/hgs3-unit-XXXXXX, and a pool that lives as
 * long. */
typedef struct hgs3_test_dir {
    apr_pool_t *p;
    char dir[64];
} hgs3_test_dir;

/* cmocka setup: *state is a new hgs3_test_dir. */
static inline int hgs3_test_dir_setup(void **state)
{
    hgs3_test_dir *d = calloc(1, sizeof(*d));

    if (!d) {
        return -1;
    }
    strcpy(d->dir, "/tmp/hgs3-unit-XXXXXX");
    if (!mkdtemp(d->dir)) {
        free(d);
        return -1;
    }
    apr_pool_create(&d->p, NULL);
    *state = d;
    return 0;
}

/* cmocka teardown: the directory, whatever it holds, and the pool go. */
static inline int hgs3_test_dir_teardown(void **state)
{
    hgs3_test_dir *d = *state;
    char cmd[128];
    int rc = 0;

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", d->dir);
        rc = -1;
    }
    apr_pool_destroy(d->p);
    free(d);
    return rc;
}

/* A cmocka test run in a fresh directory: *state is its hgs3_test_dir. */
#define HGS3_TEST_IN_DIR(f)                                                                        \
    cmocka_unit_test_setup_teardown(f, hgs3_test_dir_setup, hgs3_test_dir_teardown)

/* rel's path in the directory (from its pool). */
static inline const char *hgs3_test_path(const hgs3_test_dir *d, const char *rel)
{
    return apr_pstrcat(d->p, d->dir, "/", rel, NULL);
}

/* Create or truncate path and write text into it. */
static inline void hgs3_test_write_file(const char *path, const char *text, apr_pool_t *p)
{
    apr_file_t *fh;

    assert_int_equal(apr_file_open(&fh, path,
                                   APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE,
                                   APR_FPROT_OS_DEFAULT, p),
                     APR_SUCCESS);
    assert_int_equal(apr_file_write_full(fh, text, strlen(text), NULL), APR_SUCCESS);
    assert_int_equal(apr_file_close(fh), APR_SUCCESS);
}

/* The same for rel in the directory; its path. */
static inline const char *hgs3_test_write(const hgs3_test_dir *d, const char *rel, const char *text)
{
    const char *path = hgs3_test_path(d, rel);
    hgs3_test_write_file(path, text, d->p);
    return path;
}

/* Move path's mtime by `by` (a change a stat sees without any write). */
static inline void hgs3_test_mtime_bump(const char *path, apr_interval_time_t by, apr_pool_t *p)
{
    apr_finfo_t fi;

    assert_int_equal(apr_stat(&fi, path, APR_FINFO_MTIME, p), APR_SUCCESS);
    assert_int_equal(apr_file_mtime_set(path, fi.mtime + by, p), APR_SUCCESS);
}

/* Replace path's content in place and put its mtime back: text of the old
 * content's length leaves the stat (mtime, size, inode) unchanged. */
static inline void hgs3_test_rewrite_same_stat(const char *path, const char *text, apr_pool_t *p)
{
    apr_finfo_t before, after;

    assert_int_equal(apr_stat(&before, path, APR_FINFO_MTIME | APR_FINFO_INODE, p), APR_SUCCESS);
    hgs3_test_write_file(path, text, p);
    assert_int_equal(apr_file_mtime_set(path, before.mtime, p), APR_SUCCESS);
    assert_int_equal(apr_stat(&after, path, APR_FINFO_MTIME | APR_FINFO_INODE, p), APR_SUCCESS);
    assert_true(after.mtime == before.mtime && after.inode == before.inode);
}

/* ---- a child process holding something (a lock) --------------------------
 *
 * The child runs fn (0: go on; else its exit status), tells the parent it
 * is ready, and then either exits at once (die: as if killed, releasing
 * nothing) or waits until the parent calls hgs3_test_child_release(). The
 * parent returns from hgs3_test_child_start() once the child is ready. */
typedef struct hgs3_test_child {
    pid_t pid;
    int hold; /* closing it lets the child exit */
} hgs3_test_child;

static inline void hgs3_test_child_start(hgs3_test_child *c, int (*fn)(void *), void *baton,
                                         int die)
{
    int ready[2], hold[2];
    char x;

    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        int rc;
        close(ready[0]);
        close(hold[1]);
        if ((rc = fn(baton)) != 0) {
            _exit(rc);
        }
        if (write(ready[1], "x", 1) != 1 || (!die && read(hold[0], &x, 1) < 0)) {
            _exit(99);
        }
        _exit(0); /* nothing released, as far as the lock knows */
    }
    close(ready[1]);
    close(hold[0]);
    assert_int_equal(read(ready[0], &x, 1), 1);
    close(ready[0]);
    c->hold = hold[1];
}

/* Let a waiting child exit. */
static inline void hgs3_test_child_release(hgs3_test_child *c)
{
    if (c->hold >= 0) {
        close(c->hold);
        c->hold = -1;
    }
}

/* Wait for the child (released first), which must have exited with 0. */
static inline void hgs3_test_child_reap(hgs3_test_child *c)
{
    int status = 0;

    hgs3_test_child_release(c);
    assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

#endif
