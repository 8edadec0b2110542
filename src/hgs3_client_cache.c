/* hgs3_client_cache.c: S3 clients kept per thread (see
 * hgs3_client_cache.h). */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "hgs3_crypto.h"
#include "hgs3_client_cache.h"

typedef struct thread_client {
    apr_pool_t *pool; /* unmanaged: the thread's, not a request's */
    char sig[HGS3_SHA256_HEX_LEN + 1];
    hgs3_creds creds; /* the client's, in pool */
    hgs3_s3_client *client;
    apr_uint64_t used;
} thread_client;

typedef struct thread_clients {
    thread_client slot[HGS3_CLIENT_CACHE_SLOTS];
    apr_uint64_t tick;
} thread_clients;

struct hgs3_client_cache {
    apr_threadkey_t *key;
};

static void thread_clients_free(void *data)
{
    thread_clients *tcs = data;
    int i;
    if (!tcs) {
        return;
    }
    for (i = 0; i < HGS3_CLIENT_CACHE_SLOTS; ++i) {
        if (tcs->slot[i].pool) {
            apr_pool_destroy(tcs->slot[i].pool);
        }
    }
    free(tcs);
}

/* Deleting the key frees no thread's slots: those of the thread that
 * destroys the pool (a child's main thread, which never runs the key's
 * destructor) are freed here; other threads free theirs when they exit. */
static apr_status_t cache_cleanup(void *data)
{
    hgs3_client_cache *cc = data;
    thread_clients *tcs = NULL;

    if (apr_threadkey_private_get((void **)&tcs, cc->key) == APR_SUCCESS && tcs) {
        apr_threadkey_private_set(NULL, cc->key);
        thread_clients_free(tcs);
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_client_cache_create(hgs3_client_cache **pcc, apr_pool_t *p)
{
    hgs3_client_cache *cc = apr_pcalloc(p, sizeof(*cc));
    apr_status_t rv;

    *pcc = NULL;
    rv = apr_threadkey_private_create(&cc->key, thread_clients_free, p);
    if (rv == APR_SUCCESS) {
        /* registered after the key's own cleanup: runs before it */
        apr_pool_cleanup_register(p, cc, cache_cleanup, apr_pool_cleanup_null);
        *pcc = cc;
    }
    return rv;
}

/* A digest of everything but the credentials that makes two clients
 * differ. */
const char *hgs3_client_cache_id(apr_pool_t *p, const hgs3_s3_config *s3)
{
    const char *text = apr_psprintf(
        p, "%s\n%s\n%d\n%s\n%ld\n%ld\n%ld\n%d\n%s\n%s", s3->endpoint ? s3->endpoint : "",
        s3->region ? s3->region : "", s3->addressing, s3->bucket ? s3->bucket : "",
        s3->connect_timeout_ms, s3->timeout_ms, s3->stall_timeout_ms, s3->upload_tries,
        s3->ca_file ? s3->ca_file : "", s3->ca_path ? s3->ca_path : "");
    return hgs3_sha256_hex(p, text, strlen(text));
}

static int same_str(const char *a, const char *b)
{
    return (!a || !*a) ? (!b || !*b) : (b && !strcmp(a, b));
}

static int same_creds(const hgs3_creds *a, const hgs3_creds *b)
{
    return same_str(a->access_key, b->access_key) && same_str(a->secret_key, b->secret_key) &&
           same_str(a->session_token, b->session_token);
}

/* The calling thread's slots, made on first use; NULL when they cannot be. */
static thread_clients *thread_slots(hgs3_client_cache *cc)
{
    thread_clients *tcs = NULL;

    if (apr_threadkey_private_get((void **)&tcs, cc->key) != APR_SUCCESS) {
        return NULL;
    }
    if (!tcs) {
        tcs = calloc(1, sizeof(*tcs));
        if (tcs && apr_threadkey_private_set(tcs, cc->key) != APR_SUCCESS) {
            free(tcs);
            tcs = NULL;
        }
    }
    return tcs;
}

/* The slot holding a client of sig and creds, or else the least recently
 * used one (its client NULL or of another configuration). */
static thread_client *slot_for(thread_clients *tcs, const char *sig, const hgs3_creds *creds)
{
    thread_client *victim = &tcs->slot[0];
    int i;

    for (i = 0; i < HGS3_CLIENT_CACHE_SLOTS; ++i) {
        thread_client *tc = &tcs->slot[i];
        if (tc->client && !strcmp(tc->sig, sig) && same_creds(&tc->creds, creds)) {
            return tc;
        }
        if (tc->used < victim->used) {
            victim = tc;
        }
    }
    return victim;
}

/* Replace tc's client by a new one for conf. */
static apr_status_t slot_fill(thread_client *tc, const hgs3_s3_config *conf, const char *sig)
{
    apr_status_t rv = APR_SUCCESS;

    tc->client = NULL;
    tc->sig[0] = '\0';
    if (tc->pool) {
        apr_pool_clear(tc->pool);
    } else if ((rv = apr_pool_create_unmanaged_ex(&tc->pool, NULL, NULL)) != APR_SUCCESS) {
        tc->pool = NULL;
        goto leave;
    }
    rv = hgs3_s3_client_create(&tc->client, tc->pool, conf);
    if (rv != APR_SUCCESS) {
        tc->client = NULL;
        goto leave;
    }
    tc->creds.access_key = apr_pstrdup(tc->pool, conf->creds.access_key);
    tc->creds.secret_key = apr_pstrdup(tc->pool, conf->creds.secret_key);
    tc->creds.session_token = apr_pstrdup(tc->pool, conf->creds.session_token);
    apr_cpystrn(tc->sig, sig, sizeof(tc->sig));
leave:
    return rv;
}

apr_status_t hgs3_client_cache_get_id(hgs3_client_cache *cc, hgs3_s3_client **pc, apr_pool_t *p,
                                      const hgs3_s3_config *conf, const char *id)
{
    thread_clients *tcs = cc ? thread_slots(cc) : NULL;
    thread_client *tc;
    apr_status_t rv = APR_SUCCESS;

    *pc = NULL;
    if (!tcs || !id) {
        return hgs3_s3_client_create(pc, p, conf); /* no cache: one for this call */
    }
    tc = slot_for(tcs, id, &conf->creds);
    if (!tc->client || strcmp(tc->sig, id) || !same_creds(&tc->creds, &conf->creds)) {
        if ((rv = slot_fill(tc, conf, id)) != APR_SUCCESS) {
            goto leave;
        }
    }
    tc->used = ++tcs->tick;
    *pc = tc->client;
leave:
    return rv;
}

apr_status_t hgs3_client_cache_get(hgs3_client_cache *cc, hgs3_s3_client **pc, apr_pool_t *p,
                                   const hgs3_s3_config *conf)
{
    return hgs3_client_cache_get_id(cc, pc, p, conf, cc ? hgs3_client_cache_id(p, conf) : NULL);
}
