/* test_creds.c: the shared-credentials parser and the source order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_env.h>

#include "hgs3_err.h"
#include "hgs3_creds.h"

static apr_pool_t *pool;

static apr_status_t parse(hgs3_creds *c, const char *text, const char *profile, int *line)
{
    return hgs3_creds_parse(c, pool, text, strlen(text), profile, line);
}

static const char *sample = "# AWS shared credentials\n"
                            "; another comment style\n"
                            "\n"
                            "[default]\n"
                            "aws_access_key_id = AKIDDEFAULT\n"
                            "aws_secret_access_key=secret/default+x\n"
                            "\n"
                            "  [ ci ]  \n"
                            "\tAWS_ACCESS_KEY_ID   =   AKIDCI   \n"
                            "aws_secret_access_key = ci secret with spaces\n"
                            "aws_session_token = tok=en/+\n"
                            "region = eu-west-1\n"
                            "[legacy]\r\n"
                            "aws_access_key_id=AKIDLEGACY\r\n"
                            "aws_secret_access_key=legacysecret\r\n"
                            "aws_security_token=legacytoken\r\n"
                            "[profile spelled]\n"
                            "aws_access_key_id: AKIDSPELLED\n"
                            "aws_secret_access_key: spelledsecret\n"
                            "[nosecret]\n"
                            "aws_access_key_id=AKIDNOSECRET\n"
                            "[emptytoken]\n"
                            "aws_access_key_id=AKIDE\n"
                            "aws_secret_access_key=s\n"
                            "aws_session_token =\n";

static void test_default_profile(void **state)
{
    hgs3_creds c;
    (void)state;
    assert_int_equal(parse(&c, sample, NULL, NULL), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDDEFAULT");
    assert_string_equal(c.secret_key, "secret/default+x");
    assert_null(c.session_token);
    assert_int_equal(parse(&c, sample, "default", NULL), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDDEFAULT");
}

/* configparser splits at the first '=' or ':', whichever comes first */
static void test_first_separator(void **state)
{
    hgs3_creds c;
    (void)state;
    assert_int_equal(parse(&c,
                           "[default]\naws_access_key_id = AKID\n"
                           "aws_secret_access_key: abc=def\n",
                           NULL, NULL),
                     APR_SUCCESS);
    assert_string_equal(c.secret_key, "abc=def");
    assert_int_equal(parse(&c,
                           "[default]\naws_access_key_id = AKID\n"
                           "aws_secret_access_key = abc:def\n",
                           NULL, NULL),
                     APR_SUCCESS);
    assert_string_equal(c.secret_key, "abc:def");
}

static void test_named_profiles(void **state)
{
    hgs3_creds c;
    (void)state;
    assert_int_equal(parse(&c, sample, "ci", NULL), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDCI");
    assert_string_equal(c.secret_key, "ci secret with spaces");
    assert_string_equal(c.session_token, "tok=en/+");

    assert_int_equal(parse(&c, sample, "legacy", NULL), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDLEGACY");
    assert_string_equal(c.secret_key, "legacysecret");
    assert_string_equal(c.session_token, "legacytoken");

    assert_int_equal(parse(&c, sample, "spelled", NULL), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDSPELLED");
    assert_string_equal(c.secret_key, "spelledsecret");

    assert_int_equal(parse(&c, sample, "emptytoken", NULL), APR_SUCCESS);
    assert_null(c.session_token);
}

static void test_missing_and_incomplete(void **state)
{
    hgs3_creds c;
    (void)state;
    assert_int_equal(parse(&c, sample, "nope", NULL), HGS3_ENOTFOUND);
    assert_null(c.access_key);
    assert_int_equal(parse(&c, sample, "nosecret", NULL), HGS3_ECONFIG);
    assert_null(c.access_key);
    assert_null(c.secret_key);
    /* Case matters for section names, as in botocore. */
    assert_int_equal(parse(&c, sample, "CI", NULL), HGS3_ENOTFOUND);
    assert_int_equal(parse(&c, "", NULL, NULL), HGS3_ENOTFOUND);
}

/* An exact [name] wins over [profile name]; later values win. */
static void test_precedence(void **state)
{
    hgs3_creds c;
    (void)state;
    assert_int_equal(parse(&c,
                           "[profile x]\naws_access_key_id=A1\naws_secret_access_key=S1\n"
                           "[x]\naws_access_key_id=A2\naws_secret_access_key=S2\n"
                           "[x]\naws_secret_access_key=S3\n",
                           "x", NULL),
                     APR_SUCCESS);
    assert_string_equal(c.access_key, "A2");
    assert_string_equal(c.secret_key, "S3");
}

static void test_malformed(void **state)
{
    hgs3_creds c;
    int line = -1;
    (void)state;
    assert_int_equal(parse(&c, "[default]\naws_access_key_id=A\njunk line\n", NULL, &line),
                     HGS3_EMALFORMED);
    assert_int_equal(line, 3);
    assert_null(c.access_key);
    assert_int_equal(parse(&c, "[default\naws_access_key_id=A\n", NULL, &line), HGS3_EMALFORMED);
    assert_int_equal(line, 1);
    assert_int_equal(parse(&c, "aws_access_key_id=A\n[default]\n", NULL, &line), HGS3_EMALFORMED);
    assert_int_equal(line, 1);
    assert_int_equal(parse(&c, "[default]\n=value\n", NULL, &line), HGS3_EMALFORMED);
    assert_int_equal(line, 2);
}

/* The text need not be NUL-terminated: only len bytes are read. */
static void test_length_bounded(void **state)
{
    hgs3_creds c;
    const char *text = "[default]\naws_access_key_id=AK\naws_secret_access_key=SECRETXXXX";
    (void)state;
    assert_int_equal(hgs3_creds_parse(&c, pool, text, strlen(text) - 4, NULL, NULL), APR_SUCCESS);
    assert_string_equal(c.secret_key, "SECRET");
}

static const char *write_temp(const char *content)
{
    char *path = apr_pstrdup(pool, "/tmp/hgs3credsXXXXXX");
    apr_file_t *f;
    apr_size_t n = strlen(content);
    assert_int_equal(
        apr_file_mktemp(&f, path,
                        APR_FOPEN_CREATE | APR_FOPEN_READ | APR_FOPEN_WRITE | APR_FOPEN_EXCL, pool),
        APR_SUCCESS);
    assert_int_equal(apr_file_write_full(f, content, n, NULL), APR_SUCCESS);
    apr_file_close(f);
    return path;
}

static void test_file(void **state)
{
    hgs3_creds c;
    const char *path = write_temp(sample);
    char *big;
    (void)state;
    assert_int_equal(hgs3_creds_load_file(&c, pool, path, "ci", NULL), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDCI");
    assert_string_equal(c.session_token, "tok=en/+");
    apr_file_remove(path, pool);
    assert_true(APR_STATUS_IS_ENOENT(hgs3_creds_load_file(&c, pool, path, "ci", NULL)));
    assert_null(c.access_key);

    big = apr_palloc(pool, HGS3_CREDS_MAX_FILE + 2);
    memset(big, '#', HGS3_CREDS_MAX_FILE + 1);
    big[HGS3_CREDS_MAX_FILE + 1] = '\0';
    path = write_temp(big);
    assert_int_equal(hgs3_creds_load_file(&c, pool, path, NULL, NULL), HGS3_ETOOBIG);
    apr_file_remove(path, pool);
    assert_int_equal(hgs3_creds_load_file(&c, pool, "/tmp", NULL, NULL), HGS3_ECONFIG);
}

static void test_env(void **state)
{
    hgs3_creds c;
    (void)state;
    apr_env_delete("AWS_ACCESS_KEY_ID", pool);
    apr_env_delete("AWS_SECRET_ACCESS_KEY", pool);
    apr_env_delete("AWS_SESSION_TOKEN", pool);
    assert_int_equal(hgs3_creds_from_env(&c, pool), HGS3_ENOTFOUND);
    apr_env_set("AWS_ACCESS_KEY_ID", "AKIDENV", pool);
    assert_int_equal(hgs3_creds_from_env(&c, pool), HGS3_ECONFIG);
    assert_null(c.access_key);
    apr_env_set("AWS_SECRET_ACCESS_KEY", "envsecret", pool);
    assert_int_equal(hgs3_creds_from_env(&c, pool), APR_SUCCESS);
    assert_string_equal(c.access_key, "AKIDENV");
    assert_string_equal(c.secret_key, "envsecret");
    assert_null(c.session_token);
    apr_env_set("AWS_SESSION_TOKEN", "envtoken", pool);
    assert_int_equal(hgs3_creds_from_env(&c, pool), APR_SUCCESS);
    assert_string_equal(c.session_token, "envtoken");
}

/* statics > file > environment, each source taken whole. */
static void test_resolve_order(void **state)
{
    hgs3_creds c, st = {"AKIDSTATIC", "staticsecret", NULL};
    const char *path = write_temp(sample), *src = NULL;
    (void)state;

    apr_env_set("AWS_ACCESS_KEY_ID", "AKIDENV", pool);
    apr_env_set("AWS_SECRET_ACCESS_KEY", "envsecret", pool);
    apr_env_set("AWS_SESSION_TOKEN", "envtoken", pool);

    assert_int_equal(hgs3_creds_resolve(&c, pool, &st, path, "ci", &src, NULL), APR_SUCCESS);
    assert_string_equal(src, "static");
    assert_string_equal(c.access_key, "AKIDSTATIC");
    assert_null(c.session_token); /* not the environment's token */

    assert_int_equal(hgs3_creds_resolve(&c, pool, NULL, path, "default", &src, NULL), APR_SUCCESS);
    assert_string_equal(src, "file");
    assert_string_equal(c.access_key, "AKIDDEFAULT");
    assert_null(c.session_token);

    assert_int_equal(hgs3_creds_resolve(&c, pool, NULL, NULL, NULL, &src, NULL), APR_SUCCESS);
    assert_string_equal(src, "environment");
    assert_string_equal(c.access_key, "AKIDENV");
    assert_string_equal(c.session_token, "envtoken");

    /* A named profile that is missing is an error, not a fall-through. */
    assert_int_equal(hgs3_creds_resolve(&c, pool, NULL, path, "nope", &src, NULL), HGS3_ENOTFOUND);
    assert_string_equal(src, "file");
    assert_null(c.access_key);

    st.secret_key = "";
    assert_int_equal(hgs3_creds_resolve(&c, pool, &st, NULL, NULL, &src, NULL), HGS3_ECONFIG);
    apr_file_remove(path, pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_profile),
        cmocka_unit_test(test_first_separator),
        cmocka_unit_test(test_named_profiles),
        cmocka_unit_test(test_missing_and_incomplete),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_length_bounded),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_resolve_order),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
