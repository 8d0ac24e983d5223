"""Workspace path validation and the quota arithmetic of `FileService`, with an in-memory store (no AWS)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from stratus.domain.files import FileService, LedgerOutcome, StoredObject, validate_path
from stratus.errors import FilePathInvalidException, StorageQuotaExceededException


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def head(self, key):
        return StoredObject(key, len(self.objects[key]), datetime.now(timezone.utc)) if key in self.objects else None

    def list(self, prefix, limit, start_after):
        keys = sorted(k for k in self.objects if k.startswith(prefix) and (start_after is None or k > start_after))
        return [self.head(k) for k in keys[:limit]], len(keys) > limit

    def has_prefix(self, prefix):
        return any(k.startswith(prefix) for k in self.objects)

    def total_size(self, prefix):
        return sum(len(v) for k, v in self.objects.items() if k.startswith(prefix))

    def read(self, key):
        return self.objects[key]

    def write(self, key, body):
        self.objects[key] = body
        return self.head(key)

    def delete(self, key):
        self.objects.pop(key, None)

    def presign_get(self, key, expires_in_s):
        return f"https://s3.example/{key}?X-Amz-Expires={expires_in_s}"


class MemoryLedger:
    """The quota ledger's contract in memory (the DynamoDB one is exercised by tests/api)."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.sizes: dict[str, int] = {}

    def total(self, user_id):
        return self.totals.get(user_id)

    def start(self, user_id, used):
        self.totals.setdefault(user_id, used)

    def recorded(self, storage_key):
        return self.sizes.get(storage_key)

    def change(self, user_id, storage_key, expected, old, new, quota):
        if self.sizes.get(storage_key) != expected:
            return LedgerOutcome.CONFLICT
        delta = (new or 0) - old
        if delta > 0 and self.totals[user_id] + delta > quota:
            return LedgerOutcome.QUOTA
        self.totals[user_id] += delta
        if new is None:
            self.sizes.pop(storage_key, None)
        else:
            self.sizes[storage_key] = new
        return LedgerOutcome.DONE


def service(store: MemoryStore, quota: int = 100) -> FileService:
    return FileService(store, quota_bytes=quota, max_upload_bytes=80, inline_max_bytes=10, presign_expiry_s=60,
                       max_path_bytes=64, ledger=MemoryLedger())


@pytest.mark.parametrize("path", ["a.txt", "folder/sub/file.tif", "münster.shp", "with space.txt", "a..b", ".hidden"])
def test_safe_paths_pass(path):
    assert validate_path(path, 64) == path


@pytest.mark.parametrize("path", ["", "/abs", "..", "a/../b", "./a", "a//b", "a/", "a\\b", "c:x", "it's", 'a"b',
                                  "a\x00b", "a\nb", "a\u202eb", "x" * 65, "ä" * 33])
def test_unsafe_paths_fail(path):
    with pytest.raises(FilePathInvalidException):
        validate_path(path, 64)


def test_keys_are_always_under_the_callers_prefix():
    # Given files of two users
    store = MemoryStore()
    files = service(store)
    files.upload("alice", "a.txt", b"alice")
    files.upload("bob", "a.txt", b"bob")
    # Then each key is under its owner's prefix, and listing sees only the caller's
    assert sorted(store.objects) == ["users/alice/a.txt", "users/bob/a.txt"]
    assert [f.path for f in files.list_files("bob", 10, None)[0]] == ["a.txt"]


def test_quota_counts_the_replaced_file_once():
    files = service(MemoryStore(), quota=100)
    files.upload("alice", "a", b"x" * 50)
    files.upload("alice", "b", b"x" * 40)
    files.upload("alice", "a", b"x" * 60)  # 60 + 40 == quota
    with pytest.raises(StorageQuotaExceededException):
        files.upload("alice", "c", b"x")
    assert (files.usage("alice").used, files.usage("alice").free) == (100, 0)


def test_deleting_and_failed_uploads_give_their_bytes_back():
    store = MemoryStore()
    files = service(store, quota=100)
    files.upload("alice", "a", b"x" * 80)
    files.delete("alice", "a")
    files.upload("alice", "b", b"x" * 80)  # the 80 bytes of `a` were given back

    def broken_write(key, body):
        raise OSError("storage down")

    store.write = broken_write
    with pytest.raises(OSError):
        files.upload("alice", "c", b"x" * 20)
    del store.write
    files.upload("alice", "c", b"x" * 20)  # the failed upload's 20 bytes were given back
    with pytest.raises(StorageQuotaExceededException):
        files.upload("alice", "d", b"x")


def test_the_counter_starts_from_files_stored_before_it():
    store = MemoryStore()
    store.objects["users/alice/old"] = b"x" * 70  # stored before the ledger existed
    files = service(store, quota=100)
    with pytest.raises(StorageQuotaExceededException):
        files.upload("alice", "new", b"x" * 31)
    files.upload("alice", "old", b"x" * 80)  # replacing it counts only the difference
    files.delete("alice", "old")
    files.upload("alice", "new", b"x" * 80)


def test_large_files_are_redirected():
    store = MemoryStore()
    files = service(store)
    files.upload("alice", "small", b"x" * 10)
    files.upload("alice", "large", b"x" * 11)
    assert files.download("alice", "small").body == b"x" * 10
    assert files.download("alice", "large").redirect_url.startswith("https://s3.example/users/alice/large")
