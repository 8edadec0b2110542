#!/usr/bin/python3
"""mod_hgs3cache benchmarks (see bench/README.md).

Each figure is a ratio against an anchor measured in the same run, on
loopback, with public tools: wrk, curl, /usr/bin/time -v, /proc CPU
accounting and valgrind's callgrind. Everything runs on its own servers (an
S3-compatible store, @20minutes/s3rver, and Apache httpd instances with hgweb
under mod_wsgi) started here on free loopback ports and stopped at the end.

Output: progress lines on stderr, then one line per figure on stdout:
    name: value (target)

Run it with Debian's /usr/bin/python3 after scripts/build (bench/run does
both). Benchmarks are not tests: nothing here fails on a missed target; the
exit status is 0 when every figure was measured, 1 when one could not be.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests"))

from pyhgs3 import env as E                                  # noqa: E402
from pyhgs3.hg import Hg, build_big_repo                     # noqa: E402
from pyhgs3.httpd import HttpdInstance, hgs3cache_location   # noqa: E402
from pyhgs3.s3rver import S3rverServer                       # noqa: E402
from pyhgs3.tls import TestCA                                # noqa: E402

BUCKET = "hgs3-bench"
MiB = 1024 * 1024
GiB = 1024 * MiB
WRK = shutil.which("wrk") or "/usr/bin/wrk"
CURL = shutil.which("curl") or "/usr/bin/curl"
TIME = "/usr/bin/time"
VALGRIND = shutil.which("valgrind") or "/usr/bin/valgrind"
CALLGRIND_ANNOTATE = shutil.which("callgrind_annotate") or "/usr/bin/callgrind_annotate"
CALLGRIND_CONTROL = shutil.which("callgrind_control") or "/usr/bin/callgrind_control"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- output -------------------------------------------------------------------
def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Figures:
    """The figure lines, printed as they come (stderr) and together at the end."""

    def __init__(self):
        self.lines = []
        self.notes = []
        self.failed = []

    def add(self, name, value, target):
        line = f"{name}: {value} ({target})"
        self.lines.append(line)
        log("FIGURE " + line)

    def note(self, text):
        self.notes.append(text)
        log("  " + text)

    def fail(self, name, why):
        self.failed.append(name)
        self.add(name, f"not measured: {why}", "-")


# ---- small helpers ------------------------------------------------------------
def median(xs):
    return statistics.median(xs) if xs else float("nan")


def run(argv, timeout=600, check=True, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed (rc={p.returncode}): "
                           f"{p.stderr.decode(errors='replace')[-2000:]}")
    return p


def fmt_ms(seconds):
    return f"{seconds * 1000:.2f} ms"


# ---- /proc --------------------------------------------------------------------
def children_of(pid):
    """Direct children of pid (from /proc/*/stat)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def cpu_ns(pid):
    """CPU time (user+system) of every thread of pid, in ns, from
    /proc/<pid>/task/*/schedstat (nanosecond resolution), falling back to
    utime+stime of /proc/<pid>/stat (clock ticks) when schedstat is absent."""
    total, ok = 0, False
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
                ok = True
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return 0
    if ok:
        return total
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
        f = st[st.rindex(")") + 2:].split()
        return (int(f[11]) + int(f[12])) * 1_000_000_000 // CLK_TCK
    except OSError:
        return 0


def status_kib(pid, field):
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


# ---- httpd --------------------------------------------------------------------
MPM_CONF = """\
StartServers 1
ServerLimit 1
ThreadLimit 32
ThreadsPerChild 32
MaxRequestWorkers 32
MinSpareThreads 1
MaxSpareThreads 32
MaxConnectionsPerChild 0
"""


class BenchHttpd(HttpdInstance):
    """The harness' HttpdInstance, with named mod_wsgi daemons (so their
    processes can be told apart in /proc), optional extra WSGI apps mounted
    before hgweb's catch-all alias, or no hgweb at all (app=False, for httpd
    -X under valgrind)."""

    def __init__(self, workdir, *, pre_app_conf="", app=True, **kw):
        kw.setdefault("mpm_conf", MPM_CONF)
        kw.setdefault("log_level", "warn")
        super().__init__(workdir, **kw)
        self.pre_app_conf = pre_app_conf
        self.app = app

    def _module_lines(self):
        text = super()._module_lines()
        if not self.app:
            text = "\n".join(ln for ln in text.splitlines() if "mod_wsgi" not in ln)
        return text

    def _app_conf(self, script):
        if not self.app:
            return ""
        return f"""\
WSGISocketPrefix "{self.run_dir}/wsgi"
{self.pre_app_conf}
WSGIDaemonProcess hgweb processes=1 threads=4 home={self.dir} display-name=%{{GROUP}}
WSGIProcessGroup hgweb
WSGIApplicationGroup %{{GLOBAL}}
WSGIScriptAlias / "{script}"
"""

    # -- processes --
    def parent_pid(self):
        return self.proc.pid

    def worker_pids(self):
        return [p for p in children_of(self.parent_pid()) if not cmdline(p).startswith("(wsgi:")]

    def wsgi_pid(self, group="hgweb"):
        for p in children_of(self.parent_pid()):
            if cmdline(p).startswith(f"(wsgi:{group})"):
                return p
        raise RuntimeError(f"no mod_wsgi daemon {group} under httpd {self.parent_pid()}")

    def cpu(self):
        """{"httpd": ns, "hgweb": ns}: httpd parent and worker children,
        and the hgweb mod_wsgi daemon."""
        httpd = cpu_ns(self.parent_pid()) + sum(cpu_ns(p) for p in self.worker_pids())
        return {"httpd": httpd, "hgweb": cpu_ns(self.wsgi_pid())}


def wait_quiet(inst, settle=0.3, timeout=60):
    """Wait until httpd and hgweb use no CPU for `settle` seconds (a
    background upload has ended)."""
    deadline = time.monotonic() + timeout
    last = sum(inst.cpu().values())
    while time.monotonic() < deadline:
        time.sleep(settle)
        now = sum(inst.cpu().values())
        if now - last < 2_000_000:          # < 2 ms of CPU in `settle` s
            return
        last = now


# ---- clients ------------------------------------------------------------------
class HgRequest:
    """The exact headers of the getbundle request of a real `hg clone`."""

    def __init__(self, headers):
        self.headers = headers            # [(name, value)]

    def curl_args(self):
        out = []
        for k, v in self.headers:
            out += ["-H", f"{k}: {v}"]
        return out

    def wrk_args(self):
        return self.curl_args()


def curl_get(url, headers=(), out="/dev/null", method=None):
    """(status, bytes, seconds) of one GET with curl."""
    argv = [CURL, "-s", "-o", out, "-w", "%{http_code} %{size_download} %{time_total}"]
    if method:
        argv += ["-X", method]
    argv += list(headers) + [url]
    p = run(argv, timeout=600)
    code, size, secs = p.stdout.decode().split()
    return int(code), int(size), float(secs)


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _secs(text):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url, *, connections, duration, threads=None, headers=(), script=None, latency=False):
    """Run wrk; returns {"rps", "requests", "errors", "p50", "p99"} (seconds)."""
    threads = threads or min(2, connections)
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    if latency:
        argv.append("--latency")
    if script:
        argv += ["-s", str(script)]
    argv += list(headers) + [url]
    p, tv = time_v(argv, timeout=duration + 60)
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed: {p.stderr.decode(errors='replace')[-2000:]}")
    text = p.stdout.decode()
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
           "requests": int(re.search(r"(\d+) requests in", text).group(1)),
           "errors": 0, "text": text}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        res["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        res["errors"] += sum(int(x) for x in m.groups())
    res["client_us"] = (float(tv["User time (seconds)"]) + float(tv["System time (seconds)"])) \
        * 1e6 / max(1, res["requests"])
    if latency:
        for pct, key in (("50", "p50"), ("99", "p99")):
            m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)$", text, re.M)
            res[key] = _secs(m.group(1))
    return res


def ab(url, *, n, headers=(), head=False, expect=None):
    """ab -k -c1: {"p50", "p99"} in seconds (from ab -e's percentile table)."""
    with tempfile.NamedTemporaryFile("r", suffix=".csv") as tf:
        argv = ["/usr/bin/ab", "-q", "-k", "-c", "1", "-n", str(n), "-e", tf.name]
        if head:
            argv.append("-i")
        argv += list(headers) + [url]
        p = run(argv, timeout=600)
        text = p.stdout.decode()
        table = {}
        for line in Path(tf.name).read_text().splitlines()[1:]:
            pct, ms = line.split(",")
            table[int(pct)] = float(ms) / 1000
    failed = int(re.search(r"Failed requests:\s+(\d+)", text).group(1))
    done = int(re.search(r"Complete requests:\s+(\d+)", text).group(1))
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", text)
    non2xx = int(non2xx.group(1)) if non2xx else 0
    if failed or done != n:
        raise RuntimeError(f"ab {url}: {done} done, {failed} failed\n{text}")
    if expect == 200 and non2xx:
        raise RuntimeError(f"ab {url}: {non2xx} non-2xx responses")
    if expect and expect != 200 and non2xx != n:
        raise RuntimeError(f"ab {url}: {n - non2xx} responses were not {expect}")
    return {"p50": table[50], "p99": table[99], "text": text}


def http_requests(port, path, headers, n, expect):
    """n GETs on one keep-alive connection; each must answer `expect`."""
    import http.client
    conn = http.client.HTTPConnection(E.LOOPBACK, port, timeout=120)
    try:
        for _ in range(n):
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != expect:
                raise RuntimeError(f"GET {path} answered {r.status}, expected {expect}")
    finally:
        conn.close()


def callgrind_profile(path, minus=None):
    """Parse a callgrind dump (uncompressed names): total Ir, self Ir per
    function, self Ir per (function, object), inclusive Ir per function,
    and the functions that live in mod_hgs3cache.so."""
    self_ir, self_obj, incl, module_fns = {}, {}, {}, set()
    total = 0
    obj = fn = cfn = None
    in_call = False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
                continue
            if line.startswith("ob="):
                obj = line[3:]
            elif line.startswith("fn="):
                fn = line[3:]
                if fn.startswith("0x"):            # no symbol: say where it is
                    fn += " in " + os.path.basename(obj or "?")
                if "mod_hgs3cache" in (obj or ""):
                    module_fns.add(fn)
                incl.setdefault(fn, 0)
            elif line.startswith("cfn="):
                cfn = line[4:]
                if cfn.startswith("0x"):
                    cfn += " in ?"
            elif line.startswith("calls="):
                in_call = True
            elif line[0].isdigit() or line[0] in "+-*":
                parts = line.split()
                ir = int(parts[1]) if len(parts) > 1 else 0
                if in_call:
                    if cfn != fn:               # recursion would count twice
                        incl[fn] = incl.get(fn, 0) + ir
                    in_call = False
                else:
                    self_ir[fn] = self_ir.get(fn, 0) + ir
                    self_obj[(fn, obj)] = self_obj.get((fn, obj), 0) + ir
                    incl[fn] = incl.get(fn, 0) + ir
            elif line.startswith(("cob=", "cfi=", "cfl=", "fi=", "fe=", "fl=")):
                continue
    prof = {"total": total, "self": self_ir, "self_obj": self_obj, "incl": incl,
            "module_fns": module_fns}
    if minus:
        prof["total"] -= minus["total"]
        for key in ("self", "self_obj", "incl"):
            for k, v in minus[key].items():
                prof[key][k] = prof[key].get(k, 0) - v
    return prof


def time_v(argv, **kw):
    """Run argv under /usr/bin/time -v: (CompletedProcess, {field: value})."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        p = subprocess.run([TIME, "-v", "-o", tf.name] + argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, **kw)
        fields = {}
        for line in Path(tf.name).read_text().splitlines():
            if ":" in line:
                k, v = line.rsplit(":", 1) if "Elapsed" not in line else line.split(": ", 1)
                fields[k.strip()] = v.strip()
    return p, fields


def elapsed_seconds(text):
    """/usr/bin/time's "Elapsed (wall clock) time" ([h:]m:ss.ss) in seconds."""
    parts = [float(x) for x in text.split(":")]
    secs = 0.0
    for x in parts:
        secs = secs * 60 + x
    return secs


# ---- the benchmark ------------------------------------------------------------
FAKE_WSGI = r'''
# A WSGI app answering like hgweb's getbundle, with a body of BENCH_SIZE
# bytes shaped like a real uncompressed bundle2: engine "none", "HG20", no
# stream parameters, one CHANGEGROUP part whose payload comes in 4096-byte
# chunks, the end-of-part and end-of-bundle markers.
import os
import struct

SIZE = int(os.environ.get("BENCH_FAKE_SIZE", str(1 << 30)))
CHUNK = 4096                       # Mercurial's bundle2 payload chunk size
BLOCK = 256 * (4 + CHUNK)          # ~1 MiB of framed chunks, sent repeatedly
_payload = os.urandom(CHUNK)
_block = (struct.pack(">i", CHUNK) + _payload) * 256


def _head():
    ptype = b"CHANGEGROUP"
    params = [(b"version", b"02")]
    header = bytes([len(ptype)]) + ptype + struct.pack(">I", 0)
    header += bytes([len(params), 0])
    for k, v in params:
        header += bytes([len(k), len(v)])
    for k, v in params:
        header += k + v
    return b"\x04none" + b"HG20" + struct.pack(">i", 0) + struct.pack(">i", len(header)) + header


def _body():
    head = _head()
    tail = struct.pack(">i", 0) + struct.pack(">i", 0)   # end of part, end of bundle
    yield head
    blocks = max(1, -(-(SIZE - len(head) - len(tail)) // BLOCK))     # at least SIZE
    for _ in range(blocks):
        yield _block
    yield tail


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/mercurial-0.2")])
    return _body()
'''


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.fig = Figures()
        self.round_secs = 1 if self.quick else args.round_seconds
        self.rounds = 3 if self.quick else args.rounds
        self.work = Path(tempfile.mkdtemp(prefix="hgs3-bench-"))
        os.chmod(self.work, 0o755)
        self._n = 0
        self.instances = []
        self.s3 = None
        self.hgreq = None
        self.request_bytes = None

    def mkdir(self, name):
        self._n += 1
        d = self.work / f"{name}-{self._n}"
        d.mkdir(mode=0o755)
        os.chmod(d, 0o755)
        return d

    # -- life cycle --
    def httpd(self, name, **kw):
        inst = BenchHttpd(self.mkdir(name), module=True, **kw)
        self.instances.append(inst)
        rc, out = inst.configtest()
        if rc != 0:
            raise RuntimeError(f"configtest of {name} failed:\n{out}")
        inst.start(timeout=60)
        return inst

    def stop_all(self):
        for inst in self.instances:
            try:
                inst.stop()
            except Exception as e:             # keep stopping the others
                log(f"stopping {inst.dir}: {e!r}")
            lines = inst.unexpected_log_lines()
            if lines:
                self.fig.note(f"httpd {inst.dir.name} logged {len(lines)} warning/error "
                              "line(s):\n    " + "\n    ".join(lines[:10]))
        self.instances = []
        if self.s3 is not None:
            self.s3.stop()
            self.s3 = None

    def cleanup(self):
        if getattr(self, "shm_spool", None):
            shutil.rmtree(self.shm_spool, ignore_errors=True)
        if self.args.keep:
            log(f"work directory kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- store helpers --
    def object_count(self):
        return len(self.s3.list_keys(BUCKET))

    def wait_new_object(self, before, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = self.object_count()
            if n > before:
                return n
            time.sleep(0.1)
        raise RuntimeError("the module stored nothing in the bucket after a miss")

    def wait_jobs_done(self, spool_dir, timeout=600):
        """Wait until no spool file is left in spool_dir: an upload job
        removes its spool when it ends, after the store's last answer
        (the object can be listed a moment before that)."""
        deadline = time.monotonic() + timeout
        while any(Path(spool_dir).glob("hgs3spool.*")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"an upload job still holds a spool in {spool_dir}")
            time.sleep(0.05)

    def presign(self, key, method="get_object", expires=3600):
        return self.s3.client().generate_presigned_url(
            method, Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=expires)

    def location(self, location, **directives):
        return hgs3cache_location(location, self.repo, bucket=BUCKET, endpoint=self.s3.endpoint,
                                  region=self.s3.region, access_key=self.s3.access_key,
                                  secret_key=self.s3.secret_key, **directives)

    def new_state(self, repo=None):
        """Give the repository a new state fingerprint (a new hgrc mtime),
        hence new cache keys, without changing what hgweb answers."""
        hgrc = (repo or self.repo) / ".hg" / "hgrc"
        st = hgrc.stat()
        ns = max(time.time_ns(), st.st_mtime_ns + 1_000_000)
        os.utime(hgrc, ns=(ns, ns))

    # -- setup --
    def setup(self):
        mod = E.module_path()
        if not mod.exists():
            raise RuntimeError(f"module not built: {mod} (run scripts/build)")
        snap = self.work / "mod_hgs3cache.so"
        shutil.copy2(mod, snap)
        os.chmod(snap, 0o755)
        os.environ["HGS3_MODULE"] = str(snap)        # the harness loads this copy
        log(f"work directory {self.work}; module {mod}")

        self.s3 = S3rverServer(self.mkdir("s3rver"), buckets=[BUCKET])
        self.s3.start()
        self.s3.create_bucket(BUCKET)
        log(f"s3rver at {self.s3.endpoint}")

        t0 = time.monotonic()
        self.hg = Hg(self.mkdir("hg-home"))
        self.repo = build_big_repo(self.hg, self.mkdir("repo") / "big")
        (self.repo / ".hg" / "hgrc").write_text("# mod_hgs3cache benchmark repository\n")
        E.make_world_readable(self.repo)
        log(f"repository {self.repo} built in {time.monotonic() - t0:.1f}s")

        t0 = time.monotonic()
        self.hist = self.mkdir("repo") / "history"
        run([E.PYTHON, str(TOP / "tests" / "pyhgs3" / "history_repo.py"), str(self.hist),
             "--commits", "1500"], env=self.hg.env(), timeout=600)
        (self.hist / ".hg" / "hgrc").write_text("# mod_hgs3cache benchmark repository\n")
        E.make_world_readable(self.hist)
        log(f"repository {self.hist} built in {time.monotonic() - t0:.1f}s")

        # The fixed URL Apache's own Redirect sends: a presigned GET of the
        # same length as the module's Location.
        self.fixed_url = self.presign("hgcache/" + "0" * 64)
        # A spool directory on tmpfs, for the diagnostic arm of figure 3.
        self.shm_spool = Path(tempfile.mkdtemp(prefix="hgs3-bench-spool-", dir="/dev/shm"))
        os.chmod(self.shm_spool, 0o755)
        E.chown_to_server(self.shm_spool)
        self.main = self.httpd("main", repos={"repo": self.repo, "repooff": self.repo,
                                              "stream": self.repo, "hist": self.hist,
                                              "histoff": self.hist, "repotmp": self.repo,
                                              "histni": self.hist},
                               extra_conf=self.main_conf())
        log(f"httpd (presence shmcb) at {self.main.url}")
        self.capture_clone_headers()

    def hgargs_log_conf(self):
        fields = [f"%{{X-HgArg-{i}}}i" for i in range(1, 6)] + \
            ["%{X-HgProto-1}i", "%{Vary}i", "%{Accept}i", "%{Accept-Encoding}i",
             "%{User-Agent}i", "%q", "%{hgs3cache}n"]
        return ('LogFormat "' + "\\t".join(fields) + '" hgargs\n'
                "CustomLog \"logs/hgargs_log\" hgargs \"expr=note('hgs3cache') == 'miss'\"\n")

    def main_conf(self):
        return ("HgS3CachePresence shmcb 3600\n"
                f'Redirect 302 /redir "{self.fixed_url}"\n'
                + self.hgargs_log_conf()
                + self.location("/repo", HitMode="redirect")
                + self.location("/stream", HitMode="stream")
                + self.location("/repotmp", HitMode="redirect", SpoolDir=str(self.shm_spool))
                + self.location("/hist", HitMode="redirect").replace(
                    f"Repository {self.repo}", f"Repository {self.hist}")
                # the same repository with small replies answered by hgweb
                + self.location("/histni", HitMode="redirect", InlineMax=0,
                                KeySalt="no-inline").replace(
                    f"Repository {self.repo}", f"Repository {self.hist}"))

    def capture_clone_headers(self):
        """A real clone (a miss): its getbundle headers, read back from the
        log, are what wrk and curl send; its stored response is the object
        the hit figures use."""
        before = self.object_count()
        dest = self.mkdir("clone") / "c"
        self.hg.clone(self.main.repo_url("repo"), dest, "-q", "-U").check()
        shutil.rmtree(dest.parent)
        self.wait_new_object(before)
        line = (self.main.logs_dir / "hgargs_log").read_text().splitlines()[-1].split("\t")
        names = [f"X-HgArg-{i}" for i in range(1, 6)] + \
            ["X-HgProto-1", "Vary", "Accept", "Accept-Encoding", "User-Agent"]
        headers = [(k, v) for k, v in zip(names, line) if v != "-"]
        if line[-1] != "miss":
            raise RuntimeError(f"first clone's getbundle was not a miss: {line[-1]}")
        self.hgreq = HgRequest(headers)
        wait_quiet(self.main)
        code, size, _ = curl_get(self.main.url + "/repo?cmd=getbundle", self.hgreq.curl_args())
        if code != 302:
            raise RuntimeError(f"getbundle after the clone answered {code}, not a 302 hit")
        code, size, _ = curl_get(self.main.url + "/stream?cmd=getbundle", self.hgreq.curl_args())
        if code != 200 or size < 20 * 10**6:
            raise RuntimeError(f"streamed hit answered {code} with {size} bytes")
        self.bundle_bytes = size
        log(f"clone headers: {', '.join(k for k, _ in headers)}; bundle {size} bytes")

    # -- access log checks --
    def log_offset(self, inst):
        try:
            return inst.access_log.path.stat().st_size
        except FileNotFoundError:
            return 0

    def notes_since(self, inst, offset, target_prefix):
        """{note: count} of access log lines after offset whose target
        starts with target_prefix."""
        counts = {}
        with open(inst.access_log.path, "rb") as f:
            f.seek(offset)
            for raw in f:
                parts = raw.decode("utf-8", "replace").rstrip("\n").split("\t")
                if len(parts) < 8 or not parts[2].startswith(target_prefix):
                    continue
                counts[parts[7]] = counts.get(parts[7], 0) + 1
        return counts

    def expect_notes(self, inst, offset, target_prefix, note):
        # httpd logs a request once it has ended, which can be a moment
        # after the client has read the last byte.
        deadline = time.monotonic() + 5
        while True:
            counts = self.notes_since(inst, offset, target_prefix)
            if counts or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        other = {k: v for k, v in counts.items() if k != note}
        if other or not counts:
            raise RuntimeError(f"{target_prefix}: expected only {note}, the log has {counts}")
        return counts.get(note, 0)

    def ab_rounds(self, inst, a, b, **wrk_kw):
        """Alternating wrk rounds A/B/A/B...; a and b are (url, headers,
        target prefix, expected note or None). Returns ([A rps], [B rps],
        [A results], [B results])."""
        ra, rb = [], []
        for _ in range(self.rounds):
            for (url, headers, prefix, note), out in ((a, ra), (b, rb)):
                off = self.log_offset(inst)
                c0 = inst.cpu()["httpd"]
                res = wrk(url, headers=headers, **wrk_kw)
                res["httpd_us"] = (inst.cpu()["httpd"] - c0) / 1e3 / max(1, res["requests"])
                if res["errors"]:
                    raise RuntimeError(f"wrk {url}: {res['errors']} errors\n{res['text']}")
                if note:
                    self.expect_notes(inst, off, prefix, note)
                out.append(res)
        return ra, rb

    # -- 1 --
    def fig_hit_redirect_rps_ratio(self):
        inst = self.main
        hit = (inst.url + "/repo?cmd=getbundle", self.hgreq.wrk_args(), "/repo?cmd=getbundle",
               "hit-redirect")
        # The Redirect gets the same request headers as the hit, so both
        # requests cost the same to send, parse and log.
        red = (inst.url + "/redir", self.hgreq.wrk_args(), "/redir", None)
        log(f"hit_redirect_rps_ratio: {self.rounds} rounds x {self.round_secs}s, 16 connections")
        wrk(hit[0], headers=hit[1], connections=16, duration=1)     # warm-up
        wrk(red[0], headers=red[1], connections=16, duration=1)
        ra, rb = self.ab_rounds(inst, hit, red, connections=16, duration=self.round_secs)
        a = [r["rps"] for r in ra]
        b = [r["rps"] for r in rb]
        ratio = median(a) / median(b)
        self.fig.add("hit_redirect_rps_ratio", f"{ratio:.3f}", "target >= 0.90")
        self.fig.note(f"hit_redirect_rps_ratio: module hit {median(a):.0f} req/s "
                      f"(rounds {', '.join(f'{x:.0f}' for x in a)}) / Apache Redirect "
                      f"{median(b):.0f} req/s (rounds {', '.join(f'{x:.0f}' for x in b)}); "
                      f"wrk -t2 -c16 -d{self.round_secs}s, the same hg request headers both ways, "
                      f"presence cache warm (shmcb). CPU per request: httpd "
                      f"{median([r['httpd_us'] for r in ra]):.1f} us (hit) vs "
                      f"{median([r['httpd_us'] for r in rb]):.1f} us (Redirect), wrk "
                      f"{median([r['client_us'] for r in ra]):.1f} vs "
                      f"{median([r['client_us'] for r in rb]):.1f} us (/usr/bin/time -v)")


    # -- 1b --
    def local_httpd(self):
        """An httpd whose /local is the big repository cached in a local
        directory (HgS3CacheStore file:DIR), and /static that directory served
        by Apache itself (Alias), both with EnableSendfile On; the object of
        the clone request stored (a miss first). Returns (inst, object key)."""
        store = self.mkdir("filestore")
        os.chmod(store, 0o750)
        E.chown_to_server(store)
        conf = ("EnableSendfile On\nHgS3CachePresence shmcb 3600\n"
                f'Alias /static "{store}"\n<Directory "{store}">\n    Require all granted\n'
                "</Directory>\n"
                + hgs3cache_location("/local", self.repo, Store=f"file:{store}"))
        inst = self.httpd("local", repos={"local": self.repo}, extra_conf=conf)
        url = inst.url + "/local?cmd=getbundle"
        code, size, _ = curl_get(url, self.hgreq.curl_args())
        if code != 200:
            raise RuntimeError(f"the miss on /local answered {code}")
        deadline = time.monotonic() + 120
        keys = []
        while not keys and time.monotonic() < deadline:
            keys = [p for p in store.rglob("*") if p.is_file() and p.suffix != ".meta"
                    and ".tmp." not in p.name]
            time.sleep(0.1)
        if len(keys) != 1:
            raise RuntimeError(f"the miss on /local stored {len(keys)} objects")
        self.wait_jobs_done(inst.run_dir)
        return inst, str(keys[0].relative_to(store))

    def fig_hit_local_rps_ratio(self):
        inst, key = self.local_httpd()
        hit = (inst.url + "/local?cmd=getbundle", self.hgreq.wrk_args(),
               "/local?cmd=getbundle", "hit-local")
        static = (inst.url + "/static/" + key, self.hgreq.wrk_args(), "/static/", None)
        for url, hdrs in ((hit[0], self.hgreq.curl_args()), (static[0], self.hgreq.curl_args())):
            code, size, _ = curl_get(url, hdrs)
            if code != 200 or size != self.bundle_bytes:
                raise RuntimeError(f"{url} answered {code} with {size} bytes")
        log(f"hit_local_rps_ratio: {self.rounds} rounds x {self.round_secs}s, 16 connections")
        wrk(hit[0], headers=hit[1], connections=16, duration=1)     # warm-up
        wrk(static[0], headers=static[1], connections=16, duration=1)
        ra, rb = self.ab_rounds(inst, hit, static, connections=16, duration=self.round_secs)
        a = [r["rps"] for r in ra]
        b = [r["rps"] for r in rb]
        ratio = median(a) / median(b)
        self.fig.add("hit_local_rps_ratio", f"{ratio:.3f}", "target >= 0.90")
        self.fig.note(f"hit_local_rps_ratio: module hit-local {median(a):.1f} req/s "
                      f"(rounds {', '.join(f'{x:.1f}' for x in a)}) / Apache Alias of the same "
                      f"file {median(b):.1f} req/s (rounds {', '.join(f'{x:.1f}' for x in b)}); "
                      f"{self.bundle_bytes / 1e6:.1f} MB object, EnableSendfile On both ways, "
                      f"wrk -t2 -c16 -d{self.round_secs}s, the same hg request headers both "
                      f"ways, presence cache warm (shmcb). CPU per request: httpd "
                      f"{median([r['httpd_us'] for r in ra]):.0f} us (hit-local) vs "
                      f"{median([r['httpd_us'] for r in rb]):.0f} us (Alias)")

    # -- 2 --
    def fig_hit_redirect_head_latency(self):
        """Latency of a hit with HgS3CachePresence none (every hit HEADs the
        store) against a HEAD sent straight to the store, one connection,
        keep-alive, with ab (wrk cannot read HEAD responses)."""
        # trace1 makes the module log how long each of its HEADs took.
        conf = ("HgS3CachePresence none\nLogLevel warn hgs3cache:trace1\n"
                f'Redirect 302 /redir "{self.fixed_url}"\n'
                + self.location("/repo", HitMode="redirect"))
        inst = self.httpd("nopresence", repos={"repo": self.repo}, extra_conf=conf)
        try:
            hit_url = inst.url + "/repo?cmd=getbundle"
            code, _, _ = curl_get(hit_url, self.hgreq.curl_args())
            if code != 302:
                raise RuntimeError(f"hit with presence none answered {code}")
            head_url = self.presign(self.object_key(), "head_object")
            n = 300 if self.quick else 2000
            log(f"hit_redirect_head_latency: {self.rounds} rounds x {n} requests, ab -c1 -k")
            hits, heads, reds = [], [], []
            ab(hit_url, n=200, headers=self.hgreq.curl_args())            # warm-up
            ab(head_url, n=200, head=True)
            for _ in range(self.rounds):
                off = self.log_offset(inst)
                hits.append(ab(hit_url, n=n, headers=self.hgreq.curl_args(), expect=302))
                self.expect_notes(inst, off, "/repo?cmd=getbundle", "hit-redirect")
                heads.append(ab(head_url, n=n, head=True, expect=200))
                reds.append(ab(inst.url + "/redir", n=n, headers=self.hgreq.curl_args(),
                               expect=302))
            took = [int(m.group(1)) / 1e6 for m in re.finditer(
                r"hgs3cache: HEAD \S+ took (\d+) us", inst.error_log.path.read_text())]
        finally:
            inst.stop()
        hp50 = median([h["p50"] for h in hits])
        hp99 = median([h["p99"] for h in hits])
        sp50 = median([h["p50"] for h in heads])
        sp99 = median([h["p99"] for h in heads])
        rp50 = median([h["p50"] for h in reds])
        added = hp50 - rp50
        self.fig.add("hit_redirect_head_latency",
                     f"p50 {fmt_ms(hp50)}, p99 {fmt_ms(hp99)}; store HEAD p50 {fmt_ms(sp50)} "
                     f"(p99 {fmt_ms(sp99)}); "
                     f"hit p50 - Apache Redirect p50 = {fmt_ms(added)} = "
                     f"{added / sp50:.2f} x store HEAD p50 = {added / median(took):.2f} x the "
                     f"module's own HEAD ({fmt_ms(median(took))})",
                     "the HEAD is the only added cost: those multiples ~1.0")
        self.fig.note(f"hit_redirect_head_latency: HgS3CachePresence none; ab -k -c1 -n{n}, "
                      f"{self.rounds} rounds, medians of the per-round percentiles; Apache "
                      f"Redirect p50 {fmt_ms(rp50)}; the module's own HEAD (libcurl, signed "
                      f"headers, from its trace1 log) took {fmt_ms(median(took))} (median of "
                      f"{len(took)}); hit p50 per round "
                      + ", ".join(fmt_ms(h["p50"]) for h in hits)
                      + "; store HEAD p50 per round "
                      + ", ".join(fmt_ms(h["p50"]) for h in heads))

    # -- 2b --
    def wait_hit(self, url, timeout=180):
        """GET url with the clone's headers until it is a 302 hit: the first
        is a miss whose upload makes the object."""
        deadline = time.monotonic() + timeout
        while True:
            code, _, _ = curl_get(url, self.hgreq.curl_args())
            if code == 302:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} is no hit after {timeout}s (last answer {code})")
            time.sleep(0.5)

    def wait_stream_hit(self, inst, url, headers, timeout=180):
        """GET url until the module answers it as a streamed hit."""
        deadline = time.monotonic() + timeout
        target = url[len(inst.url):]
        while True:
            offset = self.log_offset(inst)
            curl_get(url, headers)
            time.sleep(0.2)    # the access log line follows the last byte
            counts = self.notes_since(inst, offset, target)
            if counts.get("hit-stream"):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} is no streamed hit after {timeout}s ({counts})")
            # Let the miss's upload end first: s3rver shows an object being
            # PUT with its partial size, which the module rightly refuses
            # (logged as a store failure) and answers from hgweb.
            self.wait_jobs_done(inst.run_dir)

    def fig_hit_redirect_head_latency_tls(self):
        """Figure 2's hit (HgS3CachePresence none: every hit HEADs the store)
        with the store reached over https, against the same over http: the
        per-thread client keeps its TLS connection, so a warm lookup costs no
        handshake."""
        ca = TestCA(self.mkdir("tls-ca"))
        tls = S3rverServer(self.mkdir("s3rver-https"), buckets=[BUCKET],
                           tls=ca.server("store"), ca_file=ca.cert)
        tls.start()
        conf = ("HgS3CachePresence none\n"
                + self.location("/repo", HitMode="redirect")
                + hgs3cache_location("/tlsrepo", self.repo, bucket=BUCKET,
                                     endpoint=tls.endpoint, region=tls.region,
                                     access_key=tls.access_key, secret_key=tls.secret_key,
                                     HitMode="redirect", CAFile=ca.cert))
        inst = self.httpd("tls", repos={"repo": self.repo, "tlsrepo": self.repo},
                          extra_conf=conf)
        try:
            plain_url = inst.url + "/repo?cmd=getbundle"
            tls_url = inst.url + "/tlsrepo?cmd=getbundle"
            self.wait_hit(plain_url)
            self.wait_hit(tls_url)
            wait_quiet(inst)
            n = 300 if self.quick else 2000
            log(f"hit_redirect_head_latency_tls: {self.rounds} rounds x {n} requests each, "
                "ab -c1 -k")
            ab(plain_url, n=200, headers=self.hgreq.curl_args(), expect=302)     # warm-up
            ab(tls_url, n=200, headers=self.hgreq.curl_args(), expect=302)
            plain, https = [], []
            for _ in range(self.rounds):
                for url, prefix, out in ((plain_url, "/repo?", plain),
                                         (tls_url, "/tlsrepo?", https)):
                    off = self.log_offset(inst)
                    out.append(ab(url, n=n, headers=self.hgreq.curl_args(), expect=302))
                    self.expect_notes(inst, off, prefix, "hit-redirect")
            stats = tls.connection_stats()
        finally:
            inst.stop()
            tls.stop()
        pp50 = median([h["p50"] for h in plain])
        tp50 = median([h["p50"] for h in https])
        self.fig.add("hit_redirect_head_latency_tls", f"{tp50 / pp50:.3f}", "target <= 1.2")
        self.fig.note(f"hit_redirect_head_latency_tls: hit p50 over https {fmt_ms(tp50)} "
                      f"(p99 {fmt_ms(median([h['p99'] for h in https]))}) / over http "
                      f"{fmt_ms(pp50)} (p99 {fmt_ms(median([h['p99'] for h in plain]))}); "
                      f"HgS3CachePresence none, ab -k -c1 -n{n}, {self.rounds} rounds "
                      f"alternating; the https store (s3rver, a CA made with openssl, "
                      f"HgS3CacheCAFile) accepted {stats['tls_connections']} TLS connections "
                      f"in all ({stats['tls_resumed']} of them resumed a session; it closes "
                      f"connections idle for 5 s), for over {self.rounds * n + 200} lookups")

    def object_key(self):
        """The object the current repository state's clone request maps to,
        from the module's redirect."""
        p = run([CURL, "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"]
                + self.hgreq.curl_args() + [self.main.url + "/repo?cmd=getbundle"])
        code, url = p.stdout.decode().split(" ", 1)
        if code != "302":
            raise RuntimeError(f"no hit for the clone request ({code})")
        path = urllib.parse.urlsplit(url).path
        return urllib.parse.unquote(path.split("/", 2)[2])     # /<bucket>/<key>

    # -- 3 --
    def hist_request(self):
        """The clone getbundle headers for the history repository (as
        capture_clone_headers does for the big one): (HgRequest, bytes)."""
        if getattr(self, "hist_req", None):
            return self.hist_req
        inst = self.main
        log_path = inst.logs_dir / "hgargs_log"
        lines = len(log_path.read_text().splitlines())
        self.new_state(self.hist)
        dest = self.mkdir("clone") / "h"
        self.hg.clone(inst.repo_url("hist"), dest, "-q", "-U").check()   # a miss: logged
        shutil.rmtree(dest.parent)
        # httpd logs the getbundle once it has ended, maybe after hg exited
        deadline = time.monotonic() + 10
        while len(log_path.read_text().splitlines()) <= lines:
            if time.monotonic() > deadline:
                raise RuntimeError("the history clone's getbundle was not logged as a miss")
            time.sleep(0.05)
        line = log_path.read_text().splitlines()[-1].split("\t")
        names = [f"X-HgArg-{i}" for i in range(1, 6)] + \
            ["X-HgProto-1", "Vary", "Accept", "Accept-Encoding", "User-Agent"]
        req = HgRequest([(k, v) for k, v in zip(names, line) if v != "-"])
        code, size, _ = curl_get(inst.url + "/histoff?cmd=getbundle", req.curl_args())
        if code != 200 or size < 20 * 10**6:
            raise RuntimeError(f"history getbundle answered {code} with {size} bytes")
        self.hist_req = (req, size)
        return self.hist_req

    def one_getbundle(self, path, note, repo, req, size, spool_dir):
        """One getbundle with curl after a state change: (MB/s, httpd CPU
        seconds during the response, seconds until an upload landed)."""
        inst = self.main
        self.new_state(repo)
        before = self.object_count()
        offset = self.log_offset(inst)
        c0 = inst.cpu()["httpd"]
        code, got, secs = curl_get(inst.url + path, req.curl_args())
        c1 = inst.cpu()["httpd"]
        t_end = time.monotonic()
        if code != 200 or got != size:
            raise RuntimeError(f"{path} answered {code} with {got} bytes")
        self.expect_notes(inst, offset, path, note)
        upload = None
        if note == "miss":
            self.wait_new_object(before)
            self.wait_jobs_done(spool_dir)
            upload = time.monotonic() - t_end
        wait_quiet(inst)
        return size / secs / 1e6, (c1 - c0) / 1e9, upload

    def miss_arms(self, arms, repo, req, size, reps):
        """Alternating rounds over arms [(path, note, spool_dir)]: per arm a
        list of (MB/s over reps requests, median httpd CPU s, median upload s)."""
        out = [[] for _ in arms]
        for _ in range(self.rounds):
            for (path, note, spool), res in zip(arms, out):
                rs = [self.one_getbundle(path, note, repo, req, size, spool) for _ in range(reps)]
                secs = sum(size / 1e6 / r[0] for r in rs)
                res.append((reps * size / 1e6 / secs, median([r[1] for r in rs]),
                            median([r[2] for r in rs]) if note == "miss" else None))
        return out

    def fig_miss_overhead_ratio(self):
        """Figure 3 on the history repository (a real repository's getbundle,
        ~1 s of hgweb CPU for 23 MB), and as miss_overhead_ratio.blobs on the
        big repository (25 MB that hgweb sends almost as stored, in ~0.13 s:
        the capture's worst case), with a diagnostic arm spooling to tmpfs."""
        mbs = lambda rs: [r[0] for r in rs]                 # noqa: E731
        cpu_ms = lambda rs: median([r[1] for r in rs]) * 1000   # noqa: E731
        rounds_txt = lambda rs: ", ".join(f"{x:.1f}" for x in mbs(rs))   # noqa: E731
        run_dir = self.main.run_dir

        def describe(name, repo_name, a, b, size, reps):
            return (f"{name}: {repo_name} repository, getbundle of {size / 1e6:.1f} MB with curl, "
                    f"one at a time, {reps} per round: capturing {median(mbs(a)):.1f} MB/s "
                    f"(rounds {rounds_txt(a)}) / HgS3Cache off {median(mbs(b)):.1f} MB/s "
                    f"(rounds {rounds_txt(b)}). httpd CPU per response: {cpu_ms(a):.1f} ms "
                    f"capturing vs {cpu_ms(b):.1f} ms off; the upload job ended "
                    f"{median([r[2] for r in a]):.2f} s after the response.")

        req, size = self.hist_request()
        reps = 1 if self.quick else 2
        log(f"miss_overhead_ratio: {self.rounds} rounds of {reps} getbundle(s) of {size} B "
            "(history repository) each way")
        self.one_getbundle("/histoff?cmd=getbundle", "-", self.hist, req, size, run_dir)
        a, b = self.miss_arms([("/hist?cmd=getbundle", "miss", run_dir),
                               ("/histoff?cmd=getbundle", "-", run_dir)],
                              self.hist, req, size, reps)
        ratio = median(mbs(a)) / median(mbs(b))
        self.fig.add("miss_overhead_ratio", f"{ratio:.3f}", "target >= 0.95")
        self.fig.note(describe("miss_overhead_ratio", "history", a, b, size, reps))

        size = self.bundle_bytes
        reps = 1 if self.quick else 3
        log(f"miss_overhead_ratio.blobs: {self.rounds} rounds of {reps} getbundle(s) of {size} B "
            "each way (and with the spool on tmpfs)")
        self.one_getbundle("/repooff?cmd=getbundle", "-", self.repo, self.hgreq, size, run_dir)
        a, b, c = self.miss_arms([("/repo?cmd=getbundle", "miss", run_dir),
                                  ("/repooff?cmd=getbundle", "-", run_dir),
                                  ("/repotmp?cmd=getbundle", "miss", self.shm_spool)],
                                 self.repo, self.hgreq, size, reps)
        ratio = median(mbs(a)) / median(mbs(b))
        self.fig.add("miss_overhead_ratio.blobs", f"{ratio:.3f}", "target >= 0.95")
        self.fig.note(
            describe("miss_overhead_ratio.blobs", "big", a, b, size, reps) + " Diagnostic, "
            f"spool on tmpfs (HgS3CacheSpoolDir /dev/shm/...): "
            f"{median(mbs(c)):.1f} MB/s, ratio {median(mbs(c)) / median(mbs(b)):.3f}, httpd CPU "
            f"{cpu_ms(c):.1f} ms")

    # -- 4 --
    def fig_stream_hit_ratio(self):
        inst = self.main
        url = inst.url + "/stream?cmd=getbundle"
        h = self.hgreq.curl_args()
        # An earlier figure may have moved the repository to a new state:
        # both Locations (each has keys of its own) get their object first.
        self.wait_hit(inst.url + "/repo?cmd=getbundle")
        direct = self.presign(self.object_key())
        reps = 3
        log(f"stream_hit_ratio: {self.rounds * 2} rounds of {reps} downloads each way")
        self.wait_stream_hit(inst, url, h)
        curl_get(direct)
        a, b = [], []
        for _ in range(self.rounds * 2):
            for target, hdrs, out, prefix in ((url, h, a, "/stream?cmd=getbundle"),
                                              (direct, [], b, None)):
                offset = self.log_offset(inst)
                total, secs = 0, 0.0
                for _ in range(reps):
                    code, size, t = curl_get(target, hdrs)
                    if code != 200 or size != self.bundle_bytes:
                        raise RuntimeError(f"{target.split('?')[0]} answered {code}, {size} B")
                    total += size
                    secs += t
                if prefix:
                    self.expect_notes(inst, offset, prefix, "hit-stream")
                out.append(total / secs / 1e6)
        ratio = median(a) / median(b)
        self.fig.add("stream_hit_ratio", f"{ratio:.3f}", "target >= 0.90")
        self.fig.note(f"stream_hit_ratio: {self.bundle_bytes / 1e6:.1f} MB object, curl: streamed "
                      f"hit {median(a):.0f} MB/s (rounds {', '.join(f'{x:.0f}' for x in a)}) / "
                      f"direct presigned GET from s3rver {median(b):.0f} MB/s "
                      f"(rounds {', '.join(f'{x:.0f}' for x in b)})")

    # -- 5 --
    def clone_once(self, name, dest, expect_note):
        inst = self.main
        offset = self.log_offset(inst)
        before = self.object_count()
        wait_quiet(inst)
        c0 = inst.cpu()
        p, tv = time_v([E.HG, "clone", "-q", inst.repo_url(name), str(dest)],
                       env=self.hg.env(), timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"hg clone failed: {p.stderr.decode(errors='replace')[-1000:]}")
        wall = elapsed_seconds(tv["Elapsed (wall clock) time (h:mm:ss or m:ss)"])
        if expect_note == "miss":
            self.wait_new_object(before)
            self.wait_jobs_done(inst.run_dir)
        wait_quiet(inst)
        c1 = inst.cpu()
        self.expect_notes(inst, offset, f"/{name}?cmd=getbundle", expect_note)
        shutil.rmtree(dest)
        return {"wall": wall, "httpd": (c1["httpd"] - c0["httpd"]) / 1e9,
                "hgweb": (c1["hgweb"] - c0["hgweb"]) / 1e9}

    def fig_clone(self):
        n = 1 if self.quick else 3
        for suffix, name, repo, what in (
                ("", "hist", self.hist, "history repository (1500 changesets of text)"),
                (".blobs", "repo", self.repo, "harness big repository (3 changesets of "
                 "random blobs)")):
            log(f"clone_cpu_ratio{suffix}, clone_wall_ratio{suffix}: {what}, {n} rounds of a "
                "miss clone then a hit clone")
            dest = self.work / "clone-dest"
            misses, hits = [], []
            for _ in range(n):
                self.new_state(repo)
                misses.append(self.clone_once(name, dest, "miss"))
                hits.append(self.clone_once(name, dest, "hit-redirect"))
            self.clone_figures(suffix, what, n, misses, hits)

    def clone_figures(self, suffix, what, n, misses, hits):
        cpu = lambda r: r["httpd"] + r["hgweb"]              # noqa: E731
        m_cpu, h_cpu = median([cpu(r) for r in misses]), median([cpu(r) for r in hits])
        m_wall, h_wall = median([r["wall"] for r in misses]), median([r["wall"] for r in hits])
        h_hgweb = median([r["hgweb"] for r in hits])
        h_httpd = median([r["httpd"] for r in hits])
        self.fig.add(f"clone_cpu_ratio{suffix}", f"{h_cpu / m_cpu:.3f}", "target <= 0.05")
        self.fig.add(f"clone_wall_ratio{suffix}", f"{h_wall / m_wall:.3f}", "target <= 1.0")
        self.fig.note(
            f"clone{suffix} ({what}, bundle {self.bundle_size(suffix)}): server CPU (httpd + "
            f"hgweb daemon, /proc/<pid>/task/*/schedstat) of a hit clone {h_cpu * 1000:.0f} ms / "
            f"miss clone {m_cpu * 1000:.0f} ms. Of the hit: hgweb answering capabilities and "
            f"batch {h_hgweb * 1000:.0f} ms ({h_hgweb / h_cpu * 100:.0f}% of the hit, "
            f"{h_hgweb / m_cpu:.3f} of the miss), httpd {h_httpd * 1000:.1f} ms. Miss: hgweb "
            f"{median([r['hgweb'] for r in misses]) * 1000:.0f} ms, httpd (capture + upload) "
            f"{median([r['httpd'] for r in misses]) * 1000:.0f} ms. Wall (hg clone with its "
            f"working copy, /usr/bin/time -v): hit {h_wall:.2f} s / miss {m_wall:.2f} s. "
            f"{n} rounds, medians.")

    def bundle_size(self, suffix):
        if suffix == ".blobs":
            return f"{self.bundle_bytes / 1e6:.1f} MB"
        c = self.s3.client()
        sizes = [o["Size"] for page in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                 for o in page.get("Contents", []) if o["Size"] != self.bundle_bytes]
        return f"{max(sizes) / 1e6:.1f} MB" if sizes else "?"


    # -- 5b --
    def fig_hit_clone_cpu(self):
        """Server CPU of one hit clone of the history repository with small
        replies kept inline (capabilities and batch answered by the module)
        against HgS3CacheInlineMax 0 (answered by hgweb)."""
        n = 1 if self.quick else 3
        log(f"hit_clone_cpu: history repository, {n} rounds of a miss clone then a hit clone, "
            "inline replies on and off")
        dest = self.work / "clone-dest"
        arms = {"on": ("hist", [], []), "off": ("histni", [], [])}
        for _ in range(n):
            self.new_state(self.hist)
            for name, misses, hits in arms.values():
                misses.append(self.clone_once(name, dest, "miss"))
                hits.append(self.clone_once(name, dest, "hit-redirect"))
        cpu = lambda r: r["httpd"] + r["hgweb"]              # noqa: E731
        on, off = ([cpu(r) for r in arms[k][2]] for k in ("on", "off"))
        hgweb_on = median([r["hgweb"] for r in arms["on"][2]])
        hgweb_off = median([r["hgweb"] for r in arms["off"][2]])
        miss = median([cpu(r) for r in arms["on"][1]])
        self.fig.add("hit_clone_cpu_ms", f"{median(on) * 1000:.2f}", "target <= 1 ms, hgweb 0")
        self.fig.add("hit_clone_cpu_ms.inline_off", f"{median(off) * 1000:.2f}", "reference")
        self.fig.add("hit_clone_cpu_ratio", f"{median(on) / miss:.4f}", "target <= 0.002")
        self.fig.note(
            f"hit_clone_cpu (history repository): server CPU (httpd + hgweb daemon) of a hit "
            f"clone with inline replies {median(on) * 1000:.2f} ms, of which hgweb "
            f"{hgweb_on * 1000:.2f} ms ({hgweb_on / median(on) * 100:.0f}%); with "
            f"HgS3CacheInlineMax 0 {median(off) * 1000:.2f} ms, of which hgweb "
            f"{hgweb_off * 1000:.2f} ms ({hgweb_off / median(off) * 100:.0f}%); miss clone "
            f"{miss * 1000:.0f} ms. {n} rounds, medians.")
    # -- herd --
    def herd_once(self, name, n, expect):
        """n concurrent cold clones (-U) of /<name>: server CPU (httpd +
        hgweb daemon, until the upload is done), each clone's wall time,
        and the notes of their getbundles."""
        inst = self.main
        offset = self.log_offset(inst)
        before = self.object_count()
        wait_quiet(inst)
        c0 = inst.cpu()
        walls, errors = [None] * n, []
        start = threading.Barrier(n)

        def one(i):
            dest = self.work / f"herd-{i}"
            start.wait(60)
            p, tv = time_v([E.HG, "clone", "-q", "-U", inst.repo_url(name), str(dest)],
                           env=self.hg.env(), timeout=900)
            if p.returncode != 0:
                errors.append(p.stderr.decode(errors="replace")[-500:])
            else:
                walls[i] = elapsed_seconds(tv["Elapsed (wall clock) time (h:mm:ss or m:ss)"])
            shutil.rmtree(dest, ignore_errors=True)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(f"herd clone failed: {errors[0]}")
        if expect:
            self.wait_new_object(before)
            self.wait_jobs_done(inst.run_dir)
        wait_quiet(inst)
        c1 = inst.cpu()
        time.sleep(0.5)
        notes = self.notes_since(inst, offset, f"/{name}?cmd=getbundle")
        if expect and notes != expect:
            raise RuntimeError(f"/{name} herd of {n}: notes {notes}, expected {expect}")
        cpu = (c1["httpd"] - c0["httpd"] + c1["hgweb"] - c0["hgweb"]) / 1e9
        return {"cpu": cpu, "walls": walls, "notes": notes}

    def fig_herd(self):
        """herd_cpu_ratio, herd_wall_ratio: N = 8 concurrent cold clones of
        the history repository against one lone cold clone (server CPU;
        the slowest clone's wall time), and the same without the module as
        the anchor."""
        n = 8
        log(f"herd_cpu_ratio, herd_wall_ratio: history repository, {n} concurrent cold clones "
            "against one, with the module and without")
        self.new_state(self.hist)
        lone = self.herd_once("hist", 1, {"miss": 1})
        self.new_state(self.hist)
        herd = self.herd_once("hist", n, {"miss": 1, "collapsed": n - 1})
        off_lone = self.herd_once("histoff", 1, None)
        off_herd = self.herd_once("histoff", n, None)
        self.fig.add("herd_cpu_ratio", f"{herd['cpu'] / lone['cpu']:.3f}", "target <= 1.2")
        self.fig.add("herd_wall_ratio", f"{max(herd['walls']) / lone['walls'][0]:.3f}",
                     "target <= 1.2")
        self.fig.note(
            f"herd (history repository, N={n}, hg clone -U): server CPU lone {lone['cpu']:.2f} s,"
            f" herd {herd['cpu']:.2f} s; wall lone {lone['walls'][0]:.2f} s, herd slowest "
            f"{max(herd['walls']):.2f} s (clients share the machine with the server: "
            f"{os.cpu_count()} CPUs). Module off (anchor): herd CPU ratio "
            f"{off_herd['cpu'] / off_lone['cpu']:.2f}, wall ratio "
            f"{max(off_herd['walls']) / off_lone['walls'][0]:.2f} "
            f"(lone {off_lone['cpu']:.2f} s CPU, {off_lone['walls'][0]:.2f} s wall).")

    # -- 6 --
    def fig_capture_rss_growth(self):
        """Peak RSS growth of the httpd child while the capture filter tees a
        1 GiB getbundle-shaped response (a WSGI app at a Location with
        HgS3Cache on) into its spool, HgS3CacheMemory 1M."""
        size = (64 * MiB) if self.quick else GiB
        memory = MiB
        d = self.mkdir("capture-app")
        app = d / "fakebundle.wsgi"
        app.write_text(FAKE_WSGI.replace('str(1 << 30)', repr(str(size))))
        E.make_world_readable(d)
        pre = (f"WSGIDaemonProcess fake processes=1 threads=2 home={d} display-name=%{{GROUP}}\n"
               f'WSGIScriptAlias /fake "{app}"\n'
               "<Location /fake>\n    WSGIProcessGroup fake\n</Location>\n"
               f'<Directory "{d}">\n    Require all granted\n</Directory>\n')
        conf = self.location("/fake", Memory=memory, MaxSize="2G")
        inst = self.httpd("capture", repos={"repo": self.repo}, extra_conf=conf, pre_app_conf=pre)
        try:
            # A request the clone never makes (no X-HgArg-1): a key not stored.
            headers = HgRequest([(k, v) for k, v in self.hgreq.headers
                                 if not k.startswith("X-HgArg")]).curl_args()
            url = inst.url + "/fake?cmd=getbundle"
            http_requests(inst.port, "/server-status?auto", {}, 5, expect=200)
            workers = inst.worker_pids()
            if len(workers) != 1:
                raise RuntimeError(f"expected one httpd child, found {workers}")
            pid = workers[0]
            Path(f"/proc/{pid}/clear_refs").write_text("5")    # VmHWM := VmRSS
            rss0 = status_kib(pid, "VmRSS")
            before = self.object_count()
            offset = self.log_offset(inst)
            log(f"capture_rss_growth: {size >> 20} MiB response, httpd child {pid}, "
                f"VmRSS {rss0} KiB")
            code, got, secs = curl_get(url, headers)
            hwm_capture = status_kib(pid, "VmHWM")
            if code != 200 or got < size - MiB:
                raise RuntimeError(f"fake getbundle answered {code} with {got} bytes")
            self.expect_notes(inst, offset, "/fake?cmd=getbundle", "miss")
            t0 = time.monotonic()
            self.wait_new_object(before, timeout=600)
            self.wait_jobs_done(inst.run_dir)
            upload_secs = time.monotonic() - t0
            wait_quiet(inst)
            hwm_upload = status_kib(pid, "VmHWM")
        finally:
            inst.stop()
        stored = self.largest_object()
        if stored != got:
            raise RuntimeError(f"stored object has {stored} bytes, the response {got}")
        growth = (hwm_capture - rss0) / 1024
        limit = memory / MiB + 32
        self.fig.add("capture_rss_growth", f"{growth:.1f} MiB",
                     f"target <= {limit:.0f} MiB = HgS3CacheMemory {memory // MiB} MiB + 32 MiB")
        self.fig.note(f"capture_rss_growth: {got} B response (bundle2-shaped, engine none, "
                      f"4 KiB chunks) in {secs:.1f} s ({got / secs / 1e6:.0f} MB/s), VmHWM of the "
                      f"httpd child {pid}: {rss0 / 1024:.1f} MiB before, {hwm_capture / 1024:.1f} "
                      f"MiB after the response, {hwm_upload / 1024:.1f} MiB after the upload "
                      f"(stored {stored} B, {'multipart, ' if got > 64 * MiB else ''}"
                      f"the upload job ended {upload_secs:.1f} s after the response)")

    def largest_object(self):
        c = self.s3.client()
        sizes = [o["Size"] for page in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                 for o in page.get("Contents", [])]
        return max(sizes)


    # -- 7 --
    def fig_hit_cpu_per_request_head(self):
        """hit_cpu_per_request with HgS3CachePresence none: every hit looks
        the object up in the store (a HEAD), the lookup path's share."""
        self.fig_hit_cpu_per_request(name="hit_cpu_per_request_head", presence="none")

    def fig_hit_cpu_per_request(self, name="hit_cpu_per_request", presence="shmcb 3600"):
        """Instructions per request, counted by callgrind on httpd -X (one
        process, every thread) for N warm hits and N Apache Redirects.

        Phases are cut by marker requests: callgrind dumps (and zeroes) its
        counters each time ap_get_server_built() is entered, which only
        /server-status does. The dump between two markers holds one phase
        plus the parts of two status requests around it; a phase of no
        requests measures that and is subtracted."""
        n = 50 if self.quick else 300
        conf = (f"HgS3CachePresence {presence}\n" f'Redirect 302 /redir "{self.fixed_url}"\n'
                + self.location("/repo", HitMode="redirect"))
        # No hgweb here (mod_wsgi's daemons do not run under -X): every
        # request must be a hit; /repo maps to no file, so grant it.
        conf += "<Location /repo>\n    Require all granted\n</Location>\n"
        inst = BenchHttpd(self.mkdir(name + "-httpd"), app=False, module=True,
                          repos={"repo": self.repo}, extra_conf=conf)
        inst.write_config()
        out = self.mkdir(name)
        os.chmod(out, 0o777)                      # httpd -X writes it as nobody
        outfile = out / "callgrind.out"
        log(f"{name}: httpd -X under callgrind, {n} hits and {n} redirects")
        vlog = open(out / "valgrind.log", "wb")
        proc = subprocess.Popen(
            [VALGRIND, "--tool=callgrind", f"--callgrind-out-file={outfile}",
             "--dump-before=ap_get_server_built", "--dump-instr=no",
             "--compress-strings=no", "--compress-pos=no",
             E.APACHE2, "-f", str(inst.conf_path), "-X"],
            env=inst._env(), stdin=subprocess.DEVNULL, stdout=vlog, stderr=subprocess.STDOUT,
            start_new_session=True)

        def dumps():
            return {f for f in out.glob("callgrind.out.*") if re.search(r"\.\d+$", f.name)}

        def marker():
            before = dumps()
            http_requests(inst.port, "/server-status?auto", {}, 1, expect=200)
            new = dumps() - before
            if len(new) != 1:
                raise RuntimeError(f"expected one callgrind dump per marker, got {len(new)}")
            return new.pop()
        try:
            E.wait_until(lambda: proc.poll() is not None or inst._answers(), 180,
                         interval=0.5, what="httpd -X under valgrind")
            if proc.poll() is not None:
                raise RuntimeError("httpd under valgrind exited: "
                                   + (out / "valgrind.log").read_text()[-2000:])
            hit_headers = dict(self.hgreq.headers)
            for _ in range(2):                    # warm-up: the first hit HEADs the store
                http_requests(inst.port, "/repo?cmd=getbundle", hit_headers, 10, expect=302)
                http_requests(inst.port, "/redir", hit_headers, 10, expect=302)
            marker()
            http_requests(inst.port, "/repo?cmd=getbundle", hit_headers, n, expect=302)
            d_hit = marker()
            http_requests(inst.port, "/redir", hit_headers, n, expect=302)
            d_red = marker()
            d_none = marker()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            vlog.close()
        base = callgrind_profile(d_none)
        hit = callgrind_profile(d_hit, minus=base)
        red = callgrind_profile(d_red, minus=base)
        total_hit = hit["total"] / n
        total_red = red["total"] / n
        handler = hit["incl"].get("hgs3_handler", 0) / n
        own = sum(v for (fn, obj), v in hit["self_obj"].items() if "mod_hgs3cache" in obj) / n
        self.fig.add(name,
                     f"{handler:,.0f} instructions in the module's handler per hit "
                     f"({own:,.0f} of them in mod_hgs3cache.so's own code)",
                     "regression watch: lower is better")
        self.fig.note(f"{name}: whole httpd -X process per request: hit "
                      f"{total_hit:,.0f} instructions, Apache Redirect {total_red:,.0f} "
                      f"(Redirect/hit = {total_red / total_hit:.3f}, the throughput ratio "
                      f"figure 1 would show if instructions were all that counted); "
                      f"callgrind, {n} requests each on one keep-alive connection")
        top = sorted(((v / n, fn) for fn, v in hit["incl"].items()
                      if fn in hit["module_fns"] and v > 0), reverse=True)[:16]
        self.fig.note(f"{name}: inclusive instructions per hit of the module's "
                      "functions:\n" + "\n".join(f"    {v:>10,.0f}  {fn}" for v, fn in top))
        diff = dict((fn, v / n) for fn, v in hit["self"].items())
        for fn, v in red["self"].items():
            diff[fn] = diff.get(fn, 0) - v / n
        topd = sorted(((v, fn) for fn, v in diff.items()), reverse=True)[:16]
        self.fig.note(f"{name}: self instructions per request, hit minus Apache "
                      "Redirect (where a hit's extra instructions go):\n" + "\n".join(
                          f"    {v:>10,.0f}  {fn}" for v, fn in topd))
        if self.args.keep:
            self.fig.note(f"callgrind dumps: hits {d_hit}, redirects {d_red}, base {d_none}")


# ---- main ---------------------------------------------------------------------
FIGURES = ("hit_redirect_rps_ratio", "hit_redirect_head_latency",
           "hit_redirect_head_latency_tls", "miss_overhead_ratio",
           "stream_hit_ratio", "clone", "hit_clone_cpu", "herd", "capture_rss_growth",
           "hit_cpu_per_request", "hit_cpu_per_request_head", "hit_local_rps_ratio")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="short rounds, for trying the suite out (figures are noisier)")
    ap.add_argument("--rounds", type=int, default=5, help="A/B rounds per throughput figure")
    ap.add_argument("--round-seconds", type=int, default=5, help="seconds per wrk round")
    ap.add_argument("--only", default="", help="comma-separated figures to run: " +
                    ",".join(FIGURES))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    only = [x for x in args.only.split(",") if x]
    for x in only:
        if x not in FIGURES and x != "setup":
            ap.error(f"unknown figure {x}")

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    b = Bench(args)
    t0 = time.monotonic()
    rc = 0
    try:
        b.setup()
        for name in FIGURES:
            if only and name not in only:
                continue
            try:
                getattr(b, "fig_" + name)()
            except KeyboardInterrupt:
                raise
            except Exception as e:
                log(f"{name}: {type(e).__name__}: {e}")
                b.fig.fail(name, f"{type(e).__name__}: {e}")
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except Exception as e:
        log(f"setup failed: {type(e).__name__}: {e}")
        rc = 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        b.stop_all()
        b.cleanup()
    print(f"\n# mod_hgs3cache benchmarks, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
          f"{os.cpu_count()} CPUs, {time.monotonic() - t0:.0f} s")
    for line in b.fig.lines:
        print(line)
    if b.fig.notes:
        print("\n# details")
        for n in b.fig.notes:
            print(n)
    if rc == 0 and b.fig.failed:
        rc = 1
    return rc


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
