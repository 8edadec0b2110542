/* mod_hgs3cache_collapse.h: a follower of a collapsed miss (SPEC "Collapsed
 * misses"); the leader's side is in the capture filter. */
#ifndef MOD_HGS3CACHE_COLLAPSE_H
#define MOD_HGS3CACHE_COLLAPSE_H

#include <httpd.h>
#include "mod_hgs3cache_config.h"

/* Another request holds the upload lock of key hex: answer r from its
 * spool. OK when the response was sent (completely, or aborted after its
 * first byte because the leader failed); DECLINED when nothing was sent
 * and hgweb should answer (no leader to follow, or it failed first). */
int hgs3_collapse_follow(request_rec *r, const hgs3_dir_conf *conf, const char *hex);

#endif
