/* hgs3_conffiles.h: the configuration files whose change changes every key
 * of a scope (HgS3CacheConfigFiles): hgweb.config, the system hgrc, files
 * they %include.
 *
 * A list entry is an absolute path. Its last component may hold shell
 * wildcards (*, ?, [...]), as the default does for the .rc files in /etc/mercurial/hgrc.d;
 * its directories may not. A missing file is allowed: it is fingerprinted
 * as absent, so creating it later changes the keys.
 *
 * Per request each plain entry costs one stat(). A wildcard entry costs one
 * stat() of its directory plus one per matching file: the directory is read
 * again (readdir) only when its own stat changed since it was last read, so
 * a file added to or removed from it later is seen at once, and so is every
 * later change of that file. The directory's stat is part of the
 * fingerprint too. */
#ifndef HGS3_CONFFILES_H
#define HGS3_CONFFILES_H

#include <apr_pools.h>

typedef struct hgs3_conffiles hgs3_conffiles;

/* A set of n paths, allocated from p (which must outlive every use; the
 * object is thread-safe). n may be 0 (an empty set). A path that is not
 * absolute, has an empty last component or a wildcard before its last
 * component: HGS3_ECONFIG, with *pbad set to it. */
apr_status_t hgs3_conffiles_create(hgs3_conffiles **pcf, apr_pool_t *p, int n,
                                   const char *const *paths, const char **pbad);

/* Append the fingerprint of the set, taken now, to the len bytes at data:
 * a new buffer from p in *pout / *poutlen. Layout: the entry count, then per
 * entry its path and either a stat record (plain) or the directory's stat
 * record, the match count and each match's name and stat record (wildcard).
 * Counts and lengths are big-endian 64-bit; a stat record is 0x00 (absent)
 * or 0x01 and size, mtime (s, ns), ctime (s, ns) and inode, each a
 * big-endian 64-bit number. A stat failure other than ENOENT/ENOTDIR fails
 * the call: a fingerprint that cannot be taken must not look unchanged. */
apr_status_t hgs3_conffiles_fingerprint(hgs3_conffiles *cf, apr_pool_t *p,
                                        const unsigned char *data, apr_size_t len,
                                        const unsigned char **pout, apr_size_t *poutlen);

/* Directory reads (readdir) the wildcard entries made so far in this
 * process; for tests: an unchanged directory is not read again. */
unsigned long hgs3_conffiles_scans(void);

#endif
