/* mod_hgs3cache_store.h: talking to the object store from httpd: the
 * store of a scope, the per-child uploader and its jobs. */
#ifndef MOD_HGS3CACHE_STORE_H
#define MOD_HGS3CACHE_STORE_H

#include <httpd.h>
#include "hgs3_lock.h"
#include "hgs3_spool.h"
#include "hgs3_store.h"
#include "hgs3_breaker.h"
#include "mod_hgs3cache_config.h"
#include "hgs3_stats.h"

/* Process-wide initialization (libcurl), in the parent before forking. */
int hgs3_store_post_config(apr_pool_t *pconf, server_rec *s);

/* Start this child's uploader. */
void hgs3_store_child_init(apr_pool_t *pchild, server_rec *s);

/* Queue the upload of a finished spool as `object` of the scope loc. On
 * success the job owns
 * spool, lock and the `reserved` bytes of the host's spool budget (it gives
 * them back when it ends) and HGS3_SKIP_NONE is returned; otherwise the reason it was
 * not queued (HGS3_SKIP_QUEUE_FULL, ...) and the caller keeps all. */
hgs3_skip_e hgs3_store_submit(request_rec *r, const struct hgs3_loc *loc, const char *object,
                              const char *content_type, hgs3_spool *spool, hgs3_lock *lock,
                              apr_uint64_t reserved);

/* The store of a scope (see hgs3_store.h), in p; built once per scope
 * (mod_hgs3cache_loc.h). */
apr_status_t hgs3_store_for(hgs3_store **pst, apr_pool_t *p, const hgs3_dir_conf *conf);

/* This child's breaker (NULL before child_init). */
hgs3_breaker *hgs3_store_breaker(void);

/* Lock and spool files untouched this long are candidates for a sweep (a
 * spool file is created a moment before it is locked). */
#define HGS3_SWEEP_GRACE apr_time_from_sec(5)

/* Have an upload thread remove dead processes' lock and spool files from
 * dir, unless this child did so less than a minute ago. Never waits. */
void hgs3_store_sweep_later(const char *dir);

#endif
