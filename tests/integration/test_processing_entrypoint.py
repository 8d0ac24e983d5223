"""`python -m stratus_processing` as AWS Batch runs it, against an embedded moto server: S3 through
GDAL's /vsis3, events on SQS, the manifest, and failures."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from moto.sts.models import sts_backends
from stratus import catalog_layout
from stratus.settings import ENV

from tests.integration.processing_fixtures import REGION, ProcessingStack, running_processing_stack
from tests.unit.processing.processing_testkit import BOLZANO_EXTENT, JUNE_2022, june_items, reference_mean_ndvi

COLLECTION = "sentinel-2-l2a-demo"


@pytest.fixture(scope="module")
def processing_stack() -> Iterator[ProcessingStack]:
    with running_processing_stack() as stack:
        yield stack


def load_node(collection=COLLECTION):
    return {"process_id": "load_collection", "arguments": {
        "id": collection, "spatial_extent": BOLZANO_EXTENT, "temporal_extent": JUNE_2022, "bands": ["B04", "B08"]}}


def mean_over_time(node_id):
    return {"process_id": "reduce_dimension", "arguments": {
        "data": {"from_node": node_id}, "dimension": "t", "reducer": {"process_graph": {
            "mean1": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}}


def save_node(node_id):
    return {"process_id": "save_result", "arguments": {"data": {"from_node": node_id}, "format": "GTiff"},
            "result": True}


def ndvi_with_process(collection=COLLECTION):
    return {"process_graph": {
        "load1": load_node(collection),
        "ndvi1": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load1"}}},
        "reduce1": mean_over_time("ndvi1"),
        "save1": save_node("reduce1"),
    }}


def ndvi_with_band_math():
    """What the openeo Python client sends for `(B08 - B04) / (B08 + B04)` via `reduce_dimension`."""
    def band(label):
        return {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": label}}
    return {"process_graph": {
        "loadcollection1": load_node(),
        "reducedimension1": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "loadcollection1"}, "dimension": "bands", "reducer": {"process_graph": {
                "arrayelement1": band("B08"), "arrayelement2": band("B04"),
                "subtract1": {"process_id": "subtract", "arguments": {
                    "x": {"from_node": "arrayelement1"}, "y": {"from_node": "arrayelement2"}}},
                "add1": {"process_id": "add", "arguments": {
                    "x": {"from_node": "arrayelement1"}, "y": {"from_node": "arrayelement2"}}},
                "divide1": {"process_id": "divide", "arguments": {
                    "x": {"from_node": "subtract1"}, "y": {"from_node": "add1"}}, "result": True}}}}},
        "reducedimension2": mean_over_time("reducedimension1"),
        "saveresult1": save_node("reducedimension2"),
    }}


@pytest.mark.parametrize("job_id, process", [
    ("job-ndvi-process", ndvi_with_process()),
    ("job-ndvi-band-math", ndvi_with_band_math()),
])
def test_mean_ndvi_job(processing_stack, job_id, process):
    stack = processing_stack
    # When the container runs the job
    completed = stack.run(process, job_id)
    # Then it succeeds
    assert completed.returncode == 0, completed.stdout + completed.stderr

    # And the manifest lists one COG on exactly the source pixel grid
    prefix = catalog_layout.results_prefix(job_id, "run-1")
    manifest = json.loads(stack.read(catalog_layout.manifest_key(prefix)))
    asset = manifest["assets"]["result.tif"]
    assert asset["key"] == f"{prefix}result.tif"
    assert asset["proj:epsg"] == 32632 and asset["proj:shape"] == [84, 96]
    assert asset["proj:transform"] == [10, 0, 679720, 0, -10, 5151920]
    assert asset["file:size"] == len(stack.read(asset["key"]))
    assert manifest["properties"]["start_datetime"] == "2022-06-02T10:20:31Z"
    assert manifest["properties"]["end_datetime"] == "2022-06-27T10:20:31Z"
    assert 11.34 < manifest["bbox"][0] < manifest["bbox"][2] < 11.36

    # And the values are the mean over the dates of the NDVI computed with numpy from the source COGs
    # (in float32: the graph stores a float32 raster of 16-bit sources, see `precision`)
    item_keys = stack.keys(stack.data_bucket, catalog_layout.items_prefix(COLLECTION))
    items = june_items(lambda key: json.loads(stack.read(key, stack.data_bucket)), item_keys)
    assert len(items) == 6
    expected = reference_mean_ndvi(stack.read_href, items, BOLZANO_EXTENT, dtype=np.float32)
    with rasterio.MemoryFile(stack.read(asset["key"])) as memfile, memfile.open() as result:
        assert result.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert result.crs == CRS.from_epsg(32632)
        assert result.transform == Affine(10, 0, 679720, 0, -10, 5151920)
        assert (result.width, result.height, result.dtypes[0]) == (96, 84, "float32")
        np.testing.assert_array_equal(result.read(1), expected.astype("float32"))

    # And the job told its progress and main steps, without claiming to be finished
    statuses = stack.events(stack.status_queue_url, job_id)
    assert statuses[0]["status"] == "running" and statuses[0]["progress"] == 0
    assert statuses[0]["run_id"] == "run-1"
    assert {s["status"] for s in statuses} == {"running"} and len(statuses) > 2
    logs = stack.events(stack.log_queue_url, job_id)
    assert {entry["level"] for entry in logs} == {"info"}
    assert logs[0]["message"].startswith("Process graph loaded")
    assert any("6 items" in entry["message"] for entry in logs)
    assert any(entry["message"].startswith("save_result: writing") for entry in logs)


def test_a_job_reaches_the_results_bucket_through_a_session_of_its_run(processing_stack):
    stack = processing_stack
    job_id = "job-scoped-session"
    # Given the jobs' results role (moto accepts AssumeRole; it enforces no session policy: tested on the
    # document in tests/unit/processing/test_run_credentials.py)
    iam = boto3.client("iam", endpoint_url=stack.endpoint_url, region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    role_arn = iam.create_role(RoleName="job-results", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": "arn:aws:iam::123456789012:role/job"}}]}))[
        "Role"]["Arn"]
    # When the container runs a job with the role configured
    completed = stack.run(ndvi_with_process(), job_id, environment={ENV["results_role_arn"]: role_arn})
    # Then it succeeds and its results are where the run's are
    assert completed.returncode == 0, completed.stdout + completed.stderr
    prefix = catalog_layout.results_prefix(job_id, "run-1")
    assert json.loads(stack.read(catalog_layout.manifest_key(prefix)))["assets"]["result.tif"]["key"] == \
        f"{prefix}result.tif"
    # And it assumed the role once, in a session named for the job whose policy names the run's folder
    (session,) = [a for a in sts_backends["123456789012"]["aws"].assumed_roles
                  if a.session_name == f"stratus-{job_id}"]
    assert session.role_arn == role_arn
    assert json.loads(session.policy)["Statement"][0]["Resource"] == \
        f"arn:aws:s3:::{stack.results_bucket}/{catalog_layout.run_prefix(job_id, 'run-1')}*"


def test_netcdf_job_tiled_over_s3(processing_stack, tmp_path):
    stack = processing_stack
    job_id = "job-ndvi-netcdf"
    # Given NDVI per date saved as netCDF (a tileable graph: reads by window through /vsis3)
    process = {"process_graph": {
        "load1": load_node(),
        "ndvi1": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load1"}}},
        "save1": {"process_id": "save_result", "arguments": {"data": {"from_node": "ndvi1"}, "format": "netCDF"},
                  "result": True},
    }}
    # When
    completed = stack.run(process, job_id)
    # Then
    assert completed.returncode == 0, completed.stdout + completed.stderr
    prefix = catalog_layout.results_prefix(job_id, "run-1")
    manifest = json.loads(stack.read(catalog_layout.manifest_key(prefix)))
    asset = manifest["assets"]["result.nc"]
    assert asset["type"] == "application/netcdf" and asset["proj:shape"] == [84, 96]
    assert asset["start_datetime"] == "2022-06-02T10:20:31Z" and asset["end_datetime"] == "2022-06-27T10:20:31Z"
    path = tmp_path / "result.nc"
    path.write_bytes(stack.read(asset["key"]))
    with xr.open_dataset(path, engine="netcdf4") as dataset:
        assert dataset["data"].dims == ("t", "y", "x") and dataset.sizes["t"] == 6
        assert dataset["crs"].attrs["grid_mapping_name"] == "transverse_mercator"
        assert np.isfinite(dataset["data"].values).mean() > 0.9
    logs = [entry["message"] for entry in stack.events(stack.log_queue_url, job_id)]
    assert any(m.startswith("Tiled execution") for m in logs)


def test_failing_job_reports_the_error_and_exits_non_zero(processing_stack):
    stack = processing_stack
    job_id = "job-unknown-collection"
    # When the graph loads a collection that does not exist
    completed = stack.run(ndvi_with_process(collection="no-such-collection"), job_id)
    # Then the container fails
    assert completed.returncode != 0
    # And one error log entry explains it, with the node and the openEO code: the user's message only
    errors = [entry for entry in stack.events(stack.log_queue_url, job_id) if entry["level"] == "error"]
    assert len(errors) == 1
    [error] = errors
    assert error["code"] == "CollectionNotFound"
    assert "no-such-collection" in error["message"] and "\n" not in error["message"]
    assert error["path"] == [{"node_id": "load1", "process_id": "load_collection"}]
    assert "data" not in error
    # while the engine's traceback is in the container's own log, for operators
    assert "Traceback (most recent call last)" in completed.stdout + completed.stderr
    # And the status turns to error with the same reason, after running
    statuses = stack.events(stack.status_queue_url, job_id)
    assert statuses[0]["status"] == "running"
    assert statuses[-1]["status"] == "error" and statuses[-1]["reason"] == error["message"]
    # And no manifest claims results
    assert stack.keys(stack.results_bucket, catalog_layout.results_prefix(job_id, "run-1")) == []
