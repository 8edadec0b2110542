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
#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_presence.h"

APLOG_USE_MODULE(hgs3cache);

#define PRESENCE_MUTEX "hgs3cache-presence"

static const ap_socache_provider_t *provider;
static ap_socache_instance_t *instance;
static apr_global_mutex_t *mutex;
static int ttl;

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
    struct ap_socache_hints hints = {64, 16, apr_time_from_sec(30)};
    const char *err;
    apr_status_t rv;

    provider = NULL;
    instance = NULL;
    mutex = NULL;
    ttl = hgs3_srv_presence_ttl(sc);
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
    err = provider->create(&instance, sc->presence_args, ptemp, pconf);
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
    apr_status_t rv;
    apr_uint64_t t = 0;
    int i;

    if (!provider || !make_id(id, key)) {
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
    return 1;
}

void hgs3_presence_put(server_rec *s, apr_pool_t *p, const char *id, apr_time_t lastmod)
{
    unsigned char key[HGS3_SHA256_LEN], val[8];
    apr_uint64_t t = (apr_uint64_t)lastmod;
    int i;

    if (!provider || !make_id(id, key)) {
        return;
    }
    for (i = 7; i >= 0; --i) {
        val[i] = (unsigned char)(t & 0xff);
        t >>= 8;
    }
    if (mutex && apr_global_mutex_lock(mutex) != APR_SUCCESS) {
        return;
    }
    provider->store(instance, s, key, sizeof(key), apr_time_now() + apr_time_from_sec(ttl), val,
                    sizeof(val), p);
    if (mutex) {
        apr_global_mutex_unlock(mutex);
    }
}

void hgs3_presence_remove(server_rec *s, apr_pool_t *p, const char *id)
{
    unsigned char key[HGS3_SHA256_LEN];

    if (!provider || !make_id(id, key)) {
        return;
    }
    if (mutex && apr_global_mutex_lock(mutex) != APR_SUCCESS) {
        return;
    }
    provider->remove(instance, s, key, sizeof(key), p);
    if (mutex) {
        apr_global_mutex_unlock(mutex);
    }
}
