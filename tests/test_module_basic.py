"""mod_hgs3cache loaded into httpd: clones and pulls stay correct, whether the
cache is off or on, under mod_wsgi and CGI, with each store."""
import pytest

from pyhgs3.hg import hgdate
from pyhgs3.httpd import hgs3cache_location

MODES = ["wsgi", "cgi"]


def _clone_push_pull(hg, httpd, repo, tmp_dir):
    """Clone twice, push a changeset over HTTP, move a bookmark and a phase
    on the server, pull: every copy has the server's history and verifies."""
    url = httpd.repo_url("repo")
    first = tmp_dir / "first"
    r = hg.clone(url, first, "-U")
    assert r.ok, r
    hg.assert_same_history(repo, first)
    hg.assert_verify_clean(first)

    again = tmp_dir / "again"
    r = hg.clone(url, again, "-U")
    assert r.ok, r
    hg.assert_same_history(repo, again)
    hg.assert_verify_clean(again)

    work = tmp_dir / "work"
    hg.clone(url, work, check=True)
    hg.run("update", "-R", work, "-r", "heads(descendants(stable))", check=True)
    node = hg.commit(work, {"new.txt": "pushed over http\n"}, "pushed", hgdate(10))
    r = hg.push(work, url)
    assert r.ok, r
    hg.run("bookmark", "-R", repo, "-f", "-r", node, "stable", check=True, as_server=True)
    hg.run("phase", "-R", repo, "--public", "-r", "feature", check=True, as_server=True)

    for dest in (first, again):
        r = hg.pull(dest, url)
        assert r.ok, r
        hg.assert_same_history(repo, dest)
        hg.assert_verify_clean(dest)
        assert hg.bookmarks(dest)["stable"] == node


@pytest.mark.parametrize("mode", MODES)
def test_module_loaded_cache_off(hg, httpd_factory, small_repo, tmp_dir, mode):
    httpd = httpd_factory(repos={"repo": small_repo}, mode=mode, module=True,
                          extra_conf=hgs3cache_location("/repo", small_repo, enabled=False))
    _clone_push_pull(hg, httpd, small_repo, tmp_dir)
    getbundles = httpd.access_log.find("GET", r"^/repo\?cmd=getbundle$")
    assert len(getbundles) >= 5 and all(e["status"] == 200 for e in getbundles)


@pytest.mark.parametrize("mode", MODES)
def test_module_cache_on(hg, httpd_factory, small_repo, tmp_dir, store, mode):
    httpd = httpd_factory(repos={"repo": small_repo}, mode=mode, module=True,
                          extra_conf=store.location_conf(small_repo))
    _clone_push_pull(hg, httpd, small_repo, tmp_dir)
    getbundles = httpd.access_log.find("GET", r"^/repo\?cmd=getbundle$")
    assert len(getbundles) >= 5
    # Every getbundle went through the module: it leaves its note on each.
    assert all(e["note"] for e in getbundles), [e["note"] for e in getbundles]
