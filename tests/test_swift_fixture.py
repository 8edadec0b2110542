"""The Swift s3api store fixture: it starts, stops, and checks SigV4 strictly.

These tests prove that the store the integration tests rely on really rejects
what AWS S3 rejects (wrong secret, wrong payload hash, tampered or expired
presigned URLs, sloppy canonical queries), so tests that pass against it mean
something.
"""
import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
import pytest

from pyhgs3.swift import SwiftServer

BUCKET = "fixture-bucket"


@pytest.fixture(scope="module")
def swift_server(tmp_path_factory):
    server = SwiftServer(str(tmp_path_factory.mktemp("swift")))
    server.start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


def _signed(server, method, path, query="", body=b"", auth=None,
            payload_hash=None, canonical_query=None):
    """Send a request signed by botocore, with optional deliberate faults.

    payload_hash: the x-amz-content-sha256 value to sign and send instead of
    the body's real hash.  canonical_query: the canonical query string to sign
    instead of the correct one.  auth: the botocore signer class."""
    url = server.endpoint + path + ("?" + query if query else "")
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body)
    creds = botocore.credentials.Credentials(server.access_key,
                                             server.secret_key)
    signer = (auth or botocore.auth.S3SigV4Auth)(creds, "s3", server.region)
    if payload_hash is not None:
        signer.payload = lambda request: payload_hash
    if canonical_query is not None:
        signer.canonical_query_string = lambda request: canonical_query
    signer.add_auth(req)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.putrequest(method, path + ("?" + query if query else ""),
                        skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", "%s:%d" % (server.host, server.port))
        for name, value in req.prepare().headers.items():
            conn.putheader(name, value)
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _error_code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def _fetch(url):
    """(status, body, content-type) of a plain GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read(), r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type")


def test_identity(swift_server):
    assert swift_server.kind == "swift"
    assert swift_server.endpoint == "http://127.0.0.1:%d" % swift_server.port
    assert (swift_server.access_key, swift_server.secret_key,
            swift_server.region) == ("test:tester", "testing", "us-east-1")


def test_put_get_round_trip(swift_server):
    body = bytes(range(256)) * 1024 + os.urandom(4093)
    c = swift_server.client()
    c.put_object(Bucket=BUCKET, Key="rt/bundle", Body=body,
                 ContentType="application/mercurial-0.2")
    got, ctype, etag = swift_server.get_object(BUCKET, "rt/bundle")
    assert got == body
    assert ctype == "application/mercurial-0.2"
    assert etag == '"%s"' % hashlib.md5(body).hexdigest()
    assert "rt/bundle" in swift_server.list_keys(BUCKET, "rt/")


def test_wrong_secret_is_refused(swift_server):
    swift_server.client().put_object(Bucket=BUCKET, Key="secret/x", Body=b"x")
    bad = swift_server.client(secret_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.get_object(Bucket=BUCKET, Key="secret/x")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_correct_raw_signing_is_accepted(swift_server):
    # The helper itself works; the fault tests below differ in one thing.
    status, _ = _signed(swift_server, "PUT", "/%s/raw/ok" % BUCKET,
                        body=b"payload")
    assert status == 200
    assert swift_server.get_object(BUCKET, "raw/ok")[0] == b"payload"


def test_wrong_payload_hash_is_refused(swift_server):
    status, body = _signed(
        swift_server, "PUT", "/%s/raw/badhash" % BUCKET, body=b"payload",
        payload_hash=hashlib.sha256(b"other payload").hexdigest())
    assert status == 400
    assert _error_code(body) in ("BadDigest", "XAmzContentSHA256Mismatch")
    assert "raw/badhash" not in swift_server.list_keys(BUCKET, "raw/")


def test_missing_payload_hash_is_refused(swift_server):
    # Plain SigV4 (not the S3 variant) sends no x-amz-content-sha256.
    status, body = _signed(swift_server, "PUT", "/%s/raw/nohash" % BUCKET,
                           body=b"payload", auth=botocore.auth.SigV4Auth)
    assert status == 400
    assert _error_code(body) == "InvalidRequest"


def test_canonical_query_must_be_exact(swift_server):
    # AWS form: a key without value signs as "uploads=", pairs are sorted.
    ok, body = _signed(swift_server, "POST", "/%s/raw/mp" % BUCKET,
                       query="uploads", canonical_query="uploads=")
    assert ok == 200, body
    no_eq, _ = _signed(swift_server, "POST", "/%s/raw/mp" % BUCKET,
                       query="uploads", canonical_query="uploads")
    assert no_eq == 403
    q = "prefix=raw%2F&max-keys=5"
    ok, _ = _signed(swift_server, "GET", "/" + BUCKET, query=q,
                    canonical_query="max-keys=5&prefix=raw%2F")
    assert ok == 200
    unsorted, _ = _signed(swift_server, "GET", "/" + BUCKET, query=q,
                          canonical_query=q)
    assert unsorted == 403


def test_presigned_get(swift_server):
    body = os.urandom(70000)
    c = swift_server.client()
    c.put_object(Bucket=BUCKET, Key="ps/obj", Body=body,
                 ContentType="application/mercurial-0.2")
    url = c.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "ps/obj"},
        ExpiresIn=300)
    assert "X-Amz-Signature=" in url
    assert _fetch(url) == (200, body, "application/mercurial-0.2")

    # Unsigned extra headers (as hg forwards them on a redirect) are fine.
    req = urllib.request.Request(url, headers={
        "X-HgArg-1": "cmd=getbundle", "Vary": "X-HgArg-1,X-HgProto-1",
        "Accept": "application/mercurial-0.1"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.read() == body

    # response-content-type is signed into the URL and honoured.
    url = c.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "ps/obj",
                              "ResponseContentType": "application/x-test"},
        ExpiresIn=300)
    assert _fetch(url)[2] == "application/x-test"


def test_presigned_tampered_is_refused(swift_server):
    c = swift_server.client()
    c.put_object(Bucket=BUCKET, Key="ps/a", Body=b"a")
    c.put_object(Bucket=BUCKET, Key="ps/b", Body=b"b")
    url = c.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "ps/a"}, ExpiresIn=300)
    assert _fetch(url)[:2] == (200, b"a")
    sig = re.search(r"X-Amz-Signature=([0-9a-f]{64})", url).group(1)
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    tampered = [
        url.replace(sig, flipped),                       # signature
        url.replace("/ps/a?", "/ps/b?"),                 # other key
        url.replace("X-Amz-Expires=300", "X-Amz-Expires=301"),
    ]
    for bad in tampered:
        assert bad != url
        status, body, _ = _fetch(bad)
        assert status == 403, bad
        assert _error_code(body) in ("SignatureDoesNotMatch", "AccessDenied")
    # No signature at all is no access either.
    assert _fetch(swift_server.endpoint + "/%s/ps/a" % BUCKET)[0] in (400, 403)


def test_presigned_expired_is_refused(swift_server):
    c = swift_server.client()
    c.put_object(Bucket=BUCKET, Key="ps/exp", Body=b"e")
    url = c.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "ps/exp"}, ExpiresIn=1)
    time.sleep(2.1)
    status, body, _ = _fetch(url)
    assert status == 403
    assert _error_code(body) == "AccessDenied"


def test_multipart_etag_has_part_count(swift_server):
    c = swift_server.client()
    parts_data = [os.urandom(swift_server.min_part_size), os.urandom(1000)]
    mp = c.create_multipart_upload(Bucket=BUCKET, Key="mp/obj",
                                   ContentType="application/mercurial-0.2")
    parts = []
    for n, data in enumerate(parts_data, 1):
        r = c.upload_part(Bucket=BUCKET, Key="mp/obj", PartNumber=n,
                          UploadId=mp["UploadId"], Body=data)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    done = c.complete_multipart_upload(
        Bucket=BUCKET, Key="mp/obj", UploadId=mp["UploadId"],
        MultipartUpload={"Parts": parts})
    # AWS: md5 of the concatenated binary part md5s, then "-<part count>".
    want = hashlib.md5(b"".join(hashlib.md5(d).digest()
                                for d in parts_data)).hexdigest() + "-2"
    assert done["ETag"].strip('"') == want
    got, ctype, etag = swift_server.get_object(BUCKET, "mp/obj")
    assert got == b"".join(parts_data)
    assert ctype == "application/mercurial-0.2"
    assert etag.strip('"') == want


def test_multipart_small_part_is_refused(swift_server):
    c = swift_server.client()
    mp = c.create_multipart_upload(Bucket=BUCKET, Key="mp/small")
    parts = []
    for n in (1, 2):
        r = c.upload_part(Bucket=BUCKET, Key="mp/small", PartNumber=n,
                          UploadId=mp["UploadId"], Body=b"x" * 100)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.complete_multipart_upload(Bucket=BUCKET, Key="mp/small",
                                    UploadId=mp["UploadId"],
                                    MultipartUpload={"Parts": parts})
    assert e.value.response["Error"]["Code"] == "EntityTooSmall"
    c.abort_multipart_upload(Bucket=BUCKET, Key="mp/small",
                             UploadId=mp["UploadId"])


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_stop_ends_every_process(tmp_path):
    server = SwiftServer(str(tmp_path))
    server.start()
    pids = server.pids()
    assert set(pids) == {"log-collector", "memcached", "account",
                         "container", "object", "proxy"}
    assert not any(_gone(p) for p in pids.values())
    server.stop()
    assert all(_gone(p) for p in pids.values())
    assert server.pids() == {}
    server.stop()                                        # idempotent
    with pytest.raises(OSError):
        http.client.HTTPConnection(server.host, server.port,
                                   timeout=2).connect()
    # Logs were captured under the work directory.
    with open(server.log_file, "rb") as f:
        assert b"proxy-server" in f.read()


def test_failed_start_ends_every_process(tmp_path):
    seen = {}

    class Failing(SwiftServer):
        def _wait_ready(self, deadline):
            seen.update(self.pids())
            raise RuntimeError("simulated start-up failure")

    server = Failing(str(tmp_path))
    with pytest.raises(RuntimeError, match="simulated"):
        server.start()
    assert len(seen) == 6
    assert all(_gone(p) for p in seen.values())
    assert server.pids() == {}
