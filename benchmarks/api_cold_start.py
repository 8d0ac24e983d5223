"""API Lambda import time (the part of a cold start we control).

Measures, in fresh interpreters, `import app` of functions/api against a baseline of the bare
interpreter start plus `import boto3` (what every Python Lambda that talks to AWS pays anyway).
Prints medians and the ratio. Run: `make bench` or `python -m benchmarks.api_cold_start` (`--quick`: 3 runs).
The packages come from `PYTHONPATH` when set (a worktree), else from the installed ones.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
ENV = {"PATH": "", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "eu-central-1",
       **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
QUICK_RUNS = 3


def _time(code: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=ENV, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    runs = QUICK_RUNS if "--quick" in sys.argv[1:] else RUNS
    baseline = _time("import boto3", runs)
    api = _time("import sys; sys.path.insert(0, 'functions/api'); import app", runs)
    print(f"api_cold_start: baseline (python + import boto3) {baseline * 1000:.0f} ms, "
          f"api import {api * 1000:.0f} ms, ratio {api / baseline:.2f}, api-only {(api - baseline) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
