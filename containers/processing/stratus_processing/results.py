"""Where a run's outputs go, and the record of each output the manifest is built from.

`save_result` publishes files through a `ResultStore`; the runner writes the manifest from the
store's records once the graph is done. `S3ResultStore` is the real one (results bucket, run
prefix), `DirectoryResultStore` keeps everything on disk (tests, local debugging).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from stratus import catalog_layout
from stratus.adapters.s3_json import write_json
from stratus.run_contract import ResultsManifest

from stratus_processing.grid import Grid


@dataclass(frozen=True)
class AssetRecord:
    """One published output file, with what the STAC result document says about it."""

    name: str  # asset key in the manifest, also the file name
    key: str  # full S3 key (or path, for a directory store)
    media_type: str
    title: str
    file_size: int  # bytes
    roles: tuple[str, ...] = ("data",)
    file_checksum: str | None = None  # STAC file extension: multihash of the content (sha2-256)
    grid: Grid | None = None
    raster_bands: list[dict[str, Any]] = field(default_factory=list)
    eo_bands: list[dict[str, Any]] | None = None
    datetime: datetime | None = None  # the single acquisition an asset stems from, when it does
    start_datetime: datetime | None = None
    end_datetime: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields of further STAC extensions (e.g. ml-model)


@dataclass(frozen=True)
class PublishedFile:
    key: str
    size: int  # bytes
    checksum: str  # multihash, see `file_checksum`


# Bytes hashed per read: large enough for throughput, small enough to stay out of the memory budget.
_HASH_CHUNK_BYTES = 4 * 1024 * 1024


def file_checksum(path: Path) -> str:
    """The STAC file extension's `file:checksum`: a multihash, here sha2-256 (code 0x12, 32 bytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return "1220" + digest.hexdigest()


class ResultStore(ABC):
    def __init__(self) -> None:
        self.assets: list[AssetRecord] = []

    def unique_name(self, name: str) -> str:
        """`name`, or `name` with a counter when an earlier save_result already used it."""
        taken = {a.name for a in self.assets}
        if name not in taken:
            return name
        stem, dot, suffix = name.rpartition(".")
        stem, suffix = (stem, f".{suffix}") if dot else (name, "")
        counter = 2
        while f"{stem}_{counter}{suffix}" in taken:
            counter += 1
        return f"{stem}_{counter}{suffix}"

    def publish(self, name: str, media_type: str, write: Callable[[Path], None]) -> PublishedFile:
        """Let `write` create the file, then store it."""
        with tempfile.TemporaryDirectory(prefix="stratus-result-") as staging:
            path = Path(staging) / name
            write(path)
            size = path.stat().st_size
            checksum = file_checksum(path)
            return PublishedFile(self._store_file(path, name, media_type), size, checksum)

    def add_asset(self, record: AssetRecord) -> None:
        self.assets.append(record)

    @abstractmethod
    def _store_file(self, path: Path, name: str, media_type: str) -> str: ...

    @abstractmethod
    def write_manifest(self, manifest: ResultsManifest) -> str:
        """Store the manifest (always last: its presence marks the outputs complete); returns its key."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """A file of the results bucket (e.g. a model an earlier job of the same user saved)."""


class S3ResultStore(ResultStore):
    def __init__(self, s3_client: Any, bucket: str, prefix: str) -> None:
        super().__init__()
        self._s3 = s3_client
        self.bucket = bucket
        self.prefix = prefix

    def _store_file(self, path: Path, name: str, media_type: str) -> str:
        key = f"{self.prefix}{name}"
        self._s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": media_type})
        return key

    def write_manifest(self, manifest: ResultsManifest) -> str:
        key = catalog_layout.manifest_key(self.prefix)
        write_json(self._s3, self.bucket, key, manifest.to_json())
        return key

    def read_bytes(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()


class DirectoryResultStore(ResultStore):
    """Keys are paths relative to `root`, laid out like the S3 keys."""

    def __init__(self, root: Path, prefix: str = "") -> None:
        super().__init__()
        self.root = Path(root)
        self.prefix = prefix

    def path_of(self, key: str) -> Path:
        return self.root / key

    def _store_file(self, path: Path, name: str, media_type: str) -> str:
        key = f"{self.prefix}{name}"
        self.path_of(key).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, self.path_of(key))
        return key

    def write_manifest(self, manifest: ResultsManifest) -> str:
        key = catalog_layout.manifest_key(self.prefix)
        self.path_of(key).parent.mkdir(parents=True, exist_ok=True)
        self.path_of(key).write_text(json.dumps(manifest.to_json(), indent=1))
        return key

    def read_bytes(self, key: str) -> bytes:
        return self.path_of(key).read_bytes()
