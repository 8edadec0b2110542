/* mod_hgs3cache_handler.c: the handler hook, which decides per request.
 *
 * It runs first among handlers (after authentication and authorization, not
 * as a quick_handler, so Apache's access control always applies). For an
 * eligible request it computes the cache key, looks it up, answers a hit
 * from the store, or adds the capture filter and DECLINEs so hgweb answers a
 * miss as usual. Anything not eligible is DECLINEd untouched. */
#include <string.h>

#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "hgs3_err.h"
#include "hgs3_req.h"
#include "hgs3_repo.h"
#include "hgs3_key.h"
#include "hgs3_inline.h"

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_body.h"
#include "mod_hgs3cache_capture.h"
#include "mod_hgs3cache_hit.h"
#include "mod_hgs3cache_inline.h"
#include "mod_hgs3cache_loc.h"

APLOG_USE_MODULE(hgs3cache);

void hgs3_set_note(request_rec *r, const hgs3_dir_conf *conf, const char *note)
{
    apr_table_setn(r->notes, HGS3_NOTE, note);
    if (hgs3_conf_header(conf)) {
        apr_table_setn(r->err_headers_out, HGS3_HEADER, note);
    }
}

void hgs3_note_skip(request_rec *r, const hgs3_dir_conf *conf, hgs3_skip_e why)
{
    if (why != HGS3_SKIP_NONE) {
        hgs3_set_note(r, conf, hgs3_skip_note(why));
    }
}

void hgs3_note_bypass(request_rec *r, const hgs3_dir_conf *conf, hgs3_bypass_e why)
{
    if (why != HGS3_BYPASS_NONE) {
        hgs3_set_note(r, conf, hgs3_bypass_note(why));
    }
}

/* The URL path (r->parsed_uri.path, as httpd normalized it) below base,
 * the URL base of the section that set the repository mapping
 * (hgs3_loc.repo_base: no trailing '/', "/" at server level), or NULL
 * when the path is not below it. httpd matches a <Location> ignoring doubled
 * slashes; a path that keeps them (MergeSlashes Off) and so does not start
 * with the base cannot be placed, and is left to hgweb. */
static const char *path_below_location(request_rec *r, const char *base)
{
    const char *path = r->parsed_uri.path;
    apr_size_t n;

    if (!path || !base || base[0] != '/') {
        return NULL;
    }
    n = strlen(base);
    if (n == 1) {
        return path;
    }
    if (strncmp(path, base, n) || (path[n] != '\0' && path[n] != '/')) {
        return NULL;
    }
    return path + n;
}

/* Reads the httppostargs prefix when there is one. The body is replayed to
 * hgweb whatever happens. */
static apr_status_t read_post_args(request_rec *r, const hgs3_req_limits *lim, const char **pbody,
                                   apr_size_t *plen)
{
    apr_size_t want = 0;
    apr_status_t rv;

    *pbody = NULL;
    *plen = 0;
    rv = hgs3_req_post_length(r->headers_in, lim, &want);
    if (rv != APR_SUCCESS || want == 0) {
        goto leave;
    }
    if (apr_table_get(r->headers_in, "Content-Encoding")) {
        rv = APR_ENOTIMPL;
        goto leave;
    }
    rv = hgs3_body_read_prefix(r, want, pbody);
    if (rv == APR_SUCCESS) {
        *plen = want;
    }
leave:
    return rv;
}

/* The repository the URL names below the mapping's Location, opened and
 * fingerprinted. On failure *prepo is NULL and *pnote the bypass note. */
static apr_status_t request_repo(hgs3_repo **prepo, hgs3_bypass_e *pnote, request_rec *r,
                                 const hgs3_loc *loc)
{
    const char *below = path_below_location(r, loc->repo_base);
    hgs3_repo *repo = NULL;
    apr_status_t rv;

    *prepo = NULL;
    *pnote = HGS3_BYPASS_REPOSITORY;
    if (!below) {
        *pnote = HGS3_BYPASS_LOCATION;
        rv = APR_ENOENT;
        goto leave;
    }
    if (strchr(below, '%')) {
        /* httpd decoded the path once, as hgweb sees it: a '%' left is a
         * literal one (or a slash kept encoded), which the repository
         * lookup would decode a second time into another name. */
        rv = HGS3_EMALFORMED;
        goto leave;
    }
    rv = hgs3_repo_resolve(&repo, r->pool, loc->repository, loc->repository_root, below);
    if (rv == APR_SUCCESS && repo->rest[0]) {
        rv = APR_ENOENT; /* hgweb answers 404 for a path below a repository */
    }
    if (rv == APR_SUCCESS) {
        rv = hgs3_repo_fingerprint_ex(repo, r->pool, loc->config_files);
    }
    if (rv == APR_SUCCESS) {
        *prepo = repo;
        *pnote = HGS3_BYPASS_NONE;
    }
leave:
    return rv;
}

/* The wire command and its arguments, normalized (hgs3_req.h), when the
 * request is one that may be cached; else DECLINED, noted (or not: a
 * request that is no wire command is not ours to note). */
static int parse_request(hgs3_req **phreq, request_rec *r, const hgs3_loc *loc)
{
    const hgs3_dir_conf *conf = loc->conf;
    const char *body = NULL;
    apr_size_t body_len = 0;
    apr_status_t rv;

    rv = hgs3_req_start(phreq, r->pool, r->args, &loc->limits);
    if (rv != APR_SUCCESS) {
        hgs3_note_bypass(r, conf, rv == APR_ENOENT ? HGS3_BYPASS_NONE : HGS3_BYPASS_MALFORMED);
        return DECLINED;
    }
    if (!hgs3_loc_command_allowed(loc, (*phreq)->cmd)) {
        hgs3_note_bypass(r, conf, HGS3_BYPASS_COMMAND);
        return DECLINED;
    }
    if ((r->method_number != M_GET && r->method_number != M_POST) || r->header_only) {
        hgs3_note_bypass(r, conf, HGS3_BYPASS_METHOD);
        return DECLINED;
    }
    if (r->method_number == M_POST &&
        read_post_args(r, &loc->limits, &body, &body_len) != APR_SUCCESS) {
        hgs3_note_bypass(r, conf, HGS3_BYPASS_POST_BODY);
        return DECLINED;
    }
    rv = hgs3_req_finish(*phreq, r->pool, r->method, r->headers_in, body, body_len, &loc->limits);
    if (rv != APR_SUCCESS) {
        hgs3_note_bypass(r, conf,
                         rv == HGS3_ETOOBIG ? HGS3_BYPASS_TOO_LARGE : HGS3_BYPASS_MALFORMED);
        return DECLINED;
    }
    if (!strcmp((*phreq)->cmd, "batch") && !hgs3_inline_batch_ok(*phreq, r->pool)) {
        hgs3_note_bypass(r, conf, HGS3_BYPASS_COMMAND); /* a batch that may write or is unknown */
        return DECLINED;
    }
    return OK;
}

/* The request's settings are resolved once (mod_hgs3cache_loc.h) and go
 * down from here: request, repository, key, then a small reply, a hit or
 * a miss. */
static int hgs3_handler(request_rec *r)
{
    hgs3_dir_conf *conf = hgs3_get_dir_conf(r);
    const hgs3_loc *loc;
    hgs3_req *hreq = NULL;
    hgs3_repo *repo = NULL;
    const char *key;
    hgs3_bypass_e note = HGS3_BYPASS_NONE;
    char hex[HGS3_KEY_HEX_LEN + 1];
    apr_status_t rv;
    int status;

    if (!conf || !hgs3_conf_enabled(conf) || r->main || r->prev || !(loc = hgs3_loc_of(r, conf))) {
        return DECLINED;
    }
    if (parse_request(&hreq, r, loc) != OK) {
        return DECLINED;
    }
    rv = request_repo(&repo, &note, r, loc);
    if (rv != APR_SUCCESS) {
        hgs3_note_bypass(r, conf, note);
        return DECLINED;
    }
    rv = hgs3_key_compute(hex, r->pool, loc->key_salt, loc->repo_base, repo, hreq, r->user,
                          loc->share_users);
    if (rv != APR_SUCCESS) {
        hgs3_note_bypass(r, conf, HGS3_BYPASS_KEY);
        return DECLINED;
    }
    key = hgs3_key_object_name(r->pool, loc->key_prefix, hex);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "hgs3cache: key %s for %s cmd=%s", hex, repo->dir,
                  hreq->cmd);
    if (hgs3_inline_handle(r, conf, hreq->cmd, key, &status)) {
        return status;
    }
    return hgs3_hit_handle(r, loc, hex, key);
}

void hgs3_handler_register(apr_pool_t *p)
{
    (void)p;
    ap_hook_handler(hgs3_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
    hgs3_body_register(p);
    hgs3_inline_register(p);
}
