"""The user workspace (`/files`) through the real openEO client and the local system."""

from __future__ import annotations

import pytest
from openeo.rest import OpenEoApiError

pytestmark = pytest.mark.e2e

CONTENT = bytes(range(256)) * 64 + b"\r\n\x00tail"  # binary, every byte value


def test_upload_list_download_delete_with_the_client(connection, tmp_path):
    # Given a local binary file
    source = tmp_path / "input.bin"
    source.write_bytes(CONTENT)
    target = "e2e/österreich/input data.bin"
    # When uploading it with the client into a folder with special characters
    uploaded = connection.upload_file(source, target=target)
    try:
        # Then the client gets the file's metadata back
        assert str(uploaded.path) == target
        assert uploaded.metadata["size"] == len(CONTENT)
        # And the listing has it
        listed = {str(f.path): f.metadata for f in connection.list_files()}
        assert listed[target]["size"] == len(CONTENT)
        # And the download is byte for byte the upload
        downloaded = connection.get_file(target).download(tmp_path / "downloaded.bin")
        assert downloaded.read_bytes() == CONTENT
    finally:
        # When deleting it, it is gone
        connection.get_file(target).delete()
    assert target not in {str(f.path) for f in connection.list_files()}
    with pytest.raises(OpenEoApiError) as raised:
        connection.get_file(target).download(tmp_path / "again.bin")
    assert raised.value.code == "FileNotFound"


def test_traversal_is_refused_for_the_client(connection, tmp_path):
    source = tmp_path / "x.txt"
    source.write_bytes(b"x")
    with pytest.raises(OpenEoApiError) as raised:
        connection.upload_file(source, target="a/%2e%2e/%2e%2e/escape.txt")
    assert raised.value.code == "FilePathInvalid"
