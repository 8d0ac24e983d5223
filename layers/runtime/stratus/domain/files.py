"""The user workspace: openEO API v1.2 `/files` (list-files, download-file, upload-file, delete-file).

Every storage key is built from the caller's id plus a validated path (`catalog_layout.user_file_key`),
so no request can name another user's file: isolation holds by construction, not by a check that could
be forgotten. Pure domain code: the object store comes in through the `FileStore` port below.

Quota: a bytes counter per user and the size accounted for each file live in a ledger (the limits
table) and change together in one conditional transaction before an upload is stored, so parallel
uploads cannot pass the quota together. The counter starts, on a user's first upload, from the bytes
the workspace already holds; a failed upload and a delete give their bytes back. Two parallel uploads
to the same path may be stored in the other order than they were accounted; the ledger can then be off
by at most one upload's size for that file.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from stratus import catalog_layout
from stratus.errors import (
    BadRequestException,
    FileNotFoundException,
    FilePathInvalidException,
    FileSizeExceededException,
    FileOperationUnsupportedException,
    FolderOperationUnsupportedException,
    StorageQuotaExceededException,
)

# Characters the spec's `file.path` pattern excludes (besides CR/LF, covered by the control characters).
_FORBIDDEN_CHARS = frozenset("\\:'\"")


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int  # bytes
    modified: datetime


@dataclass(frozen=True)
class UserFile:
    path: str  # relative to the user's workspace root, never starting with `/`
    size: int  # bytes
    modified: datetime


@dataclass(frozen=True)
class Download:
    """Either the content (small files) or a presigned URL to fetch it from."""

    body: bytes | None = None
    redirect_url: str | None = None


@dataclass(frozen=True)
class StorageUsage:
    used: int  # bytes
    quota: int  # bytes

    @property
    def free(self) -> int:
        return max(0, self.quota - self.used)


class FileStore(Protocol):
    def head(self, key: str) -> StoredObject | None: ...

    def list(self, prefix: str, limit: int, start_after: str | None) -> tuple[list[StoredObject], bool]:
        """Up to `limit` objects under `prefix` in key order after `start_after`; and whether more follow."""
        ...

    def has_prefix(self, prefix: str) -> bool: ...

    def total_size(self, prefix: str) -> int: ...

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, body: bytes) -> StoredObject: ...

    def delete(self, key: str) -> None: ...

    def presign_get(self, key: str, expires_in_s: int) -> str: ...


class LedgerOutcome(Enum):
    DONE = "done"
    QUOTA = "quota"  # the change would pass the quota
    CONFLICT = "conflict"  # the file's recorded size changed meanwhile: read again


class FileQuotaLedger(Protocol):
    def total(self, user_id: str) -> int | None:
        """The user's accounted bytes; None before the first upload."""
        ...

    def start(self, user_id: str, used: int) -> None:
        """Starts the counter at `used` unless it exists."""
        ...

    def recorded(self, storage_key: str) -> int | None:
        """The size accounted for a file; None if none is (no file, or one older than the counter)."""
        ...

    def change(self, user_id: str, storage_key: str, expected: int | None, old: int, new: int | None,
               quota: int) -> LedgerOutcome:
        """Atomically: records `new` as the file's size (None: forgets it) if its recorded size is still
        `expected`, and adds `new - old` to the user's counter if the counter stays within `quota`."""
        ...


def validate_path(path: str, max_bytes: int) -> str:
    """The workspace path as given, if safe; else `FilePathInvalidException`.

    Refused: empty, absolute (`/...`), empty segments (`a//b`, `a/`), `.` and `..` segments, backslashes,
    the spec's other excluded characters (`:'"`), control characters and paths over `max_bytes` (UTF-8).
    """
    if not path:
        raise FilePathInvalidException(reason="the path is empty")
    if len(path.encode("utf-8", errors="surrogatepass")) > max_bytes:
        raise FilePathInvalidException(reason=f"the path is longer than {max_bytes} bytes")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in path):
        raise FilePathInvalidException(reason="the path contains control or unassigned characters")
    if any(c in _FORBIDDEN_CHARS for c in path):
        raise FilePathInvalidException(reason="the path contains one of \\ : ' \"")
    if path.startswith("/"):
        raise FilePathInvalidException(reason="the path must be relative to the workspace root")
    for segment in path.split("/"):
        if segment == "":
            raise FilePathInvalidException(reason="the path contains an empty segment")
        if segment in (".", ".."):
            raise FilePathInvalidException(reason="the path contains a relative reference (. or ..)")
    return path


class FileService:
    def __init__(self, store: FileStore, quota_bytes: int, max_upload_bytes: int, inline_max_bytes: int,
                 presign_expiry_s: int, max_path_bytes: int, ledger: FileQuotaLedger) -> None:
        self._store = store
        self._ledger = ledger
        self._quota = quota_bytes
        self._max_upload = max_upload_bytes
        self._inline_max = inline_max_bytes
        self._expiry = presign_expiry_s
        self._max_path = max_path_bytes

    def _key(self, user_id: str, path: str) -> str:
        return catalog_layout.user_file_key(user_id, validate_path(path, self._max_path))

    def list_files(self, user_id: str, limit: int, after: str | None) -> tuple[list[UserFile], str | None]:
        """GET /files: a page of the user's files in path order, and the `after` token of the next page."""
        prefix = catalog_layout.user_files_prefix(user_id)
        try:
            start_after = self._key(user_id, after) if after else None
        except FilePathInvalidException:
            raise BadRequestException(reason="`after` is not a page token of this listing") from None
        objects, more = self._store.list(prefix, limit, start_after)
        files = [UserFile(o.key[len(prefix):], o.size, o.modified) for o in objects]
        return files, (files[-1].path if more and files else None)

    def download(self, user_id: str, path: str) -> Download:
        """GET /files/{path}. Raises `FilePathInvalidException`, `FileOperationUnsupportedException`
        (the path is a folder) or `FileNotFoundException`."""
        key = self._key(user_id, path)
        stored = self._store.head(key)
        if stored is None:
            self._raise_missing(key, path)
        if stored.size <= self._inline_max:
            return Download(body=self._store.read(key))
        return Download(redirect_url=self._store.presign_get(key, self._expiry))

    def upload(self, user_id: str, path: str, body: bytes) -> UserFile:
        """PUT /files/{path}: creates or replaces the file. Raises `FilePathInvalidException`,
        `FileSizeExceededException`, `FolderOperationUnsupportedException` (a folder has this path) or
        `StorageQuotaExceededException`."""
        key = self._key(user_id, path)
        if len(body) > self._max_upload:
            raise FileSizeExceededException(size=f"{self._max_upload} bytes")
        if self._store.has_prefix(key + "/"):
            raise FolderOperationUnsupportedException()
        if any(self._store.head(parent) for parent in _parent_keys(key, catalog_layout.user_files_prefix(user_id))):
            raise FilePathInvalidException(reason="a parent folder of the path is a file")
        existing = self._store.head(key)
        previous = self._account(user_id, key, len(body), existing.size if existing else 0)
        try:
            stored = self._store.write(key, body)
        except Exception:
            self._give_back(user_id, key, len(body), previous)
            raise
        return UserFile(path, stored.size, stored.modified)

    def delete(self, user_id: str, path: str) -> None:
        """DELETE /files/{path}. Raises `FilePathInvalidException`, `FileOperationUnsupportedException` or
        `FileNotFoundException`. Folders exist only as key prefixes, so emptied folders vanish by themselves."""
        key = self._key(user_id, path)
        stored = self._store.head(key)
        if stored is None:
            self._raise_missing(key, path)
        self._account(user_id, key, None, stored.size)
        self._store.delete(key)

    def usage(self, user_id: str) -> StorageUsage:
        """Bytes the user's workspace holds, and the quota (for `/me`'s `storage`)."""
        return StorageUsage(self._store.total_size(catalog_layout.user_files_prefix(user_id)), self._quota)

    def _account(self, user_id: str, key: str, new_size: int | None, object_size: int) -> int:
        """Books a file's new size (None: its deletion) against the quota before the store is changed;
        returns the size it replaced. Raises `StorageQuotaExceededException`."""
        if self._ledger.total(user_id) is None:
            self._ledger.start(user_id, self._store.total_size(catalog_layout.user_files_prefix(user_id)))
        for _ in range(10):  # only parallel writes of this very file conflict
            recorded = self._ledger.recorded(key)
            old = object_size if recorded is None else recorded
            outcome = self._ledger.change(user_id, key, recorded, old, new_size, self._quota)
            if outcome is LedgerOutcome.DONE:
                return old
            if outcome is LedgerOutcome.QUOTA:
                raise StorageQuotaExceededException()
        raise StorageQuotaExceededException(message="The file is being changed by other requests; please retry.")

    def _give_back(self, user_id: str, key: str, booked: int, previous: int) -> None:
        """Undoes `_account` after a failed write (best effort: the write's error is what the caller sees)."""
        try:
            self._ledger.change(user_id, key, booked, booked, previous, self._quota)
        except Exception:  # noqa: BLE001
            pass

    def _raise_missing(self, key: str, path: str):
        if self._store.has_prefix(key + "/"):
            # openEO API 1.2: GET and DELETE on a folder MUST answer FileOperationUnsupported
            raise FileOperationUnsupportedException()
        raise FileNotFoundException(file=path)


def _parent_keys(key: str, prefix: str) -> list[str]:
    """`users/u/a/b/c.txt` -> `users/u/a`, `users/u/a/b`: a file there would make `key` unlistable as a path."""
    parts = key[len(prefix):].split("/")[:-1]
    return [prefix + "/".join(parts[: i + 1]) for i in range(len(parts))]
