"""The store's answers are checked, never trusted blindly (SPEC "Failure
behaviour").

A store that lies: the FaultProxy's "script" rule with the answers of
pyhgs3/liar.py, in front of a real store. Each lie must end in a correct,
verifying clone (hgweb answers when nothing was sent yet, otherwise the
connection is aborted and the next clone succeeds), with the failure
counted in server-status (StoreErrors) and never remembered as present:

- a streamed hit accepts only a 200 of the object's size (the HEAD's) and
  type, and exactly that many bytes, the first within LOOKUP_MS;
- a lookup is a hit only for a 200 with a Content-Length above 0 and a
  parseable Last-Modified; with HgS3CacheMaxAge a Last-Modified in the
  future is a miss;
- store error text is logged as its Code and request id, redacted of
  anything that looks like a credential, in the module and in the hgs3 tool;
- a half-open breaker's probe always ends, even when its client aborts a
  streamed hit.

The lies that replace the store's answer run on s3rver; those that bend
the real answer or check a real store's behaviour run on both stores.
"""
import http.client
import re
import time

import pytest

from pyhgs3 import env as E
from pyhgs3 import liar
from pyhgs3.checks import replay_headers, spool_dir
from pyhgs3.hg import hgdate, random_bytes
from test_faults import (BREAKER_FAILS, BREAKER_SECS, LOOKUP_MS, LOOKUP_TAGS, PREFIX,
                         SLACK_BOUND, UPLOAD_TAG, Bench, check_latency, key_of,
                         wait_log, wait_spool_empty)
from test_s3client import hgs3
from test_status import counters

# The first object byte is due within LOOKUP_MS, checked about once a
# second (libcurl's progress callback).
FIRST_BYTE_BOUND = LOOKUP_MS / 1000 + 1.0 + SLACK_BOUND

# Lies told before any byte of the object reached the client: hgweb answers.
GET_LIES = {
    "status_line_close": liar.status_line_close,
    "partial_206": liar.partial_206,
    "short_content_length": liar.short_content_length,
    "chunked_cut": liar.chunked_cut,
    "html_error_page": liar.html_error_page,
    "trickle_500": liar.trickle_500,
    "endless_404": liar.endless_404,
    "slow_headers": liar.slow_headers,
    "stall_after_1000": liar.stall_after(1000),
}


def stored_hit(b):
    """Clone (a miss, stored), then clone again (a streamed hit); the
    object's key and bytes."""
    first = b.clone()
    assert first["note"] == "miss", first
    key = key_of(b.heads()[0])
    b.wait_object(key)
    expected = b.expected_body(first)
    assert b.store.get(key)[0] == expected
    return key, expected


def counted(b, before, **want):
    """Counters moved by exactly `want` ({Name: delta}) since `before`."""
    after = counters(b.httpd)
    got = {k: after.get(k, 0) - before.get(k, 0) for k in want}
    assert got == want, f"counter changes {got}, expected {want}"
    return after


@pytest.mark.parametrize("store", ["s3rver"], indirect=True)
@pytest.mark.parametrize("lie", list(GET_LIES))
def test_streamed_hit_lie_falls_back(hg, module_httpd, small_repo, tmp_dir, store, proxy, lie):
    """The store's GET answer of a streamed hit lies before the first byte
    reached the client: hgweb answers (a correct clone, within LOOKUP_MS of
    the first byte's due time), the failure is counted, the stored object is
    untouched and the next clone is a streamed hit again."""
    b = Bench(hg, module_httpd, store, proxy, tmp_dir, small_repo, hit_mode="stream")
    b.httpd.allow_log(LOOKUP_TAGS)
    base = b.baseline()
    key, expected = stored_hit(b)
    assert b.clone()["note"] == "hit-stream"
    before = counters(b.httpd)

    proxy.add_rule("script", method="GET", path=PREFIX, times=1, fn=GET_LIES[lie])
    e = b.clone()
    assert e["note"].startswith("miss"), f"{lie}: note {e['note']} (hgweb must answer)"
    check_latency(e, base, FIRST_BYTE_BOUND, f"clone with {lie}")
    counted(b, before, StoreErrors=1, HitsStream=0)

    assert b.clone()["note"] == "hit-stream"
    b.verify_all()
    wait_spool_empty(b.spool)
    b.assert_bucket({key: expected})
    b.summary(f"stream GET lie {lie}", base)


@pytest.mark.parametrize("lie", ["stall_after_90000", "short_after_90000"])
def test_streamed_hit_lie_after_first_bytes(hg, module_httpd, small_repo, tmp_dir, store, proxy,
                                            lie):
    """The store fails a streamed hit after bytes reached the client (the
    first 64 KiB go out at once): the connection is aborted, never completed
    short, so that clone fails loudly; the failure is counted and the next
    clone is a streamed hit."""
    b = Bench(hg, module_httpd, store, proxy, tmp_dir, small_repo, hit_mode="stream")
    b.httpd.allow_log(LOOKUP_TAGS, r"HGS300404")
    key, expected = stored_hit(b)
    assert len(expected) > 90_000
    before = counters(b.httpd)

    if lie == "stall_after_90000":
        fn = liar.stall_after(90_000)
    else:
        def fn(ex):          # the connection closes after 90000 bytes
            status, headers, body = ex.upstream()
            ex.respond(status, headers, body[:90_000])
    proxy.add_rule("script", method="GET", path=PREFIX, times=1, fn=fn)
    r, entry, dest = b.clone(expect_ok=False)
    assert not r.ok, f"a clone of a broken stream succeeded: {r}"
    assert not dest.exists()
    assert entry["note"] == "hit-stream", entry
    assert 0 < entry["bytes"] < len(expected), entry
    counted(b, before, StoreErrors=1)

    assert b.clone()["note"] == "hit-stream"
    b.verify_all()
    b.assert_bucket({key: expected})


def test_head_last_modified(hg, module_httpd, small_repo, tmp_dir, store, proxy):
    """A HEAD without a usable Last-Modified is a store failure, never a
    hit; with HgS3CacheMaxAge a Last-Modified in the future is a miss."""
    b = Bench(hg, module_httpd, store, proxy, tmp_dir, small_repo, MaxAge=3600)
    b.httpd.allow_log(LOOKUP_TAGS)
    key, expected = stored_hit(b)
    assert b.clone()["note"] == "hit-redirect"

    for value in (None, "not a date", "Tue, 31 Feb 2026 25:61:00 GMT"):
        before = counters(b.httpd)
        proxy.add_rule("script", method="HEAD", path=PREFIX, times=1, fn=liar.last_modified(value))
        e = b.clone()
        assert e["note"] == "bypass:store-error", f"Last-Modified {value!r}: {e['note']}"
        counted(b, before, StoreErrors=1, BypassStoreError=1)
        assert b.clone()["note"] == "hit-redirect"    # (and the breaker stays closed)

    before = counters(b.httpd)
    future = liar.http_date(time.time() + 365 * 86400)
    proxy.add_rule("script", method="HEAD", path=PREFIX, times=1, fn=liar.last_modified(future))
    e = b.clone()
    assert e["note"].startswith("miss"), f"Last-Modified {future}: {e['note']}"
    counted(b, before, StoreErrors=0)

    wait_spool_empty(b.spool)
    assert b.clone()["note"] == "hit-redirect"
    b.verify_all()
    b.assert_bucket({key: expected})


@pytest.mark.parametrize("store", ["s3rver"], indirect=True)
def test_truncated_head_not_remembered(hg, httpd_factory, small_repo, tmp_dir, store, proxy):
    """A HEAD of a key that is not stored, answered "200 OK" and a close,
    with the presence cache on: a store failure (hgweb answers), never a hit
    and never remembered as present, so the next clone is a plain miss
    (not a redirect to an object that does not exist)."""
    spool = spool_dir(tmp_dir)
    conf = "HgS3CacheBreaker 5 1\n" + store.location_conf(
        small_repo, endpoint=proxy.endpoint, Timeout=(500, LOOKUP_MS), SpoolDir=str(spool))
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf)
    httpd.allow_log(LOOKUP_TAGS)
    proxy.add_rule("script", method="HEAD", path=PREFIX, times=1, fn=liar.status_line_close)

    notes = []
    for i in range(3):
        dest = tmp_dir / f"clone{i}"
        r = hg.clone(httpd.repo_url(), dest, "-U")
        assert r.ok, (i, notes, r)
        hg.assert_verify_clean(dest)
        hg.assert_same_history(small_repo, dest)
        entries = httpd.access_log.find("GET", r"^/repo\?cmd=getbundle$")
        notes.append(entries[-1]["note"])
        if i == 1:
            key = key_of(proxy.find("HEAD", PREFIX)[1])
            E.wait_until(lambda: key in store.keys(PREFIX), 20, what="the object")
    assert notes == ["bypass:store-error", "miss", "hit-redirect"], notes
    c = counters(httpd)
    assert c["StoreErrors"] == 1 and c["PresenceHits"] == 1, c
    assert len(proxy.find("HEAD", PREFIX)) == 2, "the truncated HEAD was remembered"


def secrets_of(rec):
    """The parts of a recorded request's Authorization that must never show."""
    auth = [v for k, v in rec["headers"] if k.lower() == "authorization"]
    assert auth, rec
    sig = re.search(r"Signature=([0-9a-f]{64})", auth[0]).group(1)
    scope = re.search(r"Credential=([^,\s]+)", auth[0]).group(1)
    return [auth[0], sig, scope, "aws4_request", "Credential="]


def assert_no_secrets(text, secrets, what):
    assert "InternalError" in text, f"{what} lost the error Code:\n{text}"
    for s in secrets:
        assert s not in text, f"{what} shows {s!r}:\n{text}"


def test_upload_error_text_redacted(hg, module_httpd, small_repo, tmp_dir, store, proxy):
    """A store that echoes the request's Authorization in its error Code,
    Message and request ids, on upload: the HGS300201 line carries the error
    Code and no part of the credential or signature."""
    b = Bench(hg, module_httpd, store, proxy, tmp_dir, small_repo)
    b.httpd.allow_log(UPLOAD_TAG)
    proxy.add_rule("script", method="PUT", path=PREFIX, fn=liar.echo_authorization)
    assert b.clone()["note"] == "miss"
    wait_log(b.httpd, UPLOAD_TAG)
    wait_spool_empty(b.spool)
    (line,) = b.httpd.error_log.grep(UPLOAD_TAG, since_mark=False)
    assert_no_secrets(line, secrets_of(proxy.find("PUT", PREFIX)[0]), "the upload failure line")
    b.verify_all()


@pytest.mark.parametrize("store", ["s3rver"], indirect=True)
def test_lookup_error_text_redacted(hg, module_httpd, small_repo, tmp_dir, store, proxy):
    """The same echo on a streamed hit's GET: hgweb answers, and the
    HGS300402 line carries the error Code and no part of the credential or
    signature; so does the hgs3 tool's stderr."""
    b = Bench(hg, module_httpd, store, proxy, tmp_dir, small_repo, hit_mode="stream")
    b.httpd.allow_log(LOOKUP_TAGS)
    key, expected = stored_hit(b)
    proxy.add_rule("script", method="GET", path=PREFIX, times=1, fn=liar.echo_authorization)
    assert b.clone()["note"].startswith("miss")
    (line,) = b.httpd.error_log.grep(r"HGS300402", since_mark=False)
    assert_no_secrets(line, secrets_of(proxy.find("GET", PREFIX)[-1]), "the lookup failure line")

    proxy.add_rule("script", method="GET", path=PREFIX, times=1, fn=liar.echo_authorization)
    res = hgs3(store, "get", key, endpoint=proxy.endpoint)
    assert res.returncode != 0
    assert_no_secrets(res.stderr.decode(errors="replace"),
                      secrets_of(proxy.find("GET", PREFIX)[-1]), "hgs3's stderr")
    b.verify_all()


@pytest.fixture(scope="module")
def mib_repo(env, hg):
    """A repository whose getbundle is about 1 MiB. Read only."""
    path = env.mkdir("template") / "mib"
    hg.run("init", path, check=True)
    hg.commit(path, {"blob.bin": random_bytes(91, 1024 * 1024)}, "one mib", hgdate(0))
    hg.run("phase", "-R", path, "--public", "-r", "tip", check=True)
    E.make_world_readable(path)
    return path


def abort_getbundle(httpd, headers):
    """Send a getbundle, read the response head, and leave."""
    conn = http.client.HTTPConnection(E.LOOPBACK, httpd.port, timeout=30)
    conn.request("GET", "/repo?cmd=getbundle", headers=headers)
    resp = conn.getresponse()
    status = resp.status
    resp.fp.read1(1000)
    conn.sock.close()
    conn.close()
    return status


@pytest.mark.parametrize("store", ["s3rver"], indirect=True)
def test_breaker_probe_client_abort(hg, module_httpd, mib_repo, tmp_dir, store, proxy):
    """The breaker is open; after the cooldown the probe's lookup succeeds,
    and its client leaves in the middle of the streamed hit (a failure that
    is not the store's). The probe still ends: lookups resume with the store
    healthy instead of staying off until a restart."""
    b = Bench(hg, module_httpd, store, proxy, tmp_dir, mib_repo, hit_mode="stream")
    b.httpd.allow_log(LOOKUP_TAGS)
    key, expected = stored_hit(b)
    assert b.clone()["note"] == "hit-stream"

    proxy.add_rule("status", method="HEAD", path=PREFIX, times=BREAKER_FAILS, status=500)
    for _ in range(BREAKER_FAILS):
        assert b.get()["note"] == "bypass:store-error"
    assert b.get()["note"] == "bypass:breaker-open"
    time.sleep(BREAKER_SECS + 0.2)

    # the probe: its GET delivers the object slowly, its client leaves
    proxy.add_rule("script", method="GET", path=PREFIX, times=1, fn=liar.slow_body(65536, 0.05))
    last = [e for kind, n, _, e in b.ops if kind == "clone"][-1]
    assert abort_getbundle(b.httpd, replay_headers(last)) == 200
    probe = b._next_entry("repo")
    assert probe["note"] == "hit-stream", probe
    E.wait_until(lambda: proxy.find("GET", PREFIX, done=True)[-1]["rule"] == "script", 10,
                 what="the probe's GET to end")

    # whatever the probe's end counted as, lookups are back within a cooldown
    time.sleep(BREAKER_SECS + 0.2)
    notes = [b.get()["note"] for _ in range(2)]
    assert notes == ["hit-stream", "hit-stream"], notes
    b.verify_all()
    b.assert_bucket({key: expected})
