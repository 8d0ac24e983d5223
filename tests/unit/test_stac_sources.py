"""`GuardedSourceFetcher` over real HTTP: auth headers from Secrets Manager go to the source's host only,
redirects are followed and checked again, and what is not a collection is refused."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from moto import mock_aws

from stratus.adapters.stac_sources import GuardedSourceFetcher
from stratus.collections_config import CollectionSource
from stratus.domain.collection_refresh import SourceUnavailable

COLLECTION = {"type": "Collection", "id": "private-s2", "stac_version": "1.0.0", "description": "d",
              "license": "proprietary", "extent": {}, "links": []}


class _Source(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        if self.path == "/moved/collections/private-s2":
            self.send_response(302)
            self.send_header("Location", "/v1/collections/private-s2")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(COLLECTION if self.path == "/v1/collections/private-s2" else {"type": "Catalog"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def source_server():
    _Source.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def secrets(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-central-1")
        client.create_secret(Name="stratus/stac-headers", SecretString=json.dumps({"Authorization": "Bearer s3cr3t"}))
        yield client


def fetcher(secrets_client) -> GuardedSourceFetcher:
    return GuardedSourceFetcher("", lambda: secrets_client, lambda: None)


def test_headers_of_the_auth_secret_reach_the_source_through_a_redirect(source_server, secrets):
    source = CollectionSource(id="private-s2", kind="stac-api", url=f"{source_server}/moved",
                              auth_secret="stratus/stac-headers")
    document = fetcher(secrets).fetch(source, allowed_private_hosts=["127.0.0.1"])
    assert document["id"] == "private-s2"
    assert _Source.seen == [("/moved/collections/private-s2", "Bearer s3cr3t"),
                            ("/v1/collections/private-s2", "Bearer s3cr3t")]


def test_private_sources_need_the_allow_list_and_unknown_secrets_are_named_without_values(source_server, secrets):
    source = CollectionSource(id="private-s2", kind="stac-api", url=f"{source_server}/v1")
    with pytest.raises(SourceUnavailable, match="is not a public address"):
        fetcher(secrets).fetch(source, allowed_private_hosts=[])
    assert _Source.seen == []
    missing = CollectionSource(id="private-s2", kind="stac-api", url=f"{source_server}/v1", auth_secret="nope")
    with pytest.raises(SourceUnavailable, match="the auth secret 'nope' could not be read"):
        fetcher(secrets).fetch(missing, allowed_private_hosts=["127.0.0.1"])


def test_a_document_that_is_no_collection_is_refused(source_server, secrets):
    source = CollectionSource(id="other", kind="stac-api", url=f"{source_server}/v1")
    with pytest.raises(SourceUnavailable, match="not a STAC collection"):
        fetcher(secrets).fetch(source, allowed_private_hosts=["127.0.0.1"])
