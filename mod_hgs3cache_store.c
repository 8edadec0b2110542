/* mod_hgs3cache_store.c: the store of a scope, the per-child uploader and
 * its upload jobs.
 *
 * A job owns everything it needs (its own unmanaged pool, its handle on the
 * store, the spool and the per-key lock), so it can outlive the
 * request that captured the body. It ends in exactly one place, job_free(),
 * which removes the spool file and releases the lock whatever happened. */
#include <string.h>
#include <apr_strings.h>
#include <apr_atomic.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <stdlib.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "hgs3_err.h"
#include "hgs3_creds.h"
#include "hgs3_creds_cache.h"
#include "hgs3_client_cache.h"
#include "hgs3_crypto.h"
#include "hgs3_presign_cache.h"
#include "hgs3_store_s3.h"
#include "hgs3_upload.h"
#include "hgs3_store_file.h"
#include "hgs3_breaker.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_store.h"
#include "mod_hgs3cache_loc.h"
#include "mod_hgs3cache_presence.h"
#include "mod_hgs3cache_status.h"

APLOG_USE_MODULE(hgs3cache);

typedef struct store_job {
    apr_pool_t *pool; /* unmanaged: lives exactly as long as the job */
    server_rec *s;
    hgs3_store_conn *conn; /* HGS3_STORE_UPLOAD */
    const char *object;
    const char *content_type;
    hgs3_spool *spool;
    hgs3_lock *lock;
    apr_uint64_t reserved; /* of the host's spool budget (HgS3CacheSpoolMax) */
    const char *presence_id;
} store_job;

static hgs3_uploader *uploader;
static server_rec *main_server;
/* This child's caches, shared by its S3 stores (filled at child_init). */
static hgs3_store_s3_env s3_env;
static hgs3_breaker breaker;
static int breaker_ready;
HGS3_LOG_LIMITER(log_00201);
HGS3_LOG_LIMITER(log_00202);
HGS3_LOG_LIMITER(log_00203);

static void job_free(store_job *job)
{
    if (job->spool) {
        hgs3_spool_destroy(job->spool);
        job->spool = NULL;
    }
    hgs3_status_spool_release(job->reserved);
    hgs3_lock_release(job->lock);
    job->lock = NULL;
    apr_pool_destroy(job->pool);
}

/* The whole body, from memory or its file. The SHA-256 is left to the
 * store (hashed off the request path, and only when it needs it: a
 * multipart upload hashes each part as it sends it). */
static apr_status_t job_put(store_job *job)
{
    hgs3_store_body body;
    apr_status_t rv;

    /* the capture handed the spool over unfinished (see capture.c) */
    if ((rv = hgs3_spool_finish(job->spool)) != APR_SUCCESS) {
        return rv;
    }
    memset(&body, 0, sizeof(body));
    if (hgs3_spool_memory(job->spool, &body.data, &body.len) != APR_SUCCESS) {
        body.data = NULL;
        body.path = hgs3_spool_path(job->spool);
        body.size = hgs3_spool_length(job->spool);
    }
    body.sha256_hex = hgs3_spool_sha256_hex(job->spool);
    return hgs3_store_put(job->conn, job->pool, job->object, &body, job->content_type);
}

/* Set when this child is exiting: running uploads stop at once (the S3
 * client checks it while transferring), so the child exits promptly rather
 * than outliving httpd's patience and being killed with its spool and lock
 * files still in place. */
static apr_uint32_t stopping;

static apr_status_t child_stopping(void *data)
{
    (void)data;
    apr_atomic_set32(&stopping, 1);
    return APR_SUCCESS;
}

static void job_run(void *data)
{
    store_job *job = data;
    apr_time_t start = apr_time_now();
    apr_uint32_t suppressed = 0;
    apr_status_t rv;

    rv = job_put(job);
    if (rv == APR_SUCCESS) {
        hgs3_status_count(HGS3_C_STORED, 1);
        hgs3_status_count(HGS3_C_STORED_BYTES, (apr_uint64_t)hgs3_spool_length(job->spool));
        hgs3_presence_put(job->s, job->pool, job->presence_id, apr_time_now());
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, job->s,
                     "hgs3cache: stored %s (%" APR_OFF_T_FMT " bytes, %s) in %" APR_TIME_T_FMT
                     " ms",
                     job->object, hgs3_spool_length(job->spool), job->content_type,
                     apr_time_as_msec(apr_time_now() - start));
    } else if (rv == HGS3_EABORTED && apr_atomic_read32(&stopping)) {
        hgs3_status_count(HGS3_C_UPLOADS_DROPPED, 1);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, job->s,
                     "hgs3cache: upload of %s cancelled: the child is exiting", job->object);
        job_free(job);
        return;
    } else {
        hgs3_status_count(HGS3_C_UPLOAD_ERRORS, 1);
    }
    if (rv != APR_SUCCESS && hgs3_log_allowed(&log_00201, &suppressed)) {
        char buf[128];
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, job->s,
                     HGS3LOGNO(00201) "upload of %s failed: %s (%s); the response was served "
                                      "but not stored [%u similar messages suppressed]",
                     job->object, hgs3_strerror(rv, buf, sizeof(buf)),
                     hgs3_store_error_text(job->pool, job->conn), suppressed);
    }
    job_free(job);
}

static void job_drop(void *data)
{
    hgs3_status_count(HGS3_C_UPLOADS_DROPPED, 1);
    job_free(data);
}

/* ---- the store of a scope ------------------------------------------------ */

/* The S3 settings of a scope: the endpoint httpd uses, the request-path
 * bounds (HgS3CacheTimeout), and where the credentials come from. */
static void s3_settings(hgs3_store_s3_settings *set, apr_pool_t *p, const hgs3_dir_conf *conf)
{
    memset(set, 0, sizeof(*set));
    set->s3.endpoint = hgs3_conf_endpoint(p, conf);
    set->s3.region = hgs3_conf_region(conf);
    set->s3.addressing =
        hgs3_conf_addressing(conf) == HGS3_ADDR_PATH ? HGS3_S3_PATH : HGS3_S3_VIRTUAL;
    set->s3.bucket = conf->bucket;
    set->s3.ca_file = conf->ca_file;
    set->s3.ca_path = conf->ca_path;
    set->s3.connect_timeout_ms = hgs3_conf_connect_ms(conf);
    set->s3.timeout_ms = hgs3_conf_lookup_ms(conf);
    set->s3.multipart_threshold = hgs3_conf_multipart_threshold(conf);
    set->s3.creds.access_key = conf->access_key;
    set->s3.creds.secret_key = conf->secret_key;
    set->s3.creds.session_token = conf->session_token;
    set->public_endpoint = hgs3_conf_public_endpoint(p, conf);
    set->creds_file = conf->creds_file;
    set->creds_profile = conf->creds_profile;
    set->env = &s3_env;
}

apr_status_t hgs3_store_for(hgs3_store **pst, apr_pool_t *p, const hgs3_dir_conf *conf)
{
    hgs3_store_s3_settings set;

    if (hgs3_conf_store_dir(conf)) {
        return hgs3_store_file_create(pst, p, hgs3_conf_store_dir(conf));
    }
    s3_settings(&set, p, conf);
    return hgs3_store_s3_create(pst, p, &set);
}

/* The job's handle on the scope's store (which lives as long as the
 * child): credentials resolved now, in the request. */
static apr_status_t job_config(store_job *job, const hgs3_loc *loc, hgs3_skip_e *why)
{
    apr_status_t rv = hgs3_store_connect(&job->conn, loc->store, job->pool, HGS3_STORE_UPLOAD);

    if (rv != APR_SUCCESS) {
        *why = HGS3_SKIP_CREDENTIALS;
        return rv;
    }
    job->presence_id = hgs3_store_object_id(job->pool, loc->store, job->object);
    return APR_SUCCESS;
}

hgs3_skip_e hgs3_store_submit(request_rec *r, const hgs3_loc *loc, const char *object,
                              const char *content_type, hgs3_spool *spool, hgs3_lock *lock,
                              apr_uint64_t reserved)
{
    store_job *job;
    apr_pool_t *p = NULL;
    hgs3_skip_e why = HGS3_SKIP_NONE;
    apr_uint32_t suppressed = 0;
    apr_status_t rv;

    if (!uploader) {
        return HGS3_SKIP_NO_UPLOADER;
    }
    rv = apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    if (rv != APR_SUCCESS) {
        return HGS3_SKIP_NO_MEMORY;
    }
    job = apr_pcalloc(p, sizeof(*job));
    job->pool = p;
    job->s = main_server;
    job->object = apr_pstrdup(p, object);
    job->content_type = apr_pstrdup(p, content_type);
    rv = job_config(job, loc, &why);
    if (rv != APR_SUCCESS) {
        if (hgs3_log_allowed(&log_00202, &suppressed)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r,
                          HGS3LOGNO(00202) "no usable store credentials; not storing "
                                           "[%u similar messages suppressed]",
                          suppressed);
        }
        apr_pool_destroy(p);
        return why;
    }
    job->spool = spool;
    job->lock = lock;
    job->reserved = reserved;
    /* hand-off: from now on the spool is the job's, not the request's */
    hgs3_spool_set_owner(spool, NULL);
    rv = hgs3_uploader_submit(uploader, job_run, job_drop, job);
    if (rv != APR_SUCCESS) {
        if (rv == APR_EAGAIN) {
            hgs3_status_count(HGS3_C_UPLOADS_DROPPED, 1);
        }
        hgs3_spool_set_owner(spool, r->pool);
        if (rv == APR_EAGAIN && hgs3_log_allowed(&log_00203, &suppressed)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          HGS3LOGNO(00203) "upload queue full (HgS3CacheUploadQueue); response "
                                           "not stored [%u similar messages suppressed]",
                          suppressed);
        }
        /* the caller keeps spool and lock */
        apr_pool_destroy(p);
        return rv == APR_EAGAIN ? HGS3_SKIP_QUEUE_FULL : HGS3_SKIP_UPLOADER_STOPPED;
    }
    return HGS3_SKIP_NONE;
}

static apr_status_t global_cleanup(void *data)
{
    (void)data;
    hgs3_store_s3_global_cleanup();
    return APR_SUCCESS;
}

int hgs3_store_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_status_t rv = hgs3_store_s3_global_init();
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     HGS3LOGNO(00204) "libcurl initialization failed");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, NULL, global_cleanup, apr_pool_cleanup_null);
    return OK;
}

void hgs3_store_child_init(apr_pool_t *pchild, server_rec *s)
{
    hgs3_srv_conf *sc = hgs3_get_srv_conf(s);
    apr_status_t rv;

    main_server = s;
    apr_atomic_set32(&stopping, 0);
    memset(&s3_env, 0, sizeof(s3_env));
    s3_env.cancel = &stopping;
    if (hgs3_client_cache_create(&s3_env.clients, pchild) != APR_SUCCESS) {
        s3_env.clients = NULL;
    }
    if (hgs3_creds_cache_create(&s3_env.creds, pchild) != APR_SUCCESS) {
        s3_env.creds = NULL;
    }
    if (hgs3_presign_cache_create(&s3_env.presign, pchild, HGS3_PRESIGN_CACHE_SLOTS) !=
        APR_SUCCESS) {
        s3_env.presign = NULL;
    }
    rv = hgs3_breaker_init(&breaker, pchild, hgs3_srv_breaker_fails(sc),
                           apr_time_from_sec(hgs3_srv_breaker_secs(sc)));
    breaker_ready = (rv == APR_SUCCESS);
    if (rv == APR_SUCCESS) {
        rv = hgs3_sigv4_keycache_create(&s3_env.keycache, pchild);
    }
    if (rv == APR_SUCCESS) {
        rv = hgs3_uploader_create(&uploader, pchild, hgs3_srv_upload_workers(sc),
                                  hgs3_srv_upload_queue(sc));
    }
    /* Registered after the uploader's own pre-cleanup, which waits for the
     * running jobs, so that it runs before it (cleanups run in reverse). */
    apr_pool_pre_cleanup_register(pchild, NULL, child_stopping);
    if (rv != APR_SUCCESS) {
        uploader = NULL;
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     HGS3LOGNO(00205) "cannot start the upload threads; responses will not be "
                                      "stored by this child");
    }
}

hgs3_breaker *hgs3_store_breaker(void)
{
    return breaker_ready ? &breaker : NULL;
}

/* ---- sweeping the spool directory ------------------------------------------
 *
 * A child killed outright (SIGKILL, crash) leaves its lock and spool files
 * behind. Nobody holds their flock any more, so hgs3_lock_sweep can tell
 * them from live ones. The first capture of a child, and then one every
 * SWEEP_INTERVAL, has an upload thread sweep its spool directory, looking
 * at no more than SWEEP_MAX entries. */
#define SWEEP_INTERVAL_SEC 60
#define SWEEP_MAX          1000

typedef struct sweep_job {
    apr_pool_t *pool;
    const char *dir;
} sweep_job;

static volatile apr_uint32_t last_sweep_sec;

static void sweep_free(void *data)
{
    sweep_job *job = data;
    apr_pool_destroy(job->pool);
}

static void sweep_run(void *data)
{
    sweep_job *job = data;
    int removed = 0;

    hgs3_lock_sweep(job->pool, job->dir, SWEEP_MAX, HGS3_SWEEP_GRACE, &removed);
    if (removed) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, main_server,
                     "hgs3cache: removed %d lock and spool files of exited processes from %s",
                     removed, job->dir);
    }
    sweep_free(job);
}

void hgs3_store_sweep_later(const char *dir)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint32_t last = apr_atomic_read32(&last_sweep_sec);
    apr_pool_t *p = NULL;
    sweep_job *job;

    if (!uploader || (last && now - last < SWEEP_INTERVAL_SEC) ||
        apr_atomic_cas32(&last_sweep_sec, now, last) != last ||
        apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        return;
    }
    job = apr_pcalloc(p, sizeof(*job));
    job->pool = p;
    job->dir = apr_pstrdup(p, dir);
    if (hgs3_uploader_submit(uploader, sweep_run, sweep_free, job) != APR_SUCCESS) {
        apr_pool_destroy(p); /* queue full: the next interval will do */
    }
}
