"""load_stac on real data: the Earth Search v1 item of a Sentinel-2 L2A scene and cut-outs of its real
COGs, served over HTTP by the local stand-in (tests/support_stac_server.py); the engine reads them
through GDAL's /vsicurl/ with Range requests. The material ships in tests/fixtures/real/data/
(`STRATUS_REAL_DATA` overrides; the tests skip if that is absent)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import rasterio
import stratus_processing.processes  # noqa: F401  (registers the processes)
from rasterio.windows import Window
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.graph import evaluate_graph
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.stac import DirectoryJsonStore, DocumentReader, StacCatalog

from tests.support_stac_server import S2_SCENE, S2_SCENE_ID, StacTestServer, earth_search_server, require_real_data

# A window of the scene's cut-out (UTM 29N), not aligned to the COGs' 128 px tiles: rows 50-249 and
# columns 70-329 of the 100 m red/nir files, rows 25-124 and columns 35-164 of the 200 m SCL file.
ORIGIN_X, ORIGIN_Y = 257580, 2800020
ROWS, COLS = slice(50, 250), slice(70, 330)
EXTENT = {"west": ORIGIN_X + COLS.start * 100, "east": ORIGIN_X + COLS.stop * 100,
          "north": ORIGIN_Y - ROWS.start * 100, "south": ORIGIN_Y - ROWS.stop * 100, "crs": 32629}


@pytest.fixture(scope="module")
def server() -> Iterator[StacTestServer]:
    with earth_search_server(require_real_data()) as running:
        yield running


@pytest.fixture
def env(tmp_path) -> EvalEnv:
    """STAC documents and COGs from the local server (a loopback host, so private hosts are allowed)."""
    documents = DocumentReader(allow_private_hosts=True)
    return EvalEnv(catalog=StacCatalog(DirectoryJsonStore(tmp_path), documents=documents), rasters=RasterReader())


def read_directly(name: str, rows: slice, cols: slice) -> np.ndarray:
    path = require_real_data() / S2_SCENE / f"{name}.tif"
    with rasterio.open(path) as src:
        return src.read(1, window=Window.from_slices(rows, cols))


def test_load_stac_reads_the_real_bands_over_http_exactly(server, env):
    # Given the real Sentinel-2 L2A item and its COGs on an HTTP server
    server.reset_counters()
    url = server.item_url("sentinel-2-l2a", S2_SCENE_ID)
    # When loading red, nir and the scene classification over a window of the scene
    cube = evaluate_graph({"load": {"process_id": "load_stac", "result": True, "arguments": {
        "url": url, "spatial_extent": EXTENT, "temporal_extent": ["2020-02-19", "2020-02-20"],
        "bands": ["red", "nir", "scl"]}}}, env)
    # Then one date, the bands by their Earth Search names, on the 100 m grid of the window
    assert cubes.band_names(cube) == ["red", "nir", "scl"] and cube.sizes["t"] == 1
    grid = cubes.grid_of(cube)
    assert (grid.width, grid.height) == (260, 200) and grid.transform.c == EXTENT["west"]
    assert grid.transform.f == EXTENT["north"] and grid.resolution == (100, 100)
    # And the stored values (load_stac doesn't scale), equal to reading the same pixels with rasterio
    red, nir, scl = (cube.sel(bands=band).values[0] for band in ("red", "nir", "scl"))
    np.testing.assert_array_equal(red, read_directly("B04", ROWS, COLS).astype(np.float64))
    np.testing.assert_array_equal(nir, read_directly("B08", ROWS, COLS).astype(np.float64))
    # SCL is at 200 m: each of its pixels covers 2 × 2 of the grid (nearest neighbour keeps the classes)
    coarse = read_directly("SCL", slice(ROWS.start // 2, ROWS.stop // 2), slice(COLS.start // 2, COLS.stop // 2))
    np.testing.assert_array_equal(scl, np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1).astype(np.float64))
    assert set(np.unique(scl)) >= {5.0, 8.0, 10.0}  # bare soil, cloud, cirrus: the window is not uniform
    # And the bytes came over HTTP by range from the scene's COGs
    cog_requests = [r for r in server.log if r.path.startswith(f"/{S2_SCENE}/")]
    assert {r.path.rsplit("/", 1)[1] for r in cog_requests} == {"B04.tif", "B08.tif", "SCL.tif"}
    assert any(r.status == 206 for r in cog_requests)
    whole = sum((require_real_data() / S2_SCENE / f"{name}.tif").stat().st_size for name in ("B04", "B08"))
    assert sum(r.bytes for r in cog_requests if not r.path.endswith("SCL.tif")) < whole


def test_ndvi_of_the_real_scene(server, env):
    # A desert scene (the item says 0 % vegetation): NDVI low but positive, as reflectances are real
    cube = evaluate_graph({
        "load": {"process_id": "load_stac", "arguments": {
            "url": server.item_url("sentinel-2-l2a", S2_SCENE_ID), "spatial_extent": EXTENT,
            "bands": ["red", "nir"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}, "result": True}}, env)
    red = read_directly("B04", ROWS, COLS).astype(np.float64)
    nir = read_directly("B08", ROWS, COLS).astype(np.float64)
    np.testing.assert_allclose(cube.values[0], (nir - red) / (nir + red), rtol=1e-12)
    assert 0 < np.nanmedian(cube.values) < 0.2


def test_load_stac_searches_the_recorded_api_collection(server, env):
    # Given Earth Search's recorded collection document (items link, root with search links)
    server.reset_counters()
    url = f"{server.api_url}/collections/sentinel-2-l2a"
    # When loading SCL over the window for February 2020 (SCL: the red/nir assets' names are shared
    # with their `*-jp2` twins, which the engine can't read yet)
    cube = evaluate_graph({"load": {"process_id": "load_stac", "result": True, "arguments": {
        "url": url, "spatial_extent": EXTENT, "temporal_extent": ["2020-02-01", "2020-03-01"],
        "bands": ["scl"]}}}, env)
    # Then the items come from POST /v1/search, the scene's SCL is read over HTTP on its own 200 m grid
    [search, *_] = [r for r in server.log if r.path == "/v1/search"]
    assert search.method == "POST" and search.status == 200
    assert [t.isoformat() for t in cubes.time_labels(cube)] == ["2020-02-19T11:34:25.405000+00:00"]
    assert cubes.grid_of(cube).resolution == (200, 200)
    coarse = read_directly("SCL", slice(ROWS.start // 2, ROWS.stop // 2), slice(COLS.start // 2, COLS.stop // 2))
    np.testing.assert_array_equal(cube.values[0, 0], coarse.astype(np.float64))
