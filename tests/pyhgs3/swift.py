"""OpenStack Swift with the s3api middleware, run on loopback for the tests.

A real distributed object store that checks SigV4 like AWS does: the header
signature, presigned URLs, the payload hash (400 BadDigest) and multipart
uploads (ETags ending in "-N").

Layout under the work directory:

    etc/      swift.conf, rings, one config per server (swift_dir)
    srv/d1/   the single device (mount_check = false; needs xattrs)
    cache/    recon cache
    log/      <server>.stderr (start-up errors), swift.log (all Swift logs)
    run/      the small launcher script

Processes, each in its own session/process group so stop() can kill it all:
memcached (tempauth keeps its tokens there), a UDP syslog collector that
writes swift.log, and the account, container, object and proxy servers with
workers = 0 (no forked workers: one process each).

Nothing is taken from /etc/swift, and it need not exist.  Swift 2.30 reads
the hash prefix/suffix and the storage policies from a hard-coded
swift.common.utils.SWIFT_CONF_FILE (/etc/swift/swift.conf); the servers'
`swift_dir` option only moves the rings and the other files.  The supported
way to move swift.conf is swift.common.utils.set_swift_dir() (what
swift-recon uses for its --swiftdir option), so each server is started
through a tiny launcher that calls it before importing the server code and
then runs run_wsgi() exactly like /usr/bin/swift-*-server does.  No
environment variable exists for this in 2.30.  (Importing swift.common.utils
still opens /etc/swift/swift.conf if it exists; set_swift_dir() discards what
it read.)
"""
import atexit
import ctypes
import http.client
import os
import pwd
import signal
import socket
import subprocess
import time

import boto3
import botocore.config

from .store import StoreServer

PYTHON = "/usr/bin/python3"      # Debian's interpreter: it sees python3-swift
MEMCACHED = "/usr/bin/memcached"

# Runs one Swift server (or builds the rings) with swift.conf read from
# swift_dir instead of /etc/swift/swift.conf.
_LAUNCHER = r'''
import sys

swift_dir, what = sys.argv[1], sys.argv[2]

from swift.common import utils
# Must come before swift.common.storage_policy and swift.common.constraints
# are imported: both read utils.SWIFT_CONF_FILE when they load.
utils.set_swift_dir(swift_dir)

if what == "rings":
    # What `swift-ring-builder X.builder create/add/rebalance` does, for the
    # three rings in one interpreter (the CLI costs ~0.3 s per call).
    import os
    from swift.common.ring import RingBuilder
    for spec in sys.argv[3:]:
        name, port = spec.split(":")
        builder = RingBuilder(4, 1, 1)    # 2^4 partitions, 1 replica
        builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1",
                         "port": int(port), "device": "d1", "weight": 1.0})
        builder.rebalance()
        builder.save(os.path.join(swift_dir, name + ".builder"))
        builder.get_ring().save(os.path.join(swift_dir, name + ".ring.gz"))
    sys.exit(0)

from swift.common.wsgi import run_wsgi
sys.exit(run_wsgi(sys.argv[3], what))
'''

# Receives Swift's syslog datagrams (log_udp_host/log_udp_port) and appends
# them to a file.  Prints its port on stdout once bound.
_COLLECTOR = r'''
import re, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
pri = re.compile(rb"^<\d+>")
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        data, _ = s.recvfrom(65536)
        out.write(pri.sub(b"", data).rstrip(b"\0\n") + b"\n")
'''

_SERVERS = ("account", "container", "object")


class _PortTaken(RuntimeError):
    pass


def _die_with_parent():
    """In the child: get SIGTERM when the thread that started us dies, so a
    killed test run leaves no servers behind (stop() is the normal way).
    Swift's drop_privileges() keeps the same ids, which keeps this setting."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)       # PR_SET_PDEATHSIG


def _free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (held at once, then freed)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _check_xattrs(directory):
    """The object server keeps metadata in user xattrs: fail early and clearly
    on a filesystem without them (e.g. tmpfs on older kernels)."""
    probe = os.path.join(directory, ".xattr-probe")
    try:
        with open(probe, "wb"):
            pass
        os.setxattr(probe, "user.swift.probe", b"1")
    except OSError as e:
        raise RuntimeError("swift needs user xattrs on %s: %s"
                           % (directory, e)) from e
    finally:
        try:
            os.unlink(probe)
        except OSError:
            pass


def _backend_up(port, server):
    """True once the Swift `server` itself answers OPTIONS on port (not just
    anything listening there)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("OPTIONS", "/")
        r = conn.getresponse()
        r.read()
        return (r.status == 200 and
                (r.getheader("Server") or "").startswith(server + "-server/"))
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class SwiftServer(StoreServer):
    kind = "swift"
    start_timeout = 30.0
    # s3api min_segment_size: smallest multipart part but the last
    # (EntityTooSmall below it).  5 MiB, as on AWS; set before start().
    min_part_size = 5 * 1024 * 1024

    def __init__(self, workdir):
        super().__init__(os.path.abspath(workdir))
        self.access_key = "test:tester"    # tempauth user_test_tester
        self.secret_key = "testing"
        self.swift_dir = os.path.join(self.workdir, "etc")
        self.devices = os.path.join(self.workdir, "srv")
        self.log_dir = os.path.join(self.workdir, "log")
        self.log_file = os.path.join(self.log_dir, "swift.log")
        self.ports = {}
        self._procs = []                   # [(name, Popen)] in start order
        self._files = []
        self._atexit = False

    # -- life cycle ---------------------------------------------------------

    def start(self):
        if self._procs:
            return self
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        for attempt in range(3):
            try:
                self._start()
                return self
            except _PortTaken:
                # Another process took a port between _free_ports() and
                # the server's bind(): pick new ports.
                self.stop()
                if attempt == 2:
                    raise
            except BaseException:
                self.stop()
                raise

    def _start(self):
        deadline = time.monotonic() + self.start_timeout
        for d in (self.swift_dir, os.path.join(self.devices, "d1"),
                  os.path.join(self.workdir, "cache"), self.log_dir,
                  os.path.join(self.workdir, "run")):
            os.makedirs(d, exist_ok=True)
        _check_xattrs(os.path.join(self.devices, "d1"))
        self._launcher = os.path.join(self.workdir, "run", "swift-launch.py")
        with open(self._launcher, "w") as f:
            f.write(_LAUNCHER)

        ports = _free_ports(5)
        self.ports = dict(zip(("proxy", "memcached") + _SERVERS, ports))
        self.port = self.ports["proxy"]
        self.endpoint = "http://%s:%d" % (self.host, self.port)

        collector = self._spawn("log-collector", [PYTHON, "-c", _COLLECTOR,
                                                  self.log_file],
                                stdout=subprocess.PIPE)
        line = collector.stdout.readline()
        collector.stdout.close()
        if not line.strip().isdigit():
            raise RuntimeError("swift log collector failed to start: see %s"
                               % self.log_dir)
        self.ports["log"] = int(line)

        self._write_configs()
        rings = subprocess.run(
            [PYTHON, self._launcher, self.swift_dir, "rings"]
            + ["%s:%d" % (s, self.ports[s]) for s in _SERVERS],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=60)
        if rings.returncode != 0:
            raise RuntimeError("building swift rings failed:\n"
                               + rings.stdout.decode(errors="replace"))

        mc = [MEMCACHED, "-l", "127.0.0.1", "-p", str(self.ports["memcached"]),
              "-U", "0", "-m", "16", "-t", "1"]
        if os.geteuid() == 0:
            mc += ["-u", self._user()]
        self._spawn("memcached", mc)
        for s in _SERVERS + ("proxy",):
            self._spawn(s, [PYTHON, self._launcher, self.swift_dir,
                            s + "-server",
                            os.path.join(self.swift_dir, s + "-server.conf")])
        self._wait_ready(deadline)

    def stop(self):
        """Terminate every process started, by process group.  Idempotent."""
        procs, self._procs = self._procs, []
        # A process that has not been reaped (returncode None) still holds
        # its pid, so its process group id cannot have been reused.
        for _, p in reversed(procs):
            if p.returncode is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + 5
        for _, p in procs:
            if p.returncode is None:
                try:
                    p.wait(max(0.1, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait()
        files, self._files = self._files, []
        for f in files:
            f.close()

    def pids(self):
        """{name: pid} of the processes started and not yet stopped."""
        return {name: p.pid for name, p in self._procs}

    # -- helpers ------------------------------------------------------------

    @staticmethod
    def _user():
        return pwd.getpwuid(os.geteuid()).pw_name

    def _spawn(self, name, argv, stdout=None):
        err = open(os.path.join(self.log_dir, name + ".stderr"), "ab")
        self._files.append(err)
        p = subprocess.Popen(argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                             stdout=stdout or err, stderr=err,
                             start_new_session=True, close_fds=True,
                             preexec_fn=_die_with_parent)
        self._procs.append((name, p))
        return p

    def _check_alive(self):
        for name, p in self._procs:
            if p.poll() is not None:
                path = os.path.join(self.log_dir, name + ".stderr")
                with open(path, "rb") as f:
                    tail = f.read()[-3000:].decode(errors="replace")
                taken = ("Address already in use" in tail
                         or "Could not bind" in tail)
                cls = _PortTaken if taken else RuntimeError
                raise cls("swift %s exited with %s during start-up "
                          "(logs in %s):\n%s"
                          % (name, p.returncode, self.log_dir, tail))

    def _wait_ready(self, deadline):
        """Until every backend answers and the proxy answers S3 ListBuckets."""
        probe = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=botocore.config.Config(
                signature_version="s3v4", s3={"addressing_style": "path"},
                retries={"max_attempts": 1}, connect_timeout=1,
                read_timeout=5))
        last = None
        while time.monotonic() < deadline:
            self._check_alive()
            if all(_backend_up(self.ports[s], s) for s in _SERVERS):
                try:
                    probe.list_buckets()
                    return
                except Exception as e:      # refused, 503 while booting...
                    last = e
            time.sleep(0.1)
        raise RuntimeError("swift did not answer S3 within %.0f s (last error:"
                           " %r; logs in %s)" % (self.start_timeout, last,
                                                self.log_dir))

    def _write_configs(self):
        def write(name, text):
            with open(os.path.join(self.swift_dir, name), "w") as f:
                f.write(text)

        write("swift.conf", """\
[swift-hash]
swift_hash_path_suffix = hgs3-test-suffix
swift_hash_path_prefix = hgs3-test-prefix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
""")
        # Every server logs through syslog-over-UDP to the collector (Swift
        # has no plain log-file option; without this it would write to
        # /dev/log or to localhost:514).
        common = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
bind_timeout = 1
workers = 0
user = {user}
swift_dir = {swift_dir}
devices = {devices}
mount_check = false
disable_fallocate = true
fallocate_reserve = 0
recon_cache_path = {cache}
log_udp_host = 127.0.0.1
log_udp_port = {log_port}
log_level = INFO
"""
        def head(server):
            return common.format(port=self.ports[server], user=self._user(),
                                 swift_dir=self.swift_dir,
                                 devices=self.devices,
                                 cache=os.path.join(self.workdir, "cache"),
                                 log_port=self.ports["log"])

        for s in _SERVERS:
            write(s + "-server.conf", head(s) + """
[pipeline:main]
pipeline = {s}-server

[app:{s}-server]
use = egg:swift#{s}
""".format(s=s))
        write("proxy-server.conf", head("proxy") + """
[pipeline:main]
pipeline = catch_errors gatekeeper proxy-logging cache s3api tempauth slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{mc}

[filter:s3api]
use = egg:swift#s3api
location = {region}
min_segment_size = {min_part}

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
""".format(mc=self.ports["memcached"], region=self.region,
                   min_part=self.min_part_size))


if __name__ == "__main__":
    # By hand: cd tests && /usr/bin/python3 -m pyhgs3.swift /tmp/swift-dev
    import sys
    server = SwiftServer(sys.argv[1] if len(sys.argv) > 1 else "swift-dev")
    t0 = time.monotonic()
    server.start()
    print("swift s3api at %s (started in %.1f s), access key %s, region %s; "
          "logs in %s; Ctrl-C stops" % (server.endpoint,
                                        time.monotonic() - t0,
                                        server.access_key, server.region,
                                        server.log_dir), flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
