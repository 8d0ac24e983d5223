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
