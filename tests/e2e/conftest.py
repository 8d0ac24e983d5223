"""Starts the whole local system (`python -m stratus_local`) once for the e2e tests, on free ports."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import boto3
import openeo
import pytest
from botocore.config import Config

from conformance.run import local_system as start_local_system
from tests.receivers import ALLOWED_PRIVATE_HOST
from tests.support_stac_server import earth_search_server, real_data_dir

DEFAULT_COLLECTIONS = Path(__file__).parents[2] / "infra" / "collections" / "default.json"
EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"


class RunningSystem:
    def __init__(self, api_url: str, password: str, output: list[str]) -> None:
        self.api_url = api_url
        self.user = "demo"
        self.password = password
        self.output = output

    def printed(self, label: str) -> str:
        """A value from the start banner, e.g. `printed("embedded AWS")`."""
        line = next(line for line in self.output if line.strip().startswith(f"{label}:"))
        return line.split(f"{label}:", 1)[1].strip()

    @property
    def endpoint_url(self) -> str:
        return self.printed("embedded AWS")

    @property
    def oidc_client(self) -> tuple[str, str]:
        """The machine client (client-credentials grant) of the local Cognito pool."""
        return self.printed("oidc client id"), self.printed("oidc client secret")


@pytest.fixture(scope="session")
def earth_search(tmp_path_factory):
    """The recorded Earth Search v1 documents and real COGs on a local server, and the shipped default
    collections configuration pointed at it (allow-listed, like an operator's own STAC host); None (and the
    default configuration as shipped) where the real data is absent."""
    data = real_data_dir()
    if data is None:
        yield None, None
        return
    with earth_search_server(data) as server:
        config = json.loads(DEFAULT_COLLECTIONS.read_text(encoding="utf-8"))
        for entry in config["collections"]:
            entry["url"] = entry["url"].replace(EARTH_SEARCH, server.api_url)
        config["allowed_private_hosts"] = ["127.0.0.1"]
        path = tmp_path_factory.mktemp("collections") / "default-on-local-server.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        yield server, path


@pytest.fixture(scope="session")
def local_system(earth_search):
    password = secrets.token_urlsafe(12)
    # the tests' own webhook receivers listen on loopback: allow-listed like an operator's own receivers
    os.environ["STRATUS_ALLOWED_PRIVATE_HOSTS"] = "127.0.0.1"
    # every test registers its customers from 127.0.0.1: more than production's 10 an hour per address
    env = {"STRATUS_ALLOWED_PRIVATE_HOSTS": ALLOWED_PRIVATE_HOST, "STRATUS_REGISTRATIONS_PER_CLIENT_PER_HOUR": "100"}
    _, collections = earth_search
    if collections is not None:
        env["STRATUS_COLLECTIONS"] = str(collections)
    started = time.monotonic()
    try:
        with start_local_system(password, env=env) as (
                api_url, output):
            print(f"\nlocal system ready in {time.monotonic() - started:.1f} s at {api_url}")
            yield RunningSystem(api_url, password, output)
    except RuntimeError as error:  # did not start: the reason is in its output
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def connection(local_system):
    """The real openEO client, logged in as the demo user."""
    return openeo.connect(local_system.api_url).authenticate_basic(local_system.user, local_system.password)


@pytest.fixture(scope="session")
def s3(local_system):
    """Direct access to the embedded S3, for computing references from the source data."""
    return boto3.client("s3", endpoint_url=local_system.endpoint_url, region_name="eu-central-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(signature_version="s3v4"))
