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
from pyhgs3.auth import auth_location, basic_auth, user_url, write_htpasswd
from pyhgs3.checks import clone_verified, wait_objects
from pyhgs3.hg import hgdate
from pyhgs3.memcached import MemcachedServer
from test_hit import WSGI_WRAPPER, HgwebLog

MODES = ["wsgi", "cgi"]
OBJECT_RE = re.compile(r"^hgcache/[0-9a-f]{64}$")
WIRE = re.compile(r"^/repo\?cmd=(?P<cmd>[a-z_]+)")
HIT = re.compile(r"^hit-")


# --- helpers -------------------------------------------------------------------------
def instrument(httpd):
    """Count what reaches hgweb (WSGI and CGI alike): httpd.hgweb_log."""
    log_path = httpd.dir / "hgweb-requests.jsonl"
    log_path.write_text("")
    log_path.chmod(0o666)
    write_hgweb = httpd._write_hgweb

    def instrumented():
        script = write_hgweb()
        text, wrapper = script.read_text(), WSGI_WRAPPER.format(path=str(log_path))
        launch = "wsgicgi.launch(application)\n"
        if launch in text:
            text = text.replace(launch, wrapper + launch)
        else:
            text += wrapper
        script.write_text(text)
        return script

    httpd._write_hgweb = instrumented
    httpd.hgweb_log = HgwebLog(log_path)
    return httpd


def start(httpd_factory, store, repo, *, mode="wsgi", server_conf="", extra_conf="",
          hgweb_conf="", modules=(), start=True, **directives):
    """httpd with mod_hgs3cache on /repo (HgS3CacheHeader on) and a counted hgweb."""
    directives.setdefault("Header", True)
    conf = server_conf + extra_conf + store.location_conf(repo, **directives)
    httpd = httpd_factory(start=False, repos={"repo": repo}, mode=mode, module=True,
                          extra_conf=conf, hgweb_conf=hgweb_conf, modules=modules)
    instrument(httpd)
    if start:
        httpd.start()
    return httpd


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
    for e in entries[since:]:
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
def test_hgweb_stays_asleep(hg, httpd_factory, store, small_repo, tmp_dir, mode):
    httpd = start(httpd_factory, store, small_repo, mode=mode)
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
