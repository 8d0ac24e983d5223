"""The results bucket for the API side: run snapshots out, manifests in, presigned URLs out."""

from __future__ import annotations

from typing import Any

from stratus.adapters.s3_json import read_json, write_json
from stratus.run_contract import ResultsManifest, RunSnapshot


class S3ResultStore:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def read_manifest(self, key: str) -> ResultsManifest | None:
        document = read_json(self._s3, self._bucket, key)
        return None if document is None else ResultsManifest.from_json(document)

    def write_snapshot(self, key: str, snapshot: RunSnapshot) -> None:
        write_json(self._s3, self._bucket, key, snapshot.to_json())

    def presign(self, key: str, expires_in_s: int) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in_s
        )

    def read_bytes(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()

    def delete_prefix(self, prefix: str) -> None:
        """Every object under `prefix`, 1000 keys (S3's DeleteObjects limit) per request."""
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})
