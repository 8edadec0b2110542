/* hgs3_client_cache.h: S3 clients kept per thread.
 *
 * A hgs3_s3_client is not thread-safe, and its value is its live
 * connection to the store. So each thread keeps its last
 * HGS3_CLIENT_CACHE_SLOTS clients (say, one for HEAD with the lookup
 * timeout, one for streaming), and its connections are reused across
 * requests instead of being set up for every lookup; over https that spares
 * a TLS handshake per lookup. A client is matched by a digest of its
 * configuration, trust (CA file and directory) included, and by its
 * credentials, so rotated credentials get a fresh client, and scopes that
 * trust different CAs never share a client or its verified connections. When all slots are
 * taken, the least recently used one is replaced. A thread's clients are
 * freed when the thread exits, the calling thread's when the cache's pool
 * goes. */
#ifndef HGS3_CLIENT_CACHE_H
#define HGS3_CLIENT_CACHE_H

#include <apr_pools.h>
#include "hgs3_s3.h"

typedef struct hgs3_client_cache hgs3_client_cache;

#define HGS3_CLIENT_CACHE_SLOTS 2

/* A cache whose thread-local key lives as long as p. */
apr_status_t hgs3_client_cache_create(hgs3_client_cache **pcc, apr_pool_t *p);

/* A client for conf on the calling thread, reused across calls. Valid
 * until the thread's next call or its exit. With cc NULL, or when the
 * thread's slots cannot be set up, a client of its own in p. */
apr_status_t hgs3_client_cache_get(hgs3_client_cache *cc, hgs3_s3_client **pc, apr_pool_t *p,
                                   const hgs3_s3_config *conf);

/* The identity of conf for hgs3_client_cache_get_id(): a digest (in p) of
 * every field a client carries but the credentials. A caller whose
 * configuration does not change computes it once. */
const char *hgs3_client_cache_id(apr_pool_t *p, const hgs3_s3_config *conf);

/* hgs3_client_cache_get() for a configuration whose identity id
 * (hgs3_client_cache_id()) is known: nothing is digested per call; the
 * credentials, which may rotate, are compared as they are. */
apr_status_t hgs3_client_cache_get_id(hgs3_client_cache *cc, hgs3_s3_client **pc, apr_pool_t *p,
                                      const hgs3_s3_config *conf, const char *id);

#endif
