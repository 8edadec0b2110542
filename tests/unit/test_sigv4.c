/* test_sigv4.c: the signer against published vectors.
 *
 * 1. The AWS Signature Version 4 test suite (credential AKIDEXAMPLE,
 *    20150830T123600Z, us-east-1, service "service"): the get-vanilla family
 *    and its query, header, path and POST variants, with canonical request,
 *    string to sign and signature as published. These are generic-service
 *    cases, so they are signed without x-amz-content-sha256; the cases about
 *    dot-segment and double-slash normalization are left out because S3 (and
 *    so this signer) never normalizes a key.
 * 2. The S3 documentation's examples (AKIAIOSFODNN7EXAMPLE, 20130524T000000Z):
 *    header-signed GET Object with Range, PUT Object, GET bucket lifecycle,
 *    GET bucket (list objects), and the presigned GET whose signature is
 *    aeeed9bb...604d404.
 * 3. The signing-key derivation example of the AWS general reference. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_crypto.h"
#include "hgs3_sigv4.h"

static apr_pool_t *pool;

#define SUITE_DATE "20150830T123600Z"
#define EMPTY      HGS3_SIGV4_EMPTY_SHA256
#define HOST_EX    "host:example.amazonaws.com\n"
#define DATE_EX    "x-amz-date:20150830T123600Z\n"
#define STS_EX     "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"

static const hgs3_creds suite_creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                       NULL};
#define STS_TOKEN                                                                                  \
    "AQoDYXdzEPT//////////"                                                                        \
    "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwth" \
    "A"                                                                                            \
    "x7mSEI/qkPpKPi/"                                                                              \
    "kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlR"               \
    "d8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"                               \
    "scqKmlzm8FDrypNC9Yjc8fPOLn9FX9K"                                                              \
    "SYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
static const hgs3_creds suite_token_creds = {"AKIDEXAMPLE",
                                             "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", STS_TOKEN};

static const hgs3_creds doc_creds = {"AKIAIOSFODNN7EXAMPLE",
                                     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};

typedef struct vector {
    const char *name;
    const hgs3_creds *creds;
    const char *method;
    const char *path;
    hgs3_sigv4_pair query[4];
    int nquery;
    hgs3_sigv4_pair headers[5];
    int nheaders;
    const char *body; /* NULL: empty */
    const char *creq;
    const char *sts;
    const char *signature;
} vector;

/* The AWS SigV4 test suite, header-signed form. */
static const vector suite[] = {
    {"get-vanilla",
     &suite_creds,
     "GET",
     "/",
     {{0}},
     0,
     {{0}},
     0,
     NULL,
     "GET\n/\n\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-query",
     &suite_creds,
     "GET",
     "/",
     {{0}},
     0,
     {{0}},
     0,
     NULL,
     "GET\n/\n\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-empty-query-key",
     &suite_creds,
     "GET",
     "/",
     {{"Param1", "value1"}},
     1,
     {{0}},
     0,
     NULL,
     "GET\n/\nParam1=value1\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
     "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {"get-vanilla-query-order-key",
     &suite_creds,
     "GET",
     "/",
     {{"Param1", "value2"}, {"Param1", "Value1"}},
     2,
     {{0}},
     0,
     NULL,
     "GET\n/\nParam1=Value1&Param1=value2\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
     "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
    {"get-vanilla-query-order-key-case",
     &suite_creds,
     "GET",
     "/",
     {{"Param2", "value2"}, {"Param1", "value1"}},
     2,
     {{0}},
     0,
     NULL,
     "GET\n/\nParam1=value1&Param2=value2\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-query-order-value",
     &suite_creds,
     "GET",
     "/",
     {{"Param1", "value2"}, {"Param1", "value1"}},
     2,
     {{0}},
     0,
     NULL,
     "GET\n/\nParam1=value1&Param1=value2\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
     "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
    {"get-vanilla-query-unreserved",
     &suite_creds,
     "GET",
     "/",
     {{"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}},
     1,
     {{0}},
     0,
     NULL,
     "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~"
     "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n" HOST_EX DATE_EX
     "\nhost;x-amz-date\n" EMPTY,
     STS_EX "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
     "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
    {"get-vanilla-utf8-query",
     &suite_creds,
     "GET",
     "/",
     {{"\xe1\x88\xb4", "bar"}},
     1,
     {{0}},
     0,
     NULL,
     "GET\n/\n%E1%88%B4=bar\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {"get-unreserved",
     &suite_creds,
     "GET",
     "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     {{0}},
     0,
     {{0}},
     0,
     NULL,
     "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\n" HOST_EX DATE_EX
     "\nhost;x-amz-date\n" EMPTY,
     STS_EX "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {"get-utf8",
     &suite_creds,
     "GET",
     "/\xe1\x88\xb4",
     {{0}},
     0,
     {{0}},
     0,
     NULL,
     "GET\n/%E1%88%B4\n\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
    {"get-space",
     &suite_creds,
     "GET",
     "/example space/",
     {{0}},
     0,
     {{0}},
     0,
     NULL,
     "GET\n/example%20space/\n\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
     "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
    {"get-header-key-duplicate",
     &suite_creds,
     "GET",
     "/",
     {{0}},
     0,
     {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
     3,
     NULL,
     "GET\n/\n\n" HOST_EX "my-header1:value2,value2,value1\n" DATE_EX
     "\nhost;my-header1;x-amz-date\n" EMPTY,
     STS_EX "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"get-header-value-order",
     &suite_creds,
     "GET",
     "/",
     {{0}},
     0,
     {{"My-Header1", "value4"},
      {"My-Header1", "value1"},
      {"My-Header1", "value3"},
      {"My-Header1", "value2"}},
     4,
     NULL,
     "GET\n/\n\n" HOST_EX "my-header1:value4,value1,value3,value2\n" DATE_EX
     "\nhost;my-header1;x-amz-date\n" EMPTY,
     STS_EX "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
    {"get-header-value-trim",
     &suite_creds,
     "GET",
     "/",
     {{0}},
     0,
     {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
     2,
     NULL,
     "GET\n/\n\n" HOST_EX "my-header1:value1\nmy-header2:\"a b c\"\n" DATE_EX
     "\nhost;my-header1;my-header2;x-amz-date\n" EMPTY,
     STS_EX "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"post-vanilla",
     &suite_creds,
     "POST",
     "/",
     {{0}},
     0,
     {{0}},
     0,
     NULL,
     "POST\n/\n\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-vanilla-query",
     &suite_creds,
     "POST",
     "/",
     {{"Param1", "value1"}},
     1,
     {{0}},
     0,
     NULL,
     "POST\n/\nParam1=value1\n" HOST_EX DATE_EX "\nhost;x-amz-date\n" EMPTY,
     STS_EX "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {"post-header-key-sort",
     &suite_creds,
     "POST",
     "/",
     {{0}},
     0,
     {{"My-Header1", "value1"}},
     1,
     NULL,
     "POST\n/\n\n" HOST_EX "my-header1:value1\n" DATE_EX "\nhost;my-header1;x-amz-date\n" EMPTY,
     STS_EX "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
    {"post-header-value-case",
     &suite_creds,
     "POST",
     "/",
     {{0}},
     0,
     {{"My-Header1", "VALUE1"}},
     1,
     NULL,
     "POST\n/\n\n" HOST_EX "my-header1:VALUE1\n" DATE_EX "\nhost;my-header1;x-amz-date\n" EMPTY,
     STS_EX "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
    {"post-sts-header-before",
     &suite_token_creds,
     "POST",
     "/",
     {{0}},
     0,
     {{0}},
     0,
     NULL,
     "POST\n/\n\n" HOST_EX DATE_EX "x-amz-security-token:" STS_TOKEN
     "\n\nhost;x-amz-date;x-amz-security-token\n" EMPTY,
     STS_EX "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
    {"post-x-www-form-urlencoded",
     &suite_creds,
     "POST",
     "/",
     {{0}},
     0,
     {{"Content-Type", "application/x-www-form-urlencoded"}},
     1,
     "Param1=value1",
     "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n" HOST_EX DATE_EX
     "\ncontent-type;host;x-amz-date\n"
     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     STS_EX "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    {"post-x-www-form-urlencoded-parameters",
     &suite_creds,
     "POST",
     "/",
     {{0}},
     0,
     {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}},
     1,
     "Param1=value1",
     "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\n" HOST_EX DATE_EX
     "\ncontent-type;host;x-amz-date\n"
     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     STS_EX "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
     "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
};

static apr_time_t parse_time(const char *s)
{
    apr_time_t t = 0;
    assert_int_equal(hgs3_sigv4_parse_date(&t, s), APR_SUCCESS);
    return t;
}

static void run_vector(const vector *v, const char *host, const char *region, const char *service,
                       const char *date, unsigned int flags, hgs3_sigv4_keycache *cache)
{
    hgs3_sigv4_request req;
    hgs3_sigv4_result *res = NULL;
    const char *auth;

    memset(&req, 0, sizeof(req));
    req.method = v->method;
    req.host = host;
    req.path = v->path;
    req.query = v->query;
    req.nquery = v->nquery;
    req.headers = v->headers;
    req.nheaders = v->nheaders;
    req.payload_hash = v->body ? hgs3_sha256_hex(pool, v->body, strlen(v->body)) : NULL;
    req.flags = flags;
    print_message("  %s\n", v->name);
    assert_int_equal(hgs3_sigv4_sign_header(&res, pool, v->creds, region, service, parse_time(date),
                                            &req, cache),
                     APR_SUCCESS);
    assert_string_equal(res->canonical_request, v->creq);
    assert_string_equal(res->string_to_sign, v->sts);
    assert_string_equal(res->signature, v->signature);
    auth = apr_pstrcat(pool, "AWS4-HMAC-SHA256 Credential=", v->creds->access_key, "/", res->scope,
                       ", SignedHeaders=", res->signed_headers, ", Signature=", v->signature, NULL);
    assert_string_equal(res->authorization, auth);
}

static void test_aws_suite(void **state)
{
    apr_size_t i;
    (void)state;
    for (i = 0; i < sizeof(suite) / sizeof(suite[0]); ++i) {
        run_vector(&suite[i], "example.amazonaws.com", "us-east-1", "service", SUITE_DATE,
                   HGS3_SIGV4_NO_CONTENT_SHA256, NULL);
    }
}

/* The same vectors through a shared key cache: same results, one derivation
 * per distinct (credentials, date, region, service). */
static void test_aws_suite_cached(void **state)
{
    hgs3_sigv4_keycache *cache;
    apr_size_t i;
    (void)state;
    assert_int_equal(hgs3_sigv4_keycache_create(&cache, pool), APR_SUCCESS);
    for (i = 0; i < sizeof(suite) / sizeof(suite[0]); ++i) {
        run_vector(&suite[i], "example.amazonaws.com", "us-east-1", "service", SUITE_DATE,
                   HGS3_SIGV4_NO_CONTENT_SHA256, cache);
    }
    /* suite_creds and suite_token_creds share key and secret. */
    assert_int_equal(hgs3_sigv4_keycache_derivations(cache), 1);
}

/* The same suite in its query-signed (presigned) form, as aws-c-auth
 * publishes it (tests/aws-signing-test-suite/v4/<case>/query-signed-request.txt:
 * X-Amz-Expires=3600, payload signed as the empty body's hash). The
 * get-slashes-unnormalized case shows that "//example//" is signed as is. */
typedef struct qvector {
    const char *name;
    const char *path;
    hgs3_sigv4_pair query[2];
    int nquery;
    hgs3_sigv4_pair headers[2];
    int nheaders;
    const char *signed_headers;
    const char *signature;
} qvector;

static const qvector suite_query[] = {
    {"get-vanilla-query-order-key-case",
     "/",
     {{"Param2", "value2"}, {"Param1", "value1"}},
     2,
     {{0}},
     0,
     "host",
     "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5"},
    {"get-vanilla-query-unreserved",
     "/",
     {{"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}},
     1,
     {{0}},
     0,
     "host",
     "8e76a88a7433637b12778d5592799b29ad21ecd6cf6325051c21d86f0acda2bf"},
    {"get-vanilla-utf8-query",
     "/",
     {{"\xe1\x88\xb4", "bar"}},
     1,
     {{0}},
     0,
     "host",
     "0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600"},
    {"get-utf8",
     "/\xe1\x88\xb4",
     {{0}},
     0,
     {{0}},
     0,
     "host",
     "10eae3f14a260bd3911cc6d008d3c576d143b05b62f09782a7a4b37f52178e44"},
    {"get-slashes-unnormalized",
     "//example//",
     {{0}},
     0,
     {{0}},
     0,
     "host",
     "822a5a9ba28072c5ab2bb4a6307d0c88276d40e49fec6b724c03fb4d4ba60fc2"},
    {"get-header-value-trim",
     "/",
     {{0}},
     0,
     {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
     2,
     "host;my-header1;my-header2",
     "e7bb0fd515e125e1aec2ecc4c0c17484fb06f6846b927c35e46005dd3df3acd4"},
};

static void test_aws_suite_presigned(void **state)
{
    apr_size_t i;
    (void)state;
    for (i = 0; i < sizeof(suite_query) / sizeof(suite_query[0]); ++i) {
        const qvector *v = &suite_query[i];
        hgs3_sigv4_request req;
        hgs3_sigv4_result *res = NULL;
        const char *tail;

        memset(&req, 0, sizeof(req));
        req.method = "GET";
        req.host = "example.amazonaws.com";
        req.path = v->path;
        req.query = v->query;
        req.nquery = v->nquery;
        req.headers = v->headers;
        req.nheaders = v->nheaders;
        req.payload_hash = EMPTY;
        print_message("  %s\n", v->name);
        assert_int_equal(hgs3_sigv4_presign(&res, pool, &suite_creds, "us-east-1", "service",
                                            parse_time(SUITE_DATE), 3600, &req, NULL),
                         APR_SUCCESS);
        assert_string_equal(res->signed_headers, v->signed_headers);
        assert_string_equal(res->signature, v->signature);
        assert_non_null(strstr(res->canonical_query,
                               "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%"
                               "2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date="
                               "20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders="));
        tail = apr_pstrcat(pool, "&X-Amz-Signature=", v->signature, NULL);
        assert_string_equal(res->query_string + strlen(res->query_string) - strlen(tail), tail);
    }
}

#define DOC_HOST  "examplebucket.s3.amazonaws.com"
#define DOC_DATE  "20130524T000000Z"
#define DOC_STS   "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
#define DOC_HOSTH "host:examplebucket.s3.amazonaws.com\n"
#define DOC_DATEH "x-amz-date:20130524T000000Z\n"

/* "Authenticating Requests: Using the Authorization Header" examples. */
static const vector s3doc[] = {
    {"GET Object (Range)",
     &doc_creds,
     "GET",
     "/test.txt",
     {{0}},
     0,
     {{"Range", "bytes=0-9"}},
     1,
     NULL,
     "GET\n/test.txt\n\n" DOC_HOSTH "range:bytes=0-9\nx-amz-content-sha256:" EMPTY "\n" DOC_DATEH
     "\nhost;range;x-amz-content-sha256;x-amz-date\n" EMPTY,
     DOC_STS "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
     "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
    {"PUT Object",
     &doc_creds,
     "PUT",
     "/test$file.text",
     {{0}},
     0,
     {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
     2,
     "Welcome to Amazon S3.",
     "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n" DOC_HOSTH
     "x-amz-content-sha256:"
     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n" DOC_DATEH
     "x-amz-storage-class:REDUCED_REDUNDANCY\n"
     "\ndate;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
     DOC_STS "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
    {"GET Bucket Lifecycle",
     &doc_creds,
     "GET",
     "/",
     {{"lifecycle", NULL}},
     1,
     {{0}},
     0,
     NULL,
     "GET\n/\nlifecycle=\n" DOC_HOSTH "x-amz-content-sha256:" EMPTY "\n" DOC_DATEH
     "\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY,
     DOC_STS "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
     "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
    {"GET Bucket (List Objects)",
     &doc_creds,
     "GET",
     "/",
     {{"prefix", "J"}, {"max-keys", "2"}},
     2,
     {{0}},
     0,
     NULL,
     "GET\n/\nmax-keys=2&prefix=J\n" DOC_HOSTH "x-amz-content-sha256:" EMPTY "\n" DOC_DATEH
     "\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY,
     DOC_STS "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
};

static void test_s3_header_examples(void **state)
{
    apr_size_t i;
    (void)state;
    for (i = 0; i < sizeof(s3doc) / sizeof(s3doc[0]); ++i) {
        run_vector(&s3doc[i], DOC_HOST, "us-east-1", "s3", DOC_DATE, 0, NULL);
    }
}

/* The header auth result carries exactly the headers to send. */
static void test_header_result_headers(void **state)
{
    hgs3_sigv4_request req;
    hgs3_sigv4_result *res;
    hgs3_creds c = doc_creds;
    const hgs3_sigv4_pair *h;
    (void)state;

    c.session_token = "TOKEN/with+chars=";
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.host = DOC_HOST;
    req.path = "/test.txt";
    req.payload_hash = HGS3_SIGV4_UNSIGNED;
    assert_int_equal(
        hgs3_sigv4_sign_header(&res, pool, &c, "us-east-1", "s3", parse_time(DOC_DATE), &req, NULL),
        APR_SUCCESS);
    assert_int_equal(res->headers->nelts, 4);
    h = (const hgs3_sigv4_pair *)res->headers->elts;
    assert_string_equal(h[0].name, "x-amz-date");
    assert_string_equal(h[0].value, DOC_DATE);
    assert_string_equal(h[1].name, "x-amz-content-sha256");
    assert_string_equal(h[1].value, "UNSIGNED-PAYLOAD");
    assert_string_equal(h[2].name, "x-amz-security-token");
    assert_string_equal(h[2].value, "TOKEN/with+chars=");
    assert_string_equal(h[3].name, "Authorization");
    assert_string_equal(res->signed_headers,
                        "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
    assert_non_null(strstr(res->canonical_request, "\nUNSIGNED-PAYLOAD"));
    assert_null(res->query_string);
}

/* "Authenticating Requests: Using Query Parameters": the presigned GET. */
static void test_s3_presigned_example(void **state)
{
    hgs3_sigv4_request req;
    hgs3_sigv4_result *res;
    (void)state;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.host = DOC_HOST;
    req.path = "/test.txt";
    assert_int_equal(hgs3_sigv4_presign(&res, pool, &doc_creds, "us-east-1", "s3",
                                        parse_time(DOC_DATE), 86400, &req, NULL),
                     APR_SUCCESS);
    assert_string_equal(res->canonical_request,
                        "GET\n/test.txt\n"
                        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%"
                        "2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-"
                        "Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
                        "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD");
    assert_string_equal(res->string_to_sign,
                        DOC_STS "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
    assert_string_equal(res->signature,
                        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    assert_string_equal(res->query_string,
                        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%"
                        "2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-"
                        "Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
                        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    assert_null(res->authorization);
}

/* Presigning with a token and a response-content-type override: the token
 * and the override are signed in the sorted query; the URL lists the
 * request's own parameters first, then the auth parameters. */
static void test_presign_token_and_override(void **state)
{
    hgs3_sigv4_request req;
    hgs3_sigv4_result *res;
    hgs3_sigv4_pair q[1] = {{"response-content-type", "application/mercurial-0.2"}};
    hgs3_creds c = doc_creds;
    (void)state;

    c.session_token = "tok+/=";
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.host = "s3.example.com:9000";
    req.path = "/bucket/hg cache/k+e=y~";
    req.query = q;
    req.nquery = 1;
    assert_int_equal(hgs3_sigv4_presign(&res, pool, &c, "eu-west-1", "s3", parse_time(DOC_DATE),
                                        300, &req, NULL),
                     APR_SUCCESS);
    assert_string_equal(res->canonical_uri, "/bucket/hg%20cache/k%2Be%3Dy~");
    assert_string_equal(res->canonical_query,
                        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%"
                        "2F20130524%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-"
                        "Amz-Expires=300&X-Amz-Security-Token=tok%2B%2F%3D&X-Amz-SignedHeaders="
                        "host&response-content-type=application%2Fmercurial-0.2");
    assert_non_null(strstr(res->canonical_request, "\nhost:s3.example.com:9000\n\nhost\n"));
    assert_string_equal(apr_pstrndup(pool, res->query_string, 52),
                        "response-content-type=application%2Fmercurial-0.2&X-");
    assert_non_null(strstr(res->query_string,
                           "&X-Amz-SignedHeaders=host&X-Amz-Security-Token=tok%2B%2F%3D&X-Amz-"
                           "Signature="));
    assert_int_equal(strlen(res->signature), 64);
}

static void test_presign_expiry_bounds(void **state)
{
    hgs3_sigv4_request req;
    hgs3_sigv4_result *res;
    apr_time_t t = parse_time(DOC_DATE);
    (void)state;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.host = DOC_HOST;
    req.path = "/test.txt";
    assert_int_equal(
        hgs3_sigv4_presign(&res, pool, &doc_creds, "us-east-1", "s3", t, 0, &req, NULL),
        APR_EINVAL);
    assert_null(res);
    assert_int_equal(
        hgs3_sigv4_presign(&res, pool, &doc_creds, "us-east-1", "s3", t, 604801, &req, NULL),
        APR_EINVAL);
    assert_int_equal(
        hgs3_sigv4_presign(&res, pool, &doc_creds, "us-east-1", "s3", t, 1, &req, NULL),
        APR_SUCCESS);
    assert_non_null(strstr(res->query_string, "X-Amz-Expires=1&"));
    assert_int_equal(
        hgs3_sigv4_presign(&res, pool, &doc_creds, "us-east-1", "s3", t, 604800, &req, NULL),
        APR_SUCCESS);
    assert_non_null(strstr(res->query_string, "X-Amz-Expires=604800&"));
}

/* AWS general reference, "derive a signing key" example. */
static void test_derive_key(void **state)
{
    unsigned char key[32];
    char hex[65];
    (void)state;
    assert_int_equal(hgs3_sigv4_derive_key(key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                           "20120215", "us-east-1", "iam"),
                     APR_SUCCESS);
    hgs3_hex(hex, key, 32);
    assert_string_equal(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

static void sign_simple(hgs3_sigv4_keycache *cache, const hgs3_creds *c, const char *date,
                        const char *region, const char **sig)
{
    hgs3_sigv4_request req;
    hgs3_sigv4_result *res;
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.host = DOC_HOST;
    req.path = "/k";
    assert_int_equal(
        hgs3_sigv4_sign_header(&res, pool, c, region, "s3", parse_time(date), &req, cache),
        APR_SUCCESS);
    *sig = res->signature;
}

/* The cache derives once per scope and credentials, and never hands out a
 * key derived from another secret. */
static void test_keycache(void **state)
{
    hgs3_sigv4_keycache *cache;
    hgs3_creds other = doc_creds;
    const char *a, *b, *c, *d;
    (void)state;

    other.secret_key = "another-secret";
    assert_int_equal(hgs3_sigv4_keycache_create(&cache, pool), APR_SUCCESS);
    sign_simple(cache, &doc_creds, "20130524T000000Z", "us-east-1", &a);
    sign_simple(cache, &doc_creds, "20130524T235959Z", "us-east-1", &b);
    assert_int_equal(hgs3_sigv4_keycache_derivations(cache), 1);
    sign_simple(cache, &doc_creds, "20130525T000000Z", "us-east-1", &b);
    assert_int_equal(hgs3_sigv4_keycache_derivations(cache), 2);
    sign_simple(cache, &other, "20130524T000000Z", "us-east-1", &c);
    assert_int_equal(hgs3_sigv4_keycache_derivations(cache), 3);
    assert_string_not_equal(a, c);
    sign_simple(NULL, &doc_creds, "20130524T000000Z", "us-east-1", &d);
    assert_string_equal(a, d);
    sign_simple(cache, &doc_creds, "20130524T000000Z", "eu-west-1", &d);
    assert_int_equal(hgs3_sigv4_keycache_derivations(cache), 4);
    assert_string_not_equal(a, d);
}

static void test_uri_encode(void **state)
{
    (void)state;
    assert_string_equal(hgs3_sigv4_uri_encode(pool, "a b/c+d=e~f*g", 1), "a%20b/c%2Bd%3De~f%2Ag");
    assert_string_equal(hgs3_sigv4_uri_encode(pool, "a b/c+d=e~f*g", 0), "a%20b%2Fc%2Bd%3De~f%2Ag");
    /* A literal '%' is data, encoded once; nothing is decoded first. */
    assert_string_equal(hgs3_sigv4_uri_encode(pool, "/100%25", 1), "/100%2525");
    assert_string_equal(hgs3_sigv4_uri_encode(pool, "\xc3\xa9\xff", 1), "%C3%A9%FF");
    assert_string_equal(hgs3_sigv4_uri_encode(pool, "", 1), "");
}

static void test_canonical_query(void **state)
{
    hgs3_sigv4_pair q[4] = {
        {"uploadId", "a/b c"}, {"partNumber", "10"}, {"uploads", NULL}, {"B", ""}};
    (void)state;
    assert_string_equal(hgs3_sigv4_canonical_query(pool, q, 4),
                        "B=&partNumber=10&uploadId=a%2Fb%20c&uploads=");
    assert_string_equal(hgs3_sigv4_canonical_query(pool, NULL, 0), "");
}

static void test_dates(void **state)
{
    char buf[HGS3_SIGV4_DATE_LEN + 1];
    apr_time_t t;
    (void)state;
    t = parse_time("20150830T123600Z");
    assert_true(t == apr_time_from_sec(1440938160));
    hgs3_sigv4_format_date(buf, t);
    assert_string_equal(buf, "20150830T123600Z");
    assert_int_equal(hgs3_sigv4_parse_date(&t, "20150830T123600"), APR_EINVAL);
    assert_int_equal(hgs3_sigv4_parse_date(&t, "2015-08-30T12:36:00Z"), APR_EINVAL);
    assert_int_equal(hgs3_sigv4_parse_date(&t, "20151330T123600Z"), APR_EINVAL);
    assert_int_equal(hgs3_sigv4_parse_date(&t, NULL), APR_EINVAL);
}

/* Malformed input is refused rather than signed. */
static void test_rejects(void **state)
{
    hgs3_sigv4_request req;
    hgs3_sigv4_result *res;
    hgs3_sigv4_pair h[1];
    hgs3_creds nocreds = {"AKID", "", NULL};
    apr_time_t t = parse_time(DOC_DATE);
    (void)state;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.host = DOC_HOST;
    req.path = "/k";
    req.headers = h;
    req.nheaders = 1;

    h[0].name = "X-Amz-Date";
    h[0].value = "x";
    assert_int_equal(
        hgs3_sigv4_sign_header(&res, pool, &doc_creds, "us-east-1", "s3", t, &req, NULL),
        HGS3_EMALFORMED);
    assert_null(res);
    h[0].name = "Host";
    assert_int_equal(
        hgs3_sigv4_sign_header(&res, pool, &doc_creds, "us-east-1", "s3", t, &req, NULL),
        HGS3_EMALFORMED);
    h[0].name = "X-Evil";
    h[0].value = "a\r\nInjected: 1";
    assert_int_equal(
        hgs3_sigv4_sign_header(&res, pool, &doc_creds, "us-east-1", "s3", t, &req, NULL),
        HGS3_EMALFORMED);
    h[0].name = "Bad Name";
    h[0].value = "v";
    assert_int_equal(
        hgs3_sigv4_sign_header(&res, pool, &doc_creds, "us-east-1", "s3", t, &req, NULL),
        HGS3_EMALFORMED);
    req.nheaders = 0;
    req.payload_hash = "ABCDEF";
    assert_int_equal(
        hgs3_sigv4_sign_header(&res, pool, &doc_creds, "us-east-1", "s3", t, &req, NULL),
        HGS3_EMALFORMED);
    req.payload_hash = NULL;
    req.path = "k";
    assert_int_equal(
        hgs3_sigv4_sign_header(&res, pool, &doc_creds, "us-east-1", "s3", t, &req, NULL),
        HGS3_EMALFORMED);
    req.path = "/k";
    assert_int_equal(hgs3_sigv4_sign_header(&res, pool, &doc_creds, "us/east", "s3", t, &req, NULL),
                     HGS3_ECONFIG);
    assert_int_equal(hgs3_sigv4_sign_header(&res, pool, &nocreds, "us-east-1", "s3", t, &req, NULL),
                     HGS3_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_suite),
        cmocka_unit_test(test_aws_suite_cached),
        cmocka_unit_test(test_aws_suite_presigned),
        cmocka_unit_test(test_s3_header_examples),
        cmocka_unit_test(test_header_result_headers),
        cmocka_unit_test(test_s3_presigned_example),
        cmocka_unit_test(test_presign_token_and_override),
        cmocka_unit_test(test_presign_expiry_bounds),
        cmocka_unit_test(test_derive_key),
        cmocka_unit_test(test_keycache),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_canonical_query),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_rejects),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
