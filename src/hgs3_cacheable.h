/* hgs3_cacheable.h: SPEC "Never cached", as far as a response's head tells.
 *
 * The capture filter (a getbundle body for the store) and the inline
 * filter (a small reply for the presence cache) decide from the same
 * rules, once, when the first brigade passes: a status other than 200,
 * application/hg-error, a media type that is not hg's, a Content-Encoding,
 * a Set-Cookie, a malformed Content-Length or one outside the size limits.
 * They differ only in the media types they accept. The glue collects the
 * header values (from headers_out and err_headers_out); the body's own
 * checks (bundle2 error parts, length) stay with each filter. */
#ifndef HGS3_CACHEABLE_H
#define HGS3_CACHEABLE_H

#include <apr.h>

#include "hgs3_stats.h"

typedef enum {
    HGS3_ACCEPT_BUNDLE,   /* application/mercurial-0.1 and -0.2: a getbundle body */
    HGS3_ACCEPT_MERCURIAL /* any application/mercurial-*: a small reply */
} hgs3_accept_e;

/* What the check reads of a response head. */
typedef struct hgs3_head_values {
    int status;
    const char *content_type;   /* NULL: none */
    int content_encoding;       /* a Content-Encoding is set */
    int set_cookie;             /* a Set-Cookie is set */
    const char *content_length; /* NULL: none */
} hgs3_head_values;

/* HGS3_SKIP_NONE when the head allows the body to be kept, and then
 * *expected is its Content-Length, or -1 without one. Otherwise the first
 * reason in the order above (HGS3_SKIP_TOO_LARGE / HGS3_SKIP_TOO_SMALL for
 * a Content-Length above max_size / below min_size) and *expected is -1. */
hgs3_skip_e hgs3_cacheable_head(const hgs3_head_values *h, hgs3_accept_e accept, apr_off_t min_size,
                                apr_off_t max_size, apr_off_t *expected);

#endif
