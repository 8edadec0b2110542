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
    b->probe_until = 0;
    b->probe_gen = 0;
    b->threshold = threshold > 0 ? (apr_uint32_t)threshold : 1;
    b->cooldown = cooldown;
    return apr_thread_mutex_create(&b->mx, APR_THREAD_MUTEX_DEFAULT, p);
}

/* Under b->mx: hand out the probe if it is free (or its lease is over). */
static int take_probe(hgs3_breaker *b, apr_time_t now, apr_uint32_t *gen)
{
    if (now < b->reopen_at || (b->probing && now < b->probe_until)) {
        return 0;
    }
    b->probing = 1; /* this caller is the one probe */
    b->probe_until = now + (b->cooldown > 0 ? b->cooldown : apr_time_from_sec(1));
    *gen = ++b->probe_gen;
    return 1;
}

static int allow(hgs3_breaker *b, apr_time_t now, apr_uint32_t *gen)
{
    int ok;
    if (!apr_atomic_read32(&b->open)) {
        return HGS3_BREAKER_CLOSED;
    }
    apr_thread_mutex_lock(b->mx);
    ok = take_probe(b, now, gen);
    apr_thread_mutex_unlock(b->mx);
    return ok ? HGS3_BREAKER_PROBE : 0;
}

int hgs3_breaker_allow(hgs3_breaker *b, apr_time_t now)
{
    apr_uint32_t gen;
    return allow(b, now, &gen);
}

/* Under b->mx: the breaker opens for another cooldown. */
static void reopen(hgs3_breaker *b, apr_time_t now)
{
    apr_atomic_set32(&b->open, 1);
    b->probing = 0;
    b->reopen_at = now + b->cooldown;
}

typedef struct probe_guard {
    hgs3_breaker *b;
    apr_uint32_t gen;
} probe_guard;

/* The probe's pool is going: a probe still out has failed. */
static apr_status_t probe_guard_cleanup(void *data)
{
    probe_guard *g = data;
    hgs3_breaker *b = g->b;

    apr_thread_mutex_lock(b->mx);
    if (b->probing && b->probe_gen == g->gen) {
        reopen(b, apr_time_now());
    }
    apr_thread_mutex_unlock(b->mx);
    return APR_SUCCESS;
}

int hgs3_breaker_enter(hgs3_breaker *b, apr_pool_t *p, apr_time_t now)
{
    apr_uint32_t gen = 0;
    int ok = allow(b, now, &gen);

    if (ok == HGS3_BREAKER_PROBE) {
        probe_guard *g = apr_palloc(p, sizeof(*g));
        g->b = b;
        g->gen = gen;
        apr_pool_cleanup_register(p, g, probe_guard_cleanup, apr_pool_cleanup_null);
    }
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
        reopen(b, now);
    }
    apr_thread_mutex_unlock(b->mx);
    return tripped;
}
