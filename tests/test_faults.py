"""Store faults: mod_hgs3cache fails open.

The module talks to the store (s3rver or Swift s3api, the `store` fixture)
through the recording FaultProxy, which injects one fault at a time:

    refuse        the store's port refuses connections
    hang          the store accepts a request and never answers
    500           500 InternalError
    503           503 SlowDown (S3's XML error body)
    403           403: the store refuses the credentials
    cut_response  the store's answer is cut off
    cut_request   the request body reaches the store cut in half
    delay         the store answers, late

on the lookup path (HEAD, and the GET of a streamed hit) and on the upload
path (PUT, multipart POST/PUT). For each, the tests check (SPEC "Failure
behaviour"):
- every hg clone and hg pull succeeds and verifies, with the server's history;
- no partial or corrupt object is in the bucket afterwards (read back with
  boto3: every object is byte for byte what hgweb answers);
- the added latency of a request (access-log %D against the same request on
  a Location without the module) stays within HgS3CacheTimeout;
- the breaker opens after HgS3CacheBreaker FAILURES failed lookups (lookups
  stop: no HEAD reaches the store and the added latency drops to ~0), lets one
  probe through after SECONDS, re-opens when the probe fails and closes when
  it succeeds; upload failures leave the lookups (and the breaker) alone;
- the failures are logged with their HGS3 tags, at a bounded rate.

On the lookup path a HEAD answer has no body: "cut_response" there closes
the connection before any answer, and "cut_request" does not apply (HEAD
and GET send no body); the GET of a streamed hit is cut before its body and
halfway. A store slower than LOOKUP_MS is the "hang" case;
test_lookup_delay_within_timeout is a store slow but in time. On the upload
path a PutObject's answer has no body either: "cut_response" cuts the
multipart answers (Create, Complete). s3rver checks neither the payload's
SHA-256 nor the length of a cut body and keeps what it received, so the
store's refusal of a cut upload is checked on Swift.

HgS3CachePresence none, so every lookup really reaches the store. Each test
prints one "FAULT ..." line with what it measured.
"""
import concurrent.futures
import hashlib
import http.client
import os
import re
import threading
import time

import pytest

from pyhgs3 import env as E
from pyhgs3.checks import clone_verified, replay_headers, spool_dir, spool_leftovers
from pyhgs3.checks import wait_getbundles, wait_objects
from pyhgs3.hg import hgdate, random_bytes
from pyhgs3.hgwire import clone_headers

from conftest import STORES_AND_FILE, store_fixture  # noqa: E402

# Also on the local-directory store; its S3-specific tests skip there.
store = store_fixture(STORES_AND_FILE)

PREFIX = "hgcache/"
MIB = 1024 * 1024

CONNECT_MS, LOOKUP_MS = 500, 1000
BREAKER_FAILS, BREAKER_SECS = 2, 1
SERVER_CONF = (f"HgS3CachePresence none\n"
               f"HgS3CacheBreaker {BREAKER_FAILS} {BREAKER_SECS}\n")

# Latency bounds (seconds) over the request's own time without the module.
# Loopback timings on a shared 2-core machine are noisy: the slack is wide,
# but still well below the LOOKUP_MS a timed-out lookup costs.
SLACK_NONE = 0.40          # "no added latency" (breaker open, upload faults)
SLACK_BOUND = 0.50         # over LOOKUP_MS for a failed lookup
UPLOAD_WAIT = 30
# The module bounds an upload by 60 s + 1 s/MiB of its own: a wait for an
# upload's end that a fault may stretch uses more than that.
UPLOAD_END_WAIT = 80

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b'<Message>Please reduce your request rate.</Message>'
            b'<RequestId>hgs3fault</RequestId></Error>')
INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b'<Message>We encountered an internal error. Please try again.</Message>'
            b'<RequestId>hgs3fault</RequestId></Error>')
BADSIG = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>'
          b'<Message>The request signature we calculated does not match the signature you '
          b'provided.</Message><RequestId>hgs3fault</RequestId></Error>')
DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
          b'<Message>Access Denied</Message><RequestId>hgs3fault</RequestId></Error>')
XML = {"Content-Type": "application/xml"}

LOOKUP_TAGS = r"HGS300401|HGS300402"
UPLOAD_TAG = r"HGS300201"

# The upload hook: hgweb waits in preoutgoing while a flag file exists, so
# a test can act between the lookup and the upload of one miss.
SLOW_HOOK = """\
import os, time

def slow(ui, repo, **kwargs):
    if os.path.exists({flag!r}):
        time.sleep(1.5)
"""


# --- helpers -------------------------------------------------------------------
def wait_spool_empty(d, timeout=10):
    try:
        E.wait_until(lambda: not spool_leftovers(d), timeout, what="empty spool dir")
    except TimeoutError:
        raise AssertionError(f"left in HgS3CacheSpoolDir: {spool_leftovers(d)}") from None


def rec_header(rec, name):
    for k, v in rec["headers"]:
        if k.lower() == name.lower():
            return v
    return None


def key_of(rec):
    """The object name of a proxy record (path /<bucket>/<key>[?query])."""
    m = re.search(r"/(hgcache/[0-9a-f]{64})(\?|$)", rec["path"])
    assert m, rec["path"]
    return m.group(1)


def pending_multipart(store):
    """Multipart uploads the store still holds (Swift; s3rver cannot list them)."""
    if store.kind != "swift":
        return None
    r = store.client().list_multipart_uploads(Bucket=store.bucket)
    return [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]


def count_log(httpd, tag):
    return len(httpd.error_log.grep(tag, since_mark=False))


def wait_log(httpd, tag, count=1, timeout=UPLOAD_WAIT):
    try:
        E.wait_until(lambda: count_log(httpd, tag) >= count, timeout, interval=0.1,
                     what=f"{count} {tag} line(s)")
    except TimeoutError:
        raise AssertionError(f"{tag} logged {count_log(httpd, tag)} time(s), expected "
                             f"{count}:\n" + "\n".join(httpd.error_log.lines(False)[-20:])) \
            from None


class Bench:
    """An httpd with mod_hgs3cache on /repo (and more Locations), hgweb
    alone on /plain, and the bookkeeping of one fault test: every hg
    operation, its getbundle access-log entry and the proxy's records."""

    def __init__(self, hg, module_httpd, store, proxy, tmp_dir, repo, hit_mode=None,
                 hgweb_conf="", more=None, **directives):
        self.hg, self.store, self.proxy, self.tmp = hg, store, proxy, tmp_dir
        self.repo = repo
        self.spool = spool_dir(tmp_dir)
        self.more = dict(more or {})         # name -> (repo, directives)
        common = dict(Timeout=(CONNECT_MS, LOOKUP_MS), SpoolDir=str(self.spool))
        locations = {"repo": dict(common, HitMode=hit_mode, **directives)}
        repos = {"repo": repo, "plain": repo}
        for name, (r, d) in self.more.items():
            locations[name] = dict(common, **d)
            repos[name] = r
            repos[f"plain{name}"] = r
        self.httpd = module_httpd(repos, locations, store=store, endpoint=proxy.endpoint,
                                  server_conf=SERVER_CONF, hgweb_conf=hgweb_conf)
        self.ops = []                 # (kind, name, dest, entry)
        self.seen = {}                # location name -> getbundle entries consumed
        self.clones = []
        self.n = 0
        self._baseline = {}

    # --- requests --------------------------------------------------------------
    def entries(self, name):
        return self.httpd.access_log.find("GET", rf"^/{re.escape(name)}\?cmd=getbundle$")

    def _next_entry(self, name, timeout=15):
        want = self.seen.get(name, 0) + 1
        try:
            found = E.wait_until(lambda: (lambda e: e if len(e) >= want else None)(
                self.entries(name)), timeout, what=f"getbundle #{want} on /{name}")
        except TimeoutError:
            raise AssertionError(f"no getbundle #{want} on /{name} in the access log") from None
        self.seen[name] = want
        return found[want - 1]

    def clone(self, name="repo", expect_ok=True):
        self.n += 1
        dest = self.tmp / f"clone{self.n}"
        r = self.hg.clone(self.httpd.repo_url(name), dest, "-U")
        if expect_ok:
            assert r.ok, r
            self.clones.append((name, dest))
        entry = self._next_entry(name)
        self.ops.append(("clone", name, dest, entry))
        self.last = dest
        return entry if expect_ok else (r, entry, dest)

    def pull(self, dest, name="repo"):
        r = self.hg.pull(dest, self.httpd.repo_url(name))
        assert r.ok, r
        entry = self._next_entry(name)
        self.ops.append(("pull", name, dest, entry))
        return entry

    def direct(self, name, headers):
        """(status, headers, body) of a getbundle sent with hg's headers."""
        return self.httpd.get(f"/{name}?cmd=getbundle", headers=headers, timeout=120)

    def plain(self, name):
        return "plain" if name == "repo" else f"plain{name}"

    def baseline(self, name="repo", samples=3):
        """A full clone's getbundle time on /plain<name>, without the module
        (median of `samples` direct requests with a clone's headers)."""
        if name in self._baseline:
            return self._baseline[name]
        repo = self.more[name][0] if name in self.more else self.repo
        headers = clone_headers(self.hg.heads(repo))
        durations = []
        for _ in range(samples):
            status, hdrs, body = self.direct(self.plain(name), headers)
            assert status == 200, status
            durations.append(self._next_entry(self.plain(name))["duration_us"] / 1e6)
        self._baseline[name] = sorted(durations)[len(durations) // 2]
        return self._baseline[name]

    def expected_body(self, entry, name="repo"):
        """What hgweb alone answers to the request of a logged getbundle."""
        status, hdrs, body = self.direct(self.plain(name), replay_headers(entry))
        self._next_entry(self.plain(name))
        assert status == 200 and hdrs.get("content-type") == "application/mercurial-0.2"
        return body

    def get(self, name="repo"):
        """A getbundle sent directly with the headers of the last clone of
        /<name>; its access-log entry."""
        last = [e for kind, n, _, e in self.ops if kind == "clone" and n == name][-1]
        status, hdrs, body = self.direct(name, replay_headers(last))
        assert status == 200, (status, body[:200])
        entry = self._next_entry(name)
        self.ops.append(("get", name, None, entry))
        return entry

    # --- checks ----------------------------------------------------------------
    def wait_object(self, key, timeout=UPLOAD_WAIT):
        try:
            E.wait_until(lambda: key in self.store.keys(PREFIX), timeout, interval=0.2,
                         what=f"{key} in the bucket")
        except TimeoutError:
            raise AssertionError(f"{key} not stored after {timeout}s; bucket: "
                                 f"{self.store.keys()}") from None

    def assert_bucket(self, allowed):
        """Every object in the bucket is one of `allowed` ({key: bytes}),
        whole; Swift holds no unfinished multipart upload."""
        keys = self.store.keys()
        for k in keys:
            assert k in allowed, f"unexpected object {k} in the bucket (allowed: {list(allowed)})"
            data = self.store.get(k)[0]
            assert len(data) == len(allowed[k]) and data == allowed[k], (
                f"{k} is corrupt or partial: {len(data)} bytes, sha256 "
                f"{hashlib.sha256(data).hexdigest()}; expected {len(allowed[k])} bytes, "
                f"sha256 {hashlib.sha256(allowed[k]).hexdigest()}")
        return keys

    def verify_all(self):
        """Every clone has the server's history and verifies (2 at a time)."""
        expected = {}

        def one(item):
            name, dest = item
            repo = self.more[name][0] if name in self.more else self.repo
            assert self.hg.history(dest) == expected[repo], f"{dest} ({name}): wrong history"
            self.hg.assert_verify_clean(dest)

        for name, _ in self.clones:
            repo = self.more[name][0] if name in self.more else self.repo
            if repo not in expected:
                expected[repo] = self.hg.history(repo)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for f in [pool.submit(one, c) for c in self.clones]:
                f.result()

    def heads(self):
        return self.proxy.find("HEAD", PREFIX)

    def summary(self, what, base):
        """One line: hg runs that succeeded, added latency by note, objects."""
        kinds = {}
        for kind, _, _, _ in self.ops:
            kinds[kind] = kinds.get(kind, 0) + 1
        added = {}
        for _, name, _, e in self.ops:
            ms = max(0, round((e["duration_us"] / 1e6 - self._baseline.get(name, base)) * 1000))
            added[e["note"]] = max(added.get(e["note"], 0), ms)
        print(f"\nFAULT {what} [{self.store.kind}]: ok {kinds}; max added ms by note "
              f"{added}; objects at end {len(self.store.keys())}")


def check_latency(entry, base, bound, what):
    """entry's time <= base + bound (seconds)."""
    took = entry["duration_us"] / 1e6
    assert took <= base + bound, (
        f"{what}: getbundle took {took:.3f}s, {took - base:.3f}s more than without the module "
        f"({base:.3f}s); allowed {bound:.3f}s (note {entry['note']})")
    return took


def sleep_until(t):
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)


# --- lookup path -------------------------------------------------------------------
def _lookup_refuse(proxy):
    proxy.refuse(True)


def _lookup_rules(action, **kw):
    def add(proxy):
        # HEAD and GET: the lookup, and a streamed or redirected hit.
        proxy.add_rule(action, method=("HEAD", "GET"), path=PREFIX, **kw)
    return add


def _lookup_403(proxy):
    # A store that refuses the credentials refuses every request.
    proxy.add_rule("status", path=PREFIX, status=403, body=BADSIG, headers=XML)


LOOKUP_FAULTS = {
    # name: (install, a lookup waits for the timeout, the proxy sees the HEAD)
    "refuse": (_lookup_refuse, False, False),
    "hang": (_lookup_rules("hang", seconds=8), True, True),
    "500": (_lookup_rules("status", status=500, body=INTERNAL, headers=XML), False, True),
    "503": (_lookup_rules("status", status=503, body=SLOWDOWN, headers=XML), False, True),
    "403": (_lookup_403, False, True),
    # A HEAD answer has no body: cutting it leaves the connection closed
    # before any answer ("close"). Cutting a streamed GET: see below.
    "cut_response": (_lookup_rules("close"), False, True),
}
# "delay": a store slower than LOOKUP_MS is the "hang" case (the lookup times
# out either way); a delay within it is test_lookup_delay_within_timeout.


@pytest.mark.parametrize("fault", list(LOOKUP_FAULTS))
def test_lookup_fault(hg, module_httpd, small_repo, tmp_dir, store, proxy, fault):
    """A store fault on the lookup path: clones and pulls are answered by
    hgweb, bounded by HgS3CacheTimeout; after BREAKER_FAILS failures the
    breaker opens (no lookup, no added latency); after BREAKER_SECS one probe
    goes through, fails, and the breaker re-opens; once the store is healthy
    the next probe closes it, the miss is stored and the next clone is a hit.
    Nothing is stored while the store fails.

    Checks that must happen within BREAKER_SECS of an event are direct
    getbundle requests with the clone's headers (an hg run takes ~0.5 s)."""
    install, timeout_class, proxied = LOOKUP_FAULTS[fault]
    b = Bench(hg, module_httpd, store, proxy, tmp_dir, small_repo)
    b.httpd.allow_log(LOOKUP_TAGS)
    base = b.baseline()
    t_start = time.monotonic()
    install(proxy)

    # Refused credentials are told apart from other failures (the module asks
    # the store why it answered 403): both open the breaker.
    failed_note = "bypass:store-auth" if fault == "403" else "bypass:store-error"

    def failed_lookup(entry, what):
        assert entry["note"] == failed_note, f"{what}: note {entry['note']}"
        took = check_latency(entry, base, LOOKUP_MS / 1000 + SLACK_BOUND, what)
        if timeout_class:
            assert took >= 0.9 * LOOKUP_MS / 1000, (
                f"{what}: {took:.3f}s, the lookup did not wait for the store")
        else:
            check_latency(entry, base, SLACK_NONE, what)

    def breaker_open(entry, what):
        assert entry["note"] == "bypass:breaker-open", f"{what}: note {entry['note']}"
        check_latency(entry, base, SLACK_NONE, what)

    # HEADs that reach the store per lookup: libcurl sends a request again
    # (once) when a kept-alive connection closes under it without an answer.
    per_lookup = (1, 2) if fault == "cut_response" else (1, 1)

    def heads_for(lookups):
        n = len(b.heads())
        assert (per_lookup[0] * lookups if proxied else 0) <= n <= \
            (per_lookup[1] * lookups if proxied else 0), \
            f"{n} HEADs reached the store for {lookups} failed lookups"
        return n

    # FAILS failed lookups (a clone and a pull), then the breaker is open.
    failed_lookup(b.clone(), "1st clone")
    failed_lookup(b.pull(b.last), "pull (2nd lookup)")
    t_open = time.monotonic()
    heads_at_open = heads_for(BREAKER_FAILS)
    breaker_open(b.get(), "request with the breaker open")
    assert len(b.heads()) == heads_at_open, "a lookup reached the store with the breaker open"
    assert all(r["rule"] for r in b.heads()), b.heads()
    # After SECONDS: one probe, which fails: open again.
    sleep_until(t_open + BREAKER_SECS + 0.2)
    failed_lookup(b.clone(), "probe clone")
    t_reopen = time.monotonic()
    heads = heads_for(BREAKER_FAILS + 1)
    assert heads > heads_at_open or not proxied, "the probe did not reach the store"
    breaker_open(b.get(), "request after the failed probe")
    assert len(b.heads()) == heads
    assert b.assert_bucket({}) == [], "an object was stored while the store failed"

    # The store recovers: the breaker stays open until the cooldown is over ...
    proxy.clear_rules()
    proxy.refuse(False)
    heads = len(b.heads())
    breaker_open(b.get(), "request right after recovery")
    assert len(b.heads()) == heads
    # ... then the probe succeeds (a miss), the breaker closes and the
    # response is stored; the next clone is a hit.
    sleep_until(t_reopen + BREAKER_SECS + 0.2)
    miss = b.clone()
    assert miss["note"] == "miss", miss
    check_latency(miss, base, SLACK_NONE, "miss after recovery")
    key = key_of(b.heads()[-1])
    b.wait_object(key)
    hit = b.clone()
    assert hit["note"] == "hit-redirect", hit

    b.verify_all()
    b.assert_bucket({key: b.expected_body(miss)})
    assert store.keys() == [key]
    wait_spool_empty(b.spool)
    # Logged with their tags: the breaker's opening once, the failures at a
    # bounded rate (at most one line per 10 s).
    elapsed = time.monotonic() - t_start
    b.summary(f"lookup {fault}", base)
    assert count_log(b.httpd, "HGS300401") == 1, b.httpd.error_log.lines(False)
    assert 1 <= count_log(b.httpd, "HGS300402") <= 1 + int(elapsed // 10), \
        b.httpd.error_log.grep("HGS3004", since_mark=False)


def test_lookup_delay_within_timeout(hg, module_httpd, small_repo, tmp_dir, store, proxy):
    """A store that answers every request late, but within LOOKUP_MS: no
    failure (more lookups than BREAKER_FAILS, the breaker stays closed), the
    miss is stored and the hit served; the added latency is the delay,
    bounded by HgS3CacheTimeout."""
    delay = 0.4
    b = Bench(hg, module_httpd, store, proxy, tmp_dir, small_repo)
    base = b.baseline()
    proxy.add_rule("delay", path=PREFIX, seconds=delay)
    first = b.clone()
    assert first["note"] == "miss", first
    c0 = b.last
    key = key_of(b.heads()[0])
    b.wait_object(key)
    assert b.pull(c0)["note"] == "miss-store-skipped:too-small"
    assert b.clone()["note"] == "hit-redirect"
    for _, _, _, e in b.ops:
        took = check_latency(e, base, LOOKUP_MS / 1000 + SLACK_BOUND, "delayed lookup")
        assert took >= delay * 0.9, f"{took:.3f}s: the lookup was not delayed"
    # one lookup each; a miss that takes the upload lock asks once more
    misses = sum(1 for _, _, _, e in b.ops if e["note"].startswith("miss"))
    assert len(b.ops) <= len(b.heads()) <= len(b.ops) + misses
    assert all(r["rule"] == "delay" for r in proxy.requests), proxy.requests
    b.verify_all()
    b.assert_bucket({key: b.expected_body(first)})
    b.summary("lookup delay 0.4s", base)


# --- the GET of a streamed hit ---------------------------------------------------
STREAM_FAULTS = {
    # the store accepts the GET and never answers
    "hang": dict(action="hang", seconds=6),
    # the answer's headers, then the connection closes: no byte of the body
    "cut_before_body": dict(action="cut_response", fraction=0.0),
    # half of the body (less than the first 64 KiB batch), then the
    # connection closes: nothing reached the client yet
    "cut_response": dict(action="cut_response", fraction=0.5),
    # 90% of the body (the first batch went out), then the connection closes
    "cut_late": dict(action="cut_response", fraction=0.9),
}


@pytest.mark.parametrize("fault", list(STREAM_FAULTS))
def test_streamed_hit_fault(hg, module_httpd, small_repo, tmp_dir, store, proxy, fault):
    """HitMode stream, the object is stored, and the store fails the GET.

    Before any byte reached the client (hang, cut_before_body, and
    cut_response: half the body, less than the first 64 KiB batch), SPEC:
    the request falls back to hgweb as a miss, so the clone succeeds, with
    the added latency bounded by HgS3CacheTimeout; the failures count for
    the breaker. After the first batch (cut_late), the client has received
    a 200 and bytes: it must see a broken response, never a short one that
    looks complete, so that clone fails loudly (and leaves no repository);
    the next one succeeds. The stored object is never touched."""
    spec = dict(STREAM_FAULTS[fault])
    action = spec.pop("action")
    b = Bench(hg, module_httpd, store, proxy, tmp_dir, small_repo, hit_mode="stream")
    b.httpd.allow_log(LOOKUP_TAGS if fault != "cut_late" else r"HGS300404|HGS300401")
    base = b.baseline()
    first = b.clone()
    assert first["note"] == "miss"
    key = key_of(b.heads()[0])
    b.wait_object(key)
    assert b.clone()["note"] == "hit-stream"
    expected = b.expected_body(first)
    assert store.get(key)[0] == expected

    if fault == "cut_late":
        proxy.add_rule(action, method="GET", path=PREFIX, times=1, **spec)
        r, entry, dest = b.clone(expect_ok=False)
        assert not r.ok, f"a clone of a half-streamed bundle succeeded: {r}"
        assert not dest.exists(), "the failed clone left a repository behind"
        assert entry["note"] == "hit-stream", entry
        assert entry["bytes"] < len(expected), entry
        (get,) = [g for g in proxy.find("GET", PREFIX) if g["rule"]]
        assert 0 < get["response_bytes"] < len(expected), get
        assert b.clone()["note"] == "hit-stream"      # the rule is used up
    else:
        proxy.add_rule(action, method="GET", path=PREFIX, **spec)
        for i in range(BREAKER_FAILS):
            e = b.clone()
            assert e["note"] in ("miss", "miss-store-skipped:in-progress", "collapsed"), (i, e)
            # the stream's first byte is bounded by LOOKUP_MS, checked about
            # once a second (libcurl's progress callback)
            check_latency(e, base, LOOKUP_MS / 1000 + 1.0 + SLACK_BOUND, f"fallback clone {i}")
        e = b.get()
        assert e["note"] == "bypass:breaker-open", e
        check_latency(e, base, SLACK_NONE, "request with the breaker open")
        assert len(proxy.find("GET", PREFIX)) == 1 + BREAKER_FAILS
        proxy.clear_rules()
    b.verify_all()
    # The fallback misses may be stored again: wait for their uploads.
    wait_spool_empty(b.spool, timeout=UPLOAD_WAIT)
    b.assert_bucket({key: expected})
    b.summary(f"stream GET {fault}", base)


# --- upload path -------------------------------------------------------------------
UPLOAD_FAULTS = ["refuse", "hang", "500", "503", "403", "cut_response", "cut_request", "delay"]


@pytest.fixture(scope="module")
def medium_repo(env, hg):
    """A repository whose full getbundle is above 5 MiB (one multipart part
    of HgS3CacheMultipartThreshold 5M plus a second one). Read only."""
    path = env.mkdir("template") / "medium"
    hg.run("init", path, check=True)
    hg.commit(path, {"blob.bin": random_bytes(77, 6 * MIB), "m.txt": "medium\n"}, "medium",
              hgdate(0))
    hg.run("phase", "-R", path, "--public", "-r", "tip", check=True)
    E.make_world_readable(path)
    return path


def _upload_rule(proxy, fault):
    """The fault on single PutObjects: (rule, attempts per upload)."""
    if fault == "hang":
        # The module's own upload timeout is 60 s; this store gives up
        # (closes the connection) after 4 s so the test does not wait 60 s.
        return proxy.add_rule("hang", method="PUT", path=PREFIX, seconds=4), 1
    if fault == "500":
        return proxy.add_rule("status", method="PUT", path=PREFIX, status=500, body=INTERNAL,
                              headers=XML), 3
    if fault == "503":
        return proxy.add_rule("status", method="PUT", path=PREFIX, status=503, body=SLOWDOWN,
                              headers=XML), 3
    if fault == "403":
        return proxy.add_rule("status", method="PUT", path=PREFIX, status=403, body=DENIED,
                              headers=XML), 1
    raise AssertionError(fault)


@pytest.mark.parametrize("fault", UPLOAD_FAULTS)
def test_upload_fault(hg, module_httpd, small_repo, medium_repo, tmp_dir, store, proxy, fault):
    """A store fault on the upload path: the client's response never waits
    (no added latency); a failed upload leaves no object (a multipart one
    is aborted) and no spool file or lock; lookups go on (the breaker stays
    closed); the failure is logged at most once per 10 s; once the store is
    healthy the next miss is stored whole."""
    flag = tmp_dir / "slow.flag"
    hook = tmp_dir / "slowhook.py"
    hook.write_text(SLOW_HOOK.format(flag=str(flag)))
    E.make_world_readable(tmp_dir)
    more = {"mp": (medium_repo, {"MultipartThreshold": "5M"})}
    b = Bench(hg, module_httpd, store, proxy, tmp_dir, small_repo, more=more,
              hgweb_conf=f"[hooks]\npreoutgoing.slow = python:{hook}:slow\n")
    if fault != "delay":
        b.httpd.allow_log(UPLOAD_TAG)
    base = b.baseline()
    failed_uploads = 0
    allowed = {}
    t_start = time.monotonic()

    def miss(name="repo", note="miss"):
        e = b.clone(name)
        assert e["note"] == note, e
        check_latency(e, b.baseline(name, samples=1 if name == "mp" else 3), SLACK_NONE,
                      f"miss on /{name}")
        return e

    if fault == "refuse":
        # The lookup reaches the store; hgweb is held 1.5 s in preoutgoing,
        # and the store stops accepting connections before the upload.
        flag.write_text("")
        held = []
        t = threading.Thread(target=lambda: held.append(b.clone()))
        t.start()
        proxy.wait_for("HEAD", PREFIX, timeout=20)
        proxy.refuse(True)
        t.join(60)
        assert not t.is_alive() and held, "the held clone failed"
        assert held[0]["note"] == "miss", held
        wait_log(b.httpd, UPLOAD_TAG)
        flag.unlink()
        proxy.refuse(False)
        failed_uploads = 1
        assert proxy.find(("PUT", "POST"), PREFIX) == []

    elif fault == "delay":
        # The store answers the upload 2.5 s late: it is stored anyway, and
        # meanwhile the same miss is not uploaded twice.
        proxy.add_rule("delay", method="PUT", path=PREFIX, seconds=2.5)
        first = miss()
        proxy.wait_for("PUT", PREFIX, done=None, timeout=20)
        miss(note="collapsed")  # served from the spool (SPEC "Collapsed misses")
        (put,) = proxy.wait_for("PUT", PREFIX, timeout=UPLOAD_WAIT)
        assert put["status"] == 200 and put["duration"] >= 2.4, put
        b.wait_object(key_of(put))
        allowed[key_of(put)] = b.expected_body(first)
        proxy.clear_rules()

    elif fault == "cut_response":
        # A PutObject's answer has no body to cut: the multipart answers do.
        # 1st miss: CreateMultipartUpload's answer is cut (no upload id):
        # nothing is stored. 2nd: CompleteMultipartUpload's answer is cut
        # after the store completed the object: it must be whole.
        proxy.add_rule("cut_response", method="POST", path=r"\?uploads", fraction=0.5, times=1)
        mp_first = miss("mp")
        (create,) = proxy.wait_for("POST", r"\?uploads", timeout=UPLOAD_WAIT)
        assert create["rule"] == "cut_response" and create["status"] == 200, create
        wait_log(b.httpd, UPLOAD_TAG)
        wait_spool_empty(b.spool)
        assert b.assert_bucket({}) == []
        dangling = pending_multipart(store)
        print(f"\nmultipart uploads left by a cut CreateMultipartUpload answer: {dangling}")
        proxy.add_rule("cut_response", method="POST", path=r"\?uploadId=", fraction=0.5,
                       times=1)
        miss("mp")
        (complete,) = proxy.wait_for("POST", r"\?uploadId=", timeout=UPLOAD_WAIT)
        assert complete["rule"] == "cut_response", complete
        wait_spool_empty(b.spool)
        mp_key = key_of(complete)
        allowed[mp_key] = b.expected_body(mp_first, "mp")
        keys = b.assert_bucket(allowed)
        assert keys in ([], [mp_key]), keys
        e = b.clone("mp")
        assert e["note"] == ("hit-redirect" if keys else "miss"), e
        failed_uploads = 2
        proxy.clear_rules()

    elif fault == "cut_request":
        # A PutObject whose body is cut in half (the connection closes).
        proxy.add_rule("cut_request", method="PUT", path=PREFIX, fraction=0.5, times=1)
        first = miss()
        (put,) = proxy.wait_for("PUT", PREFIX, timeout=UPLOAD_WAIT)
        wait_log(b.httpd, UPLOAD_TAG)
        wait_spool_empty(b.spool)
        expected = b.expected_body(first)
        half = expected[:len(expected) // 2]
        assert put["rule"] == "cut_request" and put["request_bytes"] == len(half), put
        # The upload carried the payload's real SHA-256 ...
        assert rec_header(put, "x-amz-content-sha256") == hashlib.sha256(expected).hexdigest()
        if store.kind == "swift":
            assert b.assert_bucket({}) == [], "the cut upload left an object"
            # ... so even a cut body that reaches the store as a whole
            # request (with the Content-Length of the half) is refused.
            status, code = _replay_put(store, put, half)
            assert status == 400 and code in ("BadDigest", "XAmzContentSHA256Mismatch"), \
                (status, code)
            print(f"\nSwift refused the cut body sent whole: {status} {code}")
            assert b.assert_bucket({}) == []
        else:
            # s3rver checks neither x-amz-content-sha256 nor the length: it
            # keeps what reached it of the cut request. Only a store that
            # checks the payload hash (AWS, Swift, MinIO...) refuses it.
            keys = store.keys()
            print(f"\ns3rver kept the cut PutObject as an object: {keys}")
            assert keys in ([], [key_of(put)]), keys
            if keys:
                kept = store.get(keys[0])[0]
                assert len(kept) <= len(half) and expected.startswith(kept), \
                    f"not a truncated copy of the cut body ({len(kept)} bytes)"
                print(f"s3rver kept {len(kept)} of {len(expected)} bytes")
                store.delete(keys[0])
        # A multipart part cut in half: the upload is aborted, never completed.
        # (libcurl sends a request again, whole, when a reused connection
        # dies under it: the rule cuts that second try as well.)
        proxy.add_rule("cut_request", method="PUT", path=r"partNumber=1(&|$)",
                       fraction=0.5, times=2)
        miss("mp")
        t_cut = time.monotonic()
        (delete,) = proxy.wait_for("DELETE", r"\?uploadId=", timeout=UPLOAD_END_WAIT)
        print(f"\nmultipart upload aborted {time.monotonic() - t_cut:.1f}s after the miss")
        assert not proxy.find("POST", r"\?uploadId="), "a cut upload was completed"
        if store.kind == "swift":
            assert delete["status"] == 204, delete
        failed_uploads = 2
        proxy.clear_rules()

    else:
        rule, attempts = _upload_rule(proxy, fault)
        if fault == "hang":
            miss()
            proxy.wait_for("PUT", PREFIX, done=None, timeout=20)
            # While the upload hangs, its lock stands: no second upload
            # (the second is served from the first's spool).
            miss(note="collapsed")
            proxy.wait_for("PUT", PREFIX, timeout=UPLOAD_WAIT)
            wait_log(b.httpd, UPLOAD_TAG)
            failed_uploads = 1
        else:
            # Two misses, two failed uploads (each retried when the store
            # says "busy"), one log line.
            for n in (1, 2):
                miss()
                proxy.wait_for("PUT", PREFIX, count=n * attempts, timeout=UPLOAD_WAIT)
                wait_spool_empty(b.spool)
            time.sleep(0.3)
            recs = proxy.find(("PUT", "POST"), PREFIX)
            assert len(recs) == 2 * attempts, [(r["method"], r["status"], r["rule"]) for r in recs]
            assert all(r["rule"] == rule.action for r in recs), recs
            failed_uploads = 2
        proxy.clear_rules()

    # Nothing partial is left; lookups never stopped.
    wait_spool_empty(b.spool, timeout=UPLOAD_WAIT)
    assert b.assert_bucket(allowed) in ([], list(allowed)), "a failed upload left an object"
    if store.kind == "swift" and fault != "cut_response":
        assert pending_multipart(store) == []
    if failed_uploads:
        # Logged, at most once per 10 s.
        elapsed = time.monotonic() - t_start
        assert 1 <= count_log(b.httpd, UPLOAD_TAG) <= 1 + int(elapsed // 10), \
            b.httpd.error_log.grep(UPLOAD_TAG, since_mark=False)

    # The store is healthy: the next miss is stored whole, then hit.
    if fault != "delay":
        first = miss()
        key = key_of(b.heads()[-1])
        b.wait_object(key)
    else:
        key = key_of(b.heads()[0])
    assert b.clone()["note"] == "hit-redirect"
    b.verify_all()
    allowed[key] = b.expected_body(first)
    b.assert_bucket(allowed)
    assert key in store.keys()
    wait_spool_empty(b.spool)
    notes = [e["note"] for _, _, _, e in b.ops]
    assert not any(n.startswith("bypass:") for n in notes), notes
    # Every lookup reached the store; a miss that takes the upload lock asks
    # once more (HgS3CachePresence none), in case the lock's previous holder
    # stored the object meanwhile.
    misses = sum(1 for n in notes if n.startswith("miss"))
    assert len(b.ops) <= len(b.heads()) <= len(b.ops) + misses, \
        "a lookup did not reach the store"
    b.summary(f"upload {fault}", base)


def _replay_put(store, rec, body):
    """Send a recorded PutObject again, straight to the store, with `body`
    as its whole body: (status, S3 error code)."""
    conn = http.client.HTTPConnection(store.host, store.port, timeout=30)
    try:
        conn.putrequest("PUT", rec["path"], skip_host=True, skip_accept_encoding=True)
        for k, v in rec["headers"]:
            if k.lower() in ("content-length", "expect", "transfer-encoding"):
                continue
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body)
        r = conn.getresponse()
        data = r.read()
    finally:
        conn.close()
    m = re.search(rb"<Code>([^<]+)</Code>", data)
    return r.status, m.group(1).decode() if m else None


# --- the local-directory store (HgS3CacheStore file:DIR) ---------------------------
# Its faults are the directory's: not writable, an object removed or damaged
# under the module. Each request still gets hgweb's answer, never a wrong or
# short one.
LOCAL_NOT_SERVED = r"\[hgs3cache:warn\].* HGS302001: "
LOOKUP_FAILED = r"\[hgs3cache:warn\].* HGS300402: "


def _local_httpd(module_httpd, repo, file_store, presence="none"):
    return module_httpd(repo, store=file_store, Header=True, count_hgweb=True,
                        server_conf=f"HgS3CachePresence {presence}\n")


def _notes(httpd, count):
    return [e["note"] for e in wait_getbundles(httpd, "repo", count)]


def _stored_then_hit(hg, httpd, file_store, repo, tmp_dir):
    """A miss stored, then a hit-local: the stored key."""
    clone_verified(hg, httpd.repo_url(), tmp_dir / "c1", repo)
    (key,) = wait_objects(file_store)
    clone_verified(hg, httpd.repo_url(), tmp_dir / "c2", repo)
    assert _notes(httpd, 2) == ["miss", "hit-local"]
    return key


def test_local_store_not_writable(hg, module_httpd, file_store, small_repo, tmp_dir):
    """A directory the children cannot write: the miss is answered by hgweb,
    the upload fails (logged) and leaves nothing; once writable again the
    next miss is stored and then served."""
    httpd = _local_httpd(module_httpd, small_repo, file_store)
    httpd.allow_log(rf"\[hgs3cache:warn\].* {UPLOAD_TAG}: ")
    os.chmod(file_store.dir, 0o555)
    try:
        clone_verified(hg, httpd.repo_url(), tmp_dir / "c1", small_repo)
        assert _notes(httpd, 1) == ["miss"]
        E.wait_until(lambda: httpd.error_log.grep(UPLOAD_TAG), UPLOAD_WAIT,
                     what="the failed upload logged")
        assert list(file_store.dir.iterdir()) == []
    finally:
        os.chmod(file_store.dir, 0o750)
    clone_verified(hg, httpd.repo_url(), tmp_dir / "c2", small_repo)
    wait_objects(file_store)
    clone_verified(hg, httpd.repo_url(), tmp_dir / "c3", small_repo)
    assert _notes(httpd, 3) == ["miss", "miss", "hit-local"]
    assert len(httpd.hgweb_log.commands("getbundle")) == 2


def test_local_object_removed_before_serving(hg, module_httpd, file_store, small_repo, tmp_dir):
    """The presence cache says stored, the file is gone (a cleanup ran): the
    request falls back to hgweb as a miss, which stores the object again."""
    httpd = _local_httpd(module_httpd, small_repo, file_store, presence="shmcb 60")
    key = _stored_then_hit(hg, httpd, file_store, small_repo, tmp_dir)
    stored = file_store.get(key)[0]
    file_store.delete(key)
    clone_verified(hg, httpd.repo_url(), tmp_dir / "c3", small_repo)
    assert _notes(httpd, 3)[2] == "miss"
    assert len(httpd.hgweb_log.commands("getbundle")) == 2
    E.wait_until(lambda: file_store.keys(PREFIX) == [key], UPLOAD_WAIT, what="stored again")
    assert file_store.get(key)[0] == stored


@pytest.mark.parametrize("presence", ["none", "shmcb 60"])
@pytest.mark.parametrize("damage", ["no-sidecar", "truncated", "wrong-size"])
def test_local_damaged_object_not_served(hg, module_httpd, file_store, small_repo, tmp_dir,
                                         damage, presence):
    """A torn pair (the object without its sidecar), an object replaced by a
    truncated one, or a sidecar recording another size is never served: hgweb
    answers (bypass:store-error when the lookup finds it, a miss when the
    presence cache sent the request to the file)."""
    httpd = _local_httpd(module_httpd, small_repo, file_store, presence=presence)
    httpd.allow_log(LOCAL_NOT_SERVED, LOOKUP_FAILED)
    key = _stored_then_hit(hg, httpd, file_store, small_repo, tmp_dir)
    path = file_store.path(key)
    data = path.read_bytes()
    if damage == "no-sidecar":
        os.unlink(str(path) + ".meta")
    elif damage == "truncated":
        tmp = path.with_name(path.name + ".new")
        tmp.write_bytes(data[:len(data) // 2])
        os.replace(tmp, path)
    else:
        meta = file_store.meta(key)
        with open(str(path) + ".meta", "w") as f:
            f.write(f"hgs3cache-meta 1\nsize {len(data) + 1}\ntype {meta['type']}\n")
    clone_verified(hg, httpd.repo_url(), tmp_dir / "c3", small_repo)
    note = _notes(httpd, 3)[2]
    assert note == ("bypass:store-error" if presence == "none" else "miss"), note
    assert len(httpd.hgweb_log.commands("getbundle")) == 2
    assert httpd.error_log.grep(LOCAL_NOT_SERVED if presence != "none" else LOOKUP_FAILED)


def test_local_store_unreadable_breaker(hg, module_httpd, file_store, small_repo, tmp_dir):
    """A directory the children cannot read (EACCES) is a failing store: each
    request is answered by hgweb (bypass:store-error), the breaker opens after
    FAILURES and lets a probe through after SECONDS, which closes it once
    the directory is readable again."""
    httpd = module_httpd(small_repo, store=file_store, Header=True, count_hgweb=True,
                         server_conf=SERVER_CONF)
    httpd.allow_log(LOOKUP_FAILED, r"\[hgs3cache:warn\].* HGS300401: ")
    _stored_then_hit(hg, httpd, file_store, small_repo, tmp_dir)
    os.chmod(file_store.dir, 0o000)
    try:
        # (a child of its own counts each failure: a second child, which a
        # loaded machine may start, can take more requests to trip)
        for i in range(2 * BREAKER_FAILS + 2):
            clone_verified(hg, httpd.repo_url(), tmp_dir / f"down{i}", small_repo)
            down = _notes(httpd, 3 + i)[2:]
            if down[-1] == "bypass:breaker-open":
                break
        assert down[:BREAKER_FAILS] == ["bypass:store-error"] * BREAKER_FAILS, down
        assert down[-1] == "bypass:breaker-open", down
    finally:
        os.chmod(file_store.dir, 0o750)
    time.sleep(BREAKER_SECS + 0.2)
    clone_verified(hg, httpd.repo_url(), tmp_dir / "back", small_repo)
    assert _notes(httpd, 3 + len(down))[-1] == "hit-local"
    assert int(httpd.server_status()["HgS3CacheBreakerTrips"]) >= 1
