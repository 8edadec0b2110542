/* mod_hgs3cache_store.h: talking to the object store from httpd: the
 * per-child uploader and its jobs. */
#ifndef MOD_HGS3CACHE_STORE_H
#define MOD_HGS3CACHE_STORE_H

#include <httpd.h>
#include "hgs3_lock.h"
#include "hgs3_spool.h"
#include "mod_hgs3cache_config.h"

/* Process-wide initialization (libcurl), in the parent before forking. */
int hgs3_store_post_config(apr_pool_t *pconf, server_rec *s);

/* Start this child's uploader. */
void hgs3_store_child_init(apr_pool_t *pchild, server_rec *s);

/* Queue the upload of a finished spool as `object`. On success the job owns
 * spool and lock and NULL is returned; otherwise the reason it was not
 * queued ("queue-full", "credentials", ...) and the caller keeps both. */
const char *hgs3_store_submit(request_rec *r, const hgs3_dir_conf *conf, const char *object,
                              const char *content_type, hgs3_spool *spool, hgs3_lock *lock);

#endif
