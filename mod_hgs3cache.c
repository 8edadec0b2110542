/* mod_hgs3cache.c: module declaration and hook registration.
 *
 * mod_hgs3cache stores hgweb's getbundle responses in an S3-compatible object
 * store and answers later identical requests from there. This file only wires
 * things together; the logic lives in src/ (httpd-independent) and in the
 * mod_hgs3cache_*.c glue files. */
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_release.h>

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_capture.h"
#include "mod_hgs3cache_store.h"
#include "mod_hgs3cache_presence.h"
#include "mod_hgs3cache_status.h"
#include "mod_hgs3cache_spooldir.h"
#include "mod_hgs3cache_hit.h"

void hgs3_handler_register(apr_pool_t *p);

/* check_config runs before `apachectl configtest` exits, so whole-config
 * mistakes fail the config test, not only the start. */
static int hgs3_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    return hgs3_config_check(ptemp, s);
}

static int hgs3_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    int rc;
    (void)plog;
    rc = hgs3_store_post_config(pconf, s);
    if (rc == OK) {
        rc = hgs3_presence_post_config(pconf, ptemp, s);
    }
    if (rc == OK) {
        rc = hgs3_status_post_config(pconf, s);
    }
    if (rc == OK) {
        rc = hgs3_spooldir_post_config(pconf, ptemp, s);
    }
    if (rc == OK) {
        hgs3_capture_post_config(ptemp, s);
    }
    return rc;
}

static int hgs3_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    hgs3_presence_pre_config(pconf);
    return OK;
}

static void hgs3_child_init(apr_pool_t *pchild, server_rec *s)
{
    hgs3_presence_child_init(pchild, s);
    hgs3_store_child_init(pchild, s);
}

static void hgs3_register_hooks(apr_pool_t *pool)
{
    ap_hook_pre_config(hgs3_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(hgs3_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(hgs3_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(hgs3_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    hgs3_handler_register(pool);
    hgs3_capture_register(pool);
    hgs3_status_register(pool);
}

AP_DECLARE_MODULE(hgs3cache) = {STANDARD20_MODULE_STUFF,    hgs3_config_create_dir,
                                hgs3_config_merge_dir,      hgs3_config_create_srv,
                                hgs3_config_merge_srv,      hgs3_config_cmds,
                                hgs3_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
                                AP_MODULE_FLAG_ALWAYS_MERGE
#endif
};
