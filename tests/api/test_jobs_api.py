"""Batch job endpoints through the real handler: status codes, headers, ownership."""

from tests.openeo_schema import response_errors

GRAPH = {"process": {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}}


def test_create_job_returns_location_and_identifier(api):
    response = api.post("/openeo/1.2/jobs", user="alice", json_body=GRAPH)
    assert response.status == 201
    job_id = response.headers["openeo-identifier"]
    assert response.headers["location"].endswith(f"/openeo/1.2/jobs/{job_id}")
    assert api.get(f"/openeo/1.2/jobs/{job_id}", user="alice").json()["status"] == "created"


def test_jobs_are_private(api):
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body=GRAPH).headers["openeo-identifier"]
    for method, path in (("GET", f"/openeo/1.2/jobs/{job_id}"), ("POST", f"/openeo/1.2/jobs/{job_id}/results"),
                         ("GET", f"/openeo/1.2/jobs/{job_id}/results"), ("GET", f"/openeo/1.2/jobs/{job_id}/logs")):
        response = api.request(method, path, user="bob")
        assert response.status == 404 and response.json()["code"] == "JobNotFound", (method, path)
    assert api.get("/openeo/1.2/jobs", user="bob").json()["jobs"] == []


def test_missing_graph_and_bad_json_use_the_openeo_error_format(api):
    missing = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": {}})
    assert missing.status == 400 and missing.json()["code"] == "ProcessGraphMissing"
    bad = api.post("/openeo/1.2/jobs", user="alice", data=b"{not json", content_type="application/json")
    assert bad.status == 400 and set(bad.json()) >= {"id", "code", "message"}


def test_unauthenticated_and_preflight(api):
    assert api.get("/openeo/1.2/jobs").json()["code"] == "AuthenticationRequired"
    preflight = api.request("OPTIONS", "/openeo/1.2/jobs", headers={
        "Origin": "https://editor.openeo.org", "Access-Control-Request-Method": "POST"})
    assert preflight.status in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_a_job_has_a_log_from_its_creation(api):
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={**GRAPH, "title": "t1"}).headers["openeo-identifier"]
    logs = api.get(f"/openeo/1.2/jobs/{job_id}/logs", user="alice").json()["logs"]
    assert [entry["level"] for entry in logs] == ["info"]
    assert "created" in logs[0]["message"] and logs[0]["time"].endswith("Z")


def test_job_options_are_kept_and_shown_on_the_job(api):
    # Given a job created as the openeo client's `create_job(job_options=...)` sends them
    options = {"driver-memory": "4g", "executor-cores": 2, "udf-dependency-archives": []}
    job_id = api.post("/openeo/1.2/jobs", user="alice",
                      json_body={**GRAPH, "job_options": options}).headers["openeo-identifier"]
    # Then the job shows them as given (in a field of their own: openEO's job schema has none)
    described = api.get(f"/openeo/1.2/jobs/{job_id}", user="alice").json()
    assert described["job_options"] == options
    assert response_errors("/jobs/{job_id}", described) == []
    # And a job without them shows none
    plain = api.post("/openeo/1.2/jobs", user="alice", json_body=GRAPH).headers["openeo-identifier"]
    assert "job_options" not in api.get(f"/openeo/1.2/jobs/{plain}", user="alice").json()
    # While options that are not an object are refused in openEO's error format
    refused = api.post("/openeo/1.2/jobs", user="alice", json_body={**GRAPH, "job_options": ["driver-memory"]})
    assert refused.status == 400 and refused.json()["code"] == "BadRequest"
    assert "job_options" in refused.json()["message"]
