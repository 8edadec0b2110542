"""Credentials rotation: HgS3CacheCredentialsFile is re-read when it changes.

httpd starts with a shared-credentials file that holds a wrong secret: the
store refuses the lookups, clones are answered by hgweb (bypass:store-auth)
and nothing is stored. The file is then rotated, without restarting httpd,
either rewritten in place (same inode, new mtime) or replaced by a new file
renamed over it (new inode; same size and mtime, so only the inode tells the
change). The next clone's miss is stored with hgweb's bytes, the clone after
it is a hit, and neither secret ever reaches a log.

Both stores check signatures (see test_harness.py::test_store_rejects_wrong_secret).
"""
import os
import time

import pytest

from pyhgs3 import env as E
from pyhgs3.checks import (PREFIX, clone_verified, replay_headers, wait_getbundles,
                           wait_objects)
from pyhgs3.httpd import hgs3cache_location

LOG_LEVEL = "info hgs3cache:debug"
# Failed lookups never open the breaker here, so the clone right after the
# rotation looks the key up (the breaker itself is test_faults.py's).
SERVER_CONF = "HgS3CacheBreaker 100 1\n"
# A failed lookup is logged (HGS300402); were the breaker to open: HGS300401.
LOOKUP_TAGS = r"HGS300401|HGS300402"


def creds_text(access_key, secret_key, profile="hgs3"):
    """An AWS shared-credentials file: a decoy default profile, then ours."""
    return (f"[default]\naws_access_key_id = decoy\naws_secret_access_key = decoy\n\n"
            f"[{profile}]\naws_access_key_id = {access_key}\n"
            f"aws_secret_access_key = {secret_key}\n")


def wrong_secret(secret):
    """A wrong secret of the same length (so a rotation keeps the file's size)."""
    return "".join("x" if c != "x" else "y" for c in secret[:4]) + secret[4:]


def write_creds(path, text):
    """Rewrite path in place (same inode), readable by the httpd children."""
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def rename_creds(path, text):
    """Write a new file and rename it over path (a new inode), keeping the old
    file's mtime so that only the inode changes when the sizes are equal."""
    old = os.stat(path)
    new = path.with_name(path.name + ".new")
    write_creds(new, text)
    os.utime(new, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(new, path)


@pytest.mark.parametrize("rotation", ["rewrite", "rename"])
def test_credentials_file_rotation(hg, httpd_factory, store, proxy, small_repo, tmp_dir,
                                   rotation):
    right = store.secret_key
    wrong = wrong_secret(right)
    assert wrong != right and len(wrong) == len(right)
    creds_dir = tmp_dir / "aws"
    creds_dir.mkdir()
    creds = creds_dir / "credentials"
    write_creds(creds, creds_text(store.access_key, wrong))

    conf = SERVER_CONF + hgs3cache_location(
        "/repo", small_repo, bucket=store.bucket, endpoint=proxy.endpoint, region=store.region,
        CredentialsFile=(str(creds), "hgs3"), Header=True)
    # /plain serves the same repository without the module: hgweb's own bytes.
    httpd = httpd_factory(repos={"repo": small_repo, "plain": small_repo}, module=True,
                          extra_conf=conf, log_level=LOG_LEVEL)
    httpd.allow_log(LOOKUP_TAGS)
    url = httpd.repo_url("repo")

    # (a) the wrong secret: the store refuses the lookup, hgweb answers,
    # nothing is captured or stored.
    clone_verified(hg, url, tmp_dir / "refused", small_repo)
    (refused,) = wait_getbundles(httpd, "repo", 1)
    assert refused["status"] == 200 and refused["note"] == "bypass:store-auth", refused
    heads = proxy.find("HEAD", PREFIX)
    assert heads and all(h["status"] == 403 for h in heads), heads
    assert proxy.find(("PUT", "POST"), PREFIX) == []
    assert store.keys() == []
    assert httpd.error_log.grep(r"HGS300402.*store lookup failed", since_mark=False)

    # (b) rotate the file under the running httpd.
    inode = creds.stat().st_ino
    if rotation == "rewrite":
        write_creds(creds, creds_text(store.access_key, right))
        assert creds.stat().st_ino == inode
    else:
        rename_creds(creds, creds_text(store.access_key, right))
        assert creds.stat().st_ino != inode
    refused_heads = len(heads)

    clone_verified(hg, url, tmp_dir / "miss", small_repo)
    miss = wait_getbundles(httpd, "repo", 2)[1]
    assert miss["status"] == 200 and miss["note"] == "miss", miss
    assert [h["status"] for h in proxy.find("HEAD", PREFIX)[refused_heads:]] == [404]
    (key,) = wait_objects(store)
    stored, ctype, _ = store.get(key)
    status, _, direct = httpd.get("/plain?cmd=getbundle", headers=replay_headers(miss))
    assert status == 200
    assert stored == direct, (len(stored), len(direct))
    assert len(stored) == miss["bytes"] and ctype == "application/mercurial-0.2"

    clone_verified(hg, url, tmp_dir / "hit", small_repo)
    hit = wait_getbundles(httpd, "repo", 3)[2]
    assert hit["note"] == "hit-redirect" and hit["status"] == 302, hit
    assert store.keys() == [key]

    # No secret in any log, at LogLevel debug. (s3rver's secret is its access
    # key id, which presigned URLs carry: it cannot be looked for there.)
    secrets = [s for s in (wrong, right) if s != store.access_key]
    assert wrong in secrets
    for log in (httpd.error_log.path, httpd.access_log.path):
        text = log.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret key appears in {log}"


def test_credentials_file_moved_away_and_back(hg, httpd_factory, store, small_repo, tmp_dir):
    """A credentials error does not stick: the file moved away (every request
    bypass:credentials), then moved back unchanged (same inode, size and
    mtime, so its stat looks as before the error): the next request uses it
    again, without the file being touched."""
    creds_dir = tmp_dir / "aws"
    creds_dir.mkdir()
    creds = creds_dir / "credentials"
    away = creds_dir / "credentials.away"
    write_creds(creds, creds_text(store.access_key, store.secret_key))
    conf = SERVER_CONF + hgs3cache_location(
        "/repo", small_repo, bucket=store.bucket, endpoint=store.endpoint, region=store.region,
        CredentialsFile=(str(creds), "hgs3"), Header=True)
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf,
                          log_level=LOG_LEVEL)
    httpd.allow_log(r"HGS300405")
    url = httpd.repo_url("repo")

    clone_verified(hg, url, tmp_dir / "miss", small_repo)
    (key,) = wait_objects(store)
    before = os.stat(creds)

    os.rename(creds, away)
    for i in range(2):
        clone_verified(hg, url, tmp_dir / f"away{i}", small_repo)
    notes = [e["note"] for e in wait_getbundles(httpd, "repo", 3)]
    assert notes == ["miss", "bypass:credentials", "bypass:credentials"], notes
    assert httpd.error_log.grep(r"HGS300405.*no usable store credentials", since_mark=False)

    os.rename(away, creds)
    after = os.stat(creds)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == \
        (before.st_ino, before.st_size, before.st_mtime_ns)
    for i in range(2):
        clone_verified(hg, url, tmp_dir / f"back{i}", small_repo)
    notes = [e["note"] for e in wait_getbundles(httpd, "repo", 5)]
    assert notes[3:] == ["hit-redirect", "hit-redirect"], notes
    assert store.keys() == [key]


def test_log_rate_limits_per_message_kind(hg, httpd_factory, small_repo, tmp_dir):
    """Each rate-limited message kind has a limiter of its own: a failed
    lookup (HGS300402) logged a moment ago does not hold back the first
    credentials error (HGS300405), and the next HGS300402 counts only the
    lookups that failed since, not the credentials errors between them."""
    creds = tmp_dir / "credentials"
    write_creds(creds, creds_text("AKIDEXAMPLE", "not-a-real-secret-0000"))
    closed = f"http://127.0.0.1:{E.free_port()}"           # nothing listens there
    conf = SERVER_CONF + hgs3cache_location(
        "/repo", small_repo, bucket="hgs3-test", endpoint=closed, region="us-east-1",
        CredentialsFile=(str(creds), "hgs3"), Header=True)
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf,
                          log_level=LOG_LEVEL)
    httpd.allow_log(LOOKUP_TAGS, r"HGS300405")
    url = httpd.repo_url("repo")

    def getbundle():
        """Replay the clone's getbundle (a clone is too slow for the interval)."""
        status, _, body = httpd.get("/repo?cmd=getbundle", headers=headers)
        assert status == 200 and body.startswith(b"\x04zstd"), (status, body[:100])

    start = time.monotonic()
    r = hg.clone(url, tmp_dir / "clone", "-U")           # 00402 logged
    assert r.ok, r
    first_logged = time.monotonic()
    headers = replay_headers(wait_getbundles(httpd, "repo", 1)[0])
    getbundle()                                           # 00402 held back (1)
    os.rename(creds, creds.with_name("credentials.away"))
    getbundle()                                           # 00405 logged: its own kind
    getbundle()                                           # 00405 held back
    assert time.monotonic() - start < 9, "too slow to stay within one interval"
    notes = [e["note"] for e in wait_getbundles(httpd, "repo", 4)]
    assert notes == ["bypass:store-error"] * 2 + ["bypass:credentials"] * 2, notes
    assert len(httpd.error_log.grep(r"HGS300402")) == 1
    assert len(httpd.error_log.grep(r"HGS300405")) == 1, httpd.error_log.grep(r"HGS3004")

    os.rename(creds.with_name("credentials.away"), creds)
    time.sleep(max(0.0, first_logged + 10.5 - time.monotonic()))
    getbundle()                                           # 00402 again, counting 1
    lines = httpd.error_log.grep(r"HGS300402")
    assert len(lines) == 2 and "[1 similar messages suppressed]" in lines[1], lines
