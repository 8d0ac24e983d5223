"""The run contract's documents: what one side writes the other reads back, and what is not the contract's
shape is refused with the error the run or the API reports."""

from __future__ import annotations

import json

import pytest
from stratus import catalog_layout
from stratus.errors import ProcessGraphInvalidException, ProcessGraphMissingException
from stratus.run_contract import (
    PREPARED_FIELDS,
    USER_PROCESSES_KEY,
    ResultsManifest,
    RunConfig,
    RunContractError,
    RunSnapshot,
)

GRAPH = {"a": {"process_id": "absolute", "arguments": {"x": -1}, "result": True}}
SCALE = {"process_graph": {"m": {"process_id": "multiply", "arguments": {"x": 1, "y": 2}, "result": True}},
         "parameters": [{"name": "x", "schema": {"type": "number"}}]}


def test_run_config_points_at_the_runs_keys():
    run = RunConfig.for_run("j-1", "r-1")
    assert run.graph_key == catalog_layout.graph_key("j-1", "r-1")
    assert run.manifest_key == catalog_layout.manifest_key(catalog_layout.results_prefix("j-1", "r-1"))
    assert run.prepared() == {"graph_key": run.graph_key, "results_prefix": run.results_prefix}
    assert set(run.prepared()) == set(PREPARED_FIELDS)


def test_a_synchronous_request_is_a_run_under_its_own_prefix():
    run = RunConfig.for_sync("alice", "r-1")
    prefix = catalog_layout.sync_prefix("alice", "r-1")
    assert run.graph_key.startswith(prefix) and run.results_prefix.startswith(prefix)
    assert run.results_prefix.endswith("/") and run.graph_key != run.manifest_key
    assert RunConfig.from_sync_event(json.loads(json.dumps(run.to_sync_event()))) == run


def test_a_snapshot_reads_back_as_written():
    snapshot = RunSnapshot({"process_graph": GRAPH, "parameters": []}, {"scale": SCALE})
    document = json.loads(json.dumps(snapshot.to_json()))
    assert document == {"process_graph": GRAPH, "parameters": [], USER_PROCESSES_KEY: {"scale": SCALE}}
    assert RunSnapshot.from_json(document) == snapshot


def test_a_snapshot_never_carries_a_submitted_copy_of_user_processes():
    snapshot = RunSnapshot({"process_graph": GRAPH, USER_PROCESSES_KEY: {"forged": SCALE}})
    assert snapshot.process == {"process_graph": GRAPH}
    assert snapshot.to_json() == {"process_graph": GRAPH}


@pytest.mark.parametrize("document, error", [
    ([], ProcessGraphMissingException),
    ({"parameters": []}, ProcessGraphMissingException),
    ({"process_graph": "a graph"}, ProcessGraphMissingException),
    ({"process_graph": GRAPH, USER_PROCESSES_KEY: ["scale"]}, ProcessGraphInvalidException),
    ({"process_graph": GRAPH, USER_PROCESSES_KEY: {"scale": {"parameters": []}}}, ProcessGraphInvalidException),
])
def test_a_snapshot_without_the_contracts_shape_is_refused(document, error):
    with pytest.raises(error):
        RunSnapshot.from_json(document)


def test_a_manifest_reads_back_as_written():
    manifest = ResultsManifest(
        assets={"result.tif": {"key": "p/result.tif", "type": "image/tiff", "file:size": 10,
                               "bbox": [11.0, 46.0, 11.1, 46.1]}},
        bbox=[11.0, 46.0, 11.1, 46.1],
        geometry={"type": "Polygon", "coordinates": [[[11.0, 46.0], [11.1, 46.0], [11.0, 46.0]]]},
        properties={"datetime": None, "start_datetime": "2022-06-02T10:00:00Z"})
    document = json.loads(json.dumps(manifest.to_json()))
    assert set(document) == {"bbox", "geometry", "properties", "assets"}
    assert ResultsManifest.from_json(document) == manifest


def test_an_older_manifest_without_footprints_reads():
    manifest = ResultsManifest.from_json({"assets": {"r.json": {"key": "p/r.json", "type": "application/json"}}})
    assert manifest.bbox is None and manifest.geometry is None and manifest.properties == {}


@pytest.mark.parametrize("document", [
    "manifest",
    {"assets": ["result.tif"]},
    {"assets": []},
    {"assets": {"result.tif": {"type": "image/tiff"}}},
    {"assets": {}, "bbox": [1, 2]},
    {"assets": {}, "geometry": "POLYGON"},
    {"assets": {}, "properties": []},
])
def test_a_manifest_without_the_contracts_shape_is_refused(document):
    with pytest.raises(RunContractError):
        ResultsManifest.from_json(document)
