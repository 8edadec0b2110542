/* mod_hgs3cache_config.h: directives, defaults and merge rules.
 *
 * The mod_md way: every field starts "unset" (-1 or NULL), create gives
 * unset, merge takes the inner value when set ("inner over outer"), and the
 * hgs3_conf_*() getters supply the documented default for an unset field.
 * All three follow the directive table in mod_hgs3cache_config.c: the
 * defaults live in hgs3_dir_defaults/hgs3_srv_defaults, filled from it. */
#ifndef MOD_HGS3CACHE_CONFIG_H
#define MOD_HGS3CACHE_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include <apr_tables.h>

#include "hgs3_conffiles.h"
#include "hgs3_confval.h"

#define HGS3_UNSET (-1)

/* The defaults are the table rows' in mod_hgs3cache_config.c; those the
 * core shares come from its headers (hgs3_s3.h, hgs3_inline.h). */

/* HgS3CacheSpoolDir: a disk directory (never the runtime dir, a tmpfs on
 * Debian), created at startup for the children's user. */
#ifndef HGS3_DEF_SPOOL_DIR
#define HGS3_DEF_SPOOL_DIR "/var/cache/apache2/mod_hgs3cache"
#endif

typedef enum {
    HGS3_HIT_AUTO = 0,
    HGS3_HIT_REDIRECT = 1,
    HGS3_HIT_STREAM = 2,
} hgs3_hit_mode_e;

typedef enum {
    HGS3_ADDR_VIRTUAL = 0,
    HGS3_ADDR_PATH = 1,
} hgs3_addressing_e;

/* Per-directory (server, vhost, <Location>, <Directory>) configuration. */
typedef struct hgs3_dir_conf {
    const char *scope;             /* where it was defined, for messages */
    int enabled;                   /* HgS3Cache: default off */
    const char *store;             /* HgS3CacheStore: "s3" (default) or "file:DIR" */
    const char *bucket;            /* HgS3CacheBucket: required when on */
    const char *region;            /* HgS3CacheRegion: default us-east-1 */
    const char *endpoint;          /* HgS3CacheEndpoint: default AWS regional */
    int addressing;                /* HgS3CacheAddressing: virtual on AWS, else path */
    const char *public_endpoint;   /* HgS3CachePublicEndpoint: default the endpoint */
    const char *ca_file;           /* HgS3CacheCAFile: default the system bundle */
    const char *ca_path;           /* HgS3CacheCAPath: default the system's */
    const char *access_key;        /* HgS3CacheAccessKeyId */
    const char *secret_key;        /* HgS3CacheSecretAccessKey (never logged) */
    const char *session_token;     /* HgS3CacheSessionToken (never logged) */
    const char *creds_file;        /* HgS3CacheCredentialsFile PATH */
    const char *creds_profile;     /*   [PROFILE], default "default" */
    const char *key_prefix;        /* HgS3CacheKeyPrefix: default hgcache/ */
    const char *key_salt;          /* HgS3CacheKeySalt: default empty */
    apr_array_header_t *commands;  /* HgS3CacheCommands: default in the table */
    const char *repository;        /* HgS3CacheRepository DIR */
    const char *repository_root;   /* HgS3CacheRepositoryRoot DIR */
    const char *repo_base;         /* URL path of the <Location> that set the mapping, without
                                    * trailing '/' ("/" at server level); merged with it */
    apr_off_t min_size;            /* HgS3CacheMinSize: default 64K */
    apr_off_t max_size;            /* HgS3CacheMaxSize: default 4G */
    apr_off_t memory;              /* HgS3CacheMemory: default 1M */
    const char *spool_dir;         /* HgS3CacheSpoolDir: default HGS3_DEF_SPOOL_DIR */
    int url_expiry;                /* HgS3CacheURLExpiry: default 300 s */
    int max_age;                   /* HgS3CacheMaxAge: default 0 = none */
    int hit_mode;                  /* HgS3CacheHitMode: default auto */
    int share_users;               /* HgS3CacheShareAcrossUsers: default off */
    int connect_ms;                /* HgS3CacheTimeout CONNECT_MS: default 1000 */
    int lookup_ms;                 /*                  LOOKUP_MS: default 2000 */
    int header;                    /* HgS3CacheHeader: default off */
    int collapse;                  /* HgS3CacheCollapse: default on */
    int collapse_timeout;          /* HgS3CacheCollapseTimeout: default 60 s */
    apr_off_t multipart_threshold; /* HgS3CacheMultipartThreshold: default 64M */
    hgs3_conffiles *config_files;  /* HgS3CacheConfigFiles: default in the table */
    apr_off_t inline_max;          /* HgS3CacheInlineMax: default 64K, 0 = off */
    /* Last, and no directive's: the effective settings resolved for this
     * configuration (mod_hgs3cache_loc.h), set at post_config; merge takes
     * the inner scope's, else the outer's. */
    const struct hgs3_loc *locs;
} hgs3_dir_conf;

/* Per-server configuration: directives marked (server) in the README. */
typedef struct hgs3_srv_conf {
    int upload_workers;            /* HgS3CacheUploadWorkers: default 2 */
    int upload_queue;              /* HgS3CacheUploadQueue: default 16 */
    const char *presence_provider; /* HgS3CachePresence PROVIDER: default shmcb */
    const char *presence_args;     /*   [:ARGS] */
    int presence_ttl;              /*   TTL: default 60 s */
    int breaker_fails;             /* HgS3CacheBreaker FAILURES: default 3 */
    int breaker_secs;              /*                  SECONDS: default 30 */
    apr_off_t spool_max;           /* HgS3CacheSpoolMax: default 8G (main server only) */
} hgs3_srv_conf;

extern const command_rec hgs3_config_cmds[];

void *hgs3_config_create_dir(apr_pool_t *p, char *dir);
void *hgs3_config_merge_dir(apr_pool_t *p, void *basev, void *addv);
void *hgs3_config_create_srv(apr_pool_t *p, server_rec *s);
void *hgs3_config_merge_srv(apr_pool_t *p, void *basev, void *addv);

/* Checks that need the whole configuration (e.g. HgS3Cache on without a
 * bucket). Run from the check_config hook, which also runs under
 * `apachectl configtest`. Returns OK, or logs and returns a failure. */
int hgs3_config_check(apr_pool_t *p, server_rec *s);

hgs3_dir_conf *hgs3_get_dir_conf(request_rec *r);
hgs3_srv_conf *hgs3_get_srv_conf(server_rec *s);

/* The defaults of every field, filled from the directive table when the
 * main server's configuration is created; read-only afterwards. */
extern hgs3_dir_conf hgs3_dir_defaults;
extern hgs3_srv_conf hgs3_srv_defaults;

#define HGS3_NUM(c, d, f) ((c)->f != HGS3_UNSET ? (c)->f : (d).f)
#define HGS3_PTR(c, d, f) ((c)->f ? (c)->f : (d).f)
#define HGS3_DIR_GETTER(type, name, kind, field)                                                   \
    static inline type name(const hgs3_dir_conf *c)                                                \
    {                                                                                              \
        return (type)HGS3_##kind(c, hgs3_dir_defaults, field);                                     \
    }
#define HGS3_SRV_GETTER(type, name, kind, field)                                                   \
    static inline type name(const hgs3_srv_conf *sc)                                               \
    {                                                                                              \
        return (type)HGS3_##kind(sc, hgs3_srv_defaults, field);                                    \
    }

/* Getters applying the documented default to an unset field. */
HGS3_DIR_GETTER(int, hgs3_conf_enabled, NUM, enabled)
HGS3_DIR_GETTER(const char *, hgs3_conf_region, PTR, region)
HGS3_DIR_GETTER(const char *, hgs3_conf_key_prefix, PTR, key_prefix)
HGS3_DIR_GETTER(const char *, hgs3_conf_key_salt, PTR, key_salt)
HGS3_DIR_GETTER(apr_off_t, hgs3_conf_min_size, NUM, min_size)
HGS3_DIR_GETTER(apr_off_t, hgs3_conf_max_size, NUM, max_size)
HGS3_DIR_GETTER(apr_off_t, hgs3_conf_memory, NUM, memory)
HGS3_DIR_GETTER(int, hgs3_conf_url_expiry, NUM, url_expiry)
HGS3_DIR_GETTER(int, hgs3_conf_max_age, NUM, max_age)
HGS3_DIR_GETTER(hgs3_hit_mode_e, hgs3_conf_hit_mode, NUM, hit_mode)
HGS3_DIR_GETTER(int, hgs3_conf_share_users, NUM, share_users)
HGS3_DIR_GETTER(int, hgs3_conf_connect_ms, NUM, connect_ms)
HGS3_DIR_GETTER(int, hgs3_conf_lookup_ms, NUM, lookup_ms)
HGS3_DIR_GETTER(int, hgs3_conf_header, NUM, header)
HGS3_DIR_GETTER(apr_off_t, hgs3_conf_multipart_threshold, NUM, multipart_threshold)
HGS3_DIR_GETTER(hgs3_conffiles *, hgs3_conf_config_files, PTR, config_files)
HGS3_DIR_GETTER(apr_off_t, hgs3_conf_inline_max, NUM, inline_max)
HGS3_DIR_GETTER(int, hgs3_conf_collapse, NUM, collapse)
HGS3_DIR_GETTER(int, hgs3_conf_collapse_timeout_sec, NUM, collapse_timeout)

/* HgS3CacheStore file:DIR's directory, NULL for S3. */
static inline const char *hgs3_conf_store_dir(const hgs3_dir_conf *c)
{
    return hgs3_confval_store_dir(HGS3_PTR(c, hgs3_dir_defaults, store));
}

/* HgS3CacheCollapseTimeout as an interval. */
static inline apr_interval_time_t hgs3_conf_collapse_timeout(const hgs3_dir_conf *c)
{
    return apr_time_from_sec(hgs3_conf_collapse_timeout_sec(c));
}
HGS3_SRV_GETTER(int, hgs3_srv_upload_workers, NUM, upload_workers)
HGS3_SRV_GETTER(int, hgs3_srv_upload_queue, NUM, upload_queue)
HGS3_SRV_GETTER(int, hgs3_srv_presence_ttl, NUM, presence_ttl)
HGS3_SRV_GETTER(const char *, hgs3_srv_presence_provider, PTR, presence_provider)
HGS3_SRV_GETTER(int, hgs3_srv_breaker_fails, NUM, breaker_fails)
HGS3_SRV_GETTER(int, hgs3_srv_breaker_secs, NUM, breaker_secs)
HGS3_SRV_GETTER(apr_off_t, hgs3_srv_spool_max, NUM, spool_max)

static inline const char *hgs3_conf_spool_dir(apr_pool_t *p, const hgs3_dir_conf *c)
{
    (void)p;
    return HGS3_PTR(c, hgs3_dir_defaults, spool_dir);
}

/* Defaults that depend on other fields. */
const char *hgs3_conf_endpoint(apr_pool_t *p, const hgs3_dir_conf *c);
const char *hgs3_conf_public_endpoint(apr_pool_t *p, const hgs3_dir_conf *c);
hgs3_addressing_e hgs3_conf_addressing(const hgs3_dir_conf *c);
int hgs3_conf_command_allowed(const hgs3_dir_conf *c, const char *cmd);

/* The URL base a repository mapping set by cmd belongs to (SPEC "Scope"),
 * or an error message naming the directive (mod_hgs3cache_check.c). */
const char *hgs3_config_mapping_base(cmd_parms *cmd, const char **pbase);

#endif
