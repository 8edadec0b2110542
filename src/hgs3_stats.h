/* hgs3_stats.h: the module's counters (SPEC "Observability").
 *
 * All counters live in one fixed-layout block of 64-bit words. In httpd the
 * block sits in anonymous shared memory created by the parent before it
 * forks, so every child process and every thread of a child (request
 * threads and upload threads alike) adds into the same words, and whichever
 * child answers server-status sees the totals.
 *
 * Updates are lock-free: GCC/clang __atomic builtins on naturally aligned
 * 64-bit words (relaxed order: counters are independent, nothing is
 * published through them). They are single instructions on x86-64 and
 * aarch64; 32-bit targets may need -latomic. The maximum is kept with a
 * compare-and-swap loop. A reader takes a snapshot word by word: each value
 * is exact, the set is not one instant (as with mod_status' own counters).
 *
 * Skips and bypasses are counted per reason in two fixed tables of reason
 * names (hgs3_stats_skip_names, hgs3_stats_bypass_names); a reason not in
 * its table is counted as "other". Every function accepts st == NULL and
 * then does nothing, so code paths that run without the block (configtest,
 * tools) need no checks. */
#ifndef HGS3_STATS_H
#define HGS3_STATS_H

#include <apr_pools.h>
#include <apr_shm.h>
#include <apr_time.h>

typedef enum {
    HGS3_C_HITS_REDIRECT = 0,  /* answered with a presigned redirect */
    HGS3_C_HITS_STREAM,        /* answered by streaming the object */
    HGS3_C_MISSES,             /* went to hgweb (captured or skipped) */
    HGS3_C_STORED,             /* uploads completed */
    HGS3_C_STORED_BYTES,       /* bytes of completed uploads */
    HGS3_C_UPLOADS_DROPPED,    /* upload queue full, or dropped at shutdown */
    HGS3_C_UPLOAD_ERRORS,      /* uploads that failed */
    HGS3_C_STORE_ERRORS,       /* lookup failures: timeouts, 5xx, transport */
    HGS3_C_BREAKER_TRIPS,      /* the breaker opened */
    HGS3_C_LOOKUPS,            /* lookups made (presence cache or HEAD) */
    HGS3_C_LOOKUP_US_SUM,      /* their total duration, microseconds */
    HGS3_C_LOOKUP_US_MAX,      /* the longest one (kept as a maximum) */
    HGS3_C_PRESENCE_HITS,      /* lookups answered by the presence cache */
    HGS3_C_HEADS,              /* S3 HEAD requests made */
    HGS3_C_HITS_INLINE,        /* answered from an inline entry of the presence cache */
    HGS3_C_INLINE_STORED,      /* small replies kept inline in the presence cache */
    HGS3_C_COLLAPSED,          /* misses served by following another's generation */
    HGS3_C_COLLAPSE_FALLBACKS, /* followers that ran hgweb themselves */
    HGS3_C_COLLAPSE_ABORTS,    /* followers aborted after their first byte */
    HGS3_C_HITS_LOCAL,         /* answered by httpd from a local-directory store's file */
    HGS3_C_COUNT
} hgs3_counter_e;

/* The reasons a response is not stored (miss-store-skipped:<name>) and a
 * request is not looked up (bypass:<name>): one table each, the only place
 * their names are written. The notes, the counters and the server-status
 * fields are all made from these tables, so the glue names a reason by its
 * enum value and a typo cannot compile. Each list ends with "other", which
 * counts a note that names no reason of the table. */
#define HGS3_SKIP_REASONS(X)                                                                       \
    X(STATUS, "status")                                                                            \
    X(HG_ERROR, "hg-error")                                                                        \
    X(CONTENT_TYPE, "content-type")                                                                \
    X(CONTENT_ENCODING, "content-encoding")                                                        \
    X(CONTENT_LENGTH, "content-length")                                                            \
    X(SET_COOKIE, "set-cookie")                                                                    \
    X(TOO_LARGE, "too-large")                                                                      \
    X(TOO_SMALL, "too-small")                                                                      \
    X(ERROR_PART, "error-part")                                                                    \
    X(UNRECOGNIZED_BODY, "unrecognized-body")                                                      \
    X(ABORTED, "aborted")                                                                          \
    X(LENGTH_MISMATCH, "length-mismatch")                                                          \
    X(SPOOL_ERROR, "spool-error")                                                                  \
    X(IN_PROGRESS, "in-progress")                                                                  \
    X(QUEUE_FULL, "queue-full")                                                                    \
    X(CREDENTIALS, "credentials")                                                                  \
    X(READ_ERROR, "read-error")                                                                    \
    X(DOWNSTREAM_ERROR, "downstream-error")                                                        \
    X(ERROR_BUCKET, "error-bucket")                                                                \
    X(LOCK_ERROR, "lock-error")                                                                    \
    X(NO_UPLOADER, "no-uploader")                                                                  \
    X(NO_MEMORY, "no-memory")                                                                      \
    X(UPLOADER_STOPPED, "uploader-stopped")                                                        \
    X(SPOOL_FULL, "spool-full")                                                                    \
    X(OTHER, "other")

#define HGS3_BYPASS_REASONS(X)                                                                     \
    X(COMMAND, "command")                                                                          \
    X(METHOD, "method")                                                                            \
    X(MALFORMED, "malformed")                                                                      \
    X(TOO_LARGE, "too-large")                                                                      \
    X(POST_BODY, "post-body")                                                                      \
    X(LOCATION, "location")                                                                        \
    X(REPOSITORY, "repository")                                                                    \
    X(KEY, "key")                                                                                  \
    X(CREDENTIALS, "credentials")                                                                  \
    X(STORE_ERROR, "store-error")                                                                  \
    X(STORE_AUTH, "store-auth")                                                                    \
    X(BREAKER_OPEN, "breaker-open")                                                                \
    X(OTHER, "other")

#define HGS3_REASON_SKIP_ENUM(id, name)   HGS3_SKIP_##id,
#define HGS3_REASON_BYPASS_ENUM(id, name) HGS3_BYPASS_##id,
/* HGS3_SKIP_NONE: no reason (stored, or the note is kept as it is). */
typedef enum {
    HGS3_SKIP_NONE = -1,
    HGS3_SKIP_REASONS(HGS3_REASON_SKIP_ENUM) HGS3_SKIP_COUNT
} hgs3_skip_e;
typedef enum {
    HGS3_BYPASS_NONE = -1,
    HGS3_BYPASS_REASONS(HGS3_REASON_BYPASS_ENUM) HGS3_BYPASS_COUNT
} hgs3_bypass_e;

/* Sizes of the reason tables (each ends with "other"). */
#define HGS3_STATS_SKIPS  HGS3_SKIP_COUNT
#define HGS3_STATS_BYPASS HGS3_BYPASS_COUNT

#define HGS3_STATS_MAGIC 0x48335354u /* "H3ST" */

/* The shared block. Every counter is a naturally aligned 64-bit word. */
typedef struct hgs3_stats {
    apr_uint32_t magic;
    apr_uint32_t size;    /* sizeof(hgs3_stats), a layout check */
    apr_uint64_t started; /* apr_time_t the block was created */
    apr_uint64_t counter[HGS3_C_COUNT];
    apr_uint64_t skip[HGS3_STATS_SKIPS];
    apr_uint64_t bypass[HGS3_STATS_BYPASS];
    apr_uint64_t spool_bytes; /* gauge: captures in flight (HgS3CacheSpoolMax) */
} hgs3_stats;

/* Reason names, index = slot in hgs3_stats.skip / .bypass. */
extern const char *const hgs3_stats_skip_names[HGS3_STATS_SKIPS];
extern const char *const hgs3_stats_bypass_names[HGS3_STATS_BYPASS];

/* Zero a block and stamp it. */
void hgs3_stats_init(hgs3_stats *st, apr_time_t now);

/* Create the block in shared memory owned by pool p (destroyed with it):
 * anonymous when the platform has it, else name-based at fallback_path
 * (a stale segment of that name is removed first; NULL: no fallback).
 * The block is initialized. On failure *pst and *pshm are NULL. */
apr_status_t hgs3_stats_shm_create(hgs3_stats **pst, apr_shm_t **pshm, apr_pool_t *p,
                                   const char *fallback_path);

/* counter += n (for HGS3_C_LOOKUP_US_MAX: counter = max(counter, n)). */
void hgs3_stats_add(hgs3_stats *st, hgs3_counter_e which, apr_uint64_t n);

/* The name of a reason ("too-small"), and the whole note
 * ("miss-store-skipped:too-small", "bypass:command"); static strings. An
 * out-of-range value gives "other". */
const char *hgs3_skip_name(hgs3_skip_e why);
const char *hgs3_bypass_name(hgs3_bypass_e why);
const char *hgs3_skip_note(hgs3_skip_e why);
const char *hgs3_bypass_note(hgs3_bypass_e why);

/* Slot of a reason in its table; NULL or unknown gives "other". */
apr_size_t hgs3_stats_skip_index(const char *reason);
apr_size_t hgs3_stats_bypass_index(const char *reason);

void hgs3_stats_skip(hgs3_stats *st, const char *reason);
void hgs3_stats_bypass(hgs3_stats *st, const char *reason);

/* One lookup that took `took` (negative counts as 0): lookups++, sum, max. */
void hgs3_stats_lookup(hgs3_stats *st, apr_interval_time_t took);

/* Count a request by its final r->notes "hgs3cache" value:
 *   hit-redirect, hit-stream,
 *   hit-inline                      -> that hit counter
 *   miss                            -> misses
 *   miss-store-skipped:<reason>     -> misses and skip <reason>
 *   bypass:<reason>                 -> bypass <reason>
 * NULL or anything else counts nothing. */
void hgs3_stats_note(hgs3_stats *st, const char *note);

/* The host-wide spool budget (HgS3CacheSpoolMax): add n to spool_bytes and
 * return 1 if that keeps it at most max, else change nothing and return 0.
 * Without a block (st NULL) every reservation succeeds. */
int hgs3_stats_spool_reserve(hgs3_stats *st, apr_uint64_t n, apr_uint64_t max);
/* Give back n reserved bytes. */
void hgs3_stats_spool_release(hgs3_stats *st, apr_uint64_t n);

/* Copy every counter (atomic loads) into out. */
void hgs3_stats_snapshot(hgs3_stats *out, const hgs3_stats *st);

/* Visit every reported field of a snapshot, in report order: name is the
 * machine-readable name (HgS3Cache<Name>, e.g. HgS3CacheSkipTooSmall),
 * label a short human one (e.g. "skipped: too-small"). Besides the raw
 * counters there are derived fields: HgS3CacheHits, HgS3CacheSkips,
 * HgS3CacheBypasses (totals) and HgS3CacheLookupUsMean, and the gauge
 * HgS3CacheSpoolBytes. */
typedef void hgs3_stats_field_fn(void *baton, const char *name, const char *label,
                                 apr_uint64_t value);
void hgs3_stats_each(const hgs3_stats *snap, apr_pool_t *p, hgs3_stats_field_fn *fn, void *baton);

/* The fields as mod_status' ?auto text: "HgS3Cache<Name>: <value>\n" each. */
const char *hgs3_stats_auto_text(const hgs3_stats *snap, apr_pool_t *p);

#endif
