/* test_client_cache.c: a thread's clients are reused for the same
 * configuration, replaced least recently used first, renewed when any part
 * of the configuration (credentials, trust) changes, and never shared
 * between threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "hgs3_client_cache.h"

static hgs3_s3_config conf_for(const char *bucket)
{
    hgs3_s3_config c;
    memset(&c, 0, sizeof(c));
    c.endpoint = "http://127.0.0.1:9000";
    c.region = "us-east-1";
    c.addressing = HGS3_S3_PATH;
    c.bucket = bucket;
    c.creds.access_key = "AKIDEXAMPLE";
    c.creds.secret_key = "secret";
    c.timeout_ms = 2000;
    return c;
}

static void test_reuse_and_lru(void **state)
{
    apr_pool_t *p;
    hgs3_client_cache *cc;
    hgs3_s3_config a = conf_for("bucket-a"), b = conf_for("bucket-b"), c = conf_for("bucket-c");
    hgs3_s3_client *ca, *cb, *cc_, *x;
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_client_cache_create(&cc, p), APR_SUCCESS);
    assert_int_equal(hgs3_client_cache_get(cc, &ca, p, &a), APR_SUCCESS);
    assert_non_null(ca);
    assert_int_equal(hgs3_client_cache_get(cc, &x, p, &a), APR_SUCCESS);
    assert_ptr_equal(x, ca);
    /* a copy of the configuration in other buffers is the same client */
    a.bucket = apr_pstrdup(p, "bucket-a");
    assert_int_equal(hgs3_client_cache_get(cc, &x, p, &a), APR_SUCCESS);
    assert_ptr_equal(x, ca);
    assert_int_equal(hgs3_client_cache_get(cc, &cb, p, &b), APR_SUCCESS);
    assert_ptr_not_equal(cb, ca);
    assert_int_equal(hgs3_client_cache_get(cc, &x, p, &a), APR_SUCCESS);
    assert_ptr_equal(x, ca); /* both kept; b is now the least recently used */
    assert_int_equal(hgs3_client_cache_get(cc, &cc_, p, &c), APR_SUCCESS);
    assert_int_equal(hgs3_client_cache_get(cc, &x, p, &a), APR_SUCCESS);
    assert_ptr_equal(x, ca);
    assert_int_equal(hgs3_client_cache_get(cc, &x, p, &c), APR_SUCCESS);
    assert_ptr_equal(x, cc_);
    /* b was replaced: a fresh client (a's now goes, the least recently used) */
    assert_int_equal(hgs3_client_cache_get(cc, &x, p, &b), APR_SUCCESS);
    assert_non_null(x);
    assert_int_equal(hgs3_client_cache_get(cc, &x, p, &c), APR_SUCCESS);
    assert_ptr_equal(x, cc_);
    apr_pool_destroy(p);
}

/* Every part of the configuration that a client carries selects it. */
static void test_config_changes(void **state)
{
    apr_pool_t *p;
    hgs3_client_cache *cc;
    hgs3_s3_config a = conf_for("bucket-a"), d;
    hgs3_s3_client *ca, *x;
    int i;
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_client_cache_create(&cc, p), APR_SUCCESS);
    for (i = 0; i < 8; ++i) {
        d = a;
        switch (i) {
        case 0:
            d.creds.secret_key = "rotated";
            break;
        case 1:
            d.creds.access_key = "AKIDROTATED";
            break;
        case 2:
            d.creds.session_token = "token";
            break;
        case 3:
            d.ca_file = "/etc/ssl/certs/ca-certificates.crt";
            break;
        case 4:
            d.ca_path = "/etc/ssl/certs";
            break;
        case 5:
            d.timeout_ms = 3000;
            break;
        case 6:
            d.connect_timeout_ms = 500;
            break;
        default:
            d.endpoint = "http://127.0.0.1:9001";
            break;
        }
        assert_int_equal(hgs3_client_cache_get(cc, &ca, p, &a), APR_SUCCESS);
        assert_int_equal(hgs3_client_cache_get(cc, &x, p, &d), APR_SUCCESS);
        assert_ptr_not_equal(x, ca);
        assert_int_equal(hgs3_client_cache_get(cc, &x, p, &a), APR_SUCCESS);
        assert_ptr_equal(x, ca);
    }
    /* a configuration the client refuses: an error, nothing cached */
    d = a;
    d.bucket = "Not_A_Bucket";
    assert_int_not_equal(hgs3_client_cache_get(cc, &x, p, &d), APR_SUCCESS);
    assert_null(x);
    assert_int_equal(hgs3_client_cache_get(cc, &x, p, &a), APR_SUCCESS);
    assert_ptr_equal(x, ca);
    /* no cache: a client of its own each time */
    assert_int_equal(hgs3_client_cache_get(NULL, &x, p, &a), APR_SUCCESS);
    assert_ptr_not_equal(x, ca);
    apr_pool_destroy(p);
}

/* ---- threads ---------------------------------------------------------------
 *
 * All threads hold their clients at the same time (a barrier), so distinct
 * pointers mean distinct clients, not freed and reallocated ones. */

#define THREADS 6

typedef struct shared {
    hgs3_client_cache *cc;
    apr_thread_mutex_t *mx;
    apr_thread_cond_t *cv;
    int arrived;
    hgs3_s3_client *got[THREADS];
    int stable[THREADS];
} shared;

typedef struct worker {
    shared *sh;
    int id;
} worker;

static void *APR_THREAD_FUNC work(apr_thread_t *t, void *data)
{
    worker *w = data;
    shared *sh = w->sh;
    hgs3_s3_config a = conf_for("bucket-a");
    hgs3_s3_client *first = NULL, *x = NULL;
    apr_pool_t *p;
    int i, stable = 1;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    for (i = 0; i < 200; ++i) {
        hgs3_s3_config b = conf_for(i % 2 ? "bucket-a" : "bucket-b");
        if (hgs3_client_cache_get(sh->cc, &x, p, &b) != APR_SUCCESS) {
            stable = 0;
        }
        if (i % 2) {
            stable &= !first || x == first;
            first = x;
        }
        apr_pool_clear(p);
    }
    stable &= hgs3_client_cache_get(sh->cc, &x, p, &a) == APR_SUCCESS && x == first;
    apr_thread_mutex_lock(sh->mx);
    sh->got[w->id] = x;
    sh->stable[w->id] = stable;
    if (++sh->arrived == THREADS) {
        apr_thread_cond_broadcast(sh->cv);
    }
    while (sh->arrived < THREADS) {
        apr_thread_cond_wait(sh->cv, sh->mx);
    }
    apr_thread_mutex_unlock(sh->mx);
    apr_pool_destroy(p);
    (void)t;
    return NULL; /* the thread's clients are freed as it exits */
}

static void test_threads(void **state)
{
    apr_pool_t *p;
    shared sh;
    worker w[THREADS];
    apr_thread_t *t[THREADS];
    apr_status_t trv;
    int i, j;
    (void)state;

    apr_pool_create(&p, NULL);
    memset(&sh, 0, sizeof(sh));
    assert_int_equal(hgs3_client_cache_create(&sh.cc, p), APR_SUCCESS);
    apr_thread_mutex_create(&sh.mx, APR_THREAD_MUTEX_DEFAULT, p);
    apr_thread_cond_create(&sh.cv, p);
    for (i = 0; i < THREADS; ++i) {
        w[i].sh = &sh;
        w[i].id = i;
        assert_int_equal(apr_thread_create(&t[i], NULL, work, &w[i], p), APR_SUCCESS);
    }
    for (i = 0; i < THREADS; ++i) {
        apr_thread_join(&trv, t[i]);
    }
    for (i = 0; i < THREADS; ++i) {
        assert_true(sh.stable[i]);
        assert_non_null(sh.got[i]);
        for (j = 0; j < i; ++j) {
            assert_ptr_not_equal(sh.got[i], sh.got[j]);
        }
    }
    apr_pool_destroy(p);
}

/* With an identity computed once, nothing is digested per call, and the
 * credentials still select the client: rotated ones get a fresh one. */
static void test_known_id(void **state)
{
    apr_pool_t *p;
    hgs3_client_cache *cc;
    hgs3_s3_config a = conf_for("bucket-a"), r = a, b = conf_for("bucket-b");
    hgs3_s3_client *ca, *x;
    const char *id;
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_client_cache_create(&cc, p), APR_SUCCESS);
    id = hgs3_client_cache_id(p, &a);
    r.creds.secret_key = "rotated";
    assert_string_equal(hgs3_client_cache_id(p, &r), id);
    assert_string_not_equal(hgs3_client_cache_id(p, &b), id);
    assert_int_equal(hgs3_client_cache_get_id(cc, &ca, p, &a, id), APR_SUCCESS);
    assert_int_equal(hgs3_client_cache_get(cc, &x, p, &a), APR_SUCCESS);
    assert_ptr_equal(x, ca); /* the same identity either way */
    a.creds.secret_key = apr_pstrdup(p, "secret");
    assert_int_equal(hgs3_client_cache_get_id(cc, &x, p, &a, id), APR_SUCCESS);
    assert_ptr_equal(x, ca);
    assert_int_equal(hgs3_client_cache_get_id(cc, &x, p, &r, id), APR_SUCCESS);
    assert_ptr_not_equal(x, ca);
    r.creds.session_token = "token";
    assert_int_equal(hgs3_client_cache_get_id(cc, &ca, p, &r, id), APR_SUCCESS);
    assert_ptr_not_equal(ca, x);
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_and_lru),
        cmocka_unit_test(test_config_changes),
        cmocka_unit_test(test_known_id),
        cmocka_unit_test(test_threads),
    };
    int rc;

    apr_initialize();
    hgs3_s3_global_init();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    hgs3_s3_global_cleanup();
    apr_terminate();
    return rc;
}
