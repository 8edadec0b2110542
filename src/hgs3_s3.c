/* hgs3_s3.c: S3 client over libcurl; hgs3_sigv4 signs every request. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <openssl/x509_vfy.h>
#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uri.h>
#include <apr_date.h>

#include "hgs3_err.h"
#include "hgs3_crypto.h"
#include "hgs3_sigv4.h"
#include "hgs3_s3xml.h"
#include "hgs3_s3.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

#define S3_SERVICE      "s3"
#define ERROR_BODY_MAX  (64 * 1024)   /* kept of an error answer */
#define RESULT_BODY_MAX (1024 * 1024) /* kept of an XML result */
#define HASH_CHUNK      (64 * 1024)
#define BACKOFF_BASE    apr_time_from_msec(200)
#define BACKOFF_MAX     apr_time_from_sec(5)

/* ---- endpoint and addressing ----------------------------------------------- */

typedef struct s3_endpoint {
    const char *scheme;   /* "http" or "https" */
    const char *hostport; /* host[:port] for URLs and Host; IPv6 in brackets;
                             the port only when it is not the scheme's default */
    const char *base;     /* "" or "/some/base", no trailing slash */
    const char *region;
    const char *bucket;
    int addressing;
} s3_endpoint;

/* S3's bucket naming rules, the same for both addressings (a name that
 * breaks them works with neither on AWS): 3 to 63 lowercase letters,
 * digits, '.' and '-', beginning and ending with a letter or digit. */
apr_status_t hgs3_s3_check_bucket(const char *bucket, const char **msg)
{
    apr_size_t i, n = bucket ? strlen(bucket) : 0;

    *msg = NULL;
    if (n < 3 || n > 63) {
        *msg = "bucket name missing, or not 3 to 63 characters long";
        return HGS3_ECONFIG;
    }
    for (i = 0; i < n; ++i) {
        if (!apr_islower(bucket[i]) && !apr_isdigit(bucket[i]) && !strchr(".-", bucket[i])) {
            *msg = "a bucket name may only hold lowercase letters, digits, '.' and '-'";
            return HGS3_ECONFIG;
        }
    }
    if (!apr_isalnum(bucket[0]) || !apr_isalnum(bucket[n - 1])) {
        *msg = "a bucket name must begin and end with a letter or digit";
        return HGS3_ECONFIG;
    }
    return APR_SUCCESS;
}

static int valid_base(const char *s)
{
    for (; *s; ++s) {
        if (!apr_isalnum(*s) && !strchr("-._~/", *s)) {
            return 0;
        }
    }
    return 1;
}

static int valid_region(const char *r)
{
    apr_size_t n = strlen(r);
    if (n == 0 || n > HGS3_SIGV4_MAX_SCOPE_PART) {
        return 0;
    }
    for (; *r; ++r) {
        if (!apr_isalnum(*r) && *r != '-' && *r != '_') {
            return 0;
        }
    }
    return 1;
}

typedef struct s3_url {
    const char *scheme;   /* "http" or "https" */
    const char *host;     /* IPv6 in brackets */
    const char *hostport; /* host[:port], the port only when not the scheme's default */
    const char *base;     /* "" or "/some/base", no trailing slash */
} s3_url;

/* http[s]://host[:port][/base], without user info, query or fragment. No
 * message quotes the URL, which may hold a password. */
static apr_status_t url_parse(s3_url *u, apr_pool_t *p, const char *url, const char **msg)
{
    apr_uri_t uri;
    apr_size_t n;
    char *base;

    memset(u, 0, sizeof(*u));
    if (!url || apr_uri_parse(p, url, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname ||
        !*uri.hostname) {
        *msg = "endpoint is not a URL of the form http[s]://host[:port][/path]";
        return HGS3_ECONFIG;
    }
    if (strcasecmp(uri.scheme, "https") && strcasecmp(uri.scheme, "http")) {
        *msg = "endpoint scheme must be http or https";
        return HGS3_ECONFIG;
    }
    u->scheme = apr_tolower(uri.scheme[4]) == 's' ? "https" : "http";
    if (uri.user || uri.password || uri.query || uri.fragment) {
        *msg = "endpoint may not hold user, password, query or fragment";
        return HGS3_ECONFIG;
    }
    if (uri.port_str && (!*uri.port_str || !uri.port)) {
        *msg = "invalid endpoint port";
        return HGS3_ECONFIG;
    }
    u->host = strchr(uri.hostname, ':') ? apr_pstrcat(p, "[", uri.hostname, "]", NULL)
                                        : apr_pstrdup(p, uri.hostname);
    if (strpbrk(u->host, " \t\r\n/@?#")) {
        *msg = "invalid endpoint host";
        return HGS3_ECONFIG;
    }
    u->hostport = (uri.port_str && uri.port != apr_uri_port_of_scheme(u->scheme))
                      ? apr_psprintf(p, "%s:%u", u->host, (unsigned)uri.port)
                      : u->host;
    base = apr_pstrdup(p, uri.path ? uri.path : "");
    n = strlen(base);
    while (n > 0 && base[n - 1] == '/') {
        base[--n] = '\0';
    }
    if (!valid_base(base) || (n && base[0] != '/')) {
        *msg = "endpoint path may only hold unreserved characters and '/'";
        return HGS3_ECONFIG;
    }
    u->base = base;
    return APR_SUCCESS;
}

apr_status_t hgs3_s3_check_endpoint(apr_pool_t *p, const char *url, const char **msg)
{
    s3_url u;
    *msg = NULL;
    return url_parse(&u, p, url, msg);
}

static apr_status_t endpoint_parse(s3_endpoint *ep, apr_pool_t *p, const hgs3_s3_config *conf,
                                   const char **msg)
{
    s3_url u;
    apr_status_t rv;

    memset(ep, 0, sizeof(*ep));
    *msg = NULL;
    ep->region = conf->region && *conf->region ? conf->region : HGS3_S3_DEF_REGION;
    if (!valid_region(ep->region)) {
        *msg = "invalid region name";
        return HGS3_ECONFIG;
    }
    ep->addressing = conf->addressing;
    if (ep->addressing != HGS3_S3_VIRTUAL && ep->addressing != HGS3_S3_PATH) {
        *msg = "addressing must be path or virtual";
        return HGS3_ECONFIG;
    }
    ep->bucket = conf->bucket;
    if ((rv = hgs3_s3_check_bucket(ep->bucket, msg)) != APR_SUCCESS) {
        return rv;
    }
    rv = url_parse(&u, p,
                   conf->endpoint && *conf->endpoint
                       ? conf->endpoint
                       : apr_pstrcat(p, "https://s3.", ep->region, ".amazonaws.com", NULL),
                   msg);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    ep->scheme = u.scheme;
    ep->hostport = u.hostport;
    ep->base = u.base;
    if (ep->addressing == HGS3_S3_VIRTUAL) {
        /* botocore falls back to path style in both cases; we say so
         * instead of silently changing the addressing. */
        if (u.host[0] == '[' || strspn(u.host, "0123456789.") == strlen(u.host)) {
            *msg = "virtual-hosted addressing needs a host name, not an IP address "
                   "(use path addressing)";
            return HGS3_ECONFIG;
        }
        if (strchr(ep->bucket, '.') && !strcmp(u.scheme, "https")) {
            *msg = "virtual-hosted addressing over https needs a bucket name without dots, "
                   "which TLS certificates cannot match (use path addressing)";
            return HGS3_ECONFIG;
        }
        ep->hostport = apr_pstrcat(p, ep->bucket, ".", ep->hostport, NULL);
    }
    return APR_SUCCESS;
}

/* Unencoded path of key (the signer encodes it). */
static const char *object_path(apr_pool_t *p, const s3_endpoint *ep, const char *key)
{
    if (ep->addressing == HGS3_S3_PATH) {
        return apr_pstrcat(p, ep->base, "/", ep->bucket, "/", key, NULL);
    }
    return apr_pstrcat(p, ep->base, "/", key, NULL);
}

static int valid_key(const char *key)
{
    return key && *key && strlen(key) <= 1024;
}

apr_status_t hgs3_s3_config_check(const hgs3_s3_config *conf, apr_pool_t *p, const char **msg)
{
    s3_endpoint ep;
    apr_status_t rv;

    if ((rv = endpoint_parse(&ep, p, conf, msg)) != APR_SUCCESS) {
        return rv;
    }
    if (conf->part_size &&
        (conf->part_size < HGS3_S3_MIN_PART_SIZE || conf->part_size > HGS3_S3_MAX_PART_SIZE)) {
        *msg = "multipart part size must be between 5 MiB and 5 GiB";
        return HGS3_ECONFIG;
    }
    if (conf->upload_tries < 0 || conf->upload_tries > HGS3_S3_MAX_TRIES) {
        *msg = "upload tries must be between 1 and 10";
        return HGS3_ECONFIG;
    }
    if (conf->connect_timeout_ms < 0 || conf->timeout_ms < 0 || conf->multipart_threshold < 0) {
        *msg = "timeouts and thresholds may not be negative";
        return HGS3_ECONFIG;
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_s3_object_url(const char **url, apr_pool_t *p, const hgs3_s3_config *conf,
                                const char *key)
{
    s3_endpoint ep;
    const char *msg;
    apr_status_t rv;

    *url = NULL;
    if ((rv = endpoint_parse(&ep, p, conf, &msg)) != APR_SUCCESS) {
        return rv;
    }
    if (!valid_key(key)) {
        return APR_EINVAL;
    }
    *url = apr_pstrcat(p, ep.scheme, "://", ep.hostport,
                       hgs3_sigv4_uri_encode(p, object_path(p, &ep, key), 1), NULL);
    return APR_SUCCESS;
}

apr_status_t hgs3_s3_presign(const char **url, apr_pool_t *p, const hgs3_s3_config *conf,
                             const char *method, const char *key, int expires,
                             const char *response_content_type, apr_time_t now)
{
    s3_endpoint ep;
    hgs3_sigv4_request req;
    hgs3_sigv4_result *res;
    hgs3_sigv4_pair q[1];
    const char *msg;
    apr_status_t rv;

    *url = NULL;
    if ((rv = endpoint_parse(&ep, p, conf, &msg)) != APR_SUCCESS) {
        goto leave;
    }
    if (!valid_key(key) || !method || !*method) {
        rv = APR_EINVAL;
        goto leave;
    }
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.host = ep.hostport;
    req.path = object_path(p, &ep, key);
    if (response_content_type && *response_content_type) {
        q[0].name = "response-content-type";
        q[0].value = response_content_type;
        req.query = q;
        req.nquery = 1;
    }
    rv = hgs3_sigv4_presign(&res, p, &conf->creds, ep.region, S3_SERVICE, now, expires, &req,
                            conf->keycache);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    *url = apr_pstrcat(p, ep.scheme, "://", ep.hostport, res->canonical_uri, "?", res->query_string,
                       NULL);
leave:
    return rv;
}

/* ---- process-wide ------------------------------------------------------------ */

apr_status_t hgs3_s3_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? APR_SUCCESS : HGS3_ECONN;
}

void hgs3_s3_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- client -------------------------------------------------------------------- */

struct hgs3_s3_client {
    apr_pool_t *pool;
    hgs3_s3_config conf; /* strings copied into pool */
    s3_endpoint ep;
    int tries;
    const char *user_agent;
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    hgs3_s3_error err;
    long connects;
};

static apr_status_t client_cleanup(void *data)
{
    hgs3_s3_client *c = data;
    if (c->curl) {
        curl_easy_cleanup(c->curl);
        c->curl = NULL;
    }
    /* The secret copy lives in this pool; wipe it before the pool goes. */
    if (c->conf.creds.secret_key) {
        memset((char *)c->conf.creds.secret_key, 0, strlen(c->conf.creds.secret_key));
    }
    if (c->conf.creds.session_token) {
        memset((char *)c->conf.creds.session_token, 0, strlen(c->conf.creds.session_token));
    }
    return APR_SUCCESS;
}

static const char *dup_or_null(apr_pool_t *p, const char *s)
{
    return s ? apr_pstrdup(p, s) : NULL;
}

apr_status_t hgs3_s3_client_create(hgs3_s3_client **pc, apr_pool_t *p, const hgs3_s3_config *conf)
{
    hgs3_s3_client *c;
    const char *msg;
    apr_status_t rv;

    *pc = NULL;
    if ((rv = hgs3_s3_config_check(conf, p, &msg)) != APR_SUCCESS) {
        return rv;
    }
    c = apr_pcalloc(p, sizeof(*c));
    c->pool = p;
    c->conf = *conf;
    c->conf.endpoint = dup_or_null(p, conf->endpoint);
    c->conf.region = dup_or_null(p, conf->region);
    c->conf.bucket = dup_or_null(p, conf->bucket);
    c->conf.creds.access_key = dup_or_null(p, conf->creds.access_key);
    c->conf.creds.secret_key = dup_or_null(p, conf->creds.secret_key);
    c->conf.creds.session_token = dup_or_null(p, conf->creds.session_token);
    c->conf.ca_file = dup_or_null(p, conf->ca_file);
    c->conf.ca_path = dup_or_null(p, conf->ca_path);
    if (!c->conf.part_size) {
        c->conf.part_size = HGS3_S3_DEF_PART_SIZE;
    }
    if (!c->conf.multipart_threshold) {
        c->conf.multipart_threshold = HGS3_S3_DEF_MULTIPART_THRESHOLD;
    }
    c->tries = conf->upload_tries ? conf->upload_tries : HGS3_S3_DEF_TRIES;
    c->user_agent =
        conf->user_agent ? apr_pstrdup(p, conf->user_agent) : "mod_hgs3cache/" PACKAGE_VERSION;
    if ((rv = endpoint_parse(&c->ep, p, &c->conf, &msg)) != APR_SUCCESS) {
        return rv;
    }
    c->curl = curl_easy_init();
    apr_pool_cleanup_register(p, c, client_cleanup, apr_pool_cleanup_null);
    if (!c->curl) {
        return APR_ENOMEM;
    }
    *pc = c;
    return APR_SUCCESS;
}

const hgs3_s3_error *hgs3_s3_last_error(const hgs3_s3_client *c)
{
    return &c->err;
}

const char *hgs3_s3_client_endpoint(apr_pool_t *p, const hgs3_s3_client *c)
{
    return apr_pstrcat(p, c->ep.scheme, "://", c->ep.hostport, c->ep.base, NULL);
}

void hgs3_s3_client_set_timeout(hgs3_s3_client *c, long timeout_ms)
{
    c->conf.timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
}

long hgs3_s3_client_connects(const hgs3_s3_client *c)
{
    return c->connects;
}

const char *hgs3_s3_error_text(apr_pool_t *p, const hgs3_s3_client *c)
{
    const hgs3_s3_error *e = &c->err;
    const char *s;

    /* Store-supplied text only as its error Code and request id (SPEC
     * "Failure behaviour"): a store may echo our request in its Message. */
    if (e->status) {
        s = apr_psprintf(p, "HTTP %d", e->status);
    } else {
        s = "no answer";
    }
    if (e->tls) {
        s = apr_pstrcat(p, s, ": TLS to ", hgs3_s3_client_endpoint(p, c), ": ", e->tls, NULL);
    }
    if (e->code[0]) {
        s = apr_pstrcat(p, s, " ", hgs3_s3xml_redact(p, e->code), NULL);
    }
    if (e->transport[0]) {
        s = apr_pstrcat(p, s, " (", hgs3_s3xml_redact(p, e->transport), ")", NULL);
    }
    if (e->request_id[0]) {
        s = apr_pstrcat(p, s, " (request id ", hgs3_s3xml_redact(p, e->request_id), ")", NULL);
    }
    if (e->attempts > 1) {
        s = apr_psprintf(p, "%s after %d attempts", s, e->attempts);
    }
    return s;
}

/* ---- status mapping: the one place ----------------------------------------------- */

static int code_is(const char *code, const char *const *list)
{
    for (; code && *list; ++list) {
        if (!strcmp(code, *list)) {
            return 1;
        }
    }
    return 0;
}

static const char *const auth_codes[] = {"AccessDenied",
                                         "InvalidAccessKeyId",
                                         "SignatureDoesNotMatch",
                                         "AuthorizationHeaderMalformed",
                                         "AuthorizationQueryParametersError",
                                         "ExpiredToken",
                                         "InvalidToken",
                                         "TokenRefreshRequired",
                                         "RequestTimeTooSkewed",
                                         "MissingSecurityHeader",
                                         "InvalidSecurity",
                                         "InvalidClientTokenId",
                                         NULL};

/* Answers that say "try again later". */
static const char *const busy_codes[] = {"SlowDown",       "InternalError",    "ServiceUnavailable",
                                         "RequestTimeout", "OperationAborted", NULL};

/* libcurl's TLS failures: the store's certificate or the handshake. */
static int is_tls_code(CURLcode cc)
{
    switch (cc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
        return 1;
    default:
        return 0;
    }
}

/* Why the store's certificate was refused, for an operator. libcurl's verify
 * result is OpenSSL's X509_V_ERR_* (libcurl is built on OpenSSL here, see
 * configure). A chain that verifies but names another host fails in
 * libcurl's own host-name check, which sets no X509 code of its own (1, or
 * X509_V_OK) and says "subject name" in its error text. */
static const char *cert_reason(long verify_result, const char *errtext)
{
    if (strstr(errtext, "subject name")) {
        return "name mismatch";
    }
    switch (verify_result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "not yet valid";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return "unknown issuer";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "name mismatch";
    case X509_V_ERR_CERT_REVOKED:
        return "revoked";
    default:
        return "certificate not trusted";
    }
}

static const char *tls_reason(CURL *h, CURLcode cc, const char *errtext)
{
    long verify_result = X509_V_OK;

    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        if (curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &verify_result) != CURLE_OK) {
            verify_result = X509_V_OK;
        }
        return cert_reason(verify_result, errtext);
    case CURLE_SSL_CACERT_BADFILE:
        return "CA file or directory unusable";
    case CURLE_SSL_CONNECT_ERROR:
        return "handshake failed";
    default:
        return "failure";
    }
}

/* CURLcode, HTTP status and S3 error code -> apr_status_t.
 * local_rv is what a callback or the body source reported when it stopped
 * the transfer; it wins, as it says why the transfer stopped. */
#define HGS3_S3_GET_BUFFER (256 * 1024)

static apr_status_t s3_status(CURLcode cc, long http, const char *code, apr_status_t local_rv)
{
    if (local_rv != APR_SUCCESS) {
        return local_rv;
    }
    if (cc != CURLE_OK) {
        if (is_tls_code(cc)) {
            return HGS3_ETLS;
        }
        switch (cc) {
        case CURLE_OPERATION_TIMEDOUT:
            return HGS3_ETIMEOUT;
        case CURLE_ABORTED_BY_CALLBACK:
        case CURLE_WRITE_ERROR:
        case CURLE_READ_ERROR:
            return HGS3_EABORTED;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
            return HGS3_ECONFIG;
        case CURLE_OUT_OF_MEMORY:
            return APR_ENOMEM;
        default:
            return HGS3_ECONN;
        }
    }
    if (code_is(code, busy_codes) || http == 429 || http >= 500) {
        return HGS3_ESTORE;
    }
    if (http >= 200 && http < 300) {
        /* A 2xx whose body is an <Error> (CompleteMultipartUpload). */
        return code ? HGS3_ECLIENT : APR_SUCCESS;
    }
    if (http == 404) {
        return (code && !strcmp(code, "NoSuchBucket")) ? HGS3_ECONFIG : HGS3_ENOTFOUND;
    }
    if (http == 401 || http == 403 || code_is(code, auth_codes)) {
        return HGS3_EAUTH;
    }
    if (http >= 400) {
        return HGS3_ECLIENT;
    }
    return HGS3_EPROTO; /* 1xx, 3xx (e.g. a wrong region's redirect) */
}

/* ---- one request ------------------------------------------------------------------ */

typedef struct s3_body {
    const char *mem;  /* either memory ... */
    apr_file_t *file; /* ... or len bytes of file from offset */
    apr_off_t offset;
    apr_off_t len;
    apr_off_t pos;   /* bytes handed to libcurl */
    apr_status_t rv; /* read failure */
} s3_body;

typedef struct s3_req {
    hgs3_s3_client *c;
    apr_pool_t *pool;
    const char *method;
    const char *key;
    const hgs3_sigv4_pair *query;
    int nquery;
    hgs3_sigv4_pair headers[2]; /* signed and sent: Content-Type, Range */
    int nheaders;
    const char *payload_hash; /* NULL: empty body */
    s3_body *body;
    int is_upload; /* retried on HGS3_ESTORE */
    int cleanup;   /* an abort: sent even after a cancel (see hgs3_s3_config) */
    int keep_body; /* collect a 2xx body (an XML result) */
    hgs3_s3_headers_cb *on_headers;
    hgs3_s3_data_cb *on_data;
    void *baton;
    /* answer */
    hgs3_s3_object obj;
    int delivered;
    apr_status_t cb_rv;
    apr_time_t last_progress; /* stall detection */
    curl_off_t last_dl, last_ul;
    curl_off_t data_bytes; /* handed to on_data: a streamed GET's progress */
    char *buf;
    apr_size_t buf_len;
} s3_req;

static void req_init(s3_req *r, hgs3_s3_client *c, apr_pool_t *p, const char *method,
                     const char *key)
{
    memset(r, 0, sizeof(*r));
    r->c = c;
    r->pool = p;
    r->method = method;
    r->key = key;
}

static void req_add_header(s3_req *r, const char *name, const char *value)
{
    if (value && *value && r->nheaders < (int)(sizeof(r->headers) / sizeof(r->headers[0]))) {
        r->headers[r->nheaders].name = name;
        r->headers[r->nheaders].value = value;
        r->nheaders++;
    }
}

static void copy_field(char *dst, apr_size_t size, const char *s, apr_size_t n)
{
    if (n >= size) {
        n = size - 1;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    /* Keep log lines single-line and printable. */
    for (; *dst; ++dst) {
        if ((unsigned char)*dst < ' ' || *dst == 127) {
            *dst = ' ';
        }
    }
}

static int header_is(const char *s, const char *e, const char *name)
{
    apr_size_t n = strlen(name);
    return (apr_size_t)(e - s) == n && !strncasecmp(s, name, n);
}

/* The owner asked every transfer to stop (see hgs3_s3_config.cancel). */
static int cancelled(const hgs3_s3_client *c)
{
    return c->conf.cancel && apr_atomic_read32((volatile apr_uint32_t *)c->conf.cancel) != 0;
}

/* Cancellation, then stall detection: any header, body byte up or down
 * counts as progress, except for a streamed GET (on_data set): there only
 * bytes of the object count, so its first byte must come within the stall
 * bound of the request, however many header lines or error-body bytes the
 * store trickles meanwhile. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    s3_req *r = ud;
    apr_time_t now = apr_time_now();

    (void)dltotal;
    (void)ultotal;
    if (!r->cleanup && cancelled(r->c)) {
        r->cb_rv = HGS3_EABORTED;
        return 1;
    }
    if (r->c->conf.stall_timeout_ms <= 0) {
        return 0;
    }
    if (r->on_data) {
        dlnow = r->data_bytes;
        ulnow = 0;
    }
    if (dlnow != r->last_dl || ulnow != r->last_ul || !r->last_progress) {
        r->last_dl = dlnow;
        r->last_ul = ulnow;
        r->last_progress = now;
        return 0;
    }
    if (now - r->last_progress > apr_time_from_msec(r->c->conf.stall_timeout_ms)) {
        r->cb_rv = HGS3_ETIMEOUT;
        return 1;
    }
    return 0;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud)
{
    s3_req *r = ud;
    size_t len = size * nitems;
    const char *s = data, *e = data + len, *colon, *v;
    char *value;

    if (!r->on_data) {
        r->last_progress = apr_time_now();
    }

    while (e > s && (e[-1] == '\r' || e[-1] == '\n')) {
        --e;
    }
    if (e - s >= 5 && !strncmp(s, "HTTP/", 5)) {
        /* A new answer (after a 100 Continue, say): forget the last one. */
        const char *sp = memchr(s, ' ', (size_t)(e - s));
        r->obj.status = sp ? atoi(sp + 1) : 0;
        r->obj.content_length = -1;
        r->obj.content_type = NULL;
        r->obj.etag = NULL;
        r->obj.last_modified = 0;
        r->c->err.request_id[0] = '\0';
        return len;
    }
    if (!(colon = memchr(s, ':', (size_t)(e - s)))) {
        return len;
    }
    for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); ++v) {
    }
    while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
        --e;
    }
    value = apr_pstrmemdup(r->pool, v, (apr_size_t)(e - v));
    if (header_is(s, colon, "Content-Length")) {
        char *end;
        apr_off_t n;
        if (apr_strtoff(&n, value, &end, 10) == APR_SUCCESS && !*end && n >= 0) {
            r->obj.content_length = n;
        }
    } else if (header_is(s, colon, "Content-Type")) {
        r->obj.content_type = value;
    } else if (header_is(s, colon, "ETag")) {
        r->obj.etag = value;
    } else if (header_is(s, colon, "Last-Modified")) {
        r->obj.last_modified = apr_date_parse_rfc(value);
    } else if (header_is(s, colon, "x-amz-request-id")) {
        value = (char *)hgs3_s3xml_redact(r->pool, value);
        copy_field(r->c->err.request_id, sizeof(r->c->err.request_id), value, strlen(value));
    }
    return len;
}

static int is_2xx(long status)
{
    return status >= 200 && status < 300;
}

static size_t on_write(char *data, size_t size, size_t nitems, void *ud)
{
    s3_req *r = ud;
    size_t len = size * nitems;
    long status = 0;
    apr_size_t max;

    curl_easy_getinfo(r->c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (is_2xx(status) && !r->keep_body) {
        if (!r->delivered) {
            r->delivered = 1;
            r->obj.status = (int)status;
            if (r->on_headers && (r->cb_rv = r->on_headers(r->baton, &r->obj)) != APR_SUCCESS) {
                return 0;
            }
        }
        r->data_bytes += (curl_off_t)len;
        if (r->on_data && len && (r->cb_rv = r->on_data(r->baton, data, len)) != APR_SUCCESS) {
            return 0;
        }
        return len;
    }
    /* An error document or an XML result: keep a bounded copy. */
    max = is_2xx(status) ? RESULT_BODY_MAX : ERROR_BODY_MAX;
    if (r->buf_len < max) {
        apr_size_t n = len < max - r->buf_len ? len : max - r->buf_len;
        if (!r->buf) {
            r->buf = apr_palloc(r->pool, max);
        }
        memcpy(r->buf + r->buf_len, data, n);
        r->buf_len += n;
    } else if (is_2xx(status)) {
        r->cb_rv = HGS3_ETOOBIG;
        return 0;
    }
    return len;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    s3_body *b = ud;
    apr_size_t want = size * nitems, got;
    apr_off_t left = b->len - b->pos;

    if (left <= 0) {
        return 0;
    }
    if ((apr_off_t)want > left) {
        want = (apr_size_t)left;
    }
    if (b->mem) {
        memcpy(buf, b->mem + b->pos, want);
    } else {
        b->rv = apr_file_read_full(b->file, buf, want, &got);
        if (b->rv == APR_SUCCESS && got != want) {
            b->rv = APR_EOF; /* the file shrank under us */
        }
        if (b->rv != APR_SUCCESS) {
            return CURL_READFUNC_ABORT;
        }
    }
    b->pos += (apr_off_t)want;
    return want;
}

static apr_status_t body_seek(s3_body *b, apr_off_t pos)
{
    if (b->file) {
        apr_off_t at = b->offset + pos;
        apr_status_t rv = apr_file_seek(b->file, APR_SET, &at);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    b->pos = pos;
    b->rv = APR_SUCCESS;
    return APR_SUCCESS;
}

/* libcurl rewinds the body when it must send it again. */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    s3_body *b = ud;
    if (origin != SEEK_SET || offset < 0 || offset > b->len) {
        return CURL_SEEKFUNC_CANTSEEK;
    }
    return body_seek(b, (apr_off_t)offset) == APR_SUCCESS ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_FAIL;
}

static apr_status_t slist_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *n = curl_slist_append(*list, line);
    if (!n) {
        return APR_ENOMEM;
    }
    *list = n;
    return APR_SUCCESS;
}

static void set_transport_error(hgs3_s3_client *c, CURLcode cc)
{
    const char *t = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
    copy_field(c->err.transport, sizeof(c->err.transport), t, strlen(t));
    c->err.tls = is_tls_code(cc) ? tls_reason(c->curl, cc, t) : NULL;
}

/* Trust for an https store. The peer's certificate and name are always
 * verified; nothing turns that off. A configured CA file or directory
 * replaces the system's trust rather than adding to it. The options are the
 * same for every request of a client, so libcurl's connection matching
 * reuses the handle's live connection, and the TLS session IDs it keeps
 * across curl_easy_reset() resume a new one without a full handshake. */
static void tls_setup(const hgs3_s3_client *c, CURL *h)
{
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 1L);
    if (c->conf.ca_file || c->conf.ca_path) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->conf.ca_file);
        curl_easy_setopt(h, CURLOPT_CAPATH, c->conf.ca_path);
    }
}

/* Signs r with the client's credentials: *url is the request's URL with
 * the canonical (encoded, sorted) query, *sig the headers to add. */
static apr_status_t sign_request(s3_req *r, const char **url, hgs3_sigv4_result **sig)
{
    hgs3_s3_client *c = r->c;
    hgs3_sigv4_request sreq;
    apr_status_t rv;

    *url = NULL;
    memset(&sreq, 0, sizeof(sreq));
    sreq.method = r->method;
    sreq.host = c->ep.hostport;
    sreq.path = object_path(r->pool, &c->ep, r->key);
    sreq.query = r->query;
    sreq.nquery = r->nquery;
    sreq.headers = r->headers;
    sreq.nheaders = r->nheaders;
    sreq.payload_hash = r->payload_hash ? r->payload_hash : HGS3_SIGV4_EMPTY_SHA256;
    rv = hgs3_sigv4_sign_header(sig, r->pool, &c->conf.creds, c->ep.region, S3_SERVICE,
                                apr_time_now(), &sreq, c->conf.keycache);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    *url = apr_pstrcat(r->pool, c->ep.scheme, "://", c->ep.hostport, (*sig)->canonical_uri,
                       *(*sig)->canonical_query ? "?" : "", (*sig)->canonical_query, NULL);
leave:
    if (rv != APR_SUCCESS) {
        *sig = NULL;
    }
    return rv;
}

/* The request's header lines: Host, the caller's, the signer's. On failure
 * *list is freed and NULL. */
static apr_status_t header_list(s3_req *r, const hgs3_sigv4_result *sig, struct curl_slist **list)
{
    apr_status_t rv;
    int i;

    *list = NULL;
    rv = slist_add(list, apr_pstrcat(r->pool, "Host: ", r->c->ep.hostport, NULL));
    for (i = 0; rv == APR_SUCCESS && i < r->nheaders; ++i) {
        rv = slist_add(list,
                       apr_pstrcat(r->pool, r->headers[i].name, ": ", r->headers[i].value, NULL));
    }
    for (i = 0; rv == APR_SUCCESS && i < sig->headers->nelts; ++i) {
        const hgs3_sigv4_pair *hp = &APR_ARRAY_IDX(sig->headers, i, hgs3_sigv4_pair);
        rv = slist_add(list, apr_pstrcat(r->pool, hp->name, ": ", hp->value, NULL));
    }
    if (rv == APR_SUCCESS) {
        /* No "Expect: 100-continue" round trip before each upload. */
        rv = slist_add(list, "Expect:");
    }
    if (rv != APR_SUCCESS) {
        curl_slist_free_all(*list);
        *list = NULL;
    }
    return rv;
}

/* The options every request of a client sets alike: transport, trust,
 * timeouts, progress and the response callbacks. */
static void set_common_opts(s3_req *r, CURL *h, const char *url, struct curl_slist *list)
{
    hgs3_s3_client *c = r->c;

    curl_easy_reset(h); /* keeps the connection cache */
    c->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    tls_setup(c, h);
    if (c->conf.connect_timeout_ms > 0) {
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->conf.connect_timeout_ms);
    }
    if (c->conf.timeout_ms > 0) {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->conf.timeout_ms);
    }
    if (r->cleanup && cancelled(c)) {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L); /* the child is going */
    }
    if (c->conf.stall_timeout_ms > 0 || c->conf.cancel) {
        r->last_progress = apr_time_now();
        r->last_dl = r->last_ul = 0;
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
}

/* The options that depend on the method and the body. */
static void set_method_opts(s3_req *r, CURL *h)
{
    if (r->body) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body->len);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, r->body);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, r->body);
        if (strcmp(r->method, "PUT")) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        }
    } else if (!strcmp(r->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(r->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        /* large reads: fewer callbacks, and fewer writes to the client of a
         * streamed hit (libcurl's default is 16 KiB) */
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)HGS3_S3_GET_BUFFER);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    }
}

/* Keeps the S3 error document's code, message and request id in c->err,
 * redacted. *code is the code as sent, for the status mapping. */
static void keep_error_doc(s3_req *r, long status, const char **code)
{
    hgs3_s3_client *c = r->c;
    const char *message = NULL, *reqid = NULL, *shown;

    *code = NULL;
    if (!r->buf_len || (is_2xx(status) && !r->keep_body) ||
        hgs3_s3xml_error(r->pool, r->buf, r->buf_len, code, &message, &reqid) != APR_SUCCESS) {
        return;
    }
    /* Store-supplied: never keep what looks like a credential. */
    shown = hgs3_s3xml_redact(r->pool, *code);
    message = hgs3_s3xml_redact(r->pool, message);
    reqid = hgs3_s3xml_redact(r->pool, reqid);
    if (shown) {
        copy_field(c->err.code, sizeof(c->err.code), shown, strlen(shown));
    }
    if (message) {
        copy_field(c->err.message, sizeof(c->err.message), message, strlen(message));
    }
    if (reqid && !c->err.request_id[0]) {
        copy_field(c->err.request_id, sizeof(c->err.request_id), reqid, strlen(reqid));
    }
}

/* Runs the configured transfer and maps its outcome to a status; the
 * error details go to c->err. */
static apr_status_t run_transfer(s3_req *r, CURL *h)
{
    hgs3_s3_client *c = r->c;
    const char *code = NULL;
    long status = 0, connects = 0;
    CURLcode cc;
    apr_status_t rv;

    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK) {
        c->connects += connects;
    }
    c->err.status = (int)status;
    if (cc != CURLE_OK) {
        set_transport_error(c, cc);
    }
    keep_error_doc(r, status, &code);
    rv = s3_status(cc, status, code,
                   r->cb_rv != APR_SUCCESS                   ? r->cb_rv
                   : (r->body && r->body->rv != APR_SUCCESS) ? r->body->rv
                                                             : APR_SUCCESS);
    if (rv == APR_SUCCESS && r->on_headers && !r->delivered && !r->keep_body) {
        /* An empty body: the headers still come first. */
        r->delivered = 1;
        r->obj.status = (int)status;
        rv = r->on_headers(r->baton, &r->obj);
    }
    return rv;
}

/* Sign and send r once. */
static apr_status_t attempt(s3_req *r)
{
    CURL *h = r->c->curl;
    hgs3_sigv4_result *sig;
    struct curl_slist *list = NULL;
    const char *url;
    apr_status_t rv;

    rv = sign_request(r, &url, &sig);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    rv = header_list(r, sig, &list);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    set_common_opts(r, h, url, list);
    set_method_opts(r, h);
    rv = run_transfer(r, h);
leave:
    /* Do not leave pointers to our stack or lists in the reused handle. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(list);
    return rv;
}

static apr_interval_time_t backoff(int attempt_no)
{
    apr_interval_time_t d = BACKOFF_BASE;
    while (--attempt_no > 0 && d < BACKOFF_MAX) {
        d *= 2;
    }
    if (d > BACKOFF_MAX) {
        d = BACKOFF_MAX;
    }
    /* Jitter: between half and the whole delay. */
    return d / 2 + (apr_time_now() % (d / 2 + 1));
}

static apr_status_t perform(s3_req *r)
{
    hgs3_s3_client *c = r->c;
    int tries = r->is_upload ? c->tries : 1, n;
    apr_status_t rv;

    memset(&c->err, 0, sizeof(c->err));
    for (n = 1;; ++n) {
        if (cancelled(c)) {
            if (!r->cleanup) {
                rv = HGS3_EABORTED;
                break;
            }
            if (n > 1) {
                break; /* an abort goes out once after a cancel */
            }
            tries = 1;
        }
        memset(&r->obj, 0, sizeof(r->obj));
        r->obj.content_length = -1;
        r->delivered = 0;
        r->cb_rv = APR_SUCCESS;
        r->buf_len = 0;
        c->err.status = 0;
        c->err.code[0] = c->err.message[0] = c->err.transport[0] = c->err.request_id[0] = '\0';
        c->err.tls = NULL;
        if (r->body && (rv = body_seek(r->body, 0)) != APR_SUCCESS) {
            break;
        }
        rv = attempt(r);
        c->err.attempts = n;
        if (rv != HGS3_ESTORE || n >= tries) {
            break;
        }
        apr_sleep(backoff(n));
    }
    r->obj.status = c->err.status;
    return rv;
}

/* ---- operations -------------------------------------------------------------------- */

/* SHA-256 hex of len bytes of f from offset. */
static apr_status_t hash_range(char hex[HGS3_SHA256_HEX_LEN + 1], apr_pool_t *p, apr_file_t *f,
                               apr_off_t offset, apr_off_t len)
{
    unsigned char md[HGS3_SHA256_LEN];
    hgs3_sha256_ctx *ctx;
    char *buf;
    apr_status_t rv;

    if ((rv = apr_file_seek(f, APR_SET, &offset)) != APR_SUCCESS ||
        (rv = hgs3_sha256_create(&ctx, p)) != APR_SUCCESS) {
        return rv;
    }
    buf = apr_palloc(p, HASH_CHUNK);
    while (len > 0) {
        apr_size_t n = len > HASH_CHUNK ? HASH_CHUNK : (apr_size_t)len, got;
        if ((rv = apr_file_read_full(f, buf, n, &got)) != APR_SUCCESS) {
            return rv;
        }
        if ((rv = hgs3_sha256_update(ctx, buf, got)) != APR_SUCCESS) {
            return rv;
        }
        len -= (apr_off_t)got;
    }
    if ((rv = hgs3_sha256_final(ctx, md)) != APR_SUCCESS) {
        return rv;
    }
    hgs3_hex(hex, md, sizeof(md));
    return APR_SUCCESS;
}

apr_status_t hgs3_s3_head(hgs3_s3_object *obj, hgs3_s3_client *c, apr_pool_t *p, const char *key)
{
    s3_req r;
    apr_status_t rv;

    memset(obj, 0, sizeof(*obj));
    obj->content_length = -1;
    if (!valid_key(key)) {
        return APR_EINVAL;
    }
    req_init(&r, c, p, "HEAD", key);
    rv = perform(&r);
    *obj = r.obj;
    return rv;
}

apr_status_t hgs3_s3_check_head(const hgs3_s3_object *obj)
{
    return obj->status == 200 && obj->content_length > 0 && obj->last_modified > 0 ? APR_SUCCESS
                                                                                   : HGS3_EPROTO;
}

/* hgweb's cacheable answers, the only types ever stored. */
static int is_bundle_type(const char *ct)
{
    return ct && (!strncasecmp(ct, "application/mercurial-0.1", 25) ||
                  !strncasecmp(ct, "application/mercurial-0.2", 25));
}

apr_status_t hgs3_s3_check_get(const hgs3_s3_object *got, const hgs3_s3_object *head)
{
    if (got->status != 200 || got->content_length <= 0 || !is_bundle_type(got->content_type)) {
        return HGS3_EPROTO;
    }
    if (head && (got->content_length != head->content_length || !head->content_type ||
                 strcasecmp(got->content_type, head->content_type))) {
        return HGS3_EPROTO;
    }
    return APR_SUCCESS;
}

apr_status_t hgs3_s3_explain_403(hgs3_s3_client *c, apr_pool_t *p, const char *key)
{
    s3_req r;
    apr_status_t rv;

    if (!valid_key(key)) {
        return APR_EINVAL;
    }
    req_init(&r, c, p, "GET", key);
    req_add_header(&r, "Range", "bytes=0-0");
    r.keep_body = 1;
    rv = perform(&r);
    if (rv == HGS3_EAUTH && !strcmp(c->err.code, "AccessDenied")) {
        /* Signed correctly, but not allowed: a missing key without
         * s3:ListBucket looks exactly like this. */
        rv = HGS3_ENOTFOUND;
    }
    return rv;
}

static apr_status_t put_body(hgs3_s3_client *c, apr_pool_t *p, const char *key, s3_body *body,
                             const char *content_type, const char *sha256_hex, const char **etag)
{
    s3_req r;
    apr_status_t rv;

    req_init(&r, c, p, "PUT", key);
    req_add_header(&r, "Content-Type", content_type);
    r.payload_hash = sha256_hex;
    r.body = body;
    r.is_upload = 1;
    rv = perform(&r);
    if (etag) {
        *etag = rv == APR_SUCCESS ? r.obj.etag : NULL;
    }
    return rv;
}

apr_status_t hgs3_s3_put_mem(hgs3_s3_client *c, apr_pool_t *p, const char *key, const void *data,
                             apr_size_t len, const char *content_type, const char *sha256_hex,
                             const char **etag)
{
    s3_body body;

    if (etag) {
        *etag = NULL;
    }
    if (!valid_key(key) || (len && !data)) {
        return APR_EINVAL;
    }
    if (!sha256_hex && !(sha256_hex = hgs3_sha256_hex(p, len ? data : "", len))) {
        return HGS3_ECRYPTO;
    }
    memset(&body, 0, sizeof(body));
    body.mem = len ? data : "";
    body.len = (apr_off_t)len;
    return put_body(c, p, key, &body, content_type, sha256_hex, etag);
}

/* The start both file uploads share: *etag cleared, the key checked, and
 * path (a regular file) opened for reading, with its size, in a new subpool
 * *tmp of p that the caller destroys. On failure nothing is left open and
 * *tmp, *f and *size are cleared. */
static apr_status_t file_upload_open(apr_pool_t **tmp, apr_file_t **f, apr_off_t *size,
                                     apr_pool_t *p, const char *key, const char *path,
                                     const char **etag)
{
    apr_finfo_t fi;
    apr_status_t rv;

    *tmp = NULL;
    *f = NULL;
    *size = 0;
    if (etag) {
        *etag = NULL;
    }
    if (!valid_key(key)) {
        rv = APR_EINVAL;
        goto leave;
    }
    if ((rv = apr_pool_create(tmp, p)) != APR_SUCCESS) {
        *tmp = NULL;
        goto leave;
    }
    rv = apr_file_open(f, path, APR_FOPEN_READ | APR_FOPEN_BINARY | APR_FOPEN_LARGEFILE,
                       APR_OS_DEFAULT, *tmp);
    if (rv != APR_SUCCESS) {
        *f = NULL;
        goto leave;
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE | APR_FINFO_TYPE, *f);
    if (rv == APR_SUCCESS && fi.filetype != APR_REG) {
        rv = APR_EINVAL;
    }
    if (rv == APR_SUCCESS) {
        *size = fi.size;
    }
leave:
    if (rv != APR_SUCCESS) {
        if (*f) {
            apr_file_close(*f);
            *f = NULL;
        }
        if (*tmp) {
            apr_pool_destroy(*tmp);
            *tmp = NULL;
        }
    }
    return rv;
}

apr_status_t hgs3_s3_put_file(hgs3_s3_client *c, apr_pool_t *p, const char *key, const char *path,
                              const char *content_type, const char *sha256_hex, const char **etag)
{
    char hex[HGS3_SHA256_HEX_LEN + 1];
    apr_file_t *f = NULL;
    apr_pool_t *tmp = NULL;
    s3_body body;
    apr_off_t size;
    apr_status_t rv;

    if ((rv = file_upload_open(&tmp, &f, &size, p, key, path, etag)) != APR_SUCCESS) {
        goto leave;
    }
    if (!sha256_hex) {
        if ((rv = hash_range(hex, tmp, f, 0, size)) != APR_SUCCESS) {
            goto leave;
        }
        sha256_hex = hex;
    }
    memset(&body, 0, sizeof(body));
    body.file = f;
    body.len = size;
    rv = put_body(c, p, key, &body, content_type, sha256_hex, etag);
leave:
    if (f) {
        apr_file_close(f);
    }
    if (tmp) {
        apr_pool_destroy(tmp);
    }
    return rv;
}

apr_status_t hgs3_s3_multipart_create(const char **upload_id, hgs3_s3_client *c, apr_pool_t *p,
                                      const char *key, const char *content_type)
{
    static const hgs3_sigv4_pair q[1] = {{"uploads", NULL}};
    s3_body body;
    s3_req r;
    apr_status_t rv;

    *upload_id = NULL;
    if (!valid_key(key)) {
        return APR_EINVAL;
    }
    memset(&body, 0, sizeof(body));
    body.mem = "";
    req_init(&r, c, p, "POST", key);
    req_add_header(&r, "Content-Type", content_type);
    r.query = q;
    r.nquery = 1;
    r.body = &body;
    r.is_upload = 1;
    r.keep_body = 1;
    rv = perform(&r);
    if (rv == APR_SUCCESS) {
        rv = hgs3_s3xml_upload_id(upload_id, p, r.buf, r.buf_len);
    }
    return rv;
}

apr_status_t hgs3_s3_multipart_part(const char **etag, hgs3_s3_client *c, apr_pool_t *p,
                                    const char *key, const char *upload_id, int part_number,
                                    apr_file_t *f, apr_off_t offset, apr_off_t len,
                                    const char *sha256_hex)
{
    char hex[HGS3_SHA256_HEX_LEN + 1];
    hgs3_sigv4_pair q[2];
    s3_body body;
    s3_req r;
    apr_status_t rv;

    *etag = NULL;
    if (!valid_key(key) || !upload_id || !*upload_id || part_number < 1 ||
        part_number > HGS3_S3_MAX_PARTS || !f || offset < 0 || len < 0) {
        return APR_EINVAL;
    }
    if (!sha256_hex) {
        if ((rv = hash_range(hex, p, f, offset, len)) != APR_SUCCESS) {
            return rv;
        }
        sha256_hex = hex;
    }
    q[0].name = "partNumber";
    q[0].value = apr_itoa(p, part_number);
    q[1].name = "uploadId";
    q[1].value = upload_id;
    memset(&body, 0, sizeof(body));
    body.file = f;
    body.offset = offset;
    body.len = len;
    req_init(&r, c, p, "PUT", key);
    r.query = q;
    r.nquery = 2;
    r.payload_hash = sha256_hex;
    r.body = &body;
    r.is_upload = 1;
    rv = perform(&r);
    if (rv == APR_SUCCESS) {
        if (!r.obj.etag || !*r.obj.etag) {
            return HGS3_EPROTO;
        }
        *etag = r.obj.etag;
    }
    return rv;
}

apr_status_t hgs3_s3_multipart_complete(const char **etag, hgs3_s3_client *c, apr_pool_t *p,
                                        const char *key, const char *upload_id,
                                        const apr_array_header_t *etags)
{
    hgs3_sigv4_pair q[1];
    const char *xml, *hash;
    s3_body body;
    s3_req r;
    apr_status_t rv;

    if (etag) {
        *etag = NULL;
    }
    if (!valid_key(key) || !upload_id || !*upload_id || !etags || etags->nelts < 1 ||
        etags->nelts > HGS3_S3_MAX_PARTS) {
        return APR_EINVAL;
    }
    xml = hgs3_s3xml_complete_body(p, etags);
    if (!(hash = hgs3_sha256_hex(p, xml, strlen(xml)))) {
        return HGS3_ECRYPTO;
    }
    q[0].name = "uploadId";
    q[0].value = upload_id;
    memset(&body, 0, sizeof(body));
    body.mem = xml;
    body.len = (apr_off_t)strlen(xml);
    req_init(&r, c, p, "POST", key);
    req_add_header(&r, "Content-Type", "application/xml");
    r.query = q;
    r.nquery = 1;
    r.payload_hash = hash;
    r.body = &body;
    r.is_upload = 1;
    r.keep_body = 1;
    rv = perform(&r);
    if (rv == APR_SUCCESS) {
        const char *tag;
        rv = hgs3_s3xml_complete_result(&tag, p, r.buf, r.buf_len);
        if (rv == APR_SUCCESS && etag) {
            *etag = tag;
        }
    }
    return rv;
}

apr_status_t hgs3_s3_multipart_abort(hgs3_s3_client *c, apr_pool_t *p, const char *key,
                                     const char *upload_id)
{
    hgs3_sigv4_pair q[1];
    s3_req r;

    if (!valid_key(key) || !upload_id || !*upload_id) {
        return APR_EINVAL;
    }
    q[0].name = "uploadId";
    q[0].value = upload_id;
    req_init(&r, c, p, "DELETE", key);
    r.query = q;
    r.nquery = 1;
    r.is_upload = 1; /* cleanup of an upload: worth retrying when busy */
    r.cleanup = 1;
    return perform(&r);
}

/* Part size for size bytes: the configured one, raised (in whole MiB) when
 * the file would need more than HGS3_S3_MAX_PARTS parts. */
static apr_off_t part_size_for(const hgs3_s3_client *c, apr_off_t size)
{
    apr_off_t ps = c->conf.part_size, mib = 1024 * 1024;
    if ((size + ps - 1) / ps > HGS3_S3_MAX_PARTS) {
        ps = (size + HGS3_S3_MAX_PARTS - 1) / HGS3_S3_MAX_PARTS;
        ps = (ps + mib - 1) / mib * mib;
    }
    return ps;
}

apr_status_t hgs3_s3_put_file_multipart(hgs3_s3_client *c, apr_pool_t *p, const char *key,
                                        const char *path, const char *content_type,
                                        const char **etag)
{
    apr_array_header_t *etags;
    apr_pool_t *tmp = NULL, *ppool = NULL;
    const char *upload_id = NULL, *tag;
    apr_file_t *f = NULL;
    apr_off_t size, ps, off;
    apr_status_t rv;
    int part;

    if ((rv = file_upload_open(&tmp, &f, &size, p, key, path, etag)) != APR_SUCCESS) {
        goto leave;
    }
    ps = part_size_for(c, size);
    if ((rv = hgs3_s3_multipart_create(&upload_id, c, tmp, key, content_type)) != APR_SUCCESS) {
        goto leave;
    }
    etags = apr_array_make(tmp, (int)((size + ps - 1) / ps) + 1, sizeof(const char *));
    if ((rv = apr_pool_create(&ppool, tmp)) != APR_SUCCESS) {
        goto leave;
    }
    /* At least one part, so an empty file becomes an empty object. */
    for (part = 1, off = 0; off < size || part == 1; ++part, off += ps) {
        apr_off_t len = size - off < ps ? size - off : ps;
        apr_pool_clear(ppool);
        rv = hgs3_s3_multipart_part(&tag, c, ppool, key, upload_id, part, f, off, len, NULL);
        if (rv != APR_SUCCESS) {
            goto leave;
        }
        APR_ARRAY_PUSH(etags, const char *) = apr_pstrdup(tmp, tag);
    }
    rv = hgs3_s3_multipart_complete(&tag, c, tmp, key, upload_id, etags);
    if (rv == APR_SUCCESS && etag) {
        *etag = tag ? apr_pstrdup(p, tag) : NULL;
    }
leave:
    if (rv != APR_SUCCESS && upload_id) {
        /* Leave nothing behind; report the first error, not the abort's. */
        hgs3_s3_error saved = c->err;
        hgs3_s3_multipart_abort(c, tmp, key, upload_id);
        c->err = saved;
    }
    if (f) {
        apr_file_close(f);
    }
    if (tmp) {
        apr_pool_destroy(tmp);
    }
    return rv;
}

apr_status_t hgs3_s3_upload_file(hgs3_s3_client *c, apr_pool_t *p, const char *key,
                                 const char *path, const char *content_type, const char **etag)
{
    apr_finfo_t fi;
    apr_status_t rv;

    if (etag) {
        *etag = NULL;
    }
    if ((rv = apr_stat(&fi, path, APR_FINFO_SIZE, p)) != APR_SUCCESS) {
        return rv;
    }
    if (fi.size > c->conf.multipart_threshold) {
        return hgs3_s3_put_file_multipart(c, p, key, path, content_type, etag);
    }
    return hgs3_s3_put_file(c, p, key, path, content_type, NULL, etag);
}

apr_status_t hgs3_s3_get(hgs3_s3_client *c, apr_pool_t *p, const char *key,
                         hgs3_s3_headers_cb *on_headers, hgs3_s3_data_cb *on_data, void *baton)
{
    s3_req r;

    if (!valid_key(key)) {
        return APR_EINVAL;
    }
    req_init(&r, c, p, "GET", key);
    r.on_headers = on_headers;
    r.on_data = on_data;
    r.baton = baton;
    return perform(&r);
}

apr_status_t hgs3_s3_delete(hgs3_s3_client *c, apr_pool_t *p, const char *key)
{
    s3_req r;

    if (!valid_key(key)) {
        return APR_EINVAL;
    }
    req_init(&r, c, p, "DELETE", key);
    return perform(&r);
}
