"""Lazily created, per-process boto3 clients (cold starts pay only for what a handler uses)."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

# s3v4 everywhere so presigned URLs look the same against AWS, LocalStack and the embedded emulator.
_S3_CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "path"})


@cache
def client(service: str):
    config = _S3_CONFIG if service == "s3" else None
    return boto3.session.Session().client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients, e.g. after AWS_ENDPOINT_URL changed (tests, local runtime)."""
    client.cache_clear()
