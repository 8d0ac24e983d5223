"""API Lambda cold start: `import app` (the part of a cold start we control) and import + first requests.

Measures, in fresh interpreters, `import app` of functions/api against a baseline of the bare interpreter start
plus `import boto3` (what every Python Lambda that talks to AWS pays anyway), and a cold start as a client sees
it: the import, then one `GET /openeo/1.2/` and one authenticated `GET /openeo/1.2/jobs` against an emulated
deployment (moto server on localhost, provisioned before the clock runs). The first requests also pay for what
the import leaves to first use: boto3 clients, service models, PynamoDB, the token check (pyjwt).
Prints medians and the import's ratio to the baseline (target: <= 1.5, import <= 350 ms).
Run: `make bench` or `python -m benchmarks.api_cold_start` (`--quick`: 3 runs).
The packages come from `PYTHONPATH` when set (a worktree), else from the installed ones.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNS = 15
QUICK_RUNS = 3
ENV = {"PATH": "", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "eu-central-1",
       **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
IMPORT_TARGET_MS = 350
RATIO_TARGET = 1.5

# A fresh interpreter's cold start: the import, then each event in turn; prints the in-process split (seconds).
_COLD_START = """
import json, sys, time, types
marks = [time.perf_counter()]
sys.path.insert(0, 'functions/api')
import app
marks.append(time.perf_counter())
context = types.SimpleNamespace(function_name='stratus-api', memory_limit_in_mb=1024, aws_request_id='bench',
                                invoked_function_arn='arn:aws:lambda:eu-central-1:123456789012:function:stratus-api')
for event in json.loads(sys.argv[1]):
    response = app.lambda_handler(event, context)
    assert response['statusCode'] == 200, response
    marks.append(time.perf_counter())
print(json.dumps([end - start for start, end in zip(marks, marks[1:])]))
"""


def _time(runs: int, *programs: tuple[str, dict[str, str], tuple[str, ...]]) -> list[tuple[float, list[str]]]:
    """For each (code, env, args): the median wall time of a fresh interpreter running it and each run's last
    output line. The programs take turns, so a change in the machine's load hits them alike."""
    samples: list[list[float]] = [[] for _ in programs]
    outputs: list[list[str]] = [[] for _ in programs]
    for _ in range(runs):
        for i, (code, env, args) in enumerate(programs):
            started = time.perf_counter()
            result = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env, check=True,
                                    capture_output=True, text=True)
            samples[i].append(time.perf_counter() - started)
            outputs[i].append((result.stdout.strip().splitlines() or [""])[-1])
    return [(statistics.median(s), o) for s, o in zip(samples, outputs)]


def _proxy_event(path: str, headers: dict[str, str]) -> dict:
    """A REST API proxy event as the local front builds them (and API Gateway sends them)."""
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from stratus_local.api_front import build_proxy_event

    return build_proxy_event(Request(EnvironBuilder(path=path, method="GET", headers=headers,
                                                    base_url="https://api.example").get_environ()))


def _emulated_deployment() -> tuple[object, dict[str, str], list[dict]]:
    """A moto server with the deployment provisioned and a user; the child's environment and the two events."""
    import boto3

    from stratus import aws
    from stratus.backend import Backend
    from stratus.settings import Settings
    from stratus.store import models
    from stratus_local import moto_seams
    from stratus_local.provision import provision
    from stratus_local.runtime import LOCAL_AWS_ENV

    os.environ.update(LOCAL_AWS_ENV)
    moto_seams.install_dynamodb_atomic_writes()
    server, endpoint_url = moto_seams.start_moto_server()
    os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    aws.reset_clients()
    settings = provision(boto3.session.Session(region_name="eu-central-1"), Settings()).settings
    models.configure(settings)
    backend = Backend(settings)
    backend.auth.create_user("bench", "a-long-password")
    token = backend.auth.issue_basic_token("bench", "a-long-password")
    env = {**ENV, **{k: v for k, v in LOCAL_AWS_ENV.items() if k.startswith("AWS_")}, **settings.as_env(),
           "AWS_ENDPOINT_URL": endpoint_url, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    events = [_proxy_event("/openeo/1.2/", {}),
              _proxy_event("/openeo/1.2/jobs", {"Authorization": f"Bearer basic//{token}"})]
    return server, env, events


def main() -> None:
    runs = QUICK_RUNS if "--quick" in sys.argv[1:] else RUNS
    server, env, events = _emulated_deployment()
    try:
        (baseline, _), (api, _), (cold, outputs) = _time(
            runs, ("import boto3", ENV, ()), ("import sys; sys.path.insert(0, 'functions/api'); import app", ENV, ()),
            (_COLD_START, env, (json.dumps(events),)))
    finally:
        server.stop()
    print(f"api_cold_start: baseline (python + import boto3) {baseline * 1000:.0f} ms, "
          f"api import {api * 1000:.0f} ms (target <= {IMPORT_TARGET_MS}), ratio {api / baseline:.2f} "
          f"(target <= {RATIO_TARGET}), api-only {(api - baseline) * 1000:.0f} ms")
    splits = [json.loads(line) for line in outputs]
    import_s, capabilities_s, jobs_s = (statistics.median(s[i] for s in splits) for i in range(3))
    print(f"api_cold_start: import + GET /openeo/1.2/ + authenticated GET /jobs {cold * 1000:.0f} ms "
          f"(in process: import {import_s * 1000:.0f} ms, capabilities {capabilities_s * 1000:.0f} ms, "
          f"jobs {jobs_s * 1000:.0f} ms; AWS calls go to moto on localhost)")


if __name__ == "__main__":
    main()
