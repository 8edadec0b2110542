"""A recording, fault-injecting HTTP forwarding proxy placed in front of a store.

mod_hgs3cache is pointed at the proxy's endpoint instead of the store's. The
proxy forwards every request unchanged -- request line, every header including
Host, in order and with their case, and the body as it streams -- so SigV4
signatures (which cover Host) stay valid. Each request is recorded (method,
target, headers, time, status, byte counts) in memory and as one JSON line in
a log file, so tests can count HEAD/PUT/POST per key.

Faults are rules, tried in order; the first active rule whose method and path
regex match a request is applied to it:

    proxy.add_rule("delay", method="HEAD", path=r"/hgcache/", seconds=3)
    proxy.add_rule("status", method="PUT", status=503, body=b"<Error/>", times=2)
    proxy.add_rule("hang")                    # accept, read, never answer
    proxy.add_rule("close")                   # close the connection, no answer
    proxy.add_rule("cut_response", fraction=0.5)  # half the body, then close
    proxy.add_rule("cut_request", fraction=0.5)   # forward half the body, then close
    proxy.add_rule("script", fn=liar.partial_206)  # a store that lies (pyhgs3/liar.py)

"script" hands the exchange to fn(ex) (an Exchange: the request's method,
path and headers; ex.upstream() gets the real store's answer; ex.write(),
ex.respond() and ex.sleep() answer whatever fn likes, malformed or slow);
the client connection is closed when fn returns.

`times` limits how often a rule applies (None = always). proxy.refuse(True)
closes the listening socket, so new connections are refused outright, and
proxy.refuse(False) listens again on the same port.
"""
import http.client
import json
import re
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from .env import LOOPBACK

ACTIONS = ("delay", "status", "hang", "close", "cut_response", "cut_request", "script")
CHUNK = 64 * 1024


class Rule:
    def __init__(self, action, method=None, path=None, times=None, **params):
        if action not in ACTIONS:
            raise ValueError(f"unknown proxy action {action!r} (one of {ACTIONS})")
        self.action = action
        self.methods = None if method is None else (
            {method.upper()} if isinstance(method, str) else {m.upper() for m in method})
        self.path = re.compile(path) if path else None
        self.times = times
        self.params = params
        self.hits = 0

    def matches(self, method, target):
        if self.times is not None and self.hits >= self.times:
            return False
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return self.path is None or bool(self.path.search(target))

    def __repr__(self):
        return f"<Rule {self.action} {self.methods} {self.path and self.path.pattern} {self.params} hits={self.hits}>"


class _Closed(Exception):
    """The exchange ended by closing the client connection."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120                       # idle keep-alive connections
    server_version = "hgs3-test-proxy"

    def setup(self):
        super().setup()
        self.upstream = None

    def finish(self):
        try:
            super().finish()
        finally:
            if self.upstream is not None:
                self.upstream.close()

    def log_message(self, fmt, *args):  # quiet; the JSON log has it all
        pass

    # BaseHTTPRequestHandler answers "Expect: 100-continue" itself (so the
    # client sends its body at once); the header is still forwarded.
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._proxy
        raise AttributeError(name)

    # --- the exchange ----------------------------------------------------
    def _proxy(self):
        proxy = self.server.owner
        rec = proxy._record_start(self)
        try:
            rule = proxy._match(self.command, self.path)
            rec["rule"] = rule.action if rule else None
            if rule is None or rule.action in ("delay", "cut_response", "cut_request"):
                if rule is not None and rule.action == "delay":
                    proxy._stopping.wait(float(rule.params.get("seconds", 1)))
                self._forward(rec, rule)
            elif rule.action == "status":
                self._drain_body(rec)
                self._answer(rec, int(rule.params.get("status", 500)),
                             rule.params.get("body", b""), rule.params.get("headers", {}))
            elif rule.action == "hang":
                seconds = rule.params.get("seconds")
                proxy._stopping.wait(None if seconds is None else float(seconds))
                raise _Closed()
            elif rule.action == "close":
                raise _Closed()
            elif rule.action == "script":
                self._drain_body(rec)
                rule.params["fn"](Exchange(self, rec))
                self.wfile.flush()
                raise _Closed()
        except _Closed:
            rec["closed"] = True
            self.close_connection = True
        except (OSError, http.client.HTTPException) as e:
            rec["error"] = f"{type(e).__name__}: {e}"
            self.close_connection = True
        finally:
            proxy._record_end(rec)

    def _body_reader(self):
        """Yields the raw request body bytes (chunked framing included)."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise _Closed()
                yield line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:                       # trailers up to blank line
                        t = self.rfile.readline(65537)
                        yield t
                        if t in (b"\r\n", b"\n", b""):
                            return
                left = size + 2                       # data + CRLF
                while left:
                    data = self.rfile.read(min(CHUNK, left))
                    if not data:
                        raise _Closed()
                    left -= len(data)
                    yield data
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                data = self.rfile.read(min(CHUNK, left))
                if not data:
                    raise _Closed()
                left -= len(data)
                yield data

    def _drain_body(self, rec):
        for data in self._body_reader():
            rec["request_bytes"] += len(data)

    def _answer(self, rec, status, body, headers):
        if isinstance(body, str):
            body = body.encode()
        head = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Status')}"]
        hdrs = {"Content-Length": str(len(body)), **headers}
        head += [f"{k}: {v}" for k, v in hdrs.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if self.command != "HEAD":
            self.wfile.write(body)
            rec["response_bytes"] += len(body)
        self.wfile.flush()
        rec["status"] = status

    def _upstream_conn(self):
        # A new upstream connection for every request: a kept-alive one could
        # have been closed by the store while idle, and a streamed request
        # body cannot be replayed on a new one.
        proxy = self.server.owner
        self.upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                                   timeout=proxy.upstream_timeout)
        return self.upstream

    def _forward(self, rec, rule):
        try:
            try:
                try:
                    self._send_upstream(rec, rule)
                except OSError as e:
                    # The store may answer (403, 400...) and close before it
                    # has read the whole body: forward that answer if it came.
                    rec["error"] = f"upstream send: {type(e).__name__}: {e}"
                    self.close_connection = True   # the client's body is unread
                resp = self.upstream.getresponse()
            except (OSError, http.client.HTTPException) as e:
                rec["error"] = f"upstream: {type(e).__name__}: {e}"
                self._answer(rec, 502, f"proxy: upstream failed: {e}\n", {"Connection": "close"})
                self.close_connection = True
                return
            self._send_response(rec, resp, rule)
        finally:
            if self.upstream is not None:
                self.upstream.close()
                self.upstream = None

    def _send_upstream(self, rec, rule):
        conn = self._upstream_conn()
        # The request line and every header exactly as received: no Host or
        # Accept-Encoding of http.client's own, nothing added or reordered.
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        limit = None
        if rule is not None and rule.action == "cut_request":
            total = int(self.headers.get("Content-Length") or 0)
            limit = int(total * float(rule.params.get("fraction", 0.5)))
        for data in self._body_reader():
            if limit is not None and rec["request_bytes"] + len(data) >= limit:
                conn.send(data[:max(0, limit - rec["request_bytes"])])
                rec["request_bytes"] = limit
                raise _Closed()
            conn.send(data)
            rec["request_bytes"] += len(data)

    def _send_response(self, rec, resp, rule):
        rec["status"] = resp.status
        headers = resp.msg.items()
        head = f"HTTP/1.1 {resp.status} {resp.reason}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers)
        self.wfile.write((head + "\r\n").encode("latin-1"))
        limit = None
        if rule is not None and rule.action == "cut_response":
            total = resp.length if resp.length is not None else int(rule.params.get("bytes", 2))
            limit = int(total * float(rule.params.get("fraction", 0.5)))
        chunked = resp.chunked
        until_eof = not chunked and resp.length is None and self.command != "HEAD" \
            and resp.status not in (204, 304) and resp.status >= 200
        while True:
            data = resp.read1(CHUNK) if chunked else resp.read(CHUNK)
            if not data:
                break
            if limit is not None and rec["response_bytes"] + len(data) >= limit:
                data = data[:max(0, limit - rec["response_bytes"])]
                self._write_body(data, chunked)
                rec["response_bytes"] += len(data)
                self.wfile.flush()
                raise _Closed()
            self._write_body(data, chunked)
            rec["response_bytes"] += len(data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        if until_eof or (resp.getheader("Connection") or "").lower() == "close":
            self.close_connection = True

    def _write_body(self, data, chunked):
        if not data:
            return
        if chunked:
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            self.wfile.write(data)


class Exchange:
    """One request handed to a "script" rule: what the client sent, the real
    store's answer on demand, and raw writes to the client."""

    def __init__(self, handler, rec):
        self._h = handler
        self._rec = rec
        self.method = handler.command
        self.path = handler.path
        self.headers = handler.headers

    def upstream(self):
        """The real store's answer to this request: (status, [(name, value)], body)."""
        h = self._h
        conn = h._upstream_conn()
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            for k, v in h.headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            body = b"" if h.command == "HEAD" else resp.read()
            return resp.status, [(k, v) for k, v in resp.msg.items()], body
        finally:
            conn.close()
            h.upstream = None

    def write(self, data):
        """Raw bytes to the client, sent at once (an OSError when it left)."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self._h.wfile.write(data)
        self._h.wfile.flush()
        self._rec["response_bytes"] += len(data)

    def head(self, status, headers, reason=None):
        """A status line and headers ([(name, value)] or dict), as given."""
        items = headers.items() if isinstance(headers, dict) else headers
        reason = reason or http.client.responses.get(status, "Status")
        self._rec["status"] = status
        self.write(f"HTTP/1.1 {status} {reason}\r\n" +
                   "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n")

    def respond(self, status, headers, body=b""):
        """A whole answer, headers as given (no Content-Length added); the
        body is left out for HEAD."""
        self.head(status, headers)
        if self.method != "HEAD" and body:
            self.write(body)

    def sleep(self, seconds):
        """Wait (cut short when the proxy stops); False once it is stopping."""
        return not self._h.server.owner._stopping.wait(seconds)


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, *args, **kw):
        self.connections = set()
        self.connections_lock = threading.Lock()
        super().__init__(*args, **kw)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self):
        """Cut every established client connection."""
        with self.connections_lock:
            conns = list(self.connections)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FaultProxy:
    """Forwards http://127.0.0.1:<port> to upstream (host, port)."""

    def __init__(self, upstream_host, upstream_port, log_path=None, port=0,
                 upstream_timeout=60):
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.upstream_timeout = upstream_timeout
        self.log_path = log_path
        self.port = port
        self.rules = []
        self.requests = []             # records, in arrival order
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self._log = None
        self._seq = 0

    @classmethod
    def for_store(cls, store, log_path=None, **kw):
        """A proxy in front of a started StoreServer."""
        return cls(store.host, store.port, log_path=log_path, **kw)

    @property
    def endpoint(self):
        return f"http://{LOOPBACK}:{self.port}"

    # --- life cycle ------------------------------------------------------
    def start(self):
        if self.log_path and self._log is None:
            self._log = open(self.log_path, "a", buffering=1)
        self._stopping.clear()
        self._listen()
        return self

    def _listen(self):
        self._server = _Server((LOOPBACK, self.port), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"proxy-{self.port}", daemon=True)
        self._thread.start()

    def _unlisten(self):
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.drop_connections()
            self._thread.join(5)

    def refuse(self, on=True):
        """Stop (on) or resume (off) accepting connections on the port. Stopping
        also cuts the connections already established, as a dead store would."""
        if on:
            self._unlisten()
        elif self._server is None:
            self._listen()

    def stop(self):
        self._stopping.set()          # releases hanging and delayed requests
        self._unlisten()
        with self._lock:
            if self._log:
                self._log.close()
                self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- rules -----------------------------------------------------------
    def add_rule(self, action, method=None, path=None, times=None, **params):
        rule = Rule(action, method=method, path=path, times=times, **params)
        with self._lock:
            self.rules.append(rule)
        return rule

    def remove_rule(self, rule):
        with self._lock:
            self.rules.remove(rule)

    def clear_rules(self):
        with self._lock:
            self.rules.clear()

    def _match(self, method, target):
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, target):
                    rule.hits += 1
                    return rule
        return None

    # --- the request log ---------------------------------------------------
    def _record_start(self, handler):
        with self._cond:
            self._seq += 1
            rec = {"seq": self._seq, "time": time.time(), "method": handler.command,
                   "path": handler.path, "headers": [[k, v] for k, v in handler.headers.items()],
                   "client": handler.client_address[1], "status": None, "rule": None,
                   "request_bytes": 0, "response_bytes": 0, "duration": None,
                   "done": False}
            self.requests.append(rec)
            self._cond.notify_all()
        return rec

    def _record_end(self, rec):
        with self._cond:
            rec["duration"] = time.time() - rec["time"]
            rec["done"] = True
            if self._log:
                self._log.write(json.dumps(rec) + "\n")
            self._cond.notify_all()

    def clear_log(self):
        with self._lock:
            self.requests.clear()

    @staticmethod
    def _select(recs, method, path, done):
        methods = None if method is None else (
            {method.upper()} if isinstance(method, str) else {m.upper() for m in method})
        rx = re.compile(path) if path else None
        return [r for r in recs
                if (methods is None or r["method"] in methods)
                and (rx is None or rx.search(r["path"]))
                and (done is None or r["done"] == done)]

    def find(self, method=None, path=None, done=None):
        """Records matching a method (or set of them), a regex searched in
        path+query, and (done=True/False) whether the exchange has ended."""
        with self._lock:
            return self._select(list(self.requests), method, path, done)

    def count(self, method=None, path=None):
        return len(self.find(method, path))

    def wait_for(self, method=None, path=None, count=1, timeout=10, done=True):
        """Wait until at least `count` matching requests have completed (done=True)
        or arrived (done=None); returns them, or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self._select(self.requests, method, path, done)
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"proxy saw {len(found)} of {count} {method or ''} {path or ''} requests")
                self._cond.wait(left)

    @staticmethod
    def header(rec, name):
        """A request header's value from a record (case-insensitive), or None."""
        for k, v in rec["headers"]:
            if k.lower() == name.lower():
                return v
        return None
