/* mod_hgs3cache_spooldir.h: spool directories made ready at startup. */
#ifndef MOD_HGS3CACHE_SPOOLDIR_H
#define MOD_HGS3CACHE_SPOOLDIR_H

#include <httpd.h>

/* post_config (the parent, still root): creates the default spool directory
 * for the children's user when an enabled scope uses it, and checks that the
 * children can write every spool directory in use, with one warning for each
 * one they cannot. */
int hgs3_spooldir_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);

/* Whether the children can create files in dir: a forked process takes
 * their identity and creates a temp file there (also HgS3CacheStore's). */
apr_status_t hgs3_spooldir_check_writable(apr_pool_t *p, const char *dir);

/* True when post_config found dir unusable (its warning is already logged). */
int hgs3_spooldir_unusable(const char *dir);

#endif
