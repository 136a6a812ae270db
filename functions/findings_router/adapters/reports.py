"""Where the PSIRT digest writes its CSV reports: an S3 bucket (the stack's), or a dict for tests and the demo."""

from __future__ import annotations

from typing import Any


class S3Reports:
    """PutObject into the stack's report bucket (SSE-S3 by the bucket's default encryption, TLS only)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def put(self, key: str, body: str, content_type: str = "text/csv; charset=utf-8") -> str:
        # The same key for a retried run of the same period: a retry overwrites its own report, never adds one.
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode("utf-8"), ContentType=content_type)
        return f"s3://{self.bucket}/{key}"


class InMemoryReports:
    def __init__(self, bucket: str = "reports") -> None:
        self.bucket = bucket
        self.objects: dict[str, str] = {}

    def put(self, key: str, body: str, content_type: str = "text/csv; charset=utf-8") -> str:
        self.objects[key] = body
        return f"s3://{self.bucket}/{key}"
