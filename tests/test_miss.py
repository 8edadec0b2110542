"""The miss path: capture, spool and background upload of getbundle responses.

Real httpd + hgweb (mod_wsgi daemon or CGI) + the real hg client + mod_hgs3cache,
against both strict S3 stores (the `store` fixture), with the module talking to
the store through the recording FaultProxy (`proxy`), so every PUT/POST it
sends can be counted and slowed down.

What is checked:
- a cacheable response is stored as `hgcache/<64 hex>`, byte for byte equal
  to what an httpd without the module answers to the same request, with the
  response's Content-Type and the payload's real SHA-256;
- bodies below HgS3CacheMinSize / above HgS3CacheMaxSize, bundle2 error parts,
  application/hg-error and aborted clients are never stored, and the note
  says why;
- spilled spools and upload locks leave nothing behind in HgS3CacheSpoolDir;
- multipart uploads above HgS3CacheMultipartThreshold;
- concurrent misses for one key upload it once;
- the upload is off the response path.
"""
import hashlib
import http.client
import math
import os
import re
import socket
import statistics
import subprocess
import threading
import time

import pytest

from pyhgs3 import env as E
from pyhgs3.checks import (PREFIX, UPLOAD_WAIT, replay_headers, spool_dir, spool_leftovers,
                           wait_getbundles)
from pyhgs3.hgwire import clone_headers
from pyhgs3.proxy import FaultProxy

from conftest import STORES_AND_FILE, store_fixture, store_proxy  # noqa: E402

# Also on the local-directory store; its S3-specific tests skip there.
store = store_fixture(STORES_AND_FILE)

OBJECT_RE = re.compile(r"^hgcache/[0-9a-f]{64}$")
MERCURIAL_02 = "application/mercurial-0.2"
BIG_MIN = 20 * 1024 * 1024
MIB = 1024 * 1024

# How long to wait before concluding that nothing was (or will be) uploaded.
SETTLE = 2.0

# What Mercurial 6.3.2 sends for a full clone (see FACTS.md section 1); the
# raw-socket tests send the same thing.

# Enough worker threads for 20 concurrent clones (each holds a connection
# while its getbundle waits for one of hgweb's 4 threads).
MPM_MANY_THREADS = """\
StartServers 1
ServerLimit 1
ThreadLimit 64
ThreadsPerChild 64
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
MaxConnectionsPerChild 0
"""

# A client that disconnects mid-response makes mod_wsgi (not mod_hgs3cache)
# log that it could not write the response.
WSGI_CLIENT_GONE = r"\[wsgi:(error|info)\].*(Broken pipe|Connection reset|failed to write|" \
                   r"IOError|OSError|client connection closed)"


# --- helpers -----------------------------------------------------------------
class Gate:
    """Holds requests at the proxy until opened (at most `limit` seconds).

    Used as the `seconds` of a proxy "delay" rule: the proxy reads
    float(seconds) when a matching request arrives, which blocks here until
    open() and then delays by nothing more."""

    def __init__(self, limit=120):
        self._open = threading.Event()
        self.limit = limit

    def __float__(self):
        self._open.wait(self.limit)
        return 0.0

    def open(self):
        self._open.set()


def wait_stored(store, proxy, count=1, timeout=UPLOAD_WAIT):
    """Poll the bucket until it holds `count` objects under hgcache/, then
    wait until the request that completes each upload (the PutObject, or the
    POST ?uploadId= completing a multipart upload) has been answered: a store
    may list an object (and serve part of it) while it is still being written."""
    def listed():
        keys = store.keys(PREFIX)
        return keys if len(keys) >= count else None

    def finished(key):
        if proxy is None:      # a local object is renamed into place complete
            return True
        path = "/" + re.escape(key)
        return [r for r in proxy.find("PUT", path + "$", done=True)
                + proxy.find("POST", path + r"\?(.*&)?uploadId=", done=True)
                if r["status"] == 200]
    try:
        keys = E.wait_until(listed, timeout, interval=0.2, what="objects")
        for key in keys:
            E.wait_until(lambda: finished(key), timeout, what=f"the upload of {key}")
    except TimeoutError as e:
        raise AssertionError(f"{store}: {store.keys(PREFIX)} under {PREFIX} after {timeout}s, "
                             f"expected {count} ({e}); uploads seen: "
                             f"{[(r['method'], r['path'], r['status']) for r in uploads(proxy)]}"
                             ) from None
    return keys


def uploads(proxy, key=None):
    """PUT and POST requests the module sent (on `key` when given)."""
    path = None if key is None else "/" + re.escape(key) + r"(\?|$)"
    return proxy.find(("PUT", "POST"), path)


def assert_nothing_stored(store, proxy, settle=SETTLE):
    """After a settle time: no upload was even attempted, the bucket is empty
    (a local-directory store: not even a subdirectory or temp file made)."""
    time.sleep(settle)
    if proxy is None:
        assert list(store.dir.rglob("*")) == [], list(store.dir.rglob("*"))
    else:
        assert uploads(proxy) == [], [(r["method"], r["path"]) for r in uploads(proxy)]
    assert store.keys(PREFIX) == []


def direct_getbundle(plain, name, headers):
    """The getbundle body an httpd without the module answers."""
    assert not plain.module
    status, hdrs, body = plain.get(f"/{name}?cmd=getbundle", headers=headers, timeout=120)
    assert status == 200, (status, body[:200])
    assert hdrs.get("content-type") == MERCURIAL_02, hdrs
    return body


def fetch_timed(httpd, path, headers):
    """(status, content type, body, seconds to the last byte, wall-clock time
    of the last byte) of one GET."""
    conn = http.client.HTTPConnection(E.LOOPBACK, httpd.port, timeout=120)
    try:
        t0 = time.monotonic()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        t1 = time.monotonic()
        return r.status, r.getheader("Content-Type"), body, t1 - t0, time.time()
    finally:
        conn.close()


def assert_same_body(stored, direct, what="object"):
    """stored == direct, with a message that says where they part."""
    if stored == direct:
        return
    n = min(len(stored), len(direct))
    first = next((i for i in range(n) if stored[i] != direct[i]), n)
    last = next((i for i in range(n - 1, -1, -1) if stored[i] != direct[i]), None)
    raise AssertionError(
        f"{what} ({len(stored)} bytes, sha256 {hashlib.sha256(stored).hexdigest()}) differs "
        f"from the direct response ({len(direct)} bytes, sha256 "
        f"{hashlib.sha256(direct).hexdigest()}): first difference at byte {first}, last at "
        f"{last}; stored[{first}:+16]={stored[first:first + 16].hex()} "
        f"direct[{first}:+16]={direct[first:first + 16].hex()}")


def check_put(rec, body):
    """A single PutObject of `body`: Content-Type and real payload hash."""
    assert rec["method"] == "PUT" and "?" not in rec["path"], rec["path"]
    assert rec["status"] == 200, rec
    assert rec["request_bytes"] == len(body), (rec["request_bytes"], len(body))
    assert FaultProxy.header(rec, "Content-Type") == MERCURIAL_02
    assert FaultProxy.header(rec, "x-amz-content-sha256") == hashlib.sha256(body).hexdigest()


def clone_ok(hg, url, dest, *extra):
    r = hg.clone(url, dest, "-U", *extra)
    assert r.ok, r
    return dest


# --- stored ------------------------------------------------------------------
def test_big_clone_is_stored(request, hg, httpd_factory, module_httpd, big_repo, tmp_dir, store):
    """A > 20 MB clone is stored as one PutObject (on the local-directory
    store: a file and its sidecar, no temp file left); the object is exactly
    what hgweb answers without the module; both clones verify."""
    proxy = store_proxy(request, store)
    httpd = module_httpd({"big": big_repo}, {"big": {}},
                         endpoint=proxy.endpoint if proxy else None)
    plain = httpd_factory(repos={"big": big_repo})

    first = clone_ok(hg, httpd.repo_url("big"), tmp_dir / "first")
    (entry,) = wait_getbundles(httpd, "big")
    assert entry["status"] == 200 and entry["note"] == "miss", entry
    assert entry["content_type"] == MERCURIAL_02
    assert entry["bytes"] >= BIG_MIN

    (key,) = wait_stored(store, proxy)
    assert OBJECT_RE.match(key), key
    data, ctype, sha = store.get(key)
    if proxy:
        # One PutObject (24 MB is below the default 64M multipart threshold),
        # with the response's Content-Type and the body's real SHA-256.
        proxy.wait_for("PUT", re.escape(key), timeout=UPLOAD_WAIT)
        (put,) = uploads(proxy)
        check_put(put, data)
    else:
        # The sidecar records the size and the body's real SHA-256.
        assert store.meta(key)["size"] == len(data)
        assert sha in (None, hashlib.sha256(data).hexdigest()), sha
        assert store.temp_files() == []
    direct = direct_getbundle(plain, "big", replay_headers(entry))
    assert len(direct) == entry["bytes"]
    assert_same_body(data, direct)
    assert ctype == MERCURIAL_02

    hg.assert_same_history(big_repo, first)
    hg.assert_verify_clean(first)
    second = clone_ok(hg, httpd.repo_url("big"), tmp_dir / "second")
    hg.assert_same_history(big_repo, second)
    hg.assert_verify_clean(second)
    if proxy is None:
        assert wait_getbundles(httpd, "big", 2)[1]["note"] == "hit-local"
    # The instance's spool dir (the harness's run/) is clean again.
    E.wait_until(lambda: not spool_leftovers(httpd.run_dir), 10, what="clean runtime dir")


def test_spool_spills_to_disk(hg, httpd_factory, module_httpd, big_repo, tmp_dir, store, proxy):
    """HgS3CacheMemory 64K: a 20+ MB body goes to a temp file in
    HgS3CacheSpoolDir; the upload reads it from there, the object is correct,
    and the directory is empty afterwards."""
    spool = spool_dir(tmp_dir)
    httpd = module_httpd({"big": big_repo},
                         {"big": {"Memory": "64K", "SpoolDir": str(spool)}},
                         endpoint=proxy.endpoint)
    plain = httpd_factory(repos={"big": big_repo})
    # Hold the upload at the proxy so the spool can be seen while it is in use.
    gate = Gate()
    proxy.add_rule("delay", method=("PUT", "POST"), seconds=gate)

    try:
        clone = clone_ok(hg, httpd.repo_url("big"), tmp_dir / "clone")
        (entry,) = wait_getbundles(httpd, "big")
        assert entry["note"] == "miss", entry
        proxy.wait_for("PUT", PREFIX, done=None, timeout=UPLOAD_WAIT)
        held = spool_leftovers(spool)
        assert len(held) == 2, held
        spool_file = next(n for n in held if n.startswith("hgs3spool."))
        lock_file = next(n for n in held if n.startswith("hgs3lock."))
        spooled = (spool / spool_file).read_bytes()
        assert len(spooled) == entry["bytes"] >= BIG_MIN
    finally:
        gate.open()

    (key,) = wait_stored(store, proxy)
    assert lock_file == "hgs3lock." + key[len(PREFIX):]
    data, ctype, _ = store.get(key)
    proxy.wait_for("PUT", re.escape(key), timeout=UPLOAD_WAIT)
    (put,) = uploads(proxy)
    check_put(put, data)
    direct = direct_getbundle(plain, "big", replay_headers(entry))
    assert_same_body(spooled, direct, "spool file")
    assert_same_body(data, direct)
    assert ctype == MERCURIAL_02
    E.wait_until(lambda: not spool_leftovers(spool), 10, what="empty spool dir")
    assert list(spool.iterdir()) == []
    hg.assert_verify_clean(clone)


def test_full_spool_disk_is_not_stored(hg, module_httpd, big_repo, tmp_dir, store, proxy):
    """The spool's disk fills up (HgS3CacheSpoolDir on a 4 MiB tmpfs) while a
    20+ MB body spills: every clone is served whole and verifies, the note
    says spool-error, the module says so in its log (HGS300101), nothing is
    stored or even uploaded, and the spool file is gone at once, giving the
    space back."""
    spool = tmp_dir / "spool"
    spool.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "hgs3-full-spool",
                        str(spool)], capture_output=True)
    assert r.returncode == 0, f"cannot mount a tmpfs for the spool: {r.stderr!r}"
    try:
        E.chown_to_server(spool)
        httpd = module_httpd({"big": big_repo},
                             {"big": {"Memory": "64K", "SpoolDir": str(spool)}},
                             endpoint=proxy.endpoint)
        httpd.allow_log(r"\[hgs3cache:warn\].* HGS300101: spool write failed in " +
                        re.escape(str(spool)))
        for i in range(2):
            clone = clone_ok(hg, httpd.repo_url("big"), tmp_dir / f"clone{i}")
            hg.assert_same_history(big_repo, clone)
            hg.assert_verify_clean(clone)
        entries = wait_getbundles(httpd, "big", 2)
        assert [e["note"] for e in entries] == ["miss-store-skipped:spool-error"] * 2, entries
        assert all(e["bytes"] >= BIG_MIN for e in entries), entries
        assert_nothing_stored(store, proxy)
        assert spool_leftovers(spool) == []
        st = os.statvfs(spool)
        assert st.f_bfree == st.f_blocks, "the failed spool's space was not given back"
        assert httpd.error_log.grep(r"HGS300101: spool write failed", since_mark=False), \
            "no HGS300101 line"
        httpd.stop()
    finally:
        subprocess.run(["umount", "-l", str(spool)], capture_output=True)


def test_multipart_upload(hg, httpd_factory, module_httpd, big_repo, tmp_dir, store, proxy):
    """HgS3CacheMultipartThreshold 5M: the 20+ MB body goes up as a multipart
    upload in 5 MiB parts, each with its real SHA-256, and the object is whole."""
    httpd = module_httpd({"big": big_repo},
                         {"big": {"MultipartThreshold": "5M"}}, endpoint=proxy.endpoint)
    plain = httpd_factory(repos={"big": big_repo})

    clone = clone_ok(hg, httpd.repo_url("big"), tmp_dir / "clone")
    (entry,) = wait_getbundles(httpd, "big")
    assert entry["note"] == "miss", entry
    (key,) = wait_stored(store, proxy)
    data, ctype, etag = store.get(key)
    direct = direct_getbundle(plain, "big", replay_headers(entry))
    assert_same_body(data, direct)
    assert ctype == MERCURIAL_02

    path = re.escape(key)
    (create,) = proxy.wait_for("POST", path + r"\?uploads", timeout=UPLOAD_WAIT)
    (complete,) = proxy.wait_for("POST", path + r"\?uploadId=", timeout=UPLOAD_WAIT)
    parts = proxy.find("PUT", path + r"\?")
    nparts = math.ceil(len(direct) / (5 * MIB))
    assert len(parts) == nparts, [p["path"] for p in parts]
    assert not proxy.find("PUT", path + "$"), "a single PutObject as well"
    assert create["status"] == 200 and complete["status"] == 200
    assert FaultProxy.header(create, "Content-Type") == MERCURIAL_02

    upload_id = re.search(r"uploadId=([^&]+)", complete["path"]).group(1)
    numbers = []
    for p in parts:
        assert p["status"] == 200, p
        assert re.search(r"[?&]uploadId=" + re.escape(upload_id) + "(&|$)", p["path"]), p["path"]
        n = int(re.search(r"[?&]partNumber=(\d+)", p["path"]).group(1))
        numbers.append(n)
        chunk = direct[(n - 1) * 5 * MIB:n * 5 * MIB]
        assert p["request_bytes"] == len(chunk), (n, p["request_bytes"])
        assert FaultProxy.header(p, "x-amz-content-sha256") == hashlib.sha256(chunk).hexdigest(), n
    assert sorted(numbers) == list(range(1, nparts + 1))
    if store.kind == "swift":
        assert etag.strip('"').endswith(f"-{nparts}"), etag
    hg.assert_verify_clean(clone)


# --- not stored ----------------------------------------------------------------
def test_too_small_and_too_large_are_skipped(request, hg, module_httpd, small_repo, tmp_dir,
                                              store):
    """A ~100 KB clone is not stored below HgS3CacheMinSize 1M nor above
    HgS3CacheMaxSize 80K; with the defaults the same clone is stored."""
    proxy = store_proxy(request, store)
    repos = {"tiny": small_repo, "capped": small_repo, "repo": small_repo}
    httpd = module_httpd(repos, {
        "tiny": {"MinSize": "1M", "KeySalt": "tiny"},
        "capped": {"MaxSize": "80K", "KeySalt": "capped"},
        "repo": {}}, endpoint=proxy and proxy.endpoint)

    for name in ("tiny", "capped"):
        clone = clone_ok(hg, httpd.repo_url(name), tmp_dir / name)
        hg.assert_same_history(small_repo, clone)
    assert wait_getbundles(httpd, "tiny")[0]["note"] == "miss-store-skipped:too-small"
    assert wait_getbundles(httpd, "capped")[0]["note"] == "miss-store-skipped:too-large"
    body = wait_getbundles(httpd, "tiny")[0]["bytes"]
    assert 80 * 1024 < body < MIB, body     # so both limits really apply
    assert_nothing_stored(store, proxy)

    # The control: the same response with the default limits is stored.
    clone_ok(hg, httpd.repo_url("repo"), tmp_dir / "repo")
    assert wait_getbundles(httpd, "repo")[0]["note"] == "miss"
    (key,) = wait_stored(store, proxy)
    assert len(store.get(key)[0]) == body
    time.sleep(0.5)
    assert (proxy is None or len(uploads(proxy)) == 1) and store.keys(PREFIX) == [key]


def test_error_part_is_not_stored(request, hg, module_httpd, small_repo, tmp_dir, store):
    """disablefullbundle: hgweb answers the clone with a bundle2 error:abort
    part (200, application/mercurial-0.2); the clone fails with hg's message,
    and nothing is stored, even with HgS3CacheMinSize 0."""
    proxy = store_proxy(request, store)
    httpd = module_httpd({"repo": small_repo},
                         {"repo": {"MinSize": 0}},
                         hgweb_conf="[server]\ndisablefullbundle = True\n",
                         endpoint=proxy and proxy.endpoint)
    r = hg.clone(httpd.repo_url("repo"), tmp_dir / "clone", "-U")
    assert not r.ok, r
    assert "pull-based clones disabled" in r.stderr, r
    (entry,) = wait_getbundles(httpd, "repo")
    assert entry["status"] == 200 and entry["content_type"] == MERCURIAL_02, entry
    assert entry["note"] == "miss-store-skipped:error-part", entry
    assert_nothing_stored(store, proxy)


def test_hg_error_is_not_stored(request, hg, module_httpd, small_repo, tmp_dir, store):
    """A bundle1 getbundle of a full clone with disablefullbundle: hgweb
    answers 200 application/hg-error (an out-of-band error); the clone fails,
    and nothing is stored, even with HgS3CacheMinSize 0."""
    proxy = store_proxy(request, store)
    httpd = module_httpd({"repo": small_repo},
                         {"repo": {"MinSize": 0}},
                         hgweb_conf="[server]\ndisablefullbundle = True\n",
                         endpoint=proxy and proxy.endpoint)
    r = hg.clone(httpd.repo_url("repo"), tmp_dir / "clone", "-U",
                 "--config", "devel.legacy.exchange=bundle1")
    assert not r.ok, r
    assert "pull-based clones disabled" in r.stderr, r
    (entry,) = wait_getbundles(httpd, "repo")
    assert entry["status"] == 200 and entry["content_type"] == "application/hg-error", entry
    assert entry["note"] == "miss-store-skipped:hg-error", entry
    assert_nothing_stored(store, proxy)


def test_aborted_client_leaves_nothing(hg, module_httpd, big_repo, tmp_dir, store, proxy):
    """A client that reads part of a 20+ MB getbundle and disconnects: no
    object, no upload, and neither spool file nor lock is left behind."""
    spool = spool_dir(tmp_dir)
    httpd = module_httpd({"big": big_repo},
                         {"big": {"Memory": "64K", "SpoolDir": str(spool)}},
                         endpoint=proxy.endpoint)
    httpd.allow_log(WSGI_CLIENT_GONE)
    headers = clone_headers(hg.heads(big_repo))
    request = (f"GET /big?cmd=getbundle HTTP/1.1\r\nHost: {E.LOOPBACK}:{httpd.port}\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
               + "User-Agent: mercurial/proto-1.0 (Mercurial 6.3.2)\r\n\r\n").encode()
    # A small receive buffer: the server is held mid-response, not done.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)
    try:
        sock.connect((E.LOOPBACK, httpd.port))
        sock.sendall(request)
        got = b""
        while len(got) < 512 * 1024:
            data = sock.recv(64 * 1024)
            assert data, f"connection closed after {len(got)} bytes"
            got += data
        assert got.startswith(b"HTTP/1.1 200 "), got[:200]
        # Mid-response: the capture has spilled its spool and holds the lock.
        held = spool_leftovers(spool)
        assert any(n.startswith("hgs3spool.") for n in held), held
        assert any(n.startswith("hgs3lock.") for n in held), held
    finally:
        sock.close()

    (entry,) = wait_getbundles(httpd, "big", timeout=30)
    assert entry["note"] == "miss-store-skipped:aborted", entry
    E.wait_until(lambda: not spool_leftovers(spool), 10, what="empty spool dir")
    assert_nothing_stored(store, proxy)
    assert spool_leftovers(spool) == []


# --- concurrency ---------------------------------------------------------------
def test_concurrent_clones_upload_once(hg, module_httpd, small_repo, tmp_dir, store, proxy):
    """20 identical clones at once: exactly one upload of their key, the other
    19 follow the first (noted collapsed), and all 20 clones verify. The proxy holds the
    upload until every clone is done, so the lock is still held while the 20
    getbundles arrive."""
    spool = spool_dir(tmp_dir)
    n = 20
    httpd = module_httpd({"repo": small_repo},
                         {"repo": {"SpoolDir": str(spool)}}, mpm_conf=MPM_MANY_THREADS,
                         endpoint=proxy.endpoint)
    gate = Gate()
    proxy.add_rule("delay", method=("PUT", "POST"), seconds=gate)
    url = httpd.repo_url("repo")
    results = [None] * n

    def one(i):
        try:
            results[i] = hg.clone(url, tmp_dir / f"clone{i}", "-U")
        except Exception as e:            # reported below
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join(180)
        entries = wait_getbundles(httpd, "repo", count=n)
        # The upload was requested (and is held): the lock is still taken.
        proxy.wait_for(("PUT", "POST"), PREFIX, done=None, timeout=UPLOAD_WAIT)
        held = spool_leftovers(spool)
    finally:
        gate.open()
    # verified after the gate opened: 20 verifies take longer than an
    # upload may stall
    results = [(r, hg.verify(tmp_dir / f"clone{i}"), hg.history(tmp_dir / f"clone{i}"))
               if getattr(r, "ok", False) else (r, None, None) for i, r in enumerate(results)]
    expected = hg.history(small_repo)
    for i, (r, v, hist) in enumerate(results):
        assert v is not None, f"clone {i}: {r}"
        assert v.rc == 0 and "error" not in v.stderr.lower(), f"verify {i}: {v}"
        assert hist == expected, f"clone {i} history differs"

    notes = sorted(e["note"] for e in entries)
    assert notes == ["collapsed"] * (n - 1) + ["miss"], notes
    (key,) = wait_stored(store, proxy)
    # the lock, and the spool file the followers read (SPEC "Collapsed misses")
    assert held[0] == "hgs3lock." + key[len(PREFIX):], held
    assert [h.startswith("hgs3spool.") for h in held[1:]] == [True], held
    time.sleep(0.5)
    ups = uploads(proxy, key)
    assert [(u["method"], u["status"]) for u in ups] == [("PUT", 200)], ups
    assert len(uploads(proxy)) == 1
    data = store.get(key)[0]
    assert len(data) == entries[0]["bytes"]
    check_put(ups[0], data)
    E.wait_until(lambda: not spool_leftovers(spool), 10, what="lock released")


# --- CGI -----------------------------------------------------------------------
def test_cgi_miss_is_stored(hg, httpd_factory, module_httpd, small_repo, tmp_dir, store, proxy):
    """hgweb as a CGI script: the miss is captured and stored the same way."""
    httpd = module_httpd({"repo": small_repo}, {"repo": {}},
                         mode="cgi", endpoint=proxy.endpoint)
    plain = httpd_factory(repos={"repo": small_repo}, mode="cgi")
    clone = clone_ok(hg, httpd.repo_url("repo"), tmp_dir / "clone")
    hg.assert_same_history(small_repo, clone)
    hg.assert_verify_clean(clone)
    (entry,) = wait_getbundles(httpd, "repo")
    assert entry["note"] == "miss" and entry["content_type"] == MERCURIAL_02, entry
    (key,) = wait_stored(store, proxy)
    data, ctype, _ = store.get(key)
    proxy.wait_for("PUT", re.escape(key), timeout=UPLOAD_WAIT)
    (put,) = uploads(proxy)
    check_put(put, data)
    direct = direct_getbundle(plain, "repo", replay_headers(entry))
    assert_same_body(data, direct)
    assert ctype == MERCURIAL_02


# --- the upload is off the response path ---------------------------------------
# The store holds every upload for DELAY seconds. Were the response waiting
# for its upload (or for the store at all), each miss would take at least
# DELAY longer than the same request with the module off; it does not wait,
# so the difference is the capture's own cost, milliseconds. The assertion
# separates the two by half of DELAY, far from either, so a loaded machine
# cannot flip it. How small the capture's cost is, is a performance figure:
# bench/run measures it (miss_overhead_ratio, target >= 0.95), a test does not.
# (samples, seconds the store holds each upload)
LATENCY_CASES = {"history": (5, 3.0), "blobs": (5, 3.0)}


@pytest.mark.parametrize("repo_kind", sorted(LATENCY_CASES))
def test_upload_is_off_the_response_path(request, repo_kind, hg, module_httpd, store, proxy):
    """With every upload held by the store for DELAY seconds, a 20+ MB
    miss's last byte comes no later than DELAY / 2 after that of the same
    request with HgS3Cache off (median of alternating pairs; each upload is
    let finish before the next pair), each response is complete before its
    upload is, and every object is stored with the right bytes."""
    repo = request.getfixturevalue({"history": "history_repo", "blobs": "big_repo"}[repo_kind])
    samples, delay = LATENCY_CASES[repo_kind]
    repos = {f"on{i}": repo for i in range(samples)}
    repos["off"] = repo
    # A salt per Location: every sample is a miss on a key of its own.
    locations = {f"on{i}": {"KeySalt": f"latency-{i}"} for i in range(samples)}
    locations["off"] = {"enabled": False}
    httpd = module_httpd(repos, locations, endpoint=proxy.endpoint)
    proxy.add_rule("delay", method=("PUT", "POST"), seconds=delay)
    headers = clone_headers(hg.heads(repo))

    # Warm up hgweb (repository objects, imports) on every path.
    for name in repos:
        assert httpd.get(f"/{name}?cmd=capabilities")[0] == 200
    status, _, warm, _, _ = fetch_timed(httpd, "/off?cmd=getbundle", headers)
    assert status == 200 and len(warm) >= BIG_MIN

    on, off, on_ends = [], [], []
    for i in range(samples):
        s, ct, body, t, _ = fetch_timed(httpd, "/off?cmd=getbundle", headers)
        assert s == 200 and ct == MERCURIAL_02 and body == warm
        off.append(t)
        s, ct, body, t, end = fetch_timed(httpd, f"/on{i}?cmd=getbundle", headers)
        assert s == 200 and ct == MERCURIAL_02 and body == warm
        on.append(t)
        on_ends.append(end)
        # Let this upload end (after the store's delay) before the next
        # pair: the store's own CPU (Swift is Python) receiving 23 MB
        # would otherwise land on whichever sample comes next.
        proxy.wait_for(("PUT", "POST"), PREFIX, count=i + 1, timeout=UPLOAD_WAIT + delay)

    notes = {n: [e["note"] for e in wait_getbundles(httpd, n, count=samples + 1 if n == "off" else 1)]
             for n in repos}
    assert notes["off"] == [None] * (samples + 1), notes
    for i in range(samples):
        assert notes[f"on{i}"] == ["miss"], notes

    # Each "on" sample is compared with the "off" sample just before it, so
    # slow drifts of the machine cancel; the median of those differences is
    # the module's overhead.
    extra = statistics.median(a - b for a, b in zip(on, off))
    base = statistics.median(off)
    print(f"{repo_kind}: miss overhead {extra * 1000:+.1f} ms ({extra / base * 100:+.1f}%) "
          f"over {base:.3f}s with the module off (a figure, not a bound: bench/run)")
    assert extra < delay / 2, (
        f"a miss took {extra * 1000:+.1f} ms more than with the module off (median of paired "
        f"differences), as if it waited for the store's {delay} s upload; samples on "
        f"{[round(t, 3) for t in on]} off {[round(t, 3) for t in off]}")

    # Every upload was really held by the store, and finished only after
    # its response had reached the client.
    keys = wait_stored(store, proxy, count=samples, timeout=UPLOAD_WAIT + samples * delay)
    assert len(keys) == samples
    puts = sorted(proxy.wait_for(("PUT", "POST"), PREFIX, count=samples, timeout=UPLOAD_WAIT),
                  key=lambda r: r["time"])
    assert len(puts) == samples, [(p["method"], p["path"]) for p in puts]
    for put, end in zip(puts, on_ends):
        assert put["rule"] == "delay" and put["status"] == 200, put
        assert put["time"] + put["duration"] > end, (put, end)
        assert put["duration"] >= delay
    for key in keys:
        assert store.get(key)[0] == warm
