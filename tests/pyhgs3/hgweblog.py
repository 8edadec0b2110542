"""What reaches hgweb itself: its application wrapped to log one JSON line
per request (WSGI and CGI alike), read back through httpd.hgweb_log."""
import json

# hgweb's WSGI application, wrapped: one JSON line per request that reaches
# hgweb: [method, query string, the concatenated X-HgArg-1, -2, ... values].
WSGI_WRAPPER = """
# --- test instrumentation: log every request that reaches hgweb
import json as _hgs3_json
_hgs3_hgweb = application


def application(environ, start_response):
    hgargs, n = "", 1
    while "HTTP_X_HGARG_%d" % n in environ:
        hgargs += environ["HTTP_X_HGARG_%d" % n]
        n += 1
    with open({path!r}, "a") as f:
        f.write(_hgs3_json.dumps([environ.get("REQUEST_METHOD"),
                                  environ.get("QUERY_STRING", ""), hgargs]) + "\\n")
    return _hgs3_hgweb(environ, start_response)
"""


class HgwebLog:
    """The requests hgweb itself received (see WSGI_WRAPPER)."""

    def __init__(self, path):
        self.path = path

    def entries(self):
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def commands(self, cmd):
        return [e for e in self.entries() if f"cmd={cmd}" in e[1].split("&")]


def instrument(httpd):
    """Count what reaches hgweb (WSGI and CGI alike): httpd.hgweb_log."""
    log_path = httpd.dir / "hgweb-requests.jsonl"
    log_path.write_text("")
    log_path.chmod(0o666)
    write_hgweb = httpd._write_hgweb

    def instrumented():
        script = write_hgweb()
        text, wrapper = script.read_text(), WSGI_WRAPPER.format(path=str(log_path))
        launch = "wsgicgi.launch(application)\n"
        if launch in text:
            text = text.replace(launch, wrapper + launch)
        else:
            text += wrapper
        script.write_text(text)
        return script

    httpd._write_hgweb = instrumented
    httpd.hgweb_log = HgwebLog(log_path)
    return httpd
