/* hgs3_creds.h: AWS credentials and where they come from.
 *
 * mod_hgs3cache and the hgs3 tool take credentials from the same sources, in
 * the same order:
 *   1. static values (directives HgS3CacheAccessKeyId/SecretAccessKey/
 *      SessionToken, or the tool's --access-key/--secret-key/--session-token);
 *   2. an AWS shared-credentials INI file and a profile in it;
 *   3. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *      AWS_SESSION_TOKEN.
 * The first source that provides an access key wins, as a whole: a session
 * token from the environment is never mixed with a key from a file.
 *
 * The INI format is the one botocore reads for ~/.aws/credentials:
 *   # comment            ; comment
 *   [default]
 *   aws_access_key_id = AKIA...
 *   aws_secret_access_key = ...
 *   aws_session_token = ...        (aws_security_token is accepted too)
 * Section names are matched exactly; "[profile NAME]" (the ~/.aws/config
 * spelling) is accepted for NAME when there is no "[NAME]". Option names are
 * case-insensitive, whitespace around names, '=' and values is ignored, and
 * later values override earlier ones.
 *
 * No function here ever puts a secret or token into an error text. */
#ifndef HGS3_CREDS_H
#define HGS3_CREDS_H

#include <apr_pools.h>

/* What the signer needs. session_token is NULL when there is none (an empty
 * token is normalised to NULL). */
typedef struct hgs3_creds {
    const char *access_key;
    const char *secret_key;
    const char *session_token;
} hgs3_creds;

/* The profile used when none is given. */
#define HGS3_CREDS_DEFAULT_PROFILE "default"
/* Larger credentials files are refused (HGS3_ETOOBIG). */
#define HGS3_CREDS_MAX_FILE (64 * 1024)

/* Parse INI text (len bytes, need not be NUL terminated) and pick profile
 * (NULL: "default"). Strings are copied into p.
 * Returns HGS3_ENOTFOUND when the profile is absent, HGS3_ECONFIG when it
 * lacks an access key or a secret, HGS3_EMALFORMED on a line that is neither
 * a section, an option, a comment nor blank. On failure *out is zeroed;
 * *lineno (optional) gets the offending line for HGS3_EMALFORMED. */
apr_status_t hgs3_creds_parse(hgs3_creds *out, apr_pool_t *p, const char *text, apr_size_t len,
                              const char *profile, int *lineno);

/* Read and parse a credentials file (at most HGS3_CREDS_MAX_FILE bytes). */
apr_status_t hgs3_creds_load_file(hgs3_creds *out, apr_pool_t *p, const char *path,
                                  const char *profile, int *lineno);

/* AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
 * HGS3_ENOTFOUND when AWS_ACCESS_KEY_ID is unset or empty, HGS3_ECONFIG
 * when the key is set but the secret is not. */
apr_status_t hgs3_creds_from_env(hgs3_creds *out, apr_pool_t *p);

/* The documented order: statics (when static_creds->access_key is set), else
 * file (when file is set), else environment. static_creds may be NULL.
 * *source (optional) is set to "static", "file" or "environment". */
apr_status_t hgs3_creds_resolve(hgs3_creds *out, apr_pool_t *p, const hgs3_creds *static_creds,
                                const char *file, const char *profile, const char **source,
                                int *lineno);

#endif
