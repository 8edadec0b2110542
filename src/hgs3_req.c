/* hgs3_req.c: normalization of an hg wire-protocol v1 request.
 *
 * The rule throughout: whatever could make hgweb read two requests
 * differently must give two different representations. Where matching
 * hgweb's reading exactly would be subtle (Python's parse_qsl, header
 * merging, numbering gaps), the request is refused instead: hg never sends
 * such requests, and a refused request is simply answered by hgweb. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "hgs3_err.h"
#include "hgs3_req.h"

#define CMD_MAX_LEN 64

void hgs3_req_limits_init(hgs3_req_limits *lim)
{
    lim->max_query = 64 * 1024;
    lim->max_query_args = 256;
    lim->max_header_count = 1000;
    lim->max_header_bytes = 256 * 1024;
    lim->max_header_value = 8190;
    lim->max_hgargs = 1000;
    lim->max_hgproto = 16;
    lim->max_proto = 8 * 1024;
    lim->max_post = 1024 * 1024;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

apr_status_t hgs3_req_unescape(char **pout, apr_size_t *plen, apr_pool_t *p, const char *s,
                               apr_size_t len, int plus_is_space)
{
    char *out = apr_palloc(p, len + 1);
    apr_size_t i, n = 0;
    apr_status_t rv = APR_SUCCESS;

    *pout = NULL;
    *plen = 0;
    for (i = 0; i < len; ++i) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len) {
                rv = HGS3_EMALFORMED;
                goto leave;
            }
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) {
                rv = HGS3_EMALFORMED;
                goto leave;
            }
            out[n++] = (char)((hi << 4) | lo);
            i += 2;
        } else if (s[i] == '+' && plus_is_space) {
            out[n++] = ' ';
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    *pout = out;
    *plen = n;
leave:
    return rv;
}

/* ---- query string ------------------------------------------------------ */

typedef struct sort_arg {
    hgs3_req_arg arg;
    apr_size_t idx; /* position in the query: keeps the sort stable */
} sort_arg;

static int cmp_sort_arg(const void *a, const void *b)
{
    const sort_arg *x = a, *y = b;
    apr_size_t n = x->arg.name_len < y->arg.name_len ? x->arg.name_len : y->arg.name_len;
    int c = n ? memcmp(x->arg.name, y->arg.name, n) : 0;

    if (c) {
        return c;
    }
    if (x->arg.name_len != y->arg.name_len) {
        return x->arg.name_len < y->arg.name_len ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : (x->idx > y->idx ? 1 : 0);
}

static int valid_cmd(const char *s, apr_size_t len)
{
    apr_size_t i;
    if (len == 0 || len > CMD_MAX_LEN) {
        return 0;
    }
    for (i = 0; i < len; ++i) {
        if (!apr_isalnum(s[i]) && s[i] != '_' && s[i] != '-') {
            return 0;
        }
    }
    return 1;
}

static int is_name(const hgs3_req_arg *a, const char *name)
{
    return a->name_len == strlen(name) && memcmp(a->name, name, a->name_len) == 0;
}

/* Raw bytes allowed in the query: visible ASCII. ';' is refused because
 * Python before 3.9.2 also split on it; hg percent-encodes it. */
static int query_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != ';';
}

/* The query's size and raw bytes are within bounds. */
static apr_status_t check_query(const char *query, apr_size_t qlen, const hgs3_req_limits *lim)
{
    apr_size_t i;

    if (qlen > lim->max_query) {
        return HGS3_ETOOBIG;
    }
    for (i = 0; i < qlen; ++i) {
        if (!query_char_ok((unsigned char)query[i])) {
            return HGS3_EMALFORMED;
        }
    }
    return APR_SUCCESS;
}

/* Decodes one "name[=value]" piece [s, end) onto args. */
static apr_status_t push_arg(apr_array_header_t *args, apr_pool_t *p, const char *s,
                             const char *end)
{
    const char *eq = memchr(s, '=', (apr_size_t)(end - s));
    char *name, *value = "";
    apr_size_t nlen, vlen = 0;
    sort_arg *sa;
    apr_status_t rv;

    rv = hgs3_req_unescape(&name, &nlen, p, s, (apr_size_t)((eq ? eq : end) - s), 1);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    if (eq) {
        rv = hgs3_req_unescape(&value, &vlen, p, eq + 1, (apr_size_t)(end - eq - 1), 1);
        if (rv != APR_SUCCESS) {
            goto leave;
        }
    }
    sa = apr_array_push(args);
    sa->arg.name = name;
    sa->arg.name_len = nlen;
    sa->arg.value = value;
    sa->arg.value_len = vlen;
    sa->idx = (apr_size_t)args->nelts;
leave:
    return rv;
}

/* Split and decode the query as Python's parse_qsl(keep_blank_values=True)
 * does: '&' separated, empty pieces skipped, a piece without '=' is a name
 * with an empty value, '+' is a space, %XX a byte. *pargs holds sort_arg. */
static apr_status_t split_query(apr_array_header_t **pargs, apr_pool_t *p, const char *query,
                                apr_size_t qlen, const hgs3_req_limits *lim)
{
    apr_array_header_t *tmp = apr_array_make(p, 8, sizeof(sort_arg));
    const char *s, *end;
    apr_status_t rv = APR_SUCCESS;

    *pargs = NULL;
    for (s = query; s < query + qlen; s = end + 1) {
        end = memchr(s, '&', (apr_size_t)(query + qlen - s));
        if (!end) {
            end = query + qlen;
        }
        if (end == s) {
            continue;
        }
        if ((apr_size_t)tmp->nelts >= lim->max_query_args) {
            rv = HGS3_ETOOBIG;
            goto leave;
        }
        if ((rv = push_arg(tmp, p, s, end)) != APR_SUCCESS) {
            goto leave;
        }
    }
    *pargs = tmp;
leave:
    return rv;
}

/* The one valid cmd among the split arguments. A "static" argument makes
 * hgwebdir serve a static file instead of the command: APR_ENOTIMPL. */
static apr_status_t find_cmd(const char **pcmd, const apr_array_header_t *tmp)
{
    const char *cmd = NULL;
    apr_size_t i, ncmd = 0;
    apr_status_t rv = APR_SUCCESS;

    *pcmd = NULL;
    for (i = 0; i < (apr_size_t)tmp->nelts; ++i) {
        const hgs3_req_arg *a = &APR_ARRAY_IDX(tmp, i, sort_arg).arg;
        if (is_name(a, "cmd")) {
            ++ncmd;
            cmd = a->value;
            if (!valid_cmd(a->value, a->value_len)) {
                rv = HGS3_EMALFORMED;
                goto leave;
            }
        } else if (is_name(a, "static")) {
            rv = APR_ENOTIMPL;
            goto leave;
        }
    }
    if (ncmd != 1) {
        rv = ncmd ? HGS3_EMALFORMED : APR_ENOENT;
        goto leave;
    }
    *pcmd = cmd;
leave:
    return rv;
}

/* The arguments other than cmd, sorted by name (stable). */
static apr_array_header_t *sorted_args(apr_pool_t *p, apr_array_header_t *tmp)
{
    apr_array_header_t *args = apr_array_make(p, tmp->nelts, sizeof(hgs3_req_arg));
    int i;

    if (tmp->nelts > 1) {
        qsort(tmp->elts, (size_t)tmp->nelts, sizeof(sort_arg), cmp_sort_arg);
    }
    for (i = 0; i < tmp->nelts; ++i) {
        const hgs3_req_arg *a = &APR_ARRAY_IDX(tmp, i, sort_arg).arg;
        if (!is_name(a, "cmd")) {
            APR_ARRAY_PUSH(args, hgs3_req_arg) = *a;
        }
    }
    return args;
}

/* The query's command and (when pargs) its other arguments, sorted. */
static apr_status_t parse_query(const char **pcmd, apr_array_header_t **pargs, apr_pool_t *p,
                                const char *query, const hgs3_req_limits *lim)
{
    apr_array_header_t *tmp = NULL;
    const char *cmd = NULL;
    apr_size_t qlen;
    apr_status_t rv;

    *pcmd = NULL;
    if (pargs) {
        *pargs = NULL;
    }
    if (!query || !*query) {
        rv = APR_ENOENT;
        goto leave;
    }
    qlen = strlen(query);
    if ((rv = check_query(query, qlen, lim)) != APR_SUCCESS ||
        (rv = split_query(&tmp, p, query, qlen, lim)) != APR_SUCCESS ||
        (rv = find_cmd(&cmd, tmp)) != APR_SUCCESS) {
        goto leave;
    }
    if (pargs) {
        *pargs = sorted_args(p, tmp);
    }
    *pcmd = cmd;
leave:
    return rv;
}

apr_status_t hgs3_req_start(hgs3_req **preq, apr_pool_t *p, const char *query,
                            const hgs3_req_limits *lim)
{
    hgs3_req *req = apr_pcalloc(p, sizeof(*req));
    apr_status_t rv;

    *preq = NULL;
    if (!lim) {
        rv = APR_EINVAL;
        goto leave;
    }
    if ((rv = parse_query(&req->cmd, &req->args, p, query, lim)) != APR_SUCCESS) {
        goto leave;
    }
    *preq = req;
leave:
    return rv;
}

apr_status_t hgs3_req_command(const char **pcmd, apr_pool_t *p, const char *query,
                              const hgs3_req_limits *lim)
{
    hgs3_req *req = NULL;
    apr_status_t rv = hgs3_req_start(&req, p, query, lim);

    *pcmd = req ? req->cmd : NULL;
    return rv;
}

/* ---- headers ----------------------------------------------------------- */

typedef enum {
    HDR_OTHER = 0,
    HDR_HGARG,
    HDR_HGPROTO,
    HDR_POSTLEN,
    HDR_CLEN,
    HDR_TE,
} hdr_kind;

/* If name starts with prefix (lowercase, '-' separated), compared
 * case-insensitively and with '_' standing for '-', return what follows.
 * *uscore is set when an '_' was used: CGI and mod_wsgi would map such a
 * name onto the same variable as the '-' form, or drop it. */
static const char *match_prefix(const char *name, const char *prefix, int *uscore)
{
    for (; *prefix; ++prefix, ++name) {
        char c = (char)apr_tolower(*name);
        if (c == '_' && *prefix == '-') {
            *uscore = 1;
        } else if (c != *prefix) {
            return NULL;
        }
    }
    return name;
}

static hdr_kind classify(const char *name, const char **psuffix, int *uscore)
{
    const char *rest;

    *uscore = 0;
    *psuffix = NULL;
    if ((rest = match_prefix(name, "x-hgargs-post", uscore)) && !*rest) {
        return HDR_POSTLEN;
    }
    *uscore = 0;
    if ((rest = match_prefix(name, "x-hgarg-", uscore))) {
        *psuffix = rest;
        return HDR_HGARG;
    }
    *uscore = 0;
    if ((rest = match_prefix(name, "x-hgproto-", uscore))) {
        *psuffix = rest;
        return HDR_HGPROTO;
    }
    *uscore = 0;
    if ((rest = match_prefix(name, "content-length", uscore)) && !*rest) {
        return HDR_CLEN;
    }
    *uscore = 0;
    if ((rest = match_prefix(name, "transfer-encoding", uscore)) && !*rest) {
        return HDR_TE;
    }
    *uscore = 0;
    return HDR_OTHER;
}

/* A strictly positive decimal number without sign, blanks or leading zero.
 * Returns HGS3_EMALFORMED for anything else, HGS3_ETOOBIG above max. */
static apr_status_t parse_count(const char *s, apr_uint64_t max, apr_uint64_t *pn)
{
    apr_uint64_t n = 0;
    apr_size_t i, len = strlen(s);

    *pn = 0;
    if (len == 0 || s[0] == '0') {
        return HGS3_EMALFORMED;
    }
    for (i = 0; i < len; ++i) {
        if (s[i] < '0' || s[i] > '9') {
            return HGS3_EMALFORMED;
        }
    }
    if (len > 15) {
        return HGS3_ETOOBIG;
    }
    for (i = 0; i < len; ++i) {
        n = n * 10 + (apr_uint64_t)(s[i] - '0');
    }
    if (n > max) {
        return HGS3_ETOOBIG;
    }
    *pn = n;
    return APR_SUCCESS;
}

/* Header values that go into the key: bounded, no control characters
 * (CR, LF, TAB, DEL and the rest; NUL cannot occur in a C string). */
static apr_status_t check_bytes(const char *v, apr_size_t len, apr_size_t max)
{
    apr_size_t i;
    if (len > max) {
        return HGS3_ETOOBIG;
    }
    for (i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f) {
            return HGS3_EMALFORMED;
        }
    }
    return APR_SUCCESS;
}

/* X-HgArg-1..N or X-HgProto-1..N: every number once, no gap.
 *
 * The slots are sized to the highest number seen so far, not to the limit:
 * zeroing max_hgargs (1000) slots twice per request cost more than the rest
 * of the parse. They grow (at least doubling, never past max) when a higher
 * number arrives; the checks are the same whatever the size. */
typedef struct numbered {
    apr_pool_t *pool;
    const char **slot; /* slot[1..cap] */
    apr_size_t *len;
    int cap;
    int max;
    int high;
} numbered;

#define NUMBERED_MIN_SLOTS 8

static void numbered_init(numbered *nb, apr_pool_t *p, int max)
{
    nb->pool = p;
    nb->slot = NULL;
    nb->len = NULL;
    nb->cap = 0;
    nb->max = max > 0 ? max : 0;
    nb->high = 0;
}

/* Make slot[n] exist; n <= nb->max. */
static void numbered_grow(numbered *nb, int n)
{
    int cap = nb->cap * 2;
    const char **slot;
    apr_size_t *len;

    if (cap < NUMBERED_MIN_SLOTS) {
        cap = NUMBERED_MIN_SLOTS;
    }
    if (cap < n) {
        cap = n;
    }
    if (cap > nb->max) {
        cap = nb->max;
    }
    slot = apr_pcalloc(nb->pool, sizeof(*slot) * ((apr_size_t)cap + 1));
    len = apr_pcalloc(nb->pool, sizeof(*len) * ((apr_size_t)cap + 1));
    if (nb->cap) {
        memcpy(slot, nb->slot, sizeof(*slot) * ((apr_size_t)nb->cap + 1));
        memcpy(len, nb->len, sizeof(*len) * ((apr_size_t)nb->cap + 1));
    }
    nb->slot = slot;
    nb->len = len;
    nb->cap = cap;
}

static apr_status_t numbered_add(numbered *nb, const char *suffix, const char *value,
                                 apr_size_t max_value)
{
    apr_uint64_t n;
    apr_size_t vlen = strlen(value);
    apr_status_t rv;

    if ((rv = parse_count(suffix, (apr_uint64_t)nb->max, &n)) != APR_SUCCESS) {
        return rv;
    }
    if ((int)n > nb->cap) {
        numbered_grow(nb, (int)n);
    }
    if (nb->slot[n]) {
        return HGS3_EMALFORMED;
    }
    if ((rv = check_bytes(value, vlen, max_value)) != APR_SUCCESS) {
        return rv;
    }
    nb->slot[n] = value;
    nb->len[n] = vlen;
    if ((int)n > nb->high) {
        nb->high = (int)n;
    }
    return APR_SUCCESS;
}

static apr_status_t numbered_join(const char **pout, apr_size_t *plen, apr_pool_t *p,
                                  const numbered *nb, apr_size_t max_total)
{
    apr_size_t total = 0, off = 0;
    char *out;
    int i;

    *pout = "";
    *plen = 0;
    for (i = 1; i <= nb->high; ++i) {
        if (!nb->slot[i]) {
            return HGS3_EMALFORMED;
        }
        total += nb->len[i];
    }
    if (total > max_total) {
        return HGS3_ETOOBIG;
    }
    out = apr_palloc(p, total + 1);
    for (i = 1; i <= nb->high; ++i) {
        memcpy(out + off, nb->slot[i], nb->len[i]);
        off += nb->len[i];
    }
    out[off] = '\0';
    *pout = out;
    *plen = total;
    return APR_SUCCESS;
}

apr_status_t hgs3_req_post_length(const apr_table_t *headers, const hgs3_req_limits *lim,
                                  apr_size_t *plen)
{
    const apr_array_header_t *arr = apr_table_elts(headers);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_uint64_t n = 0;
    int i, seen = 0;
    apr_status_t rv = APR_SUCCESS;

    *plen = 0;
    for (i = 0; i < arr->nelts; ++i) {
        const char *suffix;
        int uscore;
        if (!e[i].key || classify(e[i].key, &suffix, &uscore) != HDR_POSTLEN) {
            continue;
        }
        if (uscore || seen++) {
            rv = HGS3_EMALFORMED;
            goto leave;
        }
        rv = parse_count(e[i].val ? e[i].val : "", (apr_uint64_t)lim->max_post, &n);
        if (rv != APR_SUCCESS) {
            goto leave;
        }
    }
    *plen = (apr_size_t)n;
leave:
    return rv;
}

typedef struct hdr_scan {
    numbered args;
    numbered proto;
    const char *postlen; /* raw X-HgArgs-Post value */
    const char *clen;    /* raw Content-Length value */
    int te;              /* a Transfer-Encoding was given */
} hdr_scan;

/* Note one header of a kind that matters. A second X-HgArgs-Post or
 * Content-Length is malformed. */
static apr_status_t scan_one(hdr_scan *hs, hdr_kind kind, const char *suffix, const char *val,
                             const hgs3_req_limits *lim)
{
    apr_status_t rv = APR_SUCCESS;

    switch (kind) {
    case HDR_HGARG:
        rv = numbered_add(&hs->args, suffix, val, lim->max_header_value);
        break;
    case HDR_HGPROTO:
        rv = numbered_add(&hs->proto, suffix, val, lim->max_header_value);
        break;
    case HDR_POSTLEN:
        rv = hs->postlen ? HGS3_EMALFORMED : APR_SUCCESS;
        hs->postlen = val;
        break;
    case HDR_CLEN:
        rv = hs->clen ? HGS3_EMALFORMED : APR_SUCCESS;
        hs->clen = val;
        break;
    case HDR_TE:
        hs->te = 1;
        break;
    default:
        break;
    }
    return rv;
}

static apr_status_t scan_headers(hdr_scan *hs, apr_pool_t *p, const apr_table_t *headers,
                                 const hgs3_req_limits *lim)
{
    const apr_array_header_t *arr = apr_table_elts(headers);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_size_t total = 0;
    apr_status_t rv = APR_SUCCESS;
    int i;

    memset(hs, 0, sizeof(*hs));
    numbered_init(&hs->args, p, lim->max_hgargs);
    numbered_init(&hs->proto, p, lim->max_hgproto);
    if ((apr_size_t)arr->nelts > lim->max_header_count) {
        rv = HGS3_ETOOBIG;
        goto leave;
    }
    for (i = 0; i < arr->nelts; ++i) {
        const char *name = e[i].key, *val = e[i].val ? e[i].val : "", *suffix;
        int uscore;
        hdr_kind kind;

        if (!name) {
            continue;
        }
        total += strlen(name) + strlen(val);
        if (total > lim->max_header_bytes) {
            rv = HGS3_ETOOBIG;
            goto leave;
        }
        kind = classify(name, &suffix, &uscore);
        if (kind != HDR_OTHER && uscore) {
            rv = HGS3_EMALFORMED;
            goto leave;
        }
        rv = scan_one(hs, kind, suffix, val, lim);
        if (rv != APR_SUCCESS) {
            goto leave;
        }
    }
leave:
    return rv;
}

/* ---- the request -------------------------------------------------------- */

static apr_status_t check_post(hgs3_req *req, const hdr_scan *hs, const void *body,
                               apr_size_t body_len, const hgs3_req_limits *lim)
{
    apr_uint64_t n = 0, clen = 0;
    apr_status_t rv;

    if (strcmp(req->method, "GET") == 0) {
        /* hg sends X-HgArgs-Post only with POST */
        return (hs->postlen || body_len) ? HGS3_EMALFORMED : APR_SUCCESS;
    }
    /* POST: only httppostargs, whose body is the arguments and nothing else */
    if (!hs->postlen || hs->te || !hs->clen) {
        return APR_ENOTIMPL;
    }
    if ((rv = parse_count(hs->postlen, (apr_uint64_t)lim->max_post, &n)) != APR_SUCCESS) {
        return rv;
    }
    if (parse_count(hs->clen, APR_UINT64_MAX / 16, &clen) != APR_SUCCESS || clen != n) {
        return APR_ENOTIMPL;
    }
    if (hs->args.high > 0) {
        /* hgweb ignores X-HgArg-* when there is a POST body: hg never sends both */
        return HGS3_EMALFORMED;
    }
    if (body_len != (apr_size_t)n || !body) {
        return HGS3_EMALFORMED;
    }
    if ((rv = check_bytes(body, body_len, lim->max_post)) != APR_SUCCESS) {
        return rv;
    }
    req->has_post = 1;
    req->post = body;
    req->post_len = body_len;
    return APR_SUCCESS;
}

apr_status_t hgs3_req_finish(hgs3_req *req, apr_pool_t *p, const char *method,
                             const apr_table_t *headers, const void *body, apr_size_t body_len,
                             const hgs3_req_limits *lim)
{
    hdr_scan hs;
    apr_status_t rv;

    if (!req || !req->cmd || req->method || !method || !headers || !lim) {
        rv = APR_EINVAL;
        goto leave;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        rv = APR_ENOTIMPL;
        goto leave;
    }
    req->method = method[0] == 'G' ? "GET" : "POST";
    if ((rv = scan_headers(&hs, p, headers, lim)) != APR_SUCCESS) {
        goto leave;
    }
    if ((rv = check_post(req, &hs, body, body_len, lim)) != APR_SUCCESS) {
        goto leave;
    }
    rv = numbered_join(&req->hgargs, &req->hgargs_len, p, &hs.args, lim->max_header_bytes);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    rv = numbered_join(&req->proto, &req->proto_len, p, &hs.proto, lim->max_proto);
leave:
    return rv;
}

apr_status_t hgs3_req_parse(hgs3_req **preq, apr_pool_t *p, const char *method, const char *query,
                            const apr_table_t *headers, const void *body, apr_size_t body_len,
                            const hgs3_req_limits *lim)
{
    hgs3_req *req = NULL;
    apr_status_t rv;

    *preq = NULL;
    if (!method || !headers || !lim) {
        rv = APR_EINVAL;
        goto leave;
    }
    if ((rv = hgs3_req_start(&req, p, query, lim)) != APR_SUCCESS) {
        goto leave;
    }
    if ((rv = hgs3_req_finish(req, p, method, headers, body, body_len, lim)) != APR_SUCCESS) {
        goto leave;
    }
    *preq = req;
leave:
    return rv;
}

apr_size_t hgs3_req_forward_size(const apr_table_t *headers)
{
    const apr_array_header_t *arr = apr_table_elts(headers);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_size_t total = 0;
    int i;

    for (i = 0; i < arr->nelts; ++i) {
        if (e[i].key) {
            total += strlen(e[i].key) + (e[i].val ? strlen(e[i].val) : 0) + 4;
        }
    }
    return total;
}
