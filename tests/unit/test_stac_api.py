"""Who sees and writes what through the STAC API (`StacCatalogue`), and the Fields extension's projection."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from stratus.domain.principal import Principal
from stratus.domain.stac_api import (
    BadRequest,
    Forbidden,
    NotFound,
    StacCatalogue,
    _fields,
    results_collection_id,
)
from stratus.domain.stac_search import SearchPage, from_body

BASE = "https://api.example/stac"
ALICE, BOB = Principal("alice"), Principal("bob")
ADMIN = Principal("root", scopes=frozenset({"admin"}))
WRITER = Principal("feeder", scopes=frozenset({"catalog:write"}))


def item(item_id="a", collection="own"):
    return {"type": "Feature", "stac_version": "1.1.0", "id": item_id, "collection": collection,
            "geometry": {"type": "Point", "coordinates": [1, 2]}, "bbox": [1, 2, 1, 2],
            "properties": {"datetime": "2024-01-01T00:00:00Z", "eo:cloud_cover": 5, "platform": "x"},
            "links": [], "assets": {"data": {"href": "s3://b/k.tif"}}}


@dataclass(frozen=True)
class Source:
    kind: str
    url: str
    source_collection: str


class Collections:
    def list_collections(self, base_url):
        return [{"id": "own", "type": "Collection"}, {"id": "remote", "type": "Collection"}]


class Index:
    def __init__(self):
        self.searched: list[tuple[str, ...]] = []

    def search(self, request):
        self.searched.append(request.collections)
        return SearchPage([item(collection=c) for c in request.collections], len(request.collections))

    def get_item(self, collection, item_id):
        return item(item_id, collection)

    def queryables(self, collections):
        return {"eo:cloud_cover": "DOUBLE"}


class Queue:
    def __init__(self):
        self.sent = []

    def send(self, messages):
        self.sent += messages


@pytest.fixture
def catalogue():
    return StacCatalogue(Collections(), Index(), Queue(),
                         remote_sources=lambda: {"remote": Source("stac-api", "https://remote.example/v1", "r")},
                         max_item_bytes=100_000, harvest_max_items=10, harvest_budget_s=5)


def collection_ids(catalogue, caller):
    return [c["id"] for c in catalogue.collections(caller, BASE)["collections"]]


def test_anonymous_callers_see_the_public_collections_and_users_also_their_results(catalogue):
    assert collection_ids(catalogue, None) == ["own", "remote"]
    assert collection_ids(catalogue, ALICE) == ["own", "remote", results_collection_id("alice")]
    with pytest.raises(NotFound):
        catalogue.collection(BOB, results_collection_id("alice"), BASE)
    with pytest.raises(NotFound):
        catalogue.item(None, results_collection_id("alice"), "a", BASE)
    assert catalogue.collection(ADMIN, results_collection_id("alice"), BASE)["id"] == "results-alice"


def test_a_search_never_reaches_collections_the_caller_may_not_see(catalogue):
    asked = from_body({"collections": [results_collection_id("alice"), "own"]})
    assert [f["collection"] for f in catalogue.search(BOB, asked, BASE, method="POST")["features"]] == ["own"]
    everything = catalogue.search(ALICE, from_body({}), BASE, method="GET")
    # remote collections' items live in their own API: never searched here
    assert [f["collection"] for f in everything["features"]] == ["own", "results-alice"]


def test_remote_collections_link_to_their_own_api(catalogue):
    links = {link["rel"]: link["href"] for link in catalogue.collection(None, "remote", BASE)["links"]}
    assert links["items"] == "https://remote.example/v1/collections/r/items"
    with pytest.raises(NotFound, match="remote.example"):
        catalogue.items(None, "remote", from_body({}), BASE, {})


def test_writes_need_the_catalog_write_scope_and_an_own_collection(catalogue):
    for caller in (None, ALICE):
        with pytest.raises(Forbidden):
            catalogue.add_items(caller, "own", item(), BASE)
    with pytest.raises(Forbidden):
        catalogue.add_items(WRITER, "remote", item(), BASE)
    with pytest.raises(Forbidden):
        catalogue.add_items(ADMIN, results_collection_id("alice"), item(), BASE)
    with pytest.raises(BadRequest, match="datetime|properties"):
        catalogue.add_items(WRITER, "own", {**item(), "properties": {}}, BASE)
    assert catalogue.add_items(WRITER, "own", {"type": "FeatureCollection",
                                               "features": [item("a"), item("b")]}, BASE) == ["a", "b"]


def test_fields_projection():
    full = item()
    only = _fields(full, from_body({"fields": {"include": ["properties.platform"], "exclude": ["properties"]}}))
    assert only == {"type": "Feature", "stac_version": "1.1.0", "id": "a", "links": [],
                    "properties": {"platform": "x"}}
    assert "geometry" not in _fields(full, from_body({"fields": {"exclude": ["geometry"]}}))
    assert "eo:cloud_cover" in _fields(full, from_body({"fields": {"exclude": ["geometry"]}}))["properties"]
    default = _fields(full, from_body({"fields": {"include": [], "exclude": ["geometry"]}}))
    assert default["properties"] == {"datetime": "2024-01-01T00:00:00Z"} and "assets" in default
    assert "geometry" in _fields(full, from_body({"fields": {"include": ["geometry"], "exclude": ["geometry"]}}))


def test_a_finished_runs_located_files_go_to_the_owners_results_collection():
    from datetime import datetime, timezone

    from stratus.domain.jobs import Job
    from stratus.domain.result_items import ResultCatalogue
    from stratus.events import JobStatus
    from stratus.run_contract import ResultsManifest

    located = {"key": "jobs/j1/runs/r1/results/ndvi.tif", "type": "image/tiff; application=geotiff",
               "bbox": [11, 46, 12, 47], "datetime": "2024-05-01T00:00:00Z"}
    manifest = ResultsManifest(assets={"ndvi.tif": located, "stats.json": {"key": "jobs/j1/runs/r1/results/s.json"}})

    class Jobs:
        def __init__(self, job):
            self.job = job

        def get(self, job_id):
            return self.job

    class Store:
        def read_manifest(self, key):
            return manifest

    queue = Queue()
    finished = Job(job_id="j1", user_id="alice", process={}, status=JobStatus.FINISHED, run_id="r1")
    ended = datetime(2024, 5, 2, tzinfo=timezone.utc)
    assert ResultCatalogue(Jobs(finished), Store(), queue, "results-bucket").index_run("j1", "r1", ended) == 1
    (message,) = queue.sent
    assert message.collection == results_collection_id("alice") and message.item_id == "j1-ndvi"
    assert message.item["assets"]["ndvi.tif"]["href"] == "s3://results-bucket/jobs/j1/runs/r1/results/ndvi.tif"
    assert message.accepted_ns == int(ended.timestamp() * 1e9)  # the same for a redelivered event
    from stratus.domain.stac_items import validate_item
    validate_item(message.item, message.collection)
    # an event of an older run, or a job that is no longer finished, queues nothing
    assert ResultCatalogue(Jobs(finished), Store(), Queue(), "b").index_run("j1", "r0", ended) == 0


def test_a_harvest_follows_post_and_get_pages_and_reports_rejected_items():
    pages = {
        ("https://remote.example/search", "POST"): {"features": [item("r1", "x"), item("r2", "x")], "links": [
            {"rel": "next", "href": "https://remote.example/search", "method": "POST", "body": {"token": "2"}}]},
        ("https://remote.example/search", "POST2"): {"features": [{**item("bad", "x"), "properties": {}}],
                                                     "links": [{"rel": "next", "href": "https://remote.example/p3"}]},
        ("https://remote.example/p3", "GET"): {"features": [item("r3", "x")], "links": []},
    }
    asked = []

    class Remote:
        def page(self, url, body, budget_s):
            asked.append((url, body))
            kind = "GET" if body is None else "POST2" if body.get("token") else "POST"
            return pages[(url, kind)]

    queue = Queue()
    catalogue = StacCatalogue(Collections(), Index(), queue, remote_sources=dict, remote_search=Remote(),
                              max_item_bytes=100_000, harvest_max_items=10, harvest_budget_s=5)
    outcome = catalogue.harvest(WRITER, "own", {"url": "https://remote.example/search",
                                                "search": {"collections": ["x"]}}, BASE)
    assert outcome["queued"] == 3 and outcome["exhausted"] and outcome["rejected"][0]["id"] == "bad"
    assert [m.item_id for m in queue.sent] == ["r1", "r2", "r3"]
    assert {m.collection for m in queue.sent} == {"own"}  # re-homed
    assert asked[0] == ("https://remote.example/search", {"collections": ["x"], "limit": 100})
    limited = StacCatalogue(Collections(), Index(), Queue(), remote_sources=dict, remote_search=Remote(),
                            max_item_bytes=100_000, harvest_max_items=2, harvest_budget_s=5)
    assert limited.harvest(WRITER, "own", {"url": "https://remote.example/search"}, BASE)["exhausted"] is False
