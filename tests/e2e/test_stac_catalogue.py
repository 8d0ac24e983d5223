"""The catalogue on the whole local system: items ingested by all three routes (Transactions, an S3 put under the
ingest prefix, a harvest of a remote STAC search) are found through `/stac/search`; a malformed item reaches the
ingest DLQ with its reason while the rest of its batch is indexed; re-sending a batch changes nothing. And the
official stac-api-validator's fast subset against the local `/stac/`."""

from __future__ import annotations

import json
import time

import boto3
import pytest
import requests
from botocore.config import Config

from conformance import stac as stac_conformance
from stratus import catalog_layout
from stratus_local.demo_data import _register_in_catalog
from tests.receivers import ALLOWED_PRIVATE_HOST
from tests.support_stac_server import StacTestServer

COLLECTION = "e2e-catalogue"
INDEXED_WITHIN_S = 30  # the batching window (5 s) plus the pollers' and the indexer's own time, with room


def item(item_id: str, day: int, cloud: float, collection: str = COLLECTION) -> dict:
    return {"type": "Feature", "stac_version": "1.1.0", "id": item_id, "collection": collection,
            "geometry": {"type": "Point", "coordinates": [11.3 + day / 100, 46.5]},
            "bbox": [11.3 + day / 100, 46.5, 11.3 + day / 100, 46.5],
            "properties": {"datetime": f"2024-05-{day:02d}T10:00:00Z", "eo:cloud_cover": cloud},
            "links": [], "assets": {"data": {"href": f"https://data.example/{item_id}.tif", "type": "image/tiff"}}}


@pytest.fixture(scope="module")
def stac(local_system):
    return f"{local_system.api_url.rstrip('/')}/stac"


@pytest.fixture(scope="module")
def aws_client(local_system):
    def client(service: str):
        return boto3.client(service, endpoint_url=local_system.endpoint_url, region_name="eu-central-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(signature_version="s3v4"))
    return client


@pytest.fixture(scope="module")
def data_bucket(aws_client):
    buckets = [b["Name"] for b in aws_client("s3").list_buckets()["Buckets"]]
    return next(name for name in buckets if "data" in name)


@pytest.fixture(scope="module")
def own_collection(aws_client, data_bucket):
    """A new own collection of the deployment (what an operator adds to the S3 catalog), for this module only."""
    s3 = aws_client("s3")
    catalog = s3.get_object(Bucket=data_bucket, Key=catalog_layout.catalog_key())["Body"].read()
    collection = {"type": "Collection", "stac_version": "1.1.0", "id": COLLECTION, "title": "E2E catalogue",
                  "description": "End-to-end catalogue test", "license": "CC0-1.0", "links": [],
                  "extent": {"spatial": {"bbox": [[11, 46, 12, 47]]},
                             "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]}}}
    s3.put_object(Bucket=data_bucket, Key=catalog_layout.collection_key(COLLECTION), Body=json.dumps(collection))
    _register_in_catalog(s3, data_bucket, collection)
    yield COLLECTION
    s3.put_object(Bucket=data_bucket, Key=catalog_layout.catalog_key(), Body=catalog)


@pytest.fixture(scope="module")
def writer_token(local_system):
    """The order service's admin (scope `admin`): may write to the catalogue."""
    answer = requests.post(f"{local_system.api_url}/api/v1/auth/token", data={
        "grant_type": "password", "username": "admin@stratus.example", "password": local_system.password}, timeout=30)
    answer.raise_for_status()
    return answer.json()["access_token"]


def found_ids(stac: str, **params) -> list[str]:
    page = requests.get(f"{stac}/search", params={"collections": COLLECTION, "limit": 100, **params}, timeout=30)
    page.raise_for_status()
    return sorted(feature["id"] for feature in page.json()["features"])


def drained(sqs, queue_url: str) -> bool:
    counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return counts["ApproximateNumberOfMessages"] == counts["ApproximateNumberOfMessagesNotVisible"] == "0"


def wait_for(condition, what: str):
    deadline = time.monotonic() + INDEXED_WITHIN_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"not within {INDEXED_WITHIN_S} s: {what}")


def test_items_ingested_by_all_three_routes_are_found(local_system, stac, own_collection, writer_token, aws_client,
                                                      data_bucket):
    auth = {"Authorization": f"Bearer basic//{writer_token}"}
    sqs = aws_client("sqs")
    dlq = sqs.get_queue_url(QueueName="stratus-ingest-dlq")["QueueUrl"]

    # 1. Transactions: an ItemCollection, queued (202)
    posted = requests.post(f"{stac}/collections/{COLLECTION}/items", headers=auth, timeout=30, json={
        "type": "FeatureCollection", "features": [item("tx-1", 1, 5.0), item("tx-2", 2, 60.0)]})
    assert posted.status_code == 202, posted.text
    refused = requests.post(f"{stac}/collections/{COLLECTION}/items", json=item("anon", 3, 1.0), timeout=30)
    assert refused.status_code == 403

    # 2. S3: a batch with a malformed item (no datetime) among good ones, put under the ingest prefix
    malformed = {**item("s3-bad", 4, 1.0), "properties": {"eo:cloud_cover": 1.0}}
    batch = {"type": "FeatureCollection", "features": [item("s3-1", 5, 10.0), malformed, item("s3-2", 6, 20.0)]}
    aws_client("s3").put_object(Bucket=data_bucket, Key=f"ingest/{COLLECTION}/batch-1.json", Body=json.dumps(batch))

    # 3. a harvest of a remote STAC API's search (through the outbound guard; the e2e system allow-lists the
    # loopback name `localhost` as an operator's own host)
    remote = [item(f"remote-{n}", 10 + n, 30.0 + n, collection="far-away") for n in range(3)]
    with StacTestServer(collections=[{"id": "far-away"}], items=remote) as server:
        server.url = server.url.replace("127.0.0.1", ALLOWED_PRIVATE_HOST)  # its pages' `next` links too
        harvested = requests.post(f"{stac}/collections/{COLLECTION}/harvests", headers=auth, timeout=60, json={
            "url": f"{server.api_url}/search", "search": {"collections": ["far-away"], "limit": 2}})
    assert harvested.status_code == 202, harvested.text
    assert harvested.json()["queued"] == 3, harvested.json()

    expected = ["remote-0", "remote-1", "remote-2", "s3-1", "s3-2", "tx-1", "tx-2"]
    wait_for(lambda: found_ids(stac) == expected, f"all of {expected} indexed")
    assert found_ids(stac, filter="\"eo:cloud_cover\" < 15") == ["s3-1", "tx-1"]
    assert found_ids(stac, bbox="11.395,46,11.5,47") == ["remote-0", "remote-1", "remote-2"]

    parked = wait_for(lambda: sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"],
                                                  MaxNumberOfMessages=10).get("Messages"), "the bad item parked")
    bad = [m for m in parked if json.loads(m["Body"]).get("item_id") == "s3-bad"]
    assert bad and "datetime" in bad[0]["MessageAttributes"]["reason"]["StringValue"]

    # re-sending the S3 batch (a second event for the same object) and a Transactions batch changes nothing
    before = requests.get(f"{stac}/search", params={"collections": COLLECTION, "limit": 100}, timeout=30).json()
    aws_client("s3").put_object(Bucket=data_bucket, Key=f"ingest/{COLLECTION}/batch-1.json", Body=json.dumps(batch))
    requests.post(f"{stac}/collections/{COLLECTION}/items", headers=auth, timeout=30, json={
        "type": "FeatureCollection", "features": [item("tx-1", 1, 5.0), item("tx-2", 2, 60.0)]})
    ingest = sqs.get_queue_url(QueueName="stratus-ingest")["QueueUrl"]
    wait_for(lambda: drained(sqs, ingest), "the re-sent batches indexed")
    after = requests.get(f"{stac}/search", params={"collections": COLLECTION, "limit": 100}, timeout=30).json()
    assert after["features"] == before["features"] and after["numberMatched"] == len(expected)

    # a delete goes the same way
    deleted = requests.delete(f"{stac}/collections/{COLLECTION}/items/tx-2", headers=auth, timeout=30)
    assert deleted.status_code == 202
    wait_for(lambda: "tx-2" not in found_ids(stac), "tx-2 deleted")


def test_stac_api_validator_fast_subset_reports_no_error(stac, local_system):
    if not stac_conformance.VALIDATOR_PYTHON.exists():
        pytest.fail(f"{stac_conformance.VALIDATOR_PYTHON} is missing: `make test` builds it (or set "
                    "STAC_API_VALIDATOR_PYTHON)")
    logged_before = len(local_system.output)
    report = stac_conformance.validate(f"{stac}/", stac_conformance.FAST_CLASSES)
    server_errors = [line for line in local_system.output[logged_before:]
                     if '"level":"ERROR"' in line or "Traceback" in line or "Error" in line]
    assert report.errors == [], "\n".join([report.summary(), *report.errors, "the system logged meanwhile:",
                                           *server_errors[-40:]])
