"""Fixtures of the CDK synth tests: the app synthesized in-process once per session, with cdk.json's context."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _register_infra_package() -> None:
    """Make `stratus_infra` importable without putting infra/ on sys.path.

    The CDK CLI runs `python infra/app.py`, which puts infra/ on sys.path; doing that here would also expose
    `infra/app.py` as a top-level `app` module and shadow the Lambda functions' `app` modules in other tests.
    """
    if "stratus_infra" in sys.modules:
        return
    package_dir = REPO_ROOT / "infra" / "stratus_infra"
    spec = importlib.util.spec_from_file_location(
        "stratus_infra", package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["stratus_infra"] = module
    spec.loader.exec_module(module)


_register_infra_package()

# jsii prints a banner on every start under Node 20; it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "1")


def pytest_configure(config: pytest.Config) -> None:
    # registered here too, in case pytest-timeout is not installed
    config.addinivalue_line("markers", "timeout(seconds): fail a test that runs longer (pytest-timeout)")


def cdk_json_context() -> dict:
    """The context the CLI would pass (feature flags), so in-process synths match `cdk synth`."""
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


@dataclass(frozen=True)
class Synth:
    stack: object  # StratusStack
    template: object  # aws_cdk.assertions.Template
    resources: dict  # logical id -> resource, from the template JSON
    outdir: Path


def _synthesize(outdir: Path, **context: object) -> Synth:
    """Synthesize the app into `outdir` with cdk.json's context plus `context` (e.g. `{"stratus:spot": "true"}`)."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stratus_infra.config import StratusConfig
    from stratus_infra.stack import build

    from stratus_infra import nag

    app = cdk.App(context={**cdk_json_context(), **context}, outdir=str(outdir))
    stack = build(app, StratusConfig.from_context(app.node))
    nag.check(stack)  # an unaccepted cdk-nag finding fails the synth (the report names it)
    template = Template.from_stack(stack)
    return Synth(stack=stack, template=template, resources=template.to_json()["Resources"], outdir=outdir)


@pytest.fixture(scope="session")
def synthesize():
    return _synthesize


@pytest.fixture(scope="session")  # read-only: the modules share one synth (each costs ~30 s)
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synthesize(tmp_path_factory.mktemp("cdk-out"))
