"""The local-directory store (HgS3CacheStore file:DIR) as a `store` fixture
value: the same methods as StoreBucket (kind, keys(), get(), put(), head(),
delete(), empty(), location_conf()), read and written straight in DIR.

Object KEY is DIR/KEY, its Content-Type, size and SHA-256 are in the sidecar
DIR/KEY.meta; see src/hgs3_store_file.c."""
import os
from pathlib import Path

from . import env as E
from .httpd import hgs3cache_location

META = ".meta"


def meta_text(size, content_type, sha256=None):
    return (f"hgs3cache-meta 1\nsize {size}\ntype {content_type}\n"
            + (f"sha256 {sha256}\n" if sha256 else ""))


def parse_meta(text):
    fields = dict(line.split(" ", 1) for line in text.splitlines()[1:] if " " in line)
    return {"size": int(fields.get("size", -1)), "type": fields.get("type"),
            "sha256": fields.get("sha256")}


class FileStore:
    """A fresh store directory of one test, owned by httpd's user."""

    kind = "file"
    bucket = None
    endpoint = None

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o750)
        E.chown_to_server(self.dir)

    def __repr__(self):
        return f"<file {self.dir}>"

    def path(self, key):
        return self.dir / key

    def keys(self, prefix=""):
        """The keys of complete-looking objects (no sidecars, no temp files)."""
        out = []
        for root, _, files in os.walk(self.dir):
            for name in files:
                if name.endswith(META) or ".tmp." in name:
                    continue
                key = os.path.relpath(os.path.join(root, name), self.dir)
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    def temp_files(self):
        return sorted(str(p.relative_to(self.dir)) for p in self.dir.rglob("*.tmp.*"))

    def meta(self, key):
        return parse_meta(Path(str(self.path(key)) + META).read_text())

    def get(self, key):
        """(bytes, content_type, sha256) of an object."""
        return self.path(key).read_bytes(), self.meta(key)["type"], self.meta(key)["sha256"]

    def put(self, key, data, content_type="application/mercurial-0.2"):
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        Path(str(p) + META).write_text(meta_text(len(data), content_type))
        p.write_bytes(data)
        E.chown_to_server(self.dir)

    def head(self, key):
        try:
            st = self.path(key).stat()
            m = self.meta(key)
        except FileNotFoundError:
            return None
        return {"ContentLength": st.st_size, "ContentType": m["type"], "mtime": st.st_mtime}

    def delete(self, key):
        for p in (self.path(key), Path(str(self.path(key)) + META)):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def empty(self, prefix=""):
        for key in self.keys(prefix):
            self.delete(key)

    def location_conf(self, repo, location="/repo", endpoint=None, enabled=True, **directives):
        """<Location> text that points mod_hgs3cache at this directory (no
        bucket, endpoint nor credentials: the S3 directives do not apply)."""
        assert endpoint is None, "a local-directory store has no endpoint"
        return hgs3cache_location(location, repo, enabled=enabled, Store=f"file:{self.dir}",
                                  **directives)
