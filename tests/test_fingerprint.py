"""The repository state fingerprint, seen from outside: real httpd, hgweb
(mod_wsgi daemon), the real hg client and both stores.

Each test stores a response, changes the server's repository (or its
configuration) the way an operator or hg itself would, and checks that the
next request gets a new key and what hgweb answers now, never the stored
bytes of the old state:
  - a bookmark move in a bookmarksinstore repository (.hg/store/bookmarks);
  - hg censor, which rewrites a filelog in a transaction (store/undo,
    undo.desc);
  - read access revoked in the hgweb.config listed in HgS3CacheConfigFiles.
"""
import re

import pytest

from pyhgs3 import env as E
from pyhgs3.auth import auth_location, basic_auth, user_url, write_htpasswd
from pyhgs3.checks import (PREFIX, clone_verified, key_lines, replay_headers,
                           wait_getbundles, wait_objects)
from pyhgs3.hg import hgdate
from pyhgs3.httpd import hgs3cache_location

LOG_LEVEL = "info hgs3cache:debug"
HIT = re.compile(r"^hit-")


# module_httpd(repo, ..., **DEBUG): the key lines in the error log.
DEBUG = dict(log_level=LOG_LEVEL)


def clone_stored(hg, httpd, store, repo, dest):
    """Clone (verified), wait until its getbundle is stored, clone again and
    check that this second one is a hit: the state is now in the store.
    Returns the key."""
    clone_verified(hg, httpd.repo_url(), dest, repo)
    (obj,) = wait_objects(store)
    clone_verified(hg, httpd.repo_url(), dest.with_name(dest.name + "-hit"), repo)
    first, second = wait_getbundles(httpd, "repo", 2)[-2:]
    assert first["note"] == "miss" and HIT.match(second["note"] or ""), (first, second)
    keys = key_lines(httpd, "getbundle")
    assert keys[-1]["key"] == keys[-2]["key"] and obj == PREFIX + keys[-1]["key"], keys
    return keys[-1]["key"]


# --- bookmarksinstore ---------------------------------------------------------------
def bookmarks_in_store_repo(hg, template, path):
    """A copy of the small repository made with format.bookmarks-in-store."""
    hg.run("--config", "format.bookmarks-in-store=yes", "init", path, check=True)
    (path / ".hg" / "hgrc").write_text("[phases]\npublish = false\n")
    hg.run("pull", "-R", path, template, check=True)
    # share-safe keeps the store's requirements in store/requires
    assert "bookmarksinstore" in (path / ".hg" / "store" / "requires").read_text()
    assert (path / ".hg" / "store" / "bookmarks").exists()
    assert not (path / ".hg" / "bookmarks").exists()
    E.make_world_readable(path)
    E.chown_to_server(path)
    return path


def test_bookmarksinstore_move(hg, module_httpd, store, small_repo_template, tmp_dir):
    repo = bookmarks_in_store_repo(hg, small_repo_template, tmp_dir / "bis")
    httpd = module_httpd(repo, **DEBUG)
    before = clone_stored(hg, httpd, store, repo, tmp_dir / "before")

    heads = hg.heads(repo)
    target = hg.run("log", "-R", repo, "-r", "heads(descendants(stable))", "-T", "{node}",
                    check=True).stdout
    assert hg.bookmarks(repo)["stable"] != target
    hg.run("bookmark", "-R", repo, "-f", "-r", target, "stable", check=True, as_server=True)
    assert hg.heads(repo) == heads and hg.bookmarks(repo)["stable"] == target
    assert not (repo / ".hg" / "bookmarks").exists()

    after = clone_verified(hg, httpd.repo_url(), tmp_dir / "after", repo)
    entry = wait_getbundles(httpd, "repo", 3)[-1]
    assert entry["note"] == "miss", entry
    assert key_lines(httpd, "getbundle")[-1]["key"] != before
    assert hg.bookmarks(after)["stable"] == target
    assert hg.bookmarks(tmp_dir / "before")["stable"] != target


# --- hg censor --------------------------------------------------------------------------
SECRET = "password = hunter2-0b9c1e\n"
CENSOR = ("--config", "extensions.censor=")


def cat(hg, repo, rev, *extra):
    """hg cat of secret.txt at rev in repo (no working copy needed)."""
    return hg.run(*extra, "cat", "-R", repo, "-r", rev, "path:secret.txt", cwd=repo)


def test_censor_after_stored_clone(hg, module_httpd, store, small_repo, tmp_dir):
    leak = hg.commit(small_repo, {"secret.txt": SECRET}, "leak", hgdate(30), as_server=True)
    hg.commit(small_repo, {"secret.txt": "redacted\n"}, "redact", hgdate(31), as_server=True)
    httpd = module_httpd(small_repo, **DEBUG)
    before = clone_stored(hg, httpd, store, small_repo, tmp_dir / "before")
    assert cat(hg, tmp_dir / "before", leak).stdout == SECRET

    hg.run(*CENSOR, "censor", "-R", small_repo, "-r", leak, "-t", "removed",
           "path:secret.txt", cwd=small_repo, check=True, as_server=True)
    r = cat(hg, small_repo, leak)
    assert not r.ok and "censored" in r.stderr, r

    after = tmp_dir / "after"
    r = hg.clone(httpd.repo_url(), after, "-U")
    assert r.ok, r
    entry = wait_getbundles(httpd, "repo", 3)[-1]
    assert entry["note"] == "miss", entry
    assert key_lines(httpd, "getbundle")[-1]["key"] != before
    r = cat(hg, after, leak, "--config", "censor.policy=ignore")
    assert r.ok and "hunter2" not in r.stdout, r
    r = cat(hg, after, leak)
    assert not r.ok and "censored" in r.stderr, r


# --- HgS3CacheConfigFiles ---------------------------------------------------------------
USERS = {"alice": "alice-pw-8Kd", "bob": "bob-pw-2Mv"}
# hgweb.config is re-read on every request (FACTS.md section 6).
REFRESH = "[web]\nrefreshinterval = 0\n"


def test_deny_read_in_hgweb_config(hg, httpd_factory, store, small_repo, tmp_dir):
    """alice's clone is stored; then `deny_read = alice` is added to the
    hgweb.config listed in HgS3CacheConfigFiles. Her next getbundle, replayed
    with her credentials, is refused by hgweb, not answered from the store."""
    users = write_htpasswd(tmp_dir / "htpasswd", USERS)
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, hgweb_conf=REFRESH,
                          log_level=LOG_LEVEL, start=False)
    hgweb_config = httpd.dir / "hgweb.config"
    httpd.extra_conf = auth_location("/repo", users) + store.location_conf(
        small_repo, Header=True, ConfigFiles=[str(hgweb_config), "/etc/mercurial/hgrc.d/*.rc"])
    httpd.start()

    clone_verified(hg, user_url(httpd, USERS, "alice"), tmp_dir / "alice", small_repo)
    (obj,) = wait_objects(store)
    body, _, _ = store.get(obj)
    headers = replay_headers(wait_getbundles(httpd, "repo", 1)[0],
                             {"Authorization": basic_auth("alice", USERS["alice"])})
    status, hdrs, got = httpd.get("/repo?cmd=getbundle", headers=headers)
    assert (status, hdrs.get("x-hgs3cache")) == (200, "hit-stream"), (status, hdrs)
    assert got == body

    with open(hgweb_config, "a") as f:
        f.write("[web]\ndeny_read = alice\n")
    status, hdrs, got = httpd.get("/repo?cmd=getbundle", headers=headers)
    assert status == 401 and b"read not authorized" in got, (status, hdrs, got[:200])
    assert hdrs.get("x-hgs3cache") == "miss-store-skipped:status", hdrs
    assert got != body
    keys = key_lines(httpd, "getbundle")
    assert len(keys) == 3 and keys[0]["key"] == keys[1]["key"] != keys[2]["key"], keys
    # bob still clones (a miss of his own key), alice no longer can
    clone_verified(hg, user_url(httpd, USERS, "bob"), tmp_dir / "bob", small_repo)
    assert wait_getbundles(httpd, "repo", 3)[-1]["note"] == "miss"
    assert obj in wait_objects(store, 2)
    r = hg.clone(user_url(httpd, USERS, "alice"), tmp_dir / "alice2", "-U")
    assert not r.ok, r


@pytest.mark.parametrize("paths, bad", [
    (["hgweb.config"], "hgweb.config"),
    (["/etc/*/hgrc"], "/etc/*/hgrc"),
    (["/srv/hg/hgweb.config", "/etc/mercurial/hgrc.d/"], "/etc/mercurial/hgrc.d/"),
])
def test_config_files_configtest(httpd_factory, small_repo, paths, bad):
    conf = hgs3cache_location("/repo", small_repo, bucket="hgs3-test",
                              endpoint="http://127.0.0.1:9", access_key="AK",
                              secret_key="SK-not-shown", ConfigFiles=paths)
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf, start=False)
    rc, out = httpd.configtest()
    assert rc != 0 and "HgS3CacheConfigFiles" in out and repr(bad) in out, out


def test_config_files_missing_allowed(httpd_factory, small_repo, tmp_dir):
    conf = hgs3cache_location("/repo", small_repo, bucket="hgs3-test",
                              endpoint="http://127.0.0.1:9", access_key="AK",
                              secret_key="SK-not-shown",
                              ConfigFiles=[str(tmp_dir / "absent.config"), "/nonexistent/*.rc"])
    conf += hgs3cache_location("/none", small_repo, bucket="hgs3-test",
                               endpoint="http://127.0.0.1:9", access_key="AK",
                               secret_key="SK-not-shown", ConfigFiles="none")
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf, start=False)
    rc, out = httpd.configtest()
    assert rc == 0, out


def test_config_files_wildcard(hg, module_httpd, store, small_repo, tmp_dir):
    """A wildcard entry: an .rc file added to its directory after httpd
    started, and then an edit of that file, each give new keys."""
    rcdir = tmp_dir / "hgrc.d"
    rcdir.mkdir()
    (rcdir / "00-base.rc").write_text("[ui]\n")
    E.make_world_readable(rcdir)
    httpd = module_httpd(small_repo, ConfigFiles=[str(rcdir / "*.rc")], **DEBUG)
    first = clone_stored(hg, httpd, store, small_repo, tmp_dir / "first")

    def clone_key(name, count):
        clone_verified(hg, httpd.repo_url(), tmp_dir / name, small_repo)
        wait_getbundles(httpd, "repo", count)
        return key_lines(httpd, "getbundle")[-1]["key"]

    (rcdir / "50-late.rc").write_text("[web]\n")
    E.make_world_readable(rcdir)
    added = clone_key("added", 3)
    assert added != first
    (rcdir / "50-late.rc").write_text("[web]\ndescription = edited\n")
    edited = clone_key("edited", 4)
    assert edited not in (first, added)
    wait_objects(store, 3)
    assert clone_key("again", 5) == edited
    notes = [e["note"] for e in wait_getbundles(httpd, "repo", 5)]
    assert notes[2:] == ["miss", "miss", "hit-redirect"], notes
