"""The hit path: real httpd + hgweb (mod_wsgi daemon) + the real hg client +
mod_hgs3cache, against both strict S3 stores (the `store` fixture).

The module talks to the store through the recording FaultProxy (`proxy`),
so each HEAD/GET/PUT it sends can be counted, inspected and broken. hgweb
itself is instrumented: its WSGI entry point is wrapped so that every request
that reaches hgweb is written to a log file, which proves whether hgweb ran.

What is checked:
- a miss is stored; the next identical clone is a hit answered by a presigned
  302 that plain curl can fetch, and hgweb does not run for it;
- the presence cache spares the HEAD of later hits (HgS3CachePresence), and
  `none` HEADs every time;
- a request with Authorization is streamed, never redirected, and the
  user's password never reaches the store; unauthenticated requests get 401;
- the authenticated user is in the key unless HgS3CacheShareAcrossUsers on;
- requests whose X-HgArg headers pass 6 KiB are streamed, and succeed;
- HgS3CacheMaxAge turns an old object into a miss that is stored again;
- a store that refuses connections or never answers costs at most
  HgS3CacheTimeout, the breaker then takes the lookups away, and hits come
  back after its cool-down;
- two front ends share one bucket;
- HgS3CacheHitMode stream: exact bytes, fallback to hgweb before the first
  byte, a loud failure after it;
- httppostargs POSTs get a 303;
- redirects carry Cache-Control: no-store and point at
  HgS3CachePublicEndpoint.
"""
import functools
import re
import subprocess
import time
import urllib.parse

import pytest

from pyhgs3 import env as E
from pyhgs3.auth import auth_location, user_url, write_htpasswd
from pyhgs3.checks import clone_verified as clone
from pyhgs3.checks import replay_headers, wait_getbundles
from pyhgs3.checks import wait_objects as _wait_objects

from conftest import STORES_AND_FILE, skip_for_file, store_fixture, store_proxy  # noqa: E402

# Also on the local-directory store; its S3-specific tests skip there.
store = store_fixture(STORES_AND_FILE)

PREFIX = "hgcache/"
OBJECT_RE = re.compile(r"^hgcache/[0-9a-f]{64}$")
MERCURIAL_02 = "application/mercurial-0.2"
GETBUNDLE = r"^/repo\?cmd=getbundle$"
UPLOAD_WAIT = 20          # seconds an upload may take to appear in the bucket
SETTLE = 1.5              # seconds to wait before concluding nothing more happens
FORWARD_LIMIT = 6 * 1024  # auto mode streams above this much forwarded header data
# Every object stored under the default prefix is named by a 64-hex key.
wait_objects = functools.partial(_wait_objects, name_re=OBJECT_RE)

# --- helpers -------------------------------------------------------------------
# An httpd with mod_hgs3cache on /repo (HgS3CacheHeader on) and a counted
# hgweb: module_httpd(repo, ..., **ON); httpd.hgweb_log lists what reached hgweb.
ON = dict(Header=True, count_hgweb=True)


def getbundles(httpd, count, method="GET", timeout=10):
    """The access-log entries of getbundle on /repo, once there are `count`."""
    return wait_getbundles(httpd, "repo", count, timeout, method)


def notes(entries):
    return [e["note"] for e in entries]


def key_path(store, key):
    """A regex for the path-style request path of `key` (with or without query)."""
    return "^/" + re.escape(f"{store.bucket}/{key}") + r"(\?|$)"


def wait_puts(proxy, store, key, count):
    """PUTs of `key` that completed, once there are `count`; all must be 200."""
    try:
        puts = proxy.wait_for("PUT", key_path(store, key), count=count, timeout=UPLOAD_WAIT)
    except TimeoutError:
        raise AssertionError(
            f"{proxy.count('PUT', key_path(store, key))} PUT of {key}, expected {count}") from None
    assert [r["status"] for r in puts] == [200] * len(puts), puts
    return puts


def curl(url, out):
    """Plain curl, no extra headers: (HTTP status, Content-Type, body)."""
    p = subprocess.run(["curl", "-sS", "-o", str(out), "-w", "%{http_code} %{content_type}",
                        url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    code, _, ctype = p.stdout.decode().partition(" ")
    return int(code), ctype, out.read_bytes()


def headers_of(rec):
    return [(k.lower(), v) for k, v in rec["headers"]]


# --- miss, then hit ------------------------------------------------------------------
def test_miss_then_hit_redirect(hg, module_httpd, store, proxy, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, endpoint=proxy.endpoint, **ON)
    url = httpd.repo_url()

    clone(hg, url, tmp_dir / "c1", small_repo)
    (first,) = getbundles(httpd, 1)
    assert first["status"] == 200 and first["note"] == "miss", first
    assert first["x_hgs3cache"] == "miss"
    (key,) = wait_objects(store)
    wait_puts(proxy, store, key, 1)
    stored, ctype, _ = store.get(key)
    assert ctype == MERCURIAL_02
    assert len(stored) == first["bytes"], (len(stored), first["bytes"])

    clone(hg, url, tmp_dir / "c2", small_repo)
    hg.assert_same_history(tmp_dir / "c1", tmp_dir / "c2")
    second = getbundles(httpd, 2)[1]
    assert second["status"] == 302, second
    assert second["note"] == "hit-redirect" and second["x_hgs3cache"] == "hit-redirect"
    loc = urllib.parse.urlsplit(second["location"])
    assert f"{loc.scheme}://{loc.netloc}" == proxy.endpoint, second["location"]
    assert loc.path == f"/{store.bucket}/{key}"
    assert "X-Amz-Signature=" in loc.query

    # hgweb ran for clone 1's getbundle only, though it saw both clones.
    assert len(httpd.hgweb_log.commands("getbundle")) == 1, httpd.hgweb_log.entries()
    # capabilities: hgweb once, then kept inline
    assert len(httpd.hgweb_log.commands("capabilities")) == 1, httpd.hgweb_log.entries()
    assert len(httpd.access_log.find("GET", GETBUNDLE, status=200)) == 1

    # The presigned URL works on its own, without any header of hg's.
    status, ctype, body = curl(second["location"], tmp_dir / "fetched")
    assert status == 200 and ctype == MERCURIAL_02, (status, ctype)
    assert body == stored


# --- presence cache -----------------------------------------------------------------
@pytest.mark.parametrize("presence", ["shmcb 60", "none"])
def test_presence_cache(hg, module_httpd, store, proxy, small_repo, tmp_dir, presence):
    httpd = module_httpd(small_repo, endpoint=proxy.endpoint,
                         server_conf=f"HgS3CachePresence {presence}\n", **ON)
    url = httpd.repo_url()
    clone(hg, url, tmp_dir / "c0", small_repo)
    (key,) = wait_objects(store)
    wait_puts(proxy, store, key, 1)
    heads = proxy.find("HEAD", key_path(store, key))
    # the miss's lookup; without a presence cache the miss asks again once it
    # holds the upload lock, in case another request stored the object
    n_miss = 1 if presence != "none" else 2
    assert len(heads) == n_miss and all(h["status"] == 404 for h in heads), heads

    for i in (1, 2, 3):
        clone(hg, url, tmp_dir / f"c{i}", small_repo)
    assert notes(getbundles(httpd, 4)) == ["miss"] + ["hit-redirect"] * 3
    heads = proxy.find("HEAD", key_path(store, key))
    if presence == "none":
        assert len(heads) == n_miss + 3, heads
        assert [h["status"] for h in heads[n_miss:]] == [200] * 3, heads
    else:
        assert len(heads) == 1, heads
    assert len(httpd.hgweb_log.commands("getbundle")) == 1


# --- authentication ------------------------------------------------------------------
USERS = {"alice": "alice-pw", "bob": "bob-pw"}


def auth_conf(tmp_dir):
    return auth_location("/repo", write_htpasswd(tmp_dir / "htpasswd", USERS))


def test_auth_hit_is_streamed(hg, module_httpd, store, proxy, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, endpoint=proxy.endpoint,
                         extra_conf=auth_conf(tmp_dir), **ON)
    url = user_url(httpd, USERS, "alice")
    clone(hg, url, tmp_dir / "c1", small_repo)
    (key,) = wait_objects(store)
    wait_puts(proxy, store, key, 1)
    stored = store.get(key)[0]
    clone(hg, url, tmp_dir / "c2", small_repo)

    first, second = getbundles(httpd, 2)
    assert first["note"] == "miss" and first["user"] == "alice", first
    assert second["note"] == "hit-stream" and second["status"] == 200, second
    assert second["location"] is None and second["user"] == "alice"
    assert second["content_type"] == MERCURIAL_02
    assert second["bytes"] == len(stored)
    assert len(httpd.hgweb_log.commands("getbundle")) == 1
    assert httpd.access_log.find(None, GETBUNDLE, status=302) == []

    # The store saw the module's signed requests only: the HEAD, the PUT, and
    # the GET it streamed; never the client's Basic credentials.
    gets = proxy.find("GET", key_path(store, key))
    assert len(gets) == 1 and gets[0]["status"] == 200, gets
    for rec in proxy.requests:
        auth = dict(headers_of(rec)).get("authorization")
        assert auth is not None and auth.startswith("AWS4-HMAC-SHA256 "), (rec["method"],
                                                                            rec["path"], auth)
        assert "X-Amz-Signature" not in rec["path"], rec["path"]
        for k, v in headers_of(rec):
            assert "Basic " not in v and USERS["alice"] not in v, (k, v)

    # Without (valid) credentials, even the request that is a hit for alice is
    # refused before the module runs: 401, never a redirect.
    headers = replay_headers(second)
    seen = len(proxy.requests)
    status, hdrs, _ = httpd.get("/repo?cmd=getbundle", headers=headers)
    assert status == 401 and "location" not in hdrs, (status, hdrs)
    status, hdrs, _ = httpd.get("/repo?cmd=getbundle", headers={
        **headers, "Authorization": "Basic YWxpY2U6d3Jvbmc="})          # alice:wrong
    assert status == 401 and "location" not in hdrs, (status, hdrs)
    # httpd logs a request after its response went out: wait for both
    refused = E.wait_until(lambda: (lambda e: e if len(e) >= 2 else None)(
        httpd.access_log.find("GET", GETBUNDLE, status=401)), 10, what="two logged 401s")
    assert len(refused) == 2 and all(e["note"] is None for e in refused), refused
    assert len(proxy.requests) == seen
    httpd.allow_log(r"\[auth_basic:error\].*AH01617")           # the wrong password


@pytest.mark.parametrize("share", [False, True], ids=["separate", "shared"])
def test_user_in_key(hg, module_httpd, store, proxy, small_repo, tmp_dir, share):
    httpd = module_httpd(small_repo, endpoint=proxy.endpoint,
                         extra_conf=auth_conf(tmp_dir), ShareAcrossUsers=share, **ON)
    clone(hg, user_url(httpd, USERS, "alice"), tmp_dir / "alice", small_repo)
    (alice_key,) = wait_objects(store)
    wait_puts(proxy, store, alice_key, 1)
    clone(hg, user_url(httpd, USERS, "bob"), tmp_dir / "bob", small_repo)
    entries = getbundles(httpd, 2)
    assert [e["user"] for e in entries] == ["alice", "bob"]
    if share:
        assert notes(entries) == ["miss", "hit-stream"]
        time.sleep(SETTLE)
        assert store.keys(PREFIX) == [alice_key]
        assert len(httpd.hgweb_log.commands("getbundle")) == 1
    else:
        assert notes(entries) == ["miss", "miss"]
        keys = wait_objects(store, 2)
        assert len(keys) == 2 and alice_key in keys, keys
        assert len(httpd.hgweb_log.commands("getbundle")) == 2


# --- large headers ------------------------------------------------------------------
def many_heads_repo(hg, path, heads=200):
    """A repository of a root and `heads` children of it (all heads)."""
    hg.run("init", path, check=True)
    dag = "+1:r " + "<r+1 " * heads
    hg.run("debugbuilddag", "-R", path, "-n", dag, check=True)
    # hgweb publishes: make the server's phases what the clones will have.
    hg.run("phase", "-R", path, "--public", "-r", "all()", check=True)
    E.make_world_readable(path)
    E.chown_to_server(path)
    assert len(hg.heads(path)) == heads
    return path


def test_large_headers_are_streamed(hg, module_httpd, store, proxy, tmp_dir):
    repo = many_heads_repo(hg, tmp_dir / "heads")
    httpd = module_httpd(repo, endpoint=proxy.endpoint, MinSize=0, **ON)
    url = httpd.repo_url()

    # Two identical clones: a miss, then a hit (streamed: 200 heads in the args).
    a = clone(hg, url, tmp_dir / "a", repo)
    wait_objects(store, 1)
    b = clone(hg, url, tmp_dir / "b", repo)

    # A new head on the server, then two identical pulls: a miss, then a hit.
    # hg lists the `common` nodes in the order of a Python set, which depends
    # on the process' hash seed; a fixed seed makes the two pulls' arguments
    # byte-identical (the key covers the X-HgArg bytes as sent).
    hg.run("update", "-R", repo, "-r", "0", check=True, as_server=True)
    hg.commit(repo, {"new.txt": "a new head\n"}, "new head", "1700000000 0", as_server=True)
    hg.run("phase", "-R", repo, "--public", "-r", "tip", check=True, as_server=True)
    for dest in (a, b):
        r = hg.pull(dest, url, env={"PYTHONHASHSEED": "0"})
        assert r.ok, r
        hg.assert_verify_clean(dest)
        hg.assert_same_history(repo, dest)
        if dest == a:
            wait_objects(store, 2)

    entries = getbundles(httpd, 4)
    assert notes(entries) == ["miss", "hit-stream", "miss", "hit-stream"], entries
    assert [e["status"] for e in entries] == [200] * 4
    assert all(e["location"] is None for e in entries)
    # What hgweb saw of the two misses: both sent more than the limit.
    seen = httpd.hgweb_log.commands("getbundle")
    assert len(seen) == 2, [(e[0], e[1], len(e[2])) for e in seen]
    assert all(len(e[2]) > FORWARD_LIMIT for e in seen), [len(e[2]) for e in seen]
    # The hits really came from the store: the module GET each object once.
    assert len(proxy.find("GET", r"/hgcache/")) == 2


# --- max age -------------------------------------------------------------------------
def test_max_age(request, hg, module_httpd, store, small_repo, tmp_dir):
    proxy = store_proxy(request, store)
    httpd = module_httpd(small_repo, endpoint=proxy and proxy.endpoint, MaxAge=1, **ON)
    url = httpd.repo_url()
    clone(hg, url, tmp_dir / "c1", small_repo)
    (key,) = wait_objects(store)
    if proxy:
        wait_puts(proxy, store, key, 1)
    else:       # a local object's age is its file's mtime; a new put renames a new file in
        first = store.path(key).stat()
    time.sleep(2.2)
    clone(hg, url, tmp_dir / "c2", small_repo)
    assert notes(getbundles(httpd, 2)) == ["miss", "miss"]
    if proxy:
        wait_puts(proxy, store, key, 2)
    else:
        E.wait_until(lambda: store.path(key).stat().st_ino != first.st_ino, UPLOAD_WAIT,
                     what="the object stored again")
        assert store.path(key).stat().st_mtime > first.st_mtime
    assert store.keys(PREFIX) == [key]
    assert len(httpd.hgweb_log.commands("getbundle")) == 2


# --- store faults ----------------------------------------------------------------------
LOOKUP_FAILED = r"\[hgs3cache:warn\].* HGS300402: "
BREAKER_TRIPPED = r"\[hgs3cache:warn\].* HGS300401: "


def test_store_refuses_connections(hg, module_httpd, store, small_repo, tmp_dir):
    skip_for_file(store, "an endpoint that refuses connections")
    dead = f"http://{E.LOOPBACK}:{E.free_port()}"
    httpd = module_httpd(small_repo, endpoint=dead, **ON)
    httpd.allow_log(LOOKUP_FAILED, BREAKER_TRIPPED)
    for i in range(4):
        clone(hg, httpd.repo_url(), tmp_dir / f"c{i}", small_repo)
    entries = getbundles(httpd, 4)
    # Default breaker: 3 failures open it.
    assert notes(entries) == ["bypass:store-error"] * 3 + ["bypass:breaker-open"], entries
    assert all(e["status"] == 200 for e in entries)
    assert len(httpd.hgweb_log.commands("getbundle")) == 4
    # Rate-limited: one lookup warning, one breaker warning, nothing more.
    assert len(httpd.error_log.grep(LOOKUP_FAILED)) == 1, httpd.error_log.lines()
    assert len(httpd.error_log.grep(BREAKER_TRIPPED)) == 1, httpd.error_log.lines()
    time.sleep(SETTLE)
    assert store.keys(PREFIX) == []


def test_store_hangs_breaker(hg, module_httpd, store, proxy, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, endpoint=proxy.endpoint,
                         server_conf="HgS3CacheBreaker 3 5\n", Timeout=(300, 1000), **ON)
    httpd.allow_log(LOOKUP_FAILED, BREAKER_TRIPPED)
    url = httpd.repo_url()
    hang = proxy.add_rule("hang", method="HEAD")

    for i in range(3):
        clone(hg, url, tmp_dir / f"slow{i}", small_repo)
    tripped_by = time.monotonic()
    for i in range(2):
        clone(hg, url, tmp_dir / f"open{i}", small_repo)
    assert time.monotonic() - tripped_by < 4.5, "the open-breaker clones were too slow"

    entries = getbundles(httpd, 5)
    assert notes(entries) == ["bypass:store-error"] * 3 + ["bypass:breaker-open"] * 2
    secs = [e["duration_us"] / 1e6 for e in entries]
    # The lookup is bounded by LOOKUP_MS (1 s) on top of hgweb's own time ...
    assert all(0.95 <= s < 2.0 for s in secs[:3]), secs
    # ... and, with the breaker open, costs nothing.
    assert all(s < 0.6 for s in secs[3:]), secs
    assert hang.hits == 3 and proxy.count("HEAD") == 3

    # The store comes back; after the cool-down one probe closes the breaker.
    proxy.clear_rules()
    time.sleep(max(0.0, tripped_by + 5.3 - time.monotonic()))
    clone(hg, url, tmp_dir / "probe", small_repo)
    (key,) = wait_objects(store)
    wait_puts(proxy, store, key, 1)
    clone(hg, url, tmp_dir / "hit", small_repo)
    entries = getbundles(httpd, 7)
    assert notes(entries[5:]) == ["miss", "hit-redirect"], entries[5:]
    assert entries[5]["duration_us"] < 1_000_000
    assert proxy.count("HEAD") == 4          # the probe; the hit used the presence cache
    assert len(httpd.hgweb_log.commands("getbundle")) == 6


# --- several front ends -----------------------------------------------------------------
def test_front_ends_share_the_bucket(hg, module_httpd, store, proxy, small_repo, tmp_dir):
    one = module_httpd(small_repo, endpoint=proxy.endpoint, **ON)
    two = module_httpd(small_repo, endpoint=proxy.endpoint, **ON)
    assert one.port != two.port
    clone(hg, one.repo_url(), tmp_dir / "one", small_repo)
    (key,) = wait_objects(store)
    wait_puts(proxy, store, key, 1)
    clone(hg, two.repo_url(), tmp_dir / "two", small_repo)
    assert notes(getbundles(one, 1)) == ["miss"]
    (hit,) = getbundles(two, 1)
    assert hit["note"] == "hit-redirect" and hit["status"] == 302, hit
    assert urllib.parse.urlsplit(hit["location"]).path == f"/{store.bucket}/{key}"
    assert two.hgweb_log.commands("getbundle") == []
    assert len(one.hgweb_log.commands("getbundle")) == 1


# --- stream mode ---------------------------------------------------------------------
STREAM_ABORTED = r"\[hgs3cache:warn\].* HGS300404: "


def test_stream_mode(hg, module_httpd, store, proxy, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, endpoint=proxy.endpoint, HitMode="stream", **ON)
    httpd.allow_log(LOOKUP_FAILED, STREAM_ABORTED)
    url = httpd.repo_url()
    clone(hg, url, tmp_dir / "c1", small_repo)
    (key,) = wait_objects(store)
    wait_puts(proxy, store, key, 1)
    stored = store.get(key)[0]
    obj = key_path(store, key)

    clone(hg, url, tmp_dir / "c2", small_repo)
    first, second = getbundles(httpd, 2)
    assert (first["note"], second["note"]) == ("miss", "hit-stream")
    assert second["status"] == 200 and second["location"] is None
    assert second["bytes"] == len(stored)
    status, hdrs, body = httpd.get("/repo?cmd=getbundle", headers=replay_headers(first))
    assert status == 200 and hdrs["content-type"] == MERCURIAL_02, (status, hdrs)
    assert hdrs.get("x-hgs3cache") == "hit-stream"
    assert body == stored
    assert len(httpd.hgweb_log.commands("getbundle")) == 1
    assert len(proxy.find("GET", obj)) == 2

    # The store fails before the first byte: hgweb answers, as a miss.
    fail = proxy.add_rule("status", method="GET", path=obj, status=500,
                          body=b"<Error><Code>InternalError</Code></Error>", times=1)
    clone(hg, url, tmp_dir / "c3", small_repo)
    assert fail.hits == 1
    fallback = getbundles(httpd, 4)[3]
    assert fallback["note"] == "miss" and fallback["status"] == 200, fallback
    assert len(httpd.hgweb_log.commands("getbundle")) == 2
    wait_puts(proxy, store, key, 2)          # stored again: the same bytes
    assert store.get(key)[0] == stored

    # The store fails midway, after the first 64 KiB went out: the client
    # must see a broken response. (Before that, hgweb answers: see
    # test_store_answers.py.)
    cut = proxy.add_rule("cut_response", method="GET", path=obj, fraction=0.9, times=1)
    r = hg.clone(url, tmp_dir / "c4", "-U")
    assert cut.hits == 1
    assert not r.ok, r
    assert "abort: stream ended unexpectedly" in r.stderr, r      # hg saw the truncation
    assert not (tmp_dir / "c4").exists()
    broken = getbundles(httpd, 5)[4]
    assert broken["note"] == "hit-stream" and broken["bytes"] < len(stored), broken
    # Logged, unless the rate limit swallowed it (the fallback above logged).
    assert len(httpd.error_log.grep(STREAM_ABORTED)) <= 1, httpd.error_log.lines()
    assert len(httpd.hgweb_log.commands("getbundle")) == 2

    # A retry succeeds.
    clone(hg, url, tmp_dir / "c5", small_repo)
    assert getbundles(httpd, 6)[5]["note"] == "hit-stream"


# --- httppostargs -------------------------------------------------------------------
def test_post_hit_is_303(hg, module_httpd, store, proxy, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, endpoint=proxy.endpoint,
                         hgweb_conf="[experimental]\nhttppostargs = true\n", **ON)
    url = httpd.repo_url()
    clone(hg, url, tmp_dir / "c1", small_repo)
    (key,) = wait_objects(store)
    wait_puts(proxy, store, key, 1)
    clone(hg, url, tmp_dir / "c2", small_repo)
    first, second = getbundles(httpd, 2, method="POST")
    assert (first["status"], first["note"]) == (200, "miss"), first
    assert (second["status"], second["note"]) == (303, "hit-redirect"), second
    assert urllib.parse.urlsplit(second["location"]).path == f"/{store.bucket}/{key}"
    assert httpd.access_log.find("GET", GETBUNDLE) == []
    # hg followed the 303 with a GET of the presigned URL.
    gets = proxy.find("GET", key_path(store, key))
    assert len(gets) == 1 and gets[0]["status"] == 200, gets
    assert "X-Amz-Signature=" in gets[0]["path"]
    posts = httpd.hgweb_log.commands("getbundle")
    assert [e[0] for e in posts] == ["POST"], posts


# --- the redirect itself ----------------------------------------------------------------
def test_redirect_public_endpoint(hg, module_httpd, store, proxy, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, endpoint=proxy.endpoint,
                         PublicEndpoint=store.endpoint, URLExpiry=120, **ON)
    url = httpd.repo_url()
    clone(hg, url, tmp_dir / "c1", small_repo)
    (key,) = wait_objects(store)
    wait_puts(proxy, store, key, 1)
    (first,) = getbundles(httpd, 1)

    status, hdrs, _ = httpd.get("/repo?cmd=getbundle", headers=replay_headers(first))
    assert status == 302, (status, hdrs)
    assert hdrs.get("cache-control") == "no-store", hdrs
    assert hdrs.get("x-hgs3cache") == "hit-redirect"
    loc = urllib.parse.urlsplit(hdrs["location"])
    assert (loc.scheme, loc.hostname, loc.port) == ("http", store.host, store.port), loc
    assert loc.port != proxy.port
    assert loc.path == f"/{store.bucket}/{key}"
    q = urllib.parse.parse_qs(loc.query)
    assert q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and q["X-Amz-Expires"] == ["120"], q
    assert q["X-Amz-SignedHeaders"] == ["host"], q
    status, ctype, body = curl(hdrs["location"], tmp_dir / "fetched")
    assert status == 200 and ctype == MERCURIAL_02, (status, ctype)
    assert body == store.get(key)[0]

    # hg follows it straight to the store, past the module's endpoint.
    clone(hg, url, tmp_dir / "c2", small_repo)
    assert notes(getbundles(httpd, 3)) == ["miss", "hit-redirect", "hit-redirect"]
    assert proxy.find("GET", key_path(store, key)) == []
    assert len(httpd.hgweb_log.commands("getbundle")) == 1


def test_redirects_of_two_locations(hg, module_httpd, store, proxy, small_repo, tmp_dir):
    """The same Location on two virtual hosts maps to the same object (the
    Location's path is in the key, the host is not) but signs for different
    public endpoints and expiries. Redirects alternating between them, many
    within the same second (the module reuses a URL signed in the same
    second for the same inputs), always carry their own host's endpoint and
    expiry, and every URL fetches the object; two redirects of one host in
    the same second carry the same URL."""
    other = store.location_conf(small_repo, location="/repo", endpoint=proxy.endpoint,
                                PublicEndpoint=proxy.endpoint, URLExpiry=60, Header=True)

    def vhosts(httpd):
        # mod_wsgi's aliases are not inherited by virtual hosts
        wsgi = f'    WSGIScriptAlias / "{httpd.dir / "hgweb.wsgi"}"\n'
        return (f"<VirtualHost *>\n    ServerName {E.LOOPBACK}\n{wsgi}</VirtualHost>\n"
                f"<VirtualHost *>\n    ServerName other.invalid\n{wsgi}{other}</VirtualHost>\n")
    httpd = module_httpd(small_repo, endpoint=proxy.endpoint,
                         PublicEndpoint=store.endpoint, URLExpiry=120, conf_for=vhosts, **ON)
    clone(hg, httpd.repo_url(), tmp_dir / "c1", small_repo)
    (key,) = wait_objects(store)
    wait_puts(proxy, store, key, 1)
    headers = replay_headers(getbundles(httpd, 1)[0])
    want = {E.LOOPBACK: ((store.host, store.port), ["120"]),
            "other.invalid": ((E.LOOPBACK, proxy.port), ["60"])}

    seen = {}
    for i in range(10):
        for vhost, ((host, port), expires) in want.items():
            status, hdrs, _ = httpd.get("/repo?cmd=getbundle",
                                        headers={**headers, "Host": f"{vhost}:{httpd.port}"})
            assert status == 302 and hdrs.get("x-hgs3cache") == "hit-redirect", (status, hdrs)
            loc = urllib.parse.urlsplit(hdrs["location"])
            assert (loc.hostname, loc.port) == (host, port), (vhost, hdrs["location"])
            assert loc.path == f"/{store.bucket}/{key}"
            q = urllib.parse.parse_qs(loc.query)
            assert q["X-Amz-Expires"] == expires, (vhost, q)
            date = q["X-Amz-Date"][0]
            if (vhost, date) in seen:
                assert seen[(vhost, date)] == hdrs["location"], vhost
            seen[(vhost, date)] = hdrs["location"]
    assert len(seen) < 20, "no two redirects of a host fell in the same second"
    for n, ((vhost, _), url) in enumerate(sorted(seen.items())):
        status, ctype, body = curl(url, tmp_dir / f"fetched{n}")
        assert status == 200 and ctype == MERCURIAL_02, (vhost, status, ctype)
        assert body == store.get(key)[0]
    assert len(httpd.hgweb_log.commands("getbundle")) == 1


# --- the local-directory store (HgS3CacheStore file:DIR) ---------------------------
@pytest.mark.parametrize("mode", ["auto", "redirect", "stream"])
def test_hit_local(hg, module_httpd, file_store, small_repo, tmp_dir, mode):
    """A miss is stored as DIR/KEY with its sidecar; the next identical clone
    is answered by httpd from the file (hit-local, whatever HgS3CacheHitMode
    says: no redirect), with the stored Content-Type and Content-Length, and
    hgweb does not run for it; server-status counts it."""
    httpd = module_httpd(small_repo, store=file_store, HitMode=mode, **ON)
    url = httpd.repo_url()

    clone(hg, url, tmp_dir / "c1", small_repo)
    (first,) = getbundles(httpd, 1)
    assert first["status"] == 200 and first["note"] == "miss", first
    (key,) = wait_objects(file_store)
    stored, ctype, _ = file_store.get(key)
    assert ctype == MERCURIAL_02
    assert len(stored) == first["bytes"], (len(stored), first["bytes"])

    clone(hg, url, tmp_dir / "c2", small_repo)
    hg.assert_same_history(tmp_dir / "c1", tmp_dir / "c2")
    second = getbundles(httpd, 2)[1]
    assert second["status"] == 200 and second["location"] is None, second
    assert second["note"] == "hit-local" and second["x_hgs3cache"] == "hit-local"
    assert second["bytes"] == len(stored)

    status, hdrs, body = httpd.get("/repo?cmd=getbundle", headers=replay_headers(first))
    assert status == 200, (status, hdrs)
    assert hdrs["content-type"] == MERCURIAL_02 and hdrs.get("x-hgs3cache") == "hit-local"
    assert int(hdrs["content-length"]) == len(stored), hdrs
    assert body == stored
    assert len(httpd.hgweb_log.commands("getbundle")) == 1, httpd.hgweb_log.entries()
    counters = httpd.server_status()
    assert int(counters["HgS3CacheHitsLocal"]) == 2, counters
    assert int(counters["HgS3CacheHits"]) >= 2, counters
