/* mod_hgs3cache_capture.h: the miss path (capture filter and upload jobs). */
#ifndef MOD_HGS3CACHE_CAPTURE_H
#define MOD_HGS3CACHE_CAPTURE_H

#include <httpd.h>
#include "mod_hgs3cache_config.h"

void hgs3_capture_register(apr_pool_t *p);

/* A miss for key hex (object name `object`): take the per-key upload lock,
 * add the capture filter and return DECLINED so hgweb answers. */
int hgs3_capture_start(request_rec *r, const hgs3_dir_conf *conf, const char *hex,
                       const char *object);

/* Set r->notes "hgs3cache" (and X-HgS3Cache with HgS3CacheHeader on). */
void hgs3_set_note(request_rec *r, const hgs3_dir_conf *conf, const char *note);

#endif
