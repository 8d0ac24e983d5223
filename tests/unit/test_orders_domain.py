"""Order-service domain: parameter checks and binding, geometry validity and area, status mapping,
usage limits, idempotency and the INVALID path (fakes, and the real tables where counting matters)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from stratus.domain.jobs import Job, JobService, apply_status_event
from stratus.domain.order_inputs import (
    area_km2,
    bind_parameters,
    check_parameters,
    geometry_problems,
    schema_problems,
)
from stratus.domain.lifecycle import INVALID, order_status
from stratus.domain.orders import (
    Order,
    OrderService,
    idempotent_order_id,
    no_data_problem,
    request_fingerprint,
    usage_retry_after,
)
from stratus.domain.principal import Principal
from stratus.domain.services import Service, ServiceCatalog, shipped_services
from stratus.events import JobStatus
from stratus.order_errors import (
    IdempotencyConflictException,
    InvalidRequestException,
    ScopeMissingException,
    ServiceNotFoundException,
    UsageLimitExceededException,
)
from stratus.domain.limits import UsageSlots
from stratus.store.jobs import DynamoJobRepository
from stratus.store.limits import DynamoSlotStore
from stratus.store.logs import DynamoLogRepository
from stratus.store.models import JobModel, UserModel
from stratus.store.order_notices import DynamoOrderEndStore
from stratus.store.orders import DynamoOrderRepository

COLLECTION = "s2-demo"
SQUARE = {"type": "Polygon", "coordinates": [[[11.33, 46.49], [11.34, 46.49], [11.34, 46.5], [11.33, 46.5],
                                              [11.33, 46.49]]]}
JUNE = {"start_date": "2022-06-01", "end_date": "2022-07-01"}
CAROL = Principal("cus-carol", frozenset({"service:ndvi-composite", "service:zonal-statistics"}))


# --- parameter schemas --------------------------------------------------------------------------------

def test_shipped_service_parameters_accept_a_good_order_and_name_every_problem():
    service = shipped_services(COLLECTION)["ndvi-composite"]
    assert check_parameters(service.parameters, {"area": SQUARE, **JUNE}) == []
    problems = check_parameters(service.parameters, {"area": {"type": "Point", "coordinates": [1, 2]},
                                                     "start_date": "2022-13-01", "extra": 1})
    text = " | ".join(problems)
    assert "unknown parameter 'extra'" in text and "'end_date' is required" in text
    assert "'start_date' must be a date" in text and "'area.type' must be one of" in text
    assert check_parameters(service.parameters, "not an object") == ["`parameters` must be an object"]


def test_schema_subset():
    assert schema_problems({"type": "integer", "minimum": 1, "maximum": 5}, 3, "n") == []
    assert schema_problems({"type": "integer"}, True, "n") == ["'n' must be of type integer, got boolean"]
    assert schema_problems({"type": "integer", "maximum": 5}, 6, "n") == ["'n' must be at most 5"]
    assert schema_problems({"enum": ["median", "mean"]}, "max", "s")
    assert schema_problems([{"type": "null"}, {"type": "string", "subtype": "date-time"}], None, "t") == []
    assert schema_problems([{"type": "null"}, {"type": "string", "subtype": "date-time"}],
                           "2022-06-01T00:00:00Z", "t") == []
    assert schema_problems([{"type": "null"}, {"type": "string", "subtype": "date-time"}], "soon", "t")
    assert schema_problems({"type": "array", "items": {"type": "number"}, "maxItems": 2}, [1, "x", 3], "a") == [
        "'a' must have at most 2 item(s)", "'a[1]' must be of type number, got string"]


def test_graph_references_are_not_parameter_values():
    service = shipped_services(COLLECTION)["ndvi-composite"]
    problems = check_parameters(service.parameters, {"area": {"type": "Polygon", "coordinates": [],
                                                              "x": {"from_parameter": "y"}}, **JUNE})
    assert problems and "plain value" in problems[0]


# --- binding ------------------------------------------------------------------------------------------

def test_binding_replaces_top_level_references_only():
    graph = {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "c", "spatial_extent": {"from_parameter": "area"},
            "temporal_extent": [{"from_parameter": "start"}, {"from_parameter": "end"}]}},
        "reduce": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "t", "reducer": {"process_graph": {
                "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "reduce"},
                                                           "format": {"from_parameter": "format"},
                                                           "options": {"from_parameter": "options"}},
                 "result": True},
    }
    parameters = [{"name": "area", "schema": {}}, {"name": "start", "schema": {}}, {"name": "end", "schema": {}},
                  {"name": "format", "schema": {}, "default": "GTiff"},
                  {"name": "options", "schema": {}, "optional": True},
                  {"name": "data", "schema": {}, "optional": True, "default": "must not reach the callback"}]
    bound = bind_parameters(graph, parameters, {"area": SQUARE, "start": "2022-06-01", "end": "2022-07-01"})
    assert bound["load"]["arguments"]["spatial_extent"] == SQUARE
    assert bound["load"]["arguments"]["temporal_extent"] == ["2022-06-01", "2022-07-01"]
    assert bound["save"]["arguments"]["format"] == "GTiff" and bound["save"]["arguments"]["options"] is None
    # the callback's own parameter is untouched, even though a service parameter has that name
    assert bound["reduce"]["arguments"]["reducer"] == graph["reduce"]["arguments"]["reducer"]
    assert bound["reduce"]["arguments"]["data"] == {"from_node": "load"}
    # the service's graph itself is not modified
    assert graph["load"]["arguments"]["spatial_extent"] == {"from_parameter": "area"}


def test_every_shipped_service_binds_to_a_graph_without_open_references():
    values = {"ndvi-composite": {"area": SQUARE, **JUNE},
              "vegetation-change": {"area": SQUARE, "reference_start": "2021-06-01", "reference_end": "2021-07-01",
                                    **JUNE},
              "zonal-statistics": {"area": {"type": "FeatureCollection", "features": [
                  {"type": "Feature", "properties": {}, "geometry": SQUARE}]}, **JUNE},
              "land-cover-classification": {"area": SQUARE, "training_polygons": {
                  "type": "FeatureCollection", "features": [
                      {"type": "Feature", "properties": {"target": target}, "geometry": SQUARE}
                      for target in (1, 1, 2, 2)]}, **JUNE}}
    services = shipped_services(COLLECTION)
    assert set(services) == set(values)
    for service_id, service in services.items():
        assert check_parameters(service.parameters, values[service_id]) == [], service_id
        bound = bind_parameters(service.process_graph, service.parameters, values[service_id])
        top_level = json.dumps({k: {**n, "arguments": {a: v for a, v in n["arguments"].items()
                                                      if not (isinstance(v, dict) and "process_graph" in v)}}
                                for k, n in bound.items()})
        assert "from_parameter" not in top_level, service_id
        loads = [n for n in bound.values() if n["process_id"] == "load_collection"]
        assert loads and all(n["arguments"]["id"] == COLLECTION for n in loads)


# --- geometry and area --------------------------------------------------------------------------------

@pytest.mark.parametrize(("geometry", "expected"), [
    (SQUARE, None),
    ({"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]}, None),
    ({"type": "Polygon", "coordinates": [[[11.33, 46.49], [11.34, 46.49], [11.34, 46.5], [11.33, 46.5]]]},
     "not closed"),
    ({"type": "Polygon", "coordinates": [[[11.33, 46.49], [11.34, 46.49], [11.33, 46.49]]]}, "at least 4"),
    ({"type": "Polygon", "coordinates": [[[11.33, 46.49], [11.34, 46.49], [11.35, 46.49], [11.33, 46.49]]]},
     "no area"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, "crosses itself"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [1, 2], [1, -1], [0, 0]]]}, "crosses itself"),
    ({"type": "Polygon", "coordinates": [[[46.49, 11.33], [46.5, 191.34], [46.6, 11.33], [46.49, 11.33]]]},
     "not a longitude/latitude"),
    ({"type": "Polygon", "coordinates": [[["11.33", 46.49], [11.34, 46.49], [11.34, 46.5], [11.33, 46.49]]]},
     "pairs of numbers"),
    ({"type": "Polygon", "coordinates": []}, "no rings"),
    ({"type": "Point", "coordinates": [1, 2]}, "no Polygon"),
])
def test_geometry_problems(geometry, expected):
    problems = geometry_problems(geometry)
    if expected is None:
        assert problems == []
    else:
        assert problems and expected in problems[0], problems


def test_geometry_problems_in_feature_collections_name_the_polygon():
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": SQUARE}, {"type": "Feature", "geometry": bowtie}]}
    assert geometry_problems(collection) == ["polygon 2, exterior ring: the ring crosses itself"]


def test_area_on_the_sphere():
    # one degree square at the equator: 12 308 km² on the WGS 84 ellipsoid; the sphere of the equatorial
    # radius overestimates by 0.7 %, which is fine for a size limit
    degree = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    assert area_km2(degree) == pytest.approx(12_308, rel=0.01)
    # 0.01° x 0.01° at 46.5° N: ~0.766 km x 1.112 km (orientation does not matter)
    assert area_km2(SQUARE) == pytest.approx(0.766 * 1.112, rel=0.01)
    reversed_square = {"type": "Polygon", "coordinates": [list(reversed(SQUARE["coordinates"][0]))]}
    assert area_km2(reversed_square) == pytest.approx(area_km2(SQUARE))
    # holes are subtracted, features add up
    with_hole = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]],
                                                    [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75],
                                                     [0.25, 0.25]]]}
    assert area_km2(with_hole) == pytest.approx(area_km2(degree) * 0.75, rel=0.001)
    collection = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": degree},
                                                            {"type": "Feature", "geometry": degree}]}
    assert area_km2(collection) == pytest.approx(2 * area_km2(degree))


# --- status mapping and usage limits -----------------------------------------------------------------

def test_status_mapping():
    assert [order_status(s, None) for s in JobStatus] == ["RECEIVED", "QUEUED", "RUNNING", "SUCCESS", "FAILED",
                                                          "CANCELLED"]
    for code in ("NoDataAvailable", "GeometryInvalid", "AreaTooLarge"):
        assert order_status(JobStatus.ERROR, code) == INVALID
    assert order_status(JobStatus.ERROR, "Internal") == "FAILED"
    # the code only counts once the job failed
    assert order_status(JobStatus.CREATED, "NoDataAvailable") == "RECEIVED"


def test_usage_retry_after():
    now = datetime(2024, 1, 1, 12, tzinfo=UTC)
    minutes = [now - timedelta(minutes=m) for m in (50, 30, 10)]
    assert usage_retry_after(minutes, 4, 3600, now) is None
    # 3 of 3: possible again when the oldest leaves the hour
    assert usage_retry_after(minutes, 3, 3600, now) == now + timedelta(minutes=10)
    # over the limit (lowered since): two must leave
    assert usage_retry_after(minutes, 2, 3600, now) == now + timedelta(minutes=30)
    # orders before the interval do not count
    assert usage_retry_after([now - timedelta(hours=2), *minutes[1:]], 3, 3600, now) is None
    assert usage_retry_after([], 0, 3600, now) == now + timedelta(hours=1)


def test_counting_orders_in_the_interval_uses_the_users_jobs(tables):
    repository = DynamoOrderRepository()
    now = datetime.now(UTC)
    for index, (user, service, age) in enumerate([("cus-a", "ndvi-composite", 10), ("cus-a", "ndvi-composite", 50),
                                                  ("cus-a", "ndvi-composite", 7200), ("cus-a", "zonal-statistics", 5),
                                                  ("cus-b", "ndvi-composite", 5)]):
        created = now - timedelta(seconds=age)
        job = Job(job_id=f"j-{index}", user_id=user, process={}, created=created, updated=created)
        assert repository.add(Order(job=job, service_id=service, parameters={}, notify={}, request_hash=""))
    # an openEO job of the same user is no order
    JobModel("j-openeo", user_id="cus-a", process={}, created=now, updated=now).save()
    times = repository.created_since("cus-a", "ndvi-composite", now - timedelta(hours=1))
    assert sorted(times) == sorted([now - timedelta(seconds=50), now - timedelta(seconds=10)])
    assert repository.get("j-openeo") is None and repository.get("j-0").service_id == "ndvi-composite"
    orders, _ = repository.list_for_user("cus-a", 10, None)
    assert [o.order_id for o in orders] == ["j-3", "j-0", "j-1", "j-2"]


def test_idempotent_ids_and_fingerprints():
    assert idempotent_order_id("cus-a", "k") == idempotent_order_id("cus-a", "k")
    assert idempotent_order_id("cus-a", "k") != idempotent_order_id("cus-b", "k")
    assert request_fingerprint("s", {"parameters": {"a": 1, "b": 2}}) == \
        request_fingerprint("s", {"parameters": {"b": 2, "a": 1}})
    assert request_fingerprint("s", {"parameters": {"a": 1}}) != request_fingerprint("t", {"parameters": {"a": 1}})


# --- the service, with the real tables and fake workflow, catalog and queues --------------------------

class RecordingWorkflow:
    def __init__(self):
        self.started, self.stopped = [], []

    def start(self, job_id, run_id):
        self.started.append((job_id, run_id))

    def stop(self, job_id, run_id):
        self.stopped.append((job_id, run_id))


class RecordingEvents:
    def __init__(self):
        self.statuses, self.logs = [], []

    def status(self, event):
        self.statuses.append(event)

    def log(self, event):
        self.logs.append(event)


class FakeCatalog:
    def collection(self, collection_id):
        return {"id": collection_id, "cube:dimensions": {"x": {"step": 10}, "y": {"step": 10}}} \
            if collection_id == COLLECTION else None

    def items(self, collection_id, search=None):
        return [{"id": f"i{day}", "bbox": [11.3, 46.4, 11.4, 46.6],
                 "properties": {"datetime": f"2022-06-{day:02d}T10:00:00Z"}} for day in (2, 7, 12)]


class FakeServiceRepository:
    def __init__(self):
        self.rows = {}

    def get(self, service_id):
        return self.rows.get(service_id)

    def list(self):
        return list(self.rows.values())

    def put(self, service):
        self.rows[service.service_id] = service


@pytest.fixture
def ordering(tables):
    workflow, events = RecordingWorkflow(), RecordingEvents()
    jobs = JobService(DynamoJobRepository(), workflow)
    service = OrderService(ServiceCatalog(FakeServiceRepository(), COLLECTION), DynamoOrderRepository(), jobs,
                           events, DynamoLogRepository(), usage_slots=UsageSlots(DynamoSlotStore()),
                           catalog=FakeCatalog(), max_area_km2=2500)
    UserModel("cus-carol", password_hash="", created=datetime.now(UTC), scopes=sorted(CAROL.scopes)).save()
    return service, workflow, events


def test_a_valid_order_is_a_started_job(ordering):
    service, workflow, events = ordering
    order, created = service.place_order(CAROL, "ndvi-composite", {"parameters": {"area": SQUARE, **JUNE}})
    assert created and order.order_status == "QUEUED" and order.job.run_id  # started at once
    assert workflow.started == [(order.order_id, order.job.run_id)] and events.statuses == []
    assert order.job.process["process_graph"]["load"]["arguments"]["spatial_extent"] == SQUARE


def test_idempotent_retry_and_conflict(ordering):
    service, workflow, _ = ordering
    body = {"parameters": {"area": SQUARE, **JUNE}}
    first, created = service.place_order(CAROL, "ndvi-composite", body, "key-1")
    again, created_again = service.place_order(CAROL, "ndvi-composite", json.loads(json.dumps(body)), "key-1")
    assert created and not created_again and again.order_id == first.order_id
    assert len(workflow.started) == 1
    with pytest.raises(IdempotencyConflictException):
        service.place_order(CAROL, "ndvi-composite", {"parameters": {"area": SQUARE, **JUNE}, "title": "x"}, "key-1")


def test_a_retry_starts_an_order_whose_start_failed(ordering):
    service, workflow, _ = ordering
    body = {"parameters": {"area": SQUARE, **JUNE}}
    order_id = idempotent_order_id(CAROL.user_id, "key-2")
    original = service._jobs.start_job

    def broken_start(*_):
        raise RuntimeError("Step Functions is down")
    service._jobs.start_job = broken_start
    with pytest.raises(RuntimeError):
        service.place_order(CAROL, "ndvi-composite", body, "key-2")
    service._jobs.start_job = original
    order, created = service.place_order(CAROL, "ndvi-composite", body, "key-2")
    assert not created and order.order_id == order_id and workflow.started == [(order_id, order.job.run_id)]


def test_an_order_without_data_is_ended_by_a_status_event(ordering):
    service, workflow, events = ordering
    july = {"start_date": "2022-07-01", "end_date": "2022-08-01"}
    order, _ = service.place_order(CAROL, "ndvi-composite", {"parameters": {"area": SQUARE, **july}})
    assert workflow.started == [] and order.order_status == "RECEIVED"
    [event] = events.statuses
    assert (event.job_id, event.run_id, event.status, event.error_code) == \
        (order.order_id, order.job.run_id, JobStatus.ERROR, "NoDataAvailable")
    assert "2022-07-01" in event.reason
    # what the status consumer does with it
    assert apply_status_event(DynamoJobRepository(), event)
    ended = service.get_order(CAROL, order.order_id)
    assert ended.order_status == INVALID and ended.job.reason == event.reason and ended.job.finished


def test_refusals(ordering):
    service, _, _ = ordering
    with pytest.raises(ScopeMissingException):
        service.place_order(CAROL, "vegetation-change", {"parameters": {}})
    admin = Principal("cus-admin", frozenset({"admin"}))
    with pytest.raises(ServiceNotFoundException):
        service.place_order(admin, "nope", {"parameters": {}})
    with pytest.raises(InvalidRequestException):
        service.place_order(CAROL, "ndvi-composite", {"parameters": {"area": SQUARE, **JUNE}, "priority": 1})
    UserModel("cus-carol", password_hash="", created=datetime.now(UTC),
              usage_limits={"ndvi-composite": {"limit": 0, "interval_s": 60}}).save()
    with pytest.raises(UsageLimitExceededException) as refused:
        service.place_order(CAROL, "ndvi-composite", {"parameters": {"area": SQUARE, **JUNE}})
    assert refused.value.params["retry_after_s"] == 60


def test_no_data_dry_run_skips_unknown_collections():
    graph = {"load": {"process_id": "load_collection", "arguments": {
        "id": "elsewhere", "spatial_extent": SQUARE, "temporal_extent": ["2030-01-01", "2030-02-01"]}}}
    assert no_data_problem(graph, FakeCatalog()) is None
    graph["load"]["arguments"]["id"] = COLLECTION
    assert no_data_problem(graph, FakeCatalog()).error_code == "NoDataAvailable"
    graph["load"]["arguments"]["temporal_extent"] = ["2022-06-01", "2022-06-03"]
    assert no_data_problem(graph, FakeCatalog()) is None
    far = {"type": "Polygon", "coordinates": [[[2.3, 48.8], [2.4, 48.8], [2.4, 48.9], [2.3, 48.8]]]}
    graph["load"]["arguments"]["spatial_extent"] = far
    assert no_data_problem(graph, FakeCatalog()).error_code == "NoDataAvailable"


def test_service_catalog_merges_table_over_shipped():
    repository = FakeServiceRepository()
    catalog = ServiceCatalog(repository, COLLECTION)
    admin = Principal("cus-admin", frozenset({"admin"}))
    assert [s.service_id for s in catalog.visible_to(CAROL)] == ["ndvi-composite", "zonal-statistics"]
    catalog.withdraw(admin, "ndvi-composite")
    assert repository.rows["ndvi-composite"].published is False
    assert [s.service_id for s in catalog.visible_to(CAROL)] == ["zonal-statistics"]
    assert len(catalog.visible_to(admin)) == len(shipped_services(COLLECTION))  # withdrawn ones included
    shipped = shipped_services(COLLECTION)["ndvi-composite"].process
    service, created = catalog.publish(admin, "ndvi-composite", {**shipped, "summary": "Renamed"})
    assert not created and service.published and catalog.find("ndvi-composite").title == "Renamed"
    with pytest.raises(ScopeMissingException):
        catalog.publish(CAROL, "mine", shipped)
    assert isinstance(catalog.find("zonal-statistics"), Service)
    assert catalog.find("../etc") is None


def test_an_order_holds_its_whole_job_through_every_store(tables):
    # Given an order whose job has every field set, usage, costs, plan and budget included
    now = datetime.now(UTC)
    job = Job(job_id="j-full", user_id="cus-a", process={"process_graph": {}}, status=JobStatus.FINISHED,
              run_id="r1", title="t", description="d", plan="fast", budget=12.5, progress=100, reason="done",
              error_code="NoDataAvailable", usage={"duration": {"value": 3, "unit": "seconds"}}, costs=0.25,
              created=now, updated=now, queued=now, started=now, finished=now)
    order = Order(job=job, service_id="ndvi-composite", parameters={"a": 1}, notify={"email": False},
                  request_hash="h", idempotency_key="k")
    assert DynamoOrderRepository().add(order)
    # Then the orders store, the jobs store and the order notices read the same job back
    assert DynamoOrderRepository().get("j-full") == order
    assert DynamoJobRepository().get("j-full") == job
    assert DynamoOrderEndStore().order_end("j-full").order == order
