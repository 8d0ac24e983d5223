"""The official openEO process conformance tests (openeo-processes `tests/*.json5`) against the engine.

One case per test entry of every process the engine registers (`<process>-<index>`, the index of the
entry in the file). Each runs as a one-node process graph through `evaluate_graph`; see
`openeo_json5` for how the test encoding is decoded and compared, and for the upstream entries that
are corrected (`ERRATA`, the failure message names the correction) or skipped as inconsistent
(`BROKEN`). Experimental processes run like the others once the engine registers them. Also
skipped: entries using (in `required` or in child process graphs) processes the engine lacks, and
entries the runner can't encode (the reason says which).
"""

from __future__ import annotations

from typing import Any

import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
from stratus_processing.env import EvalEnv
from stratus_processing.graph import evaluate_graph
from stratus_processing.registry import DEFAULT_REGISTRY

from tests.conformance.openeo_json5 import TESTS_DIR, Case, Mismatch, Unencodable, assert_matches, decode, load_cases
from tests.support import require_shared


def _params() -> list[Any]:
    if not TESTS_DIR.exists():
        return [pytest.param(None, id="conformance-suite-absent")]
    registered = set(DEFAULT_REGISTRY)
    params = []
    for case in load_cases(process_ids=registered):
        marks = []
        missing = sorted(case.processes_used - registered)
        if case.broken:
            marks.append(pytest.mark.skip(reason=f"upstream test entry inconsistent: {case.broken}"))
        elif missing:
            marks.append(pytest.mark.skip(reason=f"needs unregistered process(es): {', '.join(missing)}"))
        params.append(pytest.param(case, id=case.test_id, marks=marks))
    return params


def run_case(case: Case) -> None:
    """Evaluate the entry and check it against `returns` / `throws` (raises `Mismatch` on failure).

    With both `returns` and `throws` either outcome passes (the spec's "effectively optional" test)."""
    entry = case.entry
    throws = entry.get("throws")
    try:
        arguments = decode(entry.get("arguments") or {}, TESTS_DIR)
    except Unencodable as exc:
        pytest.skip(f"not encodable: {exc}")

    graph = {"n": {"process_id": case.process_id, "arguments": arguments, "result": True}}
    try:
        result = evaluate_graph(graph, EvalEnv())
    except Exception as exc:  # noqa: BLE001  (any exception is a candidate for `throws`)
        if throws is None:
            raise
        code = getattr(exc, "code", None)
        if throws is not True and code != throws:
            raise Mismatch(f"expected the exception {throws}, got {type(exc).__name__} with code {code!r}: "
                           f"{exc}{_corrected(case)}") from exc
        return

    if "returns" not in entry:
        raise Mismatch(f"expected the exception {'(any)' if throws is True else throws}, but it returned "
                       f"{result!r:.200}{_corrected(case)}")
    try:
        assert_matches(entry["returns"], result, delta=case.delta, base_dir=TESTS_DIR)
    except Unencodable as exc:
        pytest.skip(f"not encodable: {exc}")
    except Mismatch as exc:
        raise Mismatch(f"{exc}{_corrected(case)}") from None


def _corrected(case: Case) -> str:
    return f"\n(entry corrected by the runner: {case.erratum})" if case.erratum else ""


@pytest.mark.parametrize("case", _params())
def test_openeo_process(case: Case | None) -> None:
    require_shared(TESTS_DIR)
    assert case is not None
    run_case(case)
