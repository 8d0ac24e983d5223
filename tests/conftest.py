"""Shared fixtures."""

from __future__ import annotations

import functools
import os

import botocore.loaders
import botocore.session
import pytest

from argon2 import PasswordHasher
from stratus.domain import auth
from stratus_local import moto_seams

# Every test builds fresh boto3 sessions (a fresh emulator each time); without this each one parses
# botocore's service models again (about 3 s of JSON per API test). The models are read-only data.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)
# moto's EC2 backend (behind Batch) parses thousands of AMIs per region and emulator; nothing here uses them.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
# conditional writes must be atomic in the emulator too, or tests of races test moto's races
moto_seams.install_dynamodb_atomic_writes()

# Production hashes passwords with argon2id at the library's defaults (64 MiB, 3 passes): about a third of
# the API tests' time went into hashing and checking alice's and bob's passwords. Tests keep the algorithm
# and the code path, at the cheapest parameters; `test_production_hashes_at_the_library_defaults` holds the rest.
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
auth._hasher = TEST_HASHER

# Under pytest-xdist (`make test`), the tests sharing an expensive session fixture run on one worker, so it
# is built once: the CDK synth (tests/infra) and the whole local system (tests/e2e).
_SHARED_SESSION_GROUPS = {"infra": "cdk-synth", "e2e": "local-system"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = os.path.dirname(__file__)
    for item in items:
        top = os.path.relpath(str(item.path), tests_dir).split(os.sep, 1)[0]
        if top in _SHARED_SESSION_GROUPS and item.get_closest_marker("xdist_group") is None:  # else its own
            item.add_marker(pytest.mark.xdist_group(_SHARED_SESSION_GROUPS[top]))


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch):
    """No test may reach real AWS with real credentials."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "eu-central-1",
                        "POWERTOOLS_TRACE_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
