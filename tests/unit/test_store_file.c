/* test_store_file.c: the local-directory store. A put, lookup, get and
 * remove round trip; a torn pair (an object without its sidecar, a size
 * that is not the recorded one) and a crashed writer's temp files are never
 * a hit; bad keys are refused; threads putting one key at once leave one
 * complete object, and readers meanwhile see whole objects only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_file_io.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "hgs3_err.h"
#include "hgs3_store_file.h"

#define KEY  "hgcache/ab/0123456789abcdef"
#define TYPE "application/mercurial-0.2"

typedef struct {
    apr_pool_t *p;
    const char *dir;
    hgs3_fstore *fs;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    char tmpl[] = "/tmp/hgs3-store-file-XXXXXX";
    apr_pool_create(&fx->p, NULL);
    assert_non_null(mkdtemp(tmpl));
    fx->dir = apr_pstrdup(fx->p, tmpl);
    assert_int_equal(hgs3_fstore_create(&fx->fs, fx->p, fx->dir), APR_SUCCESS);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char *cmd = apr_psprintf(fx->p, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    apr_pool_destroy(fx->p);
    free(fx);
    return 0;
}

static const char *path_of(fixture *fx, const char *key)
{
    return apr_pstrcat(fx->p, fx->dir, "/", key, NULL);
}

static void write_file(fixture *fx, const char *path, const char *text)
{
    apr_file_t *f;
    assert_int_equal(apr_file_open(&f, path,
                                   APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE,
                                   APR_FPROT_OS_DEFAULT, fx->p),
                     APR_SUCCESS);
    assert_int_equal(apr_file_write_full(f, text, strlen(text), NULL), APR_SUCCESS);
    apr_file_close(f);
}

static apr_status_t put_mem(fixture *fx, const char *key, const char *data)
{
    hgs3_store_body b = {data, strlen(data), NULL, 0, NULL};
    return hgs3_fstore_put(fx->fs, fx->p, key, &b, TYPE, NULL);
}

/* What a get collects. */
typedef struct {
    hgs3_store_object obj;
    int headers;
    char *buf;
    apr_size_t len, cap;
} sink;

static apr_status_t on_headers(void *baton, const hgs3_store_object *obj)
{
    sink *s = baton;
    s->obj = *obj;
    s->headers++;
    return APR_SUCCESS;
}

static apr_status_t on_data(void *baton, const char *data, apr_size_t len)
{
    sink *s = baton;
    if (s->len + len > s->cap) {
        s->cap = (s->len + len) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    return APR_SUCCESS;
}

static void test_round_trip(void **state)
{
    fixture *fx = *state;
    hgs3_store_object obj;
    apr_file_t *f = NULL;
    sink s = {0};
    char big[200000];
    const char *spool = path_of(fx, "spool");
    hgs3_store_body fb = {NULL, 0, spool, sizeof(big), "c0ffee"};
    struct stat st;
    char buf[16];
    apr_size_t n = sizeof(buf);

    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    big[1000] = 'y';
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), HGS3_ENOTFOUND);
    assert_int_equal(put_mem(fx, KEY, "hello bundle"), APR_SUCCESS);
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), APR_SUCCESS);
    assert_int_equal(obj.status, 200);
    assert_int_equal(obj.content_length, 12);
    assert_string_equal(obj.content_type, TYPE);
    assert_true(obj.last_modified > 0);
    assert_int_equal(stat(path_of(fx, "hgcache/ab"), &st), 0);
    assert_int_equal(st.st_mode & 0027, 0); /* 0750 at most */

    assert_int_equal(hgs3_fstore_open(&f, &obj, fx->fs, fx->p, KEY, NULL), APR_SUCCESS);
    assert_int_equal(apr_file_read_full(f, buf, 12, &n), APR_SUCCESS);
    assert_memory_equal(buf, "hello bundle", 12);
    apr_file_close(f);

    /* a file body is copied, and stays where it was */
    write_file(fx, spool, big);
    fb.size = (apr_off_t)strlen(big);
    assert_int_equal(hgs3_fstore_put(fx->fs, fx->p, KEY, &fb, TYPE, NULL), APR_SUCCESS);
    assert_int_equal(hgs3_fstore_get(fx->fs, fx->p, KEY, on_headers, on_data, &s, NULL),
                     APR_SUCCESS);
    assert_int_equal(s.headers, 1);
    assert_int_equal(s.obj.content_length, (apr_off_t)strlen(big));
    assert_string_equal(s.obj.etag, "c0ffee");
    assert_int_equal(s.len, strlen(big));
    assert_memory_equal(s.buf, big, s.len);
    assert_int_equal(stat(spool, &st), 0);
    free(s.buf);

    assert_int_equal(hgs3_fstore_remove(fx->fs, fx->p, KEY, NULL), APR_SUCCESS);
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), HGS3_ENOTFOUND);
    assert_int_not_equal(stat(apr_pstrcat(fx->p, path_of(fx, KEY), ".meta", NULL), &st), 0);
    assert_int_equal(hgs3_fstore_remove(fx->fs, fx->p, KEY, NULL), APR_SUCCESS);
}

static void test_torn_pair_not_a_hit(void **state)
{
    fixture *fx = *state;
    hgs3_store_object obj;
    apr_file_t *f = NULL;
    sink s = {0};
    const char *path = path_of(fx, KEY),
               *meta = apr_pstrcat(fx->p, path_of(fx, KEY), ".meta", NULL);
    const char *why = NULL;

    assert_int_equal(put_mem(fx, KEY, "0123456789"), APR_SUCCESS);
    /* the object replaced by a truncated one */
    write_file(fx, path, "01234");
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, &why), HGS3_EPROTO);
    assert_non_null(strstr(why, "sidecar says 10"));
    assert_int_equal(obj.content_length, -1);
    assert_int_equal(hgs3_fstore_open(&f, &obj, fx->fs, fx->p, KEY, NULL), HGS3_EPROTO);
    assert_null(f);
    assert_int_equal(hgs3_fstore_get(fx->fs, fx->p, KEY, on_headers, on_data, &s, NULL),
                     HGS3_EPROTO);
    assert_int_equal(s.headers, 0);
    /* a wrong size in the sidecar */
    write_file(fx, path, "0123456789");
    write_file(fx, meta, "hgs3cache-meta 1\nsize 11\ntype " TYPE "\n");
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), HGS3_EPROTO);
    /* a sidecar without a type or garbage */
    write_file(fx, meta, "hgs3cache-meta 1\nsize 10\n");
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), HGS3_EPROTO);
    write_file(fx, meta, "size 10\ntype " TYPE "\n");
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), HGS3_EPROTO);
    /* the object without its sidecar */
    assert_int_equal(apr_file_remove(meta, fx->p), APR_SUCCESS);
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), HGS3_EPROTO);
    assert_int_equal(hgs3_fstore_open(&f, &obj, fx->fs, fx->p, KEY, NULL), HGS3_EPROTO);
    /* the sidecar without its object: a miss */
    write_file(fx, meta, "hgs3cache-meta 1\nsize 10\ntype " TYPE "\n");
    assert_int_equal(apr_file_remove(path, fx->p), APR_SUCCESS);
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), HGS3_ENOTFOUND);
    /* the right pair again is a hit */
    write_file(fx, path, "0123456789");
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), APR_SUCCESS);
}

static void test_crashed_writer_not_served(void **state)
{
    fixture *fx = *state;
    hgs3_store_object obj;
    const char *path = path_of(fx, KEY);

    assert_int_equal(put_mem(fx, "hgcache/ab/other", "x"), APR_SUCCESS); /* makes the dir */
    /* a writer died after writing both temp files, before any rename */
    write_file(fx, apr_pstrcat(fx->p, path, ".tmp.4242.7f00.0011223344556677", NULL), "0123");
    write_file(fx, apr_pstrcat(fx->p, path, ".meta.tmp.4242.7f00.8899aabbccddeeff", NULL),
               "hgs3cache-meta 1\nsize 4\ntype " TYPE "\n");
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), HGS3_ENOTFOUND);
    /* ... or after renaming the sidecar */
    write_file(fx, apr_pstrcat(fx->p, path, ".meta", NULL),
               "hgs3cache-meta 1\nsize 4\ntype " TYPE "\n");
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), HGS3_ENOTFOUND);
    /* the temp names are not keys */
    assert_int_equal(
        hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY ".tmp.4242.7f00.0011223344556677", NULL),
        HGS3_EMALFORMED);
    /* the next put completes the key */
    assert_int_equal(put_mem(fx, KEY, "abcdef"), APR_SUCCESS);
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), APR_SUCCESS);
    assert_int_equal(obj.content_length, 6);
}

/* A spool file shorter than its announced size, or gone: nothing stored,
 * no temp file left. */
static void test_short_spool_not_stored(void **state)
{
    fixture *fx = *state;
    hgs3_store_object obj;
    const char *spool = path_of(fx, "spool");
    hgs3_store_body fb = {NULL, 0, spool, 100, NULL};
    apr_dir_t *d;
    apr_finfo_t fi;
    int files = 0;

    write_file(fx, spool, "only 17 bytes....");
    assert_int_equal(hgs3_fstore_put(fx->fs, fx->p, KEY, &fb, TYPE, NULL), HGS3_EMALFORMED);
    fb.path = path_of(fx, "gone");
    assert_int_equal(hgs3_fstore_put(fx->fs, fx->p, KEY, &fb, TYPE, NULL), HGS3_EMALFORMED);
    assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, KEY, NULL), HGS3_ENOTFOUND);
    assert_int_equal(apr_dir_open(&d, path_of(fx, "hgcache/ab"), fx->p), APR_SUCCESS);
    while (apr_dir_read(&fi, APR_FINFO_NAME, d) == APR_SUCCESS) {
        files += fi.name[0] != '.';
    }
    apr_dir_close(d);
    assert_int_equal(files, 0);
}

static void test_bad_keys_refused(void **state)
{
    fixture *fx = *state;
    static const char *const bad[] = {
        "",   "/etc/passwd", "..",       ".",        "a/../b",        "../x", "a/./b",    "a//b",
        "a/", "x.meta",      "a/b.meta", "a.meta/b", "a/b.tmp.1.2.3", "a\nb", "a\\..\\b", NULL};
    hgs3_store_object obj;
    const char *path = NULL;
    int i;

    for (i = 0; bad[i]; ++i) {
        assert_int_equal(hgs3_fstore_path(&path, fx->fs, fx->p, bad[i]), HGS3_EMALFORMED);
        assert_null(path);
        assert_int_equal(put_mem(fx, bad[i], "data"), HGS3_EMALFORMED);
        assert_int_equal(hgs3_fstore_lookup(&obj, fx->fs, fx->p, bad[i], NULL), HGS3_EMALFORMED);
        assert_int_equal(hgs3_fstore_remove(fx->fs, fx->p, bad[i], NULL), HGS3_EMALFORMED);
    }
    assert_int_equal(hgs3_fstore_path(&path, fx->fs, fx->p, "hgcache/a.b/c-d_e"), APR_SUCCESS);
    assert_string_equal(path, apr_pstrcat(fx->p, fx->dir, "/hgcache/a.b/c-d_e", NULL));
    assert_int_equal(hgs3_fstore_create(&fx->fs, fx->p, "relative"), HGS3_ECONFIG);
    assert_null(fx->fs);
}

/* The same store through the interface of hgs3_store.h. */
static void test_through_the_interface(void **state)
{
    fixture *fx = *state;
    hgs3_store *st = NULL;
    hgs3_store_conn *c = NULL;
    hgs3_store_object obj;
    hgs3_store_body b = {"0123456789", 10, NULL, 0, NULL};
    apr_file_t *f = NULL;
    const char *url = "x";
    sink s = {0};

    assert_int_equal(hgs3_store_file_create(&st, fx->p, fx->dir), APR_SUCCESS);
    assert_string_equal(hgs3_store_impl_of(st)->name, "file");
    assert_string_equal(st->id, apr_pstrcat(fx->p, "file:", fx->dir, NULL));
    assert_int_equal(hgs3_store_connect(&c, st, fx->p, HGS3_STORE_LOOKUP), APR_SUCCESS);
    assert_int_equal(hgs3_store_lookup(&obj, c, fx->p, KEY), HGS3_ENOTFOUND);
    assert_non_null(strstr(hgs3_store_error_text(fx->p, c), "No such file"));
    assert_int_equal(hgs3_store_put(c, fx->p, KEY, &b, TYPE), APR_SUCCESS);
    assert_int_equal(hgs3_store_lookup(&obj, c, fx->p, KEY), APR_SUCCESS);
    assert_int_equal(hgs3_store_check_found(&obj), APR_SUCCESS);
    assert_int_equal(hgs3_store_get(c, fx->p, KEY, on_headers, on_data, &s), APR_SUCCESS);
    assert_int_equal(s.len, 10);
    free(s.buf);
    assert_int_equal(hgs3_store_open_local(&f, &obj, st, fx->p, KEY), APR_SUCCESS);
    assert_non_null(f);
    assert_int_equal(obj.content_length, 10);
    apr_file_close(f);
    /* no client URL: hits are never redirected */
    assert_int_equal(hgs3_store_client_url(&url, st, fx->p, KEY, 60, apr_time_now()), APR_ENOTIMPL);
    assert_null(url);
    /* an object that is not a stored bundle is never handed out */
    assert_int_equal(hgs3_fstore_put(fx->fs, fx->p, KEY, &b, "text/html", NULL), APR_SUCCESS);
    assert_int_equal(hgs3_store_open_local(&f, &obj, st, fx->p, KEY), HGS3_EPROTO);
    assert_null(f);
    memset(&s, 0, sizeof(s));
    assert_int_equal(hgs3_store_get(c, fx->p, KEY, on_headers, on_data, &s), HGS3_EPROTO);
    assert_int_equal(s.headers, 0);
    assert_int_equal(hgs3_store_remove(c, fx->p, KEY), APR_SUCCESS);
    assert_int_equal(hgs3_store_lookup(&obj, c, fx->p, KEY), HGS3_ENOTFOUND);
}

/* ---- concurrency ---------------------------------------------------------- */

#define WRITERS 8
#define ROUNDS  20
#define OBJSIZE (256 * 1024 + 17)

typedef struct {
    fixture *fx;
    int id;
    volatile int *stop;
    int bad, seen;
} worker;

static void *APR_THREAD_FUNC writer(apr_thread_t *t, void *arg)
{
    worker *w = arg;
    apr_pool_t *p;
    char *data = malloc(OBJSIZE);
    int i;

    apr_pool_create(&p, NULL);
    memset(data, 'A' + w->id, OBJSIZE);
    for (i = 0; i < ROUNDS; ++i) {
        hgs3_store_body b = {data, OBJSIZE, NULL, 0, NULL};
        w->bad += hgs3_fstore_put(w->fx->fs, p, KEY, &b, TYPE, NULL) != APR_SUCCESS;
        apr_pool_clear(p);
    }
    free(data);
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* A get that succeeds has one writer's bytes, all of them. */
static int whole(const sink *s)
{
    apr_size_t i;
    if (s->len != OBJSIZE || s->obj.content_length != OBJSIZE) {
        return 0;
    }
    for (i = 1; i < s->len; ++i) {
        if (s->buf[i] != s->buf[0]) {
            return 0;
        }
    }
    return s->buf[0] >= 'A' && s->buf[0] < 'A' + WRITERS;
}

static void *APR_THREAD_FUNC reader(apr_thread_t *t, void *arg)
{
    worker *w = arg;
    apr_pool_t *p;

    apr_pool_create(&p, NULL);
    while (!*w->stop) {
        sink s = {0};
        apr_status_t rv = hgs3_fstore_get(w->fx->fs, p, KEY, on_headers, on_data, &s, NULL);
        if (rv == APR_SUCCESS) {
            w->seen++;
            w->bad += !whole(&s);
        } else {
            w->bad += rv != HGS3_ENOTFOUND;
        }
        free(s.buf);
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_concurrent_puts_one_whole_object(void **state)
{
    fixture *fx = *state;
    apr_thread_t *th[WRITERS + 1];
    worker w[WRITERS + 1];
    volatile int stop = 0;
    apr_status_t trv;
    sink s = {0};
    apr_dir_t *d;
    apr_finfo_t fi;
    int i, files = 0;

    for (i = 0; i <= WRITERS; ++i) {
        w[i] = (worker){fx, i, &stop, 0, 0};
        assert_int_equal(
            apr_thread_create(&th[i], NULL, i < WRITERS ? writer : reader, &w[i], fx->p),
            APR_SUCCESS);
    }
    for (i = 0; i < WRITERS; ++i) {
        apr_thread_join(&trv, th[i]);
        assert_int_equal(w[i].bad, 0);
    }
    stop = 1;
    apr_thread_join(&trv, th[WRITERS]);
    assert_int_equal(w[WRITERS].bad, 0);
    assert_int_equal(hgs3_fstore_get(fx->fs, fx->p, KEY, on_headers, on_data, &s, NULL),
                     APR_SUCCESS);
    assert_true(whole(&s));
    free(s.buf);
    /* no temp file is left: the directory holds the object and its sidecar */
    assert_int_equal(apr_dir_open(&d, path_of(fx, "hgcache/ab"), fx->p), APR_SUCCESS);
    while (apr_dir_read(&fi, APR_FINFO_NAME, d) == APR_SUCCESS) {
        files += fi.name[0] != '.';
    }
    apr_dir_close(d);
    assert_int_equal(files, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_pair_not_a_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crashed_writer_not_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_keys_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_spool_not_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_through_the_interface, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_puts_one_whole_object, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
