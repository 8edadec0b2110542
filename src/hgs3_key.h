/* hgs3_key.h: the cache key and the object name.
 *
 * key = SHA-256 over this encoding (format version 2), every variable field
 * written as a big-endian 64-bit length followed by its bytes:
 *
 *   "hgs3cache-key"  version(u32)
 *   salt  location  repo-dir  fingerprint  method  cmd
 *   nargs(u64)  { name value } * nargs        query arguments but cmd, sorted
 *   hgargs                                    X-HgArg-1..N concatenated
 *   post-flag(u8)  [ post ]                   0 = no POST body, 1 = body follows
 *   proto                                     X-HgProto-1..N concatenated
 *   user-flag(u8)  [ user ]                   0 = shared across users,
 *                                             1 = no user, 2 = user follows
 *
 * location is the URL path of the <Location> that maps the repository
 * (hgs3_dir_conf.repo_base): one repository served at two Locations, maybe
 * with different hgweb settings, never shares an object, while the same
 * Location on two hosts does. A NULL salt is the empty salt. Change HGS3_KEY_VERSION whenever
 * anything about the encoding, the fingerprint or the request normalization changes in a way that
 * could make an old key name a different response. */
#ifndef HGS3_KEY_H
#define HGS3_KEY_H

#include <apr_pools.h>

#include "hgs3_crypto.h"
#include "hgs3_req.h"
#include "hgs3_repo.h"

#define HGS3_KEY_VERSION 2
#define HGS3_KEY_HEX_LEN HGS3_SHA256_HEX_LEN

/* Compute the key into out (64 lowercase hex chars and a NUL). location is
 * required and repo must carry a fingerprint (hgs3_repo_fingerprint), else
 * APR_EINVAL. user is
 * r->user (NULL when nobody authenticated); with share_users set it is left
 * out and the key says "shared" instead. On failure out is "". */
apr_status_t hgs3_key_compute(char out[HGS3_KEY_HEX_LEN + 1], apr_pool_t *p, const char *salt,
                              const char *location, const hgs3_repo *repo, const hgs3_req *req,
                              const char *user, int share_users);

/* HgS3CacheKeyPrefix (NULL = "") followed by the hex key, from pool p. */
const char *hgs3_key_object_name(apr_pool_t *p, const char *prefix, const char *hex);

#endif
