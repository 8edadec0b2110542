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
import shutil
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


def _remove(path):
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
            _remove(p)
            if copy is not None:
                subprocess.run(["cp", "-a", str(copy), str(p)], check=True)
        shutil.rmtree(saved, ignore_errors=True)


def installed_packages():
    """{name: version} of the installed Debian packages."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n"],
                         capture_output=True, text=True, check=True).stdout
    return {p[1]: p[2] for p in (line.split() for line in out.splitlines())
            if len(p) == 3 and p[0] == "installed"}
