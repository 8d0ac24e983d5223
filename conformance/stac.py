"""Runs the official stac-api-validator against the local STAC API (`/stac/`) and prints the counts.

    python -m conformance.stac                 # every class we claim, against a freshly started local system
    python -m conformance.stac --fast          # the classes of the fast subset (the one `make test` runs)
    python -m conformance.stac --url http://127.0.0.1:8000/stac/

The validator lives in its own virtualenv (`make` builds `.venv-stac-api-validator` from
`conformance/stac-api-validator.txt`; `STAC_API_VALIDATOR_PYTHON` names another interpreter) and runs offline
through `conformance.stac_offline`. It checks the demo collection; its Query-extension settings name demo
properties with values that exist there. Exit status: 0 when the validator reported no error, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VALIDATOR_PYTHON = Path(os.environ.get("STAC_API_VALIDATOR_PYTHON")
                        or REPO_ROOT / ".venv-stac-api-validator" / "bin" / "python")
COLLECTION = "sentinel-2-l2a-demo"
TIMEOUT_S = 600
# Core, Collections, Features, Item Search, Filter and Sort: what the issue asks to pass, seconds each
FAST_CLASSES = ("core", "collections", "features", "item-search", "filter", "item-search#sort")
FULL_CLASSES = (*FAST_CLASSES, "item-search#fields", "item-search#query", "features#sort", "features#fields",
                "features#query")
# A footprint around the demo's Bolzano area; values of demo item properties for the Query extension's tests
GEOMETRY = {"type": "Polygon", "coordinates": [[[11.0, 46.0], [12.0, 46.0], [12.0, 47.0], [11.0, 47.0], [11.0, 46.0]]]}
QUERY_ARGS = (
    "--fields-nested-property", "properties.platform",
    "--query-comparison-field", "eo:cloud_cover", "--query-eq-value", "0", "--query-neq-value", "0",
    "--query-lt-value", "20", "--query-lte-value", "24.96", "--query-gt-value", "20", "--query-gte-value", "14.99",
    "--query-substring-field", "platform", "--query-starts-with-value", "sentinel",
    "--query-ends-with-value", "2a", "--query-contains-value", "nel-2",
    "--query-in-field", "instruments", "--query-in-values", "msi",
)


@dataclass
class Report:
    status: int
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unchecked_schemas: list[str] = field(default_factory=list)
    output: str = ""

    def summary(self) -> str:
        return (f"stac-api-validator: {len(self.errors)} errors, {len(self.warnings)} warnings"
                f" ({len(self.unchecked_schemas)} extension schemas not checked offline)")


def validate(url: str, classes: Sequence[str], *, token: str | None = None) -> Report:
    arguments = [str(VALIDATOR_PYTHON), "-m", "conformance.stac_offline", "--root-url", url,
                 "--collection", COLLECTION, "--geometry", json.dumps(GEOMETRY), *QUERY_ARGS]
    for name in classes:
        arguments += ["--conformance", name]
    if token:
        arguments += ["--auth-bearer-token", token]
    result = subprocess.run(arguments, cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    return parse(result.returncode, result.stdout + result.stderr)


def parse(status: int, output: str) -> Report:
    report = Report(status, output=output)
    section = None
    for line in output.splitlines():
        if line.startswith("Warnings"):
            section = report.warnings
        elif line.startswith("Errors"):
            section = report.errors
        elif line.startswith("OFFLINE-UNCHECKED "):
            report.unchecked_schemas.append(line.split(" ", 1)[1])
        elif line.startswith("- ") and section is not None:
            section.append(line[2:])
    if status and not report.errors:
        server_errors = "".join(line + "\n" for line in output.splitlines() if line.startswith("SERVER-ERROR "))
        report.errors.append(f"the validator stopped (exit status {status}):\n{server_errors}{output[-3000:]}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.stac", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the STAC API root of a running system (default: start one)")
    parser.add_argument("--fast", action="store_true", help="only " + ", ".join(FAST_CLASSES))
    args = parser.parse_args(argv)
    if not VALIDATOR_PYTHON.exists():
        print(f"{VALIDATOR_PYTHON} is missing: run `make` (or set STAC_API_VALIDATOR_PYTHON)", file=sys.stderr)
        return 1
    with contextlib.ExitStack() as stack:
        url = args.url
        if url is None:
            from conformance.run import local_system

            api_url, _ = stack.enter_context(local_system())
            url = f"{api_url.rstrip('/')}/stac/"
        report = validate(url, FAST_CLASSES if args.fast else FULL_CLASSES)
    for warning in report.warnings:
        print(f"warning: {warning}")
    for error in report.errors:
        print(f"ERROR: {error}")
    print(report.summary())
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
