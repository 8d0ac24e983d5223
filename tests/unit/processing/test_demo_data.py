"""The demo collection generator: real COGs, consistent STAC, plausible and deterministic values."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from stratus import catalog_layout
from stratus_local.demo_data import AREAS, DEMO_COLLECTION_ID, generate_demo_collection

from tests.unit.processing.conftest import DEMO_BUCKET
from tests.unit.processing.processing_testkit import DirectoryS3


def read_json(s3, key):
    return json.loads(s3.path(DEMO_BUCKET, key).read_text())


def items_of(s3):
    prefix = catalog_layout.items_prefix(DEMO_COLLECTION_ID)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=DEMO_BUCKET, Prefix=prefix)["Contents"]]
    return sorted((read_json(s3, k) for k in keys), key=lambda i: (i["properties"]["proj:epsg"], i["id"]))


def open_asset(s3, item, band):
    return rasterio.open(s3.resolve_href(item["assets"][band]["href"]))


def test_catalog_and_collection(demo_s3):
    # When
    catalog = read_json(demo_s3, catalog_layout.catalog_key())
    collection = read_json(demo_s3, catalog_layout.collection_key(DEMO_COLLECTION_ID))
    # Then the catalog links the collection
    assert {"rel": "child", "href": f"./collections/{DEMO_COLLECTION_ID}/collection.json",
            "type": "application/json", "title": collection["title"]} in catalog["links"]
    # And the collection is a STAC 1.0 collection with datacube metadata
    assert collection["type"] == "Collection" and collection["stac_version"] == "1.0.0"
    assert collection["id"] == DEMO_COLLECTION_ID and collection["license"]
    dims = collection["cube:dimensions"]
    assert {d["type"] for d in dims.values()} == {"spatial", "temporal", "bands"}
    assert dims["x"]["axis"] == "x" and dims["x"]["step"] == 10 and dims["x"]["reference_system"] == 32632
    assert dims["bands"]["values"] == ["B02", "B03", "B04", "B08", "SCL"]
    common = {b["name"]: b.get("common_name") for b in collection["summaries"]["eo:bands"]}
    assert common == {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "SCL": None}
    assert set(collection["item_assets"]) == {"B02", "B03", "B04", "B08", "SCL"}
    assert collection["extent"]["temporal"]["interval"] == [["2022-06-02T10:20:31Z", "2022-07-08T09:50:59Z"]]
    assert any("datacube" in e for e in collection["stac_extensions"])


def test_items_and_their_cogs_agree(demo_s3):
    items = items_of(demo_s3)
    assert len(items) == 16
    for item in items:
        assert item["collection"] == DEMO_COLLECTION_ID
        assert set(item["assets"]) == {"B02", "B03", "B04", "B08", "SCL"}
        for band, asset in item["assets"].items():
            assert asset["href"].startswith(f"s3://{DEMO_BUCKET}/data/{DEMO_COLLECTION_ID}/")
            with open_asset(demo_s3, item, band) as src:
                assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
                assert src.compression.value == "DEFLATE"
                assert src.crs.to_epsg() == item["properties"]["proj:epsg"]
                assert list(src.shape) == asset["proj:shape"]
                assert src.transform == Affine(*asset["proj:transform"])
                assert src.nodata == 0 and src.dtypes[0] == asset["raster:bands"][0]["data_type"]
    scl = items[0]["assets"]["SCL"]
    assert scl["proj:shape"] == [150, 150] and scl["raster:bands"][0] == {
        "nodata": 0, "data_type": "uint8", "spatial_resolution": 20}
    assert items[0]["assets"]["B04"]["raster:bands"][0]["scale"] == 0.0001


def test_bolzano_tile_covers_the_scenario_extent_on_the_10m_grid():
    bolzano = AREAS[0]
    west, south, east, north = bolzano.bounds
    assert bolzano.epsg == 32632 and west <= 679720 and east >= 680680 and south <= 5151080 and north >= 5151920
    assert west % 20 == 0 and north % 20 == 0
    assert AREAS[1].epsg != bolzano.epsg


def test_cloud_cover_matches_the_scl(demo_s3):
    cloudy_dates = 0
    for item in items_of(demo_s3):
        with open_asset(demo_s3, item, "SCL") as src:
            scl = src.read(1)
        valid = scl != 0
        expected = round(100 * np.isin(scl, (8, 9)).sum() / valid.sum(), 2)
        assert item["properties"]["eo:cloud_cover"] == expected
        cloudy_dates += expected > 0
    assert cloudy_dates == 4


def test_one_date_has_a_nodata_corner(demo_s3):
    with_gaps = []
    for item in items_of(demo_s3):
        with open_asset(demo_s3, item, "B08") as src:
            if (src.read(1) == 0).any():
                with_gaps.append(item["properties"]["datetime"])
    assert with_gaps == ["2022-06-22T10:20:31Z"]


def test_values_are_plausible(demo_s3):
    # Given the clear Bolzano scenes of June
    items = [i for i in items_of(demo_s3) if i["properties"]["proj:epsg"] == 32632
             and i["properties"]["eo:cloud_cover"] == 0 and i["properties"]["datetime"] < "2022-06-22"]
    means = []
    for item in items:
        with open_asset(demo_s3, item, "B04") as red_src, open_asset(demo_s3, item, "B08") as nir_src:
            red, nir = red_src.read(1).astype(float), nir_src.read(1).astype(float)
        with open_asset(demo_s3, item, "SCL") as src:
            scl = np.repeat(np.repeat(src.read(1), 2, 0), 2, 1)
        ndvi = (nir - red) / (nir + red)
        # Then vegetation is green, water has NIR below red, built-up is in between
        assert np.median(ndvi[scl == 4]) > 0.4
        assert (nir[scl == 6] < red[scl == 6]).mean() > 0.9  # (20 m SCL blurs the river banks)
        assert -0.1 < np.median(ndvi[scl == 5]) < 0.3
        assert red.min() * 0.0001 > 0.01 and red.max() * 0.0001 < 0.5
        means.append(ndvi[scl == 4].mean())
    # And vegetation greens up through June
    assert means == sorted(means)


def test_generation_is_deterministic_and_keeps_other_catalog_children(demo_s3, tmp_path):
    # Given a bucket whose catalog already lists another collection
    s3 = DirectoryS3(tmp_path)
    other = {"type": "Catalog", "id": "stratus", "stac_version": "1.0.0", "description": "x",
             "links": [{"rel": "child", "href": "./collections/other/collection.json"}]}
    s3.put_object(Bucket=DEMO_BUCKET, Key=catalog_layout.catalog_key(), Body=json.dumps(other).encode())
    # When generating again
    summary = generate_demo_collection(s3, DEMO_BUCKET)
    # Then every data file and item is byte-identical to the session's generation
    def digest(store, key):
        return hashlib.sha256(store.path(DEMO_BUCKET, key).read_bytes()).hexdigest()
    keys = [k for k in s3.written if k != catalog_layout.catalog_key()]
    assert len(keys) == 16 * 5 + 16 + 1
    assert all(digest(s3, k) == digest(demo_s3, k) for k in keys)
    # And the other collection stays in the catalog
    hrefs = [link["href"] for link in read_json(s3, catalog_layout.catalog_key())["links"]]
    assert "./collections/other/collection.json" in hrefs and len(hrefs) == 2
    assert summary["collection_id"] == DEMO_COLLECTION_ID and summary["items"] == 16
    assert [a["epsg"] for a in summary["areas"]] == [32632, 32633]


@pytest.mark.parametrize("area", AREAS, ids=lambda a: a.name)
def test_items_bbox_is_wgs84(demo_s3, area):
    bbox = next(i["bbox"] for i in items_of(demo_s3) if i["properties"]["proj:epsg"] == area.epsg)
    assert -180 <= bbox[0] < bbox[2] <= 180 and -90 <= bbox[1] < bbox[3] <= 90
