/* hgs3: the operator's tool for mod_hgs3cache's object store.
 *
 * It is built from the same core library as the module, so it signs,
 * addresses and finds credentials exactly as the module does:
 *
 *   hgs3 [options] presign KEY     print a presigned GET URL (and nothing else)
 *   hgs3 [options] head KEY        print status and object headers
 *   hgs3 [options] put KEY FILE    upload FILE ("-": standard input)
 *   hgs3 [options] get KEY         download to standard output (-o FILE)
 *   hgs3 [options] rm KEY          DeleteObject
 *
 * Exit codes: 0 ok, 1 not found, 2 the store refused the credentials,
 * 3 any other error, 64 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_env.h>
#include <apr_date.h>

#include "hgs3_err.h"
#include "hgs3_creds.h"
#include "hgs3_sigv4.h"
#include "hgs3_s3.h"
#include "hgs3_tls.h"

#define EXIT_OK       0
#define EXIT_NOTFOUND 1
#define EXIT_AUTH     2
#define EXIT_ERROR    3
#define EXIT_USAGE    64

#define DEF_EXPIRES    3600
#define DEF_CONNECT_MS 10000

enum {
    OPT_ENDPOINT = 256,
    OPT_REGION,
    OPT_ADDRESSING,
    OPT_BUCKET,
    OPT_ACCESS_KEY,
    OPT_SECRET_KEY,
    OPT_SESSION_TOKEN,
    OPT_CREDS_FILE,
    OPT_PROFILE,
    OPT_EXPIRES,
    OPT_DATE,
    OPT_RESPONSE_CT,
    OPT_CONTENT_TYPE,
    OPT_PART_SIZE,
    OPT_THRESHOLD,
    OPT_PAYLOAD_SHA256,
    OPT_CONNECT_TIMEOUT,
    OPT_TIMEOUT,
    OPT_TRIES,
    OPT_CA_FILE,
    OPT_CA_PATH,
};

static const apr_getopt_option_t options[] = {
    {"endpoint", OPT_ENDPOINT, 1, "URL of the store: http[s]://host[:port][/path]"},
    {"region", OPT_REGION, 1,
     "signing region (default: $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1)"},
    {"addressing", OPT_ADDRESSING, 1, "path|virtual (default: path with --endpoint, else virtual)"},
    {"bucket", OPT_BUCKET, 1, "bucket (required)"},
    {"access-key", OPT_ACCESS_KEY, 1, "access key id"},
    {"secret-key", OPT_SECRET_KEY, 1, "secret access key (prefer a file or the environment)"},
    {"session-token", OPT_SESSION_TOKEN, 1, "session token"},
    {"credentials-file", OPT_CREDS_FILE, 1, "AWS shared credentials file"},
    {"profile", OPT_PROFILE, 1, "profile in the credentials file (default: default)"},
    {"expires", OPT_EXPIRES, 1, "presign: lifetime in seconds, 1..604800 (default 3600)"},
    {"date", OPT_DATE, 1, "presign: sign as of YYYYMMDDTHHMMSSZ instead of now"},
    {"response-content-type", OPT_RESPONSE_CT, 1,
     "presign: Content-Type the store must answer with"},
    {"content-type", OPT_CONTENT_TYPE, 1, "put: Content-Type stored with the object"},
    {"part-size", OPT_PART_SIZE, 1, "put: multipart part size in bytes (>= 5 MiB, default 8 MiB)"},
    {"multipart-threshold", OPT_THRESHOLD, 1, "put: go multipart above this size (default 64 MiB)"},
    {"payload-sha256", OPT_PAYLOAD_SHA256, 1,
     "put: send this x-amz-content-sha256 instead of the body's (tests a store's integrity check)"},
    {"connect-timeout", OPT_CONNECT_TIMEOUT, 1, "connect timeout in ms (default 10000)"},
    {"timeout", OPT_TIMEOUT, 1, "whole request timeout in ms (default none)"},
    {"tries", OPT_TRIES, 1, "attempts per upload request on 5xx/SlowDown (default 3)"},
    {"ca-file", OPT_CA_FILE, 1,
     "PEM bundle of the CAs that verify an https store (default: system)"},
    {"ca-path", OPT_CA_PATH, 1, "hashed directory of CA certificates (default: system)"},
    {"output", 'o', 1, "get: write to FILE instead of standard output"},
    {"verbose", 'v', 0, "report HTTP status, attempts and connections on stderr"},
    {"help", 'h', 0, "this help"},
    {NULL, 0, 0, NULL},
};

typedef struct cli {
    apr_pool_t *pool;
    hgs3_s3_config conf;
    hgs3_creds flag_creds;
    const char *creds_file;
    const char *profile;
    int expires;
    const char *date;
    const char *response_ct;
    const char *content_type;
    const char *payload_sha256;
    const char *output;
    int verbose;
    int addressing_set;
} cli;

static void usage(FILE *out)
{
    const apr_getopt_option_t *o;
    fprintf(out, "usage: hgs3 [options] COMMAND ARGS\n"
                 "commands:\n"
                 "  presign KEY     print a presigned GET URL\n"
                 "  head KEY        print status and headers of an object\n"
                 "  put KEY FILE    upload FILE ('-' reads standard input)\n"
                 "  get KEY         download to standard output, or -o FILE\n"
                 "  rm KEY          delete an object\n"
                 "credentials: --access-key/--secret-key/--session-token, else\n"
                 "  --credentials-file [--profile], else AWS_ACCESS_KEY_ID,\n"
                 "  AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.\n"
                 "exit status: 0 ok, 1 not found, 2 credentials refused, 3 other error, 64 usage\n"
                 "options:\n");
    for (o = options; o->name; ++o) {
        if (o->optch < 256) {
            fprintf(out, "  -%c, --%-22s %s\n", o->optch, o->name, o->description);
        } else {
            fprintf(out, "      --%-22s %s\n", o->name, o->description);
        }
    }
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "hgs3: ");
    fprintf(stderr, fmt, arg ? arg : "");
    fprintf(stderr, "\n(hgs3 --help for usage)\n");
    return EXIT_USAGE;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    apr_int64_t v = apr_strtoi64(s, &end, 10);
    if (!*s || *end || v < min || v > max) {
        return 0;
    }
    *out = (long)v;
    return 1;
}

static int parse_off(const char *s, apr_off_t *out)
{
    char *end;
    apr_off_t v;
    if (apr_strtoff(&v, s, &end, 10) != APR_SUCCESS || !*s || *end || v < 0) {
        return 0;
    }
    *out = v;
    return 1;
}

/* Status -> exit code, in one place. For a lookup, a 403 AccessDenied (no
 * complaint about our signature) is what a reader without s3:ListBucket gets
 * for a missing key: "not found". For a write it is a refusal. */
static int exit_code(apr_status_t rv, hgs3_s3_client *c, int lookup)
{
    if (rv == APR_SUCCESS) {
        return EXIT_OK;
    }
    if (rv == HGS3_ENOTFOUND) {
        return EXIT_NOTFOUND;
    }
    if (rv == HGS3_EAUTH) {
        return (lookup && c && !strcmp(hgs3_s3_last_error(c)->code, "AccessDenied")) ? EXIT_NOTFOUND
                                                                                     : EXIT_AUTH;
    }
    return EXIT_ERROR;
}

static void report(cli *cl, hgs3_s3_client *c, const char *what, const char *key, apr_status_t rv)
{
    char buf[256];
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "hgs3: %s %s: %s", what, key, hgs3_strerror(rv, buf, sizeof(buf)));
        if (c && (hgs3_s3_last_error(c)->status || hgs3_s3_last_error(c)->transport[0])) {
            fprintf(stderr, ": %s", hgs3_s3_error_text(cl->pool, c));
        }
        fprintf(stderr, "\n");
    }
    if (cl->verbose && c) {
        const hgs3_s3_error *e = hgs3_s3_last_error(c);
        fprintf(stderr, "hgs3: %s: HTTP %d, %d attempt(s), %ld new connection(s)\n", what,
                e->status, e->attempts, hgs3_s3_client_connects(c));
    }
}

/* Credentials from the module's sources, in the module's order. */
static int resolve_creds(cli *cl)
{
    const char *source = NULL;
    int line = 0;
    char buf[256];
    apr_status_t rv = hgs3_creds_resolve(&cl->conf.creds, cl->pool, &cl->flag_creds, cl->creds_file,
                                         cl->profile, &source, &line);
    if (rv == APR_SUCCESS) {
        return EXIT_OK;
    }
    if (rv == HGS3_ENOTFOUND && !strcmp(source, "environment")) {
        fprintf(stderr, "hgs3: no credentials: give --access-key/--secret-key, "
                        "--credentials-file, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n");
    } else if (rv == HGS3_ENOTFOUND) {
        fprintf(stderr, "hgs3: profile '%s' not found in %s\n",
                cl->profile ? cl->profile : HGS3_CREDS_DEFAULT_PROFILE, cl->creds_file);
    } else if (rv == HGS3_EMALFORMED) {
        fprintf(stderr, "hgs3: %s:%d: not a section, option or comment\n", cl->creds_file, line);
    } else {
        fprintf(stderr, "hgs3: credentials (%s): %s\n", source,
                hgs3_strerror(rv, buf, sizeof(buf)));
    }
    return EXIT_USAGE;
}

static int cmd_presign(cli *cl, const char *key)
{
    apr_time_t now = apr_time_now();
    const char *url;
    char buf[256];
    apr_status_t rv;

    if (cl->date && hgs3_sigv4_parse_date(&now, cl->date) != APR_SUCCESS) {
        return bad_usage("--date wants YYYYMMDDTHHMMSSZ, not '%s'", cl->date);
    }
    rv = hgs3_s3_presign(&url, cl->pool, &cl->conf, "GET", key, cl->expires, cl->response_ct, now);
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "hgs3: presign %s: %s\n", key, hgs3_strerror(rv, buf, sizeof(buf)));
        return (rv == APR_EINVAL || rv == HGS3_ECONFIG) ? EXIT_USAGE : EXIT_ERROR;
    }
    printf("%s\n", url);
    return EXIT_OK;
}

static int cmd_head(cli *cl, hgs3_s3_client *c, const char *key)
{
    hgs3_s3_object obj;
    apr_status_t rv = hgs3_s3_head(&obj, c, cl->pool, key);

    if (obj.status) {
        printf("status: %d\n", obj.status);
    }
    if (rv == APR_SUCCESS) {
        if (obj.content_length >= 0) {
            printf("content-length: %" APR_OFF_T_FMT "\n", obj.content_length);
        }
        if (obj.content_type) {
            printf("content-type: %s\n", obj.content_type);
        }
        if (obj.last_modified) {
            char date[APR_RFC822_DATE_LEN];
            apr_rfc822_date(date, obj.last_modified);
            printf("last-modified: %s\n", date);
        }
        if (obj.etag) {
            printf("etag: %s\n", obj.etag);
        }
    } else if (rv == HGS3_EAUTH && obj.status == 403) {
        /* HEAD cannot say why; a one-byte GET can. */
        report(cl, c, "head", key, rv);
        rv = hgs3_s3_explain_403(c, cl->pool, key);
        if (rv == APR_SUCCESS) {
            fprintf(stderr, "hgs3: head %s: HEAD was refused but the object is readable\n", key);
            return EXIT_ERROR;
        }
        fprintf(stderr, "hgs3: head %s: %s\n", key,
                rv == HGS3_ENOTFOUND ? "not found (or not readable with these credentials)"
                                     : "the store refused the credentials");
        return exit_code(rv, c, 1);
    }
    report(cl, c, "head", key, rv);
    return exit_code(rv, c, 1);
}

static int cmd_put(cli *cl, hgs3_s3_client *c, const char *key, const char *path)
{
    const char *etag = NULL;
    apr_status_t rv;

    if (!strcmp(path, "-")) {
        /* Standard input: read it whole, then a single PutObject. */
        apr_file_t *in;
        apr_size_t cap = 64 * 1024, len = 0;
        char *data = malloc(cap);
        if (!data || apr_file_open_stdin(&in, cl->pool) != APR_SUCCESS) {
            free(data);
            return EXIT_ERROR;
        }
        for (;;) {
            apr_size_t n = cap - len;
            rv = apr_file_read(in, data + len, &n);
            len += n;
            if (rv == APR_EOF) {
                break;
            }
            if (rv != APR_SUCCESS) {
                free(data);
                report(cl, NULL, "put", key, rv);
                return EXIT_ERROR;
            }
            if (len == cap) {
                char *more = realloc(data, cap * 2);
                if (!more) {
                    free(data);
                    return EXIT_ERROR;
                }
                data = more;
                cap *= 2;
            }
        }
        rv = hgs3_s3_put_mem(c, cl->pool, key, data, len, cl->content_type, cl->payload_sha256,
                             &etag);
        free(data);
    } else if (cl->payload_sha256) {
        rv = hgs3_s3_put_file(c, cl->pool, key, path, cl->content_type, cl->payload_sha256, &etag);
    } else {
        rv = hgs3_s3_upload_file(c, cl->pool, key, path, cl->content_type, &etag);
    }
    report(cl, c, "put", key, rv);
    if (rv == APR_SUCCESS && cl->verbose && etag) {
        fprintf(stderr, "hgs3: put %s: etag %s\n", key, etag);
    }
    return APR_STATUS_IS_ENOENT(rv) ? EXIT_ERROR : exit_code(rv, c, 0);
}

static apr_status_t write_data(void *baton, const char *data, apr_size_t len)
{
    return apr_file_write_full(baton, data, len, NULL);
}

static int cmd_get(cli *cl, hgs3_s3_client *c, const char *key)
{
    apr_file_t *out = NULL;
    char *tmp = NULL;
    apr_status_t rv;

    if (cl->output) {
        /* A temp file next to the target, renamed on success: a failed
         * download leaves no partial file behind. */
        tmp = apr_pstrcat(cl->pool, cl->output, ".hgs3.XXXXXX", NULL);
        rv = apr_file_mktemp(&out, tmp,
                             APR_FOPEN_CREATE | APR_FOPEN_WRITE | APR_FOPEN_EXCL |
                                 APR_FOPEN_BINARY | APR_FOPEN_BUFFERED | APR_FOPEN_LARGEFILE,
                             cl->pool);
        if (rv == APR_SUCCESS) {
            apr_file_perms_set(tmp, APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD |
                                        APR_FPROT_WREAD);
        }
    } else {
        rv = apr_file_open_stdout(&out, cl->pool);
    }
    if (rv != APR_SUCCESS) {
        report(cl, NULL, "get", key, rv);
        return EXIT_ERROR;
    }
    rv = hgs3_s3_get(c, cl->pool, key, NULL, write_data, out);
    if (rv == APR_SUCCESS) {
        rv = apr_file_flush(out);
    }
    if (tmp) {
        apr_status_t crv = apr_file_close(out);
        if (rv == APR_SUCCESS) {
            rv = crv;
        }
        if (rv == APR_SUCCESS) {
            rv = apr_file_rename(tmp, cl->output, cl->pool);
        }
        if (rv != APR_SUCCESS) {
            apr_file_remove(tmp, cl->pool);
        }
    }
    report(cl, c, "get", key, rv);
    return exit_code(rv, c, 1);
}

static int cmd_rm(cli *cl, hgs3_s3_client *c, const char *key)
{
    apr_status_t rv = hgs3_s3_delete(c, cl->pool, key);
    report(cl, c, "rm", key, rv);
    return exit_code(rv, c, 0);
}

static const apr_getopt_option_t *find_option(const char *name, apr_size_t len, int optch)
{
    const apr_getopt_option_t *o;
    for (o = options; o->name; ++o) {
        if (name ? (strlen(o->name) == len && !strncmp(o->name, name, len)) : o->optch == optch) {
            return o;
        }
    }
    return NULL;
}

/* Options may come anywhere ("hgs3 get KEY -o FILE"). apr_getopt's own
 * interleave mode loses the value of a trailing "--opt value", so move the
 * options (with their values) in front and the arguments behind "--". */
static const char *const *reorder(apr_pool_t *p, int argc, const char *const *argv)
{
    const char **out = apr_pcalloc(p, sizeof(*out) * (apr_size_t)(argc + 2));
    const char **pos = apr_pcalloc(p, sizeof(*pos) * (apr_size_t)(argc + 1));
    int i, no = 0, np = 0, rest = 0;

    out[no++] = argv[0];
    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const apr_getopt_option_t *o = NULL;
        if (rest || a[0] != '-' || !a[1]) {
            pos[np++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            rest = 1;
            continue;
        }
        out[no++] = a;
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            o = eq ? NULL : find_option(a + 2, strlen(a + 2), 0);
        } else if (!a[2]) {
            o = find_option(NULL, 0, a[1]);
        }
        if (o && o->has_arg && i + 1 < argc) {
            out[no++] = argv[++i];
        }
    }
    out[no++] = "--";
    for (i = 0; i < np; ++i) {
        out[no++] = pos[i];
    }
    out[no] = NULL;
    return out;
}

static int parse_options(cli *cl, int *argc, const char *const **argv, int *first_arg)
{
    apr_getopt_t *os;
    const char *arg;
    apr_status_t rv;
    long n;
    int ch;

    *argv = reorder(cl->pool, *argc, *argv);
    for (n = 0; (*argv)[n]; ++n) {
    }
    *argc = (int)n;
    apr_getopt_init(&os, cl->pool, *argc, *argv);
    os->errfn = NULL;
    while ((rv = apr_getopt_long(os, options, &ch, &arg)) == APR_SUCCESS) {
        switch (ch) {
        case OPT_ENDPOINT:
            cl->conf.endpoint = arg;
            break;
        case OPT_REGION:
            cl->conf.region = arg;
            break;
        case OPT_ADDRESSING:
            if (!strcmp(arg, "path")) {
                cl->conf.addressing = HGS3_S3_PATH;
            } else if (!strcmp(arg, "virtual")) {
                cl->conf.addressing = HGS3_S3_VIRTUAL;
            } else {
                return bad_usage("--addressing wants path or virtual, not '%s'", arg);
            }
            cl->addressing_set = 1;
            break;
        case OPT_BUCKET:
            cl->conf.bucket = arg;
            break;
        case OPT_ACCESS_KEY:
            cl->flag_creds.access_key = arg;
            break;
        case OPT_SECRET_KEY:
            cl->flag_creds.secret_key = arg;
            break;
        case OPT_SESSION_TOKEN:
            cl->flag_creds.session_token = arg;
            break;
        case OPT_CREDS_FILE:
            cl->creds_file = arg;
            break;
        case OPT_PROFILE:
            cl->profile = arg;
            break;
        case OPT_EXPIRES:
            if (!parse_long(arg, 1, HGS3_SIGV4_MAX_EXPIRES, &n)) {
                return bad_usage("--expires wants 1..604800 seconds, not '%s'", arg);
            }
            cl->expires = (int)n;
            break;
        case OPT_DATE:
            cl->date = arg;
            break;
        case OPT_RESPONSE_CT:
            cl->response_ct = arg;
            break;
        case OPT_CONTENT_TYPE:
            cl->content_type = arg;
            break;
        case OPT_PART_SIZE:
            if (!parse_off(arg, &cl->conf.part_size) ||
                cl->conf.part_size < HGS3_S3_MIN_PART_SIZE ||
                cl->conf.part_size > HGS3_S3_MAX_PART_SIZE) {
                return bad_usage("--part-size wants 5 MiB to 5 GiB in bytes, not '%s'", arg);
            }
            break;
        case OPT_THRESHOLD:
            if (!parse_off(arg, &cl->conf.multipart_threshold) ||
                cl->conf.multipart_threshold < 1) {
                return bad_usage("--multipart-threshold wants a size in bytes, not '%s'", arg);
            }
            break;
        case OPT_PAYLOAD_SHA256:
            cl->payload_sha256 = arg;
            break;
        case OPT_CONNECT_TIMEOUT:
            if (!parse_long(arg, 1, 3600000, &cl->conf.connect_timeout_ms)) {
                return bad_usage("--connect-timeout wants milliseconds, not '%s'", arg);
            }
            break;
        case OPT_TIMEOUT:
            if (!parse_long(arg, 0, 86400000, &cl->conf.timeout_ms)) {
                return bad_usage("--timeout wants milliseconds, not '%s'", arg);
            }
            break;
        case OPT_TRIES:
            if (!parse_long(arg, 1, HGS3_S3_MAX_TRIES, &n)) {
                return bad_usage("--tries wants 1..10, not '%s'", arg);
            }
            cl->conf.upload_tries = (int)n;
            break;
        case OPT_CA_FILE:
            cl->conf.ca_file = arg;
            break;
        case OPT_CA_PATH:
            cl->conf.ca_path = arg;
            break;
        case 'o':
            cl->output = arg;
            break;
        case 'v':
            cl->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return -1;
        }
    }
    if (rv != APR_EOF) {
        return bad_usage("unknown option or missing value near '%s'",
                         os->ind > 0 && os->ind <= *argc ? (*argv)[os->ind - 1] : "");
    }
    *first_arg = os->ind;
    return EXIT_OK;
}

static int run(cli *cl, int argc, const char *const *argv)
{
    const char *cmd, *key, *msg = NULL;
    hgs3_s3_client *c = NULL;
    int first = 0, nargs, rc;
    apr_status_t rv;
    char *env;

    cl->expires = DEF_EXPIRES;
    cl->conf.connect_timeout_ms = DEF_CONNECT_MS;
    if ((rc = parse_options(cl, &argc, &argv, &first)) != EXIT_OK) {
        return rc < 0 ? EXIT_OK : rc;
    }
    nargs = argc - first;
    if (nargs < 1) {
        return bad_usage("no command given%s", "");
    }
    cmd = argv[first];
    key = nargs > 1 ? argv[first + 1] : NULL;
    if (!strcmp(cmd, "put") ? nargs != 3 : nargs != 2) {
        return bad_usage("wrong number of arguments for '%s'", cmd);
    }
    if (strcmp(cmd, "presign") && strcmp(cmd, "head") && strcmp(cmd, "put") && strcmp(cmd, "get") &&
        strcmp(cmd, "rm")) {
        return bad_usage("unknown command '%s'", cmd);
    }
    if (!key || !*key) {
        return bad_usage("empty key%s", "");
    }
    if (cl->profile && !cl->creds_file) {
        return bad_usage("--profile needs --credentials-file%s", "");
    }
    if (!cl->conf.region) {
        if ((apr_env_get(&env, "AWS_REGION", cl->pool) == APR_SUCCESS && *env) ||
            (apr_env_get(&env, "AWS_DEFAULT_REGION", cl->pool) == APR_SUCCESS && *env)) {
            cl->conf.region = env;
        }
    }
    if (!cl->addressing_set) {
        cl->conf.addressing = cl->conf.endpoint ? HGS3_S3_PATH : HGS3_S3_VIRTUAL;
    }
    if ((rc = resolve_creds(cl)) != EXIT_OK) {
        return rc;
    }
    if (hgs3_s3_config_check(&cl->conf, cl->pool, &msg) != APR_SUCCESS) {
        return bad_usage("%s", msg);
    }
    if (cl->conf.ca_file && hgs3_tls_check_ca_file(cl->pool, cl->conf.ca_file, &msg)) {
        return bad_usage("--ca-file: %s", msg);
    }
    if (cl->conf.ca_path && hgs3_tls_check_ca_path(cl->pool, cl->conf.ca_path, &msg)) {
        return bad_usage("--ca-path: %s", msg);
    }
    if (!strcmp(cmd, "presign")) {
        return cmd_presign(cl, key);
    }
    if ((rv = hgs3_s3_client_create(&c, cl->pool, &cl->conf)) != APR_SUCCESS) {
        report(cl, NULL, "client", "", rv);
        return EXIT_ERROR;
    }
    if (!strcmp(cmd, "head")) {
        return cmd_head(cl, c, key);
    }
    if (!strcmp(cmd, "put")) {
        return cmd_put(cl, c, key, argv[first + 2]);
    }
    if (!strcmp(cmd, "get")) {
        return cmd_get(cl, c, key);
    }
    return cmd_rm(cl, c, key);
}

int main(int argc, const char *const *argv, const char *const *env)
{
    cli cl;
    int rc;

    if (apr_app_initialize(&argc, &argv, &env) != APR_SUCCESS) {
        fprintf(stderr, "hgs3: cannot initialize APR\n");
        return EXIT_ERROR;
    }
    if (hgs3_s3_global_init() != APR_SUCCESS) {
        fprintf(stderr, "hgs3: cannot initialize libcurl\n");
        apr_terminate();
        return EXIT_ERROR;
    }
    memset(&cl, 0, sizeof(cl));
    apr_pool_create(&cl.pool, NULL);
    rc = run(&cl, argc, argv);
    fflush(stdout);
    apr_pool_destroy(cl.pool); /* closes the client and its connections */
    hgs3_s3_global_cleanup();
    apr_terminate();
    return rc;
}
