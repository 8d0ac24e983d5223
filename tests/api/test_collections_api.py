"""`/collections` with configured remote collections: metadata from the cache the refresh fills from a real
HTTP STAC API (the recorded Earth Search v1 documents served by `tests/support_stac_server.py`), through the
real handler; the API never waits on the source."""

from __future__ import annotations

import json

import pytest

from stratus import admin, aws, catalog_layout
from stratus.backend import Backend
from tests.openeo_schema import response_errors
from tests.support_stac_server import REPO_ROOT, earth_search_server, require_real_data

BASE = "/openeo/1.2"
OWN_ID = "own-demo"


def default_config_at(api_url: str, *, allow_loopback: bool = True) -> dict:
    """The shipped default configuration with its entries pointing at the test server."""
    document = json.loads((REPO_ROOT / "infra" / "collections" / "default.json").read_text())
    for entry in document["collections"]:
        entry["url"] = api_url
    document["allowed_private_hosts"] = ["127.0.0.1"] if allow_loopback else []
    return document


def store_config(api, document: dict) -> None:
    aws.client("s3").put_object(Bucket=api.settings.data_bucket, Key=catalog_layout.collections_config_key(),
                                Body=json.dumps(document).encode())


def store_own_collection(api) -> None:
    s3 = aws.client("s3")
    bucket = api.settings.data_bucket
    s3.put_object(Bucket=bucket, Key=catalog_layout.catalog_key(), Body=json.dumps({
        "type": "Catalog", "id": "stratus", "stac_version": "1.0.0", "description": "own",
        "links": [{"rel": "child", "href": f"./collections/{OWN_ID}/collection.json"}]}).encode())
    s3.put_object(Bucket=bucket, Key=catalog_layout.collection_key(OWN_ID), Body=json.dumps({
        "type": "Collection", "id": OWN_ID, "stac_version": "1.0.0", "description": "an own collection",
        "license": "CC-BY-4.0", "extent": {"spatial": {"bbox": [[5, 45, 6, 46]]},
                                           "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]}},
        "cube:dimensions": {"bands": {"type": "bands", "values": ["B04"]}}, "summaries": {},
        "links": []}).encode())


def refresh(api) -> list:
    return Backend(api.settings).collection_refresher.refresh()


@pytest.fixture
def earth_search():
    require_real_data()
    with earth_search_server() as server:
        yield server


def test_configured_collections_answer_from_the_cache_while_the_source_is_down(api):
    require_real_data()
    store_own_collection(api)
    with earth_search_server() as server:
        document = default_config_at(server.api_url)
        document["collections"].append({"id": OWN_ID, "kind": "own", "aliases": ["OWN"]})
        store_config(api, document)
        outcomes = refresh(api)
        assert [(o.collection_id, o.refreshed) for o in outcomes] == [
            ("sentinel-2-l2a", True), ("landsat-c2-l2", True), ("cop-dem-glo-30", True)]
    # the source is gone now: a fresh API container (nothing memoised) still answers in full
    listing = api.get(f"{BASE}/collections")
    assert listing.status == 200
    collections = listing.json()["collections"]
    assert [c["id"] for c in collections] == [OWN_ID, "sentinel-2-l2a", "landsat-c2-l2", "cop-dem-glo-30"]
    s2 = collections[1]
    assert s2["cube:dimensions"]["bands"]["values"][3] == "B04"
    assert s2["summaries"]["platform"] == ["sentinel-2a", "sentinel-2b"]
    assert s2["stratus:source"]["fetched_at"] is not None
    assert {"rel": "self", "href": f"http://testserver{BASE}/collections/sentinel-2-l2a",
            "type": "application/json"} in s2["links"]
    assert collections[0]["stratus:aliases"] == ["OWN"]
    assert response_errors("/collections", listing.json()) == []
    for collection in collections[1:]:
        one = api.get(f"{BASE}/collections/{collection['id']}")
        assert one.status == 200 and one.json() == collection
        assert response_errors("/collections/{collection_id}", one.json()) == []


def test_an_alias_answers_the_collection_under_its_configured_id(api, earth_search):
    store_config(api, default_config_at(earth_search.api_url))
    refresh(api)
    by_alias = api.get(f"{BASE}/collections/SENTINEL2_L2A")
    assert by_alias.status == 200
    assert by_alias.json()["id"] == "sentinel-2-l2a" and by_alias.json()["stratus:aliases"] == ["SENTINEL2_L2A"]
    assert by_alias.json() == api.get(f"{BASE}/collections/sentinel-2-l2a").json()
    assert api.get(f"{BASE}/collections/COPERNICUS_30").json()["cube:dimensions"]["bands"]["values"] == ["DEM"]
    ids = [c["id"] for c in api.get(f"{BASE}/collections").json()["collections"]]
    assert ids.count("sentinel-2-l2a") == 1 and "SENTINEL2_L2A" not in ids
    queryables = api.get(f"{BASE}/collections/SENTINEL2_L2A/queryables").json()
    assert queryables["properties"]["eo:cloud_cover"] == {"type": "number", "minimum": 0, "maximum": 100}
    assert api.get(f"{BASE}/collections/SENTINEL2").status == 404


def test_listing_never_contacts_the_source(api, earth_search):
    store_config(api, default_config_at(earth_search.api_url))
    refresh(api)
    earth_search.reset_counters()
    assert api.get(f"{BASE}/collections").status == 200
    assert api.get(f"{BASE}/collections/landsat-c2-l2").status == 200
    assert earth_search.stats().requests == 0


def test_a_source_that_fails_keeps_its_last_cached_document(api, earth_search):
    store_config(api, default_config_at(earth_search.api_url))
    refresh(api)
    first = api.get(f"{BASE}/collections/sentinel-2-l2a").json()["stratus:source"]["fetched_at"]
    del earth_search.collections["sentinel-2-l2a"]  # the source answers 404 now
    outcomes = {o.collection_id: o for o in refresh(api)}
    assert not outcomes["sentinel-2-l2a"].refreshed and "HTTP 404" in outcomes["sentinel-2-l2a"].detail
    assert outcomes["landsat-c2-l2"].refreshed
    sys_backend_cache_clear()
    collection = api.get(f"{BASE}/collections/sentinel-2-l2a").json()
    assert collection["stratus:source"]["fetched_at"] == first
    assert collection["cube:dimensions"]["bands"]["values"][0] == "B01" and "providers" in collection


def test_never_fetched_sources_are_listed_from_the_configuration_with_a_note(api, earth_search):
    # loopback is not allow-listed: the guard refuses the test server like any private address
    store_config(api, default_config_at(earth_search.api_url, allow_loopback=False))
    outcomes = refresh(api)
    assert all(not o.refreshed and "is not a public address" in o.detail for o in outcomes)
    assert earth_search.stats().requests == 0
    listing = api.get(f"{BASE}/collections")
    assert listing.status == 200
    collections = {c["id"]: c for c in listing.json()["collections"]}
    assert set(collections) == {"sentinel-2-l2a", "landsat-c2-l2", "cop-dem-glo-30"}
    s2 = collections["sentinel-2-l2a"]
    assert "has not been fetched" in s2["description"] and s2["stratus:source"]["fetched_at"] is None
    assert s2["cube:dimensions"]["bands"]["values"][:2] == ["B01", "B02"]
    assert response_errors("/collections", listing.json()) == []
    assert response_errors("/collections/{collection_id}", api.get(f"{BASE}/collections/LANDSAT8_L2").json()) == []


def test_an_invalid_stored_configuration_leaves_the_own_collections(api):
    store_own_collection(api)
    store_config(api, {"collections": [{"id": "x", "kind": "nope"}]})
    listing = api.get(f"{BASE}/collections")
    assert listing.status == 200 and [c["id"] for c in listing.json()["collections"]] == [OWN_ID]


def test_the_admin_command_refreshes_and_says_what_each_source_answered(api, earth_search, capsys):
    store_config(api, default_config_at(earth_search.api_url))
    assert admin.main(["refresh-collections", "SENTINEL2_L2A"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"sentinel-2-l2a: refreshed (fetched from {earth_search.api_url}/collections/sentinel-2-l2a)")
    assert admin.main(["refresh-collections", "nope"]) == 2
    earth_search.collections.pop("cop-dem-glo-30")
    assert admin.main(["refresh-collections"]) == 1  # one source failed
    assert "cop-dem-glo-30: kept the cached document" in capsys.readouterr().out


def sys_backend_cache_clear() -> None:
    """A fresh API container: nothing memoised (the handler caches its backend per container)."""
    import sys

    sys.modules["routers.shared.context"].backend.cache_clear()
