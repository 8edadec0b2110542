"""The machine's own Apache, installed the two ways the README gives.

- test_operator_path: the README's steps from source, as an operator follows
  them: `make install`, the conf files copied to mods-available,
  `a2enmod hgs3cache socache_shmcb wsgi`, the example site (pointed at the
  test store) enabled, `apache2ctl start`, run by Debian's stock www-data.
- test_package_path: `scripts/deb` builds the packages (lintian must find no
  error), `apt-get install ./dist/...deb` enables the module with
  socache_shmcb and makes the spool directory; installing it again keeps an
  edited conf and a disabled module as they are; a site made from the
  installed example, `apache2ctl start` as www-data; then `apt-get purge`
  leaves no module, conf or spool directory behind and Apache still passes
  configtest.

Both show a miss that is stored in the bucket and then a hit, with hg
clones that verify, and nothing logged by the module at warn or worse.
They need root, hold the machine-wide lock of the tests that change the
system (pyhgs3/system.py; so they never run at the same time as each other
or as test_spooldir's default-directory test), listen on a free loopback
port only, and put back /etc/apache2, the logs, the installed files and the
package set whatever happens.
"""
import os
import stat

import pytest

from pyhgs3 import env as E
from pyhgs3 import system as S
from pyhgs3.bucket import StoreBucket, unique_bucket_name
from pyhgs3.checks import clone_verified, wait_objects

PACKAGES = ("libapache2-mod-hgs3cache", "hgs3-tools")
EXAMPLES = "/usr/share/doc/libapache2-mod-hgs3cache/examples"

pytestmark = pytest.mark.skipif(not E.running_as_root(),
                                reason="installs into the system Apache: needs root")


@pytest.fixture
def system_apache():
    """The lock, a snapshot of what the test may change, and the system
    Apache stopped at the end (before the snapshot is put back)."""
    with S.exclusive():
        if S.apache_pid():
            pytest.skip("the system Apache is running: not touching it")
        with S.snapshot(*S.SYSTEM_PATHS):
            for p in (S.DEFAULT_SPOOL_DIR, S.HG_ACCESS_LOG):
                S.remove(p)
            try:
                yield
            finally:
                S.apache_stop()


@pytest.fixture
def bucket(s3rver):
    name = unique_bucket_name("sys")
    s3rver.create_bucket(name)
    return StoreBucket(s3rver, name)


def _notes(count):
    return E.wait_until(lambda: S.getbundle_notes() if len(S.getbundle_notes()) >= count
                        else None, 30, what=f"{count} getbundle(s) in {S.HG_ACCESS_LOG}")


def _miss_then_hit(hg, port, bucket, repo, tmp_dir):
    url = f"http://127.0.0.1:{port}/repo"
    clone_verified(hg, url, tmp_dir / "first", repo)
    assert _notes(1) == ["miss"], S.getbundle_notes()
    (key,) = wait_objects(bucket, 1)
    data, ctype, _ = bucket.get(key)
    assert len(data) > 65536 and ctype == "application/mercurial-0.2", (len(data), ctype)
    clone_verified(hg, url, tmp_dir / "second", repo)
    assert _notes(2) == ["miss", "hit-redirect"], S.getbundle_notes()
    st = os.stat(S.DEFAULT_SPOOL_DIR)
    assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_uid == S.pwd_uid("www-data"), st
    assert not S.module_log_problems(), S.module_log_problems()


def test_operator_path(system_apache, hg, bucket, big_repo, tmp_dir):
    top = E.TOP_DIR
    S.run("make", "install", cwd=top)
    assert S.MODULE_SO.exists()
    for name in ("hgs3cache.load", "hgs3cache.conf"):
        (S.ETC / "mods-available" / name).write_bytes((top / "conf" / name).read_bytes())
    S.run("a2enmod", "hgs3cache", "socache_shmcb", "wsgi")
    port = E.free_port()
    S.install_site((top / "conf" / "hgweb-site.conf").read_text(),
                   (top / "conf" / "hgweb.wsgi").read_text(), tmp_dir / "srv", big_repo,
                   bucket, port)
    S.run("apache2ctl", "configtest")
    S.apache_start(port)
    _miss_then_hit(hg, port, bucket, big_repo, tmp_dir)


def _upgrade_keeps_the_configuration(deb):
    """An administrator's edit of hgs3cache.conf, and the module disabled by
    a2dismod, both survive the package's configure step run again."""
    conf = S.ETC / "mods-available" / "hgs3cache.conf"
    edited = conf.read_text() + "# edited by the administrator\n"
    conf.write_text(edited)
    S.run("a2dismod", "-q", "hgs3cache")
    S.run("dpkg", "-i", deb, env={"DEBIAN_FRONTEND": "noninteractive"})
    assert conf.read_text() == edited
    assert not (S.ETC / "mods-enabled" / "hgs3cache.load").exists()
    S.run("a2enmod", "-q", "hgs3cache")


def test_package_path(system_apache, hg, bucket, big_repo, tmp_dir):
    top = E.TOP_DIR
    before = S.installed_packages()
    assert not [p for p in PACKAGES if p in before], "the packages are installed already"
    S.run("scripts/deb", cwd=top, env={"DEB_BUILD_OPTIONS": "nocheck noautodbgsym"}, timeout=900)
    debs = [str(next((top / "dist").glob(f"{p}_*.deb"))) for p in PACKAGES]
    try:
        S.run("apt-get", "install", "-y", "--no-install-recommends", *debs,
              env={"DEBIAN_FRONTEND": "noninteractive"})
        for name in ("hgs3cache.load", "socache_shmcb.load"):
            assert (S.ETC / "mods-enabled" / name).exists(), name
        st = os.stat(S.DEFAULT_SPOOL_DIR)
        assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_uid == S.pwd_uid("www-data"), st
        assert "presign" in S.run("hgs3", "--help")
        assert os.path.exists("/usr/share/man/man1/hgs3.1.gz")
        _upgrade_keeps_the_configuration(debs[0])
        S.run("a2enmod", "wsgi")
        port = E.free_port()
        S.install_site(open(f"{EXAMPLES}/hgweb-site.conf").read(),
                       open(f"{EXAMPLES}/hgweb.wsgi").read(), tmp_dir / "srv", big_repo,
                       bucket, port)
        S.apache_start(port)
        _miss_then_hit(hg, port, bucket, big_repo, tmp_dir)
        S.apache_stop()
        S.run("a2dissite", "hg")
    finally:
        S.apache_stop()
        installed = [p for p in PACKAGES if p in S.installed_packages()]
        if installed:
            S.run("apt-get", "purge", "-y", *installed, env={"DEBIAN_FRONTEND": "noninteractive"})
    assert S.installed_packages() == before
    for p in (S.MODULE_SO, S.ETC / "mods-available" / "hgs3cache.load",
              S.ETC / "mods-available" / "hgs3cache.conf",
              S.ETC / "mods-enabled" / "hgs3cache.load", S.DEFAULT_SPOOL_DIR,
              "/usr/bin/hgs3"):
        assert not os.path.lexists(p), f"{p} is left after the purge"
    S.run("apache2ctl", "configtest")
