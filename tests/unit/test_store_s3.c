/* test_store_s3.c: the store interface's S3 backend, against a scripted
 * server on loopback (mock_s3.h): how each operation maps onto S3 requests
 * and answers, and the checks every backend's answers pass. (Against real
 * stores: the integration tests.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_file_io.h>

#include "hgs3_err.h"
#include "hgs3_store.h"
#include "hgs3_store_s3.h"
#include "mock_s3.h"

static apr_pool_t *pool;

#define ERR(code) "<?xml version=\"1.0\"?><Error><Code>" code "</Code><Message>m</Message></Error>"
#define LASTMOD   "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
#define BUNDLE    "Content-Type: application/mercurial-0.2\r\n"

static hgs3_store_s3_settings settings(apr_pool_t *p, int port)
{
    hgs3_store_s3_settings set;
    memset(&set, 0, sizeof(set));
    set.s3.endpoint = apr_psprintf(p, "http://127.0.0.1:%d", port);
    set.s3.addressing = HGS3_S3_PATH;
    set.s3.bucket = "bkt";
    set.s3.region = "us-east-1";
    set.s3.creds.access_key = "AKIAIOSFODNN7EXAMPLE";
    set.s3.creds.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    set.s3.connect_timeout_ms = 2000;
    set.s3.timeout_ms = 5000;
    set.s3.multipart_threshold = HGS3_S3_MIN_PART_SIZE;
    return set;
}

static hgs3_store_conn *connect_to(mock *m, apr_pool_t *p, int purpose)
{
    hgs3_store_s3_settings set = settings(p, m->port);
    hgs3_store *st = NULL;
    hgs3_store_conn *c = NULL;

    assert_int_equal(hgs3_store_s3_create(&st, p, &set), APR_SUCCESS);
    assert_int_equal(hgs3_store_connect(&c, st, p, purpose), APR_SUCCESS);
    return c;
}

/* lookup = HEAD + its checks, a 403 explained by a one-byte GET. */
static void test_lookup(void **state)
{
    static const scripted script[] = {
        {200, LASTMOD BUNDLE, "body"},
        {404, NULL, ERR("NoSuchKey")},
        {200, BUNDLE, "body"},     /* no Last-Modified: not a complete answer */
        {200, LASTMOD BUNDLE, ""}, /* empty */
        {403, NULL, ""},           /* then AccessDenied: a missing key */
        {403, NULL, ERR("AccessDenied")},
        {403, NULL, ""}, /* then a refused signature */
        {403, NULL, ERR("SignatureDoesNotMatch")},
        {403, NULL, ""}, /* then readable: a miss, looked up again */
        {206, "Content-Range: bytes 0-0/10\r\n", "x"},
    };
    hgs3_store_object obj;
    hgs3_store_conn *c;
    apr_pool_t *p;
    mock *m;
    (void)state;

    m = mock_start(pool, script, 10);
    apr_pool_create(&p, pool);
    c = connect_to(m, p, HGS3_STORE_LOOKUP);
    assert_int_equal(hgs3_store_lookup(&obj, c, p, "d/k"), APR_SUCCESS);
    assert_int_equal(obj.status, 200);
    assert_int_equal(obj.content_length, 4);
    assert_string_equal(obj.content_type, "application/mercurial-0.2");
    assert_true(obj.last_modified > 0);
    assert_int_equal(hgs3_store_lookup(&obj, c, p, "d/k"), HGS3_ENOTFOUND);
    assert_int_equal(hgs3_store_lookup(&obj, c, p, "d/k"), HGS3_EPROTO);
    assert_int_equal(hgs3_store_lookup(&obj, c, p, "d/k"), HGS3_EPROTO);
    assert_int_equal(hgs3_store_lookup(&obj, c, p, "d/k"), HGS3_ENOTFOUND);
    assert_int_equal(hgs3_store_lookup(&obj, c, p, "d/k"), HGS3_EAUTH);
    assert_non_null(strstr(hgs3_store_error_text(p, c), "SignatureDoesNotMatch"));
    assert_int_equal(hgs3_store_lookup(&obj, c, p, "d/k"), HGS3_ENOTFOUND);
    assert_int_equal(m->nrequests, 10);
    assert_string_equal(m->requests[0], "HEAD /bkt/d/k");
    assert_string_equal(m->requests[5], "GET /bkt/d/k");
    apr_pool_destroy(p);
    mock_stop(m);
}

typedef struct sink {
    int headers;
    hgs3_store_object obj;
    apr_size_t bytes;
} sink;

static apr_status_t sink_headers(void *baton, const hgs3_store_object *obj)
{
    sink *s = baton;
    s->headers++;
    s->obj = *obj;
    return APR_SUCCESS;
}

static apr_status_t sink_data(void *baton, const char *data, apr_size_t len)
{
    sink *s = baton;
    (void)data;
    s->bytes += len;
    return APR_SUCCESS;
}

/* get reaches the caller only with a whole stored bundle. */
static void test_get_checked(void **state)
{
    static const scripted script[] = {
        {200, "Content-Type: text/plain\r\n", "body"},
        {200, BUNDLE, ""},
        {404, NULL, ERR("NoSuchKey")},
        {200, BUNDLE, "body"},
    };
    hgs3_store_conn *c;
    apr_pool_t *p;
    sink s;
    mock *m;
    (void)state;

    m = mock_start(pool, script, 4);
    apr_pool_create(&p, pool);
    c = connect_to(m, p, HGS3_STORE_STREAM);
    memset(&s, 0, sizeof(s));
    assert_int_equal(hgs3_store_get(c, p, "k", sink_headers, sink_data, &s), HGS3_EPROTO);
    assert_int_equal(hgs3_store_get(c, p, "k", sink_headers, sink_data, &s), HGS3_EPROTO);
    assert_int_equal(hgs3_store_get(c, p, "k", sink_headers, sink_data, &s), HGS3_ENOTFOUND);
    assert_int_equal(s.headers, 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(hgs3_store_get(c, p, "k", sink_headers, sink_data, &s), APR_SUCCESS);
    assert_int_equal(s.headers, 1);
    assert_int_equal(s.obj.content_length, 4);
    assert_int_equal(s.bytes, 4);
    apr_pool_destroy(p);
    mock_stop(m);
}

static const char *temp_file(apr_pool_t *p, apr_off_t size)
{
    char *path = apr_pstrdup(p, "/tmp/test_store_s3.XXXXXX");
    apr_file_t *f;
    apr_off_t at = size - 1;

    assert_int_equal(
        apr_file_mktemp(&f, path,
                        APR_FOPEN_CREATE | APR_FOPEN_READ | APR_FOPEN_WRITE | APR_FOPEN_EXCL, p),
        APR_SUCCESS);
    assert_int_equal(apr_file_seek(f, APR_SET, &at), APR_SUCCESS);
    assert_int_equal(apr_file_putc('x', f), APR_SUCCESS);
    apr_file_close(f);
    return path;
}

/* put: memory and a small file in one PutObject, a file above the
 * threshold in parts; remove: DeleteObject. */
static void test_put_remove(void **state)
{
    static const scripted script[] = {
        {200, "ETag: \"a\"\r\n", ""},
        {200, "ETag: \"b\"\r\n", ""},
        {200, NULL,
         "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>"},
        {200, "ETag: \"p1\"\r\n", ""},
        {200, "ETag: \"p2\"\r\n", ""},
        {200, NULL,
         "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag></CompleteMultipartUploadResult>"},
        {204, NULL, ""},
    };
    hgs3_store_body mem = {"data", 4, NULL, 0, NULL};
    hgs3_store_body small, big;
    hgs3_store_conn *c;
    apr_pool_t *p;
    mock *m;
    (void)state;

    m = mock_start(pool, script, 7);
    apr_pool_create(&p, pool);
    memset(&small, 0, sizeof(small));
    small.path = temp_file(p, 100);
    small.size = 100;
    memset(&big, 0, sizeof(big));
    big.size = HGS3_S3_MIN_PART_SIZE + 1;
    big.path = temp_file(p, big.size);
    c = connect_to(m, p, HGS3_STORE_UPLOAD);
    assert_string_equal(hgs3_store_error_text(p, c), "no client");
    assert_int_equal(hgs3_store_put(c, p, "d/k", &mem, "application/mercurial-0.2"), APR_SUCCESS);
    assert_int_equal(hgs3_store_put(c, p, "d/k", &small, "application/mercurial-0.2"), APR_SUCCESS);
    assert_int_equal(hgs3_store_put(c, p, "d/k", &big, "application/mercurial-0.2"), APR_SUCCESS);
    assert_int_equal(hgs3_store_remove(c, p, "d/k"), APR_SUCCESS);
    assert_int_equal(m->nrequests, 7);
    assert_string_equal(m->requests[0], "PUT /bkt/d/k");
    assert_string_equal(m->requests[1], "PUT /bkt/d/k");
    assert_string_equal(m->requests[2], "POST /bkt/d/k?uploads=");
    assert_string_equal(m->requests[5], "POST /bkt/d/k?uploadId=U1");
    assert_string_equal(m->requests[6], "DELETE /bkt/d/k");
    apr_file_remove(small.path, p);
    apr_file_remove(big.path, p);
    apr_pool_destroy(p);
    mock_stop(m);
}

/* client_url: presigned on the public endpoint, with the store's
 * credentials; the store's id names the endpoint httpd uses. */
static void test_client_url(void **state)
{
    hgs3_store_s3_settings set = settings(pool, 9);
    hgs3_s3_config pub = set.s3;
    hgs3_store *st = NULL;
    const char *url = NULL, *want = NULL;
    apr_time_t now = apr_time_from_sec(1700000000);
    (void)state;

    set.public_endpoint = "https://cdn.example.org";
    assert_int_equal(hgs3_store_s3_create(&st, pool, &set), APR_SUCCESS);
    assert_string_equal(hgs3_store_impl_of(st)->name, "s3");
    assert_string_equal(st->id, "http://127.0.0.1:9\nbkt");
    assert_string_equal(hgs3_store_object_id(pool, st, "d/k"), "http://127.0.0.1:9\nbkt\nd/k");
    assert_int_equal(hgs3_store_client_url(&url, st, pool, "d/k", 300, now), APR_SUCCESS);
    pub.endpoint = "https://cdn.example.org";
    pub.upload_tries = 1;
    assert_int_equal(hgs3_s3_presign(&want, pool, &pub, "GET", "d/k", 300, NULL, now), APR_SUCCESS);
    assert_string_equal(url, want);
    assert_int_equal(strncmp(url, "https://cdn.example.org/bkt/d/k?", 32), 0);
    assert_int_equal(hgs3_store_open_local(&(apr_file_t *){NULL}, NULL, st, pool, "d/k"),
                     APR_ENOTIMPL);
}

/* Without static credentials, a handle needs the file's: none, no handle. */
static void test_no_credentials(void **state)
{
    hgs3_store_s3_settings set = settings(pool, 9);
    hgs3_store *st = NULL;
    hgs3_store_conn *c = (hgs3_store_conn *)&set;
    (void)state;

    memset(&set.s3.creds, 0, sizeof(set.s3.creds));
    set.creds_file = "/nonexistent/credentials";
    assert_int_equal(hgs3_store_s3_create(&st, pool, &set), APR_SUCCESS);
    assert_int_not_equal(hgs3_store_connect(&c, st, pool, HGS3_STORE_LOOKUP), APR_SUCCESS);
    assert_null(c);
}

/* The checks every backend's answers pass. */
static void test_checks(void **state)
{
    hgs3_store_object ok = {200, 10, "application/mercurial-0.1", NULL, 1};
    hgs3_store_object o = ok;
    (void)state;

    assert_int_equal(hgs3_store_check_found(&ok), APR_SUCCESS);
    assert_int_equal(hgs3_store_check_whole(&ok), APR_SUCCESS);
    assert_int_equal(hgs3_store_check_same(&ok, NULL), APR_SUCCESS);
    assert_int_equal(hgs3_store_check_same(&ok, &o), APR_SUCCESS);
    o.last_modified = 0;
    assert_int_equal(hgs3_store_check_found(&o), HGS3_EPROTO);
    o = ok;
    o.content_length = 0;
    assert_int_equal(hgs3_store_check_found(&o), HGS3_EPROTO);
    assert_int_equal(hgs3_store_check_whole(&o), HGS3_EPROTO);
    assert_int_equal(hgs3_store_check_same(&ok, &o), HGS3_EPROTO);
    o = ok;
    o.status = 206;
    assert_int_equal(hgs3_store_check_whole(&o), HGS3_EPROTO);
    o = ok;
    o.content_type = "text/html";
    assert_int_equal(hgs3_store_check_whole(&o), HGS3_EPROTO);
    assert_int_equal(hgs3_store_check_same(&ok, &o), HGS3_EPROTO);
    o.content_type = NULL;
    assert_int_equal(hgs3_store_check_same(&ok, &o), HGS3_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),         cmocka_unit_test(test_get_checked),
        cmocka_unit_test(test_put_remove),     cmocka_unit_test(test_client_url),
        cmocka_unit_test(test_no_credentials), cmocka_unit_test(test_checks),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    hgs3_store_s3_global_init();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    hgs3_store_s3_global_cleanup();
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
