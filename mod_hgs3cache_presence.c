/* mod_hgs3cache_presence.c: presence cache over mod_socache. */
#include <string.h>

#include <apr_strings.h>
#include <apr_global_mutex.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_provider.h>
#include <ap_socache.h>
#include <util_mutex.h>

#include "hgs3_crypto.h"
#include "hgs3_presence_front.h"
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

/* Each child's front cache of ids found present (src/hgs3_presence_front.h),
 * made in child_init: NULL without one. */
static hgs3_presence_front *front;

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

/* The socache provider HgS3CachePresence names: *pprov stays NULL for
 * "none", and for the default shmcb when mod_socache_shmcb is not loaded
 * (then lookups ask the store). APR_ENOENT when a configured provider is
 * missing. */
static apr_status_t find_provider(const ap_socache_provider_t **pprov, server_rec *s,
                                  const hgs3_srv_conf *sc, const char *name)
{
    apr_status_t rv = APR_SUCCESS;

    *pprov = NULL;
    if (!strcasecmp(name, "none")) {
        goto leave;
    }
    *pprov = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (*pprov) {
        goto leave;
    }
    if (sc->presence_provider) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     HGS3LOGNO(00301) "HgS3CachePresence: socache provider '%s' is not "
                                      "loaded (LoadModule socache_%s_module)",
                     name, name);
        rv = APR_ENOENT;
        goto leave;
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                 "hgs3cache: mod_socache_shmcb not loaded; presence cache off");
leave:
    return rv;
}

/* The provider's arguments: HgS3CachePresence's, or for a bare shmcb our
 * default size. shmcb's own default (512 KB) holds a handful of inline
 * replies; ours holds a few hundred repositories' worth (README). The path
 * is only used where anonymous shared memory is missing. */
static const char *provider_args(apr_pool_t *pconf, const hgs3_srv_conf *sc, const char *name)
{
    if (sc->presence_args || strcasecmp(name, "shmcb")) {
        return sc->presence_args;
    }
    return apr_psprintf(pconf, "%s(%d)", ap_runtime_dir_relative(pconf, "hgs3cache-presence"),
                        HGS3_PRESENCE_SHMCB_SIZE);
}

/* Create and initialize the instance of provider, with the global mutex
 * when the provider is not safe across processes. Logged on failure. */
static apr_status_t open_instance(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                                  const char *name, const char *args)
{
    /* Entries are 32-byte ids with either 8 bytes (a stored object) or an
     * inline reply of up to HgS3CacheInlineMax: sized so that shmcb's
     * subcaches hold 64K replies next to many small entries. */
    struct ap_socache_hints hints = {HGS3_SHA256_LEN, 256, apr_time_from_sec(30)};
    const char *err;
    apr_status_t rv = APR_EGENERAL;

    err = provider->create(&instance, args, ptemp, pconf);
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, HGS3LOGNO(00302) "HgS3CachePresence: %s", err);
        goto leave;
    }
    if (provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        rv = ap_global_mutex_create(&mutex, NULL, PRESENCE_MUTEX, NULL, s, pconf, 0);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         HGS3LOGNO(00303) "cannot create the presence cache mutex");
            goto leave;
        }
    }
    rv = provider->init(instance, "hgs3cache", &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     HGS3LOGNO(00304) "cannot initialize the presence cache (%s)", name);
    }
leave:
    return rv;
}

int hgs3_presence_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    hgs3_srv_conf *sc = hgs3_get_srv_conf(s);
    const char *name = hgs3_srv_presence_provider(sc);

    provider = NULL;
    instance = NULL;
    mutex = NULL;
    ttl = hgs3_srv_presence_ttl(sc);
    if (find_provider(&provider, s, sc, name) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!provider) {
        return OK;
    }
    if (open_instance(pconf, ptemp, s, name, provider_args(pconf, sc, name)) != APR_SUCCESS) {
        provider = NULL;
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, NULL, presence_cleanup, apr_pool_cleanup_null);
    return OK;
}

void hgs3_presence_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    front = NULL;
    if (mutex) {
        rv = apr_global_mutex_child_init(&mutex, apr_global_mutex_lockfile(mutex), pchild);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                         HGS3LOGNO(00305) "presence cache mutex unusable in this child; "
                                          "presence cache off");
            provider = NULL;
        }
    }
    if (provider) {
        rv = hgs3_presence_front_create(&front, pchild, HGS3_PRESENCE_FRONT_SLOTS,
                                        HGS3_PRESENCE_FRONT_TTL);
        if (rv != APR_SUCCESS) {
            /* the shared cache still answers, a little slower */
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                         HGS3LOGNO(02101) "cannot create the presence front cache; "
                                          "every lookup asks the shared cache");
        }
    }
}

int hgs3_presence_enabled(void)
{
    return provider != NULL;
}

typedef enum { SHARED_RETRIEVE, SHARED_STORE, SHARED_REMOVE } shared_op;

/* One operation of the shared cache on id, named there by the SHA-256 of
 * id (a fixed 32 bytes), under the global mutex where the provider needs
 * it. RETRIEVE copies at most *len bytes into val and sets *len (0 when
 * not found); STORE keeps *len bytes of val for the presence TTL.
 * APR_ENOTIMPL when the presence cache is off. */
static apr_status_t shared_call(server_rec *s, apr_pool_t *p, shared_op op, const char *id,
                                unsigned char *val, unsigned int *len)
{
    unsigned char key[HGS3_SHA256_LEN];
    apr_status_t rv = APR_ENOTIMPL;

    if (!provider) {
        goto leave;
    }
    if ((rv = hgs3_sha256(id, strlen(id), key)) != APR_SUCCESS ||
        (mutex && (rv = apr_global_mutex_lock(mutex)) != APR_SUCCESS)) {
        goto leave;
    }
    if (op == SHARED_RETRIEVE) {
        rv = provider->retrieve(instance, s, key, sizeof(key), val, len, p);
    } else if (op == SHARED_STORE) {
        rv = provider->store(instance, s, key, sizeof(key), apr_time_now() + apr_time_from_sec(ttl),
                             val, *len, p);
    } else {
        rv = provider->remove(instance, s, key, sizeof(key), p);
    }
    if (mutex) {
        apr_global_mutex_unlock(mutex);
    }
leave:
    if (rv != APR_SUCCESS && op == SHARED_RETRIEVE) {
        *len = 0;
    }
    return rv;
}

int hgs3_presence_get(server_rec *s, apr_pool_t *p, const char *id, apr_time_t *lastmod)
{
    unsigned char val[8];
    unsigned int len = sizeof(val);
    apr_time_t now;
    apr_uint64_t t = 0, gen = 0;
    int i;

    if (!provider) {
        return 0;
    }
    now = apr_time_now();
    if (front && hgs3_presence_front_get(front, id, now, lastmod, &gen) == APR_SUCCESS) {
        return 1;
    }
    if (shared_call(s, p, SHARED_RETRIEVE, id, val, &len) != APR_SUCCESS || len != sizeof(val)) {
        return 0;
    }
    for (i = 0; i < 8; ++i) {
        t = (t << 8) | val[i];
    }
    *lastmod = (apr_time_t)t;
    if (front) {
        hgs3_presence_front_put(front, id, *lastmod, now, gen);
    }
    return 1;
}

void hgs3_presence_put(server_rec *s, apr_pool_t *p, const char *id, apr_time_t lastmod)
{
    unsigned char val[8];
    unsigned int len = sizeof(val);
    apr_uint64_t t = (apr_uint64_t)lastmod, gen;
    apr_time_t now;
    int i;

    if (!provider) {
        return;
    }
    gen = front ? hgs3_presence_front_generation(front) : 0;
    now = apr_time_now();
    for (i = 7; i >= 0; --i) {
        val[i] = (unsigned char)(t & 0xff);
        t >>= 8;
    }
    if (shared_call(s, p, SHARED_STORE, id, val, &len) == APR_SUCCESS && front) {
        hgs3_presence_front_put(front, id, lastmod, now, gen);
    }
}

void hgs3_presence_remove(server_rec *s, apr_pool_t *p, const char *id)
{
    if (!provider) {
        return;
    }
    shared_call(s, p, SHARED_REMOVE, id, NULL, NULL);
    /* after the shared remove: see hgs3_presence_front.h */
    if (front) {
        hgs3_presence_front_remove(front, id);
    }
}

apr_status_t hgs3_presence_get_value(server_rec *s, apr_pool_t *p, const char *id,
                                     unsigned char *buf, unsigned int *len)
{
    return shared_call(s, p, SHARED_RETRIEVE, id, buf, len);
}

apr_status_t hgs3_presence_put_value(server_rec *s, apr_pool_t *p, const char *id,
                                     const unsigned char *val, unsigned int len)
{
    /* the providers' store() takes a non-const value it does not change */
    return shared_call(s, p, SHARED_STORE, id, (unsigned char *)val, &len);
}
