"""Collapsed misses (SPEC "Collapsed misses"): one hgweb generation per key
per host.

Real httpd (event MPM, two child processes) + hgweb (mod_wsgi daemon mode
and CGI) + the real hg client + mod_hgs3cache against both S3 servers (the
`store` fixture, through the recording FaultProxy). hgweb's own getbundle
count comes from a counting wrapper around the hgweb application
(HttpdInstance count_hgweb), not from the module's notes.
"""
import http.client
import os
import signal
import socket
import threading
import time

import pytest

from pyhgs3 import env as E
from pyhgs3.checks import PREFIX, spool_dir, spool_leftovers, wait_getbundles
from test_miss import Gate, module_httpd, uploads, wait_stored
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


def herd_httpd(httpd_factory, store, proxy, repo, spool, mode="wsgi", **directives):
    d = {"SpoolDir": str(spool)}
    d.update(directives)
    return module_httpd(httpd_factory, store, proxy, {"repo": repo}, {"repo": d},
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
