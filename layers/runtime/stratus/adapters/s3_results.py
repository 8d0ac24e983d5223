"""The results bucket for the API side: run snapshots out, manifests in, presigned URLs out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from stratus import catalog_layout
from stratus.adapters.s3_json import is_missing_key, read_json, write_json
from stratus.run_contract import ResultsManifest, RunSnapshot

# Tile records are read this many at once (a restart of a 10,000-tile run reads them all).
RECORD_READERS = 32


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

    def delete_prefix(self, prefix: str, keep: Callable[[str], bool] | None = None) -> None:
        """Every object under `prefix` (but those `keep` names), 1000 keys (S3's DeleteObjects limit) per request."""
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", []) if keep is None or not keep(obj["Key"])]
            if keys:
                self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})

    # --- the run documents of fanned-out runs (`stratus.domain.run_planning.RunDocuments`) ---------------

    def read_document(self, key: str) -> Any | None:
        return read_json(self._s3, self._bucket, key)

    def write_document(self, key: str, document: Any) -> None:
        write_json(self._s3, self._bucket, key, document)

    def read_documents(self, keys: list[str]) -> list[Any]:
        with ThreadPoolExecutor(max_workers=RECORD_READERS) as pool:
            return list(pool.map(self.read_document, keys))

    def modified_at(self, key: str) -> datetime | None:
        try:
            return self._s3.head_object(Bucket=self._bucket, Key=key)["LastModified"]
        except ClientError as error:
            if is_missing_key(error):
                return None
            raise

    def run_ids(self, job_id: str) -> list[str]:
        root = catalog_layout.runs_prefix(job_id)
        paginator = self._s3.get_paginator("list_objects_v2")
        return [common["Prefix"][len(root):].rstrip("/")
                for page in paginator.paginate(Bucket=self._bucket, Prefix=root, Delimiter="/")
                for common in page.get("CommonPrefixes", [])]

    def keys_under(self, prefix: str) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]
