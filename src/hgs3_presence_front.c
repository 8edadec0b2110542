/* hgs3_presence_front.c: the per-process front cache of the presence cache
 * (see hgs3_presence_front.h). */
#include <string.h>

#include <apr_hash.h>
#include <apr_thread_mutex.h>

#include "hgs3_presence_front.h"

typedef struct front_slot {
    char id[HGS3_PRESENCE_FRONT_ID_MAX];
    apr_size_t id_len; /* 0: empty */
    apr_time_t lastmod;
    apr_time_t until; /* valid while now < until */
} front_slot;

struct hgs3_presence_front {
    apr_thread_mutex_t *mutex;
    front_slot *slots;
    int nslots;
    apr_interval_time_t ttl;
    apr_uint64_t gen; /* bumped by every remove */
};

static front_slot *slot_for(hgs3_presence_front *f, const char *id, apr_size_t len)
{
    apr_ssize_t klen = (apr_ssize_t)len;
    return &f->slots[apr_hashfunc_default(id, &klen) % (unsigned)f->nslots];
}

static int slot_holds(const front_slot *e, const char *id, apr_size_t len)
{
    return e->id_len == len && memcmp(e->id, id, len) == 0;
}

apr_status_t hgs3_presence_front_create(hgs3_presence_front **pf, apr_pool_t *p, int nslots,
                                        apr_interval_time_t ttl)
{
    hgs3_presence_front *f;
    apr_status_t rv = APR_EINVAL;

    *pf = NULL;
    if (nslots < 1 || ttl <= 0) {
        goto leave;
    }
    f = apr_pcalloc(p, sizeof(*f));
    f->nslots = nslots;
    f->ttl = ttl;
    f->slots = apr_pcalloc(p, sizeof(front_slot) * (apr_size_t)nslots);
    rv = apr_thread_mutex_create(&f->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    *pf = f;
leave:
    return rv;
}

apr_status_t hgs3_presence_front_get(hgs3_presence_front *f, const char *id, apr_time_t now,
                                     apr_time_t *lastmod, apr_uint64_t *gen)
{
    apr_size_t len = strlen(id);
    front_slot *e = slot_for(f, id, len);
    apr_status_t rv = APR_NOTFOUND;

    *lastmod = 0;
    apr_thread_mutex_lock(f->mutex);
    if (len > 0 && now < e->until && slot_holds(e, id, len)) {
        *lastmod = e->lastmod;
        rv = APR_SUCCESS;
    }
    *gen = f->gen;
    apr_thread_mutex_unlock(f->mutex);
    return rv;
}

apr_uint64_t hgs3_presence_front_generation(hgs3_presence_front *f)
{
    apr_uint64_t gen;

    apr_thread_mutex_lock(f->mutex);
    gen = f->gen;
    apr_thread_mutex_unlock(f->mutex);
    return gen;
}

void hgs3_presence_front_put(hgs3_presence_front *f, const char *id, apr_time_t lastmod,
                             apr_time_t now, apr_uint64_t gen)
{
    apr_size_t len = strlen(id);
    front_slot *e;

    if (len == 0 || len >= HGS3_PRESENCE_FRONT_ID_MAX) {
        return;
    }
    e = slot_for(f, id, len);
    apr_thread_mutex_lock(f->mutex);
    if (gen == f->gen) {
        memcpy(e->id, id, len);
        e->id_len = len;
        e->lastmod = lastmod;
        e->until = now + f->ttl;
    }
    apr_thread_mutex_unlock(f->mutex);
}

void hgs3_presence_front_remove(hgs3_presence_front *f, const char *id)
{
    apr_size_t len = strlen(id);
    front_slot *e = slot_for(f, id, len);

    apr_thread_mutex_lock(f->mutex);
    ++f->gen;
    if (slot_holds(e, id, len)) {
        e->id_len = 0;
    }
    apr_thread_mutex_unlock(f->mutex);
}
