/* test_presign_cache.c: a presigned URL is reused only within its second
 * and only for exactly the same inputs; slots are replaced; concurrent
 * threads never get a URL signed for other inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "hgs3_presign_cache.h"

#define T0 apr_time_from_sec(1700000000)

static hgs3_s3_config base_conf(void)
{
    hgs3_s3_config c;
    memset(&c, 0, sizeof(c));
    c.endpoint = "http://127.0.0.1:9000";
    c.region = "us-east-1";
    c.addressing = HGS3_S3_PATH;
    c.bucket = "bucket";
    c.creds.access_key = "AKIDEXAMPLE";
    c.creds.secret_key = "secret";
    return c;
}

static void test_reused_within_second(void **state)
{
    apr_pool_t *p;
    hgs3_presign_cache *pc;
    hgs3_s3_config c = base_conf();
    const char *u1, *u2, *direct;
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_presign_cache_create(&pc, p, HGS3_PRESIGN_CACHE_SLOTS), APR_SUCCESS);
    assert_int_equal(hgs3_presign_cache_url(&u1, pc, p, &c, "k/obj", 300, T0), APR_SUCCESS);
    assert_int_equal(hgs3_s3_presign(&direct, p, &c, "GET", "k/obj", 300, NULL, T0), APR_SUCCESS);
    assert_string_equal(u1, direct);
    /* later in the same second: the remembered URL */
    assert_non_null(hgs3_presign_cache_get(pc, p, &c, "k/obj", 300, apr_time_sec(T0)));
    hgs3_presign_cache_put(pc, &c, "k/obj", 300, apr_time_sec(T0), "http://remembered");
    assert_int_equal(hgs3_presign_cache_url(&u2, pc, p, &c, "k/obj", 300, T0 + 999999),
                     APR_SUCCESS);
    assert_string_equal(u2, "http://remembered");
    /* the next second: signed anew (and remembered for that second) */
    assert_int_equal(
        hgs3_presign_cache_url(&u2, pc, p, &c, "k/obj", 300, T0 + apr_time_from_sec(1)),
        APR_SUCCESS);
    assert_string_not_equal(u2, "http://remembered");
    assert_string_not_equal(u2, u1);
    assert_null(hgs3_presign_cache_get(pc, p, &c, "k/obj", 300, apr_time_sec(T0)));
    assert_string_equal(hgs3_presign_cache_get(pc, p, &c, "k/obj", 300, apr_time_sec(T0) + 1), u2);
    /* no cache: signed every time, same result */
    assert_int_equal(hgs3_presign_cache_url(&u2, NULL, p, &c, "k/obj", 300, T0), APR_SUCCESS);
    assert_string_equal(u2, direct);
    apr_pool_destroy(p);
}

/* Every input of the signature is part of the match. */
static void test_every_input_matters(void **state)
{
    apr_pool_t *p;
    hgs3_presign_cache *pc;
    hgs3_s3_config c = base_conf(), d;
    apr_time_t s = apr_time_sec(T0);
    int i;
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_presign_cache_create(&pc, p, 4), APR_SUCCESS);
    hgs3_presign_cache_put(pc, &c, "obj", 300, s, "http://u");
    assert_string_equal(hgs3_presign_cache_get(pc, p, &c, "obj", 300, s), "http://u");
    assert_null(hgs3_presign_cache_get(pc, p, &c, "obj2", 300, s));
    assert_null(hgs3_presign_cache_get(pc, p, &c, "obj", 301, s));
    assert_null(hgs3_presign_cache_get(pc, p, &c, "obj", 300, s - 1));
    for (i = 0; i < 8; ++i) {
        d = c;
        switch (i) {
        case 0:
            d.endpoint = "http://127.0.0.1:9001";
            break;
        case 1:
            d.region = "eu-west-1";
            break;
        case 2:
            d.addressing = HGS3_S3_VIRTUAL;
            break;
        case 3:
            d.bucket = "other";
            break;
        case 4:
            d.creds.access_key = "AKIDOTHER";
            break;
        case 5:
            d.creds.secret_key = "secreT";
            break;
        case 6:
            d.creds.secret_key = "secret2";
            break;
        default:
            d.creds.session_token = "token";
            break;
        }
        assert_null(hgs3_presign_cache_get(pc, p, &d, "obj", 300, s));
    }
    /* equal values in other buffers match */
    d = c;
    d.creds.secret_key = apr_pstrdup(p, "secret");
    d.endpoint = apr_pstrdup(p, c.endpoint);
    assert_string_equal(hgs3_presign_cache_get(pc, p, &d, "obj", 300, s), "http://u");
    apr_pool_destroy(p);
}

static void test_slot_replaced(void **state)
{
    apr_pool_t *p;
    hgs3_presign_cache *pc;
    hgs3_s3_config c = base_conf();
    apr_time_t s = apr_time_sec(T0);
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_presign_cache_create(&pc, p, 0), APR_EINVAL);
    assert_null(pc);
    assert_int_equal(hgs3_presign_cache_create(&pc, p, 1), APR_SUCCESS);
    hgs3_presign_cache_put(pc, &c, "a", 300, s, "http://a");
    hgs3_presign_cache_put(pc, &c, "b", 300, s, "http://b");
    assert_null(hgs3_presign_cache_get(pc, p, &c, "a", 300, s));
    assert_string_equal(hgs3_presign_cache_get(pc, p, &c, "b", 300, s), "http://b");
    apr_pool_destroy(p);
}

/* ---- threads ---------------------------------------------------------------
 *
 * Threads of two credential sets put and get URLs that name their inputs;
 * a URL handed out must always be the one of the asker's inputs. */

#define THREADS 8
#define ROUNDS  20000

typedef struct worker {
    hgs3_presign_cache *pc;
    int id;
    int wrong;
    int hits;
} worker;

static void *APR_THREAD_FUNC work(apr_thread_t *t, void *data)
{
    worker *w = data;
    hgs3_s3_config c = base_conf();
    apr_pool_t *p;
    unsigned seed = (unsigned)w->id * 2654435761u;
    int i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    c.creds.secret_key = (w->id & 1) ? "odd-secret" : "even-secret";
    for (i = 0; i < ROUNDS; ++i) {
        char object[16], want[64];
        const char *got;
        apr_time_t s;

        seed = seed * 1103515245u + 12345u;
        s = 1000 + (seed >> 8) % 3;
        apr_snprintf(object, sizeof(object), "o%u", (seed >> 12) % 24);
        apr_snprintf(want, sizeof(want), "http://%s/%s/%" APR_TIME_T_FMT, c.creds.secret_key,
                     object, s);
        got = hgs3_presign_cache_get(w->pc, p, &c, object, 300, s);
        if (got) {
            w->hits++;
            w->wrong += strcmp(got, want) != 0;
        } else {
            hgs3_presign_cache_put(w->pc, &c, object, 300, s, want);
        }
        if (i % 256 == 0) {
            apr_pool_clear(p);
        }
    }
    apr_pool_destroy(p);
    (void)t;
    return NULL; /* not apr_thread_exit(): ASan misreads its unwinding */
}

static void test_threads(void **state)
{
    apr_pool_t *p;
    hgs3_presign_cache *pc;
    apr_thread_t *t[THREADS];
    worker w[THREADS];
    apr_status_t trv;
    int i, hits = 0;
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_presign_cache_create(&pc, p, 8), APR_SUCCESS);
    for (i = 0; i < THREADS; ++i) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].pc = pc;
        w[i].id = i + 1;
        assert_int_equal(apr_thread_create(&t[i], NULL, work, &w[i], p), APR_SUCCESS);
    }
    for (i = 0; i < THREADS; ++i) {
        apr_thread_join(&trv, t[i]);
        assert_int_equal(w[i].wrong, 0);
        hits += w[i].hits;
    }
    assert_true(hits > 0); /* the cache was used, and never gave a wrong URL */
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reused_within_second),
        cmocka_unit_test(test_every_input_matters),
        cmocka_unit_test(test_slot_replaced),
        cmocka_unit_test(test_threads),
    };
    int rc;

    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
