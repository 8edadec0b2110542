/* hgs3_store.c: what every store backend shares (see hgs3_store.h). */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_store.h"

const char *hgs3_store_error_text(apr_pool_t *p, hgs3_store_conn *c)
{
    return c && c->st->impl->error_text ? c->st->impl->error_text(p, c) : "";
}

apr_status_t hgs3_store_client_url(const char **url, hgs3_store *st, apr_pool_t *p, const char *key,
                                   int expiry_s, apr_time_t now)
{
    *url = NULL;
    if (!st->impl->client_url) {
        return APR_ENOTIMPL;
    }
    return st->impl->client_url(url, st, p, key, expiry_s, now);
}

apr_status_t hgs3_store_open_local(apr_file_t **f, hgs3_store_object *obj, hgs3_store *st,
                                   apr_pool_t *p, const char *key)
{
    *f = NULL;
    if (!st->impl->open_local) {
        return APR_ENOTIMPL;
    }
    return st->impl->open_local(f, obj, st, p, key);
}

const char *hgs3_store_object_id(apr_pool_t *p, const hgs3_store *st, const char *key)
{
    return apr_pstrcat(p, st->id, "\n", key, NULL);
}

apr_status_t hgs3_store_check_found(const hgs3_store_object *obj)
{
    return obj->content_length > 0 && obj->last_modified > 0 ? APR_SUCCESS : HGS3_EPROTO;
}

/* hgweb's cacheable answers, the only types ever stored. */
static int is_bundle_type(const char *ct)
{
    return ct && (!strncasecmp(ct, "application/mercurial-0.1", 25) ||
                  !strncasecmp(ct, "application/mercurial-0.2", 25));
}

apr_status_t hgs3_store_check_whole(const hgs3_store_object *got)
{
    return got->status == 200 && got->content_length > 0 && is_bundle_type(got->content_type)
               ? APR_SUCCESS
               : HGS3_EPROTO;
}

apr_status_t hgs3_store_check_same(const hgs3_store_object *got, const hgs3_store_object *lookup)
{
    if (lookup && (got->content_length != lookup->content_length || !lookup->content_type ||
                   !got->content_type || strcasecmp(got->content_type, lookup->content_type))) {
        return HGS3_EPROTO;
    }
    return APR_SUCCESS;
}
