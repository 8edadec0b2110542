/* test_s3.c: S3 XML documents, endpoint/addressing rules, presigned URLs
 * and transport failures of the S3 client, without a store. (The client
 * against real stores is tested by tests/test_s3client.py.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_network_io.h>
#include <apr_thread_proc.h>
#include <stdio.h>
#include <apr_file_io.h>

#include "hgs3_err.h"
#include "hgs3_s3xml.h"
#include "hgs3_s3.h"
#include "mock_s3.h"

static apr_pool_t *pool;

static apr_status_t xml_error(const char *body, const char **code, const char **msg,
                              const char **rid)
{
    return hgs3_s3xml_error(pool, body, strlen(body), code, msg, rid);
}

static void test_xml_error(void **state)
{
    const char *code, *msg, *rid;
    (void)state;
    assert_int_equal(xml_error("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                               "<Error><Code>SignatureDoesNotMatch</Code>"
                               "<Message>The request signature we calculated does not match"
                               "</Message><StringToSign>AWS4-HMAC-SHA256...</StringToSign>"
                               "<RequestId>4442587FB7D0A2F9</RequestId></Error>",
                               &code, &msg, &rid),
                     APR_SUCCESS);
    assert_string_equal(code, "SignatureDoesNotMatch");
    assert_string_equal(msg, "The request signature we calculated does not match");
    assert_string_equal(rid, "4442587FB7D0A2F9");

    assert_int_equal(xml_error("<Error><Code>NoSuchKey</Code></Error>", &code, &msg, &rid),
                     APR_SUCCESS);
    assert_string_equal(code, "NoSuchKey");
    assert_null(msg);
    assert_null(rid);
    assert_int_equal(xml_error("<ListBucketResult/>", &code, &msg, &rid), HGS3_EPROTO);
    assert_null(code);
    assert_int_equal(xml_error("<Error><Code>x</Code>", &code, &msg, &rid), HGS3_EPROTO);
    assert_int_equal(xml_error("not xml at all", &code, &msg, &rid), HGS3_EPROTO);
    assert_int_equal(hgs3_s3xml_error(pool, NULL, 0, &code, &msg, &rid), HGS3_EPROTO);
}

/* expat hands text over piece by piece; a body of many pieces must cost
 * linear memory, and a field is capped. */
static void test_xml_many_pieces(void **state)
{
    const char *code, *msg, *rid;
    apr_size_t n = 65000, i;
    char *body = apr_palloc(pool, n + 64), *d = body;
    (void)state;
    d += sprintf(d, "<Error><Code>");
    for (i = 0; i < n; ++i) {
        *d++ = '\n';
    }
    d += sprintf(d, "</Code></Error>");
    *d = '\0';
    assert_int_equal(hgs3_s3xml_error(pool, body, (apr_size_t)(d - body), &code, &msg, &rid),
                     APR_SUCCESS);
    assert_int_equal(strlen(code), 1024);
}

static void test_xml_upload_id(void **state)
{
    const char *id;
    const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<InitiateMultipartUploadResult "
                      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                      "<Bucket>b</Bucket><Key>k</Key>"
                      "<UploadId>VXBsb2FkIElE&amp;x</UploadId>"
                      "</InitiateMultipartUploadResult>";
    (void)state;
    assert_int_equal(hgs3_s3xml_upload_id(&id, pool, doc, strlen(doc)), APR_SUCCESS);
    assert_string_equal(id, "VXBsb2FkIElE&x");
    doc = "<InitiateMultipartUploadResult><UploadId></UploadId></InitiateMultipartUploadResult>";
    assert_int_equal(hgs3_s3xml_upload_id(&id, pool, doc, strlen(doc)), HGS3_EPROTO);
    assert_null(id);
    doc = "<Error><Code>AccessDenied</Code></Error>";
    assert_int_equal(hgs3_s3xml_upload_id(&id, pool, doc, strlen(doc)), HGS3_EPROTO);
}

static void test_xml_complete(void **state)
{
    apr_array_header_t *etags = apr_array_make(pool, 2, sizeof(const char *));
    const char *body, *etag;
    const char *ok = "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/"
                     "2006-03-01/\"><Location>x</Location><ETag>&quot;abc-2&quot;</ETag>"
                     "</CompleteMultipartUploadResult>";
    const char *err = "<Error><Code>InternalError</Code></Error>";
    (void)state;

    APR_ARRAY_PUSH(etags, const char *) = "\"a1\"";
    APR_ARRAY_PUSH(etags, const char *) = "\"b<&2\"";
    body = hgs3_s3xml_complete_body(pool, etags);
    assert_string_equal(
        body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
              "<Part><PartNumber>1</PartNumber><ETag>\"a1\"</ETag></Part>"
              "<Part><PartNumber>2</PartNumber><ETag>\"b&lt;&amp;2\"</ETag></Part>"
              "</CompleteMultipartUpload>");
    /* What we write, apr_xml reads back. */
    assert_int_equal(hgs3_s3xml_root(&etag, pool, body, strlen(body)), APR_SUCCESS);
    assert_string_equal(etag, "CompleteMultipartUpload");

    assert_int_equal(hgs3_s3xml_complete_result(&etag, pool, ok, strlen(ok)), APR_SUCCESS);
    assert_string_equal(etag, "\"abc-2\"");
    /* A 200 answer can still carry an error. */
    assert_int_equal(hgs3_s3xml_complete_result(&etag, pool, err, strlen(err)), HGS3_EPROTO);
    assert_null(etag);
}

static hgs3_s3_config base_conf(const char *endpoint, int addressing, const char *bucket)
{
    hgs3_s3_config c;
    memset(&c, 0, sizeof(c));
    c.endpoint = endpoint;
    c.addressing = addressing;
    c.bucket = bucket;
    c.region = "us-east-1";
    c.creds.access_key = "AKIAIOSFODNN7EXAMPLE";
    c.creds.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    return c;
}

static const char *url_of(const char *endpoint, int addressing, const char *bucket, const char *key)
{
    hgs3_s3_config c = base_conf(endpoint, addressing, bucket);
    const char *url = NULL;
    apr_status_t rv = hgs3_s3_object_url(&url, pool, &c, key);
    if (rv == APR_EINVAL) {
        return "EINVAL";
    }
    return rv == APR_SUCCESS ? url : apr_psprintf(pool, "error %d", rv);
}

static void test_addressing(void **state)
{
    (void)state;
    assert_string_equal(url_of("http://127.0.0.1:9000", HGS3_S3_PATH, "bkt", "a b/c+d"),
                        "http://127.0.0.1:9000/bkt/a%20b/c%2Bd");
    /* The scheme's default port is not part of Host (botocore does the same). */
    assert_string_equal(url_of("http://Store.example:80/", HGS3_S3_PATH, "bkt", "k"),
                        "http://Store.example/bkt/k");
    assert_string_equal(url_of("https://h:443", HGS3_S3_VIRTUAL, "bkt", "k"), "https://bkt.h/k");
    assert_string_equal(url_of("https://h:8443/base/", HGS3_S3_VIRTUAL, "bkt", "k/"),
                        "https://bkt.h:8443/base/k/");
    assert_string_equal(url_of("http://[::1]:9000", HGS3_S3_PATH, "bkt", "k"),
                        "http://[::1]:9000/bkt/k");
    assert_string_equal(url_of(NULL, HGS3_S3_VIRTUAL, "bkt", "k"),
                        "https://bkt.s3.us-east-1.amazonaws.com/k");
    assert_string_equal(url_of("http://h", HGS3_S3_PATH, "bkt", ""), "EINVAL");
    /* dots are refused for virtual-hosted addressing over https only */
    assert_string_equal(url_of("http://h", HGS3_S3_VIRTUAL, "my.bkt", "k"), "http://my.bkt.h/k");
}

static void check_bad(const char *endpoint, int addressing, const char *bucket)
{
    hgs3_s3_config c = base_conf(endpoint, addressing, bucket);
    const char *msg = NULL;
    print_message("  %s %s\n", endpoint, bucket);
    assert_int_equal(hgs3_s3_config_check(&c, pool, &msg), HGS3_ECONFIG);
    assert_non_null(msg);
    assert_null(strstr(msg, c.creds.secret_key));
}

static void test_config_check(void **state)
{
    hgs3_s3_config c = base_conf("http://127.0.0.1:9000", HGS3_S3_PATH, "bkt");
    const char *msg = NULL;
    (void)state;

    assert_int_equal(hgs3_s3_config_check(&c, pool, &msg), APR_SUCCESS);
    check_bad("ftp://h", HGS3_S3_PATH, "bkt");
    check_bad("http://user:pw@h", HGS3_S3_PATH, "bkt");
    check_bad("http://h/?x=1", HGS3_S3_PATH, "bkt");
    check_bad("http://h/a b", HGS3_S3_PATH, "bkt");
    check_bad("not a url", HGS3_S3_PATH, "bkt");
    check_bad("http://h", HGS3_S3_PATH, "");
    check_bad("http://h", HGS3_S3_PATH, "a/b");
    check_bad("http://127.0.0.1:9000", HGS3_S3_VIRTUAL, "bkt");
    check_bad("http://[::1]:9000", HGS3_S3_VIRTUAL, "bkt");
    check_bad("https://s3.amazonaws.com", HGS3_S3_VIRTUAL, "my.bucket");
    check_bad("https://s3.amazonaws.com", HGS3_S3_VIRTUAL, "Upper");
    check_bad("https://s3.amazonaws.com", 7, "bkt");
    /* S3's naming rules, whatever the addressing */
    check_bad("http://h", HGS3_S3_PATH, "ab");
    check_bad("http://h", HGS3_S3_PATH, "Bad_Name");
    check_bad("http://h", HGS3_S3_PATH, "-bkt");
    check_bad("http://h", HGS3_S3_PATH, "bkt.");

    /* the single-setting checks are the same rules */
    assert_int_equal(hgs3_s3_check_bucket("hg-cache.1", &msg), APR_SUCCESS);
    assert_null(msg);
    assert_int_equal(hgs3_s3_check_bucket("Bad_Name", &msg), HGS3_ECONFIG);
    assert_non_null(msg);
    assert_int_equal(hgs3_s3_check_bucket(NULL, &msg), HGS3_ECONFIG);
    assert_int_equal(hgs3_s3_check_endpoint(pool, "https://h:8443/base/", &msg), APR_SUCCESS);
    assert_int_equal(hgs3_s3_check_endpoint(pool, "http://127.0.0.1:9", &msg), APR_SUCCESS);
    assert_int_equal(hgs3_s3_check_endpoint(pool, "http://u:Pw5@h", &msg), HGS3_ECONFIG);
    assert_null(strstr(msg, "Pw5"));
    assert_int_equal(hgs3_s3_check_endpoint(pool, "ftp://h", &msg), HGS3_ECONFIG);
    assert_int_equal(hgs3_s3_check_endpoint(pool, "", &msg), HGS3_ECONFIG);
    assert_int_equal(hgs3_s3_check_endpoint(pool, NULL, &msg), HGS3_ECONFIG);

    c.part_size = 5 * 1024 * 1024 - 1;
    assert_int_equal(hgs3_s3_config_check(&c, pool, &msg), HGS3_ECONFIG);
    c.part_size = 5 * 1024 * 1024;
    assert_int_equal(hgs3_s3_config_check(&c, pool, &msg), APR_SUCCESS);
    c.upload_tries = 11;
    assert_int_equal(hgs3_s3_config_check(&c, pool, &msg), HGS3_ECONFIG);
    c.upload_tries = 0;
    c.region = "us east";
    assert_int_equal(hgs3_s3_config_check(&c, pool, &msg), HGS3_ECONFIG);
}

/* The S3 documentation's presigned GET, built from a client configuration. */
static void test_presign_doc_example(void **state)
{
    hgs3_s3_config c = base_conf("https://s3.amazonaws.com", HGS3_S3_VIRTUAL, "examplebucket");
    const char *url;
    apr_time_t t;
    (void)state;

    assert_int_equal(hgs3_sigv4_parse_date(&t, "20130524T000000Z"), APR_SUCCESS);
    assert_int_equal(hgs3_s3_presign(&url, pool, &c, "GET", "test.txt", 86400, NULL, t),
                     APR_SUCCESS);
    assert_string_equal(
        url, "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-"
             "Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-"
             "Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
             "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    assert_int_equal(hgs3_s3_presign(&url, pool, &c, "GET", "test.txt", 604801, NULL, t),
                     APR_EINVAL);
    assert_null(url);
}

/* Store-supplied text is redacted of whatever looks like a credential; the
 * rest is kept, so a log still says what happened. */
static void test_redact(void **state)
{
    static const char auth[] =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    const char *r;
    (void)state;

    assert_null(hgs3_s3xml_redact(pool, NULL));
    assert_string_equal(hgs3_s3xml_redact(pool, ""), "");
    assert_string_equal(hgs3_s3xml_redact(pool, "SlowDown"), "SlowDown");
    /* request ids as AWS, Swift and s3rver send them */
    assert_string_equal(hgs3_s3xml_redact(pool, "4442587FB7D0A2F9"), "4442587FB7D0A2F9");
    assert_string_equal(hgs3_s3xml_redact(pool, "txb0c3b1e5a4b24b4e9f2d1-0065708f3a"),
                        "txb0c3b1e5a4b24b4e9f2d1-0065708f3a");
    assert_string_equal(hgs3_s3xml_redact(pool, "Please reduce your\nrequest rate."),
                        "Please reduce your request rate.");
    /* an echoed Authorization header, bare or named */
    r = hgs3_s3xml_redact(pool, auth);
    assert_string_equal(r, "[redacted]");
    r = hgs3_s3xml_redact(pool, apr_pstrcat(pool, "You sent Authorization: ", auth, NULL));
    assert_string_equal(r, "You sent [redacted]");
    assert_string_equal(hgs3_s3xml_redact(pool, "header authorization: Basic YWxpY2U6c2VjcmV0"),
                        "header [redacted]");
    assert_string_equal(hgs3_s3xml_redact(pool, "got Basic YWxpY2U6c2VjcmV0 here"),
                        "got [redacted]");
    /* the parts alone */
    assert_string_equal(
        hgs3_s3xml_redact(pool, "scope AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request is bad"),
        "scope [redacted] is bad");
    assert_string_equal(
        hgs3_s3xml_redact(pool, "<sig>5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fb"
                                "f31</sig>"),
        "<sig>[redacted]</sig>");
    /* error codes that merely name the header stay */
    assert_string_equal(hgs3_s3xml_redact(pool, "AuthorizationHeaderMalformed"),
                        "AuthorizationHeaderMalformed");
    assert_string_equal(hgs3_s3xml_redact(pool, "key AKIAIOSFODNN7EXAMPLE unknown"),
                        "key [redacted] unknown");
    assert_string_equal(hgs3_s3xml_redact(pool, "secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY!"),
                        "secret [redacted]");
    assert_string_equal(hgs3_s3xml_redact(pool, "X-Amz-Security-Token=FQoGZXIvYXdzE"),
                        "X-Amz-[redacted]");
}

/* The checks on a HEAD and on a streamed GET's answer head. */
static void test_check_answers(void **state)
{
    hgs3_s3_object head = {200, 1000, "application/mercurial-0.2", "\"e\"", 1};
    hgs3_s3_object o;
    (void)state;

    assert_int_equal(hgs3_s3_check_head(&head), APR_SUCCESS);
    o = head, o.status = 206;
    assert_int_equal(hgs3_s3_check_head(&o), HGS3_EPROTO);
    o = head, o.content_length = -1; /* "200 OK" and a close */
    assert_int_equal(hgs3_s3_check_head(&o), HGS3_EPROTO);
    o = head, o.content_length = 0;
    assert_int_equal(hgs3_s3_check_head(&o), HGS3_EPROTO);
    o = head, o.last_modified = 0; /* missing or unparsable */
    assert_int_equal(hgs3_s3_check_head(&o), HGS3_EPROTO);

    assert_int_equal(hgs3_s3_check_get(&head, &head), APR_SUCCESS);
    assert_int_equal(hgs3_s3_check_get(&head, NULL), APR_SUCCESS);
    o = head, o.status = 206, o.content_length = 500;
    assert_int_equal(hgs3_s3_check_get(&o, NULL), HGS3_EPROTO);
    o = head, o.content_length = 500; /* not the HEAD's size */
    assert_int_equal(hgs3_s3_check_get(&o, &head), HGS3_EPROTO);
    assert_int_equal(hgs3_s3_check_get(&o, NULL), APR_SUCCESS);
    o = head, o.content_length = -1; /* chunked, or nothing */
    assert_int_equal(hgs3_s3_check_get(&o, NULL), HGS3_EPROTO);
    o = head, o.content_type = "text/html";
    assert_int_equal(hgs3_s3_check_get(&o, NULL), HGS3_EPROTO);
    o = head, o.content_type = NULL;
    assert_int_equal(hgs3_s3_check_get(&o, NULL), HGS3_EPROTO);
    o = head, o.content_type = "application/mercurial-0.1";
    assert_int_equal(hgs3_s3_check_get(&o, NULL), APR_SUCCESS);
    assert_int_equal(hgs3_s3_check_get(&o, &head), HGS3_EPROTO); /* not the stored type */
}

/* A port where nothing listens: a transport error, reported as such. */
static void test_connection_refused(void **state)
{
    hgs3_s3_config c = base_conf("http://127.0.0.1:9", HGS3_S3_PATH, "bkt");
    hgs3_s3_client *cl;
    hgs3_s3_object obj;
    (void)state;

    c.connect_timeout_ms = 2000;
    assert_int_equal(hgs3_s3_client_create(&cl, pool, &c), APR_SUCCESS);
    assert_int_equal(hgs3_s3_head(&obj, cl, pool, "k"), HGS3_ECONN);
    assert_int_equal(hgs3_s3_last_error(cl)->status, 0);
    assert_true(hgs3_s3_last_error(cl)->transport[0] != '\0');
    assert_true(hgs3_is_store_failure(HGS3_ECONN));
}

/* A store that accepts the connection and never answers: the total timeout
 * bounds the wait, and uploads are not retried on a timeout. */
static void test_timeout(void **state)
{
    apr_socket_t *s;
    apr_sockaddr_t *sa;
    hgs3_s3_config c;
    hgs3_s3_client *cl;
    hgs3_s3_object obj;
    apr_time_t start;
    (void)state;

    assert_int_equal(apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0, pool), APR_SUCCESS);
    assert_int_equal(apr_socket_create(&s, APR_INET, SOCK_STREAM, APR_PROTO_TCP, pool),
                     APR_SUCCESS);
    assert_int_equal(apr_socket_bind(s, sa), APR_SUCCESS);
    assert_int_equal(apr_socket_listen(s, 8), APR_SUCCESS);
    assert_int_equal(apr_socket_addr_get(&sa, APR_LOCAL, s), APR_SUCCESS);

    c = base_conf(apr_psprintf(pool, "http://127.0.0.1:%d", sa->port), HGS3_S3_PATH, "bkt");
    c.timeout_ms = 300;
    assert_int_equal(hgs3_s3_client_create(&cl, pool, &c), APR_SUCCESS);
    start = apr_time_now();
    assert_int_equal(hgs3_s3_head(&obj, cl, pool, "k"), HGS3_ETIMEOUT);
    assert_true(apr_time_now() - start < apr_time_from_sec(3));
    assert_int_equal(hgs3_s3_put_mem(cl, pool, "k", "x", 1, NULL, NULL, NULL), HGS3_ETIMEOUT);
    assert_int_equal(hgs3_s3_last_error(cl)->attempts, 1);
    apr_socket_close(s);
}

/* ---- against a scripted server (mock_s3.h) ---------------------------------- */

static hgs3_s3_client *mock_client(mock *m, apr_pool_t *p, int tries)
{
    hgs3_s3_config c =
        base_conf(apr_psprintf(p, "http://127.0.0.1:%d", m->port), HGS3_S3_PATH, "bkt");
    hgs3_s3_client *cl;
    c.upload_tries = tries;
    c.timeout_ms = 5000;
    assert_int_equal(hgs3_s3_client_create(&cl, p, &c), APR_SUCCESS);
    return cl;
}

#define ERR(code) "<?xml version=\"1.0\"?><Error><Code>" code "</Code><Message>m</Message></Error>"

/* Every status/code pair the client maps, HEAD and GET alike. */
static void test_status_mapping(void **state)
{
    static const struct {
        scripted answer;
        apr_status_t expect;
    } cases[] = {
        {{404, NULL, ERR("NoSuchKey")}, HGS3_ENOTFOUND},
        {{404, NULL, ERR("NoSuchBucket")}, HGS3_ECONFIG},
        {{403, NULL, ERR("SignatureDoesNotMatch")}, HGS3_EAUTH},
        {{403, NULL, ERR("AccessDenied")}, HGS3_EAUTH},
        {{400, NULL, ERR("AuthorizationHeaderMalformed")}, HGS3_EAUTH},
        {{400, NULL, ERR("ExpiredToken")}, HGS3_EAUTH},
        {{400, NULL, ERR("BadDigest")}, HGS3_ECLIENT},
        {{400, NULL, ERR("RequestTimeout")}, HGS3_ESTORE},
        {{503, NULL, ERR("SlowDown")}, HGS3_ESTORE},
        {{500, NULL, ""}, HGS3_ESTORE},
        {{429, NULL, ""}, HGS3_ESTORE},
        {{301, "Location: http://elsewhere/\r\n", ERR("PermanentRedirect")}, HGS3_EPROTO},
        {{200, "Content-Type: text/plain\r\n", "ok"}, APR_SUCCESS},
    };
    scripted script[sizeof(cases) / sizeof(cases[0])];
    apr_pool_t *p;
    hgs3_s3_client *cl;
    mock *m;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        script[i] = cases[i].answer;
    }
    m = mock_start(pool, script, (int)(sizeof(cases) / sizeof(cases[0])));
    apr_pool_create(&p, pool);
    cl = mock_client(m, p, 3);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        apr_status_t rv = hgs3_s3_get(cl, p, "k", NULL, NULL, NULL);
        print_message("  %d %s\n", cases[i].answer.status, hgs3_s3_last_error(cl)->code);
        assert_int_equal(rv, cases[i].expect);
        assert_int_equal(hgs3_s3_last_error(cl)->status, cases[i].answer.status);
        assert_int_equal(hgs3_s3_last_error(cl)->attempts, 1); /* lookups are not retried */
    }
    assert_string_equal(hgs3_s3_last_error(cl)->code, "");
    /* One connection for all of them. */
    assert_int_equal(hgs3_s3_client_connects(cl), 1);
    assert_int_equal(m->nrequests, (int)(sizeof(cases) / sizeof(cases[0])));
    assert_string_equal(m->requests[0], "GET /bkt/k");
    apr_pool_destroy(p);
    mock_stop(m);
}

typedef struct sink {
    int headers_calls;
    int data_before_headers;
    apr_size_t bytes;
    int status;
    apr_off_t length;
    const char *type;
    apr_status_t stop_with; /* returned by on_data when set */
} sink;

static apr_status_t sink_headers(void *baton, const hgs3_s3_object *obj)
{
    sink *k = baton;
    k->headers_calls++;
    k->status = obj->status;
    k->length = obj->content_length;
    k->type = obj->content_type ? apr_pstrdup(pool, obj->content_type) : NULL;
    return APR_SUCCESS;
}

static apr_status_t sink_data(void *baton, const char *data, apr_size_t len)
{
    sink *k = baton;
    (void)data;
    if (!k->headers_calls) {
        k->data_before_headers = 1;
    }
    k->bytes += len;
    return k->stop_with;
}

static void test_streaming_get(void **state)
{
    char *big = apr_palloc(pool, 200001);
    scripted script[5];
    apr_pool_t *p;
    hgs3_s3_client *cl;
    hgs3_s3_object obj;
    sink k;
    mock *m;
    (void)state;

    memset(big, 'x', 200000);
    big[200000] = '\0';
    script[0] = (scripted){200, "Content-Type: application/mercurial-0.2\r\n", big};
    script[1] = (scripted){200, "Content-Type: application/mercurial-0.2\r\n", big};
    script[2] = (scripted){200, "Content-Type: text/plain\r\n", ""};
    script[3] = (scripted){404, NULL, ERR("NoSuchKey")};
    script[4] = (scripted){200,
                           "Content-Type: text/plain\r\nETag: \"e1\"\r\n"
                           "Last-Modified: Fri, 24 May 2013 00:00:00 GMT\r\n",
                           "abc"};
    m = mock_start(pool, script, 5);
    apr_pool_create(&p, pool);
    cl = mock_client(m, p, 1);

    memset(&k, 0, sizeof(k));
    assert_int_equal(hgs3_s3_get(cl, p, "k", sink_headers, sink_data, &k), APR_SUCCESS);
    assert_int_equal(k.headers_calls, 1);
    assert_false(k.data_before_headers);
    assert_int_equal(k.status, 200);
    assert_true(k.length == 200000);
    assert_string_equal(k.type, "application/mercurial-0.2");
    assert_int_equal(k.bytes, 200000);

    /* The data callback stops the transfer: its status comes back. */
    memset(&k, 0, sizeof(k));
    k.stop_with = HGS3_EABORTED;
    assert_int_equal(hgs3_s3_get(cl, p, "k", sink_headers, sink_data, &k), HGS3_EABORTED);
    assert_true(k.bytes > 0 && k.bytes < 200000);

    /* An empty body still reports its headers. */
    memset(&k, 0, sizeof(k));
    assert_int_equal(hgs3_s3_get(cl, p, "k", sink_headers, sink_data, &k), APR_SUCCESS);
    assert_int_equal(k.headers_calls, 1);
    assert_int_equal(k.bytes, 0);
    assert_true(k.length == 0);

    /* An error answer reaches no callback. */
    memset(&k, 0, sizeof(k));
    assert_int_equal(hgs3_s3_get(cl, p, "k", sink_headers, sink_data, &k), HGS3_ENOTFOUND);
    assert_int_equal(k.headers_calls + (int)k.bytes, 0);
    assert_string_equal(hgs3_s3_last_error(cl)->code, "NoSuchKey");
    /* the store's Message is never part of the log line */
    assert_string_equal(hgs3_s3_error_text(p, cl), "HTTP 404 NoSuchKey");

    assert_int_equal(hgs3_s3_head(&obj, cl, p, "k"), APR_SUCCESS);
    assert_int_equal(obj.status, 200);
    assert_string_equal(obj.etag, "\"e1\"");
    assert_true(obj.content_length == 3);
    assert_true(obj.last_modified == apr_time_from_sec(1369353600));
    apr_pool_destroy(p);
    mock_stop(m);
}

/* Uploads are retried on 5xx/SlowDown up to the configured tries, with the
 * body sent again each time; other failures are not retried. */
static void test_upload_retries(void **state)
{
    static const scripted script[] = {
        {503, NULL, ERR("SlowDown")},
        {500, NULL, ERR("InternalError")},
        {200, "ETag: \"t3\"\r\n", ""},
        {503, NULL, ERR("SlowDown")},
        {503, NULL, ERR("SlowDown")},
        {503, NULL, ERR("SlowDown")},
        {403, NULL, ERR("SignatureDoesNotMatch")},
    };
    apr_pool_t *p;
    hgs3_s3_client *cl;
    const char *etag;
    mock *m;
    (void)state;

    m = mock_start(pool, script, 7);
    apr_pool_create(&p, pool);
    cl = mock_client(m, p, 3);
    assert_int_equal(hgs3_s3_put_mem(cl, p, "k", "body", 4, "text/plain", NULL, &etag),
                     APR_SUCCESS);
    assert_string_equal(etag, "\"t3\"");
    assert_int_equal(hgs3_s3_last_error(cl)->attempts, 3);
    assert_int_equal(hgs3_s3_put_mem(cl, p, "k", "body", 4, NULL, NULL, &etag), HGS3_ESTORE);
    assert_null(etag);
    assert_int_equal(hgs3_s3_last_error(cl)->attempts, 3);
    assert_string_equal(hgs3_s3_last_error(cl)->code, "SlowDown");
    assert_int_equal(hgs3_s3_put_mem(cl, p, "k", "body", 4, NULL, NULL, NULL), HGS3_EAUTH);
    assert_int_equal(hgs3_s3_last_error(cl)->attempts, 1);
    assert_int_equal(m->nrequests, 7);
    assert_int_equal(hgs3_s3_client_connects(cl), 1);
    apr_pool_destroy(p);
    mock_stop(m);
}

/* CompleteMultipartUpload may answer 200 with an <Error>: retried when the
 * code says "busy", refused otherwise. Create parses the UploadId. */
static void test_multipart_documents(void **state)
{
    static const scripted script[] = {
        {200, NULL,
         "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>"},
        {200, NULL, ERR("InternalError")},
        {200, NULL,
         "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag></CompleteMultipartUploadResult>"},
        {200, NULL, ERR("InvalidPart")},
        {204, NULL, ""},
    };
    apr_array_header_t *etags = apr_array_make(pool, 2, sizeof(const char *));
    apr_pool_t *p;
    hgs3_s3_client *cl;
    const char *id, *etag;
    mock *m;
    (void)state;

    APR_ARRAY_PUSH(etags, const char *) = "\"a\"";
    APR_ARRAY_PUSH(etags, const char *) = "\"b\"";
    m = mock_start(pool, script, 5);
    apr_pool_create(&p, pool);
    cl = mock_client(m, p, 3);
    assert_int_equal(hgs3_s3_multipart_create(&id, cl, p, "d/k", "text/plain"), APR_SUCCESS);
    assert_string_equal(id, "U1");
    assert_int_equal(hgs3_s3_multipart_complete(&etag, cl, p, "d/k", id, etags), APR_SUCCESS);
    assert_string_equal(etag, "\"x-2\"");
    assert_int_equal(hgs3_s3_last_error(cl)->attempts, 2);
    assert_int_equal(hgs3_s3_multipart_complete(&etag, cl, p, "d/k", id, etags), HGS3_ECLIENT);
    assert_string_equal(hgs3_s3_last_error(cl)->code, "InvalidPart");
    assert_int_equal(hgs3_s3_multipart_abort(cl, p, "d/k", id), APR_SUCCESS);
    assert_string_equal(m->requests[0], "POST /bkt/d/k?uploads=");
    assert_string_equal(m->requests[1], "POST /bkt/d/k?uploadId=U1");
    assert_string_equal(m->requests[4], "DELETE /bkt/d/k?uploadId=U1");
    apr_pool_destroy(p);
    mock_stop(m);
}

/* HEAD cannot say why it got a 403; explain_403 asks with a one-byte GET. */
static void test_explain_403(void **state)
{
    static const scripted script[] = {
        {403, NULL, ""},
        {403, NULL, ERR("AccessDenied")},
        {403, NULL, ""},
        {403, NULL, ERR("SignatureDoesNotMatch")},
        {206, "Content-Range: bytes 0-0/10\r\n", "x"},
    };
    apr_pool_t *p;
    hgs3_s3_client *cl;
    hgs3_s3_object obj;
    mock *m;
    (void)state;

    m = mock_start(pool, script, 5);
    apr_pool_create(&p, pool);
    cl = mock_client(m, p, 1);
    assert_int_equal(hgs3_s3_head(&obj, cl, p, "k"), HGS3_EAUTH);
    assert_int_equal(obj.status, 403);
    assert_int_equal(hgs3_s3_explain_403(cl, p, "k"), HGS3_ENOTFOUND);
    assert_int_equal(hgs3_s3_head(&obj, cl, p, "k"), HGS3_EAUTH);
    assert_int_equal(hgs3_s3_explain_403(cl, p, "k"), HGS3_EAUTH);
    assert_int_equal(hgs3_s3_explain_403(cl, p, "k"), APR_SUCCESS);
    assert_string_equal(m->requests[1], "GET /bkt/k");
    apr_pool_destroy(p);
    mock_stop(m);
}

/* A multipart upload of a file that fails on a part is aborted. */
static void test_multipart_file_aborts(void **state)
{
    static const scripted script[] = {
        {200, NULL,
         "<InitiateMultipartUploadResult><UploadId>U9</UploadId></InitiateMultipartUploadResult>"},
        {200, "ETag: \"p1\"\r\n", ""},
        {403, NULL, ERR("AccessDenied")},
        {204, NULL, ""},
    };
    char path[] = "/tmp/hgs3mpXXXXXX";
    apr_file_t *f;
    apr_pool_t *p;
    hgs3_s3_client *cl;
    hgs3_s3_config c;
    char *chunk;
    mock *m;
    int i;
    (void)state;

    assert_int_equal(
        apr_file_mktemp(&f, path, APR_FOPEN_CREATE | APR_FOPEN_WRITE | APR_FOPEN_EXCL, pool),
        APR_SUCCESS);
    chunk = apr_pcalloc(pool, 1024 * 1024);
    for (i = 0; i < 11; ++i) {
        assert_int_equal(apr_file_write_full(f, chunk, 1024 * 1024, NULL), APR_SUCCESS);
    }
    apr_file_close(f);
    m = mock_start(pool, script, 4);
    apr_pool_create(&p, pool);
    c = base_conf(apr_psprintf(p, "http://127.0.0.1:%d", m->port), HGS3_S3_PATH, "bkt");
    c.part_size = 5 * 1024 * 1024;
    c.multipart_threshold = 5 * 1024 * 1024;
    assert_int_equal(hgs3_s3_client_create(&cl, p, &c), APR_SUCCESS);
    assert_int_equal(hgs3_s3_upload_file(cl, p, "k", path, NULL, NULL), HGS3_EAUTH);
    /* The first error is reported, not the abort's. */
    assert_string_equal(hgs3_s3_last_error(cl)->code, "AccessDenied");
    assert_int_equal(m->nrequests, 4);
    assert_string_equal(m->requests[1], "PUT /bkt/k?partNumber=1&uploadId=U9");
    assert_string_equal(m->requests[2], "PUT /bkt/k?partNumber=2&uploadId=U9");
    assert_string_equal(m->requests[3], "DELETE /bkt/k?uploadId=U9");
    apr_pool_destroy(p);
    mock_stop(m);
    apr_file_remove(path, pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_error),
        cmocka_unit_test(test_xml_many_pieces),
        cmocka_unit_test(test_xml_upload_id),
        cmocka_unit_test(test_xml_complete),
        cmocka_unit_test(test_addressing),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_presign_doc_example),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_check_answers),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_streaming_get),
        cmocka_unit_test(test_upload_retries),
        cmocka_unit_test(test_multipart_documents),
        cmocka_unit_test(test_explain_403),
        cmocka_unit_test(test_multipart_file_aborts),
    };
    int rc;

    apr_initialize();
    hgs3_s3_global_init();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    hgs3_s3_global_cleanup();
    apr_terminate();
    return rc;
}
