/* hgs3_sigv4.h: AWS Signature Version 4, for S3 and S3-compatible stores.
 *
 * mod_hgs3cache signs everything itself and uses libcurl only as a transport:
 * libcurl 7.88's CURLOPT_AWS_SIGV4 omits x-amz-content-sha256, does not sort
 * the query, signs "?uploads" without "=" and signs the path as written, all
 * of which strict stores reject. One signer serves both the Authorization
 * header and presigned URLs.
 *
 * The signer is a pure function of its inputs: credentials, region, service,
 * the clock (passed in as apr_time_t) and the request. It never logs.
 *
 * S3 canonicalization, as implemented here:
 *  - the path is given unencoded and is URI-encoded exactly once (RFC 3986
 *    unreserved characters kept, everything else %XX with uppercase hex, '/'
 *    kept); the same encoded path is what goes on the wire. There is no dot
 *    segment or double-slash normalization (S3 keys may contain both);
 *  - query names and values are given unencoded, encoded the same way ('/'
 *    encoded too) and sorted by name, then value; a pair without a value is
 *    signed as "name=";
 *  - header names are lowercased, values trimmed with inner runs of spaces
 *    collapsed; repeated names are joined with ',' in the order given.
 *
 * The signing key for (secret, date, region, service) can be cached in a
 * hgs3_sigv4_keycache, which is safe to share between threads. */
#ifndef HGS3_SIGV4_H
#define HGS3_SIGV4_H

#include <apr_pools.h>
#include <apr_time.h>
#include <apr_tables.h>

#include "hgs3_creds.h"

#define HGS3_SIGV4_ALGORITHM      "AWS4-HMAC-SHA256"
#define HGS3_SIGV4_UNSIGNED       "UNSIGNED-PAYLOAD"
#define HGS3_SIGV4_EMPTY_SHA256   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HGS3_SIGV4_MAX_EXPIRES    604800 /* 7 days, the S3 limit */
#define HGS3_SIGV4_MAX_SCOPE_PART 63     /* longest region or service name accepted */
#define HGS3_SIGV4_DATE_LEN       16     /* strlen("20130524T000000Z") */

/* A name/value pair: query parameter or header. For a query parameter a NULL
 * value means "no value" and is signed as "name=". */
typedef struct hgs3_sigv4_pair {
    const char *name;
    const char *value;
} hgs3_sigv4_pair;

/* Request flags. */
#define HGS3_SIGV4_NO_CONTENT_SHA256                                                               \
    0x01 /* do not add x-amz-content-sha256                                                        \
           (generic, non-S3 services) */

typedef struct hgs3_sigv4_request {
    const char *method;           /* "GET", "PUT", ... */
    const char *host;             /* Host header value; ":port" only when
                                     the port is not the scheme's default */
    const char *path;             /* unencoded, starts with '/' */
    const hgs3_sigv4_pair *query; /* unencoded; may be NULL */
    int nquery;
    const hgs3_sigv4_pair *headers; /* further headers to sign and send
                                       (Content-Type, Range, x-amz-*...);
                                       must not hold Host, Authorization or
                                       the x-amz-* headers the signer adds */
    int nheaders;
    const char *payload_hash; /* lowercase hex SHA-256 of the body, or
                                 HGS3_SIGV4_UNSIGNED; NULL: header auth
                                 uses the empty body's hash, presigning
                                 uses UNSIGNED-PAYLOAD */
    unsigned int flags;       /* HGS3_SIGV4_* */
} hgs3_sigv4_request;

/* Everything the signer computed. All strings live in the pool given to the
 * signing call. The intermediate texts are there for tests and debugging;
 * string_to_sign and canonical_request contain no secret, but signature and
 * authorization are credentials: never log them. */
typedef struct hgs3_sigv4_result {
    const char *amz_date;        /* YYYYMMDDTHHMMSSZ */
    const char *scope;           /* date/region/service/aws4_request */
    const char *canonical_uri;   /* encoded path, as sent on the wire */
    const char *canonical_query; /* sorted, encoded; without X-Amz-Signature */
    const char *canonical_request;
    const char *string_to_sign;
    const char *signed_headers; /* "host;x-amz-content-sha256;x-amz-date" */
    const char *payload_hash;   /* the value signed */
    const char *signature;      /* 64 hex */
    /* header auth only: */
    const char *authorization;   /* value of the Authorization header */
    apr_array_header_t *headers; /* hgs3_sigv4_pair: the headers the signer
                                    added (x-amz-date, x-amz-content-sha256,
                                    x-amz-security-token, Authorization) that
                                    must be sent besides Host and the
                                    request's own headers */
    /* presigned only: */
    const char *query_string; /* for the URL after '?': the request's
                                 own parameters, then X-Amz-Algorithm,
                                 -Credential, -Date, -Expires,
                                 -SignedHeaders, -Security-Token,
                                 -Signature (botocore's order) */
} hgs3_sigv4_result;

/* ---- signing keys ---------------------------------------------------------- */

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date8), region), service),
 * "aws4_request"). date8 is YYYYMMDD. */
apr_status_t hgs3_sigv4_derive_key(unsigned char out[32], const char *secret, const char *date8,
                                   const char *region, const char *service);

/* A small cache of derived keys, keyed by (access key, secret, date, region,
 * service), shared by threads (it holds an APR thread mutex). The secret
 * itself is not stored, only its SHA-256. Lives as long as pool p. */
typedef struct hgs3_sigv4_keycache hgs3_sigv4_keycache;
apr_status_t hgs3_sigv4_keycache_create(hgs3_sigv4_keycache **pcache, apr_pool_t *p);
/* Derivations performed so far (for tests: a hit does not derive). */
apr_uint64_t hgs3_sigv4_keycache_derivations(hgs3_sigv4_keycache *cache);

/* ---- signing --------------------------------------------------------------- */

/* Sign req for the Authorization header at time now.
 * cache may be NULL (derive every time). */
apr_status_t hgs3_sigv4_sign_header(hgs3_sigv4_result **pres, apr_pool_t *p,
                                    const hgs3_creds *creds, const char *region,
                                    const char *service, apr_time_t now,
                                    const hgs3_sigv4_request *req, hgs3_sigv4_keycache *cache);

/* Presign req (query auth), valid for expires seconds (1..604800, else
 * APR_EINVAL). Only Host and req->headers are signed; a session token goes
 * into X-Amz-Security-Token. */
apr_status_t hgs3_sigv4_presign(hgs3_sigv4_result **pres, apr_pool_t *p, const hgs3_creds *creds,
                                const char *region, const char *service, apr_time_t now,
                                int expires, const hgs3_sigv4_request *req,
                                hgs3_sigv4_keycache *cache);

/* ---- encoding (also used by the S3 client) ------------------------------- */

/* RFC 3986 percent-encoding with uppercase hex; '/' is kept when keep_slash. */
char *hgs3_sigv4_uri_encode(apr_pool_t *p, const char *s, int keep_slash);

/* Sorted, encoded query "a=1&b=&c=3" from unencoded pairs. */
const char *hgs3_sigv4_canonical_query(apr_pool_t *p, const hgs3_sigv4_pair *q, int n);

/* YYYYMMDDTHHMMSSZ of t (UTC) into out[HGS3_SIGV4_DATE_LEN + 1]. */
void hgs3_sigv4_format_date(char *out, apr_time_t t);
/* Parse YYYYMMDDTHHMMSSZ. APR_EINVAL when malformed. */
apr_status_t hgs3_sigv4_parse_date(apr_time_t *t, const char *s);

#endif
