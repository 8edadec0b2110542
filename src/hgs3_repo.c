/* hgs3_repo.c: repository mapping and state fingerprint. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <unistd.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "hgs3_err.h"
#include "hgs3_req.h"
#include "hgs3_repo.h"
#include "hgs3_conffiles.h"

#define FP_VERSION 2

/* Every file whose change can change a response (SPEC "The cache key"),
 * plus store/narrowspec, which limits what a narrow server repository
 * sends. store/undo and undo.desc are what every Mercurial transaction
 * renames its journal onto when it closes: they catch transactional rewrites
 * of the store that leave the other files alone (hg censor rewrites a
 * filelog). The order is part of the fingerprint format. */
const char *const HGS3_REPO_STATE_FILES[] = {
    ".hg/store/00changelog.i",
    ".hg/store/00changelog.d",
    ".hg/store/00changelog.n",
    ".hg/store/phaseroots",
    ".hg/store/obsstore",
    ".hg/bookmarks",
    ".hg/store/bookmarks",
    ".hg/requires",
    ".hg/store/requires",
    ".hg/hgrc",
    ".hg/store/narrowspec",
    ".hg/store/undo",
    ".hg/undo.desc",
    ".hg/localtags",
    ".hg/clonebundles.manifest",
    NULL,
};

static apr_status_t errno_status(int e)
{
    return e ? APR_FROM_OS_ERROR(e) : APR_EGENERAL;
}

/* realpath(3) into the pool. APR has no call that resolves symlinks. */
static apr_status_t real_path(const char **pout, apr_pool_t *p, const char *path)
{
    char *rp = realpath(path, NULL);
    if (!rp) {
        *pout = NULL;
        return errno_status(errno);
    }
    *pout = apr_pstrdup(p, rp);
    free(rp);
    return APR_SUCCESS;
}

/* 1 if path/rel exists, 0 if it does not (ENOENT, ENOTDIR), else an error
 * status in *prv. */
static int exists(apr_pool_t *p, const char *path, const char *rel, int want_reg, apr_status_t *prv)
{
    struct stat st;
    *prv = APR_SUCCESS;
    if (stat(apr_pstrcat(p, path, "/", rel, NULL), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return 0;
        }
        *prv = errno_status(errno);
        return 0;
    }
    return want_reg ? S_ISREG(st.st_mode) != 0 : 1;
}

/* A repository is usable when it has .hg/requires and is not a share. */
static apr_status_t check_repo(apr_pool_t *p, const char *dir)
{
    apr_status_t rv;
    if (!exists(p, dir, ".hg/requires", 1, &rv)) {
        return rv != APR_SUCCESS ? rv : APR_ENOENT;
    }
    if (exists(p, dir, ".hg/sharedpath", 0, &rv)) {
        return APR_ENOTIMPL;
    }
    return rv;
}

/* Is path equal to or below root? Both are realpaths. */
static int under(const char *path, const char *root)
{
    apr_size_t n = strlen(root);
    if (n == 1 && root[0] == '/') {
        return path[0] == '/';
    }
    return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Trim the raw path: stop at '?' or '#', drop leading and trailing '/'. */
static const char *trim_path(apr_pool_t *p, const char *raw, apr_size_t *plen)
{
    apr_size_t len = strcspn(raw ? raw : "", "?#");
    const char *s = raw ? raw : "";
    while (len && *s == '/') {
        ++s;
        --len;
    }
    while (len && s[len - 1] == '/') {
        --len;
    }
    *plen = len;
    return apr_pstrmemdup(p, s, len);
}

struct hgs3_repo_dirfd {
    int fd;
    dev_t dev;
    ino_t ino;
};

static apr_status_t dirfd_close(void *data)
{
    hgs3_repo_dirfd *d = data;
    if (d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
    }
    return APR_SUCCESS;
}

/* Open path as a directory (O_PATH: no read permission needed, nothing
 * read) and identify it. The fd is closed with the pool. Not a directory:
 * APR_ENOENT, as for a path without .hg/requires. */
static apr_status_t dirfd_open(hgs3_repo_dirfd **pd, apr_pool_t *p, const char *path)
{
    hgs3_repo_dirfd *d = apr_pcalloc(p, sizeof(*d));
    struct stat st;
    apr_status_t rv = APR_SUCCESS;

    *pd = NULL;
    d->fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (d->fd < 0) {
        rv = errno == ENOTDIR ? APR_ENOENT : errno_status(errno);
        goto leave;
    }
    apr_pool_cleanup_register(p, d, dirfd_close, apr_pool_cleanup_null);
    if (fstat(d->fd, &st) != 0) {
        rv = errno_status(errno);
        apr_pool_cleanup_run(p, d, dirfd_close);
        goto leave;
    }
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    *pd = d;
leave:
    return rv;
}

/* ---- the per-process cache of HgS3CacheRepository realpaths ----------------
 *
 * A handful of configured paths per server: a small table under a mutex,
 * replaced round-robin. An entry is only trusted for the directory (dev,
 * ino) it was resolved for; the caller identifies the directory anew on
 * every request. */

#define REPO_CACHE_SLOTS 16

typedef struct repo_cache_slot {
    char *path; /* as configured (malloc) */
    char *real; /* its realpath (malloc) */
    dev_t dev;
    ino_t ino;
} repo_cache_slot;

static pthread_mutex_t repo_cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static repo_cache_slot repo_cache[REPO_CACHE_SLOTS];
static unsigned int repo_cache_next;
static apr_uint64_t repo_cache_resolved;

apr_uint64_t hgs3_repo_cache_resolutions(void)
{
    apr_uint64_t n;
    pthread_mutex_lock(&repo_cache_mutex);
    n = repo_cache_resolved;
    pthread_mutex_unlock(&repo_cache_mutex);
    return n;
}

/* Called with the mutex held. */
static repo_cache_slot *repo_cache_find(const char *path)
{
    int i;
    for (i = 0; i < REPO_CACHE_SLOTS; ++i) {
        if (repo_cache[i].path && strcmp(repo_cache[i].path, path) == 0) {
            return &repo_cache[i];
        }
    }
    return NULL;
}

/* Called with the mutex held. Out of memory only means "not cached". */
static void repo_cache_store(const char *path, const char *real, const hgs3_repo_dirfd *d)
{
    repo_cache_slot *s = repo_cache_find(path);
    if (!s) {
        s = &repo_cache[repo_cache_next];
        repo_cache_next = (repo_cache_next + 1) % REPO_CACHE_SLOTS;
    }
    free(s->path);
    free(s->real);
    s->path = strdup(path);
    s->real = strdup(real);
    if (!s->path || !s->real) {
        free(s->path);
        free(s->real);
        s->path = s->real = NULL;
        return;
    }
    s->dev = d->dev;
    s->ino = d->ino;
}

/* The realpath of path, which d (opened from path) identifies. A fresh
 * resolution is checked against d: should path have been switched to
 * another directory between the open and the realpath, the request is not
 * eligible (APR_EAGAIN) rather than keyed by a name that is not d's. */
static apr_status_t cached_real_path(const char **pout, apr_pool_t *p, const char *path,
                                     const hgs3_repo_dirfd *d)
{
    repo_cache_slot *s;
    struct stat st;
    apr_status_t rv;

    *pout = NULL;
    pthread_mutex_lock(&repo_cache_mutex);
    s = repo_cache_find(path);
    if (s && s->dev == d->dev && s->ino == d->ino) {
        *pout = apr_pstrdup(p, s->real);
    }
    pthread_mutex_unlock(&repo_cache_mutex);
    if (*pout) {
        return APR_SUCCESS;
    }
    if ((rv = real_path(pout, p, path)) != APR_SUCCESS) {
        goto leave;
    }
    if (stat(*pout, &st) != 0) {
        rv = errno_status(errno);
        goto leave;
    }
    if (st.st_dev != d->dev || st.st_ino != d->ino) {
        rv = APR_EAGAIN;
        goto leave;
    }
    pthread_mutex_lock(&repo_cache_mutex);
    ++repo_cache_resolved;
    repo_cache_store(path, *pout, d);
    pthread_mutex_unlock(&repo_cache_mutex);
leave:
    if (rv != APR_SUCCESS) {
        *pout = NULL;
    }
    return rv;
}

apr_status_t hgs3_repo_open(hgs3_repo **prepo, apr_pool_t *p, const char *dir, const char *raw_path)
{
    hgs3_repo *repo = apr_pcalloc(p, sizeof(*repo));
    struct stat st;
    apr_size_t len;
    apr_status_t rv;

    *prepo = NULL;
    if (!dir || !*dir) {
        rv = HGS3_ECONFIG;
        goto leave;
    }
    if ((rv = dirfd_open(&repo->opened, p, dir)) != APR_SUCCESS) {
        goto leave;
    }
    if ((rv = cached_real_path(&repo->dir, p, dir, repo->opened)) != APR_SUCCESS) {
        goto leave;
    }
    /* Not a share (see hgs3_repo.h). Checked on every request, relative to
     * the directory: one short lookup. */
    if (fstatat(repo->opened->fd, ".hg/sharedpath", &st, 0) == 0) {
        rv = APR_ENOTIMPL;
        goto leave;
    }
    if (errno != ENOENT && errno != ENOTDIR) {
        rv = errno_status(errno);
        goto leave;
    }
    repo->name = "";
    repo->rest = trim_path(p, raw_path, &len);
    *prepo = repo;
leave:
    if (rv != APR_SUCCESS && repo->opened) {
        apr_pool_cleanup_run(p, repo->opened, dirfd_close);
    }
    return rv;
}

/* Split the trimmed path into raw and decoded segments, refusing every form
 * that could step out of a directory or that hgwebdir would read otherwise. */
static apr_status_t split_segments(apr_array_header_t **praw, apr_array_header_t **pdec,
                                   apr_pool_t *p, const char *path, apr_size_t len)
{
    apr_array_header_t *raw = apr_array_make(p, 8, sizeof(const char *));
    apr_array_header_t *dec = apr_array_make(p, 8, sizeof(const char *));
    const char *s = path, *end = path + len;
    apr_status_t rv = APR_SUCCESS;

    *praw = *pdec = NULL;
    while (s <= end) {
        const char *slash = memchr(s, '/', (apr_size_t)(end - s));
        const char *e = slash ? slash : end;
        char *d;
        apr_size_t dlen;

        if (e == s) {
            /* "a//b": hgwebdir would look up "a/" and then "a" */
            rv = HGS3_EMALFORMED;
            goto leave;
        }
        if (raw->nelts >= HGS3_REPO_MAX_SEGMENTS) {
            rv = HGS3_ETOOBIG;
            goto leave;
        }
        if ((rv = hgs3_req_unescape(&d, &dlen, p, s, (apr_size_t)(e - s), 0)) != APR_SUCCESS) {
            goto leave;
        }
        if (memchr(d, '\0', dlen) || memchr(d, '/', dlen) || memchr(d, '\\', dlen) ||
            strcmp(d, ".") == 0 || strcmp(d, "..") == 0) {
            rv = HGS3_EMALFORMED;
            goto leave;
        }
        APR_ARRAY_PUSH(raw, const char *) = apr_pstrmemdup(p, s, (apr_size_t)(e - s));
        APR_ARRAY_PUSH(dec, const char *) = d;
        s = e + 1;
    }
    *praw = raw;
    *pdec = dec;
leave:
    return rv;
}

static const char *join(apr_pool_t *p, const apr_array_header_t *segs, int from, int to)
{
    const char *out = "";
    int i;
    for (i = from; i < to; ++i) {
        const char *seg = APR_ARRAY_IDX(segs, i, const char *);
        out = i == from ? seg : apr_pstrcat(p, out, "/", seg, NULL);
    }
    return out;
}

/* The repository named by the longest prefix of the decoded segments dec
 * under rroot (real path), as hgwebdir looks. The first repository found
 * decides: if it is refused, we do not fall back to a shorter one, because
 * hgweb would not either. APR_ENOENT when no prefix names one. */
static apr_status_t find_longest(hgs3_repo *repo, apr_pool_t *p, const char *rroot,
                                 const apr_array_header_t *raw, const apr_array_header_t *dec)
{
    apr_status_t rv = APR_ENOENT;
    int k;

    for (k = dec->nelts; k >= 1; --k) {
        const char *cand = apr_pstrcat(p, rroot, "/", join(p, dec, 0, k), NULL);
        if (!exists(p, cand, ".hg/requires", 1, &rv)) {
            if (rv != APR_SUCCESS) {
                goto leave;
            }
            rv = APR_ENOENT;
            continue;
        }
        if ((rv = real_path(&repo->dir, p, cand)) != APR_SUCCESS) {
            goto leave;
        }
        if (!under(repo->dir, rroot) || strcmp(repo->dir, rroot) == 0) {
            rv = APR_EACCES;
            goto leave;
        }
        if ((rv = check_repo(p, repo->dir)) != APR_SUCCESS) {
            goto leave;
        }
        repo->name = join(p, dec, 0, k);
        repo->rest = join(p, raw, k, raw->nelts);
        goto leave;
    }
leave:
    return rv;
}

apr_status_t hgs3_repo_find(hgs3_repo **prepo, apr_pool_t *p, const char *root,
                            const char *raw_path)
{
    hgs3_repo *repo = apr_pcalloc(p, sizeof(*repo));
    apr_array_header_t *raw = NULL, *dec = NULL;
    const char *rroot = NULL, *path;
    apr_size_t len;
    apr_status_t rv;

    *prepo = NULL;
    if (!root || !*root) {
        rv = HGS3_ECONFIG;
        goto leave;
    }
    if (raw_path && strcspn(raw_path, "?#") > HGS3_REPO_MAX_PATH) {
        rv = HGS3_ETOOBIG;
        goto leave;
    }
    path = trim_path(p, raw_path, &len);
    if (len == 0) {
        rv = APR_ENOENT;
        goto leave;
    }
    if ((rv = split_segments(&raw, &dec, p, path, len)) != APR_SUCCESS) {
        goto leave;
    }
    if ((rv = real_path(&rroot, p, root)) != APR_SUCCESS) {
        goto leave;
    }
    rv = find_longest(repo, p, rroot, raw, dec);
    if (rv == APR_SUCCESS) {
        *prepo = repo;
    }
leave:
    if (rv != APR_SUCCESS) {
        *prepo = NULL;
    }
    return rv;
}

apr_status_t hgs3_repo_resolve(hgs3_repo **prepo, apr_pool_t *p, const char *repository,
                               const char *repository_root, const char *raw_path)
{
    *prepo = NULL;
    if (repository && *repository) {
        return hgs3_repo_open(prepo, p, repository, raw_path);
    }
    if (repository_root && *repository_root) {
        return hgs3_repo_find(prepo, p, repository_root, raw_path);
    }
    return HGS3_ECONFIG;
}

static unsigned char *put_u64(unsigned char *b, apr_uint64_t v)
{
    int i;
    for (i = 7; i >= 0; --i) {
        *b++ = (unsigned char)(v >> (8 * i));
    }
    return b;
}

/* The state files are fstatat()ed relative to the repository directory
 * (opened O_PATH once per request by hgs3_repo_open, or here), rather than
 * stat()ing ten absolute paths that each walk the whole path again. The
 * kernel then walks only ".hg/store/<name>" from a directory it holds: no
 * further descriptors to open and close, and each stat fails with the errno
 * stat() of the full path would have given. */
typedef struct fp_top {
    int fd;
    int err; /* errno when fd < 0 */
    int own; /* opened here: close at the end */
} fp_top;

static void fp_top_open(fp_top *d, const hgs3_repo *repo)
{
    d->own = 0;
    d->err = 0;
    if (repo->opened && repo->opened->fd >= 0) {
        d->fd = repo->opened->fd;
        return;
    }
    d->fd = open(repo->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    d->err = d->fd < 0 ? errno : 0;
    d->own = d->fd >= 0;
}

static void fp_top_close(fp_top *d)
{
    if (d->own) {
        close(d->fd);
    }
}

/* stat() of repo/rel. 0, or -1 with errno. */
static int fp_stat(const fp_top *d, const char *rel, struct stat *st)
{
    if (d->fd < 0) {
        errno = d->err;
        return -1;
    }
    return fstatat(d->fd, rel, st, 0);
}

/* stat(2), not apr_stat(): apr_finfo_t keeps mtime in microseconds and has
 * no ctime in nanoseconds. Two writes in the same microsecond that keep the
 * size would look alike; with st_mtim/st_ctim only the filesystem's own
 * timestamp granularity limits us. ctime is included as well because tools
 * that restore mtime (cp -p, rsync -t, touch -r) cannot restore it.
 * The configuration files follow the repository's own in the same blob, so
 * the key's encoding does not change with them. */
apr_status_t hgs3_repo_fingerprint_ex(hgs3_repo *repo, apr_pool_t *p, hgs3_conffiles *config)
{
    enum { REC = 1 + 6 * 8 };
    apr_size_t nfiles = 0, i;
    unsigned char *buf, *b;
    fp_top top;
    apr_status_t rv = APR_SUCCESS;

    repo->fp = NULL;
    repo->fp_len = 0;
    while (HGS3_REPO_STATE_FILES[nfiles]) {
        ++nfiles;
    }
    buf = apr_palloc(p, 1 + nfiles * REC);
    b = buf;
    *b++ = FP_VERSION;
    fp_top_open(&top, repo);
    for (i = 0; i < nfiles; ++i) {
        struct stat st;
        int is_requires = strcmp(HGS3_REPO_STATE_FILES[i], ".hg/requires") == 0;
        if (fp_stat(&top, HGS3_REPO_STATE_FILES[i], &st) != 0) {
            if ((errno == ENOENT || errno == ENOTDIR) && !is_requires) {
                *b++ = 0;
                continue;
            }
            /* no .hg/requires: no longer a repository */
            rv = errno_status(errno);
            goto leave;
        }
        if (is_requires && !S_ISREG(st.st_mode)) {
            rv = APR_ENOENT; /* not a repository (hgs3_repo_open() relies on this) */
            goto leave;
        }
        *b++ = 1;
        b = put_u64(b, (apr_uint64_t)st.st_size);
        b = put_u64(b, (apr_uint64_t)st.st_mtim.tv_sec);
        b = put_u64(b, (apr_uint64_t)st.st_mtim.tv_nsec);
        b = put_u64(b, (apr_uint64_t)st.st_ctim.tv_sec);
        b = put_u64(b, (apr_uint64_t)st.st_ctim.tv_nsec);
        b = put_u64(b, (apr_uint64_t)st.st_ino);
    }
    if (config) {
        rv = hgs3_conffiles_fingerprint(config, p, buf, (apr_size_t)(b - buf), &repo->fp,
                                        &repo->fp_len);
        goto leave;
    }
    repo->fp = buf;
    repo->fp_len = (apr_size_t)(b - buf);
leave:
    if (rv != APR_SUCCESS) {
        repo->fp = NULL;
        repo->fp_len = 0;
    }
    fp_top_close(&top);
    return rv;
}

apr_status_t hgs3_repo_fingerprint(hgs3_repo *repo, apr_pool_t *p)
{
    return hgs3_repo_fingerprint_ex(repo, p, NULL);
}
