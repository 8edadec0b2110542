/* fuzz_creds.c: libFuzzer target for the shared-credentials file parser
 * (hgs3_creds_parse).
 *
 * Input layout:
 *   line 1     the profile asked for (empty: NULL, i.e. "default");
 *   the rest   the INI text, exactly as it would be read from the file (not
 *              NUL-terminated: the parser takes a length).
 * Checked: no crash or sanitizer report; a failure zeroes the credentials
 * and sets *lineno only for HGS3_EMALFORMED (to a line that exists); a
 * success gives a non-empty key and secret, a token that is NULL or
 * non-empty, values without surrounding blanks or line breaks, each one
 * found in the text; and the answer does not change when
 *   - the same text is parsed again,
 *   - a comment line is put in front (HGS3_EMALFORMED moves one line down),
 *   - a section the profile cannot match, with its own keys, is appended. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_lib.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_creds.h"
#include "fuzz_common.h"

static int same_creds(const hgs3_creds *a, const hgs3_creds *b)
{
    return hgs3_fuzz_same(a->access_key, b->access_key) &&
           hgs3_fuzz_same(a->secret_key, b->secret_key) &&
           hgs3_fuzz_same(a->session_token, b->session_token);
}

static apr_size_t count_lines(const char *text, apr_size_t len)
{
    apr_size_t i, n = len ? 1 : 0;
    for (i = 0; i < len; ++i) {
        if (text[i] == '\n' && i + 1 < len) {
            ++n;
        }
    }
    return n;
}

static int in_text(const char *v, const char *text, apr_size_t len)
{
    apr_size_t n = strlen(v), i;
    for (i = 0; n <= len && i + n <= len; ++i) {
        if (!memcmp(text + i, v, n)) {
            return 1;
        }
    }
    return 0;
}

static void check_value(const char *v, const char *text, apr_size_t len)
{
    apr_size_t n = strlen(v);
    if (!n || apr_isspace(v[0]) || apr_isspace(v[n - 1]) || strchr(v, '\n') ||
        !in_text(v, text, len)) {
        abort();
    }
}

static apr_status_t parse(hgs3_creds *c, int *line, apr_pool_t *p, const char *text, apr_size_t len,
                          const char *profile)
{
    /* a copy of exactly len bytes, so ASan sees any read past the end */
    char *copy = malloc(len ? len : 1);
    apr_status_t rv;
    memcpy(copy, text, len);
    memset(c, 0x5a, sizeof(*c)); /* the parser must set every field */
    *line = -1;
    rv = hgs3_creds_parse(c, p, copy, len, profile, line);
    free(copy);
    return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *end = s + size, *nl, *text, *want;
    const char *profile;
    apr_size_t len;
    apr_pool_t *p;
    hgs3_creds c, again;
    int line, line2;
    apr_status_t rv, rv2;
    char *other;

    nl = memchr(s, '\n', size);
    if (!nl) {
        return 0;
    }
    apr_pool_create(&p, root_pool);
    profile = apr_pstrmemdup(p, s, (apr_size_t)(nl - s)); /* stops at a NUL too */
    if (!*profile) {
        profile = NULL;
    }
    text = nl + 1;
    len = (apr_size_t)(end - text);

    rv = parse(&c, &line, p, text, len, profile);
    if (rv == APR_SUCCESS) {
        if (line != 0 || !c.access_key || !c.secret_key || (c.session_token && !*c.session_token)) {
            abort();
        }
        check_value(c.access_key, text, len);
        check_value(c.secret_key, text, len);
        if (c.session_token) {
            check_value(c.session_token, text, len);
        }
    } else {
        if (c.access_key || c.secret_key || c.session_token) {
            abort();
        }
        if (rv == HGS3_EMALFORMED) {
            if (line < 1 || (apr_size_t)line > count_lines(text, len)) {
                abort();
            }
        } else if (line != 0 || (rv != HGS3_ENOTFOUND && rv != HGS3_ECONFIG)) {
            abort();
        }
    }

    /* the same text again */
    rv2 = parse(&again, &line2, p, text, len, profile);
    if (rv2 != rv || line2 != line || !same_creds(&c, &again)) {
        abort();
    }

    /* a comment line in front (not before a byte order mark, which only
     * counts at the very start) */
    if (!(len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))) {
        char *shifted = apr_palloc(p, len + 4);
        memcpy(shifted, "# c\n", 4);
        memcpy(shifted + 4, text, len);
        rv2 = parse(&again, &line2, p, shifted, len + 4, profile);
        if (rv2 != rv || !same_creds(&c, &again) ||
            line2 != (rv == HGS3_EMALFORMED ? line + 1 : line)) {
            abort();
        }
    }

    /* a section no profile name can match ("<profile>x" is longer than the
     * profile and than what follows "profile " in it) */
    want = profile ? profile : HGS3_CREDS_DEFAULT_PROFILE;
    other = apr_psprintf(p,
                         "\n[%sx]\naws_access_key_id = OTHERKEY\naws_secret_access_key = "
                         "OTHERSECRET\naws_session_token = OTHERTOKEN\n",
                         want);
    if (rv != HGS3_EMALFORMED && !strchr(want, '\r')) {
        char *longer = apr_palloc(p, len + strlen(other));
        memcpy(longer, text, len);
        memcpy(longer + len, other, strlen(other));
        rv2 = parse(&again, &line2, p, longer, len + strlen(other), profile);
        if (rv2 != rv || line2 != line || !same_creds(&c, &again)) {
            abort();
        }
    }
    apr_pool_destroy(p);
    return 0;
}
