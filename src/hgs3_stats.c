/* hgs3_stats.c: shared, lock-free counters and their report. */
#include <stddef.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "hgs3_stats.h"

#if !defined(__GNUC__) && !defined(__clang__)
#error "hgs3_stats.c needs the GCC/clang __atomic builtins"
#endif

/* Every counter word must be 8-byte aligned within the block (the block
 * itself starts on a page boundary), or 64-bit atomics are not atomic. */
typedef char hgs3_stats_align_check
    [(offsetof(hgs3_stats, counter) % 8 == 0 && sizeof(hgs3_stats) % 8 == 0) ? 1 : -1];

#define REASON_NAME(id, name)        name,
#define REASON_SKIP_NOTE(id, name)   "miss-store-skipped:" name,
#define REASON_BYPASS_NOTE(id, name) "bypass:" name,

const char *const hgs3_stats_skip_names[HGS3_STATS_SKIPS] = {HGS3_SKIP_REASONS(REASON_NAME)};
const char *const hgs3_stats_bypass_names[HGS3_STATS_BYPASS] = {HGS3_BYPASS_REASONS(REASON_NAME)};
static const char *const skip_notes[HGS3_STATS_SKIPS] = {HGS3_SKIP_REASONS(REASON_SKIP_NOTE)};
static const char *const bypass_notes[HGS3_STATS_BYPASS] = {
    HGS3_BYPASS_REASONS(REASON_BYPASS_NOTE)};

const char *hgs3_skip_name(hgs3_skip_e why)
{
    return hgs3_stats_skip_names[(unsigned)why < HGS3_SKIP_COUNT ? why : HGS3_SKIP_OTHER];
}

const char *hgs3_bypass_name(hgs3_bypass_e why)
{
    return hgs3_stats_bypass_names[(unsigned)why < HGS3_BYPASS_COUNT ? why : HGS3_BYPASS_OTHER];
}

const char *hgs3_skip_note(hgs3_skip_e why)
{
    return skip_notes[(unsigned)why < HGS3_SKIP_COUNT ? why : HGS3_SKIP_OTHER];
}

const char *hgs3_bypass_note(hgs3_bypass_e why)
{
    return bypass_notes[(unsigned)why < HGS3_BYPASS_COUNT ? why : HGS3_BYPASS_OTHER];
}

/* Report order, ?auto name and label of the raw counters. */
static const struct {
    hgs3_counter_e which;
    const char *name;
    const char *label;
} counters[] = {
    {HGS3_C_HITS_REDIRECT, "HitsRedirect", "hits: redirect"},
    {HGS3_C_HITS_STREAM, "HitsStream", "hits: stream"},
    {HGS3_C_HITS_INLINE, "HitsInline", "hits: inline (presence cache)"},
    {HGS3_C_HITS_LOCAL, "HitsLocal", "hits: local (file store)"},
    {HGS3_C_MISSES, "Misses", "misses"},
    {HGS3_C_STORED, "Stored", "stored (uploads completed)"},
    {HGS3_C_STORED_BYTES, "StoredBytes", "stored bytes"},
    {HGS3_C_UPLOADS_DROPPED, "UploadsDropped", "uploads dropped"},
    {HGS3_C_UPLOAD_ERRORS, "UploadErrors", "upload errors"},
    {HGS3_C_STORE_ERRORS, "StoreErrors", "store errors (lookups)"},
    {HGS3_C_BREAKER_TRIPS, "BreakerTrips", "breaker trips"},
    {HGS3_C_LOOKUPS, "Lookups", "lookups"},
    {HGS3_C_LOOKUP_US_SUM, "LookupUsSum", "lookup time total (us)"},
    {HGS3_C_LOOKUP_US_MAX, "LookupUsMax", "lookup time max (us)"},
    {HGS3_C_PRESENCE_HITS, "PresenceHits", "presence cache hits"},
    {HGS3_C_HEADS, "Heads", "HEAD requests"},
    {HGS3_C_INLINE_STORED, "InlineStored", "small replies kept inline"},
    {HGS3_C_COLLAPSED, "Collapsed", "collapsed misses (followers)"},
    {HGS3_C_COLLAPSE_FALLBACKS, "CollapseFallbacks", "collapse fallbacks to hgweb"},
    {HGS3_C_COLLAPSE_ABORTS, "CollapseAborts", "collapse aborts (leader failed midway)"},
};

typedef char
    hgs3_stats_table_check[sizeof(counters) / sizeof(counters[0]) == HGS3_C_COUNT ? 1 : -1];

void hgs3_stats_init(hgs3_stats *st, apr_time_t now)
{
    memset(st, 0, sizeof(*st));
    st->magic = HGS3_STATS_MAGIC;
    st->size = (apr_uint32_t)sizeof(*st);
    st->started = (apr_uint64_t)now;
}

apr_status_t hgs3_stats_shm_create(hgs3_stats **pst, apr_shm_t **pshm, apr_pool_t *p,
                                   const char *fallback_path)
{
    apr_shm_t *shm = NULL;
    apr_status_t rv;

    *pst = NULL;
    *pshm = NULL;
    rv = apr_shm_create(&shm, sizeof(hgs3_stats), NULL, p);
    if (rv == APR_ENOTIMPL && fallback_path) {
        /* no anonymous shared memory here: a named segment, inherited by
         * the children all the same; a crashed server's leftover goes */
        apr_shm_remove(fallback_path, p);
        rv = apr_shm_create(&shm, sizeof(hgs3_stats), fallback_path, p);
    }
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    if (apr_shm_size_get(shm) < sizeof(hgs3_stats)) {
        apr_shm_destroy(shm);
        rv = APR_ENOMEM;
        goto leave;
    }
    *pst = apr_shm_baseaddr_get(shm);
    *pshm = shm;
    hgs3_stats_init(*pst, apr_time_now());
leave:
    return rv;
}

void hgs3_stats_add(hgs3_stats *st, hgs3_counter_e which, apr_uint64_t n)
{
    apr_uint64_t *w, cur;

    if (!st || (unsigned)which >= HGS3_C_COUNT) {
        return;
    }
    w = &st->counter[which];
    if (which != HGS3_C_LOOKUP_US_MAX) {
        __atomic_fetch_add(w, n, __ATOMIC_RELAXED);
        return;
    }
    cur = __atomic_load_n(w, __ATOMIC_RELAXED);
    while (n > cur &&
           !__atomic_compare_exchange_n(w, &cur, n, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        /* cur now holds the value another thread wrote; try again */
    }
}

static apr_size_t reason_index(const char *const *names, apr_size_t count, const char *reason)
{
    apr_size_t i;

    if (reason) {
        for (i = 0; i + 1 < count; ++i) {
            if (!strcmp(names[i], reason)) {
                return i;
            }
        }
    }
    return count - 1; /* "other" */
}

apr_size_t hgs3_stats_skip_index(const char *reason)
{
    return reason_index(hgs3_stats_skip_names, HGS3_STATS_SKIPS, reason);
}

apr_size_t hgs3_stats_bypass_index(const char *reason)
{
    return reason_index(hgs3_stats_bypass_names, HGS3_STATS_BYPASS, reason);
}

void hgs3_stats_skip(hgs3_stats *st, const char *reason)
{
    if (st) {
        __atomic_fetch_add(&st->skip[hgs3_stats_skip_index(reason)], 1, __ATOMIC_RELAXED);
    }
}

void hgs3_stats_bypass(hgs3_stats *st, const char *reason)
{
    if (st) {
        __atomic_fetch_add(&st->bypass[hgs3_stats_bypass_index(reason)], 1, __ATOMIC_RELAXED);
    }
}

void hgs3_stats_lookup(hgs3_stats *st, apr_interval_time_t took)
{
    apr_uint64_t us = took > 0 ? (apr_uint64_t)took : 0;

    hgs3_stats_add(st, HGS3_C_LOOKUPS, 1);
    hgs3_stats_add(st, HGS3_C_LOOKUP_US_SUM, us);
    hgs3_stats_add(st, HGS3_C_LOOKUP_US_MAX, us);
}

#define SKIPPED "miss-store-skipped:"
#define BYPASS  "bypass:"

void hgs3_stats_note(hgs3_stats *st, const char *note)
{
    if (!st || !note) {
        return;
    }
    if (!strcmp(note, "hit-redirect")) {
        hgs3_stats_add(st, HGS3_C_HITS_REDIRECT, 1);
    } else if (!strcmp(note, "hit-stream")) {
        hgs3_stats_add(st, HGS3_C_HITS_STREAM, 1);
    } else if (!strcmp(note, "hit-inline")) {
        hgs3_stats_add(st, HGS3_C_HITS_INLINE, 1);
    } else if (!strcmp(note, "hit-local")) {
        hgs3_stats_add(st, HGS3_C_HITS_LOCAL, 1);
    } else if (!strcmp(note, "miss")) {
        hgs3_stats_add(st, HGS3_C_MISSES, 1);
    } else if (!strcmp(note, "collapsed")) {
        hgs3_stats_add(st, HGS3_C_COLLAPSED, 1);
    } else if (!strncmp(note, SKIPPED, sizeof(SKIPPED) - 1)) {
        hgs3_stats_add(st, HGS3_C_MISSES, 1);
        hgs3_stats_skip(st, note + sizeof(SKIPPED) - 1);
    } else if (!strncmp(note, BYPASS, sizeof(BYPASS) - 1)) {
        hgs3_stats_bypass(st, note + sizeof(BYPASS) - 1);
    }
}

int hgs3_stats_spool_reserve(hgs3_stats *st, apr_uint64_t n, apr_uint64_t max)
{
    apr_uint64_t cur;

    if (!st) {
        return 1;
    }
    cur = __atomic_load_n(&st->spool_bytes, __ATOMIC_RELAXED);
    do {
        if (n > max || cur > max - n) {
            return 0;
        }
    } while (!__atomic_compare_exchange_n(&st->spool_bytes, &cur, cur + n, 1, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return 1;
}

void hgs3_stats_spool_release(hgs3_stats *st, apr_uint64_t n)
{
    apr_uint64_t cur;

    if (!st) {
        return;
    }
    cur = __atomic_load_n(&st->spool_bytes, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&st->spool_bytes, &cur, cur > n ? cur - n : 0, 1,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        /* cur now holds the value another thread wrote; try again */
    }
}

void hgs3_stats_snapshot(hgs3_stats *out, const hgs3_stats *st)
{
    apr_size_t i;

    out->magic = st->magic;
    out->size = st->size;
    out->started = st->started;
    for (i = 0; i < HGS3_C_COUNT; ++i) {
        out->counter[i] = __atomic_load_n(&st->counter[i], __ATOMIC_RELAXED);
    }
    for (i = 0; i < HGS3_STATS_SKIPS; ++i) {
        out->skip[i] = __atomic_load_n(&st->skip[i], __ATOMIC_RELAXED);
    }
    for (i = 0; i < HGS3_STATS_BYPASS; ++i) {
        out->bypass[i] = __atomic_load_n(&st->bypass[i], __ATOMIC_RELAXED);
    }
    out->spool_bytes = __atomic_load_n(&st->spool_bytes, __ATOMIC_RELAXED);
}

/* "too-large" -> "TooLarge" */
static const char *camel(apr_pool_t *p, const char *prefix, const char *reason)
{
    apr_size_t plen = strlen(prefix), i, j = plen;
    char *out = apr_palloc(p, plen + strlen(reason) + 1);
    int up = 1;

    memcpy(out, prefix, plen);
    for (i = 0; reason[i]; ++i) {
        if (reason[i] == '-') {
            up = 1;
            continue;
        }
        out[j++] = up ? (char)apr_toupper(reason[i]) : reason[i];
        up = 0;
    }
    out[j] = '\0';
    return out;
}

void hgs3_stats_each(const hgs3_stats *snap, apr_pool_t *p, hgs3_stats_field_fn *fn, void *baton)
{
    const apr_uint64_t *c = snap->counter;
    apr_uint64_t total;
    apr_size_t i;

    fn(baton, "HgS3CacheHits", "hits",
       c[HGS3_C_HITS_REDIRECT] + c[HGS3_C_HITS_STREAM] + c[HGS3_C_HITS_INLINE] +
           c[HGS3_C_HITS_LOCAL]);
    for (i = 0; i < HGS3_C_COUNT; ++i) {
        fn(baton, apr_pstrcat(p, "HgS3Cache", counters[i].name, NULL), counters[i].label,
           c[counters[i].which]);
        if (counters[i].which == HGS3_C_LOOKUP_US_MAX) {
            fn(baton, "HgS3CacheLookupUsMean", "lookup time mean (us)",
               c[HGS3_C_LOOKUPS] ? c[HGS3_C_LOOKUP_US_SUM] / c[HGS3_C_LOOKUPS] : 0);
        }
    }
    fn(baton, "HgS3CacheSpoolBytes", "captures in flight (bytes)", snap->spool_bytes);
    for (total = 0, i = 0; i < HGS3_STATS_SKIPS; ++i) {
        total += snap->skip[i];
    }
    fn(baton, "HgS3CacheSkips", "store skipped", total);
    for (i = 0; i < HGS3_STATS_SKIPS; ++i) {
        fn(baton, camel(p, "HgS3CacheSkip", hgs3_stats_skip_names[i]),
           apr_pstrcat(p, "skipped: ", hgs3_stats_skip_names[i], NULL), snap->skip[i]);
    }
    for (total = 0, i = 0; i < HGS3_STATS_BYPASS; ++i) {
        total += snap->bypass[i];
    }
    fn(baton, "HgS3CacheBypasses", "bypassed", total);
    for (i = 0; i < HGS3_STATS_BYPASS; ++i) {
        fn(baton, camel(p, "HgS3CacheBypass", hgs3_stats_bypass_names[i]),
           apr_pstrcat(p, "bypassed: ", hgs3_stats_bypass_names[i], NULL), snap->bypass[i]);
    }
}

typedef struct auto_ctx {
    apr_pool_t *p;
    apr_array_header_t *parts;
} auto_ctx;

static void auto_line(void *baton, const char *name, const char *label, apr_uint64_t value)
{
    auto_ctx *ctx = baton;
    (void)label;
    APR_ARRAY_PUSH(ctx->parts, const char *) =
        apr_psprintf(ctx->p, "%s: %" APR_UINT64_T_FMT "\n", name, value);
}

const char *hgs3_stats_auto_text(const hgs3_stats *snap, apr_pool_t *p)
{
    auto_ctx ctx;

    ctx.p = p;
    ctx.parts = apr_array_make(p, 64, sizeof(const char *));
    hgs3_stats_each(snap, p, auto_line, &ctx);
    return apr_array_pstrcat(p, ctx.parts, '\0');
}
