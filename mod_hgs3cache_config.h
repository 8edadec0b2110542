/* mod_hgs3cache_config.h: directives, defaults and merge rules.
 *
 * The mod_md way: every field starts "unset" (-1 or NULL), create gives
 * unset, merge takes the inner value when set ("inner over outer"), and the
 * hgs3_conf_*() getters supply the documented default for an unset field. */
#ifndef MOD_HGS3CACHE_CONFIG_H
#define MOD_HGS3CACHE_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include <apr_tables.h>

#include "hgs3_conffiles.h"

#define HGS3_UNSET (-1)

/* Documented defaults (README "Directives" lists the same). */
#define HGS3_DEF_REGION         "us-east-1"
#define HGS3_DEF_KEY_PREFIX     "hgcache/"
#define HGS3_DEF_MIN_SIZE       ((apr_off_t)65536)
#define HGS3_DEF_MAX_SIZE       ((apr_off_t)4 * 1024 * 1024 * 1024)
#define HGS3_DEF_MEMORY         ((apr_off_t)1024 * 1024)
#define HGS3_DEF_URL_EXPIRY     300
#define HGS3_MAX_URL_EXPIRY     604800
#define HGS3_DEF_MAX_AGE        0
#define HGS3_DEF_CONNECT_MS     1000
#define HGS3_DEF_LOOKUP_MS      2000
#define HGS3_DEF_UPLOAD_WORKERS 2
#define HGS3_DEF_UPLOAD_QUEUE   16
#define HGS3_DEF_PRESENCE       "shmcb"
#define HGS3_DEF_PRESENCE_TTL   60
#define HGS3_DEF_BREAKER_FAILS  3
#define HGS3_DEF_BREAKER_SECS   30
/* HgS3CacheConfigFiles: what hgweb reads besides the repository's hgrc */
#define HGS3_DEF_CONFIG_FILES "/etc/mercurial/hgrc", "/etc/mercurial/hgrc.d/*.rc"

/* HgS3CacheSpoolDir: a disk directory (never the runtime dir, a tmpfs on
 * Debian), created at startup for the children's user. */
#ifndef HGS3_DEF_SPOOL_DIR
#define HGS3_DEF_SPOOL_DIR "/var/cache/apache2/mod_hgs3cache"
#endif
#define HGS3_DEF_SPOOL_MAX ((apr_off_t)8 * 1024 * 1024 * 1024)

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
    apr_array_header_t *commands;  /* HgS3CacheCommands: default getbundle */
    const char *repository;        /* HgS3CacheRepository DIR */
    const char *repository_root;   /* HgS3CacheRepositoryRoot DIR */
    int repo_set;                  /* either of the two was given in this scope */
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
    hgs3_conffiles *config_files;  /* HgS3CacheConfigFiles: default HGS3_DEF_CONFIG_FILES */
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

/* Getters applying the documented default to an unset field. */
int hgs3_conf_enabled(const hgs3_dir_conf *c);
const char *hgs3_conf_region(const hgs3_dir_conf *c);
const char *hgs3_conf_endpoint(apr_pool_t *p, const hgs3_dir_conf *c);
const char *hgs3_conf_public_endpoint(apr_pool_t *p, const hgs3_dir_conf *c);
hgs3_addressing_e hgs3_conf_addressing(const hgs3_dir_conf *c);
const char *hgs3_conf_key_prefix(const hgs3_dir_conf *c);
const char *hgs3_conf_key_salt(const hgs3_dir_conf *c);
int hgs3_conf_command_allowed(const hgs3_dir_conf *c, const char *cmd);
apr_off_t hgs3_conf_min_size(const hgs3_dir_conf *c);
apr_off_t hgs3_conf_max_size(const hgs3_dir_conf *c);
apr_off_t hgs3_conf_memory(const hgs3_dir_conf *c);
const char *hgs3_conf_spool_dir(apr_pool_t *p, const hgs3_dir_conf *c);
int hgs3_conf_url_expiry(const hgs3_dir_conf *c);
int hgs3_conf_max_age(const hgs3_dir_conf *c);
hgs3_hit_mode_e hgs3_conf_hit_mode(const hgs3_dir_conf *c);
int hgs3_conf_share_users(const hgs3_dir_conf *c);
int hgs3_conf_collapse(const hgs3_dir_conf *c);
apr_interval_time_t hgs3_conf_collapse_timeout(const hgs3_dir_conf *c);
int hgs3_conf_connect_ms(const hgs3_dir_conf *c);
int hgs3_conf_lookup_ms(const hgs3_dir_conf *c);
int hgs3_conf_header(const hgs3_dir_conf *c);
apr_off_t hgs3_conf_multipart_threshold(const hgs3_dir_conf *c);
hgs3_conffiles *hgs3_conf_config_files(const hgs3_dir_conf *c);
int hgs3_srv_upload_workers(const hgs3_srv_conf *sc);
int hgs3_srv_upload_queue(const hgs3_srv_conf *sc);
int hgs3_srv_presence_ttl(const hgs3_srv_conf *sc);
const char *hgs3_srv_presence_provider(const hgs3_srv_conf *sc);
int hgs3_srv_breaker_fails(const hgs3_srv_conf *sc);
int hgs3_srv_breaker_secs(const hgs3_srv_conf *sc);
apr_off_t hgs3_srv_spool_max(const hgs3_srv_conf *sc);

#endif
