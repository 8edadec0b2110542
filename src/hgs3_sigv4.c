/* hgs3_sigv4.c: AWS Signature Version 4 (header and query auth). */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_thread_mutex.h>

#include "hgs3_err.h"
#include "hgs3_crypto.h"
#include "hgs3_sigv4.h"

#define KEYCACHE_SLOTS 4

/* ---- encoding -------------------------------------------------------------- */

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

char *hgs3_sigv4_uri_encode(apr_pool_t *p, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    apr_size_t n = 0;
    const unsigned char *c;
    char *out, *o;

    for (c = (const unsigned char *)s; *c; ++c) {
        n += (is_unreserved(*c) || (keep_slash && *c == '/')) ? 1 : 3;
    }
    o = out = apr_palloc(p, n + 1);
    for (c = (const unsigned char *)s; *c; ++c) {
        if (is_unreserved(*c) || (keep_slash && *c == '/')) {
            *o++ = (char)*c;
        } else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 0x0f];
        }
    }
    *o = '\0';
    return out;
}

typedef struct enc_pair {
    const char *name;
    const char *value;
} enc_pair;

static int enc_pair_cmp(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : strcmp(x->value, y->value);
}

/* Encode the pairs and append them to arr (of enc_pair). */
static void encode_pairs(apr_array_header_t *arr, apr_pool_t *p, const hgs3_sigv4_pair *q, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        enc_pair *e = apr_array_push(arr);
        e->name = hgs3_sigv4_uri_encode(p, q[i].name, 0);
        e->value = q[i].value ? hgs3_sigv4_uri_encode(p, q[i].value, 0) : "";
    }
}

/* "a=1&b=2" of arr, in its current order. */
static const char *join_pairs(apr_pool_t *p, const apr_array_header_t *arr)
{
    struct iovec *vec;
    int i, nvec = 0;

    if (arr->nelts == 0) {
        return "";
    }
    vec = apr_palloc(p, sizeof(*vec) * (apr_size_t)arr->nelts * 4);
    for (i = 0; i < arr->nelts; ++i) {
        const enc_pair *e = &APR_ARRAY_IDX(arr, i, enc_pair);
        if (i) {
            vec[nvec].iov_base = (void *)"&";
            vec[nvec++].iov_len = 1;
        }
        vec[nvec].iov_base = (void *)e->name;
        vec[nvec++].iov_len = strlen(e->name);
        vec[nvec].iov_base = (void *)"=";
        vec[nvec++].iov_len = 1;
        vec[nvec].iov_base = (void *)e->value;
        vec[nvec++].iov_len = strlen(e->value);
    }
    return apr_pstrcatv(p, vec, (apr_size_t)nvec, NULL);
}

static const char *sorted_query(apr_pool_t *p, const apr_array_header_t *arr)
{
    apr_array_header_t *copy = apr_array_copy(p, arr);
    if (copy->nelts > 1) {
        qsort(copy->elts, (size_t)copy->nelts, sizeof(enc_pair), enc_pair_cmp);
    }
    return join_pairs(p, copy);
}

const char *hgs3_sigv4_canonical_query(apr_pool_t *p, const hgs3_sigv4_pair *q, int n)
{
    apr_array_header_t *arr = apr_array_make(p, n > 0 ? n : 1, sizeof(enc_pair));
    encode_pairs(arr, p, q, n);
    return sorted_query(p, arr);
}

/* ---- dates ----------------------------------------------------------------- */

void hgs3_sigv4_format_date(char *out, apr_time_t t)
{
    apr_time_exp_t tm;
    apr_time_exp_gmt(&tm, t);
    apr_snprintf(out, HGS3_SIGV4_DATE_LEN + 1, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0, i;
    for (i = 0; i < n; ++i) {
        if (!apr_isdigit(s[i])) {
            return 0;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

apr_status_t hgs3_sigv4_parse_date(apr_time_t *t, const char *s)
{
    apr_time_exp_t tm;
    int y, mo, d, h, mi, sec;

    *t = 0;
    if (!s || strlen(s) != HGS3_SIGV4_DATE_LEN || s[8] != 'T' || s[15] != 'Z' ||
        !digits(s, 4, &y) || !digits(s + 4, 2, &mo) || !digits(s + 6, 2, &d) ||
        !digits(s + 9, 2, &h) || !digits(s + 11, 2, &mi) || !digits(s + 13, 2, &sec)) {
        return APR_EINVAL;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return APR_EINVAL;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return apr_time_exp_gmt_get(t, &tm);
}

/* ---- signing keys ---------------------------------------------------------- */

apr_status_t hgs3_sigv4_derive_key(unsigned char out[32], const char *secret, const char *date8,
                                   const char *region, const char *service)
{
    unsigned char k1[HGS3_SHA256_LEN], k2[HGS3_SHA256_LEN];
    apr_size_t slen = strlen(secret);
    char *ksecret = malloc(slen + 5);
    apr_status_t rv;

    if (!ksecret) {
        return APR_ENOMEM;
    }
    memcpy(ksecret, "AWS4", 4);
    memcpy(ksecret + 4, secret, slen + 1);
    rv = hgs3_hmac_sha256(ksecret, slen + 4, date8, strlen(date8), k1);
    if (rv == APR_SUCCESS) {
        rv = hgs3_hmac_sha256(k1, sizeof(k1), region, strlen(region), k2);
    }
    if (rv == APR_SUCCESS) {
        rv = hgs3_hmac_sha256(k2, sizeof(k2), service, strlen(service), k1);
    }
    if (rv == APR_SUCCESS) {
        rv = hgs3_hmac_sha256(k1, sizeof(k1), "aws4_request", 12, out);
    }
    /* Do not leave key material around. */
    memset(ksecret, 0, slen + 4);
    free(ksecret);
    memset(k1, 0, sizeof(k1));
    memset(k2, 0, sizeof(k2));
    return rv;
}

typedef struct keycache_slot {
    int used;
    char date8[9];
    char region[HGS3_SIGV4_MAX_SCOPE_PART + 1];
    char service[HGS3_SIGV4_MAX_SCOPE_PART + 1];
    unsigned char creds_fp[HGS3_SHA256_LEN]; /* SHA-256(access key NUL secret) */
    unsigned char key[HGS3_SHA256_LEN];
} keycache_slot;

struct hgs3_sigv4_keycache {
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
#endif
    keycache_slot slots[KEYCACHE_SLOTS];
    int next;
    apr_uint64_t derivations;
};

static apr_status_t keycache_wipe(void *data)
{
    hgs3_sigv4_keycache *c = data;
    memset(c->slots, 0, sizeof(c->slots));
    return APR_SUCCESS;
}

apr_status_t hgs3_sigv4_keycache_create(hgs3_sigv4_keycache **pcache, apr_pool_t *p)
{
    hgs3_sigv4_keycache *c = apr_pcalloc(p, sizeof(*c));
    apr_status_t rv = APR_SUCCESS;

    *pcache = NULL;
#if APR_HAS_THREADS
    rv = apr_thread_mutex_create(&c->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
#endif
    apr_pool_cleanup_register(p, c, keycache_wipe, apr_pool_cleanup_null);
    *pcache = c;
#if APR_HAS_THREADS
leave:
#endif
    return rv;
}

apr_uint64_t hgs3_sigv4_keycache_derivations(hgs3_sigv4_keycache *c)
{
    apr_uint64_t n;
#if APR_HAS_THREADS
    apr_thread_mutex_lock(c->mutex);
#endif
    n = c->derivations;
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(c->mutex);
#endif
    return n;
}

static apr_status_t creds_fingerprint(unsigned char fp[HGS3_SHA256_LEN], const hgs3_creds *creds)
{
    apr_size_t alen = strlen(creds->access_key), slen = strlen(creds->secret_key);
    char *buf = malloc(alen + slen + 1);
    apr_status_t rv;

    if (!buf) {
        return APR_ENOMEM;
    }
    memcpy(buf, creds->access_key, alen + 1); /* the NUL separates the two */
    memcpy(buf + alen + 1, creds->secret_key, slen);
    rv = hgs3_sha256(buf, alen + slen + 1, fp);
    memset(buf, 0, alen + slen + 1);
    free(buf);
    return rv;
}

/* The signing key for the scope, from the cache when possible. */
static apr_status_t signing_key(unsigned char key[HGS3_SHA256_LEN], hgs3_sigv4_keycache *c,
                                const hgs3_creds *creds, const char *date8, const char *region,
                                const char *service)
{
    unsigned char fp[HGS3_SHA256_LEN];
    apr_status_t rv;
    int i;

    if (!c) {
        return hgs3_sigv4_derive_key(key, creds->secret_key, date8, region, service);
    }
    if ((rv = creds_fingerprint(fp, creds)) != APR_SUCCESS) {
        return rv;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_lock(c->mutex);
#endif
    for (i = 0; i < KEYCACHE_SLOTS; ++i) {
        keycache_slot *s = &c->slots[i];
        if (s->used && !strcmp(s->date8, date8) && !strcmp(s->region, region) &&
            !strcmp(s->service, service) && hgs3_memeq_ct(s->creds_fp, fp, sizeof(fp))) {
            memcpy(key, s->key, HGS3_SHA256_LEN);
            goto leave;
        }
    }
    rv = hgs3_sigv4_derive_key(key, creds->secret_key, date8, region, service);
    if (rv == APR_SUCCESS) {
        keycache_slot *s = &c->slots[c->next];
        c->next = (c->next + 1) % KEYCACHE_SLOTS;
        c->derivations++;
        s->used = 1;
        apr_cpystrn(s->date8, date8, sizeof(s->date8));
        apr_cpystrn(s->region, region, sizeof(s->region));
        apr_cpystrn(s->service, service, sizeof(s->service));
        memcpy(s->creds_fp, fp, sizeof(fp));
        memcpy(s->key, key, HGS3_SHA256_LEN);
    }
leave:
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(c->mutex);
#endif
    return rv;
}

/* ---- canonical request ------------------------------------------------------- */

typedef struct canon_header {
    const char *name;  /* lowercase */
    const char *value; /* trimmed, spaces collapsed */
    int order;
} canon_header;

static int canon_header_cmp(const void *a, const void *b)
{
    const canon_header *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x->order - y->order);
}

static int valid_header_name(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; ++s) {
        if (*s <= ' ' || *s == ':' || *s >= 127) {
            return 0;
        }
    }
    return 1;
}

/* Trimmed value with runs of blanks collapsed; NULL if it holds CR or LF. */
static const char *trim_value(apr_pool_t *p, const char *v)
{
    char *out = apr_palloc(p, strlen(v) + 1), *o = out;
    int blank = 0;

    while (*v == ' ' || *v == '\t') {
        ++v;
    }
    for (; *v; ++v) {
        if (*v == '\r' || *v == '\n') {
            return NULL;
        }
        if (*v == ' ' || *v == '\t') {
            blank = 1;
            continue;
        }
        if (blank) {
            *o++ = ' ';
            blank = 0;
        }
        *o++ = *v;
    }
    *o = '\0';
    return out;
}

static apr_status_t add_header(apr_array_header_t *hs, apr_pool_t *p, const char *name,
                               const char *value)
{
    canon_header *h;
    const char *v;
    char *lname, *c;

    if (!name || !value || !valid_header_name(name) || !(v = trim_value(p, value))) {
        return HGS3_EMALFORMED;
    }
    h = apr_array_push(hs);
    lname = apr_pstrdup(p, name);
    for (c = lname; *c; ++c) {
        *c = (char)apr_tolower(*c);
    }
    h->name = lname;
    h->value = v;
    h->order = hs->nelts;
    return APR_SUCCESS;
}

/* Headers the signer adds itself, which the request may not carry. */
static int is_reserved_header(const char *name)
{
    return !strcasecmp(name, "host") || !strcasecmp(name, "authorization") ||
           !strcasecmp(name, "x-amz-date") || !strcasecmp(name, "x-amz-content-sha256") ||
           !strcasecmp(name, "x-amz-security-token");
}

/* Sort and merge hs; canonical header block and signed header list. */
static void canonical_headers(apr_pool_t *p, apr_array_header_t *hs, const char **pblock,
                              const char **psigned)
{
    canon_header *h = (canon_header *)hs->elts;
    char *block = "", *signd = "";
    int i, j;

    qsort(h, (size_t)hs->nelts, sizeof(*h), canon_header_cmp);
    for (i = 0; i < hs->nelts; i = j) {
        const char *v = h[i].value;
        for (j = i + 1; j < hs->nelts && !strcmp(h[j].name, h[i].name); ++j) {
            v = apr_pstrcat(p, v, ",", h[j].value, NULL);
        }
        block = apr_pstrcat(p, block, h[i].name, ":", v, "\n", NULL);
        signd = apr_pstrcat(p, signd, i ? ";" : "", h[i].name, NULL);
    }
    *pblock = block;
    *psigned = signd;
}

static int valid_scope_part(const char *s)
{
    apr_size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > HGS3_SIGV4_MAX_SCOPE_PART) {
        return 0;
    }
    for (; *s; ++s) {
        if (!apr_isalnum(*s) && *s != '-' && *s != '_' && *s != '.') {
            return 0;
        }
    }
    return 1;
}

static int valid_payload_hash(const char *h)
{
    int i;
    if (!strcmp(h, HGS3_SIGV4_UNSIGNED)) {
        return 1;
    }
    if (strlen(h) != HGS3_SHA256_HEX_LEN) {
        return 0;
    }
    for (i = 0; i < HGS3_SHA256_HEX_LEN; ++i) {
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static apr_status_t check_inputs(const hgs3_creds *creds, const char *region, const char *service,
                                 const hgs3_sigv4_request *req)
{
    int i;
    if (!creds || !creds->access_key || !*creds->access_key || !creds->secret_key ||
        !*creds->secret_key) {
        return HGS3_ECONFIG;
    }
    if (strchr(creds->access_key, '/') || strpbrk(creds->access_key, "\r\n ,") ||
        (creds->session_token && strpbrk(creds->session_token, "\r\n"))) {
        return HGS3_ECONFIG;
    }
    if (!valid_scope_part(region) || !valid_scope_part(service)) {
        return HGS3_ECONFIG;
    }
    if (!req || !req->method || !*req->method || !req->host || !*req->host ||
        strpbrk(req->host, "\r\n /") || !req->path || req->path[0] != '/' ||
        (req->nquery && !req->query) || (req->nheaders && !req->headers)) {
        return HGS3_EMALFORMED;
    }
    for (i = 0; i < req->nquery; ++i) {
        if (!req->query[i].name || !*req->query[i].name) {
            return HGS3_EMALFORMED;
        }
    }
    for (i = 0; i < req->nheaders; ++i) {
        if (!req->headers[i].name || is_reserved_header(req->headers[i].name)) {
            return HGS3_EMALFORMED;
        }
    }
    if (req->payload_hash && !valid_payload_hash(req->payload_hash)) {
        return HGS3_EMALFORMED;
    }
    return APR_SUCCESS;
}

static const char *session_token(const hgs3_creds *creds)
{
    return (creds->session_token && *creds->session_token) ? creds->session_token : NULL;
}

/* Common tail: canonical request -> string to sign -> signature. */
static apr_status_t finish(hgs3_sigv4_result *res, apr_pool_t *p, const hgs3_creds *creds,
                           const char *date8, const char *region, const char *service,
                           const char *method, const char *header_block, hgs3_sigv4_keycache *cache)
{
    unsigned char key[HGS3_SHA256_LEN], sig[HGS3_SHA256_LEN];
    char hex[HGS3_SHA256_HEX_LEN + 1];
    const char *creq_hash;
    apr_status_t rv;

    res->canonical_request =
        apr_pstrcat(p, method, "\n", res->canonical_uri, "\n", res->canonical_query, "\n",
                    header_block, "\n", res->signed_headers, "\n", res->payload_hash, NULL);
    creq_hash = hgs3_sha256_hex(p, res->canonical_request, strlen(res->canonical_request));
    if (!creq_hash) {
        return HGS3_ECRYPTO;
    }
    res->string_to_sign = apr_pstrcat(p, HGS3_SIGV4_ALGORITHM "\n", res->amz_date, "\n", res->scope,
                                      "\n", creq_hash, NULL);
    rv = signing_key(key, cache, creds, date8, region, service);
    if (rv == APR_SUCCESS) {
        rv = hgs3_hmac_sha256(key, sizeof(key), res->string_to_sign, strlen(res->string_to_sign),
                              sig);
    }
    memset(key, 0, sizeof(key));
    if (rv != APR_SUCCESS) {
        return rv;
    }
    hgs3_hex(hex, sig, sizeof(sig));
    res->signature = apr_pstrdup(p, hex);
    return APR_SUCCESS;
}

/* Shared start of both modes: dates, scope, URI, request headers. */
static apr_status_t begin(hgs3_sigv4_result **pres, apr_array_header_t **phs, char *date8,
                          apr_pool_t *p, const hgs3_creds *creds, const char *region,
                          const char *service, apr_time_t now, const hgs3_sigv4_request *req)
{
    hgs3_sigv4_result *res;
    apr_array_header_t *hs;
    char amz_date[HGS3_SIGV4_DATE_LEN + 1];
    apr_status_t rv;
    int i;

    *pres = NULL;
    *phs = NULL;
    if ((rv = check_inputs(creds, region, service, req)) != APR_SUCCESS) {
        return rv;
    }
    res = apr_pcalloc(p, sizeof(*res));
    hgs3_sigv4_format_date(amz_date, now);
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';
    res->amz_date = apr_pstrdup(p, amz_date);
    res->scope = apr_pstrcat(p, date8, "/", region, "/", service, "/aws4_request", NULL);
    res->canonical_uri = hgs3_sigv4_uri_encode(p, req->path, 1);

    hs = apr_array_make(p, req->nheaders + 4, sizeof(canon_header));
    if ((rv = add_header(hs, p, "host", req->host)) != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < req->nheaders; ++i) {
        rv = add_header(hs, p, req->headers[i].name, req->headers[i].value);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    *pres = res;
    *phs = hs;
    return APR_SUCCESS;
}

static void push_pair(apr_array_header_t *arr, const char *name, const char *value)
{
    hgs3_sigv4_pair *pr = apr_array_push(arr);
    pr->name = name;
    pr->value = value;
}

apr_status_t hgs3_sigv4_sign_header(hgs3_sigv4_result **pres, apr_pool_t *p,
                                    const hgs3_creds *creds, const char *region,
                                    const char *service, apr_time_t now,
                                    const hgs3_sigv4_request *req, hgs3_sigv4_keycache *cache)
{
    hgs3_sigv4_result *res = NULL;
    apr_array_header_t *hs, *qarr;
    const char *block, *token;
    char date8[9];
    apr_status_t rv;

    *pres = NULL;
    if ((rv = begin(&res, &hs, date8, p, creds, region, service, now, req)) != APR_SUCCESS) {
        goto leave;
    }
    token = session_token(creds);
    res->payload_hash = req->payload_hash ? req->payload_hash : HGS3_SIGV4_EMPTY_SHA256;

    qarr = apr_array_make(p, req->nquery > 0 ? req->nquery : 1, sizeof(enc_pair));
    encode_pairs(qarr, p, req->query, req->nquery);
    res->canonical_query = sorted_query(p, qarr);

    res->headers = apr_array_make(p, 4, sizeof(hgs3_sigv4_pair));
    push_pair(res->headers, "x-amz-date", res->amz_date);
    if (!(req->flags & HGS3_SIGV4_NO_CONTENT_SHA256)) {
        push_pair(res->headers, "x-amz-content-sha256", res->payload_hash);
    }
    if (token) {
        push_pair(res->headers, "x-amz-security-token", token);
    }
    {
        int i;
        for (i = 0; i < res->headers->nelts; ++i) {
            const hgs3_sigv4_pair *pr = &APR_ARRAY_IDX(res->headers, i, hgs3_sigv4_pair);
            if ((rv = add_header(hs, p, pr->name, pr->value)) != APR_SUCCESS) {
                goto leave;
            }
        }
    }
    canonical_headers(p, hs, &block, &res->signed_headers);
    rv = finish(res, p, creds, date8, region, service, req->method, block, cache);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    res->authorization =
        apr_pstrcat(p, HGS3_SIGV4_ALGORITHM " Credential=", creds->access_key, "/", res->scope,
                    ", SignedHeaders=", res->signed_headers, ", Signature=", res->signature, NULL);
    push_pair(res->headers, "Authorization", res->authorization);
    *pres = res;
leave:
    return rv;
}

/* The X-Amz-* query parameters of a presigned URL (all but the signature),
 * encoded. */
static apr_array_header_t *presign_params(apr_pool_t *p, const hgs3_sigv4_result *res,
                                          const hgs3_creds *creds, int expires)
{
    const char *token = session_token(creds);
    hgs3_sigv4_pair ap[6];
    apr_array_header_t *auth;
    int n = 0;

    ap[n].name = "X-Amz-Algorithm";
    ap[n++].value = HGS3_SIGV4_ALGORITHM;
    ap[n].name = "X-Amz-Credential";
    ap[n++].value = apr_pstrcat(p, creds->access_key, "/", res->scope, NULL);
    ap[n].name = "X-Amz-Date";
    ap[n++].value = res->amz_date;
    ap[n].name = "X-Amz-Expires";
    ap[n++].value = apr_itoa(p, expires);
    ap[n].name = "X-Amz-SignedHeaders";
    ap[n++].value = res->signed_headers;
    if (token) {
        ap[n].name = "X-Amz-Security-Token";
        ap[n++].value = token;
    }
    auth = apr_array_make(p, n, sizeof(enc_pair));
    encode_pairs(auth, p, ap, n);
    return auth;
}

apr_status_t hgs3_sigv4_presign(hgs3_sigv4_result **pres, apr_pool_t *p, const hgs3_creds *creds,
                                const char *region, const char *service, apr_time_t now,
                                int expires, const hgs3_sigv4_request *req,
                                hgs3_sigv4_keycache *cache)
{
    hgs3_sigv4_result *res = NULL;
    apr_array_header_t *hs, *own, *auth, *all;
    const char *block, *signed_headers;
    char date8[9];
    apr_status_t rv;

    *pres = NULL;
    if (expires < 1 || expires > HGS3_SIGV4_MAX_EXPIRES) {
        rv = APR_EINVAL;
        goto leave;
    }
    if ((rv = begin(&res, &hs, date8, p, creds, region, service, now, req)) != APR_SUCCESS) {
        goto leave;
    }
    res->payload_hash = req->payload_hash ? req->payload_hash : HGS3_SIGV4_UNSIGNED;
    /* The signed headers must be known before the query is built. */
    canonical_headers(p, hs, &block, &signed_headers);
    res->signed_headers = signed_headers;

    own = apr_array_make(p, req->nquery > 0 ? req->nquery : 1, sizeof(enc_pair));
    encode_pairs(own, p, req->query, req->nquery);
    auth = presign_params(p, res, creds, expires);
    all = apr_array_append(p, own, auth);
    res->canonical_query = sorted_query(p, all);

    rv = finish(res, p, creds, date8, region, service, req->method, block, cache);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    {
        enc_pair *e = apr_array_push(all);
        e->name = "X-Amz-Signature";
        e->value = res->signature;
    }
    res->query_string = join_pairs(p, all);
    *pres = res;
leave:
    return rv;
}
