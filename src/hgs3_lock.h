/* hgs3_lock.h: "one upload per key", across threads and child processes.
 *
 * Like mod_cache's CacheLock: a lock is a file created with O_EXCL in a
 * directory every child shares (the spool directory). Whoever creates it
 * captures and uploads; concurrent misses for the same key find it and only
 * serve. A lock older than max_age is stale (its owner died or hung) and is
 * taken over, so a crash never blocks a key for good. */
#ifndef HGS3_LOCK_H
#define HGS3_LOCK_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct hgs3_lock hgs3_lock;

/* Try to take the lock `name` (a key: [0-9a-f]+) in dir. APR_SUCCESS: held,
 * released by hgs3_lock_release(). APR_EEXIST: someone else holds it. The lock
 * is allocated with malloc, not from p, so it can outlive the request that
 * took it (the uploader releases it); p is only scratch. */
apr_status_t hgs3_lock_try(hgs3_lock **plock, apr_pool_t *p, const char *dir, const char *name,
                           apr_interval_time_t max_age);

/* Remove the lock file and free the lock. NULL is fine. */
void hgs3_lock_release(hgs3_lock *lock);

#endif
