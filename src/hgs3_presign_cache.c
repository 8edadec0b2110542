/* hgs3_presign_cache.c: presigned URLs, reused within their second (see
 * hgs3_presign_cache.h). */
#include <stdlib.h>
#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "hgs3_crypto.h"
#include "hgs3_presign_cache.h"

typedef struct presign_slot {
    char *object, *endpoint, *region, *bucket;
    char *access_key, *secret_key, *session_token;
    char *url;
    int addressing;
    int expiry;
    apr_time_t second;
} presign_slot;

struct hgs3_presign_cache {
    apr_thread_mutex_t *mutex;
    presign_slot *slots;
    int nslots;
};

static presign_slot *slot_for(hgs3_presign_cache *pc, const char *object)
{
    apr_ssize_t len = APR_HASH_KEY_STRING;
    return &pc->slots[apr_hashfunc_default(object, &len) % (unsigned)pc->nslots];
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int same_secret(const char *a, const char *b)
{
    apr_size_t n;
    if (!a || !b) {
        return a == b;
    }
    n = strlen(a);
    return n == strlen(b) && hgs3_memeq_ct(a, b, n);
}

static void wipe_free(char **ps)
{
    if (*ps) {
        memset(*ps, 0, strlen(*ps));
        free(*ps);
        *ps = NULL;
    }
}

static void slot_clear(presign_slot *e)
{
    wipe_free(&e->object);
    wipe_free(&e->endpoint);
    wipe_free(&e->region);
    wipe_free(&e->bucket);
    wipe_free(&e->access_key);
    wipe_free(&e->secret_key);
    wipe_free(&e->session_token);
    wipe_free(&e->url);
}

/* strdup, where NULL stays NULL; 0 when out of memory. */
static int dup_field(char **pdst, const char *src)
{
    *pdst = src ? strdup(src) : NULL;
    return !src || *pdst;
}

static apr_status_t cache_cleanup(void *data)
{
    hgs3_presign_cache *pc = data;
    int i;
    for (i = 0; i < pc->nslots; ++i) {
        slot_clear(&pc->slots[i]);
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_presign_cache_create(hgs3_presign_cache **ppc, apr_pool_t *p, int nslots)
{
    hgs3_presign_cache *pc = apr_pcalloc(p, sizeof(*pc));
    apr_status_t rv = APR_EINVAL;

    *ppc = NULL;
    if (nslots < 1) {
        goto leave;
    }
    pc->nslots = nslots;
    pc->slots = apr_pcalloc(p, sizeof(presign_slot) * (apr_size_t)nslots);
    rv = apr_thread_mutex_create(&pc->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    apr_pool_cleanup_register(p, pc, cache_cleanup, apr_pool_cleanup_null);
    *ppc = pc;
leave:
    return rv;
}

/* Under the mutex: e holds exactly these inputs. */
static int slot_matches(const presign_slot *e, const hgs3_s3_config *conf, const char *object,
                        int expiry, apr_time_t second)
{
    return e->url && e->second == second && e->expiry == expiry &&
           e->addressing == conf->addressing && same_str(e->object, object) &&
           same_str(e->endpoint, conf->endpoint) && same_str(e->region, conf->region) &&
           same_str(e->bucket, conf->bucket) && same_str(e->access_key, conf->creds.access_key) &&
           same_str(e->session_token, conf->creds.session_token) &&
           same_secret(e->secret_key, conf->creds.secret_key);
}

const char *hgs3_presign_cache_get(hgs3_presign_cache *pc, apr_pool_t *p,
                                   const hgs3_s3_config *conf, const char *object, int expiry,
                                   apr_time_t second)
{
    presign_slot *e = slot_for(pc, object);
    const char *url = NULL;

    apr_thread_mutex_lock(pc->mutex);
    if (slot_matches(e, conf, object, expiry, second)) {
        url = apr_pstrdup(p, e->url);
    }
    apr_thread_mutex_unlock(pc->mutex);
    return url;
}

void hgs3_presign_cache_put(hgs3_presign_cache *pc, const hgs3_s3_config *conf, const char *object,
                            int expiry, apr_time_t second, const char *url)
{
    presign_slot *e = slot_for(pc, object);

    apr_thread_mutex_lock(pc->mutex);
    slot_clear(e);
    if (!dup_field(&e->object, object) || !dup_field(&e->endpoint, conf->endpoint) ||
        !dup_field(&e->region, conf->region) || !dup_field(&e->bucket, conf->bucket) ||
        !dup_field(&e->access_key, conf->creds.access_key) ||
        !dup_field(&e->secret_key, conf->creds.secret_key) ||
        !dup_field(&e->session_token, conf->creds.session_token) || !dup_field(&e->url, url) ||
        !e->url) {
        slot_clear(e); /* out of memory: not cached */
    } else {
        e->addressing = conf->addressing;
        e->expiry = expiry;
        e->second = second;
    }
    apr_thread_mutex_unlock(pc->mutex);
}

apr_status_t hgs3_presign_cache_url(const char **url, hgs3_presign_cache *pc, apr_pool_t *p,
                                    const hgs3_s3_config *conf, const char *object, int expiry,
                                    apr_time_t now)
{
    apr_time_t second = apr_time_sec(now);
    apr_status_t rv = APR_SUCCESS;

    *url = pc ? hgs3_presign_cache_get(pc, p, conf, object, expiry, second) : NULL;
    if (*url) {
        goto leave;
    }
    rv = hgs3_s3_presign(url, p, conf, "GET", object, expiry, NULL, now);
    if (rv != APR_SUCCESS) {
        *url = NULL;
        goto leave;
    }
    if (pc) {
        hgs3_presign_cache_put(pc, conf, object, expiry, second, *url);
    }
leave:
    return rv;
}
