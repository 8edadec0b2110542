/* mod_hgs3cache_hit.c: the hit path.
 *
 * Lookup order: the presence cache (no store round trip), then an S3 HEAD
 * bounded by HgS3CacheTimeout and guarded by the breaker. A hit is answered
 * by a presigned redirect, or by streaming the object through httpd when a
 * redirect would be unsafe: hg forwards its request headers to the redirect
 * target, Authorization (the user's password) included, and S3 refuses
 * requests whose headers pass 8 KB. */
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
#include "hgs3_crypto.h"
#include "hgs3_req.h"
#include "hgs3_store.h"
#include "hgs3_breaker.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_capture.h"
#include "mod_hgs3cache_hit.h"
#include "mod_hgs3cache_loc.h"
#include "mod_hgs3cache_local.h"
#include "mod_hgs3cache_presence.h"
#include "mod_hgs3cache_store.h"
#include "mod_hgs3cache_status.h"

APLOG_USE_MODULE(hgs3cache);

/* S3 refuses more than 8 KB of request headers; keep a margin. */
#define HGS3_MAX_FORWARD_HEADERS 6144

typedef enum { LOOKUP_HIT, LOOKUP_MISS, LOOKUP_BYPASS } lookup_e;

/* A store's clock may run a little ahead of ours. */
#define HGS3_CLOCK_SKEW apr_time_from_sec(5)

/* With HgS3CacheMaxAge, an object is fresh only with a known age: a
 * missing or unparsable Last-Modified (0), or one in the future, is a miss,
 * never "not too old". */
static int too_old(const hgs3_loc *loc, apr_time_t lastmod, apr_time_t now)
{
    return loc->max_age > 0 &&
           (lastmod <= 0 || lastmod > now + HGS3_CLOCK_SKEW || now - lastmod > loc->max_age);
}

/* Count a store failure toward the breaker and StoreErrors; 1 when it
 * opened the breaker (logged here). */
static int count_store_failure(request_rec *r, apr_status_t rv)
{
    hgs3_breaker *b = hgs3_store_breaker();
    int tripped = b ? hgs3_breaker_failure(b, apr_time_now()) : 0;
    char buf[128];

    hgs3_status_count(HGS3_C_STORE_ERRORS, 1);
    if (tripped) {
        hgs3_status_count(HGS3_C_BREAKER_TRIPS, 1);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      HGS3LOGNO(00401) "store lookups failing (%s); skipping lookups for a while",
                      hgs3_strerror(rv, buf, sizeof(buf)));
    }
    return tripped;
}

/* A TLS failure is logged with the endpoint and the reason only: never the
 * URL, its query or any header. */
static void log_tls_failure(request_rec *r, hgs3_store_conn *c)
{
    HGS3_LOG_LIMITER(log_01501);
    apr_uint32_t suppressed = 0;
    const char *peer = "", *why = "failure";

    if (hgs3_log_allowed(&log_01501, &suppressed)) {
        if (hgs3_store_impl_of(c->st)->tls_error) {
            hgs3_store_impl_of(c->st)->tls_error(&peer, &why, r->pool, c);
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HGS3LOGNO(01501) "TLS to the store %s failed: %s; answering from "
                                       "hgweb [%u similar messages suppressed]",
                      peer, why, suppressed);
    }
}

static void store_failed(request_rec *r, apr_status_t rv, hgs3_store_conn *c)
{
    HGS3_LOG_LIMITER(log_00402);
    apr_uint32_t suppressed = 0;
    char buf[128];

    if (count_store_failure(r, rv)) {
        return;
    }
    if (rv == HGS3_ETLS && c) {
        log_tls_failure(r, c);
    } else if (hgs3_log_allowed(&log_00402, &suppressed)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      HGS3LOGNO(00402) "store lookup failed: %s (%s); answering from hgweb "
                                       "[%u similar messages suppressed]",
                      hgs3_strerror(rv, buf, sizeof(buf)), hgs3_store_error_text(r->pool, c),
                      suppressed);
    }
}

/* Ask the store. HGS3_ENOTFOUND for a miss (for S3: a 404, or a 403 that
 * the store explains as AccessDenied, as a bucket without s3:ListBucket
 * answers for missing keys). Refused credentials (HGS3_EAUTH) are a store
 * failure, not a miss. An answer that is not a complete object is
 * HGS3_EPROTO, a store failure: never a hit, never remembered as present. */
static apr_status_t head(request_rec *r, hgs3_store_conn *c, const char *object,
                         hgs3_store_object *obj)
{
    apr_time_t start = apr_time_now();
    apr_status_t rv;

    hgs3_status_count(HGS3_C_HEADS, 1);
    rv = hgs3_store_lookup(obj, c, r->pool, object);
    hgs3_status_lookup(apr_time_now() - start);
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, rv, r, "hgs3cache: HEAD %s took %" APR_TIME_T_FMT " us",
                  object, apr_time_now() - start);
    return rv;
}

/* Presence cache, then HEAD. A hit found by HEAD sets *headed and *obj
 * (what a streamed hit must then get); the breaker hears of its success
 * once the hit has been answered (a streamed hit may still fail). A probe
 * of a half-open breaker that ends without a word counts as failed when
 * the request's pool goes (hgs3_breaker_enter()). */
static lookup_e lookup(request_rec *r, const hgs3_loc *loc, hgs3_store_conn *c, const char *object,
                       hgs3_bypass_e *why, int *headed, hgs3_store_object *obj)
{
    const char *pid = hgs3_store_object_id(r->pool, c->st, object);
    hgs3_breaker *b = hgs3_store_breaker();
    apr_time_t lastmod = 0, now = apr_time_now();
    apr_status_t rv;

    *headed = 0;
    if (hgs3_presence_get(r->server, r->pool, pid, &lastmod)) {
        if (!too_old(loc, lastmod, now)) {
            hgs3_status_count(HGS3_C_PRESENCE_HITS, 1);
            hgs3_status_lookup(apr_time_now() - now);
            return LOOKUP_HIT;
        }
        hgs3_presence_remove(r->server, r->pool, pid);
    }
    if (b && !hgs3_breaker_enter(b, r->pool, now)) {
        *why = HGS3_BYPASS_BREAKER_OPEN;
        return LOOKUP_BYPASS;
    }
    rv = head(r, c, object, obj);
    if (rv == APR_SUCCESS && !too_old(loc, obj->last_modified, now)) {
        hgs3_presence_put(r->server, r->pool, pid, obj->last_modified);
        *headed = 1;
        return LOOKUP_HIT;
    }
    if (rv == APR_SUCCESS || rv == HGS3_ENOTFOUND) {
        if (b) {
            hgs3_breaker_success(b);
        }
        return LOOKUP_MISS;
    }
    store_failed(r, rv, c);
    *why = rv == HGS3_EAUTH ? HGS3_BYPASS_STORE_AUTH : HGS3_BYPASS_STORE_ERROR;
    return LOOKUP_BYPASS;
}

/* After our lookup said "miss" and we took the upload lock: did the lock's
 * previous holder store the object meanwhile? It records the object in the
 * presence cache before it lets go of the lock; without a presence cache,
 * ask the store again. */
typedef struct recheck_ctx {
    const hgs3_loc *loc;
    hgs3_store_conn *c;
    const char *object;
} recheck_ctx;

static int stored_meanwhile(request_rec *r, void *baton)
{
    recheck_ctx *rc = baton;
    hgs3_store_object obj;
    apr_time_t lastmod;

    if (hgs3_presence_enabled()) {
        return hgs3_presence_get(r->server, r->pool,
                                 hgs3_store_object_id(r->pool, rc->c->st, rc->object), &lastmod) &&
               !too_old(rc->loc, lastmod, apr_time_now());
    }
    return head(r, rc->c, rc->object, &obj) == APR_SUCCESS &&
           !too_old(rc->loc, obj.last_modified, apr_time_now());
}

static int use_stream(request_rec *r, const hgs3_loc *loc)
{
    switch (loc->hit_mode) {
    case HGS3_HIT_REDIRECT:
        return 0;
    case HGS3_HIT_STREAM:
        return 1;
    default:
        return apr_table_get(r->headers_in, "Authorization") != NULL ||
               apr_table_get(r->headers_in, "Proxy-Authorization") != NULL ||
               hgs3_req_forward_size(r->headers_in) > HGS3_MAX_FORWARD_HEADERS ||
               (r->method_number != M_GET && r->method_number != M_POST);
    }
}

/* A redirect to the object's client URL (for S3: presigned on the public
 * endpoint). */
static int answer_redirect(request_rec *r, const hgs3_loc *loc, const char *object)
{
    const char *url = NULL;
    apr_status_t rv;

    rv = hgs3_store_client_url(&url, loc->store, r->pool, object, loc->url_expiry, apr_time_now());
    if (rv != APR_SUCCESS) {
        char buf[128];
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      HGS3LOGNO(00403) "cannot presign a URL for %s: %s", object,
                      hgs3_strerror(rv, buf, sizeof(buf)));
        return DECLINED;
    }
    hgs3_set_note(r, loc->conf, "hit-redirect");
    /* hg turns a 302 on POST into a GET; a 303 says so explicitly. */
    r->status = r->method_number == M_POST ? HTTP_SEE_OTHER : HTTP_MOVED_TEMPORARILY;
    apr_table_setn(r->headers_out, "Location", url);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_type(r, "text/plain");
    ap_rputs("The response is in the object store.\n", r);
    return OK;
}

/* Data from the store is handed on in batches of at least this much (and
 * at the end), not once per libcurl callback: every ap_pass_brigade() runs
 * the whole output filter chain. The first batch also decides when the
 * response is committed: until it goes, a failing store still falls back
 * to hgweb (a store that stalls after a few bytes costs the client nothing
 * but the wait). */
#define HGS3_STREAM_BATCH (64 * 1024)

typedef struct stream_ctx {
    request_rec *r;
    const hgs3_dir_conf *conf;
    const hgs3_store_object *head; /* the lookup's answer, NULL after a presence hit */
    apr_bucket_brigade *bb;
    apr_size_t pending; /* bytes in bb, not yet passed on */
    apr_off_t received; /* object bytes from the store */
    hgs3_store_object obj;
    int answer_ok; /* the store's answer head is the looked-up object's */
    int started;   /* the response went down the filter chain: no fallback */
} stream_ctx;

/* The answer's head, before any byte is used: the store passes only a
 * whole bundle; it must also be the looked-up object's size and type (SPEC
 * "Failure behaviour"). */
static apr_status_t stream_headers(void *baton, const hgs3_store_object *obj)
{
    stream_ctx *ctx = baton;
    apr_status_t rv;

    ctx->obj = *obj;
    rv = hgs3_store_check_same(obj, ctx->head);
    ctx->answer_ok = (rv == APR_SUCCESS);
    return rv;
}

/* The first batch sets the response headers; until then a failure can
 * still fall back to hgweb. */
static void stream_start(stream_ctx *ctx)
{
    request_rec *r = ctx->r;
    ctx->started = 1;
    hgs3_set_note(r, ctx->conf, "hit-stream");
    ap_set_content_type(r, apr_pstrdup(r->pool, ctx->obj.content_type));
    ap_set_content_length(r, ctx->obj.content_length);
}

/* Data is handed on in batches: libcurl's buffer is only valid during the
 * callback, so a batch is gathered in copies (heap buckets), except that a
 * callback that alone fills a batch with nothing pending is passed on as
 * it is. The first pass commits the response headers (from then on a
 * failure aborts the connection, see stream_abort()). */
static apr_status_t stream_data(void *baton, const char *data, apr_size_t len)
{
    stream_ctx *ctx = baton;
    request_rec *r = ctx->r;
    apr_status_t rv;

    if ((apr_off_t)len > ctx->obj.content_length - ctx->received) {
        return HGS3_EPROTO; /* more than the store announced */
    }
    ctx->received += (apr_off_t)len;
    if (r->connection->aborted) {
        return HGS3_EABORTED;
    }
    if (ctx->pending == 0 && len >= HGS3_STREAM_BATCH) {
        APR_BRIGADE_INSERT_TAIL(
            ctx->bb, apr_bucket_transient_create(data, len, r->connection->bucket_alloc));
    } else if (apr_brigade_write(ctx->bb, NULL, NULL, data, len) != APR_SUCCESS) {
        return HGS3_EABORTED;
    }
    ctx->pending += len;
    if (ctx->pending < HGS3_STREAM_BATCH) {
        return APR_SUCCESS;
    }
    if (!ctx->started) {
        stream_start(ctx);
    }
    rv = ap_pass_brigade(r->output_filters, ctx->bb);
    apr_brigade_cleanup(ctx->bb);
    ctx->pending = 0;
    if (rv == APR_SUCCESS && r->connection->aborted) {
        rv = APR_ECONNABORTED;
    }
    return rv == APR_SUCCESS ? APR_SUCCESS : HGS3_EABORTED;
}

/* Fail after the first byte: the client must see a broken response, never
 * a short one that looks complete (as mod_proxy does on a backend failure). */
static void stream_abort(stream_ctx *ctx)
{
    request_rec *r = ctx->r;
    conn_rec *c = r->connection;
    apr_status_t rv;

    c->keepalive = AP_CONN_CLOSE;
    apr_brigade_cleanup(ctx->bb); /* never the rest of a short body */
    APR_BRIGADE_INSERT_TAIL(
        ctx->bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(ctx->bb, apr_bucket_eos_create(c->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, ctx->bb);
    apr_brigade_cleanup(ctx->bb);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, rv, r, "hgs3cache: aborting a streamed hit");
    }
    c->aborted = 1;
}

/* The last batch and EOS of a complete object. */
static int stream_finish(stream_ctx *ctx)
{
    request_rec *r = ctx->r;
    apr_status_t rv;

    if (!ctx->started) {
        stream_start(ctx);
    }
    APR_BRIGADE_INSERT_TAIL(ctx->bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, ctx->bb);
    apr_brigade_cleanup(ctx->bb);
    if (rv == APR_SUCCESS || r->connection->aborted) {
        return OK;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, "hgs3cache: passing a streamed hit's end failed");
    return AP_FILTER_ERROR;
}

/* The GET failed. Anything but our own stop (the client went away, the
 * child is stopping: HGS3_EABORTED) or a 404 (the object went away since
 * the lookup) is a store failure, counted toward the breaker. Returns OK
 * when the response was aborted, DECLINED when nothing was sent. */
static int stream_failed(stream_ctx *ctx, apr_status_t rv, hgs3_store_conn *c, const char *object)
{
    request_rec *r = ctx->r;
    hgs3_breaker *b = hgs3_store_breaker();
    int store_failure = rv != HGS3_EABORTED && rv != HGS3_ENOTFOUND;
    HGS3_LOG_LIMITER(log_00404);
    apr_uint32_t suppressed = 0;
    char buf[128];

    if (rv == HGS3_EABORTED && ctx->answer_ok && b) {
        hgs3_breaker_success(b); /* the store answered well; the client left */
    }
    if (!ctx->started) {
        if (store_failure) {
            store_failed(r, rv, c);
        }
        return DECLINED;
    }
    if (store_failure && !count_store_failure(r, rv) && hgs3_log_allowed(&log_00404, &suppressed)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      HGS3LOGNO(00404) "streaming %s from the store failed midway: %s (%s); "
                                       "connection aborted [%u similar messages suppressed]",
                      object, hgs3_strerror(rv, buf, sizeof(buf)),
                      hgs3_store_error_text(r->pool, c), suppressed);
    }
    stream_abort(ctx);
    return OK;
}

/* Returns OK when the response was sent (completely or aborted), DECLINED
 * when nothing was sent and hgweb should answer. head is the lookup's HEAD
 * answer, or NULL. */
static int answer_stream(request_rec *r, const hgs3_loc *loc, const char *object,
                         const hgs3_store_object *head)
{
    stream_ctx ctx;
    hgs3_store_conn *c = NULL;
    apr_status_t rv;

    memset(&ctx, 0, sizeof(ctx));
    ctx.r = r;
    ctx.conf = loc->conf;
    ctx.head = head;
    ctx.bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    ctx.obj.content_length = -1;
    /* A large body takes its time: no bound on the whole transfer, but the
     * object's first byte, and every pause after it, is bounded by
     * LOOKUP_MS (header lines and error-body bytes are no progress). */
    rv = hgs3_store_connect(&c, loc->store, r->pool, HGS3_STORE_STREAM);
    if (rv == APR_SUCCESS) {
        rv = hgs3_store_get(c, r->pool, object, stream_headers, stream_data, &ctx);
    }
    if (rv == APR_SUCCESS && (!ctx.answer_ok || ctx.received != ctx.obj.content_length)) {
        rv = HGS3_EPROTO; /* no answer head, or fewer bytes than announced */
    }
    if (rv != APR_SUCCESS) {
        return stream_failed(&ctx, rv, c, object);
    }
    if (hgs3_store_breaker()) {
        hgs3_breaker_success(hgs3_store_breaker());
    }
    return stream_finish(&ctx);
}

/* A handle on the scope's store for lookups, credentials resolved;
 * without usable credentials, hgweb answers (noted). */
static int hit_store(request_rec *r, const hgs3_loc *loc, hgs3_store_conn **pc)
{
    HGS3_LOG_LIMITER(log_00405);
    apr_uint32_t suppressed = 0;
    apr_status_t rv;

    rv = hgs3_store_connect(pc, loc->store, r->pool, HGS3_STORE_LOOKUP);
    if (rv == APR_SUCCESS) {
        return OK;
    }
    if (hgs3_log_allowed(&log_00405, &suppressed)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r,
                      HGS3LOGNO(00405) "no usable store credentials; answering from hgweb "
                                       "[%u similar messages suppressed]",
                      suppressed);
    }
    hgs3_note_bypass(r, loc->conf, HGS3_BYPASS_CREDENTIALS);
    return DECLINED;
}

int hgs3_hit_handle(request_rec *r, const hgs3_loc *loc, const char *hex, const char *object)
{
    hgs3_store_conn *c = NULL;
    hgs3_store_object obj;
    recheck_ctx rc;
    hgs3_bypass_e why = HGS3_BYPASS_NONE;
    int rc_http, headed = 0;

    if (hit_store(r, loc, &c) != OK) {
        return DECLINED;
    }
    rc.loc = loc;
    rc.c = c;
    rc.object = object;
    memset(&obj, 0, sizeof(obj));
    switch (lookup(r, loc, c, object, &why, &headed, &obj)) {
    case LOOKUP_BYPASS:
        hgs3_note_bypass(r, loc->conf, why);
        return DECLINED;
    case LOOKUP_MISS:
        return hgs3_capture_start(r, loc, hex, object, stored_meanwhile, &rc);
    case LOOKUP_HIT:
        break;
    }
    if (hgs3_store_impl_of(loc->store)->open_local) {
        rc_http = hgs3_local_answer(r, loc->conf, loc->store, object); /* never a redirect */
        if (rc_http == OK && headed && hgs3_store_breaker()) {
            hgs3_breaker_success(hgs3_store_breaker());
        }
    } else if (!use_stream(r, loc)) {
        rc_http = answer_redirect(r, loc, object);
        if (rc_http == OK && headed && hgs3_store_breaker()) {
            hgs3_breaker_success(hgs3_store_breaker());
        }
    } else {
        rc_http = answer_stream(r, loc, object, headed ? &obj : NULL);
    }
    if (rc_http == DECLINED) {
        /* nothing was sent: hgweb answers, as a miss */
        hgs3_presence_remove(r->server, r->pool, hgs3_store_object_id(r->pool, loc->store, object));
        return hgs3_capture_start(r, loc, hex, object, NULL, NULL);
    }
    return rc_http;
}
