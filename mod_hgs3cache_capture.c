/* mod_hgs3cache_capture.c: the capture output filter (miss path).
 *
 * Modelled on mod_cache's CACHE_SAVE: cacheability is decided once, from
 * the response headers, with a reason string; every bucket is passed on
 * unchanged and what is read is copied into a spool (memory up to
 * HgS3CacheMemory, then a temp file written behind by a thread of the
 * spool's own); at EOS, after the brigade went downstream, an intact,
 * cacheable body is handed to the background uploader, which finishes
 * the spool. On any trouble the filter steps out of the way: the client's
 * response is never delayed or altered, only not stored. */
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_buckets.h>
#include <httpd.h>
#include <http_config.h>
#include <http_connection.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "hgs3_err.h"
#include "hgs3_lock.h"
#include "hgs3_spool.h"
#include "hgs3_bundle2.h"
#include "hgs3_cacheable.h"
#include "hgs3_collapse.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_capture.h"
#include "mod_hgs3cache_collapse.h"
#include "mod_hgs3cache_store.h"
#include "mod_hgs3cache_spooldir.h"
#include "mod_hgs3cache_status.h"
#include "mod_hgs3cache_inline.h"
#include "mod_hgs3cache_loc.h"

APLOG_USE_MODULE(hgs3cache);

#define CAPTURE_FILTER "HGS3_CAPTURE"

typedef struct capture_ctx {
    request_rec *r;
    const hgs3_loc *loc;
    const hgs3_dir_conf *conf; /* loc's */
    const char *object;        /* object name: prefix + key */
    hgs3_lock *lock;           /* the per-key upload lock we hold */
    hgs3_spool *spool;
    hgs3_bundle2 det; /* error-part detector */
    const char *content_type;
    apr_off_t expected;       /* Content-Length, or -1 */
    apr_bucket_brigade *rest; /* what is left of a brigade while a part is passed */
    apr_uint64_t reserved;    /* of the host's spool budget (HgS3CacheSpoolMax) */
    apr_uint64_t spool_max;
    int checked;            /* headers were examined */
    int off;                /* stepped out of the way */
    hgs3_collapse_rec *rec; /* collapsed misses: our record, in the lock */
    int head_published;     /* followers may attach */
    int drain;              /* our client left, followers did not: no more passing on */
} capture_ctx;

/* HgS3CacheSpoolMax is reserved ahead of the body in steps of this size, so
 * the shared counter is not touched for every bucket. */
#define SPOOL_RESERVE_STEP (1024 * 1024)

/* Reserve the host-wide spool budget for len more bytes: 0 when the
 * captures in flight on the host would exceed HgS3CacheSpoolMax. */
static int spool_reserve(capture_ctx *ctx, apr_size_t len)
{
    apr_uint64_t need = (apr_uint64_t)hgs3_spool_length(ctx->spool) + len, step;

    if (need <= ctx->reserved) {
        return 1;
    }
    step =
        (need - ctx->reserved + SPOOL_RESERVE_STEP - 1) / SPOOL_RESERVE_STEP * SPOOL_RESERVE_STEP;
    if (!hgs3_status_spool_reserve(step, ctx->spool_max)) {
        /* near the cap (or a cap below one step): just what is needed */
        step = need - ctx->reserved;
        if (!hgs3_status_spool_reserve(step, ctx->spool_max)) {
            return 0;
        }
    }
    ctx->reserved += step;
    return 1;
}

static void spool_unreserve(capture_ctx *ctx)
{
    hgs3_status_spool_release(ctx->reserved);
    ctx->reserved = 0;
}

/* Give up on storing this response: drop the spool and the lock, note why,
 * and from now on only pass data through. */
static void step_out(capture_ctx *ctx, hgs3_skip_e reason)
{
    if (ctx->off) {
        return;
    }
    ctx->off = 1;
    if (ctx->spool) {
        hgs3_spool_destroy(ctx->spool);
        ctx->spool = NULL;
    }
    spool_unreserve(ctx);
    hgs3_lock_release(ctx->lock); /* marks the record failed for followers */
    ctx->lock = NULL;
    ctx->rec = NULL;
    hgs3_note_skip(ctx->r, ctx->conf, reason); /* HGS3_SKIP_NONE: the note stays */
}

/* Pool cleanup: a request that ends without EOS (aborted, error) must not
 * leave a lock behind. (The spool is owned by r->pool and removes its own
 * file when the pool goes.) */
static apr_status_t capture_cleanup(void *data)
{
    capture_ctx *ctx = data;
    ctx->spool = NULL;
    spool_unreserve(ctx);
    hgs3_lock_release(ctx->lock);
    ctx->lock = NULL;
    return APR_SUCCESS;
}

hgs3_skip_e hgs3_capture_check_head(request_rec *r, hgs3_accept_e accept, apr_off_t min_size,
                                    apr_off_t max_size, apr_off_t *expected)
{
    hgs3_head_values h;

    h.status = r->status;
    h.content_type = r->content_type;
    h.content_encoding = r->content_encoding || apr_table_get(r->headers_out, "Content-Encoding") ||
                         apr_table_get(r->err_headers_out, "Content-Encoding");
    h.set_cookie = apr_table_get(r->headers_out, "Set-Cookie") ||
                   apr_table_get(r->err_headers_out, "Set-Cookie");
    h.content_length = apr_table_get(r->headers_out, "Content-Length");
    return hgs3_cacheable_head(&h, accept, min_size, max_size, expected);
}

/* SPEC "Never cached", as far as the headers tell, and a body we can check
 * for error parts. HGS3_SKIP_NONE when cacheable. */
static hgs3_skip_e check_headers(capture_ctx *ctx, request_rec *r)
{
    hgs3_skip_e why;

    why = hgs3_capture_check_head(r, HGS3_ACCEPT_BUNDLE, ctx->loc->min_size, ctx->loc->max_size,
                                  &ctx->expected);
    if (why != HGS3_SKIP_NONE) {
        return why;
    }
    ctx->content_type = apr_pstrdup(r->pool, r->content_type);
    if (hgs3_bundle2_init(&ctx->det, ctx->content_type) == HGS3_BUNDLE2_OPAQUE) {
        /* a body we cannot check for error parts is never stored */
        return HGS3_SKIP_UNRECOGNIZED_BODY;
    }
    return HGS3_SKIP_NONE;
}

/* The spool failed (its file could not be created or written: disk full,
 * say). Logged, rate-limited, by whichever of the writes or EOS sees it. */
static hgs3_skip_e spool_failed(capture_ctx *ctx, apr_status_t rv)
{
    HGS3_LOG_LIMITER(log_00101);
    apr_uint32_t suppressed = 0;

    if (hgs3_log_allowed(&log_00101, &suppressed)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, ctx->r,
                      HGS3LOGNO(00101) "spool write failed in %s; response is served but not "
                                       "stored [%u similar messages suppressed]",
                      ctx->loc->spool_dir, suppressed);
    }
    return HGS3_SKIP_SPOOL_ERROR;
}

/* Copy one bucket's data into the spool and the detector. */
static hgs3_skip_e tee_data(capture_ctx *ctx, const char *data, apr_size_t len)
{
    apr_status_t rv;

    if (hgs3_bundle2_state(&ctx->det) == HGS3_BUNDLE2_NEED_MORE) {
        switch (hgs3_bundle2_feed(&ctx->det, data, len)) {
        case HGS3_BUNDLE2_ERROR:
            return HGS3_SKIP_ERROR_PART;
        case HGS3_BUNDLE2_MALFORMED:
        case HGS3_BUNDLE2_OPAQUE:
            /* it can never become storable: stop spooling now */
            return HGS3_SKIP_UNRECOGNIZED_BODY;
        default:
            break;
        }
    }
    if (!spool_reserve(ctx, len)) {
        return HGS3_SKIP_SPOOL_FULL;
    }
    rv = hgs3_spool_write(ctx->spool, data, len);
    if (rv == HGS3_ETOOBIG) {
        return HGS3_SKIP_TOO_LARGE;
    }
    return rv != APR_SUCCESS ? spool_failed(ctx, rv) : HGS3_SKIP_NONE;
}

/* At EOS, after the last brigade went downstream: is the body intact and
 * cacheable? Then hand it to the uploader. */
/* What the end of the response says: HGS3_SKIP_NONE for a complete 200
 * whose body checked out. */
static hgs3_skip_e eos_verdict(capture_ctx *ctx)
{
    request_rec *r = ctx->r;

    if (r->connection->aborted && !ctx->drain) {
        return HGS3_SKIP_ABORTED;
    }
    if (r->status != HTTP_OK) {
        return HGS3_SKIP_STATUS;
    }
    if (hgs3_bundle2_state_at_eos(&ctx->det) == HGS3_BUNDLE2_ERROR) {
        return HGS3_SKIP_ERROR_PART;
    }
    if (hgs3_bundle2_state_at_eos(&ctx->det) != HGS3_BUNDLE2_OK) {
        return HGS3_SKIP_UNRECOGNIZED_BODY;
    }
    return HGS3_SKIP_NONE;
}

static void finish(capture_ctx *ctx)
{
    request_rec *r = ctx->r;
    hgs3_skip_e why = eos_verdict(ctx);
    apr_off_t len;
    apr_status_t rv;

    if (why != HGS3_SKIP_NONE) {
        step_out(ctx, why);
        return;
    }
    /* The spool is finished (its last writes flushed) by the upload job:
     * nothing here may wait for the disk, as the tail of the response may
     * still be on its way to the client. */
    if ((rv = hgs3_spool_status(ctx->spool)) != APR_SUCCESS) {
        step_out(ctx, spool_failed(ctx, rv));
        return;
    }
    len = hgs3_spool_length(ctx->spool);
    if (ctx->expected >= 0 && len != ctx->expected) {
        step_out(ctx, HGS3_SKIP_LENGTH_MISMATCH);
        return;
    }
    if (ctx->rec) {
        /* the body is whole: followers finish from the file, whether or not
         * it is stored (have the last block written now, not when the upload
         * job gets to it) */
        hgs3_spool_push(ctx->spool);
        hgs3_collapse_done(ctx->rec, (apr_uint64_t)len);
        ctx->rec = NULL; /* goes with the lock */
    }
    if (len < ctx->loc->min_size) {
        /* a small bundle is kept inline in the presence cache instead */
        step_out(ctx,
                 hgs3_inline_keep_spool(r, ctx->conf, ctx->object, ctx->content_type, ctx->spool)
                     ? HGS3_SKIP_NONE
                     : HGS3_SKIP_TOO_SMALL);
        return;
    }
    why = hgs3_store_submit(r, ctx->loc, ctx->object, ctx->content_type, ctx->spool, ctx->lock,
                            ctx->reserved);
    if (why != HGS3_SKIP_NONE) {
        /* the store code did not take the spool or the lock */
        step_out(ctx, why);
        return;
    }
    /* now owned by the upload job */
    ctx->reserved = 0;
    ctx->spool = NULL;
    ctx->lock = NULL;
    ctx->off = 1;
}

/* At most this many bytes are read (and copied) before what was read is
 * passed on: reading a pipe or socket bucket (CGI, mod_cgid) morphs it into
 * a heap bucket and puts a new pipe bucket after it, so reading a whole
 * brigade before passing it would drain the script into memory first.
 * Like mod_cache's cache_save_store with a read size. */
#define CAPTURE_READ_MAX (64 * 1024)

/* Read and copy data buckets from the start of bb, up to CAPTURE_READ_MAX
 * bytes or the first EOS; *split is the first bucket not handled (the
 * sentinel when all were). */
static void tee_some(capture_ctx *ctx, apr_bucket_brigade *bb, apr_bucket **split, int *eos)
{
    apr_size_t total = 0;
    apr_bucket *b;

    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb) && !ctx->off;
         b = APR_BUCKET_NEXT(b)) {
        const char *data;
        hgs3_skip_e why;
        apr_size_t len;
        apr_status_t rv;

        if (total >= CAPTURE_READ_MAX) {
            break;
        }
        if (APR_BUCKET_IS_EOS(b)) {
            *eos = 1;
            b = APR_BUCKET_NEXT(b);
            break;
        }
        if (AP_BUCKET_IS_ERROR(b)) {
            step_out(ctx, HGS3_SKIP_ERROR_BUCKET);
            break;
        }
        if (APR_BUCKET_IS_METADATA(b)) {
            continue; /* FLUSH and friends pass on untouched */
        }
        /* Reading morphs pipe/socket buckets into heap buckets in place,
         * so what we pass on is exactly what we copied. */
        rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
        if (rv != APR_SUCCESS) {
            step_out(ctx, HGS3_SKIP_READ_ERROR);
            break;
        }
        total += len;
        why = tee_data(ctx, data, len);
        if (why != HGS3_SKIP_NONE) {
            step_out(ctx, why);
        }
    }
    *split = b;
}

/* Collapsed misses: once the spool file exists, publish the (cacheable)
 * head so followers may attach, and have what was read so far written
 * for them. */
static void collapse_publish(capture_ctx *ctx)
{
    request_rec *r = ctx->r;

    if (!ctx->rec || ctx->off || !hgs3_spool_path(ctx->spool)) {
        return;
    }
    if (!ctx->head_published) {
        ctx->head_published = 1;
        if (hgs3_collapse_set_head(ctx->rec, r->status, hgs3_spool_path(ctx->spool),
                                   ctx->content_type, r->headers_out) != APR_SUCCESS) {
            hgs3_collapse_fail(ctx->rec); /* a head too large to share */
            ctx->rec = NULL;
            return;
        }
    }
    hgs3_spool_push(ctx->spool);
}

/* Our client went away: with followers attached, keep reading hgweb to the
 * end (passing nothing on), so they complete and the body is stored. */
static int collapse_drain(capture_ctx *ctx)
{
    if (!ctx->rec || ctx->off || !ctx->r->connection->aborted ||
        !hgs3_collapse_followers(ctx->rec)) {
        return 0;
    }
    if (!ctx->drain) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, ctx->r,
                      "hgs3cache: client left; draining the response for its followers");
    }
    ctx->drain = 1;
    return 1;
}

static apr_status_t capture_out_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    capture_ctx *ctx = f->ctx;
    request_rec *r = f->r;
    apr_status_t rv = APR_SUCCESS;
    int eos = 0;

    if (!ctx->checked) {
        hgs3_skip_e why = check_headers(ctx, r);
        ctx->checked = 1;
        if (why != HGS3_SKIP_NONE) {
            step_out(ctx, why);
        }
    }
    if (!ctx->off && APR_BRIGADE_EMPTY(bb)) {
        return ap_pass_brigade(f->next, bb);
    }
    while (!ctx->off && !eos && !APR_BRIGADE_EMPTY(bb)) {
        apr_bucket *split;

        tee_some(ctx, bb, &split, &eos);
        if (ctx->off) {
            break; /* the rest goes on unread, below */
        }
        if (split != APR_BRIGADE_SENTINEL(bb)) {
            ctx->rest = apr_brigade_split_ex(bb, split, ctx->rest);
        }
        collapse_publish(ctx);
        rv = ctx->drain ? APR_SUCCESS : ap_pass_brigade(f->next, bb);
        apr_brigade_cleanup(bb);
        if (ctx->rest) {
            APR_BRIGADE_CONCAT(bb, ctx->rest);
        }
        if (rv != APR_SUCCESS && collapse_drain(ctx)) {
            rv = APR_SUCCESS;
        }
        if (rv != APR_SUCCESS) {
            /* Stop reading: the script (CGI) or the daemon (mod_wsgi)
             * must see the failure rather than generate to the end. */
            step_out(ctx, r->connection->aborted ? HGS3_SKIP_ABORTED : HGS3_SKIP_DOWNSTREAM_ERROR);
            apr_brigade_cleanup(bb);
            return rv;
        }
    }
    if (eos && !ctx->off) {
        finish(ctx);
    }
    if (ctx->off) {
        ap_remove_output_filter(f);
        if (ctx->drain) {
            apr_brigade_cleanup(bb);
        } else if (!APR_BRIGADE_EMPTY(bb)) {
            rv = ap_pass_brigade(f->next, bb);
        }
    }
    return rv;
}

/* Take the key's upload lock: APR_SUCCESS when held. Else *rc is the
 * handler's answer, noted: the follower's of a collapsed miss (which may
 * have answered), or DECLINED (hgweb answers and nothing is stored). */
static apr_status_t take_lock(capture_ctx *ctx, const char *hex, int *rc)
{
    request_rec *r = ctx->r;
    const char *spool_dir = ctx->loc->spool_dir;
    apr_status_t rv;

    *rc = DECLINED;
    rv = hgs3_lock_try(&ctx->lock, r->pool, spool_dir, hex);
    if (rv == APR_EEXIST && ctx->loc->collapse) {
        /* a miss of this key is being answered: follow it */
        *rc = hgs3_collapse_follow(r, ctx->conf, hex);
        if (*rc != DECLINED) {
            return APR_EEXIST;
        }
        rv = hgs3_lock_try(&ctx->lock, r->pool, spool_dir, hex); /* a plain miss */
    }
    if (rv == APR_EEXIST) {
        hgs3_note_skip(r, ctx->conf, HGS3_SKIP_IN_PROGRESS);
        return rv;
    }
    if (rv != APR_SUCCESS) {
        /* a directory found unusable at startup was warned about there */
        ap_log_rerror(APLOG_MARK, hgs3_spooldir_unusable(spool_dir) ? APLOG_DEBUG : APLOG_WARNING,
                      rv, r, HGS3LOGNO(00102) "cannot create the upload lock in %s; not storing",
                      spool_dir);
        hgs3_note_skip(r, ctx->conf, HGS3_SKIP_LOCK_ERROR);
        return rv;
    }
    apr_pool_cleanup_register(r->pool, ctx, capture_cleanup, apr_pool_cleanup_null);
    return APR_SUCCESS;
}

/* The spool, set up to keep the response path free. */
static apr_status_t spool_setup(capture_ctx *ctx)
{
    const hgs3_loc *loc = ctx->loc;
    apr_status_t rv;

    /* Collapsed misses (ctx->rec): followers read the spool file, so it is
     * a file from the first byte, and the record in the lock says how far. */
    rv = hgs3_spool_create(&ctx->spool, ctx->r->pool, ctx->rec ? 0 : (apr_size_t)loc->memory,
                           loc->spool_dir, loc->max_size);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* Off the response path: the SHA-256 is computed by the uploader, and
     * a spilled body is written to its file by the spool's own thread. */
    hgs3_spool_defer_hash(ctx->spool);
    hgs3_spool_write_behind(ctx->spool, (apr_size_t)loc->memory);
    if (ctx->rec) {
        hgs3_spool_publish(ctx->spool, hgs3_collapse_published(ctx->rec));
    }
    return APR_SUCCESS;
}

int hgs3_capture_start(request_rec *r, const hgs3_loc *loc, const char *hex, const char *object,
                       hgs3_capture_stored_fn *stored, void *baton)
{
    capture_ctx *ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    int rc = DECLINED;

    ctx->r = r;
    ctx->loc = loc;
    ctx->conf = loc->conf;
    ctx->object = object;
    ctx->expected = -1;
    ctx->spool_max = loc->spool_max;
    if (take_lock(ctx, hex, &rc) != APR_SUCCESS) {
        return rc;
    }
    /* The record first: a miss that finds our lock while we ask the store
     * below waits for our head instead of running hgweb uncaptured. */
    ctx->rec = loc->collapse ? hgs3_lock_collapse(ctx->lock) : NULL;
    /* The lock's previous holder may have stored the object between our
     * lookup and our lock: then there is nothing left to do (followers
     * see the record fail and look again). */
    if (stored && stored(r, baton)) {
        hgs3_lock_release(ctx->lock);
        ctx->lock = NULL;
        ctx->rec = NULL;
        hgs3_note_skip(r, ctx->conf, HGS3_SKIP_IN_PROGRESS);
        return DECLINED;
    }
    hgs3_store_sweep_later(loc->spool_dir);
    if (spool_setup(ctx) != APR_SUCCESS) {
        step_out(ctx, HGS3_SKIP_SPOOL_ERROR);
        return DECLINED;
    }
    hgs3_set_note(r, ctx->conf, "miss");
    ap_add_output_filter(CAPTURE_FILTER, ctx, r, r->connection);
    return DECLINED;
}

/* Sweep dir once per startup (see hgs3_lock.h): remove the lock and spool
 * files of processes that are gone. */
static void sweep_dir(server_rec *s, apr_pool_t *p, apr_hash_t *seen, const hgs3_dir_conf *c)
{
    const char *dir;
    int removed = 0;
    apr_status_t rv;

    if (!c || !(dir = hgs3_conf_spool_dir(p, c)) || apr_hash_get(seen, dir, APR_HASH_KEY_STRING)) {
        return;
    }
    apr_hash_set(seen, dir, APR_HASH_KEY_STRING, dir);
    rv = hgs3_lock_sweep(p, dir, 0, HGS3_SWEEP_GRACE, &removed);
    if (removed) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "hgs3cache: removed %d lock and spool files of exited processes from %s",
                     removed, dir);
    } else if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, rv, s, "hgs3cache: cannot sweep %s", dir);
    }
}

static void sweep_sections(server_rec *s, apr_pool_t *p, apr_hash_t *seen,
                           apr_array_header_t *sections)
{
    int i;
    for (i = 0; sections && i < sections->nelts; ++i) {
        ap_conf_vector_t *v = APR_ARRAY_IDX(sections, i, ap_conf_vector_t *);
        sweep_dir(s, p, seen, ap_get_module_config(v, &hgs3cache_module));
    }
}

void hgs3_capture_post_config(apr_pool_t *ptemp, server_rec *s)
{
    apr_hash_t *seen = apr_hash_make(ptemp);
    for (; s; s = s->next) {
        core_server_config *core = ap_get_core_module_config(s->module_config);
        sweep_dir(s, ptemp, seen, ap_get_module_config(s->lookup_defaults, &hgs3cache_module));
        sweep_sections(s, ptemp, seen, core->sec_url);
        sweep_sections(s, ptemp, seen, core->sec_dir);
    }
}

void hgs3_capture_register(apr_pool_t *p)
{
    (void)p;
    /* like CACHE_SAVE: after content-setting filters, before protocol ones */
    ap_register_output_filter(CAPTURE_FILTER, capture_out_filter, NULL, AP_FTYPE_CONTENT_SET + 1);
}
