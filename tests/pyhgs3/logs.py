"""httpd log readers: the error_log check (as in pyhttpd) and the access log.

Error log lines look like
    [Tue Nov 25 06:00:00.123456 2025] [hgs3cache:warn] [pid 1:tid 2] HGS30001: ...
A line at level warn or worse is "unexpected" unless a test allowed it with a
regular expression. Lines that are not in httpd's format at all (a sanitizer
report, a library writing to stderr) are unexpected too.
"""
import re
from pathlib import Path

BAD_LEVELS = ("emerg", "alert", "crit", "error", "warn")
_LEVEL_RE = re.compile(r"^\[[^\]]*\] \[(?P<module>[^:\]]*):(?P<level>[a-z0-9]+)\]")


def line_level(line):
    """(module, level) of an httpd error_log line, or (None, None) for a line
    not in httpd's format."""
    m = _LEVEL_RE.match(line)
    if not m:
        return None, None
    return m.group("module"), m.group("level")


class ErrorLog:
    """One httpd error_log: read what was written since a mark, and check it."""

    def __init__(self, path):
        self.path = Path(path)
        self._mark = 0
        self._allowed = []       # compiled regexes
        self._checked_upto = 0

    # --- reading ---------------------------------------------------------
    def _read_from(self, offset):
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return offset, []
        # Only whole lines; an unterminated last line is left for later.
        cut = data.rfind(b"\n") + 1
        return offset + cut, data[:cut].decode("utf-8", "replace").splitlines()

    def size(self):
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def mark(self):
        """Remember the current end: lines() and check() look at what follows."""
        self._mark = self.size()
        self._checked_upto = max(self._checked_upto, self._mark)
        return self._mark

    def lines(self, since_mark=True):
        return self._read_from(self._mark if since_mark else 0)[1]

    def grep(self, pattern, since_mark=True):
        rx = re.compile(pattern)
        return [ln for ln in self.lines(since_mark) if rx.search(ln)]

    # --- checking --------------------------------------------------------
    def allow(self, *patterns):
        """Lines matching any of these regexes are never reported."""
        self._allowed.extend(re.compile(p) for p in patterns)

    def allowed(self, line):
        return any(rx.search(line) for rx in self._allowed)

    @staticmethod
    def is_bad(line):
        if not line.strip():
            return False
        module, level = line_level(line)
        if level is None:
            return True
        return level in BAD_LEVELS

    def unexpected(self, consume=True):
        """Bad, not allowed lines written since the last check (or the mark)."""
        new_end, lines = self._read_from(self._checked_upto)
        if consume:
            self._checked_upto = new_end
        return [ln for ln in lines if self.is_bad(ln) and not self.allowed(ln)]


class AccessLog:
    """The access log written with ACCESS_LOG_FORMAT (tab separated)."""

    FIELDS = ("time", "method", "target", "protocol", "status", "bytes",
              "duration_us", "note", "hgarg1", "hgproto", "location",
              "content_type", "x_hgs3cache", "user", "request")
    # httpd escapes tabs, quotes and control characters in logged values,
    # so splitting on a tab is unambiguous.
    FORMAT = "\\t".join([
        "%{sec}t.%{usec_frac}t", "%m", "%U%q", "%H", "%>s", "%B", "%D",
        "%{hgs3cache}n", "%{X-HgArg-1}i", "%{X-HgProto-1}i", "%{Location}o",
        "%{Content-Type}o", "%{X-HgS3Cache}o", "%u", "%r",
    ])

    def __init__(self, path):
        self.path = Path(path)

    def entries(self):
        """A list of dicts, one per request, in log order. '-' becomes None."""
        try:
            text = self.path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) != len(self.FIELDS):
                continue
            e = {k: (None if v == "-" else v) for k, v in zip(self.FIELDS, parts)}
            e["status"] = int(e["status"])
            e["bytes"] = int(e["bytes"] or 0)
            e["duration_us"] = int(e["duration_us"])
            e["time"] = float(e["time"])
            out.append(e)
        return out

    def find(self, method=None, target=None, status=None):
        """Entries matching method, a regex on the target (path?query), status."""
        rx = re.compile(target) if target else None
        return [e for e in self.entries()
                if (method is None or e["method"] == method)
                and (rx is None or rx.search(e["target"]))
                and (status is None or e["status"] == status)]
