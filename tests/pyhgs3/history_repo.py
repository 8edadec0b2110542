#!/usr/bin/python3
"""Build a repository with a long, source-like history, for the clone figures.

    /usr/bin/python3 bench/history_repo.py DEST [--commits N] [--seed S]

The harness' big repository (tests/pyhgs3/hg.py build_big_repo) is three
changesets of incompressible blobs: hgweb sends it almost as stored, so a
miss costs little CPU. Real repositories are many changesets of text
stored as deltas, which hgweb decompresses, walks revision by revision in
Python and recompresses for the wire. This one has that shape: N
changesets over a growing tree of text files (lines of words drawn from a
fixed vocabulary, so it compresses like prose or code), each changeset
adding one file and editing a few, in deterministic order (fixed seed,
user and dates), with its full getbundle above 20 MB. Commits go through
Mercurial's own API (memctx) in one transaction, so building it takes
seconds, not one hg process per changeset.
"""
import argparse
import random
import sys

from mercurial import context, hg
from mercurial import ui as uimod

USER = b"hgs3 bench <bench@hgs3.invalid>"


def vocabulary(rng, n=20000):
    letters = "abcdefghijklmnopqrstuvwxyz_"
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(2, 10))))
    return sorted(words)


def text_lines(rng, words, n):
    out = []
    for _ in range(n):
        indent = "    " * rng.randint(0, 3)
        out.append((indent + " ".join(rng.choices(words, k=rng.randint(3, 12))) + "\n").encode())
    return out


def build(dest, commits, seed, new_lines, edits):
    rng = random.Random(seed)
    words = vocabulary(rng)
    u = uimod.ui.load()
    u.setconfig(b"ui", b"username", USER)
    u.setconfig(b"phases", b"publish", b"true")
    repo = hg.repository(u, dest.encode(), create=True)
    files = {}                                         # path -> [lines]
    order = []
    parent = repo.nullid
    with repo.wlock(), repo.lock(), repo.transaction(b"bench-history"):
        for i in range(commits):
            changed = {}
            path = f"src/m{i % 37:02d}/file{i:05d}.txt".encode()
            files[path] = text_lines(rng, words, new_lines)
            order.append(path)
            changed[path] = files[path]
            for _ in range(edits if len(order) > 1 else 0):
                p = rng.choice(order[:-1])
                lines = files[p]
                at = rng.randrange(len(lines))
                n = rng.randint(1, 8)
                lines[at:at + n] = text_lines(rng, words, rng.randint(1, 10))
                changed[p] = lines

            def filectxfn(repo_, memctx, fpath, _changed=changed):
                return context.memfilectx(repo_, memctx, fpath, b"".join(_changed[fpath]))

            ctx = context.memctx(repo, (parent, repo.nullid), b"change %d" % i,
                                 sorted(changed), filectxfn, USER,
                                 b"%d 0" % (1700000000 + 600 * i))
            parent = ctx.commit()
    return repo


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest")
    ap.add_argument("--commits", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--new-lines", type=int, default=600, help="lines of each new file")
    ap.add_argument("--edits", type=int, default=3, help="files edited per changeset")
    args = ap.parse_args()
    repo = build(args.dest, args.commits, args.seed, args.new_lines, args.edits)
    print(f"{args.dest}: {len(repo)} changesets", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
