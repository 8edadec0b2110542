/* hgs3_creds.c: credentials from static values, a shared-credentials INI
 * file, or the environment. */
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_env.h>
#include <apr_file_io.h>

#include "hgs3_err.h"
#include "hgs3_creds.h"

static void creds_clear(hgs3_creds *c)
{
    memset(c, 0, sizeof(*c));
}

static const char *nonempty(const char *s)
{
    return (s && *s) ? s : NULL;
}

/* [start, end) with blanks removed on both sides. */
static void trim(const char **start, const char **end)
{
    while (*start < *end && apr_isspace(**start)) {
        ++*start;
    }
    while (*end > *start && apr_isspace((*end)[-1])) {
        --*end;
    }
}

static int span_eq(const char *s, const char *e, const char *lit)
{
    apr_size_t n = strlen(lit);
    return (apr_size_t)(e - s) == n && !memcmp(s, lit, n);
}

static int span_eq_nocase(const char *s, const char *e, const char *lit)
{
    apr_size_t n = strlen(lit);
    return (apr_size_t)(e - s) == n && !strncasecmp(s, lit, n);
}

/* Which section a "[...]" header names, relative to the wanted profile:
 * 2 for "[profile]", 1 for "[profile <profile>]", 0 for another one. */
static int section_match(const char *s, const char *e, const char *profile)
{
    if (span_eq(s, e, profile)) {
        return 2;
    }
    if (e - s > 8 && !strncmp(s, "profile", 7) && apr_isspace(s[7])) {
        s += 8;
        trim(&s, &e);
        return span_eq(s, e, profile) ? 1 : 0;
    }
    return 0;
}

/* What the parser has seen so far. Values for the exact "[name]" section
 * (index 2) and the "[profile name]" spelling (index 1); index 0 collects
 * nothing. */
typedef struct ini_state {
    const char *profile;
    const char *key[3], *secret[3], *token[3];
    int seen[3];
    int section;    /* index of the current section */
    int in_section; /* a section header has been seen */
} ini_state;

/* A "[...]" line [ls, le). */
static apr_status_t ini_section(ini_state *st, const char *ls, const char *le)
{
    const char *ns, *ne;

    if (le[-1] != ']' || le - ls < 3) {
        return HGS3_EMALFORMED;
    }
    ns = ls + 1;
    ne = le - 1;
    trim(&ns, &ne);
    st->section = section_match(ns, ne, st->profile);
    st->seen[st->section] = 1;
    st->in_section = 1;
    return APR_SUCCESS;
}

/* A "name = value" line [ls, le). configparser splits at the first '=' or
 * ':', whichever comes first ("key: a=b" has the value "a=b"). */
static apr_status_t ini_pair(ini_state *st, apr_pool_t *p, const char *ls, const char *le)
{
    const char *eq, *ns = ls, *ne, *vs, *ve = le;
    const char **slot = NULL;

    for (eq = ls; eq < le && *eq != '=' && *eq != ':'; ++eq) {
    }
    if (eq == le || eq == ls || !st->in_section) {
        return HGS3_EMALFORMED;
    }
    ne = eq;
    vs = eq + 1;
    trim(&ns, &ne);
    trim(&vs, &ve);
    if (!st->section) {
        return APR_SUCCESS;
    }
    if (span_eq_nocase(ns, ne, "aws_access_key_id")) {
        slot = &st->key[st->section];
    } else if (span_eq_nocase(ns, ne, "aws_secret_access_key")) {
        slot = &st->secret[st->section];
    } else if (span_eq_nocase(ns, ne, "aws_session_token") ||
               span_eq_nocase(ns, ne, "aws_security_token")) {
        slot = &st->token[st->section];
    }
    if (slot) {
        *slot = apr_pstrmemdup(p, vs, (apr_size_t)(ve - vs));
    }
    return APR_SUCCESS;
}

/* One line [ls, le), without its newline. */
static apr_status_t ini_line(ini_state *st, apr_pool_t *p, const char *ls, const char *le)
{
    trim(&ls, &le);
    if (ls == le || *ls == '#' || *ls == ';') {
        return APR_SUCCESS;
    }
    if (memchr(ls, '\0', (apr_size_t)(le - ls))) {
        return HGS3_EMALFORMED;
    }
    return *ls == '[' ? ini_section(st, ls, le) : ini_pair(st, p, ls, le);
}

/* The credentials of the profile's section: "[name]" wins over
 * "[profile name]". */
static apr_status_t ini_pick(hgs3_creds *out, const ini_state *st)
{
    int pick = st->seen[2] ? 2 : (st->seen[1] ? 1 : 0);

    if (!pick) {
        return HGS3_ENOTFOUND;
    }
    if (!nonempty(st->key[pick]) || !nonempty(st->secret[pick])) {
        return HGS3_ECONFIG;
    }
    out->access_key = st->key[pick];
    out->secret_key = st->secret[pick];
    out->session_token = nonempty(st->token[pick]);
    return APR_SUCCESS;
}

apr_status_t hgs3_creds_parse(hgs3_creds *out, apr_pool_t *p, const char *text, apr_size_t len,
                              const char *profile, int *lineno)
{
    ini_state st;
    const char *pos = text, *end = text + len;
    int line = 0;
    apr_status_t rv = APR_SUCCESS;

    creds_clear(out);
    memset(&st, 0, sizeof(st));
    if (lineno) {
        *lineno = 0;
    }
    st.profile = (profile && *profile) ? profile : HGS3_CREDS_DEFAULT_PROFILE;
    /* A UTF-8 byte order mark, as some editors write one. */
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
        pos += 3;
    }
    while (pos < end) {
        const char *ls = pos, *le = memchr(pos, '\n', (apr_size_t)(end - pos));

        if (!le) {
            le = end;
        }
        pos = le < end ? le + 1 : end;
        ++line;
        if ((rv = ini_line(&st, p, ls, le)) != APR_SUCCESS) {
            goto leave;
        }
    }
    rv = ini_pick(out, &st);
leave:
    if (rv != APR_SUCCESS) {
        creds_clear(out);
    }
    if (lineno && rv == HGS3_EMALFORMED) {
        *lineno = line;
    }
    return rv;
}

apr_status_t hgs3_creds_load_file(hgs3_creds *out, apr_pool_t *p, const char *path,
                                  const char *profile, int *lineno)
{
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    apr_size_t len;
    char *buf;
    apr_status_t rv;

    creds_clear(out);
    if (lineno) {
        *lineno = 0;
    }
    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    if ((rv = apr_file_info_get(&fi, APR_FINFO_SIZE | APR_FINFO_TYPE, f)) != APR_SUCCESS) {
        goto leave;
    }
    if (fi.filetype != APR_REG) {
        rv = HGS3_ECONFIG;
        goto leave;
    }
    if (fi.size > HGS3_CREDS_MAX_FILE) {
        rv = HGS3_ETOOBIG;
        goto leave;
    }
    len = (apr_size_t)fi.size;
    buf = apr_palloc(p, len + 1);
    if (len > 0 && (rv = apr_file_read_full(f, buf, len, &len)) != APR_SUCCESS) {
        goto leave;
    }
    rv = hgs3_creds_parse(out, p, buf, len, profile, lineno);
    /* The file's bytes stay in p; wipe the copy so secrets do not linger
     * in a pool that may be long-lived. */
    memset(buf, 0, len);
leave:
    if (f) {
        apr_file_close(f);
    }
    return rv;
}

static const char *env(apr_pool_t *p, const char *name)
{
    char *v = NULL;
    if (apr_env_get(&v, name, p) != APR_SUCCESS) {
        return NULL;
    }
    return nonempty(v);
}

apr_status_t hgs3_creds_from_env(hgs3_creds *out, apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;

    creds_clear(out);
    out->access_key = env(p, "AWS_ACCESS_KEY_ID");
    out->secret_key = env(p, "AWS_SECRET_ACCESS_KEY");
    out->session_token = env(p, "AWS_SESSION_TOKEN");
    if (!out->access_key) {
        rv = HGS3_ENOTFOUND;
    } else if (!out->secret_key) {
        rv = HGS3_ECONFIG;
    }
    if (rv != APR_SUCCESS) {
        creds_clear(out);
    }
    return rv;
}

apr_status_t hgs3_creds_resolve(hgs3_creds *out, apr_pool_t *p, const hgs3_creds *static_creds,
                                const char *file, const char *profile, const char **source,
                                int *lineno)
{
    apr_status_t rv;
    const char *src;

    creds_clear(out);
    if (lineno) {
        *lineno = 0;
    }
    if (static_creds && nonempty(static_creds->access_key)) {
        src = "static";
        if (!nonempty(static_creds->secret_key)) {
            rv = HGS3_ECONFIG;
            goto leave;
        }
        out->access_key = static_creds->access_key;
        out->secret_key = static_creds->secret_key;
        out->session_token = nonempty(static_creds->session_token);
        rv = APR_SUCCESS;
    } else if (file && *file) {
        src = "file";
        rv = hgs3_creds_load_file(out, p, file, profile, lineno);
    } else {
        src = "environment";
        rv = hgs3_creds_from_env(out, p);
    }
leave:
    if (source) {
        *source = src;
    }
    if (rv != APR_SUCCESS) {
        creds_clear(out);
    }
    return rv;
}
