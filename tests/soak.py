#!/usr/bin/python3
"""Soak test of mod_hgs3cache: clones, pulls and pushes interleaved, for a
bounded time, against real httpd + hgweb (mod_wsgi) + the module + a store.

For each store (a "lane": its own bucket, server repository and httpd),
worker threads run until the deadline:
- a pusher commits in a working copy and pushes over HTTP (moving the
  `stable` bookmark with it), and every third time turns the pushed
  changesets public on the server instead; it records every server state
  and when it could be seen;
- two cloners clone (alternately from /repo, HgS3CacheHitMode auto, i.e.
  redirected hits, and /srepo, HgS3CacheHitMode stream), verify each clone
  and compare its history (nodes, phases, bookmarks) with the server
  states that existed while the clone ran;
- a puller pulls into one clone and checks it the same way.

Checked at the end:
- no stale bundle: every clone's and pull's history equals a server state
  that existed during it, and every clone verifies;
- no fd or memory growth in the httpd worker child: /proc/<pid>/fd count
  and VmRSS sampled after a warm-up (when every worker thread has served
  requests and holds its store connections) and at the end, same child pid,
  within a tolerance;
- no leftover spool files (hgs3spool.*, hgs3lock.*) once uploads settle;
- no unexpected warning or error in httpd's error log (CLI mode; under
  pytest the harness checks it).

Standalone:  /usr/bin/python3 tests/soak.py --seconds 600 [--store both|s3rver|swift]
From pytest: test_load.py::test_soak calls run() for 60 s on both stores.
"""
import argparse
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyhgs3 import env as E                                   # noqa: E402
from pyhgs3.bucket import StoreBucket, unique_bucket_name     # noqa: E402
from pyhgs3.hg import LOG_TEMPLATE, hgdate, random_bytes      # noqa: E402

# Tolerances for the end sample against the one after warm-up.
RSS_TOLERANCE_KB = 16 * 1024
RSS_TOLERANCE_FRACTION = 0.25

THREADS = 6
MPM_CONF = f"""\
StartServers 1
ServerLimit 1
ThreadLimit {THREADS}
ThreadsPerChild {THREADS}
MaxRequestWorkers {THREADS}
MinSpareThreads 1
MaxSpareThreads {THREADS}
MaxConnectionsPerChild 0
"""
# Each worker thread keeps up to two store clients (lookup, stream), each
# with a kept-alive connection (possibly in CLOSE_WAIT once the store timed
# it out) and libcurl's wake-up socketpair: up to 3 fds per client, created
# when a thread first needs it. More than that, plus a margin, is a leak.
FD_TOLERANCE = 3 * 2 * THREADS + 4
SPOOL_PREFIXES = ("hgs3spool.", "hgs3lock.")
# A client that goes away mid-response makes mod_wsgi log it.
WSGI_CLIENT_GONE = r"\[wsgi:(error|info)\].*(Broken pipe|Connection reset|failed to write|" \
                   r"IOError|OSError|client connection closed)"


# --- httpd children -------------------------------------------------------------
def _listen_inode(port):
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            if int(p[1].rsplit(":", 1)[1], 16) == port and p[3] == "0A":
                return p[9]
    return None


def worker_child(httpd):
    """The pid of httpd's MPM child (it holds the listening socket; the
    mod_wsgi daemon does not)."""
    inode = _listen_inode(httpd.port)
    parent = httpd.proc.pid
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != parent:
                continue
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in fds):
                return int(pid)
        except (OSError, ValueError):
            continue
    raise RuntimeError(f"no MPM child of httpd {parent} holds the listener {inode}")


def _tcp_inodes():
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            out.update(line.split()[9] for line in Path(table).read_text().splitlines()[1:])
        except OSError:
            pass
    return out


def sample(pid):
    """{pid, fds, rss_kb} of a process, and its fds by kind: files (paths),
    pipes, tcp sockets, other sockets (unix, socketpairs), spool (open
    hgs3spool.*/hgs3lock.* files)."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    kinds = {"files": 0, "pipes": 0, "tcp": 0, "sockets": 0, "other": 0, "spool": 0}
    tcp = _tcp_inodes()
    fds = os.listdir(f"/proc/{pid}/fd")
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            kinds["tcp" if target[8:-1] in tcp else "sockets"] += 1
        elif target.startswith("pipe:["):
            kinds["pipes"] += 1
        elif target.startswith("/"):
            kinds["files"] += 1
            if os.path.basename(target).startswith(SPOOL_PREFIXES):
                kinds["spool"] += 1
        else:
            kinds["other"] += 1
    return {"pid": pid, "fds": len(fds), "rss_kb": rss, **kinds}


def parse_history(hist):
    """{node: (phase, frozenset(bookmarks))} of Hg.history() lines."""
    out = {}
    for line in hist:
        parts = line.split(" ")
        out[parts[0]] = (parts[1], frozenset(p for p in parts[2:] if p))
    return out


def project(state, nodes, prev=None):
    """What a client gets from changesets `nodes` (a set) with the phases
    and bookmarks of server history `state`: a bookmark on a changeset not
    in `nodes` is ignored (a client that had it, `prev`, keeps its own)."""
    server = parse_history(state)
    marks = {}
    for node, (_, bms) in server.items():
        for bm in bms:
            marks[bm] = node
    if prev:
        for node, (_, bms) in prev.items():
            for bm in bms:
                if marks.get(bm) not in nodes:
                    marks[bm] = node
    out = {}
    for node in nodes:
        out[node] = (server[node][0],
                     frozenset(bm for bm, n in marks.items() if n == node))
    return out


def consistent(hist, states, before=None):
    """True when history `hist` is project(states[j], nodes of states[i],
    before) for some i <= j (states in the order they existed)."""
    got = parse_history(hist)
    prev = parse_history(before) if before else None
    for j in range(len(states)):
        for i in range(j + 1):
            if project(states[j], set(parse_history(states[i])), prev) == got:
                return True
    return False


def spool_leftovers(d):
    return sorted(p.name for p in Path(d).iterdir() if p.name.startswith(SPOOL_PREFIXES))


# --- one store's lane ---------------------------------------------------------------
class Lane:
    """One store: server repository, httpd with mod_hgs3cache, the workers'
    records. `make_httpd(**kw)` starts an HttpdInstance."""

    def __init__(self, name, hg, store, server_repo, workdir, make_httpd):
        self.name = name
        self.hg = hg
        self.store = store
        self.repo = Path(server_repo)
        self.dir = Path(workdir)
        self.spool = self.dir / "spool"
        self.spool.mkdir()
        E.chown_to_server(self.spool)
        conf = "".join(store.location_conf(
            self.repo, location=loc, HitMode=mode, SpoolDir=str(self.spool), Memory="64K",
            MinSize="1K") for loc, mode in (("/repo", "auto"), ("/srepo", "stream")))
        self.httpd = make_httpd(repos={"repo": self.repo, "srepo": self.repo}, module=True,
                                extra_conf=conf, mpm_conf=MPM_CONF)
        self.httpd.allow_log(WSGI_CLIENT_GONE)
        self.lock = threading.Lock()
        # Server states: [(t_begin, t_end, history)]; state k could be seen
        # from t_begin(k) until t_end(k+1).
        self.states = [(0.0, 0.0, self.server_history())]
        self.failures = []
        self.counts = {"clones": 0, "pulls": 0, "pushes": 0, "phase_changes": 0}
        self.samples = []
        self.pending = None       # start time of a mutation in progress

    def server_history(self):
        """The server repository's history, read as the user hgweb runs as
        (so no cache file hgweb must update ends up owned by root)."""
        r = self.hg.run("log", "-R", self.repo, "--hidden", "-T", LOG_TEMPLATE, check=True,
                        as_server=True)
        return tuple(sorted(r.stdout.splitlines()))

    def fail(self, msg):
        with self.lock:
            self.failures.append(f"[{self.name}] {msg}")

    def seen_states(self, t0, t1):
        """Server states (histories, in order) that existed at some point
        between t0 and t1. Waits (bounded) for a mutation that began before
        t1 to be recorded."""
        deadline = time.monotonic() + 120
        while True:
            with self.lock:
                pending = self.pending
                states = list(self.states)
            if pending is None or pending > t1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        out = []
        for k, (b, _, hist) in enumerate(states):
            gone = states[k + 1][1] if k + 1 < len(states) else float("inf")
            if b <= t1 and gone >= t0:
                out.append(hist)
        return out

    def check(self, what, dest, t0, t1, before=None):
        """dest's history is what hg can get from the server states seen
        between t0 and t1, not older ones.

        A clone or pull asks for the heads (batch) and then for the bundle
        (getbundle): a push in between gives the changesets of the state at
        the first request with the phases and bookmarks of the state at the
        second (a bookmark on a changeset the client did not get is ignored;
        a pull then keeps its own). So the history must be such a
        projection of two states seen during the run (the same one, when
        nothing changed). A stale bundle gives the history of a state that
        was gone before the run began, which is none of these."""
        hist = tuple(self.hg.history(dest))
        ok = self.seen_states(t0, t1)
        if consistent(hist, ok, before):
            return hist
        self.fail(f"STALE {what} {dest}: history is no server state between "
                  f"{t0:.2f} and {t1:.2f}:\n  got {list(hist)}\n  server states "
                  f"{[list(h) for h in ok]}")
        return None

    # --- workers ------------------------------------------------------------------
    def pusher(self, deadline, rng):
        url = self.httpd.repo_url("repo")
        work = self.dir / "work"
        r = self.hg.clone(url, work)
        if not r.ok:
            return self.fail(f"pusher clone failed: {r}")
        # Work on the head above `stable`, with `stable` active there, so
        # each commit moves it and each push is a fast-forward.
        self.hg.run("update", "-R", work, "-r", "heads(descendants(stable))", check=True)
        self.hg.run("bookmark", "-R", work, "-f", "stable", check=True)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            t0 = time.monotonic()
            with self.lock:
                self.pending = t0
            if n % 3 == 0:
                # A phase change on the server: same changesets, same heads.
                r = self.hg.run("phase", "-R", self.repo, "--public", "-r", "stable",
                                as_server=True)
                what = "phase_changes"
            else:
                self.hg.commit(work, {f"soak/{n}.bin": random_bytes(rng.random(), 4096 + n),
                                      "soak/log.txt": f"change {n}\n"},
                               f"soak change {n}", hgdate(100 + n))
                r = self.hg.push(work, url, "-B", "stable")
                what = "pushes"
            hist = self.server_history()
            with self.lock:
                self.states.append((t0, time.monotonic(), hist))
                self.pending = None
                if r.ok:
                    self.counts[what] += 1
            if not r.ok:
                self.fail(f"{what[:-1]} {n} failed: {r}")
                return
            time.sleep(rng.uniform(0.5, 1.5))

    def cloner(self, idx, deadline):
        n = 0
        while time.monotonic() < deadline:
            n += 1
            name = "repo" if (n + idx) % 2 else "srepo"
            dest = self.dir / f"clone-{idx}-{n}"
            t0 = time.monotonic()
            r = self.hg.clone(self.httpd.repo_url(name), dest, "-U")
            t1 = time.monotonic()
            if not r.ok:
                self.fail(f"clone {dest} from /{name} failed: {r}")
                continue
            v = self.hg.verify(dest)
            if v.rc != 0 or "error" in v.stderr.lower():
                self.fail(f"hg verify {dest} failed: {v}")
            self.check(f"clone from /{name}", dest, t0, t1)
            with self.lock:
                self.counts["clones"] += 1

    def puller(self, deadline):
        dest = self.dir / "pulled"
        r = self.hg.clone(self.httpd.repo_url("repo"), dest, "-U")
        if not r.ok:
            return self.fail(f"puller clone failed: {r}")
        before = tuple(self.hg.history(dest))
        n = 0
        while time.monotonic() < deadline:
            n += 1
            name = "repo" if n % 2 else "srepo"
            t0 = time.monotonic()
            r = self.hg.pull(dest, self.httpd.repo_url(name))
            t1 = time.monotonic()
            if not r.ok:
                self.fail(f"pull {n} from /{name} failed: {r}")
                continue
            before = self.check(f"pull from /{name}", dest, t0, t1, before) or \
                tuple(self.hg.history(dest))
            with self.lock:
                self.counts["pulls"] += 1
            time.sleep(0.3)
        v = self.hg.verify(dest)
        if v.rc != 0:
            self.fail(f"hg verify of the pulled clone failed: {v}")

    def notes(self):
        out = {}
        for e in self.httpd.access_log.entries():
            if "cmd=getbundle" in e["target"]:
                out[e["note"]] = out.get(e["note"], 0) + 1
        return out


def _sampler(lanes, start_at, deadline, stop):
    """Samples every lane's worker child every 2 s; the first sample at
    start_at is the reference."""
    while not stop.is_set() and time.monotonic() < deadline:
        if time.monotonic() >= start_at:
            for lane in lanes:
                try:
                    lane.samples.append((time.monotonic(), sample(worker_child(lane.httpd))))
                except (OSError, RuntimeError) as e:
                    lane.fail(f"cannot sample the httpd child: {e}")
        stop.wait(2)


def run(seconds, lanes, log=print, warmup=None):
    """Run the soak on `lanes` for `seconds`; returns the report dict
    (report["failures"] is empty when everything held)."""
    seconds = max(10.0, float(seconds))
    warmup = warmup if warmup is not None else min(max(10.0, seconds * 0.15), 60.0)
    t_begin = time.monotonic()
    deadline = t_begin + seconds
    threads = []
    rng = random.Random(20251125)
    for lane in lanes:
        threads.append(threading.Thread(target=lane.pusher, args=(deadline, random.Random(
            rng.random())), name=f"{lane.name}-pusher"))
        for i in range(2):
            threads.append(threading.Thread(target=lane.cloner, args=(i, deadline),
                                            name=f"{lane.name}-cloner{i}"))
        threads.append(threading.Thread(target=lane.puller, args=(deadline,),
                                        name=f"{lane.name}-puller"))
    stop = threading.Event()
    sampler = threading.Thread(target=_sampler, args=(lanes, t_begin + warmup, deadline, stop))
    for t in threads + [sampler]:
        t.daemon = True
        t.start()
    # Bounded: an hg run has a 300 s timeout of its own; give up after that.
    for t in threads:
        t.join(max(1.0, deadline + 330 - time.monotonic()))
        if t.is_alive():
            lanes[0].fail(f"worker {t.name} did not stop")
    stop.set()
    sampler.join(10)

    report = {"seconds": round(time.monotonic() - t_begin, 1), "lanes": {}, "failures": []}
    for lane in lanes:
        # Uploads settle, then nothing is left in the spool directory.
        try:
            E.wait_until(lambda: not spool_leftovers(lane.spool), 30, interval=0.2,
                         what="empty spool dir")
        except TimeoutError:
            lane.fail(f"left in HgS3CacheSpoolDir: {spool_leftovers(lane.spool)}")
        end = None
        try:
            end = sample(worker_child(lane.httpd))
        except (OSError, RuntimeError) as e:
            lane.fail(f"cannot sample the httpd child at the end: {e}")
        first = lane.samples[0][1] if lane.samples else None
        if first is None:
            lane.fail("no sample after the warm-up")
        elif end is not None:
            if end["pid"] != first["pid"]:
                lane.fail(f"the httpd child changed (crash or restart): {first} -> {end}")
            if end["fds"] > first["fds"] + FD_TOLERANCE:
                lane.fail(f"fd growth in the httpd child: {first['fds']} -> {end['fds']} "
                          f"(tolerance {FD_TOLERANCE}): {first} -> {end}")
            # Files and pipes are not per-thread: they must not grow at all
            # (a spool file, a lock, a log reopened...).
            for kind in ("files", "pipes", "other"):
                if end[kind] > first[kind]:
                    lane.fail(f"{kind} fds grew in the httpd child: {first} -> {end}")
            if end["spool"]:
                lane.fail(f"the httpd child still has spool files open: {end}")
            allowed = max(RSS_TOLERANCE_KB, int(first["rss_kb"] * RSS_TOLERANCE_FRACTION))
            if end["rss_kb"] > first["rss_kb"] + allowed:
                lane.fail(f"memory growth in the httpd child: VmRSS {first['rss_kb']} kB -> "
                          f"{end['rss_kb']} kB (tolerance {allowed} kB)")
        if lane.counts["clones"] == 0 or lane.counts["pushes"] == 0:
            lane.fail(f"the soak did too little: {lane.counts}")
        report["lanes"][lane.name] = {
            **lane.counts, "states": len(lane.states), "notes": lane.notes(),
            "child_after_warmup": first, "child_at_end": end,
            "samples": [(round(t - t_begin, 1), s["fds"], s["rss_kb"]) for t, s in lane.samples],
            "objects": len(lane.store.keys("hgcache/"))}
        report["failures"].extend(lane.failures)
    return report


def format_report(report):
    lines = [f"soak: {report['seconds']} s"]
    for name, r in report["lanes"].items():
        lines.append(f"  {name}: {r['clones']} clones, {r['pulls']} pulls, {r['pushes']} pushes, "
                     f"{r['phase_changes']} phase changes, {r['objects']} objects stored")
        lines.append(f"    getbundle notes: {r['notes']}")
        a, b = r["child_after_warmup"], r["child_at_end"]
        if a and b:
            kinds = ", ".join(f"{k} {a[k]}->{b[k]}" for k in ("files", "pipes", "tcp", "sockets"))
            lines.append(f"    httpd child {a['pid']}: fds {a['fds']} -> {b['fds']} ({kinds}), "
                         f"VmRSS {a['rss_kb']} -> {b['rss_kb']} kB")
        lines.append(f"    samples (s, fds, kB): {r['samples']}")
    lines += [f"  FAILURE: {f}" for f in report["failures"]] or ["  no failure"]
    return "\n".join(lines)


# --- standalone ----------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60, help="how long to run (default 60)")
    ap.add_argument("--store", choices=("both", "s3rver", "swift"), default="both")
    args = ap.parse_args(argv)

    from pyhgs3.hg import Hg, build_small_repo, copy_repo
    from pyhgs3.httpd import HttpdFactory
    from pyhgs3.s3rver import S3rverServer

    env = E.TestEnv()
    servers, factories, rc = [], [], 1
    try:
        hg = Hg(env.mkdir("hg-home"))
        template = build_small_repo(hg, env.mkdir("template") / "small")
        lanes = []
        for kind in (("s3rver", "swift") if args.store == "both" else (args.store,)):
            if kind == "s3rver":
                server = S3rverServer(env.mkdir("s3rver"))
            else:
                from pyhgs3.swift import SwiftServer
                server = SwiftServer(env.mkdir("swift"))
            servers.append(server)
            server.start()
            bucket = unique_bucket_name("soak")
            server.create_bucket(bucket)
            factory = HttpdFactory(lambda n, k=kind: env.mkdir(f"{n}-{k}"))
            factories.append(factory)
            repo = copy_repo(template, env.mkdir(f"repo-{kind}") / "small")
            lanes.append(Lane(kind, hg, StoreBucket(server, bucket), repo,
                              env.mkdir(f"lane-{kind}"), factory))
        report = run(args.seconds, lanes)
        for factory in factories:
            report["failures"].extend(factory.stop_all())
            for inst, lines in factory.unexpected_log_lines():
                report["failures"].extend(f"error_log {inst.error_log.path}: {ln}"
                                          for ln in lines)
        print(format_report(report))
        rc = 0 if not report["failures"] else 1
    finally:
        for factory in factories:
            factory.stop_all()
        for server in servers:
            server.stop()
        env.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
