/* test_crypto.c: SHA-256 and HMAC-SHA256 against published vectors
 * (FIPS 180-2 examples, RFC 4231 test cases 1 and 2). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_thread_proc.h>

#include "hgs3_crypto.h"

static void hex_of(char *out, const unsigned char *md)
{
    hgs3_hex(out, md, HGS3_SHA256_LEN);
}

static void test_sha256_vectors(void **state)
{
    unsigned char md[HGS3_SHA256_LEN];
    char hex[65];
    (void)state;

    assert_int_equal(hgs3_sha256("", 0, md), APR_SUCCESS);
    hex_of(hex, md);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(hgs3_sha256("abc", 3, md), APR_SUCCESS);
    hex_of(hex, md);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha256_incremental(void **state)
{
    const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    apr_pool_t *p = NULL;
    hgs3_sha256_ctx *ctx = NULL;
    unsigned char md[HGS3_SHA256_LEN];
    char hex[65];
    size_t i, n = strlen(msg);
    (void)state;

    apr_pool_create(&p, NULL);
    assert_int_equal(hgs3_sha256_create(&ctx, p), APR_SUCCESS);
    for (i = 0; i < n; ++i) {
        assert_int_equal(hgs3_sha256_update(ctx, msg + i, 1), APR_SUCCESS);
    }
    assert_int_equal(hgs3_sha256_final(ctx, md), APR_SUCCESS);
    hex_of(hex, md);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* a finished context refuses more data */
    assert_int_not_equal(hgs3_sha256_update(ctx, "x", 1), APR_SUCCESS);
    assert_string_equal(hgs3_sha256_hex(p, msg, n), hex);
    apr_pool_destroy(p);
}

static void test_hmac_rfc4231(void **state)
{
    unsigned char key[20], md[HGS3_SHA256_LEN];
    char hex[65];
    (void)state;

    memset(key, 0x0b, sizeof(key));
    assert_int_equal(hgs3_hmac_sha256(key, sizeof(key), "Hi There", 8, md), APR_SUCCESS);
    hex_of(hex, md);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    assert_int_equal(hgs3_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, md),
                     APR_SUCCESS);
    hex_of(hex, md);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_hmac_more(void **state)
{
    unsigned char key[131], md[HGS3_SHA256_LEN], md2[HGS3_SHA256_LEN];
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    char hex[65];
    (void)state;

    /* RFC 4231 test case 6: a key longer than the block is hashed first */
    memset(key, 0xaa, sizeof(key));
    assert_int_equal(hgs3_hmac_sha256(key, sizeof(key), msg, strlen(msg), md), APR_SUCCESS);
    hex_of(hex, md);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    /* an empty key, and empty data */
    assert_int_equal(hgs3_hmac_sha256("", 0, "", 0, md2), APR_SUCCESS);
    hex_of(hex, md2);
    assert_string_equal(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    assert_int_equal(hgs3_hmac_sha256(NULL, 0, "", 0, md2), APR_SUCCESS);
    hex_of(hex, md2);
    assert_string_equal(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    /* the shared HMAC state keeps no key between calls */
    assert_int_equal(hgs3_hmac_sha256(key, sizeof(key), msg, strlen(msg), md2), APR_SUCCESS);
    assert_memory_equal(md, md2, sizeof(md));
}

static void test_crypto_init(void **state)
{
    unsigned char md[HGS3_SHA256_LEN];
    char hex[65];
    (void)state;

    assert_int_equal(hgs3_crypto_init(), APR_SUCCESS);
    assert_int_equal(hgs3_crypto_init(), APR_SUCCESS);
    assert_int_equal(hgs3_sha256("abc", 3, md), APR_SUCCESS);
    hex_of(hex, md);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* The fetched implementations are shared by threads: hammer them from
 * several at once, each with its own key, and check every result. */
#define HAMMER_THREADS 4
#define HAMMER_ROUNDS  500

typedef struct hammer_arg {
    int index;
    int failures;
} hammer_arg;

static void *APR_THREAD_FUNC hammer(apr_thread_t *t, void *data)
{
    hammer_arg *arg = data;
    int *failures = &arg->failures, i;
    unsigned char key[8], md[HGS3_SHA256_LEN], want[HGS3_SHA256_LEN], sha[HGS3_SHA256_LEN];
    char hex[65];

    memset(key, 'a' + arg->index, sizeof(key));
    hgs3_hmac_sha256(key, sizeof(key), "data", 4, want);
    for (i = 0; i < HAMMER_ROUNDS; ++i) {
        if (hgs3_hmac_sha256(key, sizeof(key), "data", 4, md) != APR_SUCCESS ||
            memcmp(md, want, sizeof(md)) != 0) {
            ++*failures;
        }
        if (hgs3_sha256("abc", 3, sha) != APR_SUCCESS) {
            ++*failures;
            continue;
        }
        hgs3_hex(hex, sha, HGS3_SHA256_LEN);
        if (strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0) {
            ++*failures;
        }
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_threads(void **state)
{
    apr_pool_t *p = NULL;
    apr_thread_t *th[HAMMER_THREADS];
    hammer_arg args[HAMMER_THREADS];
    int i;
    apr_status_t trv;
    (void)state;

    apr_pool_create(&p, NULL);
    for (i = 0; i < HAMMER_THREADS; ++i) {
        args[i].index = i;
        args[i].failures = 0;
        assert_int_equal(apr_thread_create(&th[i], NULL, hammer, &args[i], p), APR_SUCCESS);
    }
    for (i = 0; i < HAMMER_THREADS; ++i) {
        apr_thread_join(&trv, th[i]);
        assert_int_equal(args[i].failures, 0);
    }
    apr_pool_destroy(p);
}

static void test_memeq(void **state)
{
    (void)state;
    assert_true(hgs3_memeq_ct("abcd", "abcd", 4));
    assert_false(hgs3_memeq_ct("abcd", "abce", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors), cmocka_unit_test(test_sha256_incremental),
        cmocka_unit_test(test_hmac_rfc4231),   cmocka_unit_test(test_hmac_more),
        cmocka_unit_test(test_crypto_init),    cmocka_unit_test(test_threads),
        cmocka_unit_test(test_memeq),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
