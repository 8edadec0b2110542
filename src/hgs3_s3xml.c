/* hgs3_s3xml.c: S3 XML documents over apr_xml. */
#include <string.h>
#include <apr_strings.h>
#include <apr_xml.h>

#include "hgs3_err.h"
#include "hgs3_s3xml.h"

static apr_status_t parse(apr_xml_doc **pdoc, apr_pool_t *p, const char *body, apr_size_t len)
{
    apr_xml_parser *xp;
    apr_status_t rv;

    *pdoc = NULL;
    if (!body || len == 0) {
        return HGS3_EPROTO;
    }
    xp = apr_xml_parser_create(p);
    rv = apr_xml_parser_feed(xp, body, len);
    if (rv == APR_SUCCESS) {
        rv = apr_xml_parser_done(xp, pdoc);
    }
    if (rv != APR_SUCCESS || !*pdoc || !(*pdoc)->root) {
        *pdoc = NULL;
        return HGS3_EPROTO;
    }
    return APR_SUCCESS;
}

/* The longest text we take from one element: codes, ids and ETags are
 * short; a store that sends more gets it cut, never a big allocation. */
#define HGS3_XML_MAX_TEXT 1024

/* Concatenated character data directly inside e, at most
 * HGS3_XML_MAX_TEXT bytes. expat hands text over in many small pieces
 * (each newline, each entity), so it is measured first and copied once:
 * concatenating piece by piece would be quadratic. */
static const char *text_of(apr_pool_t *p, const apr_xml_elem *e)
{
    const apr_text *t;
    apr_size_t len = 0, n;
    char *s, *d;

    for (t = e->first_cdata.first; t && len < HGS3_XML_MAX_TEXT; t = t->next) {
        len += strlen(t->text);
    }
    if (len > HGS3_XML_MAX_TEXT) {
        len = HGS3_XML_MAX_TEXT;
    }
    s = d = apr_palloc(p, len + 1);
    for (t = e->first_cdata.first; t && (apr_size_t)(d - s) < len; t = t->next) {
        n = strlen(t->text);
        if (n > len - (apr_size_t)(d - s)) {
            n = len - (apr_size_t)(d - s);
        }
        memcpy(d, t->text, n);
        d += n;
    }
    *d = '\0';
    return s;
}

static const apr_xml_elem *child(const apr_xml_elem *e, const char *name)
{
    const apr_xml_elem *c;
    for (c = e->first_child; c; c = c->next) {
        if (!strcmp(c->name, name)) {
            return c;
        }
    }
    return NULL;
}

static const char *child_text(apr_pool_t *p, const apr_xml_elem *e, const char *name)
{
    const apr_xml_elem *c = child(e, name);
    return c ? text_of(p, c) : NULL;
}

apr_status_t hgs3_s3xml_root(const char **name, apr_pool_t *p, const char *body, apr_size_t len)
{
    apr_xml_doc *doc;
    apr_status_t rv = parse(&doc, p, body, len);
    *name = rv == APR_SUCCESS ? doc->root->name : NULL;
    return rv;
}

apr_status_t hgs3_s3xml_error(apr_pool_t *p, const char *body, apr_size_t len, const char **code,
                              const char **message, const char **request_id)
{
    apr_xml_doc *doc;
    apr_status_t rv;

    *code = *message = *request_id = NULL;
    if ((rv = parse(&doc, p, body, len)) != APR_SUCCESS) {
        return rv;
    }
    if (strcmp(doc->root->name, "Error")) {
        return HGS3_EPROTO;
    }
    *code = child_text(p, doc->root, "Code");
    *message = child_text(p, doc->root, "Message");
    *request_id = child_text(p, doc->root, "RequestId");
    return APR_SUCCESS;
}

apr_status_t hgs3_s3xml_upload_id(const char **upload_id, apr_pool_t *p, const char *body,
                                  apr_size_t len)
{
    apr_xml_doc *doc;
    apr_status_t rv;
    const char *id;

    *upload_id = NULL;
    if ((rv = parse(&doc, p, body, len)) != APR_SUCCESS) {
        return rv;
    }
    if (strcmp(doc->root->name, "InitiateMultipartUploadResult") ||
        !(id = child_text(p, doc->root, "UploadId")) || !*id) {
        return HGS3_EPROTO;
    }
    *upload_id = id;
    return APR_SUCCESS;
}

const char *hgs3_s3xml_complete_body(apr_pool_t *p, const apr_array_header_t *etags)
{
    apr_array_header_t *parts = apr_array_make(p, etags->nelts * 5 + 2, sizeof(const char *));
    int i;

    APR_ARRAY_PUSH(parts, const char *) =
        "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    for (i = 0; i < etags->nelts; ++i) {
        APR_ARRAY_PUSH(parts, const char *) =
            apr_psprintf(p, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
                         apr_xml_quote_string(p, APR_ARRAY_IDX(etags, i, const char *), 0));
    }
    APR_ARRAY_PUSH(parts, const char *) = "</CompleteMultipartUpload>";
    return apr_array_pstrcat(p, parts, 0);
}

apr_status_t hgs3_s3xml_complete_result(const char **etag, apr_pool_t *p, const char *body,
                                        apr_size_t len)
{
    apr_xml_doc *doc;
    apr_status_t rv;

    *etag = NULL;
    if ((rv = parse(&doc, p, body, len)) != APR_SUCCESS) {
        return rv;
    }
    if (strcmp(doc->root->name, "CompleteMultipartUploadResult")) {
        return HGS3_EPROTO;
    }
    *etag = child_text(p, doc->root, "ETag");
    return APR_SUCCESS;
}
