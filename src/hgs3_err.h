/* hgs3_err.h: the core library's status codes.
 *
 * Everything in src/ returns apr_status_t. Conditions that APR has no code
 * for get one of ours, in APR's user error range, so callers can tell a
 * cache miss from a store that refused our credentials from a store that is
 * down. CURLcode and OpenSSL errors are mapped to these in exactly one place
 * each (hgs3_s3.c and hgs3_crypto.c). */
#ifndef HGS3_ERR_H
#define HGS3_ERR_H

#include <apr_errno.h>

#define HGS3_ERR_BASE (APR_OS_START_USERERR + 4300)

#define HGS3_ENOTFOUND  (HGS3_ERR_BASE + 1)  /* object not there (404, or 403 without ListBucket) */
#define HGS3_EAUTH      (HGS3_ERR_BASE + 2)  /* store refused our signature or credentials */
#define HGS3_ESTORE     (HGS3_ERR_BASE + 3)  /* store answered 5xx / SlowDown */
#define HGS3_ETIMEOUT   (HGS3_ERR_BASE + 4)  /* connect or transfer timed out */
#define HGS3_ECONN      (HGS3_ERR_BASE + 5)  /* could not connect / transport failure */
#define HGS3_EPROTO     (HGS3_ERR_BASE + 6)  /* store answered something we did not expect */
#define HGS3_EMALFORMED (HGS3_ERR_BASE + 7)  /* malformed input (request, header, file) */
#define HGS3_ETOOBIG    (HGS3_ERR_BASE + 8)  /* input over a configured bound */
#define HGS3_ECRYPTO    (HGS3_ERR_BASE + 9)  /* OpenSSL failure */
#define HGS3_ECONFIG    (HGS3_ERR_BASE + 10) /* missing or invalid configuration */
#define HGS3_ECLIENT    (HGS3_ERR_BASE + 11) /* store answered 4xx other than auth/404 */
#define HGS3_EABORTED   (HGS3_ERR_BASE + 12) /* transfer stopped on purpose by a callback */
#define HGS3_ETLS                                                                                  \
    (HGS3_ERR_BASE + 13) /* TLS to the store failed: certificate not trusted,                      \
                            name mismatch, handshake failure */

/* A short, static, human readable text for any status (ours or APR's).
 * buf is used for APR's own codes. */
const char *hgs3_strerror(apr_status_t rv, char *buf, apr_size_t len);

/* True for failures that mean "the store is unhealthy" (timeouts, 5xx,
 * transport errors, TLS failures): these feed the breaker. A miss or an auth error does
 * not. */
int hgs3_is_store_failure(apr_status_t rv);

#endif
