/* test_presence_front.c: the presence front cache answers only ids seen
 * present within its TTL, by the whole id; a remove keeps an answer read
 * before it from being entered after it; concurrent threads never get
 * another id's Last-Modified. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "hgs3_presence_front.h"

#define T0  apr_time_from_sec(1700000000)
#define TTL apr_time_from_sec(1)
#define LM  apr_time_from_sec(1600000000) /* a Last-Modified */

static hgs3_presence_front *make(apr_pool_t *p, int nslots)
{
    hgs3_presence_front *f = NULL;
    assert_int_equal(hgs3_presence_front_create(&f, p, nslots, TTL), APR_SUCCESS);
    assert_non_null(f);
    return f;
}

static void test_create(void **state)
{
    apr_pool_t *p;
    hgs3_presence_front *f = (void *)1;
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_presence_front_create(&f, p, 0, TTL), APR_EINVAL);
    assert_null(f);
    f = (void *)1;
    assert_int_equal(hgs3_presence_front_create(&f, p, 4, 0), APR_EINVAL);
    assert_null(f);
    apr_pool_destroy(p);
}

/* Present for exactly the TTL after the put, then gone. */
static void test_expiry(void **state)
{
    apr_pool_t *p;
    hgs3_presence_front *f;
    apr_time_t lm = 1;
    apr_uint64_t gen;
    (void)state;

    apr_pool_create(&p, NULL);
    f = make(p, HGS3_PRESENCE_FRONT_SLOTS);
    assert_int_equal(hgs3_presence_front_get(f, "k/obj", T0, &lm, &gen), APR_NOTFOUND);
    assert_int_equal(lm, 0);
    hgs3_presence_front_put(f, "k/obj", LM, T0, gen);
    assert_int_equal(hgs3_presence_front_get(f, "k/obj", T0, &lm, &gen), APR_SUCCESS);
    assert_int_equal(lm, LM);
    assert_int_equal(hgs3_presence_front_get(f, "k/obj", T0 + TTL - 1, &lm, &gen), APR_SUCCESS);
    assert_int_equal(lm, LM);
    assert_int_equal(hgs3_presence_front_get(f, "k/obj", T0 + TTL, &lm, &gen), APR_NOTFOUND);
    assert_int_equal(lm, 0);
    /* a new put (a new shared answer) starts a new TTL, with its value */
    hgs3_presence_front_put(f, "k/obj", LM + 1, T0 + TTL, gen);
    assert_int_equal(hgs3_presence_front_get(f, "k/obj", T0 + 2 * TTL - 1, &lm, &gen), APR_SUCCESS);
    assert_int_equal(lm, LM + 1);
    apr_pool_destroy(p);
}

/* Matched by the whole id, never by its slot or a prefix; empty and too
 * long ids are not kept. */
static void test_whole_id(void **state)
{
    apr_pool_t *p;
    hgs3_presence_front *f;
    char *longid;
    apr_time_t lm;
    apr_uint64_t gen;
    (void)state;

    apr_pool_create(&p, NULL);
    f = make(p, 1);
    gen = hgs3_presence_front_generation(f);
    hgs3_presence_front_put(f, "abc", LM, T0, gen);
    assert_int_equal(hgs3_presence_front_get(f, "ab", T0, &lm, &gen), APR_NOTFOUND);
    assert_int_equal(hgs3_presence_front_get(f, "abcd", T0, &lm, &gen), APR_NOTFOUND);
    assert_int_equal(hgs3_presence_front_get(f, "abd", T0, &lm, &gen), APR_NOTFOUND);
    assert_int_equal(hgs3_presence_front_get(f, "abc", T0, &lm, &gen), APR_SUCCESS);
    /* one slot: the next id replaces it */
    hgs3_presence_front_put(f, "xyz", LM + 1, T0, gen);
    assert_int_equal(hgs3_presence_front_get(f, "abc", T0, &lm, &gen), APR_NOTFOUND);
    assert_int_equal(hgs3_presence_front_get(f, "xyz", T0, &lm, &gen), APR_SUCCESS);
    assert_int_equal(lm, LM + 1);
    /* not kept: the empty id, an id of HGS3_PRESENCE_FRONT_ID_MAX bytes */
    hgs3_presence_front_put(f, "", LM, T0, gen);
    assert_int_equal(hgs3_presence_front_get(f, "", T0, &lm, &gen), APR_NOTFOUND);
    longid = apr_palloc(p, HGS3_PRESENCE_FRONT_ID_MAX + 1);
    memset(longid, 'a', HGS3_PRESENCE_FRONT_ID_MAX);
    longid[HGS3_PRESENCE_FRONT_ID_MAX] = '\0';
    hgs3_presence_front_put(f, longid, LM, T0, gen);
    assert_int_equal(hgs3_presence_front_get(f, longid, T0, &lm, &gen), APR_NOTFOUND);
    longid[HGS3_PRESENCE_FRONT_ID_MAX - 1] = '\0'; /* the longest kept */
    hgs3_presence_front_put(f, longid, LM, T0, gen);
    assert_int_equal(hgs3_presence_front_get(f, longid, T0, &lm, &gen), APR_SUCCESS);
    apr_pool_destroy(p);
}

/* A remove clears the id, and an answer read before any remove is not
 * entered after it (an object found too old must not come back from a
 * lookup that raced with its removal). */
static void test_remove_and_generation(void **state)
{
    apr_pool_t *p;
    hgs3_presence_front *f;
    apr_time_t lm;
    apr_uint64_t gen, old;
    (void)state;

    apr_pool_create(&p, NULL);
    f = make(p, HGS3_PRESENCE_FRONT_SLOTS);
    gen = hgs3_presence_front_generation(f);
    hgs3_presence_front_put(f, "a", LM, T0, gen);
    hgs3_presence_front_put(f, "b", LM, T0, gen);
    hgs3_presence_front_remove(f, "a");
    assert_int_equal(hgs3_presence_front_get(f, "a", T0, &lm, &gen), APR_NOTFOUND);
    assert_int_equal(hgs3_presence_front_get(f, "b", T0, &lm, &old), APR_SUCCESS);
    assert_int_equal(gen, old);
    /* a lookup misses (reads the generation), a remove follows (of any
     * id), then the lookup's shared answer arrives: not entered */
    assert_int_equal(hgs3_presence_front_get(f, "a", T0, &lm, &old), APR_NOTFOUND);
    hgs3_presence_front_remove(f, "c");
    assert_true(hgs3_presence_front_generation(f) != old);
    hgs3_presence_front_put(f, "a", LM, T0, old);
    assert_int_equal(hgs3_presence_front_get(f, "a", T0, &lm, &gen), APR_NOTFOUND);
    /* with the current generation it is */
    hgs3_presence_front_put(f, "a", LM, T0, gen);
    assert_int_equal(hgs3_presence_front_get(f, "a", T0, &lm, &gen), APR_SUCCESS);
    /* removing an absent id (same slot or not) keeps the others */
    hgs3_presence_front_remove(f, "zzz");
    assert_int_equal(hgs3_presence_front_get(f, "a", T0, &lm, &gen), APR_SUCCESS);
    assert_int_equal(hgs3_presence_front_get(f, "b", T0, &lm, &gen), APR_SUCCESS);
    apr_pool_destroy(p);
}

/* ---- threads ---------------------------------------------------------------
 *
 * Threads look up, put and remove ids of different lengths in a table of
 * few slots, with times spread over two TTLs. Each id has its own
 * Last-Modified: a hit must always return the asker's (no entry is ever
 * seen half written). */

#define THREADS 8
#define ROUNDS  40000
#define IDS     24

typedef struct worker {
    hgs3_presence_front *f;
    int id;
    int wrong;
    int hits;
} worker;

/* Id n (buf holds IDS + 1 bytes): "a", "bb", "ccc", ... so that ids
 * differ in length as well as in bytes. */
static void id_for(char *buf, unsigned n)
{
    apr_size_t len = n % IDS + 1;
    memset(buf, 'a' + (int)(n % IDS), len);
    buf[len] = '\0';
}

static void *APR_THREAD_FUNC work(apr_thread_t *t, void *data)
{
    worker *w = data;
    unsigned seed = (unsigned)w->id * 2654435761u;
    int i;

    for (i = 0; i < ROUNDS; ++i) {
        char id[IDS + 1];
        unsigned n, what;
        apr_time_t now, lm, stored;
        apr_uint64_t gen;

        seed = seed * 1103515245u + 12345u;
        n = (seed >> 8) % IDS;
        what = (seed >> 16) % 16;
        now = T0 + (apr_time_t)((seed >> 4) % 2000) * 1000; /* 0..2 s */
        id_for(id, n);
        stored = LM + (apr_time_t)n;
        if (what == 0) {
            hgs3_presence_front_remove(w->f, id);
        } else if (hgs3_presence_front_get(w->f, id, now, &lm, &gen) == APR_SUCCESS) {
            w->hits++;
            w->wrong += lm != stored;
        } else {
            w->wrong += lm != 0;
            hgs3_presence_front_put(w->f, id, stored, now, gen);
        }
    }
    (void)t;
    return NULL; /* not apr_thread_exit(): ASan misreads its unwinding */
}

static void test_threads(void **state)
{
    apr_pool_t *p;
    hgs3_presence_front *f;
    apr_thread_t *t[THREADS];
    worker w[THREADS];
    apr_status_t trv;
    apr_time_t lm;
    apr_uint64_t gen;
    int i, hits = 0;
    (void)state;

    apr_pool_create(&p, NULL);
    f = make(p, 4);
    for (i = 0; i < THREADS; ++i) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].f = f;
        w[i].id = i + 1;
        assert_int_equal(apr_thread_create(&t[i], NULL, work, &w[i], p), APR_SUCCESS);
    }
    for (i = 0; i < THREADS; ++i) {
        apr_thread_join(&trv, t[i]);
        assert_int_equal(w[i].wrong, 0);
        hits += w[i].hits;
    }
    assert_true(hits > 0); /* the cache was used, and never answered wrongly */
    /* nothing outlives its TTL */
    for (i = 0; i < IDS; ++i) {
        char id[IDS + 1];
        id_for(id, (unsigned)i);
        assert_int_equal(hgs3_presence_front_get(f, id, T0 + 3 * TTL, &lm, &gen), APR_NOTFOUND);
    }
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),   cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_whole_id), cmocka_unit_test(test_remove_and_generation),
        cmocka_unit_test(test_threads),
    };
    int rc;

    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
