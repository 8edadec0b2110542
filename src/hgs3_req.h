/* hgs3_req.h: normalization of an hg wire-protocol v1 request for the key.
 *
 * hgweb (Mercurial 6.3 wireprotoserver.py) reads a v1 command from:
 *   - the query string: `cmd=` plus possibly further arguments;
 *   - X-HgArg-1..N, concatenated in order, one urlencoded string (only when
 *     there is no POST argument body);
 *   - the POST body, X-HgArgs-Post bytes of it, for httppostargs;
 *   - X-HgProto-1..N, concatenated, the client's protocol capabilities.
 * hgs3_req_parse() extracts exactly these, refuses anything hg itself would
 * never send (so two requests that hgweb could read differently never share
 * a representation), and bounds every size. Any status other than
 * APR_SUCCESS means "not eligible": the request goes to hgweb untouched.
 *
 * Statuses:
 *   APR_ENOENT       no `cmd=` in the query: not a wire command;
 *   APR_ENOTIMPL     a well-formed request of a kind that is never cached
 *                    (a method other than GET/POST, a POST without
 *                    X-HgArgs-Post, a `static` query argument);
 *   HGS3_EMALFORMED  something hg does not send (gap or duplicate in
 *                    X-HgArg-N, bad escapes, control characters, ...);
 *   HGS3_ETOOBIG     over one of the hgs3_req_limits. */
#ifndef HGS3_REQ_H
#define HGS3_REQ_H

#include <apr_pools.h>
#include <apr_tables.h>

/* Bounds applied while parsing. hgs3_req_limits_init() gives the defaults
 * noted per field. */
typedef struct hgs3_req_limits {
    apr_size_t max_query;        /* raw query string bytes: 64 KiB */
    apr_size_t max_query_args;   /* pairs in the query: 256 */
    apr_size_t max_header_count; /* request header fields: 1000 */
    apr_size_t max_header_bytes; /* sum of name+value of all fields: 256 KiB */
    apr_size_t max_header_value; /* one X-HgArg/X-HgProto value: 8190 (LimitRequestFieldSize) */
    int max_hgargs;              /* highest N in X-HgArg-N: 1000 */
    int max_hgproto;             /* highest N in X-HgProto-N: 16 */
    apr_size_t max_proto;        /* concatenated X-HgProto value: 8 KiB */
    apr_size_t max_post;         /* POST argument body (X-HgArgs-Post): 1 MiB */
} hgs3_req_limits;

void hgs3_req_limits_init(hgs3_req_limits *lim);

/* One query argument other than cmd, percent- and '+'-decoded as Python's
 * parse_qsl does (the bytes may hold anything, hence the lengths). */
typedef struct hgs3_req_arg {
    const char *name;
    apr_size_t name_len;
    const char *value;
    apr_size_t value_len;
} hgs3_req_arg;

/* A normalized request. All strings live in the pool given to the parser. */
typedef struct hgs3_req {
    const char *method;       /* "GET" or "POST" */
    const char *cmd;          /* the wire command, [A-Za-z0-9_-]{1,64} */
    apr_array_header_t *args; /* hgs3_req_arg: the other query arguments, sorted by
                               * name; repeated names keep their order (hgweb uses the
                               * first value, so "a=1&a=2" and "a=2&a=1" differ) */
    const char *hgargs;       /* X-HgArg-1..N concatenated ("" when none) */
    apr_size_t hgargs_len;
    int has_post;     /* a POST argument body was given */
    const char *post; /* the POST argument body, when has_post */
    apr_size_t post_len;
    const char *proto; /* X-HgProto-1..N concatenated ("" when none) */
    apr_size_t proto_len;
} hgs3_req;

/* The request is parsed in two steps, so the query is read once and the
 * caller can check HgS3CacheCommands before reading any body:
 *   hgs3_req_start()   the query: cmd and the other arguments. query is the
 *                      raw query string (r->args), may be NULL. On failure
 *                      *preq is NULL.
 *   hgs3_req_finish()  the rest, on a request from hgs3_req_start() (once):
 *                      method, headers and POST body, as for
 *                      hgs3_req_parse(). On failure req must not be used.
 * The statuses are those of hgs3_req_parse(). */
apr_status_t hgs3_req_start(hgs3_req **preq, apr_pool_t *p, const char *query,
                            const hgs3_req_limits *lim);
apr_status_t hgs3_req_finish(hgs3_req *req, apr_pool_t *p, const char *method,
                             const apr_table_t *headers, const void *body, apr_size_t body_len,
                             const hgs3_req_limits *lim);

/* The wire command alone (hgs3_req_start()'s cmd), *pcmd NULL on failure. */
apr_status_t hgs3_req_command(const char **pcmd, apr_pool_t *p, const char *query,
                              const hgs3_req_limits *lim);

/* For a POST: how many body bytes the caller must read and pass to
 * hgs3_req_parse(), the X-HgArgs-Post value (0 when the header is absent,
 * and the POST is then not eligible). The value is already bounded by
 * lim->max_post. hgweb reads the same bytes again, so the caller must hand
 * them back to the input filters. A GET needs no body: its parse fails if
 * X-HgArgs-Post is present. HGS3_EMALFORMED for a value that is not a
 * plain decimal number in 1..max, or a duplicate header; HGS3_ETOOBIG above
 * lim->max_post. */
apr_status_t hgs3_req_post_length(const apr_table_t *headers, const hgs3_req_limits *lim,
                                  apr_size_t *plen);

/* Parse and normalize a request: hgs3_req_start() and hgs3_req_finish().
 *   method   r->method
 *   query    r->args, the raw query string (may be NULL)
 *   headers  r->headers_in
 *   body     the POST argument body read by the caller (NULL/0 when there is
 *            none). A POST must carry X-HgArgs-Post and a Content-Length
 *            equal to it, and body_len must be exactly that length.
 * On failure *preq is NULL. */
apr_status_t hgs3_req_parse(hgs3_req **preq, apr_pool_t *p, const char *method, const char *query,
                            const apr_table_t *headers, const void *body, apr_size_t body_len,
                            const hgs3_req_limits *lim);

/* Percent-decode len bytes of s (and '+' to space when plus_is_space, as
 * in a query string). A '%' not followed by two hex digits is
 * HGS3_EMALFORMED. The result is NUL-terminated but may hold NULs: use
 * *plen. */
apr_status_t hgs3_req_unescape(char **pout, apr_size_t *plen, apr_pool_t *p, const char *s,
                               apr_size_t len, int plus_is_space);

/* Hit mode "auto": the size of the request headers hg would forward to the
 * object store on a redirect. Defined as the sum, over every field of
 * headers, of strlen(name) + strlen(value) + 4 (": " and CRLF). It counts
 * every field (Host, Content-Length and Content-Type too, though urllib
 * replaces or drops them on a redirect), so it can only over-estimate:
 * compare it with the 6 KiB threshold. */
apr_size_t hgs3_req_forward_size(const apr_table_t *headers);

#endif
