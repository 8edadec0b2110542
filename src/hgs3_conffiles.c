/* hgs3_conffiles.c: fingerprint of HgS3CacheConfigFiles (see the header). */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "hgs3_err.h"
#include "hgs3_conffiles.h"

/* The names a wildcard entry matched when its directory last had the stat
 * `seen`; malloc'd, because requests of every thread replace them. */
typedef struct cf_glob {
    pthread_mutex_t mx;
    int valid;
    struct stat seen;
    char **names;
    apr_size_t n;
} cf_glob;

typedef struct cf_entry {
    const char *path;    /* as configured */
    const char *dir;     /* wildcard entry: its directory; NULL for a plain file */
    const char *pattern; /*   and its last component */
    cf_glob *glob;
} cf_entry;

struct hgs3_conffiles {
    cf_entry *entries;
    int n;
};

static volatile apr_uint32_t scans;

unsigned long hgs3_conffiles_scans(void)
{
    return apr_atomic_read32(&scans);
}

static void names_free(char **names, apr_size_t n)
{
    apr_size_t i;
    for (i = 0; names && i < n; ++i) {
        free(names[i]);
    }
    free(names);
}

static apr_status_t glob_cleanup(void *data)
{
    cf_glob *g = data;
    names_free(g->names, g->n);
    g->names = NULL;
    g->n = 0;
    pthread_mutex_destroy(&g->mx);
    return APR_SUCCESS;
}

static int has_wildcard(const char *s, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i < len; ++i) {
        if (s[i] == '*' || s[i] == '?' || s[i] == '[') {
            return 1;
        }
    }
    return 0;
}

/* Parse one configured path into e. */
static apr_status_t entry_init(cf_entry *e, apr_pool_t *p, const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    apr_status_t rv = HGS3_ECONFIG;

    if (!path || path[0] != '/' || !slash || slash[1] == '\0' ||
        has_wildcard(path, (apr_size_t)(slash - path))) {
        goto leave;
    }
    e->path = apr_pstrdup(p, path);
    if (has_wildcard(slash + 1, strlen(slash + 1))) {
        e->dir = slash == path ? "/" : apr_pstrmemdup(p, path, (apr_size_t)(slash - path));
        e->pattern = apr_pstrdup(p, slash + 1);
        e->glob = apr_pcalloc(p, sizeof(*e->glob));
        if (pthread_mutex_init(&e->glob->mx, NULL) != 0) {
            rv = APR_ENOMEM;
            goto leave;
        }
        apr_pool_cleanup_register(p, e->glob, glob_cleanup, apr_pool_cleanup_null);
    }
    rv = APR_SUCCESS;
leave:
    return rv;
}

apr_status_t hgs3_conffiles_create(hgs3_conffiles **pcf, apr_pool_t *p, int n,
                                   const char *const *paths, const char **pbad)
{
    hgs3_conffiles *cf = apr_pcalloc(p, sizeof(*cf));
    apr_status_t rv = APR_SUCCESS;
    int i;

    *pcf = NULL;
    *pbad = NULL;
    cf->entries = apr_pcalloc(p, sizeof(*cf->entries) * (apr_size_t)(n > 0 ? n : 1));
    for (i = 0; i < n; ++i) {
        if ((rv = entry_init(&cf->entries[i], p, paths[i])) != APR_SUCCESS) {
            *pbad = paths[i];
            goto leave;
        }
    }
    cf->n = n;
    *pcf = cf;
leave:
    return rv;
}

/* ---- the fingerprint buffer ------------------------------------------------ */

typedef struct fpbuf {
    apr_pool_t *p;
    unsigned char *b;
    apr_size_t len, cap;
} fpbuf;

static unsigned char *fp_room(fpbuf *f, apr_size_t n)
{
    if (f->len + n > f->cap) {
        apr_size_t cap = f->cap * 2 > f->len + n ? f->cap * 2 : f->len + n + 256;
        unsigned char *b = apr_palloc(f->p, cap);
        memcpy(b, f->b, f->len);
        f->b = b;
        f->cap = cap;
    }
    f->len += n;
    return f->b + f->len - n;
}

static void fp_u64(fpbuf *f, apr_uint64_t v)
{
    unsigned char *b = fp_room(f, 8);
    int i;
    for (i = 7; i >= 0; --i) {
        *b++ = (unsigned char)(v >> (8 * i));
    }
}

static void fp_str(fpbuf *f, const char *s)
{
    apr_size_t n = strlen(s);
    fp_u64(f, n);
    memcpy(fp_room(f, n), s, n);
}

/* stat(2) of path as a record. ENOENT/ENOTDIR: absent (*pexists 0). */
static apr_status_t fp_stat(fpbuf *f, const char *path, struct stat *st, int *pexists)
{
    *pexists = 0;
    if (stat(path, st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            *fp_room(f, 1) = 0;
            return APR_SUCCESS;
        }
        return errno ? APR_FROM_OS_ERROR(errno) : APR_EGENERAL;
    }
    *fp_room(f, 1) = 1;
    fp_u64(f, (apr_uint64_t)st->st_size);
    fp_u64(f, (apr_uint64_t)st->st_mtim.tv_sec);
    fp_u64(f, (apr_uint64_t)st->st_mtim.tv_nsec);
    fp_u64(f, (apr_uint64_t)st->st_ctim.tv_sec);
    fp_u64(f, (apr_uint64_t)st->st_ctim.tv_nsec);
    fp_u64(f, (apr_uint64_t)st->st_ino);
    *pexists = 1;
    return APR_SUCCESS;
}

/* ---- wildcard entries --------------------------------------------------- */

static int same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read e's directory into g (under g->mx). The caller stat()ed the
 * directory before, as dst: should it change while being read, the next
 * request sees a stat other than dst and reads it again. */
static apr_status_t glob_scan(cf_glob *g, const cf_entry *e, const struct stat *dst)
{
    DIR *d = opendir(e->dir);
    struct dirent *de;
    char **names = NULL;
    apr_size_t n = 0, cap = 0;
    apr_status_t rv = APR_SUCCESS;

    if (!d) {
        return errno ? APR_FROM_OS_ERROR(errno) : APR_EGENERAL;
    }
    apr_atomic_inc32(&scans);
    while ((de = readdir(d)) != NULL) {
        if (fnmatch(e->pattern, de->d_name, FNM_PERIOD) != 0) {
            continue;
        }
        if (n == cap) {
            char **nn = realloc(names, sizeof(*names) * (cap = cap ? cap * 2 : 8));
            if (!nn) {
                rv = APR_ENOMEM;
                goto leave;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rv = APR_ENOMEM;
            goto leave;
        }
        ++n;
    }
    qsort(names, n, sizeof(*names), cmp_names);
    names_free(g->names, g->n);
    g->names = names;
    g->n = n;
    g->seen = *dst;
    g->valid = 1;
    names = NULL;
leave:
    names_free(names, n);
    closedir(d);
    return rv;
}

/* The names e matches now, copied into p. */
static apr_status_t glob_names(const char ***pnames, apr_size_t *pn, const cf_entry *e,
                               const struct stat *dst, apr_pool_t *p)
{
    cf_glob *g = e->glob;
    const char **names = NULL;
    apr_size_t i;
    apr_status_t rv = APR_SUCCESS;

    *pnames = NULL;
    *pn = 0;
    pthread_mutex_lock(&g->mx);
    if (!g->valid || !same_stat(&g->seen, dst)) {
        g->valid = 0;
        if ((rv = glob_scan(g, e, dst)) != APR_SUCCESS) {
            goto leave;
        }
    }
    names = apr_palloc(p, sizeof(*names) * (g->n ? g->n : 1));
    for (i = 0; i < g->n; ++i) {
        names[i] = apr_pstrdup(p, g->names[i]);
    }
    *pnames = names;
    *pn = g->n;
leave:
    pthread_mutex_unlock(&g->mx);
    return rv;
}

static apr_status_t fp_glob(fpbuf *f, const cf_entry *e, apr_pool_t *p)
{
    struct stat st;
    const char **names = NULL;
    apr_size_t n = 0, i;
    int exists;
    apr_status_t rv;

    if ((rv = fp_stat(f, e->dir, &st, &exists)) != APR_SUCCESS) {
        goto leave;
    }
    if (exists && S_ISDIR(st.st_mode)) {
        rv = glob_names(&names, &n, e, &st, p);
        if (rv == APR_ENOENT || rv == APR_ENOTDIR) {
            n = 0; /* gone since the stat: that stat changes next time */
            rv = APR_SUCCESS;
        }
        if (rv != APR_SUCCESS) {
            goto leave;
        }
    }
    fp_u64(f, n);
    for (i = 0; i < n; ++i) {
        fp_str(f, names[i]);
        rv = fp_stat(f, apr_pstrcat(p, e->dir, "/", names[i], NULL), &st, &exists);
        if (rv != APR_SUCCESS) {
            goto leave;
        }
    }
leave:
    return rv;
}

apr_status_t hgs3_conffiles_fingerprint(hgs3_conffiles *cf, apr_pool_t *p,
                                        const unsigned char *data, apr_size_t len,
                                        const unsigned char **pout, apr_size_t *poutlen)
{
    fpbuf f;
    struct stat st;
    int i, exists;
    apr_status_t rv = APR_SUCCESS;

    *pout = NULL;
    *poutlen = 0;
    f.p = p;
    f.cap = len + 8 + (apr_size_t)cf->n * 128;
    f.b = apr_palloc(p, f.cap);
    f.len = 0;
    if (len) {
        memcpy(fp_room(&f, len), data, len);
    }
    fp_u64(&f, (apr_uint64_t)cf->n);
    for (i = 0; i < cf->n; ++i) {
        const cf_entry *e = &cf->entries[i];
        fp_str(&f, e->path);
        rv = e->glob ? fp_glob(&f, e, p) : fp_stat(&f, e->path, &st, &exists);
        if (rv != APR_SUCCESS) {
            goto leave;
        }
    }
    *pout = f.b;
    *poutlen = f.len;
leave:
    return rv;
}
