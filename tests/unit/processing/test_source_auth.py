"""A configured source's auth headers: read from Secrets Manager (the in-process emulator), sent to the
source's own origin only, never to another host its links point at. Real HTTP servers on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from moto import mock_aws
from stratus.collections_config import parse
from stratus_processing.io.sources import ConfiguredCatalog, secrets_manager_headers
from stratus_processing.io.stac import DirectoryJsonStore, DocumentReader, SearchRequest

ITEM = {"type": "Feature", "stac_version": "1.0.0", "id": "scene-1", "bbox": [10, 45, 11, 46],
        "geometry": None, "properties": {"datetime": "2024-05-01T10:00:00Z"},
        "assets": {"data": {"href": "https://example.com/scene-1.tif", "type": "image/tiff", "roles": ["data"]}}}


class RecordingApi:
    """A STAC API answering landing page, collection and search, recording each request's headers;
    its search's `next` link points at `next_url`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.next_url: str | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer()

            def _answer(self) -> None:
                api.requests.append((self.path, dict(self.headers)))
                body = json.dumps(api.document(self.path)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def document(self, path: str) -> dict:
        if path.startswith("/collections/"):
            return {"type": "Collection", "id": "private", "links": [], "item_assets": {
                "data": {"type": "image/tiff", "roles": ["data"]}}}
        if path.startswith("/search"):
            links = [{"rel": "next", "method": "POST", "href": self.next_url, "body": {}}] if self.next_url else []
            return {"type": "FeatureCollection", "features": [ITEM] if self.next_url else [], "links": links}
        return {"type": "Catalog", "id": "root", "conformsTo": [], "links": [
            {"rel": "search", "method": "POST", "href": f"{self.url}/search"}]}

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def apis() -> Iterator[tuple[RecordingApi, RecordingApi]]:
    source, elsewhere = RecordingApi(), RecordingApi()
    source.next_url = f"{elsewhere.url}/search"
    yield source, elsewhere
    source.close()
    elsewhere.close()


def test_auth_headers_from_secrets_manager_reach_the_source_only(apis, tmp_path, monkeypatch):
    source, elsewhere = apis
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="eu-central-1")
        secrets.create_secret(Name="stac/private", SecretString=json.dumps({"Authorization": "Bearer s3cret"}))
        config = parse({"collections": [{"id": "private", "kind": "stac-api", "url": source.url,
                                         "auth_secret": "stac/private"}],
                        "allowed_private_hosts": ["127.0.0.1"]})
        catalog = ConfiguredCatalog(DirectoryJsonStore(tmp_path), documents=DocumentReader(), config=config,
                                    secret_headers=secrets_manager_headers(lambda: secrets))
        collection = catalog.open("private")
        assert [band.name for band in collection.bands] == ["data"]
        assert [item.id for item in collection.search(SearchRequest())] == ["scene-1"]
    assert [path for path, _ in source.requests] == ["/collections/private", "/", "/search"]
    assert all(headers.get("Authorization") == "Bearer s3cret" for _, headers in source.requests)
    assert [path for path, _ in elsewhere.requests] == ["/search"]
    assert "Authorization" not in elsewhere.requests[0][1]


def test_an_unreadable_secret_fails_without_echoing_it(apis, tmp_path):
    source, _ = apis
    config = parse({"collections": [{"id": "private", "kind": "stac-api", "url": source.url,
                                     "auth_secret": "stac/missing"}], "allowed_private_hosts": ["127.0.0.1"]})

    def broken(secret_id: str):
        raise ValueError("the secret must hold a JSON object: {'Authorization': 'Bearer s3cret'}")

    catalog = ConfiguredCatalog(DirectoryJsonStore(tmp_path), documents=DocumentReader(), config=config,
                                secret_headers=broken)
    with pytest.raises(Exception, match="auth secret of collection 'private' is not readable") as raised:
        catalog.open("private")
    assert "s3cret" not in str(raised.value) and source.requests == []
