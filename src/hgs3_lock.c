/* hgs3_lock.c: O_EXCL lock files with a maximum age. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <apr_file_io.h>
#include <apr_file_info.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_lock.h"

struct hgs3_lock {
    char *path;
};

static apr_status_t create_excl(apr_pool_t *p, const char *path)
{
    apr_file_t *f = NULL;
    apr_status_t rv = apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL,
                                    APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv == APR_SUCCESS) {
        apr_file_close(f);
    }
    return rv;
}

apr_status_t hgs3_lock_try(hgs3_lock **plock, apr_pool_t *p, const char *dir, const char *name,
                           apr_interval_time_t max_age)
{
    hgs3_lock *lock = NULL;
    apr_finfo_t fi;
    const char *s;
    char *path = NULL;
    apr_status_t rv;

    *plock = NULL;
    for (s = name; *s; ++s) {
        if (!strchr("0123456789abcdef", *s)) {
            rv = HGS3_EMALFORMED;
            goto leave;
        }
    }
    rv = apr_filepath_merge(&path, dir, apr_pstrcat(p, "hgs3lock.", name, NULL),
                            APR_FILEPATH_NOTRELATIVE, p);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    rv = create_excl(p, path);
    if (APR_STATUS_IS_EEXIST(rv)) {
        /* Stale? Then take it over: remove and race again for O_EXCL. */
        if (apr_stat(&fi, path, APR_FINFO_MTIME, p) == APR_SUCCESS &&
            apr_time_now() - fi.mtime > max_age) {
            apr_file_remove(path, p);
            rv = create_excl(p, path);
        }
        if (APR_STATUS_IS_EEXIST(rv)) {
            rv = APR_EEXIST;
        }
    }
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    lock = calloc(1, sizeof(*lock));
    if (lock) {
        lock->path = strdup(path);
    }
    if (!lock || !lock->path) {
        apr_file_remove(path, p);
        free(lock);
        rv = APR_ENOMEM;
        goto leave;
    }
    *plock = lock;
leave:
    return rv;
}

void hgs3_lock_release(hgs3_lock *lock)
{
    if (!lock) {
        return;
    }
    /* unlink(2) directly: there may be no pool at hand in an upload thread */
    remove(lock->path);
    free(lock->path);
    free(lock);
}
