/* hgs3_store_file.h: the local-directory store (HgS3CacheStore file:DIR).
 *
 * Object KEY is the file DIR/KEY; its Content-Type, size and (when known)
 * SHA-256 are in the sidecar DIR/KEY.meta. A writer puts both in temp files
 * beside them and renames the sidecar, then the object, into place; a
 * reader takes an object only with a sidecar whose recorded size is the
 * object's size. Free of httpd: the module, the tool and the unit tests
 * share it. */
#ifndef HGS3_STORE_FILE_H
#define HGS3_STORE_FILE_H

#include <apr_file_io.h>
#include <apr_pools.h>

#include "hgs3_store.h"

typedef struct hgs3_fstore hgs3_fstore;

/* The backend of hgs3_store.h: lookup, get, put, remove and open_local (no
 * client_url: hits are served by httpd from the file, never redirected). */
extern const hgs3_store_impl hgs3_store_file_impl;

/* A store on the absolute directory dir, alive as long as p; its id is
 * hgs3_store_file_id(dir). */
apr_status_t hgs3_store_file_create(hgs3_store **pst, apr_pool_t *p, const char *dir);

/* A store on the absolute directory dir (which must exist), alive as long
 * as p. Immutable: shared by all threads. */
apr_status_t hgs3_fstore_create(hgs3_fstore **pfs, apr_pool_t *p, const char *dir);

/* The file of key: DIR/KEY. HGS3_EMALFORMED for a key that is empty,
 * absolute, has an empty, "." or ".." segment, a control character, or a
 * segment that could be taken for a sidecar or temp file (".meta" at its
 * end, ".tmp." in it). */
apr_status_t hgs3_fstore_path(const char **path, const hgs3_fstore *fs, apr_pool_t *p,
                              const char *key);

/* Each call below may set *why (when why is not NULL) to one line about a
 * failure, in p: the file and the system's error text, never the data.
 * Missing object: HGS3_ENOTFOUND. An object without its sidecar, or whose
 * size is not the recorded one, or an empty one: HGS3_EPROTO (never a hit).
 * An I/O or permission error of the directory: HGS3_ESTORE (a store failure,
 * as a store that is down). */

/* Stat the object and read its sidecar; last_modified is the object's mtime. */
apr_status_t hgs3_fstore_lookup(hgs3_store_object *obj, const hgs3_fstore *fs, apr_pool_t *p,
                                const char *key, const char **why);

/* The object opened for reading (with sendfile allowed), checked against its
 * sidecar through the open file, so what is sent is what was checked; *f is
 * closed with p. */
apr_status_t hgs3_fstore_open(apr_file_t **f, hgs3_store_object *obj, const hgs3_fstore *fs,
                              apr_pool_t *p, const char *key, const char **why);

/* Streaming read: on_headers once, then on_data in chunks of 64 KiB. */
apr_status_t hgs3_fstore_get(const hgs3_fstore *fs, apr_pool_t *p, const char *key,
                             hgs3_store_headers_cb *on_headers, hgs3_store_data_cb *on_data,
                             void *baton, const char **why);

/* Store body (memory or a complete file, copied: never moved, as others may
 * still read it) as key, atomically: readers see the whole new object, the
 * whole old one, or none. Subdirectories are created mode 0750 (umask applies). */
apr_status_t hgs3_fstore_put(const hgs3_fstore *fs, apr_pool_t *p, const char *key,
                             const hgs3_store_body *body, const char *content_type,
                             const char **why);

/* Remove the object and its sidecar; APR_SUCCESS when they are gone. */
apr_status_t hgs3_fstore_remove(const hgs3_fstore *fs, apr_pool_t *p, const char *key,
                                const char **why);

/* "file:DIR", DIR without trailing '/': where the objects of a store on
 * dir live. */
const char *hgs3_store_file_id(apr_pool_t *p, const char *dir);

#endif
