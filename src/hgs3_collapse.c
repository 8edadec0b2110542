/* hgs3_collapse.c: the shared progress record of a collapsed miss, and a
 * follower's waiting on it (see hgs3_collapse.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_file_info.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_collapse.h"

#define REC_MAGIC   0x48334331u /* "H3C1" */
#define LOCK_PREFIX "hgs3lock."

/* Waiting backs off from 1 ms to this. */
#define WAIT_MAX_US 20000

struct hgs3_follow {
    int fd;
    hgs3_collapse_rec *rec;
    apr_uint32_t epoch;
    int attached;
};

static apr_uint32_t load32(const apr_uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static apr_uint64_t load64(const apr_uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static apr_status_t map_rec(hgs3_collapse_rec **prec, int fd, int prot)
{
    void *m = mmap(NULL, HGS3_COLLAPSE_REC_SIZE, prot, MAP_SHARED, fd, HGS3_COLLAPSE_REC_OFFSET);
    if (m == MAP_FAILED) {
        *prec = NULL;
        return APR_FROM_OS_ERROR(errno);
    }
    *prec = m;
    return APR_SUCCESS;
}

apr_status_t hgs3_collapse_lead(hgs3_collapse_rec **prec, int fd)
{
    struct stat st;
    hgs3_collapse_rec *rec = NULL;
    apr_status_t rv;
    apr_uint32_t epoch;

    *prec = NULL;
    if (fstat(fd, &st) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        goto leave;
    }
    /* Allocated, not just extended: a store to a mapped hole of a full
     * file system (tmpfs) would be SIGBUS. Never shrunk: a follower may
     * have the old record mapped. */
    if (st.st_size < HGS3_COLLAPSE_REC_OFFSET + HGS3_COLLAPSE_REC_SIZE &&
        (errno = posix_fallocate(fd, 0, HGS3_COLLAPSE_REC_OFFSET + HGS3_COLLAPSE_REC_SIZE)) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        goto leave;
    }
    if ((rv = map_rec(&rec, fd, PROT_READ | PROT_WRITE)) != APR_SUCCESS) {
        goto leave;
    }
    epoch = rec->magic == REC_MAGIC ? load32(&rec->epoch) + 1 : 1;
    /* a follower of the previous epoch sees the change and stops */
    __atomic_store_n(&rec->state, HGS3_COLLAPSE_STARTING, __ATOMIC_RELEASE);
    __atomic_store_n(&rec->epoch, epoch, __ATOMIC_RELEASE);
    __atomic_store_n(&rec->published, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&rec->total, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&rec->followers, 0, __ATOMIC_RELEASE);
    rec->status = 0;
    rec->head_len = 0;
    rec->path[0] = '\0';
    __atomic_store_n(&rec->magic, REC_MAGIC, __ATOMIC_RELEASE);
    *prec = rec;
leave:
    return rv;
}

void hgs3_collapse_unmap(hgs3_collapse_rec *rec)
{
    if (rec) {
        munmap(rec, HGS3_COLLAPSE_REC_SIZE);
    }
}

static int head_field_copied(const char *name)
{
    static const char *const skip[] = {"Set-Cookie",
                                       "Set-Cookie2",
                                       "Content-Length",
                                       "Content-Type",
                                       "Transfer-Encoding",
                                       "Connection",
                                       "Keep-Alive",
                                       "Date",
                                       "Server",
                                       "X-HgS3Cache",
                                       "Upgrade",
                                       "Trailer",
                                       "Proxy-Connection"};
    apr_size_t i;
    for (i = 0; i < sizeof(skip) / sizeof(skip[0]); ++i) {
        if (!strcasecmp(name, skip[i])) {
            return 0;
        }
    }
    return 1;
}

/* Append s and its NUL to the head; 0 when it does not fit. */
static int head_put(hgs3_collapse_rec *rec, apr_size_t *used, const char *s)
{
    apr_size_t n = strlen(s) + 1;
    if (n > HGS3_COLLAPSE_HEAD_MAX - *used) {
        return 0;
    }
    memcpy(rec->head + *used, s, n);
    *used += n;
    return 1;
}

apr_status_t hgs3_collapse_set_head(hgs3_collapse_rec *rec, int status, const char *path,
                                    const char *content_type, const apr_table_t *headers)
{
    const apr_array_header_t *arr = headers ? apr_table_elts(headers) : NULL;
    const apr_table_entry_t *e = arr ? (const apr_table_entry_t *)arr->elts : NULL;
    apr_size_t used = 0;
    apr_status_t rv = HGS3_ETOOBIG;
    int i;

    if (!path || strlen(path) >= HGS3_COLLAPSE_PATH_MAX ||
        !head_put(rec, &used, content_type ? content_type : "")) {
        goto leave;
    }
    for (i = 0; arr && i < arr->nelts; ++i) {
        if (!e[i].key || !e[i].val || !head_field_copied(e[i].key)) {
            continue;
        }
        if (!head_put(rec, &used, e[i].key) || !head_put(rec, &used, e[i].val)) {
            goto leave;
        }
    }
    memcpy(rec->path, path, strlen(path) + 1);
    rec->status = (apr_uint32_t)status;
    rec->head_len = (apr_uint32_t)used;
    __atomic_store_n(&rec->state, HGS3_COLLAPSE_HEAD, __ATOMIC_RELEASE);
    rv = APR_SUCCESS;
leave:
    return rv;
}

apr_uint64_t *hgs3_collapse_published(hgs3_collapse_rec *rec)
{
    return &rec->published;
}

void hgs3_collapse_done(hgs3_collapse_rec *rec, apr_uint64_t total)
{
    __atomic_store_n(&rec->total, total, __ATOMIC_RELEASE);
    __atomic_store_n(&rec->state, HGS3_COLLAPSE_DONE, __ATOMIC_RELEASE);
}

void hgs3_collapse_fail(hgs3_collapse_rec *rec)
{
    apr_uint32_t st;

    if (!rec) {
        return;
    }
    st = load32(&rec->state);
    if (st == HGS3_COLLAPSE_FAILED ||
        (st == HGS3_COLLAPSE_DONE && load64(&rec->published) >= load64(&rec->total))) {
        return;
    }
    __atomic_store_n(&rec->state, HGS3_COLLAPSE_FAILED, __ATOMIC_RELEASE);
}

apr_uint32_t hgs3_collapse_followers(const hgs3_collapse_rec *rec)
{
    return load32(&rec->followers);
}

/* ---- followers ---- */

static apr_status_t follow_cleanup(void *data)
{
    hgs3_follow *f = data;
    if (f->attached) {
        __atomic_fetch_sub(&f->rec->followers, 1, __ATOMIC_RELEASE);
        f->attached = 0;
    }
    hgs3_collapse_unmap(f->rec);
    f->rec = NULL;
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_collapse_open(hgs3_follow **pf, apr_pool_t *p, const char *dir, const char *name)
{
    hgs3_follow *f = apr_pcalloc(p, sizeof(*f));
    char *path = NULL;
    struct stat st;
    apr_status_t rv;

    *pf = NULL;
    f->fd = -1;
    apr_pool_cleanup_register(p, f, follow_cleanup, apr_pool_cleanup_null);
    rv = apr_filepath_merge(&path, dir, apr_pstrcat(p, LOCK_PREFIX, name, NULL),
                            APR_FILEPATH_NOTRELATIVE, p);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    if ((f->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        goto leave;
    }
    if (fstat(f->fd, &st) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        goto leave;
    }
    if (st.st_size < HGS3_COLLAPSE_REC_OFFSET + HGS3_COLLAPSE_REC_SIZE) {
        rv = APR_ENOENT; /* no record (yet): not a leader we can follow */
        goto leave;
    }
    if ((rv = map_rec(&f->rec, f->fd, PROT_READ | PROT_WRITE)) != APR_SUCCESS) {
        goto leave;
    }
    if (load32(&f->rec->magic) != REC_MAGIC) {
        rv = APR_ENOENT;
        goto leave;
    }
    f->epoch = load32(&f->rec->epoch);
    *pf = f;
leave:
    return rv;
}

/* Is the lock still held by someone (the leader, or its uploader)? */
static int leader_alive(hgs3_follow *f)
{
    if (flock(f->fd, LOCK_SH | LOCK_NB) == 0) {
        flock(f->fd, LOCK_UN);
        return 0;
    }
    return 1;
}

/* One look at the record: 1 when the caller can stop waiting (*v filled,
 * *rv its result). */
static int look(hgs3_follow *f, apr_uint64_t have, hgs3_collapse_view *v, apr_status_t *rv)
{
    hgs3_collapse_rec *rec = f->rec;

    v->state = (hgs3_collapse_state_e)load32(&rec->state);
    v->published = load64(&rec->published);
    v->total = load64(&rec->total);
    *rv = APR_SUCCESS;
    if (load32(&rec->epoch) != f->epoch) {
        *rv = APR_EGENERAL; /* a new leader: ours is gone */
        return 1;
    }
    if (v->state == HGS3_COLLAPSE_FAILED) {
        *rv = APR_EGENERAL;
        return 1;
    }
    if (v->state == HGS3_COLLAPSE_DONE && v->published >= v->total) {
        return 1;
    }
    if (v->state != HGS3_COLLAPSE_STARTING && v->published > have) {
        return 1;
    }
    return 0;
}

/* Wait until look() says so, the leader dies or nothing moves for timeout.
 * `have` is what the caller has; progress is any change of published. */
static apr_status_t wait_for(hgs3_follow *f, apr_uint64_t have, apr_interval_time_t timeout,
                             hgs3_collapse_view *v)
{
    apr_time_t last = apr_time_now();
    apr_uint64_t seen = load64(&f->rec->published);
    apr_interval_time_t nap = 1000;
    apr_status_t rv;

    for (;;) {
        if (look(f, have, v, &rv)) {
            return rv;
        }
        if (!leader_alive(f)) {
            /* it may have finished between the look and the probe */
            if (look(f, have, v, &rv)) {
                return rv;
            }
            return APR_EGENERAL;
        }
        if (v->published != seen) {
            seen = v->published;
            last = apr_time_now();
        } else if (apr_time_now() - last >= timeout) {
            return APR_TIMEUP;
        }
        apr_sleep(nap);
        nap = nap * 2 > WAIT_MAX_US ? WAIT_MAX_US : nap * 2;
    }
}

/* Copy the head out of the record into p. */
static apr_status_t copy_head(hgs3_follow *f, apr_pool_t *p, hgs3_collapse_head *head)
{
    hgs3_collapse_rec *rec = f->rec;
    apr_size_t len = rec->head_len, off;
    char *h;

    if (len == 0 || len > HGS3_COLLAPSE_HEAD_MAX || !memchr(rec->path, '\0', sizeof(rec->path))) {
        return HGS3_EMALFORMED;
    }
    h = apr_pmemdup(p, rec->head, len);
    if (h[len - 1] != '\0') {
        return HGS3_EMALFORMED;
    }
    head->status = (int)rec->status;
    head->path = apr_pstrdup(p, rec->path);
    head->content_type = h;
    head->headers = apr_table_make(p, 4);
    off = strlen(h) + 1;
    while (off < len) {
        const char *name = h + off, *val;
        off += strlen(name) + 1;
        if (off >= len) {
            break;
        }
        val = h + off;
        off += strlen(val) + 1;
        apr_table_add(head->headers, name, val);
    }
    /* the head is written once per epoch: still ours? */
    return load32(&rec->epoch) == f->epoch ? APR_SUCCESS : APR_EGENERAL;
}

apr_status_t hgs3_collapse_wait_head(hgs3_follow *f, apr_pool_t *p, apr_interval_time_t timeout,
                                     hgs3_collapse_head *head)
{
    hgs3_collapse_view v;
    apr_status_t rv;

    memset(head, 0, sizeof(*head));
    /* attach first, so a leader whose client leaves now knows about us */
    __atomic_fetch_add(&f->rec->followers, 1, __ATOMIC_ACQ_REL);
    f->attached = 1;
    rv = wait_for(f, 0, timeout, &v);
    if (rv == APR_SUCCESS && v.state == HGS3_COLLAPSE_STARTING) {
        rv = APR_EGENERAL;
    }
    if (rv == APR_SUCCESS) {
        rv = copy_head(f, p, head);
    }
    if (rv != APR_SUCCESS) {
        __atomic_fetch_sub(&f->rec->followers, 1, __ATOMIC_RELEASE);
        f->attached = 0;
    }
    return rv;
}

apr_status_t hgs3_collapse_wait(hgs3_follow *f, apr_uint64_t have, apr_interval_time_t timeout,
                                hgs3_collapse_view *v)
{
    return wait_for(f, have, timeout, v);
}
