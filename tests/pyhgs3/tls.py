"""A test certificate authority made with the openssl command line.

TestCA(dir) creates a CA and can issue server certificates for it:
- ca.server("good")                        127.0.0.1 and localhost, valid now;
- ca.server("other", names=["other.example"])   a valid one for another name;
- ca.server("expired", expired=True)        127.0.0.1, validity entirely in the past
                                            (openssl ca -startdate/-enddate).
Each server() returns (key_path, cert_path). ca.cert is the CA's PEM file,
ca.hashed_dir() a c_rehash-style directory holding it (HgS3CacheCAPath).
Everything is world-readable: httpd children run as nobody when root.
"""
import os
import subprocess
from pathlib import Path

OPENSSL = "/usr/bin/openssl"

CA_CONF = """\
[ca]
default_ca = testca

[testca]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = sha256
policy = policy_any
copy_extensions = none
unique_subject = no

[policy_any]
commonName = supplied

[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {san}
"""


def _openssl(*args, cwd=None):
    p = subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n"
                           + p.stderr.decode(errors="replace"))
    return p.stdout


def _san(names):
    out = []
    for n in names:
        kind = "IP" if all(c.isdigit() or c == "." for c in n) else "DNS"
        out.append(f"{kind}:{n}")
    return ",".join(out)


class TestCA:
    __test__ = False           # not a pytest test class

    def __init__(self, directory, name="mod_hgs3cache test CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "issued").mkdir(exist_ok=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.pem"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                 "-out", self.cert, "-days", "30", "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._readable()

    def _readable(self):
        os.chmod(self.dir, 0o755)
        for p in self.dir.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)

    def server(self, label, names=("127.0.0.1", "localhost"), expired=False):
        """Issue a server certificate: (key_path, cert_path)."""
        key = self.dir / f"{label}.key"
        csr = self.dir / f"{label}.csr"
        cert = self.dir / f"{label}.pem"
        conf = self.dir / f"{label}.cnf"
        conf.write_text(CA_CONF.format(dir=self.dir, san=_san(names)))
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                 "-subj", f"/CN={names[0]}")
        if expired:
            validity = ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"]
        else:
            validity = ["-days", "30"]
        _openssl("ca", "-batch", "-config", conf, "-extensions", "server_ext", "-cert",
                 self.cert, "-keyfile", self.key, "-in", csr, "-out", cert, "-notext",
                 *validity)
        self._readable()
        return key, cert

    def hashed_dir(self):
        """A directory holding the CA under its subject hash (HgS3CacheCAPath)."""
        d = self.dir / "hashed"
        d.mkdir(exist_ok=True)
        h = _openssl("x509", "-noout", "-subject_hash", "-in", self.cert).decode().strip()
        link = d / f"{h}.0"
        link.write_bytes(self.cert.read_bytes())
        self._readable()
        return d
