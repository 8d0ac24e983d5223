"""Order-service services, orders, products and logging (`/api/v1/...`) through the real handler.

Customers are rows of the users table with scopes, holding tokens signed with the deployment's key
(what `/api/v1/auth/token` issues). The status queue is not consumed here: where an order's end
matters, the test delivers the queued status events to the real status consumer.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from stratus import catalog_layout, resources
from stratus.backend import Backend
from stratus.domain.auth import sign_token
from stratus.domain.jobs import apply_status_event
from stratus.domain.webhooks import verify
from stratus.events import JobStatus, StatusEvent
from stratus.store.models import JobModel, LimitModel, ServiceModel, UserModel
from stratus_local.handlers import load_handler
from stratus_local.lambda_context import LocalLambdaContext
from tests.receivers import ConnectionRecorder, WebhookReceiver

COLLECTION = "sentinel-2-l2a-demo"
# inside the demo's Bolzano scenes (lon 11.319..11.359, lat 46.479..46.507)
BOLZANO = {"type": "Polygon", "coordinates": [[[11.325, 46.485], [11.35, 46.485], [11.35, 46.5], [11.325, 46.5],
                                               [11.325, 46.485]]]}
PARIS = {"type": "Polygon", "coordinates": [[[2.30, 48.85], [2.35, 48.85], [2.35, 48.87], [2.30, 48.87],
                                             [2.30, 48.85]]]}
JUNE = {"start_date": "2022-06-01", "end_date": "2022-07-01"}
PUBLIC_WEBHOOK = "https://93.184.215.14/hook"  # a public address literal: checking it needs no DNS
DATE = {"type": "string", "subtype": "date"}
ALL_SERVICES = ("service:ndvi-composite", "service:vegetation-change", "service:zonal-statistics")


class Customers:
    def __init__(self, api):
        self.api = api
        self.headers: dict[str, dict[str, str]] = {}

    def add(self, user_id: str, scopes=ALL_SERVICES, usage_limits=None, active=True) -> dict[str, str]:
        UserModel(user_id, password_hash="", email=f"{user_id}@example.com", name=user_id, scopes=list(scopes),
                  active=active, usage_limits=usage_limits, created=datetime.now(UTC)).save()
        key = Backend(self.api.settings).signing_key()
        self.headers[user_id] = {"Authorization": f"Bearer {sign_token(key, user_id, timedelta(hours=1))}"}
        return self.headers[user_id]

    def openeo_headers(self, user: str) -> dict[str, str]:
        """The same token in the openEO API's form."""
        return {"Authorization": self.headers[user]["Authorization"].replace("Bearer ", "Bearer basic//")}

    def request(self, method: str, path: str, user: str, headers: dict | None = None, **kw):
        return self.api.request(method, f"/api/v1{path}", headers={**self.headers[user], **(headers or {})}, **kw)

    def order(self, user: str, service: str = "ndvi-composite", parameters=None, key: str | None = None, **body):
        body = {"parameters": parameters if parameters is not None else {"area": BOLZANO, **JUNE}, **body}
        return self.request("POST", f"/services/{service}/orders", user, json_body=body,
                            headers={"Idempotency-Key": key} if key else None)


@pytest.fixture
def demo_catalog(api):
    """The demo collection's STAC metadata (no pixels: the API only reads the catalog)."""
    s3 = boto3.client("s3", region_name="eu-central-1")
    bucket = api.settings.data_bucket
    collection = {"id": COLLECTION, "cube:dimensions": {
        "x": {"type": "spatial", "axis": "x", "step": 10}, "y": {"type": "spatial", "axis": "y", "step": 10},
        "bands": {"type": "bands", "values": ["B02", "B03", "B04", "B08", "SCL"]}}}
    s3.put_object(Bucket=bucket, Key=catalog_layout.collection_key(COLLECTION), Body=json.dumps(collection))
    for day in ("2022-06-02", "2022-06-07", "2022-07-02"):
        item = {"id": f"bolzano-{day}", "bbox": [11.318949, 46.479257, 11.359167, 46.507033],
                "properties": {"datetime": f"{day}T10:20:31Z", "proj:epsg": 32632}}
        s3.put_object(Bucket=bucket, Key=catalog_layout.item_key(COLLECTION, item["id"]), Body=json.dumps(item))
    return s3


@pytest.fixture
def customers(api, demo_catalog):
    customers = Customers(api)
    customers.add("cus-carol")
    customers.add("cus-dave")
    customers.add("cus-admin", scopes=("admin",))
    return customers


def _queued(api, queue: str) -> list[dict]:
    """Drains a queue: its messages (the raw SQS form)."""
    sqs = boto3.client("sqs", region_name="eu-central-1")
    url = getattr(api.settings, f"{queue}_queue_url")
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages += batch


def _deliver_status_events(api, messages: list[dict]) -> None:
    """What the status queue's event source mapping does: the messages to the status consumer."""
    handler = load_handler(resources.FUNCTIONS["status"])
    sys.modules["stratus_fn_StatusConsumer"].backend.cache_clear()  # a fresh container per test
    records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": {}, "messageAttributes": {}, "md5OfBody": hashlib.md5(m["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:status",
                "awsRegion": "eu-central-1"} for m in messages]
    response = handler({"Records": records}, LocalLambdaContext(function_name="stratus-status"))
    assert not (response or {}).get("batchItemFailures"), response


def _advance(api, order_id: str, *statuses: JobStatus) -> None:
    """Reports the order's run through `statuses`, as the workflow and the processing would."""
    repository = Backend(api.settings).jobs_repository
    run_id = repository.get(order_id).run_id
    for status in statuses:
        assert apply_status_event(repository, StatusEvent(job_id=order_id, run_id=run_id, status=status,
                                                          progress=100 if status is JobStatus.FINISHED else None))


# --- services ---------------------------------------------------------------------------------------

def test_services_are_listed_by_scope(api, customers):
    customers.add("cus-ndvi-only", scopes=("service:ndvi-composite",))
    customers.add("cus-none", scopes=())

    full = customers.request("GET", "/services", "cus-carol")
    assert full.status == 200
    services = {s["id"]: s for s in full.json()["services"]}
    assert set(services) == {"ndvi-composite", "vegetation-change", "zonal-statistics"}
    ndvi = services["ndvi-composite"]
    assert ndvi["title"] and ndvi["description"] and "published" not in ndvi and "process_graph" not in ndvi
    assert [p["name"] for p in ndvi["parameters"]] == ["area", "start_date", "end_date"]
    assert ndvi["parameters"][0]["schema"]["subtype"] == "geojson"
    assert ndvi["usage_limit"] == {"limit": 50, "interval_s": 86400}
    assert {link["rel"] for link in ndvi["links"]} >= {"self", "orders"}

    only = customers.request("GET", "/services", "cus-ndvi-only").json()["services"]
    assert [s["id"] for s in only] == ["ndvi-composite"]
    assert customers.request("GET", "/services", "cus-none").json()["services"] == []
    # a service one may not order is not revealed
    refused = customers.request("GET", "/services/zonal-statistics", "cus-ndvi-only")
    assert refused.status == 404 and refused.json()["code"] == "ServiceNotFound"
    detail = customers.request("GET", "/services/ndvi-composite", "cus-ndvi-only").json()
    assert detail["process_graph"]["load"]["arguments"]["id"] == COLLECTION
    assert api.get("/api/v1/services").status == 401


def test_the_catalogue_lists_what_each_service_delivers(api, customers):
    services = {s["id"]: s for s in customers.request("GET", "/services", "cus-carol").json()["services"]}
    raster = {"type": "object", "subtype": "datacube", "dimensions": [{"type": "spatial", "axis": ["x", "y"]}]}
    for service_id in ("ndvi-composite", "vegetation-change"):
        returns = services[service_id]["returns"]
        assert returns["format"] == "GTiff" and returns["media_type"].startswith("image/tiff; application=geotiff")
        assert returns["schema"] == raster and "GeoTIFF" in returns["description"]
    zonal = services["zonal-statistics"]["returns"]
    assert zonal["format"] == "JSON" and zonal["media_type"] == "application/json"
    assert zonal["schema"]["dimensions"] == [{"type": "geometry"}]  # a vector data cube: one value per zone
    assert not [s for s in services.values() if s["returns"]["schema"].get("type") == "boolean"]
    # the single-service view says the same
    assert customers.request("GET", "/services/zonal-statistics", "cus-carol").json()["returns"] == zonal


def test_admins_publish_update_and_withdraw_services(api, customers):
    # Given a new service published by an admin
    process = {"summary": "Median RGB", "description": "A true-colour median.",
               "parameters": [{"name": "area", "description": "Area", "schema": {"type": "object",
                                                                                   "subtype": "geojson"}},
                              {"name": "start_date", "description": "Start", "schema": DATE},
                              {"name": "end_date", "description": "End", "schema": DATE}],
               "process_graph": {
                   "load": {"process_id": "load_collection", "arguments": {
                       "id": COLLECTION, "spatial_extent": {"from_parameter": "area"},
                       "temporal_extent": [{"from_parameter": "start_date"}, {"from_parameter": "end_date"}],
                       "bands": ["B02", "B03", "B04"]}},
                   "median": {"process_id": "reduce_dimension", "arguments": {
                       "data": {"from_node": "load"}, "dimension": "t", "reducer": {"process_graph": {"m": {
                           "process_id": "median", "arguments": {"data": {"from_parameter": "data"}},
                           "result": True}}}}},
                   "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "median"},
                                                                      "format": "GTiff"}, "result": True}},
               "default_usage_limit": {"limit": 3, "interval_s": 3600}}
    created = customers.request("PUT", "/services/rgb-median", "cus-admin", json_body=process)
    assert created.status == 201, created.body
    assert created.headers["location"].endswith("/api/v1/services/rgb-median")
    # customers need the scope for it
    assert "rgb-median" not in [s["id"] for s in customers.request("GET", "/services", "cus-carol").json()["services"]]
    customers.add("cus-rgb", scopes=("service:rgb-median",))
    assert [s["id"] for s in customers.request("GET", "/services", "cus-rgb").json()["services"]] == ["rgb-median"]
    order = customers.order("cus-rgb", "rgb-median")
    assert order.status == 201, order.body

    # When it is updated, and a shipped service is overridden
    process["summary"] = "Median true colour"
    assert customers.request("PUT", "/services/rgb-median", "cus-admin", json_body=process).status == 200
    assert customers.request("GET", "/services/rgb-median", "cus-rgb").json()["title"] == "Median true colour"
    # and the catalogue says what it delivers, though the definition declared no `returns`
    assert customers.request("GET", "/services/rgb-median", "cus-rgb").json()["returns"]["format"] == "GTiff"

    # When services are withdrawn (one from the table, one shipped)
    for service_id in ("rgb-median", "zonal-statistics"):
        withdrawn = customers.request("DELETE", f"/services/{service_id}", "cus-admin")
        assert withdrawn.status == 200 and withdrawn.json()["published"] is False
    assert ServiceModel.get("zonal-statistics").published is False
    # Then customers no longer see nor order them, admins see them flagged
    assert customers.request("GET", "/services", "cus-rgb").json()["services"] == []
    assert "zonal-statistics" not in [s["id"] for s in customers.request("GET", "/services", "cus-carol")
                                      .json()["services"]]
    refused = customers.order("cus-rgb", "rgb-median")
    assert refused.status == 404 and refused.json()["code"] == "ServiceNotFound"
    admin_view = {s["id"]: s for s in customers.request("GET", "/services", "cus-admin").json()["services"]}
    assert admin_view["rgb-median"]["published"] is False and admin_view["ndvi-composite"]["published"] is True
    assert admin_view["zonal-statistics"]["overrides_shipped"] is True
    # and the order made before the withdrawal is still there
    assert customers.request("GET", f"/orders/{order.json()['order_id']}", "cus-rgb").json()["service"] == "rgb-median"


def test_publishing_is_for_admins_and_validated(api, customers):
    denied = customers.request("PUT", "/services/x", "cus-carol", json_body={"process_graph": {}})
    assert denied.status == 403 and denied.json()["code"] == "ScopeMissing"
    assert customers.request("DELETE", "/services/ndvi-composite", "cus-carol").status == 403
    bad_graph = {"parameters": [], "process_graph": {"a": {"process_id": "no_such_process", "arguments": {},
                                                           "result": True}}}
    invalid = customers.request("PUT", "/services/broken", "cus-admin", json_body=bad_graph)
    assert invalid.status == 400 and invalid.json()["code"] == "InvalidRequest"
    assert "no_such_process" in invalid.json()["message"]
    unbound = {"parameters": [], "process_graph": {"a": {"process_id": "add", "arguments": {
        "x": {"from_parameter": "undeclared"}, "y": 1}, "result": True}}}
    assert customers.request("PUT", "/services/broken", "cus-admin", json_body=unbound).status == 400
    assert customers.request("PUT", "/services/Bad_Id", "cus-admin", json_body=unbound).status == 400
    assert customers.request("DELETE", "/services/nope", "cus-admin").status == 404


# --- orders -----------------------------------------------------------------------------------------

def test_an_order_is_received_started_and_visible_as_a_job(api, customers):
    response = customers.order("cus-carol", title="Bolzano June")
    assert response.status == 201, response.body
    body = response.json()
    order_id = body["order_id"]
    assert body["status"] == "QUEUED" and body["service"] == "ndvi-composite"  # started at once
    assert response.headers["location"] == f"http://testserver/api/v1/orders/{order_id}"
    assert any(link["rel"] == "self" for link in body["links"])

    # the job was started through the workflow (a run id, an execution), with the parameters bound
    item = JobModel.get(order_id)
    assert item.user_id == "cus-carol" and item.service_id == "ndvi-composite" and item.run_id
    assert item.order["notify"] == {"email": True, "webhook_url": None}
    load = item.process["process_graph"]["load"]["arguments"]
    assert load["spatial_extent"] == BOLZANO and load["temporal_extent"] == ["2022-06-01", "2022-07-01"]
    assert load["id"] == COLLECTION
    sfn = boto3.client("stepfunctions", region_name="eu-central-1")
    executions = sfn.list_executions(stateMachineArn=api.settings.state_machine_arn)["executions"]
    assert any(e["name"].endswith(item.run_id) for e in executions)

    order = customers.request("GET", f"/orders/{order_id}", "cus-carol").json()
    assert order["status"] == "QUEUED" and order["parameters"]["area"] == BOLZANO
    assert order["created"] and order["title"] == "Bolzano June" and "results" not in order

    # one model: the order is a job of the customer in the openEO API
    openeo = api.get("/openeo/1.2/jobs", headers=customers.openeo_headers("cus-carol"))
    assert openeo.status == 200 and order_id in [job["id"] for job in openeo.json()["jobs"]]

    # it moves on with its job
    _advance(api, order_id, JobStatus.RUNNING)
    running = customers.request("GET", f"/orders/{order_id}", "cus-carol").json()
    assert running["status"] == "RUNNING" and running["started"]
    listed = customers.request("GET", "/orders", "cus-carol").json()
    assert [o["order_id"] for o in listed["orders"]] == [order_id] and listed["orders"][0]["status"] == "RUNNING"


def test_an_idempotency_key_makes_retries_safe(api, customers):
    first = customers.order("cus-carol", key="order-42")
    again = customers.order("cus-carol", key="order-42")
    assert first.status == 201 and again.status == 200
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again.headers["location"] == first.headers["location"]
    assert JobModel.count() == 1
    # the same key for another request is a conflict
    conflict = customers.order("cus-carol", key="order-42", parameters={"area": BOLZANO, "start_date": "2022-06-02",
                                                                       "end_date": "2022-07-01"})
    assert conflict.status == 409 and conflict.json()["code"] == "IdempotencyConflict"
    # the key is the customer's own: another customer's same key makes another order
    other = customers.order("cus-dave", key="order-42")
    assert other.status == 201 and other.json()["order_id"] != first.json()["order_id"]


def test_orders_need_the_service_scope(api, customers):
    customers.add("cus-ndvi-only", scopes=("service:ndvi-composite",))
    refused = customers.order("cus-ndvi-only", "zonal-statistics")
    assert refused.status == 403 and refused.json()["code"] == "ScopeMissing"
    assert "service:zonal-statistics" in refused.json()["message"]
    missing = customers.order("cus-carol", "no-such-service")
    assert missing.status == 403  # no scope for an unknown service either: nothing is revealed
    admin_missing = customers.order("cus-admin", "no-such-service")
    assert admin_missing.status == 404 and admin_missing.json()["code"] == "ServiceNotFound"
    assert JobModel.count() == 0


def test_usage_limits_refuse_with_a_clear_error(api, customers):
    customers.add("cus-limited", usage_limits={"ndvi-composite": {"limit": 2, "interval_s": 3600}})
    assert customers.order("cus-limited").status == 201
    assert customers.order("cus-limited").status == 201
    refused = customers.order("cus-limited")
    assert refused.status == 429 and refused.json()["code"] == "UsageLimitExceeded"
    assert "2 order(s) of 'ndvi-composite' per 3600 s" in refused.json()["message"]
    assert 3500 < int(refused.headers["retry-after"]) <= 3600
    # other services and other customers are not affected; an idempotent retry is not a new order
    assert customers.order("cus-limited", "zonal-statistics", parameters={
        "area": {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": BOLZANO}]},
        **JUNE}).status == 201
    assert customers.order("cus-carol").status == 201


def test_orders_older_than_the_interval_do_not_count(api, customers):
    customers.add("cus-limited", usage_limits={"ndvi-composite": {"limit": 1, "interval_s": 60}})
    first = customers.order("cus-limited").json()["order_id"]
    assert customers.order("cus-limited").status == 429
    # the first order's usage slot is held for the interval; let it end
    (slot,) = LimitModel.scan(LimitModel.holder == first)
    slot.update(actions=[LimitModel.expires.set(time.time() - 1)])
    assert customers.order("cus-limited").status == 201


def test_parallel_orders_cannot_overshoot_the_usage_limit(api, customers):
    # Given a limit of 3 orders a day
    customers.add("cus-limited", usage_limits={"ndvi-composite": {"limit": 3, "interval_s": 86400}})
    # When 20 orders are placed at once
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: customers.order("cus-limited"), range(20)))
    elapsed = time.monotonic() - started
    # Then exactly 3 are accepted and 17 refused with the true Retry-After
    statuses = sorted(r.status for r in responses)
    print(f"\n20 parallel orders, limit 3: {statuses.count(201)} accepted, {statuses.count(429)} refused "
          f"in {elapsed:.1f} s")
    assert statuses == [201] * 3 + [429] * 17
    for refused in (r for r in responses if r.status == 429):
        assert refused.json()["code"] == "UsageLimitExceeded"
        assert 86300 < int(refused.headers["retry-after"]) <= 86400
    assert sum(1 for _ in JobModel.scan(JobModel.user_id == "cus-limited")) == 3


def test_invalid_parameters_are_refused_at_once(api, customers):
    cases = [
        {"area": BOLZANO, "start_date": "2022-06-01"},  # missing end_date
        {"area": BOLZANO, "start_date": "June", "end_date": "2022-07-01"},  # not a date
        {"area": {"type": "Point", "coordinates": [11.3, 46.5]}, **JUNE},  # not a polygon
        {"area": "Bolzano", **JUNE},  # not an object
        {"area": BOLZANO, **JUNE, "cloud_cover": 10},  # unknown parameter
        {"area": BOLZANO, "start_date": "2022-07-01", "end_date": "2022-06-01"},  # empty period
        {"area": {"from_node": "x"}, **JUNE},  # graph references are no values
    ]
    for parameters in cases:
        response = customers.order("cus-carol", parameters=parameters)
        assert response.status == 400 and response.json()["code"] == "InvalidRequest", (parameters, response.body)
    bad_notify = customers.order("cus-carol", notify={"webhook_url": "ftp://example.com/hook"})
    assert bad_notify.status == 400
    assert customers.request("POST", "/services/ndvi-composite/orders", "cus-carol", data=b"{",
                             content_type="application/json").status == 400
    assert JobModel.count() == 0


@pytest.mark.parametrize(("area", "code"), [
    (PARIS, "NoDataAvailable"),
    ({"type": "Polygon", "coordinates": [[[11.33, 46.49], [11.34, 46.49], [11.34, 46.5], [11.33, 46.5]]]},
     "GeometryInvalid"),  # ring not closed
    ({"type": "Polygon", "coordinates": [[[11.33, 46.49], [11.34, 46.5], [11.34, 46.49], [11.33, 46.5],
                                          [11.33, 46.49]]]}, "GeometryInvalid"),  # a bow tie
    ({"type": "Polygon", "coordinates": [[[46.49, 11.33], [46.5, 11.33], [46.5, 191.34], [46.49, 11.33]]]},
     "GeometryInvalid"),  # not lon/lat
    ({"type": "Polygon", "coordinates": [[[10.0, 46.0], [11.0, 46.0], [11.0, 47.0], [10.0, 47.0], [10.0, 46.0]]]},
     "AreaTooLarge"),  # ~8 500 km²
])
def test_input_that_can_never_succeed_ends_invalid_through_the_status_queue(api, customers, area, code):
    # When the order is placed
    response = customers.order("cus-carol", parameters={"area": area, **JUNE},
                               notify={"email": True, "webhook_url": PUBLIC_WEBHOOK})
    # Then it is accepted, but not started
    assert response.status == 201, response.body
    order_id = response.json()["order_id"]
    assert response.json()["status"] == "RECEIVED"
    sfn = boto3.client("stepfunctions", region_name="eu-central-1")
    assert sfn.list_executions(stateMachineArn=api.settings.state_machine_arn)["executions"] == []
    # and its end travels through the status queue
    messages = _queued(api, "status")
    events = [json.loads(m["Body"]) for m in messages]
    assert [(e["job_id"], e["status"], e["error_code"]) for e in events] == [(order_id, "error", code)]
    assert events[0]["run_id"] == JobModel.get(order_id).run_id

    # When the status consumer records it
    _deliver_status_events(api, messages)
    # Then the order is INVALID, with a reason, and its log tells why
    order = customers.request("GET", f"/orders/{order_id}", "cus-carol").json()
    assert order["status"] == "INVALID" and order["error_code"] == code and order["finished"]
    assert order["status_reason"] and order["notify"]["webhook_url"] == PUBLIC_WEBHOOK
    # and the webhook is left to the webhook function: one delivery of ids only on its queue
    (delivery,) = [json.loads(m["Body"]) for m in _queued(api, "webhook")]
    assert set(delivery) == {"event_id", "order_id", "order_status", "time"}
    assert (delivery["order_id"], delivery["order_status"]) == (order_id, "INVALID")
    assert JobModel.get(order_id).error_code == code
    invalid = customers.request("GET", "/orders?status=INVALID", "cus-carol").json()["orders"]
    assert [o["order_id"] for o in invalid] == [order_id]
    assert customers.request("GET", "/orders?status=FAILED", "cus-carol").json()["orders"] == []
    logs = customers.request("GET", f"/orders/{order_id}/logs?level=ERROR", "cus-carol").json()["logs"]
    assert [(entry["level"], entry.get("code")) for entry in logs] == [("ERROR", code)]
    # and an openEO client sees a failed job
    job = api.get(f"/openeo/1.2/jobs/{order_id}", headers=customers.openeo_headers("cus-carol"))
    assert job.json()["status"] == "error"


def test_another_customers_order_is_invisible(api, customers):
    order_id = customers.order("cus-carol").json()["order_id"]
    for method, path in (("GET", f"/orders/{order_id}"), ("DELETE", f"/orders/{order_id}"),
                         ("GET", f"/orders/{order_id}/logs")):
        response = customers.request(method, path, "cus-dave")
        assert response.status == 404 and response.json()["code"] == "OrderNotFound", (method, path)
    assert customers.request("GET", "/orders", "cus-dave").json()["orders"] == []
    refused = customers.request("GET", "/orders?customer_id=cus-carol", "cus-dave")
    assert refused.status == 403
    assert customers.request("GET", f"/orders/{order_id}", "cus-carol").json()["status"] == "QUEUED"
    # an openEO job that is no order is no order
    job = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": {"process_graph": {
        "a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}})
    job_id = job.headers["openeo-identifier"]
    assert customers.request("GET", f"/orders/{job_id}", "cus-admin").status == 404
    # admins see every order, or one customer's
    assert customers.request("GET", f"/orders/{order_id}", "cus-admin").status == 200
    everyone = customers.request("GET", "/orders", "cus-admin").json()["orders"]
    assert [o["order_id"] for o in everyone] == [order_id]
    carol = customers.request("GET", "/orders?customer_id=cus-carol", "cus-admin").json()["orders"]
    assert [o["order_id"] for o in carol] == [order_id]


def test_cancel_is_cancelled_and_repeatable(api, customers):
    order_id = customers.order("cus-carol").json()["order_id"]
    _advance(api, order_id, JobStatus.RUNNING)
    first = customers.request("DELETE", f"/orders/{order_id}", "cus-carol")
    assert first.status == 200 and first.json()["status"] == "CANCELLED"
    again = customers.request("DELETE", f"/orders/{order_id}", "cus-carol")
    assert again.status == 200 and again.json()["status"] == "CANCELLED"
    order = customers.request("GET", f"/orders/{order_id}", "cus-carol").json()
    assert order["status"] == "CANCELLED" and order["status_reason"]
    # the execution was stopped
    sfn = boto3.client("stepfunctions", region_name="eu-central-1")
    run_id = JobModel.get(order_id).run_id
    executions = sfn.list_executions(stateMachineArn=api.settings.state_machine_arn)["executions"]
    assert [e["status"] for e in executions if e["name"].endswith(run_id)] == ["ABORTED"]


def test_a_cancelled_order_is_told_like_every_other_end(api, customers):
    # Given a running order whose customer wants an e-mail and a webhook
    order_id = customers.order("cus-carol", notify={"email": True, "webhook_url": PUBLIC_WEBHOOK}).json()["order_id"]
    _advance(api, order_id, JobStatus.RUNNING)
    # When it is cancelled, twice
    assert customers.request("DELETE", f"/orders/{order_id}", "cus-carol").json()["status"] == "CANCELLED"
    assert customers.request("DELETE", f"/orders/{order_id}", "cus-carol").json()["status"] == "CANCELLED"
    # Then its end travels through the status queue once
    messages = _queued(api, "status")
    assert [(json.loads(m["Body"])["job_id"], json.loads(m["Body"])["status"]) for m in messages] == \
        [(order_id, "canceled")]
    # and the status consumer tells the customer: one e-mail, one webhook, marked told
    sent_before = len(_outbox())
    _deliver_status_events(api, messages)
    _deliver_status_events(api, messages)  # a redelivery tells nothing twice
    (mail,) = _outbox()[sent_before:]
    assert mail.destinations["ToAddresses"] == ["cus-carol@example.com"] and "CANCELLED" in mail.subject
    (delivery,) = [json.loads(m["Body"]) for m in _queued(api, "webhook")]
    assert (delivery["order_id"], delivery["order_status"]) == (order_id, "CANCELLED")
    assert JobModel.get(order_id).notified == "CANCELLED"


def _outbox() -> list:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"].sent_messages


def test_a_successful_order_has_results_and_is_a_product(api, customers):
    from stratus_processing.io.save import save_geotiff
    from stratus_processing.manifest import build_manifest
    from stratus_processing.results import S3ResultStore
    import numpy as np
    from tests.unit.processing.processing_testkit import red_nir_cube, small_grid, utc

    order_id = customers.order("cus-carol").json()["order_id"]
    other = customers.order("cus-carol").json()["order_id"]  # still running: no product
    _advance(api, order_id, JobStatus.RUNNING)
    run_id = JobModel.get(order_id).run_id
    store = S3ResultStore(boto3.client("s3", region_name="eu-central-1"), api.settings.results_bucket,
                          catalog_layout.results_prefix(order_id, run_id))
    cube = red_nir_cube(np.full((1, 2, 3), 0.1), np.full((1, 2, 3), 0.5),
                        grid=small_grid(3, 2, west=679720.0, north=5151920.0), times=[utc(2022, 6, 2, 10)])
    save_geotiff(cube, store)
    store.write_manifest(build_manifest(store.assets))
    _advance(api, order_id, JobStatus.FINISHED)

    order = customers.request("GET", f"/orders/{order_id}", "cus-carol").json()
    assert order["status"] == "SUCCESS" and order["progress"] == 100 and order["finished"]
    result = order["results"][0]
    assert result["href"].startswith("https://") and "X-Amz-Signature" in result["href"]
    assert result["type"].startswith("image/tiff") and result["expires"] and result["title"]

    products = customers.request("GET", "/products", "cus-carol").json()["products"]
    assert [p["order_id"] for p in products] == [order_id]
    [product] = products
    assert product["service"] == "ndvi-composite" and product["stac"]["type"] == "Collection"
    assert product["stac"]["id"] == order_id and product["downloads"][0]["href"].startswith("https://")
    assert other not in [p["order_id"] for p in products]
    assert customers.request("GET", "/products", "cus-dave").json()["products"] == []


def test_logging_goes_through_the_log_queue(api, customers):
    order_id = customers.order("cus-carol").json()["order_id"]
    customers.add("cus-component", scopes=("logging",))
    _queued(api, "log")
    for user in ("cus-carol", "cus-admin", "cus-component"):
        response = customers.request("POST", "/logging", user, json_body={
            "order_id": order_id, "level": "WARNING", "message": f"from {user}", "component": "qa",
            "data": {"tile": 7}})
        assert response.status == 202, response.body
    events = [json.loads(m["Body"]) for m in _queued(api, "log")]
    assert [(e["job_id"], e["level"], e["message"]) for e in events] == [
        (order_id, "warning", f"from {user}") for user in ("cus-carol", "cus-admin", "cus-component")]
    assert events[0]["data"] == {"component": "qa", "reported_by": "cus-carol", "data": {"tile": 7}}
    # refused: someone else's order, a bad level, no message
    assert customers.request("POST", "/logging", "cus-dave", json_body={
        "order_id": order_id, "level": "INFO", "message": "x"}).status == 404
    assert customers.request("POST", "/logging", "cus-carol", json_body={
        "order_id": order_id, "level": "CRITICAL", "message": "x"}).status == 400
    assert customers.request("POST", "/logging", "cus-carol", json_body={
        "order_id": order_id, "level": "INFO", "message": ""}).status == 400
    assert _queued(api, "log") == []


def test_order_logs_are_filtered_and_paged(api, customers):
    order_id = customers.order("cus-carol").json()["order_id"]
    logs = customers.request("GET", f"/orders/{order_id}/logs", "cus-carol").json()
    assert logs["order_id"] == order_id and logs["logs"][0]["level"] == "INFO"
    assert "received" in logs["logs"][0]["message"]
    assert customers.request("GET", f"/orders/{order_id}/logs?level=ERROR", "cus-carol").json()["logs"] == []
    assert customers.request("GET", f"/orders/{order_id}/logs?level=LOUD", "cus-carol").status == 400
    page = customers.request("GET", f"/orders/{order_id}/logs?limit=1", "cus-carol").json()
    assert len(page["logs"]) == 1 and page["links"][0]["rel"] == "next"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",  # a name that resolves to loopback
    "http://2130706433:{port}/",  # 127.0.0.1 spelt as a number
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://100.64.0.1/hook",
    "http://no-such-host.invalid/hook",  # unresolvable: the same answer, so names inside can't be probed
])
def test_a_webhook_to_a_non_public_address_is_refused_and_never_called(api, customers, url):
    with ConnectionRecorder() as recorder:
        # When a customer orders with a webhook to an internal address
        response = customers.order("cus-carol", notify={"webhook_url": url.format(port=recorder.port)})
        # Then the order is refused in the order service's format, without telling what is there
        assert response.status == 400 and response.json()["code"] == "InvalidRequest", response.body
        message = response.json()["message"]
        assert "not a public address" in message
        assert "127.0.0.1" not in message and "169.254" not in message and "resolve" not in message
    # and nothing was contacted, nor an order made
    assert recorder.connections == 0
    assert JobModel.count() == 0



def _webhook_records(api) -> list[dict]:
    """The webhook queue's visible messages as SQS event records (left on the queue, as the mapping does)."""
    sqs = boto3.client("sqs", region_name="eu-central-1")
    messages = sqs.receive_message(QueueUrl=api.settings.webhook_queue_url, MaxNumberOfMessages=10,
                                   AttributeNames=["All"]).get("Messages", [])
    return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
             "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:webhooks",
             "awsRegion": "eu-central-1"} for m in messages]


def test_an_ended_orders_webhook_is_delivered_by_the_webhook_function_and_retried(api, customers, monkeypatch):
    # Given an operator who allow-listed their own receiver on 127.0.0.1
    monkeypatch.setenv("STRATUS_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
    sys.modules["routers.shared.context"].backend.cache_clear()
    webhook_function = load_handler(resources.FUNCTIONS["webhooks"])
    sys.modules["stratus_fn_WebhookSender"].backend.cache_clear()
    with WebhookReceiver(503, 204) as receiver:
        # When an order with a webhook to it ends (INVALID: no data in Paris)
        response = customers.order("cus-carol", parameters={"area": PARIS, **JUNE},
                                   notify={"email": False, "webhook_url": receiver.url()})
        assert response.status == 201, response.body
        order_id = response.json()["order_id"]
        _deliver_status_events(api, _queued(api, "status"))
        assert receiver.received == []  # the status consumer only enqueued it
        # and the webhook function gets it, while the receiver answers 503
        (record,) = _webhook_records(api)
        first = webhook_function({"Records": [record]}, LocalLambdaContext(function_name="stratus-webhooks"))
        # Then the record fails (SQS will deliver it again after the backoff)
        assert first["batchItemFailures"] == [{"itemIdentifier": record["messageId"]}]
        # When SQS delivers it again (made visible at once here) and the receiver accepts it
        sqs = boto3.client("sqs", region_name="eu-central-1")
        sqs.change_message_visibility(QueueUrl=api.settings.webhook_queue_url,
                                      ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0)
        (again,) = _webhook_records(api)
        assert again["messageId"] == record["messageId"] and again["attributes"]["ApproximateReceiveCount"] == "2"
        second = webhook_function({"Records": [again]}, LocalLambdaContext(function_name="stratus-webhooks"))
    # Then it is delivered, signed with the key the customer can fetch, with the same event id both times
    assert second["batchItemFailures"] == []
    (headers, body), (retry_headers, retry_body) = receiver.received
    assert body == retry_body and headers["X-Stratus-Event-Id"] == retry_headers["X-Stratus-Event-Id"]
    notice = json.loads(body)
    assert (notice["order_id"], notice["status"], notice["error_code"]) == (order_id, "INVALID", "NoDataAvailable")
    secret = customers.request("GET", "/auth/webhook-secret", "cus-carol").json()["webhook_secret"]
    assert verify(secret, body, retry_headers["X-Stratus-Signature"])
    # and the order's log tells each outcome once, in general words
    logged = [json.loads(m["Body"]) for m in _queued(api, "log")]
    assert [(e["job_id"], e["message"]) for e in logged if e.get("code") == "WebhookDelivery"] == [
        (order_id, "Webhook not delivered: the receiver did not accept it (HTTP 503); retrying."),
        (order_id, "Webhook delivered (HTTP 204)."),
    ]
