"""Where a repository mapping and credentials apply: real httpd, hgweb
(mod_wsgi daemon), the real hg client, the built module and both stores.

- A repository mapping (HgS3CacheRepository, HgS3CacheRepositoryRoot)
  belongs to the <Location> that sets it: a nested <Location> that changes
  any other directive inherits it together with that Location's path, so a
  collection's URLs keep naming the same repositories.
- A mapping at server level belongs to "/": with a <LocationMatch> that only
  turns the cache on, every URL still names its own repository.
- The path of that Location is part of the key: one repository at two
  Locations never shares an object, the same Location on two hosts does.
- Credentials merge as one unit: an inner HgS3CacheCredentialsFile replaces
  outer static keys.

To make a wrong answer visible, the repositories that could be confused
have the same changesets (so hg sends the very same getbundle request) but
different bookmarks, which the bundle carries.
"""
import os

from pyhgs3.checks import (PREFIX, clone_verified, getbundles, key_lines, wait_getbundles,
                           wait_objects)
from pyhgs3.hg import copy_repo
from pyhgs3.hgwire import clone_headers
from pyhgs3.httpd import hgs3cache_location

LOG_LEVEL = "info hgs3cache:debug"


def _bookmarked_copy(hg, template, dest, bookmark):
    """A copy of template with one more bookmark: the same getbundle request,
    another bundle."""
    copy_repo(template, dest)
    hg.run("bookmark", "-R", dest, "-r", "stable", bookmark, check=True, as_server=True)
    return dest


def _clone(hg, httpd, path, dest, repo, note):
    """A verified clone of path whose getbundle got `note`; returns the
    clone's bookmarks."""
    name = path.lstrip("/")
    before = len(getbundles(httpd, name))
    clone_verified(hg, httpd.url + path, dest, repo)
    entries = wait_getbundles(httpd, name, before + 1)
    assert entries[-1]["note"] == note, (path, entries[-1])
    assert hg.bookmarks(dest) == hg.bookmarks(repo), (path, hg.bookmarks(dest))
    return hg.bookmarks(dest)


def _repo_of_keys(httpd):
    return [(k["repo"], k["key"]) for k in key_lines(httpd, "getbundle")]


# --- item: a nested Location keeps the collection's mapping ---------------------------
def test_nested_location_keeps_mapping(hg, httpd_factory, store, small_repo_template, tmp_dir):
    root = tmp_dir / "root"
    lib = copy_repo(small_repo_template, root / "lib")
    team = _bookmarked_copy(hg, small_repo_template, root / "team" / "lib", "team-only")
    conf = (store.location_conf(None, location="/hg", RepositoryRoot=root, Header=True)
            # any HgS3Cache* directive in a later, nested Location
            + "<Location /hg/team>\n    HgS3CacheHitMode stream\n</Location>\n")
    httpd = httpd_factory(repos={"hg/lib": lib, "hg/team/lib": team}, module=True,
                          extra_conf=conf, log_level=LOG_LEVEL)

    marks = _clone(hg, httpd, "/hg/team/lib", tmp_dir / "t1", team, "miss")
    assert "team-only" in marks
    (team_obj,) = wait_objects(store)
    # /hg/lib is another repository: a miss, answered with its own bookmarks.
    marks = _clone(hg, httpd, "/hg/lib", tmp_dir / "l1", lib, "miss")
    assert "team-only" not in marks
    objs = wait_objects(store, 2)
    # Each hits its own object now, the nested Location streaming.
    _clone(hg, httpd, "/hg/team/lib", tmp_dir / "t2", team, "hit-stream")
    _clone(hg, httpd, "/hg/lib", tmp_dir / "l2", lib, "hit-redirect")

    keys = _repo_of_keys(httpd)
    assert [r for r, _ in keys] == [os.path.realpath(p) for p in (team, lib, team, lib)], keys
    assert keys[0][1] != keys[1][1] and keys[0][1] == keys[2][1], keys
    lib_obj = PREFIX + keys[1][1]
    assert sorted(objs) == sorted([team_obj, lib_obj])
    assert store.get(team_obj)[0] != store.get(lib_obj)[0]
    assert store.keys() == sorted(objs)



def test_path_outside_location(hg, httpd_factory, store, small_repo):
    """httpd matches a <Location> ignoring doubled slashes, which
    MergeSlashes Off keeps in the path: /a//repo does not start with /a/repo
    and cannot be placed below it. It is left to hgweb; nothing is looked up
    or stored."""
    conf = "MergeSlashes Off\n" + store.location_conf(small_repo, location="/a/repo",
                                                      Header=True)
    httpd = httpd_factory(repos={"a/repo": small_repo}, module=True, extra_conf=conf,
                          log_level=LOG_LEVEL)
    headers = clone_headers(hg.heads(small_repo))
    status, hdrs, body = httpd.get("/a/repo?cmd=getbundle", headers=headers)
    assert status == 200 and hdrs.get("x-hgs3cache") == "miss", (status, hdrs)
    (obj,) = wait_objects(store)
    status, hdrs, _ = httpd.get("/a//repo?cmd=getbundle", headers=headers)
    assert hdrs.get("x-hgs3cache") == "bypass:location", (status, hdrs)
    assert status in (200, 404), status
    assert len(key_lines(httpd, "getbundle")) == 1 and store.keys() == [obj]


# --- item: a server-level mapping belongs to "/" ----------------------------------------
def test_location_match_with_server_mapping(hg, httpd_factory, store, small_repo_template,
                                            tmp_dir):
    """<LocationMatch "^/r"> turns the cache on; the collection is mapped at
    server level, whose base is "/": /rfork and /r stay two repositories."""
    root = tmp_dir / "root"
    r = copy_repo(small_repo_template, root / "r")
    fork = _bookmarked_copy(hg, small_repo_template, root / "rfork", "fork-only")
    loc = hgs3cache_location("/unused", None, bucket=store.bucket, endpoint=store.endpoint,
                             region=store.region, access_key=store.access_key,
                             secret_key=store.secret_key, Header=True)
    body = loc.split("\n", 1)[1].rsplit("</Location>", 1)[0]
    conf = (f"HgS3CacheRepositoryRoot {root}\n"
            f'<LocationMatch "^/r">\n{body}</LocationMatch>\n')
    httpd = httpd_factory(repos={"r": r, "rfork": fork}, module=True, extra_conf=conf,
                          log_level=LOG_LEVEL)

    assert "fork-only" in _clone(hg, httpd, "/rfork", tmp_dir / "f1", fork, "miss")
    wait_objects(store)
    assert "fork-only" not in _clone(hg, httpd, "/r", tmp_dir / "r1", r, "miss")
    objs = wait_objects(store, 2)
    _clone(hg, httpd, "/r", tmp_dir / "r2", r, "hit-redirect")
    _clone(hg, httpd, "/rfork", tmp_dir / "f2", fork, "hit-redirect")
    keys = _repo_of_keys(httpd)
    assert [k for _, k in keys[2:]] == [keys[1][1], keys[0][1]], keys
    assert len(objs) == 2 and store.get(objs[0])[0] != store.get(objs[1])[0]


# --- item: the Location is part of the key ----------------------------------------------
def test_location_in_key(hg, httpd_factory, store, small_repo, tmp_dir):
    """One repository at two Locations: two objects. The same Location on
    another front end sharing the bucket: the same object."""
    conf = (store.location_conf(small_repo, location="/a", Header=True)
            + store.location_conf(small_repo, location="/b", Header=True))
    one = httpd_factory(repos={"a": small_repo, "b": small_repo}, module=True, extra_conf=conf,
                        log_level=LOG_LEVEL)
    two = httpd_factory(repos={"a": small_repo, "b": small_repo}, module=True, extra_conf=conf,
                        log_level=LOG_LEVEL)

    _clone(hg, one, "/a", tmp_dir / "a1", small_repo, "miss")
    (obj_a,) = wait_objects(store)
    # The same repository, state and request at /b: not /a's object.
    _clone(hg, one, "/b", tmp_dir / "b1", small_repo, "miss")
    objs = wait_objects(store, 2)
    assert len(objs) == 2 and obj_a in objs
    # Another host, same Locations: both hit the objects stored by the first.
    _clone(hg, two, "/a", tmp_dir / "a2", small_repo, "hit-redirect")
    _clone(hg, two, "/b", tmp_dir / "b2", small_repo, "hit-redirect")
    k1, k2 = [k for _, k in _repo_of_keys(one)], [k for _, k in _repo_of_keys(two)]
    assert k1 == k2 and k1[0] != k1[1], (k1, k2)
    assert store.keys() == objs


# --- item: credentials merge as one unit ----------------------------------------------------
def test_inner_credentials_file_replaces_outer_keys(hg, httpd_factory, store, small_repo,
                                                    tmp_dir):
    creds = tmp_dir / "credentials"
    creds.write_text(f"[default]\naws_access_key_id = {store.access_key}\n"
                     f"aws_secret_access_key = {store.secret_key}\n")
    os.chmod(creds, 0o644)
    outer = "HgS3CacheAccessKeyId AKIDWRONGOUTER\nHgS3CacheSecretAccessKey wrongoutersecret\n"
    loc = hgs3cache_location("/repo", small_repo, bucket=store.bucket, endpoint=store.endpoint,
                             region=store.region, CredentialsFile=creds, Header=True)
    httpd = httpd_factory(repos={"repo": small_repo}, module=True, extra_conf=outer + loc,
                          log_level=LOG_LEVEL)

    _clone(hg, httpd, "/repo", tmp_dir / "c1", small_repo, "miss")
    (obj,) = wait_objects(store)
    assert obj == PREFIX + key_lines(httpd, "getbundle")[0]["key"]
    _clone(hg, httpd, "/repo", tmp_dir / "c2", small_repo, "hit-redirect")


# --- a literal '%' in the path ------------------------------------------------------------
def test_percent_in_path_not_decoded_twice(hg, httpd_factory, store, small_repo_template,
                                           tmp_dir):
    """httpd decodes the path once, as hgweb sees it: /hg/a%2541 is the
    repository "a%41". Decoding it again would key it as "aA", and a later
    request for /hg/aA would get a%41's bundle."""
    root = tmp_dir / "root"
    plain = copy_repo(small_repo_template, root / "aA")
    percent = _bookmarked_copy(hg, small_repo_template, root / "a%41", "percent-only")
    conf = store.location_conf(None, location="/hg", RepositoryRoot=root, Header=True)
    httpd = httpd_factory(repos={"hg/aA": plain, "hg/a%41": percent}, module=True,
                          extra_conf=conf, log_level=LOG_LEVEL)
    headers = clone_headers(hg.heads(plain))
    assert hg.heads(plain) == hg.heads(percent)

    status, hdrs, pbody = httpd.get("/hg/a%2541?cmd=getbundle", headers=headers)
    assert status == 200 and hdrs.get("x-hgs3cache", "").startswith("bypass:"), (status, hdrs)
    assert b"percent-only" in pbody
    status, hdrs, body = httpd.get("/hg/aA?cmd=getbundle", headers=headers)
    assert status == 200 and hdrs.get("x-hgs3cache") == "miss", (status, hdrs)
    assert b"percent-only" not in body
    (obj,) = wait_objects(store)
    assert [k["repo"] for k in key_lines(httpd, "getbundle")] == [os.path.realpath(plain)]
    assert store.get(obj)[0] == body
