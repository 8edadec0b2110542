/* mod_hgs3cache_inline.c: small replies kept inline in the presence cache.
 *
 * A hit clone sends capabilities and batch before getbundle, and a pull
 * that finds nothing new sends little else. Answering those from the
 * presence cache (shmcb on one host, memcache or redis across hosts) keeps
 * hgweb asleep. They are never uploaded: an entry holds status,
 * Content-Type and body (src/hgs3_inline.c), under a name made from the
 * object's presence id, so the key (repository state, arguments, protocol,
 * user) is the same as for a stored object, and it lives for the presence
 * TTL.
 *
 * A miss of a small command is captured by its own filter, which keeps at
 * most HgS3CacheInlineMax bytes in memory and steps out beyond that. A
 * getbundle body below HgS3CacheMinSize is handed over by the capture
 * filter at EOS (hgs3_inline_keep_spool). */
#include <string.h>

#include <apr_strings.h>
#include <apr_buckets.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "hgs3_err.h"
#include "hgs3_inline.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_capture.h"
#include "mod_hgs3cache_inline.h"
#include "mod_hgs3cache_loc.h"
#include "mod_hgs3cache_presence.h"
#include "mod_hgs3cache_status.h"
#include "mod_hgs3cache_store.h"

APLOG_USE_MODULE(hgs3cache);

#define INLINE_FILTER "HGS3_INLINE"

typedef struct inline_ctx {
    const hgs3_dir_conf *conf;
    const char *pid; /* presence id */
    apr_size_t max;  /* HgS3CacheInlineMax */
    char *buf;       /* the body so far, max bytes allocated at the first data */
    apr_size_t len;
    apr_off_t expected; /* Content-Length, or -1 */
    int checked;
    int stored; /* the entry was kept */
    int off;
} inline_ctx;

static apr_size_t inline_max(const hgs3_dir_conf *conf)
{
    apr_off_t max = hgs3_conf_inline_max(conf);
    return max > 0 && hgs3_presence_enabled() ? (apr_size_t)max : 0;
}

/* The entry's name in the presence cache: the object's presence id (so the
 * same key) with a suffix of its own. A lookup of a stored object reads
 * 8 bytes; memcache and redis log an error for a value that does not fit,
 * so an inline entry never sits under a name such a lookup reads. */
static const char *inline_id(request_rec *r, const hgs3_dir_conf *conf, const char *object)
{
    const hgs3_loc *loc = hgs3_loc_of(r, conf);
    return loc ? apr_pstrcat(r->pool, hgs3_store_object_id(r->pool, loc->store, object), "\ninline",
                             NULL)
               : NULL;
}

/* Store an entry; counted, and logged (rate-limited) when the presence
 * cache refuses it. */
static int put_entry(request_rec *r, const char *pid, const char *content_type, const void *body,
                     apr_size_t len)
{
    unsigned char *val;
    apr_size_t vlen;
    apr_status_t rv;

    rv = hgs3_inline_encode(&val, &vlen, r->pool, HTTP_OK, content_type, body, len);
    if (rv == APR_SUCCESS) {
        rv = hgs3_presence_put_value(r->server, r->pool, pid, val, (unsigned int)vlen);
    }
    if (rv != APR_SUCCESS) {
        HGS3_LOG_LIMITER(log_01601);
        apr_uint32_t suppressed = 0;
        if (hgs3_log_allowed(&log_01601, &suppressed)) {
            char ebuf[128];
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          HGS3LOGNO(01601) "cannot keep a %" APR_SIZE_T_FMT "-byte reply inline "
                                           "in the presence cache: %s [%u similar messages "
                                           "suppressed]",
                          len, hgs3_strerror(rv, ebuf, sizeof(ebuf)), suppressed);
        }
        return 0;
    }
    hgs3_status_count(HGS3_C_INLINE_STORED, 1);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "hgs3cache: kept %" APR_SIZE_T_FMT " bytes inline",
                  len);
    return 1;
}

/* The entry under pid, when there is one. */
static int lookup(request_rec *r, const char *pid, apr_size_t max, hgs3_inline_entry *e)
{
    unsigned int len = (unsigned int)(max + HGS3_INLINE_OVERHEAD);
    unsigned char *buf = apr_palloc(r->pool, len);

    if (hgs3_presence_get_value(r->server, r->pool, pid, buf, &len) != APR_SUCCESS) {
        return 0;
    }
    return hgs3_inline_decode(e, r->pool, buf, len) == APR_SUCCESS && e->status == HTTP_OK;
}

static int answer(request_rec *r, const hgs3_dir_conf *conf, const hgs3_inline_entry *e)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    apr_status_t rv;

    hgs3_set_note(r, conf, "hit-inline");
    r->status = e->status;
    ap_set_content_type(r, e->content_type);
    ap_set_content_length(r, (apr_off_t)e->body_len);
    if (e->body_len) {
        APR_BRIGADE_INSERT_TAIL(
            bb, apr_bucket_pool_create(e->body, e->body_len, r->pool, c->bucket_alloc));
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(c->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    return rv == APR_SUCCESS || c->aborted ? OK : AP_FILTER_ERROR;
}

/* ---- capture of a small reply ---------------------------------------- */

static void step_out(request_rec *r, inline_ctx *ctx, hgs3_skip_e reason)
{
    if (ctx->stored) {
        if (reason != HGS3_SKIP_LENGTH_MISMATCH) {
            return; /* what was kept is complete */
        }
        /* more than Content-Length after all: what was kept is not the reply */
        hgs3_presence_remove(r->server, r->pool, ctx->pid);
        ctx->stored = 0;
    }
    if (!ctx->off) {
        ctx->off = 1;
        hgs3_note_skip(r, ctx->conf, reason);
    }
}

/* Copy the data buckets of bb; a reason when the reply cannot be kept. */
static hgs3_skip_e tee_body(inline_ctx *ctx, request_rec *r, apr_bucket_brigade *bb, int *eos)
{
    apr_bucket *b;

    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
        const char *data;
        apr_size_t len;

        if (APR_BUCKET_IS_EOS(b)) {
            *eos = 1;
            break;
        }
        if (AP_BUCKET_IS_ERROR(b)) {
            return HGS3_SKIP_ERROR_BUCKET;
        }
        if (APR_BUCKET_IS_METADATA(b)) {
            continue;
        }
        if (apr_bucket_read(b, &data, &len, APR_BLOCK_READ) != APR_SUCCESS) {
            return HGS3_SKIP_READ_ERROR;
        }
        if (len > ctx->max - ctx->len) {
            return HGS3_SKIP_TOO_LARGE;
        }
        if (ctx->expected >= 0 && (apr_off_t)(ctx->len + len) > ctx->expected) {
            return HGS3_SKIP_LENGTH_MISMATCH;
        }
        if (!ctx->buf) {
            ctx->buf = apr_palloc(r->pool, ctx->max);
        }
        memcpy(ctx->buf + ctx->len, data, len);
        ctx->len += len;
    }
    return HGS3_SKIP_NONE;
}

static void finish(request_rec *r, inline_ctx *ctx)
{
    if (r->status != HTTP_OK) {
        step_out(r, ctx, HGS3_SKIP_STATUS);
    } else if (ctx->expected >= 0 && (apr_off_t)ctx->len != ctx->expected) {
        step_out(r, ctx, HGS3_SKIP_LENGTH_MISMATCH);
    } else {
        ctx->stored = put_entry(r, ctx->pid, r->content_type, ctx->buf, ctx->len);
        ctx->off = !ctx->stored; /* not kept (logged): just pass on */
    }
}

/* The reply is complete at EOS, or once Content-Length bytes went by:
 * hgweb (mod_wsgi) passes EOS in a brigade of its own, after the client
 * may already have read the whole body and sent its next request. */
static int complete(const inline_ctx *ctx, int eos)
{
    return eos || (ctx->expected >= 0 && (apr_off_t)ctx->len == ctx->expected);
}

static apr_status_t inline_out_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    inline_ctx *ctx = f->ctx;
    request_rec *r = f->r;
    hgs3_skip_e why;
    int eos = 0;
    apr_status_t rv;

    if (!ctx->checked) {
        ctx->checked = 1;
        why = hgs3_capture_check_head(r, HGS3_ACCEPT_MERCURIAL, 0, (apr_off_t)ctx->max,
                                      &ctx->expected);
        if (why != HGS3_SKIP_NONE) {
            step_out(r, ctx, why);
        }
    }
    if (ctx->off) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    if ((why = tee_body(ctx, r, bb, &eos)) != HGS3_SKIP_NONE) {
        step_out(r, ctx, why);
    } else if (!ctx->stored && complete(ctx, eos) && !r->connection->aborted) {
        /* Every earlier brigade went out and hgweb reached its end: the
         * copy is complete. It is kept before the last data goes out, so
         * the client's next request already finds it. */
        finish(r, ctx);
    }
    rv = ap_pass_brigade(f->next, bb);
    if (rv != APR_SUCCESS || r->connection->aborted) {
        step_out(r, ctx, r->connection->aborted ? HGS3_SKIP_ABORTED : HGS3_SKIP_DOWNSTREAM_ERROR);
    }
    if (eos || ctx->off) {
        ap_remove_output_filter(f);
    }
    return rv;
}

int hgs3_inline_handle(request_rec *r, const hgs3_dir_conf *conf, const char *cmd,
                       const char *object, int *status)
{
    int is_bundle = strcmp(cmd, "getbundle") == 0;
    apr_size_t max = inline_max(conf);
    hgs3_inline_entry e;
    inline_ctx *ctx;
    const char *pid;

    *status = DECLINED;
    pid = max ? inline_id(r, conf, object) : NULL;
    if (!pid) {
        if (is_bundle) {
            return 0;
        }
        /* never uploaded to the store: without inline entries, hgweb answers */
        hgs3_note_bypass(r, conf, HGS3_BYPASS_COMMAND);
        return 1;
    }
    if (lookup(r, pid, max, &e)) {
        *status = answer(r, conf, &e);
        return 1;
    }
    if (is_bundle) {
        return 0;
    }
    ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    ctx->conf = conf;
    ctx->pid = pid;
    ctx->max = max;
    ctx->expected = -1;
    hgs3_set_note(r, conf, "miss");
    ap_add_output_filter(INLINE_FILTER, ctx, r, r->connection);
    return 1;
}

int hgs3_inline_keep_spool(request_rec *r, const hgs3_dir_conf *conf, const char *object,
                           const char *content_type, hgs3_spool *spool)
{
    apr_size_t max = inline_max(conf), len = 0;
    apr_off_t size = hgs3_spool_length(spool);
    const void *data = NULL;

    if (!max || size > (apr_off_t)max || hgs3_spool_finish(spool) != APR_SUCCESS) {
        return 0;
    }
    if (hgs3_spool_in_memory(spool)) {
        if (hgs3_spool_memory(spool, &data, &len) != APR_SUCCESS) {
            return 0;
        }
    } else {
        /* a file from the first byte (HgS3CacheCollapse on): at most
         * HgS3CacheInlineMax bytes, read back once */
        char *buf = apr_palloc(r->pool, (apr_size_t)size + 1);
        if (size > 0 && (hgs3_spool_read(spool, 0, buf, (apr_size_t)size, &len) != APR_SUCCESS ||
                         len != (apr_size_t)size)) {
            return 0;
        }
        data = buf;
        len = (apr_size_t)size;
    }
    const char *pid = inline_id(r, conf, object);
    return pid && put_entry(r, pid, content_type, data, len);
}

void hgs3_inline_register(apr_pool_t *p)
{
    (void)p;
    /* where the capture filter sits: after content-setting filters */
    ap_register_output_filter(INLINE_FILTER, inline_out_filter, NULL, AP_FTYPE_CONTENT_SET + 1);
}
