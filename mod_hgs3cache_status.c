/* mod_hgs3cache_status.c: shared counters and the server-status section. */
#include <unistd.h>

#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <mod_status.h>

#include "hgs3_stats.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_status.h"

APLOG_USE_MODULE(hgs3cache);

/* Set by the parent's post_config and inherited by the children at fork
 * (never written after that). A restart clears pconf, which unmaps the old
 * block, and post_config makes a new one: the counters start over. */
static hgs3_stats *stats;

/* Registered after the segment's own cleanup, so it runs before it: no
 * caller can reach the block once it is being unmapped. */
static apr_status_t stats_cleanup(void *data)
{
    (void)data;
    stats = NULL;
    return APR_SUCCESS;
}

int hgs3_status_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *shm = NULL;
    const char *fallback;
    apr_status_t rv;

    stats = NULL;
    fallback = ap_runtime_dir_relative(
        pconf, apr_psprintf(pconf, "hgs3cache-stats.%" APR_PID_T_FMT, getpid()));
    rv = hgs3_stats_shm_create(&stats, &shm, pconf, fallback);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     HGS3LOGNO(00601) "cannot create the shared memory for the counters; "
                                      "server-status will not show them");
        return OK;
    }
    apr_pool_cleanup_register(pconf, NULL, stats_cleanup, apr_pool_cleanup_null);
    return OK;
}

void hgs3_status_count(hgs3_counter_e which, apr_uint64_t n)
{
    hgs3_stats_add(stats, which, n);
}

void hgs3_status_skip(const char *reason)
{
    hgs3_stats_skip(stats, reason);
}

void hgs3_status_bypass(const char *reason)
{
    hgs3_stats_bypass(stats, reason);
}

int hgs3_status_spool_reserve(apr_uint64_t n, apr_uint64_t max)
{
    return hgs3_stats_spool_reserve(stats, n, max);
}

void hgs3_status_spool_release(apr_uint64_t n)
{
    hgs3_stats_spool_release(stats, n);
}

void hgs3_status_lookup(apr_interval_time_t took)
{
    hgs3_stats_lookup(stats, took);
}

/* Once per request, with its final note (kept on the initial request: the
 * handler declines internal redirects). Runs first among the loggers, so a
 * request is counted before its access-log line is written. */
static int hgs3_status_log(request_rec *r)
{
    while (r->prev) {
        r = r->prev;
    }
    if (stats) {
        hgs3_stats_note(stats, apr_table_get(r->notes, HGS3_NOTE));
    }
    return DECLINED;
}

typedef struct html_ctx {
    request_rec *r;
    int table;
} html_ctx;

static void html_row(void *baton, const char *name, const char *label, apr_uint64_t value)
{
    html_ctx *ctx = baton;
    if (ctx->table) {
        ap_rprintf(ctx->r,
                   "<tr><td>%s</td><td align=\"right\">%" APR_UINT64_T_FMT "</td>"
                   "<td><code>%s</code></td></tr>\n",
                   label, value, name);
    } else {
        ap_rprintf(ctx->r, "%s: %" APR_UINT64_T_FMT " <code>%s</code><br />\n", label, value, name);
    }
}

static int hgs3_status_hook(request_rec *r, int flags)
{
    hgs3_stats snap;
    html_ctx ctx;

    if (!stats) {
        return OK;
    }
    hgs3_stats_snapshot(&snap, stats);
    if (flags & AP_STATUS_SHORT) {
        ap_rputs(hgs3_stats_auto_text(&snap, r->pool), r);
        return OK;
    }
    ctx.r = r;
    ctx.table = !(flags & AP_STATUS_NOTABLE);
    ap_rputs("<hr />\n<h2>mod_hgs3cache</h2>\n", r);
    ap_rprintf(r, "<p>Counters since %s (all children).</p>\n",
               ap_ht_time(r->pool, (apr_time_t)snap.started, "%Y-%m-%d %H:%M:%S %Z", 0));
    if (ctx.table) {
        ap_rputs("<table border=\"0\">\n<tr><th>counter</th><th>value</th><th>name</th></tr>\n", r);
    }
    hgs3_stats_each(&snap, r->pool, html_row, &ctx);
    if (ctx.table) {
        ap_rputs("</table>\n", r);
    }
    return OK;
}

void hgs3_status_register(apr_pool_t *p)
{
    (void)p;
    ap_hook_log_transaction(hgs3_status_log, NULL, NULL, APR_HOOK_REALLY_FIRST);
    APR_OPTIONAL_HOOK(ap, status_hook, hgs3_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}
