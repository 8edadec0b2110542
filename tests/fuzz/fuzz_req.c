/* fuzz_req.c: libFuzzer target for request normalization (hgs3_req) and the
 * key built from it.
 *
 * Input layout (so that seeds stay readable):
 *   byte 0        flags: bits 0-1 pick the method (GET, POST, HEAD, GET),
 *                 bit 2 small limits, bit 3 share across users;
 *   line 1        the query string ("-" alone means none);
 *   lines 2..     "Name:value" headers, until an empty line;
 *   the rest      the POST body handed to the parser.
 * Checked: no crash or sanitizer report, failures leave NULL, successes are
 * well formed and give the same key when parsed again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "hgs3_err.h"
#include "hgs3_req.h"
#include "hgs3_repo.h"
#include "hgs3_key.h"
#include "fuzz_common.h"

static const char *next_line(apr_pool_t *p, const char **s, const char *end, int *found)
{
    const char *nl = memchr(*s, '\n', (size_t)(end - *s));
    const char *line;
    *found = nl != NULL;
    if (!nl) {
        nl = end;
    }
    line = apr_pstrmemdup(p, *s, (apr_size_t)(nl - *s));
    *s = nl < end ? nl + 1 : end;
    return line;
}

static const char *compute(apr_pool_t *p, const hgs3_req *req, int share)
{
    static const unsigned char fp[] = {1, 0, 0};
    hgs3_repo repo;
    char *out = apr_palloc(p, HGS3_KEY_HEX_LEN + 1);
    memset(&repo, 0, sizeof(repo));
    repo.dir = "/srv/hg/repo";
    repo.fp = fp;
    repo.fp_len = sizeof(fp);
    if (hgs3_key_compute(out, p, "salt", "/repo", &repo, req, "user", share) != APR_SUCCESS ||
        strlen(out) != HGS3_KEY_HEX_LEN) {
        abort();
    }
    return out;
}

static void check_req(const hgs3_req *req, apr_size_t body_len)
{
    int i;
    apr_size_t k;
    if (!req->method || !req->cmd || !req->args || !req->hgargs || !req->proto) {
        abort();
    }
    if (strcmp(req->method, "GET") && strcmp(req->method, "POST")) {
        abort();
    }
    for (k = 0; req->cmd[k]; ++k) {
        char c = req->cmd[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            abort();
        }
    }
    if (k == 0 || k > 64 || strlen(req->hgargs) != req->hgargs_len ||
        strlen(req->proto) != req->proto_len) {
        abort();
    }
    if (req->has_post ? req->post_len != body_len : (req->post_len != 0)) {
        abort();
    }
    for (i = 1; i < req->args->nelts; ++i) {
        const hgs3_req_arg *a = &APR_ARRAY_IDX(req->args, i - 1, hgs3_req_arg);
        const hgs3_req_arg *b = &APR_ARRAY_IDX(req->args, i, hgs3_req_arg);
        apr_size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
        int c = memcmp(a->name, b->name, n);
        if (c > 0 || (c == 0 && a->name_len > b->name_len)) {
            abort();
        }
    }
    for (k = 0; k < req->hgargs_len; ++k) {
        unsigned char c = (unsigned char)req->hgargs[k];
        if (c < 0x20 || c == 0x7f) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *methods[] = {"GET", "POST", "HEAD", "GET"};
    apr_pool_t *p;
    apr_table_t *h;
    hgs3_req_limits lim;
    hgs3_req *req = (hgs3_req *)1, *again = NULL;
    const char *s, *end, *query, *cmd = NULL;
    apr_size_t plen = 0;
    apr_status_t rv, rv2;
    int flags, found;

    if (size < 1) {
        return 0;
    }
    apr_pool_create(&p, root_pool);
    flags = data[0];
    s = (const char *)data + 1;
    end = (const char *)data + size;
    hgs3_req_limits_init(&lim);
    if (flags & 4) {
        lim.max_query = 64;
        lim.max_query_args = 4;
        lim.max_header_count = 8;
        lim.max_header_bytes = 256;
        lim.max_header_value = 32;
        lim.max_hgargs = 4;
        lim.max_hgproto = 2;
        lim.max_proto = 16;
        lim.max_post = 32;
    }
    query = next_line(p, &s, end, &found);
    if (strcmp(query, "-") == 0) {
        query = NULL;
    }
    h = apr_table_make(p, 8);
    while (s < end) {
        const char *line = next_line(p, &s, end, &found), *colon;
        if (!*line) {
            break;
        }
        colon = strchr(line, ':');
        if (colon) {
            apr_table_addn(h, apr_pstrmemdup(p, line, (apr_size_t)(colon - line)), colon + 1);
        } else {
            apr_table_addn(h, line, "");
        }
    }

    rv2 = hgs3_req_post_length(h, &lim, &plen);
    if (rv2 != APR_SUCCESS && plen != 0) {
        abort();
    }
    rv = hgs3_req_parse(&req, p, methods[flags & 3], query, h, s, (apr_size_t)(end - s), &lim);
    if (rv != APR_SUCCESS) {
        if (req != NULL) {
            abort();
        }
    } else {
        check_req(req, (apr_size_t)(end - s));
        if (req->has_post && (rv2 != APR_SUCCESS || plen != req->post_len)) {
            abort();
        }
        if (hgs3_req_command(&cmd, p, query, &lim) != APR_SUCCESS || strcmp(cmd, req->cmd)) {
            abort();
        }
        /* the handler's two steps agree with the whole parse */
        if (hgs3_req_start(&again, p, query, &lim) != APR_SUCCESS ||
            hgs3_req_finish(again, p, methods[flags & 3], h, s, (apr_size_t)(end - s), &lim) !=
                APR_SUCCESS ||
            strcmp(compute(p, req, flags & 8), compute(p, again, flags & 8))) {
            abort();
        }
    }
    (void)hgs3_req_forward_size(h);
    apr_pool_destroy(p);
    return 0;
}
