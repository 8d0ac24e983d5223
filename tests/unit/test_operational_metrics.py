"""The status consumer writes jobs by end status and their duration as CloudWatch EMF lines (`stratus.metrics`),
in the namespace the stack's dashboard and alarms read."""

import importlib.util
import json

from tests.support import REPO_ROOT


def load_function_module(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_ends_and_durations_are_emf_metrics_of_the_stage(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Stratus/test")
    status_app = load_function_module("functions/status/app.py", "status_app_under_test")
    # When a run finishes after 12.5 s, and a progress event passes (no end)
    status_app.record_job_end("finished", {"duration": {"value": 12.5, "unit": "seconds"}})
    status_app.record_job_end("running", {"duration": {"value": 3, "unit": "seconds"}})
    status_app.emf.flush_metrics()
    # Then one EMF line counts the finished job and its duration, in the stage's namespace, by service
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Stratus/test"
    assert {m["Name"] for m in directive["Metrics"]} == {"JobsFinished", "JobDurationSeconds"}
    assert (line["JobsFinished"], line["JobDurationSeconds"], line["service"]) == ([1.0], [12.5], "status")
