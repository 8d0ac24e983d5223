"""The collections configuration: the shipped files parse, names resolve, and mistakes name their entry."""

from pathlib import Path

import pytest
from stratus import collections_config
from stratus.collections_config import CollectionsConfigError

CONFIGS = sorted((Path(__file__).parents[2] / "infra" / "collections").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configurations_parse_and_round_trip(path):
    config = collections_config.load(path)
    assert collections_config.parse(config.to_json()) == config


def test_the_default_offers_the_open_archives_under_the_names_users_type():
    config = collections_config.load(Path(__file__).parents[2] / "infra" / "collections" / "default.json")
    sentinel2 = config.resolve("SENTINEL2_L2A")
    assert sentinel2 is config.resolve("sentinel-2-l2a")
    assert sentinel2.kind == "stac-api" and sentinel2.url.startswith("https://earth-search")
    assert sentinel2.bands["B04"] == "red" and sentinel2.source_collection == "sentinel-2-l2a"
    assert config.resolve("landsat-c2-l2").requester_pays
    assert config.resolve("landsat-c2-l2").asset_buckets == ("usgs-landsat",)
    assert config.resolve("cop-dem-glo-30") is not None
    assert config.resolve("sentinel2_l2a") is None  # ids are case-sensitive, as openEO's


@pytest.mark.parametrize("document, complaint", [
    ([], "JSON object"),
    ({"collections": [{"id": "a", "kind": "ftp"}]}, "'kind'"),
    ({"collections": [{"id": "a", "kind": "stac-api", "url": "file:///etc/passwd"}]}, "'url'"),
    ({"collections": [{"id": "a", "kind": "stac-catalog", "url": "s3://bucket/catalog.json", "colour": 1}]},
     "unknown fields"),
    ({"collections": [{"id": "a", "kind": "own"}, {"id": "b", "kind": "own", "aliases": ["a"]}]}, "used by"),
    ({"collections": [{"id": "bad id", "kind": "own"}]}, "'id'"),
    ({"collections": [{"id": "a", "kind": "own", "bands": {"B04": 4}}]}, "'bands'"),
    ({"allowed_private_hosts": "10.0.0.0/8"}, "allowed_private_hosts"),
    ({"collections": [{"id": "a", "kind": "own", "asset_buckets": ["arn:aws:s3:::x"]}]}, "'asset_buckets'"),
])
def test_mistakes_are_refused_with_the_entry_and_field_named(document, complaint):
    with pytest.raises(CollectionsConfigError, match=complaint):
        collections_config.parse(document)
