/* hgs3_lock.c: lock files held by flock(2), and the sweep of dead owners'
 * lock and spool files (see hgs3_lock.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_file_info.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_lock.h"
#include "hgs3_collapse.h"

#define LOCK_PREFIX  "hgs3lock."
#define SPOOL_PREFIX "hgs3spool."

struct hgs3_lock {
    char *path;
    int fd;                 /* holds the flock */
    hgs3_collapse_rec *rec; /* hgs3_lock_collapse: the mapped record */
};

/* Does path still name the file open on fd? */
static int same_file(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

apr_status_t hgs3_lock_fd(int fd)
{
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        return APR_SUCCESS;
    }
    return errno == EWOULDBLOCK ? APR_EEXIST : APR_FROM_OS_ERROR(errno);
}

/* Open path (creating it when asked) and take its flock. The previous
 * holder may remove the file between our open and our flock: then the
 * flock is on a file nobody can find, and we open the path again. */
static apr_status_t open_locked(int *pfd, const char *path, int create)
{
    apr_status_t rv = APR_EEXIST;
    int tries, fd = -1;

    *pfd = -1;
    for (tries = 0; tries < 5; ++tries) {
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
        if (fd < 0) {
            rv = APR_FROM_OS_ERROR(errno);
            goto leave;
        }
        if ((rv = hgs3_lock_fd(fd)) != APR_SUCCESS) {
            goto leave;
        }
        if (same_file(fd, path)) {
            *pfd = fd;
            fd = -1;
            goto leave;
        }
        close(fd);
        fd = -1;
        rv = create ? APR_EEXIST : APR_ENOENT;
        if (!create) {
            goto leave;
        }
    }
leave:
    if (fd >= 0) {
        close(fd);
    }
    return rv;
}

/* Record the owner's pid (for people looking at the directory), in place:
 * the file never shrinks, as followers may map its collapse record. */
static void write_owner(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%-15ld\n", (long)getpid());
    if (n > 0 && pwrite(fd, buf, (size_t)n, 0) < 0) {
        /* informational only */
    }
}

apr_status_t hgs3_lock_try(hgs3_lock **plock, apr_pool_t *p, const char *dir, const char *name)
{
    hgs3_lock *lock = NULL;
    const char *s;
    char *path = NULL;
    apr_status_t rv;
    int fd = -1;

    *plock = NULL;
    for (s = name; *s; ++s) {
        if (!strchr("0123456789abcdef", *s)) {
            rv = HGS3_EMALFORMED;
            goto leave;
        }
    }
    rv = apr_filepath_merge(&path, dir, apr_pstrcat(p, LOCK_PREFIX, name, NULL),
                            APR_FILEPATH_NOTRELATIVE, p);
    if (rv != APR_SUCCESS || (rv = open_locked(&fd, path, 1)) != APR_SUCCESS) {
        goto leave;
    }
    write_owner(fd);
    lock = calloc(1, sizeof(*lock));
    if (!lock || !(lock->path = strdup(path))) {
        unlink(path);
        close(fd);
        free(lock);
        rv = APR_ENOMEM;
        goto leave;
    }
    lock->fd = fd;
    *plock = lock;
leave:
    return rv;
}

hgs3_collapse_rec *hgs3_lock_collapse(hgs3_lock *lock)
{
    if (lock && !lock->rec && hgs3_collapse_lead(&lock->rec, lock->fd) != APR_SUCCESS) {
        lock->rec = NULL;
    }
    return lock ? lock->rec : NULL;
}

void hgs3_lock_release(hgs3_lock *lock)
{
    if (!lock) {
        return;
    }
    /* followers of an unfinished body must not wait for it */
    hgs3_collapse_fail(lock->rec);
    hgs3_collapse_unmap(lock->rec);
    /* Still ours (nobody removed and re-created it)? Remove it while the
     * flock is held, so nobody can be between taking and checking it. */
    if (same_file(lock->fd, lock->path)) {
        unlink(lock->path);
    }
    close(lock->fd);
    free(lock->path);
    free(lock);
}

/* One directory entry of the sweep: 1 when it was removed. */
static int sweep_one(apr_pool_t *p, const char *dir, const apr_finfo_t *fi, apr_time_t now,
                     apr_interval_time_t grace)
{
    char *path = NULL;
    int fd = -1;

    if (fi->filetype != APR_REG || !fi->name ||
        (strncmp(fi->name, LOCK_PREFIX, strlen(LOCK_PREFIX)) &&
         strncmp(fi->name, SPOOL_PREFIX, strlen(SPOOL_PREFIX)))) {
        return 0;
    }
    if (!(fi->valid & APR_FINFO_MTIME) || now - fi->mtime < grace) {
        return 0;
    }
    if (apr_filepath_merge(&path, dir, fi->name, APR_FILEPATH_NOTRELATIVE, p) != APR_SUCCESS ||
        open_locked(&fd, path, 0) != APR_SUCCESS) {
        return 0; /* held by a live owner, or gone already */
    }
    unlink(path);
    close(fd);
    return 1;
}

apr_status_t hgs3_lock_sweep(apr_pool_t *p, const char *dir, int max, apr_interval_time_t grace,
                             int *removed)
{
    apr_pool_t *scratch = NULL;
    apr_dir_t *d = NULL;
    apr_finfo_t fi;
    apr_time_t now = apr_time_now();
    apr_status_t rv;
    int seen = 0, n = 0;

    if ((rv = apr_pool_create(&scratch, p)) != APR_SUCCESS ||
        (rv = apr_dir_open(&d, dir, scratch)) != APR_SUCCESS) {
        goto leave;
    }
    while (!max || seen < max) {
        rv = apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE | APR_FINFO_MTIME, d);
        if (APR_STATUS_IS_ENOENT(rv)) {
            rv = APR_SUCCESS; /* the end */
            break;
        }
        if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
            break;
        }
        ++seen;
        n += sweep_one(scratch, dir, &fi, now, grace);
    }
    apr_dir_close(d);
leave:
    if (scratch) {
        apr_pool_destroy(scratch);
    }
    if (removed) {
        *removed = n;
    }
    return rv;
}
