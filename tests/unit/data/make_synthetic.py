#!/usr/bin/python3
"""Write the synthetic getbundle bodies used by test_bundle2.

Each body is made with Mercurial's own bundle2 writer (bundle2.bundle20 and
bundlepart), prefixed with the application/mercurial-0.2 engine header
hgweb sends ("\\x04none"), so the bytes are what hgweb would put on the wire.
The "synth-zstd-*" bodies are "\\x04zstd" and a bundle compressed with
Mercurial's bundled python-zstandard (mercurial.zstd) in the frame shapes
libzstd can write: one-shot frames with content size and checksum, raw and
RLE blocks, several frames with a skippable frame between them.
Run with Debian's /usr/bin/python3 (Mercurial 6.3.2):

    /usr/bin/python3 tests/unit/data/make_synthetic.py tests/unit/data
"""
import os
import random
import struct
import sys

from mercurial import bundle2, ui as uimod, zstd

NONE = b"\x04none"
ZSTD = b"\x04zstd"


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


def interrupted(compression=None):
    bundler = bundle2.bundle20(uimod.ui.load())
    if compression:
        bundler.setcompression(compression)
    bundler.addpart(failingpart(b"changegroup", [(b"version", b"02")]))
    out = [NONE]
    try:
        for chunk in bundler.getchunks():
            out.append(chunk)
    except RuntimeError:
        pass
    return b"".join(out)


def compressed(compression=b"BZ"):
    """Parts compressed inside the bundle, as in a pre-built pullbundle."""
    bundler = bundle2.bundle20(uimod.ui.load())
    bundler.setcompression(compression)
    bundler.addpart(bundle2.bundlepart(b"test:data", data=b"y" * 100))
    return NONE + b"".join(bundler.getchunks())


def plain_bundle(data):
    """A bundle2 stream (no engine header) with one part carrying data."""
    bundler = bundle2.bundle20(uimod.ui.load())
    bundler.addpart(bundle2.bundlepart(b"test:data", data=data))
    return b"".join(bundler.getchunks())


def streamed(data, **kw):
    """As hgweb's zstd engine: compressobj, compress() per chunk, flush()."""
    z = zstd.ZstdCompressor(level=3, **kw).compressobj()
    return z.compress(data) + z.flush()


def skippable(content):
    return struct.pack("<II", 0x184D2A53, len(content)) + content


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
        # parts compressed with zstd inside the bundle: checked as zstd
        "synth-ok-zs-param.bin": compressed(b"ZS"),
        # the same when generation fails: the zstd frame is never finished
        "synth-interrupted-zs-param.bin": interrupted(b"ZS"),
        # one-shot frame: single segment, content size and checksum
        "synth-zstd-checksum.bin": ZSTD + zstd.ZstdCompressor(
            level=3, write_checksum=True).compress(plain_bundle(b"q" * 5000)),
        # one-shot, incompressible: a raw block whose size is the content size
        "synth-zstd-raw-sized.bin": ZSTD + zstd.ZstdCompressor(level=3).compress(
            plain_bundle(random.Random(8).randbytes(600))),
        # incompressible payload: raw blocks
        "synth-zstd-raw.bin": ZSTD + streamed(
            plain_bundle(random.Random(7).randbytes(3000))),
        # one byte repeated: RLE blocks
        "synth-zstd-rle.bin": ZSTD + streamed(plain_bundle(b"\0" * 300000)),
        # two frames with a skippable frame between them
        "synth-zstd-frames.bin": ZSTD + streamed(plain_bundle(b"first")) + skippable(b"note")
        + streamed(b"second frame", write_checksum=True),
    }
    for name, data in files.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
