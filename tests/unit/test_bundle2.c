/* test_bundle2.c: the error-bundle detector, on bodies captured from hgweb
 * (whole ones, and ones whose generation failed mid-way) and bodies written
 * by Mercurial's bundle2 and zstd code (tests/unit/data), fed whole, one
 * byte at a time and split at every offset; and on hand-made bundles and
 * zstd frames. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>

#include "hgs3_bundle2.h"

#ifndef HGS3_TEST_DATA
#define HGS3_TEST_DATA "tests/unit/data"
#endif

#define V2    "application/mercurial-0.2"
#define V1    "application/mercurial-0.1"
#define WALK  0
#define FIRST HGS3_BUNDLE2_FIRST_PART

typedef struct {
    unsigned char *data;
    size_t len;
} body;

static body load(const char *name)
{
    char path[512];
    body b = {NULL, 0};
    FILE *fp;
    long n;

    snprintf(path, sizeof(path), "%s/%s", HGS3_TEST_DATA, name);
    fp = fopen(path, "rb");
    if (!fp) {
        fail_msg("cannot open %s", path);
    }
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    b.data = malloc((size_t)n + 1);
    b.len = fread(b.data, 1, (size_t)n, fp);
    fclose(fp);
    assert_int_equal(b.len, (size_t)n);
    return b;
}

/* Verdict at EOS for the body fed as pieces of at most `piece` bytes. */
static hgs3_bundle2_state_t verdict_pieces(const char *mt, int flags, const unsigned char *d,
                                           size_t n, size_t piece)
{
    hgs3_bundle2 det;
    size_t off = 0;
    hgs3_bundle2_init_ex(&det, mt, flags);
    while (off < n) {
        size_t k = n - off < piece ? n - off : piece;
        hgs3_bundle2_feed(&det, d + off, k);
        off += k;
    }
    return hgs3_bundle2_state_at_eos(&det);
}

/* Verdict for the body fed in two pieces split at `at`. */
static hgs3_bundle2_state_t verdict_split(const char *mt, int flags, const unsigned char *d,
                                          size_t n, size_t at)
{
    hgs3_bundle2 det;
    hgs3_bundle2_init_ex(&det, mt, flags);
    hgs3_bundle2_feed(&det, d, at);
    hgs3_bundle2_feed(&det, d + at, n - at);
    return hgs3_bundle2_state_at_eos(&det);
}

static hgs3_bundle2_state_t verdict(const char *mt, int flags, const unsigned char *d, size_t n)
{
    return verdict_pieces(mt, flags, d, n, n ? n : 1);
}

/* Whole, one byte at a time, in 7-byte pieces and split at every offset:
 * all must give the expected verdict. */
static void check_all_ways(const char *name, const char *mt, int flags,
                           hgs3_bundle2_state_t expected)
{
    body b = load(name);
    size_t at;

    if (verdict(mt, flags, b.data, b.len) != expected) {
        fail_msg("%s (flags %d): whole body gave %s, expected %s", name, flags,
                 hgs3_bundle2_state_name(verdict(mt, flags, b.data, b.len)),
                 hgs3_bundle2_state_name(expected));
    }
    assert_int_equal(verdict_pieces(mt, flags, b.data, b.len, 1), expected);
    assert_int_equal(verdict_pieces(mt, flags, b.data, b.len, 7), expected);
    for (at = 0; at <= b.len; ++at) {
        if (verdict_split(mt, flags, b.data, b.len, at) != expected) {
            fail_msg("%s: split at %zu gave a different verdict", name, at);
        }
    }
    free(b.data);
}

static void test_hgweb_error_abort(void **state)
{
    body b = load("hgweb-error-abort.bin");
    hgs3_bundle2 det;
    size_t i;
    (void)state;

    /* "\x04none" "HG20" params-size(0) part-size typelen "ERROR:ABORT" */
    assert_memory_equal(b.data + 18, "ERROR:ABORT", 11);
    check_all_ways("hgweb-error-abort.bin", V2, WALK, HGS3_BUNDLE2_ERROR);
    check_all_ways("hgweb-error-abort.bin", V2, FIRST, HGS3_BUNDLE2_ERROR);

    /* decided on the part type, not later, and one byte at a time */
    assert_int_equal(hgs3_bundle2_init(&det, V2), HGS3_BUNDLE2_NEED_MORE);
    for (i = 0; i < b.len; ++i) {
        hgs3_bundle2_state_t st = hgs3_bundle2_feed(&det, b.data + i, 1);
        assert_int_equal(st, i < 28 ? HGS3_BUNDLE2_NEED_MORE : HGS3_BUNDLE2_ERROR);
        assert_int_equal(hgs3_bundle2_state(&det), st);
    }
    assert_int_equal(hgs3_bundle2_consumed(&det), 29);
    assert_int_equal(hgs3_bundle2_state_at_eos(&det), HGS3_BUNDLE2_ERROR);
    free(b.data);
}

static void test_other_error_parts(void **state)
{
    (void)state;
    /* advisory part: the type is sent lower-case */
    check_all_ways("synth-error-lower.bin", V2, WALK, HGS3_BUNDLE2_ERROR);
    check_all_ways("synth-error-lower.bin", V2, FIRST, HGS3_BUNDLE2_ERROR);
    check_all_ways("synth-error-pushraced.bin", V2, WALK, HGS3_BUNDLE2_ERROR);
    check_all_ways("synth-error-compression-un.bin", V2, WALK, HGS3_BUNDLE2_ERROR);
    check_all_ways("synth-error-compression-un.bin", V2, FIRST, HGS3_BUNDLE2_ERROR);
}

/* Errors after the first part are only seen when walking the stream. */
static void test_later_errors(void **state)
{
    (void)state;
    check_all_ways("synth-error-second.bin", V2, WALK, HGS3_BUNDLE2_ERROR);
    check_all_ways("synth-error-second.bin", V2, FIRST, HGS3_BUNDLE2_OK);
    check_all_ways("synth-interrupted.bin", V2, WALK, HGS3_BUNDLE2_ERROR);
    check_all_ways("synth-interrupted.bin", V2, FIRST, HGS3_BUNDLE2_OK);
}

static void test_none_engine_ok(void **state)
{
    static const char *const ok[] = {
        "hgweb-full-none.bin", "hgweb-stream-none.bin",       "synth-ok-parts.bin",
        "synth-ok-empty.bin",  "synth-ok-advisory-param.bin",
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); ++i) {
        check_all_ways(ok[i], V2, WALK, HGS3_BUNDLE2_OK);
        check_all_ways(ok[i], V2, FIRST, HGS3_BUNDLE2_OK);
    }
}

/* Walking, OK comes with the end-of-stream marker, the body's last byte. */
static void test_walk_decides_at_end(void **state)
{
    static const char *const names[] = {"hgweb-full-none.bin", "hgweb-stream-none.bin",
                                        "synth-ok-parts.bin"};
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        body b = load(names[i]);
        hgs3_bundle2 det;
        hgs3_bundle2_init(&det, V2);
        assert_int_equal(hgs3_bundle2_feed(&det, b.data, b.len - 1), HGS3_BUNDLE2_NEED_MORE);
        assert_int_equal(hgs3_bundle2_feed(&det, b.data + b.len - 1, 1), HGS3_BUNDLE2_OK);
        assert_int_equal(hgs3_bundle2_consumed(&det), (apr_off_t)b.len);
        /* bytes after the end marker are ignored, as Mercurial does */
        assert_int_equal(hgs3_bundle2_feed(&det, "junk", 4), HGS3_BUNDLE2_OK);
        assert_int_equal(hgs3_bundle2_consumed(&det), (apr_off_t)b.len);
        free(b.data);
    }
}

/* zlib and bzip2 cannot be checked for completeness without inflating:
 * never cleared, in either mode. */
static void test_opaque_engines(void **state)
{
    static const unsigned char bz[] = "\x05"
                                      "bzip2BZh91AY&SY";
    hgs3_bundle2 det;
    (void)state;

    check_all_ways("hgweb-full-zlib.bin", V2, WALK, HGS3_BUNDLE2_OPAQUE);
    check_all_ways("hgweb-full-zlib.bin", V2, FIRST, HGS3_BUNDLE2_OPAQUE);
    assert_int_equal(verdict(V2, WALK, bz, sizeof(bz) - 1), HGS3_BUNDLE2_OPAQUE);
    assert_int_equal(verdict(V2, FIRST, bz, sizeof(bz) - 1), HGS3_BUNDLE2_OPAQUE);
    /* decided on the engine name alone */
    hgs3_bundle2_init(&det, V2);
    assert_int_equal(hgs3_bundle2_feed(&det, "\x04zlib", 5), HGS3_BUNDLE2_OPAQUE);
    assert_int_equal(hgs3_bundle2_consumed(&det), 5);
    /* bundles compressed inside with bzip2 or zlib (pullbundles) */
    check_all_ways("synth-ok-compressed-param.bin", V2, WALK, HGS3_BUNDLE2_OPAQUE);
    check_all_ways("synth-ok-compressed-param.bin", V2, FIRST, HGS3_BUNDLE2_OPAQUE);
}

/* A real zstd reply from hgweb: OK only at EOS, and only when whole. */
static void test_zstd_hgweb(void **state)
{
    static const char *const ok[] = {"hgweb-zstd-ok.bin", "hgweb-full-zstd.bin"};
    size_t i, k;
    (void)state;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); ++i) {
        body b = load(ok[i]);
        hgs3_bundle2 det;

        check_all_ways(ok[i], V2, WALK, HGS3_BUNDLE2_OK);
        check_all_ways(ok[i], V2, FIRST, HGS3_BUNDLE2_OK);
        /* no verdict while it streams: the whole body is consumed */
        hgs3_bundle2_init(&det, V2);
        assert_int_equal(hgs3_bundle2_feed(&det, b.data, b.len), HGS3_BUNDLE2_NEED_MORE);
        assert_int_equal(hgs3_bundle2_state(&det), HGS3_BUNDLE2_NEED_MORE);
        assert_int_equal(hgs3_bundle2_consumed(&det), (apr_off_t)b.len);
        assert_int_equal(hgs3_bundle2_state_at_eos(&det), HGS3_BUNDLE2_OK);
        /* cut anywhere: never cleared */
        for (k = 0; k < b.len; ++k) {
            if (verdict(V2, WALK, b.data, k) != HGS3_BUNDLE2_MALFORMED) {
                fail_msg("%s cut at %zu was not refused", ok[i], k);
            }
        }
        free(b.data);
    }
}

/* hgweb (mod_wsgi) replies to a getbundle that failed mid-way: a
 * simulated read error after 300000 bytes of changegroup, and a revlog
 * cut in half. Both bodies end cleanly at a block boundary, without the
 * frame's last block: each is a prefix of the good reply. */
static void test_zstd_hgweb_failed(void **state)
{
    static const char *const failed[] = {"hgweb-zstd-failed.bin", "hgweb-zstd-corrupt.bin"};
    body ok = load("hgweb-zstd-ok.bin");
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(failed) / sizeof(failed[0]); ++i) {
        body b = load(failed[i]);
        hgs3_bundle2 det;

        assert_true(b.len > 5 && b.len < ok.len);
        assert_memory_equal(b.data, ok.data, b.len);
        check_all_ways(failed[i], V2, WALK, HGS3_BUNDLE2_MALFORMED);
        /* not refused before EOS: every block seen is well formed */
        hgs3_bundle2_init(&det, V2);
        assert_int_equal(hgs3_bundle2_feed(&det, b.data, b.len), HGS3_BUNDLE2_NEED_MORE);
        assert_int_equal(hgs3_bundle2_state_at_eos(&det), HGS3_BUNDLE2_MALFORMED);
        /* first-part mode is blind to it, as documented */
        check_all_ways(failed[i], V2, FIRST, HGS3_BUNDLE2_OK);
        free(b.data);
    }
    free(ok.data);
    /* the same failure with engine none carries the interrupt error part */
    check_all_ways("hgweb-none-failed.bin", V2, WALK, HGS3_BUNDLE2_ERROR);
    check_all_ways("hgweb-none-failed.bin", V2, FIRST, HGS3_BUNDLE2_OK);
}

/* Frames in the other shapes libzstd writes, whole and cut short. */
static void test_zstd_synthetic(void **state)
{
    static const char *const ok[] = {
        "synth-zstd-checksum.bin", "synth-zstd-raw.bin",    "synth-zstd-raw-sized.bin",
        "synth-zstd-rle.bin",      "synth-zstd-frames.bin", "synth-ok-zs-param.bin",
    };
    size_t i, k;
    (void)state;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); ++i) {
        body b = load(ok[i]);
        check_all_ways(ok[i], V2, WALK, HGS3_BUNDLE2_OK);
        check_all_ways(ok[i], V2, FIRST, HGS3_BUNDLE2_OK);
        for (k = 0; k < b.len; ++k) {
            hgs3_bundle2_state_t st = verdict(V2, WALK, b.data, k);
            /* synth-zstd-frames.bin: a first frame (bytes 5 to 52) and a
             * skippable frame (53 to 64) are whole on their own */
            if (st == HGS3_BUNDLE2_OK && strcmp(ok[i], "synth-zstd-frames.bin") == 0 &&
                (k == 53 || k == 65)) {
                continue;
            }
            if (st != HGS3_BUNDLE2_MALFORMED) {
                fail_msg("%s cut at %zu gave %s", ok[i], k, hgs3_bundle2_state_name(st));
            }
        }
        free(b.data);
    }
    /* Compression=ZS inside the bundle, generation failed: never finished */
    check_all_ways("synth-interrupted-zs-param.bin", V2, WALK, HGS3_BUNDLE2_MALFORMED);
}

/* hgweb-zstd-ok.bin followed by other bytes. */
static hgs3_bundle2_state_t ok_followed_by(const void *tail, size_t n)
{
    body b = load("hgweb-zstd-ok.bin");
    hgs3_bundle2 det;
    hgs3_bundle2_state_t st;

    hgs3_bundle2_init(&det, V2);
    hgs3_bundle2_feed(&det, b.data, b.len);
    hgs3_bundle2_feed(&det, tail, n);
    st = hgs3_bundle2_state_at_eos(&det);
    free(b.data);
    return st;
}

static void test_zstd_trailing(void **state)
{
    body small = load("hgweb-full-zstd.bin");
    (void)state;

    /* stray bytes after the frame */
    assert_int_equal(ok_followed_by("\0", 1), HGS3_BUNDLE2_MALFORMED);
    assert_int_equal(ok_followed_by("junk", 4), HGS3_BUNDLE2_MALFORMED);
    assert_int_equal(ok_followed_by("junkjunk", 8), HGS3_BUNDLE2_MALFORMED);
    assert_int_equal(ok_followed_by("\x28\xb5\x2f\xfd", 4), HGS3_BUNDLE2_MALFORMED);
    assert_int_equal(ok_followed_by("\x28\xb5\x2f", 3), HGS3_BUNDLE2_MALFORMED);
    /* a skippable frame, whole or not */
    assert_int_equal(ok_followed_by("\x50\x2a\x4d\x18\x02\0\0\0ab", 10), HGS3_BUNDLE2_OK);
    assert_int_equal(ok_followed_by("\x5f\x2a\x4d\x18\0\0\0\0", 8), HGS3_BUNDLE2_OK);
    assert_int_equal(ok_followed_by("\x50\x2a\x4d\x18\x03\0\0\0ab", 10), HGS3_BUNDLE2_MALFORMED);
    assert_int_equal(ok_followed_by("\x50\x2a\x4d\x18\x02\0\0", 7), HGS3_BUNDLE2_MALFORMED);
    /* another whole frame, or part of one */
    assert_int_equal(ok_followed_by(small.data + 5, small.len - 5), HGS3_BUNDLE2_OK);
    assert_int_equal(ok_followed_by(small.data + 5, small.len - 6), HGS3_BUNDLE2_MALFORMED);
    free(small.data);
}

/* ---- hand-made zstd frames ------------------------------------------ */

typedef struct {
    unsigned char b[8192];
    size_t n;
} zbuf;

static void zput(zbuf *x, const void *d, size_t n)
{
    assert_true(x->n + n <= sizeof(x->b));
    memcpy(x->b + x->n, d, n);
    x->n += n;
}

/* "\x04zstd", the frame magic, the descriptor and the header fields. */
static void zs_start(zbuf *x, unsigned char descriptor, const void *fields, size_t n)
{
    x->n = 0;
    zput(x, "\x04zstd\x28\xb5\x2f\xfd", 9);
    zput(x, &descriptor, 1);
    zput(x, fields, n);
}

static void zs_block(zbuf *x, int last, int type, unsigned long size, size_t content)
{
    unsigned long h = (size << 3) | ((unsigned long)type << 1) | (last ? 1u : 0u);
    unsigned char hb[3] = {(unsigned char)h, (unsigned char)(h >> 8), (unsigned char)(h >> 16)};
    static const unsigned char zeros[4096];
    zput(x, hb, 3);
    assert_true(content <= sizeof(zeros));
    zput(x, zeros, content);
}

static hgs3_bundle2_state_t zwalk(const zbuf *x)
{
    return verdict(V2, WALK, x->b, x->n);
}

/* descriptor 0x00: window descriptor 0x58 (2 MiB), no checksum */
#define WD_2M "\x58"

static void test_zstd_handmade(void **state)
{
    zbuf x;
    hgs3_bundle2 det;
    (void)state;

    /* sanity: raw, RLE and compressed blocks */
    zs_start(&x, 0x00, WD_2M, 1);
    zs_block(&x, 0, 0, 10, 10);
    zs_block(&x, 0, 1, 131072, 1);
    zs_block(&x, 1, 2, 40, 40);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);

    /* a reserved block type is refused at once */
    zs_start(&x, 0x00, WD_2M, 1);
    zs_block(&x, 0, 3, 10, 0);
    hgs3_bundle2_init(&det, V2);
    assert_int_equal(hgs3_bundle2_feed(&det, x.b, x.n), HGS3_BUNDLE2_MALFORMED);
    assert_int_equal(hgs3_bundle2_consumed(&det), (apr_off_t)x.n);

    /* the reserved descriptor bit; the unused one is ignored */
    zs_start(&x, 0x08, WD_2M, 1);
    zs_block(&x, 1, 0, 1, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    zs_start(&x, 0x10, WD_2M, 1);
    zs_block(&x, 1, 0, 1, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);

    /* blocks above 128 KiB, or above a smaller window */
    zs_start(&x, 0x00, WD_2M, 1);
    zs_block(&x, 1, 1, 131073, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    zs_start(&x, 0x00, "\x00", 1); /* 1 KiB window */
    zs_block(&x, 1, 1, 1024, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    zs_start(&x, 0x00, "\x00", 1);
    zs_block(&x, 1, 1, 1025, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    zs_start(&x, 0x00, "\x00", 1);
    zs_block(&x, 1, 2, 1025, 0);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    zs_start(&x, 0x00, "\x01", 1); /* 1 KiB + 1/8 */
    zs_block(&x, 1, 0, 1152, 1152);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);

    /* windows up to libzstd's default limit (2^27), not above */
    zs_start(&x, 0x00, "\x88", 1);
    zs_block(&x, 1, 0, 0, 0);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    zs_start(&x, 0x00, "\x89", 1);
    zs_block(&x, 1, 0, 0, 0);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    zs_start(&x, 0x00, "\xff", 1);
    zs_block(&x, 1, 0, 0, 0);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);

    /* compressed blocks have at least 2 bytes */
    zs_start(&x, 0x00, WD_2M, 1);
    zs_block(&x, 1, 2, 1, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    zs_start(&x, 0x00, WD_2M, 1);
    zs_block(&x, 1, 2, 2, 2);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);

    /* dictionary ids: 0 is no dictionary, anything else one the client lacks */
    zs_start(&x, 0x01, WD_2M "\x00", 2);
    zs_block(&x, 1, 0, 1, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    zs_start(&x, 0x03, WD_2M "\x00\x00\x00\x00", 5);
    zs_block(&x, 1, 0, 1, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    zs_start(&x, 0x02, WD_2M "\x00\x01", 3);
    zs_block(&x, 1, 0, 1, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);

    /* single segment: the content size is the window */
    zs_start(&x, 0x20, "\x05", 1);
    zs_block(&x, 1, 0, 5, 5);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    zs_start(&x, 0x20, "\x05", 1);
    zs_block(&x, 0, 0, 3, 3);
    zs_block(&x, 1, 1, 2, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    zs_start(&x, 0x20, "\x05", 1);
    zs_block(&x, 1, 0, 6, 6); /* above the window */
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    zs_start(&x, 0x20, "\x00", 1); /* empty content */
    zs_block(&x, 1, 0, 0, 0);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    /* raw and RLE blocks alone must add up to the content size */
    zs_start(&x, 0x20, "\x05", 1);
    zs_block(&x, 1, 0, 4, 4);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    zs_start(&x, 0x60, "\x04\x00", 2); /* 2-byte size: 256 + 4 */
    zs_block(&x, 1, 0, 260, 260);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    zs_start(&x, 0x40, WD_2M "\x04\x00", 3);
    zs_block(&x, 0, 0, 200, 200);
    zs_block(&x, 1, 0, 61, 61); /* 261 > 260 */
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    zs_start(&x, 0x80, WD_2M "\x10\x00\x00\x00", 5); /* 4-byte size 16 */
    zs_block(&x, 0, 0, 4, 4);
    zs_block(&x, 1, 2, 3, 3); /* a compressed block may make up the rest */
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    zs_start(&x, 0xc0, WD_2M "\x02\0\0\0\0\0\0\0", 9); /* 8-byte size */
    zs_block(&x, 1, 1, 2, 1);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);

    /* the checksum, whole or cut */
    zs_start(&x, 0x04, WD_2M, 1);
    zs_block(&x, 1, 0, 1, 1);
    zput(&x, "abcd", 4);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    x.n -= 1;
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    x.n -= 3;
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);

    /* frames that are not zstd frames, or no frame at all */
    x.n = 0;
    zput(&x, "\x04zstd", 5);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    zput(&x, "\x50\x2a\x4d\x18\0\0\0\0", 8); /* skippable first */
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    /* ... even before a whole frame: Mercurial's reader would stop there */
    zput(&x, "\x28\xb5\x2f\xfd\x00\x58\x01\x00\x00", 9);
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    memmove(x.b + 5, x.b + 13, 9); /* without it: fine */
    x.n -= 8;
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_OK);
    x.n = 0;
    zput(&x, "\x04zstd\x27\xb5\x2f\xfd", 9); /* legacy v0.7 magic */
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
    x.n = 0;
    zput(&x, "\x04zstd\x28\xb5\x2f\xfd\x00", 10); /* no window descriptor */
    assert_int_equal(zwalk(&x), HGS3_BUNDLE2_MALFORMED);
}

/* A large skippable frame is skipped without being buffered. */
static void test_zstd_large_skip(void **state)
{
    static unsigned char chunk[65536];
    body small = load("hgweb-full-zstd.bin");
    hgs3_bundle2 det;
    long total = 16L * 1024 * 1024;
    (void)state;

    hgs3_bundle2_init(&det, V2);
    hgs3_bundle2_feed(&det, small.data, small.len);
    assert_int_equal(hgs3_bundle2_feed(&det, "\x50\x2a\x4d\x18\x00\x00\x00\x01", 8),
                     HGS3_BUNDLE2_NEED_MORE);
    while (total > 0) {
        assert_int_equal(hgs3_bundle2_state_at_eos(&det), HGS3_BUNDLE2_MALFORMED);
        assert_int_equal(hgs3_bundle2_feed(&det, chunk, sizeof(chunk)), HGS3_BUNDLE2_NEED_MORE);
        total -= (long)sizeof(chunk);
    }
    assert_int_equal(hgs3_bundle2_state_at_eos(&det), HGS3_BUNDLE2_OK);
    free(small.data);
}

/* application/mercurial-0.1 is zlib throughout, errors included. */
static void test_media_types(void **state)
{
    hgs3_bundle2 det;
    (void)state;

    check_all_ways("hgweb-error-v01.bin", V1, WALK, HGS3_BUNDLE2_OPAQUE);
    check_all_ways("hgweb-full-v01.bin", V1, WALK, HGS3_BUNDLE2_OPAQUE);
    assert_int_equal(hgs3_bundle2_init(&det, V1), HGS3_BUNDLE2_OPAQUE);
    assert_int_equal(hgs3_bundle2_state_at_eos(&det), HGS3_BUNDLE2_OPAQUE);
    assert_int_equal(hgs3_bundle2_init(&det, NULL), HGS3_BUNDLE2_OPAQUE);
    assert_int_equal(hgs3_bundle2_init(&det, "application/hg-error"), HGS3_BUNDLE2_OPAQUE);
    assert_int_equal(hgs3_bundle2_init(&det, "application/mercurial-0.20"), HGS3_BUNDLE2_OPAQUE);
    assert_int_equal(hgs3_bundle2_init(&det, "application/mercurial-0.2x"), HGS3_BUNDLE2_OPAQUE);
    assert_int_equal(hgs3_bundle2_init(&det, "Application/Mercurial-0.2"), HGS3_BUNDLE2_NEED_MORE);
    assert_int_equal(hgs3_bundle2_init(&det, "application/mercurial-0.2; x=y"),
                     HGS3_BUNDLE2_NEED_MORE);
    /* an hgweb error body labelled 0.2 is still an error */
    {
        body b = load("hgweb-error-abort.bin");
        assert_int_equal(verdict("application/mercurial-0.2 ", WALK, b.data, b.len),
                         HGS3_BUNDLE2_ERROR);
        free(b.data);
    }
}

/* Every prefix of a body: cut before the verdict means MALFORMED. */
static void test_truncated(void **state)
{
    body ok = load("hgweb-full-none.bin");
    body err = load("hgweb-error-abort.bin");
    body stream = load("hgweb-stream-none.bin");
    size_t k;
    (void)state;

    for (k = 0; k < ok.len; ++k) {
        assert_int_equal(verdict(V2, WALK, ok.data, k), HGS3_BUNDLE2_MALFORMED);
        /* first-part mode: cleared once the first part type is in */
        assert_int_equal(verdict(V2, FIRST, ok.data, k),
                         k < 29 ? HGS3_BUNDLE2_MALFORMED : HGS3_BUNDLE2_OK);
    }
    for (k = 0; k < stream.len; ++k) {
        assert_int_equal(verdict(V2, WALK, stream.data, k), HGS3_BUNDLE2_MALFORMED);
    }
    for (k = 0; k <= err.len; ++k) {
        assert_int_equal(verdict(V2, WALK, err.data, k),
                         k < 29 ? HGS3_BUNDLE2_MALFORMED : HGS3_BUNDLE2_ERROR);
    }
    free(ok.data);
    free(err.data);
    free(stream.data);
}

/* ---- hand-made bundles ---------------------------------------------- */

typedef struct {
    unsigned char b[4096];
    size_t n;
} buf;

static void put(buf *x, const void *d, size_t n)
{
    assert_true(x->n + n <= sizeof(x->b));
    memcpy(x->b + x->n, d, n);
    x->n += n;
}

static void put_be32(buf *x, long v)
{
    unsigned long u = (unsigned long)v & 0xffffffffUL;
    unsigned char b[4] = {(unsigned char)(u >> 24), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 8), (unsigned char)u};
    put(x, b, 4);
}

/* "\x04none" "HG20" and the given stream params. */
static void put_start(buf *x, const char *params)
{
    x->n = 0;
    put(x, "\x04noneHG20", 9);
    put_be32(x, (long)strlen(params));
    put(x, params, strlen(params));
}

/* A part header with no params: size, typelen, type, id, 0, 0. */
static void put_part(buf *x, const char *type)
{
    unsigned char t = (unsigned char)strlen(type);
    put_be32(x, 1 + t + 4 + 2);
    put(x, &t, 1);
    put(x, type, t);
    put(x, "\0\0\0\0\0\0", 6);
}

static hgs3_bundle2_state_t walk(const buf *x)
{
    return verdict(V2, WALK, x->b, x->n);
}

static void test_garbage(void **state)
{
    static const char *const bodies[] = {
        "",               /* empty body */
        "\x00",           /* empty engine name */
        "hello world",    /* engine name of 104 bytes, never complete */
        "\x04none",       /* nothing after the engine */
        "\x04noneHG10UN", /* bundle1 magic */
        "\x04noneHG2",    /* short magic */
        "\x04nonxHG20",   /* unknown engine */
        "\x07unknownabc", /* unknown engine */
        "\x04NONEHG20",   /* engine names are case-sensitive */
    };
    unsigned char rnd[65536];
    unsigned x = 12345;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); ++i) {
        size_t n = strlen(bodies[i]);
        if (i == 1) {
            n = 1;
        }
        assert_int_equal(verdict(V2, WALK, (const unsigned char *)bodies[i], n),
                         HGS3_BUNDLE2_MALFORMED);
        assert_int_equal(verdict(V2, FIRST, (const unsigned char *)bodies[i], n),
                         HGS3_BUNDLE2_MALFORMED);
    }
    for (i = 0; i < sizeof(rnd); ++i) {
        x = x * 1103515245u + 12345u;
        rnd[i] = (unsigned char)(x >> 16);
    }
    assert_int_equal(verdict(V2, WALK, rnd, sizeof(rnd)), HGS3_BUNDLE2_MALFORMED);
}

static void test_malformed_structure(void **state)
{
    buf x;
    (void)state;

    /* sanity: the builder makes a valid bundle */
    put_start(&x, "");
    put_part(&x, "TEST:DATA");
    put_be32(&x, 3);
    put(&x, "abc", 3);
    put_be32(&x, 0);
    put_be32(&x, 0);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_OK);

    /* negative and oversized stream params size */
    x.n = 0;
    put(&x, "\x04noneHG20", 9);
    put_be32(&x, -1);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);
    x.n = 0;
    put(&x, "\x04noneHG20", 9);
    put_be32(&x, HGS3_BUNDLE2_MAX_PARAMS + 1);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);

    /* stream params as Mercurial's reader sees them */
    put_start(&x, "Unknown=1");
    put_be32(&x, 0);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);
    put_start(&x, "a  b");
    put_be32(&x, 0);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);
    put_start(&x, "1abc");
    put_be32(&x, 0);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);
    put_start(&x, "Compression");
    put_be32(&x, 0);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);
    put_start(&x, "Compression=XX");
    put_be32(&x, 0);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);
    /* urlquoted "Compression=ZS": a zstd stream follows, and must be whole */
    put_start(&x, "%43ompression=%5AS");
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);
    assert_int_equal(verdict(V2, FIRST, x.b, x.n), HGS3_BUNDLE2_OK);
    put(&x, "\x28\xb5\x2f\xfd\x00\x58\x01\x00\x00", 9); /* empty last raw block */
    assert_int_equal(walk(&x), HGS3_BUNDLE2_OK);
    put_start(&x, "Compression=GZ");
    assert_int_equal(walk(&x), HGS3_BUNDLE2_OPAQUE);
    put_start(&x, "Compression=_truncatedBZ");
    assert_int_equal(walk(&x), HGS3_BUNDLE2_OPAQUE);
    put_start(&x, "Compression=UN Compression=BZ");
    assert_int_equal(walk(&x), HGS3_BUNDLE2_OPAQUE);
    put_start(&x, "Compression=ZS Compression=UN"); /* the last one wins */
    put_part(&x, "error:abort");
    assert_int_equal(walk(&x), HGS3_BUNDLE2_ERROR);
    put_start(&x, "advisory=1 other");
    put_part(&x, "ERROR:ABORT");
    assert_int_equal(walk(&x), HGS3_BUNDLE2_ERROR);

    /* negative part header size */
    put_start(&x, "");
    put_be32(&x, -1);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);

    /* header too short for its type, id and counts */
    put_start(&x, "");
    put_be32(&x, 5);
    put(&x,
        "\x04"
        "abcd",
        5);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);

    /* type size larger than the header */
    put_start(&x, "");
    put_be32(&x, 8);
    put(&x,
        "\x0b"
        "ERROR:ABORT",
        12);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);

    /* param counts without room for their sizes */
    put_start(&x, "");
    put_be32(&x, 1 + 1 + 4 + 2);
    put(&x, "\x01x\0\0\0\0\x05\x00", 8);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);

    /* param sizes beyond the header */
    put_start(&x, "");
    put_be32(&x, 1 + 1 + 4 + 2 + 2 + 3);
    put(&x,
        "\x01x\0\0\0\0\x01\x00\x02\x02"
        "abc",
        13);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);

    /* the same with room: fine, and slack after the params is allowed */
    put_start(&x, "");
    put_be32(&x, 1 + 1 + 4 + 2 + 2 + 4 + 3);
    put(&x,
        "\x01x\0\0\0\0\x01\x00\x02\x02"
        "abcd"
        "zzz",
        17);
    put_be32(&x, 0);
    put_be32(&x, 0);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_OK);

    /* negative payload chunk size other than -1 */
    put_start(&x, "");
    put_part(&x, "x");
    put_be32(&x, -2);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);

    /* an interrupt with no part is allowed */
    put_start(&x, "");
    put_part(&x, "x");
    put_be32(&x, -1);
    put_be32(&x, 0);
    put_be32(&x, 0);
    put_be32(&x, 0);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_OK);

    /* a negative interrupt header size */
    put_start(&x, "");
    put_part(&x, "x");
    put_be32(&x, -1);
    put_be32(&x, -5);
    assert_int_equal(walk(&x), HGS3_BUNDLE2_MALFORMED);
}

/* Interrupt parts nest up to HGS3_BUNDLE2_MAX_DEPTH. */
static void test_interrupt_nesting(void **state)
{
    buf x;
    int depth, i;
    (void)state;

    for (depth = HGS3_BUNDLE2_MAX_DEPTH; depth <= HGS3_BUNDLE2_MAX_DEPTH + 1; ++depth) {
        put_start(&x, "");
        put_part(&x, "outer");
        for (i = 0; i < depth; ++i) {
            put_be32(&x, -1);
            put_part(&x, "output");
        }
        for (i = 0; i <= depth; ++i) {
            put_be32(&x, 2);
            put(&x, "ab", 2);
            put_be32(&x, 0);
        }
        put_be32(&x, 0);
        assert_int_equal(walk(&x), depth <= HGS3_BUNDLE2_MAX_DEPTH ? HGS3_BUNDLE2_OK
                                                                   : HGS3_BUNDLE2_MALFORMED);
    }
    /* an error part interrupting an interrupt part */
    put_start(&x, "");
    put_part(&x, "outer");
    put_be32(&x, -1);
    put_part(&x, "output");
    put_be32(&x, -1);
    put_part(&x, "error:abort");
    assert_int_equal(walk(&x), HGS3_BUNDLE2_ERROR);
}

/* A huge declared payload is skipped without being buffered. */
static void test_large_payload_skipped(void **state)
{
    static unsigned char chunk[65536];
    hgs3_bundle2 det;
    buf x;
    long total = 0x7fffffffL;
    (void)state;

    put_start(&x, "");
    put_part(&x, "STREAM2");
    put_be32(&x, total);
    hgs3_bundle2_init(&det, V2);
    assert_int_equal(hgs3_bundle2_feed(&det, x.b, x.n), HGS3_BUNDLE2_NEED_MORE);
    while (total > 0) {
        long k = total < (long)sizeof(chunk) ? total : (long)sizeof(chunk);
        assert_int_equal(hgs3_bundle2_feed(&det, chunk, (apr_size_t)k), HGS3_BUNDLE2_NEED_MORE);
        total -= k;
    }
    x.n = 0;
    put_be32(&x, 0);
    put_part(&x, "ERROR:ABORT");
    assert_int_equal(hgs3_bundle2_feed(&det, x.b, x.n), HGS3_BUNDLE2_ERROR);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(hgs3_bundle2_state_name(HGS3_BUNDLE2_OK), "ok");
    assert_string_equal(hgs3_bundle2_state_name(HGS3_BUNDLE2_ERROR), "error-bundle");
    assert_string_equal(hgs3_bundle2_state_name(HGS3_BUNDLE2_MALFORMED), "malformed-bundle");
    assert_string_equal(hgs3_bundle2_state_name(HGS3_BUNDLE2_OPAQUE), "opaque-body");
    assert_string_equal(hgs3_bundle2_state_name(HGS3_BUNDLE2_NEED_MORE), "need-more");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hgweb_error_abort),
        cmocka_unit_test(test_other_error_parts),
        cmocka_unit_test(test_later_errors),
        cmocka_unit_test(test_none_engine_ok),
        cmocka_unit_test(test_walk_decides_at_end),
        cmocka_unit_test(test_opaque_engines),
        cmocka_unit_test(test_zstd_hgweb),
        cmocka_unit_test(test_zstd_hgweb_failed),
        cmocka_unit_test(test_zstd_synthetic),
        cmocka_unit_test(test_zstd_trailing),
        cmocka_unit_test(test_zstd_handmade),
        cmocka_unit_test(test_zstd_large_skip),
        cmocka_unit_test(test_media_types),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_malformed_structure),
        cmocka_unit_test(test_interrupt_nesting),
        cmocka_unit_test(test_large_payload_skipped),
        cmocka_unit_test(test_state_names),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
