/* test_conftab.c: the directive table's machinery (hgs3_conftab) and the
 * syntax of configuration values (hgs3_confval). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "hgs3_conftab.h"

typedef struct {
    int flag;
    apr_off_t size;
    const char *name;
    int a, b;
    apr_array_header_t *list;
} conf_t;

#define F(fld) HGS3_FIELD(conf_t, fld)

static const hgs3_conf_row R_FLAG = {
    .parse = hgs3_conf_parse_enum, .f = {F(flag)}, .what = "off|on", .def = {1}};
static const hgs3_conf_row R_SIZE = {.parse = hgs3_conf_parse_size,
                                     .f = {F(size)},
                                     .min = 1,
                                     .max = (apr_int64_t)1 << 30,
                                     .def = {65536}};
static const hgs3_conf_row R_NAME = {
    .parse = hgs3_conf_parse_string, .f = {F(name)}, .sdef = "dflt", .check = hgs3_confval_region};
static const hgs3_conf_row R_PAIR = {.parse = hgs3_conf_parse_pair,
                                     .f = {F(a), F(b)},
                                     .what = "seconds",
                                     .min = 1,
                                     .max = 100,
                                     .def = {3, 30}};
static const hgs3_conf_row R_LIST = {
    .parse = hgs3_conf_parse_list, .f = {F(list)}, .check = hgs3_confval_command};
static const hgs3_conf_row *const ROWS[] = {&R_FLAG, &R_SIZE, &R_NAME, &R_PAIR, &R_LIST};
#define NROWS (sizeof(ROWS) / sizeof(ROWS[0]))

static apr_pool_t *pool;

static const char *parse(conf_t *c, const hgs3_conf_row *row, int argc, const char *const *argv)
{
    hgs3_conf_ctx ctx = {pool, "Directive", NULL};
    return row->parse(&ctx, row, c, argc, argv);
}

static const char *parse1(conf_t *c, const hgs3_conf_row *row, const char *arg)
{
    return parse(c, row, 1, &arg);
}

static void test_init_unset_and_defaults(void **state)
{
    conf_t c, d;
    size_t i;
    (void)state;
    memset(&c, 0x55, sizeof(c));
    for (i = 0; i < NROWS; ++i) {
        hgs3_conf_init(&c, ROWS[i], 0);
        hgs3_conf_init(&d, ROWS[i], 1);
        assert_false(hgs3_conf_given(&c, ROWS[i]));
    }
    assert_int_equal(c.flag, -1);
    assert_int_equal(c.size, -1);
    assert_null(c.name);
    assert_int_equal(c.b, -1);
    assert_null(c.list);
    assert_int_equal(d.flag, 1);
    assert_int_equal(d.size, 65536);
    assert_string_equal(d.name, "dflt");
    assert_int_equal(d.a, 3);
    assert_int_equal(d.b, 30);
}

static void test_parse_values(void **state)
{
    conf_t c;
    const char *two[] = {"5", "50"}, *cmds[] = {"getbundle", "heads"};
    (void)state;
    assert_null(parse1(&c, &R_FLAG, "OFF"));
    assert_int_equal(c.flag, 0);
    assert_null(parse1(&c, &R_FLAG, "on"));
    assert_int_equal(c.flag, 1);
    assert_null(parse1(&c, &R_SIZE, "64KiB"));
    assert_int_equal(c.size, 65536);
    assert_null(parse1(&c, &R_SIZE, "1g"));
    assert_int_equal(c.size, (apr_off_t)1 << 30);
    assert_null(parse1(&c, &R_NAME, "eu-west-1"));
    assert_string_equal(c.name, "eu-west-1");
    assert_null(parse(&c, &R_PAIR, 2, two));
    assert_int_equal(c.a, 5);
    assert_int_equal(c.b, 50);
    assert_null(parse(&c, &R_LIST, 2, cmds));
    assert_int_equal(c.list->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(c.list, 1, const char *), "heads");
}

/* Every refusal starts with the directive's name. */
static void test_refusals(void **state)
{
    conf_t c;
    const char *one[] = {"5"}, *bad[] = {"5", "101"}, *cmds[] = {"ok", "not ok"};
    const char *const cases[][2] = {{"maybe", "flag"}, {"12Q", "size"}, {"0", "size"},
                                    {"2G", "size"},    {"K", "size"},   {"us east", "name"}};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        const hgs3_conf_row *row = cases[i][1][0] == 'f'   ? &R_FLAG
                                   : cases[i][1][0] == 's' ? &R_SIZE
                                                           : &R_NAME;
        const char *err = parse1(&c, row, cases[i][0]);
        assert_non_null(err);
        assert_memory_equal(err, "Directive: ", 11);
    }
    assert_non_null(parse(&c, &R_PAIR, 1, one));
    assert_non_null(parse(&c, &R_PAIR, 2, bad));
    assert_non_null(parse(&c, &R_LIST, 0, cmds));
    assert_non_null(parse(&c, &R_LIST, 2, cmds));
}

static void test_given_and_copy(void **state)
{
    conf_t a, b;
    (void)state;
    hgs3_conf_init(&a, &R_PAIR, 0);
    hgs3_conf_init(&b, &R_PAIR, 0);
    assert_null(parse1(&a, &R_SIZE, "1"));
    assert_false(hgs3_conf_given(&a, &R_PAIR));
    assert_true(hgs3_conf_given(&a, &R_SIZE));
    a.a = 7;
    a.b = 9;
    assert_true(hgs3_conf_given(&a, &R_PAIR));
    hgs3_conf_copy(&b, &a, &R_PAIR);
    assert_int_equal(b.a, 7);
    assert_int_equal(b.b, 9);
}

static void test_confval(void **state)
{
    apr_int64_t v;
    const char *msg = NULL;
    (void)state;
    assert_int_equal(hgs3_confval_size(&v, "5T", 0, APR_INT64_MAX, pool, &msg), APR_SUCCESS);
    assert_true(v == (apr_int64_t)5 << 40);
    assert_int_equal(hgs3_confval_size(&v, "9223372036854775807K", 0, APR_INT64_MAX, pool, &msg),
                     APR_EINVAL);
    assert_int_equal(hgs3_confval_size(&v, "-1", 0, 10, pool, &msg), APR_EINVAL);
    assert_int_equal(hgs3_confval_size(&v, "1KBx", 0, 1 << 20, pool, &msg), APR_EINVAL);
    assert_int_equal(hgs3_confval_int(&v, "5m", 0, 10, "seconds", pool, &msg), APR_EINVAL);
    assert_non_null(strstr(msg, "seconds"));
    assert_int_equal(hgs3_confval_key_prefix(pool, "/x", &msg), APR_EINVAL);
    assert_int_equal(hgs3_confval_key_prefix(pool, "", &msg), APR_SUCCESS);
    assert_int_equal(hgs3_confval_secret(pool, "sec ret", &msg), APR_EINVAL);
    assert_null(strstr(msg, "sec ret")); /* a secret is never quoted */
    assert_int_equal(hgs3_confval_key_id(pool, "test:tester", &msg), APR_SUCCESS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_unset_and_defaults),
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_given_and_copy),
        cmocka_unit_test(test_confval),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
