"""`FileStore` over the files bucket: the users' workspaces (`/files`)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from stratus.adapters.s3_json import is_missing_key
from stratus.domain.files import StoredObject

_LIST_PAGE = 1000  # S3's own maximum of keys per ListObjectsV2 call


class S3FileStore:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def head(self, key: str) -> StoredObject | None:
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if is_missing_key(error):
                return None
            raise
        return StoredObject(key, head["ContentLength"], head["LastModified"])

    def list(self, prefix: str, limit: int, start_after: str | None) -> tuple[list[StoredObject], bool]:
        args: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix, "MaxKeys": min(limit, _LIST_PAGE)}
        if start_after:
            args["StartAfter"] = start_after
        page = self._s3.list_objects_v2(**args)
        objects = [StoredObject(o["Key"], o["Size"], o["LastModified"]) for o in page.get("Contents", [])]
        return objects, bool(page.get("IsTruncated"))

    def has_prefix(self, prefix: str) -> bool:
        return bool(self._s3.list_objects_v2(Bucket=self._bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"))

    def total_size(self, prefix: str) -> int:
        paginator = self._s3.get_paginator("list_objects_v2")
        return sum(o["Size"] for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix)
                   for o in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()

    def write(self, key: str, body: bytes) -> StoredObject:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/octet-stream")
        stored = self.head(key)
        if stored is None:  # S3 is read-after-write consistent; this would be a bug in the emulator
            raise RuntimeError(f"object {key} vanished right after it was written")
        return stored

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=key)

    def presign_get(self, key: str, expires_in_s: int) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in_s
        )
