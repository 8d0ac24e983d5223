"""A 16-tile fanned-out job on the local system with 1 and with 2 local Batch workers (issue 12's benchmark).

Each variant starts its own local system (`python -m stratus_local`) with `STRATUS_LOCAL_BATCH_WORKERS` 1 or
2, adds a synthetic Sentinel-2 collection of one 2,048 x 2,048 px scene per date (the demo's Bolzano area
scaled up: `demo_data.generate_demo_collection`, items indexed through the ingest prefix as an operator adds
data), plans 512 px tiles (4 x 4 tiles), runs the same job (an 11 x 11 kernel over four bands and six dates,
then the mean over time) and measures the wall time from `POST /jobs/{id}/results` to `finished`. A tile then
does seconds of work, as on AWS where tiles are 2,048-8,192 px, instead of measuring process start-up. The
variants' results are compared pixel for pixel.

Also prints where the time goes: the local system's own CPU while idle and during the job, the tile
processes' CPU (start-up included), and the per-tile figures the tile records hold (CPU seconds, wall
seconds, peak memory), for the capacity model (docs/fanout.md, section 4).

Target: 1 worker / 2 workers >= 1.7. Run on a quiet machine: `python -m benchmarks.fanout_workers`
(`--quick`: one job per variant and no target check, to see it works).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import boto3
import numpy as np
import openeo
import psutil
import rasterio
import requests

from conformance.run import local_system
from stratus import catalog_layout
from stratus_local.demo_data import AREAS, generate_demo_collection

SCENE_PX = 2048  # 20.48 km at 10 m
TILE_PX = SCENE_PX // 4  # 16 tiles
COLLECTION = "sentinel-2-l2a-bench"
SCENE = dataclasses.replace(AREAS[0], size=SCENE_PX)  # Bolzano: its features scale with the size
DATA_BUCKET, RESULTS_BUCKET = "stratus-data", "stratus-results"  # the local system's (stratus.settings)
SETTINGS = {"STRATUS_FANOUT_MIN_TILE_PX": str(TILE_PX), "STRATUS_FANOUT_MAX_TILE_PX": str(TILE_PX),
            "STRATUS_FANOUT_TILE_BLOCK_PX": str(TILE_PX), "STRATUS_FANOUT_TASK_LOAD_BYTES": "1000000"}
EXTENT = {"west": SCENE.bounds[0], "south": SCENE.bounds[1], "east": SCENE.bounds[2], "north": SCENE.bounds[3],
          "crs": SCENE.epsg}
RUNS = 3  # per variant; the median is reported
TARGET = 1.7
TIMEOUT_S = 900
# The job's status: each poll costs the local system ~10-15 ms of CPU (the API, DynamoDB reads of the job), which
# the 2-worker jobs feel; the end time is not the poll's but the job's own (`updated` of its finished status).
POLL_S = 2.0
INDEX_TIMEOUT_S = 120
IDLE_S = 10  # the local system's CPU is measured this long before the first job


def graph(connection):
    cube = connection.load_collection(COLLECTION, spatial_extent=EXTENT,
                                      temporal_extent=["2022-06-01", "2022-07-01"],
                                      bands=["B02", "B03", "B04", "B08"])
    # an 11 x 11 kernel (a 5 px halo per tile): compute per pixel, as a real graph has
    return cube.apply_kernel([[1] * 11 for _ in range(11)], factor=1 / 121).reduce_dimension("t", reducer="mean")


def run_once(connection) -> tuple[openeo.BatchJob, float]:
    """The job's wall time: from just before `POST /jobs/{id}/results` to the moment the job recorded its
    `finished` status (its metadata's `updated`; the local system runs on this machine's clock)."""
    job = graph(connection).save_result("GTiff").create_job(title="fan-out benchmark")
    started = time.time()
    job.start()
    while (status := job.status()) not in ("finished", "error", "canceled"):
        if time.time() - started > TIMEOUT_S:
            raise RuntimeError(f"job {job.job_id} still {status} after {TIMEOUT_S} s")
        time.sleep(POLL_S)
    if status != "finished":
        raise RuntimeError(f"job {job.job_id} ended {status}")
    finished = datetime.fromisoformat(job.describe()["updated"]).timestamp()
    return job, finished - started


def client(endpoint: str, service: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="eu-central-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def add_collection(endpoint: str, url: str) -> None:
    """The benchmark's collection in the local system's data bucket, its items put under the ingest prefix (the
    indexer takes them from there, as an operator's data); returns when the catalogue lists all of them."""
    s3 = client(endpoint, "s3")
    summary = generate_demo_collection(s3, DATA_BUCKET, COLLECTION, areas=(SCENE,))
    items = s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=catalog_layout.items_prefix(COLLECTION))["Contents"]
    for entry in items:
        body = s3.get_object(Bucket=DATA_BUCKET, Key=entry["Key"])["Body"].read()
        s3.put_object(Bucket=DATA_BUCKET, Key=f"{catalog_layout.ingest_prefix()}{COLLECTION}/"
                      f"{entry['Key'].rsplit('/', 1)[-1]}", Body=body, ContentType="application/geo+json")
    deadline = time.monotonic() + INDEX_TIMEOUT_S
    while True:
        found = requests.get(f"{url}/stac/collections/{COLLECTION}/items", params={"limit": 100}, timeout=30)
        if found.ok and len(found.json().get("features", [])) == summary["items"]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the catalogue lists {found.status_code} {found.text[:200]} after "
                               f"{INDEX_TIMEOUT_S} s, not the {summary['items']} items of {COLLECTION}")
        time.sleep(0.5)


def tile_figures(endpoint: str, job_id: str) -> list[dict]:
    s3 = client(endpoint, "s3")
    prefix = catalog_layout.runs_prefix(job_id)
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=RESULTS_BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/record.json"):
                records.append(json.loads(s3.get_object(Bucket=RESULTS_BUCKET, Key=obj["Key"])["Body"].read()))
    return records


def batch_timeline(endpoint: str, job_id: str) -> list[dict]:
    """The job's Batch jobs (tiles and combine) with their createdAt / startedAt / stoppedAt (ms)."""
    batch = client(endpoint, "batch")
    queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueArn"]
    summaries = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [f"stratus-{job_id}-*"]}])
    ids = [s["jobId"] for s in summaries["jobSummaryList"]]
    return batch.describe_jobs(jobs=ids)["jobs"] if ids else []


def overhead(timeline: list[dict], records: list[dict], wall_s: float, workers: int) -> dict[str, float]:
    """Where the wall time goes (seconds): per tile process (start to exit), per tile in the task (its record's
    duration: read, compute, write), process start-up (the difference: interpreter, imports, reading the frozen
    load plans), and the workers' idle time (orchestration: the map starting children, PlanRun, the combine's
    wait)."""
    tiles = [j for j in timeline if not j["jobName"].endswith("-combine") and j.get("startedAt")
             and j.get("stoppedAt")]
    process = [(j["stoppedAt"] - j["startedAt"]) / 1000 for j in tiles]
    in_task = [v for v in (usage_value(r, "duration") for r in records) if isinstance(v, (int, float))]
    busy = sum((j["stoppedAt"] - j["startedAt"]) / 1000 for j in timeline if j.get("startedAt") and j.get("stoppedAt"))
    idle = max(0.0, wall_s * workers - busy)
    figures = {"tile process s (median)": statistics.median(process) if process else float("nan"),
               "tile in-task s (median)": statistics.median(in_task) if in_task else float("nan"),
               "worker idle s per task": idle / max(1, len(timeline))}
    figures["tile start-up s (median)"] = figures["tile process s (median)"] - figures["tile in-task s (median)"]
    return figures


class CpuMeter:
    """CPU seconds of the local system's own process and of its finished Batch processes (psutil)."""

    def __init__(self) -> None:
        self._process = next(child for child in psutil.Process().children()
                             if "stratus_local" in " ".join(child.cmdline()))

    def read(self) -> tuple[float, float]:
        times = self._process.cpu_times()
        return times.user + times.system, times.children_user + times.children_system


def download_results(job: openeo.BatchJob, target: Path) -> dict[str, np.ndarray]:
    """The job's GeoTIFF results by asset name, as arrays."""
    arrays = {}
    for asset in job.get_results().get_assets():
        if asset.key.endswith(".tif"):
            path = asset.download(target / asset.key.replace("/", "_"))
            with rasterio.open(path) as dataset:
                arrays[asset.key] = dataset.read()
    return arrays


def same_results(one: dict[str, np.ndarray], two: dict[str, np.ndarray]) -> bool:
    return one.keys() == two.keys() and bool(one) and all(
        one[name].shape == two[name].shape and np.array_equal(one[name], two[name], equal_nan=True) for name in one)


@dataclasses.dataclass
class Variant:
    workers: int
    times: list[float] = dataclasses.field(default_factory=list)
    records: list[dict] = dataclasses.field(default_factory=list)
    results: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def variant(workers: int, runs: int, scratch: Path) -> Variant:
    password = secrets.token_urlsafe(12)
    measured = Variant(workers)
    with local_system(password, env={**SETTINGS, "STRATUS_LOCAL_BATCH_WORKERS": str(workers)}) as (url, output):
        endpoint = next(line.split("embedded AWS:", 1)[1].strip() for line in output
                        if line.strip().startswith("embedded AWS:"))
        add_collection(endpoint, url)
        connection = openeo.connect(url).authenticate_basic("demo", password)
        meter = CpuMeter()
        own, _ = meter.read()
        time.sleep(IDLE_S)
        print(f"{workers} worker(s): local system idle {meter.read()[0] - own:.2f} CPU-s in {IDLE_S} s", flush=True)
        for _ in range(runs):
            own, children = meter.read()
            job, seconds = run_once(connection)
            own_after, children_after = meter.read()
            measured.times.append(seconds)
            measured.records = tile_figures(endpoint, job.job_id)
            timeline = batch_timeline(endpoint, job.job_id)
            split = ", ".join(f"{name} {value:.2f}" for name, value in
                              overhead(timeline, measured.records, seconds, workers).items())
            print(f"{workers} worker(s): {seconds:.1f} s wall, {len(timeline)} Batch jobs; {split}; CPU-s: local "
                  f"system {own_after - own:.1f}, Batch processes {children_after - children:.1f} "
                  f"({(children_after - children) / max(1, len(timeline)):.2f} per process)", flush=True)
        target = scratch / f"workers-{workers}"
        target.mkdir()
        measured.results = download_results(job, target)
    return measured


def usage_value(record: dict, name: str) -> float | None:
    entry = (record.get("usage") or {}).get(name)
    return entry.get("value") if isinstance(entry, dict) else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one job per variant, no target check")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else RUNS
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as scratch:
        one = variant(1, runs, Path(scratch))
        two = variant(2, runs, Path(scratch))
    if not same_results(one.results, two.results):
        raise SystemExit(f"the results differ between 1 and 2 workers ({sorted(one.results)} vs {sorted(two.results)})")
    t1, t2 = statistics.median(one.times), statistics.median(two.times)
    print(f"16-tile job of {TILE_PX} px tiles, wall time (median of {runs}): 1 worker {t1:.1f} s, 2 workers "
          f"{t2:.1f} s, speed-up {t1 / t2:.2f}x (target >= {TARGET}x); results equal ({len(one.results)} GeoTIFFs)")
    if one.records:
        names = sorted({name for record in one.records for name in (record.get("usage") or {})})
        for name in names:
            values = [v for v in (usage_value(r, name) for r in one.records) if isinstance(v, (int, float))]
            if values:
                print(f"  per tile {name}: median {statistics.median(values):g}, max {max(values):g} "
                      f"({len(values)} tiles)")
    if not args.quick and t1 / t2 < TARGET:
        raise SystemExit(f"speed-up {t1 / t2:.2f}x is below the target {TARGET}x")


if __name__ == "__main__":
    main()
