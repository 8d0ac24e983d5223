"""Synchronous processing (`POST /result`) through the real client and the local system."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from openeo.rest import OpenEoApiError

from tests.e2e.test_openeo_client_job import BBOX, COLLECTION, JUNE, expected_ndvi_mean

pytestmark = pytest.mark.e2e


def test_small_graph_is_computed_synchronously(connection, s3, tmp_path):
    cube = connection.load_collection(COLLECTION, spatial_extent=BBOX, temporal_extent=JUNE, bands=["B04", "B08"])
    result = cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean")
    path = tmp_path / "sync.tif"
    result.download(path, format="GTiff")
    expected, _ = expected_ndvi_mean(s3)
    with rasterio.open(path) as dataset:
        np.testing.assert_allclose(dataset.read(1), expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_too_large_a_request_is_refused_with_a_hint(connection):
    europe = {"west": -10.0, "east": 30.0, "south": 35.0, "north": 60.0}
    cube = connection.load_collection(COLLECTION, spatial_extent=europe, temporal_extent=JUNE, bands=["B04"])
    with pytest.raises(OpenEoApiError) as raised:
        cube.download(format="GTiff")
    assert raised.value.code == "ProcessGraphComplexity"
    assert "batch job" in raised.value.message


def test_processing_errors_keep_their_openeo_code(connection):
    cube = connection.load_collection(COLLECTION, spatial_extent=BBOX, temporal_extent=["2021-01-01", "2021-02-01"],
                                      bands=["B04"])
    with pytest.raises(OpenEoApiError) as raised:
        cube.download(format="GTiff")
    assert raised.value.code == "NoDataAvailable", raised.value.message
