/* fuzz_s3xml.c: libFuzzer target for the S3 XML documents (hgs3_s3xml).
 *
 * Input: the raw body a store answered (not NUL-terminated; the parsers
 * take a length). Every reader is run on it:
 *   hgs3_s3xml_root, hgs3_s3xml_error, hgs3_s3xml_upload_id,
 *   hgs3_s3xml_complete_result.
 * Checked: no crash or sanitizer report; a failure leaves its outputs NULL;
 * the readers agree with the root element's name (an <Error> is an error
 * document and nothing else, an upload id is never empty, ...); a second run
 * gives the same answers.
 * The input, cut into printable ETags at each '\n', also goes through
 * hgs3_s3xml_complete_body, whose output must parse back as a
 * <CompleteMultipartUpload> holding exactly those parts, in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_xml.h>

#include "hgs3_err.h"
#include "hgs3_s3xml.h"
#include "fuzz_common.h"

#define MAX_ETAGS 64

/* The readers on body; every invariant that links them. */
static void read_all(apr_pool_t *p, const char *body, apr_size_t len, const char **out)
{
    const char *root = (const char *)1, *code = (const char *)1, *msg = (const char *)1,
               *rid = (const char *)1, *uid = (const char *)1, *etag = (const char *)1;
    apr_status_t rv_root, rv_err, rv_uid, rv_cmp;

    rv_root = hgs3_s3xml_root(&root, p, body, len);
    rv_err = hgs3_s3xml_error(p, body, len, &code, &msg, &rid);
    rv_uid = hgs3_s3xml_upload_id(&uid, p, body, len);
    rv_cmp = hgs3_s3xml_complete_result(&etag, p, body, len);

    if (rv_root != APR_SUCCESS) {
        /* not XML: every reader refuses it the same way */
        if (rv_root != HGS3_EPROTO || root || rv_err != HGS3_EPROTO || rv_uid != HGS3_EPROTO ||
            rv_cmp != HGS3_EPROTO) {
            abort();
        }
    } else if (!root) {
        abort();
    }
    if (rv_err != APR_SUCCESS) {
        if (code || msg || rid || (rv_root == APR_SUCCESS && !strcmp(root, "Error"))) {
            abort();
        }
    } else if (rv_root != APR_SUCCESS || strcmp(root, "Error")) {
        abort();
    }
    if (rv_uid != APR_SUCCESS) {
        if (uid) {
            abort();
        }
    } else if (!uid || !*uid || rv_root != APR_SUCCESS ||
               strcmp(root, "InitiateMultipartUploadResult")) {
        abort();
    }
    if (rv_cmp != APR_SUCCESS) {
        if (etag || (rv_root == APR_SUCCESS && !strcmp(root, "CompleteMultipartUploadResult"))) {
            abort();
        }
    } else if (rv_root != APR_SUCCESS || strcmp(root, "CompleteMultipartUploadResult")) {
        abort();
    }
    /* the strings are whole C strings (ASan checks the reads) */
    out[0] = root ? apr_pstrdup(p, root) : NULL;
    out[1] = code ? apr_pstrdup(p, code) : NULL;
    out[2] = msg ? apr_pstrdup(p, msg) : NULL;
    out[3] = rid ? apr_pstrdup(p, rid) : NULL;
    out[4] = uid ? apr_pstrdup(p, uid) : NULL;
    out[5] = etag ? apr_pstrdup(p, etag) : NULL;
}

/* Concatenated character data directly inside e, as the readers see it. */
static const char *text(apr_pool_t *p, const apr_xml_elem *e)
{
    const apr_text *t;
    const char *s = "";
    for (t = e->first_cdata.first; t; t = t->next) {
        s = apr_pstrcat(p, s, t->text, NULL);
    }
    return s;
}

static void complete_round_trip(apr_pool_t *p, const char *data, apr_size_t size)
{
    apr_array_header_t *etags = apr_array_make(p, 4, sizeof(const char *));
    const char *body, *root = NULL;
    const apr_xml_elem *part;
    apr_xml_parser *xp;
    apr_xml_doc *doc = NULL;
    apr_size_t i = 0;
    int n = 0;

    while (i <= size && etags->nelts < MAX_ETAGS) {
        const char *nl = memchr(data + i, '\n', size - i);
        apr_size_t end = nl ? (apr_size_t)(nl - data) : size, k;
        char *tag = apr_pstrmemdup(p, data + i, end - i);
        for (k = 0; k < end - i; ++k) {
            /* printable ASCII: XML 1.0 has no escape for control characters */
            if ((unsigned char)tag[k] < 0x20 || (unsigned char)tag[k] > 0x7e) {
                tag[k] = '_';
            }
        }
        APR_ARRAY_PUSH(etags, const char *) = tag;
        i = end + 1;
    }
    body = hgs3_s3xml_complete_body(p, etags);
    if (!body || hgs3_s3xml_root(&root, p, body, strlen(body)) != APR_SUCCESS ||
        strcmp(root, "CompleteMultipartUpload")) {
        abort();
    }
    xp = apr_xml_parser_create(p);
    if (apr_xml_parser_feed(xp, body, strlen(body)) != APR_SUCCESS ||
        apr_xml_parser_done(xp, &doc) != APR_SUCCESS || !doc || !doc->root) {
        abort();
    }
    for (part = doc->root->first_child; part; part = part->next, ++n) {
        const apr_xml_elem *num = part->first_child, *etag = num ? num->next : NULL;
        if (n >= etags->nelts || strcmp(part->name, "Part") || !num || !etag || etag->next ||
            strcmp(num->name, "PartNumber") || strcmp(etag->name, "ETag") ||
            atoi(text(p, num)) != n + 1 ||
            strcmp(text(p, etag), APR_ARRAY_IDX(etags, n, const char *))) {
            abort();
        }
    }
    if (n != etags->nelts) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const char *first[6], *second[6];
    int i;

    apr_pool_create(&p, root_pool);
    read_all(p, (const char *)data, size, first);
    read_all(p, (const char *)data, size, second);
    for (i = 0; i < 6; ++i) {
        if (!hgs3_fuzz_same(first[i], second[i])) {
            abort();
        }
    }
    if (size <= 4096) {
        complete_round_trip(p, (const char *)data, size);
    }
    apr_pool_destroy(p);
    return 0;
}
