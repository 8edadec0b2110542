"""A memcached on a free loopback port, for a presence cache shared by
several httpd instances (HgS3CachePresence memcache:127.0.0.1:PORT)."""
import os
import subprocess

from . import env as E

MEMCACHED = "/usr/bin/memcached"


class MemcachedServer:
    def __init__(self, workdir):
        self.workdir = workdir
        self.port = None
        self.proc = None

    @property
    def address(self):
        return f"{E.LOOPBACK}:{self.port}"

    def start(self, timeout=10):
        self.port = E.free_port()
        argv = [MEMCACHED, "-l", E.LOOPBACK, "-p", str(self.port), "-U", "0", "-m", "16",
                "-t", "1"]
        if E.running_as_root():
            argv += ["-u", E.SERVER_USER]
        self._log = open(os.path.join(self.workdir, "memcached.log"), "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        E.wait_until(lambda: self.proc.poll() is not None or E.port_open(E.LOOPBACK, self.port),
                     timeout, what="memcached")
        if self.proc.poll() is not None:
            raise RuntimeError(f"memcached exited with {self.proc.returncode}")
        return self

    def stop(self):
        proc, self.proc = self.proc, None
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
