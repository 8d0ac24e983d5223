"""The user workspace (`/files`) through the real handler: round trip, path safety, isolation, quota, paging."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import boto3
import pytest

from stratus import catalog_layout, resources
from stratus.settings import ENV

FILES = "/openeo/1.2/files"
BINARY = bytes(range(256)) * 16 + b"\r\n\x00end"  # every byte value, CR/LF and NUL included


def upload(api, path: str, body: bytes, user: str = "alice", content_type: str | None = "application/octet-stream"):
    return api.put(f"{FILES}/{path}", user=user, data=body, content_type=content_type)


def bucket_keys(api) -> list[str]:
    s3 = boto3.client("s3", region_name="eu-central-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=api.settings.files_bucket).get("Contents", [])]


def reload_backend(monkeypatch, **settings: str) -> None:
    """Restart the API 'container' with changed settings (the handler caches its backend)."""
    for name, value in settings.items():
        monkeypatch.setenv(ENV[name], value)
    sys.modules["routers.shared.context"].backend.cache_clear()


def test_upload_list_download_delete_round_trip(api):
    # Given alice uploads binary content into a folder
    response = upload(api, "folder/sub/data.bin", BINARY)
    # Then the file's metadata comes back
    assert response.status == 200
    meta = response.json()
    assert meta["path"] == "folder/sub/data.bin" and meta["size"] == len(BINARY)
    assert meta["modified"].endswith("Z")
    # When listing, the file is there with the same metadata
    listing = api.get(FILES, user="alice").json()
    assert listing == {"files": [meta], "links": []}
    # When downloading, the bytes are exactly the uploaded ones
    download = api.get(f"{FILES}/folder/sub/data.bin", user="alice")
    assert download.status == 200 and download.body == BINARY
    assert download.headers["content-type"] == "application/octet-stream"
    # When deleting, it is gone (and so is its folder)
    assert api.delete(f"{FILES}/folder/sub/data.bin", user="alice").status == 204
    assert api.get(FILES, user="alice").json()["files"] == []
    gone = api.get(f"{FILES}/folder/sub/data.bin", user="alice")
    assert gone.status == 404 and gone.json()["code"] == "FileNotFound"
    assert api.get(f"{FILES}/folder", user="alice").json()["code"] == "FileNotFound"


def test_upload_without_content_type_replaces_the_file(api):
    # Given a file (the openEO client sends no Content-Type for uploads)
    assert upload(api, "notes.txt", b"first version", content_type=None).status == 200
    # When uploading to the same path again
    response = upload(api, "notes.txt", b"v2", content_type=None)
    # Then the file is replaced
    assert response.json()["size"] == 2
    assert api.get(f"{FILES}/notes.txt", user="alice").body == b"v2"
    assert [f["path"] for f in api.get(FILES, user="alice").json()["files"]] == ["notes.txt"]


def test_empty_file_and_special_characters(api):
    # Given an empty file under a path with non-ASCII characters and spaces (the client URL-encodes them)
    path = "europe/österreich/münster file.shp"
    assert upload(api, "europe/%C3%B6sterreich/m%C3%BCnster%20file.shp", b"").status == 200
    # Then it is listed under its decoded path and downloads as empty
    assert [f["path"] for f in api.get(FILES, user="alice").json()["files"]] == [path]
    download = api.get(f"{FILES}/europe/%C3%B6sterreich/m%C3%BCnster%20file.shp", user="alice")
    assert download.status == 200 and download.body == b""


TRAVERSALS = [
    "../secret.txt",
    "a/../../bob/secret.txt",
    "%2e%2e/secret.txt",
    "a/%2E%2E/%2e%2e/x",
    "a/./b",
    ".",
    "..",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "a//b",
    "a/",
    "..%5Csecret.txt",
    "a%5C..%5C..%5Cb",
    "C:%5Cwindows",
    "a%00b",
    "a%0Ab",
    "a%0D%0Ab",
    "a%1Bb",
    "a%E2%80%AEb",  # right-to-left override
    "it%27s",
    "x" * (resources.FILES_MAX_PATH_BYTES + 1),
    "%C3%A4" * (resources.FILES_MAX_PATH_BYTES // 2 + 1),  # short in characters, long in UTF-8 bytes
]


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
def test_unsafe_paths_are_refused(api, method):
    # Given a file of bob's that a traversal might aim at
    upload(api, "secret.txt", b"bob's", user="bob")
    for path in TRAVERSALS:
        # When alice uses an unsafe path
        response = api.request(method, f"{FILES}/{path}", user="alice",
                               data=b"x" if method == "PUT" else None, content_type="application/octet-stream")
        # Then it is refused before any storage access
        assert response.status == 400, (path, response.body)
        assert response.json()["code"] == "FilePathInvalid", path
    # And nothing was written, bob's file untouched
    assert bucket_keys(api) == [catalog_layout.user_file_key("bob", "secret.txt")]
    assert api.get(f"{FILES}/secret.txt", user="bob").body == b"bob's"


def test_other_users_files_are_unreachable(api):
    # Given alice's file
    upload(api, "private/secret.txt", b"alice's secret")
    # When bob lists, his workspace is empty
    assert api.get(FILES, user="bob").json() == {"files": [], "links": []}
    # When bob downloads or deletes the same path, it does not exist for him
    for method in ("GET", "DELETE"):
        response = api.request(method, f"{FILES}/private/secret.txt", user="bob")
        assert response.status == 404 and response.json()["code"] == "FileNotFound"
    # When bob uploads to the same path, he writes his own file
    upload(api, "private/secret.txt", b"bob's", user="bob")
    # Then alice's file is unchanged and each sees only their own
    assert api.get(f"{FILES}/private/secret.txt", user="alice").body == b"alice's secret"
    assert api.get(f"{FILES}/private/secret.txt", user="bob").body == b"bob's"
    assert [f["size"] for f in api.get(FILES, user="alice").json()["files"]] == [14]
    assert [f["size"] for f in api.get(FILES, user="bob").json()["files"]] == [5]
    # And the pagination token cannot leave the caller's workspace: it is not a token of this listing
    escape = api.get(f"{FILES}?after=../alice/", user="bob")
    assert escape.status == 400 and escape.json()["code"] == "BadRequest"
    assert sorted(bucket_keys(api)) == sorted([catalog_layout.user_file_key("alice", "private/secret.txt"),
                                               catalog_layout.user_file_key("bob", "private/secret.txt")])


def test_user_ids_cannot_name_another_workspace():
    # Given a user id that looks like a path into alice's workspace
    # Then its prefix is a different, sibling prefix
    assert not catalog_layout.user_files_prefix("alice/private").startswith(catalog_layout.user_files_prefix("alice"))
    assert catalog_layout.user_files_prefix("alice") == "users/alice/"


def test_files_need_authentication(api):
    upload(api, "a.txt", b"a")
    for method, path in (("GET", FILES), ("GET", f"{FILES}/a.txt"), ("PUT", f"{FILES}/a.txt"),
                         ("DELETE", f"{FILES}/a.txt")):
        response = api.request(method, path, data=b"x" if method == "PUT" else None)
        assert response.status == 401 and response.json()["code"] == "AuthenticationRequired", (method, path)
    assert api.get(f"{FILES}/a.txt", user="alice").body == b"a"


def test_folders_are_not_files(api):
    # Given a file inside a folder
    upload(api, "folder/a.txt", b"a")
    # When addressing the folder itself
    for method, code in (("GET", "FileOperationUnsupported"), ("DELETE", "FileOperationUnsupported"),
                         ("PUT", "FolderOperationUnsupported")):
        response = api.request(method, f"{FILES}/folder", user="alice", data=b"x" if method == "PUT" else None)
        # Then it is refused with the code the spec names for the operation
        assert response.status == 400 and response.json()["code"] == code, method
    # And a file cannot become a folder either
    response = upload(api, "folder/a.txt/b.txt", b"b")
    assert response.status == 400 and response.json()["code"] == "FilePathInvalid"
    assert [f["path"] for f in api.get(FILES, user="alice").json()["files"]] == ["folder/a.txt"]


def test_quota_is_enforced_on_upload(api, monkeypatch):
    # Given a quota of 1000 bytes and 600 bytes used
    reload_backend(monkeypatch, files_quota_bytes="1000")
    assert upload(api, "a.bin", b"a" * 600).status == 200
    # When uploading another 600 bytes
    response = upload(api, "b.bin", b"b" * 600)
    # Then the quota is exceeded and nothing is stored
    assert response.status == 400 and response.json()["code"] == "StorageQuotaExceeded"
    assert [f["path"] for f in api.get(FILES, user="alice").json()["files"]] == ["a.bin"]
    # But replacing the existing file counts only the difference, up to exactly the quota
    assert upload(api, "a.bin", b"a" * 900).status == 200
    assert upload(api, "c.bin", b"c" * 100).status == 200
    assert upload(api, "d.bin", b"d").json()["code"] == "StorageQuotaExceeded"
    # And bob's quota is his own
    assert upload(api, "a.bin", b"b" * 1000, user="bob").status == 200
    # And the usage `/me` will report is the sum of alice's files
    from routers.shared.context import backend
    usage = backend().files.usage("alice")
    assert (usage.used, usage.quota, usage.free) == (1000, 1000, 0)


def test_parallel_uploads_cannot_exceed_the_quota(api, monkeypatch):
    # Given a quota of 1000 bytes
    reload_backend(monkeypatch, files_quota_bytes="1000")
    # When 12 uploads of 300 bytes to different paths run in parallel (at most 3 fit)
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda i: upload(api, f"p{i}.bin", b"p" * 300).status, range(12)))
    # Then exactly 3 are stored and the others refused
    assert sorted(statuses) == [200] * 3 + [400] * 9, statuses
    stored = api.get(FILES, user="alice").json()["files"]
    assert len(stored) == 3 and sum(f["size"] for f in stored) == 900
    # And deleting one gives its bytes back
    assert api.delete(f"{FILES}/{stored[0]['path']}", user="alice").status == 204
    assert upload(api, "again.bin", b"a" * 400).status == 200
    assert upload(api, "over.bin", b"o" * 1).json()["code"] == "StorageQuotaExceeded"


def test_uploads_over_the_size_limit_are_refused(api):
    # Given a body one byte over what fits into one Lambda invocation
    body = b"x" * (resources.FILES_MAX_UPLOAD_BYTES + 1)
    # When uploading it
    response = upload(api, "big.bin", body)
    # Then it is refused with the spec's error and nothing is stored
    assert response.status == 400 and response.json()["code"] == "FileSizeExceeded"
    assert str(resources.FILES_MAX_UPLOAD_BYTES) in response.json()["message"]
    assert bucket_keys(api) == []


def test_large_files_download_through_a_presigned_url(api):
    # Given a file larger than a Lambda response can carry (stored without the API, e.g. by a large upload)
    key = catalog_layout.user_file_key("alice", "big/raster.tif")
    s3 = boto3.client("s3", region_name="eu-central-1")
    s3.put_object(Bucket=api.settings.files_bucket, Key=key, Body=b"\x01" * (resources.FILES_INLINE_DOWNLOAD_BYTES + 1))
    # When alice downloads it
    response = api.get(f"{FILES}/big/raster.tif", user="alice")
    # Then she is redirected to a presigned GET of exactly that object
    assert response.status == 303
    location = urlsplit(response.headers["location"])
    assert location.path.endswith(f"/{api.settings.files_bucket}/{key}")
    assert "X-Amz-Signature=" in location.query
    # And bob is not
    assert api.get(f"{FILES}/big/raster.tif", user="bob").json()["code"] == "FileNotFound"


def test_listing_is_paginated(api):
    # Given five files
    paths = sorted(f"dir{i % 2}/file-{i}.txt" for i in range(5))
    for path in paths:
        upload(api, path, path.encode())
    # When following the `next` links with a page size of 2
    seen, url, pages = [], f"{FILES}?limit=2", 0
    while url:
        page = api.get(url, user="alice").json()
        pages += 1
        assert len(page["files"]) <= 2
        seen += [f["path"] for f in page["files"]]
        nexts = [link["href"] for link in page["links"] if link["rel"] == "next"]
        url = urlsplit(nexts[0]).path + "?" + urlsplit(nexts[0]).query if nexts else None
    # Then every file is listed once, in path order, over three pages
    assert seen == paths and pages == 3


def test_invalid_page_size_is_refused(api):
    for limit in ("0", "-1", "many"):
        response = api.get(f"{FILES}?limit={limit}", user="alice")
        assert response.status == 400 and response.json()["code"] == "BadRequest", limit


def test_capabilities_list_the_file_endpoints(api):
    endpoints = {e["path"]: set(e["methods"]) for e in api.get("/openeo/1.2/").json()["endpoints"]}
    assert endpoints["/files"] == {"GET"}
    assert endpoints["/files/{path}"] == {"GET", "PUT", "DELETE"}
