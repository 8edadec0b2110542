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

#endif
