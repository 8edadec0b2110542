/* mod_hgs3cache.h: shared declarations of the httpd glue. */
#ifndef MOD_HGS3CACHE_H
#define MOD_HGS3CACHE_H

#include <httpd.h>
#include <http_config.h>

#include "hgs3_ratelimit.h"

#define HGS3_MODULE_VERSION "0.1.0"
#define HGS3_NOTE           "hgs3cache"
#define HGS3_HEADER         "X-HgS3Cache"

/* Every error and warning line carries a tag of our own, HGS3nnnnn, so it
 * can be looked up and counted: ap_log_rerror(..., HGS3LOGNO(00042) "text") */
#define HGS3LOGNO(n) "HGS3" #n ": "

/* Repeated failures are logged at most once per HGS3_LOG_INTERVAL, counted
 * per message kind: each rate-limited HGS3LOGNO tag has a limiter of its
 * own, declared where it is logged with HGS3_LOG_LIMITER(name), so its
 * "[N similar messages suppressed]" counts only its own kind. */
#define HGS3_LOG_INTERVAL      apr_time_from_sec(10)
#define HGS3_LOG_LIMITER(name) static hgs3_ratelimit name = HGS3_RATELIMIT_INIT(HGS3_LOG_INTERVAL)

/* May a message of rl's kind be logged now? *psuppressed: see
 * hgs3_ratelimit_allow(). */
static APR_INLINE int hgs3_log_allowed(hgs3_ratelimit *rl, apr_uint32_t *psuppressed)
{
    return hgs3_ratelimit_allow(rl, apr_time_now(), psuppressed);
}

extern module AP_MODULE_DECLARE_DATA hgs3cache_module;

#endif
