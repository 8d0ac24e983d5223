"""`ResultStore` over the results bucket: manifests in, presigned URLs out."""

from __future__ import annotations

import json
from typing import Any


class S3ResultStore:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def read_manifest(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read())
        except self._s3.exceptions.NoSuchKey:
            return None

    def presign(self, key: str, expires_in_s: int) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in_s
        )

    def read_bytes(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()

    def write_json(self, key: str, value: Any) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=json.dumps(value).encode(),
                            ContentType="application/json")

    def delete_prefix(self, prefix: str) -> None:
        """Every object under `prefix`, 1000 keys (S3's DeleteObjects limit) per request."""
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})
