/* mod_hgs3cache_config.c: directives, validation, defaults and merging.
 *
 * Every setter validates its argument and returns a message that names the
 * directive, so `apachectl configtest` fails with a clear text. Secrets are
 * never echoed back in a message. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_uri.h>
#include <apr_lib.h>
#include <apr_file_info.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <ap_provider.h>
#include <ap_socache.h>

#include "hgs3_tls.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"

APLOG_USE_MODULE(hgs3cache);

#define HGS3_DEF_MULTIPART ((apr_off_t)64 * 1024 * 1024)
#define HGS3_MIN_MULTIPART ((apr_off_t)5 * 1024 * 1024)

/* ---- create and merge ------------------------------------------------- */

void *hgs3_config_create_dir(apr_pool_t *p, char *dir)
{
    hgs3_dir_conf *c = apr_pcalloc(p, sizeof(*c));
    c->scope = dir ? apr_pstrdup(p, dir) : "server";
    c->enabled = HGS3_UNSET;
    c->addressing = HGS3_UNSET;
    c->min_size = HGS3_UNSET;
    c->max_size = HGS3_UNSET;
    c->memory = HGS3_UNSET;
    c->url_expiry = HGS3_UNSET;
    c->max_age = HGS3_UNSET;
    c->hit_mode = HGS3_UNSET;
    c->share_users = HGS3_UNSET;
    c->collapse = HGS3_UNSET;
    c->collapse_timeout = HGS3_UNSET;
    c->connect_ms = HGS3_UNSET;
    c->lookup_ms = HGS3_UNSET;
    c->header = HGS3_UNSET;
    c->multipart_threshold = HGS3_UNSET;
    /* pointers are NULL = unset */
    return c;
}

#define MERGE_INT(f) m->f = (add->f != HGS3_UNSET) ? add->f : base->f
#define MERGE_PTR(f) m->f = (add->f != NULL) ? add->f : base->f

void *hgs3_config_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    hgs3_dir_conf *base = basev, *add = addv;
    hgs3_dir_conf *m = apr_pcalloc(p, sizeof(*m));

    m->scope = add->scope;
    MERGE_INT(enabled);
    MERGE_PTR(bucket);
    MERGE_PTR(region);
    MERGE_PTR(endpoint);
    MERGE_INT(addressing);
    MERGE_PTR(public_endpoint);
    /* Trust merges as one unit: a scope that names its own CA file or
     * directory trusts that alone, not an outer one besides. */
    if (add->ca_file || add->ca_path) {
        m->ca_file = add->ca_file;
        m->ca_path = add->ca_path;
    } else {
        m->ca_file = base->ca_file;
        m->ca_path = base->ca_path;
    }
    /* Credentials merge as one unit: a scope that names its own key id
     * must not inherit an outer secret or token that belongs to another. */
    if (add->access_key || add->secret_key || add->session_token) {
        m->access_key = add->access_key;
        m->secret_key = add->secret_key;
        m->session_token = add->session_token;
    } else {
        m->access_key = base->access_key;
        m->secret_key = base->secret_key;
        m->session_token = base->session_token;
    }
    if (add->creds_file) {
        m->creds_file = add->creds_file;
        m->creds_profile = add->creds_profile;
    } else {
        m->creds_file = base->creds_file;
        m->creds_profile = base->creds_profile;
    }
    MERGE_PTR(key_prefix);
    MERGE_PTR(key_salt);
    MERGE_PTR(commands);
    /* Repository mapping merges as one unit: an inner HgS3CacheRepository
     * replaces an outer HgS3CacheRepositoryRoot and the other way round. */
    if (add->repo_set) {
        m->repository = add->repository;
        m->repository_root = add->repository_root;
        m->repo_set = 1;
    } else {
        m->repository = base->repository;
        m->repository_root = base->repository_root;
        m->repo_set = base->repo_set;
    }
    MERGE_INT(min_size);
    MERGE_INT(max_size);
    MERGE_INT(memory);
    MERGE_PTR(spool_dir);
    MERGE_INT(url_expiry);
    MERGE_INT(max_age);
    MERGE_INT(hit_mode);
    MERGE_INT(share_users);
    MERGE_INT(collapse);
    MERGE_INT(collapse_timeout);
    /* the two timeouts are set together by one directive */
    if (add->connect_ms != HGS3_UNSET) {
        m->connect_ms = add->connect_ms;
        m->lookup_ms = add->lookup_ms;
    } else {
        m->connect_ms = base->connect_ms;
        m->lookup_ms = base->lookup_ms;
    }
    MERGE_INT(header);
    MERGE_INT(multipart_threshold);
    MERGE_PTR(config_files);
    return m;
}

/* The default HgS3CacheConfigFiles set, made anew with each configuration
 * (in the main server's create_srv, before any request) and shared by every
 * scope that leaves the directive unset. */
static hgs3_conffiles *default_config_files;

static void make_default_config_files(apr_pool_t *p)
{
    static const char *const paths[] = {HGS3_DEF_CONFIG_FILES};
    const char *bad = NULL;
    if (hgs3_conffiles_create(&default_config_files, p, sizeof(paths) / sizeof(paths[0]), paths,
                              &bad) != APR_SUCCESS) {
        default_config_files = NULL;
    }
}

void *hgs3_config_create_srv(apr_pool_t *p, server_rec *s)
{
    hgs3_srv_conf *sc = apr_pcalloc(p, sizeof(*sc));
    if (!s->is_virtual) {
        make_default_config_files(p);
    }
    sc->upload_workers = HGS3_UNSET;
    sc->upload_queue = HGS3_UNSET;
    sc->presence_ttl = HGS3_UNSET;
    sc->breaker_fails = HGS3_UNSET;
    sc->breaker_secs = HGS3_UNSET;
    sc->spool_max = HGS3_UNSET;
    return sc;
}

void *hgs3_config_merge_srv(apr_pool_t *p, void *basev, void *addv)
{
    hgs3_srv_conf *base = basev, *add = addv;
    hgs3_srv_conf *m = apr_pcalloc(p, sizeof(*m));

    MERGE_INT(upload_workers);
    MERGE_INT(upload_queue);
    MERGE_INT(spool_max);
    if (add->presence_provider) {
        m->presence_provider = add->presence_provider;
        m->presence_args = add->presence_args;
        m->presence_ttl = add->presence_ttl;
    } else {
        m->presence_provider = base->presence_provider;
        m->presence_args = base->presence_args;
        m->presence_ttl = base->presence_ttl;
    }
    if (add->breaker_fails != HGS3_UNSET) {
        m->breaker_fails = add->breaker_fails;
        m->breaker_secs = add->breaker_secs;
    } else {
        m->breaker_fails = base->breaker_fails;
        m->breaker_secs = base->breaker_secs;
    }
    return m;
}

/* ---- getters with documented defaults --------------------------------- */

#define DEF(v, d) (((v) == HGS3_UNSET) ? (d) : (v))

int hgs3_conf_enabled(const hgs3_dir_conf *c)
{
    return DEF(c->enabled, 0);
}

const char *hgs3_conf_region(const hgs3_dir_conf *c)
{
    return c->region ? c->region : HGS3_DEF_REGION;
}

const char *hgs3_conf_endpoint(apr_pool_t *p, const hgs3_dir_conf *c)
{
    if (c->endpoint) {
        return c->endpoint;
    }
    return apr_psprintf(p, "https://s3.%s.amazonaws.com", hgs3_conf_region(c));
}

const char *hgs3_conf_public_endpoint(apr_pool_t *p, const hgs3_dir_conf *c)
{
    return c->public_endpoint ? c->public_endpoint : hgs3_conf_endpoint(p, c);
}

hgs3_addressing_e hgs3_conf_addressing(const hgs3_dir_conf *c)
{
    if (c->addressing != HGS3_UNSET) {
        return (hgs3_addressing_e)c->addressing;
    }
    /* AWS itself prefers virtual-hosted; custom endpoints (MinIO, Swift,
     * test servers) rarely have wildcard DNS, so path style there. */
    return c->endpoint ? HGS3_ADDR_PATH : HGS3_ADDR_VIRTUAL;
}

const char *hgs3_conf_key_prefix(const hgs3_dir_conf *c)
{
    return c->key_prefix ? c->key_prefix : HGS3_DEF_KEY_PREFIX;
}

const char *hgs3_conf_key_salt(const hgs3_dir_conf *c)
{
    return c->key_salt ? c->key_salt : "";
}

int hgs3_conf_command_allowed(const hgs3_dir_conf *c, const char *cmd)
{
    int i;
    if (!cmd) {
        return 0;
    }
    if (!c->commands) {
        return strcmp(cmd, "getbundle") == 0;
    }
    for (i = 0; i < c->commands->nelts; ++i) {
        if (strcmp(APR_ARRAY_IDX(c->commands, i, const char *), cmd) == 0) {
            return 1;
        }
    }
    return 0;
}

apr_off_t hgs3_conf_min_size(const hgs3_dir_conf *c)
{
    return DEF(c->min_size, HGS3_DEF_MIN_SIZE);
}

apr_off_t hgs3_conf_max_size(const hgs3_dir_conf *c)
{
    return DEF(c->max_size, HGS3_DEF_MAX_SIZE);
}

apr_off_t hgs3_conf_memory(const hgs3_dir_conf *c)
{
    return DEF(c->memory, HGS3_DEF_MEMORY);
}

const char *hgs3_conf_spool_dir(apr_pool_t *p, const hgs3_dir_conf *c)
{
    (void)p;
    return c->spool_dir ? c->spool_dir : HGS3_DEF_SPOOL_DIR;
}

int hgs3_conf_url_expiry(const hgs3_dir_conf *c)
{
    return DEF(c->url_expiry, HGS3_DEF_URL_EXPIRY);
}

int hgs3_conf_max_age(const hgs3_dir_conf *c)
{
    return DEF(c->max_age, HGS3_DEF_MAX_AGE);
}

hgs3_hit_mode_e hgs3_conf_hit_mode(const hgs3_dir_conf *c)
{
    return (hgs3_hit_mode_e)DEF(c->hit_mode, HGS3_HIT_AUTO);
}

int hgs3_conf_share_users(const hgs3_dir_conf *c)
{
    return DEF(c->share_users, 0);
}

int hgs3_conf_collapse(const hgs3_dir_conf *c)
{
    return DEF(c->collapse, 1);
}

apr_interval_time_t hgs3_conf_collapse_timeout(const hgs3_dir_conf *c)
{
    return apr_time_from_sec(DEF(c->collapse_timeout, 60));
}

int hgs3_conf_connect_ms(const hgs3_dir_conf *c)
{
    return DEF(c->connect_ms, HGS3_DEF_CONNECT_MS);
}

int hgs3_conf_lookup_ms(const hgs3_dir_conf *c)
{
    return DEF(c->lookup_ms, HGS3_DEF_LOOKUP_MS);
}

int hgs3_conf_header(const hgs3_dir_conf *c)
{
    return DEF(c->header, 0);
}

apr_off_t hgs3_conf_multipart_threshold(const hgs3_dir_conf *c)
{
    return DEF(c->multipart_threshold, HGS3_DEF_MULTIPART);
}

hgs3_conffiles *hgs3_conf_config_files(const hgs3_dir_conf *c)
{
    return c->config_files ? c->config_files : default_config_files;
}

int hgs3_srv_upload_workers(const hgs3_srv_conf *sc)
{
    return DEF(sc->upload_workers, HGS3_DEF_UPLOAD_WORKERS);
}

int hgs3_srv_upload_queue(const hgs3_srv_conf *sc)
{
    return DEF(sc->upload_queue, HGS3_DEF_UPLOAD_QUEUE);
}

apr_off_t hgs3_srv_spool_max(const hgs3_srv_conf *sc)
{
    return DEF(sc->spool_max, HGS3_DEF_SPOOL_MAX);
}

int hgs3_srv_presence_ttl(const hgs3_srv_conf *sc)
{
    return DEF(sc->presence_ttl, HGS3_DEF_PRESENCE_TTL);
}

const char *hgs3_srv_presence_provider(const hgs3_srv_conf *sc)
{
    return sc->presence_provider ? sc->presence_provider : HGS3_DEF_PRESENCE;
}

int hgs3_srv_breaker_fails(const hgs3_srv_conf *sc)
{
    return DEF(sc->breaker_fails, HGS3_DEF_BREAKER_FAILS);
}

int hgs3_srv_breaker_secs(const hgs3_srv_conf *sc)
{
    return DEF(sc->breaker_secs, HGS3_DEF_BREAKER_SECS);
}

hgs3_dir_conf *hgs3_get_dir_conf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &hgs3cache_module);
}

hgs3_srv_conf *hgs3_get_srv_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &hgs3cache_module);
}

/* ---- value parsers ----------------------------------------------------- */

/* Sizes: a decimal count of bytes with an optional binary suffix K, M, G or
 * T (KiB..TiB; "k", "KB", "KiB" are accepted alike). */
static const char *parse_size(apr_pool_t *p, const char *name, const char *arg, apr_off_t min,
                              apr_off_t max, apr_off_t *out)
{
    char *end = NULL;
    apr_int64_t v, mul = 1;
    const char *sfx;

    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (end == arg || v < 0 || errno) {
        goto bad;
    }
    sfx = end;
    switch (apr_toupper(*sfx)) {
    case '\0':
        break;
    case 'K':
        mul = 1024;
        break;
    case 'M':
        mul = 1024 * 1024;
        break;
    case 'G':
        mul = (apr_int64_t)1024 * 1024 * 1024;
        break;
    case 'T':
        mul = (apr_int64_t)1024 * 1024 * 1024 * 1024;
        break;
    default:
        goto bad;
    }
    if (*sfx) {
        ++sfx;
        if (apr_toupper(*sfx) == 'I') {
            ++sfx;
        }
        if (apr_toupper(*sfx) == 'B') {
            ++sfx;
        }
        if (*sfx) {
            goto bad;
        }
    }
    if (v > APR_INT64_MAX / mul) {
        goto range;
    }
    v *= mul;
    if (v < min || v > max) {
        goto range;
    }
    *out = (apr_off_t)v;
    return NULL;
bad:
    return apr_psprintf(p, "%s: '%s' is not a size in bytes (e.g. 65536, 64K, 1M, 4G)", name, arg);
range:
    return apr_psprintf(p,
                        "%s: '%s' is out of range (%" APR_OFF_T_FMT " to %" APR_OFF_T_FMT " bytes)",
                        name, arg, min, max);
}

/* A whole number of seconds or milliseconds within [min, max]. */
static const char *parse_int(apr_pool_t *p, const char *name, const char *what, const char *arg,
                             long min, long max, int *out)
{
    char *end = NULL;
    apr_int64_t v;

    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || errno) {
        return apr_psprintf(p, "%s: '%s' is not a whole number of %s", name, arg, what);
    }
    if (v < min || v > max) {
        return apr_psprintf(p, "%s: %s must be between %ld and %ld, not '%s'", name, what, min, max,
                            arg);
    }
    *out = (int)v;
    return NULL;
}

static const char *parse_onoff(apr_pool_t *p, const char *name, const char *arg, int *out)
{
    if (!strcasecmp(arg, "on")) {
        *out = 1;
    } else if (!strcasecmp(arg, "off")) {
        *out = 0;
    } else {
        return apr_psprintf(p, "%s: expected 'on' or 'off', not '%s'", name, arg);
    }
    return NULL;
}

/* An http(s) URL naming a host and optional port and base path, without
 * query, fragment or user info (credentials belong in their directives). */
static const char *check_endpoint(apr_pool_t *p, const char *name, const char *arg)
{
    apr_uri_t uri;

    if (apr_uri_parse(p, arg, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname ||
        !*uri.hostname) {
        return apr_psprintf(p, "%s: '%s' is not a URL like https://s3.example.com[:port]", name,
                            arg);
    }
    if (strcasecmp(uri.scheme, "http") && strcasecmp(uri.scheme, "https")) {
        return apr_psprintf(p, "%s: scheme must be http or https, not '%s'", name, uri.scheme);
    }
    if (uri.user || uri.password) {
        return apr_psprintf(p,
                            "%s: the URL must not contain user info; use "
                            "HgS3CacheAccessKeyId/HgS3CacheSecretAccessKey",
                            name);
    }
    if (uri.query || uri.fragment) {
        return apr_psprintf(p, "%s: the URL must not have a query or fragment", name);
    }
    if (uri.port_str && (!uri.port || !*uri.port_str)) {
        return apr_psprintf(p, "%s: invalid port in '%s'", name, arg);
    }
    return NULL;
}

/* S3 bucket naming rules: 3-63 chars of lowercase letters, digits, dots and
 * hyphens, starting and ending with a letter or digit. */
static const char *check_bucket(apr_pool_t *p, const char *arg)
{
    apr_size_t i, n = strlen(arg);
    if (n < 3 || n > 63) {
        return apr_psprintf(p, "HgS3CacheBucket: '%s' must be 3 to 63 characters long", arg);
    }
    for (i = 0; i < n; ++i) {
        char ch = arg[i];
        if (!(apr_islower(ch) || apr_isdigit(ch) || ch == '.' || ch == '-')) {
            return apr_psprintf(p,
                                "HgS3CacheBucket: '%s' may only contain lowercase letters, "
                                "digits, '.' and '-'",
                                arg);
        }
    }
    if (!apr_isalnum(arg[0]) || !apr_isalnum(arg[n - 1])) {
        return apr_psprintf(p, "HgS3CacheBucket: '%s' must begin and end with a letter or digit",
                            arg);
    }
    return NULL;
}

/* A token of visible ASCII without spaces: key ids, regions, commands. */
static int is_token(const char *s, const char *extra)
{
    if (!*s) {
        return 0;
    }
    for (; *s; ++s) {
        if (!(apr_isalnum(*s) || (extra && strchr(extra, *s)))) {
            return 0;
        }
    }
    return 1;
}

static int is_printable(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; ++s) {
        if (!apr_isgraph(*s)) {
            return 0;
        }
    }
    return 1;
}

static const char *check_abs_dir(apr_pool_t *p, const char *name, const char *arg)
{
    apr_finfo_t fi;
    if (!ap_os_is_path_absolute(p, arg)) {
        return apr_psprintf(p, "%s: '%s' must be an absolute path", name, arg);
    }
    if (apr_stat(&fi, arg, APR_FINFO_TYPE, p) != APR_SUCCESS || fi.filetype != APR_DIR) {
        return apr_psprintf(p, "%s: '%s' is not an existing directory", name, arg);
    }
    return NULL;
}

/* ---- setters ------------------------------------------------------------- */

#define DIRCONF(mc) ((hgs3_dir_conf *)(mc))
#define SRVCONF(cmd)                                                                               \
    ((hgs3_srv_conf *)ap_get_module_config((cmd)->server->module_config, &hgs3cache_module))

static const char *set_enabled(cmd_parms *cmd, void *mc, const char *arg)
{
    return parse_onoff(cmd->pool, cmd->cmd->name, arg, &DIRCONF(mc)->enabled);
}

static const char *set_bucket(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *err = check_bucket(cmd->pool, arg);
    if (!err) {
        DIRCONF(mc)->bucket = arg;
    }
    return err;
}

static const char *set_region(cmd_parms *cmd, void *mc, const char *arg)
{
    if (!is_token(arg, "-") || strlen(arg) > 64) {
        return apr_psprintf(cmd->pool, "HgS3CacheRegion: '%s' is not a region name like us-east-1",
                            arg);
    }
    DIRCONF(mc)->region = arg;
    return NULL;
}

static const char *set_endpoint(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *err = check_endpoint(cmd->pool, cmd->cmd->name, arg);
    if (!err) {
        DIRCONF(mc)->endpoint = arg;
    }
    return err;
}

static const char *set_public_endpoint(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *err = check_endpoint(cmd->pool, cmd->cmd->name, arg);
    if (!err) {
        DIRCONF(mc)->public_endpoint = arg;
    }
    return err;
}

/* Trust for an https store. Checked here so that configtest fails on a CA
 * file that cannot be read, is empty or holds no certificate. There is no
 * directive that turns verification off, by design. */
static const char *set_ca_file(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg), *msg;

    if (!path) {
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    }
    if (hgs3_tls_check_ca_file(cmd->pool, path, &msg) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, msg);
    }
    DIRCONF(mc)->ca_file = path;
    return NULL;
}

static const char *set_ca_path(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg), *msg;

    if (!path) {
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    }
    if (hgs3_tls_check_ca_path(cmd->pool, path, &msg) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, msg);
    }
    DIRCONF(mc)->ca_path = path;
    return NULL;
}

static const char *set_addressing(cmd_parms *cmd, void *mc, const char *arg)
{
    if (!strcasecmp(arg, "path")) {
        DIRCONF(mc)->addressing = HGS3_ADDR_PATH;
    } else if (!strcasecmp(arg, "virtual")) {
        DIRCONF(mc)->addressing = HGS3_ADDR_VIRTUAL;
    } else {
        return apr_psprintf(cmd->pool,
                            "HgS3CacheAddressing: expected 'path' or 'virtual', not "
                            "'%s'",
                            arg);
    }
    return NULL;
}

static const char *set_access_key(cmd_parms *cmd, void *mc, const char *arg)
{
    (void)cmd;
    /* AWS key ids are [A-Z0-9]; Swift's tempauth uses "account:user". */
    if (!is_printable(arg) || strlen(arg) > 256) {
        return "HgS3CacheAccessKeyId: the key id must be non-empty visible characters without "
               "spaces";
    }
    DIRCONF(mc)->access_key = arg;
    return NULL;
}

static const char *set_secret_key(cmd_parms *cmd, void *mc, const char *arg)
{
    (void)cmd;
    /* never echo the value in a message */
    if (!is_printable(arg) || strlen(arg) > 1024) {
        return "HgS3CacheSecretAccessKey: the secret must be non-empty visible characters "
               "without spaces (value not shown)";
    }
    DIRCONF(mc)->secret_key = arg;
    return NULL;
}

static const char *set_session_token(cmd_parms *cmd, void *mc, const char *arg)
{
    (void)cmd;
    if (!is_printable(arg) || strlen(arg) > 8192) {
        return "HgS3CacheSessionToken: the token must be non-empty visible characters without "
               "spaces (value not shown)";
    }
    DIRCONF(mc)->session_token = arg;
    return NULL;
}

static const char *set_creds_file(cmd_parms *cmd, void *mc, const char *path, const char *profile)
{
    apr_finfo_t fi;
    const char *fpath = ap_server_root_relative(cmd->pool, path);

    if (!fpath) {
        return apr_psprintf(cmd->pool, "HgS3CacheCredentialsFile: invalid path '%s'", path);
    }
    if (apr_stat(&fi, fpath, APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS || fi.filetype != APR_REG) {
        return apr_psprintf(cmd->pool, "HgS3CacheCredentialsFile: '%s' is not a readable file",
                            fpath);
    }
    if (profile && !is_token(profile, "-_.@+=,")) {
        return apr_psprintf(cmd->pool, "HgS3CacheCredentialsFile: invalid profile name '%s'",
                            profile);
    }
    DIRCONF(mc)->creds_file = fpath;
    DIRCONF(mc)->creds_profile = profile ? profile : "default";
    return NULL;
}

static const char *set_key_prefix(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *s;
    if (strlen(arg) > 512 || *arg == '/') {
        return "HgS3CacheKeyPrefix: the prefix must not start with '/' and be at most 512 "
               "characters";
    }
    for (s = arg; *s; ++s) {
        if (!apr_isgraph(*s)) {
            return apr_psprintf(
                cmd->pool, "HgS3CacheKeyPrefix: '%s' contains a space or control character", arg);
        }
    }
    DIRCONF(mc)->key_prefix = arg;
    return NULL;
}

static const char *set_key_salt(cmd_parms *cmd, void *mc, const char *arg)
{
    (void)cmd;
    DIRCONF(mc)->key_salt = arg;
    return NULL;
}

static const char *set_commands(cmd_parms *cmd, void *mc, int argc, char *const argv[])
{
    hgs3_dir_conf *c = DIRCONF(mc);
    int i;

    if (argc < 1) {
        return "HgS3CacheCommands: name at least one wire command, e.g. getbundle";
    }
    c->commands = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (i = 0; i < argc; ++i) {
        if (!is_token(argv[i], "_") || strlen(argv[i]) > 64) {
            return apr_psprintf(cmd->pool, "HgS3CacheCommands: '%s' is not a wire command name",
                                argv[i]);
        }
        APR_ARRAY_PUSH(c->commands, const char *) = argv[i];
    }
    return NULL;
}

static const char *set_repository(cmd_parms *cmd, void *mc, const char *arg)
{
    apr_finfo_t fi;
    const char *err = check_abs_dir(cmd->pool, cmd->cmd->name, arg);
    if (err) {
        return err;
    }
    if (apr_stat(&fi, apr_pstrcat(cmd->pool, arg, "/.hg/requires", NULL), APR_FINFO_TYPE,
                 cmd->pool) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool,
                            "HgS3CacheRepository: '%s' is not a Mercurial repository (no "
                            ".hg/requires)",
                            arg);
    }
    DIRCONF(mc)->repository = arg;
    DIRCONF(mc)->repository_root = NULL;
    DIRCONF(mc)->repo_set = 1;
    return NULL;
}

static const char *set_repository_root(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *err = check_abs_dir(cmd->pool, cmd->cmd->name, arg);
    if (err) {
        return err;
    }
    DIRCONF(mc)->repository_root = arg;
    DIRCONF(mc)->repository = NULL;
    DIRCONF(mc)->repo_set = 1;
    return NULL;
}

static const char *set_min_size(cmd_parms *cmd, void *mc, const char *arg)
{
    return parse_size(cmd->pool, cmd->cmd->name, arg, 0, APR_INT64_MAX, &DIRCONF(mc)->min_size);
}

static const char *set_max_size(cmd_parms *cmd, void *mc, const char *arg)
{
    /* S3 objects are at most 5 TiB */
    return parse_size(cmd->pool, cmd->cmd->name, arg, 1, (apr_off_t)5 << 40,
                      &DIRCONF(mc)->max_size);
}

static const char *set_memory(cmd_parms *cmd, void *mc, const char *arg)
{
    return parse_size(cmd->pool, cmd->cmd->name, arg, 0, (apr_off_t)1 << 32, &DIRCONF(mc)->memory);
}

static const char *set_multipart(cmd_parms *cmd, void *mc, const char *arg)
{
    return parse_size(cmd->pool, cmd->cmd->name, arg, HGS3_MIN_MULTIPART, (apr_off_t)5 << 30,
                      &DIRCONF(mc)->multipart_threshold);
}

static const char *set_spool_dir(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *err = check_abs_dir(cmd->pool, cmd->cmd->name, arg);
    if (!err) {
        DIRCONF(mc)->spool_dir = arg;
    }
    return err;
}

/* Absolute paths, a wildcard only in the last component (see
 * hgs3_conffiles.h); a missing file is fine. "none" alone: no files. */
static const char *set_config_files(cmd_parms *cmd, void *mc, int argc, char *const argv[])
{
    const char *bad = NULL;

    if (argc < 1) {
        return "HgS3CacheConfigFiles: name at least one file (e.g. /srv/hg/hgweb.config), or "
               "'none'";
    }
    if (argc == 1 && !strcasecmp(argv[0], "none")) {
        argc = 0;
    }
    if (hgs3_conffiles_create(&DIRCONF(mc)->config_files, cmd->pool, argc,
                              (const char *const *)argv, &bad) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool,
                            "HgS3CacheConfigFiles: '%s' must be an absolute file path; a "
                            "wildcard (*, ?, [...]) may only be in its last component",
                            bad ? bad : "");
    }
    return NULL;
}

static const char *set_url_expiry(cmd_parms *cmd, void *mc, const char *arg)
{
    return parse_int(cmd->pool, cmd->cmd->name, "seconds", arg, 1, HGS3_MAX_URL_EXPIRY,
                     &DIRCONF(mc)->url_expiry);
}

static const char *set_max_age(cmd_parms *cmd, void *mc, const char *arg)
{
    return parse_int(cmd->pool, cmd->cmd->name, "seconds", arg, 0, 0x7fffffff,
                     &DIRCONF(mc)->max_age);
}

static const char *set_hit_mode(cmd_parms *cmd, void *mc, const char *arg)
{
    hgs3_dir_conf *c = DIRCONF(mc);
    if (!strcasecmp(arg, "auto")) {
        c->hit_mode = HGS3_HIT_AUTO;
    } else if (!strcasecmp(arg, "redirect")) {
        c->hit_mode = HGS3_HIT_REDIRECT;
    } else if (!strcasecmp(arg, "stream")) {
        c->hit_mode = HGS3_HIT_STREAM;
    } else {
        return apr_psprintf(cmd->pool,
                            "HgS3CacheHitMode: expected auto, redirect or stream, not '%s'", arg);
    }
    return NULL;
}

static const char *set_collapse(cmd_parms *cmd, void *mc, const char *arg)
{
    return parse_onoff(cmd->pool, cmd->cmd->name, arg, &DIRCONF(mc)->collapse);
}

static const char *set_collapse_timeout(cmd_parms *cmd, void *mc, const char *arg)
{
    return parse_int(cmd->pool, cmd->cmd->name, "seconds", arg, 1, 86400,
                     &DIRCONF(mc)->collapse_timeout);
}

static const char *set_share_users(cmd_parms *cmd, void *mc, const char *arg)
{
    return parse_onoff(cmd->pool, cmd->cmd->name, arg, &DIRCONF(mc)->share_users);
}

static const char *set_timeout(cmd_parms *cmd, void *mc, const char *c_ms, const char *l_ms)
{
    hgs3_dir_conf *c = DIRCONF(mc);
    int conn = 0, lookup = 0;
    const char *err;

    err = parse_int(cmd->pool, cmd->cmd->name, "milliseconds (CONNECT_MS)", c_ms, 1, 600000, &conn);
    if (err) {
        return err;
    }
    if (!l_ms) {
        return "HgS3CacheTimeout: expected two values, CONNECT_MS LOOKUP_MS (e.g. 1000 2000)";
    }
    err =
        parse_int(cmd->pool, cmd->cmd->name, "milliseconds (LOOKUP_MS)", l_ms, 1, 600000, &lookup);
    if (err) {
        return err;
    }
    if (lookup < conn) {
        return apr_psprintf(cmd->pool,
                            "HgS3CacheTimeout: LOOKUP_MS (%d) must not be less than CONNECT_MS "
                            "(%d)",
                            lookup, conn);
    }
    c->connect_ms = conn;
    c->lookup_ms = lookup;
    return NULL;
}

static const char *set_header(cmd_parms *cmd, void *mc, const char *arg)
{
    return parse_onoff(cmd->pool, cmd->cmd->name, arg, &DIRCONF(mc)->header);
}

static const char *set_upload_workers(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY | NOT_IN_VIRTUALHOST);
    (void)mc;
    if (err) {
        return err;
    }
    return parse_int(cmd->pool, cmd->cmd->name, "threads", arg, 1, 64,
                     &SRVCONF(cmd)->upload_workers);
}

static const char *set_upload_queue(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY | NOT_IN_VIRTUALHOST);
    (void)mc;
    if (err) {
        return err;
    }
    return parse_int(cmd->pool, cmd->cmd->name, "queued uploads", arg, 1, 4096,
                     &SRVCONF(cmd)->upload_queue);
}

static const char *set_spool_max(cmd_parms *cmd, void *mc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY | NOT_IN_VIRTUALHOST);
    (void)mc;
    if (err) {
        return err;
    }
    return parse_size(cmd->pool, cmd->cmd->name, arg, 1, (apr_off_t)1 << 50,
                      &SRVCONF(cmd)->spool_max);
}

static const char *set_presence(cmd_parms *cmd, void *mc, const char *spec, const char *ttl)
{
    hgs3_srv_conf *sc = SRVCONF(cmd);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY | NOT_IN_VIRTUALHOST);
    const char *colon;
    int t = HGS3_DEF_PRESENCE_TTL;

    (void)mc;
    if (err) {
        return err;
    }
    colon = strchr(spec, ':');
    sc->presence_provider = colon ? apr_pstrndup(cmd->pool, spec, colon - spec) : spec;
    sc->presence_args = colon ? colon + 1 : NULL;
    if (!is_token(sc->presence_provider, "_-")) {
        return apr_psprintf(cmd->pool, "HgS3CachePresence: '%s' is not a provider name", spec);
    }
    if (ttl) {
        err = parse_int(cmd->pool, cmd->cmd->name, "seconds (TTL)", ttl, 1, 86400 * 30, &t);
        if (err) {
            return err;
        }
    }
    sc->presence_ttl = t;
    /* Whether the provider exists is checked in post_config, when all
     * modules (mod_socache_*) are loaded. */
    return NULL;
}

static const char *set_breaker(cmd_parms *cmd, void *mc, const char *fails, const char *secs)
{
    hgs3_srv_conf *sc = SRVCONF(cmd);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY | NOT_IN_VIRTUALHOST);
    (void)mc;
    if (err) {
        return err;
    }
    err = parse_int(cmd->pool, cmd->cmd->name, "consecutive failures", fails, 1, 1000,
                    &sc->breaker_fails);
    if (!err && !secs) {
        err = "HgS3CacheBreaker: expected two values, FAILURES SECONDS (e.g. 3 30)";
    }
    if (!err) {
        err = parse_int(cmd->pool, cmd->cmd->name, "seconds", secs, 1, 86400, &sc->breaker_secs);
    }
    return err;
}

#define DIR_CMD (RSRC_CONF | ACCESS_CONF)

const command_rec hgs3_config_cmds[] = {
    AP_INIT_TAKE1("HgS3Cache", set_enabled, NULL, DIR_CMD,
                  "on|off: cache hgweb responses in S3 for this scope (default off)"),
    AP_INIT_TAKE1("HgS3CacheBucket", set_bucket, NULL, DIR_CMD,
                  "NAME: the bucket that holds cached responses (required when on)"),
    AP_INIT_TAKE1("HgS3CacheRegion", set_region, NULL, DIR_CMD,
                  "REGION: SigV4 signing region (default us-east-1)"),
    AP_INIT_TAKE1("HgS3CacheEndpoint", set_endpoint, NULL, DIR_CMD,
                  "URL: store endpoint httpd uses for HEAD/PUT/GET "
                  "(default https://s3.REGION.amazonaws.com)"),
    AP_INIT_TAKE1("HgS3CacheAddressing", set_addressing, NULL, DIR_CMD,
                  "path|virtual: bucket in the path or in the host name "
                  "(default virtual on AWS, path with HgS3CacheEndpoint)"),
    AP_INIT_TAKE1("HgS3CachePublicEndpoint", set_public_endpoint, NULL, DIR_CMD,
                  "URL: store endpoint clients reach, used in presigned redirects "
                  "(default HgS3CacheEndpoint)"),
    AP_INIT_TAKE1("HgS3CacheCAFile", set_ca_file, NULL, DIR_CMD,
                  "PATH: PEM bundle of the CAs that verify an https store (default the system "
                  "bundle)"),
    AP_INIT_TAKE1("HgS3CacheCAPath", set_ca_path, NULL, DIR_CMD,
                  "DIR: hashed directory of the CAs that verify an https store (default the "
                  "system's)"),
    AP_INIT_TAKE1("HgS3CacheAccessKeyId", set_access_key, NULL, DIR_CMD,
                  "ID: static access key id"),
    AP_INIT_TAKE1("HgS3CacheSecretAccessKey", set_secret_key, NULL, DIR_CMD,
                  "KEY: static secret access key (never logged)"),
    AP_INIT_TAKE1("HgS3CacheSessionToken", set_session_token, NULL, DIR_CMD,
                  "TOKEN: session token for temporary credentials (never logged)"),
    AP_INIT_TAKE12("HgS3CacheCredentialsFile", set_creds_file, NULL, DIR_CMD,
                   "PATH [PROFILE]: AWS shared credentials file and profile (default profile "
                   "'default'); re-read when it changes"),
    AP_INIT_TAKE1("HgS3CacheKeyPrefix", set_key_prefix, NULL, DIR_CMD,
                  "PREFIX: object name prefix (default hgcache/)"),
    AP_INIT_TAKE1("HgS3CacheKeySalt", set_key_salt, NULL, DIR_CMD,
                  "STRING: mixed into every key; change it to invalidate everything"),
    AP_INIT_TAKE_ARGV("HgS3CacheCommands", set_commands, NULL, DIR_CMD,
                      "CMD...: wire commands that may be cached (default getbundle)"),
    AP_INIT_TAKE1("HgS3CacheRepository", set_repository, NULL, DIR_CMD,
                  "DIR: the Mercurial repository served at this location"),
    AP_INIT_TAKE1("HgS3CacheRepositoryRoot", set_repository_root, NULL, DIR_CMD,
                  "DIR: a collection; the path below the location names a repository under DIR"),
    AP_INIT_TAKE1("HgS3CacheMinSize", set_min_size, NULL, DIR_CMD,
                  "BYTES: smaller responses are not stored (default 64K)"),
    AP_INIT_TAKE1("HgS3CacheMaxSize", set_max_size, NULL, DIR_CMD,
                  "BYTES: larger responses are not stored (default 4G)"),
    AP_INIT_TAKE1("HgS3CacheMemory", set_memory, NULL, DIR_CMD,
                  "BYTES: response bytes held in memory before spilling to disk (default 1M)"),
    AP_INIT_TAKE1("HgS3CacheSpoolDir", set_spool_dir, NULL, DIR_CMD,
                  "DIR: where spools spill to disk (default " HGS3_DEF_SPOOL_DIR ")"),
    AP_INIT_TAKE1("HgS3CacheMultipartThreshold", set_multipart, NULL, DIR_CMD,
                  "BYTES: bodies above this are uploaded as multipart, in parts of this size "
                  "(default 64M, at least 5M)"),
    AP_INIT_TAKE_ARGV("HgS3CacheConfigFiles", set_config_files, NULL, DIR_CMD,
                      "PATH...: files whose change changes every key here, e.g. hgweb.config "
                      "(default /etc/mercurial/hgrc and the .rc files of /etc/mercurial/hgrc.d); "
                      "'none' for no files"),
    AP_INIT_TAKE1("HgS3CacheURLExpiry", set_url_expiry, NULL, DIR_CMD,
                  "SECONDS: presigned URL lifetime, 1 to 604800 (default 300)"),
    AP_INIT_TAKE1("HgS3CacheMaxAge", set_max_age, NULL, DIR_CMD,
                  "SECONDS: stored objects older than this are regenerated (default 0 = no "
                  "limit)"),
    AP_INIT_TAKE1("HgS3CacheHitMode", set_hit_mode, NULL, DIR_CMD,
                  "auto|redirect|stream: how hits are answered (default auto)"),
    AP_INIT_TAKE1("HgS3CacheCollapse", set_collapse, NULL, DIR_CMD,
                  "on|off: concurrent misses of a key follow the first one's generation "
                  "(default on)"),
    AP_INIT_TAKE1("HgS3CacheCollapseTimeout", set_collapse_timeout, NULL, DIR_CMD,
                  "SECONDS: a follower waits this long without progress, 1 to 86400 "
                  "(default 60)"),
    AP_INIT_TAKE1("HgS3CacheShareAcrossUsers", set_share_users, NULL, DIR_CMD,
                  "on|off: leave the authenticated user out of the key (default off)"),
    AP_INIT_TAKE12("HgS3CacheTimeout", set_timeout, NULL, DIR_CMD,
                   "CONNECT_MS LOOKUP_MS: bounds for talking to the store on the request path "
                   "(default 1000 2000)"),
    AP_INIT_TAKE1("HgS3CacheHeader", set_header, NULL, DIR_CMD,
                  "on|off: add X-HgS3Cache: <outcome> to responses (default off)"),
    AP_INIT_TAKE1("HgS3CacheUploadWorkers", set_upload_workers, NULL, RSRC_CONF,
                  "N: upload threads per child process (server config; default 2)"),
    AP_INIT_TAKE1("HgS3CacheUploadQueue", set_upload_queue, NULL, RSRC_CONF,
                  "N: queued uploads per child before new ones are dropped (server config; "
                  "default 16)"),
    AP_INIT_TAKE1("HgS3CacheSpoolMax", set_spool_max, NULL, RSRC_CONF,
                  "BYTES: all captures in flight on the host together; beyond it a response "
                  "is not stored (server config; default 8G)"),
    AP_INIT_TAKE12("HgS3CachePresence", set_presence, NULL, RSRC_CONF,
                   "PROVIDER[:ARGS] [TTL]: mod_socache provider remembering stored keys, or "
                   "'none' (server config; default shmcb 60)"),
    AP_INIT_TAKE12("HgS3CacheBreaker", set_breaker, NULL, RSRC_CONF,
                   "FAILURES SECONDS: after this many consecutive store failures, skip lookups "
                   "for this long (server config; default 3 30)"),
    {NULL}};

/* ---- whole-configuration checks ------------------------------------------ */

static const char *check_enabled_scope(apr_pool_t *p, const hgs3_dir_conf *c)
{
    if (!hgs3_conf_enabled(c)) {
        return NULL;
    }
    if (!c->bucket) {
        return "HgS3Cache on needs HgS3CacheBucket";
    }
    if (!c->repo_set) {
        return "HgS3Cache on needs HgS3CacheRepository or HgS3CacheRepositoryRoot";
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
    if (hgs3_conf_min_size(c) > hgs3_conf_max_size(c)) {
        return "HgS3CacheMinSize is larger than HgS3CacheMaxSize";
    }
    if (hgs3_conf_addressing(c) == HGS3_ADDR_VIRTUAL && strchr(c->bucket, '.') &&
        !strncasecmp(hgs3_conf_endpoint(p, c), "https:", 6)) {
        return "HgS3CacheBucket: a bucket name with '.' cannot be used with virtual-hosted "
               "addressing over https (TLS names do not match); use HgS3CacheAddressing path";
    }
    return NULL;
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
