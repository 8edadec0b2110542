/* hgs3_creds_cache.c: credentials from files and the environment, read
 * once and kept (see hgs3_creds_cache.h). */
#include <string.h>
#include <apr_file_info.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "hgs3_creds_cache.h"

typedef struct creds_entry {
    struct creds_entry *next;
    apr_pool_t *pool; /* the entry's current strings */
    const char *file;
    const char *profile;
    apr_time_t mtime;
    apr_off_t size;
    apr_ino_t inode;
    apr_status_t rv; /* of the last load */
    hgs3_creds creds;
} creds_entry;

struct hgs3_creds_cache {
    apr_pool_t *pool;
    apr_thread_mutex_t *mutex;
    creds_entry *entries;
    hgs3_creds env;
    apr_status_t env_rv; /* APR_EINIT: not read yet */
};

apr_status_t hgs3_creds_cache_create(hgs3_creds_cache **pcc, apr_pool_t *p)
{
    hgs3_creds_cache *cc = apr_pcalloc(p, sizeof(*cc));
    apr_status_t rv;

    *pcc = NULL;
    cc->pool = p;
    cc->env_rv = APR_EINIT;
    rv = apr_thread_mutex_create(&cc->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        *pcc = cc;
    }
    return rv;
}

static void creds_copy(hgs3_creds *out, apr_pool_t *p, const hgs3_creds *in)
{
    out->access_key = apr_pstrdup(p, in->access_key);
    out->secret_key = apr_pstrdup(p, in->secret_key);
    out->session_token = in->session_token ? apr_pstrdup(p, in->session_token) : NULL;
}

/* Under the mutex: the entry of file and profile, made on first use. */
static creds_entry *entry_get(hgs3_creds_cache *cc, const char *file, const char *profile)
{
    creds_entry *e;
    for (e = cc->entries; e; e = e->next) {
        if (!strcmp(e->file, file) && !strcmp(e->profile, profile)) {
            return e;
        }
    }
    e = apr_pcalloc(cc->pool, sizeof(*e));
    e->file = apr_pstrdup(cc->pool, file);
    e->profile = apr_pstrdup(cc->pool, profile);
    e->rv = APR_EINIT;
    e->next = cc->entries;
    cc->entries = e;
    return e;
}

/* Under the mutex: reload e when the file changed since the last good
 * load, or when the last load failed. */
static void entry_refresh(hgs3_creds_cache *cc, creds_entry *e, apr_pool_t *scratch)
{
    apr_finfo_t fi;
    apr_status_t rv =
        apr_stat(&fi, e->file, APR_FINFO_MTIME | APR_FINFO_SIZE | APR_FINFO_INODE, scratch);
    if (rv != APR_SUCCESS) {
        e->rv = rv;
        return;
    }
    if (e->rv == APR_SUCCESS && fi.mtime == e->mtime && fi.size == e->size &&
        fi.inode == e->inode) {
        return;
    }
    if (e->pool) {
        apr_pool_clear(e->pool);
    } else {
        apr_pool_create(&e->pool, cc->pool);
    }
    memset(&e->creds, 0, sizeof(e->creds));
    e->rv = hgs3_creds_load_file(&e->creds, e->pool, e->file, e->profile, NULL);
    e->mtime = fi.mtime;
    e->size = fi.size;
    e->inode = fi.inode;
}

apr_status_t hgs3_creds_cache_get(hgs3_creds_cache *cc, hgs3_creds *out, apr_pool_t *p,
                                  const char *file, const char *profile)
{
    apr_status_t rv;

    memset(out, 0, sizeof(*out));
    apr_thread_mutex_lock(cc->mutex);
    if (file) {
        creds_entry *e = entry_get(cc, file, profile ? profile : HGS3_CREDS_DEFAULT_PROFILE);
        entry_refresh(cc, e, p);
        rv = e->rv;
        if (rv == APR_SUCCESS) {
            creds_copy(out, p, &e->creds);
        }
    } else {
        if (cc->env_rv == APR_EINIT) {
            cc->env_rv = hgs3_creds_from_env(&cc->env, cc->pool);
        }
        rv = cc->env_rv;
        if (rv == APR_SUCCESS) {
            creds_copy(out, p, &cc->env);
        }
    }
    apr_thread_mutex_unlock(cc->mutex);
    return rv;
}
