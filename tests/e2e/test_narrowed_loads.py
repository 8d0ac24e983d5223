"""Loads narrowed by the filters after them, and `max_cloud_cover=`, through the real client and the
local system: the API's dry run lets them through and the engine gives numpy's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from tests.e2e.test_openeo_client_job import BBOX, COLLECTION, JUNE, expected_ndvi_mean

pytestmark = pytest.mark.e2e


def test_filters_after_an_open_load_with_max_cloud_cover_run_synchronously(connection, s3, tmp_path):
    # Given load_collection(...).filter_temporal(...).filter_bbox(...) with no extent on the load itself
    cube = connection.load_collection(COLLECTION, spatial_extent=None, temporal_extent=None, bands=["B04", "B08"],
                                      max_cloud_cover=100)
    result = (cube.filter_temporal(JUNE).filter_bbox(BBOX).ndvi(nir="B08", red="B04")
              .reduce_dimension(dimension="t", reducer="mean"))
    # When it is computed synchronously
    path = tmp_path / "narrowed.tif"
    result.download(path, format="GTiff")
    # Then it is the mean NDVI over the box, as numpy computes it from the source COGs
    expected, _ = expected_ndvi_mean(s3)
    with rasterio.open(path) as dataset:
        np.testing.assert_allclose(dataset.read(1), expected, rtol=1e-5, atol=1e-6, equal_nan=True)

