"""The machine's own state, for the tests that must change it: the system
Apache (/etc/apache2, its modules, logs and cache), installed files and
Debian packages.

Those tests hold one lock (exclusive()) so that no two of them, in this run or
another one, change the system at the same time; each snapshot()s what it
changes and restores it whatever happens.
"""
import contextlib
import fcntl
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

LOCK_PATH = Path("/run/lock/hgs3-tests-system.lock")
DEFAULT_SPOOL_DIR = Path("/var/cache/apache2/mod_hgs3cache")


@contextlib.contextmanager
def exclusive(timeout=1800):
    """Hold the machine-wide lock of the tests that change the system."""
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_PATH, "a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{LOCK_PATH} still held after {timeout}s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def remove(path):
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


@contextlib.contextmanager
def snapshot(*paths):
    """Copy each path (file or tree, owners and modes kept) aside; on exit put
    back exactly what was there: a path that did not exist is removed."""
    saved = Path(tempfile.mkdtemp(prefix="hgs3-snapshot-"))
    kept = {}
    try:
        for i, p in enumerate(map(Path, paths)):
            if p.exists() or p.is_symlink():
                kept[p] = saved / str(i)
                subprocess.run(["cp", "-a", str(p), str(kept[p])], check=True)
            else:
                kept[p] = None
        yield
    finally:
        for p, copy in kept.items():
            remove(p)
            if copy is not None:
                subprocess.run(["cp", "-a", str(copy), str(p)], check=True)
        shutil.rmtree(saved, ignore_errors=True)


def installed_packages():
    """{name: version} of the installed Debian packages."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n"],
                         capture_output=True, text=True, check=True).stdout
    return {p[1]: p[2] for p in (line.split() for line in out.splitlines())
            if len(p) == 3 and p[0] == "installed"}


# --- the system Apache (Debian's /etc/apache2, run by apache2ctl) -------------
ETC = Path("/etc/apache2")
LOG_DIR = Path("/var/log/apache2")
RUN_DIR = Path("/var/run/apache2")
PID_FILE = RUN_DIR / "apache2.pid"
MODULE_SO = Path("/usr/lib/apache2/modules/mod_hgs3cache.so")
CREDENTIALS = ETC / "hgs3cache.credentials"      # the example site's path
HG_ACCESS_LOG = LOG_DIR / "hg-access.log"       # the example site's CustomLog
# What the tests of the system Apache may change, and put back afterwards.
# (/var/lib/apache2 holds a2enmod's and a2ensite's record of who enabled what.)
SYSTEM_PATHS = (ETC, Path("/var/lib/apache2"), LOG_DIR, RUN_DIR, Path("/var/lock/apache2"),
                DEFAULT_SPOOL_DIR, MODULE_SO, Path("/usr/local/bin/hgs3"))
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"}


def run(*cmd, cwd=None, env=None, timeout=600):
    """Run a command, fail with its output when it fails; returns stdout."""
    p = subprocess.run(cmd, cwd=cwd, env=dict(ENV, **(env or {})), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} -> {p.returncode}:\n{p.stdout}"
    return p.stdout


def apache_pid():
    """The pid of the running system Apache, or None."""
    try:
        pid = int(PID_FILE.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def apache_start(port):
    run("apache2ctl", "start")
    deadline = time.monotonic() + 20
    while not (apache_pid() and _port_open(port)):
        assert time.monotonic() < deadline, "the system Apache did not start:\n" + \
            (LOG_DIR / "error.log").read_text(errors="replace")[-3000:]
        time.sleep(0.1)


def apache_stop():
    """Stop the system Apache this test started (its pid file's process)."""
    pid = apache_pid()
    if pid is None:
        return
    subprocess.run(["apache2ctl", "stop"], env=ENV, capture_output=True, timeout=60)
    deadline = time.monotonic() + 30
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            return
        time.sleep(0.1)


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def site_from_example(example, root, repo, bucket, port):
    """The example site (conf/hgweb-site.conf) made to serve `repo` at /repo
    on 127.0.0.1:port from `root`, caching in `bucket` (a StoreBucket)."""
    text = example.replace("/srv/hg/repos/repo", str(repo)).replace("/srv/hg", str(root))
    text = text.replace("<VirtualHost *:80>", f"<VirtualHost *:{port}>")
    text = re.sub(r"HgS3CacheBucket \S+", f"HgS3CacheBucket {bucket.bucket}", text)
    text = re.sub(r"HgS3CacheRegion \S+", f"HgS3CacheRegion {bucket.region}\n"
                  f"        HgS3CacheEndpoint {bucket.endpoint}", text)
    assert str(repo) in text and bucket.endpoint in text and f"*:{port}" in text, text
    return text


def install_site(example_site, example_wsgi, root, repo, bucket, port):
    """Everything the README's site needs, as an operator writes it: the site
    in sites-available (enabled), hgweb.wsgi and hgweb.config under root,
    the credentials file, and ports.conf listening on 127.0.0.1:port only."""
    root.mkdir(parents=True, exist_ok=True)
    (ETC / "sites-available" / "hg.conf").write_text(
        site_from_example(example_site, root, repo, bucket, port))
    (root / "hgweb.wsgi").write_text(example_wsgi.replace("/srv/hg", str(root)))
    (root / "hgweb.config").write_text(f"[paths]\n/repo = {repo}\n[web]\nallow-pull = true\n")
    for p in (root, root / "hgweb.wsgi", root / "hgweb.config"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    CREDENTIALS.write_text(f"[default]\naws_access_key_id = {bucket.access_key}\n"
                           f"aws_secret_access_key = {bucket.secret_key}\n")
    os.chmod(CREDENTIALS, 0o640)
    shutil.chown(CREDENTIALS, "root", "www-data")
    (ETC / "ports.conf").write_text(f"Listen 127.0.0.1:{port}\n")
    run("a2ensite", "hg")


def getbundle_notes():
    """The %{hgs3cache}n of each getbundle in the example site's access log."""
    try:
        lines = HG_ACCESS_LOG.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    return [ln.rsplit(" ", 1)[-1] for ln in lines if "cmd=getbundle" in ln]


def module_log_problems():
    """mod_hgs3cache's warn/error lines in the system Apache's error log."""
    try:
        text = (LOG_DIR / "error.log").read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [ln for ln in text.splitlines() if re.search(r"\[hgs3cache:(warn|error|crit)", ln)]


def pwd_uid(user):
    return pwd.getpwnam(user).pw_uid
