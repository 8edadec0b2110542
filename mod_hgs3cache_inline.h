/* mod_hgs3cache_inline.h: small replies answered from, and kept in, the
 * presence cache (SPEC "Small replies (inline)"). */
#ifndef MOD_HGS3CACHE_INLINE_H
#define MOD_HGS3CACHE_INLINE_H

#include <httpd.h>
#include "hgs3_spool.h"
#include "mod_hgs3cache_config.h"

void hgs3_inline_register(apr_pool_t *p);

/* The handler's step after the key: answers a request whose inline entry
 * is present (returns 1, *status OK, note hit-inline). For a command other
 * than getbundle it always takes the request: on a miss it adds the inline
 * capture filter (note miss), and when inline replies are off (presence
 * cache none, or HgS3CacheInlineMax 0) it leaves the request to hgweb
 * (note bypass:command); *status is then DECLINED. Returns 0 for a
 * getbundle without an inline entry: the store path goes on. */
int hgs3_inline_handle(request_rec *r, const hgs3_dir_conf *conf, const char *cmd,
                       const char *object, int *status);

/* For the capture filter at EOS: keep a getbundle body below
 * HgS3CacheMinSize inline, when it is at most HgS3CacheInlineMax and still
 * in memory. 1 when kept (the spool was finished and may be dropped). */
int hgs3_inline_keep_spool(request_rec *r, const hgs3_dir_conf *conf, const char *object,
                           const char *content_type, hgs3_spool *spool);

#endif
