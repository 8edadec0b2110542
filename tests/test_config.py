"""mod_hgs3cache's configuration as `apache2 -t` sees it: the module loads,
a full valid configuration passes, every bad directive value is refused with
the directive's name in the message, the whole-configuration checks (a scope
with `HgS3Cache on` needs a bucket, a repository and credentials) fail the
config test, merge rules hold, and no secret is ever printed.

Nothing here starts httpd: each case writes a fresh configuration and runs
the config test on it (HttpdInstance.configtest)."""
import subprocess

import pytest

from pyhgs3 import env as E

BUCKET = "hgs3-config-test"
ENDPOINT = "http://127.0.0.1:9"


def _location(repo, location="/repo", on=True, creds=True, bucket=BUCKET, extra=""):
    """A <Location> that passes on its own; `extra` lines are added last."""
    lines = [f"<Location {location}>"]
    if on is not None:
        lines.append(f"    HgS3Cache {'on' if on else 'off'}")
    if bucket:
        lines.append(f"    HgS3CacheBucket {bucket}")
    lines.append(f"    HgS3CacheEndpoint {ENDPOINT}")
    if creds:
        lines += ["    HgS3CacheAccessKeyId AKIDCONFIGTEST",
                  "    HgS3CacheSecretAccessKey configtestsecret"]
    if repo:
        lines.append(f"    HgS3CacheRepository {repo}")
    lines += ["    " + ln for ln in extra.splitlines() if ln.strip()]
    lines.append("</Location>")
    return "\n".join(lines) + "\n"


@pytest.fixture
def configtest(httpd_factory, small_repo_template):
    """configtest(extra_conf, env=None) -> (rc, output) of `apache2 -t` on a
    config that loads the module and serves the small repository at /repo."""
    def run(extra_conf, env=None):
        inst = httpd_factory(repos={"repo": small_repo_template}, module=True,
                             extra_conf=extra_conf, env=env, start=False)
        return inst.configtest()
    return run


def _ok(rc_out):
    rc, out = rc_out
    assert rc == 0 and "Syntax OK" in out, f"configtest failed (rc={rc}):\n{out}"


def _refused(rc_out, *fragments):
    rc, out = rc_out
    assert rc != 0, f"configtest passed, expected a refusal:\n{out}"
    assert "Syntax OK" not in out, out
    for f in fragments:
        assert f in out, f"{f!r} not in the configtest output:\n{out}"
    return out


# --- the module loads; a full configuration passes -------------------------------
def test_module_loads(httpd_factory, small_repo_template):
    inst = httpd_factory(repos={"repo": small_repo_template}, module=True, start=False)
    inst.write_config()
    p = subprocess.run([E.APACHE2, "-t", "-D", "DUMP_MODULES", "-f", str(inst.conf_path)],
                       env=inst._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert "hgs3cache_module (shared)" in out, out

    # The same config without the module does not list it (the check can fail).
    plain = httpd_factory(repos={"repo": small_repo_template}, module=False, start=False)
    plain.write_config()
    p = subprocess.run([E.APACHE2, "-t", "-D", "DUMP_MODULES", "-f", str(plain.conf_path)],
                       env=plain._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    assert p.returncode == 0
    assert b"hgs3cache_module" not in p.stdout


def test_directives_unknown_without_module(httpd_factory, small_repo_template):
    inst = httpd_factory(repos={"repo": small_repo_template}, module=False, start=False,
                         extra_conf=_location(small_repo_template))
    _refused(inst.configtest(), "HgS3Cache")


def test_full_valid_config(configtest, small_repo_template, tmp_dir):
    creds = tmp_dir / "credentials"
    creds.write_text("[default]\naws_access_key_id = AKIDFILE\n"
                     "aws_secret_access_key = filesecret\n"
                     "[other]\naws_access_key_id = AKIDOTHER\n"
                     "aws_secret_access_key = othersecret\n")
    spool = tmp_dir / "spool"
    spool.mkdir()
    conf = f"""\
HgS3CacheUploadWorkers 4
HgS3CacheUploadQueue 32
HgS3CachePresence shmcb 120
HgS3CacheHeader on

<Location /repo>
    HgS3Cache on
    HgS3CacheBucket {BUCKET}
    HgS3CacheRegion eu-west-1
    HgS3CacheEndpoint https://s3.eu-west-1.amazonaws.com
    HgS3CacheAddressing virtual
    HgS3CachePublicEndpoint https://cdn.example.com:8443/s3
    HgS3CacheAccessKeyId AKIDEXAMPLE
    HgS3CacheSecretAccessKey wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
    HgS3CacheSessionToken FQoGZXIvYXdzEXAMPLETOKEN==
    HgS3CacheKeyPrefix hg/cache/v1/
    HgS3CacheKeySalt "any salt, even with spaces"
    HgS3CacheCommands getbundle capabilities
    HgS3CacheRepository {small_repo_template}
    HgS3CacheMinSize 64K
    HgS3CacheMaxSize 4G
    HgS3CacheMemory 1M
    HgS3CacheSpoolDir {spool}
    HgS3CacheMultipartThreshold 64M
    HgS3CacheInlineMax 32K
    HgS3CacheURLExpiry 604800
    HgS3CacheMaxAge 86400
    HgS3CacheHitMode redirect
    HgS3CacheShareAcrossUsers on
    HgS3CacheTimeout 500 1500
    HgS3CacheHeader off
    HgS3CacheCollapse on
    HgS3CacheCollapseTimeout 30
</Location>

<Location /collection>
    HgS3Cache on
    HgS3CacheBucket other.bucket-2
    HgS3CacheEndpoint http://127.0.0.1:9000
    HgS3CacheAddressing path
    HgS3CacheCredentialsFile {creds} other
    HgS3CacheRepositoryRoot {small_repo_template.parent}
    HgS3CacheHitMode stream
    HgS3CacheMinSize 0
</Location>
"""
    _ok(configtest(conf))


# --- bad directive values ----------------------------------------------------------
# (directive, bad value, a good value for the same place, text the refusal shows)
# Values are written into the config as is.
DIR_CASES = [
    ("HgS3Cache", "maybe", "on", None),
    ("HgS3CacheStore", "gcs:bucket", "s3", "use s3 or file:DIR"),
    ("HgS3CacheStore", "file:relative/dir", "s3", "must be an absolute path"),
    ("HgS3CacheStore", "file:{plain_dir}/missing", "s3", "is not an existing directory"),
    ("HgS3CacheStore", "file:{creds_file}", "s3", "is not an existing directory"),
    ("HgS3CacheBucket", "Bad_Name", "good-name", None),
    ("HgS3CacheBucket", "ab", "abc", None),
    ("HgS3CacheRegion", '"us east"', "us-east-2", None),
    ("HgS3CacheEndpoint", "ftp://x", "http://x", None),
    ("HgS3CacheEndpoint", "not-a-url", "https://s3.example.com", None),
    ("HgS3CacheEndpoint", "http://user:pw@host", "http://host:9000", None),
    ("HgS3CacheEndpoint", "http://host/?a=b", "http://host/base", None),
    ("HgS3CacheAddressing", "diagonal", "path", None),
    ("HgS3CachePublicEndpoint", "bad", "https://public.example.com", None),
    ("HgS3CacheMinSize", "12Q", "12K", None),
    ("HgS3CacheMinSize", "-1", "0", None),
    ("HgS3CacheMaxSize", "0", "64K", None),
    ("HgS3CacheMaxSize", "6T", "5T", None),
    ("HgS3CacheMemory", "x", "2M", None),
    ("HgS3CacheMultipartThreshold", "1M", "5M", None),
    ("HgS3CacheInlineMax", "2M", "1M", None),
    ("HgS3CacheInlineMax", "-1", "0", None),
    ("HgS3CacheInlineMax", "64Q", "64K", None),
    ("HgS3CacheURLExpiry", "0", "1", None),
    ("HgS3CacheURLExpiry", "604801", "604800", None),
    ("HgS3CacheURLExpiry", "5m", "300", None),
    ("HgS3CacheMaxAge", "-5", "0", None),
    ("HgS3CacheHitMode", "fast", "stream", None),
    ("HgS3CacheTimeout", "0 10", "1 10", None),
    ("HgS3CacheTimeout", "2000 1000", "1000 1000", None),
    ("HgS3CacheTimeout", "1000", "1000 2000", None),
    ("HgS3CacheRepository", "relative/path", "{repo}", None),
    ("HgS3CacheRepository", "{plain_dir}", "{repo}", "not a Mercurial repository"),
    ("HgS3CacheRepositoryRoot", "/nonexistent", "{repo_parent}", None),
    ("HgS3CacheRepositoryRoot", "relative", "{repo_parent}", None),
    ("HgS3CacheCredentialsFile", "/nonexistent", "{creds_file}", None),
    ("HgS3CacheCredentialsFile", '{creds_file} "bad profile"', "{creds_file} prod", None),
    ("HgS3CacheCommands", '"bad cmd!"', "getbundle batch", None),
    ("HgS3CacheShareAcrossUsers", "maybe", "off", None),
    ("HgS3CacheHeader", "2", "on", None),
    ("HgS3CacheCollapse", "sometimes", "off", None),
    ("HgS3CacheCollapseTimeout", "0", "1", None),
    ("HgS3CacheCollapseTimeout", "86401", "86400", None),
    ("HgS3CacheCollapseTimeout", "1m", "60", None),
    ("HgS3CacheKeyPrefix", "/leading", "leading/", None),
    ("HgS3CacheSpoolDir", "/nonexistent", "{plain_dir}", None),
    ("HgS3CacheAccessKeyId", '"with space"', "AKIDOTHER", None),
]

# Server-only directives, at server level.
SRV_CASES = [
    ("HgS3CacheUploadWorkers", "0", "1", None),
    ("HgS3CacheUploadWorkers", "65", "64", None),
    ("HgS3CacheUploadQueue", "abc", "16", None),
    ("HgS3CacheUploadQueue", "0", "1", None),
    ("HgS3CachePresence", "shmcb 0", "shmcb 1", None),
    ("HgS3CachePresence", "shmcb abc", "shmcb", None),
    ("HgS3CachePresence", '"bad provider" 60', "none", None),
]


def _case_id(case):
    return f"{case[0]}={case[1]}"


@pytest.fixture
def values(small_repo_template, tmp_dir):
    """Placeholders the cases may use."""
    plain = tmp_dir / "plain-dir"
    plain.mkdir()
    creds = tmp_dir / "credentials"
    creds.write_text("[default]\naws_access_key_id = A\naws_secret_access_key = B\n"
                     "[prod]\naws_access_key_id = C\naws_secret_access_key = D\n")
    return {"repo": small_repo_template, "repo_parent": small_repo_template.parent,
            "plain_dir": plain, "creds_file": creds}


@pytest.mark.parametrize("case", DIR_CASES, ids=_case_id)
def test_bad_value_in_location(configtest, small_repo_template, values, case):
    directive, bad, good, text = case
    good, bad = good.format(**values), bad.format(**values)
    # The same place with a good value passes: the refusal is the value's.
    _ok(configtest(_location(small_repo_template, extra=f"{directive} {good}")))
    out = _refused(configtest(_location(small_repo_template, extra=f"{directive} {bad}")),
                   directive, *([text] if text else []))
    assert "AH00526" in out, out          # a syntax error, reported at its line


@pytest.mark.parametrize("case", SRV_CASES, ids=_case_id)
def test_bad_value_server_level(configtest, small_repo_template, case):
    directive, bad, good, text = case
    _ok(configtest(f"{directive} {good}\n" + _location(small_repo_template)))
    _refused(configtest(f"{directive} {bad}\n" + _location(small_repo_template)),
             directive, *([text] if text else []))


@pytest.mark.parametrize("directive,value", [
    ("HgS3CacheUploadWorkers", "2"),
    ("HgS3CacheUploadQueue", "16"),
    ("HgS3CachePresence", "shmcb 60"),
])
@pytest.mark.parametrize("where", ["Location", "Directory", "VirtualHost"])
def test_server_only_directive_refused_in_section(configtest, small_repo_template, tmp_dir,
                                                   directive, value, where):
    if where == "Location":
        conf = _location(small_repo_template, extra=f"{directive} {value}")
    elif where == "Directory":
        conf = f"<Directory {tmp_dir}>\n    {directive} {value}\n</Directory>\n"
    else:
        conf = (f"<VirtualHost 127.0.0.1:{E.free_port()}>\n    ServerName vh.invalid\n"
                f"    {directive} {value}\n</VirtualHost>\n")
    _ok(configtest(f"{directive} {value}\n"))          # fine at server level
    _refused(configtest(conf), directive)


def test_unknown_presence_provider_refused(configtest, small_repo_template):
    """A provider no loaded mod_socache module offers is a bad value: the
    config test must refuse it, not only the start."""
    _ok(configtest("HgS3CachePresence shmcb 60\n" + _location(small_repo_template)))
    _refused(configtest("HgS3CachePresence nosuchprovider 60\n" + _location(small_repo_template)),
             "HgS3CachePresence", "nosuchprovider")


# --- whole-configuration checks ----------------------------------------------------
def test_on_without_bucket(configtest, small_repo_template):
    _refused(configtest(_location(small_repo_template, bucket=None)),
             "HgS3CacheBucket", "/repo")


def _file_store_location(repo, store_dir):
    return (f"<Location /repo>\n    HgS3Cache on\n    HgS3CacheStore file:{store_dir}\n"
            f"    HgS3CacheRepository {repo}\n</Location>\n")


def test_file_store_needs_no_bucket_nor_credentials(configtest, small_repo_template, tmp_dir):
    """With HgS3CacheStore file:DIR the S3 directives are not needed."""
    store_dir = tmp_dir / "filestore"
    store_dir.mkdir()
    E.chown_to_server(store_dir)
    _ok(configtest(_file_store_location(small_repo_template, store_dir)))
    # s3 again in an inner scope needs its bucket
    _refused(configtest(f"HgS3CacheStore file:{store_dir}\n" + _file_store_location(
        small_repo_template, store_dir).replace(f"file:{store_dir}", "s3")), "HgS3CacheBucket")


def test_file_store_key_prefix_must_name_files(configtest, small_repo_template, tmp_dir):
    store_dir = tmp_dir / "filestore"
    store_dir.mkdir()
    E.chown_to_server(store_dir)
    conf = _file_store_location(small_repo_template, store_dir)
    _ok(configtest(conf.replace("</Location>", "    HgS3CacheKeyPrefix team/hg-\n</Location>")))
    _refused(configtest(conf.replace("</Location>", "    HgS3CacheKeyPrefix ../up/\n</Location>")),
             "HgS3CacheKeyPrefix", "../up/")


def test_file_store_not_writable_refused(configtest, small_repo_template, tmp_dir):
    """A directory httpd's user cannot write fails the config test."""
    store_dir = tmp_dir / "readonly-store"
    store_dir.mkdir()
    store_dir.chmod(0o555)
    _refused(configtest(_file_store_location(small_repo_template, store_dir)),
             "HgS3CacheStore", str(store_dir), "not writable")


def test_on_without_repository(configtest):
    _refused(configtest(_location(None)), "HgS3CacheRepository", "/repo")


def test_on_without_credentials(configtest, small_repo_template):
    out = _refused(configtest(_location(small_repo_template, creds=False)), "credentials", "/repo")
    assert "AWS_ACCESS_KEY_ID" in out and "HgS3CacheCredentialsFile" in out, out


def test_on_without_credentials_half_env(configtest, small_repo_template):
    """Only the key id in the environment is not enough."""
    _refused(configtest(_location(small_repo_template, creds=False),
                        env={"AWS_ACCESS_KEY_ID": "AKIDENV"}), "credentials")
    _refused(configtest(_location(small_repo_template, creds=False),
                        env={"AWS_SECRET_ACCESS_KEY": "envsecret"}), "credentials")


def test_credentials_from_environment(configtest, small_repo_template):
    _ok(configtest(_location(small_repo_template, creds=False),
                   env={"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "envsecret"}))


def test_credentials_file_is_enough(configtest, small_repo_template, values):
    _ok(configtest(_location(small_repo_template, creds=False,
                             extra=f"HgS3CacheCredentialsFile {values['creds_file']}")))


def test_key_id_without_secret(configtest, small_repo_template):
    conf = _location(small_repo_template, creds=False, extra="HgS3CacheAccessKeyId AKIDONLY")
    _refused(configtest(conf), "HgS3CacheAccessKeyId", "HgS3CacheSecretAccessKey")
    # ... even when the environment has a full pair.
    _refused(configtest(conf, env={"AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "B"}),
             "HgS3CacheAccessKeyId", "HgS3CacheSecretAccessKey")


def test_secret_without_key_id(configtest, small_repo_template):
    conf = _location(small_repo_template, creds=False,
                     extra="HgS3CacheSecretAccessKey secretonly")
    out = _refused(configtest(conf), "HgS3CacheAccessKeyId", "HgS3CacheSecretAccessKey")
    assert "secretonly" not in out


def test_session_token_without_keys(configtest, small_repo_template, values):
    conf = _location(small_repo_template, creds=False,
                     extra=f"HgS3CacheCredentialsFile {values['creds_file']}\n"
                           "HgS3CacheSessionToken tokenwithoutkeys")
    out = _refused(configtest(conf), "HgS3CacheSessionToken")
    assert "tokenwithoutkeys" not in out


def test_min_size_above_max_size(configtest, small_repo_template):
    _ok(configtest(_location(small_repo_template,
                             extra="HgS3CacheMinSize 1M\nHgS3CacheMaxSize 1M")))
    _refused(configtest(_location(small_repo_template,
                                  extra="HgS3CacheMinSize 2M\nHgS3CacheMaxSize 1M")),
             "HgS3CacheMinSize", "HgS3CacheMaxSize")


def test_dotted_bucket_virtual_https(configtest, small_repo_template):
    """A dotted bucket cannot be a TLS host name: virtual + https is refused,
    path addressing (or plain http) is fine."""
    def conf(endpoint, addressing):
        return f"""\
<Location /repo>
    HgS3Cache on
    HgS3CacheBucket my.dotted.bucket
    {"HgS3CacheEndpoint " + endpoint if endpoint else ""}
    {"HgS3CacheAddressing " + addressing if addressing else ""}
    HgS3CacheAccessKeyId AKID
    HgS3CacheSecretAccessKey secret
    HgS3CacheRepository {small_repo_template}
</Location>
"""
    _refused(configtest(conf(None, None)), "HgS3CacheBucket", "HgS3CacheAddressing")
    _refused(configtest(conf("https://s3.example.com", "virtual")), "HgS3CacheBucket")
    _ok(configtest(conf(None, "path")))
    _ok(configtest(conf("https://s3.example.com", None)))       # custom endpoint: path
    _ok(configtest(conf("http://s3.example.com", "virtual")))


def test_on_at_server_level_without_bucket(configtest, small_repo_template):
    _refused(configtest(f"HgS3Cache on\nHgS3CacheRepository {small_repo_template}\n"
                        "HgS3CacheAccessKeyId A\nHgS3CacheSecretAccessKey B\n"),
             "HgS3CacheBucket")


def test_on_in_directory_section_checked(configtest, small_repo_template):
    conf = (f"HgS3CacheRepository {small_repo_template}\n"
            f"<Directory {small_repo_template}>\n    HgS3Cache on\n</Directory>\n")
    _refused(configtest(conf), "HgS3CacheBucket", str(small_repo_template))


def test_on_in_virtual_host_checked(configtest, small_repo_template):
    vhost = (f"<VirtualHost 127.0.0.1:{E.free_port()}>\n    ServerName vh.invalid\n"
             "{body}</VirtualHost>\n")
    _refused(configtest(vhost.format(body=_location(small_repo_template, bucket=None))),
             "HgS3CacheBucket")
    _ok(configtest(vhost.format(body=_location(small_repo_template))))


def test_off_needs_nothing(configtest):
    _ok(configtest("<Location /repo>\n    HgS3Cache off\n</Location>\n"))
    _ok(configtest("<Location /repo>\n    HgS3CacheHitMode stream\n</Location>\n"))


# --- merge rules visible at configtest --------------------------------------------
def test_bucket_and_credentials_from_server_level(configtest, small_repo_template):
    server = (f"HgS3CacheBucket {BUCKET}\nHgS3CacheAccessKeyId A\n"
              "HgS3CacheSecretAccessKey B\n")
    loc = f"<Location /repo>\n    HgS3Cache on\n    HgS3CacheRepository {small_repo_template}\n" \
          "</Location>\n"
    _ok(configtest(server + loc))
    # Without the server-level bucket the same Location is refused.
    _refused(configtest("HgS3CacheAccessKeyId A\nHgS3CacheSecretAccessKey B\n" + loc),
             "HgS3CacheBucket")


def test_bucket_from_virtual_host_level(configtest, small_repo_template):
    conf = (f"<VirtualHost 127.0.0.1:{E.free_port()}>\n    ServerName vh.invalid\n"
            f"    HgS3CacheBucket {BUCKET}\n"
            f"    <Location /repo>\n        HgS3Cache on\n"
            f"        HgS3CacheRepository {small_repo_template}\n    </Location>\n"
            "</VirtualHost>\n")
    _ok(configtest(conf, env={"AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "B"}))


def test_virtual_host_inherits_main_server(configtest, small_repo_template):
    conf = (f"HgS3CacheBucket {BUCKET}\nHgS3CacheAccessKeyId A\nHgS3CacheSecretAccessKey B\n"
            f"<VirtualHost 127.0.0.1:{E.free_port()}>\n    ServerName vh.invalid\n"
            f"    <Location /repo>\n        HgS3Cache on\n"
            f"        HgS3CacheRepository {small_repo_template}\n    </Location>\n"
            "</VirtualHost>\n")
    _ok(configtest(conf))


def test_repository_from_server_level(configtest, small_repo_template):
    _ok(configtest(f"HgS3CacheRepository {small_repo_template}\n"
                   + _location(None)))


def test_location_off_overrides_server_on(configtest, small_repo_template):
    """Server level on and complete; a Location turning it off passes, and one
    that stays on inherits everything."""
    server = (f"HgS3Cache on\nHgS3CacheBucket {BUCKET}\nHgS3CacheAccessKeyId A\n"
              f"HgS3CacheSecretAccessKey B\nHgS3CacheRepository {small_repo_template}\n")
    _ok(configtest(server + "<Location /other>\n    HgS3Cache off\n</Location>\n"))
    _ok(configtest(server + "<Location /other>\n    HgS3CacheHitMode stream\n</Location>\n"))


def test_credentials_merge_as_one_unit(configtest, small_repo_template):
    """A Location naming its own key id does not inherit the outer secret."""
    server = "HgS3CacheAccessKeyId OUTERKEY\nHgS3CacheSecretAccessKey outersecret\n"
    loc = (f"<Location /repo>\n    HgS3Cache on\n    HgS3CacheBucket {BUCKET}\n"
           f"    HgS3CacheRepository {small_repo_template}\n"
           "    HgS3CacheAccessKeyId INNERKEY\n</Location>\n")
    out = _refused(configtest(server + loc), "HgS3CacheSecretAccessKey")
    assert "outersecret" not in out
    _ok(configtest(server + loc.replace("</Location>",
                                        "    HgS3CacheSecretAccessKey innersecret\n</Location>")))


def test_inner_repository_replaces_outer_root(configtest, small_repo_template):
    server = f"HgS3CacheRepositoryRoot {small_repo_template.parent}\n"
    _ok(configtest(server + _location(small_repo_template)))
    _ok(configtest(server + _location(None)))


# --- where a repository mapping may be set (SPEC "Scope") ---------------------------
# A mapping belongs to the URL path of the <Location> that sets it. Sections
# without a known URL base are refused, with what is nested in them.
NO_BASE = [
    ('<LocationMatch "^/r">', "</LocationMatch>", "<LocationMatch"),
    ('<Location ~ "^/r">', "</Location>", "<Location"),
    ("<Location /r*>", "</Location>", "<Location"),
    ("<Directory {dir}>", "</Directory>", "<Directory"),
    ('<DirectoryMatch "^/srv">', "</DirectoryMatch>", "<DirectoryMatch"),
    ("<Files hgweb.wsgi>", "</Files>", "<Files"),
    ('<FilesMatch "\\.wsgi$">', "</FilesMatch>", "<FilesMatch"),
    ('<Directory {dir}>\n<If "true">', "</If>\n</Directory>", "<Directory"),
    ('<LocationMatch "^/r">\n<If "true">', "</If>\n</LocationMatch>", "<LocationMatch"),
]


@pytest.mark.parametrize("directive", ["HgS3CacheRepository", "HgS3CacheRepositoryRoot"])
@pytest.mark.parametrize("section", NO_BASE, ids=lambda c: c[0].replace("\n", " "))
def test_mapping_needs_a_location(configtest, small_repo_template, tmp_dir, directive, section):
    open_, close, name = (x.format(dir=tmp_dir) for x in section)
    value = small_repo_template if directive == "HgS3CacheRepository" else \
        small_repo_template.parent
    out = _refused(configtest(f"{open_}\n    {directive} {value}\n{close}\n"), directive, name)
    assert "AH00526" in out, out          # a syntax error, at the directive's line
    # The same section may still turn the cache on for a mapping set elsewhere.
    _ok(configtest(f"{directive} {value}\n" + _location(None, location="/r").replace(
        "<Location /r>", open_.split("\n")[0]).replace("</Location>", close.split("\n")[-1])))


@pytest.mark.parametrize("conf", [
    "HgS3CacheRepositoryRoot {root}\n" + _location(None),                       # server
    "<Location /hg>\n<If \"true\">\nHgS3CacheRepository {repo}\n</If>\n</Location>\n",
    f"<VirtualHost 127.0.0.1:{E.free_port()}>\n    ServerName vh.invalid\n"
    "    HgS3CacheRepository {repo}\n</VirtualHost>\n",
    "<Location /hg/>\n    HgS3CacheRepositoryRoot {root}\n</Location>\n",
], ids=["server", "if-in-location", "virtual-host", "location-slash"])
def test_mapping_places_allowed(configtest, small_repo_template, conf):
    _ok(configtest(conf.format(repo=small_repo_template, root=small_repo_template.parent)))


# --- endpoint and addressing, by the S3 client's own rules ---------------------------
@pytest.mark.parametrize("endpoint,public,refused", [
    ("http://127.0.0.1:9000", None, "HgS3CacheEndpoint"),
    ("http://[::1]:9000", None, "HgS3CacheEndpoint"),
    ("https://s3.example.com", "http://127.0.0.1:9000", "HgS3CachePublicEndpoint"),
    ("http://127.0.0.1:9000", "https://cdn.example.com", "HgS3CacheEndpoint"),
])
def test_virtual_addressing_needs_host_names(configtest, small_repo_template, endpoint, public,
                                            refused):
    """Virtual-hosted addressing puts the bucket in the host name: an IP
    address endpoint (or public endpoint) cannot take it, and every lookup
    would fail. Path addressing takes the same endpoints."""
    extra = f"HgS3CacheEndpoint {endpoint}\n" + (
        f"HgS3CachePublicEndpoint {public}\n" if public else "")
    out = _refused(configtest(_location(small_repo_template,
                                        extra=extra + "HgS3CacheAddressing virtual")),
                   "HgS3CacheAddressing virtual", refused, "IP address")
    assert "/repo" in out, out
    _ok(configtest(_location(small_repo_template, extra=extra + "HgS3CacheAddressing path")))
    _ok(configtest(_location(small_repo_template, extra=extra)))     # custom endpoint: path


# --- no secret in the output -------------------------------------------------------
SECRET = "Zq9SecretValueNeverPrinted7x"
TOKEN = "Tk4SessionTokenNeverPrinted2w"


def _secret_absent(out):
    for s in (SECRET, TOKEN, SECRET[:12], SECRET[-12:], TOKEN[:12]):
        assert s not in out, f"secret text {s!r} printed:\n{out}"


def test_bad_secret_value_not_printed(configtest, small_repo_template):
    conf = _location(small_repo_template, creds=False,
                     extra=f'HgS3CacheAccessKeyId AKID\nHgS3CacheSecretAccessKey "{SECRET} x"')
    _secret_absent(_refused(configtest(conf), "HgS3CacheSecretAccessKey"))


def test_bad_session_token_not_printed(configtest, small_repo_template):
    conf = _location(small_repo_template, extra=f'HgS3CacheSessionToken "{TOKEN} x"')
    _secret_absent(_refused(configtest(conf), "HgS3CacheSessionToken"))


def test_endpoint_password_not_printed(configtest, small_repo_template):
    conf = _location(small_repo_template, extra="HgS3CacheEndpoint http://u:Pw5NotPrinted@host")
    out = _refused(configtest(conf), "HgS3CacheEndpoint")
    assert "Pw5NotPrinted" not in out, out


@pytest.mark.parametrize("error", [
    "HgS3CacheHitMode fast",                 # a directive error after the secret
    "HgS3CacheBucket Bad_Name",
    None,                                    # a whole-config error: no bucket
], ids=["directive-error", "bucket-error", "whole-config-error"])
def test_secret_never_printed(configtest, small_repo_template, error):
    """A secret and a token set, another error elsewhere, LogLevel trace8:
    neither is printed."""
    creds = (f"HgS3CacheAccessKeyId AKIDVISIBLE\nHgS3CacheSecretAccessKey {SECRET}\n"
             f"HgS3CacheSessionToken {TOKEN}\n")
    good = "LogLevel trace8\n" + _location(small_repo_template, creds=False, extra=creds)
    _ok(configtest(good))
    if error is None:
        bad = "LogLevel trace8\n" + _location(small_repo_template, creds=False, bucket=None,
                                             extra=creds)
    else:
        bad = "LogLevel trace8\n" + _location(small_repo_template, creds=False,
                                             extra=creds + error)
    _secret_absent(_refused(configtest(bad)))
