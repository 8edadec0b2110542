"""HgS3CacheSpoolDir: the default directory and an unusable one.

- Unset, the spool directory is /var/cache/apache2/mod_hgs3cache (a disk
  directory, never httpd's runtime dir, which is a tmpfs on Debian). httpd's
  parent, still root at startup, creates it for the children's user, mode
  0750, and the children spool and lock there: a miss is stored, then hit.
- A configured spool directory the children cannot write is one warning at
  startup that names the directive; clones still succeed, nothing is stored,
  and no request logs a warning of its own.
"""
import os
import stat

import pytest

from pyhgs3 import env as E
from pyhgs3 import system
from pyhgs3.checks import clone_verified, wait_getbundles, wait_objects

STARTUP_WARNING = r"HGS301402: HgS3CacheSpoolDir .* is not writable by"


def _notes(httpd, count):
    return [e["note"] for e in wait_getbundles(httpd, "repo", count)]


@pytest.mark.skipif(not E.running_as_root(), reason="creating the default needs root")
def test_default_spool_dir_created(hg, httpd_factory, store, small_repo, tmp_dir):
    """The default spool directory is created at startup for the children's
    user (0750) and used: a miss spills there (HgS3CacheMemory 0), is stored,
    and the next clone is a hit."""
    d = system.DEFAULT_SPOOL_DIR
    with system.exclusive(), system.snapshot(d):
        system.remove(d)
        conf = store.location_conf(small_repo, MinSize=1, Memory=0)
        httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf,
                              default_spool_dir=True)
        try:
            st = os.stat(d)
            assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750, oct(st.st_mode)
            assert (st.st_uid, st.st_gid) == E.server_ids(), (st.st_uid, st.st_gid)
            clone_verified(hg, httpd.repo_url(), tmp_dir / "first", small_repo)
            assert _notes(httpd, 1) == ["miss"]
            (key,) = wait_objects(store, 1)
            clone_verified(hg, httpd.repo_url(), tmp_dir / "second", small_repo)
            notes = _notes(httpd, 2)
            assert notes[1].startswith("hit-"), notes
            assert not [n for n in os.listdir(d) if n.startswith(("hgs3spool.", "hgs3lock."))]
        finally:
            httpd.stop()


def test_unwritable_spool_dir_warns_once(hg, httpd_factory, store, small_repo, tmp_dir):
    """A spool directory the children cannot write: one startup warning naming
    HgS3CacheSpoolDir, every clone still succeeds, nothing is stored, and the
    requests log no warning of their own."""
    ro = tmp_dir / "read-only"
    ro.mkdir()
    os.chmod(ro, 0o555)
    conf = store.location_conf(small_repo, MinSize=1, SpoolDir=str(ro))
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf)
    httpd.allow_log(STARTUP_WARNING)
    for i in range(3):
        clone_verified(hg, httpd.repo_url(), tmp_dir / f"clone{i}", small_repo)
    assert _notes(httpd, 3) == ["miss-store-skipped:lock-error"] * 3
    warnings = httpd.error_log.grep(STARTUP_WARNING)
    assert len(warnings) == 1 and str(ro) in warnings[0], warnings
    assert not httpd.error_log.grep(r"\[hgs3cache:(warn|error)\].*HGS30(?!1402)"), \
        httpd.error_log.grep(r"hgs3cache:")
    assert store.keys("") == []
