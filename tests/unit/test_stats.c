/* test_stats.c: the shared counters add up across threads and processes,
 * reasons map onto their tables, notes are counted as documented, and the
 * ?auto text has one "HgS3Cache<Name>: <value>" line per field. */
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "hgs3_stats.h"

#define THREADS 8
#define ROUNDS  200000
#define PROCS   3

typedef struct worker {
    hgs3_stats *st;
    int id;
} worker;

/* Each thread: ROUNDS misses, 3 bytes each, a skip, a bypass with an
 * unknown reason, and a lookup whose duration is unique per thread/round. */
static void *APR_THREAD_FUNC hammer(apr_thread_t *t, void *data)
{
    worker *w = data;
    int i;

    for (i = 0; i < ROUNDS; ++i) {
        hgs3_stats_add(w->st, HGS3_C_MISSES, 1);
        hgs3_stats_add(w->st, HGS3_C_STORED_BYTES, 3);
        hgs3_stats_skip(w->st, "too-small");
        hgs3_stats_bypass(w->st, "no-such-reason");
        hgs3_stats_lookup(w->st, (apr_interval_time_t)w->id * ROUNDS + i);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void run_threads(hgs3_stats *st, apr_pool_t *p, int first_id)
{
    apr_thread_t *th[THREADS];
    worker w[THREADS];
    apr_status_t rv;
    int i;

    for (i = 0; i < THREADS; ++i) {
        w[i].st = st;
        w[i].id = first_id + i;
        assert_int_equal(apr_thread_create(&th[i], NULL, hammer, &w[i], p), APR_SUCCESS);
    }
    for (i = 0; i < THREADS; ++i) {
        apr_thread_join(&rv, th[i]);
    }
}

/* What run_threads adds for `workers` workers with ids 0..workers-1. */
static void check_totals(const hgs3_stats *st, int workers)
{
    hgs3_stats s;
    apr_uint64_t n = (apr_uint64_t)workers * ROUNDS;
    apr_uint64_t max = n - 1; /* the last id's last round */
    apr_uint64_t sum = n * (n - 1) / 2;

    hgs3_stats_snapshot(&s, st);
    assert_int_equal(s.counter[HGS3_C_MISSES], n);
    assert_int_equal(s.counter[HGS3_C_STORED_BYTES], 3 * n);
    assert_int_equal(s.skip[hgs3_stats_skip_index("too-small")], n);
    assert_int_equal(s.bypass[HGS3_STATS_BYPASS - 1], n); /* "other" */
    assert_int_equal(s.counter[HGS3_C_LOOKUPS], n);
    assert_int_equal(s.counter[HGS3_C_LOOKUP_US_SUM], sum);
    assert_int_equal(s.counter[HGS3_C_LOOKUP_US_MAX], max);
    assert_int_equal(s.counter[HGS3_C_STORED], 0);
}

static void test_threads_add_up(void **state)
{
    apr_pool_t *p;
    hgs3_stats *st;
    (void)state;

    apr_pool_create(&p, NULL);
    st = apr_palloc(p, sizeof(*st));
    hgs3_stats_init(st, apr_time_now());
    run_threads(st, p, 0);
    check_totals(st, THREADS);
    apr_pool_destroy(p);
}

/* The httpd layout: the parent creates the block, forked children (each
 * with threads) add into it, the parent reads the totals. */
static void test_processes_add_up(void **state)
{
    apr_pool_t *p;
    apr_shm_t *shm = NULL;
    hgs3_stats *st = NULL;
    pid_t pids[PROCS];
    int i, status;
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_stats_shm_create(&st, &shm, p, NULL), APR_SUCCESS);
    assert_non_null(st);
    assert_non_null(shm);
    assert_int_equal(st->magic, HGS3_STATS_MAGIC);
    assert_int_equal(st->size, sizeof(hgs3_stats));
    for (i = 0; i < PROCS; ++i) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            apr_pool_t *cp;
            apr_pool_create(&cp, NULL);
            run_threads(st, cp, i * THREADS);
            _exit(0);
        }
    }
    for (i = 0; i < PROCS; ++i) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    check_totals(st, PROCS * THREADS);
    apr_pool_destroy(p); /* unmaps */
}

static void test_reason_tables(void **state)
{
    apr_size_t i, j;
    (void)state;

    assert_string_equal(hgs3_stats_skip_names[HGS3_STATS_SKIPS - 1], "other");
    assert_string_equal(hgs3_stats_bypass_names[HGS3_STATS_BYPASS - 1], "other");
    for (i = 0; i < HGS3_STATS_SKIPS; ++i) {
        assert_int_equal(hgs3_stats_skip_index(hgs3_stats_skip_names[i]), i);
        for (j = i + 1; j < HGS3_STATS_SKIPS; ++j) {
            assert_string_not_equal(hgs3_stats_skip_names[i], hgs3_stats_skip_names[j]);
        }
    }
    for (i = 0; i < HGS3_STATS_BYPASS; ++i) {
        assert_int_equal(hgs3_stats_bypass_index(hgs3_stats_bypass_names[i]), i);
        for (j = i + 1; j < HGS3_STATS_BYPASS; ++j) {
            assert_string_not_equal(hgs3_stats_bypass_names[i], hgs3_stats_bypass_names[j]);
        }
    }
    /* every reason the glue emits today has a slot of its own */
    {
        static const char *const skips[] = {
            "status",         "hg-error",          "content-type",     "content-encoding",
            "content-length", "set-cookie",        "too-large",        "too-small",
            "error-part",     "unrecognized-body", "aborted",          "length-mismatch",
            "spool-error",    "in-progress",       "queue-full",       "credentials",
            "read-error",     "downstream-error",  "error-bucket",     "lock-error",
            "no-uploader",    "no-memory",         "uploader-stopped", "spool-full"};
        static const char *const bypasses[] = {
            "command",    "method", "malformed",   "too-large",   "post-body",   "location",
            "repository", "key",    "credentials", "store-error", "breaker-open"};
        for (i = 0; i < sizeof(skips) / sizeof(skips[0]); ++i) {
            assert_true(hgs3_stats_skip_index(skips[i]) < HGS3_STATS_SKIPS - 1);
        }
        for (i = 0; i < sizeof(bypasses) / sizeof(bypasses[0]); ++i) {
            assert_true(hgs3_stats_bypass_index(bypasses[i]) < HGS3_STATS_BYPASS - 1);
        }
    }
    /* unknown, differently cased, prefixed or absent: "other" */
    assert_int_equal(hgs3_stats_skip_index("nonsense"), HGS3_STATS_SKIPS - 1);
    assert_int_equal(hgs3_stats_skip_index("Too-Small"), HGS3_STATS_SKIPS - 1);
    assert_int_equal(hgs3_stats_skip_index("too-small "), HGS3_STATS_SKIPS - 1);
    assert_int_equal(hgs3_stats_skip_index(""), HGS3_STATS_SKIPS - 1);
    assert_int_equal(hgs3_stats_skip_index(NULL), HGS3_STATS_SKIPS - 1);
    assert_int_equal(hgs3_stats_bypass_index("breaker"), HGS3_STATS_BYPASS - 1);
    assert_int_equal(hgs3_stats_bypass_index(NULL), HGS3_STATS_BYPASS - 1);
    assert_int_not_equal(hgs3_stats_skip_index("too-large"), hgs3_stats_skip_index("too-small"));
}

/* Every reason's note is made from its name and counts in its own slot,
 * never as "other"; an out-of-range value is "other". */
static void test_reason_notes(void **state)
{
    hgs3_stats st;
    char want[64];
    int i;

    (void)state;
    hgs3_stats_init(&st, 0);
    for (i = 0; i < HGS3_SKIP_COUNT; ++i) {
        snprintf(want, sizeof(want), "miss-store-skipped:%s", hgs3_skip_name((hgs3_skip_e)i));
        assert_string_equal(hgs3_skip_note((hgs3_skip_e)i), want);
        hgs3_stats_note(&st, hgs3_skip_note((hgs3_skip_e)i));
        assert_int_equal(st.skip[i], 1);
    }
    for (i = 0; i < HGS3_BYPASS_COUNT; ++i) {
        snprintf(want, sizeof(want), "bypass:%s", hgs3_bypass_name((hgs3_bypass_e)i));
        assert_string_equal(hgs3_bypass_note((hgs3_bypass_e)i), want);
        hgs3_stats_note(&st, hgs3_bypass_note((hgs3_bypass_e)i));
        assert_int_equal(st.bypass[i], 1);
    }
    assert_string_equal(hgs3_skip_name(HGS3_SKIP_NONE), "other");
    assert_string_equal(hgs3_bypass_name((hgs3_bypass_e)HGS3_BYPASS_COUNT), "other");
    assert_string_equal(hgs3_skip_name(HGS3_SKIP_TOO_SMALL), "too-small");
    assert_string_equal(hgs3_bypass_note(HGS3_BYPASS_BREAKER_OPEN), "bypass:breaker-open");
}

static void test_notes(void **state)
{
    hgs3_stats st;
    (void)state;

    hgs3_stats_init(&st, 0);
    hgs3_stats_note(&st, "hit-redirect");
    hgs3_stats_note(&st, "hit-redirect");
    hgs3_stats_note(&st, "hit-stream");
    hgs3_stats_note(&st, "hit-inline");
    hgs3_stats_note(&st, "hit-local");
    hgs3_stats_note(&st, "miss");
    hgs3_stats_note(&st, "miss-store-skipped:in-progress");
    hgs3_stats_note(&st, "miss-store-skipped:whatever");
    hgs3_stats_note(&st, "bypass:command");
    hgs3_stats_note(&st, "bypass:breaker-open");
    hgs3_stats_note(&st, "bypass:");
    hgs3_stats_note(&st, "hit");     /* not a note: nothing */
    hgs3_stats_note(&st, "missing"); /* not a note: nothing */
    hgs3_stats_note(&st, NULL);      /* no note: nothing */
    assert_int_equal(st.counter[HGS3_C_HITS_REDIRECT], 2);
    assert_int_equal(st.counter[HGS3_C_HITS_STREAM], 1);
    assert_int_equal(st.counter[HGS3_C_HITS_INLINE], 1);
    assert_int_equal(st.counter[HGS3_C_HITS_LOCAL], 1);
    assert_int_equal(st.counter[HGS3_C_MISSES], 3);
    assert_int_equal(st.skip[hgs3_stats_skip_index("in-progress")], 1);
    assert_int_equal(st.skip[HGS3_STATS_SKIPS - 1], 1);
    assert_int_equal(st.bypass[hgs3_stats_bypass_index("command")], 1);
    assert_int_equal(st.bypass[hgs3_stats_bypass_index("breaker-open")], 1);
    assert_int_equal(st.bypass[HGS3_STATS_BYPASS - 1], 1);
    assert_int_equal(st.counter[HGS3_C_STORED], 0);
}

static void test_null_is_noop(void **state)
{
    (void)state;
    hgs3_stats_add(NULL, HGS3_C_MISSES, 1);
    hgs3_stats_skip(NULL, "status");
    hgs3_stats_bypass(NULL, "command");
    hgs3_stats_lookup(NULL, 5);
    hgs3_stats_note(NULL, "miss");
}

static void test_max_and_bounds(void **state)
{
    hgs3_stats st;
    (void)state;

    hgs3_stats_init(&st, 0);
    hgs3_stats_lookup(&st, 100);
    hgs3_stats_lookup(&st, 50);
    hgs3_stats_lookup(&st, -7); /* a clock step: counted as 0 */
    assert_int_equal(st.counter[HGS3_C_LOOKUPS], 3);
    assert_int_equal(st.counter[HGS3_C_LOOKUP_US_SUM], 150);
    assert_int_equal(st.counter[HGS3_C_LOOKUP_US_MAX], 100);
    hgs3_stats_add(&st, HGS3_C_COUNT, 1); /* out of range: ignored */
    hgs3_stats_add(&st, (hgs3_counter_e)-1, 1);
    assert_int_equal(st.bypass[0], 0);
}

/* The ?auto text: exact lines for the values set, one line per field. */
static void test_auto_text(void **state)
{
    apr_pool_t *p;
    hgs3_stats st, snap;
    const char *text, *line;
    char *copy, *last = NULL;
    const char *name;
    apr_hash_t *seen;
    int lines = 0;
    (void)state;

    apr_pool_create(&p, NULL);
    hgs3_stats_init(&st, 0);
    hgs3_stats_add(&st, HGS3_C_HITS_REDIRECT, 4);
    hgs3_stats_add(&st, HGS3_C_HITS_STREAM, 1);
    hgs3_stats_add(&st, HGS3_C_HITS_INLINE, 3);
    hgs3_stats_add(&st, HGS3_C_INLINE_STORED, 6);
    hgs3_stats_add(&st, HGS3_C_MISSES, 7);
    hgs3_stats_add(&st, HGS3_C_STORED, 2);
    hgs3_stats_add(&st, HGS3_C_STORED_BYTES, APR_UINT64_C(5000000000));
    hgs3_stats_add(&st, HGS3_C_HEADS, 9);
    hgs3_stats_lookup(&st, 100);
    hgs3_stats_lookup(&st, 201);
    hgs3_stats_skip(&st, "too-small");
    hgs3_stats_skip(&st, "too-small");
    hgs3_stats_skip(&st, "hg-error");
    hgs3_stats_bypass(&st, "breaker-open");
    hgs3_stats_bypass(&st, "post-body");
    hgs3_stats_bypass(&st, "mystery");
    hgs3_stats_snapshot(&snap, &st);
    text = hgs3_stats_auto_text(&snap, p);

    assert_non_null(strstr(text, "HgS3CacheHits: 8\n"));
    assert_non_null(strstr(text, "HgS3CacheHitsInline: 3\n"));
    assert_non_null(strstr(text, "HgS3CacheInlineStored: 6\n"));
    assert_non_null(strstr(text, "HgS3CacheHitsRedirect: 4\n"));
    assert_non_null(strstr(text, "HgS3CacheHitsStream: 1\n"));
    assert_non_null(strstr(text, "HgS3CacheMisses: 7\n"));
    assert_non_null(strstr(text, "HgS3CacheStored: 2\n"));
    assert_non_null(strstr(text, "HgS3CacheStoredBytes: 5000000000\n"));
    assert_non_null(strstr(text, "HgS3CacheUploadsDropped: 0\n"));
    assert_non_null(strstr(text, "HgS3CacheUploadErrors: 0\n"));
    assert_non_null(strstr(text, "HgS3CacheStoreErrors: 0\n"));
    assert_non_null(strstr(text, "HgS3CacheBreakerTrips: 0\n"));
    assert_non_null(strstr(text, "HgS3CacheLookups: 2\n"));
    assert_non_null(strstr(text, "HgS3CacheLookupUsSum: 301\n"));
    assert_non_null(strstr(text, "HgS3CacheLookupUsMax: 201\n"));
    assert_non_null(strstr(text, "HgS3CacheLookupUsMean: 150\n"));
    assert_non_null(strstr(text, "HgS3CachePresenceHits: 0\n"));
    assert_non_null(strstr(text, "HgS3CacheHeads: 9\n"));
    assert_non_null(strstr(text, "HgS3CacheSkips: 3\n"));
    assert_non_null(strstr(text, "HgS3CacheSkipTooSmall: 2\n"));
    assert_non_null(strstr(text, "HgS3CacheSkipHgError: 1\n"));
    assert_non_null(strstr(text, "HgS3CacheSkipUnrecognizedBody: 0\n"));
    assert_non_null(strstr(text, "HgS3CacheSkipOther: 0\n"));
    assert_non_null(strstr(text, "HgS3CacheBypasses: 3\n"));
    assert_non_null(strstr(text, "HgS3CacheBypassBreakerOpen: 1\n"));
    assert_non_null(strstr(text, "HgS3CacheBypassPostBody: 1\n"));
    assert_non_null(strstr(text, "HgS3CacheBypassOther: 1\n"));
    assert_non_null(strstr(text, "HgS3CacheBypassCommand: 0\n"));
    assert_int_equal(text[strlen(text) - 1], '\n');

    /* every line is "HgS3Cache<Alnum>: <digits>", names are unique */
    copy = apr_pstrdup(p, text);
    seen = apr_hash_make(p);
    for (line = apr_strtok(copy, "\n", &last); line; line = apr_strtok(NULL, "\n", &last)) {
        const char *c = line + 9, *colon = strchr(line, ':');
        assert_int_equal(strncmp(line, "HgS3Cache", 9), 0);
        assert_non_null(colon);
        for (; c < colon; ++c) {
            assert_true(apr_isalnum(*c));
        }
        assert_true(colon > line + 9 && colon[1] == ' ' && apr_isdigit(colon[2]));
        for (c = colon + 2; *c; ++c) {
            assert_true(apr_isdigit(*c));
        }
        name = apr_pstrndup(p, line, (apr_size_t)(colon - line));
        assert_null(apr_hash_get(seen, name, APR_HASH_KEY_STRING));
        apr_hash_set(seen, name, APR_HASH_KEY_STRING, name);
        ++lines;
    }
    /* the counters + 4 derived (hits, mean, skips, bypasses) + the spool
     * gauge + the reasons */
    assert_int_equal(lines, HGS3_C_COUNT + 5 + HGS3_STATS_SKIPS + HGS3_STATS_BYPASS);
    apr_pool_destroy(p);
}

/* HgS3CacheSpoolMax's budget: reservations up to the maximum are granted,
 * one beyond it changes nothing, releases give it back (never below 0). */
static void test_spool_budget(void **state)
{
    hgs3_stats st;
    (void)state;

    hgs3_stats_init(&st, 0);
    assert_true(hgs3_stats_spool_reserve(&st, 600, 1000));
    assert_true(hgs3_stats_spool_reserve(&st, 400, 1000));
    assert_false(hgs3_stats_spool_reserve(&st, 1, 1000));
    assert_int_equal(st.spool_bytes, 1000);
    hgs3_stats_spool_release(&st, 600);
    assert_false(hgs3_stats_spool_reserve(&st, 601, 1000));
    assert_true(hgs3_stats_spool_reserve(&st, 600, 1000));
    assert_false(hgs3_stats_spool_reserve(&st, UINT64_MAX, UINT64_MAX - 1));
    hgs3_stats_spool_release(&st, 5000);
    assert_int_equal(st.spool_bytes, 0);
    assert_true(hgs3_stats_spool_reserve(NULL, 1, 0));
    hgs3_stats_spool_release(NULL, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spool_budget),
        cmocka_unit_test(test_threads_add_up),
        cmocka_unit_test(test_processes_add_up),
        cmocka_unit_test(test_reason_tables),
        cmocka_unit_test(test_reason_notes),
        cmocka_unit_test(test_notes),
        cmocka_unit_test(test_null_is_noop),
        cmocka_unit_test(test_max_and_bounds),
        cmocka_unit_test(test_auto_text),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
