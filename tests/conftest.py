"""pytest fixtures of the mod_hgs3cache integration tests (harness: pyhgs3/).

Session scope:  env (work dir), hg, s3rver, swift, small_repo_template, big_repo,
                history_repo.
Function scope: store (parametrized over s3rver and swift, fresh bucket),
                proxy (FaultProxy in front of `store`), proxy_factory,
                httpd_factory, module_httpd (an httpd with mod_hgs3cache
                on `store`), small_repo (a fresh copy per test).

After every test, the error_log of each httpd the test started is checked for
warn/error lines it did not allow (see pyhgs3/logs.py); any makes it fail.
A store that cannot start fails the tests that need it; nothing is skipped.
"""
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyhgs3 import env as E                                   # noqa: E402
from pyhgs3.bucket import StoreBucket, unique_bucket_name     # noqa: E402
from pyhgs3.filestore import FileStore                        # noqa: E402
from pyhgs3.hg import Hg, build_big_repo, build_small_repo, copy_repo  # noqa: E402
from pyhgs3.hgweblog import instrument                        # noqa: E402
from pyhgs3.httpd import HttpdFactory                         # noqa: E402
from pyhgs3.proxy import FaultProxy                           # noqa: E402
from pyhgs3.s3rver import S3rverServer                        # noqa: E402

STORES = ["s3rver", "swift"]
# The main miss, hit, fault and abort tests also run on the local-directory
# store: their modules say `store = store_fixture(STORES_AND_FILE)`.
STORES_AND_FILE = STORES + ["file"]
SESSION_BUCKET = "hgs3-test"


def _safe_name(nodeid):
    name = nodeid.rsplit("::", 1)[-1]
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:50]


# --- session ---------------------------------------------------------------
@pytest.fixture(scope="session")
def env():
    """The run's work directory (TestEnv): env.root, env.mkdir(name)."""
    e = E.TestEnv()
    yield e
    e.cleanup()


@pytest.fixture(scope="session")
def hg(env):
    """The hg client (pyhgs3.hg.Hg) with a clean environment."""
    return Hg(env.mkdir("hg-home"))


@pytest.fixture(scope="session")
def s3rver(env):
    """@20minutes/s3rver, started once, with bucket SESSION_BUCKET."""
    server = S3rverServer(env.mkdir("s3rver"), buckets=[SESSION_BUCKET])
    try:
        server.start()
        server.create_bucket(SESSION_BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def swift(env):
    """OpenStack Swift with s3api, started once, with bucket SESSION_BUCKET."""
    from pyhgs3.swift import SwiftServer
    server = SwiftServer(env.mkdir("swift"))
    try:
        server.start()
        server.create_bucket(SESSION_BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def small_repo_template(env, hg):
    """The small repository, built once; copy it (small_repo) before changing it."""
    return build_small_repo(hg, env.mkdir("template") / "small")


@pytest.fixture(scope="session")
def big_repo(env, hg):
    """A repository whose full getbundle is > 20 MB. Shared by the whole
    session: read only."""
    path = build_big_repo(hg, env.mkdir("template") / "big")
    E.make_world_readable(path)
    return path


@pytest.fixture(scope="session")
def history_repo(env, hg):
    """A repository shaped like a real one (1500 changesets of source-like
    text, a 23 MB getbundle that costs hgweb about a second of CPU), built by
    pyhgs3/history_repo.py. Shared by the whole session: read only."""
    path = env.mkdir("template") / "history"
    r = subprocess.run([E.PYTHON, str(Path(__file__).resolve().parent / "pyhgs3" /
                                      "history_repo.py"), str(path)],
                       capture_output=True, timeout=300, env=hg.env())
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    E.make_world_readable(path)
    return path


# --- per test --------------------------------------------------------------
@pytest.fixture
def small_repo(env, small_repo_template, request):
    """A fresh copy of the small repository, owned by the httpd user (pushable)."""
    return copy_repo(small_repo_template, env.mkdir(_safe_name(request.node.nodeid)) / "small")


@pytest.fixture
def tmp_dir(env, request):
    """A fresh directory under the run's work dir (world-readable)."""
    return env.mkdir(_safe_name(request.node.nodeid))


def store_fixture(kinds):
    """A `store` fixture parametrized over kinds (names of STORES_AND_FILE)."""
    @pytest.fixture(params=kinds)
    def store(request, env):
        """A started store (s3rver or swift) with a bucket of this test's own:
        StoreBucket with kind, bucket, endpoint, access_key, secret_key, region,
        client(), keys(), get(), put(), head(), location_conf(), proxy(); or a
        local-directory store ("file") of this test's own: FileStore with the
        same kind, keys(), get(), put(), head(), location_conf(), and dir."""
        if request.param == "file":
            return FileStore(env.mkdir("filestore-" + _safe_name(request.node.nodeid)))
        server = request.getfixturevalue(request.param)
        bucket = unique_bucket_name()
        server.create_bucket(bucket)
        return StoreBucket(server, bucket)
    return store


store = store_fixture(STORES)


@pytest.fixture
def proxy_factory(env, request):
    """proxy_factory(store_or_server, **kw) -> started FaultProxy in front of it;
    all are stopped at the end of the test."""
    proxies = []

    def make(target, **kw):
        server = getattr(target, "server", target)
        log = env.mkdir("proxy-" + _safe_name(request.node.nodeid)) / "requests.jsonl"
        p = FaultProxy.for_store(server, log_path=log, **kw).start()
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.stop()


@pytest.fixture
def file_store(env, request):
    """A local-directory store of this test's own (FileStore), for the cases
    only that store has."""
    return FileStore(env.mkdir("filestore-" + _safe_name(request.node.nodeid)))


def store_proxy(request, store):
    """The `proxy` in front of an S3 store; None for the local-directory store
    (a test that can do without it then reads the directory instead)."""
    return None if store.kind == "file" else request.getfixturevalue("proxy")


def skip_for_file(store, why="S3-specific"):
    if store.kind == "file":
        pytest.skip(f"{why}: not for the local-directory store (it has its own cases)")


@pytest.fixture
def proxy(store, proxy_factory):
    """A started FaultProxy in front of `store`: proxy.endpoint, proxy.requests,
    proxy.find/count/wait_for, proxy.add_rule(...). Tests that need it watch or
    break the store's HTTP requests: they are skipped for the local-directory
    store."""
    skip_for_file(store, "observes or breaks the store's HTTP requests")
    return proxy_factory(store)


@pytest.fixture
def httpd_factory(env, request):
    """httpd_factory(repos={"repo": path}, mode="wsgi"|"cgi", module=False,
    extra_conf="", hgweb_conf="", env={}, start=True, ...) -> HttpdInstance.
    Every instance is stopped at the end of the test."""
    factory = HttpdFactory(lambda name: env.mkdir(f"{name}-{_safe_name(request.node.nodeid)}"))
    request.node._hgs3_httpd_factories = getattr(request.node, "_hgs3_httpd_factories", [])
    request.node._hgs3_httpd_factories.append(factory)
    yield factory
    factory.stop_all()


@pytest.fixture
def module_httpd(httpd_factory, request):
    """module_httpd(repos, locations=None, *, store=None, endpoint=None,
    server_conf="", extra_conf="", count_hgweb=False, conf_for=None,
    start=True, **kw) -> HttpdInstance with mod_hgs3cache on a store.

    repos: {name: path} served by hgweb, or one path, served at /repo.
    locations: {name: {Directive: value}}, a <Location /name> with the module
    for repos[name] each (default: one per repo). Keyword arguments named
    like directives (HitMode="stream") apply to every Location; the others
    go to httpd_factory (mode, hgweb_conf, log_level, ...). store: the
    test's `store` unless given; endpoint: e.g. a FaultProxy's instead of the
    store's. count_hgweb: httpd.hgweb_log lists what reached hgweb.
    conf_for(httpd) returns more configuration naming the instance's files."""
    def make(repos, locations=None, *, store=None, endpoint=None, server_conf="",
             extra_conf="", count_hgweb=False, conf_for=None, start=True, **kw):
        common = {k: v for k, v in kw.items() if k[:1].isupper()}
        httpd_kw = {k: v for k, v in kw.items() if not k[:1].isupper()}
        if not isinstance(repos, dict):
            repos = {"repo": repos}
        if locations is None:
            locations = {name: {} for name in repos}
        store = store or request.getfixturevalue("store")
        conf = server_conf + extra_conf + "".join(
            store.location_conf(repos[name], location=f"/{name}", endpoint=endpoint,
                                **{**common, **d})
            for name, d in locations.items())
        httpd = httpd_factory(start=False, repos=repos, module=True, extra_conf=conf,
                              **httpd_kw)
        if count_hgweb:
            instrument(httpd)
        if conf_for:
            httpd.extra_conf += conf_for(httpd)
        if start:
            httpd.start()
        return httpd

    return make


# --- the error_log check ------------------------------------------------------
def _check_httpd_logs(item):
    """Stop the test's httpd instances, then collect unexpected log lines."""
    factories = getattr(item, "_hgs3_httpd_factories", [])
    messages, problems = [], []
    for f in factories:
        messages.extend(f.stop_all())
        problems.extend(f.unexpected_log_lines())
    if problems:
        messages.append(HttpdFactory.format_problems(problems))
    return messages


@pytest.hookimpl(trylast=True)
def pytest_runtest_call(item):
    """Runs after the test body has passed: its httpd logs must be clean."""
    messages = _check_httpd_logs(item)
    if messages:
        pytest.fail("\n".join(messages), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "_hgs3_rep_" + rep.when, rep)


@pytest.fixture(autouse=True)
def _httpd_log_check(request):
    """Checks httpd error logs after each test (also when the call phase did
    not get to it): unexpected lines fail a test that had passed, and are
    printed for one that had failed."""
    yield
    messages = _check_httpd_logs(request.node)
    if not messages:
        return
    rep = getattr(request.node, "_hgs3_rep_call", None)
    text = "\n".join(messages)
    if rep is not None and rep.failed:
        print(f"\n[httpd logs of the failed test]\n{text}", file=sys.stderr)
    else:
        pytest.fail(text, pytrace=False)
