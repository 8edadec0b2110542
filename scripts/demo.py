#!/usr/bin/python3
"""mod_hgs3cache demo: clone a repository twice through httpd + hgweb with the
cache on, and show what happened.

It starts, on loopback ports and in a temporary directory:
  - an S3-compatible store (@20minutes/s3rver, which checks SigV4) with a bucket;
  - Apache httpd with hgweb under mod_wsgi and the built mod_hgs3cache
    (`HgS3Cache on`, `HgS3CacheHeader on`);
then clones a sample repository twice with the real hg client and prints, for
each clone, the requests httpd saw (with the module's note), the time taken,
whether `hg verify` is clean and whether the history matches the source, and
what the bucket holds afterwards. Everything it started is stopped at the end,
also on error or Ctrl-C.

Exit status: 0 when both clones succeeded, verified clean and match the
source; 1 otherwise; 2 when the demo could not set itself up; 130 on Ctrl-C.

Run it with Debian's /usr/bin/python3 (it needs boto3 and mercurial), after
scripts/install-deps and scripts/build; scripts/demo does all three.
"""
import argparse
import os
import signal
import sys
import time
import urllib.parse
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests"))

from pyhgs3 import env as E                                        # noqa: E402
from pyhgs3.hg import Hg, build_big_repo, build_small_repo          # noqa: E402
from pyhgs3.httpd import HttpdInstance, hgs3cache_location          # noqa: E402
from pyhgs3.s3rver import S3rverServer                              # noqa: E402

BUCKET = "hgs3-demo"
MIN_SIZE = 65536                   # HgS3CacheMinSize default
UPLOAD_WAIT = 10.0                 # seconds to wait for the background upload


# --- output -------------------------------------------------------------------
def step(title):
    print(f"\n==== {title} ====", flush=True)


def say(text=""):
    print(text, flush=True)


def human(n):
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def redacted_location(value):
    """A Location header without its query (a presigned URL's signature and
    credential scope are not printed)."""
    if not value:
        return None
    u = urllib.parse.urlsplit(value)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, "", "")) + \
        ("?<query not shown>" if u.query else "")


# --- access log -------------------------------------------------------------------
def wire_cmd(target):
    query = target.split("?", 1)[1] if "?" in target else ""
    return urllib.parse.parse_qs(query).get("cmd", ["-"])[0]


def new_entries(httpd, since, timeout=3.0):
    """Access log entries after the first `since`. httpd writes a line when a
    request ends, which can be a moment after the client is done: wait until
    the getbundle line is there (or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for e in httpd.access_log.entries()[since:]
                   if e["target"].startswith("/repo")]
        if any(wire_cmd(e["target"]) == "getbundle" for e in entries) \
                or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


NOTE_MEANING = {
    "miss": "not found in the store; hgweb answered, the module copied the body to store it",
    "hit-redirect": "answered with a redirect to the stored object; hgweb did not run",
    "hit-stream": "httpd streamed the stored object; hgweb did not run",
    "bypass:command": "not a command in HgS3CacheCommands (default getbundle): left to hgweb",
}


def print_legend(entries):
    seen = []
    for e in entries:
        if e["note"] and e["note"] not in seen:
            seen.append(e["note"])
    for note in seen:
        meaning = NOTE_MEANING.get(note)
        if meaning is None and note.startswith("miss-store-skipped:"):
            meaning = "hgweb answered; the module did not store it (" + note.split(":", 1)[1] + ")"
        elif meaning is None and note.startswith("bypass:"):
            meaning = "the module stood aside (" + note.split(":", 1)[1] + "); hgweb answered"
        say(f"  {note}: {meaning or '(no description)'}")


def print_requests(entries):
    say(f"  {'method':<6} {'cmd':<13} {'status':>6} {'bytes':>11} {'time':>8}  "
        f"{'note (%{hgs3cache}n)':<22} X-HgS3Cache")
    for e in entries:
        say(f"  {e['method']:<6} {wire_cmd(e['target']):<13} {e['status']:>6} "
            f"{e['bytes']:>11} {e['duration_us'] / 1e6:>7.3f}s  {e['note'] or '-':<22} "
            f"{e['x_hgs3cache'] or '-'}")
        loc = redacted_location(e.get("location"))
        if loc:
            say(f"  {'':<6} Location: {loc}")


# --- bucket -------------------------------------------------------------------------
def bucket_objects(s3):
    """[(key, size, content_type)] of every object in the bucket."""
    c = s3.client()
    out = []
    for key in s3.list_keys(BUCKET):
        h = c.head_object(Bucket=BUCKET, Key=key)
        out.append((key, h["ContentLength"], h.get("ContentType")))
    return out


def wait_for_objects(s3, timeout):
    """The bucket's objects, waiting up to timeout for the first to appear."""
    deadline = time.monotonic() + timeout
    while True:
        objs = bucket_objects(s3)
        if objs or time.monotonic() > deadline:
            return objs
        time.sleep(0.25)


def print_bucket(objs, getbundle_bytes):
    if not objs:
        say(f"  bucket {BUCKET}: empty")
        return
    say(f"  bucket {BUCKET}: {len(objs)} object(s)")
    for key, size, ctype in objs:
        same = " (same size as the getbundle response)" if size in getbundle_bytes else ""
        say(f"    {key}  {size} bytes  Content-Type: {ctype or '-'}{same}")


# --- one clone ------------------------------------------------------------------------
class CloneResult:
    def __init__(self, n):
        self.n = n
        self.ok = False
        self.verify_ok = False
        self.history_ok = False
        self.seconds = 0.0
        self.entries = []
        self.explanation = ""

    @property
    def getbundles(self):
        return [e for e in self.entries if wire_cmd(e["target"]) == "getbundle"]

    @property
    def notes(self):
        return [e["note"] for e in self.getbundles]

    @property
    def good(self):
        return self.ok and self.verify_ok and self.history_ok


def clone(n, hg, httpd, source, dest):
    step(f"clone {n}: hg clone {httpd.repo_url('repo')}")
    res = CloneResult(n)
    since = len(httpd.access_log.entries())
    t0 = time.monotonic()
    r = hg.clone(httpd.repo_url("repo"), dest)
    res.seconds = time.monotonic() - t0
    res.ok = r.ok
    res.entries = new_entries(httpd, since)
    say(f"hg clone: {'ok' if r.ok else 'FAILED (rc=%d)' % r.rc} in {res.seconds:.2f}s")
    if not r.ok:
        say("  " + (r.stderr.strip() or r.stdout.strip()).replace("\n", "\n  "))
    say("requests httpd saw (access log):")
    print_requests(res.entries)
    print_legend(res.entries)
    if r.ok:
        v = hg.verify(dest)
        res.verify_ok = v.rc == 0 and "error" not in v.stderr.lower()
        say(f"hg verify: {'clean' if res.verify_ok else 'NOT clean'}")
        if not res.verify_ok:
            say("  " + (v.stderr.strip() or v.stdout.strip()).replace("\n", "\n  "))
        src, got = hg.history(source), hg.history(dest)
        res.history_ok = bool(src) and src == got
        say(f"history: {'matches the source' if res.history_ok else 'DIFFERS from the source'}"
            f" ({len(got)} of {len(src)} changesets, with phases and bookmarks)")
    return res


def explain(res, objs_before, objs_after, any_hit):
    """One line on how the clone's getbundle was answered, from the notes."""
    notes = [x for x in res.notes if x]
    who = f"clone {res.n}"
    if not res.getbundles:
        return f"{who}: no getbundle request was logged"
    if not notes:
        return (f"{who} was answered by hgweb; the module left no note "
                "(it did not handle the request)")
    note = notes[-1]
    if note.startswith("hit"):
        how = "a redirect to the store" if note == "hit-redirect" else \
            "httpd streaming the stored object"
        return f"{who} was answered from the bucket by {how} (note: {note}); hgweb did not run"
    if note == "miss":
        again = " again" if res.n > 1 else ""
        line = f"{who} was answered by hgweb{again} (note: miss)"
        if res.n > 1 and not any_hit:
            if objs_before:
                return (line + ": the bucket held a stored response, but the module does not "
                        "answer from the store: the hit path is not implemented yet")
            return (line + ": the bucket was empty, so there was nothing to answer from "
                    "(and the hit path is not implemented yet)")
        new = len(objs_after) - len(objs_before)
        if new > 0:
            return line + f"; the module stored the response: {new} new object(s) in the bucket"
        return (line + f"; nothing new appeared in the bucket within {UPLOAD_WAIT:.0f}s "
                "(the store step of the miss path did not put an object)")
    if note.startswith("miss-store-skipped:"):
        return (f"{who} was answered by hgweb (note: {note}); the module chose not to store it: "
                f"{note.split(':', 1)[1]}")
    if note.startswith("bypass:"):
        return f"{who} was answered by hgweb without the cache (note: {note})"
    return f"{who}: note {note}"


# --- main ----------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big", action="store_true",
                    help="use a ~24 MB repository instead of the small (~100 KB) one")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (configs, logs, clones) at the end")
    args = ap.parse_args()

    # SIGTERM ends the demo like Ctrl-C: the finally below stops everything.
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    module = E.module_path()
    if not module.exists():
        say(f"demo: the module is not built ({module} is missing): run scripts/build")
        return 2

    work = E.TestEnv()
    work.keep = work.keep or args.keep
    s3 = httpd = None
    results = []
    try:
        step("setup")
        say(f"work directory: {work.root}")
        say(f"module:         {module}")

        s3 = S3rverServer(work.mkdir("s3rver"), buckets=[BUCKET])
        s3.start()
        s3.create_bucket(BUCKET)
        say(f"S3 store:       @20minutes/s3rver at {s3.endpoint}, bucket {BUCKET} "
            f"(region {s3.region}; it checks SigV4 signatures)")

        hg = Hg(work.mkdir("hg-home"))
        kind = "big" if args.big else "small"
        say(f"repository:     building the {kind} sample repository ...")
        build = build_big_repo if args.big else build_small_repo
        source = build(hg, work.mkdir("repo") / kind)
        E.make_world_readable(source)
        say(f"                {source}: {len(hg.history(source))} changesets")

        conf = hgs3cache_location("/repo", source, bucket=BUCKET, endpoint=s3.endpoint,
                                  region=s3.region, access_key=s3.access_key,
                                  secret_key=s3.secret_key, Header=True)
        httpd = HttpdInstance(work.mkdir("httpd"), repos={"repo": source}, mode="wsgi",
                              module=True, extra_conf=conf)
        rc, out = httpd.configtest()
        if rc != 0:
            say("httpd configtest failed:\n" + out)
            return 2
        httpd.start()
        say(f"httpd:          {httpd.url}/repo, hgweb under mod_wsgi (daemon mode), "
            f"config {httpd.conf_path}")
        say("mod_hgs3cache:  HgS3Cache on, HgS3CacheHeader on, bucket, endpoint, credentials "
            f"and repository as above; HgS3CacheMinSize default ({human(MIN_SIZE)})")

        clones = work.mkdir("clones")
        objs = []
        for n in (1, 2):
            res = clone(n, hg, httpd, source, clones / f"clone{n}")
            results.append(res)
            before = objs
            # The upload runs in the background after the response: give it
            # a moment to land when the module captured a miss.
            wait = UPLOAD_WAIT if "miss" in res.notes and not before else 1.0
            objs = wait_for_objects(s3, wait) if not before else bucket_objects(s3)
            say("bucket afterwards:")
            print_bucket(objs, {e["bytes"] for e in res.getbundles})
            res.explanation = explain(res, before, objs,
                                      any(x and x.startswith("hit")
                                          for r in results for x in r.notes))
            say(res.explanation)

        step("summary")
        for res in results:
            if res.ok:
                checks = (f"verify {'clean' if res.verify_ok else 'NOT clean'}, history "
                          f"{'matches' if res.history_ok else 'DIFFERS'}")
            else:
                checks = "nothing to verify"
            say(f"clone {res.n}: {'ok' if res.ok else 'FAILED'}, {res.seconds:.2f}s, {checks}, "
                f"getbundle note(s): {', '.join(x or '-' for x in res.notes) or 'none'}")
        for res in results:
            say(res.explanation)
        lines = httpd.error_log.unexpected(consume=False)
        if lines:
            say(f"httpd error log: {len(lines)} warning/error line(s):")
            for ln in lines[:20]:
                say("  " + ln)
        else:
            say("httpd error log: no warnings or errors")
        return 0 if len(results) == 2 and all(r.good for r in results) else 1
    except KeyboardInterrupt:
        say("\ninterrupted")
        return 130
    except Exception as e:                  # setup trouble: say what, then clean up
        say(f"\ndemo: {type(e).__name__}: {e}")
        return 2
    finally:
        step("stopping")
        signal.signal(signal.SIGINT, signal.SIG_IGN)      # let the cleanup finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if httpd is not None:
            httpd.stop()
            say("httpd stopped")
        if s3 is not None:
            s3.stop()
            say("s3rver stopped")
        work.cleanup()          # says where it is when kept


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
