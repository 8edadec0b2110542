"""@20minutes/s3rver (node) as a local S3 store that checks SigV4 signatures.

With tls=(key, cert) it serves https (endpoint https://127.0.0.1:PORT);
ca_file is then the CA that boto3 trusts for it, and connection_stats()
counts the TCP connections and TLS handshakes it accepted."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from .env import LOOPBACK, NODE, S3RVER_DIR, port_open
from .store import StoreServer

_PORT_LINE = re.compile(rb"^PORT (\d+)$", re.M)


class S3rverServer(StoreServer):
    kind = "s3rver"

    def __init__(self, workdir, buckets=(), start_timeout=20, tls=None, ca_file=None):
        super().__init__(workdir)
        self.tls = tls
        self.ca_file = str(ca_file) if ca_file else None
        self.workdir = Path(workdir)
        self.access_key = "S3RVER"
        self.secret_key = "S3RVER"
        self.buckets = list(buckets)
        self.start_timeout = start_timeout
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "s3rver.log"
        self.stats_path = self.workdir / "connections.json"
        self.proc = None
        self._log = None

    def _check_installed(self):
        script = S3RVER_DIR / "server.js"
        pkg = S3RVER_DIR / "node_modules" / "@20minutes" / "s3rver" / "package.json"
        if not os.path.exists(NODE):
            raise RuntimeError(f"node not found ({NODE}); run scripts/install-deps")
        if not pkg.exists():
            raise RuntimeError(f"{pkg} missing; run scripts/install-deps "
                               f"(npm ci in {S3RVER_DIR})")
        return script

    def start(self):
        if self.proc is not None:
            return self
        script = self._check_installed()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [NODE, str(script), "--address", LOOPBACK, "--port", "0",
                "--directory", str(self.data_dir), "--watch-stdin"]
        for b in self.buckets:
            args += ["--bucket", b]
        if self.tls:
            args += ["--key", str(self.tls[0]), "--cert", str(self.tls[1])]
        args += ["--stats", str(self.stats_path)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "HOME": str(self.workdir), "NO_COLOR": "1", "FORCE_COLOR": "0"}
        self._log = open(self.log_path, "wb")
        # stdin is a pipe we never write to: when this process dies, it closes
        # and the server exits (--watch-stdin) instead of outliving the tests.
        self.proc = subprocess.Popen(args, cwd=str(S3RVER_DIR), env=env,
                                     stdin=subprocess.PIPE, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        port = None
        while time.monotonic() < deadline:
            m = _PORT_LINE.search(self.log_path.read_bytes())
            if m:
                port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if port is None or not port_open(LOOPBACK, port):
            rc = self.proc.poll()
            self.stop()
            raise RuntimeError(f"s3rver did not start (rc={rc}); log:\n"
                               + self.log_path.read_text(errors="replace")[-4000:])
        self.port = port
        self.endpoint = f"{'https' if self.tls else 'http'}://{LOOPBACK}:{port}"
        return self

    def connection_stats(self):
        """{"connections": N, "tls_connections": N, "tls_resumed": N} accepted so far."""
        return json.loads(self.stats_path.read_text())

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if proc is not None and proc.stdin:
            proc.stdin.close()
        if self._log:
            self._log.close()
            self._log = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None
