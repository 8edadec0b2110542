/* mod_hgs3cache_body.c: read an httppostargs body and give it back to hgweb.
 *
 * With experimental.httppostargs, hg sends the command arguments in the first
 * X-HgArgs-Post bytes of a POST body. They are part of the cache key, so the
 * handler must read them before hgweb runs. hgweb must still see the body as
 * if nobody had touched it: the bytes read are kept in a brigade and an
 * input filter (HGS3_REPLAY) hands them out first, then the rest of the
 * request body, unchanged, from the filters below it. */
#include <apr_strings.h>
#include <apr_buckets.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <util_filter.h>

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_body.h"

APLOG_USE_MODULE(hgs3cache);

#define REPLAY_FILTER "HGS3_REPLAY"

typedef struct replay_ctx {
    apr_bucket_brigade *saved; /* bytes read by the handler, not yet replayed */
} replay_ctx;

static apr_status_t replay_in_filter(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                                     apr_read_type_e block, apr_off_t readbytes)
{
    replay_ctx *ctx = f->ctx;
    apr_bucket_brigade *tail;
    apr_bucket *split = NULL, *b;
    apr_status_t rv;

    if (!ctx || APR_BRIGADE_EMPTY(ctx->saved)) {
        ap_remove_input_filter(f);
        return ap_get_brigade(f->next, bb, mode, block, readbytes);
    }
    if (mode == AP_MODE_SPECULATIVE) {
        /* a peek: copy, keep everything */
        for (b = APR_BRIGADE_FIRST(ctx->saved); b != APR_BRIGADE_SENTINEL(ctx->saved);
             b = APR_BUCKET_NEXT(b)) {
            apr_bucket *c = NULL;
            rv = apr_bucket_copy(b, &c);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            APR_BRIGADE_INSERT_TAIL(bb, c);
        }
        return APR_SUCCESS;
    }
    if (mode != AP_MODE_READBYTES) {
        APR_BRIGADE_CONCAT(bb, ctx->saved);
        return APR_SUCCESS;
    }
    /* Hand out at most readbytes of what was saved; keep the rest. */
    rv = apr_brigade_partition(ctx->saved, readbytes, &split);
    if (rv == APR_INCOMPLETE) {
        APR_BRIGADE_CONCAT(bb, ctx->saved);
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    tail = apr_brigade_split_ex(ctx->saved, split, NULL);
    APR_BRIGADE_CONCAT(bb, ctx->saved);
    APR_BRIGADE_CONCAT(ctx->saved, tail);
    apr_brigade_destroy(tail);
    return APR_SUCCESS;
}

void hgs3_body_register(apr_pool_t *p)
{
    (void)p;
    ap_register_input_filter(REPLAY_FILTER, replay_in_filter, NULL, AP_FTYPE_RESOURCE);
}

apr_status_t hgs3_body_read_prefix(request_rec *r, apr_size_t want, const char **pdata)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    replay_ctx *ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, ba);
    apr_off_t have = 0;
    apr_size_t len;
    char *buf;
    apr_status_t rv = APR_SUCCESS;

    *pdata = NULL;
    ctx->saved = apr_brigade_create(r->pool, ba);
    while ((apr_size_t)have < want) {
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ,
                            (apr_off_t)(want - (apr_size_t)have));
        if (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb)) {
            rv = APR_EOF;
        }
        if (rv == APR_SUCCESS) {
            /* make the data outlive the filters' own brigades */
            rv = ap_save_brigade(NULL, &ctx->saved, &bb, r->pool);
        }
        if (rv == APR_SUCCESS) {
            rv = apr_brigade_length(ctx->saved, 1, &have);
        }
        apr_brigade_cleanup(bb);
        if (rv != APR_SUCCESS ||
            (!APR_BRIGADE_EMPTY(ctx->saved) && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(ctx->saved)))) {
            break;
        }
    }
    /* Whatever happened, everything read so far is given back to hgweb. */
    ap_add_input_filter(REPLAY_FILTER, ctx, r, r->connection);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    if ((apr_size_t)have < want) {
        rv = APR_EOF;
        goto leave;
    }
    len = want;
    buf = apr_palloc(r->pool, len + 1);
    rv = apr_brigade_flatten(ctx->saved, buf, &len);
    if (rv == APR_SUCCESS && len != want) {
        rv = APR_EOF;
    }
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    buf[len] = '\0';
    *pdata = buf;
leave:
    return rv;
}
