/* test_conffiles.c: HgS3CacheConfigFiles' fingerprint (hgs3_conffiles) and
 * its fold into the repository fingerprint, on a real temporary tree:
 *
 *   base/hgweb.config            a plain entry
 *   base/hgrc.d/{a,b}.rc         matched by base/hgrc.d/ *.rc
 *   base/hgrc.d/x.txt, .h.rc     not matched
 *   base/repo/.hg/requires       a repository */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <pthread.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_conffiles.h"
#include "hgs3_repo.h"
#include "hgs3_test_util.h"

typedef hgs3_test_dir fx;

/* The directory: hgweb.config, hgrc.d/ with two .rc files and two that do
 * not match, and a repository. */
static int setup(void **state)
{
    fx *f;

    if (hgs3_test_dir_setup(state) != 0) {
        return -1;
    }
    f = *state;
    mkdir(hgs3_test_path(f, "hgrc.d"), 0755);
    mkdir(hgs3_test_path(f, "repo"), 0755);
    mkdir(hgs3_test_path(f, "repo/.hg"), 0755);
    hgs3_test_write(f, "repo/.hg/requires", "store\n");
    hgs3_test_write(f, "hgweb.config", "[web]\n");
    hgs3_test_write(f, "hgrc.d/a.rc", "[ui]\n");
    hgs3_test_write(f, "hgrc.d/b.rc", "[ui]\n");
    hgs3_test_write(f, "hgrc.d/x.txt", "not matched\n");
    hgs3_test_write(f, "hgrc.d/.h.rc", "hidden\n");
    return 0;
}

static hgs3_conffiles *make(fx *f, const char *a, const char *b)
{
    const char *paths[2];
    hgs3_conffiles *cf = NULL;
    const char *bad = NULL;
    int n = 0;
    if (a) {
        paths[n++] = hgs3_test_path(f, a);
    }
    if (b) {
        paths[n++] = hgs3_test_path(f, b);
    }
    assert_int_equal(hgs3_conffiles_create(&cf, f->p, n, paths, &bad), APR_SUCCESS);
    assert_null(bad);
    return cf;
}

typedef struct blob {
    const unsigned char *b;
    apr_size_t len;
} blob;

static blob take(fx *f, hgs3_conffiles *cf)
{
    blob r;
    assert_int_equal(
        hgs3_conffiles_fingerprint(cf, f->p, (const unsigned char *)"R", 1, &r.b, &r.len),
        APR_SUCCESS);
    assert_true(r.len > 1 && r.b[0] == 'R');
    return r;
}

static int same(blob a, blob b)
{
    return a.len == b.len && memcmp(a.b, b.b, a.len) == 0;
}

static void test_create_validation(void **state)
{
    fx *f = *state;
    static const char *const bad[] = {
        "relative/hgweb.config", "", "/etc/*/hgrc", "/etc/hgrc.d/", "/etc/[ab]/x.rc", "/",
    };
    static const char *const good[] = {"/etc/mercurial/hgrc", "/etc/mercurial/hgrc.d/*.rc",
                                       "/srv/hg/missing.config", "/*.rc"};
    hgs3_conffiles *cf = (hgs3_conffiles *)1;
    const char *why = NULL;
    apr_size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        print_message("bad '%s'\n", bad[i]);
        assert_int_equal(hgs3_conffiles_create(&cf, f->p, 1, &bad[i], &why), HGS3_ECONFIG);
        assert_null(cf);
        assert_string_equal(why, bad[i]);
    }
    assert_int_equal(hgs3_conffiles_create(&cf, f->p, 4, good, &why), APR_SUCCESS);
    assert_non_null(cf);
    assert_null(why);
    /* the empty set */
    assert_int_equal(hgs3_conffiles_create(&cf, f->p, 0, NULL, &why), APR_SUCCESS);
    assert_non_null(cf);
}

/* A plain entry: absent, appearing, edited, replaced, removed. */
static void test_plain_file(void **state)
{
    fx *f = *state;
    hgs3_conffiles *cf = make(f, "hgweb.config", "later.config");
    blob a = take(f, cf), b;

    assert_true(same(a, take(f, cf)));
    hgs3_test_write(f, "hgweb.config", "[web]\ndeny_read = alice\n");
    b = take(f, cf);
    assert_false(same(a, b));
    a = b;
    hgs3_test_write(f, "later.config", "");
    b = take(f, cf);
    assert_false(same(a, b));
    a = b;
    hgs3_test_write(f, "new.config", "[web]\ndeny_read = alice\n");
    assert_int_equal(rename(hgs3_test_path(f, "new.config"), hgs3_test_path(f, "hgweb.config")), 0);
    b = take(f, cf);
    assert_false(same(a, b));
    a = b;
    assert_int_equal(unlink(hgs3_test_path(f, "hgweb.config")), 0);
    b = take(f, cf);
    assert_false(same(a, b));
}

/* A wildcard entry: its directory is read once while it is unchanged; a
 * file added later is seen, and so is every later edit of it. */
static void test_wildcard(void **state)
{
    fx *f = *state;
    hgs3_conffiles *cf = make(f, "hgrc.d/*.rc", NULL);
    unsigned long s0 = hgs3_conffiles_scans();
    blob a = take(f, cf), b;

    assert_true(hgs3_conffiles_scans() == s0 + 1);
    assert_true(same(a, take(f, cf)));
    assert_true(hgs3_conffiles_scans() == s0 + 1);
    /* both matches, and only they, are named in the blob */
    assert_non_null(memmem(a.b, a.len, "a.rc", 4));
    assert_non_null(memmem(a.b, a.len, "b.rc", 4));
    assert_null(memmem(a.b, a.len, "x.txt", 5));
    assert_null(memmem(a.b, a.len, ".h.rc", 5));

    /* an edit of a matched file: no new scan needed to see it */
    hgs3_test_write(f, "hgrc.d/b.rc", "[web]\ndeny_read = alice\n");
    b = take(f, cf);
    assert_false(same(a, b));
    a = b;

    /* a file added to the directory, then edited */
    hgs3_test_write(f, "hgrc.d/c.rc", "[web]\n");
    b = take(f, cf);
    assert_false(same(a, b));
    assert_true(hgs3_conffiles_scans() == s0 + 2);
    assert_non_null(memmem(b.b, b.len, "c.rc", 4));
    a = b;
    hgs3_test_write(f, "hgrc.d/c.rc", "[web]\ndeny_read = *\n");
    b = take(f, cf);
    assert_false(same(a, b));
    a = b;

    /* removed */
    assert_int_equal(unlink(hgs3_test_path(f, "hgrc.d/a.rc")), 0);
    b = take(f, cf);
    assert_false(same(a, b));
    assert_null(memmem(b.b, b.len, "a.rc", 4));
    a = b;

    /* the directory itself gone, then back */
    assert_int_equal(system(apr_pstrcat(f->p, "rm -rf '", hgs3_test_path(f, "hgrc.d"), "'", NULL)),
                     0);
    b = take(f, cf);
    assert_false(same(a, b));
    a = b;
    mkdir(hgs3_test_path(f, "hgrc.d"), 0755);
    b = take(f, cf);
    assert_false(same(a, b));
}

/* An unreadable path is an error, never an unchanged fingerprint. */
static void test_stat_error(void **state)
{
    fx *f = *state;
    hgs3_conffiles *cf = make(f, "hgweb.config", NULL);
    const unsigned char *out = (const unsigned char *)"x";
    apr_size_t len = 1;
    char *longpath = apr_palloc(f->p, 5000);
    const char *paths[1];
    const char *bad = NULL;

    memset(longpath, 'x', 4999);
    longpath[0] = '/';
    longpath[4999] = '\0';
    paths[0] = longpath;
    assert_int_equal(hgs3_conffiles_create(&cf, f->p, 1, paths, &bad), APR_SUCCESS);
    assert_int_not_equal(hgs3_conffiles_fingerprint(cf, f->p, NULL, 0, &out, &len), APR_SUCCESS);
    assert_null(out);
    assert_int_equal(len, 0);
}

/* Folded into the repository's fingerprint: a config change is a repository
 * fingerprint change; without a set the blob is the repository's alone. */
static void test_repo_fold(void **state)
{
    fx *f = *state;
    hgs3_conffiles *cf = make(f, "hgweb.config", "hgrc.d/*.rc");
    hgs3_repo *repo = NULL;
    blob plain, a, b;

    assert_int_equal(hgs3_repo_open(&repo, f->p, hgs3_test_path(f, "repo"), NULL), APR_SUCCESS);
    assert_int_equal(hgs3_repo_fingerprint(repo, f->p), APR_SUCCESS);
    plain.b = apr_pmemdup(f->p, repo->fp, repo->fp_len);
    plain.len = repo->fp_len;
    assert_int_equal(hgs3_repo_fingerprint_ex(repo, f->p, NULL), APR_SUCCESS);
    assert_true(repo->fp_len == plain.len && !memcmp(repo->fp, plain.b, plain.len));

    assert_int_equal(hgs3_repo_fingerprint_ex(repo, f->p, cf), APR_SUCCESS);
    a.b = repo->fp;
    a.len = repo->fp_len;
    assert_true(a.len > plain.len && !memcmp(a.b, plain.b, plain.len));
    hgs3_test_write(f, "hgweb.config", "[web]\ndeny_read = alice\n");
    assert_int_equal(hgs3_repo_fingerprint_ex(repo, f->p, cf), APR_SUCCESS);
    b.b = repo->fp;
    b.len = repo->fp_len;
    assert_false(same(a, b));
    assert_true(!memcmp(b.b, plain.b, plain.len));
    /* no repository: still an error with a config set */
    assert_int_equal(unlink(hgs3_test_path(f, "repo/.hg/requires")), 0);
    assert_int_equal(hgs3_repo_fingerprint_ex(repo, f->p, cf), APR_ENOENT);
    assert_null(repo->fp);
}

/* Threads fingerprinting one set while its directory changes: every call
 * succeeds, and once the changes stop all agree with a fresh set. */
typedef struct th_arg {
    fx *f;
    hgs3_conffiles *cf;
    int fails;
} th_arg;

static void *th_run(void *data)
{
    th_arg *t = data;
    apr_pool_t *p;
    int i;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    for (i = 0; i < 300; ++i) {
        const unsigned char *out;
        apr_size_t len;
        if (hgs3_conffiles_fingerprint(t->cf, p, NULL, 0, &out, &len) != APR_SUCCESS) {
            ++t->fails;
        }
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

static void test_threads(void **state)
{
    fx *f = *state;
    hgs3_conffiles *cf = make(f, "hgrc.d/*.rc", NULL);
    pthread_t th[4];
    th_arg args[4];
    blob a, b;
    int i;

    for (i = 0; i < 4; ++i) {
        args[i].f = f;
        args[i].cf = cf;
        args[i].fails = 0;
        assert_int_equal(pthread_create(&th[i], NULL, th_run, &args[i]), 0);
    }
    for (i = 0; i < 100; ++i) {
        const char *name = apr_psprintf(f->p, "hgrc.d/t%d.rc", i % 7);
        if (i % 3 == 2) {
            unlink(hgs3_test_path(f, name));
        } else {
            hgs3_test_write(f, name, "[ui]\n");
        }
    }
    for (i = 0; i < 4; ++i) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].fails, 0);
    }
    a = take(f, cf);
    b = take(f, make(f, "hgrc.d/*.rc", NULL));
    assert_true(same(a, b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_validation, setup, hgs3_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_plain_file, setup, hgs3_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_wildcard, setup, hgs3_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_stat_error, setup, hgs3_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_repo_fold, setup, hgs3_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, hgs3_test_dir_teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
