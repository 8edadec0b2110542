/* hgs3_presign_cache.h: presigned URLs, reused within their second.
 *
 * X-Amz-Date has a one-second resolution and the signer is a pure function
 * of its inputs, so every redirect to the same object within one second
 * would be signed into the same URL. The cache keeps the last URL per
 * object slot (a small table, under a mutex, shared by a process's
 * threads). An entry is used only when every input of the signature is
 * equal: the object, the endpoint, region, addressing, bucket, the
 * credentials (the secret compared in constant time), the expiry and the
 * second; the method ("GET") and the absence of a response-content-type are
 * fixed. So one scope's credentials or endpoint are never used for
 * another's, and rotated credentials take effect at once. Entries hold
 * credentials and URLs (credentials too): wiped when replaced or when the
 * cache's pool goes, never logged. */
#ifndef HGS3_PRESIGN_CACHE_H
#define HGS3_PRESIGN_CACHE_H

#include <apr_pools.h>
#include <apr_time.h>
#include "hgs3_s3.h"

typedef struct hgs3_presign_cache hgs3_presign_cache;

/* The default number of slots. */
#define HGS3_PRESIGN_CACHE_SLOTS 16

/* A cache of nslots (at least 1) slots, wiped and freed with p. */
apr_status_t hgs3_presign_cache_create(hgs3_presign_cache **pc, apr_pool_t *p, int nslots);

/* The URL signed for exactly these inputs in this second (copied into p),
 * or NULL. */
const char *hgs3_presign_cache_get(hgs3_presign_cache *pc, apr_pool_t *p,
                                   const hgs3_s3_config *conf, const char *object, int expiry,
                                   apr_time_t second);

/* Remember url for these inputs, replacing the object's slot. Out of
 * memory, nothing is remembered. */
void hgs3_presign_cache_put(hgs3_presign_cache *pc, const hgs3_s3_config *conf, const char *object,
                            int expiry, apr_time_t second, const char *url);

/* A presigned GET of object at now, valid for expiry seconds: the cached
 * URL of this second, or a new one (then remembered). pc may be NULL (no
 * cache). */
apr_status_t hgs3_presign_cache_url(const char **url, hgs3_presign_cache *pc, apr_pool_t *p,
                                    const hgs3_s3_config *conf, const char *object, int expiry,
                                    apr_time_t now);

#endif
