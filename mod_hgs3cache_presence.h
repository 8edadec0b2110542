/* mod_hgs3cache_presence.h: the presence cache (HgS3CachePresence).
 *
 * A mod_socache instance remembering, for TTL seconds, which objects are
 * known to be stored, and their Last-Modified time (for HgS3CacheMaxAge).
 * A presence hit answers without asking the store. shmcb shares it between
 * the children of one httpd; memcache or redis between hosts. Each child
 * also remembers, for one second, the ids it found present, so repeated
 * hits skip the shared lookup (see src/hgs3_presence_front.h). */
#ifndef MOD_HGS3CACHE_PRESENCE_H
#define MOD_HGS3CACHE_PRESENCE_H

#include <httpd.h>

void hgs3_presence_pre_config(apr_pool_t *pconf);
int hgs3_presence_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
void hgs3_presence_child_init(apr_pool_t *pchild, server_rec *s);

/* 1 when a presence cache is configured and usable in this process. */
int hgs3_presence_enabled(void);

/* 1 and *lastmod when id is known to be stored; 0 otherwise (also when the
 * presence cache is off). id is any string naming the object. */
int hgs3_presence_get(server_rec *s, apr_pool_t *p, const char *id, apr_time_t *lastmod);
void hgs3_presence_put(server_rec *s, apr_pool_t *p, const char *id, apr_time_t lastmod);
void hgs3_presence_remove(server_rec *s, apr_pool_t *p, const char *id);

/* Raw values under id, for the inline entries of small replies (see
 * mod_hgs3cache_inline.c): the shared cache only, no front cache. get
 * copies at most *len bytes into buf and sets *len; a value that does not
 * fit is not found. APR_ENOTIMPL when the presence cache is off. */
apr_status_t hgs3_presence_get_value(server_rec *s, apr_pool_t *p, const char *id,
                                     unsigned char *buf, unsigned int *len);
apr_status_t hgs3_presence_put_value(server_rec *s, apr_pool_t *p, const char *id,
                                     const unsigned char *val, unsigned int len);

#endif
