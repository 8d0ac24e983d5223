"""The one S3 JSON reader against the emulator: a missing key reads as None, every other failure raises."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from stratus.adapters.s3_json import is_missing_key, read_json, write_json

BUCKET = "results"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-central-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        yield client


def test_a_written_document_reads_back(s3):
    write_json(s3, BUCKET, "jobs/j/manifest.json", {"assets": {"a": {"key": "k", "file:size": 1.5}}})
    assert read_json(s3, BUCKET, "jobs/j/manifest.json") == {"assets": {"a": {"key": "k", "file:size": 1.5}}}
    assert s3.head_object(Bucket=BUCKET, Key="jobs/j/manifest.json")["ContentType"] == "application/json"


def test_a_missing_key_reads_as_none(s3):
    assert read_json(s3, BUCKET, "jobs/j/nothing.json") is None


def test_head_of_a_missing_key_is_a_missing_key_too(s3):
    with pytest.raises(ClientError) as raised:
        s3.head_object(Bucket=BUCKET, Key="nothing")
    assert is_missing_key(raised.value)


def test_a_missing_bucket_is_not_a_missing_key(s3):
    with pytest.raises(ClientError) as raised:
        read_json(s3, "no-such-bucket", "catalog.json")
    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"


def test_a_body_that_is_not_json_raises(s3):
    s3.put_object(Bucket=BUCKET, Key="broken.json", Body=b"{not json")
    with pytest.raises(ValueError):
        read_json(s3, BUCKET, "broken.json")
