"""pytest plugin that `conformance.run` loads into every openeo-test-suite run (`-p conformance.plugin`).

It changes how the suite runs, never what a test asserts: it applies the skips and the spec errata of `skips`,
puts the suite's API assets at an absolute path and, where the system has no OIDC client, lets the suite's OIDC
logins use basic auth (each function says why).
"""

from __future__ import annotations

import fnmatch
import functools
import math
import os
import socket
from pathlib import Path
from typing import Any

import openeo
import pytest

from conformance import skips
from conformance.run import suite_tests_dir


def pytest_configure(config: pytest.Config) -> None:
    _absolute_api_assets()
    _spec_errata()
    if os.environ.get("OPENEO_AUTH_METHOD") == "basic":
        _oidc_falls_back_to_basic()


def _absolute_api_assets() -> None:
    """The suite finds `assets/openeo-api` relative to the working directory, but `load_payloads_from_directory`
    joins the directory with paths that already contain it (`os.path.join(dir, dir/x.json)`), which works only
    when the directory is absolute (as in a source checkout, where the first guess hits)."""
    from openeo_test_suite.lib import compliance_util

    guess = compliance_util._guess_root
    compliance_util._guess_root = lambda: Path(guess()).absolute()


def _spec_errata() -> None:
    """WP4 validates responses against openapi.yaml as `skips.spec_errata` corrects it."""
    from openeo_test_suite.lib import compliance_util

    load = compliance_util.adjust_server
    compliance_util.adjust_server = lambda path_to_file, endpoint: skips.spec_errata(load(path_to_file, endpoint))


def _oidc_falls_back_to_basic() -> None:
    """The suite's generic `connection` fixture honours OPENEO_AUTH_METHOD=basic, but WP4 (`bearer_token`) and
    WP5 (the http runner) call `Connection.authenticate_oidc()` regardless. Where the system offers no OIDC
    client, those calls log in with the same basic credentials."""

    def authenticate_oidc(self: openeo.Connection, *args, **kwargs) -> openeo.Connection:
        return self.authenticate_basic(os.environ["OPENEO_AUTH_BASIC_USERNAME"],
                                       os.environ["OPENEO_AUTH_BASIC_PASSWORD"])

    openeo.Connection.authenticate_oidc = authenticate_oidc


def suite_id(item: pytest.Item, tests_dir: Path) -> str:
    """`<path under openeo_test_suite/tests>::<test name>`, the key of `skips.SKIPS`."""
    return f"{Path(item.path).resolve().relative_to(tests_dir).as_posix()}::{item.name}"


def skip_reason(key: str, params: dict[str, Any]) -> str | None:
    reason = _matching(skips.SKIPS, key)
    offline = _matching(skips.OFFLINE_SKIPS, key)
    if reason is None and offline and not _reachable(skips.STAC_SCHEMAS_HOST):
        reason = offline
    if reason is None and key.startswith(skips.PROCESS_TESTS) and "example" in params:
        reason = skips.known_wrong_entries().get(_entry_key(params["process_id"], params["example"]))
        if reason is None and _needs_non_json_numbers(params["example"]):
            reason = skips.NON_JSON_NUMBERS
    return reason


def _matching(reasons: dict[str, str], key: str) -> str | None:
    return next((why for pattern, why in reasons.items() if fnmatch.fnmatchcase(key, pattern)), None)


@functools.cache
def _reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError:
        return False
    return True


def _entry_key(process_id: str, example: dict[str, Any]) -> str | None:
    """`<process id>-<index of the entry in tests/<process id>.json5>`, as in tests/conformance."""
    from openeo_test_suite.lib.process_selection import get_selected_processes

    for process in get_selected_processes():
        if process.process_id == process_id:
            index = next((i for i, test in enumerate(process.tests) if test is example), None)
            return None if index is None else f"{process_id}-{index}"
    return None


def _needs_non_json_numbers(example: dict[str, Any]) -> bool:
    """NaN or ±Infinity in the arguments, or in an expected result other than a data cube or labeled array
    (those come only from arguments the HTTP runner skips by itself: "datacubes not implemented yet")."""
    returns = example.get("returns")
    typed = isinstance(returns, dict) and returns.get("type") in ("datacube", "labeled-array")
    return _has_non_json_number(example.get("arguments")) or (not typed and _has_non_json_number(returns))


def _has_non_json_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value) or math.isinf(value)
    if isinstance(value, dict):
        return any(_has_non_json_number(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_non_json_number(v) for v in value)
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = suite_tests_dir()
    for item in items:
        callspec = getattr(item, "callspec", None)
        reason = skip_reason(suite_id(item, tests_dir), callspec.params if callspec else {})
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"conformance/skips.py: {reason}"))
