"""Small replies kept inline in the presence cache (SPEC "Small replies").

Real httpd + hgweb (mod_wsgi daemon and CGI) + the real hg client +
mod_hgs3cache, against both strict S3 stores. hgweb is instrumented (the
WSGI wrapper of test_hit.py, also put in front of the CGI launcher), so
every request that reaches hgweb is counted inside hgweb itself.

What is checked:
- a hit clone and a no-op pull of an unchanged repository never wake
  hgweb: capabilities, batch and getbundle are all hit-*; both verify;
- never stale: a push, a commit, a bookmark move, a phase change, an
  obsmarker, a strip, `hg tag --local`, a clonebundles.manifest, a
  repository hgrc change and the same change in hgweb.config (listed in
  HgS3CacheConfigFiles) are seen by the next pull, clone or command of a
  client whose small replies were warmed by earlier ones;
- two httpd sharing a memcache presence cache share the small replies;
- boundaries: a batch with a command outside the list is never cached,
  replies above HgS3CacheInlineMax are not inline, HgS3CacheMinSize 0 sends
  every getbundle to the store, a small pull of a second client is
  hit-inline, auth and users, HgS3CachePresence none;
- a graceful restart empties the shmcb inline entries.
"""
import re
import signal
import time

import pytest

from pyhgs3 import env as E
from pyhgs3.auth import basic_auth, user_url
from pyhgs3.checks import clone_verified, wait_objects
from pyhgs3.hg import hgdate
from pyhgs3.hgwire import HG_PROTO
from pyhgs3.memcached import MemcachedServer
from test_hit import USERS, auth_conf

MODES = ["wsgi", "cgi"]
OBJECT_RE = re.compile(r"^hgcache/[0-9a-f]{64}$")
WIRE = re.compile(r"^/repo\?cmd=(?P<cmd>[a-z_]+)")
HIT = re.compile(r"^hit-")


# --- helpers -------------------------------------------------------------------------
# An httpd with mod_hgs3cache on /repo (HgS3CacheHeader on) and a counted
# hgweb: module_httpd(repo, ..., **ON); httpd.hgweb_log lists what reached hgweb.
ON = dict(Header=True, count_hgweb=True)


def wire(httpd, since=0, settle=0.4):
    """[(cmd, note), ...] of the wire requests on /repo after the first
    `since` access-log entries, once the log has stopped growing (httpd logs
    a request just after its response went out)."""
    last, stable_since = None, time.monotonic()
    while True:
        entries = httpd.access_log.entries()
        if len(entries) != last:
            last, stable_since = len(entries), time.monotonic()
        elif time.monotonic() - stable_since >= settle:
            break
        time.sleep(0.05)
    out = []
    # in the order the requests came: a miss is logged after hgweb's end, by
    # when the client may have had its answer and sent the next request
    for e in sorted(entries[since:], key=lambda e: e["time"]):
        m = WIRE.match(e["target"])
        if m:
            out.append((m.group("cmd"), e["note"]))
    return out


def mark(httpd):
    """(access-log entries, hgweb requests) so far."""
    wire(httpd)
    return len(httpd.access_log.entries()), len(httpd.hgweb_log.entries())


def since(httpd, m):
    """What happened after mark m: ([(cmd, note)], [hgweb request, ...])."""
    return wire(httpd, m[0]), httpd.hgweb_log.entries()[m[1]:]


def all_hits(notes):
    return bool(notes) and all(HIT.match(n or "") for _, n in notes)


def wait_inline(httpd, m, cmds):
    """After mark m, every command in cmds was a hit-inline."""
    notes, _ = since(httpd, m)
    got = {c: n for c, n in notes if c in cmds}
    assert got == {c: "hit-inline" for c in cmds}, notes


def counters(httpd):
    return {k[len("HgS3Cache"):]: int(v) for k, v in httpd.server_status().items()
            if k.startswith("HgS3Cache")}


def pull(hg, dest, url, *extra, **kw):
    r = hg.pull(dest, url, *extra, **kw)
    assert r.ok, r
    return r


def warm_pulls(hg, httpd, dest, url, n=3, *extra):
    """n no-op pulls; the last one must be answered without hgweb."""
    for _ in range(n):
        m = mark(httpd)
        pull(hg, dest, url, *extra)
    notes, ran = since(httpd, m)
    assert all_hits(notes) and not ran, (notes, ran)


# --- hgweb stays asleep --------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_hgweb_stays_asleep(hg, module_httpd, store, small_repo, tmp_dir, mode):
    httpd = module_httpd(small_repo, mode=mode, **ON)
    url = httpd.repo_url()
    clone_verified(hg, url, tmp_dir / "warm", small_repo)
    wait_objects(store, 1, name_re=OBJECT_RE)
    warm = since(httpd, (0, 0))[0]
    assert [n for _, n in warm] == ["miss"] * 3, warm

    m = mark(httpd)
    clone_verified(hg, url, tmp_dir / "hit", small_repo)
    notes, ran = since(httpd, m)
    assert [c for c, _ in notes] == ["capabilities", "batch", "getbundle"], notes
    assert notes[:2] == [("capabilities", "hit-inline"), ("batch", "hit-inline")], notes
    assert notes[2][1] == "hit-redirect", notes
    assert ran == [], ran

    # A no-op pull: the first warms its batch and its small getbundle (cg=0),
    # the next one is answered by the module alone.
    m = mark(httpd)
    pull(hg, tmp_dir / "warm", url)
    first, _ = since(httpd, m)
    assert ("getbundle", "miss") in first, first
    m = mark(httpd)
    r = pull(hg, tmp_dir / "hit", url)
    assert "no changes found" in r.stdout, r
    notes, ran = since(httpd, m)
    assert all_hits(notes) and ("getbundle", "hit-inline") in notes, notes
    assert ran == [], ran
    for dest in ("warm", "hit"):
        hg.assert_verify_clean(tmp_dir / dest)
        hg.assert_same_history(small_repo, tmp_dir / dest)
    # small replies are never uploaded: the clone's bundle is the only object
    assert len(store.keys("hgcache/")) == 1
    got = counters(httpd)
    assert got["HitsInline"] == 6 and got["InlineStored"] == 4, got
    assert got["Hits"] == got["HitsInline"] + got["HitsRedirect"] + got["HitsStream"], got


# --- never stale ---------------------------------------------------------------------
def warmed(hg, module_httpd, repo, tmp_dir, *pull_args, **kw):
    """httpd, its URL and a clone whose small replies were warmed by several
    no-op pulls (the last one answered without hgweb)."""
    httpd = module_httpd(repo, **kw, **ON)
    url = httpd.repo_url()
    dest = tmp_dir / "client"
    r = hg.run(*pull_args, "clone", "-U", url, dest)
    assert r.ok, r
    warm_pulls(hg, httpd, dest, url, 3, *pull_args)
    return httpd, url, dest


def warm_command(hg, httpd, *args, n=3):
    """Run an hg command against httpd n times; the last must not reach
    hgweb. Returns the last result."""
    for _ in range(n):
        m = mark(httpd)
        r = hg.run(*args)
    notes, ran = since(httpd, m)
    assert all_hits(notes) and not ran, (notes, ran)
    return r


def as_server(hg, *args):
    return hg.run(*args, check=True, as_server=True)


def node_of(hg, repo, rev):
    return hg.run("log", "-R", repo, "-r", rev, "-T", "{node}", check=True).stdout


def test_stale_push(hg, module_httpd, store, small_repo, tmp_dir):
    httpd, url, dest = warmed(hg, module_httpd, small_repo, tmp_dir)
    work = tmp_dir / "work"
    hg.clone(url, work, check=True)
    hg.run("update", "-R", work, "-r", "stable", check=True)
    node = hg.commit(work, {"pushed.txt": "over http\n"}, "pushed", hgdate(20))
    r = hg.push(work, url)
    assert r.ok, r
    r = hg.run("incoming", "-R", dest, url, "-T", "{node}\n")
    assert r.ok and node in r.stdout, r
    pull(hg, dest, url)
    hg.assert_same_history(small_repo, dest)


def test_stale_server_commit(hg, module_httpd, store, small_repo, tmp_dir):
    httpd, url, dest = warmed(hg, module_httpd, small_repo, tmp_dir)
    as_server(hg, "update", "-R", small_repo, "-r", "stable")
    node = hg.commit(small_repo, {"server.txt": "on the server\n"}, "server commit", hgdate(21),
                     as_server=True)
    r = hg.run("incoming", "-R", dest, url, "-T", "{node}\n")
    assert r.ok and node in r.stdout, r
    pull(hg, dest, url)
    hg.assert_same_history(small_repo, dest)


def test_stale_bookmark_move(hg, module_httpd, store, small_repo, tmp_dir):
    httpd, url, dest = warmed(hg, module_httpd, small_repo, tmp_dir)
    child = node_of(hg, small_repo, "children(stable)")
    as_server(hg, "bookmark", "-R", small_repo, "-f", "-r", child, "stable")
    pull(hg, dest, url)
    assert hg.bookmarks(dest)["stable"] == child
    assert hg.bookmarks(dest) == hg.bookmarks(small_repo)


def test_stale_phase_change(hg, module_httpd, store, small_repo, tmp_dir):
    httpd, url, dest = warmed(hg, module_httpd, small_repo, tmp_dir)
    as_server(hg, "phase", "-R", small_repo, "--public", "-r", "feature")
    pull(hg, dest, url)
    r = hg.run("log", "-R", dest, "-r", "feature", "-T", "{phase}", check=True)
    assert r.stdout == "public", r
    hg.assert_same_history(small_repo, dest)


EVOLUTION = ("--config", "experimental.evolution=all")


def obs_history(hg, repo):
    r = hg.run(*EVOLUTION, "log", "-R", repo, "--hidden", "-T", "{node} {obsolete}\n",
               check=True)
    return sorted(r.stdout.splitlines())


def test_stale_obsmarker(hg, module_httpd, store, small_repo, tmp_dir):
    with open(small_repo / ".hg" / "hgrc", "a") as f:
        f.write("[experimental]\nevolution = all\n")
    httpd, url, dest = warmed(hg, module_httpd, small_repo, tmp_dir, *EVOLUTION)
    node = node_of(hg, small_repo, "feature")
    as_server(hg, *EVOLUTION, "debugobsolete", "-R", small_repo, node)
    pull(hg, dest, url, *EVOLUTION)
    assert f"{node} obsolete" in obs_history(hg, dest)
    assert obs_history(hg, dest) == obs_history(hg, small_repo)


def test_stale_strip(hg, module_httpd, store, small_repo, tmp_dir):
    httpd, url, dest = warmed(hg, module_httpd, small_repo, tmp_dir)
    # fresh clones send the same small requests: warm those too
    clone_verified(hg, url, tmp_dir / "c1", small_repo)
    m = mark(httpd)
    clone_verified(hg, url, tmp_dir / "c2", small_repo)
    notes, ran = since(httpd, m)
    assert all_hits(notes) and not ran, (notes, ran)
    node = node_of(hg, small_repo, "feature")
    as_server(hg, "--config", "extensions.strip=", "strip", "--no-backup", "-R", small_repo,
              "-r", node)
    c3 = clone_verified(hg, url, tmp_dir / "c3", small_repo)
    assert node not in {ln.split()[0] for ln in hg.history(c3)}
    r = hg.run("outgoing", "-R", dest, url, "-T", "{node}\n")
    assert r.ok and node in r.stdout, r


def test_stale_local_tag(hg, module_httpd, store, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, **ON)
    url = httpd.repo_url()
    r = warm_command(hg, httpd, "identify", "-r", "ltag", url)
    assert not r.ok and "unknown revision" in r.stderr, r
    node = node_of(hg, small_repo, "stable")
    as_server(hg, "tag", "-R", small_repo, "--local", "-r", node, "ltag")
    r = hg.run("identify", "-r", "ltag", url)
    assert r.ok and r.stdout.split()[0] == node[:12], r


def capabilities(hg, url):
    r = hg.run("debugcapabilities", url, check=True)
    return [ln.strip() for ln in r.stdout.splitlines()]


def test_stale_clonebundles_manifest(hg, module_httpd, store, small_repo, tmp_dir):
    with open(small_repo / ".hg" / "hgrc", "a") as f:
        f.write("[extensions]\nclonebundles =\n")
    httpd = module_httpd(small_repo, **ON)
    url = httpd.repo_url()
    r = warm_command(hg, httpd, "debugcapabilities", url)
    assert "clonebundles" not in r.stdout.split(), r
    manifest = small_repo / ".hg" / "clonebundles.manifest"
    manifest.write_text("http://127.0.0.1:1/full.hg BUNDLESPEC=zstd-v2\n")
    manifest.chmod(0o644)
    assert "clonebundles" in capabilities(hg, url)


def has_stream(caps):
    return any("stream" in c for c in caps)


def test_stale_repository_hgrc(hg, module_httpd, store, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, **ON)
    url = httpd.repo_url()
    r = warm_command(hg, httpd, "debugcapabilities", url)
    assert has_stream(r.stdout.split()), r
    with open(small_repo / ".hg" / "hgrc", "a") as f:
        f.write("[server]\nuncompressed = false\n")
    assert not has_stream(capabilities(hg, url))


def test_stale_hgweb_config(hg, module_httpd, store, small_repo, tmp_dir):
    """A change in the hgweb.config listed in HgS3CacheConfigFiles reaches
    the next small reply."""
    httpd = module_httpd(small_repo, hgweb_conf="[web]\nrefreshinterval = 0\n",
                         start=False, **ON)
    config = httpd.dir / "hgweb.config"
    httpd.extra_conf = store.location_conf(small_repo, Header=True, ConfigFiles=str(config))
    rc, out = httpd.configtest()
    assert rc == 0, out
    httpd.start()
    url = httpd.repo_url()
    r = warm_command(hg, httpd, "debugcapabilities", url)
    assert has_stream(r.stdout.split()), r
    with open(config, "a") as f:
        f.write("\n[server]\nuncompressed = false\n")
    assert not has_stream(capabilities(hg, url))


# --- many hosts ----------------------------------------------------------------------
@pytest.fixture
def memcached(tmp_dir):
    server = MemcachedServer(tmp_dir).start()
    yield server
    server.stop()


def test_two_hosts_share_memcache(hg, module_httpd, store, small_repo, tmp_dir, memcached):
    server_conf = f"HgS3CachePresence memcache:{memcached.address} 60\n"
    a, b = (module_httpd(small_repo, server_conf=server_conf,
                         modules=("socache_memcache",), **ON) for _ in range(2))
    clone_verified(hg, a.repo_url(), tmp_dir / "a", small_repo)
    wait_objects(store, 1, name_re=OBJECT_RE)
    assert [n for _, n in since(a, (0, 0))[0]] == ["miss"] * 3
    m = mark(b)
    clone_verified(hg, b.repo_url(), tmp_dir / "b", small_repo)
    notes, ran = since(b, m)
    assert notes[:2] == [("capabilities", "hit-inline"), ("batch", "hit-inline")], notes
    assert notes[2] == ("getbundle", "hit-redirect"), notes
    assert ran == [], ran
    # and the other way round, for a reply first seen by b
    status, _, body = b.get("/repo?cmd=heads")
    m = mark(a)
    assert a.get("/repo?cmd=heads")[::2] == (status, body)
    assert since(a, m) == ([("heads", "hit-inline")], [])


def test_memcache_store_lookup_never_reads_an_inline_entry(hg, module_httpd, store,
                                                           small_repo, tmp_dir, memcached):
    """A getbundle kept inline, then the same request where inline replies
    are off (HgS3CacheInlineMax 0: the store path looks the key up): the
    8-byte lookup of a stored object must not read the inline entry
    (memcache logs an error for a value larger than asked for)."""
    conf = store.location_conf(small_repo, location="/noinline", Header=True, InlineMax=0)
    httpd = module_httpd(small_repo, extra_conf=conf, modules=("socache_memcache",),
                         server_conf=f"HgS3CachePresence memcache:{memcached.address} 60\n",
                         start=False, **ON)
    httpd.repos["noinline"] = small_repo
    httpd.start()
    dest = clone_verified(hg, httpd.repo_url(), tmp_dir / "c", small_repo)
    for _ in range(2):
        pull(hg, dest, httpd.repo_url())
    m = mark(httpd)
    pull(hg, dest, httpd.repo_url("noinline"))
    notes = [e["note"] for e in httpd.access_log.entries()[m[0]:]
             if e["target"].startswith("/noinline?cmd=getbundle")]
    assert notes and notes[0].startswith("miss"), notes
    hg.assert_same_history(small_repo, dest)


# --- boundaries ----------------------------------------------------------------------
def batch_headers(cmds):
    return {"X-HgArg-1": "cmds=" + cmds, "X-HgProto-1": HG_PROTO,
            "Accept": "application/mercurial-0.1"}


def test_batch_outside_list_never_cached(hg, module_httpd, store, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, **ON)
    readonly = batch_headers("heads+%3Blistkeys+namespace%3Dbookmarks")
    other = batch_headers("heads+%3Bdebugwireargs+one%3Da%2Ctwo%3Db")
    m = mark(httpd)
    answers = [httpd.get("/repo?cmd=batch", headers=h) for h in (other, other, readonly,
                                                                 readonly)]
    assert [a[0] for a in answers] == [200] * 4, answers
    assert answers[0][2] == answers[1][2] and b"a b" in answers[0][2], answers
    assert answers[2][1:] == answers[3][1:] or answers[2][2] == answers[3][2], answers
    notes, ran = since(httpd, m)
    assert [n for _, n in notes] == ["bypass:command", "bypass:command", "miss", "hit-inline"]
    assert len(ran) == 3, ran


def test_above_inline_max_not_inline(hg, module_httpd, store, small_repo, tmp_dir):
    """heads answers 82 bytes (two heads): inline at HgS3CacheInlineMax 82,
    not at 81; capabilities (far larger) is never inline there."""
    conf = store.location_conf(small_repo, location="/tight", Header=True, InlineMax=81,
                               KeySalt="tight")
    httpd = module_httpd(small_repo, InlineMax=82, extra_conf=conf, start=False, **ON)
    httpd.repos["tight"] = small_repo
    httpd.start()
    m = mark(httpd)
    got = [httpd.get(f"/{loc}?cmd={cmd}") for loc in ("repo", "tight") for cmd in
           ("heads", "heads", "capabilities", "capabilities")]
    assert len(got[0][2]) == 82 and len(got[2][2]) > 82, got
    for first, second in zip(got[::2], got[1::2]):
        assert first[0] == second[0] == 200
        assert first[2] == second[2]
        assert first[1]["content-type"] == second[1]["content-type"]
    # the inline answer carries the right length
    assert got[1][1]["content-length"] == "82" and got[1][1]["x-hgs3cache"] == "hit-inline"
    ran = since(httpd, m)[1]
    entries = sorted((e for e in httpd.access_log.entries()[m[0]:] if "cmd=" in e["target"]),
                     key=lambda e: e["time"])
    assert [e["note"] for e in entries] == [
        "miss", "hit-inline", "miss-store-skipped:too-large", "miss-store-skipped:too-large",
        "miss-store-skipped:too-large", "miss-store-skipped:too-large",
        "miss-store-skipped:too-large", "miss-store-skipped:too-large"], entries
    assert len(ran) == 7, ran


def server_commit(hg, repo, n):
    as_server(hg, "update", "-R", repo, "-r", "stable")
    node = hg.commit(repo, {f"small{n}.txt": f"a few bytes {n}\n"}, f"small {n}", hgdate(30 + n),
                     as_server=True)
    as_server(hg, "update", "-R", repo, "null")
    return node


@pytest.mark.parametrize("min_size", [None, 0], ids=["default", "minsize0"])
def test_small_pull_of_second_client(hg, module_httpd, store, small_repo, tmp_dir, min_size):
    """A few new changesets pulled by a second client in the same state: by
    default the small bundle is inline; with HgS3CacheMinSize 0 every
    getbundle goes to the store and only the other commands are inline."""
    httpd = module_httpd(small_repo, MinSize=min_size, **ON)
    url = httpd.repo_url()
    for name in ("c1", "c2"):
        clone_verified(hg, url, tmp_dir / name, small_repo)
    wait_objects(store, 1, name_re=OBJECT_RE)
    server_commit(hg, small_repo, 1)
    m = mark(httpd)
    pull(hg, tmp_dir / "c1", url)
    first, _ = since(httpd, m)
    assert ("getbundle", "miss") in first, first
    m = mark(httpd)
    pull(hg, tmp_dir / "c2", url)
    notes, ran = since(httpd, m)
    for name in ("c1", "c2"):
        hg.assert_same_history(small_repo, tmp_dir / name)
        hg.assert_verify_clean(tmp_dir / name)
    assert ran == [] and all_hits(notes), (notes, ran)
    assert ("capabilities", "hit-inline") in notes
    if min_size is None:
        assert ("getbundle", "hit-inline") in notes, notes
        time.sleep(1)
        assert len(store.keys("hgcache/")) == 1
    else:
        assert ("getbundle", "hit-redirect") in notes, notes
        wait_objects(store, 2, name_re=OBJECT_RE)


@pytest.mark.parametrize("share", [False, True], ids=["separate", "shared"])
def test_auth_and_users(hg, module_httpd, store, small_repo, tmp_dir, share):
    httpd = module_httpd(small_repo, extra_conf=auth_conf(tmp_dir),
                         ShareAcrossUsers=share, **ON)
    alice = {"Authorization": basic_auth("alice", USERS["alice"])}
    bob = {"Authorization": basic_auth("bob", USERS["bob"])}
    m = mark(httpd)
    a1 = httpd.get("/repo?cmd=capabilities", headers=alice)
    a2 = httpd.get("/repo?cmd=capabilities", headers=alice)
    anon = httpd.get("/repo?cmd=capabilities")
    b1 = httpd.get("/repo?cmd=capabilities", headers=bob)
    assert a1[0] == a2[0] == b1[0] == 200 and a1[2] == a2[2] == b1[2]
    assert anon[0] == 401 and anon[2] != a1[2], anon
    ran = since(httpd, m)[1]
    entries = sorted((e for e in httpd.access_log.entries()[m[0]:] if "cmd=" in e["target"]),
                     key=lambda e: e["time"])
    assert [(e["user"], e["note"]) for e in entries] == [
        ("alice", "miss"), ("alice", "hit-inline"), (None, None),
        ("bob", "hit-inline" if share else "miss")], entries
    assert len(ran) == (1 if share else 2), ran
    # a whole clone by bob after alice's
    clone_verified(hg, user_url(httpd, USERS, "alice"), tmp_dir / "alice", small_repo)
    m = mark(httpd)
    clone_verified(hg, user_url(httpd, USERS, "bob"), tmp_dir / "bob", small_repo)
    notes = [n for n in since(httpd, m)[0] if n[1]]     # hg tries without credentials first
    assert (("batch", "hit-inline") in notes) == share, notes
    assert (("batch", "miss") in notes) != share, notes


def test_presence_none(hg, module_httpd, store, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, server_conf="HgS3CachePresence none\n", **ON)
    url = httpd.repo_url()
    clone_verified(hg, url, tmp_dir / "c1", small_repo)
    wait_objects(store, 1, name_re=OBJECT_RE)
    m = mark(httpd)
    clone_verified(hg, url, tmp_dir / "c2", small_repo)
    notes, ran = since(httpd, m)
    assert notes == [("capabilities", "bypass:command"), ("batch", "bypass:command"),
                     ("getbundle", "hit-redirect")], notes
    assert [e[1] for e in ran] == ["cmd=capabilities", "cmd=batch"], ran
    assert len(store.keys("hgcache/")) == 1


# --- graceful restart ----------------------------------------------------------------
def test_graceful_restart_empties_shmcb(hg, module_httpd, store, small_repo, tmp_dir):
    httpd = module_httpd(small_repo, **ON)
    m = mark(httpd)
    first = httpd.get("/repo?cmd=capabilities")
    assert httpd.get("/repo?cmd=capabilities")[2] == first[2]
    assert since(httpd, m)[0] == [("capabilities", "miss"), ("capabilities", "hit-inline")]
    resumed = len(httpd.error_log.grep("resuming normal operations", since_mark=False))
    httpd.proc.send_signal(signal.SIGUSR1)
    E.wait_until(lambda: len(httpd.error_log.grep("resuming normal operations",
                                                  since_mark=False)) > resumed,
                 30, what="the graceful restart")
    m = mark(httpd)
    after = [httpd.get("/repo?cmd=capabilities") for _ in range(2)]
    assert all(a[0] == 200 and a[2] == first[2] for a in after), after
    notes, ran = since(httpd, m)
    assert notes == [("capabilities", "miss"), ("capabilities", "hit-inline")], notes
    assert len(ran) == 1, ran


# --- sizes ---------------------------------------------------------------------------
def test_default_presence_cache_holds_hundreds(hg, module_httpd, store, small_repo):
    """The default shmcb presence cache holds a site's small replies without
    tuning: 600 distinct 2.6 KB replies (1.6 MB, three times shmcb's own
    default size), all still there on a second pass."""
    names = [f"bookmark-{i:03d}" for i in range(50)]
    as_server(hg, "bookmark", "-R", small_repo, "-r", "stable", *names)
    httpd = module_httpd(small_repo, **ON)
    # a query argument the key includes and hgweb ignores: 600 distinct keys
    targets = [f"/repo?cmd=listkeys&namespace=bookmarks&x={i}" for i in range(600)]
    first = [httpd.get(t) for t in targets]
    assert all(s == 200 and len(b) > 2500 for s, _, b in first), first[:2]
    m = mark(httpd)
    second = [httpd.get(t) for t in targets]
    assert [b for _, _, b in second] == [b for _, _, b in first]
    notes, ran = since(httpd, m)
    missed = [n for _, n in notes if n != "hit-inline"]
    assert ran == [] and len(notes) == 600 and not missed, (len(ran), missed[:5])
