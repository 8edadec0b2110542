"""Security properties of mod_hgs3cache, with real httpd, hgweb (mod_wsgi
daemon), the real hg client, and both strict S3 stores behind the recording
FaultProxy:

- Apache's authentication runs before the module: an unauthenticated
  getbundle gets 401 even when the object for its key is stored, and an
  authenticated hit is streamed without the client's Authorization ever
  reaching the store;
- hgweb's own allow_read still decides for a user who has no hit of his own
  (r->user is in the key);
- path traversal on HgS3CacheRepositoryRoot gets no cache action;
- malformed, oversized and numerous X-HgArg / X-HgProto headers crash
  nothing, get no cache action, and hgweb answers exactly as without the
  module;
- the secret key and the session token appear in no log line, response
  header or error page, at LogLevel trace8, across a miss, a hit-redirect,
  a hit-stream, store failures and configtest errors;
- presigned URLs expire after HgS3CacheURLExpiry.
"""
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from pyhgs3 import env as E
from pyhgs3.auth import auth_location, basic_auth, user_url, write_htpasswd
from pyhgs3.checks import PREFIX, key_lines, replay_headers, wait_objects
from pyhgs3.hgwire import HG_PROTO, NULL_NODE, getbundle_headers
from pyhgs3.hgwire import clone_args as wire_clone_args
from pyhgs3.hg import copy_repo
from pyhgs3.httpd import hgs3cache_location

LOG_LEVEL = "info hgs3cache:debug"
SETTLE = 1.5
USERS = {"alice": "alice-pw-7Qx", "bob": "bob-pw-4Zr"}
# What a crash of an httpd child looks like in the error log (the parent's
# AH00052 is logged at notice, below the log check's threshold), and what a
# sanitizer build would print.
CRASH_RE = re.compile(r"exit signal|Segmentation fault|AddressSanitizer|runtime error:|"
                      r"LeakSanitizer|core dumped")

# Mercurial 6.3.2's bundlecaps (FACTS.md section 1), for replayed clones.
BUNDLE_MAGIC = (b"\x04zstd", b"\x04zlib", b"\x04none", b"HG20", b"HG10")


# --- helpers -------------------------------------------------------------------
def clone_args(hg, repo, extra_common=()):
    """The X-HgArg value of a full clone of repo, as hg 6.3.2 sends it; extra
    common nodes (unknown to the repository, so hgweb ignores them) make it
    longer without changing the answer."""
    return wire_clone_args(hg.heads(repo), [NULL_NODE] + list(extra_common))


def fake_nodes(n, seed=1):
    import random
    rnd = random.Random(seed)
    return ["%040x" % rnd.getrandbits(160) for _ in range(n)]


def last_replay_headers(httpd, path="/repo"):
    """The headers of the last getbundle a real hg client sent to path, to
    replay it exactly."""
    return replay_headers(wait_entry(httpd, f"{path}?cmd=getbundle")[-1])


def basic(user, password=None):
    return basic_auth(user, USERS[user] if password is None else password)


def htpasswd(tmp_dir):
    return write_htpasswd(tmp_dir / "htpasswd", USERS)


def wait_entry(httpd, target, count=1, timeout=10):
    """Access log entries whose request line names exactly `target`
    (httpd writes the entry after answering)."""
    def found():
        es = [e for e in httpd.access_log.entries()
              if e["request"] and e["request"].split(" ")[1:2] == [target]]
        return es if len(es) >= count else None
    try:
        return E.wait_until(found, timeout, what=f"access log entry for {target}")
    except TimeoutError:
        raise AssertionError(f"no access log entry for {target!r}") from None


def assert_no_crash(httpd):
    status, _, _ = httpd.get("/server-status?auto")
    assert status == 200, "httpd stopped answering"
    bad = [ln for ln in httpd.error_log.lines(since_mark=False) if CRASH_RE.search(ln)]
    try:
        bad += [ln for ln in httpd.stderr_path.read_text(errors="replace").splitlines()
                if CRASH_RE.search(ln)]
    except FileNotFoundError:
        pass
    assert bad == [], bad


def raw_request(port, head, body=b"", timeout=60):
    """Send raw request bytes (head without the final blank line) and read
    the answer: (status, {header: value}, body). Lets a test send what
    http.client refuses to (control characters, bare CR, ...)."""
    sock = socket.create_connection((E.LOOPBACK, port), timeout=timeout)
    try:
        sock.sendall(head + b"\r\n" + body)
        resp = http.client.HTTPResponse(sock, method="GET")
        resp.begin()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        sock.close()


def request_head(port, target, headers):
    """headers: [(name_bytes, value_bytes)] sent exactly as given."""
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: %s:%d" % (E.LOOPBACK.encode(), port)]
    lines += [n + b": " + v for n, v in headers]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n"


# --- Apache authentication comes first -------------------------------------------
@pytest.mark.parametrize("mode", ["auto", "stream"])
def test_unauthenticated_never_served(hg, httpd_factory, store, proxy, small_repo, tmp_dir, mode):
    """With ShareAcrossUsers on, an anonymous request has the same key as
    alice's stored one; Apache's 401 must still come first."""
    conf = auth_location("/repo", htpasswd(tmp_dir)) + store.location_conf(
        small_repo, endpoint=proxy.endpoint, ShareAcrossUsers=True, HitMode=mode, Header=True)
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf,
                          log_level=LOG_LEVEL)
    httpd.allow_log(r"AH01617", r"AH01618", r"AH01614")     # auth_basic: bad/missing user
    r = hg.clone(user_url(httpd, USERS, "alice"), tmp_dir / "alice", "-U")
    assert r.ok, r
    (key,) = wait_objects(store)
    body, ctype, _ = store.get(key)
    headers = last_replay_headers(httpd)

    # alice with her password: a hit, streamed (auto: she sent Authorization).
    status, hdrs, got = httpd.get("/repo?cmd=getbundle",
                                  headers={**headers, "Authorization": basic("alice")})
    assert status == 200, (status, got[:200])
    assert hdrs.get("x-hgs3cache") == "hit-stream", hdrs
    assert got == body and hdrs["content-type"] == ctype
    keys = key_lines(httpd)
    # (capabilities and batch have keys of their own: kept inline)
    assert {k["key"] for k in keys if k["cmd"] == "getbundle"} == {key[len(PREFIX):]}, keys
    assert "location" not in hdrs

    # Nobody, and a wrong password: 401, nothing from the store. (The proxy
    # records the streamed GET once it has relayed it, which may be a moment
    # after the client has the last byte.)
    proxy.wait_for("GET", PREFIX, count=1)
    before = len(proxy.requests)
    for extra in ({}, {"Authorization": basic("alice", "wrong")},
                  {"Authorization": basic("mallory", "x")}):
        status, hdrs, got = httpd.get("/repo?cmd=getbundle", headers={**headers, **extra})
        assert status == 401, (extra, status, hdrs, got[:200])
        assert "location" not in hdrs and "x-hgs3cache" not in hdrs, hdrs
        assert not any(m in got for m in BUNDLE_MAGIC), got[:200]
        assert len(got) < len(body) // 10
    assert len(proxy.requests) == before, proxy.requests[before:]
    assert len(key_lines(httpd)) == len(keys), "the handler ran for a refused request"
    # httpd writes an entry after the response went out, so a streamed hit's
    # entry may follow the next request's: compare sets, not positions.
    entries = wait_entry(httpd, "/repo?cmd=getbundle", count=5)
    assert sorted(e["status"] for e in entries) == [200, 200, 401, 401, 401], entries
    refused = [e for e in entries if e["status"] == 401]
    assert all(e["note"] is None for e in refused), refused

    # The client's credentials never went to the store: every store request
    # carries the module's own SigV4 signature and nothing of alice's.
    assert proxy.requests
    secret_bits = [USERS["alice"], basic("alice").split()[1], "Basic "]
    for rec in proxy.requests:
        auth = proxy.header(rec, "Authorization")
        assert auth and auth.startswith("AWS4-HMAC-SHA256 Credential="), rec
        for name, value in rec["headers"]:
            assert not any(s in value for s in secret_bits), (name, value)
        assert not any(s in rec["path"] for s in secret_bits), rec["path"]
        assert proxy.header(rec, "Proxy-Authorization") is None
    assert_no_crash(httpd)


# --- hgweb's allow_read still decides ------------------------------------------------
def test_allow_read_decided_by_hgweb(hg, httpd_factory, store, proxy, small_repo, tmp_dir):
    with open(small_repo / ".hg" / "hgrc", "a") as f:
        f.write("[web]\nallow_read = alice\n")
    conf = auth_location("/repo", htpasswd(tmp_dir)) + store.location_conf(
        small_repo, endpoint=proxy.endpoint, Header=True)
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf,
                          log_level=LOG_LEVEL)
    r = hg.clone(user_url(httpd, USERS, "alice"), tmp_dir / "alice", "-U")
    assert r.ok, r
    hg.assert_same_history(small_repo, tmp_dir / "alice")
    (key,) = wait_objects(store)
    body, _, _ = store.get(key)
    headers = last_replay_headers(httpd)

    status, hdrs, got = httpd.get("/repo?cmd=getbundle",
                                  headers={**headers, "Authorization": basic("alice")})
    assert (status, hdrs.get("x-hgs3cache")) == (200, "hit-stream"), (status, hdrs)
    assert got == body

    # bob passes Apache's Require valid-user, but hgweb must refuse him.
    status, hdrs, got = httpd.get("/repo?cmd=getbundle",
                                  headers={**headers, "Authorization": basic("bob")})
    assert status == 401, (status, hdrs, got[:200])
    assert not hdrs.get("x-hgs3cache", "").startswith("hit"), hdrs
    assert "location" not in hdrs
    assert not any(m in got for m in BUNDLE_MAGIC) and b"read not authorized" in got, got[:200]
    r = hg.clone(user_url(httpd, USERS, "bob"), tmp_dir / "bob", "-U")
    assert not r.ok, r
    assert not (tmp_dir / "bob" / ".hg").exists()

    keys = [k for k in key_lines(httpd) if k["cmd"] == "getbundle"]
    assert len(keys) == 3, keys                 # alice's clone, alice's hit, bob
    assert keys[0]["key"] == keys[1]["key"] != keys[2]["key"]
    (bob,) = [e for e in wait_entry(httpd, "/repo?cmd=getbundle", count=3) if e["user"] == "bob"]
    assert bob["status"] == 401 and bob["note"] == "miss-store-skipped:status", bob
    time.sleep(SETTLE)
    assert store.keys(PREFIX) == [key]
    assert_no_crash(httpd)


# --- path traversal on HgS3CacheRepositoryRoot -----------------------------------------
# target -> expected note: "bypass" (the module saw it and refused it), None
# (the request never reached the module: Apache refused or rewrote it to
# another place), "any" (either).
TRAVERSAL = {
    # raw "..": Apache normalizes the path before anything else sees it
    b"/hgroot/a/../evil?cmd=getbundle": "bypass",            # -> /hgroot/evil
    b"/hgroot/../hgroot/up/outside?cmd=getbundle": "bypass",  # -> symlink out
    b"/hgroot/a/../../outside?cmd=getbundle": None,           # -> /outside
    b"/hgroot/../../../etc/passwd?cmd=getbundle": None,       # above /: 400
    # encoded dots: Apache decodes unreserved characters, then normalizes
    b"/hgroot/a/%2e%2e/evil?cmd=getbundle": "bypass",
    b"/hgroot/a/%2E%2e/up/outside?cmd=getbundle": "bypass",
    b"/hgroot/%2E%2e/%2e%2E/etc/passwd?cmd=getbundle": None,
    # encoded separators inside a segment (AllowEncodedSlashes NoDecode)
    b"/hgroot/a%2f..%2f..%2foutside?cmd=getbundle": "bypass",
    b"/hgroot/..%2fup%2foutside?cmd=getbundle": "bypass",
    b"/hgroot/up%2Foutside?cmd=getbundle": "bypass",
    b"/hgroot/a%5c..%5c..%5coutside?cmd=getbundle": "bypass",
    b"/hgroot/up%5coutside?cmd=getbundle": "bypass",
    # NUL: Apache refuses %00 in the path with 404
    b"/hgroot/a%00?cmd=getbundle": None,
    b"/hgroot/a%00/../evil?cmd=getbundle": "bypass",  # ".." first: /hgroot/evil
    # double slashes inside the path (MergeSlashes Off, so they reach the
    # module; leading and trailing ones are checked after the control)
    b"/hgroot/up//outside?cmd=getbundle": "bypass",
    b"/hgroot/a//sub?cmd=getbundle": "bypass",
    # symlinks in the root that lead out of it
    b"/hgroot/evil?cmd=getbundle": "bypass",
    b"/hgroot/up/outside?cmd=getbundle": "bypass",
    b"/hgroot/up/hgroot-copy/a?cmd=getbundle": "bypass",
}


def test_path_traversal(hg, httpd_factory, store, proxy, small_repo_template, tmp_dir):
    root = tmp_dir / "root"
    root.mkdir()
    copy_repo(small_repo_template, root / "a")
    outside = copy_repo(small_repo_template, tmp_dir / "outside")
    copy_repo(small_repo_template, tmp_dir / "hgroot-copy" / "a")
    os.symlink(outside, root / "evil")              # a repository outside the root
    os.symlink(tmp_dir, root / "up")                # a directory above the root
    E.make_world_readable(tmp_dir)
    conf = ("AllowEncodedSlashes NoDecode\nMergeSlashes Off\n"
            + store.location_conf(None, location="/hgroot", endpoint=proxy.endpoint,
                                  RepositoryRoot=root, Header=True))
    httpd = httpd_factory(repos={"hgroot": f"{root}/**"}, module=True, extra_conf=conf,
                          log_level=LOG_LEVEL)
    # Apache's own refusals of the worst paths.
    httpd.allow_log(r"AH10244", r"AH00026", r"AH00126")
    headers = [(k.encode(), v.encode()) for k, v in
               getbundle_headers(clone_args(hg, root / "a")).items()]

    answers = {}
    for target in TRAVERSAL:
        status, hdrs, body = raw_request(httpd.port, request_head(httpd.port, target, headers))
        answers[target] = (status, hdrs, body)
        assert status != 500, (target, status, body[:300])
        assert not hdrs.get("x-hgs3cache", "").startswith(("hit", "miss")), (target, hdrs)
        assert "location" not in hdrs, (target, hdrs)
    assert key_lines(httpd) == [], "a traversal got a cache key"
    want_targets = {t.decode() for t in TRAVERSAL}

    def logged():
        return {e["request"].split(" ")[1]: e for e in httpd.access_log.entries()
                if e["request"] and " " in e["request"]}
    try:
        E.wait_until(lambda: want_targets <= set(logged()), 10,
                     what="access log entries of every target")
    except TimeoutError:
        raise AssertionError("targets missing from the access log: "
                             f"{sorted(want_targets - set(logged()))}") from None
    by_request = logged()
    wrong = []
    for target, want in TRAVERSAL.items():
        e = by_request[target.decode()]
        note = e["note"]
        if want == "bypass":
            ok = note is not None and note.startswith("bypass:")
        else:
            ok = note is None
        if not ok:
            wrong.append((target, e["status"], e["target"], note))
    assert wrong == [], wrong
    time.sleep(SETTLE)
    assert proxy.requests == [], [(r["method"], r["path"]) for r in proxy.requests]
    assert store.keys() == []
    assert_no_crash(httpd)

    # Control: the same request for the repository itself is cached.
    status, hdrs, body = raw_request(httpd.port,
                                     request_head(httpd.port, b"/hgroot/a?cmd=getbundle", headers))
    assert status == 200 and hdrs.get("x-hgs3cache") == "miss", (status, hdrs)
    (k,) = key_lines(httpd)
    assert k["repo"] == os.path.realpath(root / "a")
    assert wait_objects(store) == [PREFIX + k["key"]]

    # Slashes before and after the name: hgweb strips them (its dispatch
    # path is PATH_INFO.strip("/")) and serves "a"; so does the module.
    for target in (b"/hgroot//a?cmd=getbundle", b"/hgroot/a//?cmd=getbundle",
                   b"/hgroot///a/?cmd=getbundle"):
        status, hdrs, body = raw_request(httpd.port, request_head(httpd.port, target, headers))
        assert status in (200, 302), (target, status, body[:300])
        assert hdrs.get("x-hgs3cache", "").startswith("hit"), (target, hdrs)
    assert [(x["key"], x["repo"]) for x in key_lines(httpd)] == [(k["key"], k["repo"])] * 4
    assert store.keys() == [PREFIX + k["key"]]


# --- malformed and oversized wire-protocol headers ---------------------------------------
LIMIT_FIELDS = "LimitRequestFields 2000\n"
# Which case a request was (X-Case, the first header) and what the module
# noted. (A query argument would do, but hgweb's getbundle warns about
# unknown arguments on stderr, which fails under mod_wsgi.)
CASE_LOG = ('LogFormat "%{X-Case}i\\t%{hgs3cache}n\\t%>s" hgs3case\n'
            'CustomLog "logs/case_log" hgs3case\n')


def _malformed_cases(args, proto, long_args, huge_args):
    """name -> (headers [(bytes, bytes)], the notes the module may leave: a
    set; None = httpd refused the request before any handler ran)."""
    a, p = args.encode(), proto.encode()
    la = long_args.encode()
    gp = [(b"X-HgProto-1", p)]
    chunks1000 = [la[i * len(la) // 1000:(i + 1) * len(la) // 1000] for i in range(1000)]
    chunks1001 = [la[i * len(la) // 1001:(i + 1) * len(la) // 1001] for i in range(1001)]
    assert all(chunks1000) and all(chunks1001), "long_args too short to split"
    big = huge_args.encode()
    size = 8000
    bigparts = [big[i:i + size] for i in range(0, len(big), size)]
    assert sum(map(len, bigparts)) > 256 * 1024
    MAL, BIG, NONE = {"bypass:malformed"}, {"bypass:too-large"}, {None}
    return {
        "gap-1-3": ([(b"X-HgArg-1", a), (b"X-HgArg-3", b"&x=1")] + gp, MAL),
        "gap-2": ([(b"X-HgArg-2", a)] + gp, MAL),
        "zero": ([(b"X-HgArg-0", b"x=1"), (b"X-HgArg-1", a)] + gp, MAL),
        "leading-zero": ([(b"X-HgArg-01", a)] + gp, MAL),
        "not-a-number": ([(b"X-HgArg-1", a), (b"X-HgArg-x", b"1")] + gp, MAL),
        "huge-number": ([(b"X-HgArg-1", a), (b"X-HgArg-99999999999999999999", b"1")] + gp,
                        MAL | BIG),
        "underscore-name": ([(b"X_HgArg_1", a)] + gp, MAL),
        "underscore-proto": ([(b"X-HgArg-1", a), (b"X_HgProto_1", p)], MAL),
        "tab-in-arg": ([(b"X-HgArg-1", a[:50] + b"\t" + a[50:])] + gp, MAL),
        "tab-in-proto": ([(b"X-HgArg-1", a), (b"X-HgProto-1", p[:4] + b"\t" + p[4:])], MAL),
        "ctl-in-arg": ([(b"X-HgArg-1", a[:50] + b"\x01" + a[50:])] + gp, MAL | NONE),
        "del-in-arg": ([(b"X-HgArg-1", a[:50] + b"\x7f" + a[50:])] + gp, MAL | NONE),
        "nul-in-arg": ([(b"X-HgArg-1", a[:50] + b"\x00" + a[50:])] + gp, MAL | NONE),
        "nul-in-proto": ([(b"X-HgArg-1", a), (b"X-HgProto-1", p + b"\x00x")], MAL | NONE),
        "bare-cr-in-arg": ([(b"X-HgArg-1", a[:50] + b"\rX-Evil: 1")] + gp, MAL | NONE),
        # a bare LF that would start a new field: X-HgArg-3 without -2
        "bare-lf-in-arg": ([(b"X-HgArg-1", a + b"\nX-HgArg-3: &x=1")] + gp, MAL | NONE),
        # obs-fold: httpd unfolds it into one space, so the module and hgweb
        # read the same value (here hgweb answers a bundle2 error: not stored)
        "folded-arg": ([(b"X-HgArg-1", a[:50] + b"\r\n\t" + a[50:])] + gp,
                       MAL | NONE | {"miss-store-skipped:error-part"}),
        "field-over-httpd-limit": ([(b"X-HgArg-1", a + b"&x=" + b"y" * 9000)] + gp, NONE),
        "args-over-256k": ([(b"X-HgArg-%d" % (i + 1), part) for i, part in enumerate(bigparts)]
                           + gp, BIG),
        "proto-over-8k": ([(b"X-HgArg-1", a), (b"X-HgProto-1", p + b" " + b"x" * 5000),
                           (b"X-HgProto-2", b" " + b"y" * 5000)], BIG),
        "proto-17-parts": ([(b"X-HgArg-1", a)] + [(b"X-HgProto-%d" % i, p if i == 1 else b" z")
                                                  for i in range(1, 18)], BIG),
        "1000-hgargs": ([(b"X-HgArg-%d" % (i + 1), c) for i, c in enumerate(chunks1000)] + gp,
                        BIG),
        "1001-hgargs": ([(b"X-HgArg-%d" % (i + 1), c) for i, c in enumerate(chunks1001)] + gp,
                        BIG),
        "1100-other-headers": ([(b"X-HgArg-1", a)] + gp
                               + [(b"X-Pad-%d" % i, b"1") for i in range(1100)], BIG),
    }


def test_malformed_headers(hg, httpd_factory, store, proxy, small_repo, tmp_dir):
    conf = LIMIT_FIELDS + CASE_LOG + store.location_conf(small_repo, endpoint=proxy.endpoint,
                                                         Header=True)
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf,
                          log_level=LOG_LEVEL)
    plain = httpd_factory(repos={"repo": small_repo}, extra_conf=LIMIT_FIELDS)
    # httpd's refusals of bad header lines (info/debug ids; allowed whatever
    # their level), and hgweb's complaints about unknown arguments.
    for h in (httpd, plain):
        h.allow_log(r"AH02429", r"AH02430", r"AH00561", r"AH00567", r"AH02427", r"AH10240",
                    r"\[wsgi:error\].*(ignored unexpected arguments|warning)")
    args = clone_args(hg, small_repo)
    long_args = clone_args(hg, small_repo, extra_common=fake_nodes(40))
    huge_args = clone_args(hg, small_repo, extra_common=fake_nodes(6500, seed=7))
    cases = _malformed_cases(args, HG_PROTO, long_args, huge_args)

    # The long arguments are a valid request whose answer is the clone's.
    s_ok, _, b_ok = plain.get("/repo?cmd=getbundle", headers=getbundle_headers(long_args))
    s_ref, _, b_ref = plain.get("/repo?cmd=getbundle", headers=getbundle_headers(args))
    assert s_ok == s_ref == 200 and b_ok == b_ref and b_ref[:5] == b"\x04zstd"

    results = {}
    target = b"/repo?cmd=getbundle"
    for name, (headers, want) in cases.items():
        headers = [(b"X-Case", name.encode())] + headers
        got = raw_request(httpd.port, request_head(httpd.port, target, headers))
        ref = raw_request(plain.port, request_head(plain.port, target, headers))
        results[name] = (got, ref, want)
        assert got[0] == ref[0], (name, got[0], ref[0], got[2][:300], ref[2][:300])
        assert got[2] == ref[2], (name, got[2][:300], ref[2][:300])
        assert got[1].get("content-type") == ref[1].get("content-type"), (name, got[1], ref[1])
        assert "location" not in got[1], (name, got[1])
    assert_no_crash(httpd)

    # What the module noted: one case_log line per request (the cases, the
    # start-up probe and assert_no_crash's server-status).
    case_log = httpd.logs_dir / "case_log"
    E.wait_until(lambda: len(case_log.read_text().splitlines()) >= len(cases) + 2, 10,
                 what="case_log lines")
    notes = {}
    for line in case_log.read_text().splitlines():
        name, note, _ = line.split("\t")
        notes[name] = None if note == "-" else note
    for name, (got, ref, want) in results.items():
        note = notes.get(name)
        assert note in want, (name, note, want, got[0])
        # (a miss's final note may come after its headers went out)
        sent = {"miss", note} if note and note.startswith("miss") else {note}
        assert got[1].get("x-hgs3cache") in sent, (name, got[1], note)
    # Only a request the module took (noted miss...) may have a key.
    took = [n for n in notes.values() if n and n.startswith("miss")]
    assert len(key_lines(httpd)) == len(took), (key_lines(httpd), notes)
    # Several cases must have reached the module and been refused by it.
    assert sum(1 for n in notes.values() if n == "bypass:malformed") >= 8, notes
    assert sum(1 for n in notes.values() if n == "bypass:too-large") >= 5, notes
    time.sleep(SETTLE)
    # The store heard only lookups of the keys the module took.
    took_keys = {k["key"] for k in key_lines(httpd)}
    assert all(r["method"] == "HEAD" and r["path"].rsplit("/", 1)[-1] in took_keys
               for r in proxy.requests), [(r["method"], r["path"]) for r in proxy.requests]
    assert store.keys() == []

    # Control: the well-formed request is cached by the same instance.
    status, hdrs, body = httpd.get("/repo?cmd=getbundle", headers=getbundle_headers(args))
    assert (status, hdrs.get("x-hgs3cache")) == (200, "miss") and body == b_ref
    k = key_lines(httpd)[-1]
    assert len(key_lines(httpd)) == len(took) + 1
    assert wait_objects(store) == [PREFIX + k["key"]]
    assert_no_crash(httpd)


# --- secrets never shown -------------------------------------------------------------
S3_ERROR_500 = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
                b"<Message>We encountered an internal error.</Message>"
                b"<RequestId>hgs3-test</RequestId></Error>")


class Seen:
    """Everything a client or an operator can read: response headers and
    bodies, and (collected at the end) logs and configtest output."""

    def __init__(self):
        self.items = []                        # (where, text)
        self.locations = []                    # presigned URLs handed out

    def response(self, what, status, hdrs, body):
        self.items.append((f"{what}: status line", str(status)))
        for k, v in hdrs.items():
            self.items.append((f"{what}: header {k}", v))
            if k == "location":
                self.locations.append(v)
        self.items.append((f"{what}: body", body.decode("latin-1")))

    def text(self, what, text):
        self.items.append((what, text))

    def leaks(self, secret, allow_in_locations=False):
        """Where secret shows up. With allow_in_locations, its occurrences
        inside the presigned URLs the module handed out do not count (a
        session token must travel in X-Amz-Security-Token)."""
        out = []
        for where, text in self.items:
            if allow_in_locations:
                for loc in self.locations:
                    text = text.replace(loc, "<presigned URL>")
            if secret in text:
                i = text.index(secret)
                out.append(f"{where}: ...{text[max(0, i - 80):i + 80]!r}...")
        return out


def _fetch(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_secrets_never_shown(hg, httpd_factory, store, proxy, small_repo, tmp_dir):
    token = "HGS3TOKEN" + os.urandom(12).hex()
    wrong_secret = "HGS3WRONGSECRET" + os.urandom(12).hex()
    # s3rver's secret is its access key id ("S3RVER"), which presigned URLs
    # and Authorization headers carry by design: it cannot be told apart.
    secrets = [token, wrong_secret]
    if store.secret_key not in store.access_key and store.secret_key not in store.bucket:
        secrets.append(store.secret_key)
    seen = Seen()
    level = "trace8"
    base = dict(endpoint=proxy.endpoint, SessionToken=token, Header=True)
    conf = store.location_conf(small_repo, **base)
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf,
                          log_level=level)
    httpd.allow_log(r"HGS300401", r"HGS300402", r"HGS300201", r"HGS300404")

    # 1. a miss, stored
    r = hg.clone(httpd.repo_url("repo"), tmp_dir / "c1", "-U")
    assert r.ok, r
    seen.text("hg clone output", r.stdout + r.stderr)
    (key,) = wait_objects(store)
    body, _, _ = store.get(key)
    headers = last_replay_headers(httpd)
    # The module sent the token to the store (so it had it to leak).
    assert any(proxy.header(rec, "X-Amz-Security-Token") == token for rec in proxy.requests)

    # 2. a hit, redirected: the URL carries the token (temporary credentials
    # need it), never the secret; it works.
    status, hdrs, got = httpd.get("/repo?cmd=getbundle", headers=headers)
    seen.response("hit-redirect", status, hdrs, got)
    assert (status, hdrs.get("x-hgs3cache")) == (302, "hit-redirect"), (status, hdrs)
    loc = hdrs["location"]
    assert "X-Amz-Security-Token=" + token in loc and "X-Amz-Signature=" in loc, loc
    s2, h2, b2 = _fetch(loc)
    assert s2 == 200 and b2 == body, (s2, b2[:200])

    # 3. a hit, streamed (the request carries Authorization)
    status, hdrs, got = httpd.get("/repo?cmd=getbundle",
                                  headers={**headers, "Authorization": basic("alice")})
    seen.response("hit-stream", status, hdrs, got)
    assert (status, hdrs.get("x-hgs3cache")) == (200, "hit-stream") and got == body

    # 4. store failures: lookups answered 500, then an upload refused
    proxy.add_rule("status", method="HEAD", status=500, body=S3_ERROR_500,
                   headers={"Content-Type": "application/xml"}, times=1)
    status, hdrs, got = httpd.get("/repo?cmd=getbundle",
                                  headers={**headers, "X-HgProto-1": "0.1 0.2 comp=zlib,none"})
    seen.response("store-error", status, hdrs, got)
    assert (status, hdrs.get("x-hgs3cache")) == (200, "bypass:store-error"), (status, hdrs)

    # 5. wrong credentials: the store refuses the lookup (HEAD 403, and the
    # GET that asks why says the signature is wrong): a store failure,
    # answered by hgweb, logged, and nothing is uploaded
    wrong = httpd_factory(repos={"repo": small_repo}, module=True, log_level=level,
                          extra_conf=hgs3cache_location(
                              "/repo", small_repo, bucket=store.bucket, endpoint=proxy.endpoint,
                              region=store.region, access_key=store.access_key,
                              secret_key=wrong_secret, SessionToken=token, Header=True))
    wrong.allow_log(r"HGS300402", r"HGS300401")
    puts = len(proxy.find("PUT"))
    heads = len(proxy.find("HEAD"))
    status, hdrs, got = wrong.get("/repo?cmd=getbundle", headers=headers)
    seen.response("wrong-secret lookup", status, hdrs, got)
    assert status == 200 and got == body, (status, got[:200])
    assert hdrs.get("x-hgs3cache") == "bypass:store-auth", hdrs
    refused = proxy.find("HEAD")[heads:]
    assert refused and all(r["status"] == 403 for r in refused), refused
    assert len(proxy.find("PUT")) == puts, "an upload was attempted with refused credentials"
    E.wait_until(lambda: wrong.error_log.grep(r"HGS30040[12]", since_mark=False), 10,
                 what="the store failure warning")
    # 404 and other error pages
    for path in ("/repo?cmd=nosuchcmd", "/nonexistent?cmd=getbundle", "/repo/x?cmd=getbundle"):
        status, hdrs, got = httpd.get(path, headers=headers)
        seen.response(path, status, hdrs, got)
    status, hdrs, got = httpd.get("/server-status")
    seen.response("server-status", status, hdrs, got)

    # 6. configtest errors, with the secret and token configured
    for i, bad in enumerate(["    HgS3CacheURLExpiry 0\n",
                             "    HgS3CacheSessionToken \"bad token\"\n",
                             f"    HgS3CacheSecretAccessKey \"{wrong_secret} x\"\n",
                             "    HgS3CacheBucket BAD_BUCKET\n",
                             "    HgS3CacheEndpoint http://u:" + wrong_secret + "@h/\n"]):
        ct = httpd_factory(start=False, repos={"repo": small_repo}, module=True, log_level=level,
                           extra_conf=conf.replace("</Location>", bad + "</Location>"))
        rc, out = ct.configtest()
        assert rc != 0, (bad, out)
        seen.text(f"configtest {i}", out)
    missing = conf.replace(f"HgS3CacheAccessKeyId {store.access_key}", "")
    missing = missing.replace(f'HgS3CacheAccessKeyId "{store.access_key}"', "")
    ct = httpd_factory(start=False, repos={"repo": small_repo}, module=True, log_level=level,
                       extra_conf=missing)
    rc, out = ct.configtest()
    assert rc != 0 and "HGS3" in out, out
    seen.text("configtest missing key id", out)

    assert_no_crash(httpd)
    assert_no_crash(wrong)
    logs = []
    for h in (httpd, wrong):
        h.stop()
        for path in sorted(h.logs_dir.iterdir()):
            logs.append(path.read_text(errors="replace"))
            seen.text(f"log {h.dir.name}/{path.name}", logs[-1])
    # The logs did record the requests at trace level (the check has teeth).
    all_logs = "\n".join(logs)
    assert "hgs3cache: key" in all_logs and "[hgs3cache:trace1]" in all_logs
    assert "[core:trace8]" in all_logs or "[http:trace8]" in all_logs or ":trace8]" in all_logs
    assert "HGS300401" in all_logs or "HGS300402" in all_logs, \
        "the refused lookup was not logged"
    # (the access key id may be shown: presigned URLs carry it, URL-encoded)
    assert urllib.parse.quote(store.access_key, safe="") in all_logs

    for s in secrets:
        assert seen.leaks(s, allow_in_locations=(s == token)) == [], s
    # The search does find what is there: the token inside the presigned
    # URL, in the Location header and in the access log.
    found = seen.leaks(token)
    assert any("header location" in f for f in found), found
    assert any("access_log" in f for f in found), found


# --- presigned URLs expire -------------------------------------------------------------
def _redirect(httpd, headers):
    status, hdrs, _ = httpd.get("/repo?cmd=getbundle", headers=headers)
    assert (status, hdrs.get("x-hgs3cache")) == (302, "hit-redirect"), (status, hdrs)
    assert hdrs["cache-control"] == "no-store"
    assert "X-Amz-Expires=1&" in hdrs["location"] or hdrs["location"].endswith("X-Amz-Expires=1")
    return hdrs["location"]


def _early_in_second():
    """Wait until the wall clock is in the first 0.3 s of a second, so a URL
    signed now (X-Amz-Date has whole seconds) has most of its second left."""
    frac = time.time() % 1
    if frac > 0.3:
        time.sleep(1.02 - frac)


def test_presigned_url_expires(hg, httpd_factory, store, small_repo, tmp_dir):
    conf = store.location_conf(small_repo, URLExpiry=1, HitMode="redirect", Header=True)
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf,
                          log_level=LOG_LEVEL)
    r = hg.clone(httpd.repo_url("repo"), tmp_dir / "c1", "-U")
    assert r.ok, r
    (key,) = wait_objects(store)
    body, _, _ = store.get(key)
    headers = last_replay_headers(httpd)

    _early_in_second()
    old = _redirect(httpd, headers)
    status, _, got = _fetch(old)
    assert status == 200 and got == body, (status, got[:300])   # fresh: works
    time.sleep(2.5)
    status, _, got = _fetch(old)
    assert status == 403, (status, got[:300])                   # expired: refused
    assert got != body

    _early_in_second()
    fresh = _redirect(httpd, headers)
    assert fresh != old
    status, _, got = _fetch(fresh)
    assert status == 200 and got == body, (status, got[:300])
