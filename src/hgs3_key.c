/* hgs3_key.c: the cache key (layout in hgs3_key.h). */
#include <string.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_key.h"

#define KEY_MAGIC "hgs3cache-key"

enum { POST_NONE = 0, POST_BODY = 1 };
enum { USER_SHARED = 0, USER_NONE = 1, USER_NAMED = 2 };

static apr_status_t put_u(hgs3_sha256_ctx *ctx, apr_uint64_t v, int bytes)
{
    unsigned char b[8];
    int i;
    for (i = 0; i < bytes; ++i) {
        b[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    }
    return hgs3_sha256_update(ctx, b, (apr_size_t)bytes);
}

static apr_status_t put_field(hgs3_sha256_ctx *ctx, const void *data, apr_size_t len)
{
    apr_status_t rv = put_u(ctx, (apr_uint64_t)len, 8);
    if (rv == APR_SUCCESS) {
        rv = hgs3_sha256_update(ctx, data, len);
    }
    return rv;
}

static apr_status_t put_str(hgs3_sha256_ctx *ctx, const char *s)
{
    return put_field(ctx, s ? s : "", s ? strlen(s) : 0);
}

/* Everything but the user, in the documented order. */
static apr_status_t put_request(hgs3_sha256_ctx *ctx, const char *salt, const char *location,
                                const hgs3_repo *repo, const hgs3_req *req)
{
    apr_status_t rv;
    int i;

#define PUT(expr)                                                                                  \
    do {                                                                                           \
        if ((rv = (expr)) != APR_SUCCESS)                                                          \
            return rv;                                                                             \
    } while (0)
    PUT(put_field(ctx, KEY_MAGIC, sizeof(KEY_MAGIC) - 1));
    PUT(put_u(ctx, HGS3_KEY_VERSION, 4));
    PUT(put_str(ctx, salt));
    PUT(put_str(ctx, location));
    PUT(put_str(ctx, repo->dir));
    PUT(put_field(ctx, repo->fp, repo->fp_len));
    PUT(put_str(ctx, req->method));
    PUT(put_str(ctx, req->cmd));
    PUT(put_u(ctx, req->args ? (apr_uint64_t)req->args->nelts : 0, 8));
    for (i = 0; req->args && i < req->args->nelts; ++i) {
        const hgs3_req_arg *a = &APR_ARRAY_IDX(req->args, i, hgs3_req_arg);
        PUT(put_field(ctx, a->name, a->name_len));
        PUT(put_field(ctx, a->value, a->value_len));
    }
    PUT(put_field(ctx, req->hgargs ? req->hgargs : "", req->hgargs ? req->hgargs_len : 0));
    if (req->has_post) {
        PUT(put_u(ctx, POST_BODY, 1));
        PUT(put_field(ctx, req->post ? req->post : "", req->post ? req->post_len : 0));
    } else {
        PUT(put_u(ctx, POST_NONE, 1));
    }
    PUT(put_field(ctx, req->proto ? req->proto : "", req->proto ? req->proto_len : 0));
#undef PUT
    return APR_SUCCESS;
}

apr_status_t hgs3_key_compute(char out[HGS3_KEY_HEX_LEN + 1], apr_pool_t *p, const char *salt,
                              const char *location, const hgs3_repo *repo, const hgs3_req *req,
                              const char *user, int share_users)
{
    hgs3_sha256_ctx *ctx = NULL;
    unsigned char md[HGS3_SHA256_LEN];
    apr_status_t rv;

    out[0] = '\0';
    if (!location || !repo || !req || !repo->dir || !repo->fp || !req->method || !req->cmd) {
        rv = APR_EINVAL;
        goto leave;
    }
    if ((rv = hgs3_sha256_create(&ctx, p)) != APR_SUCCESS) {
        goto leave;
    }
    if ((rv = put_request(ctx, salt, location, repo, req)) != APR_SUCCESS) {
        goto leave;
    }
    if (share_users) {
        rv = put_u(ctx, USER_SHARED, 1);
    } else if (!user) {
        rv = put_u(ctx, USER_NONE, 1);
    } else if ((rv = put_u(ctx, USER_NAMED, 1)) == APR_SUCCESS) {
        rv = put_str(ctx, user);
    }
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    if ((rv = hgs3_sha256_final(ctx, md)) != APR_SUCCESS) {
        goto leave;
    }
    hgs3_hex(out, md, HGS3_SHA256_LEN);
leave:
    return rv;
}

const char *hgs3_key_object_name(apr_pool_t *p, const char *prefix, const char *hex)
{
    return apr_pstrcat(p, prefix ? prefix : "", hex, NULL);
}
