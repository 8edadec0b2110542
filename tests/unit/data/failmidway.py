"""Mercurial extension: make getbundle fail part-way through the changegroup.

Used by make_hgweb_zstd.py to capture what hgweb sends when bundle
generation fails after the response has started (an unreadable revlog, a
killed worker, ...). The changegroup stream raises after
`failmidway.after` bytes (unset: no failure); Mercurial's bundle2 writer then
emits an interrupt with an advisory error:abort part and re-raises, so the
wire compressor is never flushed.

    [extensions]
    failmidway = /path/to/failmidway.py
    [failmidway]
    after = 300000
"""
from mercurial import changegroup, error, extensions, registrar

testedwith = b"6.3.2"
configtable = {}
configitem = registrar.configitem(configtable)
configitem(b"failmidway", b"after", default=None)


def _failing(stream, limit):
    sent = 0
    for chunk in stream:
        if sent + len(chunk) > limit:
            yield chunk[: limit - sent]
            raise error.StorageError(b"failmidway: simulated read error")
        sent += len(chunk)
        yield chunk


def _makestream(orig, repo, *args, **kwargs):
    # hgweb loads a repository's extensions into the whole process: act only
    # on repositories that ask for it.
    limit = repo.ui.configint(b"failmidway", b"after")
    stream = orig(repo, *args, **kwargs)
    return stream if limit is None else _failing(stream, limit)


def uisetup(ui):
    extensions.wrapfunction(changegroup, "makestream", _makestream)
