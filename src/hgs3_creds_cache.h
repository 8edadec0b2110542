/* hgs3_creds_cache.h: credentials from files and the environment, read
 * once and kept.
 *
 * A credentials file is re-read when it changes (mtime, size or inode), not
 * on every call; after a failed load (missing, unreadable or unparsable) it
 * is read again on every call, whatever its stat says: a file moved away
 * and back unchanged keeps its mtime, size and inode, and must still be
 * picked up. The environment is read once. The cache is shared by a
 * process's threads (a mutex); results are copied into the caller's pool
 * under it, so a reload never frees strings a caller is still using. */
#ifndef HGS3_CREDS_CACHE_H
#define HGS3_CREDS_CACHE_H

#include <apr_pools.h>
#include "hgs3_creds.h"

typedef struct hgs3_creds_cache hgs3_creds_cache;

/* A cache living in p (which must not be used by other threads meanwhile:
 * the cache allocates from it under its mutex). */
apr_status_t hgs3_creds_cache_create(hgs3_creds_cache **pcc, apr_pool_t *p);

/* The credentials of file and profile (NULL: "default"), or with file NULL
 * those of the environment, copied into p. The errors are those of
 * hgs3_creds_load_file(), hgs3_creds_from_env() and apr_stat(); on failure
 * *out is zeroed. */
apr_status_t hgs3_creds_cache_get(hgs3_creds_cache *cc, hgs3_creds *out, apr_pool_t *p,
                                  const char *file, const char *profile);

#endif
