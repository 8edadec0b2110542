/* fuzz_bundle2.c: libFuzzer target for the error-bundle detector
 * (hgs3_bundle2).
 *
 * Input: a raw application/mercurial-0.2 response body (the seeds are real
 * hgweb bodies), so the checked-in corpus is readable with xxd.
 * Checked, besides no crash or sanitizer report:
 *   - the verdict does not depend on how the body is split: whole, in
 *     pieces of sizes drawn from the input itself, and one byte at a time;
 *   - a verdict, once given, never changes, and consumed() stops there;
 *   - first-part mode decides within its documented bound;
 *   - the two modes agree where they must: walking never clears a body
 *     the first-part mode rejects as an error, first-part mode clears
 *     whatever walking clears, and both find the same bodies OPAQUE;
 *   - OPAQUE only for engines zlib and bzip2, or a bundle with engine
 *     none (whose "Compression" parameter names them);
 *   - engine zstd, walking: no verdict but MALFORMED before EOS; OK only
 *     when the first frame is a zstd frame, and then the body without its
 *     last byte is refused (a complete frame cannot end one byte early). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>

#include "hgs3_bundle2.h"
#include "fuzz_common.h"

#define MT "application/mercurial-0.2"
/* engine byte + "none" + "HG20" + params size + params + part size +
 * type size + type */
#define FIRST_PART_BOUND (1 + 4 + 4 + 4 + HGS3_BUNDLE2_MAX_PARAMS + 4 + 1 + 255)

static hgs3_bundle2_state_t whole(int flags, const uint8_t *d, size_t n, apr_off_t *consumed)
{
    hgs3_bundle2 det;
    hgs3_bundle2_init_ex(&det, MT, flags);
    hgs3_bundle2_feed(&det, d, n);
    *consumed = hgs3_bundle2_consumed(&det);
    return hgs3_bundle2_state_at_eos(&det);
}

static int has_prefix(const uint8_t *d, size_t n, const char *prefix, size_t plen)
{
    return n >= plen && memcmp(d, prefix, plen) == 0;
}

#define IS_ZSTD(d, n) has_prefix(d, n, "\x04zstd", 5)

/* Feed in pieces; `next` gives the size of each (at least 1). Checks that
 * a verdict sticks, and that a zstd body is refused or left open, never
 * cleared, before EOS. */
static hgs3_bundle2_state_t pieces(int flags, const uint8_t *d, size_t n, uint32_t seed,
                                   int bytewise, apr_off_t *consumed)
{
    hgs3_bundle2 det;
    hgs3_bundle2_state_t decided = HGS3_BUNDLE2_NEED_MORE;
    apr_off_t at_decision = 0;
    size_t off = 0;

    hgs3_bundle2_init_ex(&det, MT, flags);
    while (off < n) {
        size_t k = 1;
        hgs3_bundle2_state_t st;
        if (!bytewise) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 97;
            if ((seed >> 8) % 13 == 0) {
                k += (seed >> 4) % 5000; /* now and then a big piece */
            }
        }
        if (k > n - off) {
            k = n - off;
        }
        st = hgs3_bundle2_feed(&det, d + off, k);
        if (st != hgs3_bundle2_state(&det)) {
            abort();
        }
        if (decided != HGS3_BUNDLE2_NEED_MORE) {
            if (st != decided || hgs3_bundle2_consumed(&det) != at_decision) {
                abort(); /* a verdict changed, or bytes were taken after it */
            }
        } else if (st != HGS3_BUNDLE2_NEED_MORE) {
            decided = st;
            at_decision = hgs3_bundle2_consumed(&det);
            if (flags == 0 && IS_ZSTD(d, n) && st != HGS3_BUNDLE2_MALFORMED) {
                abort();
            }
        }
        off += k;
    }
    *consumed = hgs3_bundle2_consumed(&det);
    return hgs3_bundle2_state_at_eos(&det);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int modes[2] = {0, HGS3_BUNDLE2_FIRST_PART};
    hgs3_bundle2_state_t v[2];
    uint32_t seed = (uint32_t)size * 2654435761u;
    int m;

    if (size > 0) {
        seed ^= data[0] | (uint32_t)data[size - 1] << 8;
    }
    for (m = 0; m < 2; ++m) {
        apr_off_t c1 = 0, c2 = 0, c3 = 0;
        hgs3_bundle2_state_t a = whole(modes[m], data, size, &c1);
        hgs3_bundle2_state_t b = pieces(modes[m], data, size, seed, 0, &c2);
        if (a != b || c1 != c2 || c1 > (apr_off_t)size) {
            abort();
        }
        if (size <= 8192) {
            hgs3_bundle2_state_t c = pieces(modes[m], data, size, 0, 1, &c3);
            if (a != c || c1 != c3) {
                abort();
            }
        }
        if (a == HGS3_BUNDLE2_NEED_MORE) {
            abort(); /* never at EOS */
        }
        if (a == HGS3_BUNDLE2_OPAQUE && !has_prefix(data, size, "\x04zlib", 5) &&
            !has_prefix(data, size, "\005bzip2", 6) && !has_prefix(data, size, "\x04noneHG20", 9)) {
            abort();
        }
        if (modes[m] == HGS3_BUNDLE2_FIRST_PART && c1 > FIRST_PART_BOUND) {
            abort();
        }
        v[m] = a;
    }
    /* v[0] walking, v[1] first part */
    if (v[1] == HGS3_BUNDLE2_ERROR && v[0] != HGS3_BUNDLE2_ERROR) {
        abort();
    }
    if (v[0] == HGS3_BUNDLE2_OK && v[1] != HGS3_BUNDLE2_OK) {
        abort();
    }
    if ((v[0] == HGS3_BUNDLE2_OPAQUE) != (v[1] == HGS3_BUNDLE2_OPAQUE)) {
        abort();
    }
    if (IS_ZSTD(data, size) && v[0] == HGS3_BUNDLE2_OK) {
        apr_off_t c = 0;
        if (!has_prefix(data + 5, size - 5, "\x28\xb5\x2f\xfd", 4) ||
            whole(0, data, size - 1, &c) != HGS3_BUNDLE2_MALFORMED) {
            abort();
        }
    }
    return 0;
}
