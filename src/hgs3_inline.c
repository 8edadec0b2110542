/* hgs3_inline.c: the inline entry format and the batch rule. */
#include <string.h>

#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_inline.h"

static const char magic[5] = {'H', 'G', 'S', '3', 'I'};
#define FORMAT_VERSION 1

static int valid_content_type(const char *ct, apr_size_t n)
{
    apr_size_t i;

    if (n == 0 || n > HGS3_INLINE_CT_MAX) {
        return 0;
    }
    for (i = 0; i < n; ++i) {
        unsigned char c = (unsigned char)ct[i];
        if (c < 0x20 || c > 0x7e) {
            return 0;
        }
    }
    return 1;
}

apr_status_t hgs3_inline_encode(unsigned char **pbuf, apr_size_t *plen, apr_pool_t *p, int status,
                                const char *content_type, const void *body, apr_size_t body_len)
{
    apr_size_t ctlen = content_type ? strlen(content_type) : 0;
    unsigned char *buf, *w;
    apr_status_t rv = APR_SUCCESS;

    *pbuf = NULL;
    *plen = 0;
    if (status < 100 || status > 599 || !valid_content_type(content_type, ctlen)) {
        rv = HGS3_EMALFORMED;
        goto leave;
    }
    if (body_len > HGS3_INLINE_MAX) {
        rv = HGS3_ETOOBIG;
        goto leave;
    }
    buf = w = apr_palloc(p, HGS3_INLINE_HEADER + ctlen + body_len);
    memcpy(w, magic, sizeof(magic));
    w += sizeof(magic);
    *w++ = FORMAT_VERSION;
    *w++ = (unsigned char)(status >> 8);
    *w++ = (unsigned char)(status & 0xff);
    *w++ = (unsigned char)ctlen;
    memcpy(w, content_type, ctlen);
    w += ctlen;
    *w++ = (unsigned char)(body_len >> 24);
    *w++ = (unsigned char)(body_len >> 16);
    *w++ = (unsigned char)(body_len >> 8);
    *w++ = (unsigned char)(body_len & 0xff);
    if (body_len) {
        memcpy(w, body, body_len);
    }
    *pbuf = buf;
    *plen = HGS3_INLINE_HEADER + ctlen + body_len;
leave:
    return rv;
}

apr_status_t hgs3_inline_decode(hgs3_inline_entry *e, apr_pool_t *p, const void *buf,
                                apr_size_t len)
{
    const unsigned char *r = buf;
    apr_size_t ctlen, body_len;
    apr_status_t rv = HGS3_EMALFORMED;

    memset(e, 0, sizeof(*e));
    if (len < sizeof(magic) || memcmp(r, magic, sizeof(magic)) != 0) {
        rv = APR_ENOENT;
        goto leave;
    }
    if (len < HGS3_INLINE_HEADER || r[5] != FORMAT_VERSION) {
        goto leave;
    }
    ctlen = r[8];
    if (len < HGS3_INLINE_HEADER + ctlen || !valid_content_type((const char *)r + 9, ctlen)) {
        goto leave;
    }
    r += 9 + ctlen;
    body_len = ((apr_size_t)r[0] << 24) | ((apr_size_t)r[1] << 16) | ((apr_size_t)r[2] << 8) | r[3];
    if (len != HGS3_INLINE_HEADER + ctlen + body_len) {
        goto leave;
    }
    r = buf;
    e->status = (r[6] << 8) | r[7];
    if (e->status < 100 || e->status > 599) {
        goto leave;
    }
    e->content_type = apr_pstrmemdup(p, (const char *)r + 9, ctlen);
    e->body = (const char *)r + HGS3_INLINE_HEADER + ctlen;
    e->body_len = body_len;
    rv = APR_SUCCESS;
leave:
    if (rv != APR_SUCCESS) {
        memset(e, 0, sizeof(*e));
    }
    return rv;
}

/* ---- the batch rule ------------------------------------------------------ */

static const char *const batch_allowed[] = {
    "heads", "known", "listkeys", "branchmap", "lookup", "capabilities", "clonebundles", NULL,
};

static int allowed_name(const char *name, apr_size_t n)
{
    int i;

    for (i = 0; batch_allowed[i]; ++i) {
        if (strlen(batch_allowed[i]) == n && memcmp(batch_allowed[i], name, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* hgweb (wireprotov1server.batch) splits cmds on ';' and each part on its
 * first ' ' into the command and its arguments: a part without a space is
 * an error there, and never cached here. */
int hgs3_inline_batch_cmds_ok(const char *cmds, apr_size_t len)
{
    const char *end = cmds + len, *part = cmds;

    if (len == 0) {
        return 0;
    }
    while (part <= end) {
        const char *semi = memchr(part, ';', (apr_size_t)(end - part));
        const char *stop = semi ? semi : end;
        const char *space = memchr(part, ' ', (apr_size_t)(stop - part));

        if (!space || !allowed_name(part, (apr_size_t)(space - part))) {
            return 0;
        }
        if (!semi) {
            break;
        }
        part = semi + 1;
    }
    return 1;
}

/* Every cmds= in a urlencoded argument string (X-HgArg-*, POST body).
 * -1 when a cmds is refused or the string cannot be decoded, else the
 * number of cmds found. */
static int check_encoded(const char *s, apr_size_t len, apr_pool_t *p)
{
    const char *end = s + len, *pair = s;
    int found = 0;

    while (pair < end) {
        const char *amp = memchr(pair, '&', (apr_size_t)(end - pair));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(pair, '=', (apr_size_t)(stop - pair));
        char *name, *value;
        apr_size_t nlen, vlen;

        if (hgs3_req_unescape(&name, &nlen, p, pair, (apr_size_t)((eq ? eq : stop) - pair), 1) !=
            APR_SUCCESS) {
            return -1;
        }
        if (nlen == 4 && memcmp(name, "cmds", 4) == 0) {
            if (!eq ||
                hgs3_req_unescape(&value, &vlen, p, eq + 1, (apr_size_t)(stop - eq - 1), 1) !=
                    APR_SUCCESS ||
                !hgs3_inline_batch_cmds_ok(value, vlen)) {
                return -1;
            }
            ++found;
        }
        pair = stop + 1;
    }
    return found;
}

int hgs3_inline_batch_ok(const hgs3_req *req, apr_pool_t *p)
{
    int found = 0, n, i;

    for (i = 0; req->args && i < req->args->nelts; ++i) {
        const hgs3_req_arg *a = &APR_ARRAY_IDX(req->args, i, hgs3_req_arg);
        if (a->name_len == 4 && memcmp(a->name, "cmds", 4) == 0) {
            if (!hgs3_inline_batch_cmds_ok(a->value, a->value_len)) {
                return 0;
            }
            ++found;
        }
    }
    n = check_encoded(req->hgargs ? req->hgargs : "", req->hgargs_len, p);
    if (n < 0) {
        return 0;
    }
    found += n;
    if (req->has_post) {
        n = check_encoded(req->post, req->post_len, p);
        if (n < 0) {
            return 0;
        }
        found += n;
    }
    return found > 0;
}
