/* mod_hgs3cache_local.c: hits answered by httpd itself from the file of a
 * local-directory store (HgS3CacheStore file:DIR).
 *
 * The store opens the object and checks it against its sidecar through the
 * open file; the file goes down the output filters as a file bucket, so
 * the core output filter sends it with sendfile when EnableSendfile is on.
 * What is sent is the file that was checked, even if a put replaces or a
 * cleanup removes its name meanwhile. Never a redirect: the directory has
 * no URL clients could use. */
#include <apr_buckets.h>

#include <httpd.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "hgs3_breaker.h"
#include "hgs3_err.h"
#include "mod_hgs3cache.h"
#include "mod_hgs3cache_capture.h"
#include "mod_hgs3cache_local.h"
#include "mod_hgs3cache_status.h"
#include "mod_hgs3cache_store.h"

APLOG_USE_MODULE(hgs3cache);

/* A directory that fails (EIO, EACCES: HGS3_ESTORE) counts toward the
 * breaker, as a store that is down does. */
static void count_failure(request_rec *r, apr_status_t rv)
{
    hgs3_breaker *b = hgs3_store_breaker();
    char buf[128];

    hgs3_status_count(HGS3_C_STORE_ERRORS, 1);
    if (hgs3_is_store_failure(rv) && b && hgs3_breaker_failure(b, apr_time_now())) {
        hgs3_status_count(HGS3_C_BREAKER_TRIPS, 1);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      HGS3LOGNO(02002) "local store failing (%s); skipping lookups for a while",
                      hgs3_strerror(rv, buf, sizeof(buf)));
    }
}

/* The object went away since the lookup (a cleanup, another host): a
 * debug line. Anything else (a torn pair, EIO, EACCES) is the store's
 * failure: a rate-limited warning, and a store error on server-status. */
static void open_failed(request_rec *r, apr_status_t rv, const char *object)
{
    HGS3_LOG_LIMITER(log_02001);
    apr_uint32_t suppressed = 0;
    char buf[128];

    if (rv == HGS3_ENOTFOUND) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "hgs3cache: %s went away before it was served; answering from hgweb", object);
        return;
    }
    count_failure(r, rv);
    if (hgs3_log_allowed(&log_02001, &suppressed)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      HGS3LOGNO(02001) "local store object %s not served: %s; answering from "
                                       "hgweb [%u similar messages suppressed]",
                      object, hgs3_strerror(rv, buf, sizeof(buf)), suppressed);
    }
}

int hgs3_local_answer(request_rec *r, const hgs3_dir_conf *conf, hgs3_store *st, const char *object)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb;
    hgs3_store_object obj;
    apr_file_t *f = NULL;
    apr_status_t rv = hgs3_store_open_local(&f, &obj, st, r->pool, object);

    if (rv != APR_SUCCESS) {
        open_failed(r, rv, object);
        return DECLINED;
    }
    hgs3_set_note(r, conf, "hit-local");
    ap_set_content_type(r, obj.content_type);
    ap_set_content_length(r, obj.content_length);
    bb = apr_brigade_create(r->pool, c->bucket_alloc);
    apr_brigade_insert_file(bb, f, 0, obj.content_length, r->pool);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(c->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    if (rv != APR_SUCCESS && !c->aborted) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, "hgs3cache: sending %s failed", object);
        return AP_FILTER_ERROR;
    }
    return OK;
}
