"""A real Sentinel-2 L2A scene through the shipped default collections configuration: the recorded Earth
Search v1 documents and real COGs on a local server stand in for Earth Search (tests/e2e/conftest.py), and
the real openeo client computes NDVI over `SENTINEL2_L2A`, equal to numpy on the same pixels. The material ships
in tests/fixtures/real/data/ (`STRATUS_REAL_DATA` overrides; the tests skip if that is absent)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.windows import Window

from tests.support_stac_server import S2_SCENE, require_real_data

# rows 50-249, columns 70-329 of the scene's 100 m cut-out (UTM 29N): desert with clouds and cirrus
ORIGIN_X, ORIGIN_Y = 257580, 2800020
ROWS, COLS = slice(50, 250), slice(70, 330)
EXTENT = {"west": ORIGIN_X + COLS.start * 100, "east": ORIGIN_X + COLS.stop * 100,
          "north": ORIGIN_Y - ROWS.start * 100, "south": ORIGIN_Y - ROWS.stop * 100, "crs": 32629}


@pytest.fixture(scope="module")
def server(earth_search):
    running, _ = earth_search
    if running is None:
        require_real_data()  # skips, saying where the material is expected
    return running


def reflectance(name: str) -> np.ndarray:
    """The band as `load_collection` must give it: the item's scale and offset, no-data (0) as NaN."""
    with rasterio.open(require_real_data() / S2_SCENE / f"{name}.tif") as src:
        values = src.read(1, window=Window.from_slices(ROWS, COLS)).astype(np.float64)
    values[values == 0] = np.nan
    return values * 1e-4 + 0.0  # baseline 02.14: offset 0 (raster:bands of the recorded item)


def test_the_collection_is_listed_under_the_name_users_type(connection, server):
    metadata = connection.describe_collection("SENTINEL2_L2A")
    assert metadata["id"] == "sentinel-2-l2a"
    bands = metadata["cube:dimensions"]["bands"]["values"]
    assert {"B02", "B03", "B04", "B08", "SCL"} <= set(bands)
    assert "sentinel-2-l2a" in {c["id"] for c in connection.list_collections()}


def test_ndvi_of_a_real_scene_with_the_openeo_client_equals_numpy(connection, server):
    server.reset_counters()
    # When a user computes NDVI over a window of a real scene, as the client's docs do
    cube = connection.load_collection("SENTINEL2_L2A", spatial_extent=EXTENT,
                                      temporal_extent=["2020-02-19", "2020-02-20"], bands=["B04", "B08"])
    tif = cube.ndvi(nir="B08", red="B04").download(format="GTiff")
    with MemoryFile(tif) as memory, memory.open() as dataset:
        ndvi = dataset.read(1).astype(np.float64)
        assert dataset.crs.to_epsg() == 32629 and dataset.transform.c == EXTENT["west"]
        assert dataset.transform.f == EXTENT["north"] and dataset.res == (100, 100)
        if dataset.nodata is not None and not np.isnan(dataset.nodata):
            ndvi[ndvi == dataset.nodata] = np.nan
    # Then it equals numpy on the same pixels of the scene's COGs
    red, nir = reflectance("B04"), reflectance("B08")
    expected = (nir - red) / (nir + red)
    np.testing.assert_allclose(ndvi, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isfinite(ndvi).sum() > 40_000
    # And the pixels came from the scene's COGs over HTTP, found by a search at the (stand-in) STAC API
    paths = {r.path for r in server.log}
    assert any(p.endswith("/search") for p in paths)
    assert {p.rsplit("/", 1)[1] for p in paths if p.startswith(f"/{S2_SCENE}/")} == {"B04.tif", "B08.tif"}
