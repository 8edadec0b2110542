/* hgs3_breaker.c: consecutive-failure circuit breaker with a probe. */
#include <apr_atomic.h>
#include "hgs3_breaker.h"

apr_status_t hgs3_breaker_init(hgs3_breaker *b, apr_pool_t *p, int threshold,
                               apr_interval_time_t cooldown)
{
    b->failures = 0;
    b->open = 0;
    b->reopen_at = 0;
    b->probing = 0;
    b->threshold = threshold > 0 ? (apr_uint32_t)threshold : 1;
    b->cooldown = cooldown;
    return apr_thread_mutex_create(&b->mx, APR_THREAD_MUTEX_DEFAULT, p);
}

int hgs3_breaker_allow(hgs3_breaker *b, apr_time_t now)
{
    int ok = 0;
    if (!apr_atomic_read32(&b->open)) {
        return 1;
    }
    apr_thread_mutex_lock(b->mx);
    if (!b->probing && now >= b->reopen_at) {
        b->probing = 1; /* this caller is the one probe */
        ok = 1;
    }
    apr_thread_mutex_unlock(b->mx);
    return ok;
}

void hgs3_breaker_success(hgs3_breaker *b)
{
    apr_atomic_set32(&b->failures, 0);
    if (apr_atomic_read32(&b->open)) {
        apr_thread_mutex_lock(b->mx);
        b->probing = 0;
        apr_atomic_set32(&b->open, 0);
        apr_thread_mutex_unlock(b->mx);
    }
}

int hgs3_breaker_failure(hgs3_breaker *b, apr_time_t now)
{
    int tripped = 0;
    apr_uint32_t n = apr_atomic_inc32(&b->failures) + 1;

    if (n < b->threshold && !apr_atomic_read32(&b->open)) {
        return 0;
    }
    apr_thread_mutex_lock(b->mx);
    if (!apr_atomic_read32(&b->open) || b->probing) {
        /* closed -> open, or a failed probe: open for another cooldown */
        tripped = !apr_atomic_read32(&b->open);
        apr_atomic_set32(&b->open, 1);
        b->probing = 0;
        b->reopen_at = now + b->cooldown;
    }
    apr_thread_mutex_unlock(b->mx);
    return tripped;
}
