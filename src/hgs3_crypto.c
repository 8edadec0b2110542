/* hgs3_crypto.c: SHA-256 and HMAC over OpenSSL EVP (OpenSSL >= 1.1.1). */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_crypto.h"

struct hgs3_sha256_ctx {
    EVP_MD_CTX *md;
    int finished;
};

/* The one place OpenSSL failures become a status. The error queue is
 * cleared so that an unrelated later caller does not see our errors. */
static apr_status_t ossl_status(void)
{
    ERR_clear_error();
    return HGS3_ECRYPTO;
}

static apr_status_t sha_cleanup(void *data)
{
    hgs3_sha256_ctx *ctx = data;
    if (ctx->md) {
        EVP_MD_CTX_free(ctx->md);
        ctx->md = NULL;
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_sha256_create(hgs3_sha256_ctx **pctx, apr_pool_t *p)
{
    hgs3_sha256_ctx *ctx = apr_pcalloc(p, sizeof(*ctx));
    apr_status_t rv = APR_SUCCESS;

    *pctx = NULL;
    ctx->md = EVP_MD_CTX_new();
    if (!ctx->md) {
        rv = ossl_status();
        goto leave;
    }
    apr_pool_cleanup_register(p, ctx, sha_cleanup, apr_pool_cleanup_null);
    if (EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1) {
        rv = ossl_status();
        goto leave;
    }
    *pctx = ctx;
leave:
    return rv;
}

apr_status_t hgs3_sha256_update(hgs3_sha256_ctx *ctx, const void *data, apr_size_t len)
{
    if (ctx->finished) {
        return APR_EINVAL;
    }
    if (len && EVP_DigestUpdate(ctx->md, data, len) != 1) {
        return ossl_status();
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_sha256_final(hgs3_sha256_ctx *ctx, unsigned char out[HGS3_SHA256_LEN])
{
    unsigned int n = 0;
    if (ctx->finished) {
        return APR_EINVAL;
    }
    ctx->finished = 1;
    if (EVP_DigestFinal_ex(ctx->md, out, &n) != 1 || n != HGS3_SHA256_LEN) {
        return ossl_status();
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_sha256(const void *data, apr_size_t len, unsigned char out[HGS3_SHA256_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != HGS3_SHA256_LEN) {
        return ossl_status();
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_hmac_sha256(const void *key, apr_size_t klen, const void *data, apr_size_t dlen,
                              unsigned char out[HGS3_SHA256_LEN])
{
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, data, dlen, out, &n) || n != HGS3_SHA256_LEN) {
        return ossl_status();
    }
    return APR_SUCCESS;
}

void hgs3_hex(char *out, const unsigned char *in, apr_size_t n)
{
    static const char digits[] = "0123456789abcdef";
    apr_size_t i;
    for (i = 0; i < n; ++i) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

const char *hgs3_sha256_hex(apr_pool_t *p, const void *data, apr_size_t len)
{
    unsigned char md[HGS3_SHA256_LEN];
    char *hex;
    if (hgs3_sha256(data, len, md) != APR_SUCCESS) {
        return NULL;
    }
    hex = apr_palloc(p, HGS3_SHA256_HEX_LEN + 1);
    hgs3_hex(hex, md, HGS3_SHA256_LEN);
    return hex;
}

int hgs3_memeq_ct(const void *a, const void *b, apr_size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}
