/* hgs3_tls.h: checks of the trust an https store is verified with.
 *
 * HgS3CacheCAFile and HgS3CacheCAPath (and the hgs3 tool's --ca-file and
 * --ca-path) are checked when the configuration is read, so a CA file that
 * cannot be read, is empty or holds no certificate fails `apachectl
 * configtest` instead of every lookup at run time. There is deliberately no
 * way to switch certificate or host-name verification off. */
#ifndef HGS3_TLS_H
#define HGS3_TLS_H

#include <apr_pools.h>

/* path must be a readable, non-empty file holding at least one PEM
 * certificate. On failure returns HGS3_ECONFIG (or the APR error of the
 * file) and a message in *msg that names the path. */
apr_status_t hgs3_tls_check_ca_file(apr_pool_t *p, const char *path, const char **msg);

/* dir must be a directory that can be read (a c_rehash/openssl rehash
 * directory; which certificates it holds is up to the operator). */
apr_status_t hgs3_tls_check_ca_path(apr_pool_t *p, const char *dir, const char **msg);

#endif
