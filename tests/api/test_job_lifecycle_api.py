"""Job lifecycle endpoints through the real handler: PATCH, DELETE, cancel, estimate, budget, ownership."""

from __future__ import annotations

import json

import boto3
import pytest

from stratus import catalog_layout, resources
from stratus.backend import Backend
from stratus.domain.jobs import apply_status_event
from stratus.events import JobStatus, StatusEvent

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
COLLECTION_ID = "tiny"
# 0.1 deg x 0.1 deg (~7 km x 11 km) at 10 m steps, 4 bands, 2 dates -> ~50 MB of float64 values
LOAD_GRAPH = {"process_graph": {"load": {"process_id": "load_collection", "result": True, "arguments": {
    "id": COLLECTION_ID, "spatial_extent": {"west": 5.0, "south": 51.0, "east": 5.1, "north": 51.1},
    "temporal_extent": ["2024-01-01", "2024-12-31"]}}}}


def _job(api, user="alice", **body) -> str:
    body.setdefault("process", GRAPH)
    response = api.post("/openeo/1.2/jobs", user=user, json_body=body)
    assert response.status == 201, response.body
    return response.headers["openeo-identifier"]


def _status(api, job_id: str, user="alice") -> dict:
    return api.get(f"/openeo/1.2/jobs/{job_id}", user=user).json()


def _move_to(api, job_id: str, status: JobStatus) -> str:
    """Start a run and report it as `status` the way the status consumer would."""
    assert api.post(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 202
    repository = Backend(api.settings).jobs_repository
    run_id = repository.get(job_id).run_id
    assert repository.get(job_id).status is JobStatus.QUEUED  # at once: the start is the queueing
    for step in (JobStatus.RUNNING, JobStatus.FINISHED):
        if step.rank > status.rank:
            break
        assert apply_status_event(repository, StatusEvent(job_id=job_id, run_id=run_id, status=step))
    return run_id


@pytest.fixture
def tiny_catalog(api):
    s3 = boto3.client("s3", region_name="eu-central-1")
    bucket = api.settings.data_bucket
    collection = {"id": COLLECTION_ID, "cube:dimensions": {
        "x": {"type": "spatial", "axis": "x", "step": 10}, "y": {"type": "spatial", "axis": "y", "step": 10},
        "bands": {"type": "bands", "values": ["B02", "B03", "B04", "B08"]}}}
    s3.put_object(Bucket=bucket, Key=catalog_layout.collection_key(COLLECTION_ID), Body=json.dumps(collection))
    for day in ("2024-05-01", "2024-06-01"):
        item = {"id": day, "bbox": [4.9, 50.9, 5.2, 51.2], "properties": {"datetime": f"{day}T10:00:00Z"}}
        s3.put_object(Bucket=bucket, Key=catalog_layout.item_key(COLLECTION_ID, day), Body=json.dumps(item))
    return s3


def test_patch_changes_properties_and_keeps_status(api):
    # Given a created job
    job_id = _job(api, title="old")
    # When it is patched
    response = api.patch(f"/openeo/1.2/jobs/{job_id}", user="alice",
                         json_body={"title": "new", "description": "d", "budget": 5, "process": LOAD_GRAPH})
    # Then the changes are visible and the status is unchanged
    assert response.status == 204
    job = _status(api, job_id)
    assert (job["title"], job["description"], job["budget"], job["status"]) == ("new", "d", 5, "created")
    assert job["process"] == LOAD_GRAPH
    # And null removes a property
    assert api.patch(f"/openeo/1.2/jobs/{job_id}", user="alice", json_body={"title": None}).status == 204
    assert _status(api, job_id)["title"] is None


def test_patch_refuses_empty_body_bad_values_and_locked_jobs(api):
    job_id = _job(api)
    # Given bodies without updatable properties or with invalid values
    empty = api.patch(f"/openeo/1.2/jobs/{job_id}", user="alice", json_body={})
    assert empty.status == 400 and empty.json()["code"] == "NoDataForUpdate"
    budget = api.patch(f"/openeo/1.2/jobs/{job_id}", user="alice", json_body={"budget": 0})
    assert budget.status == 400 and budget.json()["code"] == "BudgetInvalid"
    graph = api.patch(f"/openeo/1.2/jobs/{job_id}", user="alice", json_body={"process": {}})
    assert graph.status == 400 and graph.json()["code"] == "ProcessGraphMissing"
    # When the job is running
    _move_to(api, job_id, JobStatus.RUNNING)
    locked = api.patch(f"/openeo/1.2/jobs/{job_id}", user="alice", json_body={"title": "x"})
    # Then it is locked
    assert locked.status == 400 and locked.json()["code"] == "JobLocked"


def test_create_refuses_non_positive_budget(api):
    response = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH, "budget": -1})
    assert response.status == 400 and response.json()["code"] == "BudgetInvalid"


def test_cancel_running_job_is_terminal_and_repeatable(api):
    # Given a running job
    job_id = _job(api)
    run_id = _move_to(api, job_id, JobStatus.RUNNING)
    # When it is canceled twice
    assert api.delete(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 204
    assert api.delete(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 204
    # Then it is canceled, the execution stopped, and late events of the run change nothing
    assert _status(api, job_id)["status"] == "canceled"
    sfn = boto3.client("stepfunctions", region_name="eu-central-1")
    executions = sfn.list_executions(stateMachineArn=api.settings.state_machine_arn)["executions"]
    assert [e["status"] for e in executions if e["name"].endswith(run_id)] == ["ABORTED"]
    repository = Backend(api.settings).jobs_repository
    for late in (JobStatus.FINISHED, JobStatus.ERROR, JobStatus.RUNNING):
        assert not apply_status_event(repository, StatusEvent(job_id=job_id, run_id=run_id, status=late))
    assert _status(api, job_id)["status"] == "canceled"
    # And its results are not served
    results = api.get(f"/openeo/1.2/jobs/{job_id}/results", user="alice")
    assert results.status == 400 and results.json()["code"] == "JobNotFinished"
    # And it can be restarted
    assert api.post(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 202


def test_cancel_of_finished_or_never_started_job_changes_nothing(api):
    created = _job(api)
    finished = _job(api)
    _move_to(api, finished, JobStatus.FINISHED)
    for job_id, status in ((created, "created"), (finished, "finished")):
        assert api.delete(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 204
        assert _status(api, job_id)["status"] == status


def test_delete_removes_job_results_and_logs(api):
    # Given a running job with result files and log entries
    job_id = _job(api)
    run_id = _move_to(api, job_id, JobStatus.RUNNING)
    s3 = boto3.client("s3", region_name="eu-central-1")
    bucket = api.settings.results_bucket
    s3.put_object(Bucket=bucket, Key=catalog_layout.manifest_key(catalog_layout.results_prefix(job_id, run_id)),
                  Body=b"{}")
    s3.put_object(Bucket=bucket, Key=f"jobs/{job_id}/runs/older/results/a.tif", Body=b"x")
    s3.put_object(Bucket=bucket, Key="jobs/other-job/runs/r/results/a.tif", Body=b"x")
    from stratus.domain.logs import LogEntry
    from stratus.events import utcnow
    logs = Backend(api.settings).logs
    logs.add(LogEntry(job_id=job_id, log_id="20240101T000000.000000-a", level="info", message="hi", time=utcnow()))
    # When it is deleted
    assert api.delete(f"/openeo/1.2/jobs/{job_id}", user="alice").status == 204
    # Then job, results of all its runs and logs are gone; other jobs' files stay
    assert api.get(f"/openeo/1.2/jobs/{job_id}", user="alice").status == 404
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["jobs/other-job/runs/r/results/a.tif"]
    assert logs.list(job_id, None, 10) == []
    # And deleting again is a JobNotFound
    assert api.delete(f"/openeo/1.2/jobs/{job_id}", user="alice").json()["code"] == "JobNotFound"


def test_estimate_reports_costs_duration_and_size(api, tiny_catalog):
    # Given a job loading two dates of four bands over ~7 km x 11 km
    job_id = _job(api, process=LOAD_GRAPH)
    # When it is estimated
    response = api.get(f"/openeo/1.2/jobs/{job_id}/estimate", user="alice")
    # Then the spec's fields are there and consistent with the dry run
    assert response.status == 200
    estimate = response.json()
    assert set(estimate) == {"costs", "duration", "size", "downloads_included", "expires"}
    assert 40_000_000 < estimate["size"] < 60_000_000
    assert estimate["costs"] == pytest.approx(estimate["size"] / 1e9 * resources.COST_PER_GB_PROCESSED, abs=1e-4)
    assert estimate["duration"].startswith("PT") and estimate["duration"].endswith("S")
    assert estimate["expires"].endswith("Z")


def test_budget_below_estimate_is_refused_at_start(api, tiny_catalog):
    # Given jobs with a budget too small and one large enough
    poor = _job(api, process=LOAD_GRAPH, budget=0.0001)
    rich = _job(api, process=LOAD_GRAPH, budget=1000)
    # When they are started
    refused = api.post(f"/openeo/1.2/jobs/{poor}/results", user="alice")
    # Then only the poor one is refused with PaymentRequired
    assert refused.status == 402 and refused.json()["code"] == "PaymentRequired"
    assert _status(api, poor)["status"] == "created"
    assert api.post(f"/openeo/1.2/jobs/{rich}/results", user="alice").status == 202


def test_other_users_cannot_touch_a_job(api):
    job_id = _job(api)
    for method, path, body in (("PATCH", f"/openeo/1.2/jobs/{job_id}", {"title": "mine"}),
                               ("DELETE", f"/openeo/1.2/jobs/{job_id}", None),
                               ("DELETE", f"/openeo/1.2/jobs/{job_id}/results", None),
                               ("GET", f"/openeo/1.2/jobs/{job_id}/estimate", None)):
        response = api.request(method, path, user="bob", json_body=body)
        assert response.status == 404 and response.json()["code"] == "JobNotFound", (method, path)
    assert _status(api, job_id)["title"] is None


def test_logs_filter_by_minimum_level_and_page_with_the_level_kept(api):
    # Given a job with one entry per level (dated before the job's own "created" entry)
    from stratus.domain.logs import LogEntry
    from stratus.events import utcnow
    job_id = _job(api)
    logs = Backend(api.settings).logs
    for i, level in enumerate(("debug", "info", "warning", "error")):
        logs.add(LogEntry(job_id=job_id, log_id=f"20240101T00000{i}.000000-a", level=level, message=level,
                          time=utcnow()))
    # When logs are requested with a minimum level
    body = api.get(f"/openeo/1.2/jobs/{job_id}/logs?level=warning", user="alice").json()
    # Then only that level and more severe ones come back
    assert body["level"] == "warning" and [e["level"] for e in body["logs"]] == ["warning", "error"]
    # And an empty level means all levels; a next link keeps the level
    assert len(api.get(f"/openeo/1.2/jobs/{job_id}/logs?level=", user="alice").json()["logs"]) == 4 + 1
    # and a page holds `limit` entries of the level asked for (filtered before the page is cut)
    page = api.get(f"/openeo/1.2/jobs/{job_id}/logs?level=info&limit=2", user="alice").json()
    assert [e["level"] for e in page["logs"]] == ["info", "warning"]
    (link,) = page["links"]
    assert link["rel"] == "next" and "level=info" in link["href"] and "offset=" in link["href"]
    offset = link["href"].split("offset=")[1].split("&")[0]
    rest = api.get(f"/openeo/1.2/jobs/{job_id}/logs?level=info&offset={offset}", user="alice").json()
    assert [e["level"] for e in rest["logs"]] == ["error", "info"]  # the last: "Job created"


def test_an_error_after_a_page_of_debug_entries_is_on_the_first_page_of_error_logs(api):
    # Given a long log (a fanned-out job's tiles log many entries) whose one error comes after 150 others
    from stratus.domain.logs import LogEntry
    from stratus.events import utcnow
    job_id = _job(api)
    logs = Backend(api.settings).logs
    for i in range(150):
        logs.add(LogEntry(job_id=job_id, log_id=f"20240101T000000.{i:06d}-a", level="debug", message=f"tile {i}",
                          time=utcnow()))
    logs.add(LogEntry(job_id=job_id, log_id="20240101T000001.000000-a", level="error", message="tile r0003c0003",
                      time=utcnow()))
    # When the errors are asked for, as the openEO client does (one page)
    body = api.get(f"/openeo/1.2/jobs/{job_id}/logs?level=error&limit=100", user="alice").json()
    # Then the error is on it
    assert [e["message"] for e in body["logs"]] == ["tile r0003c0003"]
