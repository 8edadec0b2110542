"""Base class for the S3-compatible stores the tests run against.

Every store fixture (s3rver, Swift s3api) is a subclass with the same
attributes, so tests parametrized over stores never look at which one they got.
"""
import boto3
import botocore.config


class StoreServer:
    kind = "abstract"          # "s3rver" or "swift"
    region = "us-east-1"

    def __init__(self, workdir):
        self.workdir = workdir
        self.endpoint = None   # "http://127.0.0.1:PORT", set by start()
        self.host = "127.0.0.1"
        self.port = None
        self.access_key = None
        self.secret_key = None
        self.ca_file = None    # the CA boto3 trusts for an https endpoint

    def start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def client(self, secret_key=None, endpoint=None):
        """A boto3 S3 client, path-style, SigV4, talking to this store.

        secret_key overrides the secret (to prove the store checks it)."""
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            verify=self.ca_file if self.ca_file else None,
            config=botocore.config.Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=5, read_timeout=60),
        )

    def create_bucket(self, name):
        c = self.client()
        try:
            c.create_bucket(Bucket=name)
        except c.exceptions.BucketAlreadyOwnedByYou:
            pass
        except c.exceptions.BucketAlreadyExists:
            pass

    def list_keys(self, bucket, prefix=""):
        c = self.client()
        keys = []
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys

    def get_object(self, bucket, key):
        """(bytes, content_type, etag) of an object."""
        r = self.client().get_object(Bucket=bucket, Key=key)
        return r["Body"].read(), r.get("ContentType"), r.get("ETag")

    def empty_bucket(self, bucket, prefix=""):
        c = self.client()
        for k in self.list_keys(bucket, prefix):
            c.delete_object(Bucket=bucket, Key=k)

    def env(self):
        """Environment for tools that read AWS_* variables (hgs3, aws cli)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": self.region}
