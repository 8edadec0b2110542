/* hgs3_collapse.h: collapsed misses, the httpd-free part (SPEC "Collapsed
 * misses").
 *
 * The leader of a key is the holder of its upload lock (hgs3_lock.h). Its
 * progress is published in a record that lives in the lock file itself, at
 * offset HGS3_COLLAPSE_REC_OFFSET (the pid the lock writes stays at offset
 * 0), mapped MAP_SHARED by the leader (read-write) and by followers (read
 * only). So the record goes wherever the lock goes: it is removed with the
 * lock, and swept with a dead leader's lock. A follower keeps its mapping
 * and its descriptors after the files are removed (POSIX), so it can finish
 * from a spool the uploader already dropped.
 *
 * The record never shrinks once extended (no SIGBUS for a mapping), and a
 * new leader on a reused lock file starts a new epoch: a follower that sees
 * the epoch change treats its leader as gone.
 *
 * Publication: the head (status, spool path, Content-Type, headers) is
 * written once, then `state` is set to HEAD with release order; a reader
 * loads `state` with acquire order before it reads the head. `published`
 * (bytes of the spool file that are written and may be read) only grows;
 * the spool's writer thread stores it (hgs3_spool_publish). DONE carries
 * the final length; FAILED means the body will never be complete.
 *
 * A leader is alive while the lock's flock is held: a follower probes it
 * with a shared non-blocking flock on its own descriptor. */
#ifndef HGS3_COLLAPSE_H
#define HGS3_COLLAPSE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#define HGS3_COLLAPSE_REC_OFFSET 4096
#define HGS3_COLLAPSE_REC_SIZE   4096
#define HGS3_COLLAPSE_PATH_MAX   512
#define HGS3_COLLAPSE_HEAD_MAX   3072

typedef enum {
    HGS3_COLLAPSE_STARTING = 0, /* leader runs hgweb; no cacheable head yet */
    HGS3_COLLAPSE_HEAD,         /* head published: followers may attach */
    HGS3_COLLAPSE_DONE,         /* EOS seen: total is the body's length */
    HGS3_COLLAPSE_FAILED        /* the body will never be complete */
} hgs3_collapse_state_e;

/* The shared record (one page). Fields read concurrently are naturally
 * aligned and accessed with __atomic builtins. */
typedef struct hgs3_collapse_rec {
    apr_uint32_t magic;
    apr_uint32_t epoch;     /* a new leader on the same file: new epoch */
    apr_uint32_t state;     /* hgs3_collapse_state_e */
    apr_uint32_t followers; /* attached followers (informational for the leader) */
    apr_uint64_t published; /* bytes of the spool file written */
    apr_uint64_t total;     /* the body's length, once DONE */
    apr_uint32_t status;    /* HTTP status of the head */
    apr_uint32_t head_len;  /* bytes used in head */
    char path[HGS3_COLLAPSE_PATH_MAX];
    /* "Content-Type\0" then "name\0value\0" pairs */
    char head[HGS3_COLLAPSE_HEAD_MAX];
} hgs3_collapse_rec;

/* ---- the leader (the lock holder) ---- */

/* Map the record of the lock file open on fd (read-write), extending the
 * file as needed, and start a new epoch in STARTING state. */
apr_status_t hgs3_collapse_lead(hgs3_collapse_rec **prec, int fd);

/* Unmap (NULL is fine). */
void hgs3_collapse_unmap(hgs3_collapse_rec *rec);

/* Publish the head: followers may attach. HGS3_ETOOBIG when the path or
 * the headers do not fit (then nothing is published). headers may be NULL;
 * Set-Cookie and hop-by-hop fields are never copied. */
apr_status_t hgs3_collapse_set_head(hgs3_collapse_rec *rec, int status, const char *path,
                                    const char *content_type, const apr_table_t *headers);

/* Where the spool's writer stores the published length. */
apr_uint64_t *hgs3_collapse_published(hgs3_collapse_rec *rec);

/* EOS: the body is total bytes long. */
void hgs3_collapse_done(hgs3_collapse_rec *rec, apr_uint64_t total);

/* The body will never be complete (no-op once DONE with everything
 * published, or once FAILED). */
void hgs3_collapse_fail(hgs3_collapse_rec *rec);

/* Followers attached right now. */
apr_uint32_t hgs3_collapse_followers(const hgs3_collapse_rec *rec);

/* ---- a follower ---- */

typedef struct hgs3_follow hgs3_follow;

/* What a follower saw in the record. */
typedef struct hgs3_collapse_view {
    hgs3_collapse_state_e state;
    apr_uint64_t published;
    apr_uint64_t total; /* valid when DONE */
} hgs3_collapse_view;

/* The leader's head, copied into the follower's pool. */
typedef struct hgs3_collapse_head {
    int status;
    const char *path;
    const char *content_type;
    apr_table_t *headers;
} hgs3_collapse_head;

/* Open the record of lock `name` in dir. APR_ENOENT when there is no lock
 * (no leader). The follower's descriptor and mapping are closed with p. */
apr_status_t hgs3_collapse_open(hgs3_follow **pf, apr_pool_t *p, const char *dir, const char *name);

/* Wait for a head: APR_SUCCESS with *head (and the follower is counted as
 * attached until p is destroyed), or APR_EGENERAL when the leader failed,
 * went away or stepped out before a cacheable head, or APR_TIMEUP when
 * nothing happened for timeout. */
apr_status_t hgs3_collapse_wait_head(hgs3_follow *f, apr_pool_t *p, apr_interval_time_t timeout,
                                     hgs3_collapse_head *head);

/* Wait until more than `have` bytes are published or the body is DONE with
 * total == have. APR_SUCCESS with *v (state HEAD or DONE), APR_EGENERAL when
 * the leader failed or is gone, APR_TIMEUP after timeout without progress. */
apr_status_t hgs3_collapse_wait(hgs3_follow *f, apr_uint64_t have, apr_interval_time_t timeout,
                                hgs3_collapse_view *v);

#endif
