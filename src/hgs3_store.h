/* hgs3_store.h: the object-store interface (provisional copy of the agreed
 * shape; the store refactoring provides the real one). */
#ifndef HGS3_STORE_H
#define HGS3_STORE_H

#include <apr_file_io.h>
#include <apr_pools.h>
#include <apr_time.h>

typedef struct hgs3_store_object {
    int status;
    apr_off_t content_length;
    const char *content_type;
    const char *etag;
    apr_time_t last_modified;
} hgs3_store_object;

typedef struct hgs3_store hgs3_store;
typedef struct hgs3_store_conn hgs3_store_conn;
typedef apr_status_t hgs3_store_headers_cb(void *baton, const hgs3_store_object *obj);
typedef apr_status_t hgs3_store_data_cb(void *baton, const char *data, apr_size_t len);

typedef struct hgs3_store_body {
    const void *data;
    apr_size_t len;
    const char *path;
    apr_off_t size;
    const char *sha256_hex;
} hgs3_store_body;

#endif
