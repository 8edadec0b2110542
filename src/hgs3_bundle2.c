/* hgs3_bundle2.c: incremental detector of hgweb error bundles.
 *
 * A push parser: each stage either collects a fixed number of bytes into
 * det->buf or skips a number of bytes, and finish_stage() acts on them once
 * they are all there. So the input may be split anywhere. The layout and
 * the checks mirror Mercurial 6.3's bundle2.py reader (unbundle20,
 * unbundlepart._readheader, decodepayloadchunks, interrupthandler), and
 * RFC 8878 for the zstd frames (see hgs3_bundle2.h). */
#include <string.h>
#include <apr_cstr.h>

#include "hgs3_bundle2.h"

#define MEDIA_TYPE_V2    "application/mercurial-0.2"
#define INT32_LEN        4
#define PART_ID_LEN      4
#define PARAM_COUNTS_LEN 2
#define FLAG_INTERRUPT   (-1)

/* RFC 8878 */
#define ZS_MAGIC            0xFD2FB528u
#define ZS_SKIPPABLE_MAGIC  0x184D2A50u /* low 4 bits free */
#define ZS_SKIPPABLE_MASK   0xFFFFFFF0u
#define ZS_BLOCK_HEADER_LEN 3
#define ZS_CHECKSUM_LEN     4
#define ZS_BLOCK_SIZE_MAX   (128 * 1024)
#define ZS_MIN_CBLOCK_SIZE  2 /* literals header + sequences header */
#define ZS_RAW              0
#define ZS_RLE              1
#define ZS_COMPRESSED       2
/* Frame_Header_Descriptor bits */
#define ZS_FHD_SINGLE_SEGMENT 0x20
#define ZS_FHD_RESERVED       0x08
#define ZS_FHD_CHECKSUM       0x04

enum {
    ST_ENGINE_LEN,     /* uint8 length of the engine name */
    ST_ENGINE,         /* engine name */
    ST_MAGIC,          /* "HG20" */
    ST_PARAMS_SIZE,    /* int32 stream params size */
    ST_PARAMS,         /* stream params */
    ST_PART_SIZE,      /* int32 part header size, 0 = end of stream */
    ST_TYPE_LEN,       /* uint8 part type size */
    ST_TYPE,           /* part type */
    ST_PART_ID,        /* skip: uint32 part id */
    ST_COUNTS,         /* uint8 mandatory, uint8 advisory param counts */
    ST_SIZES,          /* uint8 key size, uint8 value size, per param */
    ST_HEADER_REST,    /* skip: param keys and values (and any slack) */
    ST_CHUNK_SIZE,     /* int32 payload chunk size, 0 = end, -1 = interrupt */
    ST_CHUNK_DATA,     /* skip: payload chunk */
    ST_INTERRUPT_SIZE, /* int32 header size of an interrupt part, 0 = none */
    /* zstd stages last: finish_stage() relies on it */
    ST_ZS_MAGIC,      /* zstd: uint32le frame magic, at a frame boundary */
    ST_ZS_SKIP_SIZE,  /* uint32le size of a skippable frame */
    ST_ZS_SKIP_DATA,  /* skip: skippable frame content */
    ST_ZS_DESCRIPTOR, /* Frame_Header_Descriptor */
    ST_ZS_HEADER,     /* window descriptor, dictionary id, content size */
    ST_ZS_BLOCK,      /* 3-byte block header */
    ST_ZS_BLOCK_DATA, /* skip: block content */
    ST_ZS_CHECKSUM    /* skip: content checksum */
};

static int is_skip_stage(int stage)
{
    return stage == ST_PART_ID || stage == ST_HEADER_REST || stage == ST_CHUNK_DATA ||
           stage == ST_ZS_SKIP_DATA || stage == ST_ZS_BLOCK_DATA || stage == ST_ZS_CHECKSUM;
}

static void collect(hgs3_bundle2 *det, int stage, apr_size_t want)
{
    det->stage = stage;
    det->want = want;
    det->have = 0;
}

static void skip(hgs3_bundle2 *det, int stage, apr_uint32_t n)
{
    det->stage = stage;
    det->skip = n;
}

static void decide(hgs3_bundle2 *det, hgs3_bundle2_state_t state)
{
    det->state = state;
}

/* Big-endian signed int32, as Mercurial's struct '>i'. */
static apr_int64_t be32(const unsigned char *b)
{
    apr_uint32_t u = ((apr_uint32_t)b[0] << 24) | ((apr_uint32_t)b[1] << 16) |
                     ((apr_uint32_t)b[2] << 8) | (apr_uint32_t)b[3];
    return u >= 0x80000000u ? (apr_int64_t)u - 0x100000000LL : (apr_int64_t)u;
}

/* Little-endian unsigned integer of n <= 8 bytes, as zstd writes them. */
static apr_uint64_t le(const unsigned char *b, apr_size_t n)
{
    apr_uint64_t v = 0;
    while (n-- > 0) {
        v = (v << 8) | b[n];
    }
    return v;
}

static int bytes_eq(const unsigned char *a, apr_size_t alen, const char *b)
{
    return alen == strlen(b) && memcmp(a, b, alen) == 0;
}

static int bytes_caseeq(const unsigned char *a, apr_size_t alen, const char *b)
{
    return alen == strlen(b) && apr_cstr_casecmpn((const char *)a, b, alen) == 0;
}

/* ASCII only, whatever the locale, as Python's bytes methods. */
static int ascii_upper(unsigned char c)
{
    return c >= 'A' && c <= 'Z';
}

static int ascii_letter(unsigned char c)
{
    return ascii_upper(c) || (c >= 'a' && c <= 'z');
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* urllib's unquote, in place; returns the new length. A '%' not followed
 * by two hex digits stays as it is. */
static apr_size_t unquote(unsigned char *s, apr_size_t len)
{
    apr_size_t i = 0, o = 0;
    while (i < len) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            s[o++] = (unsigned char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 3;
        } else {
            s[o++] = s[i++];
        }
    }
    return o;
}

enum { PARAMS_OTHER, PARAMS_PLAIN, PARAMS_ZSTD, PARAMS_OPAQUE, PARAMS_BAD };

/* One "name[=value]" stream parameter, as unbundle20._processparam: the
 * name must start with a letter; "compression" (any case) must name a
 * bundle compression Mercurial knows (PLAIN for "UN", ZSTD for "ZS",
 * OPAQUE for zlib and bzip2); other names starting with an upper case
 * letter are unknown mandatory parameters the client aborts on (BAD);
 * lower case ones are ignored. */
static int check_param(unsigned char *tok, apr_size_t len)
{
    unsigned char *eq = memchr(tok, '=', len);
    apr_size_t nlen = eq ? (apr_size_t)(eq - tok) : len;
    unsigned char *value = eq ? eq + 1 : NULL;
    apr_size_t vlen = eq ? len - nlen - 1 : 0;

    nlen = unquote(tok, nlen);
    if (nlen == 0 || !ascii_letter(tok[0])) {
        return PARAMS_BAD;
    }
    if (bytes_caseeq(tok, nlen, "compression")) {
        if (!value) {
            return PARAMS_BAD;
        }
        vlen = unquote(value, vlen);
        if (bytes_eq(value, vlen, "UN")) {
            return PARAMS_PLAIN;
        }
        if (bytes_eq(value, vlen, "ZS")) {
            return PARAMS_ZSTD;
        }
        if (bytes_eq(value, vlen, "BZ") || bytes_eq(value, vlen, "GZ") ||
            bytes_eq(value, vlen, "_truncatedBZ")) {
            return PARAMS_OPAQUE;
        }
        return PARAMS_BAD;
    }
    return ascii_upper(tok[0]) ? PARAMS_BAD : PARAMS_OTHER;
}

static int check_params(unsigned char *block, apr_size_t len)
{
    int result = PARAMS_PLAIN;
    apr_size_t start = 0, i;

    for (i = 0; i <= len; ++i) {
        if (i == len || block[i] == ' ') {
            int r = check_param(block + start, i - start);
            if (r == PARAMS_BAD) {
                return PARAMS_BAD;
            }
            if (r != PARAMS_OTHER) {
                result = r; /* the last "compression" wins, as in Mercurial */
            }
            start = i + 1;
        }
    }
    return result;
}

/* A part header of size n begins (top-level or interrupt part). */
static void start_part(hgs3_bundle2 *det, apr_int64_t n)
{
    det->header_left = (apr_uint32_t)n;
    collect(det, ST_TYPE_LEN, 1);
}

/* A zstd stream begins: the wire payload after the engine name, or the
 * parts of a bundle with "Compression=ZS". First-part mode clears it at
 * once (it is blind to mid-stream failures anyway). */
static void start_zstd(hgs3_bundle2 *det)
{
    if (det->flags & HGS3_BUNDLE2_FIRST_PART) {
        decide(det, HGS3_BUNDLE2_OK);
        return;
    }
    det->zs.frames = 0;
    collect(det, ST_ZS_MAGIC, 4);
}

/* Frame header fields after the descriptor: window descriptor (absent in
 * single-segment frames), dictionary id (0, 1, 2 or 4 bytes), frame
 * content size (0 or 1 byte when single segment, then 2, 4 or 8). */
static apr_size_t zs_did_len(unsigned d)
{
    static const apr_size_t len[4] = {0, 1, 2, 4};
    return len[d & 3];
}

static apr_size_t zs_fcs_len(unsigned d)
{
    static const apr_size_t len[4] = {0, 2, 4, 8};
    return (d >> 6) == 0 ? ((d & ZS_FHD_SINGLE_SEGMENT) ? 1 : 0) : len[d >> 6];
}

/* The frame header is in: check it and work out the block size limit. */
static void zs_header(hgs3_bundle2 *det)
{
    const unsigned char *b = det->buf;
    unsigned d = det->zs.descriptor;
    apr_size_t fcs_len = zs_fcs_len(d);
    apr_uint64_t window = 0;

    if (!(d & ZS_FHD_SINGLE_SEGMENT)) {
        unsigned wlog = 10 + (b[0] >> 3);
        apr_uint64_t base = (apr_uint64_t)1 << wlog;
        window = base + (base >> 3) * (b[0] & 7);
        ++b;
    }
    /* A dictionary the client does not have: "Dictionary mismatch". */
    if (le(b, zs_did_len(d)) != 0) {
        decide(det, HGS3_BUNDLE2_MALFORMED);
        return;
    }
    b += zs_did_len(d);
    det->zs.has_size = fcs_len > 0;
    det->zs.content_size = le(b, fcs_len) + (fcs_len == 2 ? 256 : 0);
    if (d & ZS_FHD_SINGLE_SEGMENT) {
        window = det->zs.content_size;
    }
    if (window > HGS3_BUNDLE2_ZSTD_MAX_WINDOW) {
        decide(det, HGS3_BUNDLE2_MALFORMED);
        return;
    }
    det->zs.block_max = window < ZS_BLOCK_SIZE_MAX ? (apr_uint32_t)window : ZS_BLOCK_SIZE_MAX;
    det->zs.plain = 0;
    det->zs.compressed = 0;
    collect(det, ST_ZS_BLOCK, ZS_BLOCK_HEADER_LEN);
}

/* A block header is in. Its size is the content size for raw and
 * compressed blocks, the regenerated size for RLE (1 byte of content);
 * either is bounded by the block size limit. Raw and RLE blocks regenerate
 * exactly their size, so they cannot exceed a declared content size. */
static void zs_block(hgs3_bundle2 *det)
{
    apr_uint32_t h = (apr_uint32_t)le(det->buf, ZS_BLOCK_HEADER_LEN);
    unsigned type = (h >> 1) & 3;
    apr_uint32_t size = h >> 3;

    det->zs.last = h & 1;
    if (size > det->zs.block_max) {
        decide(det, HGS3_BUNDLE2_MALFORMED);
        return;
    }
    switch (type) {
    case ZS_RAW:
    case ZS_RLE:
        det->zs.plain += size;
        if (det->zs.has_size && det->zs.plain > det->zs.content_size) {
            decide(det, HGS3_BUNDLE2_MALFORMED);
            return;
        }
        skip(det, ST_ZS_BLOCK_DATA, type == ZS_RLE ? 1 : size);
        break;
    case ZS_COMPRESSED:
        if (size < ZS_MIN_CBLOCK_SIZE) {
            decide(det, HGS3_BUNDLE2_MALFORMED);
            return;
        }
        det->zs.compressed = 1;
        skip(det, ST_ZS_BLOCK_DATA, size);
        break;
    default: /* reserved */
        decide(det, HGS3_BUNDLE2_MALFORMED);
    }
}

/* A block's content has gone by. After the last block of a frame come the
 * optional checksum and the next frame or the end of the body. */
static void zs_block_done(hgs3_bundle2 *det)
{
    if (!det->zs.last) {
        collect(det, ST_ZS_BLOCK, ZS_BLOCK_HEADER_LEN);
        return;
    }
    if (det->zs.has_size && !det->zs.compressed && det->zs.plain != det->zs.content_size) {
        decide(det, HGS3_BUNDLE2_MALFORMED);
        return;
    }
    det->zs.frames++;
    if (det->zs.descriptor & ZS_FHD_CHECKSUM) {
        skip(det, ST_ZS_CHECKSUM, ZS_CHECKSUM_LEN);
    } else {
        collect(det, ST_ZS_MAGIC, 4);
    }
}

/* The stages of a zstd stream. */
static void finish_zstd_stage(hgs3_bundle2 *det)
{
    const unsigned char *b = det->buf;
    apr_uint32_t magic;

    switch (det->stage) {
    case ST_ZS_MAGIC:
        magic = (apr_uint32_t)le(b, 4);
        if (magic == ZS_MAGIC) {
            collect(det, ST_ZS_DESCRIPTOR, 1);
        } else if ((magic & ZS_SKIPPABLE_MASK) == ZS_SKIPPABLE_MAGIC && det->zs.frames > 0) {
            /* (before any frame, Mercurial's reader would stop there) */
            collect(det, ST_ZS_SKIP_SIZE, 4);
        } else {
            decide(det, HGS3_BUNDLE2_MALFORMED);
        }
        break;
    case ST_ZS_SKIP_SIZE:
        skip(det, ST_ZS_SKIP_DATA, (apr_uint32_t)le(b, 4));
        break;
    case ST_ZS_SKIP_DATA:
    case ST_ZS_CHECKSUM:
        collect(det, ST_ZS_MAGIC, 4);
        break;
    case ST_ZS_DESCRIPTOR:
        det->zs.descriptor = b[0];
        if (b[0] & ZS_FHD_RESERVED) {
            decide(det, HGS3_BUNDLE2_MALFORMED);
            break;
        }
        collect(det, ST_ZS_HEADER,
                ((b[0] & ZS_FHD_SINGLE_SEGMENT) ? 0 : 1) + zs_did_len(b[0]) + zs_fcs_len(b[0]));
        break;
    case ST_ZS_HEADER:
        zs_header(det);
        break;
    case ST_ZS_BLOCK:
        zs_block(det);
        break;
    case ST_ZS_BLOCK_DATA:
        zs_block_done(det);
        break;
    default:
        decide(det, HGS3_BUNDLE2_MALFORMED);
    }
}

/* The engine name of a v2 body is in. */
static void stream_engine(hgs3_bundle2 *det)
{
    const unsigned char *b = det->buf;

    if (bytes_eq(b, det->want, "none")) {
        collect(det, ST_MAGIC, 4);
    } else if (bytes_eq(b, det->want, "zstd")) {
        start_zstd(det);
    } else if (bytes_eq(b, det->want, "zlib") || bytes_eq(b, det->want, "bzip2")) {
        decide(det, HGS3_BUNDLE2_OPAQUE);
    } else {
        decide(det, HGS3_BUNDLE2_MALFORMED);
    }
}

/* The stream parameters are in: a compression parameter may say the rest
 * cannot be read. */
static void stream_params(hgs3_bundle2 *det)
{
    switch (det->want ? check_params(det->buf, det->want) : PARAMS_PLAIN) {
    case PARAMS_PLAIN:
    case PARAMS_OTHER:
        collect(det, ST_PART_SIZE, INT32_LEN);
        break;
    case PARAMS_ZSTD:
        start_zstd(det);
        break;
    case PARAMS_OPAQUE:
        decide(det, HGS3_BUNDLE2_OPAQUE);
        break;
    default:
        decide(det, HGS3_BUNDLE2_MALFORMED);
    }
}

/* The stages of the stream header: engine, magic, stream parameters. */
static void finish_stream_stage(hgs3_bundle2 *det)
{
    const unsigned char *b = det->buf;
    apr_int64_t v;

    switch (det->stage) {
    case ST_ENGINE_LEN:
        if (b[0] == 0) {
            decide(det, HGS3_BUNDLE2_MALFORMED);
            break;
        }
        collect(det, ST_ENGINE, b[0]);
        break;
    case ST_ENGINE:
        stream_engine(det);
        break;
    case ST_MAGIC:
        if (bytes_eq(b, 4, "HG20")) {
            collect(det, ST_PARAMS_SIZE, INT32_LEN);
        } else {
            decide(det, HGS3_BUNDLE2_MALFORMED);
        }
        break;
    case ST_PARAMS_SIZE:
        v = be32(b);
        if (v < 0 || v > HGS3_BUNDLE2_MAX_PARAMS) {
            decide(det, HGS3_BUNDLE2_MALFORMED);
            break;
        }
        collect(det, ST_PARAMS, (apr_size_t)v);
        break;
    default: /* ST_PARAMS */
        stream_params(det);
    }
}

/* A part header size is in: 0 ends the stream (or, after an interrupt
 * flag, says no part follows). */
static void part_size(hgs3_bundle2 *det)
{
    apr_int64_t v = be32(det->buf);
    int interrupt = det->stage == ST_INTERRUPT_SIZE;

    if (v < 0 || (interrupt && v > 0 && det->depth >= HGS3_BUNDLE2_MAX_DEPTH)) {
        decide(det, HGS3_BUNDLE2_MALFORMED);
    } else if (v == 0 && interrupt) {
        collect(det, ST_CHUNK_SIZE, INT32_LEN); /* no part after all */
    } else if (v == 0) {
        decide(det, HGS3_BUNDLE2_OK); /* end of stream */
    } else {
        det->depth += interrupt;
        start_part(det, v);
    }
}

/* The part type is in: the one thing this parser is after. */
static void part_type(hgs3_bundle2 *det)
{
    det->header_left -= (apr_uint32_t)det->want;
    if (det->want >= 6 && apr_cstr_casecmpn((const char *)det->buf, "error:", 6) == 0) {
        decide(det, HGS3_BUNDLE2_ERROR);
    } else if (det->flags & HGS3_BUNDLE2_FIRST_PART) {
        decide(det, HGS3_BUNDLE2_OK);
    } else {
        det->header_left -= PART_ID_LEN;
        skip(det, ST_PART_ID, PART_ID_LEN);
    }
}

/* The parameter sizes are in: they must fit in the header. */
static void part_param_sizes(hgs3_bundle2 *det)
{
    apr_size_t i;

    det->header_left -= 2 * det->nparams;
    det->param_bytes = 0;
    for (i = 0; i < det->want; ++i) {
        det->param_bytes += det->buf[i];
    }
    if (det->param_bytes > det->header_left) {
        decide(det, HGS3_BUNDLE2_MALFORMED);
        return;
    }
    /* Keys, values and any slack: Mercurial ignores the latter too. */
    skip(det, ST_HEADER_REST, det->header_left);
}

/* The stages of a part header. */
static void finish_part_stage(hgs3_bundle2 *det)
{
    const unsigned char *b = det->buf;

    switch (det->stage) {
    case ST_PART_SIZE:
    case ST_INTERRUPT_SIZE:
        part_size(det);
        break;
    case ST_TYPE_LEN:
        det->header_left -= 1;
        if (det->header_left < (apr_uint32_t)b[0] + PART_ID_LEN + PARAM_COUNTS_LEN) {
            decide(det, HGS3_BUNDLE2_MALFORMED);
            break;
        }
        collect(det, ST_TYPE, b[0]);
        break;
    case ST_TYPE:
        part_type(det);
        break;
    case ST_PART_ID:
        collect(det, ST_COUNTS, PARAM_COUNTS_LEN);
        break;
    case ST_COUNTS:
        det->header_left -= PARAM_COUNTS_LEN;
        det->nparams = (unsigned)b[0] + b[1];
        if (det->header_left < 2 * det->nparams) {
            decide(det, HGS3_BUNDLE2_MALFORMED);
            break;
        }
        collect(det, ST_SIZES, 2 * det->nparams);
        break;
    case ST_SIZES:
        part_param_sizes(det);
        break;
    default:
        decide(det, HGS3_BUNDLE2_MALFORMED);
    }
}

/* A payload chunk size is in: a chunk, an interrupt part, or the end of
 * the payload (of an interrupt part, then back to the outer payload). */
static void chunk_size(hgs3_bundle2 *det)
{
    apr_int64_t v = be32(det->buf);

    if (v > 0) {
        skip(det, ST_CHUNK_DATA, (apr_uint32_t)v);
    } else if (v == FLAG_INTERRUPT) {
        collect(det, ST_INTERRUPT_SIZE, INT32_LEN);
    } else if (v < 0) {
        decide(det, HGS3_BUNDLE2_MALFORMED);
    } else if (det->depth > 0) {
        det->depth--;
        collect(det, ST_CHUNK_SIZE, INT32_LEN);
    } else {
        collect(det, ST_PART_SIZE, INT32_LEN);
    }
}

/* The bytes of the current stage are all there: act on them. */
static void finish_stage(hgs3_bundle2 *det)
{
    switch (det->stage) {
    case ST_ENGINE_LEN:
    case ST_ENGINE:
    case ST_MAGIC:
    case ST_PARAMS_SIZE:
    case ST_PARAMS:
        finish_stream_stage(det);
        break;
    case ST_HEADER_REST:
    case ST_CHUNK_DATA:
        collect(det, ST_CHUNK_SIZE, INT32_LEN);
        break;
    case ST_CHUNK_SIZE:
        chunk_size(det);
        break;
    default:
        if (det->stage >= ST_ZS_MAGIC) {
            finish_zstd_stage(det);
        } else {
            finish_part_stage(det);
        }
    }
}

static int stage_complete(const hgs3_bundle2 *det)
{
    return is_skip_stage(det->stage) ? det->skip == 0 : det->have == det->want;
}

static int media_type_is(const char *media_type, const char *expected)
{
    apr_size_t n = strlen(expected);
    if (!media_type || apr_cstr_casecmpn(media_type, expected, n) != 0) {
        return 0;
    }
    media_type += n;
    while (*media_type == ' ' || *media_type == '\t') {
        ++media_type;
    }
    return *media_type == '\0' || *media_type == ';';
}

hgs3_bundle2_state_t hgs3_bundle2_init(hgs3_bundle2 *det, const char *media_type)
{
    return hgs3_bundle2_init_ex(det, media_type, 0);
}

hgs3_bundle2_state_t hgs3_bundle2_init_ex(hgs3_bundle2 *det, const char *media_type, int flags)
{
    memset(det, 0, sizeof(*det));
    det->flags = flags;
    det->state = HGS3_BUNDLE2_NEED_MORE;
    collect(det, ST_ENGINE_LEN, 1);
    if (!media_type_is(media_type, MEDIA_TYPE_V2)) {
        decide(det, HGS3_BUNDLE2_OPAQUE);
    }
    return det->state;
}

hgs3_bundle2_state_t hgs3_bundle2_feed(hgs3_bundle2 *det, const void *data, apr_size_t len)
{
    const unsigned char *p = data;

    while (det->state == HGS3_BUNDLE2_NEED_MORE && len > 0) {
        apr_size_t n;
        if (is_skip_stage(det->stage)) {
            n = len < det->skip ? len : det->skip;
            det->skip -= (apr_uint32_t)n;
        } else {
            n = det->want - det->have;
            n = len < n ? len : n;
            memcpy(det->buf + det->have, p, n);
            det->have += n;
        }
        p += n;
        len -= n;
        det->fed += (apr_off_t)n;
        /* Stages wanting zero bytes complete at once, hence the loop. */
        while (det->state == HGS3_BUNDLE2_NEED_MORE && stage_complete(det)) {
            finish_stage(det);
        }
    }
    return det->state;
}

hgs3_bundle2_state_t hgs3_bundle2_state(const hgs3_bundle2 *det)
{
    return det->state;
}

/* A zstd stream is whole when the body ends at a frame boundary, after at
 * least one frame. */
hgs3_bundle2_state_t hgs3_bundle2_state_at_eos(const hgs3_bundle2 *det)
{
    if (det->state != HGS3_BUNDLE2_NEED_MORE) {
        return det->state;
    }
    if (det->stage == ST_ZS_MAGIC && det->have == 0 && det->zs.frames > 0) {
        return HGS3_BUNDLE2_OK;
    }
    return HGS3_BUNDLE2_MALFORMED;
}

apr_off_t hgs3_bundle2_consumed(const hgs3_bundle2 *det)
{
    return det->fed;
}

const char *hgs3_bundle2_state_name(hgs3_bundle2_state_t state)
{
    switch (state) {
    case HGS3_BUNDLE2_NEED_MORE:
        return "need-more";
    case HGS3_BUNDLE2_OK:
        return "ok";
    case HGS3_BUNDLE2_ERROR:
        return "error-bundle";
    case HGS3_BUNDLE2_MALFORMED:
        return "malformed-bundle";
    case HGS3_BUNDLE2_OPAQUE:
        return "opaque-body";
    }
    return "unknown";
}
