/* mod_hgs3cache_capture.h: the miss path (capture filter and upload jobs). */
#ifndef MOD_HGS3CACHE_CAPTURE_H
#define MOD_HGS3CACHE_CAPTURE_H

#include <httpd.h>
#include "mod_hgs3cache_config.h"
#include "hgs3_cacheable.h"
#include "hgs3_stats.h"

void hgs3_capture_register(apr_pool_t *p);

/* At startup: remove the lock and spool files that processes of an earlier
 * run left in the configuration's spool directories. */
void hgs3_capture_post_config(apr_pool_t *ptemp, server_rec *s);

/* Called once the per-key upload lock is held: 1 when the object turned out
 * to be stored meanwhile (by the request that held the lock before us). */
typedef int hgs3_capture_stored_fn(request_rec *r, void *baton);

/* A miss for key hex (object name `object`) of the scope loc
 * (mod_hgs3cache_loc.h): take the per-key upload lock,
 * check with `stored` (optional) that nobody stored the object in the
 * meantime, add the capture filter and return DECLINED so hgweb answers. */
int hgs3_capture_start(request_rec *r, const struct hgs3_loc *loc, const char *hex,
                       const char *object, hgs3_capture_stored_fn *stored, void *baton);

/* SPEC "Never cached" for r's response head (hgs3_cacheable_head() on
 * its status and headers): HGS3_SKIP_NONE when the body may be kept, with
 * *expected its Content-Length or -1. The capture and inline filters'
 * one check; they differ in accept and the size limits. */
hgs3_skip_e hgs3_capture_check_head(request_rec *r, hgs3_accept_e accept, apr_off_t min_size,
                                    apr_off_t max_size, apr_off_t *expected);

/* Set r->notes "hgs3cache" (and X-HgS3Cache with HgS3CacheHeader on). */
void hgs3_set_note(request_rec *r, const hgs3_dir_conf *conf, const char *note);

/* Note "miss-store-skipped:<why>" or "bypass:<why>", named by the one table
 * of reasons (hgs3_stats.h). HGS3_SKIP_NONE / HGS3_BYPASS_NONE: no change. */
void hgs3_note_skip(request_rec *r, const hgs3_dir_conf *conf, hgs3_skip_e why);
void hgs3_note_bypass(request_rec *r, const hgs3_dir_conf *conf, hgs3_bypass_e why);

#endif
