/* hgs3_s3xml.c: S3 XML documents over apr_xml. */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_xml.h>
#include <apr_lib.h>

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

/* ---- redaction of store-supplied text ------------------------------------------ */

#define REDACTED "[redacted]"

/* Where an Authorization value (or a part of one) begins: cut from there.
 * "authorization" itself only as a header or parameter name (followed by
 * ':' or '='), so that an error Code such as AuthorizationHeaderMalformed
 * stays readable. */
static const char *const cut_markers[] = {
    "authorization",  "aws4-hmac-sha256", "credential=", "signature=",
    "security-token", "basic ",           "bearer ",     NULL,
};

static int is_cut(const char *q, const char *marker, apr_size_t n)
{
    if (strncasecmp(q, marker, n)) {
        return 0;
    }
    if (!strcmp(marker, "authorization")) {
        for (q += n; *q == ' ' || *q == '\t'; ++q) {
        }
        return *q == ':' || *q == '=';
    }
    return 1;
}

static const char *find_cut(const char *s)
{
    const char *first = NULL;
    int i;

    for (i = 0; cut_markers[i]; ++i) {
        apr_size_t n = strlen(cut_markers[i]);
        const char *q;
        for (q = s; *q && (!first || q < first); ++q) {
            if (is_cut(q, cut_markers[i], n)) {
                first = q;
                break;
            }
        }
    }
    return first;
}

static int is_separator(char c)
{
    return c == ' ' || c == '\t' || c == ',' || c == ';' || c == '"' || c == '\'' || c == '<' ||
           c == '>' || c == '(' || c == ')' || c == '&' || c == '[' || c == ']';
}

static int is_b64(char c)
{
    return apr_isalnum(c) || c == '+' || c == '/' || c == '=';
}

/* The longest run of characters of one class in [s, e). */
static apr_size_t longest_run(const char *s, const char *e, int hex)
{
    apr_size_t run = 0, best = 0;
    for (; s < e; ++s) {
        run = (hex ? apr_isxdigit(*s) : is_b64(*s)) ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

static int is_key_id(const char *s, const char *e)
{
    const char *q;
    if (e - s < 20 || (strncmp(s, "AKIA", 4) && strncmp(s, "ASIA", 4))) {
        return 0;
    }
    for (q = s; q < s + 20; ++q) {
        if (!apr_isupper(*q) && !apr_isdigit(*q)) {
            return 0;
        }
    }
    return 1;
}

/* Does the word [s, e) look like a credential? */
static int secret_word(const char *s, const char *e)
{
    const char *q;
    for (q = s; q + 12 <= e; ++q) {
        if (!strncasecmp(q, "aws4_request", 12)) {
            return 1;
        }
    }
    return longest_run(s, e, 1) >= 32 || longest_run(s, e, 0) >= 40 || is_key_id(s, e);
}

const char *hgs3_s3xml_redact(apr_pool_t *p, const char *s)
{
    const char *cut, *w, *e;
    char *out, *d;

    if (!s) {
        return NULL;
    }
    cut = find_cut(s);
    e = cut ? cut : s + strlen(s);
    /* every word may become REDACTED: at most that much longer per byte */
    out = d = apr_palloc(p, (apr_size_t)(e - s) * (sizeof(REDACTED) + 1) + sizeof(REDACTED) + 1);
    for (w = s; w < e;) {
        const char *we = w;
        if (is_separator(*w)) {
            *d++ = *w++;
            continue;
        }
        while (we < e && !is_separator(*we)) {
            ++we;
        }
        if (secret_word(w, we)) {
            memcpy(d, REDACTED, sizeof(REDACTED) - 1);
            d += sizeof(REDACTED) - 1;
        } else {
            memcpy(d, w, (apr_size_t)(we - w));
            d += we - w;
        }
        w = we;
    }
    if (cut) {
        memcpy(d, REDACTED, sizeof(REDACTED) - 1);
        d += sizeof(REDACTED) - 1;
    }
    *d = '\0';
    for (d = out; *d; ++d) {
        if ((unsigned char)*d < ' ' || *d == 127) {
            *d = ' ';
        }
    }
    return out;
}
