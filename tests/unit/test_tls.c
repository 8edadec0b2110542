/* test_tls.c: the checks of HgS3CacheCAFile and HgS3CacheCAPath accept a PEM
 * bundle and a readable directory, and refuse a missing, empty or
 * certificate-less file and a missing directory, naming the path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_file_io.h>

#include "hgs3_err.h"
#include "hgs3_tls.h"

/* A self-signed P-256 CA certificate (valid until 2126). */
static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIBjzCCATWgAwIBAgIUK33/ATxmvVcAVCdjuPZsj6NpUV4wCgYIKoZIzj0EAwIw\n"
                             "HDEaMBgGA1UEAwwRaGdzMyB1bml0IHRlc3QgQ0EwIBcNMjYxMjA2MTAyMTEwWhgP\n"
                             "MjEyNjExMTIxMDIxMTBaMBwxGjAYBgNVBAMMEWhnczMgdW5pdCB0ZXN0IENBMFkw\n"
                             "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE25yNDzqSiDWb6V25zyYNjqrZEyHe7XM+\n"
                             "rXUeFvkJtXtqJGHN6SHbkc1RX4uBmU964rl3De3YsY1e9tJtHp60/qNTMFEwHQYD\n"
                             "VR0OBBYEFErZjll+kea9VEM/qh4LpnXZE4Z6MB8GA1UdIwQYMBaAFErZjll+kea9\n"
                             "VEM/qh4LpnXZE4Z6MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIg\n"
                             "ZcLXdqF8NSTxWS7DGc+Le4GYHAUYgVgRqkUdGucYGHMCIQCvHm6p6Ca+jbQGo/Y7\n"
                             "yIY1xM7bAXextowJ5ejQ750ntA==\n"
                             "-----END CERTIFICATE-----\n";

typedef struct fixture {
    apr_pool_t *pool;
    const char *dir;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    char tmpl[] = "/tmp/hgs3-test-tls-XXXXXX";
    apr_pool_create(&fx->pool, NULL);
    assert_non_null(mkdtemp(tmpl));
    fx->dir = apr_pstrdup(fx->pool, tmpl);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    const char *names[] = {"ca.pem", "empty.pem", "junk.pem", NULL};
    int i;
    for (i = 0; names[i]; ++i) {
        apr_file_remove(apr_pstrcat(fx->pool, fx->dir, "/", names[i], NULL), fx->pool);
    }
    apr_dir_remove(fx->dir, fx->pool);
    apr_pool_destroy(fx->pool);
    free(fx);
    return 0;
}

static const char *write_file(fixture *fx, const char *name, const char *text)
{
    const char *path = apr_pstrcat(fx->pool, fx->dir, "/", name, NULL);
    apr_file_t *f;
    apr_size_t n = strlen(text);
    assert_int_equal(
        apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE, APR_OS_DEFAULT, fx->pool),
        APR_SUCCESS);
    assert_int_equal(apr_file_write_full(f, text, n, NULL), APR_SUCCESS);
    apr_file_close(f);
    return path;
}

static void assert_refused(apr_status_t rv, const char *msg, const char *path, const char *why)
{
    assert_int_not_equal(rv, APR_SUCCESS);
    assert_non_null(msg);
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, why));
}

static void test_ca_file(void **state)
{
    fixture *fx = *state;
    const char *msg, *path;
    apr_status_t rv;

    path = write_file(fx, "ca.pem", ca_pem);
    assert_int_equal(hgs3_tls_check_ca_file(fx->pool, path, &msg), APR_SUCCESS);
    assert_null(msg);

    path = write_file(fx, "empty.pem", "");
    rv = hgs3_tls_check_ca_file(fx->pool, path, &msg);
    assert_refused(rv, msg, path, "is empty");
    path = write_file(fx, "junk.pem",
                      "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
                      "-----END CERTIFICATE-----\n");
    rv = hgs3_tls_check_ca_file(fx->pool, path, &msg);
    assert_refused(rv, msg, path, "no PEM certificate");
    path = apr_pstrcat(fx->pool, fx->dir, "/missing.pem", NULL);
    rv = hgs3_tls_check_ca_file(fx->pool, path, &msg);
    assert_refused(rv, msg, path, "cannot be read");
    rv = hgs3_tls_check_ca_file(fx->pool, fx->dir, &msg);
    assert_refused(rv, msg, fx->dir, "not a regular file");
}

static void test_ca_path(void **state)
{
    fixture *fx = *state;
    const char *msg, *path;
    apr_status_t rv;

    assert_int_equal(hgs3_tls_check_ca_path(fx->pool, fx->dir, &msg), APR_SUCCESS);
    path = apr_pstrcat(fx->pool, fx->dir, "/missing", NULL);
    rv = hgs3_tls_check_ca_path(fx->pool, path, &msg);
    assert_refused(rv, msg, path, "not a directory");
    path = write_file(fx, "ca.pem", ca_pem);
    rv = hgs3_tls_check_ca_path(fx->pool, path, &msg);
    assert_refused(rv, msg, path, "not a directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ca_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_path, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
