/* mod_hgs3cache_loc.h: a scope's effective settings, resolved once.
 *
 * For every configuration with HgS3Cache on (each server's, and each
 * <Location>/<Directory> section's merged over its server's), post_config
 * builds one immutable hgs3_loc: the store with its client configuration
 * and where its credentials come from, the key's inputs, limits and modes,
 * every default applied. A request finds its own through its merged
 * configuration (hgs3_dir_conf.locs) and hands it down the layers
 * (handler, key, lookup, hit or capture, store) instead of asking the
 * configuration again. A request whose merged configuration no section
 * gives alone (nested sections that both set something) has its loc built
 * on first use and kept for the child's life. */
#ifndef MOD_HGS3CACHE_LOC_H
#define MOD_HGS3CACHE_LOC_H

#include <httpd.h>
#include "hgs3_req.h"
#include "hgs3_store.h"
#include "hgs3_conffiles.h"
#include "mod_hgs3cache_config.h"

struct hgs3_loc {
    const hgs3_dir_conf *conf;   /* the merged configuration it stands for */
    const struct hgs3_loc *next; /* the next one of the same section */
    hgs3_store *store;
    /* the key */
    const char *key_prefix;
    const char *key_salt;
    const char *repo_base;
    const char *repository;
    const char *repository_root;
    hgs3_conffiles *config_files;
    int share_users;
    const apr_array_header_t *commands;
    hgs3_req_limits limits;
    /* the hit path */
    int hit_mode;                /* hgs3_hit_mode_e */
    int url_expiry;              /* seconds */
    apr_interval_time_t max_age; /* 0: no limit */
    /* the miss path */
    apr_off_t min_size;
    apr_off_t max_size;
    apr_off_t memory;
    const char *spool_dir;
    apr_uint64_t spool_max; /* HgS3CacheSpoolMax, host-wide */
    int collapse;
};
typedef struct hgs3_loc hgs3_loc;

/* Build the locs of every configuration with HgS3Cache on. */
int hgs3_loc_post_config(apr_pool_t *pconf, server_rec *s);

/* The lock and pool for locs built on first use. */
void hgs3_loc_child_init(apr_pool_t *pchild);

/* The loc of a request's merged configuration conf (HgS3Cache on), or NULL
 * when none can be built. */
const hgs3_loc *hgs3_loc_of(request_rec *r, const hgs3_dir_conf *conf);

/* Is cmd one of HgS3CacheCommands? */
int hgs3_loc_command_allowed(const hgs3_loc *loc, const char *cmd);

#endif
