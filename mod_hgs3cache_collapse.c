/* mod_hgs3cache_collapse.c: a follower of a collapsed miss.
 *
 * The leader (the holder of the key's upload lock) publishes its response
 * head and how much of its spool file is written in the lock file's record
 * (src/hgs3_collapse.c). A follower waits for a cacheable head, then sends
 * the published part of the spool file as file buckets (sendfile where
 * enabled: the body is never copied through the follower's memory), until
 * the leader's EOS. Until the first pass nothing is committed, so a leader
 * that fails or steps out early leaves the follower free to run hgweb
 * itself; after it, a failure aborts the connection like a streamed hit cut
 * halfway. */
#include <string.h>

#include <apr_strings.h>
#include <apr_buckets.h>
#include <httpd.h>
#include <http_config.h>
#include <http_connection.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "hgs3_err.h"
#include "hgs3_collapse.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_capture.h"
#include "mod_hgs3cache_collapse.h"
#include "mod_hgs3cache_status.h"

APLOG_USE_MODULE(hgs3cache);

typedef struct follow_ctx {
    request_rec *r;
    const hgs3_dir_conf *conf;
    hgs3_follow *f;
    hgs3_collapse_head head;
    apr_file_t *file;
    apr_bucket_brigade *bb;
    apr_uint64_t sent; /* bytes passed on */
    int started;       /* the head went down the filter chain */
} follow_ctx;

/* Commit the leader's head as our own. */
static void follow_start(follow_ctx *ctx, const hgs3_collapse_view *v)
{
    request_rec *r = ctx->r;

    ctx->started = 1;
    r->status = ctx->head.status;
    ap_set_content_type(r, ctx->head.content_type);
    apr_table_overlap(r->headers_out, ctx->head.headers, APR_OVERLAP_TABLES_SET);
    if (v->state == HGS3_COLLAPSE_DONE) {
        ap_set_content_length(r, (apr_off_t)v->total);
    }
}

/* The leader failed after our first byte: never end a short body cleanly
 * (as a streamed hit cut halfway, see mod_hgs3cache_hit.c). */
static int follow_abort(follow_ctx *ctx, apr_status_t why)
{
    request_rec *r = ctx->r;
    conn_rec *c = r->connection;
    HGS3_LOG_LIMITER(log_01701);
    apr_uint32_t suppressed = 0;

    hgs3_status_count(HGS3_C_COLLAPSE_ABORTS, 1);
    if (!c->aborted && hgs3_log_allowed(&log_01701, &suppressed)) {
        ap_log_rerror(
            APLOG_MARK, APLOG_WARNING, why, r,
            HGS3LOGNO(01701) "the response this request followed failed after %" APR_UINT64_T_FMT
                             " bytes; connection aborted [%u similar messages suppressed]",
            ctx->sent, suppressed);
    }
    c->keepalive = AP_CONN_CLOSE;
    apr_brigade_cleanup(ctx->bb);
    APR_BRIGADE_INSERT_TAIL(
        ctx->bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(ctx->bb, apr_bucket_eos_create(c->bucket_alloc));
    ap_pass_brigade(r->output_filters, ctx->bb);
    apr_brigade_cleanup(ctx->bb);
    c->aborted = 1;
    return OK;
}

/* Pass the newly published bytes, and EOS when the body is complete. */
static apr_status_t follow_pass(follow_ctx *ctx, const hgs3_collapse_view *v)
{
    request_rec *r = ctx->r;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_uint64_t upto = v->published;
    apr_status_t rv;

    if (v->state == HGS3_COLLAPSE_DONE && upto > v->total) {
        upto = v->total;
    }
    if (!ctx->started) {
        follow_start(ctx, v);
    }
    if (upto > ctx->sent) {
        apr_bucket *b = apr_bucket_file_create(ctx->file, (apr_off_t)ctx->sent,
                                               (apr_size_t)(upto - ctx->sent), r->pool, ba);
        APR_BRIGADE_INSERT_TAIL(ctx->bb, b);
    }
    if (v->state == HGS3_COLLAPSE_DONE && upto >= v->total) {
        APR_BRIGADE_INSERT_TAIL(ctx->bb, apr_bucket_eos_create(ba));
    } else {
        APR_BRIGADE_INSERT_TAIL(ctx->bb, apr_bucket_flush_create(ba));
    }
    rv = ap_pass_brigade(r->output_filters, ctx->bb);
    apr_brigade_cleanup(ctx->bb);
    ctx->sent = upto;
    if (rv == APR_SUCCESS && r->connection->aborted) {
        rv = APR_ECONNABORTED;
    }
    return rv;
}

/* Nothing was sent: hgweb answers this request after all. */
static int follow_fallback(follow_ctx *ctx, apr_status_t why)
{
    hgs3_status_count(HGS3_C_COLLAPSE_FALLBACKS, 1);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, why, ctx->r,
                  "hgs3cache: the miss this request followed failed first; running hgweb");
    return DECLINED;
}

/* Send the body as the leader publishes it. */
static int follow_body(follow_ctx *ctx)
{
    apr_interval_time_t timeout = hgs3_conf_collapse_timeout(ctx->conf);
    hgs3_collapse_view v;
    apr_status_t rv;

    for (;;) {
        rv = hgs3_collapse_wait(ctx->f, ctx->sent, timeout, &v);
        if (rv != APR_SUCCESS) {
            return ctx->started ? follow_abort(ctx, rv) : follow_fallback(ctx, rv);
        }
        if ((rv = follow_pass(ctx, &v)) != APR_SUCCESS) {
            /* our client went away: the leader's file is not our concern */
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, ctx->r,
                          "hgs3cache: a follower's client went away");
            ctx->r->connection->aborted = 1;
            return OK;
        }
        if (v.state == HGS3_COLLAPSE_DONE && ctx->sent >= v.total) {
            return OK;
        }
    }
}

int hgs3_collapse_follow(request_rec *r, const hgs3_dir_conf *conf, const char *hex)
{
    follow_ctx ctx;
    apr_status_t rv;
    int rc;

    memset(&ctx, 0, sizeof(ctx));
    ctx.r = r;
    ctx.conf = conf;
    rv = hgs3_collapse_open(&ctx.f, r->pool, hgs3_conf_spool_dir(r->pool, conf), hex);
    if (rv != APR_SUCCESS) {
        return DECLINED; /* no record: a leader that does not collapse */
    }
    rv = hgs3_collapse_wait_head(ctx.f, r->pool, hgs3_conf_collapse_timeout(conf), &ctx.head);
    if (rv == APR_SUCCESS) {
        rv = apr_file_open(&ctx.file, ctx.head.path,
                           APR_FOPEN_READ | APR_FOPEN_BINARY | APR_FOPEN_SENDFILE_ENABLED,
                           APR_FPROT_OS_DEFAULT, r->pool);
    }
    if (rv != APR_SUCCESS) {
        return follow_fallback(&ctx, rv);
    }
    ctx.bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    hgs3_set_note(r, conf, "collapsed");
    rc = follow_body(&ctx);
    if (rc == DECLINED) {
        apr_table_unset(r->notes, HGS3_NOTE);
        apr_table_unset(r->err_headers_out, HGS3_HEADER);
    }
    return rc;
}
