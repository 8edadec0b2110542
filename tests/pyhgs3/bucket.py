"""One test's view of a store: a started StoreServer plus a bucket of its own."""
import itertools
import os

from .httpd import hgs3cache_location
from .proxy import FaultProxy

_seq = itertools.count(1)


def unique_bucket_name(prefix="t"):
    """A valid S3 bucket name (lower case, 3-63 chars), unique in this run."""
    return f"{prefix}-{os.getpid()}-{next(_seq)}-{os.urandom(3).hex()}"


class StoreBucket:
    """The `store` fixture's value: a started store (s3rver or Swift s3api)
    and a fresh bucket that only this test uses.

    Attributes: kind, server, bucket, endpoint, access_key, secret_key, region.
    """

    def __init__(self, server, bucket):
        self.server = server
        self.bucket = bucket

    kind = property(lambda self: self.server.kind)
    endpoint = property(lambda self: self.server.endpoint)
    access_key = property(lambda self: self.server.access_key)
    secret_key = property(lambda self: self.server.secret_key)
    region = property(lambda self: self.server.region)
    host = property(lambda self: self.server.host)
    port = property(lambda self: self.server.port)

    def __repr__(self):
        return f"<{self.kind} {self.endpoint} bucket={self.bucket}>"

    # --- S3 access (boto3) -------------------------------------------------
    def client(self, secret_key=None, endpoint=None):
        return self.server.client(secret_key=secret_key, endpoint=endpoint)

    def keys(self, prefix=""):
        return self.server.list_keys(self.bucket, prefix)

    def get(self, key):
        """(bytes, content_type, etag)"""
        return self.server.get_object(self.bucket, key)

    def put(self, key, data, content_type=None):
        kw = {"ContentType": content_type} if content_type else {}
        self.client().put_object(Bucket=self.bucket, Key=key, Body=data, **kw)

    def head(self, key):
        """HeadObject's answer as a dict, or None when the key is absent."""
        c = self.client()
        try:
            return c.head_object(Bucket=self.bucket, Key=key)
        except c.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def delete(self, key):
        self.client().delete_object(Bucket=self.bucket, Key=key)

    def empty(self, prefix=""):
        self.server.empty_bucket(self.bucket, prefix)

    # --- mod_hgs3cache configuration ----------------------------------------
    def location_conf(self, repo, location="/repo", endpoint=None, enabled=True,
                      **directives):
        """<Location> text that points mod_hgs3cache at this bucket.

        endpoint overrides the store's (e.g. a FaultProxy's); directives are
        more HgS3Cache<Name>=value settings (see httpd.hgs3cache_location)."""
        return hgs3cache_location(location, repo, bucket=self.bucket,
                                  endpoint=endpoint or self.endpoint, region=self.region,
                                  access_key=self.access_key, secret_key=self.secret_key,
                                  enabled=enabled, **directives)

    def proxy(self, log_path=None, **kw):
        """A FaultProxy in front of this store (not started)."""
        return FaultProxy.for_store(self.server, log_path=log_path, **kw)
