/* test_spool.c: the write-once body spool: memory, spill to a temp file,
 * SHA-256 and length, limits, discard, and clean-up by pool and by thread
 * hand-off. Every test runs in a fresh spool directory of its own. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_file_info.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "hgs3_err.h"
#include "hgs3_crypto.h"
#include "hgs3_spool.h"

typedef struct {
    apr_pool_t *pool;
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f || apr_pool_create(&f->pool, NULL) != APR_SUCCESS) {
        return -1;
    }
    strcpy(f->dir, "/tmp/hgs3-test-spool.XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    apr_status_t rv;
    apr_pool_destroy(f->pool);
    rv = rmdir(f->dir) == 0 ? APR_SUCCESS : APR_EGENERAL; /* fails if a spool file was left */
    free(f);
    return rv == APR_SUCCESS ? 0 : -1;
}

/* Entries in the spool directory; *name gets the last one seen. */
static int dir_entries(const char *dir, apr_pool_t *p, const char **name)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    int n = 0;

    assert_int_equal(apr_dir_open(&d, dir, p), APR_SUCCESS);
    while (apr_dir_read(&fi, APR_FINFO_NAME, d) == APR_SUCCESS) {
        if (strcmp(fi.name, ".") && strcmp(fi.name, "..")) {
            if (name) {
                *name = apr_pstrdup(p, fi.name);
            }
            n++;
        }
    }
    apr_dir_close(d);
    return n;
}

/* Deterministic, not very compressible test data. */
static unsigned char *make_data(apr_pool_t *p, apr_size_t n, unsigned seed)
{
    unsigned char *d = apr_palloc(p, n ? n : 1);
    apr_uint32_t x = seed * 2654435761u + 1;
    apr_size_t i;
    for (i = 0; i < n; ++i) {
        x = x * 1103515245u + 12345u;
        d[i] = (unsigned char)(x >> 16);
    }
    return d;
}

/* Write data in pieces of the given size (the last may be shorter). */
static apr_status_t write_pieces(hgs3_spool *s, const unsigned char *d, apr_size_t n,
                                 apr_size_t piece)
{
    apr_size_t off = 0;
    while (off < n) {
        apr_size_t k = n - off < piece ? n - off : piece;
        apr_status_t rv = hgs3_spool_write(s, d + off, k);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        off += k;
    }
    return APR_SUCCESS;
}

static void assert_digest(hgs3_spool *s, apr_pool_t *p, const unsigned char *d, apr_size_t n)
{
    unsigned char md[HGS3_SHA256_LEN];
    assert_int_equal(hgs3_sha256(d, n, md), APR_SUCCESS);
    assert_non_null(hgs3_spool_sha256(s));
    assert_memory_equal(hgs3_spool_sha256(s), md, HGS3_SHA256_LEN);
    assert_string_equal(hgs3_spool_sha256_hex(s), hgs3_sha256_hex(p, d, n));
    assert_int_equal(hgs3_spool_length(s), (apr_off_t)n);
}

/* The whole body, read back through hgs3_spool_read in odd-sized steps. */
static void assert_read_back(hgs3_spool *s, apr_pool_t *p, const unsigned char *d, apr_size_t n)
{
    unsigned char *buf = apr_palloc(p, n + 1);
    apr_size_t off = 0, got = 0;
    while (off < n) {
        assert_int_equal(hgs3_spool_read(s, (apr_off_t)off, buf + off, 4099, &got), APR_SUCCESS);
        assert_true(got > 0);
        off += got;
    }
    assert_int_equal(off, n);
    assert_memory_equal(buf, d, n);
    assert_int_equal(hgs3_spool_read(s, (apr_off_t)n, buf, 1, &got), APR_EOF);
    assert_int_equal(got, 0);
}

static void assert_file_content(const char *path, const unsigned char *d, apr_size_t n)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *buf = malloc(n + 1);
    assert_non_null(fp);
    assert_int_equal(fread(buf, 1, n + 1, fp), n);
    fclose(fp);
    assert_memory_equal(buf, d, n);
    free(buf);
}

static void test_in_memory(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    const unsigned char *d = make_data(f->pool, 600, 1);
    const void *mem = NULL;
    apr_size_t len = 0, got = 0;
    unsigned char part[50];

    assert_int_equal(hgs3_spool_create(&s, f->pool, 1024, f->dir, 0), APR_SUCCESS);
    assert_int_equal(write_pieces(s, d, 600, 7), APR_SUCCESS);
    assert_null(hgs3_spool_sha256_hex(s)); /* not before finish */
    assert_int_equal(hgs3_spool_memory(s, &mem, &len), APR_EINVAL);
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    assert_true(hgs3_spool_in_memory(s));
    assert_null(hgs3_spool_path(s));
    assert_null(hgs3_spool_file(s));
    assert_int_equal(hgs3_spool_memory(s, &mem, &len), APR_SUCCESS);
    assert_int_equal(len, 600);
    assert_memory_equal(mem, d, 600);
    assert_digest(s, f->pool, d, 600);
    assert_read_back(s, f->pool, d, 600);
    assert_int_equal(hgs3_spool_read(s, 590, part, sizeof(part), &got), APR_SUCCESS);
    assert_int_equal(got, 10);
    assert_memory_equal(part, d + 590, 10);
    assert_int_equal(hgs3_spool_write(s, "x", 1), APR_EINVAL); /* write-once */
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    hgs3_spool_destroy(s);
}

/* Several blocks in memory become one contiguous buffer. */
static void test_in_memory_many_blocks(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    apr_size_t n = 4 * HGS3_SPOOL_BLOCK_SIZE + 1234;
    const unsigned char *d = make_data(f->pool, n, 2);
    const void *mem = NULL;
    apr_size_t len = 0;

    assert_int_equal(hgs3_spool_create(&s, f->pool, 1024 * 1024, f->dir, 0), APR_SUCCESS);
    assert_int_equal(write_pieces(s, d, n, 777), APR_SUCCESS);
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    assert_true(hgs3_spool_in_memory(s));
    assert_int_equal(hgs3_spool_memory(s, &mem, &len), APR_SUCCESS);
    assert_int_equal(len, n);
    assert_memory_equal(mem, d, n);
    assert_digest(s, f->pool, d, n);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    hgs3_spool_destroy(s);
}

/* Exactly memory_limit bytes stay in memory. */
static void test_exactly_at_limit(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    apr_size_t limit = 100000;
    const unsigned char *d = make_data(f->pool, limit, 3);

    assert_int_equal(hgs3_spool_create(&s, f->pool, limit, f->dir, 0), APR_SUCCESS);
    assert_int_equal(write_pieces(s, d, limit, 999), APR_SUCCESS);
    assert_true(hgs3_spool_in_memory(s));
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    assert_true(hgs3_spool_in_memory(s));
    assert_digest(s, f->pool, d, limit);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    hgs3_spool_destroy(s);
}

/* One byte over the limit spills everything to a 0600 temp file. */
static void test_one_over_limit(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    apr_size_t limit = 100000, n = limit + 1;
    const unsigned char *d = make_data(f->pool, n, 4);
    const char *name = NULL;
    struct stat st;

    assert_int_equal(hgs3_spool_create(&s, f->pool, limit, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, d, limit), APR_SUCCESS);
    assert_true(hgs3_spool_in_memory(s));
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    assert_int_equal(hgs3_spool_write(s, d + limit, 1), APR_SUCCESS);
    assert_false(hgs3_spool_in_memory(s));
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);

    assert_int_equal(dir_entries(f->dir, f->pool, &name), 1);
    assert_int_equal(strncmp(name, "hgs3spool.", 10), 0);
    assert_non_null(hgs3_spool_path(s));
    assert_non_null(hgs3_spool_file(s));
    assert_string_equal(hgs3_spool_path(s), apr_pstrcat(f->pool, f->dir, "/", name, NULL));
    assert_int_equal(stat(hgs3_spool_path(s), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, (off_t)n);
    assert_file_content(hgs3_spool_path(s), d, n);
    assert_digest(s, f->pool, d, n);
    assert_read_back(s, f->pool, d, n);
    {
        const void *mem = NULL;
        apr_size_t len = 0;
        assert_int_equal(hgs3_spool_memory(s, &mem, &len), APR_EINVAL);
        assert_null(mem);
    }
    hgs3_spool_destroy(s);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
}

/* Well beyond the limit, with a write straddling it and odd piece sizes. */
static void test_beyond_limit(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    apr_size_t limit = 70000, n = 5 * limit + 17;
    const unsigned char *d = make_data(f->pool, n, 5);

    assert_int_equal(hgs3_spool_create(&s, f->pool, limit, f->dir, 0), APR_SUCCESS);
    assert_int_equal(write_pieces(s, d, n, 65521), APR_SUCCESS);
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    assert_false(hgs3_spool_in_memory(s));
    assert_file_content(hgs3_spool_path(s), d, n);
    assert_digest(s, f->pool, d, n);
    assert_read_back(s, f->pool, d, n);
    hgs3_spool_destroy(s);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
}

/* Deferred hashing: no digest until hgs3_spool_hash(), then the right one,
 * for a body in memory and a body in a file (and a body spilled with a
 * buffer size that is not a multiple of anything). */
static void test_deferred_hash(void **state)
{
    fixture *f = *state;
    apr_size_t sizes[] = {1000, 300000 + 7};
    int i;

    for (i = 0; i < 2; ++i) {
        hgs3_spool *s = NULL;
        apr_size_t n = sizes[i];
        const unsigned char *d = make_data(f->pool, n, 11 + i);

        assert_int_equal(hgs3_spool_create(&s, f->pool, 4096, f->dir, 0), APR_SUCCESS);
        hgs3_spool_defer_hash(s);
        assert_int_equal(write_pieces(s, d, n, 8191), APR_SUCCESS);
        assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
        assert_null(hgs3_spool_sha256_hex(s));
        assert_int_equal(hgs3_spool_hash(s), APR_SUCCESS);
        assert_digest(s, f->pool, d, n);
        assert_int_equal(hgs3_spool_hash(s), APR_SUCCESS); /* idempotent */
        assert_read_back(s, f->pool, d, n);
        hgs3_spool_destroy(s);
    }
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
}

/* memory_limit 0: straight to a file; an empty body stays in memory. */
static void test_zero_limit_and_empty(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    const void *mem = NULL;
    apr_size_t len = 1;

    assert_int_equal(hgs3_spool_create(&s, f->pool, 0, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, "", 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    assert_true(hgs3_spool_in_memory(s));
    assert_int_equal(hgs3_spool_memory(s, &mem, &len), APR_SUCCESS);
    assert_int_equal(len, 0);
    assert_string_equal(hgs3_spool_sha256_hex(s),
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hgs3_spool_destroy(s);

    assert_int_equal(hgs3_spool_create(&s, f->pool, 0, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, "abc", 3), APR_SUCCESS);
    assert_false(hgs3_spool_in_memory(s));
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    assert_file_content(hgs3_spool_path(s), (const unsigned char *)"abc", 3);
    assert_string_equal(hgs3_spool_sha256_hex(s),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hgs3_spool_destroy(s);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
}

/* max_size itself is accepted; one byte more fails, stickily, and the
 * temp file goes at once. */
static void test_max_size(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    const unsigned char *d = make_data(f->pool, 1001, 6);

    assert_int_equal(hgs3_spool_create(&s, f->pool, 100, f->dir, 1000), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, d, 1000), APR_SUCCESS);
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    assert_digest(s, f->pool, d, 1000);
    hgs3_spool_destroy(s);

    assert_int_equal(hgs3_spool_create(&s, f->pool, 100, f->dir, 1000), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, d, 600), APR_SUCCESS);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 1);
    assert_int_equal(hgs3_spool_write(s, d + 600, 401), HGS3_ETOOBIG);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    assert_int_equal(hgs3_spool_status(s), HGS3_ETOOBIG);
    assert_int_equal(hgs3_spool_write(s, d, 1), HGS3_ETOOBIG);
    assert_int_equal(hgs3_spool_finish(s), HGS3_ETOOBIG);
    assert_null(hgs3_spool_sha256_hex(s));
    assert_null(hgs3_spool_path(s));
    hgs3_spool_discard(s);
    hgs3_spool_destroy(s);
}

/* discard: at any time, twice, and the file is gone. */
static void test_discard(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    const unsigned char *d = make_data(f->pool, 5000, 7);
    unsigned char buf[10];
    apr_size_t got = 1;

    /* before any write */
    assert_int_equal(hgs3_spool_create(&s, f->pool, 1000, f->dir, 0), APR_SUCCESS);
    hgs3_spool_discard(s);
    hgs3_spool_discard(s);
    assert_int_equal(hgs3_spool_write(s, d, 10), APR_EINVAL);
    hgs3_spool_destroy(s);

    /* mid-body, spilled */
    assert_int_equal(hgs3_spool_create(&s, f->pool, 1000, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, d, 5000), APR_SUCCESS);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 1);
    hgs3_spool_discard(s);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    hgs3_spool_discard(s);
    assert_int_equal(hgs3_spool_write(s, d, 10), APR_EINVAL);
    assert_int_equal(hgs3_spool_finish(s), APR_EINVAL);
    assert_int_equal(hgs3_spool_status(s), APR_EINVAL);
    hgs3_spool_destroy(s);

    /* after finish */
    assert_int_equal(hgs3_spool_create(&s, f->pool, 1000, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, d, 5000), APR_SUCCESS);
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    hgs3_spool_discard(s);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    assert_null(hgs3_spool_path(s));
    assert_null(hgs3_spool_sha256_hex(s));
    assert_int_equal(hgs3_spool_read(s, 0, buf, sizeof(buf), &got), APR_EINVAL);
    assert_int_equal(got, 0);
    hgs3_spool_discard(s);
    hgs3_spool_destroy(s);

    /* in memory */
    assert_int_equal(hgs3_spool_create(&s, f->pool, 10000, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, d, 5000), APR_SUCCESS);
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    hgs3_spool_discard(s);
    assert_false(hgs3_spool_in_memory(s));
    {
        const void *mem = NULL;
        apr_size_t len = 0;
        assert_int_equal(hgs3_spool_memory(s, &mem, &len), APR_EINVAL);
    }
    hgs3_spool_destroy(s);
}

/* The owner pool's destruction (request over or aborted) removes the file,
 * finished or not. */
static void test_owner_pool_destroyed(void **state)
{
    fixture *f = *state;
    apr_pool_t *req = NULL;
    hgs3_spool *s1 = NULL, *s2 = NULL;
    const unsigned char *d = make_data(f->pool, 3000, 8);

    assert_int_equal(apr_pool_create(&req, f->pool), APR_SUCCESS);
    assert_int_equal(hgs3_spool_create(&s1, req, 1000, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_create(&s2, req, 1000, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s1, d, 3000), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s2, d, 3000), APR_SUCCESS);
    assert_int_equal(hgs3_spool_finish(s2), APR_SUCCESS);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 2);
    apr_pool_destroy(req);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);

    /* an explicit destroy first, then the owner: no double free */
    assert_int_equal(apr_pool_create(&req, f->pool), APR_SUCCESS);
    assert_int_equal(hgs3_spool_create(&s1, req, 1000, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s1, d, 3000), APR_SUCCESS);
    hgs3_spool_destroy(s1);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    apr_pool_destroy(req);
}

typedef struct {
    hgs3_spool *spool;
    const unsigned char *data;
    apr_size_t len;
    int ok;
} handoff;

/* The "uploader": reads the whole body back, checks it, destroys the spool. */
static int upload(handoff *h)
{
    unsigned char md[HGS3_SHA256_LEN];
    unsigned char *buf = malloc(h->len);
    apr_size_t off = 0, got = 0;
    int ok = buf != NULL;

    while (ok && off < h->len) {
        ok = hgs3_spool_read(h->spool, (apr_off_t)off, buf + off, 8192, &got) == APR_SUCCESS;
        off += got;
    }
    ok = ok && off == h->len && memcmp(buf, h->data, h->len) == 0 &&
         hgs3_sha256(buf, h->len, md) == APR_SUCCESS &&
         memcmp(md, hgs3_spool_sha256(h->spool), HGS3_SHA256_LEN) == 0;
    free(buf);
    hgs3_spool_destroy(h->spool);
    return ok;
}

/* Returns rather than calling apr_thread_exit(): pthread_exit() unwinds
 * frames without AddressSanitizer seeing them go, and ASan then reports
 * their stale stack poisoning during its own thread teardown. */
static void *APR_THREAD_FUNC uploader(apr_thread_t *t, void *arg)
{
    handoff *h = arg;
    (void)t;
    h->ok = upload(h);
    return NULL;
}

/* Hand-off: released by the request pool, then used and destroyed by
 * another thread after the request pool is gone. */
static void test_handoff_to_thread(void **state)
{
    fixture *f = *state;
    apr_pool_t *req = NULL;
    apr_thread_t *t = NULL;
    apr_status_t trv = APR_EGENERAL;
    handoff h;
    int i;

    for (i = 0; i < 2; ++i) { /* spilled, then in memory */
        apr_size_t limit = i == 0 ? 1000 : 1024 * 1024;
        memset(&h, 0, sizeof(h));
        h.len = 200000;
        h.data = make_data(f->pool, h.len, 9);
        assert_int_equal(apr_pool_create(&req, f->pool), APR_SUCCESS);
        assert_int_equal(hgs3_spool_create(&h.spool, req, limit, f->dir, 0), APR_SUCCESS);
        assert_int_equal(write_pieces(h.spool, h.data, h.len, 8000), APR_SUCCESS);
        assert_int_equal(hgs3_spool_finish(h.spool), APR_SUCCESS);
        hgs3_spool_set_owner(h.spool, NULL);
        apr_pool_destroy(req); /* the request ends before the upload */
        assert_int_equal(dir_entries(f->dir, f->pool, NULL), i == 0 ? 1 : 0);
        assert_int_equal(apr_thread_create(&t, NULL, uploader, &h, f->pool), APR_SUCCESS);
        assert_int_equal(apr_thread_join(&trv, t), APR_SUCCESS);
        assert_true(h.ok);
        assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    }
}

/* A new owner takes over the clean-up. */
static void test_set_owner(void **state)
{
    fixture *f = *state;
    apr_pool_t *req = NULL, *other = NULL;
    hgs3_spool *s = NULL;
    const unsigned char *d = make_data(f->pool, 3000, 10);

    assert_int_equal(apr_pool_create(&req, f->pool), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&other, f->pool), APR_SUCCESS);
    assert_int_equal(hgs3_spool_create(&s, req, 1000, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, d, 3000), APR_SUCCESS);
    hgs3_spool_set_owner(s, NULL);
    hgs3_spool_set_owner(s, other);
    apr_pool_destroy(req);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 1);
    apr_pool_destroy(other);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
}

/* A spool nobody destroyed (no owner, never handed back) is cleaned up
 * when the process terminates APR: run in a child process. */
static void test_removed_at_apr_terminate(void **state)
{
    fixture *f = *state;
    apr_proc_t proc;
    apr_status_t rv;
    int code = -1;
    apr_exit_why_e why;

    rv = apr_proc_fork(&proc, f->pool);
    if (rv == APR_INCHILD) {
        hgs3_spool *s = NULL;
        unsigned char d[3000];
        memset(d, 'a', sizeof(d));
        if (hgs3_spool_create(&s, NULL, 1000, f->dir, 0) != APR_SUCCESS ||
            hgs3_spool_write(s, d, sizeof(d)) != APR_SUCCESS || hgs3_spool_path(s) == NULL ||
            access(hgs3_spool_path(s), F_OK) != 0) {
            _exit(2);
        }
        apr_terminate();
        _exit(0);
    }
    assert_int_equal(rv, APR_INPARENT);
    assert_int_equal(apr_proc_wait(&proc, &code, &why, APR_WAIT), APR_CHILD_DONE);
    assert_int_equal(why, APR_PROC_EXIT);
    assert_int_equal(code, 0);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
}

/* The spill fails (no such directory): an error, no crash, sticky. */
static void test_spool_dir_missing(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    const char *missing = apr_pstrcat(f->pool, f->dir, "/does/not/exist", NULL);
    const unsigned char *d = make_data(f->pool, 3000, 11);
    apr_status_t rv;

    assert_int_equal(hgs3_spool_create(&s, f->pool, 1000, missing, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, d, 1000), APR_SUCCESS);
    rv = hgs3_spool_write(s, d + 1000, 1);
    assert_true(APR_STATUS_IS_ENOENT(rv));
    assert_int_equal(hgs3_spool_write(s, d, 1), rv);
    assert_int_equal(hgs3_spool_finish(s), rv);
    hgs3_spool_destroy(s);
}

/* A file cut short behind the spool's back is reported, not read past. */
static void test_file_truncated(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    const unsigned char *d = make_data(f->pool, 3000, 12);
    unsigned char buf[100];
    apr_size_t got = 0;

    assert_int_equal(hgs3_spool_create(&s, f->pool, 1000, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write(s, d, 3000), APR_SUCCESS);
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    assert_int_equal(truncate(hgs3_spool_path(s), 2950), 0);
    assert_int_equal(hgs3_spool_read(s, 2900, buf, sizeof(buf), &got), APR_INCOMPLETE);
    assert_int_equal(got, 50);
    hgs3_spool_destroy(s);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
}

/* --- write-behind ---------------------------------------------------------- */

/* The uploader of a write-behind spool: it finishes the spool (joining the
 * writer), hashes it, checks every byte, destroys it. */
static void *APR_THREAD_FUNC wb_uploader(apr_thread_t *t, void *arg)
{
    handoff *h = arg;
    (void)t;
    h->ok = hgs3_spool_finish(h->spool) == APR_SUCCESS &&
            hgs3_spool_hash(h->spool) == APR_SUCCESS && upload(h);
    return NULL;
}

/* Bodies of every shape go through the writer thread and come out intact,
 * finished in another thread after the request pool is gone, as the
 * capture filter and the uploader do it. */
static void test_write_behind(void **state)
{
    static const struct {
        apr_size_t len, limit, window, piece;
    } cases[] = {
        {0, 1000, 0, 8000},                         /* empty: nothing spills */
        {1000, 1000, 0, 7},                         /* at the limit: in memory */
        {1001, 1000, 0, 8000},                      /* one byte over */
        {3 * 1024 * 1024 + 17, 64 * 1024, 0, 8000}, /* smallest window */
        {5 * 1024 * 1024 + 1, 1024 * 1024, 1024 * 1024, 65536 + 3},
        {2 * 1024 * 1024, 0, 256 * 1024, 1},                         /* byte by byte */
        {4 * 1024 * 1024, 100000, 8 * 1024 * 1024, 3 * 1024 * 1024}, /* large writes */
    };
    fixture *f = *state;
    apr_size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        apr_pool_t *req = NULL;
        apr_thread_t *t = NULL;
        apr_status_t trv;
        handoff h;
        apr_size_t len = cases[i].len;
        /* byte-by-byte writes of 2 MiB are slow under valgrind: fewer */
        if (cases[i].piece == 1) {
            len = 200000;
        }
        memset(&h, 0, sizeof(h));
        h.len = len;
        h.data = make_data(f->pool, len, (unsigned)i + 20);
        assert_int_equal(apr_pool_create(&req, f->pool), APR_SUCCESS);
        assert_int_equal(hgs3_spool_create(&h.spool, req, cases[i].limit, f->dir, 0), APR_SUCCESS);
        hgs3_spool_defer_hash(h.spool);
        assert_int_equal(hgs3_spool_write_behind(h.spool, cases[i].window), APR_SUCCESS);
        assert_int_equal(write_pieces(h.spool, h.data, len, cases[i].piece), APR_SUCCESS);
        assert_int_equal(hgs3_spool_status(h.spool), APR_SUCCESS);
        assert_int_equal(hgs3_spool_length(h.spool), (apr_off_t)len);
        assert_int_equal(hgs3_spool_in_memory(h.spool), len <= cases[i].limit);
        hgs3_spool_set_owner(h.spool, NULL);
        apr_pool_destroy(req);
        assert_int_equal(apr_thread_create(&t, NULL, wb_uploader, &h, f->pool), APR_SUCCESS);
        assert_int_equal(apr_thread_join(&trv, t), APR_SUCCESS);
        assert_true(h.ok);
        assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    }
}

/* The file on disk holds the body once finished (the writer wrote it all,
 * in order), and hgs3_spool_write_behind is refused once data came in. */
static void test_write_behind_file(void **state)
{
    fixture *f = *state;
    hgs3_spool *s = NULL;
    apr_size_t n = 3 * 1024 * 1024 + 5;
    const unsigned char *d = make_data(f->pool, n, 31);

    assert_int_equal(hgs3_spool_create(&s, f->pool, 4096, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write_behind(s, 0), APR_SUCCESS);
    assert_int_equal(write_pieces(s, d, n, 8000), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write_behind(s, 0), APR_EINVAL);
    assert_int_equal(hgs3_spool_finish(s), APR_SUCCESS);
    assert_non_null(hgs3_spool_path(s));
    assert_file_content(hgs3_spool_path(s), d, n);
    assert_digest(s, f->pool, d, n);
    assert_read_back(s, f->pool, d, n);
    hgs3_spool_destroy(s);
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
}

/* A request that ends while the writer is busy (client gone, error) stops
 * it and leaves no file; so does a body over max_size. */
static void test_write_behind_abort(void **state)
{
    fixture *f = *state;
    apr_size_t n = 8 * 1024 * 1024;
    const unsigned char *d = make_data(f->pool, n, 32);
    int i;

    for (i = 0; i < 20; ++i) {
        apr_pool_t *req = NULL;
        hgs3_spool *s = NULL;
        assert_int_equal(apr_pool_create(&req, f->pool), APR_SUCCESS);
        assert_int_equal(hgs3_spool_create(&s, req, 1024, f->dir, 0), APR_SUCCESS);
        assert_int_equal(hgs3_spool_write_behind(s, 256 * 1024), APR_SUCCESS);
        /* stop at a different point each time */
        assert_int_equal(write_pieces(s, d, (apr_size_t)(i + 1) * 100003, 8000), APR_SUCCESS);
        apr_pool_destroy(req);
        assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    }
    {
        hgs3_spool *s = NULL;
        assert_int_equal(hgs3_spool_create(&s, f->pool, 1024, f->dir, 2 * 1024 * 1024),
                         APR_SUCCESS);
        assert_int_equal(hgs3_spool_write_behind(s, 0), APR_SUCCESS);
        assert_int_equal(write_pieces(s, d, n, 8000), HGS3_ETOOBIG);
        assert_int_equal(hgs3_spool_status(s), HGS3_ETOOBIG);
        assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
        assert_int_equal(hgs3_spool_finish(s), HGS3_ETOOBIG);
        hgs3_spool_destroy(s);
    }
}

/* A write error of the writer thread (here: the file size limit, EFBIG)
 * becomes the spool's sticky failure, seen by a later write, status or
 * finish, and the file is removed. */
static void test_write_behind_write_error(void **state)
{
    fixture *f = *state;
    struct rlimit old, lim;
    hgs3_spool *s = NULL;
    apr_size_t n = 4 * 1024 * 1024;
    const unsigned char *d = make_data(f->pool, n, 33);
    apr_status_t rv;

    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1024 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

    assert_int_equal(hgs3_spool_create(&s, f->pool, 1024, f->dir, 0), APR_SUCCESS);
    assert_int_equal(hgs3_spool_write_behind(s, 256 * 1024), APR_SUCCESS);
    rv = write_pieces(s, d, n, 8000);
    if (rv == APR_SUCCESS) {
        rv = hgs3_spool_finish(s); /* the error came after the last write */
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(rv, APR_FROM_OS_ERROR(EFBIG));
    assert_int_equal(hgs3_spool_status(s), rv);
    assert_int_equal(hgs3_spool_write(s, d, 1), rv);
    assert_null(hgs3_spool_path(s));
    assert_int_equal(dir_entries(f->dir, f->pool, NULL), 0);
    hgs3_spool_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_memory_many_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exactly_at_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_over_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_beyond_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_limit_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_pool_destroyed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_to_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_at_apr_terminate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_dir_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_behind_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_behind_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_behind_write_error, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
