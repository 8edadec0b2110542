/* mod_hgs3cache_check.c: the configuration checks that need more than one
 * value: where a repository mapping may be set (SPEC "Scope"), and the
 * whole-configuration checks of the check_config hook, which also runs
 * under `apachectl configtest`. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_fnmatch.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <util_cfgtree.h>
#include <ap_provider.h>
#include <ap_socache.h>
#include <unixd.h>
#include <mod_unixd.h>

#include "hgs3_s3.h"
#include "hgs3_store_file.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_spooldir.h"

APLOG_USE_MODULE(hgs3cache);

/* ---- where a repository mapping belongs ----------------------------------- */

/* Sections that apply their contents at the URL base of the section around
 * them: conditions, method limits and the configuration-time ones. */
static int section_is_transparent(const char *name)
{
    static const char *const names[] = {"<If",          "<ElseIf",      "<Else",      "<Limit",
                                        "<LimitExcept", "<IfModule",    "<IfDefine",  "<IfVersion",
                                        "<IfFile",      "<IfDirective", "<IfSection", NULL};
    int i;
    for (i = 0; names[i]; ++i) {
        if (!strcasecmp(name, names[i])) {
            return 1;
        }
    }
    return 0;
}

/* A section's arguments without the closing '>'. */
static const char *section_args(apr_pool_t *p, const ap_directive_t *d)
{
    const char *args = d->args ? d->args : "";
    const char *end = ap_strrchr_c(args, '>');
    return end ? apr_pstrndup(p, args, (apr_size_t)(end - args)) : args;
}

static const char *no_base(cmd_parms *cmd, const ap_directive_t *d)
{
    return apr_psprintf(cmd->pool,
                        "%s is not allowed in %s %s>: a repository mapping belongs to the URL "
                        "path of the <Location> that sets it, and this section has none (use "
                        "<Location /path>, or the server level for \"/\")",
                        cmd->cmd->name, d->directive, section_args(cmd->temp_pool, d));
}

/* The URL base a repository mapping set by cmd belongs to: the path of the
 * innermost <Location> around it, without trailing '/', or "/" at server
 * and virtual host level. A section whose base cannot be known
 * (<LocationMatch>, <Location ~>, a wildcard <Location>, <Directory>,
 * <Files>, <Proxy>, their *Match forms, anything unknown, and whatever is
 * nested in them) is refused: every URL it matches would otherwise be keyed
 * as the one configured repository. */
const char *hgs3_config_mapping_base(cmd_parms *cmd, const char **pbase)
{
    const ap_directive_t *d;
    const char *args;
    char *path;
    apr_size_t n;

    *pbase = NULL;
    for (d = cmd->directive ? cmd->directive->parent : NULL; d; d = d->parent) {
        if (!section_is_transparent(d->directive)) {
            break;
        }
    }
    if (!d || !strcasecmp(d->directive, "<VirtualHost")) {
        *pbase = "/";
        return NULL;
    }
    if (strcasecmp(d->directive, "<Location")) {
        return no_base(cmd, d);
    }
    /* parsed as core's <Location> does */
    args = section_args(cmd->temp_pool, d);
    path = ap_getword_conf(cmd->pool, &args);
    if (path[0] != '/' || apr_fnmatch_test(path)) {
        return no_base(cmd, d);
    }
    n = strlen(path);
    while (n > 1 && path[n - 1] == '/') {
        path[--n] = '\0';
    }
    *pbase = path;
    return NULL;
}

/* The endpoint, the public endpoint, region, bucket and addressing
 * together, by the check every request of the S3 client runs
 * (hgs3_s3_config_check): virtual-hosted addressing on an IP address, or
 * with a dotted bucket over https, would otherwise fail every lookup. */
static const char *check_store(apr_pool_t *p, const hgs3_dir_conf *c)
{
    hgs3_s3_config s3;
    const char *msg = NULL, *which = "HgS3CacheEndpoint";
    int path = hgs3_conf_addressing(c) == HGS3_ADDR_PATH;
    apr_status_t rv;

    memset(&s3, 0, sizeof(s3));
    s3.region = hgs3_conf_region(c);
    s3.bucket = c->bucket;
    s3.addressing = path ? HGS3_S3_PATH : HGS3_S3_VIRTUAL;
    s3.endpoint = hgs3_conf_endpoint(p, c);
    rv = hgs3_s3_config_check(&s3, p, &msg);
    if (rv == APR_SUCCESS && c->public_endpoint) {
        which = "HgS3CachePublicEndpoint";
        s3.endpoint = c->public_endpoint;
        rv = hgs3_s3_config_check(&s3, p, &msg);
    }
    if (rv == APR_SUCCESS) {
        return NULL;
    }
    return apr_psprintf(p, "HgS3CacheAddressing %s%s with %s %s and HgS3CacheBucket %s: %s",
                        path ? "path" : "virtual",
                        c->addressing == HGS3_UNSET ? " (the default)" : "", which, s3.endpoint,
                        c->bucket, msg);
}

/* A local-directory store needs no bucket nor credentials (the S3
 * directives are ignored), but the children must be able to write it, and
 * the key prefix must name files under it. */
static const char *check_file_store(apr_pool_t *p, const hgs3_dir_conf *c, const char *dir)
{
    const char *prefix = hgs3_conf_key_prefix(c), *path = NULL;
    hgs3_fstore *fs = NULL;
    char buf[120];
    apr_status_t rv;

    if (hgs3_fstore_create(&fs, p, dir) != APR_SUCCESS ||
        hgs3_fstore_path(&path, fs, p, apr_pstrcat(p, prefix, "0", NULL)) != APR_SUCCESS) {
        return apr_psprintf(p,
                            "HgS3CacheKeyPrefix '%s' cannot name files under HgS3CacheStore "
                            "file:%s (no empty, '.' or '..' segment)",
                            prefix, dir);
    }
    rv = hgs3_spooldir_check_writable(p, dir);
    if (rv == APR_SUCCESS) {
        return NULL;
    }
    return apr_psprintf(p, "HgS3CacheStore file:%s: the directory is not writable by %s (%s)", dir,
                        geteuid() == 0 ? ap_unixd_config.user_name : "this server's user",
                        apr_strerror(rv, buf, sizeof(buf)));
}

static const char *check_enabled_scope(apr_pool_t *p, const hgs3_dir_conf *c)
{
    const char *dir = hgs3_conf_store_dir(c);
    if (!hgs3_conf_enabled(c)) {
        return NULL;
    }
    if (!c->bucket && !dir) {
        return "HgS3Cache on needs HgS3CacheBucket";
    }
    if (!c->repository && !c->repository_root) {
        return "HgS3Cache on needs HgS3CacheRepository or HgS3CacheRepositoryRoot";
    }
    if (hgs3_conf_min_size(c) > hgs3_conf_max_size(c)) {
        return "HgS3CacheMinSize is larger than HgS3CacheMaxSize";
    }
    if (dir) {
        return check_file_store(p, c, dir);
    }
    if ((c->access_key != NULL) != (c->secret_key != NULL)) {
        return "HgS3CacheAccessKeyId and HgS3CacheSecretAccessKey must be given together";
    }
    if (c->session_token && !c->access_key) {
        return "HgS3CacheSessionToken needs HgS3CacheAccessKeyId and HgS3CacheSecretAccessKey";
    }
    if (!c->access_key && !c->creds_file &&
        !(getenv("AWS_ACCESS_KEY_ID") && getenv("AWS_SECRET_ACCESS_KEY"))) {
        return "HgS3Cache on needs credentials: HgS3CacheAccessKeyId and "
               "HgS3CacheSecretAccessKey, HgS3CacheCredentialsFile, or AWS_ACCESS_KEY_ID and "
               "AWS_SECRET_ACCESS_KEY in httpd's environment";
    }
    return check_store(p, c);
}

/* Check each <Location>/<Directory> of server s as it would apply, merged
 * over the server's own defaults. Nested sections merge in sequence at
 * request time; checking each over the server base catches the common
 * mistakes (on without bucket, repository or credentials). */
static int check_sections(apr_pool_t *p, server_rec *s, apr_array_header_t *secs,
                          const hgs3_dir_conf *base)
{
    int i;
    for (i = 0; secs && i < secs->nelts; ++i) {
        ap_conf_vector_t *v = APR_ARRAY_IDX(secs, i, ap_conf_vector_t *);
        hgs3_dir_conf *c = ap_get_module_config(v, &hgs3cache_module);
        const char *err;
        if (!c) {
            continue;
        }
        c = hgs3_config_merge_dir(p, (void *)base, c);
        err = check_enabled_scope(p, c);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                         HGS3LOGNO(00001) "in the section for %s (server %s:%u): %s", c->scope,
                         s->server_hostname ? s->server_hostname : "*", s->port, err);
            return 0;
        }
    }
    return 1;
}

/* An explicitly configured presence provider must be loaded; the default
 * (shmcb) may be absent and then quietly falls back to HEAD lookups. */
static int check_presence(server_rec *s)
{
    hgs3_srv_conf *sc = hgs3_get_srv_conf(s);
    const char *name = sc->presence_provider;

    if (!name || !strcasecmp(name, "none")) {
        return 1;
    }
    if (!ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION)) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                     HGS3LOGNO(00003) "HgS3CachePresence: socache provider '%s' is not loaded "
                                      "(LoadModule socache_%s_module ...), or use 'none'",
                     name, name);
        return 0;
    }
    return 1;
}

int hgs3_config_check(apr_pool_t *p, server_rec *s)
{
    if (!check_presence(s)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (; s; s = s->next) {
        core_server_config *core = ap_get_core_module_config(s->module_config);
        hgs3_dir_conf *base = ap_get_module_config(s->lookup_defaults, &hgs3cache_module);
        const char *err = check_enabled_scope(p, base);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                         HGS3LOGNO(00002) "in server %s:%u: %s",
                         s->server_hostname ? s->server_hostname : "*", s->port, err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!check_sections(p, s, core->sec_url, base) ||
            !check_sections(p, s, core->sec_dir, base)) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}
