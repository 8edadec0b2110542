/* test_cacheable.c: SPEC "Never cached" from a response head, for a
 * getbundle body (the store) and a small reply (inline): each reason, its
 * order, the media types each accepts, Content-Length and its limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <apr_general.h>

#include "hgs3_cacheable.h"

#define MIN 65536
#define MAX ((apr_off_t)4 << 30)

static hgs3_head_values good(void)
{
    hgs3_head_values h = {200, "application/mercurial-0.2", 0, 0, NULL};
    return h;
}

static hgs3_skip_e check(const hgs3_head_values *h, hgs3_accept_e accept, apr_off_t *expected)
{
    return hgs3_cacheable_head(h, accept, accept == HGS3_ACCEPT_BUNDLE ? MIN : 0,
                               accept == HGS3_ACCEPT_BUNDLE ? MAX : 65536, expected);
}

static void test_cacheable(void **state)
{
    hgs3_head_values h = good();
    apr_off_t n = 7;
    (void)state;

    assert_int_equal(check(&h, HGS3_ACCEPT_BUNDLE, &n), HGS3_SKIP_NONE);
    assert_int_equal(n, -1); /* chunked: no Content-Length */
    h.content_type = "application/mercurial-0.1";
    assert_int_equal(check(&h, HGS3_ACCEPT_BUNDLE, &n), HGS3_SKIP_NONE);
    h.content_type = "Application/Mercurial-0.2; charset=x";
    assert_int_equal(check(&h, HGS3_ACCEPT_BUNDLE, &n), HGS3_SKIP_NONE);
    assert_int_equal(check(&h, HGS3_ACCEPT_MERCURIAL, &n), HGS3_SKIP_NONE);
}

/* The two kinds differ only in the media types they accept. */
static void test_media_types(void **state)
{
    static const struct {
        const char *ct;
        hgs3_skip_e bundle, mercurial;
    } cases[] = {
        {"application/mercurial-0.1", HGS3_SKIP_NONE, HGS3_SKIP_NONE},
        {"application/mercurial-0.2", HGS3_SKIP_NONE, HGS3_SKIP_NONE},
        {"application/mercurial-0.3", HGS3_SKIP_CONTENT_TYPE, HGS3_SKIP_NONE},
        {"application/mercurial-exp-framing-0006", HGS3_SKIP_CONTENT_TYPE, HGS3_SKIP_NONE},
        {"application/mercurial", HGS3_SKIP_CONTENT_TYPE, HGS3_SKIP_CONTENT_TYPE},
        {"application/hg-error", HGS3_SKIP_HG_ERROR, HGS3_SKIP_HG_ERROR},
        {"APPLICATION/HG-ERROR; x=1", HGS3_SKIP_HG_ERROR, HGS3_SKIP_HG_ERROR},
        {"text/html", HGS3_SKIP_CONTENT_TYPE, HGS3_SKIP_CONTENT_TYPE},
        {"", HGS3_SKIP_CONTENT_TYPE, HGS3_SKIP_CONTENT_TYPE},
        {NULL, HGS3_SKIP_CONTENT_TYPE, HGS3_SKIP_CONTENT_TYPE},
    };
    apr_size_t i;
    apr_off_t n;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        hgs3_head_values h = good();
        h.content_type = cases[i].ct;
        assert_int_equal(check(&h, HGS3_ACCEPT_BUNDLE, &n), cases[i].bundle);
        assert_int_equal(check(&h, HGS3_ACCEPT_MERCURIAL, &n), cases[i].mercurial);
    }
}

/* Each header reason, for both kinds; the first one in SPEC order wins. */
static void test_reasons_and_order(void **state)
{
    hgs3_head_values h;
    int accept;
    apr_off_t n = 7;
    (void)state;

    for (accept = HGS3_ACCEPT_BUNDLE; accept <= HGS3_ACCEPT_MERCURIAL; ++accept) {
        h = good();
        h.status = 206;
        assert_int_equal(check(&h, accept, &n), HGS3_SKIP_STATUS);
        assert_int_equal(n, -1);
        h = good();
        h.content_encoding = 1;
        assert_int_equal(check(&h, accept, &n), HGS3_SKIP_CONTENT_ENCODING);
        h = good();
        h.set_cookie = 1;
        assert_int_equal(check(&h, accept, &n), HGS3_SKIP_SET_COOKIE);
        /* everything wrong at once: the status is named */
        h.status = 500;
        h.content_type = "application/hg-error";
        h.content_encoding = 1;
        h.content_length = "x";
        assert_int_equal(check(&h, accept, &n), HGS3_SKIP_STATUS);
        h.status = 200;
        assert_int_equal(check(&h, accept, &n), HGS3_SKIP_HG_ERROR);
        h.content_type = "application/mercurial-0.2";
        assert_int_equal(check(&h, accept, &n), HGS3_SKIP_CONTENT_ENCODING);
        h.content_encoding = 0;
        assert_int_equal(check(&h, accept, &n), HGS3_SKIP_SET_COOKIE);
        h.set_cookie = 0;
        assert_int_equal(check(&h, accept, &n), HGS3_SKIP_CONTENT_LENGTH);
    }
}

static void test_content_length(void **state)
{
    static const char *const bad[] = {"",    " ",  "+1",  "x",
                                      "12x", "-1", "1.5", "99999999999999999999999"};
    hgs3_head_values h = good();
    apr_size_t i;
    apr_off_t n = 7;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        h.content_length = bad[i];
        assert_int_equal(check(&h, HGS3_ACCEPT_BUNDLE, &n), HGS3_SKIP_CONTENT_LENGTH);
        assert_int_equal(n, -1);
        assert_int_equal(check(&h, HGS3_ACCEPT_MERCURIAL, &n), HGS3_SKIP_CONTENT_LENGTH);
    }
    /* a bundle: within HgS3CacheMinSize..HgS3CacheMaxSize */
    h.content_length = "65536";
    assert_int_equal(check(&h, HGS3_ACCEPT_BUNDLE, &n), HGS3_SKIP_NONE);
    assert_int_equal(n, 65536);
    h.content_length = "65535";
    assert_int_equal(check(&h, HGS3_ACCEPT_BUNDLE, &n), HGS3_SKIP_TOO_SMALL);
    assert_int_equal(n, -1);
    h.content_length = "4294967296";
    assert_int_equal(check(&h, HGS3_ACCEPT_BUNDLE, &n), HGS3_SKIP_NONE);
    assert_int_equal(n, MAX);
    h.content_length = "4294967297";
    assert_int_equal(check(&h, HGS3_ACCEPT_BUNDLE, &n), HGS3_SKIP_TOO_LARGE);
    /* a small reply: 0..HgS3CacheInlineMax */
    h.content_length = "0";
    assert_int_equal(check(&h, HGS3_ACCEPT_MERCURIAL, &n), HGS3_SKIP_NONE);
    assert_int_equal(n, 0);
    h.content_length = "65536";
    assert_int_equal(check(&h, HGS3_ACCEPT_MERCURIAL, &n), HGS3_SKIP_NONE);
    h.content_length = "65537";
    assert_int_equal(check(&h, HGS3_ACCEPT_MERCURIAL, &n), HGS3_SKIP_TOO_LARGE);
    assert_int_equal(n, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cacheable),
        cmocka_unit_test(test_media_types),
        cmocka_unit_test(test_reasons_and_order),
        cmocka_unit_test(test_content_length),
    };
    int rc;

    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
