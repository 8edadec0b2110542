/* hgs3_breaker.h: the fail-open circuit breaker for store lookups.
 *
 * A store that is down or slow must not cost every request HgS3CacheTimeout.
 * After `threshold` consecutive failures (timeouts, 5xx, transport errors)
 * the breaker opens: lookups are skipped, requests go straight to hgweb.
 * After `cooldown` one request is let through as a probe (half-open); its
 * success closes the breaker, its failure opens it for another cooldown.
 * Shared by all threads of a child; lock-free on the closed path. */
#ifndef HGS3_BREAKER_H
#define HGS3_BREAKER_H

#include <apr_time.h>
#include <apr_thread_mutex.h>

typedef struct hgs3_breaker {
    apr_thread_mutex_t *mx;
    volatile apr_uint32_t failures; /* consecutive */
    volatile apr_uint32_t open;     /* 1 while open or half-open */
    apr_time_t reopen_at;           /* when the next probe may go (under mx) */
    int probing;                    /* a probe is out (under mx) */
    apr_uint32_t threshold;
    apr_interval_time_t cooldown;
} hgs3_breaker;

apr_status_t hgs3_breaker_init(hgs3_breaker *b, apr_pool_t *p, int threshold,
                               apr_interval_time_t cooldown);

/* May a lookup go to the store now? 1 yes (closed, or this caller is the
 * probe), 0 no (open). */
int hgs3_breaker_allow(hgs3_breaker *b, apr_time_t now);

void hgs3_breaker_success(hgs3_breaker *b);

/* Record a store failure; returns 1 when this failure opened the breaker
 * (a trip, to be counted and logged), else 0. */
int hgs3_breaker_failure(hgs3_breaker *b, apr_time_t now);

#endif
