/* hgs3_spool.c: write-once body spool, memory first, then a temp file.
 * See hgs3_spool.h for the ownership and threading rules. */
#include <string.h>
#include <apr_allocator.h>
#include <apr_portable.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "hgs3_err.h"
#include "hgs3_crypto.h"
#include "hgs3_lock.h"
#include "hgs3_spool.h"

#define SPOOL_TEMPLATE "hgs3spool.XXXXXX"

struct hgs3_spool {
    apr_pool_t *pool;           /* our own: child of the global pool */
    apr_allocator_t *allocator; /* owned by pool; memory blocks come from it */
    apr_pool_t *owner;          /* destroying it destroys us; may be NULL */

    apr_size_t memory_limit;
    apr_off_t max_size; /* <= 0: unlimited */
    const char *dir;

    apr_memnode_t *blocks; /* in-memory body, in order; NULL when spilled */
    apr_memnode_t *tail;
    apr_memnode_t *whole; /* after finish: the contiguous in-memory body */

    apr_file_t *file; /* NULL while in memory */
    char *path;

    hgs3_sha256_ctx *sha;
    apr_off_t length;
    apr_status_t failed; /* sticky status of an earlier failure */
    int finished;
    int discarded;
    int defer_hash; /* hash later, in hgs3_spool_hash() */
    int hashed;     /* digest and hex are valid */
    unsigned char digest[HGS3_SHA256_LEN];
    char hex[HGS3_SHA256_HEX_LEN + 1];

    /* Write-behind (hgs3_spool_write_behind): once spilled, full blocks are
     * queued on `pending` and a writer thread of the spool's own writes
     * them to the file. Everything below `mu` is shared with that thread
     * and guarded by it; the writer owns `file` until it is joined. */
    apr_size_t window; /* 0: write in the caller's thread */
    apr_thread_t *writer;
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *more; /* for the writer: data, end of input or stop */
    apr_thread_cond_t *room; /* for the producer: pending shrank, or writer ended */
    apr_memnode_t *pending;  /* blocks to write, in order */
    apr_memnode_t *pending_tail;
    apr_memnode_t *free_nodes; /* written blocks, for reuse by the producer */
    apr_size_t pending_bytes;  /* queued or being written */
    apr_size_t queued_bytes;   /* on `pending`, not yet taken by the writer */
    int input_done;            /* no more blocks will come */
    int stop;                  /* drop everything and quit */
    int writer_ended;          /* the writer thread returned (or will at once) */
    apr_status_t writer_rv;    /* its write error, if any */
    apr_uint64_t *publish;     /* hgs3_spool_publish: bytes on the file */
    apr_uint64_t written;      /* by the writer thread */
};

/* apr_allocator_alloc hands out a node whose usable memory starts right
 * after its header, at first_avail; we advance first_avail as we fill it. */
static char *node_start(apr_memnode_t *node)
{
    return (char *)node + APR_MEMNODE_T_SIZE;
}

static apr_size_t node_used(apr_memnode_t *node)
{
    return (apr_size_t)(node->first_avail - node_start(node));
}

/* Copy as much of *data as fits into node; advance *data and *len. */
static void fill_block(apr_memnode_t *node, const char **data, apr_size_t *len)
{
    apr_size_t n = (apr_size_t)(node->endp - node->first_avail);

    n = *len < n ? *len : n;
    memcpy(node->first_avail, *data, n);
    node->first_avail += n;
    *data += n;
    *len -= n;
}

static void free_list(hgs3_spool *spool, apr_memnode_t **list)
{
    if (*list) {
        apr_allocator_free(spool->allocator, *list);
        *list = NULL;
    }
}

/* Only with no writer thread running (never started, or joined). */
static void free_memory(hgs3_spool *spool)
{
    free_list(spool, &spool->blocks);
    free_list(spool, &spool->whole);
    free_list(spool, &spool->pending);
    free_list(spool, &spool->free_nodes);
    spool->tail = spool->pending_tail = NULL;
    spool->pending_bytes = 0;
}

/* Runs before the allocator goes away: memnodes handed out by
 * apr_allocator_alloc are not freed by apr_allocator_destroy. */
static apr_status_t memory_cleanup(void *data)
{
    free_memory(data);
    return APR_SUCCESS;
}

static apr_status_t file_cleanup(void *data)
{
    hgs3_spool *spool = data;
    if (spool->file) {
        apr_file_close(spool->file);
        spool->file = NULL;
    }
    if (spool->path) {
        apr_file_remove(spool->path, spool->pool);
        spool->path = NULL;
    }
    return APR_SUCCESS;
}

static void remove_file(hgs3_spool *spool)
{
    if (spool->file || spool->path) {
        apr_pool_cleanup_kill(spool->pool, spool, file_cleanup);
        file_cleanup(spool);
    }
}

static void writer_stop(hgs3_spool *spool);

static void release(hgs3_spool *spool)
{
    writer_stop(spool);
    free_memory(spool);
    remove_file(spool);
}

/* Record a failure: it is sticky and the data is dropped at once, so a full
 * disk gets its space back without waiting for the owner. */
static apr_status_t fail(hgs3_spool *spool, apr_status_t rv)
{
    spool->failed = rv;
    release(spool);
    return rv;
}

static apr_status_t owner_cleanup(void *data)
{
    hgs3_spool *spool = data;
    spool->owner = NULL; /* its cleanup is running: nothing to kill */
    hgs3_spool_destroy(spool);
    return APR_SUCCESS;
}

apr_status_t hgs3_spool_create(hgs3_spool **pspool, apr_pool_t *owner, apr_size_t memory_limit,
                               const char *spool_dir, apr_off_t max_size)
{
    apr_allocator_t *allocator = NULL;
    apr_pool_t *pool = NULL;
    hgs3_spool *spool;
    apr_status_t rv;

    *pspool = NULL;
    rv = apr_allocator_create(&allocator);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    /* Parent NULL: a child of the global pool, whose allocator has a mutex,
     * so this pool may be created here and destroyed in another thread. */
    rv = apr_pool_create_ex(&pool, NULL, owner ? apr_pool_abort_get(owner) : NULL, allocator);
    if (rv != APR_SUCCESS) {
        apr_allocator_destroy(allocator);
        goto leave;
    }
    apr_allocator_owner_set(allocator, pool);
    /* Blocks freed on spill go back to the system, not to a free list. */
    apr_allocator_max_free_set(allocator, HGS3_SPOOL_BLOCK_SIZE);
    apr_pool_tag(pool, "hgs3_spool");

    spool = apr_pcalloc(pool, sizeof(*spool));
    spool->pool = pool;
    spool->allocator = allocator;
    spool->memory_limit = memory_limit;
    spool->max_size = max_size;
    apr_pool_cleanup_register(pool, spool, memory_cleanup, apr_pool_cleanup_null);

    if (spool_dir) {
        spool->dir = apr_pstrdup(pool, spool_dir);
    } else if ((rv = apr_temp_dir_get(&spool->dir, pool)) != APR_SUCCESS) {
        goto leave;
    }
    if ((rv = hgs3_sha256_create(&spool->sha, pool)) != APR_SUCCESS) {
        goto leave;
    }
    if (owner) {
        spool->owner = owner;
        apr_pool_cleanup_register(owner, spool, owner_cleanup, apr_pool_cleanup_null);
    }
    *pspool = spool;
leave:
    if (rv != APR_SUCCESS && pool) {
        apr_pool_destroy(pool);
    }
    return rv;
}

/* --- write-behind ----------------------------------------------------------
 *
 * Writing a spilled body to the file costs the kernel a copy into the page
 * cache per byte. Done in the capture filter, it sits between reading a
 * block from hgweb and passing it on, so it slows the response. With
 * write-behind the producer only copies into 64 KiB blocks; a writer thread
 * of the spool's own writes them, in order, and hands them back for reuse.
 * At most `window` bytes wait for it: beyond that the producer waits, which
 * bounds the memory whatever the disk does. */

#define WRITER_BATCH (4 * HGS3_SPOOL_BLOCK_SIZE)

/* The writer thread. It touches no pool: only the file, which it owns until
 * it is joined, and the block lists under `mu`. */
static void *APR_THREAD_FUNC writer_main(apr_thread_t *thd, void *data)
{
    hgs3_spool *spool = data;
    apr_memnode_t *batch, *node, *last;
    apr_size_t bytes;
    apr_status_t rv = APR_SUCCESS;

    (void)thd;
    apr_thread_mutex_lock(spool->mu);
    for (;;) {
        while (!spool->pending && !spool->input_done && !spool->stop) {
            apr_thread_cond_wait(spool->more, spool->mu);
        }
        if (spool->stop || !spool->pending) {
            break; /* dropped, or everything is written */
        }
        batch = spool->pending;
        spool->pending = spool->pending_tail = NULL;
        spool->queued_bytes = 0;
        apr_thread_mutex_unlock(spool->mu);

        bytes = 0;
        for (node = batch, last = batch; node; last = node, node = node->next) {
            if (rv == APR_SUCCESS) {
                rv = apr_file_write_full(spool->file, node_start(node), node_used(node), NULL);
            }
            bytes += node_used(node);
        }
        if (rv == APR_SUCCESS && spool->publish) {
            /* readers of the file may now read this far */
            spool->written += bytes;
            __atomic_store_n(spool->publish, spool->written, __ATOMIC_RELEASE);
        }

        apr_thread_mutex_lock(spool->mu);
        last->next = spool->free_nodes;
        spool->free_nodes = batch;
        spool->pending_bytes -= bytes;
        if (rv != APR_SUCCESS) {
            spool->writer_rv = rv;
            break;
        }
        apr_thread_cond_signal(spool->room);
    }
    spool->writer_ended = 1;
    apr_thread_cond_broadcast(spool->room);
    apr_thread_mutex_unlock(spool->mu);
    return NULL;
}

/* Raise one of the writer's end flags (stop, input_done) and join it. */
static void writer_join(hgs3_spool *spool, int *flag)
{
    apr_status_t trv;

    apr_thread_mutex_lock(spool->mu);
    *flag = 1;
    apr_thread_cond_signal(spool->more);
    apr_thread_mutex_unlock(spool->mu);
    apr_thread_join(&trv, spool->writer);
    spool->writer = NULL;
}

/* Stop the writer at once (the data is being dropped) and join it. */
static void writer_stop(hgs3_spool *spool)
{
    if (spool->writer) {
        writer_join(spool, &spool->stop);
    }
}

/* Runs before anything of the spool's pool is freed (also at
 * apr_terminate), while the writer may still use the file and the blocks. */
static apr_status_t writer_cleanup(void *data)
{
    writer_stop(data);
    return APR_SUCCESS;
}

static apr_status_t writer_start(hgs3_spool *spool)
{
    apr_threadattr_t *attr = NULL;
    apr_status_t rv;

    if ((rv = apr_thread_mutex_create(&spool->mu, APR_THREAD_MUTEX_DEFAULT, spool->pool)) ||
        (rv = apr_thread_cond_create(&spool->more, spool->pool)) ||
        (rv = apr_thread_cond_create(&spool->room, spool->pool)) ||
        (rv = apr_threadattr_create(&attr, spool->pool))) {
        goto leave;
    }
    /* it only loops over write(2): a small stack is plenty */
    apr_threadattr_stacksize_set(attr, 256 * 1024);
    rv = apr_thread_create(&spool->writer, attr, writer_main, spool, spool->pool);
    if (rv != APR_SUCCESS) {
        spool->writer = NULL;
        goto leave;
    }
    apr_pool_pre_cleanup_register(spool->pool, spool, writer_cleanup);
leave:
    return rv;
}

/* Queue the producer's blocks (a list) for the writer. With `wait`, first
 * wait until they fit in the window. */
static apr_status_t writer_queue(hgs3_spool *spool, apr_memnode_t *list, int wait)
{
    apr_memnode_t *last = list;
    apr_size_t bytes = node_used(list);
    apr_status_t rv;

    while (last->next) {
        last = last->next;
        bytes += node_used(last);
    }
    apr_thread_mutex_lock(spool->mu);
    while (wait && !spool->writer_ended && spool->pending_bytes > 0 &&
           spool->pending_bytes + bytes > spool->window) {
        apr_thread_cond_signal(spool->more); /* it may be waiting for a batch */
        apr_thread_cond_wait(spool->room, spool->mu);
    }
    rv = spool->writer_rv ? spool->writer_rv : spool->writer_ended ? APR_EGENERAL : APR_SUCCESS;
    if (rv == APR_SUCCESS) {
        if (spool->pending_tail) {
            spool->pending_tail->next = list;
        } else {
            spool->pending = list;
        }
        spool->pending_tail = last;
        spool->pending_bytes += bytes;
        spool->queued_bytes += bytes;
        /* wake the writer per batch, not per block: a wake-up costs more
         * than writing a block */
        if (!wait || spool->queued_bytes >= WRITER_BATCH) {
            apr_thread_cond_signal(spool->more);
        }
    } else {
        last->next = spool->free_nodes; /* freed with the rest by release() */
        spool->free_nodes = list;
    }
    apr_thread_mutex_unlock(spool->mu);
    return rv;
}

/* An empty block for the producer: a written one if any, else a new one. */
static apr_memnode_t *writer_block(hgs3_spool *spool)
{
    apr_memnode_t *node;

    apr_thread_mutex_lock(spool->mu);
    node = spool->free_nodes;
    if (node) {
        spool->free_nodes = node->next;
    }
    apr_thread_mutex_unlock(spool->mu);
    if (!node && !(node = apr_allocator_alloc(spool->allocator, HGS3_SPOOL_BLOCK_SIZE))) {
        return NULL;
    }
    node->next = NULL;
    node->first_avail = node_start(node);
    return node;
}

/* Producer side once spilled: fill the current block (spool->tail, the
 * only one on spool->blocks) and queue it when full. */
static apr_status_t writer_append(hgs3_spool *spool, const char *data, apr_size_t len)
{
    apr_status_t rv;

    while (len > 0) {
        apr_memnode_t *node = spool->tail;

        if (!node) {
            if (!(node = writer_block(spool))) {
                return APR_ENOMEM;
            }
            spool->blocks = spool->tail = node;
        }
        fill_block(node, &data, &len);
        if (node->first_avail == node->endp) {
            spool->blocks = spool->tail = NULL;
            if ((rv = writer_queue(spool, node, 1)) != APR_SUCCESS) {
                return rv;
            }
        }
    }
    return APR_SUCCESS;
}

/* End of input: queue the last block, let the writer finish, join it. */
static apr_status_t writer_drain(hgs3_spool *spool)
{
    apr_status_t rv = APR_SUCCESS;
    apr_memnode_t *node = spool->tail;

    if (node && node_used(node) > 0) {
        spool->blocks = spool->tail = NULL;
        rv = writer_queue(spool, node, 0);
    }
    writer_join(spool, &spool->input_done);
    return rv != APR_SUCCESS ? rv : spool->writer_rv;
}

apr_status_t hgs3_spool_publish(hgs3_spool *spool, apr_uint64_t *counter)
{
    if (spool->length || spool->finished || spool->failed || spool->discarded || !spool->window) {
        return APR_EINVAL;
    }
    spool->publish = counter;
    return APR_SUCCESS;
}

apr_status_t hgs3_spool_push(hgs3_spool *spool)
{
    apr_memnode_t *node = spool->tail;

    if (spool->failed) {
        return spool->failed;
    }
    if (!spool->writer || !node || node_used(node) == 0) {
        return APR_SUCCESS;
    }
    spool->blocks = spool->tail = NULL;
    return writer_queue(spool, node, 0);
}

apr_status_t hgs3_spool_write_behind(hgs3_spool *spool, apr_size_t window)
{
    if (spool->length || spool->finished || spool->failed || spool->discarded) {
        return APR_EINVAL;
    }
    spool->window = window < 4 * HGS3_SPOOL_BLOCK_SIZE ? 4 * HGS3_SPOOL_BLOCK_SIZE : window;
    return APR_SUCCESS;
}

#define SPOOL_FILE_BUFFER (256 * 1024)

static apr_status_t lock_file(apr_file_t *f)
{
    apr_os_file_t fd;
    apr_status_t rv = apr_os_file_get(&fd, f);
    return rv == APR_SUCCESS ? hgs3_lock_fd(fd) : rv;
}

static apr_status_t open_file(hgs3_spool *spool)
{
    char *templ = NULL;
    apr_status_t rv;

    rv = apr_filepath_merge(&templ, spool->dir, SPOOL_TEMPLATE, 0, spool->pool);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    /* No APR_FOPEN_DELONCLOSE: we remove the file ourselves (see header).
     * mkstemp creates it 0600; APR sets close-on-exec and registers the
     * descriptor's own cleanup. Ours, registered after it, runs first. */
    rv = apr_file_mktemp(&spool->file, templ,
                         APR_FOPEN_CREATE | APR_FOPEN_READ | APR_FOPEN_WRITE | APR_FOPEN_EXCL |
                             (spool->window ? 0 : APR_FOPEN_BUFFERED),
                         spool->pool);
    if (rv != APR_SUCCESS) {
        spool->file = NULL;
        goto leave;
    }
    spool->path = templ;
    apr_pool_cleanup_register(spool->pool, spool, file_cleanup, apr_pool_cleanup_null);
    /* Held while the file exists: hgs3_lock_sweep removes only the files
     * of spools whose process is gone. Where flock is not supported the
     * sweep cannot take it either, and leaves the file alone. */
    (void)lock_file(spool->file);
    if (!spool->window) {
        /* APR's default 4 KiB buffer would mean a write(2) per 4 KiB */
        apr_file_buffer_set(spool->file, apr_palloc(spool->pool, SPOOL_FILE_BUFFER),
                            SPOOL_FILE_BUFFER);
    }
    rv = apr_file_perms_set(templ, APR_FPROT_UREAD | APR_FPROT_UWRITE);
    if (rv == APR_INCOMPLETE || APR_STATUS_IS_ENOTIMPL(rv)) {
        rv = APR_SUCCESS; /* mkstemp's 0600 stands */
    }
leave:
    return rv;
}

/* Move the in-memory body to a new temp file. */
static apr_status_t spill(hgs3_spool *spool)
{
    apr_memnode_t *node;
    apr_status_t rv;

    if ((rv = open_file(spool)) != APR_SUCCESS) {
        goto leave;
    }
    if (spool->window) {
        /* the writer takes the blocks as they are: no copy, no wait */
        if ((rv = writer_start(spool)) == APR_SUCCESS && spool->blocks) {
            node = spool->blocks;
            spool->blocks = spool->tail = NULL;
            rv = writer_queue(spool, node, 0);
        }
        goto leave;
    }
    for (node = spool->blocks; node; node = node->next) {
        rv = apr_file_write_full(spool->file, node_start(node), node_used(node), NULL);
        if (rv != APR_SUCCESS) {
            goto leave;
        }
    }
    free_memory(spool);
leave:
    return rv;
}

static apr_status_t append_memory(hgs3_spool *spool, const char *data, apr_size_t len)
{
    while (len > 0) {
        apr_memnode_t *node = spool->tail;

        if (!node || node->first_avail == node->endp) {
            node = apr_allocator_alloc(spool->allocator, HGS3_SPOOL_BLOCK_SIZE);
            if (!node) {
                return APR_ENOMEM;
            }
            node->next = NULL;
            if (spool->tail) {
                spool->tail->next = node;
            } else {
                spool->blocks = node;
            }
            spool->tail = node;
        }
        fill_block(node, &data, &len);
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_spool_write(hgs3_spool *spool, const void *data, apr_size_t len)
{
    apr_status_t rv;

    if (spool->failed) {
        return spool->failed;
    }
    if (spool->finished || spool->discarded) {
        return APR_EINVAL;
    }
    if (len == 0) {
        return APR_SUCCESS;
    }
    if (spool->max_size > 0 &&
        (apr_uint64_t)len > (apr_uint64_t)(spool->max_size - spool->length)) {
        return fail(spool, HGS3_ETOOBIG);
    }
    if (!spool->defer_hash && (rv = hgs3_sha256_update(spool->sha, data, len)) != APR_SUCCESS) {
        return fail(spool, rv);
    }
    if (!spool->file && (apr_uint64_t)spool->length + len > spool->memory_limit) {
        if ((rv = spill(spool)) != APR_SUCCESS) {
            return fail(spool, rv);
        }
    }
    if (spool->writer) {
        rv = writer_append(spool, data, len);
    } else if (spool->file) {
        rv = apr_file_write_full(spool->file, data, len, NULL);
    } else {
        rv = append_memory(spool, data, len);
    }
    if (rv != APR_SUCCESS) {
        return fail(spool, rv);
    }
    spool->length += (apr_off_t)len;
    return APR_SUCCESS;
}

/* Copy the blocks into one node, so the body can be sent as (ptr, len). */
static apr_status_t coalesce(hgs3_spool *spool)
{
    apr_memnode_t *node, *whole;
    char *out;

    whole = apr_allocator_alloc(spool->allocator, (apr_size_t)spool->length);
    if (!whole) {
        return APR_ENOMEM;
    }
    whole->next = NULL;
    out = whole->first_avail;
    for (node = spool->blocks; node; node = node->next) {
        memcpy(out, node_start(node), node_used(node));
        out += node_used(node);
    }
    if (spool->blocks) {
        apr_allocator_free(spool->allocator, spool->blocks);
        spool->blocks = spool->tail = NULL;
    }
    spool->whole = whole;
    return APR_SUCCESS;
}

apr_status_t hgs3_spool_finish(hgs3_spool *spool)
{
    apr_status_t rv;

    if (spool->failed) {
        return spool->failed;
    }
    if (spool->finished || spool->discarded) {
        return APR_EINVAL;
    }
    if (!spool->defer_hash) {
        if ((rv = hgs3_sha256_final(spool->sha, spool->digest)) != APR_SUCCESS) {
            return fail(spool, rv);
        }
        hgs3_hex(spool->hex, spool->digest, HGS3_SHA256_LEN);
        spool->hashed = 1;
    }
    if (spool->writer) {
        rv = writer_drain(spool);
    } else {
        rv = spool->file ? apr_file_flush(spool->file) : coalesce(spool);
    }
    if (rv != APR_SUCCESS) {
        return fail(spool, rv);
    }
    spool->finished = 1;
    return APR_SUCCESS;
}

void hgs3_spool_discard(hgs3_spool *spool)
{
    spool->discarded = 1;
    release(spool);
}

void hgs3_spool_destroy(hgs3_spool *spool)
{
    if (spool->owner) {
        apr_pool_cleanup_kill(spool->owner, spool, owner_cleanup);
        spool->owner = NULL;
    }
    release(spool);
    apr_pool_destroy(spool->pool); /* also destroys the allocator */
}

void hgs3_spool_set_owner(hgs3_spool *spool, apr_pool_t *owner)
{
    if (spool->owner) {
        apr_pool_cleanup_kill(spool->owner, spool, owner_cleanup);
    }
    spool->owner = owner;
    if (owner) {
        apr_pool_cleanup_register(owner, spool, owner_cleanup, apr_pool_cleanup_null);
    }
}

apr_status_t hgs3_spool_status(const hgs3_spool *spool)
{
    apr_status_t wrv = APR_SUCCESS;

    if (spool->failed) {
        return spool->failed;
    }
    if (spool->writer) {
        apr_thread_mutex_lock(spool->mu);
        wrv = spool->writer_rv;
        apr_thread_mutex_unlock(spool->mu);
        if (wrv != APR_SUCCESS) {
            return wrv;
        }
    }
    return spool->discarded ? APR_EINVAL : APR_SUCCESS;
}

apr_off_t hgs3_spool_length(const hgs3_spool *spool)
{
    return spool->length;
}

static int readable(const hgs3_spool *spool)
{
    return spool->finished && !spool->discarded && !spool->failed;
}

const unsigned char *hgs3_spool_sha256(const hgs3_spool *spool)
{
    return readable(spool) && spool->hashed ? spool->digest : NULL;
}

const char *hgs3_spool_sha256_hex(const hgs3_spool *spool)
{
    return readable(spool) && spool->hashed ? spool->hex : NULL;
}

void hgs3_spool_defer_hash(hgs3_spool *spool)
{
    if (spool->length == 0 && !spool->finished) {
        spool->defer_hash = 1;
    }
}

#define HASH_CHUNK (256 * 1024)

apr_status_t hgs3_spool_hash(hgs3_spool *spool)
{
    apr_off_t off = 0;
    apr_size_t n = 0;
    char *buf;
    apr_status_t rv = APR_SUCCESS;

    if (!readable(spool)) {
        return APR_EINVAL;
    }
    if (spool->hashed) {
        return APR_SUCCESS;
    }
    if (!spool->file) {
        rv = hgs3_sha256_update(spool->sha, node_start(spool->whole), (apr_size_t)spool->length);
    } else {
        buf = apr_palloc(spool->pool, HASH_CHUNK);
        while (rv == APR_SUCCESS && off < spool->length) {
            rv = hgs3_spool_read(spool, off, buf, HASH_CHUNK, &n);
            if (rv == APR_SUCCESS) {
                rv = hgs3_sha256_update(spool->sha, buf, n);
                off += (apr_off_t)n;
            }
        }
    }
    if (rv == APR_SUCCESS) {
        rv = hgs3_sha256_final(spool->sha, spool->digest);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    hgs3_hex(spool->hex, spool->digest, HGS3_SHA256_LEN);
    spool->hashed = 1;
    return APR_SUCCESS;
}

int hgs3_spool_in_memory(const hgs3_spool *spool)
{
    return spool->file == NULL && !spool->discarded && !spool->failed;
}

apr_status_t hgs3_spool_memory(const hgs3_spool *spool, const void **pdata, apr_size_t *plen)
{
    *pdata = NULL;
    *plen = 0;
    if (!readable(spool) || spool->file || !spool->whole) {
        return APR_EINVAL;
    }
    *pdata = node_start(spool->whole);
    *plen = (apr_size_t)spool->length;
    return APR_SUCCESS;
}

const char *hgs3_spool_path(const hgs3_spool *spool)
{
    return spool->path;
}

apr_file_t *hgs3_spool_file(const hgs3_spool *spool)
{
    return spool->file;
}

apr_status_t hgs3_spool_read(hgs3_spool *spool, apr_off_t offset, void *buf, apr_size_t len,
                             apr_size_t *nread)
{
    apr_size_t n;
    apr_status_t rv = APR_SUCCESS;

    *nread = 0;
    if (!readable(spool) || offset < 0) {
        rv = APR_EINVAL;
        goto leave;
    }
    if (offset >= spool->length) {
        rv = APR_EOF;
        goto leave;
    }
    n = len;
    if ((apr_uint64_t)n > (apr_uint64_t)(spool->length - offset)) {
        n = (apr_size_t)(spool->length - offset);
    }
    if (!spool->file) {
        memcpy(buf, node_start(spool->whole) + offset, n);
        *nread = n;
        goto leave;
    }
    if ((rv = apr_file_seek(spool->file, APR_SET, &offset)) != APR_SUCCESS) {
        goto leave;
    }
    rv = apr_file_read_full(spool->file, buf, n, nread);
    if (APR_STATUS_IS_EOF(rv)) {
        rv = APR_INCOMPLETE;
    }
leave:
    return rv;
}

apr_pool_t *hgs3_spool_pool(const hgs3_spool *spool)
{
    return spool->pool;
}
