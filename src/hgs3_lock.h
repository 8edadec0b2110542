/* hgs3_lock.h: "one upload per key", across threads and child processes,
 * and the removal of what killed processes leave in the spool directory.
 *
 * Like mod_cache's CacheLock, a lock is a file in a directory every child
 * shares (the spool directory), "hgs3lock.<key>". Whoever holds it captures
 * and uploads; concurrent misses for the same key find it held and only
 * serve. Holding means an exclusive flock(2) on an open descriptor of the
 * file: the kernel ties it to the open file description, so a second try
 * from another thread of the same process conflicts just as one from another
 * process does, and it goes away with its owner however the owner ends
 * (even SIGKILL). So a lock is never taken over while its owner lives, for
 * however long its upload runs, and a dead owner's lock is free at once: no
 * age limit, no pid reuse to guard against. The file records the owner's pid
 * for the curious; nothing relies on it.
 *
 * A lock file is removed only by whoever holds its flock, after checking
 * that the path still names the locked file (same inode), so a release or a
 * sweep never removes someone else's lock. Spool files ("hgs3spool.*") are
 * flocked by their spool the same way (hgs3_spool.c), so hgs3_lock_sweep
 * can tell a dead capture's leftovers from a live one's. */
#ifndef HGS3_LOCK_H
#define HGS3_LOCK_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct hgs3_lock hgs3_lock;

/* Try to take the lock `name` (a key: [0-9a-f]+) in dir. APR_SUCCESS: held,
 * released by hgs3_lock_release(). APR_EEXIST: someone else holds it. The lock
 * is allocated with malloc, not from p, so it can outlive the request that
 * took it (the uploader releases it); p is only scratch. */
apr_status_t hgs3_lock_try(hgs3_lock **plock, apr_pool_t *p, const char *dir, const char *name);

/* The lock file carries the collapse record of its key (hgs3_collapse.h):
 * map it and start a new epoch on first call; NULL when that fails. It is
 * unmapped, and marked failed unless complete, by hgs3_lock_release. */
struct hgs3_collapse_rec *hgs3_lock_collapse(hgs3_lock *lock);

/* Remove the lock file (if it is still ours) and free the lock: the flock
 * goes with the descriptor. NULL is fine. */
void hgs3_lock_release(hgs3_lock *lock);

/* Take an exclusive flock on an open descriptor, without waiting:
 * APR_SUCCESS, APR_EEXIST when another open file description holds one, or
 * the error. For the spool's temp file. */
apr_status_t hgs3_lock_fd(int fd);

/* Remove lock and spool files of dir whose owner is gone (nobody holds
 * their flock), looking at no more than max entries (0: all) and leaving
 * files changed in the last `grace` alone (a spool file is created before
 * it is locked). *removed (optional) counts the files removed. */
apr_status_t hgs3_lock_sweep(apr_pool_t *p, const char *dir, int max, apr_interval_time_t grace,
                             int *removed);

#endif
