/* mod_hgs3cache_spooldir.c: the spool directories, made ready at startup.
 *
 * Spools that spill and the per-key upload locks live in HgS3CacheSpoolDir.
 * The children write there as the User httpd runs them as, so the parent
 * (still root in post_config) creates the default directory for that user,
 * as mod_cache_disk's directory is owned by it, and checks every spool
 * directory in use once, as that user. A directory the children cannot
 * write is one warning at startup naming the directive; requests then skip
 * storing without a warning each. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>

#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_file_io.h>
#include <apr_thread_proc.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <unixd.h>
#include <mod_unixd.h>

#include "mod_hgs3cache.h"
#include "mod_hgs3cache_config.h"
#include "mod_hgs3cache_spooldir.h"

APLOG_USE_MODULE(hgs3cache);

/* Spool directories found unusable by the last post_config; read-only in the
 * children, which inherit it at fork. */
static apr_hash_t *unusable;

static void collect_one(const hgs3_dir_conf *c, apr_hash_t *dirs, int *dflt)
{
    if (c->spool_dir) {
        apr_hash_set(dirs, c->spool_dir, APR_HASH_KEY_STRING, c->spool_dir);
    } else if (hgs3_conf_enabled(c)) {
        *dflt = 1;
    }
}

static void collect_sections(apr_pool_t *p, apr_array_header_t *secs, hgs3_dir_conf *base,
                             apr_hash_t *dirs, int *dflt)
{
    int i;
    for (i = 0; secs && i < secs->nelts; ++i) {
        ap_conf_vector_t *v = APR_ARRAY_IDX(secs, i, ap_conf_vector_t *);
        hgs3_dir_conf *c = ap_get_module_config(v, &hgs3cache_module);
        if (c) {
            collect_one(hgs3_config_merge_dir(p, base, c), dirs, dflt);
        }
    }
}

/* The spool directories configured anywhere, and whether an enabled scope
 * uses the default one. */
static void collect(apr_pool_t *p, server_rec *s, apr_hash_t *dirs, int *dflt)
{
    for (; s; s = s->next) {
        core_server_config *core = ap_get_core_module_config(s->module_config);
        hgs3_dir_conf *base = ap_get_module_config(s->lookup_defaults, &hgs3cache_module);
        collect_one(base, dirs, dflt);
        collect_sections(p, core->sec_url, base, dirs, dflt);
        collect_sections(p, core->sec_dir, base, dirs, dflt);
    }
}

/* Creates the default spool directory when it is missing: mode 0750, owned
 * by the children's user when we are root. An existing one is left as the
 * operator (or the package) made it; the writability check judges it. */
static apr_status_t make_default_dir(apr_pool_t *p, const char *dir)
{
    apr_finfo_t fi;
    apr_status_t rv;

    if (apr_stat(&fi, dir, APR_FINFO_TYPE, p) == APR_SUCCESS) {
        return fi.filetype == APR_DIR ? APR_SUCCESS : APR_ENOTDIR;
    }
    rv = apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    rv = apr_file_perms_set(dir, APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_UEXECUTE |
                                     APR_FPROT_GREAD | APR_FPROT_GEXECUTE);
    if (rv == APR_SUCCESS && geteuid() == 0 &&
        chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
    }
leave:
    return rv;
}

/* Whether the children can create files in dir: a forked process takes the
 * children's identity (ap_unixd_setup_child, as the MPMs do) and creates and
 * removes a temp file there. Its exit code is the errno of the failure. */
apr_status_t hgs3_spooldir_check_writable(apr_pool_t *p, const char *dir)
{
    apr_proc_t proc;
    apr_exit_why_e why;
    int code = 0;
    apr_status_t rv = apr_proc_fork(&proc, p);

    if (rv == APR_INCHILD) {
        apr_file_t *f = NULL;
        char *tmpl = apr_pstrcat(p, dir, "/hgs3check.XXXXXX", NULL);
        if (ap_unixd_setup_child() != 0) {
            _exit(EPERM);
        }
        rv = apr_file_mktemp(&f, tmpl, 0, p);
        if (rv == APR_SUCCESS) {
            apr_file_close(f);
        }
        _exit(rv == APR_SUCCESS ? 0 : (rv > 0 && rv < 256) ? (int)rv : EIO);
    }
    if (rv != APR_INPARENT) {
        goto leave;
    }
    rv = apr_proc_wait(&proc, &code, &why, APR_WAIT);
    if (rv != APR_CHILD_DONE) {
        goto leave;
    }
    rv = (why == APR_PROC_EXIT && code == 0) ? APR_SUCCESS
         : (why == APR_PROC_EXIT)            ? APR_FROM_OS_ERROR(code)
                                             : APR_EGENERAL;
leave:
    return rv;
}

static const char *child_user(void)
{
    return geteuid() == 0 ? ap_unixd_config.user_name : "this server's user";
}

static void check_dir(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s, const char *dir,
                      int is_default)
{
    apr_status_t rv = is_default ? make_default_dir(ptemp, dir) : APR_SUCCESS;

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     HGS3LOGNO(01401) "cannot create the default HgS3CacheSpoolDir %s; "
                                      "responses will not be stored until it exists and "
                                      "%s can write it, or HgS3CacheSpoolDir names another",
                     dir, child_user());
    } else if ((rv = hgs3_spooldir_check_writable(ptemp, dir)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     HGS3LOGNO(01402) "HgS3CacheSpoolDir %s%s is not writable by %s; "
                                      "responses will not be stored until it is",
                     dir, is_default ? " (the default)" : "", child_user());
    }
    if (rv != APR_SUCCESS) {
        const char *key = apr_pstrdup(pconf, dir);
        apr_hash_set(unusable, key, APR_HASH_KEY_STRING, key);
    }
}

int hgs3_spooldir_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    apr_hash_t *dirs = apr_hash_make(ptemp);
    apr_hash_index_t *hi;
    int dflt = 0;

    unusable = apr_hash_make(pconf);
    /* httpd reads its configuration twice at startup: check once */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    collect(ptemp, s, dirs, &dflt);
    if (dflt) {
        check_dir(pconf, ptemp, s, HGS3_DEF_SPOOL_DIR, 1);
    }
    for (hi = apr_hash_first(ptemp, dirs); hi; hi = apr_hash_next(hi)) {
        const char *dir = apr_hash_this_val(hi);
        if (!dflt || strcmp(dir, HGS3_DEF_SPOOL_DIR) != 0) {
            check_dir(pconf, ptemp, s, dir, 0);
        }
    }
    return OK;
}

int hgs3_spooldir_unusable(const char *dir)
{
    return unusable && apr_hash_get(unusable, dir, APR_HASH_KEY_STRING) != NULL;
}
