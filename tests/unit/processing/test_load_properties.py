"""`properties` conditions of a load reach the STAC API as CQL2-JSON (Filter extension) or `query`,
ANDed with a configured collection's default filter, and always hold for the items loaded; graphs are built
by the real openeo client (`max_cloud_cover=`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
from openeo.rest.datacube import DataCube
from stratus import catalog_layout
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import NoDataAvailableException
from stratus_processing.graph import GraphCallback, ProcessGraph, evaluate_graph
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.stac import DirectoryJsonStore, DocumentReader, StacApi, StacCatalog, StacItem
from stratus_processing.processes.load import _search_request
from stratus_processing.registry import DEFAULT_REGISTRY, ProcessArgs

from tests.support_stac_server import earth_search_server, load_json, require_real_data
from tests.unit.processing.processing_testkit import BOLZANO_EXTENT, JUNE_2022
from tests.unit.processing.test_processing_io import demo_items

DEMO = "sentinel-2-l2a-demo"
FILTER_CONFORMANCE = "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter"
# The scene's window (UTM 29N) and day, as in test_load_stac_real_data; its item says 4.05 % cloud.
SCENE_EXTENT = {"west": 264580, "east": 290580, "north": 2795020, "south": 2775020, "crs": 32629}
SCENE_DAYS = ["2020-02-19", "2020-02-20"]


def client_graph(collection_id, **load_arguments):
    """The flat graph the openeo client builds (no connection needed)."""
    return DataCube.load_collection(collection_id, connection=None, **load_arguments).flat_graph()


# --- the demo collection ---------------------------------------------------------------------------

def test_max_cloud_cover_of_the_openeo_client_keeps_the_clear_dates(demo_env, demo_s3):
    # Given the demo's June items over Bolzano and their cloud cover
    covers = {item["properties"]["datetime"][:10]: item["properties"]["eo:cloud_cover"]
              for item in demo_items(demo_s3)}
    threshold = sorted(covers.values())[len(covers) // 2]
    assert min(covers.values()) <= threshold < max(covers.values())
    # When the client's max_cloud_cover= is run
    graph = client_graph(DEMO, spatial_extent=BOLZANO_EXTENT, temporal_extent=JUNE_2022, bands=["B04"],
                         max_cloud_cover=threshold)
    assert graph["loadcollection1"]["arguments"]["properties"]["eo:cloud_cover"]["process_graph"]
    cube = evaluate_graph(graph, demo_env)
    # Then exactly the dates at or below the threshold are loaded
    loaded = [t.date().isoformat() for t in cubes.time_labels(cube)]
    assert loaded == sorted(day for day, cover in covers.items() if cover <= threshold)


# --- a STAC API (the recorded Earth Search documents) -----------------------------------------------

@pytest.fixture(scope="module")
def earth_search() -> Iterator:
    with earth_search_server(require_real_data()) as running:
        yield running


@pytest.fixture(scope="module")
def filtering_api() -> Iterator:
    """The same API, its landing page declaring the Filter extension (CQL2-JSON)."""
    data = require_real_data()
    with earth_search_server(data) as running:
        landing = load_json(data / "earth-search-v1" / "landing.json")
        running.landing = {**landing, "conformsTo": [*landing["conformsTo"], FILTER_CONFORMANCE]}
        yield running


def api_env(tmp_path, server) -> EvalEnv:
    """A catalog whose `sentinel-2-l2a` is the API's collection document (searched at the API)."""
    document = server.localized(load_json(require_real_data() / "earth-search-v1" / "collections" /
                                          "sentinel-2-l2a.json"))
    path = tmp_path / catalog_layout.collection_key("sentinel-2-l2a")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document))
    return EvalEnv(catalog=StacCatalog(DirectoryJsonStore(tmp_path), documents=DocumentReader(allow_private_hosts=True)),
                   rasters=RasterReader())


def scene_graph(max_cloud_cover):
    return client_graph("sentinel-2-l2a", spatial_extent=SCENE_EXTENT, temporal_extent=SCENE_DAYS, bands=["scl"],
                        max_cloud_cover=max_cloud_cover)


def test_max_cloud_cover_goes_to_an_api_with_the_query_extension_as_query(earth_search, tmp_path):
    env = api_env(tmp_path, earth_search)
    earth_search.reset_counters()
    # When the client's max_cloud_cover=50 runs against Earth Search (Query extension, no Filter)
    cube = evaluate_graph(scene_graph(50), env)
    # Then the search asked the API for it, and the scene (4.05 % cloud) is loaded
    [body, *_] = earth_search.search_bodies
    assert body["query"] == {"eo:cloud_cover": {"lte": 50}} and "filter" not in body
    assert body["collections"] == ["sentinel-2-l2a"]
    assert [t.date().isoformat() for t in cubes.time_labels(cube)] == ["2020-02-19"]
    # And a stricter threshold leaves no item
    with pytest.raises(NoDataAvailableException):
        evaluate_graph(scene_graph(2), env)


def test_max_cloud_cover_goes_to_an_api_with_the_filter_extension_as_cql2(filtering_api, tmp_path):
    env = api_env(tmp_path, filtering_api)
    filtering_api.reset_counters()
    cube = evaluate_graph(scene_graph(50), env)
    [body, *_] = filtering_api.search_bodies
    assert body["filter"] == {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 50]}
    assert body["filter-lang"] == "cql2-json" and "query" not in body
    assert cube.sizes["t"] == 1
    # The test server ignores `filter` and sends the scene anyway: the engine still applies the condition
    with pytest.raises(NoDataAvailableException):
        evaluate_graph(scene_graph(2), env)


# --- the search request: conditions and a collection's default filter ------------------------------

def callback(process_id, **arguments):
    graph = ProcessGraph({"c": {"process_id": process_id, "arguments": arguments, "result": True}})
    return GraphCallback(graph, parameter="properties", registry=DEFAULT_REGISTRY, outer_arguments={})


def item(**properties):
    return StacItem.from_document({"type": "Feature", "id": "i", "bbox": [0, 0, 1, 1],
                                   "properties": {"datetime": "2022-06-01T00:00:00Z", **properties}, "assets": {}})


def test_conditions_go_to_the_api_as_cql2_and_as_query_and_hold_locally():
    value = {"from_parameter": "value"}
    args = ProcessArgs({"properties": {"eo:cloud_cover": callback("lte", x=value, y=30),
                                       "platform": callback("array_contains", data=["sentinel-2a", "sentinel-2b"],
                                                            value=value)}},
                       process_id="load_collection", node_id="load")
    # When
    request = _search_request(args, EvalEnv(), None, None, None)
    # Then the API gets the AND of both, as CQL2-JSON or as a query
    assert request.filter == {"op": "and", "args": [
        {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 30]},
        {"op": "in", "args": [{"property": "platform"}, ["sentinel-2a", "sentinel-2b"]]}]}
    assert request.query == {"eo:cloud_cover": {"lte": 30}, "platform": {"in": ["sentinel-2a", "sentinel-2b"]}}
    # And every item found must satisfy them all
    good = {"eo:cloud_cover": 20, "platform": "sentinel-2a"}
    assert request.matches(item(**good))
    assert not request.matches(item(**{**good, "platform": "landsat-8"}))
    assert not request.matches(item(**{**good, "eo:cloud_cover": 31}))


@pytest.mark.parametrize("server_fixture", ["earth_search", "filtering_api"])
def test_a_configured_default_filter_is_anded_with_the_conditions_and_holds_locally(server_fixture, request):
    server = request.getfixturevalue(server_fixture)
    default = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 3]}  # the scene has 4.05 %
    api = StacApi(DocumentReader(allow_private_hosts=True), search_url=f"{server.api_url}/search",
                  root_url=server.api_url, default_filter=default)
    conditions = ProcessArgs({"properties": {"eo:cloud_cover": callback("lte", x={"from_parameter": "value"},
                                                                          y=50)}},
                             process_id="load_collection", node_id="load")
    search = _search_request(conditions, EvalEnv(), None, datetime(2020, 2, 19, tzinfo=timezone.utc),
                             datetime(2020, 2, 20, tzinfo=timezone.utc))
    server.reset_counters()
    # When the source is searched with the user's condition (<= 50 %) under a default of <= 3 %
    items = api.search("sentinel-2-l2a", search)
    # Then the API was asked for both (CQL2 where it declares the Filter extension, else its query; the user's
    # bound wins in the query where both constrain one operator), and the default holds locally either way
    [body, *_] = server.search_bodies
    if server_fixture == "filtering_api":
        assert body["filter"] == {"op": "and", "args": [{"op": "<=", "args": [{"property": "eo:cloud_cover"}, 50]},
                                                        default]}
    else:
        assert body["query"] == {"eo:cloud_cover": {"lte": 50}} and "filter" not in body
    assert "S2A_29RKH_20200219_0_L2A" not in {i.id for i in items}
    # while the same search without the default finds the scene
    plain = StacApi(DocumentReader(allow_private_hosts=True), search_url=f"{server.api_url}/search",
                    root_url=server.api_url)
    assert "S2A_29RKH_20200219_0_L2A" in {i.id for i in plain.search("sentinel-2-l2a", search)}
