/* mod_hgs3cache_local.h: hits answered by httpd from a store's local file. */
#ifndef MOD_HGS3CACHE_LOCAL_H
#define MOD_HGS3CACHE_LOCAL_H

#include <httpd.h>

#include "hgs3_store.h"
#include "mod_hgs3cache_config.h"

/* For a store with open_local (HgS3CacheStore file:DIR): answers a hit with
 * the object's file (note hit-local). OK when the response went out (or the
 * client left), DECLINED when nothing was sent: the object is gone or does
 * not pass its checks, and hgweb answers. */
int hgs3_local_answer(request_rec *r, const hgs3_dir_conf *conf, hgs3_store *st,
                      const char *object);

#endif
