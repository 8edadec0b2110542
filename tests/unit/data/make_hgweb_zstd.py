#!/usr/bin/python3
"""Capture real zstd getbundle bodies from hgweb, whole and failed mid-way.

Runs hgweb under Apache httpd with mod_wsgi in daemon mode (the deployment
mod_hgs3cache targets; the httpd of tests/pyhgs3, without the module), puts
a small recording proxy in front of it, and runs a real `hg clone` through
the proxy for each served repository. The proxy saves the raw body of each
getbundle response (chunked encoding removed) and checks that the chunked
response ended cleanly. Run as Debian's Python, from the source tree:

    /usr/bin/python3 tests/unit/data/make_hgweb_zstd.py [OUTDIR]

The repository is deterministic (fixed user and dates, generated text), so
the bodies are the same on every run with the same Mercurial (6.3.2, its
bundled python-zstandard 0.13 / libzstd 1.4.4). Served as:

  repo            as it is
  failing         [extensions] failmidway (failmidway.py): the changegroup
                  raises after 300000 bytes, as when a read fails mid-way
  corrupt         a copy whose data/c.txt.i revlog (inline) is cut in half:
                  reading it fails mid-way through the changegroup (a
                  real error, no extension)
  failing-none    failmidway (after 20000 bytes, for a small file) with
                  server.compressionengines=none

Writes hgweb-zstd-ok.bin, hgweb-zstd-failed.bin, hgweb-zstd-corrupt.bin
and hgweb-none-failed.bin, then prints each body's zstd frame layout.
"""
import http.client
import http.server
import os
import shutil
import socketserver
import struct
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/, for pyhgs3

from pyhgs3 import env as E  # noqa: E402
from pyhgs3.hg import Hg, hgdate  # noqa: E402
from pyhgs3.httpd import HttpdInstance  # noqa: E402

FAIL_AFTER = 300000
FAIL_AFTER_NONE = 20000


def text(tag, lines, start=0):
    return "".join(f"line {i:06d} of {tag}, a test file\n"
                   for i in range(start, start + lines))


def build_repo(hg, path):
    """Three changesets; a changegroup of about 600 KB that zstd level 3
    turns into about 13 KB: several 128 KiB blocks."""
    hg.run("init", path, check=True)
    hg.commit(path, {"a.txt": text("a", 8000), "b.txt": text("b", 8000)}, "one", hgdate(0))
    hg.commit(path, {"a.txt": text("a", 8000, 7), "c.txt": text("c", 4000)}, "two",
              hgdate(1))
    hg.commit(path, {"b.txt": text("b", 8400, 3)}, "three", hgdate(2))
    hg.run("phase", "-R", path, "--public", "-r", "tip", check=True)
    hg.run("bookmark", "-R", path, "-r", "tip", "main", check=True)
    hg.run("update", "-R", path, "null", check=True)


def copy_with_hgrc(src, dest, hgrc):
    shutil.copytree(src, dest, symlinks=True)
    with open(dest / ".hg" / "hgrc", "a") as f:
        f.write(hgrc)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Forwards each request to the backend; keeps getbundle replies."""
    protocol_version = "HTTP/1.1"
    backend = None
    bodies = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        skip = {"host", "connection", "content-length"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        conn = http.client.HTTPConnection(*self.backend, timeout=120)
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        clean = True
        try:
            data = r.read()
        except http.client.IncompleteRead as e:
            data, clean = e.partial, False
        conn.close()
        if "cmd=getbundle" in self.path:
            repo = self.path.split("?")[0].strip("/")
            self.bodies[repo] = (r.status, r.getheader("Content-Type"),
                                 r.getheader("Transfer-Encoding"), clean, data)
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET


def frames(d):
    """The zstd frame layout after the engine header, as text (RFC 8878)."""
    n = d[0]
    pos, out = 1 + n, [f"engine {d[1:1 + n].decode()}, {len(d)} bytes"]
    if d[1:1 + n] != b"zstd":
        return out
    while pos < len(d):
        if len(d) - pos < 4:
            out.append(f"  {len(d) - pos} stray bytes")
            break
        magic = struct.unpack_from("<I", d, pos)[0]
        if magic != 0xFD2FB528:
            out.append(f"  no frame magic at {pos}: {magic:#x}")
            break
        fhd = d[pos + 4]
        pos += 5
        single, cks, did, fcsf = (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3, fhd >> 6
        wd = None if single else d[pos]
        pos += (0 if single else 1) + (0, 1, 2, 4)[did] + ((1 if single else 0), 2, 4, 8)[fcsf]
        blocks, last = [], False
        while pos + 3 <= len(d):
            h = int.from_bytes(d[pos:pos + 3], "little")
            pos += 3
            last, btype, size = h & 1, (h >> 1) & 3, h >> 3
            blocks.append(f"{('raw', 'rle', 'compressed', 'reserved')[btype]}:{size}"
                          + (" (last)" if last else ""))
            pos += 1 if btype == 1 else size
            if last:
                break
        pos += 4 if (cks and last) else 0
        out.append(f"  frame: descriptor {fhd:#04x} window descriptor {wd} checksum {cks},"
                   f" {len(blocks)} blocks: {', '.join(blocks)}")
        if not last:
            out.append(f"  frame ends without its last block (ends at {pos} of {len(d)})")
            break
    return out


def main(outdir):
    outdir = Path(outdir)
    work = Path(tempfile.mkdtemp(prefix="hgs3-zstd-"))
    os.chmod(work, 0o755)  # hgweb runs as nobody when this runs as root
    httpd = server = None
    try:
        hg = Hg(work / "home")
        repo = work / "repo"
        build_repo(hg, repo)
        shutil.copy(HERE / "failmidway.py", work / "failmidway.py")
        ext = f"[extensions]\nfailmidway = {work / 'failmidway.py'}\n[failmidway]\n"
        copy_with_hgrc(repo, work / "failing", ext + f"after = {FAIL_AFTER}\n")
        copy_with_hgrc(repo, work / "failing-none",
                       ext + f"after = {FAIL_AFTER_NONE}\n[server]\ncompressionengines = none\n")
        copy_with_hgrc(repo, work / "corrupt", "")
        revlog = work / "corrupt" / ".hg" / "store" / "data" / "c.txt.i"
        os.truncate(revlog, revlog.stat().st_size // 2)
        names = ("repo", "failing", "corrupt", "failing-none")
        for name in names:
            E.make_world_readable(work / name)
        httpd = HttpdInstance(work / "httpd", repos={n: work / n for n in names}, mode="wsgi")
        httpd.allow_log(r".*")
        httpd.start()

        Recorder.backend = (E.LOOPBACK, httpd.port)
        server = socketserver.ThreadingTCPServer((E.LOOPBACK, 0), Recorder)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://{E.LOOPBACK}:{server.server_address[1]}"

        for name in names:
            res = hg.run("clone", "-U", f"{url}/{name}", work / f"clone-{name}")
            status, ctype, te, clean, data = Recorder.bodies[name]
            err = res.stderr.strip().splitlines()
            print(f"{name}: hg clone rc={res.rc} {err[-1] if err else ''}")
            print(f"  HTTP {status} {ctype}, Transfer-Encoding {te},"
                  f" chunked body ended {'cleanly' if clean else 'ABRUPTLY'}")
            print("\n".join(frames(data)))
        errors = [line.split("] ", 4)[-1] for line in
                  httpd.error_log.path.read_text(errors="replace").splitlines()
                  if "Error:" in line or "Exception" in line]
        print("hgweb error log:\n  " + "\n  ".join(errors))
        files = {"hgweb-zstd-ok.bin": "repo", "hgweb-zstd-failed.bin": "failing",
                 "hgweb-zstd-corrupt.bin": "corrupt", "hgweb-none-failed.bin": "failing-none"}
        for fname, name in files.items():
            (outdir / fname).write_bytes(Recorder.bodies[name][4])
    finally:
        if server:
            server.shutdown()
        if httpd:
            httpd.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else HERE)
