"""The capture filter and its spool: streaming, host-wide spool cap, leftovers.

Real httpd + hgweb (CGI through mod_cgid, where the response arrives as a pipe
bucket, and mod_wsgi daemon mode) + the real hg client + both S3 stores.

What is checked:
- a large CGI body goes on to the client as it is generated: its time to
  first byte stays close to the one without the module, and the httpd
  child's memory does not grow with the body; it is still stored; a client
  that leaves early stops the script;
- a multipart upload hashes each byte of the spool once;
- HgS3CacheSpoolMax caps the captures in flight on the host: beyond it a
  response is not stored (miss-store-skipped:spool-full, counted in
  server-status), and the client still gets the whole body;
- a child killed with SIGKILL during a capture leaves a spool file and a
  lock behind; they are removed when httpd starts again, and the next
  clone is stored.
"""
import concurrent.futures
import hashlib
import http.client
import os
import signal
import socket
import struct
import time
from pathlib import Path

import pytest

import soak
from pyhgs3 import env as E
from pyhgs3.checks import (PREFIX, clone_verified, spool_dir, spool_leftovers, wait_getbundles,
                           wait_objects)
from pyhgs3.hg import build_big_repo
from pyhgs3.hgwire import clone_headers

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def huge_repo(env, hg):
    """A repository whose full getbundle is above 64 MiB. Read only."""
    path = build_big_repo(hg, env.mkdir("template-capture") / "huge", total_mb=68, commits=4,
                          seed=40)
    E.make_world_readable(path)
    return path


def peak_rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def stored_object(store, key):
    """(bytes, content type) of an object. A loaded single-node Swift may cut
    a large GET short; such a read (shorter than the object's
    Content-Length) is tried again."""
    size = store.head(key)["ContentLength"]
    for _ in range(3):
        data, ctype, _ = store.get(key)
        if len(data) == size:
            break
    return data, ctype


def timed_get(httpd, path, headers):
    """(time to the first body byte, total time, status, note, length, sha256)."""
    conn = http.client.HTTPConnection(E.LOOPBACK, httpd.port, timeout=120)
    try:
        t0 = time.monotonic()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        first = r.read(1)
        ttfb = time.monotonic() - t0
        h = hashlib.sha256(first)
        n = len(first)
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        return (ttfb, time.monotonic() - t0, r.status, r.getheader("X-HgS3Cache"), n,
                h.hexdigest())
    finally:
        conn.close()


# --- item: CGI bodies stream through the capture ----------------------------------
def test_cgi_body_streams_while_captured(hg, httpd_factory, huge_repo, tmp_dir, store):
    """A > 64 MiB getbundle from hgweb under CGI: with the capture filter,
    its first byte comes about as fast as without the module (the filter
    passes data on as it reads it, rather than draining the script's pipe
    first), the httpd child's peak memory does not grow with the body, and
    the body is stored byte for byte."""
    spool = spool_dir(tmp_dir)
    conf = (store.location_conf(huge_repo, location="/on", SpoolDir=str(spool), Header=True)
            + store.location_conf(huge_repo, location="/off", enabled=False))
    httpd = httpd_factory(repos={"on": huge_repo, "off": huge_repo}, mode="cgi", module=True,
                          extra_conf=conf)
    headers = clone_headers(hg.heads(huge_repo))

    ttfb_off, total_off, status, _, n_off, sha_off = timed_get(httpd, "/off?cmd=getbundle",
                                                               headers)
    assert status == 200 and n_off > 64 * MIB, (status, n_off)

    child = soak.worker_child(httpd)
    before = peak_rss_kb(child)
    ttfb, total, status, note, n, sha = timed_get(httpd, "/on?cmd=getbundle", headers)
    grown_mib = (peak_rss_kb(child) - before) / 1024
    print(f"off: ttfb {ttfb_off:.3f}s total {total_off:.3f}s; on: ttfb {ttfb:.3f}s total "
          f"{total:.3f}s, child peak RSS +{grown_mib:.1f} MiB")
    assert status == 200 and note == "miss", (status, note)
    assert (n, sha) == (n_off, sha_off)
    # Buffered whole, the first byte came only once the script had
    # finished: several times later than without the module, and the
    # child held the whole body (+75 MiB, for a 68 MiB body).
    # (The bound leaves room for the lookup, a HEAD to the store.)
    bound = ttfb_off + 0.5 + (total_off - ttfb_off) / 3
    assert ttfb < bound, f"first byte after {ttfb:.2f}s (without the module {ttfb_off:.2f}s " \
                         f"of {total_off:.2f}s), whole body after {total:.2f}s"
    assert grown_mib < 24, f"the child's peak RSS grew by {grown_mib:.0f} MiB"

    (key,) = wait_objects(store, 1, timeout=60)
    data, ctype = stored_object(store, key)
    assert (len(data), hashlib.sha256(data).hexdigest()) == (n, sha)
    assert ctype.startswith("application/mercurial-0.")
    E.wait_until(lambda: not spool_leftovers(spool), 30, what="empty spool dir")


def test_cgi_client_abort_stops_the_script(hg, httpd_factory, huge_repo, tmp_dir, store):
    """A client that leaves early from a > 64 MiB CGI getbundle: the capture
    stops reading the script's pipe as soon as the response can no longer
    be sent (under mod_cgid, a filter that reads on drains the script to the
    end), so the request ends long before hgweb could have generated the
    rest of the body; the response is not stored and the spool dir is left
    empty."""
    spool = spool_dir(tmp_dir)
    conf = (store.location_conf(huge_repo, location="/on", SpoolDir=str(spool), Memory="64K")
            + store.location_conf(huge_repo, location="/off", enabled=False))
    httpd = httpd_factory(repos={"on": huge_repo, "off": huge_repo}, mode="cgi", module=True,
                          extra_conf=conf)
    headers = clone_headers(hg.heads(huge_repo))

    def rest_of_body():
        """Seconds hgweb takes to generate the body after its first byte."""
        ttfb, total, status, _, n, _ = timed_get(httpd, "/off?cmd=getbundle", headers)
        assert status == 200 and n > 64 * MIB
        return total - ttfb

    rest = rest_of_body()
    t0 = time.monotonic()
    sock = stalled_getbundle(httpd, "/on?cmd=getbundle", headers)
    left = time.monotonic() - t0
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()     # a reset: the next write fails
    (entry,) = wait_getbundles(httpd, "on")
    assert entry["note"] == "miss-store-skipped:aborted", entry
    took = entry["duration_us"] / 1e6
    rest = max(rest, rest_of_body())
    assert took < left + rest / 2, f"the client left after {left:.2f}s, the request ended " \
                                   f"after {took:.2f}s; the rest of the body takes {rest:.2f}s"
    E.wait_until(lambda: not spool_leftovers(spool), 30, what="empty spool dir")
    time.sleep(1)
    assert store.keys(PREFIX) == []


def read_chars(pid):
    """Bytes the process has read with read(2) and friends (/proc/PID/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no rchar for {pid}")


def test_multipart_upload_hashes_each_byte_once(hg, httpd_factory, huge_repo, tmp_dir, store):
    """A > 64 MiB body goes up as multipart, each part with its own
    x-amz-content-sha256 (Swift checks them); the spool file is read once
    to hash each part and once to send it, not a third time for a
    whole-body SHA-256 that multipart does not use. The child reads the
    body once from hgweb and twice from the spool: about 3x the body, not
    4x."""
    spool = spool_dir(tmp_dir)
    conf = store.location_conf(huge_repo, location="/big", SpoolDir=str(spool), Memory="64K")
    httpd = httpd_factory(repos={"big": huge_repo}, module=True, extra_conf=conf)
    child = soak.worker_child(httpd)
    before = read_chars(child)
    clone_verified(hg, httpd.repo_url("big"), tmp_dir / "clone", huge_repo)
    (entry,) = wait_getbundles(httpd, "big")
    assert entry["note"] == "miss", entry
    (key,) = wait_objects(store, 1, timeout=120)
    E.wait_until(lambda: not spool_leftovers(spool), 60, what="the upload's end")
    read = read_chars(child) - before
    assert store.head(key)["ContentLength"] == entry["bytes"]
    assert read < 3.5 * entry["bytes"], f"{read / entry['bytes']:.2f}x the body read"
    assert read > 2.5 * entry["bytes"], f"{read / entry['bytes']:.2f}x the body read"


# --- item: leftovers of killed children ---------------------------------------------
def stalled_getbundle(httpd, path, headers):
    """A getbundle whose client reads the head and a little body, then stops
    reading (the socket stays open): the capture pauses mid-body."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(60)
    sock.connect((E.LOOPBACK, httpd.port))
    req = (f"GET {path} HTTP/1.1\r\nHost: {E.LOOPBACK}:{httpd.port}\r\n"
           + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
    sock.sendall(req.encode())
    got = b""
    while len(got) < 65536:
        data = sock.recv(16384)
        assert data, f"connection closed after {len(got)} bytes"
        got += data
    return sock


def wait_leftovers(spool, kinds=("hgs3lock.", "hgs3spool.")):
    def found():
        names = spool_leftovers(spool)
        return names if all(any(n.startswith(k) for n in names) for k in kinds) else None
    return E.wait_until(found, 30, what=f"{kinds} in {spool}")


def new_child(httpd, old):
    try:
        return soak.worker_child(httpd) != old
    except RuntimeError:
        return False     # not forked yet


def test_killed_capture_leftovers_are_swept(hg, httpd_factory, big_repo, tmp_dir, store):
    """SIGKILL the httpd child in the middle of a capture: its spool file and
    its lock stay behind. The lock does not block the key (its flock died
    with the child), the next capture sweeps the dead files away, and the
    next clone is stored."""
    spool = spool_dir(tmp_dir)
    conf = store.location_conf(big_repo, location="/big", SpoolDir=str(spool), Memory="64K")
    httpd = httpd_factory(repos={"big": big_repo}, module=True, extra_conf=conf)
    headers = clone_headers(hg.heads(big_repo))

    sock = stalled_getbundle(httpd, "/big?cmd=getbundle", headers)
    try:
        dead = wait_leftovers(spool)
        child = soak.worker_child(httpd)
        os.kill(child, signal.SIGKILL)
    finally:
        sock.close()
    E.wait_until(lambda: new_child(httpd, child), 30, what="a new httpd child")
    assert spool_leftovers(spool) == dead
    time.sleep(6)   # older than the sweep's grace period (5 s)

    clone_verified(hg, httpd.repo_url("big"), tmp_dir / "clone", big_repo)
    (entry,) = wait_getbundles(httpd, "big")    # the killed one was never logged
    assert entry["note"] == "miss", entry
    wait_objects(store, 1, timeout=60)
    E.wait_until(lambda: not spool_leftovers(spool), 30, what="empty spool dir")


def test_startup_sweeps_dead_leftovers(httpd_factory, small_repo, tmp_dir, store):
    """Lock and spool files that nobody holds (a killed child's) are removed
    when httpd starts; other files stay."""
    spool = spool_dir(tmp_dir)
    names = ["hgs3lock." + "ab" * 32, "hgs3spool.Xy12Zq", "keep.txt"]
    old = time.time() - 3600
    for n in names:
        (spool / n).write_bytes(b"leftover")
        E.chown_to_server(spool / n)
        os.utime(spool / n, (old, old))
    conf = store.location_conf(small_repo, location="/repo", SpoolDir=str(spool))
    httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf)
    assert sorted(p.name for p in spool.iterdir()) == ["keep.txt"]


# --- HgS3CacheSpoolMax -------------------------------------------------------------
def test_spool_max_caps_captures_in_flight(hg, httpd_factory, big_repo, tmp_dir, store):
    """HgS3CacheSpoolMax 30M with two concurrent 24 MB captures (two keys):
    together they would exceed it, so one (or both) is not stored
    (miss-store-skipped:spool-full, counted in server-status); both clones
    get the whole body and verify. Once the captures are over, the budget is
    back: the skipped key is stored by its next clone."""
    spool = spool_dir(tmp_dir)
    common = dict(SpoolDir=str(spool), Memory="64K")
    conf = ("HgS3CacheSpoolMax 30M\n"
            + store.location_conf(big_repo, location="/a", KeySalt="a", **common)
            + store.location_conf(big_repo, location="/b", KeySalt="b", **common))
    httpd = httpd_factory(repos={"a": big_repo, "b": big_repo}, module=True, extra_conf=conf)

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(hg.clone, httpd.repo_url(n), tmp_dir / f"first-{n}", "-U")
                for n in ("a", "b")]
        results = [f.result(timeout=300) for f in futs]
    for n, r in zip(("a", "b"), results):
        assert r.ok, r
        hg.assert_same_history(big_repo, tmp_dir / f"first-{n}")
        hg.assert_verify_clean(tmp_dir / f"first-{n}")
    notes = {n: wait_getbundles(httpd, n)[0]["note"] for n in ("a", "b")}
    full = [n for n, note in notes.items() if note == "miss-store-skipped:spool-full"]
    assert full and all(notes[n] in ("miss", "miss-store-skipped:spool-full") for n in notes), \
        notes
    for n in notes:
        assert wait_getbundles(httpd, n)[0]["bytes"] > 20 * MIB
    # (Both can be refused: each at half the budget, each asking for more.)
    # The spool dir is empty once the uploads are over.
    E.wait_until(lambda: not spool_leftovers(spool), 60, what="empty spool dir")
    assert len(store.keys(PREFIX)) == 2 - len(full)
    st = httpd.server_status()
    assert int(st["HgS3CacheSkipSpoolFull"]) == len(full), st
    assert int(st["HgS3CacheSpoolBytes"]) == 0, st

    for n in full:
        clone_verified(hg, httpd.repo_url(n), tmp_dir / f"again-{n}", big_repo)
        assert wait_getbundles(httpd, n, 2)[1]["note"] == "miss"
    wait_objects(store, 2, timeout=60)
    E.wait_until(lambda: int(httpd.server_status()["HgS3CacheSpoolBytes"]) == 0, 30,
                 what="the spool budget given back")


@pytest.mark.parametrize("conf, message", [
    ("HgS3CacheSpoolMax 0", "HgS3CacheSpoolMax"),
    ("HgS3CacheSpoolMax lots", "HgS3CacheSpoolMax"),
    ("<VirtualHost 127.0.0.1:1>\nHgS3CacheSpoolMax 1G\n</VirtualHost>", "HgS3CacheSpoolMax"),
    ("<Location /x>\nHgS3CacheSpoolMax 1G\n</Location>", "HgS3CacheSpoolMax"),
])
def test_spool_max_configtest(httpd_factory, small_repo, conf, message):
    """HgS3CacheSpoolMax takes a positive size, in the main server config only."""
    inst = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf + "\n",
                         start=False)
    rc, out = inst.configtest()
    assert rc != 0 and message in out, out
    ok = httpd_factory(repos={"repo": small_repo}, module=True,
                       extra_conf="HgS3CacheSpoolMax 512M\n", start=False)
    rc, out = ok.configtest()
    assert rc == 0, out
