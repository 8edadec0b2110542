/* mod_hgs3cache_config.c: the directive table, and create, merge and the
 * defaults as loops over it.
 *
 * Each directive is one row of hgs3_config_cmds: a command_rec whose
 * cmd_data is an hgs3_conf_row (src/hgs3_conftab.h) saying how its value
 * is parsed (the parse function is its kind), which fields it sets, their
 * limits and defaults, and its merge group. Every message names the
 * directive, so `apachectl configtest` fails with a clear text; secrets
 * are never echoed.
 * The checks that need the whole configuration are in mod_hgs3cache_check.c. */
#include <stddef.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_file_info.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "hgs3_conftab.h"
#include "hgs3_inline.h"
#include "hgs3_s3.h"
#include "hgs3_tls.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"

APLOG_USE_MODULE(hgs3cache);

hgs3_dir_conf hgs3_dir_defaults;
hgs3_srv_conf hgs3_srv_defaults;

#define DF(fld) HGS3_FIELD(hgs3_dir_conf, fld)
#define SF(fld) HGS3_FIELD(hgs3_srv_conf, fld)
#define AT      HGS3_FIELD_AT
/* The kinds of value: those of the core, and those below that need httpd. */
#define K_INT      hgs3_conf_parse_int
#define K_PAIR     hgs3_conf_parse_pair
#define K_SIZE     hgs3_conf_parse_size
#define K_ENUM     hgs3_conf_parse_enum
#define K_STRING   hgs3_conf_parse_string
#define K_LIST     hgs3_conf_parse_list
#define ROW_OF(cr) ((const hgs3_conf_row *)(cr)->cmd_data)
#define IS_SRV(cr) ((cr)->req_override == RSRC_CONF)
#define NAME       (ctx->name)
#define CMD        ((cmd_parms *)ctx->host)

/* ---- create, defaults and merge: loops over the table --------------------- */

static void init_all(void *conf, int srv, int defaults)
{
    const command_rec *cr;
    for (cr = hgs3_config_cmds; cr->name; ++cr) {
        if (IS_SRV(cr) == srv) {
            hgs3_conf_init(conf, ROW_OF(cr), defaults);
        }
    }
}

/* A list's default goes through its own parser, from the words of sdef. */
static void list_defaults(apr_pool_t *p)
{
    const command_rec *cr;
    for (cr = hgs3_config_cmds; cr->name; ++cr) {
        if (cr->args_how == TAKE_ARGV && ROW_OF(cr)->sdef) {
            hgs3_conf_ctx ctx = {p, cr->name, NULL};
            char **argv = NULL;
            int argc = 0;
            apr_tokenize_to_argv(ROW_OF(cr)->sdef, &argv, p);
            while (argv[argc]) {
                ++argc;
            }
            hgs3_conf_init(&hgs3_dir_defaults, ROW_OF(cr), 0);
            ROW_OF(cr)->parse(&ctx, ROW_OF(cr), &hgs3_dir_defaults, argc,
                              (const char *const *)argv);
        }
    }
}

void *hgs3_config_create_dir(apr_pool_t *p, char *dir)
{
    hgs3_dir_conf *c = apr_pcalloc(p, sizeof(*c));
    c->scope = dir ? apr_pstrdup(p, dir) : "server";
    init_all(c, 0, 0);
    return c;
}

/* The main server's configuration is created first, before any directive
 * is read: the defaults are filled then, anew with each configuration (the
 * lists live in its pool). */
void *hgs3_config_create_srv(apr_pool_t *p, server_rec *s)
{
    hgs3_srv_conf *sc = apr_pcalloc(p, sizeof(*sc));
    if (!s->is_virtual) {
        init_all(&hgs3_dir_defaults, 0, 1);
        init_all(&hgs3_srv_defaults, 1, 1);
        list_defaults(p);
    }
    init_all(sc, 1, 0);
    return sc;
}

/* Inner over outer, one unit at a time: a row with its fields, or a whole
 * group when the inner scope sets any row of it. */
static void merge_all(void *m, const void *base, const void *add, int srv)
{
    const command_rec *cr;
    unsigned groups = 0;

    for (cr = hgs3_config_cmds; cr->name; ++cr) {
        if (IS_SRV(cr) == srv && ROW_OF(cr)->group && hgs3_conf_given(add, ROW_OF(cr))) {
            groups |= 1u << ROW_OF(cr)->group;
        }
    }
    for (cr = hgs3_config_cmds; cr->name; ++cr) {
        const hgs3_conf_row *row = ROW_OF(cr);
        int inner = row->group ? !!(groups & (1u << row->group)) : hgs3_conf_given(add, row);
        if (IS_SRV(cr) == srv) {
            hgs3_conf_copy(m, inner ? add : base, row);
        }
    }
}

void *hgs3_config_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    hgs3_dir_conf *m = apr_pcalloc(p, sizeof(*m)), *add = addv;
    m->scope = add->scope;
    merge_all(m, basev, addv, 0);
    m->locs = add->locs ? add->locs : ((hgs3_dir_conf *)basev)->locs;
    return m;
}

void *hgs3_config_merge_srv(apr_pool_t *p, void *basev, void *addv)
{
    hgs3_srv_conf *m = apr_pcalloc(p, sizeof(*m));
    merge_all(m, basev, addv, 1);
    return m;
}

/* ---- defaults that depend on other fields --------------------------------- */

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

int hgs3_conf_command_allowed(const hgs3_dir_conf *c, const char *cmd)
{
    const apr_array_header_t *cmds = HGS3_PTR(c, hgs3_dir_defaults, commands);
    int i;
    for (i = 0; cmd && cmds && i < cmds->nelts; ++i) {
        if (strcmp(APR_ARRAY_IDX(cmds, i, const char *), cmd) == 0) {
            return 1;
        }
    }
    return 0;
}

hgs3_dir_conf *hgs3_get_dir_conf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &hgs3cache_module);
}

hgs3_srv_conf *hgs3_get_srv_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &hgs3cache_module);
}

/* ---- the kinds that need httpd ------------------------------------------- */

#define PARSER(name)                                                                               \
    static const char *name(const hgs3_conf_ctx *ctx, const hgs3_conf_row *row, void *conf,        \
                            int argc, const char *const *argv)

/* A path relative to ServerRoot, checked by row->check. */
PARSER(K_PATH)
{
    const char *path = ap_server_root_relative(ctx->p, argv[0]);
    if (!path) {
        return apr_psprintf(ctx->p, "%s: invalid path '%s'", NAME, argv[0]);
    }
    return hgs3_conf_parse_string(ctx, row, conf, argc, &path);
}

/* Absolute paths, a wildcard only in the last component (see
 * hgs3_conffiles.h); a missing file is fine. "none" alone: no files. */
PARSER(K_CONFFILES)
{
    const char *bad = NULL;
    if (argc < 1) {
        return apr_psprintf(ctx->p, "%s: name at least one file, or 'none'", NAME);
    }
    argc = (argc == 1 && !strcasecmp(argv[0], "none")) ? 0 : argc;
    if (hgs3_conffiles_create(&AT(conf, row->f[0], hgs3_conffiles *), ctx->p, argc, argv, &bad) !=
        APR_SUCCESS) {
        return apr_psprintf(ctx->p,
                            "%s: '%s' must be an absolute file path; a wildcard (*, ?, [...]) "
                            "may only be in its last component",
                            NAME, bad ? bad : "");
    }
    return NULL;
}

/* CONNECT_MS LOOKUP_MS, the second not below the first. */
PARSER(K_TIMEOUT)
{
    const char *err = hgs3_conf_parse_pair(ctx, row, conf, argc, argv);
    if (!err && AT(conf, row->f[1], int) < AT(conf, row->f[0], int)) {
        err = apr_psprintf(ctx->p, "%s: LOOKUP_MS (%s) must not be less than CONNECT_MS (%s)", NAME,
                           argv[1], argv[0]);
    }
    return err;
}

/* FAILURES SECONDS, at most 1000 failures in a row. */
PARSER(K_BREAKER)
{
    const char *err = hgs3_conf_parse_pair(ctx, row, conf, argc, argv);
    if (!err && AT(conf, row->f[0], int) > 1000) {
        err = apr_psprintf(ctx->p, "%s: FAILURES must be between 1 and 1000, not '%s'", NAME,
                           argv[0]);
    }
    return err;
}

/* PROVIDER[:ARGS] [TTL]; whether the provider is loaded is checked by
 * hgs3_config_check, when all modules (mod_socache_*) are. */
PARSER(K_PRESENCE)
{
    const char *colon = strchr(argv[0], ':');
    const char *name = colon ? apr_pstrndup(ctx->p, argv[0], colon - argv[0]) : argv[0];
    if (!hgs3_confval_is_token(name, "_-")) {
        return apr_psprintf(ctx->p, "%s: '%s' is not a provider name", NAME, argv[0]);
    }
    AT(conf, row->f[0], const char *) = name;
    AT(conf, row->f[1], const char *) = colon ? colon + 1 : NULL;
    AT(conf, row->f[2], int) = (int)row->def[2];
    if (argc == 2) {
        hgs3_conf_row ttl = *row;
        ttl.f[0] = row->f[2];
        return hgs3_conf_parse_int(ctx, &ttl, conf, 1, argv + 1);
    }
    return NULL;
}

/* PATH [PROFILE]: a regular file, and the profile's name. */
PARSER(K_CREDS_FILE)
{
    const char *path = ap_server_root_relative(ctx->p, argv[0]);
    apr_finfo_t fi;

    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, ctx->p) || fi.filetype != APR_REG) {
        return apr_psprintf(ctx->p, "%s: '%s' is not a readable file", NAME, argv[0]);
    }
    if (argc == 2 && !hgs3_confval_is_token(argv[1], "-_.@+=,")) {
        return apr_psprintf(ctx->p, "%s: invalid profile name '%s'", NAME, argv[1]);
    }
    AT(conf, row->f[0], const char *) = path;
    AT(conf, row->f[1], const char *) = argc == 2 ? argv[1] : "default";
    return NULL;
}

/* A repository mapping: f[0] the directory, f[1] the URL base of the
 * <Location> that sets it, f[2] the other kind of mapping, cleared. */
PARSER(K_MAPPING)
{
    const char *base = NULL, *msg = NULL, *err = hgs3_config_mapping_base(CMD, &base);
    apr_finfo_t fi;
    (void)argc;
    if (!err && hgs3_confval_abs_dir(ctx->p, argv[0], &msg) != APR_SUCCESS) {
        err = apr_psprintf(ctx->p, "%s: %s", NAME, msg);
    }
    if (err) {
        return err;
    }
    if (row->what && apr_stat(&fi, apr_pstrcat(ctx->p, argv[0], "/", row->what, NULL),
                              APR_FINFO_TYPE, ctx->p) != APR_SUCCESS) {
        return apr_psprintf(ctx->p, "%s: '%s' is not a Mercurial repository (no %s)", NAME, argv[0],
                            row->what);
    }
    AT(conf, row->f[0], const char *) = argv[0];
    AT(conf, row->f[1], const char *) = base;
    AT(conf, row->f[2], const char *) = NULL;
    return NULL;
}

static apr_status_t check_bucket(apr_pool_t *p, const char *s, const char **msg)
{
    (void)p;
    return hgs3_s3_check_bucket(s, msg);
}

/* ---- the table ------------------------------------------------------------ */

/* One way in for every row: the server-only rows (RSRC_CONF alone) are
 * refused in sections and set the server's configuration. */
static const char *set_args(cmd_parms *cmd, void *mc, int argc, const char *const *argv)
{
    hgs3_conf_ctx ctx = {cmd->pool, cmd->cmd->name, cmd};
    const char *err = NULL;
    if (IS_SRV(cmd->cmd)) {
        err = ap_check_cmd_context(cmd, GLOBAL_ONLY | NOT_IN_VIRTUALHOST);
        mc = hgs3_get_srv_conf(cmd->server);
    }
    return err ? err : ROW_OF(cmd->cmd)->parse(&ctx, ROW_OF(cmd->cmd), mc, argc, argv);
}

static const char *set_1(cmd_parms *cmd, void *mc, const char *a)
{
    return set_args(cmd, mc, 1, &a);
}

static const char *set_12(cmd_parms *cmd, void *mc, const char *a, const char *b)
{
    const char *argv[2] = {a, b};
    return set_args(cmd, mc, b ? 2 : 1, argv);
}

static const char *set_v(cmd_parms *cmd, void *mc, int argc, char *const argv[])
{
    return set_args(cmd, mc, argc, (const char *const *)argv);
}

/* To add a directive: add its field to hgs3_dir_conf (or hgs3_srv_conf:
 * then SRV and SF()), one row below, and a getter line in the header if
 * the glue reads it. A row is R1/R12/RV (one, one or two, any number of
 * values), the name, where, the help text, then the hgs3_conf_row: the kind
 * (.parse = K_...), the fields (.f), and as the kind needs .min/.max, .def (.sdef
 * for a string or list), .what, .check; .group when several rows merge as
 * one unit. For example:
 *     R1("HgS3CacheCollapse", DIR, "on|off: ...", .parse = K_ENUM,
 *        .f = {DF(collapse)}, .what = "off|on", .def = {1}),
 * Fields start unset (-1, NULL); the getter returns .def for an unset one. */
#define DIR                  (RSRC_CONF | ACCESS_CONF)
#define SRV                  RSRC_CONF
#define ROW(...)             ((void *)&(const hgs3_conf_row){__VA_ARGS__})
#define R1(n, w, help, ...)  AP_INIT_TAKE1(n, set_1, ROW(__VA_ARGS__), w, help)
#define R12(n, w, help, ...) AP_INIT_TAKE12(n, set_12, ROW(__VA_ARGS__), w, help)
#define RV(n, w, help, ...)  AP_INIT_TAKE_ARGV(n, set_v, ROW(__VA_ARGS__), w, help)
#define G_CA                 1
#define G_CREDS              2
#define G_REPO               3
#define MB                   ((apr_int64_t)1 << 20)

const command_rec hgs3_config_cmds[] = {
    R1("HgS3Cache", DIR, "on|off: cache hgweb responses in S3 for this scope (default off)",
       .parse = K_ENUM, .f = {DF(enabled)}, .what = "off|on"),
    R1("HgS3CacheStore", DIR,
       "s3|file:DIR: the object store, S3 or a local directory served by httpd (default s3)",
       .parse = K_STRING, .f = {DF(store)}, .sdef = "s3", .check = hgs3_confval_store),
    R1("HgS3CacheBucket", DIR, "NAME: the bucket that holds cached responses (required when on)",
       .parse = K_STRING, .f = {DF(bucket)}, .check = check_bucket),
    R1("HgS3CacheRegion", DIR, "REGION: SigV4 signing region (default us-east-1)",
       .parse = K_STRING, .f = {DF(region)}, .sdef = HGS3_S3_DEF_REGION,
       .check = hgs3_confval_region),
    R1("HgS3CacheEndpoint", DIR,
       "URL: store endpoint httpd uses for HEAD/PUT/GET (default https://s3.REGION.amazonaws.com)",
       .parse = K_STRING, .f = {DF(endpoint)}, .check = hgs3_s3_check_endpoint),
    R1("HgS3CacheAddressing", DIR,
       "path|virtual: bucket in the path or in the host name (default virtual on AWS, path with "
       "HgS3CacheEndpoint)",
       .parse = K_ENUM, .f = {DF(addressing)}, .what = "virtual|path"),
    R1("HgS3CachePublicEndpoint", DIR,
       "URL: store endpoint clients reach, used in presigned redirects (default "
       "HgS3CacheEndpoint)",
       .parse = K_STRING, .f = {DF(public_endpoint)}, .check = hgs3_s3_check_endpoint),
    R1("HgS3CacheCAFile", DIR,
       "PATH: PEM bundle of the CAs that verify an https store (default the system bundle)",
       .parse = K_PATH, .f = {DF(ca_file)}, .group = G_CA, .check = hgs3_tls_check_ca_file),
    R1("HgS3CacheCAPath", DIR,
       "DIR: hashed directory of the CAs that verify an https store (default the system's)",
       .parse = K_PATH, .f = {DF(ca_path)}, .group = G_CA, .check = hgs3_tls_check_ca_path),
    R1("HgS3CacheAccessKeyId", DIR, "ID: static access key id", .parse = K_STRING,
       .f = {DF(access_key)}, .group = G_CREDS, .check = hgs3_confval_key_id),
    R1("HgS3CacheSecretAccessKey", DIR, "KEY: static secret access key (never logged)",
       .parse = K_STRING, .f = {DF(secret_key)}, .group = G_CREDS, .check = hgs3_confval_secret),
    R1("HgS3CacheSessionToken", DIR,
       "TOKEN: session token for temporary credentials (never logged)", .parse = K_STRING,
       .f = {DF(session_token)}, .group = G_CREDS, .check = hgs3_confval_token),
    R12("HgS3CacheCredentialsFile", DIR,
        "PATH [PROFILE]: AWS shared credentials file and profile (default profile 'default'); "
        "re-read when it changes",
        .parse = K_CREDS_FILE, .f = {DF(creds_file), DF(creds_profile)}, .group = G_CREDS),
    R1("HgS3CacheKeyPrefix", DIR, "PREFIX: object name prefix (default hgcache/)",
       .parse = K_STRING, .f = {DF(key_prefix)}, .sdef = "hgcache/",
       .check = hgs3_confval_key_prefix),
    R1("HgS3CacheKeySalt", DIR, "STRING: mixed into every key; change it to invalidate everything",
       .parse = K_STRING, .f = {DF(key_salt)}, .sdef = ""),
    RV("HgS3CacheCommands", DIR,
       "CMD...: wire commands that may be cached (default getbundle capabilities batch heads "
       "known listkeys branchmap lookup)",
       .parse = K_LIST, .f = {DF(commands)}, .check = hgs3_confval_command,
       .sdef = "getbundle capabilities batch heads known listkeys branchmap lookup"),
    R1("HgS3CacheRepository", DIR, "DIR: the Mercurial repository served at this location",
       .parse = K_MAPPING, .f = {DF(repository), DF(repo_base), DF(repository_root)},
       .group = G_REPO, .what = ".hg/requires"),
    R1("HgS3CacheRepositoryRoot", DIR,
       "DIR: a collection; the path below the location names a repository under DIR",
       .parse = K_MAPPING, .f = {DF(repository_root), DF(repo_base), DF(repository)},
       .group = G_REPO),
    R1("HgS3CacheMinSize", DIR, "BYTES: smaller responses are not stored (default 64K)",
       .parse = K_SIZE, .f = {DF(min_size)}, .max = APR_INT64_MAX, .def = {64 * 1024}),
    R1("HgS3CacheMaxSize", DIR, "BYTES: larger responses are not stored (default 4G)",
       .parse = K_SIZE, .f = {DF(max_size)}, .min = 1, .max = (apr_int64_t)5 << 40,
       .def = {(apr_int64_t)4 << 30}), /* S3 objects are at most 5 TiB */
    R1("HgS3CacheMemory", DIR,
       "BYTES: response bytes held in memory before spilling to disk (default 1M)", .parse = K_SIZE,
       .f = {DF(memory)}, .max = (apr_int64_t)1 << 32, .def = {MB}),
    R1("HgS3CacheSpoolDir", DIR, "DIR: where spools spill to disk (default " HGS3_DEF_SPOOL_DIR ")",
       .parse = K_STRING, .f = {DF(spool_dir)}, .sdef = HGS3_DEF_SPOOL_DIR,
       .check = hgs3_confval_abs_dir),
    R1("HgS3CacheMultipartThreshold", DIR,
       "BYTES: bodies above this are uploaded as multipart, in parts of this size (default 64M, "
       "at least 5M)",
       .parse = K_SIZE, .f = {DF(multipart_threshold)}, .min = HGS3_S3_MIN_PART_SIZE,
       .max = HGS3_S3_MAX_PART_SIZE, .def = {HGS3_S3_DEF_MULTIPART_THRESHOLD}),
    RV("HgS3CacheConfigFiles", DIR,
       "PATH...: files whose change changes every key here, e.g. hgweb.config (default "
       "/etc/mercurial/hgrc and the .rc files of /etc/mercurial/hgrc.d); 'none' for no files",
       .parse = K_CONFFILES, .f = {DF(config_files)},
       .sdef = "/etc/mercurial/hgrc /etc/mercurial/hgrc.d/*.rc"),
    R1("HgS3CacheInlineMax", DIR,
       "BYTES: small replies up to this size are kept in the presence cache (default 64K, 0 = "
       "off, at most 1M)",
       .parse = K_SIZE, .f = {DF(inline_max)}, .max = HGS3_INLINE_MAX, .def = {64 * 1024}),
    R1("HgS3CacheURLExpiry", DIR, "SECONDS: presigned URL lifetime, 1 to 604800 (default 300)",
       .parse = K_INT, .f = {DF(url_expiry)}, .what = "seconds", .min = 1, .max = 604800,
       .def = {300}),
    R1("HgS3CacheMaxAge", DIR,
       "SECONDS: stored objects older than this are regenerated (default 0 = no limit)",
       .parse = K_INT, .f = {DF(max_age)}, .what = "seconds", .max = 0x7fffffff),
    R1("HgS3CacheHitMode", DIR, "auto|redirect|stream: how hits are answered (default auto)",
       .parse = K_ENUM, .f = {DF(hit_mode)}, .what = "auto|redirect|stream"),
    R1("HgS3CacheCollapse", DIR,
       "on|off: concurrent misses of a key follow the first one's generation (default on)",
       .parse = K_ENUM, .f = {DF(collapse)}, .what = "off|on", .def = {1}),
    R1("HgS3CacheCollapseTimeout", DIR,
       "SECONDS: a follower waits this long without progress, 1 to 86400 (default 60)",
       .parse = K_INT, .f = {DF(collapse_timeout)}, .what = "seconds", .min = 1, .max = 86400,
       .def = {60}),
    R1("HgS3CacheShareAcrossUsers", DIR,
       "on|off: leave the authenticated user out of the key (default off)", .parse = K_ENUM,
       .f = {DF(share_users)}, .what = "off|on"),
    R12("HgS3CacheTimeout", DIR,
        "CONNECT_MS LOOKUP_MS: bounds for talking to the store on the request path (default "
        "1000 2000)",
        .parse = K_TIMEOUT, .f = {DF(connect_ms), DF(lookup_ms)}, .what = "milliseconds", .min = 1,
        .max = 600000, .def = {1000, 2000}),
    R1("HgS3CacheHeader", DIR, "on|off: add X-HgS3Cache: <outcome> to responses (default off)",
       .parse = K_ENUM, .f = {DF(header)}, .what = "off|on"),
    R1("HgS3CacheUploadWorkers", SRV,
       "N: upload threads per child process (server config; "
       "default 2)",
       .parse = K_INT, .f = {SF(upload_workers)}, .what = "threads", .min = 1, .max = 64,
       .def = {2}),
    R1("HgS3CacheUploadQueue", SRV,
       "N: queued uploads per child before new ones are dropped (server config; default 16)",
       .parse = K_INT, .f = {SF(upload_queue)}, .what = "queued uploads", .min = 1, .max = 4096,
       .def = {16}),
    R1("HgS3CacheSpoolMax", SRV,
       "BYTES: all captures in flight on the host together; beyond it a response is not stored "
       "(server config; default 8G)",
       .parse = K_SIZE, .f = {SF(spool_max)}, .min = 1, .max = (apr_int64_t)1 << 50,
       .def = {(apr_int64_t)8 << 30}),
    R12("HgS3CachePresence", SRV,
        "PROVIDER[:ARGS] [TTL]: mod_socache provider remembering stored keys, or 'none' (server "
        "config; default shmcb 60)",
        .parse = K_PRESENCE, .f = {SF(presence_provider), SF(presence_args), SF(presence_ttl)},
        .sdef = "shmcb", .what = "seconds (TTL)", .min = 1, .max = 86400 * 30, .def = {0, 0, 60}),
    R12("HgS3CacheBreaker", SRV,
        "FAILURES SECONDS: after this many consecutive store failures, skip lookups for this "
        "long (server config; default 3 30)",
        .parse = K_BREAKER, .f = {SF(breaker_fails), SF(breaker_secs)}, .what = "seconds", .min = 1,
        .max = 86400, .def = {3, 30}),
    {NULL}};
