/* hgs3_confval.c: the syntax of configuration values (see hgs3_confval.h). */
#include <errno.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "hgs3_confval.h"

/* The multiplier of a size suffix at *sfx ("", K, KB, KiB, ...), 0 if bad. */
static apr_int64_t size_unit(const char *sfx)
{
    static const char units[] = "KMGT";
    const char *u = *sfx ? strchr(units, apr_toupper(*sfx)) : NULL;
    apr_int64_t mul = 1;

    if (!*sfx) {
        return 1;
    }
    if (!u) {
        return 0;
    }
    mul <<= 10 * (u - units + 1);
    ++sfx;
    sfx += apr_toupper(*sfx) == 'I';
    sfx += apr_toupper(*sfx) == 'B';
    return *sfx ? 0 : mul;
}

apr_status_t hgs3_confval_size(apr_int64_t *out, const char *arg, apr_int64_t min, apr_int64_t max,
                               apr_pool_t *p, const char **msg)
{
    char *end = NULL;
    apr_int64_t v, mul;

    *out = 0;
    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    mul = (end == arg || v < 0 || errno) ? 0 : size_unit(end);
    if (!mul) {
        *msg = apr_psprintf(p, "'%s' is not a size in bytes (e.g. 65536, 64K, 1M, 4G)", arg);
        return APR_EINVAL;
    }
    if (v > APR_INT64_MAX / mul || v * mul < min || v * mul > max) {
        *msg = apr_psprintf(
            p, "'%s' is out of range (%" APR_INT64_T_FMT " to %" APR_INT64_T_FMT " bytes)", arg,
            min, max);
        return APR_EINVAL;
    }
    *out = v * mul;
    return APR_SUCCESS;
}

apr_status_t hgs3_confval_int(apr_int64_t *out, const char *arg, apr_int64_t min, apr_int64_t max,
                              const char *unit, apr_pool_t *p, const char **msg)
{
    char *end = NULL;
    apr_int64_t v;

    *out = 0;
    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || errno) {
        *msg = apr_psprintf(p, "'%s' is not a whole number of %s", arg, unit);
        return APR_EINVAL;
    }
    if (v < min || v > max) {
        *msg = apr_psprintf(
            p, "%s must be between %" APR_INT64_T_FMT " and %" APR_INT64_T_FMT ", not '%s'", unit,
            min, max, arg);
        return APR_EINVAL;
    }
    *out = v;
    return APR_SUCCESS;
}

int hgs3_confval_is_token(const char *s, const char *extra)
{
    if (!*s) {
        return 0;
    }
    for (; *s; ++s) {
        if (!(apr_isalnum(*s) || (extra && strchr(extra, *s)))) {
            return 0;
        }
    }
    return 1;
}

/* Non-empty visible ASCII without spaces, at most max characters. */
static int is_visible(const char *s, apr_size_t max)
{
    apr_size_t n = 0;
    for (; s[n]; ++n) {
        if (!apr_isgraph(s[n])) {
            return 0;
        }
    }
    return n > 0 && n <= max;
}

static apr_status_t fail(const char **msg, const char *text)
{
    *msg = text;
    return APR_EINVAL;
}

apr_status_t hgs3_confval_region(apr_pool_t *p, const char *s, const char **msg)
{
    if (hgs3_confval_is_token(s, "-") && strlen(s) <= 64) {
        return APR_SUCCESS;
    }
    return fail(msg, apr_psprintf(p, "'%s' is not a region name like us-east-1", s));
}

apr_status_t hgs3_confval_key_prefix(apr_pool_t *p, const char *s, const char **msg)
{
    if (strlen(s) > 512 || *s == '/') {
        return fail(msg, "the prefix must not start with '/' and be at most 512 characters");
    }
    if (*s && !is_visible(s, 512)) {
        return fail(msg, apr_psprintf(p, "'%s' contains a space or control character", s));
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_confval_command(apr_pool_t *p, const char *s, const char **msg)
{
    if (hgs3_confval_is_token(s, "_") && strlen(s) <= 64) {
        return APR_SUCCESS;
    }
    return fail(msg, apr_psprintf(p, "'%s' is not a wire command name", s));
}

/* AWS key ids are [A-Z0-9]; Swift's tempauth uses "account:user". */
apr_status_t hgs3_confval_key_id(apr_pool_t *p, const char *s, const char **msg)
{
    (void)p;
    return is_visible(s, 256)
               ? APR_SUCCESS
               : fail(msg, "the key id must be non-empty visible characters without spaces");
}

apr_status_t hgs3_confval_secret(apr_pool_t *p, const char *s, const char **msg)
{
    (void)p;
    return is_visible(s, 1024) ? APR_SUCCESS
                               : fail(msg, "the secret must be non-empty visible characters "
                                           "without spaces (value not shown)");
}

apr_status_t hgs3_confval_token(apr_pool_t *p, const char *s, const char **msg)
{
    (void)p;
    return is_visible(s, 8192) ? APR_SUCCESS
                               : fail(msg, "the token must be non-empty visible characters "
                                           "without spaces (value not shown)");
}

apr_status_t hgs3_confval_abs_dir(apr_pool_t *p, const char *s, const char **msg)
{
    apr_finfo_t fi;
    if (*s != '/') {
        return fail(msg, apr_psprintf(p, "'%s' must be an absolute path", s));
    }
    if (apr_stat(&fi, s, APR_FINFO_TYPE, p) != APR_SUCCESS || fi.filetype != APR_DIR) {
        return fail(msg, apr_psprintf(p, "'%s' is not an existing directory", s));
    }
    return APR_SUCCESS;
}

const char *hgs3_confval_store_dir(const char *s)
{
    return (s && strncmp(s, "file:", 5) == 0) ? s + 5 : NULL;
}

/* The store's scheme: S3 (the other directives say where), or a local
 * directory that must exist; whether httpd's user can write it is checked
 * with the whole configuration. */
apr_status_t hgs3_confval_store(apr_pool_t *p, const char *s, const char **msg)
{
    const char *dir = hgs3_confval_store_dir(s);
    if (strcmp(s, "s3") == 0) {
        return APR_SUCCESS;
    }
    if (!dir) {
        return fail(msg, apr_psprintf(p, "'%s' is not a store: use s3 or file:DIR", s));
    }
    return hgs3_confval_abs_dir(p, dir, msg);
}
