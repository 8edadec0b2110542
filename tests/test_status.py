"""mod_hgs3cache's counters in mod_status' server-status (SPEC "Observability").

Real httpd + hgweb + the hg client + mod_hgs3cache against the stores, the
module talking to the store through the recording FaultProxy. The harness
already configures `<Location /server-status> SetHandler server-status`.

What is checked:
- `server-status?auto` has one `HgS3Cache<Name>: <integer>` line per counter,
  all zero on a fresh server, and the HTML page has the module's section;
- after clones, the counters match what happened, taken from independent
  sources: the access log (getbundle requests, their notes, the other wire
  commands), the bucket (objects and their sizes) and the proxy (HEAD
  requests the module sent);
- the counts are the same whichever child answers server-status, with two
  children serving (the counters are shared, not per process);
- store failures, breaker trips, failed uploads and a full upload queue are
  counted.
"""
import re
import threading
import time

import pytest

from pyhgs3 import env as E
from pyhgs3.bucket import StoreBucket, unique_bucket_name
from pyhgs3.checks import wait_getbundles, wait_objects
from pyhgs3.httpd import hgs3cache_location

PREFIX = "hgcache/"
UPLOAD_WAIT = 30
PID_LOG = 'LogFormat "%P\\t%m\\t%U%q" hgs3pid\nCustomLog "logs/pid_log" hgs3pid\n'

# Two children with 16 threads each; both stay up while idle (32 idle
# threads <= MaxSpareThreads), so either may answer any connection, and
# MinSpareThreads 1 keeps the MPM quiet about spare threads.
MPM_TWO_CHILDREN = """\
StartServers 2
ServerLimit 2
ThreadLimit 16
ThreadsPerChild 16
MaxRequestWorkers 32
MinSpareThreads 1
MaxSpareThreads 32
MaxConnectionsPerChild 0
"""

# Every counter the module reports (besides the per-reason ones).
COUNTERS = ("Hits", "HitsRedirect", "HitsStream", "HitsInline", "HitsLocal", "InlineStored", "Misses", "Stored", "StoredBytes",
            "UploadsDropped", "UploadErrors", "StoreErrors", "BreakerTrips", "Lookups",
            "LookupUsSum", "LookupUsMax", "LookupUsMean", "PresenceHits", "Heads", "Skips",
            "Bypasses", "SpoolBytes", "Collapsed", "CollapseFallbacks", "CollapseAborts")
SKIP_REASONS = ("status", "hg-error", "content-type", "content-encoding", "content-length",
                "set-cookie", "too-large", "too-small", "error-part", "unrecognized-body",
                "aborted", "length-mismatch", "spool-error", "in-progress", "queue-full",
                "credentials", "read-error", "downstream-error", "error-bucket", "lock-error",
                "no-uploader", "no-memory", "uploader-stopped", "spool-full", "other")
BYPASS_REASONS = ("command", "method", "malformed", "too-large", "post-body", "location",
                  "repository", "key", "credentials", "store-error", "store-auth", "breaker-open",
                  "other")


def camel(reason):
    return "".join(w[:1].upper() + w[1:] for w in reason.split("-"))


def skip_name(reason):
    return "Skip" + camel(reason)


def bypass_name(reason):
    return "Bypass" + camel(reason)


ALL_NAMES = (list(COUNTERS) + [skip_name(r) for r in SKIP_REASONS]
             + [bypass_name(r) for r in BYPASS_REASONS])


# --- helpers -----------------------------------------------------------------
def counters(httpd):
    """The module's ?auto fields as {Name: int} (HgS3Cache prefix removed)."""
    status, _, body = httpd.get("/server-status?auto")
    assert status == 200, status
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("HgS3Cache"):
            m = re.fullmatch(r"HgS3Cache([A-Za-z0-9]+): (\d+)", line)
            assert m, f"malformed ?auto line {line!r}"
            assert m.group(1) not in out, f"{m.group(1)} reported twice"
            out[m.group(1)] = int(m.group(2))
    return out


def mismatches(got, want):
    return {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}


def wait_counters(httpd, want, timeout=UPLOAD_WAIT):
    """Poll ?auto until every counter in `want` has its value; returns them all."""
    last = {}

    def ok():
        nonlocal last
        last = counters(httpd)
        return not mismatches(last, want)

    try:
        E.wait_until(ok, timeout, interval=0.2, what="counters")
    except TimeoutError:
        raise AssertionError(f"counters after {timeout}s, (got, want): "
                             f"{mismatches(last, want)}") from None
    return last


def pids(httpd, target):
    """PIDs of the children that answered requests for `target` (PID_LOG)."""
    try:
        text = (httpd.logs_dir / "pid_log").read_text()
    except FileNotFoundError:
        return set()
    return {ln.split("\t")[0] for ln in text.splitlines() if ln.split("\t")[2:3] == [target]}


def status_pids(httpd):
    return pids(httpd, "/server-status?auto")


def clone_ok(hg, url, dest):
    r = hg.clone(url, dest, "-U")
    assert r.ok, r
    return dest


def locations_conf(store, proxy, repos, locations):
    return "".join(store.location_conf(repos[name], location=f"/{name}",
                                       endpoint=proxy.endpoint, **d)
                   for name, d in locations.items())


@pytest.fixture
def s3_store(s3rver):
    """A fresh bucket on s3rver (the fault tests need one store only)."""
    bucket = unique_bucket_name()
    s3rver.create_bucket(bucket)
    return StoreBucket(s3rver, bucket)


# --- the report itself -------------------------------------------------------------
def test_status_report_fresh(httpd_factory, small_repo, s3_store):
    """A fresh server: every counter is reported once, as an integer, and is
    zero; the HTML page has the module's section with the same names."""
    httpd = httpd_factory(repos={"repo": small_repo}, module=True,
                          extra_conf=s3_store.location_conf(small_repo))
    got = counters(httpd)
    assert sorted(got) == sorted(ALL_NAMES), set(got) ^ set(ALL_NAMES)
    assert all(v == 0 for v in got.values()), {k: v for k, v in got.items() if v}
    # mod_status' own fields are still there
    assert "Total Accesses" in httpd.server_status()

    status, headers, body = httpd.get("/server-status")
    assert status == 200 and headers["content-type"].startswith("text/html")
    html = body.decode()
    assert "<h2>mod_hgs3cache</h2>" in html
    for name in ALL_NAMES:
        assert f"<code>HgS3Cache{name}</code>" in html, name


def test_status_without_module_config(httpd_factory, small_repo):
    """The module loaded but not enabled anywhere: the section is there,
    and the counters stay zero after requests the module declines."""
    httpd = httpd_factory(repos={"repo": small_repo}, module=True,
                          extra_conf=hgs3cache_location("/repo", small_repo, enabled=False))
    assert httpd.get("/repo?cmd=capabilities")[0] == 200
    got = counters(httpd)
    assert sorted(got) == sorted(ALL_NAMES)
    assert not any(got.values()), got


# --- counting clones -----------------------------------------------------------------
def test_counters_after_clones(hg, httpd_factory, small_repo, tmp_dir, store, proxy):
    """Clones of three Locations (default; HgS3CacheMinSize 1M; HitMode
    stream), twice each, on two children, plus a few requests the module
    bypasses: the counters equal what the access log, the bucket and the
    proxy say happened, whichever child answers server-status."""
    repos = {"repo": small_repo, "tiny": small_repo, "stream": small_repo}
    conf = locations_conf(store, proxy, repos, {
        "repo": {},
        "tiny": {"MinSize": "1M", "KeySalt": "tiny"},
        "stream": {"HitMode": "stream", "KeySalt": "stream"}})
    httpd = httpd_factory(repos=repos, module=True, extra_conf=conf + PID_LOG,
                          mpm_conf=MPM_TWO_CHILDREN)

    # Round 1: three misses; /repo and /stream are stored, /tiny is too small.
    for name in repos:
        clone_ok(hg, httpd.repo_url(name), tmp_dir / f"{name}-1")
    keys = wait_objects(store, 2, UPLOAD_WAIT)
    sizes = [len(store.get(k)[0]) for k in keys]
    wait_counters(httpd, {"Stored": 2, "StoredBytes": sum(sizes)})

    # Round 2: hits for /repo (redirect) and /stream (stream); /tiny misses again.
    for name in repos:
        dest = clone_ok(hg, httpd.repo_url(name), tmp_dir / f"{name}-2")
        hg.assert_same_history(small_repo, dest)

    # Requests the module looks at and lets through.
    assert httpd.get("/repo?cmd=getbundle", method="DELETE")[0] != 0        # bypass:method
    assert httpd.get("/repo?cmd=getbundle&cmd=heads")[0] != 0               # bypass:malformed

    # What happened, from the access log and the proxy.
    notes = {name: [e["note"] for e in wait_getbundles(httpd, name, 2, 15)] for name in repos}
    assert notes == {"repo": ["miss", "hit-redirect"],
                     "tiny": ["miss-store-skipped:too-small"] * 2,
                     "stream": ["miss", "hit-stream"]}, notes
    wire = [e for e in httpd.access_log.entries()
            if re.match(r"^/(repo|tiny|stream)\?cmd=", e["target"])]
    other_cmds = [e for e in wire if e["method"] == "GET" and
                  not re.search(r"[?&]cmd=getbundle(&|$)", e["target"])]
    # capabilities and batch: kept inline by the first clone of each Location
    assert sorted(e["note"] for e in other_cmds) == ["hit-inline"] * 6 + ["miss"] * 6, \
        [(e["target"], e["note"]) for e in other_cmds]
    gb = sum(len(v) for v in notes.values())
    misses = sum(1 for v in notes.values() for n in v if n.startswith("miss"))
    heads = proxy.count("HEAD", re.escape(PREFIX))

    want = {
        "Hits": 2 + 6, "HitsRedirect": 1, "HitsStream": 1, "HitsInline": 6, "InlineStored": 6,
        "Misses": misses + 6,
        "Stored": 2, "StoredBytes": sum(sizes),
        "Skips": 2, "SkipTooSmall": 2,
        "Bypasses": 2,
        "BypassCommand": 0, "BypassMethod": 1, "BypassMalformed": 1,
        # every getbundle was looked up: the two hits in the presence cache,
        # the four misses with a HEAD
        "Lookups": gb, "PresenceHits": 2, "Heads": heads,
        "UploadsDropped": 0, "UploadErrors": 0, "StoreErrors": 0, "BreakerTrips": 0,
        "SkipOther": 0, "BypassOther": 0,
    }
    assert misses == 4 and heads == 4, (misses, heads)
    got = wait_counters(httpd, want, timeout=10)
    assert 0 < got["LookupUsMax"] <= got["LookupUsSum"], got
    assert got["LookupUsMean"] == got["LookupUsSum"] // got["Lookups"], got
    # The ones not named above are zero.
    named = set(want) | {"LookupUsMax", "LookupUsSum", "LookupUsMean"}
    assert not {k: v for k, v in got.items() if k not in named and v}, got

    # The same totals from both children. Which child accepts a new
    # connection is the kernel's choice, and the child that has just answered
    # tends to win again while both are idle: pause between requests.
    for _ in range(200):
        assert not mismatches(counters(httpd), want)
        if len(status_pids(httpd)) >= 2:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"server-status was always answered by {status_pids(httpd)}")


# --- failures ----------------------------------------------------------------------
def test_store_errors_and_breaker(hg, httpd_factory, small_repo, tmp_dir, s3_store,
                                  proxy_factory):
    """The store answers every HEAD with 503: the first three clones each
    count a store error (bypass:store-error), the third trips the breaker,
    the fourth is not looked up (bypass:breaker-open). One child, so one
    breaker."""
    proxy = proxy_factory(s3_store)
    proxy.add_rule("status", method="HEAD", status=503, body=b"<Error/>")
    httpd = httpd_factory(repos={"repo": small_repo}, module=True,
                          extra_conf=s3_store.location_conf(small_repo, endpoint=proxy.endpoint,
                                                            Commands="getbundle")
                          + "HgS3CacheBreaker 3 60\n")
    httpd.allow_log(r"HGS300401", r"HGS300402")
    for i in range(4):
        clone_ok(hg, httpd.repo_url("repo"), tmp_dir / f"c{i}")
    notes = [e["note"] for e in wait_getbundles(httpd, "repo", 4, 15)]
    assert notes == ["bypass:store-error"] * 3 + ["bypass:breaker-open"], notes
    assert proxy.count("HEAD") == 3
    wait_counters(httpd, {"StoreErrors": 3, "BreakerTrips": 1, "BypassStoreError": 3,
                          "BypassBreakerOpen": 1, "Heads": 3, "Lookups": 3, "Misses": 0,
                          "Stored": 0, "Hits": 0}, timeout=10)


def test_upload_errors(hg, httpd_factory, small_repo, tmp_dir, s3_store, proxy_factory):
    """Every PUT fails with 500: the miss is counted, the failed upload is
    an upload error, nothing is stored."""
    proxy = proxy_factory(s3_store)
    proxy.add_rule("status", method=("PUT", "POST"), status=500, body=b"<Error/>")
    httpd = httpd_factory(repos={"repo": small_repo}, module=True,
                          extra_conf=s3_store.location_conf(small_repo, endpoint=proxy.endpoint,
                                                            Commands="getbundle"))
    httpd.allow_log(r"HGS300201")
    clone_ok(hg, httpd.repo_url("repo"), tmp_dir / "c")
    (entry,) = wait_getbundles(httpd, "repo", 1, 15)
    assert entry["note"] == "miss", entry
    proxy.wait_for("PUT", re.escape(PREFIX), timeout=UPLOAD_WAIT)
    wait_counters(httpd, {"Misses": 1, "UploadErrors": 1, "Stored": 0, "StoredBytes": 0,
                          "Heads": 1, "Lookups": 1})
    assert s3_store.keys(PREFIX) == []


def test_queue_full_is_counted(hg, httpd_factory, small_repo, tmp_dir, s3_store,
                               proxy_factory):
    """One upload thread, a queue of one, uploads held 6 s by the store:
    of three misses in a row one uploads, one waits, the third finds the
    queue full (skipped: queue-full, one dropped upload); two are stored."""
    proxy = proxy_factory(s3_store)
    proxy.add_rule("delay", method="PUT", seconds=6)
    repos = {f"r{i}": small_repo for i in range(3)}
    conf = locations_conf(s3_store, proxy, repos,
                          {name: {"KeySalt": name, "Commands": "getbundle"} for name in repos})
    httpd = httpd_factory(repos=repos, module=True,
                          extra_conf="HgS3CacheUploadWorkers 1\nHgS3CacheUploadQueue 1\n" + conf)
    httpd.allow_log(r"HGS300203")
    t0 = time.monotonic()
    for name in repos:
        clone_ok(hg, httpd.repo_url(name), tmp_dir / name)
    assert time.monotonic() - t0 < 6, "the clones took longer than the held upload"
    notes = [wait_getbundles(httpd, name, 1, 15)[0]["note"] for name in repos]
    assert notes == ["miss", "miss", "miss-store-skipped:queue-full"], notes
    wait_counters(httpd, {"Misses": 3, "SkipQueueFull": 1, "Skips": 1, "UploadsDropped": 1},
                  timeout=10)
    keys = wait_objects(s3_store, 2, UPLOAD_WAIT)
    wait_counters(httpd, {"Stored": 2, "StoredBytes": sum(len(s3_store.get(k)[0]) for k in keys),
                          "UploadErrors": 0})


def test_concurrent_requests_add_up(httpd_factory, small_repo, s3_store):
    """200 wire-command requests from 8 threads, served by both children:
    every one is counted once (bypass:command: clonebundles is not cached)."""
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, mpm_conf=MPM_TWO_CHILDREN,
                          extra_conf=s3_store.location_conf(small_repo) + PID_LOG)
    n, threads = 200, 8
    errors = []

    def worker(k):
        for _ in range(k, n, threads):
            try:
                if httpd.get("/repo?cmd=clonebundles")[0] != 200:
                    errors.append("status")
            except OSError as e:
                errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[:5]
    assert len(pids(httpd, "/repo?cmd=clonebundles")) == 2
    wait_counters(httpd, {"BypassCommand": n, "Bypasses": n, "Misses": 0, "Lookups": 0},
                  timeout=10)
