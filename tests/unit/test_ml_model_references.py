"""`load_ml_model` references resolve, when a run is frozen, to models of the caller's own finished jobs."""

from __future__ import annotations

import pytest
from stratus.domain.jobs import Job
from stratus.domain.ml_models import ModelReferences
from stratus.domain.runs import RunPreparation
from stratus.events import JobStatus
from stratus.run_contract import ResultsManifest, RunConfig, RunSnapshot

MODEL = {"key": "jobs/j-model/runs/r-1/results/model.skops", "type": "application/octet-stream",
         "roles": ["ml-model:checkpoint"]}
MAP = {"key": "jobs/j-model/runs/r-1/results/result.tif", "type": "image/tiff", "roles": ["data"]}


class Jobs(dict):
    def get(self, job_id):
        return super().get(job_id)


class Manifests(dict):
    def read_manifest(self, key):
        return self.get(key)


@pytest.fixture
def references():
    jobs = Jobs({
        "j-model": Job("j-model", "alice", {}, status=JobStatus.FINISHED, run_id="r-1"),
        "j-two": Job("j-two", "alice", {}, status=JobStatus.FINISHED, run_id="r-1"),
        "j-running": Job("j-running", "alice", {}, status=JobStatus.RUNNING, run_id="r-1"),
    })
    manifests = Manifests({
        RunConfig.for_run("j-model", "r-1").manifest_key: ResultsManifest(assets={"model.skops": MODEL,
                                                                                  "result.tif": MAP}),
        RunConfig.for_run("j-two", "r-1").manifest_key: ResultsManifest(assets={
            "model.skops": {**MODEL, "key": "jobs/j-two/runs/r-1/results/model.skops"},
            "model_2.skops": {**MODEL, "key": "jobs/j-two/runs/r-1/results/model_2.skops"}}),
    })
    return ModelReferences(jobs, manifests)


def graph_loading(*ids):
    """`load_ml_model` nodes, one of them inside a callback."""
    nodes = {f"load{i}": {"process_id": "load_ml_model", "arguments": {"id": ref}} for i, ref in enumerate(ids)}
    nodes["apply"] = {"process_id": "apply", "arguments": {"process": {"process_graph": {
        "inner": {"process_id": "load_ml_model", "arguments": {"id": "j-model"}, "result": True}}}}}
    return nodes


def test_own_finished_job_and_its_result_urls_name_the_model(references):
    resolved = references.resolve([graph_loading(
        "https://openeo.example/openeo/1.2/jobs/j-model/results/items/model",
        "https://openeo.example/openeo/1.2/jobs/j-two/results/items/model_2")], "alice")
    assert resolved == {
        "j-model": {"key": MODEL["key"]},
        "https://openeo.example/openeo/1.2/jobs/j-model/results/items/model": {"key": MODEL["key"]},
        "https://openeo.example/openeo/1.2/jobs/j-two/results/items/model_2":
            {"key": "jobs/j-two/runs/r-1/results/model_2.skops"},
    }


@pytest.mark.parametrize(("user", "reference", "reason"), [
    ("bob", "j-model", "no batch job 'j-model' of yours"),
    ("alice", "j-unknown", "no batch job 'j-unknown' of yours"),
    ("alice", "j-running", "has not finished"),
    ("alice", "j-two", "saved 2 models"),
    ("alice", "https://openeo.example/openeo/1.2/jobs/j-model/results/items/result", "is not a model"),
    ("alice", "https://models.example.com/forest.skops", "models from elsewhere are not loaded"),
    ("alice", "folder/my_model.skops", "uploaded model files are not loaded"),
])
def test_references_other_than_own_saved_models_resolve_to_the_reason(references, user, reference, reason):
    resolved = references.resolve([{"load": {"process_id": "load_ml_model", "arguments": {"id": reference}}}], user)
    assert set(resolved[reference]) == {"error"} and reason in resolved[reference]["error"]


def test_prepared_run_snapshot_carries_the_resolution_and_ignores_a_submitted_one(references):
    submitted = {"process_graph": graph_loading(), "ml_models": {"j-model": {"key": "users/bob/secret"}}}
    job = Job("j-new", "alice", submitted, status=JobStatus.QUEUED, run_id="r-9")
    written = {}

    class UserProcesses:
        def lookup_for(self, user_id):
            return lambda process_id: None

    class Snapshots:
        def write_snapshot(self, key, snapshot):
            written[key] = snapshot.to_json()

    RunPreparation(Jobs({"j-new": job}), UserProcesses(), Snapshots(), models=references).prepare("j-new", "r-9")
    snapshot = RunSnapshot.from_json(written[RunConfig.for_run("j-new", "r-9").graph_key])
    assert snapshot.ml_models == {"j-model": {"key": MODEL["key"]}}
