/* mod_hgs3cache_loc.c: a scope's effective settings, resolved once (see
 * mod_hgs3cache_loc.h). */
#include <stddef.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_loc.h"
#include "mod_hgs3cache_store.h"

APLOG_USE_MODULE(hgs3cache);

/* Two merged configurations give the same settings when every field a
 * directive sets is equal. Merging copies values (strings and lists by
 * pointer) and configurations are zeroed when allocated, so the bytes from
 * the first directive's field up to locs compare exactly. */
static int same_settings(const hgs3_dir_conf *a, const hgs3_dir_conf *b)
{
    const size_t from = offsetof(hgs3_dir_conf, enabled), to = offsetof(hgs3_dir_conf, locs);
    return !memcmp((const char *)a + from, (const char *)b + from, to - from);
}

/* Every default applied, once. */
static apr_status_t loc_build(const hgs3_loc **ploc, apr_pool_t *p, const hgs3_dir_conf *conf,
                              server_rec *s, const hgs3_loc *next)
{
    hgs3_loc *loc = apr_pcalloc(p, sizeof(*loc));
    apr_status_t rv;

    *ploc = NULL;
    loc->conf = conf;
    loc->next = next;
    if ((rv = hgs3_store_for(&loc->store, p, conf)) != APR_SUCCESS) {
        return rv;
    }
    loc->key_prefix = hgs3_conf_key_prefix(conf);
    loc->key_salt = hgs3_conf_key_salt(conf);
    loc->repo_base = conf->repo_base;
    loc->repository = conf->repository;
    loc->repository_root = conf->repository_root;
    loc->config_files = hgs3_conf_config_files(conf);
    loc->share_users = hgs3_conf_share_users(conf);
    loc->commands = HGS3_PTR(conf, hgs3_dir_defaults, commands);
    hgs3_req_limits_init(&loc->limits);
    loc->hit_mode = hgs3_conf_hit_mode(conf);
    loc->url_expiry = hgs3_conf_url_expiry(conf);
    loc->max_age = apr_time_from_sec(hgs3_conf_max_age(conf));
    loc->min_size = hgs3_conf_min_size(conf);
    loc->max_size = hgs3_conf_max_size(conf);
    loc->memory = hgs3_conf_memory(conf);
    loc->spool_dir = hgs3_conf_spool_dir(p, conf);
    loc->spool_max = (apr_uint64_t)hgs3_srv_spool_max(hgs3_get_srv_conf(s));
    loc->collapse = hgs3_conf_collapse(conf);
    *ploc = loc;
    return APR_SUCCESS;
}

/* The loc of c merged over base (c itself without a base), added to c's
 * list unless one there has the same settings. */
static apr_status_t attach(apr_pool_t *p, server_rec *s, hgs3_dir_conf *c,
                           const hgs3_dir_conf *base)
{
    const hgs3_dir_conf *m = base ? hgs3_config_merge_dir(p, (void *)base, c) : c;
    const hgs3_loc *loc;
    apr_status_t rv;

    if (!hgs3_conf_enabled(m)) {
        return APR_SUCCESS;
    }
    for (loc = c->locs; loc; loc = loc->next) {
        if (same_settings(loc->conf, m)) {
            return APR_SUCCESS;
        }
    }
    rv = loc_build(&loc, p, m, s, c->locs);
    if (rv == APR_SUCCESS) {
        c->locs = loc;
    }
    return rv;
}

static apr_status_t attach_sections(apr_pool_t *p, server_rec *s, apr_array_header_t *secs,
                                    const hgs3_dir_conf *base)
{
    apr_status_t rv = APR_SUCCESS;
    int i;

    for (i = 0; secs && i < secs->nelts && rv == APR_SUCCESS; ++i) {
        ap_conf_vector_t *v = APR_ARRAY_IDX(secs, i, ap_conf_vector_t *);
        hgs3_dir_conf *c = ap_get_module_config(v, &hgs3cache_module);
        if (c) {
            rv = attach(p, s, c, base);
        }
    }
    return rv;
}

int hgs3_loc_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_status_t rv = APR_SUCCESS;

    for (; s && rv == APR_SUCCESS; s = s->next) {
        core_server_config *core = ap_get_core_module_config(s->module_config);
        hgs3_dir_conf *base = ap_get_module_config(s->lookup_defaults, &hgs3cache_module);
        rv = attach(pconf, s, base, NULL);
        if (rv == APR_SUCCESS) {
            rv = attach_sections(pconf, s, core->sec_url, base);
        }
        if (rv == APR_SUCCESS) {
            rv = attach_sections(pconf, s, core->sec_dir, base);
        }
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     HGS3LOGNO(01901) "cannot set up the stores of the configuration");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* ---- built on first use ----------------------------------------------------
 *
 * A merged configuration that no section gives alone. Kept for the child's
 * life: there are only as many as the configuration has combinations of
 * sections, and an upload job may use its store after the request. */

static apr_thread_mutex_t *lazy_lock;
static apr_pool_t *lazy_pool;
static const hgs3_loc *lazy_locs;

void hgs3_loc_child_init(apr_pool_t *pchild)
{
    lazy_locs = NULL;
    if (apr_pool_create(&lazy_pool, pchild) != APR_SUCCESS ||
        apr_thread_mutex_create(&lazy_lock, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS) {
        lazy_lock = NULL;
    }
}

static const hgs3_loc *loc_lazy(request_rec *r, const hgs3_dir_conf *conf)
{
    const hgs3_loc *loc = NULL;
    hgs3_dir_conf *copy;

    if (!lazy_lock || apr_thread_mutex_lock(lazy_lock) != APR_SUCCESS) {
        return NULL;
    }
    for (loc = lazy_locs; loc && !same_settings(loc->conf, conf); loc = loc->next) {
    }
    if (!loc) {
        copy = apr_pmemdup(lazy_pool, conf, sizeof(*conf));
        if (loc_build(&loc, lazy_pool, copy, r->server, lazy_locs) == APR_SUCCESS) {
            lazy_locs = loc;
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "hgs3cache: settings of nested sections resolved for %s", conf->scope);
        }
    }
    apr_thread_mutex_unlock(lazy_lock);
    return loc;
}

const hgs3_loc *hgs3_loc_of(request_rec *r, const hgs3_dir_conf *conf)
{
    const hgs3_loc *loc;

    for (loc = conf->locs; loc; loc = loc->next) {
        if (same_settings(loc->conf, conf)) {
            return loc;
        }
    }
    return loc_lazy(r, conf);
}

int hgs3_loc_command_allowed(const hgs3_loc *loc, const char *cmd)
{
    int i;
    for (i = 0; cmd && loc->commands && i < loc->commands->nelts; ++i) {
        if (!strcmp(APR_ARRAY_IDX(loc->commands, i, const char *), cmd)) {
            return 1;
        }
    }
    return 0;
}
