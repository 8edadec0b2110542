"""The real hg client with a clean environment, and repository factories.

Every hg run uses HGRCPATH=<home>/hgrc (nothing from /etc or ~), HGPLAIN=1,
HGENCODING=utf-8 and HOME=<home>. Repositories built here are deterministic
(fixed user, dates and seeded data), so two builds give the same node ids.
"""
import os
import random
import shutil
import subprocess
from pathlib import Path

from . import env as E

HGRC = """\
[ui]
username = hgs3 test <test@hgs3.invalid>
interactive = false
[trusted]
users = *
groups = *
"""

LOG_TEMPLATE = "{node} {phase} {bookmarks}\\n"


class HgResult:
    def __init__(self, args, rc, stdout, stderr):
        self.args = args
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    @property
    def ok(self):
        return self.rc == 0

    def check(self):
        if self.rc != 0:
            raise AssertionError(f"hg failed: {self}")
        return self

    def __repr__(self):
        return (f"<hg {' '.join(self.args)} rc={self.rc}\n--- stdout\n{self.stdout}"
                f"\n--- stderr\n{self.stderr}>")


class Hg:
    """Runs /usr/bin/hg in a clean environment rooted at `home`."""

    def __init__(self, home, hgrc_extra=""):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o755)
        self.hgrc = self.home / "hgrc"
        self.hgrc.write_text(HGRC + hgrc_extra)
        os.chmod(self.hgrc, 0o644)

    def env(self, extra=None):
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home), "HGRCPATH": str(self.hgrc),
               "HGPLAIN": "1", "HGENCODING": "utf-8", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HGUSER": "hgs3 test <test@hgs3.invalid>", "TZ": "UTC"}
        env.update(extra or {})
        return env

    def run(self, *args, cwd=None, env=None, timeout=300, input=None, check=False,
            as_server=False):
        """Run hg; returns an HgResult. as_server runs it as the user httpd
        children run as (nobody, when root), for repositories hgweb writes."""
        argv = [E.HG] + [str(a) for a in args]
        preexec = None
        if as_server and E.running_as_root():
            uid, gid = E.server_ids()

            def preexec():
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
        p = subprocess.run(argv, cwd=str(cwd) if cwd else None, env=self.env(env),
                           input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, preexec_fn=preexec)
        res = HgResult(argv[1:], p.returncode, p.stdout.decode("utf-8", "replace"),
                       p.stderr.decode("utf-8", "replace"))
        return res.check() if check else res

    # --- remote operations ---------------------------------------------
    def clone(self, url, dest, *extra, **kw):
        return self.run("clone", *extra, url, dest, **kw)

    def pull(self, repo, url=None, *extra, **kw):
        args = ["pull", "-R", repo, *extra]
        if url:
            args.append(url)
        return self.run(*args, **kw)

    def push(self, repo, url=None, *extra, **kw):
        args = ["push", "-R", repo, *extra]
        if url:
            args.append(url)
        return self.run(*args, **kw)

    # --- local inspection ----------------------------------------------
    def verify(self, repo, **kw):
        return self.run("verify", "-R", repo, **kw)

    def history(self, repo):
        """Sorted lines '<node> <phase> <bookmarks>' of every changeset."""
        r = self.run("log", "-R", repo, "--hidden", "-T", LOG_TEMPLATE, check=True)
        return sorted(r.stdout.splitlines())

    def heads(self, repo):
        r = self.run("heads", "-R", repo, "-T", "{node}\\n", check=True)
        return sorted(r.stdout.split())

    def bookmarks(self, repo):
        """{name: node}"""
        r = self.run("bookmarks", "-R", repo, "-T", "{bookmark} {node}\\n", check=True)
        return dict(line.split() for line in r.stdout.splitlines() if line.strip())

    def tip(self, repo):
        return self.run("log", "-R", repo, "-r", "tip", "-T", "{node}", check=True).stdout

    def assert_same_history(self, a, b):
        ha, hb = self.history(a), self.history(b)
        assert ha == hb, f"history of {b} differs from {a}:\n{ha}\n!=\n{hb}"
        assert ha, f"{a} has no changesets"

    def assert_verify_clean(self, repo):
        r = self.verify(repo)
        assert r.rc == 0, f"hg verify {repo} failed: {r}"
        assert "error" not in r.stderr.lower(), f"hg verify {repo}: {r}"
        return r

    # --- building ------------------------------------------------------
    def commit(self, repo, files, message, date, *extra, as_server=False):
        """Write files ({relpath: bytes or str}), addremove and commit."""
        repo = Path(repo)
        for rel, data in files.items():
            path = repo / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, str):
                data = data.encode()
            path.write_bytes(data)
        self.run("commit", "-R", repo, "-A", "-m", message, "-d", date, *extra, check=True,
                 as_server=as_server)
        return self.tip(repo)


def hgdate(n):
    """A fixed commit date, n hours after a fixed epoch (deterministic nodes)."""
    return f"{1700000000 + 3600 * n} 0"


def random_bytes(seed, n):
    return random.Random(seed).randbytes(n)


def build_small_repo(hg, path):
    """A small repository: 5 changesets on two heads, public and draft ones,
    two bookmarks, and about 100 KB of incompressible data, so a full
    getbundle is above mod_hgs3cache's default HgS3CacheMinSize (64 KiB).
    Non-publishing (phases.publish=false), so drafts stay draft in clones."""
    path = Path(path)
    hg.run("init", path, check=True)
    (path / ".hg" / "hgrc").write_text("[phases]\npublish = false\n")
    n0 = hg.commit(path, {"README": "small test repository\n",
                          "data/blob0.bin": random_bytes(1, 50_000)}, "initial", hgdate(0))
    hg.commit(path, {"a.txt": "alpha\n" * 20}, "add a", hgdate(1))
    n2 = hg.commit(path, {"data/blob1.bin": random_bytes(2, 50_000), "a.txt": "alpha 2\n"},
                   "second blob", hgdate(2))
    hg.run("phase", "-R", path, "--public", "-r", n2, check=True)
    hg.run("bookmark", "-R", path, "-r", n2, "stable", check=True)
    hg.commit(path, {"b/b.txt": "beta\n"}, "draft on stable", hgdate(3))
    hg.run("update", "-R", path, "-r", n0, check=True)
    hg.commit(path, {"c.txt": "gamma\n"}, "draft second head", hgdate(4))
    hg.run("bookmark", "-R", path, "feature", check=True)
    hg.run("update", "-R", path, "null", check=True)
    return path


def build_big_repo(hg, path, total_mb=24, commits=3, seed=20):
    """A repository whose full getbundle is above 20 MB even compressed:
    `commits` changesets of seeded random (incompressible) data."""
    path = Path(path)
    hg.run("init", path, check=True)
    per = total_mb * 1024 * 1024 // commits
    for i in range(commits):
        hg.commit(path, {f"big/blob{i}.bin": random_bytes(seed + i, per),
                         "log.txt": f"big commit {i}\n"}, f"big {i}", hgdate(i))
    hg.run("phase", "-R", path, "--public", "-r", "tip", check=True)
    hg.run("update", "-R", path, "null", check=True)
    return path


def clone_push_pull(hg, url, repo, tmp_dir):
    """Against the hgweb at url serving repo: clone twice, push a changeset
    over HTTP, move a bookmark and a phase on the server, pull. Every copy
    must have the server's history and verify clean. Returns the first clone."""
    first = Path(tmp_dir) / "first"
    again = Path(tmp_dir) / "again"
    for dest in (first, again):
        r = hg.clone(url, dest, "-U")
        assert r.ok, r
        hg.assert_same_history(repo, dest)
        hg.assert_verify_clean(dest)

    work = Path(tmp_dir) / "work"
    hg.clone(url, work, check=True)
    # On top of the head that descends from "stable", so moving the bookmark
    # there is a fast-forward for the pulling clones.
    hg.run("update", "-R", work, "-r", "heads(descendants(stable))", check=True)
    node = hg.commit(work, {"new.txt": "pushed over http\n"}, "pushed", hgdate(10))
    r = hg.push(work, url)
    assert r.ok, r
    hg.run("bookmark", "-R", repo, "-f", "-r", node, "stable", check=True, as_server=True)
    assert hg.bookmarks(repo)["stable"] == node
    hg.run("phase", "-R", repo, "--public", "-r", "feature", check=True, as_server=True)

    for dest in (first, again):
        r = hg.pull(dest, url)
        assert r.ok, r
        hg.assert_same_history(repo, dest)
        hg.assert_verify_clean(dest)
        assert hg.bookmarks(dest)["stable"] == node
    return first


def copy_repo(src, dest):
    """A plain copy (no hardlinks), owned by the server user when root, so
    hgweb can take pushes into it."""
    shutil.copytree(src, dest, symlinks=True)
    E.make_world_readable(dest)
    E.chown_to_server(dest)
    return Path(dest)
