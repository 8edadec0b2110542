/* mod_hgs3cache_status.h: the module's counters in httpd, and their
 * section in mod_status' server-status page (HTML and ?auto).
 *
 * The counters live in shared memory created by the parent in post_config,
 * so they add up over all children and threads. Every hgs3_status_*() call
 * is a cheap atomic add, safe from any thread of a child (request threads,
 * upload threads), and a no-op when there is no shared block (configtest,
 * or it could not be created).
 *
 * Requests are counted once, at the end, by their final r->notes
 * "hgs3cache" value (hits by mode, misses, skips and bypasses by reason),
 * in a log_transaction hook. The calls below are for the events that have
 * no note of their own: uploads, lookups, store errors, breaker trips. */
#ifndef MOD_HGS3CACHE_STATUS_H
#define MOD_HGS3CACHE_STATUS_H

#include <httpd.h>
#include "hgs3_stats.h"

/* post_config: (re)create the shared block in pconf. Never fails the
 * start: without the block the module works, uncounted. */
int hgs3_status_post_config(apr_pool_t *pconf, server_rec *s);

/* Register the log_transaction hook and the mod_status hook. */
void hgs3_status_register(apr_pool_t *p);

/* counter += n, e.g. hgs3_status_count(HGS3_C_STORED, 1). */
void hgs3_status_count(hgs3_counter_e which, apr_uint64_t n);

/* One more skip / bypass for a reason of the tables in hgs3_stats.c;
 * unknown reasons count as "other". (Requests with a note are counted from
 * it; these are for events without one.) */
void hgs3_status_skip(const char *reason);
void hgs3_status_bypass(const char *reason);

/* One lookup (presence cache and/or HEAD) that took `took`. */
void hgs3_status_lookup(apr_interval_time_t took);

/* HgS3CacheSpoolMax: reserve n more bytes for a capture (1: granted, 0: the
 * host's captures in flight would exceed max), and give them back. */
int hgs3_status_spool_reserve(apr_uint64_t n, apr_uint64_t max);
void hgs3_status_spool_release(apr_uint64_t n);

#endif
