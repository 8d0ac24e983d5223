"""The walking skeleton, end to end: the real openEO client against the local system.

NDVI over the Bolzano box for June 2022, averaged over time, run as a batch job through API →
Step Functions → Batch (local process) → S3, with status and logs through SQS, the GeoTIFF
downloaded through its presigned URL and compared with NDVI computed independently with numpy.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import numpy as np
import pytest
import rasterio
import requests
from pystac import STACObjectType
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from rasterio.windows import from_bounds

pytestmark = pytest.mark.e2e

COLLECTION = "sentinel-2-l2a-demo"
BBOX = {"west": 679720, "east": 680680, "south": 5151080, "north": 5151920, "crs": 32632}
JUNE = ["2022-06-01", "2022-07-01"]
JOB_TIMEOUT_S = 60
PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v2.0.0/schema.json"
FILE = "https://stac-extensions.github.io/file/v2.1.0/schema.json"


def wait_for(job, statuses=("finished", "error", "canceled"), timeout=JOB_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = job.status()
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in statuses:
            return status, seen
        time.sleep(0.25)
    pytest.fail(f"job {job.job_id} still {seen[-1]} after {timeout} s (saw {seen})")


def wait_for_logs(job, predicate, timeout=10, level=None):
    deadline = time.monotonic() + timeout
    while True:
        entries = list(job.logs(level=level))
        if predicate(entries) or time.monotonic() > deadline:
            assert predicate(entries), [entry.message for entry in entries]
            return entries
        time.sleep(0.25)


def wait_for_describe(job, predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        described = job.describe()
        if predicate(described) or time.monotonic() > deadline:
            assert predicate(described), described
            return described
        time.sleep(0.25)


def expected_ndvi_mean(s3, bucket="stratus-data"):
    """Independent reference: read the source COGs of every June item over the box, numpy only."""
    prefix = f"stac/collections/{COLLECTION}/items/"
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    ndvis = []
    for key in keys:
        item = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        when = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
        if not (datetime.fromisoformat("2022-06-01T00:00:00+00:00") <= when
                < datetime.fromisoformat("2022-07-01T00:00:00+00:00")):
            continue
        if item["properties"].get("proj:epsg") != 32632:
            continue
        bands = {}
        for band in ("B04", "B08"):
            asset = item["assets"][band]
            bucket_name, _, asset_key = asset["href"].removeprefix("s3://").partition("/")
            data = s3.get_object(Bucket=bucket_name, Key=asset_key)["Body"].read()
            with rasterio.MemoryFile(data) as memfile, memfile.open() as src:
                window = from_bounds(BBOX["west"], BBOX["south"], BBOX["east"], BBOX["north"], src.transform)
                raw = src.read(1, window=window).astype("float64")
                scale = asset["raster:bands"][0].get("scale", 1)
                values = raw * scale
                values[raw == 0] = np.nan
                bands[band] = values
        ndvis.append((bands["B08"] - bands["B04"]) / (bands["B08"] + bands["B04"]))
    assert ndvis, "no June items for the Bolzano box in the demo collection"
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.stack(ndvis), axis=0), len(ndvis)


def test_capabilities_and_collection(connection, local_system):
    assert connection.capabilities().api_version() == "1.2.0"
    assert COLLECTION in connection.list_collection_ids()
    metadata = connection.describe_collection(COLLECTION)
    assert {"x", "y", "t", "bands"} <= set(metadata["cube:dimensions"])
    well_known = requests.get(f"{local_system.api_url}/.well-known/openeo", timeout=10).json()
    assert well_known["versions"][0]["api_version"] == "1.2.0"
    queryables = connection.get(f"/collections/{COLLECTION}/queryables").json()
    assert queryables["properties"]["eo:cloud_cover"]["type"] == "number"


def test_processes_and_file_formats_are_what_the_engine_implements(connection):
    import stratus_processing.processes  # noqa: F401  (registers every process)
    from stratus_processing.registry import DEFAULT_REGISTRY

    processes = {p["id"]: p for p in connection.list_processes()}
    assert set(processes) == set(DEFAULT_REGISTRY)
    assert {"ndvi", "aggregate_spatial", "aggregate_temporal_period", "linear_scale_range"} <= set(processes)
    assert all(p.get("parameters") is not None and "returns" in p for p in processes.values())
    formats = connection.list_output_formats()
    assert {"GTiff", "netCDF", "JSON"} <= set(formats)


def test_ndvi_mean_batch_job_matches_numpy(connection, s3, tmp_path):
    # Given the demo collection over the Bolzano box for June 2022
    cube = connection.load_collection(COLLECTION, spatial_extent=BBOX, temporal_extent=JUNE, bands=["B04", "B08"])
    result = cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean")
    # When it runs as a batch job
    started = time.monotonic()
    job = result.create_job(out_format="GTiff", title="e2e ndvi mean")
    job.start()
    status, seen = wait_for(job)
    elapsed = time.monotonic() - started
    print(f"\nend-to-end job: {elapsed:.1f} s, statuses {seen}")
    assert status == "finished", f"job ended {status}; logs: {[entry.message for entry in job.logs()]}"
    # Then its GeoTIFF, fetched through the presigned URL, equals NDVI computed with numpy
    results = job.get_results()
    assets = results.get_metadata()["assets"]
    assert all("X-Amz-Signature=" in a["href"] and "expires" in a for a in assets.values())
    path = results.download_file(tmp_path / "ndvi.tif")
    expected, dates = expected_ndvi_mean(s3)
    with rasterio.open(path) as dataset:
        actual = dataset.read(1)
        assert dataset.crs.to_epsg() == 32632
        assert (dataset.transform.c, dataset.transform.f, dataset.transform.a) == (679720, 5151920, 10)
        assert actual.shape == (84, 96) == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isfinite(actual).mean() > 0.9 and 0.05 < np.nanstd(actual)  # values vary in space
    # And the results are a STAC 1.1 Collection linking an Item per file, with its footprint, projection,
    # bands and file info, which the client's STAC download follows
    metadata = results.get_metadata()
    assert (metadata["type"], metadata["stac_version"], metadata["openeo:status"]) == ("Collection", "1.1.0",
                                                                                      "finished")
    [link] = [link for link in metadata["links"] if link["rel"] == "item"]
    assert link["type"] == "application/geo+json"
    item = connection.get(link["href"], expected_status=200).json()
    JsonSchemaSTACValidator().validate_core(item, STACObjectType.ITEM, "1.1.0")
    assert {PROJECTION, RASTER, FILE} <= set(item["stac_extensions"])
    west, south, east, north = item["bbox"]
    assert 11.34 < west < east < 11.36 and 46.48 < south < north < 46.50 and item["geometry"]["type"] == "Polygon"
    assert item["properties"]["start_datetime"] <= item["properties"]["end_datetime"]
    [item_asset] = item["assets"].values()
    assert item_asset["proj:code"] == "EPSG:32632" and item_asset["proj:shape"] == [84, 96]
    assert item_asset["file:size"] == path.stat().st_size and item_asset["bands"][0]["data_type"] == "float32"
    downloaded = results.download_as_collection(tmp_path / "stac", on_download_failure="raise")
    item_file = next(p for p in downloaded if p.name == f"{item['id']}.json")
    tif = item_file.parent / json.loads(item_file.read_text())["assets"][next(iter(item["assets"]))]["href"]
    assert tif.read_bytes() == path.read_bytes()
    # And the job's history is complete, with the run's usage (it travels with the processing's last
    # status event, which may land a moment after the state machine's `finished`) and its costs
    info = wait_for_describe(job, lambda described: "usage" in described)
    assert info["progress"] == 100 and info["queued"] and info["started"] and info["finished"]
    when = {key: datetime.fromisoformat(info[key].replace("Z", "+00:00"))
            for key in ("created", "queued", "started", "finished", "updated")}
    assert when["created"] <= when["queued"] and when["created"] <= when["started"] <= when["finished"]
    assert when["finished"] <= when["updated"]
    usage = info["usage"]
    assert usage["cpu"]["unit"] == "cpu-seconds" and usage["cpu"]["value"] > 0
    assert usage["duration"]["unit"] == "seconds" and 0 < usage["duration"]["value"] < elapsed
    assert usage["memory"]["unit"] == "mb-seconds" and usage["memory"]["value"] > 0
    assert info["costs"] > 0
    # log events travel on their own queue and may land a moment after the status
    logs = wait_for_logs(job, lambda entries: any("items" in entry.message for entry in entries))
    assert any(entry.get("path") for entry in logs)  # entries name the node they are about
    assert elapsed < JOB_TIMEOUT_S


def test_failing_job_ends_in_error_with_a_readable_log(connection):
    # the client would check the collection first; skip that so the failure happens in the processing
    cube = connection.load_collection("no-such-collection", spatial_extent=BBOX, temporal_extent=JUNE,
                                      bands=["B04"], fetch_metadata=False)
    job = cube.create_job(out_format="GTiff")
    job.start()
    status, _ = wait_for(job)
    assert status == "error"
    assert "no-such-collection" in job.describe()["reason"]
    errors = wait_for_logs(job, lambda entries: any("no-such-collection" in e.message for e in entries),
                           level="error")
    # the user's error is their message only: no engine traceback, no server paths, nothing from AWS
    user_read = [entry.get("message", "") + json.dumps(entry.get("data")) for entry in job.logs()]
    user_read.append(job.describe()["reason"])
    assert not [text for text in user_read
                if "Traceback" in text or ".py" in text or "Essential container" in text], user_read
    assert {entry.get("code") for entry in errors if "no-such-collection" in entry.message} == {"CollectionNotFound"}


def test_errors_use_the_openeo_format(local_system, connection):
    response = requests.get(f"{local_system.api_url}/openeo/1.2/jobs", headers={"Origin": "https://editor.openeo.org"},
                            timeout=10)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "AuthenticationRequired" and body["id"] and body["message"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    missing = connection.get("/jobs/j-doesnotexist", expected_status=404)
    assert missing.json()["code"] == "JobNotFound"


def test_job_options_given_by_the_client_are_shown_on_the_job(connection):
    cube = connection.load_collection(COLLECTION, spatial_extent=BBOX, temporal_extent=JUNE, bands=["B04"])
    job = cube.create_job(out_format="GTiff", job_options={"executor-memory": "2g", "soft-errors": True})
    assert job.describe()["job_options"] == {"executor-memory": "2g", "soft-errors": True}
