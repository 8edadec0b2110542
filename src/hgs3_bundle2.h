/* hgs3_bundle2.h: tell an hgweb error bundle from a cacheable response body.
 *
 * hgweb answers a failed getbundle from a bundle2 client with status 200 and
 * a bundle whose part is "error:abort" (wireprotov1server.getbundle). Such a
 * body must never be cached. The capture filter feeds this detector the
 * response body as it streams, in pieces of any size (one byte at a time
 * works); it needs no allocation and keeps about 4 KiB of state.
 *
 * What it reads (Mercurial 6.3 wireprotoserver.py, bundle2.py,
 * utils/compression.py):
 *
 *   application/mercurial-0.2: uint8 n, engine name (n bytes), then the
 *     payload compressed with that engine.
 *     - "none": the bundle2 stream follows and is parsed:
 *         "HG20", int32 params size, params ("name=value" urlquoted, space
 *         separated), then parts: int32 header size (0 ends the bundle),
 *         header = uint8 type size, type, uint32 id, uint8 mandatory count,
 *         uint8 advisory count, (uint8 key size, uint8 value size) per
 *         param, keys and values; payload = int32 chunk sizes and data up
 *         to a 0 chunk, -1 announcing an interrupt part (Mercurial sends an
 *         "error:abort" that way when generation fails mid-stream).
 *       A part type starting with "error:" (any case: mandatory parts are
 *       sent upper-cased, "ERROR:ABORT") means ERROR. A stream-clone bundle
 *       ("STREAM2", also engine none) is OK. A "Compression" stream param
 *       compresses the parts that follow: "UN" changes nothing, "ZS" is
 *       checked as a zstd stream (below), "GZ"/"BZ" are OPAQUE (hgweb sends
 *       such bundles only as pre-built pullbundles). An unknown mandatory
 *       stream param (the client would abort), or anything not as above,
 *       is MALFORMED.
 *     - "zstd": checked without decompressing (RFC 8878). Mercurial
 *       compresses the whole reply with one python-zstandard compressobj:
 *       compress() per chunk, flush() at the end, one frame. When bundle
 *       generation fails after the headers went out, the generator raises
 *       inside compressstream, flush() never runs, and the body ends after
 *       the blocks already written, without the frame's last block (the
 *       interrupt error part is still inside the compressor and never
 *       reaches the wire: seen with hgweb under mod_wsgi, which ends such a
 *       response cleanly with status 200). So the body is OK only if it is
 *       complete frames up to its very end:
 *         frame = magic 0xFD2FB528, Frame_Header_Descriptor (the reserved
 *           bit clear), window descriptor unless single segment, dictionary
 *           id, frame content size, then blocks (3-byte little-endian
 *           header: Last_Block bit, Block_Type raw/RLE/compressed, reserved
 *           type = MALFORMED, Block_Size at most min(window, 128 KiB); an
 *           RLE block has 1 byte of content, a compressed one at least 2)
 *           up to the Last_Block, then the 4-byte checksum if the
 *           descriptor says so;
 *         skippable frames (magic 0x184D2A5?, uint32le size, content) may
 *           follow a frame.
 *       A body cut anywhere, trailing bytes, a skippable frame first or no
 *       frame at all is MALFORMED. So are frames Mercurial's reader
 *       (python-zstandard decompressobj, libzstd defaults) would refuse: a
 *       dictionary id other than 0, a window above
 *       HGS3_BUNDLE2_ZSTD_MAX_WINDOW. The verdict on a zstd body comes only
 *       at EOS (hgs3_bundle2_state_at_eos); while it streams, the state
 *       stays NEED_MORE unless the structure is already broken (MALFORMED).
 *       Compressed blocks are not inflated, so error parts inside a
 *       complete frame are not seen; Mercurial never writes one there (an
 *       error it reports up front goes out with engine "none").
 *     - "zlib", "bzip2": OPAQUE. Their streams cannot be checked for
 *       completeness without inflating them. Clients since Mercurial 4.1
 *       offer zstd first and hgweb picks it, so this costs little.
 *     - any other engine name: MALFORMED.
 *   application/mercurial-0.1: the whole body is zlib-compressed with no
 *     engine header, and an error bundle for a client speaking only 0.1 is
 *     zlib'd too (seen with hgweb). It cannot be cleared without inflating:
 *     OPAQUE. Same for any other media type. (A bundle1 reply is a bare
 *     changegroup with no magic: MALFORMED.)
 *
 * Modes:
 *   default (hgs3_bundle2_init): follows the whole body in constant
 *     memory, skipping payload and block contents. For engine "none" OK
 *     comes at the bundle's end-of-stream marker: every part and every
 *     interrupt part is checked, and a body cut short stays NEED_MORE,
 *     hence MALFORMED at EOS. This matters: when hgweb's generator fails
 *     after the headers went out, Mercurial emits an interrupt
 *     "error:abort" and raises, and mod_wsgi (4.9.4, daemon mode, seen
 *     here) still ends the chunked response cleanly with status 200: the
 *     filter sees a normal EOS. Bytes after the end marker are ignored, as
 *     Mercurial does. For zstd, see above.
 *   HGS3_BUNDLE2_FIRST_PART (hgs3_bundle2_init_ex): the verdict is given on
 *     the first part's type, within 5 + 4 + 4 + HGS3_BUNDLE2_MAX_PARAMS + 4
 *     + 256 bytes at most; zstd is OK on sight. Enough for hgweb's own
 *     error replies, blind to mid-stream failures.
 *   Either way, data fed after a verdict is not looked at, and any split
 *   of the body into pieces gives the same verdict.
 *
 * The capture filter must cache a body only when the verdict at EOS is OK:
 * a body the detector could not clear (MALFORMED, OPAQUE, or NEED_MORE at
 * EOS) is not stored. */
#ifndef HGS3_BUNDLE2_H
#define HGS3_BUNDLE2_H

#include <apr.h>

/* Longest stream-level parameter block accepted (Mercurial writes at most
 * "Compression=XX"; hgweb's getbundle writes none). */
#define HGS3_BUNDLE2_MAX_PARAMS 4096
/* Interrupt parts may nest; deeper than this is MALFORMED. */
#define HGS3_BUNDLE2_MAX_DEPTH 8

/* Largest zstd window accepted: libzstd's default decoder limit
 * (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 2^27), which Mercurial's reader keeps;
 * above it the client fails with "Frame requires too much memory". */
#define HGS3_BUNDLE2_ZSTD_MAX_WINDOW ((apr_uint64_t)1 << 27)

/* Flags for hgs3_bundle2_init_ex. */
#define HGS3_BUNDLE2_FIRST_PART 0x1

typedef enum {
    HGS3_BUNDLE2_NEED_MORE = 0, /* feed more bytes */
    HGS3_BUNDLE2_OK,            /* not an error bundle: may be cached */
    HGS3_BUNDLE2_ERROR,         /* an error:* part: never cache */
    HGS3_BUNDLE2_MALFORMED,     /* does not parse, or ended too soon: do not cache */
    HGS3_BUNDLE2_OPAQUE         /* media type we cannot look into: do not cache */
} hgs3_bundle2_state_t;

/* The detector. Embed it anywhere (e.g. the filter context); the fields are
 * private to hgs3_bundle2.c. */
typedef struct {
    hgs3_bundle2_state_t state;
    int stage;
    int flags;
    int depth;       /* interrupt nesting: 0 while in a top-level part */
    apr_off_t fed;   /* bytes consumed so far */
    apr_size_t want; /* bytes the current stage needs */
    apr_size_t have; /* ... and has collected */
    apr_uint32_t skip;
    apr_uint32_t header_left; /* bytes of the current part header not yet read */
    apr_uint32_t param_bytes; /* sum of the current part's key and value sizes */
    unsigned nparams;
    struct {                       /* the zstd frame being read */
        unsigned descriptor;       /* Frame_Header_Descriptor */
        int last;                  /* the current block is the frame's last */
        int has_size;              /* the frame declares its content size */
        int compressed;            /* a compressed block was seen */
        apr_uint32_t frames;       /* zstd frames completed */
        apr_uint32_t block_max;    /* Block_Maximum_Size */
        apr_uint64_t content_size; /* Frame_Content_Size */
        apr_uint64_t plain;        /* bytes regenerated by raw and RLE blocks */
    } zs;
    unsigned char buf[HGS3_BUNDLE2_MAX_PARAMS]; /* engine name, type, ints, params */
} hgs3_bundle2;

/* Start a detector for a body of the given Content-Type (parameters after
 * ';' are ignored). Returns the initial state: NEED_MORE, or OPAQUE when
 * the media type is not application/mercurial-0.2. */
hgs3_bundle2_state_t hgs3_bundle2_init(hgs3_bundle2 *det, const char *media_type);
/* The same with flags: 0 or HGS3_BUNDLE2_FIRST_PART. */
hgs3_bundle2_state_t hgs3_bundle2_init_ex(hgs3_bundle2 *det, const char *media_type, int flags);

/* Feed the next len bytes of the body. Returns the state: NEED_MORE until
 * a verdict, then the verdict, which never changes again; bytes fed after
 * it are not looked at. */
hgs3_bundle2_state_t hgs3_bundle2_feed(hgs3_bundle2 *det, const void *data, apr_size_t len);

/* The current state (NEED_MORE or the verdict). */
hgs3_bundle2_state_t hgs3_bundle2_state(const hgs3_bundle2 *det);

/* The body has ended: the final verdict. A zstd body that ends right after
 * a complete frame is OK; any other NEED_MORE becomes MALFORMED (truncated
 * before a verdict, or an empty body). */
hgs3_bundle2_state_t hgs3_bundle2_state_at_eos(const hgs3_bundle2 *det);

/* Bytes consumed before the verdict (all bytes fed while NEED_MORE). */
apr_off_t hgs3_bundle2_consumed(const hgs3_bundle2 *det);

/* A short static name for a state ("ok", "error-bundle", "malformed-bundle",
 * "opaque-body", "need-more"), usable as a skip reason. */
const char *hgs3_bundle2_state_name(hgs3_bundle2_state_t state);

#endif
