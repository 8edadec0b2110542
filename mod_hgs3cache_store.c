/* mod_hgs3cache_store.c: the per-child uploader and its upload jobs.
 *
 * A job owns everything it needs (its own unmanaged pool, a copy of the store
 * configuration, the spool and the per-key lock), so it can outlive the
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
#include "hgs3_s3.h"
#include "hgs3_upload.h"
#include "hgs3_breaker.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_store.h"
#include "mod_hgs3cache_presence.h"
#include "mod_hgs3cache_status.h"

APLOG_USE_MODULE(hgs3cache);

/* Uploads are off the request path; their bound is generous but finite so
 * a hung store cannot hold a child's shutdown forever. */
#define UPLOAD_BASE_TIMEOUT_MS 60000
#define UPLOAD_MS_PER_MIB      1000
/* ...and a store that stops answering gives up sooner, freeing the key. */
#define UPLOAD_STALL_MS 15000

typedef struct store_job {
    apr_pool_t *pool; /* unmanaged: lives exactly as long as the job */
    server_rec *s;
    hgs3_s3_config s3;
    const char *object;
    const char *content_type;
    hgs3_spool *spool;
    hgs3_lock *lock;
    apr_uint64_t reserved; /* of the host's spool budget (HgS3CacheSpoolMax) */
    const char *presence_id;
} store_job;

static hgs3_uploader *uploader;
static server_rec *main_server;
static hgs3_sigv4_keycache *keycache;
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

/* Each byte is hashed once: a multipart upload hashes every part for its
 * own x-amz-content-sha256 as it sends it, so the whole body's SHA-256
 * (which a multipart upload does not use) is computed only for a single
 * PutObject. */
static apr_status_t job_put(store_job *job, hgs3_s3_client *c, const char **etag)
{
    const void *data = NULL;
    apr_size_t len = 0;
    apr_off_t size = hgs3_spool_length(job->spool);
    apr_status_t rv;

    /* the capture handed the spool over unfinished (see capture.c) */
    if ((rv = hgs3_spool_finish(job->spool)) != APR_SUCCESS) {
        return rv;
    }
    if (hgs3_spool_memory(job->spool, &data, &len) != APR_SUCCESS &&
        size > job->s3.multipart_threshold) {
        return hgs3_s3_put_file_multipart(c, job->pool, job->object, hgs3_spool_path(job->spool),
                                          job->content_type, etag);
    }
    if ((rv = hgs3_spool_hash(job->spool)) != APR_SUCCESS) {
        return rv;
    }
    if (data) {
        return hgs3_s3_put_mem(c, job->pool, job->object, data, len, job->content_type,
                               hgs3_spool_sha256_hex(job->spool), etag);
    }
    return hgs3_s3_put_file(c, job->pool, job->object, hgs3_spool_path(job->spool),
                            job->content_type, hgs3_spool_sha256_hex(job->spool), etag);
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
    hgs3_s3_client *c = NULL;
    const char *etag = NULL;
    apr_time_t start = apr_time_now();
    apr_uint32_t suppressed = 0;
    apr_status_t rv;

    rv = hgs3_s3_client_create(&c, job->pool, &job->s3);
    if (rv == APR_SUCCESS) {
        rv = job_put(job, c, &etag);
    }
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
                     c ? hgs3_s3_error_text(job->pool, c) : "no client", suppressed);
    }
    job_free(job);
}

static void job_drop(void *data)
{
    hgs3_status_count(HGS3_C_UPLOADS_DROPPED, 1);
    job_free(data);
}

/* ---- credentials ---------------------------------------------------------
 *
 * Files and the environment through the child's credentials cache (see
 * hgs3_creds_cache.h). */

static hgs3_creds_cache *creds_cache;

static apr_status_t creds_resolve(hgs3_creds *out, apr_pool_t *p, const hgs3_dir_conf *conf)
{
    hgs3_creds statics = {conf->access_key, conf->secret_key, conf->session_token};

    memset(out, 0, sizeof(*out));
    if (conf->access_key || !creds_cache) {
        /* static credentials, or not in a child (no cache): direct */
        return hgs3_creds_resolve(out, p, &statics, conf->creds_file, conf->creds_profile, NULL,
                                  NULL);
    }
    return hgs3_creds_cache_get(creds_cache, out, p, conf->creds_file, conf->creds_profile);
}

apr_status_t hgs3_store_s3_config(hgs3_s3_config *s3, apr_pool_t *p, const hgs3_dir_conf *conf)
{
    apr_status_t rv;

    memset(s3, 0, sizeof(*s3));
    rv = creds_resolve(&s3->creds, p, conf);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    s3->endpoint = apr_pstrdup(p, hgs3_conf_endpoint(p, conf));
    s3->region = apr_pstrdup(p, hgs3_conf_region(conf));
    s3->addressing = hgs3_conf_addressing(conf) == HGS3_ADDR_PATH ? HGS3_S3_PATH : HGS3_S3_VIRTUAL;
    s3->bucket = apr_pstrdup(p, conf->bucket);
    s3->ca_file = conf->ca_file ? apr_pstrdup(p, conf->ca_file) : NULL;
    s3->ca_path = conf->ca_path ? apr_pstrdup(p, conf->ca_path) : NULL;
    s3->connect_timeout_ms = hgs3_conf_connect_ms(conf);
    s3->timeout_ms = hgs3_conf_lookup_ms(conf);
    s3->upload_tries = 1;
    s3->multipart_threshold = hgs3_conf_multipart_threshold(conf);
    s3->part_size = hgs3_conf_multipart_threshold(conf);
    s3->keycache = keycache;
    return APR_SUCCESS;
}

/* ---- per-thread clients (see hgs3_client_cache.h) ----------------------- */

static hgs3_client_cache *client_cache;

apr_status_t hgs3_store_client(hgs3_s3_client **pc, apr_pool_t *p, const hgs3_s3_config *s3)
{
    return hgs3_client_cache_get(client_cache, pc, p, s3);
}

const char *hgs3_store_presence_id(apr_pool_t *p, const hgs3_dir_conf *conf, const char *object)
{
    return apr_pstrcat(p, hgs3_conf_endpoint(p, conf), "\n", conf->bucket, "\n", object, NULL);
}

/* Copy the store configuration of this scope into the job's pool. */
static apr_status_t job_config(store_job *job, const hgs3_dir_conf *conf, apr_off_t size,
                               hgs3_skip_e *why)
{
    apr_status_t rv = hgs3_store_s3_config(&job->s3, job->pool, conf);
    if (rv != APR_SUCCESS) {
        *why = HGS3_SKIP_CREDENTIALS;
        return rv;
    }
    job->s3.timeout_ms = UPLOAD_BASE_TIMEOUT_MS + (long)(size >> 20) * UPLOAD_MS_PER_MIB;
    job->s3.stall_timeout_ms = UPLOAD_STALL_MS;
    job->s3.upload_tries = 0; /* the client's default bounded retries */
    job->s3.cancel = &stopping;
    job->presence_id = apr_pstrdup(job->pool, hgs3_store_presence_id(job->pool, conf, job->object));
    return APR_SUCCESS;
}

hgs3_skip_e hgs3_store_submit(request_rec *r, const hgs3_dir_conf *conf, const char *object,
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
    rv = job_config(job, conf, hgs3_spool_length(spool), &why);
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
    hgs3_s3_global_cleanup();
    return APR_SUCCESS;
}

int hgs3_store_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_status_t rv = hgs3_s3_global_init();
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
    if (hgs3_client_cache_create(&client_cache, pchild) != APR_SUCCESS) {
        client_cache = NULL;
    }
    if (hgs3_creds_cache_create(&creds_cache, pchild) != APR_SUCCESS) {
        creds_cache = NULL;
    }
    rv = hgs3_breaker_init(&breaker, pchild, hgs3_srv_breaker_fails(sc),
                           apr_time_from_sec(hgs3_srv_breaker_secs(sc)));
    breaker_ready = (rv == APR_SUCCESS);
    if (rv == APR_SUCCESS) {
        rv = hgs3_sigv4_keycache_create(&keycache, pchild);
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
