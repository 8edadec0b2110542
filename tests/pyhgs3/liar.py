"""A store that lies: scripted answers for the FaultProxy's "script" rule.

Each function here (or the one a factory returns) is a rule's `fn`: it gets
the proxy's Exchange for one request and answers it as a broken or hostile
S3 store would, usually by bending the real store's answer:

    proxy.add_rule("script", method="GET", path="/hgcache/", fn=liar.partial_206)

GET answers (a streamed hit):
    status_line_close     "HTTP/1.1 200 OK" and a close, nothing else
    partial_206           206 Partial Content with the first half of the object
    short_content_length  a Content-Length of half the object, then the whole body
    chunked_cut           chunked, the first half of the object, then a close
    html_error_page       200 text/html, an error page
    trickle_500           500, its error body one byte every 0.2 s
    endless_404           404, an error body that never ends
    slow_headers          200 and one more header line every 0.5 s, no body
    stall_after(n)        the real answer, then a stall after n body bytes
    slow_body(piece, s)   the real answer, `piece` bytes every `s` seconds
HEAD answers (a lookup):
    status_line_close     as above
    last_modified(value)  the real answer with Last-Modified set to value
                          (None: left out)
Any request:
    echo_authorization    500 InternalError whose Code, Message and
                          RequestId echo the request's Authorization header
"""
import email.utils
import time

FOREVER = 60            # seconds a "never ending" answer goes on at most


def _without(headers, *names):
    drop = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.lower() not in drop]


def _header(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def status_line_close(ex):
    ex.write(b"HTTP/1.1 200 OK\r\n")


def partial_206(ex):
    status, headers, body = ex.upstream()
    half = body[:len(body) // 2]
    ex.respond(206, _without(headers, "Content-Length", "Connection") + [
        ("Content-Length", str(len(half))),
        ("Content-Range", f"bytes 0-{len(half) - 1}/{len(body)}")], half)


def short_content_length(ex):
    status, headers, body = ex.upstream()
    ex.respond(status, _without(headers, "Content-Length", "Connection") + [
        ("Content-Length", str(len(body) // 2))], body)


def chunked_cut(ex):
    status, headers, body = ex.upstream()
    half = body[:len(body) // 2]
    ex.head(status, _without(headers, "Content-Length", "Connection") +
            [("Transfer-Encoding", "chunked")])
    ex.write(b"%x\r\n" % len(half) + half + b"\r\n")


def html_error_page(ex):
    page = (b"<html><head><title>Service unavailable</title></head>"
            b"<body><h1>Our storage is taking a break</h1></body></html>\n")
    ex.respond(200, [("Content-Type", "text/html"), ("Content-Length", str(len(page)))], page)


def trickle_500(ex):
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b'<Message>' + b"x" * 4000 + b'</Message></Error>')
    ex.head(500, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    deadline = time.monotonic() + FOREVER
    for i in range(len(body)):
        if time.monotonic() > deadline or not ex.sleep(0.2):
            return
        ex.write(body[i:i + 1])


def endless_404(ex):
    ex.head(404, [("Content-Type", "application/xml"), ("Transfer-Encoding", "chunked")])
    start = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>'
    ex.write(b"%x\r\n" % len(start) + start + b"\r\n")
    deadline = time.monotonic() + FOREVER
    while time.monotonic() < deadline and ex.sleep(0.05):
        ex.write(b"400\r\n" + b" " * 1024 + b"\r\n")


def slow_headers(ex):
    ex.write(b"HTTP/1.1 200 OK\r\n")
    deadline = time.monotonic() + FOREVER
    n = 0
    while time.monotonic() < deadline and ex.sleep(0.5):
        n += 1
        ex.write(f"X-Slow-{n}: {n}\r\n")


def stall_after(nbytes):
    """The real answer (headers and length as stored), then nothing after
    nbytes of the body: the connection stays open."""
    def fn(ex):
        status, headers, body = ex.upstream()
        ex.respond(status, _without(headers, "Connection"), body[:nbytes])
        ex.sleep(FOREVER)
    fn.__name__ = f"stall_after_{nbytes}"
    return fn


def slow_body(piece, seconds):
    """The real answer, its body `piece` bytes every `seconds`."""
    def fn(ex):
        status, headers, body = ex.upstream()
        ex.head(status, _without(headers, "Connection"))
        for i in range(0, len(body), piece):
            if not ex.sleep(seconds):
                return
            ex.write(body[i:i + piece])
    fn.__name__ = f"slow_body_{piece}_{seconds}"
    return fn


def last_modified(value):
    """The real answer, with Last-Modified set to value (None: none at all)."""
    def fn(ex):
        status, headers, body = ex.upstream()
        headers = _without(headers, "Last-Modified", "Connection")
        if value is not None:
            headers.append(("Last-Modified", value))
        ex.respond(status, headers, body)
    fn.__name__ = f"last_modified_{value}"
    return fn


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def echo_authorization(ex):
    auth = ex.headers.get("Authorization") or ""
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError {auth}</Code>'
            f'<Message>We could not check your request: Authorization: {auth}</Message>'
            f'<RequestId>{auth.replace(" ", "")}</RequestId></Error>').encode()
    ex.respond(500, [("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                     ("x-amz-request-id", f"echo-{auth}")], body)
