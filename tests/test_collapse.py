"""Collapsed misses (SPEC "Collapsed misses"): one hgweb generation per key
per host.

Real httpd (event MPM, two child processes) + hgweb (mod_wsgi daemon mode
and CGI) + the real hg client + mod_hgs3cache against both S3 servers (the
`store` fixture, through the recording FaultProxy). hgweb's own getbundle
count comes from a counting wrapper around the hgweb application
(HttpdInstance count_hgweb), not from the module's notes.
"""
import hashlib
import http.client
import os
import signal
import socket
import threading
import time

import pytest

from pyhgs3 import env as E
from pyhgs3.checks import PREFIX, spool_dir, spool_leftovers, wait_getbundles
from test_miss import Gate, uploads, wait_stored
from test_status import counters

# Two child processes, enough threads for 20 clones in each.
MPM_TWO_CHILDREN = """\
StartServers 2
ServerLimit 2
ThreadLimit 32
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 40
MaxSpareThreads 64
MaxConnectionsPerChild 0
"""


def herd_httpd(httpd_factory, store, proxy, repo, spool, mode="wsgi", server_conf="",
               **directives):
    """/repo with the module against the store through the proxy, two child
    processes, hgweb's own getbundles counted (HttpdInstance.count_hgweb).
    server_conf: lines for the main server (e.g. "Timeout 300\n")."""
    d = {"SpoolDir": str(spool)}
    d.update(directives)
    conf = server_conf + store.location_conf(repo, location="/repo", endpoint=proxy.endpoint, **d)
    return httpd_factory(repos={"repo": repo}, module=True, extra_conf=conf,
                         mpm_conf=MPM_TWO_CHILDREN, mode=mode, count_hgweb=True)


def clone_herd(hg, url, tmp_dir, n, tag="c"):
    """n concurrent clones: [(clone result, verify result, history) or (error, None, None)]."""
    results = [None] * n
    start = threading.Barrier(n)

    def one(i):
        try:
            dest = tmp_dir / f"{tag}{i}"
            start.wait(30)
            r = hg.clone(url, dest, "-U")
            if r.ok:
                results[i] = (r, hg.verify(dest), hg.history(dest))
            else:
                results[i] = (r, None, None)
        except Exception as e:            # reported by the caller
            results[i] = (e, None, None)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return results


def nodes(history):
    """The changeset ids of hg.history() lines (the phases differ: the
    server's repository is not publishing, a clone's are public)."""
    return sorted(line.split()[0] for line in history)


def assert_all_verified(results, expected):
    expected = nodes(expected)
    for i, (r, v, hist) in enumerate(results):
        assert v is not None, f"clone {i}: {r}"
        assert v.rc == 0, f"verify {i}: {v}"
        assert nodes(hist) == expected, f"clone {i}: history differs"


def check_herd(hg, httpd, store, proxy, repo, spool, tmp_dir, n):
    results = clone_herd(hg, httpd.repo_url("repo"), tmp_dir, n)
    entries = wait_getbundles(httpd, "repo", count=n)
    assert_all_verified(results, hg.history(repo))
    notes = sorted(e["note"] for e in entries)
    assert notes == ["collapsed"] * (n - 1) + ["miss"], notes
    assert httpd.hgweb_getbundles() == 1, "hgweb generated more than once"
    (key,) = wait_stored(store, proxy)
    time.sleep(0.5)
    assert [(u["method"], u["status"]) for u in uploads(proxy)] == [("PUT", 200)]
    assert store.keys(PREFIX) == [key]
    body = store.get(key)[0]
    assert all(e["bytes"] == len(body) for e in entries), [e["bytes"] for e in entries]
    c = counters(httpd)
    assert c["Collapsed"] == n - 1 and c["CollapseFallbacks"] == 0 and \
        c["CollapseAborts"] == 0, c
    E.wait_until(lambda: not spool_leftovers(spool), 20, what="spool and lock removed")


# --- the herd --------------------------------------------------------------------
def test_herd_wsgi_one_generation(hg, httpd_factory, history_repo, tmp_dir, store, proxy):
    """20 concurrent clones of one cold key (23 MB history repository, hgweb
    under mod_wsgi): hgweb answers one getbundle, the notes are 1 miss and
    19 collapsed, every clone verifies with the server's history, and the
    key is uploaded once."""
    spool = spool_dir(tmp_dir)
    httpd = herd_httpd(httpd_factory, store, proxy, history_repo, spool)
    check_herd(hg, httpd, store, proxy, history_repo, spool, tmp_dir, 20)


def test_herd_cgi_one_generation(hg, httpd_factory, history_repo, tmp_dir, store, proxy):
    """The same with hgweb as a CGI script, 8 clones."""
    spool = spool_dir(tmp_dir)
    httpd = herd_httpd(httpd_factory, store, proxy, history_repo, spool, mode="cgi")
    check_herd(hg, httpd, store, proxy, history_repo, spool, tmp_dir, 8)


# --- helpers for single requests ---------------------------------------------------
def getbundle_conn(httpd, headers, name="repo"):
    """A raw getbundle request: (connection, response) with the head read."""
    conn = http.client.HTTPConnection(E.LOOPBACK, httpd.port, timeout=120)
    conn.request("GET", f"/{name}?cmd=getbundle", headers=headers)
    return conn, conn.getresponse()


def heads_of(hg, repo):
    return hg.heads(repo)


def wait_hgweb_started(httpd, count=1, timeout=60):
    E.wait_until(lambda: httpd.hgweb_getbundles() >= count, timeout,
                 what=f"{count} getbundle in hgweb")


def spool_bytes(spool):
    """Size of the (one) spool file in the spool directory, 0 when none."""
    sizes = [p.stat().st_size for p in spool.iterdir() if p.name.startswith("hgs3spool.")]
    return max(sizes) if sizes else 0


# --- boundaries ----------------------------------------------------------------------
def test_collapse_off_is_todays_behaviour(hg, httpd_factory, small_repo, tmp_dir, store, proxy):
    """HgS3CacheCollapse off: every concurrent miss runs hgweb (notes miss and
    in-progress), the upload is still made once."""
    spool = spool_dir(tmp_dir)
    httpd = herd_httpd(httpd_factory, store, proxy, small_repo, spool, Collapse="off")
    gate = Gate()
    proxy.add_rule("delay", method=("PUT", "POST"), seconds=gate)
    n = 4
    try:
        results = clone_herd(hg, httpd.repo_url("repo"), tmp_dir, n)
        entries = wait_getbundles(httpd, "repo", count=n)
    finally:
        gate.open()
    assert_all_verified(results, hg.history(small_repo))
    notes = sorted(e["note"] for e in entries)
    assert notes == ["miss"] + ["miss-store-skipped:in-progress"] * (n - 1), notes
    assert httpd.hgweb_getbundles() == n
    wait_stored(store, proxy)
    assert counters(httpd)["Collapsed"] == 0


def test_users_never_follow_each_other(hg, httpd_factory, small_repo, tmp_dir, store, proxy):
    """Two users (the user is part of the key): each user's clones collapse
    onto that user's own generation only, so hgweb runs once per user."""
    from pyhgs3.auth import auth_location, user_url, write_htpasswd
    users = {"alice": "pw-a", "bob": "pw-b"}
    htpasswd = write_htpasswd(tmp_dir / "htpasswd", users)
    spool = spool_dir(tmp_dir)
    conf = auth_location("/repo", htpasswd) + store.location_conf(
        small_repo, location="/repo", endpoint=proxy.endpoint, SpoolDir=str(spool))
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=conf,
                          mpm_conf=MPM_TWO_CHILDREN, count_hgweb=True)
    gate = Gate()
    proxy.add_rule("delay", method=("PUT", "POST"), seconds=gate)
    per_user = 3
    try:
        results = {}
        threads = []
        for u in users:
            def run(u=u):
                results[u] = clone_herd(hg, user_url(httpd, users, u), tmp_dir, per_user, tag=u)
            threads.append(threading.Thread(target=run))
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        entries = wait_getbundles(httpd, "repo", count=2 * per_user)
    finally:
        gate.open()
    for u in users:
        assert_all_verified(results[u], hg.history(small_repo))
        notes = sorted(e["note"] for e in entries if e["user"] == u)
        assert notes == ["collapsed"] * (per_user - 1) + ["miss"], (u, notes)
    assert httpd.hgweb_getbundles() == 2
    assert len(wait_stored(store, proxy, count=2)) == 2


def test_late_arrival_served_from_the_spool(hg, httpd_factory, small_repo, tmp_dir, store,
                                            proxy):
    """A clone made after the leader's end, while its upload is held back at
    the store, is collapsed: served from the complete spool, not by hgweb."""
    spool = spool_dir(tmp_dir)
    httpd = herd_httpd(httpd_factory, store, proxy, small_repo, spool)
    gate = Gate()
    proxy.add_rule("delay", method=("PUT", "POST"), seconds=gate)
    try:
        first = hg.clone(httpd.repo_url("repo"), tmp_dir / "first", "-U")
        assert first.ok, first
        proxy.wait_for(("PUT", "POST"), PREFIX, done=None, timeout=20)
        late = hg.clone(httpd.repo_url("repo"), tmp_dir / "late", "-U")
        assert late.ok, late
        hg.assert_verify_clean(tmp_dir / "late")
        entries = wait_getbundles(httpd, "repo", count=2)
        held = spool_leftovers(spool)
    finally:
        gate.open()
    assert [e["note"] for e in entries] == ["miss", "collapsed"], entries
    assert httpd.hgweb_getbundles() == 1
    assert any(h.startswith("hgs3spool.") for h in held), held
    (key,) = wait_stored(store, proxy)
    assert entries[1]["bytes"] == len(store.get(key)[0])
    assert nodes(hg.history(tmp_dir / "late")) == nodes(hg.history(small_repo))
    E.wait_until(lambda: not spool_leftovers(spool), 20, what="spool and lock removed")


def test_miss_during_the_leaders_store_check_follows(hg, httpd_factory, small_repo, tmp_dir,
                                                     store, proxy):
    """Without a presence cache the leader asks the store once more after
    taking the key's lock (the object may have been stored meanwhile). A
    concurrent miss that reaches the lock during that check (held at the
    proxy) follows the leader: it does not find a lock without a record
    and run hgweb uncaptured (miss-store-skipped:in-progress)."""
    from pyhgs3.hgwire import clone_headers
    spool = spool_dir(tmp_dir)
    httpd = herd_httpd(httpd_factory, store, proxy, small_repo, spool,
                       server_conf="HgS3CachePresence none\n")
    headers = clone_headers(heads_of(hg, small_repo))
    gate = Gate()
    proxy.add_rule("delay", method="HEAD", path=PREFIX, seconds=0, times=1)     # the lookup
    proxy.add_rule("delay", method="HEAD", path=PREFIX, seconds=gate, times=1)  # the check
    got = {}

    def get(name):
        got[name] = httpd.get("/repo?cmd=getbundle", headers=headers, timeout=120)
    threads = {n: threading.Thread(target=get, args=(n,)) for n in ("leader", "follower")}
    try:
        threads["leader"].start()
        proxy.wait_for("HEAD", PREFIX, count=2, done=None, timeout=30)
        threads["follower"].start()
        proxy.wait_for("HEAD", PREFIX, count=2, done=True, timeout=30)  # its lookup answered
        time.sleep(2)                                   # it reaches the lock
    finally:
        gate.open()
    for t in threads.values():
        t.join(120)
    assert got["leader"][0] == 200 and got["follower"][0] == 200, got
    assert got["follower"][2] == got["leader"][2]
    entries = wait_getbundles(httpd, "repo", count=2)
    assert sorted(e["note"] for e in entries) == ["collapsed", "miss"], entries
    assert httpd.hgweb_getbundles() == 1
    wait_stored(store, proxy)


@pytest.mark.parametrize("inline", [True, False], ids=["kept-inline", "not-stored"])
def test_followers_of_a_small_body_complete(hg, httpd_factory, small_repo, tmp_dir, store, proxy,
                                            inline):
    """The leader's body is below HgS3CacheMinSize, so it is never uploaded
    (kept inline, or with HgS3CacheInlineMax 0 not kept at all). Three
    followers attach while hgweb is paused after its first block (each has
    its head and first bytes), and all complete with exactly hgweb's body:
    the leader marks its record done before deciding not to store, so its
    followers never see a failed leader."""
    from pyhgs3.hgwire import clone_headers
    from test_miss import assert_nothing_stored, assert_same_body, direct_getbundle
    headers = clone_headers(heads_of(hg, small_repo))
    plain = httpd_factory(repos={"repo": small_repo})
    direct = direct_getbundle(plain, "repo", headers)
    plain.stop()
    assert 64 * 1024 < len(direct) < 256 * 1024, len(direct)
    spool = spool_dir(tmp_dir)
    httpd = herd_httpd(httpd_factory, store, proxy, small_repo, spool, MinSize="1M",
                       InlineMax="256K" if inline else "0")
    httpd.hgweb_pause_path.write_text("")
    leader_conn, leader = [], []

    def lead():
        c, r = getbundle_conn(httpd, headers)
        leader_conn.append(c)
        leader.append((r.status, r.read()))
    lt = threading.Thread(target=lead)
    try:
        lt.start()
        E.wait_until(lambda: spool_bytes(spool) > 0, 60, what="the leader's first block")
        # each returns once its head arrived, while hgweb is paused and ran
        # for the leader only: attached, first bytes sent
        followers = [getbundle_conn(httpd, headers) for _ in range(3)]
        assert all(resp.status == 200 for _, resp in followers)
        assert httpd.hgweb_getbundles() == 1
    finally:
        httpd.hgweb_pause_path.unlink()
    outcome = []
    for conn, resp in followers:
        try:
            outcome.append(resp.read())
        except (http.client.IncompleteRead, ConnectionError, OSError) as e:
            outcome.append(repr(e)[:80])
        conn.close()
    lt.join(60)
    leader_conn[0].close()
    assert leader and leader[0][0] == 200
    assert_same_body(leader[0][1], direct, "the leader's body")
    for i, body in enumerate(outcome):
        assert isinstance(body, bytes), f"follower {i}: {body}"
        assert_same_body(body, direct, f"follower {i}'s body")
    entries = wait_getbundles(httpd, "repo", count=4)
    leader_note = "miss" if inline else "miss-store-skipped:too-small"
    assert sorted(e["note"] for e in entries) == ["collapsed"] * 3 + [leader_note], entries
    assert httpd.hgweb_getbundles() == 1
    c = counters(httpd)
    assert c["CollapseAborts"] == 0 and c["CollapseFallbacks"] == 0, c
    assert_nothing_stored(store, proxy)
    E.wait_until(lambda: not spool_leftovers(spool), 20, what="spool and lock removed")
    if inline:
        status, _, body = httpd.get("/repo?cmd=getbundle", headers=headers)
        assert status == 200
        assert_same_body(body, direct, "the inline entry")
        assert wait_getbundles(httpd, "repo", count=5)[-1]["note"] == "hit-inline"
        assert httpd.hgweb_getbundles() == 1


def test_full_spool_dir_no_collapse_no_failure(hg, httpd_factory, big_repo, tmp_dir, store,
                                               proxy):
    """HgS3CacheSpoolDir on a full tmpfs (1 MiB, filled up before the
    clones): the leader's spool fails before it published a byte, so its
    followers fall back to hgweb; every clone succeeds and verifies, nothing
    is stored, nothing is left behind."""
    import subprocess
    spool = tmp_dir / "spool"
    spool.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "hgs3-full-coll",
                        str(spool)], capture_output=True)
    assert r.returncode == 0, f"cannot mount a tmpfs for the spool: {r.stderr!r}"
    try:
        filler = spool / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        E.chown_to_server(spool)
        httpd = herd_httpd(httpd_factory, store, proxy, big_repo, spool)
        httpd.allow_log(r"HGS300101: spool write failed")
        n = 4
        results = clone_herd(hg, httpd.repo_url("repo"), tmp_dir, n)
        assert_all_verified(results, hg.history(big_repo))
        entries = wait_getbundles(httpd, "repo", count=n)
        assert "collapsed" not in [e["note"] for e in entries], entries
        time.sleep(1)
        assert store.keys(PREFIX) == []
        E.wait_until(lambda: not spool_leftovers(spool), 20, what="nothing left")
        httpd.stop()
    finally:
        subprocess.run(["umount", "-l", str(spool)], capture_output=True)


# --- the leader fails ----------------------------------------------------------------
def test_hgweb_dies_midway(hg, httpd_factory, history_repo, tmp_dir, store, proxy):
    """The mod_wsgi daemon is killed while the leader's body is half spooled:
    followers that had sent bytes fail their clone (never a complete short
    body), any that had not fall back and succeed; no object, no spool or
    lock file is left, and the next clone succeeds."""
    spool = spool_dir(tmp_dir)
    httpd = herd_httpd(httpd_factory, store, proxy, history_repo, spool)
    httpd.allow_log(r"\[wsgi:", r"HGS301701", r"End of script output", r"Truncated or oversized")
    hd = {"Accept-Encoding": "identity"}
    from pyhgs3.hgwire import clone_headers
    headers = clone_headers(heads_of(hg, history_repo))
    headers.update(hd)
    leader_conn, leader = getbundle_conn(httpd, headers)
    assert leader.status == 200
    wait_hgweb_started(httpd)
    E.wait_until(lambda: spool_bytes(spool) > 64 * 1024, 60, what="the leader's first bytes")
    followers = [getbundle_conn(httpd, headers) for _ in range(3)]
    got = [(resp.status, resp.read(1024)) for _, resp in followers]
    assert all(s == 200 and len(b) == 1024 for s, b in got), got
    pid = int(httpd.hgweb_count_path.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    outcome = []
    for conn, resp in followers + [(leader_conn, leader)]:
        try:
            outcome.append(("complete", len(resp.read())))
        except (http.client.IncompleteRead, ConnectionError, OSError) as e:
            outcome.append(("broken", repr(e)[:80]))
        conn.close()
    # (the leader's own client gets whatever mod_wsgi makes of a dead daemon)
    assert all(o[0] == "broken" for o in outcome[:3]), outcome
    entries = wait_getbundles(httpd, "repo", count=4)
    assert sorted(e["note"] for e in entries)[:3] == ["collapsed"] * 3, entries
    assert counters(httpd)["CollapseAborts"] == 3
    E.wait_until(lambda: not spool_leftovers(spool), 20, what="nothing left")
    assert store.keys(PREFIX) == []
    clone = hg.clone(httpd.repo_url("repo"), tmp_dir / "after", "-U")
    assert clone.ok, clone
    hg.assert_verify_clean(tmp_dir / "after")


# --- the leader's client leaves ----------------------------------------------------
@pytest.mark.parametrize("fraction", [0.1, 0.9])
def test_leader_client_leaves(hg, httpd_factory, history_repo, tmp_dir, store, proxy, fraction):
    """The leader's client reads `fraction` of the body and disconnects while
    5 followers (hg clones) are attached: the leader drains hgweb to the end,
    every follower completes and verifies, and the stored object equals
    hgweb's body."""
    from pyhgs3.hgwire import clone_headers
    from test_miss import assert_same_body, direct_getbundle
    headers = clone_headers(heads_of(hg, history_repo))
    plain = httpd_factory(repos={"repo": history_repo})
    direct = direct_getbundle(plain, "repo", headers)
    plain.stop()
    spool = spool_dir(tmp_dir)
    httpd = herd_httpd(httpd_factory, store, proxy, history_repo, spool)
    httpd.allow_log(r"\[wsgi:")
    conn, leader = getbundle_conn(httpd, headers)
    assert leader.status == 200
    want = int(len(direct) * fraction)
    got = 0
    results = []
    herd = None
    while got < want:
        chunk = leader.read(min(65536, want - got))
        assert chunk, "the leader's body ended early"
        got += len(chunk)
        if herd is None and got >= min(want, 256 * 1024):
            # followers attach while the leader is still being read
            herd = threading.Thread(
                target=lambda: results.extend(
                    clone_herd(hg, httpd.repo_url("repo"), tmp_dir, 5)))
            herd.start()
            time.sleep(3)
    sock = conn.sock
    sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    herd.join(600)
    assert_all_verified(results, hg.history(history_repo))
    entries = wait_getbundles(httpd, "repo", count=6)
    assert sorted(e["note"] for e in entries) == ["collapsed"] * 5 + ["miss"], entries
    assert httpd.hgweb_getbundles() == 1
    (key,) = wait_stored(store, proxy)
    assert_same_body(store.get(key)[0], direct)
    E.wait_until(lambda: not spool_leftovers(spool), 20, what="spool and lock removed")


# --- slow followers and memory -------------------------------------------------------
def read_all(resp, rate=None, chunk=65536):
    """Read a response to its end (at most `rate` bytes/s): (bytes, sha256,
    seconds to the last byte)."""
    h, n, t0 = hashlib.sha256(), 0, time.monotonic()
    while True:
        b = resp.read(chunk)
        if not b:
            break
        h.update(b)
        n += len(b)
        if rate:
            ahead = n / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    return n, h.hexdigest(), time.monotonic() - t0


def paused_client(httpd, headers, rcvbuf=16384):
    """A getbundle request on a socket with a small receive buffer (so that
    it fills at once when the client stops reading): (connection, response)
    with the head read."""
    sock = socket.create_connection((E.LOOPBACK, httpd.port), timeout=120)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    conn = http.client.HTTPConnection(E.LOOPBACK, httpd.port, timeout=120)
    conn.sock = sock
    conn.request("GET", "/repo?cmd=getbundle", headers=headers)
    return conn, conn.getresponse()


def received_unread(conn, resp):
    """Bytes that reached a client and wait unread: in the response's read
    buffer and in the socket's receive queue."""
    import fcntl
    import struct
    import termios
    queued = struct.unpack("i", fcntl.ioctl(conn.sock.fileno(), termios.FIONREAD,
                                            b"\0\0\0\0"))[0]
    return len(resp.fp.peek()) + queued


def test_slow_follower_does_not_slow_the_leader(hg, httpd_factory, history_repo, tmp_dir, store,
                                               proxy):
    """A follower whose client stops reading (its small receive buffer
    full) does not pace the leader: the leader's client gets the whole body
    (23 MB) and the object is stored while the follower has received less
    than 5% of it. Were the leader paced by its slowest follower, it would
    never finish; here it does within seconds, with no timing bound. Then
    the follower reads on and gets the whole body, from a spool file the
    upload has already removed."""
    from pyhgs3.hgwire import clone_headers
    spool = spool_dir(tmp_dir)
    # the stalled follower's write must outlast the leader and the upload
    # even on a loaded machine: more than the harness's Timeout 30
    httpd = herd_httpd(httpd_factory, store, proxy, history_repo, spool,
                       server_conf="Timeout 300\n")
    headers = clone_headers(heads_of(hg, history_repo))
    # the leader pauses after its first block until the follower is attached
    httpd.hgweb_pause_path.write_text("")
    leader, conns = {}, []

    def lead():
        try:
            c, r = getbundle_conn(httpd, headers)
            conns.append(c)
            leader["result"] = read_all(r)
        except Exception as e:              # reported below, not by the thread
            leader["error"] = repr(e)
    lt = threading.Thread(target=lead)
    lt.start()
    try:
        E.wait_until(lambda: spool_bytes(spool) > 0, 60, what="the leader's first block")
        fconn, follower = paused_client(httpd, headers)
        conns.append(fconn)
        assert follower.status == 200
        first = follower.read(1)
        assert first, "the follower's body is empty"
        assert httpd.hgweb_getbundles() == 1            # it follows: no hgweb of its own
    finally:
        httpd.hgweb_pause_path.unlink()
    try:
        # the follower reads nothing more until the leader is done and stored
        lt.join(180)
        assert not lt.is_alive(), "the leader did not finish while its follower stalled"
        assert "error" not in leader, leader
        n, sha, _ = leader["result"]
        assert n > 20 * 1024 * 1024, n
        (key,) = wait_stored(store, proxy)
        E.wait_until(lambda: not spool_leftovers(spool), 60, what="upload done, spool removed")
        got = len(first) + received_unread(fconn, follower)
        print(f"\nthe follower had received {got} of {n} bytes when the leader was stored")
        assert got < n * 0.05, (got, n)
        # now it reads on, to the end: the leader's body, which was stored
        body = first + follower.read()
        assert (len(body), hashlib.sha256(body).hexdigest()) == (n, sha)
        assert hashlib.sha256(store.get(key)[0]).hexdigest() == sha
    finally:
        for c in conns:
            c.close()
        lt.join(10)
    entries = wait_getbundles(httpd, "repo", count=2)
    assert sorted(e["note"] for e in entries) == ["collapsed", "miss"], entries
    assert all(e["bytes"] == n for e in entries), entries


def httpd_children_rss_kb(httpd):
    """{pid: VmRSS kB} of the httpd worker children (not the hgweb daemon)."""
    import subprocess
    daemon = set(httpd.hgweb_count_path.read_text().split()) \
        if httpd.hgweb_count_path.exists() else set()
    out = {}
    pids = subprocess.run(["pgrep", "-P", str(httpd.proc.pid)], capture_output=True,
                          text=True).stdout.split()
    for pid in pids:
        if pid in daemon:
            continue
        try:
            status = open(f"/proc/{pid}/status").read()
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"apache2" not in cmd and b"httpd" not in cmd:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                out[pid] = int(line.split()[1])
    return out


def test_memory_of_ten_followers(hg, httpd_factory, env, tmp_dir, store, proxy):
    """10 slow followers of a 192 MiB response (a repository built for this
    test: 1 GiB takes too long here, the bound is the same): the httpd
    children's RSS grows by at most HgS3CacheMemory + 32 MiB in total, and
    every follower receives exactly the leader's body."""
    from pyhgs3.hg import build_big_repo
    from pyhgs3.hgwire import clone_headers
    repo = build_big_repo(hg, tmp_dir / "large", total_mb=192, commits=3, seed=77)
    E.make_world_readable(repo)
    spool = spool_dir(tmp_dir)
    httpd = herd_httpd(httpd_factory, store, proxy, repo, spool, Memory="1M",
                       MaxSize="1G")
    # the upload is held: the body must not be re-read into memory for it
    gate = Gate()
    proxy.add_rule("delay", method=("PUT", "POST"), seconds=gate)
    headers = clone_headers(heads_of(hg, repo))
    # warm every worker thread a little, then take the baseline
    for _ in range(4):
        httpd.get("/server-status?auto")
    base = httpd_children_rss_kb(httpd)
    conn, leader = getbundle_conn(httpd, headers)
    results, peak = {}, [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            now = httpd_children_rss_kb(httpd)
            growth = sum(now.get(p, 0) - base.get(p, 0) for p in now)
            peak[0] = max(peak[0], growth)
            time.sleep(0.1)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        lead = threading.Thread(target=lambda: results.update(leader=read_all(leader)))
        lead.start()
        wait_hgweb_started(httpd)
        follows = []
        for i in range(10):
            c, r = getbundle_conn(httpd, headers)
            th = threading.Thread(
                target=lambda i=i, r=r: results.update({i: read_all(r, rate=40_000_000)}))
            th.start()
            follows.append((c, th))
        lead.join(300)
        for c, th in follows:
            th.join(300)
            c.close()
        conn.close()
    finally:
        stop.set()
        sampler.join()
        gate.open()
    n, sha, _ = results["leader"]
    assert n > 190 * 1024 * 1024
    assert all(results[i][:2] == (n, sha) for i in range(10)), results
    entries = wait_getbundles(httpd, "repo", count=11)
    assert sorted(e["note"] for e in entries) == ["collapsed"] * 10 + ["miss"]
    print(f"\nhttpd children RSS growth, peak: {peak[0] / 1024:.1f} MiB")
    assert peak[0] <= (1 + 32) * 1024, f"RSS grew by {peak[0]} kB"
    wait_stored(store, proxy)


def test_leader_fails_before_the_head(hg, httpd_factory, small_repo, tmp_dir, store, proxy):
    """hgweb fails the leader's getbundle (a 500) while 3 followers wait
    for its head (held by the counting wrapper): they have sent nothing, so
    they fall back, run hgweb themselves and their clones succeed; nothing
    is left behind."""
    spool = spool_dir(tmp_dir)
    httpd = herd_httpd(httpd_factory, store, proxy, small_repo, spool)
    httpd.allow_log(r"\[wsgi:", r"test fault")
    httpd.hgweb_hold_path.write_text("")
    httpd.hgweb_fail_path.write_text("")
    E.chown_to_server(httpd.hgweb_fail_path)
    leader = []
    lt = threading.Thread(target=lambda: leader.append(
        hg.clone(httpd.repo_url("repo"), tmp_dir / "leader", "-U")))
    lt.start()
    wait_hgweb_started(httpd)
    results = []
    ft = threading.Thread(target=lambda: results.extend(
        clone_herd(hg, httpd.repo_url("repo"), tmp_dir, 3)))
    ft.start()
    # the followers' batch commands are answered, then they wait for the head
    E.wait_until(lambda: len(httpd.access_log.find("GET", r"cmd=batch")) >= 4, 60,
                 what="the followers' batch")
    time.sleep(2)
    httpd.hgweb_hold_path.unlink()
    lt.join(120)
    ft.join(300)
    assert leader and not leader[0].ok, leader
    assert_all_verified(results, hg.history(small_repo))
    c = counters(httpd)
    notes = [e["note"] for e in wait_getbundles(httpd, "repo", count=4)]
    assert len(notes) == 4, notes
    assert c["CollapseFallbacks"] == 3 and c["CollapseAborts"] == 0, (c, notes)
    assert "collapsed" not in notes, notes
    assert httpd.hgweb_getbundles() >= 2
    wait_stored(store, proxy)
    E.wait_until(lambda: not spool_leftovers(spool), 20, what="nothing left")
