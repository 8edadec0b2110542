/* test_creds_cache.c: a credentials file is read again when it changes and
 * not otherwise; after a failed load on every call, even when the file
 * comes back with its old stat; the environment is read once; concurrent
 * readers always get one whole set of credentials while the file is
 * replaced under them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_atomic.h>
#include <apr_env.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "hgs3_err.h"
#include "hgs3_creds_cache.h"
#include "hgs3_test_util.h"

typedef struct fixture {
    hgs3_test_dir *d;
    apr_pool_t *pool; /* d's */
    const char *path; /* the credentials file */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    if (!f || hgs3_test_dir_setup((void **)&f->d) != 0) {
        free(f);
        return -1;
    }
    f->pool = f->d->p;
    f->path = hgs3_test_path(f->d, "credentials");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = hgs3_test_dir_teardown((void **)&f->d);

    free(f);
    return rc;
}

/* Key and secret of one letter's set, all the same length. */
static const char *ini(apr_pool_t *p, char which)
{
    return apr_psprintf(
        p, "[default]\naws_access_key_id = AKID%c\naws_secret_access_key = %c-secret\n", which,
        which);
}

static apr_status_t get(hgs3_creds_cache *cc, hgs3_creds *c, fixture *f)
{
    return hgs3_creds_cache_get(cc, c, f->pool, f->path, NULL);
}

static void test_reread_on_change(void **state)
{
    fixture *f = *state;
    hgs3_creds_cache *cc;
    hgs3_creds c;

    assert_int_equal(hgs3_creds_cache_create(&cc, f->pool), APR_SUCCESS);
    hgs3_test_write_file(f->path, ini(f->pool, 'A'), f->pool);
    assert_int_equal(get(cc, &c, f), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDA");
    assert_string_equal(c.secret_key, "A-secret");
    assert_null(c.session_token);

    /* unchanged stat: not read again */
    hgs3_test_rewrite_same_stat(f->path, ini(f->pool, 'B'), f->pool);
    assert_int_equal(get(cc, &c, f), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDA");

    /* a new mtime: read again */
    hgs3_test_mtime_bump(f->path, apr_time_from_sec(10), f->pool);
    assert_int_equal(get(cc, &c, f), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDB");
    assert_string_equal(c.secret_key, "B-secret");

    /* another profile of the same file is an entry of its own */
    assert_int_equal(hgs3_creds_cache_get(cc, &c, f->pool, f->path, "other"), HGS3_ENOTFOUND);
    assert_null(c.access_key);
    assert_int_equal(hgs3_creds_cache_get(cc, &c, f->pool, f->path, "default"), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDB");
}

/* After a failed load, every call reads the file again, whatever its stat. */
static void test_reread_after_failure(void **state)
{
    fixture *f = *state;
    const char *away = hgs3_test_path(f->d, "away");
    hgs3_creds_cache *cc;
    hgs3_creds c;
    char *bad, *s;

    assert_int_equal(hgs3_creds_cache_create(&cc, f->pool), APR_SUCCESS);
    hgs3_test_write_file(f->path, ini(f->pool, 'A'), f->pool);
    assert_int_equal(get(cc, &c, f), APR_SUCCESS);
    /* moved away: an error; back with the same stat and new content */
    assert_int_equal(apr_file_rename(f->path, away, f->pool), APR_SUCCESS);
    assert_true(APR_STATUS_IS_ENOENT(get(cc, &c, f)));
    assert_null(c.access_key);
    hgs3_test_rewrite_same_stat(away, ini(f->pool, 'B'), f->pool);
    assert_int_equal(apr_file_rename(away, f->path, f->pool), APR_SUCCESS);
    assert_int_equal(get(cc, &c, f), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDB");

    /* unparsable (no separators), then fixed without any change to its
     * stat: the same length, mtime and inode */
    bad = apr_pstrdup(f->pool, ini(f->pool, 'C'));
    for (s = bad; *s; ++s) {
        *s = *s == '=' ? ' ' : *s;
    }
    hgs3_test_rewrite_same_stat(f->path, bad, f->pool);
    assert_int_equal(apr_file_mtime_set(f->path, apr_time_now(), f->pool), APR_SUCCESS);
    assert_int_equal(get(cc, &c, f), HGS3_EMALFORMED);
    assert_int_equal(get(cc, &c, f), HGS3_EMALFORMED);
    hgs3_test_rewrite_same_stat(f->path, ini(f->pool, 'C'), f->pool);
    assert_int_equal(get(cc, &c, f), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDC");
}

static void test_env_read_once(void **state)
{
    fixture *f = *state;
    hgs3_creds_cache *cc, *cc2;
    hgs3_creds c;

    apr_env_set("AWS_ACCESS_KEY_ID", "AKIDENV1", f->pool);
    apr_env_set("AWS_SECRET_ACCESS_KEY", "envsecret1", f->pool);
    apr_env_set("AWS_SESSION_TOKEN", "envtoken1", f->pool);
    assert_int_equal(hgs3_creds_cache_create(&cc, f->pool), APR_SUCCESS);
    assert_int_equal(hgs3_creds_cache_get(cc, &c, f->pool, NULL, NULL), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDENV1");
    assert_string_equal(c.session_token, "envtoken1");
    apr_env_set("AWS_ACCESS_KEY_ID", "AKIDENV2", f->pool);
    assert_int_equal(hgs3_creds_cache_get(cc, &c, f->pool, NULL, NULL), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDENV1");
    assert_int_equal(hgs3_creds_cache_create(&cc2, f->pool), APR_SUCCESS);
    assert_int_equal(hgs3_creds_cache_get(cc2, &c, f->pool, NULL, NULL), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDENV2");
    /* a missing environment is remembered as missing */
    apr_env_delete("AWS_ACCESS_KEY_ID", f->pool);
    apr_env_delete("AWS_SECRET_ACCESS_KEY", f->pool);
    apr_env_delete("AWS_SESSION_TOKEN", f->pool);
    assert_int_equal(hgs3_creds_cache_create(&cc, f->pool), APR_SUCCESS);
    assert_int_equal(hgs3_creds_cache_get(cc, &c, f->pool, NULL, NULL), HGS3_ENOTFOUND);
    assert_null(c.access_key);
}

/* ---- threads ----------------------------------------------------------- */

#define READERS 6
#define ROUNDS  20000

static volatile apr_uint32_t readers_done;

typedef struct reader {
    hgs3_creds_cache *cc;
    const char *path;
    int bad;
} reader;

static void *APR_THREAD_FUNC read_loop(apr_thread_t *t, void *data)
{
    reader *rd = data;
    apr_pool_t *p;
    int i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    for (i = 0; i < ROUNDS; ++i) {
        hgs3_creds c;
        if (hgs3_creds_cache_get(rd->cc, &c, p, rd->path, NULL) != APR_SUCCESS ||
            strlen(c.access_key) != 5 || c.secret_key[0] != c.access_key[4] ||
            strcmp(c.secret_key + 1, "-secret")) {
            rd->bad++;
        }
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    apr_atomic_inc32(&readers_done);
    (void)t;
    return NULL; /* not apr_thread_exit(): ASan misreads its unwinding */
}

/* Readers while a writer replaces the file atomically, again and again. */
static void test_threads(void **state)
{
    fixture *f = *state;
    const char *tmp = hgs3_test_path(f->d, "tmp");
    hgs3_creds_cache *cc;
    apr_thread_t *t[READERS];
    reader rd[READERS];
    apr_status_t trv;
    apr_pool_t *wp;
    int i, done;

    assert_int_equal(hgs3_creds_cache_create(&cc, f->pool), APR_SUCCESS);
    hgs3_test_write_file(f->path, ini(f->pool, 'A'), f->pool);
    apr_atomic_set32(&readers_done, 0);
    for (i = 0; i < READERS; ++i) {
        rd[i].cc = cc;
        rd[i].path = f->path;
        rd[i].bad = 0;
        assert_int_equal(apr_thread_create(&t[i], NULL, read_loop, &rd[i], f->pool), APR_SUCCESS);
    }
    apr_pool_create(&wp, NULL);
    for (i = 0; apr_atomic_read32(&readers_done) < READERS; ++i) {
        hgs3_test_write_file(tmp, ini(wp, (char)('A' + i % 26)), wp);
        assert_int_equal(apr_file_rename(tmp, f->path, wp), APR_SUCCESS);
        apr_pool_clear(wp);
    }
    apr_pool_destroy(wp);
    for (i = 0, done = 0; i < READERS; ++i) {
        apr_thread_join(&trv, t[i]);
        assert_int_equal(rd[i].bad, 0);
        done++;
    }
    assert_int_equal(done, READERS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reread_on_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reread_after_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_read_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    int rc;

    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
