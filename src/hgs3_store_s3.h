/* hgs3_store_s3.h: S3 as a hgs3_store backend.
 *
 * The operations map onto the S3 client (hgs3_s3.h):
 *   lookup      HEAD, hgs3_s3_check_head(); a 403 is explained by
 *               hgs3_s3_explain_403() (AccessDenied, or a readable object:
 *               a miss; refused credentials: HGS3_EAUTH)
 *   get         a streamed GET, its answer checked by hgs3_s3_check_get()
 *   put         PutObject from memory or a file, or a multipart upload for
 *               a file above the multipart threshold
 *   remove      DeleteObject
 *   client_url  a presigned GET on the public endpoint, reused within its
 *               second (hgs3_presign_cache.h)
 * A handle for the request path is the thread's client from the client
 * cache (hgs3_client_cache.h); an upload's is a client of its own, made at
 * put time with bounds that grow with the body. Credentials are resolved
 * when a handle is made: static ones as configured, or those of a file or
 * the environment through the credentials cache (re-read when the file
 * changes). */
#ifndef HGS3_STORE_S3_H
#define HGS3_STORE_S3_H

#include "hgs3_store.h"
#include "hgs3_s3.h"
#include "hgs3_creds_cache.h"
#include "hgs3_client_cache.h"
#include "hgs3_presign_cache.h"

extern const hgs3_store_impl hgs3_store_s3_impl;

/* What a process shares among its S3 stores; each member may be NULL (no
 * cache: direct). Filled once a process is set up (an httpd child). */
typedef struct hgs3_store_s3_env {
    hgs3_creds_cache *creds;
    hgs3_client_cache *clients;
    hgs3_presign_cache *presign;
    hgs3_sigv4_keycache *keycache;
    const apr_uint32_t *cancel; /* uploads stop once it reads non-zero */
} hgs3_store_s3_env;

/* Uploads are off the request path; their bound is generous but finite so
 * a hung store cannot hold a process's shutdown forever, ... */
#define HGS3_STORE_S3_UPLOAD_BASE_MS    60000
#define HGS3_STORE_S3_UPLOAD_MS_PER_MIB 1000
/* ...and a store that stops answering gives up sooner. */
#define HGS3_STORE_S3_UPLOAD_STALL_MS 15000

typedef struct hgs3_store_s3_settings {
    /* The store, its trust, the request-path bounds (connect_timeout_ms,
     * timeout_ms: HgS3CacheTimeout) and the multipart threshold (also the
     * part size). creds: static credentials, or none (access_key NULL). */
    hgs3_s3_config s3;
    const char *public_endpoint;  /* client_url's endpoint; NULL: s3.endpoint */
    const char *creds_file;       /* without static credentials: this file, */
    const char *creds_profile;    /* or with file NULL, the environment */
    const hgs3_store_s3_env *env; /* may be NULL */
} hgs3_store_s3_settings;

/* A store for these settings, copied into p. Its id is "ENDPOINT\nBUCKET". */
apr_status_t hgs3_store_s3_create(hgs3_store **pst, apr_pool_t *p,
                                  const hgs3_store_s3_settings *set);

/* Once per process, before any thread makes a handle (libcurl's global
 * initialization, see hgs3_s3.h); and once at its end. */
apr_status_t hgs3_store_s3_global_init(void);
void hgs3_store_s3_global_cleanup(void);

#endif
