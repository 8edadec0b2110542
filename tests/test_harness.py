"""The test harness itself: stores check signatures, the proxy forwards
faithfully and injects faults, hgweb serves clones and pulls under mod_wsgi and
CGI without the module, and the error_log check catches what it should."""
import os
import time
import urllib.error
import urllib.request

import boto3
import botocore.config
import botocore.exceptions
import pytest

from pyhgs3.hg import clone_push_pull

MODES = ["wsgi", "cgi"]


def _error_code(exc_info):
    return exc_info.value.response.get("Error", {}).get("Code"), \
        exc_info.value.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


# --- stores ----------------------------------------------------------------
def test_store_rejects_wrong_secret(store):
    bad = store.client(secret_key="not-the-" + store.secret_key)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        bad.put_object(Bucket=store.bucket, Key="wrong-secret", Body=b"x" * 100)
    code, status = _error_code(ei)
    assert status == 403, (code, status)
    assert code in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId"), code
    assert store.head("wrong-secret") is None

    # Reading an existing object with a wrong secret is refused as well.
    store.put("readable", b"secret content")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        bad.get_object(Bucket=store.bucket, Key="readable")
    assert _error_code(ei)[1] == 403


def test_store_round_trip(store):
    data = os.urandom(300_000)
    key = "hgcache/" + "ab" * 32
    store.put(key, data, content_type="application/mercurial-0.2")
    body, ctype, etag = store.get(key)
    assert body == data
    assert ctype == "application/mercurial-0.2"
    assert etag
    assert store.keys("hgcache/") == [key]
    store.delete(key)
    assert store.head(key) is None


def test_store_presigned_url(store):
    """Both stores check presigned URLs: a good one works, a tampered one is refused."""
    store.put("presigned", b"presigned body", content_type="application/mercurial-0.2")
    url = store.client().generate_presigned_url(
        "get_object", Params={"Bucket": store.bucket, "Key": "presigned"}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"presigned body"
    sig_at = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    tampered = url[:sig_at] + ("0" if url[sig_at] != "0" else "1") + url[sig_at + 1:]
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(tampered, timeout=10)
    assert ei.value.code == 403


# --- the proxy ---------------------------------------------------------------
def test_proxy_forwards_and_records(store, proxy):
    c = store.client(endpoint=proxy.endpoint)
    data = os.urandom(2_000_000)
    c.put_object(Bucket=store.bucket, Key="via-proxy", Body=data)
    c.head_object(Bucket=store.bucket, Key="via-proxy")
    assert c.get_object(Bucket=store.bucket, Key="via-proxy")["Body"].read() == data
    assert store.get("via-proxy")[0] == data          # really stored upstream

    puts = proxy.find("PUT", r"/via-proxy$")
    assert len(puts) == 1 and puts[0]["status"] == 200
    assert puts[0]["request_bytes"] == len(data)
    # Host went upstream as the client sent it (the signature covers it).
    assert proxy.header(puts[0], "Host") == f"127.0.0.1:{proxy.port}"
    assert proxy.count("HEAD", r"/via-proxy$") == 1
    gets = proxy.find("GET", r"/via-proxy$")
    assert len(gets) == 1 and gets[0]["response_bytes"] == len(data)

    lines = proxy.log_path.read_text().splitlines()
    assert len(lines) == len(proxy.requests) >= 3


def test_proxy_passes_store_errors(store, proxy):
    """A store's refusal reaches the client as is, even when the store answers
    before reading a large body (Expect: 100-continue)."""
    bad = store.client(secret_key="wrong-" + store.secret_key, endpoint=proxy.endpoint)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        bad.put_object(Bucket=store.bucket, Key="refused", Body=os.urandom(3_000_000))
    assert _error_code(ei)[1] == 403
    assert {r["status"] for r in proxy.find("PUT", r"/refused$")} == {403}
    assert store.head("refused") is None


def _no_retry_client(store, endpoint):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=store.region,
        aws_access_key_id=store.access_key, aws_secret_access_key=store.secret_key,
        config=botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                      retries={"max_attempts": 0}, connect_timeout=2,
                                      read_timeout=10))


def test_proxy_faults(store, proxy):
    c = _no_retry_client(store, proxy.endpoint)
    store.put("f", b"fault body")

    rule = proxy.add_rule("status", method="HEAD", path=r"/f$", status=503, times=1)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.head_object(Bucket=store.bucket, Key="f")
    assert _error_code(ei)[1] == 503
    assert rule.hits == 1
    c.head_object(Bucket=store.bucket, Key="f")          # the rule is used up

    proxy.add_rule("delay", method="GET", path=r"/f$", seconds=0.5, times=1)
    t0 = time.monotonic()
    assert c.get_object(Bucket=store.bucket, Key="f")["Body"].read() == b"fault body"
    assert time.monotonic() - t0 >= 0.5

    proxy.add_rule("hang", method="GET", path=r"/f$", times=1)
    t0 = time.monotonic()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{proxy.endpoint}/{store.bucket}/f", timeout=1)
    assert 0.9 < time.monotonic() - t0 < 3

    proxy.add_rule("cut_response", method="GET", path=r"/f$", times=1)
    with pytest.raises(Exception):
        c.get_object(Bucket=store.bucket, Key="f")["Body"].read()

    proxy.refuse(True)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{proxy.endpoint}/{store.bucket}/f", timeout=2)
    proxy.refuse(False)
    c.head_object(Bucket=store.bucket, Key="f")
    assert [r["rule"] for r in proxy.find("GET", r"/f$")] == [
        "delay", "hang", "cut_response"]


# --- hgweb without the module --------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_hgweb_clone_pull_without_module(hg, httpd_factory, small_repo, tmp_dir, mode):
    httpd = httpd_factory(repos={"repo": small_repo}, mode=mode)
    clone_push_pull(hg, httpd.repo_url("repo"), small_repo, tmp_dir)
    getbundles = httpd.access_log.find("GET", r"^/repo\?cmd=getbundle$", status=200)
    assert len(getbundles) >= 5                 # clone, clone, clone, pull, pull
    assert all(e["note"] is None for e in httpd.access_log.entries())


def test_big_repo_clone(hg, httpd_factory, big_repo, tmp_dir):
    httpd = httpd_factory(repos={"big": big_repo})
    dest = tmp_dir / "big"
    r = hg.clone(httpd.repo_url("big"), dest, "-U")
    assert r.ok, r
    hg.assert_same_history(big_repo, dest)
    (gb,) = httpd.access_log.find("GET", r"^/big\?cmd=getbundle$")
    assert gb["status"] == 200
    assert gb["bytes"] >= 20 * 1024 * 1024, gb["bytes"]
    assert gb["content_type"] == "application/mercurial-0.2"


# --- the harness's own checks -----------------------------------------------------
DENIED = "<Location /denied>\n    Require all denied\n</Location>\n"


def test_log_check_catches_and_allows(httpd_factory, small_repo):
    httpd = httpd_factory(repos={"repo": small_repo}, extra_conf=DENIED)
    assert httpd.get("/denied")[0] == 403
    # AH01630 "client denied by server configuration" is an [authz_core:error].
    lines = httpd.unexpected_log_lines()
    assert len(lines) == 1 and "[authz_core:error]" in lines[0] and "AH01630" in lines[0]
    httpd.allow_log(r"AH01630")
    assert httpd.get("/denied")[0] == 403
    assert httpd.unexpected_log_lines() == []
    assert len(httpd.error_log.grep(r"AH01630", since_mark=True)) == 2


def test_configtest(httpd_factory, small_repo):
    good = httpd_factory(repos={"repo": small_repo}, start=False)
    rc, out = good.configtest()
    assert rc == 0 and "Syntax OK" in out, out
    bad = httpd_factory(repos={"repo": small_repo}, start=False,
                        extra_conf="NoSuchDirective 1\n")
    rc, out = bad.configtest()
    assert rc != 0 and "NoSuchDirective" in out, out


def test_stop_leaves_no_process(httpd_factory, small_repo):
    httpd = httpd_factory(repos={"repo": small_repo})
    assert httpd.get("/repo?cmd=capabilities")[0] == 200    # wsgi daemon is up
    pid = httpd.proc.pid
    httpd.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert httpd.problems == []
