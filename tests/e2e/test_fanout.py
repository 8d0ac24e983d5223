"""Large areas, end to end (issue 12): a job over budget fans out over tiles (PlanRun -> Distributed Map of
tile Batch tasks -> combine task) on a local system planning small tiles, and gives what one task gives.

The fan-out system is a local system of its own (small tiles for every job would make the session's shared one
fan out every other test's job too), so this module is an xdist group of its own: 64 px tiles over the south-east
256 x 256 px of the demo collection's Bolzano scene, 4 x 4 = 16 tiles. The single-task reference is the engine's
`run_job` (what the single Batch task runs) in this process, on the fan-out system's data.

A tile is made to fail cleanly by corrupting one internal block of one source COG: the block at (256, 256)
of a 256 px-blocked scene is read by the south-east tile alone (the other tiles of the last row and column end
at 236 px).
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import boto3
import numpy as np
import openeo
import pytest
import rasterio
from botocore.config import Config
from openeo.rest.multiresult import MultiResult
from rasterio.io import MemoryFile
from rasterio.warp import transform_geom

from conformance.run import local_system as start_local_system
from stratus import catalog_layout
from stratus.run_contract import ResultsManifest, RunConfig
from stratus.settings import Settings
from stratus_processing.io.cog import RasterReader
from stratus_processing.runner import EXIT_OK, run_job
from stratus_processing.sync_handler import OutcomePublisher
from tests.e2e.test_cancel_job import processing_pids
from tests.e2e.test_openeo_client_job import COLLECTION, wait_for
from tests.e2e.test_order_service import register

# its own system: its own xdist worker (tests/conftest.py groups the other e2e tests on the shared one's)
pytestmark = pytest.mark.e2e

TILE_PX = 64


def tile_ids(rows: int, cols: int) -> list[str]:
    return [f"r{row:04d}c{col:04d}" for row in range(rows) for col in range(cols)]


TILES = tile_ids(4, 4)
SOUTH_EAST = "r0003c0003"
# the south-east 256 x 256 px of the 300 x 300 px scene (678000-681000 E, 5150000-5153000 N); tile edges at
# 679080, 679720, 680360 E and 5151920, 5151280, 5150640 N
BOLZANO_TILE = {"west": 678440, "east": 681000, "south": 5150000, "north": 5152560, "crs": 32632}
JUNE = ["2022-06-01", "2022-07-01"]
EARLY_JUNE = ["2022-06-01", "2022-06-13"]  # 3 dates, the first (2 June) the one with the corrupt block
# 256 x 256 px x 3 dates x 2 bands x 8 B = 3.1 MB loaded; a task may hold 1 MB: 64 px tiles (200 KB) fit
FANOUT_ENV = {"STRATUS_FANOUT_MIN_TILE_PX": str(TILE_PX), "STRATUS_FANOUT_MAX_TILE_PX": str(TILE_PX),
              "STRATUS_FANOUT_TILE_BLOCK_PX": str(TILE_PX), "STRATUS_FANOUT_TASK_LOAD_BYTES": "1000000",
              "STRATUS_LOCAL_BATCH_WORKERS": "2"}
FANOUT_TIMEOUT_S = 300


def utm_polygon(west, south, east, north):
    """The UTM box as a GeoJSON polygon in WGS84 (its grid is then known exactly only to the engine)."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return transform_geom("EPSG:32632", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})


# WGS84 geometries: the whole extent, a field across four tiles' corner (679720 E, 5151280 N) and a strip across
# three tile columns and two rows
FIELDS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": "scene", "properties": {}, "geometry": utm_polygon(678440, 5150000, 681000, 5152560)},
    {"type": "Feature", "id": "corner", "properties": {}, "geometry": utm_polygon(679500, 5151050, 680000, 5151550)},
    {"type": "Feature", "id": "strip", "properties": {}, "geometry": utm_polygon(679300, 5150900, 680800, 5151450)}]}
# an order's area (WGS84) inside the scene: ~92 x 111 px x 6 dates x 3 bands x 8 B = 1.5 MB, 2 x 2 tiles
ORDER_TILES = tile_ids(2, 2)
ORDER_AREA = {"type": "Polygon", "coordinates": [[[11.33, 46.49], [11.342, 46.49], [11.342, 46.5], [11.33, 46.5],
                                                  [11.33, 46.49]]]}


class FanoutSystem:
    def __init__(self, api_url: str, endpoint: str, password: str) -> None:
        self.api_url, self.endpoint_url, self.password = api_url, endpoint, password
        self.connection = openeo.connect(api_url).authenticate_basic("demo", password)


@pytest.fixture(scope="module")
def fanout_system():
    password = secrets.token_urlsafe(12)
    try:
        with start_local_system(password, env=FANOUT_ENV) as (api_url, output):
            endpoint = next(line.split("embedded AWS:", 1)[1].strip() for line in output
                            if line.strip().startswith("embedded AWS:"))
            yield FanoutSystem(api_url, endpoint, password)
    except RuntimeError as error:
        pytest.fail(str(error))


def aws(endpoint: str, service: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="eu-central-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(signature_version="s3v4"))


def ndvi_mean_and_zonal_means(connection) -> MultiResult:
    """One job, two outputs of the same NDVI: its mean over time (GTiff) and its zonal means over FIELDS (JSON)."""
    ndvi = connection.load_collection(COLLECTION, spatial_extent=BOLZANO_TILE, temporal_extent=EARLY_JUNE,
                                      bands=["B04", "B08"]).ndvi(nir="B08", red="B04")
    return MultiResult([ndvi.reduce_dimension("t", reducer="mean").save_result("GTiff"),
                        ndvi.aggregate_spatial(geometries=FIELDS, reducer="mean").save_result("JSON")])


def batch_jobs(endpoint: str, job_id: str) -> dict[str, list[dict]]:
    """The Batch jobs of the job's runs, by run: name -> summary (the run's single task, tiles, combine)."""
    batch = aws(endpoint, "batch")
    queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueArn"]
    found: dict[str, list[dict]] = {}
    for summary in batch.list_jobs(jobQueue=queue, filters=[
            {"name": "JOB_NAME", "values": [f"stratus-{job_id}-*"]}])["jobSummaryList"]:
        run = summary["jobName"][len(f"stratus-{job_id}-"):].split("-")[0]
        found.setdefault(run, []).append(summary)
    return found


def settled_batch_jobs(endpoint: str, job_id: str, timeout: float = 30) -> dict[str, list[dict]]:
    """`batch_jobs` once none is active (the job's status may arrive before its last task exits)."""
    deadline = time.monotonic() + timeout
    while True:
        found = batch_jobs(endpoint, job_id)
        if all(j["status"] in ("SUCCEEDED", "FAILED") for jobs in found.values() for j in jobs) \
                or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def steps_of(jobs: list[dict], job_id: str, run: str) -> list[str]:
    return sorted(j["jobName"][len(f"stratus-{job_id}-{run}-"):] for j in jobs)


def tile_statuses(s3, job_id: str, run: str) -> dict[str, str]:
    """The tile records a run wrote: tile id -> status."""
    statuses = {}
    prefix = catalog_layout.results_prefix(job_id, run)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="stratus-results", Prefix=f"{prefix}tiles/"):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/record.json"):
                record = json.loads(s3.get_object(Bucket="stratus-results", Key=obj["Key"])["Body"].read())
                statuses[record["tile_id"]] = record["status"]
    return statuses


def run_to_end(job, expected: str, timeout=FANOUT_TIMEOUT_S) -> None:
    job.start()
    status, _ = wait_for(job, timeout=timeout)
    assert status == expected, "\n".join(e.message for e in job.logs() if e.level in ("error", "warning"))


def error_messages(connection, job_id: str, until, timeout: float = 10) -> list[str]:
    """The job's error log messages, every page of them (a page holds `limit` entries before the level filter,
    and 16 tiles log more than one page), once `until(messages)` holds or `timeout` s passed (log entries come
    through a queue of their own: they may arrive after the status)."""
    deadline = time.monotonic() + timeout
    while True:
        messages, url, params = [], f"/jobs/{job_id}/logs", {"level": "error"}
        while url:
            page = connection.get(url, params=params).json()
            messages += [entry["message"] for entry in page["logs"]]
            url, params = next((link["href"] for link in page["links"] if link["rel"] == "next"), None), None
        if until(messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.25)


def downloaded(job, directory: Path) -> dict[str, Path]:
    """The job's result files, downloaded as a user does (by asset name): name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    job.get_results().download_files(directory)
    return {path.name: path for path in directory.iterdir()}


def mosaic(paths: list[Path], reference: rasterio.DatasetReader) -> np.ndarray:
    """The tile COGs placed by their own georeferencing on the reference's grid (NaN where no tile is)."""
    out = np.full((reference.count, reference.height, reference.width), np.nan)
    for path in paths:
        with rasterio.open(path) as tile:
            assert tile.crs == reference.crs and tile.res == reference.res
            col, row = ~reference.transform @ (tile.transform.c, tile.transform.f)
            col, row = round(col), round(row)
            out[:, row:row + tile.height, col:col + tile.width] = tile.read().astype(np.float64)
    return out


def single_task_results(system: FanoutSystem, cube, tmp_path: Path) -> dict[str, Path]:
    """The cube's results as the single Batch task computes them: the engine's `run_job` in this process on the
    fan-out system's data (its own run folder, no events). Asset name -> downloaded file."""
    s3 = aws(system.endpoint_url, "s3")
    config = RunConfig.for_run(f"j-reference-{secrets.token_hex(4)}", "single")
    s3.put_object(Bucket="stratus-results", Key=config.graph_key,
                  Body=json.dumps({"process_graph": cube.flat_graph()}).encode())
    settings = Settings(data_bucket="stratus-data", results_bucket="stratus-results",
                        status_queue_url="http://unused/status", log_queue_url="http://unused/logs")
    outcome = OutcomePublisher()
    with RasterReader.from_environ({"AWS_ENDPOINT_URL": system.endpoint_url}) as rasters:
        assert run_job(config, settings, s3=s3, publisher=outcome, rasters=rasters) == EXIT_OK, outcome.reason
    manifest = ResultsManifest.from_json(json.loads(s3.get_object(
        Bucket="stratus-results", Key=catalog_layout.manifest_key(config.results_prefix))["Body"].read()))
    (tmp_path / "single").mkdir(parents=True, exist_ok=True)
    files = {}
    for name, asset in manifest.assets.items():
        files[name] = tmp_path / "single" / name
        files[name].write_bytes(s3.get_object(Bucket="stratus-results", Key=asset["key"])["Body"].read())
    return files


def test_a_job_over_budget_fans_out_a_failed_tile_gives_partial_results_and_a_restart_completes_it(
        fanout_system, tmp_path):
    fanned, endpoint = fanout_system.connection, fanout_system.endpoint_url
    s3 = aws(endpoint, "s3")
    # Given the NDVI mean and zonal means as one task computes them, and on the small-tile system one source COG
    # with a corrupt block that only the south-east tile reads
    reference = single_task_results(fanout_system, ndvi_mean_and_zonal_means(fanned), tmp_path)
    assert sorted(reference) == ["result.json", "result.tif"]
    job = ndvi_mean_and_zonal_means(fanned).create_job(title="fanned out, one bad tile")
    key = catalog_layout.asset_key(COLLECTION, first_june_bolzano_item(s3), "B08")
    original = corrupt_block(s3, key)
    try:
        # When it runs: 16 tile tasks and the combine task; that tile fails, the job ends error, its log names it
        run_to_end(job, "error")
        (first_run, jobs), = settled_batch_jobs(endpoint, job.job_id).items()
        assert steps_of(jobs, job.job_id, first_run) == sorted([*TILES, "combine"])
        failed = [j for j in jobs if j["status"] == "FAILED"]
        assert steps_of(failed, job.job_id, first_run) == sorted([SOUTH_EAST, "combine"])
        errors = error_messages(fanned, job.job_id, until=lambda messages: any(
            message.startswith(f"tile {SOUTH_EAST}: ") for message in messages))
        assert any(message.startswith(f"tile {SOUTH_EAST}: ") for message in errors), errors
        # each submitted with the stage's tag, on which batch:TerminateJob is conditioned in AWS
        described = aws(endpoint, "batch").describe_jobs(jobs=[j["jobId"] for j in jobs])["jobs"]
        assert [j.get("tags") for j in described] == [{"stratus:stage": "local"}] * len(jobs)
        # and ?partial=true lists the 15 finished tiles and names the missing one
        partial = fanned.get(f"/jobs/{job.job_id}/results", params={"partial": "true"}).json()
        assert partial["openeo:status"] == "error"
        assert [m["tile_id"] for m in partial["stratus:missing_tiles"]] == [SOUTH_EAST]
        listed = [link["title"] for link in partial["links"] if link["rel"] == "item"]
        assert sorted(t for t in TILES if any(t in name for name in listed)) == sorted(set(TILES) - {SOUTH_EAST})
        assert tile_statuses(s3, job.job_id, first_run) == {**dict.fromkeys(TILES, "finished"), SOUTH_EAST: "error"}
    finally:
        s3.put_object(Bucket="stratus-data", Key=key, Body=original)
    # When it is restarted with the data repaired: only that tile runs again, and the job finishes whole
    run_to_end(job, "finished")
    runs = settled_batch_jobs(endpoint, job.job_id)
    (second_run,) = set(runs) - {first_run}
    assert steps_of(runs[second_run], job.job_id, second_run) == sorted([SOUTH_EAST, "combine"])
    assert all(j["status"] == "SUCCEEDED" for j in runs[second_run])
    assert tile_statuses(s3, job.job_id, second_run) == {SOUTH_EAST: "finished"}  # the other 15: the first run's
    # Then its 16 tiles, placed by their georeferencing, and its mosaic opened as one file, are the single
    # task's result pixel for pixel
    files = downloaded(job, tmp_path / "fanned")
    tiles = [path for name, path in files.items() if path.suffix == ".tif" and any(t in name for t in TILES)]
    assert len(tiles) == len(TILES)
    (vrt,) = [path for path in files.values() if path.suffix == ".vrt"]
    with rasterio.open(reference["result.tif"]) as single, rasterio.open(vrt) as whole:
        expected = single.read().astype(np.float64)
        np.testing.assert_array_equal(mosaic(tiles, single), expected)
        assert (whole.width, whole.height, whole.transform, whole.crs) == (
            single.width, single.height, single.transform, single.crs)
        np.testing.assert_array_equal(whole.read().astype(np.float64), expected)
    # and its zonal means, combined from 15 tiles of the first run and the one redone (fields across tile
    # borders add up their parts), are the single task's numbers
    expected_means = json.loads(reference["result.json"].read_text())
    actual_means = json.loads(files["result.json"].read_text())
    assert expected_means.keys() == actual_means.keys() and len(expected_means) == 3  # the early June dates
    assert {len(zones) for zones in expected_means.values()} == {len(FIELDS["features"])}
    for when in expected_means:
        np.testing.assert_allclose(np.array(actual_means[when], dtype=float),
                                   np.array(expected_means[when], dtype=float), rtol=1e-12)


def test_a_large_order_over_a_wgs84_area_fans_out_and_succeeds(fanout_system):
    # Given a customer of the order API on the small-tile system
    customer = register(fanout_system.api_url, "fanout", fanout_system)
    # When ordering an NDVI composite over a WGS84 polygon larger than one task holds
    response = customer.order("ndvi-composite", {"area": ORDER_AREA, "start_date": JUNE[0], "end_date": JUNE[1]})
    assert response.status_code == 201, response.text
    order_id = response.json()["order_id"]
    order, seen = customer.wait(order_id)
    # Then it ran as tiles and a combine task through the same state machine, and succeeded with a product
    assert order["status"] == "SUCCESS", (order, seen)
    (run, jobs), = settled_batch_jobs(fanout_system.endpoint_url, order_id).items()
    assert steps_of(jobs, order_id, run) == sorted([*ORDER_TILES, "combine"])
    products = {p["order_id"]: p for p in customer.request("GET", "/products").json()["products"]}
    assert any(d["type"].startswith("image/tiff") for d in products[order_id]["downloads"])


def corrupt_block(s3, key: str) -> bytes:
    """Overwrites the compressed bytes of the COG's block (1, 1) (x, y) with garbage; returns the original."""
    original = s3.get_object(Bucket="stratus-data", Key=key)["Body"].read()
    with MemoryFile(original) as memory, memory.open() as cog:
        offset = int(cog.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        size = int(cog.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    broken = original[:offset] + bytes(b ^ 0x5A for b in original[offset:offset + size]) + original[offset + size:]
    s3.put_object(Bucket="stratus-data", Key=key, Body=broken)
    return original


def first_june_bolzano_item(s3) -> str:
    prefix = catalog_layout.items_prefix(COLLECTION)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="stratus-data", Prefix=prefix):
        for obj in page.get("Contents", []):
            item = json.loads(s3.get_object(Bucket="stratus-data", Key=obj["Key"])["Body"].read())
            if item["properties"].get("proj:epsg") == 32632 and item["properties"]["datetime"].startswith("2022-06"):
                return item["id"]
    raise AssertionError("no June Bolzano item")


WAITING = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING")  # a Batch job not (yet) given a worker


def test_cancel_leaves_no_running_tile_job(fanout_system):
    fanned, endpoint = fanout_system.connection, fanout_system.endpoint_url
    cube = fanned.load_collection(COLLECTION, spatial_extent=BOLZANO_TILE, temporal_extent=JUNE,
                                  bands=["B02", "B03", "B04", "B08"])
    kernel = [[1] * 9 for _ in range(9)]
    job = cube.apply_kernel(kernel, factor=1 / 81).save_result("GTiff").create_job(title="slow tiles")
    job.start()
    # cancelled during the map: a tile task runs and another waits for one of the 2 local workers
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        statuses = {j["status"] for jobs in batch_jobs(endpoint, job.job_id).values() for j in jobs}
        if "RUNNING" in statuses and statuses & set(WAITING):
            break
        time.sleep(0.2)
    assert "RUNNING" in statuses and statuses & set(WAITING), statuses
    assert processing_pids(job.job_id), "no tile task was running"
    job.stop()
    assert job.status() == "canceled"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (processing_pids(job.job_id) or any(
            j["status"] in (*WAITING, "RUNNING") for jobs in batch_jobs(endpoint, job.job_id).values() for j in jobs)):
        time.sleep(0.3)
    assert processing_pids(job.job_id) == []
    statuses = {j["status"] for jobs in batch_jobs(endpoint, job.job_id).values() for j in jobs}
    assert statuses <= {"FAILED", "SUCCEEDED"}
    time.sleep(3)  # a tile the map would start next must not appear
    (run, jobs), = batch_jobs(endpoint, job.job_id).items()
    assert {j["status"] for j in jobs} <= {"FAILED", "SUCCEEDED"} and processing_pids(job.job_id) == []
    # and the map stopped: not every tile finished, and no combine task came
    steps = steps_of(jobs, job.job_id, run)
    assert "combine" not in steps and set(steps) <= set(TILES)
    assert sum(j["status"] == "SUCCEEDED" for j in jobs) < len(TILES)
