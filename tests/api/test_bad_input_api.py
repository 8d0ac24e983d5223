"""Bad input gets a 4xx in the API's own error format, never a 500: forged page tokens, odd credentials,
oversized and deeply nested bodies, ids no key could hold, non-UTF-8 bodies, unknown methods."""

from __future__ import annotations

import base64
import json

import pytest

from stratus.request_limits import MAX_JSON_DEPTH, MAX_STORED_BODY_BYTES

from tests.api.test_order_api import Customers

JOBS = "/openeo/1.2/jobs"
GRAPH = {"process_graph": {"one": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status == status, (response.status, response.body[:300])
    body = response.json()
    assert body["code"] == code and body["message"] and "id" in body, body
    return body


@pytest.mark.parametrize("token", [
    "not-base64!!",
    base64.urlsafe_b64encode(b"[1, 2]").decode(),
    base64.urlsafe_b64encode(json.dumps({"job_id": {"S": "j-1"}}).encode()).decode(),
    # a well-formed start key of another user's listing
    base64.urlsafe_b64encode(json.dumps({"job_id": {"S": "j-1"}, "user_id": {"S": "bob"},
                                         "created": {"S": "2026-01-01T00:00:00.000000+0000"}}).encode()).decode(),
])
def test_forged_page_tokens_of_jobs_are_bad_requests(api, token):
    assert_error(api.get(f"{JOBS}?after={token}", user="alice"), 400, "BadRequest")


def test_forged_page_tokens_of_files_and_orders_are_bad_requests(api):
    assert_error(api.get(f"/openeo/1.2/files?after={'x' * 3000}", user="alice"), 400, "BadRequest")
    customers = Customers(api)
    customers.add("cus-erin")
    assert_error(customers.request("GET", "/orders?after=forged", "cus-erin"), 400, "InvalidRequest")


@pytest.mark.parametrize("credentials", [":a-long-password", f"{'u' * 3000}:pw", "\x00:pw"])
def test_odd_basic_credentials_are_refused(api, credentials):
    basic = base64.b64encode(credentials.encode()).decode()
    assert_error(api.get("/openeo/1.2/credentials/basic", headers={"Authorization": f"Basic {basic}"}),
                 403, "CredentialsInvalid")


def test_a_job_too_large_for_one_item_is_refused(api):
    # Given a process graph whose JSON is larger than a DynamoDB item may be
    padding = "x" * (MAX_STORED_BODY_BYTES + 1)
    big = {"process_graph": {"one": {"process_id": "text_concat", "arguments": {"data": [padding]}, "result": True}}}
    # Then neither a job nor a user-defined process is made of it
    assert_error(api.post(JOBS, user="alice", json_body={"process": big}), 400, "BadRequest")
    assert_error(api.put("/openeo/1.2/process_graphs/big", user="alice", json_body=big), 400, "BadRequest")
    assert api.get(JOBS, user="alice").json()["jobs"] == []


def nested(depth: int) -> str:
    return '{"process_graph": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000, 200_000])
def test_deeply_nested_json_is_refused_on_both_apis(api, depth):
    body = nested(depth).encode()
    assert_error(api.post(JOBS, user="alice", data=body, content_type="application/json"), 400, "BadRequest")
    assert_error(api.post("/openeo/1.2/validation", user="alice", data=body, content_type="application/json"),
                 400, "BadRequest")
    customers = Customers(api)
    customers.add("cus-erin")
    refused = api.post("/api/v1/services/ndvi-composite/orders", data=body, content_type="application/json",
                       headers=customers.headers["cus-erin"])
    assert_error(refused, 400, "InvalidRequest")


def test_json_nested_within_the_limit_is_accepted(api):
    # a graph with a deep (but reasonable) literal: still a job
    deep = {"process_graph": {"one": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True,
                                      "description": json.loads("[" * 40 + "]" * 40)}}}
    assert api.post(JOBS, user="alice", json_body={"process": deep}).status == 201


def test_a_budget_beyond_what_can_be_stored_is_invalid(api):
    for budget in (1e300, 1e-300):
        assert_error(api.post(JOBS, user="alice", json_body={"process": GRAPH, "budget": budget}), 400, "BudgetInvalid")


@pytest.mark.parametrize("path", [
    f"{JOBS}/{'j' * 3000}", f"{JOBS}/{'j' * 3000}/results", f"{JOBS}/{'j' * 3000}/logs",
    f"/openeo/1.2/process_graphs/{'p' * 3000}", f"{JOBS}/%0A", f"{JOBS}/j-1%00", f"{JOBS}/%E2%80%8B",
])
def test_ids_no_key_can_hold_are_not_found(api, path):
    assert_error(api.get(path, user="alice"), 404, "NotFound")


def test_ids_no_key_can_hold_are_not_found_on_the_order_api(api):
    customers = Customers(api)
    customers.add("cus-erin")
    for path in (f"/orders/{'o' * 3000}", "/orders/%0A", f"/services/{'s' * 3000}"):
        assert customers.request("GET", path, "cus-erin").status == 404


def test_non_utf8_bodies_are_bad_requests(api):
    for content_type in ("application/json", "text/plain"):
        response = api.post(JOBS, user="alice", data=b"\xc5\xff{", content_type=content_type)
        assert_error(response, 400, "BadRequest")


def test_unsupported_methods_are_405_with_allow(api):
    response = api.request("TRACE", JOBS, user="alice")
    assert_error(response, 405, "MethodNotAllowed")
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    put = api.put(f"{JOBS}/j-1/logs", user="alice", json_body={})
    assert_error(put, 405, "MethodNotAllowed")
    # a path that exists for no method stays 404
    assert_error(api.request("TRACE", "/openeo/1.2/nothing-here", user="alice"), 404, "NotFound")


def test_order_page_size_above_the_documented_maximum_is_refused(api):
    customers = Customers(api)
    customers.add("cus-erin")
    assert_error(customers.request("GET", "/orders?limit=1001", "cus-erin"), 400, "InvalidRequest")
    assert customers.request("GET", "/orders?limit=1000", "cus-erin").status == 200
    # the openEO API documents no maximum: larger pages are served capped
    assert api.get(f"{JOBS}?limit=100000", user="alice").status == 200


def test_order_log_entries_have_a_component_or_none_at_all(api):
    from stratus.backend import Backend
    from stratus.domain.logs import entry_from_event
    from stratus.events import LogEvent, LogLevel

    # Given an order with entries reported with and without a component (as the log consumer stores them)
    customers = Customers(api)
    customers.add("cus-erin")
    order_id = customers.order("cus-erin").json()["order_id"]
    logs = Backend(api.settings).logs
    for component in (None, "qa"):
        event = LogEvent(job_id=order_id, level=LogLevel.WARNING, message=f"from {component}",
                         data={"component": component, "reported_by": "cus-erin"})
        logs.add(entry_from_event(event, delivery_id=f"entry-{component}"))
    # Then `component` is a string where there is one, and absent otherwise (the schema allows no null)
    entries = customers.request("GET", f"/orders/{order_id}/logs", "cus-erin").json()["logs"]
    reported = {e["message"]: e for e in entries if e["message"].startswith("from ")}
    assert reported["from qa"]["component"] == "qa"
    assert "component" not in reported["from None"]


def test_references_that_are_not_names_are_invalid_graphs(api):
    # found by the fuzzer: `from_parameter`/`from_node` holding an object crashed the validator
    graph = {"a": {"process_id": "absolute", "arguments": {"x": {"from_parameter": {"x": 1}}}},
             "b": {"process_id": "add", "arguments": {"x": {"from_node": ["a"]}, "y": 1}, "result": True}}
    response = api.post("/openeo/1.2/validation", user="alice", json_body={"process_graph": graph})
    assert response.status == 200
    assert [e["code"] for e in response.json()["errors"]] == ["ProcessGraphInvalid", "ProcessGraphInvalid"]
