/* test_repo.c: repository mapping and state fingerprint (hgs3_repo), on a
 * real temporary tree:
 *
 *   base/outside/.hg/requires        a repository outside the root
 *   base/root/.hg/requires           the root itself is a repository
 *   base/root/a/.hg/requires         a
 *   base/root/a/b/.hg/requires       a/b, nested in a
 *   base/root/a/b/esc -> base/outside
 *   base/root/a/c/                   a plain directory inside a
 *   base/root/plain/                 not a repository
 *   base/root/my repo/.hg/requires   a name that needs escaping
 *   base/root/sh/.hg/{requires,sharedpath}   a share
 *   base/root/out -> ../outside      symlink out of the root
 *   base/root/in -> a                symlink inside the root
 *   base/root/self -> .              symlink to the root
 *   base/root/req/.hg/requires/      "requires" is a directory */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_repo.h"

typedef struct fx {
    apr_pool_t *p;
    char base[64];
    const char *root; /* realpath of base/root */
} fx;

static void mkdirs(fx *f, const char *rel)
{
    char *path = apr_pstrcat(f->p, f->base, "/", rel, NULL), *s;
    for (s = path + strlen(f->base) + 1; *s; ++s) {
        if (*s == '/') {
            *s = '\0';
            mkdir(path, 0755);
            *s = '/';
        }
    }
    mkdir(path, 0755);
}

static void write_file(fx *f, const char *rel, const char *content)
{
    const char *path = apr_pstrcat(f->p, f->base, "/", rel, NULL);
    FILE *fp;
    char *dir = apr_pstrdup(f->p, rel), *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdirs(f, dir);
    }
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
}

static void make_repo(fx *f, const char *rel)
{
    write_file(f, apr_pstrcat(f->p, rel, "/.hg/requires", NULL), "revlogv1\nstore\n");
}

static void rm_rf(const char *path)
{
    char cmd[256];
    apr_snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", path);
    }
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    char *rp;
    apr_pool_create(&f->p, NULL);
    strcpy(f->base, "/tmp/hgs3-test-repo-XXXXXX");
    if (!mkdtemp(f->base)) {
        return -1;
    }
    make_repo(f, "outside");
    make_repo(f, "root");
    make_repo(f, "root/a");
    make_repo(f, "root/a/b");
    mkdirs(f, "root/a/c");
    mkdirs(f, "root/plain");
    make_repo(f, "root/my repo");
    make_repo(f, "root/sh");
    write_file(f, "root/sh/.hg/sharedpath", "/elsewhere/.hg");
    mkdirs(f, "root/req/.hg/requires");
    if (symlink(apr_pstrcat(f->p, f->base, "/outside", NULL),
                apr_pstrcat(f->p, f->base, "/root/a/b/esc", NULL)) != 0 ||
        symlink("../outside", apr_pstrcat(f->p, f->base, "/root/out", NULL)) != 0 ||
        symlink("a", apr_pstrcat(f->p, f->base, "/root/in", NULL)) != 0 ||
        symlink(".", apr_pstrcat(f->p, f->base, "/root/self", NULL)) != 0) {
        return -1;
    }
    rp = realpath(apr_pstrcat(f->p, f->base, "/root", NULL), NULL);
    f->root = apr_pstrdup(f->p, rp);
    free(rp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    rm_rf(f->base);
    apr_pool_destroy(f->p);
    free(f);
    return 0;
}

static const char *under_root(fx *f, const char *rel)
{
    return apr_pstrcat(f->p, f->root, "/", rel, NULL);
}

static void expect_found(fx *f, const char *raw, const char *name, const char *rest)
{
    hgs3_repo *repo = NULL;
    print_message("path '%.80s'\n", raw);
    assert_int_equal(hgs3_repo_find(&repo, f->p, f->root, raw), APR_SUCCESS);
    assert_non_null(repo);
    assert_string_equal(repo->dir, under_root(f, name));
    assert_string_equal(repo->name, name);
    assert_string_equal(repo->rest, rest);
}

static void expect_refused(fx *f, const char *raw, apr_status_t want)
{
    hgs3_repo *repo = (hgs3_repo *)1;
    print_message("path '%.80s'\n", raw ? raw : "(null)");
    assert_int_equal(hgs3_repo_find(&repo, f->p, f->root, raw), want);
    assert_null(repo);
}

static void test_single(void **state)
{
    fx *f = *state;
    hgs3_repo *repo = NULL;

    assert_int_equal(hgs3_repo_open(&repo, f->p, under_root(f, "a"), "/"), APR_SUCCESS);
    assert_string_equal(repo->dir, under_root(f, "a"));
    assert_string_equal(repo->name, "");
    assert_string_equal(repo->rest, "");
    /* through a symlink: the realpath */
    assert_int_equal(hgs3_repo_open(&repo, f->p, under_root(f, "in"), "x/y/"), APR_SUCCESS);
    assert_string_equal(repo->dir, under_root(f, "a"));
    assert_string_equal(repo->rest, "x/y");
    /* .hg/requires is left to the fingerprint, which every caller takes */
    assert_int_equal(hgs3_repo_open(&repo, f->p, under_root(f, "plain"), NULL), APR_SUCCESS);
    assert_int_equal(hgs3_repo_fingerprint(repo, f->p), APR_ENOENT);
    assert_null(repo->fp);
    assert_int_equal(hgs3_repo_open(&repo, f->p, under_root(f, "req"), NULL), APR_SUCCESS);
    assert_int_equal(hgs3_repo_fingerprint(repo, f->p), APR_ENOENT);
    assert_int_equal(hgs3_repo_open(&repo, f->p, under_root(f, "none"), NULL), APR_ENOENT);
    assert_null(repo);
    /* a file is no repository */
    assert_int_equal(hgs3_repo_open(&repo, f->p, under_root(f, "a/.hg/requires"), NULL),
                     APR_ENOENT);
    assert_int_equal(hgs3_repo_open(&repo, f->p, under_root(f, "sh"), NULL), APR_ENOTIMPL);
    assert_null(repo);
    assert_int_equal(hgs3_repo_open(&repo, f->p, "", NULL), HGS3_ECONFIG);
}

static void test_find(void **state)
{
    fx *f = *state;
    expect_found(f, "a", "a", "");
    expect_found(f, "/a", "a", "");
    expect_found(f, "/a/", "a", "");
    expect_found(f, "a?cmd=getbundle", "a", "");
    expect_found(f, "/a/b?cmd=getbundle&x=/../..", "a/b", "");
    expect_found(f, "my%20repo", "my repo", "");
    expect_found(f, "/my%20repo/x%2By", "my repo", "x%2By");
    expect_refused(f, "plain", APR_ENOENT);
    expect_refused(f, "plain/x", APR_ENOENT);
    expect_refused(f, "nothing/here", APR_ENOENT);
    expect_refused(f, "req", APR_ENOENT);
    expect_refused(f, "sh", APR_ENOTIMPL);
    /* the empty path is not a repository, even though the root is one */
    expect_refused(f, "", APR_ENOENT);
    expect_refused(f, "/", APR_ENOENT);
    expect_refused(f, "//", APR_ENOENT);
    expect_refused(f, NULL, APR_ENOENT);
    expect_refused(f, "?cmd=getbundle", APR_ENOENT);
}

static void test_longest_match(void **state)
{
    fx *f = *state;
    expect_found(f, "a/b", "a/b", "");
    expect_found(f, "a/b/", "a/b", "");
    expect_found(f, "a/b/x/y", "a/b", "x/y");
    expect_found(f, "a/c", "a", "c");
    expect_found(f, "a/c/d", "a", "c/d");
    expect_found(f, "a/zz", "a", "zz");
    /* a symlink inside the root resolves to the real repository */
    {
        hgs3_repo *repo = NULL;
        assert_int_equal(hgs3_repo_find(&repo, f->p, f->root, "in/b"), APR_SUCCESS);
        assert_string_equal(repo->dir, under_root(f, "a/b"));
        assert_string_equal(repo->name, "in/b");
    }
}

static void test_traversal(void **state)
{
    static const struct {
        const char *path;
        apr_status_t want;
    } cases[] = {
        {"..", HGS3_EMALFORMED},
        {"../outside", HGS3_EMALFORMED},
        {"a/../../outside", HGS3_EMALFORMED},
        {"a/..", HGS3_EMALFORMED},
        {".", HGS3_EMALFORMED},
        {"./a", HGS3_EMALFORMED},
        {"a/./b", HGS3_EMALFORMED},
        {"%2e%2e/outside", HGS3_EMALFORMED},
        {"%2E%2e/outside", HGS3_EMALFORMED},
        {"%2e./outside", HGS3_EMALFORMED},
        {".%2E/outside", HGS3_EMALFORMED},
        {"a/%2e", HGS3_EMALFORMED},
        {"a%2fb", HGS3_EMALFORMED},
        {"a%2Fb", HGS3_EMALFORMED},
        {"%2F..%2Foutside", HGS3_EMALFORMED},
        {"..%2foutside", HGS3_EMALFORMED},
        {"a%5cb", HGS3_EMALFORMED},
        {"a%5C..%5C..", HGS3_EMALFORMED},
        {"a\\b", HGS3_EMALFORMED},
        {"..\\outside", HGS3_EMALFORMED},
        {"a%00", HGS3_EMALFORMED},
        {"a%00/b", HGS3_EMALFORMED},
        {"a//b", HGS3_EMALFORMED},
        {"a%zz", HGS3_EMALFORMED},
        {"a%2", HGS3_EMALFORMED},
        {"a/%", HGS3_EMALFORMED},
        {"%252e%252e", APR_ENOENT}, /* decoded once: "%2e%2e", a plain name */
        /* symlinks that leave the root */
        {"out", APR_EACCES},
        {"out/x", APR_EACCES},
        /* the longest match escapes: no fallback to the enclosing a/b */
        {"a/b/esc", APR_EACCES},
        {"a/b/esc/more", APR_EACCES},
        /* the root itself, reached through a symlink */
        {"self", APR_EACCES},
        {"self/x", APR_EACCES},
    };
    fx *f = *state;
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        expect_refused(f, cases[i].path, cases[i].want);
    }
    /* the same through the root's own symlinked or relative spelling */
    {
        hgs3_repo *repo = NULL;
        const char *alt = apr_pstrcat(f->p, f->base, "/root/./a/..", NULL);
        assert_int_equal(hgs3_repo_find(&repo, f->p, alt, "out"), APR_EACCES);
        assert_int_equal(hgs3_repo_find(&repo, f->p, alt, "a/b"), APR_SUCCESS);
        assert_string_equal(repo->dir, under_root(f, "a/b"));
    }
}

static void test_bounds(void **state)
{
    fx *f = *state;
    char *path = apr_pstrdup(f->p, "a");
    char *longp;
    int i;
    for (i = 0; i < HGS3_REPO_MAX_SEGMENTS; ++i) {
        path = apr_pstrcat(f->p, path, "/x", NULL);
    }
    expect_refused(f, path, HGS3_ETOOBIG);
    longp = apr_palloc(f->p, HGS3_REPO_MAX_PATH + 2);
    memset(longp, 'x', HGS3_REPO_MAX_PATH + 1);
    longp[HGS3_REPO_MAX_PATH + 1] = '\0';
    expect_refused(f, longp, HGS3_ETOOBIG);
    /* a segment longer than NAME_MAX: the stat error refuses it */
    longp[300] = '\0';
    {
        hgs3_repo *repo = NULL;
        assert_int_not_equal(hgs3_repo_find(&repo, f->p, f->root, longp), APR_SUCCESS);
        assert_null(repo);
    }
}

static void test_resolve(void **state)
{
    fx *f = *state;
    hgs3_repo *repo = NULL;
    assert_int_equal(hgs3_repo_resolve(&repo, f->p, under_root(f, "a"), NULL, "/b"), APR_SUCCESS);
    assert_string_equal(repo->dir, under_root(f, "a"));
    assert_string_equal(repo->rest, "b");
    assert_int_equal(hgs3_repo_resolve(&repo, f->p, NULL, f->root, "/a/b"), APR_SUCCESS);
    assert_string_equal(repo->dir, under_root(f, "a/b"));
    assert_int_equal(hgs3_repo_resolve(&repo, f->p, NULL, NULL, "/a"), HGS3_ECONFIG);
    assert_null(repo);
    assert_int_equal(hgs3_repo_resolve(&repo, f->p, NULL, under_root(f, "none"), "/a"), APR_ENOENT);
}

/* ---- fingerprint -------------------------------------------------------- */

static const unsigned char *take(fx *f, hgs3_repo *repo, apr_size_t *plen)
{
    assert_int_equal(hgs3_repo_fingerprint(repo, f->p), APR_SUCCESS);
    assert_non_null(repo->fp);
    *plen = repo->fp_len;
    return apr_pmemdup(f->p, repo->fp, repo->fp_len);
}

static int same(const unsigned char *a, apr_size_t alen, const unsigned char *b, apr_size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static void test_fingerprint_stable(void **state)
{
    fx *f = *state;
    hgs3_repo *repo = NULL;
    const unsigned char *a, *b;
    apr_size_t alen, blen;

    assert_int_equal(hgs3_repo_find(&repo, f->p, f->root, "a"), APR_SUCCESS);
    a = take(f, repo, &alen);
    b = take(f, repo, &blen);
    assert_true(same(a, alen, b, blen));
    /* files outside the list do not matter */
    write_file(f, "root/a/.hg/store/data/foo.i", "x");
    write_file(f, "root/a/.hg/dirstate", "x");
    b = take(f, repo, &blen);
    assert_true(same(a, alen, b, blen));
    /* another repository differs (at least by requires' inode) */
    assert_int_equal(hgs3_repo_find(&repo, f->p, f->root, "a/b"), APR_SUCCESS);
    b = take(f, repo, &blen);
    assert_false(same(a, alen, b, blen));
}

/* For every state file: appearing, growing, being replaced by a file of the
 * same size (new inode), having only its mtime changed, and disappearing
 * each change the fingerprint. */
static void test_fingerprint_each_file(void **state)
{
    fx *f = *state;
    hgs3_repo *repo = NULL;
    const unsigned char *prev, *cur;
    apr_size_t plen, clen;
    int i;

    assert_int_equal(hgs3_repo_find(&repo, f->p, f->root, "a"), APR_SUCCESS);
    for (i = 0; HGS3_REPO_STATE_FILES[i]; ++i) {
        const char *rel = apr_pstrcat(f->p, "root/a/", HGS3_REPO_STATE_FILES[i], NULL);
        const char *abs = apr_pstrcat(f->p, f->base, "/", rel, NULL);
        const char *tmp = apr_pstrcat(f->p, abs, ".tmp", NULL);
        struct timeval tv[2];
        struct stat st;

        int is_requires = strcmp(HGS3_REPO_STATE_FILES[i], ".hg/requires") == 0;

        print_message("file %s\n", HGS3_REPO_STATE_FILES[i]);
        if (!is_requires) {
            /* appearing */
            unlink(abs);
            prev = take(f, repo, &plen);
            write_file(f, rel, "one");
            cur = take(f, repo, &clen);
            assert_false(same(prev, plen, cur, clen));
        }
        write_file(f, rel, "one");
        prev = take(f, repo, &plen);

        write_file(f, rel, "one+");
        cur = take(f, repo, &clen);
        assert_false(same(prev, plen, cur, clen));
        prev = cur, plen = clen;

        /* same size, new inode (hg's atomictemp rename) */
        write_file(f, apr_pstrcat(f->p, rel, ".tmp", NULL), "two+");
        assert_int_equal(rename(tmp, abs), 0);
        cur = take(f, repo, &clen);
        assert_false(same(prev, plen, cur, clen));
        prev = cur, plen = clen;

        /* only the nanoseconds of the mtime move */
        {
            struct timespec ts[2];
            assert_int_equal(stat(abs, &st), 0);
            ts[0] = st.st_atim;
            ts[1].tv_sec = st.st_mtim.tv_sec;
            ts[1].tv_nsec = 1000;
            assert_int_equal(utimensat(AT_FDCWD, abs, ts, 0), 0);
            prev = take(f, repo, &plen);
            ts[1].tv_nsec = 1001;
            assert_int_equal(utimensat(AT_FDCWD, abs, ts, 0), 0);
            cur = take(f, repo, &clen);
            assert_false(same(prev, plen, cur, clen));
            prev = cur, plen = clen;
        }

        /* only the mtime moves, by one microsecond */
        assert_int_equal(stat(abs, &st), 0);
        tv[0].tv_sec = st.st_atim.tv_sec;
        tv[0].tv_usec = 0;
        tv[1].tv_sec = st.st_mtim.tv_sec - 100;
        tv[1].tv_usec = 1;
        assert_int_equal(utimes(abs, tv), 0);
        cur = take(f, repo, &clen);
        assert_false(same(prev, plen, cur, clen));
        prev = cur, plen = clen;

        /* disappearing (for requires: no longer a repository) */
        assert_int_equal(unlink(abs), 0);
        if (is_requires) {
            assert_int_equal(hgs3_repo_fingerprint(repo, f->p), APR_ENOENT);
            make_repo(f, "root/a");
            continue;
        }
        cur = take(f, repo, &clen);
        assert_false(same(prev, plen, cur, clen));
    }
}

static void test_fingerprint_layout(void **state)
{
    fx *f = *state;
    hgs3_repo *repo = NULL;
    apr_size_t n = 0, len;
    const unsigned char *fp;
    assert_int_equal(hgs3_repo_find(&repo, f->p, f->root, "a"), APR_SUCCESS);
    while (HGS3_REPO_STATE_FILES[n]) {
        ++n;
    }
    fp = take(f, repo, &len);
    /* only .hg/requires exists: version, then one 49-byte record and n-1 absent */
    assert_int_equal(len, 1 + (n - 1) + 49);
    assert_int_equal(fp[0], 2);
    /* the record holds size, mtime s/ns, ctime s/ns and inode, as stat(2) says */
    {
        apr_size_t i, off = 1;
        struct stat st;
        apr_uint64_t want[6], got;
        int j, k;
        assert_int_equal(stat(under_root(f, "a/.hg/requires"), &st), 0);
        want[0] = (apr_uint64_t)st.st_size;
        want[1] = (apr_uint64_t)st.st_mtim.tv_sec;
        want[2] = (apr_uint64_t)st.st_mtim.tv_nsec;
        want[3] = (apr_uint64_t)st.st_ctim.tv_sec;
        want[4] = (apr_uint64_t)st.st_ctim.tv_nsec;
        want[5] = (apr_uint64_t)st.st_ino;
        for (i = 0; i < n; ++i) {
            if (strcmp(HGS3_REPO_STATE_FILES[i], ".hg/requires") != 0) {
                assert_int_equal(fp[off], 0);
                off += 1;
                continue;
            }
            assert_int_equal(fp[off], 1);
            off += 1;
            for (j = 0; j < 6; ++j) {
                for (got = 0, k = 0; k < 8; ++k) {
                    got = (got << 8) | fp[off++];
                }
                assert_true(got == want[j]);
            }
        }
        assert_int_equal(off, len);
    }
    /* a missing repository is an error, not an "all absent" state */
    repo->dir = under_root(f, "gone");
    assert_int_equal(hgs3_repo_fingerprint(repo, f->p), APR_ENOENT);
    assert_null(repo->fp);
    repo->dir = under_root(f, "plain");
    assert_int_equal(hgs3_repo_fingerprint(repo, f->p), APR_ENOENT);
    /* ENOTDIR counts as absent; other errors fail */
    repo->dir = under_root(f, "a");
    write_file(f, "root/a/.hg/store", "not a directory");
    assert_int_equal(hgs3_repo_fingerprint(repo, f->p), APR_SUCCESS);
    unlink(apr_pstrcat(f->p, f->base, "/root/a/.hg/store", NULL));
    {
        char *longdir = apr_palloc(f->p, 5000);
        memset(longdir, 'x', 4999);
        longdir[0] = '/';
        longdir[4999] = '\0';
        repo->dir = longdir;
        assert_int_not_equal(hgs3_repo_fingerprint(repo, f->p), APR_SUCCESS);
        assert_null(repo->fp);
    }
}

/* SPEC's list, each by name: dropping one from the list must fail here. */
static void test_fingerprint_spec_files(void **state)
{
    static const char *const spec[] = {
        ".hg/store/00changelog.i", ".hg/store/00changelog.d",
        ".hg/store/00changelog.n", ".hg/store/phaseroots",
        ".hg/store/obsstore",      ".hg/bookmarks",
        ".hg/store/bookmarks",     ".hg/requires",
        ".hg/store/requires",      ".hg/store/undo",
        ".hg/undo.desc",           ".hg/hgrc",
        ".hg/localtags",           ".hg/clonebundles.manifest",
    };
    apr_size_t i;
    (void)state;
    for (i = 0; i < sizeof(spec) / sizeof(spec[0]); ++i) {
        int j, found = 0;
        for (j = 0; HGS3_REPO_STATE_FILES[j]; ++j) {
            found |= strcmp(HGS3_REPO_STATE_FILES[j], spec[i]) == 0;
        }
        print_message("file %s\n", spec[i]);
        assert_true(found);
    }
}

/* How a Mercurial transaction closes (hg censor, bookmark moves with
 * bookmarksinstore, ...): store/journal renamed onto store/undo and
 * journal.desc onto undo.desc, both of which may already exist with the same
 * size. Each rename alone changes the fingerprint. */
static void test_fingerprint_transaction_close(void **state)
{
    fx *f = *state;
    hgs3_repo *repo = NULL;
    const unsigned char *prev, *cur;
    apr_size_t plen, clen;
    static const char *const pairs[][2] = {
        {"root/a/.hg/store/journal", "root/a/.hg/store/undo"},
        {"root/a/.hg/journal.desc", "root/a/.hg/undo.desc"},
    };
    int round, k;

    assert_int_equal(hgs3_repo_find(&repo, f->p, f->root, "a"), APR_SUCCESS);
    for (round = 0; round < 2; ++round) {
        for (k = 0; k < 2; ++k) {
            prev = take(f, repo, &plen);
            write_file(f, pairs[k][0], "3\ncensor\n");
            assert_int_equal(rename(apr_pstrcat(f->p, f->base, "/", pairs[k][0], NULL),
                                    apr_pstrcat(f->p, f->base, "/", pairs[k][1], NULL)),
                             0);
            cur = take(f, repo, &clen);
            assert_false(same(prev, plen, cur, clen));
        }
    }
}

/* ---- HgS3CacheRepository: the per-process realpath cache ------------------ */

/* Point link at target (relative to base) the way an operator would flip a
 * deployment: a new symlink renamed over the old one. */
static void flip_symlink(fx *f, const char *link, const char *target)
{
    const char *abs = apr_pstrcat(f->p, f->base, "/", link, NULL);
    const char *tmp = apr_pstrcat(f->p, abs, ".new", NULL);
    unlink(tmp);
    assert_int_equal(symlink(apr_pstrcat(f->p, f->base, "/", target, NULL), tmp), 0);
    assert_int_equal(rename(tmp, abs), 0);
}

/* The fingerprint of the repository that hgs3_repo_find() maps rel to. */
static const unsigned char *fp_of(fx *f, const char *rel, apr_size_t *plen)
{
    hgs3_repo *repo = NULL;
    assert_int_equal(hgs3_repo_find(&repo, f->p, f->root, rel), APR_SUCCESS);
    return take(f, repo, plen);
}

static void test_open_cache_symlink_flip(void **state)
{
    fx *f = *state;
    hgs3_repo *repo = NULL;
    const char *link = apr_pstrcat(f->p, f->base, "/current", NULL);
    const unsigned char *fa, *fb, *got;
    apr_size_t la, lb, lgot;
    apr_uint64_t n0;

    make_repo(f, "root/copy1");
    make_repo(f, "root/copy2");
    write_file(f, "root/copy2/.hg/store/00changelog.i", "other");
    fa = fp_of(f, "copy1", &la);
    fb = fp_of(f, "copy2", &lb);
    assert_false(same(fa, la, fb, lb));

    flip_symlink(f, "current", "root/copy1");
    n0 = hgs3_repo_cache_resolutions();
    assert_int_equal(hgs3_repo_open(&repo, f->p, link, NULL), APR_SUCCESS);
    assert_string_equal(repo->dir, under_root(f, "copy1"));
    assert_true(hgs3_repo_cache_resolutions() == n0 + 1);
    /* unchanged: served from the cache, no new resolution */
    assert_int_equal(hgs3_repo_open(&repo, f->p, link, NULL), APR_SUCCESS);
    assert_string_equal(repo->dir, under_root(f, "copy1"));
    assert_true(hgs3_repo_cache_resolutions() == n0 + 1);
    got = take(f, repo, &lgot);
    assert_true(same(got, lgot, fa, la));

    /* the flip is seen by the very next call */
    flip_symlink(f, "current", "root/copy2");
    assert_int_equal(hgs3_repo_open(&repo, f->p, link, NULL), APR_SUCCESS);
    assert_string_equal(repo->dir, under_root(f, "copy2"));
    assert_true(hgs3_repo_cache_resolutions() == n0 + 2);
    got = take(f, repo, &lgot);
    assert_true(same(got, lgot, fb, lb));

    /* and back again: the earlier entry is not reused blindly */
    flip_symlink(f, "current", "root/copy1");
    assert_int_equal(hgs3_repo_open(&repo, f->p, link, NULL), APR_SUCCESS);
    assert_string_equal(repo->dir, under_root(f, "copy1"));
    got = take(f, repo, &lgot);
    assert_true(same(got, lgot, fa, la));

    /* a link to something that is not a repository */
    flip_symlink(f, "current", "root/plain");
    assert_int_equal(hgs3_repo_open(&repo, f->p, link, NULL), APR_SUCCESS);
    assert_string_equal(repo->dir, under_root(f, "plain"));
    assert_int_equal(hgs3_repo_fingerprint(repo, f->p), APR_ENOENT);
    flip_symlink(f, "current", "root/none");
    assert_int_equal(hgs3_repo_open(&repo, f->p, link, NULL), APR_ENOENT);
    flip_symlink(f, "current", "root/sh");
    assert_int_equal(hgs3_repo_open(&repo, f->p, link, NULL), APR_ENOTIMPL);
}

/* Another directory renamed into the configured place keeps the name (same
 * realpath) but is another directory: its own fingerprint, at once. */
static void test_open_cache_dir_replaced(void **state)
{
    fx *f = *state;
    hgs3_repo *repo = NULL;
    const char *path = under_root(f, "live");
    const unsigned char *f1, *f2, *got;
    apr_size_t l1, l2, lgot;

    make_repo(f, "root/live");
    f1 = fp_of(f, "live", &l1);
    assert_int_equal(hgs3_repo_open(&repo, f->p, path, NULL), APR_SUCCESS);
    got = take(f, repo, &lgot);
    assert_true(same(got, lgot, f1, l1));

    make_repo(f, "root/staged");
    write_file(f, "root/staged/.hg/bookmarks", "0123 main\n");
    assert_int_equal(rename(under_root(f, "live"), under_root(f, "old")), 0);
    assert_int_equal(rename(under_root(f, "staged"), path), 0);
    f2 = fp_of(f, "live", &l2);
    assert_false(same(f1, l1, f2, l2));
    assert_int_equal(hgs3_repo_open(&repo, f->p, path, NULL), APR_SUCCESS);
    assert_string_equal(repo->dir, path);
    got = take(f, repo, &lgot);
    assert_true(same(got, lgot, f2, l2));
}

/* The fingerprint comes from the directory hgs3_repo_open() identified,
 * even when the configured path moves on before it is taken. */
static void test_open_fingerprint_pinned(void **state)
{
    fx *f = *state;
    hgs3_repo *repo = NULL;
    const char *link = apr_pstrcat(f->p, f->base, "/pinned", NULL);
    const unsigned char *fa, *got;
    apr_size_t la, lgot;

    make_repo(f, "root/p1");
    make_repo(f, "root/p2");
    fa = fp_of(f, "p1", &la);
    flip_symlink(f, "pinned", "root/p1");
    assert_int_equal(hgs3_repo_open(&repo, f->p, link, NULL), APR_SUCCESS);
    flip_symlink(f, "pinned", "root/p2");
    got = take(f, repo, &lgot);
    assert_true(same(got, lgot, fa, la));
    assert_string_equal(repo->dir, under_root(f, "p1"));
}

/* The layout the fingerprint had when it stat()ed full paths, rebuilt here
 * independently: the fstatat() implementation must give the same bytes. */
static apr_size_t reference_fp(fx *f, const char *dir, unsigned char *out)
{
    apr_size_t off = 0;
    int i, j;
    out[off++] = 2; /* the format version */
    for (i = 0; HGS3_REPO_STATE_FILES[i]; ++i) {
        struct stat st;
        apr_uint64_t v[6];
        if (stat(apr_pstrcat(f->p, dir, "/", HGS3_REPO_STATE_FILES[i], NULL), &st) != 0) {
            assert_true(errno == ENOENT || errno == ENOTDIR);
            out[off++] = 0;
            continue;
        }
        out[off++] = 1;
        v[0] = (apr_uint64_t)st.st_size;
        v[1] = (apr_uint64_t)st.st_mtim.tv_sec;
        v[2] = (apr_uint64_t)st.st_mtim.tv_nsec;
        v[3] = (apr_uint64_t)st.st_ctim.tv_sec;
        v[4] = (apr_uint64_t)st.st_ctim.tv_nsec;
        v[5] = (apr_uint64_t)st.st_ino;
        for (j = 0; j < 6; ++j) {
            int k;
            for (k = 7; k >= 0; --k) {
                out[off++] = (unsigned char)(v[j] >> (8 * k));
            }
        }
    }
    return off;
}

static void test_fingerprint_equals_full_path_stat(void **state)
{
    fx *f = *state;
    hgs3_repo *repo = NULL;
    unsigned char want[1024];
    const unsigned char *got;
    apr_size_t wlen, glen;
    int i;

    /* every other state file present, by hgs3_repo_find() and hgs3_repo_open() */
    for (i = 0; HGS3_REPO_STATE_FILES[i]; ++i) {
        if (i % 2 == 0) {
            write_file(f, apr_pstrcat(f->p, "root/a/", HGS3_REPO_STATE_FILES[i], NULL), "x");
        }
    }
    wlen = reference_fp(f, under_root(f, "a"), want);
    assert_int_equal(hgs3_repo_find(&repo, f->p, f->root, "a"), APR_SUCCESS);
    got = take(f, repo, &glen);
    assert_true(same(got, glen, want, wlen));
    assert_int_equal(hgs3_repo_open(&repo, f->p, under_root(f, "in"), NULL), APR_SUCCESS);
    got = take(f, repo, &glen);
    assert_true(same(got, glen, want, wlen));

    /* all present */
    for (i = 0; HGS3_REPO_STATE_FILES[i]; ++i) {
        write_file(f, apr_pstrcat(f->p, "root/a/", HGS3_REPO_STATE_FILES[i], NULL), "yy");
    }
    wlen = reference_fp(f, under_root(f, "a"), want);
    assert_int_equal(hgs3_repo_open(&repo, f->p, under_root(f, "a"), NULL), APR_SUCCESS);
    got = take(f, repo, &glen);
    assert_true(same(got, glen, want, wlen));

    /* store is a symlink to a directory elsewhere: followed, as stat() does */
    assert_int_equal(rename(under_root(f, "a/.hg/store"), apr_pstrcat(f->p, f->base, "/st", NULL)),
                     0);
    assert_int_equal(symlink(apr_pstrcat(f->p, f->base, "/st", NULL), under_root(f, "a/.hg/store")),
                     0);
    wlen = reference_fp(f, under_root(f, "a"), want);
    got = take(f, repo, &glen);
    assert_true(same(got, glen, want, wlen));

    /* store is a file: its files are absent (ENOTDIR) */
    assert_int_equal(unlink(under_root(f, "a/.hg/store")), 0);
    write_file(f, "root/a/.hg/store", "not a directory");
    wlen = reference_fp(f, under_root(f, "a"), want);
    got = take(f, repo, &glen);
    assert_true(same(got, glen, want, wlen));
    assert_int_equal(glen, wlen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_longest_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traversal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_each_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_layout, setup, teardown),
        cmocka_unit_test(test_fingerprint_spec_files),
        cmocka_unit_test_setup_teardown(test_fingerprint_transaction_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_cache_symlink_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_cache_dir_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fingerprint_pinned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_equals_full_path_stat, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
