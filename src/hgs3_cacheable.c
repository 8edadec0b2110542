/* hgs3_cacheable.c: SPEC "Never cached" from a response's head (see
 * hgs3_cacheable.h). */
#include <string.h>
#include <strings.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "hgs3_cacheable.h"

#define HG_ERROR_TYPE  "application/hg-error"
#define MERCURIAL_TYPE "application/mercurial-"

static int has_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* A media type hg's clients take for the command kind. */
static int accepted_type(const char *ct, hgs3_accept_e accept)
{
    if (accept == HGS3_ACCEPT_MERCURIAL) {
        return has_prefix(ct, MERCURIAL_TYPE);
    }
    return has_prefix(ct, MERCURIAL_TYPE "0.1") || has_prefix(ct, MERCURIAL_TYPE "0.2");
}

/* The Content-Length against the size limits; *n is its value. Only
 * digits (RFC 9110), so an empty value is not taken for 0. */
static hgs3_skip_e check_length(const char *cl, apr_off_t min_size, apr_off_t max_size,
                                apr_off_t *n)
{
    char *end = NULL;

    if (!apr_isdigit(*cl) || apr_strtoff(n, cl, &end, 10) != APR_SUCCESS || *end) {
        return HGS3_SKIP_CONTENT_LENGTH;
    }
    if (*n > max_size) {
        return HGS3_SKIP_TOO_LARGE;
    }
    return *n < min_size ? HGS3_SKIP_TOO_SMALL : HGS3_SKIP_NONE;
}

hgs3_skip_e hgs3_cacheable_head(const hgs3_head_values *h, hgs3_accept_e accept, apr_off_t min_size,
                                apr_off_t max_size, apr_off_t *expected)
{
    hgs3_skip_e why = HGS3_SKIP_NONE;
    apr_off_t n = -1;

    if (h->status != 200) {
        why = HGS3_SKIP_STATUS;
    } else if (h->content_type && has_prefix(h->content_type, HG_ERROR_TYPE)) {
        why = HGS3_SKIP_HG_ERROR;
    } else if (!h->content_type || !accepted_type(h->content_type, accept)) {
        why = HGS3_SKIP_CONTENT_TYPE;
    } else if (h->content_encoding) {
        why = HGS3_SKIP_CONTENT_ENCODING;
    } else if (h->set_cookie) {
        why = HGS3_SKIP_SET_COOKIE;
    } else if (h->content_length) {
        why = check_length(h->content_length, min_size, max_size, &n);
    }
    *expected = why == HGS3_SKIP_NONE ? n : -1;
    return why;
}
