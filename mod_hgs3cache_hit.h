/* mod_hgs3cache_hit.h: lookups and answering hits (hit path). */
#ifndef MOD_HGS3CACHE_HIT_H
#define MOD_HGS3CACHE_HIT_H

#include <httpd.h>
#include "mod_hgs3cache_config.h"

/* Look object up (presence cache, then HEAD) and answer a hit from the
 * store. Returns OK when the response was sent; DECLINED otherwise, with
 * the request set up as a miss (capture filter added) or noted as a bypass
 * (store failing, breaker open). */
int hgs3_hit_handle(request_rec *r, const hgs3_dir_conf *conf, const char *hex, const char *object);

#endif
