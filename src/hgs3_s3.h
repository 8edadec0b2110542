/* hgs3_s3.h: a small S3 client over libcurl, signed by hgs3_sigv4.
 *
 * libcurl is only the transport: every request is signed here (header auth,
 * x-amz-content-sha256 always sent; uploads carry the payload's real SHA-256,
 * so a store that checks it, as AWS and Swift do, rejects a corrupted body).
 *
 * Threads. A hgs3_s3_client is NOT thread-safe: it owns one CURL easy handle,
 * reused for every request so connections are kept alive between requests.
 * Use one client per thread (each upload worker, each request thread).
 * hgs3_s3_presign() and the config functions are pure and may be called
 * from any thread. hgs3_s3_global_init() must be called once per process,
 * before any thread creates a client (it runs curl_global_init, which is not
 * thread-safe); hgs3_s3_global_cleanup() once at the end.
 *
 * Errors. Every CURLcode and HTTP status is turned into an apr_status_t in
 * one place (hgs3_s3.c, s3_status()):
 *   2xx                          APR_SUCCESS
 *   404 (NoSuchKey, NoSuchUpload) HGS3_ENOTFOUND     404 NoSuchBucket HGS3_ECONFIG
 *   401, 403, and 400 with an auth error code   HGS3_EAUTH
 *   5xx, 429, SlowDown, RequestTimeout          HGS3_ESTORE
 *   other 4xx                    HGS3_ECLIENT       3xx HGS3_EPROTO
 *   connect/transfer timeout     HGS3_ETIMEOUT      other transport errors HGS3_ECONN
 *   certificate not verified, TLS handshake failed    HGS3_ETLS (the reason in
 *                                hgs3_s3_error.tls: "expired", "unknown issuer",
 *                                "name mismatch", ...)
 *   a callback that stops the transfer returns its own status
 *   (HGS3_EABORTED when it gave none).
 * The S3 error Code and Message, the HTTP status and libcurl's text stay
 * available through hgs3_s3_last_error(). Requests use the Authorization
 * header (never logged) and the client keeps no request headers; a store
 * may still echo them in its error text, so everything store-supplied is
 * kept only through hgs3_s3xml_redact(), and hgs3_s3_error_text() (the one
 * line for logs) shows the Code and request id, never the Message.
 *
 * HEAD and 403. A HEAD answer has no body, so a 403 cannot say why:
 * hgs3_s3_head() returns HGS3_EAUTH with status 403. S3 also answers 403 for
 * a missing key when the credentials lack s3:ListBucket, so a cache may treat
 * that as a miss. To tell a wrong secret from a missing key, call
 * hgs3_s3_explain_403(): it GETs one byte of the key and reads the error Code
 * (AccessDenied → HGS3_ENOTFOUND, SignatureDoesNotMatch, InvalidAccessKeyId
 * and the like → HGS3_EAUTH). The hgs3 tool does this; mod_hgs3cache counts
 * a 403 on HEAD as a miss and logs it (rate-limited).
 *
 * Retries. Uploads (PUT, multipart create/part/complete) are retried on
 * HGS3_ESTORE (5xx, SlowDown, ...) up to upload_tries attempts with
 * exponential backoff; nothing else is retried. A multipart upload that fails
 * is aborted, so no object and no stray parts are left behind. */
#ifndef HGS3_S3_H
#define HGS3_S3_H

#include <apr_pools.h>
#include <apr_time.h>
#include <apr_file_io.h>
#include <apr_tables.h>

#include "hgs3_creds.h"
#include "hgs3_sigv4.h"

typedef enum {
    HGS3_S3_VIRTUAL = 0, /* https://BUCKET.host/KEY */
    HGS3_S3_PATH = 1,    /* https://host/BUCKET/KEY */
} hgs3_s3_addressing_e;

#define HGS3_S3_DEF_REGION              "us-east-1"
#define HGS3_S3_MIN_PART_SIZE           ((apr_off_t)5 * 1024 * 1024)
#define HGS3_S3_DEF_PART_SIZE           ((apr_off_t)8 * 1024 * 1024)
#define HGS3_S3_MAX_PART_SIZE           ((apr_off_t)5 * 1024 * 1024 * 1024)
#define HGS3_S3_MAX_PARTS               10000
#define HGS3_S3_DEF_MULTIPART_THRESHOLD ((apr_off_t)64 * 1024 * 1024)
#define HGS3_S3_DEF_TRIES               3
#define HGS3_S3_MAX_TRIES               10

typedef struct hgs3_s3_config {
    const char *endpoint; /* http[s]://host[:port][/base]; NULL: the AWS
                             regional endpoint https://s3.REGION.amazonaws.com */
    const char *region;   /* NULL: us-east-1 */
    int addressing;       /* hgs3_s3_addressing_e */
    const char *bucket;
    hgs3_creds creds;
    long connect_timeout_ms;       /* 0: libcurl's default */
    long timeout_ms;               /* whole request, 0: none */
    long stall_timeout_ms;         /* give up when nothing at all arrives or
                                      leaves for this long (checked about once a
                                      second), 0: never. For transfers without a
                                      whole-request bound, e.g. a streamed GET. */
    int upload_tries;              /* attempts per upload request, 0: HGS3_S3_DEF_TRIES */
    apr_off_t part_size;           /* 0: HGS3_S3_DEF_PART_SIZE; at least 5 MiB */
    apr_off_t multipart_threshold; /* hgs3_s3_upload_file() goes multipart above it;
                                      0: HGS3_S3_DEF_MULTIPART_THRESHOLD */
    hgs3_sigv4_keycache *keycache; /* optional, may be shared by clients */
    const apr_uint32_t *cancel;    /* optional: once it reads non-zero, requests
                                      stop at once with HGS3_EABORTED (checked
                                      about once a second while transferring, and
                                      before each attempt); an AbortMultipartUpload
                                      still goes out, once, bounded to 1 s */
    const char *user_agent;        /* NULL: "mod_hgs3cache/VERSION" */
    const char *ca_file;           /* PEM bundle that verifies an https store; */
    const char *ca_path;           /* hashed directory of CA certificates. When
                                      either is set, it alone is trusted; both
                                      NULL: libcurl's system bundle. The peer's
                                      certificate and name are always verified. */
} hgs3_s3_config;

/* The rules every request applies, one setting at a time, for callers that
 * check a setting on its own (a configuration directive): a bucket name
 * (S3's naming rules, whatever the addressing), and an endpoint URL
 * http[s]://host[:port][/path] (no user info, query or fragment). The
 * combinations (virtual-hosted addressing needs a host name and, over
 * https, a bucket without dots) are checked by hgs3_s3_config_check().
 * HGS3_ECONFIG with a message that quotes neither value. */
apr_status_t hgs3_s3_check_bucket(const char *bucket, const char **msg);
apr_status_t hgs3_s3_check_endpoint(apr_pool_t *p, const char *url, const char **msg);

/* Check a configuration without creating anything. On failure returns
 * HGS3_ECONFIG and a message (no secrets in it) in *msg. */
apr_status_t hgs3_s3_config_check(const hgs3_s3_config *conf, apr_pool_t *p, const char **msg);

/* Object URL for key (no signature): "scheme://host[:port]/path". */
apr_status_t hgs3_s3_object_url(const char **url, apr_pool_t *p, const hgs3_s3_config *conf,
                                const char *key);

/* A presigned URL for method ("GET") on key, valid for expires seconds
 * (1..604800) from now. response_content_type (optional) is signed into the
 * URL as response-content-type, so the store answers with that type. The URL
 * is a credential: do not log it. */
apr_status_t hgs3_s3_presign(const char **url, apr_pool_t *p, const hgs3_s3_config *conf,
                             const char *method, const char *key, int expires,
                             const char *response_content_type, apr_time_t now);

/* ---- process-wide ---------------------------------------------------------- */

apr_status_t hgs3_s3_global_init(void);
void hgs3_s3_global_cleanup(void);

/* ---- client ---------------------------------------------------------------- */

typedef struct hgs3_s3_client hgs3_s3_client;

/* The configuration is copied. The client, its CURL handle and connections
 * are released when p is destroyed. */
apr_status_t hgs3_s3_client_create(hgs3_s3_client **pc, apr_pool_t *p, const hgs3_s3_config *conf);

/* What the last request ended with. Valid until the next request. */
typedef struct hgs3_s3_error {
    int status;          /* HTTP status, 0 when there was no answer */
    char code[64];       /* S3 error Code ("NoSuchKey"), "" when none */
    char message[256];   /* S3 error Message, "" when none */
    char request_id[96]; /* x-amz-request-id or RequestId, "" when none */
    char transport[256]; /* libcurl's error text, "" when none */
    int attempts;        /* tries made (retries included) */
    const char *tls;     /* with HGS3_ETLS: why (static text), else NULL */
} hgs3_s3_error;

const hgs3_s3_error *hgs3_s3_last_error(const hgs3_s3_client *c);
/* One line for a log: "HTTP 403 SignatureDoesNotMatch (request id X)". */
const char *hgs3_s3_error_text(apr_pool_t *p, const hgs3_s3_client *c);
/* The endpoint the client talks to, "scheme://host[:port]", for logs. */
const char *hgs3_s3_client_endpoint(apr_pool_t *p, const hgs3_s3_client *c);
/* New connections the client opened so far (reuse keeps this low). */
long hgs3_s3_client_connects(const hgs3_s3_client *c);
/* The whole-request bound (timeout_ms, 0: none) of the client's next
 * requests, e.g. one that grows with the body an upload sends. */
void hgs3_s3_client_set_timeout(hgs3_s3_client *c, long timeout_ms);

/* What HEAD and GET report about an object. Strings live in the call's pool. */
typedef struct hgs3_s3_object {
    int status;
    apr_off_t content_length; /* -1 when unknown */
    const char *content_type; /* NULL when absent */
    const char *etag;         /* as sent, with quotes */
    apr_time_t last_modified; /* 0 when absent */
} hgs3_s3_object;

/* HEAD key. APR_SUCCESS with *obj filled on 2xx; HGS3_ENOTFOUND on 404;
 * HGS3_EAUTH on 403 (see the note on 403 above); obj->status is set in all
 * cases where the store answered. */
apr_status_t hgs3_s3_head(hgs3_s3_object *obj, hgs3_s3_client *c, apr_pool_t *p, const char *key);

/* The store's answers are checked, never trusted blindly (SPEC "Failure
 * behaviour"). hgs3_s3_head() and hgs3_s3_get() report what the store said;
 * a cache must not use an answer that these refuse (HGS3_EPROTO, a store
 * failure):
 * - check_head: a lookup is a hit only for a 200 with a Content-Length
 *   above 0 and a parseable Last-Modified (a truncated "200 OK" is not);
 * - check_get: a streamed hit's answer, before any byte goes on: a 200 with
 *   a Content-Length above 0 and an hg bundle's Content-Type
 *   (application/mercurial-0.1 or -0.2), equal to the HEAD's length and
 *   type when there was a HEAD (head may be NULL). The caller must still
 *   receive exactly Content-Length bytes. */
apr_status_t hgs3_s3_check_head(const hgs3_s3_object *obj);
apr_status_t hgs3_s3_check_get(const hgs3_s3_object *got, const hgs3_s3_object *head);

/* After a 403 on HEAD: GET the first byte of key to learn why.
 * HGS3_ENOTFOUND (AccessDenied or 404), HGS3_EAUTH (credentials or
 * signature refused), APR_SUCCESS (the object is readable), or another
 * mapped error. */
apr_status_t hgs3_s3_explain_403(hgs3_s3_client *c, apr_pool_t *p, const char *key);

/* PutObject from memory or a whole file. content_type may be NULL.
 * sha256_hex is the payload's SHA-256 when the caller already has it (e.g.
 * hashed while spooling); NULL computes it. A wrong value makes a checking
 * store refuse the upload, which is the point. *etag (optional) gets the
 * ETag. */
apr_status_t hgs3_s3_put_mem(hgs3_s3_client *c, apr_pool_t *p, const char *key, const void *data,
                             apr_size_t len, const char *content_type, const char *sha256_hex,
                             const char **etag);
apr_status_t hgs3_s3_put_file(hgs3_s3_client *c, apr_pool_t *p, const char *key, const char *path,
                              const char *content_type, const char *sha256_hex, const char **etag);

/* Multipart upload steps. Parts are numbered from 1; a part is len bytes of
 * f from offset (sha256_hex as above). complete takes the parts' ETags in
 * order (const char * each). */
apr_status_t hgs3_s3_multipart_create(const char **upload_id, hgs3_s3_client *c, apr_pool_t *p,
                                      const char *key, const char *content_type);
apr_status_t hgs3_s3_multipart_part(const char **etag, hgs3_s3_client *c, apr_pool_t *p,
                                    const char *key, const char *upload_id, int part_number,
                                    apr_file_t *f, apr_off_t offset, apr_off_t len,
                                    const char *sha256_hex);
apr_status_t hgs3_s3_multipart_complete(const char **etag, hgs3_s3_client *c, apr_pool_t *p,
                                        const char *key, const char *upload_id,
                                        const apr_array_header_t *etags);
apr_status_t hgs3_s3_multipart_abort(hgs3_s3_client *c, apr_pool_t *p, const char *key,
                                     const char *upload_id);

/* The whole multipart upload of a file in parts of the configured size
 * (raised when the file would need more than 10000 parts). Any failure
 * aborts the upload; the first error is returned. */
apr_status_t hgs3_s3_put_file_multipart(hgs3_s3_client *c, apr_pool_t *p, const char *key,
                                        const char *path, const char *content_type,
                                        const char **etag);

/* put_file or put_file_multipart, by the configured threshold. */
apr_status_t hgs3_s3_upload_file(hgs3_s3_client *c, apr_pool_t *p, const char *key,
                                 const char *path, const char *content_type, const char **etag);

/* Streaming GET. On a 2xx answer on_headers is called once, before any data
 * (also for an empty body), then on_data for each chunk. Either may return
 * an error to stop the transfer; that status is returned. On an error answer
 * no callback runs; the mapped status is returned. Both callbacks optional.
 * With on_data and a stall_timeout_ms, only object bytes count as progress:
 * the first one must come within the stall bound of the request (header
 * lines and error-body bytes do not), then every pause is bounded by it. */
typedef apr_status_t hgs3_s3_headers_cb(void *baton, const hgs3_s3_object *obj);
typedef apr_status_t hgs3_s3_data_cb(void *baton, const char *data, apr_size_t len);
apr_status_t hgs3_s3_get(hgs3_s3_client *c, apr_pool_t *p, const char *key,
                         hgs3_s3_headers_cb *on_headers, hgs3_s3_data_cb *on_data, void *baton);

/* DeleteObject. Deleting a missing key succeeds (S3 answers 204). */
apr_status_t hgs3_s3_delete(hgs3_s3_client *c, apr_pool_t *p, const char *key);

#endif
