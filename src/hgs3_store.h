/* hgs3_store.h: the object store behind the cache, as a table of
 * operations (in the spirit of mod_md's md_http_impl_t).
 *
 * A hgs3_store is one backend instance with its immutable settings (for S3:
 * endpoint, bucket, trust, timeouts, where its credentials come from),
 * built once per configured scope and shared by all threads. A
 * hgs3_store_conn is one thread's handle on it, reused across requests
 * (for S3: the thread's client with its kept-alive connections); a handle
 * is not thread-safe, but may be handed from one thread to another.
 *
 * Errors are those of hgs3_err.h: HGS3_ENOTFOUND for a missing object,
 * HGS3_EAUTH for refused credentials, HGS3_EPROTO for an answer that is not
 * a complete object, HGS3_ETLS, HGS3_ETIMEOUT, ... for a failing store,
 * HGS3_EABORTED for a transfer stopped by a callback or by cancellation.
 *
 * Backends: S3 (hgs3_store_s3.h). */
#ifndef HGS3_STORE_H
#define HGS3_STORE_H

#include <apr_pools.h>
#include <apr_time.h>
#include <apr_file_io.h>

/* What a lookup or a GET reports about an object (strings in the call's
 * pool). */
typedef struct hgs3_store_object {
    int status;               /* protocol status when there is one (S3: HTTP), else 200 */
    apr_off_t content_length; /* -1 unknown */
    const char *content_type; /* NULL when absent */
    const char *etag;         /* NULL when absent */
    apr_time_t last_modified; /* 0 when absent */
} hgs3_store_object;

typedef struct hgs3_store hgs3_store;
typedef struct hgs3_store_conn hgs3_store_conn;
typedef struct hgs3_store_impl hgs3_store_impl;

/* What a handle is for: its bounds. */
typedef enum {
    HGS3_STORE_LOOKUP = 0, /* request path: the bounds of HgS3CacheTimeout */
    HGS3_STORE_STREAM = 1, /* request path, a whole object: no bound on the whole
                              transfer, but every pause (the first byte
                              included) within the lookup bound */
    HGS3_STORE_UPLOAD = 2, /* off the request path: generous bounds that grow with
                              the body, bounded retries, stops when cancelled */
} hgs3_store_purpose_e;

typedef apr_status_t hgs3_store_headers_cb(void *baton, const hgs3_store_object *obj);
typedef apr_status_t hgs3_store_data_cb(void *baton, const char *data, apr_size_t len);

/* What put stores: memory (data non-NULL) or a complete file. */
typedef struct hgs3_store_body {
    const void *data;
    apr_size_t len;
    const char *path;
    apr_off_t size;
    const char *sha256_hex; /* optional, when already known */
} hgs3_store_body;

/* The operations of a backend. */
struct hgs3_store_impl {
    const char *name; /* "s3", "file" */
    /* The calling thread's handle, for purpose (hgs3_store_purpose_e).
     * Lives in p, or (a reused one) until the thread's next conn. */
    apr_status_t (*conn)(hgs3_store_conn **pc, hgs3_store *st, apr_pool_t *p, int purpose);
    /* HGS3_ENOTFOUND for a miss; APR_SUCCESS only for a complete, checked
     * answer (content_length > 0 and a last_modified). */
    apr_status_t (*lookup)(hgs3_store_object *obj, hgs3_store_conn *c, apr_pool_t *p,
                           const char *key);
    /* Streaming read: on_headers once, before any data, with an answer
     * already checked to be a whole stored bundle (status 200,
     * content_length > 0, a Mercurial content type); then on_data chunks.
     * A callback's error stops the transfer and is returned. */
    apr_status_t (*get)(hgs3_store_conn *c, apr_pool_t *p, const char *key,
                        hgs3_store_headers_cb *on_headers, hgs3_store_data_cb *on_data,
                        void *baton);
    /* Store atomically: readers see the whole object or none. */
    apr_status_t (*put)(hgs3_store_conn *c, apr_pool_t *p, const char *key,
                        const hgs3_store_body *body, const char *content_type);
    /* Removing a missing object succeeds. */
    apr_status_t (*remove)(hgs3_store_conn *c, apr_pool_t *p, const char *key);
    /* Optional (NULL): a URL a client can fetch the object from, valid for
     * expiry_s seconds from now (S3: presigned; a credential, never logged). */
    apr_status_t (*client_url)(const char **url, hgs3_store *st, apr_pool_t *p, const char *key,
                               int expiry_s, apr_time_t now);
    /* Optional (NULL): serve locally: an open file of the complete object,
     * checked against its recorded size and type, for httpd to send. */
    apr_status_t (*open_local)(apr_file_t **f, hgs3_store_object *obj, hgs3_store *st,
                               apr_pool_t *p, const char *key);
    /* One log line about the handle's last failure, never a secret. */
    const char *(*error_text)(apr_pool_t *p, hgs3_store_conn *c);
    /* Optional (NULL): after HGS3_ETLS, the peer ("scheme://host:port") and
     * why ("expired (libcurl's text)"), for one log line. */
    void (*tls_error)(const char **peer, const char **why, apr_pool_t *p, hgs3_store_conn *c);
};

/* A backend instance. Built by the backend's constructor; immutable. */
struct hgs3_store {
    const hgs3_store_impl *impl;
    const char *id; /* where its objects live, e.g. "ENDPOINT\nBUCKET" for S3: two
                       stores with the same id hold the same objects */
    void *data;     /* the backend's settings */
};

/* A handle: its store, and the backend's state. */
struct hgs3_store_conn {
    hgs3_store *st;
    void *data;
};

static inline const hgs3_store_impl *hgs3_store_impl_of(const hgs3_store *st)
{
    return st->impl;
}

static inline apr_status_t hgs3_store_connect(hgs3_store_conn **pc, hgs3_store *st, apr_pool_t *p,
                                              int purpose)
{
    return st->impl->conn(pc, st, p, purpose);
}

static inline apr_status_t hgs3_store_lookup(hgs3_store_object *obj, hgs3_store_conn *c,
                                             apr_pool_t *p, const char *key)
{
    return c->st->impl->lookup(obj, c, p, key);
}

static inline apr_status_t hgs3_store_get(hgs3_store_conn *c, apr_pool_t *p, const char *key,
                                          hgs3_store_headers_cb *on_headers,
                                          hgs3_store_data_cb *on_data, void *baton)
{
    return c->st->impl->get(c, p, key, on_headers, on_data, baton);
}

static inline apr_status_t hgs3_store_put(hgs3_store_conn *c, apr_pool_t *p, const char *key,
                                          const hgs3_store_body *body, const char *content_type)
{
    return c->st->impl->put(c, p, key, body, content_type);
}

static inline apr_status_t hgs3_store_remove(hgs3_store_conn *c, apr_pool_t *p, const char *key)
{
    return c->st->impl->remove(c, p, key);
}

/* One log line about c's last failure ("" without a handle). */
const char *hgs3_store_error_text(apr_pool_t *p, hgs3_store_conn *c);

/* A client URL for key, APR_ENOTIMPL when the backend has none. */
apr_status_t hgs3_store_client_url(const char **url, hgs3_store *st, apr_pool_t *p, const char *key,
                                   int expiry_s, apr_time_t now);

/* An open local file of key, APR_ENOTIMPL when the backend has none. */
apr_status_t hgs3_store_open_local(apr_file_t **f, hgs3_store_object *obj, hgs3_store *st,
                                   apr_pool_t *p, const char *key);

/* The name the presence cache knows key of st by: "ID\nKEY". */
const char *hgs3_store_object_id(apr_pool_t *p, const hgs3_store *st, const char *key);

/* Checks every backend's answers pass (SPEC "Failure behaviour"):
 * - check_found: a lookup is a hit only with a content_length above 0 and
 *   a last_modified;
 * - check_whole: a read's answer, before any byte goes on: status 200, a
 *   content_length above 0 and an hg bundle's content type;
 * - check_same: the read's length and type are the lookup's (lookup may
 *   be NULL: nothing to compare). */
apr_status_t hgs3_store_check_found(const hgs3_store_object *obj);
apr_status_t hgs3_store_check_whole(const hgs3_store_object *got);
apr_status_t hgs3_store_check_same(const hgs3_store_object *got, const hgs3_store_object *lookup);

#endif
