"""The S3 client and the hgs3 tool against strict stores (s3rver 4, Swift s3api).

Every test drives the real `hgs3` binary (built from the same core library as
the module) and checks the outcome independently with boto3 or plain curl:
misses, round trips with Content-Type, a 100 MiB multipart upload, auth errors
told apart from misses, presigned URLs (valid, tampered, expired), the payload
hash really enforced by Swift, retries on 5xx for uploads only, and a failed
multipart upload leaving nothing behind.
"""
import datetime
import hashlib
import math
import os
import re
import subprocess

import pytest

from pyhgs3.bucket import StoreBucket, unique_bucket_name

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HGS3 = os.environ.get("HGS3_BIN", os.path.join(TOP, "hgs3"))
CURL = "/usr/bin/curl"
MiB = 1024 * 1024
HG_TYPE = "application/mercurial-0.2"


@pytest.fixture(scope="module", autouse=True)
def need_hgs3():
    if not os.access(HGS3, os.X_OK):
        pytest.fail(f"{HGS3} not built (make hgs3)")


def hgs3(store, *args, endpoint=None, secret_key=None, creds=True, env=None, stdin=None):
    """Run hgs3 against store's bucket; returns CompletedProcess (bytes)."""
    cmd = [HGS3, "--endpoint", endpoint or store.endpoint, "--region", store.region,
           "--addressing", "path", "--bucket", store.bucket]
    if creds:
        cmd += ["--access-key", store.access_key,
                "--secret-key", secret_key or store.secret_key]
    cmd += list(args)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, env=run_env, input=stdin, timeout=600)


def ok(res):
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    return res


def head_fields(res):
    return dict(line.split(": ", 1) for line in res.stdout.decode().splitlines())


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(os.urandom(n))
            left -= n
    return path


def curl(url, out):
    """(status, headers dict lowercased, body bytes) of a plain curl GET."""
    hdr = str(out) + ".headers"
    res = subprocess.run([CURL, "-sS", "--globoff", "-o", str(out), "-D", hdr,
                          "-w", "%{http_code}", url], capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode()
    headers = {}
    with open(hdr, "rb") as f:
        for line in f.read().decode("latin-1").splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
    with open(out, "rb") as f:
        body = f.read()
    return int(res.stdout), headers, body


# --- lookups ----------------------------------------------------------------
def test_head_of_missing_key_is_a_miss(store):
    res = hgs3(store, "head", "hgcache/" + "0" * 64)
    assert res.returncode == 1, res.stderr
    assert head_fields(res)["status"] == "404"


def test_put_head_get_round_trip(store, tmp_dir):
    key = "dir/a b+c=d~\u00e9.bin"
    src = write_random(tmp_dir / "src.bin", 300 * 1024 + 7)
    ok(hgs3(store, "put", "--content-type", HG_TYPE, key, str(src)))

    head = head_fields(ok(hgs3(store, "head", key)))
    assert head["status"] == "200"
    assert head["content-length"] == str(os.path.getsize(src))
    assert head["content-type"] == HG_TYPE
    assert head["etag"].startswith('"')
    assert "last-modified" in head

    out = tmp_dir / "out.bin"
    ok(hgs3(store, "get", key, "-o", str(out)))
    assert out.read_bytes() == src.read_bytes()
    assert ok(hgs3(store, "get", key)).stdout == src.read_bytes()

    # What the store holds, seen by an independent client.
    data, ctype, _ = store.get(key)
    assert data == src.read_bytes()
    assert ctype == HG_TYPE


def test_put_from_stdin_and_empty_object(store):
    ok(hgs3(store, "put", "--content-type", "text/plain", "stdin-key", "-", stdin=b"hello\n"))
    assert store.get("stdin-key")[:2] == (b"hello\n", "text/plain")
    ok(hgs3(store, "put", "empty-key", "-", stdin=b""))
    assert head_fields(ok(hgs3(store, "head", "empty-key")))["content-length"] == "0"
    assert ok(hgs3(store, "get", "empty-key")).stdout == b""


def test_rm(store):
    store.put("to-delete", b"x")
    ok(hgs3(store, "rm", "to-delete"))
    assert store.head("to-delete") is None
    assert hgs3(store, "head", "to-delete").returncode == 1
    assert hgs3(store, "get", "to-delete").returncode == 1


def test_failed_get_leaves_no_file(store, tmp_dir):
    out = tmp_dir / "never.bin"
    res = hgs3(store, "get", "no-such-key", "-o", str(out))
    assert res.returncode == 1
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_dir) if p.startswith("never.bin")]


# --- multipart --------------------------------------------------------------
def test_multipart_100mib_round_trip(store, tmp_dir, proxy):
    src = write_random(tmp_dir / "big.bin", 100 * MiB)
    part = 8 * MiB
    res = ok(hgs3(store, "-v", "put", "--part-size", str(part), "--content-type", HG_TYPE,
                  "big/object", str(src), endpoint=proxy.endpoint))
    nparts = math.ceil(100 * MiB / part)
    assert proxy.count("POST", r"\?uploads=?$") == 1
    assert proxy.count("PUT", r"partNumber=") == nparts
    assert proxy.count("POST", r"\?uploadId=") == 1
    # One connection, reused for create, every part and complete.
    assert re.search(rb"\b1 new connection\(s\)", res.stderr), res.stderr

    out = tmp_dir / "big.out"
    ok(hgs3(store, "get", "big/object", "-o", str(out)))
    assert sha256_file(out) == sha256_file(src)
    assert store.head("big/object")["ContentType"] == HG_TYPE
    assert store.head("big/object")["ContentLength"] == 100 * MiB


def test_failed_multipart_is_aborted(store, tmp_dir, proxy):
    src = write_random(tmp_dir / "mp.bin", 12 * MiB)
    proxy.add_rule("status", method="PUT", path=r"partNumber=2&", status=500,
                   body=b"<Error><Code>InternalError</Code></Error>")
    res = hgs3(store, "put", "--multipart-threshold", str(5 * MiB), "--part-size", str(5 * MiB),
               "--tries", "2", "mp/object", str(src), endpoint=proxy.endpoint)
    assert res.returncode == 3, res.stderr
    assert b"InternalError" in res.stderr
    assert proxy.count("PUT", r"partNumber=2&") == 2          # retried once, as told
    aborts = proxy.find("DELETE", r"\?uploadId=")
    assert len(aborts) == 1
    assert proxy.count("POST", r"\?uploadId=") == 0           # never completed
    assert store.keys("mp/") == []
    if store.kind == "s3rver":
        # s3rver 4 does not implement AbortMultipartUpload (boto3 gets the
        # same 405) nor ListMultipartUploads.
        assert aborts[0]["status"] == 405
    else:
        assert aborts[0]["status"] == 204
        left = store.client().list_multipart_uploads(Bucket=store.bucket)
        assert left.get("Uploads", []) == []


# --- retries ----------------------------------------------------------------
def test_upload_retried_on_5xx_and_slowdown(store, tmp_dir, proxy):
    src = write_random(tmp_dir / "r.bin", 1000)
    proxy.add_rule("status", method="PUT", status=503, times=1,
                   body=b"<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>")
    proxy.add_rule("status", method="PUT", status=500, times=1,
                   body=b"<Error><Code>InternalError</Code></Error>")
    res = ok(hgs3(store, "-v", "put", "retried", str(src), endpoint=proxy.endpoint))
    assert b"3 attempt(s)" in res.stderr
    assert proxy.count("PUT") == 3
    assert store.get("retried")[0] == src.read_bytes()


def test_retries_are_bounded(store, tmp_dir, proxy):
    src = write_random(tmp_dir / "r.bin", 1000)
    proxy.add_rule("status", method="PUT", status=503,
                   body=b"<Error><Code>SlowDown</Code></Error>")
    res = hgs3(store, "put", "--tries", "3", "never", str(src), endpoint=proxy.endpoint)
    assert res.returncode == 3
    assert b"SlowDown" in res.stderr and b"after 3 attempts" in res.stderr
    assert proxy.count("PUT") == 3


def test_lookups_are_not_retried(store, proxy):
    proxy.add_rule("status", method=("HEAD", "GET"), status=503)
    assert hgs3(store, "head", "k", endpoint=proxy.endpoint).returncode == 3
    assert hgs3(store, "get", "k", endpoint=proxy.endpoint).returncode == 3
    assert proxy.count("HEAD") == 1
    assert proxy.count("GET") == 1


def test_unreachable_store(store):
    res = hgs3(store, "head", "k", "--connect-timeout", "500", endpoint="http://127.0.0.1:9")
    assert res.returncode == 3
    assert b"connection failed" in res.stderr


# --- credentials ------------------------------------------------------------
def test_wrong_secret_is_an_auth_error_not_a_miss(store, tmp_dir):
    store.put("present", b"data")
    wrong = "not-" + store.secret_key
    for key in ("present", "absent"):
        res = hgs3(store, "head", key, secret_key=wrong)
        assert res.returncode == 2, (key, res.stdout, res.stderr)
        assert b"refused the credentials" in res.stderr
        assert wrong.encode() not in res.stdout + res.stderr
    res = hgs3(store, "get", "present", secret_key=wrong)
    assert res.returncode == 2
    assert b"SignatureDoesNotMatch" in res.stderr
    src = write_random(tmp_dir / "x.bin", 100)
    assert hgs3(store, "put", "new", str(src), secret_key=wrong).returncode == 2
    assert store.head("new") is None
    # The right secret: present is found, absent is a miss.
    assert hgs3(store, "head", "present").returncode == 0
    assert hgs3(store, "head", "absent").returncode == 1


def test_credentials_file_and_environment(store, tmp_dir):
    store.put("k", b"v")
    creds = tmp_dir / "credentials"
    creds.write_text("# test\n[default]\naws_access_key_id = nobody\n"
                     "aws_secret_access_key = wrong\n\n"
                     f"[store]\naws_access_key_id = {store.access_key}\n"
                     f"aws_secret_access_key = {store.secret_key}\n")
    base = ["--credentials-file", str(creds)]
    assert hgs3(store, *base, "--profile", "store", "head", "k", creds=False).returncode == 0
    assert hgs3(store, *base, "head", "k", creds=False).returncode == 2
    assert hgs3(store, *base, "--profile", "nope", "head", "k", creds=False).returncode == 64
    env = {"AWS_ACCESS_KEY_ID": store.access_key, "AWS_SECRET_ACCESS_KEY": store.secret_key}
    assert hgs3(store, "head", "k", creds=False, env=env).returncode == 0
    assert hgs3(store, "head", "k", creds=False).returncode == 64


# --- presigned URLs ---------------------------------------------------------
def test_presigned_url_fetches_with_curl(store, tmp_dir):
    data = os.urandom(70000)
    store.put("hgcache/presigned", data, content_type="binary/octet-stream")
    url = ok(hgs3(store, "presign", "--expires", "300", "--response-content-type", HG_TYPE,
                  "hgcache/presigned")).stdout.decode().strip()
    assert "\n" not in url and "X-Amz-Signature=" in url
    if store.secret_key != store.access_key:     # s3rver uses S3RVER for both
        assert store.secret_key not in url
    status, headers, body = curl(url, tmp_dir / "p.out")
    assert status == 200
    assert body == data
    assert headers["content-type"] == HG_TYPE


def _tamper_signature(url):
    sig = re.search(r"X-Amz-Signature=([0-9a-f]{64})", url).group(1)
    bad = ("0" if sig[0] != "0" else "1") + sig[1:]
    return url.replace(sig, bad)


def test_tampered_presigned_url_is_refused(store, tmp_dir):
    store.put("a", b"object a")
    store.put("b", b"object b")
    url = ok(hgs3(store, "presign", "a")).stdout.decode().strip()
    assert curl(url, tmp_dir / "ok")[0] == 200
    for bad in (_tamper_signature(url),
                url.replace("/a?", "/b?"),
                url.replace("X-Amz-Expires=3600", "X-Amz-Expires=3601")):
        assert bad != url
        status, _, body = curl(bad, tmp_dir / "bad")
        assert status == 403, (bad, body)
        assert b"object" not in body


def test_expired_presigned_url_is_refused(store, tmp_dir):
    store.put("old", b"old object")
    past = (datetime.datetime.utcnow() - datetime.timedelta(hours=2)).strftime("%Y%m%dT%H%M%SZ")
    url = ok(hgs3(store, "presign", "--date", past, "--expires", "60", "old")).stdout.decode()
    status, _, body = curl(url.strip(), tmp_dir / "exp")
    assert status == 403, body
    assert b"old object" not in body
    # The same object with a live URL is fine.
    url = ok(hgs3(store, "presign", "--expires", "60", "old")).stdout.decode()
    assert curl(url.strip(), tmp_dir / "live")[0] == 200


# --- integrity --------------------------------------------------------------
@pytest.fixture
def swift_bucket(swift):
    bucket = unique_bucket_name()
    swift.create_bucket(bucket)
    return StoreBucket(swift, bucket)


def test_wrong_payload_hash_is_refused_by_swift(swift_bucket, tmp_dir):
    """x-amz-content-sha256 carries the real hash, and a store that checks it
    refuses a body that does not match: the integrity check is real."""
    store = swift_bucket
    src = write_random(tmp_dir / "body.bin", 4096)
    wrong = hashlib.sha256(b"some other body").hexdigest()
    res = hgs3(store, "put", "--payload-sha256", wrong, "corrupt", str(src))
    assert res.returncode == 3, res.stderr
    assert re.search(rb"HTTP 400 (BadDigest|XAmzContentSHA256Mismatch)", res.stderr), res.stderr
    assert store.head("corrupt") is None
    # The same upload with the right hash (given or computed) is accepted.
    ok(hgs3(store, "put", "--payload-sha256", sha256_file(src), "corrupt", str(src)))
    ok(hgs3(store, "put", "computed", str(src)))
    assert store.get("corrupt")[0] == store.get("computed")[0] == src.read_bytes()


# --- memory -----------------------------------------------------------------
VALGRIND = "/usr/bin/valgrind"


@pytest.mark.parametrize("size,threshold", [(200 * 1024, None), (11 * MiB, 5 * MiB)],
                         ids=["single", "multipart"])
def test_put_under_valgrind(store, tmp_dir, size, threshold):
    """hgs3 put leaks nothing: curl/OpenSSL global state, APR pools and the
    client are all released (valgrind --leak-check=full)."""
    if not os.access(VALGRIND, os.X_OK):
        pytest.skip("valgrind not installed")
    src = write_random(tmp_dir / "vg.bin", size)
    args = ["put", "vg/object", str(src)]
    if threshold:
        args[1:1] = ["--multipart-threshold", str(threshold), "--part-size", str(threshold)]
    cmd_prefix = [VALGRIND, "-q", "--leak-check=full", "--error-exitcode=99"]
    res = subprocess.run(cmd_prefix + [HGS3, "--endpoint", store.endpoint, "--region", store.region,
                                       "--addressing", "path", "--bucket", store.bucket,
                                       "--access-key", store.access_key,
                                       "--secret-key", store.secret_key] + args,
                         capture_output=True, timeout=600)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert b"lost" not in res.stderr
    assert store.get("vg/object")[0] == src.read_bytes()
