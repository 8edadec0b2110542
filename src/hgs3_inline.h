/* hgs3_inline.h: small replies kept inline in the presence cache.
 *
 * A cacheable 200 reply of at most HgS3CacheInlineMax bytes (capabilities,
 * batch, heads, known, listkeys, branchmap, lookup, and getbundle bodies
 * below HgS3CacheMinSize) is kept in the presence cache itself, under the
 * object's presence id, instead of in the store. The entry is one byte
 * string:
 *
 *   "HGS3I"  magic (5 bytes)
 *   0x01     format version
 *   status   2 bytes, big-endian
 *   ctlen    1 byte: length of the Content-Type (1..255)
 *   ctype    ctlen bytes, visible ASCII and spaces
 *   bodylen  4 bytes, big-endian
 *   body     bodylen bytes
 *
 * A presence entry of a stored object is 8 bytes (its Last-Modified), so
 * the two never look alike. Decoding checks every length against the
 * buffer: an entry cut short or written by another format is refused. */
#ifndef HGS3_INLINE_H
#define HGS3_INLINE_H

#include <apr_pools.h>

#include "hgs3_req.h"

#define HGS3_INLINE_HEADER   13  /* magic, version, status, ctlen, bodylen */
#define HGS3_INLINE_CT_MAX   255 /* longest Content-Type kept */
#define HGS3_INLINE_OVERHEAD (HGS3_INLINE_HEADER + HGS3_INLINE_CT_MAX)
#define HGS3_INLINE_MAX      ((apr_size_t)1 << 20) /* largest body (memcache's item size) */

/* A decoded entry. content_type and body point into the decoded buffer,
 * except content_type, which is a NUL-terminated copy in the pool. */
typedef struct hgs3_inline_entry {
    int status;
    const char *content_type;
    const char *body;
    apr_size_t body_len;
} hgs3_inline_entry;

/* Encode an entry into *pbuf / *plen (allocated from p). HGS3_EMALFORMED
 * for a status outside 100..599 or a Content-Type that is empty, longer
 * than HGS3_INLINE_CT_MAX or holds control characters; HGS3_ETOOBIG for a
 * body above HGS3_INLINE_MAX. On failure *pbuf is NULL and *plen 0. */
apr_status_t hgs3_inline_encode(unsigned char **pbuf, apr_size_t *plen, apr_pool_t *p, int status,
                                const char *content_type, const void *body, apr_size_t body_len);

/* Decode buf (len bytes). APR_ENOENT when buf is not an inline entry at all
 * (e.g. an 8-byte presence entry), HGS3_EMALFORMED for a damaged one. On
 * failure *e is zeroed. */
apr_status_t hgs3_inline_decode(hgs3_inline_entry *e, apr_pool_t *p, const void *buf,
                                apr_size_t len);

/* A batch request may be cached only when every sub-command of its `cmds`
 * argument is a read-only command whose answer the key covers: heads,
 * known, listkeys, branchmap, lookup, capabilities, clonebundles. cmds is
 * read wherever hgweb reads arguments (query, X-HgArg-*, the POST body);
 * every occurrence must pass. 1 when cacheable, 0 otherwise (no cmds, an
 * unparseable one, or any other sub-command). */
int hgs3_inline_batch_ok(const hgs3_req *req, apr_pool_t *p);

/* 1 when the sub-command list `cmds` (decoded: "heads ;known nodes=...")
 * names only the commands above. */
int hgs3_inline_batch_cmds_ok(const char *cmds, apr_size_t len);

#endif
