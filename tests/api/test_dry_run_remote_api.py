"""The API's dry run over configured remote collections: `GET /jobs/{id}/estimate`, the size guard of
`POST /result` and the budget check search the source's items (the recorded Earth Search v1 documents served
over real HTTP by `tests/support_stac_server.py`), through the real handler."""

from __future__ import annotations

import math
import socket

import pytest

from stratus import aws, resources
from stratus.backend import Backend
from tests.api.test_collections_api import default_config_at, store_config
from tests.openeo_schema import response_errors
from tests.support_stac_server import earth_search_server, require_real_data

BASE = "/openeo/1.2"
# a 0.1 deg x 0.1 deg window inside the recorded scene S2A_29RKH_20200219_0_L2A (bbox -11.98, 24.30, -10.87, 25.30)
WINDOW = {"west": -11.5, "south": 24.6, "east": -11.4, "north": 24.7}
FEBRUARY_2020 = ["2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z"]
SCENE = {"west": -11.97, "south": 24.30, "east": -10.88, "north": 25.30}


def cloud_cover_below(percent: float) -> dict:
    """The openeo client's `max_cloud_cover=`: a `properties` condition on `eo:cloud_cover`."""
    return {"eo:cloud_cover": {"process_graph": {"cc": {
        "process_id": "lte", "arguments": {"x": {"from_parameter": "value"}, "y": percent}, "result": True}}}}


def load(collection: str, extent: dict, bands: list[str], **arguments) -> dict:
    return {"process_graph": {"load": {"process_id": "load_collection", "arguments": {
        "id": collection, "spatial_extent": extent, "temporal_extent": FEBRUARY_2020, "bands": bands,
        **arguments}}, "save": {"process_id": "save_result", "result": True, "arguments": {
            "data": {"from_node": "load"}, "format": "GTiff"}}}}


def create_job(api, process: dict, **body) -> str:
    response = api.post(f"{BASE}/jobs", user="alice", json_body={"process": process, **body})
    assert response.status == 201, response.body
    return response.headers["openeo-identifier"]


def sync_snapshots(api) -> list[str]:
    """What `POST /result` froze for the processing function (written just before it is invoked)."""
    listing = aws.client("s3").list_objects_v2(Bucket=api.settings.results_bucket, Prefix=resources.SYNC_ROOT)
    return [obj["Key"] for obj in listing.get("Contents", [])]


@pytest.fixture
def earth_search(api):
    require_real_data()
    with earth_search_server() as server:
        store_config(api, default_config_at(server.api_url))
        Backend(api.settings).collection_refresher.refresh()  # bands come from the cached metadata
        server.reset_counters()
        yield server


def test_estimate_of_an_alias_sizes_the_items_found_at_the_source(api, earth_search):
    # Given a job loading two bands of SENTINEL2_L2A (an alias) over a window of the recorded scene in February
    # 2020, clouds at most 50 % (the scene has 4 %)
    job_id = create_job(api, load("SENTINEL2_L2A", WINDOW, ["B04", "B08"], properties=cloud_cover_below(50)))
    # When it is estimated
    response = api.get(f"{BASE}/jobs/{job_id}/estimate", user="alice")
    # Then the size is one item x two bands x the window's pixels at 10 m, in float64
    assert response.status == 200, response.body
    estimate = response.json()
    width = 0.1 * 111_320 * math.cos(math.radians(24.65)) / 10
    height = 0.1 * 110_540 / 10
    assert estimate["size"] == pytest.approx(1 * 2 * width * height * 8, rel=0.01)
    assert response_errors("/jobs/{job_id}/estimate", estimate) == []
    # and the source was asked for exactly that: its collection id, the window, the period, the cloud cover (as
    # the Query extension: Earth Search declares no CQL2 filter)
    # (as Earth Search, the server ends with an empty page: the second request follows the first page's `next`)
    first, *following = earth_search.search_bodies
    assert len(following) <= 1
    body = first
    assert body["collections"] == ["sentinel-2-l2a"]
    assert body["bbox"] == [-11.5, 24.6, -11.4, 24.7]
    assert body["datetime"] == "2020-02-01T00:00:00Z/2020-03-01T00:00:00Z"
    assert body["query"] == {"eo:cloud_cover": {"lte": 50}}


def test_estimate_counts_no_item_the_source_does_not_match(api, earth_search):
    # Given the same window, but clouds at most 1 %: no item of the source qualifies
    job_id = create_job(api, load("SENTINEL2_L2A", WINDOW, ["B04"], properties=cloud_cover_below(1)))
    # Then the estimate is empty (not the window's size): the filter reached the source
    response = api.get(f"{BASE}/jobs/{job_id}/estimate", user="alice")
    assert response.status == 200 and response.json()["size"] == 0
    assert earth_search.search_bodies[0]["query"] == {"eo:cloud_cover": {"lte": 1}}


def test_a_huge_synchronous_request_of_a_remote_collection_is_refused_before_processing(api, earth_search):
    # Given POST /result loading the whole recorded scene (~110 km x 110 km at 10 m) of SENTINEL2_L2A
    response = api.post(f"{BASE}/result", user="alice", json_body={"process": load("SENTINEL2_L2A", SCENE, ["B04"])})
    # Then it is refused in openEO's format, sized from the item found, and nothing was handed to the processing
    assert response.status == 400, response.body
    error = response.json()
    assert error["code"] == "ProcessGraphComplexity"
    assert "million values" in error["message"] and "batch job" in error["message"]
    assert earth_search.search_bodies[0]["bbox"] == [-11.97, 24.30, -10.88, 25.30]
    assert sync_snapshots(api) == []


def test_a_remote_collection_in_a_budgeted_job_is_priced(api, earth_search):
    # Given the scene-wide load with a budget far below its price
    poor = create_job(api, load("sentinel-2-l2a", SCENE, ["B04", "B08"]), budget=1e-6)
    # Then starting it is refused: the remote items count
    refused = api.post(f"{BASE}/jobs/{poor}/results", user="alice")
    assert refused.status == 402 and refused.json()["code"] == "PaymentRequired"


@pytest.fixture
def unreachable(api):
    """The default configuration pointing at a loopback port nobody listens on (allowed, so it is tried)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store_config(api, default_config_at(f"http://127.0.0.1:{port}/v1"))
    return port


def test_an_unreachable_source_makes_the_estimate_unknown_not_zero(api, unreachable):
    job_id = create_job(api, load("SENTINEL2_L2A", WINDOW, ["B04"]))
    response = api.get(f"{BASE}/jobs/{job_id}/estimate", user="alice")
    # openEO's answer for an estimate that cannot be made reliably, in its error format
    assert response.status == 500
    error = response.json()
    assert error["code"] == "EstimateComplexity"
    assert "sentinel-2-l2a" in error["message"] and "could not connect" in error["message"]
    assert {"id", "code", "message"} <= set(error)  # openEO's error object


def test_an_unreachable_source_does_not_refuse_the_user(api, unreachable):
    # a budgeted job starts (the budget is checked against what could be sized)
    job_id = create_job(api, load("SENTINEL2_L2A", SCENE, ["B04"]), budget=1e-6)
    assert api.post(f"{BASE}/jobs/{job_id}/results", user="alice").status == 202
    # and a synchronous request is not refused by the size guard: it reaches the processing
    response = api.post(f"{BASE}/result", user="alice", json_body={"process": load("SENTINEL2_L2A", SCENE, ["B04"])})
    assert response.json().get("code") != "ProcessGraphComplexity"
    assert len(sync_snapshots(api)) == 1
