/* hgs3_crypto.c: SHA-256 and HMAC over OpenSSL EVP (OpenSSL >= 1.1.1). */
#include <pthread.h>
#include <string.h>
#include <openssl/opensslv.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#define HGS3_OSSL_FETCH 1 /* OpenSSL 3: implementations are fetched by name */
#include <openssl/core_names.h>
#include <openssl/params.h>
#else
#include <openssl/hmac.h>
#endif
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

/* ---- the fetched implementations -------------------------------------------
 *
 * sha256_md is used directly. HMAC is kept as a context with its digest
 * already set and no key: each call duplicates it and keys the copy, as
 * setting the digest by name would fetch it again. Both are read-only after
 * the one-time initialization, so threads share them. They live as long as
 * the process (a reload of the module fetches them anew). */
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static const EVP_MD *sha256_md;
#ifdef HGS3_OSSL_FETCH
static EVP_MAC_CTX *hmac_template;

static void crypto_fetch(void)
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];

    sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac) {
        ctx = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac); /* the context holds its own reference */
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA2-256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx && EVP_MAC_CTX_set_params(ctx, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    hmac_template = ctx;
    ERR_clear_error();
}
#else
/* OpenSSL 1.1.1 has no fetching: the static method is all there is. */
static const void *hmac_template = "";

static void crypto_fetch(void)
{
    sha256_md = EVP_sha256();
}
#endif

apr_status_t hgs3_crypto_init(void)
{
    if (pthread_once(&crypto_once, crypto_fetch) != 0 || !sha256_md || !hmac_template) {
        return ossl_status();
    }
    return APR_SUCCESS;
}

/* ---- SHA-256 ---------------------------------------------------------------- */

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
    if ((rv = hgs3_crypto_init()) != APR_SUCCESS) {
        goto leave;
    }
    ctx->md = EVP_MD_CTX_new();
    if (!ctx->md) {
        rv = ossl_status();
        goto leave;
    }
    apr_pool_cleanup_register(p, ctx, sha_cleanup, apr_pool_cleanup_null);
    if (EVP_DigestInit_ex(ctx->md, sha256_md, NULL) != 1) {
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
    apr_status_t rv;

    if ((rv = hgs3_crypto_init()) != APR_SUCCESS) {
        return rv;
    }
    if (EVP_Digest(data, len, out, &n, sha256_md, NULL) != 1 || n != HGS3_SHA256_LEN) {
        return ossl_status();
    }
    return APR_SUCCESS;
}

/* ---- HMAC-SHA256 ------------------------------------------------------------ */

#ifdef HGS3_OSSL_FETCH
apr_status_t hgs3_hmac_sha256(const void *key, apr_size_t klen, const void *data, apr_size_t dlen,
                              unsigned char out[HGS3_SHA256_LEN])
{
    EVP_MAC_CTX *ctx = NULL;
    size_t n = 0;
    apr_status_t rv;

    if ((rv = hgs3_crypto_init()) != APR_SUCCESS) {
        goto leave;
    }
    ctx = EVP_MAC_CTX_dup(hmac_template);
    /* a NULL key would mean "keep the previous key", and there is none */
    if (!ctx || EVP_MAC_init(ctx, klen ? key : (const void *)"", klen, NULL) != 1 ||
        EVP_MAC_update(ctx, data, dlen) != 1 || EVP_MAC_final(ctx, out, &n, HGS3_SHA256_LEN) != 1 ||
        n != HGS3_SHA256_LEN) {
        rv = ossl_status();
        goto leave;
    }
leave:
    EVP_MAC_CTX_free(ctx); /* wipes the keyed state */
    return rv;
}
#else
apr_status_t hgs3_hmac_sha256(const void *key, apr_size_t klen, const void *data, apr_size_t dlen,
                              unsigned char out[HGS3_SHA256_LEN])
{
    unsigned int n = 0;
    apr_status_t rv;

    if ((rv = hgs3_crypto_init()) != APR_SUCCESS) {
        return rv;
    }
    if (!HMAC(sha256_md, klen ? key : "", (int)klen, data, dlen, out, &n) || n != HGS3_SHA256_LEN) {
        return ossl_status();
    }
    return APR_SUCCESS;
}
#endif

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
