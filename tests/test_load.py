"""Load: many clients at once against httpd + hgweb + mod_hgs3cache.

- 50 concurrent hg clones of one cold key: one upload, 50 verified clones;
- 200 concurrent hit requests (hg's getbundle headers, sent directly), with
  HgS3CacheHitMode stream and redirect: 200 correct answers each;
- the soak (soak.py) for 60 s on both stores at once: no stale bundle, no fd
  or memory growth in the httpd child, no leftover spool file.
"""
import concurrent.futures
import http.client
import re
import threading
import time
import urllib.parse
import urllib.request

import soak
from pyhgs3 import env as E
from pyhgs3.bucket import StoreBucket, unique_bucket_name
from pyhgs3.checks import (replay_headers, spool_dir, spool_leftovers, wait_getbundles,
                           wait_objects)
from pyhgs3.hg import copy_repo

PREFIX = "hgcache/"
MERCURIAL_02 = "application/mercurial-0.2"
UPLOAD_WAIT = 30
USER_AGENT = {"User-Agent": "mercurial/proto-1.0 (Mercurial 6.3.2)"}


def mpm(threads):
    """One child with `threads` worker threads."""
    return (f"StartServers 1\nServerLimit 1\nThreadLimit {threads}\n"
            f"ThreadsPerChild {threads}\nMaxRequestWorkers {threads}\nMinSpareThreads 1\n"
            f"MaxSpareThreads {threads}\nMaxConnectionsPerChild 0\nListenBacklog 511\n")


def run_at_once(n, fn, timeout=600):
    """fn(i) for i in range(n), all released together; results in order
    (an exception is returned in place of its result)."""
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait(60)
        return fn(i)

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        out = []
        for f in futures:
            try:
                out.append(f.result(timeout))
            except Exception as e:          # reported by the caller
                out.append(e)
        return out


# --- 50 concurrent clones of one cold key ---------------------------------------------
def test_50_concurrent_cold_clones(hg, httpd_factory, small_repo, tmp_dir, store, proxy):
    """50 hg clones of a cold key at once: exactly one upload of the key,
    the object is what hgweb answers, every other clone is noted
    in-progress, collapsed or a hit, and all 50 clones verify with the server's
    history. The store holds the upload 1.5 s, so that it completes while
    clones are still arriving: some find it in progress, later ones hit."""
    n = 50
    spool = spool_dir(tmp_dir)
    conf = store.location_conf(small_repo, location="/repo", endpoint=proxy.endpoint,
                               SpoolDir=str(spool))
    httpd = httpd_factory(repos={"repo": small_repo, "plain": small_repo}, module=True,
                          extra_conf="HgS3CachePresence none\n" + conf, mpm_conf=mpm(64))
    proxy.add_rule("delay", method=("PUT", "POST"), path=PREFIX, seconds=1.5)
    url = httpd.repo_url("repo")
    expected = hg.history(small_repo)

    def clone(i):
        dest = tmp_dir / f"clone{i}"
        r = hg.clone(url, dest, "-U")
        return r, dest

    t0 = time.monotonic()
    results = run_at_once(n, clone)
    took = time.monotonic() - t0
    failed = [(i, r) for i, r in enumerate(results) if isinstance(r, Exception) or not r[0].ok]
    assert not failed, failed[:3]

    def check(i):
        dest = results[i][1]
        v = hg.verify(dest)
        assert v.rc == 0 and "error" not in v.stderr.lower(), f"verify clone {i}: {v}"
        assert hg.history(dest) == expected, f"clone {i}: wrong history"

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(check, i) for i in range(n)]:
            f.result()

    entries = wait_getbundles(httpd, "repo", n)
    notes = sorted(e["note"] for e in entries)
    assert all(e["status"] in (200, 302) for e in entries), [e["status"] for e in entries]
    assert notes.count("miss") == 1, notes
    assert set(notes) <= {"miss", "miss-store-skipped:in-progress", "collapsed", "hit-redirect"}, \
        notes
    (key,) = wait_objects(store, timeout=UPLOAD_WAIT)
    proxy.wait_for("PUT", re.escape(key), timeout=UPLOAD_WAIT)
    E.wait_until(lambda: not spool_leftovers(spool), 15, what="empty spool dir")
    ups = proxy.find(("PUT", "POST"), PREFIX)
    assert [(u["method"], u["status"]) for u in ups] == [("PUT", 200)], ups
    miss = next(e for e in entries if e["note"] == "miss")
    status, hdrs, body = httpd.get("/plain?cmd=getbundle",
                                   headers=replay_headers(miss, USER_AGENT))
    assert status == 200 and store.get(key)[0] == body
    # one lookup per clone; a clone that takes the upload lock asks once more
    # (HgS3CachePresence none) whether the previous holder stored the object
    assert n <= len(proxy.find("HEAD", PREFIX)) <= 2 * n
    print(f"\n50 clones in {took:.1f}s: {dict((x, notes.count(x)) for x in set(notes))}")


# --- 200 concurrent hits -----------------------------------------------------------------
def test_200_concurrent_hits(hg, httpd_factory, small_repo, tmp_dir, store):
    """The object is stored by one clone; then 200 getbundle requests with
    that clone's headers at once, on a Location with HgS3CacheHitMode stream
    and on one with redirect (its own key: the Location is in it). Stream: 200 x 200 OK with the
    stored bytes. Redirect: 200 x 302 to a presigned URL of the object on
    the store, Cache-Control: no-store; 20 of those URLs, fetched, give the
    stored bytes. (HgS3CachePresence none: every hit is looked up.)"""
    n = 200
    conf = "HgS3CachePresence none\n" + "".join(
        store.location_conf(small_repo, location=f"/{loc}", HitMode=mode)
        for loc, mode in (("stream", "stream"), ("redirect", "redirect")))
    httpd = httpd_factory(repos={"stream": small_repo, "redirect": small_repo}, module=True,
                          extra_conf=conf, mpm_conf=mpm(n + 8))
    first = hg.clone(httpd.repo_url("stream"), tmp_dir / "first", "-U")
    assert first.ok, first
    (miss,) = wait_getbundles(httpd, "stream", 1)
    assert miss["note"] == "miss", miss
    (key,) = wait_objects(store, timeout=UPLOAD_WAIT)
    stored, ctype, _ = store.get(key)
    assert ctype == MERCURIAL_02 and len(stored) == miss["bytes"]
    headers = replay_headers(miss, USER_AGENT)

    def fetch(path):
        def one(i):
            conn = http.client.HTTPConnection(E.LOOPBACK, httpd.port, timeout=120)
            try:
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            finally:
                conn.close()
        return one

    # stream
    t0 = time.monotonic()
    answers = run_at_once(n, fetch("/stream?cmd=getbundle"))
    took_stream = time.monotonic() - t0
    bad = [(i, a if isinstance(a, Exception) else (a[0], len(a[2])))
           for i, a in enumerate(answers)
           if isinstance(a, Exception) or a[0] != 200 or a[2] != stored
           or a[1].get("content-type") != MERCURIAL_02]
    assert not bad, f"{len(bad)} wrong streamed answers, e.g. {bad[:3]}"
    entries = wait_getbundles(httpd, "stream", n + 1)[1:]
    assert [e["note"] for e in entries] == ["hit-stream"] * n

    # redirect: the Location is part of the key, so /redirect stores its own
    # object first
    second = hg.clone(httpd.repo_url("redirect"), tmp_dir / "second", "-U")
    assert second.ok, second
    (rmiss,) = wait_getbundles(httpd, "redirect", 1)
    assert rmiss["note"] == "miss", rmiss
    keys = wait_objects(store, count=2, timeout=UPLOAD_WAIT)
    (key,) = [k for k in keys if k != key]
    assert store.get(key)[0] == stored
    t0 = time.monotonic()
    answers = run_at_once(n, fetch("/redirect?cmd=getbundle"))
    took_redirect = time.monotonic() - t0
    bad = [(i, a if isinstance(a, Exception) else a[:2]) for i, a in enumerate(answers)
           if isinstance(a, Exception) or a[0] != 302
           or a[1].get("cache-control") != "no-store" or "location" not in a[1]]
    assert not bad, f"{len(bad)} wrong redirects, e.g. {bad[:3]}"
    locations = [a[1]["location"] for a in answers]
    for loc in locations:
        u = urllib.parse.urlsplit(loc)
        assert f"{u.scheme}://{u.netloc}" == store.endpoint, loc
        assert u.path == f"/{store.bucket}/{key}", loc
        q = urllib.parse.parse_qs(u.query)
        assert q.get("X-Amz-Algorithm") == ["AWS4-HMAC-SHA256"] and q.get("X-Amz-Signature"), loc
    for loc in locations[::n // 20]:
        with urllib.request.urlopen(loc, timeout=30) as r:
            assert r.status == 200 and r.read() == stored
            assert r.headers.get("Content-Type") == MERCURIAL_02
    entries = wait_getbundles(httpd, "redirect", n + 1)[1:]
    assert [e["note"] for e in entries] == ["hit-redirect"] * n
    assert sorted(store.keys()) == sorted(keys)
    print(f"\n200 streamed hits in {took_stream:.1f}s, 200 redirects in {took_redirect:.1f}s")


# --- soak ------------------------------------------------------------------------------
SOAK_SECONDS = 60


def test_soak(hg, httpd_factory, small_repo_template, env, s3rver, swift, request):
    """soak.py for 60 s, both stores at once (a lane each): clones, pulls
    and pushes interleaved; no stale bundle, no fd/memory growth in the
    httpd child, no leftover spool file. (A 10-minute run: README.)"""
    lanes = []
    for server in (s3rver, swift):
        bucket = unique_bucket_name("soak")
        server.create_bucket(bucket)
        repo = copy_repo(small_repo_template, env.mkdir(f"soak-repo-{server.kind}") / "small")
        lanes.append(soak.Lane(server.kind, hg, StoreBucket(server, bucket), repo,
                               env.mkdir(f"soak-{server.kind}"), httpd_factory))
    report = soak.run(SOAK_SECONDS, lanes)
    text = soak.format_report(report)
    print("\n" + text)
    assert not report["failures"], text
    for name, lane in report["lanes"].items():
        assert lane["clones"] >= 5 and lane["pushes"] >= 3, (name, lane)
        notes = lane["notes"]
        assert notes.get("hit-redirect", 0) and notes.get("hit-stream", 0), (name, notes)
        assert notes.get("miss", 0), (name, notes)


def test_soak_staleness_check():
    """The soak's history check itself: it accepts what hg legitimately gets
    while a push races a clone, and rejects a state gone before the clone."""
    a = ("n0 public ", "n1 draft stable", "n2 draft feature")
    b = ("n0 public ", "n1 public stable", "n2 draft feature")               # phase change
    c = ("n0 public ", "n1 public ", "n2 draft feature", "n3 draft stable")  # push, bookmark
    assert soak.consistent(a, [a])
    assert soak.consistent(c, [b, c])
    # heads asked before the push, bundle made after it: c's bookmarks on b's
    # changesets (stable is on n3, which the clone did not get)
    assert soak.consistent(("n0 public ", "n1 public ", "n2 draft feature"), [b, c])
    # a pull that had stable on n1 keeps it when the server's is unknown
    assert soak.consistent(("n0 public ", "n1 public stable", "n2 draft feature"), [b, c],
                           before=b)
    # stale: the history of a state that was gone when the clone began
    assert not soak.consistent(a, [b, c])
    assert not soak.consistent(b, [c])
    # nor a mix the server never had (phases of the older state)
    assert not soak.consistent(("n0 public ", "n1 draft ", "n2 draft feature",
                                "n3 draft stable"), [b, c])
