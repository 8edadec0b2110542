"""`hgs3 presign` against botocore's generate_presigned_url.

botocore (Debian's python3-botocore) is an independent SigV4 signer. With its
clock frozen to the instant given to `hgs3 presign --date`, both must print
the very same URL, byte for byte, for every case: keys with spaces, unicode,
'+', '=', '~', '/' and other reserved characters, several regions, endpoints
with and without a port or a base path, both addressing styles, any expiry,
with and without a session token and a signed response-content-type.

No server is involved.
"""
import datetime
import ipaddress
import os
import random
import subprocess
import urllib.parse
from unittest import mock

import boto3
import botocore.config
import pytest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HGS3 = os.environ.get("HGS3_BIN", os.path.join(TOP, "hgs3"))

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

ENDPOINTS = [
    "https://s3.amazonaws.com",
    "https://s3.eu-west-1.amazonaws.com",
    "http://127.0.0.1:9000",
    "http://localhost:8080",
    "https://store.example.com:8443",
    "https://objects.example.org/s3base",
    "http://[::1]:9000",
]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1"]
EXPIRIES = [1, 60, 300, 3600, 86400, 604800]
CONTENT_TYPES = [None, "application/mercurial-0.2", "text/plain; charset=utf-8"]
KEY_CHARS = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(" +=~/-_.!*'()&$@:,;?#%[]")
    + ["\u00e9", "\u00df", "\u20ac", "\u65e5\u672c", "\U0001f600", "\u1234"]
)

N_CASES = 80


def is_ip_endpoint(url):
    try:
        ipaddress.ip_address(urllib.parse.urlsplit(url).hostname)
        return True
    except ValueError:
        return False


def random_key(rng):
    n = rng.randint(1, 40)
    key = "".join(rng.choice(KEY_CHARS) for _ in range(n))
    # Make sure the characters the issue names show up often.
    for must in (" ", "\u00e9", "+", "=", "~", "/"):
        if rng.random() < 0.3:
            pos = rng.randint(0, len(key))
            key = key[:pos] + must + key[pos:]
    return key


def random_token(rng):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(16, 120)))


def make_cases():
    rng = random.Random(20150830)
    cases = []
    for i in range(N_CASES):
        addressing = "path" if i % 2 else "virtual"
        # Virtual-hosted addressing needs a DNS name and a bucket without dots
        # (botocore falls back to path style otherwise, hgs3 refuses: see
        # test_virtual_needs_dns_names).
        endpoints = [e for e in ENDPOINTS if addressing == "path" or not is_ip_endpoint(e)]
        buckets = ["bkt", "hg-cache"] + (["my.bucket-01"] if addressing == "path" else [])
        cases.append(
            dict(
                endpoint=rng.choice(endpoints),
                region=rng.choice(REGIONS),
                addressing=addressing,
                bucket=rng.choice(buckets),
                key=random_key(rng),
                expires=rng.choice(EXPIRIES + [rng.randint(1, 604800)]),
                token=random_token(rng) if rng.random() < 0.5 else None,
                content_type=rng.choice(CONTENT_TYPES),
                when=datetime.datetime(2015, 1, 1)
                + datetime.timedelta(seconds=rng.randint(0, 15 * 365 * 86400)),
            )
        )
    return cases


CASES = make_cases()


def botocore_url(case):
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=case["token"],
        region_name=case["region"],
    )
    client = session.client(
        "s3",
        endpoint_url=case["endpoint"],
        config=botocore.config.Config(
            signature_version="s3v4", s3={"addressing_style": case["addressing"]}
        ),
    )
    params = {"Bucket": case["bucket"], "Key": case["key"]}
    if case["content_type"]:
        params["ResponseContentType"] = case["content_type"]
    # botocore.auth reads the clock with datetime.datetime.utcnow().
    with mock.patch("botocore.auth.datetime") as frozen:
        frozen.datetime.utcnow.return_value = case["when"]
        return client.generate_presigned_url("get_object", Params=params, ExpiresIn=case["expires"])


def hgs3_presign(case):
    cmd = [
        HGS3,
        "presign",
        "--endpoint", case["endpoint"],
        "--region", case["region"],
        "--addressing", case["addressing"],
        "--bucket", case["bucket"],
        "--access-key", ACCESS_KEY,
        "--secret-key", SECRET_KEY,
        "--expires", str(case["expires"]),
        "--date", case["when"].strftime("%Y%m%dT%H%M%SZ"),
    ]
    if case["token"]:
        cmd += ["--session-token", case["token"]]
    if case["content_type"]:
        cmd += ["--response-content-type", case["content_type"]]
    cmd += ["--", case["key"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(cmd, capture_output=True, env=env, check=False)


def hgs3_url(case):
    out = hgs3_presign(case)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert text.endswith("\n") and text.count("\n") == 1, "presign prints only the URL"
    return text[:-1]


@pytest.fixture(scope="module", autouse=True)
def need_hgs3():
    if not os.access(HGS3, os.X_OK):
        pytest.skip(f"{HGS3} not built (make hgs3)")


def test_enough_cases():
    assert len(CASES) >= 50
    assert {c["addressing"] for c in CASES} == {"path", "virtual"}
    assert any(c["token"] for c in CASES) and any(not c["token"] for c in CASES)
    assert len({c["region"] for c in CASES}) >= 3
    for ch in (" ", "\u00e9", "+", "=", "~", "/"):
        assert any(ch in c["key"] for c in CASES), ch


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_presign_matches_botocore(case):
    assert hgs3_url(case) == botocore_url(case)


def test_aws_documentation_example():
    """The S3 documentation's presigned GET, through both signers."""
    case = dict(
        endpoint="https://s3.amazonaws.com",
        region="us-east-1",
        addressing="virtual",
        bucket="examplebucket",
        key="test.txt",
        expires=86400,
        token=None,
        content_type=None,
        when=datetime.datetime(2013, 5, 24),
    )
    url = hgs3_url(case)
    assert url == botocore_url(case)
    assert url.endswith(
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


def test_a_different_instant_gives_a_different_url():
    """The comparison is not vacuous: the clock really is part of both."""
    case = dict(CASES[0])
    a = hgs3_url(case)
    case["when"] = case["when"] + datetime.timedelta(seconds=1)
    b = hgs3_url(case)
    assert a != b
    assert b == botocore_url(case)


@pytest.mark.parametrize(
    "endpoint,bucket",
    [("http://127.0.0.1:9000", "bkt"), ("http://[::1]:9000", "bkt"),
     ("https://s3.amazonaws.com", "my.bucket")],
)
def test_virtual_needs_dns_names(endpoint, bucket):
    """botocore quietly switches such requests to path style; hgs3 refuses
    virtual-hosted addressing for them (usage error) and signs them fine
    with path addressing."""
    case = dict(CASES[1], endpoint=endpoint, bucket=bucket, addressing="virtual")
    out = hgs3_presign(case)
    assert out.returncode == 64
    assert b"path addressing" in out.stderr
    assert out.stdout == b""
    case["addressing"] = "path"
    assert hgs3_url(case) == botocore_url(case)
