/* hgs3_err.c: texts for the core library's status codes. */
#include <apr_strings.h>
#include "hgs3_err.h"

static const char *const texts[] = {
    "ok",
    "object not found",
    "store refused the credentials or signature",
    "store error (5xx or SlowDown)",
    "store timed out",
    "store connection failed",
    "unexpected answer from store",
    "malformed input",
    "input too large",
    "crypto library failure",
    "invalid configuration",
    "store refused the request (4xx)",
    "transfer aborted",
    "TLS to the store failed",
};

const char *hgs3_strerror(apr_status_t rv, char *buf, apr_size_t len)
{
    if (rv > HGS3_ERR_BASE && rv <= HGS3_ETLS) {
        return texts[rv - HGS3_ERR_BASE];
    }
    return apr_strerror(rv, buf, len);
}

int hgs3_is_store_failure(apr_status_t rv)
{
    return rv == HGS3_ESTORE || rv == HGS3_ETIMEOUT || rv == HGS3_ECONN || rv == HGS3_ETLS;
}
