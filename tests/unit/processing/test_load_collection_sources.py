"""load_collection through the collections configuration, on real data: the shipped default configuration
(infra/collections/default.json) with its Earth Search entries pointed at the local stand-in of Earth
Search (tests/support_stac_server.py: the recorded documents and the real Sentinel-2 L2A scene's COGs),
allow-listed in the configuration as an operator allows a private STAC host. The material ships in
tests/fixtures/real/data/ (`STRATUS_REAL_DATA` overrides; the tests skip if that is absent)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import stratus_processing.processes  # noqa: F401  (registers the processes)
from rasterio.windows import Window
from stratus import catalog_layout
from stratus.collections_config import parse
from stratus.errors import CollectionNotFoundException, InternalException
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import NoDataAvailableException
from stratus_processing.graph import evaluate_graph
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.sources import ConfiguredCatalog
from stratus_processing.io.stac import DirectoryJsonStore, DocumentReader, S3JsonStore, SearchRequest
from stratus_processing.reporting import RecordingReporter

from tests.support_stac_server import (EARTH_SEARCH, S2_SCENE, StacTestServer, earth_search_server,
                                       require_real_data, scene_item)
from tests.unit.processing.conftest import DEMO_BUCKET
from tests.unit.processing.processing_testkit import BOLZANO_EXTENT, JUNE_2022

REPO = Path(__file__).resolve().parents[3]
# The scene's cut-out (UTM 29N): rows 50-249 and columns 70-329 of the 100 m red/nir files.
ORIGIN_X, ORIGIN_Y = 257580, 2800020
ROWS, COLS = slice(50, 250), slice(70, 330)
EXTENT = {"west": ORIGIN_X + COLS.start * 100, "east": ORIGIN_X + COLS.stop * 100,
          "north": ORIGIN_Y - ROWS.start * 100, "south": ORIGIN_Y - ROWS.stop * 100, "crs": 32629}
FEBRUARY_19 = ["2020-02-19", "2020-02-20"]
RESULTS_BUCKET = "stratus-results-test"


def reprocessed(item: dict, *, baseline: str, sequence: int, offset: float | None) -> dict:
    """A copy of a real item as the archive would list a reprocessing of the same product: same tile,
    datatake and COGs, another processing baseline (and radiometric offset); `offset` None: the copy
    has no `raster:bands` at all."""
    copied = copy.deepcopy(item)
    copied["id"] = item["id"].replace("_0_L2A", f"_{sequence}_L2A")
    properties = copied["properties"]
    properties["s2:processing_baseline"] = baseline
    properties["s2:sequence"] = str(sequence)
    properties["s2:product_uri"] = properties["s2:product_uri"].replace("_N0214_", f"_N{baseline.replace('.', '')}_")
    properties["s2:datatake_id"] = properties["s2:datatake_id"].replace("_N02.14", f"_N{baseline}")
    properties["earthsearch:boa_offset_applied"] = offset is not None and offset != 0
    for asset in copied["assets"].values():
        if offset is None:
            asset.pop("raster:bands", None)
        elif asset.get("eo:bands") and asset.get("raster:bands"):
            asset["raster:bands"][0]["offset"] = offset
    return copied


@pytest.fixture(scope="module")
def server() -> Iterator[StacTestServer]:
    with earth_search_server(require_real_data()) as running:
        yield running


def default_config(server: StacTestServer, **entry_changes: dict) -> dict:
    """The shipped default configuration, its Earth Search URLs pointing at the stand-in, which the
    operator allow-lists."""
    config = json.loads((REPO / "infra" / "collections" / "default.json").read_text())
    for entry in config["collections"]:
        entry["url"] = entry["url"].replace(EARTH_SEARCH, server.url)
        entry.update(entry_changes.get(entry["id"], {}))
    config["allowed_private_hosts"] = ["127.0.0.1"]
    return config


def make_env(tmp_path: Path, config: dict | None, *, secret_headers=None) -> EvalEnv:
    """The engine as the runner builds it: the configuration in the data bucket (a directory here), no
    private host allowed but the configuration's."""
    store = DirectoryJsonStore(tmp_path / "data-bucket")
    if config is not None:
        path = store.root / catalog_layout.collections_config_key()
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(config))
    catalog = ConfiguredCatalog(store, documents=DocumentReader(), secret_headers=secret_headers,
                                protected_buckets=[RESULTS_BUCKET])
    return EvalEnv(catalog=catalog, rasters=RasterReader(), reporter=RecordingReporter())


def load(env: EvalEnv, collection_id: str, bands: list[str], temporal_extent=FEBRUARY_19, **arguments):
    return evaluate_graph({"load": {"process_id": "load_collection", "result": True, "arguments": {
        "id": collection_id, "spatial_extent": EXTENT, "temporal_extent": temporal_extent, "bands": bands,
        **arguments}}}, env)


def stored(name: str, rows: slice = ROWS, cols: slice = COLS) -> np.ndarray:
    with rasterio.open(require_real_data() / S2_SCENE / f"{name}.tif") as src:
        return src.read(1, window=Window.from_slices(rows, cols)).astype(np.float64)


def reflectance(dn: np.ndarray, *, offset: float) -> np.ndarray:
    """What the item's raster:bands say (scale 1e-4) with no-data (0) as NaN: numpy's reference."""
    values = dn * 0.0001 + offset
    values[dn == 0] = np.nan
    return values


def test_sentinel2_alias_loads_the_real_scene_as_reflectance(server, tmp_path):
    # Given the default configuration, its Earth Search entry pointing at the stand-in
    env = make_env(tmp_path, default_config(server))
    server.reset_counters()
    # When loading B04 and B08 of SENTINEL2_L2A (the alias) over a window of the real scene
    cube = load(env, "SENTINEL2_L2A", ["B04", "B08"])
    # Then the bands have the configured names, on the 100 m grid of the window, one date
    assert cubes.band_names(cube) == ["B04", "B08"] and cube.sizes["t"] == 1
    assert [t.isoformat() for t in cubes.time_labels(cube)] == ["2020-02-19T11:34:25.405000+00:00"]
    grid = cubes.grid_of(cube)
    assert (grid.width, grid.height, grid.resolution) == (260, 200, (100, 100))
    # And the values are numpy's on the same pixels with the item's scale and offset (baseline 02.14: 0)
    np.testing.assert_allclose(cube.sel(bands="B04").values[0], reflectance(stored("B04"), offset=0.0), rtol=1e-12)
    np.testing.assert_allclose(cube.sel(bands="B08").values[0], reflectance(stored("B08"), offset=0.0), rtol=1e-12)
    # And the search went to the API, the pixels came from the COGs by range: never a JPEG 2000 twin
    paths = {r.path for r in server.log}
    assert "/v1/search" in paths and "/v1/collections/sentinel-2-l2a" in paths
    assert {p.rsplit("/", 1)[1] for p in paths if p.startswith(f"/{S2_SCENE}/")} == {"B04.tif", "B08.tif"}
    assert not any(p.endswith(".jp2") for p in paths)


def test_common_names_and_scl_unscaled(server, tmp_path):
    env = make_env(tmp_path, default_config(server))
    # Common names pick the configured bands; SCL keeps its class values (no scale)
    cube = load(env, "sentinel-2-l2a", ["red", "nir", "SCL"])
    assert cubes.band_names(cube) == ["B04", "B08", "SCL"]
    np.testing.assert_allclose(cube.sel(bands="B04").values[0], reflectance(stored("B04"), offset=0.0), rtol=1e-12)
    coarse = stored("SCL", slice(ROWS.start // 2, ROWS.stop // 2), slice(COLS.start // 2, COLS.stop // 2))
    np.testing.assert_array_equal(cube.sel(bands="SCL").values[0], np.repeat(np.repeat(coarse, 2, 0), 2, 1))
    assert set(np.unique(cube.sel(bands="SCL").values)) >= {5.0, 8.0, 10.0}


def test_newest_baseline_wins_and_brings_its_own_offset(tmp_path):
    # Given the real item and a reprocessing of it (baseline 05.00, offset -0.1 in its raster:bands),
    # both in the archive, same tile and datatake, same COGs
    item = scene_item(require_real_data())
    newer = reprocessed(item, baseline="05.00", sequence=1, offset=-0.1)
    with earth_search_server(require_real_data()) as server:
        server.items[("sentinel-2-l2a", newer["id"])] = newer
        env = make_env(tmp_path, default_config(server))
        # When loading B04 for that day
        cube = load(env, "SENTINEL2_L2A", ["B04"])
    # Then one item is read, the newest baseline's, with its offset: DN × 1e-4 - 0.1
    np.testing.assert_allclose(cube.values[0, 0], reflectance(stored("B04"), offset=-0.1), rtol=1e-12, atol=1e-15)
    # And the job log says an item was left out
    [message] = [m["message"] for m in env.reporter.logs if "load_collection" in m["message"]]
    assert "1 items of 'sentinel-2-l2a'" in message and "1 superseded" in message


def test_offset_derived_from_the_baseline_for_items_without_raster_bands(tmp_path):
    # Given only an item of baseline 04.00 without raster:bands (the derived radiometry must apply)
    item = scene_item(require_real_data())
    bare = reprocessed(item, baseline="04.00", sequence=1, offset=None)
    with earth_search_server(require_real_data()) as server:
        del server.items[("sentinel-2-l2a", item["id"])]
        server.items[("sentinel-2-l2a", bare["id"])] = bare
        env = make_env(tmp_path, default_config(server))
        cube = load(env, "SENTINEL2_L2A", ["B04", "SCL"])
    np.testing.assert_allclose(cube.sel(bands="B04").values[0], reflectance(stored("B04"), offset=-0.1),
                               rtol=1e-12, atol=1e-15)
    coarse = stored("SCL", slice(ROWS.start // 2, ROWS.stop // 2), slice(COLS.start // 2, COLS.stop // 2))
    expected_scl = np.repeat(np.repeat(coarse, 2, 0), 2, 1)
    expected_scl[expected_scl == 0] = np.nan  # no-data: the file's own (the item has no raster:bands)
    np.testing.assert_array_equal(cube.sel(bands="SCL").values[0], expected_scl)


def test_default_filter_of_the_configuration_applies(server, tmp_path):
    # The stand-in, like the recorded Earth Search, doesn't declare the Filter extension: checked here
    only_2b = {"filter": {"op": "=", "args": [{"property": "platform"}, "sentinel-2b"]}}
    env = make_env(tmp_path, default_config(server, **{"sentinel-2-l2a": only_2b}))
    with pytest.raises(NoDataAvailableException):
        load(env, "SENTINEL2_L2A", ["B04"])
    only_2a = {"filter": {"op": "=", "args": [{"property": "platform"}, "sentinel-2a"]}}
    env = make_env(tmp_path / "2a", default_config(server, **{"sentinel-2-l2a": only_2a}))
    assert load(env, "SENTINEL2_L2A", ["B04"]).sizes["t"] == 1


def test_a_private_source_needs_the_operators_allow_list(server, tmp_path):
    config = default_config(server)
    config["allowed_private_hosts"] = []
    env = make_env(tmp_path, config)
    server.reset_counters()
    with pytest.raises(InternalException, match="sentinel-2-l2a.*not readable"):
        load(env, "SENTINEL2_L2A", ["B04"])
    assert server.stats().requests == 0  # refused before connecting


def test_load_stac_on_the_collection_reads_the_cog_not_its_jp2_twin(server, tmp_path):
    env = EvalEnv(catalog=ConfiguredCatalog(DirectoryJsonStore(tmp_path), documents=DocumentReader(
        allow_private_hosts=True)), rasters=RasterReader())
    server.reset_counters()
    cube = evaluate_graph({"load": {"process_id": "load_stac", "result": True, "arguments": {
        "url": f"{server.api_url}/collections/sentinel-2-l2a", "spatial_extent": EXTENT,
        "temporal_extent": FEBRUARY_19, "bands": ["red"]}}}, env)
    np.testing.assert_array_equal(cube.values[0, 0], np.where(stored("B04") == 0, np.nan, stored("B04")))
    assert any(r.path.endswith("/B04.tif") for r in server.log)


# --- Landsat and the DEM on the recorded documents ---------------------------------------------------

OCTOBER_8 = SearchRequest(bbox=(-107.5, 39.0, -104.0, 42.0), start=cubes.parse_utc("2023-10-08"),
                          end=cubes.parse_utc("2023-10-09"))


def test_landsat_bands_without_the_data_role_and_requester_pays_reaching_gdal(server, tmp_path):
    env = make_env(tmp_path, default_config(server))
    landsat = env.catalog.open("LANDSAT8_L2")
    # item_assets give the reflectances only the role `reflectance`, QA the role `cloud`...: still bands
    names = [band.name for band in landsat.bands]
    assert {"red", "nir08", "swir16", "lwir11", "qa_pixel", "atran"} <= set(names)
    assert "thumbnail" not in names and "mtl.json" not in names
    [item] = landsat.search(OCTOBER_8)
    assert item.id == "LC08_L2SP_033032_20231008_02_T1"
    red = item.asset_for(next(b for b in landsat.bands if b.name == "red"))
    assert item.assets[red]["href"].startswith("s3://usgs-landsat/")
    landsat.check_href(item.assets[red]["href"])  # a configured source may read any bucket...
    with pytest.raises(ValueError, match="not readable"):
        landsat.check_href(f"s3://{RESULTS_BUCKET}/jobs/someone-else/result.tif")  # ...but the deployment's
    # The requester-pays source's s3:// reads tell GDAL the requester pays
    assert item.gdal_options(red) == {"AWS_REQUEST_PAYER": "requester"}
    with RasterReader().gdal_env(item.gdal_options(red)):
        assert rasterio.env.getenv()["AWS_REQUEST_PAYER"] == "requester"
    with RasterReader().gdal_env():
        assert "AWS_REQUEST_PAYER" not in rasterio.env.getenv()


def test_sentinel2_of_the_same_search_is_not_requester_pays(server, tmp_path):
    env = make_env(tmp_path, default_config(server))
    sentinel2 = env.catalog.open("SENTINEL2_L2A")
    [item] = sentinel2.search(OCTOBER_8)
    assert item.properties["s2:processing_baseline"] == "05.09"
    assert all(item.gdal_options(key) == {} for key in item.assets)


def test_dem_data_asset_is_the_band_DEM(server, tmp_path):
    env = make_env(tmp_path, default_config(server))
    dem = env.catalog.open("COPERNICUS_30")
    assert [(band.name, band.asset_key) for band in dem.bands] == [("DEM", "data")]
    items = dem.search(SearchRequest(bbox=(-180, -90, 180, 90)))
    assert items and all(item.asset_for(dem.bands[0]) == "data" for item in items)
    assert items[0].raster_band("data").get("nodata") is None  # none in the metadata: the file's own


def test_unknown_names_are_not_found(server, tmp_path):
    env = make_env(tmp_path, default_config(server))
    with pytest.raises(CollectionNotFoundException):
        env.catalog.open("SENTINEL2")


# --- own collections (no real data needed) ------------------------------------------------------------

def test_own_collections_by_id_and_by_a_configured_alias_with_renames(demo_s3, demo_env):
    config = parse({"collections": [{"id": "sentinel-2-l2a-demo", "kind": "own", "aliases": ["DEMO"],
                                     "bands": {"RED": "B04"}}]})
    catalog = ConfiguredCatalog(S3JsonStore(demo_s3, DEMO_BUCKET), config=config)
    env = EvalEnv(catalog=catalog, rasters=demo_env.rasters)
    arguments = {"spatial_extent": BOLZANO_EXTENT, "temporal_extent": JUNE_2022}
    by_id = evaluate_graph({"load": {"process_id": "load_collection", "result": True, "arguments": {
        "id": "sentinel-2-l2a-demo", "bands": ["B04"], **arguments}}}, demo_env)
    by_alias = evaluate_graph({"load": {"process_id": "load_collection", "result": True, "arguments": {
        "id": "DEMO", "bands": ["RED"], **arguments}}}, env)
    assert cubes.band_names(by_alias) == ["RED"]
    np.testing.assert_array_equal(by_alias.values, by_id.values)


def test_no_configuration_in_the_bucket_means_own_collections_only(demo_s3):
    catalog = ConfiguredCatalog(S3JsonStore(demo_s3, DEMO_BUCKET))
    assert catalog.open("sentinel-2-l2a-demo").id == "sentinel-2-l2a-demo"
    with pytest.raises(CollectionNotFoundException):
        catalog.open("SENTINEL2_L2A")
