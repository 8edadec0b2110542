/* hgs3_s3xml.h: the few S3 XML documents the client reads and writes, over
 * apr_xml (expat). Input is whatever the store sent: these functions only
 * look for elements by (local) name and never trust the document's shape. */
#ifndef HGS3_S3XML_H
#define HGS3_S3XML_H

#include <apr_pools.h>
#include <apr_tables.h>

/* Name of the root element (namespace dropped), or HGS3_EPROTO when body is
 * not well-formed XML. */
apr_status_t hgs3_s3xml_root(const char **name, apr_pool_t *p, const char *body, apr_size_t len);

/* An <Error> document: Code, Message and RequestId (each NULL when absent).
 * HGS3_EPROTO when body is not XML or its root is not Error. */
apr_status_t hgs3_s3xml_error(apr_pool_t *p, const char *body, apr_size_t len, const char **code,
                              const char **message, const char **request_id);

/* UploadId of an <InitiateMultipartUploadResult>. HGS3_EPROTO otherwise. */
apr_status_t hgs3_s3xml_upload_id(const char **upload_id, apr_pool_t *p, const char *body,
                                  apr_size_t len);

/* The <CompleteMultipartUpload> request body; etags holds const char *,
 * element i being part number i + 1. */
const char *hgs3_s3xml_complete_body(apr_pool_t *p, const apr_array_header_t *etags);

/* ETag of a <CompleteMultipartUploadResult> (NULL if the store gave none).
 * HGS3_EPROTO when the root is anything else: a store may answer 200 and
 * still report an <Error> here. */
apr_status_t hgs3_s3xml_complete_result(const char **etag, apr_pool_t *p, const char *body,
                                        apr_size_t len);

/* Store-supplied text (an error Code, a request id, a message) made fit for
 * a log line or a tool's stderr. A store may echo our request back, so
 * whatever looks like a credential becomes "[redacted]":
 * - a credential scope (AKID/20150830/us-east-1/s3/aws4_request), or any
 *   word containing "aws4_request";
 * - a signature: a run of 32 or more hex digits;
 * - a secret key or session token: a run of 40 or more base64 characters;
 * - an access key id (AKIA... or ASIA... and 16 more);
 * - an Authorization value: everything from "Authorization:" (or "="),
 *   "AWS4-HMAC-SHA256", "Credential=", "Signature=", "Security-Token",
 *   "Basic " or "Bearer " (any case) to the end.
 * Control characters become spaces. NULL stays NULL. */
const char *hgs3_s3xml_redact(apr_pool_t *p, const char *s);

#endif
