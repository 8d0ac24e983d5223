"""Python UDFs through the real openeo client and the local system: a UDF in apply_dimension over t,
in batch and sync, equal to numpy; a failing UDF reports its own traceback only."""

from __future__ import annotations

import numpy as np
import openeo
import pytest
import rasterio
from openeo.rest import OpenEoApiError

from tests.e2e.test_openeo_client_job import BBOX, COLLECTION, JUNE, expected_ndvi_mean, wait_for

pytestmark = pytest.mark.e2e

# Every date of a pixel gets the pixel's mean over t (NaN stays NaN): max over t is then the mean NDVI.
MEAN_OVER_T = """
import xarray
from openeo.udf import XarrayDataCube

def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
    array = cube.get_array()
    return XarrayDataCube(array * 0 + array.mean("t", skipna=True))
"""
FAILING = """
from openeo.udf import XarrayDataCube

def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
    return XarrayDataCube(cube.get_array() / context["divisor"])
"""


def mean_ndvi_by_udf(connection, code=MEAN_OVER_T):
    cube = connection.load_collection(COLLECTION, spatial_extent=BBOX, temporal_extent=JUNE, bands=["B04", "B08"])
    # no runtime given: the client picks it from /udf_runtimes
    return cube.ndvi(nir="B08", red="B04").apply_dimension(process=openeo.UDF(code), dimension="t") \
        .reduce_dimension(dimension="t", reducer="max")


def test_a_udf_in_apply_dimension_over_t_equals_numpy_in_sync_and_batch(connection, s3, tmp_path):
    expected, _ = expected_ndvi_mean(s3)
    synchronous = tmp_path / "sync.tif"
    mean_ndvi_by_udf(connection).download(synchronous, format="GTiff")
    job = mean_ndvi_by_udf(connection).create_job(out_format="GTiff", title="UDF mean NDVI")
    try:
        job.start()
        assert wait_for(job)[0] == "finished"
        batch = job.get_results().download_files(tmp_path / "batch")
        tiffs = [path for path in batch if path.suffix == ".tif"]
        assert len(tiffs) == 1
        for path in (synchronous, tiffs[0]):
            with rasterio.open(path) as dataset:
                np.testing.assert_allclose(dataset.read(1), expected, rtol=1e-6, atol=1e-9, equal_nan=True)
    finally:
        job.delete()


def test_a_failing_udf_is_the_users_error_with_its_own_traceback(connection):
    with pytest.raises(OpenEoApiError) as raised:
        mean_ndvi_by_udf(connection, FAILING).download(format="GTiff")
    assert raised.value.http_status_code == 400 and raised.value.code == "UdfError"
    assert 'File "udf.py", line 5, in apply_datacube' in raised.value.message
    assert "KeyError: 'divisor'" in raised.value.message
    for internal in ("site-packages", "stratus_processing", "/tmp/", "/work/"):
        assert internal not in raised.value.message
