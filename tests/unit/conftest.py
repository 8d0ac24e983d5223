from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from stratus import aws
from stratus.settings import Settings
from stratus.store import models
from stratus_local.provision import _dynamodb_table_args


@pytest.fixture
def tables(monkeypatch):
    """The real table definitions in an in-process emulator."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws.reset_clients()
        settings = Settings()
        models.configure(settings)
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        for key, model in models.TABLES.items():
            ddb.create_table(TableName=getattr(settings, f"{key}_table"), **_dynamodb_table_args(model))
        yield settings
    aws.reset_clients()
    for model in models.TABLES.values():
        model._connection = None
