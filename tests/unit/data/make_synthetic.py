#!/usr/bin/python3
"""Write the synthetic getbundle bodies used by test_bundle2.

Each body is made with Mercurial's own bundle2 writer (bundle2.bundle20 and
bundlepart), prefixed with the application/mercurial-0.2 engine header
hgweb sends ("\\x04none"), so the bytes are what hgweb would put on the wire.
Run with Debian's /usr/bin/python3 (Mercurial 6.3.2):

    /usr/bin/python3 tests/unit/data/make_synthetic.py tests/unit/data
"""
import os
import sys

from mercurial import bundle2, ui as uimod

NONE = b"\x04none"


def body(parts, params=()):
    bundler = bundle2.bundle20(uimod.ui.load())
    for name, value in params:
        bundler.addparam(name, value)
    for part in parts:
        bundler.addpart(part)
    return NONE + b"".join(bundler.getchunks())


class failingpart(bundle2.bundlepart):
    """A part whose payload generation fails after its first chunk, as when
    hgweb's changegroup or stream generation raises: bundlepart.getchunks
    then writes an interrupt (-1) and an advisory error:abort part, ends
    the payload and re-raises, and the body ends there."""

    def _payloadchunks(self):
        yield b"x" * 1000
        raise RuntimeError("disk vanished")


def interrupted():
    bundler = bundle2.bundle20(uimod.ui.load())
    bundler.addpart(failingpart(b"changegroup", [(b"version", b"02")]))
    out = [NONE]
    try:
        for chunk in bundler.getchunks():
            out.append(chunk)
    except RuntimeError:
        pass
    return b"".join(out)


def compressed():
    """Parts compressed inside the bundle, as in a pre-built pullbundle."""
    bundler = bundle2.bundle20(uimod.ui.load())
    bundler.setcompression(b"BZ")
    bundler.addpart(bundle2.bundlepart(b"test:data", data=b"y" * 100))
    return NONE + b"".join(bundler.getchunks())


def main(outdir):
    files = {
        # advisory (lower-case) error part
        "synth-error-lower.bin": body([bundle2.bundlepart(
            b"error:abort", [(b"message", b"nope")], mandatory=False)]),
        # other error part types
        "synth-error-pushraced.bin": body([bundle2.bundlepart(
            b"error:pushraced", [(b"message", b"raced")])]),
        # a harmless first part, the error in the second one
        "synth-error-second.bin": body([
            bundle2.bundlepart(b"output", data=b"remote: hello\n", mandatory=False),
            bundle2.bundlepart(b"error:abort", [(b"message", b"late")])]),
        # a normal multi-part bundle with parameters and a payload
        "synth-ok-parts.bin": body([
            bundle2.bundlepart(b"test:data", [(b"version", b"02")], [(b"nbchanges", b"1")],
                               data=b"c" * 70000),
            bundle2.bundlepart(b"listkeys", [(b"namespace", b"bookmarks")], data=b"")]),
        # no part at all
        "synth-ok-empty.bin": body([]),
        # parts compressed inside the bundle (a pre-built pullbundle)
        "synth-ok-compressed-param.bin": compressed(),
        # Compression=UN: the parts are still plain
        "synth-error-compression-un.bin": body(
            [bundle2.bundlepart(b"error:abort", [(b"message", b"m")])], [(b"Compression", b"UN")]),
        # an advisory stream parameter is ignored
        "synth-ok-advisory-param.bin": body(
            [bundle2.bundlepart(b"test:data", data=b"z")], [(b"someadvice", b"1")]),
        # an unknown mandatory stream parameter: the client aborts
        "synth-bad-mandatory-param.bin": body(
            [bundle2.bundlepart(b"test:data", data=b"z")], [(b"Unknownfeature", b"1")]),
        "synth-interrupted.bin": interrupted(),
    }
    for name, data in files.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
