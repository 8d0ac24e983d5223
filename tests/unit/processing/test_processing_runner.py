"""Running a job: events, outputs, manifest last, and failure reporting (fake S3 and SQS, no AWS)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from stratus import catalog_layout
from stratus.events import EventPublisher
from stratus.run_contract import RUN_ENVIRONMENT, RunConfig, RunConfigError
from stratus.settings import Settings
from stratus_processing import __main__ as entrypoint
from stratus_processing.io.cog import RasterReader
from stratus_processing import runner
from stratus_processing.registry import DEFAULT_REGISTRY, ProcessRegistry
from stratus_processing.runner import EXIT_FAILED, EXIT_MISCONFIGURED, EXIT_OK, UsageMeter, run_job

from tests.unit.processing.conftest import DEMO_BUCKET
from tests.unit.processing.processing_testkit import BOLZANO_EXTENT, JUNE_2022, RecordingSQS

RESULTS_BUCKET = "results"
STATUS_QUEUE, LOG_QUEUE = "https://sqs/status", "https://sqs/logs"
CONFIG = RunConfig.for_run("j-1", "r-1")


def ndvi_process(collection="sentinel-2-l2a-demo", save=True):
    graph = {
        "load": {"process_id": "load_collection", "arguments": {
            "id": collection, "spatial_extent": BOLZANO_EXTENT, "temporal_extent": JUNE_2022, "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "mean": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {"process_graph": {
                "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
    }
    if save:
        graph["save"] = {"process_id": "save_result", "arguments": {"data": {"from_node": "mean"}, "format": "GTiff"}}
        graph["save"]["result"] = True
    else:
        graph["mean"]["result"] = True
    return {"process_graph": graph}


@pytest.fixture
def sqs():
    return RecordingSQS()


@pytest.fixture
def run(demo_s3, sqs):
    """Store a process for the run and run it against the demo collection."""
    def run_process(process, registry=DEFAULT_REGISTRY):
        if process is not None:
            demo_s3.put_object(Bucket=RESULTS_BUCKET, Key=CONFIG.graph_key, Body=json.dumps(process).encode())
        demo_s3.written.clear()
        settings = Settings(data_bucket=DEMO_BUCKET, results_bucket=RESULTS_BUCKET,
                            status_queue_url=STATUS_QUEUE, log_queue_url=LOG_QUEUE)
        return run_job(CONFIG, settings, s3=demo_s3, publisher=EventPublisher(sqs, STATUS_QUEUE, LOG_QUEUE),
                       rasters=RasterReader(resolve_href=demo_s3.resolve_href), registry=registry)
    yield run_process
    for key in [*demo_s3.written, CONFIG.graph_key]:
        demo_s3.path(RESULTS_BUCKET, key).unlink(missing_ok=True)


def test_a_successful_run(run, demo_s3, sqs):
    # When
    exit_code = run(ndvi_process())
    # Then it exits 0, writes the COG and then the manifest, last
    assert exit_code == EXIT_OK
    prefix = CONFIG.results_prefix
    assert demo_s3.written == [f"{prefix}result.tif", catalog_layout.manifest_key(prefix)]
    manifest = json.loads(demo_s3.path(RESULTS_BUCKET, catalog_layout.manifest_key(prefix)).read_text())
    assert manifest["assets"]["result.tif"]["key"] == f"{prefix}result.tif"
    assert manifest["assets"]["result.tif"]["proj:shape"] == [84, 96]
    # And the status goes running 0 → ... → 100 (with usage), never finished
    statuses = sqs.messages[STATUS_QUEUE]
    assert statuses[0]["status"] == "running" and statuses[0]["progress"] == 0
    assert {s["status"] for s in statuses} == {"running"}
    progress = [s["progress"] for s in statuses]
    assert progress == sorted(progress) and len(progress) >= 3
    assert statuses[-1]["progress"] == 100
    # And the last one carries the run's usage, in the units of the openEO API
    usage = statuses[-1]["usage"]
    assert {name: metric["unit"] for name, metric in usage.items()} == {
        "cpu": "cpu-seconds", "memory": "mb-seconds", "duration": "seconds", "max_memory": "mb"}
    assert usage["cpu"]["value"] > 0 and usage["duration"]["value"] > 0 and usage["max_memory"]["value"] > 10
    assert 0 < usage["memory"]["value"] <= usage["max_memory"]["value"] * usage["duration"]["value"] * 1.01
    assert all("usage" not in s for s in statuses[:-1])
    assert all(s["job_id"] == "j-1" and s["run_id"] == "r-1" for s in statuses)
    # And the log tells the main steps
    messages = [entry["message"] for entry in sqs.messages[LOG_QUEUE]]
    assert messages[0].startswith("Process graph loaded: 4 nodes")
    assert any("6 items" in m and "96 × 84 px" in m for m in messages)
    assert any(m.startswith("save_result: writing") for m in messages)
    assert any(m.startswith("Tiled execution: 1 tile(s)") for m in messages)
    assert all(entry["level"] == "info" for entry in sqs.messages[LOG_QUEUE])


def test_a_run_with_netcdf_and_per_date_outputs(run, demo_s3, sqs):
    # Given NDVI per date saved as netCDF and as one GTiff per date
    process = ndvi_process()
    graph = process["process_graph"]
    graph["save"]["arguments"]["data"] = {"from_node": "ndvi"}
    graph["save"]["arguments"]["format"] = "netCDF"
    graph["save"].pop("result")
    graph["tifs"] = {"process_id": "save_result", "result": True,
                     "arguments": {"data": {"from_node": "ndvi"}, "format": "GTiff"}}
    del graph["mean"]
    # When
    assert run(process) == EXIT_OK
    # Then both outputs, then the manifest, last; per-date GTiffs carry their datetime
    prefix = CONFIG.results_prefix
    assert demo_s3.written[0] == f"{prefix}result.nc" and len(demo_s3.written) == 1 + 6 + 1
    assert demo_s3.written[-1] == catalog_layout.manifest_key(prefix)
    manifest = json.loads(demo_s3.path(RESULTS_BUCKET, catalog_layout.manifest_key(prefix)).read_text())
    assert manifest["assets"]["result.nc"]["type"] == "application/netcdf"
    assert manifest["assets"]["result.nc"]["start_datetime"] == "2022-06-02T10:20:31Z"
    assert manifest["assets"]["result_2022-06-07.tif"]["datetime"] == "2022-06-07T10:20:31Z"
    assert all(a["file:checksum"].startswith("1220") for a in manifest["assets"].values())


def test_a_graph_that_is_not_pixel_local_is_evaluated_whole(run, demo_s3, sqs):
    process = ndvi_process()
    process["process_graph"]["save"]["arguments"]["format"] = "JSON"
    process["process_graph"]["pick"] = {"process_id": "reduce_dimension", "arguments": {
        "data": {"from_node": "mean"}, "dimension": "x", "reducer": {"process_graph": {
            "m": {"process_id": "max", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}}
    process["process_graph"]["save"]["arguments"]["data"] = {"from_node": "pick"}
    assert run(process) == EXIT_OK
    messages = [entry["message"] for entry in sqs.messages[LOG_QUEUE]]
    assert any(m.startswith("Evaluating the whole cube at once: save_result format 'JSON'") for m in messages)
    assert f"{CONFIG.results_prefix}result.json" in demo_s3.written


def test_a_result_without_save_result_is_saved_as_gtiff(run, demo_s3, sqs):
    assert run(ndvi_process(save=False)) == EXIT_OK
    assert f"{CONFIG.results_prefix}result.tif" in demo_s3.written
    assert any("no save_result" in entry["message"] for entry in sqs.messages[LOG_QUEUE])


def test_a_non_raster_result_without_save_result_is_saved_as_json(run, demo_s3, sqs):
    process = {"process_graph": {"add": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
    assert run(process) == EXIT_OK
    key = f"{CONFIG.results_prefix}result.json"
    assert key in demo_s3.written
    assert json.loads(demo_s3.path(RESULTS_BUCKET, key).read_text()) == 3


def test_a_failing_run_reports_once_and_exits_non_zero(run, demo_s3, sqs, caplog):
    # When the graph loads an unknown collection
    with caplog.at_level(logging.ERROR, logger="stratus_processing"):
        exit_code = run(ndvi_process(collection="no-such-collection"))
    # Then
    assert exit_code == EXIT_FAILED
    [error] = [e for e in sqs.messages[LOG_QUEUE] if e["level"] == "error"]
    assert error["code"] == "CollectionNotFound"
    assert error["message"] == ("Collection 'no-such-collection' does not exist. "
                                "(node 'load', process 'load_collection')")
    assert error["path"] == [{"node_id": "load", "process_id": "load_collection"}]
    # the user's error is their message only; the engine's traceback is for the operators' log
    assert "data" not in error
    operators = "\n".join(record.getMessage() for record in caplog.records)
    assert "Traceback (most recent call last)" in operators
    assert "CollectionNotFoundException" in operators
    final = sqs.messages[STATUS_QUEUE][-1]
    assert final["status"] == "error" and final["reason"] == error["message"]
    assert final["usage"]["duration"]["value"] > 0  # a failed run used resources too
    assert demo_s3.written == []  # no outputs, and above all no manifest


def test_an_internal_error_gives_users_a_traceback_without_server_paths(run, sqs, caplog):
    # Given an engine process that fails with a bug of ours, not the user's
    registry = ProcessRegistry()
    for process_id in DEFAULT_REGISTRY:
        if process_id != "add":
            registry.add(process_id, DEFAULT_REGISTRY.get(process_id))

    def broken(args, env):
        raise KeyError("the engine's own bug")
    registry.add("add", broken)
    process = {"process_graph": {"sum": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
    # When
    with caplog.at_level(logging.ERROR, logger="stratus_processing"):
        assert run(process, registry=registry) == EXIT_FAILED
    # Then users get the traceback to report, naming files from their package, not the server's paths
    [error] = [e for e in sqs.messages[LOG_QUEUE] if e["level"] == "error"]
    trace = error["data"]["traceback"]
    assert trace.startswith("Traceback (most recent call last)") and "the engine's own bug" in trace
    assert 'File "stratus_processing/graph.py"' in trace
    server_root = str(Path(runner.__file__).resolve().parents[2])
    assert server_root not in trace and "/site-packages/" not in trace
    # while the operators' log keeps the full paths
    assert server_root in "\n".join(record.getMessage() for record in caplog.records)


def test_a_missing_graph_fails_the_run(run, sqs):
    assert run(None) == EXIT_FAILED
    [error] = [e for e in sqs.messages[LOG_QUEUE] if e["level"] == "error"]
    assert error["code"] == "ProcessGraphMissing" and "path" not in error


def test_run_config_comes_from_the_environment():
    environ = RunConfig("j", "r", "g.json", "p/").to_env()
    assert set(environ) == set(RUN_ENVIRONMENT.values())
    assert RunConfig.from_env(environ) == RunConfig("j", "r", "g.json", "p/")
    with pytest.raises(RunConfigError, match=RUN_ENVIRONMENT["run_id"]):
        RunConfig.from_env({**environ, RUN_ENVIRONMENT["run_id"]: ""})
    with pytest.raises(RunConfigError, match="end with '/'"):
        RunConfig.from_env({**environ, RUN_ENVIRONMENT["results_prefix"]: "p"})


def test_entrypoint_without_run_environment_exits_2(monkeypatch):
    for name in RUN_ENVIRONMENT.values():
        monkeypatch.delenv(name, raising=False)
    assert entrypoint.main() == EXIT_MISCONFIGURED


def test_usage_meter_measures_cpu_memory_and_wall_time():
    # Given a meter around half a second of busy CPU while holding ~200 MB
    with UsageMeter(interval_s=0.05) as meter:
        held = np.ones(200 * 1024 * 1024 // 8)
        # half a second of this process's CPU, however busy the machine's other processes keep the cores
        deadline = time.process_time() + 0.5
        while time.process_time() < deadline:
            pass
        usage = meter.usage()
        del held
    # Then CPU and wall time are those of the block, and memory counts what it held, over time
    assert 0.4 <= usage["cpu"]["value"] <= usage["duration"]["value"] + 0.5
    assert 0.5 <= usage["duration"]["value"] < 5
    assert usage["max_memory"]["value"] >= 200
    assert usage["memory"]["value"] >= 200 * 0.4  # MB held for most of the half second
