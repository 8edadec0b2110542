"""mod_hgs3cache loaded into httpd: clones and pulls stay correct, whether the
cache is off or on, under mod_wsgi and CGI, with each store."""
import pytest

from pyhgs3.hg import clone_push_pull
from pyhgs3.httpd import hgs3cache_location

MODES = ["wsgi", "cgi"]


@pytest.mark.parametrize("mode", MODES)
def test_module_loaded_cache_off(hg, httpd_factory, small_repo, tmp_dir, mode):
    httpd = httpd_factory(repos={"repo": small_repo}, mode=mode, module=True,
                          extra_conf=hgs3cache_location("/repo", small_repo, enabled=False))
    clone_push_pull(hg, httpd.repo_url("repo"), small_repo, tmp_dir)
    getbundles = httpd.access_log.find("GET", r"^/repo\?cmd=getbundle$")
    assert len(getbundles) >= 5 and all(e["status"] == 200 for e in getbundles)


@pytest.mark.parametrize("mode", MODES)
def test_module_cache_on(hg, httpd_factory, small_repo, tmp_dir, store, mode):
    httpd = httpd_factory(repos={"repo": small_repo}, mode=mode, module=True,
                          extra_conf=store.location_conf(small_repo))
    clone_push_pull(hg, httpd.repo_url("repo"), small_repo, tmp_dir)
    getbundles = httpd.access_log.find("GET", r"^/repo\?cmd=getbundle$")
    assert len(getbundles) >= 5
    # Every getbundle went through the module: it leaves its note on each.
    assert all(e["note"] for e in getbundles), [e["note"] for e in getbundles]
