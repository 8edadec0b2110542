"""Client aborts: a client that disconnects at 10%, 50% and 99% of a miss and
of a streamed hit leaves no object from that response, no temp file and no
stuck worker.

The client is a raw socket that sends the getbundle request of a real hg
clone (its headers taken from the access log), reads the given fraction of
the body and closes. The body is the 20+ MB full bundle of the session's big
repository. So that the server really is still sending when the client
leaves, even at 99%, the client's receive buffer is small and httpd's send
buffer is pinned (SendBufferSize): what the server can have handed to the
kernel beyond the client's position (~150 KB) is well below 1% of the body.

After each abort: the access log notes the response as aborted (a miss:
miss-store-skipped:aborted) and shorter than the body; no upload reaches the
store and the bucket holds nothing new (the streamed object is unchanged);
HgS3CacheSpoolDir holds no hgs3spool.* or hgs3lock.* file after a short
wait; server-status shows no busy worker but its own request. At the end a
normal clone of each Location succeeds and verifies (the aborted misses left
no lock: that clone is stored).
"""
import hashlib
import socket
import time

from pyhgs3 import env as E
from pyhgs3.checks import PREFIX, getbundles, spool_leftovers, wait_getbundles

from conftest import STORES_AND_FILE, store_fixture  # noqa: E402

# Also on the local-directory store; its S3-specific tests skip there.
store = store_fixture(STORES_AND_FILE)

FRACTIONS = (0.10, 0.50, 0.99)
SEND_BUFFER = 16384
RECV_BUFFER = 16384
UPLOAD_WAIT = 60
SETTLE = 1.0
# mod_wsgi logs that it could not write to a client that went away.
WSGI_CLIENT_GONE = r"\[wsgi:(error|info)\].*(Broken pipe|Connection reset|failed to write|" \
                   r"IOError|OSError|client connection closed)"


def request_bytes(httpd, name, entry):
    """The logged getbundle request of a real clone, as raw bytes."""
    assert entry["hgarg1"] and len(entry["hgarg1"]) < 1000, entry["hgarg1"]
    headers = {"Host": f"{E.LOOPBACK}:{httpd.port}", "Accept-Encoding": "identity",
               "Accept": "application/mercurial-0.1", "Vary": "X-HgArg-1,X-HgProto-1",
               "X-HgArg-1": entry["hgarg1"], "X-HgProto-1": entry["hgproto"],
               "User-Agent": "mercurial/proto-1.0 (Mercurial 6.3.2)"}
    return (f"GET /{name}?cmd=getbundle HTTP/1.1\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


class _Body:
    """Counts body bytes of a response read piece by piece (chunked or not)."""

    def __init__(self, chunked):
        self.chunked = chunked
        self.count = 0
        self.buf = b""
        self.left = 0          # data left in the current chunk
        self.state = "size"

    def feed(self, data):
        if not self.chunked:
            self.count += len(data)
            return
        self.buf += data
        while self.buf:
            if self.state == "size":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    return
                self.left = int(self.buf[:i].split(b";")[0], 16)
                self.buf = self.buf[i + 2:]
                self.state = "data" if self.left else "end"
            elif self.state == "data":
                n = min(self.left, len(self.buf))
                self.count += n
                self.left -= n
                self.buf = self.buf[n:]
                if not self.left:
                    self.state = "crlf"
            elif self.state == "crlf":
                if len(self.buf) < 2:
                    return
                self.buf = self.buf[2:]
                self.state = "size"
            else:
                return


def read_and_abort(port, raw, fraction, total):
    """Send `raw`, read fraction*total body bytes, close. (status, headers, count)."""
    target = int(total * fraction)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
    sock.settimeout(60)
    try:
        sock.connect((E.LOOPBACK, port))
        sock.sendall(raw)
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            assert data, f"connection closed in the headers: {head!r}"
            head += data
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in
                   (ln.split(":", 1) for ln in lines[1:])}
        body = _Body("chunked" in headers.get("transfer-encoding", "").lower())
        body.feed(rest)
        while body.count < target:
            data = sock.recv(min(16384, max(1, target - body.count)))
            assert data, f"connection closed after {body.count} of {target} body bytes"
            body.feed(data)
        return status, headers, body.count
    finally:
        sock.close()


def uploads(store, proxy, key):
    """What tells the uploads so far: the PUT/POST requests the store saw, or
    the local object's inode and mtime (each put renames a new file in)."""
    if proxy is None:
        st = store.path(key).stat()
        return (st.st_ino, st.st_mtime_ns, store.temp_files())
    return len(proxy.find(("PUT", "POST"), PREFIX))


def busy_workers(httpd):
    return int(httpd.server_status()["BusyWorkers"])


def test_client_abort(request, hg, module_httpd, big_repo, tmp_dir, store):
    """Aborts at 10%, 50%, 99% of a miss (/miss, a salted key that is never
    stored) and of a streamed hit (/hit, HgS3CacheHitMode stream; on the
    local-directory store a hit-local answer, whose uploads and reads are
    seen in the directory instead of through the FaultProxy)."""
    local = store.kind == "file"
    proxy = None if local else request.getfixturevalue("proxy")
    hit_note = "hit-local" if local else "hit-stream"
    spool = tmp_dir / "spool"
    spool.mkdir()
    E.chown_to_server(spool)
    httpd = module_httpd({"hit": big_repo, "miss": big_repo},
                         {"hit": {"HitMode": "stream"}, "miss": {"KeySalt": "abort"}},
                         endpoint=None if local else proxy.endpoint, SpoolDir=str(spool), Memory="64K",
                         server_conf=f"SendBufferSize {SEND_BUFFER}\nHgS3CachePresence none\n")
    httpd.allow_log(WSGI_CLIENT_GONE)

    # A real clone stores the object the streamed hits are read from.
    first = hg.clone(httpd.repo_url("hit"), tmp_dir / "first", "-U")
    assert first.ok, first
    (entry,) = wait_getbundles(httpd, "hit", 1)
    assert entry["note"] == "miss" and entry["status"] == 200, entry
    total = entry["bytes"]
    assert total >= 20 * 1024 * 1024, total
    E.wait_until(lambda: store.keys(PREFIX), UPLOAD_WAIT, interval=0.2, what="the object")
    (key,) = store.keys(PREFIX)
    obj, _, etag = store.get(key)
    assert len(obj) == total
    digest = hashlib.sha256(obj).hexdigest()
    E.wait_until(lambda: not spool_leftovers(spool), 15, what="empty spool dir")
    uploads_before = uploads(store, proxy, key)

    def abort(name, fraction, note):
        what = f"/{name} aborted at {fraction:.0%}"
        seen = len(getbundles(httpd, name))
        gets = 0 if local else len(proxy.find("GET", PREFIX))
        status, headers, got = read_and_abort(httpd.port, request_bytes(httpd, name, entry),
                                              fraction, total)
        assert status == 200, (what, status, headers)
        e = wait_getbundles(httpd, name, seen + 1)[seen]
        assert e["note"] == note, (what, e["note"])
        # (%B of a hit-local counts the file bucket whole, as for any static
        # file: what the client got is `got`, below.)
        if not (local and name == "hit"):
            assert e["bytes"] < total, (what, e["bytes"], total)
        # No stuck worker: only server-status' own request is busy.
        try:
            E.wait_until(lambda: busy_workers(httpd) == 1, 10, interval=0.2,
                         what="no busy worker")
        except TimeoutError:
            raise AssertionError(f"{what}: {busy_workers(httpd)} busy workers: "
                                 f"{httpd.server_status().get('Scoreboard')}") from None
        # No temp file: spool and lock are gone.
        try:
            E.wait_until(lambda: not spool_leftovers(spool), 10, what="empty spool dir")
        except TimeoutError:
            raise AssertionError(f"{what}: left in the spool dir: {spool_leftovers(spool)}") \
                from None
        # No object, no upload from that response.
        time.sleep(SETTLE)
        assert uploads(store, proxy, key) == uploads_before, what
        assert store.keys() == [key], (what, store.keys())
        if name == "hit" and not local:
            (get,) = proxy.find("GET", PREFIX)[gets:]
            assert get["done"], (what, "the store GET is still running", get)
            if fraction < 0.9:
                # httpd stopped reading the object, it did not drain it.
                assert get["response_bytes"] < total, (what, get)
        return got

    results = []
    for fraction in FRACTIONS:
        results.append(("miss", fraction, abort("miss", fraction, "miss-store-skipped:aborted")))
    for fraction in FRACTIONS:
        results.append(("hit", fraction, abort("hit", fraction, hit_note)))
    print(f"\nbody {total} bytes; read before closing: "
          + ", ".join(f"{k} {f:.0%}: {n}" for k, f, n in results))
    obj2, _, etag2 = store.get(key)
    assert etag2 == etag and hashlib.sha256(obj2).hexdigest() == digest, "the object changed"

    # The server answers normal clones: a hit, and the miss (now stored).
    hit = hg.clone(httpd.repo_url("hit"), tmp_dir / "after-hit", "-U")
    assert hit.ok, hit
    assert getbundles(httpd, "hit")[-1]["note"] == hit_note
    miss = hg.clone(httpd.repo_url("miss"), tmp_dir / "after-miss", "-U")
    assert miss.ok, miss
    (last,) = wait_getbundles(httpd, "miss", len(FRACTIONS) + 1)[-1:]
    assert last["note"] == "miss", last
    E.wait_until(lambda: len(store.keys(PREFIX)) == 2, UPLOAD_WAIT, interval=0.2,
                 what="the miss stored")
    (salted,) = [k for k in store.keys(PREFIX) if k != key]
    assert hashlib.sha256(store.get(salted)[0]).hexdigest() == digest
    for d in ("after-hit", "after-miss"):
        hg.assert_same_history(big_repo, tmp_dir / d)
        hg.assert_verify_clean(tmp_dir / d)
    E.wait_until(lambda: not spool_leftovers(spool), 15, what="empty spool dir")
    assert busy_workers(httpd) == 1
