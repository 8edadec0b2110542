/* hgs3_breaker.h: the fail-open circuit breaker for store lookups.
 *
 * A store that is down or slow must not cost every request HgS3CacheTimeout.
 * After `threshold` consecutive failures (timeouts, 5xx, transport errors)
 * the breaker opens: lookups are skipped, requests go straight to hgweb.
 * After `cooldown` one request is let through as a probe (half-open); its
 * success closes the breaker, its failure opens it for another cooldown.
 * Shared by all threads of a child; lock-free on the closed path.
 *
 * A probe always ends. Whatever happens to the probe's request (a streamed
 * hit failing on the client's side, a client abort, a code path that never
 * reports), lookups must not stay off for good with a healthy store:
 * - hgs3_breaker_enter() ties the probe to a pool: when that pool is
 *   cleaned up and the probe has reported neither success nor failure, it
 *   counts as failed (open for another cooldown, then the next probe);
 * - a probe that never ends at all (a request stuck for longer than the
 *   cooldown) loses its lease: the next caller after that becomes the probe. */
#ifndef HGS3_BREAKER_H
#define HGS3_BREAKER_H

#include <apr_pools.h>
#include <apr_time.h>
#include <apr_thread_mutex.h>

typedef struct hgs3_breaker {
    apr_thread_mutex_t *mx;
    volatile apr_uint32_t failures; /* consecutive */
    volatile apr_uint32_t open;     /* 1 while open or half-open */
    apr_time_t reopen_at;           /* when the next probe may go (under mx) */
    int probing;                    /* a probe is out (under mx) */
    apr_time_t probe_until;         /* the probe's lease ends (under mx) */
    apr_uint32_t probe_gen;         /* which probe is out (under mx) */
    apr_uint32_t threshold;
    apr_interval_time_t cooldown;
} hgs3_breaker;

apr_status_t hgs3_breaker_init(hgs3_breaker *b, apr_pool_t *p, int threshold,
                               apr_interval_time_t cooldown);

#define HGS3_BREAKER_CLOSED 1 /* hgs3_breaker_allow(): go, the breaker is closed */
#define HGS3_BREAKER_PROBE  2 /* go, this caller is the probe */

/* May a lookup go to the store now? HGS3_BREAKER_CLOSED or
 * HGS3_BREAKER_PROBE yes, 0 no (open). A probe should be taken with
 * hgs3_breaker_enter() so that it always ends. */
int hgs3_breaker_allow(hgs3_breaker *b, apr_time_t now);

/* hgs3_breaker_allow(), and when this caller is the probe, a cleanup on p
 * that reports the probe as failed if it is still out when p goes. */
int hgs3_breaker_enter(hgs3_breaker *b, apr_pool_t *p, apr_time_t now);

void hgs3_breaker_success(hgs3_breaker *b);

/* Record a store failure; returns 1 when this failure opened the breaker
 * (a trip, to be counted and logged), else 0. */
int hgs3_breaker_failure(hgs3_breaker *b, apr_time_t now);

#endif
