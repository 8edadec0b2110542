/* hgs3_presence_front.h: the per-process front cache of the presence cache.
 *
 * A lookup in the shared presence cache (mod_socache) costs a SHA-256 of
 * the id, a global mutex (fcntl() or a semaphore: a system call or two)
 * and the provider's search, on every hit. In front of it, each process
 * keeps the ids it recently found present, for a short TTL (1 s in the
 * module): a table of slots under a process-local mutex, keyed by the id
 * itself, shared by the process's threads.
 *
 * It answers only what the shared cache answered (or was told) within the
 * TTL, with the same Last-Modified, so HgS3CacheMaxAge is judged by the
 * caller exactly as without it; an entry of the shared cache is therefore
 * trusted at most one TTL longer than its own. Absence is never cached.
 *
 * A remove clears the id's slot and bumps a generation counter. A lookup
 * or put reads the generation before it asks the shared cache, and its
 * "present" is entered only when no remove happened since: an answer read
 * before a remove is never entered after it. Other processes learn of a
 * remove from the shared cache within the TTL. */
#ifndef HGS3_PRESENCE_FRONT_H
#define HGS3_PRESENCE_FRONT_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct hgs3_presence_front hgs3_presence_front;

/* The module's table: slots, and the longest id kept (longer ones, from
 * very long endpoints, are simply not cached here). */
#define HGS3_PRESENCE_FRONT_SLOTS  64
#define HGS3_PRESENCE_FRONT_ID_MAX 512
#define HGS3_PRESENCE_FRONT_TTL    apr_time_from_sec(1)

/* A front cache of nslots (at least 1) slots whose entries live for ttl
 * (above 0), freed with p. */
apr_status_t hgs3_presence_front_create(hgs3_presence_front **pf, apr_pool_t *p, int nslots,
                                        apr_interval_time_t ttl);

/* APR_SUCCESS and *lastmod when id was seen present less than the TTL
 * before now; APR_NOTFOUND otherwise (*lastmod is then 0). In both cases
 * *gen is the generation to hand to hgs3_presence_front_put() after asking
 * the shared cache. */
apr_status_t hgs3_presence_front_get(hgs3_presence_front *f, const char *id, apr_time_t now,
                                     apr_time_t *lastmod, apr_uint64_t *gen);

/* The current generation, read before asking (or telling) the shared
 * cache. */
apr_uint64_t hgs3_presence_front_generation(hgs3_presence_front *f);

/* Remember id as present since now with lastmod, unless a remove
 * happened since gen was read. An empty or too long id is not kept. */
void hgs3_presence_front_put(hgs3_presence_front *f, const char *id, apr_time_t lastmod,
                             apr_time_t now, apr_uint64_t gen);

/* Forget id (call it after removing id from the shared cache). */
void hgs3_presence_front_remove(hgs3_presence_front *f, const char *id);

#endif
