/* hgs3_repo.h: which repository a request is for, and its state fingerprint.
 *
 * Two configurations:
 *   HgS3CacheRepository DIR      one repository, DIR itself;
 *   HgS3CacheRepositoryRoot DIR  a collection, mapped like hgwebdir: the
 *                                LONGEST leading run of URL path segments
 *                                that names a repository under DIR is the
 *                                repository.
 * A directory is a repository when it holds a regular file .hg/requires.
 * Shared repositories (.hg/sharedpath, `hg share`) are refused: their store
 * lives elsewhere and the fingerprint below would not see it change.
 *
 * The mapping must agree with hgweb's, or a response could be stored under
 * another repository's key. It agrees when hgweb publishes every repository
 * under DIR at its path relative to DIR (a [paths] entry "/" for DIR with
 * the recursive "**" glob, or [collections]) and its repository list is current (hgwebdir re-reads
 * it every web.refreshinterval, 20 s by default).
 *
 * Statuses: APR_ENOENT (no repository there), HGS3_EMALFORMED (a path form
 * that is refused: empty, '.' or '..' segments, a segment that decodes to
 * something with '/', '\\' or NUL, a bad %-escape), APR_EACCES (the
 * repository resolves, through symlinks, outside DIR), APR_ENOTIMPL (a shared
 * repository), HGS3_ETOOBIG (path too long), APR_EAGAIN (the configured
 * directory was switched while being resolved), or the errno of a failed
 * open/stat/realpath. Anything but APR_SUCCESS means "not eligible". */
#ifndef HGS3_REPO_H
#define HGS3_REPO_H

#include <apr_pools.h>

#include "hgs3_conffiles.h"

#define HGS3_REPO_MAX_PATH     4096 /* raw URL path below the Location */
#define HGS3_REPO_MAX_SEGMENTS 64

/* The directory hgs3_repo_open() identified, held open (O_PATH) until the
 * pool it was opened from is cleared. Private to hgs3_repo.c. */
typedef struct hgs3_repo_dirfd hgs3_repo_dirfd;

typedef struct hgs3_repo {
    const char *dir;         /* realpath of the repository (the directory holding .hg) */
    const char *name;        /* decoded path relative to the collection root; "" for a single
                              * repository */
    const char *rest;        /* raw URL path after the repository's segments, without leading
                              * or trailing '/'; "" when the URL names the repository exactly.
                              * hgweb answers a wire command with 404 when it is not empty. */
    const unsigned char *fp; /* state fingerprint, set by hgs3_repo_fingerprint() */
    apr_size_t fp_len;
    hgs3_repo_dirfd *opened; /* hgs3_repo_open(): the directory itself, which the fingerprint
                              * is then taken from (dir is its name); NULL otherwise */
} hgs3_repo;

/* HgS3CacheRepository DIR. raw_path (may be NULL) is the raw path below the
 * Location; it only sets ->rest.
 *
 * This runs on every request, so DIR's realpath is cached per process: DIR
 * is opened (one path walk, O_PATH) and fstat()ed on every call, and the
 * cached realpath is used only while DIR still leads to the directory
 * (st_dev, st_ino) it was resolved for. An operator who points a symlink at
 * another copy of the repository (or renames another directory into place)
 * therefore gets the new directory, hence new keys, on the very next
 * request; there is no time-based staleness. The directory stays open in
 * ->opened, and hgs3_repo_fingerprint() reads that very directory, so the
 * fingerprint cannot come from another directory than the one identified.
 * Should DIR's parents be renamed while it keeps its inode, ->dir may still
 * name the old place: the key then names the same directory as before, whose
 * state the fingerprint still follows.
 *
 * .hg/requires is not checked here: hgs3_repo_fingerprint(), which the
 * caller must run before using the repository, fails with APR_ENOENT when
 * it is absent or not a regular file. */
apr_status_t hgs3_repo_open(hgs3_repo **prepo, apr_pool_t *p, const char *dir,
                            const char *raw_path);

/* Resolutions (realpath calls) hgs3_repo_open() made so far in this process;
 * for tests: a request that finds DIR unchanged does not resolve. */
apr_uint64_t hgs3_repo_cache_resolutions(void);

/* HgS3CacheRepositoryRoot DIR plus the raw, still percent-encoded URL path
 * below the Location ("/a/b", "a/b/", ...; anything from '?' on is ignored). */
apr_status_t hgs3_repo_find(hgs3_repo **prepo, apr_pool_t *p, const char *root,
                            const char *raw_path);

/* The glue's one call: hgs3_repo_open() when repository is set, else
 * hgs3_repo_find() with repository_root; HGS3_ECONFIG when neither is. */
apr_status_t hgs3_repo_resolve(hgs3_repo **prepo, apr_pool_t *p, const char *repository,
                               const char *repository_root, const char *raw_path);

/* Take the state fingerprint of repo->dir now (once per request) into
 * repo->fp / repo->fp_len. It is a fixed-layout byte string: a version byte,
 * then for each file of HGS3_REPO_STATE_FILES in order either 0x00 (absent)
 * or 0x01 followed by size, mtime (s, ns), ctime (s, ns) and inode, each a
 * big-endian 64-bit number. A stat failure other than "absent" fails the
 * call (a fingerprint we cannot take must not look like an unchanged one),
 * and so does a .hg/requires that is missing or not a regular file
 * (APR_ENOENT). */
apr_status_t hgs3_repo_fingerprint(hgs3_repo *repo, apr_pool_t *p);

/* The same, followed by the fingerprint of config (HgS3CacheConfigFiles,
 * see hgs3_conffiles_fingerprint) when it is not NULL: every key of the
 * scope then changes with those files too. */
apr_status_t hgs3_repo_fingerprint_ex(hgs3_repo *repo, apr_pool_t *p, hgs3_conffiles *config);

/* The files covered, relative to the repository, NULL-terminated. */
extern const char *const HGS3_REPO_STATE_FILES[];

#endif
