"""The openEO client flows beyond a single job: user-defined processes, estimates and logs."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from openeo.api.process import Parameter
from openeo.rest import OpenEoApiError

from tests.e2e.test_openeo_client_job import BBOX, COLLECTION, JUNE, expected_ndvi_mean, wait_for, wait_for_logs

pytestmark = pytest.mark.e2e


def _ndvi_mean_udp(connection):
    """A UDP with a parameter: the time-mean NDVI of a cube given as `data`."""
    data = Parameter.datacube(name="data", description="a cube with B04 and B08")
    cube = connection.datacube_from_process("ndvi", data={"from_parameter": "data"}, nir="B08", red="B04")
    return data, cube.reduce_dimension(dimension="t", reducer="mean")


def test_udp_store_list_use_delete(connection, s3, tmp_path):
    # Given a parameterised process stored as a UDP
    data, body = _ndvi_mean_udp(connection)
    udp = connection.save_user_defined_process("e2e_ndvi_mean", body, parameters=[data],
                                               summary="time-mean NDVI")
    try:
        # Then it is listed and reads back with its parameter
        assert "e2e_ndvi_mean" in {p["id"] for p in connection.list_user_defined_processes()}
        assert [p["name"] for p in udp.describe()["parameters"]] == ["data"]
        # When a graph calls it (synchronously) on the June Bolzano cube
        cube = connection.load_collection(COLLECTION, spatial_extent=BBOX, temporal_extent=JUNE,
                                          bands=["B04", "B08"])
        result = cube.process("e2e_ndvi_mean", data=cube)
        path = tmp_path / "udp.tif"
        result.download(path, format="GTiff")
        # Then the result is the time-mean NDVI
        expected, _ = expected_ndvi_mean(s3)
        with rasterio.open(path) as dataset:
            np.testing.assert_allclose(dataset.read(1), expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    finally:
        udp.delete()
    # And once deleted it is gone
    assert "e2e_ndvi_mean" not in {p["id"] for p in connection.list_user_defined_processes()}
    with pytest.raises(OpenEoApiError) as raised:
        connection.user_defined_process("e2e_ndvi_mean").describe()
    assert raised.value.code == "ProcessGraphNotFound"


def test_estimate_then_run_and_read_the_logs(connection):
    cube = connection.load_collection(COLLECTION, spatial_extent=BBOX, temporal_extent=JUNE, bands=["B04", "B08"])
    job = cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean").create_job(
        out_format="GTiff", title="estimate and logs")
    try:
        # The estimate comes from a dry run over the STAC items: positive costs, size and duration
        estimate = job.estimate()
        assert estimate["costs"] > 0 and estimate["size"] > 0
        assert estimate["duration"].startswith("P")
        job.start()
        assert wait_for(job)[0] == "finished"
        # Logs: the run is told from creation to the end, each entry with level and time
        entries = wait_for_logs(job, lambda es: any("Results complete" in e.message for e in es))
        assert all(e.level in ("debug", "info", "warning", "error") and e["time"] for e in entries)
        # `level` filters (nothing went wrong, so no errors) and `offset` continues after an entry
        assert list(job.logs(level="error")) == []
        after_first = connection.get(f"/jobs/{job.job_id}/logs", params={"offset": entries[0].id}).json()["logs"]
        assert [e["id"] for e in after_first] == [e.id for e in entries[1:]]
    finally:
        job.delete()
