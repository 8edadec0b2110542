/* hgs3_crypto.h: SHA-256, HMAC-SHA256 and hex, over OpenSSL EVP.
 *
 * OpenSSL errors are mapped to HGS3_ECRYPTO here and nowhere else.
 *
 * OpenSSL 3 looks an algorithm up by name (a locked method-store search)
 * each time EVP_sha256() or HMAC() is used. The SHA2-256 digest and the
 * HMAC MAC are therefore fetched once per process, on first use or by
 * hgs3_crypto_init(), and shared by all threads. */
#ifndef HGS3_CRYPTO_H
#define HGS3_CRYPTO_H

#include <apr_pools.h>

#define HGS3_SHA256_LEN     32
#define HGS3_SHA256_HEX_LEN 64

typedef struct hgs3_sha256_ctx hgs3_sha256_ctx;

/* Fetch the implementations (once per process, thread-safe; every other
 * call here does it implicitly). HGS3_ECRYPTO when OpenSSL cannot provide
 * them, which then holds for the life of the process. Calling it at start-up
 * turns a broken OpenSSL setup into an error there rather than on the first
 * request. */
apr_status_t hgs3_crypto_init(void);

/* Incremental SHA-256. The context is freed by a cleanup on pool p. */
apr_status_t hgs3_sha256_create(hgs3_sha256_ctx **pctx, apr_pool_t *p);
apr_status_t hgs3_sha256_update(hgs3_sha256_ctx *ctx, const void *data, apr_size_t len);
/* Finish; the context may not be updated afterwards. */
apr_status_t hgs3_sha256_final(hgs3_sha256_ctx *ctx, unsigned char out[HGS3_SHA256_LEN]);

/* One-shot digests. */
apr_status_t hgs3_sha256(const void *data, apr_size_t len, unsigned char out[HGS3_SHA256_LEN]);
apr_status_t hgs3_hmac_sha256(const void *key, apr_size_t klen, const void *data, apr_size_t dlen,
                              unsigned char out[HGS3_SHA256_LEN]);

/* Lowercase hex of n bytes into out, which must hold 2n+1 chars. */
void hgs3_hex(char *out, const unsigned char *in, apr_size_t n);

/* SHA-256 hex (64 chars + NUL) of data, allocated from p; NULL on failure. */
const char *hgs3_sha256_hex(apr_pool_t *p, const void *data, apr_size_t len);

/* Constant-time comparison of two equal-length buffers. */
int hgs3_memeq_ct(const void *a, const void *b, apr_size_t len);

#endif
