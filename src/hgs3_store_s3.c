/* hgs3_store_s3.c: S3 as a hgs3_store backend (see hgs3_store_s3.h). */
#include <string.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_store_s3.h"

typedef struct s3_store {
    hgs3_store_s3_settings set;
    const char *public_endpoint; /* set.public_endpoint, or the endpoint */
} s3_store;

typedef struct s3_conn {
    hgs3_store_conn base;
    hgs3_s3_config s3;      /* resolved credentials, the purpose's bounds */
    int purpose;            /* hgs3_store_purpose_e */
    apr_pool_t *pool;       /* the handle's */
    hgs3_s3_client *client; /* an upload's is made at put time */
} s3_conn;

#define S3_OF(st) ((s3_store *)(st)->data)

static const char *dup_or_null(apr_pool_t *p, const char *s)
{
    return s ? apr_pstrdup(p, s) : NULL;
}

/* The settings' strings copied into p. */
static void settings_copy(hgs3_store_s3_settings *to, apr_pool_t *p,
                          const hgs3_store_s3_settings *from)
{
    *to = *from;
    to->s3.endpoint = dup_or_null(p, from->s3.endpoint);
    to->s3.region = dup_or_null(p, from->s3.region);
    to->s3.bucket = dup_or_null(p, from->s3.bucket);
    to->s3.creds.access_key = dup_or_null(p, from->s3.creds.access_key);
    to->s3.creds.secret_key = dup_or_null(p, from->s3.creds.secret_key);
    to->s3.creds.session_token = dup_or_null(p, from->s3.creds.session_token);
    to->s3.user_agent = dup_or_null(p, from->s3.user_agent);
    to->s3.ca_file = dup_or_null(p, from->s3.ca_file);
    to->s3.ca_path = dup_or_null(p, from->s3.ca_path);
    to->public_endpoint = dup_or_null(p, from->public_endpoint);
    to->creds_file = dup_or_null(p, from->creds_file);
    to->creds_profile = dup_or_null(p, from->creds_profile);
}

apr_status_t hgs3_store_s3_create(hgs3_store **pst, apr_pool_t *p,
                                  const hgs3_store_s3_settings *set)
{
    hgs3_store *st = apr_pcalloc(p, sizeof(*st));
    s3_store *s = apr_pcalloc(p, sizeof(*s));

    settings_copy(&s->set, p, set);
    s->public_endpoint = s->set.public_endpoint ? s->set.public_endpoint : s->set.s3.endpoint;
    st->impl = &hgs3_store_s3_impl;
    st->data = s;
    st->id = apr_pstrcat(p, s->set.s3.endpoint ? s->set.s3.endpoint : "", "\n",
                         s->set.s3.bucket ? s->set.s3.bucket : "", NULL);
    *pst = st;
    return APR_SUCCESS;
}

/* The credentials in force now: the static ones, or those of the file or
 * the environment (through the process's cache when there is one). */
static apr_status_t creds_now(hgs3_creds *out, apr_pool_t *p, const s3_store *s)
{
    const hgs3_store_s3_env *env = s->set.env;

    memset(out, 0, sizeof(*out));
    if (s->set.s3.creds.access_key || !env || !env->creds) {
        return hgs3_creds_resolve(out, p, &s->set.s3.creds, s->set.creds_file, s->set.creds_profile,
                                  NULL, NULL);
    }
    return hgs3_creds_cache_get(env->creds, out, p, s->set.creds_file, s->set.creds_profile);
}

/* The client configuration of a purpose, credentials resolved now. */
static apr_status_t config_for(hgs3_s3_config *s3, apr_pool_t *p, const s3_store *s, int purpose)
{
    apr_status_t rv;

    *s3 = s->set.s3;
    rv = creds_now(&s3->creds, p, s);
    if (rv != APR_SUCCESS) {
        memset(s3, 0, sizeof(*s3));
        return rv;
    }
    s3->keycache = s->set.env ? s->set.env->keycache : NULL;
    s3->part_size = s3->multipart_threshold;
    s3->upload_tries = 1;
    if (purpose == HGS3_STORE_STREAM) {
        s3->stall_timeout_ms = s3->timeout_ms;
        s3->timeout_ms = 0;
    } else if (purpose == HGS3_STORE_UPLOAD) {
        s3->timeout_ms = HGS3_STORE_S3_UPLOAD_BASE_MS; /* grown by the body's size at put */
        s3->stall_timeout_ms = HGS3_STORE_S3_UPLOAD_STALL_MS;
        s3->upload_tries = 0; /* the client's default bounded retries */
        s3->cancel = s->set.env ? s->set.env->cancel : NULL;
    }
    return APR_SUCCESS;
}

static apr_status_t s3_conn_open(hgs3_store_conn **pc, hgs3_store *st, apr_pool_t *p, int purpose)
{
    s3_store *s = S3_OF(st);
    s3_conn *c = apr_pcalloc(p, sizeof(*c));
    apr_status_t rv;

    *pc = NULL;
    c->base.st = st;
    c->base.data = c;
    c->purpose = purpose;
    c->pool = p;
    rv = config_for(&c->s3, p, s, purpose);
    if (rv == APR_SUCCESS && purpose != HGS3_STORE_UPLOAD) {
        rv = hgs3_client_cache_get(s->set.env ? s->set.env->clients : NULL, &c->client, p, &c->s3);
    }
    if (rv == APR_SUCCESS) {
        *pc = &c->base;
    }
    return rv;
}

#define CONN_OF(hc) ((s3_conn *)(hc)->data)

/* The handle's client: an upload's is made on first use, in the handle's
 * pool, and each request's whole bound grows with the body's size. */
static apr_status_t conn_client(s3_conn *c, apr_off_t size)
{
    apr_status_t rv;

    if (c->purpose != HGS3_STORE_UPLOAD) {
        return APR_SUCCESS;
    }
    if (!c->client) {
        rv = hgs3_s3_client_create(&c->client, c->pool, &c->s3);
        if (rv != APR_SUCCESS) {
            c->client = NULL;
            return rv;
        }
    }
    hgs3_s3_client_set_timeout(c->client, HGS3_STORE_S3_UPLOAD_BASE_MS +
                                              (long)(size >> 20) * HGS3_STORE_S3_UPLOAD_MS_PER_MIB);
    return APR_SUCCESS;
}

static void object_from_s3(hgs3_store_object *obj, const hgs3_s3_object *o)
{
    obj->status = o->status;
    obj->content_length = o->content_length;
    obj->content_type = o->content_type;
    obj->etag = o->etag;
    obj->last_modified = o->last_modified;
}

/* HEAD; a 403 is explained by a one-byte GET (see hgs3_s3.h): a readable
 * object after all is a miss now, looked up again next time. */
static apr_status_t s3_lookup(hgs3_store_object *obj, hgs3_store_conn *hc, apr_pool_t *p,
                              const char *key)
{
    s3_conn *c = CONN_OF(hc);
    hgs3_s3_object o;
    apr_status_t rv;

    memset(&o, 0, sizeof(o));
    o.content_length = -1;
    rv = conn_client(c, 0);
    if (rv == APR_SUCCESS) {
        rv = hgs3_s3_head(&o, c->client, p, key);
    }
    if (rv == APR_SUCCESS) {
        rv = hgs3_s3_check_head(&o);
    }
    if (rv == HGS3_EAUTH) {
        rv = hgs3_s3_explain_403(c->client, p, key);
        if (rv == APR_SUCCESS) {
            rv = HGS3_ENOTFOUND;
        }
    }
    object_from_s3(obj, &o);
    return rv;
}

typedef struct get_baton {
    hgs3_store_headers_cb *on_headers;
    hgs3_store_data_cb *on_data;
    void *baton;
} get_baton;

/* Only an answer that is a whole stored bundle reaches the caller. */
static apr_status_t get_headers(void *baton, const hgs3_s3_object *o)
{
    get_baton *gb = baton;
    hgs3_store_object obj;
    apr_status_t rv = hgs3_s3_check_get(o, NULL);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    object_from_s3(&obj, o);
    return gb->on_headers ? gb->on_headers(gb->baton, &obj) : APR_SUCCESS;
}

static apr_status_t get_data(void *baton, const char *data, apr_size_t len)
{
    get_baton *gb = baton;
    return gb->on_data ? gb->on_data(gb->baton, data, len) : APR_SUCCESS;
}

static apr_status_t s3_get(hgs3_store_conn *hc, apr_pool_t *p, const char *key,
                           hgs3_store_headers_cb *on_headers, hgs3_store_data_cb *on_data,
                           void *baton)
{
    s3_conn *c = CONN_OF(hc);
    get_baton gb = {on_headers, on_data, baton};
    apr_status_t rv = conn_client(c, 0);

    if (rv == APR_SUCCESS) {
        rv = hgs3_s3_get(c->client, p, key, get_headers, on_data ? get_data : NULL, &gb);
    }
    return rv;
}

/* A file above the multipart threshold goes in parts, each hashed for its
 * own request as it is sent (the whole body's SHA-256 is not needed); else
 * one PutObject, with the body's SHA-256 when the caller has it. */
static apr_status_t s3_put(hgs3_store_conn *hc, apr_pool_t *p, const char *key,
                           const hgs3_store_body *body, const char *content_type)
{
    s3_conn *c = CONN_OF(hc);
    apr_off_t size = body->data ? (apr_off_t)body->len : body->size;
    apr_status_t rv = conn_client(c, size);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (body->data) {
        return hgs3_s3_put_mem(c->client, p, key, body->data, body->len, content_type,
                               body->sha256_hex, NULL);
    }
    if (size > c->s3.multipart_threshold) {
        return hgs3_s3_put_file_multipart(c->client, p, key, body->path, content_type, NULL);
    }
    return hgs3_s3_put_file(c->client, p, key, body->path, content_type, body->sha256_hex, NULL);
}

static apr_status_t s3_remove(hgs3_store_conn *hc, apr_pool_t *p, const char *key)
{
    s3_conn *c = CONN_OF(hc);
    apr_status_t rv = conn_client(c, 0);
    return rv == APR_SUCCESS ? hgs3_s3_delete(c->client, p, key) : rv;
}

/* The same store and credentials, as clients see it (the public
 * endpoint). */
static apr_status_t s3_client_url(const char **url, hgs3_store *st, apr_pool_t *p, const char *key,
                                  int expiry_s, apr_time_t now)
{
    s3_store *s = S3_OF(st);
    hgs3_s3_config pub;
    apr_status_t rv;

    *url = NULL;
    rv = config_for(&pub, p, s, HGS3_STORE_LOOKUP);
    if (rv == APR_SUCCESS) {
        pub.endpoint = s->public_endpoint;
        rv = hgs3_presign_cache_url(url, s->set.env ? s->set.env->presign : NULL, p, &pub, key,
                                    expiry_s, now);
    }
    return rv;
}

static const char *s3_error_text(apr_pool_t *p, hgs3_store_conn *hc)
{
    s3_conn *c = CONN_OF(hc);
    return c->client ? hgs3_s3_error_text(p, c->client) : "no client";
}

static void s3_tls_error(const char **peer, const char **why, apr_pool_t *p, hgs3_store_conn *hc)
{
    s3_conn *c = CONN_OF(hc);
    const hgs3_s3_error *e;

    *peer = "";
    *why = "failure";
    if (c->client) {
        e = hgs3_s3_last_error(c->client);
        *peer = hgs3_s3_client_endpoint(p, c->client);
        *why = apr_psprintf(p, "%s (%s)", e->tls ? e->tls : "failure", e->transport);
    }
}

const hgs3_store_impl hgs3_store_s3_impl = {
    .name = "s3",
    .conn = s3_conn_open,
    .lookup = s3_lookup,
    .get = s3_get,
    .put = s3_put,
    .remove = s3_remove,
    .client_url = s3_client_url,
    .open_local = NULL,
    .error_text = s3_error_text,
    .tls_error = s3_tls_error,
};

apr_status_t hgs3_store_s3_global_init(void)
{
    return hgs3_s3_global_init();
}

void hgs3_store_s3_global_cleanup(void)
{
    hgs3_s3_global_cleanup();
}
