"""The cache key, seen from outside: real httpd, hgweb (mod_wsgi daemon), the
real hg client and the built module.

For each eligible request the module logs, at LogLevel debug,
    hgs3cache: key <64 hex> for <repository realpath> cmd=<cmd>
and the object it stores is HgS3CacheKeyPrefix followed by that key. The
tests check that:
  - the same repository state and the same request give the same key (also
    across front ends), whatever way the X-HgArg value is split;
  - every change that can change a response gives a new key: a push, a
    bookmark move, a phase change, an obsmarker, a strip, an hgrc edit;
  - the repository, the X-HgProto-1 capabilities, HgS3CacheKeySalt and the
    authenticated user (unless HgS3CacheShareAcrossUsers on) are in the key;
  - an ineligible request gets no key and no cache action.
"""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from pyhgs3 import env as E
from pyhgs3.auth import auth_location, user_url, write_htpasswd
from pyhgs3.checks import key_lines, wait_objects
from pyhgs3.hg import copy_repo, hgdate

LOG_LEVEL = "info hgs3cache:debug"
# The notes of a request the handler took (miss now, hit once lookups exist).
ELIGIBLE_NOTE = re.compile(
    r"^(miss|miss-store-skipped:[a-z0-9-]+|hit-redirect|hit-stream|hit-inline)$")
ZERO = "0" * 40
# The small repository's draft head without a bookmark (child of "stable").
DRAFT_HEAD = "heads(descendants(stable))"

# Every header value of a getbundle as the server received it, so a test can
# replay exactly what a real clone sent.
ARGS_LOG = "getbundle_args"
ARGS_LOG_CONF = (
    'LogFormat "%m\\t%U%q\\t%{X-HgArg-1}i\\t%{X-HgArg-2}i\\t%{X-HgArg-3}i'
    '\\t%{X-HgArg-4}i\\t%{X-HgProto-1}i" hgargs\n'
    'CustomLog "logs/' + ARGS_LOG + '" hgargs\n')


# --- helpers ------------------------------------------------------------------
class KeyWatch:
    """The key lines an instance writes from now on."""

    def __init__(self, httpd):
        self.httpd = httpd
        self.seen = len(key_lines(httpd))

    def new(self):
        lines = key_lines(self.httpd)
        fresh, self.seen = lines[self.seen:], len(lines)
        return fresh

    def one(self, repo, cmd="getbundle"):
        """The single key of cmd logged since the last call, for repo (the
        small commands kept inline have keys of their own)."""
        fresh = [line for line in self.new() if line["cmd"] == cmd]
        assert len(fresh) == 1, f"expected one key line, got {fresh}"
        line = fresh[0]
        assert line["repo"] == os.path.realpath(repo), (line["repo"], repo)
        assert line["cmd"] == cmd, fresh
        return line["key"]


def visible(hg, repo):
    """Sorted '<node> <phase> <bookmarks>' of the changesets a clone gets."""
    r = hg.run("log", "-R", repo, "-T", "{node} {phase} {bookmarks}\\n", check=True)
    lines = sorted(r.stdout.splitlines())
    assert lines, f"{repo} has no changesets"
    return lines


def _wait_list(get, count, what):
    """get() once it returns a list of at least count items (httpd writes the
    access log after answering, so a client can be faster than the log)."""
    box = []
    E.wait_until(lambda: box.append(get()) or len(box[-1]) >= count, 10, what=what)
    return box[-1]


def getbundles(httpd, path="/repo", count=0):
    """Access log entries of the getbundles to path that were answered (by
    hgweb, or from the store: a stream or a redirect), not refused."""
    rx = "^" + re.escape(path) + r"\?cmd=getbundle"
    return _wait_list(lambda: [e for e in httpd.access_log.find(None, rx)
                               if e["status"] in (200, 302, 303)],
                      count, f"{count} getbundles of {path} in the access log")


def log_entries(httpd, start, count):
    """The access log entries from index start on, once there are count."""
    return _wait_list(lambda: httpd.access_log.entries()[start:], count,
                      f"{count} access log entries")


def assert_eligible(entry):
    assert entry["note"] and ELIGIBLE_NOTE.match(entry["note"]), entry


def clone_key(hg, httpd, watch, repo, dest, url=None, path="/repo", extra=()):
    """Clone (no working copy) and return the key of its getbundle."""
    before = len(getbundles(httpd, path))
    r = hg.run(*extra, "clone", "-U", url or httpd.url + path, dest)
    assert r.ok, r
    gbs = getbundles(httpd, path, before + 1)
    assert len(gbs) == before + 1, gbs[before:]
    assert_eligible(gbs[-1])
    return watch.one(repo)


# module_httpd(repo, ..., **DEBUG): the key lines in the error log.
DEBUG = dict(log_level=LOG_LEVEL)


# --- same state, same request: same key ----------------------------------------------
def test_unchanged_repo_same_key(hg, module_httpd, store, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, **DEBUG)
    watch = KeyWatch(httpd)
    k1 = clone_key(hg, httpd, watch, small_repo, tmp_dir / "c1")
    k2 = clone_key(hg, httpd, watch, small_repo, tmp_dir / "c2")
    assert k1 == k2
    hg.assert_same_history(small_repo, tmp_dir / "c2")
    # capabilities and batch have keys too (kept inline): the same ones twice
    lines = key_lines(httpd)
    assert [k["cmd"] for k in lines] == ["capabilities", "batch", "getbundle"] * 2, lines
    assert [k["key"] for k in lines[:3]] == [k["key"] for k in lines[3:]], lines
    caps = _wait_list(lambda: httpd.access_log.find("GET", r"^/repo\?cmd=capabilities$"), 2,
                      "2 capabilities")
    assert sorted(e["note"] for e in caps) == ["hit-inline", "miss"], caps


def test_key_is_object_name(hg, module_httpd, store, small_repo, tmp_dir):
    """The stored object is HgS3CacheKeyPrefix + key; the prefix is not part
    of the key, so the default prefix names the same key."""
    httpd = module_httpd(small_repo, KeyPrefix="custom/pfx-", **DEBUG)
    key = clone_key(hg, httpd, KeyWatch(httpd), small_repo, tmp_dir / "c1")
    assert wait_objects(store, prefix="custom/") == ["custom/pfx-" + key]
    body, ctype, _ = store.get("custom/pfx-" + key)
    assert ctype == "application/mercurial-0.2"
    assert len(body) == getbundles(httpd)[-1]["bytes"]

    other = module_httpd(small_repo, **DEBUG)
    assert clone_key(hg, other, KeyWatch(other), small_repo, tmp_dir / "c2") == key
    assert "hgcache/" + key in wait_objects(store, prefix="hgcache/")


def test_front_ends_and_salt(hg, module_httpd, store, small_repo, tmp_dir):
    """Two front ends with the same configuration compute the same key (they
    share one bucket); HgS3CacheKeySalt changes it."""
    keys = {}
    for name, salt in (("plain", None), ("plain2", None), ("a", "salt-a"), ("a2", "salt-a"),
                       ("b", "salt-b")):
        httpd = module_httpd(small_repo, KeySalt=salt, **DEBUG)
        keys[name] = clone_key(hg, httpd, KeyWatch(httpd), small_repo, tmp_dir / name)
        httpd.stop()
    assert keys["plain"] == keys["plain2"]
    assert keys["a"] == keys["a2"]
    assert len({keys["plain"], keys["a"], keys["b"]}) == 3, keys


# --- every state change: a new key --------------------------------------------------
def _push(hg, httpd, repo, tmp_dir, watch):
    work = tmp_dir / "work"
    hg.clone(httpd.url + "/repo", work, check=True)
    watch.new()                                   # the work clone's own getbundle
    hg.run("update", "-R", work, "-r", DRAFT_HEAD, check=True)
    node = hg.commit(work, {"pushed.txt": "pushed over http\n"}, "pushed", hgdate(20))
    r = hg.push(work, httpd.url + "/repo")
    assert r.ok, r
    # A push is no getbundle: it got no key (its capabilities and batch did).
    assert [line for line in watch.new() if line["cmd"] == "getbundle"] == []
    assert node in hg.heads(repo)


def _bookmark(hg, httpd, repo, tmp_dir, watch):
    heads = hg.heads(repo)
    target = hg.run("log", "-R", repo, "-r", DRAFT_HEAD, "-T", "{node}", check=True).stdout
    assert hg.bookmarks(repo)["stable"] != target
    hg.run("bookmark", "-R", repo, "-f", "-r", target, "stable", check=True, as_server=True)
    assert hg.bookmarks(repo)["stable"] == target
    assert hg.heads(repo) == heads                # only the bookmark moved


def _phase(hg, httpd, repo, tmp_dir, watch):
    assert "draft" in hg.run("log", "-R", repo, "-r", "feature", "-T", "{phase}").stdout
    hg.run("phase", "-R", repo, "--public", "-r", "feature", check=True, as_server=True)
    assert hg.run("log", "-R", repo, "-r", "feature", "-T", "{phase}").stdout == "public"


EVOLUTION = ("--config", "experimental.evolution=all")
# A precursor no repository has: a marker "FAKE rewritten as <existing node>"
# hides nothing and leaves the heads (so the clone's request) unchanged, but
# an evolution-enabled client receives it in the bundle.
FAKE_PRECURSOR = "f0" * 20


def _prune(hg, httpd, repo, tmp_dir, watch):
    node = hg.run("log", "-R", repo, "-r", DRAFT_HEAD, "-T", "{node}", check=True).stdout
    hg.run(*EVOLUTION, "debugobsolete", "-R", repo, node, check=True, as_server=True)
    assert (Path(repo) / ".hg" / "store" / "obsstore").stat().st_size > 0
    assert node not in hg.heads(repo)             # now hidden


def _obsmarker(hg, httpd, repo, tmp_dir, watch):
    heads = hg.heads(repo)
    node = hg.run("log", "-R", repo, "-r", DRAFT_HEAD, "-T", "{node}", check=True).stdout
    hg.run(*EVOLUTION, "debugobsolete", "-R", repo, FAKE_PRECURSOR, node, check=True,
           as_server=True)
    assert FAKE_PRECURSOR in markers(hg, repo)
    assert hg.heads(repo) == heads


def markers(hg, repo):
    return hg.run(*EVOLUTION, "debugobsolete", "-R", repo, check=True).stdout


def _strip(hg, httpd, repo, tmp_dir, watch):
    heads = hg.heads(repo)
    node = hg.run("log", "-R", repo, "-r", DRAFT_HEAD, "-T", "{node}", check=True).stdout
    hg.run("--config", "extensions.strip=", "strip", "-R", repo, "--no-backup", "-r", node,
           check=True, as_server=True)
    after = hg.heads(repo)
    assert node in heads and node not in after and len(after) == len(heads), (heads, after)


def _hgrc(hg, httpd, repo, tmp_dir, watch):
    hgrc = Path(repo) / ".hg" / "hgrc"
    with open(hgrc, "a") as f:
        f.write("# edited by the key test\n")


def _enable_evolution(repo):
    """hgweb must know obsmarkers are on before it sees any (else it warns,
    and under mod_wsgi that warning raises): set before the first clone."""
    with open(Path(repo) / ".hg" / "hgrc", "a") as f:
        f.write("[experimental]\nevolution = all\n")


CHANGES = {"push": _push, "bookmark": _bookmark, "phase": _phase, "obsmarker-prune": _prune,
           "obsmarker": _obsmarker, "strip": _strip, "hgrc": _hgrc}
PREPARE = {"obsmarker-prune": _enable_evolution, "obsmarker": _enable_evolution}
# Changes after which a clone sends exactly the same request as before: only
# the repository state can make the key differ.
SAME_REQUEST = {"bookmark", "phase", "obsmarker", "hgrc"}


@pytest.mark.parametrize("change", list(CHANGES))
def test_state_change_new_key(hg, module_httpd, store, small_repo, tmp_dir, change):
    if change in PREPARE:
        PREPARE[change](small_repo)
    # The clients exchange obsmarkers when the server does.
    extra = EVOLUTION if change in PREPARE else ()
    httpd = module_httpd(small_repo, **DEBUG)
    watch = KeyWatch(httpd)
    before = clone_key(hg, httpd, watch, small_repo, tmp_dir / "before", extra=extra)
    CHANGES[change](hg, httpd, small_repo, tmp_dir, watch)
    after = clone_key(hg, httpd, watch, small_repo, tmp_dir / "after", extra=extra)
    assert after != before, f"{change} left the key unchanged: {before}"
    # The new key is stable while nothing changes, and names the new state.
    assert clone_key(hg, httpd, watch, small_repo, tmp_dir / "again", extra=extra) == after
    gbs = getbundles(httpd)
    if change in SAME_REQUEST:
        assert (gbs[0]["hgarg1"], gbs[0]["hgproto"]) == (gbs[-2]["hgarg1"], gbs[-2]["hgproto"])

    for dest in ("before", "after", "again"):
        hg.assert_verify_clean(tmp_dir / dest)
    assert visible(hg, tmp_dir / "after") == visible(hg, small_repo)
    assert visible(hg, tmp_dir / "again") == visible(hg, small_repo)
    if change == "obsmarker":
        assert FAKE_PRECURSOR not in markers(hg, tmp_dir / "before")
        assert FAKE_PRECURSOR in markers(hg, tmp_dir / "after")
        assert FAKE_PRECURSOR in markers(hg, tmp_dir / "again")
    elif change != "hgrc":
        assert visible(hg, tmp_dir / "before") != visible(hg, small_repo)


def test_nochange_pull_then_bookmark_move(hg, module_httpd, store, small_repo, tmp_dir):
    """A pull that brings no changesets is a getbundle too (cg=0); a bookmark
    move with the same heads must give it a new key."""
    httpd = module_httpd(small_repo, **DEBUG)
    watch = KeyWatch(httpd)
    dest = tmp_dir / "c"
    clone_key(hg, httpd, watch, small_repo, dest)
    keys = []
    for _ in range(2):
        assert hg.pull(dest, httpd.url + "/repo").ok
        keys.append(watch.one(small_repo))
    assert keys[0] == keys[1]
    _bookmark(hg, httpd, small_repo, tmp_dir, watch)
    r = hg.pull(dest, httpd.url + "/repo")
    assert r.ok, r
    moved = watch.one(small_repo)
    assert moved != keys[0]
    assert hg.bookmarks(dest) == hg.bookmarks(small_repo)
    notes = [e["note"] for e in getbundles(httpd, count=4)]
    assert len(notes) == 4 and all(ELIGIBLE_NOTE.match(n or "") for n in notes), notes


# --- collections ------------------------------------------------------------------
def _collection(tmp_dir, small_repo_template, names):
    root = tmp_dir / "root"
    root.mkdir()
    for name in names:
        copy_repo(small_repo_template, root / name)
    return root


def _start_collection(httpd_factory, store, root, endpoint=None, extra_conf=""):
    conf = extra_conf + store.location_conf(None, location="/hgroot", endpoint=endpoint,
                                            RepositoryRoot=root)
    return httpd_factory(repos={"hgroot": f"{root}/**"}, module=True, extra_conf=conf,
                         log_level=LOG_LEVEL)


def test_collection_repos_differ(hg, httpd_factory, store, small_repo_template, tmp_dir):
    root = _collection(tmp_dir, small_repo_template, ["a", "b", "group/c"])
    # "linked" shares every file with "a" (cp -al): the same state fingerprint
    # to the inode, so only the repository's directory tells the two apart.
    subprocess.run(["cp", "-al", str(root / "a"), str(root / "linked")], check=True)
    assert os.stat(root / "linked/.hg/bookmarks").st_ino == os.stat(root / "a/.hg/bookmarks").st_ino
    names = ("a", "b", "group/c", "linked")
    httpd = _start_collection(httpd_factory, store, root)
    watch = KeyWatch(httpd)
    keys = {}
    for name in names:
        dest = tmp_dir / name.replace("/", "-")
        keys[name] = clone_key(hg, httpd, watch, root / name, dest, path="/hgroot/" + name)
        hg.assert_same_history(root / name, dest)
    # Identical histories, identical requests, yet four repositories.
    assert all(hg.history(root / n) == hg.history(root / "a") for n in names)
    gbs = httpd.access_log.find("GET", r"^/hgroot/.*\?cmd=getbundle$")
    assert len(gbs) == len(names) and len({e["hgarg1"] for e in gbs}) == 1, gbs
    assert len(set(keys.values())) == len(names), keys
    # And each is stable.
    assert clone_key(hg, httpd, watch, root / "a", tmp_dir / "a2", path="/hgroot/a") == keys["a"]


def test_ineligible_requests(hg, httpd_factory, store, proxy, small_repo_template, tmp_dir):
    """Requests that are not eligible get no key line, a bypass note (or none
    when outside the Location) and no store traffic or object."""
    root = _collection(tmp_dir, small_repo_template, ["a"])
    (root / "plain").mkdir()
    (root / "plain" / "file").write_text("not a repository\n")
    outside = copy_repo(small_repo_template, tmp_dir / "outside")
    os.symlink(outside, root / "evil")
    E.make_world_readable(root)
    # Let encoded slashes reach the handler, so the module's own check is tested.
    httpd = _start_collection(httpd_factory, store, root, endpoint=proxy.endpoint,
                              extra_conf="AllowEncodedSlashes NoDecode\n")
    watch = KeyWatch(httpd)

    # What a real clone of /hgroot/a sends, replayed elsewhere.
    r = hg.clone(httpd.url + "/hgroot/a", tmp_dir / "probe", "-U")   # control: eligible
    assert r.ok, r
    control = watch.one(root / "a")
    (gb,) = getbundles(httpd, "/hgroot/a", 1)
    assert_eligible(gb)
    headers = {"X-HgArg-1": gb["hgarg1"], "X-HgProto-1": gb["hgproto"]}
    assert len(gb["hgarg1"]) < 1024, "the clone's arguments did not fit in X-HgArg-1"

    targets = {
        "/hgroot/a?cmd=clonebundles": "bypass:command",
        "/hgroot/a?cmd=unbundle": "bypass:command",
        "/hgroot/a/..%2fevil?cmd=getbundle": "bypass:",
        "/hgroot/a%2f..%2fevil?cmd=getbundle": "bypass:",
        "/hgroot/evil?cmd=getbundle": "bypass:repository",      # symlink out of the root
        "/hgroot/plain?cmd=getbundle": "bypass:repository",     # not a repository
        "/hgroot/nonexistent?cmd=getbundle": "bypass:repository",
        "/hgroot/a/sub?cmd=getbundle": "bypass:repository",     # below a repository
        "/hgroot/%2e%2e/x?cmd=getbundle": None,                 # Apache: /x, outside
    }
    entries_before = len(httpd.access_log.entries())
    for target in targets:
        status, _, _ = httpd.get(target, headers=headers)
        assert status != 500, target
    assert watch.new() == [], "an ineligible request got a key"
    entries = log_entries(httpd, entries_before, len(targets))
    assert len(entries) == len(targets)
    # httpd logs after answering, so match entries by request line, not order.
    by_target = {e["request"].split()[1]: e for e in entries}
    assert sorted(by_target) == sorted(targets), by_target.keys()
    for target, want in targets.items():
        e = by_target[target]
        if want is None:
            assert e["note"] is None or e["note"].startswith("bypass:"), (target, e)
        else:
            assert e["note"] and e["note"].startswith(want), (target, e)
    # hgweb itself serves the symlinked repository; only the module refuses it.
    assert by_target["/hgroot/evil?cmd=getbundle"]["status"] == 200
    assert by_target["/hgroot/%2e%2e/x?cmd=getbundle"]["target"] == "/x?cmd=getbundle"

    # The control's object is stored; nothing else ever reached the store.
    assert wait_objects(store, prefix="hgcache/") == ["hgcache/" + control]
    time.sleep(0.5)
    assert store.keys() == ["hgcache/" + control]
    assert proxy.requests, "the control request never reached the store"
    assert all(control in rec["path"] for rec in proxy.requests), \
        [(rec["method"], rec["path"]) for rec in proxy.requests]


# --- the request's own parts ---------------------------------------------------------
def _recorded_args(httpd):
    """(X-HgArg value, X-HgProto-1) of the last getbundle a client sent."""
    lines = (httpd.dir / "logs" / ARGS_LOG).read_text().splitlines()
    last = [ln.split("\t") for ln in lines if "cmd=getbundle" in ln][-1]
    args = "".join(v for v in last[2:6] if v != "-")
    return args, last[6]


def test_request_parts(hg, module_httpd, store, small_repo, tmp_dir):
    # Hits are streamed, so every answer below has a body to compare.
    httpd = module_httpd(small_repo, extra_conf=ARGS_LOG_CONF, HitMode="stream", **DEBUG)
    watch = KeyWatch(httpd)
    clone = clone_key(hg, httpd, watch, small_repo, tmp_dir / "c")
    args, proto = _recorded_args(httpd)
    assert "heads=" in args and "common=" + ZERO in args and "bundlecaps=" in args, args
    assert proto.startswith("0.1 0.2 comp=zstd,"), proto
    assert len(args) > 400

    def send(*parts, proto=proto, path="/repo?cmd=getbundle", ctype="application/mercurial-0.2"):
        headers = {f"X-HgArg-{i}": v for i, v in enumerate(parts, 1)}
        headers["X-HgProto-1"] = proto
        status, hdrs, body = httpd.get(path, headers=headers)
        assert status == 200, (status, body[:200])
        assert hdrs["content-type"] == ctype
        return watch.one(small_repo), body

    # The same request as the clone's gives the clone's key (User-Agent,
    # Accept and the like are not in the key), twice.
    k1, body1 = send(args)
    k2, body2 = send(args)
    assert k1 == k2 == clone
    assert body1 == body2
    # The same arguments split at other boundaries: the same request.
    for cut in (100, 301, len(args) // 2):
        k, body = send(args[:cut], args[cut:])
        assert k == clone, cut
        assert body == body1
    k, body = send(args[:7], args[7:200], args[200:])
    assert k == clone and body == body1

    # Other compression lists: other responses, other keys.
    kz, bz = send(args, proto="0.1 0.2 comp=zlib,none")
    # (With "none" alone hgweb answers uncompressed mercurial-0.1.)
    kn, bn = send(args, proto="0.1 0.2 comp=none", ctype="application/mercurial-0.1")
    assert body1[:5] == b"\x04zstd", body1[:8]
    assert bz[:5] == b"\x04zlib", bz[:8]
    assert len({body1, bz, bn}) == 3
    assert len({clone, kz, kn}) == 3

    # Other arguments: another response, another key.
    stable = hg.run("log", "-R", small_repo, "-r", "stable", "-T", "{node}", check=True).stdout
    heads = re.compile(r"heads=[0-9a-fA-F+%]+")
    assert len(heads.findall(args)) == 1, args
    ko, bo = send(heads.sub("heads=" + stable, args))
    assert bo != body1
    assert ko not in (clone, kz, kn)
    # Arguments in the query string are in the key too: hgweb reads them
    # when the headers do not carry them.
    rest = heads.sub("", args).replace("&&", "&").strip("&")
    kq1, bq1 = send(rest, path="/repo?cmd=getbundle&heads=" + stable)
    kq2, bq2 = send(rest, path="/repo?cmd=getbundle&" + heads.search(args).group(0))
    assert bq1 == bo and bq2 == body1          # hgweb read the query's heads
    assert len({kq1, kq2, clone, ko}) == 4

    notes = [e["note"] for e in getbundles(httpd, count=12)]
    assert len(notes) == 1 + 2 + 4 + 2 + 1 + 2
    assert all(ELIGIBLE_NOTE.match(n or "") for n in notes), notes


# --- users -------------------------------------------------------------------------
USERS = {"alice": "alice-pw", "bob": "bob-pw"}


def _htpasswd(tmp_dir):
    return write_htpasswd(tmp_dir / "htpasswd", USERS)


@pytest.mark.parametrize("share", [False, True], ids=["separate", "shared"])
def test_users(hg, module_httpd, store, small_repo, tmp_dir, share):
    httpd = module_httpd(small_repo,
                         extra_conf=auth_location("/repo", _htpasswd(tmp_dir)),
                         ShareAcrossUsers=share, **DEBUG)
    watch = KeyWatch(httpd)
    keys = {}
    for i, user in enumerate(["alice", "bob", "alice"]):
        keys.setdefault(user, []).append(
            clone_key(hg, httpd, watch, small_repo, tmp_dir / f"{user}{i}",
                      url=user_url(httpd, USERS, user)))
    users = [e["user"] for e in getbundles(httpd, count=3)]
    assert users == ["alice", "bob", "alice"], users
    assert keys["alice"][0] == keys["alice"][1]
    if share:
        assert keys["alice"][0] == keys["bob"][0]
    else:
        assert keys["alice"][0] != keys["bob"][0]
    # Without credentials nothing is served, and no key is computed.
    status, _, _ = httpd.get("/repo?cmd=getbundle")
    assert status == 401
    assert watch.new() == []
