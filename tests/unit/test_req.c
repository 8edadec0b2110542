/* test_req.c: request normalization (hgs3_req). */
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "hgs3_err.h"
#include "hgs3_req.h"

typedef struct fx {
    apr_pool_t *p;
    apr_table_t *h;
    hgs3_req_limits lim;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    apr_pool_create(&f->p, NULL);
    f->h = apr_table_make(f->p, 8);
    hgs3_req_limits_init(&f->lim);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    apr_pool_destroy(f->p);
    free(f);
    return 0;
}

static apr_status_t get(fx *f, const char *query, hgs3_req **preq)
{
    hgs3_req *dummy;
    return hgs3_req_parse(preq ? preq : &dummy, f->p, "GET", query, f->h, NULL, 0, &f->lim);
}

static const hgs3_req_arg *arg_at(const hgs3_req *req, int i)
{
    return &APR_ARRAY_IDX(req->args, i, hgs3_req_arg);
}

static void test_basic_get(void **state)
{
    fx *f = *state;
    hgs3_req *req = NULL;

    apr_table_add(f->h, "Host", "example");
    apr_table_add(f->h, "X-HgArg-1", "bookmarks=1&bundlecaps=HG20&cg=1&");
    apr_table_add(f->h, "X-HgArg-2", "common=0000&heads=abcd");
    apr_table_add(f->h, "X-HgProto-1", "0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull");
    assert_int_equal(get(f, "cmd=getbundle", &req), APR_SUCCESS);
    assert_non_null(req);
    assert_string_equal(req->method, "GET");
    assert_string_equal(req->cmd, "getbundle");
    assert_int_equal(req->args->nelts, 0);
    assert_string_equal(req->hgargs, "bookmarks=1&bundlecaps=HG20&cg=1&common=0000&heads=abcd");
    assert_int_equal(req->hgargs_len, strlen(req->hgargs));
    assert_string_equal(req->proto, "0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull");
    assert_false(req->has_post);
}

static void test_no_headers(void **state)
{
    fx *f = *state;
    hgs3_req *req = NULL;
    assert_int_equal(get(f, "cmd=capabilities", &req), APR_SUCCESS);
    assert_string_equal(req->hgargs, "");
    assert_int_equal(req->hgargs_len, 0);
    assert_string_equal(req->proto, "");
    assert_int_equal(req->proto_len, 0);
}

static void test_query_cmd(void **state)
{
    fx *f = *state;
    hgs3_req *req = NULL;
    const char *cmd = NULL;

    assert_int_equal(get(f, NULL, &req), APR_ENOENT);
    assert_null(req);
    assert_int_equal(get(f, "", NULL), APR_ENOENT);
    assert_int_equal(get(f, "style=raw", NULL), APR_ENOENT);
    assert_int_equal(get(f, "cmd=getbundle&cmd=getbundle", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=heads&cmd=getbundle", NULL), HGS3_EMALFORMED);
    /* the name is decoded before it is compared, as Python does */
    assert_int_equal(get(f, "cmd=heads&c%6Dd=getbundle", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "c%6dd=getbundle", &req), APR_SUCCESS);
    assert_string_equal(req->cmd, "getbundle");
    assert_int_equal(get(f, "cmd=get%62undle", &req), APR_SUCCESS);
    assert_string_equal(req->cmd, "getbundle");
    assert_int_equal(get(f, "cmd=stream_out", &req), APR_SUCCESS);
    /* invalid characters in the command */
    assert_int_equal(get(f, "cmd=", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=get+bundle", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=get%20bundle", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=get%00bundle", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=a/b", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=getbundle%0a", NULL), HGS3_EMALFORMED);
    assert_int_equal(
        get(f, "cmd=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL),
        HGS3_EMALFORMED);
    /* hgs3_req_command agrees */
    assert_int_equal(hgs3_req_command(&cmd, f->p, "x=1&cmd=getbundle", &f->lim), APR_SUCCESS);
    assert_string_equal(cmd, "getbundle");
    assert_int_equal(hgs3_req_command(&cmd, f->p, "cmd=a&cmd=b", &f->lim), HGS3_EMALFORMED);
    assert_null(cmd);
    assert_int_equal(hgs3_req_command(&cmd, f->p, NULL, &f->lim), APR_ENOENT);
}

/* The handler's two steps: the query once (start), the rest once (finish),
 * the same request as hgs3_req_parse() gives. */
static void test_start_finish(void **state)
{
    fx *f = *state;
    hgs3_req *req = NULL, *whole = NULL;

    apr_table_set(f->h, "X-HgArg-1", "heads=ab");
    assert_int_equal(hgs3_req_start(&req, f->p, "x=1&cmd=getbundle&a=2", &f->lim), APR_SUCCESS);
    assert_string_equal(req->cmd, "getbundle");
    assert_int_equal(req->args->nelts, 2);
    assert_null(req->method);
    assert_int_equal(hgs3_req_finish(req, f->p, "GET", f->h, NULL, 0, &f->lim), APR_SUCCESS);
    assert_int_equal(get(f, "x=1&cmd=getbundle&a=2", &whole), APR_SUCCESS);
    assert_string_equal(req->method, whole->method);
    assert_string_equal(req->hgargs, whole->hgargs);
    assert_string_equal(APR_ARRAY_IDX(req->args, 0, hgs3_req_arg).name, "a");
    /* finished once only */
    assert_int_equal(hgs3_req_finish(req, f->p, "GET", f->h, NULL, 0, &f->lim), APR_EINVAL);
    /* a failed start leaves nothing; finish refuses what parse refuses */
    assert_int_equal(hgs3_req_start(&req, f->p, "cmd=a&cmd=b", &f->lim), HGS3_EMALFORMED);
    assert_null(req);
    assert_int_equal(hgs3_req_start(&req, f->p, "cmd=getbundle", &f->lim), APR_SUCCESS);
    assert_int_equal(hgs3_req_finish(req, f->p, "HEAD", f->h, NULL, 0, &f->lim), APR_ENOTIMPL);
    assert_int_equal(hgs3_req_finish(NULL, f->p, "GET", f->h, NULL, 0, &f->lim), APR_EINVAL);
}

static void test_query_chars(void **state)
{
    fx *f = *state;
    assert_int_equal(get(f, "cmd=getbundle&a=%zz", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=getbundle&a=%4", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=getbundle&a=%", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=getbundle;a=1", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=getbundle&a=b c", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=getbundle&a=b\tc", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=getbundle&a=b\r\nc", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=getbundle&a=\xc3\xa9", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=getbundle&a=\x7f", NULL), HGS3_EMALFORMED);
    assert_int_equal(get(f, "cmd=getbundle&static=style.css", NULL), APR_ENOTIMPL);
}

static void test_query_args_sorted(void **state)
{
    fx *f = *state;
    hgs3_req *req = NULL;

    assert_int_equal(get(f, "b=1&&cmd=getbundle&a=2&a+b=x%2By&a=1&e&=z&", &req), APR_SUCCESS);
    assert_int_equal(req->args->nelts, 6);
    /* "" < "a" < "a b" < "b" < "e"; the two "a" keep their query order */
    assert_int_equal(arg_at(req, 0)->name_len, 0);
    assert_memory_equal(arg_at(req, 0)->value, "z", 1);
    assert_string_equal(arg_at(req, 1)->name, "a");
    assert_string_equal(arg_at(req, 1)->value, "2");
    assert_string_equal(arg_at(req, 2)->name, "a");
    assert_string_equal(arg_at(req, 2)->value, "1");
    assert_string_equal(arg_at(req, 3)->name, "a b");
    assert_string_equal(arg_at(req, 3)->value, "x+y");
    assert_string_equal(arg_at(req, 4)->name, "b");
    assert_string_equal(arg_at(req, 5)->name, "e");
    assert_int_equal(arg_at(req, 5)->value_len, 0);
    /* a decoded NUL is kept, with its length */
    assert_int_equal(get(f, "cmd=getbundle&n=a%00b", &req), APR_SUCCESS);
    assert_int_equal(arg_at(req, 0)->value_len, 3);
    assert_memory_equal(arg_at(req, 0)->value, "a\0b", 3);
}

static void test_query_bounds(void **state)
{
    fx *f = *state;
    char *q;
    int i;

    q = apr_pstrcat(f->p, "cmd=getbundle&a=", apr_pstrdup(f->p, ""), NULL);
    for (i = 0; i < 300; ++i) {
        q = apr_pstrcat(f->p, q, "&x=1", NULL);
    }
    assert_int_equal(get(f, q, NULL), HGS3_ETOOBIG);
    f->lim.max_query_args = 1000;
    assert_int_equal(get(f, q, NULL), APR_SUCCESS);
    f->lim.max_query = 100;
    assert_int_equal(get(f, q, NULL), HGS3_ETOOBIG);
}

static void test_hgarg_malformed(void **state)
{
    static const struct {
        const char *n1, *v1, *n2, *v2;
        apr_status_t want;
    } cases[] = {
        {"X-HgArg-1", "a", "X-HgArg-3", "c", HGS3_EMALFORMED},  /* gap */
        {"X-HgArg-2", "b", NULL, NULL, HGS3_EMALFORMED},        /* gap at 1 */
        {"X-HgArg-1", "a", "X-HgArg-1", "a", HGS3_EMALFORMED},  /* duplicate */
        {"X-HgArg-1", "a", "x-hgarg-1", "b", HGS3_EMALFORMED},  /* duplicate, other case */
        {"X-HgArg-1", "a", "X-HgArg-0", "b", HGS3_EMALFORMED},  /* zero */
        {"X-HgArg-1", "a", "X-HgArg-02", "b", HGS3_EMALFORMED}, /* leading zero */
        {"X-HgArg-01", "a", NULL, NULL, HGS3_EMALFORMED},
        {"X-HgArg-1", "a", "X-HgArg-x", "b", HGS3_EMALFORMED}, /* non-numeric */
        {"X-HgArg-1", "a", "X-HgArg-", "b", HGS3_EMALFORMED},
        {"X-HgArg-1", "a", "X-HgArg-2a", "b", HGS3_EMALFORMED},
        {"X-HgArg-1", "a", "X-HgArg-+2", "b", HGS3_EMALFORMED},
        {"X-HgArg-1", "a", "X-HgArg- 2", "b", HGS3_EMALFORMED},
        {"X-HgArg-1", "a", "X-HgArg-1001", "b", HGS3_ETOOBIG}, /* beyond the bound */
        {"X-HgArg-1", "a", "X-HgArg-99999999999999999999999", "b", HGS3_ETOOBIG},
        {"X_HgArg_1", "a", NULL, NULL, HGS3_EMALFORMED}, /* CGI would alias it */
        {"X-HgArg_1", "a", NULL, NULL, HGS3_EMALFORMED},
        {"X-HgArg-1", "a\r\nb", NULL, NULL, HGS3_EMALFORMED},
        {"X-HgArg-1", "a\nb", NULL, NULL, HGS3_EMALFORMED},
        {"X-HgArg-1", "a\rb", NULL, NULL, HGS3_EMALFORMED},
        {"X-HgArg-1", "a\tb", NULL, NULL, HGS3_EMALFORMED},
        {"X-HgArg-1", "a", "X-HgArg-2", "\x01", HGS3_EMALFORMED},
        {"X-HgProto-1", "0.1", "X-HgProto-1", "0.2", HGS3_EMALFORMED},
        {"X-HgProto-2", "0.1", NULL, NULL, HGS3_EMALFORMED},
        {"X-HgProto-1", "0.1\n", NULL, NULL, HGS3_EMALFORMED},
        {"X-HgProto-17", "0.1", NULL, NULL, HGS3_ETOOBIG},
    };
    fx *f = *state;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        hgs3_req *req = (hgs3_req *)1;
        apr_table_clear(f->h);
        apr_table_add(f->h, cases[i].n1, cases[i].v1);
        if (cases[i].n2) {
            apr_table_add(f->h, cases[i].n2, cases[i].v2);
        }
        print_message("case %zu: %s / %s\n", i, cases[i].n1, cases[i].n2 ? cases[i].n2 : "-");
        assert_int_equal(get(f, "cmd=getbundle", &req), cases[i].want);
        assert_null(req);
    }
}

static void test_hgarg_order_and_case(void **state)
{
    fx *f = *state;
    hgs3_req *req = NULL;
    char name[32];
    int i;

    /* numeric order, not table order nor string order (10 after 9) */
    for (i = 12; i >= 1; --i) {
        apr_snprintf(name, sizeof(name), i % 2 ? "x-hgarg-%d" : "X-HGARG-%d", i);
        apr_table_add(f->h, name, apr_psprintf(f->p, "%c", 'a' + i - 1));
    }
    assert_int_equal(get(f, "cmd=getbundle", &req), APR_SUCCESS);
    assert_string_equal(req->hgargs, "abcdefghijkl");
    /* X-HgArgs-Post is not X-HgArg-*: it is refused on GET for its own reason */
    apr_table_clear(f->h);
    apr_table_add(f->h, "X-HgArgsX", "1");
    apr_table_add(f->h, "X-HgArg", "1");
    assert_int_equal(get(f, "cmd=getbundle", &req), APR_SUCCESS);
    assert_string_equal(req->hgargs, "");
}

/* The X-HgArg-N slots grow with the highest N seen: every order of arrival,
 * every size up to the limit, with the same gap, duplicate and bound rules
 * as anywhere else. */
static void add_hgargs(fx *f, int from, int to, int step)
{
    int i;
    for (i = from; step > 0 ? i <= to : i >= to; i += step) {
        apr_table_add(f->h, apr_psprintf(f->p, "X-HgArg-%d", i), apr_psprintf(f->p, "<%d>", i));
    }
}

static const char *joined(fx *f, int n)
{
    const char *out = "";
    int i;
    for (i = 1; i <= n; ++i) {
        out = apr_psprintf(f->p, "%s<%d>", out, i);
    }
    return out;
}

static void test_hgarg_slots(void **state)
{
    static const int sizes[] = {1, 7, 8, 9, 16, 17, 100, 999, 1000};
    fx *f = *state;
    hgs3_req *req = NULL;
    size_t k;

    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); ++k) {
        int n = sizes[k];
        print_message("%d slots\n", n);
        /* ascending, descending, and highest first then the rest */
        apr_table_clear(f->h);
        add_hgargs(f, 1, n, 1);
        assert_int_equal(get(f, "cmd=getbundle", &req), APR_SUCCESS);
        assert_string_equal(req->hgargs, joined(f, n));
        assert_int_equal(req->hgargs_len, strlen(joined(f, n)));
        apr_table_clear(f->h);
        add_hgargs(f, n, 1, -1);
        assert_int_equal(get(f, "cmd=getbundle", &req), APR_SUCCESS);
        assert_string_equal(req->hgargs, joined(f, n));
        apr_table_clear(f->h);
        add_hgargs(f, 1, n / 2, 1);
        add_hgargs(f, n, n / 2 + 1, -1);
        assert_int_equal(get(f, "cmd=getbundle", &req), APR_SUCCESS);
        assert_string_equal(req->hgargs, joined(f, n));
        /* a gap just below the highest */
        if (n > 1) {
            apr_table_clear(f->h);
            add_hgargs(f, 1, n - 2, 1);
            add_hgargs(f, n, n, 1);
            assert_int_equal(get(f, "cmd=getbundle", &req), HGS3_EMALFORMED);
            assert_null(req);
        }
        /* a duplicate, seen after the slots grew past it (one field more:
         * within the 1000-field bound only below 1000) */
        if (n < 1000) {
            apr_table_clear(f->h);
            add_hgargs(f, 1, n, 1);
            add_hgargs(f, 1, 1, 1);
            assert_int_equal(get(f, "cmd=getbundle", &req), HGS3_EMALFORMED);
            apr_table_clear(f->h);
            add_hgargs(f, n, 1, -1);
            add_hgargs(f, n, n, 1);
            assert_int_equal(get(f, "cmd=getbundle", &req), HGS3_EMALFORMED);
        }
    }
    /* only the highest allowed number: a gap, not a bound */
    apr_table_clear(f->h);
    add_hgargs(f, 1000, 1000, 1);
    assert_int_equal(get(f, "cmd=getbundle", &req), HGS3_EMALFORMED);
    apr_table_clear(f->h);
    add_hgargs(f, 1001, 1001, 1);
    assert_int_equal(get(f, "cmd=getbundle", &req), HGS3_ETOOBIG);
    /* a smaller limit bounds the growth the same way */
    f->lim.max_hgargs = 3;
    apr_table_clear(f->h);
    add_hgargs(f, 3, 1, -1);
    assert_int_equal(get(f, "cmd=getbundle", &req), APR_SUCCESS);
    assert_string_equal(req->hgargs, "<1><2><3>");
    add_hgargs(f, 4, 4, 1);
    assert_int_equal(get(f, "cmd=getbundle", &req), HGS3_ETOOBIG);
    f->lim.max_hgargs = 0;
    apr_table_clear(f->h);
    assert_int_equal(get(f, "cmd=getbundle", &req), APR_SUCCESS);
    assert_string_equal(req->hgargs, "");
    add_hgargs(f, 1, 1, 1);
    assert_int_equal(get(f, "cmd=getbundle", &req), HGS3_ETOOBIG);
    /* X-HgProto-N shares the mechanism, with its own limit */
    apr_table_clear(f->h);
    apr_table_add(f->h, "X-HgProto-16", "p");
    apr_table_add(f->h, "X-HgProto-1", "a");
    assert_int_equal(get(f, "cmd=getbundle", &req), HGS3_EMALFORMED);
    apr_table_clear(f->h);
    {
        int i;
        for (i = 16; i >= 1; --i) {
            apr_table_add(f->h, apr_psprintf(f->p, "X-HgProto-%d", i),
                          apr_psprintf(f->p, "%c", 'a' + i - 1));
        }
    }
    assert_int_equal(get(f, "cmd=getbundle", &req), APR_SUCCESS);
    assert_string_equal(req->proto, "abcdefghijklmnop");
}

static void test_header_bounds(void **state)
{
    fx *f = *state;
    char *big;
    int i;

    big = apr_palloc(f->p, 9000);
    memset(big, 'a', 8999);
    big[8999] = '\0';
    apr_table_add(f->h, "X-HgArg-1", big);
    assert_int_equal(get(f, "cmd=getbundle", NULL), HGS3_ETOOBIG);
    big[8190] = '\0';
    assert_int_equal(get(f, "cmd=getbundle", NULL), HGS3_ETOOBIG);
    apr_table_clear(f->h);
    apr_table_add(f->h, "X-HgArg-1", big);
    assert_int_equal(get(f, "cmd=getbundle", NULL), APR_SUCCESS);
    /* total header bytes */
    f->lim.max_header_bytes = 8000;
    assert_int_equal(get(f, "cmd=getbundle", NULL), HGS3_ETOOBIG);
    f->lim.max_header_bytes = 256 * 1024;
    /* header count */
    apr_table_clear(f->h);
    for (i = 0; i < 1001; ++i) {
        apr_table_add(f->h, apr_psprintf(f->p, "X-Other-%d", i), "v");
    }
    assert_int_equal(get(f, "cmd=getbundle", NULL), HGS3_ETOOBIG);
    /* concatenated proto over its bound */
    apr_table_clear(f->h);
    big[5000] = '\0';
    apr_table_add(f->h, "X-HgProto-1", big);
    apr_table_add(f->h, "X-HgProto-2", big);
    assert_int_equal(get(f, "cmd=getbundle", NULL), HGS3_ETOOBIG);
}

static void test_proto_concat(void **state)
{
    fx *f = *state;
    hgs3_req *req = NULL;
    apr_table_add(f->h, "x-hgproto-2", " comp=zstd");
    apr_table_add(f->h, "X-HgProto-1", "0.1 0.2");
    assert_int_equal(get(f, "cmd=getbundle", &req), APR_SUCCESS);
    assert_string_equal(req->proto, "0.1 0.2 comp=zstd");
}

static void post_headers(fx *f, const char *postlen, const char *clen)
{
    apr_table_clear(f->h);
    if (postlen) {
        apr_table_add(f->h, "X-HgArgs-Post", postlen);
    }
    if (clen) {
        apr_table_add(f->h, "Content-Length", clen);
    }
}

static apr_status_t post(fx *f, const char *body, apr_size_t len, hgs3_req **preq)
{
    hgs3_req *dummy;
    return hgs3_req_parse(preq ? preq : &dummy, f->p, "POST", "cmd=getbundle", f->h, body, len,
                          &f->lim);
}

static void test_post(void **state)
{
    fx *f = *state;
    const char *body = "common=00&heads=ab";
    apr_size_t n = strlen(body), plen = 99;
    hgs3_req *req = NULL;

    post_headers(f, "18", "18");
    assert_int_equal(hgs3_req_post_length(f->h, &f->lim, &plen), APR_SUCCESS);
    assert_int_equal(plen, 18);
    assert_int_equal(post(f, body, n, &req), APR_SUCCESS);
    assert_string_equal(req->method, "POST");
    assert_true(req->has_post);
    assert_int_equal(req->post_len, n);
    assert_memory_equal(req->post, body, n);
    assert_string_equal(req->hgargs, "");

    /* not httppostargs: never cached */
    post_headers(f, NULL, "18");
    assert_int_equal(post(f, body, n, NULL), APR_ENOTIMPL);
    post_headers(f, "18", NULL);
    assert_int_equal(post(f, body, n, NULL), APR_ENOTIMPL);
    post_headers(f, "18", "30"); /* more body than arguments: unbundle-like */
    assert_int_equal(post(f, body, n, NULL), APR_ENOTIMPL);
    post_headers(f, "18", "18");
    apr_table_add(f->h, "Transfer-Encoding", "chunked");
    assert_int_equal(post(f, body, n, NULL), APR_ENOTIMPL);
    /* body not as announced */
    post_headers(f, "18", "18");
    assert_int_equal(post(f, body, n - 1, NULL), HGS3_EMALFORMED);
    assert_int_equal(post(f, NULL, 0, NULL), HGS3_EMALFORMED);
    assert_int_equal(post(f, "common=00&heads=a\n", n, NULL), HGS3_EMALFORMED);
    /* bad X-HgArgs-Post values */
    {
        static const char *bad[] = {"0", "+18", " 18", "018", "18 ", "0x12", "abc", "", "-1"};
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
            post_headers(f, bad[i], "18");
            assert_int_equal(hgs3_req_post_length(f->h, &f->lim, &plen), HGS3_EMALFORMED);
            assert_int_equal(plen, 0);
            assert_int_equal(post(f, body, n, NULL), HGS3_EMALFORMED);
        }
    }
    /* over the bound */
    post_headers(f, "1048577", "1048577");
    assert_int_equal(hgs3_req_post_length(f->h, &f->lim, &plen), HGS3_ETOOBIG);
    assert_int_equal(post(f, body, n, NULL), HGS3_ETOOBIG);
    f->lim.max_post = 10;
    post_headers(f, "18", "18");
    assert_int_equal(post(f, body, n, NULL), HGS3_ETOOBIG);
    f->lim.max_post = 1024 * 1024;
    /* duplicate */
    post_headers(f, "18", "18");
    apr_table_add(f->h, "x-hgargs-post", "18");
    assert_int_equal(hgs3_req_post_length(f->h, &f->lim, &plen), HGS3_EMALFORMED);
    assert_int_equal(post(f, body, n, NULL), HGS3_EMALFORMED);
    /* POST with X-HgArg-*: hg never sends both */
    post_headers(f, "18", "18");
    apr_table_add(f->h, "X-HgArg-1", "a=1");
    assert_int_equal(post(f, body, n, NULL), HGS3_EMALFORMED);
    /* X-HgArgs-Post on GET */
    post_headers(f, "18", "18");
    assert_int_equal(get(f, "cmd=getbundle", NULL), HGS3_EMALFORMED);
    /* a GET with a body */
    post_headers(f, NULL, NULL);
    assert_int_equal(hgs3_req_parse(&req, f->p, "GET", "cmd=getbundle", f->h, body, n, &f->lim),
                     HGS3_EMALFORMED);
    /* no header at all */
    assert_int_equal(hgs3_req_post_length(f->h, &f->lim, &plen), APR_SUCCESS);
    assert_int_equal(plen, 0);
}

static void test_methods(void **state)
{
    fx *f = *state;
    hgs3_req *req = NULL;
    static const char *bad[] = {"HEAD", "PUT", "get", "OPTIONS", ""};
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        assert_int_equal(
            hgs3_req_parse(&req, f->p, bad[i], "cmd=getbundle", f->h, NULL, 0, &f->lim),
            APR_ENOTIMPL);
    }
    assert_int_equal(hgs3_req_parse(&req, f->p, NULL, "cmd=getbundle", f->h, NULL, 0, &f->lim),
                     APR_EINVAL);
}

static void test_forward_size(void **state)
{
    fx *f = *state;
    assert_int_equal(hgs3_req_forward_size(f->h), 0);
    apr_table_add(f->h, "Host", "h");                 /* 4 + 1 + 4 */
    apr_table_add(f->h, "X-HgArg-1", "0123456789");   /* 9 + 10 + 4 */
    apr_table_add(f->h, "Authorization", "Basic xx"); /* 13 + 8 + 4 */
    assert_int_equal(hgs3_req_forward_size(f->h), 9 + 23 + 25);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_cmd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_chars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_args_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hgarg_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hgarg_order_and_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hgarg_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proto_concat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_size, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
