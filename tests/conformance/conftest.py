"""A per-process table of the openEO conformance results at the end of the pytest run."""

from __future__ import annotations

import re
from collections import defaultdict

_CASE = re.compile(r"test_openeo_processes\.py::test_openeo_process\[(?P<id>[^\]]+)\]$")
_COLUMNS = ("passed", "failed", "skipped", "xfailed")
_OUTCOME_COLUMN = {"passed": "passed", "failed": "failed", "error": "failed", "xpassed": "failed",
                   "skipped": "skipped", "xfailed": "xfailed"}


def _process_of(nodeid: str) -> str | None:
    match = _CASE.search(nodeid)
    if not match:
        return None
    case_id = match.group("id")
    return re.sub(r"-\d+$", "", case_id)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    # One outcome per test; a failure in any phase (e.g. a teardown error after a pass) wins.
    outcome_of: dict[str, str] = {}
    for outcome, reports in terminalreporter.stats.items():
        column = _OUTCOME_COLUMN.get(outcome)
        if column is None:
            continue
        for report in reports:
            nodeid = getattr(report, "nodeid", "") or ""
            if _process_of(nodeid) is not None and outcome_of.get(nodeid) != "failed":
                outcome_of[nodeid] = column
    if not outcome_of:
        return
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_COLUMNS, 0))
    for nodeid, column in outcome_of.items():
        counts[_process_of(nodeid)][column] += 1

    show = [c for c in _COLUMNS if c != "xfailed" or any(row["xfailed"] for row in counts.values())]
    width = max(len("process"), *(len(p) for p in counts))
    write = terminalreporter.write_line
    terminalreporter.section("openEO process conformance")
    write(f"{'process':<{width}}  " + "  ".join(f"{c:>7}" for c in show))
    totals = dict.fromkeys(_COLUMNS, 0)
    for process in sorted(counts):
        for c in _COLUMNS:
            totals[c] += counts[process][c]
        write(f"{process:<{width}}  " + "  ".join(f"{counts[process][c]:>7}" for c in show))
    write("-" * (width + 2 + 9 * len(show)))
    write(f"{'total':<{width}}  " + "  ".join(f"{totals[c]:>7}" for c in show))
