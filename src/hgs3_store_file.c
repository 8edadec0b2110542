/* hgs3_store_file.c: the local-directory store (see hgs3_store_file.h).
 *
 * Why a put renames the sidecar first, then the object: both are written
 * completely and fsync'ed under temp names (KEY.tmp.<pid>.<tid>.<random>)
 * that no lookup ever opens (no key may contain ".tmp."), and rename(2)
 * replaces a name atomically. A lookup needs the object and its sidecar, and takes the pair
 * only when the size the sidecar records is the object's size. So:
 *   - a first put shows, in turn, nothing; a sidecar alone (a miss); the
 *     complete pair (a hit);
 *   - a put over an older pair shows for a moment the new sidecar with the
 *     old object: the same bytes for one key as a rule, so the same size (a
 *     hit); any other size is refused, never served;
 *   - a writer that dies leaves temp files only, never a half-written
 *     object under the key's name (`find DIR -name '*.tmp.*' -mmin +60
 *     -delete` removes them).
 * A reader that has opened the object keeps the complete file it opened even
 * if a put replaces or a remove unlinks the name meanwhile. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_portable.h>
#include <apr_thread_proc.h>

#include "hgs3_err.h"
#include "hgs3_store_file.h"

#define CHUNK      (64 * 1024)
#define META_MAX   4096
#define META_MAGIC "hgs3cache-meta 1\n"
#define META_SFX   ".meta"
#define FILE_PERMS (APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD)
#define DIR_PERMS                                                                                  \
    (APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_UEXECUTE | APR_FPROT_GREAD | APR_FPROT_GEXECUTE)

struct hgs3_fstore {
    const char *dir; /* absolute, without a trailing '/' */
};

/* What a sidecar records. */
typedef struct {
    apr_off_t size;
    const char *type;
    const char *sha256;
} meta_t;

apr_status_t hgs3_fstore_create(hgs3_fstore **pfs, apr_pool_t *p, const char *dir)
{
    hgs3_fstore *fs = NULL;
    apr_size_t n = dir ? strlen(dir) : 0;
    apr_status_t rv = APR_SUCCESS;

    if (n == 0 || dir[0] != '/') {
        rv = HGS3_ECONFIG;
        goto leave;
    }
    while (n > 1 && dir[n - 1] == '/') {
        --n;
    }
    fs = apr_pcalloc(p, sizeof(*fs));
    fs->dir = apr_pstrndup(p, dir, n);
leave:
    *pfs = rv == APR_SUCCESS ? fs : NULL;
    return rv;
}

/* One segment of a key: not empty, not . or .., no control character, and
 * nothing a sidecar or temp file could be named. */
static int segment_ok(const char *s, apr_size_t n)
{
    apr_size_t i;
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
        return 0;
    }
    if (n >= sizeof(META_SFX) - 1 &&
        !memcmp(s + n - (sizeof(META_SFX) - 1), META_SFX, sizeof(META_SFX) - 1)) {
        return 0;
    }
    for (i = 0; i < n; ++i) {
        if (apr_iscntrl(s[i]) || s[i] == '\\' || (i + 5 <= n && !memcmp(s + i, ".tmp.", 5))) {
            return 0;
        }
    }
    return 1;
}

apr_status_t hgs3_fstore_path(const char **path, const hgs3_fstore *fs, apr_pool_t *p,
                              const char *key)
{
    const char *s = key, *slash;
    apr_status_t rv = HGS3_EMALFORMED;

    *path = NULL;
    if (!key || !*key || *key == '/' || strlen(key) > 1024) {
        goto leave;
    }
    for (;;) {
        slash = strchr(s, '/');
        if (!segment_ok(s, slash ? (apr_size_t)(slash - s) : strlen(s))) {
            goto leave;
        }
        if (!slash) {
            break;
        }
        s = slash + 1;
    }
    *path = apr_pstrcat(p, fs->dir, "/", key, NULL);
    rv = APR_SUCCESS;
leave:
    return rv;
}

/* The store's status for a system error on path: a missing name is a miss,
 * anything else the directory's failure. */
static apr_status_t os_fail(apr_status_t rv, apr_pool_t *p, const char *what, const char *path,
                            const char **why)
{
    char buf[120];
    if (why) {
        *why = apr_psprintf(p, "%s %s: %s", what, path, apr_strerror(rv, buf, sizeof(buf)));
    }
    return (APR_STATUS_IS_ENOENT(rv) || APR_STATUS_IS_ENOTDIR(rv)) ? HGS3_ENOTFOUND : HGS3_ESTORE;
}

static apr_status_t torn(apr_pool_t *p, const char *path, const char *what, const char **why)
{
    if (why) {
        *why = apr_psprintf(p, "%s: %s", path, what);
    }
    return HGS3_EPROTO;
}

/* Parse a sidecar's text: the magic line, then "size N", "type T" and an
 * optional "sha256 H", one per line. */
static apr_status_t meta_parse(meta_t *m, apr_pool_t *p, char *text)
{
    char *line, *last = NULL;
    memset(m, 0, sizeof(*m));
    m->size = -1;
    if (strncmp(text, META_MAGIC, sizeof(META_MAGIC) - 1) != 0) {
        return HGS3_EPROTO;
    }
    for (line = apr_strtok(text + sizeof(META_MAGIC) - 1, "\n", &last); line;
         line = apr_strtok(NULL, "\n", &last)) {
        char *end = NULL;
        if (!strncmp(line, "size ", 5)) {
            m->size = apr_strtoi64(line + 5, &end, 10);
            m->size = (end && !*end && end != line + 5) ? m->size : -1;
        } else if (!strncmp(line, "type ", 5) && line[5]) {
            m->type = apr_pstrdup(p, line + 5);
        } else if (!strncmp(line, "sha256 ", 7)) {
            m->sha256 = apr_pstrdup(p, line + 7);
        }
    }
    return (m->size > 0 && m->type) ? APR_SUCCESS : HGS3_EPROTO;
}

/* Read and parse path's sidecar; a missing one is a torn pair. */
static apr_status_t meta_read(meta_t *m, apr_pool_t *p, const char *path, const char **why)
{
    const char *mpath = apr_pstrcat(p, path, META_SFX, NULL);
    char *buf = apr_palloc(p, META_MAX + 1);
    apr_file_t *f = NULL;
    apr_size_t n = META_MAX;
    apr_status_t rv = apr_file_open(&f, mpath, APR_FOPEN_READ, 0, p);

    if (rv != APR_SUCCESS) {
        rv = os_fail(rv, p, "open", mpath, why);
        rv = rv == HGS3_ENOTFOUND ? torn(p, path, "no sidecar", why) : rv;
        goto leave;
    }
    rv = apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)) {
        rv = os_fail(rv, p, "read", mpath, why);
        goto leave;
    }
    buf[n] = '\0';
    rv = meta_parse(m, p, buf);
    if (rv != APR_SUCCESS) {
        rv = torn(p, mpath, "not a valid sidecar", why);
    }
leave:
    return rv;
}

/* The object as finfo shows it, checked against its sidecar. */
static apr_status_t check_pair(hgs3_store_object *obj, apr_pool_t *p, const char *path,
                               const apr_finfo_t *fi, const char **why)
{
    meta_t m;
    apr_status_t rv;

    if (fi->filetype != APR_REG) {
        return torn(p, path, "not a regular file", why);
    }
    rv = meta_read(&m, p, path, why);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (m.size != fi->size) {
        return torn(p, path,
                    apr_psprintf(p, "size %" APR_OFF_T_FMT " but its sidecar says %" APR_OFF_T_FMT,
                                 fi->size, m.size),
                    why);
    }
    obj->status = 200;
    obj->content_length = fi->size;
    obj->content_type = m.type;
    obj->etag = m.sha256;
    obj->last_modified = fi->mtime;
    return APR_SUCCESS;
}

#define FINFO_WANTED (APR_FINFO_TYPE | APR_FINFO_SIZE | APR_FINFO_MTIME)

apr_status_t hgs3_fstore_lookup(hgs3_store_object *obj, const hgs3_fstore *fs, apr_pool_t *p,
                                const char *key, const char **why)
{
    const char *path = NULL;
    apr_finfo_t fi;
    apr_status_t rv;

    memset(obj, 0, sizeof(*obj));
    obj->content_length = -1;
    rv = hgs3_fstore_path(&path, fs, p, key);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    rv = apr_stat(&fi, path, FINFO_WANTED, p);
    if (rv != APR_SUCCESS) {
        rv = os_fail(rv, p, "stat", path, why);
        goto leave;
    }
    rv = check_pair(obj, p, path, &fi, why);
leave:
    if (rv != APR_SUCCESS) {
        memset(obj, 0, sizeof(*obj));
        obj->content_length = -1;
    }
    return rv;
}

apr_status_t hgs3_fstore_open(apr_file_t **pf, hgs3_store_object *obj, const hgs3_fstore *fs,
                              apr_pool_t *p, const char *key, const char **why)
{
    const char *path = NULL;
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    apr_status_t rv;

    memset(obj, 0, sizeof(*obj));
    rv = hgs3_fstore_path(&path, fs, p, key);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY | APR_FOPEN_SENDFILE_ENABLED, 0,
                       p);
    if (rv != APR_SUCCESS) {
        rv = os_fail(rv, p, "open", path, why);
        goto leave;
    }
    rv = apr_file_info_get(&fi, FINFO_WANTED, f);
    rv = rv == APR_SUCCESS ? check_pair(obj, p, path, &fi, why) : os_fail(rv, p, "stat", path, why);
leave:
    if (rv != APR_SUCCESS) {
        if (f) {
            apr_file_close(f);
        }
        f = NULL;
        memset(obj, 0, sizeof(*obj));
        obj->content_length = -1;
    }
    *pf = f;
    return rv;
}

apr_status_t hgs3_fstore_get(const hgs3_fstore *fs, apr_pool_t *p, const char *key,
                             hgs3_store_headers_cb *on_headers, hgs3_store_data_cb *on_data,
                             void *baton, const char **why)
{
    hgs3_store_object obj;
    apr_file_t *f = NULL;
    char *buf = NULL;
    apr_off_t left;
    apr_status_t rv = hgs3_fstore_open(&f, &obj, fs, p, key, why);

    if (rv != APR_SUCCESS || (rv = on_headers(baton, &obj)) != APR_SUCCESS) {
        goto leave;
    }
    buf = apr_palloc(p, CHUNK);
    for (left = obj.content_length; left > 0 && rv == APR_SUCCESS;) {
        apr_size_t n = left < CHUNK ? (apr_size_t)left : CHUNK;
        rv = apr_file_read_full(f, buf, n, &n);
        if (rv != APR_SUCCESS) {
            rv = APR_STATUS_IS_EOF(rv) ? torn(p, key, "shorter than recorded", why)
                                       : os_fail(rv, p, "read", key, why);
            break;
        }
        left -= (apr_off_t)n;
        rv = on_data(baton, buf, n);
    }
leave:
    if (f) {
        apr_file_close(f);
    }
    return rv;
}

/* ---- put and remove ------------------------------------------------------- */

/* A new, exclusive temp file beside path: path.tmp.<pid>.<tid>.<random>. */
static apr_status_t temp_open(apr_file_t **pf, const char **ptmp, apr_pool_t *p, const char *path,
                              const char **why)
{
    unsigned char rnd[8];
    char hex[sizeof(rnd) * 2 + 1];
    apr_status_t rv = apr_generate_random_bytes(rnd, sizeof(rnd));
    apr_size_t i;

    *pf = NULL;
    *ptmp = NULL;
    for (i = 0; i < sizeof(rnd); ++i) {
        apr_snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    }
    if (rv != APR_SUCCESS) {
        return os_fail(rv, p, "random for", path, why);
    }
    *ptmp = apr_psprintf(p, "%s.tmp.%ld.%lx.%s", path, (long)getpid(),
                         (unsigned long)apr_os_thread_current(), hex);
    rv = apr_file_open(pf, *ptmp,
                       APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL | APR_FOPEN_BINARY,
                       FILE_PERMS, p);
    return rv == APR_SUCCESS ? rv : os_fail(rv, p, "create", *ptmp, why);
}

/* Copy a complete spool file of `size` bytes into f, in chunks. */
static apr_status_t copy_file(apr_file_t *f, apr_pool_t *p, const char *src, apr_off_t size,
                              const char **why)
{
    apr_file_t *in = NULL;
    char *buf = apr_palloc(p, CHUNK);
    apr_status_t rv = apr_file_open(&in, src, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, p);

    if (rv != APR_SUCCESS) {
        return os_fail(rv, p, "open", src, why) == HGS3_ENOTFOUND ? HGS3_EMALFORMED : HGS3_ESTORE;
    }
    while (size > 0 && rv == APR_SUCCESS) {
        apr_size_t n = size < CHUNK ? (apr_size_t)size : CHUNK;
        rv = apr_file_read_full(in, buf, n, &n);
        if (rv != APR_SUCCESS) {
            rv = APR_STATUS_IS_EOF(rv) ? torn(p, src, "shorter than its size", why)
                                       : os_fail(rv, p, "read", src, why);
            break;
        }
        size -= (apr_off_t)n;
        rv = apr_file_write_full(f, buf, n, NULL);
        rv = rv == APR_SUCCESS ? rv : os_fail(rv, p, "write to", "the store", why);
    }
    apr_file_close(in);
    return rv == HGS3_EPROTO ? HGS3_EMALFORMED : rv;
}

/* Write data to a new temp file beside path (or copy body's file), fsync
 * it, and give its name. The temp file is removed on failure. */
static apr_status_t temp_write(const char **ptmp, apr_pool_t *p, const char *path, const void *data,
                               apr_size_t len, const hgs3_store_body *body, const char **why)
{
    apr_file_t *f = NULL;
    apr_status_t rv = temp_open(&f, ptmp, p, path, why);

    if (rv != APR_SUCCESS) {
        goto leave;
    }
    if (body && body->path) {
        rv = copy_file(f, p, body->path, body->size, why);
    } else if ((rv = apr_file_write_full(f, data, len, NULL)) != APR_SUCCESS) {
        rv = os_fail(rv, p, "write", *ptmp, why);
    }
    if (rv == APR_SUCCESS && (rv = apr_file_sync(f)) != APR_SUCCESS) {
        rv = os_fail(rv, p, "fsync", *ptmp, why);
    }
    if (apr_file_close(f) != APR_SUCCESS && rv == APR_SUCCESS) {
        rv = os_fail(APR_EGENERAL, p, "close", *ptmp, why);
    }
leave:
    if (rv != APR_SUCCESS && *ptmp) {
        apr_file_remove(*ptmp, p);
        *ptmp = NULL;
    }
    return rv == HGS3_ENOTFOUND ? HGS3_ESTORE : rv;
}

static const char *meta_text(apr_pool_t *p, apr_off_t size, const char *type, const char *sha)
{
    return apr_psprintf(p, META_MAGIC "size %" APR_OFF_T_FMT "\ntype %s\n%s%s%s", size, type,
                        sha ? "sha256 " : "", sha ? sha : "", sha ? "\n" : "");
}

/* The key's subdirectories, mode 0750 (umask applies). */
static apr_status_t make_dirs(apr_pool_t *p, const char *path, const char **why)
{
    const char *slash = strrchr(path, '/');
    const char *dir = apr_pstrndup(p, path, (apr_size_t)(slash - path));
    apr_status_t rv = apr_dir_make_recursive(dir, DIR_PERMS, p);
    if (rv != APR_SUCCESS) {
        os_fail(rv, p, "mkdir", dir, why);
        rv = HGS3_ESTORE;
    }
    return rv;
}

static int type_ok(const char *t)
{
    for (; t && *t; ++t) {
        if (apr_iscntrl(*t)) {
            return 0;
        }
    }
    return t != NULL;
}

apr_status_t hgs3_fstore_put(const hgs3_fstore *fs, apr_pool_t *p, const char *key,
                             const hgs3_store_body *body, const char *content_type,
                             const char **why)
{
    const char *path = NULL, *otmp = NULL, *mtmp = NULL, *meta;
    apr_off_t size = body->path ? body->size : (apr_off_t)body->len;
    apr_status_t rv = hgs3_fstore_path(&path, fs, p, key);

    if (rv == APR_SUCCESS &&
        (size <= 0 || !type_ok(content_type) || !*content_type || (!body->path && !body->data))) {
        rv = HGS3_EMALFORMED;
    }
    if (rv != APR_SUCCESS || (rv = make_dirs(p, path, why)) != APR_SUCCESS) {
        goto leave;
    }
    rv = temp_write(&otmp, p, path, body->data, body->len, body, why);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    meta = meta_text(p, size, content_type, body->sha256_hex);
    rv = temp_write(&mtmp, p, path, meta, strlen(meta), NULL, why);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    /* the sidecar first, then the object: see the top of this file */
    rv = apr_file_rename(mtmp, apr_pstrcat(p, path, META_SFX, NULL), p);
    mtmp = rv == APR_SUCCESS ? NULL : mtmp;
    rv = rv == APR_SUCCESS ? apr_file_rename(otmp, path, p) : rv;
    otmp = rv == APR_SUCCESS ? NULL : otmp;
    rv = rv == APR_SUCCESS ? rv : HGS3_ESTORE;
    if (rv != APR_SUCCESS && why) {
        *why = apr_psprintf(p, "rename into %s failed", path);
    }
leave:
    if (otmp) {
        apr_file_remove(otmp, p);
    }
    if (mtmp) {
        apr_file_remove(mtmp, p);
    }
    return rv;
}

/* The object first: a sidecar without its object is a miss, the reverse
 * would be a torn pair. */
apr_status_t hgs3_fstore_remove(const hgs3_fstore *fs, apr_pool_t *p, const char *key,
                                const char **why)
{
    const char *path = NULL;
    apr_status_t rv = hgs3_fstore_path(&path, fs, p, key);

    if (rv != APR_SUCCESS) {
        goto leave;
    }
    rv = apr_file_remove(path, p);
    if (rv == APR_SUCCESS || APR_STATUS_IS_ENOENT(rv)) {
        path = apr_pstrcat(p, path, META_SFX, NULL);
        rv = apr_file_remove(path, p);
    }
    if (rv != APR_SUCCESS && !APR_STATUS_IS_ENOENT(rv)) {
        rv = os_fail(rv, p, "unlink", path, why);
        goto leave;
    }
    rv = APR_SUCCESS;
leave:
    return rv;
}

/* ---- the store interface (hgs3_store.h) ----------------------------------- */

/* A handle keeps only the line about its last failure: the directory
 * needs no connection. */
typedef struct {
    const char *why;
} fconn;

static const hgs3_fstore *fs_of(const hgs3_store *st)
{
    return st->data;
}

static apr_status_t f_conn(hgs3_store_conn **pc, hgs3_store *st, apr_pool_t *p, int purpose)
{
    hgs3_store_conn *c = apr_pcalloc(p, sizeof(*c));
    (void)purpose;
    c->st = st;
    c->data = apr_pcalloc(p, sizeof(fconn));
    *pc = c;
    return APR_SUCCESS;
}

static const char **why_of(hgs3_store_conn *c)
{
    fconn *fc = c->data;
    fc->why = NULL;
    return &fc->why;
}

static apr_status_t f_lookup(hgs3_store_object *obj, hgs3_store_conn *c, apr_pool_t *p,
                             const char *key)
{
    return hgs3_fstore_lookup(obj, fs_of(c->st), p, key, why_of(c));
}

/* The answer is checked before any byte goes on, as every backend's is. */
typedef struct {
    hgs3_store_headers_cb *on_headers;
    hgs3_store_data_cb *on_data;
    void *baton;
} checked_get;

static apr_status_t f_headers(void *baton, const hgs3_store_object *obj)
{
    checked_get *g = baton;
    apr_status_t rv = hgs3_store_check_whole(obj);
    return rv == APR_SUCCESS ? g->on_headers(g->baton, obj) : rv;
}

static apr_status_t f_data(void *baton, const char *data, apr_size_t len)
{
    checked_get *g = baton;
    return g->on_data(g->baton, data, len);
}

static apr_status_t f_get(hgs3_store_conn *c, apr_pool_t *p, const char *key,
                          hgs3_store_headers_cb *on_headers, hgs3_store_data_cb *on_data,
                          void *baton)
{
    checked_get g = {on_headers, on_data, baton};
    return hgs3_fstore_get(fs_of(c->st), p, key, f_headers, f_data, &g, why_of(c));
}

static apr_status_t f_put(hgs3_store_conn *c, apr_pool_t *p, const char *key,
                          const hgs3_store_body *body, const char *content_type)
{
    return hgs3_fstore_put(fs_of(c->st), p, key, body, content_type, why_of(c));
}

static apr_status_t f_remove(hgs3_store_conn *c, apr_pool_t *p, const char *key)
{
    return hgs3_fstore_remove(fs_of(c->st), p, key, why_of(c));
}

/* Only a whole stored bundle is handed out for httpd to send. */
static apr_status_t f_open_local(apr_file_t **f, hgs3_store_object *obj, hgs3_store *st,
                                 apr_pool_t *p, const char *key)
{
    apr_status_t rv = hgs3_fstore_open(f, obj, fs_of(st), p, key, NULL);
    if (rv == APR_SUCCESS && (rv = hgs3_store_check_whole(obj)) != APR_SUCCESS) {
        apr_file_close(*f);
        *f = NULL;
    }
    return rv;
}

static const char *f_error_text(apr_pool_t *p, hgs3_store_conn *c)
{
    fconn *fc = c->data;
    return fc->why ? apr_pstrdup(p, fc->why) : "";
}

const hgs3_store_impl hgs3_store_file_impl = {
    .name = "file",
    .conn = f_conn,
    .lookup = f_lookup,
    .get = f_get,
    .put = f_put,
    .remove = f_remove,
    .client_url = NULL,
    .open_local = f_open_local,
    .error_text = f_error_text,
};

const char *hgs3_store_file_id(apr_pool_t *p, const char *dir)
{
    apr_size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') {
        --n;
    }
    return apr_pstrcat(p, "file:", apr_pstrndup(p, dir, n), NULL);
}

apr_status_t hgs3_store_file_create(hgs3_store **pst, apr_pool_t *p, const char *dir)
{
    hgs3_store *st = NULL;
    hgs3_fstore *fs = NULL;
    apr_status_t rv = hgs3_fstore_create(&fs, p, dir);

    if (rv != APR_SUCCESS) {
        goto leave;
    }
    st = apr_pcalloc(p, sizeof(*st));
    st->impl = &hgs3_store_file_impl;
    st->id = hgs3_store_file_id(p, fs->dir);
    st->data = fs;
leave:
    *pst = st;
    return rv;
}
