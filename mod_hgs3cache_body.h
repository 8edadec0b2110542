/* mod_hgs3cache_body.h: reading a POST argument prefix that hgweb still sees. */
#ifndef MOD_HGS3CACHE_BODY_H
#define MOD_HGS3CACHE_BODY_H

#include <httpd.h>

void hgs3_body_register(apr_pool_t *p);

/* Read the first `want` bytes of the request body into *pdata (NUL
 * terminated, from r->pool) and arrange for hgweb to read the whole body,
 * those bytes included, exactly as sent. On failure *pdata is NULL, and
 * whatever was read is still replayed. */
apr_status_t hgs3_body_read_prefix(request_rec *r, apr_size_t want, const char **pdata);

#endif
