/* hgs3_confval.h: the syntax of configuration values, free of httpd.
 *
 * The directives (mod_hgs3cache_config.c) parse their values with these,
 * so the rules can be unit-tested. Each returns APR_SUCCESS, or APR_EINVAL
 * with *msg a short text that the caller prefixes with the directive's
 * name. A message quotes the value only where it cannot be a secret. */
#ifndef HGS3_CONFVAL_H
#define HGS3_CONFVAL_H

#include <apr_pools.h>

/* Bytes: a decimal count with an optional binary suffix K, M, G or T
 * ("k", "KB", "KiB" alike), within [min, max]. */
apr_status_t hgs3_confval_size(apr_int64_t *out, const char *arg, apr_int64_t min, apr_int64_t max,
                               apr_pool_t *p, const char **msg);

/* A whole number of `unit` (e.g. "seconds") within [min, max]. */
apr_status_t hgs3_confval_int(apr_int64_t *out, const char *arg, apr_int64_t min, apr_int64_t max,
                              const char *unit, apr_pool_t *p, const char **msg);

/* Non-empty, only alphanumerics and the characters of `extra`. */
int hgs3_confval_is_token(const char *s, const char *extra);

/* Checks of one value, all of the same shape (a pool, the value, *msg). */
typedef apr_status_t hgs3_confval_check_fn(apr_pool_t *p, const char *s, const char **msg);

hgs3_confval_check_fn hgs3_confval_region;     /* like us-east-1 */
hgs3_confval_check_fn hgs3_confval_key_prefix; /* no leading '/', no space */
hgs3_confval_check_fn hgs3_confval_command;    /* a wire command name */
hgs3_confval_check_fn hgs3_confval_key_id;     /* visible, no space (not quoted) */
hgs3_confval_check_fn hgs3_confval_secret;     /* visible, no space (not quoted) */
hgs3_confval_check_fn hgs3_confval_token;      /* visible, no space (not quoted) */
hgs3_confval_check_fn hgs3_confval_abs_dir;    /* an absolute path to an existing directory */
hgs3_confval_check_fn hgs3_confval_store;      /* "s3", or "file:DIR" with DIR as above */

/* The directory of a "file:DIR" store value, NULL for any other. */
const char *hgs3_confval_store_dir(const char *s);

#endif
