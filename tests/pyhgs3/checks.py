"""Waits and checks the integration tests share: access log entries, objects
in the bucket, key lines in the error log, the spool directory, and the
headers of a logged getbundle to replay it.

httpd writes an access log entry after the response has gone out and the
module uploads in the background, so a client can be faster than both: the
wait_* helpers poll until what they wait for is there, and fail with an
AssertionError that says what was found instead.
"""
import re

from . import env as E
from .hgwire import getbundle_headers

PREFIX = "hgcache/"             # the default HgS3CacheKeyPrefix
UPLOAD_WAIT = 20                # seconds an upload may take to appear in the bucket
KEY_LINE = re.compile(
    r"hgs3cache: key (?P<key>[0-9a-f]{64}) for (?P<repo>\S+) cmd=(?P<cmd>\S+)")


# --- the access log ------------------------------------------------------------
def getbundles(httpd, name, method="GET"):
    """Access log entries of getbundle on /<name>."""
    return httpd.access_log.find(method, rf"^/{re.escape(name)}\?cmd=getbundle$")


def wait_getbundles(httpd, name, count=1, timeout=30, method="GET"):
    """The getbundle entries of /<name>, once there are at least `count`."""
    def found():
        e = getbundles(httpd, name, method)
        return e if len(e) >= count else None
    try:
        return E.wait_until(found, timeout, what=f"{count} getbundle on /{name}")
    except TimeoutError:
        got = getbundles(httpd, name, method)
        raise AssertionError(f"{len(got)} {method} getbundle on /{name} in the access log, "
                             f"expected {count}: {got}") from None


def replay_headers(entry, extra=None):
    """The request headers of a logged getbundle, as hg sent them (the access
    log records X-HgArg-1 and X-HgProto-1; the small repositories' clone
    arguments fit in X-HgArg-1), plus `extra` ({name: value})."""
    assert entry["hgarg1"] and len(entry["hgarg1"]) < 1000, entry["hgarg1"]
    headers = getbundle_headers(entry["hgarg1"], entry["hgproto"])
    headers.update(extra or {})
    return headers


# --- the bucket ------------------------------------------------------------------
def wait_objects(store, count=1, timeout=UPLOAD_WAIT, prefix=PREFIX, name_re=None):
    """The sorted object names under `prefix`, once there are at least `count`;
    with name_re, every name must match it."""
    def found():
        k = store.keys(prefix)
        return k if len(k) >= count else None
    try:
        keys = E.wait_until(found, timeout, interval=0.2, what=f"{count} object(s) in {store}")
    except TimeoutError:
        raise AssertionError(f"{store}: {store.keys(prefix)} under {prefix} after {timeout}s, "
                             f"expected {count} object(s)") from None
    if name_re is not None:
        assert all(name_re.match(k) for k in keys), keys
    return sorted(keys)


# --- the error log ---------------------------------------------------------------
def key_lines(httpd, cmd=None):
    """[{key, repo, cmd}, ...] of every key line (LogLevel hgs3cache:debug)
    the instance logged since it started; only those of wire command `cmd`
    when given."""
    return [m.groupdict() for m in map(KEY_LINE.search, httpd.error_log.lines(since_mark=True))
            if m and (cmd is None or m.group("cmd") == cmd)]


# --- the spool directory -----------------------------------------------------------
def spool_dir(tmp_dir, name="spool"):
    """A fresh HgS3CacheSpoolDir the httpd children can write."""
    d = tmp_dir / name
    d.mkdir()
    E.chown_to_server(d)
    return d


def spool_leftovers(d):
    """Spool and lock files left in a spool directory."""
    return sorted(p.name for p in d.iterdir()
                  if p.name.startswith(("hgs3spool.", "hgs3lock.")))


# --- clones --------------------------------------------------------------------------
def clone_verified(hg, url, dest, repo):
    """hg clone -U that must succeed, verify clean and match the server's repo."""
    r = hg.clone(url, dest, "-U")
    assert r.ok, r
    hg.assert_verify_clean(dest)
    hg.assert_same_history(repo, dest)
    return dest
