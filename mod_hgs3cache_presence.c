/* mod_hgs3cache_presence.c: presence cache over mod_socache. */
#include <pthread.h>
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_global_mutex.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_provider.h>
#include <ap_socache.h>
#include <util_mutex.h>

#include "hgs3_crypto.h"
#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_presence.h"

APLOG_USE_MODULE(hgs3cache);

#define PRESENCE_MUTEX "hgs3cache-presence"

/* The default shmcb size (HgS3CachePresence shmcb without a size). */
#define HGS3_PRESENCE_SHMCB_SIZE (32 * 1024 * 1024)

static const ap_socache_provider_t *provider;
static ap_socache_instance_t *instance;
static apr_global_mutex_t *mutex;
static int ttl;

/* ---- the per-child front cache ---------------------------------------------
 *
 * A lookup in the shared cache costs a SHA-256 of the id, the global mutex
 * (fcntl() or a semaphore, a system call or two) and the shmcb search, on
 * every hit. In front of it, each child keeps the ids it recently found
 * present, for LOCAL_TTL (1 s): a table under a process-local mutex, keyed
 * by the id itself.
 *
 * It answers only what the shared cache answered (or was told) within the
 * last second, with the same Last-Modified, so HgS3CacheMaxAge is judged by
 * the caller exactly as before; an entry in the shared cache is therefore
 * trusted at most LOCAL_TTL longer than its own TTL. Absence is never
 * cached. A remove (an object found too old, or the store failing to serve
 * it) clears the entry in this child and bumps a generation counter: a
 * lookup or put that read the shared cache before that remove does not
 * enter its now outdated "present" afterwards. Other children learn of a
 * remove from the shared cache within LOCAL_TTL. */

#define LOCAL_SLOTS  64
#define LOCAL_ID_MAX 512 /* longer ids (very long endpoints) are not cached here */
#define LOCAL_TTL    apr_time_from_sec(1)

typedef struct local_slot {
    char id[LOCAL_ID_MAX];
    apr_size_t id_len; /* 0: empty */
    apr_time_t lastmod;
    apr_time_t until; /* valid while now < until */
} local_slot;

static pthread_mutex_t local_mutex = PTHREAD_MUTEX_INITIALIZER;
static local_slot local_cache[LOCAL_SLOTS];
static apr_uint64_t local_gen;

static local_slot *local_slot_for(const char *id, apr_size_t len)
{
    apr_ssize_t klen = (apr_ssize_t)len;
    return &local_cache[apr_hashfunc_default(id, &klen) % LOCAL_SLOTS];
}

static void local_reset(void)
{
    pthread_mutex_lock(&local_mutex);
    memset(local_cache, 0, sizeof(local_cache));
    ++local_gen;
    pthread_mutex_unlock(&local_mutex);
}

/* 1 and *lastmod when this child saw id present less than LOCAL_TTL ago.
 * Otherwise 0 and *gen, to be handed to local_put() after the shared
 * lookup. */
static int local_get(const char *id, apr_size_t len, apr_time_t now, apr_time_t *lastmod,
                     apr_uint64_t *gen)
{
    local_slot *e = local_slot_for(id, len);
    int found = 0;

    pthread_mutex_lock(&local_mutex);
    if (e->id_len == len && now < e->until && memcmp(e->id, id, len) == 0) {
        *lastmod = e->lastmod;
        found = 1;
    }
    *gen = local_gen;
    pthread_mutex_unlock(&local_mutex);
    return found;
}

static apr_uint64_t local_generation(void)
{
    apr_uint64_t gen;
    pthread_mutex_lock(&local_mutex);
    gen = local_gen;
    pthread_mutex_unlock(&local_mutex);
    return gen;
}

/* Remember id as present, unless a remove happened since gen was read. */
static void local_put(const char *id, apr_size_t len, apr_time_t lastmod, apr_time_t now,
                      apr_uint64_t gen)
{
    local_slot *e;

    if (len == 0 || len >= LOCAL_ID_MAX) {
        return;
    }
    e = local_slot_for(id, len);
    pthread_mutex_lock(&local_mutex);
    if (gen == local_gen) {
        memcpy(e->id, id, len);
        e->id_len = len;
        e->lastmod = lastmod;
        e->until = now + LOCAL_TTL;
    }
    pthread_mutex_unlock(&local_mutex);
}

static void local_remove(const char *id, apr_size_t len)
{
    local_slot *e = local_slot_for(id, len);

    pthread_mutex_lock(&local_mutex);
    ++local_gen;
    if (e->id_len == len && memcmp(e->id, id, len) == 0) {
        e->id_len = 0;
    }
    pthread_mutex_unlock(&local_mutex);
}

void hgs3_presence_pre_config(apr_pool_t *pconf)
{
    ap_mutex_register(pconf, PRESENCE_MUTEX, NULL, APR_LOCK_DEFAULT, 0);
}

static apr_status_t presence_cleanup(void *data)
{
    (void)data;
    if (provider && instance) {
        provider->destroy(instance, NULL);
    }
    provider = NULL;
    instance = NULL;
    mutex = NULL;
    return APR_SUCCESS;
}

int hgs3_presence_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    hgs3_srv_conf *sc = hgs3_get_srv_conf(s);
    const char *name = hgs3_srv_presence_provider(sc);
    /* Entries are 32-byte ids with either 8 bytes (a stored object) or an
     * inline reply of up to HgS3CacheInlineMax: sized so that shmcb's
     * subcaches hold 64K replies next to many small entries. */
    struct ap_socache_hints hints = {HGS3_SHA256_LEN, 256, apr_time_from_sec(30)};
    const char *args;
    const char *err;
    apr_status_t rv;

    provider = NULL;
    instance = NULL;
    mutex = NULL;
    ttl = hgs3_srv_presence_ttl(sc);
    local_reset(); /* another provider or TTL may follow a restart */
    if (!strcasecmp(name, "none")) {
        return OK;
    }
    provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (!provider) {
        if (sc->presence_provider) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         HGS3LOGNO(00301) "HgS3CachePresence: socache provider '%s' is not "
                                          "loaded (LoadModule socache_%s_module)",
                         name, name);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        /* The default, and mod_socache_shmcb is absent: ask the store. */
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "hgs3cache: mod_socache_shmcb not loaded; presence cache off");
        return OK;
    }
    args = sc->presence_args;
    if (!args && !strcasecmp(name, "shmcb")) {
        /* shmcb's own default (512 KB) holds a handful of inline replies;
         * ours holds a few hundred repositories' worth (README). The path
         * is only used where anonymous shared memory is missing. */
        args = apr_psprintf(pconf, "%s(%d)", ap_runtime_dir_relative(pconf, "hgs3cache-presence"),
                            HGS3_PRESENCE_SHMCB_SIZE);
    }
    err = provider->create(&instance, args, ptemp, pconf);
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, HGS3LOGNO(00302) "HgS3CachePresence: %s", err);
        provider = NULL;
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        rv = ap_global_mutex_create(&mutex, NULL, PRESENCE_MUTEX, NULL, s, pconf, 0);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         HGS3LOGNO(00303) "cannot create the presence cache mutex");
            provider = NULL;
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    rv = provider->init(instance, "hgs3cache", &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     HGS3LOGNO(00304) "cannot initialize the presence cache (%s)", name);
        provider = NULL;
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, NULL, presence_cleanup, apr_pool_cleanup_null);
    return OK;
}

void hgs3_presence_child_init(apr_pool_t *pchild, server_rec *s)
{
    if (mutex) {
        apr_status_t rv =
            apr_global_mutex_child_init(&mutex, apr_global_mutex_lockfile(mutex), pchild);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                         HGS3LOGNO(00305) "presence cache mutex unusable in this child; "
                                          "presence cache off");
            provider = NULL;
        }
    }
}

int hgs3_presence_enabled(void)
{
    return provider != NULL;
}

/* Objects are named by the SHA-256 of the caller's id: fixed 32 bytes. */
static int make_id(const char *id, unsigned char out[HGS3_SHA256_LEN])
{
    return hgs3_sha256(id, strlen(id), out) == APR_SUCCESS;
}

int hgs3_presence_get(server_rec *s, apr_pool_t *p, const char *id, apr_time_t *lastmod)
{
    unsigned char key[HGS3_SHA256_LEN], val[8];
    unsigned int len = sizeof(val);
    apr_size_t id_len;
    apr_time_t now;
    apr_status_t rv;
    apr_uint64_t t = 0, gen = 0;
    int i;

    if (!provider) {
        return 0;
    }
    id_len = strlen(id);
    now = apr_time_now();
    if (local_get(id, id_len, now, lastmod, &gen)) {
        return 1;
    }
    if (!make_id(id, key)) {
        return 0;
    }
    if (mutex && apr_global_mutex_lock(mutex) != APR_SUCCESS) {
        return 0;
    }
    rv = provider->retrieve(instance, s, key, sizeof(key), val, &len, p);
    if (mutex) {
        apr_global_mutex_unlock(mutex);
    }
    if (rv != APR_SUCCESS || len != sizeof(val)) {
        return 0;
    }
    for (i = 0; i < 8; ++i) {
        t = (t << 8) | val[i];
    }
    *lastmod = (apr_time_t)t;
    local_put(id, id_len, *lastmod, now, gen);
    return 1;
}

void hgs3_presence_put(server_rec *s, apr_pool_t *p, const char *id, apr_time_t lastmod)
{
    unsigned char key[HGS3_SHA256_LEN], val[8];
    apr_uint64_t t = (apr_uint64_t)lastmod, gen;
    apr_time_t now;
    apr_status_t rv;
    int i;

    if (!provider || !make_id(id, key)) {
        return;
    }
    gen = local_generation();
    now = apr_time_now();
    for (i = 7; i >= 0; --i) {
        val[i] = (unsigned char)(t & 0xff);
        t >>= 8;
    }
    if (mutex && apr_global_mutex_lock(mutex) != APR_SUCCESS) {
        return;
    }
    rv = provider->store(instance, s, key, sizeof(key), now + apr_time_from_sec(ttl), val,
                         sizeof(val), p);
    if (mutex) {
        apr_global_mutex_unlock(mutex);
    }
    if (rv == APR_SUCCESS) {
        local_put(id, strlen(id), lastmod, now, gen);
    }
}

void hgs3_presence_remove(server_rec *s, apr_pool_t *p, const char *id)
{
    unsigned char key[HGS3_SHA256_LEN];

    if (!provider) {
        return;
    }
    if (make_id(id, key) && (!mutex || apr_global_mutex_lock(mutex) == APR_SUCCESS)) {
        provider->remove(instance, s, key, sizeof(key), p);
        if (mutex) {
            apr_global_mutex_unlock(mutex);
        }
    }
    /* after the shared remove: see local_remove() */
    local_remove(id, strlen(id));
}

apr_status_t hgs3_presence_get_value(server_rec *s, apr_pool_t *p, const char *id,
                                     unsigned char *buf, unsigned int *len)
{
    unsigned char key[HGS3_SHA256_LEN];
    apr_status_t rv = APR_ENOTIMPL;

    if (!provider) {
        goto leave;
    }
    rv = APR_EGENERAL;
    if (!make_id(id, key) || (mutex && apr_global_mutex_lock(mutex) != APR_SUCCESS)) {
        goto leave;
    }
    rv = provider->retrieve(instance, s, key, sizeof(key), buf, len, p);
    if (mutex) {
        apr_global_mutex_unlock(mutex);
    }
leave:
    if (rv != APR_SUCCESS) {
        *len = 0;
    }
    return rv;
}

apr_status_t hgs3_presence_put_value(server_rec *s, apr_pool_t *p, const char *id,
                                     const unsigned char *val, unsigned int len)
{
    unsigned char key[HGS3_SHA256_LEN];
    apr_status_t rv = APR_ENOTIMPL;

    if (!provider) {
        goto leave;
    }
    rv = APR_EGENERAL;
    if (!make_id(id, key) || (mutex && apr_global_mutex_lock(mutex) != APR_SUCCESS)) {
        goto leave;
    }
    rv = provider->store(instance, s, key, sizeof(key), apr_time_now() + apr_time_from_sec(ttl),
                         (unsigned char *)val, len, p);
    if (mutex) {
        apr_global_mutex_unlock(mutex);
    }
leave:
    return rv;
}
