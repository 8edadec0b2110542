/* test_key.c: the cache key (hgs3_key) over real requests (hgs3_req) and a
 * real repository's fingerprint (hgs3_repo). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "hgs3_err.h"
#include "hgs3_crypto.h"
#include "hgs3_req.h"
#include "hgs3_repo.h"
#include "hgs3_key.h"

typedef struct fx {
    apr_pool_t *p;
    char base[64];
    hgs3_req_limits lim;
    hgs3_repo *repo;
    hgs3_req *req;
    const char *loc; /* the mapping's Location, "/hg" unless a test changes it */
} fx;

static void write_file(const char *path, const char *content)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
}

static void make_repo(fx *f, const char *name)
{
    const char *dir = apr_pstrcat(f->p, f->base, "/", name, NULL);
    mkdir(dir, 0755);
    mkdir(apr_pstrcat(f->p, dir, "/.hg", NULL), 0755);
    mkdir(apr_pstrcat(f->p, dir, "/.hg/store", NULL), 0755);
    write_file(apr_pstrcat(f->p, dir, "/.hg/requires", NULL), "revlogv1\nstore\n");
    write_file(apr_pstrcat(f->p, dir, "/.hg/store/00changelog.i", NULL), "changelog");
    write_file(apr_pstrcat(f->p, dir, "/.hg/store/phaseroots", NULL), "1 abcd\n");
    write_file(apr_pstrcat(f->p, dir, "/.hg/bookmarks", NULL), "abcd main\n");
}

/* The request hg 6.3 sends for a clone, split over two X-HgArg headers. */
static apr_table_t *base_headers(fx *f)
{
    apr_table_t *h = apr_table_make(f->p, 8);
    apr_table_add(h, "Host", "hg.example");
    apr_table_add(h, "Accept", "application/mercurial-0.1");
    apr_table_add(h, "X-HgArg-1", "bookmarks=1&bundlecaps=HG20&cg=1&common=0000");
    apr_table_add(h, "X-HgArg-2", "&heads=abcd&listkeys=phases");
    apr_table_add(h, "X-HgProto-1", "0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull");
    return h;
}

static hgs3_req *parse(fx *f, const char *method, const char *query, apr_table_t *h,
                       const char *body)
{
    hgs3_req *req = NULL;
    assert_int_equal(
        hgs3_req_parse(&req, f->p, method, query, h, body, body ? strlen(body) : 0, &f->lim),
        APR_SUCCESS);
    return req;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    apr_pool_create(&f->p, NULL);
    hgs3_req_limits_init(&f->lim);
    f->loc = "/hg";
    strcpy(f->base, "/tmp/hgs3-test-key-XXXXXX");
    if (!mkdtemp(f->base)) {
        return -1;
    }
    make_repo(f, "r");
    make_repo(f, "other");
    if (hgs3_repo_find(&f->repo, f->p, f->base, "r") != APR_SUCCESS ||
        hgs3_repo_fingerprint(f->repo, f->p) != APR_SUCCESS) {
        return -1;
    }
    f->req = parse(f, "GET", "cmd=getbundle&x=1", base_headers(f), NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    apr_snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->base);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", f->base);
    }
    apr_pool_destroy(f->p);
    free(f);
    return 0;
}

static const char *key(fx *f, const char *salt, const hgs3_repo *repo, const hgs3_req *req,
                       const char *user, int share)
{
    char *out = apr_palloc(f->p, HGS3_KEY_HEX_LEN + 1);
    assert_int_equal(hgs3_key_compute(out, f->p, salt, f->loc, repo, req, user, share),
                     APR_SUCCESS);
    assert_int_equal(strlen(out), HGS3_KEY_HEX_LEN);
    return out;
}

/* The baseline key: salt "s1", repository r, the clone request, alice. */
static const char *base_key(fx *f)
{
    return key(f, "s1", f->repo, f->req, "alice", 0);
}

static void test_same_request_same_key(void **state)
{
    fx *f = *state;
    const char *k = base_key(f);
    apr_table_t *h;
    size_t i;

    for (i = 0; i < HGS3_KEY_HEX_LEN; ++i) {
        assert_true((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f'));
    }
    assert_string_equal(k, base_key(f));
    /* the same request parsed again, headers in another order and case, and
     * headers that are not part of the key changed */
    h = apr_table_make(f->p, 8);
    apr_table_add(h, "x-hgproto-1", "0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull");
    apr_table_add(h, "x-hgarg-2", "&heads=abcd&listkeys=phases");
    apr_table_add(h, "User-Agent", "mercurial/proto-1.0 (Mercurial 6.3.2)");
    apr_table_add(h, "X-HGARG-1", "bookmarks=1&bundlecaps=HG20&cg=1&common=0000");
    assert_string_equal(
        k, key(f, "s1", f->repo, parse(f, "GET", "x=1&cmd=getbundle", h, NULL), "alice", 0));
    /* a new fingerprint of an unchanged repository */
    {
        hgs3_repo *again = NULL;
        assert_int_equal(hgs3_repo_find(&again, f->p, f->base, "/r/"), APR_SUCCESS);
        assert_int_equal(hgs3_repo_fingerprint(again, f->p), APR_SUCCESS);
        assert_string_equal(k, key(f, "s1", again, f->req, "alice", 0));
    }
}

static void test_hgarg_split(void **state)
{
    fx *f = *state;
    const char *all = "bookmarks=1&bundlecaps=HG20&cg=1&common=0000&heads=abcd&listkeys=phases";
    const char *k = base_key(f);
    apr_size_t n = strlen(all), cut;

    /* one header, and every two-way split */
    for (cut = 0; cut <= n; cut += 7) {
        apr_table_t *h = apr_table_make(f->p, 4);
        apr_table_add(h, "X-HgProto-1", "0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull");
        if (cut == 0) {
            apr_table_add(h, "X-HgArg-1", all);
        } else {
            apr_table_add(h, "X-HgArg-1", apr_pstrmemdup(f->p, all, cut));
            apr_table_add(h, "X-HgArg-2", all + cut);
        }
        assert_string_equal(
            k, key(f, "s1", f->repo, parse(f, "GET", "cmd=getbundle&x=1", h, NULL), "alice", 0));
    }
    /* one byte per header */
    {
        apr_table_t *h = apr_table_make(f->p, 80);
        apr_size_t i;
        apr_table_add(h, "X-HgProto-1", "0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull");
        for (i = 0; i < n; ++i) {
            apr_table_add(h, apr_psprintf(f->p, "X-HgArg-%d", (int)i + 1),
                          apr_pstrmemdup(f->p, all + i, 1));
        }
        assert_string_equal(
            k, key(f, "s1", f->repo, parse(f, "GET", "cmd=getbundle&x=1", h, NULL), "alice", 0));
    }
    /* the proto split too */
    {
        apr_table_t *h = apr_table_make(f->p, 4);
        apr_table_add(h, "X-HgArg-1", all);
        apr_table_add(h, "X-HgProto-1", "0.1 0.2 comp=zstd,");
        apr_table_add(h, "X-HgProto-2", "zlib,none,bzip2 partial-pull");
        assert_string_equal(
            k, key(f, "s1", f->repo, parse(f, "GET", "cmd=getbundle&x=1", h, NULL), "alice", 0));
    }
}

static void test_query_normalized(void **state)
{
    fx *f = *state;
    apr_table_t *h = base_headers(f);
    const char *k1 =
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&b=2&a=1", h, NULL), NULL, 0);

    assert_string_equal(
        k1, key(f, "", f->repo, parse(f, "GET", "a=1&b=2&cmd=getbundle", h, NULL), NULL, 0));
    assert_string_equal(
        k1,
        key(f, "", f->repo, parse(f, "GET", "b=2&&cmd=get%62undle&%61=%31&", h, NULL), NULL, 0));
    /* repeated names: hgweb takes the first value, so order matters */
    assert_string_not_equal(
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&a=1&a=2", h, NULL), NULL, 0),
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&a=2&a=1", h, NULL), NULL, 0));
    /* name/value boundaries */
    assert_string_not_equal(
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&a=b%3Dc", h, NULL), NULL, 0),
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&a%3Db=c", h, NULL), NULL, 0));
    assert_string_not_equal(
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&a=b%26c=d", h, NULL), NULL, 0),
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&a=b&c=d", h, NULL), NULL, 0));
    /* '+' is a space, "%2B" a plus */
    assert_string_equal(
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&a=b+c", h, NULL), NULL, 0),
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&a=b%20c", h, NULL), NULL, 0));
    assert_string_not_equal(
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&a=b+c", h, NULL), NULL, 0),
        key(f, "", f->repo, parse(f, "GET", "cmd=getbundle&a=b%2Bc", h, NULL), NULL, 0));
}

/* ---- one field at a time -------------------------------------------------- */

static void test_field_salt(void **state)
{
    fx *f = *state;
    const char *k = base_key(f);
    assert_string_not_equal(k, key(f, "s2", f->repo, f->req, "alice", 0));
    assert_string_not_equal(k, key(f, "", f->repo, f->req, "alice", 0));
    /* NULL is the empty salt */
    assert_string_equal(key(f, NULL, f->repo, f->req, "alice", 0),
                        key(f, "", f->repo, f->req, "alice", 0));
}

/* The Location that maps the repository: one repository at two Locations
 * never shares a key; the same Location (on another host) does. */
static void test_field_location(void **state)
{
    fx *f = *state;
    const char *k = base_key(f), *a, *b;

    f->loc = "/hg2";
    assert_string_not_equal(k, base_key(f));
    f->loc = "/";
    assert_string_not_equal(k, base_key(f));
    f->loc = apr_pstrdup(f->p, "/hg");
    assert_string_equal(k, base_key(f));
    /* length-prefixed: salt and location cannot trade bytes */
    f->loc = "/b";
    a = key(f, "a", f->repo, f->req, NULL, 0);
    f->loc = "b";
    b = key(f, "a/", f->repo, f->req, NULL, 0);
    assert_string_not_equal(a, b);
}

static void test_field_repo_dir(void **state)
{
    fx *f = *state;
    hgs3_repo other = *f->repo;
    const char *k = base_key(f);
    /* the same fingerprint bytes, another directory */
    other.dir = apr_pstrcat(f->p, f->base, "/other", NULL);
    assert_string_not_equal(k, key(f, "s1", &other, f->req, "alice", 0));
    /* the real other repository */
    {
        hgs3_repo *o = NULL;
        assert_int_equal(hgs3_repo_find(&o, f->p, f->base, "other"), APR_SUCCESS);
        assert_int_equal(hgs3_repo_fingerprint(o, f->p), APR_SUCCESS);
        assert_string_not_equal(k, key(f, "s1", o, f->req, "alice", 0));
    }
    /* salt and directory are delimited */
    {
        hgs3_repo a = *f->repo, b = *f->repo;
        a.dir = "bc";
        b.dir = "c";
        assert_string_not_equal(key(f, "a", &a, f->req, NULL, 0),
                                key(f, "ab", &b, f->req, NULL, 0));
    }
}

/* Each state file: a change (append, or creation when absent) gives a new
 * key; the key comes back to the same value only when nothing changed. */
static void test_field_fingerprint_files(void **state)
{
    fx *f = *state;
    int i;

    for (i = 0; HGS3_REPO_STATE_FILES[i]; ++i) {
        const char *path = apr_pstrcat(f->p, f->repo->dir, "/", HGS3_REPO_STATE_FILES[i], NULL);
        const char *before, *after;
        FILE *fp;

        print_message("file %s\n", HGS3_REPO_STATE_FILES[i]);
        assert_int_equal(hgs3_repo_fingerprint(f->repo, f->p), APR_SUCCESS);
        before = base_key(f);
        fp = fopen(path, "a");
        assert_non_null(fp);
        fputs("x", fp);
        fclose(fp);
        assert_int_equal(hgs3_repo_fingerprint(f->repo, f->p), APR_SUCCESS);
        after = base_key(f);
        assert_string_not_equal(before, after);
        assert_string_equal(after, base_key(f));
    }
    /* a bookmark move written by rename, same size */
    {
        const char *bm = apr_pstrcat(f->p, f->repo->dir, "/.hg/bookmarks", NULL);
        const char *tmp = apr_pstrcat(f->p, bm, ".tmp", NULL);
        const char *before;
        write_file(bm, "abcd main\n");
        assert_int_equal(hgs3_repo_fingerprint(f->repo, f->p), APR_SUCCESS);
        before = base_key(f);
        write_file(tmp, "dcba main\n");
        assert_int_equal(rename(tmp, bm), 0);
        assert_int_equal(hgs3_repo_fingerprint(f->repo, f->p), APR_SUCCESS);
        assert_string_not_equal(before, base_key(f));
    }
}

static void test_field_method(void **state)
{
    fx *f = *state;
    hgs3_req r = *f->req;
    r.method = "POST";
    assert_string_not_equal(base_key(f), key(f, "s1", f->repo, &r, "alice", 0));
}

static void test_field_cmd(void **state)
{
    fx *f = *state;
    hgs3_req r = *f->req;
    r.cmd = "getbundlE";
    assert_string_not_equal(base_key(f), key(f, "s1", f->repo, &r, "alice", 0));
    assert_string_not_equal(base_key(f),
                            key(f, "s1", f->repo,
                                parse(f, "GET", "cmd=capabilities&x=1", base_headers(f), NULL),
                                "alice", 0));
}

static void test_field_query_args(void **state)
{
    fx *f = *state;
    const char *k = base_key(f);
    assert_string_not_equal(k, key(f, "s1", f->repo,
                                   parse(f, "GET", "cmd=getbundle&x=2", base_headers(f), NULL),
                                   "alice", 0));
    assert_string_not_equal(k, key(f, "s1", f->repo,
                                   parse(f, "GET", "cmd=getbundle&y=1", base_headers(f), NULL),
                                   "alice", 0));
    assert_string_not_equal(
        k,
        key(f, "s1", f->repo, parse(f, "GET", "cmd=getbundle", base_headers(f), NULL), "alice", 0));
    assert_string_not_equal(k, key(f, "s1", f->repo,
                                   parse(f, "GET", "cmd=getbundle&x=1&x=1", base_headers(f), NULL),
                                   "alice", 0));
    assert_string_not_equal(k, key(f, "s1", f->repo,
                                   parse(f, "GET", "cmd=getbundle&x", base_headers(f), NULL),
                                   "alice", 0));
}

static void test_field_hgargs(void **state)
{
    fx *f = *state;
    apr_table_t *h = base_headers(f);
    apr_table_set(h, "X-HgArg-2", "&heads=abce&listkeys=phases");
    assert_string_not_equal(
        base_key(f),
        key(f, "s1", f->repo, parse(f, "GET", "cmd=getbundle&x=1", h, NULL), "alice", 0));
    apr_table_unset(h, "X-HgArg-2");
    assert_string_not_equal(
        base_key(f),
        key(f, "s1", f->repo, parse(f, "GET", "cmd=getbundle&x=1", h, NULL), "alice", 0));
    /* hgargs and proto are delimited */
    {
        hgs3_req a = *f->req, b = *f->req;
        a.hgargs = "ab", a.hgargs_len = 2, a.proto = "", a.proto_len = 0;
        b.hgargs = "a", b.hgargs_len = 1, b.proto = "b", b.proto_len = 1;
        assert_string_not_equal(key(f, "", f->repo, &a, NULL, 0), key(f, "", f->repo, &b, NULL, 0));
    }
}

static void test_field_post(void **state)
{
    fx *f = *state;
    const char *body = "bookmarks=1&bundlecaps=HG20&cg=1&common=0000&heads=abcd&listkeys=phases";
    const char *len = apr_psprintf(f->p, "%d", (int)strlen(body));
    apr_table_t *h = apr_table_make(f->p, 4);
    hgs3_req *p1, *p2, none, empty;

    apr_table_add(h, "X-HgProto-1", "0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull");
    apr_table_add(h, "X-HgArgs-Post", len);
    apr_table_add(h, "Content-Length", len);
    p1 = parse(f, "POST", "cmd=getbundle&x=1", h, body);
    /* the same body, one byte changed */
    p2 = parse(f, "POST", "cmd=getbundle&x=1", h,
               "bookmarks=1&bundlecaps=HG20&cg=1&common=0000&heads=abce&listkeys=phases");
    assert_string_equal(
        key(f, "s1", f->repo, p1, "alice", 0),
        key(f, "s1", f->repo, parse(f, "POST", "cmd=getbundle&x=1", h, body), "alice", 0));
    assert_string_not_equal(key(f, "s1", f->repo, p1, "alice", 0),
                            key(f, "s1", f->repo, p2, "alice", 0));
    /* POST arguments are not header arguments, even with the same text */
    {
        hgs3_req as_headers = *p1;
        as_headers.has_post = 0;
        as_headers.hgargs = p1->post;
        as_headers.hgargs_len = p1->post_len;
        as_headers.post = NULL;
        as_headers.post_len = 0;
        assert_string_not_equal(key(f, "s1", f->repo, p1, "alice", 0),
                                key(f, "s1", f->repo, &as_headers, "alice", 0));
    }
    /* no body vs an empty body */
    none = *f->req;
    empty = *f->req;
    empty.has_post = 1;
    empty.post = "";
    empty.post_len = 0;
    assert_string_not_equal(key(f, "s1", f->repo, &none, "alice", 0),
                            key(f, "s1", f->repo, &empty, "alice", 0));
}

static void test_field_proto(void **state)
{
    fx *f = *state;
    apr_table_t *h = base_headers(f);
    apr_table_set(h, "X-HgProto-1", "0.1 0.2 comp=zlib,none,bzip2 partial-pull");
    assert_string_not_equal(
        base_key(f),
        key(f, "s1", f->repo, parse(f, "GET", "cmd=getbundle&x=1", h, NULL), "alice", 0));
    apr_table_unset(h, "X-HgProto-1");
    assert_string_not_equal(
        base_key(f),
        key(f, "s1", f->repo, parse(f, "GET", "cmd=getbundle&x=1", h, NULL), "alice", 0));
}

static void test_field_user(void **state)
{
    fx *f = *state;
    const char *alice = base_key(f);
    const char *bob = key(f, "s1", f->repo, f->req, "bob", 0);
    const char *nobody = key(f, "s1", f->repo, f->req, NULL, 0);
    const char *blank = key(f, "s1", f->repo, f->req, "", 0);

    assert_string_not_equal(alice, bob);
    assert_string_not_equal(alice, nobody);
    assert_string_not_equal(nobody, blank);
    assert_string_not_equal(alice, blank);
}

static void test_field_share(void **state)
{
    fx *f = *state;
    const char *shared = key(f, "s1", f->repo, f->req, "alice", 1);

    /* shared: the user is left out */
    assert_string_equal(shared, key(f, "s1", f->repo, f->req, "bob", 1));
    assert_string_equal(shared, key(f, "s1", f->repo, f->req, NULL, 1));
    assert_string_equal(shared, key(f, "s1", f->repo, f->req, "", 1));
    /* and "shared" is none of the per-user keys */
    assert_string_not_equal(shared, base_key(f));
    assert_string_not_equal(shared, key(f, "s1", f->repo, f->req, NULL, 0));
    assert_string_not_equal(shared, key(f, "s1", f->repo, f->req, "", 0));
}

/* ---- the documented layout, rebuilt independently ------------------------- */

typedef struct buf {
    unsigned char d[4096];
    apr_size_t n;
} buf;

static void b_int(buf *b, apr_uint64_t v, int bytes)
{
    int i;
    for (i = bytes - 1; i >= 0; --i) {
        b->d[b->n++] = (unsigned char)(v >> (8 * i));
    }
}

static void b_field(buf *b, const void *s, apr_size_t len)
{
    b_int(b, len, 8);
    memcpy(b->d + b->n, s, len);
    b->n += len;
}

static void test_known_layout(void **state)
{
    fx *f = *state;
    hgs3_repo repo = {0};
    hgs3_req req = {0};
    hgs3_req_arg args[2] = {{"a", 1, "1", 1}, {"b", 1, "", 0}};
    apr_array_header_t *arr = apr_array_make(f->p, 2, sizeof(hgs3_req_arg));
    unsigned char md[HGS3_SHA256_LEN];
    char want[65];
    buf *b = calloc(1, sizeof(*b));

    APR_ARRAY_PUSH(arr, hgs3_req_arg) = args[0];
    APR_ARRAY_PUSH(arr, hgs3_req_arg) = args[1];
    repo.dir = "/srv/hg/r";
    repo.fp = (const unsigned char *)"\x01\x00";
    repo.fp_len = 2;
    req.method = "POST";
    req.cmd = "getbundle";
    req.args = arr;
    req.hgargs = "";
    req.has_post = 1;
    req.post = "heads=ab";
    req.post_len = 8;
    req.proto = "0.2";
    req.proto_len = 3;

    b_field(b, "hgs3cache-key", 13);
    b_int(b, 2, 4);
    b_field(b, "salt", 4);
    b_field(b, "/hg", 3);
    b_field(b, "/srv/hg/r", 9);
    b_field(b, "\x01\x00", 2);
    b_field(b, "POST", 4);
    b_field(b, "getbundle", 9);
    b_int(b, 2, 8);
    b_field(b, "a", 1);
    b_field(b, "1", 1);
    b_field(b, "b", 1);
    b_field(b, "", 0);
    b_field(b, "", 0);
    b_int(b, 1, 1);
    b_field(b, "heads=ab", 8);
    b_field(b, "0.2", 3);
    b_int(b, 2, 1);
    b_field(b, "alice", 5);
    assert_int_equal(hgs3_sha256(b->d, b->n, md), APR_SUCCESS);
    hgs3_hex(want, md, HGS3_SHA256_LEN);
    assert_string_equal(key(f, "salt", &repo, &req, "alice", 0), want);
    free(b);
}

static void test_object_name_and_errors(void **state)
{
    fx *f = *state;
    const char *k = base_key(f);
    hgs3_repo nofp = *f->repo;
    char out[HGS3_KEY_HEX_LEN + 1];

    assert_string_equal(hgs3_key_object_name(f->p, "hgcache/", k),
                        apr_pstrcat(f->p, "hgcache/", k, NULL));
    assert_string_equal(hgs3_key_object_name(f->p, NULL, k), k);
    nofp.fp = NULL;
    nofp.fp_len = 0;
    memcpy(out, "x", 2);
    assert_int_equal(hgs3_key_compute(out, f->p, "s1", "/hg", &nofp, f->req, NULL, 0), APR_EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(hgs3_key_compute(out, f->p, "s1", "/hg", f->repo, NULL, NULL, 0), APR_EINVAL);
    memcpy(out, "x", 2);
    assert_int_equal(hgs3_key_compute(out, f->p, "s1", NULL, f->repo, f->req, NULL, 0), APR_EINVAL);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_request_same_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hgarg_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_normalized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_salt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_location, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_repo_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_fingerprint_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_cmd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_query_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_hgargs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_proto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_name_and_errors, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
