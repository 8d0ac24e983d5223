"""User-defined processes through the real handler: round trip, ownership, pagination, and PrepareJob
freezing the ones a job calls into its run snapshot."""

import json
import sys
from datetime import UTC, datetime

import boto3

from stratus import catalog_layout, resources
from stratus.backend import Backend
from stratus.events import JobStatus
from stratus_local.handlers import load_handler
from stratus_local.lambda_context import LocalLambdaContext

BASE = "/openeo/1.2/process_graphs"
SCALE = {
    "summary": "Scale by a factor",
    "description": "Multiplies `x` by `factor`.",
    "parameters": [{"name": "x", "description": "A number.", "schema": {"type": "number"}},
                   {"name": "factor", "description": "The factor.", "schema": {"type": "number"},
                    "optional": True, "default": 10}],
    "returns": {"schema": {"type": "number"}},
    "process_graph": {"m": {"process_id": "multiply",
                            "arguments": {"x": {"from_parameter": "x"}, "y": {"from_parameter": "factor"}},
                            "result": True}},
}
# calls `scale` from inside a callback: only reachable transitively
SCALE_ALL = {
    "parameters": [{"name": "data", "schema": {"type": "array"}}],
    "process_graph": {"a": {"process_id": "apply", "arguments": {
        "data": {"from_parameter": "data"},
        "process": {"process_graph": {"s": {"process_id": "scale", "arguments": {"x": {"from_parameter": "x"}},
                                            "result": True}}}}, "result": True}},
}


def test_put_get_round_trip(api):
    # Given a stored process whose body names a different id
    response = api.put(f"{BASE}/scale", user="alice", json_body={**SCALE, "id": "other"})
    assert response.status == 200
    # When it is read back
    stored = api.get(f"{BASE}/scale", user="alice")
    # Then it is the full process object under the path's id
    assert stored.status == 200
    assert stored.json() == {**SCALE, "id": "scale"}
    # And replacing it replaces it fully
    api.put(f"{BASE}/scale", user="alice", json_body={"process_graph": SCALE["process_graph"]})
    assert api.get(f"{BASE}/scale", user="alice").json() == {"id": "scale", "process_graph": SCALE["process_graph"]}


def test_list_omits_graphs_and_paginates(api):
    # Given five processes
    for i in range(5):
        api.put(f"{BASE}/p{i}", user="alice", json_body=SCALE)
    # When they are listed two at a time, following the `next` links
    ids, path, pages = [], f"{BASE}?limit=2", 0
    while path:
        page = api.get(path, user="alice").json()
        pages += 1
        ids += [p["id"] for p in page["processes"]]
        assert all("process_graph" not in p for p in page["processes"])
        assert all(p["summary"] == SCALE["summary"] for p in page["processes"])
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        path = nxt[0].split("testserver", 1)[1] if nxt else None
    # Then every process is listed exactly once
    assert sorted(ids) == [f"p{i}" for i in range(5)]
    assert pages >= 3


def test_processes_are_private(api):
    # Given alice's process
    api.put(f"{BASE}/scale", user="alice", json_body=SCALE)
    # Then bob can neither read nor delete it, nor list it
    for method in ("GET", "DELETE"):
        response = api.request(method, f"{BASE}/scale", user="bob")
        assert response.status == 404 and response.json()["code"] == "ProcessGraphNotFound", method
    assert api.get(BASE, user="bob").json() == {"processes": [], "links": []}
    # And storing the same id stores bob's own process, leaving alice's unchanged
    assert api.put(f"{BASE}/scale", user="bob", json_body={"process_graph": SCALE["process_graph"]}).status == 200
    assert api.get(f"{BASE}/scale", user="alice").json()["summary"] == SCALE["summary"]
    assert "summary" not in api.get(f"{BASE}/scale", user="bob").json()
    assert api.delete(f"{BASE}/scale", user="bob").status == 204
    assert api.get(f"{BASE}/scale", user="alice").status == 200
    # And nobody gets in without logging in
    assert api.get(BASE).json()["code"] == "AuthenticationRequired"


def test_delete(api):
    api.put(f"{BASE}/scale", user="alice", json_body=SCALE)
    assert api.delete(f"{BASE}/scale", user="alice").status == 204
    assert api.get(f"{BASE}/scale", user="alice").json()["code"] == "ProcessGraphNotFound"
    again = api.delete(f"{BASE}/scale", user="alice")
    assert again.status == 404 and again.json()["code"] == "ProcessGraphNotFound"


def test_refusals(api):
    # A predefined process' id, a process without graph and an id outside ^\w+$ are refused
    predefined = api.put(f"{BASE}/add", user="alice", json_body=SCALE)
    assert predefined.status == 400 and predefined.json()["code"] == "PredefinedProcessExists"
    missing = api.put(f"{BASE}/empty", user="alice", json_body={"summary": "no graph"})
    assert missing.status == 400 and missing.json()["code"] == "ProcessGraphMissing"
    bad_id = api.put(f"{BASE}/a-b", user="alice", json_body=SCALE)
    assert bad_id.status == 400
    assert api.get(BASE, user="alice").json()["processes"] == []
    assert api.get(f"{BASE}?after=garbage", user="alice").status == 400


def test_capabilities_list_the_endpoints(api):
    endpoints = {e["path"]: e["methods"] for e in api.get("/openeo/1.2/", user="alice").json()["endpoints"]}
    assert endpoints["/process_graphs/{process_graph_id}"] == ["GET", "PUT", "DELETE"]
    assert endpoints["/validation"] == ["POST"]


def test_prepare_job_freezes_the_user_processes_the_job_calls(api):
    # Given alice's processes, one calling the other inside a callback, and a job calling the outer one
    api.put(f"{BASE}/scale", user="alice", json_body=SCALE)
    api.put(f"{BASE}/scale_all", user="alice", json_body=SCALE_ALL)
    api.put(f"{BASE}/unused", user="alice", json_body=SCALE)
    api.put(f"{BASE}/scale_all", user="bob", json_body={"process_graph": {"x": {"process_id": "absolute"}}})
    graph = {"c": {"process_id": "constant", "arguments": {"x": [1, 2]}},
             "s": {"process_id": "scale_all", "namespace": "user", "arguments": {"data": {"from_node": "c"}},
                   "result": True}}
    job_id = api.post("/openeo/1.2/jobs", user="alice",
                      json_body={"process": {"process_graph": graph}}).headers["openeo-identifier"]
    backend = Backend(api.settings)
    assert backend.jobs_repository.begin_run(job_id, "run-1", (JobStatus.CREATED,), datetime.now(UTC))
    # When PrepareJob runs for the job
    handler = load_handler(resources.FUNCTIONS["prepare_job"])
    sys.modules[handler.__module__].backend.cache_clear()
    try:
        output = handler({"job_id": job_id, "run_id": "run-1"}, LocalLambdaContext(function_name="prepare-job"))
    finally:
        sys.modules[handler.__module__].backend.cache_clear()
    # Then the snapshot holds the graph and alice's processes it calls, transitively, and no others
    assert output["graph_key"] == catalog_layout.graph_key(job_id, "run-1")
    s3 = boto3.client("s3", region_name="eu-central-1")
    snapshot = json.loads(s3.get_object(Bucket=api.settings.results_bucket, Key=output["graph_key"])["Body"].read())
    assert snapshot["process_graph"] == graph
    assert snapshot["user_processes"] == {
        "scale_all": {"process_graph": SCALE_ALL["process_graph"], "parameters": SCALE_ALL["parameters"]},
        "scale": {"process_graph": SCALE["process_graph"], "parameters": SCALE["parameters"]},
    }
