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

# Under pytest-xdist (`make test`), the tests sharing an expensive session fixture run on one worker, so it is
# built once: the CDK synth (tests/infra), the whole local system (tests/e2e) and the fan-out e2e's own system.
# (pytest-xdist's `xdist_group` marks do not group under pytest 9, whose test ids they no longer change.)
_SHARED_SESSION_GROUPS = (  # test id prefix -> group, first match
    ("tests/e2e/test_fanout.py", "fanout-system"),
    ("tests/e2e/", "local-system"),
    ("tests/infra/test_synth.py::test_cli_synth_without_docker", "cdk-cli"),  # the CLI, no in-process synth
    ("tests/infra/", "cdk-synth"),
)


def shared_session_group(nodeid: str) -> str | None:
    return next((group for prefix, group in _SHARED_SESSION_GROUPS if nodeid.startswith(prefix)), None)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class SharedSessionScheduling(LoadScopeScheduling):
        """Each group is one unit of work (one worker, in collection order); every other test is its own."""

        def _split_scope(self, nodeid: str) -> str:
            return shared_session_group(nodeid) or nodeid

    return SharedSessionScheduling(config, log)


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch):
    """No test may reach real AWS with real credentials."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "eu-central-1",
                        "POWERTOOLS_TRACE_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
