/* test_inline.c: the inline entry format (round trip, refusal of damaged or
 * foreign entries) and the batch rule (which sub-commands may be cached,
 * read from the query, X-HgArg-* and the POST body). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "hgs3_err.h"
#include "hgs3_inline.h"
#include "hgs3_req.h"

static apr_pool_t *pool;

static int setup(void **state)
{
    (void)state;
    apr_pool_create(&pool, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    apr_pool_destroy(pool);
    return 0;
}

static void test_round_trip(void **state)
{
    static const char body[] = "lookup changegroupsubset\0binary\xff";
    unsigned char *buf;
    apr_size_t len;
    hgs3_inline_entry e;
    (void)state;

    assert_int_equal(
        hgs3_inline_encode(&buf, &len, pool, 200, "application/mercurial-0.1", body, sizeof(body)),
        APR_SUCCESS);
    assert_int_equal(len, HGS3_INLINE_HEADER + strlen("application/mercurial-0.1") + sizeof(body));
    assert_int_equal(hgs3_inline_decode(&e, pool, buf, len), APR_SUCCESS);
    assert_int_equal(e.status, 200);
    assert_string_equal(e.content_type, "application/mercurial-0.1");
    assert_int_equal(e.body_len, sizeof(body));
    assert_memory_equal(e.body, body, sizeof(body));
}

static void test_empty_body(void **state)
{
    unsigned char *buf;
    apr_size_t len;
    hgs3_inline_entry e;
    (void)state;

    assert_int_equal(
        hgs3_inline_encode(&buf, &len, pool, 200, "application/mercurial-0.2", NULL, 0),
        APR_SUCCESS);
    assert_int_equal(hgs3_inline_decode(&e, pool, buf, len), APR_SUCCESS);
    assert_int_equal(e.body_len, 0);
}

static void test_encode_refuses(void **state)
{
    unsigned char *buf = (unsigned char *)"x";
    apr_size_t len = 1;
    char ct[300];
    (void)state;

    assert_int_equal(hgs3_inline_encode(&buf, &len, pool, 99, "a/b", "x", 1), HGS3_EMALFORMED);
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_int_equal(hgs3_inline_encode(&buf, &len, pool, 200, "", "x", 1), HGS3_EMALFORMED);
    assert_int_equal(hgs3_inline_encode(&buf, &len, pool, 200, NULL, "x", 1), HGS3_EMALFORMED);
    assert_int_equal(hgs3_inline_encode(&buf, &len, pool, 200, "a/b\r\nX: y", "x", 1),
                     HGS3_EMALFORMED);
    memset(ct, 'a', sizeof(ct) - 1);
    ct[sizeof(ct) - 1] = '\0';
    assert_int_equal(hgs3_inline_encode(&buf, &len, pool, 200, ct, "x", 1), HGS3_EMALFORMED);
    assert_int_equal(hgs3_inline_encode(&buf, &len, pool, 200, "a/b", "x", HGS3_INLINE_MAX + 1),
                     HGS3_ETOOBIG);
}

static void test_decode_refuses(void **state)
{
    static const unsigned char presence[8] = {0, 0, 0, 1, 2, 3, 4, 5};
    unsigned char *buf, *copy;
    apr_size_t len, i;
    hgs3_inline_entry e;
    (void)state;

    /* a stored object's presence entry is not an inline entry */
    assert_int_equal(hgs3_inline_decode(&e, pool, presence, sizeof(presence)), APR_ENOENT);
    assert_null(e.body);
    assert_int_equal(hgs3_inline_decode(&e, pool, "", 0), APR_ENOENT);
    assert_int_equal(
        hgs3_inline_encode(&buf, &len, pool, 200, "application/mercurial-0.1", "abcdef", 6),
        APR_SUCCESS);
    /* every truncation, and one byte too many, is refused */
    for (i = 5; i < len; ++i) {
        assert_int_equal(hgs3_inline_decode(&e, pool, buf, i), HGS3_EMALFORMED);
    }
    copy = apr_pcalloc(pool, len + 1);
    memcpy(copy, buf, len);
    assert_int_equal(hgs3_inline_decode(&e, pool, copy, len + 1), HGS3_EMALFORMED);
    /* another format version */
    copy = apr_pmemdup(pool, buf, len);
    copy[5] = 2;
    assert_int_equal(hgs3_inline_decode(&e, pool, copy, len), HGS3_EMALFORMED);
    /* a control character in the content type */
    copy = apr_pmemdup(pool, buf, len);
    copy[10] = '\n';
    assert_int_equal(hgs3_inline_decode(&e, pool, copy, len), HGS3_EMALFORMED);
    /* a status out of range */
    copy = apr_pmemdup(pool, buf, len);
    copy[6] = 0xff;
    assert_int_equal(hgs3_inline_decode(&e, pool, copy, len), HGS3_EMALFORMED);
    assert_null(e.content_type);
}

#define OK_CMDS(s)  assert_true(hgs3_inline_batch_cmds_ok(s, strlen(s)))
#define BAD_CMDS(s) assert_false(hgs3_inline_batch_cmds_ok(s, strlen(s)))

static void test_batch_cmds(void **state)
{
    (void)state;
    OK_CMDS("heads ");
    OK_CMDS("heads ;known nodes=0123456789abcdef0123456789abcdef01234567");
    OK_CMDS("listkeys namespace=bookmarks;branchmap ;lookup key=tip;capabilities ;clonebundles ");
    BAD_CMDS("");
    BAD_CMDS("heads");                   /* no space: hgweb fails on it */
    BAD_CMDS("heads ;");                 /* an empty part */
    BAD_CMDS("heads ;unbundle heads=x"); /* one write command spoils the batch */
    BAD_CMDS("pushkey namespace=bookmarks,key=a,old=,new=b");
    BAD_CMDS("getbundle heads=x");
    BAD_CMDS("Heads ");
    BAD_CMDS("heads2 ");
    BAD_CMDS("head ");
}

static hgs3_req *request(const char *query, const char *hgargs, const char *post)
{
    hgs3_req *req = apr_pcalloc(pool, sizeof(*req));
    req->method = post ? "POST" : "GET";
    req->cmd = "batch";
    req->args = apr_array_make(pool, 1, sizeof(hgs3_req_arg));
    if (query) {
        hgs3_req_arg *a = apr_array_push(req->args);
        a->name = "cmds";
        a->name_len = 4;
        a->value = query;
        a->value_len = strlen(query);
    }
    req->hgargs = hgargs ? hgargs : "";
    req->hgargs_len = strlen(req->hgargs);
    req->has_post = post != NULL;
    req->post = post;
    req->post_len = post ? strlen(post) : 0;
    req->proto = "";
    return req;
}

static void test_batch_request(void **state)
{
    (void)state;
    /* as hg 6.3 sends it: X-HgArg-1 */
    assert_true(hgs3_inline_batch_ok(
        request(NULL, "cmds=heads+%3Bknown+nodes%3D0123456789abcdef0123456789abcdef01234567", NULL),
        pool));
    assert_true(hgs3_inline_batch_ok(request(NULL, "x=1&cmds=heads+&y=2", NULL), pool));
    assert_false(
        hgs3_inline_batch_ok(request(NULL, "cmds=heads+%3Bunbundle+heads%3Dx", NULL), pool));
    /* no cmds at all */
    assert_false(hgs3_inline_batch_ok(request(NULL, "", NULL), pool));
    assert_false(hgs3_inline_batch_ok(request(NULL, "cmd=heads+", NULL), pool));
    /* httppostargs */
    assert_true(hgs3_inline_batch_ok(request(NULL, NULL, "cmds=branchmap+"), pool));
    assert_false(hgs3_inline_batch_ok(request(NULL, NULL, "cmds=pushkey+namespace%3Dx"), pool));
    /* query argument */
    assert_true(hgs3_inline_batch_ok(request("heads ", NULL, NULL), pool));
    assert_false(hgs3_inline_batch_ok(request("unbundle ", NULL, NULL), pool));
    /* every occurrence must pass, wherever hgweb might take it from */
    assert_false(hgs3_inline_batch_ok(request("heads ", "cmds=unbundle+", NULL), pool));
    assert_false(hgs3_inline_batch_ok(request("unbundle ", "cmds=heads+", NULL), pool));
    assert_false(hgs3_inline_batch_ok(request(NULL, "cmds=heads+", "cmds=unbundle+"), pool));
    assert_false(hgs3_inline_batch_ok(request(NULL, "cmds=heads+&cmds=unbundle+", NULL), pool));
    /* bad escapes are refused */
    assert_false(hgs3_inline_batch_ok(request(NULL, "cmds=heads%zz", NULL), pool));
    assert_false(hgs3_inline_batch_ok(request(NULL, "cmds", NULL), pool));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_encode_refuses), cmocka_unit_test(test_decode_refuses),
        cmocka_unit_test(test_batch_cmds),     cmocka_unit_test(test_batch_request),
    };
    int rc;

    apr_initialize();
    rc = cmocka_run_group_tests(tests, setup, teardown);
    apr_terminate();
    return rc;
}
