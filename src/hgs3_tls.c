/* hgs3_tls.c: checks of the trust an https store is verified with. */
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_file_info.h>

#include "hgs3_err.h"
#include "hgs3_tls.h"

/* Certificates OpenSSL finds in a PEM file, loaded the way libcurl loads
 * its CA file (an X509 file lookup). A parse failure only means "none": the
 * error queue is cleared, not reported. */
static int pem_certificates(const char *path)
{
    X509_STORE *store = X509_STORE_new();
    X509_LOOKUP *lookup = store ? X509_STORE_add_lookup(store, X509_LOOKUP_file()) : NULL;
    int n = lookup ? X509_load_cert_crl_file(lookup, path, X509_FILETYPE_PEM) : 0;

    ERR_clear_error();
    X509_STORE_free(store);
    return n > 0 ? n : 0;
}

apr_status_t hgs3_tls_check_ca_file(apr_pool_t *p, const char *path, const char **msg)
{
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    char buf[128];
    apr_status_t rv;

    *msg = NULL;
    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_OS_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_file_info_get(&fi, APR_FINFO_TYPE | APR_FINFO_SIZE, f);
        apr_file_close(f);
    }
    if (rv != APR_SUCCESS) {
        *msg =
            apr_psprintf(p, "'%s' cannot be read (%s)", path, apr_strerror(rv, buf, sizeof(buf)));
        goto leave;
    }
    rv = HGS3_ECONFIG;
    if (fi.filetype != APR_REG) {
        *msg = apr_psprintf(p, "'%s' is not a regular file", path);
    } else if (fi.size == 0) {
        *msg = apr_psprintf(p, "'%s' is empty", path);
    } else if (!pem_certificates(path)) {
        *msg = apr_psprintf(p, "'%s' holds no PEM certificate", path);
    } else {
        rv = APR_SUCCESS;
    }
leave:
    return rv;
}

apr_status_t hgs3_tls_check_ca_path(apr_pool_t *p, const char *dir, const char **msg)
{
    apr_dir_t *d = NULL;
    char buf[128];
    apr_status_t rv;

    *msg = NULL;
    rv = apr_dir_open(&d, dir, p);
    if (rv != APR_SUCCESS) {
        *msg = apr_psprintf(p, "'%s' is not a directory that can be read (%s)", dir,
                            apr_strerror(rv, buf, sizeof(buf)));
        goto leave;
    }
    apr_dir_close(d);
leave:
    return rv;
}
