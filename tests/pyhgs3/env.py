"""Paths, users, ports and the per-run work directory of the integration tests."""
import os
import pwd
import grp
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
TOP_DIR = TESTS_DIR.parent

APACHE2 = os.environ.get("HGS3_APACHE2", "/usr/sbin/apache2")
APACHE_MODULES = os.environ.get("HGS3_APACHE_MODULES", "/usr/lib/apache2/modules")
HG = os.environ.get("HGS3_HG", "/usr/bin/hg")
PYTHON = "/usr/bin/python3"          # Debian's: it sees python3-mercurial
NODE = os.environ.get("HGS3_NODE", shutil.which("node") or "/usr/bin/node")
S3RVER_DIR = TESTS_DIR / "s3rver"
LOOPBACK = "127.0.0.1"

# The user httpd children (and hgweb) run as when the tests run as root.
SERVER_USER = "nobody"
SERVER_GROUP = "nogroup"


def module_path():
    """The built module: $HGS3_MODULE, else <top>/.libs/mod_hgs3cache.so."""
    return Path(os.environ.get("HGS3_MODULE") or TOP_DIR / ".libs" / "mod_hgs3cache.so")


def running_as_root():
    return os.geteuid() == 0


def server_ids():
    """(uid, gid) httpd children and hgweb run as."""
    if running_as_root():
        return pwd.getpwnam(SERVER_USER).pw_uid, grp.getgrnam(SERVER_GROUP).gr_gid
    return os.getuid(), os.getgid()


def chown_to_server(path):
    """Give a tree to the server user (when root), so hgweb can write it (push)."""
    if not running_as_root():
        return
    uid, gid = server_ids()
    path = Path(path)
    os.lchown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def make_world_readable(path):
    """a+rX on a whole tree."""
    path = Path(path)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            p = os.path.join(root, name)
            os.chmod(p, os.stat(p).st_mode | 0o555)
        for name in files:
            p = os.path.join(root, name)
            mode = os.stat(p).st_mode
            os.chmod(p, mode | 0o444 | (0o111 if mode & 0o100 else 0))
    os.chmod(path, os.stat(path).st_mode | (0o555 if path.is_dir() else 0o444))


def free_port(host=LOOPBACK):
    """A TCP port free on host right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it is true; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class TestEnv:
    """The run's work directory: /tmp/hgs3-tests-XXXX (0755, world-readable so
    that httpd children running as nobody can read repositories and scripts).
    Removed at the end unless HGS3_KEEP=1."""

    __test__ = False    # not a test class for pytest

    def __init__(self, base=None):
        os.umask(0o022)
        self.keep = os.environ.get("HGS3_KEEP", "") not in ("", "0")
        self.root = Path(tempfile.mkdtemp(prefix="hgs3-tests-", dir=base))
        os.chmod(self.root, 0o755)
        self._counter = 0

    def mkdir(self, name):
        """A new, unique directory under the work dir (name-N)."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
        while True:
            self._counter += 1
            path = self.root / f"{safe}-{self._counter}"
            try:
                path.mkdir(mode=0o755)
                os.chmod(path, 0o755)
                return path
            except FileExistsError:
                continue

    def cleanup(self):
        if self.keep:
            print(f"\nHGS3_KEEP: test files kept in {self.root}")
            return
        shutil.rmtree(self.root, ignore_errors=True)


def is_executable(path):
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK)
