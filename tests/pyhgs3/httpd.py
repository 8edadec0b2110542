"""A fresh Apache httpd per configuration, serving hgweb (mod_wsgi daemon or CGI).

Each HttpdInstance has its own directory with httpd.conf, logs/, run/, the
hgweb entry point and hgweb.config, and listens on its own loopback port. It is
started with `apache2 -f httpd.conf -DFOREGROUND` and stopped with SIGTERM
(never a graceful restart: a new configuration gets a new instance).
"""
import http.client
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import env as E
from .logs import AccessLog, ErrorLog

# Debian modules loaded by every instance (log_config, logio, unixd are built in).
BASE_MODULES = ("mpm_event", "authz_core", "authz_host", "authn_core", "authn_file",
                "auth_basic", "authz_user", "mime", "alias", "env", "headers",
                "setenvif", "status", "socache_shmcb")
MODE_MODULES = {"wsgi": ("wsgi",), "cgi": ("cgid",)}

DEFAULT_MPM_CONF = """\
StartServers 1
ServerLimit 1
ThreadLimit 16
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 16
MaxConnectionsPerChild 0
"""


def _quote(value):
    value = str(value)
    if value and all(c.isalnum() or c in "-_./:+=@,%" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def hgs3cache_location(location, repo, *, bucket=None, endpoint=None, region=None,
                       access_key=None, secret_key=None, enabled=True, **directives):
    """A <Location> block configuring mod_hgs3cache.

    directives are further HgS3Cache<Name> directives, e.g. HitMode="stream",
    MinSize=0, Timeout=(500, 1000) -> "HgS3CacheTimeout 500 1000". A value of
    None leaves the directive out."""
    lines = [f"<Location {location}>", f"    HgS3Cache {'on' if enabled else 'off'}"]
    base = [("Bucket", bucket), ("Endpoint", endpoint), ("Region", region),
            ("AccessKeyId", access_key), ("SecretAccessKey", secret_key),
            ("Repository", repo)]
    for name, value in base + list(directives.items()):
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = " ".join(_quote(v) for v in value)
        elif isinstance(value, bool):
            value = "on" if value else "off"
        else:
            value = _quote(value)
        lines.append(f"    HgS3Cache{name} {value}")
    lines.append("</Location>")
    return "\n".join(lines) + "\n"


class HttpdError(RuntimeError):
    pass


class HttpdInstance:
    """One Apache httpd with hgweb.

    repos:      {name: repo_dir}, each served at /<name> (default name "repo").
    mode:       "wsgi" (mod_wsgi daemon mode) or "cgi" (mod_cgid + hgweb.cgi).
    module:     load the built mod_hgs3cache (env.module_path()).
    extra_conf: text appended to httpd.conf (e.g. hgs3cache_location(...)).
    hgweb_conf: text appended to hgweb.config (e.g. "[experimental]\\nhttppostargs = true").
    env:        extra environment variables for httpd (e.g. AWS_ACCESS_KEY_ID).
    default_spool_dir: leave HgS3CacheSpoolDir unset, so the module's default
                is used; otherwise each instance spools in its own run/.
    count_hgweb: hgweb itself records each getbundle it answers (a line with
                its pid in run/hgweb_getbundles; see hgweb_getbundles()).
    """

    def __init__(self, workdir, *, repos=None, mode="wsgi", module=False, extra_conf="",
                 hgweb_conf="", log_level="info", env=None, modules=(), mpm_conf=None,
                 hgrc=None, port=None, name="httpd", default_spool_dir=False,
                 count_hgweb=False):
        if mode not in MODE_MODULES:
            raise ValueError(f"mode must be wsgi or cgi, not {mode!r}")
        self.dir = Path(workdir)
        self.name = name
        self.repos = dict(repos or {})
        self.mode = mode
        self.module = module
        self.extra_conf = extra_conf
        self.hgweb_conf = hgweb_conf
        self.log_level = log_level
        self.extra_env = dict(env or {})
        self.extra_modules = tuple(modules)
        self.mpm_conf = DEFAULT_MPM_CONF if mpm_conf is None else mpm_conf
        self.hgrc = hgrc
        self.default_spool_dir = default_spool_dir
        self.count_hgweb = count_hgweb
        self.hgweb_count_path = self.dir / "run" / "hgweb_getbundles"
        # while this file exists, a counted getbundle waits before hgweb runs
        self.hgweb_hold_path = self.dir / "run" / "hgweb_hold"
        # and if this one exists when it goes on, that getbundle fails (once)
        self.hgweb_fail_path = self.dir / "run" / "hgweb_fail"
        # a counted getbundle that starts while this one exists pauses after
        # its first non-empty block of body (head and block sent) until it
        # is removed
        self.hgweb_pause_path = self.dir / "run" / "hgweb_pause"
        self.port = port or E.free_port()
        self.url = f"http://{E.LOOPBACK}:{self.port}"
        self.conf_path = self.dir / "httpd.conf"
        self.logs_dir = self.dir / "logs"
        self.run_dir = self.dir / "run"
        # Unix socket paths are limited to 107 bytes: mod_wsgi's and cgid's
        # sockets live in a short directory of their own.
        self.sock_dir = Path(tempfile.mkdtemp(prefix="hgs3s", dir="/tmp"))
        self.error_log = ErrorLog(self.logs_dir / "error_log")
        self.access_log = AccessLog(self.logs_dir / "access_log")
        self.stderr_path = self.logs_dir / "stderr"
        self.proc = None
        self.problems = []        # shutdown trouble, reported by the log check
        self._stderr = None

    # --- configuration ---------------------------------------------------
    def repo_url(self, name="repo"):
        return f"{self.url}/{name}"

    def allow_log(self, *patterns):
        """Error log lines matching these regexes do not fail the test."""
        self.error_log.allow(*patterns)

    def _module_lines(self):
        names = list(BASE_MODULES) + list(MODE_MODULES[self.mode]) + list(self.extra_modules)
        seen, lines = set(), []
        for n in names:
            if n in seen:
                continue
            seen.add(n)
            lines.append(f"LoadModule {n}_module {E.APACHE_MODULES}/mod_{n}.so")
        if self.module:
            path = E.module_path()
            if not path.exists():
                raise HttpdError(f"module not built: {path} does not exist "
                                 "(build it, or set HGS3_MODULE)")
            lines.append(f"LoadModule hgs3cache_module {path}")
            if not self.default_spool_dir:
                # each instance its own spool and lock files
                lines.append(f'HgS3CacheSpoolDir "{self.run_dir}"')
        return "\n".join(lines)

    def _write_hgweb(self):
        hgrc = self.hgrc or (self.dir / "hgrc")
        if not self.hgrc:
            hgrc.write_text("[ui]\nreport_untrusted = off\n[trusted]\nusers = *\ngroups = *\n")
        paths = "\n".join(f"{name} = {path}" for name, path in self.repos.items())
        (self.dir / "hgweb.config").write_text(
            "[paths]\n" + paths + "\n\n"
            "[web]\nallow-pull = true\nallow-push = *\npush_ssl = false\n"
            "encoding = utf-8\n\n" + self.hgweb_conf + "\n")
        prologue = (
            "import os\n"
            f"os.environ['HGRCPATH'] = {str(hgrc)!r}\n"
            "os.environ['HGENCODING'] = 'utf-8'\n"
            "os.environ.pop('HGPLAIN', None)\n")
        config = repr(str(self.dir / "hgweb.config").encode())
        wrap = ""
        if self.count_hgweb:
            # counted in hgweb, not by the module: what hgweb really generated
            wrap = (
                "_hgweb_app = application\n"
                "def application(environ, start_response):\n"
                "    if 'cmd=getbundle' in environ.get('QUERY_STRING', ''):\n"
                f"        with open({str(self.hgweb_count_path)!r}, 'a') as f:\n"
                "            f.write('%d\\n' % os.getpid())\n"
                "        import time\n"
                f"        while os.path.exists({str(self.hgweb_hold_path)!r}):\n"
                "            time.sleep(0.05)\n"
                f"        if os.path.exists({str(self.hgweb_fail_path)!r}):\n"
                f"            os.unlink({str(self.hgweb_fail_path)!r})\n"
                "            raise RuntimeError('hgweb failed (test fault)')\n"
                f"        if os.path.exists({str(self.hgweb_pause_path)!r}):\n"
                "            return _paused(_hgweb_app(environ, start_response))\n"
                "    return _hgweb_app(environ, start_response)\n"
                "def _paused(result):\n"
                "    import time\n"
                "    try:\n"
                "        paused = False\n"
                "        for block in result:\n"
                "            yield block\n"
                "            if block and not paused:\n"
                "                paused = True\n"
                f"                while os.path.exists({str(self.hgweb_pause_path)!r}):\n"
                "                    time.sleep(0.05)\n"
                "    finally:\n"
                "        if hasattr(result, 'close'):\n"
                "            result.close()\n")
        if self.mode == "wsgi":
            script = self.dir / "hgweb.wsgi"
            script.write_text(
                "# hgweb under mod_wsgi (daemon mode)\n" + prologue +
                "from mercurial.hgweb import hgweb\n"
                f"application = hgweb({config})\n" + wrap)
            script.chmod(0o644)
        else:
            script = self.dir / "hgweb.cgi"
            script.write_text(
                f"#!{E.PYTHON}\n# hgweb as a CGI script\n" + prologue +
                "from mercurial import demandimport\n"
                "demandimport.enable()\n"
                "from mercurial.hgweb import hgweb, wsgicgi\n"
                f"application = hgweb({config})\n" + wrap +
                "wsgicgi.launch(application)\n")
            script.chmod(0o755)
        return script

    def _app_conf(self, script):
        if self.mode == "wsgi":
            return f"""\
WSGISocketPrefix "{self.sock_dir}/wsgi"
WSGIDaemonProcess hgweb processes=1 threads=4 home={self.dir}
WSGIProcessGroup hgweb
WSGIApplicationGroup %{{GLOBAL}}
WSGIScriptAlias / "{script}"
"""
        return f"""\
ScriptSock "{self.sock_dir}/cgid.sock"
ScriptAlias / "{script}/"
"""

    def write_config(self):
        for d in (self.dir, self.logs_dir, self.run_dir, self.run_dir / "mutex"):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        # Children (nobody, when root) spool and keep sockets in run/.
        E.chown_to_server(self.run_dir)
        os.chmod(self.sock_dir, 0o755)
        E.chown_to_server(self.sock_dir)
        script = self._write_hgweb()
        user = ""
        if E.running_as_root():
            user = f"User {E.SERVER_USER}\nGroup {E.SERVER_GROUP}\n"
        text = f"""\
# httpd.conf written by the mod_hgs3cache test harness
ServerRoot "{self.dir}"
DefaultRuntimeDir "{self.run_dir}"
PidFile "{self.run_dir}/httpd.pid"
Mutex file:{self.run_dir}/mutex default
ServerName {E.LOOPBACK}
Listen {E.LOOPBACK}:{self.port}
{user}
{self._module_lines()}

{self.mpm_conf}
Timeout 30
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5
TypesConfig /etc/mime.types

ErrorLog "{self.logs_dir}/error_log"
LogLevel {self.log_level}
LogFormat "{AccessLog.FORMAT}" hgs3
CustomLog "{self.logs_dir}/access_log" hgs3

<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{self.dir}">
    AllowOverride None
    Require all granted
</Directory>

{self._app_conf(script)}
ExtendedStatus On
<Location /server-status>
    SetHandler server-status
    Require ip 127.0.0.1
</Location>

{self.extra_conf}
"""
        self.conf_path.write_text(text)
        E.make_world_readable(self.dir)
        return self.conf_path

    def _env(self):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C",
               "HOME": str(self.dir)}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        # A sanitizer build of the module needs its runtime preloaded into httpd.
        if os.environ.get("HGS3_HTTPD_PRELOAD"):
            env["LD_PRELOAD"] = os.environ["HGS3_HTTPD_PRELOAD"]
        env.update(self.extra_env)
        return env

    # --- life cycle ------------------------------------------------------
    def configtest(self):
        """Run `apache2 -t` on the config: (rc, output)."""
        self.write_config()
        p = subprocess.run([E.APACHE2, "-t", "-f", str(self.conf_path)], env=self._env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def start(self, timeout=20):
        if self.proc is not None:
            raise HttpdError("already started")
        self.write_config()
        self.error_log.mark()
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [E.APACHE2, "-f", str(self.conf_path), "-DFOREGROUND"], env=self._env(),
            stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                self._close_stderr()
                raise HttpdError(f"httpd exited at start (rc={rc}):\n{self._tail()}")
            if self._answers():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise HttpdError(f"httpd did not answer in {timeout}s:\n{self._tail()}")
            time.sleep(0.05)

    def _answers(self):
        try:
            status, _, _ = self.get("/server-status?auto", timeout=2)
            return status == 200
        except OSError:
            return False

    def _tail(self, n=4000):
        out = []
        for p in (self.stderr_path, self.error_log.path):
            try:
                out.append(f"--- {p}\n" + p.read_text(errors="replace")[-n:])
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def _close_stderr(self):
        if self._stderr:
            self._stderr.close()
            self._stderr = None

    def _group_alive(self, pgid):
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def stop(self, timeout=15):
        """SIGTERM, wait, then SIGKILL whatever is left of the process group
        (children, the mod_wsgi daemon, the cgid daemon). Idempotent."""
        proc, self.proc = self.proc, None
        if proc is None:
            shutil.rmtree(self.sock_dir, ignore_errors=True)
            return
        pgid = proc.pid
        t0 = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.problems.append(f"httpd parent did not exit {timeout}s after SIGTERM")
                os.killpg(pgid, signal.SIGKILL)
                proc.wait(timeout=10)
        # The parent has reaped its children; anything left is a straggler.
        try:
            E.wait_until(lambda: not self._group_alive(pgid), 3, what="httpd stragglers")
        except TimeoutError:
            self.problems.append("httpd processes outlived the parent; killed")
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.stop_seconds = time.monotonic() - t0
        self._close_stderr()
        shutil.rmtree(self.sock_dir, ignore_errors=True)

    def hgweb_getbundles(self):
        """How many getbundle requests hgweb itself answered (count_hgweb)."""
        try:
            return len(self.hgweb_count_path.read_text().splitlines())
        except FileNotFoundError:
            return 0

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # --- log check -------------------------------------------------------
    def unexpected_log_lines(self):
        """Unexpected error_log lines since the last check, plus shutdown problems."""
        lines = self.error_log.unexpected()
        problems, self.problems = self.problems, []
        return problems + lines

    # --- small HTTP helpers ----------------------------------------------
    def get(self, path, headers=None, method="GET", body=None, timeout=30):
        """(status, headers dict (lower-case names), body bytes) of one request."""
        conn = http.client.HTTPConnection(E.LOOPBACK, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def server_status(self):
        """mod_status' ?auto output as a dict."""
        status, _, body = self.get("/server-status?auto")
        if status != 200:
            raise HttpdError(f"server-status answered {status}")
        out = {}
        for line in body.decode("utf-8", "replace").splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
        return out


class HttpdFactory:
    """Creates the HttpdInstances of one test and stops them all at its end.

    factory(**kw) takes HttpdInstance's keyword arguments plus start=True;
    factory.allow_log(*regex) applies to every instance of the test."""

    def __init__(self, mkdir, name="httpd"):
        self._mkdir = mkdir           # name -> new directory
        self.name = name
        self.instances = []
        self._allowed = []

    def __call__(self, start=True, **kw):
        inst = HttpdInstance(self._mkdir(self.name), **kw)
        inst.allow_log(*self._allowed)
        self.instances.append(inst)
        if start:
            inst.start()
        return inst

    def allow_log(self, *patterns):
        self._allowed.extend(patterns)
        for inst in self.instances:
            inst.allow_log(*patterns)

    def stop_all(self):
        errors = []
        for inst in self.instances:
            try:
                inst.stop()
            except Exception as e:            # keep stopping the others
                errors.append(f"{inst.dir}: stop failed: {e!r}")
        return errors

    def unexpected_log_lines(self):
        """[(instance, [line, ...]), ...] for instances with unexpected lines."""
        out = []
        for inst in self.instances:
            lines = inst.unexpected_log_lines()
            if lines:
                out.append((inst, lines))
        return out

    @staticmethod
    def format_problems(problems):
        parts = []
        for inst, lines in problems:
            parts.append(f"unexpected lines in {inst.error_log.path}:\n  " + "\n  ".join(lines))
        return "\n".join(parts)
