"""Property-based fuzzing of both APIs with schemathesis: every operation of the openEO API v1.2
document and of the order service's own document gets generated requests (valid and invalid), sent
to the real API handler behind the local API Gateway front (WSGI, in-process) over an in-process
emulator. The bar is 0 server errors (status >= 500).

    python -m conformance.fuzz                       # the full run of `make conformance`
    python -m conformance.fuzz --max-examples 5      # a quick look

`tests/api/test_fuzz_api.py` runs a bounded, derandomized subset inside `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
OPENEO_DOCUMENT = REPO_ROOT.parent / "shared" / "conformance" / "openeo-api" / "openapi.yaml"
OPENEO_BASE = "/openeo/1.2"
ORDER_BASE = "/api/v1"
ADMIN_EMAIL = "fuzz-admin@stratus.example"


@dataclass
class FuzzTarget:
    """The API's WSGI app with its emulator, and the Authorization header of each API."""

    app: Any
    openeo_auth: dict[str, str]
    order_auth: dict[str, str]


@contextlib.contextmanager
def fuzz_target() -> Iterator[FuzzTarget]:
    """A fresh deployment in an in-process emulator, a user of each API logged in (the order-service one is an
    admin, so every order route is reachable), and the local API Gateway front in front of the handler."""
    import os

    saved = dict(os.environ)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-central-1", "POWERTOOLS_TRACE_DISABLED": "true",
                       "POWERTOOLS_LOG_LEVEL": os.environ.get("FUZZ_LOG_LEVEL", "ERROR"),
                       "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})

    import boto3
    from moto import mock_aws

    from stratus import aws, resources
    from stratus.backend import Backend
    from stratus.settings import Settings
    from stratus.store import models
    from stratus_local import moto_seams
    from stratus_local.api_front import ApiGatewayFront
    from stratus_local.handlers import handler_for_function_name, load_handler
    from stratus_local.provision import provision

    try:
        with mock_aws():
            # `POST /result` invokes the sync processing function: run it in-process, as the local system does
            moto_seams.install_lambda_seam(lambda info: handler_for_function_name(info.function_name))
            moto_seams.install_dynamodb_atomic_writes()
            aws.reset_clients()
            provisioned = provision(boto3.session.Session(region_name="eu-central-1"), Settings())
            os.environ.update(provisioned.settings.as_env())
            models.configure(provisioned.settings)
            spec = resources.FUNCTIONS["api"]
            handler = load_handler(spec)
            sys.modules["routers.shared.context"].backend.cache_clear()
            backend = Backend(provisioned.settings)
            password = secrets.token_urlsafe(16)
            backend.auth.create_user("fuzzer", password)
            openeo_token = backend.auth.issue_basic_token("fuzzer", password)
            client_id, client_secret = backend.customers.ensure_admin(ADMIN_EMAIL, password, name="Fuzzer")
            order_token = backend.customers.issue_token(
                "client_credentials", {"client_id": client_id, "client_secret": client_secret})["access_token"]
            yield FuzzTarget(app=ApiGatewayFront(handler, "stratus-api", spec.timeout_s),
                             openeo_auth={"Authorization": f"Bearer basic//{openeo_token}"},
                             order_auth={"Authorization": f"Bearer {order_token}"})
            sys.modules["routers.shared.context"].backend.cache_clear()
    finally:
        moto_seams.uninstall_seams()
        os.environ.clear()
        os.environ.update(saved)
        aws.reset_clients()
        for model in models.TABLES.values():
            model._connection = None


def openeo_document() -> dict[str, Any] | None:
    """The official openEO API v1.2 document, served under `OPENEO_BASE`; None where ../shared is absent."""
    if not OPENEO_DOCUMENT.is_file():
        return None
    document = yaml.safe_load(OPENEO_DOCUMENT.read_text())
    document["servers"] = [{"url": OPENEO_BASE}]
    return document


def order_document() -> dict[str, Any]:
    sys.path.insert(0, str(REPO_ROOT / "functions" / "api"))
    from routers.orders.docs import merged_fragments

    return {**merged_fragments(), "servers": [{"url": ORDER_BASE}]}


@dataclass
class FuzzReport:
    requests: int = 0
    by_status: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # "METHOD path -> status: body"
    unsupported: list[str] = field(default_factory=list)  # operations schemathesis could not generate for
    operations: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        classes = Counter(f"{status // 100}xx" for status in self.by_status.elements())
        return (f"{self.operations} operations, {self.requests} requests in {self.seconds:.0f} s: "
                + ", ".join(f"{k} {v}" for k, v in sorted(classes.items()))
                + f"; server errors: {len(self.server_errors)}"
                + (f"; not generated: {len(self.unsupported)}" if self.unsupported else ""))


def fuzz(target: FuzzTarget, document: dict[str, Any], auth: dict[str, str], *, max_examples: int,
         seed: int | None = 0, report: FuzzReport | None = None) -> FuzzReport:
    """Sends generated requests for every operation of `document`; a response >= 500 is recorded with
    its request. Deterministic for a given `seed` (None: random)."""
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis.core.errors import UnsupportedSchema
    from schemathesis.generation import GenerationMode

    report = report or FuzzReport()
    started = time.monotonic()
    schema = schemathesis.openapi.from_dict(document)
    schema.app = target.app  # calls go to the WSGI app in-process

    for result in schema.get_all_operations():
        operation = result.ok()
        report.operations += 1
        # valid requests, and requests that break the schema on purpose (wrong types, missing fields, ...)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_operation(operation.as_strategy(mode), auth, max_examples, seed, report)
            except Unsatisfiable:  # nothing to break: an operation without parameters or body
                continue
            except UnsupportedSchema as unsupported:  # schemathesis cannot negate some schemas (e.g. `not`)
                report.unsupported.append(f"{operation.method.upper()} {operation.path} ({mode.value}): "
                                          f"{str(unsupported)[:120]}")
    report.seconds += time.monotonic() - started
    return report


def _fuzz_operation(strategy: Any, auth: dict[str, str], max_examples: int, seed: int | None,
                    report: FuzzReport) -> None:
    """Up to `max_examples` cases of one operation in one generation mode, each sent once."""
    import hypothesis
    from hypothesis import HealthCheck, Phase

    @hypothesis.given(case=strategy)
    @hypothesis.settings(max_examples=max_examples, deadline=None, database=None, derandomize=seed is not None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                         print_blob=False)
    def check(case) -> None:
        report.requests += 1
        try:
            response = case.call(headers={**(case.headers or {}), **auth})
        except Exception as error:  # the front or the handler crashed: what API Gateway answers with 502
            report.by_status[502] += 1
            report.server_errors.append(f"{case.method} {case.formatted_path} -> crash: {error!r}"[:400])
            return
        report.by_status[response.status_code] += 1
        if response.status_code >= 500:
            report.server_errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                        f"{response.text[:300]}")

    if seed is not None:
        check = hypothesis.seed(seed)(check)
    check()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=100, help="generated requests per operation")
    parser.add_argument("--seed", type=int, default=None, help="fixed seed (default: random)")
    args = parser.parse_args(argv)
    report = FuzzReport()
    with fuzz_target() as target:
        documents = [("order service", order_document(), target.order_auth)]
        openeo = openeo_document()
        if openeo is None:
            print(f"openEO document absent ({OPENEO_DOCUMENT}): fuzzing the order service only")
        else:
            documents.insert(0, ("openEO API", openeo, target.openeo_auth))
        for name, document, auth in documents:
            part = fuzz(target, document, auth, max_examples=args.max_examples, seed=args.seed)
            print(f"fuzz {name}: {part.summary()}")
            report.requests += part.requests
            report.operations += part.operations
            report.seconds += part.seconds
            report.by_status.update(part.by_status)
            report.server_errors += part.server_errors
            report.unsupported += part.unsupported
    for line in report.unsupported:
        print(f"  not generated: {line}")
    for line in report.server_errors[:50]:
        print(f"  5xx: {line}")
    print(f"fuzz total: {report.summary()}")
    return 1 if report.server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
