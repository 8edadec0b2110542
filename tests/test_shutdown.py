"""Child shutdown with uploads under way.

Real httpd + hgweb + hg + mod_hgs3cache against both strict stores, with the
store held by the recording FaultProxy. An upload still running when httpd
stops must not keep the child alive until httpd kills it (a killed child
leaves its spool and lock files behind): the module cancels it, removes its
spool and lock, and stores nothing. Queued uploads are dropped the same way.
"""
import time

from pyhgs3.checks import PREFIX, spool_dir, spool_leftovers, wait_getbundles

# httpd sends SIGKILL to a child that has not exited ~3 s after SIGTERM; a
# cancelled upload lets it exit well before that.
STOP_BOUND = 2.5

ONE_WORKER = "HgS3CacheUploadWorkers 1\nHgS3CacheUploadQueue 4\n"


def test_stop_cancels_uploads(hg, module_httpd, big_repo, small_repo, tmp_dir, store, proxy):
    """One upload hangs in the store (the proxy reads it and never answers),
    a second one waits in the queue behind it: stopping httpd takes well under
    the time after which httpd kills its children, and leaves no spool or lock
    file and no object."""
    spool = spool_dir(tmp_dir)
    httpd = module_httpd({"big": big_repo, "small": small_repo}, endpoint=proxy.endpoint,
                         SpoolDir=str(spool), MinSize=1, server_conf=ONE_WORKER)
    proxy.add_rule("hang", method=("PUT", "POST"))

    for name in ("big", "small"):
        r = hg.clone(httpd.repo_url(name), tmp_dir / name, "-U")
        assert r.ok, r
        (entry,) = wait_getbundles(httpd, name, 1)
        assert entry["note"] == "miss", entry
    # The big upload is in the store's hands; the small one is queued.
    proxy.wait_for(("PUT", "POST"), PREFIX, done=None, timeout=20)
    assert spool_leftovers(spool), "the uploads should still hold their spools"

    t0 = time.monotonic()
    httpd.stop()
    took = time.monotonic() - t0
    assert took < STOP_BOUND, f"httpd took {took:.1f}s to stop with an upload under way"
    assert spool_leftovers(spool) == []
    assert store.keys(PREFIX) == []
