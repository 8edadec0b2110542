/* hgs3_spool.h: a write-once body spool for responses being captured.
 *
 * The capture filter tees every data bucket of a getbundle response into a
 * spool. The spool keeps the body in memory up to memory_limit bytes, in
 * fixed-size blocks taken from its own allocator (never one buffer grown by
 * realloc). The first write that would go beyond memory_limit spills what
 * is held to a temp file made with apr_file_mktemp in spool_dir, named
 * "hgs3spool.XXXXXX", mode 0600, and everything after goes to that file
 * (written in the caller's thread, or, with hgs3_spool_write_behind, by a
 * writer thread of the spool's own). The spool counts the length and
 * computes the SHA-256 while data is written, or later on request
 * (hgs3_spool_defer_hash), for the uploader's x-amz-content-sha256.
 *
 * Life cycle:
 *
 *   create -> write* -> finish -> (read by the uploader) -> destroy
 *                \-> discard (at any time, any number of times) -> destroy
 *
 * Ownership and threads. A spool outlives the request that fills it: at
 * EOS the filter hands it to a background uploader thread. So a spool does
 * not live in the request pool. It has a pool of its own, with an allocator
 * of its own (no mutex), created as a child of APR's global pool; creating
 * and destroying such a pool is safe from any thread because the global
 * allocator is mutex protected, and a spool still alive at apr_terminate()
 * is destroyed then (its temp file removed). Its lifetime is tied to an
 * "owner" pool by a cleanup: while the request owns it, destroying the
 * request pool (the request ended or was aborted) destroys the spool and
 * removes its temp file, so no spool file leaks.
 *
 * Hand-off: in the request thread call hgs3_spool_set_owner(spool, NULL),
 * then pass the pointer through a mutex-protected queue (the mutex orders
 * memory between the threads). From then on only the uploader thread
 * touches the spool and must eventually call hgs3_spool_destroy() (or
 * hgs3_spool_set_owner() with a pool of its own thread). If the queue
 * is full, destroy it right away instead. A spool is never used by two
 * threads at the same time; only the write-behind thread, internal to the
 * spool, runs alongside its user, and the spool synchronizes with it.
 *
 * The temp file is created WITHOUT APR_FOPEN_DELONCLOSE: it stays in place,
 * open for reading, until discard/destroy, so the uploader can send it by
 * path (hgs3_spool_path) or through the open handle (hgs3_spool_file,
 * hgs3_spool_read at any offset, for multipart). Removal is done by the
 * spool itself: on discard, on destroy, and by a cleanup of the spool's
 * pool. Only a process killed outright (SIGKILL, crash) can leave a
 * hgs3spool.* file behind: the spool holds an flock(2) on its file while
 * it exists, so hgs3_lock_sweep (hgs3_lock.h) can tell such a leftover,
 * whose flock died with its process, from a live spool's file.
 *
 * Errors (mktemp failed, disk full, body over max_size) are returned as
 * apr_status_t and are sticky: the spool releases its memory and file at
 * once, and every later write/finish returns the same status. The caller
 * then stops capturing and destroys the spool; the response itself is
 * never affected. */
#ifndef HGS3_SPOOL_H
#define HGS3_SPOOL_H

#include <apr_pools.h>
#include <apr_file_io.h>

#include "hgs3_crypto.h"

/* Size of the in-memory blocks (the last one may be partly used). */
#define HGS3_SPOOL_BLOCK_SIZE (64 * 1024)

typedef struct hgs3_spool hgs3_spool;

/* Create an empty spool.
 * owner:        pool whose destruction destroys the spool (normally r->pool);
 *               NULL makes the caller responsible for hgs3_spool_destroy().
 * memory_limit: bytes held in memory; a body longer than this goes to a
 *               temp file (0: any non-empty body goes to a file).
 * spool_dir:    directory for the temp file; NULL uses apr_temp_dir_get().
 *               Nothing is created there until the body needs it.
 * max_size:     longest body accepted; a write beyond it fails with
 *               HGS3_ETOOBIG. A value <= 0 means no limit. */
apr_status_t hgs3_spool_create(hgs3_spool **pspool, apr_pool_t *owner, apr_size_t memory_limit,
                               const char *spool_dir, apr_off_t max_size);

/* Append len bytes. Returns HGS3_ETOOBIG when the body would exceed
 * max_size, the file error when spilling or writing fails, APR_EINVAL after
 * finish or discard. Any failure is sticky and releases the spool's data. */
apr_status_t hgs3_spool_write(hgs3_spool *spool, const void *data, apr_size_t len);

/* The body is complete: finalize the SHA-256, flush the file and keep it
 * open for reading; an in-memory body is copied into one contiguous buffer
 * (so up to twice memory_limit is held for a moment). After this, only
 * the accessors below, discard and destroy may be used. */
apr_status_t hgs3_spool_finish(hgs3_spool *spool);

/* Drop the data: free the memory, close and remove the temp file. Safe at
 * any time and any number of times; the spool object itself stays valid
 * (every later write/finish/read fails) until hgs3_spool_destroy(). */
void hgs3_spool_discard(hgs3_spool *spool);

/* Discard and free the spool itself; it must not be used afterwards.
 * Must be called by the thread that uses the current owner pool, if any
 * (the request thread before hand-off, the uploader after it). */
void hgs3_spool_destroy(hgs3_spool *spool);

/* Tie the spool's lifetime to another pool, or to none (NULL), for the
 * hand-off described above. Unregistering from the old owner and
 * registering with the new one touch those pools: call it from the thread
 * that owns them (set NULL in the request thread; set the uploader's pool,
 * if wanted, in the uploader thread). */
void hgs3_spool_set_owner(hgs3_spool *spool, apr_pool_t *owner);

/* APR_SUCCESS, or the sticky failure of an earlier write/finish (or of the
 * write-behind thread, so far), or APR_EINVAL once discarded. */
apr_status_t hgs3_spool_status(const hgs3_spool *spool);

/* Bytes written so far (the body length after finish). */
apr_off_t hgs3_spool_length(const hgs3_spool *spool);

/* After a successful finish: the body's SHA-256, raw (32 bytes) and as 64
 * lowercase hex chars. NULL before finish or after a failure. */
const unsigned char *hgs3_spool_sha256(const hgs3_spool *spool);
const char *hgs3_spool_sha256_hex(const hgs3_spool *spool);

/* Do not hash while writing: the capture filter runs on the response path,
 * so it leaves the SHA-256 to the uploader thread (hgs3_spool_hash). Must be
 * called before the first write. The sha256 accessors then return NULL until
 * hgs3_spool_hash() succeeded. */
void hgs3_spool_defer_hash(hgs3_spool *spool);

/* Write-behind: once the body spills, write the file from a thread of the
 * spool's own instead of in hgs3_spool_write. The writer then only copies
 * into 64 KiB blocks (reused once written), so a capture filter that tees
 * a response into the spool is not slowed down by the disk. At most
 * `window` bytes (at least 256 KiB) wait to be written; a write that would
 * exceed it waits for the writer, so memory stays bounded by memory_limit
 * or window, whichever is larger, plus one block. A write error of the
 * writer becomes the spool's sticky failure (seen by the next write,
 * hgs3_spool_status or finish). hgs3_spool_finish ends the input and joins
 * the writer, so it may take as long as the remaining writes; call it
 * where that does not matter (the uploader thread, after hand-off).
 * discard/destroy stop the writer at once. Must be called before the
 * first write; APR_EINVAL otherwise. No thread is started unless the body
 * spills. */
apr_status_t hgs3_spool_write_behind(hgs3_spool *spool, apr_size_t window);

/* Readers of a growing file (collapsed misses, hgs3_collapse.h): the
 * write-behind thread stores in *counter, with release order, how many
 * bytes of the file are written after each batch. Needs write-behind, and
 * memory_limit 0 so the file exists from the first byte; must be called
 * before the first write (APR_EINVAL otherwise). counter must stay valid
 * until the writer is joined (finish, discard or destroy). */
apr_status_t hgs3_spool_publish(hgs3_spool *spool, apr_uint64_t *counter);

/* Hand the partly filled last block to the writer now and wake it, so
 * readers of the file need not wait for a full block or batch (a no-op
 * without a writer). Does not wait: the window may be exceeded by this one
 * block. */
apr_status_t hgs3_spool_push(hgs3_spool *spool);

/* After finish: compute the SHA-256 now if it was deferred (reads the body
 * back from memory or the file). No-op when already known. */
apr_status_t hgs3_spool_hash(hgs3_spool *spool);

/* True while the body is held in memory (never spilled). */
int hgs3_spool_in_memory(const hgs3_spool *spool);

/* After finish, for an in-memory body: the contiguous bytes (valid until
 * discard/destroy). APR_EINVAL if the body is in a file or not finished. */
apr_status_t hgs3_spool_memory(const hgs3_spool *spool, const void **pdata, apr_size_t *plen);

/* After finish, for a spilled body: the temp file's path, and its handle
 * (open for reading; its offset is moved by hgs3_spool_read). NULL when the
 * body is in memory or has been discarded. */
const char *hgs3_spool_path(const hgs3_spool *spool);
apr_file_t *hgs3_spool_file(const hgs3_spool *spool);

/* After finish: copy up to len bytes from offset into buf, from memory or
 * the file alike (for a libcurl read callback or one multipart part).
 * *nread is how many were copied: less than len only at the end of the
 * body. APR_EOF when offset is at or past the end; APR_INCOMPLETE if the
 * file turns out shorter than the body (truncated behind our back). */
apr_status_t hgs3_spool_read(hgs3_spool *spool, apr_off_t offset, void *buf, apr_size_t len,
                             apr_size_t *nread);

/* The spool's own pool, for allocations that should live exactly as long
 * as the spool (e.g. the upload job built around it). Same thread rule. */
apr_pool_t *hgs3_spool_pool(const hgs3_spool *spool);

#endif
