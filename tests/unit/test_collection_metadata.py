"""openEO collection metadata built from the REAL recorded Earth Search v1 collection documents and the shipped
default configuration (`stratus.domain.collection_metadata`)."""

from __future__ import annotations

import pytest

from stratus import collections_config
from stratus.collections_config import CollectionSource
from stratus.domain.collection_metadata import collection_bands, openeo_collection
from tests.openeo_schema import response_errors
from tests.support_stac_server import REAL_DATA, REPO_ROOT, load_json, require_real_data

DEFAULT = collections_config.load(REPO_ROOT / "infra" / "collections" / "default.json")
FETCHED_AT = "2025-07-31T12:00:00Z"


def recorded(collection_id: str) -> dict:
    require_real_data()
    return load_json(REAL_DATA / "earth-search-v1" / "collections" / f"{collection_id}.json")


def built(name: str) -> dict:
    """By id or alias, as the configuration resolves it."""
    source = DEFAULT.resolve(name)
    return openeo_collection(source, recorded(source.source_collection), fetched_at=FETCHED_AT)


def test_sentinel2_bands_are_the_configured_names_with_common_names_and_no_jp2_twins():
    collection = built("sentinel-2-l2a")
    names = collection["cube:dimensions"]["bands"]["values"]
    # the config's renames, in its order; every COG band of item_assets is renamed, the *-jp2 twins are gone
    assert names == ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12", "SCL",
                     "AOT", "WVP"]
    bands = {band["name"]: band for band in collection["summaries"]["eo:bands"]}
    assert bands["B04"]["common_name"] == "red" and bands["B04"]["center_wavelength"] == 0.665
    assert bands["B08"]["common_name"] == "nir" and bands["B8A"]["common_name"] == "nir08"
    assert bands["B04"]["gsd"] == 10 and bands["B11"]["gsd"] == 20 and bands["B01"]["gsd"] == 60
    assert "common_name" not in bands["SCL"] and bands["SCL"]["description"]  # its asset title
    assert [b["stratus:asset"] for b in collection_bands(DEFAULT.resolve("sentinel-2-l2a"),
                                                         recorded("sentinel-2-l2a"))][3] == "red"


def test_sentinel2_metadata_keeps_the_source_facts_and_links_back():
    collection = built("SENTINEL2_L2A")  # by alias: the same entry
    assert collection["id"] == "sentinel-2-l2a"
    assert collection["stratus:aliases"] == ["SENTINEL2_L2A"] and "`SENTINEL2_L2A`" in collection["description"]
    assert collection["extent"]["temporal"]["interval"] == [["2015-06-27T10:25:31.456000Z", None]]
    dimensions = collection["cube:dimensions"]
    assert dimensions["x"] == {"type": "spatial", "axis": "x", "extent": [-180, 180], "reference_system": 4326}
    assert dimensions["y"]["extent"] == [-90, 90]
    assert dimensions["t"]["extent"] == ["2015-06-27T10:25:31.456000Z", None]
    summaries = collection["summaries"]
    assert summaries["platform"] == ["sentinel-2a", "sentinel-2b"] and summaries["constellation"] == ["sentinel-2"]
    assert summaries["gsd"] == [10, 20, 60]
    assert summaries["eo:cloud_cover"] == {"minimum": 0, "maximum": 100}
    assert [p["name"] for p in collection["providers"]] == ["ESA", "Sinergise", "AWS", "Element 84"]
    assert collection["license"] == "proprietary"
    links = {link["rel"]: link["href"] for link in collection["links"]}
    assert links["via"] == "https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a"
    assert links["related"] == "https://earth-search.aws.element84.com/v1"
    assert links["license"].startswith("https://sentinel.esa.int/")
    # the source's own API tree is not offered as ours
    assert not {"self", "root", "parent", "items", "aggregate"} & set(links)
    assert collection["stratus:source"] == {"kind": "stac-api", "url": links["via"], "fetched_at": FETCHED_AT}
    assert "https://stac-extensions.github.io/datacube/v2.2.0/schema.json" in collection["stac_extensions"]


def test_landsat_bands_come_from_item_assets_without_data_roles_with_common_names_from_summaries():
    collection = built("LANDSAT8_L2")
    names = collection["cube:dimensions"]["bands"]["values"]
    assert {"coastal", "blue", "green", "red", "nir08", "swir16", "swir22", "lwir11", "qa_pixel"} <= set(names)
    assert not {"thumbnail", "reduced_resolution_browse", "mtl.json", "ang"} & set(names)
    bands = {band["name"]: band for band in collection["summaries"]["eo:bands"]}
    assert bands["red"]["common_name"] == "red" and bands["red"]["gsd"] == 30
    assert "common_name" not in bands["qa_pixel"]
    assert collection["summaries"]["platform"][-1] == "landsat-9"
    assert "eo:cloud_cover" in collection["summaries"]


def test_the_dem_is_one_band_under_its_configured_name_and_not_optical():
    collection = built("cop-dem-glo-30")
    assert collection["cube:dimensions"]["bands"]["values"] == ["DEM"]
    assert collection["cube:dimensions"]["t"]["extent"] == ["2021-04-22T00:00:00Z", "2021-04-22T00:00:00Z"]
    assert collection["summaries"]["proj:epsg"] == [4326]
    assert "eo:cloud_cover" not in collection["summaries"]


def test_config_metadata_is_merged_over_the_built_document():
    source = CollectionSource(id="s2", kind="stac-api", url="https://example.com/v1", collection="sentinel-2-l2a",
                              metadata={"title": "Sentinel-2 L2A (Earth Search)",
                                        "summaries": {"platform": ["sentinel-2a"]}, "license": "CC-BY-4.0"})
    collection = openeo_collection(source, recorded("sentinel-2-l2a"), fetched_at=FETCHED_AT)
    assert collection["title"] == "Sentinel-2 L2A (Earth Search)" and collection["license"] == "CC-BY-4.0"
    assert collection["summaries"]["platform"] == ["sentinel-2a"]
    assert collection["summaries"]["gsd"] == [10, 20, 60]  # merged, not replaced


def test_a_never_fetched_collection_is_described_from_the_configuration_with_a_note():
    collection = openeo_collection(DEFAULT.resolve("sentinel-2-l2a"), None)
    assert "has not been fetched" in collection["description"]
    assert collection["cube:dimensions"]["bands"]["values"][:4] == ["B01", "B02", "B03", "B04"]
    assert collection["stratus:source"]["fetched_at"] is None
    assert response_errors("/collections/{collection_id}", collection) == []


@pytest.mark.parametrize("collection_id", ["sentinel-2-l2a", "landsat-c2-l2", "cop-dem-glo-30"])
def test_built_metadata_is_valid_openeo_collection_metadata(collection_id):
    collection = built(collection_id)
    collection["links"].append({"rel": "self", "href": f"https://api.example/collections/{collection_id}"})
    assert response_errors("/collections/{collection_id}", collection) == []
