/* hgs3_upload.h: the bounded background uploader of one child process.
 *
 * Responses are stored off the request path: the capture filter hands a job
 * to the uploader and the client's response never waits for it. The queue is
 * bounded: when HgS3CacheUploadQueue jobs are already waiting, submit refuses
 * (APR_EAGAIN) and the caller drops the job and counts it. It never blocks.
 *
 * Work runs on an apr_thread_pool of HgS3CacheUploadWorkers threads. Every
 * job ends through exactly one of its two callbacks: run() (it ran) or drop()
 * (it never will: the queue was shut down first). Both must release what the
 * job owns (spool file, lock), so no temp file outlives the child. */
#ifndef HGS3_UPLOAD_H
#define HGS3_UPLOAD_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct hgs3_uploader hgs3_uploader;

typedef void hgs3_upload_run_fn(void *job);
typedef void hgs3_upload_drop_fn(void *job);

typedef struct hgs3_upload_stats {
    apr_uint32_t queued;    /* waiting now */
    apr_uint32_t running;   /* running now */
    apr_uint64_t submitted; /* accepted since start */
    apr_uint64_t refused;   /* refused because the queue was full */
    apr_uint64_t completed; /* ran to the end (whatever the outcome) */
    apr_uint64_t dropped;   /* dropped at shutdown without running */
} hgs3_upload_stats;

/* Create an uploader with `workers` threads and room for `queue_max`
 * waiting jobs. Its lifetime is pool p: destroying p shuts it down
 * (hgs3_uploader_shutdown). */
apr_status_t hgs3_uploader_create(hgs3_uploader **pu, apr_pool_t *p, int workers, int queue_max);

/* Queue a job. APR_SUCCESS: exactly one of run/drop will be called, on
 * another thread (or at shutdown). APR_EAGAIN: the queue is full, APR_EOF:
 * shutting down; in both cases nothing will be called and the caller still
 * owns the job. */
apr_status_t hgs3_uploader_submit(hgs3_uploader *u, hgs3_upload_run_fn *run,
                                  hgs3_upload_drop_fn *drop, void *job);

/* Stop taking jobs, drop the queued ones, and wait for the running ones to
 * finish (they are bounded by the S3 client's own timeouts). Idempotent. */
void hgs3_uploader_shutdown(hgs3_uploader *u);

void hgs3_uploader_stats(hgs3_uploader *u, hgs3_upload_stats *st);

#endif
