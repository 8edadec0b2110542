/* mod_hgs3cache.h: shared declarations of the httpd glue. */
#ifndef MOD_HGS3CACHE_H
#define MOD_HGS3CACHE_H

#include <httpd.h>
#include <http_config.h>

#define HGS3_MODULE_VERSION "0.1.0"
#define HGS3_NOTE           "hgs3cache"
#define HGS3_HEADER         "X-HgS3Cache"

/* Every error and warning line carries a tag of our own, HGS3nnnnn, so it
 * can be looked up and counted: ap_log_rerror(..., HGS3LOGNO(00042) "text") */
#define HGS3LOGNO(n) "HGS3" #n ": "

extern module AP_MODULE_DECLARE_DATA hgs3cache_module;

#endif
